#!/bin/bash
# test_ha - Redis faults against real redis-server processes: a list of
# endpoints (first one dead, then the one in use dying), a Redis frozen with
# SIGSTOP (timeout_ms bounds each lookup), and cache.stale_ttl answering
# from expired cache entries while Redis is down, then on_error beyond it.
# Decisions are observed as Postfix sees them: the transport socket map's
# answer (route_of: "OK smtp:" remote, "OK virtual:" local, "NOTFOUND",
# "TEMP ...") and the milter's RCPT reply (451 when the lookup failed).
T_NAME=test_ha
. "$(dirname "$0")/lib.sh"

free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
free_port SMAP_PORT
# The instance's transports, as the setup script would write them.
transports "$WORK"

# temp_of DOMAIN - the first word of the transport map's answer for u@DOMAIN
temp_of() { route_of "$1" | cut -d' ' -f1; }

# run_with NAME REDIS-SETTINGS CACHE-SETTINGS - start mxswitch
run_with() {
    cat >"$WORK/$1.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
redis: { $2 timeout_ms = 300; };
cache: { $3 };
CONF
    start_mxswitch "$WORK/$1.conf" "$MPORT"
}

# start_a NAME [ARGS] - (re)start Redis A (ARGS to redis-server); the test
# NAME fails and the script stops when it cannot
start_a() {
    local name=$1
    shift
    start_redis "$PA" "$@" || { fail "$name" "-"; finish; exit; }
    A_PID=$REDIS_PID
}

# run_on_a NAME CACHE - run_with on Redis A, then wait until the change
# watcher has subscribed; sets w (watches before, for a later await_watch)
run_on_a() {
    w=$(watches)
    run_with "$1" "host = \"127.0.0.1\"; port = $PA;" "$2"
    await_watch "$w" || fail "$1: the change watcher subscribes" "-"
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
expect_eq "first endpoint down: the second answers (local)" \
    "$(route_of which.test)" "OK virtual:"
expect_grep "the log names the endpoint in use" "$WORK/mxswitch.log" \
    "redis: using unix:$SOCKB\$"
start_a "redis A starts"
redis-cli -p "$PA" SET mxswitch:domain:which.test remote >/dev/null
expect_eq "first endpoint back: the working one is kept (still local)" \
    "$(route_of which.test)" "OK virtual:"
stop_pid "$B_PID"
expect_eq "endpoint in use dies: the next one answers at once (remote)" \
    "$(route_of which.test)" "OK smtp:"
expect_grep "the log names the new endpoint" "$WORK/mxswitch.log" \
    "redis: using 127\.0\.0\.1:$PA\$"
expect_eq "no lookup failed while switching" \
    "$(grep -c 'lookup failed' "$WORK/mxswitch.log")" 0
stop_mxswitch "endpoint list: clean exit"

# --- A frozen Redis (SIGSTOP): each lookup costs at most about timeout_ms
# and gets 451; after SIGCONT lookups work again.
run_with frozen "host = \"127.0.0.1\"; port = $PA;" "ttl = 0;"
expect_eq "before the freeze: lookups work" "$(route_of which.test)" \
    "OK smtp:"
kill -STOP "$A_PID"
start=$(date +%s%N)
got1=$(rcpt_answer which.test)
mid=$(date +%s%N)
got2=$(rcpt_answer other.test)
end=$(date +%s%N)
got3=$(temp_of third.test)
kill -CONT "$A_PID"
expect_eq "frozen Redis: the recipient gets 451" "$got1" "$T451"
expect_eq "frozen Redis: the next lookup gets 451 too" "$got2" "$T451"
expect_eq "frozen Redis: the transport map answers TEMP" "$got3" TEMP
echo "     (answered after $(((mid - start) / 1000000)) ms and" \
    "$(((end - mid) / 1000000)) ms with timeout_ms = 300)"
expect_grep "frozen Redis is logged as a timeout" "$WORK/mxswitch.log" \
    'unreachable: .*timed out after 300 ms'
poll_for "OK smtp:" 50 route_of which.test
expect_eq "after SIGCONT: lookups work again" "$GOT" "OK smtp:"
expect_eq "after SIGCONT: the milter accepts again" \
    "$(rcpt_answer which.test)" continue
stop_mxswitch "frozen Redis: clean exit"

# --- Stale answers: ttl 1 s, stale_ttl 60 s.  Redis stops; past the ttl
# the cached answer still serves (logged), an uncached domain gets 451.
redis-cli -p "$PA" SET mxswitch:domain:stale.test remote >/dev/null
w=$(watches)
run_with stale "host = \"127.0.0.1\"; port = $PA;" "ttl = 1; stale_ttl = 60;"
await_watch "$w" || fail "stale: the change watcher subscribes" "-"
expect_eq "stale: answer while Redis is up" "$(route_of stale.test)" \
    "OK smtp:"
expect_eq "stale: an absent key while Redis is up" "$(route_of absent.test)" \
    NOTFOUND
stop_pid "$A_PID"
sleep 1.2 # past cache.ttl
expect_eq "stale: Redis down past ttl: the cached answer serves" \
    "$(route_of stale.test)" "OK smtp:"
expect_eq "stale: and the milter accepts it" "$(rcpt_answer stale.test)" \
    continue
expect_eq "stale: a cached absent key serves too" "$(route_of absent.test)" \
    NOTFOUND
expect_eq "stale: a domain never cached gets 451" "$(rcpt_answer never.test)" \
    "$T451"
expect_eq "stale: and TEMP from the transport map" "$(temp_of never2.test)" \
    TEMP
expect_grep "stale: the decision is logged as stale" "$WORK/mxswitch.log" \
    'rcpt=<u@stale\.test> domain=stale\.test mode=remote source=stale .*action=remote '
expect_eq "stale: one warning for the outage, not one per lookup" \
    "$(grep -c 'using cached answers up to cache.stale_ttl' "$WORK/mxswitch.log")" 1
stop_mxswitch "stale: clean exit"

# Beyond stale_ttl, on_error applies again.
start_a "redis A restarts"
redis-cli -p "$PA" SET mxswitch:domain:stale.test remote >/dev/null
run_on_a stale1 "ttl = 1; stale_ttl = 1;"
expect_eq "stale 1 s: answer while Redis is up" "$(route_of stale.test)" \
    "OK smtp:"
stop_pid "$A_PID"
sleep 2.2 # past cache.ttl + cache.stale_ttl
expect_eq "beyond stale_ttl: on_error (TEMP) applies to the transport map" \
    "$(temp_of stale.test)" TEMP
expect_eq "beyond stale_ttl: on_error (451) applies to the milter" \
    "$(rcpt_answer stale.test)" "$T451"
stop_mxswitch "beyond stale_ttl: clean exit"

# --- Redis restarted without its data: it answers, but holds no key.  A
# domain last known as remote must not turn into "no key" (the MTA would
# deliver it here): the last known modes stay, with a warning, until a key
# comes back (its keyspace event) or cache.stale_ttl ends.
start_a "redis A restarts (empty)"
redis-cli -p "$PA" SET mxswitch:domain:moved.test remote >/dev/null
redis-cli -p "$PA" SET mxswitch:domain:other.test remote >/dev/null
run_on_a empty "ttl = 1; stale_ttl = 60;"
expect_eq "empty: remote while Redis holds the keys" \
    "$(route_of moved.test)/$(route_of other.test)" "OK smtp:/OK smtp:"
stop_pid "$A_PID"
w=$(watches)
start_a "redis A restarts (empty)"
await_watch "$w" || fail "empty: the watcher subscribes to the empty Redis" "-"
sleep 1.2 # past cache.ttl: every answer must come from Redis again
expect_grep "empty: the empty database is noticed and said" \
    "$WORK/mxswitch.log" 'redis: the database is empty, though it held keys before'
expect_eq "empty: a domain last known as remote stays remote, not no key" \
    "$(route_of moved.test)" "OK smtp:"
expect_eq "empty: and the milter still decides it remote" \
    "$(rcpt_answer moved.test)" continue
expect_grep "empty: the decision says stale" "$WORK/mxswitch.log" \
    'rcpt=<u@moved\.test> domain=moved\.test mode=remote source=stale .*action=remote '
expect_eq "empty: a domain never known has no key, as Redis says" \
    "$(route_of unknown.test)" NOTFOUND
redis-cli -p "$PA" SET mxswitch:domain:moved.test local >/dev/null
poll_for "OK virtual:" 25 route_of moved.test
expect_eq "empty: a key that comes back applies at once" "$GOT" "OK virtual:"
expect_grep "empty: and the database is no longer taken as empty" \
    "$WORK/mxswitch.log" 'the database is no longer taken as empty'
expect_eq "empty: then a key Redis lacks is no key again" \
    "$(route_of other.test)" NOTFOUND
stop_mxswitch "empty: clean exit"

# --- The same on a fresh install: mxswitch starts on an empty Redis and
# the keys are set afterwards.  Keys it saw since (their keyspace events;
# with notifications off, the lookups that found them) are keys the
# database held: a restart without the data must be noticed all the same.
# empty_late NAME NOTIFY - the scenario, Redis's notify-keyspace-events
empty_late() {
    local warned
    stop_pid "$A_PID"
    start_redis "$PA" --notify-keyspace-events "$2" ||
        { fail "$1: redis A restarts" "-"; return; }
    A_PID=$REDIS_PID
    run_on_a "$1" "ttl = 1; stale_ttl = 60;"
    expect_eq "$1: no key at first" "$(route_of late.test)" NOTFOUND
    redis-cli -p "$PA" SET mxswitch:domain:late.test remote >/dev/null
    poll_for "OK smtp:" 15 route_of late.test # past cache.ttl at most
    expect_eq "$1: remote once its key is set" "$GOT" "OK smtp:"
    warned=$(grep -c 'the database is empty, though' "$WORK/mxswitch.log")
    stop_pid "$A_PID"
    w=$(watches)
    start_redis "$PA" --notify-keyspace-events "$2" ||
        { fail "$1: redis A restarts (empty)" "-"; return; }
    A_PID=$REDIS_PID
    await_watch "$w" || fail "$1: the watcher subscribes to the empty Redis" "-"
    sleep 1.2 # past cache.ttl
    expect_eq "$1: the empty database is noticed and said" \
        "$(grep -c 'the database is empty, though' "$WORK/mxswitch.log")" \
        $((warned + 1))
    expect_eq "$1: the domain set after the start stays remote" \
        "$(route_of late.test)" "OK smtp:"
    stop_mxswitch "$1: clean exit"
}
empty_late "empty, keys set later" KA
empty_late "empty, keys set later, notifications off" ""

# --- The pool back before the watcher.  After an outage both reconnect
# on their own, backing off up to 2 s.  Redis comes back empty while the
# watcher naps its 2 s: the lookups' first connection gets there first,
# and a nil answer from it must not be taken as no key either (nor
# overwrite the cached mode, which would be no key once the watcher
# sees the empty database).
stop_pid "$A_PID"
start_a "race: redis A restarts"
redis-cli -p "$PA" SET mxswitch:domain:race.test remote >/dev/null
run_on_a race "ttl = 1; stale_ttl = 60;"
expect_eq "race: remote while Redis holds the key" "$(route_of race.test)" \
    "OK smtp:"
warned=$(grep -c 'the database is empty, though' "$WORK/mxswitch.log")
lost=$(grep -c 'change watcher' "$WORK/mxswitch.log")
stop_pid "$A_PID"
# The watcher's 6th failure since the loss: it naps 2 s now (100 ms, then
# doubling; -v logs each failure).
for ((i = 0; i < 200; i++)); do
    (($(grep -c 'change watcher' "$WORK/mxswitch.log") >= lost + 6)) && break
    sleep 0.05
done
start_a "race: redis A restarts (empty)"
answers=""
for ((i = 0; i < 15; i++)); do # at once, then past the watcher's return
    answers="$answers$(route_of race.test)/"
    sleep 0.2
done
expect_eq "race: the domain stays remote from the first answer on" \
    "$answers" "$(printf 'OK smtp:/%.0s' {1..15})"
expect_eq "race: the empty database is noticed and said" \
    "$(grep -c 'the database is empty, though' "$WORK/mxswitch.log")" \
    $((warned + 1))
stop_mxswitch "race: clean exit"
finish
