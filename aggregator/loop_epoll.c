// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop_epoll.c - the epoll backend: level-triggered registrations that
 * persist across events, so loop.c never re-arms them.
 */
#define LOOP_BACKEND_INTERNAL
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* loop.c passes poll(2) bits straight through as epoll bits. */
_Static_assert(EPOLLIN == POLLIN && EPOLLOUT == POLLOUT &&
	       EPOLLPRI == POLLPRI && EPOLLERR == POLLERR &&
	       EPOLLHUP == POLLHUP && EPOLLRDHUP == POLLRDHUP,
	       "epoll and poll event bits differ");

#define EPOLL_BATCH	128

struct epoll_be {
	int epfd;
	struct epoll_event events[EPOLL_BATCH];
};

static int epoll_init(void **be)
{
	struct epoll_be *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		int r = -errno;

		free(e);
		return r;
	}
	*be = e;
	return 0;
}

static void epoll_fini(void *be)
{
	struct epoll_be *e = be;

	(void)close(e->epfd);
	free(e);
}

static int epoll_ctl_token(struct epoll_be *e, int op, int fd, uint64_t token,
			   uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = token };

	if (epoll_ctl(e->epfd, op, fd, &ev) < 0)
		return -errno;
	return 0;
}

static int epoll_arm(void *be, int fd, uint64_t token, uint32_t events)
{
	return epoll_ctl_token(be, EPOLL_CTL_ADD, fd, token, events);
}

static int epoll_modify(void *be, int fd, uint64_t old_token, uint64_t token,
			uint32_t events)
{
	(void)old_token;
	return epoll_ctl_token(be, EPOLL_CTL_MOD, fd, token, events);
}

static int epoll_disarm(void *be, int fd, uint64_t old_token)
{
	(void)old_token;
	return epoll_ctl_token(be, EPOLL_CTL_DEL, fd, 0, 0);
}

static int epoll_wait_dispatch(void *be, struct loop *l, int timeout_ms)
{
	struct epoll_be *e = be;
	int i, n, called = 0;

	n = epoll_wait(e->epfd, e->events, EPOLL_BATCH, timeout_ms);
	if (n < 0)
		return -errno;
	/* Callbacks may delete later entries' fds: loop_dispatch checks tokens. */
	for (i = 0; i < n; i++)
		called += loop_dispatch(l, e->events[i].data.u64,
					e->events[i].events);
	return called;
}

const struct loop_ops loop_epoll_ops = {
	.name = "epoll",
	.kind = LOOP_EPOLL,
	.persistent = 1,
	.init = epoll_init,
	.fini = epoll_fini,
	.arm = epoll_arm,
	.modify = epoll_modify,
	.disarm = epoll_disarm,
	.wait = epoll_wait_dispatch,
};
