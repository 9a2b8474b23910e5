/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.h - the probe's file broker: answers the aggregator's fixed-size
 * requests (OPEN_PROC, OPEN_MAPPING, OPEN_DEBUG) by opening files and
 * passing the fds back. It never reads the files it hands out (beyond the
 * 4-byte ELF magic check OPEN_MAPPING requires).
 *
 * Every request goes through a permit table (type -> handler, exact payload
 * length, fds allowed: none) and a token-bucket rate limit. A request that
 * is not permitted or malformed makes broker_dispatch return -EPROTO: the
 * caller logs it and closes the connection. A permitted request that cannot
 * be served (no such process, start time changed, not a regular file, ...)
 * is answered with SP_MSG_ERROR and the connection stays open.
 */
#ifndef PROBE_BROKER_H
#define PROBE_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include "sp_ctl.h"

struct broker;

struct broker_config {
	/* Host debug directories searched for .build-id/xx/rest.debug after
	 * the process's own root; NULL-terminated. Default {"/usr/lib/debug"}. */
	const char *const *debug_dirs;
	/* Token bucket: sustained requests per second and burst size. */
	uint32_t rate_per_sec;
	uint32_t burst;
	/* Serve /proc/P/cmdline on OPEN_PROC with SP_OPEN_PROC_F_CMDLINE
	 * (--discover-commandline); otherwise such a request gets EPERM. */
	bool allow_cmdline;
};

struct broker_stats {
	uint64_t served;	/* FILES replies */
	uint64_t refused;	/* ERROR replies */
	uint64_t rate_limited;	/* refused with EBUSY by the token bucket */
	uint64_t protocol_errors; /* requests that closed the connection */
};

struct broker *broker_new(const struct broker_config *cfg);
void broker_free(struct broker *b);

/*
 * Handle one message received from the aggregator on sock. Returns 0 when a
 * reply (FILES or ERROR) was sent, -EPROTO when the message is not a
 * permitted request (caller closes the connection), or another -errno when
 * the reply could not be sent.
 */
int broker_dispatch(struct broker *b, int sock, const struct sp_ctl_msg *m);

/* Reset per-connection state (rate limit) for a new aggregator. */
void broker_reset(struct broker *b);
void broker_stats(const struct broker *b, struct broker_stats *st);

#endif /* PROBE_BROKER_H */
