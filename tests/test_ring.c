// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_ring.c - the shared-memory ring (shared/sp_ring.c): framing, drops,
 * wrap-around, wake-ups, a two-process stress run, hostile consumer
 * positions (security.md P5/P6), seals (P4) and malformed images (P7).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sp_barrier.h"
#include "sp_ring.h"
#include "ring_util.h"

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC	0x0020
#endif

#define RING_SIZE	SP_RING_MIN_DATA
#define HDR		((uint32_t)sizeof(struct sp_rec_hdr))

/* ------------------------------------------------------------ helpers */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The payload of record seq: a PRNG stream seeded from seq. */
static void fill_payload(uint64_t seq, uint8_t *buf, uint32_t len)
{
	uint64_t x = seq, v;
	uint32_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = splitmix64(&x);
		memcpy(buf + i, &v, 8);
	}
	v = splitmix64(&x);
	memcpy(buf + i, &v, len - i);
}

static bool payload_ok(uint64_t seq, const uint8_t *buf, uint32_t len)
{
	uint8_t want[SP_REC_MAX];

	fill_payload(seq, want, len);
	return memcmp(want, buf, len) == 0;
}

/* Varying sizes, 0..159 bytes, and now and then a large record. */
static uint32_t payload_len_for(uint64_t seq)
{
	uint64_t x = seq ^ 0x5eed;

	if ((seq & 1023) == 511)
		return 2000 + (uint32_t)(seq % 3000);
	return (uint32_t)(splitmix64(&x) % 160);
}

static uint32_t rec_len(uint32_t payload)
{
	return (HDR + payload + SP_RING_ALIGN - 1) & ~(SP_RING_ALIGN - 1);
}

static int write_seq(struct sp_producer *p, uint64_t seq, uint32_t len)
{
	uint8_t buf[SP_REC_MAX];

	fill_payload(seq, buf, len);
	return sp_producer_write(p, (uint16_t)(seq % 4 + 1), (uint16_t)seq,
				 buf, len);
}

/* Check a record sp_consumer_next returned: framing, seq, payload. */
static bool rec_ok(const uint8_t *rec, int r, uint64_t seq, uint32_t len)
{
	struct sp_rec_hdr h;

	memcpy(&h, rec, sizeof(h));
	return r == (int)rec_len(len) && h.len == (uint32_t)r &&
	       h.seq == seq && h.type == seq % 4 + 1 &&
	       h.flags == (uint16_t)seq && payload_ok(seq, rec + HDR, len);
}

static void dup_fds(const struct sp_ring_fds *in, struct sp_ring_fds *out)
{
	out->data_fd = fcntl(in->data_fd, F_DUPFD_CLOEXEC, 0);
	out->cons_fd = fcntl(in->cons_fd, F_DUPFD_CLOEXEC, 0);
	out->event_fd = fcntl(in->event_fd, F_DUPFD_CLOEXEC, 0);
	cr_assert(out->data_fd >= 0 && out->cons_fd >= 0 &&
		  out->event_fd >= 0);
}

static struct sp_producer *new_producer(uint64_t size)
{
	struct sp_producer *p = NULL;

	cr_assert_eq(sp_producer_create(size, &p), 0);
	return p;
}

/* The consumer role in the same process, over its own copies of the fds. */
static struct sp_consumer *new_consumer(const struct sp_producer *p)
{
	struct sp_consumer *c = NULL;
	struct sp_ring_fds fds;

	dup_fds(sp_producer_fds(p), &fds);
	cr_assert_eq(sp_consumer_open(&fds, &c), 0);
	return c;
}

static bool event_pending(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

/* ------------------------------------------------------------ basics */

Test(ring, empty_returns_zero)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	struct sp_consumer_stats st;
	uint8_t buf[SP_REC_MAX];

	cr_expect_eq(sp_consumer_next(c, buf, sizeof(buf)), 0);
	cr_expect_eq(sp_producer_used(p), 0);
	cr_expect_eq(sp_consumer_data_size(c), RING_SIZE);
	sp_consumer_stats(c, &st);
	cr_expect_eq(st.records + st.bad_records + st.seq_gaps, 0);
	sp_consumer_free(c);
	sp_producer_free(p);
}

Test(ring, destructors_accept_null)
{
	sp_producer_free(NULL);
	sp_consumer_free(NULL);
}

Test(ring, rejects_bad_geometry)
{
	struct sp_producer *p = NULL;

	cr_expect_eq(sp_producer_create(RING_SIZE + 4096, &p), -EINVAL);
	cr_expect_eq(sp_producer_create(RING_SIZE / 2, &p), -EINVAL);
	cr_expect_eq(sp_producer_create(2ULL * SP_RING_MAX_DATA, &p), -EINVAL);
	cr_expect_null(p);
}

Test(ring, roundtrip_preserves_record)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint8_t buf[SP_REC_MAX];
	uint32_t len;

	for (len = 0; len < 40; len++)
		cr_assert_eq(write_seq(p, len, len), 0);
	for (len = 0; len < 40; len++) {
		int r = sp_consumer_next(c, buf, sizeof(buf));

		cr_assert(rec_ok(buf, r, len, len), "record %u", len);
	}
	cr_expect_eq(sp_consumer_next(c, buf, sizeof(buf)), 0);
	sp_consumer_free(c);
	sp_producer_free(p);
}

Test(ring, full_returns_enospc)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	uint64_t i, cap = RING_SIZE / rec_len(48);

	for (i = 0; i < cap; i++)
		cr_assert_eq(write_seq(p, i, 48), 0, "record %lu", i);
	cr_expect_eq(sp_producer_used(p), RING_SIZE);
	cr_expect_eq(write_seq(p, cap, 48), -ENOSPC);
	cr_expect_eq(write_seq(p, cap, 0), -ENOSPC);
	sp_producer_free(p);
}

Test(ring, oversized_record_is_dropped)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_ring_stats st;

	cr_expect_eq(write_seq(p, 0, SP_REC_MAX - HDR + 1), -EINVAL);
	cr_expect_eq(sp_producer_write(p, 1, 0, NULL, UINT32_MAX), -EINVAL);
	cr_expect_eq(write_seq(p, 0, SP_REC_MAX - HDR), 0);
	sp_producer_stats(p, &st);
	cr_expect_eq(st.dropped_records, 2);
	cr_expect_eq(st.records, 1);
	sp_producer_free(p);
}

Test(ring, small_buffer_leaves_record)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint8_t buf[SP_REC_MAX];

	cr_assert_eq(write_seq(p, 0, 100), 0);
	cr_expect_eq(sp_consumer_next(c, buf, 64), -ENOBUFS);
	cr_expect(rec_ok(buf, sp_consumer_next(c, buf, sizeof(buf)), 0, 100));
	sp_consumer_free(c);
	sp_producer_free(p);
}

/*
 * Records whose bytes run past the end of the data area come out intact:
 * the double mapping makes them contiguous on both sides.
 */
Test(ring, wraparound_records_intact)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint8_t buf[SP_REC_MAX];
	uint64_t seq, pos = 0, spanning = 0;

	for (seq = 0; pos < 5ULL * RING_SIZE; seq++) {
		uint32_t len = 100 + (uint32_t)(seq % 7) * 300;
		int r;

		cr_assert_eq(write_seq(p, seq, len), 0);
		r = sp_consumer_next(c, buf, sizeof(buf));
		cr_assert(rec_ok(buf, r, seq, len), "record %lu", seq);
		if ((pos & (RING_SIZE - 1)) + (uint64_t)r > RING_SIZE)
			spanning++;
		pos += (uint64_t)r;
	}
	cr_expect_geq(spanning, 4, "only %lu records spanned the end", spanning);
	sp_consumer_free(c);
	sp_producer_free(p);
}

/* ------------------------------------------------------------ drops */

/* P6: stop the consumer, write N, exactly N - capacity are dropped. */
Test(ring, drops_counted_exactly)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint64_t i, n = 5000, cap = RING_SIZE / rec_len(48);
	struct sp_ring_stats ps, hs;

	for (i = 0; i < n; i++)
		(void)write_seq(p, i, 48);
	sp_producer_stats(p, &ps);
	sp_consumer_producer_stats(c, &hs);
	cr_expect_eq(ps.records, cap);
	cr_expect_eq(ps.dropped_records, n - cap);
	cr_expect_eq(ps.dropped_bytes, (n - cap) * rec_len(48));
	cr_expect_eq(memcmp(&ps, &hs, sizeof(ps)), 0,
		     "header page counters differ from the producer's");
	sp_consumer_free(c);
	sp_producer_free(p);
}

/* Drops do not consume seq: what is delivered is contiguous, never reused. */
Test(ring, seq_contiguous_across_drops)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint64_t i, want = 0, next = 0, cap = RING_SIZE / rec_len(48);
	struct sp_consumer_stats st;
	uint8_t buf[SP_REC_MAX];
	int r, round;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < 2 * cap; i++)
			if (write_seq(p, next, 48) == 0)
				next++;
		while ((r = sp_consumer_next(c, buf, sizeof(buf))) > 0) {
			cr_assert(rec_ok(buf, r, want, 48), "seq %lu", want);
			want++;
		}
		cr_assert_eq(r, 0);
	}
	cr_expect_eq(want, 3 * cap);
	sp_consumer_stats(c, &st);
	cr_expect_eq(st.seq_gaps + st.bad_records, 0);
	sp_consumer_free(c);
	sp_producer_free(p);
}

/* ------------------------------------------------------------ wake-ups */

/* Lost wake-up (security.md 2.2): data published after the last read. */
Test(ring, prepare_wait_sees_late_record)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint8_t buf[SP_REC_MAX];

	cr_assert_eq(sp_consumer_next(c, buf, sizeof(buf)), 0);
	cr_assert_eq(write_seq(p, 0, 8), 0);
	cr_expect_eq(sp_consumer_prepare_wait(c), 1);
	cr_expect(rec_ok(buf, sp_consumer_next(c, buf, sizeof(buf)), 0, 8));
	cr_expect_eq(sp_consumer_prepare_wait(c), 0);
	sp_consumer_free(c);
	sp_producer_free(p);
}

Test(ring, notify_wakes_waiting_consumer)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	int efd = sp_consumer_event_fd(c);

	cr_assert_eq(sp_consumer_prepare_wait(c), 0);
	cr_assert_eq(write_seq(p, 0, 8), 0);
	cr_expect_eq(sp_producer_notify(p), 1);
	cr_expect(event_pending(efd));
	sp_consumer_wake_ack(c);
	cr_expect_not(event_pending(efd));
	sp_consumer_free(c);
	sp_producer_free(p);
}

Test(ring, notify_skips_busy_consumer)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);

	cr_assert_eq(write_seq(p, 0, 8), 0);
	cr_expect_eq(sp_producer_notify(p), 0);
	cr_expect_not(event_pending(sp_consumer_event_fd(c)));
	sp_consumer_free(c);
	sp_producer_free(p);
}

/* A hostile waiting flag buys at most one eventfd write per notify call,
 * and none when nothing was written since the last call. */
Test(ring, notify_writes_at_most_once)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	struct sp_cons_page *cp;
	uint64_t v = 0;
	int i;

	cp = mmap(NULL, SP_CONS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  sp_producer_fds(p)->cons_fd, 0);
	cr_assert_neq(cp, MAP_FAILED);
	WRITE_ONCE(cp->waiting, 0xffffffffu);
	cr_expect_eq(sp_producer_notify(p), 0);
	for (i = 0; i < 100; i++)
		cr_assert_eq(write_seq(p, (uint64_t)i, 8), 0);
	cr_expect_eq(sp_producer_notify(p), 1);
	cr_expect_eq(sp_producer_notify(p), 0);
	cr_assert_eq(read(sp_consumer_event_fd(c), &v, sizeof(v)), 8);
	cr_expect_eq(v, 1);
	munmap(cp, SP_CONS_PAGE_SIZE);
	sp_consumer_free(c);
	sp_producer_free(p);
}

/* ------------------------------------------------------------ two processes */

#define STRESS_RECORDS	10000000ULL
#define STRESS_RING	(1u << 20)
#define SPACE_EVERY	1024

struct stress_result {
	uint64_t records;
	uint64_t bad_content;
	struct sp_consumer_stats st;
};

static void signal_space(int space_fd)
{
	uint64_t one = 1;

	(void)!write(space_fd, &one, sizeof(one));
}

/* Drain what is there; returns records read, verifying each one. */
static uint64_t stress_drain(struct sp_consumer *c, struct stress_result *res,
			     int space_fd)
{
	static uint8_t buf[SP_REC_MAX];
	uint64_t n = 0;
	int r;

	while ((r = sp_consumer_next(c, buf, sizeof(buf))) > 0) {
		uint64_t seq = res->records++;

		if (!rec_ok(buf, r, seq, payload_len_for(seq)))
			res->bad_content++;
		if (++n % SPACE_EVERY == 0)
			signal_space(space_fd);
	}
	if (r < 0)
		res->bad_content++;
	return n;
}

static void stress_wait(struct sp_consumer *c)
{
	struct pollfd pfd = { .fd = sp_consumer_event_fd(c), .events = POLLIN };

	if (sp_consumer_prepare_wait(c))
		return;
	(void)poll(&pfd, 1, 1000);
	sp_consumer_wake_ack(c);
}

/* The child: only a socket to receive the three fds on, like the aggregator. */
static int stress_consumer(int sock, int space_fd)
{
	struct stress_result res = { 0 };
	struct sp_consumer *c;
	struct sp_ring_fds fds;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ring_recv_fds(sock, &fds) < 0 || sp_consumer_open(&fds, &c) < 0)
		return 2;
	while (res.records < STRESS_RECORDS && res.bad_content == 0) {
		if (stress_drain(c, &res, space_fd))
			signal_space(space_fd);
		else
			stress_wait(c);
	}
	sp_consumer_stats(c, &res.st);
	sp_consumer_free(c);
	return write(sock, &res, sizeof(res)) == sizeof(res) ? 0 : 3;
}

/* Wait until the consumer frees space: level-triggered eventfd, so a signal
 * sent before we poll is not lost; the timeout is only a safety net. */
static void stress_wait_space(struct sp_producer *p, int space_fd)
{
	struct pollfd pfd = { .fd = space_fd, .events = POLLIN };
	uint64_t v;

	(void)sp_producer_notify(p);
	(void)poll(&pfd, 1, 100);
	(void)!read(space_fd, &v, sizeof(v));
}

static void stress_produce(struct sp_producer *p, int space_fd)
{
	static uint8_t buf[SP_REC_MAX];
	uint64_t seq;
	uint32_t len;

	for (seq = 0; seq < STRESS_RECORDS; seq++) {
		len = payload_len_for(seq);
		fill_payload(seq, buf, len);
		/* Only this test retries; it waits for room rather than drop. */
		while (sp_producer_used(p) + rec_len(len) > STRESS_RING)
			stress_wait_space(p, space_fd);
		while (sp_producer_write(p, (uint16_t)(seq % 4 + 1),
					 (uint16_t)seq, buf, len) == -ENOSPC)
			stress_wait_space(p, space_fd);
		if (seq % 64 == 0)
			(void)sp_producer_notify(p);
	}
	(void)sp_producer_notify(p);
}

Test(ring, two_process_stress_no_loss, .timeout = 60)
{
	struct stress_result res = { 0 };
	struct sp_producer *p;
	struct sp_ring_stats ps;
	int sv[2], space, status;
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv),
		     0);
	space = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert_geq(space, 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(stress_consumer(sv[1], space));
	}
	close(sv[1]);
	p = new_producer(STRESS_RING);
	cr_assert_eq(ring_send_fds(sv[0], sp_producer_fds(p)), 0);
	stress_produce(p, space);
	cr_assert_eq(read(sv[0], &res, sizeof(res)), (ssize_t)sizeof(res));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	sp_producer_stats(p, &ps);
	cr_expect_eq(res.records, STRESS_RECORDS);
	cr_expect_eq(res.bad_content, 0);
	cr_expect_eq(res.st.seq_gaps + res.st.seq_missing, 0);
	cr_expect_eq(res.st.bad_records, 0);
	cr_expect_eq(ps.records, STRESS_RECORDS);
	cr_expect_eq(ps.dropped_records, 0);
	sp_producer_free(p);
}

/* ------------------------------------------------------------ hostile cons */

#define H_AHEAD		0	/* beyond prod */
#define H_AHEAD_ONE	1	/* prod + 8 */
#define H_BEHIND	2	/* before the last position seen */
#define H_ZERO		3
#define H_2_63		4	/* 2^63 and prod + 2^63 */
#define H_MAX		5	/* UINT64_MAX */
#define H_RANDOM	6	/* random, outside [seen, prod] */
#define H_ALTERNATE	7	/* ahead, behind, max, ... */

struct hostile {
	int kind;
};

ParameterizedTestParameters(ring_hostile, producer_stays_in_bounds)
{
	static struct hostile params[] = {
		{ H_AHEAD }, { H_AHEAD_ONE }, { H_BEHIND }, { H_ZERO },
		{ H_2_63 }, { H_MAX }, { H_RANDOM }, { H_ALTERNATE },
	};

	return cr_make_param_array(struct hostile, params,
				   sizeof(params) / sizeof(params[0]));
}

static uint64_t hostile_value(int kind, uint64_t i, uint64_t seen,
			      uint64_t prod, uint64_t *rng)
{
	uint64_t v;

	switch (kind) {
	case H_AHEAD:
		return prod + RING_SIZE + i * 8;
	case H_AHEAD_ONE:
		return prod + 8;
	case H_BEHIND:
		return seen - 8 - i * 8;
	case H_ZERO:
		return 0;
	case H_2_63:
		return (i & 1) ? prod + (1ULL << 63) : 1ULL << 63;
	case H_MAX:
		return UINT64_MAX;
	case H_ALTERNATE: {
		const uint64_t alt[] = { prod + 1, seen - 1, UINT64_MAX, 0 };

		return alt[i % 4];
	}
	default:
		do
			v = splitmix64(rng);
		while (v - seen <= prod - seen);
		return v;
	}
}

/* Fill the ring with checked records, consume some, fill it up again. */
static uint64_t hostile_setup(struct sp_producer *p, struct sp_consumer *c,
			      uint64_t *seq)
{
	uint8_t buf[SP_REC_MAX];
	uint64_t consumed = 0;
	int i, r;

	while (write_seq(p, *seq, payload_len_for(*seq)) == 0)
		(*seq)++;
	for (i = 0; i < 100; i++) {
		r = sp_consumer_next(c, buf, sizeof(buf));
		cr_assert(rec_ok(buf, r, (uint64_t)i, payload_len_for(i)));
		consumed += (uint64_t)r;
	}
	while (write_seq(p, *seq, payload_len_for(*seq)) == 0)
		(*seq)++;
	return consumed;
}

/* P5: a hostile consumer position only causes drops. */
ParameterizedTest(struct hostile *h, ring_hostile, producer_stays_in_bounds)
{
	struct sp_producer *p = new_producer(RING_SIZE);
	struct sp_consumer *c = new_consumer(p);
	uint64_t seq = 0, seen, used, prod, rng = 42, i, n = 2000, want;
	struct sp_ring_stats before, after, hs;
	struct sp_cons_page *cp;
	uint8_t buf[SP_REC_MAX];
	int r;

	cp = mmap(NULL, SP_CONS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  sp_producer_fds(p)->cons_fd, 0);
	cr_assert_neq(cp, MAP_FAILED);
	seen = hostile_setup(p, c, &seq);
	used = sp_producer_used(p);
	prod = seen + used;
	sp_producer_stats(p, &before);
	for (i = 0; i < n; i++) {
		/* Written right before each write the producer makes. */
		smp_store_release(&cp->cons_pos,
				  hostile_value(h->kind, i, seen, prod, &rng));
		cr_assert_eq(write_seq(p, seq, payload_len_for(seq)), -ENOSPC);
		cr_assert_eq(sp_producer_used(p), used);
		cr_assert_leq(sp_producer_used(p), RING_SIZE);
	}
	sp_producer_stats(p, &after);
	sp_consumer_producer_stats(c, &hs);
	cr_expect_eq(after.dropped_records - before.dropped_records, n);
	cr_expect_eq(after.records, seq);
	cr_expect_eq(memcmp(&after, &hs, sizeof(hs)), 0);
	/* The honest consumer resumes: every unconsumed record is intact. */
	for (want = 100; (r = sp_consumer_next(c, buf, sizeof(buf))) > 0; want++)
		cr_assert(rec_ok(buf, r, want, payload_len_for(want)),
			  "record %lu overwritten", want);
	cr_expect_eq(r, 0);
	cr_expect_eq(want, seq);
	cr_expect_eq(sp_producer_used(p), 0);
	cr_expect_eq(write_seq(p, seq, 8), 0, "ring wedged after the attack");
	munmap(cp, SP_CONS_PAGE_SIZE);
	sp_consumer_free(c);
	sp_producer_free(p);
}

/* ------------------------------------------------------------ seals (P4) */

struct seal_fixture {
	struct sp_producer *p;
	struct sp_consumer *c;
	int data_fd;	/* the consumer's data fd */
	int rw;		/* the same memfd re-opened O_RDWR via /proc */
};

static void seal_setup(struct seal_fixture *f)
{
	struct sp_ring_fds fds;
	char path[64];

	f->p = new_producer(RING_SIZE);
	dup_fds(sp_producer_fds(f->p), &fds);
	cr_assert_eq(sp_consumer_open(&fds, &f->c), 0);
	f->data_fd = fds.data_fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->data_fd);
	f->rw = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(f->rw, 0, "re-open O_RDWR: %s", strerror(errno));
}

static void seal_teardown(struct seal_fixture *f)
{
	close(f->rw);
	sp_consumer_free(f->c);
	sp_producer_free(f->p);
}

/* Exec bits cleared means MFD_NOEXEC_SEAL was accepted (F_SEAL_EXEC set). */
static bool noexec_sealed(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return (st.st_mode & 0111) == 0;
}

Test(ring_seals, shared_writable_mmap_fails)
{
	struct seal_fixture f;
	void *m;

	seal_setup(&f);
	m = mmap(NULL, SP_RING_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 f.rw, 0);
	cr_expect_eq(m, MAP_FAILED);
	cr_expect_eq(errno, EPERM);
	seal_teardown(&f);
}

Test(ring_seals, mprotect_write_fails)
{
	struct seal_fixture f;
	void *m;

	seal_setup(&f);
	m = mmap(NULL, SP_RING_HDR_SIZE, PROT_READ, MAP_SHARED, f.rw, 0);
	cr_assert_neq(m, MAP_FAILED, "read-only shared map: %s",
		      strerror(errno));
	cr_expect_eq(mprotect(m, SP_RING_HDR_SIZE, PROT_READ | PROT_WRITE), -1);
	cr_expect_eq(errno, EACCES);
	munmap(m, SP_RING_HDR_SIZE);
	seal_teardown(&f);
}

Test(ring_seals, pwrite_fails)
{
	struct seal_fixture f;

	seal_setup(&f);
	cr_expect_eq(pwrite(f.rw, "x", 1, 64), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(write(f.rw, "x", 1), -1);
	cr_expect_eq(errno, EPERM);
	seal_teardown(&f);
}

Test(ring_seals, ftruncate_fails)
{
	struct seal_fixture f;
	off_t size = SP_RING_HDR_SIZE + RING_SIZE;

	seal_setup(&f);
	cr_expect_eq(ftruncate(f.rw, size / 2), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(ftruncate(f.rw, size * 2), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(ftruncate(f.rw, 0), -1);
	cr_expect_eq(errno, EPERM);
	seal_teardown(&f);
}

Test(ring_seals, punch_hole_fails)
{
	struct seal_fixture f;

	seal_setup(&f);
	cr_expect_eq(fallocate(f.rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       0, SP_RING_HDR_SIZE), -1);
	cr_expect_eq(errno, EPERM);
	seal_teardown(&f);
}

Test(ring_seals, add_seals_fails)
{
	struct seal_fixture f;

	seal_setup(&f);
	cr_expect_eq(fcntl(f.rw, F_ADD_SEALS, F_SEAL_WRITE), -1);
	cr_expect_eq(errno, EPERM);
	seal_teardown(&f);
}

Test(ring_seals, seal_set_is_exact)
{
	struct seal_fixture f;
	int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
		   F_SEAL_SEAL;

	seal_setup(&f);
	if (noexec_sealed(f.data_fd))
		want |= F_SEAL_EXEC;
	cr_expect_eq(fcntl(f.data_fd, F_GET_SEALS), want);
	cr_expect_eq(fcntl(f.rw, F_GET_SEALS), want);
	seal_teardown(&f);
}

Test(ring_seals, fexecve_fails)
{
	static char *const argv[] = { "ring", NULL }, *const envp[] = { NULL };
	struct seal_fixture f;

	seal_setup(&f);
	if (!noexec_sealed(f.data_fd)) {
		seal_teardown(&f);
		cr_skip_test("MFD_NOEXEC_SEAL not accepted (kernel < 6.3)");
	}
	cr_expect_eq(fexecve(f.data_fd, argv, envp), -1);
	cr_expect_eq(errno, EACCES);
	seal_teardown(&f);
}

/* The producer maps the consumer page: the consumer must not shrink it. */
Test(ring_seals, consumer_page_cannot_shrink)
{
	struct seal_fixture f;
	const struct sp_ring_fds *fds;

	seal_setup(&f);
	fds = sp_producer_fds(f.p);
	cr_expect_eq(ftruncate(fds->cons_fd, 0), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(fcntl(fds->cons_fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	seal_teardown(&f);
}

/* ------------------------------------------------------------ fake images */

#define FAKE_SEALED	SP_RING_SEALS_REQUIRED

struct fake {
	uint64_t file_size;	/* 0: header + data_size */
	uint64_t data_size;	/* 0: RING_SIZE */
	uint64_t magic;		/* 0: SP_RING_MAGIC */
	uint32_t version;	/* 0: SP_ABI_VERSION */
	int seals;		/* -1: none */
	uint32_t cons_size;	/* 0: SP_CONS_PAGE_SIZE */
	uint64_t cons, prod;
	uint32_t len[2];	/* two records laid out from cons */
	uint64_t seq[2];
};

static int fake_memfd(uint64_t size)
{
	int fd = memfd_create("fake-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* pwrite at a ring position, split at the end of the data area. */
static void fake_put(int fd, uint64_t size, uint64_t pos, const void *src,
		     size_t len)
{
	uint64_t off = pos & (size - 1), first = size - off;

	if (first > len)
		first = len;
	cr_assert_eq(pwrite(fd, src, first, SP_RING_HDR_SIZE + off),
		     (ssize_t)first);
	if (len > first)
		cr_assert_eq(pwrite(fd, (const uint8_t *)src + first,
				    len - first, SP_RING_HDR_SIZE),
			     (ssize_t)(len - first));
}

static void fake_records(int fd, uint64_t size, const struct fake *fk)
{
	uint8_t rec[64];
	uint64_t pos = fk->cons;
	int i;

	for (i = 0; i < 2 && fk->len[i]; i++) {
		struct sp_rec_hdr h = { .len = fk->len[i], .type = 1,
					.seq = fk->seq[i] };

		memset(rec, 0xa5, sizeof(rec));
		memcpy(rec, &h, sizeof(h));
		fake_put(fd, size, pos, rec, sizeof(rec));
		pos += fk->len[i];
	}
}

static void fake_header(int fd, uint64_t size, const struct fake *fk)
{
	struct sp_ring_hdr h = {
		.magic = fk->magic ? fk->magic : SP_RING_MAGIC,
		.version = fk->version ? fk->version : SP_ABI_VERSION,
		.hdr_size = SP_RING_HDR_SIZE,
		.data_size = size,
		.prod_pos = fk->prod,
	};

	cr_assert_eq(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
}

/* A ring image built by hand, as a hostile or buggy producer might. */
static void fake_build(const struct fake *fk, struct sp_ring_fds *fds)
{
	uint64_t size = fk->data_size ? fk->data_size : RING_SIZE;
	struct sp_cons_page cp = { .cons_pos = fk->cons };

	fds->data_fd = fake_memfd(fk->file_size ? fk->file_size :
				  SP_RING_HDR_SIZE + size);
	fake_header(fds->data_fd, size, fk);
	fake_records(fds->data_fd, size, fk);
	if (fk->seals >= 0)
		cr_assert_eq(fcntl(fds->data_fd, F_ADD_SEALS,
				   fk->seals ? fk->seals : FAKE_SEALED), 0);
	fds->cons_fd = fake_memfd(fk->cons_size ? fk->cons_size :
				  SP_CONS_PAGE_SIZE);
	cr_assert_eq(pwrite(fds->cons_fd, &cp, sizeof(cp), 0),
		     (ssize_t)sizeof(cp));
	fds->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert_geq(fds->event_fd, 0);
}

/* Open must fail with want and leave the fds with the caller. */
static void expect_open_fails(const struct fake *fk, int want)
{
	struct sp_consumer *c = NULL;
	struct sp_ring_fds fds;

	fake_build(fk, &fds);
	cr_expect_eq(sp_consumer_open(&fds, &c), want);
	cr_expect_null(c);
	cr_expect_eq(close(fds.data_fd), 0, "fd taken on failure");
	cr_expect_eq(close(fds.cons_fd), 0);
	cr_expect_eq(close(fds.event_fd), 0);
}

Test(ring_open, accepts_valid_image)
{
	struct sp_consumer *c = NULL;
	struct sp_ring_fds fds;

	fake_build(&(struct fake){ 0 }, &fds);
	cr_expect_eq(sp_consumer_open(&fds, &c), 0);
	sp_consumer_free(c);
}

Test(ring_open, rejects_unsealed)
{
	expect_open_fails(&(struct fake){ .seals = -1 }, -EPERM);
}

Test(ring_open, rejects_missing_future_write)
{
	expect_open_fails(&(struct fake){
		.seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL }, -EPERM);
}

Test(ring_open, rejects_wrong_size)
{
	expect_open_fails(&(struct fake){
		.file_size = SP_RING_HDR_SIZE + 3 * RING_SIZE }, -EINVAL);
	expect_open_fails(&(struct fake){
		.file_size = SP_RING_HDR_SIZE + RING_SIZE / 2 }, -EINVAL);
	expect_open_fails(&(struct fake){ .file_size = 100 }, -EINVAL);
}

Test(ring_open, rejects_bad_magic)
{
	expect_open_fails(&(struct fake){ .magic = 0x1234 }, -EINVAL);
}

Test(ring_open, rejects_bad_version)
{
	expect_open_fails(&(struct fake){ .version = 99 }, -EINVAL);
}

/* The header claims a larger area than fstat shows: fstat wins, reject. */
Test(ring_open, rejects_header_size_mismatch)
{
	expect_open_fails(&(struct fake){ .data_size = 2 * RING_SIZE,
		.file_size = SP_RING_HDR_SIZE + RING_SIZE }, -EINVAL);
}

Test(ring_open, rejects_bad_cons_page)
{
	expect_open_fails(&(struct fake){ .cons_size = 8192 }, -EINVAL);
	expect_open_fails(&(struct fake){ .cons_size = 64 }, -EINVAL);
}

Test(ring_open, rejects_non_memfd)
{
	struct sp_consumer *c = NULL;
	struct sp_ring_fds fds;
	int pfd[2], file;

	fake_build(&(struct fake){ 0 }, &fds);
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	close(fds.data_fd);
	fds.data_fd = pfd[0];
	cr_expect_eq(sp_consumer_open(&fds, &c), -EINVAL);
	file = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	cr_assert_geq(file, 0);
	cr_assert_eq(ftruncate(file, SP_RING_HDR_SIZE + RING_SIZE), 0);
	fds.data_fd = file;
	cr_expect_eq(sp_consumer_open(&fds, &c), -EPERM);
	cr_expect_null(c);
}

/* ------------------------------------------------------------ malformed (P7) */

struct bad_case {
	struct fake fk;
	int ret[2];		/* first and second sp_consumer_next */
	uint64_t bad, gaps, missing;
};

#define BIG	(2 * SP_REC_MAX)	/* room for len > SP_REC_MAX <= avail */

ParameterizedTestParameters(ring_malformed, consumer_survives)
{
	static struct bad_case params[] = {
		/* len 0, 3, unaligned, > SP_REC_MAX, > prod - cons, huge */
		{ { .prod = 64, .len = { 0 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .prod = 64, .len = { 3 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .prod = 64, .len = { 20 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .prod = 64, .len = { 8 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .data_size = BIG, .prod = SP_REC_MAX + 64,
		    .len = { SP_REC_MAX + 8 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .prod = 64, .len = { 128 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .prod = 64, .len = { 0xfffffff8u } },
		  { -EBADMSG, 0 }, 1, 0, 0 },
		/* positions: prod past the area, behind cons, < a header */
		{ { .prod = RING_SIZE + 64, .len = { 32 } },
		  { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .cons = 4096, .prod = 64, .len = { 32 } },
		  { -EBADMSG, 0 }, 1, 0, 0 },
		{ { .prod = 8, .len = { 32 } }, { -EBADMSG, 0 }, 1, 0, 0 },
		/* the second record is bad: the first still comes out */
		{ { .prod = 64, .len = { 32, 3 } }, { 32, -EBADMSG }, 1, 0, 0 },
		/* seq: reused, forward gap, fresh ring not starting at 0 */
		{ { .prod = 64, .len = { 32, 32 }, .seq = { 5, 5 } },
		  { 32, -EBADMSG }, 1, 1, 5 },
		{ { .prod = 64, .len = { 32, 32 }, .seq = { 0, 5 } },
		  { 32, 32 }, 0, 1, 4 },
		/* valid record crossing the end of the area */
		{ { .cons = RING_SIZE - 16, .prod = RING_SIZE + 48,
		    .len = { 64 } }, { 64, 0 }, 0, 0, 0 },
	};

	return cr_make_param_array(struct bad_case, params,
				   sizeof(params) / sizeof(params[0]));
}

ParameterizedTest(struct bad_case *bc, ring_malformed, consumer_survives)
{
	struct sp_consumer *c = NULL;
	struct sp_consumer_stats st;
	struct sp_ring_fds fds;
	uint8_t buf[SP_REC_MAX];

	fake_build(&bc->fk, &fds);
	cr_assert_eq(sp_consumer_open(&fds, &c), 0);
	cr_expect_eq(sp_consumer_next(c, buf, sizeof(buf)), bc->ret[0]);
	cr_expect_eq(sp_consumer_next(c, buf, sizeof(buf)), bc->ret[1]);
	cr_expect_eq(sp_consumer_next(c, buf, sizeof(buf)), 0, "not resynced");
	sp_consumer_stats(c, &st);
	cr_expect_eq(st.bad_records, bc->bad);
	cr_expect_eq(st.seq_gaps, bc->gaps);
	cr_expect_eq(st.seq_missing, bc->missing);
	sp_consumer_free(c);
}
