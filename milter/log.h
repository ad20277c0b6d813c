/*
 * log.h - logging to syslog (facility mail) or to stderr in the foreground
 *
 * log_init() is called once before any thread starts; after that the
 * functions are thread safe: syslog locks internally, and stderr lines go
 * out whole, in write(2)s of whole lines that other threads' lines cannot
 * tear.  log_warn() appends strerror(errno), log_warnx() does not.
 * log_debug() prints only with -v.  fatal()/fatalx() log and exit(1): for
 * startup and broken invariants only.
 *
 * A struct log_batch gathers the lines of one unit of work (the decisions
 * at the end of one message) so that the foreground log gets them in one
 * write(2) instead of one per line; as a daemon each line goes to syslog
 * at once.  log_batch_put() makes a line of pieces of text (const char *,
 * ending with NULL) without printf, for the lines written for every
 * recipient.  Lines keep their order.  The batch is the caller's, used by
 * one thread at a time: set len to 0, add, then flush before it goes out
 * of scope.  Nothing to free.
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <syslog.h> /* LOG_INFO ... for log_batch_add() */

#define LOG_LINE_MAX  2048 /* longest message text; longer ones are cut */
#define LOG_BATCH_MAX 16384

struct log_batch {
    size_t len;
    char buf[LOG_BATCH_MAX];
};

void log_init(const char *ident, int foreground, int verbose);
void log_close(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
int log_verbose(void);
void log_batch_add(struct log_batch *b, int pri, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_batch_put(struct log_batch *b, int pri, ...) __attribute__((sentinel));
void log_batch_flush(struct log_batch *b);

#endif
