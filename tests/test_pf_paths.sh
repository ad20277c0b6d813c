#!/bin/bash
# test_pf_paths - every Postfix delivery path follows the switch.
#
# The design (docs/design.md) decides at delivery: Postfix asks mxswitch
# through socketmap tables (transport_maps, virtual_alias_maps first,
# check_recipient_access in smtpd_relay_restrictions) at every delivery
# attempt, so mail that never passes the milter at receipt must follow the
# mode too: virtual aliases, bounces, content_filter reinjection, an smtpd
# without the milter, mail deferred across a flip, postsuper -r, mail to a
# domain whose best MX is this server, a backup MX's relayed mail, and
# mail queued while Redis or mxswitch are away.
#
# Postfix is wired by hand with postconf (not with the setup script) in a
# private instance: real Postfix 3.7, redis-server, dnsmasq, smtp-sink
# exchangers and a small python3 exchanger that refuses one user, all in a
# private network namespace (pf_lib.sh).  Run as root.
T_NAME=test_pf_paths
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"
# A server that hangs up mid-dialogue fails a check, not the whole test.
trap '' PIPE

MAILLOG=$WORK/pf/maillog
PF_DNS=(
    --host-record=mx.hosting.test,127.0.0.1
    --mx-host=local.test,mx.hosting.test,10
    --mx-host=remote.test,mx.remote.test,10
    --host-record=mx.remote.test,127.0.0.21
    --mx-host=self.test,mx.hosting.test,10
    --mx-host=cold.test,mx.hosting.test,10
    $(pf_backup_dns bk.test 127.0.0.30)
)
pf_net_up || abort "private network and DNS"
pf_sink remote 127.0.0.21 || abort "sink remote"

# bk.test's better MX: answers RCPT 550 5.1.1 for nobody@bk.test and 250
# otherwise, and keeps each message in $WORK/sink/bk/ as smtp-sink does.
pf_responder bk 127.0.0.30 mx.bk.test nobody@bk.test ||
    abort "bk.test's better MX"

# smtpc.py SRC PORT FROM [--data SUBJECT] RCPT... - a client from address
# SRC (outside mynetworks unless 127.0.0.1); one line per RCPT:
# "RCPT <addr> CODE TEXT", and "DATA CODE" when something was accepted.
cat >"$WORK/smtpc.py" <<'PY'
import smtplib, sys
src, port, frm = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args, subject = sys.argv[4:], None
if args and args[0] == "--data":
    subject, args = args[1], args[2:]
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0), timeout=60)
s.ehlo("client.test")
code, msg = s.mail(frm)
if code // 100 != 2:
    print("MAIL %d %s" % (code, msg.decode()))
ok = False
for r in args:
    code, msg = s.rcpt(r)
    print("RCPT <%s> %d %s" % (r, code, msg.decode()))
    ok = ok or code // 100 == 2
if ok and subject is not None:
    code, msg = s.data("From: <%s>\r\nSubject: %s\r\n\r\nbody of %s\r\n"
                       % (frm, subject, subject))
    print("DATA %d" % code)
s.quit()
PY
untrusted() { python3 "$WORK/smtpc.py" 127.0.0.5 "${PF_SMTP#*:}" "$@" 2>&1; }

# smap MAP KEY - what the socket map server answers (netstring payload)
cat >"$WORK/smap.py" <<'PY'
import socket, sys
req = (sys.argv[2] + " " + sys.argv[3]).encode()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"%d:%s," % (len(req), req))
buf = b""
while True:
    c = s.recv(4096)
    if not c:
        break
    buf += c
    head, _, rest = buf.partition(b":")
    if rest and len(rest) > int(head):
        break
head, _, rest = buf.partition(b":")
print(rest[:int(head)].decode(errors="replace"))
PY
SMAP_PORT=8893
smap() { python3 "$WORK/smap.py" "$SMAP_PORT" "$1" "$2" 2>&1; }

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
set_keys() {
    rset local.test local
    rset remote.test remote
    rset self.test remote
    rset cold.test remote
    rset bk.test backup
}
set_keys

# A short ttl with long stale answers: a Redis outage is met at once and
# served from the stale cache (part 9).  This server is 127.0.0.1 only:
# the exchangers on 127.0.0.2x/30 are not "here".
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { local_addresses = ["127.0.0.1"]; };
cache: { ttl = 1; stale_ttl = 3600; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
CONF
# The instance's own transports, as the setup script would write them.
transports "$WORK"
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"
wait_port "$SMAP_PORT" 5 || abort "socket map server listens"

pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = local.test remote.test self.test cold.test
relay_domains = bk.test
CF
cat >"$PF_ETC/vmailbox" <<MB
alice@local.test local.test/alice/
bob@local.test local.test/bob/
bob@remote.test remote.test/bob/
carol@self.test self.test/carol/
dave@cold.test cold.test/dave/
MB
# sales: an alias into a remote-mode domain; info: to a user who exists
# only at the provider; lost: to a user nobody has (a bounce).
cat >"$PF_ETC/valias" <<VA
sales@local.test bob@remote.test
info@local.test newbie@remote.test
lost@local.test ghost@local.test
VA
# Wired by hand, as docs/design.md says (pf_valias: never asked for a
# bare domain).  Postfix 3.7.11 refuses "default_action = tempfail"
# with spaces in a milter's { } settings ("fatal: malformed option:
# missing '=' after attribute name"): no spaces.
SM=inet:127.0.0.1:$SMAP_PORT
postconf -c "$PF_ETC" -e \
    "transport_maps = socketmap:$SM:transport" \
    "virtual_alias_maps = $(pf_valias "$SM"), texthash:$PF_ETC/valias" \
    "smtpd_milters = { inet:127.0.0.1:8891, default_action=tempfail }" \
    "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_recipient_access socketmap:$SM:rcpt, reject_unauth_destination" \
    "mynetworks = 127.0.0.1/32"
# Part 3: a listener on :2526 whose mail goes through a content filter
# (the filter transport, an SMTP client) to a reinjection smtpd on :10025
# with the usual overrides (no milters, no unknown-recipient checks).
# Part 4: an smtpd on :2527 with no milter at all.
postconf -c "$PF_ETC" -Me \
    "127.0.0.1:2526/inet = 127.0.0.1:2526 inet n - n - - smtpd -o content_filter=filter:[127.0.0.1]:10025" \
    "filter/unix = filter unix - - n - - smtp -o smtp_send_xforward_command=yes" \
    "127.0.0.1:10025/inet = 127.0.0.1:10025 inet n - n - - smtpd -o content_filter= -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters" \
    "127.0.0.1:2527/inet = 127.0.0.1:2527 inet n - n - - smtpd -o smtpd_milters="
pf_start || abort "postfix starts"
for p in 2526 2527 10025; do
    wait_port "$p" 10 || abort "postfix listens on $p"
done
expect_eq "the socket map answers the transport table" \
    "$(smap transport bob@remote.test)" "OK smtp:"

# on_port PORT - smtp_send to another of our listeners
on_port() {
    local PF_SMTP=127.0.0.1:$1
    shift
    smtp_send "$@"
}
# send_local SUBJECT FROM RCPT... - by sendmail(1): pickup, no smtpd, no milter
send_local() {
    local s=$1 f=$2
    shift 2
    printf 'From: <%s>\nSubject: %s\n\nbody of %s\n' "$f" "$s" "$s" |
        sendmail -C "$PF_ETC" -f "$f" "$@"
}
# where SUBJECT - "sink/maildirs": copies at remote.test's MX and in any
# maildir here
where() {
    echo "$(sink_count remote "$1")/$(grep -rlsx "Subject: $1" "$PF_MAIL" | wc -l)"
}
# log_for RCPT - the maillog's delivery lines for a recipient
log_for() { grep -F "to=<$1>" "$MAILLOG"; }
# qmgr_pid - the instance's queue manager (a child of its master)
qmgr_pid() { ps --ppid "$PF_PID" -o pid=,comm= | awk '$2 == "qmgr" { print $1 }'; }
# pf_reload - postfix reload, and wait until it applies: "postfix reload"
# returns before the master has read main.cf again, and the old queue
# manager delivers with the old settings until it exits
pf_reload() {
    local before i
    before=$(qmgr_pid)
    postfix -c "$PF_ETC" reload >>"$WORK/pf/start.log" 2>&1
    for ((i = 0; i < 100; i++)); do
        case $(qmgr_pid) in "" | "$before") sleep 0.1 ;; *) return 0 ;; esac
    done
    fail "postfix reload applies" "the queue manager $before did not restart"
}

# --- 1: virtual aliases into a remote-mode domain -------------------------
SUBJECT=p1 smtp_send sender@client.test sales@local.test >"$WORK/p1.out"
SUBJECT=p1b smtp_send sender@client.test info@local.test >>"$WORK/p1.out"
expect_eq "1: both aliases accepted" "$(cat "$WORK/p1.out")" \
    "RCPT <sales@local.test> 250
DATA 250
RCPT <info@local.test> 250
DATA 250"
pf_wait_queue 20 || fail "1: queue drains" "mail left in the queue"
expect_eq "1: alias into a remote-mode domain: at remote.test's MX once, no maildir" \
    "$(where p1)" 1/0
expect_eq "1: the MX saw RCPT <bob@remote.test>" \
    "$(sink_rcpts remote p1 | cut -d' ' -f1)" "<bob@remote.test>"
expect_eq "1: alias to a user only at the provider: delivered to the MX" \
    "$(where p1b)/$(sink_rcpts remote p1b | cut -d' ' -f1)" "1/0/<newbie@remote.test>"
expect_eq "1: ... not bounced as an unknown user" \
    "$(log_for newbie@remote.test | grep -c -e 'status=bounced' -e 'unknown user')" 0

# --- 2: a bounce to a remote-mode sender ---------------------------------
# By sendmail(1) (pickup: no RCPT check) and by SMTP from a trusted client
# through an alias to a user nobody has: both accepted, both bounce.
send_local p2 sender@remote.test ghost@local.test
SUBJECT=p2b smtp_send sender@remote.test lost@local.test >"$WORK/p2.out"
expect_eq "2: the SMTP message to the dead-end alias is accepted" \
    "$(cat "$WORK/p2.out")" "RCPT <lost@local.test> 250
DATA 250"
pf_wait_queue 20 || fail "2: queue drains" "mail left in the queue"
expect_eq "2: both bounced (unknown user)" \
    "$(log_for ghost@local.test | grep -c 'status=bounced')" 2
expect_eq "2: the notices went to remote.test's MX, for sender@remote.test" \
    "$(sink_rcpts remote p2 | cut -d' ' -f1)/$(sink_rcpts remote p2b | cut -d' ' -f1)" \
    "<sender@remote.test>/<sender@remote.test>"
expect_eq "2: they came from <> (non-delivery notices)" \
    "$(grep -lsx 'Subject: p2b\?' "$WORK"/sink/remote/* | xargs grep -h '^X-Mail-Args:' | cut -d' ' -f1-2 | sort -u)" \
    "X-Mail-Args: <>"
expect_eq "2: no notice in a maildir here" \
    "$(grep -rlsx -e 'Subject: p2' -e 'Subject: p2b' "$PF_MAIL" | wc -l)" 0

# --- 3: content_filter reinjection ----------------------------------------
SUBJECT=p3 on_port 2526 sender@client.test bob@remote.test alice@local.test \
    >"$WORK/p3.out"
expect_eq "3: accepted by the filtered listener" "$(cat "$WORK/p3.out")" \
    "RCPT <bob@remote.test> 250
RCPT <alice@local.test> 250
DATA 250"
pf_wait_queue 20 || fail "3: queue drains" "mail left in the queue"
expect_grep "3: the message went through the filter to :10025" "$MAILLOG" \
    'to=<bob@remote.test>, relay=127.0.0.1\[127.0.0.1\]:10025, .*status=sent'
expect_eq "3: reinjected remote-mode copy at the MX once, not in a maildir" \
    "$(sink_count remote p3)/$(maildir_count remote.test/bob p3)" 1/0
expect_eq "3: the local-mode copy in its maildir once" \
    "$(maildir_count local.test/alice p3)" 1

# --- 4: an smtpd with no milter -------------------------------------------
SUBJECT=p4 on_port 2527 sender@client.test bob@remote.test >"$WORK/p4.out"
expect_eq "4: accepted by the milter-less smtpd" "$(cat "$WORK/p4.out")" \
    "RCPT <bob@remote.test> 250
DATA 250"
pf_wait_queue 20 || fail "4: queue drains" "mail left in the queue"
expect_eq "4: still to remote.test's MX, once" "$(where p4)" 1/0
expect_eq "4: an untrusted client there is still refused for the remote-mode domain" \
    "$(python3 "$WORK/smtpc.py" 127.0.0.5 2527 x@client.test bob@remote.test | cut -d' ' -f1-4)" \
    "RCPT <bob@remote.test> 550 5.7.1"

# --- 8: untrusted and trusted clients at RCPT -----------------------------
untrusted x@client.test bob@remote.test alice@local.test >"$WORK/p8.out"
expect_eq "8: untrusted client, remote-mode domain: 550 5.7.1" \
    "$(grep '<bob@remote.test>' "$WORK/p8.out" | cut -d' ' -f3-4)" "550 5.7.1"
expect_eq "8: untrusted client, local-mode domain: 250" \
    "$(grep '<alice@local.test>' "$WORK/p8.out" | cut -d' ' -f3)" 250
SUBJECT=p8 smtp_send sender@client.test bob@remote.test >"$WORK/p8t.out"
expect_eq "8: trusted client, remote-mode domain: 250" "$(cat "$WORK/p8t.out")" \
    "RCPT <bob@remote.test> 250
DATA 250"

# --- 7: backup MX ---------------------------------------------------------
expect_eq "7: the rcpt table asks Postfix to verify a backup domain's users" \
    "$(smap rcpt nobody@bk.test)" "OK reject_unverified_recipient"
# The first RCPT waits for the verify probe (up to 3 polls of 3 s); should
# the probe take longer, smtpd says 450 "in progress": the client retries.
for ((i = 0; i < 5; i++)); do
    untrusted x@client.test --data p7 nobody@bk.test real@bk.test >"$WORK/p7.out"
    grep -q '^DATA 250' "$WORK/p7.out" && break
    grep -q '^RCPT <real@bk.test> 450 ' "$WORK/p7.out" || break
done
expect_eq "7: untrusted RCPT to a user the better MX refuses: not accepted" \
    "$(grep '<nobody@bk.test>' "$WORK/p7.out" | cut -d' ' -f3 | grep -c '^[45]')" 1
expect_eq "7: untrusted RCPT to a user the better MX knows: 250" \
    "$(grep '<real@bk.test>' "$WORK/p7.out" | cut -d' ' -f3)/$(grep -c '^DATA 250' "$WORK/p7.out")" \
    250/1
pf_wait_queue 20 || fail "7: queue drains" "mail left in the queue"
expect_eq "7: relayed to the better MX (MX 10), for real@bk.test only" \
    "$(sink_rcpts bk p7 | cut -d' ' -f1 | tr '\n' ' ')" "<real@bk.test> "
expect_grep "7: delivered to mx.bk.test" "$MAILLOG" \
    'to=<real@bk.test>, relay=mx.bk.test\[127.0.0.30\]:25, .*status=sent'

# --- 6: self-MX: remote mode while the best MX is this server ------------
# The daemon learns that in the background (DNS): wait for its answer.
poll_for hold 50 sh -c "python3 '$WORK/smap.py' $SMAP_PORT transport carol@self.test | sed 's/^OK retry:4\.4\.6.*/hold/'"
expect_eq "6: transport answer for a self-MX remote domain is retry:4.4.6" \
    "$GOT" hold
SMTP_VERBOSE=1 smtp_send sender@client.test carol@self.test >"$WORK/p6.out"
expect_eq "6: trusted RCPT gets 450 4.4.6" \
    "$(cut -d' ' -f1-3,5 "$WORK/p6.out")" "RCPT <carol@self.test> 450 4.4.6"
expect_eq "6: untrusted RCPT gets 450 4.4.6" \
    "$(untrusted x@client.test carol@self.test | cut -d' ' -f1-4)" \
    "RCPT <carol@self.test> 450 4.4.6"
# A domain nobody asked about before, by sendmail(1) (no milter): the
# first transport answer must not send it to smtp: (loops back to myself,
# a bounce).
send_local p6c sender@client.test dave@cold.test

# --- 5 + 6: mail deferred across a flip -----------------------------------
# self.test local, its local delivery deferred (defer_transports): carol's
# message is queued while local.  Then self.test goes remote (self-MX).
rset self.test local
postconf -c "$PF_ETC" -e defer_transports=virtual
pf_reload
poll_for "OK virtual:" 50 smap transport carol@self.test
send_local p6q sender@client.test carol@self.test
poll_for 1 100 sh -c "grep -F 'to=<carol@self.test>' '$MAILLOG' | grep -c 'status=deferred (deferred transport)'"
expect_eq "6: queued while local (delivery deferred)" "$GOT" 1
P6Q=$(log_for carol@self.test | sed -n 's/.*: \([0-9A-F]*\): to=.*(deferred transport)$/\1/p' | head -n 1)
rset self.test remote
postconf -c "$PF_ETC" -X defer_transports
pf_reload
# remote.test's MX stops; a message to it is deferred.
kill "$SINK_PID_remote"
wait "$SINK_PID_remote" 2>/dev/null
untrack "$SINK_PID_remote"
SUBJECT=p5 smtp_send sender@client.test bob@remote.test >"$WORK/p5.out"
expect_eq "5: accepted while remote.test's MX is down" "$(cat "$WORK/p5.out")" \
    "RCPT <bob@remote.test> 250
DATA 250"
poll_for 1 100 sh -c "grep -F 'to=<bob@remote.test>' '$MAILLOG' | grep -c 'relay=none, .*status=deferred (connect to mx.remote.test'"
expect_eq "5: deferred (the MX refuses connections)" "$GOT" 1
rset remote.test local
# The resolver client may keep the pair's old answer for 30 s: flush every
# 5 s for up to 40 s, until the message is in the local maildir.
t5=$SECONDS
for ((i = 0; i < 8; i++)); do
    pf_flush
    poll_for 1 25 maildir_count remote.test/bob p5 && break
done
echo "     (5: delivered locally $((SECONDS - t5)) s after the flip)"
expect_eq "5: after the flip to local and a flush: in the local maildir" "$GOT" 1
expect_eq "5: once" "$(grep -rlsx 'Subject: p5' "$PF_MAIL" "$WORK/sink" | wc -l)" 1
# By now carol's message has been tried many times as remote, self-MX.
# Three delivery attempts as remote (self-MX), a few seconds apart.
poll_for 3 100 sh -c "grep -F ': ${P6Q:-none}: to=<carol@self.test>' '$MAILLOG' | grep -c 'dsn=4\.4\.6, status=deferred' | awk '{ print (\$1 >= 3 ? 3 : \$1) }'"
expect_eq "6: queued mail to the self-MX domain is deferred with dsn=4.4.6, try after try" \
    "$GOT" 3
expect_eq "6: ... and never bounced, never delivered" \
    "$(grep -F ": ${P6Q:-none}: to=<carol@self.test>" "$MAILLOG" | grep -c -e status=bounced -e status=sent)/$(maildir_count self.test/carol p6q)" 0/0
expect_eq "6: the cold self-MX domain's first message is not bounced" \
    "$(log_for dave@cold.test | grep -c status=bounced)/$(maildir_count cold.test/dave p6c)" 0/0
expect_grep "6: ... it waits with dsn=4.4.6" "$MAILLOG" \
    'to=<dave@cold.test>, .*dsn=4\.4\.6, status=deferred'
# Out of the queue, so the drains below mean the rest.
for r in carol@self.test dave@cold.test; do
    log_for "$r" | sed -n 's/.*: \([0-9A-F]*\): to=.*/\1/p' | sort -u
done | postsuper -c "$PF_ETC" -d - >/dev/null 2>&1

# postsuper -r: a message held while remote.test is local, then remote.test
# goes remote again and the held message is requeued.
pf_sink remote 127.0.0.21 || abort "sink remote restarts"
postconf -c "$PF_ETC" -e defer_transports=virtual
pf_reload
send_local p5r sender@client.test bob@remote.test
poll_for 1 100 sh -c "grep -F 'to=<bob@remote.test>' '$MAILLOG' | grep -c 'status=deferred (deferred transport)'"
expect_eq "5: queued while remote.test is local (delivery deferred)" "$GOT" 1
postsuper -c "$PF_ETC" -h ALL >/dev/null 2>&1
postconf -c "$PF_ETC" -X defer_transports
pf_reload
rset remote.test remote
poll_for "OK smtp:" 50 smap transport bob@remote.test
postsuper -c "$PF_ETC" -r ALL >/dev/null 2>&1
postkick -c "$PF_ETC" public pickup W
pf_wait_queue 20 || fail "5: queue drains after postsuper -r" "mail left in the queue"
expect_eq "5: postsuper -r after the flip back: at the MX, not in the maildir" \
    "$(where p5r)" 1/0

# --- 9: Redis down, then mxswitch down, with mail being sent -------------
# Each message goes to one remote-mode and one local-mode recipient, by
# SMTP (milter) and by sendmail(1) (pickup, cleanup and qmgr only).
P9=0
: >"$WORK/p9.sent"
send9() {
    local phase=$1 out
    P9=$((P9 + 1))
    out=$(SUBJECT=p9-$P9 smtp_send sender@client.test bob@remote.test alice@local.test)
    echo "p9-$P9 smtp $phase $(echo "$out" | cut -d' ' -f1-3 | tr '\n' ' ')" >>"$WORK/p9.sent"
    P9=$((P9 + 1))
    send_local "p9-$P9" sender@client.test bob@remote.test alice@local.test
    echo "p9-$P9 sendmail $phase rc=$?" >>"$WORK/p9.sent"
}
send9 normal
redis-cli -p 6379 SHUTDOWN NOSAVE >/dev/null 2>&1
wait "$REDIS_PID" 2>/dev/null
untrack "$REDIS_PID"
sleep 1.5 # past cache.ttl: answers now come from the stale cache
send9 redis-down
send9 redis-down
expect_eq "9: Redis down: the socket map still answers from its cache" \
    "$(smap transport bob@remote.test)/$(smap transport alice@local.test)" \
    "OK smtp:/OK virtual:"
# A domain never looked up has no stale answer: 4xx, never 250 or 5xx.
SUBJECT=p9f smtp_send sender@client.test eve@fresh.test >"$WORK/p9f.out"
expect_eq "9: Redis down: a domain not in the cache gets 4xx at RCPT" \
    "$(cut -d' ' -f1-2 "$WORK/p9f.out")/$(cut -d' ' -f3 "$WORK/p9f.out" | cut -c1)" \
    "RCPT <eve@fresh.test>/4"
stop_mxswitch "9: mxswitch stops for the outage"
send9 both-down
send9 both-down
expect_eq "9: mxswitch down: SMTP mail is refused with 4xx, not accepted" \
    "$(grep ' smtp both-down ' "$WORK/p9.sent" | grep -c 'MAIL 451')" 2
sleep 2 # pickup, cleanup and qmgr meet the outage
start_redis 6379 || abort "redis restarts"
set_keys
send9 mxswitch-down
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts"
send9 back
expect_eq "9: every SMTP RCPT after an accepted MAIL got 250 or 4xx" \
    "$(grep ' smtp ' "$WORK/p9.sent" | grep -v ' MAIL ' | grep -o 'RCPT <[^>]*> [0-9]*' | grep -vc -e ' 250$' -e ' 4[0-9][0-9]$')" 0
pf_flush
postkick -c "$PF_ETC" public pickup W
pf_wait_queue 60 || fail "9: queue drains after both return" "mail left in the queue"
# Each recipient: accepted (SMTP RCPT and DATA 250, or any sendmail(1)
# submission) -> exactly one copy, at the MX for bob@remote.test, in
# alice's maildir for alice@local.test; refused -> no copy anywhere.
: >"$WORK/p9.bad"
n_acc=0
while read -r s via phase rest; do
    for r in bob@remote.test alice@local.test; do
        acc=0
        [ "$via" = sendmail ] && [ "$rest" = rc=0 ] && acc=1
        [ "$via" = smtp ] && echo "$rest" | grep -q "RCPT <$r> 250 .*DATA 250" && acc=1
        n_acc=$((n_acc + acc))
        got="$(sink_count remote "$s")/$(maildir_count local.test/alice "$s")/$(maildir_count remote.test/bob "$s")"
        case $r/$acc in
        bob*/1) want=1/$(maildir_count local.test/alice "$s")/0 ;;
        bob*/0) want=0/$(maildir_count local.test/alice "$s")/0 ;;
        alice*/1) want=$(sink_count remote "$s")/1/0 ;;
        alice*/0) want=$(sink_count remote "$s")/0/0 ;;
        esac
        [ "$got" = "$want" ] || echo "$s $via $phase $r accepted=$acc got=$got want=$want" >>"$WORK/p9.bad"
    done
done <"$WORK/p9.sent"
expect_eq "9: each recipient where its mode says, once, or nowhere if refused ($n_acc accepted)" \
    "$(cat "$WORK/p9.bad")" ""
expect_eq "9: the sendmail(1) submissions made during the outages were all accepted" \
    "$(grep -c ' sendmail .* rc=0' "$WORK/p9.sent")" "$(grep -c ' sendmail ' "$WORK/p9.sent")"
expect_eq "9: SMTP mail was accepted while only Redis was down (stale answers)" \
    "$(grep ' smtp redis-down ' "$WORK/p9.sent" | grep -c 'DATA 250')" 2
expect_eq "9: no local-mode copy at the MX" \
    "$(grep -lsx 'Subject: p9-[0-9]*' "$WORK"/sink/remote/* | xargs -r grep -h '^X-Rcpt-Args:' | grep -c 'local.test')" 0
expect_grep "9: stale answers served while Redis was away" "$WORK/mxswitch.log" \
    'source=stale'
cp "$MAILLOG" "$WORK/maillog.p9"

# --- 11: a quoted local part goes to the exchanger exactly as written ----
# (the tagging design sent it as <"john doe+mx-remote"@remote.test>)
rset remote.test remote
expect_eq "11: a quoted local part of a remote-mode domain is accepted" \
    "$(python3 "$WORK/smtpc.py" 127.0.0.1 "${PF_SMTP#*:}" x@client.test \
        --data p11 '"john doe"@remote.test' |
        sed 's/\(> [0-9]*\) .*/\1/' | tr '\n' '|')" \
    'RCPT <"john doe"@remote.test> 250|DATA 250|'
pf_wait_queue 30 || fail "11: the queue drains" "mail left in the queue"
expect_eq "11: the exchanger saw the quoted address unchanged" \
    "$(sink_rcpts remote p11 | sed 's/>.*/>/')" '<"john doe"@remote.test>'

# --- everywhere: nothing bounced but the two intended notices; no tag -----
expect_eq "nothing bounced but part 2's two messages" \
    "$(grep 'status=bounced' "$MAILLOG" | grep -vc 'to=<ghost@local.test>')" 0
expect_eq "10: no mx-remote / mx-local tag in sinks, maildirs or maillog" \
    "$(grep -rlE 'mx-(remote|local)' "$WORK/sink" "$PF_MAIL" "$MAILLOG" | wc -l)" 0

pf_stop
stop_mxswitch "mxswitch exits cleanly"
finish
