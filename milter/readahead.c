/*
 * readahead.c - read each milter command in one read(2), not two; see
 * readahead.h
 */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "readahead.h"
#include "stats.h"

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef int (*close_fn)(int);

/* One socket's bytes read ahead: data[off, len) is libmilter's next. */
struct rabuf {
    size_t off, len;
    char data[READAHEAD_MAX];
};

/* Set before threads start. */
static read_fn real_read;
static close_fn real_close;
static uintptr_t milter_lo, milter_hi; /* libmilter's text; 0, 0: none */

/* By descriptor; each used by the thread running its socket's session.
 * A buffer, once made, stays with its number for good: a close() may
 * come from a session that outlives the rest. */
static struct rabuf *bufs[READAHEAD_FDS];

/* What this thread's last poll learnt from the kernel: fd (a socket with
 * a buffer) readable, with these revents.  Good for the thread's next
 * poll only, if nothing read in between: only a read takes readability
 * away.  (The listening socket never has a buffer: accept(2), not read,
 * follows its poll.) */
static __thread struct {
    int fd;
    short revents;
} seen = {-1, 0};

/* find_milter - dl_iterate_phdr callback: libmilter's executable segment */
static int
find_milter(struct dl_phdr_info *info, size_t size, void *arg)
{
    int i;

    (void)size;
    (void)arg;
    if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libmilter") == NULL)
        return 0;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) != 0) {
            milter_lo = info->dlpi_addr + ph->p_vaddr;
            milter_hi = milter_lo + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

/* readahead_init - find the C library's read and close, and libmilter */
int
readahead_init(void)
{
    real_read = (read_fn)dlsym(RTLD_NEXT, "read");
    real_close = (close_fn)dlsym(RTLD_NEXT, "close");
    if (real_read == NULL || real_close == NULL)
        return -1;
    dl_iterate_phdr(find_milter, NULL);
    return milter_hi != 0 ? 0 : -1;
}

/* from_milter - whether a call came from libmilter's code */
static int
from_milter(uintptr_t from)
{
    return from >= milter_lo && from < milter_hi;
}

/* sys_read - the real read(2) */
static ssize_t
sys_read(int fd, void *buf, size_t n)
{
    if (real_read != NULL)
        return real_read(fd, buf, n);
    return syscall(SYS_read, fd, buf, n);
}

/* in_table - whether fd's number has a place in bufs */
static int
in_table(int fd)
{
    return fd >= 0 && fd < READAHEAD_FDS;
}

/* kept - whether fd is a socket libmilter has read a command from */
static int
kept(int fd)
{
    return in_table(fd) && bufs[fd] != NULL;
}

/* held - fd's buffer if it holds bytes, else NULL */
static struct rabuf *
held(int fd)
{
    return kept(fd) && bufs[fd]->off < bufs[fd]->len ? bufs[fd] : NULL;
}

/* take - up to n of b's bytes into buf; how many */
static size_t
take(struct rabuf *b, void *buf, size_t n)
{
    size_t avail = b->len - b->off;

    if (n > avail)
        n = avail;
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    return n;
}

/* fill - a header read on an empty buffer: read ahead, hand out the head */
static ssize_t
fill(int fd, void *buf, size_t n)
{
    struct rabuf *b = bufs[fd];
    ssize_t got;

    if (b == NULL) {
        b = malloc(sizeof(*b));
        if (b == NULL)
            return sys_read(fd, buf, n);
        bufs[fd] = b;
    }
    got = sys_read(fd, b->data, sizeof(b->data));
    if (got <= 0)
        return got;
    b->off = 0;
    b->len = (size_t)got;
    return (ssize_t)take(b, buf, n);
}

/*
 * read - libmilter's reads of its sockets from the buffer, a header read
 * on an empty one reading ahead; every other read is the C library's
 */
ssize_t
read(int fd, void *buf, size_t n)
{
    struct rabuf *b;

    seen.fd = -1;
    if (!from_milter((uintptr_t)__builtin_return_address(0)) || !in_table(fd))
        return sys_read(fd, buf, n);
    if ((b = held(fd)) != NULL) {
        stats_read_saved();
        return (ssize_t)take(b, buf, n);
    }
    if (n != PKT_HDR)
        return sys_read(fd, buf, n);
    return fill(fd, buf, n);
}

/* close - forget what was read ahead on fd before the number is free */
int
close(int fd)
{
    if (kept(fd))
        bufs[fd]->off = bufs[fd]->len = 0;
    if (real_close != NULL)
        return real_close(fd);
    return (int)syscall(SYS_close, fd);
}

/*
 * readahead_poll - libmilter's polls to read its sockets: yes without the
 * kernel while a socket's buffer holds bytes, or when the thread's last
 * poll found it readable and nothing has read it since; every other poll
 * is the kernel's
 */
int
readahead_poll(struct pollfd *fds, nfds_t nfds, int timeout, uintptr_t from,
               int (*kernel)(struct pollfd *, nfds_t, int))
{
    int last = seen.fd, n;
    nfds_t i;

    seen.fd = -1;
    if (!from_milter(from))
        return kernel(fds, nfds, timeout);
    if (nfds == 1 && (fds[0].events & POLLIN) != 0) {
        if (held(fds[0].fd) != NULL) {
            fds[0].revents = POLLIN;
            return 1;
        }
        if (fds[0].fd == last) {
            fds[0].revents = seen.revents;
            return 1;
        }
        n = kernel(fds, 1, timeout);
        if (n == 1 && (fds[0].revents & POLLIN) != 0 && kept(fds[0].fd)) {
            seen.fd = fds[0].fd;
            seen.revents = fds[0].revents;
        }
        return n;
    }
    /* The pool's poll of the sessions waiting for a command.  A session
     * only gets there after a poll found nothing to read, so no buffer
     * should hold bytes; if one does, it must not wait for the kernel. */
    for (i = 0; i < nfds; i++)
        if ((fds[i].events & POLLIN) != 0 && held(fds[i].fd) != NULL)
            break;
    if (i == nfds)
        return kernel(fds, nfds, timeout);
    if (kernel(fds, nfds, 0) < 0)
        for (i = 0; i < nfds; i++)
            fds[i].revents = 0;
    n = 0;
    for (i = 0; i < nfds; i++) {
        if ((fds[i].events & POLLIN) != 0 && held(fds[i].fd) != NULL)
            fds[i].revents = (short)(fds[i].revents | POLLIN);
        n += fds[i].revents != 0;
    }
    return n;
}
