// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * profile.bpf.c - one record per CPU-clock sample, plus process exec/exit
 * events, streamed through one BPF ring buffer to the probe.
 *
 * Only helpers and maps available since 5.8 (ringbuf, bpf_get_stack,
 * CO-RE reads), so the object loads on every kernel with BTF we support.
 * Steady-state counters live in .bss so the probe reads them through the
 * mmaped map without a bpf() syscall.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "sp_abi.h"

/* Power of two: counters are indexed by cpu & (MAX_CPUS - 1). */
#define MAX_CPUS	1024

char LICENSE[] SEC("license") = "GPL";

/* Set by the probe before load. */
const volatile bool collect_user = true;
const volatile bool collect_kernel = true;
const volatile __u64 wake_bytes = 0;	/* 0: wake the reader on every record */

__u64 lost_cnt[MAX_CPUS];	/* bpf_ringbuf_output failed: ring full */
__u64 idle_cnt[MAX_CPUS];	/* samples of the idle task (pid 0) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);	/* resized by the probe */
} events SEC(".maps");

/* hdr, sample, then the kernel stack bytes and the user stack bytes. */
#define SAMPLE_REC_MAX	(sizeof(struct sp_rec_hdr) + \
			 sizeof(struct sp_sample) + 2 * SP_STACK_BYTES)
struct sample_rec {
	__u8 bytes[SAMPLE_REC_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample_rec);
} scratch SEC(".maps");

/*
 * Wake the probe only once a batch has built up; it also drains on a short
 * timer. A wake-up per sample is a context switch on the sampled CPU right
 * after every sample: the scheduler then runs in step with the sampler and
 * the shares come out skewed (a test child measured 55-75 Hz of its CPU time
 * at 97 Hz with two busy neighbours, against perf's 94 Hz), and it costs CPU.
 */
static __always_inline __u64 wake_flag(__u64 len)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + len >= wake_bytes ?
	       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u64 *arr, __u32 cpu)
{
	__sync_fetch_and_add(&arr[cpu & (MAX_CPUS - 1)], 1);
}

static __always_inline __u64 leader_start_time(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, group_leader, start_boottime);
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 cpu = bpf_get_smp_processor_id();
	struct sp_rec_hdr *hdr;
	struct sp_sample *s;
	struct sample_rec *r;
	__u8 *stacks;
	__u32 zero = 0;
	__s64 kb = 0, ub = 0, koff, len;

	if ((id >> 32) == 0) {
		count(idle_cnt, cpu);
		return 0;
	}
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return 0;
	hdr = (struct sp_rec_hdr *)r->bytes;
	s = (struct sp_sample *)(hdr + 1);
	stacks = (__u8 *)s->ips;

	hdr->type = SP_REC_SAMPLE;
	hdr->flags = 0;
	hdr->seq = 0;			/* assigned by the probe's ring */
	s->time_ns = bpf_ktime_get_ns();
	s->cgroup_id = bpf_get_current_cgroup_id();
	s->start_time = leader_start_time();
	s->pid = id >> 32;
	s->tid = (__u32)id;
	s->cpu = cpu;
	s->_pad = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));

	if (collect_kernel)
		kb = bpf_get_stack(ctx, stacks, SP_STACK_BYTES, 0);
	else
		hdr->flags |= SP_SAMPLE_F_KERNEL_OFF;

	/* The user stack follows the kernel bytes; the clamp keeps the
	 * verifier's view of the offset within [0, SP_STACK_BYTES]. */
	koff = kb;
	if (koff < 0)
		koff = 0;
	if (koff > SP_STACK_BYTES)
		koff = SP_STACK_BYTES;
	if (collect_user)
		ub = bpf_get_stack(ctx, stacks + koff, SP_STACK_BYTES,
				   BPF_F_USER_STACK);
	else
		hdr->flags |= SP_SAMPLE_F_USER_OFF;

	s->kstack_bytes = kb;
	s->ustack_bytes = ub;
	len = sizeof(*hdr) + sizeof(*s) + koff + (ub > 0 ? ub : 0);
	if (len > sizeof(*r))
		len = sizeof(*r);
	hdr->len = len;
	if (bpf_ringbuf_output(&events, r, len, wake_flag(len)))
		count(lost_cnt, cpu);
	return 0;
}

static __always_inline void emit_proc(__u16 type, __u32 exit_code)
{
	struct {
		struct sp_rec_hdr hdr;
		struct sp_proc_event ev;
	} r = {};

	r.hdr.len = sizeof(r);
	r.hdr.type = type;
	r.ev.time_ns = bpf_ktime_get_ns();
	r.ev.start_time = leader_start_time();
	r.ev.pid = bpf_get_current_pid_tgid() >> 32;
	r.ev.exit_code = exit_code;
	bpf_get_current_comm(r.ev.comm, sizeof(r.ev.comm));
	if (bpf_ringbuf_output(&events, &r, sizeof(r), wake_flag(sizeof(r))))
		count(lost_cnt, bpf_get_smp_processor_id());
}

/*
 * Raw tracepoints, not tp/: they attach by name through bpf() and need no
 * mounted tracefs (often absent in containers). Only current is used, so
 * the tracepoints' argument lists (which changed over time) don't matter.
 */
SEC("raw_tp/sched_process_exec")
int on_exec(void *ctx)
{
	emit_proc(SP_REC_PROC_EXEC, 0);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int on_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	/* One event per process: only when the thread-group leader exits. */
	if ((__u32)id != (id >> 32))
		return 0;
	emit_proc(SP_REC_PROC_EXIT, BPF_CORE_READ(task, exit_code));
	return 0;
}
