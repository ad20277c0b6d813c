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
    struct route_in in;
    enum route_action action;
    enum route_rcpt rcpt;
    enum route_mode mode;
};

/* in: failed, mode, explicit_key, self_mx, on_error_default, default */
static const struct decide_case decide_cases[] = {
    {"remote by a key goes to the MX hosts, untrusted refused",
     {0, ROUTE_REMOTE, 1, 0, 0, ROUTE_NONE},
     ROUTE_ACT_REMOTE,
     ROUTE_RCPT_REFUSE,
     ROUTE_REMOTE},
    {"backup goes to the better MX hosts, untrusted only if they accept",
     {0, ROUTE_BACKUP, 1, 0, 0, ROUTE_NONE},
     ROUTE_ACT_REMOTE,
     ROUTE_RCPT_VERIFY,
     ROUTE_BACKUP},
    {"remote while the best MX is this server is held, for every client",
     {0, ROUTE_REMOTE, 1, 1, 0, ROUTE_NONE},
     ROUTE_ACT_HOLD,
     ROUTE_RCPT_HOLD,
     ROUTE_REMOTE},
    {"backup while the best MX is this server is held",
     {0, ROUTE_BACKUP, 1, 1, 0, ROUTE_NONE},
     ROUTE_ACT_HOLD,
     ROUTE_RCPT_HOLD,
     ROUTE_BACKUP},
    {"local by a key goes to the mailbox here",
     {0, ROUTE_LOCAL, 1, 0, 0, ROUTE_NONE},
     ROUTE_ACT_LOCAL,
     ROUTE_RCPT_ACCEPT,
     ROUTE_LOCAL},
    {"local as the default leaves the MTA's routing",
     {0, ROUTE_LOCAL, 0, 0, 0, ROUTE_LOCAL},
     ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT,
     ROUTE_LOCAL},
    {"remote as the default routes remote",
     {0, ROUTE_REMOTE, 0, 0, 0, ROUTE_REMOTE},
     ROUTE_ACT_REMOTE,
     ROUTE_RCPT_REFUSE,
     ROUTE_REMOTE},
    {"none is no opinion",
     {0, ROUTE_NONE, 1, 0, 0, ROUTE_NONE},
     ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT,
     ROUTE_NONE},
    {"unresolved auto is no opinion",
     {0, ROUTE_AUTO, 1, 0, 0, ROUTE_NONE},
     ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT,
     ROUTE_AUTO},
    {"a failed lookup is temp, whatever the mode said",
     {1, ROUTE_REMOTE, 1, 0, 0, ROUTE_REMOTE},
     ROUTE_ACT_TEMP,
     ROUTE_RCPT_TEMP,
     ROUTE_NONE},
    {"a failed lookup with on_error default routes by a remote default",
     {1, ROUTE_NONE, 0, 0, 1, ROUTE_REMOTE},
     ROUTE_ACT_REMOTE,
     ROUTE_RCPT_TEMP,
     ROUTE_REMOTE},
    {"a failed lookup never refuses a backup default's recipients either",
     {1, ROUTE_NONE, 0, 0, 1, ROUTE_BACKUP},
     ROUTE_ACT_REMOTE,
     ROUTE_RCPT_TEMP,
     ROUTE_BACKUP},
    {"a failed lookup never earns local delivery from a local default",
     {1, ROUTE_NONE, 0, 0, 1, ROUTE_LOCAL},
     ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT,
     ROUTE_LOCAL},
    {"a failed lookup with an auto default is none",
     {1, ROUTE_NONE, 0, 0, 1, ROUTE_AUTO},
     ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT,
     ROUTE_NONE},
};

struct reply_case {
    const char *name;
    enum route_map map;
    enum route_action action;
    enum route_rcpt rcpt;
    const char *local; /* the instance's local transport, "" unknown */
    const char *status, *text;
};

static const struct reply_case reply_cases[] = {
    {"transport: remote is the remote transport", ROUTE_MAP_TRANSPORT,
     ROUTE_ACT_REMOTE, ROUTE_RCPT_REFUSE, "virtual:", "OK", "smtp:"},
    {"transport: local is the local transport", ROUTE_MAP_TRANSPORT,
     ROUTE_ACT_LOCAL, ROUTE_RCPT_ACCEPT, "lmtp:unix:private/dovecot-lmtp", "OK",
     "lmtp:unix:private/dovecot-lmtp"},
    {"transport: local with no known transport is not found",
     ROUTE_MAP_TRANSPORT, ROUTE_ACT_LOCAL, ROUTE_RCPT_ACCEPT, "", "NOTFOUND",
     ""},
    {"transport: hold is the retry transport with 4.4.6", ROUTE_MAP_TRANSPORT,
     ROUTE_ACT_HOLD, ROUTE_RCPT_HOLD, "virtual:", "OK",
     "retry:4.4.6 the best MX of d.test is this server"},
    {"transport: none is not found", ROUTE_MAP_TRANSPORT, ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT, "virtual:", "NOTFOUND", ""},
    {"valias: remote answers the address itself", ROUTE_MAP_VALIAS,
     ROUTE_ACT_REMOTE, ROUTE_RCPT_VERIFY, "virtual:", "OK", "Bob@D.test"},
    {"valias: held answers the address itself", ROUTE_MAP_VALIAS,
     ROUTE_ACT_HOLD, ROUTE_RCPT_HOLD, "virtual:", "OK", "Bob@D.test"},
    {"valias: local is not found (local aliases apply)", ROUTE_MAP_VALIAS,
     ROUTE_ACT_LOCAL, ROUTE_RCPT_ACCEPT, "virtual:", "NOTFOUND", ""},
    {"rcpt: remote refuses untrusted clients with 550 5.7.1", ROUTE_MAP_RCPT,
     ROUTE_ACT_REMOTE, ROUTE_RCPT_REFUSE, "virtual:", "OK",
     "550 5.7.1 mail for d.test is not accepted here: its mail exchanger is "
     "elsewhere"},
    {"rcpt: backup asks the better MX", ROUTE_MAP_RCPT, ROUTE_ACT_REMOTE,
     ROUTE_RCPT_VERIFY, "virtual:", "OK", "reject_unverified_recipient"},
    {"rcpt: hold is 450 4.4.6", ROUTE_MAP_RCPT, ROUTE_ACT_HOLD, ROUTE_RCPT_HOLD,
     "virtual:", "OK",
     "450 4.4.6 the best MX of d.test is this server: try again later"},
    {"rcpt: a default standing in for a failed lookup makes them wait",
     ROUTE_MAP_RCPT, ROUTE_ACT_REMOTE, ROUTE_RCPT_TEMP, "virtual:", "OK",
     "451 4.3.0 mail routing temporarily unavailable, try again later"},
    {"rcpt: local has no objection", ROUTE_MAP_RCPT, ROUTE_ACT_LOCAL,
     ROUTE_RCPT_ACCEPT, "virtual:", "NOTFOUND", ""},
    {"mode: remote", ROUTE_MAP_MODE, ROUTE_ACT_REMOTE, ROUTE_RCPT_REFUSE,
     "virtual:", "OK", "remote"},
    {"mode: local even with no Postfix transport", ROUTE_MAP_MODE,
     ROUTE_ACT_LOCAL, ROUTE_RCPT_ACCEPT, "", "OK", "local"},
    {"mode: hold", ROUTE_MAP_MODE, ROUTE_ACT_HOLD, ROUTE_RCPT_HOLD, "", "OK",
     "hold"},
    {"mode: none is not found", ROUTE_MAP_MODE, ROUTE_ACT_NONE,
     ROUTE_RCPT_ACCEPT, "", "NOTFOUND", ""},
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
        struct route_out out;
        char why[256] = "";

        route_decide(&c->in, &out, why, sizeof(why));
        check_int(c->name, "action", out.action, c->action);
        check_int(c->name, "rcpt", out.rcpt, c->rcpt);
        check_int(c->name, "mode", out.mode, c->mode);
        check_int(c->name, "why is given", why[0] != '\0', 1);
    }
    for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
        const struct reply_case *c = &reply_cases[i];
        struct route_out out = {c->action, c->rcpt, ROUTE_REMOTE};
        const char *status = NULL;
        char text[256];

        route_reply(c->map, &out, "d.test", "Bob@D.test", c->local,
                    "smtp:", &status, text, sizeof(text));
        check_str(c->name, "status", status, c->status);
        check_str(c->name, "text", text, c->text);
    }
    {
        static const char *const want[ROUTE_NWORDS][2] = {
            {"NOTFOUND", ""},
            {"OK", "550 5.1.1 Bob@D.test: recipient address rejected: the "
                   "domain's better MX refuses it"},
            {"OK", "450 4.1.1 Bob@D.test: recipient address not verified "
                   "yet: try again later"}};
        const char *status = NULL;
        char text[256];
        int w;

        for (w = 0; w < ROUTE_NWORDS; w++) {
            route_verified((enum route_word)w, "Bob@D.test", &status, text,
                           sizeof(text));
            check_str("verify answers, by the better MX's word", "status",
                      status, want[w][0]);
            check_str("verify answers, by the better MX's word", "text", text,
                      want[w][1]);
        }
    }
    check_str("mode names", "remote", route_mode_name(ROUTE_REMOTE), "remote");
    check_str("mode names", "backup", route_mode_name(ROUTE_BACKUP), "backup");
    check_str("mode names", "auto", route_mode_name(ROUTE_AUTO), "auto");
    check_str("mode names", "out of range", route_mode_name(ROUTE_NMODES), "?");
    check_str("action names", "hold", route_action_name(ROUTE_ACT_HOLD),
              "hold");
    check_int("map names", "transport", route_map_of("transport"),
              ROUTE_MAP_TRANSPORT);
    check_int("map names", "mode", route_map_of("mode"), ROUTE_MAP_MODE);
    check_int("map names", "unknown", route_map_of("mxswitch"), ROUTE_NMAPS);
    check_str("map names", "rcpt", route_map_name(ROUTE_MAP_RCPT), "rcpt");
    return check_done("test_route");
}
