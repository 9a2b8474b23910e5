/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * receiver_util.h - start and stop tests/receiver/receiver.go, the Go
 * (standard library only) Pyroscope receiver the upload and sandbox tests
 * push to. It decodes every request and logs it as one JSON line.
 * Included by test files only.
 */
#ifndef TESTS_RECEIVER_UTIL_H
#define TESTS_RECEIVER_UTIL_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECEIVER_SRC	"tests/receiver/receiver.go"

/* ---- the receiver ----------------------------------------------------- */

/* Built once per machine (rebuilt when the source is newer), offline. */
static inline const char *receiver_bin(void)
{
	static char bin[64];
	char cmd[512];
	struct stat src, out;

	if (stat(RECEIVER_SRC, &src) < 0)
		cr_skip_test("%s not found: run from the repository root",
			     RECEIVER_SRC);
	snprintf(bin, sizeof(bin), "/tmp/splitprof-receiver-%u", getuid());
	if (stat(bin, &out) == 0 && out.st_mtime >= src.st_mtime)
		return bin;
	if (system("command -v go >/dev/null") != 0)
		cr_skip_test("no Go toolchain to build the test receiver");
	snprintf(cmd, sizeof(cmd),
		 "HOME=/tmp GOCACHE=/tmp/go-cache GO111MODULE=off GOFLAGS= "
		 "GOPROXY=off go build -o %s.%d %s && mv %s.%d %s",
		 bin, getpid(), RECEIVER_SRC, bin, getpid(), bin);
	cr_assert_eq(system(cmd), 0, "building the receiver failed: %s", cmd);
	return bin;
}

struct rcv {
	pid_t pid;
	int port;
	char log[128];
};

static inline int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(s >= 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &al), 0);
	close(s);
	return ntohs(a.sin_port);
}

/* Waits for the receiver's "listening" line: no sleeping. */
static inline void rcv_wait_ready(struct rcv *r, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char line[256] = "";
	size_t n = 0;
	ssize_t k;

	while (!strchr(line, '\n') && n < sizeof(line) - 1) {
		cr_assert_eq(poll(&p, 1, 15000), 1, "receiver did not start");
		k = read(fd, line + n, sizeof(line) - 1 - n);
		cr_assert(k > 0, "receiver exited early");
		n += (size_t)k;
		line[n] = '\0';
	}
	cr_assert(sscanf(line, "listening 127.0.0.1:%d", &r->port) == 1,
		  "receiver said: %s", line);
	close(fd);
}

/* args: NULL-terminated receiver flags after -addr and -log. */
static inline void rcv_start_on(struct rcv *r, int port, const char *dir,
			 const char *name, const char *const *args)
{
	const char *bin = receiver_bin();
	const char *argv[24] = { bin, "-addr", NULL, "-log", r->log };
	char addr[64], errlog[128];
	int pfd[2], i = 5;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	argv[2] = addr;
	snprintf(r->log, sizeof(r->log), "%s/%s.jsonl", dir, name);
	snprintf(errlog, sizeof(errlog), "%s/%s.stderr", dir, name);
	while (args && *args && i < 23)
		argv[i++] = *args++;
	argv[i] = NULL;
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	r->pid = fork();
	cr_assert(r->pid >= 0);
	if (r->pid == 0) {
		/* a test that fails or times out must not leave it behind */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		/* its own log (TLS handshake errors are expected noise) */
		dup2(open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644), 2);
		execv(bin, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(pfd[1]);
	rcv_wait_ready(r, pfd[0]);
}

static inline void rcv_stop(struct rcv *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
}

#endif /* TESTS_RECEIVER_UTIL_H */
