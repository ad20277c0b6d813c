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
dnl # The same server's map "verify": what a client the MTA does not
dnl # trust gets at RCPT ("550 5.7.1 ..." for a remote-mode domain,
dnl # NOTFOUND for no objection; for a backup-mode domain the better MX's
dnl # word, which mxswitch asks it: "550 5.1.1 ..." when it refuses the
dnl # address, "450 4.1.1 ..." until it answers).  Asked by
dnl # Local_check_rcpt below, only for clients Sendmail itself would not
dnl # let relay.
Kverify socket -T<TMPF> inet:8893@127.0.0.1
dnl # Ruleset 0 (ParseLocal, before class w, aliases, virtusertable and
dnl # mailertable are looked at) asks mxswitch for every recipient of a
dnl # domain Sendmail canonified (class w, virtusertable and masquerade
dnl # domains, any name its host map finds in DNS or /etc/hosts: those come
dnl # with a trailing dot; a relay domain in no DNS does not, and is routed
dnl # by Sendmail alone), at every delivery attempt:
dnl # queued mail, aliases and bounces follow a flip at the next queue
dnl # run.  No address is rewritten.  Left and right hand side of a rule
dnl # are separated by TABs.
LOCAL_RULE_0
dnl # Mail queued by the earlier design still carries its tag
dnl # (bob+mx-remote@d, bob+mx-local@d): take the tag off and decide as for
dnl # the plain address, so it is delivered right after the upgrade.  The
dnl # tags are quoted: one that is an m4 word (dnl, divert) stays a word.
R$+ + `mx-remote' < @ $+ >	$: $1 < @ $2 >
R$+ + `mx-local' < @ $+ >	$: $1 < @ $2 >
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
dnl #
dnl # RCPT from a client Sendmail does not trust, for a remote-mode domain:
dnl # 550 5.7.1, as a server that is not the domain's mail exchanger says,
dnl # so nobody can have this server accept mail for made-up addresses and
dnl # bounce it to forged senders.  Whom Sendmail trusts is its own relay
dnl # decision, asked, never copied: Basic_check_rcpt (the ruleset
dnl # check_rcpt runs after Local_check_rcpt) for a recipient no
dnl # configuration names, mxswitch-relay-probe@[192.0.2.0] (TEST-NET-1;
dnl # an address literal, so no DNS lookup).  It answers RELAY only for a
dnl # client allowed to relay: SMTP AUTH with a TrustAuthMech mechanism or
dnl # Local_Relay_Auth, a TLS client certificate the access map trusts,
dnl # and Relay_ok: the client's address or name in class R or w, access
dnl # map Connect: RELAY, local submission.  Anything but an error (RELAY,
dnl # or no relay check at all, as in DeliveryMode=defer) is trust.
dnl # Held domains and failed lookups got their 4xx in ruleset 0 already.
dnl # These rules must come before any Local_check_rcpt rule of your own
dnl # that returns ($@), or they are never reached.
LOCAL_RULESETS
SLocal_check_rcpt
R$*	$: $1 $| $>mxswitch_check_rcpt $1
R$* $| $#$*	$#$2
R$* $| $*	$: $1
Smxswitch_check_rcpt
dnl # As ruleset 0 sees the recipient; only canonified domains, like there.
R$*	$: $>CanonAddr $1
R$+ < @ $+ . >	$: $1 < @ $2 . > $| $>Basic_check_rcpt <mxswitch-relay-probe@[192.0.2.0]>
dnl # Not trusted for now (a 4xx from Sendmail's check, e.g. the client's
dnl # name did not resolve): <T>.  Not trusted: <U>.  Else trusted: done.
R$+ < @ $+ . > $| $#error $- 4 . $- . $- $*	$: <T> $1 < @ $2 . >
R$+ < @ $+ . > $| $#error $*	$: <U> $1 < @ $2 . >
R$+ < @ $+ . > $| $*	$@ OK
R<$-> $+ < @ $+ . >	$: <$1> <MXR> $(verify $2@$3 $: NOTFOUND $)
dnl # TEMP, or mxswitch unreachable: never refuse for good on a guess.
R<$-> <MXR> $* <TMPF>	$#error $@ 4.3.0 $: "451 4.3.0 Mail routing temporarily unavailable"
dnl # Backup mode, the better MX refuses the address: 550 5.1.1, so that
dnl # nothing is accepted here that it would bounce.
R<U> <MXR> 550 5 . 1 . 1 $*	$#error $@ 5.1.1 $: "550 5.1.1 Recipient address rejected: refused by the better MX of the domain"
dnl # Remote mode and the client may not relay: 550 5.7.1, in the words
dnl # of the map (the same as Postfix's); the text is quoted here because
dnl # Sendmail joins the map's tokens without the blank after ":".
dnl # Not sure whether it may: Sendmail's own 4xx, asked again.
R<U> <MXR> 550 $* mail for $+ is not accepted $*	$#error $@ 5.7.1 $: "550 5.7.1 mail for " $2 " is not accepted here: its mail exchanger is elsewhere"
R<U> <MXR> 550 $+	$#error $@ 5.7.1 $: 550 $1
R<T> <MXR> 550 $+	$@ $>Basic_check_rcpt <mxswitch-relay-probe@[192.0.2.0]>
dnl # 4xx for a client that may not relay: a default standing in for a
dnl # failed lookup (routing.on_error "default") refuses no one for good.
R<$-> <MXR> 451 $*	$#error $@ 4.3.0 $: "451 4.3.0 Mail routing temporarily unavailable"
dnl # Backup mode, the better MX has not answered (yet): try again later.
R<$-> <MXR> 450 4 . 1 . 1 $*	$#error $@ 4.1.1 $: "450 4.1.1 Recipient address not verified yet: try again later"
R<$-> <MXR> 450 $*	$#error $@ 4.4.6 $: "450 4.4.6 Mail for this domain is held: its best MX is this server"
dnl # Anything else (NOTFOUND: no key, local mode, or the better MX takes
dnl # the address): no objection from mxswitch.
R$*	$@ OK
dnl # Back to the normal output stream for the rest of the .mc.
divert(0)dnl
dnl # END mxswitch
