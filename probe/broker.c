/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.c - the probe's file broker (security.md P9, P10). The aggregator is
 * hostile, so are container roots. Requests name a process by (pid, start
 * time), never a path; every fd handed out is O_RDONLY: a /proc file, a sealed
 * memfd or a regular file, never a FIFO, device, directory or socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
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

#define NSEC_PER_SEC	1000000000ULL
#define BROKER_PID_MAX	4194304U	/* PID_MAX_LIMIT on 64-bit */

struct broker {
	const char *const *debug_dirs;	/* the caller's, NULL-terminated */
	uint64_t rate, burst;	/* tokens per second, bucket size in tokens */
	uint64_t tokens, last_ns;	/* nanotokens (1 token = 1e9), refill time */
	bool throttling;	/* to log the start/end of rate limiting once */
	bool allow_cmdline;
	uint64_t ns_per_tick, page_size;	/* stat starttime unit; page */
	struct broker_stats st;
};

/* One request in flight and its reply: fds are sent only on success. */
struct request {
	const struct broker *b;
	const struct broker_permit *permit;
	const struct sp_ctl_msg *m;
	uint32_t pid;
	int fds[SP_PROC_FD_COUNT];	/* packed, in slot order */
	unsigned int nfds;
	uint32_t mask, uid;		/* sp_msg_files.fd_mask, .uid */
	const char *why;		/* the step that failed, for the log */
	char note[128];			/* what was served, for the log */
};

/* A permitted request: exact payload length, no fds, where its pid is. */
struct broker_permit {
	uint32_t type, len, pid_off;
	const char *name;
	int (*check)(struct request *rq);	/* 0, -EPROTO, -errno */
	int (*open)(struct request *rq, int piddir);
};

/* Every request starts {req_id, start_time}; pid sits where its permit says.
 * OPEN_DEBUGLINK starts as OPEN_MAPPING does: its mapping is checked alike. */
#define SAME_AT(f) (offsetof(struct sp_msg_open_mapping, f) == \
		    offsetof(struct sp_msg_open_debuglink, f))
_Static_assert(offsetof(struct sp_msg_open_mapping, req_id) == 0 &&
	       offsetof(struct sp_msg_open_debug, req_id) == 0 &&
	       offsetof(struct sp_msg_open_mapping, start_time) == 8 &&
	       offsetof(struct sp_msg_open_debug, start_time) == 8 &&
	       SAME_AT(req_id) && SAME_AT(start_time) && SAME_AT(start) &&
	       SAME_AT(end) && SAME_AT(dev) && SAME_AT(ino) && SAME_AT(pid),
	       "layout");

/* Normal misses log at debug level so a busy aggregator can't flood the log. */
static int broker_reply(struct broker *b, int sock, struct request *rq, int err)
{
	struct sp_msg_files f = { .req_id = rq->m->u.open_proc.req_id, .uid = rq->uid,
		.request = rq->m->type, .nfds = rq->nfds, .fd_mask = rq->mask };
	struct sp_msg_error e = { .req_id = f.req_id, .request = f.request,
		.error = -err };
	const char *name = rq->permit->name;
	int ret;

	if (err) {
		if (err == -ENOENT || err == -ESRCH || err == -EBUSY)
			log_debug("refused %s pid %u: %s: %s", name, rq->pid, rq->why,
				  strerror(-err));
		else
			log_info("refused %s pid %u: %s: %s", name, rq->pid, rq->why,
				 strerror(-err));
		b->st.refused++;
		ret = sp_ctl_send(sock, SP_MSG_ERROR, &e, sizeof(e), NULL, 0);
	} else {
		ret = sp_ctl_send(sock, SP_MSG_FILES, &f, sizeof(f), rq->fds, rq->nfds);
		if (ret == 0) {
			b->st.served++;
			log_debug("served %s pid %u fds %#x %s", name, rq->pid,
				  rq->mask, rq->note);
		}
	}
	while (rq->nfds)
		(void)close(rq->fds[--rq->nfds]);
	return ret;
}

/* Field 22 of /proc/PID/stat (one read: single_open). comm (field 2) may
 * hold ' ' and ')', so count fields from the LAST ')'. */
static int stat_start_ticks(int piddir, uint64_t *ticks)
{
	char buf[1024], *p, *end;
	int fd, field, err;
	ssize_t n;

	fd = openat(piddir, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	err = n < 0 ? -errno : (size_t)n == sizeof(buf) - 1 ? -EOVERFLOW : 0;
	(void)close(fd);
	if (err)
		return err;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (field = 2; p && field < 22; field++)
		if ((p = strchr(p, ' ')))
			p++;
	if (!p || *p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	*ticks = strtoull(p, &end, 10);
	return errno || (*end != ' ' && *end != '\n' && *end != '\0') ? -EINVAL : 0;
}

/* The /proc/PID fd pins the struct pid: once the start time matches, every
 * openat() through it reaches this process or fails, never a pid reuser. */
static int open_process(struct request *rq, int *piddir)
{
	char path[32];
	uint64_t ticks = 0;
	int fd, ret;

	rq->why = "process";
	if (rq->pid < 1 || rq->pid > BROKER_PID_MAX)
		return -EINVAL;
	(void)snprintf(path, sizeof(path), "/proc/%u", rq->pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ret = stat_start_ticks(fd, &ticks);
	if (ret == 0 && rq->m->u.open_proc.start_time / rq->b->ns_per_tick != ticks)
		ret = -ESRCH;
	if (ret < 0)
		(void)close(fd);
	else
		*piddir = fd;
	return ret;
}

static int check_proc(struct request *rq)
{
	uint32_t flags = rq->m->u.open_proc.flags;

	if (flags & ~(uint32_t)SP_OPEN_PROC_F_ALL)
		return -EPROTO;
	/* cmdline is the one file of process-chosen bytes (often secrets). */
	rq->why = "cmdline not allowed";
	return (flags & SP_OPEN_PROC_F_CMDLINE) && !rq->b->allow_cmdline ? -EPERM : 0;
}

/* exe and cwd travel as text in a sealed memfd (-1 + errno if none): a dir
 * fd would let the aggregator openat() beneath dirs it may not traverse. */
static int link_memfd(int piddir, const char *name)
{
	char path[PATH_MAX], self[32];
	ssize_t n = readlinkat(piddir, name, path, sizeof(path));
	int fd, ro = -1, err;

	if (n < 0 || (fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
		return -1;
	(void)snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	errno = EIO;	/* a short write sets none */
	if (write(fd, path, (size_t)n) == n &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
		  F_SEAL_SEAL) == 0)
		ro = open(self, O_RDONLY | O_CLOEXEC);
	err = errno;
	(void)close(fd);
	errno = err;
	return ro;
}

_Static_assert(SP_PROC_FD_CMDLINE == SP_PROC_FD_COUNT - 1, "cmdline last");

/* exe/cwd are missing for kernel threads and zombies. /proc/P's owner: euid. */
static int open_proc(struct request *rq, int piddir)
{
	static const char *const slots[SP_PROC_FD_COUNT] = {
		"maps", "cgroup", "exe", "cwd", "cmdline" };
	int slot, fd, n = rq->m->u.open_proc.flags & SP_OPEN_PROC_F_CMDLINE ?
			      SP_PROC_FD_COUNT : SP_PROC_FD_CMDLINE;
	struct stat st;
	bool link;

	rq->why = "maps/cgroup/exe/cwd/cmdline";
	if (fstat(piddir, &st) < 0)
		return -errno;
	rq->uid = st.st_uid;
	for (slot = 0; slot < n; slot++) {
		link = slot == SP_PROC_FD_EXE || slot == SP_PROC_FD_CWD;
		fd = link ? link_memfd(piddir, slots[slot]) :
		     openat(piddir, slots[slot], O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			rq->fds[rq->nfds++] = fd;
			rq->mask |= 1u << slot;
		} else if (!link || (errno != ENOENT && errno != ESRCH))
			return -errno;
	}
	return 0;
}

/* O_PATH first (opening a FIFO blocks, a device can have side effects); only
 * a regular file is reopened for reading, via /proc/self/fd (no new lookup). */
static int open_regular(int dirfd, const char *rel, __u64 resolve, struct stat *st)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = resolve };
	int pfd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	int fd = -EACCES;
	struct stat st2;
	char self[32];

	if (pfd < 0)
		return -errno;
	if (fstat(pfd, st) == 0 && S_ISREG(st->st_mode)) {
		(void)snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0) {
			fd = -errno;
		} else if (fstat(fd, &st2) < 0 || !S_ISREG(st2.st_mode) ||
			   st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
			(void)close(fd);
			fd = -ESTALE;
		}
	}
	(void)close(pfd);
	return fd;
}

static int check_mapping(struct request *rq)
{
	const struct sp_msg_open_mapping *om = &rq->m->u.open_mapping;

	rq->why = "range";
	return om->start >= om->end ||
	       (om->start | om->end) % rq->b->page_size ? -EINVAL : 0;
}

/* pread: the fd's offset is shared with the aggregator's copy. */
static int is_elf(struct request *rq, int fd)
{
	char magic[4];

	rq->why = "not ELF";
	return pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
	       memcmp(magic, "\177ELF", sizeof(magic)) == 0 ? 0 : -ENOEXEC;
}

/* map_files: the kernel's own reference to the mapped file. dev/ino must match
 * the aggregator's maps line. Known limit: a FUSE server can block pread. */
static int open_mapping(struct request *rq, int piddir)
{
	const struct sp_msg_open_mapping *om = &rq->m->u.open_mapping;
	char name[64];
	struct stat st;
	int fd;

	(void)snprintf(name, sizeof(name), "map_files/%llx-%llx",
		       (unsigned long long)om->start, (unsigned long long)om->end);
	(void)snprintf(rq->note, sizeof(rq->note), "%s dev %llx ino %llu", name,
		       (unsigned long long)om->dev, (unsigned long long)om->ino);
	rq->why = "map_files";
	fd = open_regular(piddir, name, 0, &st);	/* magic links: no RESOLVE_ */
	if (fd < 0)
		return fd;
	rq->fds[rq->nfds++] = fd;	/* slot 0 */
	rq->mask = 1;
	rq->why = "dev/ino mismatch";
	if (st.st_dev != om->dev || st.st_ino != om->ino)
		return -ESTALE;
	return is_elf(rq, fd);
}

static int check_debug(struct request *rq)
{
	uint32_t len = rq->m->u.open_debug.build_id_len;

	return len >= 2 && len <= SP_BUILD_ID_MAX ? 0 : -EPROTO;
}

_Static_assert(sizeof(".build-id//.debug") + 2 * SP_BUILD_ID_MAX <=
	       sizeof(((struct request *)0)->note), "build-id path fits");

/* Hex-encoded here from bytes: nothing the aggregator sends adds '/' or "..". */
static void build_id_path(const struct sp_msg_open_debug *od, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, ".build-id/");
	uint32_t i;

	for (i = 0; i < od->build_id_len; i++)
		o += (size_t)snprintf(buf + o, size - o, i ? "%02x" : "%02x/",
				      od->build_id[i]);
	(void)snprintf(buf + o, size - o, ".debug");
}

/* in[0..n) in the process's root, RESOLVE_IN_ROOT: its symlinks and ".." stay
 * in it. Then host under each host dir, RESOLVE_BENEATH. Else the first error
 * other than ENOENT. */
static int open_debug_file(struct request *rq, int piddir,
			   const char *const *in, int n, const char *host)
{
	int dirfd, fd = -ENOENT, i, first = -ENOENT;
	struct stat st;

	dirfd = openat(piddir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (i = 0; dirfd >= 0 && fd < 0 && i < n; i++) {
		first = first == -ENOENT ? fd : first;
		fd = open_regular(dirfd, in[i], RESOLVE_IN_ROOT |
				  RESOLVE_NO_MAGICLINKS, &st);
	}
	if (dirfd >= 0)
		(void)close(dirfd);
	for (i = 0; fd < 0 && rq->b->debug_dirs[i]; i++) {
		first = first == -ENOENT ? fd : first;
		dirfd = open(rq->b->debug_dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			continue;
		fd = open_regular(dirfd, host, RESOLVE_BENEATH |
				  RESOLVE_NO_MAGICLINKS, &st);
		(void)close(dirfd);
	}
	if (fd < 0)
		return first == -ENOENT ? fd : first;
	rq->fds[rq->nfds++] = fd;	/* slot 0 */
	rq->mask = 1;
	return 0;
}

static int open_debug(struct request *rq, int piddir)
{
	char inroot[sizeof(rq->note) + 16];

	build_id_path(&rq->m->u.open_debug, rq->note, sizeof(rq->note));
	rq->why = rq->note;
	(void)snprintf(inroot, sizeof(inroot), "usr/lib/debug/%s", rq->note);
	return open_debug_file(rq, piddir, (const char *[]){ inroot }, 1, rq->note);
}

/* A file name ending in ".debug": printable, no '/'. Without the suffix the
 * aggregator could read any file beside a mapped binary (a ~/.netrc). */
static int check_debuglink(struct request *rq)
{
	if (!sp_ctl_debuglink_name_ok(rq->m->u.open_debuglink.name))
		return -EPROTO;
	return check_mapping(rq);
}

/* The directory is the mapped file's, as the kernel names it, never the
 * aggregator's; the file checked as for OPEN_MAPPING first. */
static int open_debuglink(struct request *rq, int piddir)
{
	const struct sp_msg_open_debuglink *ol = &rq->m->u.open_debuglink;
	char dir[PATH_MAX], p[3][PATH_MAX + SP_DEBUGLINK_MAX + 32], *slash;
	int err = open_mapping(rq, piddir);
	ssize_t n;

	while (rq->nfds)
		(void)close(rq->fds[--rq->nfds]);
	rq->mask = 0;
	if (err)
		return err;
	(void)snprintf(p[0], sizeof(p[0]), "map_files/%llx-%llx",
		       (unsigned long long)ol->start, (unsigned long long)ol->end);
	n = readlinkat(piddir, p[0], dir, sizeof(dir) - 1);
	rq->why = "map_files link";
	if (n <= 0 || dir[0] != '/')
		return n < 0 ? -errno : -ENOENT;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	*slash = '\0';
	(void)snprintf(p[0], sizeof(p[0]), "%s/%s", dir, ol->name);
	(void)snprintf(p[1], sizeof(p[1]), "%s/.debug/%s", dir, ol->name);
	(void)snprintf(p[2], sizeof(p[2]), "/usr/lib/debug%s/%s", dir, ol->name);
	(void)snprintf(rq->note, sizeof(rq->note), "%.120s", p[0]);
	rq->why = rq->note;
	err = open_debug_file(rq, piddir, (const char *[]){ p[0], p[1], p[2] },
			      3, p[0] + 1);
	return err ? err : is_elf(rq, rq->fds[0]);
}

#define PERMIT(type, msg, check, open) { SP_MSG_##type, sizeof(struct msg), \
	offsetof(struct msg, pid), #type, check, open }

/* Everything the aggregator may ask; nothing else is ever served. */
static const struct broker_permit broker_permits[] = {
	PERMIT(OPEN_PROC, sp_msg_open_proc, check_proc, open_proc),
	PERMIT(OPEN_MAPPING, sp_msg_open_mapping, check_mapping, open_mapping),
	PERMIT(OPEN_DEBUG, sp_msg_open_debug, check_debug, open_debug),
	PERMIT(OPEN_DEBUGLINK, sp_msg_open_debuglink, check_debuglink,
	       open_debuglink),
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Token bucket in integer nanotokens; refill capped before multiplying. */
static bool broker_rate_ok(struct broker *b)
{
	uint64_t now = now_ns(), cap = b->burst * NSEC_PER_SEC;
	uint64_t elapsed = now - b->last_ns;
	bool ok;

	b->last_ns = now;
	b->tokens += elapsed < cap / b->rate ? elapsed * b->rate : cap;
	if (b->tokens > cap)
		b->tokens = cap;
	ok = b->tokens >= NSEC_PER_SEC;
	if (ok)
		b->tokens -= NSEC_PER_SEC;
	else
		b->st.rate_limited++;
	if (!ok && !b->throttling)
		log_info("aggregator exceeds %llu requests/s, refusing "
			 "with EBUSY", (unsigned long long)b->rate);
	if (ok && b->throttling)
		log_info("aggregator request rate back under the limit");
	b->throttling = !ok;
	return ok;
}

int broker_dispatch(struct broker *b, int sock, const struct sp_ctl_msg *m)
{
	struct request rq = { .b = b, .m = m };
	int piddir = -1, err = -EPROTO;
	size_t i;

	for (i = 0; i < sizeof(broker_permits) / sizeof(broker_permits[0]); i++)
		if (broker_permits[i].type == m->type)
			rq.permit = &broker_permits[i];
	/* Before the rate limit: it must not turn a violation into a polite EBUSY. */
	if (rq.permit && m->len == rq.permit->len && m->nfds == 0)
		err = rq.permit->check(&rq);
	if (err == -EPROTO) {
		b->st.protocol_errors++;
		return -EPROTO;
	}
	memcpy(&rq.pid, m->u.raw + rq.permit->pid_off, sizeof(rq.pid));
	if (!broker_rate_ok(b)) {
		err = -EBUSY;
		rq.why = "rate limit";
	} else if (err == 0 && (err = open_process(&rq, &piddir)) == 0) {
		err = rq.permit->open(&rq, piddir);
		(void)close(piddir);
	}
	return broker_reply(b, sock, &rq, err);
}

/* The bucket is kept: a refill would let an aggregator reconnect past it. */
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
	free(b);
}

struct broker *broker_new(const struct broker_config *cfg)
{
	static const char *const default_dirs[] = { "/usr/lib/debug", NULL };
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct broker *b;

	/* The ns -> tick conversion mirrors the kernel's only for these. */
	if (tck <= 0 || NSEC_PER_SEC % (uint64_t)tck || page <= 0) {
		errno = ENOTSUP;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->debug_dirs = cfg && cfg->debug_dirs ? cfg->debug_dirs : default_dirs;
	b->rate = cfg && cfg->rate_per_sec ? cfg->rate_per_sec : 2000;
	b->burst = cfg && cfg->burst ? cfg->burst : 4000;
	b->tokens = b->burst * NSEC_PER_SEC;	/* full once, at start */
	b->last_ns = now_ns();
	b->allow_cmdline = cfg && cfg->allow_cmdline;
	b->ns_per_tick = NSEC_PER_SEC / (uint64_t)tck;
	b->page_size = (uint64_t)page;
	return b;
}
