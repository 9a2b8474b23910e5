/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broker against real processes and a hostile fake container root
 * (security.md P9, P10). The test plays the aggregator on one end of a
 * SOCK_SEQPACKET pair and runs sp_ctl_recv + broker_dispatch on the other,
 * exactly as the probe's loop does.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "sp_ctl.h"
#include "ctl_util.h"
#include "sp_log.h"

#define REQUIRE_ROOT()							\
	do {								\
		if (geteuid() != 0)					\
			cr_skip_test("broker tests need root (CAP_SYS_PTRACE, " \
				     "CAP_CHECKPOINT_RESTORE, chroot, mknod)"); \
	} while (0)

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Start time as the aggregator knows it: task start_boottime in ns. */
static uint64_t start_time_ns(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ticks = 0;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	cr_assert_not_null(p);
	for (i = 2; i < 22; i++) {
		p = strchr(p, ' ');
		cr_assert_not_null(p);
		p++;
	}
	cr_assert_eq(sscanf(p, "%llu", &ticks), 1);
	return ticks * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

struct conn {
	int agg;	/* the test: aggregator side */
	int probe;	/* broker side */
	struct broker *b;
};

static void conn_open(struct conn *c, const struct broker_config *cfg)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
				SOCK_NONBLOCK, 0, sv), 0);
	c->agg = sv[0];
	c->probe = sv[1];
	c->b = broker_new(cfg);
	cr_assert_not_null(c->b);
}

static void conn_close(struct conn *c)
{
	broker_free(c->b);
	close(c->agg);
	close(c->probe);
}

/* The probe's side of one round: receive, dispatch, always close fds. */
static int probe_round(struct conn *c)
{
	struct sp_ctl_msg m;
	int ret;

	ret = sp_ctl_recv(c->probe, &m);
	if (ret < 0)
		return ret;
	ret = broker_dispatch(c->b, c->probe, &m);
	sp_ctl_msg_close_fds(&m);
	return ret;
}

/* Send a request, run the broker, read its reply. Returns dispatch's rc. */
static int ask(struct conn *c, uint32_t type, const void *rq, uint32_t len,
	       struct sp_ctl_msg *reply)
{
	int ret;

	cr_assert_eq(sp_ctl_send(c->agg, type, rq, len, NULL, 0), 0);
	ret = probe_round(c);
	if (ret == 0)
		cr_assert_eq(sp_ctl_recv(c->agg, reply), 0);
	return ret;
}

static void expect_error(const struct sp_ctl_msg *r, uint32_t request, int err)
{
	cr_assert_eq(r->type, SP_MSG_ERROR, "expected ERROR, got type %u",
		     r->type);
	cr_expect_eq(r->u.error.request, request);
	if (err)
		cr_expect_eq(r->u.error.error, err, "error %d (%s), want %d (%s)",
			     r->u.error.error, strerror(r->u.error.error), err,
			     strerror(err));
}

static void expect_files(const struct sp_ctl_msg *r, uint64_t req_id,
			 unsigned int nfds)
{
	cr_assert_eq(r->type, SP_MSG_FILES, "expected FILES, got type %u "
		     "(error %d %s)", r->type, (int)r->u.error.error,
		     r->type == SP_MSG_ERROR ? strerror(r->u.error.error) : "");
	cr_expect_eq(r->u.files.req_id, req_id);
	cr_assert_eq(r->nfds, nfds);
	cr_expect_eq(r->u.files.nfds, nfds);
}

/* --- child processes ---------------------------------------------------- */

struct child {
	pid_t pid;
	int hold;	/* closing it lets the child exit */
};

/* A child that (optionally) chroots and then waits; tests only, no exec. */
static void child_start(struct child *ch, const char *root)
{
	int ready[2], hold[2];
	char c;

	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(hold, O_CLOEXEC), 0);
	ch->pid = fork();
	cr_assert_geq(ch->pid, 0);
	if (ch->pid == 0) {
		close(ready[0]);
		close(hold[1]);
		if (root && (chroot(root) < 0 || chdir("/") < 0))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		(void)!read(hold[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "child failed to start");
	close(ready[0]);
	ch->hold = hold[1];
}

static void child_stop(struct child *ch)
{
	close(ch->hold);
	kill(ch->pid, SIGKILL);
	waitpid(ch->pid, NULL, 0);
}

/* --- OPEN_PROC ---------------------------------------------------------- */

static void read_all(int fd, char *buf, size_t size)
{
	size_t off = 0;
	ssize_t n;

	while (off < size - 1 && (n = read(fd, buf + off, size - 1 - off)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
}

Test(broker, open_proc_live_child)
{
	struct sp_msg_open_proc rq = { .req_id = 7 };
	struct sp_ctl_msg r;
	struct conn c;
	struct child ch;
	static char buf[65536];
	unsigned long lo, hi;

	REQUIRE_ROOT();
	child_start(&ch, NULL);
	conn_open(&c, NULL);
	rq.pid = (uint32_t)ch.pid;
	rq.start_time = start_time_ns(ch.pid);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_files(&r, 7, 4);
	cr_expect_eq(r.u.files.request, SP_MSG_OPEN_PROC);
	cr_expect_eq(r.u.files.fd_mask, 0xf);
	cr_expect_eq(r.u.files.uid, geteuid());

	read_all(r.fds[0], buf, sizeof(buf));
	cr_expect_eq(sscanf(buf, "%lx-%lx ", &lo, &hi), 2, "maps: %.80s", buf);
	cr_expect_lt(lo, hi);
	read_all(r.fds[1], buf, sizeof(buf));
	cr_expect_not_null(strstr(buf, "::"), "cgroup: %.80s", buf);
	cr_expect(fcntl(r.fds[0], F_GETFD) & FD_CLOEXEC);
	sp_ctl_msg_close_fds(&r);
	child_stop(&ch);
	conn_close(&c);
}

/* exe/cwd arrive as the path text in a sealed, read-only memfd. */
static void fd_link(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_expect_eq(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE, F_SEAL_WRITE);
	cr_expect_eq(write(fd, "x", 1), -1, "the path text must be sealed");
}

Test(broker, open_proc_exe_cwd_are_sealed_text_not_directories)
{
	struct sp_msg_open_proc rq = { .req_id = 3 };
	char want[PATH_MAX], got[PATH_MAX];
	struct sp_ctl_msg r;
	struct conn c;
	struct child ch;

	REQUIRE_ROOT();
	child_start(&ch, NULL);
	conn_open(&c, NULL);
	rq.pid = (uint32_t)ch.pid;
	rq.start_time = start_time_ns(ch.pid);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_files(&r, 3, 4);
	/* never a directory fd: openat() beneath it must be impossible */
	cr_expect_lt(openat(r.fds[3], ".", O_RDONLY), 0);
	cr_assert_gt(readlink("/proc/self/exe", want, sizeof(want) - 1), 0);
	want[readlink("/proc/self/exe", want, sizeof(want) - 1)] = '\0';
	fd_link(r.fds[2], got, sizeof(got));
	cr_expect_str_eq(got, want);
	cr_assert_not_null(getcwd(want, sizeof(want)));
	fd_link(r.fds[3], got, sizeof(got));
	cr_expect_str_eq(got, want);
	sp_ctl_msg_close_fds(&r);
	child_stop(&ch);
	conn_close(&c);
}

Test(broker, open_proc_cmdline_refused_unless_allowed)
{
	struct sp_msg_open_proc rq = { .req_id = 4,
				       .flags = SP_OPEN_PROC_F_CMDLINE };
	struct broker_config cfg = { .allow_cmdline = true };
	static char buf[4096];
	struct sp_ctl_msg r;
	struct conn c;
	struct child ch;

	REQUIRE_ROOT();
	child_start(&ch, NULL);
	rq.pid = (uint32_t)ch.pid;
	rq.start_time = start_time_ns(ch.pid);
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_PROC, EPERM);	/* not a protocol error */
	rq.flags = 0;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_files(&r, 4, 4);
	sp_ctl_msg_close_fds(&r);
	conn_close(&c);

	conn_open(&c, &cfg);
	rq.flags = SP_OPEN_PROC_F_CMDLINE;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_files(&r, 4, 5);
	cr_expect_eq(r.u.files.fd_mask, 0x1f);
	read_all(r.fds[4], buf, sizeof(buf));
	cr_expect_gt(strlen(buf), 0, "cmdline: argv[0] of the test");
	sp_ctl_msg_close_fds(&r);
	child_stop(&ch);
	conn_close(&c);
}

Test(broker, open_proc_unknown_flags_is_eproto)
{
	struct sp_msg_open_proc rq = { .req_id = 5, .pid = 1, .flags = 0x2 };
	struct sp_ctl_msg r;
	struct conn c;

	conn_open(&c, NULL);
	cr_expect_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), -EPROTO);
	conn_close(&c);
}

Test(broker, open_proc_kernel_thread_has_no_exe)
{
	struct sp_msg_open_proc rq = { .req_id = 6, .pid = 2 };
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	if (access("/proc/2/stat", R_OK) != 0)
		cr_skip_test("no kthreadd visible (pid namespace)");
	rq.start_time = start_time_ns(2);
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	cr_assert_eq(r.type, SP_MSG_FILES);
	cr_expect_eq(r.u.files.fd_mask & 0x3, 0x3);
	cr_expect_eq(r.u.files.fd_mask & (1u << SP_PROC_FD_EXE), 0);
	cr_expect_eq(r.nfds, (unsigned int)__builtin_popcount(r.u.files.fd_mask));
	sp_ctl_msg_close_fds(&r);
	conn_close(&c);
}

Test(broker, open_proc_wrong_start_time_is_esrch)
{
	struct sp_msg_open_proc rq = { .req_id = 8 };
	struct sp_ctl_msg r;
	struct conn c;
	struct child ch;

	REQUIRE_ROOT();
	child_start(&ch, NULL);
	conn_open(&c, NULL);
	rq.pid = (uint32_t)ch.pid;
	/* The pid was reused: same number, a later process start. */
	rq.start_time = start_time_ns(ch.pid) + 10000000000ULL;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_PROC, ESRCH);
	cr_expect_eq(r.u.error.req_id, 8);
	cr_expect_eq(r.nfds, 0);
	child_stop(&ch);
	conn_close(&c);
}

Test(broker, open_proc_dead_pid)
{
	struct sp_msg_open_proc rq = { .req_id = 9 };
	struct sp_ctl_msg r;
	struct broker_stats st;
	struct conn c;
	struct child ch;

	REQUIRE_ROOT();
	child_start(&ch, NULL);
	rq.pid = (uint32_t)ch.pid;
	rq.start_time = start_time_ns(ch.pid);
	child_stop(&ch);
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_PROC, 0);
	broker_stats(c.b, &st);
	cr_expect_eq(st.refused, 1);
	cr_expect_eq(st.served, 0);
	conn_close(&c);
}

Test(broker, open_proc_pid_out_of_range)
{
	struct sp_msg_open_proc rq = { .req_id = 1, .pid = 0 };
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_PROC, EINVAL);
	rq.pid = 4194305;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_PROC, EINVAL);
	conn_close(&c);
}

/* --- OPEN_MAPPING ------------------------------------------------------- */

struct mapping {
	uint64_t start, end, dev, ino;
};

/* The test may parse maps; the probe never does. */
static bool find_mapping(const char *path, const char *perms,
			 struct mapping *mp)
{
	char line[PATH_MAX + 256], p[8], file[PATH_MAX];
	unsigned long lo, hi, off, ino;
	unsigned int maj, min;
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	cr_assert_not_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		file[0] = '\0';
		if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %4095s", &lo, &hi,
			   p, &off, &maj, &min, &ino, file) < 7)
			continue;
		if (strcmp(p, perms) || strcmp(file, path))
			continue;
		mp->start = lo;
		mp->end = hi;
		mp->dev = makedev(maj, min);
		mp->ino = ino;
		found = true;
	}
	fclose(f);
	return found;
}

static void self_exe_mapping(struct mapping *mp)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	cr_assert(find_mapping(exe, "r-xp", mp), "no r-xp mapping of %s", exe);
}

static void mapping_request(struct sp_msg_open_mapping *rq,
			    const struct mapping *mp)
{
	memset(rq, 0, sizeof(*rq));
	rq->req_id = 11;
	rq->pid = (uint32_t)getpid();
	rq->start_time = start_time_ns(getpid());
	rq->start = mp->start;
	rq->end = mp->end;
	rq->dev = mp->dev;
	rq->ino = mp->ino;
}

Test(broker, open_mapping_main_binary)
{
	struct sp_msg_open_mapping rq;
	struct sp_ctl_msg r;
	struct mapping mp;
	struct stat st;
	struct conn c;
	char magic[4];

	REQUIRE_ROOT();
	self_exe_mapping(&mp);
	mapping_request(&rq, &mp);
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_files(&r, 11, 1);
	cr_assert_eq(pread(r.fds[0], magic, 4, 0), 4);
	cr_expect_arr_eq(magic, "\177ELF", 4);
	cr_assert_eq(fstat(r.fds[0], &st), 0);
	cr_expect(S_ISREG(st.st_mode));
	cr_expect_eq(st.st_dev, mp.dev);
	cr_expect_eq(st.st_ino, mp.ino);
	cr_expect_eq(fcntl(r.fds[0], F_GETFL) & O_ACCMODE, O_RDONLY);
	sp_ctl_msg_close_fds(&r);
	conn_close(&c);
}

Test(broker, open_mapping_unmapped_range)
{
	struct sp_msg_open_mapping rq;
	struct mapping mp = { .start = 0x1000, .end = 0x2000 };
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	mapping_request(&rq, &mp);
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_MAPPING, ENOENT);
	conn_close(&c);
}

Test(broker, open_mapping_bad_range)
{
	struct sp_msg_open_mapping rq;
	struct mapping mp;
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	self_exe_mapping(&mp);
	conn_open(&c, NULL);
	mapping_request(&rq, &mp);
	rq.start += 1;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_MAPPING, EINVAL);
	mapping_request(&rq, &mp);
	rq.end = rq.start;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_MAPPING, EINVAL);
	conn_close(&c);
}

Test(broker, open_mapping_not_elf)
{
	char path[] = "/tmp/sp-broker-notelf-XXXXXX", page[4096];
	struct sp_msg_open_mapping rq;
	struct mapping mp;
	struct sp_ctl_msg r;
	struct stat st;
	struct conn c;
	void *addr;
	int fd;

	REQUIRE_ROOT();
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	memset(page, 'x', sizeof(page));
	cr_assert_eq(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
	addr = mmap(NULL, sizeof(page), PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert_neq(addr, MAP_FAILED);
	cr_assert_eq(fstat(fd, &st), 0);
	mp.start = (uintptr_t)addr;
	mp.end = mp.start + sizeof(page);
	mp.dev = st.st_dev;
	mp.ino = st.st_ino;
	mapping_request(&rq, &mp);
	conn_open(&c, NULL);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_MAPPING, ENOEXEC);
	conn_close(&c);
	munmap(addr, sizeof(page));
	close(fd);
	unlink(path);
}

Test(broker, open_mapping_dev_ino_mismatch)
{
	struct sp_msg_open_mapping rq;
	struct mapping mp;
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	self_exe_mapping(&mp);
	conn_open(&c, NULL);
	mapping_request(&rq, &mp);
	rq.ino += 1;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_MAPPING, ESTALE);
	mapping_request(&rq, &mp);
	rq.dev ^= 1;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_MAPPING, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_MAPPING, ESTALE);
	conn_close(&c);
}

/* --- OPEN_DEBUG: escapes and dangerous objects (P10) ------------------- */

enum leaf_kind {
	LEAF_ABS_SYMLINK,	/* -> /etc/shadow */
	LEAF_DOTDOT_CHAIN,	/* -> ../hop -> ../../../../../../etc/shadow */
	LEAF_FIFO,
	LEAF_DEVICE,		/* char 1:3, like /dev/null */
	LEAF_DIRECTORY,
	LEAF_SOCKET,
	LEAF_REGULAR,
	LEAF_ABS_SYMLINK_IN_ROOT, /* -> /usr/lib/debug/real.debug, regular */
};

struct debug_case {
	char name[32];
	enum leaf_kind kind;
	int err;	/* 0: served */
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *dir)
{
	(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* out = a + b, PATH_MAX bytes, or fail the test. */
static void join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s%s", a, b);

	cr_assert(n > 0 && n < PATH_MAX, "path too long");
}

static void must(int rc, const char *what)
{
	cr_assert_eq(rc, 0, "%s: %s", what, strerror(errno));
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void make_leaf(const char *dir, enum leaf_kind kind)
{
	char leaf[PATH_MAX], aux[PATH_MAX];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	join(leaf, dir, "/ab/cdef.debug");
	switch (kind) {
	case LEAF_ABS_SYMLINK:
		must(symlink("/etc/shadow", leaf), "symlink");
		break;
	case LEAF_DOTDOT_CHAIN:
		join(aux, dir, "/hop");
		must(symlink("../../../../../../../../../../etc/shadow", aux),
		     "symlink hop");
		must(symlink("../hop", leaf), "symlink");
		break;
	case LEAF_FIFO:
		must(mkfifo(leaf, 0644), "mkfifo");
		break;
	case LEAF_DEVICE:
		must(mknod(leaf, S_IFCHR | 0666, makedev(1, 3)), "mknod");
		break;
	case LEAF_DIRECTORY:
		must(mkdir(leaf, 0755), "mkdir");
		break;
	case LEAF_SOCKET:
		cr_assert_lt(strlen(leaf), sizeof(sa.sun_path));
		strcpy(sa.sun_path, leaf);
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(s, 0);
		must(bind(s, (struct sockaddr *)&sa, sizeof(sa)), "bind");
		close(s);
		break;
	case LEAF_REGULAR:
		write_file(leaf, "debug-in-root");
		break;
	case LEAF_ABS_SYMLINK_IN_ROOT:
		must(symlink("/usr/lib/debug/real.debug", leaf), "symlink");
		break;
	}
}

/* root/usr/lib/debug/{.build-id/ab/, real.debug}; buildid: the .build-id dir. */
static void make_fake_root(const char *root, char *buildid)
{
	char p[PATH_MAX];

	must(mkdir(root, 0755), "mkdir root");
	join(p, root, "/usr");
	must(mkdir(p, 0755), "mkdir usr");
	join(p, root, "/usr/lib");
	must(mkdir(p, 0755), "mkdir lib");
	join(p, root, "/usr/lib/debug");
	must(mkdir(p, 0755), "mkdir debug");
	join(p, root, "/usr/lib/debug/real.debug");
	write_file(p, "real-in-root");
	join(buildid, root, "/usr/lib/debug/.build-id");
	must(mkdir(buildid, 0755), "mkdir .build-id");
	join(p, buildid, "/ab");
	must(mkdir(p, 0755), "mkdir ab");
}

static void debug_request(struct sp_msg_open_debug *rq, pid_t pid)
{
	memset(rq, 0, sizeof(*rq));
	rq->req_id = 21;
	rq->pid = (uint32_t)pid;
	rq->start_time = start_time_ns(pid);
	rq->build_id_len = 3;
	rq->build_id[0] = 0xab;
	rq->build_id[1] = 0xcd;
	rq->build_id[2] = 0xef;
}

/* A served debug fd must be read-only, a regular file, with this content. */
static void expect_debug_fd(const struct sp_ctl_msg *r, const char *content)
{
	char buf[64];
	struct stat st;

	expect_files(r, 21, 1);
	cr_expect_eq(fcntl(r->fds[0], F_GETFL) & O_ACCMODE, O_RDONLY);
	cr_assert_eq(fstat(r->fds[0], &st), 0);
	cr_expect(S_ISREG(st.st_mode));
	read_all(r->fds[0], buf, sizeof(buf));
	cr_expect_str_eq(buf, content);
	cr_expect_eq(write(r->fds[0], "x", 1), -1, "served fd is writable");
}

ParameterizedTestParameters(broker, open_debug_in_container_root)
{
	static struct debug_case cases[] = {
		{ "absolute symlink", LEAF_ABS_SYMLINK, ENOENT },
		{ "dotdot chain", LEAF_DOTDOT_CHAIN, ENOENT },
		{ "fifo", LEAF_FIFO, EACCES },
		{ "device", LEAF_DEVICE, EACCES },
		{ "directory", LEAF_DIRECTORY, EACCES },
		{ "socket", LEAF_SOCKET, EACCES },
		{ "regular", LEAF_REGULAR, 0 },
		{ "absolute symlink in root", LEAF_ABS_SYMLINK_IN_ROOT, 0 },
	};

	return cr_make_param_array(struct debug_case, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct debug_case *dc, broker, open_debug_in_container_root,
		  .timeout = 20)
{
	char tmp[] = "/tmp/sp-broker-root-XXXXXX", root[PATH_MAX];
	char host[PATH_MAX], buildid[PATH_MAX];
	const char *dirs[] = { host, NULL };
	struct broker_config cfg = { .debug_dirs = dirs };
	struct sp_msg_open_debug rq;
	struct sp_ctl_msg r;
	struct child ch;
	struct conn c;
	int before;

	REQUIRE_ROOT();
	log_init("probe", SP_LOG_DEBUG);
	cr_assert_not_null(mkdtemp(tmp));
	join(root, tmp, "/root");
	join(host, tmp, "/host");
	must(mkdir(host, 0755), "mkdir host");
	make_fake_root(root, buildid);
	make_leaf(buildid, dc->kind);

	child_start(&ch, root);
	conn_open(&c, &cfg);
	debug_request(&rq, ch.pid);
	before = count_fds();
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUG, &rq, sizeof(rq), &r), 0);
	if (dc->err) {
		expect_error(&r, SP_MSG_OPEN_DEBUG, dc->err);
		cr_expect_eq(r.nfds, 0);
	} else {
		expect_debug_fd(&r, dc->kind == LEAF_REGULAR ?
				"debug-in-root" : "real-in-root");
		sp_ctl_msg_close_fds(&r);
	}
	cr_expect_eq(count_fds(), before, "%s: fd leak", dc->name);
	child_stop(&ch);
	conn_close(&c);
	rm_tree(tmp);
}

/* Host debug dirs: RESOLVE_BENEATH keeps symlinks inside the dir. */
struct host_case {
	char name[32];
	char target[64];	/* symlink target; "" = regular file */
	int err;
};

ParameterizedTestParameters(broker, open_debug_host_dir)
{
	static struct host_case cases[] = {
		{ "relative escape", "../../../secret", EXDEV },
		{ "absolute escape", "/etc/shadow", EXDEV },
		{ "proc magic link", "/proc/self/root/etc/shadow", EXDEV },
		{ "regular", "", 0 },
		{ "relative inside", "../../real.debug", 0 },
	};

	return cr_make_param_array(struct host_case, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct host_case *hc, broker, open_debug_host_dir,
		  .timeout = 20)
{
	char tmp[] = "/tmp/sp-broker-host-XXXXXX", host[PATH_MAX];
	char p[PATH_MAX];
	const char *dirs[] = { host, NULL };
	struct broker_config cfg = { .debug_dirs = dirs };
	struct sp_msg_open_debug rq;
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	cr_assert_not_null(mkdtemp(tmp));
	join(p, tmp, "/secret");
	write_file(p, "secret");
	join(host, tmp, "/debug");
	must(mkdir(host, 0755), "mkdir");
	join(p, host, "/real.debug");
	write_file(p, "real-on-host");
	join(p, host, "/.build-id");
	must(mkdir(p, 0755), "mkdir");
	join(p, host, "/.build-id/ab");
	must(mkdir(p, 0755), "mkdir");
	join(p, host, "/.build-id/ab/cdef.debug");
	if (hc->target[0])
		must(symlink(hc->target, p), "symlink");
	else
		write_file(p, "regular-on-host");

	/* Our own root is the host's; it has no such build id. */
	conn_open(&c, &cfg);
	debug_request(&rq, getpid());
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUG, &rq, sizeof(rq), &r), 0);
	if (hc->err) {
		expect_error(&r, SP_MSG_OPEN_DEBUG, hc->err);
	} else {
		expect_debug_fd(&r, hc->target[0] ? "real-on-host" :
				"regular-on-host");
		sp_ctl_msg_close_fds(&r);
	}
	conn_close(&c);
	rm_tree(tmp);
}

Test(broker, open_debug_missing_is_enoent)
{
	char tmp[] = "/tmp/sp-broker-empty-XXXXXX";
	const char *dirs[] = { tmp, NULL };
	struct broker_config cfg = { .debug_dirs = dirs };
	struct sp_msg_open_debug rq;
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	cr_assert_not_null(mkdtemp(tmp));
	conn_open(&c, &cfg);
	debug_request(&rq, getpid());
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUG, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_DEBUG, ENOENT);
	conn_close(&c);
	rmdir(tmp);
}

/* --- malformed requests close the connection (P9) ---------------------- */

struct bad_request {
	char name[40];
	uint32_t type;
	uint32_t len;
	unsigned int nfds;
	uint32_t build_id_len;	/* OPEN_DEBUG only */
	int expect;
};

ParameterizedTestParameters(broker, malformed_request_closes)
{
	static struct bad_request cases[] = {
		{ "unknown type 0", 0, 16, 0, 0, -EBADMSG },
		{ "unknown type 9", 9, 16, 0, 0, -EBADMSG },
		{ "hello from aggregator", SP_MSG_HELLO, 48, 3, 0, -EPROTO },
		{ "hello 4 fds", SP_MSG_HELLO, 48, 4, 0, -EPROTO },
		{ "files from aggregator", SP_MSG_FILES, 24, 1, 0, -EPROTO },
		{ "files 4 fds", SP_MSG_FILES, 24, 4, 0, -EPROTO },
		{ "error from aggregator", SP_MSG_ERROR, 16, 0, 0, -EPROTO },
		{ "open_proc short", SP_MSG_OPEN_PROC, 20, 0, 0, -EBADMSG },
		{ "open_proc long", SP_MSG_OPEN_PROC, 32, 0, 0, -EBADMSG },
		{ "open_proc with fd", SP_MSG_OPEN_PROC, 24, 1, 0, -EBADMSG },
		{ "open_mapping short", SP_MSG_OPEN_MAPPING, 48, 0, 0, -EBADMSG },
		{ "open_debug long", SP_MSG_OPEN_DEBUG, 72, 0, 0, -EBADMSG },
		{ "open_debug with fds", SP_MSG_OPEN_DEBUG, 64, 2, 2, -EBADMSG },
		{ "build_id_len 0", SP_MSG_OPEN_DEBUG, 64, 0, 0, -EPROTO },
		{ "build_id_len 1", SP_MSG_OPEN_DEBUG, 64, 0, 1, -EPROTO },
		{ "build_id_len 41", SP_MSG_OPEN_DEBUG, 64, 0, 41, -EPROTO },
		{ "build_id_len max", SP_MSG_OPEN_DEBUG, 64, 0, 0xffffffff,
		  -EPROTO },
		{ "probe_config after hello", SP_MSG_PROBE_CONFIG, 8, 0, 0,
		  -EPROTO },
		{ "probe_config long", SP_MSG_PROBE_CONFIG, 12, 0, 0, -EBADMSG },
	};

	return cr_make_param_array(struct bad_request, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

static void send_datagram(int sock, uint32_t type, uint32_t len,
			  const void *payload, unsigned int nfds)
{
	unsigned char buf[sizeof(struct sp_msg_hdr) + 256] = { 0 };
	struct sp_msg_hdr hdr = { .type = type, .len = len };
	int fds[8];
	unsigned int i;

	cr_assert_leq(len, 256);
	memcpy(buf, &hdr, sizeof(hdr));
	if (payload)
		memcpy(buf + sizeof(hdr), payload, len);
	for (i = 0; i < nfds; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fds[i], 0);
	}
	raw_send(sock, buf, sizeof(hdr) + len, fds, nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
}

ParameterizedTest(struct bad_request *br, broker, malformed_request_closes)
{
	struct sp_msg_open_debug dbg = { .pid = 1 };
	struct broker_stats st;
	struct sp_ctl_msg r;
	struct conn c;
	int before, ret;

	conn_open(&c, NULL);
	before = count_fds();
	dbg.build_id_len = br->build_id_len;
	send_datagram(c.agg, br->type, br->len,
		      br->type == SP_MSG_OPEN_DEBUG && br->len == 64 ? &dbg : NULL,
		      br->nfds);
	ret = probe_round(&c);
	cr_expect_eq(ret, br->expect, "%s: got %d (%s)", br->name, ret,
		     strerror(-ret));
	cr_expect_eq(count_fds(), before, "%s: fd leak", br->name);
	cr_expect_eq(sp_ctl_recv(c.agg, &r), -EAGAIN, "%s: got a reply",
		     br->name);
	broker_stats(c.b, &st);
	cr_expect_eq(st.protocol_errors, ret == -EPROTO ? 1 : 0);
	cr_expect_eq(st.served + st.refused, 0);
	conn_close(&c);
}

Test(broker, request_carrying_fds_is_eproto)
{
	struct sp_ctl_msg m = { .type = SP_MSG_OPEN_PROC, .len = 24, .nfds = 1 };
	struct conn c;

	conn_open(&c, NULL);
	m.fds[0] = -1;
	cr_expect_eq(broker_dispatch(c.b, c.probe, &m), -EPROTO);
	conn_close(&c);
}

/* --- OPEN_DEBUGLINK ------------------------------------------------------ */

/* dir/bin: a mapped "ELF" (magic only: the broker never parses) that the test
 * maps; its debuglink candidates are created by each test. */
struct dl_fixture {
	char dir[PATH_MAX], bin[PATH_MAX];
	void *addr;
	struct mapping mp;
	int fd;
};

static void dl_setup(struct dl_fixture *f)
{
	char page[4096] = "\177ELF";
	char tmpl[] = "/tmp/sp-broker-dl-XXXXXX";
	struct stat st;

	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(f->dir, sizeof(f->dir), "%s", tmpl);
	join(f->bin, f->dir, "/bin");
	f->fd = open(f->bin, O_RDWR | O_CREAT | O_CLOEXEC, 0755);
	cr_assert_geq(f->fd, 0);
	cr_assert_eq(write(f->fd, page, sizeof(page)), (ssize_t)sizeof(page));
	f->addr = mmap(NULL, sizeof(page), PROT_READ, MAP_PRIVATE, f->fd, 0);
	cr_assert_neq(f->addr, MAP_FAILED);
	cr_assert_eq(fstat(f->fd, &st), 0);
	f->mp = (struct mapping){ .start = (uintptr_t)f->addr,
		.end = (uintptr_t)f->addr + sizeof(page), .dev = st.st_dev,
		.ino = st.st_ino };
}

static void dl_teardown(struct dl_fixture *f)
{
	munmap(f->addr, 4096);
	close(f->fd);
	rm_tree(f->dir);
}

static void dl_request(struct sp_msg_open_debuglink *rq,
		       const struct dl_fixture *f, const char *name)
{
	memset(rq, 0, sizeof(*rq));
	rq->req_id = 31;
	rq->pid = (uint32_t)getpid();
	rq->start_time = start_time_ns(getpid());
	rq->start = f->mp.start;
	rq->end = f->mp.end;
	rq->dev = f->mp.dev;
	rq->ino = f->mp.ino;
	snprintf(rq->name, sizeof(rq->name), "%s", name);
}

/* The reply's fd is the file at path. */
static void expect_fd_is(const struct sp_ctl_msg *r, const char *path)
{
	struct stat a, b;

	expect_files(r, 31, 1);
	cr_assert_eq(fstat(r->fds[0], &a), 0);
	cr_assert_eq(stat(path, &b), 0, "%s: %s", path, strerror(errno));
	cr_expect(a.st_dev == b.st_dev && a.st_ino == b.st_ino,
		  "the fd is not %s", path);
	cr_expect_eq(fcntl(r->fds[0], F_GETFL) & O_ACCMODE, O_RDONLY);
}

/* gdb's order: DIR/NAME before DIR/.debug/NAME before /usr/lib/debug/DIR. */
Test(broker, open_debuglink_gdb_order)
{
	struct sp_msg_open_debuglink rq;
	struct dl_fixture f;
	char beside[PATH_MAX], dotdebug[PATH_MAX], p[PATH_MAX];
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	dl_setup(&f);
	join(p, f.dir, "/.debug");
	must(mkdir(p, 0755), "mkdir .debug");
	join(dotdebug, f.dir, "/.debug/bin.debug");
	write_file(dotdebug, "\177ELF in .debug");
	conn_open(&c, NULL);
	dl_request(&rq, &f, "bin.debug");
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_fd_is(&r, dotdebug);
	sp_ctl_msg_close_fds(&r);
	join(beside, f.dir, "/bin.debug");
	write_file(beside, "\177ELF beside");
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_fd_is(&r, beside);
	sp_ctl_msg_close_fds(&r);
	conn_close(&c);
	dl_teardown(&f);
}

/* Host debug dirs: DIR/NAME beneath each. */
Test(broker, open_debuglink_host_dir)
{
	const char *dirs[2] = { NULL, NULL };
	struct sp_msg_open_debuglink rq;
	struct broker_config cfg = { .debug_dirs = dirs };
	char host[] = "/tmp/sp-broker-dlhost-XXXXXX", p[PATH_MAX * 2];
	struct dl_fixture f;
	struct sp_ctl_msg r;
	struct conn c;
	char *s;

	REQUIRE_ROOT();
	dl_setup(&f);
	cr_assert_not_null(mkdtemp(host));
	dirs[0] = host;
	/* host/<dir>/bin.debug, made one level at a time */
	snprintf(p, sizeof(p), "%s%s/", host, f.dir);
	for (s = strchr(p + strlen(host) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		must(mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1, "mkdir");
		*s = '/';
	}
	strcat(p, "bin.debug");
	write_file(p, "\177ELF host");
	conn_open(&c, &cfg);
	dl_request(&rq, &f, "bin.debug");
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_fd_is(&r, p);
	sp_ctl_msg_close_fds(&r);
	conn_close(&c);
	dl_teardown(&f);
	rm_tree(host);
}

/* Not ELF (a secret beside the binary, or a symlink to one): refused. */
Test(broker, open_debuglink_not_elf_or_missing)
{
	struct sp_msg_open_debuglink rq;
	struct dl_fixture f;
	char p[PATH_MAX];
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	dl_setup(&f);
	conn_open(&c, NULL);
	dl_request(&rq, &f, "bin.debug");
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_DEBUGLINK, ENOENT);
	join(p, f.dir, "/bin.debug");
	write_file(p, "password=hunter2");
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_DEBUGLINK, ENOEXEC);
	cr_expect_eq(r.nfds, 0);
	unlink(p);
	must(symlink("/etc/passwd", p), "symlink");
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_DEBUGLINK, ENOEXEC);
	cr_expect_eq(r.nfds, 0);
	conn_close(&c);
	dl_teardown(&f);
}

/* The mapping is checked as for OPEN_MAPPING before any lookup. */
Test(broker, open_debuglink_mapping_checked)
{
	struct sp_msg_open_debuglink rq;
	struct dl_fixture f;
	char p[PATH_MAX];
	struct sp_ctl_msg r;
	struct conn c;

	REQUIRE_ROOT();
	dl_setup(&f);
	join(p, f.dir, "/bin.debug");
	write_file(p, "\177ELF beside");
	conn_open(&c, NULL);
	dl_request(&rq, &f, "bin.debug");
	rq.ino++;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_DEBUGLINK, ESTALE);
	dl_request(&rq, &f, "bin.debug");
	rq.start = 0x1000;
	rq.end = 0x2000;
	cr_assert_eq(ask(&c, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_DEBUGLINK, ENOENT);
	conn_close(&c);
	dl_teardown(&f);
}

struct bad_link {
	char name[SP_DEBUGLINK_MAX];
	bool unterminated;	/* fill every byte, no NUL */
};

ParameterizedTestParameters(broker, open_debuglink_bad_name_closes)
{
	static struct bad_link cases[] = {
		{ "", false },
		{ ".debug", false },
		{ "secret.txt", false },
		{ "../bin.debug", false },
		{ "sub/bin.debug", false },
		{ "/etc/x.debug", false },
		{ "bin .debug", false },
		{ "bin\n.debug", false },
		{ "bin\x7f.debug", false },
		{ "bin\xc3\xa9.debug", false },
		{ "", true },
	};

	return cr_make_param_array(struct bad_link, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_link *bl, broker, open_debuglink_bad_name_closes)
{
	struct sp_msg_open_debuglink rq = { .pid = 1, .start = 0x1000,
					    .end = 0x2000 };
	struct broker_stats st;
	struct conn c;

	memcpy(rq.name, bl->name, sizeof(rq.name));
	if (bl->unterminated)
		memset(rq.name, 'a', sizeof(rq.name));
	conn_open(&c, NULL);
	cr_assert_eq(sp_ctl_send(c.agg, SP_MSG_OPEN_DEBUGLINK, &rq, sizeof(rq),
				 NULL, 0), 0);
	cr_expect_eq(probe_round(&c), -EPROTO, "name '%s' accepted", bl->name);
	broker_stats(c.b, &st);
	cr_expect_eq(st.protocol_errors, 1);
	cr_expect_eq(st.served + st.refused, 0);
	conn_close(&c);
}

/* --- rate limit ---------------------------------------------------------- */

Test(broker, rate_limit)
{
	struct broker_config cfg = { .rate_per_sec = 10, .burst = 5 };
	struct sp_msg_open_proc rq = { .req_id = 1 };
	struct broker_stats st;
	struct sp_ctl_msg r;
	struct conn c;
	unsigned int i, served = 0, busy = 0;

	REQUIRE_ROOT();
	log_init("probe", SP_LOG_DEBUG);
	conn_open(&c, &cfg);
	rq.pid = (uint32_t)getpid();
	rq.start_time = start_time_ns(getpid());
	for (i = 0; i < 20; i++) {
		cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
		if (r.type == SP_MSG_FILES) {
			served++;
		} else {
			expect_error(&r, SP_MSG_OPEN_PROC, EBUSY);
			busy++;
		}
		sp_ctl_msg_close_fds(&r);
	}
	cr_expect_geq(served, 5);
	cr_expect_leq(served, 6);
	cr_expect_eq(served + busy, 20);
	broker_stats(c.b, &st);
	cr_expect_eq(st.rate_limited, busy);
	cr_expect_eq(st.served, served);
	cr_expect_eq(st.refused, busy);

	/* A new connection does not refill the bucket: an aggregator cannot
	 * beat the limit by reconnecting. */
	broker_reset(c.b);
	cr_assert_eq(ask(&c, SP_MSG_OPEN_PROC, &rq, sizeof(rq), &r), 0);
	expect_error(&r, SP_MSG_OPEN_PROC, EBUSY);
	sp_ctl_msg_close_fds(&r);

	/* A malformed request is a protocol error even while rate-limited:
	 * the limit must not turn "close" into a polite EBUSY. */
	{
		struct sp_msg_open_debug od = { .req_id = 9, .pid = rq.pid,
						.build_id_len = 41 };
		struct sp_ctl_msg m = { .type = SP_MSG_OPEN_DEBUG,
					.len = sizeof(od) };

		memcpy(m.u.raw, &od, sizeof(od));
		cr_expect_eq(broker_dispatch(c.b, c.probe, &m), -EPROTO);
	}
	conn_close(&c);
}

/* --- fuzz-style: random datagrams never crash and never leak (P9) ------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Make some payloads name a live process so the handlers run deep. */
static void aim_at_self(unsigned char *p, uint32_t type, uint64_t start)
{
	uint32_t pid = (uint32_t)getpid(), len;

	memcpy(p + 8, &start, sizeof(start));
	if (type == SP_MSG_OPEN_PROC || type == SP_MSG_OPEN_DEBUG)
		memcpy(p + 16, &pid, sizeof(pid));
	if (type == SP_MSG_OPEN_PROC) {
		len = (uint32_t)(rnd() % 2);	/* flags: none or cmdline */
		memcpy(p + 20, &len, sizeof(len));
	}
	if (type == SP_MSG_OPEN_MAPPING || type == SP_MSG_OPEN_DEBUGLINK)
		memcpy(p + 48, &pid, sizeof(pid));
	if (type == SP_MSG_OPEN_DEBUGLINK && rnd() % 2)
		memcpy(p + 56, "splitprof-tests.debug", 22);
	if (type == SP_MSG_OPEN_DEBUG) {
		len = 2 + (uint32_t)(rnd() % (SP_BUILD_ID_MAX - 1));
		memcpy(p + 20, &len, sizeof(len));
	}
}

static void drain_replies(int sock)
{
	struct sp_ctl_msg r;

	while (sp_ctl_recv(sock, &r) == 0)
		sp_ctl_msg_close_fds(&r);
}

Test(broker, random_datagrams, .timeout = 300)
{
	struct broker_config cfg = { .rate_per_sec = 1000000, .burst = 1000000 };
	unsigned char payload[256];
	uint32_t type, len;
	unsigned int i, j, nfds, lo, hi;
	bool shaped;
	uint64_t start = start_time_ns(getpid());
	struct broker_stats st;
	struct conn c;
	int before;

	log_init("probe", SP_LOG_WARN);
	conn_open(&c, &cfg);
	before = count_fds();
	for (i = 0; i < 20000; i++) {
		type = (uint32_t)(rnd() % (SP_MSG_TYPE_MAX + 3));
		shaped = rnd() % 2 &&
			 sp_ctl_shape(type, &len, &lo, &hi) == 0;
		if (!shaped)
			len = (uint32_t)(rnd() % 200);
		for (j = 0; j < sizeof(payload); j++)
			payload[j] = (unsigned char)rnd();
		if (shaped && rnd() % 2)
			aim_at_self(payload, type, start);
		nfds = rnd() % 8 == 0 ? (unsigned int)(rnd() % 6) : 0;
		send_datagram(c.agg, type, len, payload, nfds);
		(void)probe_round(&c);
		drain_replies(c.agg);
	}
	cr_expect_eq(count_fds(), before, "fd leak after 20000 datagrams");
	broker_stats(c.b, &st);
	cr_log_info("random_datagrams: served %llu refused %llu protocol %llu",
		    (unsigned long long)st.served,
		    (unsigned long long)st.refused,
		    (unsigned long long)st.protocol_errors);
	conn_close(&c);
}
