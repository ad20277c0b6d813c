/*
 * lookup.c - cache and Redis lookup of routing keys; see lookup.h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "dns.h"
#include "lookup.h"
#include "mxs.h"
#include "rclient.h"

/* lookup_source_name - "cache", "redis", "default" or "dns" */
const char *
lookup_source_name(enum lookup_source source)
{
    switch (source) {
    case LOOKUP_CACHE:
        return "cache";
    case LOOKUP_REDIS:
        return "redis";
    case LOOKUP_DNS:
        return "dns";
    default:
        return "default";
    }
}

/* found - fill the result for a winning key */
static int
found(struct lookup_result *res, const char *key, enum route_mode mode,
      enum lookup_source source)
{
    res->mode = mode;
    res->explicit_key = 1;
    res->source = source;
    snprintf(res->key, sizeof(res->key), "%s", key);
    return MXS_OK;
}

/* fetch - MGET the candidates the cache could not answer, store them */
static int
fetch(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
      const char *const *cand, size_t n, uint64_t now,
      struct lookup_result *res, char *why, size_t whylen)
{
    size_t plen = strlen(cfg->prefix);
    struct rclient_value vals[DOMAIN_MAX_CANDIDATES];
    char *keys[DOMAIN_MAX_CANDIDATES];
    uint64_t gen = cache_generation(cache);
    int rcode = MXS_NOMATCH;
    size_t i;

    for (i = 0; i < n; i++) {
        size_t len = plen + strlen(cand[i]) + 1;

        keys[i] = xmalloc(len);
        snprintf(keys[i], len, "%s%s", cfg->prefix, cand[i]);
    }
    if (rclient_mget(rc, (const char *const *)keys, n, vals, why, whylen) !=
        MXS_OK) {
        rcode = MXS_TEMPFAIL;
        goto out;
    }
    for (i = 0; i < n; i++) {
        enum route_mode mode;

        if (vals[i].type == RCLIENT_NIL) {
            cache_put(cache, cand[i], CACHE_ABSENT, now, gen);
            continue;
        }
        if (vals[i].type != RCLIENT_STRING ||
            route_mode_parse(vals[i].str, vals[i].len, &mode) != MXS_OK) {
            char shown[128];

            if (rcode != MXS_NOMATCH)
                continue; /* a more specific key already decided */
            if (vals[i].type == RCLIENT_STRING)
                mxs_escape(shown, sizeof(shown), vals[i].str, vals[i].len);
            else
                snprintf(shown, sizeof(shown), "(not a string)");
            mxs_why(why, whylen, "invalid value \"%s\" in key %s", shown,
                    keys[i]);
            snprintf(res->key, sizeof(res->key), "%s", cand[i]);
            rcode = MXS_INVALID;
            continue;
        }
        cache_put(cache, cand[i], (int)mode, now, gen);
        if (rcode == MXS_NOMATCH)
            rcode = found(res, cand[i], mode, LOOKUP_REDIS);
    }
    rclient_values_clear(vals, n);
out:
    for (i = 0; i < n; i++)
        free(keys[i]);
    return rcode;
}

/*
 * lookup_domain - the routing mode for a normalised domain
 *
 * Returns MXS_OK with res filled (routing.default when no key exists),
 * MXS_TEMPFAIL when Redis could not answer, MXS_INVALID when the winning
 * key holds something that is not a mode; why says which.
 */
int
lookup_domain(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
              const char *domain, uint64_t now_ms, struct lookup_result *res,
              char *why, size_t whylen)
{
    const char *cand[DOMAIN_MAX_CANDIDATES];
    size_t n, i;
    int rcode;

    memset(res, 0, sizeof(*res));
    n = domain_candidates(domain, cfg->subdomains, cand, DOMAIN_MAX_CANDIDATES);
    for (i = 0; i < n; i++) {
        int v = cache_get(cache, cand[i], now_ms);

        if (v == CACHE_MISS)
            break;
        if (v != CACHE_ABSENT)
            return found(res, cand[i], (enum route_mode)v, LOOKUP_CACHE);
    }
    if (i < n) {
        rcode =
            fetch(cfg, cache, rc, cand + i, n - i, now_ms, res, why, whylen);
        if (rcode != MXS_NOMATCH)
            return rcode;
    }
    res->mode = (enum route_mode)cfg->default_mode;
    res->explicit_key = 0;
    res->source = i < n ? LOOKUP_REDIS : LOOKUP_CACHE;
    res->key[0] = '\0';
    return MXS_OK;
}

/*
 * lookup_address - the routing mode for a parsed recipient address
 *
 * norm (DOMAIN_MAX + 1 bytes) gets the normalised domain, or "" when there
 * is none to look up.  No domain or an address literal: MXS_OK, mode none
 * from LOOKUP_DEFAULT, never looked up.  A malformed domain: MXS_INVALID
 * with norm "".  Otherwise as lookup_domain() with norm set.
 */
int
lookup_address(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
               const struct addr *a, uint64_t now_ms, char *norm,
               size_t normlen, struct lookup_result *res, char *why,
               size_t whylen)
{
    int rcode;

    norm[0] = '\0';
    memset(res, 0, sizeof(*res));
    if (a->domain == NULL || a->literal) {
        res->mode = ROUTE_NONE;
        res->source = LOOKUP_DEFAULT;
        return MXS_OK;
    }
    rcode = domain_normalize(a->domain, norm, normlen, why, whylen);
    if (rcode != MXS_OK) {
        norm[0] = '\0';
        return rcode;
    }
    return lookup_domain(cfg, cache, rc, norm, now_ms, res, why, whylen);
}

/*
 * lookup_auto - resolve an auto result from the domain's MX records
 *
 * A result in any other mode is left as it is (MXS_OK, evidence "").  For
 * auto: MXS_OK with the mode DNS gives (none, local, backup or remote),
 * source LOOKUP_DNS and explicit_key set (DNS is the evidence, so a local
 * decision may use the local tag), res->key kept; evidence says why.
 * MXS_TEMPFAIL with why when DNS cannot tell: the caller applies
 * routing.on_error, never a guess.
 */
int
lookup_auto(struct dns *dns, const char *domain, uint64_t now_ms,
            struct lookup_result *res, char *evidence, size_t evlen, char *why,
            size_t whylen)
{
    enum route_mode mode;
    char dwhy[256];

    if (evlen > 0)
        evidence[0] = '\0';
    if (res->mode != ROUTE_AUTO)
        return MXS_OK;
    if (dns_auto_mode(dns, domain, now_ms, &mode, evidence, evlen, dwhy,
                      sizeof(dwhy)) != MXS_OK) {
        mxs_why(why, whylen, "auto mode: %s", dwhy);
        return MXS_TEMPFAIL;
    }
    res->mode = mode;
    res->explicit_key = 1;
    res->source = LOOKUP_DNS;
    return MXS_OK;
}
