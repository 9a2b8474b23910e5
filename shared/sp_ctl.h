/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sp_ctl.h - the control protocol between probe and aggregator.
 *
 * AF_UNIX SOCK_SEQPACKET. Every message is struct sp_msg_hdr followed by a
 * fixed-size payload; the receiver checks the exact payload length for the
 * type, and the exact number of fds, before it copies anything out. fds ride
 * along with SCM_RIGHTS and are received with MSG_CMSG_CLOEXEC.
 *
 * Requests carry a req_id the probe echoes in its reply, so the aggregator
 * can keep several requests in flight and match replies without relying on
 * ordering assumptions.
 */
#ifndef SP_CTL_H
#define SP_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#define SP_CTL_VERSION		3	/* 2: OPEN_PROC flags, exe/cwd/cmdline, FILES uid;
				   3: OPEN_DEBUGLINK, PROBE_CONFIG */

/* Message types. */
#define SP_MSG_HELLO		1	/* probe -> agg, 3 or 4 fds */
#define SP_MSG_OPEN_PROC	2	/* agg -> probe */
#define SP_MSG_OPEN_MAPPING	3	/* agg -> probe */
#define SP_MSG_OPEN_DEBUG	4	/* agg -> probe */
#define SP_MSG_FILES		5	/* probe -> agg, reply with fds */
#define SP_MSG_ERROR		6	/* probe -> agg, reply without fds */
#define SP_MSG_OPEN_DEBUGLINK	7	/* agg -> probe */
#define SP_MSG_PROBE_CONFIG	8	/* agg -> probe, first and once (launcher) */
#define SP_MSG_TYPE_MAX		8

#define SP_CTL_MAX_FDS		5
#define SP_BUILD_ID_MAX		40	/* GNU build ids are 20 bytes; allow more */
#define SP_DEBUGLINK_MAX	128	/* .gnu_debuglink name, NUL included */

struct sp_msg_hdr {
	__u32 type;
	__u32 len;	/* payload bytes following this header */
};

#define SP_HELLO_F_KALLSYMS	0x1	/* 4th fd is /proc/kallsyms */
#define SP_HELLO_F_NO_USER	0x2	/* user stacks off */
#define SP_HELLO_F_NO_KERNEL	0x4	/* kernel stacks off */

struct sp_msg_hello {
	__u32 abi_version;	/* SP_ABI_VERSION */
	__u32 ctl_version;	/* SP_CTL_VERSION */
	__u32 ncpu;
	__u32 sample_rate;	/* Hz */
	__u64 ring_data_size;
	__u64 ring_hdr_size;
	__u64 boot_time_ns;	/* CLOCK_REALTIME - CLOCK_MONOTONIC at start */
	__u32 flags;		/* SP_HELLO_F_* */
	__u32 _pad;
};

/*
 * -> fds, packed in this slot order, FILES.fd_mask saying which are there:
 *   maps, cgroup (always), exe and cwd (their paths as text in a sealed,
 *   read-only memfd: never a directory fd; both missing for kernel threads
 *   and zombies), cmdline (only on SP_OPEN_PROC_F_CMDLINE, and only if the
 *   probe allows it: EPERM else). All read-only.
 * FILES.uid is the owner of /proc/P: the process's euid (root when the
 * process is not dumpable).
 */
#define SP_OPEN_PROC_F_CMDLINE	0x1
#define SP_OPEN_PROC_F_ALL	SP_OPEN_PROC_F_CMDLINE

#define SP_PROC_FD_MAPS		0
#define SP_PROC_FD_CGROUP	1
#define SP_PROC_FD_EXE		2
#define SP_PROC_FD_CWD		3
#define SP_PROC_FD_CMDLINE	4
#define SP_PROC_FD_COUNT	5

struct sp_msg_open_proc {
	__u64 req_id;
	__u64 start_time;
	__u32 pid;
	__u32 flags;	/* SP_OPEN_PROC_F_*; unknown bits: protocol error */
};

/* -> fd: /proc/P/map_files/START-END (regular file, dev/ino, ELF magic) */
struct sp_msg_open_mapping {
	__u64 req_id;
	__u64 start_time;
	__u64 start;
	__u64 end;
	__u64 dev;	/* as st_dev: makedev(major, minor) from the maps line */
	__u64 ino;
	__u32 pid;
	__u32 _pad;
};

/* -> fd: .build-id/xx/rest.debug under the process root or the host's */
struct sp_msg_open_debug {
	__u64 req_id;
	__u64 start_time;
	__u32 pid;
	__u32 build_id_len;	/* 2..SP_BUILD_ID_MAX */
	__u8 build_id[SP_BUILD_ID_MAX];
};

/*
 * -> fd: the .gnu_debuglink file NAME of the file mapped at START-END (still
 * dev/ino and ELF, checked as for OPEN_MAPPING), looked up gdb's way with DIR
 * the mapped file's directory as the kernel names it: DIR/NAME,
 * DIR/.debug/NAME, /usr/lib/debug/DIR/NAME in the process's root, then
 * DIR/NAME under each host debug dir. NAME: printable ASCII without '/',
 * not "." or "..", NUL-terminated (else a protocol error). The aggregator
 * checks the file's CRC against the link's.
 */
struct sp_msg_open_debuglink {
	__u64 req_id;
	__u64 start_time;
	__u64 start;
	__u64 end;
	__u64 dev;
	__u64 ino;
	__u32 pid;
	__u32 _pad;
	char name[SP_DEBUGLINK_MAX];
};

/*
 * Launcher only (probe --config-from-peer): the aggregator's first message,
 * before HELLO, carries the probe's share of the configuration it parsed
 * (YAML file and flags merged), so the probe never reads YAML. Anything but
 * this message, or a value out of range, stops the probe. Afterwards it is
 * a protocol error like any unknown request.
 */
#define SP_CONFIG_F_NO_USER	0x1	/* collect_user_profile: false */
#define SP_CONFIG_F_NO_KERNEL	0x2	/* collect_kernel_profile: false */
#define SP_CONFIG_F_ALL		0x3
/* Not here, on purpose: serving command lines (secrets) stays the probe's own
 * flag, --discover-commandline, never the aggregator's say. */

struct sp_msg_probe_config {
	__u32 sample_rate;	/* 1..10000 Hz */
	__u32 flags;		/* SP_CONFIG_F_* */
};

struct sp_msg_files {
	__u64 req_id;
	__u32 request;	/* the request type answered */
	__u32 nfds;
	__u32 fd_mask;	/* bit i: slot i present (OPEN_PROC); else 1 */
	__u32 uid;	/* OPEN_PROC: owner of /proc/P; else 0 */
};

struct sp_msg_error {
	__u64 req_id;
	__u32 request;	/* the request type refused */
	__s32 error;	/* positive errno */
};

_Static_assert(sizeof(struct sp_msg_hdr) == 8, "hdr ABI");
_Static_assert(sizeof(struct sp_msg_hello) == 48, "hello ABI");
_Static_assert(sizeof(struct sp_msg_open_proc) == 24, "open_proc ABI");
_Static_assert(sizeof(struct sp_msg_open_mapping) == 56, "open_mapping ABI");
_Static_assert(sizeof(struct sp_msg_open_debug) == 64, "open_debug ABI");
_Static_assert(sizeof(struct sp_msg_open_debuglink) == 184, "debuglink ABI");
_Static_assert(sizeof(struct sp_msg_probe_config) == 8, "probe_config ABI");
_Static_assert(sizeof(struct sp_msg_files) == 24, "files ABI");
_Static_assert(sizeof(struct sp_msg_error) == 16, "error ABI");

#define SP_CTL_MAX_PAYLOAD	184

/* A received message: payload copied out of the socket buffer. */
struct sp_ctl_msg {
	uint32_t type;
	uint32_t len;
	union {
		struct sp_msg_hello hello;
		struct sp_msg_open_proc open_proc;
		struct sp_msg_open_mapping open_mapping;
		struct sp_msg_open_debug open_debug;
		struct sp_msg_open_debuglink open_debuglink;
		struct sp_msg_probe_config probe_config;
		struct sp_msg_files files;
		struct sp_msg_error error;
		unsigned char raw[SP_CTL_MAX_PAYLOAD];
	} u;
	int fds[SP_CTL_MAX_FDS];
	unsigned int nfds;
};

/*
 * Expected shape of a message type: exact payload length and the allowed
 * fd count range. Returns -EINVAL for an unknown type.
 */
int sp_ctl_shape(uint32_t type, uint32_t *len, unsigned int *min_fds,
		 unsigned int *max_fds);

/* Send one message. Returns 0 or -errno (-EAGAIN on a full nonblocking socket). */
int sp_ctl_send(int sock, uint32_t type, const void *payload, uint32_t len,
		const int *fds, unsigned int nfds);

/*
 * Receive one message. Returns 0, -EAGAIN (nonblocking, nothing there),
 * -ECONNRESET on orderly EOF, or -EBADMSG for any malformed message
 * (truncated, wrong length for its type, unknown type, control data
 * truncated, wrong fd count, non-SCM_RIGHTS control data). On every error
 * all received fds are closed; on success m->fds[0..nfds) belong to the
 * caller.
 */
int sp_ctl_recv(int sock, struct sp_ctl_msg *m);

/*
 * OPEN_DEBUGLINK's name rule, for both sides: NUL-terminated within
 * SP_DEBUGLINK_MAX bytes, printable ASCII without '/', ending in ".debug"
 * (so "." and ".." and any file that is not a debug file are out).
 */
bool sp_ctl_debuglink_name_ok(const char name[SP_DEBUGLINK_MAX]);

/* Close every fd in m and set nfds to 0. */
void sp_ctl_msg_close_fds(struct sp_ctl_msg *m);

#endif /* SP_CTL_H */
