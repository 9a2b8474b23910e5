/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upload.h - ship profiles to Grafana Pyroscope the way Alloy's
 * pyroscope.write does: Connect unary push.v1.PusherService/Push (or the
 * legacy /ingest), every endpoint concurrently, retries with jittered
 * exponential backoff, a byte-capped queue per endpoint that drops the
 * oldest profile when the backend is down.
 *
 * Everything runs on the aggregator's event loop: libcurl's multi
 * interface gets its sockets and its one timer from the loop, backoff
 * waits are loop timers. Nothing blocks, no thread is started.
 *
 * Library code: returns 0 or -errno and never logs, except one
 * rate-limited warning per label key that /ingest cannot carry.
 */
#ifndef AGG_UPLOAD_H
#define AGG_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "labels.h"
#include "loop.h"

#ifndef SPLITPROF_VERSION
#define SPLITPROF_VERSION	"0.1.0"
#endif

#define UPLOAD_QUEUE_DEFAULT	(8u << 20)	/* queue_max_bytes 0 */
#define UPLOAD_ERR_MAX		256

/* pyroscope_write_latency buckets (upper bounds, seconds): Prometheus'. */
#define UPLOAD_LATENCY_BUCKETS	11
extern const double upload_latency_bounds[UPLOAD_LATENCY_BUCKETS];

struct uploader;

/*
 * One endpoint's counters, named after pyroscope_write_*_total with the
 * label endpoint=<name>. Bytes are raw_profile bytes (the gzip'd pprof),
 * as Alloy counts them.
 */
struct upload_stats {
	const char *endpoint;		/* cfg name, or the url */
	uint64_t sent_bytes, sent_profiles;
	uint64_t dropped_bytes, dropped_profiles;
	uint64_t retries;		/* attempts after the first */
	uint64_t dropped_invalid;	/* of dropped_profiles: bad labels */
	uint64_t dropped_queue_full;	/* of dropped_profiles: oldest evicted */
	uint64_t ingest_labels_dropped;	/* labels /ingest cannot carry */
	uint64_t queue_bytes, queue_profiles;	/* held now, incl. in flight */
	/*
	 * push_endpoint / ingest_endpoint latency of each attempt,
	 * non-cumulative counts per bucket; [UPLOAD_LATENCY_BUCKETS] is +Inf.
	 */
	uint64_t latency_counts[UPLOAD_LATENCY_BUCKETS + 1];
	uint64_t latency_sum_ns;
	uint64_t latency_count;
	/* curl's message or "HTTP <status>[: <connect code>]"; no secrets. */
	const char *last_error;
};

typedef void (*upload_stats_fn)(void *ctx, const struct upload_stats *st);

/*
 * eps[0..n) and external_labels are read here and not kept (libcurl copies
 * strings and blobs). On failure returns NULL with -errno in *err (-EINVAL
 * for an endpoint libcurl rejects).
 */
struct uploader *uploader_new(struct loop *loop, const struct cfg_endpoint *eps,
			      size_t n, const struct cfg_labels *external_labels,
			      int *err);

/*
 * Queue one profile on every endpoint. labels: the target's labels
 * (service_name included); pprof_gz is copied. Never blocks. Returns 0,
 * -EINVAL when the labels fail validation (dropped and counted on every
 * endpoint), or -ENOMEM.
 */
int uploader_submit(struct uploader *u, const struct labelset *labels,
		    const void *pprof_gz, size_t len, int64_t from_ns,
		    int64_t until_ns, uint32_t sample_rate);

/* Profiles queued or in flight on all endpoints. */
size_t uploader_pending(const struct uploader *u);

/*
 * At exit: run the loop until every queue is empty or timeout_ms passed,
 * then abort what is left and count it as dropped. Returns 0 when all was
 * delivered (or dropped by policy), -ETIMEDOUT otherwise.
 */
int uploader_flush(struct uploader *u, int timeout_ms);

void uploader_foreach_stats(const struct uploader *u, upload_stats_fn cb,
			    void *ctx);

void uploader_free(struct uploader *u);

#endif /* AGG_UPLOAD_H */
