/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
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

static void proc_load(struct proctable *pt, struct proc *p)
{
	int maps_fd = -1, cg_fd = -1;
	int r;

	r = pt->open_fn(pt->ctx, p->pid, p->start_time, &maps_fd, &cg_fd);
	if (r < 0) {
		p->open_err = r;
		pt->st.open_errors++;
		return;
	}
	p->cgroup = read_small(cg_fd);
	close(cg_fd);
	p->maps_fd = maps_fd;
	r = procmaps_read_fd(maps_fd, &p->maps);
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
