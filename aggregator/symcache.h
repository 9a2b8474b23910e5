/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symcache.h - parsed symbol tables of mapped files, cached by GNU build
 * id and by (dev, ino), both LRU (Alloy's build_id_cache_size and
 * same_file_cache_size). A file that fails to parse is cached as a
 * negative entry so a hostile file is parsed once, not once per sample.
 *
 * Lifetime: a returned elfsym is borrowed; it stays valid until the next
 * symcache_get*() or symcache_free() call on the same cache.
 */
#ifndef SYMCACHE_H
#define SYMCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elfsym.h"
#include "lru.h"

#define SYMCACHE_DEFAULT_BUILD_ID_SIZE	64
#define SYMCACHE_DEFAULT_SAME_FILE_SIZE	8

/* Returns an fd the cache then owns (and closes), or -errno. */
typedef int (*symcache_open_fn)(void *ctx);
/* Opens the debug file of a build id (probe OPEN_DEBUG); fd or -errno. */
typedef int (*symcache_open_debug_fn)(void *ctx, const uint8_t *build_id,
				      size_t len);
/* Opens the .gnu_debuglink file `name` of the file being parsed (probe
 * OPEN_DEBUGLINK); fd or -errno. */
typedef int (*symcache_open_debuglink_fn)(void *ctx, const char *name);

struct symcache_opts {
	size_t build_id_cache_size;	/* 0: default */
	size_t same_file_cache_size;	/* 0: default */
	symcache_open_debug_fn open_debug;	/* NULL: no debug files */
	symcache_open_debuglink_fn open_debuglink; /* NULL: build id only */
};

struct symcache_stats {
	struct lru_stats build_id;
	struct lru_stats same_file;
	uint64_t bad_elf;	/* files that failed to parse */
	uint64_t negative_hits;	/* lookups answered by a negative entry */
	uint64_t open_errors;	/* open_fd failed (not cached) */
	uint64_t debug_files;	/* debug files merged in */
	uint64_t debuglink_files; /* of which found by .gnu_debuglink */
	uint64_t bad_debug;	/* debug files unusable or of another build */
	uint64_t debuglink_crc_mismatch; /* debuglink file of another build */
};

struct symcache;

struct symcache *symcache_new(const struct symcache_opts *opts);
/*
 * Table of the file (dev, ino), or NULL if it cannot be read or parsed.
 * On a miss open_fd(ctx) is called to obtain the file, and for a file
 * without .symtab opts.open_debug(ctx, ...) for its debug file by build id,
 * then (gdb's order) opts.open_debuglink(ctx, ...) by its .gnu_debuglink,
 * accepted only if its CRC32 matches the link's.
 */
const struct elfsym *symcache_get(struct symcache *sc, dev_t dev,
				  uint64_t ino, symcache_open_fn open_fd,
				  void *ctx);
/* Cached table of a build id (e.g. from PROCMAP_QUERY), or NULL; never opens. */
const struct elfsym *symcache_get_build_id(struct symcache *sc,
					   const uint8_t *build_id, size_t len);
void symcache_get_stats(const struct symcache *sc, struct symcache_stats *st);
void symcache_free(struct symcache *sc);

/*
 * Name for a frame that cannot be symbolized: the mapping's file base name
 * (like Alloy), "[unknown]" for anonymous memory. Points into path.
 */
const char *symcache_module_name(const char *path);

#endif /* SYMCACHE_H */
