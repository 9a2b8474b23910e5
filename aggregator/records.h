/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * records.h - validate one ring record (already copied out of shared
 * memory by the consumer) and give typed views of it. The ring contents are
 * attacker-influenced (stack addresses come from arbitrary processes), and a
 * broken producer must not make the aggregator read past a record.
 */
#ifndef AGG_RECORDS_H
#define AGG_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include "sp_abi.h"

struct rec_sample {
	const struct sp_sample *s;
	const __u64 *kips;	/* kernel frames, leaf first */
	uint32_t nk;
	const __u64 *uips;	/* user frames, leaf first */
	uint32_t nu;
	int32_t kerr;		/* 0, or the helper's -errno for this stack */
	int32_t uerr;
};

/*
 * Returns the record type (SP_REC_*) after checking that the payload has
 * exactly the size its type requires, or -EBADMSG. For SAMPLE, fills *out.
 */
int rec_parse(const void *rec, size_t len, struct rec_sample *out);

/* comm is not NUL-terminated on the wire: copy it into a C string. */
void rec_comm(const char comm[SP_COMM_LEN], char out[SP_COMM_LEN + 1]);

#endif /* AGG_RECORDS_H */
