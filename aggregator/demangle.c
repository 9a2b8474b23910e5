/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>
#include <string.h>

#include "demangle.h"

/* Longer names stay mangled: the names come from files other users control,
 * and the demangler recurses per nesting level. */
#define DEMANGLE_MAX_LEN	4096

/* The Itanium C++ ABI's demangler, from libstdc++ (cxxabi.h is C++ only). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
			    int *status);

int demangle_mode_parse(const char *s)
{
	static const char *const words[] = {
		[DEMANGLE_NONE] = "none", [DEMANGLE_SIMPLIFIED] = "simplified",
		[DEMANGLE_TEMPLATES] = "templates", [DEMANGLE_FULL] = "full",
	};
	size_t i;

	for (i = 0; s && i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i]) == 0)
			return (int)i;
	return -1;
}

/* Operator names whose brackets are not parameters or template arguments. */
static const char *const verbatim[] = {
	"(anonymous namespace)", "operator()", "operator<<=", "operator<<",
	"operator<=>", "operator<=", "operator<", "operator>>=", "operator>>",
	"operator>=", "operator>", "operator->*", "operator->",
};

static size_t verbatim_at(const char *s)
{
	size_t i, n;

	for (i = 0; i < sizeof(verbatim) / sizeof(verbatim[0]); i++) {
		n = strlen(verbatim[i]);
		if (strncmp(s, verbatim[i], n) == 0)
			return n;
	}
	return 0;
}

/* Index just past the bracket group opening at s[0] ('(', '<' or '{'; the
 * callers have ruled out a verbatim name there), nested groups included;
 * the string's end if unbalanced. */
static size_t group_end(const char *s)
{
	size_t i = 0, v;
	int depth = 0;

	while (s[i]) {
		v = verbatim_at(s + i);
		if (v) {
			i += v;
			continue;
		}
		if (s[i] == '(' || s[i] == '<' || s[i] == '{')
			depth++;
		else if (s[i] == ')' || s[i] == '>' || s[i] == '}')
			depth--;
		i++;
		if (depth == 0)
			break;
	}
	return i;
}

/* Drops a trailing " const", " volatile", " &", " &&" (method qualifiers). */
static void drop_qualifiers(char *out, size_t *n)
{
	static const char *const q[] = { " const", " volatile", " &&", " &" };
	bool again = true;
	size_t i, l;

	while (again) {
		again = false;
		for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
			l = strlen(q[i]);
			if (*n >= l && strncmp(out + *n - l, q[i], l) == 0) {
				*n -= l;
				again = true;
			}
		}
	}
	out[*n] = '\0';
}

/*
 * A template function's name starts with its return type ("int max<int>"):
 * keep what follows the last space outside brackets, unless that space
 * belongs to an operator name ("operator new", "operator int").
 */
static char *drop_return_type(char *s)
{
	size_t i = 0, v, cut = 0;
	int depth = 0;

	while (s[i]) {
		v = verbatim_at(s + i);
		if (v) {
			i += v;
			continue;
		}
		if (strchr("(<{", s[i]))
			depth++;
		else if (strchr(")>}", s[i]))
			depth--;
		else if (s[i] == ' ' && depth == 0 &&
			 !(i >= 8 && strncmp(s + i - 8, "operator", 8) == 0))
			cut = i + 1;
		i++;
	}
	return s + cut;
}

/* Legacy Rust symbols end in "::h" and 16 hex digits: a hash, not a name. */
static void drop_rust_hash(char *s)
{
	size_t n = strlen(s), i;

	if (n < 19 || strncmp(s + n - 19, "::h", 3) != 0)
		return;
	for (i = n - 16; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return;
	s[n - 19] = '\0';
}

static char *simplify(const char *full, bool templates)
{
	size_t i = 0, n = 0, v, len = strlen(full);
	char *out = malloc(len + 1), *start;

	if (!out)
		return NULL;
	while (full[i]) {
		v = verbatim_at(full + i);
		if (v) {
			memcpy(out + n, full + i, v);
			n += v;
			i += v;
		} else if (full[i] == '{') {
			/* {lambda(int)#1}, {unnamed type#1}: one name, kept */
			v = group_end(full + i);
			memcpy(out + n, full + i, v);
			n += v;
			i += v;
		} else if (full[i] == '(') {
			i += group_end(full + i);
		} else if (full[i] == '<' && !templates) {
			i += group_end(full + i);
		} else {
			out[n++] = full[i++];
		}
	}
	out[n] = '\0';
	drop_qualifiers(out, &n);
	drop_rust_hash(out);
	start = drop_return_type(out);
	memmove(out, start, strlen(start) + 1);
	return out;
}

char *demangle(const char *name, enum demangle_mode mode)
{
	char *full, *out;
	int status = -1;

	if (mode == DEMANGLE_NONE || !name || strncmp(name, "_Z", 2) != 0 ||
	    strnlen(name, DEMANGLE_MAX_LEN + 1) > DEMANGLE_MAX_LEN)
		return NULL;
	full = __cxa_demangle(name, NULL, NULL, &status);
	if (!full || status != 0) {
		free(full);
		return NULL;
	}
	if (mode == DEMANGLE_FULL)
		return full;
	out = simplify(full, mode == DEMANGLE_TEMPLATES);
	free(full);
	return out;
}
