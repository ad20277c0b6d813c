/*
 * log.h - logging to syslog (facility mail) or to stderr in the foreground
 *
 * log_init() is called once before any thread starts; after that the
 * functions are thread safe: syslog locks internally, and stderr lines go
 * out whole and in order, one thread writing at a time; under load one
 * write(2) carries the lines of many threads.  log_close() returns when
 * every line is out.  log_warn() appends strerror(errno), log_warnx()
 * does not.  log_debug() prints only with -v.  fatal()/fatalx() log and
 * exit(1): for startup and broken invariants only.
 *
 * A struct log_batch gathers the lines of one unit of work (the decisions
 * at the end of one message) so that the foreground log gets them in one
 * write(2) instead of one per line; as a daemon each line goes to syslog
 * at once.  log_batch_open() and log_batch_close() make a line in place,
 * the caller putting its text in between with the mxs_text functions (no
 * printf): for the lines written for every recipient.  Lines keep their
 * order.  The batch is the caller's, used by one thread at a time: set
 * len to 0, add, then flush before it goes out of scope.  Nothing to free.
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <syslog.h> /* LOG_INFO ... for log_batch_add() */

#define LOG_LINE_MAX  2048 /* longest message text; longer ones are cut */
#define LOG_BATCH_MAX 16384

struct mxs_text;

struct log_batch {
    size_t len;
    int pri; /* the line log_batch_open() started */
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
int log_batch_open(struct log_batch *b, int pri, struct mxs_text *t);
void log_batch_close(struct log_batch *b, const struct mxs_text *t);
void log_batch_flush(struct log_batch *b);

#endif
