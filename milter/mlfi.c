/*
 * mlfi.c - milter callbacks: decide at RCPT (or, for cache misses with
 * redis.fetch_at "eom", at the end of the message), rewrite at the end
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "cache.h"
#include "cfg.h"
#include "cfgref.h"
#include "coalesce.h"
#include "dns.h"
#include "domain.h"
#include "log.h"
#include "lookup.h"
#include "mlfi.h"
#include "mxcheck.h"
#include "mxs.h"
#include "rclient.h"
#include "route.h"
#include "stats.h"

#define WHYLEN 512

/* The text of the 451 4.3.0 for a lookup that failed (or a change that
 * could not be made): at RCPT for the recipient, at eom for the message. */
#define TEXT_4_3_0 "Mail routing temporarily unavailable, try again later"

/* One accepted recipient of the current message.  Its strings are in the
 * session's pool until the message is done; addr and plan are its own. */
struct rcpt {
    char *arg; /* exactly as the MTA sent it: what delrcpt must name */
    struct addr addr;
    char *domain; /* normalised; NULL for no domain or a literal */
    char *notify; /* client's NOTIFY=..., or NULL */
    char *orcpt;  /* client's ORCPT=..., or NULL */
    char *mailer; /* {rcpt_mailer}, or NULL */
    char *host;   /* {rcpt_host}, or NULL */
    char *raddr;  /* {rcpt_addr}, or NULL */
    int replaced; /* deleted and added again in another form at eom */
    struct lookup_result res;
    int on_error; /* res is routing.default because the lookup failed */
    struct lookup_plan *plan; /* the keys to fetch at eom, or NULL */
    int skip;                 /* left unchanged: its lookup failed (dry run) */
};

/* Per-session state. */
struct session {
    struct cfgref *ref; /* the config in force when the session began */
    int have_par;       /* MTA offered SMFIF_ADDRCPT_PAR */
    struct rcpt *rcpts;
    size_t n, cap;
    size_t over; /* recipients refused for max_recipients, this message */
    struct mxs_pool pool; /* the message's recipient strings */
};

static struct cache *g_cache;
static struct cache *g_nocache; /* for sessions that outlived a reload */
static struct rclient *g_rc;
static struct mxcheck *g_mx;
static struct dns *g_dns;
static int g_sessions; /* atomic */

/* mlfi_setup - hand the callbacks their shared objects */
void
mlfi_setup(struct cache *cache, struct rclient *rc, struct mxcheck *mx,
           struct dns *dns)
{
    g_cache = cache;
    g_nocache = cache_create(0, 0);
    g_rc = rc;
    g_mx = mx;
    g_dns = dns;
}

/* mlfi_teardown - free what mlfi_setup() made; after the last session */
void
mlfi_teardown(void)
{
    cache_free(g_nocache);
    g_nocache = NULL;
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

/* rcpt_clear - free what one recipient owns (its strings go with the
 * session's pool) */
static void
rcpt_clear(struct rcpt *r)
{
    addr_clear(&r->addr);
    if (r->plan != NULL) {
        lookup_plan_clear(r->plan);
        free(r->plan);
    }
}

/* message_reset - forget the current message's recipients */
static void
message_reset(struct session *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        rcpt_clear(&s->rcpts[i]);
    s->n = 0;
    s->over = 0;
    mxs_pool_reset(&s->pool);
}

/* queue_id - the MTA's queue id for log lines */
static const char *
queue_id(SMFICTX *ctx)
{
    const char *id = smfi_getsymval(ctx, "i");

    return id != NULL && id[0] != '\0' ? id : "NOQUEUE";
}

/* symval - a copy in pool of a macro's value, or NULL when not sent or
 * empty */
static char *
symval(SMFICTX *ctx, struct mxs_pool *pool, const char *name)
{
    const char *v = smfi_getsymval(ctx, (char *)name);

    return v != NULL && v[0] != '\0' ? mxs_pool_strdup(pool, v) : NULL;
}

/* esmtp_param - a copy in pool of the ESMTP argument NAME=... in argv, or
 * NULL */
static char *
esmtp_param(char **argv, struct mxs_pool *pool, const char *name)
{
    size_t len = strlen(name);
    int i;

    for (i = 1; argv[i] != NULL; i++)
        if (strncasecmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return mxs_pool_strdup(pool, argv[i]);
    return NULL;
}

/* refuse - answer this recipient 451 with a text */
static sfsistat
refuse(SMFICTX *ctx, const char *dsn, const char *text)
{
    stats_tempfail(dsn);
    if (smfi_setreply(ctx, "451", (char *)dsn, (char *)text) != MI_SUCCESS)
        log_warnx("%s: cannot set the 451 reply text", queue_id(ctx));
    return SMFIS_TEMPFAIL;
}

/*
 * refuse_rcpt - refuse at RCPT, except in dry run: accept it unchanged
 *
 * The caller logs with answered(cfg) in front of the reply code, so the log
 * says "answered 451 ..." or "dry_run would=451 ...".
 */
static sfsistat
refuse_rcpt(SMFICTX *ctx, const struct cfg *cfg, const char *dsn,
            const char *text)
{
    return cfg->dry_run ? SMFIS_CONTINUE : refuse(ctx, dsn, text);
}

/* answered - "answered " or, in dry run, "dry_run would=" */
static const char *
answered(const struct cfg *cfg)
{
    return cfg->dry_run ? "dry_run would=" : "answered ";
}

/* key_prefix, key_name - the winning Redis key of a result, for logs as
 * "%s%s": its prefix and name, or "" and "-" if none */
static const char *
key_prefix(const struct cfg *cfg, const struct lookup_result *res)
{
    return res->key[0] != '\0' ? lookup_key_prefix(cfg, res->kind) : "";
}

static const char *
key_name(const struct lookup_result *res)
{
    return res->key[0] != '\0' ? res->key : "-";
}

/* mlfi_negotiate - ask for recipient changes; skip what we never read */
static sfsistat
mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
               unsigned long f2, unsigned long f3, unsigned long *pf0,
               unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    const unsigned long skip = SMFIP_NOHELO | SMFIP_NOHDRS | SMFIP_NOEOH |
                               SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA;
    struct session *s = session_get(ctx);

    (void)f2;
    (void)f3;
    if (!(f0 & SMFIF_DELRCPT) || !(f0 & (SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR))) {
        log_err("MTA does not allow adding and deleting recipients "
                "(actions 0x%lx): refusing the connection",
                f0);
        return SMFIS_REJECT;
    }
    s->have_par = (f0 & SMFIF_ADDRCPT_PAR) != 0;
    if (!s->have_par)
        log_warnx("MTA lacks SMFIF_ADDRCPT_PAR: NOTIFY and ORCPT of "
                  "rewritten recipients will be lost");
    *pf0 = SMFIF_DELRCPT | (s->have_par ? SMFIF_ADDRCPT_PAR : SMFIF_ADDRCPT);
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
    session_get(ctx);
    return SMFIS_CONTINUE;
}

/* mlfi_envfrom - a new message starts */
static sfsistat
mlfi_envfrom(SMFICTX *ctx, char **argv)
{
    (void)argv;
    message_reset(session_get(ctx));
    return SMFIS_CONTINUE;
}

/* cache_of - the cache of a session's config: see resolve() */
static struct cache *
cache_of(const struct cfgref *ref)
{
    return cfgref_is_current(ref) ? g_cache : g_nocache;
}

/* resolved - log how a lookup went and settle mode auto by DNS */
static int
resolved(const struct cfgref *ref, struct rcpt *r, const char *qid,
         uint64_t now, int rcode, char *why, size_t whylen)
{
    char evidence[WHYLEN];

    if (rcode != MXS_OK)
        return rcode;
    if (r->res.source == LOOKUP_STALE) {
        if (r->res.stale_first)
            log_warnx("%s: redis cannot answer (%s): using cached answers "
                      "up to cache.stale_ttl past their ttl until it is back",
                      qid, why);
        log_debug("%s: %s: domain %s: stale answer (%s)", qid, r->arg,
                  r->domain, why);
    }
    log_debug("%s: %s: domain %s mode %s from %s key %s%s", qid, r->arg,
              r->domain, route_mode_name(r->res.mode),
              lookup_source_name(r->res.source), key_prefix(ref->cfg, &r->res),
              key_name(&r->res));
    rcode = lookup_auto(g_dns, r->domain, now, &r->res, evidence,
                        sizeof(evidence), why, whylen);
    if (rcode == MXS_OK && r->res.dns_stale == DNS_STALE_FIRST)
        log_warnx("%s: DNS cannot answer for %s: using its auto decision "
                  "up to cache.stale_ttl past its TTL (%s)",
                  qid, r->domain, evidence);
    if (rcode == MXS_OK && r->res.source == LOOKUP_DNS)
        log_debug("%s: %s: auto: domain %s is %s: %s", qid, r->arg, r->domain,
                  route_mode_name(r->res.mode), evidence);
    return rcode;
}

/*
 * resolve - normalise and look the domain up; MXS_* like lookup_domain
 *
 * The cache holds answers under the prefix in force: a session that began
 * before a reload asks Redis itself, and stores nothing.  With
 * redis.fetch_at "eom", what the cache cannot answer is MXS_PENDING, with
 * r->plan the keys for fetch_planned() at the end of the message; unless
 * Redis is failing: then it is asked now, and fails now.
 */
static int
resolve(struct session *s, struct rcpt *r, const char *qid, char *why,
        size_t whylen)
{
    const struct cfgref *ref = s->ref;
    struct cache *c = cache_of(ref);
    char norm[DOMAIN_MAX + 1];
    struct lookup_plan plan;
    uint64_t now = mxs_now_ms();
    int rcode;

    if (ref->cfg->redis_fetch_at == CFG_FETCH_EOM && !rclient_down(g_rc)) {
        rcode = lookup_address_plan(ref->cfg, c, &r->addr, now, norm,
                                    sizeof(norm), &r->res, &plan, why, whylen);
        if (rcode == MXS_PENDING) {
            r->plan = xmalloc(sizeof(plan));
            *r->plan = plan;
        }
    } else {
        rcode = lookup_address(ref->cfg, c, g_rc, &r->addr, now, norm,
                               sizeof(norm), &r->res, why, whylen);
    }
    if (norm[0] == '\0')
        return rcode; /* no domain, a literal, or a malformed domain */
    r->domain = mxs_pool_strdup(&s->pool, norm);
    if (rcode == MXS_PENDING)
        return rcode;
    return resolved(ref, r, qid, now, rcode, why, whylen);
}

/*
 * lookup_failed - a recipient whose lookup failed: routing.default, or
 * whether to answer 451 4.3.0 (1)
 *
 * At RCPT the 451 is the recipient's; at eom it is the whole message's.
 * Logs either way, shown being the recipient as the MTA sent it.
 */
static int
lookup_failed(const struct cfg *cfg, struct rcpt *r, const char *qid,
              const char *shown, const char *why, int at_eom)
{
    if (cfg->on_error == CFG_ON_ERROR_TEMPFAIL) {
        log_warnx("%s: rcpt=%s domain=%s: lookup failed (%s): %s451 4.3.0%s",
                  qid, shown, r->domain, why, answered(cfg),
                  at_eom ? " to the message" : "");
        return 1;
    }
    memset(&r->res, 0, sizeof(r->res));
    /* A default of auto cannot stand in for a failed lookup. */
    r->res.mode = cfg->default_mode == ROUTE_AUTO
                      ? ROUTE_NONE
                      : (enum route_mode)cfg->default_mode;
    log_warnx("%s: rcpt=%s domain=%s: lookup failed (%s): using "
              "routing.default %s%s",
              qid, shown, r->domain, why,
              route_mode_name((enum route_mode)cfg->default_mode),
              cfg->default_mode == ROUTE_AUTO ? " (as none)" : "");
    r->res.source = LOOKUP_DEFAULT;
    r->on_error = 1;
    return 0;
}

/*
 * fetch_planned - the lookups put off to the end of the message, in one
 * round trip; whether the message must be answered 451 (1)
 *
 * Each recipient is then decided as at RCPT; a failed lookup gets
 * routing.on_error, except that its 451 is the message's (in dry run, the
 * recipient goes on unchanged).
 */
static int
fetch_planned(struct session *s, const char *qid)
{
    const struct cfg *cfg = s->ref->cfg;
    struct rclient_mget *m;
    char why[WHYLEN], shown[ADDR_MAX + 64];
    size_t i, k = 0;
    uint64_t t0, now;
    int refuse_all = 0;

    for (i = 0; i < s->n; i++)
        k += s->rcpts[i].plan != NULL;
    if (k == 0)
        return 0;
    m = xcalloc(k, sizeof(*m));
    for (i = 0, k = 0; i < s->n; i++) {
        const struct lookup_plan *p = s->rcpts[i].plan;

        if (p == NULL)
            continue;
        m[k].keys = (const char *const *)p->keys;
        m[k].n = p->n;
        m[k].out = xcalloc(p->n, sizeof(*m[k].out));
        k++;
    }
    t0 = stats_clock();
    rclient_mget_many(g_rc, m, k);
    now = mxs_now_ms();
    for (i = 0, k = 0; i < s->n; i++) {
        struct rcpt *r = &s->rcpts[i];
        struct rclient_mget *mk = &m[k];
        int rcode;

        if (r->plan == NULL)
            continue;
        k++;
        stats_redis(mk->rcode, t0);
        snprintf(why, sizeof(why), "%s", mk->why);
        rcode = lookup_finish(cfg, cache_of(s->ref), r->plan, mk->rcode,
                              mk->out, now, &r->res, why, sizeof(why));
        free(r->plan);
        r->plan = NULL;
        rclient_values_clear(mk->out, mk->rcode == MXS_OK ? mk->n : 0);
        free(mk->out);
        rcode = resolved(s->ref, r, qid, now, rcode, why, sizeof(why));
        if (rcode == MXS_OK)
            continue;
        mxs_escape(shown, sizeof(shown), r->arg, strlen(r->arg));
        if (lookup_failed(cfg, r, qid, shown, why, 1)) {
            refuse_all = !cfg->dry_run;
            r->skip = 1;
        }
    }
    free(m);
    return refuse_all;
}

/* mlfi_envrcpt - decide for one recipient, or refuse it with 451 */
static sfsistat
mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
    struct session *s = session_get(ctx);
    const struct cfg *cfg = s->ref->cfg;
    const char *qid = queue_id(ctx);
    struct addr_tags t = cfg_tags(cfg);
    char why[WHYLEN], shown[ADDR_MAX + 64];
    struct mxs_pool_mark mark;
    struct rcpt r;
    int rcode;

    memset(&r, 0, sizeof(r));
    if (argv == NULL || argv[0] == NULL)
        return SMFIS_CONTINUE;
    /* Memory per message is bounded: like Postfix's smtpd_recipient_limit,
     * the extra recipients are told to come again in another message.  In
     * dry run they go on unchanged and are not remembered, so the bound
     * holds there too without refusing anything. */
    if (s->n >= (size_t)cfg->milter_max_recipients) {
        if (s->over++ == 0)
            log_warnx("%s: more than milter.max_recipients (%d) recipients: "
                      "%s452 4.5.3 to the rest%s",
                      qid, cfg->milter_max_recipients,
                      cfg->dry_run ? "dry_run would answer " : "answering ",
                      cfg->dry_run ? "; they go on unchanged, undecided" : "");
        if (cfg->dry_run)
            return SMFIS_CONTINUE;
        stats_tempfail("4.5.3");
        if (smfi_setreply(ctx, "452", "4.5.3", "Too many recipients") !=
            MI_SUCCESS)
            log_warnx("%s: cannot set the 452 reply text", qid);
        return SMFIS_TEMPFAIL;
    }
    if (addr_parse(argv[0], &t, &r.addr, why, sizeof(why)) != MXS_OK) {
        mxs_escape(shown, sizeof(shown), argv[0], strlen(argv[0]));
        log_warnx("%s: rcpt=%s: malformed address (%s): %s451 4.1.3", qid,
                  shown, why, answered(cfg));
        return refuse_rcpt(ctx, cfg, "4.1.3",
                           "Recipient address not understood by the router");
    }
    mark = mxs_pool_mark(&s->pool);
    r.arg = mxs_pool_strdup(&s->pool, argv[0]);
    rcode = resolve(s, &r, qid, why, sizeof(why));
    /* for the log: only now, off the common path */
    if (rcode != MXS_OK && rcode != MXS_PENDING)
        mxs_escape(shown, sizeof(shown), argv[0], strlen(argv[0]));
    if (rcode == MXS_INVALID && r.domain == NULL) {
        log_warnx("%s: rcpt=%s: bad domain (%s): %s451 4.1.2", qid, shown, why,
                  answered(cfg));
        rcpt_clear(&r);
        mxs_pool_back(&s->pool, mark);
        return refuse_rcpt(ctx, cfg, "4.1.2",
                           "Recipient domain not understood");
    }
    if (rcode != MXS_OK && rcode != MXS_PENDING &&
        lookup_failed(cfg, &r, qid, shown, why, 0)) {
        rcpt_clear(&r);
        mxs_pool_back(&s->pool, mark);
        return refuse_rcpt(ctx, cfg, "4.3.0", TEXT_4_3_0);
    }
    r.notify = esmtp_param(argv, &s->pool, "NOTIFY");
    r.orcpt = esmtp_param(argv, &s->pool, "ORCPT");
    r.mailer = symval(ctx, &s->pool, "{rcpt_mailer}");
    r.host = symval(ctx, &s->pool, "{rcpt_host}");
    r.raddr = symval(ctx, &s->pool, "{rcpt_addr}");
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->rcpts = xrealloc(s->rcpts, s->cap * sizeof(*s->rcpts));
    }
    s->rcpts[s->n++] = r;
    return SMFIS_CONTINUE;
}

/*
 * esmtp_args - NOTIFY and ORCPT for the replacement recipient
 *
 * Made in buf (size bytes) when they fit, as they do unless the client's
 * own NOTIFY or ORCPT is kilobytes long; otherwise in memory the caller
 * frees when the result is not buf.
 */
static char *
esmtp_args(const struct rcpt *r, char *buf, size_t size)
{
    struct mxs_text t;
    size_t len;

    mxs_text_init(&t, buf, size);
    for (;;) {
        if (r->notify != NULL) {
            mxs_text_put(&t, r->notify);
            mxs_text_putc(&t, ' ');
        }
        if (r->orcpt != NULL) {
            mxs_text_put(&t, r->orcpt);
        } else {
            mxs_text_put(&t, "ORCPT=");
            addr_xtext_text(&r->addr, &t);
        }
        if (!t.cut || t.buf != buf)
            return t.buf;
        len = (r->notify ? strlen(r->notify) : 0) +
              (r->orcpt ? strlen(r->orcpt) : 0) + 3 * ADDR_MAX + 32;
        mxs_text_init(&t, xmalloc(len), len);
    }
}

/* add_rcpt - add a recipient, with ESMTP args when the MTA allows them */
static int
add_rcpt(SMFICTX *ctx, const struct session *s, char *addr, char *args)
{
    if (s->have_par)
        return smfi_addrcpt_par(ctx, addr, args) == MI_SUCCESS;
    return smfi_addrcpt(ctx, addr) == MI_SUCCESS;
}

/*
 * decision_log - the line of one recipient's decision, made in place in lb:
 * "qid: rcpt=... domain=... mode=... source=... key=... action=ACTION",
 * " new=NEWADDR" when given, then err, or " (why)" without one
 */
static void
decision_log(struct log_batch *lb, int pri, const struct session *s,
             const struct rcpt *r, const char *qid, const char *action,
             const char *newaddr, size_t newlen, const char *why,
             const char *err)
{
    char shown[ADDR_MAX + 64];
    struct mxs_text h;

    if (!log_batch_open(lb, pri, &h))
        return;
    mxs_escape(shown, sizeof(shown), r->arg, strlen(r->arg));
    mxs_text_put(&h, qid);
    mxs_text_put(&h, ": rcpt=");
    mxs_text_put(&h, shown);
    mxs_text_put(&h, " domain=");
    mxs_text_put(&h, r->domain ? r->domain : "-");
    mxs_text_put(&h, " mode=");
    mxs_text_put(&h, route_mode_name(r->res.mode));
    mxs_text_put(&h, " source=");
    mxs_text_put(&h, lookup_source_name(r->res.source));
    if (r->on_error)
        mxs_text_put(&h, " (lookup failed)");
    mxs_text_put(&h, " key=");
    mxs_text_put(&h, key_prefix(s->ref->cfg, &r->res));
    mxs_text_put(&h, key_name(&r->res));
    mxs_text_put(&h, " action=");
    mxs_text_put(&h, action);
    if (newaddr != NULL) {
        mxs_escape(shown, sizeof(shown), newaddr, newlen);
        mxs_text_put(&h, " new=");
        mxs_text_put(&h, shown);
    }
    if (err != NULL) {
        mxs_text_put(&h, err);
    } else {
        mxs_text_put(&h, " (");
        mxs_text_put(&h, why);
        mxs_text_putc(&h, ')');
    }
    log_batch_close(lb, &h);
}

/* apply - rewrite one recipient if its decision asks; MXS_OK or failure */
static int
apply(SMFICTX *ctx, const struct session *s, struct rcpt *r, const char *qid,
      struct log_batch *lb)
{
    const struct cfg *cfg = s->ref->cfg;
    struct addr_tags t = cfg_tags(cfg);
    struct route_in in;
    enum addr_tag want;
    char why[WHYLEN], newaddr[ADDR_MAX + 8], abuf[4 * ADDR_MAX];
    struct mxs_text na;
    char *args;
    int ok;

    if (r->skip)
        return MXS_OK;
    memset(&in, 0, sizeof(in));
    in.mode = r->res.mode;
    in.explicit_key = r->res.explicit_key;
    in.tag = r->addr.tag;
    in.domain = r->domain ? r->domain : "";
    in.mailer = r->mailer;
    in.host = r->host;
    want = (r->domain != NULL) ? route_decide(&in, why, sizeof(why))
                               : ADDR_TAG_NONE;
    stats_decision((int)r->res.mode, (int)r->res.source,
                   want == r->addr.tag ? STATS_KEEP : STATS_REWRITE);
    if (r->domain == NULL)
        mxs_why(why, sizeof(why), "%s",
                r->addr.literal ? "address literal" : "no domain");
    /* Only a key's word needs checking: DNS already said "not here". */
    if (r->domain != NULL && r->res.source != LOOKUP_DNS &&
        (r->res.mode == ROUTE_REMOTE || r->res.mode == ROUTE_BACKUP))
        mxcheck_note(g_mx, r->domain, qid);
    /* The line for every recipient is made without printf: it was a
     * third of the milter's instructions (callgrind, 50 recipients). */
    if (want == r->addr.tag) {
        decision_log(lb, LOG_INFO, s, r, qid,
                     cfg->dry_run ? "keep dry_run" : "keep", NULL, 0, why,
                     NULL);
        return MXS_OK;
    }
    mxs_text_init(&na, newaddr, sizeof(newaddr));
    addr_format_text(&r->addr, &t, want, &na); /* fits: addr_parse() */
    if (cfg->dry_run) {
        decision_log(lb, LOG_INFO, s, r, qid, "rewrite dry_run", newaddr,
                     na.len, why, NULL);
        return MXS_OK;
    }
    args = esmtp_args(r, abuf, sizeof(abuf));
    if (smfi_delrcpt(ctx, r->arg) != MI_SUCCESS) {
        decision_log(lb, LOG_ERR, s, r, qid, "rewrite", NULL, 0, why,
                     ": smfi_delrcpt failed");
        ok = 0;
    } else {
        r->replaced = 1;
        ok = add_rcpt(ctx, s, newaddr, args);
        decision_log(lb, ok ? LOG_INFO : LOG_ERR, s, r, qid, "rewrite", newaddr,
                     na.len, why, ok ? NULL : ": adding the recipient failed");
    }
    if (args != abuf)
        free(args);
    return ok ? MXS_OK : MXS_TEMPFAIL;
}

/* same_resolution - whether the MTA resolved two recipients alike */
static int
same_resolution(const struct rcpt *a, const struct rcpt *b)
{
    return a->mailer != NULL && b->mailer != NULL && a->raddr != NULL &&
           b->raddr != NULL && strcmp(a->raddr, b->raddr) == 0 &&
           strcasecmp(a->mailer, b->mailer) == 0 &&
           strcasecmp(a->host ? a->host : "", b->host ? b->host : "") == 0;
}

#define NAMESAKE_STACK 256 /* table slots kept on the stack */

/*
 * namesake_of - the first replaced recipient resolved like kept one k, or
 * -1; tab (mask + 1 slots, index + 1, 0 empty) holds the replaced ones by
 * the hash of their {rcpt_addr}, which namesakes share exactly
 */
static long
namesake_of(const struct session *s, const uint32_t *tab, size_t mask,
            const struct rcpt *k)
{
    size_t h = mxs_hash(k->raddr, strlen(k->raddr)) & mask;
    long first = -1;

    for (; tab[h] != 0; h = (h + 1) & mask)
        if ((first < 0 || tab[h] - 1 < (size_t)first) &&
            same_resolution(k, &s->rcpts[tab[h] - 1]))
            first = (long)tab[h] - 1;
    return first;
}

/*
 * readd_namesakes - put back untouched recipients a delrcpt took along
 *
 * Sendmail's delrcpt removes every recipient that resolves like the one
 * named: with domains in class w, bob@local.test and bob@remote.test are
 * both the local user bob.  Replacing bob@remote.test would silently drop
 * bob@local.test, so such a recipient (same {rcpt_mailer}, {rcpt_host} and
 * {rcpt_addr} as a replaced one) is added again with its parameters.
 * Postfix's {rcpt_addr} is the whole address and its delrcpt matches the
 * exact string, so nothing is re-added there.
 */
static int
readd_namesakes(SMFICTX *ctx, const struct session *s, const char *qid,
                struct log_batch *lb)
{
    char shown[ADDR_MAX + 64], abuf[4 * ADDR_MAX], *args;
    uint32_t stack[NAMESAKE_STACK], *tab = stack;
    size_t i, h, n = 0, size = 16;
    long j;
    int ok, rv = MXS_OK;

    /* Postfix sends the macros with every RCPT: a pass over the replaced
     * recipients for each kept one was 1,300 instructions per recipient
     * at 50 recipients (callgrind), so the replaced go in a table. */
    for (i = 0; i < s->n; i++)
        n += s->rcpts[i].replaced && s->rcpts[i].raddr != NULL;
    if (n == 0)
        return MXS_OK;
    while (size < 2 * n)
        size <<= 1;
    if (size > NAMESAKE_STACK)
        tab = xmalloc(size * sizeof(*tab));
    memset(tab, 0, size * sizeof(*tab));
    for (i = 0; i < s->n; i++) {
        const struct rcpt *r = &s->rcpts[i];

        if (!r->replaced || r->raddr == NULL)
            continue;
        h = mxs_hash(r->raddr, strlen(r->raddr)) & (size - 1);
        while (tab[h] != 0)
            h = (h + 1) & (size - 1);
        tab[h] = (uint32_t)i + 1;
    }
    for (i = 0; i < s->n; i++) {
        const struct rcpt *k = &s->rcpts[i];

        if (k->replaced || k->raddr == NULL ||
            (j = namesake_of(s, tab, size - 1, k)) < 0)
            continue;
        args = esmtp_args(k, abuf, sizeof(abuf));
        ok = add_rcpt(ctx, s, k->arg, args);
        if (args != abuf)
            free(args);
        mxs_escape(shown, sizeof(shown), k->arg, strlen(k->arg));
        if (!ok) {
            log_batch_add(lb, LOG_ERR, "%s: rcpt=%s: adding it back failed",
                          qid, shown);
            rv = MXS_TEMPFAIL;
            break;
        }
        stats_readd();
        log_batch_add(lb, LOG_INFO,
                      "%s: rcpt=%s action=re-add (the MTA's delrcpt of %s took "
                      "it along: same mailer %s, host \"%s\", addr %s)",
                      qid, shown, s->rcpts[j].arg, k->mailer,
                      k->host ? k->host : "", k->raddr);
    }
    if (tab != stack)
        free(tab);
    return rv;
}

/* mlfi_eom - apply every remembered decision */
static sfsistat
mlfi_eom(SMFICTX *ctx)
{
    struct session *s = session_get(ctx);
    const char *qid = queue_id(ctx);
    sfsistat rv = SMFIS_CONTINUE;
    struct log_batch lb; /* the message's decisions: one write, not one each */
    size_t i;

    lb.len = 0;
    if (fetch_planned(s, qid)) {
        rv = SMFIS_TEMPFAIL; /* before any change was made */
    } else {
        coalesce_begin(); /* the changes go out with the reply, in one write */
        for (i = 0; i < s->n; i++) {
            if (apply(ctx, s, &s->rcpts[i], qid, &lb) != MXS_OK) {
                rv = SMFIS_TEMPFAIL;
                break;
            }
        }
        if (rv == SMFIS_CONTINUE && readd_namesakes(ctx, s, qid, &lb) != MXS_OK)
            rv = SMFIS_TEMPFAIL;
    }
    log_batch_flush(&lb);
    if (rv == SMFIS_TEMPFAIL)
        rv = refuse(ctx, "4.3.0", TEXT_4_3_0);
    message_reset(s);
    return rv;
}

/* mlfi_abort - the message was abandoned */
static sfsistat
mlfi_abort(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s != NULL)
        message_reset(s);
    return SMFIS_CONTINUE;
}

/* mlfi_close - the session ended: free its state */
static sfsistat
mlfi_close(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_CONTINUE;
    message_reset(s);
    free(s->rcpts);
    mxs_pool_free(&s->pool);
    cfgref_release(s->ref);
    free(s);
    smfi_setpriv(ctx, NULL);
    __atomic_sub_fetch(&g_sessions, 1, __ATOMIC_ACQ_REL);
    return SMFIS_CONTINUE;
}

struct smfiDesc mlfi_desc = {
    .xxfi_name = "mxswitch",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT,
    .xxfi_connect = mlfi_connect,
    .xxfi_envfrom = mlfi_envfrom,
    .xxfi_envrcpt = mlfi_envrcpt,
    .xxfi_eom = mlfi_eom,
    .xxfi_abort = mlfi_abort,
    .xxfi_close = mlfi_close,
    .xxfi_negotiate = mlfi_negotiate,
};
