#!/bin/bash
# test_faults - fault injection through a real Postfix 3.7, wired by hand
# to mxswitch's socket maps and milter (pf_wire): a stream of messages
# while Redis is killed and restarted, made slow with DEBUG SLEEP, stopped
# for a whole batch, while a domain's mode flips, and while mxswitch is
# killed with SIGKILL and restarted.  Postfix asks the transport map at
# every delivery attempt, so the queue is drained before each flip: the
# mode a recipient was accepted under is then the mode it is delivered
# under.  Afterwards every recipient is accounted for:
#   accepted  (MAIL, RCPT and DATA 2xx) must be delivered exactly once, to
#             the place its mode names: the domain's MX (remote) or its
#             maildir here (local, none), and to the place the transport
#             map's last answer for it named ("OK smtp:", "OK virtual:");
#   refused   must have had a 4xx (never a 5xx) and must not be delivered.
# The mode at acceptance is known twice: from the schedule (modes change
# only between batches, past the cache ttl) and from the milter's log line
# for the recipient; the two must agree.  The counts end up in one line,
# "faults: sent=... lost=0 dup=0".  No timing is asserted: each fault waits
# until its batch has begun (wait_started), and each fault must have cost
# its batch some refusals, or the counts would prove nothing.  One message
# is queued across the Redis outage on purpose (its exchanger down): it
# must be deferred while the transport map answers TEMP, never bounced,
# and delivered once Redis is back.  No recipient ever carries a tag.
T_NAME=test_faults
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

# Messages per batch; valgrind makes every milter step far slower.
BATCH=40
[ -n "$WRAP" ] && BATCH=15

PF_DNS=(
    --host-record=mx.hosting.test,127.0.0.1
    --mx-host=remote.test,mx.remote.test,10
    --host-record=mx.remote.test,127.0.0.21
    --mx-host=flip.test,mx.flip.test,10
    --host-record=mx.flip.test,127.0.0.22
)
pf_net_up || abort "private network and DNS"
pf_sink remote 127.0.0.21 || abort "sink remote"
pf_sink flip 127.0.0.22 || abort "sink flip"

# Redis keeps its keys across a SIGKILL (append-only file, fsync always),
# as a production Redis would; DEBUG SLEEP needs the debug command.
redis_up() {
    start_redis 6379 --appendonly yes --appendfsync always \
        --enable-debug-command yes
}
redis_up || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
rset local.test local
rset remote.test remote
rset flip.test local

# A short cache ttl, so that a Redis outage reaches the recipients.
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { on_error = "tempfail"; };
cache: { ttl = 2; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = local.test remote.test flip.test
CF
for d in local remote flip; do
    echo "@$d.test $d.test/all/" >>"$PF_ETC/vmailbox"
done
# Wired before the start, so no smtpd runs with the old main.cf.
pf_wire "$WORK/mx.conf" 8891 8893 || abort "postfix wiring"
pf_start || abort "postfix starts"
SMAP=127.0.0.1:8893
expect_eq "the transport map routes each domain by its mode" \
    "$(smap_ask transport x@local.test x@remote.test x@flip.test | tr '\n' '|')" \
    "OK virtual:|OK smtp:|OK virtual:|"

# send_batch PHASE - BATCH messages, each to 1-3 unique recipients, and in
# a fault's batch on until the fault is over (the file $WORK/fault-over),
# so that the fault meets mail however fast the batch runs; one line per
# recipient in $WORK/sent: "PHASE ADDRESS CODE", where CODE is the first
# reply that was not 2xx (MAIL, RCPT or DATA), or 250.  The last message
# number goes to $WORK/msg.
MSG=0
send_batch() {
    local i n out code mail data r a
    for ((i = 0; ; i++)); do
        [ "$i" -ge "$BATCH" ] &&
            { [ "$FAULT" = 0 ] || [ -e "$WORK/fault-over" ]; } && break
        MSG=$((MSG + 1))
        local all=("m${MSG}a@local.test" "m${MSG}b@remote.test" "m${MSG}c@flip.test")
        n=$((MSG % 3 + 1))
        out=$(SUBJECT="fault-$MSG" smtp_send sender@client.test "${all[@]:0:n}")
        mail=$(sed -n 's/^MAIL \([0-9]*\).*/\1/p' <<<"$out")
        data=$(sed -n 's/^DATA \([0-9]*\).*/\1/p' <<<"$out")
        for a in "${all[@]:0:n}"; do
            r=$(sed -n "s/^RCPT <$a> \\([0-9]*\\).*/\\1/p" <<<"$out")
            code=${mail:-${r:-none}}
            [ "$code" = 250 ] && code=${data:-none}
            echo "$1 $a $code"
        done
    done >>"$WORK/sent"
    echo "$MSG" >"$WORK/msg"
}
FAULT=0

# crash PID - SIGKILL a process of ours and reap it, without the shell's
# "Killed" notice
crash() {
    { kill -KILL "$1" && wait "$1"; } 2>/dev/null
    untrack "$1"
}

# in_background PHASE - start a batch in the background; BG is its pid
in_background() {
    rm -f "$WORK/fault-over"
    FAULT=1 send_batch "$1" &
    BG=$!
    track "$BG"
}
# wait_started PHASE - until PHASE has sent its first two messages, so the
# fault that follows lands inside its batch whatever the machine's speed
wait_started() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(grep -c "^$1 " "$WORK/sent")" -ge 3 ] && return 0
        sleep 0.1
    done
    abort "batch $1 did not start"
}
await_batch() {
    wait "$BG"
    untrack "$BG"
    MSG=$(cat "$WORK/msg")
}
: >"$WORK/sent"

# 1: normal operation.
send_batch normal
# 2: Redis killed (SIGKILL) in the middle of a batch, restarted 3 s later
# (past the cache ttl, so lookups meet the outage).
in_background redis-killed
wait_started redis-killed
crash "$REDIS_PID"
sleep 3
redis_up || abort "redis restarts"
touch "$WORK/fault-over"
await_batch
# 3: Redis slower than redis.timeout_ms (DEBUG SLEEP) twice in a batch.
in_background redis-slow
wait_started redis-slow
for s in 1 2; do
    redis-cli -p 6379 DEBUG SLEEP 3 >/dev/null
    sleep 1
done
touch "$WORK/fault-over"
await_batch
# drain WHAT - deliver all that is queued before WHAT (a flip): Postfix
# asks at delivery, so mail still queued would follow the new mode
drain() {
    pf_flush
    pf_wait_queue 60 || fail "the queue drains before $1" "mail left in $PF_SPOOL"
}
# 4: the flip domain goes remote between two batches.
drain "the flip to remote"
rset flip.test remote
sleep 3 # the cache ttl: no decision from before the flip is left
send_batch flipped-remote
# 5: mxswitch killed (SIGKILL) in a batch and restarted 2 s later.
in_background mxswitch-killed
wait_started mxswitch-killed
crash "$MX_PID"
sleep 2
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts"
touch "$WORK/fault-over"
await_batch
# 6: Redis down for a whole batch.  One message to flip.test (remote) is
# queued across the outage: its exchanger is stopped first, so it is still
# in the queue when Redis goes, and its retries meet the TEMP answer.  It
# has two recipients: Postfix's queue manager keeps the last address it
# resolved for 30 s (docs/design.md), so with one recipient every retry
# within 30 s would reuse the answer from before the outage.
stop_sink() {
    local v="SINK_PID_$1"
    kill "${!v}"
    wait "${!v}" 2>/dev/null
    untrack "${!v}"
}
# deferrals RCPT-REGEX REASON-REGEX - how many times Postfix deferred RCPT
deferrals() { grep -cE "to=<$1>.*status=deferred \($2" "$WORK/pf/maillog"; }
stop_sink flip
MSG=$((MSG + 1))
Q="m${MSG}[cd]@flip\.test"
out=$(SUBJECT="fault-$MSG" smtp_send sender@client.test "m${MSG}c@flip.test" \
    "m${MSG}d@flip.test")
for a in "m${MSG}c@flip.test" "m${MSG}d@flip.test"; do
    echo "queued $a $(sed -n 's/^DATA \([0-9]*\).*/\1/p' <<<"$out")"
done >>"$WORK/sent"
expect_eq "a message for the stopped exchanger is accepted" \
    "$(tr '\n' ' ' <<<"$out")" \
    "RCPT <m${MSG}c@flip.test> 250 RCPT <m${MSG}d@flip.test> 250 DATA 250 "
q_refused() {
    [ "$(deferrals "$Q" 'connect to')" -ge 2 ] && echo yes
}
poll_for yes 100 q_refused
expect_eq "and both recipients are deferred while the exchanger is down" "$GOT" yes
crash "$REDIS_PID"
sleep 3 # past the cache ttl
send_batch redis-down
q_tempfail() {
    pf_flush
    [ "$(deferrals "$Q" 'address resolver failure')" -ge 1 ] && echo yes
}
poll_for yes 100 q_tempfail
expect_eq "while Redis is down the queued message is deferred for the failed lookup" \
    "$GOT" yes
expect_eq "and neither bounced nor delivered meanwhile" \
    "$(grep -cE "to=<$Q>.*status=(bounced|sent)" "$WORK/pf/maillog")" 0
pf_sink flip 127.0.0.22 || abort "sink flip (back)"
redis_up || abort "redis restarts"
# 7: flip back to local, normal operation again.
drain "the flip back to local"
rset flip.test local
sleep 3
send_batch flipped-local

pf_flush
pf_wait_queue 120 || fail "the queue drains" "mail left in $PF_SPOOL"

# Where each accepted recipient went: maildir (Delivered-To) or MX sink
# (X-Rcpt-Args), one line per delivered copy.
grep -rh '^Delivered-To: ' "$PF_MAIL" | sed 's/^Delivered-To: //' |
    sed 's/$/ local/' >"$WORK/delivered"
cat "$WORK"/sink/*/* 2>/dev/null | sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1 remote/p' \
    >>"$WORK/delivered"
# The mode the milter logged for each recipient at RCPT.
sed -n 's/.* rcpt=<\([^>]*\)> domain=[^ ]* mode=\([a-z]*\) .*/\1 \2/p' \
    "$WORK/mxswitch.log" >"$WORK/modes"
# The transport map's OK answers for each address, in the order given: the
# last one is what Postfix followed when it delivered.
sed -n -e 's/.* socketmap: transport \([^ ]*\) -> OK smtp: .*/\1 remote/p' \
    -e 's/.* socketmap: transport \([^ ]*\) -> OK virtual: .*/\1 local/p' \
    "$WORK/mxswitch.log" >"$WORK/transports"

awk -v out="$WORK/problems" '
    FILENAME ~ /modes$/ { mode[$1] = $2; next }
    FILENAME ~ /transports$/ { route[$1] = $2; next }
    FILENAME ~ /delivered$/ { copies[$1]++; place[$1] = $2; next }
    {
        sent++
        if ($3 ~ /^2/) {
            acc++
            want = mode[$2] == "remote" ? "remote" : "local"
            # the mode the schedule gave the domain when it was accepted
            sched = $2 ~ /@remote/ || ($2 ~ /@flip/ && $1 ~ \
                /^(flipped-remote|mxswitch-killed|queued|redis-down)$/) ? \
                "remote" : "local"
            if (mode[$2] != sched) {
                stale++; print "decided " mode[$2] ", not " sched ":", $0 >out
            }
            if (!($2 in mode)) { nolog++; print "no milter decision:", $0 >out }
            if (copies[$2] == 0) { lost++; print "lost:", $0 >out }
            else if (copies[$2] > 1) { dup++; print "duplicated:", $0 >out }
            else if (place[$2] != want) {
                mis++; print "misrouted to " place[$2] ":", $0 >out
            } else ok++
            if (copies[$2] > 0 && !($2 in route)) {
                tnone++; print "no transport answer:", $0 >out
            } else if (copies[$2] > 0 && route[$2] != place[$2]) {
                tmis++; print "delivered " place[$2] ", transport said " \
                    route[$2] ":", $0 >out
            }
        } else if ($3 ~ /^4/) {
            ref4++
            if (copies[$2] > 0) { refdel++; print "refused but delivered:", $0 >out }
        } else { other++; print "not 2xx or 4xx:", $0 >out }
    }
    END {
        printf "faults: sent=%d accepted=%d refused_4xx=%d delivered_ok=%d " \
            "misrouted=%d lost=%d dup=%d refused_delivered=%d other=%d " \
            "nolog=%d stale_mode=%d transport_none=%d transport_other=%d\n",
            sent, acc, ref4, ok, mis, lost, dup, refdel, other, nolog, stale,
            tnone, tmis
    }' "$WORK/modes" "$WORK/transports" "$WORK/delivered" "$WORK/sent" \
    >"$WORK/counts"
cat "$WORK/counts"
for p in normal redis-killed redis-slow flipped-remote mxswitch-killed queued \
    redis-down flipped-local; do
    awk -v p="$p" '$1 == p { n++; if ($3 ~ /^2/) a++; else r++ }
        END { printf "  %-16s recipients=%d accepted=%d refused=%d\n", p, n, a, r }' \
        "$WORK/sent"
done
echo "  refusals by code: $(awk '$3 !~ /^2/ { print $3 }' "$WORK/sent" |
    sort | uniq -c | awk '{ printf "%s%s x%s", n++ ? ", " : "", $2, $1 }')"
head -n 20 "$WORK/problems" 2>/dev/null | sed 's/^/    | /'

count() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$WORK/counts"; }
expect_eq "every accepted recipient delivered once, where its mode said" \
    "$(count delivered_ok)" "$(count accepted)"
expect_eq "no accepted recipient lost, duplicated or misrouted" \
    "$(count lost)/$(count dup)/$(count misrouted)" 0/0/0
expect_eq "every refused recipient got a 4xx and was not delivered" \
    "$(count other)/$(count refused_delivered)" 0/0
expect_eq "each sent recipient was accepted or refused" \
    "$(($(count accepted) + $(count refused_4xx)))" "$(count sent)"
expect_eq "each accepted recipient was decided by its mode at that time" \
    "$(count nolog)/$(count stale_mode)" 0/0
expect_eq "each delivered recipient went where the transport map last said" \
    "$(count transport_none)/$(count transport_other)" 0/0
expect_eq "nothing bounced: no bounce, no non-delivery notice in the maillog" \
    "$(grep -c -e 'status=bounced' -e 'sender non-delivery notification' \
        "$WORK/pf/maillog")" 0
expect_eq "no tag of the old design in the exchangers, maildirs or maillog" \
    "$(pf_tagged_files)" ""
expect_eq "the flip was seen: flip.test reached its MX while it was remote" \
    "$(grep -c '^m[0-9]*c@flip.test remote$' "$WORK/delivered" | sed 's/^[1-9][0-9]*$/some/')" \
    some
# The faults must have bitten, or the counts prove nothing.
for p in redis-killed redis-slow mxswitch-killed redis-down; do
    expect_eq "the fault of batch $p refused some recipients" \
        "$(awk -v p="$p" '$1 == p && $3 ~ /^4/' "$WORK/sent" | wc -l |
            sed 's/^[1-9][0-9]*$/some/')" some
done
for p in normal flipped-remote flipped-local; do
    expect_eq "batch $p, with no fault, refused nothing" \
        "$(awk -v p="$p" '$1 == p && $3 !~ /^2/' "$WORK/sent" | wc -l)" 0
done
expect_grep "mxswitch logged Redis going away" "$WORK/mxswitch.log" \
    'redis: .* unreachable: .*lookups fail until it is back'
expect_grep "and coming back" "$WORK/mxswitch.log" 'redis: .* is reachable again'
echo "  deferrals: $(grep -c 'status=deferred' "$WORK/pf/maillog")," \
    "$(grep -c 'status=deferred (address resolver failure' "$WORK/pf/maillog")" \
    "for a failed transport lookup"
pf_stop
stop_mxswitch "mxswitch exits cleanly after the faults"
finish
