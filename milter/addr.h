/*
 * addr.h - parse, tag and encode SMTP envelope recipient addresses
 *
 * Pure: no I/O, no logging, no global state; safe from any thread.
 *
 * addr_parse() takes the RCPT argument exactly as the MTA passed it to the
 * milter ("<bob@example.com>", "<\"john doe\"@example.com>", "<postmaster>",
 * "<@relay.example:bob@example.com>", "<bob@[192.0.2.1]>") and splits it.
 * The result owns one buffer; addr_clear() frees it.  The tag that mxswitch
 * itself adds (delimiter + remote or local tag at the end of the local part)
 * is recognised and removed from the local part, so a recipient that arrives
 * already tagged is put back into the form the decision names.
 *
 * addr_key_local() gives the local part as per-address routing keys store
 * it: unquoted, ASCII lower case, without the +detail; see addr.c.
 */
#ifndef ADDR_H
#define ADDR_H

#include <stddef.h>

struct mxs_text; /* mxs.h */

enum addr_tag {
    ADDR_TAG_NONE = 0, /* no mxswitch tag */
    ADDR_TAG_REMOTE,   /* local part ended in delimiter + remote tag */
    ADDR_TAG_LOCAL     /* local part ended in delimiter + local tag */
};

/* The tags of the design that rewrote recipients: mail queued then may
 * still carry them, and is routed as its plain form. */
#define ADDR_LEGACY_REMOTE "mx-remote"
#define ADDR_LEGACY_LOCAL  "mx-local"

struct addr_tags {
    char delimiter;     /* e.g. '+' */
    const char *remote; /* e.g. "mx-remote" */
    const char *local;  /* e.g. "mx-local" */
};

struct addr {
    char *buf;          /* owned storage for the strings below */
    const char *local;  /* local part, quotes kept, mxswitch tag removed */
    const char *domain; /* domain as written, [brackets] kept; NULL if none */
    int literal;        /* domain is an address literal: never looked up */
    int quoted;         /* local part is a quoted string */
    enum addr_tag tag;  /* which mxswitch tag the local part carried */
};

/* Upper bound for an address the milter handles, in every form it makes
 * of it: addr_parse() refuses one whose tagged form would be longer. */
#define ADDR_MAX 1024

/* Longest local part a per-address key may have (RFC 5321 4.5.3.1.1). */
#define ADDR_KEY_LOCAL_MAX 64

int addr_parse(const char *arg, const struct addr_tags *tags, struct addr *a,
               char *why, size_t whylen);
void addr_clear(struct addr *a);
char *addr_format(const struct addr *a, const struct addr_tags *tags,
                  enum addr_tag tag);
void addr_format_text(const struct addr *a, const struct addr_tags *tags,
                      enum addr_tag tag, struct mxs_text *t);
char *addr_plain(const struct addr *a, const struct addr_tags *tags);
const char *addr_tag_name(enum addr_tag tag);
int addr_key_local(const char *local, int quoted, char delimiter, char *out,
                   size_t outlen, char *why, size_t whylen);

#endif
