/*
 * cache.c - hash table with a CLOCK bound and expiry; see cache.h
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "mxs.h"

/*
 * An entry starts on a cache line of its own, and a key of up to 23 bytes
 * shares that line with everything a lookup reads: with a million
 * entries, a hit costs the slot and this one line.  Entries are cut from
 * blocks of their own (not malloc's heap, where they would spread the
 * short-lived allocations of every message over cold memory) in whole
 * lines, and a freed one waits for the next of its size.
 */
struct entry {
    struct entry *hnext;       /* hash chain; the free list when free */
    struct entry *prev, *next; /* LRU list, most recently put at head */
    uint64_t expires;
    uint32_t hash;
    uint16_t len; /* of key */
    signed char value;
    unsigned char read; /* read since it was last put at the head */
    char key[];
};

#define LINE      64
#define MAX_LINES 8 /* longer keys (over 471 bytes) come from malloc */
#define BLOCK     (64 * 1024)

/* A block entries are cut from; the first line holds the header. */
struct block {
    struct block *next;
};

struct cache {
    pthread_mutex_t lock;
    struct entry **slots;
    size_t nslots; /* power of two */
    size_t count;
    size_t max;
    uint64_t ttl;
    uint64_t stale; /* an expired entry is kept this long for stale use */
    uint64_t generation;
    struct entry head;                  /* LRU sentinel */
    struct entry *spare[MAX_LINES + 1]; /* freed entries, by size */
    struct block *blocks;
    char *cut; /* where the next entry is cut from blocks */
    size_t left;
};

/* lines - the LINEs an entry with a key of len bytes takes */
static size_t
lines(size_t len)
{
    return (offsetof(struct entry, key) + len + 1 + LINE - 1) / LINE;
}

/* entry_new - room for an entry with a key of len bytes (lock held) */
static struct entry *
entry_new(struct cache *c, size_t len)
{
    size_t n = lines(len);
    struct entry *e;

    if (n > MAX_LINES)
        return xmalloc(offsetof(struct entry, key) + len + 1);
    if ((e = c->spare[n]) != NULL) {
        c->spare[n] = e->hnext;
        return e;
    }
    if (c->left < n * LINE) {
        struct block *b = aligned_alloc(LINE, BLOCK);

        if (b == NULL)
            fatalx("out of memory");
        b->next = c->blocks;
        c->blocks = b;
        c->cut = (char *)b + LINE;
        c->left = BLOCK - LINE;
    }
    e = (struct entry *)(void *)c->cut;
    c->cut += n * LINE;
    c->left -= n * LINE;
    return e;
}

/* entry_free - give an entry's room back (lock held) */
static void
entry_free(struct cache *c, struct entry *e)
{
    size_t n = lines(e->len);

    if (n > MAX_LINES) {
        free(e);
        return;
    }
    e->hnext = c->spare[n];
    c->spare[n] = e;
}

/* lru_unlink - take an entry out of the LRU list */
static void
lru_unlink(struct entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

/* lru_push - put an entry at the head of the LRU list */
static void
lru_push(struct cache *c, struct entry *e)
{
    e->next = c->head.next;
    e->prev = &c->head;
    c->head.next->prev = e;
    c->head.next = e;
}

/* find - the entry for a key and the link that points at it */
static struct entry **
find(struct cache *c, const char *key, size_t len, uint32_t h)
{
    struct entry **pp = &c->slots[h & (c->nslots - 1)];

    for (; *pp != NULL; pp = &(*pp)->hnext)
        if ((*pp)->hash == h && (*pp)->len == len &&
            memcmp((*pp)->key, key, len) == 0) /* no reading past it */
            return pp;
    return pp;
}

/* drop - remove the entry *pp points at */
static void
drop(struct cache *c, struct entry **pp)
{
    struct entry *e = *pp;

    *pp = e->hnext;
    lru_unlink(e);
    entry_free(c, e);
    c->count--;
}

/*
 * evict - drop the entry least recently put or read, nearly (lock held)
 *
 * A read marks its entry instead of moving it to the head of the list,
 * which would touch two more entries' memory on every hit (a third of a
 * hit's time with 1,000,000 entries).  Here, a marked entry at the tail
 * gets a second chance: unmarked, it goes to the head; the first
 * unmarked one goes (CLOCK).  Each entry is passed over at most once per
 * read, so this is O(1) per put on average.
 */
static void
evict(struct cache *c)
{
    struct entry *old;

    while ((old = c->head.prev)->read) {
        old->read = 0;
        lru_unlink(old);
        lru_push(c, old);
    }
    drop(c, find(c, old->key, old->len, old->hash));
}

/* free_entries - free every entry and empty the table (lock held) */
static void
free_entries(struct cache *c)
{
    while (c->head.next != &c->head) {
        struct entry *e = c->head.next;

        lru_unlink(e);
        entry_free(c, e); /* frees one from malloc; the blocks go below */
    }
    while (c->blocks != NULL) {
        struct block *b = c->blocks;

        c->blocks = b->next;
        free(b);
    }
    memset(c->spare, 0, sizeof(c->spare));
    c->cut = NULL;
    c->left = 0;
    memset(c->slots, 0, c->nslots * sizeof(*c->slots));
    c->count = 0;
}

/* cache_create - an empty cache; see cache.h for the zero cases */
struct cache *
cache_create(size_t max_entries, uint64_t ttl_ms)
{
    struct cache *c = xcalloc(1, sizeof(*c));

    if (ttl_ms == 0)
        max_entries = 0;
    c->max = max_entries;
    c->ttl = ttl_ms;
    c->nslots = 16;
    while (c->nslots < max_entries && c->nslots < ((size_t)1 << 30))
        c->nslots <<= 1;
    c->slots = xcalloc(c->nslots, sizeof(*c->slots));
    c->head.next = c->head.prev = &c->head;
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        fatalx("cache: mutex init failed");
    return c;
}

/* cache_free - release a cache and every entry; NULL is a no-op */
void
cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    free_entries(c);
    free(c->slots);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* lookup - the entry for a key, or NULL; drops it past its stale time */
static struct entry *
lookup(struct cache *c, const char *key, uint64_t now_ms)
{
    size_t len = strlen(key);
    struct entry **pp = find(c, key, len, mxs_hash(key, len));

    if (*pp == NULL)
        return NULL;
    if ((*pp)->expires + c->stale <= now_ms) {
        drop(c, pp);
        return NULL;
    }
    return *pp;
}

/* get - a key's value; past its ttl only when stale_ok (see lookup()) */
static int
get(struct cache *c, const char *key, uint64_t now_ms, int stale_ok)
{
    struct entry *e;
    int value = CACHE_MISS;

    if (c->max == 0)
        return CACHE_MISS;
    xlock(&c->lock);
    e = lookup(c, key, now_ms);
    if (e != NULL && e->expires > now_ms) {
        value = e->value;
        e->read = 1; /* not relinked: see evict() */
    } else if (e != NULL && stale_ok) {
        value = e->value;
    }
    xunlock(&c->lock);
    return value;
}

/*
 * cache_get - look a key up
 *
 * Returns CACHE_MISS (absent from the cache or expired), CACHE_ABSENT
 * (Redis has no such key) or the stored mode value.
 */
int
cache_get(struct cache *c, const char *key, uint64_t now_ms)
{
    return get(c, key, now_ms, 0);
}

/*
 * cache_get_stale - look a key up, accepting an answer past its ttl
 *
 * As cache_get(), but an entry expired less than the stale time ago (see
 * cache_set_stale()) is still returned.  For use only while Redis cannot
 * answer.
 */
int
cache_get_stale(struct cache *c, const char *key, uint64_t now_ms)
{
    return get(c, key, now_ms, 1);
}

/* cache_set_stale - keep expired entries stale_ms longer (0: drop at ttl) */
void
cache_set_stale(struct cache *c, uint64_t stale_ms)
{
    xlock(&c->lock);
    c->stale = stale_ms;
    xunlock(&c->lock);
}

/* cache_generation - the invalidation counter, read before a fetch */
uint64_t
cache_generation(struct cache *c)
{
    uint64_t g;

    xlock(&c->lock);
    g = c->generation;
    xunlock(&c->lock);
    return g;
}

/* cache_put - store a value unless an invalidation came since generation */
void
cache_put(struct cache *c, const char *key, int value, uint64_t now_ms,
          uint64_t generation)
{
    size_t len = strlen(key);
    uint32_t h = mxs_hash(key, len);
    struct entry **pp;
    struct entry *e;

    if (c->max == 0 || len > UINT16_MAX) /* no domain is that long */
        return;
    xlock(&c->lock);
    if (generation != c->generation) {
        xunlock(&c->lock);
        return;
    }
    pp = find(c, key, len, h);
    if (*pp != NULL) {
        e = *pp;
        lru_unlink(e);
    } else {
        if (c->count >= c->max) {
            evict(c);
            pp = find(c, key, len, h);
        }
        e = entry_new(c, len);
        memcpy(e->key, key, len + 1);
        e->len = (uint16_t)len;
        e->hash = h;
        e->hnext = NULL;
        *pp = e;
        c->count++;
    }
    e->value = (signed char)value;
    e->expires = now_ms + c->ttl;
    e->read = 0;
    lru_push(c, e);
    xunlock(&c->lock);
}

/* cache_invalidate - forget one key (len bytes, need not be terminated) */
void
cache_invalidate(struct cache *c, const char *key, size_t len)
{
    uint32_t h = mxs_hash(key, len);
    struct entry **pp;

    xlock(&c->lock);
    c->generation++;
    if (c->max > 0) {
        pp = find(c, key, len, h);
        if (*pp != NULL)
            drop(c, pp);
    }
    xunlock(&c->lock);
}

/* cache_flush - forget everything */
void
cache_flush(struct cache *c)
{
    xlock(&c->lock);
    c->generation++;
    free_entries(c);
    xunlock(&c->lock);
}

/* cache_count - entries held now */
size_t
cache_count(struct cache *c)
{
    size_t n;

    xlock(&c->lock);
    n = c->count;
    xunlock(&c->lock);
    return n;
}
