// SPDX-License-Identifier: BSD-2-Clause
/*
 * sink_local.c - local folder sink with an in-memory retention index.
 *
 * The index lists every profile file the sink knows, oldest first, as
 * (timestamp ms, collision counter, service): the file name is derived
 * from the first two, so it is never stored. Files whose names are not in
 * our exact format are neither counted nor deleted: we only remove what
 * we could have written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sink_local.h"
#include "utf8.h"

#define SL_TMP_PREFIX	".tmp-"
#define SL_SUFFIX	".pb.gz"
/* "20261121T203500.123Z-4294967295.pb.gz" + NUL */
#define SL_NAME_SIZE	48
#define SL_TS_LEN	20	/* "20261121T203500.123Z" */
/* Enough for any burst of profiles in one millisecond. */
#define SL_MAX_SEQ	100000u
#define SL_TMP_TRIES	100
#define SL_DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct sl_entry {
	int64_t ms;
	uint32_t seq;
	uint32_t svc;	/* index into sink_local.svcs */
	uint64_t size;
};

struct sink_local {
	int dirfd;
	uint64_t max_files, max_bytes;
	struct sl_entry *ents;	/* live entries are [head, n), sorted */
	size_t head, n, cap;
	char **svcs;		/* service directory names seen */
	size_t n_svcs, cap_svcs;
	uint64_t tmp_counter;
	struct sink_local_stats st;
};

/* --- names --------------------------------------------------------------- */

void sink_local_service_dir(const char *service_name, char *out)
{
	const unsigned char *in = (const unsigned char *)service_name;
	size_t len = strlen(service_name), i = 0, o = 0, k;

	while (i < len) {
		k = utf8_seq_len(in + i, len - i);
		if (o + (k ? k : 1) > SINK_LOCAL_MAX_SERVICE_LEN)
			break;	/* never cut a UTF-8 sequence in half */
		if (k > 1 || (k == 1 && in[i] > 0x20 && in[i] < 0x7f &&
			      in[i] != '/')) {
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
			continue;
		}
		out[o++] = '_';	/* control, space, '/', invalid UTF-8 */
		i += k ? k : 1;
	}
	out[o] = '\0';
	/* A leading '.' covers ".", ".." and hidden names (and our temps). */
	if (out[0] == '.')
		out[0] = '_';
	if (o == 0)
		strcpy(out, "unspecified");
}

static void sl_file_name(int64_t ms, uint32_t seq, char *out)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	int n;

	(void)gmtime_r(&secs, &tm);
	n = snprintf(out, SL_NAME_SIZE, "%04d%02d%02dT%02d%02d%02d.%03dZ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	if (seq)
		n += snprintf(out + n, SL_NAME_SIZE - n, "-%u", seq);
	snprintf(out + n, SL_NAME_SIZE - n, "%s", SL_SUFFIX);
}

static int sl_digits(const char *s, int n)
{
	int v = 0;

	for (; n > 0; n--, s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Parse a name sl_file_name could have produced; -EINVAL otherwise. */
static int sl_parse_name(const char *name, int64_t *ms, uint32_t *seq)
{
	struct tm tm = { 0 };
	char canon[SL_NAME_SIZE];
	long long sec;
	unsigned long sq = 0;

	if (strlen(name) < SL_TS_LEN || name[8] != 'T' || name[15] != '.' ||
	    name[19] != 'Z')
		return -EINVAL;
	tm.tm_year = sl_digits(name, 4) - 1900;
	tm.tm_mon = sl_digits(name + 4, 2) - 1;
	tm.tm_mday = sl_digits(name + 6, 2);
	tm.tm_hour = sl_digits(name + 9, 2);
	tm.tm_min = sl_digits(name + 11, 2);
	tm.tm_sec = sl_digits(name + 13, 2);
	if (name[SL_TS_LEN] == '-')
		sq = strtoul(name + SL_TS_LEN + 1, NULL, 10);
	sec = timegm(&tm);
	if (sec < 0 || sl_digits(name + 16, 3) < 0 || sq > SL_MAX_SEQ)
		return -EINVAL;
	*ms = sec * 1000 + sl_digits(name + 16, 3);
	*seq = (uint32_t)sq;
	/* Round trip: rejects 20261399..., "-01", trailing junk. */
	sl_file_name(*ms, *seq, canon);
	return strcmp(canon, name) == 0 ? 0 : -EINVAL;
}

/* --- index --------------------------------------------------------------- */

static int sl_cmp(const struct sl_entry *a, const struct sl_entry *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return a->svc < b->svc ? -1 : a->svc > b->svc;
}

static int sl_qsort_cmp(const void *a, const void *b)
{
	return sl_cmp(a, b);
}

/*
 * Services are few (one per target), so a linear search per write is
 * cheaper than a hash table would be worth.
 */
static int sl_service_index(struct sink_local *s, const char *name,
			    uint32_t *idx)
{
	size_t i;
	char **nv;

	for (i = 0; i < s->n_svcs; i++)
		if (strcmp(s->svcs[i], name) == 0)
			goto found;
	if (s->n_svcs == s->cap_svcs) {
		size_t ncap = s->cap_svcs ? s->cap_svcs * 2 : 16;

		nv = reallocarray(s->svcs, ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->svcs = nv;
		s->cap_svcs = ncap;
	}
	s->svcs[i] = strdup(name);
	if (!s->svcs[i])
		return -ENOMEM;
	s->n_svcs++;
found:
	*idx = (uint32_t)i;
	return 0;
}

static int sl_reserve(struct sink_local *s)
{
	struct sl_entry *ne;
	size_t ncap;

	if (s->head && s->n == s->cap) {
		/* Reuse the room retention left at the front. */
		memmove(s->ents, s->ents + s->head,
			(s->n - s->head) * sizeof(*s->ents));
		s->n -= s->head;
		s->head = 0;
	}
	if (s->n < s->cap)
		return 0;
	ncap = s->cap ? s->cap * 2 : 256;
	ne = reallocarray(s->ents, ncap, sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	s->ents = ne;
	s->cap = ncap;
	return 0;
}

/* Append; keep sorted with a binary search when the clock went back. */
static int sl_insert(struct sink_local *s, const struct sl_entry *e,
		     bool sorted)
{
	size_t lo, hi, mid;
	int ret = sl_reserve(s);

	if (ret)
		return ret;
	lo = s->head;
	hi = s->n;
	if (sorted && hi > lo && sl_cmp(&s->ents[hi - 1], e) > 0) {
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (sl_cmp(&s->ents[mid], e) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		memmove(&s->ents[lo + 1], &s->ents[lo],
			(s->n - lo) * sizeof(*e));
	} else {
		lo = s->n;
	}
	s->ents[lo] = *e;
	s->n++;
	s->st.files++;
	s->st.total_bytes += e->size;
	return 0;
}

static void sl_remove_at(struct sink_local *s, size_t pos)
{
	s->st.files--;
	s->st.total_bytes -= s->ents[pos].size;
	if (pos == s->head) {
		s->head++;
		return;
	}
	memmove(&s->ents[pos], &s->ents[pos + 1],
		(s->n - pos - 1) * sizeof(*s->ents));
	s->n--;
}

/* --- retention ----------------------------------------------------------- */

static int sl_unlink_entry(const struct sink_local *s, const struct sl_entry *e)
{
	char name[SL_NAME_SIZE];
	int fd, ret = 0;

	fd = openat(s->dirfd, s->svcs[e->svc], SL_DIR_FLAGS);
	if (fd < 0)
		return -errno;
	sl_file_name(e->ms, e->seq, name);
	if (unlinkat(fd, name, 0) < 0)
		ret = -errno;
	(void)close(fd);
	return ret;
}

static bool sl_over_limits(const struct sink_local *s)
{
	return s->st.files > s->max_files || s->st.total_bytes > s->max_bytes;
}

/*
 * Delete oldest first until within limits, sparing keep (the file just
 * written; NULL at startup). An entry we fail to delete still leaves the
 * index, or one undeletable file would stall retention forever.
 */
static void sl_retain(struct sink_local *s, const struct sl_entry *keep)
{
	size_t pos;
	int ret;

	while (sl_over_limits(s) && s->st.files > (keep ? 1u : 0u)) {
		pos = s->head;
		if (keep && sl_cmp(&s->ents[pos], keep) == 0)
			pos++;
		ret = sl_unlink_entry(s, &s->ents[pos]);
		if (ret == 0)
			s->st.deleted_by_retention++;
		else if (ret != -ENOENT)
			s->st.errors++;
		sl_remove_at(s, pos);
	}
}

/* --- writing ------------------------------------------------------------- */

static int sl_write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t w;

	while (len) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Create a fresh temporary file in svcfd; its name goes to tmp. */
static int sl_open_tmp(struct sink_local *s, int svcfd, char *tmp, size_t size)
{
	int fd, i;

	for (i = 0; i < SL_TMP_TRIES; i++) {
		snprintf(tmp, size, SL_TMP_PREFIX "%ld-%llu", (long)getpid(),
			 (unsigned long long)s->tmp_counter++);
		fd = openat(svcfd, tmp, O_CREAT | O_EXCL | O_WRONLY |
			    O_CLOEXEC | O_NOFOLLOW, 0640);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

static int sl_fill_tmp(int fd, const void *data, size_t len)
{
	int ret = sl_write_all(fd, data, len);

	/* Data on disk before the rename makes the name visible. */
	if (!ret && fdatasync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

/* Give tmp its final name without ever replacing an existing file. */
static int sl_publish(int svcfd, const char *tmp, const char *name)
{
	if (renameat2(svcfd, tmp, svcfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* No RENAME_NOREPLACE on this fs or kernel: link() also refuses to
	 * replace, then drop the temporary name. */
	if (linkat(svcfd, tmp, svcfd, name, 0) < 0)
		return -errno;
	(void)unlinkat(svcfd, tmp, 0);
	return 0;
}

/* Pick the first free collision counter for e->ms and publish. */
static int sl_publish_unique(int svcfd, const char *tmp, struct sl_entry *e)
{
	char name[SL_NAME_SIZE];
	int ret = -EEXIST;

	for (e->seq = 0; e->seq <= SL_MAX_SEQ && ret == -EEXIST; e->seq++) {
		sl_file_name(e->ms, e->seq, name);
		ret = sl_publish(svcfd, tmp, name);
		if (ret == 0)
			return 0;
	}
	return ret;
}

static int sl_open_service(const struct sink_local *s, const char *dir)
{
	int fd;

	if (mkdirat(s->dirfd, dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	/* O_NOFOLLOW: a symlink planted in the output folder is refused
	 * (ELOOP or ENOTDIR), so nothing is written outside it. */
	fd = openat(s->dirfd, dir, SL_DIR_FLAGS);
	return fd >= 0 ? fd : -errno;
}

static int sl_store(struct sink_local *s, int svcfd, struct sl_entry *e,
		    const void *data, size_t len)
{
	char tmp[64];
	int fd, ret;

	fd = sl_open_tmp(s, svcfd, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	ret = sl_fill_tmp(fd, data, len);
	if (!ret)
		ret = sl_publish_unique(svcfd, tmp, e);
	if (ret)
		(void)unlinkat(svcfd, tmp, 0);
	return ret;
}

static int sl_write(struct sink_local *s, const char *service_name,
		    int64_t time_nanos, const void *data, size_t len)
{
	char dir[SINK_LOCAL_SERVICE_SIZE];
	struct sl_entry e = { .size = len };
	int svcfd, ret;

	sink_local_service_dir(service_name ? service_name : "", dir);
	e.ms = time_nanos > 0 ? time_nanos / 1000000 : 0;
	ret = sl_service_index(s, dir, &e.svc);
	if (ret)
		return ret;
	svcfd = sl_open_service(s, dir);
	if (svcfd < 0)
		return svcfd;
	ret = sl_store(s, svcfd, &e, data, len);
	(void)close(svcfd);
	if (ret)
		return ret;
	s->st.written++;
	s->st.bytes += len;
	ret = sl_insert(s, &e, true);
	if (ret)
		return ret;	/* on disk but not indexed: counted as error */
	sl_retain(s, &e);
	return 0;
}

int sink_local_write(struct sink_local *s, const char *service_name,
		     int64_t time_nanos, const void *data, size_t len)
{
	int ret = sl_write(s, service_name, time_nanos, data, len);

	if (ret)
		s->st.errors++;
	return ret;
}

/* --- startup scan -------------------------------------------------------- */

static int sl_scan_file(struct sink_local *s, int svcfd, uint32_t svc,
			const char *name)
{
	struct sl_entry e = { .svc = svc };
	struct stat st;

	if (strncmp(name, SL_TMP_PREFIX, strlen(SL_TMP_PREFIX)) == 0) {
		/* Left by a crash between create and rename. */
		(void)unlinkat(svcfd, name, 0);
		return 0;
	}
	if (sl_parse_name(name, &e.ms, &e.seq))
		return 0;
	if (fstatat(svcfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	e.size = (uint64_t)st.st_size;
	return sl_insert(s, &e, false);
}

static int sl_scan_service(struct sink_local *s, const char *dir)
{
	struct dirent *de;
	uint32_t svc;
	DIR *d;
	int fd, ret;

	fd = openat(s->dirfd, dir, SL_DIR_FLAGS);
	if (fd < 0)
		return 0;	/* a file or a symlink: not ours */
	ret = sl_service_index(s, dir, &svc);
	d = ret ? NULL : fdopendir(fd);
	if (!d) {
		(void)close(fd);
		return ret ? ret : -errno;
	}
	while (!ret && (de = readdir(d)))
		ret = sl_scan_file(s, dirfd(d), svc, de->d_name);
	(void)closedir(d);
	return ret;
}

static int sl_scan(struct sink_local *s)
{
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	/* A second fd: closedir() closes it, the caller's dirfd stays. */
	fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		(void)close(fd);
		return ret;
	}
	while (!ret && (de = readdir(d)))
		if (de->d_name[0] != '.')	/* never a service dir */
			ret = sl_scan_service(s, de->d_name);
	(void)closedir(d);
	if (!ret && s->n > s->head)
		qsort(s->ents + s->head, s->n - s->head, sizeof(*s->ents),
		      sl_qsort_cmp);
	return ret;
}

/* --- lifetime ------------------------------------------------------------ */

struct sink_local *sink_local_new(int dirfd, uint64_t max_files,
				  uint64_t max_bytes)
{
	struct sink_local *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return NULL;
	s->dirfd = dirfd;
	s->max_files = max_files ? max_files : SINK_LOCAL_DEFAULT_MAX_FILES;
	s->max_bytes = max_bytes ? max_bytes : SINK_LOCAL_DEFAULT_MAX_BYTES;
	ret = sl_scan(s);
	if (ret) {
		sink_local_free(s);
		errno = -ret;
		return NULL;
	}
	sl_retain(s, NULL);
	return s;
}

void sink_local_free(struct sink_local *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n_svcs; i++)
		free(s->svcs[i]);
	free(s->svcs);
	free(s->ents);
	free(s);
}

void sink_local_stats(const struct sink_local *s, struct sink_local_stats *st)
{
	*st = s->st;
}
