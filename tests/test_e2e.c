/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_e2e.c - end to end: profile the workloads of tests/workloads through
 * the launcher and check the pprof files with `go tool pprof`.
 *
 * One recording serves every test. Criterion runs each test in its own
 * process (several at once), so the first test to take the lock on the
 * shared folder records and runs pprof, and the others wait on the lock and
 * read the results:
 *
 *   $SPLITPROF_E2E_DIR/            made by the PRE_ALL hook, removed by the
 *                                  POST_ALL hook unless a test failed
 *     lock                         flock(2)ed while recording
 *     state                        "key value" lines, written last
 *     launcher.out, launcher.err   the launcher's stdout (summary), stderr
 *     profiles/<comm>/<UTC time>.pb.gz    the launcher's --output-dir
 *     <comm>.raw, <comm>.pprof.err `go tool pprof -raw` of all its profiles
 *
 * The workloads' true CPU split is in their source; each function's share
 * of the samples must be within E2E_TOLERANCE of it.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define E2E_DIR_ENV		"SPLITPROF_E2E_DIR"
#define E2E_KEEP_ENV		"SPLITPROF_E2E_KEEP"
/* 20 s: at 97 Hz, 4 busy workloads on a 2-CPU runner get ~900 samples each,
 * so a 50 % share has a sampling error (1 sigma) of ~1.7 points, 5 points
 * are 3 sigma. 10 s would be 2 sigma: a flaky test. */
#define E2E_DURATION		"20s"
#define E2E_INTERVAL		"5s"
#define E2E_RATE		97
#define E2E_PERIOD		(1000000000 / E2E_RATE)	/* ns, truncated */
/* Workloads outlive the recording whatever the launcher's start-up time;
 * they are killed once it exits. */
#define E2E_WORKLOAD_SECONDS	"60"
#define E2E_LAUNCHER_MS		50000	/* 20 s recording + start-up, flush */
#define E2E_TERM_MS		10000	/* after SIGTERM, before SIGKILL */
#define E2E_PPROF_MS		30000
#define E2E_TOLERANCE		0.05	/* absolute share, 5 percentage points */
#define E2E_MIN_SAMPLES		300	/* per workload, for the shares to mean much */
#define E2E_MAX_FRAMES		512

static const char *const e2e_workloads[] = {
	"wl_split", "wl_nopie", "wl_stripped", "wl_syscall",
};
#define E2E_NWORKLOADS	(sizeof(e2e_workloads) / sizeof(e2e_workloads[0]))

/* ------------------------------------------------------------------------
 * `go tool pprof -raw` output, parsed. The format (profile.String() of
 * github.com/google/pprof/profile):
 *
 *   PeriodType: cpu nanoseconds
 *   Period: 10309278
 *   Samples:
 *   cpu/nanoseconds                        (type/unit per value column)
 *     123456  123456: 1 2 3                (values ':' location ids, leaf first)
 *                   service_name:[wl_split]   (labels of the sample above)
 *   Locations
 *        1: 0x1189 M=1 hot_a file.c:12 s=0      (one line per Line, the
 *                  main file.c:40 s=0            innermost inlined first)
 *   Mappings
 *   1: 0x1000/0x2000/0x0 /path/to/file buildid [FN]
 * ------------------------------------------------------------------------ */

struct pp_map {
	uint64_t id;
	char *file;
	char *build_id;
};

struct pp_loc {
	uint64_t id;
	uint64_t address;
	uint64_t map_id;	/* 0: none */
	/* The function the address really lies in: the last (outermost)
	 * line, so inlined helpers (wl_burn) never hide the workload's
	 * function. NULL when the location has no function. */
	char *func;
};

struct pp_sample {
	int64_t value;		/* of the cpu/nanoseconds column */
	uint64_t *locs;		/* leaf first */
	size_t nlocs;
	char *labels;		/* the label lines, joined; NULL if none */
};

struct pp_profile {
	char *sample_types;	/* e.g. "cpu/nanoseconds" */
	char *period_type;	/* e.g. "cpu nanoseconds" */
	int64_t period;
	int value_col;
	struct pp_sample *samples;
	size_t nsamples;
	struct pp_loc *locs;
	size_t nlocs;
	struct pp_map *maps;
	size_t nmaps;
};

struct pp_frame {
	const char *func;	/* "??" when unknown */
	const struct pp_map *map;
	bool kernel;
};

static void *xgrow(void *p, size_t n, size_t size)
{
	/* Grows by doubling: called with the new count each time it
	 * reaches a power of two. */
	void *q;

	if (n && (n & (n - 1)) != 0)
		return p;
	q = realloc(p, (n ? 2 * n : 16) * size);
	cr_assert_not_null(q, "out of memory");
	return q;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	cr_assert_not_null(d, "out of memory");
	return d;
}

static char *skip_space(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* "samples/count cpu/nanoseconds": remembers the column of cpu time. */
static void pp_parse_types(struct pp_profile *p, char *line)
{
	char *save = NULL, *tok;
	int col = 0;

	p->sample_types = xstrdup(skip_space(line));
	p->value_col = 0;
	for (tok = strtok_r(line, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save), col++)
		if (strcmp(tok, "cpu/nanoseconds") == 0)
			p->value_col = col;
}

/* "   v1   v2: id id id". Returns false if the line is not a sample. */
static bool pp_parse_sample(struct pp_profile *p, char *line)
{
	struct pp_sample s = { 0 };
	char *cur = line, *end;
	int col = 0;
	long long v;

	for (;;) {
		errno = 0;
		v = strtoll(cur, &end, 10);
		if (end == cur || errno)
			break;
		if (col++ == p->value_col)
			s.value = v;
		cur = end;
	}
	if (col == 0 || *cur != ':')
		return false;
	cur++;
	for (;;) {
		unsigned long long id;

		errno = 0;
		id = strtoull(cur, &end, 10);
		if (end == cur || errno)
			break;
		s.locs = xgrow(s.locs, s.nlocs, sizeof(*s.locs));
		s.locs[s.nlocs++] = id;
		cur = end;
	}
	p->samples = xgrow(p->samples, p->nsamples, sizeof(*p->samples));
	p->samples[p->nsamples++] = s;
	return true;
}

static void pp_add_label_line(struct pp_profile *p, const char *line)
{
	struct pp_sample *s;
	size_t old, add = strlen(line);
	char *n;

	if (p->nsamples == 0)
		return;
	s = &p->samples[p->nsamples - 1];
	old = s->labels ? strlen(s->labels) : 0;
	n = realloc(s->labels, old + add + 2);
	cr_assert_not_null(n, "out of memory");
	n[old] = '\0';
	if (old)
		strcat(n, " ");
	strcat(n, line);
	s->labels = n;
}

/* "     1: 0x1189 M=1 [F] hot_a file.c:12 s=0" or a continuation line
 * "             main file.c:40 s=0" naming the next outer inlined caller. */
static void pp_parse_location(struct pp_profile *p, char *line)
{
	char *save = NULL, *tok, *t = skip_space(line);
	struct pp_loc l = { 0 };
	size_t n = strspn(t, "0123456789");

	if (n == 0 || t[n] != ':') {
		/* A continuation line: the outer function replaces the
		 * inner one. */
		tok = strtok_r(t, " \t", &save);
		if (tok && p->nlocs) {
			free(p->locs[p->nlocs - 1].func);
			p->locs[p->nlocs - 1].func = xstrdup(tok);
		}
		return;
	}
	l.id = strtoull(t, NULL, 10);
	tok = strtok_r(t + n + 1, " \t", &save);
	if (tok)
		l.address = strtoull(tok, NULL, 16);
	tok = tok ? strtok_r(NULL, " \t", &save) : NULL;
	if (tok && strncmp(tok, "M=", 2) == 0) {
		l.map_id = strtoull(tok + 2, NULL, 10);
		tok = strtok_r(NULL, " \t", &save);
	}
	if (tok && strcmp(tok, "[F]") == 0)
		tok = strtok_r(NULL, " \t", &save);
	if (tok)
		l.func = xstrdup(tok);
	p->locs = xgrow(p->locs, p->nlocs, sizeof(*p->locs));
	p->locs[p->nlocs++] = l;
}

/* "1: 0x1000/0x2000/0x0 FILE BUILDID BITS", single spaces, FILE and
 * BUILDID possibly empty. */
static void pp_parse_mapping(struct pp_profile *p, char *line)
{
	char *t = skip_space(line), *rest, *file, *bid;
	struct pp_map m = { 0 };
	size_t n = strspn(t, "0123456789");

	if (n == 0 || t[n] != ':')
		return;
	m.id = strtoull(t, NULL, 10);
	rest = strchr(skip_space(t + n + 1), ' ');	/* past the ranges */
	file = rest ? rest + 1 : NULL;
	bid = file ? strchr(file, ' ') : NULL;
	if (bid) {
		*bid++ = '\0';
		bid[strcspn(bid, " ")] = '\0';
	}
	m.file = xstrdup(file ? file : "");
	m.build_id = xstrdup(bid ? bid : "");
	p->maps = xgrow(p->maps, p->nmaps, sizeof(*p->maps));
	p->maps[p->nmaps++] = m;
}

enum pp_section { PP_HEADER, PP_TYPES, PP_SAMPLES, PP_LOCATIONS, PP_MAPPINGS };

static enum pp_section pp_parse_line(struct pp_profile *p,
				     enum pp_section sec, char *line)
{
	if (strncmp(line, "PeriodType:", 11) == 0) {
		p->period_type = xstrdup(skip_space(line + 11));
		return sec;
	}
	if (strncmp(line, "Period:", 7) == 0) {
		p->period = strtoll(line + 7, NULL, 10);
		return sec;
	}
	if (strcmp(line, "Samples:") == 0)
		return PP_TYPES;
	if (strcmp(line, "Locations") == 0)
		return PP_LOCATIONS;
	if (strcmp(line, "Mappings") == 0)
		return PP_MAPPINGS;
	switch (sec) {
	case PP_TYPES:
		pp_parse_types(p, line);
		return PP_SAMPLES;
	case PP_SAMPLES:
		if (!pp_parse_sample(p, line) && *skip_space(line))
			pp_add_label_line(p, skip_space(line));
		return sec;
	case PP_LOCATIONS:
		pp_parse_location(p, line);
		return sec;
	case PP_MAPPINGS:
		pp_parse_mapping(p, line);
		return sec;
	default:
		return sec;
	}
}

static void pp_parse_file(struct pp_profile *p, const char *path)
{
	enum pp_section sec = PP_HEADER;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	memset(p, 0, sizeof(*p));
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
	while (getline(&line, &cap, f) >= 0) {
		chomp(line);
		sec = pp_parse_line(p, sec, line);
	}
	free(line);
	fclose(f);
}

static const struct pp_map *pp_map_by_id(const struct pp_profile *p,
					 uint64_t id)
{
	size_t i;

	if (id == 0)
		return NULL;
	if (id <= p->nmaps && p->maps[id - 1].id == id)
		return &p->maps[id - 1];
	for (i = 0; i < p->nmaps; i++)
		if (p->maps[i].id == id)
			return &p->maps[i];
	return NULL;
}

static const struct pp_loc *pp_loc_by_id(const struct pp_profile *p,
					 uint64_t id)
{
	size_t i;

	if (id && id <= p->nlocs && p->locs[id - 1].id == id)
		return &p->locs[id - 1];
	for (i = 0; i < p->nlocs; i++)
		if (p->locs[i].id == id)
			return &p->locs[i];
	return NULL;
}

static bool name_has_prefix(const char *name, const char *const *prefixes)
{
	for (; *prefixes; prefixes++)
		if (strncmp(name, *prefixes, strlen(*prefixes)) == 0)
			return true;
	return false;
}

/* Kernel frames: by their mapping ("vmlinux", "[kernel.kallsyms]"), their
 * address (upper half on x86-64 and arm64), or a well-known name. */
static bool pp_is_kernel(const struct pp_loc *l, const struct pp_map *m)
{
	static const char *const names[] = {
		"entry_SYSCALL", "do_syscall_64", "x64_sys_call",
		"__x64_sys_", "__arm64_sys_", "__do_sys_", "ksys_", "vfs_",
		"el0_svc", "invoke_syscall", NULL,
	};

	if (m && (strstr(m->file, "vmlinux") || strstr(m->file, "kernel") ||
		  strstr(m->file, "kallsyms")))
		return true;
	if (l->address >= 0x8000000000000000ull)
		return true;
	return l->func && name_has_prefix(l->func, names);
}

/* The sample's frames, leaf first. */
static size_t pp_frames(const struct pp_profile *p, const struct pp_sample *s,
			struct pp_frame *out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < s->nlocs && n < max; i++) {
		const struct pp_loc *l = pp_loc_by_id(p, s->locs[i]);

		if (!l)
			continue;
		out[n].map = pp_map_by_id(p, l->map_id);
		out[n].func = l->func ? l->func : "??";
		out[n].kernel = pp_is_kernel(l, out[n].map);
		n++;
	}
	return n;
}

/* Index of the leaf-most user-space frame, n if there is none. */
static size_t pp_user_leaf(const struct pp_frame *f, size_t n)
{
	size_t i = 0;

	while (i < n && f[i].kernel)
		i++;
	return i;
}

static int64_t pp_total(const struct pp_profile *p)
{
	int64_t sum = 0;
	size_t i;

	for (i = 0; i < p->nsamples; i++)
		sum += p->samples[i].value;
	return sum;
}

/* Share of the cpu time whose leaf-most user frame is func ("self"). */
static double pp_self_share(const struct pp_profile *p, const char *func)
{
	struct pp_frame f[E2E_MAX_FRAMES];
	int64_t hit = 0, total = pp_total(p);
	size_t i, n, leaf;

	for (i = 0; i < p->nsamples; i++) {
		n = pp_frames(p, &p->samples[i], f, E2E_MAX_FRAMES);
		leaf = pp_user_leaf(f, n);
		if (leaf < n && strcmp(f[leaf].func, func) == 0)
			hit += p->samples[i].value;
	}
	return total > 0 ? (double)hit / (double)total : 0;
}

/* Index of func among f[from..n), n if absent. */
static size_t pp_find(const struct pp_frame *f, size_t from, size_t n,
		      const char *func)
{
	for (; from < n; from++)
		if (strcmp(f[from].func, func) == 0)
			return from;
	return n;
}

/* Share of the cpu time with func anywhere on the stack ("cumulative"). */
static double pp_cum_share(const struct pp_profile *p, const char *func)
{
	struct pp_frame f[E2E_MAX_FRAMES];
	int64_t hit = 0, total = pp_total(p);
	size_t i, n;

	for (i = 0; i < p->nsamples; i++) {
		n = pp_frames(p, &p->samples[i], f, E2E_MAX_FRAMES);
		if (pp_find(f, 0, n, func) < n)
			hit += p->samples[i].value;
	}
	return total > 0 ? (double)hit / (double)total : 0;
}

/* The first location whose function is func, NULL if none. */
static const struct pp_loc *pp_loc_of(const struct pp_profile *p,
				      const char *func)
{
	size_t i;

	for (i = 0; i < p->nlocs; i++)
		if (p->locs[i].func && strcmp(p->locs[i].func, func) == 0)
			return &p->locs[i];
	return NULL;
}

static void pp_free(struct pp_profile *p)
{
	size_t i;

	for (i = 0; i < p->nsamples; i++) {
		free(p->samples[i].locs);
		free(p->samples[i].labels);
	}
	for (i = 0; i < p->nlocs; i++)
		free(p->locs[i].func);
	for (i = 0; i < p->nmaps; i++) {
		free(p->maps[i].file);
		free(p->maps[i].build_id);
	}
	free(p->samples);
	free(p->locs);
	free(p->maps);
	free(p->sample_types);
	free(p->period_type);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------------
 * Processes and files.
 * ------------------------------------------------------------------------ */

static void path_join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", a, b);
}

static void redirect_or_die(int fd, const char *path, int flags)
{
	int f = open(path, flags | O_CLOEXEC, 0644);

	if (f < 0 || dup2(f, fd) < 0)
		_exit(126);
	close(f);
}

/* fork + exec with stdin from /dev/null and stdout/stderr into files.
 * The child gets deathsig if this test process dies (a Criterion timeout),
 * so no workload or profiler outlives the test. */
static pid_t spawn(char *const argv[], const char *out, const char *err,
		   int deathsig)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	if (prctl(PR_SET_PDEATHSIG, deathsig) < 0 || getppid() != parent)
		_exit(125);
	redirect_or_die(STDIN_FILENO, "/dev/null", O_RDONLY);
	redirect_or_die(STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC);
	redirect_or_die(STDERR_FILENO, err, O_WRONLY | O_CREAT | O_TRUNC);
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Waits for pid up to timeout_ms (on a pidfd, no sleeping). Returns 0 and
 * the wait status, or -ETIMEDOUT with the child still running. */
static int wait_child(pid_t pid, int timeout_ms, int *status)
{
	struct pollfd pfd = { .events = POLLIN };
	int r;

	pfd.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd.fd >= 0) {
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		close(pfd.fd);
		if (r == 0)
			return -ETIMEDOUT;
	}
	/* Without pidfds (kernel < 5.3) the Criterion timeout bounds this. */
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Waits up to timeout_ms, then SIGTERM, then SIGKILL. Returns the wait
 * status; *timed_out tells whether it had to be signalled. */
static int wait_or_kill(pid_t pid, int timeout_ms, bool *timed_out)
{
	int status = -1;

	*timed_out = false;
	if (wait_child(pid, timeout_ms, &status) != -ETIMEDOUT)
		return status;
	*timed_out = true;
	(void)kill(pid, SIGTERM);
	if (wait_child(pid, E2E_TERM_MS, &status) != -ETIMEDOUT)
		return status;
	(void)kill(pid, SIGKILL);
	(void)wait_child(pid, -1, &status);
	return status;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The *.pb.gz in dir, sorted, as full paths; NULL-terminated. */
static char **list_profiles(const char *dir, size_t *count)
{
	char **v = NULL, path[PATH_MAX];
	struct dirent *d;
	size_t n = 0;
	DIR *dp = opendir(dir);

	while (dp && (d = readdir(dp))) {
		if (!has_suffix(d->d_name, ".pb.gz"))
			continue;
		path_join(path, dir, d->d_name);
		v = xgrow(v, n, sizeof(*v));
		v[n++] = xstrdup(path);
	}
	if (dp)
		closedir(dp);
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	v = xgrow(v, n, sizeof(*v));
	v[n] = NULL;
	*count = n;
	return v;
}

static void free_strv(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static bool in_path(const char *prog)
{
	char buf[PATH_MAX], *save = NULL, *dir;
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : "/usr/bin:/bin");
	bool found = false;

	for (dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		if (snprintf(buf, sizeof(buf), "%s/%s", dir, prog) <
		    (int)sizeof(buf))
			found = access(buf, X_OK) == 0;
	}
	free(copy);
	return found;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void rm_rf(const char *path)
{
	(void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Absolute build folder: $SPLITPROF_BUILD (set by `make test`), else
 * "build" relative to the repository root we run from. */
static void build_dir(char *out)
{
	const char *b = getenv("SPLITPROF_BUILD");

	if (!b || !*b)
		b = "build";
	if (!realpath(b, out))
		snprintf(out, PATH_MAX, "%s", b);
}

/* ------------------------------------------------------------------------
 * The recording, done once.
 * ------------------------------------------------------------------------ */

static const char *e2e_dir(void)
{
	const char *d = getenv(E2E_DIR_ENV);

	cr_assert(d && *d, "%s not set: the PRE_ALL hook did not run",
		  E2E_DIR_ENV);
	return d;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	char tmpl[] = "/tmp/splitprof-e2e.XXXXXX";

	(void)set;
	if (mkdtemp(tmpl))
		setenv(E2E_DIR_ENV, tmpl, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	const char *d = getenv(E2E_DIR_ENV);

	if (!d)
		return;
	if (stats->tests_failed || stats->tests_crashed ||
	    getenv(E2E_KEEP_ENV)) {
		fprintf(stderr, "e2e: recording and profiles kept in %s\n", d);
		return;
	}
	rm_rf(d);
}

/* Skips the test when this machine cannot record; loud, since CI must run
 * these for real. */
static void e2e_require(void)
{
	const char *why = NULL;

	if (geteuid() != 0)
		why = "not root";
	else if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		why = "no /sys/kernel/btf/vmlinux (kernel without BTF)";
	else if (!in_path("go"))
		why = "`go` not in PATH (needed for `go tool pprof`)";
	if (!why)
		return;
	fprintf(stderr, "\n*** E2E TEST SKIPPED: %s. CI must run these. ***\n\n",
		why);
	cr_skip_test("e2e skipped: %s", why);
}

static void state_add(FILE *st, const char *key, long long value)
{
	fprintf(st, "%s %lld\n", key, value);
}

/* Starts the workloads, records with the launcher, stops the workloads.
 * Returns the pids' fate in the state file. */
static void record(const char *dir, const char *bdir, FILE *st)
{
	char wl[E2E_NWORKLOADS][PATH_MAX], launcher[PATH_MAX], dbg[PATH_MAX];
	char out[PATH_MAX], lout[PATH_MAX], lerr[PATH_MAX], key[64];
	pid_t pids[E2E_NWORKLOADS], lpid;
	bool timed_out = false, slow;
	int status;
	size_t i;

	path_join(launcher, bdir, "splitprof");
	path_join(dbg, bdir, "workloads/debug");
	path_join(out, dir, "profiles");
	path_join(lout, dir, "launcher.out");
	path_join(lerr, dir, "launcher.err");
	rm_rf(out);	/* a previous attempt may have been killed */
	for (i = 0; i < E2E_NWORKLOADS; i++) {
		char rel[64];
		char *argv[] = { wl[i], E2E_WORKLOAD_SECONDS, NULL };

		snprintf(rel, sizeof(rel), "workloads/%s", e2e_workloads[i]);
		path_join(wl[i], bdir, rel);
		pids[i] = spawn(argv, "/dev/null", "/dev/null", SIGKILL);
	}
	{
		char *argv[] = {
			launcher, "--duration", E2E_DURATION,
			"--collect-interval", E2E_INTERVAL,
			"--sample-rate", "97", "--output-dir", out,
			"--debug-dir", dbg, "-v", NULL,
		};

		lpid = spawn(argv, lout, lerr, SIGTERM);
	}
	status = lpid > 0 ? wait_or_kill(lpid, E2E_LAUNCHER_MS, &timed_out) : -1;
	state_add(st, "launcher_status", status);
	state_add(st, "launcher_timeout", lpid > 0 && timed_out);
	for (i = 0; i < E2E_NWORKLOADS; i++) {
		if (pids[i] > 0)
			(void)kill(pids[i], SIGKILL);
		status = pids[i] > 0 ? wait_or_kill(pids[i], 5000, &slow) : -1;
		snprintf(key, sizeof(key), "%s_status", e2e_workloads[i]);
		state_add(st, key, status);
	}
}

/* `go tool pprof -raw` over all profiles of one workload, merged. Returns
 * the exit status, -1 when there is no profile to read. */
static int run_pprof(const char *dir, const char *comm)
{
	char pdir[PATH_MAX], raw[PATH_MAX], err[PATH_MAX], rel[PATH_MAX];
	char **files, **argv;
	size_t n, i;
	bool slow;
	int status = -1;
	pid_t pid;

	snprintf(rel, sizeof(rel), "profiles/%s", comm);
	path_join(pdir, dir, rel);
	snprintf(rel, sizeof(rel), "%s.raw", comm);
	path_join(raw, dir, rel);
	snprintf(rel, sizeof(rel), "%s.pprof.err", comm);
	path_join(err, dir, rel);
	files = list_profiles(pdir, &n);
	if (n == 0)
		goto out;
	argv = calloc(n + 6, sizeof(*argv));	/* 5 fixed, NULL */
	cr_assert_not_null(argv, "out of memory");
	argv[0] = "go";
	argv[1] = "tool";
	argv[2] = "pprof";
	argv[3] = "-raw";
	argv[4] = "-symbolize=none";	/* names must come from splitprof */
	for (i = 0; i < n; i++)
		argv[5 + i] = files[i];
	pid = spawn(argv, raw, err, SIGKILL);
	status = pid > 0 ? wait_or_kill(pid, E2E_PPROF_MS, &slow) : -1;
	free(argv);
out:
	free_strv(files);
	return status;
}

static void go_env(const char *dir)
{
	if (!getenv("HOME"))
		setenv("HOME", "/tmp", 1);
	if (!getenv("GOCACHE"))
		setenv("GOCACHE", "/tmp/go-cache", 1);
	setenv("GOFLAGS", "", 1);
	setenv("GOTOOLCHAIN", "local", 1);
	setenv("PPROF_TMPDIR", dir, 1);
}

/* Records and analyses unless another test already did; waits on the lock
 * while another test is at it. */
static void e2e_record_once(void)
{
	char lock[PATH_MAX], state[PATH_MAX], tmp[PATH_MAX], bdir[PATH_MAX];
	char key[64];
	const char *dir = e2e_dir();
	FILE *st;
	size_t i;
	int fd;

	path_join(lock, dir, "lock");
	path_join(state, dir, "state");
	path_join(tmp, dir, "state.tmp");
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "open %s: %s", lock, strerror(errno));
	cr_assert(flock(fd, LOCK_EX) == 0, "flock: %s", strerror(errno));
	if (access(state, F_OK) != 0) {
		build_dir(bdir);
		st = fopen(tmp, "w");
		cr_assert_not_null(st, "%s: %s", tmp, strerror(errno));
		record(dir, bdir, st);
		go_env(dir);
		for (i = 0; i < E2E_NWORKLOADS; i++) {
			snprintf(key, sizeof(key), "%s_pprof", e2e_workloads[i]);
			state_add(st, key, run_pprof(dir, e2e_workloads[i]));
		}
		cr_assert(fclose(st) == 0 && rename(tmp, state) == 0,
			  "cannot write %s", state);
	}
	close(fd);	/* releases the lock */
}

/* A value from the state file; fails the test if it is missing. */
static long long e2e_state(const char *key)
{
	char path[PATH_MAX], k[64];
	long long v;
	FILE *f;

	path_join(path, e2e_dir(), "state");
	f = fopen(path, "r");
	cr_assert_not_null(f, "no %s", path);
	while (fscanf(f, "%63s %lld", k, &v) == 2) {
		if (strcmp(k, key) == 0) {
			fclose(f);
			return v;
		}
	}
	fclose(f);
	cr_assert_fail("%s: no %s", path, key);
	return -1;
}

/* Reads up to cap-1 bytes of dir/name (the tail if longer). */
static void read_text(const char *name, char *buf, size_t cap)
{
	char path[PATH_MAX];
	size_t n = 0;
	long size;
	FILE *f;

	buf[0] = '\0';
	path_join(path, e2e_dir(), name);
	f = fopen(path, "r");
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

/* The launcher must have run and exited 0; says why not, with its
 * stderr's tail. */
static void e2e_assert_launcher_ok(void)
{
	int status = (int)e2e_state("launcher_status");
	static char err[4096];

	read_text("launcher.err", err, sizeof(err));
	cr_assert(!e2e_state("launcher_timeout"),
		  "launcher did not exit within %d ms of %s; stderr tail:\n%s",
		  E2E_LAUNCHER_MS, E2E_DURATION, err);
	cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "launcher failed (wait status 0x%x; exit 127: not found); "
		  "stderr tail:\n%s", (unsigned int)status, err);
}

/* The merged profile of one workload, after the common checks. */
static void e2e_load(const char *comm, struct pp_profile *p)
{
	char name[64], err[4096], path[PATH_MAX];
	int rc;

	e2e_require();
	e2e_record_once();
	snprintf(name, sizeof(name), "%s_pprof", comm);
	rc = (int)e2e_state(name);
	cr_assert(rc != -1, "no profile of %s in %s/profiles/%s/ "
		  "(launcher wait status 0x%llx)", comm, e2e_dir(), comm,
		  e2e_state("launcher_status"));
	snprintf(name, sizeof(name), "%s.pprof.err", comm);
	read_text(name, err, sizeof(err));
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "go tool pprof failed on %s/profiles/%s/*.pb.gz:\n%s",
		  e2e_dir(), comm, err);
	snprintf(name, sizeof(name), "%s.raw", comm);
	path_join(path, e2e_dir(), name);
	pp_parse_file(p, path);
	cr_assert(pp_total(p) / E2E_PERIOD >= E2E_MIN_SAMPLES,
		  "%s: only %lld samples (want >= %d) in %s", comm,
		  (long long)(pp_total(p) / E2E_PERIOD), E2E_MIN_SAMPLES, path);
}

static bool near(double got, double truth)
{
	return got > truth - E2E_TOLERANCE && got < truth + E2E_TOLERANCE;
}

static void expect_self_share(const struct pp_profile *p, const char *comm,
			      const char *func, double truth)
{
	double got = pp_self_share(p, func);

	cr_expect(near(got, truth),
		  "%s: %s has %.1f%% of the samples (self), truth %.0f%% +- %.0f",
		  comm, func, 100 * got, 100 * truth, 100 * E2E_TOLERANCE);
}

/* func is named and lies in a mapping whose file ends in file_suffix. */
static void expect_named_in(const struct pp_profile *p, const char *comm,
			    const char *func, const char *file_suffix)
{
	const struct pp_loc *l = pp_loc_of(p, func);
	const struct pp_map *m = l ? pp_map_by_id(p, l->map_id) : NULL;

	cr_expect_not_null(l, "%s: no location names %s", comm, func);
	if (!l)
		return;
	cr_expect(m && has_suffix(m->file, file_suffix),
		  "%s: %s is in mapping '%s', want a file ending in '%s'",
		  comm, func, m ? m->file : "(none)", file_suffix);
}

/* ------------------------------------------------------------------------
 * Tests.
 * ------------------------------------------------------------------------ */

TestSuite(e2e, .timeout = 120);

Test(e2e, launcher_exits_0_with_summary)
{
	static char out[8192];
	size_t i;

	e2e_require();
	e2e_record_once();
	e2e_assert_launcher_ok();
	read_text("launcher.out", out, sizeof(out));
	for (i = 0; out[i]; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	cr_expect(strstr(out, "sample"), "summary does not mention samples:\n%s",
		  out);
	cr_expect(strstr(out, "profile"),
		  "summary does not mention profiles written:\n%s", out);
}

Test(e2e, profiles_per_comm_and_interval)
{
	char pdir[PATH_MAX], rel[PATH_MAX], key[64];
	unsigned char magic[2];
	size_t w, i, n;
	char **files;

	e2e_require();
	e2e_record_once();
	e2e_assert_launcher_ok();
	for (w = 0; w < E2E_NWORKLOADS; w++) {
		const char *comm = e2e_workloads[w];
		int st;

		snprintf(key, sizeof(key), "%s_status", comm);
		st = (int)e2e_state(key);
		cr_expect(WIFSIGNALED(st) || (WIFEXITED(st) && !WEXITSTATUS(st)),
			  "workload %s failed (wait status 0x%x)", comm,
			  (unsigned int)st);
		snprintf(rel, sizeof(rel), "profiles/%s", comm);
		path_join(pdir, e2e_dir(), rel);
		files = list_profiles(pdir, &n);
		/* 20 s at a 5 s collect interval: four or five profiles. */
		cr_expect(n >= 3, "%s: %zu profiles in %s, want >= 3", comm, n,
			  pdir);
		for (i = 0; i < n; i++) {
			const char *base = strrchr(files[i], '/') + 1;
			FILE *f = fopen(files[i], "r");

			cr_expect(isdigit((unsigned char)base[0]),
				  "%s: not named by its time", files[i]);
			cr_expect(f && fread(magic, 1, 2, f) == 2 &&
				  magic[0] == 0x1f && magic[1] == 0x8b,
				  "%s: not gzip", files[i]);
			if (f)
				fclose(f);
		}
		free_strv(files);
	}
}

Test(e2e, sample_and_period_types)
{
	struct pp_profile p;
	size_t w, i;

	for (w = 0; w < E2E_NWORKLOADS; w++) {
		const char *comm = e2e_workloads[w];
		char want[80];

		e2e_load(comm, &p);
		cr_expect(p.sample_types &&
			  !strcmp(p.sample_types, "cpu/nanoseconds"),
			  "%s: sample types '%s', want only cpu/nanoseconds",
			  comm, p.sample_types ? p.sample_types : "(none)");
		cr_expect(p.period_type && !strcmp(p.period_type, "cpu nanoseconds"),
			  "%s: period type '%s'", comm,
			  p.period_type ? p.period_type : "(none)");
		cr_expect_eq(p.period, E2E_PERIOD, "%s: period %lld, want %d",
			     comm, (long long)p.period, E2E_PERIOD);
		for (i = 0; i < p.nsamples; i++)
			cr_expect(p.samples[i].value > 0 &&
				  p.samples[i].value % E2E_PERIOD == 0,
				  "%s: value %lld is not samples x period",
				  comm, (long long)p.samples[i].value);
		/* Series labels live beside the pprof; if splitprof also puts
		 * service_name on the samples, it must be the comm. */
		snprintf(want, sizeof(want), "service_name:[%s]", comm);
		for (i = 0; i < p.nsamples; i++)
			if (p.samples[i].labels &&
			    strstr(p.samples[i].labels, "service_name:["))
				cr_expect(strstr(p.samples[i].labels, want),
					  "%s: labels %s", comm,
					  p.samples[i].labels);
		pp_free(&p);
	}
}

Test(e2e, pie_split_matches_truth)
{
	struct pp_profile p;

	e2e_load("wl_split", &p);
	expect_self_share(&p, "wl_split", "hot_a", 0.40);
	expect_self_share(&p, "wl_split", "hot_b", 0.20);
	expect_self_share(&p, "wl_split", "chain_leaf", 0.20);
	expect_self_share(&p, "wl_split", "lib_hot", 0.20);
	pp_free(&p);
}

Test(e2e, pie_and_shared_library_named)
{
	struct pp_profile p;

	e2e_load("wl_split", &p);
	expect_named_in(&p, "wl_split", "hot_a", "/wl_split");
	expect_named_in(&p, "wl_split", "chain_1", "/wl_split");
	expect_named_in(&p, "wl_split", "main", "/wl_split");
	expect_named_in(&p, "wl_split", "lib_hot", "/libwl.so");
	pp_free(&p);
}

/* main -> chain_1 -> chain_2 -> chain_3 -> chain_leaf, unbroken, in at
 * least 90 % of chain_leaf's samples. */
Test(e2e, call_chain_whole)
{
	static const char *const chain[] = {
		"chain_leaf", "chain_3", "chain_2", "chain_1", "main",
	};
	struct pp_frame f[E2E_MAX_FRAMES];
	int64_t leaf_v = 0, whole_v = 0;
	struct pp_profile p;
	size_t i, j, n, u;

	e2e_load("wl_split", &p);
	for (i = 0; i < p.nsamples; i++) {
		n = pp_frames(&p, &p.samples[i], f, E2E_MAX_FRAMES);
		u = pp_user_leaf(f, n);
		if (u >= n || strcmp(f[u].func, chain[0]) != 0)
			continue;
		leaf_v += p.samples[i].value;
		for (j = 1; j < 5 && u + j < n; j++)
			if (strcmp(f[u + j].func, chain[j]) != 0)
				break;
		if (j == 5)
			whole_v += p.samples[i].value;
	}
	cr_assert(leaf_v > 0, "wl_split: no sample in chain_leaf");
	cr_expect(whole_v >= leaf_v * 9 / 10,
		  "wl_split: whole chain in %.1f%% of chain_leaf's samples, "
		  "want >= 90%%", 100.0 * (double)whole_v / (double)leaf_v);
	pp_free(&p);
}

Test(e2e, nopie_split_and_names)
{
	struct pp_profile p;

	e2e_load("wl_nopie", &p);
	expect_named_in(&p, "wl_nopie", "np_hot", "/wl_nopie");
	expect_self_share(&p, "wl_nopie", "np_hot", 0.70);
	expect_self_share(&p, "wl_nopie", "np_cold", 0.30);
	pp_free(&p);
}

/* st_hot and st_cold exist only in the debug file under --debug-dir. */
Test(e2e, stripped_named_via_build_id_debug_file)
{
	struct pp_profile p;

	e2e_load("wl_stripped", &p);
	expect_named_in(&p, "wl_stripped", "st_hot", "/wl_stripped");
	expect_named_in(&p, "wl_stripped", "st_cold", "/wl_stripped");
	expect_self_share(&p, "wl_stripped", "st_hot", 0.60);
	expect_self_share(&p, "wl_stripped", "st_cold", 0.40);
	pp_free(&p);
}

/* read(2) of /dev/zero is almost all kernel time: most of sys_read_zero's
 * samples (98 % under perf) must carry kernel frames above it. */
Test(e2e, kernel_frames_under_syscall)
{
	struct pp_frame f[E2E_MAX_FRAMES];
	int64_t sys_v = 0, kern_v = 0;
	struct pp_profile p;
	size_t i, n, at;
	double cum;

	e2e_load("wl_syscall", &p);
	expect_self_share(&p, "wl_syscall", "user_spin", 0.50);
	cum = pp_cum_share(&p, "sys_read_zero");
	cr_expect(near(cum, 0.50),
		  "wl_syscall: sys_read_zero on %.1f%% of the stacks, "
		  "truth 50%% +- %.0f", 100 * cum, 100 * E2E_TOLERANCE);
	for (i = 0; i < p.nsamples; i++) {
		n = pp_frames(&p, &p.samples[i], f, E2E_MAX_FRAMES);
		at = pp_find(f, 0, n, "sys_read_zero");
		if (at == n)
			continue;
		sys_v += p.samples[i].value;
		if (at > 0 && f[0].kernel)
			kern_v += p.samples[i].value;
	}
	cr_assert(sys_v > 0, "wl_syscall: no sample in sys_read_zero");
	cr_expect(kern_v > 0 && kern_v >= sys_v / 2,
		  "wl_syscall: kernel frames above sys_read_zero in %.1f%% of "
		  "its samples, want >= 50%%",
		  100.0 * (double)kern_v / (double)sys_v);
	pp_free(&p);
}
