/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "symcache.h"

/* One parsed file, shared by both caches; freed when neither holds it. */
struct scval {
	unsigned int refs;
	struct elfsym *es;
};

struct file_key {
	uint64_t dev;
	uint64_t ino;
};

struct symcache {
	struct lru *by_build_id;
	struct lru *by_file;
	symcache_open_debug_fn open_debug;
	symcache_open_debuglink_fn open_debuglink;
	uint64_t bad_elf, negative_hits, open_errors, debug_files, bad_debug;
	uint64_t debuglink_files, crc_mismatch;
};

static void scval_put(void *p)
{
	struct scval *v = p;

	if (v && --v->refs == 0) {
		elfsym_free(v->es);
		free(v);
	}
}

struct symcache *symcache_new(const struct symcache_opts *opts)
{
	struct symcache *sc = calloc(1, sizeof(*sc));
	size_t nb = opts->build_id_cache_size ? opts->build_id_cache_size :
		    SYMCACHE_DEFAULT_BUILD_ID_SIZE;
	size_t nf = opts->same_file_cache_size ? opts->same_file_cache_size :
		    SYMCACHE_DEFAULT_SAME_FILE_SIZE;

	if (!sc)
		return NULL;
	sc->by_build_id = lru_new(nb, scval_put);
	sc->by_file = lru_new(nf, scval_put);
	sc->open_debug = opts->open_debug;
	sc->open_debuglink = opts->open_debuglink;
	if (!sc->by_build_id || !sc->by_file) {
		symcache_free(sc);
		return NULL;
	}
	return sc;
}

void symcache_free(struct symcache *sc)
{
	if (!sc)
		return;
	lru_free(sc->by_file);
	lru_free(sc->by_build_id);
	free(sc);
}

/* b is the debug file of this very build a: equal build ids; or, once its
 * CRC matched a's .gnu_debuglink, ids that agree wherever both have one. */
static bool same_build(const struct elfsym *a, const struct elfsym *b,
		       bool crc_matched)
{
	const uint8_t *ia, *ib;
	size_t la = elfsym_build_id_raw(a, &ia), lb = elfsym_build_id_raw(b, &ib);

	if (crc_matched && (la == 0 || lb == 0))
		return true;
	return la == lb && memcmp(ia, ib, la) == 0;
}

/* zlib's CRC-32 is the one gdb and objcopy use for .gnu_debuglink. */
static int file_crc32(int fd, uint32_t *crc)
{
	static unsigned char buf[1 << 16];
	uLong c = crc32(0L, Z_NULL, 0);
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		c = crc32(c, buf, (uInt)n);
		off += n;
	}
	*crc = (uint32_t)c;
	return n < 0 ? -errno : 0;
}

/* Merges the debug file in fd (closed here); true if it was usable. With a
 * build id on both sides they must match; a debuglink file needs its CRC. */
static bool merge_debug_fd(struct symcache *sc, struct elfsym *es, int fd,
			   const uint32_t *want_crc)
{
	struct elfsym *dbg = NULL;
	uint32_t crc = 0;
	bool ok = false;

	if (want_crc && (file_crc32(fd, &crc) < 0 || crc != *want_crc)) {
		sc->crc_mismatch++;
		(void)close(fd);
		return false;
	}
	if (elfsym_open_fd(fd, &dbg) == 0 && same_build(es, dbg, want_crc) &&
	    elfsym_has_symbols(dbg) && elfsym_merge(es, dbg) == 0)
		ok = true;
	(void)close(fd);
	elfsym_free(dbg);
	if (ok)
		sc->debug_files++;
	else
		sc->bad_debug++;
	return ok;
}

/* gdb's order: the build-id file, then the debuglink. */
static void attach_debug(struct symcache *sc, struct elfsym *es, void *ctx)
{
	const uint8_t *id;
	size_t len = elfsym_build_id_raw(es, &id);
	const char *link;
	uint32_t crc;
	int fd;

	if (sc->open_debug && len) {
		fd = sc->open_debug(ctx, id, len);
		if (fd >= 0 && merge_debug_fd(sc, es, fd, NULL))
			return;
	}
	link = elfsym_debuglink(es, &crc);
	if (!sc->open_debuglink || !link)
		return;
	fd = sc->open_debuglink(ctx, link);
	if (fd >= 0 && merge_debug_fd(sc, es, fd, &crc))
		sc->debuglink_files++;
}

/* Parses a freshly opened file; NULL (and a counter) when it is not usable. */
static struct elfsym *parse_file(struct symcache *sc, symcache_open_fn open_fd,
				 void *ctx, bool *bad)
{
	struct elfsym *es = NULL;
	int fd = open_fd(ctx), ret;

	*bad = false;
	if (fd < 0) {
		sc->open_errors++;
		return NULL;
	}
	ret = elfsym_open_fd(fd, &es);
	(void)close(fd);
	if (ret < 0) {
		sc->bad_elf++;
		*bad = ret != -ENOMEM;
		return NULL;
	}
	return es;
}

/* Shares an entry already cached by build id, or caches es under it. */
static struct scval *intern_build_id(struct symcache *sc, struct elfsym *es,
				     void *ctx)
{
	const uint8_t *id;
	size_t len = elfsym_build_id_raw(es, &id);
	struct scval *v;
	bool found;

	if (len) {
		v = lru_get(sc->by_build_id, id, len, &found);
		if (v) {
			elfsym_free(es);
			v->refs++;
			return v;
		}
	}
	if (!elfsym_has_symtab(es))
		attach_debug(sc, es, ctx);
	v = calloc(1, sizeof(*v));
	if (!v) {
		elfsym_free(es);
		return NULL;
	}
	v->es = es;
	v->refs = 1;
	if (len && lru_put(sc->by_build_id, id, len, v) == 0)
		v->refs++;
	return v;
}

const struct elfsym *symcache_get(struct symcache *sc, dev_t dev,
				  uint64_t ino, symcache_open_fn open_fd,
				  void *ctx)
{
	struct file_key key = { .dev = (uint64_t)dev, .ino = ino };
	struct scval *v;
	struct elfsym *es;
	bool found, bad;

	v = lru_get(sc->by_file, &key, sizeof(key), &found);
	if (found) {
		sc->negative_hits += v == NULL;
		return v ? v->es : NULL;
	}
	es = parse_file(sc, open_fd, ctx, &bad);
	if (!es) {
		if (bad)
			(void)lru_put(sc->by_file, &key, sizeof(key), NULL);
		return NULL;
	}
	v = intern_build_id(sc, es, ctx);
	if (!v)
		return NULL;
	/* The file cache's reference is the one that keeps es alive for the
	 * caller until the next call. */
	if (lru_put(sc->by_file, &key, sizeof(key), v) < 0) {
		scval_put(v);
		return NULL;
	}
	return v->es;
}

const struct elfsym *symcache_get_build_id(struct symcache *sc,
					   const uint8_t *build_id, size_t len)
{
	struct scval *v;
	bool found;

	if (len == 0)
		return NULL;
	v = lru_get(sc->by_build_id, build_id, len, &found);
	return v ? v->es : NULL;
}

void symcache_get_stats(const struct symcache *sc, struct symcache_stats *st)
{
	memset(st, 0, sizeof(*st));
	lru_get_stats(sc->by_build_id, &st->build_id);
	lru_get_stats(sc->by_file, &st->same_file);
	st->bad_elf = sc->bad_elf;
	st->negative_hits = sc->negative_hits;
	st->open_errors = sc->open_errors;
	st->debug_files = sc->debug_files;
	st->debuglink_files = sc->debuglink_files;
	st->bad_debug = sc->bad_debug;
	st->debuglink_crc_mismatch = sc->crc_mismatch;
}

const char *symcache_module_name(const char *path)
{
	const char *slash;

	if (!path || !*path)
		return "[unknown]";
	slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}
