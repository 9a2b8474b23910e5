/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "users.h"

struct user {
	uint32_t uid;
	uint32_t seq;	/* file order: the first line for a uid wins */
	char *name;
};

struct users {
	struct user *v;		/* sorted by uid after load */
	size_t n, cap;
};

void users_free(struct users *u)
{
	size_t i;

	if (!u)
		return;
	for (i = 0; i < u->n; i++)
		free(u->v[i].name);
	free(u->v);
	free(u);
}

static int users_add(struct users *u, const char *name, size_t nlen,
		     uint32_t uid)
{
	struct user *nv;

	if (u->n == USERS_MAX)
		return 0;
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 64;
		nv = realloc(u->v, u->cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		u->v = nv;
	}
	u->v[u->n].name = strndup(name, nlen);
	if (!u->v[u->n].name)
		return -ENOMEM;
	u->v[u->n].seq = (uint32_t)u->n;
	u->v[u->n++].uid = uid;
	return 0;
}

/* "name:x:uid:..." -> name, uid. Malformed lines are skipped. */
static int users_line(struct users *u, const char *l, size_t len)
{
	const char *c1 = memchr(l, ':', len), *c2, *p;
	unsigned long uid = 0;

	if (!c1 || c1 == l)
		return 0;
	c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - l));
	if (!c2)
		return 0;
	for (p = c2 + 1; p < l + len && *p != ':'; p++) {
		if (*p < '0' || *p > '9' || uid > 0xffffffffUL / 10)
			return 0;
		uid = uid * 10 + (unsigned long)(*p - '0');
	}
	if (p == c2 + 1 || p == l + len || uid > 0xffffffffUL)
		return 0;
	return users_add(u, l, (size_t)(c1 - l), (uint32_t)uid);
}

static int user_cmp(const void *a, const void *b)
{
	const struct user *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int users_parse(const char *text, size_t len, struct users **out)
{
	struct users *u = calloc(1, sizeof(*u));
	const char *l = text, *end = text + len, *eol;
	int r = 0;

	if (!u)
		return -ENOMEM;
	for (; l < end && r == 0; l = eol + 1) {
		eol = memchr(l, '\n', (size_t)(end - l));
		if (!eol)
			eol = end;
		r = users_line(u, l, (size_t)(eol - l));
	}
	if (r < 0) {
		users_free(u);
		return r;
	}
	if (u->n)	/* qsort(NULL, 0) is undefined behaviour */
		qsort(u->v, u->n, sizeof(*u->v), user_cmp);
	*out = u;
	return 0;
}

static int read_text(const char *path, char **buf, size_t *len)
{
	ssize_t n = 0;
	size_t off = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*buf = malloc(USERS_FILE_MAX);
	if (!*buf) {
		r = -ENOMEM;
		goto out;
	}
	while (off < USERS_FILE_MAX &&
	       (n = read(fd, *buf + off, USERS_FILE_MAX - off)) > 0)
		off += (size_t)n;
	if (n < 0)
		r = -errno;
	*len = off;
out:
	(void)close(fd);
	return r;
}

int users_load(const char *path, struct users **out)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = read_text(path, &buf, &len);
	if (r == -ENOENT)
		return users_parse("", 0, out);
	if (r == 0)
		r = users_parse(buf, len, out);
	free(buf);
	return r;
}

const char *users_name(const struct users *u, uint32_t uid)
{
	size_t lo = 0, hi, mid;

	if (!u)
		return NULL;
	hi = u->n;
	/* lower bound: the first entry with this uid */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (u->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < u->n && u->v[lo].uid == uid ? u->v[lo].name : NULL;
}
