#!/bin/bash
# test_autodns - cache.stale_ttl and the auto mode's DNS decisions: which
# DNS outcomes after a decision's TTL may be answered from it (failures:
# SERVFAIL, a timeout, a best MX that no longer resolves) and which may not
# (answers: NXDOMAIN, a null MX); and what DNS does to a keyed remote or
# backup domain: held (retry:4.4.6, 450 4.4.6) while its best MX is still
# this server, a backup below a better MX routed there and verified.
# Observed as the MTA sees it: the socket map's answers (transport, rcpt,
# valias), the milter's RCPT reply and its decision line.  Real
# redis-server and dnsmasq, in a private network namespace (pf_lib.sh).
# test_modes covers the rest of auto: the modes, the DNS down case of
# stale_ttl and the lookup error beyond it, ::1 as an interface address, a
# slow answer blocking no other session.
T_NAME=test_autodns
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

# Phase 1: five domains, each with one MX elsewhere (remote), all records
# of TTL 2.  The MX host has an AAAA record too: dnsmasq's NODATA answer
# carries no SOA, and a decision resting on one is not cached.  Keyed
# remote and backup domains besides: moving.test (remote) and
# movingb.test (backup) still have this server as their best MX;
# secondary.test (backup) has a better MX elsewhere and this server below.
PF_DNS=(--local-ttl=2 --host-record=mx.far.test,127.0.0.21,2001:db8:21::1
    --host-record=mx.here.test,127.0.0.1
    --mx-host=moving.test,mx.here.test,10
    --mx-host=movingb.test,mx.here.test,10
    --mx-host=secondary.test,mx.far.test,10
    --mx-host=secondary.test,mx.here.test,20
    --server=/slowmove.test/127.0.0.11)
STALE_DOMAINS="sf.example to.example badbest.test gone.test nullnow.test"
for d in $STALE_DOMAINS; do
    PF_DNS+=("--mx-host=$d,mx.far.test,10")
done
pf_net_up || abort "private network and DNS"
# Phase 2's SERVFAIL (pf_lib.sh): the upstream 127.0.0.9 refuses, and the
# DNSSEC-validating dnsmasq answers SERVFAIL for that.
pf_dns_refuser
# slowmove.test (remote) still has this server as its best MX, and its MX
# answer takes 1.5 s: past the 1 s a lookup waits for DNS.  A DNS server
# of its own on 127.0.0.12 has the records (the MX host with an AAAA
# record too: see above); a relay on 127.0.0.11 passes each question on,
# an MX question after 1.5 s.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
    --listen-address=127.0.0.12 --bind-dynamic --port=53 --user=root \
    --local-ttl=60 --mx-host=slowmove.test,mx.slowmove.test,10 \
    --host-record=mx.slowmove.test,127.0.0.1,::1 \
    --log-facility="$WORK/dnsmasq-slow.log" &
track $!
python3 -c 'import socket, threading, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.11", 53))
def late(q, peer):
    if q[-4:-2] == bytes([0, 15]):  # the question'"'"'s type: MX
        time.sleep(1.5)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(q, ("127.0.0.12", 53))
    s.sendto(u.recvfrom(4096)[0], peer)
while True:
    q, peer = s.recvfrom(4096)
    threading.Thread(target=late, args=(q, peer), daemon=True).start()' &
track $!

start_redis 6379 || abort "redis"
for d in $STALE_DOMAINS; do
    redis-cli -p 6379 SET "mxswitch:domain:$d" auto >/dev/null
done
redis-cli -p 6379 SET mxswitch:domain:moving.test remote >/dev/null
redis-cli -p 6379 SET mxswitch:domain:slowmove.test remote >/dev/null
redis-cli -p 6379 SET mxswitch:domain:movingb.test backup >/dev/null
redis-cli -p 6379 SET mxswitch:domain:secondary.test backup >/dev/null
MILTER="inet:8891@127.0.0.1"
SMAP_PORT=8893
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { default = "none"; };
cache: { ttl = 3600; stale_ttl = 120; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
CONF
transports "$WORK"
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"
wait_port "$SMAP_PORT" 5 || abort "the socket map server listens"
L=$WORK/mxswitch.log

got=""
for d in $STALE_DOMAINS; do
    got="$got$d=$(route_of "$d");"
done
expect_eq "while DNS answers, every auto domain is remote (transport smtp:)" "$got" \
    "sf.example=OK smtp:;to.example=OK smtp:;badbest.test=OK smtp:;gone.test=OK smtp:;nullnow.test=OK smtp:;"
expect_eq "while DNS answers, the milter accepts the auto domains' recipients" \
    "$(for d in $STALE_DOMAINS; do printf '%s ' "$(rcpt_answer "$d")"; done)" \
    "continue continue continue continue continue "
expect_grep "the auto remote decision line says remote from dns" "$L" \
    'rcpt=<u@sf.example> domain=sf.example mode=remote source=dns key=mxswitch:domain:sf.example action=remote \('

# The first lookup of slowmove.test stops waiting for DNS after 1 s and
# takes its best MX as elsewhere; the answer that lands soon after counts
# from the next lookup on (it was remembered as "not here" for 60 s: the
# MTA would loop back and bounce meanwhile).
route_of slowmove.test >/dev/null
sleep 3
expect_eq "a late DNS answer counts at once: the best MX is here, held" \
    "$(route_of slowmove.test)" \
    "OK retry:4.4.6 the best MX of slowmove.test is this server"

# A remote (or backup) key while the best MX is still this server: held.
# The MTA would loop back here and bounce; DNS will catch up.
HOLD_MILTER="reply 450 4.4.6 The domain's mail exchanger is moving, try again later"
for d in moving.test movingb.test; do
    expect_eq "$d ($(redis-cli -p 6379 GET mxswitch:domain:$d) key, best MX here): transport holds it with retry:4.4.6" \
        "$(route_of $d)" "OK retry:4.4.6 the best MX of $d is this server"
    expect_eq "$d: the rcpt map answers 450 4.4.6 to untrusted clients" \
        "$(smap_ask rcpt u@$d)" "OK 450 4.4.6 the best MX of $d is this server: try again later"
    expect_eq "$d: the milter answers 450 4.4.6 at RCPT" \
        "$(rcpt_answer $d)" "$HOLD_MILTER"
done
expect_eq "a held address is its own virtual alias (local aliases bypassed)" \
    "$(smap_ask valias u@moving.test)" "OK u@moving.test"
expect_grep "the held recipient's decision line says hold, with the DNS evidence" "$L" \
    'rcpt=<u@moving.test> domain=moving.test mode=remote source=(redis|cache) key=mxswitch:domain:moving.test action=hold \(the best MX is still this server.*mx.here.test \[127.0.0.1 \(this server: 127.0.0.1\)\]'
expect_grep "the milter says why it answered 450" "$L" \
    'rcpt=<u@moving.test> domain=moving.test: mode remote, but the best MX is this server: answered 450 4.4.6'
expect_grep "the backup one says hold too" "$L" \
    'rcpt=<u@movingb.test> domain=movingb.test mode=backup source=(redis|cache) key=mxswitch:domain:movingb.test action=hold'

# explain agrees: hold, exit 12, and the answers above.
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/mx.conf" explain u@moving.test 2>&1) || RC=$?
expect_eq "explain a remote domain whose best MX is here: hold, exit 12" \
    "$RC/$(echo "$OUT" | grep -E '^(mode|decision|map transport|map rcpt|milter)' | tr '\n' '|')" \
    "12/mode: remote|decision: hold (the best MX is still this server: held until DNS names the new exchanger)|map transport: OK retry:4.4.6 the best MX of moving.test is this server|map rcpt: OK 450 4.4.6 the best MX of moving.test is this server: try again later|milter at RCPT: 450 4.4.6|"

# A backup key with a better MX elsewhere: routed there, and what that MX
# accepts is verified with it.
expect_eq "a backup domain below a better MX: transport smtp:" \
    "$(route_of secondary.test)" "OK smtp:"
expect_eq "a backup domain below a better MX: rcpt reject_unverified_recipient" \
    "$(smap_ask rcpt u@secondary.test)" "OK reject_unverified_recipient"
expect_eq "a backup domain below a better MX: the milter accepts" \
    "$(rcpt_answer secondary.test)" "continue"
expect_grep "a backup domain below a better MX: decision line says remote" "$L" \
    'rcpt=<u@secondary.test> domain=secondary.test mode=backup source=(redis|cache) key=mxswitch:domain:secondary.test action=remote \(to the MX hosts better than this one'

# Phase 2: DNS changes.  sf.example now fails validation (SERVFAIL),
# to.example is forwarded where nothing answers (timeout), badbest.test
# keeps its MX whose host is gone (NXDOMAIN), gone.test is gone
# (NXDOMAIN) and nullnow.test takes no mail (null MX).
stop_pid "$PF_DNS_PID"
PF_DNS=(
    "${PF_SERVFAIL[@]}"
    --server=/to.example/127.0.0.10
    --mx-host=badbest.test,mx.far.test,10
    --mx-host=nullnow.test,.,0
)
pf_dns_start || abort "DNS restarts changed"
sleep 2.2 # past the TTL of 2 s

# name|domain|transport answer: a failure serves the expired decision, an
# answer replaces it
while IFS='|' read -r name d want; do
    expect_eq "after its TTL, $name" "$(route_of "$d")" "$want"
done <<'EOF'
SERVFAIL: the expired decision routes|sf.example|OK smtp:
a timeout: the expired decision routes|to.example|OK smtp:
a best MX that no longer resolves: the expired decision routes|badbest.test|OK smtp:
NXDOMAIN is an answer: none, not the stale remote|gone.test|NOTFOUND
a null MX is an answer: none, not the stale remote|nullnow.test|NOTFOUND
SERVFAIL again: still the expired decision|sf.example|OK smtp:
EOF
expect_grep "dnsmasq really answered SERVFAIL" "$WORK/dnsmasq.log" \
    'validation (sf.example|example) is (BOGUS|ABANDONED)|SERVFAIL'

# The log: a warning the first time a domain is served stale; each
# answer's line says stale and why.
warn() {
    grep -c "DNS cannot answer for $1: using its auto decision up to cache.stale_ttl past its TTL" "$L"
}
expect_eq "one stale warning per failing domain, none for the answers" \
    "$(for d in $STALE_DOMAINS; do printf '%s=%s ' "$d" "$(warn "$d")"; done)" \
    "sf.example=1 to.example=1 badbest.test=1 gone.test=0 nullnow.test=0 "
expect_eq "each stale answer's line says stale and why" \
    "$(grep -cE 'socketmap: transport u@sf.example -> OK smtp: \(domain sf.example mode remote action remote from dns key "mxswitch:domain:sf.example": .*MX 10 mx.far.test \[127.0.0.21, 2001:db8:21::1\]; no MX host is this server: remote; stale: expired [0-9]+ s ago, and now MX lookup failed' "$L")" 2
# A server that never answers is not waited for: the background lookup
# goes on, the answer is the stale one after DNS_WAIT_MS.
expect_grep "the timeout's stale answer names the failure, without waiting for the resolver" "$L" \
    'socketmap: transport u@to.example -> OK smtp: \(domain to.example mode remote .*; stale: expired [0-9]+ s ago, and now no DNS answer within 1000 ms \(still asking\)'
expect_grep "the unresolvable best MX's stale answer names it" "$L" \
    'socketmap: transport u@badbest.test -> OK smtp: \(domain badbest.test mode remote .*; stale: expired [0-9]+ s ago, and now best MX mx.far.test does not resolve \(NXDOMAIN\)'
expect_eq "NXDOMAIN and the null MX: the milter accepts" \
    "$(rcpt_answer gone.test)/$(rcpt_answer nullnow.test)" "continue/continue"
expect_grep "NXDOMAIN's decision line says none from dns" "$L" \
    'rcpt=<u@gone.test> domain=gone.test mode=none source=dns .*action=none \('
expect_grep "the null MX's decision line says none from dns" "$L" \
    'rcpt=<u@nullnow.test> domain=nullnow.test mode=none source=dns .*action=none \('
# Every remote-mode lookup asks whether the best MX is here: an answer DNS
# gives no TTL for (NXDOMAIN without an SOA, as dnsmasq's local zone
# answers) is remembered, so the next lookups do not wait on DNS again.
redis-cli -p 6379 SET mxswitch:domain:nowhere.test remote >/dev/null
expect_eq "a remote domain without MX: routed remote, three times" \
    "$(smap_ask transport a@nowhere.test b@nowhere.test c@nowhere.test | tr '\n' '|')" \
    "OK smtp:|OK smtp:|OK smtp:|"
expect_eq "and DNS was asked for its MX once, not three times" \
    "$(grep -c 'query\[MX\] nowhere.test from' "$WORK/dnsmasq.log")" 1
stop_mxswitch "mxswitch stops"
finish
