/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../aggregator/kallsyms.h"

/* Partly unsorted like the real file: modules come after vmlinux. */
static const char fixture[] =
	"ffffffff81000000 T _text\n"
	"ffffffff81000000 T _stext\n"
	"ffffffff81001000 T do_one\n"
	"ffffffff81001100 t do_two\n"
	"ffffffff81001200 W weak_one\n"
	"ffffffff81002000 D some_data\n"
	"ffffffff81003000 T _etext\n"
	"ffffffffc0002000 t ext4_helper\t[ext4]\n"
	"ffffffffc0001000 T ext4_main\t[ext4]\n"
	"ffffffffc0003000 d ext4_data\t[ext4]\n"
	"ffffffffc0010000 t xfs_fn\t[xfs]\n"
	"garbage line\n"
	"ffffffffc0020000 t bad_mod\t[unterminated\n"
	"fffffffffffffffffff T too_long_addr\n"
	"0000000000000000 A fixed_percpu_data\n";

static struct kallsyms *parse(const char *s)
{
	struct kallsyms *ks;
	int ret = kallsyms_parse(s, strlen(s), &ks);

	cr_assert_eq(ret, 0, "kallsyms_parse: %d", ret);
	return ks;
}

Test(kallsyms, fixture_lookup)
{
	struct kallsyms *ks = parse(fixture);
	const char *mod = "x";
	uint64_t off;

	cr_expect_eq(kallsyms_bad_lines(ks), 3);
	/* Aliases at one address: the first in the file wins. */
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffff81000010, &mod, &off), "_text");
	cr_expect_null(mod);
	cr_expect_eq(off, 0x10);
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffff810010ff, NULL, NULL), "do_one");
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffff81001100, NULL, NULL), "do_two");
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffff81001fff, NULL, NULL), "weak_one");
	/* A data symbol ends the text symbol before it. */
	cr_expect_null(kallsyms_lookup(ks, 0xffffffff81002000, NULL, NULL));
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffffc0001004, &mod, &off), "ext4_main");
	cr_expect_str_eq(mod, "ext4");
	cr_expect_eq(off, 4);
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffffc0002fff, &mod, NULL), "ext4_helper");
	cr_expect_null(kallsyms_lookup(ks, 0xffffffffc0003000, NULL, NULL));
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffffc0010010, &mod, NULL), "xfs_fn");
	cr_expect_str_eq(mod, "xfs");
	cr_expect_null(kallsyms_lookup(ks, 0x1000, NULL, NULL));
	kallsyms_free(ks);
}

Test(kallsyms, gaps_are_bounded)
{
	struct kallsyms *ks = parse(fixture);

	/* _etext is followed by nothing near: bounded by the max size. */
	cr_expect_str_eq(kallsyms_lookup(ks, 0xffffffff81003000 + 100, NULL, NULL),
			 "_etext");
	cr_expect_null(kallsyms_lookup(ks, 0xffffffff81003000 +
				       KALLSYMS_MAX_SYM_SIZE, NULL, NULL));
	cr_expect_null(kallsyms_lookup(ks, 0xffffffffc0010000 +
				       KALLSYMS_MAX_SYM_SIZE, NULL, NULL));
	kallsyms_free(ks);
}

Test(kallsyms, zero_addresses_are_eperm)
{
	static const char hidden[] =
		"0000000000000000 T _text\n"
		"0000000000000000 t do_one\n"
		"0000000000000000 t ext4_main\t[ext4]\n";
	struct kallsyms *ks = (struct kallsyms *)1;

	cr_expect_eq(kallsyms_parse(hidden, strlen(hidden), &ks), -EPERM);
	cr_expect_null(ks);
	cr_expect_eq(kallsyms_parse("", 0, &ks), -ENODATA);
	cr_expect_eq(kallsyms_parse("junk\n\n", 6, &ks), -ENODATA);
	kallsyms_free(NULL);
}

Test(kallsyms, find_by_name)
{
	struct kallsyms *ks = parse(fixture);
	uint64_t a;

	cr_expect_eq(kallsyms_find(ks, "do_two", &a), 0);
	cr_expect_eq(a, 0xffffffff81001100);
	cr_expect_eq(kallsyms_find(ks, "some_data", &a), -ENOENT);
	kallsyms_free(ks);
}

static struct kallsyms *open_real(void)
{
	struct kallsyms *ks;
	int fd, ret;

	if (geteuid() != 0)
		cr_skip_test("needs root for real /proc/kallsyms addresses");
	fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	ret = kallsyms_read_fd(fd, &ks);
	close(fd);
	if (ret == -EPERM)
		cr_skip_test("kallsyms addresses hidden (kptr_restrict)");
	cr_assert_eq(ret, 0, "kallsyms_read_fd: %d", ret);
	return ks;
}

/* Address of name read straight from the file (aliases are deduplicated
 * in the table, so kallsyms_find may not know every name). */
static uint64_t file_symbol_addr(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[1024], sym[512], type;
	unsigned long long a, found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %511s", &a, &type, sym) == 3 &&
		    strcmp(sym, name) == 0)
			found = a;
	if (f)
		fclose(f);
	cr_assert_neq(found, 0, "%s not in /proc/kallsyms", name);
	return found;
}

Test(kallsyms, real_kallsyms_vmlinux_symbol)
{
	struct kallsyms *ks = open_real();
	const char *names[] = { "__x64_sys_getppid", "do_sys_openat2" };
	const char *mod = "x", *got;
	uint64_t a, a2, off;
	size_t i;

	cr_expect_gt(kallsyms_count(ks), 1000);
	for (i = 0; i < 2; i++) {
		a = file_symbol_addr(names[i]);
		got = kallsyms_lookup(ks, a + 1, &mod, &off);
		cr_assert_not_null(got, "%s", names[i]);
		/* getppid has aliases (__ia32_/__x64_sys_getppid, __do_sys_):
		 * any of them at the same address is right. */
		cr_expect_eq(kallsyms_find(ks, got, &a2), 0);
		cr_expect_eq(a2, a, "%s -> %s", names[i], got);
		cr_expect_null(mod);
		cr_expect_eq(off, 1);
	}
	cr_expect_str_eq(kallsyms_lookup(ks, a + 2, NULL, NULL), "do_sys_openat2");
	kallsyms_free(ks);
}

/* The first text symbol of a module (any "[...]" line), if one is loaded. */
static int first_module_symbol(unsigned long long *addr, char *name,
			       char *mod)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[1024], type;
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%llx %c %511s [%127[^]]]", addr, &type,
			       name, mod) == 4 &&
			(type == 't' || type == 'T');
	if (f)
		fclose(f);
	return found;
}

Test(kallsyms, real_kallsyms_module_symbol)
{
	struct kallsyms *ks = open_real();
	unsigned long long addr;
	char name[512], mod[128];
	const char *got_mod = NULL, *got;
	uint64_t a;

	if (!first_module_symbol(&addr, name, mod)) {
		kallsyms_free(ks);
		cr_skip_test("no module text symbols in /proc/kallsyms");
	}
	got = kallsyms_lookup(ks, addr, &got_mod, NULL);
	cr_assert_not_null(got);
	/* Another alias at the same address may win; compare addresses. */
	cr_expect_eq(kallsyms_find(ks, got, &a), 0);
	cr_expect_eq(a, addr);
	cr_assert_not_null(got_mod);
	cr_expect_str_eq(got_mod, mod);
	kallsyms_free(ks);
}
