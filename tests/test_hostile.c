// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_hostile.c - P5, P6, P9 at the process level: the real probe against
 * a hostile aggregator (this file). For ~8 s it writes garbage consumer
 * positions, floods valid requests, sends every malformed request shape
 * (each one must cost it the connection, never the probe), and hangs up
 * with requests in flight. The probe must stay alive, keep sampling
 * (header-page counters), keep its memory flat and hand out only the
 * files the rules allow. Skips without root or kernel BTF.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <criterion/criterion.h>

#include "sp_abi.h"
#include "sp_ctl.h"

#define HOSTILE_SECONDS	8
#define RATE		"97"

struct hprobe {
	pid_t pid;
	int log;
	char path[108];
	char logbuf[32768];
	size_t loglen;
};

struct hconn {
	int sock;
	const struct sp_ring_hdr *hdr;	/* read-only map of the header page */
	struct sp_cons_page *cons;	/* ours to scribble on */
	int fds[SP_CTL_MAX_FDS];
	unsigned nfds;
};

struct htally {
	uint64_t produced;	/* records + dropped + idle + bpf_lost */
	unsigned connections, malformed_closed, files, errors, fds;
};

static uint64_t h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void h_spawn(struct hprobe *p)
{
	const char *dir = getenv("SPLITPROF_BUILD");
	char bin[4096];
	int lp[2];

	if (geteuid() != 0)
		cr_skip_test("needs root to load BPF programs");
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		cr_skip_test("no kernel BTF at /sys/kernel/btf/vmlinux");
	snprintf(bin, sizeof(bin), "%s/splitprof-probe", dir ? dir : "build");
	snprintf(p->path, sizeof(p->path), "/tmp/splitprof-hostile-%d.sock",
		 getpid());
	cr_assert_eq(pipe2(lp, O_CLOEXEC), 0);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		dup2(lp[1], 2);
		execl(bin, bin, "--socket", p->path, "--aggregator-uid", "0",
		      "--sample-rate", RATE, (char *)NULL);
		_exit(127);
	}
	close(lp[1]);
	p->log = lp[0];
	fcntl(p->log, F_SETFL, O_NONBLOCK);
}

/* Keep draining the probe's log so it never blocks on a full pipe. */
static void h_read_log(struct hprobe *p)
{
	ssize_t n;

	for (;;) {
		if (p->loglen > sizeof(p->logbuf) - 1024)
			p->loglen = 0;	/* keep the tail only */
		n = read(p->log, p->logbuf + p->loglen,
			 sizeof(p->logbuf) - p->loglen - 1);
		if (n <= 0)
			return;
		p->loglen += (size_t)n;
		p->logbuf[p->loglen] = '\0';
	}
}

static int h_wait_log(struct hprobe *p, const char *needle, int ms)
{
	uint64_t end = h_now_ms() + (uint64_t)ms;

	while (!strstr(p->logbuf, needle) && h_now_ms() < end) {
		poll(&(struct pollfd){ .fd = p->log, .events = POLLIN }, 1, 50);
		h_read_log(p);
	}
	return strstr(p->logbuf, needle) != NULL;
}

static long h_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int h_alive(const struct hprobe *p)
{
	return waitpid(p->pid, NULL, WNOHANG) == 0;
}

/* ---- one connection --------------------------------------------------- */

static int h_connect(struct hprobe *p, struct hconn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	struct sp_ctl_msg m;

	memset(c, 0, sizeof(*c));
	memcpy(sa.sun_path, p->path, sizeof(sa.sun_path) - 1);
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(c->sock, 0);
	if (connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(c->sock);
		return -errno;
	}
	setsockopt(c->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(sp_ctl_recv(c->sock, &m), 0, "no HELLO");
	cr_assert_eq(m.type, SP_MSG_HELLO);
	cr_assert_geq(m.nfds, 3);
	memcpy(c->fds, m.fds, sizeof(c->fds));
	c->nfds = m.nfds;
	c->hdr = mmap(NULL, SP_RING_HDR_SIZE, PROT_READ, MAP_SHARED, m.fds[0], 0);
	c->cons = mmap(NULL, SP_CONS_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, m.fds[1], 0);
	cr_assert_neq(c->hdr, MAP_FAILED);
	cr_assert_neq(c->cons, MAP_FAILED);
	tv.tv_sec = 0;
	tv.tv_usec = 200000;
	setsockopt(c->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

static void h_close(struct hconn *c, struct htally *t)
{
	unsigned i;

	t->produced += c->hdr->records + c->hdr->dropped_records +
		       c->hdr->idle_samples + c->hdr->bpf_lost;
	t->connections++;
	munmap((void *)(uintptr_t)c->hdr, SP_RING_HDR_SIZE);
	munmap(c->cons, SP_CONS_PAGE_SIZE);
	for (i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	close(c->sock);
}

/* Garbage consumer positions: random, 2^63, behind, far ahead, all ones. */
static void h_scribble(struct hconn *c, unsigned i)
{
	uint64_t prod = __atomic_load_n(&c->hdr->prod_pos, __ATOMIC_ACQUIRE);
	uint64_t v;

	switch (i % 7) {
	case 0: v = ((uint64_t)rand() << 33) ^ (uint64_t)rand(); break;
	case 1: v = 1ull << 63; break;
	case 2: v = 0; break;
	case 3: v = prod + (1ull << 40); break;
	case 4: v = prod - 1; break;
	case 5: v = UINT64_MAX; break;
	default: v = prod + 3; break;	/* unaligned, just ahead */
	}
	__atomic_store_n(&c->cons->cons_pos, v, __ATOMIC_RELEASE);
	c->cons->waiting = (uint32_t)rand();
}

/* ---- what the probe hands out ------------------------------------------ */

static uint64_t self_start_time(void)
{
	char buf[1024], *p;
	unsigned long long ticks = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	int i;

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	for (i = 0; p && i < 20; i++)
		p = strchr(p + 1, ' ');
	cr_assert(p && sscanf(p + 1, "%llu", &ticks) == 1);
	return ticks * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* Our own text mapping, for valid OPEN_MAPPING requests. */
static void self_text(struct sp_msg_open_mapping *rq)
{
	char exe[4096], line[4608], path[4096];
	unsigned long long a, b;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f = fopen("/proc/self/maps", "r");
	struct stat st;

	cr_assert(n > 0 && f);
	exe[n] = '\0';
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx-%llx r-xp %*s %*s %*s %4095s", &a, &b,
			   path) == 3 && strcmp(path, exe) == 0) {
			rq->start = a;
			rq->end = b;
		}
	fclose(f);
	cr_assert_eq(stat(exe, &st), 0);
	rq->dev = st.st_dev;
	rq->ino = st.st_ino;
}

/*
 * Every fd the probe gives is read-only and of the right kind: exe/cwd are
 * the path text in a sealed memfd, never the file or directory itself.
 */
static void h_check_fd(int fd, uint32_t request, unsigned slot)
{
	char link[64], target[4096], magic[4], want[64];
	int fl = fcntl(fd, F_GETFL);
	struct stat st;
	ssize_t n;

	cr_assert_geq(fl, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(fl & O_ACCMODE, O_RDONLY, "fd opened for writing");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	cr_expect(!(fl & O_PATH), "O_PATH fd for request %u slot %u", request,
		  slot);
	cr_expect(S_ISREG(st.st_mode), "fd %s is not a regular file", target);
	if (request == SP_MSG_OPEN_PROC &&
	    (slot == SP_PROC_FD_EXE || slot == SP_PROC_FD_CWD)) {
		cr_expect_eq(strncmp(target, "/memfd:", 7), 0, "exe/cwd: %s", target);
		cr_expect(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE);
		return;
	}
	if (request == SP_MSG_OPEN_PROC) {
		snprintf(want, sizeof(want), "/proc/%d/", getpid());
		cr_expect_eq(strncmp(target, want, strlen(want)), 0,
			     "OPEN_PROC gave %s", target);
	} else {
		cr_expect_eq(pread(fd, magic, 4, 0), 4);
		cr_expect_eq(memcmp(magic, "\177ELF", 4), 0,
			     "request %u gave a non-ELF file %s", request,
			     target);
	}
}

/* Drain replies; returns -1 once the probe closed the connection. */
static int h_replies(struct hconn *c, struct htally *t, int wait_ms)
{
	struct sp_ctl_msg m;
	unsigned i, slot, bit;
	int r;

	for (;;) {
		if (poll(&(struct pollfd){ .fd = c->sock, .events = POLLIN }, 1,
			 wait_ms) <= 0)
			return 0;
		r = sp_ctl_recv(c->sock, &m);
		if (r == -ECONNRESET)
			return -1;
		if (r < 0)
			return r == -EAGAIN ? 0 : -1;
		if (m.type == SP_MSG_ERROR) {
			t->errors++;
		} else {
			cr_expect_eq(m.type, SP_MSG_FILES, "unexpected reply %u",
				     m.type);
			t->files++;
			for (i = 0, bit = 0; i < m.nfds; i++, bit++) {
				while (m.u.files.request == SP_MSG_OPEN_PROC &&
				       bit < 32 && !(m.u.files.fd_mask & (1u << bit)))
					bit++;
				slot = m.u.files.request == SP_MSG_OPEN_PROC ?
				       bit : 0;
				h_check_fd(m.fds[i], m.u.files.request, slot);
				t->fds++;
			}
		}
		sp_ctl_msg_close_fds(&m);
		wait_ms = 0;
	}
}

/* A burst of valid requests: own process, own text, a bogus build id. */
static void h_flood(struct hconn *c, const struct sp_msg_open_mapping *map,
		    unsigned round)
{
	struct sp_msg_open_proc op = {
		.start_time = map->start_time, .pid = map->pid,
	};
	struct sp_msg_open_debug od = {
		.start_time = map->start_time, .pid = map->pid,
		.build_id_len = 20,
	};
	struct sp_msg_open_mapping mp = *map;
	unsigned i;

	for (i = 0; i < 16; i++) {
		op.req_id = mp.req_id = od.req_id = round * 64 + i;
		od.build_id[0] = (uint8_t)i;
		/* now and then a stale start time or a wrong range */
		op.start_time = map->start_time + (i == 7);
		mp.end = map->end + (i == 9 ? 4096 : 0);
		(void)sp_ctl_send(c->sock, SP_MSG_OPEN_PROC, &op, sizeof(op),
				  NULL, 0);
		(void)sp_ctl_send(c->sock, SP_MSG_OPEN_MAPPING, &mp, sizeof(mp),
				  NULL, 0);
		(void)sp_ctl_send(c->sock, SP_MSG_OPEN_DEBUG, &od, sizeof(od),
				  NULL, 0);
	}
}

/* ---- malformed shapes, each must close the connection ------------------- */

#define N_MALFORMED	14

static void h_send_malformed(struct hconn *c, unsigned which)
{
	unsigned char buf[256] = { 0 };
	struct sp_msg_hdr *h = (void *)buf;
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { buf, sizeof(*h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fd = -1;

	switch (which) {
	case 0: iov.iov_len = 4; h->type = SP_MSG_OPEN_PROC; break;	/* short */
	case 1: h->type = SP_MSG_OPEN_PROC; h->len = 200;		/* long */
		iov.iov_len = sizeof(*h) + 200; break;
	case 2: h->type = SP_MSG_OPEN_PROC; h->len = 23;		/* off by one */
		iov.iov_len = sizeof(*h) + 23; break;
	case 3: h->type = 0; break;					/* unknown */
	case 4: h->type = SP_MSG_TYPE_MAX + 1; break;
	case 5: h->type = 0xffffffffu; h->len = 0xffffffffu; break;
	case 6: h->type = SP_MSG_HELLO; h->len = sizeof(struct sp_msg_hello);
		iov.iov_len = sizeof(*h) + h->len; break;		/* wrong side */
	case 7: h->type = SP_MSG_FILES; h->len = sizeof(struct sp_msg_files);
		iov.iov_len = sizeof(*h) + h->len; break;
	case 8: h->type = SP_MSG_ERROR; h->len = sizeof(struct sp_msg_error);
		iov.iov_len = sizeof(*h) + h->len; break;
	case 9: case 10:						/* with an fd */
		h->type = SP_MSG_OPEN_PROC;
		h->len = sizeof(struct sp_msg_open_proc);
		iov.iov_len = sizeof(*h) + h->len;
		fd = which == 9 ? open("/dev/null", O_RDONLY | O_CLOEXEC)
				: c->fds[0];	/* its own ring back */
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		break;
	case 11: iov.iov_len = 0; break;				/* empty */
	case 12: h->type = SP_MSG_OPEN_PROC;		/* unknown flag bits */
		h->len = sizeof(struct sp_msg_open_proc);
		iov.iov_len = sizeof(*h) + h->len;
		((struct sp_msg_open_proc *)(h + 1))->flags = 0x80000000u;
		break;
	default: h->type = SP_MSG_OPEN_DEBUG;		/* build id too long */
		h->len = sizeof(struct sp_msg_open_debug);
		iov.iov_len = sizeof(*h) + h->len;
		((struct sp_msg_open_debug *)(h + 1))->build_id_len = 41;
		break;
	}
	(void)sendmsg(c->sock, &mh, MSG_NOSIGNAL);
	if (which == 9)
		close(fd);
}

Test(hostile, probe_survives_hostile_aggregator, .timeout = 40)
{
	struct sp_msg_open_mapping map = { 0 };
	struct htally t = { 0 };
	struct hprobe p = { 0 };
	struct hconn c;
	uint64_t start, end, conn_ms = 0, t0, conn_t0;
	long rss0, rss1;
	unsigned round = 0, mal = 0, i;
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), r;

	srand(12345);
	h_spawn(&p);
	cr_assert(h_wait_log(&p, "listening on", 10000), "%s", p.logbuf);
	map.pid = (uint32_t)getpid();
	map.start_time = self_start_time();
	self_text(&map);
	cr_assert_eq(h_connect(&p, &c), 0);
	rss0 = h_rss_kb(p.pid);
	start = h_now_ms();
	end = start + HOSTILE_SECONDS * 1000;
	conn_t0 = start;
	while (h_now_ms() < end) {
		/* ~300 ms of scribbling and flooding, busy on purpose */
		uint64_t phase = h_now_ms() + 300;

		for (i = 0; h_now_ms() < phase; i++) {
			h_scribble(&c, i);
			if (i % 20000 == 0) {
				h_flood(&c, &map, round++);
				if (h_replies(&c, &t, 0) < 0)
					break;
			}
		}
		(void)h_replies(&c, &t, 20);
		if (round % 5 == 4) {
			/* hang up with requests in flight */
			h_flood(&c, &map, round++);
		} else {
			h_send_malformed(&c, mal % N_MALFORMED);
			/* queued behind the flood's replies: drain until EOF */
			t0 = h_now_ms() + 3000;
			while ((r = h_replies(&c, &t, 100)) == 0 &&
			       h_now_ms() < t0)
				;
			cr_expect_eq(r, -1, "malformed shape %u did not close "
				     "the connection", mal % N_MALFORMED);
			t.malformed_closed += r == -1;
			mal++;
		}
		conn_ms += h_now_ms() - conn_t0;
		h_close(&c, &t);
		h_read_log(&p);
		cr_assert(h_alive(&p), "the probe died: %s", p.logbuf);
		for (i = 0; i < 100 && h_connect(&p, &c) < 0; i++)
			poll(NULL, 0, 20);
		cr_assert_lt(i, 100, "cannot reconnect: %s", p.logbuf);
		conn_t0 = h_now_ms();
	}
	conn_ms += h_now_ms() - conn_t0;
	h_close(&c, &t);
	rss1 = h_rss_kb(p.pid);
	h_read_log(&p);
	cr_assert(h_alive(&p), "the probe died: %s", p.logbuf);
	cr_log_info("hostile: %u connections, %u malformed closed, %u FILES "
		    "(%u fds), %u ERROR, %llu records+drops+idle in %llu ms "
		    "connected (%d CPUs at " RATE " Hz), VmRSS %ld -> %ld kB",
		    t.connections, t.malformed_closed, t.files, t.fds, t.errors,
		    (unsigned long long)t.produced,
		    (unsigned long long)conn_ms, ncpu, rss0, rss1);
	cr_expect_geq(t.malformed_closed, 10, "too few malformed rounds");
	cr_expect_gt(t.fds, 0, "the probe served no valid request");
	/* samples keep coming: at least half of rate x CPUs x time */
	cr_expect_geq(t.produced, (uint64_t)(97 * ncpu) * conn_ms / 1000 / 2,
		      "the probe sampled too little under attack");
	cr_expect_leq(rss1, rss0 + 2048, "VmRSS grew from %ld to %ld kB",
		      rss0, rss1);
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	unlink(p.path);
}
