// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_loop.c - the event loop, every behaviour on both backends.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

#define MS	1000000ull	/* ns */

static int backends[] = { LOOP_EPOLL, LOOP_IO_URING };

/* One behaviour per test, run once per backend. */
#define LOOP_TEST(name)							\
	ParameterizedTestParameters(loop, name)				\
	{								\
		return cr_make_param_array(int, backends,		\
			sizeof(backends) / sizeof(backends[0]));	\
	}								\
	ParameterizedTest(int *kind, loop, name, .timeout = 20)

static struct loop *new_loop(int kind)
{
	int err = 0;
	struct loop *l = loop_new(kind, &err);

	if (!l && kind == LOOP_IO_URING &&
	    (err == -ENOSYS || err == -EPERM || err == -EACCES))
		cr_skip_test("io_uring unavailable here (%s): blocked by a "
			     "seccomp profile, kernel.io_uring_disabled or "
			     "an old kernel", strerror(-err));
	cr_assert_not_null(l, "loop_new(%d): %s", kind, strerror(-err));
	cr_assert_eq(loop_backend(l), kind);
	return l;
}

struct rec {
	int calls;
	int fd;
	uint32_t revents;
	void *free_me;		/* freed by the callback that deletes itself */
};

static void rec_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct rec *r = arg;

	(void)l;
	r->calls++;
	r->fd = fd;
	r->revents = revents;
}

static int new_eventfd(uint64_t count)
{
	int fd = eventfd((unsigned)count, EFD_NONBLOCK | EFD_CLOEXEC);

	cr_assert_geq(fd, 0, "eventfd: %s", strerror(errno));
	return fd;
}

static void drain(int fd)
{
	uint64_t v;

	cr_assert_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
}

static void stop_cb(struct loop *l, int id, void *arg)
{
	(void)id;
	(void)arg;
	loop_stop(l);
}

/* Runs the loop for about ms milliseconds, on its own timer. */
static void run_for(struct loop *l, uint64_t ms)
{
	int id = loop_add_timer(l, ms * MS, 0, stop_cb, NULL);

	cr_assert_geq(id, 0);
	cr_assert_eq(loop_run(l), 0);
	cr_assert_eq(loop_del_timer(l, id), 0);
}

/* ---- readiness ---------------------------------------------------------- */

LOOP_TEST(eventfd_pollin_is_level_triggered)
{
	struct loop *l = new_loop(*kind);
	int fd = new_eventfd(1);
	struct rec r = { 0 };

	cr_assert_eq(loop_add_fd(l, fd, POLLIN, rec_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.fd, fd);
	cr_assert_eq(r.revents, POLLIN);
	/* Not read: it must fire again. */
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.calls, 2);
	drain(fd);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(r.calls, 2);
	cr_assert_eq(loop_del_fd(l, fd), 0);
	loop_free(l);
	close(fd);
}

LOOP_TEST(pipe_write_end_pollout)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	int p[2];

	cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	cr_assert_eq(loop_add_fd(l, p[1], POLLOUT, rec_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.revents, POLLOUT);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.calls, 2);
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

LOOP_TEST(mod_pollin_to_pollout)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	int p[2];

	cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	/* A pipe's write end never becomes readable. */
	cr_assert_eq(loop_add_fd(l, p[1], POLLIN, rec_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(loop_mod_fd(l, p[1], POLLOUT), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.revents, POLLOUT);
	cr_assert_eq(loop_mod_fd(l, p[1], POLLIN), 0);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(r.calls, 1);
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

static void del_self_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct rec *r = arg;

	(void)revents;
	r->calls++;
	cr_assert_eq(loop_del_fd(l, fd), 0);
	/* A stale call after this is a use-after-free ASan reports. */
	free(r->free_me);
	r->free_me = NULL;
}

LOOP_TEST(del_in_own_callback)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	int fd = new_eventfd(1);
	int *canary = malloc(sizeof(*canary));

	cr_assert_not_null(canary);
	r.free_me = canary;
	cr_assert_eq(loop_add_fd(l, fd, POLLIN, del_self_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(loop_del_fd(l, fd), -ENOENT);
	loop_free(l);
	close(fd);
}

struct pair {
	int fd[2];
	int calls[2];
	struct rec *heap[2];
};

/* Whichever fd fires first deletes and frees the other. */
static void del_other_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct pair *p = arg;
	int me = fd == p->fd[1];

	(void)revents;
	p->calls[me]++;
	cr_assert_not_null(p->heap[me], "called after being deleted");
	cr_assert_eq(loop_del_fd(l, p->fd[!me]), 0);
	free(p->heap[!me]);
	p->heap[!me] = NULL;
}

LOOP_TEST(del_other_fd_in_same_batch)
{
	struct loop *l = new_loop(*kind);
	struct pair p = { .fd = { new_eventfd(1), new_eventfd(1) } };
	int i;

	for (i = 0; i < 2; i++) {
		p.heap[i] = calloc(1, sizeof(*p.heap[i]));
		cr_assert_eq(loop_add_fd(l, p.fd[i], POLLIN, del_other_cb, &p),
			     0);
	}
	/* Both are ready before the first wait, so both land in one batch. */
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(p.calls[0] + p.calls[1], 1);
	for (i = 0; i < 2; i++)
		free(p.heap[i]);
	loop_free(l);
	close(p.fd[0]);
	close(p.fd[1]);
}

struct reuse {
	struct rec old, fresh;
	int new_fd;
};

/* Deletes and closes itself, then an idle fd takes the same number. */
static void reuse_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct reuse *u = arg;

	(void)revents;
	u->old.calls++;
	cr_assert_eq(loop_del_fd(l, fd), 0);
	close(fd);
	u->new_fd = new_eventfd(0);
	cr_assert_eq(u->new_fd, fd, "fd number not reused");
	cr_assert_eq(loop_add_fd(l, u->new_fd, POLLIN, rec_cb, &u->fresh), 0);
}

LOOP_TEST(reused_fd_number_gets_no_stale_event)
{
	struct loop *l = new_loop(*kind);
	struct reuse u = { .new_fd = -1 };
	int fd = new_eventfd(1);

	cr_assert_eq(loop_add_fd(l, fd, POLLIN, reuse_cb, &u), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(u.old.calls, 1);
	cr_assert_eq(u.fresh.calls, 0);
	cr_assert_eq(eventfd_write(u.new_fd, 1), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(u.fresh.calls, 1);
	loop_free(l);
	close(u.new_fd);
}

LOOP_TEST(hup_on_closed_peer)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
				SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(loop_add_fd(l, sv[0], POLLIN, rec_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 50), 0);
	close(sv[1]);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert(r.revents & POLLHUP, "revents %#x", r.revents);
	cr_assert(r.revents & POLLIN, "EOF is readable: revents %#x",
		  r.revents);
	loop_free(l);
	close(sv[0]);
}

/* A pending io_uring poll holds the file: del must let close() close it. */
LOOP_TEST(del_then_close_releases_file)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	struct pollfd pfd = { .events = POLLIN };
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
				SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(loop_add_fd(l, sv[0], POLLIN, rec_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 50), 0);
	cr_assert_eq(loop_del_fd(l, sv[0]), 0);
	close(sv[0]);
	pfd.fd = sv[1];
	cr_assert_eq(poll(&pfd, 1, 5000), 1, "peer never saw the close");
	cr_assert(pfd.revents & POLLHUP, "revents %#x", pfd.revents);
	cr_assert_eq(r.calls, 0);
	loop_free(l);
	close(sv[1]);
}

static void add_later_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct rec *r = arg;

	(void)revents;
	cr_assert_eq(loop_del_fd(l, fd), 0);
	cr_assert_eq(loop_add_fd(l, r->fd, POLLIN, rec_cb, r), 0);
}

LOOP_TEST(add_fd_from_callback)
{
	struct loop *l = new_loop(*kind);
	int first = new_eventfd(1);
	struct rec r = { .fd = new_eventfd(1) };
	int second = r.fd;

	cr_assert_eq(loop_add_fd(l, first, POLLIN, add_later_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.calls, 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.fd, second);
	loop_free(l);
	close(first);
	close(second);
}

LOOP_TEST(bad_arguments)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	int fd = new_eventfd(0);
	int closed = new_eventfd(0);

	close(closed);
	cr_assert_eq(loop_add_fd(l, closed, POLLIN, rec_cb, &r), -EBADF);
	cr_assert_eq(loop_add_fd(l, -1, POLLIN, rec_cb, &r), -EINVAL);
	cr_assert_eq(loop_add_fd(l, fd, POLLIN, NULL, &r), -EINVAL);
	cr_assert_eq(loop_add_fd(l, fd, 0x80000000u, rec_cb, &r), -EINVAL);
	cr_assert_eq(loop_add_fd(l, fd, POLLIN, rec_cb, &r), 0);
	cr_assert_eq(loop_add_fd(l, fd, POLLIN, rec_cb, &r), -EEXIST);
	cr_assert_eq(loop_mod_fd(l, fd + 1, POLLIN), -ENOENT);
	cr_assert_eq(loop_del_fd(l, fd + 1), -ENOENT);
	cr_assert_eq(loop_mod_timer(l, 7, MS, 0), -ENOENT);
	cr_assert_eq(loop_del_timer(l, -1), -ENOENT);
	loop_free(l);
	loop_free(NULL);
	close(fd);
}

static void stop_now_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	rec_cb(l, fd, revents, arg);
	loop_stop(l);
}

LOOP_TEST(run_until_stop)
{
	struct loop *l = new_loop(*kind);
	struct rec r = { 0 };
	int fd = new_eventfd(1);

	cr_assert_eq(loop_add_fd(l, fd, POLLIN, stop_now_cb, &r), 0);
	cr_assert_eq(loop_run(l), 0);
	cr_assert_eq(r.calls, 1);
	/* loop_stop is consumed: the loop runs again. */
	cr_assert_eq(loop_run(l), 0);
	cr_assert_eq(r.calls, 2);
	loop_free(l);
	close(fd);
}

/* Enough fds that the 1000 below and the loop's own fit. */
static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		cr_skip_test("RLIMIT_NOFILE hard limit %lu < %lu",
			     (unsigned long)rl.rlim_max, (unsigned long)want);
	rl.rlim_cur = want;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

#define MANY	1000

struct many {
	int fd[MANY];
	int calls[MANY];
	int fired;
};

static void many_cb(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct many *m = arg;
	int i;

	(void)l;
	cr_assert_eq(revents, POLLIN);
	for (i = 0; i < MANY && m->fd[i] != fd; i++)
		;
	cr_assert_lt(i, MANY);
	if (m->calls[i]++ == 0)
		m->fired++;
	drain(fd);
}

LOOP_TEST(thousand_fds_all_fire)
{
	struct loop *l;
	struct many *m = calloc(1, sizeof(*m));
	int i, r, iterations = 0;

	cr_assert_not_null(m);
	raise_nofile(MANY + 64);
	l = new_loop(*kind);
	for (i = 0; i < MANY; i++) {
		m->fd[i] = new_eventfd(1);
		cr_assert_eq(loop_add_fd(l, m->fd[i], POLLIN, many_cb, m), 0);
	}
	while (m->fired < MANY && iterations++ < 100) {
		r = loop_run_once(l, 1000);
		cr_assert_geq(r, 0, "loop_run_once: %s", strerror(-r));
	}
	cr_assert_eq(m->fired, MANY);
	cr_assert_eq(loop_run_once(l, 50), 0);
	for (i = 0; i < MANY; i++) {
		cr_assert_eq(m->calls[i], 1, "fd %d fired %d times", i,
			     m->calls[i]);
		cr_assert_eq(loop_del_fd(l, m->fd[i]), 0);
		close(m->fd[i]);
	}
	loop_free(l);
	free(m);
}

/* ---- timers ------------------------------------------------------------- */

struct tick {
	int calls;
	int order[8];
	int norder;
	int del_after;		/* delete itself on this call, 0: never */
};

static void tick_cb(struct loop *l, int id, void *arg)
{
	struct tick *t = arg;

	if (t->norder < 8)
		t->order[t->norder++] = id;
	if (++t->calls == t->del_after)
		cr_assert_eq(loop_del_timer(l, id), 0);
}

LOOP_TEST(oneshot_timer_fires_once)
{
	struct loop *l = new_loop(*kind);
	struct tick t = { 0 };
	int id = loop_add_timer(l, 10 * MS, 0, tick_cb, &t);

	cr_assert_geq(id, 0);
	run_for(l, 150);
	cr_assert_eq(t.calls, 1);
	cr_assert_eq(t.order[0], id);
	cr_assert_eq(loop_del_timer(l, id), 0);
	loop_free(l);
}

LOOP_TEST(periodic_timer_fires_repeatedly)
{
	struct loop *l = new_loop(*kind);
	struct tick t = { 0 };
	int id = loop_add_timer(l, 10 * MS, 10 * MS, tick_cb, &t);

	cr_assert_geq(id, 0);
	run_for(l, 200);
	cr_assert_geq(t.calls, 5, "fired %d times in 200 ms", t.calls);
	cr_assert_leq(t.calls, 20, "fired %d times in 200 ms", t.calls);
	loop_free(l);
}

LOOP_TEST(mod_timer_moves_pending_timer)
{
	struct loop *l = new_loop(*kind);
	struct tick t = { 0 };
	int a = loop_add_timer(l, 20 * MS, 0, tick_cb, &t);
	int b = loop_add_timer(l, 100 * MS, 0, tick_cb, &t);

	cr_assert_geq(a, 0);
	cr_assert_geq(b, 0);
	cr_assert_neq(a, b);
	cr_assert_eq(loop_mod_timer(l, a, 200 * MS, 0), 0);
	run_for(l, 300);
	cr_assert_eq(t.calls, 2);
	cr_assert_eq(t.order[0], b);
	cr_assert_eq(t.order[1], a);
	loop_free(l);
}

LOOP_TEST(mod_timer_disarms_with_zero)
{
	struct loop *l = new_loop(*kind);
	struct tick t = { 0 };
	int id = loop_add_timer(l, 0, 0, tick_cb, &t);

	cr_assert_geq(id, 0);
	run_for(l, 30);
	cr_assert_eq(t.calls, 0, "a timer added disarmed fired");
	cr_assert_eq(loop_mod_timer(l, id, 1, 0), 0);
	run_for(l, 50);
	cr_assert_eq(t.calls, 1);
	cr_assert_eq(loop_mod_timer(l, id, 10 * MS, 0), 0);
	cr_assert_eq(loop_mod_timer(l, id, 0, 0), 0);
	run_for(l, 50);
	cr_assert_eq(t.calls, 1);
	loop_free(l);
}

LOOP_TEST(del_timer_cancels)
{
	struct loop *l = new_loop(*kind);
	struct tick t = { 0 };
	int id = loop_add_timer(l, 20 * MS, 0, tick_cb, &t);

	cr_assert_geq(id, 0);
	cr_assert_eq(loop_del_timer(l, id), 0);
	cr_assert_eq(loop_del_timer(l, id), -ENOENT);
	run_for(l, 100);
	cr_assert_eq(t.calls, 0);
	loop_free(l);
}

LOOP_TEST(periodic_timer_deletes_itself)
{
	struct loop *l = new_loop(*kind);
	struct tick t = { .del_after = 3 };
	int id = loop_add_timer(l, 5 * MS, 5 * MS, tick_cb, &t);

	cr_assert_geq(id, 0);
	run_for(l, 150);
	cr_assert_eq(t.calls, 3);
	cr_assert_eq(loop_del_timer(l, id), -ENOENT);
	loop_free(l);
}

LOOP_TEST(many_timers)
{
	struct loop *l = new_loop(*kind);
	struct tick t[64] = { 0 };
	int i, id;

	for (i = 0; i < 64; i++) {
		id = loop_add_timer(l, (uint64_t)(i + 1) * MS, 0, tick_cb,
				    &t[i]);
		cr_assert_geq(id, 0);
	}
	run_for(l, 150);
	for (i = 0; i < 64; i++)
		cr_assert_eq(t[i].calls, 1, "timer %d fired %d times", i,
			     t[i].calls);
	loop_free(l);
}

/* ---- backend selection -------------------------------------------------- */

Test(loop, auto_prefers_io_uring)
{
	int err;
	struct loop *probe = loop_new(LOOP_IO_URING, &err);
	struct loop *l;

	if (!probe)
		cr_skip_test("io_uring unavailable here (%s)", strerror(-err));
	loop_free(probe);
	l = loop_new(LOOP_AUTO, &err);
	cr_assert_not_null(l);
	cr_assert_eq(loop_backend(l), LOOP_IO_URING);
	cr_assert_str_eq(loop_backend_name(l), "io_uring");
	loop_free(l);
}

/* The way a container runtime's default profile blocks io_uring. */
static void block_io_uring(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

	cr_assert_not_null(ctx);
	cr_assert_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
				      SCMP_SYS(io_uring_setup), 0), 0);
	cr_assert_eq(seccomp_load(ctx), 0);
	seccomp_release(ctx);
}

/* Criterion runs each test in its own child: the filter dies with it. */
Test(loop, auto_falls_back_to_epoll_when_io_uring_blocked, .timeout = 20)
{
	struct rec r = { 0 };
	struct loop *l;
	int err, fd;

	block_io_uring();
	cr_assert_null(loop_new(LOOP_IO_URING, &err));
	cr_assert_eq(err, -EPERM, "err %d", err);
	l = loop_new(LOOP_AUTO, &err);
	cr_assert_not_null(l, "loop_new(AUTO): %s", strerror(-err));
	cr_assert_eq(loop_backend(l), LOOP_EPOLL);
	cr_assert_str_eq(loop_backend_name(l), "epoll");
	fd = new_eventfd(1);
	cr_assert_eq(loop_add_fd(l, fd, POLLIN, rec_cb, &r), 0);
	cr_assert_eq(loop_run_once(l, 1000), 1);
	cr_assert_eq(r.revents, POLLIN);
	loop_free(l);
	close(fd);
}

Test(loop, new_rejects_unknown_kind)
{
	int err = 0;

	cr_assert_null(loop_new(3, &err));
	cr_assert_eq(err, -EINVAL);
	cr_assert_null(loop_new(-1, NULL));
}

Test(loop, backend_parse)
{
	cr_assert_eq(loop_backend_parse("auto"), LOOP_AUTO);
	cr_assert_eq(loop_backend_parse("io_uring"), LOOP_IO_URING);
	cr_assert_eq(loop_backend_parse("epoll"), LOOP_EPOLL);
}

Test(loop, backend_parse_rejects_null)
{
	cr_assert_eq(loop_backend_parse(NULL), -EINVAL);
}

/* Arrays, not pointers: Criterion re-executes the test binary. */
struct bad_backend {
	char s[16];
};

static struct bad_backend bad_backends[] = {
	{ "" }, { "AUTO" }, { "uring" }, { "io-uring" }, { "epoll " },
	{ " epoll" }, { "epol" }, { "io_uringx" }, { "select" },
};

ParameterizedTestParameters(loop, backend_parse_rejects)
{
	return cr_make_param_array(struct bad_backend, bad_backends,
				   sizeof(bad_backends) /
				   sizeof(bad_backends[0]));
}

ParameterizedTest(struct bad_backend *b, loop, backend_parse_rejects)
{
	cr_assert_eq(loop_backend_parse(b->s), -EINVAL, "\"%s\" accepted",
		     b->s);
}
