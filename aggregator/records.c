/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <string.h>

#include "records.h"

/* A stack size from bpf_get_stack: -errno, or a multiple of 8 up to the max. */
static int stack_bytes_ok(int32_t b)
{
	if (b < 0)
		return b >= -4095;
	return b <= (int32_t)SP_STACK_BYTES && (b % 8) == 0;
}

static int parse_sample(const struct sp_rec_hdr *h, size_t len,
			struct rec_sample *out)
{
	const struct sp_sample *s = (const void *)(h + 1);
	size_t fixed = sizeof(*h) + sizeof(*s);
	uint32_t kb, ub;

	if (len < fixed)
		return -EBADMSG;
	if (!stack_bytes_ok(s->kstack_bytes) || !stack_bytes_ok(s->ustack_bytes))
		return -EBADMSG;
	kb = s->kstack_bytes > 0 ? (uint32_t)s->kstack_bytes : 0;
	ub = s->ustack_bytes > 0 ? (uint32_t)s->ustack_bytes : 0;
	/* The record is padded to 8 bytes; stacks are multiples of 8. */
	if (fixed + kb + ub != len)
		return -EBADMSG;
	out->s = s;
	out->kips = s->ips;
	out->nk = kb / 8;
	out->uips = s->ips + out->nk;
	out->nu = ub / 8;
	out->kerr = s->kstack_bytes < 0 ? s->kstack_bytes : 0;
	out->uerr = s->ustack_bytes < 0 ? s->ustack_bytes : 0;
	return SP_REC_SAMPLE;
}

int rec_parse(const void *rec, size_t len, struct rec_sample *out)
{
	const struct sp_rec_hdr *h = rec;
	size_t pay;

	if (len < sizeof(*h) || h->len != len || len > SP_REC_MAX)
		return -EBADMSG;
	pay = len - sizeof(*h);
	switch (h->type) {
	case SP_REC_SAMPLE:
		return parse_sample(h, len, out);
	case SP_REC_PROC_EXEC:
	case SP_REC_PROC_EXIT:
		/* payload rounded up to the ring's 8-byte alignment */
		return pay == sizeof(struct sp_proc_event) ? h->type : -EBADMSG;
	case SP_REC_LOST:
		return pay == sizeof(struct sp_lost) ? h->type : -EBADMSG;
	default:
		return -EBADMSG;
	}
}

void rec_comm(const char comm[SP_COMM_LEN], char out[SP_COMM_LEN + 1])
{
	size_t i;

	for (i = 0; i < SP_COMM_LEN && comm[i]; i++)
		out[i] = (comm[i] >= 0x20 && comm[i] < 0x7f) ? comm[i] : '?';
	out[i] = '\0';
}
