/* cf_crl_lock: transaction-level advisory locks per (CA, CRL scope); see cf_crl_lock.h. */
#include "cf_crl_lock.h"

#include <stdio.h>

int cf_crl_lock(cf_pg_t *pg, int64_t ca_id, cf_scope_t scope, bool exclusive)
{
    /* The key is hashed from a name of its own ("crl:"), like the other advisory locks of the
     * workers ("ocsp.keygen:"): a collision only makes two unrelated holders wait. */
    char key[64];
    snprintf(key, sizeof key, "crl:%lld:%s", (long long)ca_id, cf_scope_name(scope));
    const char *values[1] = {key};
    PGresult *res =
        cf_pg_exec_params(pg,
                          exclusive ? "SELECT pg_advisory_xact_lock(hashtext($1))"
                                    : "SELECT pg_advisory_xact_lock_shared(hashtext($1))",
                          1, values, NULL, NULL, 0);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

int cf_crl_lock_revocation(cf_pg_t *pg, int64_t ca_id, bool is_ca)
{
    if (cf_crl_lock(pg, ca_id, CF_SCOPE_ALL, false) != 0)
        return -1;
    return cf_crl_lock(pg, ca_id, is_ca ? CF_SCOPE_CA : CF_SCOPE_USER, false);
}
