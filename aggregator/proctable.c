/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lru.h"
#include "proctable.h"

struct proctable {
	struct lru *procs;	/* struct proc_key -> struct proc, LRU */
	proc_open_fn open_fn;
	proc_open_files_fn open_files_fn;
	void *ctx;
	struct proctable_stats st;
};

/* (pid, start time): a reused pid is another key. */
struct proc_key {
	uint64_t start_time;
	uint32_t pid;
	uint32_t zero;
};

static struct proc_key key_of(uint32_t pid, uint64_t start_time)
{
	return (struct proc_key){ .start_time = start_time, .pid = pid };
}

static void proc_release(void *v)
{
	struct proc *p = v;

	if (!p)
		return;
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

struct proctable *proctable_new(uint32_t capacity, proc_open_fn open_fn,
				void *ctx)
{
	struct proctable *pt = calloc(1, sizeof(*pt));

	if (!pt)
		return NULL;
	pt->procs = lru_new(capacity, proc_release);
	if (!pt->procs) {
		free(pt);
		return NULL;
	}
	pt->open_fn = open_fn;
	pt->ctx = ctx;
	return pt;
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
	lru_free(pt->procs);
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

struct proc *proctable_get(struct proctable *pt, uint32_t pid,
			   uint64_t start_time, const char *comm,
			   uint64_t now_ns)
{
	struct proc_key k = key_of(pid, start_time);
	struct proc *p;
	bool found;

	p = lru_get(pt->procs, &k, sizeof(k), &found);
	if (found)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->start_time = start_time;
	p->maps_fd = -1;
	p->refreshed_ns = now_ns;
	snprintf(p->comm, sizeof(p->comm), "%s", comm ? comm : "");
	proc_load(pt, p);
	/* may evict the least recently used process, never this one */
	if (lru_put(pt->procs, &k, sizeof(k), p) < 0) {
		proc_release(p);
		return NULL;
	}
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
	struct proc_key k = key_of(pid, start_time);

	(void)lru_del(pt->procs, &k, sizeof(k));
}

void proctable_stats(const struct proctable *pt, struct proctable_stats *st)
{
	struct lru_stats ls;

	lru_get_stats(pt->procs, &ls);
	*st = pt->st;
	st->hits = ls.hits;
	st->misses = ls.misses;
	st->evictions = ls.evictions;
	st->lookups = ls.hits + ls.misses;
	st->live = lru_len(pt->procs);
}
