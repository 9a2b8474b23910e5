/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sandbox.h - the aggregator's privilege drop and confinement, behind a
 * two-call interface (as OpenSSH's ssh_sandbox_init/ssh_sandbox_child):
 *
 *   sandbox_prepare   while files can still be opened: resolve the user,
 *                     check the output folder fd, probe Landlock;
 *   sandbox_lockdown  the point of no return, in a fixed order:
 *                     bounding set -> setgroups -> setresgid -> setresuid ->
 *                     capabilities -> rlimits -> no_new_privs, not dumpable
 *                     -> Landlock -> seccomp (kill the process by default).
 *
 * Call sandbox_lockdown after everything that needs a path, a new shared
 * writable mapping or io_uring set-up: after HELLO and sp_consumer_open
 * (the consumer page is the only MAP_SHARED|PROT_WRITE mapping, made before
 * the filter forbids them) and after loop_new (io_uring_setup and
 * io_uring_register are forbidden afterwards). The function is named
 * lockdown, not enter, because the probe's caps.c exports sandbox_enter and
 * the test binary links both.
 *
 * The seccomp allowlist is one table in sandbox.c: a new feature (upload,
 * metrics) adds its rows there, each with a comment saying why.
 */
#ifndef AGG_SANDBOX_H
#define AGG_SANDBOX_H

#include <stdbool.h>
#include <stdio.h>

struct sandbox_opts {
	/* drop to this user when started as root ("nobody", "splitprof") */
	const char *user;
	/*
	 * The service manager already confined us (systemd DynamicUser=,
	 * a container with its own user namespace): stay as we are. Without
	 * it, running on as uid 0 is refused.
	 */
	bool already_confined;
	/* Landlock: files may be created, written, removed only beneath it;
	 * -1 (upload only, no local folder): nowhere */
	int output_dir_fd;
	/* LOOP_IO_URING or LOOP_EPOLL, the backend loop_new chose */
	int loop_backend;
	/*
	 * Threads (libcurl's threaded resolver): clone(CLONE_THREAD) is
	 * allowed and RLIMIT_NPROC left alone, because the kernel counts
	 * threads against it. Without it any clone kills the process.
	 */
	bool threads;
	/*
	 * --sandbox-debug: a violation writes "aggregator: seccomp violation:
	 * syscall NR" to stderr and fails with ENOSYS instead of killing. For
	 * developing the allowlist only, never in production.
	 */
	bool debug;
	/* unit tests of other modules: both calls succeed and do nothing */
	bool null_backend;
};

/* 0 or -errno (-ENOENT: no such user, -ENOTDIR: output_dir_fd). */
int sandbox_prepare(const struct sandbox_opts *o);

/*
 * 0 or -errno; logs what failed. -EPERM: uid 0 without a user to drop to
 * and without already_confined. After a failure the process is in an
 * unknown state between the steps and must exit.
 */
int sandbox_lockdown(void);

/* Rows in the seccomp table (allow and errno rules; the report's number). */
int sandbox_filter_count(void);
/* One line per row: syscall name, action, argument condition. */
void sandbox_filter_describe(FILE *f);

#endif /* AGG_SANDBOX_H */
