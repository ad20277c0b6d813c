#!/bin/bash
# test_proto - mxswitch driven through the milter protocol (tests/mtc) and
# asked through its socket map server as the MTA asks at delivery, against
# a real redis-server: the milter changes no recipient and answers RCPT;
# the maps route (subdomains, IDN, the tag of an earlier mxswitch, errors);
# a domain whose best MX is this server held; toggles through keyspace
# notifications, and Redis going away and back.  In a private network
# namespace with its own DNS (pf_lib.sh): .test names are NXDOMAIN at once,
# mx-here.test's MX is 127.0.0.1, nothing depends on the host's resolver.
T_NAME=test_proto
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"
PF_DNS=(--mx-host=mx-here.test,mx.here.test,10
    --host-record=mx.here.test,127.0.0.1)
pf_net_up || abort "private network and DNS"

free_port RPORT
free_port MPORT
free_port SMAP_PORT
MILTER="inet:$MPORT@127.0.0.1"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# write_conf FILE ROUTING-EXTRA [MILTER-EXTRA] - config for this test's
# ports, the socket map server on; the instance's transports beside it
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "$MILTER"; allow_root = true; ${3:-} };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { prefix = "mxswitch:domain:"; default = "none"; $2 };
cache: { ttl = 3600; max_entries = 1000; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
CONF
    transports "$(dirname "$1")"
}
write_conf "$WORK/mx.conf" 'on_error = "tempfail";'

# action_of RCPT - the action of the last decision line logged for RCPT
action_of() {
    grep -F "rcpt=$1 domain=" "$WORK/mxswitch.log" | grep ' action=' |
        tail -n 1 | sed -n 's/.* action=\([a-z]*\) .*/\1/p'
}

# answers MAP KEY... - smap_ask's answers on one line, separated by " | "
answers() { smap_ask "$@" | paste -sd'|' | sed 's/|/ | /g'; }

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET mxswitch:domain:example.com remote
rcli SET mxswitch:domain:b.example.com local
rcli SET mxswitch:domain:xn--bcher-kva.de remote
rcli SET mxswitch:domain:mixed.test "  ReMoTe	"
rcli SET mxswitch:domain:bad.test remotely
rcli SET mxswitch:domain:toggle.test remote
rcli SET mxswitch:domain:mx-here.test remote

start_mxswitch "$WORK/mx.conf" "$MPORT" && wait_port "$SMAP_PORT" 10 ||
    { fail "mxswitch starts with the socket map server" "-"; finish; exit; }

check_mt "milter asks for no message changes and skips content" <<'EOF'
negotiate 0x1ff 0x1fffff
==>
negotiate: version=6 actions=0x0 protocol=0x372
EOF

check_mt "an MTA that allows no changes at all is served" <<'EOF'
negotiate 0x0 0x1fffff
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
eom
==>
negotiate: version=6 actions=0x0 protocol=0x372
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
eom: continue
EOF

# Longer than the 4 KB the milter once built arguments in on its stack.
long=$(printf 'x%.0s' $(seq 5000))
check_mt "a remote recipient with NOTIFY and a long ORCPT is left as sent" <<EOF
connect client.test 127.0.0.1
helo client.test
mail <sender@client.test>
rcpt <bob@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;$long@remote.test
eom
==>
connect: continue
helo: skipped
mail: continue
rcpt <bob@remote.test>: continue
eom: continue
EOF

check_mt "local, unknown and remote in one message: the milter changes none" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <alice@local.test>
rcpt <carol@unknown.test>
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <alice@local.test>: continue
rcpt <carol@unknown.test>: continue
rcpt <bob@remote.test>: continue
eom: continue
EOF
expect_eq "the decision of each is logged: local, none, remote" \
    "$(action_of '<alice@local.test>') $(action_of '<carol@unknown.test>') $(action_of '<bob@remote.test>')" \
    "local none remote"
expect_eq "map transport: local to the local transport, unknown not found, remote to smtp" \
    "$(answers transport alice@local.test carol@unknown.test bob@remote.test)" \
    "OK virtual: | NOTFOUND | OK smtp:"
expect_eq "map valias: only the remote-mode address is known, as itself" \
    "$(answers valias alice@local.test carol@unknown.test bob@remote.test)" \
    "NOTFOUND | NOTFOUND | OK bob@remote.test"

check_mt "subdomains: the milter lets both recipients through" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <x@a.example.com>
rcpt <y@a.b.example.com>
eom
==>
connect: continue
mail: continue
rcpt <x@a.example.com>: continue
rcpt <y@a.b.example.com>: continue
eom: continue
EOF
expect_grep "subdomains fall back to the nearest parent key (decision line)" \
    "$WORK/mxswitch.log" \
    'rcpt=<y@a.b.example.com> domain=a.b.example.com mode=local source=[a-z]+ key=mxswitch:domain:b.example.com action=local '
expect_eq "subdomains fall back to the nearest parent key (map transport)" \
    "$(answers transport x@a.example.com y@a.b.example.com)" \
    "OK smtp: | OK virtual:"

check_mt "IDN domain, mixed-case value, quoted local part: RCPT continues" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <kai@B\xc3\x9cCHER.de.>
rcpt <"john doe"@Mixed.Test>
eom
==>
connect: continue
mail: continue
rcpt <kai@B\xc3\x9cCHER.de.>: continue
rcpt <"john doe"@Mixed.Test>: continue
eom: continue
EOF
expect_grep "an IDN domain finds its A-label key" "$WORK/mxswitch.log" \
    'rcpt=<kai@B\\xc3\\x9cCHER.de.> domain=xn--bcher-kva.de mode=remote source=redis key=mxswitch:domain:xn--bcher-kva.de action=remote '
expect_eq "IDN and a mixed-case value route remote; valias answers the keys as written" \
    "$(answers transport $'kai@B\xc3\x9cCHER.de.' '"john doe"@Mixed.Test') / $(answers valias $'kai@B\xc3\x9cCHER.de.' '"john doe"@Mixed.Test')" \
    $'OK smtp: | OK smtp: / OK kai@B\xc3\x9cCHER.de. | OK "john doe"@Mixed.Test'

check_mt "no domain and address literals: RCPT continues" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <postmaster>
rcpt <bob@[127.0.0.1]>
eom
==>
connect: continue
mail: continue
rcpt <postmaster>: continue
rcpt <bob@[127.0.0.1]>: continue
eom: continue
EOF
expect_eq "no domain and address literals are never looked up (no decision line)" \
    "$(grep -c -e 'rcpt=<postmaster> domain=' -e 'rcpt=<bob@\[127.0.0.1\]> domain=' "$WORK/mxswitch.log")/$(grep -c -e 'rcpt=<postmaster>: no opinion (no domain)' -e 'rcpt=<bob@\[127.0.0.1\]>: no opinion (address literal)' "$WORK/mxswitch.log")" \
    "0/2"
expect_eq "no domain and address literals: the maps answer NOTFOUND" \
    "$(answers transport postmaster 'bob@[127.0.0.1]') / $(answers valias postmaster 'bob@[127.0.0.1]')" \
    "NOTFOUND | NOTFOUND / NOTFOUND | NOTFOUND"

check_mt "the MTA's routing macros: every recipient continues" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} smtp {rcpt_host} remote.test
rcpt <r1@remote.test>
macro R {rcpt_mailer} virtual {rcpt_host} remote.test
rcpt <r2@remote.test>
macro R {rcpt_mailer} relay {rcpt_host} local.test
rcpt <l1@local.test>
macro R {rcpt_mailer} local {rcpt_addr} l2
rcpt <l2@local.test>
macro R {rcpt_mailer} smtp {rcpt_host} unknown.test
rcpt <u1@unknown.test>
eom
==>
connect: continue
mail: continue
rcpt <r1@remote.test>: continue
rcpt <r2@remote.test>: continue
rcpt <l1@local.test>: continue
rcpt <l2@local.test>: continue
rcpt <u1@unknown.test>: continue
eom: continue
EOF
expect_eq "the MTA's routing macros change no decision" \
    "$(for r in r1@remote.test r2@remote.test l1@local.test l2@local.test u1@unknown.test; do
        action_of "<$r>"
    done | paste -sd' ')" "remote remote local local none"

check_mt "an address with a forged tag is left as sent" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob+mx-remote@local.test>
eom
==>
connect: continue
mail: continue
rcpt <bob+mx-remote@local.test>: continue
eom: continue
EOF
expect_eq "a forged remote tag does not route remote: the domain's mode decides" \
    "$(action_of '<bob+mx-remote@local.test>') / $(answers transport bob+mx-remote@local.test)" \
    "local / OK virtual:"
expect_eq "map valias answers a tagged address its plain form" \
    "$(answers valias bob+mx-remote@local.test bob+mx-local@remote.test)" \
    "OK bob@local.test | OK bob@remote.test"

check_mt "a remote-mode domain whose best MX is this server: 450 4.4.6" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@mx-here.test>
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@mx-here.test>: reply 450 4.4.6 The domain's mail exchanger is moving, try again later
rcpt <bob@remote.test>: continue
eom: continue
EOF
expect_grep "the held recipient's decision line says hold" "$WORK/mxswitch.log" \
    'rcpt=<bob@mx-here.test> domain=mx-here.test mode=remote source=redis key=mxswitch:domain:mx-here.test action=hold \(the best MX is still this server'
expect_eq "a held domain: map transport says retry, valias knows the address" \
    "$(answers transport bob@mx-here.test) / $(answers valias bob@mx-here.test)" \
    "OK retry:4.4.6 the best MX of mx-here.test is this server / OK bob@mx-here.test"

check_mt "after an aborted message the next one is answered on its own" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
abort
mail <sender@client.test>
rcpt <alice@local.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
abort: sent
mail: continue
rcpt <alice@local.test>: continue
eom: continue
EOF

check_mt "invalid value and malformed address get 451, others go on" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <x@bad.test>
rcpt <a@b@c.test>
rcpt <x@bad..test>
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <x@bad.test>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
rcpt <a@b@c.test>: reply 451 4.1.3 Recipient address not understood by the router
rcpt <x@bad..test>: reply 451 4.1.2 Recipient domain not understood
rcpt <bob@remote.test>: continue
eom: continue
EOF
expect_grep "invalid value is logged with key and value" "$WORK/mxswitch.log" \
    'rcpt=<x@bad.test> domain=bad.test: lookup failed \(invalid value "remotely" in key mxswitch:domain:bad.test\): answered 451 4.3.0'
expect_eq "an invalid value is TEMP to the maps, a malformed domain NOTFOUND" \
    "$(answers transport x@bad.test x@bad..test)" \
    'TEMP invalid value "remotely" in key mxswitch:domain:bad.test | NOTFOUND'

check_mt "queue id sent with RCPT: the recipient continues" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R i 4XyZq1
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
eom: continue
EOF
expect_grep "decision log line names queue id, address, domain, mode, source, key, action" \
    "$WORK/mxswitch.log" \
    '4XyZq1: rcpt=<bob@remote.test> domain=remote.test mode=remote source=cache key=mxswitch:domain:remote.test action=remote \(to the domain.s MX hosts'
expect_grep "first lookup of a domain is logged as from redis" \
    "$WORK/mxswitch.log" \
    'rcpt=<alice@local.test> domain=local.test mode=local source=redis key=mxswitch:domain:local.test action=local '

# check_mt_file BASE NAME - the conversation in $WORK/BASE.mt gets exactly
# the replies in $WORK/BASE.want (for ones too long for a here-document)
check_mt_file() {
    mtc_run <"$WORK/$1.mt" >"$WORK/$1.got"
    if cmp -s "$WORK/$1.want" "$WORK/$1.got"; then
        pass "$2"
    else
        fail "$2" "differs (- want, + got):"
        diff "$WORK/$1.want" "$WORK/$1.got" | head -n 10 | sed 's/^/    /'
    fi
}

# 600 recipients of 60-byte local parts in one message, then another
# message on the same connection: each recipient is answered, none is
# changed, and each has its decision line.
LP=$(printf 'x%.0s' {1..56})
{
    printf 'connect client.test 127.0.0.1\nmail <s@client.test>\n'
    for ((i = 0; i < 600; i++)); do
        printf 'rcpt <%s%03d@remote.test>\n' "$LP" "$i"
        [ $((i % 100)) = 0 ] && printf 'rcpt <l%03d@local.test>\n' "$i"
    done
    printf 'eom\nmail <s@client.test>\nrcpt <last@remote.test>\neom\n'
} >"$WORK/big.mt"
{
    printf 'connect: continue\nmail: continue\n'
    for ((i = 0; i < 600; i++)); do
        printf 'rcpt <%s%03d@remote.test>: continue\n' "$LP" "$i"
        [ $((i % 100)) = 0 ] && printf 'rcpt <l%03d@local.test>: continue\n' "$i"
    done
    printf 'eom: continue\nmail: continue\nrcpt <last@remote.test>: continue\n'
    printf 'eom: continue\n'
} >"$WORK/big.want"
check_mt_file big "606 recipients in one message: each continues, none is changed"
expect_eq "606 recipients in one message: one decision line each" \
    "$(grep -c -e "rcpt=<$LP[0-9]*@remote.test> domain=remote.test .* action=remote " \
        -e 'rcpt=<l[0-9][0-9][0-9]@local.test> domain=local.test .* action=local ' \
        "$WORK/mxswitch.log")/$(grep -c 'rcpt=<last@remote.test> domain=remote.test .* action=remote ' "$WORK/mxswitch.log")" \
    "606/1"

# A toggle: cache ttl is 3600 s, so only the keyspace notification can
# make the next delivery (map transport) and the next message (the
# milter's decision) see the change.
toggle_msg() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <t%s@toggle.test>\neom\n' "$1" |
        mtc_run >/dev/null
    echo "$(action_of "<t$1@toggle.test>") $(route_of toggle.test)"
}
expect_eq "toggle: remote before the change" "$(toggle_msg 1)" "remote OK smtp:"
rcli SET mxswitch:domain:toggle.test local
expect_eq "toggle: SET local applies to the next message and delivery" \
    "$(toggle_msg 2)" "local OK virtual:"
rcli SET mxswitch:domain:toggle.test remote
expect_eq "toggle: SET remote applies to the next message and delivery" \
    "$(toggle_msg 3)" "remote OK smtp:"
rcli DEL mxswitch:domain:toggle.test
expect_eq "toggle: DEL applies to the next message and delivery" \
    "$(toggle_msg 4)" "none NOTFOUND"

# Redis goes away: 451 at RCPT and TEMP to the maps for domains not
# cached; comes back: lookups work again in the same process.
rcpt_fresh() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <u@%s>\n' "$1" |
        mtc_run | sed -n 's/^rcpt [^:]*: //p'
}
stop_pid "$REDIS_PID"
expect_eq "redis down: RCPT answered 451 4.3.0" "$(rcpt_fresh fresh1.test)" \
    "reply 451 4.3.0 Mail routing temporarily unavailable, try again later"
got=$(route_of fresh1.test)
case $got in
TEMP?*) pass "redis down: map transport answers TEMP for a domain not cached" ;;
*) fail "redis down: map transport answers TEMP for a domain not cached" "got '$got'" ;;
esac
expect_grep "redis down is logged" "$WORK/mxswitch.log" \
    "redis: 127.0.0.1:$RPORT db 0 unreachable"
expect_eq "redis down: cached domains still route (RCPT, map transport)" \
    "$(rcpt_fresh remote.test) / $(route_of remote.test)" "continue / OK smtp:"
start_redis "$RPORT"
rcli SET mxswitch:domain:fresh2.test remote
poll_for "OK smtp:" 50 route_of fresh2.test
expect_eq "redis back: map answers recover without restarting mxswitch" "$GOT" \
    "OK smtp:"
expect_eq "redis back: the milter decides again" \
    "$(rcpt_fresh fresh2.test) $(action_of '<u@fresh2.test>')" "continue remote"
expect_eq "redis back: it is the same mxswitch process" \
    "$(kill -0 "$MX_PID" 2>/dev/null && echo alive)" alive
expect_grep "redis recovery is logged" "$WORK/mxswitch.log" \
    "redis: 127.0.0.1:$RPORT db 0 is reachable again"

stop_mxswitch "mxswitch exits cleanly on SIGTERM"

# on_error = default: an invalid value routes by routing.default instead.
# milter.max_recipients is a removed setting: it loads with a warning and
# limits nothing.
write_conf "$WORK/mx2.conf" 'on_error = "default";' 'max_recipients = 3;'
rcli SET mxswitch:domain:bad.test remotely
rcli SET mxswitch:domain:remote.test remote
: >"$WORK/mxswitch.log"
start_mxswitch "$WORK/mx2.conf" "$MPORT" && wait_port "$SMAP_PORT" 10 ||
    fail "mxswitch restarts" "-"
check_mt "on_error default: an invalid value routes by the default" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <x@bad.test>
eom
==>
connect: continue
mail: continue
rcpt <x@bad.test>: continue
eom: continue
EOF
expect_grep "on_error default is logged" "$WORK/mxswitch.log" \
    'rcpt=<x@bad.test> domain=bad.test: lookup failed .*using routing.default none'
expect_eq "on_error default: the decision is none, the maps answer NOTFOUND" \
    "$(action_of '<x@bad.test>') / $(answers transport x@bad.test) / $(answers valias x@bad.test)" \
    "none / NOTFOUND / NOTFOUND"
expect_grep "the removed milter.max_recipients is warned about at start" \
    "$WORK/mxswitch.log" 'mx2.conf:1: milter.max_recipients: removed setting, ignored'
check_mt "the removed milter.max_recipients limits nothing" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <r1@remote.test>
rcpt <a@b@c.test>
rcpt <r2@remote.test>
rcpt <r3@local.test>
rcpt <r4@remote.test>
rcpt <r5@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <r1@remote.test>: continue
rcpt <a@b@c.test>: reply 451 4.1.3 Recipient address not understood by the router
rcpt <r2@remote.test>: continue
rcpt <r3@local.test>: continue
rcpt <r4@remote.test>: continue
rcpt <r5@remote.test>: continue
eom: continue
EOF
stop_mxswitch "mxswitch (on_error default) exits cleanly"
finish
