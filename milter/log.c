/*
 * log.c - syslog or stderr logging; see log.h
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"

/* The foreground log's queue and writer's turn: see log_out() */
#define LOG_QUEUE_MAX (64 * 1024)

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_done = PTHREAD_COND_INITIALIZER; /* a write ended */
static char q_bufs[2][LOG_QUEUE_MAX];
static char *q_buf = q_bufs[0]; /* the queue; the writer has the other */
static size_t q_len;
static size_t q_in, q_out; /* bytes ever queued, and written from the queue */
static int q_writing;      /* a thread has the writer's turn */

static int log_to_stderr = 1; /* until log_init says otherwise */
static int log_to_journal;    /* stderr is systemd's journal stream */
static int log_debug_on;
static const char *log_ident = "mxswitch";

/*
 * log_journal_stream - whether fd is the journal stream env names
 *
 * systemd sets JOURNAL_STREAM to "<st_dev>:<st_ino>" of the stream it
 * connected stdout/stderr to.  A child whose stderr was redirected
 * elsewhere inherits the variable: hence the comparison with fd itself.
 */
int
log_journal_stream(const char *env, int fd)
{
    unsigned long long dev, ino;
    struct stat st;
    int end = 0;

    if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
        env[end] != '\0' || fstat(fd, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

/* log_journal - whether stderr is systemd's journal (see above) */
int
log_journal(void)
{
    return log_journal_stream(getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

/* log_init - choose the destination; call before threads start */
void
log_init(const char *ident, int foreground, int verbose)
{
    log_ident = ident;
    log_to_stderr = foreground;
    log_to_journal = foreground && log_journal();
    log_debug_on = verbose;
    if (!foreground)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_stderr_lines - each line of text to stderr at a priority, with
 * the journal's "<N>" in front when stderr is the journal; before
 * log_init too (a configuration check's messages) */
void
log_stderr_lines(int pri, const char *text)
{
    int journal = log_journal();
    const char *nl;

    while (*text != '\0') {
        nl = strchr(text, '\n');
        if (nl == NULL)
            nl = text + strlen(text);
        if (journal)
            fprintf(stderr, "<%d>", pri & 7);
        fprintf(stderr, "%.*s\n", (int)(nl - text), text);
        text = *nl != '\0' ? nl + 1 : nl;
    }
}

/* log_close - release syslog; wait for the foreground queue to be out */
void
log_close(void)
{
    if (!log_to_stderr) {
        closelog();
        return;
    }
    pthread_mutex_lock(&q_lock);
    while (q_writing)
        pthread_cond_wait(&q_done, &q_lock);
    pthread_mutex_unlock(&q_lock);
}

/* log_verbose - whether debug lines are printed */
int
log_verbose(void)
{
    return log_debug_on;
}

#define LOG_ROOM (LOG_LINE_MAX + 128) /* a whole foreground line */

/*
 * log_line_start - a foreground line's start; its length (0: no room)
 *
 * For the journal "<N>" (N the syslog priority, sd-daemon(3)): it stamps
 * the line and knows the program.  Else "YYYY-MM-DD HH:MM:SS.mmm ident:
 * level: ", made by hand from the second's text, formatted once a second
 * per thread (localtime_r takes glibc's time zone lock), and the
 * milliseconds: this runs for every recipient.
 */
size_t
log_line_start(char *out, size_t outlen, const char *ident, int pri,
               int journal, const struct timespec *now)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                        "warning", "notice", "info", "debug"};
    static __thread time_t stamp_sec = -1;
    static __thread char stamp[32];
    static __thread size_t stamp_len;
    const char *name = names[pri & 7];
    size_t il = strlen(ident), nl = strlen(name), n;
    struct tm tm;
    long ms;

    if (journal) {
        if (outlen < 4)
            return 0;
        out[0] = '<';
        out[1] = (char)('0' + (pri & 7));
        out[2] = '>';
        return 3;
    }
    if (now->tv_sec != stamp_sec) {
        localtime_r(&now->tv_sec, &tm);
        stamp_len = strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
        stamp_sec = now->tv_sec;
    }
    n = stamp_len + 5 + il + 2 + nl + 2;
    if (n >= outlen)
        return 0;
    ms = now->tv_nsec / 1000000;
    memcpy(out, stamp, stamp_len);
    out += stamp_len;
    *out++ = '.';
    *out++ = (char)('0' + ms / 100);
    *out++ = (char)('0' + ms / 10 % 10);
    *out++ = (char)('0' + ms % 10);
    *out++ = ' ';
    memcpy(out, ident, il);
    out += il;
    *out++ = ':';
    *out++ = ' ';
    memcpy(out, name, nl);
    out += nl;
    *out++ = ':';
    *out = ' ';
    return n;
}

/* line_text - the message, with an optional errno text, in LOG_LINE_MAX
 * bytes at out (cut if longer); its length */
static size_t
line_text(char *out, int err, const char *fmt, va_list ap)
{
    int n = fmt_vprint(out, LOG_LINE_MAX, fmt, ap), m;

    if (n < 0)
        n = 0;
    if (n >= LOG_LINE_MAX)
        return LOG_LINE_MAX - 1;
    if (err) {
        m = fmt_print(out + n, LOG_LINE_MAX - (size_t)n, ": %s", strerror(err));
        if (m > 0)
            n = n + m < LOG_LINE_MAX ? n + m : LOG_LINE_MAX - 1;
    }
    return (size_t)n;
}

/* stderr_vline - a whole foreground line, formatted in place in LOG_ROOM
 * bytes at out; its length */
static size_t
stderr_vline(char *out, int pri, int err, const char *fmt, va_list ap)
{
    struct timespec now = {0, 0};
    size_t n;

    if (!log_to_journal)
        clock_gettime(CLOCK_REALTIME, &now);
    n = log_line_start(out, LOG_ROOM - LOG_LINE_MAX - 1, log_ident, pri,
                       log_to_journal, &now);

    n += line_text(out + n, err, fmt, ap);
    out[n++] = '\n';
    return n;
}

/* stderr_write - len bytes to stderr, retried after EINTR and short
 * writes; called by the one thread that holds the writer's turn */
static void
stderr_write(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to say so */
        buf += n;
        len -= (size_t)n;
    }
}

/*
 * log_out - send whole lines; with sync, return only once they are out
 *
 * The foreground log: lines go out whole and in order, one thread writing
 * at a time.  A thread with lines writes them itself when no other thread
 * is writing (so a lone message's lines are out before its reply); when
 * one is, it leaves them in the queue and goes on, and the writer takes
 * what queued up while it wrote, in one write(2), before it gives up its
 * turn.  Under load many messages' lines share a write.  Before, every
 * thread wrote its own lines: threads queued on the file's lock in the
 * kernel, and a writer put off the CPU while holding it stalled the rest
 * (log to a file against log to /dev/null, 8 connections: 0.81).  Not
 * through stdio: its lock is held across the write(2) too.  A thread that
 * finds the queue full waits for the writer, and fatal() waits until its
 * line is out, so nothing is lost or reordered on the way.
 */
static void
log_out(const char *buf, size_t len, int sync)
{
    size_t mark, n;
    char *mine;

    pthread_mutex_lock(&q_lock);
    while (q_writing && len > LOG_QUEUE_MAX - q_len)
        pthread_cond_wait(&q_done, &q_lock); /* room, or the turn is free */
    if (q_writing) {
        /* The writer takes them along. */
        memcpy(q_buf + q_len, buf, len);
        q_len += len;
        mark = q_in += len;
        while (sync && q_out < mark)
            pthread_cond_wait(&q_done, &q_lock);
        pthread_mutex_unlock(&q_lock);
        return;
    }
    q_writing = 1;
    pthread_mutex_unlock(&q_lock);
    stderr_write(buf, len);
    pthread_mutex_lock(&q_lock);
    while (q_len > 0) {
        mine = q_buf;
        n = q_len;
        q_buf = mine == q_bufs[0] ? q_bufs[1] : q_bufs[0];
        q_len = 0;
        pthread_cond_broadcast(&q_done); /* the queue has room again */
        pthread_mutex_unlock(&q_lock);
        stderr_write(mine, n);
        pthread_mutex_lock(&q_lock);
        q_out += n;
    }
    q_writing = 0;
    pthread_cond_broadcast(&q_done);
    pthread_mutex_unlock(&q_lock);
}

/* log_vwrite - write one line at a priority, with an optional errno text */
static void
log_vwrite(int pri, int err, const char *fmt, va_list ap)
{
    char line[LOG_ROOM];

    if (log_to_stderr) {
        log_out(line, stderr_vline(line, pri, err, fmt, ap), pri <= LOG_CRIT);
    } else {
        line_text(line, err, fmt, ap);
        syslog(pri, "%s", line);
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
