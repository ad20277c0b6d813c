/*
 * rclient.h - the Redis client of the lookups: MGET, health, the watcher
 *
 * One object for the daemon's Redis side, put together from the Redis
 * modules (docs/design.md): the endpoints (rendpoint.h: servers,
 * Sentinel), the pool whose round trips commands from many threads share
 * (rpool.h: timeouts, reconnects, backoff), and the keyspace watcher
 * (rwatch.h: notifications, the empty check).  mxswitch-ctl's generic
 * command is rcmd.h.
 *
 * Thread safe: rclient_mget(), rclient_ping(), rclient_down() and
 * rclient_empty() from any thread; create, free and the watcher's start
 * and stop from one.  hiredis replies never leave the Redis modules:
 * values are copied out.  Logs only state changes (down, back up,
 * another server, the watcher), never per lookup.
 */
#ifndef RCLIENT_H
#define RCLIENT_H

#include <stddef.h>

#include "rendpoint.h"
#include "rwatch.h"

struct rclient_conf {
    struct rendpoint_conf server; /* where Redis is, how to connect */
    int connections;              /* round trips under way at most */
};

enum rclient_type { RCLIENT_NIL = 0, RCLIENT_STRING, RCLIENT_OTHER };

struct rclient_value {
    enum rclient_type type;
    char *str; /* RCLIENT_STRING: owned copy, NUL added; else NULL */
    size_t len;
};

struct cfg;
struct rclient;
struct rpool;

void rclient_conf_from_cfg(struct rclient_conf *conf, const struct cfg *cfg);
struct rclient *rclient_create(const struct rclient_conf *conf);
struct rclient *rclient_create_cfg(const struct cfg *cfg);
void rclient_free(struct rclient *rc);
int rclient_mget(struct rclient *rc, const char *const *keys, size_t n,
                 struct rclient_value *out, char *why, size_t whylen);
void rclient_values_clear(struct rclient_value *v, size_t n);
int rclient_down(struct rclient *rc);
int rclient_empty(struct rclient *rc);
int rclient_ping(struct rclient *rc, char *why, size_t whylen);
const char *rclient_endpoint(const struct rclient *rc);
struct rpool *rclient_pool(struct rclient *rc);
void rclient_watch_start(struct rclient *rc, const char *const *prefixes,
                         size_t n, rwatch_key_cb on_key,
                         rwatch_reset_cb on_reset, void *arg);
void rclient_watch_stop(struct rclient *rc);

#endif
