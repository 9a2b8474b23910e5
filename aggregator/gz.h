/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gz.h - whole-buffer gzip (RFC 1952) with zlib. Library code: returns
 * 0 or -errno, never logs.
 */
#ifndef SP_GZ_H
#define SP_GZ_H

#include <stddef.h>
#include <stdint.h>

/* Alloy's eBPF reporter writes pprof with gzip.BestSpeed. */
#define GZ_LEVEL_BEST_SPEED	1

/* Compress in[0..len) into a new buffer (*out, caller frees). */
int gz_compress(const void *in, size_t len, int level, uint8_t **out,
		size_t *out_len);

/*
 * Decompress a gzip member into a new buffer, refusing output larger
 * than max_out (-EFBIG) so a hostile input cannot make us allocate
 * without bound. Malformed input: -EBADMSG.
 */
int gz_decompress(const void *in, size_t len, size_t max_out, uint8_t **out,
		  size_t *out_len);

#endif /* SP_GZ_H */
