// SPDX-License-Identifier: BSD-2-Clause
/* main.c - splitprof-probe, the privileged half: samples into a sealed ring
 * for one aggregator at a time and brokers file opens for it. Set-up order:
 * check -> listen -> reduce caps -> kallsyms -> BPF -> drop caps -> seccomp. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "sp_ctl.h"
#include "sp_duration.h"
#include "sp_log.h"
#include "sp_ring.h"
#include "broker.h"
#include "bpfload.h"
#include "caps.h"

#define DEFAULT_SOCKET	"/run/splitprof/probe.sock"
#define RING_MIN	(1ull << 20)
#define RING_MAX	(256ull << 20)
#define RING_SECONDS	4	/* of samples at 1 KiB each the ring absorbs */
#define CHILD_WAIT_SEC	10
#define MSGS_PER_WAKE	64	/* a chatty aggregator can't starve sampling */
#define DRAIN_MS	200	/* BPF wakes us per batch only (profile.bpf.c) */
#define CONFIG_WAIT_MS	30000	/* for the launcher's aggregator to parse */
#define MAX_DEBUG_DIRS	4
#define NSEC		1000000000ull

enum { EV_BPF = 1, EV_LISTEN, EV_CONN, EV_SIGNAL, EV_TIMER, EV_DRAIN };

struct probe {
	const char *socket_path;
	int socket_fd;			/* --socket-fd, or -1 */
	long long agg_uid;		/* -1: not given */
	struct probe_bpf_opts bo;	/* rate, stacks, verbose */
	uint64_t ring_size;		/* 0: derive from the rate */
	uint64_t duration_ns;		/* 0: forever */
	const char *debug_dirs[MAX_DEBUG_DIRS + 2]; /* + /usr/lib/debug, NULL */
	unsigned int n_debug_dirs;
	bool allow_cmdline;		/* --discover-commandline */
	bool config_from_peer;		/* --config-from-peer */
	int epfd, sigfd, timerfd, drainfd, listen_fd, conn_fd, kallsyms_fd;
	struct probe_bpf *bpf;
	struct broker *broker;
	struct sp_producer *prod;	/* exists while an aggregator does */
	uint64_t last_lost, last_idle;
	uint64_t forwarded, dropped_unconnected, bad_records;
	bool stop;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: splitprof-probe [options]\n"
"  --socket PATH         listen on PATH, mode 0660; a missing directory is\n"
"                        created 0750 (default " DEFAULT_SOCKET ")\n"
"  --socket-fd N         serve one connected socket (launcher), exit after it\n"
"  --config-from-peer    with --socket-fd: take rate and switches from the\n"
"                        peer's first message (PROBE_CONFIG), not from flags\n"
"  --aggregator-uid UID  the only peer uid accepted (default: user splitprof)\n"
"  --sample-rate HZ      samples per second per CPU, 1..10000 (default 97)\n"
"  --no-user-stacks, --no-kernel-stacks  do not collect those stacks\n"
"  --ring-size BYTES     2^n in [1, 256] MiB (default: rate x CPUs x 1 KiB x 4 s)\n"
"  --debug-dir DIR       also search DIR/.build-id (max 4; /usr/lib/debug always)\n"
"  --discover-commandline  serve /proc/P/cmdline (default off: may hold secrets)\n"
"  --duration DUR        run for DUR, e.g. 90s (default 0: until SIGINT/SIGTERM)\n"
"  -v, --verbose         debug logging, and libbpf's warnings (the verifier\n"
"                        log when a load fails)\n"
"  -h, --help            this text\n");
}

/* A number, whole string, within [min, max]; fatal otherwise. */
static unsigned long long parse_num(const char *opt, const char *s,
				    unsigned long long min, unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		fatalx("bad --%s %s (%llu..%llu)", opt, s, min, max);
	return v;
}

static void parse_opts(int argc, char **argv, struct probe *p)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "socket-fd", required_argument, NULL, 'F' },
		{ "aggregator-uid", required_argument, NULL, 'U' },
		{ "sample-rate", required_argument, NULL, 'r' },
		{ "no-user-stacks", no_argument, NULL, 'u' },
		{ "no-kernel-stacks", no_argument, NULL, 'k' },
		{ "ring-size", required_argument, NULL, 'R' },
		{ "duration", required_argument, NULL, 'd' },
		{ "debug-dir", required_argument, NULL, 'D' },
		{ "discover-commandline", no_argument, NULL, 'C' },
		{ "config-from-peer", no_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i = 0;

	while ((c = getopt_long(argc, argv, "vh", lo, &i)) != -1) {
		const char *n = lo[i].name;

		switch (c) {
		case 'S': p->socket_path = optarg; break;
		case 'F': p->socket_fd = (int)parse_num(n, optarg, 0, 65535); break;
		case 'U':
			p->agg_uid = (long long)parse_num(n, optarg, 0, UINT32_MAX - 1);
			break;
		case 'r':
			p->bo.sample_rate = (unsigned int)parse_num(n, optarg, 1, 10000);
			break;
		case 'u': p->bo.user_stacks = false; break;
		case 'k': p->bo.kernel_stacks = false; break;
		case 'R': p->ring_size = parse_num(n, optarg, 1, RING_MAX); break;
		case 'd':
			if (sp_parse_duration(optarg, &p->duration_ns))
				fatalx("bad --duration %s", optarg);
			break;
		case 'D':
			if (p->n_debug_dirs == MAX_DEBUG_DIRS)
				fatalx("at most %d --debug-dir", MAX_DEBUG_DIRS);
			p->debug_dirs[p->n_debug_dirs++] = optarg;
			break;
		case 'C': p->allow_cmdline = true; break;
		case 'P': p->config_from_peer = true; break;
		case 'v': p->bo.verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		fatalx("unexpected argument %s", argv[optind]);
	p->debug_dirs[p->n_debug_dirs] = "/usr/lib/debug";
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	(void)clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static void ep_add(struct probe *p, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		fatal("epoll_ctl");
}

/* Dir and socket go to the aggregator's group; before the caps reduction
 * (chown needs CAP_CHOWN). */
static int listen_path(const char *path, uid_t agg_uid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct passwd *pw = getpwuid(agg_uid);
	gid_t gid = pw ? pw->pw_gid : (gid_t)-1;
	char dir[sizeof(sa.sun_path)], *parent;
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		fatalx("socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	parent = dirname(strcpy(dir, path));
	if (mkdir(parent, 0750) == 0) {
		log_info("created %s (0750)", parent);
		if (chown(parent, (uid_t)-1, gid) < 0)
			log_warn("chown %s", parent);
	} else if (errno != EEXIST) {
		fatal("mkdir %s", parent);
	}
	/* A stale socket from a previous run; never unlink anything else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("socket");
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fatal("bind %s", path);
	umask(old);
	if (chown(path, (uid_t)-1, gid) < 0)
		log_warn("chown %s", path);
	if (listen(fd, 8) < 0)
		fatal("listen %s", path);
	log_info("listening on %s (mode 0660), aggregator uid %u", path,
		 (unsigned int)agg_uid);
	return fd;
}

static void conn_close(struct probe *p, const char *why)
{
	struct sp_ring_stats st;

	if (p->conn_fd < 0)
		return;
	close(p->conn_fd);
	p->conn_fd = -1;
	if (p->prod) {
		sp_producer_stats(p->prod, &st);
		log_info("aggregator disconnected (%s): %llu records, %llu dropped, "
			 "%llu lost in BPF", why, (unsigned long long)st.records,
			 (unsigned long long)st.dropped_records,
			 (unsigned long long)st.bpf_lost);
	}
	sp_producer_free(p->prod);
	p->prod = NULL;
	/* With an inherited socket nobody else can ever connect. */
	if (p->listen_fd < 0)
		p->stop = true;
}

/* A fresh ring per aggregator: a sealed memfd can't be mapped writable again. */
static void conn_start(struct probe *p, int fd)
{
	const struct sp_ring_fds *rf;
	struct sp_msg_hello h = {
		.abi_version = SP_ABI_VERSION, .ctl_version = SP_CTL_VERSION,
		.ncpu = probe_bpf_ncpu(p->bpf), .sample_rate = p->bo.sample_rate,
		.ring_data_size = p->ring_size, .ring_hdr_size = SP_RING_HDR_SIZE,
		.boot_time_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC),
		.flags = (p->kallsyms_fd >= 0 ? SP_HELLO_F_KALLSYMS : 0) |
			 (p->bo.user_stacks ? 0 : SP_HELLO_F_NO_USER) |
			 (p->bo.kernel_stacks ? 0 : SP_HELLO_F_NO_KERNEL),
	};
	int err;

	p->conn_fd = fd;
	err = sp_producer_create(p->ring_size, &p->prod);
	if (!err) {
		rf = sp_producer_fds(p->prod);
		/* One open kallsyms file shared by every aggregator: rewind. */
		if (p->kallsyms_fd >= 0)
			(void)lseek(p->kallsyms_fd, 0, SEEK_SET);
		err = sp_ctl_send(fd, SP_MSG_HELLO, &h, sizeof(h), (int[4]){
			rf->data_fd, rf->cons_fd, rf->event_fd, p->kallsyms_fd },
			p->kallsyms_fd >= 0 ? 4 : 3);
	}
	if (err) {
		errno = -err;
		log_warn("starting the aggregator session");
		conn_close(p, "hello failed");
		return;
	}
	broker_reset(p->broker);
	ep_add(p, fd, EV_CONN);
}

static void on_accept(struct probe *p)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)
			log_warn("accept");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		log_warn("SO_PEERCRED");
	else if (cr.uid != (uid_t)p->agg_uid || p->conn_fd >= 0)
		log_warnx("refused connection from pid %d uid %u: %s", (int)cr.pid,
			  (unsigned int)cr.uid, cr.uid != (uid_t)p->agg_uid ?
			  "not the aggregator uid" : "an aggregator is connected");
	else {
		log_info("accepted aggregator pid %d uid %u", (int)cr.pid,
			 (unsigned int)cr.uid);
		conn_start(p, fd);
		return;
	}
	close(fd);
}

static void on_conn(struct probe *p)
{
	struct sp_ctl_msg m;
	int i, err;

	for (i = 0; i < MSGS_PER_WAKE && p->conn_fd >= 0; i++) {
		err = sp_ctl_recv(p->conn_fd, &m);
		if (err == -EAGAIN)
			return;
		if (err == -ECONNRESET) {
			conn_close(p, "closed by the aggregator");
			return;
		}
		if (!err) {
			err = broker_dispatch(p->broker, p->conn_fd, &m);
			sp_ctl_msg_close_fds(&m);
		}
		if (err) {
			log_warnx("closing the aggregator connection: %s",
				  err == -EPROTO || err == -EBADMSG ?
				  "protocol violation" : strerror(-err));
			conn_close(p, "error");
		}
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct sp_rec_hdr *h = data;
	struct probe *p = ctx;

	if (size < sizeof(*h) || h->len != size ||
	    (h->type != SP_REC_SAMPLE && h->type != SP_REC_PROC_EXEC &&
	     h->type != SP_REC_PROC_EXIT))
		p->bad_records++;
	else if (!p->prod)
		p->dropped_unconnected++;
	else if (sp_producer_write(p->prod, h->type, h->flags, h + 1,
				   (uint32_t)(size - sizeof(*h))) == 0)
		p->forwarded++;
	return 0;
}

static void on_bpf(struct probe *p)
{
	uint64_t lost, idle;
	struct sp_lost rec;

	probe_bpf_drain(p->bpf, &lost, &idle);
	rec.lost = lost - p->last_lost;
	p->last_lost = lost;
	idle -= p->last_idle;
	p->last_idle += idle;
	if (!p->prod)
		return;
	if (rec.lost) {
		rec.time_ns = clock_ns(CLOCK_MONOTONIC);
		(void)sp_producer_write(p->prod, SP_REC_LOST, 0, &rec, sizeof(rec));
		sp_producer_add_bpf_lost(p->prod, rec.lost);
	}
	if (idle)
		sp_producer_add_idle(p->prod, idle);
	(void)sp_producer_notify(p->prod);
}

/* The launcher's aggregator (our child) is reaped on shutdown only. */
static void on_signal(struct probe *p)
{
	struct signalfd_siginfo si;

	while (read(p->sigfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGCHLD && !p->stop) {
			log_info("signal %u, stopping", si.ssi_signo);
			p->stop = true;
		}
}

/* Let the launcher's aggregator flush; its failure is ours: returns 1. */
static int wait_children(void)
{
	const struct timespec ts = { .tv_sec = CHILD_WAIT_SEC };
	sigset_t chld;
	pid_t pid;
	int st, failed = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			log_info("aggregator pid %d exited (status %#x)", (int)pid, st);
			failed |= st != 0;
		}
		if (pid < 0)
			return failed;		/* ECHILD: none left */
		if (sigtimedwait(&chld, NULL, &ts) < 0 && errno == EAGAIN) {
			log_warnx("aggregator still running after %d s",
				  CHILD_WAIT_SEC);
			return 1;
		}
	}
}

static void run(struct probe *p)
{
	struct epoll_event evs[8];
	int i, nev;

	while (!p->stop) {
		nev = epoll_wait(p->epfd, evs, 8, -1);
		if (nev < 0 && errno != EINTR)
			fatal("epoll_wait");
		for (i = 0; i < nev; i++) {
			switch (evs[i].data.u32) {
			case EV_BPF: on_bpf(p); break;
			case EV_LISTEN: on_accept(p); break;
			case EV_CONN: on_conn(p); break;
			case EV_SIGNAL: on_signal(p); break;
			case EV_DRAIN:	/* a timer: a request flood can't delay it */
				(void)!read(p->drainfd, &(uint64_t){ 0 }, 8);
				on_bpf(p);
				break;
			case EV_TIMER:
				log_info("duration elapsed, stopping");
				p->stop = true;
				break;
			}
		}
	}
}

static void setup_events(struct probe *p)
{
	struct itimerspec it = { .it_value = { .tv_sec = (time_t)(p->duration_ns / NSEC),
		.tv_nsec = (long)(p->duration_ns % NSEC) } }, drain = {
		.it_interval.tv_nsec = DRAIN_MS * 1000000L,
		.it_value.tv_nsec = DRAIN_MS * 1000000L };
	sigset_t ss;

	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
		fatal("sigprocmask");
	(void)signal(SIGPIPE, SIG_IGN);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->sigfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	p->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	p->drainfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->epfd < 0 || p->sigfd < 0 || p->timerfd < 0 || p->drainfd < 0 ||
	    timerfd_settime(p->timerfd, 0, &it, NULL) < 0 ||
	    timerfd_settime(p->drainfd, 0, &drain, NULL) < 0)
		fatal("epoll/signalfd/timerfd");
	ep_add(p, p->sigfd, EV_SIGNAL);
	ep_add(p, p->timerfd, EV_TIMER);
	ep_add(p, p->drainfd, EV_DRAIN);
}

static void setup_bpf(struct probe *p)
{
	int err;

	p->bo.on_record = on_record;
	p->bo.ctx = p;
	err = probe_bpf_start(&p->bo, &p->bpf);
	if (err) {
		errno = -err;
		fatal("BPF set-up");
	}
	ep_add(p, probe_bpf_epoll_fd(p->bpf), EV_BPF);
	p->ring_size = probe_pow2_clamp(p->ring_size ? p->ring_size :
		(uint64_t)p->bo.sample_rate * probe_bpf_ncpu(p->bpf) * 1024 *
		RING_SECONDS, RING_MIN, RING_MAX);
}

/* The launcher's aggregator parsed the YAML: its first message, checked like
 * any request, sets what our flags would. Anything else stops us. */
static void recv_config(struct probe *p)
{
	struct pollfd pfd = { .fd = p->socket_fd, .events = POLLIN };
	const struct sp_msg_probe_config *c;
	struct sp_ctl_msg m;

	if (poll(&pfd, 1, CONFIG_WAIT_MS) != 1 || sp_ctl_recv(p->socket_fd, &m) ||
	    m.type != SP_MSG_PROBE_CONFIG || m.u.probe_config.sample_rate < 1 ||
	    m.u.probe_config.sample_rate > 10000 ||
	    (m.u.probe_config.flags & ~(uint32_t)SP_CONFIG_F_ALL))
		fatalx("no valid configuration from the aggregator");
	c = &m.u.probe_config;
	p->bo.sample_rate = c->sample_rate;
	p->bo.user_stacks = !(c->flags & SP_CONFIG_F_NO_USER);
	p->bo.kernel_stacks = !(c->flags & SP_CONFIG_F_NO_KERNEL);
	log_info("configuration from the aggregator: %u Hz, flags %#x",
		 c->sample_rate, c->flags);
}

/* The launcher's socketpair end, or a socket only the aggregator uid may use. */
static void setup_socket(struct probe *p)
{
	struct passwd *pw;
	struct stat st;
	int fd = p->socket_fd;

	if (fd >= 0) {
		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
			fatalx("--socket-fd %d is not a socket", fd);
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			fatal("fcntl socket fd");
		if (p->config_from_peer)
			recv_config(p);
		return;
	}
	if (p->agg_uid < 0) {
		pw = getpwnam("splitprof");
		if (!pw)
			fatalx("no --aggregator-uid given and no \"splitprof\" "
			       "user: refusing to listen on %s", p->socket_path);
		p->agg_uid = pw->pw_uid;
	}
	p->listen_fd = listen_path(p->socket_path, (uid_t)p->agg_uid);
}

int main(int argc, char **argv)
{
	struct probe p = { .socket_path = DEFAULT_SOCKET, .socket_fd = -1,
		.agg_uid = -1, .listen_fd = -1, .conn_fd = -1, .bo = {
		.sample_rate = 97, .user_stacks = true, .kernel_stacks = true } };
	int status;

	log_init("probe", SP_LOG_INFO);
	parse_opts(argc, argv, &p);
	log_init("probe", p.bo.verbose ? SP_LOG_DEBUG : SP_LOG_INFO);
	if (caps_check() < 0)
		fatalx("cannot start, see above");
	setup_socket(&p);
	if (caps_reduce_setup() < 0)
		fatalx("cannot reduce capabilities");
	/* Real addresses need CAP_SYSLOG at open time only: the fd stays good. */
	p.kallsyms_fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
	if (p.kallsyms_fd < 0)
		log_warn("open /proc/kallsyms");
	else
		log_info("opened /proc/kallsyms");
	setup_events(&p);
	setup_bpf(&p);
	p.broker = broker_new(&(struct broker_config){
		.debug_dirs = p.debug_dirs, .allow_cmdline = p.allow_cmdline });
	if (!p.broker)
		fatal("broker_new");
	if (caps_drop_steady() < 0 || sandbox_enter() < 0)
		fatalx("cannot enter the sandbox");
	if (p.listen_fd >= 0)
		ep_add(&p, p.listen_fd, EV_LISTEN);
	else
		conn_start(&p, p.socket_fd);
	run(&p);

	on_bpf(&p);	/* the last batch still in the BPF ring */
	conn_close(&p, "probe stopping");
	if (p.listen_fd >= 0)
		close(p.listen_fd);
	probe_bpf_free(p.bpf);
	log_info("stopped: %llu records forwarded, %llu dropped while no aggregator "
		 "was connected, %llu malformed", (unsigned long long)p.forwarded,
		 (unsigned long long)p.dropped_unconnected,
		 (unsigned long long)p.bad_records);
	status = wait_children();
	broker_free(p.broker);
	return status;
}
