/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * relabel.h - Prometheus relabeling (discovery.relabel, pyroscope.relabel)
 * with Prometheus' semantics: regexes fully anchored (^(?s:re)$), source
 * labels joined by the separator with missing labels as "", $1 / ${1} /
 * ${name} / $$ in replacement and (replace) target_label, an empty result
 * removing the label, hashmod on the last 8 bytes of the MD5 of the value.
 * PCRE2 stands in for Go's RE2: the common syntax is the same; matching is
 * bounded by a match limit (RE2 is linear, PCRE2 can backtrack), and a
 * match that hits the limit counts as no match.
 */
#ifndef AGG_RELABEL_H
#define AGG_RELABEL_H

#include <stdint.h>
#include "config.h"
#include "labels.h"

struct relabel;

/* NULL on error with the reason (and the rule's line) in err. */
struct relabel *relabel_compile(const struct cfg_relabel_rules *rules,
				char *err, size_t errlen);
/* 1: keep (ls relabeled in place), 0: dropped, -errno on OOM. */
int relabel_apply(const struct relabel *r, struct labelset *ls);
void relabel_free(struct relabel *r);

/* The hashmod value Prometheus computes; exposed for tests. */
uint64_t relabel_hashmod(const char *s, size_t len, uint64_t modulus);

#endif /* AGG_RELABEL_H */
