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
    unsigned char read; /* read since it was last put at the head; set
                           under the read lock, so atomically */
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
    pthread_rwlock_t lock; /* read: get; write: all that changes the table */
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

/* rdlock, wrlock, unlock - the table's lock; a broken lock is a broken
 * invariant, as in xlock() */
static void
rdlock(struct cache *c)
{
    if (pthread_rwlock_rdlock(&c->lock) != 0)
        fatalx("cache: rwlock rdlock failed");
}

static void
wrlock(struct cache *c)
{
    if (pthread_rwlock_wrlock(&c->lock) != 0)
        fatalx("cache: rwlock wrlock failed");
}

static void
unlock(struct cache *c)
{
    if (pthread_rwlock_unlock(&c->lock) != 0)
        fatalx("cache: rwlock unlock failed");
}

/* entry_new - room for an entry with a key of len bytes (write lock held) */
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

/* entry_free - give an entry's room back (write lock held) */
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
 * evict - drop the entry least recently put or read, nearly (write lock held)
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

/* free_entries - free every entry and empty the table (write lock held) */
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
    pthread_rwlockattr_t a;

    if (ttl_ms == 0)
        max_entries = 0;
    c->max = max_entries;
    c->ttl = ttl_ms;
    c->nslots = 16;
    while (c->nslots < max_entries && c->nslots < ((size_t)1 << 30))
        c->nslots <<= 1;
    c->slots = xcalloc(c->nslots, sizeof(*c->slots));
    c->head.next = c->head.prev = &c->head;
    /* Writers first: a put must not wait for a gap between lookups. */
    if (pthread_rwlockattr_init(&a) != 0 ||
        pthread_rwlockattr_setkind_np(
            &a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) != 0 ||
        pthread_rwlock_init(&c->lock, &a) != 0)
        fatalx("cache: rwlock init failed");
    pthread_rwlockattr_destroy(&a);
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
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

/* past_stale - whether an entry is past its stale time: to be dropped */
static int
past_stale(const struct cache *c, const struct entry *e, uint64_t now_ms)
{
    return e->expires + c->stale <= now_ms;
}

/*
 * get - a key's value; past its ttl only when stale_ok
 *
 * Lookups share the read lock: a hit changes nothing but its entry's
 * mark.  An entry found past its stale time is dropped under the write
 * lock, if it is still there and still dead then.  The key's hash is
 * taken, and its slot fetched, before the lock.
 */
static int
get(struct cache *c, const char *key, uint64_t now_ms, int stale_ok)
{
    size_t len;
    uint32_t h;
    struct entry *e, **pp;
    int value = CACHE_MISS, dead = 0;

    if (c->max == 0)
        return CACHE_MISS;
    len = strlen(key);
    h = mxs_hash(key, len);
    __builtin_prefetch(&c->slots[h & (c->nslots - 1)]);
    rdlock(c);
    if ((e = *find(c, key, len, h)) == NULL) {
        /* a miss */
    } else if (past_stale(c, e, now_ms)) {
        dead = 1;
    } else if (e->expires > now_ms) {
        value = e->value;
        __atomic_store_n(&e->read, 1, __ATOMIC_RELAXED); /* see evict() */
    } else if (stale_ok) {
        value = e->value;
    }
    unlock(c);
    if (dead) {
        wrlock(c);
        pp = find(c, key, len, h);
        if (*pp != NULL && past_stale(c, *pp, now_ms))
            drop(c, pp);
        unlock(c);
    }
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
    wrlock(c);
    c->stale = stale_ms;
    unlock(c);
}

/* cache_generation - the invalidation counter, read before a fetch */
uint64_t
cache_generation(struct cache *c)
{
    uint64_t g;

    rdlock(c);
    g = c->generation;
    unlock(c);
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
    wrlock(c);
    if (generation != c->generation) {
        unlock(c);
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
    unlock(c);
}

/* cache_invalidate - forget one key (len bytes, need not be terminated) */
void
cache_invalidate(struct cache *c, const char *key, size_t len)
{
    uint32_t h = mxs_hash(key, len);
    struct entry **pp;

    wrlock(c);
    c->generation++;
    if (c->max > 0) {
        pp = find(c, key, len, h);
        if (*pp != NULL)
            drop(c, pp);
    }
    unlock(c);
}

/* cache_flush - forget everything */
void
cache_flush(struct cache *c)
{
    wrlock(c);
    c->generation++;
    free_entries(c);
    unlock(c);
}

/*
 * cache_expire - end every entry's ttl now: the next lookups ask Redis,
 * and the answers stay for stale use (cache_set_stale()); without a stale
 * time it is cache_flush().  In-flight puts are dropped, as by a flush.
 */
void
cache_expire(struct cache *c, uint64_t now_ms)
{
    struct entry *e;

    if (c->stale == 0) {
        cache_flush(c);
        return;
    }
    wrlock(c);
    c->generation++;
    for (e = c->head.next; e != &c->head; e = e->next)
        if (e->expires > now_ms)
            e->expires = now_ms;
    unlock(c);
}

/* cache_count - entries held now */
size_t
cache_count(struct cache *c)
{
    size_t n;

    rdlock(c);
    n = c->count;
    unlock(c);
    return n;
}
