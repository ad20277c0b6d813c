/*
 * main.c - mxswitch: command line, startup, shutdown
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cfg.h"
#include "log.h"
#include "mlfi.h"
#include "mxcheck.h"
#include "mxs.h"
#include "rclient.h"
#include "smap.h"

#define DRAIN_SECONDS 30

/* usage - print the synopsis and exit */
static void __attribute__((noreturn)) usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: mxswitch [-fhtvV] [-c config]\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -f       stay in the foreground and log to stderr\n"
            "  -t       check the configuration and exit (0: valid)\n"
            "  -v       verbose: log debug lines (with -t: print settings)\n"
            "  -V       print the version and exit\n"
            "  -h       this help\n",
            CFG_DEFAULT_PATH);
    exit(code);
}

/* on_key - a routing key changed in Redis: forget it */
static void
on_key(const char *key, size_t len, void *arg)
{
    cache_invalidate(arg, key, len);
}

/* on_reset - changes may have been missed: forget everything */
static void
on_reset(void *arg)
{
    cache_flush(arg);
}

/* drain - give sessions in progress time to finish before freeing */
static int
drain(void)
{
    struct timespec ts = {0, 100 * 1000000L};
    int i;

    for (i = 0; i < DRAIN_SECONDS * 10 && mlfi_sessions() > 0; i++)
        nanosleep(&ts, NULL);
    return mlfi_sessions() == 0;
}

/*
 * block_signals - leave SIGTERM, SIGHUP and SIGINT to libmilter
 *
 * libmilter's signal thread sigwait()s for them; every thread we start
 * inherits this mask, so none of ours can take the signal and die of it.
 * A write to a socket that Redis closed must not kill us either.
 */
static void
block_signals(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    /* A shell starts background jobs with SIGINT ignored: undo that. */
    signal(SIGINT, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        fatalx("cannot block signals");
}

/* write_pid - the pid file, if configured (after daemon(): final pid) */
static void
write_pid(const struct cfg *cfg)
{
    FILE *f;

    if (cfg->milter_pid_file[0] == '\0')
        return;
    f = fopen(cfg->milter_pid_file, "w");
    if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0)
        fatal("cannot write milter.pid_file %s", cfg->milter_pid_file);
}

/*
 * drop_privileges - after the sockets are open: become milter.user
 *
 * As root with no milter.user, refuse to run unless milter.allow_root.
 * A unix milter socket gets milter.socket_mode and the user's group first,
 * so the MTA's group can connect.
 */
static void
drop_privileges(const struct cfg *cfg)
{
    const char *sock = cfg_unix_path(cfg->milter_socket);
    mode_t mode = (mode_t)strtol(cfg->milter_socket_mode, NULL, 8);
    struct passwd *pw = NULL;
    struct group *gr;
    gid_t gid = 0;

    if (geteuid() == 0 && cfg->milter_user[0] != '\0') {
        if ((pw = getpwnam(cfg->milter_user)) == NULL)
            fatalx("milter.user %s: no such user", cfg->milter_user);
        gid = pw->pw_gid;
        if (cfg->milter_group[0] != '\0') {
            if ((gr = getgrnam(cfg->milter_group)) == NULL)
                fatalx("milter.group %s: no such group", cfg->milter_group);
            gid = gr->gr_gid;
        }
    }
    if (sock != NULL) {
        if (chmod(sock, mode) != 0)
            fatal("cannot chmod %s", sock);
        if (pw != NULL && chown(sock, pw->pw_uid, gid) != 0)
            fatal("cannot chown %s", sock);
    }
    if (geteuid() != 0) {
        if (cfg->milter_user[0] != '\0')
            log_debug("not root: milter.user %s not needed", cfg->milter_user);
        return;
    }
    if (pw == NULL) {
        if (!cfg->milter_allow_root)
            fatalx("refusing to run as root: set milter.user (or "
                   "milter.allow_root = true)");
        log_warnx("running as root (milter.allow_root = true)");
        return;
    }
    if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 ||
        setuid(pw->pw_uid) != 0)
        fatal("cannot become %s", pw->pw_name);
    if (setuid(0) == 0)
        fatalx("could regain root after dropping it");
    log_info("running as %s (uid %ld, gid %ld)", pw->pw_name, (long)pw->pw_uid,
             (long)gid);
}

/* load - read the configuration or explain why not */
static struct cfg *
load(const char *path)
{
    char *errors = NULL;
    struct cfg *cfg = cfg_load(path, &errors);

    if (cfg == NULL) {
        fprintf(stderr, "%s", errors);
        fprintf(stderr, "mxswitch: %s: configuration rejected\n", path);
        free(errors);
    }
    return cfg;
}

int
main(int argc, char **argv)
{
    const char *path = CFG_DEFAULT_PATH;
    int foreground = 0, test = 0, verbose = 0, ch, rv, drained;
    struct rclient_conf rconf;
    struct rclient *rc;
    struct cache *cache;
    struct mxcheck *mx;
    struct smap *smap;
    struct cfg *cfg;
    char why[512];

    while ((ch = getopt(argc, argv, "c:fhtvV")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 't':
            test = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'V':
            printf("mxswitch %s\n", MXS_VERSION);
            return 0;
        case 'h':
            usage(0);
        default:
            usage(2);
        }
    }
    if (optind != argc)
        usage(2);
    cfg = load(path);
    if (cfg == NULL)
        return 1;
    if (cfg->default_mode == ROUTE_LOCAL)
        fprintf(stderr,
                "mxswitch: %s: warning: routing.default = \"local\": domains "
                "with no key get no remote routing, and never the local "
                "tag; \"none\" is the safe default\n",
                path);
    if (test) {
        if (verbose) {
            char *dump = cfg_dump(cfg);

            fputs(dump, stdout);
            free(dump);
        }
        printf("mxswitch: %s: configuration ok\n", path);
        cfg_free(cfg);
        return 0;
    }

    log_init("mxswitch", foreground, verbose);
    if (cfg->default_mode == ROUTE_LOCAL && !foreground)
        log_warnx("routing.default = \"local\": \"none\" is the safe default");
    if (smfi_setconn(cfg->milter_socket) != MI_SUCCESS)
        fatalx("cannot use milter.socket %s", cfg->milter_socket);
    if (smfi_settimeout(cfg->milter_timeout) != MI_SUCCESS)
        fatalx("cannot set milter.timeout");
    if (smfi_register(mlfi_desc) != MI_SUCCESS)
        fatalx("smfi_register failed");
    if (smfi_opensocket(1) != MI_SUCCESS)
        fatalx("cannot listen on %s (in use, or no permission?)",
               cfg->milter_socket);
    mxs_nodelay_listeners(); /* before smap_open: the milter socket only */
    smap = smap_open(cfg);   /* before daemon(): a socket in use stops here */
    if (!foreground && daemon(0, 0) != 0)
        fatal("cannot become a daemon");
    write_pid(cfg);
    drop_privileges(cfg);

    block_signals();
    memset(&rconf, 0, sizeof(rconf));
    rconf.host = cfg->redis_host;
    rconf.port = cfg->redis_port;
    rconf.unix_path = cfg->redis_unix;
    rconf.username = cfg->redis_username;
    rconf.password = cfg->redis_password;
    rconf.db = cfg->redis_db;
    rconf.timeout_ms = cfg->redis_timeout_ms;
    rconf.connections = cfg->redis_connections;
    rc = rclient_create(&rconf);
    cache = cache_create((size_t)cfg->cache_max_entries,
                         (uint64_t)cfg->cache_ttl * 1000);
    mx = mxcheck_create();
    mlfi_setup(cfg, cache, rc, mx);
    if (rclient_ping(rc, why, sizeof(why)) != 0)
        log_warnx("redis: %s (lookups answer per routing.on_error until it "
                  "is reachable)",
                  why);
    rclient_watch_start(rc, cfg->prefix, on_key, on_reset, cache);
    log_info("mxswitch %s: milter on %s, redis %s, keys %s<domain>, "
             "default %s, on_error %s, cache ttl %ds",
             MXS_VERSION, cfg->milter_socket, rclient_endpoint(rc), cfg->prefix,
             route_mode_name((enum route_mode)cfg->default_mode),
             cfg->on_error == CFG_ON_ERROR_TEMPFAIL ? "tempfail" : "default",
             cfg->cache_ttl);
    smap_start(smap, cache, rc);

    rv = smfi_main();
    log_info("stopping: waiting for %d session(s) in progress",
             mlfi_sessions());
    drained = drain();
    /* Postfix may still ask while sessions finish: stop answering last. */
    smap_stop(smap);
    if (!drained) {
        log_warnx("sessions still open after %d s; exiting anyway",
                  DRAIN_SECONDS);
        if (cfg->milter_pid_file[0] != '\0')
            unlink(cfg->milter_pid_file);
        return 1;
    }
    rclient_free(rc);
    cache_free(cache);
    mxcheck_free(mx);
    if (cfg->milter_pid_file[0] != '\0' && unlink(cfg->milter_pid_file) != 0)
        log_warn("cannot remove %s", cfg->milter_pid_file);
    cfg_free(cfg);
    log_info("stopped");
    log_close();
    return rv == MI_SUCCESS ? 0 : 1;
}
