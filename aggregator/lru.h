/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lru.h - a bounded least-recently-used map from short byte keys to
 * pointers, with hit/miss/eviction counters. The map owns its values: it
 * hands an evicted or replaced value to free_val (which must accept NULL,
 * since NULL values are allowed, e.g. negative cache entries).
 */
#ifndef LRU_H
#define LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LRU_KEY_MAX	64

struct lru;

struct lru_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
};

/* capacity >= 1. NULL on allocation failure or capacity 0. */
struct lru *lru_new(size_t capacity, void (*free_val)(void *val));
/* Marks the entry most recently used. *found tells a NULL value from a miss. */
void *lru_get(struct lru *l, const void *key, size_t klen, bool *found);
/* Inserts or replaces; may evict the least recently used entry. On error
 * the value stays the caller's. */
int lru_put(struct lru *l, const void *key, size_t klen, void *val);
/* Removes the entry and hands its value to free_val; -ENOENT if absent. */
int lru_del(struct lru *l, const void *key, size_t klen);
size_t lru_len(const struct lru *l);
void lru_get_stats(const struct lru *l, struct lru_stats *st);
void lru_free(struct lru *l);

#endif /* LRU_H */
