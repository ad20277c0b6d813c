/*
 * test_corpus - the hostile input corpus through the milter's pure path
 *
 * usage: test_corpus [CORPUS-DIR]   (default tests/corpus)
 *
 * Each case of rcpt.txt goes the way mlfi.c takes a recipient: addr_parse,
 * domain_normalize (unless there is no domain or a literal), route_decide
 * with the mode the case names, addr_format when the tag must change; the
 * decision, the key and the added address must be the case's.  Over every
 * case the invariants hold: an added recipient has no control byte, has
 * the original's domain byte for byte, and is not the original (so exactly
 * one delete goes with exactly one add); it parses back with the tag the
 * decision chose.  Each case of values.txt goes through route_mode_parse,
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
 * decide - one recipient the way mlfi.c takes it
 *
 * Returns "rewrite", "keep", "bad-addr" or "bad-domain"; key gets the
 * normalised domain or "-", *added the new address for a rewrite.
 */
static const char *
decide(const char *arg, enum route_mode mode, int explicit_key, char *key,
       struct addr *a, char **added)
{
    struct route_in in;
    enum addr_tag want = ADDR_TAG_NONE;
    char why[256];

    *added = NULL;
    strcpy(key, "-");
    if (addr_parse(arg, &tags, a, why, sizeof(why)) != MXS_OK)
        return "bad-addr";
    if (a->domain != NULL && !a->literal) {
        if (domain_normalize(a->domain, key, DOMAIN_MAX + 1, why,
                             sizeof(why)) != MXS_OK) {
            strcpy(key, "-");
            return "bad-domain";
        }
        memset(&in, 0, sizeof(in));
        in.mode = mode;
        in.explicit_key = explicit_key;
        in.tag = a->tag;
        in.domain = key;
        want = route_decide(&in, why, sizeof(why));
    }
    if (want == a->tag)
        return "keep";
    *added = addr_format(a, &tags, want);
    return "rewrite";
}

/* check_added - the invariants of one replacement recipient */
static void
check_added(const char *name, const char *arg, const struct addr *a,
            const char *added)
{
    struct addr b;
    char why[256];

    check_int(name, "added address has no control byte", has_control(added), 0);
    check_int(name, "added address differs from the deleted one",
              strcmp(added, arg) != 0, 1);
    check_int(name, "added address parses",
              addr_parse(added, &tags, &b, why, sizeof(why)), MXS_OK);
    check_str(name, "added address keeps the domain", b.domain, a->domain);
    check_str(name, "added address keeps the local part", b.local, a->local);
    addr_clear(&b);
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
        char *arg, *want_added, *added;
        enum route_mode mode;
        struct addr a;

        n++;
        if (fs.n != 6) {
            check_int(fs.line, "fields", (long long)fs.n, 6);
            continue;
        }
        mode = mode_of(fs.f[1], &explicit_key);
        arg = decode(fs.f[3], &len);
        want_added = decode(fs.f[4], &len);
        got = decide(arg, mode, explicit_key, key, &a, &added);
        check_str(name, "decision", got, fs.f[0]);
        check_str(name, "key", key, fs.f[2]);
        check_str(name, "added", added ? added : "-", want_added);
        if (added != NULL)
            check_added(name, arg, &a, added);
        addr_clear(&a);
        free(added);
        free(arg);
        free(want_added);
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
