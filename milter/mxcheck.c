/*
 * mxcheck.c - does a domain's best MX point back to this host; see mxcheck.h
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cache.h"
#include "domain.h"
#include "log.h"
#include "mxcheck.h"
#include "mxs.h"

struct job {
    char domain[DOMAIN_MAX + 1];
    char qid[64];
};

struct mxcheck {
    struct cache *seen;   /* domain -> MXCHECK_HERE or MXCHECK_ELSEWHERE */
    pthread_mutex_t lock; /* guards the queue and stop */
    pthread_cond_t cond;
    struct job queue[MXCHECK_QUEUE];
    size_t head, count;
    int stop;
    pthread_t worker;
};

static void *worker_main(void *arg);

/* mxcheck_create - an empty memory of answers and a waiting worker */
struct mxcheck *
mxcheck_create(void)
{
    struct mxcheck *m = xcalloc(1, sizeof(*m));
    int err;

    m->seen = cache_create(10000, MXCHECK_TTL_MS);
    if (pthread_mutex_init(&m->lock, NULL) != 0 ||
        pthread_cond_init(&m->cond, NULL) != 0)
        fatalx("mxcheck: mutex init failed");
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

/* same_addr - whether two socket addresses name the same IP */
static int
same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a == NULL || b == NULL || a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr,
                      sizeof(struct in_addr)) == 0;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return 0;
}

/* host_is_local - whether a host name resolves to an interface address */
static int
host_is_local(const char *host)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct ifaddrs *ifs = NULL, *ifa;
    int found = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return 0;
    if (getifaddrs(&ifs) == 0) {
        for (ai = res; ai != NULL && !found; ai = ai->ai_next)
            for (ifa = ifs; ifa != NULL && !found; ifa = ifa->ifa_next)
                found = same_addr(ai->ai_addr, ifa->ifa_addr);
        freeifaddrs(ifs);
    }
    freeaddrinfo(res);
    return found;
}

/* best_mx_local - whether one of the best-preference MX hosts is here */
static int
best_mx_local(const char *domain, char *mxhost, size_t mxlen)
{
    unsigned char answer[4096];
    struct __res_state rs;
    ns_msg msg;
    ns_rr rr;
    int len, i, best = -1, here = 0;

    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0)
        return 0;
    rs.retrans = 1; /* advice only: never wait long for it */
    rs.retry = 2;
    len = res_nquery(&rs, domain, ns_c_in, ns_t_mx, answer, sizeof(answer));
    res_nclose(&rs);
    if (len < 0 || ns_initparse(answer, len, &msg) != 0)
        return 0;
    /* Two passes: find the best preference, then test its hosts. */
    for (i = 0; i < ns_msg_count(msg, ns_s_an); i++)
        if (ns_parserr(&msg, ns_s_an, i, &rr) == 0 &&
            ns_rr_type(rr) == ns_t_mx && ns_rr_rdlen(rr) > 2 &&
            (best < 0 || (int)ns_get16(ns_rr_rdata(rr)) < best))
            best = ns_get16(ns_rr_rdata(rr));
    for (i = 0; i < ns_msg_count(msg, ns_s_an) && !here; i++) {
        char host[NS_MAXDNAME];

        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 ||
            ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) <= 2 ||
            (int)ns_get16(ns_rr_rdata(rr)) != best ||
            dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2,
                      host, sizeof(host)) < 0)
            continue;
        if (host_is_local(host)) {
            snprintf(mxhost, mxlen, "%s", host);
            here = 1;
        }
    }
    return here;
}

/*
 * mxcheck_remote - for a domain about to go remote: is its MX this host?
 *
 * MXCHECK_HERE (with the MX host in mxhost) only on a fresh answer;
 * MXCHECK_KNOWN when the domain was checked within MXCHECK_TTL_MS.
 */
enum mxcheck_result
mxcheck_remote(struct mxcheck *m, const char *domain, uint64_t now_ms,
               char *mxhost, size_t mxlen)
{
    uint64_t gen = cache_generation(m->seen);
    int here;

    if (cache_get(m->seen, domain, now_ms) != CACHE_MISS)
        return MXCHECK_KNOWN;
    here = best_mx_local(domain, mxhost, mxlen);
    cache_put(m->seen, domain, here ? MXCHECK_HERE : MXCHECK_ELSEWHERE, now_ms,
              gen);
    return here ? MXCHECK_HERE : MXCHECK_ELSEWHERE;
}

/* worker_main - check queued domains one by one, warn about those here */
static void *
worker_main(void *arg)
{
    struct mxcheck *m = arg;
    char mxhost[NS_MAXDNAME];
    struct job job;

    for (;;) {
        xlock(&m->lock);
        while (m->count == 0 && !m->stop)
            pthread_cond_wait(&m->cond, &m->lock);
        if (m->stop) {
            xunlock(&m->lock);
            return NULL;
        }
        job = m->queue[m->head];
        m->head = (m->head + 1) % MXCHECK_QUEUE;
        m->count--;
        xunlock(&m->lock);
        if (mxcheck_remote(m, job.domain, mxs_now_ms(), mxhost,
                           sizeof(mxhost)) == MXCHECK_HERE)
            log_warnx("%s: domain %s is in remote mode, but its best MX %s "
                      "is this server: the MTA cannot deliver it remotely "
                      "(Sendmail bounces: \"MX list points back\"; Postfix "
                      "defers: \"loops back to myself\"); make the domain "
                      "local or fix its MX records",
                      job.qid, job.domain, mxhost);
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
