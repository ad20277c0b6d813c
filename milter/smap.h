/*
 * smap.h - Postfix socketmap server: recipients of remote-mode domains exist
 *
 * Postfix rejects a recipient of a hosted domain that no table knows.  The
 * users of a domain in remote mode live at its external provider, so
 * Postfix asks this server through virtual_alias_maps (socketmap_table(5)):
 * for an address whose domain is in remote or backup mode by an explicit
 * Redis key, or by DNS for the auto mode (dns.h), the answer is the
 * address itself ("OK bob@example.com"), which makes it known
 * without changing it; anything else is "NOTFOUND ".  A failed lookup is
 * "TEMP <reason>" (Postfix answers 4xx) unless routing.on_error = "default".
 *
 * Two layers.  The request reader is pure, like hiredis's reader: it is
 * fed bytes, never a socket, and hands out complete requests "<name>
 * <key>" framed as netstrings "<len>:<payload>,"; a framing error sits in
 * the reader and nothing is logged.  smap_reply() frames one reply.
 *
 * The server is the I/O shell: smap_open() binds socketmap.socket (before
 * daemon(), so a socket in use stops the start), smap_start() runs a
 * listener thread and one thread per client (at most
 * socketmap.max_clients; more are closed at once, with a warning), and
 * smap_stop() stops and joins them all, closes the sockets and removes a
 * unix socket.  Every lookup goes through lookup_address() and
 * lookup_auto() with the milter's cfg, cache, Redis pool and resolver,
 * which must outlive smap_stop().
 */
#ifndef SMAP_H
#define SMAP_H

#include <stddef.h>

struct cfg;
struct cache;
struct dns;
struct rclient;
struct smap;
struct smap_reader;

/* Longest request payload accepted, like Sendmail's socket map limit. */
#define SMAP_MAX_REQUEST 10000

struct smap_request {
    const char *name; /* map name, borrowed from the reader */
    const char *key;  /* borrowed; NULL when the payload is not "name key" */
};

struct smap_reader *smap_reader_create(size_t max);
void smap_reader_free(struct smap_reader *r);
void smap_reader_feed(struct smap_reader *r, const char *buf, size_t len);
int smap_reader_get(struct smap_reader *r, struct smap_request *req);
const char *smap_reader_error(const struct smap_reader *r);
int smap_request_check(const struct smap_request *req, const char *name,
                       char *why, size_t whylen);
size_t smap_reply(char *out, size_t outlen, const char *status,
                  const char *text);

struct smap *smap_open(const struct cfg *cfg);
void smap_start(struct smap *s, struct cache *cache, struct rclient *rc,
                struct dns *dns);
void smap_stop(struct smap *s);

#endif
