/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>

#include "sp_duration.h"

struct dcase {
	char in[32];
	int ret;
	uint64_t ns;
};

ParameterizedTestParameters(duration, go_style)
{
	static struct dcase cases[] = {
		{ "0", 0, 0 },
		{ "500ms", 0, 500000000ull },
		{ "15s", 0, 15000000000ull },
		{ "5m", 0, 300000000000ull },
		{ "1h30m", 0, 5400000000000ull },
		{ "1.5s", 0, 1500000000ull },
		{ "250us", 0, 250000ull },
		{ "10ns", 0, 10ull },
		{ "2h45m30s", 0, 9930000000000ull },
		{ "", -EINVAL, 0 },
		{ "15", -EINVAL, 0 },		/* bare number */
		{ "s", -EINVAL, 0 },
		{ "15x", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "1h 30m", -EINVAL, 0 },
		{ "99999999999999999999h", -ERANGE, 0 },
		{ "9999999999h", -ERANGE, 0 },
	};
	return cr_make_param_array(struct dcase, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct dcase *c, duration, go_style)
{
	uint64_t ns = 12345;
	int r = sp_parse_duration(c->in, &ns);

	cr_assert_eq(r, c->ret, "'%s': got %d want %d", c->in, r, c->ret);
	if (r == 0)
		cr_assert_eq(ns, c->ns, "'%s': got %llu", c->in,
			     (unsigned long long)ns);
}
