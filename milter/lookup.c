/*
 * lookup.c - cache and Redis lookup of routing keys; see lookup.h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "dns.h"
#include "fmt.h"
#include "lookup.h"
#include "mxs.h"
#include "rclient.h"
#include "stats.h"

/* lookup_source_name - "cache", "redis", "stale", "default" or "dns" */
const char *
lookup_source_name(enum lookup_source source)
{
    switch (source) {
    case LOOKUP_CACHE:
        return "cache";
    case LOOKUP_REDIS:
        return "redis";
    case LOOKUP_STALE:
        return "stale";
    case LOOKUP_DNS:
        return "dns";
    default:
        return "default";
    }
}

/* lookup_key_prefix - the Redis key prefix of a kind of key; "" for none */
const char *
lookup_key_prefix(const struct cfg *cfg, enum lookup_kind kind)
{
    switch (kind) {
    case LOOKUP_KIND_DOMAIN:
        return cfg->prefix;
    case LOOKUP_KIND_ADDRESS:
        return cfg->address_prefix;
    default:
        return "";
    }
}

/* Whether the last answer came from stale entries: says when an outage's
 * first stale answer is given, so the caller warns once, not per lookup. */
/* One key to ask for: its cache name and which prefix makes it a key. */
struct want {
    const char *name;
    enum lookup_kind kind;
};

/*
 * A lookup the cache could not decide: the keys to MGET, in order of
 * precedence (n of them; none when n is 0), and a less specific domain
 * key the cache holds (hit), which decides when the keys before it do not
 * exist.  Owns its strings; see lookup_address_plan().  All zeros is an
 * empty plan.
 */
struct lookup_plan {
    size_t n;
    struct want *w;  /* n cache names */
    char **keys;     /* n Redis keys */
    struct want hit; /* name NULL when none */
    int hitv;
    uint64_t gen; /* the cache's generation when planned */
};

static void lookup_plan_clear(struct lookup_plan *p);
static int stale_mode;

/* found - fill the result for a winning key */
static int
found(struct lookup_result *res, const struct want *w, enum route_mode mode,
      enum lookup_source source)
{
    size_t n;

    res->mode = mode;
    res->explicit_key = 1;
    res->source = source;
    res->kind = w->kind;
    n = strnlen(w->name, sizeof(res->key) - 1); /* no printf: per rcpt */
    memcpy(res->key, w->name, n);
    res->key[n] = '\0';
    return MXS_OK;
}

/* by_default - fill the result for no key: routing.default, from source */
static int
by_default(const struct cfg *cfg, struct lookup_result *res,
           enum lookup_source source)
{
    res->mode = (enum route_mode)cfg->default_mode;
    res->explicit_key = 0;
    res->source = source;
    res->kind = LOOKUP_KIND_NONE;
    res->key[0] = '\0';
    return MXS_OK;
}

/*
 * store - what Redis said for the keys the cache could not answer
 *
 * The plan's keys are in order of precedence (address key, then the most
 * specific domain): the first key that exists decides, and an invalid
 * value there is MXS_INVALID.  MXS_NOMATCH when none exists.  Every
 * answer goes into the cache, unless it was flushed since the plan.
 */
static int
store(struct cache *cache, const struct lookup_plan *p,
      const struct rclient_value *vals, uint64_t now, struct lookup_result *res,
      char *why, size_t whylen)
{
    int rcode = MXS_NOMATCH;
    size_t i;

    for (i = 0; i < p->n; i++) {
        enum route_mode mode;

        if (vals[i].type == RCLIENT_NIL) {
            cache_put(cache, p->w[i].name, CACHE_ABSENT, now, p->gen);
            continue;
        }
        if (vals[i].type != RCLIENT_STRING ||
            route_mode_parse(vals[i].str, vals[i].len, &mode) != MXS_OK) {
            char shown[128];

            if (rcode != MXS_NOMATCH)
                continue; /* a key that takes precedence already decided */
            if (vals[i].type == RCLIENT_STRING)
                mxs_escape(shown, sizeof(shown), vals[i].str, vals[i].len);
            else
                snprintf(shown, sizeof(shown), "(not a string)");
            mxs_why(why, whylen, "invalid value \"%s\" in key %s", shown,
                    p->keys[i]);
            fmt_print(res->key, sizeof(res->key), "%s", p->w[i].name);
            res->kind = p->w[i].kind;
            rcode = MXS_INVALID;
            continue;
        }
        cache_put(cache, p->w[i].name, (int)mode, now, p->gen);
        if (rcode == MXS_NOMATCH)
            rcode = found(res, &p->w[i], mode, LOOKUP_REDIS);
    }
    return rcode;
}

/*
 * stale - answer from cache entries past their ttl, after Redis failed
 *
 * The keys the plan meant to ask (in order of precedence) must all still
 * have a stale entry: the first holding a mode wins, as with fresh
 * answers.  MXS_TEMPFAIL otherwise.
 */
static int
stale(const struct cfg *cfg, struct cache *cache, const struct lookup_plan *p,
      uint64_t now, struct lookup_result *res)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        int v = cache_get_stale(cache, p->w[i].name, now);

        if (v == CACHE_MISS)
            return MXS_TEMPFAIL;
        if (v != CACHE_ABSENT)
            return found(res, &p->w[i], (enum route_mode)v, LOOKUP_STALE);
    }
    return by_default(cfg, res, LOOKUP_STALE);
}

/* plan_add - one more key to fetch: its cache name and its Redis key;
 * room is made for max keys with the first */
static void
plan_add(const struct cfg *cfg, struct lookup_plan *p, size_t max,
         const char *name, enum lookup_kind kind)
{
    const char *prefix = lookup_key_prefix(cfg, kind);
    size_t len = strlen(prefix) + strlen(name) + 1;

    if (p->n == 0) {
        p->w = xmalloc(max * sizeof(*p->w));
        p->keys = xmalloc(max * sizeof(*p->keys));
    }
    p->w[p->n].name = xstrdup(name);
    p->w[p->n].kind = kind;
    p->keys[p->n] = xmalloc(len);
    fmt_print(p->keys[p->n], len, "%s%s", prefix, name);
    p->n++;
}

/*
 * plan_keys - the mode from an address key (akey, or NULL) and a domain,
 * as far as the cache knows it
 *
 * MXS_OK with res filled when the cache decides; MXS_PENDING with p
 * holding the keys to MGET otherwise (lookup_finish() takes it on).  A
 * cached address key decides alone.  A domain candidate that misses makes
 * it and all less specific ones be fetched, as before address keys.
 */
static int
plan_keys(const struct cfg *cfg, struct cache *cache, const char *akey,
          const char *domain, uint64_t now_ms, struct lookup_result *res,
          struct lookup_plan *p)
{
    const char *cand[DOMAIN_MAX_CANDIDATES], *hit = NULL;
    size_t n, i;
    int v;

    memset(res, 0, sizeof(*res));
    memset(p, 0, sizeof(*p));
    n = domain_candidates(domain, cfg->subdomains, cand, DOMAIN_MAX_CANDIDATES);
    if (akey != NULL) {
        struct want a = {akey, LOOKUP_KIND_ADDRESS};

        v = cache_get(cache, akey, now_ms);
        if (v >= 0) {
            stats_cache(1);
            return found(res, &a, (enum route_mode)v, LOOKUP_CACHE);
        }
        if (v == CACHE_MISS)
            plan_add(cfg, p, n + 1, akey, LOOKUP_KIND_ADDRESS);
    }
    for (i = 0; i < n; i++) {
        v = cache_get(cache, cand[i], now_ms);
        if (v == CACHE_MISS)
            break;
        if (v != CACHE_ABSENT) {
            hit = cand[i];
            p->hitv = v;
            break;
        }
    }
    for (; hit == NULL && i < n; i++)
        plan_add(cfg, p, n + 1, cand[i], LOOKUP_KIND_DOMAIN);
    stats_cache(p->n == 0);
    if (p->n > 0) {
        p->gen = cache_generation(cache); /* before asking, as fetch did */
        if (hit != NULL) {
            p->hit.name = xstrdup(hit);
            p->hit.kind = LOOKUP_KIND_DOMAIN;
        }
        return MXS_PENDING;
    }
    if (hit != NULL) { /* the common case: a hit, nothing held */
        struct want w = {hit, LOOKUP_KIND_DOMAIN};

        return found(res, &w, (enum route_mode)p->hitv, LOOKUP_CACHE);
    }
    return by_default(cfg, res, LOOKUP_CACHE);
}

/*
 * lookup_finish - decide a planned lookup (MXS_PENDING from
 * lookup_address_plan(): p holds keys) from Redis's answer
 *
 * fetched is MXS_OK with vals[0..p->n) as rclient_mget() gives them, or
 * MXS_TEMPFAIL with why saying what failed (then cached answers within
 * cache.stale_ttl stand in, as lookup_domain() says).  Clears p.  Returns
 * as lookup_domain().
 */
static int
lookup_finish(const struct cfg *cfg, struct cache *cache, struct lookup_plan *p,
              int fetched, const struct rclient_value *vals, uint64_t now_ms,
              struct lookup_result *res, char *why, size_t whylen)
{
    int rcode = fetched;

    if (fetched == MXS_OK)
        rcode = store(cache, p, vals, now_ms, res, why, whylen);
    /* Stale answers per the cache's own stale time: cache.stale_ttl is
     * read at start only (a reload that changes it says so and keeps it). */
    if (rcode == MXS_TEMPFAIL && stale(cfg, cache, p, now_ms, res) == MXS_OK) {
        res->stale_first =
            !__atomic_exchange_n(&stale_mode, 1, __ATOMIC_RELAXED);
        if (!res->explicit_key && p->hit.name != NULL)
            found(res, &p->hit, (enum route_mode)p->hitv, LOOKUP_CACHE);
        rcode = MXS_OK;
    } else {
        if (rcode != MXS_TEMPFAIL) /* Redis answered */
            __atomic_store_n(&stale_mode, 0, __ATOMIC_RELAXED);
        if (rcode == MXS_NOMATCH)
            rcode = p->hit.name != NULL
                        ? found(res, &p->hit, (enum route_mode)p->hitv,
                                LOOKUP_CACHE)
                        : by_default(cfg, res, LOOKUP_REDIS);
    }
    lookup_plan_clear(p);
    return rcode;
}

/* lookup_plan_clear - free what a plan holds; it may be cleared again */
static void
lookup_plan_clear(struct lookup_plan *p)
{
    size_t i;

    if (p->n == 0 && p->hit.name == NULL)
        return; /* empty: the common case, a recipient the cache decided */
    for (i = 0; i < p->n; i++) {
        free((char *)p->w[i].name);
        free(p->keys[i]);
    }
    free(p->w);
    free(p->keys);
    free((char *)p->hit.name);
    memset(p, 0, sizeof(*p));
}

/* all_nil - whether Redis holds none of the keys */
static int
all_nil(const struct rclient_value *vals, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (vals[i].type != RCLIENT_NIL)
            return 0;
    return 1;
}

/*
 * empty_stale - while Redis came back empty (rclient_empty()), a domain
 * it has no key for keeps its last known mode from the stale cache, if
 * that was a mode: MXS_OK with res filled, else MXS_NOMATCH
 */
static int
empty_stale(const struct cfg *cfg, struct cache *cache,
            const struct lookup_plan *p, uint64_t now_ms,
            struct lookup_result *res)
{
    struct lookup_result s;

    memset(&s, 0, sizeof(s)); /* stale() fills the key's fields only */
    if (stale(cfg, cache, p, now_ms, &s) != MXS_OK || !s.explicit_key)
        return MXS_NOMATCH;
    *res = s;
    res->stale_first = !__atomic_exchange_n(&stale_mode, 1, __ATOMIC_RELAXED);
    return MXS_OK;
}

/* lookup_fetch - carry out a plan at once: one MGET, then lookup_finish() */
static int
lookup_fetch(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
             struct lookup_plan *p, uint64_t now_ms, struct lookup_result *res,
             char *why, size_t whylen)
{
    struct rclient_value vals[DOMAIN_MAX_CANDIDATES + 1];
    uint64_t t0 = stats_clock();
    size_t n = p->n;
    int rcode, fetched;

    fetched = stats_redis(
        rclient_mget(rc, (const char *const *)p->keys, n, vals, why, whylen),
        t0);
    if (fetched == MXS_OK && rclient_empty(rc) && all_nil(vals, n) &&
        empty_stale(cfg, cache, p, now_ms, res) == MXS_OK) {
        mxs_why(why, whylen, "redis is empty, though it held keys before");
        rclient_values_clear(vals, n);
        lookup_plan_clear(p);
        return MXS_OK;
    }
    rcode =
        lookup_finish(cfg, cache, p, fetched, vals, now_ms, res, why, whylen);
    if (fetched == MXS_OK)
        rclient_values_clear(vals, n);
    return rcode;
}

/* lookup_keys - plan_keys(), then the MGET at once if the cache did not
 * decide */
static int
lookup_keys(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
            const char *akey, const char *domain, uint64_t now_ms,
            struct lookup_result *res, char *why, size_t whylen)
{
    struct lookup_plan p;
    int rcode = plan_keys(cfg, cache, akey, domain, now_ms, res, &p);

    if (rcode != MXS_PENDING)
        return rcode;
    return lookup_fetch(cfg, cache, rc, &p, now_ms, res, why, whylen);
}

/*
 * lookup_domain - the routing mode for a normalised domain
 *
 * Returns MXS_OK with res filled (routing.default when no key exists),
 * MXS_TEMPFAIL when Redis could not answer, MXS_INVALID when the winning
 * key holds something that is not a mode; why says which.  When Redis
 * could not answer but the cache still holds answers within
 * cache.stale_ttl, MXS_OK with source LOOKUP_STALE, and why says what
 * failed.
 */
int
lookup_domain(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
              const char *domain, uint64_t now_ms, struct lookup_result *res,
              char *why, size_t whylen)
{
    return lookup_keys(cfg, cache, rc, NULL, domain, now_ms, res, why, whylen);
}

/* address_key - local@norm for a recipient; MXS_OK or MXS_NOMATCH */
static int
address_key(const struct cfg *cfg, const struct addr *a, const char *norm,
            char *out, size_t outlen, char *why, size_t whylen)
{
    char local[ADDR_KEY_LOCAL_MAX + 1];

    if (cfg->address_prefix[0] == '\0') {
        mxs_why(why, whylen, "routing.address_prefix is not set");
        return MXS_NOMATCH;
    }
    if (addr_key_local(a->local, a->quoted, cfg->delimiter[0], local,
                       sizeof(local), why, whylen) != MXS_OK)
        return MXS_NOMATCH;
    if ((size_t)snprintf(out, outlen, "%s@%s", local, norm) >= outlen) {
        mxs_why(why, whylen, "address key longer than %zu bytes", outlen - 1);
        return MXS_NOMATCH;
    }
    return MXS_OK;
}

/*
 * lookup_address_key - the per-address key of a recipient, minus prefix
 *
 * out (LOOKUP_KEY_MAX + 1 bytes) gets local@domain as address keys name
 * it: addr_key_local()'s local part and the normalised domain; the Redis
 * key is routing.address_prefix + out.  Returns MXS_OK; MXS_NOMATCH when
 * the address has no key (address keys off, no domain, an address
 * literal, or a local part addr_key_local() refuses); MXS_INVALID for a
 * malformed domain.  why says which.  The same function serves lookups and
 * the admin tool, so a key that is set is a key that is read.
 */
int
lookup_address_key(const struct cfg *cfg, const struct addr *a, char *out,
                   size_t outlen, char *why, size_t whylen)
{
    char norm[DOMAIN_MAX + 1];
    int rcode;

    out[0] = '\0';
    if (a->domain == NULL || a->literal) {
        mxs_why(why, whylen, "%s",
                a->literal ? "address literal" : "no domain");
        return MXS_NOMATCH;
    }
    rcode = domain_normalize(a->domain, norm, sizeof(norm), why, whylen);
    if (rcode != MXS_OK)
        return rcode;
    rcode = address_key(cfg, a, norm, out, outlen, why, whylen);
    if (rcode != MXS_OK)
        out[0] = '\0';
    return rcode;
}

/*
 * lookup_address_plan - lookup_address() as far as the cache goes
 *
 * As lookup_address(), but where Redis must be asked it returns
 * MXS_PENDING with p holding the keys: fetch them (rclient_mget())
 * and decide with lookup_finish(), or lookup_plan_clear() p.
 */
static int
lookup_address_plan(const struct cfg *cfg, struct cache *cache,
                    const struct addr *a, uint64_t now_ms, char *norm,
                    size_t normlen, struct lookup_result *res,
                    struct lookup_plan *p, char *why, size_t whylen)
{
    char akey[LOOKUP_KEY_MAX + 1];
    int rcode;

    norm[0] = '\0';
    if (a->domain == NULL || a->literal) {
        memset(res, 0, sizeof(*res));
        memset(p, 0, sizeof(*p));
        res->mode = ROUTE_NONE;
        res->source = LOOKUP_DEFAULT;
        return MXS_OK;
    }
    rcode = domain_normalize(a->domain, norm, normlen, why, whylen);
    if (rcode != MXS_OK) {
        memset(res, 0, sizeof(*res));
        memset(p, 0, sizeof(*p));
        norm[0] = '\0';
        return rcode;
    }
    /* without address keys, no key to build (nor a why to write) */
    rcode = cfg->address_prefix[0] == '\0'
                ? MXS_NOMATCH
                : address_key(cfg, a, norm, akey, sizeof(akey), why, whylen);
    return plan_keys(cfg, cache, rcode == MXS_OK ? akey : NULL, norm, now_ms,
                     res, p);
}

/*
 * lookup_address - the routing mode for a parsed recipient address
 *
 * norm (DOMAIN_MAX + 1 bytes) gets the normalised domain, or "" when there
 * is none to look up.  No domain or an address literal: MXS_OK, mode none
 * from LOOKUP_DEFAULT, never looked up.  A malformed domain: MXS_INVALID
 * with norm "".  Otherwise the address key (when it has one) and the
 * domain's candidates as lookup_domain(), with norm set.
 */
int
lookup_address(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
               const struct addr *a, uint64_t now_ms, char *norm,
               size_t normlen, struct lookup_result *res, char *why,
               size_t whylen)
{
    struct lookup_plan p;
    int rcode = lookup_address_plan(cfg, cache, a, now_ms, norm, normlen, res,
                                    &p, why, whylen);

    if (rcode != MXS_PENDING)
        return rcode;
    return lookup_fetch(cfg, cache, rc, &p, now_ms, res, why, whylen);
}

/*
 * self_mx - whether a domain's best MX is this server (dns_self_mx()); a
 * DNS failure counts as "not here": the MTA then meets the same DNS and
 * defers by itself
 */
static int
self_mx(struct dns *dns, const char *domain, uint64_t now_ms, char *evidence,
        size_t evlen)
{
    return dns != NULL && dns_self_mx(dns, domain, now_ms, evidence, evlen);
}

/*
 * lookup_route - the decision for one recipient address
 *
 * MXS_OK: lr holds the decision (a failed lookup is decided too: TEMP,
 * or routing.default with on_error "default"; lr->failed and why say
 * so).  MXS_NOMATCH: no domain or an address literal: no opinion, nothing
 * looked up.  MXS_INVALID: the domain is malformed (why).
 */
int
lookup_route(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
             struct dns *dns, const struct addr *a, uint64_t now_ms,
             struct lookup_route *lr, char *why, size_t whylen)
{
    struct route_in in;
    int rcode;

    memset(lr, 0, sizeof(*lr));
    if (a->domain == NULL || a->literal) {
        mxs_why(why, whylen, "%s",
                a->literal ? "address literal" : "no domain");
        return MXS_NOMATCH;
    }
    rcode = lookup_address(cfg, cache, rc, a, now_ms, lr->domain,
                           sizeof(lr->domain), &lr->res, why, whylen);
    if (rcode != MXS_OK && lr->domain[0] == '\0')
        return MXS_INVALID;
    if (rcode == MXS_OK)
        rcode = lookup_auto(dns, lr->domain, now_ms, &lr->res, lr->evidence,
                            sizeof(lr->evidence), why, whylen);
    lr->failed = rcode != MXS_OK;
    if (lr->failed || lr->res.source == LOOKUP_STALE)
        fmt_print(lr->note, sizeof(lr->note), "%s", why);
    if (lr->failed) { /* what stands in is routing.default, if anything */
        char key[LOOKUP_KEY_MAX + 1];
        enum lookup_kind kind = lr->res.kind;

        memcpy(key, lr->res.key, sizeof(key)); /* an invalid key's name */
        memset(&lr->res, 0, sizeof(lr->res));
        lr->res.source = LOOKUP_DEFAULT;
        lr->res.kind = kind;
        memcpy(lr->res.key, key, sizeof(key));
    }
    /* DNS already said where an auto domain's best MX is. */
    if (!lr->failed && lr->res.source != LOOKUP_DNS &&
        (lr->res.mode == ROUTE_REMOTE || lr->res.mode == ROUTE_BACKUP))
        lr->self_mx = self_mx(dns, lr->domain, now_ms, lr->evidence,
                              sizeof(lr->evidence));
    memset(&in, 0, sizeof(in));
    in.failed = lr->failed;
    in.mode = lr->res.mode;
    in.explicit_key = lr->res.explicit_key;
    in.self_mx = lr->self_mx;
    in.on_error_default = cfg->on_error == CFG_ON_ERROR_DEFAULT;
    in.default_mode = (enum route_mode)cfg->default_mode;
    route_decide(&in, &lr->out, why, whylen);
    return MXS_OK;
}

/*
 * lookup_probe - every candidate key of a domain with its raw value
 *
 * For showing how a decision is made (mxswitch-ctl explain): the keys
 * lookup_domain() would try, most specific first, fetched in one MGET
 * with no cache.  out has room for DOMAIN_MAX_CANDIDATES; *n gets the
 * count.  MXS_OK, or MXS_TEMPFAIL with why.  Release with
 * lookup_probe_clear().
 */
int
lookup_probe(const struct cfg *cfg, struct rclient *rc, const char *domain,
             struct lookup_probe *out, size_t *n, char *why, size_t whylen)
{
    const char *cand[DOMAIN_MAX_CANDIDATES];
    const char *keys[DOMAIN_MAX_CANDIDATES];
    struct rclient_value vals[DOMAIN_MAX_CANDIDATES];
    size_t i, len;

    *n =
        domain_candidates(domain, cfg->subdomains, cand, DOMAIN_MAX_CANDIDATES);
    for (i = 0; i < *n; i++) {
        len = strlen(cfg->prefix) + strlen(cand[i]) + 1;
        out[i].key = xmalloc(len);
        fmt_print(out[i].key, len, "%s%s", cfg->prefix, cand[i]);
        out[i].domain = cand[i];
        memset(&out[i].val, 0, sizeof(out[i].val));
        keys[i] = out[i].key;
    }
    if (rclient_mget(rc, keys, *n, vals, why, whylen) != MXS_OK) {
        lookup_probe_clear(out, *n);
        *n = 0;
        return MXS_TEMPFAIL;
    }
    for (i = 0; i < *n; i++)
        out[i].val = vals[i];
    return MXS_OK;
}

/* lookup_probe_clear - free what lookup_probe() filled in */
void
lookup_probe_clear(struct lookup_probe *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(p[i].key);
        p[i].key = NULL;
        rclient_values_clear(&p[i].val, 1);
    }
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
    int stale;

    if (evlen > 0)
        evidence[0] = '\0';
    if (res->mode != ROUTE_AUTO)
        return MXS_OK;
    if (dns_auto_mode(dns, domain, now_ms, &mode, evidence, evlen, &stale, dwhy,
                      sizeof(dwhy)) != MXS_OK) {
        mxs_why(why, whylen, "auto mode: %s", dwhy);
        return MXS_TEMPFAIL;
    }
    res->mode = mode;
    res->explicit_key = 1;
    res->source = LOOKUP_DNS;
    res->dns_stale = stale;
    return MXS_OK;
}
