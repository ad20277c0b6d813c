/*
 * test_cfg - configuration files, good and bad
 *
 * Each case writes a file and compares cfg_load()'s verdict; for a bad
 * file the whole error text is compared, so every message names the file,
 * the line and the setting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "check.h"
#include "mxs.h"

struct cfg_case {
    const char *name;
    const char *text;
    const char *errors; /* NULL: valid; "@" stands for the file name */
};

static const struct cfg_case cases[] = {
    {"an empty file gives the defaults", "", NULL},
    {"the documented example is valid",
     "milter: { socket = \"inet:8891@127.0.0.1\"; };\n"
     "redis: { host = \"127.0.0.1\"; port = 6379; };\n"
     "routing: { prefix = \"mxswitch:domain:\"; default = \"none\";\n"
     "  on_error = \"tempfail\"; subdomains = true; delimiter = \"+\";\n"
     "  };\n"
     "cache: { ttl = 30; max_entries = 100000; };\n",
     NULL},
    {"unix socket, unix redis and ACL user are valid",
     "milter: { socket = \"unix:/run/mxswitch/mxswitch.sock\"; };\n"
     "redis: { unix = \"/run/redis.sock\"; username = \"mx\";\n"
     "  password = \"s3cret\"; db = 2; timeout_ms = 100; };\n",
     NULL},
    {"an unknown group is an error", "milterr: { socket = \"x\"; };\n",
     "@:1: milterr: unknown setting\n"},
    {"an unknown setting is an error",
     "routing: {\n  defualt = \"none\";\n};\n",
     "@:2: routing.defualt: unknown setting\n"},
    {"a wrong type is an error", "redis: { port = \"6379\"; };\n",
     "@:1: redis.port: expected an integer, got a string\n"},
    {"a float is not an integer", "cache: { ttl = 1.5; };\n",
     "@:1: cache.ttl: expected an integer, got a float\n"},
    {"a string is not a boolean", "routing: { subdomains = \"yes\"; };\n",
     "@:1: routing.subdomains: expected a boolean, got a string\n"},
    {"out of range is an error", "redis: { port = 70000; };\n",
     "@:1: redis.port: 70000 is out of range (1-65535)\n"},
    {"negative ttl is an error", "cache: { ttl = -1; };\n",
     "@:1: cache.ttl: -1 is out of range (0-86400)\n"},
    {"a 64-bit integer is range checked",
     "cache: { max_entries = 5000000000L; };\n",
     "@:1: cache.max_entries: 5000000000 is out of range (0-10000000)\n"},
    {"an unknown mode is an error", "routing: { default = \"primary\"; };\n",
     "@:1: routing.default: \"primary\" is not one of none, local, remote, "
     "backup, auto\n"},
    {"an unknown on_error is an error",
     "routing: { on_error = \"accept\"; };\n",
     "@:1: routing.on_error: \"accept\" is not one of tempfail, default\n"},
    {"a bad socket is an error", "milter: { socket = \"8891\"; };\n",
     "@:1: milter.socket: \"8891\": expected unix:/path, inet:PORT@HOST or "
     "inet6:PORT@HOST\n"},
    {"a bad port in the socket is an error",
     "milter: { socket = \"inet:0@127.0.0.1\"; };\n",
     "@:1: milter.socket: \"inet:0@127.0.0.1\": expected inet:PORT@HOST with "
     "PORT 1-65535\n"},
    {"a relative unix socket is an error",
     "milter: { socket = \"unix:mx.sock\"; };\n",
     "@:1: milter.socket: \"unix:mx.sock\": unix socket path must be "
     "absolute\n"},
    {"a two-byte delimiter is an error", "routing: { delimiter = \"++\"; };\n",
     "@:1: routing.delimiter: \"++\": must be one of + - _ =\n"},
    {"an empty prefix is an error", "routing: { prefix = \"\"; };\n",
     "@:1: routing.prefix: \"\": must be 1-200 bytes\n"},
    {"unix and host together are an error",
     "redis: {\n host = \"127.0.0.1\";\n unix = \"/run/r.sock\";\n};\n",
     "@:3: redis.unix: set either redis.unix or redis.host/port\n"},
    {"a username needs a password", "redis: { username = \"mx\"; };\n",
     "@:1: redis.username: needs redis.password\n"},
    {"a setting outside a group is an error", "ttl = 5;\n",
     "@:1: ttl: unknown setting\n"},
    {"a known group that is not a group is an error", "cache = 5;\n",
     "@:1: cache: expected a group { ... }\n"},
    {"every error is reported, not just the first",
     "redis: { port = 0; db = -1; };\ncache: { ttl = \"x\"; };\n",
     "@:1: redis.port: 0 is out of range (1-65535)\n"
     "@:1: redis.db: -1 is out of range (0-65535)\n"
     "@:2: cache.ttl: expected an integer, got a string\n"},
    {"a syntax error names its line", "redis: {\n port = = 6379;\n};\n",
     "@:2: syntax error: syntax error\n"},
    {"a wrong-typed password is reported without its value",
     "redis: { password = 123456; };\n",
     "@:1: redis.password: expected a string, got an integer\n"},
    {"a duplicate setting is an error", "cache: { ttl = 1; ttl = 2; };\n",
     "@:1: syntax error: duplicate setting name\n"},
    {"a socketmap on a TCP port with every setting is valid",
     "socketmap: { socket = \"inet:8893@127.0.0.1\";\n"
     "  max_clients = 4096; helo_name = \"Mx-1.example.COM\"; };\n",
     NULL},
    {"a probe name with a bad byte is an error",
     "socketmap: { helo_name = \"mx_1.example.com\"; };\n",
     "@:1: socketmap.helo_name: \"mx_1.example.com\": expected a host name "
     "such as \"mx.example.com\"\n"},
    {"a probe name with an empty label is an error",
     "socketmap: { helo_name = \"mx..example.com\"; };\n",
     "@:1: socketmap.helo_name: \"mx..example.com\": expected a host name "
     "such as \"mx.example.com\"\n"},
    {"a probe name label may not end in '-'",
     "socketmap: { helo_name = \"mx-.example.com\"; };\n",
     "@:1: socketmap.helo_name: \"mx-.example.com\": expected a host name "
     "such as \"mx.example.com\"\n"},
    {"a probe name label of 64 bytes is an error",
     "socketmap: { helo_name = \"a234567890123456789012345678901234567890"
     "123456789012345678901234.example\"; };\n",
     "@:1: socketmap.helo_name: \"a234567890123456789012345678901234567890"
     "123456789012345678901234.example\": expected a host name such as "
     "\"mx.example.com\"\n"},
    {"a probe name label of 63 bytes is valid",
     "socketmap: { helo_name = \"a234567890123456789012345678901234567890"
     "12345678901234567890123.example\"; };\n",
     NULL},
    {"a socketmap on a unix socket is valid",
     "socketmap: { socket = \"unix:/run/mxswitch/socketmap.sock\"; };\n", NULL},
    {"an empty socketmap socket turns it off",
     "socketmap: { socket = \"\"; };\n", NULL},
    {"a bad socketmap socket is an error",
     "socketmap: { socket = \"127.0.0.1:8893\"; };\n",
     "@:1: socketmap.socket: \"127.0.0.1:8893\": expected unix:/path, "
     "inet:PORT@HOST or inet6:PORT@HOST\n"},
    {"a relative socketmap unix socket is an error",
     "socketmap: { socket = \"unix:smap.sock\"; };\n",
     "@:1: socketmap.socket: \"unix:smap.sock\": unix socket path must be "
     "absolute\n"},
    {"the socketmap cannot share the milter socket",
     "milter: { socket = \"inet:8891@127.0.0.1\"; };\n"
     "socketmap: {\n  socket = \"inet:8891@127.0.0.1\";\n};\n",
     "@:3: socketmap.socket: must differ from milter.socket\n"},
    {"no socketmap clients is an error", "socketmap: { max_clients = 0; };\n",
     "@:1: socketmap.max_clients: 0 is out of range (1-4096)\n"},
    {"too many socketmap clients is an error",
     "socketmap: { max_clients = 4097; };\n",
     "@:1: socketmap.max_clients: 4097 is out of range (1-4096)\n"},
    {"endpoint lists and a Sentinel group are valid",
     "redis: { servers = (\"10.0.0.1:6379\", \"[2001:db8::1]:6380\",\n"
     "  \"unix:/run/redis.sock\"); };\n",
     NULL},
    {"a Sentinel group is valid",
     "redis: { sentinel: { master = \"mymaster\";\n"
     "  servers = [\"127.0.0.1:26379\"]; prefer_replica = true; }; };\n",
     NULL},
    {"bad endpoints are named one by one",
     "redis: {\n servers = (\"a\", \"b:0\", \"unix:x\", 5, "
     "\"::1:6379\");\n};\n",
     "@:2: redis.servers: \"a\": expected HOST:PORT, [IPV6]:PORT or "
     "unix:/path\n"
     "@:2: redis.servers: \"b:0\": port must be 1-65535\n"
     "@:2: redis.servers: \"unix:x\": unix socket path must be absolute\n"
     "@:2: redis.servers: item 4: expected a string, got an integer\n"
     "@:2: redis.servers: \"::1:6379\": expected HOST:PORT, [IPV6]:PORT or "
     "unix:/path\n"},
    {"a list must be a list", "redis: { servers = \"a:1\"; };\n",
     "@:1: redis.servers: expected a list or array, got a string\n"},
    {"servers and host together are an error",
     "redis: {\n host = \"x\";\n servers = (\"a:1\");\n};\n",
     "@:3: redis.servers: set either redis.servers or redis.host/port/unix\n"},
    {"a Sentinel master needs Sentinels",
     "redis: { sentinel: {\n master = \"m\"; }; };\n",
     "@:2: redis.sentinel.master: needs redis.sentinel.servers\n"},
    {"Sentinels need a master name",
     "redis: { sentinel: {\n servers = (\"a:1\"); }; };\n",
     "@:2: redis.sentinel.servers: needs redis.sentinel.master\n"},
    {"Sentinel and a fixed server are an error",
     "redis: { port = 1; sentinel: {\n master = \"m\"; servers = (\"a:1\");"
     " }; };\n",
     "@:2: redis.sentinel: the Sentinels name the master; drop "
     "redis.servers/host/port/unix\n"},
    {"an unknown subgroup setting is an error",
     "redis: { sentinel: { master = \"m\"; servers = (\"a:1\");\n"
     " mastr = 1; }; };\n",
     "@:2: redis.sentinel.mastr: unknown setting\n"},
    {"an unknown subgroup is an error", "redis: { replica: { a = 1; }; };\n",
     "@:1: redis.replica: unknown setting\n"},
    {"a subgroup that is not a group is an error",
     "redis: { sentinel = 1; };\n",
     "@:1: redis.sentinel: expected a group { ... }\n"},
    {"local addresses take IPv4, IPv6 and CIDR",
     "routing: { local_addresses = (\"192.0.2.1\", \"10.0.0.0/8\",\n"
     "  \"2001:db8::/32\", \"::1\"); };\n",
     NULL},
    {"bad local addresses are named",
     "routing: { local_addresses = (\"1.2.3.4/33\", \"::1/129\", \"1.2.3\",\n"
     "  \"10.0.0.0/\", \"host.example\", \"10.0.0.0/+8\"); };\n",
     "@:1: routing.local_addresses: \"1.2.3.4/33\": prefix length must be "
     "0-32\n"
     "@:1: routing.local_addresses: \"::1/129\": prefix length must be "
     "0-128\n"
     "@:1: routing.local_addresses: \"1.2.3\": expected an IP address or "
     "ADDRESS/LEN\n"
     "@:1: routing.local_addresses: \"10.0.0.0/\": prefix length must be "
     "0-32\n"
     "@:1: routing.local_addresses: \"host.example\": expected an IP "
     "address or ADDRESS/LEN\n"
     "@:1: routing.local_addresses: \"10.0.0.0/+8\": prefix length must be "
     "0-32\n"},
    {"the address prefix cannot overlap the domain prefix",
     "routing: { address_prefix = \"mxswitch:\"; };\n",
     "@:1: routing.address_prefix: must not start with routing.prefix or be "
     "the start of it\n"},
    {"a stats file must be absolute",
     "stats: { prometheus_file = \"mx.prom\"; };\n",
     "@:1: stats.prometheus_file: \"mx.prom\": must be an absolute path\n"},
};

/* expand - the expected error text with the file name put in */
static char *
expand(const char *tmpl, const char *path)
{
    size_t len = strlen(tmpl) * (strlen(path) + 1) + 1;
    char *out = malloc(len);
    char *o = out;

    for (; *tmpl; tmpl++) {
        if (*tmpl == '@' && (tmpl[1] == ':')) {
            strcpy(o, path);
            o += strlen(path);
        } else {
            *o++ = *tmpl;
        }
    }
    *o = '\0';
    return out;
}

/* write_file - replace path's content */
static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* run_case - one table row */
static void
run_case(const struct cfg_case *c, const char *path)
{
    char *errors = NULL;
    struct cfg *cfg;

    write_file(path, c->text);
    cfg = cfg_load(path, &errors);
    if (c->errors == NULL) {
        check_str(c->name, "errors", errors, NULL);
        check_int(c->name, "loaded", cfg != NULL, 1);
    } else {
        char *want = expand(c->errors, path);

        check_str(c->name, "errors", errors, want);
        check_int(c->name, "rejected", cfg == NULL, 1);
        free(want);
    }
    cfg_free(cfg);
    free(errors);
}

/* run_values - a valid file's values reach struct cfg */
static void
run_values(const char *path)
{
    const char *name = "values are read and defaults filled in";
    char *errors = NULL, *dump;
    struct cfg *cfg;

    write_file(path, "redis: { port = 6390; password = \"s3cret\"; };\n"
                     "routing: { default = \"REMOTE\"; subdomains = false;\n"
                     "  on_error = \"default\"; };\n");
    cfg = cfg_load(path, &errors);
    if (cfg == NULL) {
        check_str(name, "errors", errors, NULL);
        free(errors);
        return;
    }
    check_int(name, "redis.port", cfg->redis_port, 6390);
    check_str(name, "redis.host default", cfg->redis_host, "127.0.0.1");
    check_int(name, "routing.default", cfg->default_mode, ROUTE_REMOTE);
    check_int(name, "routing.on_error", cfg->on_error, CFG_ON_ERROR_DEFAULT);
    check_int(name, "routing.subdomains", cfg->subdomains, 0);
    check_str(name, "routing.prefix default", cfg->prefix, "mxswitch:domain:");
    check_int(name, "cache.ttl default", cfg->cache_ttl, 30);
    check_str(name, "socketmap.socket default (off)", cfg->smap_socket, "");
    check_str(name, "no removed setting, no warning", cfg->warnings, NULL);
    check_int(name, "socketmap.max_clients default", cfg->smap_max_clients,
              256);
    check_str(name, "socketmap.helo_name default (the host's)",
              cfg->smap_helo_name, "");
    dump = cfg_dump(cfg);
    check_int("the dump never shows the password", "secret shown",
              strstr(dump, "s3cret") != NULL, 0);
    check_int("the dump shows every group", "cache group",
              strstr(dump, "cache: {\n    ttl = 30;") != NULL, 1);
    check_int("the dump shows every group", "socketmap group",
              strstr(dump, "socketmap: {\n    socket = \"\";\n"
                           "    max_clients = 256;\n"
                           "    helo_name = \"\";\n};\n") != NULL,
              1);
    free(dump);
    cfg_free(cfg);
}

/* run_lists - lists and subgroups reach struct cfg and the dump */
static void
run_lists(const char *path)
{
    const char *name = "lists and subgroups are read";
    char *errors = NULL, *dump;
    struct cfg *cfg;

    write_file(path, "redis: { sentinel: { master = \"mymaster\";\n"
                     "  servers = (\"127.0.0.1:26379\", \"[::1]:26380\");\n"
                     "  password = \"t0p\"; }; };\n"
                     "routing: { local_addresses = [\"10.0.0.0/8\"];\n"
                     "  default = \"Auto\"; };\n");
    cfg = cfg_load(path, &errors);
    if (cfg == NULL) {
        check_str(name, "errors", errors, NULL);
        free(errors);
        return;
    }
    check_int(name, "sentinel servers", (int)cfg->sentinel_servers.n, 2);
    check_str(name, "second sentinel", cfg->sentinel_servers.v[1],
              "[::1]:26380");
    check_str(name, "list ends with NULL", cfg->sentinel_servers.v[2], NULL);
    check_int(name, "redis.servers default empty", (int)cfg->redis_servers.n,
              0);
    check_str(name, "local address", cfg->local_addresses.v[0], "10.0.0.0/8");
    check_int(name, "routing.default auto", cfg->default_mode, ROUTE_AUTO);
    dump = cfg_dump(cfg);
    check_int("the dump nests subgroups", "sentinel",
              strstr(dump, "    sentinel: {\n        master = \"mymaster\";\n"
                           "        servers = ( \"127.0.0.1:26379\", "
                           "\"[::1]:26380\" );\n"
                           "        password = \"(set)\";\n") != NULL,
              1);
    check_int("the dump closes subgroups", "close",
              strstr(dump, "    };\n};\nrouting: {\n") != NULL, 1);
    check_int("the dump never shows the Sentinel password", "secret shown",
              strstr(dump, "t0p") != NULL, 0);
    free(dump);
    cfg_free(cfg);
}

/* load_text - a config from text, or NULL (the case fails) */
static struct cfg *
load_text(const char *name, const char *path, const char *text)
{
    char *errors = NULL;
    struct cfg *cfg;

    write_file(path, text);
    cfg = cfg_load(path, &errors);
    check_str(name, "errors", errors, NULL);
    free(errors);
    return cfg;
}

/* run_removed - settings of earlier versions load, with a warning each */
static void
run_removed(const char *path)
{
    const char *name = "removed settings load with a warning each";
    char want[1024];
    struct cfg *cfg;

    cfg = load_text(name, path,
                    "redis: { fetch_at = \"eom\"; };\n"
                    "routing: {\n  remote_tag = \"x\";\n"
                    "  local_tag = \"Bad_Tag\"; };\n"
                    "milter: { max_recipients = 5; };\n"
                    "socketmap: { name = \"mxswitch\"; };\n");
    if (cfg == NULL)
        return;
    snprintf(want, sizeof(want),
             "%s:1: redis.fetch_at: removed setting, ignored: the mode is "
             "looked up at RCPT and when the MTA delivers\n"
             "%s:3: routing.remote_tag: removed setting: recipients are no "
             "longer tagged; \"x\" is still taken off the addresses of mail "
             "an earlier version queued\n"
             "%s:4: routing.local_tag: removed setting, ignored: recipients "
             "are no longer tagged (a tag is 1 to 32 lower-case letters, "
             "digits and '-')\n"
             "%s:5: milter.max_recipients: removed setting, ignored: the "
             "milter keeps no recipients: the MTA's own limit applies\n"
             "%s:6: socketmap.name: removed setting, ignored: the maps are "
             "named transport, valias, rcpt and mode\n",
             path, path, path, path, path);
    check_str(name, "warnings", cfg->warnings, want);
    check_str(name, "a valid old tag is kept", cfg->queued_remote_tag, "x");
    check_str(name, "an invalid one leaves the default", cfg->queued_local_tag,
              ADDR_LEGACY_LOCAL);
    cfg_free(cfg);

    name = "an old tag equal to the other is ignored";
    cfg = load_text(name, path, "routing: { remote_tag = \"mx-local\"; };\n");
    if (cfg == NULL)
        return;
    snprintf(want, sizeof(want),
             "%s:1: routing.remote_tag: removed setting, ignored: recipients "
             "are no longer tagged (the other tag is \"mx-local\" too)\n",
             path);
    check_str(name, "warnings", cfg->warnings, want);
    check_str(name, "the default stays", cfg->queued_remote_tag,
              ADDR_LEGACY_REMOTE);
    cfg_free(cfg);
}

struct xport_case {
    const char *name;
    const char *text; /* NULL: no file */
    int rc;
    const char *local, *remote, *why;
};

static const struct xport_case xport_cases[] = {
    {"no transports file: remote smtp:, local unknown", NULL, MXS_NOMATCH, "",
     "smtp:", NULL},
    {"both transports are read",
     "# written by the setup script\nlocal = \"lmtp:unix:private/dovecot\";\n"
     "remote = \"smtp-out:\";\n",
     MXS_OK, "lmtp:unix:private/dovecot", "smtp-out:", NULL},
    {"a relayhost next hop is kept", "remote = \"smtp:[relay.test]:587\";\n",
     MXS_OK, "", "smtp:[relay.test]:587", NULL},
    {"a transport without a colon is refused", "local = \"virtual\";\n",
     MXS_INVALID, NULL, NULL,
     "local: \"virtual\" is not a transport (name:nexthop)"},
    {"a transport with a space is refused", "remote = \"smtp: x\";\n",
     MXS_INVALID, NULL, NULL,
     "remote: \"smtp: x\" is not a transport (name:nexthop)"},
};

/* run_transports - the file the Postfix setup script writes */
static void
run_transports(const char *dir)
{
    struct cfg_transports t;
    char path[128], why[256];
    size_t i;

    snprintf(path, sizeof(path), "%s/%s", dir, CFG_TRANSPORTS_FILE);
    for (i = 0; i < sizeof(xport_cases) / sizeof(xport_cases[0]); i++) {
        const struct xport_case *c = &xport_cases[i];
        int rc;

        unlink(path);
        if (c->text != NULL)
            write_file(path, c->text);
        why[0] = '\0';
        rc = cfg_transports_load(path, &t, why, sizeof(why));
        check_int(c->name, "status", rc, c->rc);
        if (c->local != NULL)
            check_str(c->name, "local", t.local, c->local);
        if (c->remote != NULL)
            check_str(c->name, "remote", t.remote, c->remote);
        if (c->why != NULL)
            check_str(c->name, "why", why, c->why);
    }
    unlink(path);
}

struct changed_case {
    const char *name;
    const char *a, *b;
    const char *want; /* cfg_changed(a, b) */
};

static const struct changed_case changed_cases[] = {
    {"the same settings: nothing changed", "routing: { prefix = \"x:\"; };\n",
     "routing: { prefix = \"x:\"; };\n", ""},
    {"a setting left out equals its default", "cache: { ttl = 30; };\n", "",
     ""},
    {"changed settings are named in table order",
     "routing: { default = \"none\"; };\nmilter: { timeout = 5; };\n",
     "milter: { timeout = 6; };\nrouting: { default = \"remote\"; };\n",
     "milter.timeout\nrouting.default\n"},
    {"a changed secret is named, never shown",
     "redis: { password = \"old-s3cret\"; };\n",
     "redis: { password = \"new-s3cret\"; };\n", "redis.password\n"},
    {"lists differ by an item or by their length",
     "redis: { servers = (\"a:1\", \"b:2\"); };\n"
     "routing: { local_addresses = (\"10.0.0.1\"); };\n",
     "redis: { servers = (\"a:1\", \"b:3\"); };\n"
     "routing: { local_addresses = (\"10.0.0.1\", \"10.0.0.2\"); };\n",
     "redis.servers\nrouting.local_addresses\n"},
};

/* run_changed - cfg_changed() names what a reload would change */
static void
run_changed(const char *path)
{
    size_t i;

    for (i = 0; i < sizeof(changed_cases) / sizeof(changed_cases[0]); i++) {
        const struct changed_case *c = &changed_cases[i];
        struct cfg *a = load_text(c->name, path, c->a);
        struct cfg *b = load_text(c->name, path, c->b);
        char *got;

        if (a == NULL || b == NULL) {
            cfg_free(a);
            cfg_free(b);
            continue;
        }
        got = cfg_changed(a, b);
        check_str(c->name, "changed", got, c->want);
        free(got);
        cfg_free(a);
        cfg_free(b);
    }
}

int
main(void)
{
    char dir[] = "/tmp/test_cfg.XXXXXX";
    char path[64], *errors = NULL;
    size_t i;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/mxswitch.conf", dir);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i], path);
    run_values(path);
    run_lists(path);
    run_changed(path);
    run_removed(path);
    {
        struct cfg *cfg =
            load_text("the transports file is beside the config", path, "");
        char xpath[128], want[128];

        if (cfg != NULL) {
            cfg_transports_path(cfg, xpath, sizeof(xpath));
            snprintf(want, sizeof(want), "%s/postfix-transports", dir);
            check_str("the transports file is beside the config", "path", xpath,
                      want);
            cfg_free(cfg);
        }
    }
    run_transports(dir);
    unlink(path);
    check_int("a missing file is an error", "loaded",
              cfg_load(path, &errors) == NULL, 1);
    check_int("a missing file says why", "message",
              errors && strstr(errors, "cannot read: No such file") != NULL, 1);
    free(errors);
    rmdir(dir);
    return check_done("test_cfg");
}
