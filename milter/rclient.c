/*
 * rclient.c - the lookups' Redis client: MGET and health; see rclient.h
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "mxs.h"
#include "rclient.h"
#include "rendpoint.h"
#include "rpool.h"
#include "rwatch.h"

struct rclient {
    struct rendpoint *ep;
    struct rpool *pool;
    struct rwatch *watch;
};

/*
 * rclient_conf_from_cfg - the client settings of a loaded configuration
 *
 * conf borrows cfg's strings and lists: keep cfg until rclient_create().
 */
void
rclient_conf_from_cfg(struct rclient_conf *conf, const struct cfg *cfg)
{
    memset(conf, 0, sizeof(*conf));
    rendpoint_conf_from_cfg(&conf->server, cfg);
    conf->connections = cfg->redis_connections;
}

/* rclient_create - a client for the configured Redis; connects lazily */
struct rclient *
rclient_create(const struct rclient_conf *conf)
{
    struct rclient *rc = xcalloc(1, sizeof(*rc));

    rc->ep = rendpoint_create(&conf->server);
    rc->pool = rpool_create(rc->ep, conf->connections);
    rc->watch = rwatch_create(rc->ep);
    return rc;
}

/*
 * rclient_create_cfg - a client for the Redis a configuration names
 *
 * The one place that turns redis.* settings into a client, for the daemon
 * and mxswitch-ctl alike.
 */
struct rclient *
rclient_create_cfg(const struct cfg *cfg)
{
    struct rclient_conf rconf;

    rclient_conf_from_cfg(&rconf, cfg);
    return rclient_create(&rconf);
}

/* rclient_free - stop the watcher, close every connection; NULL is ok */
void
rclient_free(struct rclient *rc)
{
    if (rc == NULL)
        return;
    rwatch_free(rc->watch);
    rpool_free(rc->pool);
    rendpoint_free(rc->ep);
    free(rc);
}

/* rclient_endpoint - what the client connects to, for logs (rendpoint.h) */
const char *
rclient_endpoint(const struct rclient *rc)
{
    return rendpoint_name(rc->ep);
}

/* rclient_pool - the pool, for commands of other kinds (rcmd.h) */
struct rpool *
rclient_pool(struct rclient *rc)
{
    return rc->pool;
}

/* rclient_down - whether the last round trip or connect failed */
int
rclient_down(struct rclient *rc)
{
    return rpool_down(rc->pool);
}

/* rclient_empty - whether the database came back empty (rwatch.h) */
int
rclient_empty(struct rclient *rc)
{
    return rwatch_empty(rc->watch);
}

/* mget_argv - "MGET" and the keys: argv for n keys (n + 1), malloc'd */
static const char **
mget_argv(const char *const *keys, size_t n)
{
    const char **argv = xmalloc((n + 1) * sizeof(*argv));

    argv[0] = "MGET";
    memcpy(argv + 1, keys, n * sizeof(*keys));
    return argv;
}

/* mget_reply - an MGET reply of n values into out; consumes r */
static int
mget_reply(struct rclient *rc, redisReply *r, size_t n,
           struct rclient_value *out, char *why, size_t whylen)
{
    size_t i;

    if (r == NULL)
        return MXS_TEMPFAIL;
    if (r->type == REDIS_REPLY_ERROR) {
        mxs_why(why, whylen, "Redis %s: MGET refused: %s",
                rendpoint_name(rc->ep), r->str);
        freeReplyObject(r);
        return MXS_TEMPFAIL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        mxs_why(why, whylen, "Redis %s: unexpected MGET reply",
                rendpoint_name(rc->ep));
        freeReplyObject(r);
        return MXS_TEMPFAIL;
    }
    for (i = 0; i < n; i++) {
        redisReply *e = r->element[i];

        out[i].str = NULL;
        out[i].len = 0;
        if (e->type != REDIS_REPLY_NIL) /* the database held keys */
            rwatch_seen(rc->watch);
        if (e->type == REDIS_REPLY_NIL) {
            out[i].type = RCLIENT_NIL;
        } else if (e->type == REDIS_REPLY_STRING) {
            out[i].type = RCLIENT_STRING;
            out[i].str = xmalloc(e->len + 1);
            memcpy(out[i].str, e->str, e->len);
            out[i].str[e->len] = '\0';
            out[i].len = e->len;
        } else {
            out[i].type = RCLIENT_OTHER;
        }
    }
    freeReplyObject(r);
    return MXS_OK;
}

/*
 * rclient_mget - fetch n keys in one round trip (MGET)
 *
 * On MXS_OK out[0..n) holds each value (NIL when absent, OTHER for a reply
 * of another type); release them with rclient_values_clear().  On
 * MXS_TEMPFAIL why says what failed and out is untouched.
 */
int
rclient_mget(struct rclient *rc, const char *const *keys, size_t n,
             struct rclient_value *out, char *why, size_t whylen)
{
    const char **argv = mget_argv(keys, n);
    redisReply *r = rpool_command(rc->pool, (int)n + 1, argv, why, whylen);

    free(argv);
    return mget_reply(rc, r, n, out, why, whylen);
}

/* rclient_values_clear - free the strings rclient_mget() copied out */
void
rclient_values_clear(struct rclient_value *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].str);
        v[i].str = NULL;
    }
}

/* rclient_ping - check that Redis answers; MXS_OK or MXS_TEMPFAIL */
int
rclient_ping(struct rclient *rc, char *why, size_t whylen)
{
    const char *argv[1] = {"PING"};
    redisReply *r = rpool_command(rc->pool, 1, argv, why, whylen);
    int rcode = MXS_OK;

    if (r == NULL)
        return MXS_TEMPFAIL;
    if (r->type == REDIS_REPLY_ERROR) {
        mxs_why(why, whylen, "PING refused: %s", r->str);
        rcode = MXS_TEMPFAIL;
    }
    freeReplyObject(r);
    return rcode;
}

/* rclient_watch_start - start the watcher (rwatch_start()); from now on
 * every new connection of the lookups is checked for an empty database
 * before its first lookup (rwatch_check_conn()) */
void
rclient_watch_start(struct rclient *rc, const char *const *prefixes, size_t n,
                    rwatch_key_cb on_key, rwatch_reset_cb on_reset, void *arg)
{
    rpool_on_connect(rc->pool, rwatch_check_conn, rc->watch);
    rwatch_start(rc->watch, prefixes, n, on_key, on_reset, arg);
}

/* rclient_watch_stop - stop and join the watcher; no-op if not started */
void
rclient_watch_stop(struct rclient *rc)
{
    rwatch_stop(rc->watch);
}
