/*
 * mlfi.h - the libmilter callbacks: the thin shell around the core
 *
 * mlfi_setup() must be called before smfi_main() with objects that outlive
 * it.  Callbacks run on libmilter's threads, one per SMTP session; their
 * per-session state is made at the first callback and freed at close.  A
 * session holds the config in force when it began (cfgref) until it
 * closes, so a reload changes the next session, never one in progress.
 *
 * After smfi_main() returns, mlfi_stop() waits (up to secs) for the
 * callbacks running; after it, none touches the objects given to
 * mlfi_setup(), so they may be freed.  It returns 0 if some are still
 * running.  libmilter does not close the sessions it left open at stop:
 * their state stays until the process exits, and the MTA applies its
 * milter default action to them.
 */
#ifndef MLFI_H
#define MLFI_H

#include <libmilter/mfapi.h>

struct cache;
struct rclient;
struct dns;

void mlfi_setup(struct cache *cache, struct rclient *rc, struct dns *dns);
void mlfi_teardown(void);
extern struct smfiDesc mlfi_desc;
int mlfi_sessions(void);
int mlfi_stop(int secs);

#endif
