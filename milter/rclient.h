/*
 * rclient.h - Redis client: a bounded connection pool and a key watcher
 *
 * Thread safe.  At most conf.connections round trips are under way at
 * once, each on a connection of its own (no hiredis context is ever used
 * by two threads at a time).  A command that finds them all busy waits in
 * a queue, and the next round trip takes every queued command along: one
 * write, one read of all the replies, each handed to its own thread.  So
 * under load many lookups share one round trip, and Redis and the milter
 * make their system calls once for all of them.  hiredis replies never
 * leave this module: values are copied out.
 *
 * A connection that fails is dropped and made again on next use.  After a
 * failure (a connect, or a round trip that timed out or broke) every
 * command fails fast for a backoff (100 ms doubling to 2 s), then the next
 * one tries again.  State changes (Redis down, Redis back, another
 * endpoint in use) are logged once, not per lookup.  Every connect and
 * every read and write is bounded by timeout_ms, so a server that hangs
 * costs the commands of a round trip about timeout_ms (and those queued
 * behind it as long), and the ones after it fail fast; a command takes
 * longer only when several servers (endpoints, Sentinels) hang in turn.
 *
 * Endpoints: a new connection tries the endpoints in order, starting with
 * the one that answered last, and sticks with it until it fails (it does
 * not go back to the first when that returns).
 *
 * Sentinel: a new connection asks the Sentinels in turn for the master
 * (SENTINEL get-master-addr-by-name), or with prefer_replica first for a
 * replica that is up and in sync (SENTINEL replicas), and checks with ROLE
 * that the server is what the Sentinel said; a replica falls back to the
 * master.  Connections to a failed master break, and their replacements
 * ask again, so a failover is followed without a restart.  A reply
 * -LOADING, -MASTERDOWN or -READONLY drops the connection too.  An ACL
 * user then needs +role besides the lookup commands.
 *
 * The watcher is one extra connection on its own thread that subscribes to
 * keyspace notifications for keys under one or two prefixes (domain and
 * address keys) and calls back for every event; after each (re)subscription it
 * calls the reset callback, because events may have been missed while it was
 * away.  While it is away, cached answers stay valid for their ttl, as without
 * notifications.  It connects like the pool (with prefer_replica to a
 * replica, where replicated writes raise notifications too) and so follows a
 * failover.
 */
#ifndef RCLIENT_H
#define RCLIENT_H

#include <stddef.h>

struct rclient_conf {
    /* One endpoint, used when servers and sentinels are both empty. */
    const char *host;
    int port;
    const char *unix_path; /* used instead of host/port when non-empty */
    /* Endpoints "host:port", "[v6]:port" or "unix:/path", tried in order. */
    const char *const *servers;
    size_t nservers;
    /* Sentinel: when master is non-empty, ask these for its address. */
    const char *sentinel_master;
    const char *const *sentinels;
    size_t nsentinels;
    const char *sentinel_password; /* AUTH to the Sentinels; empty: none */
    int prefer_replica;            /* read from a healthy replica if any */
    const char *username;          /* ACL user, or empty */
    const char *password;          /* empty: no AUTH */
    int db;
    int timeout_ms; /* connect and command timeout */
    int connections;
};

enum rclient_type { RCLIENT_NIL = 0, RCLIENT_STRING, RCLIENT_OTHER };

struct rclient_value {
    enum rclient_type type;
    char *str; /* RCLIENT_STRING: owned copy, NUL added; else NULL */
    size_t len;
};

/*
 * A reply of rclient_command(), copied out of hiredis: strings (bulk and
 * status) are owned copies with a NUL added; arrays own their elements.
 * rclient_reply_clear() frees the lot.
 */
enum rclient_rtype {
    RCLIENT_R_NIL = 0,
    RCLIENT_R_STRING,
    RCLIENT_R_INTEGER,
    RCLIENT_R_ARRAY
};

struct rclient_reply {
    enum rclient_rtype type;
    char *str; /* RCLIENT_R_STRING */
    size_t len;
    long long integer;          /* RCLIENT_R_INTEGER */
    struct rclient_reply *elem; /* RCLIENT_R_ARRAY: n elements */
    size_t n;
};

/* One MGET of rclient_mget_many(): keys in, rcode and out or why back. */
struct rclient_mget {
    const char *const *keys;
    size_t n;
    struct rclient_value *out; /* n */
    int rcode;                 /* MXS_OK, or MXS_TEMPFAIL with why */
    char why[256];
};

typedef void (*rclient_key_cb)(const char *key, size_t len, void *arg);
typedef void (*rclient_reset_cb)(void *arg);

struct cfg;
struct rclient;
struct cfg;

void rclient_conf_from_cfg(struct rclient_conf *conf, const struct cfg *cfg);
struct rclient *rclient_create(const struct rclient_conf *conf);
void rclient_free(struct rclient *rc);
int rclient_mget(struct rclient *rc, const char *const *keys, size_t n,
                 struct rclient_value *out, char *why, size_t whylen);
void rclient_mget_many(struct rclient *rc, struct rclient_mget *m, size_t n);
void rclient_values_clear(struct rclient_value *v, size_t n);
int rclient_down(struct rclient *rc);
int rclient_empty(struct rclient *rc);
int rclient_ping(struct rclient *rc, char *why, size_t whylen);
const char *rclient_endpoint(const struct rclient *rc);
void rclient_watch_start(struct rclient *rc, const char *const *prefixes,
                         size_t n, rclient_key_cb on_key,
                         rclient_reset_cb on_reset, void *arg);
void rclient_watch_stop(struct rclient *rc);
struct rclient *rclient_create_cfg(const struct cfg *cfg);
int rclient_command(struct rclient *rc, int argc, const char *const *argv,
                    struct rclient_reply *out, char *why, size_t whylen);
void rclient_reply_clear(struct rclient_reply *r);
char *rclient_glob_escape(const char *s);

#endif
