#!/bin/bash
# test_redis - the Redis settings against real redis-server processes: unix
# socket, password, ACL username, db number, a refused AUTH, a slow Redis
# (timeout_ms) and a watcher that follows changes in a non-zero db.  The
# decisions are observed as Postfix sees them: the transport socket map's
# answer (route_of), and the milter's RCPT reply where Redis fails.
T_NAME=test_redis
. "$(dirname "$0")/lib.sh"

free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
free_port SMAP_PORT
# The instance's transports, as the setup script would write them.
transports "$WORK"
SOCK="$WORK/redis.sock"

# One Redis on a unix socket (and a TCP port for the ACL user case), with a
# password for the default user and an ACL user that may only read keys
# under the prefix and subscribe to their notifications.  Redis 7 lets a
# PSUBSCRIBE through only when its pattern is literally one the user was
# given: '&__keyspace@*' (as INSTALL says) refuses the watcher's pattern
# with NOPERM, so the user gets the watcher's own pattern.
free_port RPORT
start_redis "$RPORT" --unixsocket "$SOCK" --unixsocketperm 700 \
    --requirepass 'pw-default-9' --enable-debug-command local ||
    { fail "redis starts" "-"; finish; exit; }
rcli() { redis-cli -p "$RPORT" -a 'pw-default-9' --no-auth-warning "$@"; }
rcli ACL SETUSER mx on '>pw-mx-7' '~mxswitch:*' \
    '&__keyspace@3__:mxswitch:domain:*' \
    +mget +ping +select +psubscribe '+config|get' >/dev/null
rcli -n 3 SET mxswitch:domain:remote.test remote >/dev/null
rcli -n 3 SET mxswitch:domain:toggle.test remote >/dev/null
rcli -n 3 SET mxswitch:domain:again.test remote >/dev/null

# run_with NAME REDIS-SETTINGS - start mxswitch with these redis settings
run_with() {
    cat >"$WORK/$1.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
redis: { $2 timeout_ms = 400; };
cache: { ttl = 3600; };
CONF
    start_mxswitch "$WORK/$1.conf" "$MPORT"
}

run_with unix "unix = \"$SOCK\"; password = \"pw-default-9\"; db = 3;"
expect_eq "unix socket + password + db 3: remote goes to the remote transport" \
    "$(route_of remote.test)" "OK smtp:"
expect_eq "unix socket: toggle.test is remote before the flip" \
    "$(route_of toggle.test)" "OK smtp:"
rcli -n 3 SET mxswitch:domain:toggle.test local >/dev/null
poll_for "OK virtual:" 25 route_of toggle.test
expect_eq "watcher follows db 3 over the unix socket: the cached remote turns local" \
    "$GOT" "OK virtual:"
stop_mxswitch "unix socket: clean exit"

run_with acl "host = \"127.0.0.1\"; port = $RPORT; username = \"mx\"; password = \"pw-mx-7\"; db = 3;"
expect_eq "ACL user: remote goes to the remote transport" \
    "$(route_of remote.test)" "OK smtp:"
expect_eq "ACL user: toggle.test is local before the flip" \
    "$(route_of toggle.test)" "OK virtual:"
rcli -n 3 SET mxswitch:domain:toggle.test remote >/dev/null
poll_for "OK smtp:" 25 route_of toggle.test
expect_eq "ACL user: watcher follows changes: the cached local turns remote" \
    "$GOT" "OK smtp:"
expect_grep "ACL user: the watcher subscribed over TCP" "$WORK/mxswitch.log" \
    "redis: watching __keyspace@3__:mxswitch:domain:\\* for changes on 127\\.0\\.0\\.1:$RPORT\$"
# TCP keepalive on every connection to Redis (the watcher only reads: a
# Redis host gone without a reset must still be noticed)
conns=$(ss -Htnpo state established "( dport = :$RPORT )" | grep "pid=$MX_PID,")
all=$(grep -c . <<<"$conns") ka=$(grep -c 'timer:(keepalive' <<<"$conns")
expect_eq "TCP keepalive is on for each of mxswitch's $all connections to Redis" \
    "$((all >= 2 && ka == all))" 1
stop_mxswitch "ACL user: clean exit"

run_with badpw "host = \"127.0.0.1\"; port = $RPORT; password = \"wrong-pw-5\"; db = 3;"
expect_eq "refused AUTH: recipient gets 451" "$(rcpt_answer remote.test)" \
    "$T451"
got=$(route_of remote.test)
expect_eq "refused AUTH: the transport map answers TEMP" "${got%% *}" TEMP
expect_grep "refused AUTH is logged" "$WORK/mxswitch.log" \
    'AUTH refused: WRONGPASS'
expect_eq "the password never reaches the log" \
    "$(grep -c wrong-pw-5 "$WORK/mxswitch.log")" 0
stop_mxswitch "refused AUTH: clean exit"

run_with slow "host = \"127.0.0.1\"; port = $RPORT; password = \"pw-default-9\"; db = 3;"
expect_eq "before the stall: lookups work" "$(route_of remote.test)" \
    "OK smtp:"
rcli DEBUG SLEEP 2 >/dev/null &
sleep_pid=$!
track "$sleep_pid"
sleep 0.3
start=$(date +%s%N)
got=$(rcpt_answer slow.test)
got2=$(route_of slow2.test)
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "slow Redis: recipient gets 451 instead of waiting" "$got" \
    "$T451"
expect_eq "slow Redis: the transport map answers TEMP instead of waiting" \
    "${got2%% *}" TEMP
echo "     (both answered after ${ms} ms with timeout_ms = 400)"
# Not a speed goal: Redis sleeps 2000 ms from 300 ms before the RCPT, so an
# answer that waited for Redis would come after 1700 ms.
expect_eq "slow Redis: both answered before Redis woke up" \
    "$([ "$ms" -lt 1700 ] && echo yes || echo "no ($ms ms)")" yes
expect_grep "slow Redis is logged as a failure" "$WORK/mxswitch.log" \
    'unreachable: .*timed out after 400 ms'
wait "$sleep_pid" 2>/dev/null
untrack "$sleep_pid"
poll_for "OK smtp:" 30 route_of again.test
expect_eq "after the stall: lookups work again" "$GOT" "OK smtp:"
expect_eq "after the stall: the milter accepts again" \
    "$(rcpt_answer again.test)" continue
stop_mxswitch "slow Redis: clean exit"
finish
