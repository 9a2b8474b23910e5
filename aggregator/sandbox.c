// SPDX-License-Identifier: BSD-2-Clause
/*
 * sandbox.c - the aggregator gives up everything it does not need before
 * it parses a single byte of untrusted input: another user, no
 * capabilities, no core dumps, no_new_privs, Landlock (create and write
 * only beneath the output folder, read no path at all) and a seccomp
 * allowlist that kills the whole process on anything else.
 *
 * The filter follows OpenSSH's sandbox-seccomp-filter.c: the architecture
 * is checked first (libseccomp emits that check; a foreign arch is killed),
 * the default action kills, and every unusual allowance says why. It kills
 * the process, not the thread (SECCOMP_RET_KILL_PROCESS): a multi-threaded
 * aggregator must not half-survive a violation.
 *
 * Files the aggregator reads after lockdown arrive as fds from the probe;
 * Landlock does not restrict operations on fds that are already open, and
 * seccomp cannot tell a received fd from any other, which is why the rules
 * below are about what may be done, not to which file.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <seccomp.h>

#include "loop.h"
#include "sandbox.h"
#include "sp_log.h"

/* ---- Landlock constants newer than Debian 12's headers --------------- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER		(1ULL << 13)	/* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE		(1ULL << 14)	/* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV		(1ULL << 15)	/* ABI 5 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)	/* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL			(1ULL << 1)	/* ABI 6 */
#endif

/* The ABI 6 layout; an older kernel accepts it while the tail is zero. */
struct sb_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define LL_FS_ABI1	((1ULL << 13) - 1)	/* EXECUTE .. MAKE_SYM */

/* Beneath the output folder: the local sink's temp file, rename, retention. */
#define LL_OUTPUT_ABI1	(LANDLOCK_ACCESS_FS_WRITE_FILE | \
			 LANDLOCK_ACCESS_FS_READ_DIR | \
			 LANDLOCK_ACCESS_FS_REMOVE_DIR | \
			 LANDLOCK_ACCESS_FS_REMOVE_FILE | \
			 LANDLOCK_ACCESS_FS_MAKE_DIR | \
			 LANDLOCK_ACCESS_FS_MAKE_REG)

/* ---- ioctls, as in procmaps.c (Debian 12's linux/fs.h predates 6.11) -- */

#ifndef PROCMAP_QUERY
#define PROCMAP_QUERY	_IOWR('f', 17, char[104])	/* struct procmap_query */
#endif

#define CLONE_NS_FLAGS	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | \
			 CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
			 CLONE_NEWNET)

/* ---- the allowlist ---------------------------------------------------- */

#define SB_ALLOW	0
#define SB_ERRNO	1

#define SB_ALWAYS	0
#define SB_IF_URING	1	/* only with the io_uring loop backend */
#define SB_IF_THREADS	2	/* only with sandbox_opts.threads */
#define SB_SELF_PID	4	/* arg[0].datum_a is replaced by getpid() */

struct sb_rule {
	int nr;
	unsigned char action;	/* SB_ALLOW or SB_ERRNO */
	unsigned char when;	/* SB_ALWAYS or SB_IF_*, | SB_SELF_PID */
	unsigned char err;	/* errno for SB_ERRNO */
	unsigned char argc;
	struct scmp_arg_cmp arg[2];
};

#define ALLOW(name) { SCMP_SYS(name), SB_ALLOW, SB_ALWAYS, 0, 0, { { 0 } } }
#define ALLOW_IF(name, w) { SCMP_SYS(name), SB_ALLOW, (w), 0, 0, { { 0 } } }
#define ERRNO(name, e) { SCMP_SYS(name), SB_ERRNO, SB_ALWAYS, (e), 0, { { 0 } } }
/* allowed when argument a == v */
#define ARG_EQ(name, a, v) { SCMP_SYS(name), SB_ALLOW, SB_ALWAYS, 0, 1, \
	{ { (a), SCMP_CMP_EQ, (scmp_datum_t)(v), 0 } } }
/* allowed when (argument a & m) == v */
#define ARG_MASK(name, a, m, v) { SCMP_SYS(name), SB_ALLOW, SB_ALWAYS, 0, 1, \
	{ { (a), SCMP_CMP_MASKED_EQ, (scmp_datum_t)(m), (scmp_datum_t)(v) } } }

static const struct sb_rule sb_rules[] = {
	/* ---- memory: malloc, free, thread stacks ---- */
	ALLOW(brk), ALLOW(munmap), ALLOW(mremap),
	/* Never executable memory. Shared mappings only read-only: the ring
	 * and the consumer page are mapped before lockdown, and neither libc
	 * nor libelf (ELF_C_READ: pread) nor libcurl needs a shared writable
	 * map. seccomp can't tell a received fd from another one, so the rule
	 * is on the flags alone. */
	ARG_MASK(mmap, 2, PROT_EXEC | PROT_WRITE, 0),
	{ SCMP_SYS(mmap), SB_ALLOW, SB_ALWAYS, 0, 2, {
		{ 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0 },
		{ 3, SCMP_CMP_MASKED_EQ, MAP_TYPE, MAP_PRIVATE } } },
	/* malloc arenas and guard pages. mprotect can't see the mapping type:
	 * a read-only shared map of a file we may write could become writable,
	 * which gives nothing write() doesn't; the ring is protected by its
	 * seals (F_SEAL_FUTURE_WRITE), not by this filter. */
	ARG_MASK(mprotect, 2, PROT_EXEC, 0),
	/* free() and thread exit give memory back; OpenSSH's list. */
	ARG_EQ(madvise, 2, MADV_NORMAL), ARG_EQ(madvise, 2, MADV_DONTNEED),
	ARG_EQ(madvise, 2, MADV_FREE), ARG_EQ(madvise, 2, MADV_DONTFORK),
	ARG_EQ(madvise, 2, MADV_DONTDUMP), ARG_EQ(madvise, 2, MADV_WIPEONFORK),
	/* huge-page hints only (ASan's and other allocators set them) */
	ARG_EQ(madvise, 2, MADV_HUGEPAGE), ARG_EQ(madvise, 2, MADV_NOHUGEPAGE),
	/* glibc locks and condition variables; no PI or WAKE_OP. The mask
	 * ignores FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME. */
	ARG_MASK(futex, 1, 0x7f, FUTEX_WAIT), ARG_MASK(futex, 1, 0x7f, FUTEX_WAKE),
	ARG_MASK(futex, 1, 0x7f, FUTEX_WAIT_BITSET),
	ARG_MASK(futex, 1, 0x7f, FUTEX_WAKE_BITSET),
	ARG_MASK(futex, 1, 0x7f, FUTEX_REQUEUE),
	ARG_MASK(futex, 1, 0x7f, FUTEX_CMP_REQUEUE),

	/* ---- the event loop: ring eventfd, control socket, signalfd, timers */
	ALLOW(epoll_create1), ALLOW(epoll_ctl), ALLOW(epoll_wait),
	ALLOW(epoll_pwait), ALLOW(epoll_pwait2), ALLOW(poll), ALLOW(ppoll),
	ALLOW(eventfd2), ALLOW(timerfd_create), ALLOW(timerfd_settime),
	ALLOW(timerfd_gettime), ALLOW(signalfd4),
	/* Only entering an existing ring: its opcodes were restricted with
	 * IORING_REGISTER_RESTRICTIONS before lockdown, setup and register
	 * are never allowed (not in this table: they kill). */
	ALLOW_IF(io_uring_enter, SB_IF_URING),

	/* ---- I/O on fds we hold ---- */
	ALLOW(read), ALLOW(readv), ALLOW(pread64), ALLOW(write), ALLOW(writev),
	ALLOW(lseek), ALLOW(close), ALLOW(fcntl),
	/* glibc >= 2.33 implements fstat as newfstatat(fd, "", AT_EMPTY_PATH) */
	ALLOW(fstat), ALLOW(newfstatat), ALLOW(statx),
	/* glibc's realpath/ttyname family; no open follows */
	ALLOW(readlink), ALLOW(readlinkat),
	ARG_EQ(ioctl, 1, PROCMAP_QUERY),	/* on a maps fd from the probe */
	ARG_EQ(ioctl, 1, TCGETS),		/* stdio's isatty() */

	/* ---- the output folder; Landlock confines these beneath it ---- */
	/* Also what libc and libcurl try to open (resolv.conf, CA files):
	 * Landlock refuses with EACCES, which they handle. */
	ALLOW(openat),
	/* glibc's renameat2(..., 0) is the renameat syscall */
	ALLOW(mkdirat), ALLOW(renameat), ALLOW(renameat2), ALLOW(unlinkat),
	ALLOW(linkat),
	ALLOW(getdents64), ALLOW(fdatasync), ALLOW(fsync), ALLOW(ftruncate),

	/* ---- sockets: the probe's control socket, uploads ---- */
	/* No AF_NETLINK, AF_PACKET or any other family. */
	ARG_EQ(socket, 0, AF_UNIX), ARG_EQ(socket, 0, AF_INET),
	ARG_EQ(socket, 0, AF_INET6),
	ARG_EQ(socketpair, 0, AF_UNIX),	/* libcurl's multi wake-up pair */
	ALLOW(connect), ALLOW(sendmsg), ALLOW(recvmsg), ALLOW(sendto),
	ALLOW(recvfrom), ALLOW(getsockopt), ALLOW(setsockopt),
	ALLOW(getsockname), ALLOW(getpeername), ALLOW(shutdown),

	/* ---- time, identity, signals, exit ---- */
	ALLOW(clock_gettime), ALLOW(clock_getres), ALLOW(gettimeofday),
	ALLOW(clock_nanosleep), ALLOW(nanosleep),
	ALLOW(getrandom),	/* OpenSSL, hash seeds */
	ALLOW(getpid), ALLOW(gettid), ALLOW(getuid), ALLOW(geteuid),
	ALLOW(getgid), ALLOW(getegid), ALLOW(uname), ALLOW(sched_yield),
	/* glibc's qsort sizes its buffer with sysconf(_SC_PHYS_PAGES) */
	ALLOW(sysinfo), ALLOW(sched_getaffinity),
	/* the exit summary reports our own CPU time and peak RSS */
	ALLOW(getrusage),
	/* a thread's own alternate signal stack (ASan sets one per thread) */
	ALLOW(sigaltstack),
	/* read-only rlimit queries (new_limit == NULL) */
	{ SCMP_SYS(prlimit64), SB_ALLOW, SB_ALWAYS, 0, 2, {
		{ 0, SCMP_CMP_EQ, 0, 0 }, { 2, SCMP_CMP_EQ, 0, 0 } } },
	ALLOW(rt_sigaction), ALLOW(rt_sigprocmask), ALLOW(rt_sigreturn),
	ALLOW(restart_syscall),
	/* abort() and raise() signal ourselves; no other process. */
	{ SCMP_SYS(tgkill), SB_ALLOW, SB_SELF_PID, 0, 1, {
		{ 0, SCMP_CMP_EQ, 0, 0 } } },
	ALLOW(exit), ALLOW(exit_group),

	/* ---- threads (libcurl's threaded resolver), never processes ---- */
	{ SCMP_SYS(clone), SB_ALLOW, SB_IF_THREADS, 0, 1, {
		{ 0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_NS_FLAGS,
		  CLONE_THREAD } } },
	/* a new thread registers these; glibc aborts if rseq fails */
	ALLOW_IF(set_robust_list, SB_IF_THREADS), ALLOW_IF(rseq, SB_IF_THREADS),

	/* ---- refused without killing: harmless probes that libc handles ---- */
	/* clone3 takes its flags in memory seccomp can't read: ENOSYS makes
	 * glibc's pthread_create fall back to clone, filtered above. */
	ERRNO(clone3, ENOSYS),
	/* nothing needs prctl after lockdown (no_new_privs and dumpable are
	 * set); a library that tries (thread names) gets EPERM. */
	ERRNO(prctl, EPERM),
};

#define SB_NRULES	((int)(sizeof(sb_rules) / sizeof(sb_rules[0])))

int sandbox_filter_count(void)
{
	return SB_NRULES;
}

void sandbox_filter_describe(FILE *f)
{
	static const char *const op[] = { "", "!=", "<", "<=", "==", ">=",
					   ">", "&" };
	const struct sb_rule *r;
	char *name;
	unsigned i;

	for (r = sb_rules; r < sb_rules + SB_NRULES; r++) {
		name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
		fprintf(f, "%-18s %s", name ? name : "?",
			r->action == SB_ALLOW ? "allow" : "errno");
		free(name);
		if (r->action == SB_ERRNO)
			fprintf(f, " %s", strerror(r->err));
		for (i = 0; i < r->argc; i++) {
			const struct scmp_arg_cmp *a = &r->arg[i];

			fprintf(f, " arg%u%s%#llx", a->arg,
				op[a->op < 8 ? a->op : 0],
				(unsigned long long)a->datum_a);
			if (a->op == SCMP_CMP_MASKED_EQ)
				fprintf(f, "==%#llx",
					(unsigned long long)a->datum_b);
		}
		fprintf(f, "%s%s\n",
			r->when & SB_IF_URING ? " [io_uring]" : "",
			r->when & SB_IF_THREADS ? " [threads]" : "");
	}
}

/* ---- state between prepare and lockdown -------------------------------- */

static struct {
	struct sandbox_opts o;
	bool prepared;
	bool have_user;
	uid_t uid;
	gid_t gid;
} sb;

int sandbox_prepare(const struct sandbox_opts *o)
{
	struct passwd *pw;
	struct stat st;

	sb.o = *o;
	sb.o.user = NULL;	/* the caller's string may not live on */
	sb.prepared = true;
	if (o->null_backend)
		return 0;
	if (o->loop_backend != LOOP_IO_URING && o->loop_backend != LOOP_EPOLL)
		return -EINVAL;
	/* -1: no local folder (upload only): nothing may be written at all */
	if (o->output_dir_fd >= 0 && (fstat(o->output_dir_fd, &st) < 0 ||
				      !S_ISDIR(st.st_mode)))
		return -ENOTDIR;
	if (o->user) {
		errno = 0;
		pw = getpwnam(o->user);
		if (!pw)
			return errno ? -errno : -ENOENT;
		if (pw->pw_uid == 0)
			return -EPERM;	/* "dropping" to root is no drop */
		sb.uid = pw->pw_uid;
		sb.gid = pw->pw_gid;
		sb.have_user = true;
	}
	return 0;
}

/* ---- the steps of lockdown, in order ------------------------------------ */

static bool running_as_root(void)
{
	uid_t r, e, s;

	return getresuid(&r, &e, &s) < 0 || r == 0 || e == 0 || s == 0;
}

/* Landlock confines only the calling thread: refuse to leave others out. */
static int single_threaded(void)
{
	char buf[4096], *p;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strstr(buf, "\nThreads:");
	return p && atoi(p + 9) == 1 ? 0 : -EBUSY;
}

/* The bounding set can only shrink with CAP_SETPCAP, i.e. while root. */
static int drop_bounding_set(void)
{
	int c;

	/* EPERM: root without CAP_SETPCAP (a container); keep what we can't */
	for (c = 0; prctl(PR_CAPBSET_READ, c) >= 0; c++) {
		if (prctl(PR_CAPBSET_DROP, c) < 0 && errno != EPERM)
			return -errno;
	}
	return 0;
}

/* OpenSSH's permanently_set_uid: switch, then prove there is no way back. */
static int switch_user(void)
{
	uid_t r, e, s;

	if (setgroups(0, NULL) < 0 || setresgid(sb.gid, sb.gid, sb.gid) < 0 ||
	    setresuid(sb.uid, sb.uid, sb.uid) < 0)
		return -errno;
	if (getresuid(&r, &e, &s) < 0 || r != sb.uid || e != sb.uid ||
	    s != sb.uid || setuid(0) == 0 || setgid(0) == 0)
		return -EPERM;
	return 0;
}

static int set_user(void)
{
	int err;

	if (!running_as_root())
		return 0;	/* the launcher or the service manager did it */
	err = drop_bounding_set();
	if (!err && sb.have_user)
		err = switch_user();
	return err;
}

static int clear_capabilities(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)	/* EINVAL: kernel < 4.3, no ambient set */
		return -errno;
	return 0;
}

/*
 * No core files of a process full of other processes' data. RLIMIT_NPROC
 * counts every task of the uid, threads included, so it goes to 0 only
 * when the aggregator runs no threads.
 */
static int set_rlimits(void)
{
	struct rlimit zero = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &zero) < 0)
		return -errno;
	if (!sb.o.threads && setrlimit(RLIMIT_NPROC, &zero) < 0)
		return -errno;
	return 0;
}

static int set_prctls(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

static uint64_t landlock_handled(int abi)
{
	uint64_t fs = LL_FS_ABI1;

	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

static uint64_t landlock_output_access(int abi)
{
	uint64_t a = LL_OUTPUT_ABI1;

	if (abi >= 2)
		a |= LANDLOCK_ACCESS_FS_REFER;	/* rename between its dirs */
	if (abi >= 3)
		a |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return a;
}

/*
 * Every file system access the kernel knows is handled; the only rule
 * allows writing beneath the output folder. Nothing may be read or
 * executed by path. From ABI 6 on, abstract unix sockets and signals are
 * scoped to our own domain too.
 */
static int enter_landlock(void)
{
	struct sb_ruleset_attr ra = { 0 };
	struct landlock_path_beneath_attr pb;
	int abi, rfd, err = 0;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		log_warnx("no Landlock in this kernel (%s): the aggregator's "
			  "file system is confined by seccomp and its user only",
			  strerror(errno));
		return 0;
	}
	ra.handled_access_fs = landlock_handled(abi);
	if (abi >= 6)
		ra.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET |
			    LANDLOCK_SCOPE_SIGNAL;
	rfd = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (rfd < 0)
		return -errno;
	pb.allowed_access = landlock_output_access(abi);
	pb.parent_fd = sb.o.output_dir_fd;
	if ((pb.parent_fd >= 0 &&
	     syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH,
		     &pb, 0) < 0) ||
	    syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
		err = -errno;
	close(rfd);
	return err;
}

/* --sandbox-debug: report the syscall, fail it with ENOSYS, carry on. */
static void debug_sigsys(int sig, siginfo_t *si, void *ucv)
{
	static const char pre[] = "aggregator: seccomp violation: syscall ";
	char buf[sizeof(pre) + 16], num[12];
	int nr = si->si_syscall, n = 0, len = (int)sizeof(pre) - 1;
	ucontext_t *uc = ucv;

	(void)sig;
	memcpy(buf, pre, (size_t)len);
	if (nr < 0)
		nr = 0;
	do {
		num[n++] = (char)('0' + nr % 10);
		nr /= 10;
	} while (nr && n < (int)sizeof(num));
	while (n)
		buf[len++] = num[--n];
	buf[len++] = '\n';
	(void)!write(STDERR_FILENO, buf, (size_t)len);
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
	(void)uc;
#endif
}

static int install_debug_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = debug_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

static bool rule_applies(const struct sb_rule *r)
{
	if ((r->when & SB_IF_URING) && sb.o.loop_backend != LOOP_IO_URING)
		return false;
	if ((r->when & SB_IF_THREADS) && !sb.o.threads)
		return false;
	return true;
}

static int add_rule(scmp_filter_ctx ctx, const struct sb_rule *r)
{
	struct scmp_arg_cmp arg[2];
	uint32_t action = r->action == SB_ALLOW ? SCMP_ACT_ALLOW
						: SCMP_ACT_ERRNO(r->err);

	memcpy(arg, r->arg, sizeof(arg));
	if (r->when & SB_SELF_PID)
		arg[0].datum_a = (scmp_datum_t)getpid();
	return seccomp_rule_add_array(ctx, action, r->nr, r->argc, arg);
}

static int enter_seccomp(void)
{
	scmp_filter_ctx ctx;
	int i, err;

	ctx = seccomp_init(sb.o.debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	/* libseccomp checks the arch first; a foreign arch is killed too. */
	err = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
			       SCMP_ACT_KILL_PROCESS);
	for (i = 0; !err && i < SB_NRULES; i++)
		if (rule_applies(&sb_rules[i]))
			err = add_rule(ctx, &sb_rules[i]);
	if (!err && sb.o.debug)
		err = install_debug_handler();
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err;
}

static int step(int err, const char *what)
{
	if (err < 0)
		log_warnx("sandbox: %s: %s", what, strerror(-err));
	return err;
}

int sandbox_lockdown(void)
{
	int err;

	if (!sb.prepared)
		return -EINVAL;
	if (sb.o.null_backend)
		return 0;
	if (running_as_root() && !sb.have_user && !sb.o.already_confined) {
		log_warnx("sandbox: refusing to run the aggregator as root: "
			  "give a user to drop to (--aggregator-user), or run "
			  "it under a service manager that confines it");
		return -EPERM;
	}
	if ((err = step(single_threaded(), "threads running")) ||
	    (err = step(set_user(), "dropping the user")) ||
	    (err = step(clear_capabilities(), "clearing capabilities")) ||
	    (err = step(set_rlimits(), "rlimits")) ||
	    (err = step(set_prctls(), "no_new_privs")) ||
	    (err = step(enter_landlock(), "Landlock")) ||
	    (err = step(enter_seccomp(), "seccomp")))
		return err;
	log_info("sandbox: uid %u, no capabilities, Landlock, seccomp %s "
		 "(%d rules)", (unsigned)getuid(),
		 sb.o.debug ? "in DEBUG mode (violations logged, not killed)"
			    : "kill", SB_NRULES);
	return 0;
}
