// SPDX-License-Identifier: BSD-2-Clause
/*
 * gz.c - whole-buffer gzip with zlib.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

#include "gz.h"

/* windowBits 15 + 16 asks zlib for a gzip header and trailer, not zlib's. */
#define GZ_WINDOW_BITS	(15 + 16)
#define GZ_MEM_LEVEL	8

int gz_compress(const void *in, size_t len, int level, uint8_t **out,
		size_t *out_len)
{
	z_stream zs = { 0 };
	uint8_t *buf = NULL;
	uLong bound;
	int ret = -ENOMEM;

	if (len > UINT_MAX)
		return -EFBIG;	/* one deflate() call takes a uInt */
	if (deflateInit2(&zs, level, Z_DEFLATED, GZ_WINDOW_BITS, GZ_MEM_LEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&zs, len);
	buf = malloc(bound ? bound : 1);
	if (!buf)
		goto out;
	zs.next_in = (Bytef *)(uintptr_t)in;	/* zlib never writes input */
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		ret = -EIO;
		goto out;
	}
	*out = buf;
	*out_len = zs.total_out;
	buf = NULL;
	ret = 0;
out:
	(void)deflateEnd(&zs);
	free(buf);
	return ret;
}

static int gz_grow(uint8_t **buf, size_t *cap, size_t max_out)
{
	size_t ncap = *cap * 2;
	uint8_t *nbuf;

	if (*cap >= max_out)
		return -EFBIG;
	if (ncap > max_out)
		ncap = max_out;
	nbuf = realloc(*buf, ncap);
	if (!nbuf)
		return -ENOMEM;
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

int gz_decompress(const void *in, size_t len, size_t max_out, uint8_t **out,
		  size_t *out_len)
{
	z_stream zs = { 0 };
	size_t cap = 4096;
	uint8_t *buf;
	int ret, zret = Z_OK;

	if (len > UINT_MAX || max_out == 0)
		return -EINVAL;
	if (inflateInit2(&zs, GZ_WINDOW_BITS) != Z_OK)
		return -ENOMEM;
	if (cap > max_out)
		cap = max_out;
	buf = malloc(cap);
	ret = buf ? 0 : -ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)in;	/* zlib never writes input */
	zs.avail_in = (uInt)len;
	while (ret == 0 && zret != Z_STREAM_END) {
		if (zs.total_out == cap)
			ret = gz_grow(&buf, &cap, max_out);
		if (ret)
			break;
		zs.next_out = buf + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		zret = inflate(&zs, Z_NO_FLUSH);
		if (zret != Z_OK && zret != Z_STREAM_END)
			ret = zret == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
		else if (zret == Z_OK && zs.avail_in == 0 && zs.avail_out)
			ret = -EBADMSG;	/* truncated stream */
	}
	if (ret == 0) {
		*out = buf;
		*out_len = zs.total_out;
		buf = NULL;
	}
	(void)inflateEnd(&zs);
	free(buf);
	return ret;
}
