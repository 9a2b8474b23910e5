/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sysmacros.h>

#include "../aggregator/elfsym.h"
#include "../aggregator/procmaps.h"

static struct procmaps *parse_str(const char *s)
{
	struct procmaps *pm;

	cr_assert_eq(procmaps_parse(s, strlen(s), &pm), 0);
	return pm;
}

Test(procmaps, parses_fields_and_paths)
{
	struct procmaps *pm = parse_str(
		"55d0c0a00000-55d0c0a21000 r-xp 00001000 fd:01 1234567  /usr/bin/my prog\n"
		"7f0000000000-7f0000001000 rw-s 00000000 00:05 42 /dev/shm/x (deleted)\n"
		"7ffd1000-7ffd3000 r-xp 00000000 00:00 0                  [vdso]\n"
		"7f0000002000-7f0000003000 rw-p 00000000 00:00 0 \n"
		"7f0000004000-7f0000005000 ---p 00000000 00:00 0\n");
	const struct procmaps_entry *e;

	cr_assert_eq(procmaps_count(pm), 5);
	cr_expect_eq(procmaps_bad_lines(pm), 0);
	e = procmaps_lookup(pm, 0x55d0c0a00010);
	cr_assert_not_null(e);
	cr_expect_eq(e->offset, 0x1000);
	cr_expect_eq(e->dev, makedev(0xfd, 1));
	cr_expect_eq(e->ino, 1234567);
	cr_expect_eq(e->perms, PROCMAPS_R | PROCMAPS_X | PROCMAPS_P);
	cr_expect_str_eq(e->path, "/usr/bin/my prog");
	e = procmaps_lookup(pm, 0x7f0000000fff);
	cr_expect_str_eq(e->path, "/dev/shm/x");
	cr_expect(e->perms & PROCMAPS_DELETED);
	cr_expect(e->perms & PROCMAPS_S);
	cr_expect_str_eq(procmaps_lookup(pm, 0x7ffd2000)->path, "[vdso]");
	cr_expect_str_eq(procmaps_lookup(pm, 0x7f0000002000)->path, "");
	cr_expect_eq(procmaps_lookup(pm, 0x7f0000004000)->perms, PROCMAPS_P);
	procmaps_free(pm);
}

Test(procmaps, lookup_bounds)
{
	struct procmaps *pm = parse_str(
		"3000-4000 r-xp 00000000 00:00 0 /b\n"
		"1000-2000 r-xp 00000000 00:00 0 /a\n");

	cr_expect_null(procmaps_lookup(pm, 0));
	cr_expect_null(procmaps_lookup(pm, 0xfff));
	cr_expect_str_eq(procmaps_lookup(pm, 0x1000)->path, "/a");
	cr_expect_str_eq(procmaps_lookup(pm, 0x1fff)->path, "/a");
	cr_expect_null(procmaps_lookup(pm, 0x2000));
	cr_expect_str_eq(procmaps_lookup(pm, 0x3000)->path, "/b");
	cr_expect_null(procmaps_lookup(pm, 0x4000));
	cr_expect_null(procmaps_lookup(pm, UINT64_MAX));
	cr_expect_str_eq(procmaps_entry_at(pm, 0)->path, "/a");
	cr_expect_null(procmaps_entry_at(pm, 2));
	procmaps_free(pm);
}

Test(procmaps, overlapping_entries_dropped)
{
	struct procmaps *pm = parse_str(
		"1000-3000 r-xp 00000000 00:00 0 /a\n"
		"2000-4000 r-xp 00000000 00:00 0 /evil\n");

	cr_expect_eq(procmaps_count(pm), 1);
	cr_expect_eq(procmaps_bad_lines(pm), 1);
	cr_expect_str_eq(procmaps_lookup(pm, 0x2500)->path, "/a");
	procmaps_free(pm);
}

/* Inline strings: Criterion re-executes the test binary, so with ASLR a
 * parameter must not hold pointers. */
struct hostile_line {
	char s[96];
};

static struct hostile_line hostile_lines[] = {
	{ "zzzz-2000 r-xp 00000000 08:01 1 /x" },
	{ "1000-2000 r-xp" },
	{ "1000-2000 r-xp 00000000 08:01" },
	{ "1000-2000 r-xp 00000000 08:01 " },
	{ "11111111111111111-22222222222222222 r-xp 00000000 08:01 1 /x" },
	{ "1000-2000 r-xp 11111111111111111 08:01 1 /x" },
	{ "2000-1000 r-xp 00000000 08:01 1 /x" },
	{ "1000-1000 r-xp 00000000 08:01 1 /x" },
	{ "1000-2000 rwxq 00000000 08:01 1 /x" },
	{ "1000-2000 r-x 00000000 08:01 1 /x" },
	{ "1000-2000 r-xp 00000000 0801 1 /x" },
	{ "1000-2000 r-xp 00000000 fffff:01 1 /x" },
	{ "1000-2000 r-xp 00000000 08:fffffff 1 /x" },
	{ "1000-2000 r-xp 00000000 08:01 99999999999999999999999 /x" },
	{ "1000-2000 r-xp 00000000 08:01 12x /x" },
	{ "1000-2000 r-xp 00000000 08:01 -1 /x" },
	{ "1000-2000\tr-xp 00000000 08:01 1 /x" },
	{ "-" },
	{ " 1000-2000 r-xp 00000000 08:01 1 /x" },
	{ "0x1000-2000 r-xp 00000000 08:01 1 /x" },
	{ "1000-2000 r-xp 00000000 08:01 1\x01/x" },
};

ParameterizedTestParameters(procmaps, hostile_line)
{
	return cr_make_param_array(struct hostile_line, hostile_lines,
				   sizeof(hostile_lines) / sizeof(hostile_lines[0]));
}

ParameterizedTest(struct hostile_line *line, procmaps, hostile_line)
{
	char buf[512];
	struct procmaps *pm;
	int n = snprintf(buf, sizeof(buf),
			 "%s\n5000-6000 r-xp 00000000 08:01 7 /good\n", line->s);

	cr_assert_eq(procmaps_parse(buf, (size_t)n, &pm), 0);
	cr_expect_eq(procmaps_bad_lines(pm), 1, "accepted: %s", line->s);
	cr_expect_eq(procmaps_count(pm), 1, "accepted: %s", line->s);
	cr_expect_str_eq(procmaps_lookup(pm, 0x5000)->path, "/good");
	procmaps_free(pm);
}

Test(procmaps, overlong_line_and_nul_bytes)
{
	size_t len = 3 * PROCMAPS_MAX_LINE;
	char *buf = malloc(len);
	struct procmaps *pm;
	int n;

	memset(buf, 'a', len);
	n = snprintf(buf, 64, "1000-2000 r-xp 00000000 08:01 1 /");
	buf[n] = 'a';
	buf[len - 1] = '\n';
	cr_assert_eq(procmaps_parse(buf, len, &pm), 0);
	cr_expect_eq(procmaps_count(pm), 0);
	cr_expect_eq(procmaps_bad_lines(pm), 1);
	procmaps_free(pm);
	/* Not NUL-terminated, embedded NULs, empty input. */
	cr_assert_eq(procmaps_parse("1000-2000 r-xp 0\0 08:01 1 /x", 28, &pm), 0);
	cr_expect_eq(procmaps_count(pm), 0);
	procmaps_free(pm);
	cr_assert_eq(procmaps_parse("", 0, &pm), 0);
	cr_expect_eq(procmaps_count(pm), 0);
	cr_expect_eq(procmaps_bad_lines(pm), 0);
	procmaps_free(pm);
	procmaps_free(NULL);
	free(buf);
}

Test(procmaps, read_fd_caps_size)
{
	char path[] = "/tmp/sp-maps-XXXXXX";
	struct procmaps *pm = (struct procmaps *)1;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(ftruncate(fd, PROCMAPS_MAX_BYTES + 1), 0);
	cr_expect_eq(procmaps_read_fd(fd, &pm), -EFBIG);
	cr_expect_null(pm);
	close(fd);
}

static int open_self_maps(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	return fd;
}

Test(procmaps, real_self_maps)
{
	struct procmaps *pm;
	const struct procmaps_entry *e;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int fd = open_self_maps(), local = 0;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	cr_assert_eq(procmaps_read_fd(fd, &pm), 0);
	close(fd);
	cr_expect_gt(procmaps_count(pm), 5);
	cr_expect_eq(procmaps_bad_lines(pm), 0);
	e = procmaps_lookup(pm, (uint64_t)(uintptr_t)&open_self_maps);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->path, exe);
	cr_expect(e->perms & PROCMAPS_X);
	e = procmaps_lookup(pm, (uint64_t)(uintptr_t)&local);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->path, "[stack]");
	procmaps_free(pm);
}

Test(procmaps, procmap_query_ioctl)
{
	struct procmaps_query_result q;
	struct elfsym *es;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int fd = open_self_maps(), ret, efd;
	const uint8_t *id;
	size_t idlen;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	ret = procmaps_query(fd, (uint64_t)(uintptr_t)&open_self_maps, &q);
	if (ret == -ENOTTY || ret == -EINVAL)
		cr_skip_test("PROCMAP_QUERY unsupported (kernel < 6.11)");
	cr_assert_eq(ret, 0, "procmaps_query: %d", ret);
	cr_expect_str_eq(q.e.path, exe);
	cr_expect(q.e.perms & PROCMAPS_X);
	cr_expect_leq(q.e.start, (uint64_t)(uintptr_t)&open_self_maps);
	cr_expect_gt(q.e.end, (uint64_t)(uintptr_t)&open_self_maps);
	cr_expect_neq(q.e.ino, 0);
	/* The kernel reads the build id of the mapped file for us. */
	efd = open(exe, O_RDONLY | O_CLOEXEC);
	cr_assert_eq(elfsym_open_fd(efd, &es), 0);
	close(efd);
	idlen = elfsym_build_id_raw(es, &id);
	if (idlen) {
		cr_expect_eq(q.build_id_len, idlen);
		cr_expect_arr_eq(q.build_id, id, idlen);
	}
	elfsym_free(es);
	cr_expect_eq(procmaps_query(fd, 0x1000, &q), -ENOENT);
	close(fd);
}
