/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symbolize: the address -> frame decisions that sit above the ELF and
 * kallsyms parsers (which have their own suites): fresh mappings, kernel
 * frames, and the fallbacks that keep a sample visible.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolize.h"

/* The maps of this very process, opened as the probe would hand them. */
static int own_files(void *ctx, uint32_t pid, uint64_t st, struct proc_files *f)
{
	(void)ctx;
	(void)pid;
	(void)st;
	*f = (struct proc_files){ .maps_fd = open("/proc/self/maps", O_RDONLY),
				  .cgroup_fd = open("/proc/self/cgroup", O_RDONLY),
				  .exe_fd = -1, .cwd_fd = -1, .cmdline_fd = -1 };
	return f->maps_fd >= 0 && f->cgroup_fd >= 0 ? 0 : -1;
}

static const struct symbolizer_config cfg = { 64, 8, DEMANGLE_NONE };

Test(symbolize, library_loaded_after_the_maps_were_read_is_found)
{
	const char *build = getenv("SPLITPROF_BUILD");
	char lib[PATH_MAX];
	struct proctable *pt = proctable_new_files(4, own_files, NULL);
	struct symbolizer *s = symbolizer_new(&cfg, NULL, -1);
	struct symbolizer_stats st;
	struct sym_frame f;
	struct proc *p;
	void *h, *fn;

	snprintf(lib, sizeof(lib), "%s/workloads/libwl.so", build ? build : "build");
	if (access(lib, R_OK) != 0)
		cr_skip_test("%s not built (make workloads)", lib);
	p = proctable_get(pt, (uint32_t)getpid(), 1, "t", 0);
	cr_assert_not_null(p->maps);
	h = dlopen(lib, RTLD_NOW);	/* mapped after the table read the maps */
	cr_assert_not_null(h, "%s", dlerror());
	fn = dlsym(h, "lib_hot");
	cr_assert_not_null(fn);
	symbolize_user(s, pt, p, (uint64_t)(uintptr_t)fn, true, 0, &f);
	cr_assert_not_null(f.file, "fresh mapping not found");
	cr_expect_not_null(strstr(f.file, "libwl.so"), "file %s", f.file);
	symbolizer_stats(s, &st);
	cr_expect_eq(st.unknown_mapping, 0);
	{
		struct proctable_stats ps;

		proctable_stats(pt, &ps);
		/* PROCMAP_QUERY where the kernel has it (>= 6.11), else text */
		cr_expect_geq(st.map_queries + ps.refreshes, 1);
		if (access("/proc/self/maps", R_OK) == 0)
			cr_log_info("map_queries %llu, text refreshes %llu",
				    (unsigned long long)st.map_queries,
				    (unsigned long long)ps.refreshes);
	}
	/* without a probe the file cannot be opened: named by its module */
	cr_expect_str_eq(f.func, "libwl.so");
	cr_expect(!f.named);
	symbolizer_free(s);
	proctable_free(pt);
	dlclose(h);
}

Test(symbolize, address_in_no_mapping_is_unknown_not_a_crash)
{
	struct proctable *pt = proctable_new_files(4, own_files, NULL);
	struct symbolizer *s = symbolizer_new(&cfg, NULL, -1);
	struct symbolizer_stats st;
	struct sym_frame f;
	struct proc *p = proctable_get(pt, (uint32_t)getpid(), 1, "t", 0);

	symbolize_user(s, pt, p, 0x10, true, 0, &f);
	cr_expect_str_eq(f.func, "[unknown]");
	cr_expect_null(f.file);
	symbolize_user(s, pt, p, ~0ull, false, 0, &f);
	cr_expect_str_eq(f.func, "[unknown]");
	symbolizer_stats(s, &st);
	cr_expect_eq(st.unknown_mapping, 2);
	symbolizer_free(s);
	proctable_free(pt);
}

Test(symbolize, kernel_frames_named_from_kallsyms)
{
	struct symbolizer *s;
	struct sym_frame f;
	char line[512], name[256], type;
	unsigned long long addr = 0;
	FILE *k = fopen("/proc/kallsyms", "r");

	cr_assert_not_null(k);
	while (fgets(line, sizeof(line), k))
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) == 3 &&
		    strcmp(name, "do_syscall_64") == 0)
			break;
	fclose(k);
	if (addr == 0)
		cr_skip_test("kallsyms addresses hidden (not root or kptr_restrict)");
	s = symbolizer_new(&cfg, NULL, open("/proc/kallsyms", O_RDONLY));
	symbolize_kernel(s, addr + 4, false, &f);
	cr_expect_str_eq(f.func, "do_syscall_64");
	cr_expect_str_eq(f.file, "vmlinux");
	cr_expect(f.kernel && f.named);
	symbolizer_free(s);
	/* without kallsyms: still a kernel frame on vmlinux, unnamed */
	s = symbolizer_new(&cfg, NULL, -1);
	symbolize_kernel(s, addr + 4, false, &f);
	cr_expect_str_eq(f.func, "[kernel]");
	cr_expect_str_eq(f.file, "vmlinux");
	cr_expect(!f.named);
	symbolizer_free(s);
}
