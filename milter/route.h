/*
 * route.h - routing modes and the per-recipient decision
 *
 * Pure: no I/O, no logging, no global state; safe from any thread.
 *
 * A mode says where mail for a domain should go (none: the MTA decides;
 * local: the mailbox here; remote: the domain's MX hosts; backup: this
 * server is a lower-preference MX, so the better MX hosts, and the mail
 * stays queued here while they refuse; auto: one of those, from the
 * domain's MX records, see dns.h).
 *
 * route_decide() is the one decision for one recipient, used by the
 * socket map server (what the MTA does at delivery), the milter (what the
 * client gets at RCPT) and mxswitch-ctl explain: they only format its
 * answer.  It takes what the lookup found and gives an action and the
 * RCPT verdict for a client the MTA does not trust.
 */
#ifndef ROUTE_H
#define ROUTE_H

#include <stddef.h>

/* Values are stored in caches and config: append, never reorder. */
enum route_mode {
    ROUTE_NONE = 0,
    ROUTE_LOCAL,
    ROUTE_REMOTE,
    ROUTE_BACKUP, /* backup MX: to the better MX hosts, never here */
    ROUTE_AUTO    /* from DNS (dns.h); resolved before route_decide() */
};

#define ROUTE_NMODES 5

/* What the MTA does with the recipient when it delivers. */
enum route_action {
    ROUTE_ACT_NONE = 0, /* no opinion: the MTA's own routing */
    ROUTE_ACT_LOCAL,    /* the mailbox on this server */
    ROUTE_ACT_REMOTE,   /* the domain's MX hosts */
    ROUTE_ACT_HOLD,     /* remote or backup, best MX here: keep it queued */
    ROUTE_ACT_TEMP      /* the lookup failed: try again later */
};

#define ROUTE_NACTIONS 5

/* What a client the MTA does not trust gets at RCPT (trusted clients,
 * by the MTA's own rules, get ROUTE_RCPT_ACCEPT for remote and backup). */
enum route_rcpt {
    ROUTE_RCPT_ACCEPT = 0, /* accept: no objection */
    ROUTE_RCPT_REFUSE,     /* 550 5.7.1: the domain's mail goes elsewhere */
    ROUTE_RCPT_VERIFY,     /* backup: only what the better MX accepts */
    ROUTE_RCPT_HOLD,       /* 450 4.4.6, to every client */
    ROUTE_RCPT_TEMP        /* 451 4.3.0, to every client */
};

struct route_in {
    int failed;           /* the lookup failed: mode is meaningless */
    enum route_mode mode; /* auto already settled by DNS */
    int explicit_key;     /* a key or DNS gave mode, not routing.default */
    int self_mx;          /* the domain's best MX is this server */
    int on_error_default; /* routing.on_error = "default" */
    enum route_mode default_mode; /* routing.default */
};

struct route_out {
    enum route_action action;
    enum route_rcpt rcpt;
    enum route_mode mode; /* the mode the action rests on */
};

/* The socket maps the MTA asks at delivery and RCPT (docs/design.md). */
enum route_map {
    ROUTE_MAP_TRANSPORT = 0, /* Postfix transport_maps */
    ROUTE_MAP_VALIAS,        /* Postfix virtual_alias_maps */
    ROUTE_MAP_RCPT,          /* Postfix check_recipient_access, untrusted */
    ROUTE_MAP_MODE,          /* Sendmail ruleset 0 */
    ROUTE_MAP_VERIFY         /* Sendmail Local_check_rcpt: rcpt, backup
                                verified by mxswitch (verify.h) */
};

#define ROUTE_NMAPS 5

/* What the better MX said of a backup-mode recipient: verify.c's probe
 * result in route's own terms (route.c does not include verify.h). */
enum route_word {
    ROUTE_WORD_TAKEN = 0, /* it takes the address */
    ROUTE_WORD_REFUSED,   /* it refuses it */
    ROUTE_WORD_UNKNOWN    /* it has not told (yet) */
};

#define ROUTE_NWORDS 3

int route_mode_parse(const char *val, size_t len, enum route_mode *mode);
const char *route_mode_name(enum route_mode mode);
const char *route_action_name(enum route_action action);
void route_decide(const struct route_in *in, struct route_out *out, char *why,
                  size_t whylen);
enum route_map route_map_of(const char *name);
const char *route_map_name(enum route_map m);
void route_reply(enum route_map m, const struct route_out *o,
                 const char *domain, const char *key, const char *local,
                 const char *remote, const char **status, char *text,
                 size_t textlen);
void route_verified(enum route_word w, const char *key, const char **status,
                    char *text, size_t textlen);

#endif
