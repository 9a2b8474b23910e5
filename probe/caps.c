// SPDX-License-Identifier: BSD-2-Clause
/*
 * caps.c - capabilities, no_new_privs and seccomp. Set-up: CAP_BPF, PERFMON,
 * SYSLOG (real kallsyms addresses), SYS_RESOURCE < 5.11 (RLIMIT_MEMLOCK).
 * Steady: SYS_PTRACE (/proc/P/maps), CHECKPOINT_RESTORE (map_files). No SYS_ADMIN.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <seccomp.h>

#include "sp_log.h"
#include "caps.h"

#define N(a)		(sizeof(a) / sizeof((a)[0]))
#define BIT(c)		(1ull << (c))
#define CAPS_STEADY	(BIT(CAP_SYS_PTRACE) | BIT(CAP_CHECKPOINT_RESTORE))
#define CAPS_SETUP	(CAPS_STEADY | BIT(CAP_BPF) | BIT(CAP_PERFMON) | \
			 BIT(CAP_SYSLOG))
#define CAP(c)		{ c, #c }

static const struct { int cap; const char *name; } cap_names[] = {
	CAP(CAP_BPF), CAP(CAP_PERFMON), CAP(CAP_SYS_PTRACE),
	CAP(CAP_CHECKPOINT_RESTORE), CAP(CAP_SYSLOG), CAP(CAP_SYS_RESOURCE),
};

/* major * 1000 + minor, 0 if unknown. */
static int kernel_version(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major * 1000 + minor;
}

static uint64_t caps_setup_set(void)
{
	return CAPS_SETUP | (kernel_version() < 5011 ? BIT(CAP_SYS_RESOURCE) : 0);
}

static int caps_get(uint64_t *eff, uint64_t *prm)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0) {
		log_warn("capget");
		return -errno;
	}
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	return 0;
}

/* Sets effective = permitted = set, inheritable = 0. */
static int caps_set(uint64_t set)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)set, (uint32_t)set, 0 },
		{ (uint32_t)(set >> 32), (uint32_t)(set >> 32), 0 },
	};

	if (syscall(SYS_capset, &h, d) == 0)
		return 0;
	log_warn("capset %#llx", (unsigned long long)set);
	return -errno;
}

int caps_check(void)
{
	uint64_t eff, prm, missing;
	int v = kernel_version(), err;
	size_t i;

	if (v < 5008) {
		log_warnx("kernel %d.%d is too old: the probe needs 5.8 or newer "
			  "(BPF ring buffer, CAP_BPF, CAP_PERFMON)",
			  v / 1000, v % 1000);
		return -ENOSYS;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		log_warn("kernel BTF /sys/kernel/btf/vmlinux is missing "
			 "(needs CONFIG_DEBUG_INFO_BTF=y)");
		return -ENOENT;
	}
	err = caps_get(&eff, &prm);
	if (err)
		return err;
	missing = caps_setup_set() & ~prm;
	for (i = 0; i < N(cap_names); i++)
		if (missing & BIT(cap_names[i].cap))
			log_warnx("missing capability %s", cap_names[i].name);
	return missing ? -EPERM : 0;
}

/* Bounding set straight to the steady set; needs CAP_SETPCAP (full root only:
 * a systemd unit sets CapabilityBoundingSet= itself). */
static void bounding_reduce(uint64_t eff)
{
	int c, dropped = 0;

	if (!(eff & BIT(CAP_SETPCAP)))
		return;
	for (c = 0; c < 64 && prctl(PR_CAPBSET_READ, c) >= 0; c++)
		if (!(CAPS_STEADY & BIT(c)) && prctl(PR_CAPBSET_DROP, c) == 0)
			dropped++;
	log_info("dropped %d capabilities from the bounding set", dropped);
}

int caps_reduce_setup(void)
{
	uint64_t eff, prm, want = caps_setup_set();
	int err = caps_get(&eff, &prm);

	if (err)
		return err;
	bounding_reduce(eff);
	err = caps_set(want);
	if (!err && prm != want)
		log_info("capabilities reduced to the set-up set %#llx",
			 (unsigned long long)want);
	return err;
}

int caps_drop_steady(void)
{
	int err = caps_set(CAPS_STEADY);

	if (err)
		return err;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_warn("prctl");
		return -errno;
	}
	log_info("dropped CAP_BPF, CAP_PERFMON, CAP_SYSLOG; keeping "
		 "CAP_SYS_PTRACE and CAP_CHECKPOINT_RESTORE; no_new_privs set");
	return 0;
}

/* Syscalls of the steady-state loop without argument checks. */
static const int sandbox_allow[] = {
	/* event loop: epoll set, signalfd, timerfd, eventfd wake-ups */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2),
	SCMP_SYS(epoll_ctl), SCMP_SYS(read), SCMP_SYS(write),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	SCMP_SYS(clock_gettime), SCMP_SYS(restart_syscall),
	/* control socket: accept, SO_PEERCRED, messages with SCM_RIGHTS */
	SCMP_SYS(accept4), SCMP_SYS(getsockopt), SCMP_SYS(recvmsg),
	SCMP_SYS(sendmsg), SCMP_SYS(close),
	/* a fresh shared ring per aggregator: memfd, size, seal, eventfd */
	SCMP_SYS(memfd_create), SCMP_SYS(ftruncate), SCMP_SYS(fallocate),
	SCMP_SYS(fcntl), SCMP_SYS(eventfd2), SCMP_SYS(munmap),
	/* broker: open /proc/P/... and debug files, check type, ELF magic */
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(pread64),
	SCMP_SYS(readlinkat),	/* exe and cwd paths for OPEN_PROC */
	SCMP_SYS(lseek),	/* rewind the kallsyms fd for a new aggregator */
	/* malloc and libc internals */
	SCMP_SYS(brk), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(futex),
	/* waiting for the launcher's aggregator child on shutdown */
	SCMP_SYS(wait4), SCMP_SYS(rt_sigtimedwait), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(exit_group), SCMP_SYS(exit),
};

/* Syscalls allowed only with one argument check. */
static const struct { int nr; struct scmp_arg_cmp arg; } sandbox_allow_if[] = {
	/* the ring (MAP_SHARED RW) and malloc: never executable memory */
	{ SCMP_SYS(mmap), { 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0 } },
	{ SCMP_SYS(mprotect), { 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0 } },
	/* libbpf disables each perf event before closing it on detach */
	{ SCMP_SYS(ioctl), { 1, SCMP_CMP_EQ, PERF_EVENT_IOC_DISABLE, 0 } },
};

int sandbox_enter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	size_t i;
	int err;

	if (!ctx)
		return -ENOMEM;
	/* libseccomp checks the arch first; a foreign arch is killed too. */
	err = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	for (i = 0; !err && i < N(sandbox_allow); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_allow[i], 0);
	for (i = 0; !err && i < N(sandbox_allow_if); i++)
		err = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW,
					     sandbox_allow_if[i].nr, 1,
					     &sandbox_allow_if[i].arg);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	if (err) {
		errno = -err;
		log_warn("installing the seccomp filter");
		return err;
	}
	log_info("seccomp filter installed");
	return 0;
}
