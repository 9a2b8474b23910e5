/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upload_labels.h"
#include "utf8.h"

static bool is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* [A-Za-z0-9_.]+, the name rule of pyroscope.write and of /ingest. */
static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_name_char((unsigned char)*s))
			return false;
	return true;
}

static bool utf8_ok(const char *s)
{
	size_t len = strlen(s), i = 0, n;

	while (i < len) {
		n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

bool upload_labels_valid(const struct labelset *ls)
{
	size_t i;

	if (!ls || ls->n == 0)
		return false;
	for (i = 0; i < ls->n; i++) {
		const struct label *l = &ls->v[i];

		/* A labelset is sorted by strcmp, so duplicates would be adjacent. */
		if (i && strcmp(ls->v[i - 1].name, l->name) >= 0)
			return false;
		if (strcmp(l->name, "__name__") && !name_ok(l->name))
			return false;
		if (!utf8_ok(l->value))
			return false;
	}
	return true;
}

static bool keep_on_wire(const char *name)
{
	return strncmp(name, "__", 2) || !strcmp(name, "__name__") ||
	       !strcmp(name, "__delta__");
}

int upload_labels_prepare(const struct labelset *in,
			  const struct labelset *external,
			  struct labelset *out)
{
	size_t i;
	int r = 0;

	labelset_clear(out);
	if (!upload_labels_valid(in))
		return -EINVAL;
	for (i = 0; i < in->n && r == 0; i++)
		if (keep_on_wire(in->v[i].name))
			r = labelset_set(out, in->v[i].name, in->v[i].value);
	for (i = 0; external && i < external->n && r == 0; i++)
		r = labelset_set(out, external->v[i].name, external->v[i].value);
	if (r == 0 && !labelset_get(out, "__name__"))
		r = labelset_set(out, "__name__", UPLOAD_DEFAULT_NAME);
	if (r == 0 && !labelset_get(out, "service_name"))
		r = labelset_set(out, "service_name", UPLOAD_DEFAULT_SERVICE);
	/* External labels come from the config: hold them to the same rules. */
	if (r == 0 && !upload_labels_valid(out))
		r = -EINVAL;
	if (r < 0)
		labelset_clear(out);
	return r;
}

static bool app_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_name_char((unsigned char)*s) && *s != '-' && *s != '/')
			return false;
	return true;
}

/* Why /ingest's name grammar cannot carry this label, or NULL. */
static const char *ingest_reject(const struct label *l)
{
	if (!name_ok(l->name))
		return "label name not [A-Za-z0-9_.]+";
	if (!strncmp(l->name, "__", 2))
		return "reserved label name";
	if (strpbrk(l->value, ",}={"))
		return "label value holds one of , } = {";
	if (l->value[0] == ' ' || l->value[strlen(l->value) - 1] == ' ')
		return "label value has spaces the server would trim";
	return NULL;
}

/* Percent-encode all but RFC 3986 unreserved characters. */
static void put_escaped(FILE *f, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; (c = (unsigned char)*s); s++) {
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			fputc(c, f);
		} else {
			fputc('%', f);
			fputc(hex[c >> 4], f);
			fputc(hex[c & 15], f);
		}
	}
}

static void put_ingest_labels(FILE *f, const struct labelset *ls,
			      upload_label_drop_fn drop, void *ctx)
{
	const char *why, *sep = "";
	size_t i;

	for (i = 0; i < ls->n; i++) {
		const struct label *l = &ls->v[i];

		if (!strcmp(l->name, "__name__") ||
		    !strcmp(l->name, "service_name"))
			continue;
		why = ingest_reject(l);
		if (why) {
			if (drop)
				drop(ctx, l->name, why);
			continue;
		}
		fputs(sep, f);
		put_escaped(f, l->name);
		fputs("%3D", f);
		put_escaped(f, l->value);
		sep = "%2C";
	}
}

int upload_ingest_query(const struct labelset *ls, long long from_s,
			long long until_s, unsigned sample_rate,
			upload_label_drop_fn drop, void *ctx, char **out)
{
	const char *app = labelset_get(ls, "service_name");
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	*out = NULL;
	if (!app || !app_name_ok(app))
		return -EINVAL;
	f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	fputs("name=", f);
	put_escaped(f, app);
	fputs("%7B", f);
	put_ingest_labels(f, ls, drop, ctx);
	fprintf(f, "%%7D&from=%lld&until=%lld&format=pprof&sampleRate=%u"
		"&spyName=splitprof", from_s, until_s, sample_rate);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}
