/*
 * test_verify - the pure half of verify.c: the RCPT TO argument of a
 * probe, and SMTP replies read from bytes (split, multi-line, broken)
 */
#include "check.h"
#include "mxs.h"
#include "verify.h"

struct arg_case {
    const char *name;
    const char *local;
    const char *domain;
    int rc;
    const char *want;
};

static const struct arg_case arg_cases[] = {
    {"a plain address is written as is", "bob", "bk.test", MXS_OK,
     "<bob@bk.test>"},
    {"dots and atext need no quotes", "a.b+c_d-e", "bk.test", MXS_OK,
     "<a.b+c_d-e@bk.test>"},
    {"a blank is quoted (Sendmail sends quoted parts dequoted)", "john doe",
     "bk.test", MXS_OK, "<\"john doe\"@bk.test>"},
    {"a quote and a backslash are escaped", "a\"b\\c", "bk.test", MXS_OK,
     "<\"a\\\"b\\\\c\"@bk.test>"},
    {"a leading dot is quoted", ".bob", "bk.test", MXS_OK,
     "<\".bob\"@bk.test>"},
    {"two dots are quoted", "b..ob", "bk.test", MXS_OK, "<\"b..ob\"@bk.test>"},
    {"CR LF can never reach the command", "bob\r\nRSET", "bk.test", MXS_INVALID,
     NULL},
    {"8-bit local part is refused", "j\xc3\xb6rg", "bk.test", MXS_INVALID,
     NULL},
    {"an empty local part is refused", "", "bk.test", MXS_INVALID, NULL},
    {"a domain with a blank is refused", "bob", "bk test", MXS_INVALID, NULL},
    {"a domain with a bracket is refused", "bob", "[127.0.0.1]", MXS_INVALID,
     NULL},
};

struct reply_case {
    const char *name;
    const char *in;
    int rc;
    int code;
    size_t used;
    const char *text;
};

static const struct reply_case reply_cases[] = {
    {"a one-line reply", "220 mx.bk.test ESMTP\r\n", MXS_OK, 220, 22,
     "mx.bk.test ESMTP"},
    {"a multi-line reply ends at the blank after the code",
     "250-mx.bk.test\r\n250-PIPELINING\r\n250 8BITMIME\r\nNEXT", MXS_OK, 250,
     46, "mx.bk.test PIPELINING 8BITMIME"},
    {"a bare LF ends a line too", "550 5.1.1 no such user\n", MXS_OK, 550, 23,
     "5.1.1 no such user"},
    {"a code alone is a reply", "250\r\n", MXS_OK, 250, 5, ""},
    {"no line end yet: more bytes needed", "250 ok", MXS_NOMATCH, 0, 0, ""},
    {"a continued reply not finished: more bytes", "250-a\r\n250-b\r\n",
     MXS_NOMATCH, 0, 0, "a b"},
    {"no digits: no SMTP reply", "hello\r\n", MXS_INVALID, 0, 0, ""},
    {"a code of 6xx is no reply", "600 what\r\n", MXS_INVALID, 0, 0, ""},
    {"a bad separator is no reply", "250+ok\r\n", MXS_INVALID, 0, 0, ""},
    {"control bytes in the text are masked", "550 a\001b\r\n", MXS_OK, 550, 9,
     "a?b"},
};

struct rcpt_case {
    const char *name;
    int code;
    const char *text;
    enum verify_result want;
};

static const struct rcpt_case rcpt_cases[] = {
    {"250: accepted", 250, "2.1.5 Ok", VERIFY_ACCEPTED},
    {"450: unknown", 450, "4.2.0 <a@bk.test>: greylisted", VERIFY_UNKNOWN},
    {"550 5.1.1: refused", 550, "5.1.1 <a@bk.test>: user unknown",
     VERIFY_REFUSED},
    {"550 without an enhanced code: refused", 550, "no such user here",
     VERIFY_REFUSED},
    {"550 5.1.10 (a three-digit detail): refused", 550,
     "5.1.10 RESOLVER.ADR.RecipientNotFound", VERIFY_REFUSED},
    {"504 5.5.2, our HELO name refused at RCPT: unknown", 504,
     "5.5.2 <vm>: Helo command rejected: need fully-qualified hostname",
     VERIFY_UNKNOWN},
    {"554 5.7.1, our address on a block list: unknown", 554,
     "5.7.1 Service unavailable; client host blocked", VERIFY_UNKNOWN},
    {"554 5.7.1 relaying refused: unknown", 554,
     "5.7.1 <a@bk.test>: Relay access denied", VERIFY_UNKNOWN},
    {"550 5.70.1: a subject of two digits is not 7: refused", 550, "5.70.1 odd",
     VERIFY_REFUSED},
    {"550 5.7 (no detail): no enhanced code: refused", 550, "5.7 odd",
     VERIFY_REFUSED},
};

int
main(void)
{
    size_t i;

    for (i = 0; i < sizeof(arg_cases) / sizeof(arg_cases[0]); i++) {
        const struct arg_case *c = &arg_cases[i];
        char out[128] = "";
        int rc = verify_rcpt_arg(c->local, c->domain, out, sizeof(out));

        check_int(c->name, "status", rc, c->rc);
        if (c->want != NULL)
            check_str(c->name, "argument", out, c->want);
    }
    {
        char out[16];

        check_int("an argument longer than the buffer is refused", "status",
                  verify_rcpt_arg("averyveryverylonguser", "bk.test", out,
                                  sizeof(out)),
                  MXS_INVALID);
        check_int(
            "a quoted one longer than the buffer is refused", "status",
            verify_rcpt_arg("a b c d e f g h", "bk.test", out, sizeof(out)),
            MXS_INVALID);
    }
    for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
        const struct reply_case *c = &reply_cases[i];
        char text[64];
        int code = 0;
        size_t used = 0;
        int rc = verify_reply_get(c->in, strlen(c->in), &code, &used, text,
                                  sizeof(text));

        check_int(c->name, "status", rc, c->rc);
        check_int(c->name, "code", code, c->code);
        check_int(c->name, "bytes used", (long long)used, (long long)c->used);
        if (rc != MXS_INVALID)
            check_str(c->name, "text", text, c->text);
    }
    {
        char text[8];
        int code = 0;
        size_t used = 0;

        verify_reply_get("550 a long refusal text\r\n", 25, &code, &used, text,
                         sizeof(text));
        check_str("reply text is cut to its buffer", "text", text, "a long ");
    }
    for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
        const struct rcpt_case *c = &rcpt_cases[i];

        check_int(c->name, "result", verify_rcpt_result(c->code, c->text),
                  c->want);
    }
    return check_done("test_verify");
}
