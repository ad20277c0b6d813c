/*
 * mxcheck.h - warn when a remote- or backup-mode domain's MX is this server
 *
 * Mail for such a domain cannot go remote: Sendmail bounces it ("MX list
 * ... points back to ..."), Postfix does not send it ("mail for ... loops
 * back to myself").  The check is advice for the admin, so it stays off the
 * mail path: mxcheck_note() only queues the domain (at most MXCHECK_QUEUE
 * waiting, more are dropped and noted again when they come again; a
 * domain is checked at most once per MXCHECK_TTL_MS, and at most
 * MXCHECK_PER_SEC domains a second, so that a flood of new domains cannot
 * take the CPU from the mail) and a worker thread asks the resolver of
 * dns.h, which says "local" exactly when a best-preference MX host has an
 * address of this server (routing.local_addresses, or the interface
 * addresses), and logs a warning with the DNS evidence.  A failed DNS
 * lookup counts as "not here".  mxcheck_remote() is the synchronous check
 * itself.  Thread safe.
 */
#ifndef MXCHECK_H
#define MXCHECK_H

#include <stddef.h>
#include <stdint.h>

#define MXCHECK_TTL_MS (10 * 60 * 1000)

enum mxcheck_result {
    MXCHECK_ELSEWHERE = 0, /* or unknown */
    MXCHECK_HERE,          /* best MX is this server: fresh answer, log */
    MXCHECK_KNOWN          /* remembered answer: nothing new to say */
};

struct dns;
struct mxcheck;

#define MXCHECK_QUEUE   64
#define MXCHECK_PER_SEC 50

/* dns is borrowed and must outlive mxcheck_free(). */
struct mxcheck *mxcheck_create(struct dns *dns);
void mxcheck_note(struct mxcheck *m, const char *domain, const char *qid);
void mxcheck_free(struct mxcheck *m); /* stops and joins the worker */
enum mxcheck_result mxcheck_remote(struct mxcheck *m, const char *domain,
                                   uint64_t now_ms, char *evidence,
                                   size_t evlen);

#endif
