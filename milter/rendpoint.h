/*
 * rendpoint.h - where Redis is: endpoints, Sentinel, a ready connection
 *
 * The lowest of the Redis modules (rendpoint, rpool, rwatch, rclient,
 * rcmd; docs/design.md).  rendpoint_open() makes one connection, ready for
 * commands: connected with every connect, read and write bounded by
 * timeout_ms, authenticated, the database selected.  It owns nothing of
 * that connection afterwards: the caller frees it with redisFree().
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
 * ask again, so a failover is followed without a restart.  An ACL user
 * then needs +role besides the lookup commands.
 *
 * Thread safe: after rendpoint_create() only the index of the endpoint
 * that answered last changes (an atomic).  Logs nothing: failures come
 * back in why.
 */
#ifndef RENDPOINT_H
#define RENDPOINT_H

#include <stddef.h>

/* The settings of a connection; rendpoint_create() copies the strings. */
struct rendpoint_conf {
    /* One endpoint, used when servers and sentinels are both empty. */
    const char *host; /* NULL: 127.0.0.1 */
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
};

struct cfg;
struct rendpoint;
struct redisContext;

void rendpoint_conf_from_cfg(struct rendpoint_conf *conf,
                             const struct cfg *cfg);
struct rendpoint *rendpoint_create(const struct rendpoint_conf *conf);
void rendpoint_free(struct rendpoint *ep);
struct redisContext *rendpoint_open(struct rendpoint *ep, char *name,
                                    size_t namelen, char *why, size_t whylen);
const char *rendpoint_name(const struct rendpoint *ep);
int rendpoint_db(const struct rendpoint *ep);
int rendpoint_timeout_ms(const struct rendpoint *ep);

#endif
