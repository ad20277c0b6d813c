/*
 * cfgref.h - the configuration in force, refcounted, swapped on reload
 *
 * One global: the current struct cfg.  cfgref_hold() hands out a
 * reference to it (the caller reads ref->cfg, read-only, and passes the
 * reference to cfgref_release() when done); cfgref_swap() makes a newly
 * loaded config current.  A config is freed when the last reference goes,
 * so a session that started before a reload finishes with the config it
 * started with.  Thread safe: a mutex guards the current pointer, the
 * counts are atomic.  Holding costs one lock: take it per session or per
 * request, not per lookup; cfgref_is_current() costs one atomic load.
 */
#ifndef CFGREF_H
#define CFGREF_H

struct cfg;

struct cfgref {
    const struct cfg *cfg; /* read-only while held */
    int refs;              /* atomic; private */
    unsigned long gen;     /* 1 for the first config, +1 per swap */
};

void cfgref_init(struct cfg *cfg);
struct cfgref *cfgref_hold(void);
int cfgref_is_current(const struct cfgref *ref);
void cfgref_release(struct cfgref *ref);
void cfgref_swap(struct cfg *cfg);
void cfgref_shutdown(void);

#endif
