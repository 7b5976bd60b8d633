/* cf_test: shared helpers for unit and integration tests. */
#include "cf_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *cf_test_pg_admin(void)
{
    return getenv("CERTFLEET_TEST_PG");
}

static int s_admin_exec(const char *sql)
{
    const char *admin = cf_test_pg_admin();
    if (!admin)
        return -1;
    PGconn *conn = PQconnectdb(admin);
    int rc = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            rc = 0;
        else
            fprintf(stderr, "cf_test: %s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
    } else {
        fprintf(stderr, "cf_test: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return rc;
}

/* A conninfo value in single quotes, with ' and \\ escaped as libpq wants. */
static void s_quote(char *out, size_t len, const char *value)
{
    size_t n = 0;
    out[n++] = '\'';
    for (const char *p = value; *p && n + 4 < len; p++) {
        if (*p == '\'' || *p == '\\')
            out[n++] = '\\';
        out[n++] = *p;
    }
    out[n++] = '\'';
    out[n] = '\0';
}

int cf_test_pg_create_db(const char *prefix, char *conninfo_out, size_t len)
{
    const char *admin = cf_test_pg_admin();
    if (!admin)
        return -1;
    unsigned r;
    RAND_bytes((unsigned char *)&r, sizeof r);
    char name[96], sql[200];
    snprintf(name, sizeof name, "%s_%d_%08x", prefix, (int)getpid(), r);
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    if (s_admin_exec(sql) != 0)
        return -1;
    /* Same server and user as the admin conninfo, another database. */
    PQconninfoOption *opts = PQconninfoParse(admin, NULL);
    size_t n = 0;
    conninfo_out[0] = '\0';
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || strcmp(o->keyword, "dbname") == 0)
            continue;
        char quoted[512];
        s_quote(quoted, sizeof quoted, o->val);
        n +=
            (size_t)snprintf(conninfo_out + n, n < len ? len - n : 0, "%s=%s ", o->keyword, quoted);
    }
    PQconninfoFree(opts);
    n += (size_t)snprintf(conninfo_out + n, n < len ? len - n : 0, "dbname='%s'", name);
    return n < len ? 0 : -1;
}

void cf_test_pg_drop_db(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *db = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    if (db) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db);
        s_admin_exec(sql);
    }
    PQconninfoFree(opts);
}

int cf_test_redis(char *host, size_t hostlen, int *port)
{
    const char *env = getenv("CERTFLEET_TEST_REDIS");
    if (!env)
        return -1;
    const char *colon = strrchr(env, ':');
    if (!colon)
        return -1;
    snprintf(host, hostlen, "%.*s", (int)(colon - env), env);
    *port = atoi(colon + 1);
    return *port > 0 ? 0 : -1;
}

int cf_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &alen) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

const char *cf_test_source_dir(void)
{
    const char *env = getenv("CF_SOURCE_DIR");
    return env ? env : CF_SOURCE_DIR;
}

pid_t cf_test_spawn(const char *logfile, const char *const *env_extra, const char *prog, ...)
{
    /* Everything the child needs is built before fork: between fork and exec only
     * async-signal-safe calls are allowed (the test may have threads). */
    char path[4096];
    const char *bindir = getenv("CF_BIN_DIR") ? getenv("CF_BIN_DIR") : CF_BIN_DIR;
    if (strchr(prog, '/'))
        snprintf(path, sizeof path, "%s", prog);
    else
        snprintf(path, sizeof path, "%s/%s", bindir, prog);
    const char *argv[64];
    int argc = 0;
    argv[argc++] = path;
    va_list ap;
    va_start(ap, prog);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    size_t nenv = 0, nextra = 0;
    while (environ[nenv])
        nenv++;
    while (env_extra && env_extra[nextra])
        nextra++;
    const char **envp = calloc(nenv + nextra + 1, sizeof *envp);
    if (!envp)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < nenv; i++) {
        /* An extra "K=V" replaces the inherited K. */
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < nextra && !replaced; j++)
            replaced = strncmp(environ[i], env_extra[j], klen) == 0;
        if (!replaced)
            envp[m++] = environ[i];
    }
    for (size_t j = 0; j < nextra; j++)
        envp[m++] = env_extra[j];
    envp[m] = NULL;
    int fd = open(logfile ? logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "cf_test: could not open log file \"%s\": %s\n", logfile, strerror(errno));
        free(envp);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Nothing may outlive the test, whatever way the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(path, (char *const *)argv, (char *const *)envp);
        static const char msg[] = "cf_test: exec failed\n";
        if (write(2, msg, sizeof msg - 1) < 0) {
        }
        _exit(127);
    }
    close(fd);
    free(envp);
    return pid;
}

int cf_test_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 0;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

int cf_test_kill(pid_t pid, int sig)
{
    if (pid <= 0)
        return -1;
    int status;
    if (kill(pid, sig) != 0)
        return cf_test_wait_exit(pid, 0, &status);
    if (sig == SIGSTOP || sig == SIGCONT)
        return 0;
    if (cf_test_wait_exit(pid, 10000, &status) == 0)
        return 0;
    kill(pid, SIGKILL);
    return cf_test_wait_exit(pid, 10000, &status);
}
