/*
 * test_addr - address parsing, tagging and ORCPT encoding
 */
#include <stdlib.h>

#include "addr.h"
#include "check.h"
#include "mxs.h"

struct parse_case {
    const char *name;
    const char *arg;
    int rc;
    const char *local;
    const char *domain;
    int literal;
    enum addr_tag tag;
    const char *remote; /* addr_format with the remote tag */
    const char *plain;  /* addr_format untagged */
};

static const struct parse_case parse_cases[] = {
    {"plain address splits at the @", "<bob@example.com>", MXS_OK, "bob",
     "example.com", 0, ADDR_TAG_NONE, "<bob+mx-remote@example.com>",
     "<bob@example.com>"},
    {"address without brackets is accepted", "bob@example.com", MXS_OK, "bob",
     "example.com", 0, ADDR_TAG_NONE, "<bob+mx-remote@example.com>",
     "<bob@example.com>"},
    {"domain case is kept as written", "<Bob@Example.COM>", MXS_OK, "Bob",
     "Example.COM", 0, ADDR_TAG_NONE, "<Bob+mx-remote@Example.COM>",
     "<Bob@Example.COM>"},
    {"existing +detail is kept before the tag", "<bob+news@d.test>", MXS_OK,
     "bob+news", "d.test", 0, ADDR_TAG_NONE, "<bob+news+mx-remote@d.test>",
     "<bob+news@d.test>"},
    {"remote tag is recognised and removed", "<bob+mx-remote@d.test>", MXS_OK,
     "bob", "d.test", 0, ADDR_TAG_REMOTE, "<bob+mx-remote@d.test>",
     "<bob@d.test>"},
    {"local tag is recognised case-insensitively", "<bob+MX-Local@d.test>",
     MXS_OK, "bob", "d.test", 0, ADDR_TAG_LOCAL, "<bob+mx-remote@d.test>",
     "<bob@d.test>"},
    {"repeated tags all go, the last one counts (fuzz_addr)",
     "<bob+mx-remote+mx-local@d.test>", MXS_OK, "bob", "d.test", 0,
     ADDR_TAG_LOCAL, "<bob+mx-remote@d.test>", "<bob@d.test>"},
    {"an escaped delimiter is not a tag (fuzz_addr)", "<a\\+mx-local@d.test>",
     MXS_OK, "a\\+mx-local", "d.test", 0, ADDR_TAG_NONE,
     "<a\\+mx-local+mx-remote@d.test>", "<a\\+mx-local@d.test>"},
    {"a bare tag is a local part, not a tag", "<+mx-remote@d.test>", MXS_OK,
     "+mx-remote", "d.test", 0, ADDR_TAG_NONE, "<+mx-remote+mx-remote@d.test>",
     "<+mx-remote@d.test>"},
    {"tag text without the delimiter is not a tag", "<bobmx-remote@d.test>",
     MXS_OK, "bobmx-remote", "d.test", 0, ADDR_TAG_NONE,
     "<bobmx-remote+mx-remote@d.test>", "<bobmx-remote@d.test>"},
    {"quoted local part gets the tag inside the quotes",
     "<\"john doe\"@d.test>", MXS_OK, "\"john doe\"", "d.test", 0,
     ADDR_TAG_NONE, "<\"john doe+mx-remote\"@d.test>", "<\"john doe\"@d.test>"},
    {"@ and + inside quotes do not split", "<\"a@b+c\"@d.test>", MXS_OK,
     "\"a@b+c\"", "d.test", 0, ADDR_TAG_NONE, "<\"a@b+c+mx-remote\"@d.test>",
     "<\"a@b+c\"@d.test>"},
    {"tag inside quotes is recognised", "<\"john doe+mx-remote\"@d.test>",
     MXS_OK, "\"john doe\"", "d.test", 0, ADDR_TAG_REMOTE,
     "<\"john doe+mx-remote\"@d.test>", "<\"john doe\"@d.test>"},
    {"escaped quote inside a quoted local part", "<\"a\\\"b\"@d.test>", MXS_OK,
     "\"a\\\"b\"", "d.test", 0, ADDR_TAG_NONE, "<\"a\\\"b+mx-remote\"@d.test>",
     "<\"a\\\"b\"@d.test>"},
    {"source route is dropped", "<@a.test,@b.test:bob@c.test>", MXS_OK, "bob",
     "c.test", 0, ADDR_TAG_NONE, "<bob+mx-remote@c.test>", "<bob@c.test>"},
    {"IPv4 address literal is flagged", "<bob@[192.0.2.1]>", MXS_OK, "bob",
     "[192.0.2.1]", 1, ADDR_TAG_NONE, "<bob+mx-remote@[192.0.2.1]>",
     "<bob@[192.0.2.1]>"},
    {"IPv6 address literal is flagged", "<bob@[IPv6:2001:db8::1]>", MXS_OK,
     "bob", "[IPv6:2001:db8::1]", 1, ADDR_TAG_NONE,
     "<bob+mx-remote@[IPv6:2001:db8::1]>", "<bob@[IPv6:2001:db8::1]>"},
    {"postmaster without domain has no domain", "<postmaster>", MXS_OK,
     "postmaster", NULL, 0, ADDR_TAG_NONE, "<postmaster+mx-remote>",
     "<postmaster>"},
    {"tagged address without domain keeps no domain (fuzz_addr)",
     "<postmaster+mx-remote>", MXS_OK, "postmaster", NULL, 0, ADDR_TAG_REMOTE,
     "<postmaster+mx-remote>", "<postmaster>"},
    {"null address has no domain", "<>", MXS_OK, "", NULL, 0, ADDR_TAG_NONE,
     "<+mx-remote>", "<>"},
    {"UTF-8 local part and domain are kept", "<j\xc3\xbcrg@b\xc3\xbc.de>",
     MXS_OK, "j\xc3\xbcrg", "b\xc3\xbc.de", 0, ADDR_TAG_NONE,
     "<j\xc3\xbcrg+mx-remote@b\xc3\xbc.de>", "<j\xc3\xbcrg@b\xc3\xbc.de>"},
    {"= in the local part is xtext-encoded", "<a=b@d.test>", MXS_OK, "a=b",
     "d.test", 0, ADDR_TAG_NONE, "<a=b+mx-remote@d.test>", "<a=b@d.test>"},
    {"missing > is malformed", "<bob@d.test", MXS_INVALID, NULL, NULL, 0,
     ADDR_TAG_NONE, NULL, NULL},
    {"missing < is malformed", "bob@d.test>", MXS_INVALID, NULL, NULL, 0,
     ADDR_TAG_NONE, NULL, NULL},
    {"empty domain is malformed", "<bob@>", MXS_INVALID, NULL, NULL, 0,
     ADDR_TAG_NONE, NULL, NULL},
    {"empty local part is malformed", "<@d.test>", MXS_INVALID, NULL, NULL, 0,
     ADDR_TAG_NONE, NULL, NULL},
    {"empty quoted local part is malformed (fuzz_addr)", "<\"\"@d.test>",
     MXS_INVALID, NULL, NULL, 0, ADDR_TAG_NONE, NULL, NULL},
    {"a dangling backslash is malformed (fuzz_addr)", "<bob\\>", MXS_INVALID,
     NULL, NULL, 0, ADDR_TAG_NONE, NULL, NULL},
    {"two @ signs are malformed", "<a@b@c.test>", MXS_INVALID, NULL, NULL, 0,
     ADDR_TAG_NONE, NULL, NULL},
    {"unbalanced quote is malformed", "<\"bob@d.test>", MXS_INVALID, NULL, NULL,
     0, ADDR_TAG_NONE, NULL, NULL},
    {"text after a quoted local part is malformed", "<\"a\"b@d.test>",
     MXS_INVALID, NULL, NULL, 0, ADDR_TAG_NONE, NULL, NULL},
    {"CR LF in an address is malformed", "<bob@d.test>\r\nRCPT", MXS_INVALID,
     NULL, NULL, 0, ADDR_TAG_NONE, NULL, NULL},
    {"tab in an address is malformed", "<bo\tb@d.test>", MXS_INVALID, NULL,
     NULL, 0, ADDR_TAG_NONE, NULL, NULL},
    {"source route without colon is malformed", "<@a.test,bob@c.test>",
     MXS_INVALID, NULL, NULL, 0, ADDR_TAG_NONE, NULL, NULL},
    {"unterminated literal is malformed", "<bob@[192.0.2.1>", MXS_INVALID, NULL,
     NULL, 0, ADDR_TAG_NONE, NULL, NULL},
};

/* run_parse - one table row */
static void
run_parse(const struct parse_case *c)
{
    static const struct addr_tags tags = {'+', "mx-remote", "mx-local"};
    struct addr a;
    char why[256];
    char *s;
    int rc = addr_parse(c->arg, &tags, &a, why, sizeof(why));

    check_int(c->name, "status", rc, c->rc);
    if (rc != MXS_OK || c->rc != MXS_OK) {
        addr_clear(&a);
        return;
    }
    check_str(c->name, "local", a.local, c->local);
    check_str(c->name, "domain", a.domain, c->domain);
    check_int(c->name, "literal", a.literal, c->literal);
    check_int(c->name, "tag", a.tag, c->tag);
    s = addr_format(&a, &tags, ADDR_TAG_REMOTE);
    check_str(c->name, "remote form", s, c->remote);
    free(s);
    s = addr_format(&a, &tags, ADDR_TAG_NONE);
    check_str(c->name, "plain form", s, c->plain);
    free(s);
    addr_clear(&a);
}

struct key_case {
    const char *name;
    const char *arg; /* parsed with delimiter '+' and the usual tags */
    char delimiter;  /* passed to addr_key_local() */
    int rc;
    const char *want;
};

static const struct key_case key_cases[] = {
    {"plain local part is kept", "<ceo@d.test>", '+', MXS_OK, "ceo"},
    {"upper case folds to lower case", "<CeO@D.test>", '+', MXS_OK, "ceo"},
    {"+detail is removed", "<ceo+news@d.test>", '+', MXS_OK, "ceo"},
    {"everything from the first delimiter goes", "<ceo+a+b@d.test>", '+',
     MXS_OK, "ceo"},
    {"the mxswitch tag is gone before the detail", "<ceo+news+mx-remote@d.t>",
     '+', MXS_OK, "ceo"},
    {"a tag alone leaves the bare local part", "<Ceo+MX-Local@d.test>", '+',
     MXS_OK, "ceo"},
    {"a leading delimiter is not a detail", "<+news@d.test>", '+', MXS_OK,
     "+news"},
    {"another delimiter: '-' splits, '+' is kept", "<Ceo+x-news@d.test>", '-',
     MXS_OK, "ceo+x"},
    {"delimiter '=' splits", "<ceo=news@d.test>", '=', MXS_OK, "ceo"},
    {"delimiter '_' splits", "<first_last@d.test>", '_', MXS_OK, "first"},
    {"dots are kept as written", "<John.Doe@d.test>", '+', MXS_OK, "john.doe"},
    {"quotes of a plain local part are removed", "<\"CEO\"@d.test>", '+',
     MXS_OK, "ceo"},
    {"quoted local part loses its detail", "<\"ceo+news\"@d.test>", '+', MXS_OK,
     "ceo"},
    {"backslash escapes in quotes are removed", "<\"c\\eo\"@d.test>", '+',
     MXS_OK, "ceo"},
    {"quoted space: no address key", "<\"john doe\"@d.test>", '+', MXS_NOMATCH,
     NULL},
    {"quoted @: no address key", "<\"a@b\"@d.test>", '+', MXS_NOMATCH, NULL},
    {"escaped quote: no address key", "<\"a\\\"b\"@d.test>", '+', MXS_NOMATCH,
     NULL},
    {"odd bytes after the delimiter are dropped with the detail",
     "<\"ceo+a b\"@d.test>", '+', MXS_OK, "ceo"},
    {"UTF-8 bytes are kept, only ASCII folds", "<J\xc3\x9cRG@d.test>", '+',
     MXS_OK, "j\xc3\x9crg"},
    {"null address: no address key", "<>", '+', MXS_NOMATCH, NULL},
    {"64 bytes is the longest key local part",
     "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+x@d>",
     '+', MXS_OK,
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    {"65 bytes: no address key",
     "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@d>",
     '+', MXS_NOMATCH, NULL},
};

/* run_key - one addr_key_local() case */
static void
run_key(const struct key_case *c)
{
    static const struct addr_tags tags = {'+', "mx-remote", "mx-local"};
    char out[ADDR_KEY_LOCAL_MAX + 1], why[256];
    struct addr a;
    int rc;

    if (addr_parse(c->arg, &tags, &a, why, sizeof(why)) != MXS_OK) {
        check_str(c->name, "parse", why, "(parses)");
        return;
    }
    rc = addr_key_local(a.local, a.quoted, c->delimiter, out, sizeof(out), why,
                        sizeof(why));
    check_int(c->name, "status", rc, c->rc);
    if (rc == MXS_OK && c->rc == MXS_OK)
        check_str(c->name, "key local part", out, c->want);
    addr_clear(&a);
}

/* run_misc - cases that do not fit the table */
static void
run_misc(void)
{
    static const struct addr_tags dash = {'-', "ext", "int"};
    struct addr a;
    char big[ADDR_MAX + 16];
    char *s;

    addr_parse("<bob-ext@d.test>", &dash, &a, NULL, 0);
    check_int("other delimiter and tags are honoured", "tag", a.tag,
              ADDR_TAG_REMOTE);
    s = addr_format(&a, &dash, ADDR_TAG_LOCAL);
    check_str("other delimiter and tags are honoured", "local form", s,
              "<bob-int@d.test>");
    free(s);
    addr_clear(&a);

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    check_int("an address over ADDR_MAX bytes is refused", "status",
              addr_parse(big, &dash, &a, NULL, 0), MXS_INVALID);
    addr_clear(&a);
    /* <a...a-ext> is the longest form: 3 bytes of tag, 3 more */
    big[ADDR_MAX - 5] = '\0';
    check_int("an address with no room left for a tag is refused (fuzz_addr)",
              "status", addr_parse(big, &dash, &a, NULL, 0), MXS_INVALID);
    big[ADDR_MAX - 6] = '\0';
    check_int("an address that fits with its tag is taken", "status",
              addr_parse(big, &dash, &a, NULL, 0), MXS_OK);
    s = addr_format(&a, &dash, ADDR_TAG_REMOTE);
    check_int("and its tagged form fits ADDR_MAX", "length", (long)strlen(s),
              ADDR_MAX);
    addr_clear(&a);
    check_int("and is taken again", "status", addr_parse(s, &dash, &a, NULL, 0),
              MXS_OK);
    free(s);
    addr_clear(&a);
    addr_clear(NULL);
    check_str("tag names", "remote", addr_tag_name(ADDR_TAG_REMOTE), "remote");
}

int
main(void)
{
    size_t i;

    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
        run_parse(&parse_cases[i]);
    for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++)
        run_key(&key_cases[i]);
    run_misc();
    return check_done("test_addr");
}
