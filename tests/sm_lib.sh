# tests/sm_lib.sh - a private, real Sendmail 8.17 for end-to-end tests
# (sourced after lib.sh and pf_lib.sh, inside pf_enter's namespaces)
#
# Debian's sendmail-bin conflicts with postfix (both provide
# mail-transport-agent), and the suite needs both.  So Sendmail is never
# installed: the Debian 12 packages sendmail-bin, sendmail-cf and
# sendmail-base are fetched once with `apt-get download` into
# build/sendmail-debs/ and unpacked with `dpkg -x` into the test's own
# directory.  The binary runs from there with -C and a .cf of our own: its
# own queue, pid file, aliases, help and status files, listening on
# $PF_SMTP only.  Nothing under /etc/mail is read or written.
#
# Host packages it needs (scripts/deps test): m4 (the .cf is made with m4)
# and liblockfile1 (a library sendmail links to).  Its other libraries
# (libdb5.3, libldap-2.5-0, libnsl2, libsasl2-2, libssl3, libwrap0) are on
# every Debian 12 that has Postfix.

SM_DEBS=${SM_DEBS:-$(pwd)/build/sendmail-debs}
SM_ROOT=""   # the unpacked packages
SM_BIN=""    # the sendmail binary
SM_CFDIR=""  # the cf/ tree of sendmail-cf (m4 macros)
SM_DIR=""    # the instance: $WORK/sm
SM_CF=""     # its sendmail.cf (the MTA)
SM_MC=""     # the .mc it is made from
SM_SUBMIT="" # submit.cf: the MSP, for command line mail
SM_MAIL=""   # local deliveries: $SM_MAIL/USER/<one file per copy>

# sm_unpack DIR - unpack Sendmail into DIR, downloading the .debs into
# $SM_DEBS first when they are not there; sets SM_ROOT, SM_BIN, SM_CFDIR
sm_unpack() {
    local p n=0
    mkdir -p "$SM_DEBS" "$1" || return 1
    for p in sendmail-bin sendmail-cf sendmail-base; do
        ls "$SM_DEBS/${p}_"*.deb >/dev/null 2>&1 && continue
        # apt's sandbox user must be able to write the directory
        (cd "$SM_DEBS" && apt-get download "$p") >>"$WORK/sm-unpack.log" 2>&1 ||
            { echo "apt-get download $p failed:"; tail -n 5 "$WORK/sm-unpack.log"; return 1; }
    done
    for p in "$SM_DEBS"/sendmail-bin_*.deb "$SM_DEBS"/sendmail-cf_*.deb \
        "$SM_DEBS"/sendmail-base_*.deb; do
        dpkg -x "$p" "$1" || return 1
        n=$((n + 1))
    done
    [ "$n" = 3 ] || { echo "expected 3 sendmail .debs in $SM_DEBS"; return 1; }
    SM_ROOT=$1
    SM_BIN=$1/usr/libexec/sendmail/sendmail
    SM_CFDIR=$1/usr/share/sendmail/cf
    [ -x "$SM_BIN" ] && [ -f "$SM_CFDIR/m4/cf.m4" ] || return 1
    command -v m4 >/dev/null || { echo "m4 is missing (apt-get install m4)"; return 1; }
    if ldd "$SM_BIN" | grep -q 'not found'; then
        echo "sendmail lacks libraries:"; ldd "$SM_BIN" | grep 'not found'
        return 1
    fi
}

# sm_m4 MC CF - make a .cf from a .mc with the unpacked cf/ macros
sm_m4() {
    m4 -D_CF_DIR_="$SM_CFDIR/" "$SM_CFDIR/m4/cf.m4" "$1" >"$2.tmp" &&
        mv "$2.tmp" "$2"
}

# sm_make - write the instance under $WORK/sm: sendmail.mc (extra .mc lines
# from stdin go before the MAILER lines), sendmail.cf, submit.mc/.cf,
# aliases, a "local mailer" that files each copy under $SM_MAIL/USER/
sm_make() {
    SM_DIR=$WORK/sm
    SM_MC=$SM_DIR/sendmail.mc
    SM_CF=$SM_DIR/sendmail.cf
    SM_SUBMIT=$SM_DIR/submit.cf
    SM_MAIL=$SM_DIR/mail
    local d=$SM_DIR port=${PF_SMTP#*:} extra
    extra=$(cat)
    mkdir -p "$d/mqueue" "$d/clientmqueue" "$SM_MAIL" || return 1
    chmod 755 "$WORK" "$d"
    chmod 700 "$d/mqueue"
    chmod 770 "$d/clientmqueue"
    # The MSP refuses to run as root: it runs as mail (smmsp is not there,
    # sendmail-base is not installed) and queues in clientmqueue.
    chown mail:mail "$d/clientmqueue"
    # The local mailer: one file per recipient per message.  Sendmail runs
    # it with the user part of each local recipient ($u), after alias and
    # +detail processing, with the message on stdin.
    cat >"$d/deliver" <<'SH'
#!/bin/sh
# deliver USER... - file the message on stdin once per USER
dir=$(dirname "$0")/mail
tmp=$(mktemp "$dir/.in.XXXXXX") || exit 75
cat >"$tmp" || exit 75
for u in "$@"; do
    mkdir -p "$dir/$u" && cp "$tmp" "$(mktemp "$dir/$u/msg.XXXXXX")" || exit 75
done
rm -f "$tmp"
SH
    chmod 755 "$d/deliver"
    printf 'postmaster: root\nMAILER-DAEMON: root\naliased: alice\n' >"$d/aliases"
    printf 'hosts\tfiles dns\naliases\tfiles\n' >"$d/service.switch"
    : >"$d/mailertable"
    : >"$d/sendmail.st"
    cat >"$SM_MC" <<MC
divert(-1)dnl
# A private Sendmail for tests/test_sendmail.sh (made by sm_make)
divert(0)dnl
VERSIONID(\`mxswitch test instance')
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mx.hosting.test')dnl
define(\`QUEUE_DIR', \`$d/mqueue')dnl
define(\`STATUS_FILE', \`$d/sendmail.st')dnl
define(\`ALIAS_FILE', \`$d/aliases')dnl
define(\`HELP_FILE', \`$SM_ROOT/etc/mail/helpfile')dnl
define(\`confPID_FILE', \`$d/sendmail.pid')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/service.switch')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confCW_FILE', \`')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe,TrustStickyBit')dnl
define(\`confTO_CONNECT', \`3s')dnl
define(\`confTO_ICONNECT', \`3s')dnl
define(\`confMIN_QUEUE_AGE', \`0')dnl
define(\`confTO_QUEUEWARN', \`0')dnl
define(\`confMILTER_LOG_LEVEL', \`6')dnl
define(\`confLOG_LEVEL', \`14')dnl
dnl Local delivery: our own program, no passwd check (no w flag), run as root
define(\`LOCAL_MAILER_PATH', \`$d/deliver')dnl
define(\`LOCAL_MAILER_ARGS', \`deliver \$u')dnl
define(\`_DEF_LOCAL_MAILER_FLAGS', \`lsDFMA5:/|@q')dnl
define(\`LOCAL_MAILER_FLAGS', \`SPmn9')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`mailertable', \`hash -o $d/mailertable')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Port=$port, Addr=127.0.0.1')dnl
$extra
MAILER_DEFINITIONS
MAILER(\`local')dnl
MAILER(\`smtp')dnl
MC
    # The MSP: command line mail is queued by submit.cf and sent by SMTP to
    # our MTA's port, so it passes the MTA's milters.
    cat >"$d/submit.mc" <<MC
divert(0)dnl
VERSIONID(\`mxswitch test MSP')
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mx.hosting.test')dnl
define(\`MSP_QUEUE_DIR', \`$d/clientmqueue')dnl
define(\`confPID_FILE', \`$d/sm-client.pid')dnl
define(\`STATUS_FILE', \`$d/sm-client.st')dnl
define(\`confRUN_AS_USER', \`mail:mail')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/service.switch')dnl
define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe,TrustStickyBit')dnl
define(\`confTO_CONNECT', \`3s')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $port')dnl
FEATURE(\`msp', \`[127.0.0.1]')dnl
MC
    sm_m4 "$SM_MC" "$SM_CF" && sm_makemap mailertable &&
        sm_m4 "$d/submit.mc" "$SM_SUBMIT" &&
        "$SM_BIN" -C "$SM_CF" -bi >>"$d/start.log" 2>&1
}

# sm_makemap NAME - rebuild $SM_DIR/NAME.db from $SM_DIR/NAME
sm_makemap() {
    "$SM_ROOT/usr/libexec/sendmail/makemap" -C "$SM_CF" hash \
        "$SM_DIR/$1" <"$SM_DIR/$1"
}

# sm_start - start the MTA daemon (queue run every 1s; -X logs every SMTP
# dialogue it has, there being no syslog here); its pid is tracked
sm_start() {
    rm -f "$SM_DIR/sendmail.pid"
    "$SM_BIN" -C "$SM_CF" -bd -q1s -X "$SM_DIR/traffic.log" \
        >>"$SM_DIR/start.log" 2>&1 || {
        echo "sendmail did not start:"; tail -n 20 "$SM_DIR/start.log"; return 1
    }
    local i
    for ((i = 0; i < 50; i++)); do
        [ -s "$SM_DIR/sendmail.pid" ] && break
        sleep 0.1
    done
    SM_PID=$(head -n 1 "$SM_DIR/sendmail.pid" 2>/dev/null)
    [ -n "$SM_PID" ] || { echo "sendmail wrote no pid file"; return 1; }
    track "$SM_PID"
    wait_port_ip "${PF_SMTP%:*}" "${PF_SMTP#*:}" 10
}

# sm_stop - stop the daemon (its children finish or die with it)
sm_stop() {
    [ -n "${SM_PID:-}" ] || return 0
    kill -TERM "$SM_PID" 2>/dev/null
    await_exit "$SM_PID"
    SM_PID=""
}

# sm_restart - after a .cf change (Sendmail reads it only at start)
sm_restart() { sm_stop && sm_start; }

# sm_wait_queue SECONDS - until both queues are empty; 1 if they are not
sm_wait_queue() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [ -z "$(find "$SM_DIR/mqueue" "$SM_DIR/clientmqueue" -type f \
            -name '[dqx]f*' 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# sm_count USER SUBJECT - local copies with that subject for USER
sm_count() {
    grep -lsx "Subject: $2" "$SM_MAIL/$1/"* 2>/dev/null | wc -l
}

# sm_submit ARGS... - the server's own sendmail(1) through submit.cf (the
# MSP), message on stdin; delivers to the MTA at once (-odi)
sm_submit() { "$SM_BIN" -C "$SM_SUBMIT" -odi "$@"; }

# sm_inject FROM RCPT... - queue a message (stdin) with the MTA's own
# sendmail.cf, as a local program using it would: no SMTP, so no milter;
# -odq: into the queue only, the daemon's queue runner delivers it
sm_inject() {
    local from=$1
    shift
    "$SM_BIN" -C "$SM_CF" -odq -f "$from" "$@"
}

# sm_queued - messages in the MTA's queue
sm_queued() { find "$SM_DIR/mqueue" -type f -name 'qf*' | wc -l; }
