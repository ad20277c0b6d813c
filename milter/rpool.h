/*
 * rpool.h - Redis connection pool: commands from many threads share round
 * trips
 *
 * At most `connections` round trips are under way at once, each on a
 * connection of its own (no hiredis context is ever used by two threads
 * at a time).  A command that finds them all busy waits in a queue, and
 * the next round trip takes every queued command along: one write, one
 * read of all the replies, each handed to its own thread.  So under load
 * many lookups share one round trip, and Redis and the milter make their
 * system calls once for all of them.  The waiting is a pthread mutex and
 * condition variable per request; a lone command goes at once.
 *
 * A connection that fails is dropped and made again (rendpoint_open()) on
 * next use.  After a failure (a connect, or a round trip that timed out or
 * broke) every command fails fast for a backoff (100 ms doubling to 2 s),
 * then the next one tries again.  State changes (Redis down, Redis back,
 * another server in use) are logged once, not per command.  Every connect
 * and every read and write is bounded by timeout_ms, so a server that
 * hangs costs the commands of a round trip about timeout_ms (and those
 * queued behind it as long), and the ones after it fail fast.  A reply
 * -LOADING, -MASTERDOWN or -READONLY drops the connection, so that the
 * next one asks the Sentinels again.
 *
 * A check set with rpool_on_connect() runs on each new connection before
 * any command is sent on it (the watcher's empty check, rwatch.h: a nil
 * from a Redis that came back empty is not "no key"); when it fails, so
 * does the connect.
 *
 * Thread safe (locks inside).  Replies are hiredis's: the caller frees
 * each with freeReplyObject(); they stay inside the Redis modules.
 */
#ifndef RPOOL_H
#define RPOOL_H

#include <stddef.h>

struct redisContext;
struct redisReply;
struct rendpoint;
struct rpool;

/* A check of a new connection: MXS_OK, or MXS_TEMPFAIL with why. */
typedef int (*rpool_connect_cb)(struct redisContext *ctx, void *arg, char *why,
                                size_t whylen);

struct rpool *rpool_create(struct rendpoint *ep, int connections);
void rpool_free(struct rpool *p);
struct redisReply *rpool_command(struct rpool *p, int argc, const char **argv,
                                 char *why, size_t whylen);
int rpool_down(struct rpool *p);
void rpool_on_connect(struct rpool *p, rpool_connect_cb cb, void *arg);

#endif
