/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sink_local.h - the local folder sink: one gzipped pprof per file at
 * <output dir>/<service_name>/<UTC timestamp>.pb.gz, written atomically
 * (temporary file, fdatasync, rename without replace), with retention by
 * file count and total bytes.
 *
 * The sink only ever works relative to an already-open directory fd: the
 * sandboxed aggregator may be unable to open the path itself. It never
 * follows a symlink. Library code: returns 0 or -errno, never logs.
 */
#ifndef SP_SINK_LOCAL_H
#define SP_SINK_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#define SINK_LOCAL_DEFAULT_MAX_FILES	10000u
#define SINK_LOCAL_DEFAULT_MAX_BYTES	(1ull << 30)	/* 1 GiB */
#define SINK_LOCAL_MAX_SERVICE_LEN	200u
/* Room for a sanitized service name and its NUL. */
#define SINK_LOCAL_SERVICE_SIZE		(SINK_LOCAL_MAX_SERVICE_LEN + 1)

struct sink_local;

struct sink_local_stats {
	uint64_t written;		/* profiles written */
	uint64_t bytes;			/* bytes written */
	uint64_t deleted_by_retention;
	uint64_t errors;		/* failed writes and deletions */
	uint64_t files;			/* profile files now in the folder */
	uint64_t total_bytes;		/* their size */
};

/*
 * dirfd stays the caller's (not closed by the sink). max_files or
 * max_bytes 0 selects the default. Scans dirfd once to rebuild the index
 * (removing stale temporary files) and applies retention. NULL with errno
 * set on failure.
 */
struct sink_local *sink_local_new(int dirfd, uint64_t max_files,
				  uint64_t max_bytes);
void sink_local_free(struct sink_local *s);

/*
 * Write one profile for service_name at time_nanos (ns since the epoch,
 * UTC), then delete the oldest files beyond the limits (never the one
 * just written). Returns 0 or -errno.
 */
int sink_local_write(struct sink_local *s, const char *service_name,
		     int64_t time_nanos, const void *data, size_t len);

void sink_local_stats(const struct sink_local *s, struct sink_local_stats *st);

/*
 * The directory name for a service: one safe path component ('/' and
 * non-printable or invalid UTF-8 bytes become '_', a leading '.' becomes
 * '_', at most SINK_LOCAL_MAX_SERVICE_LEN bytes, "" becomes
 * "unspecified"). out must hold SINK_LOCAL_SERVICE_SIZE bytes.
 */
void sink_local_service_dir(const char *service_name, char *out);

#endif /* SP_SINK_LOCAL_H */
