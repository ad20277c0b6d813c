#!/bin/bash
# test_postfix - end to end through a real Postfix 3.7: its own config and
# queue, wired with scripts/mxswitch-postfix-setup as a user would, so that
# Postfix asks mxswitch at delivery time (socketmap tables transport,
# valias, rcpt); a real redis-server and mxswitch; dnsmasq serving the MX
# records; smtp-sink exchangers on 127.0.0.2x:25; virtual(8) maildirs for
# local delivery.  Everything runs in a private network namespace (see
# pf_lib.sh).  No recipient is ever rewritten: no tag may show anywhere.
T_NAME=test_postfix
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

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

mkdir -p "$WORK/mx"
MXCONF=$WORK/mx/mxswitch.conf
TRANSPORTS=$WORK/mx/postfix-transports
cat >"$MXCONF" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { local_addresses = ["127.0.0.1"]; };
cache: { ttl = 3600; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
CONF
SM=inet:127.0.0.1:8893

# Only 127.0.0.1 is trusted, so a client on 127.0.0.5 is "the internet".
# Another milter's braced entry must survive the setup intact (nothing
# listens there; its own default_action lets mail pass).
pf_make <<CF || abort "postfix config"
virtual_mailbox_domains = local.test remote.test twomx.test aliased.test
  m0.test m1.test m2.test m3.test m4.test m5.test m6.test m7.test m8.test
  m9.test
relay_domains = relayed.test
CF
postconf -c "$PF_ETC" -e 'mynetworks = 127.0.0.1/32' \
    'smtpd_milters = { inet:127.0.0.1:9999, default_action=accept }'
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

# setup ARGS... - the setup script on our instance; its output appended to
# $WORK/setup.log (and in OUT), its status in RC
setup() {
    OUT=$(MXSWITCH=${SETUP_MX-$MXSWITCH} scripts/mxswitch-postfix-setup \
        --config-dir "$PF_ETC" "$@" 2>&1)
    RC=$?
    printf '%s\n' "--- setup $*" "$OUT" >>"$WORK/setup.log"
    # after a reload, let the old smtpd processes finish first
    case " $* " in *" --dry-run "*) ;; *) [ "$RC" != 0 ] || sleep 2 ;; esac
}

# unchanged - "same" when main.cf is as before setup and nothing of
# mxswitch's was written
unchanged() {
    cmp -s "$PF_ETC/main.cf" "$PF_ETC.orig/main.cf" &&
        [ ! -e "$PF_ETC/mxswitch" ] && [ ! -e "$TRANSPORTS" ] &&
        [ ! -e "$PF_ETC/main.cf.mxswitch-orig" ] && echo same
}

# pf_param NAME - a main.cf parameter with the instance's dir as ETC
pf_param() { postconf -c "$PF_ETC" -h "$1" | sed "s|$PF_ETC|ETC|g"; }

# answer MAP KEY - what the running mxswitch answers Postfix for KEY
answer() { postmap -q "$2" "socketmap:$SM:$1" 2>&1; }

# send SUBJECT RCPT... - smtp_send from a sender of its own: Postfix's
# resolver caches one sender/recipient pair for 30 s, so a flip between
# two messages of the same pair would not show
send() {
    local s=$1
    shift
    SUBJECT=$s smtp_send "$s@client.test" "$@"
}

# send_local SUBJECT RCPT - the same through the server's own sendmail(1)
send_local() {
    printf 'From: <%s@hosting.test>\nSubject: %s\n\nbody\n' "$1" "$1" |
        sendmail -C "$PF_ETC" -f "$1@hosting.test" "$2"
}

# send_from IP SUBJECT RCPT... - an SMTP session from the client address
# IP (outside mynetworks when not 127.0.0.1); prints "RCPT <addr> CODE X.Y.Z"
send_from() {
    timeout 30 python3 - "$@" "${PF_SMTP%:*}" "${PF_SMTP#*:}" <<'PY'
import smtplib, sys
ip, subj, rcpts, host, port = sys.argv[1], sys.argv[2], sys.argv[3:-2], sys.argv[-2], int(sys.argv[-1])
s = smtplib.SMTP(host, port, source_address=(ip, 0), timeout=20)
s.ehlo("client.test")
s.mail(subj + "@client.test")
ok = False
for r in rcpts:
    code, msg = s.rcpt(r)
    print("RCPT <%s> %d %s" % (r, code, msg.decode().split(" ")[0]))
    ok = ok or code < 300
if ok:
    code, _ = s.data("Subject: %s\r\n\r\nbody\r\n" % subj)
    print("DATA %d" % code)
s.quit()
PY
}

# --- Refusals: each leaves everything as it was --------------------------

# Look first: a dry run needs no daemon (none runs yet).
setup --config "$MXCONF" --dry-run
expect_eq "--dry-run with mxswitch stopped succeeds" "$RC" 0
expect_eq "--dry-run changes neither main.cf nor writes any file" \
    "$(unchanged)" same
expect_grep "--dry-run says it did not probe the stopped daemon" \
    <(echo "$OUT") "dry run: not probing mxswitch at $SM"
expect_grep "--dry-run prints the transport_maps change" <(echo "$OUT") \
    "postconf -c .* -e 'transport_maps = socketmap:$SM:transport'"
expect_grep "--dry-run prints the transports file it would write" \
    <(echo "$OUT") '^remote = "smtp:";$'

setup --config "$MXCONF"
expect_eq "setup with mxswitch not answering exits 1" "$RC" 1
expect_eq "setup with mxswitch not answering changes nothing" "$(unchanged)" same
expect_grep "setup with mxswitch not answering says so" <(echo "$OUT") \
    "mxswitch does not answer on $SM"

grep -v '^socketmap' "$MXCONF" >"$WORK/mx/nosm.conf"
setup --config "$WORK/mx/nosm.conf"
expect_eq "setup refuses an empty socketmap.socket, changing nothing" \
    "$RC/$(unchanged)" 1/same
expect_grep "the refusal names socketmap.socket" <(echo "$OUT") \
    "socketmap.socket is empty"

# A config mxswitch could not start with (-t exits 3: a milter.pid_file in
# a missing directory): refused, even before the probe.
sed "s|^milter: { |milter: { pid_file = \"$WORK/nodir/mx.pid\"; |" "$MXCONF" \
    >"$WORK/mx/nostart.conf"
setup --config "$WORK/mx/nostart.conf"
expect_eq "setup refuses a config mxswitch could not start with, changing nothing" \
    "$RC/$(unchanged)" 1/same
expect_grep "the refusal gives -t's reason, naming the setting" <(echo "$OUT") \
    "milter.pid_file $WORK/nodir/mx.pid: directory $WORK/nodir: No such file"

# Postfix without the socketmap table type: the script's postconf -m
# answers without it (a wrapper first in PATH; the rest is real postconf).
mkdir -p "$WORK/nosmbin"
cat >"$WORK/nosmbin/postconf" <<'SH'
#!/bin/bash
case " $* " in *" -m "*) /usr/sbin/postconf "$@" | grep -vx socketmap ;;
*) exec /usr/sbin/postconf "$@" ;; esac
SH
chmod +x "$WORK/nosmbin/postconf"
PATH=$WORK/nosmbin:$PATH setup --config "$MXCONF"
expect_eq "setup refuses a Postfix without socketmap, changing nothing" \
    "$RC/$(unchanged)" 1/same
expect_grep "the refusal names the socketmap table type" <(echo "$OUT") \
    "no socketmap table type"

start_mxswitch "$MXCONF" 8891 || abort "mxswitch"
wait_port 8893 5 || abort "mxswitch serves the socket map" "see $WORK/mxswitch.log"

# Refusals on a copy of the instance (postconf only reads the directory).
ETC2=$WORK/pf/etc2
mkdir -p "$ETC2"
cp "$PF_ETC/main.cf" "$PF_ETC/master.cf" "$ETC2/"
postconf -c "$ETC2" -e 'smtpd_relay_restrictions = permit_mynetworks, reject'
cp "$ETC2/main.cf" "$WORK/etc2.main.cf"
OUT=$(MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$ETC2" \
    --config "$MXCONF" 2>&1)
RC=$?
expect_eq "no reject_unauth_destination: setup exits 1, main.cf unchanged" \
    "$RC/$(cmp -s "$ETC2/main.cf" "$WORK/etc2.main.cf" && echo same)/$(ls "$ETC2" | wc -l)" \
    1/same/2
expect_grep "the refusal says where the rcpt check needs to go" <(echo "$OUT") \
    "no reject_unauth_destination or defer_unauth_destination: add one"
cp "$PF_ETC/main.cf" "$ETC2/main.cf"
postconf -c "$ETC2" -Fe "$PF_SMTP/inet/chroot = y"
sed 's|inet:8893@127.0.0.1|unix:/run/mxswitch-sm.sock|' "$MXCONF" >"$WORK/mx/unix.conf"
OUT=$(MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$ETC2" \
    --config "$WORK/mx/unix.conf" 2>&1)
RC=$?
expect_eq "chrooted smtpd and a unix socket outside the queue: refused" \
    "$RC/$(cmp -s "$ETC2/main.cf" "$PF_ETC/main.cf" && echo same)" 1/same
expect_grep "the refusal says to use inet: or a socket under the queue" \
    <(echo "$OUT") "outside $PF_SPOOL, which chrooted .*$PF_SMTP/inet"
# "-" in the chroot column: Postfix's default, y while compatibility_level
# is below 1 (an upgraded main.cf), n after.
postconf -c "$ETC2" -Fe "$PF_SMTP/inet/chroot = -"
postconf -c "$ETC2" -e compatibility_level=0
cp "$ETC2/main.cf" "$WORK/etc2.main.cf"
sum_before=$(md5sum <"$ETC2/main.cf")
OUT=$(MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$ETC2" \
    --config "$WORK/mx/unix.conf" 2>&1)
RC=$?
expect_eq "chroot \"-\" at compatibility_level 0 (chrooted), a unix socket outside the queue: refused, main.cf unchanged" \
    "$RC/$([ "$(md5sum <"$ETC2/main.cf")" = "$sum_before" ] && echo same)" 1/same
expect_grep "the refusal names the service chrooted by default" \
    <(echo "$OUT") "outside $PF_SPOOL, which chrooted .*$PF_SMTP/inet.*: use an inet: socket"
postconf -c "$ETC2" -e compatibility_level=3.6
OUT=$(MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup --config-dir "$ETC2" \
    --config "$WORK/mx/unix.conf" --dry-run 2>&1)
RC=$?
expect_eq "chroot \"-\" at compatibility_level 3.6 (not chrooted): the unix socket is taken as is" \
    "$RC/$(echo "$OUT" | grep -c "socketmap:unix:/run/mxswitch-sm.sock:transport")" 0/1
# A Postfix before 3.7 (no inline regexp tables; mail_version as such a
# Postfix says it, from a wrapper first in PATH): the valias map is listed
# bare, and the script says what that costs.
mkdir -p "$WORK/oldpfbin"
cat >"$WORK/oldpfbin/postconf" <<'SH'
#!/bin/bash
case " $* " in *" mail_version "*) echo 3.6.4 ;;
*) exec /usr/sbin/postconf "$@" ;; esac
SH
chmod +x "$WORK/oldpfbin/postconf"
cp "$PF_ETC/main.cf" "$ETC2/main.cf"
OUT=$(PATH=$WORK/oldpfbin:$PATH MXSWITCH=$MXSWITCH scripts/mxswitch-postfix-setup \
    --config-dir "$ETC2" --config "$MXCONF" --dry-run 2>&1)
RC=$?
expect_eq "Postfix 3.6: the dry run lists the valias map bare" \
    "$RC/$(echo "$OUT" | grep -c "virtual_alias_maps = socketmap:$SM:valias, texthash:")" 0/1
expect_grep "Postfix 3.6: the script says the valias map will be asked for bare domains" \
    <(echo "$OUT") "Postfix 3.6.4 has no inline regexp tables .*asked for bare domains too"
# (A postfix check that fails after the change cannot be provoked from a
# valid main.cf with these parameters; that path is not tested here.)

# --- Setup ----------------------------------------------------------------

setup --config "$MXCONF"
expect_eq "setup succeeds on a running instance" "$RC" 0
expect_grep "setup ends with the done line" <(echo "$OUT") \
    "done: $PF_ETC asks mxswitch at $SM \(transport, valias, rcpt maps\), milter inet:127.0.0.1:8891; local: virtual:; remote: smtp:$"
expect_eq "setup puts the transport map first in transport_maps" \
    "$(pf_param transport_maps)" "socketmap:$SM:transport"
expect_eq "setup puts the valias map, behind its regexp, before the admin's alias maps" \
    "$(pf_param virtual_alias_maps)" "$(pf_valias "$SM"), texthash:ETC/valias"
expect_eq "setup appends the milter braced with its own tempfail, the other milter intact" \
    "$(pf_param smtpd_milters)" \
    "{ inet:127.0.0.1:9999, default_action=accept }, { inet:127.0.0.1:8891, default_action=tempfail }"
expect_eq "setup leaves the global milter_default_action and non_smtpd_milters alone" \
    "$(postconf -c "$PF_ETC" -n milter_default_action non_smtpd_milters)" ""
expect_eq "setup puts the rcpt check right before defer_unauth_destination" \
    "$(pf_param smtpd_relay_restrictions)" \
    "permit_mynetworks, permit_sasl_authenticated, check_recipient_access socketmap:$SM:rcpt, defer_unauth_destination"
expect_eq "setup leaves smtpd_recipient_restrictions alone" \
    "$(pf_param smtpd_recipient_restrictions)" "permit_mynetworks, reject_unauth_destination"
expect_eq "setup writes the instance's transports beside mxswitch.conf" \
    "$(cat "$TRANSPORTS" 2>&1)" "# written by mxswitch-postfix-setup for $PF_ETC; do not edit
local = \"virtual:\";
remote = \"smtp:\";"
expect_eq "setup saves the values it changed" \
    "$(sed "s|$PF_ETC|ETC|g" "$PF_ETC/mxswitch/saved.cf" 2>&1 | sort)" \
    "smtpd_milters = { inet:127.0.0.1:9999, default_action=accept }
smtpd_relay_restrictions (default)
transport_maps (default)
virtual_alias_maps = texthash:ETC/valias"
cp "$PF_ETC/main.cf" "$WORK/main.cf.after-setup"
cp "$PF_ETC/mxswitch/saved.cf" "$WORK/saved.cf.after-setup"
setup --config "$MXCONF"
expect_eq "setup is idempotent: a second run changes neither main.cf nor saved.cf" \
    "$RC/$(cmp -s "$PF_ETC/main.cf" "$WORK/main.cf.after-setup" &&
        cmp -s "$PF_ETC/mxswitch/saved.cf" "$WORK/saved.cf.after-setup" && echo same)" \
    0/same
expect_eq "mxswitch answers the transport map with the written transports" \
    "$(answer transport alice@local.test)/$(answer transport bob@remote.test)/$(answer transport carol@unknown.test)" \
    "virtual:/smtp:/"

# --- Mail -----------------------------------------------------------------

# s1: local, remote and a foreign domain with no key in one message.
send s1 alice@local.test "bob@remote.test NOTIFY=SUCCESS,FAILURE" \
    carol@unknown.test >"$WORK/s1.out"
expect_eq "s1: every recipient accepted" "$(cat "$WORK/s1.out")" \
    "RCPT <alice@local.test> 250
RCPT <bob@remote.test> 250
RCPT <carol@unknown.test> 250
DATA 250"
pf_wait_queue 20 || fail "s1: queue drains" "mail left in the queue"
expect_eq "s1: local recipient in its maildir once" \
    "$(maildir_count local.test/alice s1)" 1
expect_eq "s1: the local copy's Delivered-To is the plain address" \
    "$(grep -h '^Delivered-To:' "$PF_MAIL"/local.test/alice/new/* | sort -u)" \
    "Delivered-To: alice@local.test"
expect_eq "s1: remote recipient not in its local maildir" \
    "$(maildir_count remote.test/bob s1)" 0
expect_eq "s1: remote recipient at the domain's MX once, RCPT exactly <bob@remote.test>" \
    "$(sink_count remote s1)/$(sink_rcpts remote s1 | cut -d' ' -f1)" "1/<bob@remote.test>"
expect_eq "s1: the MX saw the client's NOTIFY" \
    "$(sink_rcpts remote s1 | grep -o 'NOTIFY=[A-Z,]*')" "NOTIFY=SUCCESS,FAILURE"
expect_eq "s1: foreign domain with no key goes to its own MX untouched" \
    "$(sink_rcpts unknown s1 | cut -d' ' -f1)" "<carol@unknown.test>"
expect_grep "s1: the maillog shows the remote copy leaving by smtp to the MX" \
    "$WORK/pf/maillog" 'to=<bob@remote.test>, relay=mx.remote.test\[127.0.0.21\]:25, .*status=sent'

# s1b: the maps are asked for addresses only.  virtual_alias_domains
# defaults to $virtual_alias_maps, so Postfix asks each table of that list
# for the bare domain of every address it resolves; a bare valias socket
# map (as this script wired it before 2026-12-07) makes each of those a
# round trip for NOTFOUND.  The daemon logs such keys (-v).
domain_keys() {
    grep -c 'socketmap: [a-z]* [^ @]*\.[^ @]* -> NOTFOUND (no address)' \
        "$WORK/mxswitch.log"
}
expect_eq "s1b: Postfix asked the maps for no bare domain" "$(domain_keys)" 0
postconf -c "$PF_ETC" -e \
    "virtual_alias_maps = socketmap:$SM:valias, texthash:$PF_ETC/valias"
postfix -c "$PF_ETC" reload >/dev/null 2>&1
sleep 2
send s1b carol@unknown.test >/dev/null
pf_wait_queue 20
bare=$(domain_keys)
expect_eq "s1b: with a bare valias map, Postfix asks it for bare domains too" \
    "$([ "$bare" -gt 0 ] && echo yes)/$(sink_rcpts unknown s1b | cut -d' ' -f1)" \
    "yes/<carol@unknown.test>"
setup --config "$MXCONF"
expect_eq "s1b: setup puts the regexp in front of a bare valias map, in place" \
    "$RC/$(pf_param virtual_alias_maps)" "0/$(pf_valias "$SM"), texthash:ETC/valias"
send s1c carol@unknown.test >/dev/null
pf_wait_queue 20
expect_eq "s1b: after it, a foreign domain is delivered and no bare domain asked" \
    "$(sink_rcpts unknown s1c | cut -d' ' -f1)/$(($(domain_keys) - bare))" \
    "<carol@unknown.test>/0"

# s2: flips apply to the next message: local -> remote -> local.
rset remote.test local
send s2a bob@remote.test >/dev/null
pf_wait_queue 20
rset remote.test remote
send s2b bob@remote.test >/dev/null
pf_wait_queue 20
rset remote.test local
send s2c bob@remote.test >/dev/null
pf_wait_queue 20
expect_eq "s2: local: in the local maildir" \
    "$(sink_count remote s2a)/$(maildir_count remote.test/bob s2a)" 0/1
expect_eq "s2: flipped to remote: the next message goes to the MX" \
    "$(sink_count remote s2b)/$(maildir_count remote.test/bob s2b)" 1/0
expect_eq "s2: flipped back to local: the next message lands here" \
    "$(sink_count remote s2c)/$(maildir_count remote.test/bob s2c)" 0/1
rset remote.test remote

# s3: mail from the server's own sendmail(1) follows the mode too.
send_local s3a bob@remote.test
pf_wait_queue 20
rset remote.test local
send_local s3b bob@remote.test
pf_wait_queue 20
expect_eq "s3: sendmail(1) mail to a remote-mode domain goes to the MX" \
    "$(sink_count remote s3a)/$(maildir_count remote.test/bob s3a)" 1/0
expect_eq "s3: after the flip, sendmail(1) mail lands locally" \
    "$(sink_count remote s3b)/$(maildir_count remote.test/bob s3b)" 0/1
rset remote.test remote

# s10: a remote-mode domain's user with no mailbox here (exists only at the
# provider) is accepted from a trusted client and goes to the MX, by SMTP
# and by sendmail(1); unknown users of local-mode domains are still rejected.
send s10 newbie@remote.test ghost@local.test >"$WORK/s10.out"
send_local s10b newbie@remote.test
pf_wait_queue 20
expect_eq "s10: the provider-only user is accepted, a local unknown is not" \
    "$(cat "$WORK/s10.out")" "RCPT <newbie@remote.test> 250
RCPT <ghost@local.test> 550
DATA 250"
expect_eq "s10: the SMTP copy reached the MX as <newbie@remote.test>" \
    "$(sink_rcpts remote s10 | cut -d' ' -f1)" "<newbie@remote.test>"
expect_eq "s10: the sendmail(1) copy reached the MX as <newbie@remote.test>" \
    "$(sink_rcpts remote s10b | cut -d' ' -f1)" "<newbie@remote.test>"
rset remote.test local
send s10c newbie@remote.test >"$WORK/s10c.out"
expect_eq "s10: once the domain is local again, the unknown user is rejected" \
    "$(cut -d' ' -f1-3 "$WORK/s10c.out")" "RCPT <newbie@remote.test> 550"
rset remote.test remote

# s12: untrusted clients (outside mynetworks) may not send to a
# remote-mode domain here; trusted ones may.
send_from 127.0.0.5 s12 bob@remote.test alice@local.test carol@unknown.test \
    >"$WORK/s12.out" 2>&1
expect_eq "s12: untrusted client: remote-mode 550 5.7.1, local 250, foreign relay refused" \
    "$(cut -d' ' -f1-4 "$WORK/s12.out")" "RCPT <bob@remote.test> 550 5.7.1
RCPT <alice@local.test> 250 2.1.5
RCPT <carol@unknown.test> 454 4.7.1
DATA 250"
send_from 127.0.0.1 s12b bob@remote.test >"$WORK/s12b.out" 2>&1
expect_eq "s12: a mynetworks client gets 250 for the remote-mode domain" \
    "$(cut -d' ' -f1-3 "$WORK/s12b.out")" "RCPT <bob@remote.test> 250
DATA 250"
pf_wait_queue 20
expect_eq "s12: the untrusted client's local recipient is delivered here" \
    "$(maildir_count local.test/alice s12)/$(sink_count remote s12)" 1/0

# s4: two MX hosts: the best one takes it; when it refuses, the next one.
send s4a carol@twomx.test >/dev/null
pf_wait_queue 20
expect_eq "s4: remote mail goes to the best MX" \
    "$(sink_count twomx1 s4a)/$(sink_count twomx2 s4a)" 1/0
kill "$SINK_PID_twomx1"
wait "$SINK_PID_twomx1" 2>/dev/null
untrack "$SINK_PID_twomx1"
pf_sink twomx1 127.0.0.23 -r CONNECT
send s4b carol@twomx.test >/dev/null
pf_wait_queue 20
expect_eq "s4: when the best MX refuses, the next one gets it" \
    "$(sink_count twomx1 s4b)/$(sink_count twomx2 s4b)" 0/1
expect_eq "s4: carol's local mailbox got neither" \
    "$(maildir_count twomx.test/carol s4a)$(maildir_count twomx.test/carol s4b)" 00

# s5: remote mode beats local aliases (exact and catch-all); local mode
# for a relay_domains domain is delivered here.
send s5 info@aliased.test zed@aliased.test dave@relayed.test >/dev/null
pf_wait_queue 20
expect_eq "s5: aliased remote recipients reach the domain's MX unchanged" \
    "$(sink_rcpts aliased s5 | cut -d' ' -f1 | tr '\n' ' ')" \
    "<info@aliased.test> <zed@aliased.test> "
expect_eq "s5: the local alias target got nothing" \
    "$(maildir_count local.test/alice s5)" 0
expect_eq "s5: local mode for a relay domain: delivered here, not relayed" \
    "$(maildir_count relayed.test/dave s5)/$(sink_count relayed s5)" 1/0

# s8: 50 recipients over 10 domains with mixed modes in one message.
rcpts=()
for i in 0 1 2 3 4 5 6 7 8 9; do
    for u in 0 1 2 3 4; do rcpts+=("u$u@m$i.test"); done
done
send s8 "${rcpts[@]}" >"$WORK/s8.out"
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
expect_eq "s8: the 20 remote-mode recipients reached the MX unchanged" \
    "$(sink_rcpts mixed s8 | cut -d' ' -f1 | grep -c '^<u[0-4]@m[4-7].test>$')" 20
expect_eq "s8: and nothing else reached the MX" \
    "$(sink_rcpts mixed s8 | wc -l)" 20

# relayhost: remote mode leaves through the relayhost by default (the way
# all outbound mail leaves such a server); --remote-nexthop mx goes direct.
# The daemon re-reads postfix-transports when it changes.
postconf -c "$PF_ETC" -e 'relayhost = [127.0.0.28]'
setup --config "$MXCONF"
expect_eq "relayhost: setup writes remote = smtp:[relayhost]" \
    "$RC/$(grep '^remote' "$TRANSPORTS")" '0/remote = "smtp:[127.0.0.28]";'
poll_for "smtp:[127.0.0.28]" 50 answer transport bob@remote.test
expect_eq "relayhost: the daemon answers the new remote transport" "$GOT" \
    "smtp:[127.0.0.28]"
send srh1 bob@remote.test carol@unknown.test >/dev/null
pf_wait_queue 20
expect_eq "relayhost: remote mode goes through the relayhost, unchanged" \
    "$(sink_rcpts smarthost srh1 | cut -d' ' -f1 | tr '\n' ' ')/$(sink_count remote srh1)" \
    "<bob@remote.test> <carol@unknown.test> /0"
setup --config "$MXCONF" --remote-nexthop mx
poll_for "smtp:" 50 answer transport bob@remote.test
send srh2 bob@remote.test carol@unknown.test >/dev/null
pf_wait_queue 20
expect_eq "relayhost + --remote-nexthop mx: remote mode goes to the MX" \
    "$(sink_rcpts remote srh2 | cut -d' ' -f1)/$(sink_rcpts smarthost srh2 | cut -d' ' -f1)" \
    "<bob@remote.test>/<carol@unknown.test>"
postconf -c "$PF_ETC" -X relayhost
setup --config "$MXCONF"
poll_for "smtp:" 50 answer transport bob@remote.test

# s7: Redis stopped: recipients whose domain is not cached get 4xx; after
# Redis returns the client's retry is delivered once.
stop_pid "$REDIS_PID"
send s7a eve@fresh.test >"$WORK/s7a.out"
expect_eq "s7: Redis down: RCPT to an uncached domain gets 451" \
    "$(cat "$WORK/s7a.out")" "RCPT <eve@fresh.test> 451"
start_redis 6379
set_keys
# Each retry from a new sender: smtpd's resolver client keeps the failed
# answer for the same sender/recipient pair for 30 s (seen: the daemon was
# asked once, smtpd answered 451 from its cache for 6 s); a real client's
# retry comes minutes later.
# (poll_for runs it in a subshell: no counter survives, hence $RANDOM)
s7_retry() { SUBJECT=s7a smtp_send "s7a-$RANDOM$RANDOM@client.test" eve@fresh.test; }
poll_for "RCPT <eve@fresh.test> 250
DATA 250" 30 s7_retry
pf_wait_queue 20
expect_eq "s7: Redis back: the retry is accepted" "$GOT" \
    "RCPT <eve@fresh.test> 250
DATA 250"
expect_eq "s7: and delivered once" "$(sink_count unknown s7a)" 1

# s7: mxswitch stopped: Postfix answers 4xx (the milter's own tempfail,
# the tables' lookup failure) and accepts nothing.
stop_mxswitch "mxswitch stops for the outage test"
send s7b bob@remote.test alice@local.test >"$WORK/s7b.out"
expect_eq "s7: mxswitch down: the first reply is 451, nothing is accepted" \
    "$(head -n 1 "$WORK/s7b.out" | grep -o ' 451$')/$(grep -c -e '^DATA' -e ' 2[0-9][0-9]$' "$WORK/s7b.out")" \
    " 451/0"
start_mxswitch "$MXCONF" 8891 || abort "mxswitch restarts"
wait_port 8893 5
send s7c bob@remote.test alice@local.test >/dev/null
pf_wait_queue 20
expect_eq "s7: after restart the retry lands where the modes say, once" \
    "$(sink_count remote s7c)/$(maildir_count remote.test/bob s7c)/$(maildir_count local.test/alice s7c)" \
    1/0/1

# s6: local delivery through Dovecot LMTP: the local mode answers the
# instance's own LMTP transport, for hosted and relay domains.
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
DOVECOT_PID=$!
track "$DOVECOT_PID"
wait_port_ip 127.0.0.1 24 10 || fail "dovecot starts" "see $D/dovecot.log"
postconf -c "$PF_ETC" -e 'virtual_transport = lmtp:inet:127.0.0.1:24'
setup --config "$MXCONF"
expect_eq "s6: setup picks the instance's LMTP transport for local mode" \
    "$(grep '^local' "$TRANSPORTS")" 'local = "lmtp:inet:127.0.0.1:24";'
poll_for "lmtp:inet:127.0.0.1:24" 50 answer transport dave@relayed.test
expect_eq "s6: the daemon answers it for a local-mode relay domain" "$GOT" \
    "lmtp:inet:127.0.0.1:24"
send s6 alice@local.test dave@relayed.test >/dev/null
pf_wait_queue 20
expect_eq "s6: Dovecot stored each local copy once, under the plain user" \
    "$(grep -rlsx 'Subject: s6' "$D/mail" | grep -E '/(new|cur)/' | sed "s|$D/mail/||; s|/new/.*||" | sort | tr '\n' ' ')" \
    "local.test/alice relayed.test/dave "
expect_grep "s6: the relay domain's copy went over LMTP" "$WORK/pf/maillog" \
    'to=<dave@relayed.test>, relay=127.0.0.1\[127.0.0.1\]:24, .*status=sent'
kill "$DOVECOT_PID"
wait "$DOVECOT_PID" 2>/dev/null
untrack "$DOVECOT_PID"
postconf -c "$PF_ETC" -X virtual_transport
setup --config "$MXCONF"
poll_for "virtual:" 50 answer transport alice@local.test

# No tag anywhere: not at an exchanger, not in a mailbox, not in the log.
expect_eq "no mx-remote/mx-local tag at the exchangers, in the maildirs or the maillog" \
    "$(grep -rlE 'mx-(remote|local)' "$WORK/sink" "$PF_MAIL" "$WORK/pf/maillog" "$D/mail" | wc -l)" 0
expect_eq "nothing bounced" "$(grep -c 'status=bounced' "$WORK/pf/maillog")" 0

# s11: undo, with mxswitch stopped (and its binary out of reach): mail
# queued while it was down is delivered by Postfix's own tables after the
# undo, and nothing bounces.
stop_mxswitch "mxswitch exits cleanly"
send_local s11q bob@remote.test
sleep 3
expect_eq "s11: with mxswitch down, sendmail(1) mail waits (not delivered)" \
    "$(maildir_count remote.test/bob s11q)/$(sink_count remote s11q)" 0/0
SETUP_MX=/nonexistent setup --undo
expect_eq "s11: --undo succeeds with mxswitch stopped (no --config: it knows the file it wrote)" "$RC" 0
expect_eq "s11: main.cf is the original again (postconf -n)" \
    "$(diff <(postconf -c "$PF_ETC" -n) <(postconf -c "$PF_ETC.orig" -n 2>/dev/null))" ""
expect_eq "s11: the transports file and saved state are gone" \
    "$(ls "$TRANSPORTS" "$PF_ETC/mxswitch" 2>/dev/null | wc -l)" 0
expect_eq "s11: no socketmap left in main.cf" \
    "$(grep -c 'socketmap:' "$PF_ETC/main.cf")" 0
postkick -c "$PF_ETC" public pickup W
pf_flush
pf_wait_queue 30 || fail "s11: the queue drains after --undo" "mail left in the queue"
expect_eq "s11: mail queued during the outage is delivered by Postfix's tables" \
    "$(maildir_count remote.test/bob s11q)/$(sink_count remote s11q)" 1/0
send s11 bob@remote.test >/dev/null
pf_wait_queue 20
expect_eq "s11: a remote-mode domain is delivered locally again" \
    "$(sink_count remote s11)/$(maildir_count remote.test/bob s11)" 0/1
expect_eq "s11: nothing bounced" "$(grep -c 'status=bounced' "$WORK/pf/maillog")" 0

# s13: upgrade from the old tag-and-pcre design, as its script left an
# instance: tables in ETC/mxswitch/, the milter in both milter lists, the
# global milter_default_action, recipient_delimiter, saved.cf; and a
# tagged message deferred in the queue (its MX was down).
start_mxswitch "$MXCONF" 8891 || abort "mxswitch starts for the upgrade"
wait_port 8893 5
T=$PF_ETC/mxswitch
mkdir -p "$T"
printf '%s\n' '/^.+\+mx-remote@[^@]+$/ smtp:' '/^.+\+mx-local@[^@]+$/ virtual:' >"$T/transport.pcre"
printf '%s\n' '/^(.+)\+mx-(remote|local)@([^@]+)$/ ${1}@${3}' >"$T/generic.pcre"
printf '%s\n' '/^(.+\+mx-(remote|local)@[^@]+)$/ ${1}' >"$T/virtual.pcre"
{
    postconf -c "$PF_ETC" -n smtpd_milters
    echo "non_smtpd_milters (default)"
    echo "milter_default_action (default)"
    echo "transport_maps (default)"
    echo "smtp_generic_maps (default)"
    echo "lmtp_generic_maps (default)"
    postconf -c "$PF_ETC" -n virtual_alias_maps
    echo "recipient_delimiter (default)"
} >"$T/saved.cf"
cp "$PF_ETC/main.cf" "$PF_ETC/main.cf.mxswitch-orig"
postconf -c "$PF_ETC" -e \
    "smtpd_milters = { inet:127.0.0.1:9999, default_action=accept }, inet:127.0.0.1:8891" \
    "non_smtpd_milters = inet:127.0.0.1:8891" "milter_default_action = tempfail" \
    "transport_maps = pcre:$T/transport.pcre" "smtp_generic_maps = pcre:$T/generic.pcre" \
    "lmtp_generic_maps = pcre:$T/generic.pcre" \
    "virtual_alias_maps = pcre:$T/virtual.pcre, texthash:$PF_ETC/valias" \
    "recipient_delimiter = +"
postfix -c "$PF_ETC" reload >/dev/null 2>&1
sleep 2
kill "$SINK_PID_remote"
wait "$SINK_PID_remote" 2>/dev/null
untrack "$SINK_PID_remote"
send_local s13 bob+mx-remote@remote.test
poll_for 1 50 grep -c 'to=<bob+mx-remote@remote.test>.*status=deferred' "$WORK/pf/maillog"
expect_eq "s13: the old design's tagged message is deferred in the queue" "$GOT" 1
setup --config "$MXCONF"
expect_eq "s13: setup over the old design succeeds" "$RC" 0
expect_grep "s13: setup says it requeues the old tags" <(echo "$OUT") \
    "old tag-and-pcre wiring was removed: requeueing .*postsuper -r ALL"
expect_eq "s13: the old tables are gone from main.cf and from disk" \
    "$(grep -c "pcre:" "$PF_ETC/main.cf")/$(ls "$T"/*.pcre 2>/dev/null | wc -l)" 0/0
expect_eq "s13: milter lists: braced tempfail in smtpd_milters, none in non_smtpd_milters" \
    "$(pf_param smtpd_milters)/$(pf_param non_smtpd_milters)" \
    "{ inet:127.0.0.1:9999, default_action=accept }, { inet:127.0.0.1:8891, default_action=tempfail }/"
expect_eq "s13: the global milter_default_action is back to its default" \
    "$(postconf -c "$PF_ETC" -n milter_default_action)" ""
expect_eq "s13: the maps are the new design's" \
    "$(pf_param transport_maps)/$(pf_param virtual_alias_maps)/$(pf_param smtp_generic_maps)" \
    "socketmap:$SM:transport/$(pf_valias "$SM"), texthash:ETC/valias/"
pf_sink remote 127.0.0.21 || abort "sink remote again"
postkick -c "$PF_ETC" public pickup W
pf_flush
poll_for 1 50 sink_count remote s13
expect_eq "s13: the requeued tagged message reaches the MX as <bob@remote.test>" \
    "$GOT/$(sink_rcpts remote s13 | cut -d' ' -f1)" "1/<bob@remote.test>"
stop_mxswitch "mxswitch exits cleanly after the upgrade"
SETUP_MX=/nonexistent setup --config "$MXCONF" --undo
expect_eq "s13: --undo after an upgrade gives the original main.cf" \
    "$RC/$(diff <(postconf -c "$PF_ETC" -n) <(postconf -c "$PF_ETC.orig" -n 2>/dev/null))" 0/

pf_stop
finish
