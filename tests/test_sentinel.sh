#!/bin/bash
# test_sentinel - redis.sentinel against real redis-server and redis-sentinel
# processes: a master, a replica and three Sentinels (quorum 2), all with
# passwords.  Reads from the replica with prefer_replica; then a stream of
# lookups while the master is killed (kill -9): every answer of the
# transport socket map must be right or TEMP, and lookups must resume against the promoted replica without a
# restart, the first Sentinel of the list being down.  Prints the failover
# figures.
T_NAME=test_sentinel
. "$(dirname "$0")/lib.sh"

PW=data-pw-3
SPW=sent-pw-8
free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
free_port SMAP_PORT
# The instance's transports, as the setup script would write them.
transports "$WORK"
free_port P1
free_port P2
free_port S1
free_port S2
free_port S3

start_redis "$P1" --requirepass "$PW" --masterauth "$PW" ||
    { fail "master starts" "-"; finish; exit; }
PID1=$REDIS_PID
start_redis "$P2" --requirepass "$PW" --masterauth "$PW" \
    --replicaof 127.0.0.1 "$P1" ||
    { fail "replica starts" "-"; finish; exit; }
PID2=$REDIS_PID
rcli() {
    local port=$1
    shift
    redis-cli -p "$port" -a "$PW" --no-auth-warning "$@"
}
scli() {
    local port=$1
    shift
    redis-cli -p "$port" -a "$SPW" --no-auth-warning "$@"
}

for s in "$S1" "$S2" "$S3"; do
    cat >"$WORK/sentinel-$s.conf" <<CONF
port $s
bind 127.0.0.1
dir $WORK
logfile $WORK/sentinel-$s.log
requirepass $SPW
sentinel sentinel-pass $SPW
sentinel monitor mymaster 127.0.0.1 $P1 2
sentinel auth-pass mymaster $PW
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 4000
sentinel parallel-syncs mymaster 1
CONF
    redis-server "$WORK/sentinel-$s.conf" --sentinel &
    track $!
    echo $! >"$WORK/sentinel-$s.pid"
    [ "$s" = "$S1" ] && S1_PID=$!
done

# sentinels_ready - every Sentinel knows the two others, names the same
# master, and sees the other server as a replica up and in sync; sets M
# and R (master and replica port) and M_PID.  A loaded machine can make the
# Sentinels fail over on their own, so every phase asks them first.
sentinels_ready() {
    local s n m
    M=$(scli "$S2" SENTINEL get-master-addr-by-name mymaster 2>/dev/null |
        tail -n 1)
    [ -n "$M" ] || { echo no; return; }
    if [ "$M" = "$P1" ]; then R=$P2 M_PID=$PID1; else R=$P1 M_PID=$PID2; fi
    for s in "$S1" "$S2" "$S3"; do
        kill -0 "$(cat "$WORK/sentinel-$s.pid" 2>/dev/null)" 2>/dev/null ||
            continue # the Sentinel stopped by the test
        m=$(scli "$s" SENTINEL get-master-addr-by-name mymaster 2>/dev/null |
            tail -n 1)
        [ "$m" = "$M" ] || { echo no; return; }
        n=$(scli "$s" SENTINEL replicas mymaster 2>/dev/null |
            tr '\n' ' ' | grep -c "port $R .*flags slave .*master-link-status ok")
        [ "$n" -ge 1 ] || { echo no; return; }
        n=$(scli "$s" SENTINEL sentinels mymaster 2>/dev/null | grep -c '^name$')
        [ "$n" -ge 2 ] || { echo no; return; }
    done
    echo yes
}
# settle - wait until the Sentinels agree; M, R and M_PID set here (the
# poll runs sentinels_ready in a subshell)
settle() {
    poll_for yes 150 sentinels_ready
    sentinels_ready >/dev/null
}
settle
expect_eq "three Sentinels see the master, the replica and each other" \
    "$GOT" yes

# Twenty domains: even ones remote, odd ones local.
for ((i = 0; i < 20; i++)); do
    if ((i % 2 == 0)); then v=remote; else v=local; fi
    rcli "$M" SET "mxswitch:domain:d$i.test" "$v" >/dev/null
done
poll_for 1 50 rcli "$R" EXISTS mxswitch:domain:d19.test
expect_eq "the replica has the keys" "$GOT" 1

# want N - the transport map's right answer for domain dN.test
want() {
    if (($1 % 2 == 0)); then echo "OK smtp:"; else echo "OK virtual:"; fi
}

# run_with NAME SENTINEL-EXTRA [CACHE] - mxswitch with the Sentinels; cache
# off by default so that every lookup asks Redis
run_with() {
    cat >"$WORK/$1.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
redis: {
    password = "$PW";
    timeout_ms = 300;
    sentinel: {
        master = "mymaster";
        servers = ( "127.0.0.1:$S1", "127.0.0.1:$S2", "127.0.0.1:$S3" );
        password = "$SPW";
        $2
    };
};
cache: { ${3:-ttl = 0;} };
CONF
    start_mxswitch "$WORK/$1.conf" "$MPORT"
}

# mget_calls PORT - how many MGETs the server on PORT has answered
mget_calls() {
    rcli "$1" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_mget:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}

# prefer_replica: the reads go to the replica, not the master.
settle
rcli "$M" CONFIG RESETSTAT >/dev/null
rcli "$R" CONFIG RESETSTAT >/dev/null
run_with replica "prefer_replica = true;" "ttl = 3600;"
ok=0
for ((i = 0; i < 10; i++)); do
    [ "$(route_of "d$i.test")" = "$(want "$i")" ] && ok=$((ok + 1))
done
expect_eq "prefer_replica: answers are right" "$ok" 10
expect_eq "prefer_replica: the replica answered the MGETs" \
    "$(mget_calls "$R")" 10
expect_eq "prefer_replica: the master answered none" "$(mget_calls "$M")" 0
rcli "$M" SET mxswitch:domain:d0.test local >/dev/null
poll_for "OK virtual:" 50 route_of d0.test
expect_eq "prefer_replica: the watcher on the replica sees a change" "$GOT" \
    "OK virtual:"
rcli "$M" SET mxswitch:domain:d0.test remote >/dev/null
poll_for "$(want 0)" 50 route_of d0.test
expect_eq "prefer_replica: and the change back" "$GOT" "$(want 0)"
expect_grep "prefer_replica: the log names the replica" "$WORK/mxswitch.log" \
    "redis: using 127\.0\.0\.1:$R \(replica of mymaster\)"
expect_eq "the Sentinel password never reaches the log" \
    "$(grep -c -e "$SPW" -e "$PW" "$WORK/mxswitch.log")" 0
stop_mxswitch "prefer_replica: clean exit"

# A wrong Sentinel password: 451, a clear log line, no password in it.
SPW_SAVED=$SPW
SPW=wrong-sent-pw-4
run_with badpw ""
SPW=$SPW_SAVED
expect_eq "wrong Sentinel password: 451" "$(rcpt_answer d0.test)" \
    "$T451"
expect_eq "wrong Sentinel password: TEMP from the transport map" \
    "$(route_of d1.test | cut -d' ' -f1)" TEMP
expect_grep "wrong Sentinel password: logged" "$WORK/mxswitch.log" \
    "sentinel 127\.0\.0\.1:$S3: AUTH refused: WRONGPASS"
expect_eq "wrong Sentinel password: not in the log" \
    "$(grep -c wrong-sent-pw-4 "$WORK/mxswitch.log")" 0
stop_mxswitch "wrong Sentinel password: clean exit"

# Failover under load, with the first Sentinel of the list down.
kill -TERM "$S1_PID"
wait "$S1_PID" 2>/dev/null
untrack "$S1_PID"
settle
run_with master ""
expect_eq "master: lookups work" "$(route_of d0.test)" "$(want 0)"
expect_grep "master: the log names the master" "$WORK/mxswitch.log" \
    "redis: using 127\.0\.0\.1:$M \(master of mymaster\)"

# A stream of lookups, one socket map connection each, as Postfix's
# trivial-rewrite would ask: "ns index answer" a line.
(
    i=0
    while [ ! -e "$WORK/stop" ]; do
        d=$((i % 20))
        echo "$(date +%s%N) $d $(route_of "d$d.test")"
        i=$((i + 1))
    done
) >"$WORK/stream" &
LOOP_PID=$!
track "$LOOP_PID"
sleep 2
kill_ns=$(date +%s%N)
kill -KILL "$M_PID"
{ wait "$M_PID"; } 2>/dev/null
untrack "$M_PID"

# The Sentinels promote the replica: within seconds, but a loaded machine
# can put them in TILT mode for 30 s, so wait up to 90 s.
poll_for "$R" 450 sh -c "redis-cli -p $S2 -a $SPW --no-auth-warning \
    SENTINEL get-master-addr-by-name mymaster | tail -n 1"
expect_eq "the Sentinels promoted the replica" "$GOT" "$R"
promoted_ns=$(date +%s%N)
# Let the stream run on until it has 3 s of answers after the promotion.
for ((i = 0; i < 100; i++)); do
    last=$(tail -n 1 "$WORK/stream" | cut -d' ' -f1)
    [ -n "$last" ] && [ "$last" -gt $((promoted_ns + 3000000000)) ] && break
    sleep 0.1
done
touch "$WORK/stop"
wait "$LOOP_PID"
untrack "$LOOP_PID"

# Every answer is right or TEMP; lookups resumed after the kill.
total=0 right=0 tf=0 wrong=0 last_fail=0 resumed=0
while read -r ns d answer; do
    total=$((total + 1))
    if [ "$answer" = "$(want "$d")" ]; then
        right=$((right + 1))
        if [ "$ns" -gt "$kill_ns" ] && [ "$resumed" = 0 ] &&
            [ "$last_fail" != 0 ]; then
            resumed=$ns
        fi
    elif [ "${answer%% *}" = TEMP ]; then
        tf=$((tf + 1))
        last_fail=$ns
        resumed=0
    else
        wrong=$((wrong + 1))
        echo "     wrong answer for d$d.test: '$answer'"
    fi
done <"$WORK/stream"
expect_eq "no lookup got a wrong answer" "$wrong" 0
if [ "$total" -gt 20 ]; then pass "the stream ran ($total lookups)"; else
    fail "the stream ran" "only $total lookups"
fi
if [ "$resumed" != 0 ]; then pass "lookups resumed after the failover"; else
    fail "lookups resumed after the failover" "last answers: $(tail -n 3 "$WORK/stream")"
fi
after=$(awk -v k="$kill_ns" '$1 > k' "$WORK/stream" | wc -l)
ms() { echo $((($1 - kill_ns) / 1000000)); }
echo "     figures: $total lookups, $after after the kill, $tf answered TEMP," \
    "$wrong wrong; Sentinels promoted the replica $(ms "$promoted_ns") ms" \
    "after the kill; lookups resumed $([ "$resumed" != 0 ] &&
        ms "$resumed") ms after the kill"

expect_grep "the log names the new master" "$WORK/mxswitch.log" \
    "redis: using 127\.0\.0\.1:$R \(master of mymaster\)"
rcli "$R" SET mxswitch:domain:new.test remote >/dev/null
expect_eq "a key set on the new master is honoured" "$(route_of new.test)" \
    "OK smtp:"
expect_grep "the watcher follows the new master" "$WORK/mxswitch.log" \
    "watching .* on 127\.0\.0\.1:$R \(master of mymaster\)"
expect_eq "no password in the log" \
    "$(grep -c -e "$SPW" -e "$PW" "$WORK/mxswitch.log")" 0
stop_mxswitch "after the failover: clean exit"
finish
