dnl # BEGIN mxswitch (written by mxswitch-sendmail-setup from /etc/mxswitch/mxswitch.conf)
dnl # Do not edit: run the script again after changing the tags, the
dnl # delimiter or milter.socket there.  --undo takes the block out.
dnl #
dnl # The milter.  F=T: when mxswitch cannot be reached, or does not answer
dnl # in time, Sendmail answers 4xx (temporary failure), so nothing is
dnl # misrouted or lost while it is down; the client retries.  Timeouts
dnl # (Sendmail's defaults are C:5m;S:10s;R:10s;E:5m): C:10s - mxswitch is
dnl # on this host and accepts at once; a dead one should not hold each
dnl # SMTP session for 5 minutes.  S:10s - sending to it.  R:20s - its
dnl # answer to RCPT waits at most for one Redis lookup (redis.timeout_ms,
dnl # 500 ms by default, plus a reconnect) and a free pool connection; 20s
dnl # leaves room under load while still tempfailing a hung milter.  E:1m -
dnl # end of message: mxswitch only changes recipients then, no lookups.
INPUT_MAIL_FILTER(`mxswitch', `S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:20s;E:1m')dnl
dnl # Macros sent with each RCPT: how Sendmail would route the recipient
dnl # without mxswitch ({rcpt_mailer} local/esmtp/relay..., {rcpt_host},
dnl # {rcpt_addr}), so recipients already routed right are left alone, and
dnl # the queue id (i) for mxswitch's log.  The first three are Sendmail's
dnl # default list for this option.
define(`confMILTER_MACROS_ENVRCPT', ``{rcpt_mailer}, {rcpt_host}, {rcpt_addr}, i'')dnl
dnl # Ruleset 0 parses the recipients mxswitch adds, like any other.  These
dnl # rules (in ParseLocal, before class w, aliases, virtusertable and
dnl # mailertable are looked at) turn the tags into a route.  Left and
dnl # right hand side of a rule are separated by TABs.  A domain comes here
dnl # with a trailing dot once Sendmail knows it (class w or DNS).
LOCAL_RULE_0
dnl # bob+mx-remote@example.com: the esmtp mailer, host = the domain itself (no
dnl # brackets: Sendmail looks up its MX records), user = the address
dnl # without the tag, so the exchanger sees RCPT TO:<bob@example.com>.
R$+ + mx-remote < @ $+ . >	$#esmtp $@ $2 $: $1 < @ $2 . >	mxswitch remote tag
dnl # The same for a domain Sendmail could not canonify (no trailing dot).
R$+ + mx-remote < @ $+ >	$#esmtp $@ $2 $: $1 < @ $2 >	mxswitch remote tag
dnl # bob+mx-local@example.com: the local mailer, user bob (aliases and
dnl # .forward apply as for any local user).  Used for a domain that
dnl # Sendmail would otherwise send away by SMTP.
R$+ + mx-local < @ $* >	$#local $: $1	mxswitch local tag
dnl # Back to the normal output stream for the rest of the .mc.
divert(0)dnl
dnl # END mxswitch
