/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * labels.h - a label set: name/value pairs kept sorted by name, names
 * unique. Used for targets, relabeling and the labels a profile is sent
 * with. Strings are owned copies.
 */
#ifndef AGG_LABELS_H
#define AGG_LABELS_H

#include <stddef.h>

#define LABELS_MAX	256	/* a hostile or broken config cannot grow it more */

struct label {
	char *name;
	char *value;
};

struct labelset {
	struct label *v;	/* sorted by name (strcmp) */
	size_t n, cap;
};

/* Insert or replace. An empty value removes the label (Prometheus rule). */
int labelset_set(struct labelset *ls, const char *name, const char *value);
const char *labelset_get(const struct labelset *ls, const char *name);
int labelset_del(struct labelset *ls, const char *name);
int labelset_copy(struct labelset *dst, const struct labelset *src);
/* Free the strings and the array; ls is empty and reusable after. */
void labelset_clear(struct labelset *ls);

#endif /* AGG_LABELS_H */
