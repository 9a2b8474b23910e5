/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct strmap_ent {
	char *key;	/* NULL: empty slot */
	size_t keylen;
	uint64_t hash;
	void *val;
};

struct strmap {
	struct strmap_ent *ents;
	size_t cap;	/* power of two, kept at most half full */
	size_t count;
	size_t max;
};

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

struct strmap *strmap_new(size_t max_entries)
{
	struct strmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cap = 16;
	m->max = max_entries;
	m->ents = calloc(m->cap, sizeof(*m->ents));
	if (!m->ents) {
		free(m);
		return NULL;
	}
	return m;
}

void strmap_free(struct strmap *m, void (*free_val)(void *))
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->cap; i++) {
		if (!m->ents[i].key)
			continue;
		if (free_val)
			free_val(m->ents[i].val);
		free(m->ents[i].key);
	}
	free(m->ents);
	free(m);
}

static struct strmap_ent *probe_slot(struct strmap_ent *ents, size_t cap,
				     const char *key, size_t keylen,
				     uint64_t h)
{
	size_t i = h & (cap - 1);

	while (ents[i].key && !(ents[i].hash == h && ents[i].keylen == keylen &&
				memcmp(ents[i].key, key, keylen) == 0))
		i = (i + 1) & (cap - 1);
	return &ents[i];
}

static int grow(struct strmap *m)
{
	size_t ncap = m->cap * 2, i;
	struct strmap_ent *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -1;
	for (i = 0; i < m->cap; i++)
		if (m->ents[i].key)
			*probe_slot(n, ncap, m->ents[i].key, m->ents[i].keylen,
				    m->ents[i].hash) = m->ents[i];
	free(m->ents);
	m->ents = n;
	m->cap = ncap;
	return 0;
}

void **strmap_slot(struct strmap *m, const char *key, size_t keylen,
		   bool create)
{
	uint64_t h = fnv1a(key, keylen);
	struct strmap_ent *e = probe_slot(m->ents, m->cap, key, keylen, h);

	if (e->key)
		return &e->val;
	if (!create || m->count >= m->max)
		return NULL;
	if ((m->count + 1) * 2 > m->cap) {
		if (grow(m) < 0)
			return NULL;
		e = probe_slot(m->ents, m->cap, key, keylen, h);
	}
	e->key = malloc(keylen + 1);
	if (!e->key)
		return NULL;
	memcpy(e->key, key, keylen);
	e->key[keylen] = '\0';
	e->keylen = keylen;
	e->hash = h;
	e->val = NULL;
	m->count++;
	return &e->val;
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

void strmap_foreach(const struct strmap *m,
		    int (*cb)(const char *key, size_t keylen, void *val,
			      void *ctx),
		    void *ctx)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		if (m->ents[i].key &&
		    cb(m->ents[i].key, m->ents[i].keylen, m->ents[i].val, ctx))
			return;
}
