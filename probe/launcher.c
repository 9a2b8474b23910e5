// SPDX-License-Identifier: BSD-2-Clause
/* launcher.c - splitprof: socketpair, fork; the child execs the aggregator as
 * an unprivileged user (socket at fd 3, output dir at fd 4), the parent the
 * probe with the other end. Both binaries are found next to this one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "sp_log.h"

#define AGG_CONTROL_FD	3
#define AGG_OUTDIR_FD	4
#define MAX_ARGS	64

enum { TO_PROBE = 256, TO_AGG, TO_BOTH, O_USER, O_OUT };

/* Passed on unchanged, as --name[=value], to the probe or the aggregator.
 * The aggregator merges the sampling options with -c FILE and sends the
 * probe the result as its first message (--config-from-peer): the probe
 * never parses YAML, and we parse nothing but our command line. */
static const struct option lo[] = {
	{ "duration", required_argument, NULL, TO_PROBE },
	{ "sample-rate", required_argument, NULL, TO_AGG },
	{ "no-user-stacks", no_argument, NULL, TO_AGG },
	{ "no-kernel-stacks", no_argument, NULL, TO_AGG },
	{ "debug-dir", required_argument, NULL, TO_PROBE },
	{ "collect-interval", required_argument, NULL, TO_AGG },
	{ "demangle", required_argument, NULL, TO_AGG },
	{ "sandbox-debug", no_argument, NULL, TO_AGG },
	{ "discover-commandline", no_argument, NULL, TO_BOTH },	/* ours to allow */
	{ "config", required_argument, NULL, 'c' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "aggregator-user", required_argument, NULL, O_USER },
	{ "output-dir", required_argument, NULL, O_OUT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct argv_buf {
	char *v[MAX_ARGS];	/* v[0]: the binary, set by exec_sibling */
	int n;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: splitprof [-c FILE] [--duration DUR (default: until SIGINT/SIGTERM)]\n"
"                 [--sample-rate HZ (97)] [--collect-interval DUR (15s)]\n"
"                 [--output-dir DIR (./profiles unless -c is given)]\n"
"                 [--aggregator-user USER (nobody)] [--no-user-stacks]\n"
"                 [--no-kernel-stacks] [--debug-dir DIR] [--sandbox-debug]\n"
"                 [--discover-commandline] [--demangle LEVEL (none)] [-v] [-h]\n"
"Runs splitprof-probe (privileged) and splitprof-aggregator (as USER) over a\n"
"socketpair; it creates the output directory and hands it over open. With -c\n"
"the file's sample_rate and collect_*_profile reach the probe too (the\n"
"aggregator sends them); flags given here override the file. Command lines\n"
"are served only with --discover-commandline here, whatever the file says.\n");
}

static void forward(struct argv_buf *a, const char *name, const char *val)
{
	if (a->n >= MAX_ARGS - 1)
		fatalx("too many arguments");
	if (asprintf(&a->v[a->n++], "--%s%s%s", name, val ? "=" : "",
		     val ? val : "") < 0)
		fatal("asprintf");
}

/* Execs the binary name next to /proc/self/exe with a's arguments. */
static __attribute__((noreturn)) void exec_sibling(const char *name, struct argv_buf *a)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		fatal("readlink /proc/self/exe");
	self[n] = '\0';
	if (asprintf(&a->v[0], "%s/%s", dirname(self), name) < 0)
		fatal("asprintf");
	execv(a->v[0], a->v);
	fatal("exec %s", a->v[0]);
}

/* mkdir -p; the last component is handed to the aggregator's user. */
static void make_output_dir(const char *path, const struct passwd *pw)
{
	char *p = strdup(path), *s;

	if (!p)
		fatal("strdup");
	for (s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
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

static __attribute__((noreturn)) void exec_aggregator(int sock,
		const char *user, const char *outdir, struct argv_buf *a)
{
	struct passwd *pw = getpwnam(user);
	int dfd = -1, c;

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
	/* dup2 clears FD_CLOEXEC, so these two survive the exec. */
	if (sock < 0 || (outdir && dfd < 0) || dup2(sock, AGG_CONTROL_FD) < 0 ||
	    (dfd >= 0 && dup2(dfd, AGG_OUTDIR_FD) < 0))
		fatal("placing the aggregator's fds");
	forward(a, "control-fd", "3");
	if (dfd >= 0)
		forward(a, "output-dir-fd", "4");
	/* Only root (CAP_SETPCAP) can empty the bounding set: do it for the
	 * aggregator now, it cannot once it runs as the user. */
	for (c = 0; prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0; c++)
		;
	if (errno != EINVAL)
		fatal("emptying the bounding set");
	if (setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("dropping to user %s", user);
	exec_sibling("splitprof-aggregator", a);
}

int main(int argc, char **argv)
{
	struct argv_buf probe = { .n = 1 }, agg = { .n = 1 };
	const char *user = "nobody", *outdir = NULL;
	int c, i = 0, sv[2], config = 0;
	char fdstr[16];
	pid_t pid;

	log_init("splitprof", SP_LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:vh", lo, &i)) != -1) {
		switch (c) {
		case TO_PROBE: forward(&probe, lo[i].name, optarg); break;
		case TO_AGG: forward(&agg, lo[i].name, optarg); break;
		case TO_BOTH:
			forward(&probe, lo[i].name, optarg);
			forward(&agg, lo[i].name, optarg);
			break;
		case 'c': config = 1; forward(&agg, "config", optarg); break;
		case 'v':
			forward(&probe, "verbose", NULL);
			forward(&agg, "verbose", NULL);
			break;
		case O_USER: user = optarg; break;
		case O_OUT: outdir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		fatalx("unexpected argument %s", argv[optind]);
	if (!outdir && !config)
		outdir = "./profiles";
	forward(&probe, "config-from-peer", NULL);
	forward(&agg, "send-probe-config", NULL);
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
	/* The probe's end stays open across exec. */
	if (fcntl(sv[0], F_SETFD, 0) < 0)
		fatal("fcntl");
	snprintf(fdstr, sizeof(fdstr), "%d", sv[0]);
	forward(&probe, "socket-fd", fdstr);
	exec_sibling("splitprof-probe", &probe);
}
