/*
 * test_smap - the socketmap request reader and reply framing, no sockets
 *
 * Each case feeds its input in pieces and lists what the reader hands out:
 * one line per request ("name|key", key "-" when the payload is not "name
 * key"), then "more" (needs bytes) or "error: <why>" (framing broken).
 * Which map names exist is route_map_of()'s, tested in test_route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mxs.h"
#include "smap.h"

#define MAX_FEEDS 4

struct reader_case {
    const char *name;
    const char *feeds[MAX_FEEDS]; /* NULL-terminated pieces */
    const char *want;
};

static const struct reader_case cases[] = {
    {"a complete request is handed out",
     {"24:mxswitch bob@remote.test,", NULL},
     "mxswitch|bob@remote.test\nmore\n"},
    {"a request split across feeds waits for its last byte",
     {"2", "4:mxswitch bob@", "remote.test", ","},
     "mxswitch|bob@remote.test\nmore\n"},
    {"a request split in the length waits", {"2", NULL}, "more\n"},
    {"a request missing only its comma waits",
     {"24:mxswitch bob@remote.test", NULL},
     "more\n"},
    {"two requests in one buffer come out in order",
     {"17:mxswitch a@b.test,17:mxswitch c@d.test,", NULL},
     "mxswitch|a@b.test\nmxswitch|c@d.test\nmore\n"},
    {"a request and half of the next",
     {"17:mxswitch a@b.test,17:mxs", "witch c@d.test,"},
     "mxswitch|a@b.test\nmxswitch|c@d.test\nmore\n"},
    {"a key keeps its spaces and case",
     {"31:mxswitch \"John Doe\"@Remote.Test,", NULL},
     "mxswitch|\"John Doe\"@Remote.Test\nmore\n"},
    {"an empty key is a request", {"9:mxswitch ,", NULL}, "mxswitch|\nmore\n"},
    {"a payload without a space is a malformed request",
     {"8:mxswitch,", NULL},
     "mxswitch|-\nmore\n"},
    {"an empty payload is a malformed request", {"0:,", NULL}, "|-\nmore\n"},
    {"a NUL byte in the payload is a malformed request",
     {"9:mxs", "\0", "w a@b,"},
     "mxs|-\nmore\n"},
    {"any map name is read: the server says which it knows",
     {"13:virtual bob@x,", NULL},
     "virtual|bob@x\nmore\n"},
    {"the map name is read exactly",
     {"14:MXSWITCH bob@x,", NULL},
     "MXSWITCH|bob@x\nmore\n"},
    {"a letter in the length breaks the framing",
     {"2x:mxswitch bob@remote.test,", NULL},
     "error: bad netstring length\n"},
    {"a missing length breaks the framing",
     {":mxswitch,", NULL},
     "error: bad netstring length\n"},
    {"a leading zero in the length breaks the framing",
     {"024:mxswitch bob@remote.test,", NULL},
     "error: leading zero in netstring length\n"},
    {"a wrong length shows as a missing comma",
     {"20:mxswitch bob@remote.test,", NULL},
     "error: missing ',' after netstring\n"},
    {"a missing comma breaks the framing after the good request",
     {"17:mxswitch a@b.test,17:mxswitch c@d.test;", NULL},
     "mxswitch|a@b.test\nerror: missing ',' after netstring\n"},
    {"a length over the limit breaks the framing at once",
     {"10001:", NULL},
     "error: request too long\n"},
    {"a huge length breaks the framing before it overflows",
     {"99999999999999999999999:", NULL},
     "error: request too long\n"},
};

/* feed_len - a piece's length; a piece that is just "\0" is one NUL byte */
static size_t
feed_len(const char *piece)
{
    return piece[0] == '\0' ? 1 : strlen(piece);
}

/* run_case - feed the pieces, collect what the reader says */
static void
run_case(const struct reader_case *c)
{
    struct smap_reader *r = smap_reader_create(SMAP_MAX_REQUEST);
    char got[2048] = "";
    struct smap_request req;
    int i, rcode = MXS_NOMATCH;

    for (i = 0; i < MAX_FEEDS && c->feeds[i] != NULL; i++) {
        smap_reader_feed(r, c->feeds[i], feed_len(c->feeds[i]));
        while ((rcode = smap_reader_get(r, &req)) == MXS_OK) {
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s|%s\n",
                     req.name, req.key ? req.key : "-");
        }
        if (rcode == MXS_INVALID)
            break;
    }
    if (rcode == MXS_INVALID)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "error: %s\n",
                 smap_reader_error(r));
    else
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "more\n");
    check_str(c->name, "requests", got, c->want);
    smap_reader_free(r);
}

/* run_limits - the longest payload passes, one more byte does not */
static void
run_limits(void)
{
    const char *name = "a payload of exactly the limit is accepted";
    size_t len = SMAP_MAX_REQUEST;
    char *buf = malloc(len + 16);
    struct smap_reader *r = smap_reader_create(SMAP_MAX_REQUEST);
    struct smap_request req;
    int n;

    n = snprintf(buf, 16, "%zu:mxswitch ", len);
    memset(buf + n, 'a', len - 9);
    buf[n + len - 9] = ',';
    smap_reader_feed(r, buf, (size_t)n + len - 9 + 1);
    check_int(name, "status", smap_reader_get(r, &req), MXS_OK);
    check_int(name, "key length", (long long)strlen(req.key),
              (long long)len - 9);
    smap_reader_free(r);

    name = "a broken reader stays broken";
    r = smap_reader_create(SMAP_MAX_REQUEST);
    smap_reader_feed(r, "x", 1);
    check_int(name, "first", smap_reader_get(r, &req), MXS_INVALID);
    smap_reader_feed(r, "17:mxswitch a@b.test,", 20);
    check_int(name, "after more bytes", smap_reader_get(r, &req), MXS_INVALID);
    smap_reader_free(r);
    smap_reader_free(NULL);
    free(buf);
}

/* run_replies - the reply netstrings */
static void
run_replies(void)
{
    char out[64];

    smap_reply(out, sizeof(out), "OK", "bob@remote.test");
    check_str("an OK reply carries the data", "reply", out,
              "18:OK bob@remote.test,");
    smap_reply(out, sizeof(out), "NOTFOUND", "");
    check_str("NOTFOUND ends in a space", "reply", out, "9:NOTFOUND ,");
    smap_reply(out, sizeof(out), "TEMP", "redis down");
    check_str("TEMP carries the reason", "reply", out, "15:TEMP redis down,");
    check_int("a reply that does not fit gives 0", "length",
              (long long)smap_reply(out, 10, "NOTFOUND", ""), 0);
    check_int("a reply that fits gives its length", "length",
              (long long)smap_reply(out, 13, "NOTFOUND", ""), 12);
}

int
main(void)
{
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    run_limits();
    run_replies();
    return check_done("test_smap");
}
