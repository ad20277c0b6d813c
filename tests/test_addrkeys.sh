#!/bin/bash
# test_addrkeys - per-address keys and dry run, through the milter protocol
# (tests/mtc) and the socketmap against a real redis-server: address keys
# beat domain keys both ways, one MGET per recipient on a miss and no Redis
# command on a hit, keyspace invalidation of address keys; dry run logs and
# changes nothing, Redis down included.
T_NAME=test_addrkeys
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
free_port SPORT
MILTER="inet:$MPORT@127.0.0.1"
LOG="$WORK/mxswitch.log"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# write_conf FILE ROUTING-EXTRA [MILTER-EXTRA] - config for this test's ports
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "$MILTER"; allow_root = true; ${3:-} };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { prefix = "mxswitch:domain:"; address_prefix = "mxswitch:address:";
           default = "none"; on_error = "tempfail"; $2 };
cache: { ttl = 3600; max_entries = 1000; };
socketmap: { socket = "inet:$SPORT@127.0.0.1"; };
CONF
}

# smq KEY - the socketmap's answer for KEY: the reply netstring's payload
smq() {
    local req="mxswitch $1" len payload
    (
        exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || exit 1
        printf '%d:%s,' "${#req}" "$req" >&3
        IFS= read -r -t 10 -d ':' -u 3 len || exit 1
        IFS= read -r -t 10 -N $((len + 1)) -u 3 payload || exit 1
        printf '%s\n' "${payload%,}"
    )
}

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

# one_rcpt ADDR - the milter's RCPT answer and changes for one recipient
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
expect_grep "start line names both key forms" "$LOG" \
    'keys mxswitch:domain:<domain> and mxswitch:address:<local@domain>'
# The watcher subscribes on its own thread: wait for it (the toggles
# below need it), then check what it follows.
poll_for 1 100 grep -c 'redis: watching ' "$LOG"
expect_grep "the watcher follows both prefixes" "$LOG" \
    'watching __keyspace@0__:mxswitch:domain:\* and __keyspace@0__:mxswitch:address:\* for changes'

check_mt "address key remote beats a local domain; detail kept before tag" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <ceo+news@local.test>
rcpt <CEO@Local.TEST>
rcpt <alice@local.test>
eom
==>
connect: continue
mail: continue
rcpt <ceo+news@local.test>: continue
rcpt <CEO@Local.TEST>: continue
rcpt <alice@local.test>: continue
delrcpt <ceo+news@local.test>
addrcpt_par <ceo+news+mx-remote@local.test> ORCPT=rfc822;ceo+2Bnews@local.test
delrcpt <CEO@Local.TEST>
addrcpt_par <CEO+mx-remote@Local.TEST> ORCPT=rfc822;CEO@Local.TEST
eom: continue
EOF
expect_grep "the log names the address key that won" "$LOG" \
    'rcpt=<ceo\+news@local.test> domain=local.test mode=remote source=redis key=mxswitch:address:ceo@local.test action=rewrite new=<ceo\+news\+mx-remote@local.test>'
expect_grep "a recipient without address key names the domain key" "$LOG" \
    'rcpt=<alice@local.test> domain=local.test mode=local source=(redis|cache) key=mxswitch:domain:local.test action=keep'

check_mt "address none and local beat a remote domain" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <stay@remote.test>
macro R {rcpt_mailer} relay {rcpt_host} remote.test
rcpt <home@remote.test>
rcpt <other@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <stay@remote.test>: continue
rcpt <home@remote.test>: continue
rcpt <other@remote.test>: continue
delrcpt <home@remote.test>
addrcpt_par <home+mx-local@remote.test> ORCPT=rfc822;home@remote.test
delrcpt <other@remote.test>
addrcpt_par <other+mx-remote@remote.test> ORCPT=rfc822;other@remote.test
eom: continue
EOF
expect_grep "address none is logged as the winning key" "$LOG" \
    'rcpt=<stay@remote.test> domain=remote.test mode=none source=redis key=mxswitch:address:stay@remote.test action=keep'

check_mt "address key works where the domain has no key; IDN domain" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <boss@nokey.test>
rcpt <Ceo@B\xc3\x9cCHER.de>
eom
==>
connect: continue
mail: continue
rcpt <boss@nokey.test>: continue
rcpt <Ceo@B\xc3\x9cCHER.de>: continue
delrcpt <boss@nokey.test>
addrcpt_par <boss+mx-remote@nokey.test> ORCPT=rfc822;boss@nokey.test
delrcpt <Ceo@B\xc3\x9cCHER.de>
addrcpt_par <Ceo+mx-remote@B\xc3\x9cCHER.de> ORCPT=rfc822;Ceo@B+C3+9CCHER.de
eom: continue
EOF

check_mt "invalid address value is 451, not a fall back to the domain" <<'EOF'
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
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
eom: continue
EOF
expect_grep "invalid address value is logged with its key" "$LOG" \
    'rcpt=<bad@remote.test> domain=remote.test: lookup failed \(invalid value "remotely" in key mxswitch:address:bad@remote.test\): answered 451 4.3.0'

check_mt "quoted local part with a space: no address key, the domain decides" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <"ceo x"@local.test>
rcpt <"ceo"@local.test>
eom
==>
connect: continue
mail: continue
rcpt <"ceo x"@local.test>: continue
rcpt <"ceo"@local.test>: continue
delrcpt <"ceo"@local.test>
addrcpt_par <"ceo+mx-remote"@local.test> ORCPT=rfc822;"ceo"@local.test
eom: continue
EOF

# Round trips.  Every key the next messages need is cached by now except
# the fresh addresses, so: a hit makes no Redis command at all; a miss
# makes exactly one, an MGET with the address key and the domain
# candidates the cache lacks.
rcli CONFIG RESETSTAT
one_rcpt '<ceo@local.test>' >/dev/null
one_rcpt '<stay@remote.test>' >/dev/null
one_rcpt '<alice@local.test>' >/dev/null
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
one_rcpt '<Fresh+x@a.b.other.test>' >/dev/null
poll_for 1 25 grep -c '"MGET"' "$WORK/monitor.out"
stop_pid "$MON_PID"
expect_grep "one MGET asks the address key and every domain candidate" \
    "$WORK/monitor.out" \
    '"MGET" "mxswitch:address:fresh@a.b.other.test" "mxswitch:domain:a.b.other.test" "mxswitch:domain:b.other.test" "mxswitch:domain:other.test"$'
expect_eq "that recipient made exactly one Redis command" \
    "$(grep -c '^[0-9.]* \[' "$WORK/monitor.out")" 1

# Invalidation: cache ttl is 3600 s, so only the keyspace notification of
# the address key can make the next message see a change.
toggle_msg() { one_rcpt '<toggle@local.test>' | grep -c '^addrcpt_par <toggle+mx-remote@local.test>'; }
expect_eq "address toggle: remote before the change" "$(toggle_msg)" 1
rcli SET mxswitch:address:toggle@local.test none
expect_eq "address toggle: SET none applies to the next message" "$(toggle_msg)" 0
rcli SET mxswitch:address:toggle@local.test remote
expect_eq "address toggle: SET remote applies to the next message" "$(toggle_msg)" 1
rcli DEL mxswitch:address:toggle@local.test
expect_eq "address toggle: DEL gives the domain (local) back" "$(toggle_msg)" 0

# The socketmap answers the same way: an address key in remote mode makes
# the address known; an address none hides a remote domain's user.
expect_eq "socketmap: address key remote over a local domain: OK" \
    "$(smq ceo@local.test)" "OK ceo@local.test"
expect_eq "socketmap: the detail is kept in the answer" \
    "$(smq Ceo+news@local.test)" "OK Ceo+news@local.test"
expect_eq "socketmap: address none over a remote domain: NOTFOUND" \
    "$(smq stay@remote.test)" "NOTFOUND "
expect_eq "socketmap: address key remote, no domain key: OK" \
    "$(smq boss@nokey.test)" "OK boss@nokey.test"
expect_eq "socketmap: invalid address value: TEMP" \
    "$(smq bad@remote.test | cut -c1-5)" "TEMP "
expect_eq "socketmap: other users of the local domain: NOTFOUND" \
    "$(smq alice@local.test)" "NOTFOUND "
stop_mxswitch "mxswitch exits cleanly on SIGTERM"

# Dry run: the same keys, every decision logged, nothing changed or refused.
write_conf "$WORK/dry.conf" 'dry_run = true;' 'max_recipients = 3;'
: >"$LOG"
start_mxswitch "$WORK/dry.conf" "$MPORT" ||
    { fail "mxswitch starts in dry run" "-"; finish; exit; }
expect_grep "dry run is announced at start" "$LOG" \
    'DRY RUN: recipients are logged, never changed or refused'
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
expect_grep "dry run: past max_recipients the 452 is only logged" "$LOG" \
    'more than milter.max_recipients \(3\) recipients: dry_run would answer 452 4.5.3 to the rest; they go on unchanged, undecided'
expect_eq "dry run: recipients past max_recipients are not decided" \
    "$(grep -c -E 'rcpt=<r[56]@remote.test>' "$LOG")" 0
expect_grep "dry run: the rewrite it would make is logged" "$LOG" \
    'rcpt=<ceo\+news@local.test> domain=local.test mode=remote source=redis key=mxswitch:address:ceo@local.test action=rewrite dry_run new=<ceo\+news\+mx-remote@local.test>'
expect_grep "dry run: a kept recipient is logged with dry_run" "$LOG" \
    'rcpt=<alice@local.test> domain=local.test mode=local .*action=keep dry_run'
expect_grep "dry run: an invalid value logs the 451 it would answer" "$LOG" \
    'rcpt=<bad@remote.test> domain=remote.test: lookup failed \(invalid value "remotely" in key mxswitch:address:bad@remote.test\): dry_run would=451 4.3.0'
expect_grep "dry run: a malformed address logs the 451 it would answer" "$LOG" \
    'rcpt=<a@b@c.test>: malformed address .*: dry_run would=451 4.1.3'
expect_grep "dry run: a bad domain logs the 451 it would answer" "$LOG" \
    'rcpt=<x@bad..test>: bad domain .*: dry_run would=451 4.1.2'
expect_eq "dry run: no line claims a change was made" \
    "$(grep -c -E 'action=rewrite new=|action=re-add' "$LOG")" 0
expect_eq "dry run socketmap: would-be OK is answered NOTFOUND" \
    "$(smq ceo@local.test)" "NOTFOUND "
expect_grep "dry run socketmap: the would-be answer is logged" "$LOG" \
    'socketmap: ceo@local.test -> NOTFOUND \(dry_run would=OK: domain local.test mode remote from (redis|cache) key "mxswitch:address:ceo@local.test"\)'
expect_eq "dry run socketmap: a would-be TEMP is answered NOTFOUND" \
    "$(smq bad@remote.test)" "NOTFOUND "

stop_pid "$REDIS_PID"
expect_eq "dry run, Redis down: the recipient is accepted unchanged" \
    "$(one_rcpt '<u1@fresh-down.test>')" "rcpt <u1@fresh-down.test>: continue"
expect_grep "dry run, Redis down: the log says it would answer 451" "$LOG" \
    'rcpt=<u1@fresh-down.test> domain=fresh-down.test: lookup failed \(.*\): dry_run would=451 4.3.0'
expect_eq "dry run, Redis down: socketmap answers NOTFOUND, not TEMP" \
    "$(smq u2@fresh-down.test)" "NOTFOUND "
stop_mxswitch "mxswitch (dry run) exits cleanly"
finish
