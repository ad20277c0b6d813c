/*
 * ctl.c - mxswitch-ctl: set, inspect and explain routing keys in Redis
 *
 * The admin tool uses the daemon's own code for everything that decides:
 * cfg_load() for the file, domain_normalize() for key names,
 * route_mode_parse() for values, lookup_address(), lookup_auto() and
 * route_decide() for explain.  Every change goes through one Lua script that
 * writes the key and its audit entry (XADD to AUDIT_KEY, capped) in one step,
 * so no change escapes the audit and no entry records a change that did not
 * happen.  Input is checked completely before anything is written.
 * Results go to stdout, problems to stderr; exit codes are sysexits(3)
 * plus explain's decision codes (mxswitch-ctl(8)).
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cfg.h"
#include "dns.h"
#include "domain.h"
#include "log.h"
#include "lookup.h"
#include "mxs.h"
#include "rclient.h"
#include "rcmd.h"
#include "route.h"
#include "rwatch.h"

#define AUDIT_KEY    "mxswitch:audit"
#define AUDIT_MAXLEN "10000"
#define SCAN_COUNT   "1000"
#define MGET_BATCH   1000
#define WHYLEN       512

/* explain's exit codes: what the MTA is told to do with the recipient */
#define EXIT_NONE   0  /* nothing: the MTA's own routing */
#define EXIT_LOCAL  10 /* the mailbox on this server */
#define EXIT_REMOTE 11 /* the domain's MX hosts */
#define EXIT_HOLD   12 /* kept queued: the best MX is still this server */
#define EXIT_REDIS  1  /* Redis refused a command */

/*
 * KEYS: the routing key, the audit stream.  ARGV: the new value ("" =
 * delete), stream cap, time, user, domain.  Returns {changed, old value}
 * with "" for no key; an unchanged key is neither written nor audited.
 */
static const char store_lua[] =
    "local old = redis.call('GET', KEYS[1]) or ''\n"
    "if old == ARGV[1] then return {0, old} end\n"
    "if ARGV[1] == '' then redis.call('DEL', KEYS[1])\n"
    "else redis.call('SET', KEYS[1], ARGV[1]) end\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'time', "
    "ARGV[3], 'user', ARGV[4], 'domain', ARGV[5], 'old', old, 'new', "
    "ARGV[1])\n"
    "return {1, old}\n";

struct ctl {
    struct cfg *cfg;
    struct rclient *rc;
    char user[64];
};

/* A domain and its value: a line of an import file, or a key in Redis. */
struct entry {
    char *domain; /* normalised */
    char *value;  /* as read */
    enum route_mode mode;
    int valid;        /* value is a mode */
    const char *file; /* import: where it came from */
    int line;
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

/* entries_add - append an entry; the strings are copied */
static struct entry *
entries_add(struct entries *e, const char *domain, const char *value)
{
    struct entry *x;

    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    x = &e->v[e->n++];
    memset(x, 0, sizeof(*x));
    x->domain = xstrdup(domain);
    x->value = xstrdup(value ? value : "");
    return x;
}

/* entries_free - release the entries and their strings */
static void
entries_free(struct entries *e)
{
    size_t i;

    for (i = 0; i < e->n; i++) {
        free(e->v[i].domain);
        free(e->v[i].value);
    }
    free(e->v);
    memset(e, 0, sizeof(*e));
}

/* entry_cmp - order by domain, then by position in the input */
static int
entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int d = strcmp(x->domain, y->domain);

    if (d != 0)
        return d;
    return x->line - y->line;
}

/* shown - a printable, quoted copy of untrusted input (caller frees) */
static char *
shown(const char *s)
{
    size_t len = strlen(s) * 4 + 8;
    char *out = xmalloc(len);

    out[0] = '"';
    len = mxs_escape(out + 1, len - 2, s, strlen(s));
    out[len + 1] = '"';
    out[len + 2] = '\0';
    return out;
}

/* check_domain - the daemon's normal form of a domain argument */
static int
check_domain(const char *in, char *norm, char *why, size_t whylen)
{
    char reason[256];
    char *s;

    if (domain_normalize(in, norm, DOMAIN_MAX + 1, reason, sizeof(reason)) ==
        MXS_OK)
        return MXS_OK;
    s = shown(in);
    mxs_why(why, whylen, "%s: not a valid domain: %s", s, reason);
    free(s);
    return MXS_INVALID;
}

/* check_mode - a mode word as the daemon reads it from Redis */
static int
check_mode(const char *in, enum route_mode *mode, char *why, size_t whylen)
{
    char *s;

    if (route_mode_parse(in, strlen(in), mode) == MXS_OK)
        return MXS_OK;
    s = shown(in);
    mxs_why(why, whylen, "%s: not a mode (none, local, remote, ...)", s);
    free(s);
    return MXS_INVALID;
}

/* redis_why - a Redis failure's reason, naming the endpoint once */
static const char *
redis_why(const struct ctl *c, const char *why, char *out, size_t outlen)
{
    if (strncmp(why, "Redis ", 6) == 0)
        snprintf(out, outlen, "%s", why);
    else
        snprintf(out, outlen, "Redis %s: %s", rclient_endpoint(c->rc), why);
    return out;
}

/* redis_fail - report a Redis failure; the exit code for it */
static int
redis_fail(const struct ctl *c, int rcode, const char *why)
{
    char msg[WHYLEN + 320];

    fprintf(stderr, "mxswitch-ctl: %s\n", redis_why(c, why, msg, sizeof(msg)));
    return rcode == MXS_TEMPFAIL ? EX_TEMPFAIL : EXIT_REDIS;
}

/* routing_key - prefix + domain (caller frees) */
static char *
routing_key(const struct ctl *c, const char *domain)
{
    size_t len = strlen(c->cfg->prefix) + strlen(domain) + 1;
    char *key = xmalloc(len);

    snprintf(key, len, "%s%s", c->cfg->prefix, domain);
    return key;
}

/* or_dash - "-" for an empty string */
static const char *
or_dash(const char *s)
{
    return s[0] != '\0' ? s : "-";
}

/*
 * store - set (value non-empty) or delete a domain's key, with its audit
 *
 * *changed says whether anything was written; old (oldlen bytes) gets the
 * previous value, "" for none.  MXS_OK, or MXS_TEMPFAIL/MXS_INVALID from
 * rcmd_command() with why.
 */
static int
store(struct ctl *c, const char *domain, const char *value, int *changed,
      char *old, size_t oldlen, char *why, size_t whylen)
{
    char *key = routing_key(c, domain);
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    const char *argv[] = {"EVAL", store_lua,    "2",   key,     AUDIT_KEY,
                          value,  AUDIT_MAXLEN, stamp, c->user, domain};
    struct rcmd_reply r;
    int rcode;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    rcode = rcmd_command(c->rc, 10, argv, &r, why, whylen);
    free(key);
    if (rcode != MXS_OK)
        return rcode;
    if (r.type != RCMD_ARRAY || r.n != 2 || r.elem[0].type != RCMD_INTEGER ||
        r.elem[1].type != RCMD_STRING) {
        mxs_why(why, whylen, "unexpected reply from the store script");
        rcmd_reply_clear(&r);
        return MXS_INVALID;
    }
    *changed = r.elem[0].integer != 0;
    mxs_escape(old, oldlen, r.elem[1].str, r.elem[1].len);
    rcmd_reply_clear(&r);
    return MXS_OK;
}

/* report - one line about a stored change */
static void
report(const char *domain, const char *value, int changed, const char *old)
{
    if (!changed)
        printf("%s: %s (unchanged)\n", domain, value[0] ? value : "no key");
    else if (value[0] == '\0')
        printf("%s: deleted (was %s)\n", domain, old);
    else
        printf("%s: %s (was %s)\n", domain, value, old[0] ? old : "unset");
}

/* flip_note - after a change typed at a terminal: when it takes effect */
static void
flip_note(int changed)
{
    if (changed && isatty(STDOUT_FILENO))
        printf("note: the next delivery attempt follows it; Postfix may "
               "keep an address's old route up to 30 s if it resolved it "
               "just now\n");
}

/* cmd_set - set DOMAIN MODE */
static int
cmd_set(struct ctl *c, int argc, char **argv)
{
    char norm[DOMAIN_MAX + 1], why[WHYLEN], old[256];
    enum route_mode mode;
    const char *value;
    int changed, rcode;

    (void)argc;
    if (check_domain(argv[0], norm, why, sizeof(why)) != MXS_OK ||
        check_mode(argv[1], &mode, why, sizeof(why)) != MXS_OK) {
        fprintf(stderr, "mxswitch-ctl: set: %s; nothing written\n", why);
        return EX_DATAERR;
    }
    value = route_mode_name(mode);
    rcode = store(c, norm, value, &changed, old, sizeof(old), why, sizeof(why));
    if (rcode != MXS_OK)
        return redis_fail(c, rcode, why);
    report(norm, value, changed, old);
    flip_note(changed);
    return EX_OK;
}

/* cmd_del - del DOMAIN */
static int
cmd_del(struct ctl *c, int argc, char **argv)
{
    char norm[DOMAIN_MAX + 1], why[WHYLEN], old[256];
    int changed, rcode;

    (void)argc;
    if (check_domain(argv[0], norm, why, sizeof(why)) != MXS_OK) {
        fprintf(stderr, "mxswitch-ctl: del: %s; nothing written\n", why);
        return EX_DATAERR;
    }
    rcode = store(c, norm, "", &changed, old, sizeof(old), why, sizeof(why));
    if (rcode != MXS_OK)
        return redis_fail(c, rcode, why);
    report(norm, "", changed, old);
    flip_note(changed);
    return EX_OK;
}

/* cmd_get - get DOMAIN: the value of the domain's own key */
static int
cmd_get(struct ctl *c, int argc, char **argv)
{
    char norm[DOMAIN_MAX + 1], why[WHYLEN];
    struct rclient_value v;
    enum route_mode mode;
    const char *key;
    char *k, *s;
    int rcode;

    (void)argc;
    if (check_domain(argv[0], norm, why, sizeof(why)) != MXS_OK) {
        fprintf(stderr, "mxswitch-ctl: get: %s\n", why);
        return EX_DATAERR;
    }
    k = routing_key(c, norm);
    key = k;
    rcode = rclient_mget(c->rc, &key, 1, &v, why, sizeof(why));
    free(k);
    if (rcode != MXS_OK)
        return redis_fail(c, rcode, why);
    if (v.type != RCLIENT_STRING) {
        fprintf(stderr, "mxswitch-ctl: %s: no key (routing.default is %s)\n",
                norm, route_mode_name((enum route_mode)c->cfg->default_mode));
        return 1;
    }
    rcode = route_mode_parse(v.str, v.len, &mode);
    if (rcode == MXS_OK) {
        printf("%s\n", route_mode_name(mode));
    } else {
        s = shown(v.str);
        printf("%s\n", s);
        fprintf(stderr,
                "mxswitch-ctl: %s: %s is not a mode (the milter answers "
                "per routing.on_error)\n",
                norm, s);
        free(s);
    }
    rclient_values_clear(&v, 1);
    return rcode == MXS_OK ? EX_OK : EX_DATAERR;
}

/* scan_keys - the domains of every key matching prefix + pattern */
static int
scan_keys(struct ctl *c, const char *pattern, struct entries *out, char *why,
          size_t whylen)
{
    char *esc = rwatch_glob_escape(c->cfg->prefix);
    size_t plen = strlen(c->cfg->prefix);
    size_t len = strlen(esc) + strlen(pattern) + 1;
    char *match = xmalloc(len);
    char cursor[32] = "0";
    const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT};
    int rcode = MXS_OK;
    size_t i;

    snprintf(match, len, "%s%s", esc, pattern);
    free(esc);
    do {
        struct rcmd_reply r;
        const struct rcmd_reply *keys;

        rcode = rcmd_command(c->rc, 6, argv, &r, why, whylen);
        if (rcode != MXS_OK)
            break;
        if (r.type != RCMD_ARRAY || r.n != 2 || r.elem[0].type != RCMD_STRING ||
            r.elem[1].type != RCMD_ARRAY) {
            mxs_why(why, whylen, "unexpected SCAN reply");
            rcmd_reply_clear(&r);
            rcode = MXS_INVALID;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r.elem[0].str);
        keys = &r.elem[1];
        for (i = 0; i < keys->n; i++)
            if (keys->elem[i].type == RCMD_STRING && keys->elem[i].len > plen)
                entries_add(out, keys->elem[i].str + plen, NULL);
        rcmd_reply_clear(&r);
    } while (strcmp(cursor, "0") != 0);
    free(match);
    return rcode;
}

/* fetch_values - the value of every entry's key, in batches of MGETs */
static int
fetch_values(struct ctl *c, struct entries *e, char *why, size_t whylen)
{
    struct rclient_value vals[MGET_BATCH];
    char *keys[MGET_BATCH];
    size_t at, i, n;
    int rcode = MXS_OK;

    for (at = 0; rcode == MXS_OK && at < e->n; at += n) {
        n = e->n - at < MGET_BATCH ? e->n - at : MGET_BATCH;
        for (i = 0; i < n; i++)
            keys[i] = routing_key(c, e->v[at + i].domain);
        rcode = rclient_mget(c->rc, (const char *const *)keys, n, vals, why,
                             whylen);
        for (i = 0; i < n; i++) {
            struct entry *x = &e->v[at + i];

            free(keys[i]);
            if (rcode != MXS_OK || vals[i].type != RCLIENT_STRING)
                continue;
            free(x->value);
            x->value = xstrdup(vals[i].str);
            x->valid =
                route_mode_parse(vals[i].str, vals[i].len, &x->mode) == MXS_OK;
        }
        if (rcode == MXS_OK)
            rclient_values_clear(vals, n);
    }
    return rcode;
}

/*
 * print_keys - "domain mode" for every routing key matching pattern
 *
 * Sorted by domain.  A key the milter would not use (a value that is not
 * a mode, a name not in normal form) is reported on stderr, not printed,
 * and makes the exit status EX_DATAERR.
 */
static int
print_keys(struct ctl *c, const char *pattern, int header)
{
    struct entries e = {NULL, 0, 0};
    char norm[DOMAIN_MAX + 1], why[WHYLEN];
    size_t i;
    int rcode, bad = 0;

    rcode = scan_keys(c, pattern, &e, why, sizeof(why));
    if (rcode == MXS_OK) {
        qsort(e.v, e.n, sizeof(*e.v), entry_cmp);
        rcode = fetch_values(c, &e, why, sizeof(why));
    }
    if (rcode != MXS_OK) {
        entries_free(&e);
        return redis_fail(c, rcode, why);
    }
    if (header)
        printf("# mxswitch-ctl export: domain mode\n");
    for (i = 0; i < e.n; i++) {
        const struct entry *x = &e.v[i];
        char *s;

        if ((i > 0 && strcmp(x->domain, e.v[i - 1].domain) == 0) ||
            x->value[0] == '\0')
            continue; /* SCAN repeats keys; a key may be gone meanwhile */
        if (check_domain(x->domain, norm, why, sizeof(why)) != MXS_OK ||
            strcmp(norm, x->domain) != 0) {
            s = shown(x->domain);
            fprintf(stderr,
                    "mxswitch-ctl: key %s%s: not a domain in normal form; "
                    "the milter never reads it\n",
                    c->cfg->prefix, s);
            free(s);
            bad = 1;
        } else if (!x->valid) {
            s = shown(x->value);
            fprintf(stderr,
                    "mxswitch-ctl: key %s%s: %s is not a mode (the milter "
                    "answers per routing.on_error)\n",
                    c->cfg->prefix, x->domain, s);
            free(s);
            bad = 1;
        } else {
            printf("%s %s\n", x->domain, route_mode_name(x->mode));
        }
    }
    entries_free(&e);
    return bad ? EX_DATAERR : EX_OK;
}

/* cmd_list - list [PATTERN]: keys whose domain matches a glob */
static int
cmd_list(struct ctl *c, int argc, char **argv)
{
    char *pattern = xstrdup(argc > 0 ? argv[0] : "*");
    char *p;
    int rv;

    for (p = pattern; *p; p++) /* keys are lower case */
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    rv = print_keys(c, pattern, 0);
    free(pattern);
    return rv;
}

/* cmd_export - every routing key, in import format */
static int
cmd_export(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return print_keys(c, "*", 1);
}

/* chomp - strip comments, trailing blanks and CR; return the first word */
static char *
chomp(char *line)
{
    char *hash = strchr(line, '#');
    size_t len;

    if (hash != NULL)
        *hash = '\0';
    len = strlen(line);
    while (len > 0 && strchr(" \t\r\n", line[len - 1]) != NULL)
        line[--len] = '\0';
    return line + strspn(line, " \t");
}

/*
 * read_file - check every line of an import file, collect the good ones
 *
 * mode NULL: lines are "domain mode"; else one domain per line, all with
 * that mode (cPanel's files).  Each bad line is reported as file:line:
 * reason.  Returns the number of bad lines, or -1 if unreadable.
 */
static int
read_file(const char *path, const char *mode, struct entries *e)
{
    char norm[DOMAIN_MAX + 1], why[WHYLEN], *buf = NULL;
    FILE *f = fopen(path, "r");
    size_t cap = 0;
    int lineno = 0, bad = 0;

    if (f == NULL) {
        fprintf(stderr, "mxswitch-ctl: import: cannot read %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    while (getline(&buf, &cap, f) != -1) {
        char *domain = chomp(buf), *value = NULL, *extra = NULL;
        enum route_mode m;
        struct entry *x;

        lineno++;
        if (domain[0] == '\0')
            continue;
        domain = strtok(domain, " \t");
        value = strtok(NULL, " \t");
        extra = strtok(NULL, " \t");
        if (mode != NULL && value != NULL) {
            fprintf(stderr, "%s:%d: expected one domain per line\n", path,
                    lineno);
            bad++;
            continue;
        }
        if (mode == NULL && (value == NULL || extra != NULL)) {
            fprintf(stderr, "%s:%d: expected \"domain mode\"\n", path, lineno);
            bad++;
            continue;
        }
        value = mode != NULL ? (char *)mode : value;
        if (check_domain(domain, norm, why, sizeof(why)) != MXS_OK ||
            check_mode(value, &m, why, sizeof(why)) != MXS_OK) {
            fprintf(stderr, "%s:%d: %s\n", path, lineno, why);
            bad++;
            continue;
        }
        x = entries_add(e, norm, route_mode_name(m));
        x->mode = m;
        x->valid = 1;
        x->file = path;
        x->line = lineno;
    }
    free(buf);
    fclose(f);
    return bad;
}

/*
 * read_cpanel - cPanel's layout: localdomains, remotedomains, secondarymx
 *
 * dir is the directory that holds them (/etc on a cPanel server).  A file
 * that is not there is skipped; none there at all is an error.
 */
static int
read_cpanel(const char *dir, struct entries *e, char ***paths)
{
    static const char *const files[][2] = {{"localdomains", "local"},
                                           {"remotedomains", "remote"},
                                           {"secondarymx", "backup"}};
    size_t i, found = 0;
    int bad = 0, b;

    *paths = xcalloc(3, sizeof(**paths));
    for (i = 0; i < 3; i++) {
        size_t len = strlen(dir) + strlen(files[i][0]) + 2;
        char *p = xmalloc(len);

        snprintf(p, len, "%s/%s", dir, files[i][0]);
        (*paths)[i] = p;
        if (access(p, F_OK) != 0)
            continue;
        found++;
        b = read_file(p, files[i][1], e);
        bad += b < 0 ? 1 : b;
    }
    if (found == 0) {
        fprintf(stderr,
                "mxswitch-ctl: import: %s has none of localdomains, "
                "remotedomains, secondarymx\n",
                dir);
        return -1;
    }
    return bad;
}

/* conflicts - report domains given twice with different modes */
static int
conflicts(struct entries *e)
{
    size_t i;
    int bad = 0;

    qsort(e->v, e->n, sizeof(*e->v), entry_cmp);
    for (i = 1; i < e->n; i++) {
        const struct entry *a = &e->v[i - 1], *b = &e->v[i];

        if (strcmp(a->domain, b->domain) == 0 && a->mode != b->mode) {
            fprintf(stderr, "%s:%d: %s: also given as %s at %s:%d\n", b->file,
                    b->line, b->domain, a->value, a->file, a->line);
            bad++;
        }
    }
    return bad;
}

/* cmd_import - import FILE or DIR: check everything, then write */
static int
cmd_import(struct ctl *c, int argc, char **argv)
{
    struct entries e = {NULL, 0, 0};
    char why[WHYLEN], old[256], **paths = NULL;
    size_t i, nchanged = 0, same = 0;
    struct stat st;
    int bad, rcode = MXS_OK, changed;

    (void)argc;
    if (stat(argv[0], &st) == 0 && S_ISDIR(st.st_mode))
        bad = read_cpanel(argv[0], &e, &paths);
    else
        bad = read_file(argv[0], NULL, &e);
    if (bad == 0)
        bad = conflicts(&e);
    if (bad != 0) {
        if (bad > 0)
            fprintf(stderr,
                    "mxswitch-ctl: import: %d bad line(s); nothing written\n",
                    bad);
        entries_free(&e);
        for (i = 0; paths != NULL && i < 3; i++)
            free(paths[i]);
        free(paths);
        return bad > 0 ? EX_DATAERR : EX_NOINPUT;
    }
    for (i = 0; rcode == MXS_OK && i < e.n; i++) {
        if (i > 0 && strcmp(e.v[i].domain, e.v[i - 1].domain) == 0)
            continue;
        rcode = store(c, e.v[i].domain, e.v[i].value, &changed, old,
                      sizeof(old), why, sizeof(why));
        if (rcode == MXS_OK && changed) {
            report(e.v[i].domain, e.v[i].value, 1, old);
            nchanged++;
        } else if (rcode == MXS_OK) {
            same++;
        }
    }
    printf("import: %zu changed, %zu unchanged\n", nchanged, same);
    entries_free(&e);
    for (i = 0; paths != NULL && i < 3; i++)
        free(paths[i]);
    free(paths);
    return rcode == MXS_OK ? EX_OK : redis_fail(c, rcode, why);
}

/* field - the value of a field in an XRANGE entry's field list, or "" */
static const char *
field(const struct rcmd_reply *fields, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < fields->n; i += 2)
        if (fields->elem[i].type == RCMD_STRING &&
            fields->elem[i + 1].type == RCMD_STRING &&
            strcmp(fields->elem[i].str, name) == 0)
            return fields->elem[i + 1].str;
    return "";
}

/* cmd_history - history [DOMAIN]: the audit stream, oldest first */
static int
cmd_history(struct ctl *c, int argc, char **argv)
{
    const char *cmd[] = {"XRANGE", AUDIT_KEY, "-", "+"};
    char norm[DOMAIN_MAX + 1], why[WHYLEN];
    struct rcmd_reply r;
    size_t i;
    int rcode;

    if (argc > 0 && check_domain(argv[0], norm, why, sizeof(why)) != MXS_OK) {
        fprintf(stderr, "mxswitch-ctl: history: %s\n", why);
        return EX_DATAERR;
    }
    rcode = rcmd_command(c->rc, 4, cmd, &r, why, sizeof(why));
    if (rcode != MXS_OK)
        return redis_fail(c, rcode, why);
    for (i = 0; r.type == RCMD_ARRAY && i < r.n; i++) {
        const struct rcmd_reply *x = &r.elem[i], *f;

        if (x->type != RCMD_ARRAY || x->n != 2 || x->elem[1].type != RCMD_ARRAY)
            continue;
        f = &x->elem[1];
        if (argc > 0 && strcmp(field(f, "domain"), norm) != 0)
            continue;
        printf("%s %s %s %s -> %s\n", field(f, "time"),
               or_dash(field(f, "user")), field(f, "domain"),
               or_dash(field(f, "old")), or_dash(field(f, "new")));
    }
    rcmd_reply_clear(&r);
    return EX_OK;
}

/* print_candidate - one "candidate: KEY VALUE" line */
static void
print_candidate(const char *key, const struct rclient_value *v)
{
    char *s;

    if (v->type == RCLIENT_STRING) {
        s = shown(v->str);
        printf("candidate: %s %s\n", key, s);
        free(s);
    } else {
        printf("candidate: %s %s\n", key,
               v->type == RCLIENT_NIL ? "(no key)" : "(not a string)");
    }
}

/*
 * explain_candidates - print every key the lookup tries and its value
 *
 * The address key first (it beats them all), then the domain candidates,
 * most specific first.  Fetched here apart from the lookup itself, which
 * then decides exactly as the milter does.
 */
static int
explain_candidates(struct ctl *c, const struct addr *a, const char *norm,
                   char *why, size_t whylen)
{
    struct lookup_probe probe[DOMAIN_MAX_CANDIDATES];
    char akey[LOOKUP_KEY_MAX + 1], full[LOOKUP_KEY_MAX + 256], awhy[WHYLEN];
    struct rclient_value v;
    const char *k = full;
    size_t i, n;

    if (c->cfg->address_prefix[0] != '\0') {
        if (lookup_address_key(c->cfg, a, akey, sizeof(akey), awhy,
                               sizeof(awhy)) != MXS_OK) {
            printf("candidate: no address key (%s)\n", awhy);
        } else {
            snprintf(full, sizeof(full), "%s%s", c->cfg->address_prefix, akey);
            if (rclient_mget(c->rc, &k, 1, &v, why, whylen) != MXS_OK)
                return MXS_TEMPFAIL;
            print_candidate(full, &v);
            rclient_values_clear(&v, 1);
        }
    }
    if (lookup_probe(c->cfg, c->rc, norm, probe, &n, why, whylen) != MXS_OK)
        return MXS_TEMPFAIL;
    for (i = 0; i < n; i++)
        print_candidate(probe[i].key, &probe[i].val);
    lookup_probe_clear(probe, n);
    return MXS_OK;
}

/* action_exit - explain's exit code for an action */
static int
action_exit(enum route_action action)
{
    static const int codes[ROUTE_NACTIONS] = {
        EXIT_NONE, EXIT_LOCAL, EXIT_REMOTE, EXIT_HOLD, EX_TEMPFAIL};

    return (unsigned)action < ROUTE_NACTIONS ? codes[action] : EX_SOFTWARE;
}

/* explain_verify - map verify for a backup-mode recipient: each answer
 * the better MX's word gives, as the daemon words it */
static void
explain_verify(const char *key)
{
    static const char *const when[ROUTE_NWORDS] = {
        "when the better MX takes the address", "when it refuses it",
        "until it answers"};
    char text[ADDR_MAX + 256];
    const char *status;
    int w;

    for (w = 0; w < ROUTE_NWORDS; w++) {
        route_verified((enum route_word)w, key, &status, text, sizeof(text));
        printf("map verify, %s: %s%s%s\n", when[w], status, text[0] ? " " : "",
               text);
    }
}

/* explain_maps - what each socket map answers, and the milter at RCPT;
 * plain is the valias answer of an address with an earlier tag, or NULL */
static void
explain_maps(struct ctl *c, const struct lookup_route *lr, const char *key,
             const char *plain)
{
    char path[4096], why[WHYLEN], text[ADDR_MAX + 256];
    struct cfg_transports t;
    const char *status;
    int m;

    cfg_transports_path(c->cfg, path, sizeof(path));
    switch (cfg_transports_load(path, &t, why, sizeof(why))) {
    case MXS_NOMATCH:
        printf("transports: %s does not exist: local \"\", remote \"%s\"\n",
               path, t.remote);
        break;
    case MXS_INVALID:
        printf("transports: %s (the daemon keeps what it read before)\n", why);
        break;
    default:
        printf("transports: %s: local \"%s\", remote \"%s\"\n", path, t.local,
               t.remote);
    }
    for (m = 0; m < ROUTE_NMAPS; m++) {
        if (m == ROUTE_MAP_VALIAS && plain != NULL) {
            printf("map valias: OK %s\n", plain); /* as the daemon */
            continue;
        }
        if (lr->out.action == ROUTE_ACT_TEMP) {
            printf("map %s: TEMP\n", route_map_name((enum route_map)m));
            continue;
        }
        if (m == ROUTE_MAP_VERIFY && lr->out.rcpt == ROUTE_RCPT_VERIFY) {
            explain_verify(key);
            continue;
        }
        route_reply((enum route_map)m, &lr->out, lr->domain, key, t.local,
                    t.remote, &status, text, sizeof(text));
        printf("map %s: %s%s%s\n", route_map_name((enum route_map)m), status,
               text[0] ? " " : "", text);
    }
    printf("milter at RCPT: %s\n",
           lr->out.action == ROUTE_ACT_TEMP   ? "451 4.3.0"
           : lr->out.action == ROUTE_ACT_HOLD ? "450 4.4.6"
                                              : "continue");
    if (c->cfg->dry_run)
        printf("note: routing.dry_run is on: the daemon only logs this and "
               "answers NOTFOUND\n");
}

/*
 * cmd_explain - explain ADDRESS
 *
 * Takes the daemon's path for one recipient (lookup_route(), with no
 * cache) and prints each step and what every map answers; the exit code
 * is the action (EXIT_*; EX_TEMPFAIL when a failed lookup makes the
 * recipient wait, as with routing.on_error "tempfail"), EX_DATAERR for
 * an address the milter refuses.
 */
static int
cmd_explain(struct ctl *c, int argc, char **argv)
{
    struct addr_tags tags = cfg_tags(c->cfg);
    char norm[DOMAIN_MAX + 1], why[WHYLEN], msg[WHYLEN + 320], *arg, *s;
    char *plain = NULL;
    struct cache *none;
    struct lookup_route lr;
    struct dns *dns;
    struct addr a;
    size_t len;
    int rv;

    (void)argc;
    len = strlen(argv[0]) + 3;
    arg = xmalloc(len);
    snprintf(arg, len, argv[0][0] == '<' ? "%s" : "<%s>", argv[0]);
    s = shown(arg);
    printf("address: %s\n", s);
    free(s);
    if (addr_parse(arg, &tags, &a, why, sizeof(why)) != MXS_OK) {
        printf("decision: 451 4.1.3 (malformed address: %s)\n", why);
        free(arg);
        return EX_DATAERR;
    }
    if (a.tag != ADDR_TAG_NONE && a.domain != NULL) {
        plain = addr_plain(&a, &tags);
        printf("tag: %s, of an earlier mxswitch: map valias answers %s\n",
               addr_tag_name(a.tag), plain);
    }
    rv = EXIT_NONE;
    if (a.domain == NULL || a.literal) {
        printf("domain: none (%s: never looked up)\n",
               a.literal ? "address literal" : "no domain");
        printf("decision: none\n");
        goto out;
    }
    if (check_domain(a.domain, norm, why, sizeof(why)) != MXS_OK) {
        printf("decision: 451 4.1.2 (%s)\n", why);
        rv = EX_DATAERR;
        goto out;
    }
    printf("domain: %s\n", norm);
    /* A Redis that cannot answer here fails the daemon's lookup below
     * too, which then decides as the daemon would (routing.on_error). */
    if (explain_candidates(c, &a, norm, why, sizeof(why)) != MXS_OK)
        printf("candidates: %s\n", redis_why(c, why, msg, sizeof(msg)));
    dns = dns_create((const char *const *)c->cfg->local_addresses.v,
                     c->cfg->local_addresses.n, 0, msg, sizeof(msg));
    if (dns == NULL)
        fatalx("routing.local_addresses: %s", msg);
    none = cache_create(0, 0);
    lookup_route(c->cfg, none, c->rc, dns, &a, mxs_now_ms(), &lr, why,
                 sizeof(why));
    cache_free(none);
    dns_free(dns);
    if (lr.failed)
        printf("lookup: failed: %s\n", lr.note);
    if (lr.res.explicit_key && lr.res.key[0] != '\0')
        printf("winner: %s%s\n", lookup_key_prefix(c->cfg, lr.res.kind),
               lr.res.key);
    else if (!lr.failed)
        printf("winner: none (routing.default)\n");
    if (lr.evidence[0] != '\0')
        printf("dns: %s\n", lr.evidence);
    printf("mode: %s%s\n", route_mode_name(lr.out.mode),
           lr.res.source == LOOKUP_DNS ? " (auto, from DNS)" : "");
    printf("decision: %s (%s)\n", route_action_name(lr.out.action),
           lr.failed ? "lookup failed" : why);
    s = xstrndup(arg + 1, strlen(arg) - 2); /* as the MTA asks: no <> */
    explain_maps(c, &lr, s, plain);
    free(s);
    rv = action_exit(lr.out.action);
out:
    addr_clear(&a);
    free(plain);
    free(arg);
    return rv;
}

static const struct command {
    const char *name;
    int min, max; /* operands */
    int (*run)(struct ctl *, int, char **);
} commands[] = {
    {"set", 2, 2, cmd_set},         {"get", 1, 1, cmd_get},
    {"del", 1, 1, cmd_del},         {"list", 0, 1, cmd_list},
    {"export", 0, 0, cmd_export},   {"import", 1, 1, cmd_import},
    {"history", 0, 1, cmd_history}, {"explain", 1, 1, cmd_explain},
};

/* usage - print the synopsis and exit */
static void __attribute__((noreturn)) usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: mxswitch-ctl [-hvV] [-c config] command [args]\n"
            "  help                this help (also -h, --help)\n"
            "  set DOMAIN MODE     set a domain's mode (audited)\n"
            "  get DOMAIN          print the mode of the domain's own key\n"
            "  del DOMAIN          delete the domain's key (audited)\n"
            "  list [PATTERN]      domains and modes, PATTERN a glob\n"
            "  export              every domain and mode, import format\n"
            "  import FILE|DIR     \"domain mode\" lines, or cPanel's "
            "localdomains,\n"
            "                      remotedomains and secondarymx in DIR\n"
            "  history [DOMAIN]    the audit log of changes\n"
            "  explain ADDRESS     what the MTA is told for one recipient\n"
            "  -c FILE        configuration file (default %s)\n"
            "  -v             Redis client messages on stderr\n"
            "  -V, --version  print the version and exit\n",
            CFG_DEFAULT_PATH);
    exit(code);
}

/* The long options: the two every Debian program has. */
static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* audit_user - who runs this: the sudo caller, else the login */
static void
audit_user(char *out, size_t outlen)
{
    const char *sudo = getenv("SUDO_USER");
    struct passwd *pw;

    if (sudo != NULL && sudo[0] != '\0')
        snprintf(out, outlen, "%s", sudo);
    else if ((pw = getpwuid(getuid())) != NULL)
        snprintf(out, outlen, "%s", pw->pw_name);
    else
        snprintf(out, outlen, "uid%ld", (long)getuid());
}

int
main(int argc, char **argv)
{
    const char *path = CFG_DEFAULT_PATH;
    const struct command *cmd = NULL;
    char *errors = NULL;
    struct ctl c;
    int ch, verbose = 0, n, rv;
    size_t i;

    while ((ch = getopt_long(argc, argv, "+c:hvV", long_options, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'V':
            printf("mxswitch-ctl %s\n", MXS_VERSION);
            return EX_OK;
        case 'h':
            usage(EX_OK);
        default:
            usage(EX_USAGE);
        }
    }
    if (optind == argc)
        usage(EX_USAGE);
    if (strcmp(argv[optind], "help") == 0)
        usage(EX_OK);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            cmd = &commands[i];
    n = argc - optind - 1;
    if (cmd == NULL || n < cmd->min || n > cmd->max)
        usage(EX_USAGE);
    /* The Redis client logs state changes: to syslog like the daemon's,
     * or with -v to stderr; problems of this run are told on stderr. */
    log_init("mxswitch-ctl", verbose, verbose);
    memset(&c, 0, sizeof(c));
    c.cfg = cfg_load(path, &errors);
    if (c.cfg == NULL) {
        fprintf(stderr, "%smxswitch-ctl: %s: configuration rejected\n", errors,
                path);
        free(errors);
        return EX_CONFIG;
    }
    audit_user(c.user, sizeof(c.user));
    c.rc = rclient_create_cfg(c.cfg);
    rv = cmd->run(&c, n, argv + optind + 1);
    rclient_free(c.rc);
    cfg_free(c.cfg);
    return rv;
}
