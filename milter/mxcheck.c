/*
 * mxcheck.c - does a domain's best MX point back to this host; see mxcheck.h
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "dns.h"
#include "domain.h"
#include "log.h"
#include "mxcheck.h"
#include "mxs.h"

struct job {
    char domain[DOMAIN_MAX + 1];
    char qid[64];
};

struct mxcheck {
    struct dns *dns;      /* borrowed */
    struct cache *seen;   /* domain -> MXCHECK_HERE or MXCHECK_ELSEWHERE */
    pthread_mutex_t lock; /* guards the queue and stop */
    pthread_cond_t cond;
    struct job queue[MXCHECK_QUEUE];
    size_t head, count;
    int stop;
    time_t second; /* CLOCK_MONOTONIC second of the checks counted in used */
    int used;
    pthread_t worker;
};

static void *worker_main(void *arg);

/* mxcheck_create - an empty memory of answers and a waiting worker */
struct mxcheck *
mxcheck_create(struct dns *dns)
{
    struct mxcheck *m = xcalloc(1, sizeof(*m));
    int err;

    pthread_condattr_t ca;

    m->dns = dns;
    m->seen = cache_create(10000, MXCHECK_TTL_MS);
    if (pthread_mutex_init(&m->lock, NULL) != 0 ||
        pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&m->cond, &ca) != 0)
        fatalx("mxcheck: mutex init failed");
    pthread_condattr_destroy(&ca);
    err = pthread_create(&m->worker, NULL, worker_main, m);
    if (err != 0) {
        errno = err;
        fatal("mxcheck: cannot start the worker thread");
    }
    return m;
}

/* mxcheck_free - stop the worker and release everything; NULL is a no-op */
void
mxcheck_free(struct mxcheck *m)
{
    if (m == NULL)
        return;
    xlock(&m->lock);
    m->stop = 1;
    pthread_cond_signal(&m->cond);
    xunlock(&m->lock);
    pthread_join(m->worker, NULL);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    cache_free(m->seen);
    free(m);
}

/*
 * mxcheck_remote - for a domain about to go remote: is its MX this host?
 *
 * MXCHECK_HERE (with the DNS evidence) only on a fresh answer;
 * MXCHECK_KNOWN when the domain was checked within MXCHECK_TTL_MS.
 */
enum mxcheck_result
mxcheck_remote(struct mxcheck *m, const char *domain, uint64_t now_ms,
               char *evidence, size_t evlen)
{
    uint64_t gen = cache_generation(m->seen);
    enum route_mode mode;
    char why[256];
    int here;

    if (cache_get(m->seen, domain, now_ms) != CACHE_MISS)
        return MXCHECK_KNOWN;
    here = dns_auto_mode(m->dns, domain, now_ms, &mode, evidence, evlen, NULL,
                         why, sizeof(why)) == MXS_OK &&
           mode == ROUTE_LOCAL;
    cache_put(m->seen, domain, here ? MXCHECK_HERE : MXCHECK_ELSEWHERE, now_ms,
              gen);
    return here ? MXCHECK_HERE : MXCHECK_ELSEWHERE;
}

/* pace - count a check, first waiting for the next second when this one
 * has had MXCHECK_PER_SEC; lock held.  Whether to stop instead. */
static int
pace(struct mxcheck *m)
{
    struct timespec now, next = {0, 0};

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec != m->second) {
            m->second = now.tv_sec;
            m->used = 0;
        }
        if (m->stop || m->used < MXCHECK_PER_SEC)
            break;
        next.tv_sec = m->second + 1;
        pthread_cond_timedwait(&m->cond, &m->lock, &next);
    }
    m->used++;
    return m->stop;
}

/* worker_main - check queued domains one by one, warn about those here */
static void *
worker_main(void *arg)
{
    struct mxcheck *m = arg;
    char evidence[1024];
    struct job job;

    for (;;) {
        xlock(&m->lock);
        while (m->count == 0 && !m->stop)
            pthread_cond_wait(&m->cond, &m->lock);
        if (pace(m)) {
            xunlock(&m->lock);
            return NULL;
        }
        job = m->queue[m->head];
        m->head = (m->head + 1) % MXCHECK_QUEUE;
        m->count--;
        xunlock(&m->lock);
        if (mxcheck_remote(m, job.domain, mxs_now_ms(), evidence,
                           sizeof(evidence)) == MXCHECK_HERE)
            log_warnx("%s: domain %s is in remote or backup mode, but its "
                      "best MX is this server (%s): the MTA cannot deliver "
                      "it remotely (Sendmail bounces: \"MX list points "
                      "back\"; Postfix: \"loops back to myself\"); make "
                      "the domain local or fix its MX records",
                      job.qid, job.domain, evidence);
    }
}

/* mxcheck_note - queue a domain that is being sent remote for a check */
void
mxcheck_note(struct mxcheck *m, const char *domain, const char *qid)
{
    struct job *j;

    if (m == NULL || strlen(domain) > DOMAIN_MAX ||
        cache_get(m->seen, domain, mxs_now_ms()) != CACHE_MISS)
        return;
    xlock(&m->lock);
    if (m->count < MXCHECK_QUEUE) {
        j = &m->queue[(m->head + m->count) % MXCHECK_QUEUE];
        snprintf(j->domain, sizeof(j->domain), "%s", domain);
        snprintf(j->qid, sizeof(j->qid), "%s", qid);
        m->count++;
        pthread_cond_signal(&m->cond);
    }
    xunlock(&m->lock);
}
