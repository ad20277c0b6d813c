/*
 * cfg.c - configuration table, parser and checks; see cfg.h
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "mxs.h"

enum key_type { K_STR, K_INT, K_BOOL, K_ENUM, K_LIST };

typedef int (*check_fn)(const char *val, char *why, size_t whylen);

struct key {
    const char *group; /* "redis", or "redis.sentinel" for a subgroup */
    const char *name;
    enum key_type type;
    size_t off;                 /* where the value goes in struct cfg */
    const char *def_str;        /* K_STR, K_ENUM default */
    long long def_int;          /* K_INT, K_BOOL default */
    long long min, max;         /* K_INT range */
    const char *const *choices; /* K_ENUM words, index is the value */
    check_fn check;             /* K_STR, K_LIST (each item) check or NULL */
    int secret;                 /* never printed */
};

static int check_socket(const char *, char *, size_t);
static int check_socket_or_off(const char *, char *, size_t);
static int check_nonempty(const char *, char *, size_t);
static int check_abspath(const char *, char *, size_t);
static int check_prefix(const char *, char *, size_t);
static int check_delimiter(const char *, char *, size_t);
static int check_mode(const char *, char *, size_t);
static int check_prefix_or_off(const char *, char *, size_t);
static int check_hostname_or_off(const char *, char *, size_t);
static void list_set(struct cfg_list *, const char *const *, size_t);

/* In the order of enum route_mode. */
static const char *const modes[] = {"none",   "local", "remote",
                                    "backup", "auto",  NULL};
static const char *const on_error[] = {"tempfail", "default", NULL};

#define OFF(f) offsetof(struct cfg, f)

/* The table of settings: the only place that names them. */
static const struct key keys[] = {
    {"milter", "socket", K_STR, OFF(milter_socket), "inet:8891@127.0.0.1", 0, 0,
     0, NULL, check_socket, 0},
    {"milter", "timeout", K_INT, OFF(milter_timeout), NULL, 7210, 1, 86400,
     NULL, NULL, 0},
    {"milter", "user", K_STR, OFF(milter_user), "", 0, 0, 0, NULL, NULL, 0},
    {"milter", "group", K_STR, OFF(milter_group), "", 0, 0, 0, NULL, NULL, 0},
    {"milter", "allow_root", K_BOOL, OFF(milter_allow_root), NULL, 0, 0, 1,
     NULL, NULL, 0},
    {"milter", "socket_mode", K_STR, OFF(milter_socket_mode), "0660", 0, 0, 0,
     NULL, check_mode, 0},
    {"milter", "pid_file", K_STR, OFF(milter_pid_file), "", 0, 0, 0, NULL,
     check_abspath, 0},
    {"redis", "host", K_STR, OFF(redis_host), "127.0.0.1", 0, 0, 0, NULL,
     check_nonempty, 0},
    {"redis", "port", K_INT, OFF(redis_port), NULL, 6379, 1, 65535, NULL, NULL,
     0},
    {"redis", "unix", K_STR, OFF(redis_unix), "", 0, 0, 0, NULL, check_abspath,
     0},
    {"redis", "username", K_STR, OFF(redis_username), "", 0, 0, 0, NULL, NULL,
     0},
    {"redis", "password", K_STR, OFF(redis_password), "", 0, 0, 0, NULL, NULL,
     1},
    {"redis", "db", K_INT, OFF(redis_db), NULL, 0, 0, 65535, NULL, NULL, 0},
    {"redis", "timeout_ms", K_INT, OFF(redis_timeout_ms), NULL, 500, 1, 60000,
     NULL, NULL, 0},
    {"redis", "connections", K_INT, OFF(redis_connections), NULL, 8, 1, 1024,
     NULL, NULL, 0},
    {"redis", "servers", K_LIST, OFF(redis_servers), NULL, 0, 0, 0, NULL,
     cfg_check_endpoint, 0},
    {"redis.sentinel", "master", K_STR, OFF(sentinel_master), "", 0, 0, 0, NULL,
     NULL, 0},
    {"redis.sentinel", "servers", K_LIST, OFF(sentinel_servers), NULL, 0, 0, 0,
     NULL, cfg_check_endpoint, 0},
    {"redis.sentinel", "password", K_STR, OFF(sentinel_password), "", 0, 0, 0,
     NULL, NULL, 1},
    {"redis.sentinel", "prefer_replica", K_BOOL, OFF(sentinel_prefer_replica),
     NULL, 0, 0, 1, NULL, NULL, 0},
    {"routing", "prefix", K_STR, OFF(prefix), "mxswitch:domain:", 0, 0, 0, NULL,
     check_prefix, 0},
    {"routing", "default", K_ENUM, OFF(default_mode), "none", 0, 0, 0, modes,
     NULL, 0},
    {"routing", "on_error", K_ENUM, OFF(on_error), "tempfail", 0, 0, 0,
     on_error, NULL, 0},
    {"routing", "subdomains", K_BOOL, OFF(subdomains), NULL, 1, 0, 1, NULL,
     NULL, 0},
    {"routing", "delimiter", K_STR, OFF(delimiter), "+", 0, 0, 0, NULL,
     check_delimiter, 0},
    {"routing", "address_prefix", K_STR, OFF(address_prefix), "", 0, 0, 0, NULL,
     check_prefix_or_off, 0},
    {"routing", "dry_run", K_BOOL, OFF(dry_run), NULL, 0, 0, 1, NULL, NULL, 0},
    {"routing", "local_addresses", K_LIST, OFF(local_addresses), NULL, 0, 0, 0,
     NULL, cfg_check_cidr, 0},
    {"cache", "ttl", K_INT, OFF(cache_ttl), NULL, 30, 0, 86400, NULL, NULL, 0},
    {"cache", "max_entries", K_INT, OFF(cache_max_entries), NULL, 100000, 0,
     10000000, NULL, NULL, 0},
    {"cache", "stale_ttl", K_INT, OFF(cache_stale_ttl), NULL, 0, 0, 604800,
     NULL, NULL, 0},
    {"socketmap", "socket", K_STR, OFF(smap_socket), "", 0, 0, 0, NULL,
     check_socket_or_off, 0},
    {"socketmap", "max_clients", K_INT, OFF(smap_max_clients), NULL, 256, 1,
     4096, NULL, NULL, 0},
    {"socketmap", "helo_name", K_STR, OFF(smap_helo_name), "", 0, 0, 0, NULL,
     check_hostname_or_off, 0},
    {"stats", "prometheus_file", K_STR, OFF(stats_prometheus_file), "", 0, 0, 0,
     NULL, check_abspath, 0},
    {"stats", "interval", K_INT, OFF(stats_interval), NULL, 15, 1, 3600, NULL,
     NULL, 0},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Settings of earlier versions: a file that names one still loads, with a
 * warning each, so that an upgrade never stops the daemon. */
static const struct removed {
    const char *group, *name, *why;
    int tag; /* a tag still taken off queued addresses: removed_setting() */
} removed[] = {
    {"redis", "fetch_at",
     "the mode is looked up at RCPT and when the MTA delivers", 0},
    {"routing", "remote_tag", "recipients are no longer tagged", 1},
    {"routing", "local_tag", "recipients are no longer tagged", 1},
    {"milter", "max_recipients",
     "the milter keeps no recipients: the MTA's own limit applies", 0},
    {"socketmap", "name", "the maps are named transport, valias, rcpt and mode",
     0},
};

struct errbuf {
    char *text;
    size_t len;
};

/* adderr - append "file:line: message" to the error list */
static void adderr(struct errbuf *e, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
adderr(struct errbuf *e, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    size_t need;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    need = strlen(file) + strlen(msg) + 32;
    e->text = xrealloc(e->text, e->len + need);
    e->len += (size_t)snprintf(e->text + e->len, need, "%s:%d: %s\n", file,
                               line, msg);
}

/*
 * cfg_unix_path - the file of a unix: or local: socket spec, or NULL
 *
 * The result points into spec.  Every reader of a socket spec uses this.
 */
const char *
cfg_unix_path(const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return spec + 5;
    if (strncmp(spec, "local:", 6) == 0)
        return spec + 6;
    return NULL;
}

/* check_socket - a socket spec libmilter understands */
static int
check_socket(const char *v, char *why, size_t whylen)
{
    const char *path;
    const char *at;
    char *end;
    long port;

    if ((path = cfg_unix_path(v)) != NULL) {
        if (path[0] != '/') {
            mxs_why(why, whylen, "unix socket path must be absolute");
            return MXS_INVALID;
        }
        return MXS_OK;
    }
    if (strncmp(v, "inet:", 5) != 0 && strncmp(v, "inet6:", 6) != 0) {
        mxs_why(why, whylen,
                "expected unix:/path, inet:PORT@HOST or inet6:PORT@HOST");
        return MXS_INVALID;
    }
    errno = 0;
    port = strtol(strchr(v, ':') + 1, &end, 10);
    at = end;
    if (errno != 0 || port < 1 || port > 65535 || (*at != '\0' && *at != '@') ||
        (*at == '@' && at[1] == '\0')) {
        mxs_why(why, whylen, "expected inet:PORT@HOST with PORT 1-65535");
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* check_socket_or_off - empty (the server is off) or a socket spec */
static int
check_socket_or_off(const char *v, char *why, size_t whylen)
{
    return v[0] == '\0' ? MXS_OK : check_socket(v, why, whylen);
}

/* check_nonempty - any text but the empty string */
static int
check_nonempty(const char *v, char *why, size_t whylen)
{
    if (v[0] == '\0') {
        mxs_why(why, whylen, "must not be empty");
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* check_mode - a file mode in octal, e.g. "0660" */
static int
check_mode(const char *v, char *why, size_t whylen)
{
    size_t len = strlen(v);

    if (len < 3 || len > 4 || strspn(v, "01234567") != len) {
        mxs_why(why, whylen, "expected an octal mode such as \"0660\"");
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* check_abspath - empty (unset) or an absolute path */
static int
check_abspath(const char *v, char *why, size_t whylen)
{
    if (v[0] != '\0' && v[0] != '/') {
        mxs_why(why, whylen, "must be an absolute path");
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* check_prefix - a key prefix: printable, no blanks, not too long */
static int
check_prefix(const char *v, char *why, size_t whylen)
{
    size_t i, len = strlen(v);

    if (len == 0 || len > 200) {
        mxs_why(why, whylen, "must be 1-200 bytes");
        return MXS_INVALID;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f) {
            mxs_why(why, whylen, "blanks and control bytes not allowed");
            return MXS_INVALID;
        }
    }
    return MXS_OK;
}

/* check_prefix_or_off - empty (the feature is off) or a key prefix */
static int
check_prefix_or_off(const char *v, char *why, size_t whylen)
{
    return v[0] == '\0' ? MXS_OK : check_prefix(v, why, whylen);
}

/* check_hostname_or_off - empty (the default) or a host name: labels of
 * 1-63 letters, digits and '-', not beginning or ending with '-', joined
 * by dots, at most 253 bytes */
static int
check_hostname_or_off(const char *v, char *why, size_t whylen)
{
    const char *label = v, *p;

    if (v[0] == '\0')
        return MXS_OK;
    if (strlen(v) > 253)
        goto bad;
    for (p = v;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t n = (size_t)(p - label);

            if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
                goto bad;
            if (*p == '\0')
                return MXS_OK;
            label = p + 1;
        } else if (!(*p == '-' || (*p >= '0' && *p <= '9') ||
                     (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            goto bad;
        }
    }
bad:
    mxs_why(why, whylen, "expected a host name such as \"mx.example.com\"");
    return MXS_INVALID;
}

/*
 * cfg_parse_cidr - read "ADDRESS" or "ADDRESS/LEN", IPv4 or IPv6
 *
 * The one reader of routing.local_addresses entries.  *family gets
 * AF_INET or AF_INET6, addr (16 bytes) the address in network order,
 * *bits the prefix length (32 or 128 for a bare address).
 */
int
cfg_parse_cidr(const char *v, int *family, unsigned char *addr, int *bits,
               char *why, size_t whylen)
{
    const char *slash = strchr(v, '/');
    size_t alen = slash ? (size_t)(slash - v) : strlen(v);
    char host[INET6_ADDRSTRLEN];
    int max;

    memset(addr, 0, 16);
    if (alen == 0 || alen >= sizeof(host)) {
        mxs_why(why, whylen, "expected an IP address or ADDRESS/LEN");
        return MXS_INVALID;
    }
    memcpy(host, v, alen);
    host[alen] = '\0';
    *family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(*family, host, addr) != 1) {
        mxs_why(why, whylen, "expected an IP address or ADDRESS/LEN");
        return MXS_INVALID;
    }
    max = *family == AF_INET6 ? 128 : 32;
    *bits = max;
    if (slash != NULL) {
        char *end;
        long len;

        errno = 0;
        len = strtol(slash + 1, &end, 10);
        if (errno != 0 || slash[1] < '0' || slash[1] > '9' || *end != '\0' ||
            len > max) {
            mxs_why(why, whylen, "prefix length must be 0-%d", max);
            return MXS_INVALID;
        }
        *bits = (int)len;
    }
    return MXS_OK;
}

/* cfg_check_cidr - an IPv4 or IPv6 address, optionally with /LEN */
int
cfg_check_cidr(const char *v, char *why, size_t whylen)
{
    unsigned char addr[16];
    int family, bits;

    return cfg_parse_cidr(v, &family, addr, &bits, why, whylen);
}

/* cfg_check_endpoint - "host:port", "[ipv6]:port" or "unix:/path" */
int
cfg_check_endpoint(const char *v, char *why, size_t whylen)
{
    const char *colon;
    char *end;
    long port;

    if (strncmp(v, "unix:", 5) == 0) {
        if (v[5] != '/') {
            mxs_why(why, whylen, "unix socket path must be absolute");
            return MXS_INVALID;
        }
        return MXS_OK;
    }
    if (v[0] == '[') {
        const char *close = strchr(v, ']');

        colon = close != NULL && close[1] == ':' ? close + 1 : NULL;
        if (close == NULL || close == v + 1)
            colon = NULL;
    } else {
        colon = strrchr(v, ':');
        if (colon != NULL && strchr(v, ':') != colon)
            colon = NULL; /* a bare IPv6 address: needs brackets */
    }
    if (colon == NULL || colon == v) {
        mxs_why(why, whylen, "expected HOST:PORT, [IPV6]:PORT or unix:/path");
        return MXS_INVALID;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 ||
        port > 65535) {
        mxs_why(why, whylen, "port must be 1-65535");
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* check_delimiter - one of the recipient delimiters MTAs support */
static int
check_delimiter(const char *v, char *why, size_t whylen)
{
    if (strlen(v) != 1 || strchr("+-_=", v[0]) == NULL) {
        mxs_why(why, whylen, "must be one of + - _ =");
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* check_tag - what the tagging design took as a tag: lower-case letters,
 * digits and '-', 1 to CFG_TAG_MAX bytes */
static int
check_tag(const char *v, char *why, size_t whylen)
{
    size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-");

    if (n == 0 || v[n] != '\0' || n > CFG_TAG_MAX) {
        mxs_why(why, whylen,
                "a tag is 1 to %d lower-case letters, digits and '-'",
                CFG_TAG_MAX);
        return MXS_INVALID;
    }
    return MXS_OK;
}

/*
 * removed_setting - warn of a removed setting r at file:line, named sub
 *
 * A tag of the design that tagged recipients is kept, when it is one, so
 * that mail that design queued loses its tag on delivery.
 */
static void
removed_setting(struct cfg *cfg, const struct removed *r, config_setting_t *s,
                struct errbuf *w, const char *file, int line, const char *sub)
{
    const char *v = config_setting_get_string(s), *other;
    char *keep, why[128];

    if (!r->tag) {
        adderr(w, file, line, "%s: removed setting, ignored: %s", sub, r->why);
        return;
    }
    keep = strcmp(r->name, "remote_tag") == 0 ? cfg->queued_remote_tag
                                              : cfg->queued_local_tag;
    other = keep == cfg->queued_remote_tag ? cfg->queued_local_tag
                                           : cfg->queued_remote_tag;
    why[0] = '\0';
    if (v == NULL)
        mxs_why(why, sizeof(why), "not a string");
    else if (check_tag(v, why, sizeof(why)) == MXS_OK && strcmp(v, other) == 0)
        mxs_why(why, sizeof(why), "the other tag is \"%s\" too", other);
    if (why[0] == '\0') {
        snprintf(keep, CFG_TAG_MAX + 1, "%s", v);
        adderr(w, file, line,
               "%s: removed setting: %s; \"%s\" is still taken off the "
               "addresses of mail an earlier version queued",
               sub, r->why, v);
        return;
    }
    adderr(w, file, line, "%s: removed setting, ignored: %s (%s)", sub, r->why,
           why);
}

/* find_key - the table row for group.name */
static const struct key *
find_key(const char *group, const char *name)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].group, group) == 0 &&
            strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* find_removed - the entry of a removed setting, or NULL */
static const struct removed *
find_removed(const char *group, const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(removed) / sizeof(removed[0]); i++)
        if (strcmp(removed[i].group, group) == 0 &&
            strcmp(removed[i].name, name) == 0)
            return &removed[i];
    return NULL;
}

/* known_group - whether any setting lives in this group */
static int
known_group(const char *group)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].group, group) == 0)
            return 1;
    return 0;
}

/* set_defaults - fill a cfg from the table */
static void
set_defaults(struct cfg *cfg)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        char *base = (char *)cfg + keys[i].off;

        if (keys[i].type == K_STR)
            *(char **)base = xstrdup(keys[i].def_str);
        else if (keys[i].type == K_ENUM)
            *(int *)base = 0; /* the first choice is the default */
        else if (keys[i].type == K_LIST)
            list_set((struct cfg_list *)base, NULL, 0);
        else
            *(int *)base = (int)keys[i].def_int;
    }
    snprintf(cfg->queued_remote_tag, sizeof(cfg->queued_remote_tag), "%s",
             ADDR_LEGACY_REMOTE);
    snprintf(cfg->queued_local_tag, sizeof(cfg->queued_local_tag), "%s",
             ADDR_LEGACY_LOCAL);
}

/* type_name - libconfig type in words, for error messages */
static const char *
type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    default:
        return "a list or array";
    }
}

/* list_set - replace a list's items with copies of v[0..n-1] */
static void
list_set(struct cfg_list *l, const char *const *v, size_t n)
{
    size_t i;

    for (i = 0; l->v != NULL && i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = xcalloc(n + 1, sizeof(*l->v));
    for (i = 0; i < n; i++)
        l->v[i] = xstrdup(v[i]);
    l->n = n;
}

/* set_list - check a list of strings item by item and store it */
static void
set_list(const struct key *k, config_setting_t *s, struct cfg_list *l,
         struct errbuf *e, const char *file, int line)
{
    int i, n = config_setting_length(s);
    const char **v = xcalloc((size_t)n + 1, sizeof(*v));
    char why[256];
    int bad = 0;

    for (i = 0; i < n; i++) {
        config_setting_t *item = config_setting_get_elem(s, (unsigned)i);

        if (config_setting_type(item) != CONFIG_TYPE_STRING) {
            adderr(e, file, line, "%s.%s: item %d: expected a string, got %s",
                   k->group, k->name, i + 1,
                   type_name(config_setting_type(item)));
            bad = 1;
            continue;
        }
        v[i] = config_setting_get_string(item);
        if (k->check != NULL && k->check(v[i], why, sizeof(why)) != MXS_OK) {
            adderr(e, file, line, "%s.%s: \"%s\": %s", k->group, k->name, v[i],
                   why);
            bad = 1;
        }
    }
    if (!bad)
        list_set(l, v, (size_t)n);
    free(v);
}

/* set_value - check one setting against its table row and store it */
static void
set_value(struct cfg *cfg, const struct key *k, config_setting_t *s,
          struct errbuf *e, const char *file, int line)
{
    static const int want[] = {CONFIG_TYPE_STRING, CONFIG_TYPE_INT,
                               CONFIG_TYPE_BOOL, CONFIG_TYPE_STRING,
                               CONFIG_TYPE_LIST};
    char *base = (char *)cfg + k->off;
    int type = config_setting_type(s);
    char why[256];

    if (type == CONFIG_TYPE_INT64)
        type = CONFIG_TYPE_INT;
    if (type == CONFIG_TYPE_ARRAY)
        type = CONFIG_TYPE_LIST;
    if (type != want[k->type]) {
        adderr(e, file, line, "%s.%s: expected %s, got %s", k->group, k->name,
               type_name(want[k->type]), type_name(type));
        return;
    }
    if (k->type == K_INT) {
        long long v = config_setting_get_int64(s);

        if (v < k->min || v > k->max) {
            adderr(e, file, line, "%s.%s: %lld is out of range (%lld-%lld)",
                   k->group, k->name, v, k->min, k->max);
            return;
        }
        *(int *)base = (int)v;
    } else if (k->type == K_BOOL) {
        *(int *)base = config_setting_get_bool(s);
    } else if (k->type == K_LIST) {
        set_list(k, s, (struct cfg_list *)base, e, file, line);
    } else if (k->type == K_ENUM) {
        const char *v = config_setting_get_string(s);
        size_t i;

        for (i = 0; k->choices[i] != NULL; i++)
            if (strcasecmp(v, k->choices[i]) == 0)
                break;
        if (k->choices[i] == NULL) {
            char list[128] = "";

            for (i = 0; k->choices[i] != NULL; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list),
                         "%s%s", i ? ", " : "", k->choices[i]);
            adderr(e, file, line, "%s.%s: \"%s\" is not one of %s", k->group,
                   k->name, v, list);
            return;
        }
        *(int *)base = (int)i;
    } else {
        const char *v = config_setting_get_string(s);

        if (k->check != NULL && k->check(v, why, sizeof(why)) != MXS_OK) {
            if (k->secret)
                adderr(e, file, line, "%s.%s: %s", k->group, k->name, why);
            else
                adderr(e, file, line, "%s.%s: \"%s\": %s", k->group, k->name, v,
                       why);
            return;
        }
        free(*(char **)base);
        *(char **)base = xstrdup(v);
    }
}

/* walk - check every setting of group g (path gpath) against the table */
static void
walk(struct cfg *cfg, config_setting_t *g, const char *gpath, const char *path,
     struct errbuf *e, struct errbuf *w, int *seen)
{
    const struct removed *r;
    int j;

    for (j = 0; j < config_setting_length(g); j++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
        const char *name = config_setting_name(s);
        const char *file = config_setting_source_file(s);
        int line = config_setting_source_line(s);
        const struct key *k = find_key(gpath, name);
        char sub[128];

        file = file ? file : path;
        snprintf(sub, sizeof(sub), "%s%s%s", gpath, gpath[0] ? "." : "", name);
        if (k != NULL) {
            seen[k - keys] = line;
            set_value(cfg, k, s, e, file, line);
        } else if ((r = find_removed(gpath, name)) != NULL) {
            removed_setting(cfg, r, s, w, file, line, sub);
        } else if (!known_group(sub)) {
            adderr(e, file, line, "%s: unknown setting", sub);
        } else if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
            adderr(e, file, line, "%s: expected a group { ... }", sub);
        } else {
            walk(cfg, s, sub, path, e, w, seen);
        }
    }
}

/* cross_check - rules that involve more than one setting */
static void
cross_check(const struct cfg *cfg, const char *path, struct errbuf *e,
            const int *seen)
{
    int unix_line = seen[find_key("redis", "unix") - keys];
    int host_line = seen[find_key("redis", "host") - keys];
    int port_line = seen[find_key("redis", "port") - keys];
    int user_line = seen[find_key("redis", "username") - keys];
    int smap_line = seen[find_key("socketmap", "socket") - keys];
    int srv_line = seen[find_key("redis", "servers") - keys];
    int master_line = seen[find_key("redis.sentinel", "master") - keys];
    int sent_line = seen[find_key("redis.sentinel", "servers") - keys];
    int aprefix_line = seen[find_key("routing", "address_prefix") - keys];

    if (unix_line && (host_line || port_line))
        adderr(e, path, unix_line,
               "redis.unix: set either redis.unix or redis.host/port");
    if (srv_line && (unix_line || host_line || port_line))
        adderr(e, path, srv_line,
               "redis.servers: set either redis.servers or "
               "redis.host/port/unix");
    if (cfg->sentinel_master[0] != '\0' && cfg->sentinel_servers.n == 0)
        adderr(e, path, master_line,
               "redis.sentinel.master: needs redis.sentinel.servers");
    if (cfg->sentinel_servers.n > 0 && cfg->sentinel_master[0] == '\0')
        adderr(e, path, sent_line,
               "redis.sentinel.servers: needs redis.sentinel.master");
    if (cfg->sentinel_master[0] != '\0' &&
        (srv_line || unix_line || host_line || port_line))
        adderr(e, path, master_line,
               "redis.sentinel: the Sentinels name the master; drop "
               "redis.servers/host/port/unix");
    if (cfg->address_prefix[0] != '\0' &&
        (strncmp(cfg->address_prefix, cfg->prefix,
                 strlen(cfg->address_prefix)) == 0 ||
         strncmp(cfg->prefix, cfg->address_prefix, strlen(cfg->prefix)) == 0))
        adderr(e, path, aprefix_line,
               "routing.address_prefix: must not start with routing.prefix "
               "or be the start of it");
    if (user_line && cfg->redis_password[0] == '\0')
        adderr(e, path, user_line, "redis.username: needs redis.password");
    if (cfg->smap_socket[0] != '\0' &&
        strcmp(cfg->smap_socket, cfg->milter_socket) == 0)
        adderr(e, path, smap_line,
               "socketmap.socket: must differ from milter.socket");
}

/*
 * cfg_load - read and check a configuration file
 *
 * Returns the configuration, or NULL with *errors set to the list of
 * problems, one "file:line: reason" per line (caller frees).
 */
struct cfg *
cfg_load(const char *path, char **errors)
{
    struct errbuf e = {NULL, 0}, w = {NULL, 0};
    struct cfg *cfg = xcalloc(1, sizeof(*cfg));
    int seen[NKEYS];
    config_t lc;

    *errors = NULL;
    memset(seen, 0, sizeof(seen));
    set_defaults(cfg);
    cfg->path = xstrdup(path);
    config_init(&lc);
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            adderr(&e, path, 0, "cannot read: %s", strerror(errno));
        else
            adderr(&e, config_error_file(&lc) ? config_error_file(&lc) : path,
                   config_error_line(&lc), "syntax error: %s",
                   config_error_text(&lc));
    } else {
        walk(cfg, config_root_setting(&lc), "", path, &e, &w, seen);
        if (e.text == NULL)
            cross_check(cfg, path, &e, seen);
    }
    config_destroy(&lc);
    if (e.text != NULL) {
        free(w.text);
        cfg_free(cfg);
        *errors = e.text;
        return NULL;
    }
    cfg->warnings = w.text;
    return cfg;
}

/* cfg_free - release a configuration; NULL is a no-op */
void
cfg_free(struct cfg *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < NKEYS; i++) {
        char *base = (char *)cfg + keys[i].off;

        if (keys[i].type == K_STR) {
            free(*(char **)base);
        } else if (keys[i].type == K_LIST) {
            list_set((struct cfg_list *)base, NULL, 0);
            free(((struct cfg_list *)base)->v);
        }
    }
    free(cfg->warnings);
    free(cfg->path);
    free(cfg);
}

/* dump_add - append formatted text to a growing buffer */
static void dump_add(struct errbuf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
dump_add(struct errbuf *out, const char *fmt, ...)
{
    va_list ap;
    int need;

    va_start(ap, fmt);
    need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    out->text = xrealloc(out->text, out->len + (size_t)need + 1);
    va_start(ap, fmt);
    vsnprintf(out->text + out->len, (size_t)need + 1, fmt, ap);
    va_end(ap);
    out->len += (size_t)need;
}

/* group_depth - 1 for "redis", 2 for "redis.sentinel" */
static int
group_depth(const char *group)
{
    int d = 1;

    while ((group = strchr(group, '.')) != NULL) {
        group++;
        d++;
    }
    return d;
}

/*
 * cfg_dump - every setting with its effective value, in libconfig syntax
 *
 * Secrets are shown as "(set)".  The table keeps a subgroup's rows right
 * after its parent's, so groups open and close in table order.  The result
 * belongs to the caller.
 */
char *
cfg_dump(const struct cfg *cfg)
{
    struct errbuf out = {NULL, 0};
    const char *group = "";
    int depth = 0;
    size_t i, j;

    for (i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        const char *base = (const char *)cfg + k->off;
        int kd = group_depth(k->group);
        int ind;

        if (strcmp(group, k->group) != 0) {
            const char *last = strrchr(k->group, '.');

            while (depth >= kd) {
                depth--;
                dump_add(&out, "%*s};\n", 4 * depth, "");
            }
            dump_add(&out, "%*s%s: {\n", 4 * depth, "",
                     last ? last + 1 : k->group);
            depth = kd;
            group = k->group;
        }
        ind = 4 * depth;
        if (k->type == K_STR)
            dump_add(&out, "%*s%s = \"%s\";\n", ind, "", k->name,
                     k->secret && **(char *const *)base ? "(set)"
                                                        : *(char *const *)base);
        else if (k->type == K_ENUM)
            dump_add(&out, "%*s%s = \"%s\";\n", ind, "", k->name,
                     k->choices[*(const int *)base]);
        else if (k->type == K_BOOL)
            dump_add(&out, "%*s%s = %s;\n", ind, "", k->name,
                     *(const int *)base ? "true" : "false");
        else if (k->type == K_INT)
            dump_add(&out, "%*s%s = %d;\n", ind, "", k->name,
                     *(const int *)base);
        else {
            const struct cfg_list *l = (const struct cfg_list *)base;

            dump_add(&out, "%*s%s = (", ind, "", k->name);
            for (j = 0; j < l->n; j++)
                dump_add(&out, "%s\"%s\"", j ? ", " : " ", l->v[j]);
            dump_add(&out, "%s);\n", l->n ? " " : "");
        }
    }
    while (depth > 0) {
        depth--;
        dump_add(&out, "%*s};\n", 4 * depth, "");
    }
    /* Not a setting: what the Sendmail setup script takes off queued
     * addresses (routing.remote_tag and local_tag were removed). */
    dump_add(&out, "# queued tags: remote \"%s\", local \"%s\"\n",
             cfg->queued_remote_tag, cfg->queued_local_tag);
    return out.text;
}

/* cfg_tags - the routing tag settings in the form addr_* wants */
struct addr_tags
cfg_tags(const struct cfg *cfg)
{
    struct addr_tags t;

    t.delimiter = cfg->delimiter[0];
    t.remote = cfg->queued_remote_tag;
    t.local = cfg->queued_local_tag;
    return t;
}

/* cfg_transports_path - CFG_TRANSPORTS_FILE in the directory of cfg's file */
void
cfg_transports_path(const struct cfg *cfg, char *out, size_t outlen)
{
    const char *slash = strrchr(cfg->path, '/');

    if (slash == NULL)
        snprintf(out, outlen, "%s", CFG_TRANSPORTS_FILE);
    else
        snprintf(out, outlen, "%.*s/%s", (int)(slash - cfg->path), cfg->path,
                 CFG_TRANSPORTS_FILE);
}

/* transport_get - one transport of the file: a non-empty "name:" string */
static int
transport_get(config_t *lc, const char *name, char *out, char *why,
              size_t whylen)
{
    const char *v;

    if (config_lookup_string(lc, name, &v) != CONFIG_TRUE)
        return MXS_NOMATCH;
    if (v[0] == '\0' || strchr(v, ':') == NULL ||
        strlen(v) >= CFG_TRANSPORT_MAX || strpbrk(v, " \t\r\n") != NULL) {
        mxs_why(why, whylen, "%s: \"%s\" is not a transport (name:nexthop)",
                name, v);
        return MXS_INVALID;
    }
    memcpy(out, v, strlen(v) + 1);
    return MXS_OK;
}

/*
 * cfg_transports_load - the instance's transports from path
 *
 * MXS_OK with t filled (what the file lacks keeps its default: local "",
 * remote "smtp:"); MXS_NOMATCH when the file does not exist (t holds the
 * defaults); MXS_INVALID with why for a file that cannot be read or says
 * something else.
 */
int
cfg_transports_load(const char *path, struct cfg_transports *t, char *why,
                    size_t whylen)
{
    config_t lc;
    int rc = MXS_OK;

    snprintf(t->local, sizeof(t->local), "%s", "");
    snprintf(t->remote, sizeof(t->remote), "%s", "smtp:");
    config_init(&lc);
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO && errno == ENOENT) {
            rc = MXS_NOMATCH;
        } else {
            mxs_why(why, whylen, "%s:%d: %s", path, config_error_line(&lc),
                    config_error_type(&lc) == CONFIG_ERR_FILE_IO
                        ? strerror(errno)
                        : config_error_text(&lc));
            rc = MXS_INVALID;
        }
    } else if (transport_get(&lc, "local", t->local, why, whylen) ==
                   MXS_INVALID ||
               transport_get(&lc, "remote", t->remote, why, whylen) ==
                   MXS_INVALID) {
        rc = MXS_INVALID;
    }
    config_destroy(&lc);
    return rc;
}

/* same_value - whether setting k holds the same value in a and b */
static int
same_value(const struct key *k, const struct cfg *a, const struct cfg *b)
{
    const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
    const struct cfg_list *la, *lb;
    size_t j;

    if (k->type == K_STR)
        return strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
    if (k->type != K_LIST)
        return *(const int *)pa == *(const int *)pb;
    la = (const struct cfg_list *)pa;
    lb = (const struct cfg_list *)pb;
    if (la->n != lb->n)
        return 0;
    for (j = 0; j < la->n; j++)
        if (strcmp(la->v[j], lb->v[j]) != 0)
            return 0;
    return 1;
}

/*
 * cfg_changed - the settings whose values differ between a and b
 *
 * One "group.name\n" line each, in table order, "" when none; never a
 * value, so a changed secret is named but not shown.  Caller frees.
 */
char *
cfg_changed(const struct cfg *a, const struct cfg *b)
{
    struct errbuf out = {NULL, 0};
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (!same_value(&keys[i], a, b))
            dump_add(&out, "%s.%s\n", keys[i].group, keys[i].name);
    return out.text ? out.text : xstrdup("");
}
