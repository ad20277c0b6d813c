#!/bin/bash
# test_readahead - the MTA's bytes as they come on a real socket: commands
# written together (Postfix's macros with their command), split anywhere,
# longer than the read-ahead, after pauses that hand the session to
# libmilter's pool, and a session closed with bytes unread; libmilter must
# see each command whole and in order (milter/readahead.c).
T_NAME=test_readahead
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
PROM="$WORK/stats/mxswitch.prom"
mkdir -p "$WORK/stats"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
redis-cli -p "$RPORT" SET mxswitch:domain:remote.test remote >/dev/null
redis-cli -p "$RPORT" SET mxswitch:domain:local.test local >/dev/null
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { prefix = "mxswitch:domain:"; default = "none"; };
cache: { ttl = 3600; };
stats: { prometheus_file = "$PROM"; interval = 1; };
CONF
start_mxswitch "$WORK/mx.conf" "$MPORT" ||
    { fail "mxswitch starts" "-"; finish; exit; }

# What mxswitch answers at the end of every message below: it changes no
# recipient (each recipient's decision is in its log line).
WANT_EOM='eom: continue'

check_mt "macros written with their command, as Postfix does" <<EOF
connect client.test 127.0.0.1
together 2
macro M i 4XyZq1
mail <sender@client.test>
together 2
macro R {rcpt_mailer} virtual {rcpt_host} remote.test {rcpt_addr} bob@remote.test
rcpt <bob@remote.test>
together 2
macro R {rcpt_mailer} virtual {rcpt_host} local.test {rcpt_addr} al@local.test
rcpt <al@local.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
rcpt <al@local.test>: continue
$WANT_EOM
EOF
expect_grep "macros sent together reach the decision" \
    "$WORK/mxswitch.log" '4XyZq1: rcpt=<bob@remote.test> domain=remote.test .* action=remote '
expect_grep "the second recipient of that message is decided too" \
    "$WORK/mxswitch.log" '4XyZq1: rcpt=<al@local.test> domain=local.test .* action=local '

check_mt "a command split in its length, its body, or the next command" <<EOF
split 2 30
connect client.test 127.0.0.1
split 9 30
mail <sender@client.test>
together 2
split 20 30
macro R {rcpt_addr} bob@remote.test
rcpt <bob@remote.test>
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
$WANT_EOM
EOF

# 6,000 bytes: more than one read ahead holds, in a macro sent with the
# RCPT after it, and in the RCPT's own ESMTP argument.
long=$(head -c 6000 /dev/zero | tr '\0' x)
check_mt "commands longer than the read-ahead" <<EOF
connect client.test 127.0.0.1
mail <sender@client.test>
together 2
macro R {x} $long
rcpt <bob@remote.test>
rcpt <al@local.test> X-LONG=$long
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
rcpt <al@local.test>: continue
$WANT_EOM
EOF

# Pauses longer than libmilter's 1 ms wait give the session back to its
# pool, whose poll of every waiting session must wake it for what comes
# next, and its read-ahead must carry on from there.
check_mt "pauses that hand the session to libmilter's pool" <<EOF
connect client.test 127.0.0.1
sleep 20
together 2
macro M i 4XyZq2
mail <sender@client.test>
sleep 20
together 2
macro R {rcpt_addr} bob@remote.test
rcpt <bob@remote.test>
sleep 20
eom
==>
connect: continue
mail: continue
rcpt <bob@remote.test>: continue
$WANT_EOM
EOF
expect_grep "after the pauses the recipient is decided with its queue id" \
    "$WORK/mxswitch.log" '4XyZq2: rcpt=<bob@remote.test> domain=remote.test .* action=remote '

# A session that ends (QUIT) with a command it never read in the same
# write: the next session on that descriptor must start clean.  The
# listener's accept(2) takes its descriptor number before the connection
# comes, so the session after the next one gets the number freed here.
mt_conv() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <bob@remote.test>\neom\n' |
        mtc_run | tr '\n' '|'
}
OPTNEG='\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xf7\xff'
want=$(mt_conv)
bad=0
for i in 1 2 3 4 5; do
    exec 3<>"/dev/tcp/127.0.0.1/$MPORT"
    # OPTNEG (version 6), QUIT, then a RCPT nobody will read, in one write
    printf '%b' "$OPTNEG"'\x00\x00\x00\x01Q\x00\x00\x00\x11R<evil@bad.test>\x00' >&3
    timeout 5 cat <&3 >/dev/null
    exec 3<&-
    for j in 1 2; do
        [ "$(mt_conv)" = "$want" ] || bad=$((bad + 1))
    done
done
expect_eq "a session after one closed with bytes unread starts clean" \
    "$bad of 10 wrong (first: $want)" "0 of 10 wrong (first: $want)"
expect_eq "nothing unread leaks into a session" \
    "$(grep -c 'evil@bad.test' "$WORK/mxswitch.log")" 0

# 16 conversations at once, each with its macros written together.
pids=()
for i in $(seq 16); do
    printf 'connect c%s 127.0.0.1\ntogether 2\nmacro M i Q%s\nmail <s@c.test>\ntogether 2\nmacro R {rcpt_addr} u%s@remote.test\nrcpt <u%s@remote.test>\neom\n' \
        "$i" "$i" "$i" "$i" | mtc_run >"$WORK/par.$i" &
    pids+=($!)
done
wait "${pids[@]}"
bad=0
for i in $(seq 16); do
    grep -qx "rcpt <u$i@remote.test>: continue" "$WORK/par.$i" &&
        grep -qx 'eom: continue' "$WORK/par.$i" &&
        [ "$(grep -c -e ": rcpt=<u$i@remote.test> " "$WORK/mxswitch.log")" = 1 ] &&
        grep -q " Q$i: rcpt=<u$i@remote.test> domain=remote.test .* action=remote " \
            "$WORK/mxswitch.log" || bad=$((bad + 1))
done
expect_eq "16 sessions at once each get their own recipient, with their own queue id" "$bad" 0

# saved_ok - whether the counter shows the reads above (2 or so a command)
saved_ok() {
    local n
    n=$(prom mxswitch_milter_reads_saved_total)
    if [ "${n:-0}" -gt 100 ]; then echo yes; else echo "no: ${n:-none}"; fi
}
poll_for yes 50 saved_ok
expect_eq "reads served from the read-ahead are counted" "$GOT" yes

stop_mxswitch "mxswitch exits cleanly"
finish
