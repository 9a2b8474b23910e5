/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proctable.h"

struct fake {
	int calls;
	int fail;
	const char *maps;
};

static int text_fd(const char *text)
{
	int fd = memfd_create("t", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static int fake_open(void *ctx, uint32_t pid, uint64_t st, int *m, int *c)
{
	struct fake *f = ctx;

	(void)pid;
	(void)st;
	f->calls++;
	if (f->fail)
		return -ESRCH;
	*m = text_fd(f->maps);
	*c = text_fd("0::/system.slice/x.service\n");
	return 0;
}

static int exe_text_fd(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	return text_fd(exe);
}

static int fake_open_files(void *ctx, uint32_t pid, uint64_t st,
			   struct proc_files *pf)
{
	struct fake *f = ctx;

	(void)pid;
	(void)st;
	f->calls++;
	if (f->fail)
		return -ESRCH;
	pf->maps_fd = text_fd(f->maps);
	pf->cgroup_fd = text_fd("0::/system.slice/docker-"
				"0123456789abcdef0123456789abcdef"
				"0123456789abcdef0123456789abcdef.scope\n");
	/* as the probe sends them: the path text (from readlink) in a memfd */
	pf->exe_fd = exe_text_fd();
	pf->cwd_fd = text_fd("/");
	pf->cmdline_fd = memfd_create("c", MFD_CLOEXEC);
	cr_assert_eq(write(pf->cmdline_fd, "app\0--flag\0x\0", 14), 14);
	pf->uid = 1000;
	pf->has_uid = true;
	return 0;
}

static const char *MAPS =
	"5581a000-5581b000 r-xp 00001000 08:01 1234 /usr/bin/app\n"
	"this line is garbage\n";

Test(proctable, new_entry_loads_maps_and_cgroup)
{
	struct fake f = { .maps = MAPS };
	struct proctable *pt = proctable_new(4, fake_open, &f);
	struct proc *p = proctable_get(pt, 10, 111, "app", 0);

	cr_assert_not_null(p->maps);
	cr_assert_not_null(procmaps_lookup(p->maps, 0x5581a010));
	cr_assert_str_eq(p->cgroup, "0::/system.slice/x.service\n");
	cr_assert_str_eq(p->comm, "app");
	cr_assert_eq(f.calls, 1);
	proctable_free(pt);
}

Test(proctable, same_pid_new_start_time_is_another_process)
{
	struct fake f = { .maps = MAPS };
	struct proctable *pt = proctable_new(4, fake_open, &f);
	struct proctable_stats st;

	proctable_get(pt, 10, 111, "a", 0);
	proctable_get(pt, 10, 111, "a", 0);
	proctable_get(pt, 10, 222, "b", 0);	/* reused pid */
	proctable_stats(pt, &st);
	cr_assert_eq(f.calls, 2);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 2);
	cr_assert_eq(st.live, 2);
	proctable_free(pt);
}

Test(proctable, lru_evicts_least_recent)
{
	struct fake f = { .maps = MAPS };
	struct proctable *pt = proctable_new(2, fake_open, &f);
	struct proctable_stats st;

	proctable_get(pt, 1, 1, "a", 0);
	proctable_get(pt, 2, 2, "b", 0);
	proctable_get(pt, 1, 1, "a", 0);	/* 2 is now least recent */
	proctable_get(pt, 3, 3, "c", 0);	/* evicts 2 */
	cr_assert_eq(f.calls, 3);
	proctable_get(pt, 1, 1, "a", 0);	/* still cached */
	cr_assert_eq(f.calls, 3);
	proctable_get(pt, 2, 2, "b", 0);	/* re-opened */
	cr_assert_eq(f.calls, 4);
	proctable_stats(pt, &st);
	cr_assert_eq(st.evictions, 2);
	cr_assert_eq(st.live, 2);
	proctable_free(pt);
}

Test(proctable, refused_open_is_counted_not_fatal)
{
	struct fake f = { .maps = MAPS, .fail = 1 };
	struct proctable *pt = proctable_new(2, fake_open, &f);
	struct proctable_stats st;
	struct proc *p = proctable_get(pt, 9, 9, "gone", 0);

	cr_assert_not_null(p);
	cr_assert_null(p->maps);
	cr_assert_eq(p->open_err, -ESRCH);
	cr_assert_eq(proctable_refresh(pt, p, 5 * PROC_REFRESH_NS), 0);
	proctable_stats(pt, &st);
	cr_assert_eq(st.open_errors, 1);
	proctable_free(pt);
}

Test(proctable, refresh_is_rate_limited)
{
	struct fake f = { .maps = MAPS };
	struct proctable *pt = proctable_new(2, fake_open, &f);
	struct proc *p = proctable_get(pt, 5, 5, "a", 1000);

	cr_assert_eq(proctable_refresh(pt, p, 1000 + PROC_REFRESH_NS / 2), 0);
	cr_assert_eq(proctable_refresh(pt, p, 1000 + PROC_REFRESH_NS), 1);
	cr_assert_not_null(p->maps);
	proctable_free(pt);
}

Test(proctable, forget_drops_entry)
{
	struct fake f = { .maps = MAPS };
	struct proctable *pt = proctable_new(2, fake_open, &f);
	struct proctable_stats st;

	proctable_get(pt, 5, 5, "a", 0);
	proctable_forget(pt, 5, 5);
	proctable_forget(pt, 6, 6);	/* unknown: no-op */
	proctable_stats(pt, &st);
	cr_assert_eq(st.live, 0);
	proctable_get(pt, 5, 5, "a", 0);
	cr_assert_eq(f.calls, 2);
	proctable_free(pt);
}

Test(proctable, files_callback_fills_discovery_facts)
{
	struct fake f = { .maps = MAPS };
	struct proctable *pt = proctable_new_files(4, fake_open_files, &f);
	struct proc *p = proctable_get(pt, 10, 111, "app", 0);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	cr_assert_not_null(p->maps);
	cr_expect_str_eq(p->container_id, "0123456789abcdef0123456789abcdef"
			 "0123456789abcdef0123456789abcdef");
	cr_expect_str_eq(p->exe, exe);
	cr_expect_str_eq(p->cwd, "/");
	cr_expect_str_eq(p->cmdline, "app --flag x");
	cr_expect(p->has_uid);
	cr_expect_eq(p->uid, 1000);
	cr_expect_eq(p->target_state, 0);
	cr_assert_eq(labelset_set(&p->target, "service_name", "x"), 0);
	proctable_free(pt);	/* frees the cached target too (LSan) */
}
