// SPDX-License-Identifier: BSD-2-Clause
/*
 * pprof.c - interning pprof builder and its protobuf-c encoder.
 *
 * Every table is a growable array (the id is the index + 1) plus an
 * open-addressing hash index over it, so interning is O(1) expected and
 * the arrays come out in id order for the encoder, the way Alloy assigns
 * ids (len(list) + 1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gz.h"
#include "pprof.h"
#include "profile.pb-c.h"
#include "utf8.h"

#define NO_INDEX	UINT32_MAX
#define ITAB_MIN_SLOTS	64u

/* A slot holds index + 1 (0 = empty) and the full hash, so growing never
 * needs the keys again. */
struct itab_slot {
	uint32_t idx1;
	uint32_t hash;
};

struct itab {
	struct itab_slot *slots;
	uint32_t mask;
	uint32_t used;
};

struct vec {
	void *data;
	uint32_t n;
	uint32_t cap;
};

struct pp_mapping {
	uint64_t start, limit, offset;
	uint32_t file, build_id;	/* string indices */
	bool has_functions, has_line_numbers;
};

struct pp_location {
	uint64_t address;
	uint32_t mapping_id;
	uint32_t function_id;	/* 0: no Line */
};

struct pp_sample {
	uint32_t off;	/* first id in pprof.ids */
	uint32_t n;
	int64_t count;
};

struct pprof {
	uint64_t period;
	int64_t time_nanos, duration_nanos;
	uint32_t str_cpu, str_ns;
	struct vec strs;	/* char * */
	struct vec maps;	/* struct pp_mapping */
	struct vec funcs;	/* uint32_t name string index */
	struct vec locs;	/* struct pp_location */
	struct vec samples;	/* struct pp_sample */
	struct vec ids;		/* uint32_t location ids of all stacks */
	struct itab str_tab, map_tab, func_tab, loc_tab, sample_tab;
	struct pprof_stats st;	/* only the dropped_* and total_count fields */
};

typedef bool (*itab_eq_fn)(const struct pprof *b, uint32_t idx,
			   const void *key);

/* --- hashing ------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finalizer: every input bit affects every output bit. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint32_t fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return fold(mix64(h));
}

/* --- tables -------------------------------------------------------------- */

static int vec_reserve(struct vec *v, size_t elem, uint32_t extra,
		       uint32_t max)
{
	uint64_t need = (uint64_t)v->n + extra, ncap;
	void *nd;

	if (need > max)
		return -ENOSPC;
	if (need <= v->cap)
		return 0;
	ncap = v->cap ? (uint64_t)v->cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	if (ncap > max)
		ncap = max;
	nd = reallocarray(v->data, ncap, elem);
	if (!nd)
		return -ENOMEM;
	v->data = nd;
	v->cap = (uint32_t)ncap;
	return 0;
}

static struct itab_slot *itab_probe(const struct itab *t, uint32_t hash,
				    itab_eq_fn eq, const struct pprof *b,
				    const void *key)
{
	uint32_t i = hash & t->mask;

	/* Linear probing; the load factor stays <= 1/2, so this ends. */
	for (;; i = (i + 1) & t->mask) {
		struct itab_slot *s = &t->slots[i];

		if (!s->idx1)
			return s;
		if (eq && s->hash == hash && eq(b, s->idx1 - 1, key))
			return s;
	}
}

static int itab_grow(struct itab *t)
{
	uint32_t ncap = t->slots ? (t->mask + 1) * 2 : ITAB_MIN_SLOTS, i;
	struct itab old = *t;

	t->slots = calloc(ncap, sizeof(*t->slots));
	if (!t->slots) {
		*t = old;
		return -ENOMEM;
	}
	t->mask = ncap - 1;
	for (i = 0; old.slots && i <= old.mask; i++)
		if (old.slots[i].idx1)
			*itab_probe(t, old.slots[i].hash, NULL, NULL, NULL) =
				old.slots[i];
	free(old.slots);
	return 0;
}

/* Index of an existing key, or NO_INDEX. */
static uint32_t itab_find(const struct itab *t, uint32_t hash, itab_eq_fn eq,
			  const struct pprof *b, const void *key)
{
	if (!t->slots)
		return NO_INDEX;
	return itab_probe(t, hash, eq, b, key)->idx1 - 1;
}

/* Record idx (known absent) under hash. */
static int itab_add(struct itab *t, uint32_t hash, uint32_t idx)
{
	struct itab_slot *s;
	int ret;

	if (!t->slots || (uint64_t)(t->used + 1) * 2 > (uint64_t)t->mask + 1) {
		ret = itab_grow(t);
		if (ret)
			return ret;
	}
	s = itab_probe(t, hash, NULL, NULL, NULL);
	s->idx1 = idx + 1;
	s->hash = hash;
	t->used++;
	return 0;
}

/* --- strings ------------------------------------------------------------- */

struct str_key {
	const char *s;
	size_t len;
};

static bool str_eq(const struct pprof *b, uint32_t idx, const void *key)
{
	const struct str_key *k = key;
	const char *s = ((char **)b->strs.data)[idx];

	return strncmp(s, k->s, k->len) == 0 && s[k->len] == '\0';
}

/* Length the string keeps, and whether its bytes need rewriting. */
static size_t str_clean_len(const char *s, bool *dirty)
{
	size_t len = strlen(s), i = 0, n;

	if (len > PPROF_MAX_STRING_LEN)
		len = PPROF_MAX_STRING_LEN;
	*dirty = false;
	while (i < len) {
		n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (!n) {
			*dirty = true;
			n = 1;
		}
		i += n;
	}
	return len;
}

/* Pyroscope rejects a profile with any invalid UTF-8: replace with '?'. */
static char *str_sanitized(const char *s, size_t len)
{
	char *c = strndup(s, len);
	size_t i = 0, n;

	for (; c && i < len; i += n) {
		n = utf8_seq_len((const unsigned char *)c + i, len - i);
		if (!n) {
			c[i] = '?';
			n = 1;
		}
	}
	return c;
}

static uint32_t str_insert(struct pprof *b, char *copy, uint32_t hash)
{
	uint32_t idx = b->strs.n;

	if (vec_reserve(&b->strs, sizeof(char *), 1, PPROF_MAX_STRINGS) ||
	    itab_add(&b->str_tab, hash, idx)) {
		free(copy);
		b->st.dropped_strings++;
		return NO_INDEX;
	}
	((char **)b->strs.data)[b->strs.n++] = copy;
	return idx;
}

/* Intern s (NULL = ""); NO_INDEX if refused. */
static uint32_t str_intern(struct pprof *b, const char *s)
{
	struct str_key k;
	bool dirty;
	char *copy = NULL;
	uint32_t hash, idx;

	k.s = s ? s : "";
	k.len = str_clean_len(k.s, &dirty);
	if (dirty) {
		copy = str_sanitized(k.s, k.len);
		if (!copy)
			goto dropped;
		k.s = copy;
	}
	hash = hash_bytes(k.s, k.len);
	idx = itab_find(&b->str_tab, hash, str_eq, b, &k);
	if (idx != NO_INDEX) {
		free(copy);
		return idx;
	}
	if (!copy)
		copy = strndup(k.s, k.len);
	if (!copy)
		goto dropped;
	return str_insert(b, copy, hash);
dropped:
	b->st.dropped_strings++;
	return NO_INDEX;
}

/* --- mappings ------------------------------------------------------------ */

static bool map_eq(const struct pprof *b, uint32_t idx, const void *key)
{
	const struct pp_mapping *m = &((struct pp_mapping *)b->maps.data)[idx];
	const struct pp_mapping *k = key;

	return m->start == k->start && m->file == k->file &&
	       m->build_id == k->build_id;
}

static uint32_t map_hash(const struct pp_mapping *k)
{
	return fold(mix64(k->start ^ mix64(((uint64_t)k->file << 32) |
					   k->build_id)));
}

static uint64_t map_intern(struct pprof *b, const struct pp_mapping *k)
{
	struct pp_mapping *m;
	uint32_t hash = map_hash(k), idx;

	idx = itab_find(&b->map_tab, hash, map_eq, b, k);
	if (idx == NO_INDEX) {
		idx = b->maps.n;
		if (vec_reserve(&b->maps, sizeof(*m), 1, PPROF_MAX_MAPPINGS) ||
		    itab_add(&b->map_tab, hash, idx)) {
			b->st.dropped_mappings++;
			return 0;
		}
		((struct pp_mapping *)b->maps.data)[b->maps.n++] = *k;
	}
	m = &((struct pp_mapping *)b->maps.data)[idx];
	m->has_functions |= k->has_functions;
	m->has_line_numbers |= k->has_line_numbers;
	return (uint64_t)idx + 1;
}

static int map_key(struct pprof *b, struct pp_mapping *k,
		   const char *filename, const char *build_id_hex)
{
	k->file = str_intern(b, filename);
	k->build_id = str_intern(b, build_id_hex);
	if (k->file == NO_INDEX || k->build_id == NO_INDEX) {
		b->st.dropped_mappings++;
		return -ENOSPC;
	}
	return 0;
}

uint64_t pprof_mapping(struct pprof *b, uint64_t start, uint64_t limit,
		       uint64_t file_offset, const char *filename,
		       const char *build_id_hex, bool has_functions)
{
	struct pp_mapping k = {
		.start = start, .limit = limit, .offset = file_offset,
		.has_functions = has_functions,
	};

	if (map_key(b, &k, filename, build_id_hex))
		return 0;
	return map_intern(b, &k);
}

uint64_t pprof_kernel_mapping(struct pprof *b, const char *name,
			      const char *build_id_hex)
{
	/* Alloy carries only the file for kernel frames; addresses are
	 * module-relative, so start/limit/offset stay 0. */
	struct pp_mapping k = {
		.has_functions = true, .has_line_numbers = true,
	};

	if (map_key(b, &k, name ? name : "vmlinux", build_id_hex))
		return 0;
	return map_intern(b, &k);
}

/* --- functions ----------------------------------------------------------- */

static bool func_eq(const struct pprof *b, uint32_t idx, const void *key)
{
	return ((uint32_t *)b->funcs.data)[idx] == *(const uint32_t *)key;
}

/* Function id for a name (interned by name: filename is always ""). */
static uint32_t func_intern(struct pprof *b, const char *name)
{
	uint32_t name_idx = str_intern(b, name), hash, idx;

	if (name_idx == NO_INDEX)
		goto dropped;
	hash = fold(mix64(name_idx));
	idx = itab_find(&b->func_tab, hash, func_eq, b, &name_idx);
	if (idx != NO_INDEX)
		return idx + 1;
	idx = b->funcs.n;
	if (vec_reserve(&b->funcs, sizeof(uint32_t), 1, PPROF_MAX_FUNCTIONS) ||
	    itab_add(&b->func_tab, hash, idx))
		goto dropped;
	((uint32_t *)b->funcs.data)[b->funcs.n++] = name_idx;
	return idx + 1;
dropped:
	b->st.dropped_functions++;
	return 0;
}

/* --- locations ----------------------------------------------------------- */

static bool loc_eq(const struct pprof *b, uint32_t idx, const void *key)
{
	const struct pp_location *l = &((struct pp_location *)b->locs.data)[idx];
	const struct pp_location *k = key;

	return l->address == k->address && l->mapping_id == k->mapping_id &&
	       l->function_id == k->function_id;
}

static uint32_t loc_hash(const struct pp_location *k)
{
	return fold(mix64(k->address ^ mix64(((uint64_t)k->mapping_id << 32) |
					     k->function_id)));
}

static uint64_t loc_intern(struct pprof *b, const struct pp_location *k)
{
	uint32_t hash = loc_hash(k), idx;

	idx = itab_find(&b->loc_tab, hash, loc_eq, b, k);
	if (idx != NO_INDEX)
		return (uint64_t)idx + 1;
	idx = b->locs.n;
	if (vec_reserve(&b->locs, sizeof(*k), 1, PPROF_MAX_LOCATIONS) ||
	    itab_add(&b->loc_tab, hash, idx)) {
		b->st.dropped_locations++;
		return 0;
	}
	((struct pp_location *)b->locs.data)[b->locs.n++] = *k;
	return (uint64_t)idx + 1;
}

uint64_t pprof_location(struct pprof *b, uint64_t mapping_id,
			uint64_t address, const char *function_name)
{
	struct pp_location k = { .address = address };
	struct pp_mapping *m;

	if (mapping_id == 0)
		mapping_id = PPROF_MAPPING_NONE;
	if (mapping_id > b->maps.n)
		return 0;	/* caller bug, not a cap: not counted */
	k.mapping_id = (uint32_t)mapping_id;
	if (function_name && function_name[0]) {
		k.function_id = func_intern(b, function_name);
		if (!k.function_id) {
			b->st.dropped_locations++;
			return 0;
		}
		/* Like Alloy: one symbolized frame flags the whole mapping. */
		m = &((struct pp_mapping *)b->maps.data)[mapping_id - 1];
		m->has_functions = true;
	}
	return loc_intern(b, &k);
}

/* --- samples ------------------------------------------------------------- */

struct stack_key {
	const uint32_t *ids;
	uint32_t n;
};

static bool sample_eq(const struct pprof *b, uint32_t idx, const void *key)
{
	const struct pp_sample *s = &((struct pp_sample *)b->samples.data)[idx];
	const struct stack_key *k = key;

	return s->n == k->n &&
	       memcmp((uint32_t *)b->ids.data + s->off, k->ids,
		      k->n * sizeof(uint32_t)) == 0;
}

static uint32_t stack_hash(const uint32_t *ids, uint32_t n)
{
	uint64_t h = n;
	uint32_t i;

	for (i = 0; i < n; i++)
		h = mix64(h ^ ids[i]) + i;
	return fold(h);
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static int sample_insert(struct pprof *b, const struct stack_key *k,
			 uint32_t hash, int64_t count)
{
	struct pp_sample *s;
	int ret;

	ret = vec_reserve(&b->samples, sizeof(*s), 1, PPROF_MAX_SAMPLES);
	if (!ret)
		ret = vec_reserve(&b->ids, sizeof(uint32_t), k->n,
				  PPROF_MAX_STACK_IDS);
	if (!ret)
		ret = itab_add(&b->sample_tab, hash, b->samples.n);
	if (ret)
		return ret;
	s = &((struct pp_sample *)b->samples.data)[b->samples.n++];
	s->off = b->ids.n;
	s->n = k->n;
	s->count = count;
	memcpy((uint32_t *)b->ids.data + b->ids.n, k->ids,
	       k->n * sizeof(uint32_t));
	b->ids.n += k->n;
	return 0;
}

/* Narrow and check the caller's ids into tmp. */
static int stack_ids(const struct pprof *b, const uint64_t *location_ids,
		     size_t n, uint32_t *tmp)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (location_ids[i] == 0 || location_ids[i] > b->locs.n)
			return -EINVAL;
		tmp[i] = (uint32_t)location_ids[i];
	}
	return 0;
}

static int sample_add(struct pprof *b, const uint64_t *location_ids,
		      size_t n, int64_t count)
{
	struct stack_key k = { .n = (uint32_t)n };
	uint32_t *tmp, hash, idx;
	int ret;

	if (n == 0 || n > PPROF_MAX_STACK_IDS || count <= 0)
		return -EINVAL;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	ret = stack_ids(b, location_ids, n, tmp);
	if (ret)
		goto out;
	k.ids = tmp;
	hash = stack_hash(tmp, k.n);
	idx = itab_find(&b->sample_tab, hash, sample_eq, b, &k);
	if (idx != NO_INDEX) {
		struct pp_sample *s = (struct pp_sample *)b->samples.data + idx;

		s->count = sat_add(s->count, count);
	} else {
		ret = sample_insert(b, &k, hash, count);
	}
out:
	free(tmp);
	return ret;
}

int pprof_add_sample(struct pprof *b, const uint64_t *location_ids, size_t n,
		     int64_t count)
{
	int ret = sample_add(b, location_ids, n, count);

	if (ret) {
		b->st.dropped_samples++;
		if (count > 0)
			b->st.dropped_count = sat_add(b->st.dropped_count, count);
		return ret;
	}
	b->st.total_count = sat_add(b->st.total_count, count);
	return 0;
}

/* --- lifetime ------------------------------------------------------------ */

void pprof_set_time(struct pprof *b, int64_t time_nanos, int64_t duration_nanos)
{
	b->time_nanos = time_nanos;
	b->duration_nanos = duration_nanos;
}

struct pprof *pprof_new(uint64_t period_ns, int64_t time_nanos,
			int64_t duration_nanos)
{
	struct pprof *b = calloc(1, sizeof(*b));
	struct pp_mapping dummy = { 0 };

	if (!b)
		return NULL;
	b->period = period_ns;
	b->time_nanos = time_nanos;
	b->duration_nanos = duration_nanos;
	/* string_table[0] must be "" (pprof spec, Pyroscope validation). */
	if (str_intern(b, "") != 0)
		goto fail;
	b->str_cpu = str_intern(b, "cpu");
	b->str_ns = str_intern(b, "nanoseconds");
	if (b->str_cpu == NO_INDEX || b->str_ns == NO_INDEX)
		goto fail;
	if (map_intern(b, &dummy) != PPROF_MAPPING_NONE)
		goto fail;
	return b;
fail:
	pprof_free(b);
	return NULL;
}

void pprof_free(struct pprof *b)
{
	uint32_t i;

	if (!b)
		return;
	for (i = 0; i < b->strs.n; i++)
		free(((char **)b->strs.data)[i]);
	free(b->strs.data);
	free(b->maps.data);
	free(b->funcs.data);
	free(b->locs.data);
	free(b->samples.data);
	free(b->ids.data);
	free(b->str_tab.slots);
	free(b->map_tab.slots);
	free(b->func_tab.slots);
	free(b->loc_tab.slots);
	free(b->sample_tab.slots);
	free(b);
}

void pprof_stats(const struct pprof *b, struct pprof_stats *st)
{
	*st = b->st;
	st->samples = b->samples.n;
	st->locations = b->locs.n;
	st->functions = b->funcs.n;
	st->mappings = b->maps.n;
	st->strings = b->strs.n;
}

/* --- encoding ------------------------------------------------------------ */

/* The protobuf-c view of a builder: flat arrays, no per-item allocation. */
struct enc {
	Perftools__Profiles__Profile p;
	Perftools__Profiles__ValueType sample_type, period_type;
	Perftools__Profiles__ValueType *sample_types[1];
	Perftools__Profiles__Mapping *maps, **map_ptrs;
	Perftools__Profiles__Function *funcs, **func_ptrs;
	Perftools__Profiles__Location *locs, **loc_ptrs;
	Perftools__Profiles__Line *lines, **line_ptrs;
	Perftools__Profiles__Sample *samples, **sample_ptrs;
	uint64_t *ids;
	int64_t *values;
};

static void enc_free(struct enc *e)
{
	free(e->maps);
	free(e->map_ptrs);
	free(e->funcs);
	free(e->func_ptrs);
	free(e->locs);
	free(e->loc_ptrs);
	free(e->lines);
	free(e->line_ptrs);
	free(e->samples);
	free(e->sample_ptrs);
	free(e->ids);
	free(e->values);
}

static int enc_alloc(struct enc *e, const struct pprof *b)
{
	size_t nm = b->maps.n, nf = b->funcs.n, nl = b->locs.n;
	size_t ns = b->samples.n, ni = b->ids.n;

	/* +1: calloc(0) may return NULL, which is not a failure here. */
	e->maps = calloc(nm + 1, sizeof(*e->maps));
	e->map_ptrs = calloc(nm + 1, sizeof(*e->map_ptrs));
	e->funcs = calloc(nf + 1, sizeof(*e->funcs));
	e->func_ptrs = calloc(nf + 1, sizeof(*e->func_ptrs));
	e->locs = calloc(nl + 1, sizeof(*e->locs));
	e->loc_ptrs = calloc(nl + 1, sizeof(*e->loc_ptrs));
	e->lines = calloc(nl + 1, sizeof(*e->lines));
	e->line_ptrs = calloc(nl + 1, sizeof(*e->line_ptrs));
	e->samples = calloc(ns + 1, sizeof(*e->samples));
	e->sample_ptrs = calloc(ns + 1, sizeof(*e->sample_ptrs));
	e->ids = calloc(ni + 1, sizeof(*e->ids));
	e->values = calloc(ns + 1, sizeof(*e->values));
	if (!e->maps || !e->map_ptrs || !e->funcs || !e->func_ptrs ||
	    !e->locs || !e->loc_ptrs || !e->lines || !e->line_ptrs ||
	    !e->samples || !e->sample_ptrs || !e->ids || !e->values)
		return -ENOMEM;
	return 0;
}

static void enc_mappings(struct enc *e, const struct pprof *b)
{
	const struct pp_mapping *m = b->maps.data;
	uint32_t i;

	for (i = 0; i < b->maps.n; i++) {
		Perftools__Profiles__Mapping *pm = &e->maps[i];

		perftools__profiles__mapping__init(pm);
		pm->id = i + 1;
		pm->memory_start = m[i].start;
		pm->memory_limit = m[i].limit;
		pm->file_offset = m[i].offset;
		pm->filename = m[i].file;
		pm->build_id = m[i].build_id;
		pm->has_functions = m[i].has_functions;
		pm->has_line_numbers = m[i].has_line_numbers;
		e->map_ptrs[i] = pm;
	}
	e->p.n_mapping = b->maps.n;
	e->p.mapping = e->map_ptrs;
}

static void enc_functions(struct enc *e, const struct pprof *b)
{
	const uint32_t *names = b->funcs.data;
	uint32_t i;

	/* Alloy sets name and filename only (system_name stays 0 = ""). */
	for (i = 0; i < b->funcs.n; i++) {
		perftools__profiles__function__init(&e->funcs[i]);
		e->funcs[i].id = i + 1;
		e->funcs[i].name = names[i];
		e->func_ptrs[i] = &e->funcs[i];
	}
	e->p.n_function = b->funcs.n;
	e->p.function = e->func_ptrs;
}

static void enc_locations(struct enc *e, const struct pprof *b)
{
	const struct pp_location *l = b->locs.data;
	uint32_t i;

	for (i = 0; i < b->locs.n; i++) {
		Perftools__Profiles__Location *pl = &e->locs[i];

		perftools__profiles__location__init(pl);
		pl->id = i + 1;
		pl->mapping_id = l[i].mapping_id;
		pl->address = l[i].address;
		if (l[i].function_id) {
			perftools__profiles__line__init(&e->lines[i]);
			e->lines[i].function_id = l[i].function_id;
			e->line_ptrs[i] = &e->lines[i];
			pl->n_line = 1;
			pl->line = &e->line_ptrs[i];
		}
		e->loc_ptrs[i] = pl;
	}
	e->p.n_location = b->locs.n;
	e->p.location = e->loc_ptrs;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
	int64_t r;

	return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

static void enc_samples(struct enc *e, const struct pprof *b)
{
	const struct pp_sample *s = b->samples.data;
	const uint32_t *ids = b->ids.data;
	uint32_t i;

	for (i = 0; i < b->ids.n; i++)
		e->ids[i] = ids[i];
	for (i = 0; i < b->samples.n; i++) {
		Perftools__Profiles__Sample *ps = &e->samples[i];

		perftools__profiles__sample__init(ps);
		ps->n_location_id = s[i].n;
		ps->location_id = &e->ids[s[i].off];
		/* The value column is CPU time: samples × period. */
		e->values[i] = sat_mul(s[i].count, (int64_t)b->period);
		ps->n_value = 1;
		ps->value = &e->values[i];
		e->sample_ptrs[i] = ps;
	}
	e->p.n_sample = b->samples.n;
	e->p.sample = e->sample_ptrs;
}

static void enc_header(struct enc *e, const struct pprof *b)
{
	perftools__profiles__value_type__init(&e->sample_type);
	e->sample_type.type = b->str_cpu;
	e->sample_type.unit = b->str_ns;
	e->period_type = e->sample_type;
	e->sample_types[0] = &e->sample_type;
	e->p.n_sample_type = 1;
	e->p.sample_type = e->sample_types;
	e->p.period_type = &e->period_type;
	e->p.period = (int64_t)b->period;
	e->p.time_nanos = b->time_nanos;
	e->p.duration_nanos = b->duration_nanos;
	e->p.n_string_table = b->strs.n;
	e->p.string_table = b->strs.data;
}

static int enc_pack(const struct enc *e, uint8_t **out, size_t *len)
{
	size_t size = perftools__profiles__profile__get_packed_size(&e->p);
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return -ENOMEM;
	*len = perftools__profiles__profile__pack(&e->p, buf);
	*out = buf;
	return 0;
}

int pprof_encode(const struct pprof *b, uint8_t **out, size_t *len, bool gzip)
{
	struct enc e = { 0 };
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	int ret;

	perftools__profiles__profile__init(&e.p);
	ret = enc_alloc(&e, b);
	if (ret)
		goto out;
	enc_header(&e, b);
	enc_mappings(&e, b);
	enc_functions(&e, b);
	enc_locations(&e, b);
	enc_samples(&e, b);
	ret = enc_pack(&e, &raw, &raw_len);
	if (ret)
		goto out;
	if (gzip) {
		ret = gz_compress(raw, raw_len, GZ_LEVEL_BEST_SPEED, out, len);
	} else {
		*out = raw;
		*len = raw_len;
		raw = NULL;
	}
out:
	free(raw);
	enc_free(&e);
	return ret;
}

/* --- top functions ------------------------------------------------------- */

struct top_acc {
	int64_t *self, *total;
	uint32_t *stamp;	/* sample index + 1 that last counted total */
};

static uint32_t loc_func(const struct pprof *b, uint32_t loc_id)
{
	return ((const struct pp_location *)b->locs.data)[loc_id - 1].function_id;
}

/* Slot 0 collects locations without a function ("[unknown]"). */
static void top_accumulate(const struct pprof *b, struct top_acc *a)
{
	const struct pp_sample *s = b->samples.data;
	const uint32_t *ids = b->ids.data;
	uint32_t i, j, f;

	for (i = 0; i < b->samples.n; i++) {
		f = loc_func(b, ids[s[i].off]);
		a->self[f] = sat_add(a->self[f], s[i].count);
		for (j = 0; j < s[i].n; j++) {
			f = loc_func(b, ids[s[i].off + j]);
			if (a->stamp[f] == i + 1)
				continue;	/* recursion: count once */
			a->stamp[f] = i + 1;
			a->total[f] = sat_add(a->total[f], s[i].count);
		}
	}
}

static int top_cmp_self(const void *pa, const void *pb)
{
	const struct pprof_top_entry *a = pa, *b = pb;

	if (a->self != b->self)
		return a->self < b->self ? 1 : -1;
	if (a->total != b->total)
		return a->total < b->total ? 1 : -1;
	return strcmp(a->name, b->name);
}

static int top_cmp_total(const void *pa, const void *pb)
{
	const struct pprof_top_entry *a = pa, *b = pb;

	if (a->total != b->total)
		return a->total < b->total ? 1 : -1;
	return top_cmp_self(pa, pb);
}

static size_t top_collect(const struct pprof *b, const struct top_acc *a,
			  struct pprof_top_entry *all)
{
	char *const *strs = b->strs.data;
	const uint32_t *names = b->funcs.data;
	size_t n = 0;
	uint32_t f;

	for (f = 0; f <= b->funcs.n; f++) {
		if (!a->total[f])
			continue;
		all[n].name = f ? strs[names[f - 1]] : "[unknown]";
		all[n].self = a->self[f];
		all[n].total = a->total[f];
		n++;
	}
	return n;
}

int pprof_top(const struct pprof *b, size_t n, enum pprof_top_order order,
	      struct pprof_top_entry **out, size_t *n_out)
{
	size_t nf = (size_t)b->funcs.n + 1, found;
	struct top_acc a;
	struct pprof_top_entry *all;
	int ret = -ENOMEM;

	a.self = calloc(nf, sizeof(*a.self));
	a.total = calloc(nf, sizeof(*a.total));
	a.stamp = calloc(nf, sizeof(*a.stamp));
	all = calloc(nf, sizeof(*all));
	if (!a.self || !a.total || !a.stamp || !all)
		goto out;
	top_accumulate(b, &a);
	found = top_collect(b, &a, all);
	qsort(all, found, sizeof(*all),
	      order == PPROF_TOP_TOTAL ? top_cmp_total : top_cmp_self);
	*n_out = found < n ? found : n;
	*out = all;
	all = NULL;
	ret = 0;
out:
	free(a.self);
	free(a.total);
	free(a.stamp);
	free(all);
	return ret;
}
