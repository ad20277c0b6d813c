/*
 * test_cache - expiry, CLOCK bound, invalidation, generation races,
 * stale answers, and lookups shared among threads
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache.h"
#include "check.h"

/* Keys of every size class, and one past them (from malloc). */
static const size_t key_lens[] = {1, 23, 24, 87, 88, 400, 471, 472, 1000};
#define NKEYS (sizeof(key_lens) / sizeof(key_lens[0]))

/* key_of - a key of key_lens[i] bytes whose content says i and round */
static char *
key_of(size_t i, int round)
{
    char *k = malloc(key_lens[i] + 1);

    memset(k, 'a' + (int)i, key_lens[i]);
    k[0] = (char)('0' + round);
    k[key_lens[i]] = '\0';
    return k;
}

/*
 * sizes - entries of every size come back whole; dropped ones' room is
 * used again, and a flush gives it all back (ASan and valgrind check the
 * memory; here the values and keys must survive)
 */
static void
sizes(void)
{
    struct cache *c = cache_create(100, 1000);
    char name[64], *k;
    int round, got;
    size_t i;

    for (round = 0; round < 3; round++) {
        uint64_t g = cache_generation(c);

        for (i = 0; i < NKEYS; i++) {
            k = key_of(i, round);
            cache_put(c, k, (int)i, 0, g);
            free(k);
        }
        for (i = 0; i < NKEYS; i++) {
            k = key_of(i, round);
            got = cache_get(c, k, 1);
            snprintf(name, sizeof(name), "round %d: key of %zu bytes", round,
                     key_lens[i]);
            check_int(name, "get", got, (long long)i);
            if (round == 0)
                cache_invalidate(c, k, key_lens[i]); /* room kept for 1 */
            free(k);
        }
        if (round == 1)
            cache_flush(c); /* all given back; round 2 starts afresh */
    }
    check_int("sizes: entries held", "count", (long long)cache_count(c),
              (long long)NKEYS);
    k = key_of(1, 1);
    check_int("sizes: a flushed entry is gone", "get", cache_get(c, k, 1),
              CACHE_MISS);
    free(k);
    cache_free(c);
}

/*
 * big - 100,000 entries over many blocks (1,023 one-line entries each):
 * every one read back, the bound still kept, and the blocks freed (ASan
 * and valgrind check that)
 */
static void
big(void)
{
    struct cache *c = cache_create(100000, 1000);
    uint64_t g = cache_generation(c);
    char k[32];
    int i, wrong = 0;

    for (i = 0; i < 110000; i++) {
        snprintf(k, sizeof(k), "d%d.test", i);
        cache_put(c, k, i % 4, 0, g);
    }
    for (i = 10000; i < 110000; i++) {
        snprintf(k, sizeof(k), "d%d.test", i);
        wrong += cache_get(c, k, 1) != i % 4;
    }
    check_int("big: the last 100,000 of 110,000 come back", "wrong", wrong, 0);
    check_int("big: the bound holds", "count", (long long)cache_count(c),
              100000);
    check_int("big: the first put went", "get", cache_get(c, "d0.test", 1),
              CACHE_MISS);
    cache_free(c);
}

/* Each thread of threads() below, and what they share. */
#define T_THREADS 8
#define T_OPS     200000
#define T_KEYS    64
#define T_MAX     32

struct worker {
    struct cache *c;
    unsigned seed;
    long wrong, hits;
};

/* want_of - the one value key k may ever have */
static int
want_of(int k)
{
    return k % 5 == 0 ? CACHE_ABSENT : k % 4;
}

/* work - lookups (some past the ttl or the stale time, which drop
 * entries), puts, invalidations and the odd flush, on shared keys */
static void *
work(void *arg)
{
    struct worker *w = arg;
    char key[32];
    int i, k, v, op;

    for (i = 0; i < T_OPS; i++) {
        uint64_t now = (uint64_t)i;

        k = (int)(rand_r(&w->seed) % T_KEYS);
        op = (int)(rand_r(&w->seed) % 100);
        snprintf(key, sizeof(key), "d%d.test", k);
        if (op < 80) {
            uint64_t at = now + rand_r(&w->seed) % 2000;

            v = op < 70 ? cache_get(w->c, key, at)
                        : cache_get_stale(w->c, key, at);
            w->wrong += v != CACHE_MISS && v != want_of(k);
            w->hits += v != CACHE_MISS;
        } else if (op < 97) {
            cache_put(w->c, key, want_of(k), now, cache_generation(w->c));
        } else if (op < 99 || rand_r(&w->seed) % 1000 != 0) {
            cache_invalidate(w->c, key, strlen(key));
        } else {
            cache_flush(w->c);
        }
    }
    return NULL;
}

/*
 * threads - 8 threads at once on one cache of 32 entries over 64
 * keys: a lookup must never see another key's value, however the others
 * put, evict, drop, invalidate and flush around it; the bound holds
 * (ASan and valgrind check the memory)
 */
static void
threads(void)
{
    struct cache *c = cache_create(T_MAX, 1000);
    struct worker w[T_THREADS];
    pthread_t t[T_THREADS];
    long wrong = 0, hits = 0;
    int i, n;

    cache_set_stale(c, 500);
    for (n = 0; n < T_THREADS; n++) {
        w[n] = (struct worker){c, (unsigned)n + 1, 0, 0};
        if (pthread_create(&t[n], NULL, work, &w[n]) != 0)
            break;
    }
    check_int("threads: all started", "threads", n, T_THREADS);
    for (i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        wrong += w[i].wrong;
        hits += w[i].hits;
    }
    check_int("threads: no lookup saw another key's value", "wrong", wrong, 0);
    check_int("threads: lookups hit (the test is not empty)", "hits>1%",
              hits > T_THREADS * T_OPS / 100, 1);
    check_int("threads: the bound holds", "count<=max", cache_count(c) <= T_MAX,
              1);
    cache_free(c);
}

int
main(void)
{
    struct cache *c = cache_create(3, 1000);
    struct cache *off;
    uint64_t g;
    char key[32];
    int i;

    check_int("empty cache misses", "get", cache_get(c, "a.test", 0),
              CACHE_MISS);
    g = cache_generation(c);
    cache_put(c, "a.test", 2, 0, g);
    cache_put(c, "b.test", CACHE_ABSENT, 0, g);
    check_int("stored mode is returned", "get", cache_get(c, "a.test", 10), 2);
    check_int("absent key is remembered", "get", cache_get(c, "b.test", 10),
              CACHE_ABSENT);
    check_int("entry expires after ttl", "get", cache_get(c, "a.test", 1000),
              CACHE_MISS);
    check_int("expired entry is dropped", "count", (long long)cache_count(c),
              1);

    cache_invalidate(c, "b.test", 6);
    g = cache_generation(c);
    cache_put(c, "a.test", 1, 2000, g);
    cache_put(c, "c.test", 1, 2000, g);
    cache_put(c, "d.test", 1, 2000, g);
    cache_put(c, "e.test", 1, 2000, g);
    check_int("bound is kept", "count", (long long)cache_count(c), 3);
    check_int("the oldest unread entry goes first", "get",
              cache_get(c, "a.test", 2000), CACHE_MISS);
    cache_get(c, "c.test", 2001); /* c is the oldest now, but read */
    cache_put(c, "f.test", 2, 2001, g);
    check_int("a read entry gets a second chance", "get",
              cache_get(c, "c.test", 2002), 1);
    check_int("the oldest unread one goes instead", "get",
              cache_get(c, "d.test", 2002), CACHE_MISS);

    cache_put(c, "f.test", 3, 2003, g);
    check_int("put replaces a value", "get", cache_get(c, "f.test", 2004), 3);
    cache_put(c, "a.test", 2, 2004, g);

    g = cache_generation(c);
    cache_invalidate(c, "a.test.extra", 6);
    check_int("invalidate uses only len bytes of the key", "get",
              cache_get(c, "a.test", 2005), CACHE_MISS);
    cache_put(c, "a.test", 2, 2005, g);
    check_int("a put that raced an invalidation is dropped", "get",
              cache_get(c, "a.test", 2006), CACHE_MISS);
    g = cache_generation(c);
    cache_put(c, "a.test", 2, 2006, g);
    check_int("a put after the invalidation is kept", "get",
              cache_get(c, "a.test", 2007), 2);
    cache_flush(c);
    check_int("flush empties the cache", "count", (long long)cache_count(c), 0);
    cache_put(c, "a.test", 2, 2008, g);
    check_int("a put that raced a flush is dropped", "get",
              cache_get(c, "a.test", 2009), CACHE_MISS);

    g = cache_generation(c);
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "d%d.test", i);
        cache_put(c, key, i % 3, 3000, g);
    }
    check_int("many puts stay within the bound", "count",
              (long long)cache_count(c), 3);
    check_int("the newest survive", "get", cache_get(c, "d999.test", 3000), 0);
    cache_free(c);

    /* Stale answers: ttl 1000, kept 5000 past it for cache_get_stale(). */
    c = cache_create(10, 1000);
    cache_set_stale(c, 5000);
    g = cache_generation(c);
    cache_put(c, "s.test", 2, 0, g);
    cache_put(c, "n.test", CACHE_ABSENT, 0, g);
    check_int("stale: fresh entry via get_stale", "get",
              cache_get_stale(c, "s.test", 500), 2);
    check_int("stale: get misses past ttl", "get", cache_get(c, "s.test", 1000),
              CACHE_MISS);
    check_int("stale: the expired entry is kept", "count",
              (long long)cache_count(c), 2);
    check_int("stale: get_stale returns it past ttl", "get",
              cache_get_stale(c, "s.test", 1000), 2);
    check_int("stale: an absent key is remembered stale too", "get",
              cache_get_stale(c, "n.test", 5999), CACHE_ABSENT);
    check_int("stale: get_stale misses at ttl + stale", "get",
              cache_get_stale(c, "s.test", 6000), CACHE_MISS);
    check_int("stale: and drops it", "count", (long long)cache_count(c), 1);
    cache_put(c, "s.test", 1, 6000, cache_generation(c));
    cache_invalidate(c, "s.test", 6);
    check_int("stale: invalidation removes the stale answer", "get",
              cache_get_stale(c, "s.test", 7500), CACHE_MISS);
    cache_put(c, "s.test", 1, 7000, cache_generation(c));
    cache_flush(c);
    check_int("stale: flush removes stale answers", "get",
              cache_get_stale(c, "s.test", 8500), CACHE_MISS);
    cache_put(c, "e.test", 2, 8600, cache_generation(c));
    g = cache_generation(c);
    cache_expire(c, 8700);
    check_int("expire: a fresh entry now misses", "get",
              cache_get(c, "e.test", 8700), CACHE_MISS);
    check_int("expire: but serves stale", "get_stale",
              cache_get_stale(c, "e.test", 8700 + 4999), 2);
    check_int("expire: for the stale time from now", "get_stale",
              cache_get_stale(c, "e.test", 8700 + 5000), CACHE_MISS);
    cache_put(c, "r.test", 2, 8700, g);
    check_int("expire: a put from before it is dropped", "get",
              cache_get(c, "r.test", 8700), CACHE_MISS);
    cache_put(c, "s.test", 1, 9000, cache_generation(c));
    cache_set_stale(c, 0);
    cache_expire(c, 9001);
    check_int("expire without a stale time flushes", "count",
              (long long)cache_count(c), 0);
    cache_put(c, "s.test", 1, 9000, cache_generation(c));
    check_int("stale 0: get_stale ends at ttl", "get",
              cache_get_stale(c, "s.test", 10000), CACHE_MISS);
    cache_free(c);

    off = cache_create(100, 0);
    cache_put(off, "a.test", 2, 0, cache_generation(off));
    check_int("ttl 0 disables the cache", "get", cache_get(off, "a.test", 0),
              CACHE_MISS);
    cache_free(off);
    off = cache_create(0, 1000);
    cache_put(off, "a.test", 2, 0, cache_generation(off));
    check_int("max_entries 0 disables the cache", "get",
              cache_get(off, "a.test", 0), CACHE_MISS);
    cache_invalidate(off, "a.test", 6);
    check_int("max_entries 0: get_stale misses", "get",
              cache_get_stale(off, "a.test", 0), CACHE_MISS);
    cache_free(off);
    cache_free(NULL);

    sizes();
    big();
    threads();
    return check_done("test_cache");
}
