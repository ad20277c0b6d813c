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

#define MXS_VERSION "0.1.0"

enum mxs_status {
    MXS_OK = 0,   /* done, result valid */
    MXS_NOMATCH,  /* nothing found; not an error */
    MXS_TEMPFAIL, /* try again later (Redis down, slow, ...) */
    MXS_INVALID   /* bad input; the reason is in why */
};

void *xmalloc(size_t len);
void *xcalloc(size_t n, size_t len);
void *xrealloc(void *ptr, size_t len);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);
uint64_t mxs_now_ms(void);
void xlock(pthread_mutex_t *m);
void xunlock(pthread_mutex_t *m);
void mxs_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t mxs_escape(char *out, size_t outlen, const char *in, size_t inlen);
int mxs_nodelay_listeners(void);

#endif
