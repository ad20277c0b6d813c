# tests/lib.sh - helpers for the shell test files (sourced, bash)
#
# Every process a test starts is recorded by pid and killed on exit, even
# when the test fails or is interrupted.  Results are counted with pass and
# fail; finish prints "<name>: N passed, N failed" and sets the exit code.
#
# Environment (set by tests/run): MXSWITCH (daemon binary), TESTBIN (dir of
# mtc and unit tests), WRAP (e.g. valgrind command line, may be empty).
# MXCTL (the admin tool) defaults to mxswitch-ctl beside MXSWITCH.

set -u
T_NAME=${T_NAME:-$(basename "$0" .sh)}
T_PASSED=0
T_FAILED=0
T_PIDS=()
T_MOUNTS=() # file systems a test mounted in its own mount namespace
WORK=$(mktemp -d "/tmp/mxs-$T_NAME.XXXXXX")
MXSWITCH=${MXSWITCH:-milter/mxswitch}
MXCTL=${MXCTL:-$(dirname "$MXSWITCH")/mxswitch-ctl}
TESTBIN=${TESTBIN:-build/release}
WRAP=${WRAP:-}

t_cleanup() {
    local pid
    for pid in "${T_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${T_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    local m
    for m in "${T_MOUNTS[@]}"; do
        umount "$m" 2>/dev/null
    done
    if [ "$T_FAILED" -eq 0 ] && [ -z "${KEEP:-}" ]; then
        rm -rf "$WORK"
    else
        echo "($T_NAME: files kept in $WORK)"
    fi
}
trap t_cleanup EXIT
trap 'echo "$T_NAME: interrupted"; exit 130' INT TERM

# track PID - remember a process to kill at exit
track() { T_PIDS+=("$1"); }

# untrack PID - forget a process that was stopped and reaped
untrack() {
    local keep=() p
    for p in "${T_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    T_PIDS=("${keep[@]}")
}

# poll_for WANT TRIES CMD... - run CMD every 0.2 s until it prints WANT or
# TRIES runs are used up; its last output is in GOT (for the assertion)
poll_for() {
    local want=$1 tries=$2 i
    shift 2
    for ((i = 0; i < tries; i++)); do
        GOT=$("$@")
        [ "$GOT" = "$want" ] && return 0
        sleep 0.2
    done
    return 1
}

pass() { T_PASSED=$((T_PASSED + 1)); echo "ok   $1"; }
fail() { T_FAILED=$((T_FAILED + 1)); echo "FAIL $1: $2"; }

# expect_eq NAME GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi
}

# expect_grep NAME FILE REGEX - the file has a line matching REGEX
expect_grep() {
    if grep -Eq -- "$3" "$2"; then pass "$1"; else
        fail "$1" "no line matching /$3/ in $2"
        tail -n 5 "$2" | sed 's/^/    | /'
    fi
}

# prom NAME - a metric's value in the Prometheus file $PROM (stats:
# prometheus_file), or nothing before the first write
prom() { awk -v n="$1" '$1 == n { print $2 }' "$PROM" 2>/dev/null; }

# abort NAME [WHY] - a failure the rest of the test cannot go on from:
# record it, print the summary, exit
abort() { fail "$1" "${2:-see $WORK}"; finish; exit 1; }

# median - of the numbers on stdin (for the benchmarks)
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ratio A B - A / B to three places
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# added A B - A - B with its sign, to one place (microseconds over a baseline)
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }

# in_order ROUND SUBJECT... - the subjects in the order of round ROUND of a
# Williams design: over n rounds (2n when n is odd) each subject runs once
# in every place and once right after each other one, so neither "first in
# the round" nor "right after the slow one" favours a subject (benchmarks
# interleave baseline and subjects this way)
in_order() {
    local r=$1 n i k
    shift
    local -a s=("$@") row=()
    n=${#s[@]}
    for ((i = 0; i < n; i++)); do # 0, 1, n-1, 2, n-2, ...
        if ((i % 2)); then k=$(((i + 1) / 2)); else k=$(((n - i / 2) % n)); fi
        row+=($(((k + r) % n)))
    done
    if ((n % 2 && (r / n) % 2)); then # odd n: the mirrored rows too
        for ((i = n - 1; i >= 0; i--)); do printf '%s ' "${s[${row[i]}]}"; done
    else
        for ((i = 0; i < n; i++)); do printf '%s ' "${s[${row[i]}]}"; done
    fi
    echo
}

finish() {
    echo "$T_NAME: $T_PASSED passed, $T_FAILED failed"
    [ "$T_FAILED" -eq 0 ]
}

# free_port VAR - set VAR to a TCP port on 127.0.0.1 that nothing listens on, below the
# ephemeral range (32768-) so no outgoing connection holds it, and never
# one this test was already given
T_PORTS=" "
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        case $T_PORTS in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            T_PORTS="$T_PORTS$p "
            printf -v "$1" '%s' "$p"
            return
        fi
    done
}

# wait_port PORT SECONDS - until something listens on 127.0.0.1:PORT
wait_port() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_redis PORT [ARGS...] - a private redis-server; sets REDIS_PID
start_redis() {
    local port=$1
    shift
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$WORK" --logfile "$WORK/redis-$port.log" \
        --notify-keyspace-events KA "$@" &
    REDIS_PID=$!
    track "$REDIS_PID"
    local i
    for ((i = 0; i < 100; i++)); do
        case $(redis-cli -p "$port" ping 2>/dev/null) in
        PONG | NOAUTH*) return 0 ;;
        esac
        sleep 0.1
    done
    echo "redis-server on port $port did not start"
    return 1
}

# stop_pid PID - TERM a process and reap it; its exit status in STOP_RC
# (not in a $(...) subshell: only this shell can reap its children)
stop_pid() {
    kill -TERM "$1" 2>/dev/null
    STOP_RC=0
    wait "$1" 2>/dev/null || STOP_RC=$?
    untrack "$1"
}

# await_exit PID - give a daemon that is not our child (it forked away) 5 s
# to exit after being told to stop, then kill it; forget its pid
await_exit() {
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    untrack "$1"
}

# await_start LOG PID [BEFORE] - wait (60 s at most) until LOG holds more
# than BEFORE (0) of mxswitch's start lines, or PID is gone
await_start() {
    local i
    for ((i = 0; i < 6000; i++)); do
        [ "$(grep -c ': milter on ' "$1" 2>/dev/null)" -gt "${3:-0}" ] && return 0
        kill -0 "$2" 2>/dev/null || return 0
        sleep 0.01
    done
}

# start_mxswitch CONF [PORT] - mxswitch -f in the background, logging to
# $WORK/mxswitch.log; sets MX_PID.  Returns within 10 ms of its start line:
# by then every socket it serves (milter, socketmap) is listening and its
# pid file is written.  With PORT, fails unless that port listens.
start_mxswitch() {
    local log="$WORK/mxswitch.log" before
    before=$(grep -c ': milter on ' "$log" 2>/dev/null)
    # shellcheck disable=SC2086
    $WRAP "$MXSWITCH" -f -v -c "$1" 2>>"$log" &
    MX_PID=$!
    track "$MX_PID"
    await_start "$log" "$MX_PID" "${before:-0}"
    if [ -n "${2:-}" ] && ! wait_port "$2" 5; then
        echo "mxswitch did not listen on port $2; log:"
        tail -n 20 "$log"
        return 1
    fi
}

# watches - the change watcher's subscriptions logged so far
watches() { grep -c 'redis: watching' "${1:-$WORK/mxswitch.log}" 2>/dev/null; }

# await_watch BEFORE [LOG] - until the log has a subscription more than
# BEFORE (5 s at most; 1 if none came).  A subscription starts the cache
# over (changes may have been missed), so a test that fills the cache
# for a later check waits for it first.
await_watch() {
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(watches "${2:-}")" -gt "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# stop_mxswitch NAME - SIGTERM it; a clean exit (and no valgrind error) passes
stop_mxswitch() {
    stop_pid "$MX_PID"
    if [ "$STOP_RC" = 0 ]; then pass "$1"; else
        fail "$1" "exit status $STOP_RC"
        tail -n 30 "$WORK/mxswitch.log" | sed 's/^/    | /'
    fi
}


# check_mt NAME <<EOF
#   script lines
#   ==>
#   expected output lines
# EOF
check_mt() {
    local name=$1 input script want got
    input=$(cat)
    script=$(printf '%s\n' "$input" | sed '/^==>$/,$d')
    want=$(printf '%s\n' "$input" | sed '1,/^==>$/d')
    got=$(printf '%s\n' "$script" | "$TESTBIN/mtc" "$MILTER" 2>&1)
    if [ "$got" = "$want" ]; then pass "$name"; else
        fail "$name" "milter conversation differs (- want, + got):"
        diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") |
            sed -n 's/^[<>]/    &/p'
    fi
}

# mtc_run - run an mtc script from stdin, print what mtc prints
mtc_run() { "$TESTBIN/mtc" "$MILTER" 2>&1; }

# The reply mxswitch gives a recipient when Redis cannot answer.
T451="reply 451 4.3.0 Mail routing temporarily unavailable, try again later"

# rcpt_answer DOMAIN - send one message to u@DOMAIN through mtc; prints the
# milter's RCPT reply: "continue", "$T451", "reply 450 4.4.6 ...".  The
# milter changes no recipient: an added or deleted one is printed too, and
# is a bug.
rcpt_answer() {
    printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <u@%s>\neom\n' "$1" |
        mtc_run | sed -n -e 's/^rcpt [^:]*: //p' -e '/^addrcpt\|^delrcpt/p' |
        tr '\n' ' ' | sed 's/ $//'
}

# transports DIR - the instance's transports beside a config in DIR, as
# the Postfix setup script writes them: local "virtual:", remote "smtp:"
transports() {
    printf 'local = "virtual:";\nremote = "smtp:";\n' >"$1/postfix-transports"
}

# smap_ask MAP KEY... - ask the socket map server at $SMAP (HOST:PORT,
# default 127.0.0.1:$SMAP_PORT) one request per KEY on one connection, as
# the MTA does; prints each answer on a line: "OK smtp:", "NOTFOUND",
# "TEMP <why>", "PERM <why>", or "NO ANSWER" when none came in 5 s
smap_ask() {
    local map=$1 key req len ans LC_ALL=C
    shift
    local hp=${SMAP:-127.0.0.1:${SMAP_PORT:?}}
    exec 6<>"/dev/tcp/${hp%:*}/${hp##*:}" || { echo "NO CONNECTION"; return 1; }
    for key in "$@"; do
        req="$map $key"
        printf '%d:%s,' "${#req}" "$req" >&6
        # by its length: a reason may hold a comma ("SERVFAIL, REFUSED")
        if IFS= read -r -d : -t 5 len <&6 && [[ $len =~ ^[0-9]+$ ]] &&
            IFS= read -r -N $((len + 1)) -t 5 ans <&6; then
            ans=${ans%,}
            echo "${ans% }"
        else
            echo "NO ANSWER"
        fi
    done
    exec 6>&-
}

# route_of DOMAIN - what Postfix's transport_maps is told for u@DOMAIN:
# "OK smtp:" (remote), "OK virtual:" (local, when the transports file says
# so), "OK retry:4.4.6 ..." (held), "NOTFOUND" (no opinion), "TEMP ..."
route_of() { smap_ask transport "u@$1"; }
