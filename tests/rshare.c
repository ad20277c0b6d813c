/*
 * rshare - the Redis pool's shared round trips against a real redis-server
 *
 *   rshare PORT CASE [N]
 *
 * Run by tests/test_rclient.sh, which starts the server.  Threads call
 * rclient_mget() at once, each for keys of its own, so that commands
 * queue behind the round trips under way and go out together; every
 * answer must be the one for the thread's own keys.  CASE:
 *
 *   share   32 threads while Redis is held (CLIENT PAUSE) with 2
 *           connections: all 32 must go out in a few round trips
 *           (mxswitch_redis_round_trips_total), each thread its answer
 *   many    48 threads x N lookups (default 2000) on 4 connections
 *   pause   Redis held longer than timeout_ms: every waiting lookup
 *           fails, none hangs, and lookups work again afterwards
 *   gone    Redis shut down (SHUTDOWN NOSAVE) under load: each lookup
 *           either has its right answer or fails; run this one last
 *
 * Prints "FAIL ..." per wrong answer and "rshare CASE: N passed, N failed".
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mxs.h"
#include "rclient.h"
#include "stats.h"

static int g_port;
static struct rclient *g_rc;
static int g_stop; /* gone: the threads stop (atomic) */

/* Per thread: what it did and what went wrong. */
struct worker {
    pthread_t tid;
    int id, n;
    int ok, failed, wrong;
    char first_why[256]; /* of the first failure */
    char first_wrong[256];
};

/* raw - a plain hiredis context to set keys and hold the server */
static redisContext *
raw(void)
{
    redisContext *c = redisConnect("127.0.0.1", g_port);

    if (c == NULL || c->err) {
        fprintf(stderr, "rshare: cannot connect to port %d\n", g_port);
        exit(2);
    }
    return c;
}

/* raw_ok - run a command on c; exits unless the reply is not an error */
static void
raw_ok(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "rshare: %s: %s\n", cmd, r ? r->str : c->errstr);
        exit(2);
    }
    freeReplyObject(r);
}

/* Keys: rs:T:I holds "v-T-I" when I is even; odd ones do not exist. */
static void
fill(int threads, int items)
{
    redisContext *c = raw();
    int t, i;

    for (t = 0; t < threads; t++)
        for (i = 0; i < items; i += 2)
            redisAppendCommand(c, "SET rs:%d:%d v-%d-%d", t, i, t, i);
    for (t = 0; t < threads; t++)
        for (i = 0; i < items; i += 2) {
            void *r;

            if (redisGetReply(c, &r) != REDIS_OK) {
                fprintf(stderr, "rshare: SET: %s\n", c->errstr);
                exit(2);
            }
            freeReplyObject(r);
        }
    redisFree(c);
}

/* ask - one MGET of rs:id:i, rs:id:i+1, rs:id:i+2; checks the answer */
static void
ask(struct worker *w, int i)
{
    char kbuf[3][64], why[256];
    const char *keys[3];
    struct rclient_value v[3];
    int k, bad = 0;

    for (k = 0; k < 3; k++) {
        snprintf(kbuf[k], sizeof(kbuf[k]), "rs:%d:%d", w->id, i + k);
        keys[k] = kbuf[k];
    }
    why[0] = '\0';
    if (rclient_mget(g_rc, keys, 3, v, why, sizeof(why)) != MXS_OK) {
        if (w->failed++ == 0)
            snprintf(w->first_why, sizeof(w->first_why), "%s", why);
        return;
    }
    for (k = 0; k < 3; k++) {
        char want[64];

        snprintf(want, sizeof(want), "v-%d-%d", w->id, i + k);
        if ((i + k) % 2 == 0
                ? v[k].type != RCLIENT_STRING || strcmp(v[k].str, want) != 0
                : v[k].type != RCLIENT_NIL) {
            if (bad++ == 0 && w->wrong == 0)
                snprintf(w->first_wrong, sizeof(w->first_wrong), "%s: got %s",
                         keys[k],
                         v[k].type == RCLIENT_STRING ? v[k].str : "(nil)");
        }
    }
    rclient_values_clear(v, 3);
    if (bad)
        w->wrong++;
    else
        w->ok++;
}

/* work - the thread: n lookups, or until g_stop when n is 0 */
static void *
work(void *arg)
{
    struct worker *w = arg;
    int i;

    for (i = 0;
         w->n == 0 ? !__atomic_load_n(&g_stop, __ATOMIC_RELAXED) : i < w->n;
         i++)
        ask(w, (i * 7) % 40);
    return NULL;
}

/* pool - a client for 127.0.0.1:PORT */
static struct rclient *
pool(int connections, int timeout_ms)
{
    struct rclient_conf conf;

    memset(&conf, 0, sizeof(conf));
    conf.server.host = "127.0.0.1";
    conf.server.port = g_port;
    conf.server.timeout_ms = timeout_ms;
    conf.connections = connections;
    return rclient_create(&conf);
}

/* run - start threads workers with n lookups each; join them */
static struct worker *
run(int threads, int n)
{
    struct worker *w = xcalloc((size_t)threads, sizeof(*w));
    int t;

    for (t = 0; t < threads; t++) {
        w[t].id = t;
        w[t].n = n;
        if (pthread_create(&w[t].tid, NULL, work, &w[t]) != 0) {
            perror("pthread_create");
            exit(2);
        }
    }
    return w;
}

static void
join(struct worker *w, int threads)
{
    int t;

    for (t = 0; t < threads; t++)
        pthread_join(w[t].tid, NULL);
}

/* totals - join the workers and add them up; prints the first wrong
 * answer and failure of each */
static void
totals(struct worker *w, int threads, int *ok, int *failed, int *wrong)
{
    int t;

    join(w, threads);
    *ok = *failed = *wrong = 0;
    for (t = 0; t < threads; t++) {
        *ok += w[t].ok;
        *failed += w[t].failed;
        *wrong += w[t].wrong;
        if (w[t].wrong)
            printf("thread %d: wrong answer: %s\n", t, w[t].first_wrong);
        if (w[t].failed)
            printf("thread %d: %d failed: %s\n", t, w[t].failed,
                   w[t].first_why);
    }
}

/* trips - mxswitch_redis_round_trips_total so far */
static long long
trips(void)
{
    const char *name = "\nmxswitch_redis_round_trips_total ";
    char *text = stats_render(), *p = strstr(text, name);
    long long n = p ? atoll(p + strlen(name)) : -1;

    free(text);
    return n;
}

static void
case_share(void)
{
    redisContext *c = raw();
    struct worker *w;
    long long before;
    int ok, failed, wrong;

    fill(32, 4);
    g_rc = pool(2, 10000);
    w = run(1, 1); /* connect before the server is held */
    join(w, 1);
    free(w);
    before = trips();
    /* Long enough for all 32 threads to be waiting: under valgrind,
     * which runs one thread at a time, starting them takes seconds. */
    raw_ok(c, getenv("RSHARE_SLOW") ? "CLIENT PAUSE 5000 ALL"
                                    : "CLIENT PAUSE 500 ALL");
    w = run(32, 1);
    totals(w, 32, &ok, &failed, &wrong);
    check_int("share", "lookups answered right", ok, 32);
    check_int("share", "wrong answers", wrong, 0);
    printf("share: 32 lookups in %lld round trips\n", trips() - before);
    check_int("share", "32 lookups in at most 8 round trips",
              trips() - before <= 8, 1);
    free(w);
    redisFree(c);
}

static void
case_many(int n)
{
    struct worker *w;
    int ok, failed, wrong;
    long long before;

    fill(48, 42);
    g_rc = pool(4, 10000);
    before = trips();
    w = run(48, n);
    totals(w, 48, &ok, &failed, &wrong);
    printf("many: %d lookups in %lld round trips\n", 48 * n, trips() - before);
    check_int("many", "lookups answered right", ok, 48 * n);
    check_int("many", "wrong answers", wrong, 0);
    free(w);
}

static void
case_pause(void)
{
    redisContext *c = raw();
    struct worker *w;
    int ok, failed, wrong, i, t, timed_out = 0;

    fill(16, 4);
    g_rc = pool(2, 200);
    raw_ok(c, "CLIENT PAUSE 1500 ALL");
    w = run(16, 1);
    totals(w, 16, &ok, &failed, &wrong);
    check_int("pause", "lookups failed while Redis is held", failed, 16);
    check_int("pause", "wrong answers", wrong, 0);
    for (t = 0; t < 16; t++)
        timed_out += strstr(w[t].first_why, "timed out") != NULL ||
                     strstr(w[t].first_why, "unreachable") != NULL;
    check_int("pause", "each failure says timed out or unreachable", timed_out,
              16);
    free(w);
    /* afterwards: back within the backoff (2 s at most) once Redis is */
    for (i = 0; i < 100; i++) {
        w = run(1, 1);
        join(w, 1);
        ok = w->ok;
        wrong = w->wrong;
        free(w);
        if (ok || wrong)
            break;
        usleep(100000);
    }
    check_int("pause", "a lookup works again after the pause", ok, 1);
    check_int("pause", "and answers right", wrong, 0);
    redisFree(c);
}

static void
case_gone(void)
{
    redisContext *c = raw();
    struct worker *w;
    int ok, failed, wrong;

    fill(16, 42);
    g_rc = pool(4, 2000);
    w = run(16, 0);
    usleep(300000);
    freeReplyObject(redisCommand(c, "SHUTDOWN NOSAVE")); /* no reply */
    usleep(300000);
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
    totals(w, 16, &ok, &failed, &wrong);
    printf("gone: %d right, %d failed\n", ok, failed);
    check_int("gone", "wrong answers", wrong, 0);
    check_int("gone", "some lookups answered before the shutdown", ok > 0, 1);
    check_int("gone", "some lookups failed after it", failed > 0, 1);
    free(w);
    redisFree(c);
}

int
main(int argc, char **argv)
{
    char prog[64];

    if (argc < 3) {
        fprintf(stderr, "usage: rshare PORT share|many|pause|gone [N]\n");
        return 2;
    }
    g_port = atoi(argv[1]);
    alarm(300); /* a lookup that hangs is a failure, not a stuck suite */
    if (strcmp(argv[2], "share") == 0)
        case_share();
    else if (strcmp(argv[2], "many") == 0)
        case_many(argc > 3 ? atoi(argv[3]) : 2000);
    else if (strcmp(argv[2], "pause") == 0)
        case_pause();
    else if (strcmp(argv[2], "gone") == 0)
        case_gone();
    else
        return 2;
    rclient_free(g_rc);
    snprintf(prog, sizeof(prog), "rshare %s", argv[2]);
    return check_done(prog);
}
