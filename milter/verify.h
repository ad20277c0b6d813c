/*
 * verify.h - does the better MX of a backup-mode domain take an address?
 *
 * Postfix refuses at RCPT a backup-mode recipient that the better MX
 * would refuse (reject_unverified_recipient, its own probe through the
 * queue).  Sendmail has no such probe, so mxswitch asks the better MX
 * itself, as an SMTP client: EHLO, MAIL FROM:<>, RCPT TO:<address>,
 * QUIT; no message is ever sent.  Only the socket map "verify" uses it,
 * which Sendmail's Local_check_rcpt asks for clients it does not trust.
 *
 * Two layers.  The core is pure: verify_rcpt_arg() writes the RCPT TO
 * argument, verify_reply_get() reads one SMTP reply (all its lines) from
 * bytes.  The shell, struct verify, probes in VERIFY_WORKERS background
 * threads: verify_ask() waits at most wait_ms for the answer, and an
 * answer that comes later is remembered for the client's next try.
 * Answers are remembered per address: accepted VERIFY_ACCEPT_TTL_S,
 * refused VERIFY_REFUSE_TTL_S, unknown VERIFY_UNKNOWN_TTL_S (so a client
 * retrying against a dead better MX does not probe it each time).
 *
 * Hosts: dns_better_mx() (dns.h), best first, each address in turn.  A
 * host that cannot be reached, greets with an error, or refuses EHLO and
 * HELO or the null sender is skipped for the next; the first RCPT reply
 * decides (verify_rcpt_result): 2xx accepted, 5xx refused, 4xx unknown,
 * and so is a 5xx about the probe rather than the address.  Each step waits at
 * most VERIFY_STEP_MS.  Thread safe; never logs (the caller logs the
 * detail it is given).
 */
#ifndef VERIFY_H
#define VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct dns;
struct verify;

enum verify_result {
    VERIFY_ACCEPTED = 0, /* the better MX takes the address */
    VERIFY_REFUSED,      /* it refused it with 5xx */
    VERIFY_UNKNOWN       /* not known (yet): 4xx, unreachable, in progress */
};

#define VERIFY_WORKERS       2
#define VERIFY_QUEUE_MAX     256 /* probes waiting for a worker */
#define VERIFY_STEP_MS       10000
#define VERIFY_ACCEPT_TTL_S  3600
#define VERIFY_REFUSE_TTL_S  600
#define VERIFY_UNKNOWN_TTL_S 30
/* How long a socket map answer waits for a probe (Sendmail's RCPT). */
#define VERIFY_WAIT_MS   4000
#define VERIFY_REPLY_MAX 512 /* reply text kept for the detail */

/* Pure core. */
int verify_rcpt_arg(const char *local, const char *domain, char *out,
                    size_t outlen);
int verify_reply_get(const char *buf, size_t len, int *code, size_t *used,
                     char *text, size_t textlen);
enum verify_result verify_rcpt_result(int code, const char *text);

/*
 * I/O shell.
 *
 * verify_create - probes through the resolver d (which must outlive it),
 *   introducing this server as helo in EHLO ("": the host's canonical
 *   name, looked up at the first probe, not at start: most sites never
 *   probe); at most max_entries answers remembered; starts the threads.
 * verify_free - stop and join the threads, forget everything; waiting
 *   askers must be gone.  NULL is a no-op.
 * verify_ask - the better MX's answer for local@domain (domain
 *   normalised): remembered, or probed now, waiting at most wait_ms.
 *   detail says whom and what was seen ("mx.example.com[192.0.2.1] said
 *   550 5.1.1 ...", "in progress", "remembered").
 */
struct verify *verify_create(struct dns *d, const char *helo,
                             size_t max_entries);
void verify_free(struct verify *v);
enum verify_result verify_ask(struct verify *v, const char *local,
                              const char *domain, uint64_t now_ms,
                              uint64_t wait_ms, char *detail, size_t detlen);

#endif
