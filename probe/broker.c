/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.c - the probe's file broker (privileged).
 *
 * Threat model: the aggregator is assumed compromised. Everything in a
 * request is attacker-chosen; the container filesystems we resolve paths in
 * are attacker-controlled too. What we promise (security.md P9, P10):
 *  - only the three request types in broker_permits are served, with their
 *    exact payload length and no fds; anything else closes the connection;
 *  - a request names a process by (pid, start time), never a path: the
 *    aggregator can only get files mapped into a live process, that
 *    process's maps/cgroup, O_PATH fds of its exe and cwd (to readlink),
 *    its cmdline only when the probe was started with
 *    --discover-commandline, or debug files named by a build id;
 *  - every fd handed out is O_RDONLY (or O_PATH: OPEN_PROC's exe and
 *    cwd, which can only be fstat'ed and readlink'ed) and, for files
 *    opened for reading, a regular file or a /proc file: never
 *    a FIFO (open blocks), device (open has side effects), dir or socket;
 *  - path resolution never leaves the process root or a host debug dir.
 * The broker never reads what it hands out, except the 4-byte ELF magic.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "sp_log.h"

#define NSEC_PER_SEC		1000000000ULL
#define BROKER_PID_MAX		4194304U	/* PID_MAX_LIMIT on 64-bit */
#define BROKER_MAX_DEBUG_DIRS	8
#define BROKER_DEFAULT_RATE	2000
#define BROKER_DEFAULT_BURST	4000

struct broker {
	char *debug_dirs[BROKER_MAX_DEBUG_DIRS + 1];
	uint64_t rate;		/* tokens per second */
	uint64_t burst;		/* bucket size in tokens */
	uint64_t tokens;	/* in nanotokens: 1 token = NSEC_PER_SEC */
	uint64_t last_ns;
	bool throttling;	/* to log the start/end of rate limiting once */
	uint64_t ns_per_tick;	/* /proc/PID/stat starttime unit */
	uint64_t page_size;
	bool allow_cmdline;
	struct broker_stats st;
};

/* All permitted requests start with req_id, so a refusal can echo it. */
_Static_assert(offsetof(struct sp_msg_open_proc, req_id) == 0 &&
	       offsetof(struct sp_msg_open_mapping, req_id) == 0 &&
	       offsetof(struct sp_msg_open_debug, req_id) == 0, "req_id first");

/* --- replies ---------------------------------------------------------- */

static const char *request_name(uint32_t type)
{
	static const char *const names[] = {
		[SP_MSG_OPEN_PROC] = "OPEN_PROC",
		[SP_MSG_OPEN_MAPPING] = "OPEN_MAPPING",
		[SP_MSG_OPEN_DEBUG] = "OPEN_DEBUG",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type] ?
	       names[type] : "request";
}

static int broker_send_files(struct broker *b, int sock, uint32_t request,
			     uint64_t req_id, const int *fds, unsigned int nfds)
{
	struct sp_msg_files f = {
		.req_id = req_id, .request = request, .nfds = nfds,
		.fd_mask = (1u << nfds) - 1,
	};
	int ret;

	ret = sp_ctl_send(sock, SP_MSG_FILES, &f, sizeof(f), fds, nfds);
	if (ret == 0)
		b->st.served++;
	return ret;
}

/*
 * Misses that are part of normal operation (the process exited, no debug
 * file for that build id) are logged at debug level so a busy aggregator
 * cannot flood the log; anything else smells of a bad or hostile request.
 */
static int broker_refuse(struct broker *b, int sock, uint32_t request,
			 uint64_t req_id, uint32_t pid, int err,
			 const char *what)
{
	struct sp_msg_error e = {
		.req_id = req_id, .request = request, .error = err,
	};

	if (err == ENOENT || err == ESRCH || err == EBUSY)
		log_debug("refused %s pid %u: %s: %s", request_name(request),
			  pid, what, strerror(err));
	else
		log_info("refused %s pid %u: %s: %s", request_name(request),
			 pid, what, strerror(err));
	b->st.refused++;
	return sp_ctl_send(sock, SP_MSG_ERROR, &e, sizeof(e), NULL, 0);
}

static void close_fds(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			(void)close(fds[i]);
}

/* --- process identity ------------------------------------------------- */

/*
 * Field 22 (starttime) of a /proc/PID/stat line. comm (field 2) is chosen
 * by the process and may contain spaces and ')', so only the text after the
 * LAST ')' is parsed; there field 3 is the first token.
 */
static int parse_stat_starttime(char *buf, uint64_t *ticks)
{
	char *p = strrchr(buf, ')'), *end;
	unsigned long long v;
	int field;

	if (!p)
		return -EINVAL;
	for (field = 2; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -EINVAL;
	*ticks = v;
	return 0;
}

/*
 * One read: stat is a single_open seq_file that returns the whole line in
 * one call. A full buffer means a line we did not expect; do not guess.
 */
static int read_stat(int piddir, char *buf, size_t size)
{
	ssize_t n;
	int fd, ret = 0;

	fd = openat(piddir, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n == size - 1)
		ret = -EOVERFLOW;
	else
		buf[n] = '\0';
	(void)close(fd);
	return ret;
}

/*
 * Open /proc/PID and check it is the process the aggregator means. The
 * directory fd pins the struct pid: if that process exits and the pid is
 * reused, openat() on this fd fails (ESRCH/ENOENT) instead of reaching the
 * new process, so the start-time check below covers every later open
 * through the same fd. start_time is task->start_boottime in ns (what BPF
 * sees); stat reports it in clock ticks, truncated the same way.
 */
static int open_process(const struct broker *b, uint32_t pid,
			uint64_t start_time, int *piddir)
{
	char path[32], stat[1024];
	uint64_t ticks;
	int fd, ret;

	if (pid < 1 || pid > BROKER_PID_MAX)
		return -EINVAL;
	(void)snprintf(path, sizeof(path), "/proc/%u", pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ret = read_stat(fd, stat, sizeof(stat));
	if (ret < 0)
		goto out;
	ret = parse_stat_starttime(stat, &ticks);
	if (ret < 0)
		goto out;
	if (start_time / b->ns_per_tick != ticks)
		ret = -ESRCH;
out:
	if (ret < 0)
		(void)close(fd);
	else
		*piddir = fd;
	return ret;
}

/* --- OPEN_PROC -------------------------------------------------------- */

/*
 * maps and cgroup are always there (reading maps needs CAP_SYS_PTRACE).
 * exe and cwd travel as text: the probe readlinks them (the kernel prints
 * the path; nothing is parsed) into a sealed memfd. An fd of the directory
 * itself would give the aggregator a starting point for openat() beneath a
 * directory it may not traverse (a 0700 home, a container root), which
 * only Landlock would stop. They are missing for kernel threads and
 * zombies, which is not an error.
 * cmdline is the only one carrying process-chosen bytes (often secrets on
 * a command line), hence the separate opt-in on the probe's side.
 */
struct proc_reply {
	int fds[SP_PROC_FD_COUNT];	/* packed, slot order */
	unsigned int nfds;
	uint32_t mask;
	uint32_t uid;
};

static int proc_reply_add(struct proc_reply *r, int slot, int fd,
			  bool optional)
{
	if (fd < 0)
		return optional && (errno == ENOENT || errno == ESRCH) ?
		       0 : -errno;
	r->fds[r->nfds++] = fd;
	r->mask |= 1u << slot;
	return 0;
}

/*
 * The target of the magic link /proc/P/<name> in a sealed memfd, handed
 * out read-only like every other fd; -1 + errno when there is none.
 */
static int link_memfd(int piddir, const char *name)
{
	char path[PATH_MAX], self[32];
	ssize_t n = readlinkat(piddir, name, path, sizeof(path));
	int fd, ro = -1;

	if (n < 0)
		return -1;
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	(void)snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (write(fd, path, (size_t)n) == n &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
		  F_SEAL_SEAL) == 0)
		ro = open(self, O_RDONLY | O_CLOEXEC);
	n = errno;
	(void)close(fd);
	errno = ro < 0 && n == 0 ? EIO : (int)n;
	return ro;
}

static int open_proc_slots(int piddir, uint32_t flags, struct proc_reply *r)
{
	int ret;

	ret = proc_reply_add(r, SP_PROC_FD_MAPS,
			     openat(piddir, "maps", O_RDONLY | O_CLOEXEC), false);
	if (ret == 0)
		ret = proc_reply_add(r, SP_PROC_FD_CGROUP,
				     openat(piddir, "cgroup",
					    O_RDONLY | O_CLOEXEC), false);
	if (ret == 0)
		ret = proc_reply_add(r, SP_PROC_FD_EXE,
				     link_memfd(piddir, "exe"), true);
	if (ret == 0)
		ret = proc_reply_add(r, SP_PROC_FD_CWD,
				     link_memfd(piddir, "cwd"), true);
	if (ret == 0 && (flags & SP_OPEN_PROC_F_CMDLINE))
		ret = proc_reply_add(r, SP_PROC_FD_CMDLINE,
				     openat(piddir, "cmdline",
					    O_RDONLY | O_CLOEXEC), false);
	return ret;
}

static int open_proc_files(const struct broker *b,
			   const struct sp_msg_open_proc *rq,
			   struct proc_reply *r, const char **what)
{
	struct stat st;
	int piddir, ret;

	*what = "cmdline not allowed";
	if ((rq->flags & SP_OPEN_PROC_F_CMDLINE) && !b->allow_cmdline)
		return -EPERM;
	*what = "process";
	ret = open_process(b, rq->pid, rq->start_time, &piddir);
	if (ret < 0)
		return ret;
	/* The owner of /proc/P is the task's euid: the uid Alloy reports. */
	*what = "maps/cgroup/exe/cwd/cmdline";
	if (fstat(piddir, &st) < 0) {
		ret = -errno;
	} else {
		r->uid = st.st_uid;
		ret = open_proc_slots(piddir, rq->flags, r);
	}
	if (ret < 0)
		close_fds(r->fds, r->nfds);
	(void)close(piddir);
	return ret;
}

static int broker_open_proc(struct broker *b, int sock,
			    const struct sp_ctl_msg *m)
{
	struct sp_msg_open_proc rq;
	struct proc_reply r = { .nfds = 0 };
	struct sp_msg_files f;
	const char *what;
	int ret;

	memcpy(&rq, m->u.raw, sizeof(rq));
	ret = open_proc_files(b, &rq, &r, &what);
	if (ret < 0)
		return broker_refuse(b, sock, SP_MSG_OPEN_PROC, rq.req_id,
				     rq.pid, -ret, what);
	f = (struct sp_msg_files){
		.req_id = rq.req_id, .request = SP_MSG_OPEN_PROC,
		.nfds = r.nfds, .fd_mask = r.mask, .uid = r.uid,
	};
	ret = sp_ctl_send(sock, SP_MSG_FILES, &f, sizeof(f), r.fds, r.nfds);
	if (ret == 0) {
		b->st.served++;
		log_debug("served OPEN_PROC pid %u mask %#x", rq.pid, r.mask);
	}
	close_fds(r.fds, r.nfds);
	return ret;
}

/* --- regular files only ------------------------------------------------ */

/*
 * Turn an O_PATH fd into a read-only fd, but only for a regular file. The
 * O_PATH step comes first because opening a FIFO for reading blocks and
 * opening a device can have side effects: such objects are never opened.
 * The inode is reopened through our own /proc/self/fd link, which reaches
 * exactly the object pfd holds without resolving any path again; dev/ino
 * are re-checked anyway. O_NONBLOCK | O_NOCTTY are belt and braces.
 */
static int reopen_regular(int pfd, int *out, struct stat *st)
{
	struct stat st2;
	char self[48];
	int fd = -1, ret = -EACCES;

	if (fstat(pfd, st) < 0 || !S_ISREG(st->st_mode))
		goto out;
	(void)snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = -ESTALE;
	if (fstat(fd, &st2) < 0 || !S_ISREG(st2.st_mode) ||
	    st2.st_dev != st->st_dev || st2.st_ino != st->st_ino)
		goto out;
	*out = fd;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		(void)close(fd);
	return ret;
}

/* --- OPEN_MAPPING ----------------------------------------------------- */

/*
 * The map_files entry is the kernel's own reference to the mapped file, so
 * no path under the aggregator's control is resolved, and through the
 * pinned /proc/PID fd it is this process's mapping. dev/ino must match the
 * maps line the aggregator symbolizes against (ESTALE otherwise: the range
 * was remapped since it read maps). Opening map_files needs
 * CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) in the init user namespace.
 * Known limit: the magic read on a FUSE file can block on its server.
 */
static int open_mapping(const struct broker *b,
			const struct sp_msg_open_mapping *rq, int *out,
			const char **what)
{
	char name[64], magic[4];
	struct stat st;
	int piddir = -1, pfd = -1, fd = -1, ret;

	*what = "range";
	if (rq->start >= rq->end || (rq->start | rq->end) % b->page_size)
		return -EINVAL;
	*what = "process";
	ret = open_process(b, rq->pid, rq->start_time, &piddir);
	if (ret < 0)
		return ret;
	*what = "map_files";
	(void)snprintf(name, sizeof(name), "map_files/%llx-%llx",
		       (unsigned long long)rq->start,
		       (unsigned long long)rq->end);
	pfd = openat(piddir, name, O_PATH | O_CLOEXEC);
	if (pfd < 0) {
		ret = -errno;
		goto out;
	}
	*what = "not a regular file";
	ret = reopen_regular(pfd, &fd, &st);
	if (ret < 0)
		goto out;
	*what = "dev/ino mismatch";
	ret = -ESTALE;
	if (st.st_dev != rq->dev || st.st_ino != rq->ino)
		goto out;
	/* pread: the fd's offset is shared with the aggregator's copy. */
	*what = "not ELF";
	ret = -ENOEXEC;
	if (pread(fd, magic, sizeof(magic), 0) != sizeof(magic) ||
	    memcmp(magic, "\177ELF", sizeof(magic)) != 0)
		goto out;
	*out = fd;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		(void)close(fd);
	if (pfd >= 0)
		(void)close(pfd);
	(void)close(piddir);
	return ret;
}

static int broker_open_mapping(struct broker *b, int sock,
			       const struct sp_ctl_msg *m)
{
	struct sp_msg_open_mapping rq;
	const char *what;
	int fd = -1, ret;

	memcpy(&rq, m->u.raw, sizeof(rq));
	ret = open_mapping(b, &rq, &fd, &what);
	if (ret < 0)
		return broker_refuse(b, sock, SP_MSG_OPEN_MAPPING, rq.req_id,
				     rq.pid, -ret, what);
	ret = broker_send_files(b, sock, SP_MSG_OPEN_MAPPING, rq.req_id,
				&fd, 1);
	if (ret == 0)
		log_debug("served OPEN_MAPPING pid %u %llx-%llx dev %llx "
			  "ino %llu", rq.pid, (unsigned long long)rq.start,
			  (unsigned long long)rq.end,
			  (unsigned long long)rq.dev,
			  (unsigned long long)rq.ino);
	(void)close(fd);
	return ret;
}

/* --- OPEN_DEBUG ------------------------------------------------------- */

/* rel under dirfd, confined by resolve, magic links refused; regular only. */
static int open_confined(int dirfd, const char *rel, __u64 resolve, int *out)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = resolve | RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	int pfd, ret;

	pfd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (pfd < 0)
		return -errno;
	ret = reopen_regular(pfd, out, &st);
	(void)close(pfd);
	return ret;
}

/*
 * ".build-id/xx/rest.debug", hex-encoded here from the bytes: the request
 * carries no string, so nothing the aggregator sends can add '/' or "..".
 */
static void build_id_path(const struct sp_msg_open_debug *rq, char *buf,
			  size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	uint32_t i;

	o += (size_t)snprintf(buf, size, ".build-id/");
	for (i = 0; i < rq->build_id_len; i++) {
		buf[o++] = hex[rq->build_id[i] >> 4];
		buf[o++] = hex[rq->build_id[i] & 0xf];
		if (i == 0)
			buf[o++] = '/';
	}
	(void)snprintf(buf + o, size - o, ".debug");
}

/*
 * First the process's own root with RESOLVE_IN_ROOT: its absolute symlinks
 * and ".." chains stay inside it, as they would for the process itself. No
 * RESOLVE_NO_XDEV: /usr or the debug dir is often a separate mount (in a
 * container, a bind or overlay mount), and crossing the mounts of the
 * process's own view cannot leave its root. Then the host debug dirs, each
 * with RESOLVE_BENEATH.
 * A non-regular file or an escape attempt at one place does not stop the
 * search; the first such error is the one reported if nothing is found.
 * EAGAIN (openat2 saw a rename race a ".." step) goes back to the
 * aggregator like any other miss; it may ask again later.
 */
static int open_debug(const struct broker *b, int piddir, const char *rel,
		      int *out)
{
	char inroot[160];
	int rootfd, dirfd, i, ret, first = -ENOENT;

	(void)snprintf(inroot, sizeof(inroot), "usr/lib/debug/%s", rel);
	rootfd = openat(piddir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd >= 0) {
		ret = open_confined(rootfd, inroot, RESOLVE_IN_ROOT, out);
		(void)close(rootfd);
		if (ret == 0)
			return 0;
		if (ret != -ENOENT)
			first = ret;
	}
	for (i = 0; b->debug_dirs[i]; i++) {
		dirfd = open(b->debug_dirs[i],
			     O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			continue;
		ret = open_confined(dirfd, rel, RESOLVE_BENEATH, out);
		(void)close(dirfd);
		if (ret == 0)
			return 0;
		if (ret != -ENOENT && first == -ENOENT)
			first = ret;
	}
	return first;
}

static int find_debug(const struct broker *b,
		      const struct sp_msg_open_debug *rq, const char *rel,
		      int *fd, const char **what)
{
	int piddir, ret;

	*what = "process";
	ret = open_process(b, rq->pid, rq->start_time, &piddir);
	if (ret < 0)
		return ret;
	*what = rel;
	ret = open_debug(b, piddir, rel, fd);
	(void)close(piddir);
	return ret;
}

static int broker_open_debug(struct broker *b, int sock,
			     const struct sp_ctl_msg *m)
{
	struct sp_msg_open_debug rq;
	char rel[128];
	const char *what;
	int fd = -1, ret;

	memcpy(&rq, m->u.raw, sizeof(rq));
	build_id_path(&rq, rel, sizeof(rel));
	ret = find_debug(b, &rq, rel, &fd, &what);
	if (ret < 0)
		return broker_refuse(b, sock, SP_MSG_OPEN_DEBUG, rq.req_id,
				     rq.pid, -ret, what);
	ret = broker_send_files(b, sock, SP_MSG_OPEN_DEBUG, rq.req_id, &fd, 1);
	if (ret == 0)
		log_debug("served OPEN_DEBUG pid %u %s", rq.pid, rel);
	(void)close(fd);
	return ret;
}

/* --- dispatch --------------------------------------------------------- */

typedef int (*broker_handler)(struct broker *b, int sock,
			      const struct sp_ctl_msg *m);

/* Everything the aggregator may ask; nothing else is ever served. */
static const struct broker_permit {
	uint32_t type;
	uint32_t len;
	broker_handler handler;
} broker_permits[] = {
	{ SP_MSG_OPEN_PROC, sizeof(struct sp_msg_open_proc), broker_open_proc },
	{ SP_MSG_OPEN_MAPPING, sizeof(struct sp_msg_open_mapping),
	  broker_open_mapping },
	{ SP_MSG_OPEN_DEBUG, sizeof(struct sp_msg_open_debug),
	  broker_open_debug },
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * Token bucket in integer nanotokens (no float rounding can mint tokens).
 * The refill is capped before multiplying: elapsed * rate < burst * 1e9
 * fits in 64 bits for any 32-bit rate and burst.
 */
static bool broker_take_token(struct broker *b)
{
	uint64_t now = now_ns(), cap = b->burst * NSEC_PER_SEC;
	uint64_t elapsed = now - b->last_ns;

	b->last_ns = now;
	if (elapsed >= cap / b->rate)
		b->tokens = cap;
	else if (b->tokens + elapsed * b->rate > cap)
		b->tokens = cap;
	else
		b->tokens += elapsed * b->rate;
	if (b->tokens < NSEC_PER_SEC)
		return false;
	b->tokens -= NSEC_PER_SEC;
	return true;
}

/* One info line when limiting starts and one when it ends, not per request. */
static bool broker_rate_ok(struct broker *b)
{
	bool ok = broker_take_token(b);

	if (!ok && !b->throttling)
		log_info("aggregator exceeds %llu requests/s, refusing "
			 "with EBUSY", (unsigned long long)b->rate);
	if (ok && b->throttling)
		log_info("aggregator request rate back under the limit");
	b->throttling = !ok;
	return ok;
}

/*
 * Field checks that make a request malformed (not merely unanswerable).
 * They run before the rate limit: a malformed request closes the
 * connection even when a polite EBUSY would otherwise be the answer.
 */
static bool request_well_formed(const struct sp_ctl_msg *m)
{
	struct sp_msg_open_proc op;
	struct sp_msg_open_debug od;

	if (m->type == SP_MSG_OPEN_PROC) {
		memcpy(&op, m->u.raw, sizeof(op));
		return !(op.flags & ~(uint32_t)SP_OPEN_PROC_F_ALL);
	}
	if (m->type == SP_MSG_OPEN_DEBUG) {
		memcpy(&od, m->u.raw, sizeof(od));
		return od.build_id_len >= 2 && od.build_id_len <= SP_BUILD_ID_MAX;
	}
	return true;
}

int broker_dispatch(struct broker *b, int sock, const struct sp_ctl_msg *m)
{
	const struct broker_permit *p = NULL;
	uint64_t req_id;
	size_t i;

	for (i = 0; i < sizeof(broker_permits) / sizeof(broker_permits[0]); i++)
		if (broker_permits[i].type == m->type)
			p = &broker_permits[i];
	if (!p || m->len != p->len || m->nfds != 0 || !request_well_formed(m)) {
		b->st.protocol_errors++;
		return -EPROTO;
	}
	if (!broker_rate_ok(b)) {
		b->st.rate_limited++;
		memcpy(&req_id, m->u.raw, sizeof(req_id));
		return broker_refuse(b, sock, m->type, req_id, 0, EBUSY,
				     "rate limit");
	}
	return p->handler(b, sock, m);
}

/* --- lifecycle -------------------------------------------------------- */

/*
 * A new aggregator keeps the bucket as it is: refilling it here would let
 * an aggregator beat the rate limit by reconnecting.
 */
void broker_reset(struct broker *b)
{
	b->throttling = false;
}

void broker_stats(const struct broker *b, struct broker_stats *st)
{
	*st = b->st;
}

void broker_free(struct broker *b)
{
	int i;

	if (!b)
		return;
	for (i = 0; b->debug_dirs[i]; i++)
		free(b->debug_dirs[i]);
	free(b);
}

static const char *const broker_default_debug_dirs[] = {
	"/usr/lib/debug", NULL
};

struct broker *broker_new(const struct broker_config *cfg)
{
	const char *const *dirs = cfg && cfg->debug_dirs ?
		cfg->debug_dirs : broker_default_debug_dirs;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct broker *b;
	int i;

	/* The ns -> tick conversion mirrors the kernel's only for these. */
	if (tck <= 0 || NSEC_PER_SEC % (uint64_t)tck || page <= 0) {
		errno = ENOTSUP;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->ns_per_tick = NSEC_PER_SEC / (uint64_t)tck;
	b->page_size = (uint64_t)page;
	b->rate = cfg && cfg->rate_per_sec ? cfg->rate_per_sec :
		  BROKER_DEFAULT_RATE;
	b->burst = cfg && cfg->burst ? cfg->burst : BROKER_DEFAULT_BURST;
	b->allow_cmdline = cfg && cfg->allow_cmdline;
	for (i = 0; dirs[i]; i++) {
		if (i == BROKER_MAX_DEBUG_DIRS) {
			errno = E2BIG;
			goto fail;
		}
		b->debug_dirs[i] = strdup(dirs[i]);
		if (!b->debug_dirs[i])
			goto fail;
	}
	b->tokens = b->burst * NSEC_PER_SEC;	/* full once, at start */
	b->last_ns = now_ns();
	return b;
fail:
	broker_free(b);
	return NULL;
}
