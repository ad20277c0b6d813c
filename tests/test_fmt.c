/*
 * test_fmt - fmt_print() gives what snprintf() gives, text and length, for the
 * %s-only fast path and for the formats it hands to vsnprintf(), at every
 * buffer size from none to room to spare
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fmt.h"

struct tcase {
    const char *name;
    const char *fmt;
    const char *a, *b, *c;
};

static const struct tcase cases[] = {
    {"plain text", "no conversions at all", NULL, NULL, NULL},
    {"empty format", "", NULL, NULL, NULL},
    {"one string", "rcpt=%s", "<bob@example.com>", NULL, NULL},
    {"three strings", "%s: domain=%s mode=%s", "NOQUEUE", "example.com",
     "remote"},
    {"empty strings", "[%s][%s]%s", "", "", ""},
    {"percent sign", "100%% of %s", "mail", NULL, NULL},
    {"percent at the end", "a %s b %%", "x", NULL, NULL},
    {"strings back to back", "%s%s%s", "ab", "cd", "ef"},
    {"not only strings", "%s has %d keys", "redis", NULL, NULL},
    {"a width", "%-8s|", "ab", NULL, NULL},
};

/* one - compare fmt_print() and snprintf() for a case at every size to 40 */
static void
one(const struct tcase *t)
{
    char got[64], want[64], what[32];
    size_t len;
    int gn, wn;

    for (len = 0; len <= 40; len++) {
        memset(got, 'X', sizeof(got));
        memset(want, 'X', sizeof(want));
        if (strstr(t->fmt, "%d") != NULL) {
            gn = fmt_print(got, len, t->fmt, t->a, 7);
            wn = snprintf(want, len, t->fmt, t->a, 7);
        } else {
            gn = fmt_print(got, len, t->fmt, t->a, t->b, t->c);
            wn = snprintf(want, len, t->fmt, t->a, t->b, t->c);
        }
        snprintf(what, sizeof(what), "size %zu: length", len);
        check_int(t->name, what, gn, wn);
        snprintf(what, sizeof(what), "size %zu: bytes", len);
        check_int(t->name, what, memcmp(got, want, sizeof(got)) == 0, 1);
    }
}

int
main(void)
{
    const char *volatile none = NULL;
    char got[32];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        one(&cases[i]);
    /* glibc prints a NULL string as "(null)"; so does the fast path */
    fmt_print(got, sizeof(got), "[%s]", none);
    check_str("null string", "text", got, "[(null)]");
    return check_done("test_fmt");
}
