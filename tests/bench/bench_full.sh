# tests/bench/bench_full.sh - the parts of the full benchmark beyond the
# loadgen scale points (sourced by tests/bench/run, inside its network
# namespace): memory over 1,000,000 messages, the profile, end to end
# through Postfix (the milter; the socket map tables), and toggle
# propagation through a Redis replica.

# full_memory - warm RSS after warm-up and after MEM_MSGS more messages
full_memory() {
    local before after
    lg warm -c 8 -r 1 -d 10 -n 100000
    before=$(rss "$PID_warm")
    lg warm -c 8 -r 1 -d 10 -n "$MEM_MSGS"
    after=$(rss "$PID_warm")
    echo "# warm RSS after warm-up: $before MB; after $MEM_MSGS more" \
        "messages: $after MB ($(field "$LINE" msg_s) msg/s)" |
        tee -a "$OUT/table.txt"
    printf 'rss_warmup=%s\nrss_after_%s_msgs=%s\n' "$before" "$MEM_MSGS" \
        "$after" >>"$OUT/memory.txt"
}

# full_logging - what the info line per recipient costs: warm against the
# same daemon with its log lines going to /dev/null, in throughput and in
# the p99 RCPT each adds over the no-op milter (another session's end of
# message, lines and all, is what a RCPT waits behind: README item 19)
full_logging() {
    local r i s w n np wp lp
    free_port LPORT
    mx_start nolog "$LPORT" "$RPORT" 3600 /dev/null
    lg nolog -c 8 -r 10 -d 10 -n 200
    for r in 1 50; do
        : >"$WORK/log.runs"
        for ((i = 0; i < REPS; i++)); do
            for s in $(in_order "$i" noop warm nolog); do
                lg $s -c 8 -r "$r" -d 10 -t "$SECS"
                echo "$s $LINE" >>"$WORK/log.runs"
            done
        done
        cat "$WORK/log.runs" >>"$OUT/runs.log"
        w=$(med warm msg_s "$WORK/log.runs")
        n=$(med nolog msg_s "$WORK/log.runs")
        np=$(med noop rcpt_p99_us "$WORK/log.runs")
        wp=$(med warm rcpt_p99_us "$WORK/log.runs")
        lp=$(med nolog rcpt_p99_us "$WORK/log.runs")
        echo "# logging, 8 x $r: warm $w msg/s, warm with its log to" \
            "/dev/null $n msg/s (log/nolog $(ratio "$w" "$n")); p99 RCPT" \
            "no-op $np us, warm $wp, to /dev/null $lp (added" \
            "$(added "$wp" "$np") and $(added "$lp" "$np"))" |
            tee -a "$OUT/table.txt"
    done
}

# full_noise - the resolution of a ratio: two copies of the no-op milter
# (the same binary, both started here), interleaved as the scale points
# are.  Two identical milters should come out 1.000; how far they do not,
# in the median and round by round, is how far a ratio in the table can
# move with nothing changed.  (Fresh copies: a milter that has just
# served 512 connections often runs its next 8 x 50 rounds up to a fifth
# slower, so a long-lived milter against a new one would measure that as
# well.)
full_noise() {
    local point i s a b
    free_port APORT
    free_port BPORT
    for s in "$APORT" "$BPORT"; do
        "$NOOP" "inet:$s@127.0.0.1" >>"$WORK/noop.log" 2>&1 &
        track $!
        wait_port "$s" 5 || die "a no-op milter on port $s did not start"
    done
    for point in "8 1" "8 50" "512 50"; do
        set -- $point
        : >"$WORK/noise.runs"
        for ((i = 0; i < REPS; i++)); do
            for s in $(in_order "$i" noopa noopb); do
                lg $s -c "$1" -r "$2" -d 10 -t "$SECS"
                echo "$s $LINE" >>"$WORK/noise.runs"
            done
        done
        cat "$WORK/noise.runs" >>"$OUT/runs.log"
        a=$(med noopa msg_s "$WORK/noise.runs")
        b=$(med noopb msg_s "$WORK/noise.runs")
        echo "# noise, two copies of the no-op milter, $1 x $2: $a and $b" \
            "msg/s (b/a $(ratio "$b" "$a"); round by round" \
            "$(paired noopb noopa "$WORK/noise.runs"))" |
            tee -a "$OUT/table.txt"
    done
}

# paired A B RUNS - the lowest and highest A/B msg_s ratio of one round
# (the Nth run of A against the Nth of B), as "LOW-HIGH"
paired() {
    paste <(vals "$1" msg_s "$3") <(vals "$2" msg_s "$3") | ratio_range
}

# ratio_range - "LOW-HIGH" of column 1 over column 2, over the lines read
ratio_range() {
    awk '{ r = $1 / $2; if (NR == 1 || r < lo) lo = r
           if (NR == 1 || r > hi) hi = r }
         END { printf "%.3f-%.3f", lo, hi }'
}

# ticks PID - user and system clock ticks a process has used
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

# full_budget - CPU per message (user + system, us) of the milter, Redis
# and loadgen, 8 x 50: where each subject's time goes on the two cores.
# REPS interleaved rounds; for each subject, the round with the median
# total (one run alone swung by a third on a noisy day).
full_budget() {
    local s n i pid mu ms ru rs mu2 ms2 ru2 rs2 lt hz
    hz=$(getconf CLK_TCK)
    : >"$WORK/budget.runs"
    for ((i = 0; i < REPS; i++)); do
        for s in $(in_order "$i" noop warm nocache); do
            n=4000
            [ "$s" = nocache ] && n=2000
            eval "pid=\$PID_$s"
            read -r mu ms < <(ticks "$pid")
            read -r ru rs < <(ticks "$REDIS_PID")
            TIMEFORMAT='%U %S'
            { time lg "$s" -c 8 -r 50 -d 10 -n "$n"; } 2>"$WORK/time.out"
            lt=$(tail -n 1 "$WORK/time.out")
            read -r mu2 ms2 < <(ticks "$pid")
            read -r ru2 rs2 < <(ticks "$REDIS_PID")
            # subject, total, then milter, Redis, loadgen user and system
            awk -v s="$s" -v n="$n" -v hz="$hz" -v mu=$((mu2 - mu)) \
                -v ms=$((ms2 - ms)) -v ru=$((ru2 - ru)) -v rs=$((rs2 - rs)) \
                -v lt="$lt" 'BEGIN { split(lt, l, " "); f = 1e6 / hz / n
                lu = l[1] * 1e6 / n; ls = l[2] * 1e6 / n
                printf "%s %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", s,
                    (mu + ms + ru + rs) * f + lu + ls, mu * f, ms * f,
                    ru * f, rs * f, lu, ls }' >>"$WORK/budget.runs"
        done
    done
    cat "$WORK/budget.runs" >>"$OUT/runs.log"
    for s in noop warm nocache; do
        grep "^$s " "$WORK/budget.runs" | sort -k2,2n |
            awk -v reps="$REPS" 'NR == int((reps + 1) / 2) {
                printf "# CPU per message, 8 x 50, %s: milter %s+%s us," \
                    " Redis %s+%s, loadgen %s+%s (user+system); total" \
                    " %s us (median of %d rounds)\n",
                    $1, $3, $4, $5, $6, $7, $8, $2, reps }' |
            tee -a "$OUT/table.txt"
    done
}

# cg_count SUBJECT PID PORT R - instructions per message callgrind counts
# in PID over CG_MSGS messages of R recipients, after a warm-up
cg_count() {
    local n=${CG_MSGS:-300} f i
    "$LG" -c 1 -r "$4" -d 10 -n 50 "inet:$3@127.0.0.1" \
        >/dev/null 2>>"$WORK/cg.err" || die "callgrind $1: warm-up failed"
    callgrind_control -z "$2" >/dev/null 2>&1
    "$LG" -c 1 -r "$4" -d 10 -n "$n" "inet:$3@127.0.0.1" \
        >/dev/null 2>>"$WORK/cg.err" || die "callgrind $1: run failed"
    rm -f "$WORK/cg.$1".*
    callgrind_control -d "$2" >/dev/null 2>&1
    for ((i = 0; i < 100; i++)); do # the dump is written asynchronously
        f=$(ls "$WORK/cg.$1".* 2>/dev/null | head -n 1)
        [ -n "$f" ] && grep -q '^totals:' "$f" && break
        sleep 0.1
    done
    awk -v n="$n" '/^totals:/ { printf "%.0f", $2 / n }' "$f"
}

# full_instructions - what each subject executes per message, counted by
# callgrind (1 connection, 1 and 50 recipients, warm cache): unlike
# throughput on two shared cores, the same build gives the same count on
# any day, so this is the figure to compare work on the hot path by
full_instructions() {
    command -v valgrind >/dev/null || {
        echo "# no valgrind: instruction counts skipped" |
            tee -a "$OUT/table.txt"
        return
    }
    local s port pid r line=""
    declare -A ir
    for s in noop warm; do
        free_port port
        if [ "$s" = noop ]; then
            valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$s.%p" \
                "$NOOP" "inet:$port@127.0.0.1" >"$WORK/cglog.$s" 2>&1 &
        else
            mx_conf "$WORK/cg.conf" "inet:$port@127.0.0.1" "$RPORT" 3600
            valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$s.%p" \
                "$MXSWITCH" -f -c "$WORK/cg.conf" >"$WORK/cglog.$s" 2>&1 &
        fi
        pid=$!
        track "$pid"
        wait_port "$port" 60 || die "callgrind $s did not start"
        for r in 1 50; do
            ir[$s.$r]=$(cg_count "$s" "$pid" "$port" "$r")
            [ -n "${ir[$s.$r]}" ] || die "callgrind $s: no count"
        done
        kill "$pid"
        wait "$pid" 2>/dev/null
        untrack "$pid"
    done
    for r in 1 50; do
        line="$line, 1 x $r: noop ${ir[noop.$r]}, warm ${ir[warm.$r]}"
        line="$line ($(awk -v a="${ir[warm.$r]}" -v b="${ir[noop.$r]}" \
            'BEGIN { printf "%.2f", a / b }')x; $(awk -v a="${ir[warm.$r]}" \
            -v b="${ir[noop.$r]}" -v r="$r" \
            'BEGIN { printf "%.0f", (a - b) / r }') more per recipient)"
    done
    echo "# instructions per message (callgrind, warm cache)${line#,}" |
        tee -a "$OUT/table.txt"
}

# full_profile - perf record -g on the warm milter during an 8 x 50 run;
# once more if perf wrote nothing it can read (seen once: a data file whose
# size field was 0)
full_profile() {
    command -v perf >/dev/null || {
        echo "# no perf: profile skipped" | tee -a "$OUT/table.txt"
        return
    }
    local try i pp
    for try in 1 2; do
        rm -f "$WORK/perf.data"
        perf record -g -o "$WORK/perf.data" -p "$PID_warm" -- sleep 4 \
            >"$WORK/perf.log" 2>&1 &
        pp=$!
        track "$pp"
        lg warm -c 8 -r 50 -d 10 -t 4
        wait "$pp"
        untrack "$pp"
        for ((i = 0; i < 300; i++)); do # wait can return before perf is done
            grep -q 'Captured and wrote' "$WORK/perf.log" && break
            sleep 0.1
        done
        {
            echo "# perf record -g -p <warm mxswitch>, loadgen -c 8 -r 50 -d 10"
            echo "# $LINE"
            echo "## time by object"
            perf report -i "$WORK/perf.data" --no-children --sort dso --stdio \
                -g none 2>>"$WORK/perf.log" </dev/null | grep -v '^#' |
                grep -v '^$' | head -8
            echo "## user-space symbols (with callees)"
            perf report -i "$WORK/perf.data" --children --sort dso,sym --stdio \
                -g none 2>>"$WORK/perf.log" </dev/null | grep -v '^#' |
                grep -v '^$' | grep -v '\[k\]' | grep -v '\[unknown\]' | head -30
        } >"$OUT/profile.txt"
        [ "$(grep -c '%' "$OUT/profile.txt")" -ge 3 ] && break
    done
    if [ "$(grep -c '%' "$OUT/profile.txt")" -lt 3 ]; then
        echo "# perf report gave nothing; perf's own words:" >>"$OUT/profile.txt"
        tail -n 5 "$WORK/perf.log" | sed 's/^/#   /' >>"$OUT/profile.txt"
    fi
    echo "# profile of the warm milter in $OUT/profile.txt" |
        tee -a "$OUT/table.txt"
}

# busy - the machine's busy clock ticks so far, all CPUs (/proc/stat:
# user, nice, system, irq, softirq; not steal, the hypervisor's)
busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# e2e_run MILTER - smtp-source through Postfix into smtp-sink; msg/s
# until the queue is empty, and the machine's CPU time per message (us)
e2e_run() {
    local rcpt=u@d0.test
    postconf -c "$PF_ETC" -e "smtpd_milters = $1"
    postfix -c "$PF_ETC" reload >>"$WORK/pf/start.log" 2>&1
    sleep 1.5
    local t0 t1 b0 b1
    b0=$(busy)
    t0=$(date +%s.%N)
    smtp-source -s 8 -m "$E2E_MSGS" -f sender@client.test \
        -t "$rcpt" "$PF_SMTP" >>"$WORK/smtp-source.log" 2>&1 ||
        die "smtp-source failed: $(tail -n 2 "$WORK/smtp-source.log")"
    pf_wait_queue 120 || die "Postfix queue did not drain"
    t1=$(date +%s.%N)
    b1=$(busy)
    awk -v a="$t0" -v b="$t1" -v n="$E2E_MSGS" -v c=$((b1 - b0)) \
        -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f %.0f", n / (b - a), c * 1e6 / hz / n }'
}

# pf_bench_up - the private Postfix of full_e2e and full_tables, started
# (made the first time: its queue on a tmpfs of this mount namespace,
# everything relayed to an smtp-sink on 127.0.0.1:2526)
pf_bench_up() {
    if [ -z "$PF_ETC" ]; then
        # The queue in memory: the disk's latency on this machine moved
        # a Postfix run by a tenth, whatever the milter.
        mkdir -p "$WORK/pf"
        mount -t tmpfs -o size=1g,mode=755 mxs-bench "$WORK/pf" ||
            die "tmpfs for the Postfix queue"
        T_MOUNTS+=("$WORK/pf")
        pf_make <<CF || die "postfix config"
relayhost = [127.0.0.1]:2526
smtpd_peername_lookup = no
in_flow_delay = 0s
milter_protocol = 6
milter_default_action = tempfail
smtp_destination_concurrency_limit = 20
CF
        smtp-sink -u root 127.0.0.1:2526 256 2>>"$WORK/sink.log" &
        track $!
        wait_port_ip 127.0.0.1 2526 5 || die "smtp-sink"
    fi
    pf_start || die "postfix starts"
}

# full_e2e - Postfix with no milter, the no-op milter and mxswitch; with
# E2E_OLD=BIN also that build of mxswitch, in the same interleaved rounds
# (an A/B of two builds where a Postfix run is too noisy to compare runs)
full_e2e() {
    E2E_MSGS=${E2E_MSGS:-2000}
    pf_bench_up
    # Over TCP, Postfix's macro and command packets meet Nagle's algorithm
    # and the milter's delayed ACK (40 ms per step, whatever the milter),
    # so the comparison runs over unix sockets, as most sites run milters;
    # the TCP figures are printed too.
    local noop_tcp=$PID_noop
    noop_start "unix:$WORK/noop.sock"
    noop_start "unix:$WORK/noop2.sock"
    mx_start e2e "unix:$WORK/mx.sock" "$RPORT" 3600
    # noop2, a second copy of the no-op milter: the noise of a ratio here
    local i s m subjects="none noop warm noop_tcp warm_tcp noop2"
    if [ -n "${E2E_OLD:-}" ]; then
        MXSWITCH=$E2E_OLD mx_start e2e_old "unix:$WORK/mxold.sock" "$RPORT" 3600
        subjects="$subjects old"
    fi
    : >"$WORK/e2e.runs"
    # Interleaved rounds (a Postfix run is noisier than a loadgen one),
    # the order turning round by round (in_order): in one fixed order, the
    # same build in the last place came out 1.056 of no-op and in the
    # third 0.927.  Six rounds put each of the six subjects once in every
    # place.  Every message goes to u@d0.test, a remote-mode domain (the
    # milter answers continue and changes nothing).
    for ((i = 0; i < ${E2E_REPS:-6}; i++)); do
        for s in $(in_order "$i" $subjects); do
            case $s in
            none) m="" ;;
            noop) m="unix:$WORK/noop.sock" ;;
            warm) m="unix:$WORK/mx.sock" ;;
            noop2) m="unix:$WORK/noop2.sock" ;;
            noop_tcp) m="inet:127.0.0.1:$NPORT" ;;
            warm_tcp) m="inet:127.0.0.1:$WPORT" ;;
            old) m="unix:$WORK/mxold.sock" ;;
            esac
            echo "$s $(e2e_run "$m")" >>"$WORK/e2e.runs"
        done
    done
    pf_stop
    grep -q 'milter.*\(reject\|tempfail\)\|status=\(deferred\|bounced\)' \
        "$WORK/pf/maillog" &&
        die "Postfix deferred or refused mail: $(grep -m 2 \
            'status=\(deferred\|bounced\)\|milter' "$WORK/pf/maillog")"
    cat "$WORK/e2e.runs" >>"$OUT/runs.log"
    PID_noop=$noop_tcp
    local nn np nw npt nwt
    # e2e_vals SUBJECT [FIELD] - msg/s (2) or CPU us per message (3) of each
    # of its runs, one a line; e2e_med the median of them
    e2e_vals() { grep "^$1 " "$WORK/e2e.runs" | cut -d' ' -f"${2:-2}"; }
    e2e_med() { e2e_vals "$@" | median; }
    # e2e_paired A B - lowest and highest A/B rate of one round, "LOW-HIGH"
    e2e_paired() { paste <(e2e_vals "$1") <(e2e_vals "$2") | ratio_range; }
    nn=$(e2e_med none) np=$(e2e_med noop) nw=$(e2e_med warm)
    npt=$(e2e_med noop_tcp) nwt=$(e2e_med warm_tcp)
    E2E=$(ratio "$nw" "$np")
    echo "# end to end, smtp-source -s 8 -m $E2E_MSGS -> Postfix -> smtp-sink" \
        "(msg/s until the queue is empty): no milter $nn; unix socket:" \
        "no-op $np, mxswitch $nw (mxswitch/noop $E2E); TCP: no-op $npt," \
        "mxswitch $nwt" | tee -a "$OUT/table.txt"
    local n2
    n2=$(e2e_med noop2)
    echo "# end to end, noise: a second copy of the no-op milter $n2" \
        "(noop2/noop $(ratio "$n2" "$np"), by CPU" \
        "$(ratio "$(e2e_med noop 3)" "$(e2e_med noop2 3)"); round by round" \
        "$(e2e_paired noop2 noop))" | tee -a "$OUT/table.txt"
    # The machine's CPU per message does not depend on how busy the two
    # cores were kept, as a run's rate does; no-op's over a subject's is
    # the rate ratio the CPU alone would give.
    local cn cp cw
    cn=$(e2e_med none 3) cp=$(e2e_med noop 3) cw=$(e2e_med warm 3)
    echo "# end to end, the machine's CPU per message (us, all processes," \
        "from /proc/stat): no milter $cn, no-op $cp, mxswitch $cw (noop/mxswitch" \
        "$(ratio "$cp" "$cw"))" | tee -a "$OUT/table.txt"
    if [ -n "${E2E_OLD:-}" ]; then
        local no
        no=$(e2e_med old)
        echo "# end to end, the build E2E_OLD=$E2E_OLD in the same rounds:" \
            "$no (old/noop $(ratio "$no" "$np"); this build against it" \
            "$(ratio "$nw" "$no"))" | tee -a "$OUT/table.txt"
    fi
}

# full_toggle - SET on a master, decision by an mxswitch reading its
# replica, asked as the MTA asks at delivery (its milter no longer shows a
# mode: it answers continue either way)
full_toggle() {
    free_port R2PORT
    free_port TPORT
    start_redis "$R2PORT" --replicaof 127.0.0.1 "$RPORT" ||
        die "replica redis"
    local i
    for ((i = 0; i < 600; i++)); do
        redis-cli -p "$R2PORT" INFO replication | tr -d '\r' |
            grep -q '^master_link_status:up' && break
        sleep 0.1
    done
    free_port TSPORT
    SMAP_PORT=$TSPORT mx_start toggle "$TPORT" "$R2PORT" 3600
    wait_port "$TSPORT" 5 || die "toggle: no socket map server"
    local line
    line=$("$LG" -T "$TOGGLES" -R "$RPORT" "inet:$TSPORT@127.0.0.1" \
        2>"$WORK/toggle.err") || die "toggles: $(cat "$WORK/toggle.err")"
    echo "# toggle propagation, SET on the master -> first answer of the" \
        "socket map server (map mode) on the replica following it: $line" |
        tee -a "$OUT/table.txt"
}

# full_limits - the most threads, descriptors, Redis connections and RSS
# seen half way through the 512-connection runs
full_limits() {
    awk '{ if ($2 > t[$1]) t[$1] = $2; if ($3 > f[$1]) f[$1] = $3
           if ($4 > c[$1]) c[$1] = $4; if ($5 > m[$1]) m[$1] = $5 }
         END { for (s in t) printf "# %s at 512 connections, most seen: " \
             "%d threads, %d fds, %d connections to Redis, RSS %.1f MB\n",
             s, t[s], f[s], c[s], m[s] }' "$OUT/limits.txt" |
        sort | tee -a "$OUT/table.txt"
}

# tables_send - the load of one full_tables run: TABLES_DOMAINS
# smtp-source processes, 8 at a time, each one session of TABLES_PER
# messages to u@dK.test with -N (1u@dK.test, 2u@..., a recipient of its
# own per message: Postfix's resolver client keeps the last sender and
# recipient for 30 s, and one recipient would be answered from there,
# never from the tables)
tables_send() {
    seq 0 $((TABLES_DOMAINS - 1)) |
        xargs -P 8 -I{} smtp-source -N -s 1 -m "$TABLES_PER" \
            -f sender@client.test -t "u@d{}.test" "$PF_SMTP" \
            >>"$WORK/smtp-source.log" 2>&1
}

# sent_count - deliveries the sink accepted so far, by Postfix's log
sent_count() {
    grep -c 'relay=127\.0\.0\.1\[127\.0\.0\.1\]:2526,.* status=sent' \
        "$WORK/pf/maillog" 2>/dev/null
}

# tables_subject S - main.cf for subject S, and reload
tables_subject() {
    local mx=inet:127.0.0.1:$SPORT nm=inet:127.0.0.1:$NMPORT t="" m=""
    local v="texthash:$PF_ETC/valias"
    # as mxswitch-postfix-setup wires them (pf_valias)
    case $1 in
    plain | plain2) ;;
    tables) t=socketmap:$mx:transport v="$(pf_valias "$mx"), $v" ;;
    tables1) t=socketmap:$mx:transport ;;
    nullmap) t=socketmap:$nm:transport v="$(pf_valias "$nm"), $v" ;;
    nullmap1) t=socketmap:$nm:transport ;;
    milter) m="unix:$WORK/mxt.sock" ;;
    noop) m="unix:$WORK/noopt.sock" ;;
    noop2) m="unix:$WORK/noopt2.sock" ;;
    esac
    postconf -c "$PF_ETC" -e "smtpd_milters = $m" "transport_maps = $t" \
        "virtual_alias_maps = $v"
    postfix -c "$PF_ETC" reload >>"$WORK/pf/start.log" 2>&1
    sleep 1.5
}

# pf_ticks - clock ticks Postfix's master has used and reaped: its own and
# those of its processes that exited
pf_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$PF_PID/stat"; }

# tables_pf_mark S - after the reload for subject S: the processes of the
# run before exited on the reload, so what the master reaped since the
# last mark was that run's Postfix CPU; into tables.pfcpu as "SUBJECT
# ticks"
tables_pf_mark() {
    local now prev mark
    now=$(pf_ticks)
    if [ -f "$WORK/tables.mark" ] && read -r prev mark <"$WORK/tables.mark"; then
        echo "$prev $((now - mark))" >>"$WORK/tables.pfcpu"
    fi
    echo "${1:-} $now" >"$WORK/tables.mark"
}

# tables_run S - one run of subject S: msg/s from the first connection to
# the empty queue, the machine's CPU per message (us: all processes, so
# other work on the machine counts too) and the CPU per message of the
# daemon or milter S asks (us, user + system; 0 for plain); fails the run
# unless the sink accepted every message and Postfix deferred or bounced
# none
tables_run() {
    local n=$((TABLES_DOMAINS * TABLES_PER)) before t0 t1 b0 b1 i got
    local pid="" u0=0 s0=0 u1=0 s1=0
    tables_subject "$1"
    tables_pf_mark "$1"
    case $1 in
    tables | tables1 | milter) pid=$PID_tables ;;
    nullmap | nullmap1) pid=$PID_nullmap ;;
    noop) pid=$PID_noopt ;;
    noop2) pid=$PID_noopt2 ;;
    esac
    before=$(sent_count)
    [ -n "$pid" ] && read -r u0 s0 < <(ticks "$pid")
    b0=$(busy)
    t0=$(date +%s.%N)
    tables_send || die "$1: smtp-source failed: $(tail -n 2 "$WORK/smtp-source.log")"
    pf_wait_queue 300 || die "$1: Postfix queue did not drain"
    t1=$(date +%s.%N)
    b1=$(busy)
    [ -n "$pid" ] && read -r u1 s1 < <(ticks "$pid")
    for ((i = 0; i < 100; i++)); do # postlogd writes a little after
        got=$(($(sent_count) - before))
        [ "$got" -ge "$n" ] && break
        sleep 0.1
    done
    [ "$got" = "$n" ] || die "$1: the sink accepted $got of $n messages"
    ! grep -q 'status=\(deferred\|bounced\)\|milter-reject\|reject:' \
        "$WORK/pf/maillog" ||
        die "$1: Postfix deferred, bounced or refused mail: $(grep -m 2 \
            'status=\(deferred\|bounced\)\|milter-reject\|reject:' \
            "$WORK/pf/maillog")"
    awk -v a="$t0" -v b="$t1" -v n="$n" -v c=$((b1 - b0)) \
        -v d=$((u1 + s1 - u0 - s0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f %.0f %.0f", n / (b - a), c * 1e6 / hz / n,
                 d * 1e6 / hz / n }'
}

# full_tables - what mxswitch's socket map tables cost Postfix, and its
# milter against the no-op milter, under the same load.  Subjects, in
# interleaved rounds (in_order): plain (neither tables nor milter), plain2
# (the same again: the noise line), tables (transport_maps and
# virtual_alias_maps asking mxswitch's socket map server, no milter),
# nullmap (the same tables asked of tests/bench/nullmap.c, a socket map
# server that answers the same without any work: what asking any table
# server costs Postfix), milter (mxswitch's milter, no tables), noop and
# noop2 (the no-op milter, twice: their noise line); with TABLES_EXTRA
# also tables1 and nullmap1 (transport_maps only: what the valias lookups
# cost).  One Postfix, main.cf switched with
# postconf and postfix reload (every subject gets fresh Postfix processes
# after the reload: the same start for all).  Messages go to TABLES_PER
# (4) recipients of each of TABLES_DOMAINS (1000) domains, all of them
# remote mode in Redis: the daemon answers "OK smtp:[127.0.0.1]:2526"
# (from postfix-transports beside its config) and valias answers the
# address itself, so every message ends at the sink, as with plain's
# relayhost.  (Local mode would answer "OK virtual:", mailboxes on this
# machine: another delivery agent, another cost than plain's.)
full_tables() {
    TABLES_DOMAINS=${TABLES_DOMAINS:-1000} TABLES_PER=${TABLES_PER:-4}
    local reps=${TABLES_REPS:-6} i s dns0 dns1
    local subjects="plain plain2 tables nullmap milter noop noop2 ${TABLES_EXTRA:-}"
    "$LG" -F -d "$TABLES_DOMAINS" -M remote |
        redis-cli -p "$RPORT" --pipe >"$WORK/fill.log" 2>&1 ||
        die "filling Redis: $(tail -n 2 "$WORK/fill.log")"
    printf 'local = "virtual:";\nremote = "smtp:[127.0.0.1]:2526";\n' \
        >"$WORK/postfix-transports"
    free_port SPORT
    SMAP_PORT=$SPORT MX_EXTRA="stats: { prometheus_file = \"$WORK/tables.prom\"; interval = 1; };" \
        mx_start tables "unix:$WORK/mxt.sock" "$RPORT" 3600
    wait_port "$SPORT" 5 || die "mxswitch: no socket map server on $SPORT"
    free_port NMPORT
    "$TESTBIN/nullmap" "$NMPORT" "smtp:[127.0.0.1]:2526" \
        >>"$WORK/nullmap.log" 2>&1 &
    PID_nullmap=$!
    track "$PID_nullmap"
    wait_port "$NMPORT" 5 || die "nullmap: no socket map server on $NMPORT"
    noop_start "unix:$WORK/noopt.sock"
    PID_noopt=$PID_noop
    noop_start "unix:$WORK/noopt2.sock"
    PID_noopt2=$PID_noop
    pf_bench_up
    # Warm mxswitch's caches (Redis and DNS) and Postfix, unmeasured; what
    # Postfix asked the tables in that run, per message (the daemon's
    # metrics file, written every second).
    tables_run tables >/dev/null
    sleep 1.5
    local asked
    asked=$(awk -v n=$((TABLES_DOMAINS * TABLES_PER)) \
        '$1 ~ /^mxswitch_map_answers_total/ {
             split($1, a, "\""); q[a[2]] += $2 }
         END { for (m in q) if (q[m]) printf "%s %.2f, ", m, q[m] / n }' \
        "$WORK/tables.prom" | sed 's/, $//')
    tables_run milter >/dev/null
    dns0=$(grep -c 'query\[' "$WORK/dnsmasq.log" 2>/dev/null)
    : >"$WORK/tables.runs"
    rm -f "$WORK/tables.mark"
    : >"$WORK/tables.pfcpu"
    for ((i = 0; i < reps; i++)); do
        for s in $(in_order "$i" $subjects); do
            echo "$s $(tables_run "$s")" | tee -a "$WORK/tables.runs" |
                sed 's/^/# tables run: /' >&2
        done
    done
    dns1=$(grep -c 'query\[' "$WORK/dnsmasq.log" 2>/dev/null)
    tables_subject plain # the last run's processes exit: its mark
    sleep 1
    tables_pf_mark
    pf_stop
    cat "$WORK/tables.runs" >>"$OUT/runs.log"
    # The routes Postfix was given: every answer of the transport map, by
    # kind, and the daemon's warnings.
    grep -o 'socketmap: transport [^ ]* -> [A-Z]* [^ ]*' "$WORK/tables.log" |
        awk '{ print $5, $6 }' | sort | uniq -c >"$WORK/tables.answers"
    # t_vals SUBJECT [FIELD] - msg/s (2), CPU us per message (3: the
    # machine's, 4: the daemon's or milter's) of each
    # run; t_med their median; t_paired A B the lowest and highest A/B of
    # one round
    t_vals() { grep "^$1 " "$WORK/tables.runs" | cut -d' ' -f"${2:-2}"; }
    t_med() { t_vals "$@" | median; }
    t_paired() { paste <(t_vals "$1") <(t_vals "$2") | ratio_range; }
    # pf_med SUBJECT - median of Postfix's CPU per message (us) of its runs
    pf_med() {
        awk -v s="$1" -v f="$((1000000 / $(getconf CLK_TCK)))" \
            -v n="$((TABLES_DOMAINS * TABLES_PER))" \
            '$1 == s { printf "%.0f\n", $2 * f / n }' "$WORK/tables.pfcpu" |
            median
    }
    local p p2 t m n n2 rt rn rm rn2 z rz rtz
    p=$(t_med plain) p2=$(t_med plain2) t=$(t_med tables) z=$(t_med nullmap)
    rz=$(ratio "$z" "$p") rtz=$(ratio "$t" "$z")
    m=$(t_med milter) n=$(t_med noop) n2=$(t_med noop2)
    rt=$(ratio "$t" "$p") rn=$(ratio "$p2" "$p")
    rm=$(ratio "$m" "$n") rn2=$(ratio "$n2" "$n")
    {
        echo "# tables, smtp-source -N, $TABLES_PER messages to each of" \
            "$TABLES_DOMAINS domains ($((TABLES_DOMAINS * TABLES_PER)) per" \
            "run, 8 sessions at a time) -> Postfix -> smtp-sink, msg/s until" \
            "the queue is empty, medians of $reps interleaved rounds:"
        echo "#   plain $p, plain2 $p2 (plain2/plain $rn, round by round" \
            "$(t_paired plain2 plain)); tables $t (tables/plain $rt, round" \
            "by round $(t_paired tables plain)); nullmap $z (nullmap/plain" \
            "$rz, round by round $(t_paired nullmap plain); tables/nullmap" \
            "$rtz, round by round $(t_paired tables nullmap))"
        echo "#   noop $n, noop2 $n2 (noop2/noop $rn2, round by round" \
            "$(t_paired noop2 noop)); milter $m (milter/noop $rm, round by" \
            "round $(t_paired milter noop))"
        echo "#   the machine's CPU per message (us; other work on the machine" \
            "counts too): plain $(t_med plain 3), plain2 $(t_med plain2 3)," \
            "tables $(t_med tables 3), nullmap $(t_med nullmap 3), noop $(t_med noop 3), noop2" \
            "$(t_med noop2 3), milter $(t_med milter 3); of the process" \
            "asked alone (user+system): mxswitch for the tables" \
            "$(t_med tables 4), nullmap $(t_med nullmap 4), mxswitch's milter $(t_med milter 4), no-op" \
            "milter $(t_med noop 4); of Postfix (its processes, reaped" \
            "by the master after each run's reload: not counting other" \
            "work on the machine): $(for s in $subjects; do printf '%s %s, ' \
                "$s" "$(pf_med "$s")"; done | sed 's/, $//')"
        for s in ${TABLES_EXTRA:-}; do
            echo "#   $s $(t_med "$s") ($s/plain $(ratio "$(t_med "$s")" "$p")," \
                "round by round $(t_paired "$s" plain)), CPU per message" \
                "(us): the machine $(t_med "$s" 3), the table server" \
                "$(t_med "$s" 4), Postfix $(pf_med "$s")"
        done
        echo "#   socket map requests per message (tables, the warm-up run): $asked"
        echo "#   transport map answers: $(awk '{ if (NR > 1) printf ", "
            printf "%s %s x%d", $2, $3, $1 }' "$WORK/tables.answers");" \
            "daemon warnings: $(grep -c ': warning: ' "$WORK/tables.log")" \
            "(running as root is one); DNS queries during the rounds:" \
            "$((dns1 - dns0))"
    } | tee -a "$OUT/table.txt"
    TABLES_LINE="bench: tables/plain=$rt noise=$rn milter/noop=$rm noise=$rn2 nullmap/plain=$rz tables/nullmap=$rtz"
    # Back to the even/odd modes the scale points use.
    fill "$TABLES_DOMAINS"
}
