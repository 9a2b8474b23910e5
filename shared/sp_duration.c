/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <string.h>

#include "sp_duration.h"

static const struct {
	const char *name;
	uint64_t ns;
} units[] = {
	{ "ns", 1ull }, { "us", 1000ull }, { "\xc2\xb5s", 1000ull },
	{ "ms", 1000000ull }, { "s", 1000000000ull },
	{ "m", 60000000000ull }, { "h", 3600000000000ull },
};

/* Longest unit name matching at s; 0 when none. */
static uint64_t unit_at(const char **s)
{
	size_t best = 0, i, n;
	uint64_t ns = 0;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		n = strlen(units[i].name);
		if (n > best && strncmp(*s, units[i].name, n) == 0) {
			best = n;
			ns = units[i].ns;
		}
	}
	*s += best;
	return ns;
}

/* One "<digits>[.<digits>]<unit>" term, added to *total. */
static int term(const char **s, uint64_t *total)
{
	uint64_t whole = 0, frac = 0, scale = 1, unit, v;
	int digits = 0;

	for (; **s >= '0' && **s <= '9'; (*s)++, digits++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(**s - '0');
	}
	if (**s == '.')
		for ((*s)++; **s >= '0' && **s <= '9'; (*s)++, digits++)
			if (scale < 1000000000000000000ull) {
				frac = frac * 10 + (uint64_t)(**s - '0');
				scale *= 10;
			}
	if (digits == 0)
		return -EINVAL;
	unit = unit_at(s);
	if (unit == 0)
		return -EINVAL;
	if (whole > UINT64_MAX / unit)
		return -ERANGE;
	v = whole * unit + (uint64_t)((long double)frac * unit / scale);
	if (v > UINT64_MAX - *total)
		return -ERANGE;
	*total += v;
	return 0;
}

int sp_parse_duration(const char *s, uint64_t *ns)
{
	uint64_t total = 0;
	int r;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s) {
		r = term(&s, &total);
		if (r < 0)
			return r;
	}
	*ns = total;
	return 0;
}
