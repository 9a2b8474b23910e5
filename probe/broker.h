/* SPDX-License-Identifier: BSD-2-Clause */
/* broker.h - the probe's file broker: answers the aggregator's OPEN_PROC,
 * OPEN_MAPPING and OPEN_DEBUG requests with fds (probe/broker.c). */
#ifndef PROBE_BROKER_H
#define PROBE_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include "sp_ctl.h"

struct broker;

struct broker_config {
	/* Searched for .build-id/xx/rest.debug after the process's root; NULL-
	 * terminated, must outlive the broker. Default {"/usr/lib/debug"}. */
	const char *const *debug_dirs;
	uint32_t rate_per_sec, burst;	/* token bucket; 0: 2000/s, 4000 */
	bool allow_cmdline;	/* serve /proc/P/cmdline; else EPERM */
};

/* Replies: FILES, ERROR (rate_limited: EBUSY ones); requests that closed. */
struct broker_stats {
	uint64_t served, refused, rate_limited, protocol_errors;
};

struct broker *broker_new(const struct broker_config *cfg);
void broker_free(struct broker *b);
/* 0: FILES or ERROR was sent; -EPROTO: not a permitted, well-formed request
 * (close the connection); another -errno: the reply could not be sent. */
int broker_dispatch(struct broker *b, int sock, const struct sp_ctl_msg *m);
/* A new aggregator: per-connection state, but not the rate limit. */
void broker_reset(struct broker *b);
void broker_stats(const struct broker *b, struct broker_stats *st);

#endif /* PROBE_BROKER_H */
