#!/bin/bash
# test_modes - every routing mode as the MTA sees it: the socket map's
# answers (transport, valias, rcpt; asked as Postfix's postmap and as the
# MTA's connection does), the milter's RCPT reply (tests/mtc) and its
# decision line, with a real redis-server and dnsmasq serving MX records
# that point at this host (127.0.0.1) and elsewhere, in a private network
# namespace (pf_lib.sh).  Covers backup, auto (local, backup, remote,
# none, implicit MX, null MX, NXDOMAIN, SERVFAIL, timeout, an unresolvable
# best MX), routing.default = auto, a local default that never delivers
# here, routing.on_error = default, routing.local_addresses with IPv6
# ranges and by default (::1), the TTL-bounded decision cache and
# cache.stale_ttl past it, a slow DNS answer that blocks no other session,
# and mxswitch-ctl explain for auto.
T_NAME=test_modes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

# SERVFAIL for names outside .test (PF_SERVFAIL, pf_dns_refuser in
# pf_lib.sh).  slow.example is forwarded to 127.0.0.10, where nothing
# answers: a timeout.
# mx.pool.test: a pool of 25 exchangers, this server among them; the DNS
# server gives them in a new order each time, and mxswitch keeps 8 of a
# host's addresses (DNS_MAX_ADDRS)
PF_DNS=(
    --local-ttl=600
    $(for i in $(seq 31 54); do echo "--host-record=mx.pool.test,127.0.0.$i"; done)
    --host-record=mx.pool.test,127.0.0.1
    "${PF_SERVFAIL[@]}"
    --server=/slow.example/127.0.0.10
    --host-record=mx.hosting.test,127.0.0.1,0
    --host-record=mx.there.test,127.0.0.21,0
    --host-record=mx.primary.test,127.0.0.22,0
    --host-record=mx6.hosting.test,2001:db8:25::1,0
    --mx-host=here.test,mx.hosting.test,10
    $(for i in 1 2 3 4 5; do echo "--mx-host=pool$i.test,mx.pool.test,10"; done)
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
    nullmx.test pool1.test pool2.test pool3.test pool4.test pool5.test \
    badmx.test badlow.test implicit.test implicitfar.test nx.test \
    servfail.example slow.example cached.test short.test v6lo.test; do
    rset "$d" auto
done
rset there.test AUTO
rset explicit.test backup
rset keyed.test remote

MILTER="inet:8891@127.0.0.1"
SMAP_PORT=8893
mkdir -p "$WORK/postfix"
: >"$WORK/postfix/main.cf"
# q MAP KEY - what Postfix's own client (postmap) is told: the value or
# NOTFOUND
q() {
    timeout 30 postmap -c "$WORK/postfix" -q "$2" \
        "socketmap:inet:127.0.0.1:$SMAP_PORT:$1" 2>&1 || echo NOTFOUND
}
# routes DOMAIN... - the transport answers for u@DOMAIN, joined by |
routes() {
    local d
    for d in "$@"; do printf '%s|' "$(route_of "$d")"; done
}
# The instance's transports, as the setup script writes them.
transports "$WORK"
write_conf() {
    cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { $1 };
cache: { ttl = 3600; ${2:-} };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
CONF
}
start() { start_mxswitch "$WORK/mx.conf" 8891 && wait_port "$SMAP_PORT" 5; }
T450="reply 450 4.4.6 The domain's mail exchanger is moving, try again later"

# Phase 1: keys say auto; this server is its interface addresses.
write_conf 'default = "none";'
start || abort "mxswitch"

check_mt "auto domains: the milter accepts every recipient and changes none" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@here.test>
rcpt <b@there.test>
rcpt <c@backup.test>
rcpt <d@tie.test>
rcpt <a@hereplus.test>
eom
==>
connect: continue
mail: continue
rcpt <a@here.test>: continue
rcpt <b@there.test>: continue
rcpt <c@backup.test>: continue
rcpt <d@tie.test>: continue
rcpt <a@hereplus.test>: continue
eom: continue
EOF
L=$WORK/mxswitch.log
expect_grep "auto local is logged with source dns" "$L" \
    'rcpt=<a@here.test> domain=here.test mode=local source=dns key=mxswitch:domain:here.test action=local \('
expect_grep "auto remote (value AUTO in upper case) is logged" "$L" \
    'rcpt=<b@there.test> domain=there.test mode=remote source=dns key=mxswitch:domain:there.test action=remote \('
expect_grep "auto backup is logged, routed like remote" "$L" \
    'rcpt=<c@backup.test> domain=backup.test mode=backup source=dns .*action=remote \('
expect_grep "a tie at the best preference with this server is local" "$L" \
    'rcpt=<d@tie.test> domain=tie.test mode=local source=dns .*action=local'
expect_grep "the evidence names MX records and the matching address" "$L" \
    'rcpt=<c@backup.test> .*; MX 10 mx.primary.test \[127.0.0.22\], 20 mx.hosting.test \[127.0.0.1 \(this server: 127.0.0.1\)\]; lower-preference MX mx.hosting.test is this server: backup'
expect_grep "once the best MX is here, lower MX hosts are not asked" "$L" \
    'rcpt=<a@hereplus.test> domain=hereplus.test mode=local .*; MX 10 mx.hosting.test \[127.0.0.1 \(this server: 127.0.0.1\)\], 20 mx.there.test \[not looked up\]; best MX mx.hosting.test is this server: local'
expect_eq "transport: auto local (best MX or a tie here) is the local transport; remote and backup smtp" \
    "$(routes here.test tie.test hereplus.test there.test backup.test)" \
    "OK virtual:|OK virtual:|OK virtual:|OK smtp:|OK smtp:|"
expect_eq "auto: a best MX of 25 addresses, this server's among them, is local" \
    "$(routes pool1.test pool2.test pool3.test pool4.test pool5.test)" \
    "OK virtual:|OK virtual:|OK virtual:|OK virtual:|OK virtual:|"
expect_eq "rcpt: auto remote refuses untrusted clients, auto backup verifies, auto local has no opinion" \
    "$(smap_ask rcpt u@there.test u@backup.test u@here.test | tr '\n' '|')" \
    "OK 550 5.7.1 mail for there.test is not accepted here: its mail exchanger is elsewhere|OK reject_unverified_recipient|NOTFOUND|"

expect_eq "mode (Sendmail): auto local, remote and backup; none is no opinion" \
    "$(smap_ask mode u@here.test u@there.test u@backup.test u@nx.test | tr '\n' '|')" \
    "OK local|OK remote|OK remote|NOTFOUND|"

# An explicit backup key on a domain whose MX hosts are not this server
# (explicit.test has none): routed to them, and verified.
expect_eq "explicit backup key: transport smtp:, rcpt reject_unverified_recipient" \
    "$(route_of explicit.test)/$(smap_ask rcpt u@explicit.test)" \
    "OK smtp:/OK reject_unverified_recipient"
expect_eq "explicit backup key: the milter accepts" \
    "$(rcpt_answer explicit.test)" continue
expect_grep "explicit backup key: the decision line names the key" "$L" \
    'rcpt=<u@explicit.test> domain=explicit.test mode=backup source=(redis|cache) key=mxswitch:domain:explicit.test action=remote \(to the MX hosts better than this one'

check_mt "auto: implicit MX, null MX and NXDOMAIN are accepted unchanged" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@implicit.test>
rcpt <b@implicitfar.test>
rcpt <c@nullmx.test>
rcpt <d@nx.test>
eom
==>
connect: continue
mail: continue
rcpt <a@implicit.test>: continue
rcpt <b@implicitfar.test>: continue
rcpt <c@nullmx.test>: continue
rcpt <d@nx.test>: continue
eom: continue
EOF
expect_eq "transport: implicit MX here local, elsewhere remote; null MX and NXDOMAIN no opinion" \
    "$(routes implicit.test implicitfar.test nullmx.test nx.test)" \
    "OK virtual:|OK smtp:|NOTFOUND|NOTFOUND|"
expect_grep "implicit MX evidence" "$L" \
    'rcpt=<a@implicit.test> domain=implicit.test mode=local .*no MX records: implicit MX implicit.test \[127.0.0.1 \(this server: 127.0.0.1\)\]'
expect_grep "null MX gives none" "$L" \
    'rcpt=<c@nullmx.test> domain=nullmx.test mode=none source=dns .*action=none \('
expect_grep "NXDOMAIN gives none" "$L" \
    'rcpt=<d@nx.test> domain=nx.test mode=none source=dns .*action=none \(.*NXDOMAIN'

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
eom: continue
EOF
expect_grep "SERVFAIL is logged as a failed MX lookup" "$L" \
    'rcpt=<a@servfail.example> domain=servfail.example: lookup failed \(auto mode: MX lookup failed .*answered 451 4.3.0'
expect_grep "dnsmasq really answered SERVFAIL" "$WORK/dnsmasq.log" \
    'validation (servfail.example|example) is (BOGUS|ABANDONED)|SERVFAIL'
expect_grep "an unresolvable best MX is logged" "$L" \
    'domain=badmx.test: lookup failed \(auto mode: best MX mx.nowhere.test does not resolve \(NXDOMAIN\)\)'
expect_eq "transport: SERVFAIL and an unresolvable best MX are TEMP; a lower one that does not resolve is no matter" \
    "$(routes servfail.example badmx.test badlow.test)" \
    "TEMP auto mode: MX lookup failed (SERVFAIL, REFUSED or no answer in time)|TEMP auto mode: best MX mx.nowhere.test does not resolve (NXDOMAIN)|OK smtp:|"

expect_eq "valias (postmap): auto remote and backup users, explicit backup too, are known" \
    "$(q valias x@there.test)/$(q valias x@backup.test)/$(q valias x@explicit.test)" \
    "x@there.test/x@backup.test/x@explicit.test"
expect_eq "valias (postmap): auto local and none are not" \
    "$(q valias x@here.test)/$(q valias x@nx.test)" "NOTFOUND/NOTFOUND"
expect_eq "transport (postmap): Postfix's own client is told the same" \
    "$(q transport x@there.test)/$(q transport x@here.test)" "smtp:/virtual:"
expect_grep "socketmap: the DNS evidence is logged" "$L" \
    'socketmap: valias x@there.test -> OK x@there.test \(domain there.test mode remote action remote from dns key "mxswitch:domain:there.test": .*MX 10 mx.there.test \[127.0.0.21\]; no MX host is this server: remote'

# The default local_addresses are the interfaces' addresses, IPv6 too: an
# MX host whose only address is ::1 is this server.
expect_eq "auto: an MX host on ::1 (an interface address) is local" \
    "$(route_of v6lo.test)" "OK virtual:"
expect_grep "the evidence names ::1 as this server" "$L" \
    'socketmap: transport u@v6lo.test -> OK virtual: \(domain v6lo.test mode local .*MX 10 mx6lo.hosting.test \[::1 \(this server: ::1\)\]'

# A slow DNS answer holds up its own session only: while u@late.slow.example
# (a name no earlier step asked, so no background lookup of it is under
# way; it takes slow.example's auto key) waits for DNS, another session's
# auto lookup (DNS asked again: TTL 0) is answered; compared, so no speed
# is asserted.
t0=$(date +%s%N)
{ rcpt_answer late.slow.example >"$WORK/slow.out"; date +%s%N >"$WORK/slow.end"; } &
SLOW=$!
track "$SLOW"
sleep 0.2
before=$(grep -c 'rcpt=<u@there.test> domain=there.test mode=remote source=dns .*action=remote' "$L")
expect_eq "while slow.example waits on DNS, there.test is answered" \
    "$(rcpt_answer there.test)" "continue"
t1=$(date +%s%N)
expect_eq "and decided from DNS (remote)" \
    "$(grep -c 'rcpt=<u@there.test> domain=there.test mode=remote source=dns .*action=remote' "$L")" \
    "$((before + 1))"
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
expect_eq "cached.test is looked up while DNS is there: local" \
    "$(route_of cached.test)" "OK virtual:"
stop_pid "$PF_DNS_PID"
check_mt "DNS down: a decision within its TTL is served from the cache" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@cached.test>
rcpt <b@here.test>
eom
==>
connect: continue
mail: continue
rcpt <a@cached.test>: continue
rcpt <b@here.test>: reply 451 4.3.0 Mail routing temporarily unavailable, try again later
eom: continue
EOF
expect_eq "DNS down: transport local within the TTL, TEMP past it" \
    "$(routes cached.test here.test | sed 's/TEMP [^|]*/TEMP/')" "OK virtual:|TEMP|"
expect_grep "the cached evidence says so" "$L" \
    'rcpt=<a@cached.test> domain=cached.test mode=local source=dns .*action=local \(.*MX 10 mx.cached.test \[127.0.0.1 \(this server: 127.0.0.1\), 2001:db8:99::1\]; best MX mx.cached.test is this server: local; cached, [0-9]+ s left'
stop_mxswitch "mxswitch stops (phase 1)"

# Phase 2: routing.default = auto, this server given as ranges (IPv4 and
# IPv6) in routing.local_addresses; DNS back.
pf_dns_start || abort "DNS restarts"
write_conf 'default = "auto"; local_addresses = ["127.0.0.0/30", "2001:db8:25::/48"];'
start || abort "mxswitch restarts"
check_mt "default auto: the milter accepts unchanged" <<'EOF'
connect client.test 127.0.0.1
mail <sender@client.test>
rcpt <a@dflt.test>
rcpt <b@dfltfar.test>
rcpt <c@v6.test>
rcpt <d@keyed.test>
eom
==>
connect: continue
mail: continue
rcpt <a@dflt.test>: continue
rcpt <b@dfltfar.test>: continue
rcpt <c@v6.test>: continue
rcpt <d@keyed.test>: continue
eom: continue
EOF
expect_eq "default auto: no key, DNS decides; an IPv6 range matches; a key still wins" \
    "$(routes dflt.test dfltfar.test v6.test keyed.test)" \
    "OK virtual:|OK smtp:|OK virtual:|OK smtp:|"
expect_grep "default auto is logged with key -" "$L" \
    'rcpt=<a@dflt.test> domain=dflt.test mode=local source=dns key=- action=local \('
expect_grep "the matching range is named in the evidence" "$L" \
    'rcpt=<c@v6.test> domain=v6.test mode=local .*MX 10 mx6.hosting.test \[2001:db8:25::1 \(this server: 2001:db8:25::/48\)\]'
expect_grep "a key still wins over the auto default" "$L" \
    'rcpt=<d@keyed.test> domain=keyed.test mode=remote source=redis key=mxswitch:domain:keyed.test action=remote \('
expect_eq "valias (postmap): default auto makes remote users known, local not" \
    "$(q valias x@dfltfar.test)/$(q valias x@dflt.test)" "x@dfltfar.test/NOTFOUND"
stop_mxswitch "mxswitch stops (phase 2)"

# Phase 3: on_error = "default" with default = auto: a DNS failure routes
# as none (auto cannot stand in for itself).
write_conf 'default = "auto"; on_error = "default";'
start || abort "mxswitch restarts (phase 3)"
expect_eq "on_error default with default auto: the milter accepts a DNS failure" \
    "$(rcpt_answer servfail.example)" continue
expect_grep "and says it used the default, as none" "$L" \
    'rcpt=<u@servfail.example> domain=servfail.example: lookup failed \(auto mode: MX lookup failed.*using routing.default none'
expect_eq "on_error default with default auto: transport no opinion, not TEMP" \
    "$(route_of servfail.example)" NOTFOUND
stop_mxswitch "mxswitch stops (phase 3)"

# Phase 3b: a local default never delivers here: a domain with no key is
# left to the MTA; a local key still is local.
redis-cli -p 6379 SET mxswitch:domain:keyedlocal.test local >/dev/null
write_conf 'default = "local";'
start || abort "mxswitch restarts (phase 3b)"
expect_eq "default local: no key gives no opinion, a local key the local transport" \
    "$(routes nokey.test keyedlocal.test)" "NOTFOUND|OK virtual:|"
expect_eq "default local: the milter accepts" "$(rcpt_answer nokey.test)" continue
expect_grep "default local: the decision line says local, action none, and why" "$L" \
    'rcpt=<u@nokey.test> domain=nokey.test mode=local source=[a-z]+ key=- action=none \(a local default never overrides the MTA.s routing\)'
stop_mxswitch "mxswitch stops (phase 3b)"

# explain resolves auto exactly as the daemon: the MX records, the address
# that matched, the mode, the action and every map's answer; a DNS failure
# is a lookup error.
write_conf 'default = "none";'
# xp ADDRESS - mxswitch-ctl explain; exit status and the lines that show
# the decision, joined by |
xp() {
    local rc=0 out
    out=$($WRAP "$MXCTL" -c "$WORK/mx.conf" explain "$@" 2>&1) || rc=$?
    echo "$rc/$(echo "$out" | grep -e '^dns:' -e '^mode:' -e '^lookup:' \
        -e '^decision:' -e '^map transport:' -e '^map rcpt:' -e '^milter' |
        tr '\n' '|')"
}
expect_eq "explain auto, best MX here: local, the local transport, exit 10" \
    "$(xp a@here.test)" \
    "10/dns: MX 10 mx.hosting.test [127.0.0.1 (this server: 127.0.0.1)]; best MX mx.hosting.test is this server: local|mode: local (auto, from DNS)|decision: local (to the mailbox on this server)|map transport: OK virtual:|map rcpt: NOTFOUND|milter at RCPT: continue|"
expect_eq "explain auto, MX elsewhere: remote with the evidence, exit 11" \
    "$(xp b@there.test)" \
    "11/dns: MX 10 mx.there.test [127.0.0.21]; no MX host is this server: remote|mode: remote (auto, from DNS)|decision: remote (to the domain's MX hosts)|map transport: OK smtp:|map rcpt: OK 550 5.7.1 mail for there.test is not accepted here: its mail exchanger is elsewhere|milter at RCPT: continue|"
OUT=$(xp c@badmx.test)
expect_eq "explain auto, best MX does not resolve: temp, 451 as the milter, exit 75" \
    "$(echo "$OUT" | sed 's/lookup: failed: [^|]*|/lookup: failed: W|/')" \
    "75/lookup: failed: W|dns: MX 10 mx.nowhere.test [NXDOMAIN]|mode: none|decision: temp (lookup failed)|map transport: TEMP|map rcpt: TEMP|milter at RCPT: 451 4.3.0|"
expect_eq "explain auto: the DNS failure is named" \
    "$(echo "$OUT" | grep -c 'lookup: failed: auto mode: best MX mx.nowhere.test does not resolve')" 1

# Phase 4: cache.stale_ttl covers DNS answers too.  short.test's decision
# rests on a host record of TTL 2; DNS goes away; within stale_ttl the
# expired decision still routes (a warning, once), beyond it the lookup
# error stands.
write_conf 'default = "none";' 'stale_ttl = 600;'
start || abort "mxswitch restarts (phase 4)"
expect_eq "stale DNS: short.test is remote while DNS answers" \
    "$(route_of short.test)" "OK smtp:"
stop_pid "$PF_DNS_PID"
sleep 2.5
expect_eq "stale DNS: past its TTL, DNS down: the expired decision routes" \
    "$(route_of short.test)" "OK smtp:"
expect_eq "stale DNS: and again, and the milter accepts" \
    "$(route_of short.test)/$(rcpt_answer short.test)" "OK smtp:/continue"
expect_eq "stale DNS: one warning names the domain, stale and why" \
    "$(grep -c -E 'DNS cannot answer for short.test: using its auto decision up to cache.stale_ttl past its TTL \(MX 10 mx.short.test \[127.0.0.21, 2001:db8:21::1\]; no MX host is this server: remote; stale: expired [0-9]+ s ago, and now MX lookup failed' "$L")" 1
expect_grep "stale DNS: the decision line says dns" "$L" \
    'rcpt=<u@short.test> domain=short.test mode=remote source=dns key=mxswitch:domain:short.test action=remote \('
stop_mxswitch "mxswitch stops (phase 4, stale)"
pf_dns_start || abort "DNS restarts (phase 4)"
write_conf 'default = "none";' 'stale_ttl = 1;'
start || abort "mxswitch restarts (phase 4b)"
expect_eq "beyond stale_ttl: short.test is remote while DNS answers" \
    "$(route_of short.test)" "OK smtp:"
stop_pid "$PF_DNS_PID"
sleep 3.5
expect_eq "beyond stale_ttl (1 s past a TTL of 2 s): the lookup error stands" \
    "$(route_of short.test | cut -c1-4)/$(rcpt_answer short.test)" "TEMP/$T451"
stop_mxswitch "mxswitch stops (phase 4, beyond stale)"
finish
