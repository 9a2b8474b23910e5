// SPDX-License-Identifier: BSD-2-Clause
/*
 * main.c - splitprof-probe: the privileged half. Loads the sampler, moves
 * its records into a sealed shared ring for one aggregator at a time, and
 * brokers file opens for it. Set-up order: check -> listen -> reduce caps
 * -> kallsyms -> BPF -> drop caps -> seccomp -> loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
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

#include "sp_abi.h"
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

enum { EV_BPF = 1, EV_LISTEN, EV_CONN, EV_SIGNAL, EV_TIMER };

#define MAX_DEBUG_DIRS	4

struct probe_opts {
	const char *socket_path;
	int socket_fd;
	long long agg_uid;		/* -1: not given */
	unsigned int sample_rate;
	bool user_stacks, kernel_stacks, verbose;
	uint64_t ring_size;		/* 0: derive from the rate */
	uint64_t duration_ns;		/* 0: forever */
	/* host debug dirs for OPEN_DEBUG, --debug-dir first, then the default */
	const char *debug_dirs[MAX_DEBUG_DIRS + 2];
	unsigned int n_debug_dirs;
};

struct probe {
	struct probe_opts o;
	int epfd, sigfd, timerfd, listen_fd, conn_fd, kallsyms_fd;
	struct probe_bpf *bpf;
	struct broker *broker;
	struct sp_producer *prod;	/* exists while an aggregator does */
	uint64_t ring_size;
	uint64_t last_lost, last_idle;
	uint64_t forwarded, dropped_unconnected, bad_records;
	bool stop;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: splitprof-probe [options]\n"
"  --socket PATH          listen on PATH (default " DEFAULT_SOCKET ", mode\n"
"                         0660; its directory is created 0750 if missing)\n"
"  --socket-fd N          serve one already connected socket (launcher);\n"
"                         the probe exits when that aggregator goes away\n"
"  --aggregator-uid UID   the only uid allowed to connect (SO_PEERCRED);\n"
"                         default: the \"splitprof\" user\n"
"  --sample-rate HZ       samples per second per CPU (default 97)\n"
"  --no-user-stacks       do not collect user stacks\n"
"  --no-kernel-stacks     do not collect kernel stacks\n"
"  --ring-size BYTES      shared ring data size, rounded up to a power of\n"
"                         two in [1 MiB, 256 MiB] (default: rate x CPUs x\n"
"                         1 KiB x 4 s)\n"
"  --debug-dir DIR        also look for .build-id/xx/rest.debug files\n"
"                         under DIR (up to 4; /usr/lib/debug always)\n"
"  --duration DUR         stop after DUR, Go-style (500ms, 20s, 1m30s; the\n"
"                         default 0 runs until SIGINT/SIGTERM)\n"
"  -v, --verbose          debug logging, including libbpf's\n"
"  -h, --help             this text\n");
}

/* A number, whole string, within [min, max]; fatal otherwise. */
static unsigned long long parse_num(const char *opt, const char *s,
				    unsigned long long min,
				    unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		fatalx("bad %s %s (%llu..%llu)", opt, s, min, max);
	return v;
}

static void parse_opts(int argc, char **argv, struct probe_opts *o)
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
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct probe_opts){ .socket_path = DEFAULT_SOCKET,
		.socket_fd = -1, .agg_uid = -1, .sample_rate = 97,
		.user_stacks = true, .kernel_stacks = true };
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 'S': o->socket_path = optarg; break;
		case 'F':
			o->socket_fd = (int)parse_num("--socket-fd", optarg, 0,
						      65535);
			break;
		case 'U':
			o->agg_uid = (long long)parse_num("--aggregator-uid",
							  optarg, 0, UINT32_MAX - 1);
			break;
		case 'r':
			o->sample_rate = (unsigned int)parse_num("--sample-rate",
								 optarg, 1, 10000);
			break;
		case 'u': o->user_stacks = false; break;
		case 'k': o->kernel_stacks = false; break;
		case 'R':
			o->ring_size = parse_num("--ring-size", optarg, 1,
						 RING_MAX);
			break;
		case 'd':
			if (sp_parse_duration(optarg, &o->duration_ns))
				fatalx("bad --duration %s", optarg);
			break;
		case 'D':
			if (o->n_debug_dirs == MAX_DEBUG_DIRS)
				fatalx("at most %d --debug-dir", MAX_DEBUG_DIRS);
			o->debug_dirs[o->n_debug_dirs++] = optarg;
			break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		fatalx("unexpected argument %s", argv[optind]);
	o->debug_dirs[o->n_debug_dirs] = "/usr/lib/debug";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t boot_time_ns(void)
{
	struct timespec rt;

	(void)clock_gettime(CLOCK_REALTIME, &rt);
	return (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec -
	       mono_ns();
}

static void ep_add(struct probe *p, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		fatal("epoll_ctl");
}

/* ---- the listening socket ------------------------------------------- */

/* The directory and socket belong to the aggregator's group so that uid
 * can reach them; done before the capability reduction (needs CAP_CHOWN
 * as root, which the probe never keeps). */
static void prepare_socket_dir(const char *path, gid_t gid)
{
	char *copy = strdup(path);
	const char *dir;

	if (!copy)
		fatal("strdup");
	dir = dirname(copy);
	if (mkdir(dir, 0750) == 0) {
		log_info("created %s (0750)", dir);
		if (chown(dir, (uid_t)-1, gid) < 0)
			log_warn("chown %s", dir);
	} else if (errno != EEXIST) {
		fatal("mkdir %s", dir);
	}
	free(copy);
}

static int listen_path(const char *path, uid_t agg_uid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct passwd *pw = getpwuid(agg_uid);
	gid_t gid = pw ? pw->pw_gid : (gid_t)-1;
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		fatalx("socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	prepare_socket_dir(path, gid);
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
	if (chown(path, (uid_t)-1, gid) < 0 && gid != (gid_t)-1)
		log_warn("chown %s", path);
	if (listen(fd, 8) < 0)
		fatal("listen %s", path);
	log_info("listening on %s (mode 0660), aggregator uid %u", path,
		 (unsigned int)agg_uid);
	return fd;
}

/* ---- the aggregator connection -------------------------------------- */

static void conn_close(struct probe *p, const char *why)
{
	struct sp_ring_stats st;

	if (p->conn_fd < 0)
		return;
	close(p->conn_fd);
	p->conn_fd = -1;
	if (p->prod) {
		sp_producer_stats(p->prod, &st);
		log_info("aggregator disconnected (%s): %llu records, %llu "
			 "dropped, %llu lost in BPF", why,
			 (unsigned long long)st.records,
			 (unsigned long long)st.dropped_records,
			 (unsigned long long)st.bpf_lost);
	}
	sp_producer_free(p->prod);
	p->prod = NULL;
	/* With an inherited socket nobody else can ever connect. */
	if (p->listen_fd < 0)
		p->stop = true;
}

static int send_hello(struct probe *p, int fd)
{
	const struct sp_ring_fds *rf = sp_producer_fds(p->prod);
	int fds[4] = { rf->data_fd, rf->cons_fd, rf->event_fd, p->kallsyms_fd };
	struct sp_msg_hello h = {
		.abi_version = SP_ABI_VERSION,
		.ctl_version = SP_CTL_VERSION,
		.ncpu = probe_bpf_ncpu(p->bpf),
		.sample_rate = p->o.sample_rate,
		.ring_data_size = p->ring_size,
		.ring_hdr_size = SP_RING_HDR_SIZE,
		.boot_time_ns = boot_time_ns(),
	};

	if (p->kallsyms_fd >= 0) {
		h.flags |= SP_HELLO_F_KALLSYMS;
		/* One open file shared by every aggregator: rewind it. */
		(void)lseek(p->kallsyms_fd, 0, SEEK_SET);
	}
	if (!p->o.user_stacks)
		h.flags |= SP_HELLO_F_NO_USER;
	if (!p->o.kernel_stacks)
		h.flags |= SP_HELLO_F_NO_KERNEL;
	return sp_ctl_send(fd, SP_MSG_HELLO, &h, sizeof(h), fds,
			   p->kallsyms_fd >= 0 ? 4 : 3);
}

/* A fresh ring for every aggregator: a sealed memfd can't be mapped
 * writable again, and a new consumer must not inherit old state. */
static void conn_start(struct probe *p, int fd)
{
	int err;

	p->conn_fd = fd;
	err = sp_producer_create(p->ring_size, &p->prod);
	if (!err)
		err = send_hello(p, fd);
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
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		log_warn("SO_PEERCRED");
		close(fd);
	} else if (cr.uid != (uid_t)p->o.agg_uid) {
		log_warnx("refused connection from pid %d uid %u: only uid %lld "
			  "may connect", (int)cr.pid, (unsigned int)cr.uid,
			  p->o.agg_uid);
		close(fd);
	} else if (p->conn_fd >= 0) {
		log_warnx("refused connection from pid %d uid %u: an aggregator "
			  "is already connected", (int)cr.pid,
			  (unsigned int)cr.uid);
		close(fd);
	} else {
		log_info("accepted aggregator pid %d uid %u", (int)cr.pid,
			 (unsigned int)cr.uid);
		conn_start(p, fd);
	}
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

/* ---- records --------------------------------------------------------- */

static void on_record(void *ctx, const void *data, size_t size)
{
	const struct sp_rec_hdr *h = data;
	struct probe *p = ctx;

	if (size < sizeof(*h) || h->len != size ||
	    (h->type != SP_REC_SAMPLE && h->type != SP_REC_PROC_EXEC &&
	     h->type != SP_REC_PROC_EXIT)) {
		p->bad_records++;
		return;
	}
	if (!p->prod) {
		p->dropped_unconnected++;
		return;
	}
	if (sp_producer_write(p->prod, h->type, h->flags, h + 1,
			      (uint32_t)(size - sizeof(*h))) == 0)
		p->forwarded++;
}

static void on_bpf(struct probe *p)
{
	uint64_t lost, idle;
	struct sp_lost rec;

	(void)probe_bpf_drain(p->bpf);
	probe_bpf_counters(p->bpf, &lost, &idle);
	rec.lost = lost - p->last_lost;
	p->last_lost = lost;
	idle -= p->last_idle;
	p->last_idle += idle;
	if (!p->prod)
		return;
	if (rec.lost) {
		rec.time_ns = mono_ns();
		(void)sp_producer_write(p->prod, SP_REC_LOST, 0, &rec,
					sizeof(rec));
		sp_producer_add_bpf_lost(p->prod, rec.lost);
	}
	if (idle)
		sp_producer_add_idle(p->prod, idle);
	(void)sp_producer_notify(p->prod);
}

/* ---- signals, timers, shutdown -------------------------------------- */

static void reap_children(void)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		log_info("aggregator pid %d exited (status %#x)", (int)pid, st);
}

static void on_signal(struct probe *p)
{
	struct signalfd_siginfo si;

	while (read(p->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap_children();
		} else if (!p->stop) {
			log_info("signal %u, stopping", si.ssi_signo);
			p->stop = true;
		}
	}
}

static void arm_timer(int fd, uint64_t ns)
{
	struct itimerspec it = { .it_value = {
		.tv_sec = (time_t)(ns / 1000000000),
		.tv_nsec = (long)(ns % 1000000000) } };

	if (timerfd_settime(fd, 0, &it, NULL) < 0)
		fatal("timerfd_settime");
}

/* Wait up to CHILD_WAIT_SEC for the launcher's aggregator to flush and
 * exit: SIGCHLD via the signalfd, the deadline via the timerfd. */
static void wait_children(struct probe *p)
{
	struct epoll_event ev;
	uint64_t n;
	int nev;

	arm_timer(p->timerfd, CHILD_WAIT_SEC * 1000000000ull);
	for (;;) {
		reap_children();
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			return;
		nev = epoll_wait(p->epfd, &ev, 1, -1);
		if (nev < 0 && errno != EINTR)
			fatal("epoll_wait");
		if (nev <= 0)
			continue;
		if (ev.data.u32 == EV_TIMER &&
		    read(p->timerfd, &n, sizeof(n)) == sizeof(n)) {
			log_warnx("aggregator still running after %d s",
				  CHILD_WAIT_SEC);
			return;
		}
		if (ev.data.u32 == EV_SIGNAL)
			on_signal(p);
	}
}

static void run(struct probe *p)
{
	struct epoll_event evs[8];
	uint64_t n;
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
			case EV_TIMER:
				if (read(p->timerfd, &n, sizeof(n)) > 0)
					log_info("duration elapsed, stopping");
				p->stop = true;
				break;
			}
		}
	}
}

/* ---- set-up ----------------------------------------------------------- */

static void setup_events(struct probe *p)
{
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
	if (p->epfd < 0 || p->sigfd < 0 || p->timerfd < 0)
		fatal("epoll/signalfd/timerfd");
	ep_add(p, p->sigfd, EV_SIGNAL);
	ep_add(p, p->timerfd, EV_TIMER);
	if (p->o.duration_ns)
		arm_timer(p->timerfd, p->o.duration_ns);
}

static void resolve_aggregator_uid(struct probe_opts *o)
{
	struct passwd *pw;

	if (o->socket_fd >= 0 || o->agg_uid >= 0)
		return;
	pw = getpwnam("splitprof");
	if (!pw)
		fatalx("no --aggregator-uid given and no \"splitprof\" user: "
		       "refusing to listen on %s", o->socket_path);
	o->agg_uid = pw->pw_uid;
}

static void setup_bpf(struct probe *p)
{
	struct probe_bpf_opts bo = {
		.sample_rate = p->o.sample_rate,
		.user_stacks = p->o.user_stacks,
		.kernel_stacks = p->o.kernel_stacks,
		.verbose = p->o.verbose,
		.on_record = on_record,
		.ctx = p,
	};
	uint64_t want;
	int err;

	err = probe_bpf_start(&bo, &p->bpf);
	if (err) {
		errno = -err;
		fatal("BPF set-up");
	}
	ep_add(p, probe_bpf_epoll_fd(p->bpf), EV_BPF);
	want = p->o.ring_size ? p->o.ring_size :
		(uint64_t)p->o.sample_rate * probe_bpf_ncpu(p->bpf) * 1024 *
		RING_SECONDS;
	p->ring_size = probe_pow2_clamp(want, RING_MIN, RING_MAX);
}

static void setup_inherited_socket(struct probe *p)
{
	struct stat st;
	int fd = p->o.socket_fd;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		fatalx("--socket-fd %d is not a socket", fd);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		fatal("fcntl socket fd");
}

int main(int argc, char **argv)
{
	struct probe p = { .listen_fd = -1, .conn_fd = -1, .kallsyms_fd = -1 };

	log_init("probe", SP_LOG_INFO);
	parse_opts(argc, argv, &p.o);
	log_init("probe", p.o.verbose ? SP_LOG_DEBUG : SP_LOG_INFO);
	if (caps_check() < 0)
		fatalx("cannot start, see above");
	resolve_aggregator_uid(&p.o);
	if (p.o.socket_fd >= 0)
		setup_inherited_socket(&p);
	else
		p.listen_fd = listen_path(p.o.socket_path, (uid_t)p.o.agg_uid);
	if (caps_reduce_setup() < 0)
		fatalx("cannot reduce capabilities");
	/* kallsyms shows real addresses only to an opener with CAP_SYSLOG;
	 * the check uses the opener's credentials, so the fd stays good. */
	p.kallsyms_fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
	if (p.kallsyms_fd < 0)
		log_warn("open /proc/kallsyms");
	else
		log_info("opened /proc/kallsyms");
	setup_events(&p);
	setup_bpf(&p);
	p.broker = broker_new(&(struct broker_config){
		.debug_dirs = p.o.debug_dirs });
	if (!p.broker)
		fatal("broker_new");
	if (caps_drop_steady() < 0 || sandbox_enter() < 0)
		fatalx("cannot enter the sandbox");
	if (p.listen_fd >= 0)
		ep_add(&p, p.listen_fd, EV_LISTEN);
	else
		conn_start(&p, p.o.socket_fd);
	run(&p);

	conn_close(&p, "probe stopping");
	if (p.listen_fd >= 0)
		close(p.listen_fd);
	probe_bpf_free(p.bpf);
	log_info("stopped: %llu records forwarded, %llu dropped while no "
		 "aggregator was connected, %llu malformed",
		 (unsigned long long)p.forwarded,
		 (unsigned long long)p.dropped_unconnected,
		 (unsigned long long)p.bad_records);
	wait_children(&p);
	broker_free(p.broker);
	return 0;
}
