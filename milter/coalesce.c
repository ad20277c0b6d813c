/*
 * coalesce.c - send end-of-message modifications with the final reply;
 * see coalesce.h
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "coalesce.h"
#include "readahead.h"
#include "stats.h"

#define IOV_EXTRA 7 /* libmilter writes a packet as header + data */

typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);

static writev_fn real_writev; /* set before threads start */
static poll_fn real_poll;

/* This thread's kept-back modifications. */
static __thread struct {
    int pending; /* coalesce_begin() called, no other packet written since */
    int fd;      /* the socket the kept bytes are for */
    size_t len;
    char buf[COALESCE_MAX];
} kept;

/* coalesce_init - find the C library's writev and poll; 0, or -1 if not */
int
coalesce_init(void)
{
    real_poll = (poll_fn)dlsym(RTLD_NEXT, "poll");
    real_writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
    if (real_poll == NULL)
        real_writev = NULL; /* then keep nothing back */
    return real_writev != NULL ? 0 : -1;
}

/* coalesce_begin - keep back this thread's modifications until a reply */
void
coalesce_begin(void)
{
    kept.len = 0; /* a reply that never came: its session is gone */
    kept.pending = real_writev != NULL;
}

/* sys_writev - the real writev(2) */
static ssize_t
sys_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (real_writev != NULL)
        return real_writev(fd, iov, iovcnt);
    return syscall(SYS_writev, fd, iov, iovcnt);
}

/* sys_poll - the real poll(2) */
static int
sys_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    if (real_poll != NULL)
        return real_poll(fds, nfds, timeout);
    return (int)syscall(SYS_poll, fds, nfds, timeout);
}

/* write_all - all of iov, across short writes; 0 or -1 with errno */
static int
write_all(int fd, struct iovec *iov, int iovcnt)
{
    struct pollfd p = {fd, POLLOUT, 0};

    while (iovcnt > 0) {
        ssize_t n = sys_writev(fd, iov, iovcnt);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (sys_poll(&p, 1, -1) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        if (n < 0)
            return -1;
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* flush_kept - the kept bytes, then iov (may be empty); 0 or -1 */
static int
flush_kept(int fd, const struct iovec *iov, int iovcnt)
{
    struct iovec v[1 + IOV_EXTRA];
    int n = 0, rc;

    if (kept.len > 0) {
        v[n].iov_base = kept.buf;
        v[n++].iov_len = kept.len;
    }
    if (iovcnt > 0) /* the caller checked that it fits */
        memcpy(&v[n], iov, (size_t)iovcnt * sizeof(*iov));
    rc = write_all(fd, v, n + iovcnt);
    kept.len = 0;
    return rc;
}

/* iov_len - bytes in iov */
static size_t
iov_len(const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    int i;

    for (i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    return len;
}

/* is_rcpt_mod - whether a packet is a recipient modification */
static int
is_rcpt_mod(const struct iovec *iov, int iovcnt)
{
    char cmd;

    if (iovcnt < 1 || iovcnt > IOV_EXTRA || iov[0].iov_len != PKT_HDR)
        return 0;
    cmd = ((const char *)iov[0].iov_base)[4];
    return cmd == '+' || cmd == '-' || cmd == '2';
}

/* keep - hold a modification back; its length, or -1 */
static ssize_t
keep(int fd, const struct iovec *iov, int iovcnt)
{
    size_t len = iov_len(iov, iovcnt);
    int i;

    /* full: out in order, and keep on keeping */
    if (kept.len > 0 && (kept.fd != fd || kept.len + len > sizeof(kept.buf)) &&
        flush_kept(kept.fd, NULL, 0) < 0)
        return -1;
    if (len > sizeof(kept.buf))
        return sys_writev(fd, iov, iovcnt);
    for (i = 0; i < iovcnt; i++) {
        memcpy(kept.buf + kept.len, iov[i].iov_base, iov[i].iov_len);
        kept.len += iov[i].iov_len;
    }
    kept.fd = fd;
    return (ssize_t)len;
}

/*
 * writev - libmilter's writes: keep modifications back while pending,
 * send them with the next other packet (the reply); else the C library's
 */
ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (!kept.pending)
        return sys_writev(fd, iov, iovcnt);
    if (is_rcpt_mod(iov, iovcnt))
        return keep(fd, iov, iovcnt);
    kept.pending = 0;
    if (kept.len == 0)
        return sys_writev(fd, iov, iovcnt);
    if (kept.fd != fd || iovcnt > IOV_EXTRA) {
        /* not the reply that was expected: the kept bytes go to their own
         * socket first, as they would have without keeping; a failure
         * there is that session's, not this write's */
        (void)flush_kept(kept.fd, NULL, 0);
        return sys_writev(fd, iov, iovcnt);
    }
    if (flush_kept(fd, iov, iovcnt) < 0)
        return -1;
    stats_coalesced();
    return (ssize_t)iov_len(iov, iovcnt);
}

/*
 * poll - libmilter asks whether its socket can take a packet before each
 * one: while modifications are kept back the answer is yes, without asking
 * the kernel (a kept packet needs no room, and the reply's writev waits
 * for room itself); every other poll goes to readahead_poll()
 */
#pragma GCC diagnostic push
/* glibc declares fds write-only (an access attribute); the caller filled
 * in events, as poll(2) says */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    if (kept.pending && nfds == 1 && fds[0].events == POLLOUT) {
        fds[0].revents = POLLOUT;
        return 1;
    }
    return readahead_poll(fds, nfds, timeout,
                          (uintptr_t)__builtin_return_address(0), sys_poll);
}
#pragma GCC diagnostic pop
