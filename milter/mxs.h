/*
 * mxs.h - definitions shared by every mxswitch module
 *
 * Status codes returned by the core modules, the version string, and the
 * allocation wrappers.  Out of memory is fatal: the x* wrappers never return
 * NULL; the MTA's milter_default_action covers a milter that died.
 */
#ifndef MXS_H
#define MXS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MXS_VERSION "0.1.0"

enum mxs_status {
    MXS_OK = 0,   /* done, result valid */
    MXS_NOMATCH,  /* nothing found; not an error */
    MXS_TEMPFAIL, /* try again later (Redis down, slow, ...) */
    MXS_INVALID,  /* bad input; the reason is in why */
    MXS_PENDING   /* a lookup the cache could not decide (lookup.c) */
};

void *xmalloc(size_t len);
void *xcalloc(size_t n, size_t len);
void *xrealloc(void *ptr, size_t len);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);
uint64_t mxs_now_ms(void);
void mxs_deadline(clockid_t clock, uint64_t ms, struct timespec *until);
void xlock(pthread_mutex_t *m);
void xunlock(pthread_mutex_t *m);
void mxs_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t mxs_escape(char *out, size_t outlen, const char *in, size_t inlen);

/* mxs_hash - FNV-1a over len bytes, for the hash tables (the cache, DNS) */
static inline uint32_t
mxs_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/*
 * A text built by appending pieces to a caller's buffer, without printf:
 * for the lines and addresses made for every recipient.  What does not fit
 * is cut (cut is then set); buf is always terminated.
 */
struct mxs_text {
    char *buf;
    size_t len, size; /* size > 0 */
    int cut;
};

void mxs_text_init(struct mxs_text *t, char *buf, size_t size);
void mxs_text_cut(struct mxs_text *t, const char *s, size_t n);

/* The appends are inline: most pieces are literals, whose length the
 * compiler knows and whose copy it makes a few moves (callgrind: the
 * calls and strlen were a fifth of the warm milter's instructions). */

/* mxs_text_putn - append n bytes of s, or as many as fit */
static inline void
mxs_text_putn(struct mxs_text *t, const char *s, size_t n)
{
    if (n > t->size - 1 - t->len) {
        mxs_text_cut(t, s, n);
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* mxs_text_put - append a string */
static inline void
mxs_text_put(struct mxs_text *t, const char *s)
{
    mxs_text_putn(t, s, strlen(s));
}

/* mxs_text_putc - append one byte */
static inline void
mxs_text_putc(struct mxs_text *t, char c)
{
    mxs_text_putn(t, &c, 1);
}

#endif
