#!/bin/bash
# test_postfix_modes - the auto and backup modes end to end through a real
# Postfix 3.7 (pf_lib.sh: private network namespace, dnsmasq, smtp-sink
# exchangers on 127.0.0.2x:25, virtual(8) maildirs), wired by hand to
# mxswitch's socket maps and milter (pf_wire).  This Postfix is
# mx.hosting.test, 127.0.0.1 (its inet_interfaces, which is how it knows
# itself in MX lists).
#
# auto: a domain whose MX is this host lands in its mailbox here (also a
# relay_domains domain, through the transport map's local answer); a
# domain whose MX is elsewhere goes there, as it was addressed.  backup: mail goes to the higher-preference MX;
# while that MX is down or refuses, it stays queued here: not bounced, not
# delivered locally; once the MX is back it is delivered there.
T_NAME=test_postfix_modes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

PF_DNS=(
    --host-record=mx.hosting.test,127.0.0.1
    --host-record=mx.remote.test,127.0.0.21
    --host-record=mx.primary.test,127.0.0.22
    --mx-host=autolocal.test,mx.hosting.test,10
    --mx-host=autorelay.test,mx.hosting.test,10
    --mx-host=autoremote.test,mx.remote.test,10
    --mx-host=backup.test,mx.primary.test,10
    --mx-host=backup.test,mx.hosting.test,20
    --mx-host=autobackup.test,mx.primary.test,10
    --mx-host=autobackup.test,mx.hosting.test,20
)
pf_net_up || abort "private network and DNS"
pf_sink remote 127.0.0.21 || abort "sink remote"
pf_sink primary 127.0.0.22 || abort "sink primary"

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
rset autolocal.test auto
rset autorelay.test Auto
rset autoremote.test auto
rset backup.test backup
rset autobackup.test auto

cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { local_addresses = ["127.0.0.1"]; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

# Each domain is hosted here too (a mailbox for every user), so without
# mxswitch all of them but the relay domains would be delivered locally.
pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = autolocal.test autoremote.test backup.test
relay_domains = autorelay.test autobackup.test
CF
cat >"$PF_ETC/vmailbox" <<MB
alice@autolocal.test autolocal.test/alice/
bob@autoremote.test autoremote.test/bob/
dave@autorelay.test autorelay.test/dave/
carol@backup.test backup.test/carol/
MB
# Wired before the start: a reload lets the first message race the old
# smtpd processes.
pf_wire "$WORK/mx.conf" 8891 8893 || abort "postfix wiring"
pf_start || abort "postfix starts"
L=$WORK/mxswitch.log
M=$WORK/pf/maillog

# auto.
SUBJECT=a1 smtp_send sender@client.test alice@autolocal.test \
    bob@autoremote.test dave@autorelay.test >"$WORK/a1.out"
expect_eq "auto: every recipient accepted" "$(cat "$WORK/a1.out")" \
    "RCPT <alice@autolocal.test> 250
RCPT <bob@autoremote.test> 250
RCPT <dave@autorelay.test> 250
DATA 250"
pf_wait_queue 20 || fail "auto: queue drains" "mail left in the queue"
expect_eq "auto: MX is this host: in the local mailbox, at no exchanger" \
    "$(maildir_count autolocal.test/alice a1)/$(sink_rcpts remote a1 | grep -c alice)$(sink_count primary a1)" \
    "1/00"
expect_eq "auto: MX elsewhere: at that MX, untagged, not in the mailbox here" \
    "$(sink_rcpts remote a1)/$(maildir_count autoremote.test/bob a1)" \
    "<bob@autoremote.test> ORCPT=rfc822;bob@autoremote.test/0"
expect_eq "auto: relay domain whose MX is this host: local mailbox" \
    "$(maildir_count autorelay.test/dave a1)" 1
expect_grep "auto: the milter decided the relay domain local from DNS evidence" "$L" \
    'rcpt=<dave@autorelay.test> domain=autorelay.test mode=local source=dns .*action=local '
expect_grep "auto: the transport map sent the relay domain to the local transport" "$L" \
    'socketmap: transport dave@autorelay.test -> OK virtual: \(domain autorelay.test mode local action local from dns '
expect_grep "auto: the milter decided the MX-elsewhere domain remote" "$L" \
    'rcpt=<bob@autoremote.test> domain=autoremote.test mode=remote source=dns .*action=remote '
expect_grep "auto: the transport map sent it to the remote transport" "$L" \
    'socketmap: transport bob@autoremote.test -> OK smtp: \(domain autoremote.test mode remote action remote from dns '
SMAP=127.0.0.1:8893
expect_eq "the rcpt map: untrusted clients are refused a remote domain, verified for a backup one" \
    "$(smap_ask rcpt bob@autoremote.test carol@backup.test alice@autolocal.test |
        cut -c1-12 | tr '\n' '|')" \
    "OK 550 5.7.1|OK reject_un|NOTFOUND|"

# auto: a user that exists only at the remote provider is accepted
# (socketmap) and goes there.
SUBJECT=a2 smtp_send sender@client.test newbie@autoremote.test \
    ghost@autolocal.test >"$WORK/a2.out"
pf_wait_queue 20
expect_eq "auto: unknown user of a remote domain accepted, of a local one not" \
    "$(cat "$WORK/a2.out")" "RCPT <newbie@autoremote.test> 250
RCPT <ghost@autolocal.test> 550
DATA 250"
expect_eq "auto: and delivered to the remote MX" "$(sink_count remote a2)" 1

# backup, with the higher-preference MX up.
SUBJECT=b1 smtp_send sender@client.test carol@backup.test \
    erin@autobackup.test >/dev/null
pf_wait_queue 20 || fail "backup: queue drains" "mail left in the queue"
expect_eq "backup: both recipients went to the higher-preference MX, untagged" \
    "$(sink_rcpts primary b1 | cut -d' ' -f1 | tr '\n' ' ')" \
    "<carol@backup.test> <erin@autobackup.test> "
expect_eq "backup: nothing in the local mailbox" \
    "$(maildir_count backup.test/carol b1)" 0
expect_grep "backup: auto found this server at preference 20" "$L" \
    'rcpt=<erin@autobackup.test> domain=autobackup.test mode=backup source=dns .*action=remote \(.*MX 10 mx.primary.test \[127.0.0.22\], 20 mx.hosting.test \[127.0.0.1 \(this server: 127.0.0.1\)\]'

# stop_sink NAME - stop an exchanger
stop_sink() {
    local v="SINK_PID_$1"
    kill "${!v}"
    wait "${!v}" 2>/dev/null
    untrack "${!v}"
}
# deferred_for RCPT REASON-REGEX - count of deferrals of RCPT in the log
deferred_for() {
    grep -E "to=<$1>.*status=deferred \($2" "$M" | wc -l
}
queued() { postqueue -c "$PF_ETC" -p 2>/dev/null | grep -c "$1"; }

# backup, with the higher-preference MX down: queued here.
stop_sink primary
SUBJECT=b2 smtp_send sender@client.test carol@backup.test \
    erin@autobackup.test >"$WORK/b2.out"
expect_eq "backup, MX down: accepted from the client" \
    "$(tail -n 1 "$WORK/b2.out")" "DATA 250"
two_deferrals() {
    pf_flush
    echo "$(($(deferred_for 'carol@backup.test' 'connect to mx.primary.test\[127.0.0.22\]:25: Connection refused') >= 2))"
}
poll_for 1 100 two_deferrals
expect_eq "backup, MX down: Postfix defers, tries again, and defers again" \
    "$GOT" 1
expect_eq "backup, MX down: both are in the queue (postqueue -p)" \
    "$(queued 'carol@backup.test')/$(queued 'erin@autobackup.test')" \
    "1/1"
expect_eq "backup, MX down: nothing delivered locally or bounced" \
    "$(maildir_count backup.test/carol b2)/$(grep -c -e 'status=bounced' -e 'sender non-delivery notification' "$M")" \
    "0/0"
expect_eq "backup, MX down: Postfix never tried itself (lower MX skipped)" \
    "$(grep -c -e '127.0.0.1\]:25' -e 'loops back to myself' "$M")" 0

# The higher-preference MX refuses (4xx at RCPT): still queued.
pf_sink primary 127.0.0.22 -r RCPT || abort "sink primary (refusing)"
refused() {
    pf_flush
    deferred_for 'carol@backup.test' 'host mx.primary.test\[127.0.0.22\] said: 4' |
        awk '{print ($1 >= 1)}'
}
poll_for 1 100 refused
expect_eq "backup, MX refuses with 4xx: deferred again" "$GOT" 1
expect_eq "backup, MX refuses: still queued, not local, not bounced" \
    "$(queued 'carol@backup.test')/$(maildir_count backup.test/carol b2)/$(grep -c 'status=bounced' "$M")" \
    "1/0/0"

# The higher-preference MX is back: delivered there, once.
stop_sink primary
pf_sink primary 127.0.0.22 || abort "sink primary (back)"
pf_flush
pf_wait_queue 30 || fail "backup, MX back: queue drains" "mail left in the queue"
expect_eq "backup, MX back: both delivered to it once, untagged" \
    "$(sink_rcpts primary b2 | cut -d' ' -f1 | tr '\n' ' ')" \
    "<carol@backup.test> <erin@autobackup.test> "
expect_eq "backup, MX back: and never locally" \
    "$(maildir_count backup.test/carol b2)" 0

expect_eq "no tag of the old design in the exchangers, maildirs or maillog" \
    "$(pf_tagged_files)" ""

pf_stop
stop_mxswitch "mxswitch exits cleanly"
finish
