/*
 * loadgen - milter load generator for the benchmark (tests/bench/run)
 *
 * Speaks the milter protocol directly (tests/mclient.c), no MTA: C
 * connections on C threads, each negotiating once, sending connect and
 * helo, then messages of R recipients (mail, rcpt x R, eom) until the
 * duration is up.  Recipients are u<N>@[x<depth>.]d<K>.test with K drawn
 * from D domains; domain K has mode remote when K is even and local when
 * it is odd (the rule -F uses to fill Redis; -M gives every domain one
 * mode).  Every reply is checked: RCPT and EOM must be "continue", and the
 * end of message must carry no modification at all.  That is what both
 * the no-op milter and mxswitch answer: mxswitch changes no recipient (the
 * MTA asks its socket map server at delivery time, docs/design.md), so
 * -e noop and -e route now check the same thing and are kept so that
 * scripts naming either still run.  A wrong answer fails the run.
 *
 * Modes:
 *   loadgen [opts] MILTER          timed run (-t secs, or -n messages in
 *                                  all); prints one line of figures
 *   loadgen -W [opts] MILTER       walk every domain once (warm a cache)
 *   loadgen -F -d D [-M MODE]      print RESP SETs for redis-cli --pipe
 *                                  (-M: every domain gets MODE instead of
 *                                  the even/odd rule)
 *   loadgen -T N -R PORT SOCKETMAP toggle propagation: N SETs on the Redis
 *                                  at 127.0.0.1:PORT, each timed until the
 *                                  daemon's socket map server (inet:P@H)
 *                                  answers the new mode in its "mode" map
 *
 * Output (timed run), one line of key=value: conns rcpts domains msgs
 * rcpts_sent secs msg_s rcpt_s rcpt_p50_us rcpt_p99_us rcpt_max_us eom_p50_us
 * eom_p99_us eom_max_us errors sched.  Exit status 0 only with no error.
 *
 * -P runs the connections at the lowest real-time priority (SCHED_FIFO),
 * so that each is scheduled as soon as its reply arrives: the load is then
 * the milter's to carry, not a contest for the CPU between C connection
 * threads and the milter's C threads, which at 64 and 512 connections on
 * two cores decides how fast both go and varies from run to run (see
 * README.md here).  Where that is not permitted, it says so on stderr and
 * runs at normal priority; sched= in the output says which it was.
 *
 * A -t run measures the steady state: the first quarter of the time is
 * left out (every connection starts its first message at once, and the
 * milter starts its threads), and so is the end (after the time is up,
 * each connection finishes the message it is in).  msg_s, rcpt_s and the
 * latencies count the messages finished, and the replies received, in
 * between, over secs, its length; msgs and rcpts_sent count all messages
 * finished, for CPU time per message.  A -n run counts all of it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libmilter/mfapi.h>

#include "mclient.h"

#define LG_TIMEOUT  10000
#define LG_ACTIONS  SMFI_CURR_ACTS
#define LG_PROTOCOL (SMFI_CURR_PROT & ~SMFIP_RCPT_REJ)
#define LG_MAXRCPT  1000
#define LG_ADDRLEN  256

struct opts {
    const char *milter;
    int conns;
    int rcpts;
    long domains;
    int depth;
    double secs;
    long count; /* -n: messages in all, instead of secs */
    int macros;
    const char *fill_mode; /* -M: the mode -F gives every domain */
    int walk;
    int toggles;
    int redis_port;
    int fifo; /* -P: run at real-time priority (SCHED_FIFO) */
};

/* Samples of one kind of reply, in nanoseconds. */
struct samples {
    uint32_t *v;
    size_t n, cap;
};

struct worker {
    pthread_t tid;
    const struct opts *o;
    int id;
    uint64_t rng;
    long msgs, rcpts;
    long win_msgs, win_rcpts; /* finished while g_window was set */
    long errors;
    char err[512];
    struct samples rcpt_ns, eom_ns;
    long walk_next; /* -W: next domain this worker sends */
};

static volatile int g_stop;
static int g_window; /* atomic: a -t run's measured part is under way */
static pthread_barrier_t g_ready;

/* in_window - whether what just finished counts */
static int
in_window(void)
{
    return __atomic_load_n(&g_window, __ATOMIC_RELAXED);
}

/* now_ns - monotonic clock in nanoseconds */
static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xmalloc_or_die - allocation that never returns NULL */
static void *
xrealloc_or_die(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(2);
    }
    return q;
}

/* sample_add - remember one latency */
static void
sample_add(struct samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = xrealloc_or_die(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* next_rand - xorshift64* */
static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* domain_name - the name of domain k at the configured depth */
static void
domain_name(char *buf, size_t len, long k, int depth)
{
    size_t off = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; i < depth && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "x%d.", depth - i);
    snprintf(buf + off, len - off, "d%ld.test", k);
}

/* is_remote - -F's mode rule (the one the README describes) */
static int
is_remote(long k)
{
    return k % 2 == 0;
}

/* fail - record a wrong answer or a broken connection; the first stays */
static int __attribute__((format(printf, 2, 3)))
fail(struct worker *w, const char *fmt, ...)
{
    va_list ap;

    w->errors++;
    if (w->err[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof(w->err), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* want_kind - check one reply's kind */
static int
want_kind(struct worker *w, struct mc *m, const struct mc_reply *r,
          const char *step)
{
    if (r->kind == MC_CONTINUE)
        return 0;
    if (r->kind == MC_ERROR)
        return fail(w, "%s: %s", step, mc_error(m));
    return fail(w, "%s: got %s, want continue", step, mc_kind_name(r->kind));
}

/* session_open - connect, negotiate, connect and helo steps */
static struct mc *
session_open(struct worker *w)
{
    char why[256];
    struct mc *m = mc_open(w->o->milter, LG_TIMEOUT, why, sizeof(why));
    const struct mc_reply *r;

    if (m == NULL) {
        fail(w, "connect: %s", why);
        return NULL;
    }
    if (mc_nodelay(m) < 0 || mc_negotiate(m, LG_ACTIONS, LG_PROTOCOL) < 0) {
        fail(w, "negotiate: %s", mc_error(m));
        mc_close(m);
        return NULL;
    }
    r = mc_connect(m, "client.test", SMFIA_INET, 40000, "127.0.0.1");
    if (r->kind != MC_CONTINUE && r->kind != MC_SKIPPED) {
        want_kind(w, m, r, "connect");
        mc_close(m);
        return NULL;
    }
    r = mc_helo(m, "client.test");
    if (r->kind != MC_CONTINUE && r->kind != MC_SKIPPED) {
        want_kind(w, m, r, "helo");
        mc_close(m);
        return NULL;
    }
    return m;
}

/* check_mods - the end of message carries no modification: neither the
 * no-op milter nor mxswitch changes a recipient */
static int
check_mods(struct worker *w, const struct mc_reply *r)
{
    if (r->nmods != 0)
        return fail(w,
                    "eom: %s modification (%s); no milter here changes "
                    "anything",
                    mc_action_name(r->mods[0].action),
                    r->mods[0].argc > 0 ? r->mods[0].argv[0] : "");
    return 0;
}

/* pick_domain - the domain of the next recipient */
static long
pick_domain(struct worker *w)
{
    if (w->o->walk) {
        long k = w->walk_next;

        if (k >= w->o->domains)
            return -1;
        w->walk_next += w->o->conns;
        return k;
    }
    return (long)(next_rand(&w->rng) % (uint64_t)w->o->domains);
}

/* message - one message of up to R recipients; 0, 1 (walk done) or -1 */
static int
message(struct worker *w, struct mc *m, int timed)
{
    static const char *const from[] = {"<sender@client.test>"};
    char addr[LG_ADDRLEN], dname[LG_ADDRLEN - 16];
    const struct mc_reply *r;
    uint64_t t0;
    int i, n = 0;

    r = mc_mail(m, from, 1);
    if (want_kind(w, m, r, "mail") < 0)
        return -1;
    for (i = 0; i < w->o->rcpts; i++) {
        const char *argv[1];
        long k = pick_domain(w);

        if (k < 0)
            break;
        domain_name(dname, sizeof(dname), k, w->o->depth);
        snprintf(addr, sizeof(addr), "<u%u@%s>",
                 (unsigned)(next_rand(&w->rng) % 1000), dname);
        argv[0] = addr;
        if (w->o->macros) {
            const char *mv[] = {"{rcpt_mailer}", "virtual",     "{rcpt_host}",
                                dname,           "{rcpt_addr}", addr};

            if (mc_macro(m, SMFIC_RCPT, mv, 6) < 0)
                return fail(w, "macro: %s", mc_error(m));
        }
        t0 = now_ns();
        r = mc_rcpt(m, argv, 1);
        if (timed && in_window())
            sample_add(&w->rcpt_ns, now_ns() - t0);
        if (want_kind(w, m, r, "rcpt") < 0)
            return -1;
        n++;
    }
    if (n == 0) {
        mc_abort(m);
        return 1;
    }
    t0 = now_ns();
    r = mc_eom(m);
    if (timed && in_window())
        sample_add(&w->eom_ns, now_ns() - t0);
    if (want_kind(w, m, r, "eom") < 0 || check_mods(w, r) < 0)
        return -1;
    w->msgs++;
    w->rcpts += n;
    if (in_window()) {
        w->win_msgs++;
        w->win_rcpts += n;
    }
    return 0;
}

/* worker_run - one connection's life */
static void *
worker_run(void *arg)
{
    struct worker *w = arg;
    struct mc *m = session_open(w);
    int rc;

    pthread_barrier_wait(&g_ready);
    if (m == NULL)
        return NULL;
    while (!g_stop) {
        if (w->o->count > 0 &&
            w->msgs >= (w->o->count + w->o->conns - 1 - w->id) / w->o->conns)
            break;
        rc = message(w, m, !w->o->walk);
        if (rc != 0)
            break;
    }
    mc_quit(m);
    mc_close(m);
    return NULL;
}

/* sleep_s - sleep this many seconds */
static void
sleep_s(double secs)
{
    struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* cmp_u32 - qsort order */
static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* merge - every worker's samples of one kind, sorted */
static struct samples
merge(struct worker *w, int n, int eom)
{
    struct samples all = {0};
    int i;

    for (i = 0; i < n; i++) {
        struct samples *s = eom ? &w[i].eom_ns : &w[i].rcpt_ns;
        size_t j;

        for (j = 0; j < s->n; j++)
            sample_add(&all, s->v[j]);
        free(s->v);
    }
    qsort(all.v, all.n, sizeof(*all.v), cmp_u32);
    return all;
}

/* pct - a percentile in microseconds */
static double
pct(const struct samples *s, double p)
{
    size_t i;

    if (s->n == 0)
        return 0;
    i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i] / 1000.0;
}

/* fill - RESP SET commands for every domain, for redis-cli --pipe */
static int
fill(const struct opts *o)
{
    char dname[LG_ADDRLEN], key[LG_ADDRLEN + 32];
    long k;

    for (k = 0; k < o->domains; k++) {
        const char *v = o->fill_mode   ? o->fill_mode
                        : is_remote(k) ? "remote"
                                       : "local";

        domain_name(dname, sizeof(dname), k, 0);
        snprintf(key, sizeof(key), "mxswitch:domain:%s", dname);
        printf("*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(key),
               key, strlen(v), v);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* smap_open - a TCP connection to a socket map server "inet:PORT@HOST" */
static int
smap_open(const char *spec)
{
    struct sockaddr_in sa;
    char host[64];
    int port, fd;

    if (sscanf(spec, "inet:%d@%63s", &port, host) != 2)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* toggle_probe - ask the socket map server's "mode" map for
 * u@toggle.test as the MTA would; 1 remote, 0 anything else, -1 error */
static int
toggle_probe(struct worker *w, int fd)
{
    static const char req[] = "18:mode u@toggle.test,";
    char buf[256];
    size_t got = 0;

    if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
        return fail(w, "socketmap: write: %s", strerror(errno));
    while (got == 0 || buf[got - 1] != ',') {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

        if (n <= 0 || got + (size_t)n >= sizeof(buf) - 1)
            return fail(w, "socketmap: no whole answer");
        got += (size_t)n;
    }
    buf[got] = '\0';
    return strstr(buf, ":OK remote,") != NULL;
}

/* toggle - time from SET on the master to the first decision following it */
static int
toggle(const struct opts *o)
{
    struct worker w;
    struct samples lat = {0};
    redisContext *rc;
    int i, want, fd;

    memset(&w, 0, sizeof(w));
    w.o = o;
    w.rng = 0x9e3779b97f4a7c15ull;
    rc = redisConnect("127.0.0.1", o->redis_port);
    if (rc == NULL || rc->err) {
        fprintf(stderr, "loadgen: redis: %s\n", rc ? rc->errstr : "no memory");
        return 1;
    }
    fd = smap_open(o->milter);
    if (fd < 0) {
        fprintf(stderr, "loadgen: socket map server %s: cannot connect\n",
                o->milter);
        return 1;
    }
    want = toggle_probe(&w, fd);
    for (i = 0; i < o->toggles && want >= 0; i++) {
        redisReply *rep;
        uint64_t t0;
        int got;

        want = !want;
        t0 = now_ns();
        rep = redisCommand(rc, "SET mxswitch:domain:toggle.test %s",
                           want ? "remote" : "local");
        if (rep == NULL) {
            fprintf(stderr, "loadgen: redis: %s\n", rc->errstr);
            return 1;
        }
        freeReplyObject(rep);
        while ((got = toggle_probe(&w, fd)) == !want) {
            if (now_ns() - t0 > 10000000000ull) {
                fprintf(stderr, "loadgen: toggle %d not seen in 10 s\n", i);
                return 1;
            }
        }
        if (got < 0)
            break;
        sample_add(&lat, now_ns() - t0);
        usleep(1000 + (useconds_t)(next_rand(&w.rng) % 4000));
    }
    close(fd);
    redisFree(rc);
    if (w.errors) {
        fprintf(stderr, "loadgen: %s\n", w.err);
        return 1;
    }
    qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u32);
    printf("toggles=%zu toggle_p50_ms=%.3f toggle_p99_ms=%.3f "
           "toggle_max_ms=%.3f\n",
           lat.n, pct(&lat, 0.5) / 1000, pct(&lat, 0.99) / 1000,
           pct(&lat, 1.0) / 1000);
    free(lat.v);
    return 0;
}

/* usage - say how to call, exit 2 */
static void
usage(void)
{
    fprintf(
        stderr,
        "usage: loadgen [-c conns] [-r rcpts] [-d domains] [-D depth]\n"
        "               [-t secs | -n msgs] [-m] [-e noop|route] [-W] [-P]\n"
        "               MILTER\n"
        "       loadgen -F -d domains [-M mode]\n"
        "       loadgen -T toggles -R redis-port inet:PORT@HOST\n");
    exit(2);
}

/* realtime - SCHED_FIFO for this thread and the workers it starts: 1, or
 * 0 (said on stderr) where that is not permitted */
static int
realtime(void)
{
    struct sched_param sp = {.sched_priority =
                                 sched_get_priority_min(SCHED_FIFO)};

    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0)
        return 1;
    fprintf(stderr, "loadgen: -P: SCHED_FIFO: %s; running at normal priority\n",
            strerror(errno));
    return 0;
}

/* run - the timed run (or the walk) with o->conns workers */
static int
run(const struct opts *o)
{
    struct worker *w = calloc((size_t)o->conns, sizeof(*w));
    pthread_attr_t attr;
    struct samples rs, es;
    long msgs = 0, rcpts = 0, win_msgs = 0, win_rcpts = 0, errors = 0;
    uint64_t t0, t1 = 0;
    double secs;
    int i, timed = !o->walk && o->count == 0; /* -t: a window to measure */
    int fifo = o->fifo && realtime();

    if (w == NULL)
        return 2;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    pthread_barrier_init(&g_ready, NULL, (unsigned)o->conns + 1);
    for (i = 0; i < o->conns; i++) {
        w[i].o = o;
        w[i].id = i;
        w[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        w[i].walk_next = i;
        if (pthread_create(&w[i].tid, &attr, worker_run, &w[i]) != 0) {
            fprintf(stderr, "loadgen: pthread_create: %s\n", strerror(errno));
            exit(2);
        }
    }
    pthread_barrier_wait(&g_ready);
    if (timed) {
        sleep_s(o->secs / 4);
        t0 = now_ns();
        __atomic_store_n(&g_window, 1, __ATOMIC_RELAXED);
        sleep_s(o->secs - o->secs / 4);
        __atomic_store_n(&g_window, 0, __ATOMIC_RELAXED);
        t1 = now_ns();
        g_stop = 1;
    } else {
        t0 = now_ns();
        __atomic_store_n(&g_window, 1, __ATOMIC_RELAXED);
    }
    for (i = 0; i < o->conns; i++)
        pthread_join(w[i].tid, NULL);
    if (!timed)
        t1 = now_ns();
    secs = (double)(t1 - t0) / 1e9;
    for (i = 0; i < o->conns; i++) {
        msgs += w[i].msgs;
        rcpts += w[i].rcpts;
        win_msgs += w[i].win_msgs;
        win_rcpts += w[i].win_rcpts;
        errors += w[i].errors;
        if (w[i].errors)
            fprintf(stderr, "loadgen: connection %d: %s\n", i, w[i].err);
    }
    if (win_msgs == 0 && errors == 0)
        fprintf(stderr,
                "loadgen: no message finished in the measured %.3f s"
                " (-t too short for this load)\n",
                secs);
    rs = merge(w, o->conns, 0);
    es = merge(w, o->conns, 1);
    printf("conns=%d rcpts=%d domains=%ld msgs=%ld rcpts_sent=%ld secs=%.3f "
           "msg_s=%.1f "
           "rcpt_s=%.1f rcpt_p50_us=%.1f rcpt_p99_us=%.1f rcpt_max_us=%.1f "
           "eom_p50_us=%.1f eom_p99_us=%.1f eom_max_us=%.1f errors=%ld "
           "sched=%s\n",
           o->conns, o->rcpts, o->domains, msgs, rcpts, secs, win_msgs / secs,
           win_rcpts / secs, pct(&rs, 0.5), pct(&rs, 0.99), pct(&rs, 1.0),
           pct(&es, 0.5), pct(&es, 0.99), pct(&es, 1.0), errors,
           fifo ? "fifo" : "other");
    free(rs.v);
    free(es.v);
    free(w);
    pthread_attr_destroy(&attr);
    return errors || win_msgs == 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct opts o = {.conns = 8, .rcpts = 1, .domains = 10, .secs = 3};
    int c, do_fill = 0;

    while ((c = getopt(argc, argv, "c:r:d:D:t:n:me:M:WFPT:R:")) != -1) {
        switch (c) {
        case 'c':
            o.conns = atoi(optarg);
            break;
        case 'r':
            o.rcpts = atoi(optarg);
            break;
        case 'd':
            o.domains = atol(optarg);
            break;
        case 'D':
            o.depth = atoi(optarg);
            break;
        case 't':
            o.secs = atof(optarg);
            break;
        case 'n':
            o.count = atol(optarg);
            break;
        case 'm':
            o.macros = 1;
            break;
        case 'e': /* both milters answer alike now; see the top */
            if (strcmp(optarg, "noop") != 0 && strcmp(optarg, "route") != 0)
                usage();
            break;
        case 'M':
            o.fill_mode = optarg;
            break;
        case 'W':
            o.walk = 1;
            break;
        case 'F':
            do_fill = 1;
            break;
        case 'P':
            o.fifo = 1;
            break;
        case 'T':
            o.toggles = atoi(optarg);
            break;
        case 'R':
            o.redis_port = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (o.conns < 1 || o.rcpts < 1 || o.rcpts > LG_MAXRCPT || o.domains < 1 ||
        o.depth < 0 || o.depth > 8 || o.secs <= 0)
        usage();
    if (do_fill)
        return fill(&o);
    if (optind != argc - 1)
        usage();
    o.milter = argv[optind];
    if (o.toggles > 0)
        return o.redis_port > 0 ? toggle(&o) : (usage(), 2);
    return run(&o);
}
