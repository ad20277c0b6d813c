/*
 * test_log - the foreground log under many threads
 *
 * Every decision line goes through log.c's queue: one thread writes at a
 * time and takes along what others queued meanwhile.  A line lost, torn,
 * doubled or put out of its thread's order there is a hole in the only
 * record of where mail went.  stderr is a file here; the lines are read
 * back and checked one by one.
 *
 * Under systemd (JOURNAL_STREAM names stderr) a line is "<N>text": the
 * journal takes N as its priority and stamps it itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

#define THREADS 8
#define LINES   6000 /* per thread */

/* A line's text: long enough that a write of queued lines is pages. */
#define PAD "................................................................"

static void *
talker(void *arg)
{
    int t = (int)(long)arg, i;

    for (i = 0; i < LINES; i++)
        log_info("t%d n%d " PAD " end", t, i);
    return NULL;
}

/* to_file - stderr into a new temporary file; its stream for reading */
static FILE *
to_file(void)
{
    FILE *f = tmpfile();

    if (f == NULL || dup2(fileno(f), STDERR_FILENO) < 0) {
        perror("test_log: stderr to a file");
        exit(2);
    }
    return f;
}

/* check_lines - every thread's lines, whole, once, in order */
static void
check_lines(void)
{
    int next_n[THREADS] = {0}, bad = 0, t, i;
    pthread_t th[THREADS];
    char line[512];
    FILE *f = to_file();
    long lines = 0;

    log_init("test_log", 1, 0);
    for (t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, talker, (void *)(long)t) != 0)
            abort();
    for (t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    log_close();
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *m = strstr(line, " test_log: info: t");
        size_t len = strlen(line);

        lines++;
        if (m == NULL || len < 5 || strcmp(line + len - 5, " end\n") != 0 ||
            sscanf(m, " test_log: info: t%d n%d", &t, &i) != 2 || t < 0 ||
            t >= THREADS || i != next_n[t]) {
            if (bad++ == 0)
                printf("first bad line %ld: %s", lines, line);
            continue;
        }
        next_n[t]++;
    }
    fclose(f);
    check_int("many threads", "lines", lines, (long)THREADS * LINES);
    check_int("many threads", "lines torn, doubled or out of order", bad, 0);
    for (t = 0; t < THREADS; t++)
        check_int("many threads", "one thread's lines", next_n[t], LINES);
}

/* check_fatal - fatalx() while other threads talk: its line is out before
 * the process ends */
static void
check_fatal(void)
{
    char line[512];
    int status, found = 0, round;
    pid_t pid;

    for (round = 0; round < 20; round++) {
        FILE *f = tmpfile();

        if (f == NULL)
            abort();
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            pthread_t th[THREADS];
            int t;

            dup2(fileno(f), STDERR_FILENO);
            log_init("test_log", 1, 0);
            for (t = 0; t < THREADS; t++)
                pthread_create(&th[t], NULL, talker, (void *)(long)t);
            usleep(1000);
            fatalx("the last word");
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
            abort();
        check_int("fatalx with others talking", "exit code",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
        rewind(f);
        while (fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, " test_log: crit: the last word\n") != NULL)
                found++;
        fclose(f);
    }
    check_int("fatalx with others talking", "rounds with its line", found, 20);
}

/* A line's start for a priority, with or without the journal. */
static const struct start_case {
    const char *name;
    int pri, journal;
    long sec, nsec;
    const char *want;
} start_cases[] = {
    {"info on a terminal: stamp, name, level", LOG_INFO, 0, 1796572800, 5000000,
     "2026-12-06 16:00:00.005 mxswitch: info: "},
    {"milliseconds are cut, not rounded", LOG_WARNING, 0, 1796572859, 999999999,
     "2026-12-06 16:00:59.999 mxswitch: warning: "},
    {"crit on a terminal", LOG_CRIT, 0, 1796572800, 0,
     "2026-12-06 16:00:00.000 mxswitch: crit: "},
    {"journal: info is <6>, no stamp", LOG_INFO, 1, 1796572800, 0, "<6>"},
    {"journal: warning is <4>", LOG_WARNING, 1, 1796572800, 0, "<4>"},
    {"journal: error is <3>", LOG_ERR, 1, 1796572800, 0, "<3>"},
    {"journal: crit (fatal) is <2>", LOG_CRIT, 1, 1796572800, 0, "<2>"},
    {"journal: debug is <7>", LOG_DEBUG, 1, 1796572800, 0, "<7>"},
    {"journal: a facility bit does not leak into the level",
     LOG_MAIL | LOG_INFO, 1, 1796572800, 0, "<6>"},
};

/* check_start - log_line_start for each case, in UTC */
static void
check_start(void)
{
    char out[256];
    size_t i, n;

    setenv("TZ", "UTC0", 1);
    tzset();
    for (i = 0; i < sizeof(start_cases) / sizeof(start_cases[0]); i++) {
        const struct start_case *c = &start_cases[i];
        struct timespec ts = {c->sec, c->nsec};

        n = log_line_start(out, sizeof(out), "mxswitch", c->pri, c->journal,
                           &ts);
        out[n] = '\0';
        check_str(c->name, "start", out, c->want);
    }
    check_int("no room for the stamp: nothing written", "length",
              (long)log_line_start(out, 10, "mxswitch", LOG_INFO, 0,
                                   &(struct timespec){0, 0}),
              0);
}

/* check_detect - which streams are the journal's */
static void
check_detect(void)
{
    FILE *f = tmpfile();
    struct stat st;
    char env[64];

    if (f == NULL || fstat(fileno(f), &st) != 0)
        abort();
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    check_int("JOURNAL_STREAM names the descriptor", "journal",
              log_journal_stream(env, fileno(f)), 1);
    check_int("no JOURNAL_STREAM", "journal",
              log_journal_stream(NULL, fileno(f)), 0);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    check_int("JOURNAL_STREAM names another stream (stderr redirected)",
              "journal", log_journal_stream(env, fileno(f)), 0);
    snprintf(env, sizeof(env), "%llu:%llux", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    check_int("JOURNAL_STREAM with trailing garbage", "journal",
              log_journal_stream(env, fileno(f)), 0);
    check_int("JOURNAL_STREAM empty", "journal",
              log_journal_stream("", fileno(f)), 0);
    fclose(f);
}

/* check_journal_lines - with stderr the journal stream, lines are
 * "<N>text"; log_stderr_lines prefixes each line it is given */
static void
check_journal_lines(void)
{
    FILE *f = to_file();
    char env[64], got[4096];
    struct stat st;
    size_t n;

    if (fstat(STDERR_FILENO, &st) != 0)
        abort();
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    log_init("test_log", 1, 1);
    log_info("started %d", 1);
    log_warnx("redis: down");
    errno = ENOENT;
    log_warn("cannot remove %s", "/run/x");
    log_err("reload rejected");
    log_debug("a debug line");
    log_stderr_lines(LOG_ERR, "f.conf:2: bad\nf.conf:3: worse\n");
    log_close();
    unsetenv("JOURNAL_STREAM");
    fflush(stderr);
    rewind(f);
    n = fread(got, 1, sizeof(got) - 1, f);
    got[n] = '\0';
    fclose(f);
    check_str("journal: each line its priority, no stamp, no name", "lines",
              got,
              "<6>started 1\n<4>redis: down\n<4>cannot remove /run/x: No "
              "such file or directory\n<3>reload rejected\n<7>a debug "
              "line\n<3>f.conf:2: bad\n<3>f.conf:3: worse\n");
    log_init("test_log", 1, 0);
}

int
main(void)
{
    int out = dup(STDERR_FILENO);

    alarm(120); /* a writer that never gives up its turn hangs the rest */
    unsetenv("JOURNAL_STREAM"); /* as if run under systemd: not here */
    check_start();
    check_detect();
    check_journal_lines();
    check_fatal();
    check_lines();
    dup2(out, STDERR_FILENO);
    return check_done("test_log");
}
