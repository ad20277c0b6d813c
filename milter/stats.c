/*
 * stats.c - counters for monitoring; see stats.h
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "cfgref.h"
#include "log.h"
#include "mxs.h"
#include "route.h"
#include "stats.h"

#define NSOURCES STATS_SOURCES_MAX
#define NACTIONS ROUTE_NACTIONS

/* Socket map answers, by status word. */
static const char *const answers[] = {"OK", "NOTFOUND", "TEMP", "PERM"};
#define NANSWERS (sizeof(answers) / sizeof(answers[0]))

/* Tempfail reasons by enhanced status code; the last slot is "other". */
static const char *const tf_codes[] = {"4.3.0", "4.1.3", "4.1.2", "4.4.6",
                                       "other"};
#define NTEMPFAILS (sizeof(tf_codes) / sizeof(tf_codes[0]))

/* Redis latency histogram: upper bounds in microseconds, then +Inf. */
static const uint64_t lat_le_us[] = {500,    1000,   2500,    5000,
                                     10000,  25000,  50000,   100000,
                                     250000, 500000, 1000000, 2500000};
#define NBUCKETS (sizeof(lat_le_us) / sizeof(lat_le_us[0]) + 1)

/* Every counter; only ever added to, with relaxed atomics. */
static struct {
    uint64_t decisions[ROUTE_NMODES][NSOURCES];
    uint64_t actions[NACTIONS];
    uint64_t tempfails[NTEMPFAILS];
    uint64_t cache_hits, cache_misses;
    uint64_t redis_cmds, redis_errors, redis_us_sum, redis_trips;
    uint64_t redis_buckets[NBUCKETS]; /* not cumulative; summed at render */
    uint64_t sessions;
    uint64_t reloads_ok, reloads_failed;
    uint64_t maps[ROUTE_NMAPS][NANSWERS];
} g;

static time_t g_start = 0; /* set by stats_writer_start() */

/* The names of the decisions' sources, as the caller gave them (set
 * before threads start, like the log settings). */
static const char *g_sources[NSOURCES];
static size_t g_nsources;

/*
 * stats_sources - name the sources stats_decision() is given: names[i]
 * for source i, n at most STATS_SOURCES_MAX; a source without a name is
 * not counted.  The caller's strings must outlive every counter use (the
 * literals of the lookup's names do).  Call before threads start.
 */
void
stats_sources(const char *const *names, size_t n)
{
    size_t i;

    if (n > NSOURCES)
        fatalx("stats: %zu decision sources, at most %d", n, NSOURCES);
    for (i = 0; i < n; i++)
        g_sources[i] = names[i];
    g_nsources = n;
}

#define ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* stats_decision - one recipient routed: its mode, source and action */
void
stats_decision(int mode, int source, int action)
{
    if ((unsigned)mode < ROUTE_NMODES && (unsigned)source < g_nsources)
        ADD(g.decisions[mode][source], 1);
    if ((unsigned)action < NACTIONS)
        ADD(g.actions[action], 1);
}

/* stats_map - one socket map answer: its map and status word */
void
stats_map(int map, const char *status)
{
    size_t i;

    for (i = 0; (unsigned)map < ROUTE_NMAPS && i < NANSWERS; i++)
        if (strcmp(status, answers[i]) == 0) {
            ADD(g.maps[map][i], 1);
            return;
        }
}

/* stats_tempfail - a 4xx answer, by its enhanced status code */
void
stats_tempfail(const char *dsn)
{
    size_t i;

    for (i = 0; i < NTEMPFAILS - 1; i++)
        if (strcmp(dsn, tf_codes[i]) == 0)
            break;
    ADD(g.tempfails[i], 1);
}

/* stats_cache - one lookup answered by the cache (hit) or not */
void
stats_cache(int hit)
{
    if (hit)
        ADD(g.cache_hits, 1);
    else
        ADD(g.cache_misses, 1);
}

/* stats_clock - monotonic microseconds, the start for stats_redis() */
uint64_t
stats_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* stats_redis - count one Redis command started at start; returns rcode */
int
stats_redis(int rcode, uint64_t start)
{
    uint64_t us = stats_clock() - start;
    size_t b;

    for (b = 0; b < NBUCKETS - 1 && us > lat_le_us[b]; b++)
        ;
    ADD(g.redis_cmds, 1);
    ADD(g.redis_us_sum, us);
    ADD(g.redis_buckets[b], 1);
    if (rcode != MXS_OK)
        ADD(g.redis_errors, 1);
    return rcode;
}

/* stats_redis_trip - one round trip to Redis, for one or more commands */
void
stats_redis_trip(void)
{
    ADD(g.redis_trips, 1);
}

/* stats_session - one SMTP session started */
void
stats_session(void)
{
    ADD(g.sessions, 1);
}

/* stats_reload - one configuration reload, accepted or rejected */
void
stats_reload(int ok)
{
    if (ok)
        ADD(g.reloads_ok, 1);
    else
        ADD(g.reloads_failed, 1);
}

/* head - the HELP and TYPE lines of one metric */
static void
head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP mxswitch_%s %s\n# TYPE mxswitch_%s %s\n", name, help,
            name, type);
}

/* render_histogram - the Redis latency histogram, cumulative buckets */
static void
render_histogram(FILE *f)
{
    uint64_t cum = 0;
    size_t b;

    head(f, "redis_latency_seconds", "histogram",
         "Time Redis took to answer a lookup (MGET).");
    for (b = 0; b < NBUCKETS; b++) {
        cum += GET(g.redis_buckets[b]);
        if (b < NBUCKETS - 1)
            fprintf(f,
                    "mxswitch_redis_latency_seconds_bucket{le=\"%g\"} %llu\n",
                    (double)lat_le_us[b] / 1e6, (unsigned long long)cum);
        else
            fprintf(f,
                    "mxswitch_redis_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    }
    fprintf(f, "mxswitch_redis_latency_seconds_sum %.6f\n",
            (double)GET(g.redis_us_sum) / 1e6);
    fprintf(f, "mxswitch_redis_latency_seconds_count %llu\n",
            (unsigned long long)cum);
}

/* stats_render - every counter in Prometheus text format; caller frees */
char *
stats_render(void)
{
    char *buf = NULL;
    size_t len = 0, i, j;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        fatal("open_memstream");
    head(f, "decisions_total", "counter",
         "Recipients routed, by mode and by where the mode came from.");
    for (i = 0; i < ROUTE_NMODES; i++)
        for (j = 0; j < g_nsources; j++)
            fprintf(f,
                    "mxswitch_decisions_total{mode=\"%s\",source=\"%s\"} "
                    "%llu\n",
                    route_mode_name((enum route_mode)i), g_sources[j],
                    (unsigned long long)GET(g.decisions[i][j]));
    head(f, "actions_total", "counter",
         "Decisions by what the MTA is told to do with the recipient.");
    for (i = 0; i < NACTIONS; i++)
        fprintf(f, "mxswitch_actions_total{action=\"%s\"} %llu\n",
                route_action_name((enum route_action)i),
                (unsigned long long)GET(g.actions[i]));
    head(f, "tempfails_total", "counter",
         "Recipients or messages answered 4xx, by enhanced status code.");
    for (i = 0; i < NTEMPFAILS; i++)
        fprintf(f, "mxswitch_tempfails_total{code=\"%s\"} %llu\n", tf_codes[i],
                (unsigned long long)GET(g.tempfails[i]));
    head(f, "cache_lookups_total", "counter",
         "Domain lookups answered by the cache (hit) or sent to Redis.");
    fprintf(f, "mxswitch_cache_lookups_total{result=\"hit\"} %llu\n",
            (unsigned long long)GET(g.cache_hits));
    fprintf(f, "mxswitch_cache_lookups_total{result=\"miss\"} %llu\n",
            (unsigned long long)GET(g.cache_misses));
    head(f, "redis_commands_total", "counter", "Lookups sent to Redis.");
    fprintf(f, "mxswitch_redis_commands_total %llu\n",
            (unsigned long long)GET(g.redis_cmds));
    head(f, "redis_round_trips_total", "counter",
         "Round trips to Redis: commands beyond redis.connections at once "
         "share one.");
    fprintf(f, "mxswitch_redis_round_trips_total %llu\n",
            (unsigned long long)GET(g.redis_trips));
    head(f, "redis_errors_total", "counter",
         "Lookups Redis did not answer (down, timeout, error reply).");
    fprintf(f, "mxswitch_redis_errors_total %llu\n",
            (unsigned long long)GET(g.redis_errors));
    render_histogram(f);
    head(f, "sessions_total", "counter", "SMTP sessions the MTA opened.");
    fprintf(f, "mxswitch_sessions_total %llu\n",
            (unsigned long long)GET(g.sessions));
    head(f, "map_answers_total", "counter",
         "Socket map answers (what the MTA is told when it delivers), by "
         "map and status.");
    for (i = 0; i < ROUTE_NMAPS; i++)
        for (j = 0; j < NANSWERS; j++)
            fprintf(f,
                    "mxswitch_map_answers_total{map=\"%s\",status=\"%s\"} "
                    "%llu\n",
                    route_map_name((enum route_map)i), answers[j],
                    (unsigned long long)GET(g.maps[i][j]));
    head(f, "reloads_total", "counter",
         "Configuration reloads (SIGUSR1), accepted or rejected.");
    fprintf(f, "mxswitch_reloads_total{result=\"ok\"} %llu\n",
            (unsigned long long)GET(g.reloads_ok));
    fprintf(f, "mxswitch_reloads_total{result=\"failed\"} %llu\n",
            (unsigned long long)GET(g.reloads_failed));
    head(f, "start_time_seconds", "gauge",
         "When mxswitch started, in seconds since the epoch.");
    fprintf(f, "mxswitch_start_time_seconds %lld\n", (long long)g_start);
    if (fclose(f) != 0)
        fatal("open_memstream");
    return buf;
}

/* sum_decisions - decisions of one mode, or from one source (other -1) */
static unsigned long long
sum_decisions(int mode, int source)
{
    unsigned long long n = 0;
    int i, j;

    for (i = 0; i < ROUTE_NMODES; i++)
        for (j = 0; j < NSOURCES; j++)
            if ((mode < 0 || i == mode) && (source < 0 || j == source))
                n += GET(g.decisions[i][j]);
    return n;
}

/* decisions_text - "none=N local=N ... (cache=N redis=N ...)"; caller frees */
static char *
decisions_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int i;

    if (f == NULL)
        fatal("open_memstream");
    for (i = 0; i < ROUTE_NMODES; i++)
        if (i != ROUTE_AUTO) /* auto is always resolved to another mode */
            fprintf(f, "%s%s=%llu", i ? " " : "",
                    route_mode_name((enum route_mode)i), sum_decisions(i, -1));
    for (i = 0; i < (int)g_nsources; i++)
        fprintf(f, "%s%s=%llu", i ? " " : " (", g_sources[i],
                sum_decisions(-1, i));
    fputc(')', f);
    if (fclose(f) != 0)
        fatal("open_memstream");
    return buf;
}

/* stats_summary - the counters in one log line; caller frees */
char *
stats_summary(void)
{
    uint64_t cmds = GET(g.redis_cmds);
    char *line, *dec = decisions_text();

    if (asprintf(
            &line,
            "stats: decisions %s; actions none=%llu local=%llu "
            "remote=%llu hold=%llu temp=%llu; cache hits=%llu misses=%llu; "
            "redis commands=%llu errors=%llu avg=%.2fms; tempfails "
            "4.3.0=%llu 4.1.3=%llu 4.1.2=%llu 4.4.6=%llu other=%llu; "
            "sessions=%llu; reloads ok=%llu failed=%llu",
            dec, (unsigned long long)GET(g.actions[ROUTE_ACT_NONE]),
            (unsigned long long)GET(g.actions[ROUTE_ACT_LOCAL]),
            (unsigned long long)GET(g.actions[ROUTE_ACT_REMOTE]),
            (unsigned long long)GET(g.actions[ROUTE_ACT_HOLD]),
            (unsigned long long)GET(g.actions[ROUTE_ACT_TEMP]),
            (unsigned long long)GET(g.cache_hits),
            (unsigned long long)GET(g.cache_misses), (unsigned long long)cmds,
            (unsigned long long)GET(g.redis_errors),
            cmds ? (double)GET(g.redis_us_sum) / 1000.0 / (double)cmds : 0.0,
            (unsigned long long)GET(g.tempfails[0]),
            (unsigned long long)GET(g.tempfails[1]),
            (unsigned long long)GET(g.tempfails[2]),
            (unsigned long long)GET(g.tempfails[3]),
            (unsigned long long)GET(g.tempfails[4]),
            (unsigned long long)GET(g.sessions),
            (unsigned long long)GET(g.reloads_ok),
            (unsigned long long)GET(g.reloads_failed)) < 0)
        fatal("asprintf");
    free(dec);
    return line;
}

/*
 * stats_write_file - stats_render() to path, atomically; MXS_OK or
 * MXS_TEMPFAIL with why
 */
int
stats_write_file(const char *path, char *why, size_t whylen)
{
    size_t len = strlen(path) + 8;
    char *tmp = xmalloc(len), *text = stats_render();
    size_t n = strlen(text);
    int fd, rcode = MXS_TEMPFAIL;

    snprintf(tmp, len, "%s.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        mxs_why(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0644) != 0 || write(fd, text, n) != (ssize_t)n) {
        mxs_why(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        mxs_why(why, whylen, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rcode = MXS_OK;
out:
    free(tmp);
    free(text);
    return rcode;
}

static pthread_t g_writer;
static pthread_mutex_t g_wlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wcond; /* CLOCK_MONOTONIC; set up at start */
static int g_wstop;            /* under g_wlock */
static int g_wrunning;

/* write_once - write the file the config in force names; log changes */
static int
write_once(int *failing)
{
    struct cfgref *ref = cfgref_hold();
    int interval = ref->cfg->stats_interval;
    char why[512];

    if (ref->cfg->stats_prometheus_file[0] != '\0') {
        if (stats_write_file(ref->cfg->stats_prometheus_file, why,
                             sizeof(why)) != MXS_OK) {
            if (!*failing)
                log_warnx("stats.prometheus_file: %s", why);
            *failing = 1;
        } else if (*failing) {
            log_info("stats.prometheus_file %s: written again",
                     ref->cfg->stats_prometheus_file);
            *failing = 0;
        }
    }
    cfgref_release(ref);
    return interval;
}

/* writer - the writer thread: write, wait an interval, until stopped */
static void *
writer(void *arg)
{
    struct timespec until;
    int failing = 0, interval;

    (void)arg;
    xlock(&g_wlock);
    while (!g_wstop) {
        xunlock(&g_wlock);
        interval = write_once(&failing);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += interval;
        xlock(&g_wlock);
        while (!g_wstop &&
               pthread_cond_timedwait(&g_wcond, &g_wlock, &until) == 0)
            ;
    }
    xunlock(&g_wlock);
    write_once(&failing); /* the final counts */
    return NULL;
}

/* stats_writer_start - start the file writer thread (after cfgref_init) */
void
stats_writer_start(void)
{
    pthread_condattr_t attr;

    g_start = time(NULL);
    if (pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&g_wcond, &attr) != 0)
        fatalx("stats: cannot make a condition variable");
    pthread_condattr_destroy(&attr);
    if (pthread_create(&g_writer, NULL, writer, NULL) != 0)
        fatalx("stats: cannot start the writer thread");
    g_wrunning = 1;
}

/* stats_writer_stop - write once more and stop the writer thread */
void
stats_writer_stop(void)
{
    if (!g_wrunning)
        return;
    xlock(&g_wlock);
    g_wstop = 1;
    pthread_cond_signal(&g_wcond);
    xunlock(&g_wlock);
    pthread_join(g_writer, NULL);
    pthread_cond_destroy(&g_wcond);
    g_wrunning = 0;
}
