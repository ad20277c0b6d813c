/*
 * test_corpus - the hostile input corpus through the milter's pure path
 *
 * usage: test_corpus [CORPUS-DIR]   (default tests/corpus)
 *
 * Each case of rcpt.txt goes the way the milter and the socket map server
 * take a recipient: addr_parse, domain_normalize (unless there is no
 * domain or a literal), route_decide with the mode the case names, and
 * route_reply for the valias map (an address with the tag of an earlier
 * mxswitch answers its plain form); the action, the key and the valias
 * answer must be the case's.  Over every case the invariants hold: a
 * valias answer has no control byte, keeps the domain and the local part
 * byte for byte, and carries no tag.  Each case of values.txt goes
 * through route_mode_parse,
 * by length, NULs included.  tests/test_hostile.sh plays the same files
 * through the running milter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "check.h"
#include "domain.h"
#include "mxs.h"
#include "route.h"

#define MAXFIELDS 6

static const struct addr_tags tags = {'+', "mx-remote", "mx-local"};

/* A line of a corpus file, split on tabs; the strings point into line. */
struct fields {
    char *line;
    size_t n;
    char *f[MAXFIELDS];
};

/* hexval - value of a lower-case hex digit, -1 if none */
static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* decode - turn \xhh into byte hh; the result and its length (NUL kept) */
static char *
decode(const char *in, size_t *len)
{
    char *out = xmalloc(strlen(in) + 1);
    size_t i, o = 0;

    for (i = 0; in[i] != '\0'; i++) {
        if (in[i] == '\\' && in[i + 1] == 'x' && hexval(in[i + 2]) >= 0 &&
            hexval(in[i + 3]) >= 0) {
            out[o++] = (char)(hexval(in[i + 2]) * 16 + hexval(in[i + 3]));
            i += 3;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* next_case - read the next case line of f into fs; 0 at the end */
static int
next_case(FILE *f, struct fields *fs, size_t *cap)
{
    char *p;

    while (getline(&fs->line, cap, f) >= 0) {
        fs->line[strcspn(fs->line, "\n")] = '\0';
        if (fs->line[0] == '#' || fs->line[0] == '\0')
            continue;
        fs->n = 0;
        for (p = fs->line; fs->n < MAXFIELDS; p++) {
            fs->f[fs->n++] = p;
            p = strchr(p, '\t');
            if (p == NULL)
                break;
            *p = '\0';
        }
        return 1;
    }
    return 0;
}

/* mode_of - the mode a corpus field names; "-" is no key (mode none) */
static enum route_mode
mode_of(const char *word, int *explicit_key)
{
    enum route_mode m = ROUTE_NONE;

    *explicit_key = strcmp(word, "-") != 0;
    if (*explicit_key && route_mode_parse(word, strlen(word), &m) != MXS_OK)
        fprintf(stderr, "corpus: bad mode \"%s\"\n", word);
    return m;
}

/* has_control - whether a string has a byte below 0x20 or DEL */
static int
has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/*
 * decide - one recipient the way the milter and the maps take it
 *
 * Returns the action ("none", "local", "remote", "hold", "temp") or
 * "bad-addr" / "bad-domain"; key gets the normalised domain or "-",
 * *valias what the valias map answers (NULL: NOTFOUND).
 */
static const char *
decide(const char *arg, enum route_mode mode, int explicit_key, char *key,
       struct addr *a, char **valias)
{
    struct route_in in;
    struct route_out out;
    const char *status;
    char why[256], text[ADDR_MAX + 256];

    *valias = NULL;
    strcpy(key, "-");
    if (addr_parse(arg, &tags, a, why, sizeof(why)) != MXS_OK)
        return "bad-addr";
    memset(&out, 0, sizeof(out));
    if (a->domain != NULL && !a->literal) {
        if (domain_normalize(a->domain, key, DOMAIN_MAX + 1, why,
                             sizeof(why)) != MXS_OK) {
            strcpy(key, "-");
            return "bad-domain";
        }
        memset(&in, 0, sizeof(in));
        in.mode = mode;
        in.explicit_key = explicit_key;
        route_decide(&in, &out, why, sizeof(why));
    }
    if (a->domain != NULL && a->tag != ADDR_TAG_NONE) {
        *valias = addr_plain(a, &tags); /* queued under the tagging design */
    } else if (a->domain != NULL) {
        char *asked = addr_plain(a, &tags); /* the key the MTA sends */

        route_reply(ROUTE_MAP_VALIAS, &out, key, asked,
                    "virtual:", "smtp:", &status, text, sizeof(text));
        *valias = strcmp(status, "OK") == 0 ? xstrdup(text) : NULL;
        free(asked);
    }
    return route_action_name(out.action);
}

/* check_valias - the invariants of a valias answer */
static void
check_valias(const char *name, const struct addr *a, const char *valias)
{
    struct addr b;
    char *arg, why[256];
    size_t len = strlen(valias) + 3;

    check_int(name, "valias answer has no control byte", has_control(valias),
              0);
    arg = xmalloc(len);
    snprintf(arg, len, "<%s>", valias);
    check_int(name, "valias answer parses",
              addr_parse(arg, &tags, &b, why, sizeof(why)), MXS_OK);
    check_str(name, "valias answer keeps the domain", b.domain, a->domain);
    check_str(name, "valias answer keeps the local part", b.local, a->local);
    check_int(name, "valias answer carries no tag", b.tag, ADDR_TAG_NONE);
    addr_clear(&b);
    free(arg);
}

/* run_rcpt - every case of rcpt.txt; returns the number of cases */
static int
run_rcpt(const char *dir)
{
    char path[4096], key[DOMAIN_MAX + 1];
    struct fields fs = {NULL, 0, {NULL}};
    size_t cap = 0, len;
    int n = 0, explicit_key;
    FILE *f;

    snprintf(path, sizeof(path), "%s/rcpt.txt", dir);
    if ((f = fopen(path, "r")) == NULL) {
        check_str("corpus", "open", path, "a readable rcpt.txt");
        return 0;
    }
    while (next_case(f, &fs, &cap)) {
        const char *name = fs.f[fs.n - 1], *got;
        char *arg, *want_valias, *valias;
        enum route_mode mode;
        struct addr a;

        n++;
        if (fs.n != 6) {
            check_int(fs.line, "fields", (long long)fs.n, 6);
            continue;
        }
        mode = mode_of(fs.f[1], &explicit_key);
        arg = decode(fs.f[3], &len);
        want_valias = decode(fs.f[4], &len);
        got = decide(arg, mode, explicit_key, key, &a, &valias);
        check_str(name, "decision", got, fs.f[0]);
        check_str(name, "key", key, fs.f[2]);
        check_str(name, "valias", valias ? valias : "-", want_valias);
        if (valias != NULL)
            check_valias(name, &a, valias);
        addr_clear(&a);
        free(valias);
        free(arg);
        free(want_valias);
    }
    free(fs.line);
    fclose(f);
    return n;
}

/* run_values - every case of values.txt; returns the number of cases */
static int
run_values(const char *dir)
{
    struct fields fs = {NULL, 0, {NULL}};
    size_t cap = 0, len;
    char path[4096];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/values.txt", dir);
    if ((f = fopen(path, "r")) == NULL) {
        check_str("corpus", "open", path, "a readable values.txt");
        return 0;
    }
    while (next_case(f, &fs, &cap)) {
        const char *name = fs.f[fs.n - 1];
        enum route_mode mode = ROUTE_NONE;
        char *val;
        int rc;

        n++;
        if (fs.n != 4) {
            check_int(fs.line, "fields", (long long)fs.n, 4);
            continue;
        }
        val = decode(fs.f[2], &len);
        rc = route_mode_parse(val, len, &mode);
        check_str(name, "verdict", rc == MXS_OK ? "valid" : "invalid", fs.f[0]);
        check_str(name, "mode", rc == MXS_OK ? route_mode_name(mode) : "-",
                  fs.f[1]);
        free(val);
    }
    free(fs.line);
    fclose(f);
    return n;
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/corpus";
    int nr = run_rcpt(dir), nv = run_values(dir);

    printf("corpus: %d address cases, %d Redis value cases\n", nr, nv);
    /* The cases come from the files: an emptied or cut corpus must fail. */
    check_int("corpus", "address cases at least", nr >= 78 ? 78 : nr, 78);
    check_int("corpus", "value cases at least", nv >= 31 ? 31 : nv, 31);
    return check_done("test_corpus");
}
