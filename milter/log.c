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

/* log_vwrite - write one line at a priority, with an optional errno text */
static void
log_vwrite(int pri, int err, const char *fmt, va_list ap)
{
    char msg[2048];
    int n;

    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (err && n >= 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
    if (log_to_stderr) {
        static const char *const names[] = {"emerg", "alert",   "crit",
                                            "error", "warning", "notice",
                                            "info",  "debug"};
        struct timespec ts;
        struct tm tm;
        char stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s: %s: %s\n", stamp, ts.tv_nsec / 1000000,
                log_ident, names[pri & 7], msg);
    } else {
        syslog(pri, "%s", msg);
    }
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
