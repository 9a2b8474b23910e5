/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../aggregator/lru.h"
#include "../aggregator/symcache.h"

static char fixdir[64];

static void sh(const char *cmdline)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cd %s && %s", fixdir, cmdline);
	cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void fixture_setup(void)
{
	strcpy(fixdir, "/tmp/sp-symcache-XXXXXX");
	cr_assert_not_null(mkdtemp(fixdir));
	sh("printf '__attribute__((noinline)) int sp_fix_beta(int x) "
	   "{ return x * 7; }\\nint main(void) { return sp_fix_beta(1); }\\n' > fix.c"
	   " && cc -O1 -Wl,--build-id -o full fix.c"
	   " && cc -O1 -DOTHER=1 -Wl,--build-id -o other fix.c -Wl,--build-id=0xdeadbeef"
	   " && cp full stripped && strip --strip-all stripped"
	   " && objcopy --only-keep-debug full full.debug"
	   " && cp stripped both && objcopy --add-gnu-debuglink=full.debug both"
	   " && objcopy --remove-section=.note.gnu.build-id full.debug nobid-of-full.debug"
	   " && cp stripped both2"
	   " && objcopy --add-gnu-debuglink=nobid-of-full.debug both2"
	   " && cc -O1 -Wl,--build-id=none -o nobid fix.c"
	   " && objcopy --only-keep-debug nobid nobid.debug"
	   " && strip --strip-all nobid -o nobid.stripped"
	   " && objcopy --add-gnu-debuglink=nobid.debug nobid.stripped"
	   " && strip --strip-all nobid -o nobid.to-full"
	   " && objcopy --add-gnu-debuglink=full.debug nobid.to-full"
	   " && printf 'not an elf file' > junk");
}

static void fixture_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fixdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", fixdir);
}

TestSuite(symcache, .init = fixture_setup, .fini = fixture_teardown,
	  .timeout = 60);

/* Stands in for the probe: opens a fixture file and counts requests. */
struct opener {
	const char *name;
	const char *debug;	/* file returned by open_debug, or NULL */
	const char *link;	/* file returned by open_debuglink, or NULL */
	int opens;
	int debug_opens;
	int link_opens;
	char asked_link[128];
	uint8_t asked_id[64];
	size_t asked_len;
};

static int open_in_fixdir(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fixdir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int test_open(void *ctx)
{
	struct opener *o = ctx;

	o->opens++;
	return open_in_fixdir(o->name);
}

static int test_open_debug(void *ctx, const uint8_t *id, size_t len)
{
	struct opener *o = ctx;

	o->debug_opens++;
	memcpy(o->asked_id, id, len < 64 ? len : 64);
	o->asked_len = len;
	return o->debug ? open_in_fixdir(o->debug) : -ENOENT;
}

static int test_open_debuglink(void *ctx, const char *name)
{
	struct opener *o = ctx;

	o->link_opens++;
	snprintf(o->asked_link, sizeof(o->asked_link), "%s", name);
	return o->link ? open_in_fixdir(o->link) : -ENOENT;
}

static uint64_t nm_addr(const char *file, const char *sym)
{
	char cmd[256];
	unsigned long long a = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm %s/%s | awk '$3==\"%s\" {print $1}'",
		 fixdir, file, sym);
	p = popen(cmd, "r");
	cr_assert_eq(fscanf(p, "%llx", &a), 1);
	pclose(p);
	return a;
}

static struct symcache *new_cache(size_t nbuild, size_t nfile)
{
	struct symcache_opts o = { .build_id_cache_size = nbuild,
				   .same_file_cache_size = nfile,
				   .open_debug = test_open_debug,
				   .open_debuglink = test_open_debuglink };
	struct symcache *sc = symcache_new(&o);

	cr_assert_not_null(sc);
	return sc;
}

static int evicted[8], nevicted;

static void record_evict(void *v)
{
	evicted[nevicted++] = (int)(intptr_t)v;
}

Test(lru, eviction_order_and_counters)
{
	struct lru *l = lru_new(2, record_evict);
	struct lru_stats st;
	bool found;

	cr_assert_not_null(l);
	cr_assert_eq(lru_put(l, "a", 1, (void *)1), 0);
	cr_assert_eq(lru_put(l, "b", 1, (void *)2), 0);
	cr_expect_eq((intptr_t)lru_get(l, "a", 1, &found), 1);
	cr_expect(found);
	cr_assert_eq(lru_put(l, "c", 1, (void *)3), 0);	/* evicts b */
	cr_assert_eq(nevicted, 1);
	cr_expect_eq(evicted[0], 2);
	cr_expect_null(lru_get(l, "b", 1, &found));
	cr_expect_not(found);
	cr_assert_eq(lru_put(l, "d", 1, (void *)4), 0);	/* evicts a */
	cr_expect_eq(evicted[1], 1);
	cr_assert_eq(lru_put(l, "d", 1, NULL), 0);		/* replace frees 4 */
	cr_expect_eq(evicted[2], 4);
	(void)lru_get(l, "d", 1, &found);
	cr_expect(found);
	lru_get_stats(l, &st);
	cr_expect_eq(st.hits, 2);
	cr_expect_eq(st.misses, 1);
	cr_expect_eq(st.evictions, 2);
	cr_expect_eq(lru_len(l), 2);
	cr_expect_eq(lru_put(l, "k", LRU_KEY_MAX + 1, NULL), -EINVAL);
	lru_free(l);
	cr_expect_eq(nevicted, 5);	/* c and d(NULL) on free */
	cr_expect_null(lru_new(0, NULL));
	lru_free(NULL);
}

Test(symcache, hit_after_miss)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "full" };
	const struct elfsym *a, *b;
	struct symcache_stats st;

	a = symcache_get(sc, 1, 100, test_open, &o);
	cr_assert_not_null(a);
	b = symcache_get(sc, 1, 100, test_open, &o);
	cr_expect_eq(a, b);
	cr_expect_eq(o.opens, 1);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.same_file.misses, 1);
	cr_expect_eq(st.same_file.hits, 1);
	cr_expect_eq(st.bad_elf, 0);
	cr_expect_str_eq(elfsym_lookup(a, nm_addr("full", "sp_fix_beta"), NULL),
			 "sp_fix_beta");
	symcache_free(sc);
}

Test(symcache, same_file_lru_eviction_order)
{
	struct symcache *sc = new_cache(4, 2);
	struct opener o = { .name = "full" };
	struct symcache_stats st;

	cr_assert_not_null(symcache_get(sc, 1, 1, test_open, &o));
	cr_assert_not_null(symcache_get(sc, 1, 2, test_open, &o));
	cr_assert_not_null(symcache_get(sc, 1, 1, test_open, &o)); /* hit */
	cr_assert_not_null(symcache_get(sc, 1, 3, test_open, &o)); /* evicts 2 */
	cr_expect_eq(o.opens, 3);
	cr_assert_not_null(symcache_get(sc, 1, 1, test_open, &o)); /* hit */
	cr_expect_eq(o.opens, 3);
	cr_assert_not_null(symcache_get(sc, 1, 2, test_open, &o)); /* reopen */
	cr_expect_eq(o.opens, 4);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.same_file.hits, 2);
	cr_expect_eq(st.same_file.misses, 4);
	cr_expect_eq(st.same_file.evictions, 2);
	symcache_free(sc);
}

Test(symcache, same_build_id_shares_table)
{
	struct symcache *sc = new_cache(4, 4);
	struct opener o = { .name = "full" };
	const struct elfsym *a, *b;
	struct symcache_stats st;
	const uint8_t *id;
	size_t len;

	a = symcache_get(sc, 1, 1, test_open, &o);
	b = symcache_get(sc, 2, 7, test_open, &o);	/* a copy elsewhere */
	cr_assert_not_null(a);
	cr_expect_eq(a, b);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.build_id.hits, 1);
	len = elfsym_build_id_raw(a, &id);
	cr_assert_gt(len, 0);
	cr_expect_eq(symcache_get_build_id(sc, id, len), a);
	cr_expect_null(symcache_get_build_id(sc, (const uint8_t *)"nope", 4));
	symcache_free(sc);
}

Test(symcache, hostile_file_cached_negative)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "junk" };
	struct symcache_stats st;
	int i;

	for (i = 0; i < 5; i++)
		cr_expect_null(symcache_get(sc, 3, 33, test_open, &o));
	cr_expect_eq(o.opens, 1);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.bad_elf, 1);
	cr_expect_eq(st.negative_hits, 4);
	symcache_free(sc);
}

Test(symcache, open_error_not_cached)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "missing" };
	struct symcache_stats st;

	cr_expect_null(symcache_get(sc, 3, 34, test_open, &o));
	cr_expect_null(symcache_get(sc, 3, 34, test_open, &o));
	cr_expect_eq(o.opens, 2);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.open_errors, 2);
	cr_expect_eq(st.bad_elf, 0);
	symcache_free(sc);
}

Test(symcache, stripped_binary_resolved_by_debug_file)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "stripped", .debug = "full.debug" };
	const struct elfsym *es;
	struct symcache_stats st;
	const uint8_t *id;
	uint64_t off;
	size_t len;

	es = symcache_get(sc, 1, 5, test_open, &o);
	cr_assert_not_null(es);
	cr_expect_eq(o.debug_opens, 1);
	len = elfsym_build_id_raw(es, &id);
	cr_expect_eq(o.asked_len, len);
	cr_expect_arr_eq(o.asked_id, id, len);
	cr_expect_str_eq(elfsym_lookup(es, nm_addr("full", "sp_fix_beta") + 1, &off),
			 "sp_fix_beta");
	cr_expect_eq(off, 1);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.debug_files, 1);
	symcache_free(sc);
}

Test(symcache, debug_file_of_other_build_rejected)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "stripped", .debug = "other" };
	const struct elfsym *es;
	struct symcache_stats st;

	es = symcache_get(sc, 1, 6, test_open, &o);
	cr_assert_not_null(es);
	cr_expect_null(elfsym_lookup(es, nm_addr("full", "sp_fix_beta"), NULL));
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.bad_debug, 1);
	cr_expect_eq(st.debug_files, 0);
	symcache_free(sc);
}

/* No build id at all: only the debuglink can name it, and its CRC must match. */
Test(symcache, debuglink_resolves_binary_without_build_id)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "nobid.stripped", .link = "nobid.debug" };
	const struct elfsym *es;
	struct symcache_stats st;

	es = symcache_get(sc, 1, 7, test_open, &o);
	cr_assert_not_null(es);
	cr_expect_eq(o.debug_opens, 0, "no build id, yet OPEN_DEBUG was asked");
	cr_expect_eq(o.link_opens, 1);
	cr_expect_str_eq(o.asked_link, "nobid.debug");
	cr_expect_str_eq(elfsym_lookup(es, nm_addr("nobid", "sp_fix_beta"), NULL),
			 "sp_fix_beta");
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.debug_files, 1);
	cr_expect_eq(st.debuglink_files, 1);
	cr_expect_eq(st.debuglink_crc_mismatch, 0);
	symcache_free(sc);
}

/* A file under the link's name whose CRC differs (a rebuilt binary's): unused. */
Test(symcache, debuglink_crc_mismatch_rejected)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "nobid.stripped", .link = "full.debug" };
	const struct elfsym *es;
	struct symcache_stats st;

	es = symcache_get(sc, 1, 8, test_open, &o);
	cr_assert_not_null(es);
	cr_expect_eq(o.link_opens, 1);
	cr_expect_null(elfsym_lookup(es, nm_addr("nobid", "sp_fix_beta"), NULL));
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.debuglink_crc_mismatch, 1);
	cr_expect_eq(st.debug_files, 0);
	cr_expect_eq(st.debuglink_files, 0);
	symcache_free(sc);
}

/* gdb's order: build id first; the debuglink only when that finds nothing. */
Test(symcache, build_id_before_debuglink)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener a = { .name = "both", .debug = "full.debug",
			    .link = "full.debug" };
	struct opener b = { .name = "both", .link = "full.debug" };
	const struct elfsym *es;
	struct symcache_stats st;

	es = symcache_get(sc, 1, 9, test_open, &a);
	cr_assert_not_null(es);
	cr_expect_eq(a.debug_opens, 1);
	cr_expect_eq(a.link_opens, 0, "debuglink asked though the build id "
		     "found the file");
	symcache_free(sc);
	sc = new_cache(0, 0);
	es = symcache_get(sc, 1, 10, test_open, &b);
	cr_assert_not_null(es);
	cr_expect_eq(b.debug_opens, 1);
	cr_expect_eq(b.link_opens, 1);
	cr_expect_str_eq(elfsym_lookup(es, nm_addr("full", "sp_fix_beta"), NULL),
			 "sp_fix_beta");
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.debuglink_files, 1);
	symcache_free(sc);
}

/* The other way round: no build id in the binary, one in its debuglink
 * file. Only ids present on both sides must agree; the CRC matched. */
Test(symcache, debuglink_file_with_build_id_for_binary_without)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "nobid.to-full", .link = "full.debug" };
	struct symcache_stats st;

	cr_assert_not_null(symcache_get(sc, 1, 12, test_open, &o));
	cr_expect_eq(o.debug_opens, 0, "no build id, yet OPEN_DEBUG was asked");
	cr_expect_eq(o.link_opens, 1);
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.debuglink_files, 1, "refused: %llu bad",
		     (unsigned long long)st.bad_debug);
	symcache_free(sc);
}

/* The binary has a build id, its debuglink file lost it: the CRC decides. */
Test(symcache, debuglink_file_without_build_id_accepted_by_crc)
{
	struct symcache *sc = new_cache(0, 0);
	struct opener o = { .name = "both2", .link = "nobid-of-full.debug" };
	const struct elfsym *es;
	struct symcache_stats st;

	es = symcache_get(sc, 1, 11, test_open, &o);
	cr_assert_not_null(es);
	cr_expect_eq(o.debug_opens, 1);
	cr_expect_eq(o.link_opens, 1);
	cr_expect_str_eq(elfsym_lookup(es, nm_addr("full", "sp_fix_beta"), NULL),
			 "sp_fix_beta");
	symcache_get_stats(sc, &st);
	cr_expect_eq(st.debuglink_files, 1);
	cr_expect_eq(st.bad_debug, 0);
	symcache_free(sc);
}

Test(symcache, evicted_entries_freed_safely)
{
	/* Run under SAN=1: tables shared by both caches are freed once. */
	struct symcache *sc = new_cache(1, 1);
	struct opener a = { .name = "full" }, b = { .name = "other" };
	int i;

	for (i = 0; i < 20; i++) {
		const struct elfsym *es = symcache_get(sc, 1, (uint64_t)(i % 3),
						       test_open, i & 1 ? &a : &b);

		cr_assert_not_null(es);
		(void)elfsym_lookup(es, nm_addr(i & 1 ? "full" : "other",
						"sp_fix_beta"), NULL);
	}
	symcache_free(sc);
	symcache_free(NULL);
}

Test(symcache, module_name_fallback)
{
	cr_expect_str_eq(symcache_module_name("/usr/lib/libc.so.6"), "libc.so.6");
	cr_expect_str_eq(symcache_module_name("[vdso]"), "[vdso]");
	cr_expect_str_eq(symcache_module_name(""), "[unknown]");
	cr_expect_str_eq(symcache_module_name(NULL), "[unknown]");
	cr_expect_str_eq(symcache_module_name("/weird/dir/"), "/weird/dir/");
}

static int lru_freed;

static void lru_count_free(void *v)
{
	(void)v;
	lru_freed++;
}

Test(lru, del_removes_and_frees_once)
{
	struct lru *l = lru_new(2, lru_count_free);
	int a = 1, b = 2;
	bool found;

	cr_assert_not_null(l);
	cr_assert_eq(lru_put(l, "a", 1, &a), 0);
	cr_assert_eq(lru_put(l, "b", 1, &b), 0);
	cr_expect_eq(lru_del(l, "a", 1), 0);
	cr_expect_eq(lru_freed, 1);
	cr_expect_eq(lru_len(l), 1);
	cr_expect_null(lru_get(l, "a", 1, &found));
	cr_expect(!found);
	cr_expect_eq(lru_del(l, "a", 1), -ENOENT);
	cr_expect_eq(lru_freed, 1);
	lru_free(l);
	cr_expect_eq(lru_freed, 2);
}
