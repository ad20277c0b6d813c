/*
 * mclient - milter protocol client (the MTA side), for tests and load
 * generation
 *
 * One struct mc is one connection to a milter speaking the Sendmail milter
 * protocol, version 6.  mc_open() connects; mc_negotiate() must come next.
 * After negotiation every step honours the milter's protocol flags: a step
 * the milter negotiated away (SMFIP_NOCONNECT ... SMFIP_NOUNKNOWN) is not
 * sent and gives MC_SKIPPED; a step with a no-reply flag (SMFIP_NR_*) is
 * sent and gives MC_NOREPLY without waiting.  mc_abort() and mc_quit()
 * always give MC_NOREPLY.  Macros (mc_macro()) are always sent.  The order
 * of steps is the caller's business: nothing checks it.
 *
 * Ownership: mc_open() pairs with mc_close(); mc_close(NULL) is a no-op.
 * A step returns a struct mc_reply that belongs to the connection and stays
 * valid until the next call on it or mc_close().  Arguments are only read
 * during the call.
 *
 * Failures: a failed step (connection, timeout, protocol error, bad
 * argument) gives MC_ERROR, and mc_error() tells why.  The error is sticky:
 * every later call fails at once.  Each packet sent or received must
 * complete within the timeout given to mc_open(); the name lookup in
 * mc_open() is not bounded by it.  Packets longer than MC_MAX_PACKET (the
 * length field: command byte plus data) are refused in both directions, and
 * so are replies the negotiation does not allow (a modification action not
 * granted, SMFIR_SKIP outside a body chunk or without SMFIP_SKIP, an
 * action byte other than at end of message).  Nothing is printed.  Out of
 * memory aborts.
 *
 * Thread safety: no global state; a struct mc is used by one thread at a
 * time.  Sockets are written with MSG_NOSIGNAL, so no SIGPIPE.
 */
#ifndef MCLIENT_H
#define MCLIENT_H

#include <stddef.h>

#define MC_MAX_PACKET (1024 * 1024) /* longest packet, in either direction */
#define MC_MAX_MODS   65536         /* most modifications in one reply */

struct mc;

enum mc_kind {
    MC_CONTINUE,  /* SMFIR_CONTINUE */
    MC_ACCEPT,    /* SMFIR_ACCEPT */
    MC_REJECT,    /* SMFIR_REJECT */
    MC_TEMPFAIL,  /* SMFIR_TEMPFAIL */
    MC_DISCARD,   /* SMFIR_DISCARD */
    MC_REPLYCODE, /* SMFIR_REPLYCODE: see text */
    MC_SKIP,      /* SMFIR_SKIP */
    MC_SHUTDOWN,  /* SMFIR_SHUTDOWN */
    MC_CONNFAIL,  /* SMFIR_CONN_FAIL */
    MC_NOREPLY,   /* sent, no reply expected */
    MC_SKIPPED,   /* not sent: the milter negotiated the step away */
    MC_ERROR      /* see mc_error() */
};

/*
 * One modification the milter sent before its final reply to end of
 * message.  argv holds the arguments split on NUL.  For SMFIR_INSHEADER and
 * SMFIR_CHGHEADER argv[0] is the header index in decimal, then name and
 * value.  For SMFIR_REPLBODY argv[0] is the raw chunk, len bytes that may
 * include NULs (a NUL follows them).  SMFIR_ADDRCPT_PAR and SMFIR_CHGFROM
 * have one or two arguments (address, ESMTP arguments if sent).
 */
struct mc_mod {
    int action;  /* SMFIR_* byte */
    size_t argc; /* number of arguments */
    char **argv; /* the arguments */
    size_t len;  /* bytes of data received, before any conversion */
    char *buf;   /* storage behind argv; private */
};

struct mc_reply {
    enum mc_kind kind;
    char *text;          /* MC_REPLYCODE: e.g. "451 4.3.0 text", else NULL */
    struct mc_mod *mods; /* mc_eom() only: modifications, in order */
    size_t nmods;
};

/* Connection. spec: inet:PORT@HOST, inet6:PORT@HOST, unix:/path, local:/path
 * or /path; HOST defaults to the loopback address.  timeout_ms > 0. */
struct mc *mc_open(const char *spec, int timeout_ms, char *why, size_t whylen);
void mc_close(struct mc *m);
const char *mc_error(const struct mc *m);

/* Send every packet at once (TCP_NODELAY), as an MTA that writes a
 * command and its macros in one go does not wait on Nagle's algorithm
 * either; a no-op on unix sockets.  Returns 0 or -1. */
int mc_nodelay(struct mc *m);

/* How packets are written, as an MTA may: mc_together() sends the next n
 * packets in one write(2), all when the last is sent (only the last may
 * wait for a reply: the caller's business); mc_split() sends the next write
 * as its first n bytes, then the rest ms milliseconds later (0 < ms <
 * 3600000).  Both last for the next write only. */
void mc_together(struct mc *m, unsigned n);
void mc_split(struct mc *m, size_t n, unsigned ms);

/* Negotiation: actions and protocol are what the MTA allows and offers.
 * Fails if the milter asks for more.  Returns 0 or -1. */
int mc_negotiate(struct mc *m, unsigned long actions, unsigned long protocol);
void mc_negotiated(const struct mc *m, unsigned long *version,
                   unsigned long *actions, unsigned long *protocol);

/* Macros for step cmd (SMFIC_*): n strings, alternately name and value.
 * Returns 0 or -1. */
int mc_macro(struct mc *m, char cmd, const char *const *namevals, size_t n);

/* Steps.  family is SMFIA_INET, SMFIA_INET6, SMFIA_UNIX (port and addr
 * are sent) or SMFIA_UNKNOWN (port and addr are ignored).  argv for mail and
 * rcpt: the address, then ESMTP arguments. */
const struct mc_reply *mc_connect(struct mc *m, const char *host, char family,
                                  unsigned port, const char *addr);
const struct mc_reply *mc_helo(struct mc *m, const char *name);
const struct mc_reply *mc_mail(struct mc *m, const char *const *argv,
                               size_t argc);
const struct mc_reply *mc_rcpt(struct mc *m, const char *const *argv,
                               size_t argc);
const struct mc_reply *mc_data(struct mc *m);
const struct mc_reply *mc_unknown(struct mc *m, const char *line);
const struct mc_reply *mc_header(struct mc *m, const char *name,
                                 const char *value);
const struct mc_reply *mc_eoh(struct mc *m);
const struct mc_reply *mc_body(struct mc *m, const char *chunk, size_t len);
const struct mc_reply *mc_eom(struct mc *m);
const struct mc_reply *mc_abort(struct mc *m);
const struct mc_reply *mc_quit(struct mc *m);

/* Names: "continue", "accept", "reject", "tempfail", "discard", "reply",
 * "skip", "shutdown", "connfail", "noreply", "skipped", "error"; and for
 * modifications "addrcpt", "delrcpt", "addrcpt_par", "chgfrom",
 * "addheader", "insheader", "chgheader", "replbody", "quarantine" (NULL for
 * an unknown action).  Constant strings. */
const char *mc_kind_name(enum mc_kind kind);
const char *mc_action_name(int action);

#endif /* MCLIENT_H */
