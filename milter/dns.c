/*
 * dns.c - MX-based route decisions for the auto mode; see dns.h
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <errno.h>

#include "cache.h"
#include "cfg.h"
#include "dns.h"
#include "fmt.h"
#include "log.h"
#include "mxs.h"

/* One cached decision. */
struct entry {
    char *domain; /* NULL: empty slot */
    char *evidence;
    enum route_mode mode;
    uint64_t expires;
    int stale_used; /* served stale since it expired: warned once */
};

/* One domain being resolved in the background (dns_start()). */
struct job {
    char *domain;
    int done;    /* the answer below is in */
    int waiters; /* callers waiting for it; the last one frees a done job */
    int rcode;
    enum route_mode mode;
    char evidence[512];
    char why[256];
    struct job *next;
};

struct dns {
    struct dns_nets local; /* routing.local_addresses; n = 0: interfaces */
    pthread_mutex_t lock;  /* guards slots */
    struct entry *slots;   /* direct-mapped: a domain has one slot */
    size_t nslots;         /* 0: no cache */
    uint64_t stale_ms;     /* cache.stale_ttl: serve expired this long */
    struct cache *here;    /* dns_self_mx()'s answers, DNS_HERE_TTL_S */

    /* Background resolution (dns_start()); all under jlock. */
    pthread_mutex_t jlock;
    pthread_cond_t jwork; /* a job was queued, or stop */
    pthread_cond_t jdone; /* a job is done */
    struct job *jobs;     /* queued, running and done-but-awaited */
    size_t njobs;
    pthread_t workers[DNS_WORKERS];
    int nworkers; /* 0: resolve in the caller's thread */
    int stop;
    uint64_t wait_ms;
};

/* ev_add - append to an evidence or why buffer, cutting at its end */
static void ev_add(char *ev, size_t evlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ev_add(char *ev, size_t evlen, const char *fmt, ...)
{
    size_t used = strnlen(ev, evlen);
    va_list ap;

    if (used + 1 >= evlen)
        return;
    va_start(ap, fmt);
    fmt_vprint(ev + used, evlen - used, fmt, ap);
    va_end(ap);
}

/*
 * dns_net_parse - read "ADDRESS" or "ADDRESS/LEN", IPv4 or IPv6
 *
 * With cfg's reader, so what `mxswitch -t` accepts is what is used.  A
 * bare address is a range of one (/32, /128).  MXS_INVALID with why
 * ("\"TEXT\": reason") for anything else.
 */
int
dns_net_parse(const char *text, struct dns_net *net, char *why, size_t whylen)
{
    char reason[128];

    memset(net, 0, sizeof(*net));
    if (cfg_parse_cidr(text, &net->ip.family, net->ip.a, &net->bits, reason,
                       sizeof(reason)) != MXS_OK) {
        mxs_why(why, whylen, "\"%s\": %s", text, reason);
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* in_net - whether ip lies in net */
static int
in_net(const struct dns_net *net, const struct dns_ip *ip)
{
    int full = net->bits / 8, rest = net->bits % 8;

    if (net->ip.family != ip->family ||
        memcmp(net->ip.a, ip->a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((net->ip.a[full] ^ ip->a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* dns_nets_match - index of the first range holding ip, or -1 */
int
dns_nets_match(const struct dns_nets *nets, const struct dns_ip *ip)
{
    size_t i;

    for (i = 0; i < nets->n; i++)
        if (in_net(&nets->v[i], ip))
            return (int)i;
    return -1;
}

/* dns_ip_format - an address as text; returns its length */
size_t
dns_ip_format(const struct dns_ip *ip, char *out, size_t outlen)
{
    if (inet_ntop(ip->family, ip->a, out, (socklen_t)outlen) == NULL)
        snprintf(out, outlen, "?");
    return strlen(out);
}

/* net_format - a range as text: "ADDRESS" for a range of one */
static void
net_format(const struct dns_net *net, char *out, size_t outlen)
{
    size_t len = dns_ip_format(&net->ip, out, outlen);

    if (net->bits != (net->ip.family == AF_INET6 ? 128 : 32))
        snprintf(out + len, outlen - len, "/%d", net->bits);
}

/* status_text - how a host's lookup ended, for the evidence */
static const char *
status_text(enum dns_status st)
{
    switch (st) {
    case DNS_NXDOMAIN:
        return "NXDOMAIN";
    case DNS_NODATA:
        return "no address";
    case DNS_FAIL:
        return "lookup failed";
    case DNS_SKIPPED:
        return "not looked up";
    default:
        return "";
    }
}

/*
 * host_evidence - "NAME [ADDR, ADDR (this server: NET)]"; returns the
 * index of the first local address, or -1
 */
static int
host_evidence(const struct dns_host *h, const struct dns_nets *local, char *ev,
              size_t evlen)
{
    char ip[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN + 8];
    int first = -1;
    size_t i;

    ev_add(ev, evlen, "%s [", h->name);
    if (h->status != DNS_FOUND)
        ev_add(ev, evlen, "%s", status_text(h->status));
    for (i = 0; h->status == DNS_FOUND && i < h->naddr; i++) {
        int m = dns_nets_match(local, &h->addr[i]);

        dns_ip_format(&h->addr[i], ip, sizeof(ip));
        ev_add(ev, evlen, "%s%s", i ? ", " : "", ip);
        if (m >= 0) {
            net_format(&local->v[m], net, sizeof(net));
            ev_add(ev, evlen, " (this server: %s)", net);
            if (first < 0)
                first = (int)i;
        }
    }
    ev_add(ev, evlen, "]");
    return first;
}

/* is_null_target - whether an MX host is the root "." */
static int
is_null_target(const struct dns_host *h)
{
    return strcmp(h->name, ".") == 0;
}

/*
 * dns_decide - the mode an MX set gives, with the evidence for it
 *
 * Pure.  MXS_OK with *mode one of none, local, backup, remote; or
 * MXS_TEMPFAIL with why (the evidence then shows what was seen).  See
 * dns.h for the rules.
 */
int
dns_decide(const struct dns_mxset *mx, const struct dns_nets *local,
           enum route_mode *mode, char *evidence, size_t evlen, char *why,
           size_t whylen)
{
    const struct dns_host *best = NULL, *here = NULL, *failed = NULL;
    const struct dns_host *unsure = NULL; /* a lower host not resolved */
    size_t i, usable = 0;

    *mode = ROUTE_NONE;
    if (evlen > 0)
        evidence[0] = '\0';
    if (mx->status == DNS_NXDOMAIN) {
        ev_add(evidence, evlen, "NXDOMAIN: no such domain");
        return MXS_OK;
    }
    if (mx->status != DNS_FOUND && mx->status != DNS_NODATA) {
        ev_add(evidence, evlen, "MX lookup failed");
        mxs_why(why, whylen,
                "MX lookup failed (SERVFAIL, REFUSED or no answer in time)");
        return MXS_TEMPFAIL;
    }
    for (i = 0; i < mx->n; i++)
        if (!is_null_target(&mx->host[i]))
            usable++;
    if (mx->status == DNS_FOUND && usable == 0) {
        ev_add(evidence, evlen, "null MX (MX %u .): the domain takes no mail",
               mx->n ? mx->host[0].pref : 0);
        return MXS_OK;
    }
    ev_add(evidence, evlen, "%s",
           mx->status == DNS_NODATA ? "no MX records: implicit MX " : "MX ");
    for (i = 0; i < mx->n; i++) {
        const struct dns_host *h = &mx->host[i];
        int first;

        if (is_null_target(h))
            continue;
        if (best != NULL)
            ev_add(evidence, evlen, ", ");
        if (mx->status == DNS_FOUND)
            ev_add(evidence, evlen, "%u ", h->pref);
        first = host_evidence(h, local, evidence, evlen);
        if (best == NULL)
            best = h;
        if (first >= 0 && here == NULL)
            here = h;
        if (h->pref == best->pref && h->status != DNS_FOUND && failed == NULL)
            failed = h;
        if (h->pref != best->pref &&
            (h->status == DNS_FAIL || h->status == DNS_SKIPPED) &&
            unsure == NULL)
            unsure = h;
    }
    if (mx->status == DNS_NODATA && best->status != DNS_FOUND &&
        best->status != DNS_FAIL && best->status != DNS_SKIPPED) {
        ev_add(evidence, evlen, "; no mail exchanger");
        return MXS_OK;
    }
    if (here != NULL && here->pref == best->pref) {
        ev_add(evidence, evlen, "; best MX %s is this server: local",
               here->name);
        *mode = ROUTE_LOCAL;
        return MXS_OK;
    }
    if (failed != NULL) {
        mxs_why(why, whylen, "best MX %s does not resolve (%s)", failed->name,
                status_text(failed->status));
        return MXS_TEMPFAIL;
    }
    if (here != NULL) {
        ev_add(evidence, evlen,
               "; lower-preference MX %s is this server: backup", here->name);
        *mode = ROUTE_BACKUP;
        return MXS_OK;
    }
    if (unsure != NULL) {
        /* It may be this server: remote would refuse untrusted senders
         * what a backup MX must take. */
        ev_add(evidence, evlen,
               "; lower-preference MX %s may be this server: backup",
               unsure->name);
        *mode = ROUTE_BACKUP;
        return MXS_OK;
    }
    ev_add(evidence, evlen, "; no MX host is this server: remote");
    *mode = ROUTE_REMOTE;
    return MXS_OK;
}

/* ---- I/O shell ---- */

/* hash - of a domain, for the table */
static uint32_t
hash(const char *s)
{
    return mxs_hash(s, strlen(s));
}

/* dns_create - parse the local addresses; NULL with why when one is bad */
struct dns *
dns_create(const char *const *local_addresses, size_t nlocal,
           size_t max_entries, char *why, size_t whylen)
{
    struct dns *d = xcalloc(1, sizeof(*d));
    pthread_condattr_t attr;
    size_t i;

    d->local.v = xcalloc(nlocal ? nlocal : 1, sizeof(*d->local.v));
    for (i = 0; i < nlocal; i++) {
        if (dns_net_parse(local_addresses[i], &d->local.v[i], why, whylen) !=
            MXS_OK) {
            dns_free(d);
            return NULL;
        }
        d->local.n++;
    }
    /* jdone's waits are timed on the monotonic clock: a clock step must
     * not stretch or cut DNS_WAIT_MS. */
    if (pthread_mutex_init(&d->lock, NULL) != 0 ||
        pthread_mutex_init(&d->jlock, NULL) != 0 ||
        pthread_cond_init(&d->jwork, NULL) != 0 ||
        pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&d->jdone, &attr) != 0)
        fatalx("dns: mutex init failed");
    pthread_condattr_destroy(&attr);
    d->nslots = max_entries;
    d->here = cache_create(max_entries, DNS_HERE_TTL_S * 1000);
    d->slots = xcalloc(max_entries ? max_entries : 1, sizeof(*d->slots));
    return d;
}

/* dns_free - release everything; NULL is a no-op */
void
dns_free(struct dns *d)
{
    size_t i;

    if (d == NULL)
        return;
    dns_stop(d);
    cache_free(d->here);
    for (i = 0; d->slots != NULL && i < d->nslots; i++) {
        free(d->slots[i].domain);
        free(d->slots[i].evidence);
    }
    if (d->slots != NULL) {
        pthread_mutex_destroy(&d->lock);
        pthread_mutex_destroy(&d->jlock);
        pthread_cond_destroy(&d->jwork);
        pthread_cond_destroy(&d->jdone);
    }
    free(d->slots);
    free(d->local.v);
    free(d);
}

/* cache_find - a fresh cached decision for domain; 1 when found */
static int
cache_find(struct dns *d, const char *domain, uint64_t now_ms,
           enum route_mode *mode, char *evidence, size_t evlen)
{
    struct entry *e;
    int hit = 0;

    if (d->nslots == 0)
        return 0;
    xlock(&d->lock);
    e = &d->slots[hash(domain) % d->nslots];
    if (e->domain != NULL && strcmp(e->domain, domain) == 0 &&
        e->expires > now_ms) {
        *mode = e->mode;
        snprintf(evidence, evlen, "%s; cached, %llu s left", e->evidence,
                 (unsigned long long)((e->expires - now_ms + 999) / 1000));
        hit = 1;
    }
    xunlock(&d->lock);
    return hit;
}

/*
 * cache_stale - an expired decision still within stale_ms, for a lookup
 * that failed; 1 when found, *first set on its first such use
 */
static int
cache_stale(struct dns *d, const char *domain, uint64_t now_ms,
            const char *failure, enum route_mode *mode, char *evidence,
            size_t evlen, int *first)
{
    struct entry *e;
    int hit = 0;

    if (d->nslots == 0 || d->stale_ms == 0)
        return 0;
    xlock(&d->lock);
    e = &d->slots[hash(domain) % d->nslots];
    if (e->domain != NULL && strcmp(e->domain, domain) == 0 &&
        e->expires <= now_ms && now_ms < e->expires + d->stale_ms) {
        *mode = e->mode;
        snprintf(evidence, evlen, "%s; stale: expired %llu s ago, and now %s",
                 e->evidence,
                 (unsigned long long)((now_ms - e->expires) / 1000), failure);
        *first = !e->stale_used;
        e->stale_used = 1;
        hit = 1;
    }
    xunlock(&d->lock);
    return hit;
}

/* cache_store - remember a decision for ttl seconds (0: not at all) */
static void
cache_store(struct dns *d, const char *domain, uint64_t now_ms, uint32_t ttl,
            enum route_mode mode, const char *evidence)
{
    struct entry *e;

    if (d->nslots == 0 || ttl == 0)
        return;
    xlock(&d->lock);
    e = &d->slots[hash(domain) % d->nslots];
    free(e->domain);
    free(e->evidence);
    e->domain = xstrdup(domain);
    e->evidence = xstrdup(evidence);
    e->mode = mode;
    e->expires = now_ms + (uint64_t)ttl * 1000;
    e->stale_used = 0;
    xunlock(&d->lock);
}

/* negative_ttl - how long a negative answer holds: its SOA's (RFC 2308) */
static uint32_t
negative_ttl(ns_msg *msg)
{
    ns_rr rr;
    int i;

    for (i = 0; i < ns_msg_count(*msg, ns_s_ns); i++) {
        uint32_t min;

        if (ns_parserr(msg, ns_s_ns, i, &rr) != 0 ||
            ns_rr_type(rr) != ns_t_soa || ns_rr_rdlen(rr) < 20)
            continue;
        min = ns_get32(ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4);
        return min < ns_rr_ttl(rr) ? min : ns_rr_ttl(rr);
    }
    return 0; /* no SOA: not to be cached */
}

/*
 * query - one question to the resolver
 *
 * DNS_FOUND when the answer holds records of the type asked, DNS_NODATA,
 * DNS_NXDOMAIN or DNS_FAIL.  *ttl is lowered to the answer's TTL.
 */
static enum dns_status
query(res_state rs, const char *name, ns_type type, unsigned char *buf,
      size_t buflen, ns_msg *msg, uint32_t *ttl)
{
    unsigned char q[NS_PACKETSZ];
    int qlen, len, i, rcode, found = 0;
    ns_rr rr;

    qlen = res_nmkquery(rs, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q,
                        sizeof(q));
    if (qlen < 0)
        return DNS_FAIL;
    len = res_nsend(rs, q, qlen, buf, (int)buflen);
    if (len < 0 || ns_initparse(buf, len, msg) != 0)
        return DNS_FAIL;
    rcode = ns_msg_getflag(*msg, ns_f_rcode);
    if (rcode != ns_r_noerror && rcode != ns_r_nxdomain)
        return DNS_FAIL;
    for (i = 0; rcode == ns_r_noerror && i < ns_msg_count(*msg, ns_s_an); i++) {
        if (ns_parserr(msg, ns_s_an, i, &rr) != 0)
            return DNS_FAIL;
        if (ns_rr_ttl(rr) < *ttl)
            *ttl = ns_rr_ttl(rr);
        if (ns_rr_type(rr) == type)
            found = 1;
    }
    if (!found) {
        uint32_t neg = negative_ttl(msg);

        if (neg < *ttl)
            *ttl = neg;
    }
    if (rcode == ns_r_nxdomain)
        return DNS_NXDOMAIN;
    return found ? DNS_FOUND : DNS_NODATA;
}

/* add_mx - insert an MX host in preference order, keep the best ones */
static void
add_mx(struct dns_mxset *mx, unsigned pref, const char *name)
{
    size_t at = mx->n;

    while (at > 0 && mx->host[at - 1].pref > pref)
        at--;
    if (at >= DNS_MAX_MX)
        return;
    if (mx->n == DNS_MAX_MX)
        mx->n--;
    memmove(&mx->host[at + 1], &mx->host[at],
            (mx->n - at) * sizeof(mx->host[0]));
    memset(&mx->host[at], 0, sizeof(mx->host[0]));
    mx->host[at].pref = pref;
    snprintf(mx->host[at].name, sizeof(mx->host[at].name), "%s",
             name[0] != '\0' ? name : ".");
    mx->host[at].status = DNS_SKIPPED;
    mx->n++;
}

/* lookup_mx - the MX query; fills mx (implicit MX on NODATA) */
static void
lookup_mx(res_state rs, const char *domain, struct dns_mxset *mx, uint32_t *ttl)
{
    unsigned char buf[16384];
    char name[NS_MAXDNAME];
    ns_msg msg;
    ns_rr rr;
    int i;

    memset(mx, 0, sizeof(*mx));
    mx->status = query(rs, domain, ns_t_mx, buf, sizeof(buf), &msg, ttl);
    if (mx->status == DNS_NODATA)
        add_mx(mx, 0, domain);
    if (mx->status != DNS_FOUND)
        return;
    for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 ||
            ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3 ||
            dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2,
                      name, sizeof(name)) < 0)
            continue;
        add_mx(mx, ns_get16(ns_rr_rdata(rr)), name);
    }
    if (mx->n == 0)
        mx->status = DNS_FAIL; /* MX records we could not read */
}

/* has_local_addr - whether one of h's kept addresses is this server's */
static int
has_local_addr(const struct dns_host *h, const struct dns_nets *local)
{
    size_t i;

    for (i = 0; i < h->naddr; i++)
        if (dns_nets_match(local, &h->addr[i]) >= 0)
            return 1;
    return 0;
}

/* host_is_local - whether the host resolved and is this server */
static int
host_is_local(const struct dns_host *h, const struct dns_nets *local)
{
    return h->status == DNS_FOUND && has_local_addr(h, local);
}

/* lookup_addrs - A or AAAA records of a host, added to h */
static enum dns_status
lookup_addrs(res_state rs, const struct dns_nets *local, struct dns_host *h,
             ns_type type, uint32_t *ttl)
{
    unsigned char buf[8192];
    enum dns_status st;
    ns_msg msg;
    ns_rr rr;
    int i;

    st = query(rs, h->name, type, buf, sizeof(buf), &msg, ttl);
    for (i = 0; st == DNS_FOUND && i < ns_msg_count(msg, ns_s_an); i++) {
        struct dns_ip ip;

        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != type)
            continue;
        memset(&ip, 0, sizeof(ip));
        if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
            ip.family = AF_INET;
            memcpy(ip.a, ns_rr_rdata(rr), 4);
        } else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
            ip.family = AF_INET6;
            memcpy(ip.a, ns_rr_rdata(rr), 16);
        } else {
            continue;
        }
        if (h->naddr < DNS_MAX_ADDRS) {
            h->addr[h->naddr++] = ip;
        } else if (dns_nets_match(local, &ip) >= 0 &&
                   !has_local_addr(h, local)) {
            /* A pool of more addresses than are kept (the resolver
             * rotates them): this server's must not drop out. */
            h->addr[DNS_MAX_ADDRS - 1] = ip;
        }
    }
    return st;
}

/* resolve_host - A and AAAA of one MX host */
static void
resolve_host(res_state rs, const struct dns_nets *local, struct dns_host *h,
             uint32_t *ttl)
{
    enum dns_status a = lookup_addrs(rs, local, h, ns_t_a, ttl);
    enum dns_status aaaa = a == DNS_FAIL
                               ? DNS_SKIPPED
                               : lookup_addrs(rs, local, h, ns_t_aaaa, ttl);

    if (a == DNS_FAIL || aaaa == DNS_FAIL)
        h->status = DNS_FAIL;
    else if (a == DNS_FOUND || aaaa == DNS_FOUND)
        h->status = DNS_FOUND;
    else if (a == DNS_NXDOMAIN)
        h->status = DNS_NXDOMAIN;
    else
        h->status = DNS_NODATA;
}

/*
 * interface_nets - this host's interface addresses, each a range of one
 *
 * Fills nets (the caller frees nets->v); MXS_TEMPFAIL when the kernel
 * cannot say.
 */
static int
interface_nets(struct dns_nets *nets)
{
    struct ifaddrs *ifs = NULL, *ifa;
    size_t n = 0;

    nets->n = 0;
    nets->v = NULL;
    if (getifaddrs(&ifs) != 0)
        return MXS_TEMPFAIL;
    for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next)
        n++;
    nets->v = xcalloc(n ? n : 1, sizeof(*nets->v));
    for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
        struct dns_net *net = &nets->v[nets->n];

        if (ifa->ifa_addr == NULL)
            continue;
        if (ifa->ifa_addr->sa_family == AF_INET) {
            net->ip.family = AF_INET;
            memcpy(net->ip.a,
                   &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr, 4);
            net->bits = 32;
            nets->n++;
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            net->ip.family = AF_INET6;
            memcpy(net->ip.a,
                   &((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr,
                   16);
            net->bits = 128;
            nets->n++;
        }
    }
    freeifaddrs(ifs);
    return MXS_OK;
}

/*
 * resolve - the MX set of a domain, its hosts resolved in order
 *
 * A null MX needs no addresses.  After one failure (likely a timeout) the
 * rest is not asked, so a dead resolver costs one wait; once a host of the
 * best preference is this server, the lower ones cannot change the answer
 * and are not asked either.
 */
static void
resolve(res_state rs, const char *domain, const struct dns_nets *local,
        struct dns_mxset *mx, uint32_t *ttl)
{
    int best = -1, here = 0;
    size_t i;

    lookup_mx(rs, domain, mx, ttl);
    for (i = 0; i < mx->n; i++) {
        struct dns_host *h = &mx->host[i];

        if (is_null_target(h))
            continue;
        if (best < 0)
            best = (int)h->pref;
        if (here && (int)h->pref > best)
            break;
        resolve_host(rs, local, h, ttl);
        if (h->status == DNS_FAIL)
            break;
        if ((int)h->pref == best && host_is_local(h, local))
            here = 1;
    }
}

/*
 * resolver_open - rs set up for the lookups of one question, and in
 * *local this server's addresses (the configured ones, or the interfaces'
 * read into ifnets, which the caller frees with free(ifnets->v)); the
 * caller closes rs.  MXS_TEMPFAIL with why, nothing left to free.
 */
static int
resolver_open(struct dns *d, res_state rs, struct dns_nets *ifnets,
              const struct dns_nets **local, char *why, size_t whylen)
{
    memset(rs, 0, sizeof(*rs));
    ifnets->n = 0;
    ifnets->v = NULL;
    *local = &d->local;
    if (res_ninit(rs) != 0) {
        mxs_why(why, whylen, "cannot set up the resolver (resolv.conf)");
        return MXS_TEMPFAIL;
    }
    if (d->local.n == 0) {
        if (interface_nets(ifnets) != MXS_OK) {
            mxs_why(why, whylen, "cannot read this server's addresses");
            free(ifnets->v);
            res_nclose(rs);
            return MXS_TEMPFAIL;
        }
        *local = ifnets;
    }
    rs->retrans = DNS_TIMEOUT_S;
    rs->retry = 2;
    return MXS_OK;
}

/*
 * dns_better_mx - the MX hosts of a domain better than this server
 *
 * See dns.h.  Hosts are resolved in order until one is this server; its
 * preference and every one below it are dropped (a tie is no better), and
 * so are hosts that did not resolve to an address.
 */
int
dns_better_mx(struct dns *d, const char *domain, struct dns_mxset *mx,
              char *why, size_t whylen)
{
    struct __res_state rs;
    struct dns_nets ifnets;
    const struct dns_nets *local;
    uint32_t ttl = DNS_TTL_MAX_S;
    size_t i, kept = 0;
    int here = -1, rcode = MXS_OK;

    if (resolver_open(d, &rs, &ifnets, &local, why, whylen) != MXS_OK)
        return MXS_TEMPFAIL;
    lookup_mx(&rs, domain, mx, &ttl);
    if (mx->status == DNS_FAIL || mx->status == DNS_NXDOMAIN) {
        mxs_why(why, whylen, "MX query for %s: %s", domain,
                status_text(mx->status));
        rcode = MXS_TEMPFAIL;
    }
    for (i = 0; rcode == MXS_OK && i < mx->n; i++) {
        struct dns_host *h = &mx->host[i];

        if (here >= 0 && (int)h->pref >= here)
            break;
        if (is_null_target(h))
            continue;
        resolve_host(&rs, local, h, &ttl);
        if (host_is_local(h, local))
            here = (int)h->pref;
        else if (h->status == DNS_FOUND)
            mx->host[kept++] = *h;
    }
    while (kept > 0 && here >= 0 && (int)mx->host[kept - 1].pref >= here)
        kept--; /* a tie with this server is no better */
    mx->n = rcode == MXS_OK ? kept : 0;
    res_nclose(&rs);
    free(ifnets.v);
    return rcode;
}

static int ask_background(struct dns *d, const char *domain, uint64_t now_ms,
                          enum route_mode *mode, char *evidence, size_t evlen,
                          char *why, size_t whylen);
static int ask(struct dns *d, const char *domain, uint64_t now_ms,
               enum route_mode *mode, char *evidence, size_t evlen, char *why,
               size_t whylen);

/*
 * dns_auto_mode - the auto decision for a normalised domain
 *
 * See dns.h.  MXS_OK with *mode and the evidence; MXS_TEMPFAIL with why
 * (and what was seen so far in the evidence).  A failure is answered from
 * an expired decision while it is within cache.stale_ttl (dns_set_stale).
 */
int
dns_auto_mode(struct dns *d, const char *domain, uint64_t now_ms,
              enum route_mode *mode, char *evidence, size_t evlen, int *stale,
              char *why, size_t whylen)
{
    int rcode, first = 0;

    if (stale != NULL)
        *stale = DNS_FRESH;
    rcode = d->nworkers > 0
                ? ask_background(d, domain, now_ms, mode, evidence, evlen, why,
                                 whylen)
                : ask(d, domain, now_ms, mode, evidence, evlen, why, whylen);
    if (rcode == MXS_TEMPFAIL &&
        cache_stale(d, domain, now_ms, why, mode, evidence, evlen, &first)) {
        if (stale != NULL)
            *stale = first ? DNS_STALE_FIRST : DNS_STALE;
        rcode = MXS_OK;
    }
    return rcode;
}

/* dns_set_stale - serve expired decisions stale_ms longer when DNS fails */
void
dns_set_stale(struct dns *d, uint64_t stale_ms)
{
    d->stale_ms = stale_ms;
}

/* ask - the decision from the cache, else from DNS; as dns_auto_mode */
static int
ask(struct dns *d, const char *domain, uint64_t now_ms, enum route_mode *mode,
    char *evidence, size_t evlen, char *why, size_t whylen)
{
    struct __res_state rs;
    struct dns_mxset *mx;
    struct dns_nets ifnets;
    const struct dns_nets *local;
    uint32_t ttl = DNS_TTL_MAX_S;
    int rcode;

    if (evlen > 0)
        evidence[0] = '\0';
    if (cache_find(d, domain, now_ms, mode, evidence, evlen))
        return MXS_OK;
    if (resolver_open(d, &rs, &ifnets, &local, why, whylen) != MXS_OK)
        return MXS_TEMPFAIL;
    mx = xmalloc(sizeof(*mx));
    resolve(&rs, domain, local, mx, &ttl);
    res_nclose(&rs);
    rcode = dns_decide(mx, local, mode, evidence, evlen, why, whylen);
    if (rcode == MXS_OK)
        cache_store(d, domain, now_ms, ttl, *mode, evidence);
    free(ifnets.v);
    free(mx);
    return rcode;
}

/* job_find - the job for domain, or NULL; under jlock */
static struct job *
job_find(struct dns *d, const char *domain)
{
    struct job *j;

    for (j = d->jobs; j != NULL; j = j->next)
        if (strcmp(j->domain, domain) == 0)
            return j;
    return NULL;
}

/* job_unlink - take j out of the list and free it; under jlock */
static void
job_unlink(struct dns *d, struct job *j)
{
    struct job **pp;

    for (pp = &d->jobs; *pp != j; pp = &(*pp)->next)
        ;
    *pp = j->next;
    d->njobs--;
    free(j->domain);
    free(j);
}

/* worker_main - resolve queued domains until dns_stop() */
static void *
worker_main(void *arg)
{
    struct dns *d = arg;

    xlock(&d->jlock);
    for (;;) {
        struct job *j;

        for (j = d->jobs; j != NULL && (j->done || j->rcode == -1); j = j->next)
            ;
        if (d->stop)
            break;
        if (j == NULL) {
            pthread_cond_wait(&d->jwork, &d->jlock);
            continue;
        }
        j->rcode = -1; /* running */
        xunlock(&d->jlock);
        {
            enum route_mode mode = ROUTE_NONE;
            char ev[sizeof(j->evidence)], why[sizeof(j->why)];
            int rcode = ask(d, j->domain, mxs_now_ms(), &mode, ev, sizeof(ev),
                            why, sizeof(why));

            xlock(&d->jlock);
            j->rcode = rcode;
            j->mode = mode;
            memcpy(j->evidence, ev, sizeof(ev));
            memcpy(j->why, why, sizeof(why));
        }
        j->done = 1;
        if (j->waiters == 0)
            job_unlink(d, j); /* its answer is in the cache */
        pthread_cond_broadcast(&d->jdone);
    }
    xunlock(&d->jlock);
    return NULL;
}

/*
 * ask_background - the decision from the cache, else from a worker: wait
 * for it at most wait_ms.  Past that the caller gets MXS_TEMPFAIL (so a
 * stale decision may stand in) and the worker goes on: its answer lands
 * in the cache for the next caller.
 */
static int
ask_background(struct dns *d, const char *domain, uint64_t now_ms,
               enum route_mode *mode, char *evidence, size_t evlen, char *why,
               size_t whylen)
{
    struct timespec until;
    struct job *j;
    int rcode = MXS_TEMPFAIL;

    if (evlen > 0)
        evidence[0] = '\0';
    if (cache_find(d, domain, now_ms, mode, evidence, evlen))
        return MXS_OK;
    mxs_deadline(CLOCK_MONOTONIC, d->wait_ms, &until);
    xlock(&d->jlock);
    j = job_find(d, domain);
    if (j == NULL && d->njobs >= DNS_QUEUE_MAX) {
        xunlock(&d->jlock);
        mxs_why(why, whylen, "DNS: %d lookups already waiting", DNS_QUEUE_MAX);
        return MXS_TEMPFAIL;
    }
    if (j == NULL) {
        j = xcalloc(1, sizeof(*j));
        j->domain = xstrdup(domain);
        j->next = d->jobs;
        d->jobs = j;
        d->njobs++;
        pthread_cond_signal(&d->jwork);
    }
    j->waiters++;
    while (!j->done && !d->stop &&
           pthread_cond_timedwait(&d->jdone, &d->jlock, &until) == 0)
        ;
    if (j->done) {
        rcode = j->rcode;
        *mode = j->mode;
        snprintf(evidence, evlen, "%s", j->evidence);
        if (rcode != MXS_OK)
            mxs_why(why, whylen, "%s", j->why);
    } else {
        mxs_why(why, whylen, "no DNS answer within %llu ms (still asking)",
                (unsigned long long)d->wait_ms);
    }
    if (--j->waiters == 0 && j->done)
        job_unlink(d, j);
    xunlock(&d->jlock);
    return rcode;
}

/*
 * dns_start - resolve in background threads from now on; a caller of
 * dns_auto_mode() waits at most wait_ms for an answer not in the cache
 */
void
dns_start(struct dns *d, uint64_t wait_ms)
{
    int i, err;

    d->wait_ms = wait_ms;
    for (i = 0; i < DNS_WORKERS; i++) {
        err = pthread_create(&d->workers[i], NULL, worker_main, d);
        if (err != 0) {
            errno = err;
            fatal("dns: cannot start a resolver thread");
        }
        d->nworkers++;
    }
}

/* dns_stop - stop and join the background threads; waiting callers give
 * up at once */
void
dns_stop(struct dns *d)
{
    int i;

    if (d->nworkers == 0)
        return;
    xlock(&d->jlock);
    d->stop = 1;
    pthread_cond_broadcast(&d->jwork);
    pthread_cond_broadcast(&d->jdone);
    xunlock(&d->jlock);
    for (i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    d->nworkers = 0;
    while (d->jobs != NULL)
        job_unlink(d, d->jobs);
}

/*
 * dns_self_mx - whether the domain's best MX host is this server, as
 * dns_auto_mode() says "local"; anything else, a DNS failure included,
 * is "not here".  A failure, no domain or no MX (answers DNS may give
 * no TTL for) is remembered DNS_HERE_TTL_S: every remote-mode lookup
 * asks this, and must not wait on DNS each time; MX records count for
 * their own TTL.  evidence says what was seen.
 */
int
dns_self_mx(struct dns *d, const char *domain, uint64_t now_ms, char *evidence,
            size_t evlen)
{
    enum route_mode mode;
    char why[256];
    int v, stale;

    /* A decision a worker finished after an earlier caller stopped
     * waiting ("still asking") counts at once, not after the memo's
     * DNS_HERE_TTL_S: that caller's "not here" was only a guess. */
    if (cache_find(d, domain, now_ms, &mode, evidence, evlen))
        return mode == ROUTE_LOCAL;
    v = cache_get(d->here, domain, now_ms);
    if (v >= 0) {
        snprintf(evidence, evlen, "%s",
                 v ? "best MX is this server (remembered)" : "");
        return v;
    }
    if (dns_auto_mode(d, domain, now_ms, &mode, evidence, evlen, &stale, why,
                      sizeof(why)) != MXS_OK) {
        snprintf(evidence, evlen, "MX not known (%s): taken as elsewhere", why);
        mode = ROUTE_NONE;
    }
    v = mode == ROUTE_LOCAL;
    /* MX records are cached for their TTL: a move in DNS counts then. */
    if (mode == ROUTE_NONE)
        cache_put(d->here, domain, v, now_ms, cache_generation(d->here));
    return v;
}
