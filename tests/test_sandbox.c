// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_sandbox.c - the aggregator's PRODUCTION sandbox (P1, P2, P3).
 *
 * Every case forks a child that calls sandbox_lockdown() and then does one
 * thing; the parent judges how the child ended. Why not Criterion's own
 * worker with .signal = SIGSYS: the worker runs nanomsg's threads, which
 * make syscalls of their own at any time, so a SIGSYS there would not prove
 * that *our* call was the one killed, and Landlock refuses a process with
 * several threads. The forked child has one thread and makes one call;
 * before the call it writes 'E' (entered) to a pipe and after it 'S'
 * (survived), so "killed by SIGSYS after E, before S" is the only pass.
 *
 * As root the child drops to "nobody" (the bounding set is dropped too);
 * as another user it stays that user, and the cases still run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "loop.h"
#include "sandbox.h"
#include "receiver_util.h"

#define SB_USER	"nobody"

struct outdir {
	char path[64];
	int fd;
};

static void outdir_make(struct outdir *d)
{
	struct passwd *pw = getpwnam(SB_USER);

	snprintf(d->path, sizeof(d->path), "/tmp/splitprof-sbx-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path));
	if (geteuid() == 0 && pw)
		cr_assert_eq(chown(d->path, pw->pw_uid, pw->pw_gid), 0);
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(d->fd, 0);
}

static void outdir_remove(struct outdir *d)
{
	char cmd[128];

	close(d->fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d->path);
	(void)!system(cmd);
}

static void prepare(struct outdir *d, int backend, bool threads)
{
	struct sandbox_opts o = {
		.user = geteuid() == 0 ? SB_USER : NULL,
		.output_dir_fd = d->fd,
		.loop_backend = backend,
		.threads = threads,
	};

	cr_assert_eq(sandbox_prepare(&o), 0);
}

struct outcome {
	int status;
	char marks[4];	/* 'E' entered, 'S' survived */
};

/* Runs in the child before lockdown (files can still be opened). */
static void (*pre_lockdown)(void *arg);

/* Fork, lock down, run fn; the child's exit code is fn's return value. */
static struct outcome run_sandboxed(int (*fn)(void *), void *arg)
{
	struct outcome oc = { 0 };
	int p[2], r;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		if (pre_lockdown)
			pre_lockdown(arg);
		if (sandbox_lockdown() < 0)
			_exit(100);
		(void)!write(p[1], "E", 1);
		r = fn(arg);
		(void)!write(p[1], "S", 1);
		syscall(SYS_exit_group, r);
	}
	close(p[1]);
	cr_assert_eq(waitpid(pid, &oc.status, 0), pid);
	n = read(p[0], oc.marks, sizeof(oc.marks) - 1);
	oc.marks[n > 0 ? n : 0] = '\0';
	close(p[0]);
	return oc;
}

static void expect_sigsys(struct outcome oc, const char *what)
{
	cr_assert_str_eq(oc.marks[0] == 'E' ? "E" : oc.marks, "E",
			 "%s: the child did not get into the sandbox "
			 "(status %#x)", what, oc.status);
	cr_expect_str_eq(oc.marks, "E", "%s: the call returned", what);
	cr_expect(WIFSIGNALED(oc.status) && WTERMSIG(oc.status) == SIGSYS,
		  "%s: want death by SIGSYS, got status %#x", what, oc.status);
}

static void expect_exit0(struct outcome oc, const char *what)
{
	cr_expect(WIFEXITED(oc.status) && WEXITSTATUS(oc.status) == 0,
		  "%s: child status %#x (%s = failed step, signal = killed)",
		  what, oc.status, WIFEXITED(oc.status) ? "exit code" : "");
	cr_expect_str_eq(oc.marks, "ES", "%s", what);
}

/* ---- P1: one death test per forbidden call ----------------------------- */

struct forbidden {
	char name[32];
	long nr;
	long a[6];
	int backend;	/* LOOP_EPOLL or LOOP_IO_URING */
	int threads;
};

#define F(nm, ...) { .name = nm, .backend = LOOP_EPOLL, \
	.nr = __VA_ARGS__ }
#define PM_SH	(MAP_SHARED | MAP_ANONYMOUS)
#define PM_PR	(MAP_PRIVATE | MAP_ANONYMOUS)

static struct forbidden forbidden_calls[] = {
	{ "execve", SYS_execve, { 0 }, LOOP_EPOLL, 0 },
	{ "execveat", SYS_execveat, { 0 }, LOOP_EPOLL, 0 },
	{ "ptrace", SYS_ptrace, { 0 }, LOOP_EPOLL, 0 },
	{ "process_vm_readv", SYS_process_vm_readv, { 1 }, LOOP_EPOLL, 0 },
	{ "process_vm_writev", SYS_process_vm_writev, { 1 }, LOOP_EPOLL, 0 },
	{ "bpf", SYS_bpf, { 0 }, LOOP_EPOLL, 0 },
	{ "perf_event_open", SYS_perf_event_open, { 0 }, LOOP_EPOLL, 0 },
	{ "mount", SYS_mount, { 0 }, LOOP_EPOLL, 0 },
	{ "umount2", SYS_umount2, { 0 }, LOOP_EPOLL, 0 },
	{ "unshare", SYS_unshare, { CLONE_NEWUSER }, LOOP_EPOLL, 0 },
	{ "setns", SYS_setns, { 0 }, LOOP_EPOLL, 0 },
	{ "init_module", SYS_init_module, { 0 }, LOOP_EPOLL, 0 },
	{ "kexec_load", SYS_kexec_load, { 0 }, LOOP_EPOLL, 0 },
	{ "keyctl", SYS_keyctl, { 0 }, LOOP_EPOLL, 0 },
	{ "socket_af_packet", SYS_socket, { AF_PACKET, SOCK_RAW, 0 },
	  LOOP_EPOLL, 0 },
	{ "socket_af_netlink", SYS_socket, { AF_NETLINK, SOCK_RAW, 0 },
	  LOOP_EPOLL, 0 },
	{ "io_uring_setup_epoll", SYS_io_uring_setup, { 8 }, LOOP_EPOLL, 0 },
	{ "io_uring_setup_uring", SYS_io_uring_setup, { 8 }, LOOP_IO_URING, 0 },
	{ "io_uring_register", SYS_io_uring_register, { 0 }, LOOP_IO_URING, 0 },
	{ "io_uring_enter_epoll", SYS_io_uring_enter, { 0 }, LOOP_EPOLL, 0 },
	{ "mmap_exec", SYS_mmap, { 0, 4096, PROT_READ | PROT_EXEC, PM_PR, -1 },
	  LOOP_EPOLL, 0 },
	{ "mprotect_exec", SYS_mprotect, { 0, 4096, PROT_READ | PROT_EXEC },
	  LOOP_EPOLL, 0 },
	{ "mmap_shared_write", SYS_mmap,
	  { 0, 4096, PROT_READ | PROT_WRITE, PM_SH, -1 }, LOOP_EPOLL, 0 },
	{ "mmap_shared_validate_write", SYS_mmap,
	  { 0, 4096, PROT_WRITE, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1 },
	  LOOP_EPOLL, 0 },
	{ "fork", SYS_fork, { 0 }, LOOP_EPOLL, 1 },
	{ "vfork", SYS_vfork, { 0 }, LOOP_EPOLL, 1 },
	{ "clone_process_with_threads", SYS_clone, { SIGCHLD }, LOOP_EPOLL, 1 },
	{ "clone_thread_without_threads", SYS_clone,
	  { CLONE_VM | CLONE_SIGHAND | CLONE_THREAD }, LOOP_EPOLL, 0 },
	{ "clone_thread_newns", SYS_clone,
	  { CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_NEWNET },
	  LOOP_EPOLL, 1 },
	{ "kill_init", SYS_kill, { 1, 0 }, LOOP_EPOLL, 0 },
	{ "tgkill_other", SYS_tgkill, { 1, 1, 0 }, LOOP_EPOLL, 0 },
	{ "setuid_root", SYS_setuid, { 0 }, LOOP_EPOLL, 0 },
	{ "ioctl_tiocsti", SYS_ioctl, { 0, TIOCSTI }, LOOP_EPOLL, 0 },
	{ "memfd_create", SYS_memfd_create, { 0 }, LOOP_EPOLL, 0 },
	{ "userfaultfd", SYS_userfaultfd, { 0 }, LOOP_EPOLL, 0 },
	{ "open_by_handle_at", SYS_open_by_handle_at, { 0 }, LOOP_EPOLL, 0 },
	{ "chroot", SYS_chroot, { 0 }, LOOP_EPOLL, 0 },
	{ "pkey_mprotect_exec", SYS_pkey_mprotect, { 0, 4096, PROT_EXEC, -1 },
	  LOOP_EPOLL, 0 },
	{ "prlimit64_set", SYS_prlimit64, { 0, RLIMIT_CORE, 4096 },
	  LOOP_EPOLL, 0 },
	{ "seccomp", SYS_seccomp, { 0 }, LOOP_EPOLL, 0 },
	{ "landlock_create_ruleset", SYS_landlock_create_ruleset, { 0 },
	  LOOP_EPOLL, 0 },
};

static int call_forbidden(void *arg)
{
	const struct forbidden *f = arg;

	syscall(f->nr, f->a[0], f->a[1], f->a[2], f->a[3], f->a[4], f->a[5]);
	return 0;
}

ParameterizedTestParameters(sandbox_kill, forbidden)
{
	return cr_make_param_array(struct forbidden, forbidden_calls,
				   sizeof(forbidden_calls) /
				   sizeof(forbidden_calls[0]));
}

ParameterizedTest(struct forbidden *f, sandbox_kill, forbidden, .timeout = 10)
{
	struct outdir d;
	struct outcome oc;

	cr_log_info("forbidden: %s", f->name);
	outdir_make(&d);
	prepare(&d, f->backend, f->threads);
	oc = run_sandboxed(call_forbidden, f);
	expect_sigsys(oc, f->name);
	outdir_remove(&d);
}

/* pthread_create without sandbox_opts.threads: clone3 gets ENOSYS, glibc
 * falls back to clone(CLONE_THREAD), which kills. */
static void *thread_fn(void *arg)
{
	return arg;
}

static int create_thread(void *arg)
{
	pthread_t t;

	(void)arg;
	if (pthread_create(&t, NULL, thread_fn, NULL) != 0)
		return 1;
	return pthread_join(t, NULL) != 0 ? 2 : 0;
}

Test(sandbox_kill, pthread_without_threads_option, .timeout = 10)
{
	struct outdir d;

	outdir_make(&d);
	prepare(&d, LOOP_EPOLL, false);
	expect_sigsys(run_sandboxed(create_thread, NULL), "pthread_create");
	outdir_remove(&d);
}

Test(sandbox, threads_option_allows_pthread_create, .timeout = 10)
{
	struct outdir d;

	outdir_make(&d);
	prepare(&d, LOOP_EPOLL, true);
	expect_exit0(run_sandboxed(create_thread, NULL), "pthread_create");
	outdir_remove(&d);
}

/* ---- the aggregator's normal operations still work --------------------- */

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int normal_io(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct itimerspec its = { .it_value = { 0, 1000000 } };
	int dirfd = *(int *)arg, efd, ep, tfd, s, fd, *v, i;
	uint64_t x = 1;
	char buf[16];
	void *m;

	if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    write(efd, &x, sizeof(x)) != sizeof(x))
		return 1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = efd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0 ||
	    epoll_wait(ep, &out, 1, 1000) != 1)
		return 2;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
	    read(tfd, &x, sizeof(x)) != sizeof(x))
		return 3;
	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 4;
	close(s);
	if ((s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return 5;
	close(s);
	if ((s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
		return 6;
	close(s);
	m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || munmap(m, 4096) < 0)
		return 7;
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m, 4096, PROT_READ) < 0)
		return 8;
	/* malloc's mmap path, and qsort's sysconf(_SC_PHYS_PAGES) */
	v = malloc(1 << 22);
	if (!v)
		return 9;
	for (i = 0; i < (1 << 20); i++)
		v[i] = (int)(((unsigned)i * 7919u) % 1000u);
	qsort(v, 1 << 20, sizeof(int), cmp_int);
	free(v);
	if (getrandom(buf, sizeof(buf), 0) != sizeof(buf))
		return 10;
	fd = openat(dirfd, "x", O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, "hi", 2) != 2 || fdatasync(fd) < 0)
		return 11;
	close(fd);
	if (mkdirat(dirfd, "svc", 0750) < 0 ||
	    renameat2(dirfd, "x", dirfd, "svc/y.pb.gz", 0) < 0)
		return 12;
	fd = openat(dirfd, "svc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syscall(SYS_getdents64, fd, buf, 0) < 0 ? errno != EINVAL
							     : 0)
		return 13;
	if (unlinkat(dirfd, "svc/y.pb.gz", 0) < 0 ||
	    unlinkat(dirfd, "svc", AT_REMOVEDIR) < 0)
		return 14;
	printf("stdout works\n");
	fflush(stdout);
	return 0;
}

Test(sandbox, normal_operations_work, .timeout = 10)
{
	struct outdir d;

	outdir_make(&d);
	prepare(&d, LOOP_EPOLL, false);
	expect_exit0(run_sandboxed(normal_io, &d.fd), "normal operations");
	outdir_remove(&d);
}

/* Refused without killing: errno rules for libc's harmless probes. */
static int errno_rules(void *arg)
{
	(void)arg;
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 1;
	if (syscall(SYS_prctl, PR_SET_NAME, 0, 0, 0, 0) != -1 ||
	    errno != EPERM)
		return 2;
	return 0;
}

Test(sandbox, clone3_enosys_prctl_eperm, .timeout = 10)
{
	struct outdir d;

	outdir_make(&d);
	prepare(&d, LOOP_EPOLL, true);
	expect_exit0(run_sandboxed(errno_rules, NULL), "errno rules");
	outdir_remove(&d);
}

/* ---- P3: the process state after lockdown ------------------------------- */

struct status_arg {
	int fd;		/* /proc/self/status, opened before lockdown */
	int root;	/* started as root: the bounding set must be empty */
};

static const char *field(const char *buf, const char *key, char *out)
{
	const char *p = strstr(buf, key);

	out[0] = '\0';
	if (p)
		sscanf(p + strlen(key), " %31s", out);
	return out;
}

static int check_status(void *arg)
{
	static const char *const zero[] = { "\nCapPrm:", "\nCapEff:",
					    "\nCapAmb:", "\nCapInh:" };
	const struct status_arg *sa = arg;
	char buf[8192], v[32];
	ssize_t n = pread(sa->fd, buf, sizeof(buf) - 1, 0);
	size_t i;

	if (n <= 0)
		return 1;
	buf[n] = '\0';
	for (i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		if (strcmp(field(buf, zero[i], v), "0000000000000000"))
			return 2 + (int)i;
	if (sa->root &&
	    strcmp(field(buf, "\nCapBnd:", v), "0000000000000000"))
		return 6;
	if (strcmp(field(buf, "\nNoNewPrivs:", v), "1"))
		return 7;
	if (strcmp(field(buf, "\nSeccomp:", v), "2"))
		return 8;
	if (!strcmp(field(buf, "\nUid:", v), "0") || getuid() == 0 ||
	    geteuid() == 0)
		return 9;
	return 0;
}

static void open_status(void *arg)
{
	struct status_arg *sa = arg;

	sa->fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
}

Test(sandbox, status_no_caps_nnp_seccomp_nonroot, .timeout = 10)
{
	struct status_arg sa = { .fd = -1, .root = geteuid() == 0 };
	struct outdir d;

	outdir_make(&d);
	prepare(&d, LOOP_EPOLL, false);
	pre_lockdown = open_status;
	expect_exit0(run_sandboxed(check_status, &sa),
		     "/proc/self/status after lockdown");
	outdir_remove(&d);
}

/* ---- Landlock ------------------------------------------------------------ */

static int landlock_checks(void *arg)
{
	int dirfd = *(int *)arg, fd;

	fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES)
		return 1;
	fd = openat(dirfd, "x", O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0)
		return 2;
	close(fd);
	fd = open("/tmp/splitprof-sbx-escape", O_CREAT | O_WRONLY | O_CLOEXEC,
		  0600);
	if (fd >= 0 || errno != EACCES)
		return 3;
	fd = open("/proc/1/root/etc/hostname", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES)
		return 4;
	/* ".." out of the output folder is still outside it */
	fd = openat(dirfd, "../splitprof-sbx-dotdot", O_CREAT | O_WRONLY |
		    O_CLOEXEC, 0600);
	if (fd >= 0 || errno != EACCES)
		return 5;
	/* reading our own output back by path is not needed either */
	fd = openat(dirfd, "x", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES)
		return 6;
	return 0;
}

Test(sandbox, landlock_writes_only_beneath_output_dir, .timeout = 10)
{
	struct outdir d;

	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1) < 1)
		cr_skip_test("the kernel has no Landlock");
	outdir_make(&d);
	prepare(&d, LOOP_EPOLL, false);
	expect_exit0(run_sandboxed(landlock_checks, &d.fd), "Landlock");
	cr_expect_eq(access("/tmp/splitprof-sbx-escape", F_OK), -1);
	outdir_remove(&d);
}

/* Upload only, no local folder: nothing at all may be created or read. */
static int landlock_no_dir_checks(void *arg)
{
	int dirfd = *(int *)arg, fd;

	fd = openat(dirfd, "x", O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
	if (fd >= 0 || errno != EACCES)
		return 1;
	fd = open("/tmp/splitprof-sbx-escape", O_CREAT | O_WRONLY | O_CLOEXEC,
		  0600);
	if (fd >= 0 || errno != EACCES)
		return 2;
	fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES)
		return 3;
	return 0;
}

Test(sandbox, landlock_without_output_dir_writes_nowhere, .timeout = 10)
{
	struct sandbox_opts o = { .user = geteuid() == 0 ? SB_USER : NULL,
				  .output_dir_fd = -1, .loop_backend = LOOP_EPOLL };
	struct outdir d;

	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1) < 1)
		cr_skip_test("the kernel has no Landlock");
	outdir_make(&d);	/* exists, but the sandbox is not told about it */
	cr_assert_eq(sandbox_prepare(&o), 0);
	expect_exit0(run_sandboxed(landlock_no_dir_checks, &d.fd), "Landlock");
	outdir_remove(&d);
}

/* ---- refusing to run as root ---------------------------------------------- */

static int nothing(void *arg)
{
	(void)arg;
	return 0;
}

Test(sandbox, refuses_root_without_user, .timeout = 10)
{
	struct sandbox_opts o = { .loop_backend = LOOP_EPOLL };
	struct outdir d;
	struct outcome oc;

	if (geteuid() != 0)
		cr_skip_test("needs root");
	outdir_make(&d);
	o.output_dir_fd = d.fd;
	cr_assert_eq(sandbox_prepare(&o), 0);
	oc = run_sandboxed(nothing, NULL);
	cr_expect(WIFEXITED(oc.status) && WEXITSTATUS(oc.status) == 100,
		  "lockdown as root without a user must fail (status %#x)",
		  oc.status);
	cr_expect_str_eq(oc.marks, "");
	outdir_remove(&d);
}

Test(sandbox, refuses_root_without_user_eperm)
{
	struct sandbox_opts o = { .loop_backend = LOOP_EPOLL };
	struct outdir d;

	if (geteuid() != 0)
		cr_skip_test("needs root");
	outdir_make(&d);
	o.output_dir_fd = d.fd;
	cr_assert_eq(sandbox_prepare(&o), 0);
	/* refused before any step: safe to call in the test process itself */
	cr_expect_eq(sandbox_lockdown(), -EPERM);
	cr_expect_eq(geteuid(), 0);
	outdir_remove(&d);
}

Test(sandbox, prepare_rejects_bad_input)
{
	struct sandbox_opts o = { .loop_backend = LOOP_EPOLL, .output_dir_fd = 0 };
	struct outdir d;

	cr_expect_eq(sandbox_prepare(&o), -ENOTDIR);
	outdir_make(&d);
	o.output_dir_fd = d.fd;
	o.user = "no-such-user-splitprof";
	cr_expect_eq(sandbox_prepare(&o), -ENOENT);
	o.user = "root";
	cr_expect_eq(sandbox_prepare(&o), -EPERM);
	o.user = NULL;
	o.loop_backend = LOOP_AUTO;
	cr_expect_eq(sandbox_prepare(&o), -EINVAL);
	outdir_remove(&d);
}

Test(sandbox, null_backend_does_nothing)
{
	struct sandbox_opts o = { .null_backend = true, .output_dir_fd = -1 };

	cr_assert_eq(sandbox_prepare(&o), 0);
	cr_assert_eq(sandbox_lockdown(), 0);
	cr_expect_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
}

Test(sandbox, allowlist_size)
{
	FILE *f = fopen("/dev/null", "w");

	cr_log_info("seccomp table: %d rules", sandbox_filter_count());
	cr_assert_gt(sandbox_filter_count(), 0);
	if (getenv("SPLITPROF_SANDBOX_TABLE"))
		sandbox_filter_describe(stderr);
	sandbox_filter_describe(f);
	fclose(f);
}

/* ---- P2: a whole recording under the production filter ------------------- */

/*
 * The launcher passes --sandbox-debug to the aggregator, whose filter then
 * traps instead of killing and writes one line per violation:
 *   "aggregator: seccomp violation: syscall NR\n"
 * A run must write profiles and no such line.
 */
static int file_has(const char *path, const char *needle)
{
	char line[1024];
	int found = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static int count_profiles(const char *dir)
{
	char cmd[512], out[32] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find %s -name '*.pb.gz' | wc -l", dir);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	pclose(p);
	return atoi(out);
}

/*
 * Local files whose un-gzipped content the receiver never logged (it logs
 * the sha256 of each profile it un-gzipped): the same interval's profile
 * must go to both sinks byte for byte.
 */
static int local_not_uploaded(const char *dir, const char *log)
{
	char cmd[1024], out[32] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "n=0; for f in $(find %s/profiles -name '*.pb.gz'); do "
		 "h=$(gunzip -c \"$f\" | sha256sum | cut -d' ' -f1); "
		 "grep -q \"$h\" %s || n=$((n+1)); done; echo $n", dir, log);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	pclose(p);
	return out[0] ? atoi(out) : -1;
}

/* The config the e2e recording runs with: local folder and an upload. */
static void write_e2e_config(const char *dir, int port)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/conf.yaml", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "collect_interval: 2s\n"
		   "local_output: true\n"
		   "output_dir: %s/profiles\n"
		   "write:\n"
		   "  external_labels: {env: ci}\n"
		   "  endpoint:\n"
		   "    - url: http://localhost:%d\n"
		   "      headers: {X-Scope-OrgID: ci}\n", dir, port);
	fclose(f);
	cr_assert_eq(chmod(path, 0644), 0);
}

/*
 * P2: a whole recording, local folder and upload to a real receiver (by
 * host name, so the start-up resolution runs too), under the production
 * filter in logging mode: not one call outside the allowlist.
 */
Test(sandbox, e2e_zero_violations, .timeout = 60)
{
	const char *build = getenv("SPLITPROF_BUILD");
	char out[64] = "/tmp/splitprof-sbx-e2e-XXXXXX", cmd[1024], err[128];
	struct rcv r = { 0 };
	int rc, n;

	if (geteuid() != 0)
		cr_skip_test("needs root to run the probe");
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		cr_skip_test("no kernel BTF");
	cr_assert_not_null(mkdtemp(out));
	cr_assert_eq(chmod(out, 0755), 0);	/* the aggregator runs as nobody */
	rcv_start_on(&r, 0, out, "recv", NULL);
	write_e2e_config(out, r.port);
	snprintf(err, sizeof(err), "%s.stderr", out);
	snprintf(cmd, sizeof(cmd),
		 "%s/splitprof -c %s/conf.yaml --duration 6s "
		 "--output-dir %s/profiles --sandbox-debug >%s.stdout 2>%s",
		 build ? build : "build", out, out, out, err);
	rc = system(cmd);
	rcv_stop(&r);
	cr_expect_gt(file_has(r.log, "push.v1.PusherService/Push"), 0,
		     "no profile reached the receiver (%s)", r.log);
	cr_expect_eq(rc, 0, "`%s` exited %#x", cmd, rc);
	cr_expect_eq(file_has(err, "seccomp violation"), 0,
		     "the aggregator made syscalls outside its allowlist, "
		     "see %s", err);
	cr_expect_eq(file_has(err, "sandbox: uid"), 1,
		     "the aggregator never reported entering its sandbox "
		     "(see %s)", err);
	n = count_profiles(out);
	cr_expect_gt(n, 0, "no profiles written under %s/profiles", out);
	cr_expect_eq(local_not_uploaded(out, r.log), 0,
		     "a profile in the local folder never reached the "
		     "receiver with the same content (%s, %s)", out, r.log);
	if (rc == 0 && n > 0 && file_has(err, "seccomp violation") == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s %s", out, err);
		(void)!system(cmd);
	}
}
