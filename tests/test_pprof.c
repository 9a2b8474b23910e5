// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_pprof.c - the pprof builder: checked by decoding our own bytes with
 * protobuf-c and by Go's pprof tool, the reference reader.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gz.h"
#include "pprof.h"
#include "profile.pb-c.h"

#define PERIOD		(1000000000ull / 97)	/* 10309278 */
#define TIME_NS		1763757300123000000ll

struct known {
	struct pprof *b;
	uint64_t m_exe, m_lib, m_kern;
	uint64_t l_main, l_work, l_hot, l_libc, l_kern;
};

/* Three stacks sharing main→work: counts 10, 20, 70 (leaf first). */
static void build_known(struct known *k)
{
	k->b = pprof_new(PERIOD, TIME_NS, 15000000000ll);
	cr_assert_not_null(k->b);
	k->m_exe = pprof_mapping(k->b, 0x400000, 0x500000, 0, "/usr/bin/app",
				 "deadbeef01", false);
	k->m_lib = pprof_mapping(k->b, 0x7f0000000000, 0x7f0000100000, 0x1000,
				 "/usr/lib/libfoo.so.6", "cafebabe02", false);
	k->m_kern = pprof_kernel_mapping(k->b, "vmlinux", "0badc0de03");
	cr_assert(k->m_exe == 2 && k->m_lib == 3 && k->m_kern == 4);
	k->l_main = pprof_location(k->b, k->m_exe, 0x401000, "main");
	k->l_work = pprof_location(k->b, k->m_exe, 0x401100, "work");
	k->l_hot = pprof_location(k->b, k->m_exe, 0x401200, "hot_loop");
	k->l_libc = pprof_location(k->b, k->m_lib, 0x2a000, NULL);
	k->l_kern = pprof_location(k->b, k->m_kern, 0x1234, "do_syscall_64");
	cr_assert(k->l_main && k->l_work && k->l_hot && k->l_libc && k->l_kern);

	uint64_t a[] = { k->l_hot, k->l_work, k->l_main };
	uint64_t b[] = { k->l_libc, k->l_work, k->l_main };
	uint64_t c[] = { k->l_kern, k->l_libc, k->l_work, k->l_main };

	cr_assert_eq(pprof_add_sample(k->b, a, 3, 10), 0);
	cr_assert_eq(pprof_add_sample(k->b, b, 3, 20), 0);
	cr_assert_eq(pprof_add_sample(k->b, c, 4, 70), 0);
}

static void write_file(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Known profile, gzipped, in a temp file; path must hold 64 bytes. */
static void known_file(char *path)
{
	struct known k;
	uint8_t *out;
	size_t len;
	int fd;

	build_known(&k);
	cr_assert_eq(pprof_encode(k.b, &out, &len, true), 0);
	cr_assert(len > 18 && out[0] == 0x1f && out[1] == 0x8b, "gzip magic");
	strcpy(path, "/tmp/test_pprof_XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	write_file(path, out, len);
	free(out);
	pprof_free(k.b);
}

/* Fail, not skip: CI must prove Go's reader accepts our bytes. */
static void require_go(void)
{
	if (system("command -v go >/dev/null 2>&1") != 0)
		cr_assert_fail("`go` not found: the pprof tests need golang-go "
			       "(packaging/deps.sh installs it)");
}

/* Run `go tool pprof <args> <file>`; return its stdout (caller frees). */
static char *go_pprof(const char *args, const char *file)
{
	char cmd[512];
	size_t cap = 1 << 16, n = 0, r;
	char *buf = malloc(cap);
	FILE *p;
	int st;

	cr_assert_not_null(buf);
	/* As root in CI HOME may be unset; pprof must not try to symbolize
	 * our fake paths against local binaries. */
	setenv("HOME", getenv("HOME") ? getenv("HOME") : "/tmp", 0);
	setenv("GOCACHE", "/tmp/splitprof-gocache", 0);
	setenv("PPROF_BINARY_PATH", "/nonexistent", 1);
	snprintf(cmd, sizeof(cmd), "go tool pprof -symbolize=none %s %s 2>&1",
		 args, file);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (n + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	buf[n] = '\0';
	st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "go tool pprof %s failed:\n%s", args, buf);
	return buf;
}

static void assert_has(const char *hay, const char *needle)
{
	cr_assert_not_null(strstr(hay, needle), "missing \"%s\" in:\n%s",
			   needle, hay);
}

Test(pprof, go_pprof_raw_reads_types_values_and_mappings, .timeout = 120)
{
	char path[64];
	char *raw;

	require_go();
	known_file(path);
	raw = go_pprof("-raw", path);
	assert_has(raw, "PeriodType: cpu nanoseconds");
	assert_has(raw, "Period: 10309278");
	assert_has(raw, "cpu/nanoseconds");
	/*
	 * count × period, leaf first. The reader renumbers locations in the
	 * order samples reach them, so check ids against its own table.
	 */
	assert_has(raw, "103092780: 1 2 3 ");
	assert_has(raw, "206185560: 4 2 3 ");
	assert_has(raw, "721649460: 5 4 2 3 ");
	assert_has(raw, "1: 0x401200 M=2 hot_loop ");
	assert_has(raw, "2: 0x401100 M=2 work ");
	assert_has(raw, "3: 0x401000 M=2 main ");
	assert_has(raw, "4: 0x2a000 M=3 \n");
	assert_has(raw, "5: 0x1234 M=4 do_syscall_64 ");
	assert_has(raw, "/usr/bin/app deadbeef01");
	assert_has(raw, "/usr/lib/libfoo.so.6 cafebabe02");
	assert_has(raw, "vmlinux 0badc0de03");
	assert_has(raw, "do_syscall_64");
	free(raw);
	unlink(path);
}

Test(pprof, go_pprof_top_sums_per_function, .timeout = 120)
{
	char path[64];
	char *top;

	require_go();
	known_file(path);
	top = go_pprof("-top -nodecount=100", path);
	assert_has(top, "Type: cpu");
	/* Total 100 samples × period = 1030927800 ns. */
	assert_has(top, "of 1030.93ms total");
	assert_has(top, "721.65ms 70.00% 70.00%   721.65ms 70.00%  do_syscall_64");
	assert_has(top, "206.19ms 20.00% 90.00%   927.84ms 90.00%  [libfoo.so.6]");
	assert_has(top, "103.09ms 10.00%   100%   103.09ms 10.00%  hot_loop");
	assert_has(top, "0     0%   100%  1030.93ms   100%  main");
	free(top);
	unlink(path);
}

Test(pprof, go_pprof_traces_are_leaf_first, .timeout = 120)
{
	char path[64];
	char *tr, *hot, *work, *main_, *sys, *lib;

	require_go();
	known_file(path);
	tr = go_pprof("-traces", path);
	hot = strstr(tr, "hot_loop");
	cr_assert_not_null(hot, "%s", tr);
	work = strstr(hot, "work");
	main_ = strstr(hot, "main");
	cr_assert(work && main_ && hot < work && work < main_, "%s", tr);
	sys = strstr(tr, "do_syscall_64");
	cr_assert_not_null(sys, "%s", tr);
	lib = strstr(sys, "libfoo.so.6");
	cr_assert(lib && lib < strstr(sys, "work"), "%s", tr);
	assert_has(tr, "103.09ms");
	assert_has(tr, "206.19ms");
	assert_has(tr, "721.65ms");
	free(tr);
	unlink(path);
}

static Perftools__Profiles__Profile *decode(const uint8_t *gz, size_t len)
{
	Perftools__Profiles__Profile *p;
	uint8_t *raw;
	size_t raw_len;

	cr_assert_eq(gz_decompress(gz, len, 1 << 26, &raw, &raw_len), 0);
	p = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	free(raw);
	cr_assert_not_null(p);
	return p;
}

static Perftools__Profiles__Profile *encode_decode(const struct pprof *b)
{
	Perftools__Profiles__Profile *p;
	uint8_t *out;
	size_t len;

	cr_assert_eq(pprof_encode(b, &out, &len, true), 0);
	p = decode(out, len);
	free(out);
	return p;
}

static void assert_ids_sequential(size_t n, uint64_t (*id)(const void *, size_t),
				  const void *arr)
{
	size_t i;

	for (i = 0; i < n; i++)
		cr_assert_eq(id(arr, i), i + 1, "ids must be 1..n (unique, nonzero)");
}

static uint64_t map_id(const void *a, size_t i)
{
	return ((Perftools__Profiles__Mapping *const *)a)[i]->id;
}

static uint64_t loc_id(const void *a, size_t i)
{
	return ((Perftools__Profiles__Location *const *)a)[i]->id;
}

static uint64_t func_id(const void *a, size_t i)
{
	return ((Perftools__Profiles__Function *const *)a)[i]->id;
}

static const char *str(const Perftools__Profiles__Profile *p, int64_t i)
{
	cr_assert(i >= 0 && (size_t)i < p->n_string_table, "string index");
	return p->string_table[i];
}

Test(pprof, decodes_with_protobuf_c_and_references_resolve)
{
	Perftools__Profiles__Profile *p;
	struct known k;
	size_t i, j;

	build_known(&k);
	p = encode_decode(k.b);
	cr_assert_str_eq(p->string_table[0], "");
	cr_assert_eq(p->n_sample_type, 1);
	cr_assert_str_eq(str(p, p->sample_type[0]->type), "cpu");
	cr_assert_str_eq(str(p, p->sample_type[0]->unit), "nanoseconds");
	cr_assert_not_null(p->period_type);
	cr_assert_str_eq(str(p, p->period_type->type), "cpu");
	cr_assert_eq(p->period, (int64_t)PERIOD);
	cr_assert_eq(p->time_nanos, TIME_NS);
	cr_assert_eq(p->duration_nanos, 15000000000ll);
	assert_ids_sequential(p->n_mapping, map_id, p->mapping);
	assert_ids_sequential(p->n_location, loc_id, p->location);
	assert_ids_sequential(p->n_function, func_id, p->function);
	cr_assert_eq(p->n_sample, 3);
	for (i = 0; i < p->n_sample; i++) {
		cr_assert_eq(p->sample[i]->n_value, p->n_sample_type);
		for (j = 0; j < p->sample[i]->n_location_id; j++) {
			uint64_t id = p->sample[i]->location_id[j];

			cr_assert(id >= 1 && id <= p->n_location);
		}
	}
	for (i = 0; i < p->n_location; i++) {
		uint64_t m = p->location[i]->mapping_id;

		cr_assert(m >= 1 && m <= p->n_mapping);
		for (j = 0; j < p->location[i]->n_line; j++)
			cr_assert(p->location[i]->line[j]->function_id >= 1 &&
				  p->location[i]->line[j]->function_id <= p->n_function);
	}
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_free(k.b);
}

Test(pprof, mappings_match_alloy_layout)
{
	Perftools__Profiles__Profile *p;
	Perftools__Profiles__Mapping *m;
	struct known k;

	build_known(&k);
	p = encode_decode(k.b);
	cr_assert_eq(p->n_mapping, 4);
	m = p->mapping[0];	/* Alloy's dummy mapping */
	cr_assert(m->memory_start == 0 && m->memory_limit == 0 && m->filename == 0);
	m = p->mapping[1];
	cr_assert_str_eq(str(p, m->filename), "/usr/bin/app");
	cr_assert_str_eq(str(p, m->build_id), "deadbeef01");
	cr_assert_eq(m->memory_start, 0x400000);
	cr_assert_eq(m->memory_limit, 0x500000);
	cr_assert(m->has_functions, "a symbolized frame flags its mapping");
	m = p->mapping[2];
	cr_assert_eq(m->file_offset, 0x1000);
	cr_assert_not(m->has_functions, "unsymbolized stays has_functions=false");
	m = p->mapping[3];
	cr_assert_str_eq(str(p, m->filename), "vmlinux");
	cr_assert(m->memory_start == 0 && m->memory_limit == 0 && m->file_offset == 0);
	cr_assert(m->has_functions && m->has_line_numbers);
	/* The unsymbolized location: address + mapping, no Line. */
	cr_assert_eq(p->location[k.l_libc - 1]->n_line, 0);
	cr_assert_eq(p->location[k.l_libc - 1]->address, 0x2a000);
	cr_assert_eq(p->location[k.l_kern - 1]->n_line, 1);
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_free(k.b);
}

Test(pprof, same_stack_twice_is_one_sample_with_summed_value)
{
	Perftools__Profiles__Profile *p;
	struct pprof_stats st;
	struct pprof *b = pprof_new(PERIOD, TIME_NS, 0);
	uint64_t m = pprof_mapping(b, 0x1000, 0x2000, 0, "/bin/x", "ab", false);
	uint64_t s[2] = { pprof_location(b, m, 0x1010, "leaf"),
			  pprof_location(b, m, 0x1020, "root") };

	cr_assert_eq(pprof_location(b, m, 0x1010, "leaf"), s[0], "interned");
	cr_assert_eq(pprof_mapping(b, 0x1000, 0x2000, 0, "/bin/x", "ab", false), m);
	cr_assert_eq(pprof_add_sample(b, s, 2, 3), 0);
	cr_assert_eq(pprof_add_sample(b, s, 2, 4), 0);
	pprof_stats(b, &st);
	cr_assert_eq(st.samples, 1);
	cr_assert_eq(st.total_count, 7);
	cr_assert_eq(st.locations, 2);
	cr_assert_eq(st.functions, 2);
	p = encode_decode(b);
	cr_assert_eq(p->n_sample, 1);
	cr_assert_eq(p->sample[0]->value[0], 7 * (int64_t)PERIOD);
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_free(b);
}

Test(pprof, refuses_unknown_location_ids_and_counts_them)
{
	struct pprof *b = pprof_new(PERIOD, TIME_NS, 0);
	uint64_t l = pprof_location(b, 0, 0x10, "f"), bad[] = { l, 99 };
	struct pprof_stats st;

	cr_assert_eq(l, 1);
	cr_assert_eq(pprof_add_sample(b, bad, 2, 5), -EINVAL);
	cr_assert_eq(pprof_add_sample(b, bad, 0, 5), -EINVAL);
	cr_assert_eq(pprof_location(b, 42, 0x10, "f"), 0, "unknown mapping");
	pprof_stats(b, &st);
	cr_assert_eq(st.samples, 0);
	cr_assert_eq(st.dropped_samples, 2);
	cr_assert_eq(st.dropped_count, 10);
	pprof_free(b);
}

Test(pprof, invalid_utf8_names_are_repaired)
{
	Perftools__Profiles__Profile *p;
	struct pprof *b = pprof_new(PERIOD, TIME_NS, 0);
	uint64_t l = pprof_location(b, 0, 0x10, "bad\xff\xc3name\xc3\xa9");

	cr_assert_eq(pprof_add_sample(b, &l, 1, 1), 0);
	p = encode_decode(b);
	cr_assert_str_eq(str(p, p->function[0]->name), "bad??name\xc3\xa9");
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_free(b);
}

Test(pprof, top_by_self_and_total)
{
	struct pprof_top_entry *t;
	struct known k;
	size_t n;

	build_known(&k);
	cr_assert_eq(pprof_top(k.b, 3, PPROF_TOP_SELF, &t, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(t[0].name, "do_syscall_64");
	cr_assert_eq(t[0].self, 70);
	cr_assert_str_eq(t[1].name, "[unknown]");
	cr_assert_eq(t[1].self, 20);
	cr_assert_str_eq(t[2].name, "hot_loop");
	free(t);
	cr_assert_eq(pprof_top(k.b, 10, PPROF_TOP_TOTAL, &t, &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(t[0].name, "main");	/* 100, tie with work by name */
	cr_assert_eq(t[0].total, 100);
	cr_assert_str_eq(t[1].name, "work");
	cr_assert_eq(t[2].total, 90);		/* [unknown] in B and C */
	free(t);
	pprof_free(k.b);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(pprof, hundred_thousand_distinct_stacks_encode_fast, .timeout = 120)
{
	Perftools__Profiles__Profile *p;
	struct pprof *b = pprof_new(PERIOD, TIME_NS, 0);
	struct pprof_stats st;
	char name[32];
	uint64_t m, s[3], i;
	uint8_t *out;
	size_t len;
	double t0 = now_s();

	m = pprof_mapping(b, 0x400000, 0x900000, 0, "/bin/big", "ff", false);
	s[1] = pprof_location(b, m, 0x400010, "mid");
	s[2] = pprof_location(b, m, 0x400000, "root");
	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "leaf_%llu", (unsigned long long)i);
		s[0] = pprof_location(b, m, 0x500000 + i, name);
		cr_assert_eq(pprof_add_sample(b, s, 3, 1 + (int64_t)(i % 3)), 0);
		cr_assert_eq(pprof_add_sample(b, s, 3, 1), 0);
	}
	pprof_stats(b, &st);
	cr_assert_eq(st.samples, 100000);
	cr_assert_eq(st.locations, 100002);
	cr_assert_eq(pprof_encode(b, &out, &len, true), 0);
	cr_assert_lt(now_s() - t0, 5.0, "build + encode took %.2fs", now_s() - t0);
	p = decode(out, len);
	cr_assert_eq(p->n_sample, 100000);
	cr_assert_eq(p->sample[99999]->value[0], (1 + 99999 % 3 + 1) * (int64_t)PERIOD);
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(out);
	pprof_free(b);
}

Test(pprof, free_null_is_noop)
{
	pprof_free(NULL);
}

Test(gz, round_trip_and_hostile_input)
{
	static uint8_t zeros[1 << 20];
	uint8_t *gz, *out;
	size_t gz_len, out_len;

	cr_assert_eq(gz_compress(zeros, sizeof(zeros), GZ_LEVEL_BEST_SPEED,
				 &gz, &gz_len), 0);
	cr_assert(gz[0] == 0x1f && gz[1] == 0x8b && gz_len < 8192);
	cr_assert_eq(gz_decompress(gz, gz_len, sizeof(zeros), &out, &out_len), 0);
	cr_assert_eq(out_len, sizeof(zeros));
	cr_assert_eq(memcmp(out, zeros, out_len), 0);
	free(out);
	/* A bomb past the output limit, a truncated stream, garbage. */
	cr_assert_eq(gz_decompress(gz, gz_len, 4096, &out, &out_len), -EFBIG);
	cr_assert_eq(gz_decompress(gz, gz_len / 2, 1 << 21, &out, &out_len),
		     -EBADMSG);
	cr_assert_eq(gz_decompress("not gzip", 8, 1 << 21, &out, &out_len),
		     -EBADMSG);
	free(gz);
}
