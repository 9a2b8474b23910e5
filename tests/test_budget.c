// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_budget.c - P17, the privileged TCB stays small: at most 1,650
 * non-blank lines of C in probe/, the launcher included ("about 1,500" in
 * the design; SECURITY.md says what the 150 over it bought). bpf/ is not
 * counted: the verifier checks it. And splitprof-probe links directly to
 * nothing that parses rich formats (libelf, libdw, libcurl, TLS, protobuf, YAML, zlib, PCRE).
 * libbpf pulls libelf and libz in transitively, to read our own embedded
 * BPF object; only the direct NEEDED entries are checked.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#define PROBE_LINE_BUDGET	1650

/* The source tree: $SPLITPROF_SRC, else the current directory (make test
 * runs from the repo root; __FILE__ is relative under -ffile-prefix-map). */
static const char *src_dir(void)
{
	const char *s = getenv("SPLITPROF_SRC");
	static char probe[4096];

	s = s ? s : ".";
	snprintf(probe, sizeof(probe), "%s/probe/caps.c", s);
	if (access(probe, R_OK) != 0)
		cr_skip_test("no probe/ sources under %s (set SPLITPROF_SRC)", s);
	return s;
}

static long nonblank_lines(const char *path)
{
	char line[4096];
	long n = 0;
	FILE *f = fopen(path, "r");
	size_t i;

	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof(line), f)) {
		for (i = 0; line[i] && strchr(" \t\r\n\f\v", line[i]); i++)
			;
		n += line[i] != '\0';
	}
	fclose(f);
	return n;
}

static int is_c_source(const char *name)
{
	size_t l = strlen(name);

	return l > 2 && name[l - 2] == '.' &&
	       (name[l - 1] == 'c' || name[l - 1] == 'h');
}

Test(budget, probe_lines_within_budget)
{
	const char *src = src_dir();
	char dir[4096], path[8192];
	struct dirent *de;
	long total = 0, n;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/probe", src);
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		if (!is_c_source(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = nonblank_lines(path);
		cr_log_info("%5ld %s", n, path);
		total += n;
	}
	closedir(d);
	cr_log_info("probe/*.c probe/*.h: %ld non-blank lines (budget %d)",
		    total, PROBE_LINE_BUDGET);
	cr_expect_leq(total, PROBE_LINE_BUDGET,
		      "the probe has %ld non-blank lines, over the budget of %d",
		      total, PROBE_LINE_BUDGET);
}

Test(budget, probe_needs_no_parsing_libraries)
{
	static const char *const banned[] = {
		"libelf", "libdw", "libcurl", "libssl", "libcrypto",
		"libgnutls", "libprotobuf", "libyaml", "libz.", "libpcre",
		"liblzma", "libzstd",
	};
	const char *build = getenv("SPLITPROF_BUILD");
	char cmd[4200], line[512];
	int needed = 0;
	size_t i;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "readelf -d %s/splitprof-probe 2>&1",
		 build ? build : "build");
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		if (!strstr(line, "(NEEDED)"))
			continue;
		needed++;
		cr_log_info("probe NEEDED: %s", strchr(line, '['));
		for (i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
			cr_expect_null(strstr(line, banned[i]),
				       "splitprof-probe links %s directly: %s",
				       banned[i], line);
	}
	cr_expect_eq(pclose(p), 0, "`%s` failed", cmd);
	cr_expect_gt(needed, 0, "no NEEDED entries: is the probe built?");
}
