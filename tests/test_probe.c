// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_probe.c - the real probe with real BPF: this file plays a minimal
 * aggregator. Skips without root or kernel BTF.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>

#include "sp_abi.h"
#include "sp_ctl.h"
#include "sp_ring.h"

struct probe_proc {
	pid_t pid;
	int sock;	/* our end of --socket-fd, or -1 */
	int log;	/* read end of the probe's stderr */
	char logbuf[16384];
	size_t loglen;
};

static void skip_unless_bpf(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to load BPF programs");
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		cr_skip_test("no kernel BTF at /sys/kernel/btf/vmlinux");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Starts the probe; with sockpath NULL it gets one end of a socketpair, and
 * with rate NULL as well it waits for PROBE_CONFIG (--config-from-peer). */
static void probe_spawn(struct probe_proc *pp, const char *sockpath,
			const char *rate)
{
	const char *dir = getenv("SPLITPROF_BUILD");
	char bin[4096], fdstr[16];
	int sv[2] = { -1, -1 }, lp[2];

	snprintf(bin, sizeof(bin), "%s/splitprof-probe", dir ? dir : "build");
	if (!sockpath)
		cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
					0, sv), 0);
	cr_assert_eq(pipe2(lp, O_CLOEXEC), 0);
	memset(pp, 0, sizeof(*pp));
	pp->pid = fork();
	cr_assert_geq(pp->pid, 0);
	if (pp->pid == 0) {
		dup2(lp[1], 2);
		if (sockpath) {
			execl(bin, bin, "--socket", sockpath,
			      "--aggregator-uid", "0", "--sample-rate", rate,
			      (char *)NULL);
		} else {
			fcntl(sv[1], F_SETFD, 0);
			snprintf(fdstr, sizeof(fdstr), "%d", sv[1]);
			if (rate)
				execl(bin, bin, "--socket-fd", fdstr,
				      "--sample-rate", rate, (char *)NULL);
			else
				execl(bin, bin, "--socket-fd", fdstr,
				      "--config-from-peer", (char *)NULL);
		}
		_exit(127);
	}
	close(lp[1]);
	pp->log = lp[0];
	pp->sock = sv[0];
	if (sv[1] >= 0)
		close(sv[1]);
}

static void probe_kill(struct probe_proc *pp)
{
	if (pp->pid > 0) {
		kill(pp->pid, SIGKILL);
		waitpid(pp->pid, NULL, 0);
		pp->pid = 0;
	}
}

/* Read the probe's log until needle shows up or the deadline passes. */
static int wait_log(struct probe_proc *pp, const char *needle, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	struct pollfd pfd = { .fd = pp->log, .events = POLLIN };
	ssize_t n;

	while (!strstr(pp->logbuf, needle)) {
		int left = (int)(end - now_ms());

		if ((int64_t)(end - now_ms()) <= 0 || poll(&pfd, 1, left) <= 0)
			return 0;
		n = read(pp->log, pp->logbuf + pp->loglen,
			 sizeof(pp->logbuf) - pp->loglen - 1);
		if (n <= 0)
			return 0;
		pp->loglen += (size_t)n;
		pp->logbuf[pp->loglen] = '\0';
	}
	return 1;
}

static int connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return fd;
}

/* Receive HELLO (probe set-up is complete then) and map the ring. */
static struct sp_consumer *hello_open(int sock, struct sp_msg_hello *h)
{
	struct timeval tv = { .tv_sec = 10 };
	struct sp_consumer *c = NULL;
	struct sp_ring_fds fds;
	struct sp_ctl_msg m;

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(sp_ctl_recv(sock, &m), 0, "no HELLO from the probe");
	cr_assert_eq(m.type, SP_MSG_HELLO);
	cr_assert_eq(m.nfds, 4, "HELLO without the kallsyms fd");
	*h = m.u.hello;
	cr_assert_eq(h->abi_version, SP_ABI_VERSION);
	close(m.fds[3]);
	fds = (struct sp_ring_fds){ m.fds[0], m.fds[1], m.fds[2] };
	cr_assert_eq(sp_consumer_open(&fds, &c), 0);
	return c;
}

/* Next record into buf; waits on the eventfd up to ms. 0 on timeout. */
static int next_rec(struct sp_consumer *c, void *buf, int ms)
{
	struct pollfd pfd = { .fd = sp_consumer_event_fd(c), .events = POLLIN };
	uint64_t end = now_ms() + (uint64_t)ms, v;
	int n;

	for (;;) {
		n = sp_consumer_next(c, buf, SP_REC_MAX);
		cr_assert_geq(n, 0, "malformed record in the ring");
		if (n > 0)
			return n;
		if ((int64_t)(end - now_ms()) <= 0)
			return 0;
		if (sp_consumer_prepare_wait(c) == 1)
			continue;
		if (poll(&pfd, 1, 50) > 0)
			(void)!read(pfd.fd, &v, sizeof(v));
		sp_consumer_wake_ack(c);
	}
}

/* ---- samples of a known child --------------------------------------- */

static volatile uint64_t sink;

__attribute__((noinline)) static void spin_user(uint64_t ms)
{
	uint64_t end = now_ms() + ms, i;

	while (now_ms() < end)
		for (i = 0; i < 100000; i++)
			sink += i * i;
}

static void syscall_heavy(uint64_t ms)
{
	uint64_t end = now_ms() + ms;
	int fd = open("/dev/null", O_WRONLY);
	char b[256] = { 0 };

	while (now_ms() < end) {
		(void)getppid();
		(void)!write(fd, b, sizeof(b));
	}
}

/* This binary's executable mapping (a forked child shares it). */
static void own_text(uint64_t *lo, uint64_t *hi)
{
	char exe[4096], line[4608], path[4096];
	unsigned long long a, b;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f = fopen("/proc/self/maps", "r");

	cr_assert(n > 0 && f);
	exe[n] = '\0';
	*lo = *hi = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx r-xp %*s %*s %*s %4095s", &a, &b,
			   path) == 3 && strcmp(path, exe) == 0) {
			*lo = a;
			*hi = b;
		}
	}
	fclose(f);
	cr_assert_neq(*hi, 0, "no r-xp mapping of %s", exe);
}

struct sample_tally {
	unsigned int samples, user_in_text, kernel_ok, exec, exit;
};

static void tally(const void *buf, pid_t child, uint64_t lo, uint64_t hi,
		  struct sample_tally *t)
{
	const struct sp_rec_hdr *h = buf;
	const struct sp_sample *s = (const void *)(h + 1);
	const struct sp_proc_event *ev = (const void *)(h + 1);
	unsigned int kn, un, i;

	if (h->type == SP_REC_PROC_EXEC && ev->pid == (uint32_t)child)
		t->exec++;
	if (h->type == SP_REC_PROC_EXIT && ev->pid == (uint32_t)child)
		t->exit++;
	if (h->type != SP_REC_SAMPLE || s->pid != (uint32_t)child)
		return;
	cr_assert_eq(s->tid, (uint32_t)child);
	t->samples++;
	kn = s->kstack_bytes > 0 ? (unsigned int)s->kstack_bytes / 8 : 0;
	un = s->ustack_bytes > 0 ? (unsigned int)s->ustack_bytes / 8 : 0;
	cr_assert_eq(h->len, sizeof(*h) + sizeof(*s) + 8 * (kn + un));
	if (kn && s->ips[0] >= 0xffff800000000000ull)
		t->kernel_ok++;
	for (i = kn; i < kn + un; i++) {
		if (s->ips[i] >= lo && s->ips[i] < hi) {
			t->user_in_text++;
			break;
		}
	}
}

Test(probe, samples_stacks_and_process_events, .timeout = 40)
{
	static unsigned char buf[SP_REC_MAX];
	struct sample_tally t = { 0 };
	struct sp_ring_stats rs;
	struct probe_proc pp;
	struct sp_msg_hello h;
	struct sp_consumer *c;
	struct rusage ru;
	uint64_t lo, hi, end;
	double cpu_s, rate;
	pid_t child;
	int st;

	skip_unless_bpf();
	own_text(&lo, &hi);
	probe_spawn(&pp, NULL, "97");
	c = hello_open(pp.sock, &h);
	cr_assert_eq(h.sample_rate, 97);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		spin_user(3000);
		syscall_heavy(1000);
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	end = now_ms() + 10000;
	while (t.exit == 0 && now_ms() < end)
		if (next_rec(c, buf, 200) > 0)
			tally(buf, child, lo, hi, &t);
	cr_assert_eq(wait4(child, &st, 0, &ru), child);
	cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	rate = t.samples / cpu_s;
	sp_consumer_producer_stats(c, &rs);
	cr_log_info("child: %u samples over %.2f s of CPU = %.1f Hz, %u with "
		    "own text in the user stack, %u kernel stacks; ring: %llu "
		    "records %llu dropped %llu bpf_lost %llu idle", t.samples,
		    cpu_s, rate, t.user_in_text, t.kernel_ok,
		    (unsigned long long)rs.records,
		    (unsigned long long)rs.dropped_records,
		    (unsigned long long)rs.bpf_lost,
		    (unsigned long long)rs.idle_samples);
	cr_expect(rate > 97 * 0.8 && rate < 97 * 1.2,
		  "sample rate %.1f Hz not within 20%% of 97", rate);
	cr_expect_geq(t.user_in_text, t.samples / 2,
		      "user stacks miss the child's text");
	cr_expect_geq(t.kernel_ok, 10, "no kernel stacks in the syscall loop");
	cr_expect_eq(t.exec, 1, "PROC_EXEC for the child");
	cr_expect_eq(t.exit, 1, "PROC_EXIT for the child");
	sp_consumer_free(c);
	probe_kill(&pp);
}

/* ---- privileges after set-up ---------------------------------------- */

static void status_field(pid_t pid, const char *key, char *out, size_t cap)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			sscanf(line + kl + 1, "%63s", out);
			break;
		}
	}
	fclose(f);
	(void)cap;
}

Test(probe, steady_state_privileges, .timeout = 20)
{
	static const char *const want[][2] = {
		{ "CapEff", "0000010000080000" },
		{ "CapPrm", "0000010000080000" },
		{ "CapBnd", "0000010000080000" },
		{ "CapAmb", "0000000000000000" },
		{ "CapInh", "0000000000000000" },
		{ "NoNewPrivs", "1" },
		{ "Seccomp", "2" },
	};
	struct probe_proc pp;
	struct sp_msg_hello h;
	struct sp_consumer *c;
	char v[64];
	size_t i;

	skip_unless_bpf();
	probe_spawn(&pp, NULL, "97");
	c = hello_open(pp.sock, &h);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		status_field(pp.pid, want[i][0], v, sizeof(v));
		cr_expect_str_eq(v, want[i][1], "%s", want[i][0]);
	}
	sp_consumer_free(c);
	probe_kill(&pp);
}

/* ---- aggregator goes away and comes back ---------------------------- */

static long vm_rss_kb(pid_t pid)
{
	char v[64];

	status_field(pid, "VmRSS", v, sizeof(v));
	return atol(v);
}

static unsigned int count_samples(struct sp_consumer *c, int ms)
{
	static unsigned char buf[SP_REC_MAX];
	uint64_t end = now_ms() + (uint64_t)ms;
	unsigned int n = 0;

	/* Busy on purpose: our own CPU time guarantees samples. */
	while (now_ms() < end)
		if (sp_consumer_next(c, buf, sizeof(buf)) > 0 &&
		    ((struct sp_rec_hdr *)buf)->type == SP_REC_SAMPLE)
			n++;
	return n;
}

Test(probe, survives_aggregator_disconnect, .timeout = 30)
{
	char path[108];
	struct probe_proc pp;
	struct sp_msg_hello h;
	struct sp_consumer *c;
	long rss0, rss1;
	int fd;

	skip_unless_bpf();
	snprintf(path, sizeof(path), "/tmp/splitprof-test-%d.sock", getpid());
	probe_spawn(&pp, path, "97");
	cr_assert(wait_log(&pp, "listening on", 10000), "%s", pp.logbuf);
	fd = connect_path(path);
	cr_assert_geq(fd, 0);
	c = hello_open(fd, &h);
	cr_assert_gt(count_samples(c, 1000), 0);
	rss0 = vm_rss_kb(pp.pid);
	sp_consumer_free(c);
	close(fd);
	cr_assert(wait_log(&pp, "aggregator disconnected", 5000));
	(void)wait_log(&pp, "\x01never", 2000);	/* sample unconnected 2 s */
	cr_assert_eq(waitpid(pp.pid, NULL, WNOHANG), 0, "probe exited");
	rss1 = vm_rss_kb(pp.pid);
	cr_expect_leq(rss1, rss0 + 1024, "VmRSS grew from %ld to %ld kB",
		      rss0, rss1);
	fd = connect_path(path);
	cr_assert_geq(fd, 0);
	c = hello_open(fd, &h);
	cr_expect_gt(count_samples(c, 1000), 0, "no samples after reconnect");
	sp_consumer_free(c);
	close(fd);
	probe_kill(&pp);
	unlink(path);
}

/* ---- P8: only the configured uid may connect ------------------------ */

Test(probe, refuses_wrong_uid, .timeout = 30)
{
	struct probe_proc pp;
	char path[108], b[64];
	pid_t child;
	int st, fd;

	skip_unless_bpf();
	snprintf(path, sizeof(path), "/tmp/splitprof-test-uid-%d.sock",
		 getpid());
	probe_spawn(&pp, path, "97");
	cr_assert(wait_log(&pp, "listening on", 10000), "%s", pp.logbuf);
	/* Let the file mode through: SO_PEERCRED must be what refuses. */
	cr_assert_eq(chmod(path, 0666), 0);
	child = fork();
	if (child == 0) {
		struct timeval tv = { .tv_sec = 15 };
		ssize_t n;

		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		fd = connect_path(path);
		if (fd < 0)
			_exit(3);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = recv(fd, b, sizeof(b), 0);
		_exit(n == 0 || (n < 0 && errno == ECONNRESET) ? 0 : 4);
	}
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "wrong-uid peer got something other than EOF (%#x)", st);
	cr_expect(wait_log(&pp, "uid 65534", 5000), "log: %s", pp.logbuf);
	probe_kill(&pp);
	unlink(path);
}

/* ---- P14: fail closed ----------------------------------------------- */

/* BPF program ids the process holds (prog and link fds show prog_id). */
static int prog_ids(pid_t pid, unsigned int *ids, int max)
{
	char path[64], line[128];
	unsigned int id;
	int fdn, n = 0;
	FILE *f;

	for (fdn = 0; fdn < 256 && n < max; fdn++) {
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fdn);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "prog_id: %u", &id) == 1 && n < max)
				ids[n++] = id;
		fclose(f);
	}
	return n;
}

static int prog_alive(unsigned int id)
{
	char cmd[128], out[4096];
	size_t len;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "bpftool prog show id %u 2>/dev/null", id);
	p = popen(cmd, "r");
	cr_assert(p);
	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	pclose(p);
	return strstr(out, "do_sample") || strstr(out, "on_exec") ||
	       strstr(out, "on_exit");
}

Test(probe, programs_detach_on_sigkill, .timeout = 20)
{
	unsigned int ids[64];
	struct probe_proc pp;
	struct sp_msg_hello h;
	struct sp_consumer *c;
	int n, i, alive = 0;

	skip_unless_bpf();
	if (system("bpftool version >/dev/null 2>&1") != 0)
		cr_skip_test("bpftool not installed");
	probe_spawn(&pp, NULL, "97");
	c = hello_open(pp.sock, &h);
	n = prog_ids(pp.pid, ids, 64);
	cr_assert_gt(n, 0, "no BPF programs found in the probe's fds");
	for (i = 0; i < n; i++)
		alive += prog_alive(ids[i]);
	cr_assert_gt(alive, 0, "bpftool does not list the probe's programs");
	probe_kill(&pp);
	sp_consumer_free(c);
	/* Program release is deferred (RCU); a SIGKILLed probe's fds are
	 * closed on exit, so give the kernel a moment. */
	for (i = 0, alive = 1; i < 50 && alive; i++) {
		int j;

		for (j = 0, alive = 0; j < n; j++)
			alive += prog_alive(ids[j]);
		if (alive)
			poll(NULL, 0, 100);
	}
	cr_expect_eq(alive, 0, "BPF programs still loaded after SIGKILL");
}

/* ---- the launcher's way: the configuration from the aggregator ---------- */

/* The aggregator's first message sets the rate and the stack switches. */
Test(probe, config_from_peer_sets_rate_and_switches, .timeout = 30)
{
	struct sp_msg_probe_config pc = { .sample_rate = 199,
					  .flags = SP_CONFIG_F_NO_USER };
	struct probe_proc pp;
	struct sp_msg_hello h;
	struct sp_consumer *c;

	skip_unless_bpf();
	probe_spawn(&pp, NULL, NULL);
	cr_assert_eq(sp_ctl_send(pp.sock, SP_MSG_PROBE_CONFIG, &pc, sizeof(pc),
				 NULL, 0), 0);
	c = hello_open(pp.sock, &h);
	cr_expect_eq(h.sample_rate, 199);
	cr_expect(h.flags & SP_HELLO_F_NO_USER, "user stacks still on");
	cr_expect(!(h.flags & SP_HELLO_F_NO_KERNEL), "kernel stacks off");
	sp_consumer_free(c);
	probe_kill(&pp);
}

struct bad_config {
	char name[32];
	uint32_t type, rate, flags;
	bool hang_up;		/* send nothing, close */
};

ParameterizedTestParameters(probe, config_from_peer_refuses)
{
	static struct bad_config cases[] = {
		{ "rate 0", SP_MSG_PROBE_CONFIG, 0, 0, false },
		{ "rate 10001", SP_MSG_PROBE_CONFIG, 10001, 0, false },
		{ "unknown flag", SP_MSG_PROBE_CONFIG, 97, 0x8, false },
		{ "no cmdline flag", SP_MSG_PROBE_CONFIG, 97, 0x4, false },
		{ "a request first", SP_MSG_OPEN_PROC, 0, 0, false },
		{ "hang-up (bad YAML)", 0, 0, 0, true },
	};

	return cr_make_param_array(struct bad_config, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

/* Anything but a valid PROBE_CONFIG first: the probe exits, loads nothing,
 * sends no HELLO. */
ParameterizedTest(struct bad_config *bc, probe, config_from_peer_refuses,
		  .timeout = 30)
{
	struct sp_msg_probe_config pc = { .sample_rate = bc->rate,
					  .flags = bc->flags };
	struct sp_msg_open_proc op = { .pid = 1 };
	struct probe_proc pp;
	struct sp_ctl_msg m;
	int st = 0, i;

	skip_unless_bpf();
	probe_spawn(&pp, NULL, NULL);
	if (bc->hang_up)
		shutdown(pp.sock, SHUT_WR);
	else if (bc->type == SP_MSG_PROBE_CONFIG)
		cr_assert_eq(sp_ctl_send(pp.sock, bc->type, &pc, sizeof(pc),
					 NULL, 0), 0);
	else
		cr_assert_eq(sp_ctl_send(pp.sock, bc->type, &op, sizeof(op),
					 NULL, 0), 0);
	for (i = 0; i < 100 && waitpid(pp.pid, &st, WNOHANG) == 0; i++)
		poll(NULL, 0, 50);
	cr_assert_lt(i, 100, "%s: the probe is still running", bc->name);
	pp.pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) != 0, "%s: wait status %#x",
		  bc->name, (unsigned int)st);
	cr_expect(wait_log(&pp, "no valid configuration", 1000),
		  "%s: log:\n%s", bc->name, pp.logbuf);
	(void)wait_log(&pp, "(read the rest, to EOF)", 1000);
	cr_expect_null(strstr(pp.logbuf, "loaded BPF"), "%s: BPF loaded",
		       bc->name);
	fcntl(pp.sock, F_SETFL, O_NONBLOCK);
	cr_expect_neq(sp_ctl_recv(pp.sock, &m), 0, "%s: got a message",
		      bc->name);
	close(pp.sock);
}
