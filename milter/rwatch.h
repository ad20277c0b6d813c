/*
 * rwatch.h - Redis keyspace watcher: follow changes to keys under prefixes
 *
 * One extra connection (rendpoint_open(), so with prefer_replica to a
 * replica, where replicated writes raise notifications too, and after a
 * failover to the new server) on a thread of its own.  It subscribes to
 * keyspace notifications for keys under one or two prefixes (domain and
 * address keys) and calls back for every event; after each
 * (re)subscription it calls the reset callback, because events may have
 * been missed while it was away.  While it is away, cached answers stay
 * valid for their ttl, as without notifications.
 *
 * Empty check: at each (re)subscription it asks DBSIZE.  A database that
 * held keys before and holds none now (a Redis restarted without its data)
 * is taken as empty (rwatch_empty()) until a routing key changes or DBSIZE
 * is non-zero at the next subscription.  It held keys when DBSIZE was
 * non-zero at an earlier (re)connection, or a routing key was seen since:
 * its keyspace event, or a lookup that found it (rwatch_seen()), so a
 * database that was empty when mxswitch started and got its keys later
 * counts too.
 *
 * The watcher logs its state changes (watching, lost, notifications off).
 * rwatch_start() and rwatch_stop() are called by one thread (start-up,
 * reload); rwatch_empty() and rwatch_seen() by any.
 */
#ifndef RWATCH_H
#define RWATCH_H

#include <stddef.h>

struct rendpoint;
struct rwatch;

typedef void (*rwatch_key_cb)(const char *key, size_t len, void *arg);
typedef void (*rwatch_reset_cb)(void *arg);

struct rwatch *rwatch_create(struct rendpoint *ep);
void rwatch_free(struct rwatch *w);
void rwatch_start(struct rwatch *w, const char *const *prefixes, size_t n,
                  rwatch_key_cb on_key, rwatch_reset_cb on_reset, void *arg);
void rwatch_stop(struct rwatch *w);
int rwatch_empty(struct rwatch *w);
void rwatch_seen(struct rwatch *w);
char *rwatch_glob_escape(const char *s);

#endif
