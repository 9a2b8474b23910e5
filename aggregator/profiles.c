/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "profiles.h"
#include "strmap.h"

struct target {
	struct pprof *b;
	struct labelset labels;
	uint32_t pid;
	char service[];		/* NUL-terminated */
};

/* Whole-run figures of one service for the exit summary. */
struct service_sum {
	uint64_t samples;
	struct strmap *funcs;	/* name -> (uintptr_t) self samples */
};

struct profiles {
	uint64_t period_ns;
	int64_t interval_start;
	struct strmap *targets;		/* "service\0pid" -> struct target */
	struct strmap *services;	/* service -> struct service_sum */
	profiles_sink_fn sink;
	void *ctx;
	struct profiles_stats st;
};

static void target_free(void *v)
{
	struct target *t = v;

	if (t) {
		pprof_free(t->b);
		labelset_clear(&t->labels);
	}
	free(t);
}

static void service_free(void *v)
{
	struct service_sum *s = v;

	if (s)
		strmap_free(s->funcs, NULL);
	free(s);
}

struct profiles *profiles_new(uint64_t period_ns, int64_t interval_start_ns,
			      profiles_sink_fn sink, void *ctx)
{
	struct profiles *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->period_ns = period_ns;
	ps->interval_start = interval_start_ns;
	ps->sink = sink;
	ps->ctx = ctx;
	ps->targets = strmap_new(PROFILES_MAX_TARGETS);
	ps->services = strmap_new(PROFILES_MAX_SERVICES);
	if (!ps->targets || !ps->services) {
		profiles_free(ps);
		return NULL;
	}
	return ps;
}

void profiles_free(struct profiles *ps)
{
	if (!ps)
		return;
	strmap_free(ps->targets, target_free);
	strmap_free(ps->services, service_free);
	free(ps);
}

static struct target *target_new(const struct profiles *ps,
				 const char *service, uint32_t pid,
				 const struct labelset *labels)
{
	size_t n = strlen(service);
	struct target *t = calloc(1, sizeof(*t) + n + 1);

	if (!t)
		return NULL;
	/* duration is set at flush, when the interval's real length is known */
	t->b = pprof_new(ps->period_ns, ps->interval_start, 0);
	if (!t->b) {
		free(t);
		return NULL;
	}
	if (labels && labelset_copy(&t->labels, labels) < 0) {
		target_free(t);
		return NULL;
	}
	t->pid = pid;
	memcpy(t->service, service, n + 1);
	return t;
}

struct pprof *profiles_target(struct profiles *ps, const char *service,
			      uint32_t pid, const struct labelset *labels)
{
	char key[512];
	int n = snprintf(key, sizeof(key), "%s%c%u", service, 0, pid);
	void **slot;

	if (n < 0 || (size_t)n >= sizeof(key))
		return NULL;
	slot = strmap_slot(ps->targets, key, (size_t)n, true);
	if (!slot) {
		ps->st.dropped_targets++;
		return NULL;
	}
	if (!*slot)
		*slot = target_new(ps, service, pid, labels);
	if (!*slot) {
		ps->st.dropped_targets++;
		return NULL;
	}
	return ((struct target *)*slot)->b;
}

static void summary_note(struct profiles *ps, const char *service,
			 const char *leaf)
{
	void **slot = strmap_slot(ps->services, service, strlen(service), true);
	struct service_sum *s;
	void **f;

	if (!slot)
		return;
	if (!*slot) {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->funcs = strmap_new(PROFILES_MAX_SUMMARY_FUNCS))) {
			free(s);
			return;
		}
		*slot = s;
	}
	s = *slot;
	s->samples++;
	f = strmap_slot(s->funcs, leaf, strlen(leaf), true);
	if (f)
		*f = (void *)((uintptr_t)*f + 1);
}

int profiles_add(struct profiles *ps, struct pprof *b, const char *service,
		 const uint64_t *locs, size_t n, const char *leaf_func)
{
	int r = pprof_add_sample(b, locs, n, 1);

	if (r < 0) {
		ps->st.dropped_samples++;
		return r;
	}
	ps->st.samples++;
	summary_note(ps, service, leaf_func ? leaf_func : "[unknown]");
	return 0;
}

struct flush_ctx {
	struct profiles *ps;
	int64_t now;
	int err;
};

static int flush_one(const char *key, size_t keylen, void *val, void *arg)
{
	struct flush_ctx *fc = arg;
	struct target *t = val;
	uint8_t *gz = NULL;
	size_t len = 0;
	int r;

	(void)key;
	(void)keylen;
	pprof_set_time(t->b, fc->ps->interval_start,
		       fc->now - fc->ps->interval_start);
	r = pprof_encode(t->b, &gz, &len, true);
	if (r < 0) {
		fc->ps->st.encode_errors++;
		fc->err = r;
		return 0;
	}
	r = fc->ps->sink(fc->ps->ctx, t->service, t->pid, &t->labels,
			 fc->ps->interval_start, fc->now - fc->ps->interval_start,
			 gz, len);
	free(gz);
	if (r < 0) {
		fc->ps->st.sink_errors++;
		fc->err = r;
		return 0;
	}
	fc->ps->st.written++;
	fc->ps->st.bytes += len;
	return 0;
}

int profiles_flush(struct profiles *ps, int64_t now_ns)
{
	struct flush_ctx fc = { .ps = ps, .now = now_ns };
	struct strmap *fresh = strmap_new(PROFILES_MAX_TARGETS);

	if (!fresh)
		return -ENOMEM;
	strmap_foreach(ps->targets, flush_one, &fc);
	strmap_free(ps->targets, target_free);
	ps->targets = fresh;
	ps->interval_start = now_ns;
	return fc.err;
}

void profiles_stats(const struct profiles *ps, struct profiles_stats *st)
{
	*st = ps->st;
}

struct busiest {
	const char *name;
	const struct service_sum *sum;
};

static int find_busiest(const char *key, size_t keylen, void *val, void *arg)
{
	struct busiest *b = arg;
	const struct service_sum *s = val;

	(void)keylen;
	if (!b->sum || s->samples > b->sum->samples) {
		b->name = key;
		b->sum = s;
	}
	return 0;
}

struct topn {
	const char **names;
	uint64_t *counts;
	size_t n, used;
};

/* Insertion into a small sorted array: n is 10, names are few thousand. */
static int top_insert(const char *key, size_t keylen, void *val, void *arg)
{
	struct topn *t = arg;
	uint64_t c = (uintptr_t)val;
	size_t i;

	(void)keylen;
	if (t->used == t->n && c <= t->counts[t->n - 1])
		return 0;
	i = t->used < t->n ? t->used++ : t->n - 1;
	while (i > 0 && t->counts[i - 1] < c) {
		t->counts[i] = t->counts[i - 1];
		t->names[i] = t->names[i - 1];
		i--;
	}
	t->counts[i] = c;
	t->names[i] = key;
	return 0;
}

void profiles_print_top(const struct profiles *ps, FILE *out, size_t n)
{
	struct busiest b = { 0 };
	const char *names[32];
	uint64_t counts[32];
	struct topn t = { names, counts, n < 32 ? n : 32, 0 };
	size_t i;

	strmap_foreach(ps->services, find_busiest, &b);
	if (!b.sum || t.n == 0) {
		fprintf(out, "  no samples were attributed to any target\n");
		return;
	}
	strmap_foreach(b.sum->funcs, top_insert, &t);
	fprintf(out, "  busiest target: %s (%llu samples); top functions (self):\n",
		b.name, (unsigned long long)b.sum->samples);
	for (i = 0; i < t.used; i++)
		fprintf(out, "    %6.2f%%  %8llu  %s\n",
			100.0 * (double)counts[i] / (double)b.sum->samples,
			(unsigned long long)counts[i], names[i]);
}
