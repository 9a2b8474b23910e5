/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"

struct lru_node {
	struct lru_node *hnext;		/* hash chain */
	struct lru_node *prev, *next;	/* recency list, head = newest */
	void *val;
	uint64_t hash;
	size_t klen;
	unsigned char key[LRU_KEY_MAX];
};

struct lru {
	struct lru_node **buckets;
	size_t nbuckets;		/* power of two */
	struct lru_node *head, *tail;
	size_t len, cap;
	void (*free_val)(void *val);
	struct lru_stats st;
};

static uint64_t hash_key(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */
	size_t i;

	for (i = 0; i < klen; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

struct lru *lru_new(size_t capacity, void (*free_val)(void *val))
{
	struct lru *l;
	size_t nb = 16;

	if (capacity == 0 || capacity > (SIZE_MAX >> 4))
		return NULL;
	while (nb < capacity * 2)
		nb <<= 1;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->buckets = calloc(nb, sizeof(*l->buckets));
	if (!l->buckets) {
		free(l);
		return NULL;
	}
	l->nbuckets = nb;
	l->cap = capacity;
	l->free_val = free_val;
	return l;
}

static struct lru_node **find_slot(struct lru *l, const void *key, size_t klen,
				   uint64_t h)
{
	struct lru_node **pp = &l->buckets[h & (l->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->klen == klen &&
		    memcmp((*pp)->key, key, klen) == 0)
			break;
	return pp;
}

static void list_unlink(struct lru *l, struct lru_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
}

static void list_push_head(struct lru *l, struct lru_node *n)
{
	n->next = l->head;
	n->prev = NULL;
	if (l->head)
		l->head->prev = n;
	l->head = n;
	if (!l->tail)
		l->tail = n;
}

void *lru_get(struct lru *l, const void *key, size_t klen, bool *found)
{
	struct lru_node *n = NULL;

	if (klen <= LRU_KEY_MAX)
		n = *find_slot(l, key, klen, hash_key(key, klen));
	*found = n != NULL;
	if (!n) {
		l->st.misses++;
		return NULL;
	}
	l->st.hits++;
	list_unlink(l, n);
	list_push_head(l, n);
	return n->val;
}

static void remove_node(struct lru *l, struct lru_node *n)
{
	struct lru_node **pp = find_slot(l, n->key, n->klen, n->hash);

	*pp = n->hnext;
	list_unlink(l, n);
	l->len--;
	if (l->free_val)
		l->free_val(n->val);
	free(n);
}

int lru_put(struct lru *l, const void *key, size_t klen, void *val)
{
	struct lru_node **pp, *n;
	uint64_t h;

	if (klen > LRU_KEY_MAX)
		return -EINVAL;
	h = hash_key(key, klen);
	pp = find_slot(l, key, klen, h);
	if (*pp) {
		n = *pp;
		if (l->free_val && n->val != val)
			l->free_val(n->val);
		n->val = val;
		list_unlink(l, n);
		list_push_head(l, n);
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->hash = h;
	n->klen = klen;
	memcpy(n->key, key, klen);
	n->val = val;
	n->hnext = *pp;
	*pp = n;
	list_push_head(l, n);
	if (++l->len > l->cap) {
		l->st.evictions++;
		remove_node(l, l->tail);
	}
	return 0;
}

int lru_del(struct lru *l, const void *key, size_t klen)
{
	struct lru_node *n;

	if (klen > LRU_KEY_MAX)
		return -ENOENT;
	n = *find_slot(l, key, klen, hash_key(key, klen));
	if (!n)
		return -ENOENT;
	remove_node(l, n);
	return 0;
}

size_t lru_len(const struct lru *l)
{
	return l->len;
}

void lru_get_stats(const struct lru *l, struct lru_stats *st)
{
	*st = l->st;
}

void lru_free(struct lru *l)
{
	if (!l)
		return;
	while (l->tail)
		remove_node(l, l->tail);
	free(l->buckets);
	free(l);
}
