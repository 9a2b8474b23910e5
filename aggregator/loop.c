// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop.c - backend selection, the fd and timer tables, and dispatch shared
 * by both backends (loop_epoll.c, loop_uring.c).
 */
#define LOOP_BACKEND_INTERNAL
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

/*
 * io_uring's poll always reports POLLRDHUP along with ERR and HUP and
 * cannot be told not to; a poll re-armed after an event the caller did not
 * ask for would complete again at once. Reporting the same set on epoll
 * keeps the two backends identical.
 */
#define LOOP_ALWAYS	(POLLERR | POLLHUP | POLLRDHUP)
#define LOOP_EVENTS	(POLLIN | POLLOUT | POLLPRI | POLLRDHUP)

struct watch {
	loop_fd_cb cb;		/* NULL: slot free */
	void *arg;
	uint64_t token;
	uint32_t events;
	bool armed;		/* a poll is pending in the backend */
};

struct timer {
	loop_timer_cb cb;	/* NULL: slot free */
	void *arg;
	int fd;
};

struct loop {
	const struct loop_ops *ops;
	void *be;
	struct watch *watches;	/* indexed by fd */
	size_t nwatches;
	struct timer *timers;	/* indexed by timer id */
	size_t ntimers;
	uint32_t gen;
	int err;		/* a re-arm that failed inside dispatch */
	bool stop;
};

int loop_backend_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "auto"))
		return LOOP_AUTO;
	if (!strcmp(s, "io_uring"))
		return LOOP_IO_URING;
	if (!strcmp(s, "epoll"))
		return LOOP_EPOLL;
	return -EINVAL;
}

static int backend_init(struct loop *l, const struct loop_ops *ops)
{
	int r = ops->init(&l->be);

	if (r == 0)
		l->ops = ops;
	return r;
}

struct loop *loop_new(int kind, int *err)
{
	struct loop *l = NULL;
	int r = -EINVAL;

	if (kind != LOOP_AUTO && kind != LOOP_IO_URING && kind != LOOP_EPOLL)
		goto fail;
	r = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto fail;
	if (kind == LOOP_AUTO || kind == LOOP_IO_URING)
		r = backend_init(l, &loop_uring_ops);
	/* Any io_uring failure, not only ENOSYS/EPERM: epoll always works. */
	if (kind == LOOP_EPOLL || (kind == LOOP_AUTO && r < 0))
		r = backend_init(l, &loop_epoll_ops);
	if (r < 0)
		goto fail;
	if (err)
		*err = 0;
	return l;
fail:
	free(l);
	if (err)
		*err = r;
	return NULL;
}

void loop_free(struct loop *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->ntimers; i++)
		if (l->timers[i].cb)
			(void)close(l->timers[i].fd);
	l->ops->fini(l->be);
	free(l->timers);
	free(l->watches);
	free(l);
}

int loop_backend(const struct loop *l)
{
	return l->ops->kind;
}

const char *loop_backend_name(const struct loop *l)
{
	return l->ops->name;
}

/* ---- fds ---------------------------------------------------------------- */

static uint64_t next_token(struct loop *l, int fd)
{
	if (++l->gen == 0)
		l->gen = 1;
	return (uint64_t)l->gen << 32 | (uint32_t)fd;
}

static struct watch *watch_get(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nwatches || !l->watches[fd].cb)
		return NULL;
	return &l->watches[fd];
}

static int watches_reserve(struct loop *l, int fd)
{
	size_t n = l->nwatches ? l->nwatches : 64;
	struct watch *w;

	if ((size_t)fd < l->nwatches)
		return 0;
	while (n <= (size_t)fd)
		n *= 2;
	w = reallocarray(l->watches, n, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + l->nwatches, 0, (n - l->nwatches) * sizeof(*w));
	l->watches = w;
	l->nwatches = n;
	return 0;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb,
		void *arg)
{
	uint64_t token;
	int r;

	if (fd < 0 || !cb || (events & ~LOOP_EVENTS))
		return -EINVAL;
	/* io_uring would only report a bad fd later, in a completion. */
	if (fcntl(fd, F_GETFD) < 0)
		return -errno;
	r = watches_reserve(l, fd);
	if (r < 0)
		return r;
	if (l->watches[fd].cb)
		return -EEXIST;
	token = next_token(l, fd);
	r = l->ops->arm(l->be, fd, token, events | LOOP_ALWAYS);
	if (r < 0)
		return r;
	l->watches[fd] = (struct watch){ .cb = cb, .arg = arg, .token = token,
					 .events = events, .armed = true };
	return 0;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
	struct watch *w = watch_get(l, fd);
	uint64_t token;
	int r;

	if (!w)
		return -ENOENT;
	if (events & ~LOOP_EVENTS)
		return -EINVAL;
	/* A new token, so an event already queued for the old mask is dropped. */
	token = next_token(l, fd);
	r = l->ops->modify(l->be, fd, w->armed ? w->token : 0, token,
			   events | LOOP_ALWAYS);
	if (r < 0)
		return r;
	w->token = token;
	w->events = events;
	w->armed = true;
	return 0;
}

int loop_del_fd(struct loop *l, int fd)
{
	struct watch *w = watch_get(l, fd);
	int r;

	if (!w)
		return -ENOENT;
	r = l->ops->disarm(l->be, fd, w->armed ? w->token : 0);
	/* Forget the fd even on error: its token is dead either way. */
	memset(w, 0, sizeof(*w));
	return r;
}

int loop_dispatch(struct loop *l, uint64_t token, uint32_t revents)
{
	int fd = (int)(uint32_t)token;
	struct watch *w = watch_get(l, fd);
	int r, called = 0;

	if (!w || w->token != token)
		return 0;
	if (!l->ops->persistent)
		w->armed = false;
	revents &= w->events | LOOP_ALWAYS;
	if (revents) {
		w->cb(l, fd, revents, w->arg);
		called = 1;
	}
	/* The callback may have deleted, modified or re-added the fd. */
	w = watch_get(l, fd);
	if (!w || w->token != token || w->armed)
		return called;
	r = l->ops->arm(l->be, fd, token, w->events | LOOP_ALWAYS);
	if (r < 0 && !l->err)
		l->err = r;
	w->armed = r == 0;
	return called;
}

/* ---- timers ------------------------------------------------------------- */

static struct timespec ns_to_timespec(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u),
				  .tv_nsec = (long)(ns % 1000000000u) };
}

static int timer_set(int fd, uint64_t first_ns, uint64_t interval_ns)
{
	struct itimerspec its = { .it_value = ns_to_timespec(first_ns),
				  .it_interval = ns_to_timespec(interval_ns) };

	if (timerfd_settime(fd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

static struct timer *timer_get(struct loop *l, int id)
{
	if (id < 0 || (size_t)id >= l->ntimers || !l->timers[id].cb)
		return NULL;
	return &l->timers[id];
}

static void timer_ready(struct loop *l, int fd, uint32_t revents, void *arg)
{
	int id = (int)(intptr_t)arg;
	struct timer *t = timer_get(l, id);
	uint64_t expirations;

	(void)revents;
	/*
	 * EAGAIN: loop_mod_timer re-armed the timer after it expired, which
	 * resets the expiration count: it has moved and must not fire now.
	 * Overruns of a periodic timer are coalesced into one call.
	 */
	if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	if (t)
		t->cb(l, id, t->arg);
}

static int timer_slot(struct loop *l)
{
	size_t i, n;
	struct timer *t;

	for (i = 0; i < l->ntimers; i++)
		if (!l->timers[i].cb)
			return (int)i;
	n = l->ntimers ? l->ntimers * 2 : 8;
	if (n > INT32_MAX)
		return -ENOSPC;
	t = reallocarray(l->timers, n, sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + l->ntimers, 0, (n - l->ntimers) * sizeof(*t));
	l->timers = t;
	l->ntimers = n;
	return (int)i;
}

int loop_add_timer(struct loop *l, uint64_t first_ns, uint64_t interval_ns,
		   loop_timer_cb cb, void *arg)
{
	int fd, id, r;

	if (!cb)
		return -EINVAL;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = id = timer_slot(l);
	if (r < 0)
		goto out;
	r = timer_set(fd, first_ns, interval_ns);
	if (r < 0)
		goto out;
	r = loop_add_fd(l, fd, POLLIN, timer_ready, (void *)(intptr_t)id);
	if (r < 0)
		goto out;
	l->timers[id] = (struct timer){ .cb = cb, .arg = arg, .fd = fd };
	return id;
out:
	(void)close(fd);
	return r;
}

int loop_mod_timer(struct loop *l, int id, uint64_t first_ns,
		   uint64_t interval_ns)
{
	struct timer *t = timer_get(l, id);

	if (!t)
		return -ENOENT;
	return timer_set(t->fd, first_ns, interval_ns);
}

int loop_del_timer(struct loop *l, int id)
{
	struct timer *t = timer_get(l, id);
	int r;

	if (!t)
		return -ENOENT;
	r = loop_del_fd(l, t->fd);
	(void)close(t->fd);
	memset(t, 0, sizeof(*t));
	return r;
}

/* ---- running ------------------------------------------------------------ */

int loop_run_once(struct loop *l, int timeout_ms)
{
	int r = l->ops->wait(l->be, l, timeout_ms);

	if (r == -EINTR)
		r = 0;
	if (r >= 0 && l->err) {
		r = l->err;
		l->err = 0;
	}
	return r;
}

int loop_run(struct loop *l)
{
	int r = 0;

	while (!l->stop) {
		r = loop_run_once(l, -1);
		if (r < 0)
			break;
	}
	l->stop = false;
	return r < 0 ? r : 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
