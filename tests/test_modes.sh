#!/bin/bash
# test_modes - every routing mode through the milter protocol (tests/mtc)
# and the socketmap (postmap -q), with a real redis-server and dnsmasq
# serving MX records that point at this host (127.0.0.1) and elsewhere, in
# a private network namespace (pf_lib.sh).  Covers backup, auto (local,
# backup, remote, none, implicit MX, null MX, NXDOMAIN, SERVFAIL, timeout,
# an unresolvable best MX), routing.default = auto, routing.local_addresses
# with IPv6 ranges and by default (::1), the TTL-bounded decision cache and
# cache.stale_ttl past it, a slow DNS answer that blocks no other session,
# and mxswitch-ctl explain for auto.
T_NAME=test_modes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

# SERVFAIL for names outside .test (PF_SERVFAIL, pf_dns_refuser in
# pf_lib.sh).  slow.example is forwarded to 127.0.0.10, where nothing
# answers: a timeout.
PF_DNS=(
    --local-ttl=600
    "${PF_SERVFAIL[@]}"
    --server=/slow.example/127.0.0.10
    --host-record=mx.hosting.test,127.0.0.1,0
    --host-record=mx.there.test,127.0.0.21,0
    --host-record=mx.primary.test,127.0.0.22,0
    --host-record=mx6.hosting.test,2001:db8:25::1,0
    --mx-host=here.test,mx.hosting.test,10
    --mx-host=there.test,mx.there.test,10
    --mx-host=backup.test,mx.primary.test,10
    --mx-host=backup.test,mx.hosting.test,20
    --mx-host=tie.test,mx.there.test,10
    --mx-host=hereplus.test,mx.hosting.test,10
    --mx-host=hereplus.test,mx.there.test,20
    --mx-host=tie.test,mx.hosting.test,10
    --mx-host=v6.test,mx6.hosting.test,10
    --mx-host=nullmx.test,.,0
    --mx-host=badmx.test,mx.nowhere.test,10
    --mx-host=badlow.test,mx.there.test,10
    --mx-host=badlow.test,mx.nowhere.test,20
    --host-record=implicit.test,127.0.0.1,0
    --host-record=implicitfar.test,127.0.0.23,0
    --mx-host=cached.test,mx.cached.test,10
    --host-record=mx.cached.test,127.0.0.1,2001:db8:99::1,600
    --mx-host=dflt.test,mx.hosting.test,10
    --mx-host=dfltfar.test,mx.there.test,10
    --host-record=mx6lo.hosting.test,::1,0
    --mx-host=v6lo.test,mx6lo.hosting.test,10
    --mx-host=short.test,mx.short.test,10
    --host-record=mx.short.test,127.0.0.21,2001:db8:21::1,2
)
pf_net_up || abort "private network and DNS"
pf_dns_refuser

start_redis 6379 || abort "redis"
rset() { redis-cli -p 6379 SET "mxswitch:domain:$1" "$2" >/dev/null; }
for d in here.test hereplus.test there.test backup.test tie.test v6.test \
    nullmx.test \
    badmx.test badlow.test implicit.test implicitfar.test nx.test \
    servfail.example slow.example cached.test short.test v6lo.test; do
    rset "$d" auto
done
rset there.test AUTO
rset explicit.test backup
rset keyed.test remote

MILTER="inet:8891@127.0.0.1"
mkdir -p "$WORK/postfix"
: >"$WORK/postfix/main.cf"
# q KEY - what the socketmap answers through postmap: the value or NOTFOUND
q() {
    timeout 30 postmap -c "$WORK/postfix" -q "$1" \
        socketmap:inet:127.0.0.1:8893:mxswitch 2>&1 || echo NOTFOUND
}
write_conf() {
    cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { $1 };
cache: { ttl = 3600; };
socketmap: { socket = "inet:8893@127.0.0.1"; };
CONF
}

# Phase 1: keys say auto; this server is its interface addresses.
write_conf 'default = "none";'
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"

check_mt "auto: best MX here is local; elsewhere remote; lower MX here backup" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@here.test>
rcpt <b@there.test>
rcpt <c@backup.test>
rcpt <d@tie.test>
eom
==>
connect: continue
mail: continue
rcpt <a@here.test>: continue
rcpt <b@there.test>: continue
rcpt <c@backup.test>: continue
rcpt <d@tie.test>: continue
delrcpt <b@there.test>
addrcpt_par <b+mx-remote@there.test> ORCPT=rfc822;b@there.test
delrcpt <c@backup.test>
addrcpt_par <c+mx-remote@backup.test> ORCPT=rfc822;c@backup.test
eom: continue
EOF
L=$WORK/mxswitch.log
expect_grep "auto local is logged with source dns" "$L" \
    'rcpt=<a@here.test> domain=here.test mode=local source=dns key=mxswitch:domain:here.test action=keep'
expect_grep "auto remote (value AUTO in upper case) is logged" "$L" \
    'rcpt=<b@there.test> domain=there.test mode=remote source=dns key=mxswitch:domain:there.test action=rewrite'
expect_grep "auto backup is logged" "$L" \
    'rcpt=<c@backup.test> domain=backup.test mode=backup source=dns .*action=rewrite new=<c\+mx-remote@backup.test>'
expect_grep "a tie at the best preference with this server is local" "$L" \
    'rcpt=<d@tie.test> domain=tie.test mode=local source=dns'
expect_grep "the evidence names MX records and the matching address" "$L" \
    'debug: .*auto: domain backup.test is backup: MX 10 mx.primary.test \[127.0.0.22\], 20 mx.hosting.test \[127.0.0.1 \(this server: 127.0.0.1\)\]; lower-preference MX mx.hosting.test is this server: backup'

check_mt "auto: best MX here, a lower one elsewhere: local" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@hereplus.test>
==>
connect: continue
mail: continue
rcpt <a@hereplus.test>: continue
EOF
expect_grep "once the best MX is here, lower MX hosts are not asked" "$L" \
    'auto: domain hereplus.test is local: MX 10 mx.hosting.test \[127.0.0.1 \(this server: 127.0.0.1\)\], 20 mx.there.test \[not looked up\]; best MX mx.hosting.test is this server: local'

check_mt "auto local gets the local tag where the MTA would relay or send" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} relay {rcpt_host} here.test
rcpt <a@here.test>
macro R {rcpt_mailer} smtp {rcpt_host} tie.test
rcpt <d@tie.test>
macro R {rcpt_mailer} smtp {rcpt_host} backup.test
rcpt <c@backup.test>
macro R {rcpt_mailer} smtp {rcpt_host} explicit.test
rcpt <e@explicit.test>
macro R {rcpt_mailer} virtual {rcpt_host} explicit.test
rcpt <f@explicit.test>
eom
==>
connect: continue
mail: continue
rcpt <a@here.test>: continue
rcpt <d@tie.test>: continue
rcpt <c@backup.test>: continue
rcpt <e@explicit.test>: continue
rcpt <f@explicit.test>: continue
delrcpt <a@here.test>
addrcpt_par <a+mx-local@here.test> ORCPT=rfc822;a@here.test
delrcpt <d@tie.test>
addrcpt_par <d+mx-local@tie.test> ORCPT=rfc822;d@tie.test
delrcpt <f@explicit.test>
addrcpt_par <f+mx-remote@explicit.test> ORCPT=rfc822;f@explicit.test
eom: continue
EOF
expect_grep "explicit backup key: smtp to the domain is left alone" "$L" \
    'rcpt=<e@explicit.test> domain=explicit.test mode=backup source=redis key=mxswitch:domain:explicit.test action=keep \(MTA already sends it by smtp to explicit.test\)'

check_mt "auto: implicit MX, null MX and NXDOMAIN" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} relay {rcpt_host} implicit.test
rcpt <a@implicit.test>
rcpt <b@implicitfar.test>
macro R {rcpt_mailer} relay {rcpt_host} nullmx.test
rcpt <c@nullmx.test>
macro R {rcpt_mailer} relay {rcpt_host} nx.test
rcpt <d@nx.test>
eom
==>
connect: continue
mail: continue
rcpt <a@implicit.test>: continue
rcpt <b@implicitfar.test>: continue
rcpt <c@nullmx.test>: continue
rcpt <d@nx.test>: continue
delrcpt <a@implicit.test>
addrcpt_par <a+mx-local@implicit.test> ORCPT=rfc822;a@implicit.test
delrcpt <b@implicitfar.test>
addrcpt_par <b+mx-remote@implicitfar.test> ORCPT=rfc822;b@implicitfar.test
eom: continue
EOF
expect_grep "implicit MX evidence" "$L" \
    'auto: domain implicit.test is local: no MX records: implicit MX implicit.test \[127.0.0.1 \(this server: 127.0.0.1\)\]'
expect_grep "null MX gives none" "$L" \
    'rcpt=<c@nullmx.test> domain=nullmx.test mode=none source=dns .*action=keep'
expect_grep "NXDOMAIN gives none" "$L" \
    'auto: domain nx.test is none: NXDOMAIN'

check_mt "auto: SERVFAIL, timeout and an unresolvable best MX are 451 4.3.0" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@servfail.example>
rcpt <b@slow.example>
rcpt <c@badmx.test>
rcpt <d@badlow.test>
eom
==>
connect: continue
mail: continue
rcpt <a@servfail.example>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
rcpt <b@slow.example>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
rcpt <c@badmx.test>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
rcpt <d@badlow.test>: continue
delrcpt <d@badlow.test>
addrcpt_par <d+mx-remote@badlow.test> ORCPT=rfc822;d@badlow.test
eom: continue
EOF
expect_grep "SERVFAIL is logged as a failed MX lookup" "$L" \
    'rcpt=<a@servfail.example> domain=servfail.example: lookup failed \(auto mode: MX lookup failed .*answered 451 4.3.0'
expect_grep "dnsmasq really answered SERVFAIL" "$WORK/dnsmasq.log" \
    'validation (servfail.example|example) is (BOGUS|ABANDONED)|SERVFAIL'
expect_grep "an unresolvable best MX is logged" "$L" \
    'domain=badmx.test: lookup failed \(auto mode: best MX mx.nowhere.test does not resolve \(NXDOMAIN\)\)'

expect_eq "socketmap: auto remote and backup users are known" \
    "$(q x@there.test)/$(q x@backup.test)/$(q x@explicit.test)" \
    "x@there.test/x@backup.test/x@explicit.test"
expect_eq "socketmap: auto local and none are not" \
    "$(q x@here.test)/$(q x@nx.test)" "NOTFOUND/NOTFOUND"
expect_grep "socketmap: the DNS evidence is logged" "$L" \
    'socketmap: x@there.test -> OK \(domain there.test mode remote from dns key "mxswitch:domain:there.test": MX 10 mx.there.test \[127.0.0.21\]; no MX host is this server: remote\)'

# The default local_addresses are the interfaces' addresses, IPv6 too: an
# MX host whose only address is ::1 is this server.
expect_eq "auto: an MX host on ::1 (an interface address) is local" \
    "$(printf 'connect c 127.0.0.1\nmail <s@c.test>\nmacro R {rcpt_mailer} relay {rcpt_host} v6lo.test\nrcpt <u@v6lo.test>\neom\n' |
        mtc_run | sed -n 's/^addrcpt_par \([^ ]*\).*/\1/p')" "<u+mx-local@v6lo.test>"
expect_grep "the evidence names ::1 as this server" "$L" \
    'auto: domain v6lo.test is local: MX 10 mx6lo.hosting.test \[::1 \(this server: ::1\)\]'

# A slow DNS answer holds up its own session only: while a@slow.example
# waits for the resolver's timeout, another session's auto lookup (DNS
# asked again: TTL 0) is answered; compared, so no speed is asserted.
t0=$(date +%s%N)
{ rcpt_answer slow.example >"$WORK/slow.out"; date +%s%N >"$WORK/slow.end"; } &
SLOW=$!
track "$SLOW"
sleep 0.2
expect_eq "while slow.example waits on DNS, there.test is answered" \
    "$(rcpt_answer there.test)" "continue <u+mx-remote@there.test>"
t1=$(date +%s%N)
wait "$SLOW"
untrack "$SLOW"
expect_eq "the slow session itself ended in 451" "$(cat "$WORK/slow.out")" \
    "$T451"
expect_eq "the answered session finished before the slow one" \
    "$([ "$t1" -lt "$(cat "$WORK/slow.end")" ] && echo yes ||
        echo "no: $(((t1 - t0) / 1000000)) ms against $((($(cat "$WORK/slow.end") - t0) / 1000000)) ms")" yes

# The TTL bounds the cache: cached.test rests on records of TTL 600,
# here.test on a host record of TTL 0.  With DNS gone, the first is still
# known, the second is a lookup error.
check_mt "cached.test is looked up while DNS is there" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@cached.test>
==>
connect: continue
mail: continue
rcpt <a@cached.test>: continue
EOF
stop_pid "$PF_DNS_PID"
check_mt "DNS down: a decision within its TTL is served from the cache" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} relay {rcpt_host} cached.test
rcpt <a@cached.test>
rcpt <b@here.test>
eom
==>
connect: continue
mail: continue
rcpt <a@cached.test>: continue
rcpt <b@here.test>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
delrcpt <a@cached.test>
addrcpt_par <a+mx-local@cached.test> ORCPT=rfc822;a@cached.test
eom: continue
EOF
expect_grep "the cached evidence says so" "$L" \
    'auto: domain cached.test is local: MX 10 mx.cached.test \[127.0.0.1 \(this server: 127.0.0.1\), 2001:db8:99::1\]; best MX mx.cached.test is this server: local; cached, [0-9]+ s left'
stop_mxswitch "mxswitch stops (phase 1)"

# Phase 2: routing.default = auto, this server given as ranges (IPv4 and
# IPv6) in routing.local_addresses; DNS back.
pf_dns_start || abort "DNS restarts"
write_conf 'default = "auto"; local_addresses = ["127.0.0.0/30", "2001:db8:25::/48"];'
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts"
check_mt "default auto: no key, DNS decides; an IPv6 range matches" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} relay {rcpt_host} dflt.test
rcpt <a@dflt.test>
macro R {rcpt_mailer} relay {rcpt_host} dfltfar.test
rcpt <b@dfltfar.test>
macro R {rcpt_mailer} relay {rcpt_host} v6.test
rcpt <c@v6.test>
macro R {rcpt_mailer} smtp {rcpt_host} keyed.test
rcpt <d@keyed.test>
eom
==>
connect: continue
mail: continue
rcpt <a@dflt.test>: continue
rcpt <b@dfltfar.test>: continue
rcpt <c@v6.test>: continue
rcpt <d@keyed.test>: continue
delrcpt <a@dflt.test>
addrcpt_par <a+mx-local@dflt.test> ORCPT=rfc822;a@dflt.test
delrcpt <b@dfltfar.test>
addrcpt_par <b+mx-remote@dfltfar.test> ORCPT=rfc822;b@dfltfar.test
delrcpt <c@v6.test>
addrcpt_par <c+mx-local@v6.test> ORCPT=rfc822;c@v6.test
eom: continue
EOF
expect_grep "default auto is logged with key -" "$L" \
    'rcpt=<a@dflt.test> domain=dflt.test mode=local source=dns key=- action=rewrite'
expect_grep "the matching range is named in the evidence" "$L" \
    'auto: domain v6.test is local: MX 10 mx6.hosting.test \[2001:db8:25::1 \(this server: 2001:db8:25::/48\)\]'
expect_grep "a key still wins over the auto default" "$L" \
    'rcpt=<d@keyed.test> domain=keyed.test mode=remote source=redis key=mxswitch:domain:keyed.test action=keep'
expect_eq "socketmap: default auto makes remote users known, local not" \
    "$(q x@dfltfar.test)/$(q x@dflt.test)" "x@dfltfar.test/NOTFOUND"
stop_mxswitch "mxswitch stops (phase 2)"

# Phase 3: on_error = "default" with default = auto: a DNS failure routes
# as none (auto cannot stand in for itself).
write_conf 'default = "auto"; on_error = "default";'
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts (phase 3)"
check_mt "on_error default with default auto: a DNS failure is none" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
macro R {rcpt_mailer} relay {rcpt_host} servfail.example
rcpt <a@servfail.example>
eom
==>
connect: continue
mail: continue
rcpt <a@servfail.example>: continue
eom: continue
EOF
expect_grep "and says so" "$L" \
    'rcpt=<a@servfail.example> domain=servfail.example: lookup failed \(auto mode: MX lookup failed.*using routing.default auto \(as none\)'
stop_mxswitch "mxswitch stops (phase 3)"

# explain resolves auto exactly as the milter: the MX records, the address
# that matched, the mode and the rewrite; a DNS failure is a lookup error.
write_conf 'default = "none";'
# xp ADDRESS ARGS... - mxswitch-ctl explain; exit status and the lines
# that show the decision, joined by |
xp() {
    local rc=0 out
    out=$($WRAP "$MXCTL" -c "$WORK/mx.conf" explain "$@" 2>&1) || rc=$?
    echo "$rc/$(echo "$out" | grep -e '^auto:' -e '^mode:' -e '^lookup:' \
        -e '^decision:' | tr '\n' '|')"
}
expect_eq "explain auto, best MX here, MTA would relay: local tag, exit 10" \
    "$(xp a@here.test --mailer relay --host here.test)" \
    "10/mode: auto|auto: domain here.test is local: MX 10 mx.hosting.test [127.0.0.1 (this server: 127.0.0.1)]; best MX mx.hosting.test is this server: local|mode: local (auto, from DNS)|decision: rewrite <a@here.test> -> <a+mx-local@here.test> (MTA would send it by relay)|"
OUT=$(xp b@there.test --mailer virtual --host there.test)
expect_eq "explain auto, MX elsewhere: remote tag, exit 11, with the evidence" \
    "$(echo "$OUT" | sed 's/|auto: .*|mode: remote/|auto: E|mode: remote/')" \
    "11/mode: auto|auto: E|mode: remote (auto, from DNS)|decision: rewrite <b@there.test> -> <b+mx-remote@there.test> (MTA would deliver it by virtual to there.test)|"
expect_eq "explain auto: the evidence names the MX host and its address" \
    "$(echo "$OUT" | grep -c 'auto: domain there.test is remote: MX 10 mx.there.test \[127.0.0.21\]')" 1
OUT=$(xp c@badmx.test)
expect_eq "explain auto, best MX does not resolve: 451 as the milter, exit 75" \
    "$(echo "$OUT" | sed 's/lookup: failed: [^|]*|/lookup: failed: W|/')" \
    "75/mode: auto|auto: MX 10 mx.nowhere.test [NXDOMAIN]|lookup: failed: W|decision: 451 4.3.0 (routing.on_error = tempfail)|"
expect_eq "explain auto: the DNS failure is named" \
    "$(echo "$OUT" | grep -c 'lookup: failed: auto mode: best MX mx.nowhere.test does not resolve')" 1

# Phase 4: cache.stale_ttl covers DNS answers too.  short.test's decision
# rests on a host record of TTL 2; DNS goes away; within stale_ttl the
# expired decision still routes (a warning, once), beyond it the lookup
# error stands.
stale_conf() {
    cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { default = "none"; };
cache: { ttl = 3600; stale_ttl = $1; };
CONF
}
stale_conf 600
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts (phase 4)"
expect_eq "stale DNS: short.test is remote while DNS answers" \
    "$(rcpt_answer short.test)" "continue <u+mx-remote@short.test>"
stop_pid "$PF_DNS_PID"
sleep 2.5
expect_eq "stale DNS: past its TTL, DNS down: the expired decision routes" \
    "$(rcpt_answer short.test)" "continue <u+mx-remote@short.test>"
expect_eq "stale DNS: and again" \
    "$(rcpt_answer short.test)" "continue <u+mx-remote@short.test>"
expect_eq "stale DNS: one warning names the domain, stale and why" \
    "$(grep -c -E 'DNS cannot answer for short.test: using its auto decision up to cache.stale_ttl past its TTL \(MX 10 mx.short.test \[127.0.0.21, 2001:db8:21::1\]; no MX host is this server: remote; stale: expired [0-9]+ s ago, and now MX lookup failed' "$L")" 1
expect_grep "stale DNS: the decision line says dns" "$L" \
    'rcpt=<u@short.test> domain=short.test mode=remote source=dns key=mxswitch:domain:short.test action=rewrite'
stop_mxswitch "mxswitch stops (phase 4, stale)"
pf_dns_start || abort "DNS restarts (phase 4)"
stale_conf 1
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch restarts (phase 4b)"
expect_eq "beyond stale_ttl: short.test is remote while DNS answers" \
    "$(rcpt_answer short.test)" "continue <u+mx-remote@short.test>"
stop_pid "$PF_DNS_PID"
sleep 3.5
expect_eq "beyond stale_ttl (1 s past a TTL of 2 s): the lookup error stands" \
    "$(rcpt_answer short.test)" "$T451"
stop_mxswitch "mxswitch stops (phase 4, beyond stale)"
finish
