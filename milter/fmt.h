/*
 * fmt.h - vsnprintf(3) with a fast path for plain string formats
 *
 * fmt_vprint() and fmt_print() keep vsnprintf's contract: at most outlen bytes
 * are written at out, always terminated when outlen > 0, and the result is the
 * length the whole text would have had (so >= outlen means it was cut).
 * A format whose only conversions are %s and %% (the decision line and
 * most explanations, written for every recipient) is copied string by
 * string; any other format goes to vsnprintf() itself.  A NULL string
 * prints as "(null)", as glibc's does.  Thread safe; no state.
 */
#ifndef FMT_H
#define FMT_H

#include <stdarg.h>
#include <stddef.h>

int fmt_vprint(char *out, size_t outlen, const char *fmt, va_list ap);
int fmt_print(char *out, size_t outlen, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#endif
