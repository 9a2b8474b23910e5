/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_launcher_config.c - one YAML file configures both processes. The
 * probe never parses YAML: under the launcher the aggregator sends it the
 * merged sample rate and switches as its first message (PROBE_CONFIG, see
 * test_probe.c for the probe's side); flags on the launcher's command line
 * override the file.
 *
 * The PROBE_CONFIG cases need only the built binaries; the launcher cases
 * record for real (root, BPF) and skip loudly otherwise.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"
#include "sp_ctl.h"

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

/*
 * Runs `splitprof-aggregator --control-fd 3 --send-probe-config -c yaml
 * [extra]` on one end of a socketpair and returns its first message (type
 * 0: none). Then hangs up: with no HELLO it gives up.
 */
static void first_message(const char *yaml, const char *extra,
			  struct sp_ctl_msg *m, struct lc_run *r)
{
	char path[PATH_MAX], exe[PATH_MAX], bdir[PATH_MAX], err[PATH_MAX];
	struct timeval tv = { .tv_sec = 10 };
	int sv[2];
	bool slow;
	pid_t pid;

	lc_file("agg.yaml", yaml, path);
	build_dir(bdir);
	path_join(exe, bdir, "splitprof-aggregator");
	path_join(err, lc_dir, "agg.err");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		redirect_or_die(2, err, O_WRONLY | O_CREAT | O_TRUNC);
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		execl(exe, exe, "--control-fd", "3", "--send-probe-config",
		      "-c", path, "--output-dir", lc_dir, extra, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(m, 0, sizeof(*m));
	if (sp_ctl_recv(sv[0], m) < 0)
		m->type = 0;
	close(sv[0]);
	r->status = wait_or_kill(pid, LC_RUN_MS, &slow);
	slurp(err, r->err, sizeof(r->err));
	cr_assert(!slow, "the aggregator did not exit; stderr:\n%s", r->err);
}

static void expect_probe_config(const char *yaml, const char *extra,
				uint32_t rate, uint32_t flags)
{
	struct sp_ctl_msg m;
	struct lc_run r;

	first_message(yaml, extra, &m, &r);
	cr_assert_eq(m.type, SP_MSG_PROBE_CONFIG, "first message type %u, "
		     "stderr:\n%s", m.type, r.err);
	cr_expect_eq(m.u.probe_config.sample_rate, rate, "for:\n%s", yaml);
	cr_expect_eq(m.u.probe_config.flags, flags, "for:\n%s", yaml);
}

Test(launcher_config, probe_config_of_defaults)
{
	expect_probe_config("collect_interval: 15s\n", NULL, 97, 0);
}

Test(launcher_config, probe_config_of_every_probe_key)
{
	expect_probe_config("sample_rate: 199\n"
			    "collect_user_profile: false\n"
			    "collect_kernel_profile: false\n"
			    "discover_commandline: true\n", NULL, 199,
			    SP_CONFIG_F_NO_USER | SP_CONFIG_F_NO_KERNEL);
}

Test(launcher_config, flags_override_the_file_in_probe_config)
{
	expect_probe_config("sample_rate: 199\n", "--sample-rate=101", 101, 0);
	expect_probe_config("sample_rate: 199\n", "--no-kernel-stacks", 199,
			    SP_CONFIG_F_NO_KERNEL);
}

/* A bad file: no message at all (the probe then stops, loading nothing). */
Test(launcher_config, bad_file_sends_no_probe_config)
{
	struct sp_ctl_msg m;
	struct lc_run r;

	first_message("sample_rate: 0\n", NULL, &m, &r);
	cr_expect_eq(m.type, 0, "a bad file sent message type %u", m.type);
	cr_expect(!exited(&r, 0), "the aggregator accepted a bad file");
	cr_expect(strstr(r.err, "agg.yaml") && strstr(r.err, "sample_rate"),
		  "the error does not name the file and sample_rate:\n%s",
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

/* A bad file: the aggregator stops, and the probe with it before it loads
 * anything (it waits for PROBE_CONFIG first). */
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
	cr_expect(strstr(r.err, "no valid configuration from the aggregator"),
		  "the probe did not stop for want of a configuration:\n%s",
		  r.err);
	cr_expect_null(strstr(r.err, "loaded BPF"),
		       "the probe loaded BPF anyway:\n%s", r.err);
}

/* An output folder that already exists and is not the aggregator's: the
 * launcher never chowns it (it could be /etc), the aggregator says so. */
Test(launcher_config, foreign_output_dir_named_clearly)
{
	char out[PATH_MAX];
	struct lc_run r;
	const char *args[] = { "--duration", "2s", "--output-dir", out, NULL };

	e2e_require();
	path_join(out, lc_dir, "roots-own");
	cr_assert(mkdir(out, 0700) == 0, "mkdir %s: %s", out, strerror(errno));
	lc_run(&r, "splitprof", args);
	cr_expect(!exited(&r, 0), "the launcher succeeded with a folder its "
		  "aggregator cannot use");
	cr_expect(strstr(r.err, "cannot use the output directory as uid"),
		  "no clear error:\n%s", r.err);
	cr_expect_null(strstr(r.err, "out of memory"), "misleading error:\n%s",
		       r.err);
}
