#!/bin/bash
# test_addrkeys - per-address keys and dry run against a real redis-server,
# observed where the MTA sees them: the socket map answers (maps
# transport, valias, rcpt), the milter's RCPT reply and its decision log
# line.  Address keys beat domain keys both ways, one MGET per recipient on
# a miss and no Redis command on a hit, keyspace invalidation of address
# keys; dry run logs and answers as without mxswitch, Redis down included.
T_NAME=test_addrkeys
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
free_port SPORT
SMAP_PORT=$SPORT
MILTER="inet:$MPORT@127.0.0.1"
LOG="$WORK/mxswitch.log"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# write_conf FILE ROUTING-EXTRA [MILTER-EXTRA] - config for this test's
# ports, with the instance's transports beside it (local answers matter)
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "$MILTER"; allow_root = true; ${3:-} };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { prefix = "mxswitch:domain:"; address_prefix = "mxswitch:address:";
           default = "none"; on_error = "tempfail"; $2 };
cache: { ttl = 3600; max_entries = 1000; };
socketmap: { socket = "inet:$SPORT@127.0.0.1"; };
CONF
    transports "$(dirname "$1")"
}

# ask MAP KEY... - the socket map's answers, joined by |
ask() { smap_ask "$@" | tr '\n' '|'; }

# calls CMD - calls of one Redis command since the last CONFIG RESETSTAT
calls() {
    redis-cli -p "$RPORT" INFO commandstats | tr -d '\r' |
        sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0
}

# mget_count - MGET calls since the last CONFIG RESETSTAT
mget_count() { calls mget; }

# data_calls - every command but INFO and CONFIG (ours) since the reset
data_calls() {
    redis-cli -p "$RPORT" INFO commandstats | tr -d '\r' |
        grep -v -E '^cmdstat_(info|config|config\|[a-z]+):' |
        sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\),.*/\1/p' |
        awk '{s += $1} END {print s + 0}'
}

# one_rcpt ADDR - the milter's RCPT answer (and any change, a bug) for one
# recipient
one_rcpt() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt %s\neom\n' "$1" |
        mtc_run | grep -v -E '^(connect|mail|eom): continue$'
}

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET mxswitch:domain:example.com remote
rcli SET mxswitch:address:ceo@local.test remote
rcli SET mxswitch:address:stay@remote.test none
rcli SET mxswitch:address:home@remote.test local
rcli SET mxswitch:address:bad@remote.test remotely
rcli SET mxswitch:address:boss@nokey.test remote
rcli SET mxswitch:address:ceo@xn--bcher-kva.de remote
rcli SET mxswitch:address:toggle@local.test remote

write_conf "$WORK/mx.conf" ''
start_mxswitch "$WORK/mx.conf" "$MPORT" ||
    { fail "mxswitch starts" "-"; finish; exit; }
wait_port "$SPORT" 5 || { fail "the socket map server listens" "-"; finish; exit; }
expect_grep "start line names both key forms" "$LOG" \
    'keys mxswitch:domain:<domain> and mxswitch:address:<local@domain>'
# The watcher subscribes on its own thread: wait for it (the toggles
# below need it), then check what it follows.
poll_for 1 100 grep -c 'redis: watching ' "$LOG"
expect_grep "the watcher follows both prefixes" "$LOG" \
    'watching __keyspace@0__:mxswitch:domain:\* and __keyspace@0__:mxswitch:address:\* for changes'

check_mt "the milter accepts and changes no recipient, whichever key wins" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <ceo+news@local.test>
rcpt <CEO@Local.TEST>
rcpt <alice@local.test>
rcpt <stay@remote.test>
rcpt <home@remote.test>
rcpt <other@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <ceo+news@local.test>: continue
rcpt <CEO@Local.TEST>: continue
rcpt <alice@local.test>: continue
rcpt <stay@remote.test>: continue
rcpt <home@remote.test>: continue
rcpt <other@remote.test>: continue
eom: continue
EOF
expect_grep "the log names the address key that won, despite the detail" "$LOG" \
    'rcpt=<ceo\+news@local.test> domain=local.test mode=remote source=redis key=mxswitch:address:ceo@local.test action=remote \('
expect_grep "a recipient without address key names the domain key" "$LOG" \
    'rcpt=<alice@local.test> domain=local.test mode=local source=(redis|cache) key=mxswitch:domain:local.test action=local \('
expect_grep "address none is logged as the winning key" "$LOG" \
    'rcpt=<stay@remote.test> domain=remote.test mode=none source=redis key=mxswitch:address:stay@remote.test action=none \('
expect_grep "address local is logged as the winning key" "$LOG" \
    'rcpt=<home@remote.test> domain=remote.test mode=local source=redis key=mxswitch:address:home@remote.test action=local \('

expect_eq "transport: an address key remote beats a local domain (detail, case)" \
    "$(ask transport ceo+news@local.test CEO@Local.TEST alice@local.test)" \
    "OK smtp:|OK smtp:|OK virtual:|"
expect_eq "transport: address none and local beat a remote domain" \
    "$(ask transport stay@remote.test home@remote.test other@remote.test)" \
    "NOTFOUND|OK virtual:|OK smtp:|"
expect_eq "transport: an address key works where the domain has no key; IDN" \
    "$(ask transport boss@nokey.test 'Ceo@BÜCHER.de' other@nokey.test)" \
    "OK smtp:|OK smtp:|NOTFOUND|"
check_mt "the milter accepts an address-keyed IDN recipient unchanged" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <Ceo@B\xc3\x9cCHER.de>
eom
==>
connect: continue
mail: continue
rcpt <Ceo@B\xc3\x9cCHER.de>: continue
eom: continue
EOF
expect_grep "the IDN recipient's address key is the A-label one" "$LOG" \
    'rcpt=<Ceo@B\\xc3\\x9cCHER.de> domain=xn--bcher-kva.de mode=remote source=(redis|cache) key=mxswitch:address:ceo@xn--bcher-kva.de action=remote'

check_mt "an invalid address value is 451, not a fall back to the domain" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bad@remote.test>
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <bad@remote.test>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
rcpt <bob@remote.test>: continue
eom: continue
EOF
expect_grep "an invalid address value is logged with its key" "$LOG" \
    'rcpt=<bad@remote.test> domain=remote.test: lookup failed \(invalid value "remotely" in key mxswitch:address:bad@remote.test\): answered 451 4.3.0'
expect_eq "transport: an invalid address value is TEMP, the domain's others OK" \
    "$(ask transport bad@remote.test bob@remote.test)" \
    "TEMP invalid value \"remotely\" in key mxswitch:address:bad@remote.test|OK smtp:|"

expect_eq "transport: a quoted local part with a space has no address key: the domain decides" \
    "$(ask transport '"ceo x"@local.test' '"ceo"@local.test')" \
    "OK virtual:|OK smtp:|"

# valias: a remote address answers itself (as the MTA wrote it), others
# are NOTFOUND; rcpt: a remote address refuses untrusted clients.
expect_eq "valias: an address key remote over a local domain answers itself" \
    "$(ask valias ceo@local.test Ceo+news@local.test)" \
    "OK ceo@local.test|OK Ceo+news@local.test|"
expect_eq "valias: address none over a remote domain, and the local domain's users: NOTFOUND" \
    "$(ask valias stay@remote.test alice@local.test home@remote.test)" \
    "NOTFOUND|NOTFOUND|NOTFOUND|"
expect_eq "valias: an address key remote, no domain key: answers itself" \
    "$(ask valias boss@nokey.test)" "OK boss@nokey.test|"
expect_eq "rcpt: an address key remote refuses untrusted clients; address none does not" \
    "$(ask rcpt ceo@local.test stay@remote.test)" \
    "OK 550 5.7.1 mail for local.test is not accepted here: its mail exchanger is elsewhere|NOTFOUND|"

# Round trips.  Every key the next lookups need is cached by now except
# the fresh addresses, so: a hit makes no Redis command at all; a miss
# makes exactly one, an MGET with the address key and the domain
# candidates the cache lacks.
rcli CONFIG RESETSTAT
one_rcpt '<ceo@local.test>' >/dev/null
one_rcpt '<stay@remote.test>' >/dev/null
one_rcpt '<alice@local.test>' >/dev/null
smap_ask transport ceo@local.test stay@remote.test alice@local.test >/dev/null
expect_eq "cache hits (address key, address none, absent address): no Redis command" \
    "$(data_calls)" 0
rcli CONFIG RESETSTAT
printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <n1@local.test>\nrcpt <n2@local.test>\nrcpt <n3@x.y.fresh.test>\neom\n' |
    mtc_run >/dev/null
expect_eq "three missing recipients: three MGETs" "$(mget_count)" 3
expect_eq "three missing recipients: nothing but those MGETs" "$(data_calls)" 3
redis-cli -p "$RPORT" MONITOR >"$WORK/monitor.out" &
MON_PID=$!
track "$MON_PID"
poll_for OK 25 head -n 1 "$WORK/monitor.out"
smap_ask transport 'Fresh+x@a.b.other.test' >/dev/null
poll_for 1 25 grep -c '"MGET"' "$WORK/monitor.out"
stop_pid "$MON_PID"
expect_grep "one MGET asks the address key and every domain candidate" \
    "$WORK/monitor.out" \
    '"MGET" "mxswitch:address:fresh@a.b.other.test" "mxswitch:domain:a.b.other.test" "mxswitch:domain:b.other.test" "mxswitch:domain:other.test"$'
expect_eq "that recipient made exactly one Redis command" \
    "$(grep -c '^[0-9.]* \[' "$WORK/monitor.out")" 1

# Invalidation: cache ttl is 3600 s, so only the keyspace notification of
# the address key can make a request see a change.  The notification
# reaches the daemon a moment after SET returns: a request sent at once
# may still get the old answer, so each waits for the new one (2 s).
toggle() { smap_ask transport toggle@local.test; }
expect_eq "address toggle: remote before the change" "$(toggle)" "OK smtp:"
rcli SET mxswitch:address:toggle@local.test none
poll_for NOTFOUND 10 toggle
expect_eq "address toggle: SET none applies at once, not after the ttl" "$GOT" NOTFOUND
rcli SET mxswitch:address:toggle@local.test remote
poll_for "OK smtp:" 10 toggle
expect_eq "address toggle: SET remote applies at once, not after the ttl" "$GOT" "OK smtp:"
rcli DEL mxswitch:address:toggle@local.test
poll_for "OK virtual:" 10 toggle
expect_eq "address toggle: DEL gives the domain (local) back at once" "$GOT" "OK virtual:"
stop_mxswitch "mxswitch exits cleanly on SIGTERM"

# Dry run: the same keys, every decision logged, every answer as without
# mxswitch: the milter refuses nothing, every map answers NOTFOUND.
write_conf "$WORK/dry.conf" 'dry_run = true;' 'max_recipients = 3;'
: >"$LOG"
start_mxswitch "$WORK/dry.conf" "$MPORT" ||
    { fail "mxswitch starts in dry run" "-"; finish; exit; }
wait_port "$SPORT" 5
expect_grep "dry run is announced at start" "$LOG" \
    'DRY RUN: decisions are logged, the MTA routes and accepts as without mxswitch'
expect_grep "a removed setting (milter.max_recipients) loads with a warning" "$LOG" \
    'dry.conf:[0-9]+: milter.max_recipients: removed setting, ignored'
check_mt "dry run: no recipient is changed or refused" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <ceo+news@local.test>
rcpt <bad@remote.test>
rcpt <a@b@c.test>
rcpt <x@bad..test>
rcpt <bob@remote.test>
rcpt <alice@local.test>
rcpt <r5@remote.test>
rcpt <r6@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <ceo+news@local.test>: continue
rcpt <bad@remote.test>: continue
rcpt <a@b@c.test>: continue
rcpt <x@bad..test>: continue
rcpt <bob@remote.test>: continue
rcpt <alice@local.test>: continue
rcpt <r5@remote.test>: continue
rcpt <r6@remote.test>: continue
eom: continue
EOF
expect_eq "dry run: every recipient is decided, however many (no recipient limit)" \
    "$(grep -c -E 'rcpt=<r[56]@remote.test> domain=remote.test mode=remote .*action=remote dry_run' "$LOG")" 2
expect_grep "dry run: the decision it would act on is logged" "$LOG" \
    'rcpt=<ceo\+news@local.test> domain=local.test mode=remote source=redis key=mxswitch:address:ceo@local.test action=remote dry_run \('
expect_grep "dry run: a local decision is logged with dry_run" "$LOG" \
    'rcpt=<alice@local.test> domain=local.test mode=local .*action=local dry_run \('
expect_grep "dry run: an invalid value logs the 451 it would answer" "$LOG" \
    'rcpt=<bad@remote.test> domain=remote.test: lookup failed \(invalid value "remotely" in key mxswitch:address:bad@remote.test\): dry_run would=451 4.3.0'
expect_grep "dry run: a malformed address logs the 451 it would answer" "$LOG" \
    'rcpt=<a@b@c.test>: malformed address .*: dry_run would=451 4.1.3'
expect_grep "dry run: a bad domain logs the 451 it would answer" "$LOG" \
    'rcpt=<x@bad..test>: bad domain .*: dry_run would=451 4.1.2'
expect_eq "dry run: no line claims a reply was given" \
    "$(grep -c -E 'answered [45][0-9][0-9]' "$LOG")" 0
expect_eq "dry run: every map answers a would-be OK with NOTFOUND" \
    "$(ask transport ceo@local.test; ask valias ceo@local.test; ask rcpt ceo@local.test; ask transport alice@local.test)" \
    "NOTFOUND|NOTFOUND|NOTFOUND|NOTFOUND|"
expect_grep "dry run socketmap: the would-be answer is logged" "$LOG" \
    'socketmap: transport ceo@local.test -> dry_run would=OK smtp: \(domain local.test mode remote action remote from (redis|cache) key "mxswitch:address:ceo@local.test"'
expect_eq "dry run socketmap: a would-be TEMP is answered NOTFOUND" \
    "$(ask transport bad@remote.test)" "NOTFOUND|"
expect_grep "dry run socketmap: the would-be TEMP is logged" "$LOG" \
    'socketmap: transport bad@remote.test domain=remote.test: lookup failed \(invalid value "remotely" in key mxswitch:address:bad@remote.test\): dry_run would=TEMP, answered NOTFOUND'

stop_pid "$REDIS_PID"
expect_eq "dry run, Redis down: the recipient is accepted unchanged" \
    "$(one_rcpt '<u1@fresh-down.test>')" "rcpt <u1@fresh-down.test>: continue"
expect_grep "dry run, Redis down: the log says it would answer 451" "$LOG" \
    'rcpt=<u1@fresh-down.test> domain=fresh-down.test: lookup failed \(.*\): dry_run would=451 4.3.0'
expect_eq "dry run, Redis down: the socket map answers NOTFOUND, not TEMP" \
    "$(ask transport u2@fresh-down.test)" "NOTFOUND|"
stop_mxswitch "mxswitch (dry run) exits cleanly"
finish
