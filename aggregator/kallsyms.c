/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kallsyms.h"
#include "procmaps.h"

#define KSYM_MAX_LINE	1024
#define NO_NAME		UINT32_MAX
#define MAX_MODULES	65535

/*
 * Non-text symbols are kept without a name: they only end the text symbol
 * before them (e.g. the last function of a module before its data).
 */
struct ksym {
	uint64_t addr;
	uint32_t name;		/* offset in pool, NO_NAME for a boundary */
	uint32_t order;		/* line number: kallsyms' own order breaks ties */
	uint16_t mod;		/* 0: vmlinux, else mods[mod - 1] */
	uint8_t rank;		/* among aliases: 2 global text, 1 local, 0 none */
};

struct kallsyms {
	struct ksym *syms;
	size_t n;
	char *pool;		/* the input, NUL-terminated in place */
	uint32_t *mods;		/* pool offsets of module names */
	size_t nmods;
	size_t bad;
};

static bool is_text_type(char t)
{
	return t == 't' || t == 'T' || t == 'w' || t == 'W';
}

static int parse_addr(const char *p, const char *end, uint64_t *out,
		      const char **next)
{
	uint64_t v = 0;
	int digits = 0;

	for (; p < end && *p != ' '; p++, digits++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return -EINVAL;
		if (digits >= 16)
			return -ERANGE;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0 || p == end)
		return -EINVAL;
	*out = v;
	*next = p + 1;
	return 0;
}

/* Interns "[mod]" (p at '[', line end at end); returns the index or -errno. */
static int intern_module(struct kallsyms *ks, char *p, char *end)
{
	char *close = memchr(p, ']', (size_t)(end - p));
	uint32_t off;
	size_t i;

	if (!close || close == p + 1 || close + 1 != end)
		return -EINVAL;
	*close = '\0';
	off = (uint32_t)(p + 1 - ks->pool);
	/* Modules arrive grouped: the last one is almost always the match. */
	for (i = ks->nmods; i-- > 0;)
		if (strcmp(ks->pool + ks->mods[i], p + 1) == 0)
			return (int)i + 1;
	if (ks->nmods >= MAX_MODULES)
		return -E2BIG;
	ks->mods[ks->nmods++] = off;
	return (int)ks->nmods;
}

static int parse_line(struct kallsyms *ks, char *line, char *end,
		      struct ksym *s)
{
	const char *p;
	char *name, *tab;
	char type;
	int mod = 0;

	if (parse_addr(line, end, &s->addr, &p) < 0 || end - p < 3 ||
	    p[1] != ' ')
		return -EINVAL;
	type = p[0];
	name = line + (p + 2 - line);
	tab = memchr(name, '\t', (size_t)(end - name));
	if (tab) {
		mod = intern_module(ks, tab + 1, end);
		if (mod < 0)
			return mod;
		*tab = '\0';
	} else {
		*end = '\0';
	}
	if (*name == '\0' || memchr(name, ' ', strlen(name)))
		return -EINVAL;
	s->mod = (uint16_t)mod;
	s->name = is_text_type(type) ? (uint32_t)(name - ks->pool) : NO_NAME;
	s->rank = !is_text_type(type) ? 0 : (type == 'T' || type == 'W') ? 2 : 1;
	return 0;
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* Like perf: a global name wins over a static alias (e.g.
	 * __x64_sys_getppid over __do_sys_getppid), any name over a boundary. */
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void sort_and_dedupe(struct kallsyms *ks)
{
	size_t i, w = 0;

	qsort(ks->syms, ks->n, sizeof(*ks->syms), cmp_ksym);
	for (i = 0; i < ks->n; i++)
		if (w == 0 || ks->syms[i].addr != ks->syms[w - 1].addr)
			ks->syms[w++] = ks->syms[i];
	ks->n = w;
}

static void parse_all(struct kallsyms *ks, size_t len, bool *nonzero)
{
	char *p = ks->pool, *end = ks->pool + len;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;
		struct ksym *s = &ks->syms[ks->n];

		if (le != p) {
			if (le - p > KSYM_MAX_LINE || parse_line(ks, p, le, s) < 0) {
				ks->bad++;
			} else {
				*nonzero |= s->addr != 0;
				s->order = (uint32_t)ks->n;
				ks->n++;
			}
		}
		p = le + 1;
	}
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 1;
	const char *p = s, *end = s + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

static int kallsyms_alloc(const char *buf, size_t len, struct kallsyms **out)
{
	struct kallsyms *ks = calloc(1, sizeof(*ks));
	size_t lines = count_lines(buf, len);

	if (!ks)
		return -ENOMEM;
	ks->pool = malloc(len + 1);
	ks->syms = calloc(lines, sizeof(*ks->syms));
	ks->mods = calloc(lines < MAX_MODULES ? lines : MAX_MODULES,
			  sizeof(*ks->mods));
	if (!ks->pool || !ks->syms || !ks->mods) {
		kallsyms_free(ks);
		return -ENOMEM;
	}
	memcpy(ks->pool, buf, len);
	ks->pool[len] = '\0';
	*out = ks;
	return 0;
}

int kallsyms_parse(const char *buf, size_t len, struct kallsyms **out)
{
	struct kallsyms *ks = NULL;
	bool nonzero = false;
	int ret;

	*out = NULL;
	if (len > KALLSYMS_MAX_BYTES || len >= NO_NAME)
		return -EFBIG;
	ret = kallsyms_alloc(buf, len, &ks);
	if (ret < 0)
		return ret;
	parse_all(ks, len, &nonzero);
	if (!nonzero) {
		ret = ks->n ? -EPERM : -ENODATA;
		goto out;
	}
	sort_and_dedupe(ks);
	*out = ks;
	ks = NULL;
out:
	kallsyms_free(ks);
	return ret;
}

int kallsyms_read_fd(int fd, struct kallsyms **out)
{
	char *buf;
	size_t len;
	int ret;

	*out = NULL;
	ret = procmaps_read_text(fd, KALLSYMS_MAX_BYTES, &buf, &len);
	if (ret < 0)
		return ret;
	ret = kallsyms_parse(buf, len, out);
	free(buf);
	return ret;
}

const char *kallsyms_lookup(const struct kallsyms *ks, uint64_t ip,
			    const char **module, uint64_t *offset)
{
	size_t lo = 0, hi = ks->n;
	const struct ksym *s;
	uint64_t end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ks->syms[mid].addr <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	s = &ks->syms[lo - 1];
	end = lo < ks->n ? ks->syms[lo].addr : UINT64_MAX;
	if (s->name == NO_NAME || ip >= end ||
	    ip - s->addr >= KALLSYMS_MAX_SYM_SIZE)
		return NULL;
	if (module)
		*module = s->mod ? ks->pool + ks->mods[s->mod - 1] : NULL;
	if (offset)
		*offset = ip - s->addr;
	return ks->pool + s->name;
}

int kallsyms_find(const struct kallsyms *ks, const char *name, uint64_t *addr)
{
	size_t i;

	for (i = 0; i < ks->n; i++) {
		if (ks->syms[i].name != NO_NAME &&
		    strcmp(ks->pool + ks->syms[i].name, name) == 0) {
			*addr = ks->syms[i].addr;
			return 0;
		}
	}
	return -ENOENT;
}

size_t kallsyms_count(const struct kallsyms *ks)
{
	return ks->n;
}

size_t kallsyms_bad_lines(const struct kallsyms *ks)
{
	return ks->bad;
}

void kallsyms_free(struct kallsyms *ks)
{
	if (!ks)
		return;
	free(ks->syms);
	free(ks->pool);
	free(ks->mods);
	free(ks);
}
