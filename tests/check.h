/*
 * check.h - the smallest table-test helper
 *
 * Each test binary includes this once.  check_*() compare and print
 * "FAIL <case>: got X, want Y" on a mismatch; check_done() prints the
 * summary line "<prog>: N passed, N failed" and gives the exit code.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

/* check_str - compare two strings (NULL allowed) */
static void __attribute__((unused))
check_str(const char *name, const char *what, const char *got, const char *want)
{
    int same =
        (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;

    if (same) {
        check_passed++;
        return;
    }
    check_failed++;
    printf("FAIL %s: %s: got %s%s%s, want %s%s%s\n", name, what,
           got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
           want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
}

/* check_int - compare two integers */
static void __attribute__((unused))
check_int(const char *name, const char *what, long long got, long long want)
{
    if (got == want) {
        check_passed++;
        return;
    }
    check_failed++;
    printf("FAIL %s: %s: got %lld, want %lld\n", name, what, got, want);
}

/* check_done - print the summary; the exit code for main */
static int __attribute__((unused)) check_done(const char *prog)
{
    printf("%s: %d passed, %d failed\n", prog, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
