/*
 * mlfi.c - milter callbacks: the envelope phase.  Each recipient is
 * decided at RCPT (lookup_route()) and logged; the milter changes no
 * recipient (the MTA asks the socket map server when it delivers) and
 * refuses only what must wait: a failed lookup, a remote- or backup-mode
 * domain whose best MX is still this server, an address it cannot read.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "cache.h"
#include "cfg.h"
#include "cfgref.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "mlfi.h"
#include "mxs.h"
#include "rclient.h"
#include "route.h"
#include "stats.h"

#define WHYLEN 512

/* The text of the 451 4.3.0 for a lookup that failed. */
#define TEXT_4_3_0 "Mail routing temporarily unavailable, try again later"

/* Per-session state. */
struct session {
    struct cfgref *ref; /* the config in force when the session began */
};

static struct cache *g_cache;
static struct cache *g_nocache; /* for sessions that outlived a reload */
static struct rclient *g_rc;
static struct dns *g_dns;
static int g_sessions; /* atomic */

/*
 * The gate: after smfi_main() returns, libmilter starts no new session,
 * but a callback it began just before may still be running, and one whose
 * worker passed libmilter's own stop check may yet begin.  mlfi_stop()
 * shuts the gate and waits for the callbacks inside; one that comes later
 * touches nothing shared.
 */
static pthread_mutex_t g_gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_idle = PTHREAD_COND_INITIALIZER;
static int g_inside; /* callbacks running; under g_gate */
static int g_shut;   /* mlfi_stop() was called; under g_gate */

/* mlfi_setup - hand the callbacks their shared objects; name the
 * sources of the decisions they count (before threads start) */
void
mlfi_setup(struct cache *cache, struct rclient *rc, struct dns *dns)
{
    const char *sources[LOOKUP_NSOURCES];
    int i;

    _Static_assert(LOOKUP_NSOURCES <= STATS_SOURCES_MAX,
                   "stats counts every lookup source");
    for (i = 0; i < LOOKUP_NSOURCES; i++)
        sources[i] = lookup_source_name((enum lookup_source)i);
    stats_sources(sources, LOOKUP_NSOURCES);
    g_cache = cache;
    g_nocache = cache_create(0, 0);
    g_rc = rc;
    g_dns = dns;
}

/* mlfi_teardown - free what mlfi_setup() made; after the last session */
void
mlfi_teardown(void)
{
    cache_free(g_nocache);
    g_nocache = NULL;
}

/* enter - a callback begins: 1, or 0 once the gate is shut */
static int
enter(void)
{
    int open;

    xlock(&g_gate);
    if ((open = !g_shut))
        g_inside++;
    xunlock(&g_gate);
    return open;
}

/* leave - a callback that entered is done */
static void
leave(void)
{
    xlock(&g_gate);
    if (--g_inside == 0 && g_shut)
        pthread_cond_broadcast(&g_idle);
    xunlock(&g_gate);
}

/* mlfi_stop - shut the gate; wait up to secs for callbacks inside */
int
mlfi_stop(int secs)
{
    struct timespec until;
    int idle;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += secs;
    xlock(&g_gate);
    g_shut = 1;
    while (g_inside > 0 &&
           pthread_cond_timedwait(&g_idle, &g_gate, &until) == 0)
        ;
    idle = g_inside == 0;
    xunlock(&g_gate);
    return idle;
}

/* mlfi_sessions - SMTP sessions with state now */
int
mlfi_sessions(void)
{
    return __atomic_load_n(&g_sessions, __ATOMIC_ACQUIRE);
}

/* session_get - this session's state, made on first use */
static struct session *
session_get(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->ref = cfgref_hold();
        smfi_setpriv(ctx, s);
        stats_session();
        __atomic_add_fetch(&g_sessions, 1, __ATOMIC_ACQ_REL);
    }
    return s;
}

/* queue_id - the MTA's queue id for log lines */
static const char *
queue_id(SMFICTX *ctx)
{
    const char *id = smfi_getsymval(ctx, "i");

    return id != NULL && id[0] != '\0' ? id : "NOQUEUE";
}

/*
 * refuse - answer this recipient 4xx with a text, except in dry run:
 * accept it.  The caller logs with answered(cfg) in front of the code.
 */
static sfsistat
refuse(SMFICTX *ctx, const struct cfg *cfg, const char *code, const char *dsn,
       const char *text)
{
    if (cfg->dry_run)
        return SMFIS_CONTINUE;
    stats_tempfail(dsn);
    if (smfi_setreply(ctx, (char *)code, (char *)dsn, (char *)text) !=
        MI_SUCCESS)
        log_warnx("%s: cannot set the %s reply text", queue_id(ctx), code);
    return SMFIS_TEMPFAIL;
}

/* answered - "answered " or, in dry run, "dry_run would=" */
static const char *
answered(const struct cfg *cfg)
{
    return cfg->dry_run ? "dry_run would=" : "answered ";
}

/* mlfi_negotiate - no changes to the message; skip what we never read */
static sfsistat
mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
               unsigned long f2, unsigned long f3, unsigned long *pf0,
               unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    const unsigned long skip = SMFIP_NOHELO | SMFIP_NOHDRS | SMFIP_NOEOH |
                               SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA;

    (void)ctx;
    (void)f0;
    (void)f2;
    (void)f3;
    *pf0 = 0;
    *pf1 = f1 & skip;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

/* mlfi_connect - make the session state */
static sfsistat
mlfi_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)host;
    (void)addr;
    if (!enter())
        return SMFIS_CONTINUE; /* stopping: the recipients will wait */
    session_get(ctx);
    leave();
    return SMFIS_CONTINUE;
}

/* cache_of - the cache of a session's config: a session that began before
 * a reload asks Redis itself and stores nothing (the prefix may differ) */
static struct cache *
cache_of(const struct cfgref *ref)
{
    return cfgref_is_current(ref) ? g_cache : g_nocache;
}

/*
 * decision_log - the line of one recipient's decision: "qid: rcpt=...
 * domain=... mode=... source=... key=... action=ACTION (why)"
 */
static void
decision_log(const struct cfg *cfg, const char *qid, const char *shown,
             const struct lookup_route *lr, const char *why)
{
    const struct lookup_result *res = &lr->res;

    log_info("%s: rcpt=%s domain=%s mode=%s source=%s%s key=%s%s action=%s%s "
             "(%s%s%s)",
             qid, shown, lr->domain, route_mode_name(lr->out.mode),
             lookup_source_name(res->source),
             lr->failed ? " (lookup failed)" : "",
             res->key[0] ? lookup_key_prefix(cfg, res->kind) : "",
             res->key[0] ? res->key : "-", route_action_name(lr->out.action),
             cfg->dry_run ? " dry_run" : "", why, lr->evidence[0] ? "; " : "",
             lr->evidence);
}

/* envrcpt - decide one recipient; refuse with 4xx what must wait */
static sfsistat
envrcpt(SMFICTX *ctx, char **argv)
{
    struct session *s = session_get(ctx);
    const struct cfg *cfg = s->ref->cfg;
    const char *qid = queue_id(ctx);
    struct addr_tags t = cfg_tags(cfg);
    char why[WHYLEN], shown[ADDR_MAX + 64];
    struct lookup_route lr;
    struct addr a;
    int rcode;

    if (argv == NULL || argv[0] == NULL)
        return SMFIS_CONTINUE;
    mxs_escape(shown, sizeof(shown), argv[0], strlen(argv[0]));
    if (addr_parse(argv[0], &t, &a, why, sizeof(why)) != MXS_OK) {
        log_warnx("%s: rcpt=%s: malformed address (%s): %s451 4.1.3", qid,
                  shown, why, answered(cfg));
        return refuse(ctx, cfg, "451", "4.1.3",
                      "Recipient address not understood by the router");
    }
    rcode = lookup_route(cfg, cache_of(s->ref), g_rc, g_dns, &a, mxs_now_ms(),
                         &lr, why, sizeof(why));
    addr_clear(&a);
    if (rcode == MXS_NOMATCH) {
        log_debug("%s: rcpt=%s: no opinion (%s)", qid, shown, why);
        return SMFIS_CONTINUE;
    }
    if (rcode == MXS_INVALID) {
        log_warnx("%s: rcpt=%s: bad domain (%s): %s451 4.1.2", qid, shown, why,
                  answered(cfg));
        return refuse(ctx, cfg, "451", "4.1.2",
                      "Recipient domain not understood");
    }
    stats_decision((int)lr.out.mode, (int)lr.res.source, (int)lr.out.action);
    if (lr.res.source == LOOKUP_STALE && lr.res.stale_first)
        log_warnx("%s: redis cannot answer (%s): using cached answers up to "
                  "cache.stale_ttl past their ttl until it is back",
                  qid, lr.note);
    if (lr.res.dns_stale == DNS_STALE_FIRST)
        log_warnx("%s: DNS cannot answer for %s: using its auto decision up "
                  "to cache.stale_ttl past its TTL (%s)",
                  qid, lr.domain, lr.evidence);
    if (lr.out.action == ROUTE_ACT_TEMP) {
        log_warnx("%s: rcpt=%s domain=%s: lookup failed (%s): %s451 4.3.0", qid,
                  shown, lr.domain, lr.note, answered(cfg));
        return refuse(ctx, cfg, "451", "4.3.0", TEXT_4_3_0);
    }
    if (lr.failed)
        log_warnx("%s: rcpt=%s domain=%s: lookup failed (%s): using "
                  "routing.default %s",
                  qid, shown, lr.domain, lr.note, route_mode_name(lr.out.mode));
    decision_log(cfg, qid, shown, &lr, why);
    if (lr.out.action == ROUTE_ACT_HOLD) {
        log_warnx("%s: rcpt=%s domain=%s: mode %s, but the best MX is this "
                  "server: %s450 4.4.6",
                  qid, shown, lr.domain, route_mode_name(lr.out.mode),
                  answered(cfg));
        return refuse(ctx, cfg, "450", "4.4.6",
                      "The domain's mail exchanger is moving, try again later");
    }
    return SMFIS_CONTINUE;
}

/* mlfi_envrcpt - envrcpt(), or, once stopping, 451 (dry run: accept) */
static sfsistat
mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
    struct session *s;
    sfsistat r;

    if (!enter()) {
        s = smfi_getpriv(ctx);
        return s != NULL && s->ref->cfg->dry_run ? SMFIS_CONTINUE
                                                 : SMFIS_TEMPFAIL;
    }
    r = envrcpt(ctx, argv);
    leave();
    return r;
}

/* mlfi_close - the session ended: free its state */
static sfsistat
mlfi_close(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s == NULL || !enter())
        return SMFIS_CONTINUE; /* stopping: the process frees it */
    cfgref_release(s->ref);
    free(s);
    smfi_setpriv(ctx, NULL);
    __atomic_sub_fetch(&g_sessions, 1, __ATOMIC_ACQ_REL);
    leave();
    return SMFIS_CONTINUE;
}

struct smfiDesc mlfi_desc = {
    .xxfi_name = "mxswitch",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = 0,
    .xxfi_connect = mlfi_connect,
    .xxfi_envrcpt = mlfi_envrcpt,
    .xxfi_close = mlfi_close,
    .xxfi_negotiate = mlfi_negotiate,
};
