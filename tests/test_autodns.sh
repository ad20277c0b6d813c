#!/bin/bash
# test_autodns - cache.stale_ttl and the auto mode's DNS decisions: which
# DNS outcomes after a decision's TTL may be answered from it (failures:
# SERVFAIL, a timeout, a best MX that no longer resolves) and which may not
# (answers: NXDOMAIN, a null MX).  Real redis-server and dnsmasq, in a
# private network namespace (pf_lib.sh).  test_modes covers the rest of
# auto: the modes, the DNS down case of stale_ttl and the lookup error
# beyond it, ::1 as an interface address, a slow answer blocking no other
# session.
T_NAME=test_autodns
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"

# Phase 1: five domains, each with one MX elsewhere (remote), all records
# of TTL 2.  The MX host has an AAAA record too: dnsmasq's NODATA answer
# carries no SOA, and a decision resting on one is not cached.
PF_DNS=(--local-ttl=2 --host-record=mx.far.test,127.0.0.21,2001:db8:21::1)
STALE_DOMAINS="sf.example to.example badbest.test gone.test nullnow.test"
for d in $STALE_DOMAINS; do
    PF_DNS+=("--mx-host=$d,mx.far.test,10")
done
pf_net_up || abort "private network and DNS"
# Phase 2's SERVFAIL (pf_lib.sh): the upstream 127.0.0.9 refuses, and the
# DNSSEC-validating dnsmasq answers SERVFAIL for that.
pf_dns_refuser

start_redis 6379 || abort "redis"
for d in $STALE_DOMAINS; do
    redis-cli -p 6379 SET "mxswitch:domain:$d" auto >/dev/null
done
MILTER="inet:8891@127.0.0.1"
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = 6379; timeout_ms = 300; };
routing: { default = "none"; };
cache: { ttl = 3600; stale_ttl = 120; };
CONF
start_mxswitch "$WORK/mx.conf" 8891 || abort "mxswitch"
L=$WORK/mxswitch.log

got=""
for d in $STALE_DOMAINS; do
    got="$got$d=$(rcpt_answer "$d");"
done
expect_eq "while DNS answers, every domain is remote" "$got" \
    "sf.example=continue <u+mx-remote@sf.example>;to.example=continue <u+mx-remote@to.example>;badbest.test=continue <u+mx-remote@badbest.test>;gone.test=continue <u+mx-remote@gone.test>;nullnow.test=continue <u+mx-remote@nullnow.test>;"

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

# name|domain|answer: a failure serves the expired decision, an answer
# replaces it
while IFS='|' read -r name d want; do
    expect_eq "after its TTL, $name" "$(rcpt_answer "$d")" "$want"
done <<'EOF'
SERVFAIL: the expired decision routes|sf.example|continue <u+mx-remote@sf.example>
a timeout: the expired decision routes|to.example|continue <u+mx-remote@to.example>
a best MX that no longer resolves: the expired decision routes|badbest.test|continue <u+mx-remote@badbest.test>
NXDOMAIN is an answer: none, not the stale remote|gone.test|continue
a null MX is an answer: none, not the stale remote|nullnow.test|continue
SERVFAIL again: still the expired decision|sf.example|continue <u+mx-remote@sf.example>
EOF
expect_grep "dnsmasq really answered SERVFAIL" "$WORK/dnsmasq.log" \
    'validation (sf.example|example) is (BOGUS|ABANDONED)|SERVFAIL'

# The log: a warning the first time a domain is served stale, a debug
# line each time, saying stale and why.
warn() {
    grep -c "DNS cannot answer for $1: using its auto decision up to cache.stale_ttl past its TTL" "$L"
}
expect_eq "one stale warning per failing domain, none for the answers" \
    "$(for d in $STALE_DOMAINS; do printf '%s=%s ' "$d" "$(warn "$d")"; done)" \
    "sf.example=1 to.example=1 badbest.test=1 gone.test=0 nullnow.test=0 "
expect_eq "a debug line says stale at each use" \
    "$(grep -cE 'auto: domain sf.example is remote: MX 10 mx.far.test \[127.0.0.21, 2001:db8:21::1\]; no MX host is this server: remote; stale: expired [0-9]+ s ago, and now MX lookup failed' "$L")" 2
expect_grep "the timeout's stale line names the failure" "$L" \
    'auto: domain to.example is remote: .*; stale: expired [0-9]+ s ago, and now MX lookup failed \(SERVFAIL, REFUSED or no answer in time\)'
expect_grep "the unresolvable best MX's stale line names it" "$L" \
    'auto: domain badbest.test is remote: .*; stale: expired [0-9]+ s ago, and now best MX mx.far.test does not resolve \(NXDOMAIN\)'
expect_grep "NXDOMAIN's decision line says none from dns" "$L" \
    'rcpt=<u@gone.test> domain=gone.test mode=none source=dns .*action=keep'
expect_grep "the null MX's decision line says none from dns" "$L" \
    'rcpt=<u@nullnow.test> domain=nullnow.test mode=none source=dns .*action=keep'
stop_mxswitch "mxswitch stops"
finish
