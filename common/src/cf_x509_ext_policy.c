/* cf_x509_ext_policy: certificate policies (PolicyInformationModel, UserNoticeModel,
 * NoticeReferenceModel), policy constraints and inhibit anyPolicy. Texts are written as
 * UTF8String (RFC 5280 4.2.1.4 recommends it, cryptography does it); any DisplayText type is
 * read. NoticeReference.organization is mandatory in ASN.1 but optional in the model: null is
 * written as an empty string, and an empty organization reads back as null. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cf_x509_ext_int.h"

/* --- notice reference and user notice ---------------------------------------------------- */

static json_t *s_noticeref_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"organization", "notice_numbers", NULL};
    static const char *const required[] = {"notice_numbers", NULL};
    if (cf_ext_check_object(in, "notice reference", fields, required, err) != 0)
        return NULL;
    const json_t *org = cf_ext_opt(in, "organization");
    const json_t *nums = json_object_get(in, "notice_numbers");
    if (!json_is_array(nums)) {
        cf_error_set(err, "invalid_type", "notice_numbers", "notice_numbers must be a list");
        return NULL;
    }
    json_t *numbers = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nums, i, n)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "notice_numbers", i);
        json_int_t v;
        if (cf_ext_get_int(n, path, 0, INT64_MAX, &v, err) != 0 || !numbers ||
            json_array_append_new(numbers, json_integer(v))) {
            json_decref(numbers);
            return NULL;
        }
    }
    json_t *organization = org ? cf_ext_parse_text(org, "organization", false, err) : json_null();
    if (!organization) {
        json_decref(numbers);
        return NULL;
    }
    /* "" cannot be told from null once encoded (see the file comment). */
    if (json_is_string(organization) && json_string_length(organization) == 0) {
        json_decref(organization);
        organization = json_null();
    }
    return json_pack("{s:o, s:o}", "organization", organization, "notice_numbers", numbers);
}

static json_t *s_notice_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"notice_reference", "explicit_text", NULL};
    static const char *const required[] = {"explicit_text", NULL};
    if (cf_ext_check_object(in, "user notice", fields, required, err) != 0)
        return NULL;
    const json_t *ref = cf_ext_opt(in, "notice_reference");
    const json_t *text = cf_ext_opt(in, "explicit_text");
    json_t *reference = json_null();
    if (ref && !(reference = s_noticeref_parse(ref, err))) {
        cf_error_prefix_field(err, "notice_reference");
        return NULL;
    }
    json_t *explicit_text =
        text ? cf_ext_parse_text(text, "explicit_text", false, err) : json_null();
    if (!explicit_text) {
        json_decref(reference);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "notice_reference", reference, "explicit_text", explicit_text);
}

/* --- policy information ------------------------------------------------------------------ */

static json_t *s_qualifiers_parse(const json_t *v, cf_error_t *err)
{
    if (cf_ext_check_list(v, "policy_qualifiers", err) != 0)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *q;
    json_array_foreach(v, i, q)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "policy_qualifiers", i);
        json_t *item = NULL;
        if (json_is_string(q)) {
            /* A CPS pointer is an IA5String URI. */
            item = cf_ext_parse_text(q, path, true, err);
        } else if (json_is_object(q)) {
            item = s_notice_parse(q, err);
            if (!item)
                cf_error_prefix_field(err, path);
        } else {
            cf_error_set(err, "invalid_type", path,
                         "policy qualifier must be a string (CPS URI) or a user notice object");
        }
        if (cf_ext_append(out, item) != 0) {
            if (!cf_error_isset(err))
                cf_error_set(err, "internal", "", "out of memory");
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *s_policy_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"policy_identifier", "policy_qualifiers", NULL};
    static const char *const required[] = {"policy_identifier", NULL};
    if (cf_ext_check_object(in, "policy information", fields, required, err) != 0)
        return NULL;
    json_t *oid =
        cf_ext_parse_oid(json_object_get(in, "policy_identifier"), "policy_identifier", err);
    if (!oid)
        return NULL;
    const json_t *q = cf_ext_opt(in, "policy_qualifiers");
    json_t *qualifiers = q ? s_qualifiers_parse(q, err) : json_null();
    if (!qualifiers) {
        json_decref(oid);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "policy_identifier", oid, "policy_qualifiers", qualifiers);
}

static json_t *s_cp_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_list(value, "", err) != 0)
        return NULL;
    json_t *out = json_array();
    json_t *ids = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        json_t *policy = s_policy_parse(v, err);
        if (!policy) {
            cf_error_prefix_field(err, path);
            goto fail;
        }
        if (cf_ext_append(ids, json_incref(json_object_get(policy, "policy_identifier")))) {
            json_decref(policy);
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
        if (cf_ext_append(out, policy)) {
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
    }
    /* RFC 5280 4.2.1.4: a policy OID must not appear more than once. */
    if (cf_ext_check_unique(ids, "", err) != 0) {
        size_t len = err ? strlen(err->field) : 0;
        if (err && len + sizeof ".policy_identifier" <= sizeof err->field)
            memcpy(err->field + len, ".policy_identifier", sizeof ".policy_identifier");
        goto fail;
    }
    json_decref(ids);
    return out;
fail:
    json_decref(ids);
    json_decref(out);
    return NULL;
}

static ASN1_STRING *s_utf8(const char *s)
{
    ASN1_STRING *str = ASN1_STRING_type_new(V_ASN1_UTF8STRING);
    if (str && !ASN1_STRING_set(str, s, -1)) {
        ASN1_STRING_free(str);
        str = NULL;
    }
    return str;
}

static POLICYQUALINFO *s_notice_to_openssl(const json_t *notice, cf_error_t *err)
{
    POLICYQUALINFO *pq = POLICYQUALINFO_new();
    if (!pq)
        goto fail;
    ASN1_OBJECT_free(pq->pqualid);
    pq->pqualid = OBJ_nid2obj(NID_id_qt_unotice);
    USERNOTICE *un = pq->d.usernotice = USERNOTICE_new();
    if (!un)
        goto fail;
    const json_t *text = cf_ext_opt(notice, "explicit_text");
    if (text && !(un->exptext = s_utf8(json_string_value(text))))
        goto fail;
    const json_t *ref = cf_ext_opt(notice, "notice_reference");
    if (ref) {
        NOTICEREF *nr = un->noticeref = NOTICEREF_new();
        if (!nr)
            goto fail;
        const char *org = json_string_value(cf_ext_opt(ref, "organization"));
        ASN1_STRING_free(nr->organization);
        if (!(nr->organization = s_utf8(org ? org : "")))
            goto fail;
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(ref, "notice_numbers"), i, n)
        {
            ASN1_INTEGER *ai = cf_ext_int_to_openssl(n, err);
            if (!ai || !sk_ASN1_INTEGER_push(nr->noticenos, ai)) {
                ASN1_INTEGER_free(ai);
                goto fail;
            }
        }
    }
    return pq;
fail:
    if (!cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    POLICYQUALINFO_free(pq);
    return NULL;
}

static POLICYQUALINFO *s_cps_to_openssl(const char *uri, cf_error_t *err)
{
    POLICYQUALINFO *pq = POLICYQUALINFO_new();
    if (pq) {
        ASN1_OBJECT_free(pq->pqualid);
        pq->pqualid = OBJ_nid2obj(NID_id_qt_cps);
        pq->d.cpsuri = ASN1_IA5STRING_new();
        if (!pq->d.cpsuri || !ASN1_STRING_set(pq->d.cpsuri, uri, -1)) {
            POLICYQUALINFO_free(pq);
            pq = NULL;
        }
    }
    if (!pq)
        cf_error_set(err, "internal", "", "out of memory");
    return pq;
}

static int s_cp_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    CERTIFICATEPOLICIES *cp = sk_POLICYINFO_new_null();
    if (!cp) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    size_t i;
    json_t *policy;
    json_array_foreach(value, i, policy)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        POLICYINFO *pi = POLICYINFO_new();
        if (!pi || !sk_POLICYINFO_push(cp, pi)) {
            POLICYINFO_free(pi);
            cf_error_set(err, "internal", "", "out of memory");
            goto cleanup;
        }
        ASN1_OBJECT_free(pi->policyid);
        pi->policyid = cf_ext_oid_to_openssl(
            json_string_value(json_object_get(policy, "policy_identifier")), path, err);
        if (!pi->policyid)
            goto cleanup;
        const json_t *qualifiers = cf_ext_opt(policy, "policy_qualifiers");
        if (!qualifiers)
            continue;
        if (!(pi->qualifiers = sk_POLICYQUALINFO_new_null())) {
            cf_error_set(err, "internal", "", "out of memory");
            goto cleanup;
        }
        size_t j;
        json_t *q;
        json_array_foreach(qualifiers, j, q)
        {
            POLICYQUALINFO *pq = json_is_string(q) ? s_cps_to_openssl(json_string_value(q), err)
                                                   : s_notice_to_openssl(q, err);
            if (!pq || !sk_POLICYQUALINFO_push(pi->qualifiers, pq)) {
                POLICYQUALINFO_free(pq);
                if (!cf_error_isset(err))
                    cf_error_set(err, "internal", "", "out of memory");
                goto cleanup;
            }
        }
    }
    rc = cf_ext_i2d(cp, ASN1_ITEM_rptr(CERTIFICATEPOLICIES), der, len, err);
cleanup:
    CERTIFICATEPOLICIES_free(cp);
    return rc;
}

static json_t *s_notice_from_openssl(const USERNOTICE *un, cf_error_t *err)
{
    json_t *ref = json_null(), *text = json_null();
    if (un->exptext && !(text = cf_ext_string_from_openssl(un->exptext, "explicit_text", err)))
        goto fail;
    if (un->noticeref) {
        const NOTICEREF *nr = un->noticeref;
        json_t *org = nr->organization
                          ? cf_ext_string_from_openssl(nr->organization, "organization", err)
                          : json_null();
        json_t *nums = json_array();
        if (org && json_is_string(org) && json_string_length(org) == 0) {
            json_decref(org);
            org = json_null();
        }
        for (int i = 0; org && nums && i < sk_ASN1_INTEGER_num(nr->noticenos); i++) {
            char path[CF_ERROR_FIELD_MAX];
            cf_ext_path_index(path, "notice_numbers", (size_t)i);
            json_t *n =
                cf_ext_int_from_openssl(sk_ASN1_INTEGER_value(nr->noticenos, i), false, path, err);
            if (!n || json_array_append_new(nums, n)) {
                json_decref(nums);
                nums = NULL;
            }
        }
        if (!org || !nums) {
            json_decref(org);
            json_decref(nums);
            cf_error_prefix_field(err, "notice_reference");
            goto fail;
        }
        ref = json_pack("{s:o, s:o}", "organization", org, "notice_numbers", nums);
        if (!ref)
            goto fail;
    }
    return json_pack("{s:o, s:o}", "notice_reference", ref, "explicit_text", text);
fail:
    json_decref(ref);
    json_decref(text);
    return NULL;
}

static json_t *s_cp_decode(const unsigned char *der, long len, cf_error_t *err)
{
    CERTIFICATEPOLICIES *cp = cf_ext_d2i(der, len, ASN1_ITEM_rptr(CERTIFICATEPOLICIES), err);
    if (!cp)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; out && i < sk_POLICYINFO_num(cp); i++) {
        const POLICYINFO *pi = sk_POLICYINFO_value(cp, i);
        char path[CF_ERROR_FIELD_MAX], field[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", (size_t)i);
        cf_ext_path_key(field, path, "policy_identifier");
        json_t *oid = cf_ext_oid_from_openssl(pi->policyid, field, err);
        json_t *quals = pi->qualifiers ? json_array() : json_null();
        for (int j = 0; oid && quals && pi->qualifiers && j < sk_POLICYQUALINFO_num(pi->qualifiers);
             j++) {
            const POLICYQUALINFO *pq = sk_POLICYQUALINFO_value(pi->qualifiers, j);
            cf_ext_path_key(field, path, "policy_qualifiers");
            char qpath[CF_ERROR_FIELD_MAX];
            cf_ext_path_index(qpath, field, (size_t)j);
            json_t *item = NULL;
            int nid = OBJ_obj2nid(pq->pqualid);
            if (nid == NID_id_qt_cps && pq->d.cpsuri) {
                item = cf_ext_string_from_openssl(pq->d.cpsuri, qpath, err);
            } else if (nid == NID_id_qt_unotice && pq->d.usernotice) {
                item = s_notice_from_openssl(pq->d.usernotice, err);
                if (!item)
                    cf_error_prefix_field(err, qpath);
            } else {
                cf_error_set(err, "unsupported_value", qpath,
                             "only CPS and user notice qualifiers are supported");
            }
            if (!item || json_array_append_new(quals, item)) {
                json_decref(quals);
                quals = NULL;
            }
        }
        json_t *item = oid && quals ? json_pack("{s:o, s:o}", "policy_identifier", oid,
                                                "policy_qualifiers", quals)
                                    : NULL;
        if (!item) {
            if (!(oid && quals)) {
                json_decref(oid);
                json_decref(quals);
            }
        }
        if (!item || json_array_append_new(out, item)) {
            json_decref(out);
            out = NULL;
        }
    }
    CERTIFICATEPOLICIES_free(cp);
    return out;
}

static void s_cp_text(const json_t *value, cf_ext_buf_t *out)
{
    size_t i;
    json_t *policy;
    json_array_foreach(value, i, policy)
    {
        const char *oid = json_string_value(json_object_get(policy, "policy_identifier"));
        cf_ext_line(out, 0, "* Policy Identifier: %s", oid ? oid : "?");
        const json_t *quals = json_object_get(policy, "policy_qualifiers");
        if (!json_is_array(quals)) {
            cf_ext_line(out, 1, "No Policy Qualifiers");
            continue;
        }
        cf_ext_line(out, 1, "Policy Qualifiers:");
        size_t j;
        json_t *q;
        json_array_foreach(quals, j, q)
        {
            if (json_is_string(q)) {
                cf_ext_line(out, 2, "* %s", json_string_value(q));
                continue;
            }
            cf_ext_line(out, 2, "* User Notice:");
            const json_t *ref = json_object_get(q, "notice_reference");
            const json_t *text = json_object_get(q, "explicit_text");
            if (json_is_string(text))
                cf_ext_line(out, 3, "* Explicit Text: %s", json_string_value(text));
            if (json_is_object(ref)) {
                const json_t *org = json_object_get(ref, "organization");
                cf_ext_line(out, 3, "* Reference:");
                if (json_is_string(org))
                    cf_ext_line(out, 4, "* Organization: %s", json_string_value(org));
                char nums[256] = "";
                size_t k, used = 0;
                json_t *n;
                json_array_foreach(json_object_get(ref, "notice_numbers"), k, n)
                {
                    if (used < sizeof nums)
                        used += (size_t)snprintf(nums + used, sizeof nums - used,
                                                 "%s%" JSON_INTEGER_FORMAT, k ? ", " : "",
                                                 json_integer_value(n));
                }
                cf_ext_line(out, 4, "* Notice Numbers: [%s]", nums);
            }
        }
    }
}

const cf_ext_def_t cf_ext_def_certificate_policies = {
    "certificate_policies",
    "2.5.29.32",
    "Certificate Policies",
    0,
    CF_EXT_SIGN,
    s_cp_parse,
    s_cp_encode,
    s_cp_decode,
    s_cp_text,
};

/* --- policy constraints ------------------------------------------------------------------ */

static const char *const s_pc_fields[] = {"require_explicit_policy", "inhibit_policy_mapping",
                                          NULL};

static json_t *s_pc_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_object(value, "policy constraints", s_pc_fields, s_pc_fields, err) != 0)
        return NULL;
    json_t *out = json_object();
    bool any = false;
    for (size_t i = 0; s_pc_fields[i]; i++) {
        const json_t *v = cf_ext_opt(value, s_pc_fields[i]);
        json_int_t n = 0;
        if (v && cf_ext_get_int(v, s_pc_fields[i], 0, INT32_MAX, &n, err) != 0) {
            json_decref(out);
            return NULL;
        }
        if (cf_ext_set(out, s_pc_fields[i], v ? json_integer(n) : json_null())) {
            json_decref(out);
            cf_error_set(err, "internal", "", "out of memory");
            return NULL;
        }
        any = any || v;
    }
    if (!any) {
        cf_error_set(err, "missing_field", "",
                     "at least one of require_explicit_policy and inhibit_policy_mapping must "
                     "be given");
        json_decref(out);
        return NULL;
    }
    return out;
}

static int s_pc_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    POLICY_CONSTRAINTS *pc = POLICY_CONSTRAINTS_new();
    if (!pc) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    const json_t *req = cf_ext_opt(value, "require_explicit_policy");
    const json_t *inh = cf_ext_opt(value, "inhibit_policy_mapping");
    if (req && !(pc->requireExplicitPolicy = cf_ext_int_to_openssl(req, err)))
        goto cleanup;
    if (inh && !(pc->inhibitPolicyMapping = cf_ext_int_to_openssl(inh, err)))
        goto cleanup;
    rc = cf_ext_i2d(pc, ASN1_ITEM_rptr(POLICY_CONSTRAINTS), der, len, err);
cleanup:
    POLICY_CONSTRAINTS_free(pc);
    return rc;
}

static json_t *s_pc_decode(const unsigned char *der, long len, cf_error_t *err)
{
    POLICY_CONSTRAINTS *pc = cf_ext_d2i(der, len, ASN1_ITEM_rptr(POLICY_CONSTRAINTS), err);
    if (!pc)
        return NULL;
    json_t *out = json_object();
    if (!out ||
        cf_ext_set(out, "require_explicit_policy",
                   pc->requireExplicitPolicy
                       ? cf_ext_int_from_openssl(pc->requireExplicitPolicy, false,
                                                 "require_explicit_policy", err)
                       : json_null()) ||
        cf_ext_set(out, "inhibit_policy_mapping",
                   pc->inhibitPolicyMapping
                       ? cf_ext_int_from_openssl(pc->inhibitPolicyMapping, false,
                                                 "inhibit_policy_mapping", err)
                       : json_null())) {
        json_decref(out);
        out = NULL;
    }
    POLICY_CONSTRAINTS_free(pc);
    return out;
}

static void s_pc_text(const json_t *value, cf_ext_buf_t *out)
{
    const json_t *inh = json_object_get(value, "inhibit_policy_mapping");
    const json_t *req = json_object_get(value, "require_explicit_policy");
    if (json_is_integer(inh))
        cf_ext_line(out, 0, "InhibitPolicyMapping: %" JSON_INTEGER_FORMAT, json_integer_value(inh));
    if (json_is_integer(req))
        cf_ext_line(out, 0, "RequireExplicitPolicy: %" JSON_INTEGER_FORMAT,
                    json_integer_value(req));
}

const cf_ext_def_t cf_ext_def_policy_constraints = {
    "policy_constraints", "2.5.29.36", "Policy Constraints", 1,         0,
    s_pc_parse,           s_pc_encode, s_pc_decode,          s_pc_text,
};

/* --- inhibit anyPolicy ------------------------------------------------------------------- */

static json_t *s_iap_parse(const json_t *value, cf_error_t *err)
{
    json_int_t n;
    if (cf_ext_get_int(value, "", 0, INT32_MAX, &n, err) != 0)
        return NULL;
    return json_integer(n);
}

static json_t *s_iap_decode(const unsigned char *der, long len, cf_error_t *err)
{
    return cf_ext_decode_integer(der, len, false, err);
}

const cf_ext_def_t cf_ext_def_inhibit_any_policy = {
    "inhibit_any_policy",  "2.5.29.54",  "Inhibit anyPolicy", 1, 0, s_iap_parse,
    cf_ext_encode_integer, s_iap_decode, cf_ext_text_integer,
};
