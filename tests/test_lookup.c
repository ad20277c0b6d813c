/*
 * test_lookup - per-address keys: their names, and lookups the cache
 * answers alone
 *
 * No Redis: the pool points at a port nobody listens on, so a lookup that
 * needs Redis fails with MXS_TEMPFAIL.  That proves which lookups are
 * answered from the cache (no Redis command) and which must ask.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache.h"
#include "cfg.h"
#include "check.h"
#include "lookup.h"
#include "mxs.h"
#include "rclient.h"

struct key_case {
    const char *name;
    const char *arg;
    int rc;
    const char *want; /* lookup_address_key()'s out */
};

static const struct key_case key_cases[] = {
    {"address key: local part folded, detail and tag gone, domain normalised",
     "<CEO+News+mx-remote@Example.COM.>", MXS_OK, "ceo@example.com"},
    {"address key: IDN domain as A-label",
     "<Kai@B\xc3\x9c"
     "CHER.de>",
     MXS_OK, "kai@xn--bcher-kva.de"},
    {"address key: quoted plain local part is unquoted", "<\"ceo\"@d.test>",
     MXS_OK, "ceo@d.test"},
    {"address key: quoted space has none", "<\"john doe\"@d.test>", MXS_NOMATCH,
     ""},
    {"address key: no domain has none", "<postmaster>", MXS_NOMATCH, ""},
    {"address key: address literal has none", "<bob@[192.0.2.1]>", MXS_NOMATCH,
     ""},
    {"address key: malformed domain is invalid", "<bob@bad..test>", MXS_INVALID,
     ""},
};

/* load - a cfg from text; exits on failure */
static struct cfg *
load(const char *dir, const char *text)
{
    char path[256], *errors = NULL;
    struct cfg *cfg;
    FILE *f;

    snprintf(path, sizeof(path), "%s/mx.conf", dir);
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    cfg = cfg_load(path, &errors);
    if (cfg == NULL) {
        printf("cannot load test config: %s\n", errors);
        exit(2);
    }
    unlink(path);
    return cfg;
}

/* run_key - one lookup_address_key() case */
static void
run_key(const struct cfg *cfg, const struct key_case *c)
{
    struct addr_tags t = cfg_tags(cfg);
    char out[LOOKUP_KEY_MAX + 1], why[256];
    struct addr a;

    if (addr_parse(c->arg, &t, &a, why, sizeof(why)) != MXS_OK) {
        check_str(c->name, "parse", why, "(parses)");
        return;
    }
    check_int(c->name, "status",
              lookup_address_key(cfg, &a, out, sizeof(out), why, sizeof(why)),
              c->rc);
    check_str(c->name, "key", out, c->want);
    addr_clear(&a);
}

/* look - lookup_address() of arg; the status, res filled */
static int
look(const struct cfg *cfg, struct cache *cache, struct rclient *rc,
     const char *arg, struct lookup_result *res)
{
    struct addr_tags t = cfg_tags(cfg);
    char norm[DOMAIN_MAX + 1], why[256];
    struct addr a;
    int rcode;

    if (addr_parse(arg, &t, &a, why, sizeof(why)) != MXS_OK)
        return -1;
    rcode = lookup_address(cfg, cache, rc, &a, 1000, norm, sizeof(norm), res,
                           why, sizeof(why));
    addr_clear(&a);
    return rcode;
}

/* run_cached - lookups answered (or not) by the cache alone */
static void
run_cached(const struct cfg *on, const struct cfg *off, struct rclient *rc)
{
    struct cache *cache = cache_create(100, 60000);
    struct lookup_result res;
    const char *n;

    cache_put(cache, "example.com", ROUTE_LOCAL, 1000, 0);
    cache_put(cache, "ceo@example.com", ROUTE_REMOTE, 1000, 0);
    cache_put(cache, "cfo@example.com", CACHE_ABSENT, 1000, 0);
    cache_put(cache, "remote.test", ROUTE_REMOTE, 1000, 0);
    cache_put(cache, "quiet@remote.test", ROUTE_NONE, 1000, 0);
    cache_put(cache, "nokey.test", CACHE_ABSENT, 1000, 0);
    cache_put(cache, "x@nokey.test", CACHE_ABSENT, 1000, 0);

    n = "cached address key beats the cached domain key";
    check_int(n, "status", look(on, cache, rc, "<CEO+x@Example.com>", &res),
              MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_REMOTE);
    check_int(n, "kind", res.kind, LOOKUP_KIND_ADDRESS);
    check_int(n, "source", res.source, LOOKUP_CACHE);
    check_str(n, "key", res.key, "ceo@example.com");
    check_str(n, "prefix", lookup_key_prefix(on, res.kind),
              "mxswitch:address:");

    n = "cached address none beats a remote domain";
    check_int(n, "status", look(on, cache, rc, "<quiet@remote.test>", &res),
              MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_NONE);
    check_int(n, "explicit", res.explicit_key, 1);
    check_int(n, "kind", res.kind, LOOKUP_KIND_ADDRESS);

    n = "cached absent address key falls to the cached domain";
    check_int(n, "status", look(on, cache, rc, "<cfo@example.com>", &res),
              MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_LOCAL);
    check_int(n, "kind", res.kind, LOOKUP_KIND_DOMAIN);
    check_str(n, "key", res.key, "example.com");
    check_str(n, "prefix", lookup_key_prefix(on, res.kind), "mxswitch:domain:");

    n = "all keys cached absent: the default, no Redis";
    check_int(n, "status", look(on, cache, rc, "<x@nokey.test>", &res), MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_NONE);
    check_int(n, "explicit", res.explicit_key, 0);
    check_int(n, "kind", res.kind, LOOKUP_KIND_NONE);
    check_int(n, "source", res.source, LOOKUP_CACHE);

    n = "uncached address key must ask Redis though the domain is cached";
    check_int(n, "status", look(on, cache, rc, "<bob@example.com>", &res),
              MXS_TEMPFAIL);

    n = "address keys off: the cached domain answers alone";
    check_int(n, "status", look(off, cache, rc, "<bob@example.com>", &res),
              MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_LOCAL);
    check_int(n, "kind", res.kind, LOOKUP_KIND_DOMAIN);

    n = "address keys off: a cached address entry is not consulted";
    check_int(n, "status", look(off, cache, rc, "<ceo@example.com>", &res),
              MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_LOCAL);

    n = "a local part with no address key uses the cached domain alone";
    check_int(n, "status",
              look(on, cache, rc, "<\"john doe\"@example.com>", &res), MXS_OK);
    check_int(n, "mode", res.mode, ROUTE_LOCAL);
    cache_free(cache);
}

int
main(void)
{
    char dir[] = "/tmp/test_lookup.XXXXXX";
    struct rclient_conf rconf = {0};
    struct cfg *on, *off;
    struct rclient *rc;
    size_t i;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    on = load(dir, "routing: { address_prefix = \"mxswitch:address:\"; };\n");
    off = load(dir, "routing: { prefix = \"mxswitch:domain:\"; };\n");
    rmdir(dir);
    /* Port 1 on loopback: refused at once, so any Redis use fails. */
    rconf.server.host = "127.0.0.1";
    rconf.server.port = 1;
    rconf.server.timeout_ms = 200;
    rconf.connections = 1;
    rc = rclient_create(&rconf);
    for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++)
        run_key(on, &key_cases[i]);
    {
        struct addr a;
        char out[LOOKUP_KEY_MAX + 1], why[256];
        struct addr_tags t = cfg_tags(off);

        addr_parse("<ceo@example.com>", &t, &a, why, sizeof(why));
        check_int(
            "address keys off: no address key", "status",
            lookup_address_key(off, &a, out, sizeof(out), why, sizeof(why)),
            MXS_NOMATCH);
        check_str("address keys off: no address key", "why", why,
                  "routing.address_prefix is not set");
        addr_clear(&a);
    }
    run_cached(on, off, rc);
    rclient_free(rc);
    cfg_free(on);
    cfg_free(off);
    return check_done("test_lookup");
}
