#!/bin/bash
# test_rclient - the Redis pool against a real redis-server: lookups from
# many threads share round trips once more are waiting than
# redis.connections, and each thread still gets the answer to its own
# keys; a held Redis fails every waiting lookup (none hangs), and lookups
# work again afterwards; a Redis shut down under load gives each lookup
# its right answer or a failure, never another's.  The cases are in
# tests/rshare.c; this file starts the server and checks each case's
# summary.
T_NAME=test_rclient
. "$(dirname "$0")/lib.sh"

free_port RPORT
start_redis "$RPORT" || abort "redis starts"

# rshare NAME CASE [N] - run one case; it passes when all its checks do
rshare() {
    local out="$WORK/$2.out" rc=0
    # shellcheck disable=SC2086
    $WRAP "$TESTBIN/rshare" "$RPORT" "$2" ${3:-} >"$out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] && grep -q "^rshare $2: [1-9][0-9]* passed, 0 failed$" "$out"; then
        pass "$1 ($(grep -E '^(share|many|gone):' "$out" | head -n 1))"
    else
        fail "$1" "exit $rc: $(grep -v '^ok' "$out" | tail -n 5 | tr '\n' ' ')"
    fi
}

# valgrind makes each lookup far slower: fewer of them, and Redis is held
# long enough for the 32 threads of "share" to start (they are not sure
# to within 500 ms: 3 to 21 round trips seen, before and after 2026-12-06)
n=2000
[ -n "$WRAP" ] && n=100 && export RSHARE_SLOW=1

rshare "32 lookups while Redis is held go out together, each answered right" share
rshare "48 threads x $n lookups on 4 connections, each answered right" many "$n"
rshare "Redis held past timeout_ms: all fail, none hangs, then work again" pause
rshare "Redis shut down under load: right answers or failures only" gone
finish
