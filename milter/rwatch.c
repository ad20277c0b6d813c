/*
 * rwatch.c - Redis keyspace watcher; see rwatch.h
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mxs.h"
#include "rendpoint.h"
#include "rwatch.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCH_POLL_MS  200
#define WATCH_MAX      2

struct rwatch {
    struct rendpoint *ep; /* borrowed */
    pthread_t thread;
    int watching;
    int stop;                     /* atomic */
    char *chan_prefix[WATCH_MAX]; /* __keyspace@db__:prefix, per prefix */
    char *pattern[WATCH_MAX];     /* the same, glob-escaped, with '*' */
    size_t nwatch;
    rwatch_key_cb on_key;
    rwatch_reset_cb on_reset;
    void *arg;
    int seen_keys; /* atomic: the database held keys once (rwatch_seen()) */
    int empty;     /* atomic: it holds none now, though it did (restart) */
};

/* stopping - whether rwatch_stop() was called */
static int
stopping(struct rwatch *w)
{
    return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE);
}

/* nap - sleep up to ms, waking early when the watcher is stopped */
static void
nap(struct rwatch *w, int ms)
{
    struct timespec ts = {0, 50 * 1000000L};

    for (; ms > 0 && !stopping(w); ms -= 50)
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
handle_event(struct rwatch *w, const redisReply *r)
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
    for (i = 0; i < w->nwatch; i++) {
        size_t plen = strlen(w->chan_prefix[i]);

        if (chan->len >= plen &&
            memcmp(chan->str, w->chan_prefix[i], plen) == 0) {
            rwatch_seen(w);
            if (__atomic_exchange_n(&w->empty, 0, __ATOMIC_RELAXED))
                log_info("redis: a routing key changed: the database is "
                         "no longer taken as empty");
            w->on_key(chan->str + plen, chan->len - plen, w->arg);
            return;
        }
    }
}

/* listen_loop - read events until the connection fails or we stop */
static void
listen_loop(struct rwatch *w, redisContext *ctx, char *why, size_t whylen)
{
    while (!stopping(w)) {
        void *reply = NULL;
        struct pollfd pfd;
        int n;

        if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK) {
            mxs_why(why, whylen, "%s", ctx->errstr);
            return;
        }
        if (reply != NULL) {
            handle_event(w, reply);
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

/*
 * check_empty - whether the database came back empty: it held keys before
 * (rwatch_seen()), and DBSIZE is 0 now.  A Redis restarted without its
 * data must not turn every remote-mode domain into no key at all.
 * MXS_TEMPFAIL with why when the connection failed; an error reply (no
 * +dbsize for an ACL user) tells nothing and changes nothing: MXS_OK.
 */
static int
check_empty(struct rwatch *w, redisContext *ctx, char *why, size_t whylen)
{
    redisReply *r = redisCommand(ctx, "DBSIZE");
    int empty;

    if (r == NULL) {
        mxs_why(why, whylen, "DBSIZE: %s", ctx->errstr);
        return MXS_TEMPFAIL;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return MXS_OK;
    }
    empty = r->integer == 0 && __atomic_load_n(&w->seen_keys, __ATOMIC_RELAXED);
    if (r->integer > 0)
        rwatch_seen(w);
    freeReplyObject(r);
    if (empty && !__atomic_exchange_n(&w->empty, 1, __ATOMIC_RELAXED))
        log_warnx("redis: the database is empty, though it held keys before "
                  "(restarted without its data?): domains keep their last "
                  "known mode up to cache.stale_ttl past their ttl, until "
                  "keys come back");
    else if (!empty && __atomic_exchange_n(&w->empty, 0, __ATOMIC_RELAXED))
        log_info("redis: the database holds keys again");
    return MXS_OK;
}

/*
 * rwatch_check_conn - the empty check on a new connection of the lookups
 * (an rpool_connect_cb, arg the watcher), before its first lookup
 *
 * After an outage the lookups' pool may reconnect before the watcher,
 * both backing off up to 2 s: without it, an MGET on a Redis back empty
 * would answer no key, and its nil would replace the cached mode before
 * the watcher's check.
 */
int
rwatch_check_conn(struct redisContext *ctx, void *arg, char *why, size_t whylen)
{
    return check_empty(arg, ctx, why, whylen);
}

/*
 * rwatch_seen - the database holds keys: DBSIZE said so, or a routing key
 * was seen since (its keyspace event, a lookup's value).  A database that
 * was empty when mxswitch started and got its keys later held keys too.
 */
void
rwatch_seen(struct rwatch *w)
{
    /* Called per lookup that found a key: read before writing, so that
     * the line is not written each time. */
    if (!__atomic_load_n(&w->seen_keys, __ATOMIC_RELAXED))
        __atomic_store_n(&w->seen_keys, 1, __ATOMIC_RELAXED);
}

/* rwatch_empty - whether the database came back empty (check_empty) */
int
rwatch_empty(struct rwatch *w)
{
    return __atomic_load_n(&w->empty, __ATOMIC_RELAXED);
}

/* watch_main - the watcher thread: (re)subscribe and listen, forever */
static void *
watch_main(void *arg)
{
    struct rwatch *w = arg;
    int backoff = 0, was_up = 0, warned = 0, said = 0;
    char why[512], name[400];

    while (!stopping(w)) {
        redisContext *ctx =
            rendpoint_open(w->ep, name, sizeof(name), why, sizeof(why));
        redisReply *r = NULL;

        if (ctx != NULL) {
            const char *argv[WATCH_MAX + 1] = {"PSUBSCRIBE"};
            size_t i;

            for (i = 0; i < w->nwatch; i++)
                argv[i + 1] = w->pattern[i];
            check_notify(ctx, &warned);
            /* A broken connection fails the PSUBSCRIBE too. */
            (void)check_empty(w, ctx, why, sizeof(why));
            r = redisCommandArgv(ctx, (int)w->nwatch + 1, argv, NULL);
            if (r == NULL || r->type == REDIS_REPLY_ERROR)
                mxs_why(why, sizeof(why), "PSUBSCRIBE: %s",
                        r ? r->str : ctx->errstr);
        }
        if (r != NULL && r->type != REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            w->on_reset(w->arg);
            log_info("redis: watching %s%s%s for changes on %s", w->pattern[0],
                     w->nwatch > 1 ? " and " : "",
                     w->nwatch > 1 ? w->pattern[1] : "", name);
            was_up = 1;
            backoff = 0;
            listen_loop(w, ctx, why, sizeof(why));
        } else if (r != NULL) {
            freeReplyObject(r);
        }
        if (ctx != NULL)
            redisFree(ctx);
        if (stopping(w))
            break;
        if (was_up)
            log_warnx("redis: change watcher lost %s: %s; reconnecting "
                      "(cached routes are kept for cache.ttl)",
                      name, why);
        else if (!said)
            log_warnx("redis: change watcher: %s; retrying (until it "
                      "subscribes, a change takes effect within cache.ttl)",
                      why);
        else
            log_debug("redis: change watcher: %s", why);
        said = !was_up;
        was_up = 0;
        backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
        if (backoff > BACKOFF_MAX_MS)
            backoff = BACKOFF_MAX_MS;
        nap(w, backoff);
    }
    return NULL;
}

/* rwatch_glob_escape - s with Redis glob characters escaped (for a PSUBSCRIBE
 * or SCAN MATCH pattern); the caller frees */
char *
rwatch_glob_escape(const char *s)
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
 * rwatch_start - follow changes to keys under up to two prefixes
 *
 * prefixes[0..n) must not overlap (none starts with another).  on_key gets
 * the key minus its prefix (not terminated: use len) for every keyspace
 * event on it; on_reset after each (re)subscription.  Both run on the
 * watcher thread.
 */
void
rwatch_start(struct rwatch *w, const char *const *prefixes, size_t n,
             rwatch_key_cb on_key, rwatch_reset_cb on_reset, void *arg)
{
    char head[32];
    size_t i;
    int err;

    if (n < 1 || n > WATCH_MAX)
        fatalx("rwatch: %zu watch prefixes (1-%d allowed)", n, WATCH_MAX);
    snprintf(head, sizeof(head), "__keyspace@%d__:", rendpoint_db(w->ep));
    for (i = 0; i < n; i++) {
        char *esc = rwatch_glob_escape(prefixes[i]);
        size_t len = strlen(head) + strlen(prefixes[i]) + 1;

        w->chan_prefix[i] = xmalloc(len);
        snprintf(w->chan_prefix[i], len, "%s%s", head, prefixes[i]);
        len = strlen(head) + strlen(esc) + 2;
        w->pattern[i] = xmalloc(len);
        snprintf(w->pattern[i], len, "%s%s*", head, esc);
        free(esc);
    }
    w->nwatch = n;
    w->on_key = on_key;
    w->on_reset = on_reset;
    w->arg = arg;
    __atomic_store_n(&w->stop, 0, __ATOMIC_RELEASE);
    err = pthread_create(&w->thread, NULL, watch_main, w);
    if (err != 0) {
        errno = err;
        fatal("rwatch: cannot start the watcher thread");
    }
    w->watching = 1;
}

/* rwatch_stop - stop and join the watcher; no-op if not started */
void
rwatch_stop(struct rwatch *w)
{
    if (!w->watching)
        return;
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    pthread_join(w->thread, NULL);
    w->watching = 0;
    while (w->nwatch > 0) {
        w->nwatch--;
        free(w->chan_prefix[w->nwatch]);
        free(w->pattern[w->nwatch]);
        w->chan_prefix[w->nwatch] = w->pattern[w->nwatch] = NULL;
    }
}

/* rwatch_create - a watcher for the endpoints of ep, not started */
struct rwatch *
rwatch_create(struct rendpoint *ep)
{
    struct rwatch *w = xcalloc(1, sizeof(*w));

    w->ep = ep;
    return w;
}

/* rwatch_free - stop the watcher and free it; NULL is ok */
void
rwatch_free(struct rwatch *w)
{
    if (w == NULL)
        return;
    rwatch_stop(w);
    free(w);
}
