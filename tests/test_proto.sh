#!/bin/bash
# test_proto - mxswitch driven through the milter protocol (tests/mtc)
# against a real redis-server: rewrites, macros, subdomains, IDN, errors,
# toggles through keyspace notifications, and Redis going away and back.
T_NAME=test_proto
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# write_conf FILE ROUTING-EXTRA [MILTER-EXTRA] - config for this test's ports
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "$MILTER"; allow_root = true; ${3:-} };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { prefix = "mxswitch:domain:"; default = "none"; $2 };
cache: { ttl = 3600; max_entries = 1000; };
CONF
}
write_conf "$WORK/mx.conf" 'on_error = "tempfail";'

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET mxswitch:domain:example.com remote
rcli SET mxswitch:domain:b.example.com local
rcli SET mxswitch:domain:xn--bcher-kva.de remote
rcli SET mxswitch:domain:mixed.test "  ReMoTe	"
rcli SET mxswitch:domain:bad.test remotely
rcli SET mxswitch:domain:toggle.test remote

start_mxswitch "$WORK/mx.conf" "$MPORT" ||
    { fail "mxswitch starts" "-"; finish; exit; }

check_mt "milter negotiates recipient changes and skips content" <<'EOF'
negotiate 0x1ff 0x1fffff
==>
negotiate: version=6 actions=0x88 protocol=0x372
EOF

check_mt "remote recipient is replaced with NOTIFY and ORCPT" <<'EOF'
connect client.test 127.0.0.1
helo client.test
mail <sender@client.test>
rcpt <bob@remote.test> NOTIFY=SUCCESS,FAILURE
eom
==>
connect: continue
helo: skipped
mail: continue
rcpt <bob@remote.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@remote.test
eom: continue
EOF

check_mt "client's own ORCPT is carried over" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test> ORCPT=rfc822;Bob+2Bx@Remote.test
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;Bob+2Bx@Remote.test
eom: continue
EOF

# Longer than the 4 KB the milter builds the arguments in on its stack.
long=$(printf 'x%.0s' $(seq 5000))
check_mt "a kilobytes-long ORCPT is carried over whole" <<EOF
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test> NOTIFY=NEVER ORCPT=rfc822;$long@remote.test
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> NOTIFY=NEVER ORCPT=rfc822;$long@remote.test
eom: continue
EOF

check_mt "local, unknown and remote in one message: only remote changes" <<'EOF'
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
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
eom: continue
EOF

check_mt "subdomains fall back to the nearest parent key" <<'EOF'
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
delrcpt <x@a.example.com>
addrcpt_par <x+mx-remote@a.example.com> ORCPT=rfc822;x@a.example.com
eom: continue
EOF

check_mt "IDN domain, mixed-case value, quoted local part" <<'EOF'
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
delrcpt <kai@B\xc3\x9cCHER.de.>
addrcpt_par <kai+mx-remote@B\xc3\x9cCHER.de.> ORCPT=rfc822;kai@B+C3+9CCHER.de.
delrcpt <"john doe"@Mixed.Test>
addrcpt_par <"john doe+mx-remote"@Mixed.Test> ORCPT=rfc822;"john+20doe"@Mixed.Test
eom: continue
EOF

check_mt "no domain and address literals are never looked up" <<'EOF'
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

check_mt "MTA macros: smtp to the domain is left, relay and virtual are not" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} smtp {rcpt_host} remote.test
rcpt <r1@remote.test>
macro R {rcpt_mailer} virtual {rcpt_host} remote.test
rcpt <r2@remote.test>
macro R {rcpt_mailer} relay {rcpt_host} local.test
rcpt <l1@local.test>
macro R {rcpt_mailer} virtual {rcpt_host} local.test
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
delrcpt <r2@remote.test>
addrcpt_par <r2+mx-remote@remote.test> ORCPT=rfc822;r2@remote.test
delrcpt <l1@local.test>
addrcpt_par <l1+mx-local@local.test> ORCPT=rfc822;l1@local.test
eom: continue
EOF

check_mt "Sendmail class w: a namesake that delrcpt takes along is re-added" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} local {rcpt_addr} bob
rcpt <bob@local.test>
macro R {rcpt_mailer} local {rcpt_addr} bob
rcpt <bob@remote.test> NOTIFY=NEVER
macro R {rcpt_mailer} local {rcpt_addr} carol
rcpt <carol@local.test> NOTIFY=SUCCESS
eom
==>
connect: continue
mail: continue
rcpt <bob@local.test>: continue
rcpt <bob@remote.test>: continue
rcpt <carol@local.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> NOTIFY=NEVER ORCPT=rfc822;bob@remote.test
addrcpt_par <bob@local.test> ORCPT=rfc822;bob@local.test
eom: continue
EOF
expect_grep "the re-add is logged with the reason" "$WORK/mxswitch.log" \
    'rcpt=<bob@local.test> action=re-add \(the MTA.s delrcpt of <bob@remote.test> took it along: same mailer local, host "", addr bob\)'

check_mt "Postfix: {rcpt_addr} is the whole address, nothing is re-added" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} virtual {rcpt_host} local.test {rcpt_addr} bob@local.test
rcpt <bob@local.test>
macro R {rcpt_mailer} virtual {rcpt_host} remote.test {rcpt_addr} bob@remote.test
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@local.test>: continue
rcpt <bob@remote.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
eom: continue
EOF

check_mt "a forged tag is put back to what the mode says" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob+mx-remote@local.test>
eom
==>
connect: continue
mail: continue
rcpt <bob+mx-remote@local.test>: continue
delrcpt <bob+mx-remote@local.test>
addrcpt_par <bob@local.test> ORCPT=rfc822;bob@local.test
eom: continue
EOF

check_mt "an aborted message's recipients are forgotten" <<'EOF'
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

check_mt "MTA without ADDRCPT_PAR gets plain addrcpt" <<'EOF'
negotiate 0x0d 0x1fffff
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
eom
==>
negotiate: version=6 actions=0xc protocol=0x372
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
delrcpt <bob@remote.test>
addrcpt <bob+mx-remote@remote.test>
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
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
eom: continue
EOF
expect_grep "invalid value is logged with key and value" "$WORK/mxswitch.log" \
    'invalid value "remotely" in key mxswitch:domain:bad.test'

check_mt "queue id and source appear in the decision log" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <bob@remote.test>
macro E i 4XyZq1
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
delrcpt <bob@remote.test>
addrcpt_par <bob+mx-remote@remote.test> ORCPT=rfc822;bob@remote.test
eom: continue
EOF
expect_grep "decision log line names queue id, address, domain, mode, source" \
    "$WORK/mxswitch.log" \
    '4XyZq1: rcpt=<bob@remote.test> domain=remote.test mode=remote source=cache key=mxswitch:domain:remote.test action=rewrite new=<bob\+mx-remote@remote.test>'
expect_grep "first lookup of a domain is logged as from redis" \
    "$WORK/mxswitch.log" \
    'rcpt=<alice@local.test> domain=local.test mode=local source=redis'

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

# The changes of a message go out with its final reply, in one write
# (milter/coalesce.c).  600 rewritten recipients of 60-byte local parts
# make about 130 KB of changes, twice what is kept back at once: they go
# out in parts, in order, and the next message on the same connection gets
# its own changes only.
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
    for ((i = 0; i < 600; i++)); do
        printf 'delrcpt <%s%03d@remote.test>\n' "$LP" "$i"
        printf 'addrcpt_par <%s%03d+mx-remote@remote.test> ORCPT=rfc822;%s%03d@remote.test\n' \
            "$LP" "$i" "$LP" "$i"
    done
    printf 'eom: continue\nmail: continue\nrcpt <last@remote.test>: continue\n'
    printf 'delrcpt <last@remote.test>\n'
    printf 'addrcpt_par <last+mx-remote@remote.test> ORCPT=rfc822;last@remote.test\n'
    printf 'eom: continue\n'
} >"$WORK/big.want"
check_mt_file big "600 rewrites in one message: every change, in order, then the reply"
# the premise: more than COALESCE_MAX (64 KB) of changes on the wire
CHANGE_BYTES=$(awk '/^(delrcpt|addrcpt_par) / { n += length($0) }
                    END { print n }' "$WORK/big.want")
expect_eq "the 600 rewrites are more than is kept back at once" \
    "$((CHANGE_BYTES > 65536))" 1

# Namesakes among many replaced recipients: readd_namesakes finds them in
# a table, on the heap past 128 of them.  200 are replaced; two of them
# (bob, bob.x) resolve like the kept bob@local.test, which goes back once,
# and its line names the first of the two.
{
    printf 'connect client.test 127.0.0.1\nmail <s@client.test>\n'
    for ((i = 0; i < 200; i++)); do
        a=r$i ra=r$i
        [ $i = 50 ] && a=bob ra=bob
        [ $i = 150 ] && a=bob.x ra=bob
        printf 'macro R {rcpt_mailer} local {rcpt_addr} %s\n' "$ra"
        printf 'rcpt <%s@remote.test>\n' "$a"
    done
    printf 'macro R {rcpt_mailer} local {rcpt_addr} bob\nrcpt <bob@local.test>\n'
    printf 'eom\n'
} >"$WORK/ns.mt"
{
    printf 'connect: continue\nmail: continue\n'
    for ((i = 0; i < 200; i++)); do
        a=r$i
        [ $i = 50 ] && a=bob
        [ $i = 150 ] && a=bob.x
        printf 'rcpt <%s@remote.test>: continue\n' "$a"
        echo "$a" >>"$WORK/ns.names"
    done
    printf 'rcpt <bob@local.test>: continue\n'
    while read -r a; do
        printf 'delrcpt <%s@remote.test>\n' "$a"
        printf 'addrcpt_par <%s+mx-remote@remote.test> ORCPT=rfc822;%s@remote.test\n' \
            "$a" "$a"
    done <"$WORK/ns.names"
    printf 'addrcpt_par <bob@local.test> ORCPT=rfc822;bob@local.test\n'
    printf 'eom: continue\n'
} >"$WORK/ns.want"
check_mt_file ns "200 replaced, two namesakes of a kept recipient: it is re-added once"
expect_eq "the re-add names the first namesake replaced" \
    "$(grep 'rcpt=<bob@local.test> action=re-add' "$WORK/mxswitch.log" |
        tail -n 1 | grep -o 'delrcpt of <[^>]*>')" "delrcpt of <bob@remote.test>"

# A toggle: cache ttl is 3600 s, so only the keyspace notification can
# make the next message see the change.
toggle_msg() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <t@toggle.test>\neom\n' |
        mtc_run | grep -c '^addrcpt_par <t+mx-remote@toggle.test>'
}
expect_eq "toggle: remote before the change" "$(toggle_msg)" 1
rcli SET mxswitch:domain:toggle.test local
expect_eq "toggle: SET local applies to the next message" "$(toggle_msg)" 0
rcli SET mxswitch:domain:toggle.test remote
expect_eq "toggle: SET remote applies to the next message" "$(toggle_msg)" 1
rcli DEL mxswitch:domain:toggle.test
expect_eq "toggle: DEL applies to the next message" "$(toggle_msg)" 0

# Redis goes away: 451 for recipients whose domain is not cached; comes
# back: lookups work again in the same milter process.
rcpt_fresh() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <u@%s>\n' "$1" |
        mtc_run | sed -n 's/^rcpt [^:]*: //p'
}
stop_pid "$REDIS_PID"
expect_eq "redis down: RCPT answered 451 4.3.0" "$(rcpt_fresh fresh1.test)" \
    "reply 451 4.3.0 Mail routing temporarily unavailable, try again later"
expect_grep "redis down is logged" "$WORK/mxswitch.log" \
    "redis: 127.0.0.1:$RPORT db 0 unreachable"
expect_eq "redis down: cached domains still route" \
    "$(rcpt_fresh remote.test)" "continue"
start_redis "$RPORT"
rcli SET mxswitch:domain:fresh2.test remote
poll_for continue 50 rcpt_fresh fresh2.test
expect_eq "redis back: lookups recover without restarting mxswitch" "$GOT" \
    continue
expect_eq "redis back: it is the same mxswitch process" \
    "$(kill -0 "$MX_PID" 2>/dev/null && echo alive)" alive
expect_grep "redis recovery is logged" "$WORK/mxswitch.log" \
    "redis: 127.0.0.1:$RPORT db 0 is reachable again"

stop_mxswitch "mxswitch exits cleanly on SIGTERM"

# on_error = default: an invalid value routes by routing.default instead.
write_conf "$WORK/mx2.conf" 'on_error = "default";' 'max_recipients = 3;'
rcli SET mxswitch:domain:bad.test remotely
: >"$WORK/mxswitch.log"
start_mxswitch "$WORK/mx2.conf" "$MPORT" || fail "mxswitch restarts" "-"
check_mt "on_error default: invalid value routes by the default" <<'EOF'
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
    'lookup failed .*using routing.default none'
rcli SET mxswitch:domain:remote.test remote
check_mt "max_recipients: the extra recipients get 452 4.5.3; MAIL resets" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <r1@remote.test>
rcpt <a@b@c.test>
rcpt <r2@remote.test>
rcpt <r3@local.test>
rcpt <r4@remote.test>
rcpt <r5@remote.test>
eom
mail <sender@client.test>
rcpt <r6@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <r1@remote.test>: continue
rcpt <a@b@c.test>: reply 451 4.1.3 Recipient address not understood by the router
rcpt <r2@remote.test>: continue
rcpt <r3@local.test>: continue
rcpt <r4@remote.test>: reply 452 4.5.3 Too many recipients
rcpt <r5@remote.test>: reply 452 4.5.3 Too many recipients
delrcpt <r1@remote.test>
addrcpt_par <r1+mx-remote@remote.test> ORCPT=rfc822;r1@remote.test
delrcpt <r2@remote.test>
addrcpt_par <r2+mx-remote@remote.test> ORCPT=rfc822;r2@remote.test
eom: continue
mail: continue
rcpt <r6@remote.test>: continue
delrcpt <r6@remote.test>
addrcpt_par <r6+mx-remote@remote.test> ORCPT=rfc822;r6@remote.test
eom: continue
EOF
expect_eq "max_recipients: logged once per message" \
    "$(grep -c 'more than milter.max_recipients (3)' "$WORK/mxswitch.log")" 1
stop_mxswitch "mxswitch (on_error default) exits cleanly"
finish
