/*
 * test_domain - normalisation, subdomain candidates, host comparison
 */
#include "check.h"
#include "domain.h"
#include "mxs.h"

struct norm_case {
    const char *name;
    const char *in;
    int rc;
    const char *out;
};

static const struct norm_case norm_cases[] = {
    {"lower case is kept", "example.com", MXS_OK, "example.com"},
    {"upper case folds to lower case", "ExAmPle.COM", MXS_OK, "example.com"},
    {"one trailing dot is removed", "example.com.", MXS_OK, "example.com"},
    {"U-label becomes its A-label",
     "b\xc3\xbc"
     "cher.de",
     MXS_OK, "xn--bcher-kva.de"},
    {"uppercase U-label with trailing dot folds to A-label",
     "B\xc3\xbc"
     "cher.DE.",
     MXS_OK, "xn--bcher-kva.de"},
    {"uppercase non-ASCII letter folds",
     "B\xc3\x9c"
     "CHER.de",
     MXS_OK, "xn--bcher-kva.de"},
    {"A-label input stays", "XN--BCHER-KVA.de", MXS_OK, "xn--bcher-kva.de"},
    {"sharp s is kept (non-transitional)",
     "stra\xc3\x9f"
     "e.de",
     MXS_OK, "xn--strae-oqa.de"},
    {"underscore and digits are allowed", "_dmarc.x-1.test", MXS_OK,
     "_dmarc.x-1.test"},
    {"single label is allowed", "localhost", MXS_OK, "localhost"},
    {"empty domain is invalid", "", MXS_INVALID, NULL},
    {"a lone dot is invalid", ".", MXS_INVALID, NULL},
    {"two trailing dots are invalid", "example.com..", MXS_INVALID, NULL},
    {"empty label is invalid", "a..example.com", MXS_INVALID, NULL},
    {"leading dot is invalid", ".example.com", MXS_INVALID, NULL},
    {"space is invalid", "exa mple.com", MXS_INVALID, NULL},
    {"slash is invalid", "a/b.com", MXS_INVALID, NULL},
    {"invalid UTF-8 is invalid", "b\xc3(cher.de", MXS_INVALID, NULL},
    {"disallowed code point is invalid",
     "a\xe2\x80\x8f"
     "b.de",
     MXS_INVALID, NULL},
    {"64-byte label is invalid",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
     MXS_INVALID, NULL},
    {"63-byte label is valid",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
     MXS_OK,
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"},
};

struct cand_case {
    const char *name;
    const char *in;
    int subdomains;
    size_t n;
    const char *want[4];
};

static const struct cand_case cand_cases[] = {
    {"subdomain falls back to parents but not the TLD",
     "a.b.example.com",
     1,
     3,
     {"a.b.example.com", "b.example.com", "example.com"}},
    {"two labels give one candidate", "example.com", 1, 1, {"example.com"}},
    {"single label gives itself", "localhost", 1, 1, {"localhost"}},
    {"subdomains off gives only the domain",
     "a.b.example.com",
     0,
     1,
     {"a.b.example.com"}},
};

/* long_domain - a valid name of exactly len bytes (labels of 9 + dots) */
static void
long_domain(char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (i % 10 == 9) ? '.' : 'a';
    if (buf[len - 1] == '.')
        buf[len - 1] = 'a';
    buf[len] = '\0';
}

int
main(void)
{
    char out[DOMAIN_MAX + 1], why[256], big[300];
    const char *cand[DOMAIN_MAX_CANDIDATES];
    size_t i, j, n;

    for (i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
        const struct norm_case *c = &norm_cases[i];
        int rc = domain_normalize(c->in, out, sizeof(out), why, sizeof(why));

        check_int(c->name, "status", rc, c->rc);
        if (rc == MXS_OK && c->rc == MXS_OK)
            check_str(c->name, "normal form", out, c->out);
    }
    long_domain(big, 253);
    check_int("253-byte domain is valid", "status",
              domain_normalize(big, out, sizeof(out), NULL, 0), MXS_OK);
    long_domain(big, 254);
    check_int("254-byte domain is invalid", "status",
              domain_normalize(big, out, sizeof(out), NULL, 0), MXS_INVALID);
    long_domain(big, 255);
    check_int("255-byte domain is invalid", "status",
              domain_normalize(big, out, sizeof(out), NULL, 0), MXS_INVALID);

    for (i = 0; i < sizeof(cand_cases) / sizeof(cand_cases[0]); i++) {
        const struct cand_case *c = &cand_cases[i];

        n = domain_candidates(c->in, c->subdomains, cand,
                              DOMAIN_MAX_CANDIDATES);
        check_int(c->name, "count", (long long)n, (long long)c->n);
        for (j = 0; j < n && j < c->n; j++)
            check_str(c->name, "candidate", cand[j], c->want[j]);
    }
    n = domain_candidates("a.b.c.d.e", 1, cand, 2);
    check_int("candidates stop at the caller's maximum", "count", (long long)n,
              2);

    check_int("host equal with trailing dot and case", "equal",
              domain_equal("remote.test", "Remote.Test."), 1);
    check_int("U-label host equals its A-label domain", "equal",
              domain_equal("xn--bcher-kva.de", "b\xc3\xbc"
                                               "cher.de"),
              1);
    check_int("bracketed host is never the domain", "equal",
              domain_equal("remote.test", "[remote.test]"), 0);
    check_int("host with port is never the domain", "equal",
              domain_equal("remote.test", "remote.test:587"), 0);
    check_int("other host differs", "equal",
              domain_equal("remote.test", "relay.test"), 0);
    check_int("missing host differs", "equal",
              domain_equal("remote.test", NULL), 0);
    return check_done("test_domain");
}
