/*
 * main.c - mxswitch: command line, startup, shutdown
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <libgen.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cfg.h"
#include "cfgref.h"
#include "dns.h"
#include "log.h"
#include "mlfi.h"
#include "mxs.h"
#include "rclient.h"
#include "smap.h"
#include "stats.h"

#define STOP_WAIT_SECONDS 30 /* for the callbacks running at stop */

/* What the signal thread needs; set in main() before it starts. */
static const char *g_path;    /* the config file, read again on SIGUSR1 */
static struct cfgref *g_boot; /* the config the daemon started with */
static struct cache *g_cache;
static struct rclient *g_rc;
static pthread_t g_sigthread;
static int g_quit; /* atomic: main() is done with signals */

#define EXIT_WOULD_FAIL 3 /* -t: a valid file, but the start would fail */

/* usage - print the synopsis and exit */
static void __attribute__((noreturn)) usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: mxswitch [-fhtvV] [-c config]\n"
            "  -c FILE        configuration file (default %s)\n"
            "  -f             stay in the foreground and log to stderr\n"
            "  -t             check the configuration and what the start "
            "needs, and exit\n"
            "                 (0: ok, 1: invalid file, 3: would not start)\n"
            "  -v             verbose: log debug lines (with -t: print "
            "settings)\n"
            "  -V, --version  print the version and exit\n"
            "  -h, --help     this help\n",
            CFG_DEFAULT_PATH);
    exit(code);
}

/* The long options: the two every Debian program has. */
static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* on_key - a routing key changed in Redis: forget it */
static void
on_key(const char *key, size_t len, void *arg)
{
    cache_invalidate(arg, key, len);
}

/* on_reset - changes may have been missed: ask Redis again, but keep
 * the answers for stale use (a Redis that came back empty, rclient.h) */
static void
on_reset(void *arg)
{
    cache_expire(arg, mxs_now_ms());
}

/*
 * Signals, as libmilter milters share them.  smfi_main() starts a thread
 * of libmilter's own that sigwait()s for SIGHUP, SIGTERM and SIGINT and
 * stops the milter on any of them: smfi_main() returns and main() stops
 * the rest.  Our signal thread (sigwaitinfo) takes only what libmilter
 * leaves alone: SIGUSR1 reloads the configuration (as OpenDKIM's does),
 * SIGUSR2 logs the counters.
 */

/* signal_set - the signals our signal thread takes */
static void
signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

/*
 * block_signals - keep the signals away from every thread but their two
 *
 * Every thread inherits this mask: only libmilter's signal thread (in
 * sigwait) takes SIGHUP, SIGTERM or SIGINT, only ours SIGUSR1 or SIGUSR2;
 * one that comes before a thread waits for it stays pending until then.
 * A write to a socket that Redis closed must not kill us either.
 */
static void
block_signals(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    /* A shell starts background jobs with SIGINT ignored: undo that. */
    signal(SIGINT, SIG_DFL);
    signal_set(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
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

    char line[PATH_MAX + 64];

    if (cfg == NULL) {
        log_stderr_lines(LOG_ERR, errors);
        snprintf(line, sizeof(line), "mxswitch: %s: configuration rejected",
                 path);
        log_stderr_lines(LOG_ERR, line);
        free(errors);
    } else if (cfg->warnings != NULL) {
        log_stderr_lines(LOG_WARNING, cfg->warnings);
    }
    return cfg;
}

/* say - one line of -t's findings on stderr, "mxswitch: FILE: ..." */
static void __attribute__((format(printf, 3, 4)))
say(int pri, const char *path, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "mxswitch: %s: ", path);

    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    log_stderr_lines(pri, line);
}

/* writable_by - whether the mode bits let uid (in groups) make and remove
 * files in a directory (ACLs are not looked at) */
static int
writable_by(const struct stat *st, uid_t uid, const gid_t *groups, int ngroups)
{
    int i;

    if (uid == 0)
        return 1;
    if (st->st_uid == uid)
        return (st->st_mode & (S_IWUSR | S_IXUSR)) == (S_IWUSR | S_IXUSR);
    for (i = 0; i < ngroups; i++)
        if (st->st_gid == groups[i])
            return (st->st_mode & (S_IWGRP | S_IXGRP)) == (S_IWGRP | S_IXGRP);
    return (st->st_mode & (S_IWOTH | S_IXOTH)) == (S_IWOTH | S_IXOTH);
}

/*
 * check_dir - a file's directory, for -t: 0 or 1 problem
 *
 * The daemon makes its sockets and the pid file before it drops to
 * milter.user (pw, NULL if it keeps its user): the directory must exist
 * and be writable now.  It removes them at exit as milter.user: when that
 * user cannot, the files stay behind (a warning; the next start replaces
 * them).
 */
static int
check_dir(const char *path, const char *setting, const char *value,
          const char *file, const struct passwd *pw, gid_t gid)
{
    char copy[PATH_MAX], *dir;
    gid_t groups[NGROUPS_MAX];
    int ngroups = NGROUPS_MAX;
    struct stat st;

    if (snprintf(copy, sizeof(copy), "%s", file) >= (int)sizeof(copy)) {
        say(LOG_ERR, path, "%s %s: path too long", setting, value);
        return 1;
    }
    dir = dirname(copy);
    if (stat(dir, &st) != 0) {
        say(LOG_ERR, path,
            "%s %s: directory %s: %s (create it, or choose "
            "another place)",
            setting, value, dir, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say(LOG_ERR, path, "%s %s: %s is not a directory", setting, value, dir);
        return 1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        say(LOG_ERR, path, "%s %s: cannot create files in %s: %s", setting,
            value, dir, strerror(errno));
        return 1;
    }
    if (pw != NULL && (getgrouplist(pw->pw_name, gid, groups, &ngroups) < 0 ||
                       !writable_by(&st, pw->pw_uid, groups, ngroups)))
        say(LOG_WARNING, path,
            "warning: %s %s: %s is not writable by "
            "milter.user %s: the file stays behind at exit (the next start "
            "replaces it)",
            setting, value, dir, pw->pw_name);
    return 0;
}

/*
 * check_start - for -t: what would stop the start, beyond the file itself;
 * the number of problems, each told on stderr
 *
 * As root the daemon becomes milter.user (and milter.group), or refuses
 * to run as root without one (drop_privileges()); the directories of the
 * unix sockets and the pid file must take a file.  What needs the running
 * daemon (a socket in use, Redis) is not checked.
 */
static int
check_start(const char *path, const struct cfg *cfg)
{
    const char *socks[2][2] = {{"milter.socket", cfg->milter_socket},
                               {"socketmap.socket", cfg->smap_socket}};
    struct passwd *pw = NULL;
    struct group *gr;
    int bad = 0, i;
    gid_t gid = 0;

    if (geteuid() == 0 && cfg->milter_user[0] != '\0') {
        if ((pw = getpwnam(cfg->milter_user)) == NULL) {
            say(LOG_ERR, path,
                "milter.user %s: no such user: create it "
                "(useradd --system --no-create-home --shell /usr/sbin/nologin "
                "%s) or name an existing one",
                cfg->milter_user, cfg->milter_user);
            bad++;
        } else
            gid = pw->pw_gid;
        if (cfg->milter_group[0] != '\0') {
            if ((gr = getgrnam(cfg->milter_group)) == NULL) {
                say(LOG_ERR, path,
                    "milter.group %s: no such group: create "
                    "it (groupadd --system %s), or \"\" for the user's own",
                    cfg->milter_group, cfg->milter_group);
                bad++;
            } else
                gid = gr->gr_gid;
        }
    } else if (geteuid() == 0 && !cfg->milter_allow_root) {
        say(LOG_ERR, path,
            "started as root, mxswitch would refuse to run: "
            "set milter.user (or milter.allow_root = true)");
        bad++;
    }
    for (i = 0; i < 2; i++)
        if (socks[i][1] != NULL && cfg_unix_path(socks[i][1]) != NULL)
            bad += check_dir(path, socks[i][0], socks[i][1],
                             cfg_unix_path(socks[i][1]), pw, gid);
    if (cfg->milter_pid_file[0] != '\0')
        bad += check_dir(path, "milter.pid_file", cfg->milter_pid_file,
                         cfg->milter_pid_file, pw, gid);
    return bad;
}

/*
 * notify - tell systemd (Type=notify) what we are doing, if it asked
 *
 * The sd_notify protocol without libsystemd: one datagram of
 * "VAR=value" lines to the unix socket named by NOTIFY_SOCKET ("@" for
 * the abstract namespace).  Best effort: failures change nothing.
 */
static void
notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    size_t len;
    int fd;

    if (path == NULL || (path[0] != '/' && path[0] != '@') ||
        (len = strlen(path)) >= sizeof(sun.sun_path))
        return;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return;
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                 (struct sockaddr *)&sun,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

/* Settings read only at startup: a reload names them and keeps the old. */
static const char *const restart_only[] = {
    "milter.socket",
    "milter.timeout",
    "milter.user",
    "milter.group",
    "milter.allow_root",
    "milter.pid_file",
    "redis.",
    "cache.",
    "socketmap.socket",
    "socketmap.max_clients",
    "socketmap.helo_name",
    "routing.local_addresses",
    NULL,
};

/* needs_restart - whether a setting ("group.name") is read only at start */
static int
needs_restart(const char *name)
{
    size_t i;

    for (i = 0; restart_only[i] != NULL; i++)
        if (strncmp(name, restart_only[i], strlen(restart_only[i])) == 0)
            return 1;
    return 0;
}

/* watch_start - watch the domain keys, and the address keys when on */
static void
watch_start(struct rclient *rc, const struct cfg *cfg, struct cache *cache)
{
    const char *watch[2];

    watch[0] = cfg->prefix;
    watch[1] = cfg->address_prefix;
    rclient_watch_start(rc, watch, cfg->address_prefix[0] != '\0' ? 2 : 1,
                        on_key, on_reset, cache);
}

/*
 * log_changes - log each changed setting; 1 if a key prefix is one
 *
 * Startup-only settings are compared with the config the daemon started
 * with (changing one back needs no restart), the rest with the config in
 * force.  Names only: a value could be a secret.
 */
static int
log_changes(const struct cfg *cur, const struct cfg *next)
{
    char *boot = cfg_changed(g_boot->cfg, next), *now = cfg_changed(cur, next);
    char *name, *save = NULL;
    int prefix = 0;

    for (name = strtok_r(boot, "\n", &save); name != NULL;
         name = strtok_r(NULL, "\n", &save))
        if (needs_restart(name))
            log_warnx("reload: %s changed: needs a restart; the running "
                      "value stays in force",
                      name);
    for (name = strtok_r(now, "\n", &save); name != NULL;
         name = strtok_r(NULL, "\n", &save)) {
        if (needs_restart(name))
            continue;
        log_info("reload: %s changed", name);
        prefix |= strcmp(name, "routing.prefix") == 0 ||
                  strcmp(name, "routing.address_prefix") == 0;
    }
    free(boot);
    free(now);
    return prefix;
}

/*
 * reload - SIGUSR1: read the config file again, make it current if valid
 *
 * A file with any error changes nothing: each error is logged and the
 * config in force stays.  Sessions in progress keep the config they began
 * with; the cache is emptied, since the prefix, the tags or the default
 * may have changed what a domain's answer is.
 */
static void
reload(void)
{
    char *errors = NULL, *line, *save = NULL;
    struct cfg *next = cfg_load(g_path, &errors);
    struct cfgref *cur;
    int prefix;

    if (next == NULL) {
        for (line = strtok_r(errors, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save))
            log_err("reload: %s", line);
        log_err("reload: %s: reload rejected, old configuration kept", g_path);
        free(errors);
        stats_reload(0);
        return;
    }
    if (next->warnings != NULL)
        for (line = strtok_r(next->warnings, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save))
            log_warnx("reload: %s", line);
    cur = cfgref_hold();
    prefix = log_changes(cur->cfg, next);
    cfgref_release(cur);
    if (next->default_mode == ROUTE_LOCAL)
        log_warnx("routing.default = \"local\": \"none\" is the safe default");
    cfgref_swap(next);
    if (prefix) {
        /* The watcher subscribed to the old prefixes' keys. */
        rclient_watch_stop(g_rc);
        watch_start(g_rc, next, g_cache);
    }
    /* Entries are Redis's answers by key: with the same prefixes they
     * stay as stale answers (Redis may be away right now), else they name
     * keys no longer asked. */
    if (prefix)
        cache_flush(g_cache);
    else
        cache_expire(g_cache, mxs_now_ms());
    stats_reload(1);
    cur = cfgref_hold();
    log_info("reload: %s: configuration %lu in force", g_path, cur->gen);
    cfgref_release(cur);
}

/* signal_main - our signal thread: reload, report */
static void *
signal_main(void *arg)
{
    sigset_t set;
    int sig;
    char *line;

    (void)arg;
    signal_set(&set);
    for (;;) {
        if ((sig = sigwaitinfo(&set, NULL)) < 0)
            continue; /* EINTR */
        if (__atomic_load_n(&g_quit, __ATOMIC_ACQUIRE))
            return NULL;
        switch (sig) {
        case SIGUSR1:
            log_info("SIGUSR1: reloading %s", g_path);
            notify("RELOADING=1");
            reload();
            notify("READY=1");
            break;
        case SIGUSR2:
            line = stats_summary();
            log_info("%s", line);
            free(line);
            break;
        }
    }
}

/* signals_start - the signal thread; after block_signals() */
static void
signals_start(void)
{
    if (pthread_create(&g_sigthread, NULL, signal_main, NULL) != 0)
        fatalx("cannot start the signal thread");
}

/* signals_stop - end the signal thread, now that main() is done */
static void
signals_stop(void)
{
    __atomic_store_n(&g_quit, 1, __ATOMIC_RELEASE);
    pthread_kill(g_sigthread, SIGUSR1);
    pthread_join(g_sigthread, NULL);
}

int
main(int argc, char **argv)
{
    const char *path = CFG_DEFAULT_PATH;
    int foreground = 0, test = 0, verbose = 0, ch, rv, idle;
    const char *sock;
    struct rclient *rc;
    struct cache *cache;
    struct dns *dns;
    struct smap *smap;
    struct cfg *cfg;
    char why[512];

    while ((ch = getopt_long(argc, argv, "c:fhtvV", long_options, NULL)) !=
           -1) {
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
        say(LOG_WARNING, path,
            "warning: routing.default = \"local\": domains with no key are "
            "left to the MTA's own routing, never delivered here by "
            "mxswitch; \"none\" says that plainly");
    if (test) {
        if (verbose) {
            char *dump = cfg_dump(cfg);

            fputs(dump, stdout);
            free(dump);
        }
        fflush(stdout);
        rv = check_start(path, cfg);
        if (rv == 0)
            printf("mxswitch: %s: configuration ok\n", path);
        else
            say(LOG_ERR, path,
                "the configuration is valid, but mxswitch "
                "would not start: %d problem%s above",
                rv, rv > 1 ? "s" : "");
        cfg_free(cfg);
        return rv == 0 ? 0 : EXIT_WOULD_FAIL;
    }

    log_init("mxswitch", foreground, verbose);
    if (!foreground && cfg->warnings != NULL)
        log_warnx("%s", cfg->warnings); /* stderr is not the log */
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
    smap = smap_open(cfg); /* before daemon(): a socket in use stops here */
    if (!foreground && daemon(0, 0) != 0)
        fatal("cannot become a daemon");
    write_pid(cfg);
    drop_privileges(cfg);

    block_signals();
    g_path = path;
    cfgref_init(cfg);
    g_boot = cfgref_hold(); /* startup-only settings, until exit */
    rc = rclient_create_cfg(cfg);
    cache = cache_create((size_t)cfg->cache_max_entries,
                         (uint64_t)cfg->cache_ttl * 1000);
    cache_set_stale(cache, (uint64_t)cfg->cache_stale_ttl * 1000);
    dns = dns_create((const char *const *)cfg->local_addresses.v,
                     cfg->local_addresses.n, (size_t)cfg->cache_max_entries,
                     why, sizeof(why));
    if (dns == NULL)
        fatalx("routing.local_addresses: %s", why);
    dns_set_stale(dns, (uint64_t)cfg->cache_stale_ttl * 1000);
    dns_start(dns, DNS_WAIT_MS); /* answers never wait long on DNS */
    mlfi_setup(cache, rc, dns);
    g_cache = cache;
    g_rc = rc;
    if (rclient_ping(rc, why, sizeof(why)) != 0)
        log_warnx("redis: %s (lookups answer per routing.on_error until it "
                  "is reachable)",
                  why);
    watch_start(rc, cfg, cache);
    /* Before the start line, which says every socket is served: its
     * transports line comes first. */
    smap_start(smap, cache, rc, dns);
    log_info("mxswitch %s: milter on %s, redis %s, keys %s<domain>%s%s%s, "
             "default %s, on_error %s, cache ttl %ds stale_ttl %ds%s",
             MXS_VERSION, cfg->milter_socket, rclient_endpoint(rc), cfg->prefix,
             cfg->address_prefix[0] ? " and " : "", cfg->address_prefix,
             cfg->address_prefix[0] ? "<local@domain>" : "",
             route_mode_name((enum route_mode)cfg->default_mode),
             cfg->on_error == CFG_ON_ERROR_TEMPFAIL ? "tempfail" : "default",
             cfg->cache_ttl, cfg->cache_stale_ttl,
             cfg->dry_run ? ", DRY RUN: decisions are logged, the MTA "
                            "routes and accepts as without mxswitch"
                          : "");
    stats_writer_start();
    signals_start();
    notify("READY=1");

    /*
     * HUP, TERM or INT: libmilter stopped listening and serving.  XXX A
     * stop signal in libmilter's first moments, before its listener has
     * polled once, can make smfi_main() report a failure (the listener
     * finds the socket its signal thread just closed): we exit 1 then, as
     * for any failure it reports.  Once it answered, a stop exits 0.
     */
    rv = smfi_main();
    notify("STOPPING=1");
    if (rv != MI_SUCCESS)
        log_warnx("libmilter ended with a failure (its log line says why)");
    log_info("milter stopped: %d session(s) in progress end with the MTA's "
             "milter default action",
             mlfi_sessions());
    idle = mlfi_stop(STOP_WAIT_SECONDS);
    /* Postfix may still ask while the MTA finishes: stop answering last. */
    smap_stop(smap);
    signals_stop();
    stats_writer_stop();
    if (!idle) {
        log_warnx("callbacks still running after %d s; exiting anyway",
                  STOP_WAIT_SECONDS);
        if (cfg->milter_pid_file[0] != '\0')
            unlink(cfg->milter_pid_file);
        return 1;
    }
    rclient_free(rc);
    cache_free(cache);
    mlfi_teardown();
    dns_free(dns);
    if (cfg->milter_pid_file[0] != '\0' && unlink(cfg->milter_pid_file) != 0)
        log_warn("cannot remove %s", cfg->milter_pid_file);
    /* libmilter may leave a unix socket's file behind. */
    if ((sock = cfg_unix_path(cfg->milter_socket)) != NULL &&
        unlink(sock) != 0 && errno != ENOENT)
        log_warn("cannot remove %s", sock);
    cfgref_release(g_boot);
    cfgref_shutdown();
    log_info("stopped");
    log_close();
    return rv == MI_SUCCESS ? 0 : 1;
}
