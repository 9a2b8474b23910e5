/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relabel.h"

/* One rule, an input label set and the expected result ("DROP"). */
struct rcase {
	char name[40];
	int action;
	char src[3][40];
	char sep[8];		/* "" = default */
	char regex[64];		/* "" = default */
	char repl[48];		/* "" = default */
	char target[48];
	uint64_t modulus;
	char in[160];		/* "a=1,b=2" sorted or not */
	char out[160];		/* sorted "a=1,b=2" or DROP */
};

static void parse_labels(struct labelset *ls, const char *text)
{
	char buf[160], *save = NULL, *tok, *eq;

	(void)snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		eq = strchr(tok, '=');
		cr_assert_not_null(eq);
		*eq = '\0';
		cr_assert_eq(labelset_set(ls, tok, eq + 1), 0);
	}
}

static void format_labels(const struct labelset *ls, char *buf, size_t size)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < ls->n; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s=%s", i ? "," : "",
				      ls->v[i].name, ls->v[i].value);
}

#define R(n, a, s0, s1, sep, re, rp, tg, mod, in, out) \
	{ n, a, { s0, s1, "" }, sep, re, rp, tg, mod, in, out }

ParameterizedTestParameters(relabel, table)
{
	static struct rcase cases[] = {
		R("replace copy", RELABEL_REPLACE, "a", "", "", "", "", "x", 0,
		  "a=1", "a=1,x=1"),
		R("replace join", RELABEL_REPLACE, "a", "b", "", "", "", "x", 0,
		  "a=1,b=2", "a=1,b=2,x=1;2"),
		R("replace sep", RELABEL_REPLACE, "a", "b", "-", "", "", "x", 0,
		  "a=1,b=2", "a=1,b=2,x=1-2"),
		R("replace missing is empty", RELABEL_REPLACE, "a", "zz", "", "",
		  "", "x", 0, "a=1", "a=1,x=1;"),
		R("replace groups", RELABEL_REPLACE, "a", "", "", "(.)(.*)",
		  "$2-${1}", "x", 0, "a=hello", "a=hello,x=ello-h"),
		R("replace named", RELABEL_REPLACE, "a", "", "",
		  "(?P<first>.)(?<rest>.*)", "${rest}$first", "x", 0, "a=abc",
		  "a=abc,x=bca"),
		R("replace $$ and $1x", RELABEL_REPLACE, "a", "", "", "(.*)",
		  "$$$1x.$1", "x", 0, "a=v", "a=v,x=$.v"),
		R("replace no match unchanged", RELABEL_REPLACE, "a", "", "",
		  "z.*", "", "x", 0, "a=abc,x=old", "a=abc,x=old"),
		R("replace anchored", RELABEL_REPLACE, "a", "", "", "b", "", "x",
		  0, "a=abc", "a=abc"),
		R("replace empty deletes", RELABEL_REPLACE, "zz", "", "", "", "",
		  "x", 0, "a=1,x=old", "a=1"),
		R("replace target template", RELABEL_REPLACE, "a", "", "",
		  "(.*)", "v", "l_$1", 0, "a=foo", "a=foo,l_foo=v"),
		R("replace invalid target skipped", RELABEL_REPLACE, "a", "", "",
		  "(.*)", "v", "$1", 0, "a=1x", "a=1x"),
		R("replace dotall", RELABEL_REPLACE, "a", "", "", "a.b", "y", "x",
		  0, "a=a\nb", "a=a\nb,x=y"),
		R("keep match", RELABEL_KEEP, "a", "", "", "1", "", "", 0, "a=1",
		  "a=1"),
		R("keep no match", RELABEL_KEEP, "a", "", "", "2", "", "", 0,
		  "a=1", "DROP"),
		R("keep missing label", RELABEL_KEEP, "zz", "", "", ".+", "", "",
		  0, "a=1", "DROP"),
		R("drop match", RELABEL_DROP, "a", "", "", ".*/java", "", "", 0,
		  "a=/usr/bin/java", "DROP"),
		R("drop no match", RELABEL_DROP, "a", "", "", ".*/java", "", "",
		  0, "a=/usr/bin/javac", "a=/usr/bin/javac"),
		R("drop empty matches default", RELABEL_DROP, "zz", "", "", "",
		  "", "", 0, "a=1", "DROP"),
		R("keepequal equal", RELABEL_KEEPEQUAL, "a", "", "", "", "", "b",
		  0, "a=1,b=1", "a=1,b=1"),
		R("keepequal differ", RELABEL_KEEPEQUAL, "a", "", "", "", "", "b",
		  0, "a=1,b=2", "DROP"),
		R("keepequal both missing", RELABEL_KEEPEQUAL, "zz", "", "", "",
		  "", "yy", 0, "a=1", "a=1"),
		R("dropequal equal", RELABEL_DROPEQUAL, "a", "", "", "", "", "b",
		  0, "a=1,b=1", "DROP"),
		R("dropequal differ", RELABEL_DROPEQUAL, "a", "", "", "", "", "b",
		  0, "a=1,b=2", "a=1,b=2"),
		R("lowercase", RELABEL_LOWERCASE, "a", "", "", "", "", "x", 0,
		  "a=HeLLo", "a=HeLLo,x=hello"),
		R("uppercase", RELABEL_UPPERCASE, "a", "b", "", "", "", "x", 0,
		  "a=ab,b=c", "a=ab,b=c,x=AB;C"),
		R("lowercase empty deletes", RELABEL_LOWERCASE, "zz", "", "", "",
		  "", "x", 0, "x=1", ""),
		R("labelmap", RELABEL_LABELMAP, "", "", "", "__meta_(.*)", "m_$1",
		  "", 0, "__meta_a=1,__meta_b=2,c=3",
		  "__meta_a=1,__meta_b=2,c=3,m_a=1,m_b=2"),
		R("labelmap default repl", RELABEL_LABELMAP, "", "", "",
		  "__tmp_(.*)", "", "", 0, "__tmp_x=1", "__tmp_x=1,x=1"),
		R("labeldrop", RELABEL_LABELDROP, "", "", "", "__meta_.*", "", "",
		  0, "__meta_a=1,__meta_b=2,c=3", "c=3"),
		R("labeldrop anchored", RELABEL_LABELDROP, "", "", "", "a", "",
		  "", 0, "a=1,ab=2", "ab=2"),
		R("labelkeep", RELABEL_LABELKEEP, "", "", "", "a|c", "", "", 0,
		  "a=1,b=2,c=3", "a=1,c=3"),
	};

	return cr_make_param_array(struct rcase, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct rcase *c, relabel, table)
{
	char *srcs[3], err[256], got[256];
	struct cfg_relabel_rule rule = { 0 };
	struct cfg_relabel_rules rules = { &rule, 1 };
	struct labelset ls = { 0 };
	struct relabel *r;
	int i, keep;

	for (i = 0; i < 3 && c->src[i][0]; i++)
		srcs[i] = c->src[i];
	rule.action = c->action;
	rule.source_labels = srcs;
	rule.n_source_labels = (size_t)i;
	rule.separator = c->sep[0] ? c->sep : NULL;
	rule.regex = c->regex[0] ? c->regex : NULL;
	rule.replacement = c->repl[0] ? c->repl : NULL;
	rule.target_label = c->target[0] ? c->target : NULL;
	rule.modulus = c->modulus;
	r = relabel_compile(&rules, err, sizeof(err));
	cr_assert_not_null(r, "%s: %s", c->name, err);
	parse_labels(&ls, c->in);
	keep = relabel_apply(r, &ls);
	cr_assert_geq(keep, 0, "%s", c->name);
	if (!keep) {
		cr_expect_str_eq("DROP", c->out, "%s: dropped", c->name);
	} else {
		format_labels(&ls, got, sizeof(got));
		cr_expect_str_eq(got, c->out, "%s", c->name);
	}
	labelset_clear(&ls);
	relabel_free(r);
}

/* Prometheus: BigEndian.Uint64(md5(s)[8:]) % mod, computed by md5sum. */
static uint64_t md5sum_hashmod(const char *s, uint64_t mod)
{
	char cmd[256], hex[64];
	FILE *p;

	(void)snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | md5sum", s);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(hex, sizeof(hex), p));
	pclose(p);
	hex[32] = '\0';
	return strtoull(hex + 16, NULL, 16) % mod;
}

Test(relabel, hashmod_matches_prometheus)
{
	static const char *const vals[] = {
		"", "x", "10.0.0.1:9090", "a;b",
		"a-much-longer-value-that-spans-more-than-one-md5-block-of-"
		"sixty-four-bytes-0123456789", "__meta_process_pid",
	};
	static const uint64_t mods[] = { 1, 2, 7, 1000, 18446744073709551615ull };
	size_t i, j;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		for (j = 0; j < sizeof(mods) / sizeof(mods[0]); j++)
			cr_expect_eq(relabel_hashmod(vals[i], strlen(vals[i]),
						     mods[j]),
				     md5sum_hashmod(vals[i], mods[j]),
				     "%s %% %llu", vals[i],
				     (unsigned long long)mods[j]);
}

Test(relabel, hashmod_rule_sets_target)
{
	char *src[] = { "a" }, err[128], want[32];
	struct cfg_relabel_rule rule = {
		.action = RELABEL_HASHMOD, .source_labels = src,
		.n_source_labels = 1, .target_label = "shard", .modulus = 16,
	};
	struct cfg_relabel_rules rules = { &rule, 1 };
	struct labelset ls = { 0 };
	struct relabel *r = relabel_compile(&rules, err, sizeof(err));

	cr_assert_not_null(r, "%s", err);
	cr_assert_eq(labelset_set(&ls, "a", "checkout"), 0);
	cr_assert_eq(relabel_apply(r, &ls), 1);
	(void)snprintf(want, sizeof(want), "%llu",
		       (unsigned long long)md5sum_hashmod("checkout", 16));
	cr_expect_str_eq(labelset_get(&ls, "shard"), want);
	labelset_clear(&ls);
	relabel_free(r);
}

Test(relabel, rules_chain_and_stop_at_drop)
{
	char *a[] = { "a" }, *x[] = { "x" }, err[128];
	struct cfg_relabel_rule v[3] = {
		{ .action = RELABEL_REPLACE, .source_labels = a,
		  .n_source_labels = 1, .target_label = "x" },
		{ .action = RELABEL_DROP, .source_labels = x,
		  .n_source_labels = 1, .regex = "1" },
		{ .action = RELABEL_REPLACE, .source_labels = a,
		  .n_source_labels = 1, .target_label = "never" },
	};
	struct cfg_relabel_rules rules = { v, 3 };
	struct labelset ls = { 0 };
	struct relabel *r = relabel_compile(&rules, err, sizeof(err));

	cr_assert_not_null(r, "%s", err);
	cr_assert_eq(labelset_set(&ls, "a", "1"), 0);
	cr_expect_eq(relabel_apply(r, &ls), 0);
	cr_expect_null(labelset_get(&ls, "never"));
	labelset_clear(&ls);
	cr_assert_eq(labelset_set(&ls, "a", "2"), 0);
	cr_expect_eq(relabel_apply(r, &ls), 1);
	cr_expect_str_eq(labelset_get(&ls, "never"), "2");
	labelset_clear(&ls);
	relabel_free(r);
}

Test(relabel, bad_regex_and_empty_rules)
{
	struct cfg_relabel_rule rule = { .action = RELABEL_KEEP, .regex = "(",
					 .line = 7 };
	struct cfg_relabel_rules rules = { &rule, 1 }, none = { NULL, 0 };
	struct labelset ls = { 0 };
	struct relabel *r;
	char err[128];

	cr_expect_null(relabel_compile(&rules, err, sizeof(err)));
	cr_expect_not_null(strstr(err, "line 7"), "%s", err);
	r = relabel_compile(&none, err, sizeof(err));
	cr_assert_not_null(r);
	cr_expect_eq(relabel_apply(r, &ls), 1);
	relabel_free(r);
	relabel_free(NULL);
}

Test(relabel, catastrophic_regex_is_bounded, .timeout = 20)
{
	char *a[] = { "a" }, err[128], val[64];
	struct cfg_relabel_rule rule = {
		.action = RELABEL_KEEP, .source_labels = a,
		.n_source_labels = 1, .regex = "(a+)+b",
	};
	struct cfg_relabel_rules rules = { &rule, 1 };
	struct labelset ls = { 0 };
	struct relabel *r = relabel_compile(&rules, err, sizeof(err));

	memset(val, 'a', 40);
	val[40] = '\0';
	cr_assert_not_null(r);
	cr_assert_eq(labelset_set(&ls, "a", val), 0);
	cr_expect_eq(relabel_apply(r, &ls), 0);	/* limit hit: no match */
	labelset_clear(&ls);
	relabel_free(r);
}
