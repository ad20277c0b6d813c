/*
 * smap.c - socketmap request reader and server; see smap.h
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cfg.h"
#include "cfgref.h"
#include "dns.h"
#include "fmt.h"
#include "log.h"
#include "lookup.h"
#include "mxs.h"
#include "smap.h"
#include "stats.h"
#include "verify.h"

#define POLL_MS          200  /* how soon a thread notices smap_stop() */
#define EVICT_IDLE_MS    5000 /* when full, a client silent this long goes */
#define SEND_TIMEOUT     10   /* seconds a reply may wait for the client */
#define READ_CHUNK       4096
#define REPLY_MAX        (SMAP_MAX_REQUEST + 64)
#define WHYLEN           512
#define SMAP_LEGACY_NAME "mxswitch" /* socketmap.name's old default */

struct smap_reader {
    char *buf;  /* bytes fed and not yet consumed start at buf + pos */
    size_t len; /* bytes in buf */
    size_t pos; /* start of the next request */
    size_t cap; /* allocated size of buf */
    size_t max; /* longest payload accepted */
    char *req;  /* the last request's payload, split in place */
    int err;    /* the framing broke: no further requests */
    char errstr[128];
};

/*
 * One client connection; the listener thread owns the list.  A client is
 * never closed for being idle: Sendmail keeps its connection for the
 * process's life and takes an EOF for TEMP (451 4.3.0), not for a cue to
 * connect again.  Only when all socketmap.max_clients slots are taken does
 * the longest-silent client go (evict()).
 */
struct client {
    struct smap *s;
    pthread_mutex_t lock; /* fd against evict()'s shutdown() */
    int fd;               /* -1 once the thread closed it */
    pthread_t tid;
    uint64_t last; /* atomic: mxs_now_ms() of connect or the last bytes */
    int done;      /* atomic: the thread has closed fd and is returning */
    char peer[INET6_ADDRSTRLEN + 8];
    struct client *next;
};

struct smap {
    const struct cfg *cfg;
    struct cache *cache;
    struct rclient *rc;
    struct dns *dns;
    struct verify *verify; /* probes for map verify (backup mode) */
    int fd;                /* listening socket */
    char *unix_path;       /* removed by smap_stop(), or NULL */
    pthread_t listener;
    int running;
    int stop; /* atomic */

    /* The instance's transports (transports()), under xlock. */
    pthread_mutex_t xlock;
    uint64_t xchecked; /* when the file was last looked at */
    char xpath[4096];
    struct timespec xmtime;
    off_t xsize;
    struct cfg_transports x;

    int legacy_said; /* atomic: the legacy map name was warned about */

    /* Listener thread only. */
    struct client *clients;
    int nclients;
    int full; /* refusing connections, and said so */
    unsigned long refused;
};

/* smap_reader_create - a reader for payloads of at most max bytes */
struct smap_reader *
smap_reader_create(size_t max)
{
    struct smap_reader *r = xcalloc(1, sizeof(*r));

    r->max = max;
    r->req = xmalloc(max + 1);
    return r;
}

/* smap_reader_free - release a reader; NULL is a no-op */
void
smap_reader_free(struct smap_reader *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r->req);
    free(r);
}

/* smap_reader_feed - append bytes read from the client */
void
smap_reader_feed(struct smap_reader *r, const char *buf, size_t len)
{
    if (r->err || len == 0)
        return;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len + len > r->cap) {
        r->cap = r->len + len + READ_CHUNK;
        r->buf = xrealloc(r->buf, r->cap);
    }
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
}

/* broken - note a framing error; the reader stays broken */
static int
broken(struct smap_reader *r, const char *text)
{
    r->err = 1;
    snprintf(r->errstr, sizeof(r->errstr), "%s", text);
    return MXS_INVALID;
}

/*
 * smap_reader_get - the next complete request, if the bytes hold one
 *
 * MXS_OK: req is filled; its strings are borrowed until the next call or
 * smap_reader_free().  A payload without a space, or with a NUL byte, gives
 * key NULL: a malformed request.  MXS_NOMATCH:
 * more bytes are needed.  MXS_INVALID: the netstring framing is broken
 * (smap_reader_error() says how); the connection cannot go on.
 */
int
smap_reader_get(struct smap_reader *r, struct smap_request *req)
{
    const char *p = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    size_t i, n = 0;
    char *space;

    if (r->err)
        return MXS_INVALID;
    for (i = 0; i < avail && p[i] >= '0' && p[i] <= '9'; i++) {
        if (i == 1 && p[0] == '0')
            return broken(r, "leading zero in netstring length");
        n = n * 10 + (size_t)(p[i] - '0');
        if (n > r->max)
            return broken(r, "request too long");
    }
    if (i == avail)
        return MXS_NOMATCH;
    if (i == 0 || p[i] != ':')
        return broken(r, "bad netstring length");
    if (avail - i - 1 < n + 1)
        return MXS_NOMATCH;
    if (p[i + 1 + n] != ',')
        return broken(r, "missing ',' after netstring");
    memcpy(r->req, p + i + 1, n);
    r->req[n] = '\0';
    r->pos += i + 1 + n + 1;
    req->name = r->req;
    req->key = NULL;
    space = memchr(r->req, ' ', n);
    if (space != NULL && memchr(r->req, '\0', n) == NULL) {
        *space = '\0';
        req->key = space + 1;
    }
    return MXS_OK;
}

/* smap_reader_error - why the framing broke, or "" */
const char *
smap_reader_error(const struct smap_reader *r)
{
    return r->errstr;
}

/*
 * smap_reply - frame "<status> <text>" as a netstring into out
 *
 * Returns the bytes written (out is also NUL-terminated), or 0 when out
 * is too small.
 */
size_t
smap_reply(char *out, size_t outlen, const char *status, const char *text)
{
    size_t len = strlen(status) + 1 + strlen(text);
    char num[24];
    int n, k = (int)sizeof(num);

    /* by hand: fmt_print's fast path takes strings only */
    num[--k] = '\0';
    do
        num[--k] = (char)('0' + len % 10);
    while ((len /= 10) > 0);
    n = fmt_print(out, outlen, "%s:%s %s,", num + k, status, text);
    if (n < 0 || (size_t)n >= outlen)
        return 0;
    return (size_t)n;
}

/* stopping - whether smap_stop() was called */
static int
stopping(struct smap *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* nap - a short pause after an error that would otherwise spin */
static void
nap(void)
{
    struct timespec ts = {0, 100 * 1000000L};

    nanosleep(&ts, NULL);
}

/*
 * transports - the instance's transports, read again when the file the
 * setup script writes beside the config changed (checked at most once a
 * second)
 */
static void
transports(struct smap *s, const struct cfg *cfg, uint64_t now,
           struct cfg_transports *out)
{
    char path[4096], why[WHYLEN];
    struct stat st;
    int rc;

    xlock(&s->xlock);
    if (now - s->xchecked >= 1000 || s->xchecked == 0) {
        s->xchecked = now;
        cfg_transports_path(cfg, path, sizeof(path));
        if (stat(path, &st) != 0)
            memset(&st, 0, sizeof(st));
        if (strcmp(path, s->xpath) != 0 ||
            st.st_mtim.tv_sec != s->xmtime.tv_sec ||
            st.st_mtim.tv_nsec != s->xmtime.tv_nsec || st.st_size != s->xsize) {
            struct cfg_transports t;

            snprintf(s->xpath, sizeof(s->xpath), "%s", path);
            s->xmtime = st.st_mtim;
            s->xsize = st.st_size;
            rc = cfg_transports_load(path, &t, why, sizeof(why));
            if (rc == MXS_INVALID) {
                log_warnx("socketmap: %s; keeping the transports local \"%s\", "
                          "remote \"%s\"",
                          why, s->x.local, s->x.remote);
            } else {
                s->x = t;
                log_info("socketmap: transports from %s%s: local \"%s\", "
                         "remote \"%s\"%s",
                         path, rc == MXS_NOMATCH ? " (no such file)" : "",
                         t.local, t.remote,
                         t.local[0] == '\0'
                             ? ": local mode answers NOTFOUND (run the "
                               "setup script)"
                             : "");
            }
        }
    }
    *out = s->x;
    xunlock(&s->xlock);
}

/*
 * verified - map verify, backup mode: what the better MX says of key;
 * *status and text as route_reply() gives them, why says what was seen
 */
static void
verified(struct smap *s, const char *key, const char *domain,
         const char **status, char *text, size_t textlen, char *why,
         size_t whylen)
{
    const char *at = strrchr(key, '@');
    char *local = xstrndup(key, (size_t)(at - key));
    char seen[VERIFY_REPLY_MAX + 256];
    enum verify_result r = verify_ask(s->verify, local, domain, mxs_now_ms(),
                                      VERIFY_WAIT_MS, seen, sizeof(seen));
    size_t len = strlen(why);

    free(local);
    fmt_print(why + len, whylen - len, "; %s", seen);
    route_verified(r == VERIFY_REFUSED   ? ROUTE_WORD_REFUSED
                   : r == VERIFY_UNKNOWN ? ROUTE_WORD_UNKNOWN
                                         : ROUTE_WORD_TAKEN,
                   key, status, text, textlen);
}

/*
 * decide - the reply to one request for map m; logs one line
 *
 * Keys that cannot be an address (Postfix asks for "*" and for bare
 * domains too) are NOTFOUND at once.  In dry run the answer is logged
 * and NOTFOUND given: the MTA then routes as it would without mxswitch.
 */
static size_t
decide(struct smap *s, const struct cfg *cfg, enum route_map m, const char *key,
       char *out, size_t outlen)
{
    struct addr_tags tags = cfg_tags(cfg);
    char why[WHYLEN], shown[ADDR_MAX + 64], text[ADDR_MAX + 256];
    struct cfg_transports t;
    struct lookup_route lr;
    const char *status;
    size_t len = strlen(key);
    struct addr a;
    char *arg;
    int rcode;

    mxs_escape(shown, sizeof(shown), key, len);
    if (memchr(key, '@', len) == NULL) {
        /* Postfix asks a bare socket map for domains too; behind the
         * setup's regexp it does not (a round trip saved each). */
        log_debug("socketmap: %s %s -> NOTFOUND (no address)",
                  route_map_name(m), shown);
        return smap_reply(out, outlen, "NOTFOUND", "");
    }
    arg = xmalloc(len + 3);
    fmt_print(arg, len + 3, "<%s>", key);
    rcode = addr_parse(arg, &tags, &a, why, sizeof(why));
    free(arg);
    if (rcode != MXS_OK) {
        log_debug("socketmap: %s %s -> NOTFOUND (not an address: %s)",
                  route_map_name(m), shown, why);
        return smap_reply(out, outlen, "NOTFOUND", "");
    }
    if (m == ROUTE_MAP_VALIAS && a.tag != ADDR_TAG_NONE) {
        /* Queued under the design that tagged recipients: its plain form. */
        char *plain = addr_plain(&a, &tags);

        addr_clear(&a);
        log_info("socketmap: valias %s -> OK %s (the tag of an earlier "
                 "mxswitch)",
                 shown, plain);
        len = smap_reply(out, outlen, "OK", plain);
        free(plain);
        return len;
    }
    rcode = lookup_route(cfg, s->cache, s->rc, s->dns, &a, mxs_now_ms(), &lr,
                         why, sizeof(why));
    addr_clear(&a);
    if (rcode != MXS_OK) {
        log_debug("socketmap: %s %s -> NOTFOUND (%s)", route_map_name(m), shown,
                  why);
        return smap_reply(out, outlen, "NOTFOUND", "");
    }
    if (lr.res.dns_stale == DNS_STALE_FIRST)
        log_warnx("socketmap: DNS cannot answer for %s: using its auto "
                  "decision up to cache.stale_ttl past its TTL (%s)",
                  lr.domain, lr.evidence);
    if (!lr.failed && lr.res.source == LOOKUP_STALE && lr.res.stale_first)
        log_warnx("socketmap: redis cannot answer (%s): using cached answers "
                  "up to cache.stale_ttl past their ttl until it is back",
                  lr.note);
    if (lr.out.action == ROUTE_ACT_TEMP) {
        log_warnx("socketmap: %s %s domain=%s: lookup failed (%s): %s",
                  route_map_name(m), shown, lr.domain, lr.note,
                  cfg->dry_run ? "dry_run would=TEMP, answered NOTFOUND"
                               : "answered TEMP");
        if (cfg->dry_run)
            return smap_reply(out, outlen, "NOTFOUND", "");
        mxs_escape(text, sizeof(text), lr.note, strlen(lr.note));
        return smap_reply(out, outlen, "TEMP", text);
    }
    if (lr.failed)
        log_warnx("socketmap: %s %s domain=%s: lookup failed (%s): using "
                  "routing.default %s",
                  route_map_name(m), shown, lr.domain, lr.note,
                  route_mode_name(lr.out.mode));
    transports(s, cfg, mxs_now_ms(), &t);
    route_reply(m, &lr.out, lr.domain, key, t.local, t.remote, &status, text,
                sizeof(text));
    if (m == ROUTE_MAP_VERIFY && lr.out.rcpt == ROUTE_RCPT_VERIFY)
        verified(s, key, lr.domain, &status, text, sizeof(text), why,
                 sizeof(why));
    if (strcmp(status, "NOTFOUND") == 0 && lr.out.action == ROUTE_ACT_NONE) {
        log_debug("socketmap: %s %s -> NOTFOUND (domain %s mode %s from %s "
                  "key \"%s%s\": %s)",
                  route_map_name(m), shown, lr.domain,
                  route_mode_name(lr.out.mode),
                  lookup_source_name(lr.res.source),
                  lookup_key_prefix(cfg, lr.res.kind), lr.res.key, why);
        return smap_reply(out, outlen, "NOTFOUND", "");
    }
    /* The decision log: what the MTA was told to do with the address
     * (transport, mode) or whom it refused (rcpt); valias, asked along
     * with transport for the same address, adds nothing but volume. */
    (m == ROUTE_MAP_VALIAS && !cfg->dry_run ? log_debug : log_info)(
        "socketmap: %s %s -> %s%s%s%s (domain %s mode %s action %s from "
        "%s key \"%s%s\": %s%s%s)",
        route_map_name(m), shown, cfg->dry_run ? "dry_run would=" : "", status,
        text[0] ? " " : "", text, lr.domain, route_mode_name(lr.out.mode),
        route_action_name(lr.out.action), lookup_source_name(lr.res.source),
        lookup_key_prefix(cfg, lr.res.kind), lr.res.key, why,
        lr.evidence[0] ? "; " : "", lr.evidence);
    if (cfg->dry_run)
        status = "NOTFOUND", text[0] = '\0';
    return smap_reply(out, outlen, status, text);
}

/* status_of - the status word of a framed reply, in a static string */
static const char *
status_of(const char *reply, size_t len)
{
    static const char *const words[] = {"OK", "NOTFOUND", "TEMP", "PERM"};
    const char *p = memchr(reply, ':', len);
    size_t i;

    for (i = 0; p != NULL && i < sizeof(words) / sizeof(words[0]); i++)
        if (strncmp(p + 1, words[i], strlen(words[i])) == 0 &&
            p[1 + strlen(words[i])] == ' ')
            return words[i];
    return "";
}

/*
 * answer - the framed reply to one request
 *
 * Each request reads the config in force (a reload changes the next
 * answer, even on a connection Postfix keeps open).
 */
static size_t
answer(struct client *c, const struct smap_request *req, char *out,
       size_t outlen)
{
    struct cfgref *ref = cfgref_hold();
    char why[WHYLEN], shown[128];
    enum route_map m = route_map_of(req->name);
    size_t n;

    if (m == ROUTE_NMAPS && strcmp(req->name, SMAP_LEGACY_NAME) == 0) {
        /* An earlier version's virtual_alias_maps entry, until the setup
         * script runs again: it meant what valias means. */
        if (!__atomic_exchange_n(&c->s->legacy_said, 1, __ATOMIC_RELAXED))
            log_warnx("socketmap: client %s asks map \"%s\" of an earlier "
                      "mxswitch: answered as valias; run the setup script "
                      "again",
                      c->peer, SMAP_LEGACY_NAME);
        m = ROUTE_MAP_VALIAS;
    }
    if (req->key == NULL || m == ROUTE_NMAPS) {
        mxs_why(why, sizeof(why), "%s",
                req->key == NULL ? "malformed request" : "unknown map name");
        mxs_escape(shown, sizeof(shown), req->name, strlen(req->name));
        log_warnx("socketmap: client %s: %s (map \"%s\"): answered PERM",
                  c->peer, why, shown);
        n = smap_reply(out, outlen, "PERM", why);
    } else {
        n = decide(c->s, ref->cfg, m, req->key, out, outlen);
        stats_map((int)m, status_of(out, n));
    }
    cfgref_release(ref);
    return n;
}

/* send_all - write a whole reply; MXS_OK or MXS_TEMPFAIL */
static int
send_all(struct client *c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_warn("socketmap: client %s: cannot send the reply", c->peer);
            return MXS_TEMPFAIL;
        }
        buf += n;
        len -= (size_t)n;
    }
    return MXS_OK;
}

/* serve - answer every complete request; MXS_OK, or stop the connection */
static int
serve(struct client *c, struct smap_reader *r, char *out)
{
    struct smap_request req;
    int rcode;

    while ((rcode = smap_reader_get(r, &req)) == MXS_OK) {
        size_t n = answer(c, &req, out, REPLY_MAX);

        if (n == 0 || send_all(c, out, n) != MXS_OK)
            return MXS_TEMPFAIL;
    }
    if (rcode == MXS_NOMATCH)
        return MXS_OK;
    log_warnx("socketmap: client %s: malformed request (%s): answered PERM "
              "and closed the connection",
              c->peer, smap_reader_error(r));
    send_all(c, out, smap_reply(out, REPLY_MAX, "PERM", "malformed request"));
    return MXS_INVALID;
}

/* client_main - one client's thread: read, answer, until EOF or stop */
static void *
client_main(void *arg)
{
    struct client *c = arg;
    struct smap_reader *r = smap_reader_create(SMAP_MAX_REQUEST);
    struct timeval tv = {SEND_TIMEOUT, 0};
    struct timeval tick = {0, POLL_MS * 1000};
    char *out = xmalloc(REPLY_MAX);
    char buf[READ_CHUNK];
    int ok = 1;

    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        log_warn("socketmap: client %s: cannot set a send timeout", c->peer);
    /* A read waits POLL_MS at most, so the thread notices smap_stop(): one
     * system call per request, where a poll before each read made two. */
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) != 0) {
        log_warn("socketmap: client %s: cannot set a read timeout: closing",
                 c->peer);
        ok = 0;
    }
    while (ok && !stopping(c->s) && serve(c, r, out) == MXS_OK) {
        ssize_t n = read(c->fd, buf, sizeof(buf));

        if (n < 0 &&
            (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0 && errno != ECONNRESET)
            log_warn("socketmap: client %s: read", c->peer);
        if (n <= 0)
            break;
        __atomic_store_n(&c->last, mxs_now_ms(), __ATOMIC_RELAXED);
        smap_reader_feed(r, buf, (size_t)n);
    }
    xlock(&c->lock);
    close(c->fd);
    c->fd = -1;
    xunlock(&c->lock);
    smap_reader_free(r);
    free(out);
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* reap - join finished clients, or all of them when stopping */
static void
reap(struct smap *s, int all)
{
    struct client **pp = &s->clients;

    while (*pp != NULL) {
        struct client *c = *pp;

        if (!all && !__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
            pp = &c->next;
            continue;
        }
        pthread_join(c->tid, NULL);
        *pp = c->next;
        pthread_mutex_destroy(&c->lock);
        free(c);
        s->nclients--;
    }
    if (s->full && s->nclients < s->cfg->smap_max_clients) {
        log_info("socketmap: accepting connections again (%lu refused "
                 "meanwhile)",
                 s->refused);
        s->full = 0;
        s->refused = 0;
    }
}

/* peer_name - the client's address for log lines */
static void
peer_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const void *ip = NULL;
    int port = 0;

    snprintf(out, outlen, "unix");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

        ip = &sin->sin_addr;
        port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

        ip = &sin6->sin6_addr;
        port = ntohs(sin6->sin6_port);
    }
    if (ip != NULL && inet_ntop(ss.ss_family, ip, out, (socklen_t)outlen))
        snprintf(out + strlen(out), outlen - strlen(out), ":%d", port);
}

/*
 * evict - all slots taken: end the connection of the client silent
 * longest, when that is EVICT_IDLE_MS or more; 1 when one was ended (its
 * thread sees EOF, closes and is reaped).  A Sendmail process whose
 * connection goes gets TEMP for its next lookup, once.
 */
static int
evict(struct smap *s)
{
    struct client *c, *oldest = NULL;
    uint64_t now = mxs_now_ms(), last, oldest_last = 0;

    for (c = s->clients; c != NULL; c = c->next) {
        if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
            continue;
        last = __atomic_load_n(&c->last, __ATOMIC_RELAXED);
        if (oldest == NULL || last < oldest_last) {
            oldest = c;
            oldest_last = last;
        }
    }
    /* last may have moved past now since now was read */
    if (oldest == NULL || oldest_last > now ||
        now - oldest_last < EVICT_IDLE_MS)
        return 0;
    xlock(&oldest->lock);
    /* Not if it spoke meanwhile (it may be in the middle of a request). */
    last = __atomic_load_n(&oldest->last, __ATOMIC_RELAXED);
    if (oldest->fd >= 0 && last == oldest_last)
        shutdown(oldest->fd, SHUT_RDWR);
    xunlock(&oldest->lock);
    if (last != oldest_last)
        return 0;
    __atomic_store_n(&oldest->last, now, __ATOMIC_RELAXED); /* once */
    log_info("socketmap: %d clients connected (socketmap.max_clients): "
             "closed the connection of client %s, silent for %llu s",
             s->nclients, oldest->peer,
             (unsigned long long)((now - oldest_last) / 1000));
    return 1;
}

/* accept_one - take a new client; beyond max_clients, make room or refuse */
static void
accept_one(struct smap *s)
{
    struct client *c;
    int fd, err;

    fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            log_warn("socketmap: accept");
            nap();
        }
        return;
    }
    if (s->nclients >= s->cfg->smap_max_clients && !evict(s)) {
        close(fd);
        s->refused++;
        if (!s->full)
            log_warnx("socketmap: %d clients connected "
                      "(socketmap.max_clients): refusing new connections; "
                      "Postfix answers 4xx meanwhile",
                      s->nclients);
        s->full = 1;
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->fd = fd;
    c->last = mxs_now_ms();
    pthread_mutex_init(&c->lock, NULL);
    peer_name(fd, c->peer, sizeof(c->peer));
    err = pthread_create(&c->tid, NULL, client_main, c);
    if (err != 0) {
        errno = err;
        log_warn("socketmap: cannot start a client thread");
        close(fd);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return;
    }
    c->next = s->clients;
    s->clients = c;
    s->nclients++;
}

/* listen_main - the listener thread: accept until smap_stop() */
static void *
listen_main(void *arg)
{
    struct smap *s = arg;

    while (!stopping(s)) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        int ready = poll(&pfd, 1, POLL_MS);

        reap(s, 0);
        if (ready < 0 && errno != EINTR) {
            log_warn("socketmap: poll");
            nap();
        }
        if (ready > 0)
            accept_one(s);
    }
    reap(s, 1);
    return NULL;
}

/* listen_inet - bind PORT[@HOST] for one address family; -1 on failure */
static int
listen_inet(const char *spec, int family, char *why, size_t whylen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16], host[256];
    const char *at = strchr(spec, '@');
    int fd = -1, on = 1, gai;

    snprintf(port, sizeof(port), "%.*s",
             (int)(at ? (size_t)(at - spec) : strlen(spec)), spec);
    snprintf(host, sizeof(host), "%s", at ? at + 1 : "");
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        mxs_why(why, whylen, "%s: %s", host, gai_strerror(gai));
        return -1;
    }
    mxs_why(why, whylen, "no address");
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            mxs_why(why, whylen, "socket: %s", strerror(errno));
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
            listen(fd, SOMAXCONN) != 0) {
            mxs_why(why, whylen, "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* listen_unix - bind a unix socket, replacing a stale one; -1 on failure */
static int
listen_unix(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        mxs_why(why, whylen, "path too long");
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mxs_why(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            mxs_why(why, whylen, "exists and is not a socket");
            close(fd);
            return -1;
        }
        /* A socket someone still answers on is in use, not stale. */
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            mxs_why(why, whylen, "in use by another server");
            close(fd);
            return -1;
        }
        close(fd);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || unlink(path) != 0) {
            mxs_why(why, whylen, "cannot replace the stale socket: %s",
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
    }
    /* XXX world-writable: any local user may ask; there is no secret. */
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, SOMAXCONN) != 0) {
        mxs_why(why, whylen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * smap_open - bind socketmap.socket; NULL when the server is off
 *
 * A socket that cannot be bound is fatal: this runs at startup.
 */
struct smap *
smap_open(const struct cfg *cfg)
{
    const char *spec = cfg->smap_socket;
    const char *path;
    char why[WHYLEN];
    struct smap *s;
    int fd;

    if (spec[0] == '\0')
        return NULL;
    path = cfg_unix_path(spec);
    if (path != NULL)
        fd = listen_unix(path, why, sizeof(why));
    else if (strncmp(spec, "inet6:", 6) == 0)
        fd = listen_inet(spec + 6, AF_INET6, why, sizeof(why));
    else
        fd = listen_inet(spec + 5, AF_INET, why, sizeof(why));
    if (fd < 0)
        fatalx("cannot listen on socketmap.socket %s: %s", spec, why);
    s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->fd = fd;
    pthread_mutex_init(&s->xlock, NULL);
    snprintf(s->x.remote, sizeof(s->x.remote), "%s", "smtp:");
    if (path != NULL)
        s->unix_path = xstrdup(path);
    return s;
}

/* smap_start - answer requests from now on; NULL is a no-op */
void
smap_start(struct smap *s, struct cache *cache, struct rclient *rc,
           struct dns *dns)
{
    int err;

    if (s == NULL)
        return;
    s->cache = cache;
    s->rc = rc;
    s->dns = dns;
    s->verify = verify_create(dns, s->cfg->smap_helo_name,
                              (size_t)s->cfg->cache_max_entries);
    err = pthread_create(&s->listener, NULL, listen_main, s);
    if (err != 0) {
        errno = err;
        fatal("socketmap: cannot start the listener thread");
    }
    s->running = 1;
    log_info("socketmap: maps transport, valias, rcpt, mode and verify on "
             "%s, at most %d clients; the recipient probe says EHLO %s",
             s->cfg->smap_socket, s->cfg->smap_max_clients,
             s->cfg->smap_helo_name[0] != '\0'
                 ? s->cfg->smap_helo_name
                 : "with the host's canonical name (found at the first probe)");
    {
        struct cfg_transports t;

        transports(s, s->cfg, mxs_now_ms(), &t); /* says where they are */
    }
}

/* smap_stop - stop and join every thread, close, free; NULL is a no-op */
void
smap_stop(struct smap *s)
{
    if (s == NULL)
        return;
    if (s->running) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
        pthread_join(s->listener, NULL);
    }
    verify_free(s->verify); /* its askers, the clients, are gone */
    close(s->fd);
    if (s->unix_path != NULL && unlink(s->unix_path) != 0)
        log_warn("socketmap: cannot remove %s", s->unix_path);
    free(s->unix_path);
    pthread_mutex_destroy(&s->xlock);
    free(s);
}
