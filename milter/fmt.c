/*
 * fmt.c - vsnprintf(3) with a fast path for plain string formats; see fmt.h
 *
 * glibc's vsnprintf() costs a few hundred instructions per conversion; a
 * decision line has a dozen, and it is written for every recipient (the
 * largest single cost of the milter's RCPT callback, by callgrind).
 */
#include <stdio.h>
#include <string.h>

#include "fmt.h"

/*
 * fmt_vprint - vsnprintf() with the %s-only fast path
 *
 * One pass over the format, copying as it goes; the first conversion that
 * is neither %s nor %% hands the whole format to vsnprintf() instead,
 * with the arguments from the start (ap is only read through a copy).
 */
int
fmt_vprint(char *out, size_t outlen, const char *fmt, va_list ap)
{
    size_t at = 0, n, room;
    const char *p, *s;
    va_list aq;

    va_copy(aq, ap);
    for (p = fmt; *p != '\0'; p++) {
        if (*p != '%' || p[1] == '%') {
            if (at + 1 < outlen)
                out[at] = *p;
            at++;
            p += *p == '%';
            continue;
        }
        if (p[1] != 's') {
            va_end(aq);
            return vsnprintf(out, outlen, fmt, ap);
        }
        s = va_arg(aq, const char *);
        if (s == NULL)
            s = "(null)";
        n = strlen(s);
        room = at + 1 < outlen ? outlen - 1 - at : 0;
        if (room > 0)
            memcpy(out + at, s, n < room ? n : room);
        at += n;
        p++;
    }
    va_end(aq);
    if (outlen > 0)
        out[at < outlen ? at : outlen - 1] = '\0';
    return (int)at;
}

/* fmt_print - snprintf() with the %s-only fast path */
int
fmt_print(char *out, size_t outlen, const char *format, ...)
{
    va_list ap;
    int n;

    va_start(ap, format);
    n = fmt_vprint(out, outlen, format, ap);
    va_end(ap);
    return n;
}
