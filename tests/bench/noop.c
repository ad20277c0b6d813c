/*
 * noop - the benchmark's baseline milter: same libmilter, same negotiated
 * steps and actions as mxswitch (milter/mlfi.c), and no work at all
 *
 * It asks for SMFIF_DELRCPT and SMFIF_ADDRCPT_PAR, skips helo, headers,
 * end of headers, body, unknown and data like mxswitch, answers continue
 * at connect, mail and rcpt, and does nothing at end of message.  Its
 * throughput is the physical limit of a libmilter milter on this machine.
 *
 * (It still negotiates the recipient actions because mxswitch does: its
 * milter changes no recipient since routing moved to the socket map
 * server, but the negotiation is part of what is compared.)
 *
 * usage: noop SOCKET   (inet:PORT@HOST or unix:/path); runs in the
 * foreground until SIGTERM or SIGINT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

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

/* noop_envrcpt - continue */
static sfsistat
noop_envrcpt(SMFICTX *ctx, char **argv)
{
    (void)ctx;
    (void)argv;
    return SMFIS_CONTINUE;
}

/* noop_eom - no modification */
static sfsistat
noop_eom(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

/* noop_close - continue */
static sfsistat
noop_close(SMFICTX *ctx)
{
    (void)ctx;
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
    .xxfi_close = noop_close,
    .xxfi_negotiate = noop_negotiate,
};

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: noop SOCKET\n");
        return 2;
    }
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
