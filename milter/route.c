/*
 * route.c - modes and the per-recipient decision; see route.h
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "mxs.h"
#include "route.h"

static const char *const mode_names[ROUTE_NMODES] = {"none", "local", "remote",
                                                     "backup", "auto"};

/*
 * route_mode_parse - read a mode from a Redis value
 *
 * Case-insensitive; spaces and tabs around the word are ignored.  Anything
 * else (empty, NUL or other bytes, an unknown word) is MXS_INVALID.
 */
int
route_mode_parse(const char *val, size_t len, enum route_mode *mode)
{
    size_t i;

    while (len > 0 && (val[0] == ' ' || val[0] == '\t')) {
        val++;
        len--;
    }
    while (len > 0 && (val[len - 1] == ' ' || val[len - 1] == '\t'))
        len--;
    for (i = 0; i < ROUTE_NMODES; i++) {
        if (strlen(mode_names[i]) == len &&
            strncasecmp(val, mode_names[i], len) == 0) {
            *mode = (enum route_mode)i;
            return MXS_OK;
        }
    }
    return MXS_INVALID;
}

/* route_mode_name - the word for a mode */
const char *
route_mode_name(enum route_mode mode)
{
    return (unsigned)mode < ROUTE_NMODES ? mode_names[mode] : "?";
}

/* route_action_name - the word for an action, as logs and explain show it */
const char *
route_action_name(enum route_action action)
{
    static const char *const names[ROUTE_NACTIONS] = {"none", "local", "remote",
                                                      "hold", "temp"};

    return (unsigned)action < ROUTE_NACTIONS ? names[action] : "?";
}

/*
 * route_decide - what the MTA does with one recipient, and what an
 * untrusted client gets at RCPT
 *
 * A failed lookup is TEMP (the MTA defers: nothing is lost), unless
 * routing.on_error is "default": then routing.default stands in (auto as
 * none).  Only an explicit local key (or DNS) earns local delivery: a
 * local default must never pull foreign domains into the mailboxes here.
 * Remote and backup while the best MX is still this server are held: the
 * MTA would loop back to itself and bounce at once, while DNS will catch
 * up with the panel's flip.  Backup routes like remote (the MTA skips MX
 * hosts at or below its own preference), but accepts from anyone what the
 * better MX accepts; remote refuses untrusted clients, as a domain whose
 * mail exchanger is elsewhere does.  A default standing in for a failed
 * lookup routes, but refuses no one for good: untrusted clients wait.
 */
void
route_decide(const struct route_in *in, struct route_out *out, char *why,
             size_t whylen)
{
    enum route_mode mode = in->mode;
    int explicit_key = in->explicit_key;

    out->rcpt = ROUTE_RCPT_ACCEPT;
    out->action = ROUTE_ACT_NONE;
    if (in->failed) {
        if (!in->on_error_default) {
            out->mode = ROUTE_NONE;
            out->action = ROUTE_ACT_TEMP;
            out->rcpt = ROUTE_RCPT_TEMP;
            mxs_why(why, whylen, "lookup failed: try again later");
            return;
        }
        mode = in->default_mode == ROUTE_AUTO ? ROUTE_NONE : in->default_mode;
        explicit_key = 0;
    }
    out->mode = mode;
    switch (mode) {
    case ROUTE_LOCAL:
        if (!explicit_key) {
            mxs_why(why, whylen,
                    "a local default never overrides the MTA's "
                    "routing");
            return;
        }
        out->action = ROUTE_ACT_LOCAL;
        mxs_why(why, whylen, "to the mailbox on this server");
        return;
    case ROUTE_REMOTE:
    case ROUTE_BACKUP:
        if (in->self_mx) {
            out->action = ROUTE_ACT_HOLD;
            out->rcpt = ROUTE_RCPT_HOLD;
            mxs_why(why, whylen,
                    "the best MX is still this server: held "
                    "until DNS names the new exchanger");
            return;
        }
        out->action = ROUTE_ACT_REMOTE;
        out->rcpt =
            mode == ROUTE_REMOTE ? ROUTE_RCPT_REFUSE : ROUTE_RCPT_VERIFY;
        if (in->failed) /* never refuse for good on a guess: wait */
            out->rcpt = ROUTE_RCPT_TEMP;
        mxs_why(why, whylen, "%s",
                mode == ROUTE_REMOTE ? "to the domain's MX hosts"
                                     : "to the MX hosts better than this one");
        return;
    default:
        mxs_why(why, whylen, "no opinion");
        return;
    }
}

static const char *const map_names[ROUTE_NMAPS] = {"transport", "valias",
                                                   "rcpt", "mode", "verify"};

/* route_map_of - the map a request names, or ROUTE_NMAPS */
enum route_map
route_map_of(const char *name)
{
    int m;

    for (m = 0; m < ROUTE_NMAPS; m++)
        if (strcmp(name, map_names[m]) == 0)
            break;
    return (enum route_map)m;
}

/* route_map_name - the name the MTA asks a map by */
const char *
route_map_name(enum route_map m)
{
    return (unsigned)m < ROUTE_NMAPS ? map_names[m] : "?";
}

/*
 * route_reply - what map m answers for a decision: *status "OK" with
 * text, or "NOTFOUND" with text ""
 *
 * domain is the normalised domain, key the address as the MTA asked;
 * local and remote are the instance's transports (local "" = unknown).
 * A TEMP action is the caller's to answer, and so is map verify for a
 * backup-mode recipient (NOTFOUND here): the better MX's word decides.
 */
void
route_reply(enum route_map m, const struct route_out *o, const char *domain,
            const char *key, const char *local, const char *remote,
            const char **status, char *text, size_t textlen)
{
    *status = "OK";
    text[0] = '\0';
    switch (m) {
    case ROUTE_MAP_TRANSPORT:
        if (o->action == ROUTE_ACT_REMOTE)
            fmt_print(text, textlen, "%s", remote);
        else if (o->action == ROUTE_ACT_LOCAL && local[0] != '\0')
            fmt_print(text, textlen, "%s", local);
        else if (o->action == ROUTE_ACT_HOLD)
            fmt_print(text, textlen,
                      "retry:4.4.6 the best MX of %s is this server", domain);
        break;
    case ROUTE_MAP_VALIAS:
        if (o->action == ROUTE_ACT_REMOTE || o->action == ROUTE_ACT_HOLD)
            fmt_print(text, textlen, "%s", key);
        break;
    case ROUTE_MAP_RCPT:
    case ROUTE_MAP_VERIFY: /* backup: the caller's probe answers */
        if (o->rcpt == ROUTE_RCPT_REFUSE)
            fmt_print(text, textlen,
                      "550 5.7.1 mail for %s is not accepted here: its mail "
                      "exchanger is elsewhere",
                      domain);
        else if (o->rcpt == ROUTE_RCPT_VERIFY && m == ROUTE_MAP_RCPT)
            fmt_print(text, textlen, "reject_unverified_recipient");
        else if (o->rcpt == ROUTE_RCPT_TEMP)
            fmt_print(text, textlen,
                      "451 4.3.0 mail routing temporarily "
                      "unavailable, try again later");
        else if (o->rcpt == ROUTE_RCPT_HOLD)
            fmt_print(text, textlen,
                      "450 4.4.6 the best MX of %s is this server: try again "
                      "later",
                      domain);
        break;
    default:
        if (o->action == ROUTE_ACT_LOCAL || o->action == ROUTE_ACT_REMOTE ||
            o->action == ROUTE_ACT_HOLD)
            fmt_print(text, textlen, "%s", route_action_name(o->action));
        break;
    }
    if (text[0] == '\0')
        *status = "NOTFOUND";
}

/*
 * route_verified - what map verify answers for a backup-mode recipient
 * key once the better MX has said w: *status and text as route_reply()
 */
void
route_verified(enum route_word w, const char *key, const char **status,
               char *text, size_t textlen)
{
    *status = "OK";
    if (w == ROUTE_WORD_REFUSED)
        fmt_print(text, textlen,
                  "550 5.1.1 %s: recipient address rejected: the domain's "
                  "better MX refuses it",
                  key);
    else if (w == ROUTE_WORD_UNKNOWN)
        fmt_print(text, textlen,
                  "450 4.1.1 %s: recipient address not verified yet: try "
                  "again later",
                  key);
    else
        *status = "NOTFOUND", text[0] = '\0';
}
