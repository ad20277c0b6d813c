/*
 * fuzz_domain - libFuzzer target for the domain normaliser and the Redis
 * value reader
 *
 * domain_normalize() on any bytes (up to the first NUL) must either refuse
 * with a reason or give a key that is short enough, lower-case ASCII
 * letters, digits, '-', '_' and dots between non-empty labels of at most 63
 * bytes, and a fixed point (normalising it again changes nothing).  Its
 * candidates are suffixes of it.  route_mode_parse() on the same bytes
 * (NULs included, by length) accepts only blanks around a mode word.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domain.h"
#include "mxs.h"
#include "route.h"

/* check - abort, so libFuzzer keeps the input, when cond is false */
static void
check(int cond)
{
    if (!cond)
        abort();
}

/* check_key - the shape of a normalised domain */
static void
check_key(const char *k)
{
    size_t label = 0, len = strlen(k), i;

    check(len > 0 && len <= DOMAIN_MAX);
    for (i = 0; i <= len; i++) {
        if (k[i] == '.' || k[i] == '\0') {
            check(label > 0 && label <= 63);
            label = 0;
            continue;
        }
        check((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
              k[i] == '-' || k[i] == '_');
        label++;
    }
}

/* check_domain - normalise, then check shape, fixed point, candidates */
static void
check_domain(const char *in)
{
    char out[DOMAIN_MAX + 1], again[DOMAIN_MAX + 1], why[256];
    const char *cand[DOMAIN_MAX_CANDIDATES];
    size_t n, i, len;

    why[0] = '\0';
    if (domain_normalize(in, out, sizeof(out), why, sizeof(why)) != MXS_OK) {
        check(why[0] != '\0');
        return;
    }
    check_key(out);
    check(domain_normalize(out, again, sizeof(again), why, sizeof(why)) ==
          MXS_OK);
    check(strcmp(out, again) == 0);
    check(domain_equal(out, in));
    len = strlen(out);
    n = domain_candidates(out, 1, cand, DOMAIN_MAX_CANDIDATES);
    check(n >= 1 && cand[0] == out);
    for (i = 1; i < n; i++)
        check(cand[i] > out && cand[i] < out + len && cand[i][-1] == '.' &&
              strchr(cand[i], '.') != NULL);
}

/* check_mode - a Redis value is a mode only with blanks around the word */
static void
check_mode(const char *val, size_t len)
{
    enum route_mode mode;
    size_t b = 0, e = len;

    while (b < e && (val[b] == ' ' || val[b] == '\t'))
        b++;
    while (e > b && (val[e - 1] == ' ' || val[e - 1] == '\t'))
        e--;
    if (route_mode_parse(val, len, &mode) != MXS_OK)
        return;
    check(e - b == strlen(route_mode_name(mode)));
    check(strncasecmp(val + b, route_mode_name(mode), e - b) == 0);
    check(memchr(val, '\0', len) == NULL);
}

/* LLVMFuzzerTestOneInput - one input, as a domain and as a Redis value */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = xstrndup((const char *)data, size);

    check_domain(in);
    free(in);
    check_mode((const char *)data, size);
    return 0;
}
