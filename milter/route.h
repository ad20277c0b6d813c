/*
 * route.h - routing modes and the per-recipient decision
 *
 * Pure: no I/O, no logging, no global state; safe from any thread.
 *
 * A mode says where mail for a domain should go (none: the MTA decides;
 * local: the mailbox here; remote: the domain's MX hosts; backup: this
 * server is a lower-preference MX, so the better MX hosts, and the mail
 * stays queued here while they refuse; auto: one of those, from the
 * domain's MX records, see dns.h).  route_decide()
 * turns a mode plus what the MTA told the milter about its own routing
 * ({rcpt_mailer}, {rcpt_host}) into the form the recipient must have:
 * plain, remote-tagged or local-tagged.
 */
#ifndef ROUTE_H
#define ROUTE_H

#include <stddef.h>

#include "addr.h"

/* Values are stored in caches and config: append, never reorder. */
enum route_mode {
    ROUTE_NONE = 0,
    ROUTE_LOCAL,
    ROUTE_REMOTE,
    ROUTE_BACKUP, /* backup MX: to the better MX hosts, never here */
    ROUTE_AUTO    /* from DNS (dns.h); resolved before route_decide() */
};

#define ROUTE_NMODES 5

struct route_in {
    enum route_mode mode;
    int explicit_key;   /* mode came from a Redis key, not the default */
    enum addr_tag tag;  /* mxswitch tag the recipient arrived with */
    const char *domain; /* normalised recipient domain */
    const char *mailer; /* {rcpt_mailer}, NULL when the MTA did not say */
    const char *host;   /* {rcpt_host}, NULL when the MTA did not say */
};

int route_mode_parse(const char *val, size_t len, enum route_mode *mode);
const char *route_mode_name(enum route_mode mode);
enum addr_tag route_decide(const struct route_in *in, char *why, size_t whylen);
int route_mailer_is_smtp(const char *mailer);

#endif
