/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.c - the YAML configuration, strict.
 *
 * The file is parsed event by event into a small tree of our own (libyaml's
 * document API resolves aliases silently and forgets duplicate keys), then
 * every map is walked against a table of the keys it may hold. Each error
 * names file:line: key.path: why; values of secret keys are never quoted.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config.h"
#include "loop.h"
#include "sp_duration.h"

#define CFG_FILE_MAX		(4u << 20)	/* the YAML file itself */
#define CFG_SECRET_MAX		65536		/* password_file & co */
#define CFG_PEM_MAX		(1u << 20)	/* ca_file: a bundle is big */
#define CFG_DEPTH_MAX		32
#define CFG_NODES_MAX		200000
#define CFG_KEY_MAX		256
#define CFG_FIELDS_MAX		64
#define NS_PER_MS		1000000ull
#define NS_PER_S		1000000000ull

/* --- the tree --------------------------------------------------------- */

enum { Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
	int type;
	int line;
	int plain;		/* unquoted scalar: may be null/bool/int */
	char *s;
	struct ynode **kid;	/* maps: key, value, key, value, ... */
	size_t n, cap;
};

struct cfgctx {
	const char *path;	/* as given, for messages */
	char *dir;		/* the file's folder, for relative *_file */
	char *err;
	size_t errlen;
	size_t nodes;
};

static void ynode_free(struct ynode *y)
{
	size_t i;

	if (!y)
		return;
	for (i = 0; i < y->n; i++)
		ynode_free(y->kid[i]);
	free(y->kid);
	free(y->s);
	free(y);
}

static int cfg_error(struct cfgctx *x, int line, const char *key,
		     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cfg_error(struct cfgctx *x, int line, const char *key,
		     const char *fmt, ...)
{
	char why[CFG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (x->errlen)
		(void)snprintf(x->err, x->errlen, "%s:%d: %s: %s", x->path,
			       line, key, why);
	return -EINVAL;
}

static int ynode_add(struct ynode *parent, struct ynode *kid)
{
	struct ynode **nk;

	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 8;
		nk = realloc(parent->kid, parent->cap * sizeof(*nk));
		if (!nk)
			return -ENOMEM;
		parent->kid = nk;
	}
	parent->kid[parent->n++] = kid;
	return 0;
}

static struct ynode *ynode_new(struct cfgctx *x, const yaml_event_t *ev,
			       int type)
{
	struct ynode *y;

	if (++x->nodes > CFG_NODES_MAX)
		return NULL;
	y = calloc(1, sizeof(*y));
	if (!y)
		return NULL;
	y->type = type;
	y->line = (int)ev->start_mark.line + 1;
	if (type == Y_SCALAR) {
		y->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		y->s = strndup((const char *)ev->data.scalar.value,
			       ev->data.scalar.length);
		if (!y->s) {
			free(y);
			return NULL;
		}
	}
	return y;
}

struct ybuild {
	struct ynode *stack[CFG_DEPTH_MAX];
	int depth;
	struct ynode *root;
	int docs;
};

static const unsigned char *event_anchor(const yaml_event_t *ev)
{
	if (ev->type == YAML_SCALAR_EVENT)
		return ev->data.scalar.anchor;
	if (ev->type == YAML_MAPPING_START_EVENT)
		return ev->data.mapping_start.anchor;
	if (ev->type == YAML_SEQUENCE_START_EVENT)
		return ev->data.sequence_start.anchor;
	return NULL;
}

/* Attach a new node under the open container (or as the root). */
static int ybuild_node(struct cfgctx *x, struct ybuild *b,
		       const yaml_event_t *ev, int type)
{
	int line = (int)ev->start_mark.line + 1;
	struct ynode *y;

	if (event_anchor(ev))
		return cfg_error(x, line, "yaml",
				 "anchors and aliases are not supported");
	if (type != Y_SCALAR && b->depth == CFG_DEPTH_MAX)
		return cfg_error(x, line, "yaml", "nested too deeply");
	y = ynode_new(x, ev, type);
	if (!y)
		return x->nodes > CFG_NODES_MAX ?
		       cfg_error(x, line, "yaml", "too many nodes") : -ENOMEM;
	if (b->depth == 0) {
		b->root = y;
	} else if (ynode_add(b->stack[b->depth - 1], y) < 0) {
		ynode_free(y);
		return -ENOMEM;
	}
	if (type != Y_SCALAR)
		b->stack[b->depth++] = y;
	return 0;
}

static int ybuild_event(struct cfgctx *x, struct ybuild *b,
			const yaml_event_t *ev)
{
	int line = (int)ev->start_mark.line + 1;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->docs > 1)
			return cfg_error(x, line, "yaml",
					 "only one document is allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return cfg_error(x, line, "yaml",
				 "anchors and aliases are not supported");
	case YAML_SCALAR_EVENT:
		return ybuild_node(x, b, ev, Y_SCALAR);
	case YAML_MAPPING_START_EVENT:
		return ybuild_node(x, b, ev, Y_MAP);
	case YAML_SEQUENCE_START_EVENT:
		return ybuild_node(x, b, ev, Y_SEQ);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		b->depth--;
		return 0;
	default:
		return 0;
	}
}

static int yaml_syntax_error(struct cfgctx *x, const yaml_parser_t *p)
{
	const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->mark;

	if (p->context)
		return cfg_error(x, (int)m->line + 1, "yaml", "%s %s",
				 p->problem ? p->problem : "syntax error",
				 p->context);
	return cfg_error(x, (int)m->line + 1, "yaml", "%s",
			 p->problem ? p->problem : "syntax error");
}

static int yaml_to_tree(struct cfgctx *x, const char *text, size_t len,
			struct ynode **root)
{
	struct ybuild b = { .depth = 0 };
	yaml_parser_t p;
	yaml_event_t ev;
	int ret = 0, done = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && ret == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			ret = yaml_syntax_error(x, &p);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		ret = ybuild_event(x, &b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (ret < 0) {
		ynode_free(b.root);
		return ret;
	}
	*root = b.root;
	return 0;
}

/* --- reading files ---------------------------------------------------- */

static int read_file_capped(const char *path, size_t cap, char **out,
			    size_t *outlen)
{
	char *buf;
	size_t off = 0;
	ssize_t n = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (off <= cap && (n = read(fd, buf + off, cap + 1 - off)) > 0)
		off += (size_t)n;
	if (n < 0)
		ret = -errno;
	else if (off > cap)
		ret = -EFBIG;
	if (ret < 0) {
		free(buf);
		goto out;
	}
	buf[off] = '\0';
	*out = buf;
	*outlen = off;
out:
	(void)close(fd);
	return ret;
}

/* --- value helpers ---------------------------------------------------- */

static const char *kind_name(const struct ynode *v)
{
	return v->type == Y_MAP ? "a map" : v->type == Y_SEQ ? "a list" :
	       "a scalar";
}

static int is_null(const struct ynode *v)
{
	return v->type == Y_SCALAR && v->plain &&
	       (!*v->s || !strcmp(v->s, "~") || !strcmp(v->s, "null") ||
		!strcmp(v->s, "Null") || !strcmp(v->s, "NULL"));
}

/* What we got, for a message: quoted (bounded) text, or its kind. */
static void got(const struct ynode *v, int secret, char *buf, size_t size)
{
	if (v->type != Y_SCALAR)
		(void)snprintf(buf, size, "%s", kind_name(v));
	else if (is_null(v))
		(void)snprintf(buf, size, "null");
	else if (secret)
		(void)snprintf(buf, size, "a value (not shown: secret)");
	else
		(void)snprintf(buf, size, "\"%.64s\"%s", v->s,
			       strlen(v->s) > 64 ? "..." : "");
}

static int want_string(struct cfgctx *x, const struct ynode *v,
		       const char *key, int secret)
{
	char g[96];

	if (v->type == Y_SCALAR && !is_null(v))
		return 0;
	got(v, secret, g, sizeof(g));
	return cfg_error(x, v->line, key, "expected a string, got %s", g);
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static void fmt_duration(uint64_t ns, char *buf, size_t size)
{
	if (ns % (3600 * NS_PER_S) == 0 && ns)
		(void)snprintf(buf, size, "%lluh",
			       (unsigned long long)(ns / (3600 * NS_PER_S)));
	else if (ns % (60 * NS_PER_S) == 0 && ns)
		(void)snprintf(buf, size, "%llum",
			       (unsigned long long)(ns / (60 * NS_PER_S)));
	else if (ns % NS_PER_S == 0)
		(void)snprintf(buf, size, "%llus",
			       (unsigned long long)(ns / NS_PER_S));
	else if (ns % NS_PER_MS == 0)
		(void)snprintf(buf, size, "%llums",
			       (unsigned long long)(ns / NS_PER_MS));
	else
		(void)snprintf(buf, size, "%lluns", (unsigned long long)ns);
}

/* --- field tables ----------------------------------------------------- */

struct field;
typedef int (*field_fn)(struct cfgctx *x, const struct ynode *v,
			const char *key, void *dst, const struct field *f);

struct field {
	const char *name;
	field_fn fn;
	size_t off;
	uint64_t lo, hi;
	const char *const *words;	/* enums */
	int secret;
};

/* Which keys a map held, and where, for conflicts and required keys. */
struct seen {
	uint64_t bits;
	int line[CFG_FIELDS_MAX];
	int map_line;
};

static int f_u64(struct cfgctx *x, const struct ynode *v, const char *key,
		 void *dst, const struct field *f)
{
	uint64_t n;
	char g[96];

	if (v->type == Y_SCALAR && parse_u64(v->s, &n) == 0 &&
	    n >= f->lo && n <= f->hi) {
		*(uint64_t *)dst = n;
		return 0;
	}
	got(v, 0, g, sizeof(g));
	return cfg_error(x, v->line, key,
			 "expected an integer between %llu and %llu, got %s",
			 (unsigned long long)f->lo, (unsigned long long)f->hi, g);
}

static int f_u32(struct cfgctx *x, const struct ynode *v, const char *key,
		 void *dst, const struct field *f)
{
	uint64_t n;
	int ret = f_u64(x, v, key, &n, f);

	if (ret == 0)
		*(uint32_t *)dst = (uint32_t)n;
	return ret;
}

static int f_bool(struct cfgctx *x, const struct ynode *v, const char *key,
		  void *dst, const struct field *f)
{
	static const char *const t[] = { "true", "True", "TRUE" };
	static const char *const fl[] = { "false", "False", "FALSE" };
	char g[96];
	size_t i;

	(void)f;
	for (i = 0; v->type == Y_SCALAR && i < 3; i++) {
		if (!strcmp(v->s, t[i]) || !strcmp(v->s, fl[i])) {
			*(bool *)dst = !strcmp(v->s, t[i]);
			return 0;
		}
	}
	got(v, 0, g, sizeof(g));
	return cfg_error(x, v->line, key, "expected true or false, got %s", g);
}

static int f_duration(struct cfgctx *x, const struct ynode *v,
		      const char *key, void *dst, const struct field *f)
{
	char g[96], lo[32], hi[32];
	uint64_t ns;

	got(v, 0, g, sizeof(g));
	if (v->type != Y_SCALAR || sp_parse_duration(v->s, &ns) < 0)
		return cfg_error(x, v->line, key, "expected a duration like "
				 "15s or 500ms, got %s", g);
	if (ns < f->lo || ns > f->hi) {
		fmt_duration(f->lo, lo, sizeof(lo));
		fmt_duration(f->hi, hi, sizeof(hi));
		return cfg_error(x, v->line, key, "expected a duration "
				 "between %s and %s, got %s", lo, hi, g);
	}
	*(uint64_t *)dst = ns;
	return 0;
}

static int f_string(struct cfgctx *x, const struct ynode *v, const char *key,
		    void *dst, const struct field *f)
{
	char **s = dst, *d;
	int ret = want_string(x, v, key, f->secret);

	if (ret < 0)
		return ret;
	d = strdup(v->s);
	if (!d)
		return -ENOMEM;
	free(*s);
	*s = d;
	return 0;
}

static int enum_index(struct cfgctx *x, const struct ynode *v,
		      const char *key, const struct field *f)
{
	char list[256] = "", g[96];
	size_t i, o = 0;

	for (i = 0; v->type == Y_SCALAR && f->words[i]; i++)
		if (!strcmp(v->s, f->words[i]))
			return (int)i;
	for (i = 0; f->words[i]; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
				      i ? ", " : "", f->words[i]);
	got(v, 0, g, sizeof(g));
	return cfg_error(x, v->line, key, "expected one of %s, got %s", list, g);
}

static int f_enum_int(struct cfgctx *x, const struct ynode *v,
		      const char *key, void *dst, const struct field *f)
{
	int i = enum_index(x, v, key, f);

	if (i < 0)
		return i;
	*(int *)dst = i;
	return 0;
}

static int f_enum_str(struct cfgctx *x, const struct ynode *v,
		      const char *key, void *dst, const struct field *f)
{
	int i = enum_index(x, v, key, f);

	if (i < 0)
		return i;
	return f_string(x, v, key, dst, f);
}

/* path relative to the config file's folder, as Prometheus does */
static int read_key_file(struct cfgctx *x, const struct ynode *v,
			 const char *key, size_t cap, char **dst)
{
	char full[4096], *buf = NULL;
	size_t len = 0;
	int ret;

	ret = want_string(x, v, key, 0);
	if (ret < 0)
		return ret;
	if (v->s[0] == '/' || !x->dir)
		(void)snprintf(full, sizeof(full), "%s", v->s);
	else
		(void)snprintf(full, sizeof(full), "%s/%s", x->dir, v->s);
	ret = read_file_capped(full, cap, &buf, &len);
	if (ret == -EFBIG)
		return cfg_error(x, v->line, key, "%s is larger than %zu bytes",
				 v->s, cap);
	if (ret < 0)
		return cfg_error(x, v->line, key, "cannot read %s: %s", v->s,
				 strerror(-ret));
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	free(*dst);
	*dst = buf;
	return 0;
}

static int f_secret_file(struct cfgctx *x, const struct ynode *v,
			 const char *key, void *dst, const struct field *f)
{
	(void)f;
	return read_key_file(x, v, key, CFG_SECRET_MAX, dst);
}

static int f_pem_file(struct cfgctx *x, const struct ynode *v,
		      const char *key, void *dst, const struct field *f)
{
	(void)f;
	return read_key_file(x, v, key, CFG_PEM_MAX, dst);
}

static void key_join(char *buf, size_t size, const char *prefix,
		     const char *name)
{
	if (prefix && *prefix)
		(void)snprintf(buf, size, "%s.%s", prefix, name);
	else
		(void)snprintf(buf, size, "%s", name);
}

static const struct field *field_find(const struct field *fields,
				      const char *name, size_t *idx)
{
	size_t i;

	for (i = 0; fields[i].name; i++) {
		if (!strcmp(fields[i].name, name)) {
			*idx = i;
			return &fields[i];
		}
	}
	return NULL;
}

static int want_map(struct cfgctx *x, const struct ynode *v, const char *key)
{
	if (v->type == Y_MAP)
		return 0;
	return cfg_error(x, v->line, key, "expected a map, got %s",
			 is_null(v) ? "null" : kind_name(v));
}

static int parse_map(struct cfgctx *x, const struct ynode *m,
		     const char *prefix, const struct field *fields,
		     void *base, struct seen *seen)
{
	char key[CFG_KEY_MAX];
	const struct field *f;
	const struct ynode *k;
	size_t i, idx;
	int ret;

	memset(seen, 0, sizeof(*seen));
	seen->map_line = m->line;
	ret = want_map(x, m, prefix && *prefix ? prefix : "(top level)");
	for (i = 0; ret == 0 && i + 1 < m->n; i += 2) {
		k = m->kid[i];
		if (k->type != Y_SCALAR)
			return cfg_error(x, k->line, prefix && *prefix ? prefix
					 : "(top level)",
					 "keys must be strings, got %s",
					 kind_name(k));
		key_join(key, sizeof(key), prefix, k->s);
		f = field_find(fields, k->s, &idx);
		if (!f)
			return cfg_error(x, k->line, key, "unknown key");
		if (seen->bits & (1ull << idx))
			return cfg_error(x, k->line, key, "duplicate key");
		seen->bits |= 1ull << idx;
		seen->line[idx] = k->line;
		ret = f->fn(x, m->kid[i + 1], key, (char *)base + f->off, f);
	}
	return ret;
}

static int seen_has(const struct field *fields, const struct seen *s,
		    const char *name, int *line)
{
	size_t idx;

	if (!field_find(fields, name, &idx) || !(s->bits & (1ull << idx)))
		return 0;
	if (line)
		*line = s->line[idx];
	return 1;
}

/* a and b both given: report at the later one. */
static int conflict(struct cfgctx *x, const char *prefix,
		    const struct field *fields, const struct seen *s,
		    const char *a, const char *b)
{
	char key[CFG_KEY_MAX];
	int la, lb;

	if (!seen_has(fields, s, a, &la) || !seen_has(fields, s, b, &lb))
		return 0;
	key_join(key, sizeof(key), prefix, la > lb ? a : b);
	return cfg_error(x, la > lb ? la : lb, key,
			 "cannot be used together with %s", la > lb ? b : a);
}

static int require(struct cfgctx *x, const char *prefix,
		   const struct field *fields, const struct seen *s,
		   const char *name)
{
	if (seen_has(fields, s, name, NULL))
		return 0;
	return cfg_error(x, s->map_line, prefix && *prefix ? prefix :
			 "(top level)", "missing required key %s", name);
}

/* --- labels ----------------------------------------------------------- */

/* Pyroscope's rule: [A-Za-z_][A-Za-z0-9_.]* (dots allowed, unlike Prom). */
static int label_name_ok(const char *s, int dots)
{
	const char *p;

	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' ||
		      (dots && *p == '.')))
			return 0;
	return 1;
}

static void labels_free(struct cfg_labels *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int labels_push(struct cfg_labels *l, const char *name,
		       const char *value)
{
	struct cfg_label *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	l->v = nv;
	nv[l->n].name = strdup(name);
	nv[l->n].value = strdup(value);
	if (!nv[l->n].name || !nv[l->n].value) {
		free(nv[l->n].name);
		free(nv[l->n].value);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

/* A map of label name -> string value (headers allow any name). */
static int parse_labels(struct cfgctx *x, const struct ynode *v,
			const char *key, struct cfg_labels *out, int check)
{
	char k2[CFG_KEY_MAX];
	size_t i, j;
	int ret = want_map(x, v, key);

	labels_free(out);
	for (i = 0; ret == 0 && i + 1 < v->n; i += 2) {
		ret = want_string(x, v->kid[i], key, 0);
		if (ret < 0)
			break;
		key_join(k2, sizeof(k2), key, v->kid[i]->s);
		if (check && !label_name_ok(v->kid[i]->s, 1))
			return cfg_error(x, v->kid[i]->line, k2,
					 "invalid label name");
		for (j = 0; j < i; j += 2)
			if (!strcmp(v->kid[j]->s, v->kid[i]->s))
				return cfg_error(x, v->kid[i]->line, k2,
						 "duplicate key");
		ret = want_string(x, v->kid[i + 1], k2, 0);
		if (ret == 0)
			ret = labels_push(out, v->kid[i]->s, v->kid[i + 1]->s);
	}
	return ret;
}

static int f_labels(struct cfgctx *x, const struct ynode *v, const char *key,
		    void *dst, const struct field *f)
{
	(void)f;
	return parse_labels(x, v, key, dst, 1);
}

static int f_headers(struct cfgctx *x, const struct ynode *v,
		     const char *key, void *dst, const struct field *f)
{
	(void)f;
	return parse_labels(x, v, key, dst, 0);
}

static int want_list(struct cfgctx *x, const struct ynode *v, const char *key)
{
	if (v->type == Y_SEQ)
		return 0;
	return cfg_error(x, v->line, key, "expected a list, got %s",
			 is_null(v) ? "null" : kind_name(v));
}

static int f_targets(struct cfgctx *x, const struct ynode *v, const char *key,
		     void *dst, const struct field *f)
{
	struct config *c = (struct config *)((char *)dst - f->off);
	char k2[CFG_KEY_MAX];
	size_t i;
	int ret = want_list(x, v, key);

	if (ret < 0)
		return ret;
	c->targets = calloc(v->n ? v->n : 1, sizeof(*c->targets));
	if (!c->targets)
		return -ENOMEM;
	for (i = 0; ret == 0 && i < v->n; i++) {
		(void)snprintf(k2, sizeof(k2), "%s[%zu]", key, i);
		c->n_targets = i + 1;
		ret = parse_labels(x, v->kid[i], k2, &c->targets[i], 1);
	}
	return ret;
}

/* --- relabel rules ---------------------------------------------------- */

static const char *const relabel_actions[] = {
	"replace", "keep", "drop", "keepequal", "dropequal", "hashmod",
	"labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase", NULL,
};

static int f_source_labels(struct cfgctx *x, const struct ynode *v,
			   const char *key, void *dst, const struct field *f)
{
	struct cfg_relabel_rule *r =
		(struct cfg_relabel_rule *)((char *)dst - f->off);
	size_t i;
	int ret = want_list(x, v, key);

	if (ret < 0)
		return ret;
	r->source_labels = calloc(v->n ? v->n : 1, sizeof(char *));
	if (!r->source_labels)
		return -ENOMEM;
	for (i = 0; i < v->n; i++) {
		ret = want_string(x, v->kid[i], key, 0);
		if (ret < 0)
			return ret;
		if (!label_name_ok(v->kid[i]->s, 0))
			return cfg_error(x, v->kid[i]->line, key,
					 "invalid label name \"%.64s\"",
					 v->kid[i]->s);
		r->source_labels[i] = strdup(v->kid[i]->s);
		if (!r->source_labels[i])
			return -ENOMEM;
		r->n_source_labels = i + 1;
	}
	return 0;
}

static int f_regex(struct cfgctx *x, const struct ynode *v, const char *key,
		   void *dst, const struct field *f)
{
	char msg[256];
	int ret = f_string(x, v, key, dst, f);

	if (ret == 0 && config_check_regex(*(char **)dst, msg, sizeof(msg)) < 0)
		return cfg_error(x, v->line, key, "%s", msg);
	return ret;
}

/* Compiled as relabel.c does; PCRE2's message and offset on failure. */
int config_check_regex(const char *re, char *msg, size_t size)
{
	PCRE2_UCHAR emsg[160];
	PCRE2_SIZE off;
	pcre2_code *code;
	char *anchored;
	size_t n = strlen(re) + 16;
	int ec;

	anchored = malloc(n);
	if (!anchored)
		return -ENOMEM;
	(void)snprintf(anchored, n, "^(?s:%s)$", re);
	code = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED,
			     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off,
			     NULL);
	free(anchored);
	if (code) {
		pcre2_code_free(code);
		return 0;
	}
	(void)pcre2_get_error_message(ec, emsg, sizeof(emsg));
	/* offsets count the "^(?s:" we added, and may point past re */
	off = off >= 5 ? off - 5 : 0;
	(void)snprintf(msg, size, "invalid regex: %s at offset %zu",
		       (const char *)emsg, off < n - 16 ? (size_t)off : n - 16);
	return -EINVAL;
}

#define RULE_FIELD(n_, f_, m_, ...) \
	{ .name = n_, .fn = f_, .off = offsetof(struct cfg_relabel_rule, m_), \
	  __VA_ARGS__ }

static const struct field rule_fields[] = {
	RULE_FIELD("source_labels", f_source_labels, source_labels),
	RULE_FIELD("separator", f_string, separator),
	RULE_FIELD("regex", f_regex, regex),
	RULE_FIELD("replacement", f_string, replacement),
	RULE_FIELD("target_label", f_string, target_label),
	RULE_FIELD("modulus", f_u64, modulus, .lo = 0, .hi = UINT64_MAX),
	RULE_FIELD("action", f_enum_int, action, .words = relabel_actions),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Prometheus' target_label with templates: ([a-zA-Z_]|$(\{\w+\}|\w+))+\w* */
static int target_template_ok(const char *s)
{
	const char *p = s;

	if (!*s)
		return 0;
	while (*p) {
		if (*p == '$') {
			p++;
			if (*p == '{') {
				p++;
				if (!(isalnum((unsigned char)*p) || *p == '_'))
					return 0;
				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
				if (*p++ != '}')
					return 0;
			} else {
				if (!(isalnum((unsigned char)*p) || *p == '_'))
					return 0;
				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
			}
		} else if (isalnum((unsigned char)*p) || *p == '_') {
			p++;
		} else {
			return 0;
		}
	}
	return !(*s >= '0' && *s <= '9');
}

static int rule_only(const struct cfg_relabel_rule *r, int regex_ok,
		     int sources_ok, int target_ok)
{
	return (regex_ok || !strcmp(r->regex, "(.*)")) &&
	       (sources_ok || r->n_source_labels == 0) &&
	       (target_ok || !r->target_label) && r->modulus == 0 &&
	       !strcmp(r->separator, ";") && !strcmp(r->replacement, "$1");
}

/* Prometheus' relabel.Config.Validate, same checks, same order. */
static const char *rule_check(const struct cfg_relabel_rule *r)
{
	int a = r->action, tl = r->target_label != NULL;
	int needs_target = a == RELABEL_REPLACE || a == RELABEL_HASHMOD ||
		a == RELABEL_LOWERCASE || a == RELABEL_UPPERCASE ||
		a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL;

	if (a == RELABEL_HASHMOD && r->modulus == 0)
		return "action hashmod requires a modulus greater than 0";
	if (needs_target && !tl)
		return "this action requires target_label";
	if (a == RELABEL_REPLACE && !target_template_ok(r->target_label))
		return "invalid target_label";
	if (needs_target && a != RELABEL_REPLACE &&
	    !label_name_ok(r->target_label, 0))
		return "invalid target_label";
	if ((a == RELABEL_LOWERCASE || a == RELABEL_UPPERCASE) &&
	    strcmp(r->replacement, "$1"))
		return "replacement cannot be set for this action";
	if (a == RELABEL_LABELMAP && !target_template_ok(r->replacement))
		return "invalid replacement for action labelmap";
	if ((a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL) &&
	    !rule_only(r, 0, 1, 1))
		return "this action takes only source_labels and target_label";
	if ((a == RELABEL_LABELDROP || a == RELABEL_LABELKEEP) &&
	    !rule_only(r, 1, 0, 0))
		return "this action takes only regex";
	return NULL;
}

static int rule_defaults(struct cfg_relabel_rule *r)
{
	if (!r->separator)
		r->separator = strdup(";");
	if (!r->regex)
		r->regex = strdup("(.*)");
	if (!r->replacement)
		r->replacement = strdup("$1");
	return r->separator && r->regex && r->replacement ? 0 : -ENOMEM;
}

static int parse_rule(struct cfgctx *x, const struct ynode *v,
		      const char *key, struct cfg_relabel_rule *r)
{
	struct seen s;
	const char *why;
	int ret;

	r->line = v->line;
	ret = parse_map(x, v, key, rule_fields, r, &s);
	if (ret == 0)
		ret = rule_defaults(r);
	if (ret < 0)
		return ret;
	why = rule_check(r);
	if (why)
		return cfg_error(x, v->line, key, "%s: %s", relabel_actions[r->action],
				 why);
	return 0;
}

static int f_relabel(struct cfgctx *x, const struct ynode *v, const char *key,
		     void *dst, const struct field *f)
{
	struct cfg_relabel_rules *rules = dst;
	char k2[CFG_KEY_MAX];
	size_t i;
	int ret = want_list(x, v, key);

	(void)f;
	if (ret < 0)
		return ret;
	rules->v = calloc(v->n ? v->n : 1, sizeof(*rules->v));
	if (!rules->v)
		return -ENOMEM;
	for (i = 0; ret == 0 && i < v->n; i++) {
		(void)snprintf(k2, sizeof(k2), "%s[%zu]", key, i);
		rules->n = i + 1;
		ret = parse_rule(x, v->kid[i], k2, &rules->v[i]);
	}
	return ret;
}

/* --- endpoints -------------------------------------------------------- */

#define EP(n_, f_, m_, ...) \
	{ .name = n_, .fn = f_, .off = offsetof(struct cfg_endpoint, m_), \
	  __VA_ARGS__ }

static const struct field basic_auth_fields[] = {
	EP("username", f_string, basic_username),
	EP("password", f_string, basic_password, .secret = 1),
	EP("password_file", f_secret_file, basic_password),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const struct field authorization_fields[] = {
	EP("type", f_string, authorization_type),
	EP("credentials", f_string, authorization_credentials, .secret = 1),
	EP("credentials_file", f_secret_file, authorization_credentials),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const char *const tls_versions[] = {
	"TLS10", "TLS11", "TLS12", "TLS13", NULL,
};

#define TLS(n_, f_, m_, ...) \
	{ .name = n_, .fn = f_, .off = offsetof(struct cfg_tls, m_), \
	  __VA_ARGS__ }

static const struct field tls_fields[] = {
	TLS("ca_file", f_pem_file, ca_pem),
	TLS("ca_pem", f_string, ca_pem),
	TLS("cert_file", f_pem_file, cert_pem),
	TLS("cert_pem", f_string, cert_pem),
	TLS("key_file", f_secret_file, key_pem),
	TLS("key_pem", f_string, key_pem, .secret = 1),
	TLS("insecure_skip_verify", f_bool, insecure_skip_verify),
	TLS("server_name", f_string, server_name),
	TLS("min_version", f_enum_str, min_version, .words = tls_versions),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int f_basic_auth(struct cfgctx *x, const struct ynode *v,
			const char *key, void *dst, const struct field *f)
{
	struct seen s;
	int ret;

	(void)f;
	ret = parse_map(x, v, key, basic_auth_fields, dst, &s);
	if (ret == 0)
		ret = conflict(x, key, basic_auth_fields, &s, "password",
			       "password_file");
	if (ret == 0)
		ret = require(x, key, basic_auth_fields, &s, "username");
	return ret;
}

static int f_authorization(struct cfgctx *x, const struct ynode *v,
			   const char *key, void *dst, const struct field *f)
{
	struct cfg_endpoint *e = dst;
	struct seen s;
	int ret, line;

	(void)f;
	ret = parse_map(x, v, key, authorization_fields, dst, &s);
	if (ret == 0)
		ret = conflict(x, key, authorization_fields, &s, "credentials",
			       "credentials_file");
	if (ret < 0)
		return ret;
	if (e->authorization_type &&
	    !strcasecmp(e->authorization_type, "basic") &&
	    seen_has(authorization_fields, &s, "type", &line))
		return cfg_error(x, line, key, "type Basic is not allowed, use "
				 "basic_auth");
	if (!e->authorization_type) {
		e->authorization_type = strdup("Bearer");
		if (!e->authorization_type)
			return -ENOMEM;
	}
	return 0;
}

static int f_tls(struct cfgctx *x, const struct ynode *v, const char *key,
		 void *dst, const struct field *f)
{
	struct cfg_tls *t = dst;
	struct seen s;
	int ret;

	(void)f;
	ret = parse_map(x, v, key, tls_fields, dst, &s);
	if (ret == 0)
		ret = conflict(x, key, tls_fields, &s, "ca_file", "ca_pem");
	if (ret == 0)
		ret = conflict(x, key, tls_fields, &s, "cert_file", "cert_pem");
	if (ret == 0)
		ret = conflict(x, key, tls_fields, &s, "key_file", "key_pem");
	if (ret == 0 && !t->cert_pem != !t->key_pem)
		ret = cfg_error(x, v->line, key, "a client certificate needs "
				"both a cert and a key");
	return ret;
}

static const char *const api_words[] = { "push", "ingest", NULL };

static const struct field endpoint_fields[] = {
	EP("url", f_string, url),
	EP("name", f_string, name),
	EP("api", f_enum_int, api, .words = api_words),
	EP("remote_timeout", f_duration, remote_timeout_ns,
	   .lo = NS_PER_MS, .hi = 3600 * NS_PER_S),
	EP("headers", f_headers, headers),
	/* these two fill several members: dst is the endpoint itself */
	{ "basic_auth", f_basic_auth, 0, 0, 0, NULL, 0 },
	EP("bearer_token", f_string, bearer_token, .secret = 1),
	EP("bearer_token_file", f_secret_file, bearer_token),
	{ "authorization", f_authorization, 0, 0, 0, NULL, 0 },
	EP("tls_config", f_tls, tls),
	EP("proxy_url", f_string, proxy_url),
	EP("no_proxy", f_string, no_proxy),
	EP("proxy_from_environment", f_bool, proxy_from_environment),
	EP("enable_http2", f_bool, enable_http2),
	EP("follow_redirects", f_bool, follow_redirects),
	EP("min_backoff_period", f_duration, min_backoff_ns,
	   .lo = NS_PER_MS, .hi = 3600 * NS_PER_S),
	EP("max_backoff_period", f_duration, max_backoff_ns,
	   .lo = NS_PER_MS, .hi = 3600 * NS_PER_S),
	EP("max_backoff_retries", f_u32, max_backoff_retries,
	   .lo = 0, .hi = 1000000),
	EP("retry_on_http_429", f_bool, retry_on_http_429),
	EP("queue_max_bytes", f_u64, queue_max_bytes,
	   .lo = 0, .hi = 1ull << 40),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void endpoint_defaults(struct cfg_endpoint *e)
{
	memset(e, 0, sizeof(*e));
	e->api = ENDPOINT_API_PUSH;
	e->remote_timeout_ns = 10 * NS_PER_S;
	e->enable_http2 = true;
	e->follow_redirects = true;
	e->min_backoff_ns = 500 * NS_PER_MS;
	e->max_backoff_ns = 300 * NS_PER_S;
	e->max_backoff_retries = 10;
	e->retry_on_http_429 = true;
	e->queue_max_bytes = 8ull << 20;
}

static int endpoint_auth_check(struct cfgctx *x, const char *key,
			       const struct seen *s)
{
	static const char *const auth[] = {
		"basic_auth", "bearer_token", "bearer_token_file",
		"authorization",
	};
	size_t i, j;
	int ret = 0;

	for (i = 0; ret == 0 && i < 4; i++)
		for (j = i + 1; ret == 0 && j < 4; j++)
			ret = conflict(x, key, endpoint_fields, s, auth[i],
				       auth[j]);
	return ret;
}

static int endpoint_check(struct cfgctx *x, const char *key,
			  struct cfg_endpoint *e, const struct seen *s)
{
	int ret = require(x, key, endpoint_fields, s, "url"), line;

	if (ret == 0 && strncmp(e->url, "http://", 7) &&
	    strncmp(e->url, "https://", 8)) {
		(void)seen_has(endpoint_fields, s, "url", &line);
		return cfg_error(x, line, key, "url must start with http:// or "
				 "https://, got \"%.64s\"", e->url);
	}
	if (ret == 0)
		ret = endpoint_auth_check(x, key, s);
	if (ret == 0)
		ret = conflict(x, key, endpoint_fields, s, "proxy_url",
			       "proxy_from_environment");
	if (ret == 0 && e->no_proxy && !e->proxy_url)
		ret = cfg_error(x, s->map_line, key,
				"no_proxy needs proxy_url");
	if (ret == 0 && e->min_backoff_ns > e->max_backoff_ns)
		ret = cfg_error(x, s->map_line, key, "min_backoff_period is "
				"larger than max_backoff_period");
	if (ret == 0 && !e->name && !(e->name = strdup(e->url)))
		ret = -ENOMEM;
	return ret;
}

static void endpoint_free(struct cfg_endpoint *e)
{
	free(e->url);
	free(e->name);
	labels_free(&e->headers);
	free(e->basic_username);
	free(e->basic_password);
	free(e->bearer_token);
	free(e->authorization_type);
	free(e->authorization_credentials);
	free(e->tls.ca_pem);
	free(e->tls.cert_pem);
	free(e->tls.key_pem);
	free(e->tls.server_name);
	free(e->tls.min_version);
	free(e->proxy_url);
	free(e->no_proxy);
}

static int f_endpoints(struct cfgctx *x, const struct ynode *v,
		       const char *key, void *dst, const struct field *f)
{
	struct config *c = (struct config *)((char *)dst - f->off);
	char k2[CFG_KEY_MAX];
	struct seen s;
	size_t i;
	int ret = want_list(x, v, key);

	if (ret < 0)
		return ret;
	c->endpoints = calloc(v->n ? v->n : 1, sizeof(*c->endpoints));
	if (!c->endpoints)
		return -ENOMEM;
	for (i = 0; ret == 0 && i < v->n; i++) {
		(void)snprintf(k2, sizeof(k2), "%s[%zu]", key, i);
		endpoint_defaults(&c->endpoints[i]);
		c->n_endpoints = i + 1;
		ret = parse_map(x, v->kid[i], k2, endpoint_fields,
				&c->endpoints[i], &s);
		if (ret == 0)
			ret = endpoint_check(x, k2, &c->endpoints[i], &s);
	}
	return ret;
}

/* --- top level -------------------------------------------------------- */

#define CF(n_, f_, m_, ...) \
	{ .name = n_, .fn = f_, .off = offsetof(struct config, m_), \
	  __VA_ARGS__ }

static const struct field write_fields[] = {
	CF("external_labels", f_labels, external_labels),
	CF("endpoint", f_endpoints, endpoints),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const struct field retention_fields[] = {
	CF("max_files", f_u64, retention_max_files, .lo = 1, .hi = 100000000),
	CF("max_bytes", f_u64, retention_max_bytes, .lo = 1, .hi = 1ull << 50),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Sub-maps whose keys land in struct config itself. */
static int f_write(struct cfgctx *x, const struct ynode *v, const char *key,
		   void *dst, const struct field *f)
{
	struct seen s;

	return parse_map(x, v, key, write_fields, (char *)dst - f->off, &s);
}

static int f_retention(struct cfgctx *x, const struct ynode *v,
		       const char *key, void *dst, const struct field *f)
{
	struct seen s;

	return parse_map(x, v, key, retention_fields, (char *)dst - f->off, &s);
}

static const char *const demangle_words[] = {
	"none", "simplified", "templates", "full", NULL,
};
static const char *const loop_words[] = { "auto", "io_uring", "epoll", NULL };
_Static_assert(LOOP_AUTO == 0 && LOOP_IO_URING == 1 && LOOP_EPOLL == 2,
	       "loop_words order");
_Static_assert(ENDPOINT_API_PUSH == 0 && ENDPOINT_API_INGEST == 1,
	       "api_words order");

#define CACHE_MAX	(1u << 20)

static const struct field top_fields[] = {
	CF("sample_rate", f_u32, sample_rate, .lo = 1, .hi = 10000),
	CF("collect_interval", f_duration, collect_interval_ns,
	   .lo = 100 * NS_PER_MS, .hi = 3600 * NS_PER_S),
	CF("collect_user_profile", f_bool, collect_user_profile),
	CF("collect_kernel_profile", f_bool, collect_kernel_profile),
	CF("demangle", f_enum_str, demangle, .words = demangle_words),
	CF("targets_only", f_bool, targets_only),
	CF("targets", f_targets, targets),
	CF("default_target", f_labels, default_target),
	CF("pid_cache_size", f_u32, pid_cache_size, .lo = 1, .hi = CACHE_MAX),
	CF("build_id_cache_size", f_u32, build_id_cache_size,
	   .lo = 1, .hi = CACHE_MAX),
	CF("same_file_cache_size", f_u32, same_file_cache_size,
	   .lo = 1, .hi = CACHE_MAX),
	CF("container_id_cache_size", f_u32, container_id_cache_size,
	   .lo = 1, .hi = CACHE_MAX),
	CF("relabel", f_relabel, relabel),
	CF("profile_relabel", f_relabel, profile_relabel),
	CF("discover_commandline", f_bool, discover_commandline),
	CF("write", f_write, external_labels),
	CF("output_dir", f_string, output_dir),
	CF("local_output", f_bool, local_output),
	CF("retention", f_retention, retention_max_files),
	CF("event_loop", f_enum_int, event_loop, .words = loop_words),
	CF("socket_path", f_string, socket_path),
	CF("aggregator_user", f_string, aggregator_user),
	CF("metrics_listen", f_string, metrics_listen),
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* --- public ----------------------------------------------------------- */

void config_free(struct config *c)
{
	size_t i;

	if (!c)
		return;
	free(c->path);
	free(c->demangle);
	for (i = 0; i < c->n_targets; i++)
		labels_free(&c->targets[i]);
	free(c->targets);
	labels_free(&c->default_target);
	config_rules_free(&c->relabel);
	config_rules_free(&c->profile_relabel);
	labels_free(&c->external_labels);
	for (i = 0; i < c->n_endpoints; i++)
		endpoint_free(&c->endpoints[i]);
	free(c->endpoints);
	free(c->output_dir);
	free(c->socket_path);
	free(c->aggregator_user);
	free(c->metrics_listen);
	free(c);
}

void config_rules_free(struct cfg_relabel_rules *rules)
{
	size_t i, j;
	struct cfg_relabel_rule *r;

	for (i = 0; i < rules->n; i++) {
		r = &rules->v[i];
		for (j = 0; j < r->n_source_labels; j++)
			free(r->source_labels[j]);
		free(r->source_labels);
		free(r->separator);
		free(r->regex);
		free(r->replacement);
		free(r->target_label);
	}
	free(rules->v);
	rules->v = NULL;
	rules->n = 0;
}

int config_defaults(struct config **out)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->sample_rate = 97;
	c->collect_interval_ns = 15 * NS_PER_S;
	c->collect_user_profile = true;
	c->collect_kernel_profile = true;
	c->targets_only = true;
	c->pid_cache_size = 32;
	c->build_id_cache_size = 64;
	c->same_file_cache_size = 8;
	c->container_id_cache_size = 1024;
	c->local_output = true;
	c->retention_max_files = 10000;
	c->retention_max_bytes = 1ull << 30;
	c->event_loop = LOOP_AUTO;
	c->demangle = strdup("none");
	c->output_dir = strdup("./profiles");
	c->socket_path = strdup("/run/splitprof/probe.sock");
	c->aggregator_user = strdup("nobody");
	if (!c->demangle || !c->output_dir || !c->socket_path ||
	    !c->aggregator_user) {
		config_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int config_from_tree(struct cfgctx *x, const struct ynode *root,
			    struct config *c)
{
	struct seen s;
	int ret;

	if (!root)
		return 0;	/* an empty file: all defaults */
	ret = parse_map(x, root, "", top_fields, c, &s);
	if (ret < 0)
		return ret;
	/* local output is the default only when nothing is uploaded */
	if (!seen_has(top_fields, &s, "local_output", NULL))
		c->local_output = c->n_endpoints == 0;
	return 0;
}

int config_load(const char *path, struct config **out, char *err,
		size_t errlen)
{
	struct cfgctx x = { .path = path, .err = err, .errlen = errlen };
	struct ynode *root = NULL;
	struct config *c = NULL;
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (errlen)
		err[0] = '\0';
	ret = read_file_capped(path, CFG_FILE_MAX, &text, &len);
	if (ret < 0) {
		if (errlen)
			(void)snprintf(err, errlen, "%s: %s", path,
				       ret == -EFBIG ? "file too large" :
				       strerror(-ret));
		return ret == -EFBIG ? -EINVAL : ret;
	}
	x.dir = dir_of(path);
	ret = x.dir ? config_defaults(&c) : -ENOMEM;
	if (ret == 0)
		ret = yaml_to_tree(&x, text, len, &root);
	if (ret == 0)
		ret = config_from_tree(&x, root, c);
	if (ret == 0 && !(c->path = strdup(path)))
		ret = -ENOMEM;
	if (ret == -ENOMEM && errlen)
		(void)snprintf(err, errlen, "%s: out of memory", path);
	if (ret < 0)
		config_free(c);
	else
		*out = c;
	ynode_free(root);
	free(x.dir);
	free(text);
	return ret;
}

/* --- dump ------------------------------------------------------------- */

static void dump_str(FILE *f, const char *indent, const char *key,
		     const char *v)
{
	if (v)
		(void)fprintf(f, "%s%s: \"%s\"\n", indent, key, v);
}

static void dump_secret(FILE *f, const char *indent, const char *key,
			const char *v)
{
	if (v)
		(void)fprintf(f, "%s%s: <secret>\n", indent, key);
}

static void dump_labels(FILE *f, const char *indent, const char *key,
			const struct cfg_labels *l)
{
	size_t i;

	(void)fprintf(f, "%s%s: {", indent, key);
	for (i = 0; i < l->n; i++)
		(void)fprintf(f, "%s\"%s\": \"%s\"", i ? ", " : "",
			      l->v[i].name, l->v[i].value);
	(void)fprintf(f, "}\n");
}

static void dump_duration(FILE *f, const char *indent, const char *key,
			  uint64_t ns)
{
	char buf[32];

	fmt_duration(ns, buf, sizeof(buf));
	(void)fprintf(f, "%s%s: %s\n", indent, key, buf);
}

static void dump_rules(FILE *f, const char *key,
		       const struct cfg_relabel_rules *rules)
{
	const struct cfg_relabel_rule *r;
	size_t i, j;

	(void)fprintf(f, "%s:%s\n", key, rules->n ? "" : " []");
	for (i = 0; i < rules->n; i++) {
		r = &rules->v[i];
		(void)fprintf(f, "  - action: %s\n    source_labels: [",
			      relabel_actions[r->action]);
		for (j = 0; j < r->n_source_labels; j++)
			(void)fprintf(f, "%s%s", j ? ", " : "",
				      r->source_labels[j]);
		(void)fprintf(f, "]\n");
		dump_str(f, "    ", "separator", r->separator);
		dump_str(f, "    ", "regex", r->regex);
		dump_str(f, "    ", "replacement", r->replacement);
		dump_str(f, "    ", "target_label", r->target_label);
		if (r->modulus)
			(void)fprintf(f, "    modulus: %llu\n",
				      (unsigned long long)r->modulus);
	}
}

static void dump_tls(FILE *f, const struct cfg_tls *t)
{
	(void)fprintf(f, "        tls_config:\n");
	dump_str(f, "          ", "ca_pem", t->ca_pem ? "<set>" : NULL);
	dump_str(f, "          ", "cert_pem", t->cert_pem ? "<set>" : NULL);
	dump_secret(f, "          ", "key_pem", t->key_pem);
	(void)fprintf(f, "          insecure_skip_verify: %s\n",
		      t->insecure_skip_verify ? "true" : "false");
	dump_str(f, "          ", "server_name", t->server_name);
	dump_str(f, "          ", "min_version", t->min_version);
}

static void dump_endpoint(FILE *f, const struct cfg_endpoint *e)
{
	const char *in = "        ";

	(void)fprintf(f, "      - url: \"%s\"\n", e->url);
	dump_str(f, in, "name", e->name);
	(void)fprintf(f, "%sapi: %s\n", in, api_words[e->api]);
	dump_duration(f, in, "remote_timeout", e->remote_timeout_ns);
	dump_labels(f, in, "headers", &e->headers);
	if (e->basic_username) {
		(void)fprintf(f, "%sbasic_auth:\n", in);
		dump_str(f, "          ", "username", e->basic_username);
		dump_secret(f, "          ", "password", e->basic_password);
	}
	dump_secret(f, in, "bearer_token", e->bearer_token);
	if (e->authorization_credentials) {
		(void)fprintf(f, "%sauthorization:\n", in);
		dump_str(f, "          ", "type", e->authorization_type);
		dump_secret(f, "          ", "credentials",
			    e->authorization_credentials);
	}
	dump_tls(f, &e->tls);
	dump_str(f, in, "proxy_url", e->proxy_url);
	dump_str(f, in, "no_proxy", e->no_proxy);
	(void)fprintf(f, "%sproxy_from_environment: %s\n%senable_http2: %s\n"
		      "%sfollow_redirects: %s\n", in,
		      e->proxy_from_environment ? "true" : "false", in,
		      e->enable_http2 ? "true" : "false", in,
		      e->follow_redirects ? "true" : "false");
	dump_duration(f, in, "min_backoff_period", e->min_backoff_ns);
	dump_duration(f, in, "max_backoff_period", e->max_backoff_ns);
	(void)fprintf(f, "%smax_backoff_retries: %u\n%sretry_on_http_429: %s\n"
		      "%squeue_max_bytes: %llu\n", in, e->max_backoff_retries,
		      in, e->retry_on_http_429 ? "true" : "false", in,
		      (unsigned long long)e->queue_max_bytes);
}

static void dump_profiling(const struct config *c, FILE *f)
{
	size_t i;

	(void)fprintf(f, "# effective configuration%s%s\n",
		      c->path ? " of " : " (defaults)", c->path ? c->path : "");
	(void)fprintf(f, "sample_rate: %u\n", c->sample_rate);
	dump_duration(f, "", "collect_interval", c->collect_interval_ns);
	(void)fprintf(f, "collect_user_profile: %s\ncollect_kernel_profile: "
		      "%s\n", c->collect_user_profile ? "true" : "false",
		      c->collect_kernel_profile ? "true" : "false");
	(void)fprintf(f, "demangle: %s\ntargets_only: %s\n", c->demangle,
		      c->targets_only ? "true" : "false");
	(void)fprintf(f, "targets:%s\n", c->n_targets ? "" : " []");
	for (i = 0; i < c->n_targets; i++)
		dump_labels(f, "  - ", "labels", &c->targets[i]);
	dump_labels(f, "", "default_target", &c->default_target);
	(void)fprintf(f, "pid_cache_size: %u\nbuild_id_cache_size: %u\n"
		      "same_file_cache_size: %u\ncontainer_id_cache_size: %u\n",
		      c->pid_cache_size, c->build_id_cache_size,
		      c->same_file_cache_size, c->container_id_cache_size);
	dump_rules(f, "relabel", &c->relabel);
	dump_rules(f, "profile_relabel", &c->profile_relabel);
	(void)fprintf(f, "discover_commandline: %s\n",
		      c->discover_commandline ? "true" : "false");
}

int config_dump(const struct config *c, FILE *f)
{
	size_t i;

	dump_profiling(c, f);
	(void)fprintf(f, "write:\n");
	dump_labels(f, "  ", "external_labels", &c->external_labels);
	(void)fprintf(f, "  endpoint:%s\n", c->n_endpoints ? "" : " []");
	for (i = 0; i < c->n_endpoints; i++)
		dump_endpoint(f, &c->endpoints[i]);
	dump_str(f, "", "output_dir", c->output_dir);
	(void)fprintf(f, "local_output: %s\nretention:\n  max_files: %llu\n"
		      "  max_bytes: %llu\nevent_loop: %s\n",
		      c->local_output ? "true" : "false",
		      (unsigned long long)c->retention_max_files,
		      (unsigned long long)c->retention_max_bytes,
		      loop_words[c->event_loop]);
	dump_str(f, "", "socket_path", c->socket_path);
	dump_str(f, "", "aggregator_user", c->aggregator_user);
	dump_str(f, "", "metrics_listen", c->metrics_listen);
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
