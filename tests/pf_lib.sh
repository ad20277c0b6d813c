# tests/pf_lib.sh - a private mail world for end-to-end tests (sourced after
# lib.sh, inside the network and mount namespaces that pf_enter makes)
#
# Inside its own network namespace the test owns every loopback address and
# port, so the remote exchangers can be SMTP sinks on 127.0.0.2x:25 and the
# DNS server can listen on 127.0.0.1:53, with no effect on the host.  A bind
# mount gives this namespace its own /etc/resolv.conf.  Nothing here touches
# the host's Postfix, its config or its port 25.

# pf_enter "$@" - re-run the calling script in new net + mount namespaces
pf_enter() {
    if [ -z "${MXS_IN_NETNS:-}" ]; then
        rmdir "$WORK" # the run inside makes its own; exec skips the trap
        exec unshare --net --mount --fork env MXS_IN_NETNS=1 bash "$0" "$@"
    fi
}

PF_ETC=""
PF_SPOOL=""
PF_MAIL=""
PF_SMTP=127.0.0.1:2525

# pf_net_up - loopback up, private resolv.conf, DNS server with the zone
# given as dnsmasq options in PF_DNS (array)
pf_net_up() {
    ip link set lo up || return 1
    mount --make-rprivate / 2>/dev/null
    echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
    mount --bind "$WORK/resolv.conf" /etc/resolv.conf || return 1
    printf '127.0.0.1 localhost\n' >"$WORK/hosts"
    mount --bind "$WORK/hosts" /etc/hosts || return 1
    pf_dns_start
}

# pf_dns_start - (re)start the DNS server on 127.0.0.1:53 with PF_DNS;
# sets PF_DNS_PID
pf_dns_start() {
    local i before now
    before=$(grep -c ': started' "$WORK/dnsmasq.log" 2>/dev/null)
    dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
        --listen-address=127.0.0.1 --bind-interfaces --port=53 --user=root \
        --local=/test/ --log-queries --log-facility="$WORK/dnsmasq.log" \
        "${PF_DNS[@]}" &
    PF_DNS_PID=$!
    track "$PF_DNS_PID"
    for ((i = 0; i < 50; i++)); do
        now=$(grep -c ': started' "$WORK/dnsmasq.log" 2>/dev/null)
        [ "${now:-0}" -gt "${before:-0}" ] && return 0
        sleep 0.1
    done
    echo "dnsmasq did not start"
    return 1
}

# SERVFAIL on demand: with PF_SERVFAIL among its PF_DNS options the DNS
# server validates DNSSEC against a trust anchor no zone here can meet and
# forwards names outside .test to 127.0.0.9, where pf_dns_refuser refuses
# them: the validating server then answers SERVFAIL.
PF_SERVFAIL=(--dnssec
    --trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
    --server=127.0.0.9)

# pf_dns_refuser - a dnsmasq on 127.0.0.9 that refuses every name
pf_dns_refuser() {
    dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
        --listen-address=127.0.0.9 --bind-dynamic --port=53 --user=root \
        --log-facility="$WORK/dnsmasq-refuser.log" &
    track $!
}

# pf_sink NAME IP [smtp-sink options] - an exchanger on IP:25 that keeps
# every message (with X-Rcpt-Args lines) in $WORK/sink/NAME/
pf_sink() {
    local name=$1 ip=$2
    shift 2
    mkdir -p "$WORK/sink/$name"
    smtp-sink -u root -h "$name" -d "$WORK/sink/$name/%M." "$@" "$ip:25" 50 \
        2>>"$WORK/sink-$name.log" &
    track $!
    eval "SINK_PID_${name//[^a-zA-Z0-9]/_}=$!"
    wait_port_ip "$ip" 25 5
}

# pf_backup_dns DOMAIN IP - PF_DNS words for a domain whose best MX is
# mx.DOMAIN at IP (MX 10) and whose backup MX is this server
# (mx.hosting.test, MX 20), one a line
pf_backup_dns() {
    printf '%s\n' "--mx-host=$1,mx.$1,10" "--host-record=mx.$1,$2" \
        "--mx-host=$1,mx.hosting.test,20"
}

# pf_responder NAME IP HOST REFUSED... - an exchanger on IP:25 that calls
# itself HOST, refuses RCPT to each REFUSED address with 550 5.1.1 and
# takes any other (tests/mx_responder.py); messages in $WORK/sink/NAME/,
# the commands it was given in $WORK/sink-NAME.log
pf_responder() {
    local name=$1 ip=$2 host=$3
    shift 3
    mkdir -p "$WORK/sink/$name"
    python3 "$(dirname "${BASH_SOURCE[0]}")/mx_responder.py" "$ip" "$host" \
        "$WORK/sink/$name" "$@" 2>>"$WORK/sink-$name.log" &
    track $!
    wait_port_ip "$ip" 25 5
}

# wait_port_ip IP PORT SECONDS - until something listens on IP:PORT
wait_port_ip() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1:$2"
    return 1
}

# pf_make - a Postfix instance of our own under $WORK/pf: config in etc/,
# queue in spool/, mailboxes in mail/; smtpd on $PF_SMTP.  Extra main.cf
# lines come from stdin.
pf_make() {
    PF_ETC=$WORK/pf/etc
    PF_SPOOL=$WORK/pf/spool
    PF_MAIL=$WORK/pf/mail
    mkdir -p "$PF_ETC" "$PF_SPOOL" "$WORK/pf/data" "$PF_MAIL"
    chmod 755 "$WORK" "$WORK/pf"
    chown 5000:5000 "$PF_MAIL"
    chown postfix "$WORK/pf/data"
    cp /usr/share/postfix/master.cf.dist "$PF_ETC/master.cf"
    cat >"$PF_ETC/main.cf" <<CF
compatibility_level = 3.6
config_directory = $PF_ETC
queue_directory = $PF_SPOOL
data_directory = $WORK/pf/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.hosting.test
mydomain = hosting.test
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file_prefixes = $WORK/pf
maillog_file = $WORK/pf/maillog
smtp_host_lookup = dns
smtp_connect_timeout = 3s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
biff = no
alias_maps =
alias_database =
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = texthash:$PF_ETC/vmailbox
virtual_alias_maps = texthash:$PF_ETC/valias
virtual_uid_maps = static:5000
virtual_gid_maps = static:5000
virtual_minimum_uid = 100
CF
    cat >>"$PF_ETC/main.cf"
    : >"$PF_ETC/vmailbox"
    : >"$PF_ETC/valias"
    # Our smtpd on $PF_SMTP only; no chroot (the tables live in $WORK); the
    # log goes to maillog_file through postlogd.
    postconf -c "$PF_ETC" -MX smtp/inet
    postconf -c "$PF_ETC" -Me "$PF_SMTP/inet = $PF_SMTP inet n - n - - smtpd"
    postconf -c "$PF_ETC" -Me "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"
    postconf -c "$PF_ETC" -F '*/*/chroot = n'
}

# pf_start - start the instance; its master's pid is tracked
pf_start() {
    postfix -c "$PF_ETC" check >>"$WORK/pf/start.log" 2>&1 &&
        postfix -c "$PF_ETC" start >>"$WORK/pf/start.log" 2>&1 || {
        echo "postfix did not start:"
        tail -n 20 "$WORK/pf/start.log"
        return 1
    }
    PF_PID=$(tr -d ' ' <"$PF_SPOOL/pid/master.pid")
    track "$PF_PID"
    wait_port_ip "${PF_SMTP%:*}" "${PF_SMTP#*:}" 10
}

# pf_stop - stop the instance and reap its master
pf_stop() {
    postfix -c "$PF_ETC" stop >>"$WORK/pf/start.log" 2>&1
    await_exit "$PF_PID"
}

# pf_wait_queue SECONDS - until the queue is empty; 1 if it is not
pf_wait_queue() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [ -z "$(find "$PF_SPOOL/incoming" "$PF_SPOOL/active" \
            "$PF_SPOOL/deferred" "$PF_SPOOL/maildrop" -type f 2>/dev/null)" ] &&
            return 0
        sleep 0.1
    done
    return 1
}

# pf_flush - ask the queue manager to retry deferred mail now
pf_flush() { postqueue -c "$PF_ETC" -f >/dev/null 2>&1; }

# smtp_send FROM RCPT-SPEC... - one message by SMTP to $PF_SMTP.  A
# RCPT-SPEC is "address [ESMTP args]".  Prints one line per RCPT
# ("RCPT <addr> 250") and "DATA 250" (or the code), and the message's
# Subject is $SUBJECT (default: a counter).  A MAIL command that is not
# accepted adds a line "MAIL <code>" first.
smtp_send() {
    local from=$1 r code line
    shift
    SMTP_N=$((${SMTP_N:-0} + 1))
    local subject=${SUBJECT:-msg-$SMTP_N}
    exec 5<>"/dev/tcp/${PF_SMTP%:*}/${PF_SMTP#*:}" || { echo "CONNECT failed"; return 1; }
    smtp_reply() {
        code=""
        while IFS= read -r -t 10 line <&5; do
            line=${line%$'\r'}
            code=${line:0:3}
            [ "${line:3:1}" = "-" ] || break
        done
        SMTP_LAST=$line
    }
    smtp_reply
    printf 'EHLO client.test\r\n' >&5
    smtp_reply
    printf 'MAIL FROM:<%s>\r\n' "$from" >&5
    smtp_reply
    [ "${code:0:1}" = 2 ] || echo "MAIL $code${SMTP_VERBOSE:+ $SMTP_LAST}"
    local ok=0
    for r in "$@"; do
        local addr=${r%% *} args=""
        [ "$addr" != "$r" ] && args=" ${r#* }"
        printf 'RCPT TO:<%s>%s\r\n' "$addr" "$args" >&5
        smtp_reply
        echo "RCPT <$addr> $code${SMTP_VERBOSE:+ $SMTP_LAST}"
        [ "${code:0:1}" = 2 ] && ok=1
    done
    if [ "$ok" = 1 ]; then
        printf 'DATA\r\n' >&5
        smtp_reply
        printf 'From: <%s>\r\nSubject: %s\r\n\r\nbody of %s\r\n.\r\n' \
            "$from" "$subject" "$subject" >&5
        smtp_reply
        echo "DATA $code${SMTP_VERBOSE:+ $SMTP_LAST}"
    fi
    printf 'QUIT\r\n' >&5
    smtp_reply
    exec 5>&-
}

# maildir_count DOMAIN/USER SUBJECT - messages with that subject in a maildir
maildir_count() {
    grep -lsx "Subject: $2" "$PF_MAIL/$1/new/"* 2>/dev/null | wc -l
}

# sink_count SINK SUBJECT - messages with that subject at an exchanger
sink_count() {
    grep -lsx "Subject: $2" "$WORK/sink/$1/"* 2>/dev/null | wc -l
}

# sink_rcpts SINK SUBJECT - the X-Rcpt-Args lines the exchanger recorded
sink_rcpts() {
    local f
    for f in $(grep -lsx "Subject: $2" "$WORK/sink/$1/"* 2>/dev/null); do
        sed -n 's/^X-Rcpt-Args: //p' "$f"
    done | sort
}

# pf_valias ADDR - the valias socket map as main.cf names it
# (mxswitch-postfix-setup's form, docs/design.md): behind a regexp that
# passes on keys with an "@", so that the virtual_alias_domains check
# never asks it for a bare domain
pf_valias() { echo "pipemap:{regexp:{{/(.*@.*)/ \$\$1}}, socketmap:$1:valias}"; }

# pf_wire MXCONF MILTERPORT SMAPPORT - wire the instance to mxswitch by
# hand, as docs/design.md says (not with scripts/mxswitch-postfix-setup):
# the transport, valias (pf_valias) and rcpt socket maps on
# 127.0.0.1:SMAPPORT (the valias map first, the instance's own valias
# table after it), the milter on 127.0.0.1:MILTERPORT with default_action tempfail,
# and the instance's transports in postfix-transports beside MXCONF
# (local "virtual:", remote "smtp:").  Run it before pf_start, so that no
# smtpd runs with the old main.cf.
pf_wire() {
    local sm="inet:127.0.0.1:$3" own
    own=$(postconf -c "$PF_ETC" -h virtual_alias_maps) || return 1
    postconf -c "$PF_ETC" -e \
        "transport_maps = socketmap:$sm:transport" \
        "virtual_alias_maps = $(pf_valias "$sm")${own:+, $own}" \
        "smtpd_milters = { inet:127.0.0.1:$2, default_action=tempfail }" \
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_recipient_access socketmap:$sm:rcpt, reject_unauth_destination" ||
        return 1
    transports "$(dirname "$1")"
}

# pf_tagged_files - files under the sinks, the maildirs and the maillog that
# hold a tag of the design that rewrote recipients (+mx-remote, +mx-local),
# one path a line; nothing when there is none
pf_tagged_files() {
    grep -rlE 'mx-(remote|local)' "$WORK/sink" "$PF_MAIL" "$WORK/pf/maillog" \
        2>/dev/null
}
