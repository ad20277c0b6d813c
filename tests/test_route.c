/*
 * test_route - mode parsing and the per-recipient decision
 */
#include "check.h"
#include "mxs.h"
#include "route.h"

struct mode_case {
    const char *name;
    const char *val;
    size_t len;
    int rc;
    enum route_mode mode;
};

#define S(x) x, sizeof(x) - 1

static const struct mode_case mode_cases[] = {
    {"remote is a mode", S("remote"), MXS_OK, ROUTE_REMOTE},
    {"local is a mode", S("local"), MXS_OK, ROUTE_LOCAL},
    {"none is a mode", S("none"), MXS_OK, ROUTE_NONE},
    {"mixed case is accepted", S("ReMoTe"), MXS_OK, ROUTE_REMOTE},
    {"blanks around are ignored", S(" \tlocal \t"), MXS_OK, ROUTE_LOCAL},
    {"empty value is invalid", S(""), MXS_INVALID, ROUTE_NONE},
    {"blanks only are invalid", S("  "), MXS_INVALID, ROUTE_NONE},
    {"newline around is invalid", S("remote\n"), MXS_INVALID, ROUTE_NONE},
    {"NUL inside is invalid", S("rem\0ote"), MXS_INVALID, ROUTE_NONE},
    {"trailing NUL is invalid", S("remote\0"), MXS_INVALID, ROUTE_NONE},
    {"a prefix of a mode is invalid", S("rem"), MXS_INVALID, ROUTE_NONE},
    {"a mode with more text is invalid", S("remotes"), MXS_INVALID, ROUTE_NONE},
    {"two words are invalid", S("local remote"), MXS_INVALID, ROUTE_NONE},
    {"backup is a mode", S("backup"), MXS_OK, ROUTE_BACKUP},
    {"auto is a mode, in any case", S("AuTo"), MXS_OK, ROUTE_AUTO},
    {"blanks around backup are ignored", S("\tBACKUP "), MXS_OK, ROUTE_BACKUP},
    {"a made-up mode is invalid", S("primary"), MXS_INVALID, ROUTE_NONE},
    {"binary bytes are invalid", S("\xff\xfe"), MXS_INVALID, ROUTE_NONE},
};

struct decide_case {
    const char *name;
    enum route_mode mode;
    int explicit_key;
    enum addr_tag tag;
    const char *mailer;
    const char *host;
    enum addr_tag want;
};

static const struct decide_case decide_cases[] = {
    {"remote without macros is tagged", ROUTE_REMOTE, 1, ADDR_TAG_NONE, NULL,
     NULL, ADDR_TAG_REMOTE},
    {"remote that Postfix delivers virtually is tagged", ROUTE_REMOTE, 1,
     ADDR_TAG_NONE, "virtual", "d.test", ADDR_TAG_REMOTE},
    {"remote that Postfix sends by smtp to the domain is left", ROUTE_REMOTE, 1,
     ADDR_TAG_NONE, "smtp", "d.test", ADDR_TAG_NONE},
    {"remote that Sendmail sends by esmtp to the domain. is left", ROUTE_REMOTE,
     1, ADDR_TAG_NONE, "esmtp", "D.test.", ADDR_TAG_NONE},
    {"remote via a relayhost is tagged", ROUTE_REMOTE, 1, ADDR_TAG_NONE, "smtp",
     "[relay.test]", ADDR_TAG_REMOTE},
    {"remote via the relay transport is tagged", ROUTE_REMOTE, 1, ADDR_TAG_NONE,
     "relay", "d.test", ADDR_TAG_REMOTE},
    {"remote via lmtp is tagged", ROUTE_REMOTE, 1, ADDR_TAG_NONE, "lmtp",
     "private/dovecot-lmtp", ADDR_TAG_REMOTE},
    {"remote-tagged arrival with remote mode stays tagged", ROUTE_REMOTE, 1,
     ADDR_TAG_REMOTE, "smtp", "d.test", ADDR_TAG_REMOTE},
    {"local-tagged arrival with remote mode becomes remote", ROUTE_REMOTE, 1,
     ADDR_TAG_LOCAL, "virtual", "d.test", ADDR_TAG_REMOTE},
    {"local that Postfix delivers virtually is left", ROUTE_LOCAL, 1,
     ADDR_TAG_NONE, "virtual", "d.test", ADDR_TAG_NONE},
    {"local that Postfix delivers by lmtp is left", ROUTE_LOCAL, 1,
     ADDR_TAG_NONE, "lmtp", "private/dovecot-lmtp", ADDR_TAG_NONE},
    {"local that Sendmail delivers locally is left", ROUTE_LOCAL, 1,
     ADDR_TAG_NONE, "local", "", ADDR_TAG_NONE},
    {"explicit local that Postfix would relay gets the local tag", ROUTE_LOCAL,
     1, ADDR_TAG_NONE, "relay", "d.test", ADDR_TAG_LOCAL},
    {"explicit local that Postfix would send by smtp gets the local tag",
     ROUTE_LOCAL, 1, ADDR_TAG_NONE, "smtp", "d.test", ADDR_TAG_LOCAL},
    {"default local never gets the local tag", ROUTE_LOCAL, 0, ADDR_TAG_NONE,
     "smtp", "gmail.test", ADDR_TAG_NONE},
    {"local without macros is left", ROUTE_LOCAL, 1, ADDR_TAG_NONE, NULL, NULL,
     ADDR_TAG_NONE},
    {"remote-tagged arrival with local mode is untagged", ROUTE_LOCAL, 1,
     ADDR_TAG_REMOTE, "smtp", "d.test", ADDR_TAG_NONE},
    {"local-tagged arrival with local mode keeps the tag", ROUTE_LOCAL, 1,
     ADDR_TAG_LOCAL, "virtual", "d.test", ADDR_TAG_LOCAL},
    {"backup that Postfix delivers virtually is tagged remote", ROUTE_BACKUP, 1,
     ADDR_TAG_NONE, "virtual", "d.test", ADDR_TAG_REMOTE},
    {"backup that Postfix relays is tagged remote", ROUTE_BACKUP, 1,
     ADDR_TAG_NONE, "relay", "d.test", ADDR_TAG_REMOTE},
    {"backup that Postfix sends by smtp to the domain is left", ROUTE_BACKUP, 1,
     ADDR_TAG_NONE, "smtp", "d.test", ADDR_TAG_NONE},
    {"backup without macros is tagged", ROUTE_BACKUP, 0, ADDR_TAG_NONE, NULL,
     NULL, ADDR_TAG_REMOTE},
    {"backup strips a forged local tag", ROUTE_BACKUP, 1, ADDR_TAG_LOCAL,
     "virtual", "d.test", ADDR_TAG_REMOTE},
    {"backup via a relayhost is tagged", ROUTE_BACKUP, 1, ADDR_TAG_NONE, "smtp",
     "[relay.test]", ADDR_TAG_REMOTE},
    {"unresolved auto is no opinion", ROUTE_AUTO, 1, ADDR_TAG_NONE, "relay",
     "d.test", ADDR_TAG_NONE},
    {"unresolved auto strips a forged tag", ROUTE_AUTO, 1, ADDR_TAG_REMOTE,
     NULL, NULL, ADDR_TAG_NONE},
    {"none leaves a plain address", ROUTE_NONE, 0, ADDR_TAG_NONE, "smtp",
     "d.test", ADDR_TAG_NONE},
    {"none strips a forged remote tag", ROUTE_NONE, 0, ADDR_TAG_REMOTE, NULL,
     NULL, ADDR_TAG_NONE},
    {"none strips a forged local tag", ROUTE_NONE, 1, ADDR_TAG_LOCAL, "virtual",
     "d.test", ADDR_TAG_NONE},
};

int
main(void)
{
    enum route_mode mode;
    size_t i;

    for (i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++) {
        const struct mode_case *c = &mode_cases[i];
        int rc;

        mode = ROUTE_NONE;
        rc = route_mode_parse(c->val, c->len, &mode);
        check_int(c->name, "status", rc, c->rc);
        if (rc == MXS_OK)
            check_int(c->name, "mode", mode, c->mode);
    }
    for (i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
        const struct decide_case *c = &decide_cases[i];
        struct route_in in = {c->mode,  c->explicit_key, c->tag,
                              "d.test", c->mailer,       c->host};
        char why[256] = "";

        check_int(c->name, "tag", route_decide(&in, why, sizeof(why)), c->want);
        check_int(c->name, "why is given", why[0] != '\0', 1);
    }
    check_str("mode names", "remote", route_mode_name(ROUTE_REMOTE), "remote");
    check_str("mode names", "backup", route_mode_name(ROUTE_BACKUP), "backup");
    check_str("mode names", "auto", route_mode_name(ROUTE_AUTO), "auto");
    check_str("mode names", "out of range", route_mode_name(ROUTE_NMODES), "?");
    check_int("Sendmail esmtp is an SMTP mailer", "smtp",
              route_mailer_is_smtp("esmtp"), 1);
    check_int("virtual is not an SMTP mailer", "smtp",
              route_mailer_is_smtp("virtual"), 0);
    return check_done("test_route");
}
