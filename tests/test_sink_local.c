// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_sink_local.c - the local folder sink: atomic files, safe service
 * directories, retention, index rebuilt at startup.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink_local.h"

/* 2025-11-21T20:35:00.123Z */
#define T0	1763757300123000000ll
#define MS	1000000ll

static char root[64];
static int rootfd = -1;

static void setup(void)
{
	strcpy(root, "/tmp/test_sink_XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(rootfd, 0);
}

static void teardown(void)
{
	char cmd[128];

	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

/* Entries of dir (relative to root; "" = root), "." and ".." left out. */
static int count_entries(const char *dir, const char *prefix)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	d = opendir(path);
	cr_assert_not_null(d, "opendir %s", path);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static bool exists(const char *rel)
{
	struct stat st;

	return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void write_ok(struct sink_local *s, const char *svc, int64_t t,
		     size_t len)
{
	static char buf[4096];

	cr_assert_leq(len, sizeof(buf));
	memset(buf, 'p', len);
	cr_assert_eq(sink_local_write(s, svc, t, buf, len), 0, "write %s", svc);
}

TestSuite(sink_local, .init = setup, .fini = teardown);

Test(sink_local, file_lands_atomically_under_service_dir)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 0);
	struct sink_local_stats st;
	char buf[16] = { 0 };
	int fd;

	cr_assert_not_null(s);
	cr_assert_eq(sink_local_write(s, "checkout", T0, "pprof-bytes", 11), 0);
	fd = openat(rootfd, "checkout/20251121T203500.123Z.pb.gz", O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 11);
	cr_assert_str_eq(buf, "pprof-bytes");
	close(fd);
	cr_assert_eq(count_entries("checkout", ".tmp"), 0, "no temp file left");
	cr_assert_eq(count_entries("checkout", ""), 1);
	sink_local_stats(s, &st);
	cr_assert(st.written == 1 && st.bytes == 11 && st.files == 1 &&
		  st.total_bytes == 11 && st.errors == 0);
	sink_local_free(s);
}

Test(sink_local, same_millisecond_gets_a_counter_suffix)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 0);

	write_ok(s, "svc", T0, 5);
	write_ok(s, "svc", T0, 5);
	write_ok(s, "svc", T0 + 999, 5);	/* same ms */
	cr_assert(exists("svc/20251121T203500.123Z.pb.gz"));
	cr_assert(exists("svc/20251121T203500.123Z-1.pb.gz"));
	cr_assert(exists("svc/20251121T203500.123Z-2.pb.gz"));
	sink_local_free(s);
}

/* Arrays, not pointers: Criterion may run each case in a fresh process. */
struct hostile {
	char in[16];
	char dir[16];
};

ParameterizedTestParameters(sink_local, hostile_service_names)
{
	static struct hostile cases[] = {
		{ "../../etc", "_._.._etc" },
		{ "a/b", "a_b" },
		{ ".hidden", "_hidden" },
		{ "", "unspecified" },
		{ "..", "_." },
		{ "\x01", "_" },
		{ "caf\xc3\xa9 \xff", "caf\xc3\xa9__" },
	};

	return cr_make_param_array(struct hostile, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct hostile *h, sink_local, hostile_service_names)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 0);
	char dir[SINK_LOCAL_SERVICE_SIZE];
	char rel[300];

	sink_local_service_dir(h->in, dir);
	cr_assert_str_eq(dir, h->dir);
	write_ok(s, h->in, T0, 3);
	snprintf(rel, sizeof(rel), "%s/20251121T203500.123Z.pb.gz", h->dir);
	cr_assert(exists(rel), "%s", rel);
	cr_assert_eq(count_entries("", ""), 1, "one service dir, nothing else");
	sink_local_free(s);
}

Test(sink_local, long_service_name_is_cut_to_200_bytes)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 0);
	char *name = malloc(5001), dir[SINK_LOCAL_SERVICE_SIZE];

	memset(name, 'x', 5000);
	name[5000] = '\0';
	sink_local_service_dir(name, dir);
	cr_assert_eq(strlen(dir), 200);
	write_ok(s, name, T0, 3);
	cr_assert_eq(count_entries(dir, ""), 1);
	free(name);
	sink_local_free(s);
}

Test(sink_local, symlinked_service_dir_is_refused)
{
	char outside[64] = "/tmp/test_sink_out_XXXXXX", cmd[128];
	struct sink_local *s = sink_local_new(rootfd, 0, 0);
	struct sink_local_stats st;
	DIR *d;
	int n = 0;

	cr_assert_not_null(mkdtemp(outside));
	cr_assert_eq(symlinkat(outside, rootfd, "evil"), 0);
	cr_assert_lt(sink_local_write(s, "evil", T0, "x", 1), 0);
	d = opendir(outside);
	while (readdir(d))
		n++;
	closedir(d);
	cr_assert_eq(n, 2, "nothing written through the symlink");
	sink_local_stats(s, &st);
	cr_assert(st.errors == 1 && st.written == 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", outside);
	cr_assert_eq(system(cmd), 0);
	sink_local_free(s);
}

Test(sink_local, retention_keeps_the_newest_max_files)
{
	struct sink_local *s = sink_local_new(rootfd, 10, 0);
	struct sink_local_stats st;
	int i;

	for (i = 0; i < 50; i++)	/* two services, interleaved */
		write_ok(s, i % 2 ? "odd" : "even", T0 + i * 1000 * MS, 10);
	cr_assert_eq(count_entries("odd", "") + count_entries("even", ""), 10);
	/* The newest are i = 40..49: 20:35:40.123 .. 20:35:49.123. */
	cr_assert(exists("even/20251121T203540.123Z.pb.gz"));
	cr_assert(exists("odd/20251121T203549.123Z.pb.gz"));
	cr_assert_not(exists("odd/20251121T203539.123Z.pb.gz"));
	sink_local_stats(s, &st);
	cr_assert(st.files == 10 && st.deleted_by_retention == 40 &&
		  st.written == 50 && st.total_bytes == 100 && st.errors == 0);
	sink_local_free(s);
}

Test(sink_local, retention_keeps_total_bytes_under_max_bytes)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 1000);
	struct sink_local_stats st;
	int i;

	for (i = 0; i < 10; i++)
		write_ok(s, "svc", T0 + i * MS, 300);
	sink_local_stats(s, &st);
	cr_assert_eq(st.files, 3);
	cr_assert_eq(st.total_bytes, 900);
	cr_assert_eq(count_entries("svc", ""), 3);
	cr_assert(exists("svc/20251121T203500.132Z.pb.gz"));
	cr_assert(exists("svc/20251121T203500.130Z.pb.gz"));
	cr_assert_not(exists("svc/20251121T203500.129Z.pb.gz"));
	sink_local_free(s);
}

Test(sink_local, file_bigger_than_max_bytes_is_kept_alone)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 100);
	struct sink_local_stats st;

	write_ok(s, "svc", T0, 50);
	write_ok(s, "svc", T0 + MS, 300);
	sink_local_stats(s, &st);
	cr_assert(st.files == 1 && st.total_bytes == 300);
	cr_assert(exists("svc/20251121T203500.124Z.pb.gz"));
	sink_local_free(s);
}

Test(sink_local, index_survives_restart)
{
	struct sink_local *s = sink_local_new(rootfd, 0, 0);
	struct sink_local_stats st;
	int i, fd;

	for (i = 0; i < 5; i++)
		write_ok(s, i < 3 ? "a" : "b", T0 + i * MS, 100 + i);
	sink_local_free(s);
	/* A crash leftover, and a file that is not ours. */
	fd = openat(rootfd, "a/.tmp-1-1", O_CREAT | O_WRONLY, 0640);
	close(fd);
	fd = openat(rootfd, "a/notes.txt", O_CREAT | O_WRONLY, 0640);
	close(fd);

	s = sink_local_new(rootfd, 0, 0);
	cr_assert_not_null(s);
	sink_local_stats(s, &st);
	cr_assert_eq(st.files, 5);
	cr_assert_eq(st.total_bytes, 100 + 101 + 102 + 103 + 104);
	cr_assert_not(exists("a/.tmp-1-1"), "stale temp removed");
	cr_assert(exists("a/notes.txt"), "foreign file untouched");
	sink_local_free(s);

	/* Smaller limits at startup: the two oldest go. */
	s = sink_local_new(rootfd, 3, 0);
	sink_local_stats(s, &st);
	cr_assert(st.files == 3 && st.deleted_by_retention == 2);
	cr_assert_not(exists("a/20251121T203500.123Z.pb.gz"));
	cr_assert_not(exists("a/20251121T203500.124Z.pb.gz"));
	cr_assert(exists("a/20251121T203500.125Z.pb.gz"));
	write_ok(s, "b", T0 + 10 * MS, 1);
	cr_assert_not(exists("a/20251121T203500.125Z.pb.gz"), "oldest overall");
	sink_local_free(s);
}

Test(sink_local, free_null_is_noop)
{
	sink_local_free(NULL);
}
