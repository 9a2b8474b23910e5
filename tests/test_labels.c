/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "labels.h"

Test(labels, kept_sorted_and_unique)
{
	struct labelset ls = { 0 };

	cr_assert_eq(labelset_set(&ls, "service_name", "a"), 0);
	cr_assert_eq(labelset_set(&ls, "__name__", "process_cpu"), 0);
	cr_assert_eq(labelset_set(&ls, "env", "prod"), 0);
	cr_assert_eq(labelset_set(&ls, "service_name", "b"), 0);	/* replace */
	cr_assert_eq(ls.n, 3);
	cr_assert_str_eq(ls.v[0].name, "__name__");
	cr_assert_str_eq(ls.v[1].name, "env");
	cr_assert_str_eq(ls.v[2].name, "service_name");
	cr_assert_str_eq(labelset_get(&ls, "service_name"), "b");
	cr_assert_null(labelset_get(&ls, "nope"));
	labelset_clear(&ls);
}

Test(labels, empty_value_removes)
{
	struct labelset ls = { 0 };

	labelset_set(&ls, "a", "1");
	labelset_set(&ls, "b", "2");
	cr_assert_eq(labelset_set(&ls, "a", ""), 0);
	cr_assert_eq(ls.n, 1);
	cr_assert_null(labelset_get(&ls, "a"));
	cr_assert_eq(labelset_del(&ls, "zz"), -ENOENT);
	labelset_clear(&ls);
}

Test(labels, copy_is_deep_and_bounded)
{
	struct labelset a = { 0 }, b = { 0 };
	char name[32];
	int i, r = 0;

	labelset_set(&a, "x", "1");
	cr_assert_eq(labelset_copy(&b, &a), 0);
	labelset_set(&a, "x", "2");
	cr_assert_str_eq(labelset_get(&b, "x"), "1");
	for (i = 0; i < LABELS_MAX + 10 && r == 0; i++) {
		snprintf(name, sizeof(name), "l%04d", i);
		r = labelset_set(&a, name, "v");
	}
	cr_assert_eq(r, -E2BIG);
	cr_assert_eq(a.n, LABELS_MAX);
	labelset_clear(&a);
	labelset_clear(&b);
}
