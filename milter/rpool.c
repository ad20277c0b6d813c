/*
 * rpool.c - Redis connection pool with shared round trips; see rpool.h
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mxs.h"
#include "rendpoint.h"
#include "rpool.h"
#include "stats.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct conn {
    redisContext *ctx; /* NULL until connected */
    char name[400];    /* the server it is connected to, for logs */
    struct conn *next;
};

/*
 * A request on its way: queued, then sent in some thread's round trip.
 * Its thread sleeps on wake until told to lead or done.  Whoever sets
 * REQ_DONE touches the request no more once it releases the request's
 * lock: then its thread may return.
 */
enum req_state { REQ_QUEUED, REQ_LEAD, REQ_DONE };

struct rpool_req {
    int argc;
    const char **argv;
    redisReply *reply; /* NULL when the round trip failed; why says so */
    char *why;
    size_t whylen;
    int state;            /* enum req_state, under lock */
    pthread_mutex_t lock; /* guards state */
    pthread_cond_t wake;  /* state changed */
    struct rpool_req *next;
};

struct rpool {
    struct rendpoint *ep; /* borrowed */
    int connections;

    pthread_mutex_t lock; /* guards everything down to in_use */
    int down;             /* written under lock, read atomically without */
    uint64_t retry_at;
    int backoff_ms;
    char in_use[400]; /* the server connected to last, to log changes */
    rpool_connect_cb on_connect; /* a new connection's check, or NULL */
    void *on_connect_arg;

    pthread_mutex_t qlock;            /* guards everything down to handing */
    struct conn *idle;                /* connections no round trip is using */
    struct rpool_req *qhead, **qtail; /* commands waiting for a round trip */
    int inflight; /* round trips under way, at most connections */
    int handing;  /* qhead is told to lead the next one, not awake yet */
};

/* mark_down - note a failure; logs only the change of state (lock held) */
static void
mark_down(struct rpool *p, const char *why)
{
    if (!p->down)
        log_err("redis: %s unreachable: %s; lookups fail until it is back",
                rendpoint_name(p->ep), why);
    __atomic_store_n(&p->down, 1, __ATOMIC_RELAXED);
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    p->retry_at = mxs_now_ms() + (uint64_t)p->backoff_ms;
}

/* mark_up - note a success; logs only the change of state */
static void
mark_up(struct rpool *p)
{
    if (!__atomic_load_n(&p->down, __ATOMIC_RELAXED))
        return;
    xlock(&p->lock);
    if (p->down)
        log_info("redis: %s is reachable again", rendpoint_name(p->ep));
    __atomic_store_n(&p->down, 0, __ATOMIC_RELAXED);
    p->backoff_ms = 0;
    xunlock(&p->lock);
}

/* rpool_on_connect - run cb on each new connection before its first
 * command (rpool.h); NULL for none */
void
rpool_on_connect(struct rpool *p, rpool_connect_cb cb, void *arg)
{
    xlock(&p->lock);
    p->on_connect = cb;
    p->on_connect_arg = arg;
    xunlock(&p->lock);
}

/* rpool_down - whether the last round trip or connect failed */
int
rpool_down(struct rpool *p)
{
    return __atomic_load_n(&p->down, __ATOMIC_RELAXED);
}

/* check_new - run the rpool_on_connect() check on a new connection */
static int
check_new(struct rpool *p, redisContext *ctx, char *why, size_t whylen)
{
    rpool_connect_cb cb;
    void *arg;

    xlock(&p->lock);
    cb = p->on_connect;
    arg = p->on_connect_arg;
    xunlock(&p->lock);
    return cb == NULL ? MXS_OK : cb(ctx, arg, why, whylen);
}

/* ensure - connect c unless it is; fails fast during a backoff */
static int
ensure(struct rpool *p, struct conn *c, char *why, size_t whylen)
{
    uint64_t now;

    if (__atomic_load_n(&p->down, __ATOMIC_RELAXED)) {
        now = mxs_now_ms();
        xlock(&p->lock);
        if (p->down && now < p->retry_at) {
            mxs_why(
                why, whylen, "Redis %s unreachable, next attempt in %llu ms",
                rendpoint_name(p->ep), (unsigned long long)(p->retry_at - now));
            xunlock(&p->lock);
            return MXS_TEMPFAIL;
        }
        xunlock(&p->lock);
    }
    if (c->ctx != NULL)
        return MXS_OK;
    c->ctx = rendpoint_open(p->ep, c->name, sizeof(c->name), why, whylen);
    if (c->ctx != NULL && check_new(p, c->ctx, why, whylen) != MXS_OK) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (c->ctx == NULL) {
        xlock(&p->lock);
        mark_down(p, why);
        xunlock(&p->lock);
        return MXS_TEMPFAIL;
    }
    mark_up(p);
    xlock(&p->lock);
    if (strcmp(p->in_use, c->name) != 0) {
        log_info("redis: using %s", c->name);
        snprintf(p->in_use, sizeof(p->in_use), "%s", c->name);
    }
    xunlock(&p->lock);
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
fail_from(struct rpool_req *r, const char *why)
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
send_batch(struct rpool *p, struct conn *c, struct rpool_req *batch)
{
    char why[512];
    struct rpool_req *r;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        int reused = (c->ctx != NULL), moved = 0, retry, err;

        if (ensure(p, c, why, sizeof(why)) != MXS_OK) {
            fail_from(batch, why);
            break;
        }
        for (r = batch; r != NULL; r = r->next)
            if (redisAppendCommandArgv(c->ctx, r->argc, r->argv, NULL) !=
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
            mark_up(p);
            break;
        }
        err = errno;
        if (c->ctx->err == REDIS_ERR_IO &&
            (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS))
            mxs_why(why, sizeof(why), "Redis %s: timed out after %d ms",
                    c->name, rendpoint_timeout_ms(p->ep));
        else
            mxs_why(why, sizeof(why), "Redis %s: %s", c->name, c->ctx->errstr);
        retry =
            reused && attempt == 0 && r == batch && stale_error(c->ctx, err);
        redisFree(c->ctx);
        c->ctx = NULL;
        if (retry)
            continue;
        fail_from(r, why);
        xlock(&p->lock);
        mark_down(p, why);
        xunlock(&p->lock);
        break;
    }
}

/* set_state - move a request on; wakes its thread if it sleeps */
static void
set_state(struct rpool_req *r, int state)
{
    /* Signalled under the request's lock: once its thread sees the new
     * state it may return and the request be gone, but it cannot see it
     * before the lock is released. */
    xlock(&r->lock);
    r->state = state;
    pthread_cond_signal(&r->wake);
    xunlock(&r->lock);
}

/* wait_state - sleep until a request is told to lead or is done */
static int
wait_state(struct rpool_req *r)
{
    int state;

    xlock(&r->lock);
    while (r->state == REQ_QUEUED)
        if (pthread_cond_wait(&r->wake, &r->lock) != 0)
            fatalx("rpool: condition wait failed");
    state = r->state;
    xunlock(&r->lock);
    return state;
}

/*
 * lead - make one round trip with every queued request
 *
 * Called with qlock held, as one of the inflight round trips, by a thread
 * whose own request is queued; returns with qlock released.  It uses an
 * idle connection, or makes one: so there are never more than
 * connections, one per round trip under way.  Whoever may lead takes the
 * queue at once, under the lock that let it lead, and while a thread is
 * told to lead (handing) nobody else takes the queue, so that thread's
 * request is still there when it wakes.  Afterwards, if more came
 * meanwhile, the first of them is told to lead the next round trip (every
 * thread waits for one round trip at most besides its own), and each
 * request's thread is woken, all without qlock, so threads that queue
 * meanwhile need not wait for the wake-ups.
 */
static void
lead(struct rpool *p)
{
    struct rpool_req *batch = p->qhead, *next = NULL, *r;
    struct conn *c = p->idle;

    p->handing = 0;
    p->qhead = NULL;
    p->qtail = &p->qhead;
    if (c != NULL)
        p->idle = c->next;
    else
        c = xcalloc(1, sizeof(*c));
    xunlock(&p->qlock);
    send_batch(p, c, batch);
    stats_redis_trip();
    xlock(&p->qlock);
    c->next = p->idle;
    p->idle = c;
    if (p->qhead != NULL && !p->handing) {
        p->handing = 1;
        next = p->qhead;
    } else {
        p->inflight--;
    }
    xunlock(&p->qlock);
    if (next != NULL) /* it stays queued, and so alive, until it leads */
        set_state(next, REQ_LEAD);
    for (; batch != NULL; batch = r) {
        r = batch->next; /* batch may be gone once it is REQ_DONE */
        set_state(batch, REQ_DONE);
    }
}

/*
 * rpool_command - run one command; returns the reply, or NULL with why
 *
 * Commands from all threads share round trips: a thread whose command
 * finds `connections` round trips under way queues it, and the next round
 * trip sends all that are queued, in one write on one connection, so a
 * busy milter pays the system calls (its own and Redis's) once per round
 * trip rather than once per command.  A lone command goes at once.
 */
struct redisReply *
rpool_command(struct rpool *p, int argc, const char **argv, char *why,
              size_t whylen)
{
    struct rpool_req r = {argc,
                          argv,
                          NULL,
                          why,
                          whylen,
                          REQ_QUEUED,
                          PTHREAD_MUTEX_INITIALIZER,
                          PTHREAD_COND_INITIALIZER,
                          NULL};

    xlock(&p->qlock);
    *p->qtail = &r;
    p->qtail = &r.next;
    if (!p->handing && p->inflight < p->connections) {
        p->inflight++;
        lead(p);
    } else {
        xunlock(&p->qlock);
        if (wait_state(&r) == REQ_LEAD) {
            xlock(&p->qlock);
            lead(p);
        }
    }
    pthread_cond_destroy(&r.wake);
    pthread_mutex_destroy(&r.lock);
    return r.reply;
}

/* rpool_create - a pool for the endpoints of ep; connects lazily */
struct rpool *
rpool_create(struct rendpoint *ep, int connections)
{
    struct rpool *p = xcalloc(1, sizeof(*p));

    p->ep = ep;
    p->connections = connections < 1 ? 1 : connections;
    p->qtail = &p->qhead;
    if (pthread_mutex_init(&p->lock, NULL) != 0 ||
        pthread_mutex_init(&p->qlock, NULL) != 0)
        fatalx("rpool: mutex init failed");
    return p;
}

/* rpool_free - close every connection; NULL is ok.  No command may be
 * under way. */
void
rpool_free(struct rpool *p)
{
    if (p == NULL)
        return;
    while (p->idle != NULL) {
        struct conn *c = p->idle;

        p->idle = c->next;
        if (c->ctx != NULL)
            redisFree(c->ctx);
        free(c);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->qlock);
    free(p);
}
