#!/bin/bash
# test_smap - the socketmap server asked by Postfix's own client (postmap -q)
# against a real redis-server: remote-mode recipients are known (identity),
# everything else is not found, lookup errors are TEMP, bad requests PERM;
# toggles, Redis going away and back, max_clients, a unix socket, and a
# clean exit with clients connected.
T_NAME=test_socketmap
. "$(dirname "$0")/lib.sh"

free_port RPORT
free_port MPORT
free_port SPORT
MAP="socketmap:inet:127.0.0.1:$SPORT:mxswitch"
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }

# postmap reads main.cf: give it an empty one, not the host's.
mkdir -p "$WORK/postfix"
: >"$WORK/postfix/main.cf"

# write_conf FILE SOCKETMAP-SOCKET ROUTING-EXTRA [SOCKETMAP-EXTRA]
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "inet:$MPORT@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { $3 };
cache: { ttl = 3600; };
socketmap: { socket = "$2"; $4 };
CONF
}

# q KEY [MAP] - what postmap -q makes of the answer, in one line:
# "OK <value>", "NOTFOUND", "TEMP <reason>", "PERM <reason>" or "ERROR ..."
q() {
    local out rc err
    out=$(timeout 30 postmap -c "$WORK/postfix" -q "$1" "${2:-$MAP}" \
        2>"$WORK/postmap.err")
    rc=$?
    err=$(cat "$WORK/postmap.err")
    if [ "$rc" = 0 ] && [ -z "$err" ]; then
        echo "OK $out"
    elif [ "$rc" = 1 ] && [ -z "$out" ] && [ -z "$err" ]; then
        echo NOTFOUND
    elif [ "$rc" = 1 ] && [ -z "$out" ] &&
        echo "$err" | grep -q 'socketmap server temporary error: '; then
        echo "TEMP $(echo "$err" | sed -n 's/.*temporary error: //p')"
    elif [ "$rc" = 1 ] && [ -z "$out" ] &&
        echo "$err" | grep -q 'socketmap server permanent error: '; then
        echo "PERM $(echo "$err" | sed -n 's/.*permanent error: //p')"
    else
        echo "ERROR rc=$rc out=$out err=$(echo "$err" | head -n 1)"
    fi
}

# wait_answer MAP - until the server behind MAP answers (at most 10 s)
wait_answer() {
    local i
    for ((i = 0; i < 50; i++)); do
        case $(q probe@remote.test "$1") in ERROR*) sleep 0.2 ;; *) return ;; esac
    done
}

# raw DATA BYTES - send DATA on a fresh connection, print BYTES of reply
raw() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || exit 1
        printf '%s' "$1" >&3
        timeout 10 head -c "$2" <&3
    )
}

# closed_after DATA - send DATA, read everything until the server closes
closed_after() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || exit 1
        printf '%s' "$1" >&3
        timeout 10 cat <&3 || echo " (not closed)"
    )
}

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET mxswitch:domain:none.test none
rcli SET mxswitch:domain:bad.test remotely
rcli SET mxswitch:domain:toggle.test remote

write_conf "$WORK/mx.conf" "inet:$SPORT@127.0.0.1" \
    'default = "none"; on_error = "tempfail";' 'max_clients = 3;'
start_mxswitch "$WORK/mx.conf" "$MPORT" && wait_port "$SPORT" 10 ||
    { fail "mxswitch starts with the socketmap" "-"; finish; exit; }

expect_eq "remote-mode domain: the address itself" \
    "$(q bob@remote.test)" "OK bob@remote.test"
expect_eq "subdomain falls back to the parent's remote key" \
    "$(q bob@mail.remote.test)" "OK bob@mail.remote.test"
expect_eq "the answer is exactly the key asked, case and all" \
    "$(q Bob.Smith@Remote.TEST.)" "OK Bob.Smith@Remote.TEST."
expect_eq "a quoted local part is an address too" \
    "$(q '"john doe"@remote.test')" 'OK "john doe"@remote.test'
expect_eq "local-mode domain: not found" "$(q alice@local.test)" NOTFOUND
expect_eq "mode none: not found" "$(q carol@none.test)" NOTFOUND
expect_eq "no key (default none): not found" "$(q dave@unknown.test)" NOTFOUND
expect_eq "@domain is not a full address: not found" "$(q @remote.test)" \
    NOTFOUND
expect_eq "a bare user is not a full address: not found" "$(q bob)" NOTFOUND
expect_eq "an address literal: not found" "$(q 'bob@[127.0.0.1]')" NOTFOUND
expect_eq "a malformed domain: not found" "$(q bob@remote..test)" NOTFOUND
expect_eq "remote-tagged address: not found (the pcre table's job)" \
    "$(q bob+mx-remote@remote.test)" NOTFOUND
expect_eq "local-tagged address: not found" "$(q bob+mx-local@remote.test)" \
    NOTFOUND
expect_eq "another extension is an address like any other" \
    "$(q bob+news@remote.test)" "OK bob+news@remote.test"
expect_eq "an invalid value in the key: TEMP" "$(q x@bad.test)" \
    'TEMP invalid value "remotely" in key mxswitch:domain:bad.test'
expect_grep "the invalid value is logged as a warning" "$WORK/mxswitch.log" \
    'warning: socketmap: x@bad.test domain=bad.test: lookup failed \(invalid value "remotely".*answered TEMP'
expect_eq "another map name: PERM" \
    "$(q bob@remote.test "socketmap:inet:127.0.0.1:$SPORT:other")" \
    "PERM unknown map name"
expect_grep "one debug line per lookup" "$WORK/mxswitch.log" \
    'debug: socketmap: bob@remote.test -> OK \(domain remote.test mode remote from redis key "mxswitch:domain:remote.test"\)'
expect_grep "a not-found lookup says why" "$WORK/mxswitch.log" \
    'debug: socketmap: alice@local.test -> NOTFOUND \(domain local.test mode local'

got=$(printf '%s\n' bob@remote.test alice@local.test eve@b.remote.test |
    timeout 30 postmap -c "$WORK/postfix" -q - "$MAP" 2>&1 | tr '\t\n' '= ')
expect_eq "many requests on one connection (postmap -q -)" "$got" \
    "bob@remote.test=bob@remote.test eve@b.remote.test=eve@b.remote.test "

# The protocol by hand: pipelining, and framing errors.
expect_eq "two requests in one packet get two replies" \
    "$(raw '24:mxswitch bob@remote.test,25:mxswitch alice@local.test,' 34)" \
    "18:OK bob@remote.test,9:NOTFOUND ,"
expect_eq "an empty key: not found" "$(raw '9:mxswitch ,' 12)" "9:NOTFOUND ,"
expect_eq "a payload with no key: PERM, connection stays" \
    "$(raw '8:mxswitch,24:mxswitch bob@remote.test,' 48)" \
    "22:PERM malformed request,18:OK bob@remote.test,"
expect_eq "a broken netstring: PERM, then the connection is closed" \
    "$(closed_after '24:mxswitch bob@remote.test;')" \
    "22:PERM malformed request,"
expect_eq "a request over 10000 bytes: PERM and closed" \
    "$(closed_after '10001:')" "22:PERM malformed request,"
expect_grep "a broken netstring is logged" "$WORK/mxswitch.log" \
    "socketmap: client 127.0.0.1:[0-9]+: malformed request \(missing ',' after netstring\)"

# Toggles: the cache ttl is 3600 s, so only the keyspace notification can
# make the next query see the change.
expect_eq "toggle: remote before the change" "$(q t@toggle.test)" \
    "OK t@toggle.test"
rcli SET mxswitch:domain:toggle.test local
expect_eq "toggle: SET local applies to the next query" "$(q t@toggle.test)" \
    NOTFOUND
rcli SET mxswitch:domain:toggle.test remote
expect_eq "toggle: SET remote applies to the next query" \
    "$(q t@toggle.test)" "OK t@toggle.test"
rcli DEL mxswitch:domain:toggle.test
expect_eq "toggle: DEL applies to the next query" "$(q t@toggle.test)" NOTFOUND

# max_clients = 3: with three connections held, a fourth is closed at once;
# postmap retries once, then reports a lookup error.
exec 5<>"/dev/tcp/127.0.0.1/$SPORT" 6<>"/dev/tcp/127.0.0.1/$SPORT" \
    7<>"/dev/tcp/127.0.0.1/$SPORT"
sleep 0.5
got=$(q bob@remote.test)
case $got in
ERROR*"lookup error"*) pass "beyond max_clients a connection is refused" ;;
*) fail "beyond max_clients a connection is refused" "got '$got'" ;;
esac
expect_grep "refusing is logged" "$WORK/mxswitch.log" \
    'warning: socketmap: 3 clients connected \(socketmap.max_clients\): refusing new connections'
exec 5<&- 6<&- 7<&-
poll_for "OK bob@remote.test" 20 q bob@remote.test
expect_eq "a freed slot takes clients again" "$GOT" "OK bob@remote.test"
expect_grep "accepting again is logged" "$WORK/mxswitch.log" \
    'info: socketmap: accepting connections again \([1-9][0-9]* refused'

# Redis goes away: TEMP for what the cache does not know; comes back:
# answers again from the same process.
stop_pid "$REDIS_PID"
got=$(q u@fresh1.test)
case $got in
TEMP?*) pass "redis down: TEMP" ;;
*) fail "redis down: TEMP" "got '$got'" ;;
esac
expect_eq "redis down: cached domains still answer" "$(q bob@remote.test)" \
    "OK bob@remote.test"
start_redis "$RPORT" || fail "redis restarts" "-"
rcli SET mxswitch:domain:fresh2.test remote
poll_for "OK u@fresh2.test" 50 q u@fresh2.test
expect_eq "redis back: answers recover without a restart" "$GOT" \
    "OK u@fresh2.test"
expect_eq "redis back: it is the same mxswitch process" \
    "$(kill -0 "$MX_PID" 2>/dev/null && echo alive)" alive

# A client still connected (idle, and one half-way through a request) must
# not hold up or break the shutdown.
exec 5<>"/dev/tcp/127.0.0.1/$SPORT" 6<>"/dev/tcp/127.0.0.1/$SPORT"
printf '24:mxswitch bob@' >&6
sleep 0.3
stop_mxswitch "mxswitch exits cleanly on SIGTERM with clients connected"
exec 5<&- 6<&-

# routing.default = remote, on_error = default, on a unix socket.
SOCK="$WORK/smap.sock"
UMAP="socketmap:unix:$SOCK:mxswitch"
write_conf "$WORK/mx2.conf" "unix:$SOCK" \
    'default = "remote"; on_error = "default";' 'name = "mxs-2";'
rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:bad.test remotely
: >"$WORK/mxswitch.log"
start_mxswitch "$WORK/mx2.conf" "$MPORT" ||
    fail "mxswitch starts on a unix socket" "-"
UMAP="socketmap:unix:$SOCK:mxs-2"
wait_answer "$UMAP"
expect_eq "unix socket: remote-mode domain found" \
    "$(q bob@remote.test "$UMAP")" "OK bob@remote.test"
expect_eq "unix socket is mode 0666" "$(stat -c %a "$SOCK")" 666
expect_eq "default remote but no key: not found (no explicit key)" \
    "$(q bob@unknown.test "$UMAP")" NOTFOUND
expect_eq "on_error default: an invalid value is not found" \
    "$(q x@bad.test "$UMAP")" NOTFOUND
expect_grep "on_error default is logged" "$WORK/mxswitch.log" \
    'socketmap: x@bad.test domain=bad.test: lookup failed .*using routing.default, answered NOTFOUND'
expect_eq "the configured map name is the one answered" \
    "$(q bob@remote.test "socketmap:unix:$SOCK:mxswitch")" \
    "PERM unknown map name"

# A second server on the same unix socket must not steal it.
RC=0
free_port MPORT3
sed "s/inet:$MPORT@/inet:$MPORT3@/" "$WORK/mx2.conf" >"$WORK/mx3.conf"
# shellcheck disable=SC2086
OUT=$($WRAP "$MXSWITCH" -f -c "$WORK/mx3.conf" 2>&1) || RC=$?
expect_eq "a unix socket in use stops a second server (status 1)" "$RC" 1
expect_eq "a unix socket in use is explained" \
    "$(echo "$OUT" | grep -c "cannot listen on socketmap.socket unix:$SOCK: in use")" 1
expect_eq "the first server still answers" "$(q bob@remote.test "$UMAP")" \
    "OK bob@remote.test"

# Redis down with on_error = default: not found, never TEMP.
stop_pid "$REDIS_PID"
expect_eq "on_error default: redis down is not found" \
    "$(q u@fresh3.test "$UMAP")" NOTFOUND
start_redis "$RPORT" || fail "redis restarts" "-"
rcli SET mxswitch:domain:remote.test remote

stop_mxswitch "mxswitch (unix socket) exits cleanly"
expect_eq "the unix socket is removed at exit" \
    "$([ -e "$SOCK" ] && echo exists || echo removed)" removed

# A socket left behind by a killed server is replaced at the next start.
start_mxswitch "$WORK/mx2.conf" "$MPORT" || fail "mxswitch restarts" "-"
# The milter port opens before the socketmap's: wait for both (valgrind is
# slow enough to be killed in between).
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
kill -KILL "$MX_PID"
wait "$MX_PID" 2>/dev/null
untrack "$MX_PID"
expect_eq "a killed server leaves its socket" \
    "$([ -S "$SOCK" ] && echo stale)" stale
start_mxswitch "$WORK/mx2.conf" "$MPORT" ||
    fail "mxswitch starts over a stale socket" "-"
wait_answer "$UMAP"
expect_eq "a stale unix socket is replaced" "$(q bob@remote.test "$UMAP")" \
    "OK bob@remote.test"
stop_mxswitch "mxswitch (after a stale socket) exits cleanly"
finish
