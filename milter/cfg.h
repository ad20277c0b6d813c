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

#include "route.h"

#define CFG_DEFAULT_PATH "/etc/mxswitch/mxswitch.conf"

enum cfg_on_error { CFG_ON_ERROR_TEMPFAIL = 0, CFG_ON_ERROR_DEFAULT };

struct cfg {
    char *path;

    char *milter_socket;
    int milter_timeout;
    char *milter_user;         /* drop to this user after opening sockets */
    char *milter_group;        /* "" = the user's primary group */
    int milter_allow_root;     /* run as root when no user is set */
    char *milter_socket_mode;  /* octal, for a unix milter socket */
    char *milter_pid_file;     /* "" = none */
    int milter_max_recipients; /* per message; more get 452 4.5.3 */

    char *redis_host;
    int redis_port;
    char *redis_unix;
    char *redis_username;
    char *redis_password;
    int redis_db;
    int redis_timeout_ms;
    int redis_connections;

    char *prefix;
    int default_mode; /* enum route_mode */
    int on_error;     /* enum cfg_on_error */
    int subdomains;
    char *delimiter; /* one byte */
    char *remote_tag;
    char *local_tag;

    int cache_ttl;
    int cache_max_entries;

    char *smap_socket; /* "" = no socketmap server */
    char *smap_name;
    int smap_max_clients;
};

const char *cfg_unix_path(const char *spec);
struct cfg *cfg_load(const char *path, char **errors);
void cfg_free(struct cfg *cfg);
char *cfg_dump(const struct cfg *cfg);
struct addr_tags cfg_tags(const struct cfg *cfg);

#endif
