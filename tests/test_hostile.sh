#!/bin/bash
# test_hostile - the hostile input corpus (tests/corpus) played through the
# running milter with tests/mtc and a real redis-server, the invariants
# checked on what the milter actually sent back, and a 10,000-recipient
# message with its memory.
#
# Invariants, over every case: the reply is the case's (continue, or 451
# 4.1.3 / 4.1.2 / 4.3.0 with a logged reason); a rewrite is exactly one
# delrcpt naming the argument exactly as sent plus exactly one addrcpt_par
# with the case's address, anything else touches nothing; no added address
# has a control byte or another domain; no log line has a raw control byte.
T_NAME=test_hostile
. "$(dirname "$0")/lib.sh"
CORPUS=$(dirname "$0")/corpus

free_port RPORT
free_port MPORT
MILTER="inet:$MPORT@127.0.0.1"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; max_recipients = 10000; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 2000; };
routing: { prefix = "mxswitch:domain:"; default = "none";
           on_error = "tempfail"; };
cache: { ttl = 3600; max_entries = 1000; };
CONF

# The keys the address cases name, and one key per value case.
grep -v '^#' "$CORPUS/rcpt.txt" | cut -f2,3 | sort -u |
    while IFS=$'\t' read -r mode key; do
        [ "$mode" = - ] || [ "$key" = - ] ||
            redis-cli -p "$RPORT" SET "mxswitch:domain:$key" "$mode" >/dev/null
    done
n=0
grep -v '^#' "$CORPUS/values.txt" | cut -f3 | while IFS= read -r v; do
    n=$((n + 1))
    # shellcheck disable=SC2059
    printf "${v//%/%%}" | redis-cli -p "$RPORT" -x SET "mxswitch:domain:v$n.test" \
        >/dev/null
done
expect_eq "value cases are stored byte for byte (NUL case)" \
    "$(redis-cli -p "$RPORT" --no-raw STRLEN "mxswitch:domain:v15.test")" \
    "(integer) 7"

start_mxswitch "$WORK/mx.conf" "$MPORT" ||
    { fail "mxswitch starts" "-"; finish; exit; }

# One message per case in one session; cases with a NUL, which the protocol
# cannot carry inside an argument, are test_corpus's only.
CASES=()
{
    echo "connect client.test 127.0.0.1"
    while IFS=$'\037' read -r dec mode key arg added name; do
        case $dec in '#'*) continue ;; esac
        case $arg in *'\x00'*) continue ;; esac
        CASES+=("$dec"$'\t'"$arg"$'\t'"$added"$'\t'"$name")
        printf 'mail <sender@client.test>\nrcptline %s\neom\n' "$arg"
    done < <(tr '\t' '\037' <"$CORPUS/rcpt.txt")
    printf '%s\n' "${CASES[@]}" >"$WORK/cases"
} >"$WORK/corpus.mt"
"$TESTBIN/mtc" -t 60000 "$MILTER" <"$WORK/corpus.mt" >"$WORK/corpus.out" 2>&1
expect_eq "mtc plays every address case to its end" \
    "$(grep -c '^error' "$WORK/corpus.out")" 0

# check_cases CASES OUTPUT - compare each case with its part of the output;
# prints "ok N" and one line per mismatch
check_cases() {
    local i=0 dec arg added name line reply mods
    local -a out
    mapfile -t out < <(grep -v -e '^connect:' -e '^mail:' "$2")
    local k=0
    while IFS=$'\t' read -r dec arg added name; do
        i=$((i + 1))
        reply=${out[k]#"rcpt $arg: "}
        [ "${out[k]}" = "rcpt $arg: $reply" ] || {
            echo "case $i ($name): expected the rcpt line, got '${out[k]}'"
            return
        }
        k=$((k + 1))
        mods=()
        while [ "$k" -lt "${#out[@]}" ] && [ "${out[k]%%: *}" != eom ]; do
            mods+=("${out[k]}")
            k=$((k + 1))
        done
        k=$((k + 1))
        local want_reply=continue want_mods=0
        case $dec in
        bad-addr) want_reply="reply 451 4.1.3 Recipient address not understood by the router" ;;
        bad-domain) want_reply="reply 451 4.1.2 Recipient domain not understood" ;;
        bad-value) want_reply="reply 451 4.3.0 Mail routing temporarily unavailable, try again later" ;;
        rewrite) want_mods=2 ;;
        esac
        [ "$reply" = "$want_reply" ] ||
            echo "case $i ($name): reply '$reply', want '$want_reply'"
        [ "${#mods[@]}" = "$want_mods" ] || {
            echo "case $i ($name): ${#mods[@]} modifications, want $want_mods"
            continue
        }
        [ "$want_mods" = 0 ] && continue
        [ "${mods[0]}" = "delrcpt $arg" ] ||
            echo "case $i ($name): '${mods[0]}' does not delete exactly '$arg'"
        line=${mods[1]#addrcpt_par }
        line=${line%% ORCPT=*}
        [ "$line" = "$added" ] ||
            echo "case $i ($name): added '$line', want '$added'"
        # Invariants, whatever the corpus says: no control byte (mtc shows
        # bytes below 0x20 and DEL as \x..), the original's domain.
        [[ $line =~ \\x(0[0-9a-f]|1[0-9a-f]|7f) ]] &&
            echo "case $i ($name): control byte in '$line'"
        case $arg in *@*)
            [ "${line##*@}" = "${arg##*@}" ] ||
                [ "${line##*@}" = "${arg##*@}>" ] ||
                echo "case $i ($name): domain of '$line' is not that of '$arg'" ;;
        esac
    done <"$1"
    echo "ok $i"
}
check_cases "$WORK/cases" "$WORK/corpus.out" >"$WORK/corpus.check"
N=$(wc -l <"$WORK/cases")
expect_eq "corpus through the milter: all $N address cases as expected" \
    "$(cat "$WORK/corpus.check")" "ok $N"
expect_eq "one delrcpt for each addrcpt, one pair per rewrite case" \
    "$(grep -c '^delrcpt ' "$WORK/corpus.out")/$(grep -c '^addrcpt' "$WORK/corpus.out")" \
    "$(grep -c '^rewrite' "$WORK/cases")/$(grep -c '^rewrite' "$WORK/cases")"
expect_eq "every refused address case has its reason logged" \
    "$(grep -c -e 'malformed address' -e 'bad domain' "$WORK/mxswitch.log")" \
    "$(grep -c '^bad-' "$WORK/cases")"

# The Redis values: remote rewrites, local and none keep (no MTA macros),
# an invalid value is 451 4.3.0.
n=0
: >"$WORK/vcases"
{
    echo "connect client.test 127.0.0.1"
    while IFS=$'\037' read -r verdict mode value name; do
        case $verdict in '#'*) continue ;; esac
        n=$((n + 1))
        arg="<u@v$n.test>"
        case $verdict/$mode in
        valid/remote) printf 'rewrite\t%s\t<u+mx-remote@v%s.test>\t%s\n' "$arg" "$n" "$name" ;;
        valid/*) printf 'keep\t%s\t-\t%s\n' "$arg" "$name" ;;
        *) printf 'bad-value\t%s\t-\t%s\n' "$arg" "$name" ;;
        esac >>"$WORK/vcases"
        printf 'mail <sender@client.test>\nrcpt %s\neom\n' "$arg"
    done < <(tr '\t' '\037' <"$CORPUS/values.txt")
} >"$WORK/values.mt"
"$TESTBIN/mtc" -t 60000 "$MILTER" <"$WORK/values.mt" >"$WORK/values.out" 2>&1
check_cases "$WORK/vcases" "$WORK/values.out" >"$WORK/values.check"
N=$(wc -l <"$WORK/vcases")
expect_eq "Redis values through the milter: all $N cases as expected" \
    "$(cat "$WORK/values.check")" "ok $N"
expect_eq "every invalid value is logged with the key" \
    "$(grep -c 'lookup failed (invalid value .* in key mxswitch:domain:v[0-9]*.test)' "$WORK/mxswitch.log")" \
    "$(grep -c '^bad-value' "$WORK/vcases")"
expect_eq "no log line carries a raw control byte" \
    "$(LC_ALL=C grep -c $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/mxswitch.log")" 0

# 10,000 recipients in one message (milter.max_recipients = 10000), and one
# more: all answered, the extra one 452 4.5.3; peak memory stays bounded.
vm() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$MX_PID/status"; }
rss0=$(vm VmRSS)
{
    echo "connect client.test 127.0.0.1"
    echo "mail <sender@client.test>"
    for ((i = 1; i <= 10001; i++)); do echo "rcpt <user$i@remote.test>"; done
    echo "eom"
} >"$WORK/big.mt"
"$TESTBIN/mtc" -t 600000 "$MILTER" <"$WORK/big.mt" >"$WORK/big.out" 2>&1
hwm=$(vm VmHWM)
expect_eq "10,000 recipients: each answered, the 10,001st 452 4.5.3" \
    "$(grep -c '^rcpt <user[0-9]*@remote.test>: continue$' "$WORK/big.out")/$(grep -c '^rcpt <user10001@remote.test>: reply 452 4.5.3' "$WORK/big.out")/$(tail -n 1 "$WORK/big.out")" \
    "10000/1/eom: continue"
expect_eq "10,000 recipients: each deleted once and added once, in pairs" \
    "$(paste -d' ' <(sed -n 's/^delrcpt <user\([0-9]*\)@remote.test>$/\1/p' "$WORK/big.out") \
        <(sed -n 's/^addrcpt_par <user\([0-9]*\)+mx-remote@remote.test> .*/\1/p' "$WORK/big.out") |
        awk '$1 == $2 && $1 == NR { n++ } END { print n + 0 }')" 10000
echo "memory: VmRSS before ${rss0} kB, VmHWM after 10,000 recipients ${hwm} kB" \
    "(${WRAP:+valgrind }${VARIANT:-release})"
# Generous bound, only where the figure is the milter's own: 10,000
# recipients of ~100 bytes of state each is about 1 MB.
if [ -z "$WRAP" ] && [ "${VARIANT:-release}" = release ]; then
    if [ $((hwm - rss0)) -lt 65536 ]; then
        pass "10,000 recipients: peak memory grew by less than 64 MB"
    else
        fail "10,000 recipients: peak memory" "grew by $((hwm - rss0)) kB"
    fi
fi
stop_mxswitch "mxswitch exits cleanly after the hostile input"
finish
