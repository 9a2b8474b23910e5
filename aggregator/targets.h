/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * targets.h - which processes are profiled, under which labels (Alloy's
 * pyroscope.ebpf targets + discovery.process + discovery.relabel).
 *
 * With a `targets` list: the list goes through `relabel` once (as
 * discovery.relabel in front of pyroscope.ebpf would), then a process
 * matches a target by pid (__process_pid__) first, else by container id
 * (__container_id__, __meta_docker_container_id,
 * __meta_kubernetes_pod_container_id without its docker:// containerd://
 * cri-o:// prefix, __meta_dockerswarm_task_container_id). PID targets win
 * (Alloy PR #2761). Unmatched: default_target unless targets_only.
 *
 * Without a list: every process is a target with discovery.process labels
 * (__meta_process_pid, _exe, _cwd, _username, _uid, _container_id, and
 * _commandline only with discover_commandline; splitprof adds
 * __meta_process_comm), relabeled per process; a process dropped by
 * relabel is skipped under targets_only, else gets default_target.
 *
 * Either way service_name is kept if set, else inferred as Alloy does
 * (pod annotation, ebpf/<namespace>/<container>, docker container name,
 * swarm service) and else "unspecified" - Alloy's wire behaviour, so a
 * plain process without a relabel rule setting service_name lands in
 * "unspecified" (map __meta_process_comm or __meta_process_exe to
 * service_name to split them). Labels starting with "__" other than
 * __name__ are removed from the result.
 */
#ifndef AGG_TARGETS_H
#define AGG_TARGETS_H

#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "labels.h"

struct proc;
struct users;

/* What is known about one process; NULL strings are unknown. */
struct target_input {
	uint32_t pid;
	uint64_t start_time;
	const char *comm;
	const char *container_id;	/* 64 hex, "" or NULL: none */
	const char *exe;
	const char *cwd;
	const char *cmdline;		/* used only with discover_commandline */
	const char *username;
	uint32_t uid;
	bool has_uid;
};

struct targets_stats {
	uint64_t matched;		/* by pid or container id; discovery */
	uint64_t defaulted;		/* got default_target */
	uint64_t skipped;		/* not profiled */
	uint64_t relabel_dropped;	/* of those above, dropped by relabel */
};

/* NULL on error (bad relabel rule, OOM) with the reason in err. */
struct targets *targets_new(const struct config *c, char *err, size_t errlen);
void targets_free(struct targets *t);

/* 1: profiled, out filled (cleared first); 0: skipped; -errno on OOM. */
int targets_resolve(struct targets *t, const struct target_input *in,
		    struct labelset *out);
void targets_stats(const struct targets *t, struct targets_stats *st);

/* Fill in from a proc table entry; users may be NULL. */
void targets_input_from_proc(struct target_input *in, const struct proc *p,
			     const struct users *u);

/* Alloy's service_name inference over a full (unstripped) label set. */
const char *targets_infer_service_name(const struct labelset *ls);

#endif /* AGG_TARGETS_H */
