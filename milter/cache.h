/*
 * cache.h - bounded, expiring cache of Redis routing keys
 *
 * Pure: no I/O; time is an argument.  Thread safe: one read-write lock
 * inside, which lookups share.
 *
 * Keys are normalised domains (the Redis key minus the prefix); a value is
 * a mode (0-127), or CACHE_ABSENT for a key that Redis does not hold.  Entries
 * expire ttl_ms after they were stored; beyond max_entries the least
 * recently stored or read one goes, nearly: a read marks the entry, and a
 * marked entry gets one more round (CLOCK, so that a hit touches no other
 * entry).  max_entries or ttl_ms of 0 disables the cache.  Memory: an
 * entry takes whole 64-byte lines (one for a key of up to 23 bytes, two up
 * to 87); the room of a dropped entry is kept for the next of its size, and
 * all is given back by cache_flush() and cache_free().
 *
 * Stale answers: with cache_set_stale(c, stale_ms) an expired entry is kept
 * stale_ms longer; cache_get() misses it, cache_get_stale() returns it.
 * The caller uses a stale answer only while Redis cannot answer.  An
 * invalidation or flush removes stale entries too; cache_expire() ends
 * every entry's ttl and keeps it for stale use (after a reconnect, when
 * changes may have been missed but the answers are still the best known).
 *
 * Invalidation races: a lookup reads cache_generation() before asking
 * Redis and passes it to cache_put(); a put is dropped when any
 * invalidation or flush happened meanwhile, so an answer read before a
 * change can never outlive the change's notification.
 */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_MISS   (-2)
#define CACHE_ABSENT (-1)

struct cache;

struct cache *cache_create(size_t max_entries, uint64_t ttl_ms);
void cache_free(struct cache *c);
void cache_set_stale(struct cache *c, uint64_t stale_ms);
int cache_get(struct cache *c, const char *key, uint64_t now_ms);
int cache_get_stale(struct cache *c, const char *key, uint64_t now_ms);
uint64_t cache_generation(struct cache *c);
void cache_put(struct cache *c, const char *key, int value, uint64_t now_ms,
               uint64_t generation);
void cache_invalidate(struct cache *c, const char *key, size_t len);
void cache_flush(struct cache *c);
void cache_expire(struct cache *c, uint64_t now_ms);
size_t cache_count(struct cache *c);

#endif
