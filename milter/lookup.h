/*
 * lookup.h - find a recipient's routing mode: cache first, then Redis
 *
 * Thread safe (the cache and the pool lock inside).  No logging: the
 * caller logs with the queue id.  With subdomains on, every candidate the
 * cache cannot answer is fetched in one MGET; the most specific key that
 * exists wins.  An invalid value in the winning key is an error, never a
 * fall back to a parent domain or the default.  lookup_address() is the
 * one path from a parsed recipient to its mode, for the milter and the
 * socketmap server alike.  lookup_auto() then turns a result whose mode
 * is auto into the mode the domain's MX records give (dns.h); call it
 * right after lookup_address() / lookup_domain() with the same domain.
 * lookup_route() does both, checks whether a remote- or backup-mode
 * domain's best MX is still this server, and calls route_decide(): the
 * one path from an address to its decision, for the socket map server,
 * the milter and mxswitch-ctl explain.
 *
 * Per-address keys (routing.address_prefix set): address_prefix +
 * lookup_address_key() (e.g. mxswitch:address:ceo@example.com) beats every
 * domain key, "none" included.  It goes in the same MGET as the domain
 * candidates, so a lookup is at most one Redis command, and none when the
 * cache answers both (the cache holds "no such key" too).  Cache entries
 * of address keys are named local@domain; domain entries never hold '@'.
 *
 * With cache.stale_ttl, an answer past its ttl is used while Redis cannot
 * answer (source LOOKUP_STALE, why says what failed); the caller logs it,
 * as a warning when stale_first says the outage's first stale answer.
 * lookup_auto() does the same with DNS answers past their TTL while DNS
 * fails (dns_stale; the evidence says so).
 */
#ifndef LOOKUP_H
#define LOOKUP_H

#include <stdint.h>

#include "addr.h"
#include "cfg.h"
#include "domain.h"
#include "rclient.h"
#include "route.h"

struct cache;
struct dns;
struct rclient;

enum lookup_source {
    LOOKUP_CACHE,
    LOOKUP_REDIS,
    LOOKUP_DEFAULT,
    LOOKUP_STALE, /* a cached answer past its ttl: Redis could not answer */
    LOOKUP_DNS,   /* mode auto, decided by the domain's MX records */
    LOOKUP_NSOURCES
};

/* Which kind of key decided. */
enum lookup_kind {
    LOOKUP_KIND_NONE = 0,
    LOOKUP_KIND_DOMAIN,
    LOOKUP_KIND_ADDRESS
};

/* Longest key minus prefix: local@domain. */
#define LOOKUP_KEY_MAX (ADDR_KEY_LOCAL_MAX + 1 + DOMAIN_MAX)

struct lookup_result {
    enum route_mode mode;
    int explicit_key;          /* a key or DNS decided, not the default */
    enum lookup_source source; /* where the deciding answer came from */
    int stale_first; /* LOOKUP_STALE, and the first since Redis answered */
    char key[LOOKUP_KEY_MAX + 1]; /* winning key minus its prefix, or "" */
    enum lookup_kind kind;        /* which prefix key has; NONE when "" */
    int dns_stale; /* LOOKUP_DNS from an expired answer: DNS_STALE[_FIRST] */
};

/*
 * The whole decision for one address (lookup_route()): how the mode was
 * found, what route_decide() made of it, and the DNS evidence.
 */
struct lookup_route {
    struct lookup_result res;
    struct route_out out;
    int failed;                  /* the lookup failed (why says how) */
    int self_mx;                 /* remote/backup with the best MX here */
    char domain[DOMAIN_MAX + 1]; /* normalised */
    char evidence[512];          /* auto or self-MX: the MX records seen */
    char note[256]; /* what the lookup said: why it failed, or why a
                       stale answer stood in */
};

/* One candidate key of lookup_probe() and the raw value Redis holds. */
struct lookup_probe {
    char *key;                /* the Redis key (prefix + domain), owned */
    const char *domain;       /* the candidate, points into the domain */
    struct rclient_value val; /* as rclient_mget() returns it */
};

int lookup_domain(const struct cfg *cfg, struct cache *cache,
                  struct rclient *rc, const char *domain, uint64_t now_ms,
                  struct lookup_result *res, char *why, size_t whylen);
int lookup_address(const struct cfg *cfg, struct cache *cache,
                   struct rclient *rc, const struct addr *a, uint64_t now_ms,
                   char *norm, size_t normlen, struct lookup_result *res,
                   char *why, size_t whylen);
int lookup_address_key(const struct cfg *cfg, const struct addr *a, char *out,
                       size_t outlen, char *why, size_t whylen);
int lookup_auto(struct dns *dns, const char *domain, uint64_t now_ms,
                struct lookup_result *res, char *evidence, size_t evlen,
                char *why, size_t whylen);
int lookup_route(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
                 struct dns *dns, const struct addr *a, uint64_t now_ms,
                 struct lookup_route *lr, char *why, size_t whylen);
const char *lookup_source_name(enum lookup_source source);
const char *lookup_key_prefix(const struct cfg *cfg, enum lookup_kind kind);
int lookup_probe(const struct cfg *cfg, struct rclient *rc, const char *domain,
                 struct lookup_probe *out, size_t *n, char *why, size_t whylen);
void lookup_probe_clear(struct lookup_probe *p, size_t n);

#endif
