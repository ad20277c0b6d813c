/*
 * test_util - mxs_escape() and the mxs_text builder
 *
 * Both make every per-recipient log line and rewritten address: an
 * escape that lets a control byte through, or a text that writes past its
 * buffer (ASan and valgrind run this too), would be a hole in every line.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mxs.h"

/* One mxs_escape() case: input (length len, or strlen), room, result. */
struct esc_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    size_t outlen;
    const char *want;
};

static const struct esc_case esc_cases[] = {
    {"plain, room to spare", "<bob@example.com>", 0, 64, "<bob@example.com>"},
    {"plain, just fits (len + 4)", "abcd", 0, 8, "abcd"},
    {"plain, one byte short: cut", "abcde", 0, 8, "abcd..."},
    {"control byte", "a\tb", 0, 64, "a\\x09b"},
    {"newline cannot start a new log line", "a\nb", 0, 64, "a\\x0ab"},
    {"backslash", "a\\b", 0, 64, "a\\x5cb"},
    {"DEL and a high byte", "\x7f\xc3", 0, 64, "\\x7f\\xc3"},
    {"NUL inside the length", "a\0b", 3, 64, "a\\x00b"},
    {"escaped, cut where the escape does not fit", "ab\x01xyz", 0, 9, "ab..."},
    {"empty", "", 0, 4, ""},
    {"no room for anything but the NUL", "abc", 0, 1, ""},
};

/* check_escape - every table case, and the length returned */
static void
check_escape(void)
{
    size_t i;

    for (i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        const struct esc_case *c = &esc_cases[i];
        char out[128];
        size_t len = c->len ? c->len : strlen(c->in), n;

        memset(out, 'Z', sizeof(out));
        n = mxs_escape(out, c->outlen, c->in, len);
        check_str(c->name, "text", out, c->want);
        check_int(c->name, "length", (long long)n, (long long)strlen(c->want));
        check_int(c->name, "nothing written past outlen", out[c->outlen], 'Z');
    }
    check_int("outlen 0 writes nothing", "length",
              (long long)mxs_escape(NULL, 0, "abc", 3), 0);
}

/* check_text - appending, cutting, and the terminator */
static void
check_text(void)
{
    char buf[8], big[64];
    struct mxs_text t;

    memset(buf, 'Z', sizeof(buf));
    mxs_text_init(&t, buf, 6);
    check_str("a new text is empty", "text", buf, "");
    mxs_text_put(&t, "ab");
    mxs_text_putc(&t, '@');
    mxs_text_putn(&t, "cdef", 2);
    check_str("pieces in order", "text", buf, "ab@cd");
    check_int("pieces in order", "cut", t.cut, 0);
    check_int("pieces in order", "len", (long long)t.len, 5);
    mxs_text_putc(&t, 'x');
    check_str("a full text takes no more", "text", buf, "ab@cd");
    check_int("a full text takes no more", "cut", t.cut, 1);
    check_int("nothing written past size", "byte", buf[6], 'Z');

    mxs_text_init(&t, big, sizeof(big));
    mxs_text_put(&t, "0123456789");
    mxs_text_put(&t, "");
    mxs_text_putn(&t, "abc", 0);
    check_str("empty pieces change nothing", "text", big, "0123456789");
    mxs_text_init(&t, big, 4);
    mxs_text_put(&t, "0123456789");
    check_str("a long piece is cut to size - 1", "text", big, "012");
    check_int("a long piece is cut to size - 1", "cut", t.cut, 1);
    check_int("a long piece is cut to size - 1", "len", (long long)t.len, 3);
}

int
main(void)
{
    check_escape();
    check_text();
    return check_done("test_util");
}
