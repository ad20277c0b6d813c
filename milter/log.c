/*
 * log.c - syslog or stderr logging; see log.h
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int log_to_stderr = 1; /* until log_init says otherwise */
static int log_debug_on;
static const char *log_ident = "mxswitch";

/* log_init - choose the destination; call before threads start */
void
log_init(const char *ident, int foreground, int verbose)
{
    log_ident = ident;
    log_to_stderr = foreground;
    log_debug_on = verbose;
    if (!foreground)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_close - release syslog */
void
log_close(void)
{
    if (!log_to_stderr)
        closelog();
}

/* log_verbose - whether debug lines are printed */
int
log_verbose(void)
{
    return log_debug_on;
}

/* stderr_line - a whole foreground log line, stamp to newline, in out */
static size_t
stderr_line(char *out, size_t outlen, int pri, const char *msg)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                        "warning", "notice", "info", "debug"};
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    n = snprintf(out, outlen, "%s.%03ld %s: %s: %s\n", stamp,
                 ts.tv_nsec / 1000000, log_ident, names[pri & 7], msg);
    if (n < 0)
        return 0;
    if ((size_t)n >= outlen) { /* cut, but keep the newline */
        out[outlen - 2] = '\n';
        return outlen - 1;
    }
    return (size_t)n;
}

/* log_vformat - the message text, with an optional errno text */
static void
log_vformat(char *msg, size_t msglen, int err, const char *fmt, va_list ap)
{
    int n = vsnprintf(msg, msglen, fmt, ap);

    if (err && n >= 0 && (size_t)n < msglen)
        snprintf(msg + n, msglen - (size_t)n, ": %s", strerror(err));
}

/* log_vwrite - write one line at a priority, with an optional errno text */
static void
log_vwrite(int pri, int err, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 128];
    size_t n;

    log_vformat(msg, sizeof(msg), err, fmt, ap);
    if (log_to_stderr) {
        n = stderr_line(line, sizeof(line), pri, msg);
        fwrite(line, 1, n, stderr);
    } else {
        syslog(pri, "%s", msg);
    }
}

/*
 * log_batch_add - a line for the batch; as a daemon, sent to syslog now
 *
 * In the foreground the batch is written when it has LOG_BATCH_MAX bytes
 * or at log_batch_flush(), in one write.
 */
void
log_batch_add(struct log_batch *b, int pri, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX];
    va_list ap;

    if (pri == LOG_DEBUG && !log_debug_on)
        return;
    va_start(ap, fmt);
    log_vformat(msg, sizeof(msg), 0, fmt, ap);
    va_end(ap);
    if (!log_to_stderr) {
        syslog(pri, "%s", msg);
        return;
    }
    if (b->len + LOG_LINE_MAX + 128 > sizeof(b->buf))
        log_batch_flush(b);
    b->len += stderr_line(b->buf + b->len, sizeof(b->buf) - b->len, pri, msg);
}

/* log_batch_flush - write the batch's lines, if any, and empty it */
void
log_batch_flush(struct log_batch *b)
{
    if (b->len > 0)
        fwrite(b->buf, 1, b->len, stderr);
    b->len = 0;
}

#define LOG_FN(name, pri, witherr)                                             \
    void name(const char *fmt, ...)                                            \
    {                                                                          \
        int saved = errno;                                                     \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        log_vwrite(pri, (witherr) ? saved : 0, fmt, ap);                       \
        va_end(ap);                                                            \
        errno = saved;                                                         \
    }

LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_warn, LOG_WARNING, 1)
LOG_FN(log_warnx, LOG_WARNING, 0)
LOG_FN(log_err, LOG_ERR, 0)

/* log_debug - a line only with -v */
void
log_debug(const char *fmt, ...)
{
    va_list ap;

    if (!log_debug_on)
        return;
    va_start(ap, fmt);
    log_vwrite(LOG_DEBUG, 0, fmt, ap);
    va_end(ap);
}

/* fatal - log with strerror(errno) and exit */
void
fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_CRIT, saved, fmt, ap);
    va_end(ap);
    exit(1);
}

/* fatalx - log and exit */
void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_CRIT, 0, fmt, ap);
    va_end(ap);
    exit(1);
}
