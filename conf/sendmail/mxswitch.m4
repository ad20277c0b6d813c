dnl # BEGIN mxswitch (written by mxswitch-sendmail-setup from /etc/mxswitch/mxswitch.conf)
dnl # Do not edit: run the script again after changing milter.socket or
dnl # socketmap.socket there.  --undo takes the block out.
dnl #
dnl # The milter.  It changes no recipient: at RCPT it logs the decision and
dnl # answers 4xx while a remote-mode domain's best MX is still this server
dnl # (450 4.4.6) or when the lookup failed (451 4.3.0).  F=T: when mxswitch
dnl # cannot be reached, or does not answer in time, Sendmail answers 4xx
dnl # (temporary failure), so nothing is misrouted or lost while it is down;
dnl # the client retries.  Timeouts (Sendmail's defaults are
dnl # C:5m;S:10s;R:10s;E:5m): C:10s - mxswitch is on this host and accepts at
dnl # once; a dead one should not hold each SMTP session for 5 minutes.
dnl # S:10s - sending to it.  R:20s - its answer to RCPT waits at most for
dnl # one Redis lookup (redis.timeout_ms, 500 ms by default, plus a
dnl # reconnect) and a free pool connection; 20s leaves room under load
dnl # while still tempfailing a hung milter.  E:10s - end of message:
dnl # mxswitch changes nothing then and answers at once.
INPUT_MAIL_FILTER(`mxswitch', `S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:20s;E:10s')dnl
dnl # Macros sent with each RCPT: Sendmail's default list for this option
dnl # plus the queue id (i) for mxswitch's log.  The client's
dnl # authentication ({auth_authen}, {auth_type}) comes with MAIL, in
dnl # Sendmail's default list for that stage.
define(`confMILTER_MACROS_ENVRCPT', ``{rcpt_mailer}, {rcpt_host}, {rcpt_addr}, i'')dnl
dnl # The socket map.  Sendmail sends the map's own name with each key
dnl # ("mode bob@example.com"), and "mode" is the map mxswitch's socket
dnl # map server (socketmap.socket) serves for Sendmail: it answers OK
dnl # local, OK remote, OK hold, NOTFOUND, or TEMP.  On TEMP, or when the
dnl # server cannot be reached, the lookup gives <TMPF> (-T) after the key.
LOCAL_CONFIG
Kmode socket -T<TMPF> inet:8893@127.0.0.1
dnl # Ruleset 0 (ParseLocal, before class w, aliases, virtusertable and
dnl # mailertable are looked at) asks mxswitch for every recipient of a
dnl # domain Sendmail canonified (class w, relay domains, any domain found
dnl # in DNS: those come with a trailing dot), at every delivery attempt:
dnl # queued mail, aliases and bounces follow a flip at the next queue
dnl # run.  No address is rewritten.  Left and right hand side of a rule
dnl # are separated by TABs.
LOCAL_RULE_0
dnl # Mail queued by the earlier design still carries its tag
dnl # (bob+mx-remote@d, bob+mx-local@d): take the tag off and decide as for
dnl # the plain address, so it is delivered right after the upgrade.
R$+ + mx-remote < @ $+ >	$: $1 < @ $2 >
R$+ + mx-local < @ $+ >	$: $1 < @ $2 >
dnl # Ruleset 0 also resolves the envelope sender ({addr_type} "e s": at
dnl # MAIL FROM and when a queue run reads the message).  mxswitch decides
dnl # for recipients only: a sender of a held domain, or a sender while
dnl # mxswitch is away, must not be refused.
R$+ < @ $+ . >	$: $1 < @ $2 . > <MXT> $&{addr_type}
R$+ < @ $+ . > <MXT> e s	$@ $1 < @ $2 . >
dnl # The lookup key is the whole address ($1@$2: Sendmail joins the
dnl # tokens without blanks, bob@example.com), so per-address keys work;
dnl # the daemon answers a domain with no key NOTFOUND at once.
R$+ < @ $+ . > <MXT> $*	$: $1 < @ $2 . > <MXS> $(mode $1@$2 $: NOTFOUND $)
dnl # TEMP, or mxswitch unreachable: defer (4xx at RCPT, queued mail stays).
R$+ < @ $+ . > <MXS> $* <TMPF>	$#error $@ 4.3.0 $: "451 4.3.0 Mail routing temporarily unavailable"
dnl # remote: the esmtp mailer, host = the domain itself (no brackets:
dnl # Sendmail looks up its MX records), the address unchanged.
R$+ < @ $+ . > <MXS> remote	$#esmtp $@ $2 $: $1 < @ $2 . >
dnl # hold: remote mode while the domain's best MX is still this server;
dnl # Sendmail would bounce (MX list points back to me).  Defer instead.
R$+ < @ $+ . > <MXS> hold	$#error $@ 4.4.6 $: "451 4.4.6 Mail for this domain is held: its best MX is this server"
dnl # local for a domain in class w: Sendmail's own local delivery.
R$+ < @ $=w . > <MXS> local	$: $1 < @ $2 . >
dnl # local for any other domain: the local mailer, user $1 (aliases and
dnl # .forward apply as for any local user).
R$+ < @ $+ . > <MXS> local	$#local $: $1
dnl # NOTFOUND (or any other answer): Sendmail's own routing.
R$+ < @ $+ . > <MXS> $*	$: $1 < @ $2 . >
dnl # Back to the normal output stream for the rest of the .mc.
divert(0)dnl
dnl # END mxswitch
