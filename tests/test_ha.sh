#!/bin/bash
# test_ha - Redis faults against real redis-server processes: a list of
# endpoints (first one dead, then the one in use dying), a Redis frozen with
# SIGSTOP (timeout_ms bounds each lookup), and cache.stale_ttl answering
# from expired cache entries while Redis is down, then on_error beyond it.
T_NAME=test_ha
. "$(dirname "$0")/lib.sh"

free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"

# run_with NAME REDIS-SETTINGS CACHE-SETTINGS - start mxswitch
run_with() {
    cat >"$WORK/$1.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { $2 timeout_ms = 300; };
cache: { $3 };
CONF
    start_mxswitch "$WORK/$1.conf" "$MPORT"
}

# --- Endpoint list: A on TCP (down at first), B on a unix socket.  The two
# hold different modes for the same domain, so the answer names the server.
free_port PA
free_port PB
SOCKB="$WORK/b.sock"
start_redis "$PB" --unixsocket "$SOCKB" --unixsocketperm 700 ||
    { fail "redis B starts" "-"; finish; exit; }
B_PID=$REDIS_PID
redis-cli -p "$PB" SET mxswitch:domain:which.test local >/dev/null

run_with list "servers = ( \"127.0.0.1:$PA\", \"unix:$SOCKB\" );" "ttl = 0;"
expect_eq "first endpoint down: the second answers" "$(rcpt_answer which.test)" \
    continue
expect_grep "the log names the endpoint in use" "$WORK/mxswitch.log" \
    "redis: using unix:$SOCKB\$"
start_redis "$PA" || { fail "redis A starts" "-"; finish; exit; }
A_PID=$REDIS_PID
redis-cli -p "$PA" SET mxswitch:domain:which.test remote >/dev/null
expect_eq "first endpoint back: the working one is kept" \
    "$(rcpt_answer which.test)" continue
stop_pid "$B_PID"
expect_eq "endpoint in use dies: the next one answers at once" \
    "$(rcpt_answer which.test)" "continue <u+mx-remote@which.test>"
expect_grep "the log names the new endpoint" "$WORK/mxswitch.log" \
    "redis: using 127\.0\.0\.1:$PA\$"
expect_eq "no lookup failed while switching" \
    "$(grep -c 'lookup failed' "$WORK/mxswitch.log")" 0
stop_mxswitch "endpoint list: clean exit"

# --- A frozen Redis (SIGSTOP): each lookup costs at most about timeout_ms
# and gets 451; after SIGCONT lookups work again.
run_with frozen "host = \"127.0.0.1\"; port = $PA;" "ttl = 0;"
expect_eq "before the freeze: lookups work" "$(rcpt_answer which.test)" \
    "continue <u+mx-remote@which.test>"
kill -STOP "$A_PID"
start=$(date +%s%N)
got1=$(rcpt_answer which.test)
mid=$(date +%s%N)
got2=$(rcpt_answer other.test)
end=$(date +%s%N)
kill -CONT "$A_PID"
expect_eq "frozen Redis: the recipient gets 451" "$got1" "$T451"
expect_eq "frozen Redis: the next lookup gets 451 too" "$got2" "$T451"
echo "     (answered after $(((mid - start) / 1000000)) ms and" \
    "$(((end - mid) / 1000000)) ms with timeout_ms = 300)"
expect_grep "frozen Redis is logged as a timeout" "$WORK/mxswitch.log" \
    'unreachable: .*timed out after 300 ms'
poll_for "continue <u+mx-remote@which.test>" 50 rcpt_answer which.test
expect_eq "after SIGCONT: lookups work again" "$GOT" \
    "continue <u+mx-remote@which.test>"
stop_mxswitch "frozen Redis: clean exit"

# --- Stale answers: ttl 1 s, stale_ttl 60 s.  Redis stops; past the ttl
# the cached answer still serves (logged), an uncached domain gets 451.
redis-cli -p "$PA" SET mxswitch:domain:stale.test remote >/dev/null
run_with stale "host = \"127.0.0.1\"; port = $PA;" "ttl = 1; stale_ttl = 60;"
expect_eq "stale: answer while Redis is up" "$(rcpt_answer stale.test)" \
    "continue <u+mx-remote@stale.test>"
expect_eq "stale: an absent key while Redis is up" "$(rcpt_answer absent.test)" \
    continue
stop_pid "$A_PID"
sleep 1.2 # past cache.ttl
expect_eq "stale: Redis down past ttl: the cached answer serves" \
    "$(rcpt_answer stale.test)" "continue <u+mx-remote@stale.test>"
expect_eq "stale: a cached absent key serves too" "$(rcpt_answer absent.test)" \
    continue
expect_eq "stale: a domain never cached gets 451" "$(rcpt_answer never.test)" \
    "$T451"
expect_grep "stale: the decision is logged as stale" "$WORK/mxswitch.log" \
    'rcpt=<u@stale\.test> domain=stale\.test mode=remote source=stale'
expect_eq "stale: one warning for the outage, not one per lookup" \
    "$(grep -c 'using cached answers up to cache.stale_ttl' "$WORK/mxswitch.log")" 1
stop_mxswitch "stale: clean exit"

# Beyond stale_ttl, on_error applies again.
start_redis "$PA" || { fail "redis A restarts" "-"; finish; exit; }
A_PID=$REDIS_PID
redis-cli -p "$PA" SET mxswitch:domain:stale.test remote >/dev/null
run_with stale1 "host = \"127.0.0.1\"; port = $PA;" "ttl = 1; stale_ttl = 1;"
expect_eq "stale 1 s: answer while Redis is up" "$(rcpt_answer stale.test)" \
    "continue <u+mx-remote@stale.test>"
stop_pid "$A_PID"
sleep 2.2 # past cache.ttl + cache.stale_ttl
expect_eq "beyond stale_ttl: on_error (451) applies" "$(rcpt_answer stale.test)" \
    "$T451"
stop_mxswitch "beyond stale_ttl: clean exit"
finish
