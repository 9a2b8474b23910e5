/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * profiles.h - the current collect interval: one pprof builder per target
 * (service_name, pid), flushed to the sinks every collect_interval and at
 * exit. Also keeps the whole-run figures the exit summary prints.
 *
 * Bounded: at most PROFILES_MAX_TARGETS builders per interval (samples of
 * further targets are dropped and counted); the summary keeps at most
 * PROFILES_MAX_SUMMARY_FUNCS function names per service.
 */
#ifndef AGG_PROFILES_H
#define AGG_PROFILES_H

#include <stdint.h>
#include <stdio.h>
#include "labels.h"
#include "pprof.h"

#define PROFILES_MAX_TARGETS		4096
#define PROFILES_MAX_SUMMARY_FUNCS	4096
#define PROFILES_MAX_SERVICES		1024

struct profiles;

/* Called for each encoded profile; returns 0 or -errno. */
typedef int (*profiles_sink_fn)(void *ctx, const char *service_name,
				uint32_t pid, const struct labelset *labels,
				int64_t time_nanos, int64_t duration_nanos,
				const void *gz, size_t len);

struct profiles_stats {
	uint64_t written;	/* profiles handed to the sink successfully */
	uint64_t bytes;		/* gzip'd bytes of those */
	uint64_t sink_errors;
	uint64_t encode_errors;
	uint64_t dropped_targets; /* samples refused: too many targets */
	uint64_t samples;	/* samples added */
	uint64_t dropped_samples; /* refused by a builder (caps) */
};

struct profiles *profiles_new(uint64_t period_ns, int64_t interval_start_ns,
			      profiles_sink_fn sink, void *ctx);
void profiles_free(struct profiles *ps);

/*
 * The builder of (service, pid) for this interval, created on first use
 * with a copy of the target's labels (handed to the sink with the profile).
 */
struct pprof *profiles_target(struct profiles *ps, const char *service,
			      uint32_t pid, const struct labelset *labels);

/* Add one sample to a target's builder and to the summary. */
int profiles_add(struct profiles *ps, struct pprof *b, const char *service,
		 const uint64_t *locs, size_t n, const char *leaf_func);

/* Encode and hand every builder to the sink, then start a new interval. */
int profiles_flush(struct profiles *ps, int64_t now_ns);

void profiles_stats(const struct profiles *ps, struct profiles_stats *st);

/* Top n functions (self samples) of the service with the most samples. */
void profiles_print_top(const struct profiles *ps, FILE *out, size_t n);

#endif /* AGG_PROFILES_H */
