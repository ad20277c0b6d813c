/*
 * readahead.h - read each milter command in one read(2), not two
 *
 * libmilter reads a command with five system calls, though the MTA sent
 * it whole: a poll(2) for whether the next command has come, a poll and
 * a read(2) of its 5-byte header, a poll and a read of the rest.  When
 * libmilter asks for a command header and nothing is held for that
 * socket, this module reads up to READAHEAD_MAX bytes into a buffer of
 * the socket's and hands libmilter the header from it; libmilter's next
 * reads of the socket are served from the buffer, and its polls to read
 * the socket are answered yes at once while the buffer holds bytes, or
 * when the thread's poll just before found the socket readable and
 * nothing has read it since.  So a command costs one poll and one read,
 * and a command that came with the one before it (Postfix writes its
 * macros and their command together) costs none.  libmilter gets the same
 * bytes in the same order.
 *
 * This works by defining read() and close(), which libmilter.so calls
 * through the dynamic linker, and by coalesce.c's poll() asking
 * readahead_poll() first.  Only reads made by libmilter's own code (the
 * caller's address is in its text) are touched, and only a read of
 * exactly a header's size starts a buffer; every other call passes
 * straight through to the C library.  A socket's buffer is emptied when
 * the socket is closed, before the descriptor can be used again.
 *
 * Thread safety: a socket's buffer is used by the thread that runs its
 * session, as the socket itself is; libmilter hands a session from one
 * thread to another under its own mutex, and gives it back to its pool's
 * poll only when a poll for it said it had nothing to read (which, here,
 * means its buffer is empty too).  readahead_init() must run before
 * threads start; without it, or if libmilter cannot be found, nothing is
 * read ahead.  A socket's buffer is made on its first command and kept
 * for the next socket with that number (READAHEAD_MAX bytes each).
 * Each read served from a buffer, a read(2) saved, counts in stats
 * (mxswitch_milter_reads_saved_total).
 */
#ifndef READAHEAD_H
#define READAHEAD_H

#include <poll.h>
#include <stdint.h>

#define PKT_HDR       5     /* a milter packet: 4-byte length, then command */
#define READAHEAD_MAX 4096  /* bytes read ahead at most, per socket */
#define READAHEAD_FDS 65536 /* sockets with a higher number: no read-ahead */

int readahead_init(void);
int readahead_poll(struct pollfd *fds, nfds_t nfds, int timeout, uintptr_t from,
                   int (*kernel)(struct pollfd *, nfds_t, int));

#endif
