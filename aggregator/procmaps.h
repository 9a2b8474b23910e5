/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procmaps.h - /proc/P/maps of a profiled process, from an fd the probe
 * passed. The text is hostile (the process names its own files): every
 * line is validated, bad lines are skipped and counted.
 */
#ifndef PROCMAPS_H
#define PROCMAPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCMAPS_MAX_BYTES	(16u << 20)
#define PROCMAPS_MAX_LINE	8192

#define PROCMAPS_R		0x01
#define PROCMAPS_W		0x02
#define PROCMAPS_X		0x04
#define PROCMAPS_P		0x08	/* private (copy on write) */
#define PROCMAPS_S		0x10	/* shared */
#define PROCMAPS_DELETED	0x20	/* path ended in " (deleted)", stripped */

struct procmaps_entry {
	uint64_t start;
	uint64_t end;		/* exclusive */
	uint64_t offset;	/* file offset of start */
	dev_t dev;
	uint64_t ino;
	uint32_t perms;		/* PROCMAPS_* bits */
	const char *path;	/* "" for anonymous; "[vdso]", "[heap]", ... */
};

struct procmaps;

/*
 * Reads a whole /proc text file (no usable st_size) with pread from 0 into
 * a malloc'ed buffer; -EFBIG past cap bytes. Shared with kallsyms.
 */
int procmaps_read_text(int fd, size_t cap, char **buf, size_t *len);

/* Reads the whole fd with pread from offset 0 (capped) and parses it. */
int procmaps_read_fd(int fd, struct procmaps **out);
/* Parses maps text; buf need not be NUL-terminated. */
int procmaps_parse(const char *buf, size_t len, struct procmaps **out);
/* The mapping holding ip, or NULL. Borrowed from pm. */
const struct procmaps_entry *procmaps_lookup(const struct procmaps *pm,
					     uint64_t ip);
size_t procmaps_count(const struct procmaps *pm);
const struct procmaps_entry *procmaps_entry_at(const struct procmaps *pm,
					       size_t i);
size_t procmaps_bad_lines(const struct procmaps *pm);
void procmaps_free(struct procmaps *pm);

/* One mapping from the PROCMAP_QUERY ioctl (Linux >= 6.11). */
struct procmaps_query_result {
	struct procmaps_entry e;	/* e.path points into path[] */
	char path[4096];
	uint8_t build_id[64];
	uint32_t build_id_len;		/* 0: none or the kernel could not read it */
};

/*
 * Asks the kernel for the file-backed mapping holding ip on a maps fd.
 * -ENOTTY/-EINVAL: ioctl unsupported, fall back to procmaps_read_fd;
 * -ENOENT: no mapping covers ip.
 */
int procmaps_query(int fd, uint64_t ip, struct procmaps_query_result *out);

#endif /* PROCMAPS_H */
