#!/bin/bash
# test_sendmail - end to end through a real Sendmail 8.17 (Debian 12's
# sendmail-bin, unpacked, never installed: see sm_lib.sh), wired with
# scripts/mxswitch-sendmail-setup as a user would; a real redis-server and
# mxswitch; dnsmasq serving the MX records; smtp-sink exchangers on
# 127.0.0.2x:25; a local mailer that files each copy per user.  Everything
# runs in a private network namespace (see pf_lib.sh).
T_NAME=test_sendmail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"
. "$(dirname "$0")/sm_lib.sh"

PF_DNS=(
    --host-record=mx.hosting.test,127.0.0.1
    --host-record=hosting.test,127.0.0.1
    --mx-host=remote.test,mx.remote.test,10
    --host-record=mx.remote.test,127.0.0.21
    --mx-host=unknown.test,mx.unknown.test,10
    --host-record=mx.unknown.test,127.0.0.22
    --mx-host=fresh.test,mx.unknown.test,10
    --mx-host=relayed.test,mx.relayed.test,10
    --host-record=mx.relayed.test,127.0.0.25
    --mx-host=routed.test,mx.routed.test,10
    --host-record=mx.routed.test,127.0.0.26
    --mx-host=selfmx.test,mx.hosting.test,10
)
pf_net_up || abort "private network and DNS"
# routed: the MX of routed.test; mailertable sends routed.test to "table"
for s in remote:21 unknown:22 relayed:25 routed:26 table:27; do
    pf_sink "${s%:*}" "127.0.0.${s#*:}" || abort "sink ${s%:*}"
done

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
set_keys() {
    rset local.test local
    rset remote.test remote
    rset relayed.test local
    rset routed.test remote
}
set_keys

cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
cache: { ttl = 3600; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

sm_unpack "$WORK/smroot" || abort "sendmail unpacked from the Debian packages"
# local.test and remote.test are both hosted here (class w); relayed.test is
# a relay domain (DNS MX); routed.test has a mailertable route.
sm_make <<'MC' || abort "sendmail config" "$(tail -n 5 "$WORK/sm/start.log")"
LOCAL_DOMAIN(`local.test remote.test')dnl
RELAY_DOMAIN(`relayed.test')dnl
MC
printf 'routed.test\tesmtp:[127.0.0.27]\n' >"$SM_DIR/mailertable"
printf 'info: alice\n' >>"$SM_DIR/aliases"
sm_makemap mailertable && "$SM_BIN" -C "$SM_CF" -bi >/dev/null 2>&1 ||
    abort "sendmail maps"
cp "$SM_MC" "$WORK/sendmail.mc.orig"
cp "$SM_CF" "$WORK/sendmail.cf.orig"

setup() {
    MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --mc "$SM_MC" \
        --cf "$SM_CF" --cf-dir "$SM_CFDIR" --config "$WORK/mx.conf" "$@"
}

# The delimiter check: only "+" can work with Sendmail's rules.
setup -t >"$WORK/check.log" 2>&1
expect_eq "-t accepts the default delimiter" "$?" 0
sed 's/^redis:/routing: { delimiter = "-"; };\nredis:/' "$WORK/mx.conf" \
    >"$WORK/mx-dash.conf"
MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup -t --mc "$SM_MC" \
    --config "$WORK/mx-dash.conf" >"$WORK/check-dash.log" 2>&1
expect_eq "-t refuses delimiter '-'" "$?" 1
expect_grep "-t says why: + is a Sendmail operator" "$WORK/check-dash.log" \
    "operator character"

# Look first, then apply, as a postmaster would.
setup --dry-run >"$WORK/dry.log" 2>&1
expect_eq "--dry-run changes neither the .mc nor the .cf" \
    "$(cmp -s "$SM_MC" "$WORK/sendmail.mc.orig" && cmp -s "$SM_CF" "$WORK/sendmail.cf.orig" && echo same)" same
expect_grep "--dry-run prints the milter line" "$WORK/dry.log" \
    "^\+INPUT_MAIL_FILTER\(\`mxswitch', \`S=inet:8891@127.0.0.1, F=T"
setup >"$WORK/setup.log" 2>&1
expect_eq "setup succeeds" "$?" 0
expect_eq "setup put one block into the .mc" \
    "$(grep -c '^dnl # BEGIN mxswitch' "$SM_MC")/$(grep -c '^dnl # END mxswitch' "$SM_MC")" 1/1
expect_grep "the .cf has the milter with F=T" "$SM_CF" \
    '^Xmxswitch, S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:20s;E:1m'
expect_grep "the .cf asks for the RCPT macros" "$SM_CF" \
    '^O Milter.macros.envrcpt=\{rcpt_mailer\}, \{rcpt_host\}, \{rcpt_addr\}, i'
cp "$SM_MC" "$WORK/mc.after"
cp "$SM_CF" "$WORK/cf.after"
setup >>"$WORK/setup.log" 2>&1
expect_eq "setup is idempotent: a second run changes neither file" \
    "$(cmp -s "$SM_MC" "$WORK/mc.after" && cmp -s "$SM_CF" "$WORK/cf.after" && echo same)" same
# How ruleset 0 resolves the tags (sendmail -bt, the address test mode).
bt() { printf '3,0 %s\n' "$1" | "$SM_BIN" -C "$SM_CF" -bt 2>/dev/null |
    sed -n 's/^parse *returns: //p'; }
expect_eq "rules: remote tag of a class-w domain -> esmtp to the domain, untagged" \
    "$(bt bob+mx-remote@remote.test)" '$# esmtp $@ remote . test $: bob < @ remote . test . >'
expect_eq "rules: local tag of a relay domain -> local mailer, untagged" \
    "$(bt dave+mx-local@relayed.test)" '$# local $: dave'
sm_start || abort "sendmail starts"

# s1: local, remote (hosted here too: class w) and a foreign domain with no
# key in one message: each copy in its place once, no tag on the wire.
SUBJECT=s1 smtp_send sender@client.test alice@local.test \
    "bob@remote.test NOTIFY=SUCCESS,FAILURE" carol@unknown.test \
    >"$WORK/s1.out"
expect_eq "s1: every recipient accepted" "$(cat "$WORK/s1.out")" \
    "RCPT <alice@local.test> 250
RCPT <bob@remote.test> 250
RCPT <carol@unknown.test> 250
DATA 250"
sm_wait_queue 20 || fail "s1: queue drains" "mail left in the queue"
expect_eq "s1: local recipient delivered here once" "$(sm_count alice s1)" 1
expect_eq "s1: remote recipient not delivered here" "$(sm_count bob s1)" 0
expect_eq "s1: remote recipient at the domain's MX once" \
    "$(sink_count remote s1)" 1
expect_eq "s1: the MX saw no tag, the client's NOTIFY and an ORCPT" \
    "$(sink_rcpts remote s1)" \
    "<bob@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@remote.test"
expect_eq "s1: foreign domain with no key goes to its own MX, untouched" \
    "$(sink_rcpts unknown s1 | cut -d' ' -f1)/$(sink_count unknown s1)" \
    "<carol@unknown.test>/1"
expect_eq "s1: no tag anywhere on the wire" \
    "$(grep -rl 'mx-remote\|mx-local' "$WORK/sink" | wc -l)" 0

# s2: a toggle between two messages, no restart of anything.
SUBJECT=s2a smtp_send sender@client.test bob@remote.test >/dev/null
sm_wait_queue 20
rset remote.test local
SUBJECT=s2b smtp_send sender@client.test bob@remote.test >/dev/null
sm_wait_queue 20
expect_eq "s2: before the toggle: at the MX" \
    "$(sink_count remote s2a)/$(sm_count bob s2a)" 1/0
expect_eq "s2: after SET local: delivered here" \
    "$(sink_count remote s2b)/$(sm_count bob s2b)" 0/1
rset remote.test remote

# s3: a remote decision beats aliases and mailertable routes; local mode
# for a relay domain is delivered here through the local tag.
SUBJECT=s3 smtp_send sender@client.test info@remote.test eve@routed.test \
    dave@relayed.test >/dev/null
sm_wait_queue 20
expect_eq "s3: aliased remote recipient reaches the MX, the alias target nothing" \
    "$(sink_rcpts remote s3 | cut -d' ' -f1)/$(sm_count alice s3)" \
    "<info@remote.test>/0"
expect_eq "s3: remote mode overrides the mailertable route" \
    "$(sink_rcpts routed s3 | cut -d' ' -f1)/$(sink_count table s3)" \
    "<eve@routed.test>/0"
expect_eq "s3: local mode for a relay domain: delivered here, not relayed" \
    "$(sm_count dave s3)/$(sink_count relayed s3)" 1/0

# s4: mail from this server's own command line, through the MSP
# (submit.cf) and so through the MTA's milters: -t and -bs.
submit_t() {
    printf 'From: <www@hosting.test>\nTo: <bob@remote.test>\nSubject: %s\n\nbody\n' \
        "$1" | sm_submit -f www@hosting.test -t
}
submit_bs() {
    # Sendmail rejects a client that talks before each reply: pace it.
    local l
    for l in 'EHLO localhost' 'MAIL FROM:<www@hosting.test>' \
        'RCPT TO:<bob@remote.test>' DATA "Subject: $1"$'\r\n\r\nbody\r\n.' QUIT; do
        sleep 0.2
        printf '%s\r\n' "$l"
    done | sm_submit -bs >"$WORK/bs-$1.out" 2>&1
}
submit_t s4a
submit_bs s4b
sm_wait_queue 20
rset remote.test local
submit_t s4c
submit_bs s4d
sm_wait_queue 20
rset remote.test remote
expect_eq "s4: sendmail -t to a remote domain: at the MX, untagged" \
    "$(sink_rcpts remote s4a | cut -d' ' -f1)/$(sm_count bob s4a)" \
    "<bob@remote.test>/0"
expect_eq "s4: sendmail -bs to a remote domain: at the MX, untagged" \
    "$(sink_rcpts remote s4b | cut -d' ' -f1)/$(sm_count bob s4b)" \
    "<bob@remote.test>/0"
expect_eq "s4: after the toggle both are delivered here" \
    "$(sink_count remote s4c)$(sink_count remote s4d)/$(sm_count bob s4c)$(sm_count bob s4d)" \
    "00/11"

# s5: class-w domains share one user namespace, and Sendmail's delrcpt of
# bob@remote.test also drops bob@local.test of the same message: mxswitch
# adds it back.
SUBJECT=s5 smtp_send sender@client.test bob@local.test bob@remote.test \
    >/dev/null
sm_wait_queue 20
expect_eq "s5: same user in a local and a remote class-w domain: one copy each" \
    "$(sm_count bob s5)/$(sink_count remote s5)" 1/1

expect_grep "s5: the re-add is logged" "$WORK/mxswitch.log" \
    'rcpt=<bob@local.test> action=re-add'

# s9: remote mode for a domain whose MX is this server: Sendmail cannot
# deliver it remotely ("MX list points back"); mxswitch warns, once.
rset selfmx.test remote
SUBJECT=s9 smtp_send sender@client.test zoe@selfmx.test >/dev/null
SUBJECT=s9b smtp_send sender@client.test zoe@selfmx.test >/dev/null
sm_wait_queue 20
expect_eq "s9: mxswitch warns that the domain's MX is this server, once" \
    "$(grep -c 'domain selfmx.test is in remote or backup mode, but its best MX is this server (MX 10 mx.hosting.test \[127.0.0.1 (this server: 127.0.0.1)\]' "$WORK/mxswitch.log")" 1

# s6: Redis stopped: a recipient whose domain is not cached gets 4xx at
# RCPT; after Redis is back the retry is accepted.
stop_pid "$REDIS_PID"
SUBJECT=s6a smtp_send sender@client.test eve@fresh.test >"$WORK/s6a.out"
expect_eq "s6: Redis down: RCPT gets 451" "$(cat "$WORK/s6a.out")" \
    "RCPT <eve@fresh.test> 451"
start_redis 6379
set_keys
s6_retry() { SUBJECT=s6a smtp_send sender@client.test eve@fresh.test; }
poll_for "RCPT <eve@fresh.test> 250
DATA 250" 30 s6_retry
sm_wait_queue 20
expect_eq "s6: Redis back: the retry is accepted and delivered once" \
    "$GOT/$(sink_count unknown s6a)" "RCPT <eve@fresh.test> 250
DATA 250/1"

# s7: mxswitch stopped: Sendmail answers 4xx (F=T), accepts nothing.
stop_mxswitch "mxswitch stops for the outage test"
SMTP_VERBOSE=1 SUBJECT=s7 smtp_send sender@client.test bob@remote.test \
    alice@local.test >"$WORK/s7.out"
expect_eq "s7: mxswitch down: a 4xx and nothing accepted" \
    "$(grep -c ' 4[0-9][0-9]' "$WORK/s7.out" | sed 's/^[1-9][0-9]*$/4xx/')/$(grep -c -e '^DATA 2' -e ' 2[0-9][0-9]' "$WORK/s7.out")" \
    "4xx/0"
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts"
SUBJECT=s7 smtp_send sender@client.test bob@remote.test alice@local.test \
    >/dev/null
sm_wait_queue 20
expect_eq "s7: after restart the retry lands where the modes say, once" \
    "$(sink_count remote s7)/$(sm_count bob s7)/$(sm_count alice s7)" 1/0/1

# s8: undo: both files as before, the tag is routed no more.
setup --undo >>"$WORK/setup.log" 2>&1
expect_eq "s8: --undo succeeds" "$?" 0
expect_eq "s8: .mc and .cf are the originals again" \
    "$(cmp -s "$SM_MC" "$WORK/sendmail.mc.orig" && cmp -s "$SM_CF" "$WORK/sendmail.cf.orig" && echo same)" same
sm_restart || abort "sendmail restarts"
SUBJECT=s8 smtp_send sender@client.test bob@remote.test >/dev/null
sm_wait_queue 20
expect_eq "s8: without mxswitch a class-w domain is delivered here again" \
    "$(sink_count remote s8)/$(sm_count bob s8)" 0/1

sm_stop
stop_mxswitch "mxswitch exits cleanly"
finish
