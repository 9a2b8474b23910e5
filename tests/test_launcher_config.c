/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_launcher_config.c - one YAML file configures both processes. The
 * probe never parses YAML: `splitprof -c FILE` asks
 * `splitprof-aggregator --probe-flags` (as the aggregator's user) for the
 * probe's flags, checks each line's shape and passes them on; flags on the
 * launcher's command line override the file.
 *
 * The --probe-flags cases need only the built binaries; the launcher cases
 * record for real (root, BPF) and skip loudly otherwise.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define LC_RUN_MS	30000
#define LC_OUT_MAX	16384

struct lc_run {
	int status;
	char out[LC_OUT_MAX], err[LC_OUT_MAX];
};

static char lc_dir[PATH_MAX];

static void lc_init(void)
{
	char tmpl[] = "/tmp/splitprof-launcher-config.XXXXXX";

	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	snprintf(lc_dir, sizeof(lc_dir), "%s", tmpl);
	/* the aggregator's user (nobody) reads the files in here */
	cr_assert(chmod(lc_dir, 0755) == 0, "chmod %s", lc_dir);
}

static void lc_fini(void)
{
	if (lc_dir[0] && !getenv("SPLITPROF_E2E_KEEP"))
		rm_rf(lc_dir);
}

TestSuite(launcher_config, .init = lc_init, .fini = lc_fini, .timeout = 90);

static void lc_file(const char *name, const char *text, char *path)
{
	FILE *f;

	path_join(path, lc_dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
	cr_assert(chmod(path, 0644) == 0, "chmod %s", path);
}

/* Runs build/<bin> with args (NULL-terminated, at most 12). */
static void lc_run(struct lc_run *r, const char *bin, const char *const args[])
{
	char exe[PATH_MAX], bdir[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
	char *argv[14];
	bool slow;
	size_t i;
	pid_t pid;

	build_dir(bdir);
	path_join(exe, bdir, bin);
	cr_assert(access(exe, X_OK) == 0, "%s: %s (make all)", exe,
		  strerror(errno));
	argv[0] = exe;
	for (i = 0; args[i] && i < 12; i++)
		argv[i + 1] = (char *)(uintptr_t)args[i];
	argv[i + 1] = NULL;
	path_join(out, lc_dir, "run.out");
	path_join(err, lc_dir, "run.err");
	pid = spawn(argv, out, err, SIGTERM);
	cr_assert(pid > 0, "fork: %s", strerror(errno));
	r->status = wait_or_kill(pid, LC_RUN_MS, &slow);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	cr_assert(!slow, "%s did not exit within %d ms; stderr:\n%s", bin,
		  LC_RUN_MS, r->err);
}

static bool exited(const struct lc_run *r, int code)
{
	return WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
}

static void expect_probe_flags(const char *yaml, const char *want)
{
	char path[PATH_MAX];
	struct lc_run r;
	const char *args[] = { "--probe-flags", "-c", path, NULL };

	lc_file("flags.yaml", yaml, path);
	lc_run(&r, "splitprof-aggregator", args);
	cr_assert(exited(&r, 0), "--probe-flags: wait status 0x%x; stderr:\n%s",
		  (unsigned int)r.status, r.err);
	cr_expect_str_eq(r.out, want, "for:\n%s", yaml);
}

Test(launcher_config, probe_flags_of_defaults)
{
	expect_probe_flags("collect_interval: 15s\n", "--sample-rate=97\n");
}

Test(launcher_config, probe_flags_of_every_probe_key)
{
	expect_probe_flags("sample_rate: 199\n"
			   "collect_user_profile: false\n"
			   "collect_kernel_profile: false\n"
			   "discover_commandline: true\n",
			   "--sample-rate=199\n--no-user-stacks\n"
			   "--no-kernel-stacks\n--discover-commandline\n");
}

Test(launcher_config, probe_flags_refuse_a_bad_file)
{
	char path[PATH_MAX];
	struct lc_run r;
	const char *args[] = { "--probe-flags", "-c", path, NULL };

	lc_file("bad.yaml", "sample_rate: 0\n", path);
	lc_run(&r, "splitprof-aggregator", args);
	cr_expect(!exited(&r, 0), "a bad file gave probe flags:\n%s", r.out);
	cr_expect_str_empty(r.out);
	cr_expect(strstr(r.err, path) && strstr(r.err, "sample_rate"),
		  "the error does not name %s and sample_rate:\n%s", path,
		  r.err);
}

/* Records 2 s with the launcher; returns after asserting it exited 0. */
static void lc_record(struct lc_run *r, const char *yaml, const char *rate)
{
	char cfg[PATH_MAX], out[PATH_MAX];
	const char *args[] = { "-c", cfg, "--duration", "2s",
			       "--output-dir", out, rate ? "--sample-rate" : NULL,
			       rate, NULL };

	e2e_require();
	lc_file("run.yaml", yaml, cfg);
	path_join(out, lc_dir, "profiles");
	lc_run(r, "splitprof", args);
	cr_assert(exited(r, 0), "launcher: wait status 0x%x; stderr:\n%s",
		  (unsigned int)r->status, r->err);
}

Test(launcher_config, file_sets_the_probe_rate)
{
	struct lc_run r;

	lc_record(&r, "sample_rate: 199\ncollect_kernel_profile: false\n",
		  NULL);
	cr_expect(strstr(r.out, "at 199 Hz"), "the summary does not say "
		  "199 Hz:\n%s\nstderr:\n%s", r.out, r.err);
	cr_expect_null(strstr(r.err, "but the probe samples"),
		       "the aggregator saw another rate:\n%s", r.err);
	cr_expect_null(strstr(r.err, "differ from the probe"),
		       "the stack switches did not reach the probe:\n%s",
		       r.err);
}

Test(launcher_config, command_line_overrides_the_file)
{
	struct lc_run r;

	lc_record(&r, "sample_rate: 199\n", "101");
	cr_expect(strstr(r.out, "at 101 Hz"), "the summary does not say "
		  "101 Hz:\n%s\nstderr:\n%s", r.out, r.err);
	cr_expect_null(strstr(r.err, "but the probe samples"),
		       "the aggregator saw another rate:\n%s", r.err);
}

/* A bad file stops the launcher before the probe loads anything. */
Test(launcher_config, bad_file_starts_nothing)
{
	char cfg[PATH_MAX], out[PATH_MAX];
	struct lc_run r;
	const char *args[] = { "-c", cfg, "--duration", "2s", "--output-dir",
			       out, NULL };

	if (geteuid() != 0)
		cr_skip_test("the launcher switches users: needs root");
	lc_file("bad.yaml", "sample_rate: fast\n", cfg);
	path_join(out, lc_dir, "profiles-bad");
	lc_run(&r, "splitprof", args);
	cr_expect(!exited(&r, 0), "the launcher accepted a bad file");
	cr_expect(strstr(r.err, cfg) && strstr(r.err, "sample_rate"),
		  "the error does not name %s and sample_rate:\n%s", cfg,
		  r.err);
	cr_expect_null(strstr(r.err, "probe:"),
		       "the probe started anyway:\n%s", r.err);
}
