/*
 * fuzz_addr - libFuzzer target for the recipient parser
 *
 * Feeds any bytes to addr_parse() as the RCPT argument (or socket map key)
 * the MTA would pass (up to the first NUL, as the milter protocol delivers
 * it) and aborts when an invariant breaks:
 *  - every form addr_format() makes (plain, and with the remote and local
 *    tags of the earlier design, which queued mail may still carry) is
 *    free of control bytes, parses again, carries exactly the tag it was
 *    given, and has the original's local part and domain, byte for byte:
 *    tagging then stripping gives the original;
 *  - addr_plain(), the valias answer for an address with an earlier tag,
 *    parses back untagged with the same local part and domain.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "mxs.h"

static const struct addr_tags tags = {'+', "mx-remote", "mx-local"};

/* check - abort, so libFuzzer keeps the input, when cond is false */
static void
check(int cond)
{
    if (!cond)
        abort();
}

/* no_control - whether a string has no byte below 0x20 and no DEL */
static int
no_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* same - two optional strings are equal */
static int
same(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* check_form - one addr_format() output keeps the address and its tag */
static void
check_form(const struct addr *a, enum addr_tag tag)
{
    char *out = addr_format(a, &tags, tag);
    struct addr b;
    char why[256];

    check(no_control(out));
    check(addr_parse(out, &tags, &b, why, sizeof(why)) == MXS_OK);
    check(b.tag == tag);
    check(strcmp(b.local, a->local) == 0);
    check(same(b.domain, a->domain));
    check(b.literal == a->literal && b.quoted == a->quoted);
    addr_clear(&b);
    free(out);
}

/* check_plain - the valias answer: the same address, no tag */
static void
check_plain(const struct addr *a)
{
    char *x = addr_plain(a, &tags), *arg;
    size_t len = strlen(x) + 3;
    struct addr b;
    char why[256];

    check(no_control(x));
    arg = xmalloc(len);
    snprintf(arg, len, "<%s>", x);
    check(addr_parse(arg, &tags, &b, why, sizeof(why)) == MXS_OK);
    check(b.tag == ADDR_TAG_NONE);
    check(strcmp(b.local, a->local) == 0);
    check(same(b.domain, a->domain));
    addr_clear(&b);
    free(arg);
    free(x);
}

/* LLVMFuzzerTestOneInput - one input, as the RCPT argument */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *arg = xstrndup((const char *)data, size);
    struct addr a;
    char why[256];

    if (addr_parse(arg, &tags, &a, why, sizeof(why)) == MXS_OK) {
        check(no_control(a.local));
        check_form(&a, ADDR_TAG_NONE);
        /* "<>" parses (local "", no domain) but is never tagged: the
         * milter tags only recipients with a domain. */
        check(a.local[0] != '\0' || a.domain == NULL);
        if (a.local[0] != '\0') {
            check_form(&a, ADDR_TAG_REMOTE);
            check_form(&a, ADDR_TAG_LOCAL);
        }
        if (a.domain != NULL && a.local[0] != '\0')
            check_plain(&a);
        addr_clear(&a);
    } else {
        check(why[0] != '\0');
    }
    free(arg);
    return 0;
}
