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
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "demangle.h"
#include "labels.h"
#include "loop.h"
#include "probe_client.h"
#include "proctable.h"
#include "profiles.h"
#include "records.h"
#include "relabel.h"
#include "sandbox.h"
#include "sink_local.h"
#include "sp_abi.h"
#include "sp_ctl.h"
#include "sp_duration.h"
#include "sp_log.h"
#include "sp_ring.h"
#include "symbolize.h"
#include "targets.h"
#include "upload.h"
#include "users.h"

#define SPLITPROF_VERSION	"0.1.0"
#define DRAIN_BATCH		65536	/* records per wake before yielding */
#define PROBE_TIMEOUT_MS	2000
#define UPLOAD_EXIT_TIMEOUT_MS	10000

struct opts {
	struct config *cfg;	/* the file (or defaults), then the flags on top */
	int control_fd;
	int output_dir_fd;
	bool check_config;
	bool send_probe_config;
	bool already_confined;
	bool sandbox_debug;
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
	struct uploader *up;		/* NULL: no endpoint configured */
	struct targets *targets;	/* NULL: no config file, target = process */
	struct relabel *profile_relabel;
	struct users *users;
	uint64_t period_ns;
	uint32_t sample_rate;
	int64_t boot_time_ns;	/* realtime = boot_time_ns + monotonic */
	int64_t start_real_ns;
	int kick_timer;
	int done;
	/* counters for the summary */
	uint64_t samples, lost_records, execs, exits, bad_records;
	uint64_t kstack_errors, ustack_errors;
	uint64_t skipped_samples, relabel_dropped_profiles;
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
"  -c, --config FILE          YAML configuration (see README); flags override it\n"
"  --check-config             validate the configuration and exit (-v prints it)\n"
"  --send-probe-config        first tell the probe (PROBE_CONFIG) the sample rate\n"
"                             and stack switches of the file and flags; the\n"
"                             launcher uses this so that one file configures both\n"
"  --sample-rate HZ           expected probe rate, overrides sample_rate (97)\n"
"  --no-user-stacks           overrides collect_user_profile: true\n"
"  --no-kernel-stacks         overrides collect_kernel_profile: true\n"
"  --socket PATH              probe control socket (default /run/splitprof/probe.sock)\n"
"  --control-fd N             use an inherited, connected control socket instead\n"
"  --output-dir DIR           where profiles are written (default ./profiles)\n"
"  --output-dir-fd N          an already-open output directory (from the launcher)\n"
"  --collect-interval DUR     one profile per target per interval (default 15s)\n"
"  --demangle LEVEL           C++ names: none, simplified (no parameters or\n"
"                             template arguments), templates, full (default none)\n"
"  --event-loop KIND          auto, io_uring or epoll (default auto)\n"
"  --pid-cache-size N         processes kept (default 32)\n"
"  --build-id-cache-size N    symbol tables kept by build id (default 64)\n"
"  --same-file-cache-size N   symbol tables kept by dev/inode (default 8)\n"
"  --retention-max-files N    keep at most N profile files (default 10000)\n"
"  --retention-max-bytes N    keep at most N bytes of profiles (default 1073741824)\n"
"  --aggregator-user USER     user to switch to when started as root (default nobody)\n"
"  --already-confined         the service manager already runs us unprivileged\n"
"                             (systemd DynamicUser=, a pod's runAsUser): no switch\n"
"  --discover-commandline     add __meta_process_commandline to discovered targets\n"
"                             (the probe must allow it too; off by default)\n"
"  --sandbox-debug            log seccomp violations instead of being killed\n"
"                             (for developing the allowlist only)\n"
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
	OPT_USER, OPT_CONFINED, OPT_SANDBOX_DEBUG, OPT_CHECK_CONFIG,
	OPT_CMDLINE, OPT_SEND_CONFIG, OPT_RATE, OPT_NO_USER, OPT_NO_KERNEL,
	OPT_DEMANGLE,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "send-probe-config", no_argument, NULL, OPT_SEND_CONFIG },
	{ "demangle", required_argument, NULL, OPT_DEMANGLE },
	{ "sample-rate", required_argument, NULL, OPT_RATE },
	{ "no-user-stacks", no_argument, NULL, OPT_NO_USER },
	{ "no-kernel-stacks", no_argument, NULL, OPT_NO_KERNEL },
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
	{ "aggregator-user", required_argument, NULL, OPT_USER },
	{ "already-confined", no_argument, NULL, OPT_CONFINED },
	{ "sandbox-debug", no_argument, NULL, OPT_SANDBOX_DEBUG },
	{ "discover-commandline", no_argument, NULL, OPT_CMDLINE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void set_str(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
	if (!*field)
		fatal("strdup");
}

static void parse_one(struct opts *o, int c, const char *arg)
{
	struct config *cfg = o->cfg;

	switch (c) {
	case 'c': break;			/* loaded in the first pass */
	case OPT_CHECK_CONFIG: o->check_config = true; break;
	case OPT_SEND_CONFIG: o->send_probe_config = true; break;
	case OPT_RATE:
		cfg->sample_rate = parse_u32_opt("sample-rate", arg, 10000);
		break;
	case OPT_NO_USER: cfg->collect_user_profile = false; break;
	case OPT_NO_KERNEL: cfg->collect_kernel_profile = false; break;
	case OPT_DEMANGLE:
		if (demangle_mode_parse(arg) < 0)
			fatalx("--demangle: '%s' is not none, simplified, "
			       "templates or full", arg);
		set_str(&cfg->demangle, arg);
		break;
	case OPT_SOCKET: set_str(&cfg->socket_path, arg); break;
	case OPT_CONTROL_FD: o->control_fd = parse_fd_opt("control-fd", arg); break;
	case OPT_OUTPUT_DIR: set_str(&cfg->output_dir, arg); break;
	case OPT_OUTPUT_DIR_FD:
		o->output_dir_fd = parse_fd_opt("output-dir-fd", arg);
		break;
	case OPT_INTERVAL:
		if (sp_parse_duration(arg, &cfg->collect_interval_ns) < 0 ||
		    cfg->collect_interval_ns < 1000000000ull)
			fatalx("--collect-interval: '%s' is not a duration of "
			       "at least 1s (e.g. 15s, 1m)", arg);
		break;
	case OPT_EVENT_LOOP:
		cfg->event_loop = loop_backend_parse(arg);
		if (cfg->event_loop < 0)
			fatalx("--event-loop: '%s' is not auto, io_uring or epoll",
			       arg);
		break;
	case OPT_PID_CACHE:
		cfg->pid_cache_size = parse_u32_opt("pid-cache-size", arg, 1u << 20);
		break;
	case OPT_BUILD_ID_CACHE:
		cfg->build_id_cache_size =
			parse_u32_opt("build-id-cache-size", arg, 1u << 16);
		break;
	case OPT_SAME_FILE_CACHE:
		cfg->same_file_cache_size =
			parse_u32_opt("same-file-cache-size", arg, 1u << 16);
		break;
	case OPT_RET_FILES:
		if (parse_u64(arg, &cfg->retention_max_files) < 0)
			fatalx("--retention-max-files: '%s' is not a number", arg);
		break;
	case OPT_RET_BYTES:
		if (parse_u64(arg, &cfg->retention_max_bytes) < 0)
			fatalx("--retention-max-bytes: '%s' is not a number", arg);
		break;
	case OPT_USER: set_str(&cfg->aggregator_user, arg); break;
	case OPT_CONFINED: o->already_confined = true; break;
	case OPT_SANDBOX_DEBUG: o->sandbox_debug = true; break;
	case OPT_CMDLINE: cfg->discover_commandline = true; break;
	case 'v': o->verbose++; break;
	case 'h': usage(stdout); exit(0);
	case OPT_VERSION: printf("splitprof %s\n", SPLITPROF_VERSION); exit(0);
	default: usage(stderr); exit(2);
	}
}

/* First pass: only -c, so the flags of the second pass override the file. */
static void load_config(struct opts *o, int argc, char **argv)
{
	char err[CFG_ERR_MAX];
	const char *path = NULL;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:vh", long_opts, NULL)) != -1)
		if (c == 'c')
			path = optarg;
	opterr = 1;
	optind = 0;	/* glibc: rescan from the start */
	r = path ? config_load(path, &o->cfg, err, sizeof(err))
		 : config_defaults(&o->cfg);
	if (r < 0 && path)
		fatalx("%s", err);
	if (r < 0)
		fatalx("out of memory");
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	int c;

	*o = (struct opts){ .control_fd = -1, .output_dir_fd = -1 };
	load_config(o, argc, argv);
	while ((c = getopt_long(argc, argv, "c:vh", long_opts, NULL)) != -1)
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
	if (!o->cfg->local_output)
		return -1;
	if (mkdir(o->cfg->output_dir, 0750) < 0 && errno != EEXIST)
		fatal("cannot create output directory %s", o->cfg->output_dir);
	fd = open(o->cfg->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fatal("cannot open output directory %s", o->cfg->output_dir);
	return fd;
}

static int open_proc_cb(void *ctx, uint32_t pid, uint64_t st,
			struct proc_files *f)
{
	struct agg *a = ctx;
	uint32_t flags = a->o.cfg->discover_commandline &&
			 !probe_client_cmdline_refused(a->pc) ?
			 SP_OPEN_PROC_F_CMDLINE : 0;

	return probe_open_proc_files(a->pc, pid, st, flags, f);
}

/*
 * An encoded profile leaves: pyroscope.relabel rules (profile_relabel) may
 * rewrite its labels or drop it, then it goes to the local folder.
 */
static int sink_cb(void *ctx, const char *service, uint32_t pid,
		   const struct labelset *labels, int64_t time_nanos,
		   int64_t duration_nanos, const void *gz, size_t len)
{
	struct agg *a = ctx;
	struct labelset ls = { 0 };
	const char *svc = service;
	int r = 0;

	(void)pid;
	if (labelset_copy(&ls, labels) < 0 ||
	    labelset_set(&ls, "__name__", "process_cpu") < 0) {
		labelset_clear(&ls);
		return -ENOMEM;
	}
	if (a->profile_relabel && relabel_apply(a->profile_relabel, &ls) == 0) {
		a->relabel_dropped_profiles++;
		goto out;
	}
	if (labelset_get(&ls, "service_name"))
		svc = labelset_get(&ls, "service_name");
	if (a->sink)
		r = sink_local_write(a->sink, svc, time_nanos, gz, len);
	/* Never blocks: queued per endpoint, bounded, drops counted there. */
	if (a->up)
		(void)uploader_submit(a->up, &ls, gz, len, time_nanos,
				      time_nanos + duration_nanos, a->sample_rate);
out:
	labelset_clear(&ls);
	return r;
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

/*
 * Once per process: its target labels. Without a config file every process
 * is its own target named by its command; with one, the configured targets
 * and relabel rules decide (Alloy's pyroscope.ebpf + discovery.relabel).
 * Returns -1 for a process that is not profiled.
 */
static int resolve_target(struct agg *a, struct proc *p)
{
	struct target_input in;
	int r;

	if (p->target_state == 0 && !a->targets) {
		r = labelset_set(&p->target, "service_name", p->comm[0] ? p->comm
									 : "unspecified");
		p->target_state = r < 0 ? -1 : 1;
	} else if (p->target_state == 0) {
		targets_input_from_proc(&in, p, a->users);
		r = targets_resolve(a->targets, &in, &p->target);
		p->target_state = r == 1 ? 1 : -1;
		if (r == 1 && !labelset_get(&p->target, "service_name"))
			p->target_state = -1;
	}
	return p->target_state > 0 ? 0 : -1;
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
	if (resolve_target(a, p) < 0) {
		a->skipped_samples++;
		return;
	}
	p->samples++;
	b = profiles_target(a->profiles, labelset_get(&p->target, "service_name"),
			    p->pid, &p->target);
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
	(void)profiles_add(a->profiles, b,
			   labelset_get(&p->target, "service_name"), locs, n, leaf);
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

	(void)revents;
	r = sp_ctl_recv(fd, &m);
	if (r == -EAGAIN)
		return;
	if (r == 0) {
		sp_ctl_msg_close_fds(&m);	/* a late reply: ignore */
		return;
	}
	/* At EOF the socket stays readable: stop watching it, or every later
	 * loop iteration (the exit flush of uploads) would spin on it. */
	(void)loop_del_fd(l, fd);
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

	a->loop = loop_new(a->o.cfg->event_loop, &err);
	if (!a->loop)
		fatalx("event loop (%s): %s",
		       a->o.cfg->event_loop == LOOP_IO_URING ? "io_uring" :
		       a->o.cfg->event_loop == LOOP_EPOLL ? "epoll" : "auto",
		       strerror(err < 0 ? -err : err));
	log_info("event loop: %s", loop_backend_name(a->loop));
	if (loop_add_fd(a->loop, event_fd, POLLIN, on_ring, a) < 0 ||
	    loop_add_fd(a->loop, probe_client_fd(a->pc), POLLIN, on_control,
			a) < 0 ||
	    loop_add_fd(a->loop, sig_fd, POLLIN, on_signal, a) < 0)
		fatalx("cannot register the event sources");
	if (loop_add_timer(a->loop, a->o.cfg->collect_interval_ns,
			   a->o.cfg->collect_interval_ns, on_interval, a) < 0)
		fatalx("cannot create the collect-interval timer");
	a->kick_timer = loop_add_timer(a->loop, 0, 0, /* disarmed */
				       on_kick, a);
	if (a->kick_timer < 0)
		fatalx("cannot create a timer");
}

static void print_endpoint(void *ctx, const struct upload_stats *st)
{
	(void)ctx;
	printf("  upload %s: %llu profiles sent (%llu bytes), %llu dropped "
	       "(%llu bytes; %llu invalid labels, %llu queue full), %llu retries%s%s\n",
	       st->endpoint, (unsigned long long)st->sent_profiles,
	       (unsigned long long)st->sent_bytes,
	       (unsigned long long)st->dropped_profiles,
	       (unsigned long long)st->dropped_bytes,
	       (unsigned long long)st->dropped_invalid,
	       (unsigned long long)st->dropped_queue_full,
	       (unsigned long long)st->retries,
	       st->last_error && st->last_error[0] ? "; last error: " : "",
	       st->last_error && st->last_error[0] ? st->last_error : "");
}

/* What profiling cost us: users compare this with the other profilers. */
static void print_self_usage(double secs)
{
	struct rusage ru;
	double cpu;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("  aggregator: %.2f s CPU (%.2f%% of one core), peak RSS %.1f MiB\n",
	       cpu, secs > 0 ? 100.0 * cpu / secs : 0.0,
	       (double)ru.ru_maxrss / 1024.0);
}

/*
 * Endpoints: the CA bundle and secrets are read and every endpoint host is
 * resolved now, before the sandbox forbids opening files.
 */
static void setup_upload(struct agg *a)
{
	const struct config *c = a->o.cfg;
	int err = 0;

	if (c->n_endpoints == 0)
		return;
	a->up = uploader_new(a->loop, c->endpoints, c->n_endpoints,
			     &c->external_labels, &err);
	if (!a->up)
		fatalx("%s: write.endpoint: cannot set up the upload: %s",
		       c->path ? c->path : "config",
		       strerror(err < 0 ? -err : EINVAL));
	log_info("uploading to %zu endpoint(s)", c->n_endpoints);
}

/*
 * Everything the aggregator opens by path is open by now (output dir,
 * control socket); the consumer page is mapped and the loop exists (after
 * this, shared writable maps and io_uring_setup are forbidden). From here
 * on every foreign file arrives as an fd from the probe.
 */
static void enter_sandbox(struct agg *a, int dirfd)
{
	struct sandbox_opts so = {
		.user = a->o.cfg->aggregator_user,
		.already_confined = a->o.already_confined,
		.output_dir_fd = dirfd,
		.loop_backend = loop_backend(a->loop),
		.debug = a->o.sandbox_debug,
	};
	int r = sandbox_prepare(&so);

	if (r == 0)
		r = sandbox_lockdown();
	if (r < 0)
		fatalx("cannot enter the sandbox: %s", strerror(-r));
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
	printf("  symbols: %llu ELF files unreadable or hostile; %llu debug "
	       "files used (%llu by .gnu_debuglink), %llu rejected (other "
	       "build, %llu of them by CRC)\n", (unsigned long long)ss.bad_elf,
	       (unsigned long long)ss.debug_files,
	       (unsigned long long)ss.debuglink_files,
	       (unsigned long long)(ss.bad_debug + ss.debuglink_crc_mismatch),
	       (unsigned long long)ss.debuglink_crc_mismatch);
	if (ss.demangled || ss.demangle_failed || ss.demangle_cache_full)
		printf("  demangle (%s): %llu names demangled, %llu the "
		       "demangler refused, %llu lookups left mangled (cache "
		       "full)\n", a->o.cfg->demangle,
		       (unsigned long long)ss.demangled,
		       (unsigned long long)ss.demangle_failed,
		       (unsigned long long)ss.demangle_cache_full);
	printf("  processes: %llu seen, %llu exec, %llu exit, %llu could not "
	       "be opened\n", (unsigned long long)pts.misses,
	       (unsigned long long)a->execs, (unsigned long long)a->exits,
	       (unsigned long long)pts.open_errors);
	if (a->targets || a->skipped_samples)
		printf("  targets: %llu samples of processes matching no target "
		       "were not profiled; %llu profiles dropped by "
		       "profile_relabel\n",
		       (unsigned long long)a->skipped_samples,
		       (unsigned long long)a->relabel_dropped_profiles);
	printf("  profiles: %llu built (%llu bytes gzip'd), %llu failed; %s\n",
	       (unsigned long long)ps.written, (unsigned long long)ps.bytes,
	       (unsigned long long)(ps.sink_errors + ps.encode_errors),
	       !a->sink ? "no local folder" :
	       a->o.output_dir_fd >= 0 ? "written to the output directory" :
	       "written to the output_dir");
	if (a->up)
		uploader_foreach_stats(a->up, print_endpoint, NULL);
	print_self_usage(secs);
	profiles_print_top(a->profiles, stdout, 10);
	fflush(stdout);
}

static void setup_pipeline(struct agg *a, struct probe_hello *h, int dirfd)
{
	struct symbolizer_config sc = {
		.build_id_cache_size = a->o.cfg->build_id_cache_size,
		.same_file_cache_size = a->o.cfg->same_file_cache_size,
		/* the config and --demangle accept only the four words */
		.demangle = (enum demangle_mode)demangle_mode_parse(a->o.cfg->demangle),
	};
	int r;

	a->sample_rate = h->msg.sample_rate ? h->msg.sample_rate : 97;
	a->period_ns = 1000000000ull / a->sample_rate;
	a->boot_time_ns = (int64_t)h->msg.boot_time_ns;
	r = sp_consumer_open(&h->ring, &a->cons);
	if (r < 0)
		fatalx("the ring from the probe is not valid: %s", strerror(-r));
	a->sym = symbolizer_new(&sc, a->pc, h->kallsyms_fd);
	a->procs = proctable_new_files(a->o.cfg->pid_cache_size, open_proc_cb, a);
	if (dirfd >= 0) {
		a->sink = sink_local_new(dirfd, a->o.cfg->retention_max_files,
					 a->o.cfg->retention_max_bytes);
		/* e.g. a folder that existed, not ours: the launcher gives a
		 * new one to our user but never chowns one that was there */
		if (!a->sink && errno != ENOMEM)
			fatal("cannot use the output directory as uid %u (its "
			      "owner must let this user read and write it)",
			      (unsigned int)getuid());
	}
	a->start_real_ns = now_ns(CLOCK_REALTIME);
	a->profiles = profiles_new(a->period_ns, a->start_real_ns, sink_cb, a);
	if (!a->sym || !a->procs || (dirfd >= 0 && !a->sink) || !a->profiles)
		fatalx("out of memory setting up the pipeline");
}

/* Accepted by the schema but not done by this version: say so, don't pretend. */
static void check_unsupported(const struct config *c)
{
	if (c->metrics_listen)
		fatalx("%s: metrics_listen: the metrics endpoint is not "
		       "implemented in this version", c->path);
}

static int check_config(const struct opts *o)
{
	char err[CFG_ERR_MAX];
	struct targets *t = targets_new(o->cfg, err, sizeof(err));
	const struct config *c = o->cfg;

	if (!t)
		fatalx("%s", err);
	targets_free(t);
	check_unsupported(c);	/* what start-up would refuse, refused here */
	if (o->verbose)
		(void)config_dump(c, stdout);
	printf("%s: OK\n", c->path ? c->path : "(defaults)");
	return 0;
}

/*
 * Targets and relabel rules are compiled, and /etc/passwd is read for
 * usernames, before the sandbox forbids opening files.
 */
static void setup_attribution(struct agg *a)
{
	char err[CFG_ERR_MAX];
	int r;

	if (!a->o.cfg->path)
		return;
	a->targets = targets_new(a->o.cfg, err, sizeof(err));
	if (!a->targets)
		fatalx("%s", err);
	if (a->o.cfg->profile_relabel.n) {
		a->profile_relabel = relabel_compile(&a->o.cfg->profile_relabel,
						     err, sizeof(err));
		if (!a->profile_relabel)
			fatalx("%s: profile_relabel: %s", a->o.cfg->path, err);
	}
	r = users_load("/etc/passwd", &a->users);
	if (r < 0)
		log_warnx("/etc/passwd: %s; __meta_process_username stays empty",
			  strerror(-r));
}

/* Launcher mode: the probe waits for its share of the merged configuration
 * (it parses no YAML) before it loads BPF. */
static void send_probe_config(const struct config *c, int sock)
{
	struct sp_msg_probe_config pc = { .sample_rate = c->sample_rate,
		.flags = (c->collect_user_profile ? 0 : SP_CONFIG_F_NO_USER) |
			 (c->collect_kernel_profile ? 0 : SP_CONFIG_F_NO_KERNEL) };
	int r = sp_ctl_send(sock, SP_MSG_PROBE_CONFIG, &pc, sizeof(pc), NULL, 0);

	if (r < 0) {
		errno = -r;
		fatal("sending the probe its configuration");
	}
}

/* The probe samples with its own flags (the launcher's gets them from us); a
 * separately started probe may disagree: say so. */
static void check_probe_settings(const struct agg *a, const struct probe_hello *h)
{
	const struct config *c = a->o.cfg;
	bool user = !(h->msg.flags & SP_HELLO_F_NO_USER);
	bool kernel = !(h->msg.flags & SP_HELLO_F_NO_KERNEL);

	if (!c->path)
		return;
	if (c->sample_rate != h->msg.sample_rate)
		log_warnx("%s: sample_rate is %u but the probe samples at %u Hz; "
			  "the probe's rate is used (give it --sample-rate %u)",
			  c->path, c->sample_rate, h->msg.sample_rate,
			  c->sample_rate);
	if (c->collect_user_profile != user || c->collect_kernel_profile != kernel)
		log_warnx("%s: collect_user_profile/collect_kernel_profile differ "
			  "from the probe's (user %s, kernel %s); pass "
			  "--no-user-stacks/--no-kernel-stacks to the probe",
			  c->path, user ? "on" : "off", kernel ? "on" : "off");
}

int main(int argc, char **argv)
{
	static struct agg a;
	struct probe_hello h;
	int sock, dirfd, sig_fd, r;

	log_init("aggregator", SP_LOG_INFO);	/* config errors name us too */
	parse_opts(&a.o, argc, argv);
	log_init("aggregator", a.o.verbose ? SP_LOG_INFO + a.o.verbose - 1
					   : SP_LOG_INFO);
	if (a.o.check_config)
		return check_config(&a.o);
	check_unsupported(a.o.cfg);
	setup_attribution(&a);
	sig_fd = signal_fd();
	dirfd = open_output_dir(&a.o);
	sock = a.o.control_fd >= 0 ? a.o.control_fd
				   : connect_probe(a.o.cfg->socket_path);
	if (a.o.send_probe_config)
		send_probe_config(a.o.cfg, sock);
	a.pc = probe_client_new(sock, PROBE_TIMEOUT_MS);
	if (!a.pc)
		fatal("control socket");
	r = probe_client_hello(a.pc, &h);
	if (r < 0)
		fatalx("no valid HELLO from the probe: %s", strerror(-r));
	check_probe_settings(&a, &h);
	setup_pipeline(&a, &h, dirfd);
	setup_loop(&a, h.ring.event_fd, sig_fd);
	setup_upload(&a);
	enter_sandbox(&a, dirfd);
	log_info("receiving samples at %u Hz; a profile per target every %llu s",
		 a.sample_rate,
		 (unsigned long long)(a.o.cfg->collect_interval_ns / 1000000000ull));
	drain_and_rearm(&a);
	if (loop_run(a.loop) < 0)
		log_warnx("event loop failed");
	while (drain(&a))	/* what is left in the ring belongs to the run */
		;
	flush(&a);
	/* Give queued profiles a bounded chance to leave; the rest is counted. */
	if (a.up && uploader_flush(a.up, UPLOAD_EXIT_TIMEOUT_MS) < 0)
		log_warnx("uploads still pending after %d ms were dropped",
			  UPLOAD_EXIT_TIMEOUT_MS);
	print_summary(&a);
	return 0;
}
