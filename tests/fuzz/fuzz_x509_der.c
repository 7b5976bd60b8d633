/* Fuzz target: certificates, requests and CRLs in DER from anywhere (what `certfleet x509
 * show`, CSR handling and CA import read). Every name and general name found is turned into a
 * model and back to OpenSSL, and the round trips must hold: a model that converts to OpenSSL
 * must come back equal, and so must its text form. Extensions go through the extension models.
 * Requests also go through cf_csr_read, whose verdict must be OpenSSL's.
 * Must never crash, leak, or break an invariant (which aborts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cf_csr.h"
#include "cf_general_name.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"

static void s_broken(const char *what, const json_t *model)
{
    char *text = json_dumps(model, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(stderr, "invariant broken: %s: %s\n", what, text ? text : "?");
    free(text);
    abort();
}

static void s_name(const X509_NAME *name)
{
    cf_error_t err = {0};
    json_t *model = cf_name_from_openssl(name, &err);
    if (!model)
        return;
    char *text = cf_name_to_string(model);
    free(text);
    text = cf_name_to_rfc4514(model);
    free(text);
    json_t *norm = cf_name_parse(model, &err);
    if (norm) {
        /* from_openssl already gives the normal form. */
        if (!json_equal(norm, model))
            s_broken("from_openssl is not normalised", model);
        X509_NAME *back = cf_name_to_openssl(norm, &err);
        if (!back)
            s_broken("valid name does not encode", norm);
        json_t *again = cf_name_from_openssl(back, &err);
        if (!again || !json_equal(again, norm))
            s_broken("name does not round-trip through OpenSSL", norm);
        json_decref(again);
        X509_NAME_free(back);
        text = cf_name_to_string(norm);
        again = text ? cf_name_from_string(text, &err) : NULL;
        if (!again || !json_equal(again, norm))
            s_broken("name does not round-trip through its text form", norm);
        json_decref(again);
        free(text);
    }
    json_decref(norm);
    json_decref(model);
}

static void s_general_names(const GENERAL_NAMES *gns)
{
    if (!gns)
        return;
    cf_error_t err = {0};
    for (int i = 0; i < sk_GENERAL_NAME_num(gns); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gns, i);
        if (gn->type == GEN_DIRNAME)
            s_name(gn->d.directoryName);
        json_t *model = cf_general_name_from_openssl(gn, &err);
        if (!model)
            continue;
        json_t *norm = cf_general_name_parse(model, &err);
        GENERAL_NAME *back = norm ? cf_general_name_to_openssl(norm, &err) : NULL;
        if (norm && !back) {
            /* An odd-length OctetString is the one model that parses but cannot encode, and
             * OpenSSL never produces one. */
            s_broken("valid general name does not encode", norm);
        }
        if (back) {
            json_t *again = cf_general_name_from_openssl(back, &err);
            if (!again || !json_equal(again, norm))
                s_broken("general name does not round-trip through OpenSSL", norm);
            json_decref(again);
            char *text = cf_general_name_to_string(norm);
            again = text ? cf_general_name_from_string(text, &err) : NULL;
            if (!again || !json_equal(again, norm))
                s_broken("general name does not round-trip through its text form", norm);
            json_decref(again);
            free(text);
            GENERAL_NAME_free(back);
        }
        json_decref(norm);
        json_decref(model);
    }
    json_t *list = cf_general_names_from_openssl(gns, &err);
    json_t *norm = list ? cf_general_names_parse(list, &err) : NULL;
    GENERAL_NAMES *back = norm ? cf_general_names_to_openssl(norm, &err) : NULL;
    GENERAL_NAMES_free(back);
    json_decref(norm);
    json_decref(list);
}

/* The general names inside one extension, whichever kind of extension holds them. */
static void s_extension_names(X509_EXTENSION *ext)
{
    /* The raw form `x509 show` falls back to (it fails only on an OID that cannot be read). */
    cf_error_t err = {0};
    json_decref(cf_extension_raw_from_openssl(ext, &err));
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    void *value = X509V3_EXT_d2i(ext);
    if (!value) {
        ERR_clear_error();
        return;
    }
    switch (nid) {
    case NID_subject_alt_name:
    case NID_issuer_alt_name:
    case NID_certificate_issuer:
        s_general_names(value);
        GENERAL_NAMES_free(value);
        break;
    case NID_authority_key_identifier:
        s_general_names(((AUTHORITY_KEYID *)value)->issuer);
        AUTHORITY_KEYID_free(value);
        break;
    case NID_info_access:
    case NID_sinfo_access: {
        AUTHORITY_INFO_ACCESS *aia = value;
        GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
        for (int i = 0; gns && i < sk_ACCESS_DESCRIPTION_num(aia); i++)
            sk_GENERAL_NAME_push(gns, sk_ACCESS_DESCRIPTION_value(aia, i)->location);
        s_general_names(gns);
        sk_GENERAL_NAME_free(gns);
        AUTHORITY_INFO_ACCESS_free(aia);
        break;
    }
    case NID_crl_distribution_points:
    case NID_freshest_crl: {
        CRL_DIST_POINTS *dps = value;
        for (int i = 0; i < sk_DIST_POINT_num(dps); i++) {
            DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
            if (dp->distpoint && dp->distpoint->type == 0)
                s_general_names(dp->distpoint->name.fullname);
            s_general_names(dp->CRLissuer);
        }
        CRL_DIST_POINTS_free(dps);
        break;
    }
    case NID_issuing_distribution_point: {
        ISSUING_DIST_POINT *idp = value;
        if (idp->distpoint && idp->distpoint->type == 0)
            s_general_names(idp->distpoint->name.fullname);
        ISSUING_DIST_POINT_free(idp);
        break;
    }
    case NID_name_constraints: {
        NAME_CONSTRAINTS *nc = value;
        STACK_OF(GENERAL_SUBTREE) * trees[2] = {nc->permittedSubtrees, nc->excludedSubtrees};
        for (int t = 0; t < 2; t++) {
            GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
            for (int i = 0; gns && i < sk_GENERAL_SUBTREE_num(trees[t]); i++)
                sk_GENERAL_NAME_push(gns, sk_GENERAL_SUBTREE_value(trees[t], i)->base);
            s_general_names(gns);
            sk_GENERAL_NAME_free(gns);
        }
        NAME_CONSTRAINTS_free(nc);
        break;
    }
    default: {
        /* Free whatever it decoded as with the method that made it. */
        const X509V3_EXT_METHOD *method = X509V3_EXT_get(ext);
        if (method && method->it)
            ASN1_item_free(value, ASN1_ITEM_ptr(method->it));
        else if (method && method->ext_free)
            method->ext_free(value);
        break;
    }
    }
}

/* The extension models: parse, text, and back to OpenSSL. */
static void s_extension_models(json_t *list)
{
    size_t i;
    json_t *model;
    json_array_foreach(list, i, model)
    {
        cf_error_t err = {0};
        char *text = cf_extension_to_text(model);
        free(text);
        json_t *norm = cf_extension_parse(model, &err);
        X509_EXTENSION *ext = norm ? cf_extension_to_openssl(norm, &err) : NULL;
        X509_EXTENSION_free(ext);
        json_decref(norm);
    }
    json_decref(list);
}

/* cf_csr_read (which reads EC and Ed25519 requests without OpenSSL's key decoding) must
 * accept and refuse exactly what d2i_X509_REQ + X509_REQ_verify do. */
static void s_csr_agrees(const uint8_t *data, size_t size)
{
    cf_csr_t csr;
    cf_error_t err = {0};
    bool mine = cf_csr_read(data, size, &csr, &err) == 0;
    cf_csr_clear(&csr);
    const unsigned char *p = data;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)size);
    EVP_PKEY *pub = req && p == data + size ? X509_REQ_get0_pubkey(req) : NULL;
    bool theirs = pub && X509_REQ_verify(req, pub) == 1;
    X509_REQ_free(req);
    ERR_clear_error();
    if (mine != theirs) {
        fprintf(stderr, "invariant broken: cf_csr_read %s a request OpenSSL %s\n",
                mine ? "accepts" : "refuses", theirs ? "accepts" : "refuses");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < (1u << 20))
        s_csr_agrees(data, size);
    cf_error_t err = {0};
    const unsigned char *p = data;
    X509 *cert = d2i_X509(NULL, &p, (long)size);
    if (cert) {
        s_name(X509_get_subject_name(cert));
        s_name(X509_get_issuer_name(cert));
        for (int i = 0; i < X509_get_ext_count(cert); i++)
            s_extension_names(X509_get_ext(cert, i));
        s_extension_models(cf_extensions_from_cert(cert, &err));
        X509_free(cert);
    }
    p = data;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)size);
    if (req) {
        s_name(X509_REQ_get_subject_name(req));
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
            s_extension_names(sk_X509_EXTENSION_value(exts, i));
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        s_extension_models(cf_extensions_from_req(req, &err));
        X509_REQ_free(req);
    }
    p = data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)size);
    if (crl) {
        s_name(X509_CRL_get_issuer(crl));
        for (int i = 0; i < X509_CRL_get_ext_count(crl); i++)
            s_extension_names(X509_CRL_get_ext(crl, i));
        STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
        for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
            X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
            for (int k = 0; k < X509_REVOKED_get_ext_count(r); k++)
                s_extension_names(X509_REVOKED_get_ext(r, k));
        }
        s_extension_models(cf_extensions_from_crl(crl, &err));
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    return 0;
}
