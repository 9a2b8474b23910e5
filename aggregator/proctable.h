/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * proctable.h - what the aggregator knows about each profiled process,
 * keyed by (pid, start time) so a reused pid is a different process.
 * Bounded by pid_cache_size with LRU eviction. /proc/P/maps and
 * /proc/P/cgroup come as fds from the probe (through the open callback);
 * the maps fd is kept so the table can re-read fresh maps when a sample
 * hits an unknown address, at most once per refresh interval.
 */
#ifndef AGG_PROCTABLE_H
#define AGG_PROCTABLE_H

#include <stdbool.h>
#include <stdint.h>
#include "containerid.h"
#include "labels.h"
#include "procmaps.h"
#include "sp_abi.h"

#define PROC_CGROUP_MAX		4096
#define PROC_REFRESH_NS		1000000000ull	/* re-read maps at most 1/s */
#define PROC_CMDLINE_MAX	4096	/* __meta_process_commandline cap */

struct proc {
	uint32_t pid;
	uint64_t start_time;
	char comm[SP_COMM_LEN + 1];
	struct procmaps *maps;	/* NULL when the probe could not open it */
	int maps_fd;
	int open_err;		/* -errno of the failed OPEN_PROC, or 0 */
	char *cgroup;		/* /proc/P/cgroup text, NUL-terminated, or NULL */
	/* discovery facts (targets.h), from the OPEN_PROC reply */
	char container_id[CONTAINER_ID_LEN + 1];	/* "" when none */
	char *exe;		/* readlink of the exe fd, or NULL */
	char *cwd;		/* readlink of the cwd fd, or NULL */
	char *cmdline;		/* args joined by ' ', or NULL when not asked */
	uint32_t uid;		/* owner of /proc/P (euid) */
	bool has_uid;
	/* the lead's cache of targets_resolve: 0 not yet, 1 profiled,
	 * -1 skipped; target is cleared when the entry goes */
	int target_state;
	struct labelset target;
	uint64_t refreshed_ns;
	uint64_t samples;
};

/* Returns 0 and two fds, or -errno. In production: probe_open_proc. */
typedef int (*proc_open_fn)(void *ctx, uint32_t pid, uint64_t start_time,
			    int *maps_fd, int *cgroup_fd);

/* The OPEN_PROC reply: every fd -1 when absent; the callee owns none. */
struct proc_files {
	int maps_fd, cgroup_fd, exe_fd, cwd_fd, cmdline_fd;
	uint32_t uid;
	bool has_uid;
};

/*
 * Returns 0 and at least maps and cgroup, or -errno. In production:
 * probe_open_proc_files. Preferred over proc_open_fn: it brings the
 * discovery facts (exe, cwd, uid, cmdline).
 */
typedef int (*proc_open_files_fn)(void *ctx, uint32_t pid,
				  uint64_t start_time, struct proc_files *f);

struct proctable_stats {
	uint64_t lookups, hits, misses, evictions;
	uint64_t open_errors;	/* OPEN_PROC refused: gone, reused pid */
	uint64_t refreshes;	/* maps re-read on an unknown address */
	uint64_t bad_map_lines;
	uint64_t live;
};

struct proctable *proctable_new(uint32_t capacity, proc_open_fn open_fn,
				void *ctx);
struct proctable *proctable_new_files(uint32_t capacity,
				      proc_open_files_fn open_fn, void *ctx);
void proctable_free(struct proctable *pt);

/*
 * Find or create the entry; a new entry asks for its files right away
 * (the process is alive: it was just sampled). Never NULL except on OOM:
 * an entry whose files could not be opened has maps == NULL.
 * The pointer stays valid until the next proctable_get/forget call.
 */
struct proc *proctable_get(struct proctable *pt, uint32_t pid,
			   uint64_t start_time, const char *comm,
			   uint64_t now_ns);

/* Re-read the maps (rate-limited). Returns 1 if re-read, 0 if too soon. */
int proctable_refresh(struct proctable *pt, struct proc *p, uint64_t now_ns);

/* PROC_EXIT / PROC_EXEC: drop what we know about this process. */
void proctable_forget(struct proctable *pt, uint32_t pid, uint64_t start_time);

void proctable_stats(const struct proctable *pt, struct proctable_stats *st);

#endif /* AGG_PROCTABLE_H */
