/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>

#include "procmaps.h"

struct procmaps {
	char *text;		/* NUL-separated copy of the lines; paths point here */
	struct procmaps_entry *ents;
	size_t n;
	size_t bad;
};

static const char deleted_suffix[] = " (deleted)";

/* Parses lowercase/uppercase hex up to a delimiter; rejects overflow. */
static int parse_hex(const char **pp, const char *end, char delim,
		     uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	int digits = 0;

	for (; p < end && *p != delim; p++, digits++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -EINVAL;
		if (v >> 60)
			return -ERANGE;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0 || p == end)
		return -EINVAL;
	*pp = p + 1;
	*out = v;
	return 0;
}

static int parse_dec(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p == end || *p < '0' || *p > '9')
		return -EINVAL;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p < end && *p != ' ')
		return -EINVAL;
	*pp = p;
	*out = v;
	return 0;
}

static int parse_perms(const char **pp, const char *end, uint32_t *out)
{
	const char *p = *pp;
	uint32_t perms = 0;

	if (end - p < 5 || p[4] != ' ')
		return -EINVAL;
	if (p[0] == 'r')
		perms |= PROCMAPS_R;
	else if (p[0] != '-')
		return -EINVAL;
	if (p[1] == 'w')
		perms |= PROCMAPS_W;
	else if (p[1] != '-')
		return -EINVAL;
	if (p[2] == 'x')
		perms |= PROCMAPS_X;
	else if (p[2] != '-')
		return -EINVAL;
	if (p[3] == 'p')
		perms |= PROCMAPS_P;
	else if (p[3] == 's')
		perms |= PROCMAPS_S;
	else
		return -EINVAL;
	*pp = p + 5;
	*out = perms;
	return 0;
}

static void set_path(struct procmaps_entry *e, char *path, char *end)
{
	size_t len = (size_t)(end - path);
	size_t sl = sizeof(deleted_suffix) - 1;

	if (len > sl && memcmp(end - sl, deleted_suffix, sl) == 0) {
		e->perms |= PROCMAPS_DELETED;
		end -= sl;
	}
	*end = '\0';
	e->path = path;
}

/* line is [p, end) inside a writable buffer; *end may be overwritten. */
static int parse_line(char *line, char *end, struct procmaps_entry *e)
{
	const char *p = line;
	uint64_t major, minor;

	memset(e, 0, sizeof(*e));
	if (parse_hex(&p, end, '-', &e->start) ||
	    parse_hex(&p, end, ' ', &e->end) || e->start >= e->end ||
	    parse_perms(&p, end, &e->perms) ||
	    parse_hex(&p, end, ' ', &e->offset) ||
	    parse_hex(&p, end, ':', &major) ||
	    parse_hex(&p, end, ' ', &minor) ||
	    major > 0xfff || minor > 0xfffff ||
	    parse_dec(&p, end, &e->ino))
		return -EINVAL;
	e->dev = makedev((unsigned int)major, (unsigned int)minor);
	while (p < end && *p == ' ')
		p++;
	/* The path is the rest of the line: it may contain spaces. */
	set_path(e, line + (p - line), end);
	return 0;
}

static int cmp_start(const void *a, const void *b)
{
	const struct procmaps_entry *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The kernel emits sorted, disjoint ranges; enforce it for binary search. */
static void sort_and_drop_overlaps(struct procmaps *pm)
{
	size_t i, w = 0;

	qsort(pm->ents, pm->n, sizeof(*pm->ents), cmp_start);
	for (i = 0; i < pm->n; i++) {
		if (w > 0 && pm->ents[i].start < pm->ents[w - 1].end) {
			pm->bad++;
			continue;
		}
		pm->ents[w++] = pm->ents[i];
	}
	pm->n = w;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 1;
	const char *p = s, *end = s + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

static void parse_all(struct procmaps *pm, size_t len)
{
	char *p = pm->text, *end = pm->text + len;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;

		if (le == p) {
			/* empty line: tolerated, not data */
		} else if (le - p > PROCMAPS_MAX_LINE ||
			   parse_line(p, le, &pm->ents[pm->n]) < 0) {
			pm->bad++;
		} else {
			pm->n++;
		}
		p = le + 1;
	}
}

int procmaps_parse(const char *buf, size_t len, struct procmaps **out)
{
	struct procmaps *pm;
	int ret = -ENOMEM;

	*out = NULL;
	if (len > PROCMAPS_MAX_BYTES)
		return -EFBIG;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	/* +1: parse_line writes a NUL at the end of the last line. */
	pm->text = malloc(len + 1);
	pm->ents = calloc(count_lines(buf, len), sizeof(*pm->ents));
	if (!pm->text || !pm->ents)
		goto out;
	memcpy(pm->text, buf, len);
	pm->text[len] = '\0';
	parse_all(pm, len);
	sort_and_drop_overlaps(pm);
	*out = pm;
	pm = NULL;
	ret = 0;
out:
	procmaps_free(pm);
	return ret;
}

int procmaps_read_text(int fd, size_t cap, char **bufp, size_t *lenp)
{
	size_t len = 0, size = 64 << 10;
	char *buf = malloc(size), *nb;
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == size) {
			if (size >= cap + 1) {
				free(buf);
				return -EFBIG;
			}
			size = size * 2 > cap + 1 ? cap + 1 : size * 2;
			nb = realloc(buf, size);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = pread(fd, buf + len, size - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int procmaps_read_fd(int fd, struct procmaps **out)
{
	char *buf;
	size_t len;
	int ret;

	*out = NULL;
	ret = procmaps_read_text(fd, PROCMAPS_MAX_BYTES, &buf, &len);
	if (ret < 0)
		return ret;
	ret = procmaps_parse(buf, len, out);
	free(buf);
	return ret;
}

const struct procmaps_entry *procmaps_lookup(const struct procmaps *pm,
					     uint64_t ip)
{
	size_t lo = 0, hi = pm->n;

	/* Find the last entry with start <= ip. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pm->ents[mid].start <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || ip >= pm->ents[lo - 1].end)
		return NULL;
	return &pm->ents[lo - 1];
}

size_t procmaps_count(const struct procmaps *pm)
{
	return pm->n;
}

const struct procmaps_entry *procmaps_entry_at(const struct procmaps *pm,
					       size_t i)
{
	return i < pm->n ? &pm->ents[i] : NULL;
}

size_t procmaps_bad_lines(const struct procmaps *pm)
{
	return pm->bad;
}

void procmaps_free(struct procmaps *pm)
{
	if (!pm)
		return;
	free(pm->text);
	free(pm->ents);
	free(pm);
}

/*
 * Debian 12's linux/fs.h predates PROCMAP_QUERY (Linux 6.11); this is the
 * uapi layout from include/uapi/linux/fs.h. The size field versions it, so
 * a newer kernel accepts this older, smaller struct.
 */
#ifndef PROCMAP_QUERY
struct procmap_query {
	__u64 size;
	__u64 query_flags;
	__u64 query_addr;
	__u64 vma_start;
	__u64 vma_end;
	__u64 vma_flags;
	__u64 vma_page_size;
	__u64 vma_offset;
	__u64 inode;
	__u32 dev_major;
	__u32 dev_minor;
	__u32 vma_name_size;
	__u32 build_id_size;
	__u64 vma_name_addr;
	__u64 build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#define PROCMAP_QUERY_VMA_READABLE	0x01
#define PROCMAP_QUERY_VMA_WRITABLE	0x02
#define PROCMAP_QUERY_VMA_EXECUTABLE	0x04
#define PROCMAP_QUERY_VMA_SHARED	0x08
#endif
_Static_assert(sizeof(struct procmap_query) == 104, "procmap_query v1 size");

static uint32_t query_perms(__u64 f)
{
	uint32_t p = 0;

	p |= (f & PROCMAP_QUERY_VMA_READABLE) ? PROCMAPS_R : 0;
	p |= (f & PROCMAP_QUERY_VMA_WRITABLE) ? PROCMAPS_W : 0;
	p |= (f & PROCMAP_QUERY_VMA_EXECUTABLE) ? PROCMAPS_X : 0;
	p |= (f & PROCMAP_QUERY_VMA_SHARED) ? PROCMAPS_S : PROCMAPS_P;
	return p;
}

int procmaps_query(int fd, uint64_t ip, struct procmaps_query_result *out)
{
	struct procmap_query q;
	struct procmaps_entry *e = &out->e;

	memset(out, 0, sizeof(*out));
	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.query_addr = ip;
	q.vma_name_addr = (__u64)(uintptr_t)out->path;
	q.vma_name_size = sizeof(out->path);
	q.build_id_addr = (__u64)(uintptr_t)out->build_id;
	q.build_id_size = sizeof(out->build_id);
	if (ioctl(fd, PROCMAP_QUERY, &q) < 0)
		return -errno;
	/* Do not trust the kernel's lengths beyond our buffers either. */
	out->path[sizeof(out->path) - 1] = '\0';
	out->build_id_len = q.build_id_size <= sizeof(out->build_id) ?
			    q.build_id_size : 0;
	e->start = q.vma_start;
	e->end = q.vma_end;
	e->offset = q.vma_offset;
	e->dev = makedev(q.dev_major, q.dev_minor);
	e->ino = q.inode;
	e->perms = query_perms(q.vma_flags);
	set_path(e, out->path, out->path + strlen(out->path));
	return 0;
}
