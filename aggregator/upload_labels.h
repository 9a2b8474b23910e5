/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upload_labels.h - the labels a profile is sent with, exactly as Alloy's
 * pyroscope.write Append builds them, and their /ingest `name` encoding.
 * Library code: returns 0 or -errno, never logs.
 */
#ifndef AGG_UPLOAD_LABELS_H
#define AGG_UPLOAD_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "labels.h"

#define UPLOAD_DEFAULT_NAME	"process_cpu"
#define UPLOAD_DEFAULT_SERVICE	"unspecified"

/*
 * Alloy's validateLabels: a non-empty set, unique names (a labelset is
 * sorted and unique by construction), valid UTF-8 values and names other
 * than __name__ matching [A-Za-z0-9_.]+.
 */
bool upload_labels_valid(const struct labelset *ls);

/*
 * Validate in (-EINVAL if invalid: the profile must be dropped), then
 * build out: every "__" label dropped except __name__ and __delta__,
 * external labels applied over the rest, __name__ defaulted to
 * process_cpu and service_name to "unspecified". out comes out sorted
 * (a labelset always is); it is cleared first.
 */
int upload_labels_prepare(const struct labelset *in,
			  const struct labelset *external,
			  struct labelset *out);

/* Called for each label /ingest cannot carry (name, why). */
typedef void (*upload_label_drop_fn)(void *ctx, const char *name,
				     const char *why);

/*
 * The /ingest query string for ls (prepared as above):
 * name=<service_name>{k=v,...}&from=S&until=S&format=pprof&sampleRate=R
 * &spyName=splitprof, percent-encoded. __name__ is left out silently (the
 * server derives it from the sample type); any other label the name
 * grammar cannot carry (key not [A-Za-z0-9_.]+, a "__" key, a value with
 * ',', '}', '=' or '{') is left out and reported through drop. -EINVAL
 * when service_name is not a valid app name ([A-Za-z0-9_.\-/]+).
 * *out is malloc'd.
 */
int upload_ingest_query(const struct labelset *ls, long long from_s,
			long long until_s, unsigned sample_rate,
			upload_label_drop_fn drop, void *ctx, char **out);

#endif /* AGG_UPLOAD_LABELS_H */
