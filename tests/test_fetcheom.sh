#!/bin/bash
# test_fetcheom - redis.fetch_at = "eom" through the milter protocol
# (tests/mtc) against a real redis-server: what the cache cannot answer
# is asked at the end of the message, every recipient's MGET in one round
# trip; RCPT never waits for Redis; a lookup that fails there answers the
# whole message 451 (or routing.default), and in dry run nothing.  With
# Redis known to be failing, RCPT answers 451 itself, as with "rcpt".
T_NAME=test_fetcheom
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
LOG="$WORK/mxswitch.log"
PROM="$WORK/mxswitch.prom"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# write_conf FILE ROUTING-EXTRA [DEFAULT] - this test's config, misses
# fetched at eom
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300;
         fetch_at = "eom"; };
routing: { prefix = "mxswitch:domain:"; default = "${3:-none}";
           address_prefix = "mxswitch:address:"; $2 };
cache: { ttl = 3600; max_entries = 1000; };
stats: { prometheus_file = "$PROM"; interval = 1; };
CONF
}
write_conf "$WORK/mx.conf" 'on_error = "tempfail";'

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET mxswitch:domain:example.com remote
rcli SET mxswitch:domain:bad.test remotely
rcli SET mxswitch:domain:r2.test remote
rcli SET mxswitch:domain:r3.test remote
rcli SET mxswitch:domain:r4.test remote
rcli SET mxswitch:address:ceo@local.test remote

start_mxswitch "$WORK/mx.conf" "$MPORT" ||
    { fail "mxswitch starts" "-"; finish; exit; }

# mgets - MGETs Redis has served
mgets() {
    redis-cli -p "$RPORT" INFO commandstats |
        sed -n 's/^cmdstat_mget:calls=\([0-9]*\),.*/\1/p'
}
# settled NAME N - wait until the Prometheus file shows N for NAME
settled() { poll_for "$2" 50 prom "$1"; }

poll_for 1 50 prom mxswitch_redis_round_trips_total # the PING at start
m0=$(mgets)
check_mt "misses are decided at eom: rewrites as at RCPT" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
rcpt <al@local.test>
rcpt <cy@sub.example.com>
rcpt <di@nokey.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
rcpt <al@local.test>: continue
rcpt <cy@sub.example.com>: continue
rcpt <di@nokey.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
delrcpt <cy@sub.example.com>
addrcpt_par <cy+mx-remote@sub.example.com> ORCPT=rfc822;cy@sub.example.com
eom: continue
EOF
settled mxswitch_redis_round_trips_total 2
expect_eq "four misses: one round trip at eom (after the PING at start)" \
    "$GOT" 2
expect_eq "one MGET per recipient, whatever the subdomain depth" \
    "$(($(mgets) - m0))" 4
expect_grep "the decision is logged as at RCPT" "$LOG" \
    "rcpt=<cy@sub.example.com> domain=sub.example.com mode=remote source=redis key=mxswitch:domain:example.com action=rewrite"

m0=$(mgets)
check_mt "hits are decided at RCPT from the cache, with no command" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
rcpt <al@local.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
rcpt <al@local.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
eom: continue
EOF
expect_eq "cache hits: no MGET" "$(($(mgets) - m0))" 0

check_mt "an address key is asked at eom; its cached domain decides without" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <ceo@local.test>
rcpt <eve@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <ceo@local.test>: continue
rcpt <eve@remote.test>: continue
delrcpt <ceo@local.test>
addrcpt_par <ceo+mx-remote@local.test> ORCPT=rfc822;ceo@local.test
delrcpt <eve@remote.test>
addrcpt_par <eve+mx-remote@remote.test> ORCPT=rfc822;eve@remote.test
eom: continue
EOF
expect_grep "the address key decided, from Redis" "$LOG" \
    "rcpt=<ceo@local.test> domain=local.test mode=remote source=redis key=mxswitch:address:ceo@local.test action=rewrite"
expect_grep "no address key: the cached domain decided" "$LOG" \
    "rcpt=<eve@remote.test> domain=remote.test mode=remote source=cache key=mxswitch:domain:remote.test action=rewrite"

check_mt "an invalid value fails the whole message at eom" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
rcpt <x@bad.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
rcpt <x@bad.test>: continue
eom: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
EOF
expect_grep "the invalid value is logged, with the message's 451" "$LOG" \
    'rcpt=<x@bad.test> domain=bad.test: lookup failed \(invalid value "remotely" in key mxswitch:domain:bad.test\): answered 451 4.3.0 to the message'

# Redis stopped (SIGSTOP): its socket still takes the command, no answer
# comes.  RCPT does not wait for it; eom does, up to timeout_ms.
kill -STOP "$REDIS_PID"
got=$(printf '%s\n' 'connect c 127.0.0.1' 'mail <s@c.test>' \
    'rcpt <u@r2.test>' 'rcpt <bob@remote.test>' 'eom' | mtc_run)
expect_eq "redis hung: RCPT answered at once, eom 451 for the message" \
    "$(printf '%s\n' "$got" | sed -n 's/^\(rcpt [^:]*\|eom\): //p' | tr '\n' '|')" \
    "continue|continue|reply 451 4.3.0 Mail routing temporarily unavailable, try again later|"
expect_eq "redis hung: no change was sent before the 451" \
    "$(printf '%s\n' "$got" | grep -c '^delrcpt\|^addrcpt')" 0
expect_grep "redis hung: the timeout is logged for the recipient" "$LOG" \
    "rcpt=<u@r2.test> domain=r2.test: lookup failed \\(Redis 127.0.0.1:$RPORT: timed out after 300 ms\\): answered 451 4.3.0 to the message"
expect_eq "redis known to fail: RCPT answers 451 itself" \
    "$(rcpt_answer r3.test)" "$T451"
kill -CONT "$REDIS_PID"
poll_for "continue <u+mx-remote@r3.test>" 50 rcpt_answer r3.test
expect_eq "redis back: lookups route again" "$GOT" \
    "continue <u+mx-remote@r3.test>"
stop_mxswitch "mxswitch exits cleanly on SIGTERM"

# on_error = default: the failed lookup at eom routes by routing.default.
write_conf "$WORK/mx2.conf" 'on_error = "default";' remote
start_mxswitch "$WORK/mx2.conf" "$MPORT" ||
    { fail "mxswitch (on_error default) starts" "-"; finish; exit; }
check_mt "on_error default: an invalid value at eom routes by the default" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <x@bad.test>
eom
==>
connect: continue
mail: continue
rcpt <x@bad.test>: continue
delrcpt <x@bad.test>
addrcpt_par <x+mx-remote@bad.test> ORCPT=rfc822;x@bad.test
eom: continue
EOF
expect_grep "on_error default at eom is logged" "$LOG" \
    'rcpt=<x@bad.test> domain=bad.test: lookup failed \(invalid value "remotely" in key mxswitch:domain:bad.test\): using routing.default remote'
stop_mxswitch "mxswitch (on_error default) exits cleanly"

# dry run: the message goes on unchanged, and the log says what it would do.
write_conf "$WORK/mx3.conf" 'on_error = "tempfail"; dry_run = true;'
start_mxswitch "$WORK/mx3.conf" "$MPORT" ||
    { fail "mxswitch (dry run) starts" "-"; finish; exit; }
check_mt "dry run: a failed lookup at eom answers nothing" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <x@bad.test>
rcpt <u@r4.test>
eom
==>
connect: continue
mail: continue
rcpt <x@bad.test>: continue
rcpt <u@r4.test>: continue
eom: continue
EOF
expect_grep "dry run: the 451 it would give is logged" "$LOG" \
    'rcpt=<x@bad.test> domain=bad.test: lookup failed \(invalid value "remotely" in key mxswitch:domain:bad.test\): dry_run would=451 4.3.0 to the message'
expect_grep "dry run: the other recipient is decided" "$LOG" \
    "rcpt=<u@r4.test> domain=r4.test mode=remote source=redis key=mxswitch:domain:r4.test action=rewrite dry_run"
stop_mxswitch "mxswitch (dry run) exits cleanly"
finish
