// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop_uring.c - the io_uring backend: one IORING_OP_POLL_ADD per watched
 * fd, re-armed by loop.c after each completion.
 *
 * Why not multishot poll: a multishot poll posts a completion per wakeup,
 * i.e. it is edge-triggered, while a freshly armed oneshot poll checks the
 * current state first. Re-arming after every event is what gives the
 * level-triggered behaviour the interface promises (and epoll gives).
 */
#define LOOP_BACKEND_INTERNAL
#include "loop.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define URING_SQ_ENTRIES	256
/*
 * Each watched fd has at most a poll, a poll removal and the cancelled
 * poll's completion in flight; a large CQ keeps a burst from going through
 * the kernel's overflow list. Memory: 16 bytes per entry.
 */
#define URING_CQ_ENTRIES	8192

/*
 * The opcodes this backend uses. TIMEOUT is liburing's own, for a wait with
 * a timeout on kernels without IORING_FEAT_EXT_ARG.
 */
static const uint8_t uring_ops_used[] = {
	IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE, IORING_OP_TIMEOUT,
};

struct uring_be {
	struct io_uring ring;
};

static int uring_supported(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	size_t i;
	int r = 0;

	if (!probe)
		return -ENOSYS;
	for (i = 0; i < sizeof(uring_ops_used); i++)
		if (!io_uring_opcode_supported(probe, uring_ops_used[i]))
			r = -ENOSYS;
	io_uring_free_probe(probe);
	return r;
}

/*
 * Debian's liburing 2.3 declares io_uring_register_restrictions() and
 * io_uring_enable_rings() but its .so does not export them: call the
 * kernel directly.
 */
static int uring_register(struct io_uring *ring, unsigned op, void *arg,
			  unsigned nr)
{
	if (syscall(__NR_io_uring_register, ring->ring_fd, op, arg, nr) < 0)
		return -errno;
	return 0;
}

/*
 * Operations submitted through a ring bypass seccomp, and the aggregator
 * parses untrusted input: restrict the ring to the opcodes above before it
 * is enabled, which also forbids any later io_uring_register().
 */
static int uring_restrict(struct io_uring *ring)
{
	struct io_uring_restriction res[sizeof(uring_ops_used)] = { 0 };
	size_t i;
	int r;

	for (i = 0; i < sizeof(uring_ops_used); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = uring_ops_used[i];
	}
	r = uring_register(ring, IORING_REGISTER_RESTRICTIONS, res,
			   sizeof(uring_ops_used));
	if (r < 0)
		return r;
	return uring_register(ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}

static int uring_init(void **be)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED,
		.cq_entries = URING_CQ_ENTRIES,
	};
	struct uring_be *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	r = io_uring_queue_init_params(URING_SQ_ENTRIES, &u->ring, &p);
	if (r < 0)
		goto out;
	r = uring_supported(&u->ring);
	if (r == 0)
		r = uring_restrict(&u->ring);
	if (r < 0) {
		io_uring_queue_exit(&u->ring);
		goto out;
	}
	*be = u;
	return 0;
out:
	free(u);
	return r;
}

static void uring_fini(void *be)
{
	struct uring_be *u = be;

	/* Cancels every pending poll; no completion refers to memory. */
	io_uring_queue_exit(&u->ring);
	free(u);
}

static int uring_sqe(struct uring_be *u, struct io_uring_sqe **sqe)
{
	int r;

	*sqe = io_uring_get_sqe(&u->ring);
	if (*sqe)
		return 0;
	/* SQ full: hand what is queued to the kernel to make room. */
	r = io_uring_submit(&u->ring);
	if (r < 0)
		return r;
	*sqe = io_uring_get_sqe(&u->ring);
	return *sqe ? 0 : -EBUSY;
}

static int uring_arm(void *be, int fd, uint64_t token, uint32_t events)
{
	struct io_uring_sqe *sqe;
	int r = uring_sqe(be, &sqe);

	if (r < 0)
		return r;
	io_uring_prep_poll_add(sqe, fd, events);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

/* The removal's own completion carries token 0 and is ignored. */
static int uring_cancel(struct uring_be *u, uint64_t old_token)
{
	struct io_uring_sqe *sqe;
	int r = uring_sqe(u, &sqe);

	if (r < 0)
		return r;
	io_uring_prep_poll_remove(sqe, old_token);
	io_uring_sqe_set_data64(sqe, 0);
	return 0;
}

static int uring_modify(void *be, int fd, uint64_t old_token, uint64_t token,
			uint32_t events)
{
	int r = 0;

	if (old_token)
		r = uring_cancel(be, old_token);
	if (r == 0)
		r = uring_arm(be, fd, token, events);
	return r;
}

static int uring_disarm(void *be, int fd, uint64_t old_token)
{
	struct uring_be *u = be;
	int r;

	(void)fd;
	if (!old_token)
		return 0;
	r = uring_cancel(u, old_token);
	if (r < 0)
		return r;
	/*
	 * Submit now: a pending poll holds a reference to the file, and the
	 * caller's close() right after this must really close it (a socket
	 * peer would not see EOF otherwise).
	 */
	r = io_uring_submit(&u->ring);
	return r < 0 ? r : 0;
}

static int uring_submit_wait(struct uring_be *u, int timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	int r;

	if (timeout_ms < 0)
		r = io_uring_submit_and_wait(&u->ring, 1);
	else if (timeout_ms == 0)
		r = io_uring_submit(&u->ring);
	else
		r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
						     NULL);
	return r == -ETIME ? 0 : r;
}

static int uring_wait_dispatch(void *be, struct loop *l, int timeout_ms)
{
	struct uring_be *u = be;
	struct io_uring_cqe *cqe;
	uint64_t token;
	unsigned n;
	int r, res, called = 0;

	r = uring_submit_wait(u, timeout_ms);
	if (r < 0)
		return r;
	/*
	 * Only what is ready now: re-arms submitted while dispatching can
	 * complete at once, and must wait for the next iteration.
	 */
	for (n = io_uring_cq_ready(&u->ring); n > 0; n--) {
		if (io_uring_peek_cqe(&u->ring, &cqe) != 0)
			break;
		token = cqe->user_data;
		res = cqe->res;
		/* Consumed first: the callback may submit and fill the SQ. */
		io_uring_cqe_seen(&u->ring, cqe);
		if (token == 0)
			continue;
		called += loop_dispatch(l, token,
					res < 0 ? POLLERR : (uint32_t)res);
	}
	return called;
}

const struct loop_ops loop_uring_ops = {
	.name = "io_uring",
	.kind = LOOP_IO_URING,
	.persistent = 0,
	.init = uring_init,
	.fini = uring_fini,
	.arm = uring_arm,
	.modify = uring_modify,
	.disarm = uring_disarm,
	.wait = uring_wait_dispatch,
};
