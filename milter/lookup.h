/*
 * lookup.h - find a domain's routing mode: cache first, then Redis
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
 */
#ifndef LOOKUP_H
#define LOOKUP_H

#include <stdint.h>

#include "addr.h"
#include "cfg.h"
#include "domain.h"
#include "route.h"

struct cache;
struct dns;
struct rclient;

enum lookup_source { LOOKUP_CACHE, LOOKUP_REDIS, LOOKUP_DEFAULT, LOOKUP_DNS };

struct lookup_result {
    enum route_mode mode;
    int explicit_key;          /* a key or DNS decided, not the default */
    enum lookup_source source; /* where the deciding answer came from */
    char key[DOMAIN_MAX + 1];  /* winning candidate domain, or "" */
};

int lookup_domain(const struct cfg *cfg, struct cache *cache,
                  struct rclient *rc, const char *domain, uint64_t now_ms,
                  struct lookup_result *res, char *why, size_t whylen);
int lookup_address(const struct cfg *cfg, struct cache *cache,
                   struct rclient *rc, const struct addr *a, uint64_t now_ms,
                   char *norm, size_t normlen, struct lookup_result *res,
                   char *why, size_t whylen);
int lookup_auto(struct dns *dns, const char *domain, uint64_t now_ms,
                struct lookup_result *res, char *evidence, size_t evlen,
                char *why, size_t whylen);
const char *lookup_source_name(enum lookup_source source);

#endif
