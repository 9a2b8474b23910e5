/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * strmap.h - a small string-keyed hash map (open addressing) with a hard
 * cap on entries: once full, lookups that would insert fail instead of
 * growing. Keys are copied; values are opaque pointers owned by the caller.
 */
#ifndef AGG_STRMAP_H
#define AGG_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap;

struct strmap *strmap_new(size_t max_entries);
/* free_val (may be NULL) is called on every value. */
void strmap_free(struct strmap *m, void (*free_val)(void *));

/*
 * The value slot of key, inserting an empty (NULL) slot when create is
 * true. NULL when absent (create false), full, or out of memory. The slot
 * pointer is valid until the next insertion.
 */
void **strmap_slot(struct strmap *m, const char *key, size_t keylen,
		   bool create);

size_t strmap_count(const struct strmap *m);

/* Visit every entry; stops early when cb returns nonzero. */
void strmap_foreach(const struct strmap *m,
		    int (*cb)(const char *key, size_t keylen, void *val,
			      void *ctx),
		    void *ctx);

#endif /* AGG_STRMAP_H */
