/*
 * coalesce.h - send end-of-message modifications with the final reply
 *
 * libmilter writes every modification as a packet of its own: a poll(2)
 * and a writev(2) for each smfi_delrcpt() and smfi_addrcpt_par(), and a
 * TCP segment (a wake-up of the MTA) for each.  Between coalesce_begin()
 * at the start of xxfi_eom and libmilter's final reply, the recipient
 * modifications ('+', '-', '2') the thread writes are kept back and go out
 * in the same writev(2) as that reply: the same bytes in the same order, in
 * one write.  This works by defining writev() and poll(), which
 * libmilter.so calls through the dynamic linker; meanwhile libmilter's poll
 * for room before each packet is answered without a system call.  Every
 * other call, and any when no coalesce_begin() is pending, passes straight
 * through to the C library.
 *
 * State is per thread: libmilter runs xxfi_eom and writes its reply on the
 * same thread.  A kept-back modification is reported written; if the
 * final write then fails, libmilter drops the session and the MTA
 * tempfails the message, as it would have had the modification failed.
 * Data kept back when no reply followed (libmilter gave up the session)
 * is dropped at the next coalesce_begin().  More than COALESCE_MAX bytes
 * are written out as they fill, in order.  coalesce_init() must run before
 * threads start; without it, or if the dynamic linker gives libmilter the
 * C library's functions, nothing is kept back.  Each reply that carried kept
 * modifications counts in stats (mxswitch_coalesced_replies_total).
 */
#ifndef COALESCE_H
#define COALESCE_H

#define COALESCE_MAX 65536

int coalesce_init(void);
void coalesce_begin(void);

#endif
