/*
 * noop - the benchmark's baseline milter: same libmilter, same negotiated
 * steps and actions as mxswitch (milter/mlfi.c), and no work at all
 *
 * It asks for SMFIF_DELRCPT and SMFIF_ADDRCPT_PAR, skips helo, headers,
 * end of headers, body, unknown and data like mxswitch, answers continue
 * at connect, mail and rcpt, and does nothing at end of message.  Its
 * throughput is the physical limit of a libmilter milter on this machine.
 *
 * With -r it makes, with no lookup and no log, the change mxswitch makes
 * to a remote recipient, to every recipient: delrcpt <l@d>, addrcpt_par
 * <l+mx-remote@d> ORCPT=rfc822;l@d.  The end-to-end benchmark uses it to
 * tell what the change costs the MTA from what mxswitch costs.
 *
 * Built with NOOP_IO (the noopio binary), it reads and writes the way
 * mxswitch does, through milter/readahead.c and milter/coalesce.c: each
 * command in one read, the changes sent with the final reply.  The
 * benchmark uses it to tell mxswitch's own cost from what that I/O saves.
 *
 * usage: noop [-r] SOCKET   (inet:PORT@HOST or unix:/path); runs in the
 * foreground until SIGTERM or SIGINT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

#ifdef NOOP_IO
#include "coalesce.h"
#include "readahead.h"

/* The I/O modules count into mxswitch's stats; nobody reads them here. */
void
stats_coalesced(void)
{
}

void
stats_read_saved(void)
{
}
#endif

/* noop_negotiate - the same steps and actions mxswitch negotiates */
static sfsistat
noop_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
               unsigned long f2, unsigned long f3, unsigned long *pf0,
               unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    const unsigned long skip = SMFIP_NOHELO | SMFIP_NOHDRS | SMFIP_NOEOH |
                               SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA;

    (void)ctx;
    (void)f2;
    (void)f3;
    *pf0 = SMFIF_DELRCPT |
           (f0 & SMFIF_ADDRCPT_PAR ? SMFIF_ADDRCPT_PAR : SMFIF_ADDRCPT);
    *pf1 = f1 & skip;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

/* noop_connect - continue */
static sfsistat
noop_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)ctx;
    (void)host;
    (void)addr;
    return SMFIS_CONTINUE;
}

/* noop_envfrom - continue */
static sfsistat
noop_envfrom(SMFICTX *ctx, char **argv)
{
    (void)ctx;
    (void)argv;
    return SMFIS_CONTINUE;
}

static int rewrite; /* -r */

/* The recipients of the message, with -r. */
struct rcpts {
    size_t n;
    char *v[1000];
};

/* noop_envrcpt - continue; with -r, remember the recipient */
static sfsistat
noop_envrcpt(SMFICTX *ctx, char **argv)
{
    struct rcpts *r = smfi_getpriv(ctx);

    if (!rewrite)
        return SMFIS_CONTINUE;
    if (r == NULL && (r = calloc(1, sizeof(*r))) != NULL)
        smfi_setpriv(ctx, r);
    if (r == NULL || r->n == sizeof(r->v) / sizeof(r->v[0]) ||
        (r->v[r->n] = strdup(argv[0])) == NULL)
        return SMFIS_TEMPFAIL;
    r->n++;
    return SMFIS_CONTINUE;
}

/* forget - free the remembered recipients */
static void
forget(SMFICTX *ctx)
{
    struct rcpts *r = smfi_getpriv(ctx);

    while (r != NULL && r->n > 0)
        free(r->v[--r->n]);
}

/* change - delrcpt <l@d>, addrcpt_par <l+mx-remote@d> ORCPT=rfc822;l@d */
static int
change(SMFICTX *ctx, const char *rcpt)
{
    const char *at = strrchr(rcpt, '@');
    size_t len = strlen(rcpt);
    char naddr[1024], args[1024];

    if (at == NULL || rcpt[0] != '<' || len < 3 || len > 900)
        return -1;
    snprintf(naddr, sizeof(naddr), "%.*s+mx-remote%s", (int)(at - rcpt), rcpt,
             at);
    snprintf(args, sizeof(args), "ORCPT=rfc822;%.*s", (int)(len - 2), rcpt + 1);
    return smfi_delrcpt(ctx, (char *)rcpt) == MI_SUCCESS &&
                   smfi_addrcpt_par(ctx, naddr, args) == MI_SUCCESS
               ? 0
               : -1;
}

/* noop_eom - no modification; with -r, change every recipient */
static sfsistat
noop_eom(SMFICTX *ctx)
{
    struct rcpts *r = smfi_getpriv(ctx);
    sfsistat rv = SMFIS_CONTINUE;
    size_t i;

#ifdef NOOP_IO
    coalesce_begin();
#endif
    for (i = 0; r != NULL && i < r->n; i++)
        if (change(ctx, r->v[i]) != 0)
            rv = SMFIS_TEMPFAIL;
    forget(ctx);
    return rv;
}

/* noop_abort - forget the message */
static sfsistat
noop_abort(SMFICTX *ctx)
{
    forget(ctx);
    return SMFIS_CONTINUE;
}

/* noop_close - free what -r kept */
static sfsistat
noop_close(SMFICTX *ctx)
{
    forget(ctx);
    free(smfi_getpriv(ctx));
    smfi_setpriv(ctx, NULL);
    return SMFIS_CONTINUE;
}

static struct smfiDesc noop_desc = {
    .xxfi_name = "noop",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT,
    .xxfi_connect = noop_connect,
    .xxfi_envfrom = noop_envfrom,
    .xxfi_envrcpt = noop_envrcpt,
    .xxfi_eom = noop_eom,
    .xxfi_abort = noop_abort,
    .xxfi_close = noop_close,
    .xxfi_negotiate = noop_negotiate,
};

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "-r") == 0) {
        rewrite = 1;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: noop [-r] SOCKET\n");
        return 2;
    }
#ifdef NOOP_IO
    if (coalesce_init() != 0 || readahead_init() != 0) {
        fprintf(stderr, "noop: cannot find libmilter's I/O functions\n");
        return 1;
    }
#endif
    if (smfi_setconn(argv[1]) != MI_SUCCESS ||
        smfi_register(noop_desc) != MI_SUCCESS ||
        smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "noop: cannot listen on %s\n", argv[1]);
        return 1;
    }
    printf("noop: milter on %s\n", argv[1]);
    fflush(stdout);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
