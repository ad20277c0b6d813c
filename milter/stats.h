/*
 * stats.h - counters for monitoring: Prometheus text file and a log line
 *
 * The hooks (stats_decision() and the rest) are called on the hot path by
 * any thread: each is one or two relaxed atomic additions, no lock, no
 * allocation.  stats_render() writes every counter in the Prometheus text
 * exposition format (metric names mxswitch_*); stats_summary() condenses
 * them into one line for the log.  Both return what the caller frees, read
 * counters that may move meanwhile (each value is exact, the set is not a
 * snapshot) and log nothing.
 *
 * The writer thread (stats_writer_start/stop) writes stats_render() to
 * stats.prometheus_file every stats.interval seconds, as the config in
 * force says (cfgref), for node_exporter's textfile collector: a temporary
 * file in the same directory, mode 0644, renamed over the old one, so a
 * reader never sees half a file.  A failing write is logged when it starts
 * failing and when it works again.
 *
 * Stats knows the routing enums (route.h, below it) but not its callers':
 * the names of the decisions' sources come from the caller, by
 * stats_sources() before threads start (the milter gives the lookup's).
 */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_SOURCES_MAX 8

void stats_sources(const char *const *names, size_t n);
void stats_decision(int mode, int source, int action); /* enum route_* */
void stats_map(int map, const char *status);           /* enum route_map */
void stats_tempfail(const char *dsn);
void stats_cache(int hit);
uint64_t stats_clock(void);
int stats_redis(int rcode, uint64_t start);
void stats_redis_trip(void);
void stats_session(void);
void stats_reload(int ok);

char *stats_render(void);
char *stats_summary(void);
int stats_write_file(const char *path, char *why, size_t whylen);
void stats_writer_start(void);
void stats_writer_stop(void);

#endif
