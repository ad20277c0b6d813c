#!/bin/bash
# test_ops - running mxswitch: SIGUSR2 counters, the Prometheus file,
# SIGUSR1 reloads (good, broken, across an open session), secrets kept out
# of the log, and SIGTERM stopping it (libmilter's stop: a session in
# progress gets no more answers, the MTA applies its default action).
# The milter changes no recipient: each decision shows in its log line
# ("rcpt=<..> domain=.. mode=.. source=.. key=.. action=..") and, for the
# MTA, in the transport socket map's answer (route_of).
T_NAME=test_ops
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
free_port SMAP_PORT
# The instance's transports, as the setup script would write them.
transports "$WORK"
LOG="$WORK/mxswitch.log"
PROM="$WORK/stats/mxswitch.prom"
mkdir -p "$WORK/stats"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# write_conf PREFIX [ROUTING-EXTRA] [REDIS-EXTRA] - this test's config
write_conf() {
    cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; pid_file = "$WORK/mx.pid"; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; ${3:-} };
routing: { prefix = "$1"; default = "none"; ${2:-} };
cache: { ttl = 3600; };
stats: { prometheus_file = "$PROM"; interval = 1; };
CONF
}

# summary - SIGUSR2, then the new stats line (without the log prefix)
summary() {
    local before i
    before=$(grep -c ' stats: ' "$LOG")
    kill -USR2 "$MX_PID"
    for ((i = 0; i < 50; i++)); do
        [ "$(grep -c ' stats: ' "$LOG")" -gt "$before" ] && break
        sleep 0.1
    done
    grep ' stats: ' "$LOG" | tail -n 1 | sed 's/.* stats: /stats: /'
}

# field NAME - one "name=N" value from a fresh summary line
field() { summary | grep -o " $1=[0-9]*" | head -n 1 | cut -d= -f2; }

# await_sessions N - until N sessions were started (per the counters)
await_sessions() { poll_for "$1" 50 field sessions; }

# reloaded N - until the log says configuration N is in force
reloaded() { poll_for 1 50 grep -c "configuration $1 in force" "$LOG"; }

# decided NAME USER@DOMAIN MODE KEY ACTION - the milter logged this
# decision for the recipient
decided() {
    expect_grep "$1" "$LOG" \
        "rcpt=<$2> domain=${2#*@} mode=$3 source=[a-z]+ key=$4 action=$5 "
}

# moved_remote NAME USER - USER@moved.test is decided remote by the key
# under the alt: prefix, and the milter changes nothing
moved_remote() {
    check_mt "$1: the milter accepts and changes nothing" <<EOF
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <$2@moved.test>
eom
==>
connect: continue
mail: continue
rcpt <$2@moved.test>: continue
eom: continue
EOF
    decided "$1: decided remote by alt:moved.test" "$2@moved.test" remote \
        'alt:moved\.test' remote
}

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET alt:moved.test remote
rcli SET alt:moved2.test remote
write_conf "mxswitch:domain:" "" 'password = "";'

# systemd's side of Type=notify: what mxswitch reports lands in notify.log
"$TESTBIN/notify_sink" "$WORK/notify.sock" "$WORK/notify.log" &
track $!
poll_for yes 50 sh -c "[ -S '$WORK/notify.sock' ] && echo yes" >/dev/null
export NOTIFY_SOCKET="$WORK/notify.sock"
start_mxswitch "$WORK/mx.conf" "$MPORT" ||
    { fail "mxswitch starts" "-"; finish; exit; }
unset NOTIFY_SOCKET
poll_for READY=1 50 cat "$WORK/notify.log" >/dev/null
expect_eq "sd_notify: READY=1 once it listens" "$GOT" READY=1
expect_eq "the pid file holds mxswitch's pid" "$(cat "$WORK/mx.pid" 2>&1)" \
    "$MX_PID"

check_mt "first message: every recipient accepted, none changed" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
rcpt <alice@local.test>
rcpt <carol@unknown.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
rcpt <alice@local.test>: continue
rcpt <carol@unknown.test>: continue
eom: continue
EOF
decided "first message: remote decided remote" bob@remote.test remote \
    'mxswitch:domain:remote\.test' remote
decided "first message: local decided local" alice@local.test local \
    'mxswitch:domain:local\.test' local
decided "first message: unknown decided none" carol@unknown.test none - none

check_mt "second message: cached answer, and a malformed address" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <dave@remote.test>
rcpt <a@b@c.test>
eom
==>
connect: continue
mail: continue
rcpt <dave@remote.test>: continue
rcpt <a@b@c.test>: reply 451 4.1.3 Recipient address not understood by the router
eom: continue
EOF
expect_grep "second message: the cached answer is logged as such" "$LOG" \
    'rcpt=<dave@remote.test> domain=remote.test mode=remote source=cache .*action=remote '

LINE=$(summary)
expect_eq "SIGUSR2 logs the decisions, actions and lookups sent" \
    "$(echo "$LINE" | sed 's/ avg=[0-9.]*ms//')" \
    "stats: decisions none=1 local=1 remote=2 backup=0 (cache=1 redis=3 default=0 stale=0 dns=0); actions none=1 local=1 remote=2 hold=0 temp=0; cache hits=1 misses=3; redis commands=3 errors=0; tempfails 4.3.0=0 4.1.3=1 4.1.2=0 4.4.6=0 other=0; sessions=2; reloads ok=0 failed=0"

# The writer runs every second: wait for a file that has this traffic.
poll_for 2 50 prom 'mxswitch_actions_total{action="remote"}' >/dev/null
expect_eq "Prometheus file counts the remote actions" "$GOT" 2
expect_eq "Prometheus file counts the none, local, hold and temp actions" \
    "$(for a in none local hold temp; do prom "mxswitch_actions_total{action=\"$a\"}"; done | tr '\n' ' ')" \
    "1 1 0 0 "
expect_eq "Prometheus file: decisions by mode and source" \
    "$(prom 'mxswitch_decisions_total{mode="remote",source="redis"}') $(prom 'mxswitch_decisions_total{mode="remote",source="cache"}') $(prom 'mxswitch_decisions_total{mode="none",source="redis"}')" \
    "1 1 1"
expect_eq "Prometheus file: tempfails by code" \
    "$(prom 'mxswitch_tempfails_total{code="4.1.3"}')" 1
expect_eq "Prometheus file: Redis histogram count equals commands" \
    "$(prom mxswitch_redis_latency_seconds_count) $(prom 'mxswitch_redis_latency_seconds_bucket{le="+Inf"}')" \
    "$(prom mxswitch_redis_commands_total) 3"
expect_eq "Prometheus file: lookups one at a time, a round trip each (and the PING at start)" \
    "$(prom mxswitch_redis_round_trips_total)" 4
expect_eq "every sample line of the Prometheus file is well formed" \
    "$(grep -v '^#' "$PROM" | grep -cvE '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$')" 0
expect_eq "every metric has HELP and TYPE" \
    "$(grep -c '^# HELP mxswitch_' "$PROM")" "$(grep -c '^# TYPE mxswitch_' "$PROM")"
expect_eq "the Prometheus file is mode 0644" "$(stat -c %a "$PROM")" 644
INODE=$(stat -c %i "$PROM")
poll_for yes 50 sh -c "[ \$(stat -c %i '$PROM') != $INODE ] && echo yes"
expect_eq "the file is replaced (rename), not rewritten in place" "$GOT" yes
expect_eq "no temporary file is left beside it" "$(ls "$WORK/stats")" \
    mxswitch.prom

# --- SIGUSR1: a session open across the reload keeps its config -------
check_mt "before the reload, moved.test has no key under the old prefix" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <erin@moved.test>
eom
==>
connect: continue
mail: continue
rcpt <erin@moved.test>: continue
eom: continue
EOF
decided "before the reload, moved.test is decided none" erin@moved.test none \
    - none
printf '%s\n' 'connect client.test 127.0.0.1' 'mail <sender@client.test>' \
    'sleep 3000' 'rcpt <frank@moved.test>' 'eom' >"$WORK/old.mt"
"$TESTBIN/mtc" "$MILTER" <"$WORK/old.mt" >"$WORK/old.out" 2>&1 &
OLD=$!
track "$OLD"
await_sessions 4
write_conf "alt:" "" 'password = "hunter2-secret";'
kill -USR1 "$MX_PID"
reloaded 2
expect_eq "SIGUSR1 with a valid file puts configuration 2 in force" "$GOT" 1
expect_grep "the reload is logged as SIGUSR1's" "$LOG" \
    "SIGUSR1: reloading $WORK/mx.conf"
expect_grep "the reload names the changed routing setting" "$LOG" \
    'reload: routing.prefix changed'
expect_grep "a changed Redis password needs a restart, and is named" "$LOG" \
    'reload: redis.password changed: needs a restart'
wait "$OLD"
untrack "$OLD"
expect_eq "the session open across the reload finished with the old prefix" \
    "$(cat "$WORK/old.out")" \
    "connect: continue
mail: continue
rcpt <frank@moved.test>: continue
eom: continue"
decided "and its recipient was decided none, with no key" frank@moved.test \
    none - none
moved_remote "the next session routes with the new prefix" erin
expect_eq "the transport map follows the new prefix too" \
    "$(route_of moved.test)" "OK smtp:"
expect_grep "the key watcher follows the new prefix" "$LOG" \
    'watching __keyspace@0__:alt:\*'

# --- SIGUSR1 with a broken file: rejected, the old config stays --------
cp "$WORK/mx.conf" "$WORK/good.conf"
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; pid_file = "$WORK/mx.pid"; };
redis: { host = "127.0.0.1"; port = $RPORT;
  password = "hunter2-secret" 1; };
routing: { prefix = "mxswitch:domain:"; default = "sideways"; };
CONF
kill -USR1 "$MX_PID"
poll_for 1 50 grep -c 'reload rejected, old configuration kept' "$LOG"
expect_eq "a broken file on SIGUSR1 is rejected and the old config kept" \
    "$GOT" 1
expect_grep "the rejection names file and line" "$LOG" \
    "reload: $WORK/mx.conf:3: "
moved_remote "after the rejected reload, the prefix in force is still alt:" \
    gina
expect_eq "after the rejected reload, the transport map still follows alt:" \
    "$(route_of moved2.test)" "OK smtp:"
expect_eq "the log never shows the Redis password" \
    "$(grep -c hunter2-secret "$LOG")" 0
expect_eq "reloads are counted" "$(field ok) $(field failed)" "1 1"

# --- A Redis failure is counted: errors and the 4.3.0 tempfail ---------
ERRS=$(field errors) T430=$(field 4.3.0) TEMPS=$(field temp)
kill -STOP "$REDIS_PID"
expect_eq "frozen Redis: a fresh domain gets 451" "$(rcpt_answer fresh.test)" \
    "$T451"
kill -CONT "$REDIS_PID"
expect_eq "the summary counts the Redis error, the 4.3.0 tempfail and the temp action" \
    "$(($(field errors) - ERRS)) $(($(field 4.3.0) - T430)) $(($(field temp) - TEMPS))" \
    "1 1 1"
poll_for 1 50 sh -c "awk '\$1 == \"mxswitch_redis_errors_total\" { print (\$2 >= 1) }' '$PROM'"
expect_eq "Prometheus file: the Redis error is counted" "$GOT" 1

# --- SIGTERM: libmilter stops; a session in progress is cut ------------
# libmilter owns SIGTERM (and SIGHUP, SIGINT): smfi_main() returns and its
# workers take no further command, so the open session is answered up to
# its recipient, then its connection closes with the process (the MTA
# applies its milter default action; test_faults shows nothing is lost).
cp "$WORK/good.conf" "$WORK/mx.conf"
SESSIONS=$(($(field sessions) + 1))
printf '%s\n' 'connect client.test 127.0.0.1' 'mail <sender@client.test>' \
    'rcpt <hank@moved.test>' 'sleep 2000' 'eom' >"$WORK/term.mt"
"$TESTBIN/mtc" "$MILTER" <"$WORK/term.mt" >"$WORK/term.out" 2>&1 &
TERMC=$!
track "$TERMC"
await_sessions "$SESSIONS"
poll_for 1 50 grep -c 'rcpt=<hank@moved.test>' "$LOG" >/dev/null
kill -TERM "$MX_PID"
STOP_RC=0
wait "$MX_PID" || STOP_RC=$?
untrack "$MX_PID"
wait "$TERMC"
untrack "$TERMC"
expect_eq "SIGTERM with a session open: mxswitch exits 0" "$STOP_RC" 0
expect_eq "the open session was answered up to its recipient, then cut" \
    "$(head -n 3 "$WORK/term.out" | tr '\n' ' ')/$(grep -c '^eom: ' "$WORK/term.out")" \
    "connect: continue mail: continue rcpt <hank@moved.test>: continue /0"
decided "the open session's recipient was decided remote" hank@moved.test \
    remote 'alt:moved\.test' remote
expect_grep "the stop names the session left to the MTA" "$LOG" \
    "milter stopped: 1 session\\(s\\) in progress end with the MTA's milter default action"
NEWRC=0
echo 'connect late.test 127.0.0.1' | "$TESTBIN/mtc" -t 1000 "$MILTER" \
    >"$WORK/late.out" 2>&1 || NEWRC=$?
expect_eq "after the stop, a new connection is refused" \
    "$NEWRC $(grep -c 'Connection refused' "$WORK/late.out")" "2 1"
expect_eq "the pid file is gone" "$([ -e "$WORK/mx.pid" ] && echo yes)" ""
expect_eq "sd_notify: RELOADING=1 and READY=1 per SIGUSR1, then STOPPING=1" \
    "$(tr '\n' ' ' <"$WORK/notify.log")" \
    "READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1 "
expect_eq "the final Prometheus file counts every session" \
    "$(prom mxswitch_sessions_total)" "$SESSIONS"
expect_eq "the final Prometheus file counts every remote action" \
    "$(prom 'mxswitch_actions_total{action="remote"}')" 5
expect_eq "the final Prometheus file counts every transport answer the log shows" \
    "$(prom 'mxswitch_map_answers_total{map="transport",status="OK"}')/$(prom 'mxswitch_map_answers_total{map="transport",status="NOTFOUND"}')" \
    "$(grep -c 'socketmap: transport .* -> OK ' "$LOG")/0"

finish
