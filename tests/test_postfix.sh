#!/bin/bash
# test_postfix - end to end through a real Postfix 3.7: its own config and
# queue, wired with scripts/mxswitch-postfix-setup as a user would; a real
# redis-server and mxswitch; dnsmasq serving the MX records; smtp-sink
# exchangers on 127.0.0.2x:25; virtual(8) maildirs for local delivery.
# Everything runs in a private network namespace (see pf_lib.sh).
T_NAME=test_postfix
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"
REPO=$(pwd)

PF_DNS=(
    --host-record=mx.hosting.test,127.0.0.1
    --mx-host=remote.test,mx.remote.test,10
    --host-record=mx.remote.test,127.0.0.21
    --mx-host=unknown.test,mx.unknown.test,10
    --host-record=mx.unknown.test,127.0.0.22
    --mx-host=twomx.test,mx1.twomx.test,10
    --host-record=mx1.twomx.test,127.0.0.23
    --mx-host=twomx.test,mx2.twomx.test,20
    --host-record=mx2.twomx.test,127.0.0.24
    --mx-host=relayed.test,mx.relayed.test,10
    --host-record=mx.relayed.test,127.0.0.25
    --mx-host=aliased.test,mx.aliased.test,10
    --host-record=mx.aliased.test,127.0.0.26
    --mx-host=fresh.test,mx.unknown.test,10
    --host-record=mx.mixed.test,127.0.0.27
)
for i in 0 1 2 3 4 5 6 7 8 9; do
    PF_DNS+=(--mx-host=m$i.test,mx.mixed.test,10)
done
pf_net_up || abort "private network and DNS"
for s in remote:21 unknown:22 twomx1:23 twomx2:24 relayed:25 aliased:26 \
    mixed:27 smarthost:28; do
    pf_sink "${s%:*}" "127.0.0.${s#*:}" || abort "sink ${s%:*}"
done

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
set_keys() {
    rset local.test local
    rset remote.test remote
    rset twomx.test remote
    rset aliased.test remote
    rset relayed.test local
    for i in 0 1 2 3; do rset m$i.test local; done
    for i in 4 5 6 7; do rset m$i.test remote; done
}
set_keys

cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
cache: { ttl = 3600; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = local.test remote.test twomx.test aliased.test
  m0.test m1.test m2.test m3.test m4.test m5.test m6.test m7.test m8.test
  m9.test
relay_domains = relayed.test
CF
cat >"$PF_ETC/vmailbox" <<MB
alice@local.test local.test/alice/
bob@local.test local.test/bob/
bob@remote.test remote.test/bob/
carol@twomx.test twomx.test/carol/
info@aliased.test aliased.test/info/
dave@relayed.test relayed.test/dave/
MB
for i in 0 1 2 3 4 5 6 7 8 9; do
    for u in 0 1 2 3 4; do
        echo "u$u@m$i.test m$i.test/u$u/" >>"$PF_ETC/vmailbox"
    done
done
printf '%s\n' "info@aliased.test alice@local.test" \
    "@aliased.test alice@local.test" >"$PF_ETC/valias"
mkdir -p "$PF_ETC.orig"
cp "$PF_ETC/main.cf" "$PF_ETC/master.cf" "$PF_ETC.orig/"
pf_start || abort "postfix starts"

# Wire it the way a postmaster would: look first, then apply.
MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$PF_ETC" \
    --config "$WORK/mx.conf" --dry-run >"$WORK/dry.log" 2>&1
expect_eq "--dry-run changes neither main.cf nor writes tables" \
    "$(cmp -s "$PF_ETC/main.cf" "$PF_ETC.orig/main.cf" && echo same)/$(ls "$PF_ETC/mxswitch" 2>/dev/null | wc -l)" \
    same/0
expect_grep "--dry-run prints the postconf changes" "$WORK/dry.log" \
    'postconf -c .* -e smtpd_milters.*=.*inet:127.0.0.1:8891'
MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$PF_ETC" \
    --config "$WORK/mx.conf" >"$WORK/setup.log" 2>&1
expect_eq "setup script succeeds on a running instance" "$?" 0
expect_grep "setup says it set recipient_delimiter" "$WORK/setup.log" \
    "recipient_delimiter was empty: setting it to '\+'"
expect_eq "setup appended the milter to smtpd_milters" \
    "$(postconf -c "$PF_ETC" -h smtpd_milters)" "inet:127.0.0.1:8891"
expect_eq "setup put mxswitch's socketmap after its own pcre table" \
    "$(postconf -c "$PF_ETC" -h virtual_alias_maps | sed "s|$PF_ETC|ETC|g")" \
    "pcre:ETC/mxswitch/virtual.pcre, socketmap:inet:127.0.0.1:8893:mxswitch, texthash:ETC/valias"
expect_eq "setup made the milter's failure a tempfail" \
    "$(postconf -c "$PF_ETC" -h milter_default_action)" tempfail
cp "$PF_ETC/main.cf" "$WORK/main.cf.after-setup"
MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$PF_ETC" \
    --config "$WORK/mx.conf" >>"$WORK/setup.log" 2>&1
expect_eq "setup is idempotent: a second run changes nothing" \
    "$(cmp -s "$PF_ETC/main.cf" "$WORK/main.cf.after-setup" && echo same)" same

# 1 + 9: local, remote and a foreign domain with no key in one message.
SUBJECT=s1 smtp_send sender@client.test alice@local.test \
    "bob@remote.test NOTIFY=SUCCESS,FAILURE" carol@unknown.test \
    >"$WORK/s1.out"
expect_eq "s1: every recipient accepted" "$(cat "$WORK/s1.out")" \
    "RCPT <alice@local.test> 250
RCPT <bob@remote.test> 250
RCPT <carol@unknown.test> 250
DATA 250"
pf_wait_queue 20 || fail "s1: queue drains" "mail left in the queue"
expect_eq "s1: local recipient in its maildir once" \
    "$(maildir_count local.test/alice s1)" 1
expect_eq "s1: local copy has no tag in Delivered-To" \
    "$(grep -h '^Delivered-To:' "$PF_MAIL"/local.test/alice/new/* | sort -u)" \
    "Delivered-To: alice@local.test"
expect_eq "s1: remote recipient not in its local maildir" \
    "$(maildir_count remote.test/bob s1)" 0
expect_eq "s1: remote recipient at the domain's MX once" \
    "$(sink_count remote s1)" 1
expect_eq "s1: the MX saw no tag, the client's NOTIFY and an ORCPT" \
    "$(sink_rcpts remote s1)" \
    "<bob@remote.test> ORCPT=rfc822;bob@remote.test NOTIFY=SUCCESS,FAILURE"
expect_eq "s9: foreign domain with no key goes to its own MX untouched" \
    "$(sink_rcpts unknown s1)" "<carol@unknown.test> ORCPT=rfc822;carol@unknown.test"
expect_grep "s9: the milter left the foreign recipient alone" \
    "$WORK/mxswitch.log" 'rcpt=<carol@unknown.test> domain=unknown.test mode=none .*action=keep'

# 2: a toggle between two messages, no reload, no restart.
SUBJECT=s2a smtp_send sender@client.test bob@remote.test >/dev/null
pf_wait_queue 20
rset remote.test local
SUBJECT=s2b smtp_send sender@client.test bob@remote.test >/dev/null
pf_wait_queue 20
expect_eq "s2: before the toggle: at the MX" \
    "$(sink_count remote s2a)/$(maildir_count remote.test/bob s2a)" 1/0
expect_eq "s2: after SET local: in the local maildir" \
    "$(sink_count remote s2b)/$(maildir_count remote.test/bob s2b)" 0/1
rset remote.test remote

# 3: mail from the server's own sendmail(1) (pickup, non_smtpd_milters).
send_local() {
    printf 'From: <www@hosting.test>\nSubject: %s\n\nbody\n' "$1" |
        sendmail -C "$PF_ETC" -f www@hosting.test "$2"
}
send_local s3a bob@remote.test
pf_wait_queue 20
rset remote.test local
send_local s3b bob@remote.test
pf_wait_queue 20
expect_eq "s3: sendmail(1) mail to a remote domain goes to the MX" \
    "$(sink_count remote s3a)/$(maildir_count remote.test/bob s3a)" 1/0
expect_eq "s3: after the toggle, sendmail(1) mail lands locally" \
    "$(sink_count remote s3b)/$(maildir_count remote.test/bob s3b)" 0/1
expect_eq "s3: the MX saw the untagged address" "$(sink_rcpts remote s3a)" \
    "<bob@remote.test> ORCPT=rfc822;bob@remote.test"
rset remote.test remote

# 10: a remote-mode domain's user with no mailbox here (exists only at the
# provider) is accepted and goes to the MX, by SMTP and by sendmail(1);
# unknown users of local-mode domains are still rejected.
SUBJECT=s10 smtp_send sender@client.test newbie@remote.test \
    ghost@local.test >"$WORK/s10.out"
send_local s10b newbie@remote.test
pf_wait_queue 20
expect_eq "s10: SMTP: the remote-only user is accepted, a local unknown is not" \
    "$(cat "$WORK/s10.out")" "RCPT <newbie@remote.test> 250
RCPT <ghost@local.test> 550
DATA 250"
expect_eq "s10: SMTP copy reached the MX, untagged" "$(sink_rcpts remote s10)" \
    "<newbie@remote.test> ORCPT=rfc822;newbie@remote.test"
expect_eq "s10: sendmail(1) copy reached the MX, untagged" \
    "$(sink_rcpts remote s10b)" "<newbie@remote.test> ORCPT=rfc822;newbie@remote.test"
expect_eq "s10: nothing bounced" \
    "$(grep -c 'status=bounced' "$WORK/pf/maillog")" 0
rset remote.test local
SUBJECT=s10c smtp_send sender@client.test newbie@remote.test >"$WORK/s10c.out"
expect_eq "s10: once the domain is local again, the unknown user is rejected" \
    "$(cut -d' ' -f1-3 "$WORK/s10c.out")" "RCPT <newbie@remote.test> 550"
rset remote.test remote

# 4: two MX hosts: the best one takes it; when it refuses, the next one.
SUBJECT=s4a smtp_send sender@client.test carol@twomx.test >/dev/null
pf_wait_queue 20
expect_eq "s4: remote mail goes to the best MX" \
    "$(sink_count twomx1 s4a)/$(sink_count twomx2 s4a)" 1/0
kill "$SINK_PID_twomx1"
wait "$SINK_PID_twomx1" 2>/dev/null
untrack "$SINK_PID_twomx1"
pf_sink twomx1 127.0.0.23 -r CONNECT
SUBJECT=s4b smtp_send sender@client.test carol@twomx.test >/dev/null
pf_wait_queue 20
expect_eq "s4: when the best MX refuses, the next one gets it" \
    "$(sink_count twomx1 s4b)/$(sink_count twomx2 s4b)" 0/1
expect_eq "s4: carol's local mailbox got neither" \
    "$(maildir_count twomx.test/carol s4a)$(maildir_count twomx.test/carol s4b)" 00

# 5: remote mode beats local aliases (exact and catch-all); local mode for
# a relay_domains domain is delivered here through the local tag.
SUBJECT=s5 smtp_send sender@client.test info@aliased.test zed@aliased.test \
    dave@relayed.test >/dev/null
pf_wait_queue 20
expect_eq "s5: aliased remote recipients reach the domain's MX, untagged" \
    "$(sink_rcpts aliased s5 | cut -d' ' -f1 | tr '\n' ' ')" \
    "<info@aliased.test> <zed@aliased.test> "
expect_eq "s5: the local alias target got nothing" \
    "$(maildir_count local.test/alice s5)" 0
expect_eq "s5: local mode for a relay domain: delivered here, not relayed" \
    "$(maildir_count relayed.test/dave s5)/$(sink_count relayed s5)" 1/0
expect_grep "s5: the relay domain got the local tag" "$WORK/mxswitch.log" \
    'rcpt=<dave@relayed.test> .*action=rewrite new=<dave\+mx-local@relayed.test>'

# 8: 50 recipients over 10 domains with mixed modes in one message.
rcpts=()
for i in 0 1 2 3 4 5 6 7 8 9; do
    for u in 0 1 2 3 4; do rcpts+=("u$u@m$i.test"); done
done
SUBJECT=s8 smtp_send sender@client.test "${rcpts[@]}" >"$WORK/s8.out"
pf_wait_queue 30
expect_eq "s8: all 50 recipients accepted" "$(grep -c ' 250$' "$WORK/s8.out")" 51
local_ok=0
for i in 0 1 2 3 8 9; do
    for u in 0 1 2 3 4; do
        [ "$(maildir_count "m$i.test/u$u" s8)" = 1 ] && local_ok=$((local_ok + 1))
    done
done
expect_eq "s8: 30 local and no-key recipients in their maildirs once" \
    "$local_ok" 30
expect_eq "s8: no remote-mode recipient has a local copy" \
    "$(for i in 4 5 6 7; do for u in 0 1 2 3 4; do maildir_count "m$i.test/u$u" s8; done; done | sort -u)" 0
expect_eq "s8: the 20 remote-mode recipients reached the MX untagged" \
    "$(sink_rcpts mixed s8 | grep -c '^<u[0-4]@m[4-7].test> ORCPT=rfc822;u[0-4]@m[4-7].test$')" 20
expect_eq "s8: and nothing else reached the MX" \
    "$(sink_rcpts mixed s8 | wc -l)" 20

# relayhost: remote mode leaves through the relayhost by default (the way
# all outbound mail leaves such a server); --remote-nexthop mx goes direct.
setup() {
    MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$PF_ETC" \
        --config "$WORK/mx.conf" "$@" >>"$WORK/setup.log" 2>&1
}
postconf -c "$PF_ETC" -e 'relayhost = [127.0.0.28]'
setup
SUBJECT=srh1 smtp_send sender@client.test bob@remote.test carol@unknown.test \
    >/dev/null
pf_wait_queue 20
expect_eq "relayhost: remote mode goes through the relayhost, untagged" \
    "$(sink_rcpts smarthost srh1 | cut -d' ' -f1 | tr '\n' ' ')/$(sink_count remote srh1)" \
    "<bob@remote.test> <carol@unknown.test> /0"
setup --remote-nexthop mx
SUBJECT=srh2 smtp_send sender@client.test bob@remote.test carol@unknown.test \
    >/dev/null
pf_wait_queue 20
expect_eq "relayhost + --remote-nexthop mx: remote mode goes to the MX" \
    "$(sink_rcpts remote srh2 | cut -d' ' -f1)/$(sink_rcpts smarthost srh2 | cut -d' ' -f1)" \
    "<bob@remote.test>/<carol@unknown.test>"
postconf -c "$PF_ETC" -X relayhost
setup

# 7: Redis stopped: recipients whose domain is not cached get 4xx; after
# Redis returns the client's retry is delivered once.
stop_pid "$REDIS_PID"
SUBJECT=s7a smtp_send sender@client.test eve@fresh.test >"$WORK/s7a.out"
expect_eq "s7: Redis down: RCPT gets 451 4.3.0" "$(cat "$WORK/s7a.out")" \
    "RCPT <eve@fresh.test> 451"
start_redis 6379
set_keys
s7_retry() { SUBJECT=s7a smtp_send sender@client.test eve@fresh.test; }
poll_for "RCPT <eve@fresh.test> 250
DATA 250" 30 s7_retry
pf_wait_queue 20
expect_eq "s7: Redis back: the retry is accepted" "$GOT" \
    "RCPT <eve@fresh.test> 250
DATA 250"
expect_eq "s7: and delivered once" "$(sink_count unknown s7a)" 1

# 7: mxswitch stopped: Postfix answers 4xx (milter_default_action).
stop_mxswitch "mxswitch stops for the outage test"
SMTP_VERBOSE=1 SUBJECT=s7b smtp_send sender@client.test bob@remote.test \
    alice@local.test >"$WORK/s7b.out"
expect_eq "s7: mxswitch down: MAIL gets 451 4.7.1, nothing is accepted" \
    "$(head -n 1 "$WORK/s7b.out" | cut -d' ' -f2-4)/$(grep -c -e '^DATA' -e ' 2[0-9][0-9] ' "$WORK/s7b.out")" \
    "451 451 4.7.1/0"
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts"
SUBJECT=s7b smtp_send sender@client.test bob@remote.test alice@local.test \
    >/dev/null
pf_wait_queue 20
expect_eq "s7: after restart the retry lands where the modes say, once" \
    "$(sink_count remote s7b)/$(maildir_count remote.test/bob s7b)/$(maildir_count local.test/alice s7b)" \
    1/0/1

# 6: local delivery through Dovecot LMTP: no tag reaches Dovecot.  Its
# recipient_delimiter is empty, so a tag would show as another user.
D=$WORK/dovecot
mkdir -p "$D/run" "$D/mail"
chown 5000:5000 "$D/mail"
cat >"$D/dovecot.conf" <<DC
base_dir = $D/run
state_dir = $D/run
log_path = $D/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
recipient_delimiter =
lmtp_save_to_detail_mailbox = no
mail_location = maildir:$D/mail/%d/%n
first_valid_uid = 1000
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=5000 gid=5000 home=$D/mail/%d/%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = 24
  }
}
DC
dovecot -F -c "$D/dovecot.conf" 2>>"$D/dovecot.log" &
track $!
DOVECOT_PID=$!
wait_port_ip 127.0.0.1 24 10 || fail "dovecot starts" "see $D/dovecot.log"
postconf -c "$PF_ETC" -e 'virtual_transport = lmtp:inet:127.0.0.1:24'
setup
expect_eq "s6: setup picks the instance's LMTP transport for the local tag" \
    "$(grep -c 'mx-local@\[^@\]+\$/ lmtp:inet:127.0.0.1:24$' "$PF_ETC/mxswitch/transport.pcre")" 1
SUBJECT=s6 smtp_send sender@client.test alice@local.test dave@relayed.test \
    >/dev/null
pf_wait_queue 20
expect_eq "s6: Dovecot stored each local copy once, under the untagged user" \
    "$(grep -rlsx 'Subject: s6' "$D/mail" | grep -E '/(new|cur)/' | sed "s|$D/mail/||; s|/new/.*||" | sort | tr '\n' ' ')" \
    "local.test/alice relayed.test/dave "
expect_eq "s6: Dovecot's LMTP sessions saw untagged recipients only" \
    "$(grep -o 'lmtp([a-z]*@[a-z.]*)' "$D/dovecot.log" | sort -u | tr '\n' ' ')/$(grep -c 'mx-local' "$D/dovecot.log")" \
    "lmtp(alice@local.test) lmtp(dave@relayed.test) /0"
expect_grep "s6: the local-tagged copy went over LMTP, tag stripped on the wire" \
    "$WORK/pf/maillog" \
    'to=<dave\+mx-local@relayed.test>, relay=127.0.0.1\[127.0.0.1\]:24, .*250 2.0.0 <dave@relayed.test>'
kill "$DOVECOT_PID"
wait "$DOVECOT_PID" 2>/dev/null
untrack "$DOVECOT_PID"
postconf -c "$PF_ETC" -X virtual_transport
setup

# 11: undo: Postfix routes as before setup.
MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$PF_ETC" \
    --undo >>"$WORK/setup.log" 2>&1
expect_eq "s11: --undo succeeds" "$?" 0
expect_eq "s11: main.cf is the original again" \
    "$(diff <(postconf -c "$PF_ETC" -n) <(postconf -c "$PF_ETC.orig" -n 2>/dev/null || true) >/dev/null; echo $?)" 0
expect_eq "s11: no milter any more" "$(postconf -c "$PF_ETC" -h smtpd_milters)" ""
SUBJECT=s11 smtp_send sender@client.test bob@remote.test >/dev/null
pf_wait_queue 20
expect_eq "s11: remote-mode domain is delivered locally again (no milter)" \
    "$(sink_count remote s11)/$(maildir_count remote.test/bob s11)" 0/1

pf_stop
stop_mxswitch "mxswitch exits cleanly"
finish
