/*
 * test_dns - the pure half of dns.c: this server's address ranges and the
 * auto decision from an MX set (no DNS server needed)
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dns.h"
#include "mxs.h"

struct net_case {
    const char *name;
    const char *text;
    int rc;
    const char *addr; /* an address to match, or NULL */
    int match;        /* want: it lies in the range */
};

static const struct net_case net_cases[] = {
    {"IPv4 address matches itself", "192.0.2.1", MXS_OK, "192.0.2.1", 1},
    {"IPv4 address matches no other", "192.0.2.1", MXS_OK, "192.0.2.2", 0},
    {"IPv4 /24 holds its last address", "192.0.2.0/24", MXS_OK, "192.0.2.255",
     1},
    {"IPv4 /24 does not hold the next /24", "192.0.2.0/24", MXS_OK, "192.0.3.0",
     0},
    {"IPv4 /23 with host bits set still matches", "10.1.3.77/23", MXS_OK,
     "10.1.2.1", 1},
    {"IPv4 /23 edge", "10.1.2.0/23", MXS_OK, "10.1.4.0", 0},
    {"IPv4 /0 holds everything", "0.0.0.0/0", MXS_OK, "203.0.113.9", 1},
    {"IPv4 /0 holds no IPv6", "0.0.0.0/0", MXS_OK, "2001:db8::1", 0},
    {"IPv6 address matches itself", "2001:db8::25", MXS_OK, "2001:db8::25", 1},
    {"IPv6 /64 holds an address in it", "2001:db8:1:2::/64", MXS_OK,
     "2001:db8:1:2:aaaa::1", 1},
    {"IPv6 /64 does not hold the next /64", "2001:db8:1:2::/64", MXS_OK,
     "2001:db8:1:3::1", 0},
    {"IPv6 /57 on a bit boundary", "2001:db8:0:80::/57", MXS_OK,
     "2001:db8:0:ff::1", 1},
    {"IPv6 /57 below its range", "2001:db8:0:80::/57", MXS_OK,
     "2001:db8:0:7f::1", 0},
    {"IPv6 range holds no IPv4", "::/0", MXS_OK, "127.0.0.1", 0},
    {"a prefix beyond 32 is invalid for IPv4", "10.0.0.0/33", MXS_INVALID, NULL,
     0},
    {"a prefix beyond 128 is invalid for IPv6", "::1/129", MXS_INVALID, NULL,
     0},
    {"an empty prefix is invalid", "10.0.0.0/", MXS_INVALID, NULL, 0},
    {"a signed prefix is invalid", "10.0.0.0/+8", MXS_INVALID, NULL, 0},
    {"a negative prefix is invalid", "10.0.0.0/-1", MXS_INVALID, NULL, 0},
    {"a blank before the prefix is invalid", "10.0.0.0/ 8", MXS_INVALID, NULL,
     0},
    {"a host name is invalid", "mx.example.com", MXS_INVALID, NULL, 0},
    {"a short IPv4 is invalid", "10.1.2", MXS_INVALID, NULL, 0},
    {"empty is invalid", "", MXS_INVALID, NULL, 0},
};

/* ip - an address from text */
static struct dns_ip
ip(const char *text)
{
    struct dns_ip a;

    memset(&a, 0, sizeof(a));
    a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(a.family, text, a.a) != 1)
        a.family = -1;
    return a;
}

static void
run_nets(void)
{
    size_t i;

    for (i = 0; i < sizeof(net_cases) / sizeof(net_cases[0]); i++) {
        const struct net_case *c = &net_cases[i];
        struct dns_net net;
        struct dns_nets nets = {1, &net};
        char why[256] = "";
        int rc = dns_net_parse(c->text, &net, why, sizeof(why));
        struct dns_ip a;

        check_int(c->name, "status", rc, c->rc);
        if (rc != MXS_OK) {
            check_int(c->name, "why names the text",
                      strncmp(why + 1, c->text, strlen(c->text)) == 0, 1);
            continue;
        }
        a = ip(c->addr);
        check_int(c->name, "match", dns_nets_match(&nets, &a) == 0, c->match);
    }
}

/*
 * Decision cases.  An MX set is written "PREF NAME ADDRS; ..." where ADDRS
 * is a comma list of addresses or one of nx, nodata, fail, skip (how the
 * host's address lookup ended).
 */
struct decide_case {
    const char *name;
    enum dns_status status; /* of the MX query */
    const char *hosts;
    int rc;
    enum route_mode mode;
    const char *evidence; /* want exactly, or NULL */
    const char *why;      /* a substring of why, when rc is not MXS_OK */
};

static const char *const local_text[] = {"192.0.2.25", "198.51.100.0/24",
                                         "2001:db8:25::/48"};

static const struct decide_case decide_cases[] = {
    {"best MX is this server: local", DNS_FOUND, "10 mx.here.test 192.0.2.25",
     MXS_OK, ROUTE_LOCAL,
     "MX 10 mx.here.test [192.0.2.25 (this server: 192.0.2.25)]; best MX "
     "mx.here.test is this server: local",
     NULL},
    {"best MX in a local range over IPv6: local", DNS_FOUND,
     "5 mx6.here.test 2001:db8:25::9; 10 mx.other.test 203.0.113.1", MXS_OK,
     ROUTE_LOCAL,
     "MX 5 mx6.here.test [2001:db8:25::9 (this server: 2001:db8:25::/48)], "
     "10 mx.other.test [203.0.113.1]; best MX mx6.here.test is this server: "
     "local",
     NULL},
    {"a best MX with several addresses, one here: local", DNS_FOUND,
     "10 mx.multi.test 203.0.113.5,198.51.100.7", MXS_OK, ROUTE_LOCAL,
     "MX 10 mx.multi.test [203.0.113.5, 198.51.100.7 (this server: "
     "198.51.100.0/24)]; best MX mx.multi.test is this server: local",
     NULL},
    {"a tie at the best preference that includes this server: local", DNS_FOUND,
     "10 mx.other.test 203.0.113.1; 10 mx.here.test 192.0.2.25", MXS_OK,
     ROUTE_LOCAL, NULL, NULL},
    {"a tie with this server wins over an unresolved peer", DNS_FOUND,
     "10 mx.gone.test nx; 10 mx.here.test 192.0.2.25", MXS_OK, ROUTE_LOCAL,
     NULL, NULL},
    {"a lower-preference MX is this server: backup", DNS_FOUND,
     "10 mx.primary.test 203.0.113.1; 20 mx.here.test 192.0.2.25", MXS_OK,
     ROUTE_BACKUP,
     "MX 10 mx.primary.test [203.0.113.1], 20 mx.here.test [192.0.2.25 (this "
     "server: 192.0.2.25)]; lower-preference MX mx.here.test is this server: "
     "backup",
     NULL},
    {"the records' order does not matter: sorted by preference", DNS_FOUND,
     "30 mx.here.test 192.0.2.25; 10 mx.primary.test 203.0.113.1", MXS_OK,
     ROUTE_BACKUP, NULL, NULL},
    {"no MX host is this server: remote", DNS_FOUND,
     "10 mx.remote.test 203.0.113.1; 20 mx2.remote.test 203.0.113.2", MXS_OK,
     ROUTE_REMOTE,
     "MX 10 mx.remote.test [203.0.113.1], 20 mx2.remote.test [203.0.113.2]; "
     "no MX host is this server: remote",
     NULL},
    {"a lower MX whose lookup failed may be this server: backup", DNS_FOUND,
     "10 mx.remote.test 203.0.113.1; 20 mx2.remote.test fail; 30 "
     "mx3.remote.test skip",
     MXS_OK, ROUTE_BACKUP,
     "MX 10 mx.remote.test [203.0.113.1], 20 mx2.remote.test [lookup "
     "failed], 30 mx3.remote.test [not looked up]; lower-preference MX "
     "mx2.remote.test may be this server: backup",
     NULL},
    {"a lower MX not looked up may be this server: backup", DNS_FOUND,
     "10 mx.remote.test 203.0.113.1; 20 mx.here.test skip", MXS_OK,
     ROUTE_BACKUP, NULL, NULL},
    {"this server found before a lower failure: backup", DNS_FOUND,
     "10 mx.remote.test 203.0.113.1; 20 mx.here.test 192.0.2.25; 30 "
     "mx3.remote.test fail",
     MXS_OK, ROUTE_BACKUP, NULL, NULL},
    {"lower MX hosts with NXDOMAIN or no address are not here: remote",
     DNS_FOUND,
     "10 mx.remote.test 203.0.113.1; 20 mx.gone.test nx; 30 mx.empty.test "
     "nodata",
     MXS_OK, ROUTE_REMOTE, NULL, NULL},
    {"an address next to this server's is not this server", DNS_FOUND,
     "10 mx.near.test 192.0.2.26", MXS_OK, ROUTE_REMOTE, NULL, NULL},
    {"best MX with NXDOMAIN is a lookup error", DNS_FOUND,
     "10 mx.gone.test nx; 20 mx.here.test 192.0.2.25", MXS_TEMPFAIL, ROUTE_NONE,
     NULL, "best MX mx.gone.test does not resolve (NXDOMAIN)"},
    {"best MX with no address is a lookup error", DNS_FOUND,
     "10 mx.empty.test nodata", MXS_TEMPFAIL, ROUTE_NONE, NULL,
     "best MX mx.empty.test does not resolve (no address)"},
    {"best MX lookup failure is a lookup error", DNS_FOUND,
     "10 mx.slow.test fail; 20 mx.here.test skip", MXS_TEMPFAIL, ROUTE_NONE,
     NULL, "(lookup failed)"},
    {"a tie where the other best host fails is a lookup error", DNS_FOUND,
     "10 mx.remote.test 203.0.113.1; 10 mx.slow.test fail", MXS_TEMPFAIL,
     ROUTE_NONE, NULL, "mx.slow.test does not resolve"},
    {"NXDOMAIN for the domain: none", DNS_NXDOMAIN, "", MXS_OK, ROUTE_NONE,
     "NXDOMAIN: no such domain", NULL},
    {"the MX query failing is a lookup error", DNS_FAIL, "", MXS_TEMPFAIL,
     ROUTE_NONE, NULL, "MX lookup failed"},
    {"null MX: none", DNS_FOUND, "0 . skip", MXS_OK, ROUTE_NONE,
     "null MX (MX 0 .): the domain takes no mail", NULL},
    {"a . among real MX hosts is ignored", DNS_FOUND,
     "0 . skip; 10 mx.here.test 192.0.2.25", MXS_OK, ROUTE_LOCAL,
     "MX 10 mx.here.test [192.0.2.25 (this server: 192.0.2.25)]; best MX "
     "mx.here.test is this server: local",
     NULL},
    {"implicit MX: the domain's own address here: local", DNS_NODATA,
     "0 here.test 198.51.100.80", MXS_OK, ROUTE_LOCAL,
     "no MX records: implicit MX here.test [198.51.100.80 (this server: "
     "198.51.100.0/24)]; best MX here.test is this server: local",
     NULL},
    {"implicit MX elsewhere: remote", DNS_NODATA, "0 there.test 203.0.113.7",
     MXS_OK, ROUTE_REMOTE, NULL, NULL},
    {"implicit MX with no address: none", DNS_NODATA, "0 bare.test nodata",
     MXS_OK, ROUTE_NONE,
     "no MX records: implicit MX bare.test [no address]; no mail exchanger",
     NULL},
    {"implicit MX whose address lookup failed is a lookup error", DNS_NODATA,
     "0 slow.test fail", MXS_TEMPFAIL, ROUTE_NONE, NULL,
     "best MX slow.test does not resolve (lookup failed)"},
};

/* parse_hosts - fill an MX set from a case's text */
static void
parse_hosts(const char *text, struct dns_mxset *mx)
{
    char *copy = xstrdup(text), *save = NULL, *item;

    for (item = strtok_r(copy, ";", &save); item != NULL;
         item = strtok_r(NULL, ";", &save)) {
        struct dns_host h;
        char name[DNS_NAME_MAX + 1], addrs[512], *save2 = NULL, *a;
        size_t at;

        memset(&h, 0, sizeof(h));
        if (sscanf(item, "%u %253s %511s", &h.pref, name, addrs) != 3)
            continue;
        snprintf(h.name, sizeof(h.name), "%s", name);
        h.status = strcmp(addrs, "nx") == 0       ? DNS_NXDOMAIN
                   : strcmp(addrs, "nodata") == 0 ? DNS_NODATA
                   : strcmp(addrs, "fail") == 0   ? DNS_FAIL
                   : strcmp(addrs, "skip") == 0   ? DNS_SKIPPED
                                                  : DNS_FOUND;
        for (a = strtok_r(addrs, ",", &save2);
             h.status == DNS_FOUND && a != NULL && h.naddr < DNS_MAX_ADDRS;
             a = strtok_r(NULL, ",", &save2))
            h.addr[h.naddr++] = ip(a);
        /* Sorted insert, as the resolver does. */
        for (at = mx->n; at > 0 && mx->host[at - 1].pref > h.pref; at--)
            mx->host[at] = mx->host[at - 1];
        mx->host[at] = h;
        mx->n++;
    }
    free(copy);
}

static void
run_decide(void)
{
    struct dns_net nets[3];
    struct dns_nets local = {3, nets};
    size_t i;

    for (i = 0; i < 3; i++)
        dns_net_parse(local_text[i], &nets[i], NULL, 0);
    for (i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
        const struct decide_case *c = &decide_cases[i];
        struct dns_mxset mx;
        enum route_mode mode = ROUTE_AUTO;
        char ev[1024], why[256] = "";
        int rc;

        memset(&mx, 0, sizeof(mx));
        mx.status = c->status;
        parse_hosts(c->hosts, &mx);
        rc = dns_decide(&mx, &local, &mode, ev, sizeof(ev), why, sizeof(why));
        check_int(c->name, "status", rc, c->rc);
        if (rc == MXS_OK)
            check_str(c->name, "mode", route_mode_name(mode),
                      route_mode_name(c->mode));
        if (c->evidence != NULL)
            check_str(c->name, "evidence", ev, c->evidence);
        if (c->why != NULL)
            check_int(c->name, "why", strstr(why, c->why) != NULL, 1);
        if (c->why != NULL && strstr(why, c->why) == NULL)
            printf("    why: %s\n", why);
    }
}

/* run_small_buffer - evidence is cut at the buffer, never overrun */
static void
run_small_buffer(void)
{
    struct dns_net net;
    struct dns_nets local = {1, &net};
    struct dns_mxset mx;
    enum route_mode mode;
    char ev[16 + 1];

    memset(&mx, 0, sizeof(mx));
    dns_net_parse("192.0.2.25", &net, NULL, 0);
    mx.status = DNS_FOUND;
    parse_hosts("10 mx.long-name.example.test 203.0.113.1", &mx);
    ev[16] = 'X';
    check_int("a small evidence buffer", "status",
              dns_decide(&mx, &local, &mode, ev, 16, NULL, 0), MXS_OK);
    check_int("a small evidence buffer", "length", (long long)strlen(ev), 15);
    check_int("a small evidence buffer", "byte after", ev[16], 'X');
    check_str("a small evidence buffer", "mode", route_mode_name(mode),
              "remote");
}

/* run_create - dns_create checks routing.local_addresses */
static void
run_create(void)
{
    const char *good[] = {"127.0.0.1", "::1", "10.0.0.0/8"};
    const char *bad[] = {"127.0.0.1", "10.0.0.0/40"};
    char why[256] = "";
    struct dns *d;

    d = dns_create(good, 3, 16, why, sizeof(why));
    check_int("dns_create takes good addresses", "made", d != NULL, 1);
    dns_free(d);
    d = dns_create(bad, 2, 16, why, sizeof(why));
    check_int("dns_create refuses a bad address", "made", d != NULL, 0);
    check_str("dns_create says which", "why", why,
              "\"10.0.0.0/40\": prefix length must be 0-32");
    dns_free(NULL);
}

int
main(void)
{
    run_nets();
    run_decide();
    run_small_buffer();
    run_create();
    return check_done("test_dns");
}
