/*
 * rendpoint.c - Redis endpoints, Sentinel and connecting; see rendpoint.h
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "mxs.h"
#include "rendpoint.h"

struct endpoint {
    char *host; /* NULL for a unix socket */
    char *path; /* NULL for TCP */
    int port;
    char name[300]; /* "host:port", "[v6]:port" or "unix:/path" */
};

struct rendpoint {
    struct rendpoint_conf conf; /* strings point at the copies below */
    char *username, *password, *master, *sentinel_password;
    struct endpoint *eps; /* the servers, or the Sentinels */
    size_t neps;
    size_t cur; /* atomic: the endpoint or Sentinel that answered last */
    char name[600];
};

/* simple_command - run a command whose reply is only checked for errors */
static int
simple_command(redisContext *ctx, int argc, const char **argv, char *why,
               size_t whylen)
{
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);

    if (r == NULL) {
        mxs_why(why, whylen, "%s: %s", argv[0], ctx->errstr);
        return MXS_TEMPFAIL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        mxs_why(why, whylen, "%s refused: %s", argv[0], r->str);
        freeReplyObject(r);
        return MXS_TEMPFAIL;
    }
    freeReplyObject(r);
    return MXS_OK;
}

/* auth - AUTH [username] password unless password is empty */
static int
auth(redisContext *ctx, const char *username, const char *password, char *why,
     size_t whylen)
{
    const char *argv[3] = {"AUTH", username, password};

    if (password[0] == '\0')
        return MXS_OK;
    if (username[0] != '\0')
        return simple_command(ctx, 3, argv, why, whylen);
    argv[1] = password;
    return simple_command(ctx, 2, argv, why, whylen);
}

/* endpoint_set - fill ep from a spec cfg_check_endpoint() accepted */
static void
endpoint_set(struct endpoint *ep, const char *spec)
{
    const char *path = cfg_unix_path(spec);
    const char *colon;

    memset(ep, 0, sizeof(*ep));
    if (path != NULL) {
        ep->path = xstrdup(path);
        snprintf(ep->name, sizeof(ep->name), "unix:%s", path);
        return;
    }
    colon = strrchr(spec, ':');
    if (spec[0] == '[' && strchr(spec, ']') != NULL) {
        const char *close = strchr(spec, ']');

        ep->host = xstrndup(spec + 1, (size_t)(close - spec - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
    } else if (colon != NULL) {
        ep->host = xstrndup(spec, (size_t)(colon - spec));
    } else {
        ep->host = xstrdup(spec);
    }
    ep->port = colon != NULL ? atoi(colon + 1) : 6379;
    snprintf(ep->name, sizeof(ep->name), "%s", spec);
}

/* connect_to - a connection with timeouts set; NULL with why on failure */
static redisContext *
connect_to(const struct rendpoint *re, const char *host, int port,
           const char *path, char *why, size_t whylen)
{
    struct timeval tv;
    redisContext *ctx;

    tv.tv_sec = re->conf.timeout_ms / 1000;
    tv.tv_usec = (re->conf.timeout_ms % 1000) * 1000;
    if (path != NULL)
        ctx = redisConnectUnixWithTimeout(path, tv);
    else
        ctx = redisConnectWithTimeout(host, port, tv);
    if (ctx == NULL) {
        mxs_why(why, whylen, "cannot allocate a Redis context");
        return NULL;
    }
    if (ctx->err) {
        mxs_why(why, whylen, "connect: %s", ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        mxs_why(why, whylen, "cannot set timeout: %s", ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    /* TCP keepalive (hiredis's: probes after 15 s idle): the watcher only
     * waits for input, and a Redis host that vanished without a reset
     * (rebooted, a NAT or firewall dropping the idle connection) would
     * leave it waiting for ever, its notifications and empty check gone. */
    if (path == NULL && redisEnableKeepAlive(ctx) != REDIS_OK) {
        mxs_why(why, whylen, "cannot set TCP keepalive: %s", ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

/* open_server - connect, authenticate and select the db */
static redisContext *
open_server(const struct rendpoint *re, const char *host, int port,
            const char *path, char *why, size_t whylen)
{
    redisContext *ctx = connect_to(re, host, port, path, why, whylen);
    char db[16];

    if (ctx == NULL)
        return NULL;
    if (auth(ctx, re->username, re->password, why, whylen) != MXS_OK) {
        redisFree(ctx);
        return NULL;
    }
    if (re->conf.db != 0) {
        const char *argv[2] = {"SELECT", db};

        snprintf(db, sizeof(db), "%d", re->conf.db);
        if (simple_command(ctx, 2, argv, why, whylen) != MXS_OK) {
            redisFree(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* str_is - whether a reply is a string equal to s */
static int
str_is(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && strcmp(r->str, s) == 0;
}

/* field - the value of name in a flat name/value array reply, or "" */
static const char *
field(const redisReply *m, const char *name)
{
    size_t i;

    if (m->type != REDIS_REPLY_ARRAY)
        return "";
    for (i = 0; i + 1 < m->elements; i += 2)
        if (str_is(m->element[i], name) &&
            m->element[i + 1]->type == REDIS_REPLY_STRING)
            return m->element[i + 1]->str;
    return "";
}

/* healthy_replica - a SENTINEL replicas entry that is up and in sync */
static int
healthy_replica(const redisReply *m)
{
    const char *flags = field(m, "flags");

    return strstr(flags, "s_down") == NULL && strstr(flags, "o_down") == NULL &&
           strstr(flags, "disconnected") == NULL &&
           strcmp(field(m, "master-link-status"), "ok") == 0 &&
           field(m, "ip")[0] != '\0' && atoi(field(m, "port")) > 0;
}

/*
 * sentinel_addr - where a Sentinel says the master (or a replica) is
 *
 * MXS_OK with host and port set, MXS_NOMATCH when it knows no such server,
 * MXS_TEMPFAIL when it did not answer; why says which.
 */
static int
sentinel_addr(redisContext *s, const char *master, int replica, char *host,
              size_t hostlen, int *port, char *why, size_t whylen)
{
    const char *argv[3] = {
        "SENTINEL", replica ? "replicas" : "get-master-addr-by-name", master};
    redisReply *r = redisCommandArgv(s, 3, argv, NULL);
    int rcode = MXS_NOMATCH;
    size_t i;

    if (r == NULL) {
        mxs_why(why, whylen, "SENTINEL: %s", s->errstr);
        return MXS_TEMPFAIL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        mxs_why(why, whylen, "SENTINEL refused: %s", r->str);
        rcode = MXS_TEMPFAIL;
    } else if (replica && r->type == REDIS_REPLY_ARRAY) {
        mxs_why(why, whylen, "no replica of %s is up and in sync", master);
        for (i = 0; i < r->elements && rcode != MXS_OK; i++)
            if (healthy_replica(r->element[i])) {
                snprintf(host, hostlen, "%s", field(r->element[i], "ip"));
                *port = atoi(field(r->element[i], "port"));
                rcode = MXS_OK;
            }
    } else if (!replica && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(host, hostlen, "%s", r->element[0]->str);
        *port = atoi(r->element[1]->str);
        rcode = MXS_OK;
    } else {
        mxs_why(why, whylen, "the Sentinel knows no master %s", master);
    }
    freeReplyObject(r);
    return rcode;
}

/* check_role - whether ROLE says the server is a master or a live replica */
static int
check_role(redisContext *ctx, int replica, char *why, size_t whylen)
{
    redisReply *r = redisCommand(ctx, "ROLE");
    const char *want = replica ? "slave" : "master";
    int rcode = MXS_TEMPFAIL;

    if (r == NULL) {
        mxs_why(why, whylen, "ROLE: %s", ctx->errstr);
        return MXS_TEMPFAIL;
    }
    if (r->type == REDIS_REPLY_ERROR)
        mxs_why(why, whylen, "ROLE refused: %s", r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
             !str_is(r->element[0], want))
        mxs_why(why, whylen, "ROLE is not %s (the Sentinel is behind)", want);
    else if (replica &&
             (r->elements < 4 || !str_is(r->element[3], "connected")))
        mxs_why(why, whylen, "replica not connected to its master");
    else
        rcode = MXS_OK;
    freeReplyObject(r);
    return rcode;
}

/* open_named - open_server() on what a Sentinel named, checked with ROLE */
static redisContext *
open_named(const struct rendpoint *re, redisContext *s, int replica, char *name,
           size_t namelen, char *why, size_t whylen)
{
    char host[256], err[400];
    redisContext *ctx;
    int port;

    if (sentinel_addr(s, re->master, replica, host, sizeof(host), &port, why,
                      whylen) != MXS_OK)
        return NULL;
    snprintf(name, namelen, "%s%s%s:%d (%s of %s)",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
             port, replica ? "replica" : "master", re->master);
    ctx = open_server(re, host, port, NULL, err, sizeof(err));
    if (ctx != NULL && check_role(ctx, replica, err, sizeof(err)) != MXS_OK) {
        redisFree(ctx);
        ctx = NULL;
    }
    if (ctx == NULL)
        mxs_why(why, whylen, "%s: %s", name, err);
    return ctx;
}

/* ask_sentinel - connect where the Sentinel at ep points */
static redisContext *
ask_sentinel(const struct rendpoint *re, const struct endpoint *ep, char *name,
             size_t namelen, char *why, size_t whylen)
{
    redisContext *ctx = NULL;
    redisContext *s = connect_to(re, ep->host, ep->port, ep->path, why, whylen);

    if (s == NULL)
        return NULL;
    if (auth(s, "", re->sentinel_password, why, whylen) == MXS_OK) {
        if (re->conf.prefer_replica)
            ctx = open_named(re, s, 1, name, namelen, why, whylen);
        if (ctx == NULL)
            ctx = open_named(re, s, 0, name, namelen, why, whylen);
    }
    redisFree(s);
    return ctx;
}

/*
 * rendpoint_open - a ready connection: to the endpoint that answered last
 * or the next ones in order, or where the Sentinels point; name says
 * which.  NULL with why when none answered.
 */
struct redisContext *
rendpoint_open(struct rendpoint *re, char *name, size_t namelen, char *why,
               size_t whylen)
{
    int sentinel = re->master[0] != '\0';
    redisContext *ctx = NULL;
    char err[400];
    size_t start, k;

    start = __atomic_load_n(&re->cur, __ATOMIC_RELAXED);
    for (k = 0; k < re->neps && ctx == NULL; k++) {
        size_t i = (start + k) % re->neps;
        const struct endpoint *ep = &re->eps[i];

        if (sentinel)
            ctx = ask_sentinel(re, ep, name, namelen, err, sizeof(err));
        else
            ctx =
                open_server(re, ep->host, ep->port, ep->path, err, sizeof(err));
        if (ctx == NULL) {
            mxs_why(why, whylen, "%s%s%s%s", sentinel ? "sentinel " : "",
                    sentinel || re->neps > 1 ? ep->name : "",
                    sentinel || re->neps > 1 ? ": " : "", err);
            continue;
        }
        if (!sentinel)
            snprintf(name, namelen, "%s", ep->name);
        __atomic_store_n(&re->cur, i, __ATOMIC_RELAXED);
    }
    return ctx;
}

/*
 * rendpoint_conf_from_cfg - the connection settings of a loaded configuration
 *
 * conf borrows cfg's strings and lists: keep cfg until rendpoint_create().
 */
void
rendpoint_conf_from_cfg(struct rendpoint_conf *conf, const struct cfg *cfg)
{
    memset(conf, 0, sizeof(*conf));
    conf->host = cfg->redis_host;
    conf->port = cfg->redis_port;
    conf->unix_path = cfg->redis_unix;
    conf->servers = (const char *const *)cfg->redis_servers.v;
    conf->nservers = cfg->redis_servers.n;
    conf->sentinel_master = cfg->sentinel_master;
    conf->sentinels = (const char *const *)cfg->sentinel_servers.v;
    conf->nsentinels = cfg->sentinel_servers.n;
    conf->sentinel_password = cfg->sentinel_password;
    conf->prefer_replica = cfg->sentinel_prefer_replica;
    conf->username = cfg->redis_username;
    conf->password = cfg->redis_password;
    conf->db = cfg->redis_db;
    conf->timeout_ms = cfg->redis_timeout_ms;
}

/* set_endpoints - the endpoint list from conf, and its description */
static void
set_endpoints(struct rendpoint *re, const struct rendpoint_conf *conf)
{
    const char *const *specs = conf->servers;
    size_t i, n = conf->nservers, len;
    char one[300];

    if (re->master[0] != '\0') {
        specs = conf->sentinels;
        n = conf->nsentinels;
    }
    if (n == 0) {
        if (conf->unix_path != NULL && conf->unix_path[0] != '\0')
            snprintf(one, sizeof(one), "unix:%s", conf->unix_path);
        else
            snprintf(one, sizeof(one), "%s%s%s:%d",
                     strchr(conf->host, ':') ? "[" : "", conf->host,
                     strchr(conf->host, ':') ? "]" : "", conf->port);
        re->eps = xcalloc(1, sizeof(*re->eps));
        endpoint_set(&re->eps[0], one);
        re->neps = 1;
    } else {
        re->eps = xcalloc(n, sizeof(*re->eps));
        for (i = 0; i < n; i++)
            endpoint_set(&re->eps[i], specs[i]);
        re->neps = n;
    }
    if (re->master[0] != '\0')
        snprintf(re->name, sizeof(re->name), "master %s%s via sentinel ",
                 re->master,
                 conf->prefer_replica ? " (replica preferred)" : "");
    for (i = 0; i < re->neps; i++) {
        len = strlen(re->name);
        snprintf(re->name + len, sizeof(re->name) - len, "%s%s", i ? "," : "",
                 re->eps[i].name);
    }
    len = strlen(re->name);
    snprintf(re->name + len, sizeof(re->name) - len, " db %d", conf->db);
}

/* rendpoint_create - the endpoints of conf; connects to nothing yet */
struct rendpoint *
rendpoint_create(const struct rendpoint_conf *conf)
{
    struct rendpoint *re = xcalloc(1, sizeof(*re));

    re->conf = *conf;
    re->username = xstrdup(conf->username ? conf->username : "");
    re->password = xstrdup(conf->password ? conf->password : "");
    re->master = xstrdup(conf->sentinel_master ? conf->sentinel_master : "");
    re->sentinel_password =
        xstrdup(conf->sentinel_password ? conf->sentinel_password : "");
    if (conf->host == NULL)
        re->conf.host = "127.0.0.1";
    set_endpoints(re, &re->conf);
    /* Everything is copied: no pointer into the caller's strings stays. */
    re->conf.host = re->conf.unix_path = NULL;
    re->conf.servers = re->conf.sentinels = NULL;
    re->conf.sentinel_master = re->conf.sentinel_password = NULL;
    re->conf.username = re->conf.password = NULL;
    return re;
}

/* rendpoint_free - free the endpoints; NULL is ok */
void
rendpoint_free(struct rendpoint *re)
{
    size_t i;

    if (re == NULL)
        return;
    for (i = 0; i < re->neps; i++) {
        free(re->eps[i].host);
        free(re->eps[i].path);
    }
    free(re->eps);
    free(re->username);
    free(re->password);
    free(re->master);
    free(re->sentinel_password);
    free(re);
}

/*
 * rendpoint_name - what a connection goes to, for logs: "host:port db N",
 * "unix:/path db N", "h1:p1,h2:p2 db N" or "master M via sentinel h:p,...
 * db N"
 */
const char *
rendpoint_name(const struct rendpoint *re)
{
    return re->name;
}

/* rendpoint_db - the database number connections select */
int
rendpoint_db(const struct rendpoint *re)
{
    return re->conf.db;
}

/* rendpoint_timeout_ms - the bound of every connect, read and write */
int
rendpoint_timeout_ms(const struct rendpoint *re)
{
    return re->conf.timeout_ms;
}
