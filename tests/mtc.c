/*
 * mtc - play a milter conversation from a script, print the replies
 *
 * usage: mtc [-t timeout_ms] SOCKETSPEC < script
 *
 * SOCKETSPEC is inet:PORT@HOST, inet6:PORT@HOST, unix:/path or local:/path.
 * The timeout (default 10000) bounds the connect and each packet.  mtc
 * negotiates first, offering actions SMFI_CURR_ACTS and protocol
 * SMFI_CURR_PROT without SMFIP_RCPT_REJ (0x1ff7ff), and prints nothing for
 * that; unless the first command is "negotiate", which sets both.
 *
 * Script: one command a line; blank lines and lines whose first non-blank
 * is # are ignored, trailing blanks (and CR) are dropped.  Words are split
 * on spaces and tabs, except that a word starting with < runs to the first
 * > outside double quotes (a backslash inside quotes hides the next
 * character), and must be followed by a blank or the end of the line.
 * After splitting, \xHH (two hex digits, not 00) stands for byte HH in any
 * word or text; every other backslash is itself.  TEXT is the rest of the
 * line from its first word, spacing kept, escapes decoded.
 *
 *   negotiate ACTIONS PROTOCOL  (hex) "negotiate: version=V actions=0xA
 *                               protocol=0xP", the milter's answer
 *   macro C NAME VALUE [...]    C one of CHMRTENLB; prints nothing
 *   connect HOST ADDR [PORT]    "connect: R"; ADDR IPv4 (family 4) or IPv6
 *                               (6), port 25 by default; /path (family L,
 *                               port 0 by default); - (family U, no port)
 *   helo NAME                   "helo: R"
 *   mail ADDR [ARG ...]         "mail: R"
 *   rcpt ADDR [ARG ...]         "rcpt ADDR: R"
 *   rcptline TEXT               "rcpt TEXT: R"; TEXT is the one argument, as
 *                               is (blanks, unbalanced quotes or brackets)
 *   data                        "data: R"
 *   unknown TEXT                "unknown: R"
 *   header NAME [TEXT]          "header NAME: R"
 *   eoh                         "eoh: R"
 *   body [TEXT]                 "body: R" (one chunk, TEXT as is)
 *   eom                         one line per modification, then "eom: R"
 *   abort                       "abort: sent"
 *   quit                        "quit: sent"; no command may follow
 *   sleep MS                    at most 3600000; prints nothing
 *   together N                  the next N packets (2-1000) go out in one
 *                               write; only the last may wait for a reply
 *   split N MS                  the next write goes out as its first N
 *                               bytes, the rest MS milliseconds later
 *
 * R is continue, accept, reject, tempfail, discard, skip, shutdown,
 * connfail, noreply (no reply negotiated), skipped (step negotiated away)
 * or "reply TEXT" (e.g. "reply 451 4.3.0 text").  A modification line is
 * its name (addrcpt, delrcpt, addrcpt_par, chgfrom, addheader, insheader,
 * chgheader, replbody, quarantine), then each argument after one space, an
 * empty last argument left out: "addrcpt_par <x> NOTIFY=NEVER",
 * "insheader INDEX NAME VALUE", "chgheader INDEX NAME" (deletion).  Bytes
 * outside 0x20-0x7e are printed as \xhh (lower case); a backslash is
 * printed as itself.
 *
 * The end of the script sends quit unless the script did.  Exit 0 when the
 * script ran to its end, whatever the milter answered; on a script,
 * connection, timeout or protocol error print "error: line N: reason" (or
 * "error: reason" outside a line) and exit 2; exit 1 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "mclient.h"

#define MTC_MAX_WORDS 256
#define MTC_TIMEOUT   10000
#define MTC_ACTIONS   SMFI_CURR_ACTS
#define MTC_PROTOCOL  (SMFI_CURR_PROT & ~SMFIP_RCPT_REJ)

struct mtc {
    struct mc *m;
    int negotiated;
    int quit;
    char why[512];
};

struct words {
    size_t n;
    size_t start[MTC_MAX_WORDS]; /* offset of each word in the line */
    char *w[MTC_MAX_WORDS];      /* each word, decoded */
};

/* usage - explain the command line and exit */
static void
usage(void)
{
    fputs("usage: mtc [-t timeout_ms] SOCKETSPEC < script\n", stderr);
    exit(1);
}

/* hexval - value of a hex digit, -1 if none */
static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* decode - copy n bytes of p, turning \xHH into byte HH; NULL if bad */
static char *
decode(const char *p, size_t n)
{
    char *s = malloc(n + 1), *q = s;
    size_t i;
    int hi, lo;

    if (s == NULL)
        abort();
    for (i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 >= n || p[i + 1] != 'x') {
            *q++ = p[i];
            continue;
        }
        hi = i + 2 < n ? hexval(p[i + 2]) : -1;
        lo = i + 3 < n ? hexval(p[i + 3]) : -1;
        if (hi < 0 || lo < 0 || hi + lo == 0) {
            free(s);
            return NULL;
        }
        *q++ = (char)(hi * 16 + lo);
        i += 3;
    }
    *q = '\0';
    return s;
}

/* word_end - end of the word at line[i]; 0 if malformed */
static size_t
word_end(const char *line, size_t i)
{
    size_t e = i;
    int quoted = 0;

    if (line[i] != '<') {
        while (line[e] != '\0' && line[e] != ' ' && line[e] != '\t')
            e++;
        return e;
    }
    for (e = i + 1; line[e] != '\0'; e++) {
        if (quoted && line[e] == '\\' && line[e + 1] != '\0')
            e++;
        else if (line[e] == '"')
            quoted = !quoted;
        else if (!quoted && line[e] == '>')
            break;
    }
    if (line[e] != '>')
        return 0;
    e++;
    return line[e] == '\0' || line[e] == ' ' || line[e] == '\t' ? e : 0;
}

/* split_line - find and decode the words of a line */
static int
split_line(struct mtc *t, const char *line, struct words *ws)
{
    size_t i = 0, e;

    for (ws->n = 0;; i = e) {
        while (line[i] == ' ' || line[i] == '\t')
            i++;
        if (line[i] == '\0')
            return 0;
        if (ws->n == MTC_MAX_WORDS) {
            snprintf(t->why, sizeof(t->why), "more than %d words",
                     MTC_MAX_WORDS);
            return -1;
        }
        /* rcptline takes the rest of the line as one word, as is */
        e = ws->n == 1 && strcmp(ws->w[0], "rcptline") == 0
                ? i + strlen(line + i)
                : word_end(line, i);
        if (e == 0) {
            snprintf(t->why, sizeof(t->why), "unterminated or bad <...> word");
            return -1;
        }
        ws->start[ws->n] = i;
        ws->w[ws->n] = decode(line + i, e - i);
        if (ws->w[ws->n] == NULL) {
            snprintf(t->why, sizeof(t->why), "bad \\x escape (\\xHH, not 00)");
            return -1;
        }
        ws->n++;
    }
}

/* put_escaped - print n bytes, non-printable ones as \xhh */
static void
put_escaped(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] <= 0x7e)
            putchar(p[i]);
        else
            printf("\\x%02x", (unsigned char)p[i]);
    }
}

/* put_line - print a string escaped, then a newline */
static void
put_line(const char *s)
{
    put_escaped(s, strlen(s));
    putchar('\n');
}

/* print_mod - print one modification line */
static void
print_mod(const struct mc_mod *mod)
{
    size_t i, n;

    fputs(mc_action_name(mod->action), stdout);
    for (i = 0; i < mod->argc; i++) {
        n = mod->action == SMFIR_REPLBODY ? mod->len : strlen(mod->argv[i]);
        if (n == 0 && i == mod->argc - 1)
            break;
        putchar(' ');
        put_escaped(mod->argv[i], n);
    }
    putchar('\n');
}

/* print_reply - print a step's modifications and reply line */
static int
print_reply(struct mtc *t, const char *label, const char *arg,
            const struct mc_reply *r)
{
    size_t i;

    if (r->kind == MC_ERROR) {
        snprintf(t->why, sizeof(t->why), "%s", mc_error(t->m));
        return -1;
    }
    for (i = 0; i < r->nmods; i++)
        print_mod(&r->mods[i]);
    fputs(label, stdout);
    if (arg != NULL) {
        putchar(' ');
        put_escaped(arg, strlen(arg));
    }
    printf(": %s", mc_kind_name(r->kind));
    if (r->kind == MC_REPLYCODE) {
        putchar(' ');
        put_escaped(r->text, strlen(r->text));
    }
    putchar('\n');
    return 0;
}

/* parse_num - parse a number in base with at most max; -1 if bad */
static int
parse_num(const char *s, int base, unsigned long max, unsigned long *v)
{
    char *end;

    errno = 0;
    *v = strtoul(s, &end, base);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || *v > max)
        return -1;
    return 0;
}

/* bad_arg - report a bad argument; returns -1 */
static int
bad_arg(struct mtc *t, const char *what, const char *arg)
{
    snprintf(t->why, sizeof(t->why), "bad %s \"%s\"", what, arg);
    return -1;
}

/* rest - the line from word k on, decoded; "" if there is no word k */
static char *
rest(const char *line, const struct words *ws, size_t k)
{
    const char *p = k < ws->n ? line + ws->start[k] : "";

    return decode(p, strlen(p));
}

/* run_negotiate - explicit negotiation, printed */
static int
run_negotiate(struct mtc *t, const char *line, struct words *ws)
{
    unsigned long a, p, v;

    (void)line;
    if (parse_num(ws->w[1], 16, 0xffffffffUL, &a) < 0)
        return bad_arg(t, "actions", ws->w[1]);
    if (parse_num(ws->w[2], 16, 0xffffffffUL, &p) < 0)
        return bad_arg(t, "protocol", ws->w[2]);
    if (mc_negotiate(t->m, a, p) < 0) {
        snprintf(t->why, sizeof(t->why), "%s", mc_error(t->m));
        return -1;
    }
    mc_negotiated(t->m, &v, &a, &p);
    printf("negotiate: version=%lu actions=0x%lx protocol=0x%lx\n", v, a, p);
    return 0;
}

/* run_macro - send macros for one step */
static int
run_macro(struct mtc *t, const char *line, struct words *ws)
{
    const char *const *nv = (const char *const *)ws->w + 2;

    (void)line;
    if (strlen(ws->w[1]) != 1 || strchr("CHMRTENLB", ws->w[1][0]) == NULL)
        return bad_arg(t, "macro step", ws->w[1]);
    if (ws->n % 2 != 0) {
        snprintf(t->why, sizeof(t->why), "macro %s without a value",
                 ws->w[ws->n - 1]);
        return -1;
    }
    if (mc_macro(t->m, ws->w[1][0], nv, ws->n - 2) < 0) {
        snprintf(t->why, sizeof(t->why), "%s", mc_error(t->m));
        return -1;
    }
    return 0;
}

/* run_connect - send connection information */
static int
run_connect(struct mtc *t, const char *line, struct words *ws)
{
    unsigned char buf[sizeof(struct in6_addr)];
    const char *addr = ws->w[2];
    unsigned long port = 25;
    char family;

    (void)line;
    if (inet_pton(AF_INET, addr, buf) == 1)
        family = SMFIA_INET;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        family = SMFIA_INET6;
    else if (addr[0] == '/') {
        family = SMFIA_UNIX;
        port = 0;
    } else if (strcmp(addr, "-") == 0 && ws->n == 3)
        family = SMFIA_UNKNOWN;
    else
        return bad_arg(t, "address", addr);
    if (ws->n == 4 && parse_num(ws->w[3], 10, 65535, &port) < 0)
        return bad_arg(t, "port", ws->w[3]);
    return print_reply(t, "connect", NULL,
                       mc_connect(t->m, ws->w[1], family, port, addr));
}

/* run_helo - send HELO */
static int
run_helo(struct mtc *t, const char *line, struct words *ws)
{
    (void)line;
    return print_reply(t, "helo", NULL, mc_helo(t->m, ws->w[1]));
}

/* run_mail - send MAIL FROM */
static int
run_mail(struct mtc *t, const char *line, struct words *ws)
{
    (void)line;
    return print_reply(
        t, "mail", NULL,
        mc_mail(t->m, (const char *const *)ws->w + 1, ws->n - 1));
}

/* run_rcpt - send RCPT TO */
static int
run_rcpt(struct mtc *t, const char *line, struct words *ws)
{
    (void)line;
    return print_reply(
        t, "rcpt", ws->w[1],
        mc_rcpt(t->m, (const char *const *)ws->w + 1, ws->n - 1));
}

/* run_rcptline - send RCPT TO with the rest of the line as its argument */
static int
run_rcptline(struct mtc *t, const char *line, struct words *ws)
{
    (void)line;
    return print_reply(t, "rcpt", ws->w[1],
                       mc_rcpt(t->m, (const char *const *)ws->w + 1, 1));
}

/* run_text - send a step whose argument is the rest of the line */
static int
run_text(struct mtc *t, const char *line, struct words *ws)
{
    char *text;
    int rc;

    if (strcmp(ws->w[0], "header") == 0) {
        text = rest(line, ws, 2);
        rc =
            print_reply(t, "header", ws->w[1], mc_header(t->m, ws->w[1], text));
    } else if (strcmp(ws->w[0], "body") == 0) {
        text = rest(line, ws, 1);
        rc = print_reply(t, "body", NULL, mc_body(t->m, text, strlen(text)));
    } else {
        text = rest(line, ws, 1);
        rc = print_reply(t, "unknown", NULL, mc_unknown(t->m, text));
    }
    free(text);
    return rc;
}

/* run_empty - send a step without arguments */
static int
run_empty(struct mtc *t, const char *line, struct words *ws)
{
    const char *c = ws->w[0];

    (void)line;
    if (strcmp(c, "data") == 0)
        return print_reply(t, c, NULL, mc_data(t->m));
    if (strcmp(c, "eoh") == 0)
        return print_reply(t, c, NULL, mc_eoh(t->m));
    if (strcmp(c, "eom") == 0)
        return print_reply(t, c, NULL, mc_eom(t->m));
    t->quit = strcmp(c, "quit") == 0;
    if ((t->quit ? mc_quit(t->m) : mc_abort(t->m))->kind == MC_ERROR) {
        snprintf(t->why, sizeof(t->why), "%s", mc_error(t->m));
        return -1;
    }
    printf("%s: sent\n", c);
    return 0;
}

/* run_sleep - pause */
static int
run_sleep(struct mtc *t, const char *line, struct words *ws)
{
    struct timespec ts;
    unsigned long ms;

    (void)line;
    if (parse_num(ws->w[1], 10, 3600000, &ms) < 0)
        return bad_arg(t, "sleep time", ws->w[1]);
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

/* run_together - the next N packets in one write */
static int
run_together(struct mtc *t, const char *line, struct words *ws)
{
    unsigned long n;

    (void)line;
    if (parse_num(ws->w[1], 10, 1000, &n) < 0 || n < 2)
        return bad_arg(t, "packet count", ws->w[1]);
    mc_together(t->m, (unsigned)n);
    return 0;
}

/* run_split - the next write as its first N bytes, the rest MS later */
static int
run_split(struct mtc *t, const char *line, struct words *ws)
{
    unsigned long n, ms;

    (void)line;
    if (parse_num(ws->w[1], 10, MC_MAX_PACKET, &n) < 0 || n == 0)
        return bad_arg(t, "byte count", ws->w[1]);
    if (parse_num(ws->w[2], 10, 3600000, &ms) < 0 || ms == 0)
        return bad_arg(t, "pause", ws->w[2]);
    mc_split(t->m, n, (unsigned)ms);
    return 0;
}

/* Commands: name, fewest and most words after the name, handler. */
static const struct command {
    const char *name;
    size_t min;
    size_t max;
    int (*run)(struct mtc *, const char *, struct words *);
} commands[] = {
    {"negotiate", 2, 2, run_negotiate},
    {"macro", 3, MTC_MAX_WORDS, run_macro},
    {"connect", 2, 3, run_connect},
    {"helo", 1, 1, run_helo},
    {"mail", 1, MTC_MAX_WORDS, run_mail},
    {"rcpt", 1, MTC_MAX_WORDS, run_rcpt},
    {"rcptline", 1, 1, run_rcptline},
    {"data", 0, 0, run_empty},
    {"unknown", 1, MTC_MAX_WORDS, run_text},
    {"header", 1, MTC_MAX_WORDS, run_text},
    {"eoh", 0, 0, run_empty},
    {"body", 0, MTC_MAX_WORDS, run_text},
    {"eom", 0, 0, run_empty},
    {"abort", 0, 0, run_empty},
    {"quit", 0, 0, run_empty},
    {"sleep", 1, 1, run_sleep},
    {"together", 1, 1, run_together},
    {"split", 2, 2, run_split},
};

/* negotiate_default - negotiate what a modern MTA offers, silently */
static int
negotiate_default(struct mtc *t)
{
    t->negotiated = 1;
    if (mc_negotiate(t->m, MTC_ACTIONS, MTC_PROTOCOL) == 0)
        return 0;
    snprintf(t->why, sizeof(t->why), "%s", mc_error(t->m));
    return -1;
}

/* run_line - check and run one script line */
static int
run_line(struct mtc *t, const char *line, struct words *ws)
{
    const struct command *c = commands;
    const struct command *end = commands + sizeof(commands) / sizeof(*c);

    while (c < end && strcmp(c->name, ws->w[0]) != 0)
        c++;
    if (c == end)
        return bad_arg(t, "command", ws->w[0]);
    if (ws->n - 1 < c->min || ws->n - 1 > c->max) {
        snprintf(t->why, sizeof(t->why), "%s: wrong number of arguments",
                 c->name);
        return -1;
    }
    if (t->quit) {
        snprintf(t->why, sizeof(t->why), "%s after quit", c->name);
        return -1;
    }
    if (c->run == run_negotiate && t->negotiated) {
        snprintf(t->why, sizeof(t->why), "negotiate must come first");
        return -1;
    }
    if (c->run != run_negotiate && !t->negotiated && negotiate_default(t) < 0)
        return -1;
    t->negotiated = 1;
    return c->run(t, line, ws);
}

/* run_script - run the script on stdin; 0, or -1 after printing why */
static int
run_script(struct mtc *t)
{
    struct words ws;
    char *line = NULL;
    size_t cap = 0, lineno = 0, n, i;
    ssize_t len;
    int rc = 0;

    while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        n = strlen(line);
        while (n > 0 && strchr(" \t\r\n", line[n - 1]) != NULL)
            line[--n] = '\0';
        ws.n = 0;
        if (line[strspn(line, " \t")] == '#')
            continue;
        if (split_line(t, line, &ws) < 0 ||
            (ws.n > 0 && run_line(t, line, &ws) < 0)) {
            printf("error: line %zu: ", lineno);
            put_line(t->why);
            rc = -1;
        }
        for (i = 0; i < ws.n; i++)
            free(ws.w[i]);
    }
    free(line);
    if (rc == 0 && ferror(stdin)) {
        printf("error: reading script: %s\n", strerror(errno));
        rc = -1;
    }
    return rc;
}

/* finish - negotiate if the script never did, quit if it did not */
static int
finish(struct mtc *t)
{
    if (!t->negotiated && negotiate_default(t) < 0)
        return -1;
    if (!t->quit && mc_quit(t->m)->kind == MC_ERROR) {
        snprintf(t->why, sizeof(t->why), "%s", mc_error(t->m));
        return -1;
    }
    return 0;
}

/* main - connect, run the script, finish with quit */
int
main(int argc, char **argv)
{
    unsigned long timeout = MTC_TIMEOUT;
    struct mtc t;
    int c;

    while ((c = getopt(argc, argv, "t:")) != -1) {
        if (c != 't' || parse_num(optarg, 10, 86400000, &timeout) < 0 ||
            timeout == 0)
            usage();
    }
    if (optind != argc - 1)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&t, 0, sizeof(t));
    t.m = mc_open(argv[optind], (int)timeout, t.why, sizeof(t.why));
    if (t.m == NULL) {
        fputs("error: ", stdout);
        put_line(t.why);
        return 2;
    }
    c = 0;
    if (run_script(&t) < 0) {
        c = 2;
    } else if (finish(&t) < 0) {
        fputs("error: ", stdout);
        put_line(t.why);
        c = 2;
    }
    mc_close(t.m);
    return c;
}
