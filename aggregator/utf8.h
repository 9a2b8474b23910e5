/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * utf8.h - the one UTF-8 check shared by the pprof builder (Pyroscope
 * rejects a profile holding any invalid UTF-8 string) and the local sink
 * (service names become directory names).
 */
#ifndef SP_UTF8_H
#define SP_UTF8_H

#include <stddef.h>

/*
 * Length of the valid UTF-8 sequence starting at s (at most avail bytes),
 * or 0 if the bytes there are not one. Overlong forms, surrogates and
 * code points above U+10FFFF are invalid, as in Go's utf8.Valid.
 */
static inline size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > avail)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;	/* overlong */
	else if (c == 0xed)
		hi = 0x9f;	/* surrogates */
	else if (c == 0xf0)
		lo = 0x90;	/* overlong */
	else if (c == 0xf4)
		hi = 0x8f;	/* above U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

#endif /* SP_UTF8_H */
