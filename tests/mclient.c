/*
 * mclient - milter protocol client (the MTA side); contract in mclient.h
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "mclient.h"

struct mc {
    int fd;
    int timeout_ms;
    int negotiated;
    unsigned long version;  /* milter's answer to negotiation */
    unsigned long actions;  /* actions the milter may take */
    unsigned long protocol; /* milter's protocol flags */
    char *out;              /* packets to send: length, command, data */
    size_t outlen;
    size_t outcap;
    size_t pkt;        /* where in out the packet being built starts */
    unsigned together; /* packets still to hold back (mc_together()) */
    int holding;       /* out holds packets held back */
    size_t split_at;   /* mc_split(): bytes in the first write, or 0 */
    unsigned split_ms;
    struct mc_reply reply; /* result of the last step */
    size_t modcap;
    char in[4096]; /* received, not yet consumed: in[inpos..inlen) */
    size_t inpos;
    size_t inlen;
    char why[256]; /* non-empty after an error */
};

/* Steps with a reply, and the flags that skip them or drop the reply. */
static const struct step {
    int cmd;
    unsigned long skip;
    unsigned long noreply;
} steps[] = {
    {SMFIC_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN},
    {SMFIC_HELO, SMFIP_NOHELO, SMFIP_NR_HELO},
    {SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL},
    {SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT},
    {SMFIC_DATA, SMFIP_NODATA, SMFIP_NR_DATA},
    {SMFIC_UNKNOWN, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN},
    {SMFIC_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR},
    {SMFIC_EOH, SMFIP_NOEOH, SMFIP_NR_EOH},
    {SMFIC_BODY, SMFIP_NOBODY, SMFIP_NR_BODY},
    {SMFIC_BODYEOB, 0, 0},
};

/* Final replies. */
static const struct final {
    int code;
    enum mc_kind kind;
} finals[] = {
    {SMFIR_CONTINUE, MC_CONTINUE},  {SMFIR_ACCEPT, MC_ACCEPT},
    {SMFIR_REJECT, MC_REJECT},      {SMFIR_TEMPFAIL, MC_TEMPFAIL},
    {SMFIR_DISCARD, MC_DISCARD},    {SMFIR_REPLYCODE, MC_REPLYCODE},
    {SMFIR_SKIP, MC_SKIP},          {SMFIR_SHUTDOWN, MC_SHUTDOWN},
    {SMFIR_CONN_FAIL, MC_CONNFAIL},
};

/* Modifications: permission needed, number of NUL-ended strings. */
static const struct modinfo {
    int action;
    unsigned long flag;
    size_t min;
    size_t max;
    const char *name;
} mods[] = {
    {SMFIR_ADDRCPT, SMFIF_ADDRCPT, 1, 1, "addrcpt"},
    {SMFIR_DELRCPT, SMFIF_DELRCPT, 1, 1, "delrcpt"},
    {SMFIR_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR, 1, 2, "addrcpt_par"},
    {SMFIR_CHGFROM, SMFIF_CHGFROM, 1, 2, "chgfrom"},
    {SMFIR_ADDHEADER, SMFIF_ADDHDRS, 2, 2, "addheader"},
    {SMFIR_INSHEADER, SMFIF_ADDHDRS, 3, 3, "insheader"},
    {SMFIR_CHGHEADER, SMFIF_CHGHDRS, 3, 3, "chgheader"},
    {SMFIR_REPLBODY, SMFIF_CHGBODY, 0, 0, "replbody"},
    {SMFIR_QUARANTINE, SMFIF_QUARANTINE, 1, 1, "quarantine"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* xrealloc - realloc that aborts when memory runs out */
static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

/* xmalloc - malloc that aborts when memory runs out */
static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        abort();
    return p;
}

/* set_why - format a reason into a caller's buffer, if there is one */
static void
set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* fail - record the connection's (sticky) error; returns -1 */
static int
fail(struct mc *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->why, sizeof(m->why), fmt, ap);
    va_end(ap);
    if (m->why[0] == '\0')
        strcpy(m->why, "error");
    return -1;
}

/* get_u32 - decode a big-endian 32-bit number */
static unsigned long
get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (unsigned long)u[0] << 24 | (unsigned long)u[1] << 16 |
           (unsigned long)u[2] << 8 | (unsigned long)u[3];
}

/* now_ms - monotonic clock in milliseconds */
static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* wait_fd - wait until fd is ready for events, or fail at the deadline */
static int
wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p;
    long long left;
    int n;

    for (;;) {
        left = deadline - now_ms();
        if (left <= 0)
            return 0;
        p.fd = fd;
        p.events = events;
        p.revents = 0;
        n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* connect_one - connect a non-blocking socket within the timeout */
static int
connect_one(const struct sockaddr *sa, socklen_t salen, int timeout_ms,
            int *err)
{
    int fd, n;
    socklen_t len = sizeof(*err);

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, sa, salen) == 0)
        return fd;
    *err = errno;
    if (*err == EINPROGRESS) {
        n = wait_fd(fd, POLLOUT, now_ms() + timeout_ms);
        if (n < 0)
            *err = errno;
        else if (n == 0)
            *err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len) < 0)
            *err = errno;
        if (*err == 0)
            return fd;
    }
    close(fd);
    return -1;
}

/* open_unix - connect to a UNIX-domain socket */
static int
open_unix(const char *path, int timeout_ms, char *why, size_t whylen)
{
    struct sockaddr_un sun;
    int fd, err = 0;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (*path == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
        set_why(why, whylen, "bad socket path \"%s\"", path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    fd = connect_one((struct sockaddr *)&sun, sizeof(sun), timeout_ms, &err);
    if (fd < 0)
        set_why(why, whylen, "%s: %s", path, strerror(err));
    return fd;
}

/* open_inet - connect to PORT[@HOST] over IPv4 or IPv6 */
static int
open_inet(const char *rest, int family, int timeout_ms, char *why,
          size_t whylen)
{
    struct addrinfo hints, *res, *ai;
    char port[64], host[256];
    const char *at = strchr(rest, '@');
    size_t plen = at ? (size_t)(at - rest) : strlen(rest);
    int fd = -1, err = ECONNREFUSED, n;

    if (at == NULL)
        at = family == AF_INET ? "@127.0.0.1" : "@::1";
    n = snprintf(host, sizeof(host), "%s", at + 1);
    if (plen == 0 || plen >= sizeof(port) || n <= 0 ||
        (size_t)n >= sizeof(host)) {
        set_why(why, whylen, "bad socket address \"%s\"", rest);
        return -1;
    }
    if (family == AF_INET6 && n > 1 && host[0] == '[' && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    memcpy(port, rest, plen);
    port[plen] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    n = getaddrinfo(host, port, &hints, &res);
    if (n != 0) {
        set_why(why, whylen, "%s port %s: %s", host, port, gai_strerror(n));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai->ai_addr, ai->ai_addrlen, timeout_ms, &err);
    freeaddrinfo(res);
    if (fd < 0)
        set_why(why, whylen, "%s port %s: %s", host, port, strerror(err));
    return fd;
}

/* mc_open - connect to the milter at spec */
struct mc *
mc_open(const char *spec, int timeout_ms, char *why, size_t whylen)
{
    struct mc *m;
    int fd;

    if (timeout_ms <= 0) {
        set_why(why, whylen, "timeout must be positive");
        return NULL;
    }
    if (strncmp(spec, "unix:", 5) == 0)
        fd = open_unix(spec + 5, timeout_ms, why, whylen);
    else if (strncmp(spec, "local:", 6) == 0)
        fd = open_unix(spec + 6, timeout_ms, why, whylen);
    else if (spec[0] == '/')
        fd = open_unix(spec, timeout_ms, why, whylen);
    else if (strncmp(spec, "inet:", 5) == 0)
        fd = open_inet(spec + 5, AF_INET, timeout_ms, why, whylen);
    else if (strncmp(spec, "inet6:", 6) == 0)
        fd = open_inet(spec + 6, AF_INET6, timeout_ms, why, whylen);
    else {
        set_why(why, whylen, "unknown socket spec \"%s\"", spec);
        return NULL;
    }
    if (fd < 0)
        return NULL;
    m = xmalloc(sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->fd = fd;
    m->timeout_ms = timeout_ms;
    return m;
}

/* clear_reply - free the last step's result */
static void
clear_reply(struct mc *m)
{
    size_t i;

    for (i = 0; i < m->reply.nmods; i++) {
        free(m->reply.mods[i].argv);
        free(m->reply.mods[i].buf);
    }
    free(m->reply.text);
    m->reply.text = NULL;
    m->reply.nmods = 0;
    m->reply.kind = MC_ERROR;
}

/* mc_close - close the connection and free everything; NULL is ok */
void
mc_close(struct mc *m)
{
    if (m == NULL)
        return;
    clear_reply(m);
    free(m->reply.mods);
    free(m->out);
    close(m->fd);
    free(m);
}

/* mc_nodelay - no Nagle delay on a TCP connection */
int
mc_nodelay(struct mc *m)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int on = 1;

    if (getsockname(m->fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return 0;
    return setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* mc_error - reason for the last failure, "" if none */
const char *
mc_error(const struct mc *m)
{
    return m->why;
}

/* out_add - append bytes to the packet being built */
static void
out_add(struct mc *m, const void *p, size_t n)
{
    if (m->outcap - m->outlen < n) {
        m->outcap =
            m->outlen + n > 2 * m->outcap ? m->outlen + n + 256 : 2 * m->outcap;
        m->out = xrealloc(m->out, m->outcap);
    }
    memcpy(m->out + m->outlen, p, n);
    m->outlen += n;
}

/* out_str - append a string with its NUL */
static void
out_str(struct mc *m, const char *s)
{
    out_add(m, s, strlen(s) + 1);
}

/* out_u32 - append a big-endian 32-bit number */
static void
out_u32(struct mc *m, unsigned long v)
{
    unsigned char b[4];

    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
    out_add(m, b, 4);
}

/* begin - clear the last result and start a packet, if the state allows */
static int
begin(struct mc *m, int cmd, int need_negotiated)
{
    unsigned char c = (unsigned char)cmd;

    clear_reply(m);
    if (m->why[0] != '\0')
        return -1;
    if (need_negotiated && !m->negotiated)
        return fail(m, "command '%c' before negotiation", cmd);
    if (!m->holding)
        m->outlen = 0;
    m->pkt = m->outlen;
    out_add(m, "\0\0\0\0", 4);
    out_add(m, &c, 1);
    return 0;
}

/* send_bytes - out[from, to) to the milter before the deadline */
static int
send_bytes(struct mc *m, size_t done, size_t to, long long deadline)
{
    ssize_t k;
    int w;

    while (done < to) {
        k = send(m->fd, m->out + done, to - done, MSG_NOSIGNAL);
        if (k > 0) {
            done += (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            w = wait_fd(m->fd, POLLOUT, deadline);
            if (w < 0)
                return fail(m, "poll: %s", strerror(errno));
            if (w == 0)
                return fail(m, "timeout sending to milter");
        } else if (k < 0 && errno != EINTR) {
            return fail(m, "send: %s", strerror(errno));
        }
    }
    return 0;
}

/*
 * send_packet - fill in the length and send the packet built, with the
 * ones held back before it (mc_together()), in two writes if mc_split()
 */
static int
send_packet(struct mc *m)
{
    size_t n = m->outlen - m->pkt - 4, cut = m->split_at;
    long long deadline = now_ms() + m->timeout_ms;
    struct timespec pause = {m->split_ms / 1000,
                             (long)(m->split_ms % 1000) * 1000000L};
    char *p = m->out + m->pkt;

    if (n > MC_MAX_PACKET)
        return fail(m, "packet of %zu bytes too long to send", n);
    p[0] = (char)(n >> 24);
    p[1] = (char)(n >> 16);
    p[2] = (char)(n >> 8);
    p[3] = (char)n;
    if (m->together > 1) {
        m->together--;
        m->holding = 1;
        return 0;
    }
    m->together = 0;
    m->holding = 0;
    m->split_at = 0;
    if (cut == 0 || cut >= m->outlen)
        return send_bytes(m, 0, m->outlen, deadline);
    if (send_bytes(m, 0, cut, deadline) < 0)
        return -1;
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        ;
    return send_bytes(m, cut, m->outlen, now_ms() + m->timeout_ms);
}

/* mc_together - the next n packets go out in one write */
void
mc_together(struct mc *m, unsigned n)
{
    m->together = n;
}

/* mc_split - the next write goes out as its first n bytes, then the rest
 * ms milliseconds later */
void
mc_split(struct mc *m, size_t n, unsigned ms)
{
    m->split_at = n;
    m->split_ms = ms;
}

/*
 * recv_all - read exactly n bytes before the deadline
 *
 * Reads go through a buffer, as Postfix's VSTREAM does: replies that
 * arrived together (modifications, then the final reply) cost one recv.
 */
static int
recv_all(struct mc *m, char *p, size_t n, long long deadline)
{
    ssize_t k;
    size_t take;
    int w;

    while (n > 0) {
        if (m->inpos < m->inlen) {
            take = m->inlen - m->inpos < n ? m->inlen - m->inpos : n;
            memcpy(p, m->in + m->inpos, take);
            m->inpos += take;
            p += take;
            n -= take;
            continue;
        }
        k = recv(m->fd, m->in, sizeof(m->in), 0);
        if (k > 0) {
            m->inpos = 0;
            m->inlen = (size_t)k;
        } else if (k == 0) {
            return fail(m, "connection closed by milter");
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            w = wait_fd(m->fd, POLLIN, deadline);
            if (w < 0)
                return fail(m, "poll: %s", strerror(errno));
            if (w == 0)
                return fail(m, "timeout waiting for milter");
        } else if (errno != EINTR) {
            return fail(m, "recv: %s", strerror(errno));
        }
    }
    return 0;
}

/* read_packet - read one packet; *data (len bytes and a NUL) is the
 * caller's */
static int
read_packet(struct mc *m, int *cmd, char **data, size_t *len)
{
    long long deadline = now_ms() + m->timeout_ms;
    char hdr[5];
    unsigned long n;

    if (recv_all(m, hdr, 4, deadline) < 0)
        return -1;
    n = get_u32(hdr);
    if (n == 0 || n > MC_MAX_PACKET)
        return fail(m, "bad packet length %lu from milter", n);
    if (recv_all(m, hdr + 4, 1, deadline) < 0)
        return -1;
    *data = xmalloc(n);
    if (recv_all(m, *data, n - 1, deadline) < 0) {
        free(*data);
        return -1;
    }
    (*data)[n - 1] = '\0';
    *cmd = (unsigned char)hdr[4];
    *len = n - 1;
    return 0;
}

/* mc_negotiate - offer actions and protocol steps, take the milter's
 * choice */
int
mc_negotiate(struct mc *m, unsigned long actions, unsigned long protocol)
{
    unsigned long v, a, p;
    char *data;
    size_t len;
    int cmd;

    if (begin(m, SMFIC_OPTNEG, 0) < 0)
        return -1;
    if (m->negotiated)
        return fail(m, "already negotiated");
    if (actions > 0xffffffffUL || protocol > 0xffffffffUL)
        return fail(m, "negotiation values wider than 32 bits");
    out_u32(m, SMFI_PROT_VERSION);
    out_u32(m, actions);
    out_u32(m, protocol);
    if (send_packet(m) < 0 || read_packet(m, &cmd, &data, &len) < 0)
        return -1;
    v = len >= MILTER_OPTLEN ? get_u32(data) : 0;
    a = len >= MILTER_OPTLEN ? get_u32(data + 4) : 0;
    p = len >= MILTER_OPTLEN ? get_u32(data + 8) : 0;
    free(data);
    /* Data past the three numbers is a macro list (smfi_setsymlist). */
    if (cmd != SMFIC_OPTNEG || len < MILTER_OPTLEN)
        return fail(m, "bad negotiation reply '\\x%02x', %zu bytes", cmd, len);
    if (v < 2 || v > SMFI_PROT_VERSION)
        return fail(m, "milter protocol version %lu not supported", v);
    if ((a & ~actions) != 0)
        return fail(m, "milter wants actions 0x%lx, offered 0x%lx", a, actions);
    if ((p & ~protocol) != 0)
        return fail(m, "milter wants protocol 0x%lx, offered 0x%lx", p,
                    protocol);
    m->version = v;
    m->actions = a;
    m->protocol = p;
    m->negotiated = 1;
    return 0;
}

/* mc_negotiated - the values the milter answered with */
void
mc_negotiated(const struct mc *m, unsigned long *version,
              unsigned long *actions, unsigned long *protocol)
{
    *version = m->version;
    *actions = m->actions;
    *protocol = m->protocol;
}

/* mc_macro - send macro definitions for step cmd */
int
mc_macro(struct mc *m, char cmd, const char *const *namevals, size_t n)
{
    size_t i;

    if (begin(m, SMFIC_MACRO, 1) < 0)
        return -1;
    if (n % 2 != 0)
        return fail(m, "macro names and values do not pair up");
    out_add(m, &cmd, 1);
    for (i = 0; i < n; i++)
        out_str(m, namevals[i]);
    return send_packet(m);
}

/* add_mod - check one modification packet and append it to the reply;
 * takes data */
static int
add_mod(struct mc *m, const struct modinfo *mi, char *data, size_t len)
{
    struct mc_mod *mod;
    char *buf = data, *p;
    size_t n = len, i, count = 0;

    if ((m->actions & mi->flag) == 0 || m->reply.nmods >= MC_MAX_MODS) {
        free(data);
        return fail(m, "modification '%c' (%s) not allowed", mi->action,
                    m->reply.nmods >= MC_MAX_MODS ? "too many" : mi->name);
    }
    if (mi->action == SMFIR_INSHEADER || mi->action == SMFIR_CHGHEADER) {
        if (len < 4) {
            free(data);
            return fail(m, "malformed modification '%c' (%zu bytes)",
                        mi->action, len);
        }
        /* Index in decimal, then the strings: "N\0name\0value\0". */
        buf = xmalloc(len + 16);
        n = (size_t)snprintf(buf, 12, "%lu", get_u32(data));
        memcpy(buf + n + 1, data + 4, len - 4 + 1);
        n += 1 + len - 4;
        free(data);
    }
    for (i = 0; i < n; i++)
        count += buf[i] == '\0';
    if (mi->action == SMFIR_REPLBODY) {
        count = 1;
    } else if (n == 0 || buf[n - 1] != '\0' || count < mi->min ||
               count > mi->max) {
        free(buf);
        return fail(m, "malformed modification '%c' (%zu bytes)", mi->action,
                    len);
    }
    if (m->reply.nmods == m->modcap) {
        m->modcap = m->modcap ? 2 * m->modcap : 8;
        m->reply.mods =
            xrealloc(m->reply.mods, m->modcap * sizeof(*m->reply.mods));
    }
    mod = &m->reply.mods[m->reply.nmods++];
    mod->action = mi->action;
    mod->argc = count;
    mod->argv = xmalloc(count * sizeof(*mod->argv));
    mod->len = len;
    mod->buf = buf;
    for (i = 0, p = buf; i < count; i++, p += strlen(p) + 1)
        mod->argv[i] = p;
    return 0;
}

/* check_final - validate a final reply to cmd and store it */
static int
check_final(struct mc *m, int cmd, const struct final *f, char *data,
            size_t len)
{
    const char *t = data;

    if (f->kind == MC_REPLYCODE) {
        if (len < 4 || strlen(t) != len - 1 || (t[0] != '4' && t[0] != '5') ||
            t[1] < '0' || t[1] > '9' || t[2] < '0' || t[2] > '9' ||
            (t[3] != ' ' && t[3] != '-' && t[3] != '\0')) {
            free(data);
            return fail(m, "malformed reply code from milter");
        }
        m->reply.text = data;
        m->reply.kind = f->kind;
        return 0;
    }
    free(data);
    if (len != 0)
        return fail(m, "reply '%c' with %zu bytes of data", f->code, len);
    if (f->kind == MC_SKIP &&
        (cmd != SMFIC_BODY || (m->protocol & SMFIP_SKIP) == 0))
        return fail(m, "reply skip to command '%c' not allowed", cmd);
    m->reply.kind = f->kind;
    return 0;
}

/* read_reply - read modifications (end of message only) and the final
 * reply */
static int
read_reply(struct mc *m, int cmd)
{
    char *data;
    size_t len, i;
    int code;

    for (;;) {
        if (read_packet(m, &code, &data, &len) < 0)
            return -1;
        for (i = 0; i < NELEM(finals); i++)
            if (finals[i].code == code)
                return check_final(m, cmd, &finals[i], data, len);
        if (cmd == SMFIC_BODYEOB && code == SMFIR_PROGRESS) {
            free(data);
            continue;
        }
        for (i = 0; cmd == SMFIC_BODYEOB && i < NELEM(mods); i++)
            if (mods[i].action == code)
                break;
        if (cmd != SMFIC_BODYEOB || i == NELEM(mods)) {
            free(data);
            return fail(m, "unexpected reply '\\x%02x' to command '%c'", code,
                        cmd);
        }
        if (add_mod(m, &mods[i], data, len) < 0)
            return -1;
    }
}

/* run_step - send the packet built for a step and collect its reply */
static const struct mc_reply *
run_step(struct mc *m, int cmd)
{
    const struct step *s = steps;

    while (s->cmd != cmd)
        s++;
    if ((m->protocol & s->skip) != 0) {
        m->reply.kind = MC_SKIPPED;
        return &m->reply;
    }
    if (send_packet(m) < 0)
        return &m->reply;
    if ((m->protocol & s->noreply) != 0) {
        m->reply.kind = MC_NOREPLY;
        return &m->reply;
    }
    if (read_reply(m, cmd) < 0)
        clear_reply(m);
    return &m->reply;
}

/* mc_connect - send connection information */
const struct mc_reply *
mc_connect(struct mc *m, const char *host, char family, unsigned port,
           const char *addr)
{
    unsigned char pb[2];

    if (begin(m, SMFIC_CONNECT, 1) < 0)
        return &m->reply;
    if (port > 65535) {
        fail(m, "bad port %u", port);
        return &m->reply;
    }
    out_str(m, host);
    out_add(m, &family, 1);
    if (family != SMFIA_UNKNOWN) {
        pb[0] = (unsigned char)(port >> 8);
        pb[1] = (unsigned char)port;
        out_add(m, pb, 2);
        out_str(m, addr);
    }
    return run_step(m, SMFIC_CONNECT);
}

/* mc_helo - send the HELO/EHLO name */
const struct mc_reply *
mc_helo(struct mc *m, const char *name)
{
    if (begin(m, SMFIC_HELO, 1) < 0)
        return &m->reply;
    out_str(m, name);
    return run_step(m, SMFIC_HELO);
}

/* send_args - send a step whose data is a list of strings */
static const struct mc_reply *
send_args(struct mc *m, int cmd, const char *const *argv, size_t argc)
{
    size_t i;

    if (begin(m, cmd, 1) < 0)
        return &m->reply;
    if (argc == 0) {
        fail(m, "command '%c' needs an address", cmd);
        return &m->reply;
    }
    for (i = 0; i < argc; i++)
        out_str(m, argv[i]);
    return run_step(m, cmd);
}

/* mc_mail - send MAIL FROM: address and ESMTP arguments */
const struct mc_reply *
mc_mail(struct mc *m, const char *const *argv, size_t argc)
{
    return send_args(m, SMFIC_MAIL, argv, argc);
}

/* mc_rcpt - send RCPT TO: address and ESMTP arguments */
const struct mc_reply *
mc_rcpt(struct mc *m, const char *const *argv, size_t argc)
{
    return send_args(m, SMFIC_RCPT, argv, argc);
}

/* mc_unknown - send an unknown SMTP command line */
const struct mc_reply *
mc_unknown(struct mc *m, const char *line)
{
    return send_args(m, SMFIC_UNKNOWN, &line, 1);
}

/* mc_header - send one header */
const struct mc_reply *
mc_header(struct mc *m, const char *name, const char *value)
{
    if (begin(m, SMFIC_HEADER, 1) < 0)
        return &m->reply;
    out_str(m, name);
    out_str(m, value);
    return run_step(m, SMFIC_HEADER);
}

/* mc_body - send one body chunk */
const struct mc_reply *
mc_body(struct mc *m, const char *chunk, size_t len)
{
    if (begin(m, SMFIC_BODY, 1) < 0)
        return &m->reply;
    out_add(m, chunk, len);
    return run_step(m, SMFIC_BODY);
}

/* empty_step - send a step that carries no data */
static const struct mc_reply *
empty_step(struct mc *m, int cmd)
{
    if (begin(m, cmd, 1) < 0)
        return &m->reply;
    if (cmd == SMFIC_ABORT || cmd == SMFIC_QUIT) {
        if (send_packet(m) == 0)
            m->reply.kind = MC_NOREPLY;
        return &m->reply;
    }
    return run_step(m, cmd);
}

/* mc_data - send DATA */
const struct mc_reply *
mc_data(struct mc *m)
{
    return empty_step(m, SMFIC_DATA);
}

/* mc_eoh - send end of headers */
const struct mc_reply *
mc_eoh(struct mc *m)
{
    return empty_step(m, SMFIC_EOH);
}

/* mc_eom - send end of message; the reply lists the modifications */
const struct mc_reply *
mc_eom(struct mc *m)
{
    return empty_step(m, SMFIC_BODYEOB);
}

/* mc_abort - abort the current message */
const struct mc_reply *
mc_abort(struct mc *m)
{
    return empty_step(m, SMFIC_ABORT);
}

/* mc_quit - end the session */
const struct mc_reply *
mc_quit(struct mc *m)
{
    return empty_step(m, SMFIC_QUIT);
}

/* mc_kind_name - name of a reply kind */
const char *
mc_kind_name(enum mc_kind kind)
{
    static const char *const names[] = {
        "continue", "accept",   "reject",   "tempfail", "discard", "reply",
        "skip",     "shutdown", "connfail", "noreply",  "skipped", "error",
    };

    return (unsigned)kind < NELEM(names) ? names[kind] : "error";
}

/* mc_action_name - name of a modification action, NULL if unknown */
const char *
mc_action_name(int action)
{
    size_t i;

    for (i = 0; i < NELEM(mods); i++)
        if (mods[i].action == action)
            return mods[i].name;
    return NULL;
}
