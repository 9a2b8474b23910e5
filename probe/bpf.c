// SPDX-License-Identifier: BSD-2-Clause
/* bpf.c - open the skeleton, size the ring buffer, load, attach one CPU-clock
 * perf event per online CPU. Nothing is pinned: all detaches when fds close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <bpf/libbpf.h>

#include "sp_abi.h"
#include "sp_log.h"
#include "bpfload.h"
/* The generated skeleton casts away const on its embedded ELF bytes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "profile.skel.h"
#pragma GCC diagnostic pop

#define BPF_RING_MIN	(256ull << 10)
#define BPF_RING_MAX	(64ull << 20)
#define BPF_RING_SLACK	2	/* seconds of samples the kernel ring holds */
#define MAX_CPUS	1024	/* as in profile.bpf.c */
#define REC_MAX	(sizeof(struct sp_rec_hdr) + sizeof(struct sp_sample) + \
		 2 * SP_STACK_BYTES)	/* largest record emitted */

struct probe_bpf {
	struct profile *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	unsigned int nlinks;
	unsigned int ncpu;		/* possible CPUs */
};

uint64_t probe_pow2_clamp(uint64_t want, uint64_t min, uint64_t max)
{
	uint64_t v = min;

	while (v < want && v < max)
		v <<= 1;
	return v;
}

/* One perf event per CPU; offline CPUs (ENODEV) are skipped. */
static int attach_cpus(struct probe_bpf *pb, unsigned int rate)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr), .freq = 1, .sample_freq = rate,
	};
	struct bpf_link *link = NULL;
	unsigned int cpu;
	int fd, err;

	pb->links = calloc(pb->ncpu, sizeof(*pb->links));
	if (!pb->links)
		return -ENOMEM;
	for (cpu = 0; cpu < pb->ncpu; cpu++) {
		fd = (int)syscall(SYS_perf_event_open, &attr, -1, (int)cpu, -1,
				  PERF_FLAG_FD_CLOEXEC);
		if (fd < 0 && errno == ENODEV)
			continue;
		if (fd >= 0)
			link = bpf_program__attach_perf_event(
				pb->skel->progs.do_sample, fd);
		if (fd < 0 || !link) {
			err = -errno;
			log_warn("%s cpu %u", fd < 0 ? "perf_event_open on" :
				 "attach to", cpu);
			if (fd >= 0)
				close(fd);
			return err;
		}
		pb->links[pb->nlinks++] = link;
	}
	log_info("attached exec/exit tracepoints and the sampler on %u "
		 "CPUs at %u Hz", pb->nlinks, rate);
	return pb->nlinks ? 0 : -ENODEV;
}

int probe_bpf_start(const struct probe_bpf_opts *o, struct probe_bpf **out)
{
	libbpf_print_fn_t def;
	struct probe_bpf *pb;
	uint64_t ring;
	int err;

	/* libbpf's own printer (warnings, the verifier log of a failed load,
	 * info, on stderr) only with -v. */
	def = libbpf_set_print(NULL);
	if (o->verbose)
		libbpf_set_print(def);
	pb = calloc(1, sizeof(*pb));
	if (!pb)
		return -ENOMEM;
	err = libbpf_num_possible_cpus();
	if (err < 0)
		goto out;
	pb->ncpu = (unsigned int)err;
	pb->skel = profile__open();
	if (!pb->skel) {
		err = -errno;
		goto out;
	}
	pb->skel->rodata->collect_user = o->user_stacks;
	pb->skel->rodata->collect_kernel = o->kernel_stacks;
	ring = probe_pow2_clamp((uint64_t)o->sample_rate * pb->ncpu * REC_MAX *
				BPF_RING_SLACK, BPF_RING_MIN, BPF_RING_MAX);
	pb->skel->rodata->wake_bytes = ring / 8;	/* the drain timer does the rest */
	err = bpf_map__set_max_entries(pb->skel->maps.events, (__u32)ring);
	if (!err)
		err = profile__load(pb->skel);
	if (err) {
		log_warnx("loading the BPF program failed: %s%s", strerror(-err),
			  o->verbose ? "" : " (-v shows the verifier log)");
		goto out;
	}
	log_info("loaded BPF program (ring buffer %llu KiB, user stacks %s, "
		 "kernel stacks %s)", (unsigned long long)ring >> 10,
		 o->user_stacks ? "on" : "off", o->kernel_stacks ? "on" : "off");
	pb->rb = ring_buffer__new(bpf_map__fd(pb->skel->maps.events),
				  o->on_record, o->ctx, NULL);
	if (!pb->rb) {
		err = -errno;
		goto out;
	}
	/* Attaches the raw tracepoints; perf_event programs are skipped. */
	err = profile__attach(pb->skel);
	if (!err)
		err = attach_cpus(pb, o->sample_rate);
out:
	if (err)
		probe_bpf_free(pb);
	else
		*out = pb;
	return err;
}

void probe_bpf_free(struct probe_bpf *pb)
{
	unsigned int i;

	if (!pb)
		return;
	for (i = 0; i < pb->nlinks; i++)
		bpf_link__destroy(pb->links[i]);
	free(pb->links);
	ring_buffer__free(pb->rb);
	profile__destroy(pb->skel);
	free(pb);
}

unsigned int probe_bpf_ncpu(const struct probe_bpf *pb)
{
	return pb->ncpu;
}

int probe_bpf_epoll_fd(const struct probe_bpf *pb)
{
	return ring_buffer__epoll_fd(pb->rb);
}

void probe_bpf_drain(struct probe_bpf *pb, uint64_t *lost, uint64_t *idle)
{
	const volatile struct profile__bss *bss = pb->skel->bss;
	unsigned int i, n = pb->ncpu < MAX_CPUS ? pb->ncpu : MAX_CPUS;

	(void)ring_buffer__consume(pb->rb);
	*lost = *idle = 0;
	for (i = 0; i < n; i++) {
		*lost += bss->lost_cnt[i];
		*idle += bss->idle_cnt[i];
	}
}
