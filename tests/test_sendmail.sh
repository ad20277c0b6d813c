#!/bin/bash
# test_sendmail - end to end through a real Sendmail 8.17 (Debian 12's
# sendmail-bin, unpacked, never installed: see sm_lib.sh), wired with
# scripts/mxswitch-sendmail-setup as a user would; a real redis-server and
# mxswitch (milter and socket map server); dnsmasq serving the MX records;
# smtp-sink exchangers on 127.0.0.2x:25; a local mailer that files each
# copy per user.  Everything runs in a private network namespace (see
# pf_lib.sh).
#
# Sendmail asks mxswitch at every delivery attempt, in ruleset 0, through
# the socket map "mode": no recipient is rewritten, queued mail, aliases
# and bounces follow the mode of the moment.
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
    --mx-host=local.test,mx.local.test,10
    --host-record=mx.local.test,127.0.0.23
    --mx-host=bad.test,mx.bad.test,10
    --host-record=mx.bad.test,127.0.0.24
    --mx-host=relayed.test,mx.relayed.test,10
    --host-record=mx.relayed.test,127.0.0.25
    --mx-host=held.test,mx.hosting.test,10
    --mx-host=backup.test,mx.remote.test,10
    $(pf_backup_dns bk.test 127.0.0.30)
    $(pf_backup_dns bkdown.test 127.0.0.31)
    $(pf_backup_dns bkslow.test 127.0.0.32)
    $(pf_backup_dns bkdrip.test 127.0.0.33)
    --host-record=outside.example.test,127.0.0.9
    --host-record=office.example.test,127.0.0.8
)
pf_net_up || abort "private network and DNS"
# localmx: the MX of local.test, used only by a per-address key; bad: an
# exchanger that refuses every recipient (550), for bounces
for s in remote:21 unknown:22 localmx:23 relayed:25; do
    pf_sink "${s%:*}" "127.0.0.${s#*:}" || abort "sink ${s%:*}"
done
pf_sink bad 127.0.0.24 -f RCPT || abort "sink bad"
# bk.test: this server is its backup MX (MX 20); the better one (MX 10)
# refuses nobody@bk.test, and refuses the probe's HELO name at RCPT for
# helo@bk.test (as Postfix's reject_non_fqdn_helo_hostname does).
# bkdown.test's better MX is down; bkslow.test's takes the connection
# and never says a word.
pf_responder bk 127.0.0.30 mx.bk.test nobody@bk.test \
    'helo@bk.test=504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname' ||
    abort "bk.test's better MX"
python3 -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.32", 25)); s.listen(16); held = []
while True: held.append(s.accept()[0])' &
track $!
wait_port_ip 127.0.0.32 25 5 || abort "bkslow.test's silent MX"
# bkdrip.test's better MX sends its greeting a byte every 0.2 s and never
# ends it.
python3 -c 'import socket, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.33", 25)); s.listen(16)
def drip(c):
    try:
        c.sendall(b"220-")
        while True:
            time.sleep(0.2)
            c.sendall(b"x")
    except OSError:
        c.close()
while True:
    threading.Thread(target=drip, args=(s.accept()[0],), daemon=True).start()' &
track $!
wait_port_ip 127.0.0.33 25 5 || abort "bkdrip.test's dripping MX"

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
set_keys() {
    rset local.test local
    rset remote.test remote
    rset relayed.test local
    rset held.test remote
    rset backup.test backup
    rset bk.test backup
    rset bkdown.test backup
    rset bkslow.test backup
    rset bkdrip.test backup
}
set_keys

cat >"$WORK/mx.conf" <<CONF
milter: { socket = "inet:8891@127.0.0.1"; allow_root = true; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { address_prefix = "mxswitch:address:"; };
cache: { ttl = 3600; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"
wait_port 8893 5 || abort "mxswitch serves the socket map"

sm_unpack "$WORK/smroot" || abort "sendmail unpacked from the Debian packages"
# local.test, remote.test, held.test, backup.test, fresh.test,
# nokey.test and standby.test (no key; fresh.test and standby.test are
# asked first when Redis is down) are hosted here (class w); relayed.test is a relay domain (DNS MX).
# Whom Sendmail lets relay: 127.0.0.1 (its own rule), 127.0.0.8 (an
# address prefix in class R, as relay-domains may hold one), a client
# authenticated with ANONYMOUS (TRUST_AUTH_MECH: a SASL mechanism that
# needs no password database; trusting it makes sense only here),
# 127.0.0.7 (the access map: Connect:127.0.0.7 RELAY).
# 127.0.0.9 (outside.example.test) is no one Sendmail trusts.
sm_make < <(
    cat <<'MC'
LOCAL_DOMAIN(`local.test remote.test held.test backup.test fresh.test nokey.test standby.test')dnl
RELAY_DOMAIN(`relayed.test 127.0.0.8 bk.test bkdown.test bkslow.test')dnl
define(`confAUTH_MECHANISMS', `ANONYMOUS')dnl
TRUST_AUTH_MECH(`ANONYMOUS')dnl
MC
    echo "FEATURE(\`access_db', \`hash -o -T<TMPF> $WORK/sm/access')dnl"
) || abort "sendmail config" "$(tail -n 5 "$WORK/sm/start.log")"
printf 'Connect:127.0.0.7\tRELAY\n' >"$SM_DIR/access"
sm_makemap access || abort "sendmail access map"
# info: a local alias in a remote-mode domain; sales: an alias of a local
# domain into a remote-mode domain
printf 'info: alice\nsales: carol@remote.test\n' >>"$SM_DIR/aliases"
"$SM_BIN" -C "$SM_CF" -bi >/dev/null 2>&1 || abort "sendmail aliases"
cp "$SM_MC" "$WORK/sendmail.mc.orig"
cp "$SM_CF" "$WORK/sendmail.cf.orig"

setup() {
    MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --mc "$SM_MC" \
        --cf "$SM_CF" --cf-dir "$SM_CFDIR" --config "$WORK/mx.conf" \
        --sendmail "$SM_BIN" "$@"
}
# sums - checksums of the .mc and the .cf, to show a refusal changed nothing
sums() { md5sum <"$SM_MC"; md5sum <"$SM_CF"; }

# The checks: a socket map to ask is required.
setup -t >"$WORK/check.log" 2>&1
expect_eq "-t accepts a config with socketmap.socket" "$?" 0
grep -v '^socketmap:' "$WORK/mx.conf" >"$WORK/mx-nomap.conf"
MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup -t --mc "$SM_MC" \
    --config "$WORK/mx-nomap.conf" >"$WORK/check-nomap.log" 2>&1
expect_eq "-t refuses a config without socketmap.socket" "$?" 1
expect_grep "-t says why: socketmap.socket is empty" \
    "$WORK/check-nomap.log" "socketmap.socket is empty"
MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --mc "$SM_MC" \
    --cf-dir "$SM_CFDIR" --config "$WORK/mx-nomap.conf" \
    >>"$WORK/check-nomap.log" 2>&1
expect_eq "setup without socketmap.socket fails and changes nothing" \
    "$?/$(cmp -s "$SM_MC" "$WORK/sendmail.mc.orig" && cmp -s "$SM_CF" "$WORK/sendmail.cf.orig" && echo same)" \
    1/same
sed 's|inet:8893@127.0.0.1|unix:/run/mxswitch/map.sock|' "$WORK/mx.conf" \
    >"$WORK/mx-unix.conf"
expect_eq "a unix: socket map becomes Sendmail's local: form" \
    "$(MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --print-block \
        --config "$WORK/mx-unix.conf" | grep '^K')" \
    'Kmode socket -T<TMPF> local:/run/mxswitch/map.sock
Kverify socket -T<TMPF> local:/run/mxswitch/map.sock'

# Refusals of what the block relies on: each changes nothing.
before=$(sums)
# A Sendmail built without socket maps: its -d0.1 list lacks SOCKETMAP (a
# wrapper that edits the real binary's answer).
cat >"$WORK/nosocketmap" <<SH
#!/bin/bash
"$SM_BIN" "\$@" | sed 's/ SOCKETMAP / /'
SH
chmod +x "$WORK/nosocketmap"
RC=0
OUT=$(setup --sendmail "$WORK/nosocketmap" 2>&1) || RC=$?
expect_eq "a Sendmail without SOCKETMAP: refused (1), .mc and .cf unchanged" \
    "$RC/$([ "$(sums)" = "$before" ] && echo same)" 1/same
expect_grep "the refusal names the socket map class and says what to do" \
    <(echo "$OUT") "was built without SOCKETMAP .*socket map class; install a Sendmail that has it.*nothing changed"
RC=0
OUT=$(setup --sendmail "$WORK/nosocketmap" --dry-run 2>&1) || RC=$?
expect_eq "a Sendmail without SOCKETMAP: --dry-run refuses too" "$RC" 1
# mxswitch not answering on socketmap.socket (a port nothing listens on).
free_port deadport
sed "s|inet:8893@127.0.0.1|inet:$deadport@127.0.0.1|" "$WORK/mx.conf" \
    >"$WORK/mx-dead.conf"
RC=0
OUT=$(setup --config "$WORK/mx-dead.conf" 2>&1) || RC=$?
expect_eq "mxswitch not answering on the socket map: refused, nothing changed" \
    "$RC/$([ "$(sums)" = "$before" ] && echo same)" 1/same
expect_grep "the refusal says mxswitch does not answer there and to start it" \
    <(echo "$OUT") "mxswitch does not answer on inet:$deadport@127.0.0.1 .*start it first.*nothing changed"
RC=0
OUT=$(setup --config "$WORK/mx-dead.conf" --dry-run 2>&1) || RC=$?
expect_eq "--dry-run needs no daemon: it does not probe" \
    "$RC/$(echo "$OUT" | grep -c "dry run: not probing mxswitch at inet:$deadport@127.0.0.1")/$([ "$(sums)" = "$before" ] && echo same)" \
    0/1/same
# A config the daemon could not start with (mxswitch -t exits 3: here a
# milter.pid_file in a missing directory): refused; --print-block warns.
sed "s|^milter: { |milter: { pid_file = \"$WORK/nodir/mx.pid\"; |" \
    "$WORK/mx.conf" >"$WORK/mx-nostart.conf"
RC=0
OUT=$(setup --config "$WORK/mx-nostart.conf" 2>&1) || RC=$?
expect_eq "a config mxswitch could not start with: refused, nothing changed" \
    "$RC/$([ "$(sums)" = "$before" ] && echo same)" 1/same
expect_grep "the refusal passes on -t's reason and says to fix it first" \
    <(echo "$OUT") "mxswitch would not start with $WORK/mx-nostart.conf \(see above\): fix that"
expect_grep "-t's reason names the setting" <(echo "$OUT") \
    "milter.pid_file $WORK/nodir/mx.pid: directory $WORK/nodir: No such file"
RC=0
OUT=$(setup --config "$WORK/mx-nostart.conf" --print-block 2>&1) || RC=$?
expect_eq "--print-block on such a config: the block (its two maps), with a warning" \
    "$RC/$(echo "$OUT" | grep -c '^K')/$(echo "$OUT" | grep -c 'warning: mxswitch would not start')" \
    0/2/1
# The real Sendmail has both; a binary that is not Sendmail's draws a
# warning, not a refusal.
RC=0
OUT=$(setup --sendmail /bin/false --dry-run 2>&1) || RC=$?
expect_eq "a --sendmail that lists no compile options: warned, not refused" \
    "$RC/$(echo "$OUT" | grep -c 'does not say what it was compiled with')" 0/1

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
expect_grep "the .cf has the milter with F=T and a short end-of-message timeout" \
    "$SM_CF" '^Xmxswitch, S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:20s;E:10s$'
expect_grep "the .cf asks for the queue id at RCPT" "$SM_CF" \
    '^O Milter.macros.envrcpt=.*, i$'
expect_grep "the .cf defines the socket map at socketmap.socket" "$SM_CF" \
    '^Kmode socket -T<TMPF> inet:8893@127.0.0.1$'
expect_grep "the .cf defines the verify map at the same socket" "$SM_CF" \
    '^Kverify socket -T<TMPF> inet:8893@127.0.0.1$'
expect_eq "the .cf has no tag route left: the only tag rules strip the tag" \
    "$(grep -e 'mx-remote' -e 'mx-local' "$SM_CF" | cut -f2 | sort -u)" \
    '$: $1 < @ $2 >'
cp "$SM_MC" "$WORK/mc.after"
cp "$SM_CF" "$WORK/cf.after"
setup >>"$WORK/setup.log" 2>&1
expect_eq "setup is idempotent: a second run changes neither file" \
    "$(cmp -s "$SM_MC" "$WORK/mc.after" && cmp -s "$SM_CF" "$WORK/cf.after" && echo same)" same

# How ruleset 0 resolves (sendmail -bt, the address test mode, asks the
# running mxswitch through the socket map).
bt() { printf '3,0 %s\n' "$1" | "$SM_BIN" -C "${2:-$SM_CF}" -bt 2>/dev/null |
    sed -n 's/^parse *returns: //p'; }
expect_eq "rules: a remote-mode class-w domain -> esmtp to the domain, address unchanged" \
    "$(bt bob@remote.test)" '$# esmtp $@ remote . test $: bob < @ remote . test . >'
expect_eq "rules: a local-mode class-w domain -> Sendmail's local delivery" \
    "$(bt alice@local.test)" '$# local $: alice'
expect_eq "rules: a local-mode relay domain -> the local mailer" \
    "$(bt dave@relayed.test)" '$# local $: dave'
expect_eq "rules: a domain with no key resolves as without mxswitch" \
    "$(bt carol@unknown.test)" "$(bt carol@unknown.test "$WORK/sendmail.cf.orig")"
expect_eq "rules: remote mode while the best MX is here -> 451 4.4.6 (held)" \
    "$(bt zoe@held.test | cut -d'"' -f2 | cut -c1-9)" '451 4.4.6'
expect_eq "rules: an old remote tag is stripped and the address decided anew" \
    "$(bt bob+mx-remote@remote.test)" '$# esmtp $@ remote . test $: bob < @ remote . test . >'
expect_eq "rules: an old local tag is stripped and the address decided anew" \
    "$(bt dave+mx-local@relayed.test)" '$# local $: dave'
# bt_sender ADDRESS - the same for an envelope sender ({addr_type} "e s")
bt_sender() { printf '.D{addr_type}e s\n3,0 %s\n' "$1" |
    "$SM_BIN" -C "${2:-$SM_CF}" -bt 2>/dev/null | sed -n 's/^parse *returns: //p'; }
expect_eq "rules: a sender is not decided: a held domain's sender resolves as without mxswitch" \
    "$(bt_sender zoe@held.test)" "$(bt_sender zoe@held.test "$WORK/sendmail.cf.orig")"
# bt_rcpt CLIENT-ADDR CLIENT-NAME AUTH-TYPE RCPT - what check_rcpt (the
# RCPT check, Local_check_rcpt first) answers for a client, in -bt
bt_rcpt() {
    printf '.D{client_addr}%s\n.D{client_name}%s\n.D{client_resolve}%s\n.D{auth_type}%s\ncheck_rcpt <%s>\n' \
        "$1" "$2" "${RESOLVE:-OK}" "$3" "$4" |
        "$SM_BIN" -C "$SM_CF" -bt 2>/dev/null |
        sed -n 's/^check_rcpt *returns: //p'
}
# head_of TEXT PREFIX - PREFIX when TEXT starts with it, else TEXT
head_of() { case $1 in "$2"*) echo "$2" ;; *) echo "$1" ;; esac; }
expect_eq "rules: an untrusted client gets 550 5.7.1 for a remote-mode domain" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' bob@remote.test)" \
    '$# error $@ 5 . 7 . 1 $: "550 5.7.1 mail for " remote . test " is not accepted here: its mail exchanger is elsewhere"'
expect_eq "rules: Sendmail's own check still answers a trusted client (127.0.0.1)" \
    "$(bt_rcpt 127.0.0.1 localhost '' bob@remote.test)" 'RELAY'
expect_eq "rules: a client in class R (relay-domains) is trusted" \
    "$(bt_rcpt 127.0.0.8 office.example.test '' bob@remote.test)" 'RELAY'
expect_eq "rules: a client the access map lets relay (Connect: RELAY) is trusted" \
    "$(bt_rcpt 127.0.0.7 '' '' bob@remote.test)" 'RELAY'
expect_eq "rules: a client authenticated with a TrustAuthMech mechanism is trusted" \
    "$(bt_rcpt 127.0.0.9 outside.example.test ANONYMOUS bob@remote.test)" '$# RELAY'
expect_eq "rules: authenticated with a mechanism not in TrustAuthMech is not" \
    "$(head_of "$(bt_rcpt 127.0.0.9 outside.example.test PLAIN bob@remote.test)" '$# error $@ 5 . 7 . 1 $: "550 5.7.1 mail for ')" \
    '$# error $@ 5 . 7 . 1 $: "550 5.7.1 mail for '
expect_eq "rules: the client's name not resolvable now: Sendmail's 4xx, never 5xx" \
    "$(head_of "$(RESOLVE=TEMP bt_rcpt 127.0.0.9 outside.example.test '' bob@remote.test)" '$# error $@ 4 . 4 . 0 $: "450 Relaying temporarily denied.')" \
    '$# error $@ 4 . 4 . 0 $: "450 Relaying temporarily denied.'
expect_eq "rules: an untrusted client may send to a local-mode domain" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' alice@local.test)" 'RELAY'
expect_eq "rules: an untrusted client may send to a backup-mode domain" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' bob@backup.test)" 'RELAY'
# Backup mode: mxswitch asks the better MX (MX 10) about the address,
# once, and says what it said.
expect_eq "rules: untrusted, backup mode: an address the better MX refuses gets 550 5.1.1" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' nobody@bk.test)" \
    '$# error $@ 5 . 1 . 1 $: "550 5.1.1 Recipient address rejected: refused by the better MX of the domain"'
expect_eq "rules: untrusted, backup mode: the same again is remembered, not asked again" \
    "$(head_of "$(bt_rcpt 127.0.0.9 outside.example.test '' nobody@bk.test)" '$# error $@ 5 . 1 . 1')/$(grep -c '^cmd: RCPT TO:<nobody@bk.test>$' "$WORK/sink-bk.log")" \
    '$# error $@ 5 . 1 . 1/1'
expect_eq "rules: the probe: EHLO, the null sender, RCPT, QUIT; no message" \
    "$(sed -n 's/^cmd: //p' "$WORK/sink-bk.log" | cut -d' ' -f1 | tr '\n' ' ')" \
    "EHLO MAIL RCPT QUIT "
expect_grep "rules: the probe's sender is the null sender" "$WORK/sink-bk.log" \
    '^cmd: MAIL FROM:<>$'
# Without socketmap.helo_name: the host's canonical name, as hostname -f
# finds it (when that has a dot; else the host name).
probe_host=$(hostname -f 2>/dev/null) || probe_host=""
case $probe_host in *.*) ;; *) probe_host=$(hostname) ;; esac
expect_eq "rules: the probe says EHLO with the host's canonical name by default" \
    "$(sed -n 's/^cmd: EHLO //p' "$WORK/sink-bk.log" | sort -u)" "$probe_host"
expect_eq "rules: untrusted, backup mode: an address the better MX takes is let through" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' real@bk.test)" 'RELAY'
expect_eq "rules: trusted, backup mode: accepted, the better MX not asked" \
    "$(bt_rcpt 127.0.0.1 localhost '' other@bk.test)/$(grep -c 'other@bk.test' "$WORK/sink-bk.log")" \
    'RELAY/0'
expect_eq "rules: untrusted, backup mode, the better MX down: 450 4.1.1, never 5xx" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' x@bkdown.test)" \
    '$# error $@ 4 . 1 . 1 $: "450 4.1.1 Recipient address not verified yet: try again later"'
expect_eq "rules: untrusted, backup mode, the better MX refuses the probe (504 5.5.2), not the address: 450 4.1.1" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' helo@bk.test)" \
    '$# error $@ 4 . 1 . 1 $: "450 4.1.1 Recipient address not verified yet: try again later"'
t0=$(date +%s%N)
expect_eq "rules: untrusted, backup mode, the better MX silent: 450 4.1.1 after mxswitch's wait" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' x@bkslow.test)" \
    '$# error $@ 4 . 1 . 1 $: "450 4.1.1 Recipient address not verified yet: try again later"'
waited=$((($(date +%s%N) - t0) / 1000000000))
expect_eq "rules: ... the answer waited 4 s (VERIFY_WAIT_MS), not the probe's 10 s (waited $waited s)" \
    "$((waited >= 4 && waited < 10))" 1
expect_grep "mxswitch logged the probe in progress" "$WORK/mxswitch.log" \
    'socketmap: verify x@bkslow.test -> OK 450 4.1.1 .*probe in progress'
# A better MX that keeps sending a byte now and then holds a probe for
# VERIFY_STEP_MS (10 s) a step, not until its reply fills the buffer.
t0=$SECONDS
SMAP=127.0.0.1:8893 smap_ask verify x@bkdrip.test >/dev/null
sleep $((t0 + 11 - SECONDS > 0 ? t0 + 11 - SECONDS : 0))
SMAP=127.0.0.1:8893 smap_ask verify x@bkdrip.test >/dev/null
expect_grep "a dripping better MX: the probe ends after 10 s a step" \
    "$WORK/mxswitch.log" \
    'socketmap: verify x@bkdrip.test -> OK 450 4.1.1 .*remembered: not known by the better MX'
expect_grep "mxswitch logged what the better MX said" "$WORK/mxswitch.log" \
    'socketmap: verify nobody@bk.test -> OK 550 5.1.1 .*mx\.bk\.test\[127\.0\.0\.30\] said 550 5\.1\.1 <nobody@bk\.test>: no such user'
expect_grep "mxswitch logged why it could not verify" "$WORK/mxswitch.log" \
    'socketmap: verify x@bkdown.test -> OK 450 4.1.1 .*mx\.bkdown\.test\[127\.0\.0\.31\]: connect: Connection refused'
expect_eq "rules: an untrusted client may send to a domain with no key" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' eve@nokey.test)" 'RELAY'
expect_eq "rules: an untrusted client is still refused relaying to a foreign domain" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' carol@unknown.test)" \
    '$# error $@ 5 . 7 . 1 $: "550 Relaying denied. Proper authentication required."'
sm_start || abort "sendmail starts"

# send_from IP SUBJECT RCPT... - an SMTP session from the client address
# IP; with AUTH=1 it authenticates first (ANONYMOUS).  Prints
# "RCPT <addr> CODE TEXT" per recipient and "DATA CODE" when one was
# accepted.
send_from() {
    timeout 30 python3 - "$@" "${PF_SMTP%:*}" "${PF_SMTP#*:}" <<'PY'
import base64, os, smtplib, sys
ip, subj, rcpts, host, port = sys.argv[1], sys.argv[2], sys.argv[3:-2], sys.argv[-2], int(sys.argv[-1])
s = smtplib.SMTP(host, port, source_address=(ip, 0), timeout=20)
s.ehlo("client.test")
if os.environ.get("AUTH"):
    code, msg = s.docmd("AUTH", "ANONYMOUS " + base64.b64encode(b"test").decode())
    print("AUTH %d" % code)
s.mail(subj + "@client.test")
ok = False
for r in rcpts:
    code, msg = s.rcpt(r)
    print("RCPT <%s> %d %s" % (r, code, msg.decode()))
    ok = ok or code < 300
if ok:
    code, _ = s.data("Subject: %s\r\n\r\nbody\r\n" % subj)
    print("DATA %d" % code)
s.quit()
PY
}

# s0: RCPT from a client Sendmail does not let relay: refused for a
# remote-mode domain (it is not the domain's mail exchanger), accepted for
# the others; the clients it trusts (its own relay permission, asked
# through its rules, not a list mxswitch keeps) are accepted and the mail
# goes to the domain's MX.
send_from 127.0.0.9 s0u bob@remote.test alice@local.test bob@backup.test \
    eve@nokey.test >"$WORK/s0u.out"
expect_eq "s0: untrusted client: 550 5.7.1 with mxswitch's text for a remote-mode domain, 250 for the rest" \
    "$(cat "$WORK/s0u.out")" \
    "RCPT <bob@remote.test> 550 5.7.1 <bob@remote.test>... mail for remote.test is not accepted here: its mail exchanger is elsewhere
RCPT <alice@local.test> 250 2.1.5 <alice@local.test>... Recipient ok
RCPT <bob@backup.test> 250 2.1.5 <bob@backup.test>... Recipient ok
RCPT <eve@nokey.test> 250 2.1.5 <eve@nokey.test>... Recipient ok
DATA 250"
send_from 127.0.0.8 s0r bob@remote.test >"$WORK/s0r.out"
AUTH=1 send_from 127.0.0.9 s0a bob@remote.test >"$WORK/s0a.out"
send_from 127.0.0.1 s0l bob@remote.test >"$WORK/s0l.out"
sm_wait_queue 20 || fail "s0: queue drains" "mail left in the queue"
expect_eq "s0: untrusted client: the local-mode copy delivered here, no remote-mode copy anywhere" \
    "$(sm_count alice s0u)/$(sm_count bob s0u)/$(sink_count remote s0u)" 1/0/1
expect_eq "s0: untrusted client: only the backup-mode recipient reaches the remote MX" \
    "$(sink_rcpts remote s0u | cut -d' ' -f1)" "<bob@backup.test>"
expect_eq "s0: a client in relay-domains (class R): 250, delivered to the domain's MX" \
    "$(cut -d' ' -f1-3 "$WORK/s0r.out" | tr '\n' ' ')/$(sink_count remote s0r)/$(sm_count bob s0r)" \
    "RCPT <bob@remote.test> 250 DATA 250 /1/0"
expect_eq "s0: a client authenticated (SMTP AUTH, TrustAuthMech): 250, delivered to the domain's MX" \
    "$(cut -d' ' -f1-3 "$WORK/s0a.out" | tr '\n' ' ')/$(sink_count remote s0a)/$(sm_count bob s0a)" \
    "AUTH 235 RCPT <bob@remote.test> 250 DATA 250 /1/0"
expect_eq "s0: localhost (Sendmail trusts it): 250, delivered to the domain's MX" \
    "$(cut -d' ' -f1-3 "$WORK/s0l.out" | tr '\n' ' ')/$(sink_count remote s0l)/$(sm_count bob s0l)" \
    "RCPT <bob@remote.test> 250 DATA 250 /1/0"

# s0b: backup mode over SMTP, from a client Sendmail does not trust: the
# address the better MX refuses is refused at RCPT (never accepted and
# then bounced to a forged sender), the other relayed to the better MX.
send_from 127.0.0.9 s0b nobody@bk.test real@bk.test >"$WORK/s0b.out"
expect_eq "s0b: untrusted client, backup mode: 550 5.1.1 for what the better MX refuses, 250 for the rest" \
    "$(cat "$WORK/s0b.out")" \
    "RCPT <nobody@bk.test> 550 5.1.1 <nobody@bk.test>... Recipient address rejected: refused by the better MX of the domain
RCPT <real@bk.test> 250 2.1.5 <real@bk.test>... Recipient ok
DATA 250"
sm_wait_queue 20 || fail "s0b: queue drains" "mail left in the queue"
expect_eq "s0b: relayed to the better MX, for real@bk.test only" \
    "$(sink_rcpts bk s0b | cut -d' ' -f1 | tr '\n' ' ')" "<real@bk.test> "
expect_grep "s0: mxswitch logged the refusal it was asked for" \
    "$WORK/mxswitch.log" 'socketmap: verify bob@remote.test -> OK 550 5.7.1'

# s1: local, remote (hosted here too: class w) and a foreign domain with no
# key in one message: each copy in its place once, the address unchanged.
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
expect_eq "s1: remote recipient at the domain's MX once, RCPT exactly the address" \
    "$(sink_count remote s1)/$(sink_rcpts remote s1)" \
    "1/<bob@remote.test> NOTIFY=SUCCESS,FAILURE"
expect_eq "s1: foreign domain with no key goes to its own MX, untouched" \
    "$(sink_rcpts unknown s1 | cut -d' ' -f1)/$(sink_count unknown s1)" \
    "<carol@unknown.test>/1"
expect_grep "s1: the milter is in the chain: it saw the remote recipient" \
    "$WORK/mxswitch.log" 'rcpt=<bob@remote.test>'

# s2: a flip between two messages, no restart of anything.
SUBJECT=s2a smtp_send sender@client.test bob@remote.test >/dev/null
sm_wait_queue 20
rset remote.test local
SUBJECT=s2b smtp_send sender@client.test bob@remote.test >/dev/null
sm_wait_queue 20
rset remote.test remote
expect_eq "s2: before the flip at the MX, after SET local delivered here" \
    "$(sink_count remote s2a)/$(sm_count bob s2a) $(sink_count remote s2b)/$(sm_count bob s2b)" \
    "1/0 0/1"

# s3: the decision is made before aliases: an alias of a local domain into
# a remote-mode domain goes remote; a local alias in a remote-mode domain
# is not used; local mode for a relay domain is delivered here.
SUBJECT=s3 smtp_send sender@client.test sales@local.test info@remote.test \
    dave@relayed.test >/dev/null
sm_wait_queue 20
expect_eq "s3: an alias into a remote-mode domain reaches that domain's MX" \
    "$(sink_rcpts remote s3 | cut -d' ' -f1 | tr '\n' ' ')" \
    "<carol@remote.test> <info@remote.test> "
expect_eq "s3: neither alias target is delivered here" \
    "$(sm_count carol s3)/$(sm_count alice s3)" 0/0
expect_eq "s3: local mode for a relay domain: delivered here, not relayed" \
    "$(sm_count dave s3)/$(sink_count relayed s3)" 1/0

# s4: per-address key: only that address of the domain goes remote.
redis-cli -p 6379 SET mxswitch:address:ceo@local.test remote >/dev/null
SUBJECT=s4 smtp_send sender@client.test ceo@local.test alice@local.test \
    >/dev/null
sm_wait_queue 20
expect_eq "s4: an address key sends just that address to the domain's MX" \
    "$(sink_rcpts localmx s4 | cut -d' ' -f1)/$(sm_count ceo s4)/$(sm_count alice s4)" \
    "<ceo@local.test>/0/1"
redis-cli -p 6379 DEL mxswitch:address:ceo@local.test >/dev/null

# s5: a bounce (no milter sees it) to a remote-mode sender goes to the
# sender's domain's MX.
SUBJECT=s5 smtp_send bob@remote.test nobody@bad.test >"$WORK/s5.out"
sm_wait_queue 20
expect_eq "s5: the message to the refusing exchanger was accepted" \
    "$(cat "$WORK/s5.out")" "RCPT <nobody@bad.test> 250
DATA 250"
expect_eq "s5: the bounce to a remote-mode sender reaches its MX, from <>" \
    "$(sink_rcpts remote s5 | cut -d' ' -f1)/$(grep -lx 'Subject: s5' "$WORK"/sink/remote/* 2>/dev/null |
        xargs -r sed -n 's/^X-Mail-Args: //p')" "<bob@remote.test>/<>"
expect_eq "s5: the bounce is not delivered here" "$(sm_count bob s5)" 0

# s6: a flip applies to mail already queued, at the next queue run: mail
# for a remote-mode relay domain waits while its MX is down, then the
# domain is switched to local (without mxswitch Sendmail would keep it for
# that MX).
rset relayed.test remote
stop_pid "$SINK_PID_relayed"
SUBJECT=s6 smtp_send sender@client.test dave@relayed.test >/dev/null
sleep 2
expect_eq "s6: with the MX down the message waits in the queue" \
    "$(sm_queued)/$(sm_count dave s6)" 1/0
rset relayed.test local
sm_wait_queue 20
expect_eq "s6: after the flip to local the queued message is delivered here" \
    "$(sm_count dave s6)/$(sm_queued)" 1/0
pf_sink relayed 127.0.0.25 || abort "sink relayed restarts"

# s7: hold: remote mode while the domain's best MX is this server.  At RCPT
# a 4xx; mail already queued (the server's own sendmail, which passes no
# milter) stays queued, neither bounced nor looped; a flip to local
# delivers it.
SMTP_VERBOSE=1 SUBJECT=s7a smtp_send sender@client.test zoe@held.test \
    >"$WORK/s7a.out"
expect_eq "s7: RCPT for a held domain gets 451 4.4.6" \
    "$(cut -d' ' -f1-5 "$WORK/s7a.out")" "RCPT <zoe@held.test> 451 451 4.4.6"
SMTP_VERBOSE=1 SUBJECT=s7b smtp_send zoe@held.test carol@unknown.test \
    >"$WORK/s7b.out"
sm_wait_queue 20
expect_eq "s7: a user of a held domain can still send out" \
    "$(cut -d' ' -f1-3 "$WORK/s7b.out" | tr '\n' ' ')/$(sink_count unknown s7b)" \
    "RCPT <carol@unknown.test> 250 DATA 250 250 /1"
printf 'Subject: s7\n\nbody\n' |
    sm_inject www@local.test zoe@held.test >>"$WORK/inject.log" 2>&1
sleep 3
expect_eq "s7: held mail stays queued over several queue runs" \
    "$(sm_queued)" 1
expect_eq "s7: nothing came back to the sender (no bounce, no warning)" \
    "$(ls "$SM_MAIL/www" 2>/dev/null | wc -l)" 0
rset held.test local
sm_wait_queue 20
expect_eq "s7: after the flip to local the held message is delivered here" \
    "$(sm_count zoe s7)/$(sm_queued)" 1/0
rset held.test remote

# s8: Redis down and no cached answer: the socket map answers TEMP, and
# ruleset 0 refuses a class-w recipient with 451 4.3.0 before the milter
# is asked; once Redis is back the retry is accepted.
stop_pid "$REDIS_PID"
SMTP_VERBOSE=1 SUBJECT=s8a smtp_send sender@client.test eve@fresh.test \
    >"$WORK/s8a.out"
expect_eq "s8: Redis down: RCPT for a class-w domain not cached gets the map's 451 4.3.0" \
    "$(cat "$WORK/s8a.out")" \
    "RCPT <eve@fresh.test> 451 451 4.3.0 Mail routing temporarily unavailable"
# routing.on_error "default" with routing.default remote: a domain not
# cached routes remote, but a client Sendmail would not let relay waits
# (4xx), never 550 on a guess; a trusted one is accepted.
sed 's|^routing: { |routing: { on_error = "default"; default = "remote"; |' \
    "$WORK/mx.conf" >"$WORK/mx-default.conf"
cp "$WORK/mx.conf" "$WORK/mx-tempfail.conf"
cp "$WORK/mx-default.conf" "$WORK/mx.conf"
kill -USR1 "$MX_PID"
poll_for 1 50 grep -c "configuration 2 in force" "$WORK/mxswitch.log" >/dev/null
expect_eq "s8: Redis down, on_error default remote: an untrusted client gets 451 4.3.0, not 550" \
    "$(bt_rcpt 127.0.0.9 outside.example.test '' eve@standby.test)" \
    '$# error $@ 4 . 3 . 0 $: "451 4.3.0 Mail routing temporarily unavailable"'
expect_eq "s8: Redis down, on_error default remote: a trusted client is accepted" \
    "$(bt_rcpt 127.0.0.1 localhost '' eve@standby.test)" 'RELAY'
cp "$WORK/mx-tempfail.conf" "$WORK/mx.conf"
kill -USR1 "$MX_PID"
poll_for 1 50 grep -c "configuration 3 in force" "$WORK/mxswitch.log" >/dev/null
start_redis 6379 || abort "redis restarts"
set_keys
s8_retry() { SUBJECT=s8a smtp_send sender@client.test eve@fresh.test; }
poll_for "RCPT <eve@fresh.test> 250
DATA 250" 30 s8_retry
sm_wait_queue 20
expect_eq "s8: Redis back: the retry is accepted and delivered here once" \
    "$GOT/$(sm_count eve s8a)" "RCPT <eve@fresh.test> 250
DATA 250/1"

# s8: the map down (mxswitch stopped): no class-w recipient is accepted,
# queued mail is deferred, not bounced nor delivered here; after the
# restart it is delivered at once.
stop_pid "$SINK_PID_remote"
SUBJECT=s8q smtp_send sender@client.test bob@remote.test >/dev/null
sleep 1
stop_mxswitch "mxswitch stops for the outage test"
pf_sink remote 127.0.0.21 || abort "sink remote restarts"
SMTP_VERBOSE=1 SUBJECT=s8 smtp_send sender@client.test alice@local.test \
    >"$WORK/s8.out"
expect_eq "s8: mxswitch down: a 4xx and nothing accepted" \
    "$(grep -c ' 4[0-9][0-9] ' "$WORK/s8.out" | sed 's/^[1-9][0-9]*$/4xx/')/$(grep -c -e ' 2[0-9][0-9] ' "$WORK/s8.out")" \
    "4xx/0"
sleep 3
expect_eq "s8: mxswitch down: the queued message is deferred, not delivered" \
    "$(sm_queued)/$(sink_count remote s8q)/$(sm_count bob s8q)" 1/0/0
# The restart also takes a socketmap.helo_name (read at start).
sed -i 's|^socketmap: { socket = "inet:8893@127.0.0.1"; };$|socketmap: { socket = "inet:8893@127.0.0.1"; helo_name = "mx.hosting.test"; };|' \
    "$WORK/mx.conf"
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts"
expect_eq "after the restart (nothing remembered) the probe says EHLO with socketmap.helo_name" \
    "$(head_of "$(bt_rcpt 127.0.0.9 outside.example.test '' nobody@bk.test)" '$# error $@ 5 . 1 . 1')/$(sed -n 's/^cmd: EHLO //p' "$WORK/sink-bk.log" | tail -n 1)" \
    '$# error $@ 5 . 1 . 1/mx.hosting.test'
sm_wait_queue 20
expect_eq "s8: after the restart the queued message reaches the MX once" \
    "$(sink_count remote s8q)/$(sm_count bob s8q)" 1/0
SUBJECT=s8 smtp_send sender@client.test alice@local.test >/dev/null
sm_wait_queue 20
expect_eq "s8: after the restart the retry is delivered here once" \
    "$(sm_count alice s8)" 1

expect_eq "no tag anywhere: exchangers, mailboxes, Sendmail's and mxswitch's logs" \
    "$(grep -rl -e 'mx-remote' -e 'mx-local' "$WORK/sink" "$SM_MAIL" \
        "$SM_DIR/traffic.log" "$WORK/mxswitch.log" | wc -l)" 0

# s9: mail queued before the upgrade still carries the old tag: it goes to
# the exchanger without it.
sm_stop
printf 'Subject: s9\n\nbody\n' | sm_inject sender@client.test \
    bob+mx-remote@remote.test dave+mx-local@relayed.test >>"$WORK/inject.log" 2>&1
expect_eq "s9: the queued message carries the old tags" \
    "$(cat "$SM_DIR"/mqueue/qf* | grep -c -e '^R.*bob+mx-remote@remote.test$' -e '^R.*dave+mx-local@relayed.test$')" 2
sm_start || abort "sendmail restarts"
sm_wait_queue 20
expect_eq "s9: an old remote tag reaches the MX as the plain address, RCPT exactly it" \
    "$(sink_rcpts remote s9)/$(sm_count bob s9)" "<bob@remote.test>/0"
expect_eq "s9: an old local tag is delivered here to the plain user" \
    "$(sm_count dave s9)/$(sink_count relayed s9)" 1/0
expect_eq "s9: the old tag leaves no trace at the exchanger, in mailboxes or logs" \
    "$(grep -rl -e 'mx-remote' -e 'mx-local' "$WORK/sink" "$SM_MAIL" \
        "$SM_DIR/traffic.log" "$WORK/mxswitch.log" | wc -l)" 0

# s10: undo: both files as before, mxswitch is asked no more.
setup --undo >>"$WORK/setup.log" 2>&1
expect_eq "s10: --undo succeeds" "$?" 0
expect_eq "s10: .mc and .cf are the originals again" \
    "$(cmp -s "$SM_MC" "$WORK/sendmail.mc.orig" && cmp -s "$SM_CF" "$WORK/sendmail.cf.orig" && echo same)" same
sm_restart || abort "sendmail restarts"
SUBJECT=s10 smtp_send sender@client.test bob@remote.test >/dev/null
sm_wait_queue 20
expect_eq "s10: without mxswitch a class-w domain is delivered here again" \
    "$(sink_count remote s10)/$(sm_count bob s10)" 0/1

sm_stop
stop_mxswitch "mxswitch exits cleanly"
finish
