/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"

/* Index of name, or of where it would be inserted (as ~index). */
static long find(const struct labelset *ls, const char *name)
{
	size_t lo = 0, hi = ls->n;
	int c;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		c = strcmp(ls->v[mid].name, name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ~(long)lo;
}

const char *labelset_get(const struct labelset *ls, const char *name)
{
	long i = find(ls, name);

	return i >= 0 ? ls->v[i].value : NULL;
}

int labelset_del(struct labelset *ls, const char *name)
{
	long i = find(ls, name);

	if (i < 0)
		return -ENOENT;
	free(ls->v[i].name);
	free(ls->v[i].value);
	memmove(&ls->v[i], &ls->v[i + 1], (ls->n - (size_t)i - 1) * sizeof(*ls->v));
	ls->n--;
	return 0;
}

static int insert_at(struct labelset *ls, size_t at, const char *name,
		     const char *value)
{
	char *n, *v;

	if (ls->n >= LABELS_MAX)
		return -E2BIG;
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 8;
		struct label *nv = realloc(ls->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		ls->v = nv;
		ls->cap = cap;
	}
	n = strdup(name);
	v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	memmove(&ls->v[at + 1], &ls->v[at], (ls->n - at) * sizeof(*ls->v));
	ls->v[at] = (struct label){ n, v };
	ls->n++;
	return 0;
}

int labelset_set(struct labelset *ls, const char *name, const char *value)
{
	long i = find(ls, name);
	char *v;

	if (!value || !*value)
		return i >= 0 ? labelset_del(ls, name) : 0;
	if (i < 0)
		return insert_at(ls, (size_t)~i, name, value);
	v = strdup(value);
	if (!v)
		return -ENOMEM;
	free(ls->v[i].value);
	ls->v[i].value = v;
	return 0;
}

int labelset_copy(struct labelset *dst, const struct labelset *src)
{
	size_t i;
	int r;

	labelset_clear(dst);
	for (i = 0; i < src->n; i++) {
		r = insert_at(dst, i, src->v[i].name, src->v[i].value);
		if (r < 0)
			return r;
	}
	return 0;
}

void labelset_clear(struct labelset *ls)
{
	size_t i;

	for (i = 0; i < ls->n; i++) {
		free(ls->v[i].name);
		free(ls->v[i].value);
	}
	free(ls->v);
	*ls = (struct labelset){ 0 };
}
