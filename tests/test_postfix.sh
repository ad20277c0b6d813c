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
)
abort() { fail "$1" "${2:-see $WORK}"; finish; exit 1; }
pf_net_up || abort "private network and DNS"
for s in remote:21 unknown:22 twomx1:23 twomx2:24 relayed:25 aliased:26; do
    pf_sink "${s%:*}" "127.0.0.${s#*:}" || abort "sink ${s%:*}"
done

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
rset local.test local
rset remote.test remote
rset twomx.test remote
rset aliased.test remote
rset relayed.test local

cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
cache: { ttl = 3600; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = local.test remote.test twomx.test aliased.test
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
echo "info@aliased.test alice@local.test" >"$PF_ETC/valias"
pf_start || abort "postfix starts"

# Wire it the way a postmaster would.
MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$PF_ETC" \
    --config "$WORK/mx.conf" >"$WORK/setup.log" 2>&1
expect_eq "setup script succeeds on a running instance" "$?" 0
expect_grep "setup says it set recipient_delimiter" "$WORK/setup.log" \
    "recipient_delimiter was empty: setting it to '\+'"
expect_eq "setup appended the milter to smtpd_milters" \
    "$(postconf -c "$PF_ETC" -h smtpd_milters)" "inet:127.0.0.1:8891"
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

pf_stop
stop_mxswitch "mxswitch exits cleanly"
finish
