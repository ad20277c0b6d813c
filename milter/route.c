/*
 * route.c - modes and the per-recipient decision; see route.h
 */
#include <string.h>
#include <strings.h>

#include "domain.h"
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

/*
 * route_mailer_is_smtp - whether an MTA mailer delivers by SMTP
 *
 * Postfix: smtp, relay; Sendmail: smtp, esmtp, smtp8, dsmtp, relay.
 */
int
route_mailer_is_smtp(const char *mailer)
{
    static const char *const smtp[] = {"smtp", "esmtp", "smtp8", "dsmtp",
                                       "relay"};
    size_t i;

    for (i = 0; mailer != NULL && i < sizeof(smtp) / sizeof(smtp[0]); i++)
        if (strcasecmp(mailer, smtp[i]) == 0)
            return 1;
    return 0;
}

/* smtp_to_domain - whether the MTA already sends it to the domain's MX */
static int
smtp_to_domain(const struct route_in *in)
{
    return in->mailer != NULL &&
           (strcasecmp(in->mailer, "smtp") == 0 ||
            strcasecmp(in->mailer, "esmtp") == 0) &&
           domain_equal(in->domain, in->host);
}

/*
 * why_of - an explanation of up to four pieces (NULL: left out), made
 * without printf: with the MTA's macros, vsnprintf here was 800
 * instructions per recipient (callgrind)
 */
static void
why_of(char *why, size_t whylen, const char *a, const char *b, const char *c,
       const char *d)
{
    const char *piece[4] = {a, b, c, d};
    struct mxs_text t;
    size_t i;

    if (why == NULL || whylen == 0)
        return;
    mxs_text_init(&t, why, whylen);
    for (i = 0; i < 4; i++)
        if (piece[i] != NULL)
            mxs_text_put(&t, piece[i]);
}

/*
 * route_decide - the form a recipient must take for its mode
 *
 * Returns the tag the recipient must carry (ADDR_TAG_NONE: plain).  The
 * caller rewrites only when that differs from in->tag.  The MTA's macros
 * describe the address as it arrived, so they are ignored for an address
 * that arrived tagged.  Only an explicit local key earns the local tag: a
 * local default must never pull foreign domains into local delivery.
 * Backup routes like remote: the MTA, finding itself among the MX hosts,
 * sends only to the better ones and keeps the mail queued while they
 * refuse.  Auto must have been resolved (dns.h); left over, it is no
 * opinion.
 */
enum addr_tag
route_decide(const struct route_in *in, char *why, size_t whylen)
{
    const char *mailer = in->tag == ADDR_TAG_NONE ? in->mailer : NULL;

    switch (in->mode) {
    case ROUTE_REMOTE:
    case ROUTE_BACKUP:
        if (in->tag == ADDR_TAG_NONE && smtp_to_domain(in)) {
            why_of(why, whylen, "MTA already sends it by ", in->mailer, " to ",
                   in->host);
            return ADDR_TAG_NONE;
        }
        if (in->tag != ADDR_TAG_NONE)
            why_of(why, whylen, "arrived with the ", addr_tag_name(in->tag),
                   " tag", NULL);
        else if (mailer == NULL)
            mxs_why(why, whylen, "MTA sent no routing macros");
        else
            why_of(why, whylen, "MTA would deliver it by ", mailer, " to ",
                   in->host ? in->host : "?");
        return ADDR_TAG_REMOTE;
    case ROUTE_LOCAL:
        if (mailer == NULL) {
            if (in->tag == ADDR_TAG_LOCAL) {
                mxs_why(why, whylen, "already local-tagged");
                return ADDR_TAG_LOCAL;
            }
            mxs_why(why, whylen, "left to the MTA's local routing");
            return ADDR_TAG_NONE;
        }
        if (in->explicit_key && route_mailer_is_smtp(mailer)) {
            why_of(why, whylen, "MTA would send it by ", mailer, NULL, NULL);
            return ADDR_TAG_LOCAL;
        }
        if (route_mailer_is_smtp(mailer))
            why_of(why, whylen, "a local default never overrides ", mailer,
                   NULL, NULL);
        else
            why_of(why, whylen, "MTA delivers it by ", mailer, NULL, NULL);
        return ADDR_TAG_NONE;
    case ROUTE_AUTO:
        mxs_why(why, whylen, "auto mode not resolved from DNS: no opinion");
        return ADDR_TAG_NONE;
    default:
        mxs_why(why, whylen, "no opinion");
        return ADDR_TAG_NONE;
    }
}
