/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../aggregator/elfsym.h"
#include "../aggregator/procmaps.h"

/* Fixtures are compiled at test time: no binaries in the repository. */
static const char fixture_src[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"__attribute__((noinline)) int sp_fix_alpha(int x) { return x * 3 + 1; }\n"
	"__attribute__((noinline)) int sp_fix_beta(int x) {\n"
	"	return sp_fix_alpha(x) ^ 0x55;\n"
	"}\n"
	"#ifndef SP_LIB\n"
	"int main(void) {\n"
	"	char buf[4096]; size_t n; FILE *f;\n"
	"	printf(\"%p %p\\n\", (void *)sp_fix_alpha, (void *)sp_fix_beta);\n"
	"	f = fopen(\"/proc/self/maps\", \"r\");\n"
	"	if (!f) return 1;\n"
	"	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) fwrite(buf, 1, n, stdout);\n"
	"	return sp_fix_beta(1) == 1234;\n"
	"}\n"
	"#endif\n";

static char fixdir[64];

static void fixture_setup(void)
{
	char path[128];
	FILE *f;

	strcpy(fixdir, "/tmp/sp-elfsym-XXXXXX");
	cr_assert_not_null(mkdtemp(fixdir));
	snprintf(path, sizeof(path), "%s/fix.c", fixdir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(fixture_src, f);
	fclose(f);
}

static void fixture_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fixdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", fixdir);
}

/* Runs a shell command inside the fixture directory. */
static void sh(const char *cmdline)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cd %s && %s", fixdir, cmdline);
	cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void build(const char *name, const char *flags)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cc -O1 -g -Wl,--build-id %s -o %s/%s %s/fix.c", flags, fixdir,
		 name, fixdir);
	cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static struct elfsym *open_path(const char *path, int *err)
{
	struct elfsym *es = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s", path);
	*err = elfsym_open_fd(fd, &es);
	close(fd);
	return es;
}

static struct elfsym *open_fixture(const char *name)
{
	char path[128];
	struct elfsym *es;
	int err;

	snprintf(path, sizeof(path), "%s/%s", fixdir, name);
	es = open_path(path, &err);
	cr_assert_eq(err, 0, "elfsym_open_fd(%s) = %d", name, err);
	return es;
}

/* maps + mapping offset + PT_LOAD + symbol lookup, the production path. */
static const char *symbolize(const struct procmaps *pm, uint64_t ip,
			     uint64_t *off)
{
	const struct procmaps_entry *e = procmaps_lookup(pm, ip);
	struct elfsym *es;
	uint64_t vaddr;
	const char *name;
	static char out[256];
	int err;

	cr_assert_not_null(e, "no mapping for %#" PRIx64, ip);
	es = open_path(e->path, &err);
	cr_assert_eq(err, 0);
	cr_assert_eq(elfsym_ip_to_vaddr(es, e->start, e->offset, ip, &vaddr), 0);
	name = elfsym_lookup(es, vaddr, off);
	snprintf(out, sizeof(out), "%s", name ? name : "(null)");
	elfsym_free(es);
	return out;
}

/* Runs a fixture that prints its function addresses and its own maps. */
static void check_executable(const char *name, const char *flags)
{
	char cmd[256], *text = NULL;
	size_t len = 0, cap = 0, n;
	unsigned long long a, b;
	struct procmaps *pm;
	uint64_t off;
	FILE *p;

	build(name, flags);
	snprintf(cmd, sizeof(cmd), "%s/%s", fixdir, name);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%llx %llx\n", &a, &b), 2);
	do {
		if (len == cap)
			text = realloc(text, cap = cap ? cap * 2 : 65536);
		n = fread(text + len, 1, cap - len, p);
		len += n;
	} while (n > 0);
	pclose(p);
	cr_assert_eq(procmaps_parse(text, len, &pm), 0);
	cr_expect_str_eq(symbolize(pm, a, &off), "sp_fix_alpha");
	cr_expect_eq(off, 0);
	cr_expect_str_eq(symbolize(pm, b + 3, &off), "sp_fix_beta");
	cr_expect_eq(off, 3);
	procmaps_free(pm);
	free(text);
}

TestSuite(elfsym, .init = fixture_setup, .fini = fixture_teardown,
	  .timeout = 60);

Test(elfsym, pie_executable)
{
	check_executable("pie", "-fPIE -pie");
}

Test(elfsym, non_pie_executable)
{
	check_executable("nopie", "-fno-PIE -no-pie");
}

Test(elfsym, shared_library_dlopen)
{
	char path[128];
	struct procmaps *pm;
	void *h, *beta;
	uint64_t off;
	int fd;

	build("libfix.so", "-DSP_LIB -shared -fPIC");
	snprintf(path, sizeof(path), "%s/libfix.so", fixdir);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(h, "%s", dlerror());
	beta = dlsym(h, "sp_fix_beta");
	cr_assert_not_null(beta);
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(procmaps_read_fd(fd, &pm), 0);
	close(fd);
	cr_expect_str_eq(symbolize(pm, (uint64_t)(uintptr_t)beta + 1, &off),
			 "sp_fix_beta");
	cr_expect_eq(off, 1);
	cr_expect_str_eq(symbolize(pm, (uint64_t)(uintptr_t)dlsym(h, "sp_fix_alpha"),
				   &off), "sp_fix_alpha");
	procmaps_free(pm);
	dlclose(h);
}

Test(elfsym, build_id_matches_readelf)
{
	char cmd[256], want[130] = "";
	struct elfsym *es;
	FILE *p;

	build("bid", "");
	snprintf(cmd, sizeof(cmd),
		 "readelf -n %s/bid | sed -n 's/.*Build ID: //p'", fixdir);
	p = popen(cmd, "r");
	cr_assert_eq(fscanf(p, "%129s", want), 1);
	pclose(p);
	es = open_fixture("bid");
	cr_assert_not_null(elfsym_build_id(es));
	cr_expect_str_eq(elfsym_build_id(es), want);
	cr_expect(elfsym_has_symtab(es));
	elfsym_free(es);
}

Test(elfsym, stripped_binary_uses_debug_file)
{
	struct elfsym *es, *dbg;
	uint64_t off = 99, v;
	const char *name;

	build("full", "");
	sh("cp full full.stripped && strip --strip-all full.stripped");
	sh("objcopy --only-keep-debug full full.debug");
	es = open_fixture("full.stripped");
	dbg = open_fixture("full.debug");
	cr_expect_not(elfsym_has_symtab(es));
	cr_expect_str_eq(elfsym_build_id(es), elfsym_build_id(dbg));
	cr_assert_eq(elfsym_merge(es, dbg), 0);
	cr_expect(elfsym_has_symtab(es));
	elfsym_free(dbg);
	dbg = open_fixture("full");
	/* Resolve sp_fix_beta's vaddr through the unstripped file's own table. */
	for (v = 0; v < 0x100000; v++) {
		name = elfsym_lookup(dbg, v, &off);
		if (name && strcmp(name, "sp_fix_beta") == 0 && off == 0)
			break;
	}
	cr_assert_lt(v, 0x100000);
	name = elfsym_lookup(es, v + 2, &off);
	cr_assert_not_null(name);
	cr_expect_str_eq(name, "sp_fix_beta");
	cr_expect_eq(off, 2);
	elfsym_free(dbg);
	elfsym_free(es);
}

Test(elfsym, debuglink_name_and_crc)
{
	char path[128];
	unsigned char *buf;
	struct stat st;
	uint32_t crc = 0;
	struct elfsym *es;
	int fd;

	build("dl", "");
	sh("objcopy --only-keep-debug dl dl.debug");
	sh("objcopy --add-gnu-debuglink=dl.debug dl");
	es = open_fixture("dl");
	cr_assert_not_null(elfsym_debuglink(es, &crc));
	cr_expect_str_eq(elfsym_debuglink(es, NULL), "dl.debug");
	snprintf(path, sizeof(path), "%s/dl.debug", fixdir);
	fd = open(path, O_RDONLY);
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	cr_expect_eq(crc, (uint32_t)crc32(0, buf, (uInt)st.st_size));
	free(buf);
	elfsym_free(es);
}

Test(elfsym, vdso_symbols)
{
	struct elfsym *es;
	uint64_t v, off;
	const char *name = NULL;

	cr_assert_eq(elfsym_open_vdso(&es), 0);
	cr_expect(elfsym_has_symbols(es));
	for (v = 0; v < 0x4000 && !name; v++)
		name = elfsym_lookup(es, v, &off);
	cr_assert_not_null(name);
	cr_expect(strstr(name, "vdso") || strstr(name, "time") ||
		  strstr(name, "get"), "unexpected vdso symbol %s", name);
	elfsym_free(es);
}

static double parse_ms(const char *path, size_t *nsyms)
{
	struct timespec t0, t1;
	struct elfsym *es;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	es = open_path(path, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(err, 0, "%s: %d", path, err);
	*nsyms = elfsym_count(es);
	elfsym_free(es);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

Test(elfsym, parses_libc_fast)
{
	/* libc (dynsym only on Debian), and when present a big .symtab and a
	 * huge dynsym. */
	const char *libs[] = { "/lib/x86_64-linux-gnu/libc.so.6",
			       "/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so",
			       "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1" };
	size_t i, n;

	for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		double ms;

		if (i > 0 && access(libs[i], R_OK) != 0)
			continue;
		ms = parse_ms(libs[i], &n);

		cr_log_info("parse %s: %.2f ms, %zu symbols", libs[i], ms, n);
		fprintf(stderr, "parse %s: %.2f ms, %zu symbols\n", libs[i], ms, n);
		cr_expect_gt(n, 100);
		cr_expect_lt(ms, 100.0);
	}
}

Test(elfsym, libc_malloc_resolves)
{
	struct procmaps *pm;
	uint64_t off;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	cr_assert_eq(procmaps_read_fd(fd, &pm), 0);
	close(fd);
	/* Under ASan malloc is the interceptor in libasan; fine either way. */
	cr_expect(strstr(symbolize(pm, (uint64_t)(uintptr_t)m, &off), "malloc"));
	procmaps_free(pm);
}

/* ---- hostile files ------------------------------------------------------ */

enum mutation {
	M_EMPTY, M_NOT_ELF, M_TRUNC_100, M_TRUNC_HALF, M_SHOFF_PAST_END,
	M_SHNUM_HUGE, M_SYMTAB_LINK_OOR, M_SYMTAB_LINK_SELF, M_STNAME_OOR,
	M_SYMTAB_SIZE_HUGE, M_STRTAB_SIZE_HUGE, M_NOTE_DESCSZ_HUGE,
	M_PHNUM_HUGE, M_SHSTRNDX_OOR, M_SHENTSIZE_BAD, M_STRTAB_UNTERMINATED,
	M_ET_REL, M_COUNT
};

static Elf64_Shdr *find_shdr(unsigned char *buf, Elf64_Word type)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Shdr *sh = (Elf64_Shdr *)(buf + eh->e_shoff);
	int i;

	for (i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type == type)
			return &sh[i];
	cr_assert_fail("no section of type %u", type);
	return NULL;
}

static void mutate_syms(unsigned char *buf)
{
	Elf64_Shdr *st = find_shdr(buf, SHT_SYMTAB);
	Elf64_Sym *s = (Elf64_Sym *)(buf + st->sh_offset);
	size_t i;

	for (i = 0; i < st->sh_size / sizeof(*s); i++)
		s[i].st_name = 0xfffffff0u - (uint32_t)i;
}

static size_t mutate(enum mutation m, unsigned char *buf, size_t len)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Shdr *shdrs = (Elf64_Shdr *)(buf + eh->e_shoff);

	switch (m) {
	case M_EMPTY: return 0;
	case M_NOT_ELF: memcpy(buf, "#!/bin/sh\necho hi\n", 18); return 4096;
	case M_TRUNC_100: return 100;
	case M_TRUNC_HALF: return len / 2;
	case M_SHOFF_PAST_END: eh->e_shoff = len + 4096; break;
	case M_SHNUM_HUGE: eh->e_shnum = 0xfeff; break;
	case M_SYMTAB_LINK_OOR: find_shdr(buf, SHT_SYMTAB)->sh_link = 9999; break;
	case M_SYMTAB_LINK_SELF:
		find_shdr(buf, SHT_SYMTAB)->sh_link =
			(Elf64_Word)(find_shdr(buf, SHT_SYMTAB) - shdrs);
		break;
	case M_STNAME_OOR: mutate_syms(buf); break;
	case M_SYMTAB_SIZE_HUGE: find_shdr(buf, SHT_SYMTAB)->sh_size = 1ull << 40; break;
	case M_STRTAB_SIZE_HUGE: shdrs[find_shdr(buf, SHT_SYMTAB)->sh_link].sh_size = ~0ull; break;
	case M_NOTE_DESCSZ_HUGE: {
		Elf64_Nhdr *n = (Elf64_Nhdr *)(buf + find_shdr(buf, SHT_NOTE)->sh_offset);

		n->n_descsz = 0xfffffff0u;
		n->n_namesz = 0x7ffffff0u;
		break;
	}
	case M_PHNUM_HUGE: eh->e_phnum = 0xffff; break;
	case M_SHSTRNDX_OOR: eh->e_shstrndx = 0xfeff; break;
	case M_SHENTSIZE_BAD: find_shdr(buf, SHT_SYMTAB)->sh_entsize = 7; break;
	case M_STRTAB_UNTERMINATED: {
		Elf64_Shdr *str = &shdrs[find_shdr(buf, SHT_SYMTAB)->sh_link];

		memset(buf + str->sh_offset, 'A', str->sh_size);
		break;
	}
	case M_ET_REL: eh->e_type = ET_REL; break;
	default: break;
	}
	return len;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 4096);
	memset(buf, 0, *len + 4096);
	cr_assert_eq(read(fd, buf, *len), (ssize_t)*len);
	close(fd);
	return buf;
}

ParameterizedTestParameters(elfsym, hostile_file)
{
	static enum mutation ms[M_COUNT];
	size_t i;

	for (i = 0; i < M_COUNT; i++)
		ms[i] = (enum mutation)i;
	return cr_make_param_array(enum mutation, ms, M_COUNT);
}

ParameterizedTest(enum mutation *m, elfsym, hostile_file)
{
	char path[128];
	unsigned char *buf;
	struct elfsym *es = NULL;
	size_t len, i;
	uint64_t off;
	int fd, err;

	build("victim", "");
	snprintf(path, sizeof(path), "%s/victim", fixdir);
	buf = read_file(path, &len);
	len = mutate(*m, buf, len);
	snprintf(path, sizeof(path), "%s/hostile", fixdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	err = elfsym_open_fd(fd, &es);
	close(fd);
	if (*m <= M_TRUNC_HALF || *m == M_SHOFF_PAST_END || *m == M_SHNUM_HUGE ||
	    *m == M_ET_REL)
		cr_expect_lt(err, 0, "mutation %d parsed", *m);
	if (err < 0) {
		cr_expect(err == -EINVAL || err == -ENOEXEC, "mutation %d: %d",
			  *m, err);
		cr_expect_null(es);
	} else {
		/* Parsed what was sane; every lookup must stay in bounds. */
		for (i = 0; i < 0x10000; i += 7)
			(void)elfsym_lookup(es, i, &off);
		(void)elfsym_build_id(es);
	}
	elfsym_free(es);
	free(buf);
}

Test(elfsym, mem_image_and_free_null)
{
	static const unsigned char junk[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	struct elfsym *es = (struct elfsym *)1;

	cr_expect_lt(elfsym_open_mem(junk, sizeof(junk), &es), 0);
	cr_expect_null(es);
	cr_expect_lt(elfsym_open_mem(junk, 3, &es), 0);
	elfsym_free(NULL);
}
