/*
 * smap.h - the socket map server: what the MTA does with a recipient when
 * it delivers
 *
 * The MTA asks per recipient, at every delivery attempt and at RCPT,
 * through the socket map protocol (Postfix socketmap_table(5), Sendmail's
 * socket map class).  Five maps (route.h, docs/design.md): transport
 * (Postfix transport_maps: the instance's local or remote transport, or
 * retry:4.4.6 while the best MX is still here), valias (Postfix
 * virtual_alias_maps: a remote-mode address is itself, so users that
 * exist only at the provider are known), rcpt (Postfix
 * check_recipient_access for untrusted clients), mode (Sendmail
 * ruleset 0) and verify (Sendmail's Local_check_rcpt: rcpt, with backup
 * mode answered by a probe of the better MX, verify.h, whose threads
 * smap_start() starts and smap_stop() joins).  Keys that cannot be
 * addresses get "NOTFOUND " at once; a failed lookup is "TEMP <reason>"
 * unless routing.on_error = "default".
 * The instance's transports come from postfix-transports beside the
 * config (cfg.h), read again when it changes.
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
 * unix socket.  Every decision goes through lookup_route() with the
 * milter's cfg, cache, Redis pool and resolver, which must outlive
 * smap_stop().
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
size_t smap_reply(char *out, size_t outlen, const char *status,
                  const char *text);

struct smap *smap_open(const struct cfg *cfg);
void smap_start(struct smap *s, struct cache *cache, struct rclient *rc,
                struct dns *dns);
void smap_stop(struct smap *s);

#endif
