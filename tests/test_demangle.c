/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_demangle.c - Alloy's demangle levels over a table of real mangled
 * names (the full forms are what c++filt prints), and the names that must
 * stay untouched.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "../aggregator/demangle.h"

struct dm_case {
	char mangled[96];
	char simplified[64];
	char templates[96];
	char full[128];
};

ParameterizedTestParameters(demangle, levels)
{
	static struct dm_case cases[] = {
		{ "_ZN2ns6vectorIiE9push_backERKi", "ns::vector::push_back",
		  "ns::vector<int>::push_back",
		  "ns::vector<int>::push_back(int const&)" },
		{ "_Z3maxIiET_S0_S0_", "max", "max<int>", "int max<int>(int, int)" },
		{ "_ZNK3Foo3getEv", "Foo::get", "Foo::get", "Foo::get() const" },
		{ "_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo",
		  "(anonymous namespace)::foo", "(anonymous namespace)::foo()" },
		{ "_ZNSt6vectorIiSaIiEE9push_backEOi", "std::vector::push_back",
		  "std::vector<int, std::allocator<int> >::push_back",
		  "std::vector<int, std::allocator<int> >::push_back(int&&)" },
		{ "_ZN3FooclEv", "Foo::operator()", "Foo::operator()",
		  "Foo::operator()()" },
		{ "_ZN3FoolsEi", "Foo::operator<<", "Foo::operator<<",
		  "Foo::operator<<(int)" },
		{ "_ZN3FooltERKS_", "Foo::operator<", "Foo::operator<",
		  "Foo::operator<(Foo const&)" },
		{ "_ZZ4mainENKUliE_clEi", "main::{lambda(int)#1}::operator()",
		  "main::{lambda(int)#1}::operator()",
		  "main::{lambda(int)#1}::operator()(int) const" },
		{ "_ZN3FoocviEv", "Foo::operator int", "Foo::operator int",
		  "Foo::operator int()" },
		{ "_Znwm", "operator new", "operator new",
		  "operator new(unsigned long)" },
		{ "_ZN5Outer5InnerIcE4funcIiEEvT_", "Outer::Inner::func",
		  "Outer::Inner<char>::func<int>",
		  "void Outer::Inner<char>::func<int>(int)" },
		{ "_ZZ3fooiE3bar", "foo::bar", "foo::bar", "foo(int)::bar" },
		{ "_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write",
		  "core::fmt::write", "core::fmt::write::h0123456789abcdef" },
	};

	return cr_make_param_array(struct dm_case, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

static void expect_level(const char *mangled, enum demangle_mode m,
			 const char *want)
{
	char *got = demangle(mangled, m);

	cr_assert_not_null(got, "%s: not demangled at level %d", mangled, m);
	cr_expect_str_eq(got, want, "%s at level %d", mangled, m);
	free(got);
}

ParameterizedTest(struct dm_case *c, demangle, levels)
{
	expect_level(c->mangled, DEMANGLE_SIMPLIFIED, c->simplified);
	expect_level(c->mangled, DEMANGLE_TEMPLATES, c->templates);
	expect_level(c->mangled, DEMANGLE_FULL, c->full);
	cr_expect_null(demangle(c->mangled, DEMANGLE_NONE));
}

/* C names, Rust v0, truncated and garbage manglings: left alone (NULL). */
Test(demangle, not_mangled_or_broken_stays)
{
	static const char *const names[] = {
		"main", "hot_a", "_start", "Z3foov", "_Z", "_Z3", "_ZN3Foo",
		"_ZN3FooIiE", "_Z3fooILi", "_RNvCs123_4core3foo", "_Z\xff\xfe",
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_expect_null(demangle(names[i], DEMANGLE_FULL),
			       "'%s' was demangled", names[i]);
	cr_expect_null(demangle(NULL, DEMANGLE_FULL));
}

Test(demangle, mode_words)
{
	cr_expect_eq(demangle_mode_parse("none"), DEMANGLE_NONE);
	cr_expect_eq(demangle_mode_parse("simplified"), DEMANGLE_SIMPLIFIED);
	cr_expect_eq(demangle_mode_parse("templates"), DEMANGLE_TEMPLATES);
	cr_expect_eq(demangle_mode_parse("full"), DEMANGLE_FULL);
	cr_expect_eq(demangle_mode_parse("Full"), -1);
	cr_expect_eq(demangle_mode_parse(""), -1);
	cr_expect_eq(demangle_mode_parse(NULL), -1);
}

/* A hostile symbol table: huge and deeply nested names stay mangled, no
 * crash (the names come from files other users control). */
Test(demangle, hostile_lengths)
{
	size_t n = 1 << 20, i;
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memcpy(s, "_Z1f", 4);
	for (i = 4; i < n; i++)
		s[i] = "IA1_"[i % 4];
	s[n] = '\0';
	cr_expect_null(demangle(s, DEMANGLE_FULL), "a 1 MiB name was demangled");
	s[4000] = '\0';	/* under the cap: the demangler refuses or copes */
	free(demangle(s, DEMANGLE_SIMPLIFIED));
	free(s);
}

/* Nested template arguments go as one group; the return type with them. */
Test(demangle, deep_templates)
{
	char *got = demangle("_Z1fI1AI1AI1AI1AI1AIiEEEEEEvv", DEMANGLE_SIMPLIFIED);

	cr_assert_not_null(got);
	cr_expect_str_eq(got, "f");
	free(got);
}
