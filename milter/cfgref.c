/*
 * cfgref.c - the configuration in force; see cfgref.h
 */
#include <pthread.h>
#include <stdlib.h>

#include "cfg.h"
#include "cfgref.h"
#include "mxs.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfgref *g_current; /* holds one reference of its own */
static unsigned long g_gen;      /* atomic copy of g_current->gen */

/* make - a reference holder for a config, owned by the current slot */
static struct cfgref *
make(struct cfg *cfg, unsigned long gen)
{
    struct cfgref *ref = xcalloc(1, sizeof(*ref));

    ref->cfg = cfg;
    ref->refs = 1;
    ref->gen = gen;
    return ref;
}

/* cfgref_init - make cfg current (takes ownership); before threads start */
void
cfgref_init(struct cfg *cfg)
{
    g_current = make(cfg, 1);
    g_gen = 1;
}

/* cfgref_hold - a reference to the current config */
struct cfgref *
cfgref_hold(void)
{
    struct cfgref *ref;

    xlock(&g_lock);
    ref = g_current;
    __atomic_add_fetch(&ref->refs, 1, __ATOMIC_RELAXED);
    xunlock(&g_lock);
    return ref;
}

/* cfgref_is_current - whether no reload happened since ref was taken */
int
cfgref_is_current(const struct cfgref *ref)
{
    return ref->gen == __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE);
}

/* cfgref_release - drop a reference; the last one frees the config */
void
cfgref_release(struct cfgref *ref)
{
    if (ref == NULL)
        return;
    if (__atomic_sub_fetch(&ref->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        cfg_free((struct cfg *)ref->cfg);
        free(ref);
    }
}

/* cfgref_swap - make cfg current (takes ownership); old holders keep theirs */
void
cfgref_swap(struct cfg *cfg)
{
    struct cfgref *old;

    xlock(&g_lock);
    old = g_current;
    g_current = make(cfg, old->gen + 1);
    __atomic_store_n(&g_gen, g_current->gen, __ATOMIC_RELEASE);
    xunlock(&g_lock);
    cfgref_release(old);
}

/* cfgref_shutdown - drop the current slot's reference; after every thread */
void
cfgref_shutdown(void)
{
    xlock(&g_lock);
    cfgref_release(g_current);
    g_current = NULL;
    xunlock(&g_lock);
}
