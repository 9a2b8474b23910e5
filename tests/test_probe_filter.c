// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_probe_filter.c - the probe's own steady-state seccomp filter
 * (probe/caps.c sandbox_enter), tested like the aggregator's: a forked,
 * single-threaded child installs it and makes one call, which must kill it
 * with SIGSYS. That the running probe shows Seccomp: 2 and NoNewPrivs: 1
 * (and its capability sets) is probe::steady_state_privileges in
 * test_probe.c; not repeated here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/perf_event.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "caps.h"

struct pf_outcome {
	int status;
	char marks[4];
};

static struct pf_outcome pf_run(int (*fn)(const void *), const void *arg)
{
	struct pf_outcome oc = { 0 };
	int p[2];
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		if (sandbox_enter() < 0)	/* the probe's, from libprobe.a */
			_exit(100);
		(void)!write(p[1], "E", 1);
		n = fn(arg);
		(void)!write(p[1], "S", 1);
		syscall(SYS_exit_group, (int)n);
	}
	close(p[1]);
	cr_assert_eq(waitpid(pid, &oc.status, 0), pid);
	n = read(p[0], oc.marks, sizeof(oc.marks) - 1);
	oc.marks[n > 0 ? n : 0] = '\0';
	close(p[0]);
	return oc;
}

struct pf_call {
	char name[32];
	long nr;
	long a[6];
};

/* Nothing the probe needs after set-up: no exec, no tracing, no new BPF
 * or perf objects, no network, no mounts, no executable memory. */
static struct pf_call pf_forbidden[] = {
	{ "execve", SYS_execve, { 0 } },
	{ "execveat", SYS_execveat, { 0 } },
	{ "ptrace", SYS_ptrace, { 0 } },
	{ "process_vm_readv", SYS_process_vm_readv, { 1 } },
	{ "process_vm_writev", SYS_process_vm_writev, { 1 } },
	{ "bpf", SYS_bpf, { 0 } },
	{ "perf_event_open", SYS_perf_event_open, { 0 } },
	{ "mount", SYS_mount, { 0 } },
	{ "umount2", SYS_umount2, { 0 } },
	{ "unshare", SYS_unshare, { 0 } },
	{ "setns", SYS_setns, { 0 } },
	{ "init_module", SYS_init_module, { 0 } },
	{ "socket_af_inet", SYS_socket, { AF_INET, SOCK_STREAM, 0 } },
	{ "socket_af_unix", SYS_socket, { AF_UNIX, SOCK_STREAM, 0 } },
	{ "connect", SYS_connect, { 0 } },
	{ "fork", SYS_fork, { 0 } },
	{ "clone", SYS_clone, { SIGCHLD } },
	{ "kill", SYS_kill, { 1, 0 } },
	{ "setuid", SYS_setuid, { 0 } },
	{ "capset", SYS_capset, { 0 } },
	{ "mmap_exec", SYS_mmap, { 0, 4096, PROT_READ | PROT_EXEC,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1 } },
	{ "mprotect_exec", SYS_mprotect, { 0, 4096, PROT_EXEC } },
	{ "ioctl_perf_enable", SYS_ioctl, { 0, PERF_EVENT_IOC_ENABLE } },
	{ "ioctl_tiocsti", SYS_ioctl, { 0, TIOCSTI } },
	{ "keyctl", SYS_keyctl, { 0 } },
	{ "io_uring_setup", SYS_io_uring_setup, { 8 } },
};

static int pf_call(const void *arg)
{
	const struct pf_call *c = arg;

	syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
	return 0;
}

ParameterizedTestParameters(probe_filter, forbidden)
{
	return cr_make_param_array(struct pf_call, pf_forbidden,
				   sizeof(pf_forbidden) /
				   sizeof(pf_forbidden[0]));
}

ParameterizedTest(struct pf_call *c, probe_filter, forbidden, .timeout = 10)
{
	struct pf_outcome oc = pf_run(pf_call, c);

	cr_log_info("probe filter, forbidden: %s", c->name);
	cr_assert_eq(oc.marks[0], 'E', "%s: filter not installed (status %#x)",
		     c->name, oc.status);
	cr_expect_str_eq(oc.marks, "E", "%s: the call returned", c->name);
	cr_expect(WIFSIGNALED(oc.status) && WTERMSIG(oc.status) == SIGSYS,
		  "%s: want SIGSYS, got status %#x", c->name, oc.status);
}

/* The control: what the probe does per aggregator session still works. */
static int pf_session(const void *arg)
{
	uint64_t one = 1;
	int m, e;

	(void)arg;
	m = memfd_create("pf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m < 0 || ftruncate(m, 65536) < 0)
		return 1;
	if (fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return 2;
	e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e < 0 || write(e, &one, sizeof(one)) != sizeof(one))
		return 3;
	if (open("/proc/self/maps", O_RDONLY | O_CLOEXEC) < 0)
		return 4;
	close(m);
	close(e);
	return 0;
}

Test(probe_filter, session_operations_allowed, .timeout = 10)
{
	struct pf_outcome oc = pf_run(pf_session, NULL);

	cr_expect(WIFEXITED(oc.status) && WEXITSTATUS(oc.status) == 0,
		  "status %#x", oc.status);
	cr_expect_str_eq(oc.marks, "ES");
}
