/*
 * verify.c - ask the better MX of a backup-mode domain about an address
 *
 * See verify.h.  The core (verify_rcpt_arg, verify_reply_get) is pure;
 * the rest is the shell: a job list shared by askers of the same address,
 * worker threads that hold the SMTP conversations, and three caches (the
 * cache module, one per answer, each with its own time to live).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "dns.h"
#include "fmt.h"
#include "log.h"
#include "mxs.h"
#include "verify.h"

#define SMTP_PORT     25
#define READ_MAX      4096   /* bytes of one reply held at most */
#define TICK_MS       250    /* how soon a wait notices verify_free() */
#define HELO_RETRY_MS 300000 /* an unqualified EHLO name is looked up again */
/* The RCPT TO argument: an address of ADDR_MAX, quoted and escaped. */
#define RCPT_ARG_MAX 2100

/* ---- pure core ---- */

/* is_atext - RFC 5322 atext */
static int
is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* is_dot_atom - a local part that needs no quotes */
static int
is_dot_atom(const char *s)
{
    const char *p;

    if (*s == '\0' || *s == '.')
        return 0;
    for (p = s; *p != '\0'; p++)
        if (*p == '.' ? p[1] == '.' || p[1] == '\0'
                      : !is_atext((unsigned char)*p))
            return 0;
    return 1;
}

/*
 * verify_rcpt_arg - "<local@domain>" for RCPT TO, the local part quoted
 * when it is no dot-atom; MXS_INVALID for what no SMTP command can carry
 * (control or 8-bit characters, an empty part, a bad domain) or too long
 */
int
verify_rcpt_arg(const char *local, const char *domain, char *out, size_t outlen)
{
    size_t at = 0;
    const char *p;

    for (p = local; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return MXS_INVALID;
    for (p = domain; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            return MXS_INVALID;
    if (*local == '\0' || *domain == '\0' || outlen < 3)
        return MXS_INVALID;
    out[at++] = '<';
    if (is_dot_atom(local)) {
        for (p = local; *p != '\0' && at < outlen; p++)
            out[at++] = *p;
    } else {
        out[at++] = '"';
        for (p = local; *p != '\0' && at + 1 < outlen; p++) {
            if (*p == '"' || *p == '\\')
                out[at++] = '\\';
            out[at++] = *p;
        }
        if (at < outlen)
            out[at++] = '"';
    }
    if (at + strlen(domain) + 3 > outlen)
        return MXS_INVALID;
    at += (size_t)fmt_print(out + at, outlen - at, "@%s>", domain);
    return MXS_OK;
}

/*
 * verify_rcpt_result - what a reply (code, text as verify_reply_get gives
 * them) to RCPT TO says of the address
 *
 * 2xx accepted, 4xx unknown, 5xx refused, except when its enhanced
 * status code (RFC 3463) says the refusal is about the probe, not the
 * address: subject 5 (protocol: a HELO name refused at RCPT, as Postfix
 * delays it there) or 7 (policy: relaying, a block list).  Such an
 * address is not known to be bad: unknown, so deferred, never refused.
 */
enum verify_result
verify_rcpt_result(int code, const char *text)
{
    size_t subject;

    if (code < 300)
        return VERIFY_ACCEPTED;
    if (code < 500)
        return VERIFY_UNKNOWN;
    if (text[0] != '5' || text[1] != '.')
        return VERIFY_REFUSED; /* no enhanced code: the reply's word */
    subject = strspn(text + 2, "0123456789");
    if (subject == 1 && (text[2] == '5' || text[2] == '7') && text[3] == '.' &&
        strspn(text + 4, "0123456789") > 0)
        return VERIFY_UNKNOWN;
    return VERIFY_REFUSED;
}

/*
 * verify_reply_get - one SMTP reply from the front of buf
 *
 * MXS_OK: *code is the reply's code, *used the bytes of all its lines,
 * text what its lines say (joined by blanks, cut to textlen).
 * MXS_NOMATCH: the reply is not complete yet.  MXS_INVALID: a line that
 * is no reply (no three digits, or a separator other than ' ' or '-').
 */
int
verify_reply_get(const char *buf, size_t len, int *code, size_t *used,
                 char *text, size_t textlen)
{
    size_t pos = 0, tl = 0;

    if (textlen > 0)
        text[0] = '\0';
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n, i;

        if (nl == NULL)
            return MXS_NOMATCH;
        n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
            line[1] > '9' || line[2] < '0' || line[2] > '9' ||
            (n > 3 && line[3] != ' ' && line[3] != '-'))
            return MXS_INVALID;
        for (i = 4; i < n && tl + 1 < textlen; i++) {
            if (i == 4 && tl > 0 && tl + 2 < textlen)
                text[tl++] = ' ';
            text[tl++] = (unsigned char)line[i] < 0x20 ? '?' : line[i];
        }
        if (textlen > 0)
            text[tl] = '\0';
        pos = (size_t)(nl - buf) + 1;
        if (n == 3 || line[3] == ' ') {
            *code =
                (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            *used = pos;
            return MXS_OK;
        }
    }
    return MXS_NOMATCH;
}

/* ---- I/O shell ---- */

struct job {
    struct job *next;  /* v->jobs: not done yet */
    struct job *qnext; /* v->queue: not started yet */
    char *local;
    char *domain;
    char *key; /* local@domain */
    int done;
    int refs; /* the worker's (until done) and each waiting asker's */
    enum verify_result result;
    char detail[VERIFY_REPLY_MAX + 256];
};

struct verify {
    struct dns *dns;
    char helo[256];
    uint64_t helo_until;      /* helo is host_name()'s unqualified fallback:
                               * look again from then (0: final) */
    struct cache *answers[3]; /* by enum verify_result */
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t done; /* a job is done */
    struct job *jobs;
    struct job *queue, *qtail;
    size_t queued;
    int stop;
    pthread_t tid[VERIFY_WORKERS];
    int nthreads;
};

/* One SMTP conversation: its socket and what was read but not used. */
struct conv {
    struct verify *v;
    int fd;
    size_t len;
    char buf[READ_MAX];
};

/* job_free - one job */
static void
job_free(struct job *j)
{
    free(j->local);
    free(j->domain);
    free(j->key);
    free(j);
}

/* stopping - whether verify_free() waits for the workers */
static int
stopping(struct verify *v)
{
    return __atomic_load_n(&v->stop, __ATOMIC_RELAXED);
}

/* dial - a TCP connection to ip, waiting VERIFY_STEP_MS; -1 with why */
static int
dial(struct verify *v, const struct dns_ip *ip, char *why, size_t whylen)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    struct timeval tv = {0, TICK_MS * 1000};
    int waited = 0;
    struct pollfd pfd;
    int fd, err = 0;
    socklen_t errlen = sizeof(err);

    memset(&sa, 0, sizeof(sa));
    if (ip->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;

        s4->sin_family = AF_INET;
        s4->sin_port = htons(SMTP_PORT);
        memcpy(&s4->sin_addr, ip->a, 4);
        salen = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(SMTP_PORT);
        memcpy(&s6->sin6_addr, ip->a, 16);
        salen = sizeof(*s6);
    }
    fd = socket(ip->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        mxs_why(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, salen) != 0 && errno != EINPROGRESS)
        err = errno;
    pfd.fd = fd;
    pfd.events = POLLOUT;
    while (err == 0 && poll(&pfd, 1, TICK_MS) != 1)
        if ((waited += TICK_MS) >= VERIFY_STEP_MS || stopping(v))
            err = ETIMEDOUT;
    if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0)
        err = errno;
    /* Blocking from here on, each read and write bounded. */
    if (err == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        err = errno;
    if (err == 0 &&
        (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
         setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0))
        err = errno;
    if (err != 0) {
        mxs_why(why, whylen, "connect: %s", strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * again - after a send or read failed with errno: whether to try again
 * (interrupted, or timed out for a tick before the step's deadline)
 */
static int
again(struct conv *c, uint64_t until)
{
    if (errno == EINTR)
        return 1;
    return errno == EAGAIN && mxs_now_ms() < until && !stopping(c->v);
}

/*
 * step - send line (unless NULL) and read the reply: its code, and its
 * text in text; -1 with why in text when the connection fails
 */
static int
step(struct conv *c, const char *line, char *text, size_t textlen)
{
    /* The whole step, not each read: a server that sends a byte now and
     * then must not hold a worker for long. */
    uint64_t until = mxs_now_ms() + VERIFY_STEP_MS;
    int code;
    size_t used;

    if (line != NULL) {
        size_t len = strlen(line), off = 0;

        while (off < len) {
            ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);

            if (n < 0 && again(c, until))
                continue;
            if (n <= 0) {
                mxs_why(text, textlen, "send: %s",
                        n < 0 ? strerror(errno) : "nothing sent");
                return -1;
            }
            off += (size_t)n;
        }
    }
    for (;;) {
        ssize_t n;

        switch (verify_reply_get(c->buf, c->len, &code, &used, text, textlen)) {
        case MXS_OK:
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return code;
        case MXS_INVALID:
            mxs_why(text, textlen, "a reply that is no SMTP reply");
            return -1;
        default:
            break;
        }
        if (c->len == sizeof(c->buf)) {
            mxs_why(text, textlen, "a reply longer than %d bytes", READ_MAX);
            return -1;
        }
        if (mxs_now_ms() >= until) {
            mxs_why(text, textlen, "read: no whole reply within %d s",
                    VERIFY_STEP_MS / 1000);
            return -1;
        }
        n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (n < 0 && again(c, until))
            continue;
        if (n <= 0) {
            mxs_why(text, textlen, "read: %s",
                    n == 0            ? "connection closed"
                    : errno == EAGAIN ? "timed out"
                                      : strerror(errno));
            return -1;
        }
        c->len += (size_t)n;
    }
}

/*
 * converse - ask one address of one host; the result, or -1 to try the
 * next address; detail says what was seen
 */
static int
converse(struct verify *v, const char *helo, const struct dns_host *h,
         const struct dns_ip *ip, const char *rcpt, char *detail, size_t detlen)
{
    struct conv *c = xmalloc(sizeof(*c));
    char peer[DNS_NAME_MAX + 64], addr[64], text[VERIFY_REPLY_MAX];
    char line[RCPT_ARG_MAX + 16];
    const char *what = "greeting";
    int code, result = -1;

    dns_ip_format(ip, addr, sizeof(addr));
    fmt_print(peer, sizeof(peer), "%s[%s]", h->name, addr);
    c->v = v;
    c->len = 0;
    c->fd = dial(v, ip, text, sizeof(text));
    if (c->fd < 0) {
        fmt_print(detail, detlen, "%s: %s", peer, text);
        free(c);
        return -1;
    }
    code = step(c, NULL, text, sizeof(text));
    if (code == 220) {
        what = "EHLO";
        fmt_print(line, sizeof(line), "EHLO %s\r\n", helo);
        code = step(c, line, text, sizeof(text));
        if (code >= 500) {
            what = "HELO";
            fmt_print(line, sizeof(line), "HELO %s\r\n", helo);
            code = step(c, line, text, sizeof(text));
        }
    }
    if (code >= 200 && code < 300) {
        what = "MAIL FROM:<>";
        code = step(c, "MAIL FROM:<>\r\n", text, sizeof(text));
    }
    if (code >= 200 && code < 300) {
        what = "RCPT TO";
        fmt_print(line, sizeof(line), "RCPT TO:%s\r\n", rcpt);
        code = step(c, line, text, sizeof(text));
        result = code < 0 ? -1 : (int)verify_rcpt_result(code, text);
    }
    if (code < 0)
        fmt_print(detail, detlen, "%s: %s (after %s)", peer, text, what);
    else
        fmt_print(detail, detlen, "%s said %d %s (to %s)", peer, code, text,
                  what);
    if (code >= 0)
        (void)send(c->fd, "QUIT\r\n", 6, MSG_NOSIGNAL);
    close(c->fd);
    free(c);
    return result;
}

/* probe - the better MX's answer for one job, and its detail */
/*
 * host_name - the host's canonical name, found as Sendmail finds $j and
 * hostname -f its answer: gethostname(), then getaddrinfo's canonical
 * name for it when that has a dot, else the bare host name.  A better MX
 * may refuse a name that is not fully qualified.
 */
static int
host_name(char *out, size_t outlen)
{
    struct addrinfo hints, *ai = NULL;
    char host[256];
    int qualified;

    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    if (host[0] == '\0')
        fmt_print(host, sizeof(host), "localhost");
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_CANONNAME;
    hints.ai_socktype = SOCK_STREAM;
    qualified = getaddrinfo(host, NULL, &hints, &ai) == 0 &&
                ai->ai_canonname != NULL &&
                strchr(ai->ai_canonname, '.') != NULL;
    fmt_print(out, outlen, "%s", qualified ? ai->ai_canonname : host);
    if (ai != NULL)
        freeaddrinfo(ai);
    return qualified || strchr(host, '.') != NULL;
}

/*
 * helo_of - the EHLO name: the one given, or host_name() once, outside
 * the lock (two workers may both look it up the first time).  A name it
 * could not qualify (the resolver failed just then) is used for
 * HELO_RETRY_MS, then looked up again: a better MX that wants a qualified
 * name would otherwise refuse every probe until a restart.
 */
static void
helo_of(struct verify *v, char *out, size_t outlen)
{
    uint64_t now = mxs_now_ms();
    int again;

    xlock(&v->lock);
    fmt_print(out, outlen, "%s", v->helo);
    again = out[0] == '\0' || (v->helo_until != 0 && now >= v->helo_until);
    xunlock(&v->lock);
    if (!again)
        return;
    again = !host_name(out, outlen);
    xlock(&v->lock);
    fmt_print(v->helo, sizeof(v->helo), "%s", out);
    v->helo_until = again ? now + HELO_RETRY_MS : 0;
    xunlock(&v->lock);
}

static enum verify_result
probe(struct verify *v, struct job *j)
{
    struct dns_mxset *mx = xmalloc(sizeof(*mx));
    char rcpt[RCPT_ARG_MAX], why[256], helo[256];
    size_t h, a;
    int r = -1;

    if (verify_rcpt_arg(j->local, j->domain, rcpt, sizeof(rcpt)) != MXS_OK) {
        fmt_print(j->detail, sizeof(j->detail),
                  "the address cannot be put in an SMTP command");
        free(mx);
        return VERIFY_UNKNOWN;
    }
    if (dns_better_mx(v->dns, j->domain, mx, why, sizeof(why)) != MXS_OK) {
        fmt_print(j->detail, sizeof(j->detail), "DNS: %s", why);
        free(mx);
        return VERIFY_UNKNOWN;
    }
    fmt_print(j->detail, sizeof(j->detail),
              "no MX host of %s better than this server has an address",
              j->domain);
    helo_of(v, helo, sizeof(helo));
    for (h = 0; r < 0 && h < mx->n && !stopping(v); h++)
        for (a = 0; r < 0 && a < mx->host[h].naddr; a++)
            r = converse(v, helo, &mx->host[h], &mx->host[h].addr[a], rcpt,
                         j->detail, sizeof(j->detail));
    free(mx);
    return r < 0 ? VERIFY_UNKNOWN : (enum verify_result)r;
}

/* worker_main - take queued jobs until stopped */
static void *
worker_main(void *arg)
{
    struct verify *v = arg;

    xlock(&v->lock);
    for (;;) {
        struct job *j, **pp;
        enum verify_result r;
        struct cache *c;

        while (!v->stop && v->queue == NULL)
            pthread_cond_wait(&v->work, &v->lock);
        if (v->stop)
            break;
        j = v->queue;
        v->queue = j->qnext;
        if (v->queue == NULL)
            v->qtail = NULL;
        v->queued--;
        xunlock(&v->lock);
        r = probe(v, j);
        c = v->answers[r];
        cache_put(c, j->key, 1, mxs_now_ms(), cache_generation(c));
        xlock(&v->lock);
        j->result = r;
        j->done = 1;
        for (pp = &v->jobs; *pp != j; pp = &(*pp)->next)
            ;
        *pp = j->next;
        pthread_cond_broadcast(&v->done);
        if (--j->refs == 0)
            job_free(j);
    }
    xunlock(&v->lock);
    return NULL;
}

/* verify_create - see verify.h */
struct verify *
verify_create(struct dns *d, const char *helo, size_t max_entries)
{
    static const unsigned ttl_s[3] = {VERIFY_ACCEPT_TTL_S, VERIFY_REFUSE_TTL_S,
                                      VERIFY_UNKNOWN_TTL_S};
    struct verify *v = xcalloc(1, sizeof(*v));
    pthread_condattr_t attr;
    int i;

    v->dns = d;
    fmt_print(v->helo, sizeof(v->helo), "%s", helo);
    for (i = 0; i < 3; i++)
        v->answers[i] = cache_create(max_entries, ttl_s[i] * 1000ULL);
    if (pthread_mutex_init(&v->lock, NULL) != 0 ||
        pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&v->done, &attr) != 0 ||
        pthread_cond_init(&v->work, NULL) != 0)
        fatalx("verify: mutex init failed");
    pthread_condattr_destroy(&attr);
    for (i = 0; i < VERIFY_WORKERS; i++)
        if (pthread_create(&v->tid[v->nthreads], NULL, worker_main, v) == 0)
            v->nthreads++;
    if (v->nthreads == 0)
        fatalx("verify: cannot start a thread");
    return v;
}

/* verify_free - see verify.h */
void
verify_free(struct verify *v)
{
    struct job *j;
    int i;

    if (v == NULL)
        return;
    xlock(&v->lock);
    __atomic_store_n(&v->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&v->work);
    xunlock(&v->lock);
    for (i = 0; i < v->nthreads; i++)
        pthread_join(v->tid[i], NULL);
    while ((j = v->jobs) != NULL) { /* queued or given up by a worker */
        v->jobs = j->next;
        job_free(j);
    }
    for (i = 0; i < 3; i++)
        cache_free(v->answers[i]);
    pthread_cond_destroy(&v->work);
    pthread_cond_destroy(&v->done);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

/* verify_ask - see verify.h */
enum verify_result
verify_ask(struct verify *v, const char *local, const char *domain,
           uint64_t now_ms, uint64_t wait_ms, char *detail, size_t detlen)
{
    static const char *const remembered[3] = {"accepted", "refused",
                                              "not known"};
    size_t klen = strlen(local) + strlen(domain) + 2;
    char *key = xmalloc(klen);
    enum verify_result r;
    struct timespec until;
    struct job *j;
    int i;

    fmt_print(key, klen, "%s@%s", local, domain);
    for (i = 0; i < 3; i++)
        if (cache_get(v->answers[i], key, now_ms) >= 0) {
            fmt_print(detail, detlen, "remembered: %s by the better MX",
                      remembered[i]);
            free(key);
            return (enum verify_result)i;
        }
    mxs_deadline(CLOCK_MONOTONIC, wait_ms, &until);
    xlock(&v->lock);
    for (j = v->jobs; j != NULL && strcmp(j->key, key) != 0; j = j->next)
        ;
    if (j == NULL && v->queued >= VERIFY_QUEUE_MAX) {
        xunlock(&v->lock);
        fmt_print(detail, detlen, "%d probes already waiting",
                  VERIFY_QUEUE_MAX);
        free(key);
        return VERIFY_UNKNOWN;
    }
    if (j == NULL) {
        j = xcalloc(1, sizeof(*j));
        j->local = xstrdup(local);
        j->domain = xstrdup(domain);
        j->key = key;
        key = NULL;
        j->refs = 1;
        j->next = v->jobs;
        v->jobs = j;
        if (v->qtail != NULL)
            v->qtail->qnext = j;
        else
            v->queue = j;
        v->qtail = j;
        v->queued++;
        pthread_cond_signal(&v->work);
    }
    j->refs++;
    while (!j->done && pthread_cond_timedwait(&v->done, &v->lock, &until) == 0)
        ;
    r = j->done ? j->result : VERIFY_UNKNOWN;
    fmt_print(detail, detlen, "%s", j->done ? j->detail : "probe in progress");
    if (--j->refs == 0)
        job_free(j);
    xunlock(&v->lock);
    free(key);
    return r;
}
