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

# -t: the file, then what the start needs.  As root the daemon becomes
# milter.user: the shipped config's "mxswitch" must exist; here it is
# adapted to users and directories this machine has.
sed 's/^\(    user = \).*/\1"nobody";/' conf/mxswitch.conf >"$WORK/shipped.conf"
run_mx -t -c "$WORK/shipped.conf"
expect_eq "-t on the shipped config (user nobody) exits 0 and says ok" \
    "$RC/$OUT" "0/mxswitch: $WORK/shipped.conf: configuration ok"
if [ "$(id -u)" = 0 ]; then
    sed 's/^\(    user = \).*/\1"mxs-no-such-user";/' conf/mxswitch.conf \
        >"$WORK/nouser.conf"
    run_mx -t -c "$WORK/nouser.conf"
    expect_eq "-t as root: a milter.user that does not exist fails (3)" \
        "$RC" 3
    expect_eq "-t names the missing user and how to make it, then why" \
        "$OUT" "mxswitch: $WORK/nouser.conf: milter.user mxs-no-such-user: no such user: create it (useradd --system --no-create-home --shell /usr/sbin/nologin mxs-no-such-user) or name an existing one
mxswitch: $WORK/nouser.conf: the configuration is valid, but mxswitch would not start: 1 problem above"
    printf 'milter: { user = "nobody"; group = "mxs-no-such-group"; };\n' \
        >"$WORK/nogroup.conf"
    run_mx -t -c "$WORK/nogroup.conf"
    expect_eq "-t as root: a milter.group that does not exist fails, named" \
        "$RC/$(echo "$OUT" | grep -c 'milter.group mxs-no-such-group: no such group')" \
        3/1
    printf 'milter: { socket = "inet:8891@127.0.0.1"; };\n' >"$WORK/rootnouser.conf"
    run_mx -t -c "$WORK/rootnouser.conf"
    expect_eq "-t as root: no milter.user and no allow_root fails, saying so" \
        "$RC/$(echo "$OUT" | grep -c 'started as root, mxswitch would refuse to run: set milter.user')" \
        3/1
fi
printf 'milter: { socket = "unix:%s/nodir/mx.sock"; allow_root = true; };\n' \
    "$WORK" >"$WORK/nodir.conf"
run_mx -t -c "$WORK/nodir.conf"
expect_eq "-t: a milter socket in a missing directory fails (3), named" \
    "$RC/$(echo "$OUT" | grep -c "milter.socket unix:$WORK/nodir/mx.sock: directory $WORK/nodir: No such file or directory")" \
    3/1
printf 'milter: { allow_root = true; };\nsocketmap: { socket = "local:%s/nodir/sm.sock"; };\n' \
    "$WORK" >"$WORK/nodir2.conf"
run_mx -t -c "$WORK/nodir2.conf"
expect_eq "-t: a socket map socket in a missing directory fails, named" \
    "$RC/$(echo "$OUT" | grep -c "socketmap.socket local:$WORK/nodir/sm.sock: directory $WORK/nodir: No such")" \
    3/1
mkdir -p "$WORK/rundir"
printf 'milter: { socket = "unix:%s/rundir/mx.sock"; allow_root = true; };\n' \
    "$WORK" >"$WORK/dir.conf"
run_mx -t -c "$WORK/dir.conf"
expect_eq "-t: a milter socket in an existing directory is ok" "$RC" 0
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$WORK/rootdir"
    chmod 755 "$WORK" "$WORK/rootdir"
    printf 'milter: { socket = "unix:%s/rootdir/mx.sock"; user = "nobody"; };\n' \
        "$WORK" >"$WORK/rootdir.conf"
    run_mx -t -c "$WORK/rootdir.conf"
    expect_eq "-t: a directory root can write but milter.user cannot: ok, warned" \
        "$RC/$(echo "$OUT" | grep -c "warning: milter.socket unix:$WORK/rootdir/mx.sock: $WORK/rootdir is not writable by milter.user nobody")" \
        0/1
    chown nobody "$WORK/rootdir"
    run_mx -t -c "$WORK/rootdir.conf"
    expect_eq "-t: milter.user owns the directory: ok, no warning" \
        "$RC/$OUT" "0/mxswitch: $WORK/rootdir.conf: configuration ok"
    chmod 755 "$WORK/rundir"
    printf 'milter: { socket = "unix:%s/rundir/mx.sock"; user = "nobody"; };\n' \
        "$WORK" >"$WORK/nobody.conf"
    RC=0
    OUT=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
        $WRAP "$MXSWITCH" -t -c "$WORK/nobody.conf" 2>&1) || RC=$?
    expect_eq "-t not as root: a directory it cannot write fails, with errno" \
        "$RC/$(echo "$OUT" | grep -c "milter.socket unix:$WORK/rundir/mx.sock: cannot create files in $WORK/rundir: Permission denied")" \
        3/1
fi
# Under systemd (JOURNAL_STREAM names stderr) each line carries its
# priority for the journal.
: >"$WORK/journal.err"
RC=0
JOURNAL_STREAM=$(stat -c %d:%i "$WORK/journal.err") $WRAP "$MXSWITCH" -t \
    -c "$WORK/nodir.conf" 2>>"$WORK/journal.err" || RC=$?
expect_eq "-t on the journal's stream: every line with priority <3> (error)" \
    "$RC/$(grep -c '^<3>mxswitch: ' "$WORK/journal.err")/$(wc -l <"$WORK/journal.err")" \
    3/2/2

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

printf 'milter: { allow_root = true; };\nredis: {\n  sentinel: { master = "m"; servers = ("127.0.0.1:26379");\n    password = "s3ntinel-secret"; };\n};\n' >"$WORK/spw.conf"
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
printf '%s\n' 'milter: { max_recipients = 10; allow_root = true; };' \
    'redis: { fetch_at = "eom"; };' \
    'routing: { remote_tag = "a"; local_tag = "b"; };' \
    'socketmap: { name = "mxswitch"; };' >"$WORK/removed.conf"
run_mx -t -c "$WORK/removed.conf"
expect_eq "-t accepts the removed settings, warning of each by line" \
    "$RC/$(echo "$OUT" | sed -n "s|^$WORK/removed.conf:\([0-9]\): \([a-z_.]*\): removed setting.*|\1 \2|p" | paste -sd,)/$(echo "$OUT" | tail -n 1)" \
    "0/1 milter.max_recipients,2 redis.fetch_at,3 routing.remote_tag,3 routing.local_tag,4 socketmap.name/mxswitch: $WORK/removed.conf: configuration ok"

printf 'routing: { default = "local"; };\nmilter: { allow_root = true; };\n' >"$WORK/local.conf"
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

# --help and --version, as Debian's programs have them: to stdout, 0.
MXCTL=$(dirname "$MXSWITCH")/mxswitch-ctl
# out_err CMD... - stdout, stderr line counts and the exit status
out_err() {
    local rc=0
    # shellcheck disable=SC2086
    $WRAP "$@" >"$WORK/o.out" 2>"$WORK/o.err" || rc=$?
    echo "$rc/$(wc -l <"$WORK/o.out")/$(wc -l <"$WORK/o.err")"
}
expect_eq "mxswitch --version: the version on stdout, exit 0" \
    "$(out_err "$MXSWITCH" --version)/$(cat "$WORK/o.out")" "0/1/0/mxswitch 0.1.0"
expect_eq "mxswitch --help: usage on stdout, exit 0" \
    "$(out_err "$MXSWITCH" --help)/$(head -n 1 "$WORK/o.out")" \
    "0/8/0/usage: mxswitch [-fhtvV] [-c config]"
expect_eq "mxswitch --bogus: usage on stderr, exit 2" \
    "$(out_err "$MXSWITCH" --bogus | cut -d/ -f1,2)/$(grep -c '^usage: mxswitch ' "$WORK/o.err")" \
    "2/0/1"
expect_eq "mxswitch-ctl --version: the version on stdout, exit 0" \
    "$(out_err "$MXCTL" --version)/$(cat "$WORK/o.out")" "0/1/0/mxswitch-ctl 0.1.0"
for h in --help -h help; do
    expect_eq "mxswitch-ctl $h: usage on stdout, exit 0" \
        "$(out_err "$MXCTL" $h | cut -d/ -f1,3)/$(head -n 1 "$WORK/o.out")" \
        "0/0/usage: mxswitch-ctl [-hvV] [-c config] command [args]"
done
expect_eq "mxswitch-ctl help prints the same as --help" \
    "$($MXCTL help | md5sum)" "$($MXCTL --help | md5sum)"
expect_eq "mxswitch-ctl --bogus: usage on stderr, exit 64" \
    "$(out_err "$MXCTL" --bogus | cut -d/ -f1,2)/$(grep -c '^usage: mxswitch-ctl ' "$WORK/o.err")" \
    "64/0/1"
expect_eq "mxswitch-ctl with an unknown command: exit 64" \
    "$(out_err "$MXCTL" frobnicate | cut -d/ -f1,2)" "64/0"

# A milter socket that is in use: the start fails with a clear message.
free_port port
start_redis "$port"
printf 'milter: { socket = "inet:%s@127.0.0.1"; allow_root = true; };\n' "$port" >"$WORK/busy.conf"
run_mx -f -c "$WORK/busy.conf"
expect_eq "a socket in use stops the start with status 1" "$RC" 1
expect_eq "a socket in use is explained" \
    "$(echo "$OUT" | grep -c "cannot listen on inet:$port@127.0.0.1")" 1

# The daemon on the journal's stream: every line starts with its
# priority, and carries neither a time stamp nor the program's name (the
# journal adds both).
free_port jport
printf 'milter: { socket = "inet:%s@127.0.0.1"; allow_root = true; };\nredis: { port = %s; timeout_ms = 100; };\n' \
    "$jport" "$port" >"$WORK/journal.conf"
: >"$WORK/journal.log"
# journal_run LOG - mxswitch with JOURNAL_STREAM naming journal.log and
# its stderr into LOG; stopped once it answers; exit status in JRC
journal_run() {
    # shellcheck disable=SC2086
    JOURNAL_STREAM=$(stat -c %d:%i "$WORK/journal.log") $WRAP "$MXSWITCH" \
        -f -c "$WORK/journal.conf" 2>>"$1" &
    JPID=$!
    track "$JPID"
    await_start "$1" "$JPID"
    answering "inet:$jport@127.0.0.1" >/dev/null
    kill -TERM "$JPID"
    JRC=0
    wait "$JPID" || JRC=$?
    untrack "$JPID"
}
journal_run "$WORK/journal.log"
expect_eq "journal: the daemon started and stopped cleanly" "$JRC" 0
expect_grep "journal: the start line is info (<6>), no stamp, no name" \
    "$WORK/journal.log" "^<6>mxswitch 0\.1\.0: milter on inet:$jport@127\.0\.0\.1, "
expect_grep "journal: a warning is <4>" "$WORK/journal.log" \
    '^<4>running as root \(milter.allow_root = true\)$'
expect_eq "journal: every line starts with a priority" \
    "$(grep -cv '^<[0-7]>' "$WORK/journal.log")" 0
expect_eq "journal: no line carries a time stamp" \
    "$(grep -cE '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:' "$WORK/journal.log")" 0
: >"$WORK/other.log"
# JOURNAL_STREAM inherited, but stderr is a file of its own: stamped lines.
journal_run "$WORK/other.log"
expect_grep "stderr not the journal's stream: the usual stamped line" \
    "$WORK/other.log" \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]{12} mxswitch: info: mxswitch 0\.1\.0: milter on '

# The shipped mxswitch.conf (socketmap.socket set; the built-in default
# is off, and the Sendmail setup refuses it: there would be no map to ask).
MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --print-block \
    --config conf/mxswitch.conf 2>"$WORK/sm.err" |
    sed "s|conf/mxswitch.conf|/etc/mxswitch/mxswitch.conf|" >"$WORK/sm.m4"
expect_eq "conf/sendmail/mxswitch.m4 matches what the setup script generates" \
    "$(cmp -s "$WORK/sm.m4" conf/sendmail/mxswitch.m4 && echo same)" same
# A file of the tagging design that named its own tags: the daemon keeps
# them (valias, test_socketmap) and the Sendmail rules take them off.
# m4 (which builds the .cf) keeps tags that are m4 words as words.
sed 's/^routing: {/routing: { remote_tag = "dnl"; local_tag = "divert";/' \
    conf/mxswitch.conf >"$WORK/tags.conf"
expect_eq "an old file's own tags: the Sendmail rules take those off, m4 words too" \
    "$(MXSWITCH=$MXSWITCH scripts/mxswitch-sendmail-setup --print-block \
        --config "$WORK/tags.conf" 2>/dev/null | m4 | grep '^R\$+ + ' | cut -f1 | paste -sd,)" \
    'R$+ + dnl < @ $+ >,R$+ + divert < @ $+ >'

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

# scripts/run: its banner says how to flip a domain with mxswitch-ctl and
# the config it wrote, and that line works as printed.
if [ -z "$WRAP" ] && [ "${VARIANT:-release}" = release ]; then
    free_port rport2
    free_port mport2
    free_port sport2
    REDIS_PORT=$rport2 MILTER_PORT=$mport2 SMAP_PORT=$sport2 \
        MXSWITCH_RUN_DIR=$WORK/run-private setsid scripts/run \
        >"$WORK/run.out" 2>&1 &
    RUN_PID=$!
    track "$RUN_PID"
    await_start "$WORK/run.out" "$RUN_PID"
    CTL_LINE=$(sed -n 's/^    \(milter\/mxswitch-ctl -c [^ ]*\) set example.com remote$/\1/p' \
        "$WORK/run.out")
    expect_eq "scripts/run's banner has the mxswitch-ctl line with its config" \
        "$CTL_LINE" "milter/mxswitch-ctl -c $WORK/run-private/mxswitch.conf"
    expect_grep "scripts/run's banner says how to flip a domain with redis-cli" \
        "$WORK/run.out" "redis-cli -p $rport2 SET mxswitch:domain:example.com remote"
    RUN_OUT=$($CTL_LINE set example.com remote 2>&1 && $CTL_LINE get example.com 2>&1)
    expect_eq "the banner's mxswitch-ctl line sets and reads a domain" \
        "$(echo "$RUN_OUT" | tail -n 1)" "remote"
    RUN_REDIS=$(sed -n 's/.*127.0.0.1:[0-9]* (pid \([0-9]*\),.*/\1/p' "$WORK/run.out")
    kill -TERM -- "-$RUN_PID" 2>/dev/null
    wait "$RUN_PID" 2>/dev/null
    untrack "$RUN_PID"
    [ -n "$RUN_REDIS" ] && kill "$RUN_REDIS" 2>/dev/null
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
        "$(($(grep -c ': milter stopped: ' "$WORK/mxswitch.log") - ${stops:-0}))/$(tail -n 1 "$WORK/mxswitch.log" | sed 's/.*: //')" \
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
    UNIT="$WORK/root/opt/mx/lib/systemd/system/mxswitch.service"
    expect_eq "make install puts the systemd unit under PREFIX, with the paths" \
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
