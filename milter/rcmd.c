/*
 * rcmd.c - any Redis command, its reply copied out; see rcmd.h
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "mxs.h"
#include "rclient.h"
#include "rcmd.h"
#include "rpool.h"

/* copy_reply - copy a hiredis reply (not an error) into out */
static void
copy_reply(const redisReply *r, struct rcmd_reply *out)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        out->type = RCMD_STRING;
        out->str = xmalloc(r->len + 1);
        memcpy(out->str, r->str, r->len);
        out->str[r->len] = '\0';
        out->len = r->len;
        break;
    case REDIS_REPLY_INTEGER:
        out->type = RCMD_INTEGER;
        out->integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        out->type = RCMD_ARRAY;
        out->n = r->elements;
        out->elem = xcalloc(r->elements + 1, sizeof(*out->elem));
        for (i = 0; i < r->elements; i++)
            copy_reply(r->element[i], &out->elem[i]);
        break;
    default:
        out->type = RCMD_NIL;
        break;
    }
}

/*
 * rcmd_command - run any command on a pooled connection
 *
 * On MXS_OK out holds the reply (release it with rcmd_reply_clear()).
 * MXS_TEMPFAIL: Redis could not be reached or timed out.  MXS_INVALID:
 * Redis answered with an error (why has its text); an error inside an
 * array (EXEC, scripts) is returned the same way.  out is untouched
 * unless MXS_OK.
 */
int
rcmd_command(struct rclient *rc, int argc, const char *const *argv,
             struct rcmd_reply *out, char *why, size_t whylen)
{
    redisReply *r =
        rpool_command(rclient_pool(rc), argc, (const char **)argv, why, whylen);
    size_t i;

    if (r == NULL)
        return MXS_TEMPFAIL;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR)
            break;
    if (r->type == REDIS_REPLY_ERROR ||
        (r->type == REDIS_REPLY_ARRAY && i < r->elements)) {
        mxs_why(why, whylen, "Redis %s: %s refused: %s", rclient_endpoint(rc),
                argv[0],
                r->type == REDIS_REPLY_ERROR ? r->str : r->element[i]->str);
        freeReplyObject(r);
        return MXS_INVALID;
    }
    copy_reply(r, out);
    freeReplyObject(r);
    return MXS_OK;
}

/* rcmd_reply_clear - free what rcmd_command() copied out */
void
rcmd_reply_clear(struct rcmd_reply *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        rcmd_reply_clear(&r->elem[i]);
    free(r->elem);
    free(r->str);
    memset(r, 0, sizeof(*r));
}
