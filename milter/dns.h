/*
 * dns.h - the `auto` mode: decide a domain's route from its live MX records
 *
 * Two layers.  The core is pure (no I/O, no logging, no globals):
 * dns_net_parse() and dns_nets_match() read and match the addresses of
 * this server (IPv4 and IPv6, single addresses and CIDR ranges), and
 * dns_decide() turns a resolved MX set plus that address set into a mode
 * and a human-readable evidence string.
 *
 * The shell, struct dns, resolves through the system resolver
 * (/etc/resolv.conf, DNS only: no /etc/hosts) with res_nsend() and a
 * res_state of the caller's own per call, so lookups of different sessions
 * run in parallel; a query waits DNS_TIMEOUT_S and retries once (about
 * 2 s per name server with glibc 2.36); after one failed query the
 * remaining hosts are not asked.
 * Decisions are cached per domain until the smallest TTL of the records
 * they rest on runs out (at most DNS_TTL_MAX_S; a negative answer without
 * an SOA, or a TTL of 0, is not cached; failures never are).  The cache
 * holds at most max_entries decisions (one mutex inside).
 *
 * Rules (dns_decide):
 * - NXDOMAIN for the domain: none (the MTA bounces it properly).
 * - a null MX (RFC 7505: a single MX "." of preference 0): none.  A "."
 *   among other MX records is ignored.
 * - no MX records: the domain itself is its MX (implicit MX, RFC 5321
 *   5.1), preference 0; when it has no address either: none.
 * - one of the best-preference hosts has an address of this server: local.
 *   Hosts that share the best preference count alike (the MTA must skip
 *   every MX at or below its own preference, so a tie with this server
 *   leaves no one to send to).
 * - else, when a best-preference host did not resolve (NXDOMAIN, no
 *   address, SERVFAIL, timeout): MXS_TEMPFAIL, never a guess.
 * - else a lower-preference host is this server: backup; otherwise remote.
 *   A lower-preference host whose lookup failed or was not made (after a
 *   failure: see resolve()) may be this server: backup.  Backup and remote
 *   route alike, but remote refuses untrusted senders at RCPT, which a
 *   backup MX must not do.  One with NXDOMAIN or no address is not here.
 * - the MX query itself failing (SERVFAIL, REFUSED, timeout): MXS_TEMPFAIL.
 *
 * Evidence (one line, cut to evlen), e.g.
 *   "MX 10 mx1.example.com [192.0.2.1], 20 mx2.example.com [198.51.100.7
 *    (this server: 198.51.100.0/24)]; lower-preference MX mx2.example.com
 *    is this server: backup"
 * Each host is "PREF NAME [ADDR, ...]", or "[NXDOMAIN]", "[no address]",
 * "[lookup failed]", "[not looked up]"; an address of this server is
 * followed by "(this server: NET)" naming the matching entry of
 * routing.local_addresses or the interface address.  Special cases:
 * "NXDOMAIN", "null MX (MX 0 .)", "no MX records: implicit MX ...".
 * dns_auto_mode() appends "; cached, N s left" to an answer from its cache.
 */
#ifndef DNS_H
#define DNS_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

#define DNS_NAME_MAX 253 /* a host name in text, no trailing dot */
#define DNS_MAX_MX   16  /* MX hosts kept, best first; more are dropped */
#define DNS_MAX_ADDRS                                                          \
    8 /* addresses kept per host (A and AAAA); one of                          \
       * this server's is kept in any case */
#define DNS_TTL_MAX_S 3600
#define DNS_TIMEOUT_S 1 /* per query and try; one retry */

/* An IPv4 or IPv6 address; family AF_INET or AF_INET6. */
struct dns_ip {
    int family;
    unsigned char a[16]; /* network order; 4 bytes used for AF_INET */
};

/* An address range: ip/bits. */
struct dns_net {
    struct dns_ip ip;
    int bits;
};

/* The addresses of this server; v is owned by whoever filled it. */
struct dns_nets {
    size_t n;
    struct dns_net *v;
};

enum dns_status {
    DNS_FOUND = 0, /* records found */
    DNS_NXDOMAIN,  /* the name does not exist */
    DNS_NODATA,    /* the name exists, with no record of that type */
    DNS_FAIL,      /* SERVFAIL, REFUSED, timeout, bad answer */
    DNS_SKIPPED    /* not looked up */
};

struct dns_host {
    unsigned pref;
    char name[DNS_NAME_MAX + 1]; /* "." for the null MX target */
    enum dns_status status;      /* of its address lookups */
    size_t naddr;
    struct dns_ip addr[DNS_MAX_ADDRS];
};

/* A domain's MX records, hosts sorted by preference (stable). */
struct dns_mxset {
    enum dns_status status; /* of the MX query; DNS_NODATA: implicit MX */
    size_t n;
    struct dns_host host[DNS_MAX_MX];
};

struct dns;

/* Pure core. */
int dns_net_parse(const char *text, struct dns_net *net, char *why,
                  size_t whylen);
int dns_nets_match(const struct dns_nets *nets, const struct dns_ip *ip);
size_t dns_ip_format(const struct dns_ip *ip, char *out, size_t outlen);
int dns_decide(const struct dns_mxset *mx, const struct dns_nets *local,
               enum route_mode *mode, char *evidence, size_t evlen, char *why,
               size_t whylen);

/*
 * I/O shell.
 *
 * dns_create - local_addresses as in routing.local_addresses (none: the
 *   interface addresses, read at each decision); max_entries bounds the
 *   cache (0: no cache).  NULL with why when an address is bad.
 * dns_free - NULL is a no-op.
 * dns_auto_mode - the auto decision for a normalised domain (lower case,
 *   A-labels, no trailing dot): MXS_OK with *mode (none, local, backup or
 *   remote) and the evidence; MXS_TEMPFAIL with why when DNS cannot tell
 *   (the evidence then shows what was seen).  May block for the resolver
 *   timeouts; any thread; never logs.  For the admin tool's `explain` too.
 *   When DNS fails and the domain's decision expired less than stale_ms
 *   ago (dns_set_stale(); 0, the default: never), that decision is
 *   returned (MXS_OK), its evidence says "stale" and why, and *stale (if
 *   not NULL) is DNS_STALE, or DNS_STALE_FIRST on its first use since it
 *   expired; else DNS_FRESH.
 * dns_set_stale - cache.stale_ttl in ms; call before threads use d.
 * dns_start - from now on, lookups not in the cache go to DNS_WORKERS
 *   background threads, and dns_auto_mode() waits at most wait_ms for
 *   one (the MTA's table client serves its requests in turn: an answer
 *   that waits on a slow DNS server stalls all its mail); past that it
 *   fails (MXS_TEMPFAIL, or a stale decision) while the thread goes on
 *   and leaves its answer in the cache.  Without it (the admin tool, the
 *   unit tests) lookups run in the caller's thread.
 * dns_stop - join the threads (dns_free() does it too).
 * dns_better_mx - the MX hosts of a normalised domain that are better
 *   (lower preference) than this server, best first, each with its
 *   addresses (mx->n of them; all hosts when none is this server, none
 *   when the best is); hosts without an address are left out.  No cache;
 *   blocks for the resolver (any thread, never logs): for the background
 *   recipient probes of verify.h.  MXS_TEMPFAIL with why when the MX
 *   query fails or the domain does not exist.
 */
enum { DNS_FRESH, DNS_STALE, DNS_STALE_FIRST };

/* Background resolution: threads, and lookups queued at most. */
#define DNS_WORKERS   4
#define DNS_QUEUE_MAX 1024
/* How long dns_self_mx() remembers an answer. */
#define DNS_HERE_TTL_S 60
/* How long the daemon's table and milter answers wait for DNS. */
#define DNS_WAIT_MS 1000
struct dns *dns_create(const char *const *local_addresses, size_t nlocal,
                       size_t max_entries, char *why, size_t whylen);
void dns_free(struct dns *d);
void dns_set_stale(struct dns *d, uint64_t stale_ms);
void dns_start(struct dns *d, uint64_t wait_ms);
int dns_self_mx(struct dns *d, const char *domain, uint64_t now_ms,
                char *evidence, size_t evlen);
void dns_stop(struct dns *d);
int dns_better_mx(struct dns *d, const char *domain, struct dns_mxset *mx,
                  char *why, size_t whylen);
int dns_auto_mode(struct dns *d, const char *domain, uint64_t now_ms,
                  enum route_mode *mode, char *evidence, size_t evlen,
                  int *stale, char *why, size_t whylen);

#endif
