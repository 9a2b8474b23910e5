/* SPDX-License-Identifier: BSD-2-Clause */
/* bpfload.h - load and attach bpf/profile.bpf.c, drain its ring buffer and
 * read its loss/idle counters (probe/bpf.c). */
#ifndef PROBE_BPFLOAD_H
#define PROBE_BPFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct probe_bpf;

struct probe_bpf_opts {
	unsigned int sample_rate;	/* Hz, per CPU */
	bool user_stacks, kernel_stacks;
	bool verbose;			/* libbpf output at info, not debug */
	int (*on_record)(void *ctx, void *data, size_t size); /* returns 0 */
	void *ctx;
};

/* Open, size, load and attach (one perf event per online CPU). */
int probe_bpf_start(const struct probe_bpf_opts *o, struct probe_bpf **out);
void probe_bpf_free(struct probe_bpf *pb);
unsigned int probe_bpf_ncpu(const struct probe_bpf *pb);
/* Readable when records wait; drain passes them to on_record and returns the
 * loss/idle totals since load. */
int probe_bpf_epoll_fd(const struct probe_bpf *pb);
void probe_bpf_drain(struct probe_bpf *pb, uint64_t *lost, uint64_t *idle);
/* Smallest power of two >= want, within [min, max] (both powers of two). */
uint64_t probe_pow2_clamp(uint64_t want, uint64_t min, uint64_t max);

#endif /* PROBE_BPFLOAD_H */
