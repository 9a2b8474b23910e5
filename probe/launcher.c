// SPDX-License-Identifier: BSD-2-Clause
/*
 * launcher.c - splitprof: one command for a quick start. Creates a
 * socketpair, forks; the child becomes the aggregator (unprivileged user,
 * control socket at fd 3, output directory at fd 4, re-exec'ed), the parent
 * execs the probe with the other end. Both binaries are found next to this
 * one. The probe, as the aggregator's parent, waits for it on shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "sp_log.h"

#define AGG_CONTROL_FD	3
#define AGG_OUTDIR_FD	4
#define MAX_ARGS	64

struct argv_buf {
	char *v[MAX_ARGS];
	int n;
};

static void push(struct argv_buf *a, const char *s)
{
	if (a->n >= MAX_ARGS - 1)
		fatalx("too many arguments");
	a->v[a->n++] = (char *)(uintptr_t)s;
	a->v[a->n] = NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: splitprof [-c FILE] [--duration 20s] [--sample-rate 97]\n"
"                 [--collect-interval 15s] [--output-dir ./profiles]\n"
"                 [--aggregator-user nobody] [--no-user-stacks]\n"
"                 [--no-kernel-stacks] [--debug-dir DIR] [-v]\n"
"Runs splitprof-probe (privileged) and splitprof-aggregator (as\n"
"--aggregator-user, default nobody) connected by a socketpair. The output\n"
"directory (default ./profiles unless -c is given) is created by the\n"
"launcher and handed to the aggregator as an open directory.\n");
}

/* Path of a sibling binary of /proc/self/exe. */
static char *sibling(const char *name)
{
	char self[PATH_MAX], *out;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		fatal("readlink /proc/self/exe");
	self[n] = '\0';
	if (asprintf(&out, "%s/%s", dirname(self), name) < 0)
		fatal("asprintf");
	return out;
}

/* mkdir -p; the last component is handed to the aggregator's user. */
static void make_output_dir(const char *path, const struct passwd *pw)
{
	char *p = strdup(path), *s;

	if (!p)
		fatal("strdup");
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			fatal("mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, 0750) == 0) {
		if (chown(p, pw->pw_uid, pw->pw_gid) < 0)
			fatal("chown %s", p);
	} else if (errno != EEXIST) {
		fatal("mkdir %s", p);
	}
	free(p);
}

/* Moves fd to number want without CLOEXEC; safe if want is in use. */
static void place_fd(int fd, int want)
{
	if (fd == want) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			fatal("fcntl");
	} else if (dup2(fd, want) < 0) {
		fatal("dup2");
	}
}

static __attribute__((noreturn)) void exec_aggregator(int sock, const char *user, const char *outdir,
							  struct argv_buf *a)
{
	struct passwd *pw = getpwnam(user);
	char *bin = sibling("splitprof-aggregator");
	int dfd = -1;

	if (!pw)
		fatalx("no such user %s", user);
	if (pw->pw_uid == 0)
		fatalx("refusing to run the aggregator as root");
	/* Lift both fds above 4 first so placing one can't clobber the other. */
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	if (outdir) {
		make_output_dir(outdir, pw);
		dfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			fatal("open %s", outdir);
		dfd = fcntl(dfd, F_DUPFD_CLOEXEC, 10);
	}
	if (sock < 0 || (outdir && dfd < 0))
		fatal("fcntl");
	place_fd(sock, AGG_CONTROL_FD);
	push(a, "--control-fd");
	push(a, "3");
	if (dfd >= 0) {
		place_fd(dfd, AGG_OUTDIR_FD);
		push(a, "--output-dir-fd");
		push(a, "4");
	}
	if (setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("dropping to user %s", user);
	a->v[0] = bin;
	execv(bin, a->v);
	fatal("exec %s", bin);
}

static __attribute__((noreturn)) void exec_probe(int sock, struct argv_buf *a)
{
	char *bin = sibling("splitprof-probe");
	static char fdstr[16];

	if (fcntl(sock, F_SETFD, 0) < 0)
		fatal("fcntl");
	snprintf(fdstr, sizeof(fdstr), "%d", sock);
	push(a, "--socket-fd");
	push(a, fdstr);
	a->v[0] = bin;
	execv(bin, a->v);
	fatal("exec %s", bin);
}

int main(int argc, char **argv)
{
	enum { O_USER = 256, O_DUR, O_RATE, O_NOU, O_NOK, O_OUT, O_IVL, O_DBG };
	static const struct option lo[] = {
		{ "aggregator-user", required_argument, NULL, O_USER },
		{ "debug-dir", required_argument, NULL, O_DBG },
		{ "duration", required_argument, NULL, O_DUR },
		{ "sample-rate", required_argument, NULL, O_RATE },
		{ "no-user-stacks", no_argument, NULL, O_NOU },
		{ "no-kernel-stacks", no_argument, NULL, O_NOK },
		{ "output-dir", required_argument, NULL, O_OUT },
		{ "collect-interval", required_argument, NULL, O_IVL },
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct argv_buf probe = { .n = 1 }, agg = { .n = 1 };
	const char *user = "nobody", *outdir = NULL;
	int c, sv[2], verbose = 0, config = 0;
	pid_t pid;

	log_init("splitprof", SP_LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:vh", lo, NULL)) != -1) {
		switch (c) {
		case O_USER: user = optarg; break;
		case O_DUR: push(&probe, "--duration"); push(&probe, optarg); break;
		case O_RATE:
			push(&probe, "--sample-rate"); push(&probe, optarg);
			break;
		case O_DBG: push(&probe, "--debug-dir"); push(&probe, optarg); break;
		case O_NOU: push(&probe, "--no-user-stacks"); break;
		case O_NOK: push(&probe, "--no-kernel-stacks"); break;
		case O_OUT: outdir = optarg; break;
		case O_IVL:
			push(&agg, "--collect-interval"); push(&agg, optarg);
			break;
		case 'c': config = 1; push(&agg, "--config"); push(&agg, optarg);
			break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		fatalx("unexpected argument %s", argv[optind]);
	if (verbose) {
		push(&probe, "-v");
		push(&agg, "-v");
	}
	if (!outdir && !config)
		outdir = "./profiles";
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair");
	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid == 0) {
		close(sv[0]);
		exec_aggregator(sv[1], user, outdir, &agg);
	}
	close(sv[1]);
	exec_probe(sv[0], &probe);
}
