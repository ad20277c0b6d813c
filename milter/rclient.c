/*
 * rclient.c - Redis connection pool and keyspace watcher; see rclient.h
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "log.h"
#include "mxs.h"
#include "rclient.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCH_POLL_MS  200

struct conn {
    redisContext *ctx; /* NULL until connected */
    struct conn *next;
};

struct rclient {
    struct rclient_conf conf; /* strings point at the copies below */
    char *host, *unix_path, *username, *password;
    char endpoint[300];

    pthread_mutex_t lock; /* guards everything down to backoff_ms */
    pthread_cond_t cond;
    struct conn *idle;
    int total;
    int down;
    uint64_t retry_at;
    int backoff_ms;

    pthread_t watcher;
    int watching;
    int stop; /* atomic */
#define WATCH_MAX 2
    char *chan_prefix[WATCH_MAX]; /* __keyspace@db__:prefix, per prefix */
    char *pattern[WATCH_MAX];     /* the same, glob-escaped, with '*' */
    size_t nwatch;
    rclient_key_cb on_key;
    rclient_reset_cb on_reset;
    void *arg;
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

/* open_ctx - connect, set timeouts, authenticate and select the db */
static redisContext *
open_ctx(struct rclient *rc, char *why, size_t whylen)
{
    struct timeval tv;
    redisContext *ctx;
    char db[16];

    tv.tv_sec = rc->conf.timeout_ms / 1000;
    tv.tv_usec = (rc->conf.timeout_ms % 1000) * 1000;
    if (rc->unix_path[0] != '\0')
        ctx = redisConnectUnixWithTimeout(rc->unix_path, tv);
    else
        ctx = redisConnectWithTimeout(rc->host, rc->conf.port, tv);
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
    if (rc->password[0] != '\0') {
        const char *argv[3] = {"AUTH", rc->username, rc->password};
        int rcode;

        if (rc->username[0] != '\0')
            rcode = simple_command(ctx, 3, argv, why, whylen);
        else {
            argv[1] = rc->password;
            rcode = simple_command(ctx, 2, argv, why, whylen);
        }
        if (rcode != MXS_OK) {
            redisFree(ctx);
            return NULL;
        }
    }
    if (rc->conf.db != 0) {
        const char *argv[2] = {"SELECT", db};

        snprintf(db, sizeof(db), "%d", rc->conf.db);
        if (simple_command(ctx, 2, argv, why, whylen) != MXS_OK) {
            redisFree(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* mark_down - note a failure; logs only the change of state (lock held) */
static void
mark_down(struct rclient *rc, const char *why)
{
    if (!rc->down)
        log_err("redis: %s unreachable: %s; lookups fail until it is back",
                rc->endpoint, why);
    rc->down = 1;
    rc->backoff_ms = rc->backoff_ms ? rc->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (rc->backoff_ms > BACKOFF_MAX_MS)
        rc->backoff_ms = BACKOFF_MAX_MS;
    rc->retry_at = mxs_now_ms() + (uint64_t)rc->backoff_ms;
}

/* mark_up - note a success; logs only the change of state */
static void
mark_up(struct rclient *rc)
{
    if (!__atomic_load_n(&rc->down, __ATOMIC_RELAXED))
        return;
    xlock(&rc->lock);
    if (rc->down)
        log_info("redis: %s is reachable again", rc->endpoint);
    rc->down = 0;
    rc->backoff_ms = 0;
    xunlock(&rc->lock);
}

/* take - a connection of the caller's own; waits while all are in use */
static struct conn *
take(struct rclient *rc)
{
    struct conn *c;

    xlock(&rc->lock);
    while (rc->idle == NULL && rc->total >= rc->conf.connections)
        pthread_cond_wait(&rc->cond, &rc->lock);
    if (rc->idle != NULL) {
        c = rc->idle;
        rc->idle = c->next;
    } else {
        c = xcalloc(1, sizeof(*c));
        rc->total++;
    }
    xunlock(&rc->lock);
    return c;
}

/* give - return a connection to the pool */
static void
give(struct rclient *rc, struct conn *c)
{
    xlock(&rc->lock);
    c->next = rc->idle;
    rc->idle = c;
    pthread_cond_signal(&rc->cond);
    xunlock(&rc->lock);
}

/* ensure - connect c unless it is; fails fast during the backoff */
static int
ensure(struct rclient *rc, struct conn *c, char *why, size_t whylen)
{
    uint64_t now = mxs_now_ms();

    if (c->ctx != NULL)
        return MXS_OK;
    xlock(&rc->lock);
    if (rc->down && now < rc->retry_at) {
        mxs_why(why, whylen, "Redis %s unreachable, next attempt in %llu ms",
                rc->endpoint, (unsigned long long)(rc->retry_at - now));
        xunlock(&rc->lock);
        return MXS_TEMPFAIL;
    }
    xunlock(&rc->lock);
    c->ctx = open_ctx(rc, why, whylen);
    if (c->ctx == NULL) {
        xlock(&rc->lock);
        mark_down(rc, why);
        xunlock(&rc->lock);
        return MXS_TEMPFAIL;
    }
    mark_up(rc);
    return MXS_OK;
}

/* stale_error - whether a failed command may be retried on a new socket */
static int
stale_error(const redisContext *ctx, int err)
{
    return ctx->err == REDIS_ERR_EOF ||
           (ctx->err == REDIS_ERR_IO && err != EAGAIN && err != EWOULDBLOCK &&
            err != EINPROGRESS);
}

/*
 * command - run one command on a pooled connection; returns the reply
 *
 * A connection that was idle in the pool may have died with a Redis
 * restart: such a failure is retried once on a fresh connection.  A
 * timeout is not retried: it already cost timeout_ms.
 */
static redisReply *
command(struct rclient *rc, int argc, const char **argv, const size_t *lens,
        char *why, size_t whylen)
{
    struct conn *c = take(rc);
    redisReply *r = NULL;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        int reused = (c->ctx != NULL);
        int err;

        if (ensure(rc, c, why, whylen) != MXS_OK)
            break;
        r = redisCommandArgv(c->ctx, argc, argv, lens);
        if (r != NULL) {
            mark_up(rc);
            break;
        }
        err = errno;
        if (c->ctx->err == REDIS_ERR_IO &&
            (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS))
            mxs_why(why, whylen, "Redis %s: timed out after %d ms",
                    rc->endpoint, rc->conf.timeout_ms);
        else
            mxs_why(why, whylen, "Redis %s: %s", rc->endpoint, c->ctx->errstr);
        if (reused && attempt == 0 && stale_error(c->ctx, err)) {
            redisFree(c->ctx);
            c->ctx = NULL;
            continue;
        }
        redisFree(c->ctx);
        c->ctx = NULL;
        xlock(&rc->lock);
        mark_down(rc, why);
        xunlock(&rc->lock);
        break;
    }
    give(rc, c);
    return r;
}

/* rclient_create - a pool for one Redis endpoint; connects lazily */
struct rclient *
rclient_create(const struct rclient_conf *conf)
{
    struct rclient *rc = xcalloc(1, sizeof(*rc));

    rc->conf = *conf;
    rc->host = xstrdup(conf->host ? conf->host : "127.0.0.1");
    rc->unix_path = xstrdup(conf->unix_path ? conf->unix_path : "");
    rc->username = xstrdup(conf->username ? conf->username : "");
    rc->password = xstrdup(conf->password ? conf->password : "");
    if (rc->conf.connections < 1)
        rc->conf.connections = 1;
    if (rc->unix_path[0] != '\0')
        snprintf(rc->endpoint, sizeof(rc->endpoint), "unix:%s db %d",
                 rc->unix_path, conf->db);
    else
        snprintf(rc->endpoint, sizeof(rc->endpoint), "%s:%d db %d", rc->host,
                 conf->port, conf->db);
    if (pthread_mutex_init(&rc->lock, NULL) != 0 ||
        pthread_cond_init(&rc->cond, NULL) != 0)
        fatalx("rclient: mutex init failed");
    return rc;
}

/* rclient_free - close every connection; stops the watcher; NULL is ok */
void
rclient_free(struct rclient *rc)
{
    if (rc == NULL)
        return;
    rclient_watch_stop(rc);
    while (rc->idle != NULL) {
        struct conn *c = rc->idle;

        rc->idle = c->next;
        if (c->ctx != NULL)
            redisFree(c->ctx);
        free(c);
    }
    pthread_mutex_destroy(&rc->lock);
    pthread_cond_destroy(&rc->cond);
    free(rc->host);
    free(rc->unix_path);
    free(rc->username);
    free(rc->password);
    free(rc);
}

/* rclient_endpoint - "host:port db N" or "unix:/path db N", for logs */
const char *
rclient_endpoint(const struct rclient *rc)
{
    return rc->endpoint;
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
    const char **argv = xmalloc((n + 1) * sizeof(*argv));
    redisReply *r;
    size_t i;

    argv[0] = "MGET";
    for (i = 0; i < n; i++)
        argv[i + 1] = keys[i];
    r = command(rc, (int)n + 1, argv, NULL, why, whylen);
    free(argv);
    if (r == NULL)
        return MXS_TEMPFAIL;
    if (r->type == REDIS_REPLY_ERROR) {
        mxs_why(why, whylen, "Redis %s: MGET refused: %s", rc->endpoint,
                r->str);
        freeReplyObject(r);
        return MXS_TEMPFAIL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        mxs_why(why, whylen, "Redis %s: unexpected MGET reply", rc->endpoint);
        freeReplyObject(r);
        return MXS_TEMPFAIL;
    }
    for (i = 0; i < n; i++) {
        redisReply *e = r->element[i];

        out[i].str = NULL;
        out[i].len = 0;
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
    redisReply *r = command(rc, 1, argv, NULL, why, whylen);
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

/* stopping - whether rclient_watch_stop() was called */
static int
stopping(struct rclient *rc)
{
    return __atomic_load_n(&rc->stop, __ATOMIC_ACQUIRE);
}

/* nap - sleep up to ms, waking early when the watcher is stopped */
static void
nap(struct rclient *rc, int ms)
{
    struct timespec ts = {0, 50 * 1000000L};

    for (; ms > 0 && !stopping(rc); ms -= 50)
        nanosleep(&ts, NULL);
}

/* check_notify - say once when keyspace notifications are off */
static void
check_notify(redisContext *ctx, int *warned)
{
    redisReply *r = redisCommand(ctx, "CONFIG GET notify-keyspace-events");
    const char *v;

    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        v = r->element[1]->str;
        if (strchr(v, 'K') != NULL &&
            (strchr(v, 'A') != NULL ||
             (strchr(v, '$') != NULL && strchr(v, 'g') != NULL))) {
            *warned = 0;
        } else if (!*warned) {
            log_warnx("redis: keyspace notifications are off "
                      "(notify-keyspace-events \"%s\"): a change takes "
                      "effect within cache.ttl; set it to \"KA\" for "
                      "immediate effect",
                      v);
            *warned = 1;
        }
    } else {
        log_debug("redis: cannot read notify-keyspace-events: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
    }
    freeReplyObject(r);
}

/* handle_event - pass a pmessage's key (minus prefix) to the callback */
static void
handle_event(struct rclient *rc, const redisReply *r)
{
    const redisReply *chan;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "pmessage") != 0)
        return;
    chan = r->element[2];
    if (chan->type != REDIS_REPLY_STRING)
        return;
    for (i = 0; i < rc->nwatch; i++) {
        size_t plen = strlen(rc->chan_prefix[i]);

        if (chan->len >= plen &&
            memcmp(chan->str, rc->chan_prefix[i], plen) == 0) {
            rc->on_key(chan->str + plen, chan->len - plen, rc->arg);
            return;
        }
    }
}

/* listen_loop - read events until the connection fails or we stop */
static void
listen_loop(struct rclient *rc, redisContext *ctx, char *why, size_t whylen)
{
    while (!stopping(rc)) {
        void *reply = NULL;
        struct pollfd pfd;
        int n;

        if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK) {
            mxs_why(why, whylen, "%s", ctx->errstr);
            return;
        }
        if (reply != NULL) {
            handle_event(rc, reply);
            freeReplyObject(reply);
            continue;
        }
        pfd.fd = ctx->fd;
        pfd.events = POLLIN;
        n = poll(&pfd, 1, WATCH_POLL_MS);
        if (n < 0 && errno != EINTR) {
            mxs_why(why, whylen, "poll: %s", strerror(errno));
            return;
        }
        if (n > 0 && redisBufferRead(ctx) != REDIS_OK) {
            mxs_why(why, whylen, "%s",
                    ctx->errstr[0] ? ctx->errstr : "connection closed");
            return;
        }
    }
}

/* watch_main - the watcher thread: (re)subscribe and listen, forever */
static void *
watch_main(void *arg)
{
    struct rclient *rc = arg;
    int backoff = 0, was_up = 0, warned = 0;
    char why[512];

    while (!stopping(rc)) {
        redisContext *ctx = open_ctx(rc, why, sizeof(why));
        redisReply *r = NULL;

        if (ctx != NULL) {
            const char *argv[WATCH_MAX + 1] = {"PSUBSCRIBE"};
            size_t i;

            for (i = 0; i < rc->nwatch; i++)
                argv[i + 1] = rc->pattern[i];
            check_notify(ctx, &warned);
            r = redisCommandArgv(ctx, (int)rc->nwatch + 1, argv, NULL);
            if (r == NULL || r->type == REDIS_REPLY_ERROR)
                mxs_why(why, sizeof(why), "PSUBSCRIBE: %s",
                        r ? r->str : ctx->errstr);
        }
        if (r != NULL && r->type != REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            rc->on_reset(rc->arg);
            log_info("redis: watching %s%s%s for changes", rc->pattern[0],
                     rc->nwatch > 1 ? " and " : "",
                     rc->nwatch > 1 ? rc->pattern[1] : "");
            was_up = 1;
            backoff = 0;
            listen_loop(rc, ctx, why, sizeof(why));
        } else if (r != NULL) {
            freeReplyObject(r);
        }
        if (ctx != NULL)
            redisFree(ctx);
        if (stopping(rc))
            break;
        if (was_up)
            log_warnx("redis: change watcher lost %s: %s; reconnecting "
                      "(cached routes are kept for cache.ttl)",
                      rc->endpoint, why);
        else
            log_debug("redis: change watcher: %s", why);
        was_up = 0;
        backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
        if (backoff > BACKOFF_MAX_MS)
            backoff = BACKOFF_MAX_MS;
        nap(rc, backoff);
    }
    return NULL;
}

/* glob_escape - copy s with Redis glob characters escaped */
static char *
glob_escape(const char *s)
{
    char *out = xmalloc(strlen(s) * 2 + 1);
    char *o = out;

    for (; *s; s++) {
        if (strchr("*?[]\\", *s) != NULL)
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/*
 * rclient_watch_start - follow changes to keys under up to two prefixes
 *
 * prefixes[0..n) must not overlap (none starts with another).  on_key gets
 * the key minus its prefix (not terminated: use len) for every keyspace
 * event on it; on_reset after each (re)subscription.  Both run on the
 * watcher thread.
 */
void
rclient_watch_start(struct rclient *rc, const char *const *prefixes, size_t n,
                    rclient_key_cb on_key, rclient_reset_cb on_reset, void *arg)
{
    char head[32];
    size_t i;
    int err;

    if (n < 1 || n > WATCH_MAX)
        fatalx("rclient: %zu watch prefixes (1-%d allowed)", n, WATCH_MAX);
    snprintf(head, sizeof(head), "__keyspace@%d__:", rc->conf.db);
    for (i = 0; i < n; i++) {
        char *esc = glob_escape(prefixes[i]);
        size_t len = strlen(head) + strlen(prefixes[i]) + 1;

        rc->chan_prefix[i] = xmalloc(len);
        snprintf(rc->chan_prefix[i], len, "%s%s", head, prefixes[i]);
        len = strlen(head) + strlen(esc) + 2;
        rc->pattern[i] = xmalloc(len);
        snprintf(rc->pattern[i], len, "%s%s*", head, esc);
        free(esc);
    }
    rc->nwatch = n;
    rc->on_key = on_key;
    rc->on_reset = on_reset;
    rc->arg = arg;
    __atomic_store_n(&rc->stop, 0, __ATOMIC_RELEASE);
    err = pthread_create(&rc->watcher, NULL, watch_main, rc);
    if (err != 0) {
        errno = err;
        fatal("rclient: cannot start the watcher thread");
    }
    rc->watching = 1;
}

/* rclient_watch_stop - stop and join the watcher; no-op if not started */
void
rclient_watch_stop(struct rclient *rc)
{
    if (!rc->watching)
        return;
    __atomic_store_n(&rc->stop, 1, __ATOMIC_RELEASE);
    pthread_join(rc->watcher, NULL);
    rc->watching = 0;
    while (rc->nwatch > 0) {
        rc->nwatch--;
        free(rc->chan_prefix[rc->nwatch]);
        free(rc->pattern[rc->nwatch]);
        rc->chan_prefix[rc->nwatch] = rc->pattern[rc->nwatch] = NULL;
    }
}

/*
 * rclient_create_cfg - a pool for the Redis endpoint a configuration names
 *
 * The one place that turns redis.* settings into a pool, for the daemon
 * and mxswitch-ctl alike.
 */
struct rclient *
rclient_create_cfg(const struct cfg *cfg)
{
    struct rclient_conf rconf;

    memset(&rconf, 0, sizeof(rconf));
    rconf.host = cfg->redis_host;
    rconf.port = cfg->redis_port;
    rconf.unix_path = cfg->redis_unix;
    rconf.username = cfg->redis_username;
    rconf.password = cfg->redis_password;
    rconf.db = cfg->redis_db;
    rconf.timeout_ms = cfg->redis_timeout_ms;
    rconf.connections = cfg->redis_connections;
    return rclient_create(&rconf);
}

/* copy_reply - copy a hiredis reply (not an error) into out */
static void
copy_reply(const redisReply *r, struct rclient_reply *out)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        out->type = RCLIENT_R_STRING;
        out->str = xmalloc(r->len + 1);
        memcpy(out->str, r->str, r->len);
        out->str[r->len] = '\0';
        out->len = r->len;
        break;
    case REDIS_REPLY_INTEGER:
        out->type = RCLIENT_R_INTEGER;
        out->integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        out->type = RCLIENT_R_ARRAY;
        out->n = r->elements;
        out->elem = xcalloc(r->elements + 1, sizeof(*out->elem));
        for (i = 0; i < r->elements; i++)
            copy_reply(r->element[i], &out->elem[i]);
        break;
    default:
        out->type = RCLIENT_R_NIL;
        break;
    }
}

/*
 * rclient_command - run any command on a pooled connection
 *
 * On MXS_OK out holds the reply (release it with rclient_reply_clear()).
 * MXS_TEMPFAIL: Redis could not be reached or timed out.  MXS_INVALID:
 * Redis answered with an error (why has its text); an error inside an
 * array (EXEC, scripts) is returned the same way.  out is untouched
 * unless MXS_OK.
 */
int
rclient_command(struct rclient *rc, int argc, const char *const *argv,
                struct rclient_reply *out, char *why, size_t whylen)
{
    redisReply *r = command(rc, argc, (const char **)argv, NULL, why, whylen);
    size_t i;

    if (r == NULL)
        return MXS_TEMPFAIL;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR)
            break;
    if (r->type == REDIS_REPLY_ERROR ||
        (r->type == REDIS_REPLY_ARRAY && i < r->elements)) {
        mxs_why(why, whylen, "Redis %s: %s refused: %s", rc->endpoint, argv[0],
                r->type == REDIS_REPLY_ERROR ? r->str : r->element[i]->str);
        freeReplyObject(r);
        return MXS_INVALID;
    }
    copy_reply(r, out);
    freeReplyObject(r);
    return MXS_OK;
}

/* rclient_reply_clear - free what rclient_command() copied out */
void
rclient_reply_clear(struct rclient_reply *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        rclient_reply_clear(&r->elem[i]);
    free(r->elem);
    free(r->str);
    memset(r, 0, sizeof(*r));
}

/* rclient_glob_escape - s with glob characters escaped, for SCAN MATCH */
char *
rclient_glob_escape(const char *s)
{
    return glob_escape(s);
}
