#!/bin/bash
# test_hostile - the hostile input corpus (tests/corpus) played through the
# running milter with tests/mtc and through the socket map server as the
# MTA asks it at delivery, against a real redis-server, the invariants
# checked on what actually came back, and a 10,000-recipient message with
# its memory.
#
# Invariants, over every case: the RCPT reply is the case's (continue, or
# 451 4.1.3 / 4.1.2 / 4.3.0 with a logged reason); the milter changes no
# recipient; a case with a domain has one decision line naming the case's
# key and action; map transport answers the action (NOTFOUND, the local
# or the remote transport) and map valias the case's valias answer for
# the address as the MTA holds it; no log line has a raw control byte.
# In a private network namespace with its own DNS (pf_lib.sh): the remote
# domains' MX checks never leave it.
T_NAME=test_hostile
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"
CORPUS=$(dirname "$0")/corpus
PF_DNS=()
pf_net_up || abort "private network and DNS"

free_port RPORT
free_port MPORT
free_port SMAP_PORT
MILTER="inet:$MPORT@127.0.0.1"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
cat >"$WORK/mx.conf" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 2000; };
routing: { prefix = "mxswitch:domain:"; default = "none";
           on_error = "tempfail"; };
cache: { ttl = 3600; max_entries = 1000; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
CONF
transports "$WORK"

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

start_mxswitch "$WORK/mx.conf" "$MPORT" && wait_port "$SMAP_PORT" 10 ||
    { fail "mxswitch starts with the socket map server" "-"; finish; exit; }

# unx - the corpus's \xhh made bytes (every other backslash is itself)
unx() { LC_ALL=C perl -pe 's/\\x([0-9a-f]{2})/chr(hex($1))/ge'; }

# One message per case in one session, each RCPT with its own queue id
# (H<n>) for its log lines; cases with a NUL, which the protocol cannot
# carry inside an argument, are test_corpus's only.
CASES=()
{
    echo "connect client.test 127.0.0.1"
    i=0
    while IFS=$'\037' read -r dec mode key arg valias name; do
        case $dec in '#'*) continue ;; esac
        case $arg in *'\x00'*) continue ;; esac
        i=$((i + 1))
        CASES+=("$dec"$'\t'"$key"$'\t'"$arg"$'\t'"$valias"$'\t'"$name")
        printf 'mail <sender@client.test>\ntogether 2\nmacro R i H%d\nrcptline %s\neom\n' \
            "$i" "$arg"
    done < <(tr '\t' '\037' <"$CORPUS/rcpt.txt")
    printf '%s\n' "${CASES[@]}" >"$WORK/cases"
} >"$WORK/corpus.mt"
"$TESTBIN/mtc" -t 60000 "$MILTER" <"$WORK/corpus.mt" >"$WORK/corpus.out" 2>&1
expect_eq "mtc plays every address case to its end" \
    "$(grep -c '^error' "$WORK/corpus.out")" 0

# check_cases CASES OUTPUT QID - compare each case with its part of the
# milter's output and its decision line (queue id QID<n>); prints "ok N"
# and one line per mismatch
check_cases() {
    local i=0 dec key arg valias name reply line want_reply
    local -a out mods
    mapfile -t out < <(grep -v -e '^connect:' -e '^mail:' "$2")
    local k=0
    while IFS=$'\t' read -r dec key arg valias name; do
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
        case $dec in
        bad-addr) want_reply="reply 451 4.1.3 Recipient address not understood by the router" ;;
        bad-domain) want_reply="reply 451 4.1.2 Recipient domain not understood" ;;
        bad-value) want_reply="reply 451 4.3.0 Mail routing temporarily unavailable, try again later" ;;
        *) want_reply=continue ;;
        esac
        [ "$reply" = "$want_reply" ] ||
            echo "case $i ($name): reply '$reply', want '$want_reply'"
        [ "${#mods[@]}" = 0 ] ||
            echo "case $i ($name): the milter changed the message: ${mods[*]}"
        # The decision line: one for every case with a domain to look up.
        line=$(grep -E " $3$i: rcpt=.* action=" "$WORK/mxswitch.log")
        case $dec/$key in
        bad-*/* | */-)
            [ -z "$line" ] ||
                echo "case $i ($name): a decision line, want none: $line" ;;
        *)
            [[ $line == *" domain=$key mode="*" action=$dec "* ]] &&
                [ "$(printf '%s\n' "$line" | wc -l)" = 1 ] ||
                echo "case $i ($name): decision line '$line', want domain=$key action=$dec" ;;
        esac
    done <"$1"
    echo "ok $i"
}
check_cases "$WORK/cases" "$WORK/corpus.out" H >"$WORK/corpus.check"
N=$(wc -l <"$WORK/cases")
expect_eq "corpus through the milter: all $N address cases as expected" \
    "$(cat "$WORK/corpus.check")" "ok $N"
expect_eq "the milter changes no recipient of any case" \
    "$(grep -c -e '^delrcpt ' -e '^addrcpt' "$WORK/corpus.out")" 0
expect_eq "every refused address case has its reason logged" \
    "$(grep -c -E ' H[0-9]+: rcpt=.*: (malformed address|bad domain) \(.*\): answered 451 4\.1\.[23]$' "$WORK/mxswitch.log")" \
    "$(grep -c '^bad-' "$WORK/cases")"

# The same cases as the MTA asks at delivery: those it accepted (the
# refused ones never reach its queue), by the address as it holds it:
# without brackets or source route.  transport answers the action, valias
# the case's answer.
: >"$WORK/keys"
: >"$WORK/smap.want"
while IFS=$'\t' read -r dec key arg valias name; do
    case $dec in bad-*) continue ;; esac
    k=${arg#<}
    k=${k%>}
    [[ $k == @*:* ]] && k=${k#*:}
    printf '%s\n' "$k" >>"$WORK/keys"
    case $dec in
    none) t=NOTFOUND ;;
    local) t="OK virtual:" ;;
    remote) t="OK smtp:" ;;
    esac
    [ "$valias" = - ] && v=NOTFOUND || v="OK $valias"
    printf '%s\t%s\t%s\t%s\n' "$name" "$k" "$t" "$v" >>"$WORK/smap.want"
done <"$WORK/cases"
mapfile -t KEYS < <(unx <"$WORK/keys")
smap_ask transport "${KEYS[@]}" >"$WORK/transport.got"
smap_ask valias "${KEYS[@]}" >"$WORK/valias.got"
paste "$WORK/transport.got" "$WORK/valias.got" |
    paste <(cut -f1,2 "$WORK/smap.want" | unx) - >"$WORK/smap.got"
unx <"$WORK/smap.want" >"$WORK/smap.want.raw"
M=$(wc -l <"$WORK/smap.want")
if cmp -s "$WORK/smap.want.raw" "$WORK/smap.got"; then
    pass "corpus through the socket map: all $M accepted cases answer transport and valias as expected"
else
    fail "corpus through the socket map: all $M accepted cases answer transport and valias as expected" \
        "name, key, transport, valias (- want, + got):"
    diff "$WORK/smap.want.raw" "$WORK/smap.got" | head -n 10 | cat -v | sed 's/^/    /'
fi
expect_eq "the corpus leaves every kind of answer to check (none, local, remote; a tag's plain form)" \
    "$(cut -f3 "$WORK/smap.want" | sort -u | paste -sd'|')/$(awk -F'\t' '$4 ~ /^OK / && $4 != "OK " $2' "$WORK/smap.want" | wc -l | tr -d ' ')" \
    "NOTFOUND|OK smtp:|OK virtual:/8"

# The Redis values: valid ones decide their mode (remote to smtp:, local to
# the local transport, none NOTFOUND), an invalid one is 451 4.3.0 at RCPT
# and TEMP to the maps.
n=0
: >"$WORK/vcases"
: >"$WORK/vmap.want"
{
    echo "connect client.test 127.0.0.1"
    while IFS=$'\037' read -r verdict mode value name; do
        case $verdict in '#'*) continue ;; esac
        n=$((n + 1))
        arg="<u@v$n.test>"
        case $verdict/$mode in
        valid/*)
            printf '%s\tv%s.test\t%s\t-\t%s\n' "$mode" "$n" "$arg" "$name"
            case $mode in
            remote) echo "OK smtp:" ;;
            local) echo "OK virtual:" ;;
            *) echo NOTFOUND ;;
            esac >>"$WORK/vmap.want" ;;
        *)
            printf 'bad-value\t-\t%s\t-\t%s\n' "$arg" "$name"
            echo "TEMP invalid value in key mxswitch:domain:v$n.test" >>"$WORK/vmap.want" ;;
        esac >>"$WORK/vcases"
        printf 'mail <sender@client.test>\ntogether 2\nmacro R i V%d\nrcpt %s\neom\n' "$n" "$arg"
    done < <(tr '\t' '\037' <"$CORPUS/values.txt")
} >"$WORK/values.mt"
"$TESTBIN/mtc" -t 60000 "$MILTER" <"$WORK/values.mt" >"$WORK/values.out" 2>&1
check_cases "$WORK/vcases" "$WORK/values.out" V >"$WORK/values.check"
N=$(wc -l <"$WORK/vcases")
expect_eq "Redis values through the milter: all $N cases as expected" \
    "$(cat "$WORK/values.check")" "ok $N"
mapfile -t VKEYS < <(seq -f 'u@v%g.test' "$N")
expect_eq "Redis values through map transport: all $N cases as expected" \
    "$(smap_ask transport "${VKEYS[@]}" | sed 's/^TEMP invalid value .* in key /TEMP invalid value in key /')" \
    "$(cat "$WORK/vmap.want")"
expect_eq "every invalid value is logged with the key (milter)" \
    "$(grep -c 'V[0-9]*: rcpt=.*lookup failed (invalid value .* in key mxswitch:domain:v[0-9]*.test)' "$WORK/mxswitch.log")" \
    "$(grep -c '^bad-value' "$WORK/vcases")"
expect_eq "every invalid value is logged with the key (socket map)" \
    "$(grep -c 'socketmap: transport u@v[0-9]*.test domain=v[0-9]*.test: lookup failed (invalid value .* in key mxswitch:domain:v[0-9]*.test): answered TEMP' "$WORK/mxswitch.log")" \
    "$(grep -c '^bad-value' "$WORK/vcases")"
expect_eq "no log line carries a raw control byte" \
    "$(LC_ALL=C grep -c $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/mxswitch.log")" 0

# 10,000 recipients in one message (the milter keeps none of them): all
# answered, none changed, each decided; peak memory stays bounded.
vm() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$MX_PID/status"; }
rss0=$(vm VmRSS)
{
    echo "connect client.test 127.0.0.1"
    echo "mail <sender@client.test>"
    echo "macro R i BIG"
    for ((i = 1; i <= 10000; i++)); do echo "rcpt <user$i@remote.test>"; done
    echo "eom"
} >"$WORK/big.mt"
"$TESTBIN/mtc" -t 600000 "$MILTER" <"$WORK/big.mt" >"$WORK/big.out" 2>&1
hwm=$(vm VmHWM)
expect_eq "10,000 recipients: each answered continue, none changed, then the reply" \
    "$(grep -c '^rcpt <user[0-9]*@remote.test>: continue$' "$WORK/big.out")/$(grep -c -e '^delrcpt' -e '^addrcpt' "$WORK/big.out")/$(tail -n 1 "$WORK/big.out")" \
    "10000/0/eom: continue"
expect_eq "10,000 recipients: one decision line each, in order" \
    "$(sed -n 's/.* BIG: rcpt=<user\([0-9]*\)@remote.test> domain=remote.test .* action=remote .*/\1/p' "$WORK/mxswitch.log" |
        awk '$1 == NR { n++ } END { print n + 0 }')" 10000
echo "memory: VmRSS before ${rss0} kB, VmHWM after 10,000 recipients ${hwm} kB" \
    "(${WRAP:+valgrind }${VARIANT:-release})"
# Generous bound, only where the figure is the milter's own: it keeps no
# recipient, so 10,000 of them should cost next to nothing.
if [ -z "$WRAP" ] && [ "${VARIANT:-release}" = release ]; then
    if [ $((hwm - rss0)) -lt 65536 ]; then
        pass "10,000 recipients: peak memory grew by less than 64 MB"
    else
        fail "10,000 recipients: peak memory" "grew by $((hwm - rss0)) kB"
    fi
fi
stop_mxswitch "mxswitch exits cleanly after the hostile input"
finish
