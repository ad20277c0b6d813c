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
 * counts too.  The lookups' pool runs the same check on each new
 * connection before its first lookup (rwatch_check_conn(), set by
 * rclient_watch_start()), so that a Redis back empty is known as such
 * before any lookup reads it, whichever reconnects first.
 *
 * The watcher logs its state changes (watching, lost, notifications off).
 * rwatch_start() and rwatch_stop() are called by one thread (start-up,
 * reload); rwatch_empty(), rwatch_seen() and rwatch_check_conn() by
 * any.
 */
#ifndef RWATCH_H
#define RWATCH_H

#include <stddef.h>

struct redisContext;
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
int rwatch_check_conn(struct redisContext *ctx, void *arg, char *why,
                      size_t whylen);
char *rwatch_glob_escape(const char *s);

#endif
