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
 * In the foreground a line is "YYYY-MM-DD HH:MM:SS.mmm ident: level: text"
 * unless stderr is systemd's journal stream (JOURNAL_STREAM names it):
 * then "<N>text", N the syslog priority, which the journal takes as the
 * line's priority (SyslogLevelPrefix=, on by default); it adds its own
 * time stamp and the program's name.  log_journal() tells whether
 * stderr is that stream (log_journal_stream() with the variable and a
 * descriptor given); log_stderr_lines() writes lines of text to stderr,
 * before log_init() too, with "<N>" when it is.  log_line_start() is the
 * pure part of a foreground line: the stamp, or "<N>", for a given time.
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <syslog.h> /* LOG_INFO ... */
#include <time.h>

#define LOG_LINE_MAX 2048 /* longest message text; longer ones are cut */

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
int log_journal_stream(const char *env, int fd);
int log_journal(void);
void log_stderr_lines(int pri, const char *text);
size_t log_line_start(char *out, size_t outlen, const char *ident, int pri,
                      int journal, const struct timespec *now);

#endif
