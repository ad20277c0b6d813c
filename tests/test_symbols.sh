#!/bin/bash
# test_symbols - mxswitch uses the C library, libmilter and hiredis as
# their authors ship them: neither binary defines a function that one of
# those libraries exports (a definition in the executable would take the
# place of the library's own for every caller, the libraries included),
# and no source wraps or interposes one (RTLD_NEXT, dlsym, the linker's
# --wrap, LD_PRELOAD).
#
# The forbidden names are computed, never listed by hand: every function
# (nm types T, W, i) that the libc.so.6 the daemon links (found by ldd),
# its libmilter and its hiredis export.  What is checked against them:
# the binaries' own dynamic exports; under ASan or TSan, whose runtimes
# bring interceptors of their own, the functions the project's object
# files ($TESTBIN/*.o of milter/*.c and tests/*.c) define instead.  The object files are checked in
# every variant too.
T_NAME=test_symbols
. "$(dirname "$0")/lib.sh"

VARIANT=${VARIANT:-release}

# functions FILE... - the function names FILEs define, one a line, sorted;
# version suffixes (close@@GLIBC_2.2.5) dropped
functions() {
    nm "$@" 2>/dev/null |
        awk 'NF >= 3 && $(NF - 1) ~ /^[TWi]$/ { n = $NF; sub(/@.*/, "", n);
             print n }' | sort -u
}

# library NAME - the path ldd gives for the daemon's library NAME
library() { ldd "$MXSWITCH" | awk -v n="$1" 'index($1, n) == 1 { print $3 }'; }

LIBC=$(library libc.so.6)
LIBMILTER=$(library libmilter.so)
LIBHIREDIS=$(library libhiredis.so)
expect_eq "ldd finds the libc, libmilter and hiredis the daemon links" \
    "$([ -f "$LIBC" ] && [ -f "$LIBMILTER" ] && [ -f "$LIBHIREDIS" ] &&
        echo found)" found
functions -D --defined-only "$LIBC" "$LIBMILTER" "$LIBHIREDIS" \
    >"$WORK/theirs"
# Not vacuous: each library's list is there and holds a known function.
expect_eq "their exported functions hold close, sigwait, smfi_main, redisConnect" \
    "$(grep -cxE 'close|sigwait|smfi_main|redisConnect' "$WORK/theirs")" 4

# check NAME FILE - FILE's defined functions share no name with theirs
check() {
    local both
    both=$(comm -12 "$WORK/theirs" "$2" | paste -sd ' ')
    if [ -z "$both" ]; then pass "$1"; else
        fail "$1" "defines $both"
    fi
}

# The objects of today's sources only: a build directory can keep the
# objects of a module since deleted.
OBJS=$(for c in milter/*.c tests/*.c; do
    o=$(basename "$c" .c)
    case $c in tests/*) o=t_$o ;; esac
    [ -f "$TESTBIN/$o.o" ] && echo "$TESTBIN/$o.o"
done)
# shellcheck disable=SC2086
functions --defined-only $OBJS >"$WORK/objs"
expect_eq "the project's object files are there and define functions" \
    "$([ -s "$WORK/objs" ] && grep -cx route_decide "$WORK/objs")" 1
check "the object files in $TESTBIN define no function of libc, libmilter or hiredis" \
    "$WORK/objs"
for bin in "$MXSWITCH" "$MXCTL"; do
    name=$(basename "$bin")
    case $VARIANT in
    asan | tsan)
        # The runtime's interceptors may be exported: the object files
        # (checked above) stand for the binary.
        check "$name ($VARIANT): its object files define none of their functions" \
            "$WORK/objs"
        ;;
    *)
        functions -D --defined-only "$bin" >"$WORK/$name.dyn"
        expect_eq "nm -D reads $name" "$(nm -D "$bin" >/dev/null 2>&1 &&
            echo read)" read
        check "$name exports no function of libc, libmilter or hiredis" \
            "$WORK/$name.dyn"
        ;;
    esac
done
expect_eq "mxswitch links libmilter and hiredis as shared libraries" \
    "$(ldd "$MXSWITCH" | grep -cE '^\s(libmilter|libhiredis)\.so')" 2

# No source interposes a function: this file names the words only to look
# for them.
HITS=$(grep -rIlE -e 'RTLD_NEXT|dlsym|--wrap|LD_PRELOAD' milter tests Makefile |
    grep -vx tests/test_symbols.sh | paste -sd ' ')
expect_eq "no source under milter/ or tests/, nor the Makefile, uses RTLD_NEXT, dlsym, --wrap or LD_PRELOAD" \
    "$HITS" ""
# The search itself works: a file holding one of the words is found.
mkdir -p "$WORK/probe"
echo 'p = dlsym(RTLD_NEXT, "close");' >"$WORK/probe/x.c"
expect_eq "the source search finds a planted dlsym(RTLD_NEXT)" \
    "$(grep -rIlE -e 'RTLD_NEXT|dlsym|--wrap|LD_PRELOAD' "$WORK/probe" |
        wc -l)" 1

finish
