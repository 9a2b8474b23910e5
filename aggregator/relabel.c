/* SPDX-License-Identifier: BSD-2-Clause */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "relabel.h"

#define RELABEL_MATCH_LIMIT	1000000
#define RELABEL_VALUE_MAX	(64u << 10)	/* joined sources, expansions */

struct rule {
	int action;
	char **sources;
	size_t n_sources;
	const char *separator, *replacement, *target;
	uint64_t modulus;
	pcre2_code *re;
	uint32_t ngroups;
};

struct relabel {
	struct rule *v;
	size_t n;
	pcre2_match_context *mctx;
	pcre2_match_data *md;	/* sized for the rule with most groups */
};

/* --- MD5 (RFC 1321), only for hashmod ---------------------------------- */

struct md5 {
	uint32_t h[4];
	uint64_t len;
	unsigned char buf[64];
};

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
	0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
	0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
	0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
	0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
	0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const unsigned char md5_r[64] = {
	7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
	5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
	4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
	6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static void md5_block(uint32_t h[4], const unsigned char *p)
{
	uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3], f, t;
	unsigned int i, g;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		       (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (i = 0; i < 64; i++) {
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		t = d;
		d = c;
		c = b;
		f += a + md5_k[i] + w[g];
		b += (f << md5_r[i]) | (f >> (32 - md5_r[i]));
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

static void md5_sum(const void *data, size_t len, unsigned char out[16])
{
	struct md5 m = { { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 },
			 0, { 0 } };
	const unsigned char *p = data;
	unsigned char tail[128] = { 0 };
	size_t i, rest = len % 64, tl = rest < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;

	for (i = 0; i + 64 <= len; i += 64)
		md5_block(m.h, p + i);
	memcpy(tail, p + i, rest);
	tail[rest] = 0x80;
	for (i = 0; i < 8; i++)
		tail[tl - 8 + i] = (unsigned char)(bits >> (8 * i));
	for (i = 0; i < tl; i += 64)
		md5_block(m.h, tail + i);
	for (i = 0; i < 16; i++)
		out[i] = (unsigned char)(m.h[i / 4] >> (8 * (i % 4)));
}

uint64_t relabel_hashmod(const char *s, size_t len, uint64_t modulus)
{
	unsigned char d[16];
	uint64_t v = 0;
	int i;

	md5_sum(s, len, d);
	/* Prometheus: binary.BigEndian.Uint64(hash[8:]) % modulus */
	for (i = 8; i < 16; i++)
		v = v << 8 | d[i];
	return modulus ? v % modulus : 0;
}

/* --- compile ---------------------------------------------------------- */

void relabel_free(struct relabel *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++)
		pcre2_code_free(r->v[i].re);
	free(r->v);
	pcre2_match_context_free(r->mctx);
	pcre2_match_data_free(r->md);
	free(r);
}

static pcre2_code *compile_anchored(const char *re, char *err, size_t errlen,
				    int line)
{
	size_t n = strlen(re) + 16;
	char *a = malloc(n);
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	pcre2_code *code;
	int ec;

	if (!a)
		return NULL;
	/* Prometheus compiles "^(?s:" + re + ")$" */
	(void)snprintf(a, n, "^(?s:%s)$", re);
	code = pcre2_compile((PCRE2_SPTR)a, PCRE2_ZERO_TERMINATED,
			     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off,
			     NULL);
	free(a);
	if (!code) {
		(void)pcre2_get_error_message(ec, msg, sizeof(msg));
		(void)snprintf(err, errlen, "relabel rule at line %d: regex: %s",
			       line, (const char *)msg);
	}
	return code;
}

static int rule_compile(struct rule *d, const struct cfg_relabel_rule *s,
			char *err, size_t errlen)
{
	d->action = s->action;
	d->sources = s->source_labels;
	d->n_sources = s->n_source_labels;
	d->separator = s->separator ? s->separator : ";";
	d->replacement = s->replacement ? s->replacement : "$1";
	d->target = s->target_label ? s->target_label : "";
	d->modulus = s->modulus;
	if (s->action < RELABEL_REPLACE || s->action > RELABEL_UPPERCASE) {
		(void)snprintf(err, errlen, "relabel rule at line %d: bad "
			       "action %d", s->line, s->action);
		return -EINVAL;
	}
	if (s->action == RELABEL_HASHMOD && !s->modulus) {
		(void)snprintf(err, errlen, "relabel rule at line %d: hashmod "
			       "needs a modulus", s->line);
		return -EINVAL;
	}
	d->re = compile_anchored(s->regex ? s->regex : "(.*)", err, errlen,
				 s->line);
	if (!d->re)
		return -EINVAL;
	(void)pcre2_pattern_info(d->re, PCRE2_INFO_CAPTURECOUNT, &d->ngroups);
	return 0;
}

/*
 * The rules keep pointers into the config's strings (source labels,
 * separator, replacement, target): the config outlives the relabeler.
 */
struct relabel *relabel_compile(const struct cfg_relabel_rules *rules,
				char *err, size_t errlen)
{
	struct relabel *r = calloc(1, sizeof(*r));
	uint32_t most = 0;
	size_t i;

	if (errlen)
		err[0] = '\0';
	if (!r)
		return NULL;
	r->v = calloc(rules->n ? rules->n : 1, sizeof(*r->v));
	r->mctx = pcre2_match_context_create(NULL);
	if (!r->v || !r->mctx)
		goto fail;
	(void)pcre2_set_match_limit(r->mctx, RELABEL_MATCH_LIMIT);
	for (i = 0; i < rules->n; i++, r->n++) {
		if (rule_compile(&r->v[i], &rules->v[i], err, errlen) < 0)
			goto fail;
		if (r->v[i].ngroups > most)
			most = r->v[i].ngroups;
	}
	r->md = pcre2_match_data_create(most + 1, NULL);
	if (!r->md)
		goto fail;
	return r;
fail:
	if (errlen && !err[0])
		(void)snprintf(err, errlen, "relabel: out of memory");
	relabel_free(r);
	return NULL;
}

/* --- apply ------------------------------------------------------------ */

/* A growable string, capped so hostile label values cannot blow it up. */
struct buf {
	char *p;
	size_t n, cap;
	int err;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->err)
		return;
	if (b->n + n + 1 > RELABEL_VALUE_MAX) {
		b->err = -E2BIG;
		return;
	}
	if (b->n + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < b->n + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static int join_sources(const struct rule *r, const struct labelset *ls,
			struct buf *b)
{
	const char *v;
	size_t i;

	buf_add(b, "", 0);
	for (i = 0; i < r->n_sources; i++) {
		if (i)
			buf_add(b, r->separator, strlen(r->separator));
		v = labelset_get(ls, r->sources[i]);
		if (v)
			buf_add(b, v, strlen(v));
	}
	return b->err;
}

/* 1 match (ovector in md), 0 no match (or the match limit was hit). */
static int rule_match(const struct relabel *rl, const struct rule *r,
		      const char *s, size_t n)
{
	return pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, 0, rl->md,
			   rl->mctx) > 0;
}

static int name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Go's regexp.extract: a name or number after '$', braced or not. */
static size_t template_name(const char *t, const char **name, size_t *nlen)
{
	size_t i = 0, brace = t[0] == '{';

	while (name_char(t[brace + i]))
		i++;
	if (i == 0 || (brace && t[brace + i] != '}'))
		return 0;
	*name = t + brace;
	*nlen = i;
	return brace + i + brace;
}

/* The group a name refers to: digits (no leading zero) or a group name. */
static int group_index(const struct rule *r, const char *name, size_t n)
{
	char tmp[64];
	size_t i;
	int num = 0;

	for (i = 0; i < n && name[i] >= '0' && name[i] <= '9' && num < 100000000;
	     i++)
		num = num * 10 + (name[i] - '0');
	if (i == n && !(name[0] == '0' && n > 1))
		return (uint32_t)num <= r->ngroups ? num : -1;
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, name, n);
	tmp[n] = '\0';
	return pcre2_substring_number_from_name(r->re, (PCRE2_SPTR)tmp);
}

static void add_group(const struct relabel *rl, int g, const char *src,
		      struct buf *out)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rl->md);

	if (g < 0 || ov[2 * g] == PCRE2_UNSET)
		return;
	buf_add(out, src + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/* Go's Regexp.ExpandString over the last match of r on src. */
static int expand(const struct relabel *rl, const struct rule *r,
		  const char *tmpl, const char *src, struct buf *out)
{
	const char *t = tmpl, *dollar, *name;
	size_t used, nlen;

	buf_add(out, "", 0);
	while ((dollar = strchr(t, '$'))) {
		buf_add(out, t, (size_t)(dollar - t));
		t = dollar + 1;
		if (*t == '$') {
			buf_add(out, "$", 1);
			t++;
			continue;
		}
		used = template_name(t, &name, &nlen);
		if (!used) {
			buf_add(out, "$", 1);
			continue;
		}
		add_group(rl, group_index(r, name, nlen), src, out);
		t += used;
	}
	buf_add(out, t, strlen(t));
	return out->err;
}

static int label_name_valid(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!name_char(*s))
			return 0;
	return 1;
}

static int do_replace(const struct relabel *rl, const struct rule *r,
		      struct labelset *ls, const char *val)
{
	struct buf target = { 0 }, res = { 0 };
	int ret;

	if (!rule_match(rl, r, val, strlen(val)))
		return 1;
	ret = expand(rl, r, r->target, val, &target);
	if (ret == 0)
		ret = expand(rl, r, r->replacement, val, &res);
	if (ret == 0 && label_name_valid(target.p))
		ret = res.n ? labelset_set(ls, target.p, res.p) :
		      (labelset_del(ls, target.p), 0);
	free(target.p);
	free(res.p);
	return ret < 0 ? ret : 1;
}

static int do_case(const struct rule *r, struct labelset *ls, char *val)
{
	char *p;

	for (p = val; *p; p++)
		*p = (char)(r->action == RELABEL_LOWERCASE ?
			    tolower((unsigned char)*p) :
			    toupper((unsigned char)*p));
	return labelset_set(ls, r->target, val) < 0 ? -ENOMEM : 1;
}

static int do_hashmod(const struct rule *r, struct labelset *ls,
		      const char *val)
{
	char num[24];

	(void)snprintf(num, sizeof(num), "%llu", (unsigned long long)
		       relabel_hashmod(val, strlen(val), r->modulus));
	return labelset_set(ls, r->target, num) < 0 ? -ENOMEM : 1;
}

/* labelmap/labeldrop/labelkeep look at the names as they were before. */
static int do_names(const struct relabel *rl, const struct rule *r,
		    struct labelset *ls)
{
	struct labelset snap = { 0 };
	struct buf name = { 0 };
	size_t i;
	int ret, m;

	ret = labelset_copy(&snap, ls);
	for (i = 0; ret == 0 && i < snap.n; i++) {
		m = rule_match(rl, r, snap.v[i].name, strlen(snap.v[i].name));
		if (r->action == RELABEL_LABELDROP && m)
			(void)labelset_del(ls, snap.v[i].name);
		else if (r->action == RELABEL_LABELKEEP && !m)
			(void)labelset_del(ls, snap.v[i].name);
		else if (r->action == RELABEL_LABELMAP && m) {
			name.n = 0;
			ret = expand(rl, r, r->replacement, snap.v[i].name,
				     &name);
			if (ret == 0)
				ret = labelset_set(ls, name.p, snap.v[i].value);
		}
	}
	free(name.p);
	labelset_clear(&snap);
	return ret < 0 ? ret : 1;
}

static int rule_apply(const struct relabel *rl, const struct rule *r,
		      struct labelset *ls, char *val)
{
	const char *t;

	switch (r->action) {
	case RELABEL_DROP:
		return !rule_match(rl, r, val, strlen(val));
	case RELABEL_KEEP:
		return rule_match(rl, r, val, strlen(val));
	case RELABEL_DROPEQUAL:
		t = labelset_get(ls, r->target);
		return strcmp(t ? t : "", val) != 0;
	case RELABEL_KEEPEQUAL:
		t = labelset_get(ls, r->target);
		return strcmp(t ? t : "", val) == 0;
	case RELABEL_REPLACE:
		return do_replace(rl, r, ls, val);
	case RELABEL_LOWERCASE:
	case RELABEL_UPPERCASE:
		return do_case(r, ls, val);
	case RELABEL_HASHMOD:
		return do_hashmod(r, ls, val);
	default:
		return do_names(rl, r, ls);
	}
}

int relabel_apply(const struct relabel *rl, struct labelset *ls)
{
	struct buf val = { 0 };
	size_t i;
	int ret = 1;

	for (i = 0; ret == 1 && i < rl->n; i++) {
		val.n = 0;
		ret = join_sources(&rl->v[i], ls, &val);
		if (ret == 0)
			ret = rule_apply(rl, &rl->v[i], ls, val.p);
	}
	free(val.p);
	return ret;
}
