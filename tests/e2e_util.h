/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * e2e_util.h - helpers shared by the end-to-end tests (test_e2e.c,
 * test_e2e_targets.c, test_config_docs.c): `go tool pprof -raw` parsed, child
 * processes with time limits, profile folders, the skip rule. Header-only
 * (static inline), so each test file takes what it uses without warnings.
 */
#ifndef SPLITPROF_E2E_UTIL_H
#define SPLITPROF_E2E_UTIL_H

#include <criterion/criterion.h>
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define E2E_TERM_MS		10000	/* after SIGTERM, before SIGKILL */
#define E2E_MAX_FRAMES		512

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

static inline void *xgrow(void *p, size_t n, size_t size)
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

static inline char *xstrdup(const char *s)
{
	char *d = strdup(s);

	cr_assert_not_null(d, "out of memory");
	return d;
}

static inline char *skip_space(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static inline void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* "samples/count cpu/nanoseconds": remembers the column of cpu time. */
static inline void pp_parse_types(struct pp_profile *p, char *line)
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
static inline bool pp_parse_sample(struct pp_profile *p, char *line)
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

static inline void pp_add_label_line(struct pp_profile *p, const char *line)
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
static inline void pp_parse_location(struct pp_profile *p, char *line)
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
static inline void pp_parse_mapping(struct pp_profile *p, char *line)
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

static inline enum pp_section pp_parse_line(struct pp_profile *p,
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

static inline void pp_parse_file(struct pp_profile *p, const char *path)
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

static inline const struct pp_map *pp_map_by_id(const struct pp_profile *p,
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

static inline const struct pp_loc *pp_loc_by_id(const struct pp_profile *p,
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

static inline bool name_has_prefix(const char *name,
				   const char *const *prefixes)
{
	for (; *prefixes; prefixes++)
		if (strncmp(name, *prefixes, strlen(*prefixes)) == 0)
			return true;
	return false;
}

/* Kernel frames: by their mapping ("vmlinux", "[kernel.kallsyms]"), their
 * address (upper half on x86-64 and arm64), or a well-known name. */
static inline bool pp_is_kernel(const struct pp_loc *l, const struct pp_map *m)
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
static inline size_t pp_frames(const struct pp_profile *p,
			       const struct pp_sample *s,
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
static inline size_t pp_user_leaf(const struct pp_frame *f, size_t n)
{
	size_t i = 0;

	while (i < n && f[i].kernel)
		i++;
	return i;
}

static inline int64_t pp_total(const struct pp_profile *p)
{
	int64_t sum = 0;
	size_t i;

	for (i = 0; i < p->nsamples; i++)
		sum += p->samples[i].value;
	return sum;
}

/* Share of the cpu time whose leaf-most user frame is func ("self"). */
static inline double pp_self_share(const struct pp_profile *p, const char *func)
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
static inline size_t pp_find(const struct pp_frame *f, size_t from, size_t n,
		      const char *func)
{
	for (; from < n; from++)
		if (strcmp(f[from].func, func) == 0)
			return from;
	return n;
}

/* Share of the cpu time with func anywhere on the stack ("cumulative"). */
static inline double pp_cum_share(const struct pp_profile *p, const char *func)
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
static inline const struct pp_loc *pp_loc_of(const struct pp_profile *p,
				      const char *func)
{
	size_t i;

	for (i = 0; i < p->nlocs; i++)
		if (p->locs[i].func && strcmp(p->locs[i].func, func) == 0)
			return &p->locs[i];
	return NULL;
}

static inline void pp_free(struct pp_profile *p)
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

/* The first cap-1 bytes of path as a string ("" if it can't be read). */
static inline void slurp(const char *path, char *buf, size_t cap)
{
	size_t n = 0;
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (!f)
		return;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static inline void path_join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", a, b);
}

static inline void redirect_or_die(int fd, const char *path, int flags)
{
	int f = open(path, flags | O_CLOEXEC, 0644);

	if (f < 0 || dup2(f, fd) < 0)
		_exit(126);
	close(f);
}

/* fork + exec with stdin from /dev/null and stdout/stderr into files.
 * The child gets deathsig if this test process dies (a Criterion timeout),
 * so no workload or profiler outlives the test. */
static inline pid_t spawn(char *const argv[], const char *out, const char *err,
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
static inline int wait_child(pid_t pid, int timeout_ms, int *status)
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
static inline int wait_or_kill(pid_t pid, int timeout_ms, bool *timed_out)
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

static inline int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The *.pb.gz in dir, sorted, as full paths; NULL-terminated. */
static inline char **list_profiles(const char *dir, size_t *count)
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

static inline void free_strv(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/*
 * `go tool pprof -raw -symbolize=none` over every profile in pdir, merged,
 * into raw (stderr into err). Returns the exit status, -1 when pdir holds
 * no profile. -symbolize=none: the names must come from splitprof.
 */
static inline int pprof_raw_status(const char *pdir, const char *raw,
				   const char *err, int timeout_ms)
{
	char **files, **argv;
	size_t n, i;
	bool slow;
	int status = -1;
	pid_t pid;

	files = list_profiles(pdir, &n);
	if (n == 0)
		goto out;
	argv = calloc(n + 6, sizeof(*argv));	/* 5 fixed, NULL */
	cr_assert_not_null(argv, "out of memory");
	argv[0] = "go";
	argv[1] = "tool";
	argv[2] = "pprof";
	argv[3] = "-raw";
	argv[4] = "-symbolize=none";
	for (i = 0; i < n; i++)
		argv[5 + i] = files[i];
	pid = spawn(argv, raw, err, SIGKILL);
	status = pid > 0 ? wait_or_kill(pid, timeout_ms, &slow) : -1;
	free(argv);
out:
	free_strv(files);
	return status;
}

static inline bool in_path(const char *prog)
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

static inline int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static inline void rm_rf(const char *path)
{
	(void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Absolute build folder: $SPLITPROF_BUILD (set by `make test`), else
 * "build" relative to the repository root we run from. */
static inline void build_dir(char *out)
{
	const char *b = getenv("SPLITPROF_BUILD");

	if (!b || !*b)
		b = "build";
	if (!realpath(b, out))
		snprintf(out, PATH_MAX, "%s", b);
}

/* Skips the test when this machine cannot record; loud, since CI must run
 * these for real. */
static inline void e2e_require(void)
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

static inline void go_env(const char *dir)
{
	if (!getenv("HOME"))
		setenv("HOME", "/tmp", 1);
	if (!getenv("GOCACHE"))
		setenv("GOCACHE", "/tmp/go-cache", 1);
	setenv("GOFLAGS", "", 1);
	setenv("GOTOOLCHAIN", "local", 1);
	setenv("PPROF_TMPDIR", dir, 1);
}

#endif /* SPLITPROF_E2E_UTIL_H */
