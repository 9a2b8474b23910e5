/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sp_abi.h - the shared-memory ring ABI: the one contract between the BPF
 * program, the probe (producer) and the aggregator (consumer).
 *
 * Rules (see ../shared/DESIGN.md and SECURITY.md):
 *  - fixed-width types only, no enums, bools or pointers;
 *  - every struct size is _Static_assert'ed below;
 *  - bump SP_ABI_VERSION on any change to a layout or a meaning.
 *
 * The BPF program includes this header after vmlinux.h, which already
 * defines __u8..__u64; user space gets them from <linux/types.h>.
 */
#ifndef SP_ABI_H
#define SP_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SP_ABI_VERSION		1
#define SP_RING_MAGIC		0x474e495254505053ULL	/* "SPPTRING" little-endian */

/* Geometry. The header occupies one page; the data area is a power of two. */
#define SP_RING_HDR_SIZE	4096u
#define SP_RING_MIN_DATA	(64u * 1024u)
#define SP_RING_MAX_DATA	(1u << 30)
#define SP_RING_ALIGN		8u
#define SP_CONS_PAGE_SIZE	4096u

/* Largest record either side accepts, header included. */
#define SP_REC_MAX		(64u * 1024u)

/* Record types. */
#define SP_REC_SAMPLE		1
#define SP_REC_PROC_EXEC	2
#define SP_REC_PROC_EXIT	3
#define SP_REC_LOST		4

/* Frames per stack, as perf's kernel.perf_event_max_stack default. */
#define SP_MAX_STACK_DEPTH	127
#define SP_STACK_BYTES		(SP_MAX_STACK_DEPTH * 8)
#define SP_COMM_LEN		16

/* SAMPLE flags (sp_rec_hdr.flags). */
#define SP_SAMPLE_F_KERNEL_OFF	0x1	/* kernel stacks not collected */
#define SP_SAMPLE_F_USER_OFF	0x2	/* user stacks not collected */

/*
 * Every record starts with this header; len covers header + payload and is
 * a multiple of SP_RING_ALIGN. seq counts every record the producer
 * committed, starting at 0, so a gap is visible to the consumer.
 */
struct sp_rec_hdr {
	__u32 len;
	__u16 type;
	__u16 flags;
	__u64 seq;
};

/*
 * SAMPLE payload: the fixed part, followed by ips[]: first the kernel stack
 * (max(kstack_bytes, 0) bytes), then the user stack (max(ustack_bytes, 0)
 * bytes). A stack size is the signed byte count bpf_get_stack() returned: a
 * negative value is the helper's -errno and means "this stack failed", which
 * is different from "empty" (0).
 */
struct sp_sample {
	__u64 time_ns;		/* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 cgroup_id;	/* bpf_get_current_cgroup_id(), cgroup v2 inode */
	__u64 start_time;	/* group leader start_boottime, ns */
	__u32 pid;		/* tgid, in the initial pid namespace */
	__u32 tid;
	__u32 cpu;
	__s32 kstack_bytes;
	__s32 ustack_bytes;
	__u32 _pad;
	char comm[SP_COMM_LEN];
	__u64 ips[];
};

/* PROC_EXEC and PROC_EXIT payload. */
struct sp_proc_event {
	__u64 time_ns;
	__u64 start_time;	/* as in sp_sample; for EXEC the new image's */
	__u32 pid;		/* tgid */
	__u32 exit_code;	/* EXIT only */
	char comm[SP_COMM_LEN];
};

/*
 * LOST payload, written by the probe: records the BPF ring buffer could not
 * take since the previous LOST record (the kernel side was full).
 */
struct sp_lost {
	__u64 time_ns;
	__u64 lost;
};

/*
 * The producer's header page, first page of the data memfd. Written only by
 * the probe; the aggregator maps it read-only (sealed). The producer position
 * sits in its own cache line so the consumer's polling does not share a line
 * with the counters.
 */
struct sp_ring_hdr {
	__u64 magic;
	__u32 version;
	__u32 hdr_size;		/* SP_RING_HDR_SIZE */
	__u64 data_size;	/* power of two */
	__u64 _pad0[5];

	__u64 prod_pos;		/* free-running byte position */
	__u64 _pad1[7];

	/* counters, monotonic */
	__u64 records;		/* committed */
	__u64 dropped_records;	/* shared ring full or no consumer */
	__u64 dropped_bytes;
	__u64 bpf_lost;		/* BPF ring buffer was full */
	__u64 idle_samples;	/* pid 0 samples, counted not streamed */
	__u64 _pad2[3];
};

/*
 * The consumer page, a separate one-page memfd the aggregator writes and the
 * probe maps read-only. Hostile from the probe's point of view.
 */
struct sp_cons_page {
	__u64 cons_pos;		/* free-running byte position */
	__u64 _pad0[7];
	__u32 waiting;		/* consumer is about to sleep on the eventfd */
	__u32 _pad1;
	__u64 _pad2[7];
};

_Static_assert(sizeof(struct sp_rec_hdr) == 16, "sp_rec_hdr ABI");
_Static_assert(sizeof(struct sp_sample) == 64, "sp_sample ABI");
_Static_assert(sizeof(struct sp_proc_event) == 40, "sp_proc_event ABI");
_Static_assert(sizeof(struct sp_lost) == 16, "sp_lost ABI");
_Static_assert(sizeof(struct sp_ring_hdr) == 192, "sp_ring_hdr ABI");
_Static_assert(sizeof(struct sp_ring_hdr) <= SP_RING_HDR_SIZE, "hdr page");
_Static_assert(sizeof(struct sp_cons_page) == 128, "sp_cons_page ABI");
_Static_assert(sizeof(struct sp_rec_hdr) + sizeof(struct sp_sample) +
	       2 * SP_STACK_BYTES <= SP_REC_MAX, "largest sample fits");

#endif /* SP_ABI_H */
