/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * probe_client.h - the aggregator's side of the control channel: receive
 * HELLO, then ask the probe for files. Every foreign file the aggregator
 * reads arrives through here as an fd; the aggregator opens no path of
 * another process itself.
 *
 * Requests are synchronous: one in flight, answered in order by the local
 * probe within microseconds, bounded by a timeout so a stuck probe cannot
 * hang the aggregator.
 */
#ifndef AGG_PROBE_CLIENT_H
#define AGG_PROBE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include "sp_ctl.h"
#include "sp_ring.h"

struct probe_client;

struct probe_hello {
	struct sp_msg_hello msg;
	struct sp_ring_fds ring;	/* owned by the receiver */
	int kallsyms_fd;		/* -1 when the probe sent none */
};

struct probe_client_stats {
	uint64_t requests;
	uint64_t files;		/* fds received */
	uint64_t errors;	/* ERROR replies */
	uint64_t timeouts;
};

/* Takes ownership of sock. */
struct probe_client *probe_client_new(int sock, int timeout_ms);
void probe_client_free(struct probe_client *pc);
int probe_client_fd(const struct probe_client *pc);

/* Wait for HELLO and validate versions. */
int probe_client_hello(struct probe_client *pc, struct probe_hello *h);

/* fds out: maps, cgroup. Returns 0 or -errno (the probe's errno, negated). */
int probe_open_proc(struct probe_client *pc, uint32_t pid, uint64_t start_time,
		    int *maps_fd, int *cgroup_fd);

struct proc_files;
/*
 * All of OPEN_PROC: maps, cgroup, exe and cwd (O_PATH, -1 for kernel
 * threads), cmdline when flags has SP_OPEN_PROC_F_CMDLINE and the probe
 * allows it (if it does not, the flag is dropped for this connection and
 * cmdline_fd is -1), and the uid. Returns 0 or -errno.
 */
int probe_open_proc_files(struct probe_client *pc, uint32_t pid,
			  uint64_t start_time, uint32_t flags,
			  struct proc_files *f);
bool probe_client_cmdline_refused(const struct probe_client *pc);
int probe_open_mapping(struct probe_client *pc, uint32_t pid,
		       uint64_t start_time, uint64_t start, uint64_t end,
		       uint64_t dev, uint64_t ino, int *fd);
int probe_open_debug(struct probe_client *pc, uint32_t pid, uint64_t start_time,
		     const uint8_t *build_id, uint32_t len, int *fd);
/*
 * The .gnu_debuglink file `name` of the file mapped at start-end (probe
 * OPEN_DEBUGLINK). name must end in ".debug", hold no '/' and fit
 * SP_DEBUGLINK_MAX: else -EINVAL here, before the probe would treat it as a
 * protocol violation.
 */
int probe_open_debuglink(struct probe_client *pc, uint32_t pid,
			 uint64_t start_time, uint64_t start, uint64_t end,
			 uint64_t dev, uint64_t ino, const char *name, int *fd);

void probe_client_stats(const struct probe_client *pc,
			struct probe_client_stats *st);

#endif /* AGG_PROBE_CLIENT_H */
