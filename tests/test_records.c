/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "records.h"

#define BUFSZ (sizeof(struct sp_rec_hdr) + sizeof(struct sp_sample) + 2 * SP_STACK_BYTES + 64)

static size_t make_sample(unsigned char *buf, int32_t kb, int32_t ub)
{
	struct sp_rec_hdr *h = (void *)buf;
	struct sp_sample *s = (void *)(h + 1);
	size_t len = sizeof(*h) + sizeof(*s) + (kb > 0 ? kb : 0) + (ub > 0 ? ub : 0);
	size_t i;

	memset(buf, 0, BUFSZ);
	h->type = SP_REC_SAMPLE;
	h->len = (uint32_t)len;
	s->pid = 42;
	s->kstack_bytes = kb;
	s->ustack_bytes = ub;
	for (i = 0; i < (len - sizeof(*h) - sizeof(*s)) / 8; i++)
		s->ips[i] = 0x1000 + i;
	return len;
}

Test(records, sample_views_split_kernel_and_user)
{
	unsigned char buf[BUFSZ];
	struct rec_sample rs;
	size_t len = make_sample(buf, 3 * 8, 5 * 8);

	cr_assert_eq(rec_parse(buf, len, &rs), SP_REC_SAMPLE);
	cr_assert_eq(rs.nk, 3);
	cr_assert_eq(rs.nu, 5);
	cr_assert_eq(rs.kips[0], 0x1000);
	cr_assert_eq(rs.uips[0], 0x1003);
	cr_assert_eq(rs.s->pid, 42);
}

Test(records, failed_stack_is_visible_not_empty)
{
	unsigned char buf[BUFSZ];
	struct rec_sample rs;
	size_t len = make_sample(buf, -EFAULT, 2 * 8);

	cr_assert_eq(rec_parse(buf, len, &rs), SP_REC_SAMPLE);
	cr_assert_eq(rs.nk, 0);
	cr_assert_eq(rs.kerr, -EFAULT);
	cr_assert_eq(rs.nu, 2);
	cr_assert_eq(rs.uerr, 0);
}

struct bad_sample {
	int32_t kb, ub;
	int len_delta;	/* added to the honest length */
};

ParameterizedTestParameters(records, bad_samples_rejected)
{
	static struct bad_sample cases[] = {
		{ 12, 8, 0 },				/* not a multiple of 8 */
		{ SP_STACK_BYTES + 8, 0, 0 },		/* too deep */
		{ 8, SP_STACK_BYTES + 8, 0 },
		{ -5000, 0, 0 },			/* not an errno */
		{ 8, 8, 8 },				/* trailing bytes */
		{ 8, 8, -8 },				/* truncated stack */
		{ 0, 0, -8 },				/* truncated fixed part */
		{ (int32_t)0x80000000, 0, 0 },		/* INT32_MIN */
	};
	return cr_make_param_array(struct bad_sample, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_sample *c, records, bad_samples_rejected)
{
	unsigned char buf[BUFSZ];
	struct rec_sample rs;
	size_t len = make_sample(buf, c->kb, c->ub);
	struct sp_rec_hdr *h = (void *)buf;

	len = (size_t)((long)len + c->len_delta);
	h->len = (uint32_t)len;
	cr_assert_eq(rec_parse(buf, len, &rs), -EBADMSG, "kb=%d ub=%d d=%d",
		     c->kb, c->ub, c->len_delta);
}

Test(records, header_len_must_match_copy)
{
	unsigned char buf[BUFSZ];
	struct rec_sample rs;
	size_t len = make_sample(buf, 8, 8);
	struct sp_rec_hdr *h = (void *)buf;

	h->len = (uint32_t)len + 8;
	cr_assert_eq(rec_parse(buf, len, &rs), -EBADMSG);
	cr_assert_eq(rec_parse(buf, 8, &rs), -EBADMSG);	/* shorter than hdr */
}

Test(records, unknown_type_rejected)
{
	unsigned char buf[64] = { 0 };
	struct sp_rec_hdr *h = (void *)buf;
	struct rec_sample rs;

	h->len = sizeof(*h) + 16;
	h->type = 77;
	cr_assert_eq(rec_parse(buf, h->len, &rs), -EBADMSG);
}

Test(records, proc_and_lost_sizes_exact)
{
	unsigned char buf[128] = { 0 };
	struct sp_rec_hdr *h = (void *)buf;
	struct rec_sample rs;

	h->type = SP_REC_PROC_EXIT;
	h->len = sizeof(*h) + sizeof(struct sp_proc_event);
	cr_assert_eq(rec_parse(buf, h->len, &rs), SP_REC_PROC_EXIT);
	h->len += 8;
	cr_assert_eq(rec_parse(buf, h->len, &rs), -EBADMSG);
	h->type = SP_REC_LOST;
	h->len = sizeof(*h) + sizeof(struct sp_lost);
	cr_assert_eq(rec_parse(buf, h->len, &rs), SP_REC_LOST);
	h->len = sizeof(*h) + 8;
	cr_assert_eq(rec_parse(buf, h->len, &rs), -EBADMSG);
}

Test(records, comm_is_terminated_and_printable)
{
	char comm[SP_COMM_LEN];
	char out[SP_COMM_LEN + 1];

	memset(comm, 'a', sizeof(comm));	/* no NUL on the wire */
	comm[3] = '\n';
	rec_comm(comm, out);
	cr_assert_eq(strlen(out), SP_COMM_LEN);
	cr_assert_eq(out[3], '?');
}
