/* cf_test_jobs: jobs and SQL one-liners for integration tests (cf_test_jobs.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cf_msgpack.h"
#include "cf_test_jobs.h"

void cf_test_pack_params(msgpack_sbuffer *buf, const json_t *params, const void *csr,
                         size_t csr_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, json_object_size(params) + (csr ? 1 : 0));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)params, key, value)
    {
        cf_msgpack_pack_cstr(&pk, key);
        assert_int_equal(cf_json_to_msgpack(value, &pk), 0);
    }
    if (csr) {
        cf_msgpack_pack_cstr(&pk, "csr");
        msgpack_pack_bin(&pk, csr_len);
        msgpack_pack_bin_body(&pk, csr, csr_len);
    }
}

cf_reply_t *cf_test_call(cf_client_t *client, const char *type, json_t *params, const void *csr,
                         size_t csr_len)
{
    assert_non_null(params);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_test_pack_params(&buf, params, csr, csr_len);
    json_decref(params);
    cf_reply_t *r = cf_client_call(client, type, buf.data, buf.size, 0);
    msgpack_sbuffer_destroy(&buf);
    assert_non_null(r);
    return r;
}

void cf_test_assert_ok(const cf_reply_t *r, const char *what)
{
    if (!cf_reply_ok(r)) {
        const cf_error_t *e = cf_reply_error(r);
        fail_msg("%s: %s (field \"%s\"): %s", what, e->code, e->field, e->message);
    }
}

char *cf_test_query(cf_pg_t *pg, const char *sql)
{
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    if (!res)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
    char *v = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return v;
}

long cf_test_count(cf_pg_t *pg, const char *sql)
{
    char *v = cf_test_query(pg, sql);
    long n = atol(v);
    free(v);
    return n;
}

void cf_test_sql(cf_pg_t *pg, const char *sql)
{
    if (cf_pg_exec(pg, sql) != 0)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
}
