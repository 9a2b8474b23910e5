/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_config_docs.c - the configuration as documented, through the real
 * binary: the README's complete example and tests/e2e-config/example.yaml
 * pass `splitprof-aggregator --check-config`; bad files are refused with
 * file:line: key on stderr, by --check-config and at start-up, before the
 * aggregator connects to any probe (a listening socket of ours stays
 * unconnected; a good file, as the control, does connect). The exact
 * messages are unit-tested in test_config.c.
 *
 * Needs the built binaries ($SPLITPROF_BUILD, else ./build), no root.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define CD_MARK		"<!-- complete-example -->"
#define CD_RUN_MS	10000
#define CD_OUT_MAX	16384
/* A fake secret for the example's password_file: must never be printed. */
#define CD_SECRET	"cd-secret-5b9e1f"

struct cd_run {
	int status;		/* wait status */
	char out[CD_OUT_MAX];
	char err[CD_OUT_MAX];
};

static char cd_dir[PATH_MAX];

static void cd_init(void)
{
	char tmpl[] = "/tmp/splitprof-config-docs.XXXXXX";

	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	snprintf(cd_dir, sizeof(cd_dir), "%s", tmpl);
}

static void cd_fini(void)
{
	if (cd_dir[0] && !getenv("SPLITPROF_E2E_KEEP"))
		rm_rf(cd_dir);
}

TestSuite(config_docs, .init = cd_init, .fini = cd_fini, .timeout = 60);

/* The repository root: where README.md is, from the cwd or the build
 * folder's parent. */
static void repo_file(const char *rel, char *out)
{
	char bdir[PATH_MAX], root[PATH_MAX];

	if (access(rel, R_OK) == 0) {
		snprintf(out, PATH_MAX, "%s", rel);
		return;
	}
	build_dir(bdir);
	path_join(root, bdir, "..");
	path_join(out, root, rel);
	cr_assert(access(out, R_OK) == 0, "cannot find %s (from %s or %s)",
		  rel, ".", root);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/* Starts the aggregator with args (NULL-terminated, at most 8). */
static pid_t start_agg(const char *const args[])
{
	char bin[PATH_MAX], bdir[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
	char *argv[10];
	size_t i;
	pid_t pid;

	build_dir(bdir);
	path_join(bin, bdir, "splitprof-aggregator");
	cr_assert(access(bin, X_OK) == 0, "%s: %s (make all)", bin,
		  strerror(errno));
	argv[0] = bin;
	for (i = 0; args[i] && i < 8; i++)
		argv[i + 1] = (char *)(uintptr_t)args[i];
	argv[i + 1] = NULL;
	path_join(out, cd_dir, "agg.out");
	path_join(err, cd_dir, "agg.err");
	pid = spawn(argv, out, err, SIGKILL);
	cr_assert(pid > 0, "fork: %s", strerror(errno));
	return pid;
}

/* Waits for it (killing it after CD_RUN_MS) and collects its output. */
static void finish_agg(struct cd_run *r, pid_t pid)
{
	char out[PATH_MAX], err[PATH_MAX];
	bool slow;

	r->status = wait_or_kill(pid, CD_RUN_MS, &slow);
	path_join(out, cd_dir, "agg.out");
	path_join(err, cd_dir, "agg.err");
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	cr_assert(!slow, "splitprof-aggregator did not exit within %d ms; "
		  "stderr:\n%s", CD_RUN_MS, r->err);
}

static void run_agg(struct cd_run *r, const char *const args[])
{
	finish_agg(r, start_agg(args));
}

static bool exited_0(const struct cd_run *r)
{
	return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* --check-config -c path: exit 0 and "path: OK". */
static void expect_check_ok(const char *path)
{
	char want[PATH_MAX + 8];
	struct cd_run r;
	const char *args[] = { "--check-config", "-c", path, NULL };

	run_agg(&r, args);
	snprintf(want, sizeof(want), "%s: OK", path);
	cr_expect(exited_0(&r), "--check-config -c %s: wait status 0x%x; "
		  "stderr:\n%s", path, (unsigned int)r.status, r.err);
	cr_expect(strstr(r.out, want), "--check-config -c %s printed no "
		  "\"%s\"; stdout:\n%s\nstderr:\n%s", path, want, r.out, r.err);
}

/*
 * The README's block marked CD_MARK: the next line must open a ```yaml
 * fence, the block runs to the closing fence. Returns malloc'ed text.
 */
static char *readme_example(void)
{
	char readme[PATH_MAX], *line = NULL, *text = NULL;
	size_t cap = 0, len = 0, tcap = 0;
	int state = 0;	/* 0: before the mark, 1: want fence, 2: in, 3: done */
	FILE *f;

	repo_file("README.md", readme);
	f = fopen(readme, "r");
	cr_assert_not_null(f, "%s: %s", readme, strerror(errno));
	while (state < 3 && getline(&line, &cap, f) >= 0) {
		size_t n = strlen(line);

		if (state == 0) {
			if (strncmp(line, CD_MARK, strlen(CD_MARK)) == 0)
				state = 1;
		} else if (state == 1) {
			cr_assert(strncmp(line, "```yaml", 7) == 0,
				  "%s: the line after %s must open a ```yaml "
				  "block, got: %s", readme, CD_MARK, line);
			state = 2;
		} else if (strncmp(line, "```", 3) == 0) {
			state = 3;
		} else {
			if (len + n + 1 > tcap) {
				tcap = (len + n + 1) * 2;
				text = realloc(text, tcap);
				cr_assert_not_null(text, "out of memory");
			}
			memcpy(text + len, line, n + 1);
			len += n;
		}
	}
	free(line);
	fclose(f);
	cr_assert(state == 3, "%s: no complete %s ```yaml ... ``` block "
		  "(state %d)", readme, CD_MARK, state);
	cr_assert(len > 0, "%s: the complete example is empty", readme);
	return text;
}

/* Creates the files its *_file keys name (relative to the config's
 * folder, as config.c resolves them), each holding CD_SECRET. */
static void provide_key_files(const char *yaml)
{
	const char *p = yaml;
	char name[256], path[PATH_MAX];

	while ((p = strstr(p, "_file:"))) {
		p += strlen("_file:");
		if (sscanf(p, " %255[^ \t\r\n#]", name) != 1)
			continue;
		cr_assert(name[0] != '/', "the README example names an "
			  "absolute %s; use a path relative to the config "
			  "file so the doc test can provide it", name);
		cr_assert(!strstr(name, ".."), "%s: stay below the folder",
			  name);
		path_join(path, cd_dir, name);
		write_text(path, CD_SECRET "\n");
	}
}

Test(config_docs, readme_complete_example_is_valid)
{
	static const char *const covers[] = {
		"targets:", "default_target:", "targets_only:", "relabel:",
		"profile_relabel:", "write:", "endpoint:", "basic_auth:",
		"password_file:", "X-Scope-OrgID", "tls_config:",
		"external_labels:", "output_dir:", "retention:",
		"__container_id__:", "__process_pid__:", NULL,
	};
	char path[PATH_MAX];
	char *yaml = readme_example();
	struct cd_run r;
	size_t i;

	for (i = 0; covers[i]; i++)
		cr_expect(strstr(yaml, covers[i]), "the README's complete "
			  "example does not show %s", covers[i]);
	path_join(path, cd_dir, "complete.yaml");
	write_text(path, yaml);
	provide_key_files(yaml);
	expect_check_ok(path);
	{
		/* -v prints the effective configuration: secrets hidden. */
		const char *args[] = { "--check-config", "-v", "-c", path,
				       NULL };

		run_agg(&r, args);
		cr_expect(exited_0(&r), "--check-config -v: 0x%x\n%s",
			  (unsigned int)r.status, r.err);
		cr_expect(strstr(r.out, "password: <secret>"),
			  "-v does not show the password as <secret>:\n%s",
			  r.out);
		cr_expect(!strstr(r.out, CD_SECRET) && !strstr(r.err, CD_SECRET),
			  "-v printed the password file's content");
	}
	free(yaml);
}

Test(config_docs, e2e_example_is_valid)
{
	char path[PATH_MAX];

	repo_file("tests/e2e-config/example.yaml", path);
	expect_check_ok(path);
}

/* ------------------------------------------------------------------------
 * Refused before anything starts.
 * ------------------------------------------------------------------------ */

/* A listening socket that stands in for the probe. */
static int fake_probe(char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0);

	cr_assert(s >= 0, "socket: %s", strerror(errno));
	path_join(path, cd_dir, "probe.sock");
	cr_assert(strlen(path) < sizeof(sa.sun_path), "path too long");
	strcpy(sa.sun_path, path);
	cr_assert(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		  listen(s, 4) == 0, "bind/listen %s: %s", path,
		  strerror(errno));
	return s;
}

/* Takes one pending connection, if any, and hangs up on it. */
static bool take_connection(int s)
{
	int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);

	if (c >= 0) {
		close(c);
		return true;
	}
	cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "accept: %s",
		  strerror(errno));
	return false;
}

/*
 * Runs the aggregator as if to profile (no --check-config) against a fake
 * probe until it exits or connects; a connection is hung up on at once
 * (no HELLO: it gives up). Returns whether it connected.
 */
static bool start_against_fake_probe(struct cd_run *r, const char *cfg)
{
	char sock[PATH_MAX];
	int s = fake_probe(sock), i;
	siginfo_t si;
	const char *args[] = { "-c", cfg, "--socket", sock, NULL };
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	bool connected = false;
	pid_t pid = start_agg(args);

	for (i = 0; i < CD_RUN_MS / 100 && !connected; i++) {
		if (poll(&pfd, 1, 100) > 0)
			connected = take_connection(s);
		else if ((si.si_pid = 0, waitid(P_PID, (id_t)pid, &si,
				 WEXITED | WNOHANG | WNOWAIT)) == 0 &&
			 si.si_pid == pid)
			break;	/* exited (not reaped) without connecting */
	}
	finish_agg(r, pid);
	connected = take_connection(s) || connected;
	close(s);
	(void)unlink(sock);
	return connected;
}

/* No pointers: Criterion re-execs the binary and copies these. */
struct bad_config {
	char name[32];
	char yaml[256];
	char where[80];		/* after "<file>:" on stderr */
};

ParameterizedTestParameters(config_docs, bad_config_refused_before_probe)
{
	static struct bad_config p[] = {
		{ "unknown key", "sample_rate: 97\nsampel_rate: 97\n",
		  "2: sampel_rate: unknown key" },
		{ "bad duration", "collect_interval: 15 seconds\n",
		  "1: collect_interval: " },
		{ "nested unknown key",
		  "write:\n  endpoint:\n    - url: https://p.example\n"
		  "      pasword: x\n",
		  "4: write.endpoint[0].pasword: unknown key" },
		{ "bad regex",
		  "relabel:\n  - source_labels: [__meta_process_comm]\n"
		  "    regex: '('\n    target_label: service_name\n",
		  "3: relabel[0].regex: " },
	};

	return cr_make_param_array(struct bad_config, p,
				   sizeof(p) / sizeof(p[0]));
}

ParameterizedTest(struct bad_config *bc, config_docs,
		  bad_config_refused_before_probe)
{
	char path[PATH_MAX], want[PATH_MAX + 96];
	struct cd_run r;
	const char *args[4];

	path_join(path, cd_dir, "bad.yaml");
	write_text(path, bc->yaml);
	snprintf(want, sizeof(want), "%s:%s", path, bc->where);

	args[0] = "--check-config";
	args[1] = "-c";
	args[2] = path;
	args[3] = NULL;
	run_agg(&r, args);
	cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0,
		  "%s: --check-config: wait status 0x%x, want an exit status "
		  "> 0", bc->name, (unsigned int)r.status);
	cr_expect(strstr(r.err, want), "%s: --check-config stderr lacks "
		  "\"%s\":\n%s", bc->name, want, r.err);
	cr_expect(!strstr(r.out, "OK"), "%s: --check-config said OK:\n%s",
		  bc->name, r.out);

	cr_expect(!start_against_fake_probe(&r, path),
		  "%s: the aggregator connected to the probe socket before "
		  "refusing its configuration", bc->name);
	cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0,
		  "%s: start-up: wait status 0x%x, want an exit status > 0",
		  bc->name, (unsigned int)r.status);
	cr_expect(strstr(r.err, want), "%s: start-up stderr lacks \"%s\":\n%s",
		  bc->name, want, r.err);
}

/* The control for the test above: a good file does reach the probe. */
Test(config_docs, good_config_connects_to_probe)
{
	char path[PATH_MAX], yaml[PATH_MAX + 64];
	struct cd_run r;

	path_join(path, cd_dir, "good.yaml");
	snprintf(yaml, sizeof(yaml), "sample_rate: 97\noutput_dir: %s/out\n",
		 cd_dir);
	write_text(path, yaml);
	cr_expect(start_against_fake_probe(&r, path),
		  "a valid configuration never connected to the probe socket; "
		  "stderr:\n%s", r.err);
	/* Hung up on before HELLO: it gives up. */
	cr_expect(!exited_0(&r), "exit 0 without a probe?");
}

/* README: metrics_listen is refused (not implemented). */
Test(config_docs, unsupported_keys_as_documented)
{
	char path[PATH_MAX];
	struct cd_run r;

	path_join(path, cd_dir, "metrics.yaml");
	write_text(path, "metrics_listen: \"127.0.0.1:9100\"\n");
	cr_expect(!start_against_fake_probe(&r, path),
		  "metrics_listen: connected to the probe before refusing");
	cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0,
		  "metrics_listen: wait status 0x%x, want refusal",
		  (unsigned int)r.status);
	cr_expect(strstr(r.err, "metrics_listen") &&
		  strstr(r.err, "not implemented"),
		  "metrics_listen: stderr does not say it is not "
		  "implemented:\n%s", r.err);
}
