/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * splitprof-aggregator: the unprivileged half. Reads samples from the
 * sealed ring the probe hands over, symbolizes them with files the probe
 * opens for it, builds one pprof per target per collect interval and hands
 * them to the sinks.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "probe_client.h"
#include "proctable.h"
#include "profiles.h"
#include "records.h"
#include "sink_local.h"
#include "sp_abi.h"
#include "sp_duration.h"
#include "sp_log.h"
#include "sp_ring.h"
#include "symbolize.h"

#define SPLITPROF_VERSION	"0.1.0"
#define DRAIN_BATCH		65536	/* records per wake before yielding */
#define PROBE_TIMEOUT_MS	2000

struct opts {
	int control_fd;
	const char *socket_path;
	const char *output_dir;
	int output_dir_fd;
	uint64_t collect_interval_ns;
	int event_loop;
	uint32_t pid_cache_size;
	uint32_t build_id_cache_size;
	uint32_t same_file_cache_size;
	uint64_t retention_max_files;
	uint64_t retention_max_bytes;
	int verbose;
};

struct agg {
	struct opts o;
	struct loop *loop;
	struct probe_client *pc;
	struct sp_consumer *cons;
	struct proctable *procs;
	struct symbolizer *sym;
	struct profiles *profiles;
	struct sink_local *sink;
	uint64_t period_ns;
	uint32_t sample_rate;
	int64_t boot_time_ns;	/* realtime = boot_time_ns + monotonic */
	int64_t start_real_ns;
	int kick_timer;
	int done;
	/* counters for the summary */
	uint64_t samples, lost_records, execs, exits, bad_records;
	uint64_t kstack_errors, ustack_errors;
	unsigned char rec[SP_REC_MAX];
};

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: splitprof-aggregator [options]\n"
"Builds pprof profiles from the samples of a running splitprof-probe.\n"
"Usually started by the launcher `splitprof`; with systemd or Kubernetes it\n"
"connects to the probe's socket.\n\n"
"  --socket PATH              probe control socket (default /run/splitprof/probe.sock)\n"
"  --control-fd N             use an inherited, connected control socket instead\n"
"  --output-dir DIR           where profiles are written (default ./profiles)\n"
"  --output-dir-fd N          an already-open output directory (from the launcher)\n"
"  --collect-interval DUR     one profile per target per interval (default 15s)\n"
"  --event-loop KIND          auto, io_uring or epoll (default auto)\n"
"  --pid-cache-size N         processes kept (default 32)\n"
"  --build-id-cache-size N    symbol tables kept by build id (default 64)\n"
"  --same-file-cache-size N   symbol tables kept by dev/inode (default 8)\n"
"  --retention-max-files N    keep at most N profile files (default 10000)\n"
"  --retention-max-bytes N    keep at most N bytes of profiles (default 1073741824)\n"
"  -v, --verbose              more logging (repeat for debug)\n"
"  -h, --help                 this text\n"
"  --version                  print the version\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static uint32_t parse_u32_opt(const char *name, const char *s, uint64_t max)
{
	uint64_t v;

	if (parse_u64(s, &v) < 0 || v == 0 || v > max)
		fatalx("--%s: '%s' is not a number between 1 and %llu", name, s,
		       (unsigned long long)max);
	return (uint32_t)v;
}

static int parse_fd_opt(const char *name, const char *s)
{
	uint64_t v;

	if (parse_u64(s, &v) < 0 || v > INT_MAX)
		fatalx("--%s: '%s' is not a file descriptor number", name, s);
	return (int)v;
}

enum {
	OPT_SOCKET = 256, OPT_CONTROL_FD, OPT_OUTPUT_DIR, OPT_OUTPUT_DIR_FD,
	OPT_INTERVAL, OPT_EVENT_LOOP, OPT_PID_CACHE, OPT_BUILD_ID_CACHE,
	OPT_SAME_FILE_CACHE, OPT_RET_FILES, OPT_RET_BYTES, OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "control-fd", required_argument, NULL, OPT_CONTROL_FD },
	{ "output-dir", required_argument, NULL, OPT_OUTPUT_DIR },
	{ "output-dir-fd", required_argument, NULL, OPT_OUTPUT_DIR_FD },
	{ "collect-interval", required_argument, NULL, OPT_INTERVAL },
	{ "event-loop", required_argument, NULL, OPT_EVENT_LOOP },
	{ "pid-cache-size", required_argument, NULL, OPT_PID_CACHE },
	{ "build-id-cache-size", required_argument, NULL, OPT_BUILD_ID_CACHE },
	{ "same-file-cache-size", required_argument, NULL, OPT_SAME_FILE_CACHE },
	{ "retention-max-files", required_argument, NULL, OPT_RET_FILES },
	{ "retention-max-bytes", required_argument, NULL, OPT_RET_BYTES },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void parse_one(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_SOCKET: o->socket_path = arg; break;
	case OPT_CONTROL_FD: o->control_fd = parse_fd_opt("control-fd", arg); break;
	case OPT_OUTPUT_DIR: o->output_dir = arg; break;
	case OPT_OUTPUT_DIR_FD:
		o->output_dir_fd = parse_fd_opt("output-dir-fd", arg);
		break;
	case OPT_INTERVAL:
		if (sp_parse_duration(arg, &o->collect_interval_ns) < 0 ||
		    o->collect_interval_ns < 1000000000ull)
			fatalx("--collect-interval: '%s' is not a duration of "
			       "at least 1s (e.g. 15s, 1m)", arg);
		break;
	case OPT_EVENT_LOOP:
		o->event_loop = loop_backend_parse(arg);
		if (o->event_loop < 0)
			fatalx("--event-loop: '%s' is not auto, io_uring or epoll",
			       arg);
		break;
	case OPT_PID_CACHE:
		o->pid_cache_size = parse_u32_opt("pid-cache-size", arg, 1u << 20);
		break;
	case OPT_BUILD_ID_CACHE:
		o->build_id_cache_size =
			parse_u32_opt("build-id-cache-size", arg, 1u << 16);
		break;
	case OPT_SAME_FILE_CACHE:
		o->same_file_cache_size =
			parse_u32_opt("same-file-cache-size", arg, 1u << 16);
		break;
	case OPT_RET_FILES:
		if (parse_u64(arg, &o->retention_max_files) < 0)
			fatalx("--retention-max-files: '%s' is not a number", arg);
		break;
	case OPT_RET_BYTES:
		if (parse_u64(arg, &o->retention_max_bytes) < 0)
			fatalx("--retention-max-bytes: '%s' is not a number", arg);
		break;
	case 'v': o->verbose++; break;
	case 'h': usage(stdout); exit(0);
	case OPT_VERSION: printf("splitprof %s\n", SPLITPROF_VERSION); exit(0);
	default: usage(stderr); exit(2);
	}
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	int c;

	*o = (struct opts){
		.control_fd = -1,
		.socket_path = "/run/splitprof/probe.sock",
		.output_dir = "./profiles",
		.output_dir_fd = -1,
		.collect_interval_ns = 15000000000ull,
		.event_loop = LOOP_AUTO,
		.pid_cache_size = 32,
		.build_id_cache_size = 64,
		.same_file_cache_size = 8,
		.retention_max_files = SINK_LOCAL_DEFAULT_MAX_FILES,
		.retention_max_bytes = SINK_LOCAL_DEFAULT_MAX_BYTES,
	};
	while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1)
		parse_one(o, c, optarg);
	if (optind < argc)
		fatalx("unexpected argument '%s' (see --help)", argv[optind]);
}

static int connect_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	if (strlen(path) >= sizeof(sa.sun_path))
		fatalx("--socket: path too long: %s", path);
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		fatal("socket");
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fatal("cannot connect to the probe at %s (is splitprof-probe "
		      "running, and may this user connect?)", path);
	return s;
}

/* The output folder, opened once: afterwards we write only relative to it. */
static int open_output_dir(const struct opts *o)
{
	int fd;

	if (o->output_dir_fd >= 0)
		return o->output_dir_fd;
	if (mkdir(o->output_dir, 0750) < 0 && errno != EEXIST)
		fatal("cannot create output directory %s", o->output_dir);
	fd = open(o->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fatal("cannot open output directory %s", o->output_dir);
	return fd;
}

static int open_proc_cb(void *ctx, uint32_t pid, uint64_t st, int *m, int *c)
{
	return probe_open_proc(ctx, pid, st, m, c);
}

static int sink_cb(void *ctx, const char *service, uint32_t pid,
		   int64_t time_nanos, const void *gz, size_t len)
{
	(void)pid;
	return sink_local_write(ctx, service, time_nanos, gz, len);
}

/* One frame into the target's builder; returns the location id (0: refused). */
static uint64_t frame_location(struct pprof *b, const struct sym_frame *f)
{
	uint64_t mid = 0;

	if (f->kernel && f->file)
		mid = pprof_kernel_mapping(b, f->file, f->build_id);
	else if (f->file)
		mid = pprof_mapping(b, f->map_start, f->map_limit, f->map_offset,
				    f->file, f->build_id, f->named);
	return pprof_location(b, mid, f->addr, f->func);
}

static void handle_sample(struct agg *a, const struct rec_sample *rs)
{
	char comm[SP_COMM_LEN + 1];
	uint64_t locs[2 * SP_MAX_STACK_DEPTH];
	char leaf[256] = "";
	struct sym_frame f;
	struct pprof *b;
	struct proc *p;
	uint64_t now = (uint64_t)now_ns(CLOCK_MONOTONIC);
	size_t n = 0;
	uint32_t i;

	a->samples++;
	a->kstack_errors += rs->kerr != 0;
	a->ustack_errors += rs->uerr != 0;
	rec_comm(rs->s->comm, comm);
	p = proctable_get(a->procs, rs->s->pid, rs->s->start_time, comm, now);
	if (!p)
		return;
	p->samples++;
	/* Until targets land, a target is a process named by its comm. */
	b = profiles_target(a->profiles, p->comm, p->pid);
	if (!b)
		return;
	for (i = 0; i < rs->nk && n < 2 * SP_MAX_STACK_DEPTH; i++) {
		symbolize_kernel(a->sym, rs->kips[i], i == 0, &f);
		if (n == 0)
			snprintf(leaf, sizeof(leaf), "%s", f.func);
		if ((locs[n] = frame_location(b, &f)))
			n++;
	}
	for (i = 0; i < rs->nu && n < 2 * SP_MAX_STACK_DEPTH; i++) {
		symbolize_user(a->sym, a->procs, p, rs->uips[i],
			       rs->nk == 0 && i == 0, now, &f);
		if (n == 0)
			snprintf(leaf, sizeof(leaf), "%s", f.func);
		if ((locs[n] = frame_location(b, &f)))
			n++;
	}
	if (n == 0) {
		/* Both stacks failed or were empty: keep the sample visible. */
		f = (struct sym_frame){ .func = "[unknown]" };
		locs[n++] = frame_location(b, &f);
		snprintf(leaf, sizeof(leaf), "[unknown]");
		if (!locs[0])
			return;
	}
	(void)profiles_add(a->profiles, b, p->comm, locs, n, leaf);
}

static void handle_record(struct agg *a, size_t len)
{
	const struct sp_rec_hdr *h = (const void *)a->rec;
	const struct sp_proc_event *ev = (const void *)(h + 1);
	const struct sp_lost *lost = (const void *)(h + 1);
	struct rec_sample rs;

	switch (rec_parse(a->rec, len, &rs)) {
	case SP_REC_SAMPLE:
		handle_sample(a, &rs);
		break;
	case SP_REC_PROC_EXEC:
		a->execs++;
		proctable_forget(a->procs, ev->pid, ev->start_time);
		break;
	case SP_REC_PROC_EXIT:
		a->exits++;
		proctable_forget(a->procs, ev->pid, ev->start_time);
		break;
	case SP_REC_LOST:
		a->lost_records += lost->lost;
		break;
	default:
		a->bad_records++;
		break;
	}
}

/* Returns 1 when the batch limit stopped it with records still waiting. */
static int drain(struct agg *a)
{
	int n, i;

	for (i = 0; i < DRAIN_BATCH; i++) {
		n = sp_consumer_next(a->cons, a->rec, sizeof(a->rec));
		if (n == 0)
			return 0;
		if (n < 0) {
			a->bad_records++;	/* the consumer resynced */
			continue;
		}
		handle_record(a, (size_t)n);
	}
	return 1;
}

static void drain_and_rearm(struct agg *a)
{
	do {
		if (drain(a)) {
			/* yield to the other events; come back right away */
			(void)loop_mod_timer(a->loop, a->kick_timer, 1, 0);
			return;
		}
	} while (sp_consumer_prepare_wait(a->cons) == 1);
}

static void on_ring(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct agg *a = arg;

	(void)l;
	(void)fd;
	(void)revents;
	sp_consumer_wake_ack(a->cons);
	drain_and_rearm(a);
}

static void on_kick(struct loop *l, int id, void *arg)
{
	(void)l;
	(void)id;
	drain_and_rearm(arg);
}

static void flush(struct agg *a)
{
	int r = profiles_flush(a->profiles, now_ns(CLOCK_REALTIME));

	if (r < 0)
		log_warnx("writing profiles: %s", strerror(-r));
}

static void on_interval(struct loop *l, int id, void *arg)
{
	(void)l;
	(void)id;
	flush(arg);
}

static void stop(struct agg *a, const char *why)
{
	if (a->done)
		return;
	log_info("stopping: %s", why);
	a->done = 1;
	loop_stop(a->loop);
}

/* Between requests the only thing the probe sends us unasked is EOF. */
static void on_control(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct sp_ctl_msg m;
	int r;

	(void)l;
	(void)revents;
	r = sp_ctl_recv(fd, &m);
	if (r == -EAGAIN)
		return;
	if (r == 0) {
		sp_ctl_msg_close_fds(&m);	/* a late reply: ignore */
		return;
	}
	stop(arg, r == -ECONNRESET ? "the probe closed the connection"
				   : "control channel error");
}

static void on_signal(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct signalfd_siginfo si;

	(void)l;
	(void)revents;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		stop(arg, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
}

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fatal("sigprocmask");
	sigdelset(&set, SIGPIPE);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		fatal("signalfd");
	return fd;
}

static void setup_loop(struct agg *a, int event_fd, int sig_fd)
{
	int err = 0;

	a->loop = loop_new(a->o.event_loop, &err);
	if (!a->loop)
		fatalx("event loop (%s): %s",
		       a->o.event_loop == LOOP_IO_URING ? "io_uring" :
		       a->o.event_loop == LOOP_EPOLL ? "epoll" : "auto",
		       strerror(err < 0 ? -err : err));
	log_info("event loop: %s", loop_backend_name(a->loop));
	if (loop_add_fd(a->loop, event_fd, POLLIN, on_ring, a) < 0 ||
	    loop_add_fd(a->loop, probe_client_fd(a->pc), POLLIN, on_control,
			a) < 0 ||
	    loop_add_fd(a->loop, sig_fd, POLLIN, on_signal, a) < 0)
		fatalx("cannot register the event sources");
	if (loop_add_timer(a->loop, a->o.collect_interval_ns,
			   a->o.collect_interval_ns, on_interval, a) < 0)
		fatalx("cannot create the collect-interval timer");
	a->kick_timer = loop_add_timer(a->loop, 0, 0, /* disarmed */
				       on_kick, a);
	if (a->kick_timer < 0)
		fatalx("cannot create a timer");
}

static void print_summary(struct agg *a)
{
	struct sp_ring_stats rs;
	struct sp_consumer_stats cs;
	struct profiles_stats ps;
	struct symbolizer_stats ss;
	struct proctable_stats pts;
	double secs = (double)(now_ns(CLOCK_REALTIME) - a->start_real_ns) / 1e9;

	sp_consumer_producer_stats(a->cons, &rs);
	sp_consumer_stats(a->cons, &cs);
	profiles_stats(a->profiles, &ps);
	symbolizer_stats(a->sym, &ss);
	proctable_stats(a->procs, &pts);
	printf("splitprof summary (%.1f s at %u Hz):\n", secs, a->sample_rate);
	printf("  samples: %llu received, %llu idle (not streamed), "
	       "%llu lost in the kernel ring, %llu dropped in the shared ring, "
	       "%llu missing (sequence gaps), %llu bad records\n",
	       (unsigned long long)a->samples,
	       (unsigned long long)rs.idle_samples,
	       (unsigned long long)rs.bpf_lost,
	       (unsigned long long)rs.dropped_records,
	       (unsigned long long)cs.seq_missing,
	       (unsigned long long)(a->bad_records + cs.bad_records));
	printf("  stacks: %llu kernel and %llu user stacks failed to unwind; "
	       "frames named: user %llu/%llu, kernel %llu/%llu\n",
	       (unsigned long long)a->kstack_errors,
	       (unsigned long long)a->ustack_errors,
	       (unsigned long long)ss.user_named,
	       (unsigned long long)ss.user_frames,
	       (unsigned long long)ss.kernel_named,
	       (unsigned long long)ss.kernel_frames);
	printf("  processes: %llu seen, %llu exec, %llu exit, %llu could not "
	       "be opened\n", (unsigned long long)pts.misses,
	       (unsigned long long)a->execs, (unsigned long long)a->exits,
	       (unsigned long long)pts.open_errors);
	printf("  profiles: %llu written (%llu bytes) to %s, %llu failed\n",
	       (unsigned long long)ps.written, (unsigned long long)ps.bytes,
	       a->o.output_dir_fd >= 0 ? "the output directory" : a->o.output_dir,
	       (unsigned long long)(ps.sink_errors + ps.encode_errors));
	profiles_print_top(a->profiles, stdout, 10);
	fflush(stdout);
}

static void setup_pipeline(struct agg *a, struct probe_hello *h, int dirfd)
{
	struct symbolizer_config sc = {
		.build_id_cache_size = a->o.build_id_cache_size,
		.same_file_cache_size = a->o.same_file_cache_size,
	};
	int r;

	a->sample_rate = h->msg.sample_rate ? h->msg.sample_rate : 97;
	a->period_ns = 1000000000ull / a->sample_rate;
	a->boot_time_ns = (int64_t)h->msg.boot_time_ns;
	r = sp_consumer_open(&h->ring, &a->cons);
	if (r < 0)
		fatalx("the ring from the probe is not valid: %s", strerror(-r));
	a->sym = symbolizer_new(&sc, a->pc, h->kallsyms_fd);
	a->procs = proctable_new(a->o.pid_cache_size, open_proc_cb, a->pc);
	a->sink = sink_local_new(dirfd, a->o.retention_max_files,
				 a->o.retention_max_bytes);
	a->start_real_ns = now_ns(CLOCK_REALTIME);
	a->profiles = profiles_new(a->period_ns, a->start_real_ns, sink_cb,
				   a->sink);
	if (!a->sym || !a->procs || !a->sink || !a->profiles)
		fatalx("out of memory setting up the pipeline");
}

int main(int argc, char **argv)
{
	static struct agg a;
	struct probe_hello h;
	int sock, dirfd, sig_fd, r;

	parse_opts(&a.o, argc, argv);
	log_init("aggregator", a.o.verbose ? SP_LOG_INFO + a.o.verbose - 1
					   : SP_LOG_INFO);
	sig_fd = signal_fd();
	dirfd = open_output_dir(&a.o);
	sock = a.o.control_fd >= 0 ? a.o.control_fd
				   : connect_probe(a.o.socket_path);
	a.pc = probe_client_new(sock, PROBE_TIMEOUT_MS);
	if (!a.pc)
		fatal("control socket");
	r = probe_client_hello(a.pc, &h);
	if (r < 0)
		fatalx("no valid HELLO from the probe: %s", strerror(-r));
	setup_pipeline(&a, &h, dirfd);
	setup_loop(&a, h.ring.event_fd, sig_fd);
	log_info("receiving samples at %u Hz; a profile per target every %llu s",
		 a.sample_rate,
		 (unsigned long long)(a.o.collect_interval_ns / 1000000000ull));
	drain_and_rearm(&a);
	if (loop_run(a.loop) < 0)
		log_warnx("event loop failed");
	while (drain(&a))	/* what is left in the ring belongs to the run */
		;
	flush(&a);
	print_summary(&a);
	return 0;
}
