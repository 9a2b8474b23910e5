/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * demangle.h - C++ (and legacy Rust) symbol names for humans, Alloy's
 * `demangle` levels:
 *   none        the name as the binary spells it (default);
 *   simplified  no function parameters, no template arguments:
 *               ns::vector::push_back
 *   templates   no function parameters, template arguments kept:
 *               ns::vector<int>::push_back
 *   full        everything the Itanium ABI demangler prints:
 *               ns::vector<int>::push_back(int const&)
 * The demangler is GCC's own (__cxa_demangle from libstdc++). A name that
 * is not mangled, longer than 4 KiB, or that it cannot parse, stays as
 * it is.
 */
#ifndef AGG_DEMANGLE_H
#define AGG_DEMANGLE_H

#include <stdbool.h>
#include <stddef.h>

enum demangle_mode {
	DEMANGLE_NONE = 0,
	DEMANGLE_SIMPLIFIED,
	DEMANGLE_TEMPLATES,
	DEMANGLE_FULL,
};

/* -1 for anything but none, simplified, templates, full. */
int demangle_mode_parse(const char *s);

/*
 * The demangled form of name at this level, malloc'ed; NULL when the mode
 * is none, the name is not an Itanium-mangled one (_Z...), the demangler
 * refuses it, or memory runs out.
 */
char *demangle(const char *name, enum demangle_mode mode);

#endif /* AGG_DEMANGLE_H */
