/* cf_crl_lock: the PostgreSQL lock that keeps a revocation from slipping past the first CRL of
 * a (CA, scope). A revocation marks the stored CRLs that should list it as stale (the next
 * build lists it); when no CRL of that scope is stored yet there is nothing to mark, so a
 * build that read its entries just before the revocation committed would store a CRL that
 * lacks it and does not know. Therefore a revocation takes this lock shared for every scope
 * that lists it, and a build that finds no stored CRL takes it exclusive before it reads its
 * entries: each waits for the other's commit (bounded by [postgres] lock_timeout_ms). Both hold
 * it until their transaction ends. docs/crl.md "Revocations during a build". */
#ifndef CF_CRL_LOCK_H
#define CF_CRL_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_pg.h"
#include "cf_revocation.h"

/* Take the lock of (CA_ID, SCOPE) in the open transaction, EXCLUSIVE or shared; all shards of
 * the scope share it. 0, or -1 (cf_pg_errstr: a database error or lock_timeout). */
int cf_crl_lock(cf_pg_t *pg, int64_t ca_id, cf_scope_t scope, bool exclusive);

/* The shared locks of a revocation of a certificate (IS_CA false: scopes "all" and "user") or
 * of a CA (scopes "all" and "ca") issued by CA_ID, always in that order so that revocations
 * never wait for each other in a cycle. 0 or -1. */
int cf_crl_lock_revocation(cf_pg_t *pg, int64_t ca_id, bool is_ca);

#endif
