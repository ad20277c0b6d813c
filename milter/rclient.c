/*
 * rclient.c - Redis connection pool and keyspace watcher; see rclient.h
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "mxs.h"
#include "rclient.h"
#include "stats.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCH_POLL_MS  200

struct endpoint {
    char *host; /* NULL for a unix socket */
    char *path; /* NULL for TCP */
    int port;
    char name[300]; /* "host:port", "[v6]:port" or "unix:/path" */
};

struct conn {
    redisContext *ctx; /* NULL until connected */
    char name[400];    /* the server it is connected to, for logs */
    struct conn *next;
};

/*
 * A command on its way: queued, then sent in some thread's round trip.
 * Its thread sleeps on state (a futex, REQ_ASLEEP while it does) until
 * told to lead or done.  Whoever sets REQ_DONE touches the request no
 * more, but for the wake-up call on its address: once its thread sees
 * REQ_DONE, it may return.
 */
enum req_state { REQ_QUEUED, REQ_ASLEEP, REQ_LEAD, REQ_DONE };

struct req {
    int argc;
    const char **argv;
    const size_t *lens;
    redisReply *reply; /* NULL when the round trip failed; why says so */
    char *why;
    size_t whylen;
    int state; /* enum req_state, atomic */
    struct req *next;
};

struct rclient {
    struct rclient_conf conf; /* strings point at the copies below */
    char *username, *password, *master, *sentinel_password;
    struct endpoint *eps; /* the servers, or the Sentinels */
    size_t neps;
    char endpoint[600];

    pthread_mutex_t lock; /* guards everything down to in_use */
    int down;             /* written under lock, read atomically without */
    uint64_t retry_at;
    int backoff_ms;
    size_t cur;       /* the endpoint or Sentinel that answered last */
    char in_use[400]; /* the server connected to last, to log changes */

    pthread_mutex_t qlock;      /* guards everything down to handing */
    struct conn *idle;          /* connections no round trip is using */
    struct req *qhead, **qtail; /* commands waiting for a round trip */
    int inflight; /* round trips under way, at most conf.connections */
    int handing;  /* qhead is told to lead the next one, not awake yet */

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
    int seen_keys; /* watcher thread: the database held keys once */
    int empty;     /* atomic: it holds none now, though it did (restart) */
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
connect_to(const struct rclient *rc, const char *host, int port,
           const char *path, char *why, size_t whylen)
{
    struct timeval tv;
    redisContext *ctx;

    tv.tv_sec = rc->conf.timeout_ms / 1000;
    tv.tv_usec = (rc->conf.timeout_ms % 1000) * 1000;
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
    return ctx;
}

/* open_server - connect, authenticate and select the db */
static redisContext *
open_server(const struct rclient *rc, const char *host, int port,
            const char *path, char *why, size_t whylen)
{
    redisContext *ctx = connect_to(rc, host, port, path, why, whylen);
    char db[16];

    if (ctx == NULL)
        return NULL;
    if (auth(ctx, rc->username, rc->password, why, whylen) != MXS_OK) {
        redisFree(ctx);
        return NULL;
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
open_named(const struct rclient *rc, redisContext *s, int replica, char *name,
           size_t namelen, char *why, size_t whylen)
{
    char host[256], err[400];
    redisContext *ctx;
    int port;

    if (sentinel_addr(s, rc->master, replica, host, sizeof(host), &port, why,
                      whylen) != MXS_OK)
        return NULL;
    snprintf(name, namelen, "%s%s%s:%d (%s of %s)",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
             port, replica ? "replica" : "master", rc->master);
    ctx = open_server(rc, host, port, NULL, err, sizeof(err));
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
ask_sentinel(const struct rclient *rc, const struct endpoint *ep, char *name,
             size_t namelen, char *why, size_t whylen)
{
    redisContext *ctx = NULL;
    redisContext *s = connect_to(rc, ep->host, ep->port, ep->path, why, whylen);

    if (s == NULL)
        return NULL;
    if (auth(s, "", rc->sentinel_password, why, whylen) == MXS_OK) {
        if (rc->conf.prefer_replica)
            ctx = open_named(rc, s, 1, name, namelen, why, whylen);
        if (ctx == NULL)
            ctx = open_named(rc, s, 0, name, namelen, why, whylen);
    }
    redisFree(s);
    return ctx;
}

/*
 * open_ctx - a ready connection: to the endpoint that answered last or the
 * next ones in order, or where the Sentinels point; name says which
 */
static redisContext *
open_ctx(struct rclient *rc, char *name, size_t namelen, char *why,
         size_t whylen)
{
    int sentinel = rc->master[0] != '\0';
    redisContext *ctx = NULL;
    char err[400];
    size_t start, k;

    xlock(&rc->lock);
    start = rc->cur;
    xunlock(&rc->lock);
    for (k = 0; k < rc->neps && ctx == NULL; k++) {
        size_t i = (start + k) % rc->neps;
        const struct endpoint *ep = &rc->eps[i];

        if (sentinel)
            ctx = ask_sentinel(rc, ep, name, namelen, err, sizeof(err));
        else
            ctx =
                open_server(rc, ep->host, ep->port, ep->path, err, sizeof(err));
        if (ctx == NULL) {
            mxs_why(why, whylen, "%s%s%s%s", sentinel ? "sentinel " : "",
                    sentinel || rc->neps > 1 ? ep->name : "",
                    sentinel || rc->neps > 1 ? ": " : "", err);
            continue;
        }
        if (!sentinel)
            snprintf(name, namelen, "%s", ep->name);
        xlock(&rc->lock);
        rc->cur = i;
        xunlock(&rc->lock);
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
    __atomic_store_n(&rc->down, 1, __ATOMIC_RELAXED);
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
    __atomic_store_n(&rc->down, 0, __ATOMIC_RELAXED);
    rc->backoff_ms = 0;
    xunlock(&rc->lock);
}

/* rclient_down - whether the last round trip or connect failed */
int
rclient_down(struct rclient *rc)
{
    return __atomic_load_n(&rc->down, __ATOMIC_RELAXED);
}

/* ensure - connect c unless it is; fails fast during a backoff */
static int
ensure(struct rclient *rc, struct conn *c, char *why, size_t whylen)
{
    uint64_t now;

    if (__atomic_load_n(&rc->down, __ATOMIC_RELAXED)) {
        now = mxs_now_ms();
        xlock(&rc->lock);
        if (rc->down && now < rc->retry_at) {
            mxs_why(why, whylen,
                    "Redis %s unreachable, next attempt in %llu ms",
                    rc->endpoint, (unsigned long long)(rc->retry_at - now));
            xunlock(&rc->lock);
            return MXS_TEMPFAIL;
        }
        xunlock(&rc->lock);
    }
    if (c->ctx != NULL)
        return MXS_OK;
    c->ctx = open_ctx(rc, c->name, sizeof(c->name), why, whylen);
    if (c->ctx == NULL) {
        xlock(&rc->lock);
        mark_down(rc, why);
        xunlock(&rc->lock);
        return MXS_TEMPFAIL;
    }
    mark_up(rc);
    xlock(&rc->lock);
    if (strcmp(rc->in_use, c->name) != 0) {
        log_info("redis: using %s", c->name);
        snprintf(rc->in_use, sizeof(rc->in_use), "%s", c->name);
    }
    xunlock(&rc->lock);
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

/* moved_error - an error reply after which the server may be the wrong one */
static int
moved_error(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "LOADING", 7) == 0 ||
            strncmp(r->str, "MASTERDOWN", 10) == 0 ||
            strncmp(r->str, "READONLY", 8) == 0);
}

/* fail_from - why for requests from r on, when the round trip failed */
static void
fail_from(struct req *r, const char *why)
{
    for (; r != NULL; r = r->next)
        mxs_why(r->why, r->whylen, "%s", why);
}

/*
 * send_batch - send every request of batch in one write on c, read the
 * replies
 *
 * A connection that was idle in the pool may have died with a Redis
 * restart: when no reply came at all, the batch is sent once more on a
 * fresh connection (the commands only read).  A timeout is not retried:
 * it already cost timeout_ms.  A request without a reply gets why.
 */
static void
send_batch(struct rclient *rc, struct conn *c, struct req *batch)
{
    char why[512];
    struct req *r;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        int reused = (c->ctx != NULL), moved = 0, retry, err;

        if (ensure(rc, c, why, sizeof(why)) != MXS_OK) {
            fail_from(batch, why);
            break;
        }
        for (r = batch; r != NULL; r = r->next)
            if (redisAppendCommandArgv(c->ctx, r->argc, r->argv, r->lens) !=
                REDIS_OK)
                fatalx("redis: out of memory");
        for (r = batch; r != NULL; r = r->next) {
            void *reply;

            if (redisGetReply(c->ctx, &reply) != REDIS_OK)
                break;
            r->reply = reply;
            moved |= moved_error(r->reply);
        }
        if (r == NULL) {
            if (moved) { /* ask the Sentinels again next time */
                redisFree(c->ctx);
                c->ctx = NULL;
            }
            mark_up(rc);
            break;
        }
        err = errno;
        if (c->ctx->err == REDIS_ERR_IO &&
            (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS))
            mxs_why(why, sizeof(why), "Redis %s: timed out after %d ms",
                    c->name, rc->conf.timeout_ms);
        else
            mxs_why(why, sizeof(why), "Redis %s: %s", c->name, c->ctx->errstr);
        retry =
            reused && attempt == 0 && r == batch && stale_error(c->ctx, err);
        redisFree(c->ctx);
        c->ctx = NULL;
        if (retry)
            continue;
        fail_from(r, why);
        xlock(&rc->lock);
        mark_down(rc, why);
        xunlock(&rc->lock);
        break;
    }
}

/* set_state - move a request on; wakes its thread if it sleeps */
static void
set_state(struct req *r, int state)
{
    if (__atomic_exchange_n(&r->state, state, __ATOMIC_ACQ_REL) == REQ_ASLEEP)
        syscall(SYS_futex, &r->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* wait_state - sleep until a request is told to lead or is done */
static int
wait_state(struct req *r)
{
    int state = REQ_QUEUED;

    while (state == REQ_QUEUED || state == REQ_ASLEEP) {
        if (state == REQ_ASLEEP ||
            __atomic_compare_exchange_n(&r->state, &state, REQ_ASLEEP, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            syscall(SYS_futex, &r->state, FUTEX_WAIT_PRIVATE, REQ_ASLEEP, NULL,
                    NULL, 0);
        state = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
    }
    return state;
}

/*
 * lead - make one round trip with every queued request
 *
 * Called with qlock held, as one of the inflight round trips, by a thread
 * whose own request is queued; returns with qlock released.  It uses an
 * idle connection, or makes one: so there are never more than
 * conf.connections, one per round trip under way.  Whoever may
 * lead takes the queue at once, under the lock that let it lead, and
 * while a thread is told to lead (handing) nobody else takes the queue,
 * so that thread's request is still there when it wakes.  Afterwards, if
 * more came meanwhile, the first of them is told to lead the next round
 * trip (every thread waits for one round trip at most besides its own),
 * and each request's thread is woken, all without the lock, so threads
 * that queue meanwhile need not wait for the wake-ups.
 */
static void
lead(struct rclient *rc)
{
    struct req *batch = rc->qhead, *next = NULL, *r;
    struct conn *c = rc->idle;

    rc->handing = 0;
    rc->qhead = NULL;
    rc->qtail = &rc->qhead;
    if (c != NULL)
        rc->idle = c->next;
    else
        c = xcalloc(1, sizeof(*c));
    xunlock(&rc->qlock);
    send_batch(rc, c, batch);
    stats_redis_trip();
    xlock(&rc->qlock);
    c->next = rc->idle;
    rc->idle = c;
    if (rc->qhead != NULL && !rc->handing) {
        rc->handing = 1;
        next = rc->qhead;
    } else {
        rc->inflight--;
    }
    xunlock(&rc->qlock);
    if (next != NULL) /* it stays queued, and so alive, until it leads */
        set_state(next, REQ_LEAD);
    for (; batch != NULL; batch = r) {
        r = batch->next; /* batch may be gone once it is REQ_DONE */
        set_state(batch, REQ_DONE);
    }
}

/*
 * run - the n chained requests from first, in one round trip; returns
 * when every one has its reply (or why)
 *
 * All n join the queue at once, so the lead that takes the first takes
 * them all; only the first can be told to lead.  The chain's last next
 * must be NULL.
 */
static void
run(struct rclient *rc, struct req *first, size_t n)
{
    struct req *r, *last = first;
    size_t i;

    for (i = 1; i < n; i++)
        last = last->next;
    xlock(&rc->qlock);
    *rc->qtail = first;
    rc->qtail = &last->next;
    if (!rc->handing && rc->inflight < rc->conf.connections) {
        rc->inflight++;
        lead(rc);
        return;
    }
    xunlock(&rc->qlock);
    if (wait_state(first) == REQ_LEAD) {
        xlock(&rc->qlock);
        lead(rc);
    }
    /* The same round trip as first; count, for once queued, the last one's
     * next is whatever other threads queued after it. */
    for (r = first, i = 1; i < n; i++) {
        r = r->next;
        wait_state(r);
    }
}

/*
 * command - run one command; returns the reply, or NULL with why
 *
 * Commands from all threads share round trips: a thread whose command
 * finds conf.connections round trips under way queues it, and the next
 * round trip sends all that are queued, in one write on one connection,
 * so a busy milter pays the system calls (its own and Redis's) once per
 * round trip rather than once per command.  A lone command goes at once.
 */
static redisReply *
command(struct rclient *rc, int argc, const char **argv, const size_t *lens,
        char *why, size_t whylen)
{
    struct req r = {argc, argv, lens, NULL, why, whylen, REQ_QUEUED, NULL};

    run(rc, &r, 1);
    return r.reply;
}

/*
 * rclient_conf_from_cfg - the client settings of a loaded configuration
 *
 * conf borrows cfg's strings and lists: keep cfg until rclient_create().
 */
void
rclient_conf_from_cfg(struct rclient_conf *conf, const struct cfg *cfg)
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
    conf->connections = cfg->redis_connections;
}

/* set_endpoints - the endpoint list from conf, and its description */
static void
set_endpoints(struct rclient *rc, const struct rclient_conf *conf)
{
    const char *const *specs = conf->servers;
    size_t i, n = conf->nservers, len;
    char one[300];

    if (rc->master[0] != '\0') {
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
        rc->eps = xcalloc(1, sizeof(*rc->eps));
        endpoint_set(&rc->eps[0], one);
        rc->neps = 1;
    } else {
        rc->eps = xcalloc(n, sizeof(*rc->eps));
        for (i = 0; i < n; i++)
            endpoint_set(&rc->eps[i], specs[i]);
        rc->neps = n;
    }
    if (rc->master[0] != '\0')
        snprintf(rc->endpoint, sizeof(rc->endpoint),
                 "master %s%s via sentinel ", rc->master,
                 conf->prefer_replica ? " (replica preferred)" : "");
    for (i = 0; i < rc->neps; i++) {
        len = strlen(rc->endpoint);
        snprintf(rc->endpoint + len, sizeof(rc->endpoint) - len, "%s%s",
                 i ? "," : "", rc->eps[i].name);
    }
    len = strlen(rc->endpoint);
    snprintf(rc->endpoint + len, sizeof(rc->endpoint) - len, " db %d",
             conf->db);
}

/* rclient_create - a pool for the configured Redis; connects lazily */
struct rclient *
rclient_create(const struct rclient_conf *conf)
{
    struct rclient *rc = xcalloc(1, sizeof(*rc));

    rc->conf = *conf;
    rc->username = xstrdup(conf->username ? conf->username : "");
    rc->password = xstrdup(conf->password ? conf->password : "");
    rc->master = xstrdup(conf->sentinel_master ? conf->sentinel_master : "");
    rc->sentinel_password =
        xstrdup(conf->sentinel_password ? conf->sentinel_password : "");
    if (conf->host == NULL)
        rc->conf.host = "127.0.0.1";
    set_endpoints(rc, &rc->conf);
    /* Everything is copied: no pointer into the caller's strings stays. */
    rc->conf.host = rc->conf.unix_path = NULL;
    rc->conf.servers = rc->conf.sentinels = NULL;
    rc->conf.sentinel_master = rc->conf.sentinel_password = NULL;
    rc->conf.username = rc->conf.password = NULL;
    if (rc->conf.connections < 1)
        rc->conf.connections = 1;
    rc->qtail = &rc->qhead;
    if (pthread_mutex_init(&rc->lock, NULL) != 0 ||
        pthread_mutex_init(&rc->qlock, NULL) != 0)
        fatalx("rclient: mutex init failed");
    return rc;
}

/* rclient_free - close every connection; stops the watcher; NULL is ok */
void
rclient_free(struct rclient *rc)
{
    size_t i;

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
    pthread_mutex_destroy(&rc->qlock);
    for (i = 0; i < rc->neps; i++) {
        free(rc->eps[i].host);
        free(rc->eps[i].path);
    }
    free(rc->eps);
    free(rc->username);
    free(rc->password);
    free(rc->master);
    free(rc->sentinel_password);
    free(rc);
}

/*
 * rclient_endpoint - what the pool connects to, for logs: "host:port db N",
 * "unix:/path db N", "h1:p1,h2:p2 db N" or "master M via sentinel h:p,...
 * db N"
 */
const char *
rclient_endpoint(const struct rclient *rc)
{
    return rc->endpoint;
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
    redisReply *r = command(rc, (int)n + 1, argv, NULL, why, whylen);

    free(argv);
    return mget_reply(rc, r, n, out, why, whylen);
}

/*
 * rclient_mget_many - n MGETs in one round trip, each answered on its own
 *
 * For the lookups a message put off to its end: the commands are queued
 * together, so one round trip (one write, one read) carries them all.
 * Each m[i] gets rcode and, on MXS_OK, its values as rclient_mget()
 * gives them; on MXS_TEMPFAIL its why says what failed.
 */
void
rclient_mget_many(struct rclient *rc, struct rclient_mget *m, size_t n)
{
    struct req *reqs;
    size_t i;

    if (n == 0)
        return;
    reqs = xcalloc(n, sizeof(*reqs));
    for (i = 0; i < n; i++) {
        reqs[i].argc = (int)m[i].n + 1;
        reqs[i].argv = mget_argv(m[i].keys, m[i].n);
        reqs[i].why = m[i].why;
        reqs[i].whylen = sizeof(m[i].why);
        reqs[i].state = REQ_QUEUED;
        reqs[i].next = i + 1 < n ? &reqs[i + 1] : NULL;
    }
    run(rc, reqs, n);
    for (i = 0; i < n; i++) {
        m[i].rcode = mget_reply(rc, reqs[i].reply, m[i].n, m[i].out, m[i].why,
                                sizeof(m[i].why));
        free(reqs[i].argv);
    }
    free(reqs);
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
            if (__atomic_exchange_n(&rc->empty, 0, __ATOMIC_RELAXED))
                log_info("redis: a routing key changed: the database is "
                         "no longer taken as empty");
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

/*
 * check_empty - whether the database came back empty: it held keys at an
 * earlier (re)connection, and DBSIZE is 0 now.  A Redis restarted without
 * its data must not turn every remote-mode domain into no key at all.
 */
static void
check_empty(struct rclient *rc, redisContext *ctx)
{
    redisReply *r = redisCommand(ctx, "DBSIZE");
    int empty;

    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        if (r != NULL)
            freeReplyObject(r);
        return;
    }
    empty = r->integer == 0 && rc->seen_keys;
    rc->seen_keys |= r->integer > 0;
    freeReplyObject(r);
    if (empty && !__atomic_exchange_n(&rc->empty, 1, __ATOMIC_RELAXED))
        log_warnx("redis: the database is empty, though it held keys before "
                  "(restarted without its data?): domains keep their last "
                  "known mode up to cache.stale_ttl past their ttl, until "
                  "keys come back");
    else if (!empty && __atomic_exchange_n(&rc->empty, 0, __ATOMIC_RELAXED))
        log_info("redis: the database holds keys again");
}

/* rclient_empty - whether the database came back empty (check_empty) */
int
rclient_empty(struct rclient *rc)
{
    return __atomic_load_n(&rc->empty, __ATOMIC_RELAXED);
}

/* watch_main - the watcher thread: (re)subscribe and listen, forever */
static void *
watch_main(void *arg)
{
    struct rclient *rc = arg;
    int backoff = 0, was_up = 0, warned = 0, said = 0;
    char why[512], name[400];

    while (!stopping(rc)) {
        redisContext *ctx = open_ctx(rc, name, sizeof(name), why, sizeof(why));
        redisReply *r = NULL;

        if (ctx != NULL) {
            const char *argv[WATCH_MAX + 1] = {"PSUBSCRIBE"};
            size_t i;

            for (i = 0; i < rc->nwatch; i++)
                argv[i + 1] = rc->pattern[i];
            check_notify(ctx, &warned);
            check_empty(rc, ctx);
            r = redisCommandArgv(ctx, (int)rc->nwatch + 1, argv, NULL);
            if (r == NULL || r->type == REDIS_REPLY_ERROR)
                mxs_why(why, sizeof(why), "PSUBSCRIBE: %s",
                        r ? r->str : ctx->errstr);
        }
        if (r != NULL && r->type != REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            rc->on_reset(rc->arg);
            log_info("redis: watching %s%s%s for changes on %s", rc->pattern[0],
                     rc->nwatch > 1 ? " and " : "",
                     rc->nwatch > 1 ? rc->pattern[1] : "", name);
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

    rclient_conf_from_cfg(&rconf, cfg);
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
