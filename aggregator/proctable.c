/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proctable.h"

struct proctable {
	struct proc **buckets;
	uint32_t nbuckets;	/* power of two */
	uint32_t capacity;
	struct proc *lru_head;	/* most recently used */
	struct proc *lru_tail;
	proc_open_fn open_fn;
	proc_open_files_fn open_files_fn;
	void *ctx;
	struct proctable_stats st;
};

static uint32_t pt_hash(const struct proctable *pt, uint32_t pid, uint64_t st)
{
	uint64_t h = (pid * 0x9E3779B97F4A7C15ull) ^ (st * 0xC2B2AE3D27D4EB4Full);

	return (uint32_t)(h >> 32) & (pt->nbuckets - 1);
}

struct proctable *proctable_new(uint32_t capacity, proc_open_fn open_fn,
				void *ctx)
{
	struct proctable *pt;
	uint32_t n = 16;

	if (capacity == 0)
		return NULL;
	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return NULL;
	while (n < capacity * 2 && n < (1u << 24))
		n <<= 1;
	pt->buckets = calloc(n, sizeof(*pt->buckets));
	if (!pt->buckets) {
		free(pt);
		return NULL;
	}
	pt->nbuckets = n;
	pt->capacity = capacity;
	pt->open_fn = open_fn;
	pt->ctx = ctx;
	return pt;
}

static void proc_release(struct proc *p)
{
	procmaps_free(p->maps);
	if (p->maps_fd >= 0)
		close(p->maps_fd);
	free(p->cgroup);
	free(p->exe);
	free(p->cwd);
	free(p->cmdline);
	labelset_clear(&p->target);
	free(p);
}

static void lru_unlink(struct proctable *pt, struct proc *p)
{
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else
		pt->lru_head = p->lru_next;
	if (p->lru_next)
		p->lru_next->lru_prev = p->lru_prev;
	else
		pt->lru_tail = p->lru_prev;
	p->lru_prev = p->lru_next = NULL;
}

static void lru_push_front(struct proctable *pt, struct proc *p)
{
	p->lru_prev = NULL;
	p->lru_next = pt->lru_head;
	if (pt->lru_head)
		pt->lru_head->lru_prev = p;
	pt->lru_head = p;
	if (!pt->lru_tail)
		pt->lru_tail = p;
}

static void pt_remove(struct proctable *pt, struct proc *p)
{
	struct proc **pp = &pt->buckets[pt_hash(pt, p->pid, p->start_time)];

	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	lru_unlink(pt, p);
	pt->st.live--;
	proc_release(p);
}

struct proctable *proctable_new_files(uint32_t capacity,
				      proc_open_files_fn open_fn, void *ctx)
{
	struct proctable *pt = proctable_new(capacity, NULL, ctx);

	if (pt)
		pt->open_files_fn = open_fn;
	return pt;
}

void proctable_free(struct proctable *pt)
{
	if (!pt)
		return;
	while (pt->lru_head)
		pt_remove(pt, pt->lru_head);
	free(pt->buckets);
	free(pt);
}

/* Read a small text fd (cgroup) into a NUL-terminated string, capped. */
static char *read_small(int fd)
{
	char *buf = malloc(PROC_CGROUP_MAX + 1);
	ssize_t n;

	if (!buf)
		return NULL;
	n = pread(fd, buf, PROC_CGROUP_MAX, 0);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The exe/cwd path the probe read with readlink, as the kernel prints it. */
static char *fd_path(int fd)
{
	char buf[PATH_MAX];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n)	/* a path has no NUL */
		return NULL;
	return strdup(buf);
}

/* argv joined by spaces, as Alloy's discovery.process shows it; capped. */
static char *read_cmdline(int fd)
{
	char *buf = malloc(PROC_CMDLINE_MAX + 1);
	ssize_t n, i;

	if (!buf)
		return NULL;
	n = pread(fd, buf, PROC_CMDLINE_MAX, 0);
	if (n < 0)
		n = 0;
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return buf;
}

static int proc_open(struct proctable *pt, const struct proc *p,
		     struct proc_files *f)
{
	*f = (struct proc_files){ -1, -1, -1, -1, -1, 0, false };
	if (pt->open_files_fn)
		return pt->open_files_fn(pt->ctx, p->pid, p->start_time, f);
	return pt->open_fn(pt->ctx, p->pid, p->start_time, &f->maps_fd,
			   &f->cgroup_fd);
}

/* Everything but maps: read what we need now, keep no fd. */
static void proc_load_facts(struct proc *p, struct proc_files *f)
{
	p->cgroup = read_small(f->cgroup_fd);
	if (p->cgroup)
		(void)containerid_from_cgroup(p->cgroup, p->container_id);
	if (f->exe_fd >= 0)
		p->exe = fd_path(f->exe_fd);
	if (f->cwd_fd >= 0)
		p->cwd = fd_path(f->cwd_fd);
	if (f->cmdline_fd >= 0)
		p->cmdline = read_cmdline(f->cmdline_fd);
	p->uid = f->uid;
	p->has_uid = f->has_uid;
	if (f->cgroup_fd >= 0)
		close(f->cgroup_fd);
	if (f->exe_fd >= 0)
		close(f->exe_fd);
	if (f->cwd_fd >= 0)
		close(f->cwd_fd);
	if (f->cmdline_fd >= 0)
		close(f->cmdline_fd);
}

static void proc_load(struct proctable *pt, struct proc *p)
{
	struct proc_files f;
	int r;

	r = proc_open(pt, p, &f);
	if (r < 0) {
		p->open_err = r;
		pt->st.open_errors++;
		return;
	}
	proc_load_facts(p, &f);
	p->maps_fd = f.maps_fd;
	r = procmaps_read_fd(f.maps_fd, &p->maps);
	if (r < 0) {
		p->open_err = r;
		p->maps = NULL;
		return;
	}
	pt->st.bad_map_lines += procmaps_bad_lines(p->maps);
}

static struct proc *pt_find(struct proctable *pt, uint32_t pid, uint64_t st)
{
	struct proc *p = pt->buckets[pt_hash(pt, pid, st)];

	while (p && !(p->pid == pid && p->start_time == st))
		p = p->hnext;
	return p;
}

struct proc *proctable_get(struct proctable *pt, uint32_t pid,
			   uint64_t start_time, const char *comm,
			   uint64_t now_ns)
{
	struct proc *p;
	uint32_t b;

	pt->st.lookups++;
	p = pt_find(pt, pid, start_time);
	if (p) {
		pt->st.hits++;
		lru_unlink(pt, p);
		lru_push_front(pt, p);
		return p;
	}
	pt->st.misses++;
	if (pt->st.live >= pt->capacity) {
		pt->st.evictions++;
		pt_remove(pt, pt->lru_tail);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->start_time = start_time;
	p->maps_fd = -1;
	p->refreshed_ns = now_ns;
	snprintf(p->comm, sizeof(p->comm), "%s", comm ? comm : "");
	proc_load(pt, p);
	b = pt_hash(pt, pid, start_time);
	p->hnext = pt->buckets[b];
	pt->buckets[b] = p;
	lru_push_front(pt, p);
	pt->st.live++;
	return p;
}

int proctable_refresh(struct proctable *pt, struct proc *p, uint64_t now_ns)
{
	struct procmaps *pm;

	if (p->maps_fd < 0 || now_ns - p->refreshed_ns < PROC_REFRESH_NS)
		return 0;
	p->refreshed_ns = now_ns;
	/* pread from 0 on the kept fd regenerates the current maps. */
	if (procmaps_read_fd(p->maps_fd, &pm) < 0)
		return 0;
	procmaps_free(p->maps);
	p->maps = pm;
	pt->st.refreshes++;
	return 1;
}

void proctable_forget(struct proctable *pt, uint32_t pid, uint64_t start_time)
{
	struct proc *p = pt_find(pt, pid, start_time);

	if (p)
		pt_remove(pt, p);
}

void proctable_stats(const struct proctable *pt, struct proctable_stats *st)
{
	*st = pt->st;
}
