/*
 * rcmd.h - any Redis command, for mxswitch-ctl
 *
 * rcmd_command() sends one command through the client's pool (rpool.h:
 * the same timeouts, reconnects and Sentinel failover as the lookups) and
 * copies the reply out of hiredis: strings (bulk and status) are owned
 * copies with a NUL added; arrays own their elements.  rcmd_reply_clear()
 * frees the lot.  Thread safe as the pool is; logs nothing.
 */
#ifndef RCMD_H
#define RCMD_H

#include <stddef.h>

enum rcmd_type { RCMD_NIL = 0, RCMD_STRING, RCMD_INTEGER, RCMD_ARRAY };

struct rcmd_reply {
    enum rcmd_type type;
    char *str; /* RCMD_STRING */
    size_t len;
    long long integer;       /* RCMD_INTEGER */
    struct rcmd_reply *elem; /* RCMD_ARRAY: n elements */
    size_t n;
};

struct rclient;

int rcmd_command(struct rclient *rc, int argc, const char *const *argv,
                 struct rcmd_reply *out, char *why, size_t whylen);
void rcmd_reply_clear(struct rcmd_reply *r);

#endif
