#!/bin/bash
# test_pf_addrkeys - per-address keys and dry run end to end through a real
# Postfix 3.7 (private instance and network, see pf_lib.sh), wired by hand
# to mxswitch's socket maps (pf_wire): one address of a local domain goes
# to the domain's MX with its +detail, one address of a remote domain stays
# here, the valias map makes a remote-only address known; the recipients
# reach the exchangers as they were written, with no tag; in dry run every
# map answers NOTFOUND and the same mail is delivered as without mxswitch.
T_NAME=test_pf_addrkeys
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

PF_DNS=(
    --host-record=mx.hosting.test,127.0.0.1
    --mx-host=remote.test,mx.remote.test,10
    --host-record=mx.remote.test,127.0.0.21
    --mx-host=local.test,mx.local.test,10
    --host-record=mx.local.test,127.0.0.22
)
pf_net_up || abort "private network and DNS"
pf_sink remote 127.0.0.21 || abort "sink remote"
pf_sink localmx 127.0.0.22 || abort "sink localmx"

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "$1" "$2" >/dev/null; }
rset mxswitch:domain:local.test local
rset mxswitch:domain:remote.test remote
rset mxswitch:address:ceo@local.test remote
rset mxswitch:address:only@local.test remote
rset mxswitch:address:stay@remote.test none

# write_conf FILE ROUTING-EXTRA
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { address_prefix = "mxswitch:address:"; $2 };
cache: { ttl = 3600; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
CONF
}
write_conf "$WORK/mx.conf" ''
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

# recipient_delimiter: ceo+news@ is ceo@'s mailbox here, with or without
# mxswitch.
pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = local.test remote.test
recipient_delimiter = +
CF
cat >"$PF_ETC/vmailbox" <<MB
alice@local.test local.test/alice/
ceo@local.test local.test/ceo/
bob@remote.test remote.test/bob/
stay@remote.test remote.test/stay/
MB
# Wired before the start: after a reload the first message can still reach
# the smtpd that answered pf_start's probe, with the old main.cf (seen: no
# milter, no socketmap, 550 for the address-only recipient).
pf_wire "$WORK/mx.conf" 8891 8893 || abort "postfix wiring"
pf_start || abort "postfix starts"
SMAP=127.0.0.1:8893
expect_eq "the transport map: the address key sends ceo+news away, stay stays" \
    "$(smap_ask transport ceo+news@local.test alice@local.test \
        stay@remote.test bob@remote.test | tr '\n' '|')" \
    "OK smtp:|OK virtual:|NOTFOUND|OK smtp:|"

A1_LINE=$(wc -l <"$WORK/mxswitch.log") # the log from a1 on
SUBJECT=a1 smtp_send sender@client.test alice@local.test \
    ceo+news@local.test bob@remote.test stay@remote.test only@local.test \
    >"$WORK/a1.out"
expect_eq "a1: every recipient accepted (only@ through the socketmap)" \
    "$(cat "$WORK/a1.out")" "RCPT <alice@local.test> 250
RCPT <ceo+news@local.test> 250
RCPT <bob@remote.test> 250
RCPT <stay@remote.test> 250
RCPT <only@local.test> 250
DATA 250"
pf_wait_queue 20 || fail "a1: queue drains" "mail left in the queue"
expect_eq "a1: the address key sent ceo+news to local.test's MX, detail kept" \
    "$(sink_rcpts localmx a1)" \
    "<ceo+news@local.test> ORCPT=rfc822;ceo+2Bnews@local.test
<only@local.test> ORCPT=rfc822;only@local.test"
expect_eq "a1: ceo has no local copy; alice (domain key) has hers" \
    "$(maildir_count local.test/ceo a1)/$(maildir_count local.test/alice a1)" \
    0/1
expect_eq "a1: address none keeps stay@remote.test here; bob goes to the MX" \
    "$(maildir_count remote.test/stay a1)/$(sink_rcpts remote a1)" \
    "1/<bob@remote.test> ORCPT=rfc822;bob@remote.test"
expect_eq "a1: nothing bounced" \
    "$(grep -c 'status=bounced' "$WORK/pf/maillog")" 0
expect_eq "a1: Postfix asked the transport map for each recipient it delivered" \
    "$(for r in alice@local.test ceo+news@local.test bob@remote.test \
        stay@remote.test only@local.test; do
        tail -n +$((A1_LINE + 1)) "$WORK/mxswitch.log" |
            grep -cF "socketmap: transport $r -> " |
            sed 's/^[1-9][0-9]*$/asked/'
    done | sort -u)" asked
stop_mxswitch "mxswitch exits cleanly"

# Dry run: Postfix delivers as without mxswitch, the log says what would be.
write_conf "$WORK/dry.conf" 'dry_run = true;'
start_mxswitch "$WORK/dry.conf" 8891 || abort "mxswitch in dry run"
SUBJECT=d1 smtp_send sender@client.test ceo+news@local.test \
    bob@remote.test only@local.test >"$WORK/d1.out"
expect_eq "d1: dry run: the remote-only address is unknown, as without mxswitch" \
    "$(cat "$WORK/d1.out")" "RCPT <ceo+news@local.test> 250
RCPT <bob@remote.test> 250
RCPT <only@local.test> 550
DATA 250"
pf_wait_queue 20 || fail "d1: queue drains" "mail left in the queue"
expect_eq "d1: dry run: no exchanger got anything" \
    "$(sink_count localmx d1)/$(sink_count remote d1)" 0/0
expect_eq "d1: dry run: both were delivered to their local mailboxes" \
    "$(maildir_count local.test/ceo d1)/$(maildir_count remote.test/bob d1)" \
    1/1
expect_grep "d1: dry run: the milter logs the remote decision, marked dry run" \
    "$WORK/mxswitch.log" \
    'rcpt=<ceo\+news@local.test> domain=local.test mode=remote source=[a-z]+ key=mxswitch:address:ceo@local.test action=remote dry_run '
expect_grep "d1: dry run: the transport map logs the OK it would have answered" \
    "$WORK/mxswitch.log" \
    'socketmap: transport ceo\+news@local.test -> dry_run would=OK smtp: '
expect_grep "d1: dry run: the valias map logs the OK it would have answered" \
    "$WORK/mxswitch.log" \
    'socketmap: valias only@local.test -> dry_run would=OK only@local.test '
SMAP=127.0.0.1:8893
expect_eq "d1: dry run: the maps answer NOTFOUND to a remote address" \
    "$(smap_ask transport ceo+news@local.test)/$(smap_ask valias only@local.test)" \
    NOTFOUND/NOTFOUND
expect_eq "no tag of the old design in the exchangers, maildirs or maillog" \
    "$(pf_tagged_files)" ""

pf_stop
stop_mxswitch "mxswitch (dry run) exits cleanly"
finish
