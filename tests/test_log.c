/*
 * test_log - the foreground log under many threads
 *
 * Every decision line goes through log.c's queue: one thread writes at a
 * time and takes along what others queued meanwhile.  A line lost, torn,
 * doubled or put out of its thread's order there is a hole in the only
 * record of where mail went.  stderr is a file here; the lines are read
 * back and checked one by one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int
main(void)
{
    int out = dup(STDERR_FILENO);

    alarm(120); /* a writer that never gives up its turn hangs the rest */
    check_fatal();
    check_lines();
    dup2(out, STDERR_FILENO);
    return check_done("test_log");
}
