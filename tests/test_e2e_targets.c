/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_e2e_targets.c - end to end, issue 6: a YAML config with a `targets`
 * list decides which processes are profiled and under which service_name.
 *
 * Four busy workloads run while the launcher records with -c:
 *
 *   wl_split    in cgroup .../docker-<A>.scope          target __container_id__: A
 *   wl_nopie    in cgroup .../cri-containerd-<B>.scope  target
 *               __meta_kubernetes_pod_container_id: containerd://B
 *   wl_syscall  in the test's cgroup                    target __process_pid__
 *   wl_stripped in the test's cgroup                    matches nothing
 *
 * with targets_only: true. The profiles must land in <out>/svc-a, svc-b,
 * svc-c (nothing else), each holding its own workload's functions and
 * binary and none of the others'; the unmatched workload must appear
 * nowhere, and the summary must count its samples as not profiled.
 *
 * A and B are random per run. The cgroups are made under
 * <cgroup mount>/splitprof-test.slice/ (the cgroup2 mount, else a v1
 * hierarchy) and removed at the end by the fini, also on failure; an atexit
 * does the same if the test process leaves another way. Empty leftovers of
 * a killed run are removed at the start.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define TG_DURATION		"10s"
#define TG_INTERVAL		"5s"
#define TG_RATE			97
#define TG_PERIOD		(1000000000 / TG_RATE)
#define TG_WORKLOAD_SECONDS	"60"	/* killed once the launcher exits */
#define TG_LAUNCHER_MS		40000	/* 10 s recording + start-up, flush */
#define TG_PPROF_MS		30000
/* 10 s at 97 Hz is ~970 samples for a workload with a CPU of its own; four
 * busy workloads on a 2-CPU runner still get ~480 each. */
#define TG_MIN_SAMPLES		100
#define TG_SLICE		"splitprof-test.slice"
#define TG_ID_HEX		64

enum { W_A, W_B, W_C, W_NONE, W_N };

struct tg_workload {
	const char *bin;		/* in $SPLITPROF_BUILD/workloads */
	const char *svc;		/* its directory; NULL: unmatched */
	const char *hot;		/* its hottest function */
	double hot_min;			/* least self share of hot (truth / 2) */
	const char *const funcs[5];	/* all its named functions */
};

static const struct tg_workload wl[W_N] = {
	[W_A] = { "wl_split", "svc-a", "hot_a", 0.20,
		  { "hot_a", "hot_b", "chain_leaf", "lib_hot", NULL } },
	[W_B] = { "wl_nopie", "svc-b", "np_hot", 0.35,
		  { "np_hot", "np_cold", NULL } },
	[W_C] = { "wl_syscall", "svc-c", "user_spin", 0.25,
		  { "user_spin", "sys_read_zero", NULL } },
	[W_NONE] = { "wl_stripped", NULL, "st_hot", 0,
		     { "st_hot", "st_cold", NULL } },
};

/* What the fini must undo; filled as things are made. */
static struct {
	char slice[PATH_MAX];		/* "" until made */
	char cg[2][PATH_MAX];		/* the two container cgroups */
	pid_t pids[W_N];
	pid_t launcher;
	char dir[PATH_MAX];		/* the temp folder */
	bool failed;			/* an expectation failed */
	bool passed;			/* reached the end, all fine */
	bool atexit_set;
} tg;

/* ------------------------------------------------------------------------
 * Clean-up: processes first (a populated cgroup cannot be removed).
 * ------------------------------------------------------------------------ */

static void tg_reap(pid_t *pid)
{
	bool slow;

	if (*pid <= 0)
		return;
	(void)kill(*pid, SIGKILL);
	(void)wait_or_kill(*pid, 5000, &slow);
	*pid = 0;
}

static void tg_cleanup(void)
{
	size_t i;

	tg_reap(&tg.launcher);
	for (i = 0; i < W_N; i++)
		tg_reap(&tg.pids[i]);
	for (i = 0; i < 2; i++) {
		if (tg.cg[i][0] && rmdir(tg.cg[i]) < 0 && errno != ENOENT)
			fprintf(stderr, "e2e_targets: cannot remove cgroup %s: "
				"%s\n", tg.cg[i], strerror(errno));
		tg.cg[i][0] = '\0';
	}
	/* Fails while another run uses it (ENOTEMPTY/EBUSY): theirs. */
	if (tg.slice[0])
		(void)rmdir(tg.slice);
	tg.slice[0] = '\0';
	if (tg.dir[0]) {
		if (!tg.passed || getenv("SPLITPROF_E2E_KEEP"))
			fprintf(stderr, "e2e_targets: recording kept in %s\n",
				tg.dir);
		else
			rm_rf(tg.dir);
		tg.dir[0] = '\0';
	}
}

static void tg_fini(void)
{
	tg_cleanup();
}

/* ------------------------------------------------------------------------
 * Cgroups.
 * ------------------------------------------------------------------------ */

/* A writable cgroup hierarchy's mount point: the cgroup2 one, else the
 * first v1 hierarchy (name=systemd preferred: it has no controllers that
 * could refuse a process). */
static bool cgroup_mount(char *out)
{
	char *line = NULL, mnt[PATH_MAX], fstype[64], v1[PATH_MAX] = "";
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) >= 0) {
		/* id parent maj:min root mount opts... - fstype source sopts */
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (strcmp(fstype, "cgroup2") == 0) {
			snprintf(out, PATH_MAX, "%s", mnt);
			found = true;
		} else if (strcmp(fstype, "cgroup") == 0 &&
			   (!v1[0] || strstr(sep, "name=systemd"))) {
			snprintf(v1, sizeof(v1), "%s", mnt);
		}
	}
	free(line);
	fclose(f);
	if (!found && v1[0]) {
		snprintf(out, PATH_MAX, "%s", v1);
		found = true;
	}
	return found;
}

/* Empty container cgroups a killed run left behind. */
static void remove_stale(const char *slice)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dp = opendir(slice);

	while (dp && (d = readdir(dp)))
		if (d->d_type == DT_DIR && d->d_name[0] != '.') {
			path_join(path, slice, d->d_name);
			(void)rmdir(path);	/* EBUSY if in use */
		}
	if (dp)
		closedir(dp);
}

static void random_id(char out[TG_ID_HEX + 1])
{
	unsigned char b[TG_ID_HEX / 2];
	size_t i;

	cr_assert(getrandom(b, sizeof(b), 0) == (ssize_t)sizeof(b),
		  "getrandom: %s", strerror(errno));
	for (i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void make_cgroup(int i, const char *name)
{
	char path[PATH_MAX];

	path_join(path, tg.slice, name);
	snprintf(tg.cg[i], sizeof(tg.cg[i]), "%s", path);
	cr_assert(mkdir(tg.cg[i], 0755) == 0, "mkdir %s: %s", tg.cg[i],
		  strerror(errno));
}

/* Moves pid into cg and checks /proc/pid/cgroup names it. */
static void enter_cgroup(const char *cg, pid_t pid, const char *leaf)
{
	char path[PATH_MAX], buf[4096];
	ssize_t n;
	int fd;

	path_join(path, cg, "cgroup.procs");
	fd = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	n = dprintf(fd, "%d\n", (int)pid);
	cr_assert(n > 0, "write %d to %s: %s", (int)pid, path, strerror(errno));
	close(fd);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	cr_assert(strstr(buf, leaf), "%s does not name %s:\n%s", path, leaf,
		  buf);
}

/* ------------------------------------------------------------------------
 * The run.
 * ------------------------------------------------------------------------ */

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
	cr_assert(chmod(path, mode) == 0, "chmod %s: %s", path,
		  strerror(errno));
}

static void write_config(const char *path, const char *id_a,
			 const char *id_b, pid_t pid_c)
{
	char text[3 * PATH_MAX];

	snprintf(text, sizeof(text),
		 "# written by tests/test_e2e_targets.c\n"
		 "targets_only: true\n"
		 "targets:\n"
		 "  - __container_id__: %s\n"
		 "    service_name: svc-a\n"
		 "    team: alpha\n"
		 "  - __meta_kubernetes_pod_container_id: containerd://%s\n"
		 "    service_name: svc-b\n"
		 "  - __process_pid__: \"%d\"\n"
		 "    service_name: svc-c\n"
		 "output_dir: %s/unused-profiles\n"
		 "local_output: true\n",
		 id_a, id_b, (int)pid_c, tg.dir);
	/* The aggregator reads it as nobody. */
	write_file(path, text, 0644);
}

/* Reads up to cap-1 bytes of path (the tail if longer). */
static void read_tail(const char *path, char *buf, size_t cap)
{
	size_t n = 0;
	long size;
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > (long)cap - 1)
		(void)fseek(f, size - (long)(cap - 1), SEEK_SET);
	else
		rewind(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* `go tool pprof -raw` over all profiles in pdir, merged, into raw. */
static void pprof_raw(const char *pdir, const char *raw, const char *err)
{
	char msg[4096];
	int status;

	status = pprof_raw_status(pdir, raw, err, TG_PPROF_MS);
	cr_assert(status != -1, "no *.pb.gz in %s, or go did not start", pdir);
	read_tail(err, msg, sizeof(msg));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "go tool pprof -raw %s/*.pb.gz failed (0x%x):\n%s", pdir,
		  (unsigned int)status, msg);
}

/* Does any mapping of p name the binary bin? */
static bool has_mapping_of(const struct pp_profile *p, const char *bin)
{
	char suffix[64];
	size_t i;

	snprintf(suffix, sizeof(suffix), "/%s", bin);
	for (i = 0; i < p->nmaps; i++)
		if (has_suffix(p->maps[i].file, suffix))
			return true;
	return false;
}

/* cr_expect that also remembers a failure; cond is evaluated once. */
#define tg_expect(cond, ...) do {		\
	bool tg_ok_ = (cond);			\
						\
	if (!tg_ok_)				\
		tg.failed = true;		\
	cr_expect(tg_ok_, __VA_ARGS__);		\
} while (0)

/* svc's merged profile holds workload w and no other one. */
static void check_target(const char *out, size_t w)
{
	char pdir[PATH_MAX], raw[PATH_MAX], err[PATH_MAX], name[64];
	struct pp_profile p;
	long long samples;
	double share;
	size_t o, k;

	path_join(pdir, out, wl[w].svc);
	snprintf(name, sizeof(name), "%s.raw", wl[w].svc);
	path_join(raw, tg.dir, name);
	snprintf(name, sizeof(name), "%s.pprof.err", wl[w].svc);
	path_join(err, tg.dir, name);
	pprof_raw(pdir, raw, err);
	pp_parse_file(&p, raw);
	samples = (long long)(pp_total(&p) / TG_PERIOD);
	tg_expect(samples >= TG_MIN_SAMPLES, "%s: %lld samples, want >= %d "
		  "(%s busy all along)", wl[w].svc, samples, TG_MIN_SAMPLES,
		  wl[w].bin);
	share = pp_self_share(&p, wl[w].hot);
	tg_expect(share >= wl[w].hot_min, "%s: %s has %.1f%% of the samples, "
		  "want >= %.0f%% (it is %s's hottest function)", wl[w].svc,
		  wl[w].hot, 100 * share, 100 * wl[w].hot_min, wl[w].bin);
	tg_expect(has_mapping_of(&p, wl[w].bin), "%s: no mapping of %s",
		  wl[w].svc, wl[w].bin);
	for (o = 0; o < W_N; o++) {
		if (o == w)
			continue;
		tg_expect(!has_mapping_of(&p, wl[o].bin),
			  "%s: has a mapping of %s (%s's workload)", wl[w].svc,
			  wl[o].bin, wl[o].svc ? wl[o].svc : "no target's");
		for (k = 0; wl[o].funcs[k]; k++)
			tg_expect(pp_loc_of(&p, wl[o].funcs[k]) == NULL,
				  "%s: holds %s of %s (%s's workload)",
				  wl[w].svc, wl[o].funcs[k], wl[o].bin,
				  wl[o].svc ? wl[o].svc : "no target's");
	}
	pp_free(&p);
}

/* "targets: N samples of processes matching no target were not profiled" */
static long long skipped_samples(const char *summary)
{
	const char *t = strstr(summary, "targets: ");
	long long n = -1;

	if (t && strstr(t, "samples of processes matching no target were "
			"not profiled"))
		(void)sscanf(t, "targets: %lld", &n);
	return n;
}

TestSuite(e2e_targets, .timeout = 150);

Test(e2e_targets, profiles_split_by_configured_target, .fini = tg_fini)
{
	char bdir[PATH_MAX], mnt[PATH_MAX], cfg[PATH_MAX], out[PATH_MAX];
	char lout[PATH_MAX], lerr[PATH_MAX], launcher[PATH_MAX];
	char dbg[PATH_MAX], bins[W_N][PATH_MAX], leaf[2][128];
	char id_a[TG_ID_HEX + 1], id_b[TG_ID_HEX + 1];
	char tmpl[] = "/tmp/splitprof-e2e-targets.XXXXXX";
	static char summary[16384], errtail[4096];
	bool timed_out = false, seen[W_N] = { false };
	struct dirent *d;
	int status;
	long long skipped;
	size_t i, n;
	DIR *dp;

	e2e_require();
	if (!tg.atexit_set) {
		tg.atexit_set = true;
		atexit(tg_cleanup);
	}
	build_dir(bdir);
	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	snprintf(tg.dir, sizeof(tg.dir), "%s", tmpl);
	/* The aggregator (nobody) reads the config in here. */
	cr_assert(chmod(tg.dir, 0755) == 0, "chmod %s", tg.dir);

	cr_assert(cgroup_mount(mnt), "no cgroup hierarchy mounted "
		  "(/proc/self/mountinfo)");
	path_join(tg.slice, mnt, TG_SLICE);
	cr_assert(mkdir(tg.slice, 0755) == 0 || errno == EEXIST, "mkdir %s: %s",
		  tg.slice, strerror(errno));
	remove_stale(tg.slice);
	random_id(id_a);
	random_id(id_b);
	snprintf(leaf[0], sizeof(leaf[0]), "docker-%s.scope", id_a);
	snprintf(leaf[1], sizeof(leaf[1]), "cri-containerd-%s.scope", id_b);
	make_cgroup(0, leaf[0]);
	make_cgroup(1, leaf[1]);

	for (i = 0; i < W_N; i++) {
		char rel[64];
		char *argv[] = { bins[i], TG_WORKLOAD_SECONDS, NULL };

		snprintf(rel, sizeof(rel), "workloads/%s", wl[i].bin);
		path_join(bins[i], bdir, rel);
		cr_assert(access(bins[i], X_OK) == 0, "%s: %s (make workloads)",
			  bins[i], strerror(errno));
		tg.pids[i] = spawn(argv, "/dev/null", "/dev/null", SIGKILL);
		cr_assert(tg.pids[i] > 0, "fork: %s", strerror(errno));
	}
	/* Before the launcher starts: the aggregator reads a process's
	 * cgroup once, at its first sample. */
	enter_cgroup(tg.cg[0], tg.pids[W_A], leaf[0]);
	enter_cgroup(tg.cg[1], tg.pids[W_B], leaf[1]);

	path_join(cfg, tg.dir, "splitprof.yaml");
	write_config(cfg, id_a, id_b, tg.pids[W_C]);
	path_join(out, tg.dir, "profiles");
	path_join(lout, tg.dir, "launcher.out");
	path_join(lerr, tg.dir, "launcher.err");
	path_join(launcher, bdir, "splitprof");
	path_join(dbg, bdir, "workloads/debug");
	{
		/* --debug-dir names wl_stripped's functions, so a leak of
		 * the unmatched workload would show by name too. */
		char *argv[] = {
			launcher, "-c", cfg, "--output-dir", out,
			"--duration", TG_DURATION,
			"--collect-interval", TG_INTERVAL,
			"--debug-dir", dbg, "-v", NULL,
		};

		tg.launcher = spawn(argv, lout, lerr, SIGTERM);
	}
	cr_assert(tg.launcher > 0, "fork: %s", strerror(errno));
	status = wait_or_kill(tg.launcher, TG_LAUNCHER_MS, &timed_out);
	tg.launcher = 0;
	read_tail(lerr, errtail, sizeof(errtail));
	read_tail(lout, summary, sizeof(summary));
	for (i = 0; i < W_N; i++) {
		pid_t pid = tg.pids[i];
		bool alive = kill(pid, 0) == 0;

		tg_reap(&tg.pids[i]);
		tg_expect(alive, "workload %s (pid %d) died during the "
			  "recording", wl[i].bin, (int)pid);
	}
	/* Workloads gone: the cgroups must go now (the fini retries). */
	for (i = 0; i < 2; i++) {
		tg_expect(rmdir(tg.cg[i]) == 0, "rmdir %s: %s", tg.cg[i],
			  strerror(errno));
		tg.cg[i][0] = '\0';
	}
	cr_assert(!timed_out, "launcher did not exit within %d ms of %s; "
		  "stderr tail:\n%s", TG_LAUNCHER_MS, TG_DURATION, errtail);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "launcher failed (wait status 0x%x); stderr tail:\n%s",
		  (unsigned int)status, errtail);

	/* The folder layout: exactly the three targets' directories. */
	dp = opendir(out);
	cr_assert_not_null(dp, "no output folder %s: %s\nstderr tail:\n%s",
			   out, strerror(errno), errtail);
	while ((d = readdir(dp))) {
		bool known = false;

		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		for (i = 0; i < W_N; i++)
			if (wl[i].svc && !strcmp(d->d_name, wl[i].svc))
				known = seen[i] = true;
		tg_expect(known, "%s/%s: not a configured target's folder "
			  "(targets_only: true; the unmatched %s must not be "
			  "profiled)", out, d->d_name, wl[W_NONE].bin);
	}
	closedir(dp);
	for (i = 0; i < W_N; i++) {
		char pdir[PATH_MAX];
		char **files;

		if (!wl[i].svc)
			continue;
		tg_expect(seen[i], "no folder %s/%s for %s's target",
			  out, wl[i].svc, wl[i].bin);
		path_join(pdir, out, wl[i].svc);
		files = list_profiles(pdir, &n);
		free_strv(files);
		tg_expect(n >= 1, "%s: no profile", pdir);
		if (seen[i] && n >= 1)
			check_target(out, i);
	}

	skipped = skipped_samples(summary);
	tg_expect(skipped > 0, "the summary does not say that samples of "
		  "processes matching no target were not profiled (> 0); "
		  "summary:\n%s", summary);
	/* Below: the unmatched workload was busy for the whole 10 s. */
	tg_expect(skipped >= TG_MIN_SAMPLES, "only %lld samples not profiled; "
		  "the unmatched %s alone was busy all along", skipped,
		  wl[W_NONE].bin);
	tg.passed = !tg.failed;
}
