#!/bin/bash
# test_cli - command line contract: -t, -V, -h, bad options, make install
# (binaries and manual pages)
T_NAME=test_cli
. "$(dirname "$0")/lib.sh"

# answering SPEC - one milter conversation with SPEC answered: libmilter's
# listener runs.  A stop signal in its first moments, before it does, ends
# smfi_main() with a failure (libmilter's own race: its listener finds the
# socket its signal thread closed), so a test that stops mxswitch right
# after the start waits for this first, as an MTA's first message would.
answering() {
    echo 'connect probe.test 127.0.0.1' | "$TESTBIN/mtc" "$1" 2>&1
}

# run_mx ARGS... - run mxswitch; output in OUT, exit status in RC
run_mx() {
    RC=0
    # shellcheck disable=SC2086
    OUT=$($WRAP "$MXSWITCH" "$@" 2>&1) || RC=$?
}

run_mx -t -c conf/mxswitch.conf
expect_eq "-t on the shipped config exits 0" "$RC" 0
expect_eq "-t on the shipped config says ok" "$OUT" \
    "mxswitch: conf/mxswitch.conf: configuration ok"

printf 'routing: {\n  default = "sideways";\n  tll = 3;\n};\n' >"$WORK/bad.conf"
run_mx -t -c "$WORK/bad.conf"
expect_eq "-t on a bad config exits 1" "$RC" 1
expect_eq "-t names file, line and setting of every problem" "$OUT" \
"$WORK/bad.conf:2: routing.default: \"sideways\" is not one of none, local, remote, backup, auto
$WORK/bad.conf:3: routing.tll: unknown setting
mxswitch: $WORK/bad.conf: configuration rejected"

printf 'redis: { password = "hunter2-secret"; port = 0; };\n' >"$WORK/pw.conf"
run_mx -t -v -c "$WORK/pw.conf"
expect_eq "-t never prints the password" \
    "$(echo "$OUT" | grep -c hunter2-secret)" 0
printf 'redis: { password = "hunter2-secret"; };\n' >"$WORK/pw.conf"
run_mx -t -v -c "$WORK/pw.conf"
expect_eq "-t -v shows the settings but not the password" \
    "$(echo "$OUT" | grep -c -e hunter2-secret -e 'password = "(set)"')" 1

printf 'redis: {\n  sentinel: { master = "m"; servers = ("127.0.0.1:26379");\n    password = "s3ntinel-secret"; };\n};\n' >"$WORK/spw.conf"
run_mx -t -v -c "$WORK/spw.conf"
expect_eq "-t -v shows the Sentinel password as set, never its value" \
    "$RC:$(echo "$OUT" | grep -c s3ntinel-secret):$(echo "$OUT" |
        grep -c 'password = "(set)"')" "0:0:1"
printf 'redis: {\n  port = 0;\n  password = "hunter2-secret" 1;\n};\n' \
    >"$WORK/pwsyntax.conf"
run_mx -t -v -c "$WORK/pwsyntax.conf"
expect_eq "-t: a syntax error on the password line names the line only" \
    "$OUT" "$WORK/pwsyntax.conf:3: syntax error: syntax error
mxswitch: $WORK/pwsyntax.conf: configuration rejected"
printf 'redis: {\n  password = 4711;\n  sentinel: { password = ("s3ntinel-secret"); };\n};\n' \
    >"$WORK/pwtype.conf"
run_mx -t -v -c "$WORK/pwtype.conf"
expect_eq "-t: wrong types on both password lines: setting and line, no value" \
    "$RC:$(echo "$OUT" | grep -c -e s3ntinel-secret -e 4711):$(echo "$OUT" |
        grep -c -e ':2: redis.password: ' -e ':3: redis.sentinel.password: ')" \
    "1:0:2"

# Settings of the design that tagged recipients: accepted, one warning
# each naming file, line and setting.
printf '%s\n' 'milter: { max_recipients = 10; };' \
    'redis: { fetch_at = "eom"; };' \
    'routing: { remote_tag = "a"; local_tag = "b"; };' \
    'socketmap: { name = "mxswitch"; };' >"$WORK/removed.conf"
run_mx -t -c "$WORK/removed.conf"
expect_eq "-t accepts the removed settings, warning of each by line" \
    "$RC/$(echo "$OUT" | sed -n "s|^$WORK/removed.conf:\([0-9]\): \([a-z_.]*\): removed setting, ignored.*|\1 \2|p" | paste -sd,)/$(echo "$OUT" | tail -n 1)" \
    "0/1 milter.max_recipients,2 redis.fetch_at,3 routing.remote_tag,3 routing.local_tag,4 socketmap.name/mxswitch: $WORK/removed.conf: configuration ok"

printf 'routing: { default = "local"; };\n' >"$WORK/local.conf"
run_mx -t -c "$WORK/local.conf"
expect_eq "a local default is allowed" "$RC" 0
expect_eq "a local default is warned about" \
    "$(echo "$OUT" | grep -c 'warning: routing.default = "local"')" 1

run_mx -c "$WORK/missing.conf" -f
expect_eq "a missing config stops the start with status 1" "$RC" 1
expect_eq "a missing config says why" \
    "$(echo "$OUT" | grep -c 'missing.conf:0: cannot read')" 1

run_mx -V
expect_eq "-V prints the version" "$OUT" "mxswitch 0.1.0"
run_mx -h
expect_eq "-h exits 0" "$RC" 0
expect_eq "-h names the default config path" \
    "$(echo "$OUT" | grep -c /etc/mxswitch/mxswitch.conf)" 1
run_mx -x
expect_eq "an unknown option exits 2" "$RC" 2
run_mx extra
expect_eq "a stray argument exits 2" "$RC" 2

# A milter socket that is in use: the start fails with a clear message.
free_port port
start_redis "$port"
printf 'milter: { socket = "inet:%s@127.0.0.1"; allow_root = true; };\n' "$port" >"$WORK/busy.conf"
run_mx -f -c "$WORK/busy.conf"
expect_eq "a socket in use stops the start with status 1" "$RC" 1
expect_eq "a socket in use is explained" \
    "$(echo "$OUT" | grep -c "cannot listen on inet:$port@127.0.0.1")" 1

# The shipped mxswitch.conf (socketmap.socket set; the built-in default
# is off, and the Sendmail setup refuses it: there would be no map to ask).
MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --print-block \
    --config conf/mxswitch.conf 2>&1 |
    sed "s|conf/mxswitch.conf|/etc/mxswitch/mxswitch.conf|" >"$WORK/sm.m4"
expect_eq "conf/sendmail/mxswitch.m4 matches what the setup script generates" \
    "$(cmp -s "$WORK/sm.m4" conf/sendmail/mxswitch.m4 && echo same)" same

# Root: refused without milter.user unless allow_root; with a user, it
# drops to it after opening the socket, whose mode and group it sets; the
# pid file is written and removed.
if [ "$(id -u)" = 0 ]; then
    free_port rport
    printf 'milter: { socket = "inet:%s@127.0.0.1"; };\n' "$rport" >"$WORK/root.conf"
    run_mx -f -c "$WORK/root.conf"
    expect_eq "as root without milter.user: refuses to start" "$RC/$(echo "$OUT" |
        grep -c 'refusing to run as root: set milter.user')" 1/1
    mkdir -p "$WORK/run"
    chown nobody "$WORK/run"
    chmod 755 "$WORK"
    cat >"$WORK/drop.conf" <<CONF
milter: { socket = "unix:$WORK/run/mx.sock"; user = "nobody";
          group = "nogroup"; socket_mode = "0660";
          pid_file = "$WORK/run/mx.pid"; };
redis: { port = $port; timeout_ms = 100; };
CONF
    start_mxswitch "$WORK/drop.conf"
    expect_eq "milter.user: the daemon runs as nobody" \
        "$(awk '/^Uid:/ {print $2 "," $3 "," $4}' "/proc/$MX_PID/status")" \
        "65534,65534,65534"
    expect_eq "milter.socket_mode and group are set on the unix socket" \
        "$(stat -c '%a %G' "$WORK/run/mx.sock")" "660 nogroup"
    expect_eq "milter.pid_file holds the daemon's pid" \
        "$(cat "$WORK/run/mx.pid")" "$MX_PID"
    expect_eq "milter.user: the milter answers on its unix socket" \
        "$(answering "unix:$WORK/run/mx.sock")" "connect: continue"
    stop_mxswitch "milter.user: clean exit"
    expect_eq "the pid file and the unix socket are removed at exit" \
        "$(ls "$WORK/run" | wc -l)" 0
    # SIGTERM as soon as the milter answers, as nobody: libmilter's stop
    # ends in a clean exit that leaves neither pid file nor socket.
    for i in 1 2 3 4 5; do
        start_mxswitch "$WORK/drop.conf"
        answering "unix:$WORK/run/mx.sock" >/dev/null
        stop_mxswitch "SIGTERM once it answers ($i): clean exit"
    done
    expect_eq "SIGTERM once it answers: nothing left behind" \
        "$(ls "$WORK/run" | wc -l)" 0
fi

# SIGHUP and SIGINT stop mxswitch as SIGTERM does (libmilter owns all
# three; reload is SIGUSR1, test_ops): exit 0, the unix socket removed,
# the stop logged.  The socket map port closes too.
free_port sport
for sig in HUP INT; do
    cat >"$WORK/stop.conf" <<CONF
milter: { socket = "unix:$WORK/stop.sock"; allow_root = true; };
socketmap: { socket = "inet:$sport@127.0.0.1"; };
redis: { port = $port; timeout_ms = 100; };
CONF
    stops=$(grep -c ': milter stopped: ' "$WORK/mxswitch.log" 2>/dev/null)
    start_mxswitch "$WORK/stop.conf" "$sport"
    expect_eq "SIG$sig test: the milter answers on its unix socket before" \
        "$(answering "unix:$WORK/stop.sock")" "connect: continue"
    kill -"$sig" "$MX_PID"
    # Bounded: a daemon that took the signal for something else fails here
    # (libmilter notices the stop within its 5 s listener poll).
    for ((i = 0; i < 300; i++)); do
        kill -0 "$MX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$MX_PID" 2>/dev/null
    STOP_RC=0
    wait "$MX_PID" 2>/dev/null || STOP_RC=$?
    untrack "$MX_PID"
    expect_eq "SIG$sig stops mxswitch: exit 0" "$STOP_RC" 0
    expect_eq "SIG$sig: the milter socket file is gone" \
        "$([ -e "$WORK/stop.sock" ] && echo left)" ""
    expect_eq "SIG$sig: the socket map port is closed" \
        "$( (exec 3<>"/dev/tcp/127.0.0.1/$sport") 2>/dev/null && echo open)" ""
    expect_eq "SIG$sig: the stop is logged, then the exit" \
        "$(($(grep -c ': milter stopped: 0 session' "$WORK/mxswitch.log") - ${stops:-0}))/$(tail -n 1 "$WORK/mxswitch.log" | sed 's/.*: //')" \
        "1/stopped"
done

if [ -z "$WRAP" ]; then
    make --no-print-directory -s install DESTDIR="$WORK/root" \
        PREFIX=/opt/mx >/dev/null 2>&1
    expect_eq "make install honours DESTDIR and PREFIX" \
        "$("$WORK/root/opt/mx/sbin/mxswitch" -V 2>&1)" "mxswitch 0.1.0"
    expect_eq "make install puts the example config in place" \
        "$(cmp -s conf/mxswitch.conf "$WORK/root/etc/mxswitch/mxswitch.conf" &&
            echo same)" same
    UNIT="$WORK/root/lib/systemd/system/mxswitch.service"
    expect_eq "make install puts the systemd unit in place, with the paths" \
        "$(grep '^ExecStart=' "$UNIT" 2>&1)" \
        "ExecStart=/opt/mx/sbin/mxswitch -f -c /etc/mxswitch/mxswitch.conf"
    # verify needs the binaries it names: point them into DESTDIR.
    mkdir -p "$WORK/unit"
    sed "s#/opt/mx/sbin/#$WORK/root/opt/mx/sbin/#g" "$UNIT" \
        >"$WORK/unit/mxswitch.service"
    VRC=0
    VOUT=$(systemd-analyze verify "$WORK/unit/mxswitch.service" 2>&1) ||
        VRC=$?
    expect_eq "systemd-analyze verify accepts the unit, no warning" \
        "$VRC:$VOUT" "0:"
    sed 's#^NoNewPrivileges=.*#NoNewPrivileges=maybe#' \
        "$WORK/unit/mxswitch.service" >"$WORK/unit/broken.service"
    expect_eq "systemd-analyze verify is not blind (a bad value warns)" \
        "$(systemd-analyze verify "$WORK/unit/broken.service" 2>&1 |
            grep -c 'Failed to parse')" 1
    expect_eq "make install puts mxswitch-ctl beside mxswitch" \
        "$("$WORK/root/opt/mx/sbin/mxswitch-ctl" -V 2>&1)" "mxswitch-ctl 0.1.0"
    for page in man8/mxswitch.8 man8/mxswitch-ctl.8 man5/mxswitch.conf.5; do
        expect_eq "make install puts $page in MANDIR" \
            "$(cmp -s "milter/$(basename "$page")" \
                "$WORK/root/opt/mx/share/man/$page" && echo same)" same
    done
fi
finish
