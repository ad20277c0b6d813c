/*
 * cfg.h - the mxswitch configuration file (libconfig syntax)
 *
 * cfg_load() reads and checks a file against the table of known settings
 * in cfg.c: every setting must be known, of the right type and in range;
 * cross-setting rules are checked last.  Each problem is reported as
 * "file:line: setting: reason" (secrets are never printed) and any problem
 * rejects the whole file.  A loaded struct cfg is read-only; cfg_free()
 * releases it.  No logging, no global state.
 */
#ifndef CFG_H
#define CFG_H

#include <stddef.h>

#include "addr.h"
#include "route.h"

#define CFG_TAG_MAX 32 /* the longest tag the tagging design took */

#define CFG_DEFAULT_PATH "/etc/mxswitch/mxswitch.conf"

enum cfg_on_error { CFG_ON_ERROR_TEMPFAIL = 0, CFG_ON_ERROR_DEFAULT };

/* A list of strings from the file; v[n] is NULL. */
struct cfg_list {
    size_t n;
    char **v;
};

struct cfg {
    char *path;

    char *milter_socket;
    int milter_timeout;
    char *milter_user;        /* drop to this user after opening sockets */
    char *milter_group;       /* "" = the user's primary group */
    int milter_allow_root;    /* run as root when no user is set */
    char *milter_socket_mode; /* octal, for a unix milter socket */
    char *milter_pid_file;    /* "" = none */

    char *redis_host;
    int redis_port;
    char *redis_unix;
    char *redis_username;
    char *redis_password;
    int redis_db;
    int redis_timeout_ms;
    int redis_connections;
    struct cfg_list redis_servers; /* "host:port", "[v6]:port", "unix:/p" */
    char *sentinel_master;         /* "" = no Sentinel */
    struct cfg_list sentinel_servers;
    char *sentinel_password;     /* AUTH to the Sentinels; "" = none */
    int sentinel_prefer_replica; /* reads from a replica when one is up */

    char *prefix;
    int default_mode; /* enum route_mode */
    int on_error;     /* enum cfg_on_error */
    int subdomains;
    char *delimiter;                 /* one byte */
    char *address_prefix;            /* "" = no per-address keys */
    int dry_run;                     /* decide and log, change nothing */
    struct cfg_list local_addresses; /* IPs/CIDRs of this host; empty = own
                                        interface addresses */

    int cache_ttl;
    int cache_max_entries;
    int cache_stale_ttl; /* seconds past ttl an answer serves while Redis is
                            unreachable; 0 = off */

    char *smap_socket; /* "" = no socketmap server */
    int smap_max_clients;
    char *smap_helo_name; /* the probe's EHLO name; "" = the host's */

    char *stats_prometheus_file; /* "" = off */
    int stats_interval;          /* seconds between writes */

    char *warnings; /* "file:line: reason" lines for removed settings, or
                       NULL: the file loads, the caller says them */

    /* routing.remote_tag and local_tag of the design that tagged
     * recipients (removed settings, default ADDR_LEGACY_*): still taken
     * off the addresses of mail it queued */
    char queued_remote_tag[CFG_TAG_MAX + 1];
    char queued_local_tag[CFG_TAG_MAX + 1];
};

/* The instance's own transports, written by the Postfix setup script to
 * CFG_TRANSPORTS_FILE beside the config: only it knows them. */
#define CFG_TRANSPORTS_FILE "postfix-transports"
#define CFG_TRANSPORT_MAX   256

struct cfg_transports {
    char local[CFG_TRANSPORT_MAX];  /* "" = unknown: local mode NOTFOUND */
    char remote[CFG_TRANSPORT_MAX]; /* default "smtp:" */
};

const char *cfg_unix_path(const char *spec);
struct cfg *cfg_load(const char *path, char **errors);
void cfg_free(struct cfg *cfg);
char *cfg_dump(const struct cfg *cfg);
char *cfg_changed(const struct cfg *a, const struct cfg *b);
struct addr_tags cfg_tags(const struct cfg *cfg);
void cfg_transports_path(const struct cfg *cfg, char *out, size_t outlen);
int cfg_transports_load(const char *path, struct cfg_transports *t, char *why,
                        size_t whylen);
int cfg_check_cidr(const char *v, char *why, size_t whylen);
int cfg_parse_cidr(const char *v, int *family, unsigned char *addr, int *bits,
                   char *why, size_t whylen);
int cfg_check_endpoint(const char *v, char *why, size_t whylen);

#endif
