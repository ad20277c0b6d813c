/*
 * util.c - allocation wrappers and small string helpers
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt.h"
#include "log.h"
#include "mxs.h"

/* xmalloc - malloc that never returns NULL */
void *
xmalloc(size_t len)
{
    void *p = malloc(len ? len : 1);

    if (p == NULL)
        fatalx("out of memory (%zu bytes)", len);
    return p;
}

/* xcalloc - calloc that never returns NULL */
void *
xcalloc(size_t n, size_t len)
{
    void *p = calloc(n ? n : 1, len ? len : 1);

    if (p == NULL)
        fatalx("out of memory (%zu x %zu bytes)", n, len);
    return p;
}

/* xrealloc - realloc that never returns NULL */
void *
xrealloc(void *ptr, size_t len)
{
    void *p = realloc(ptr, len ? len : 1);

    if (p == NULL)
        fatalx("out of memory (%zu bytes)", len);
    return p;
}

/* xstrdup - strdup that never returns NULL */
char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* xstrndup - copy len bytes of s into a new string */
char *
xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* mxs_now_ms - monotonic milliseconds, the clock of caches and backoffs */
uint64_t
mxs_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* mxs_deadline - now on clock plus ms, for pthread_cond_timedwait() */
void
mxs_deadline(clockid_t clock, uint64_t ms, struct timespec *until)
{
    clock_gettime(clock, until);
    until->tv_sec += (time_t)(ms / 1000);
    until->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

/* xlock - take a mutex; a broken mutex is a broken invariant */
void
xlock(pthread_mutex_t *m)
{
    if (pthread_mutex_lock(m) != 0)
        fatalx("mutex lock failed");
}

/* xunlock - release a mutex */
void
xunlock(pthread_mutex_t *m)
{
    if (pthread_mutex_unlock(m) != 0)
        fatalx("mutex unlock failed");
}

/* mxs_why - format an explanation into a caller's buffer, if it has one */
void
mxs_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    if (strchr(fmt, '%') == NULL) { /* most: a fixed text, no printf */
        size_t n = strlen(fmt);

        n = n < whylen ? n : whylen - 1;
        memcpy(why, fmt, n);
        why[n] = '\0';
        return;
    }
    va_start(ap, fmt);
    fmt_vprint(why, whylen, fmt, ap);
    va_end(ap);
}

/*
 * mxs_escape - printable copy of untrusted bytes for a log line
 *
 * Bytes outside 0x20-0x7e, and the backslash, become \xHH.  The result is
 * cut to fit outlen (with "..." when cut) and always terminated.  Returns
 * the length written.
 */
size_t
mxs_escape(char *out, size_t outlen, const char *in, size_t inlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t i;

    if (outlen == 0)
        return 0;
    /* the common case, nothing to escape and room for it: one copy */
    for (i = 0; inlen + 4 <= outlen && i < inlen; i++) {
        unsigned char ch = (unsigned char)in[i];

        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            break;
    }
    if (inlen + 4 <= outlen && i == inlen) {
        memcpy(out, in, inlen);
        out[inlen] = '\0';
        return inlen;
    }
    for (i = 0; i < inlen; i++) {
        unsigned char ch = (unsigned char)in[i];
        size_t need = (ch < 0x20 || ch > 0x7e || ch == '\\') ? 4 : 1;

        if (o + need + 4 > outlen) {
            if (o + 4 <= outlen) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (need == 1) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

/* mxs_text_init - an empty text in size bytes at buf */
void
mxs_text_init(struct mxs_text *t, char *buf, size_t size)
{
    t->buf = buf;
    t->len = 0;
    t->size = size;
    t->cut = 0;
    buf[0] = '\0';
}

/* mxs_text_cut - append what fits of n bytes of s, and mark the text cut;
 * mxs_text_putn() when they do not all fit */
void
mxs_text_cut(struct mxs_text *t, const char *s, size_t n)
{
    size_t room = t->size - 1 - t->len;

    if (n > room) {
        n = room;
        t->cut = 1;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}
