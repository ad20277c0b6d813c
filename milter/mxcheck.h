/*
 * mxcheck.h - warn when a remote-mode domain's MX is this very server
 *
 * Mail for such a domain cannot go remote: Sendmail bounces it ("MX list
 * ... points back to ..."), Postfix defers it ("mail for ... loops back to
 * myself").  The check is advice for the admin, so it stays off the mail
 * path: mxcheck_note() only queues the domain (at most MXCHECK_QUEUE
 * waiting, more are dropped; a domain is checked at most once per
 * MXCHECK_TTL_MS) and a worker thread looks up the best-preference MX
 * hosts through the system resolver (1 s timeout, one retry), compares
 * their addresses with this host's interface addresses and logs a warning
 * when they point back.  A failed DNS lookup counts as "not here".
 * mxcheck_remote() is the synchronous check itself.  Thread safe.
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

struct mxcheck;

#define MXCHECK_QUEUE 64

struct mxcheck *mxcheck_create(void);
void mxcheck_note(struct mxcheck *m, const char *domain, const char *qid);
void mxcheck_free(struct mxcheck *m); /* stops and joins the worker */
enum mxcheck_result mxcheck_remote(struct mxcheck *m, const char *domain,
                                   uint64_t now_ms, char *mxhost, size_t mxlen);

#endif
