/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * loop.h - the aggregator's event loop: fd readiness and timers behind one
 * small interface, with an io_uring and an epoll backend. Container
 * runtimes' default seccomp profiles block io_uring, so epoll is a full
 * backend, not a fallback of last resort.
 *
 * Readiness is level-triggered on both backends: a callback that leaves
 * data unread is called again on the next iteration. Callbacks may add,
 * modify and delete fds and timers, including their own, while the loop
 * dispatches; a deleted fd or timer is never called again.
 *
 * Call loop_del_fd() before close(): an fd number reused by a later open
 * is a different file to the loop only once the old one was deleted.
 *
 * Single-threaded: every call, loop_stop() included, comes from the thread
 * running the loop. Signals arrive through a signalfd the caller adds.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stdint.h>

/* Values of the config key `event_loop: auto|io_uring|epoll`. */
#define LOOP_AUTO	0
#define LOOP_IO_URING	1
#define LOOP_EPOLL	2

struct loop;

/* revents: POLLIN, POLLOUT, POLLPRI, POLLRDHUP, plus POLLERR and POLLHUP. */
typedef void (*loop_fd_cb)(struct loop *l, int fd, uint32_t revents,
			   void *arg);
typedef void (*loop_timer_cb)(struct loop *l, int id, void *arg);

/* LOOP_* for "auto", "io_uring", "epoll"; -EINVAL otherwise. */
int loop_backend_parse(const char *s);

/*
 * kind: LOOP_*. LOOP_AUTO tries io_uring and falls back to epoll when the
 * ring cannot be set up for any reason (ENOSYS, EPERM from seccomp, ...).
 * On failure returns NULL with -errno in *err.
 */
struct loop *loop_new(int kind, int *err);
void loop_free(struct loop *l);
/* LOOP_IO_URING or LOOP_EPOLL: the backend actually running. */
int loop_backend(const struct loop *l);
const char *loop_backend_name(const struct loop *l);

/*
 * events: POLLIN|POLLOUT|POLLPRI. POLLERR, POLLHUP and POLLRDHUP are always
 * reported (io_uring cannot mask them) and, being level-triggered, keep
 * firing: treat them as the end of the fd and delete it.
 */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb,
		void *arg);
int loop_mod_fd(struct loop *l, int fd, uint32_t events);
int loop_del_fd(struct loop *l, int fd);

/*
 * CLOCK_MONOTONIC, relative to now. first_ns == 0 leaves the timer
 * disarmed (as timerfd does): pass 1 for "as soon as possible".
 * interval_ns == 0 is a oneshot. Returns a timer id >= 0 or -errno.
 * loop_mod_timer re-arms (or disarms) an existing timer with one syscall,
 * so a timeout that changes often (libcurl multi) keeps its id.
 */
int loop_add_timer(struct loop *l, uint64_t first_ns, uint64_t interval_ns,
		   loop_timer_cb cb, void *arg);
int loop_mod_timer(struct loop *l, int id, uint64_t first_ns,
		   uint64_t interval_ns);
int loop_del_timer(struct loop *l, int id);

/*
 * Waits up to timeout_ms (-1: forever, 0: don't block) and dispatches what
 * is ready. Returns the number of callbacks called or -errno; a wait
 * interrupted by a signal returns 0.
 */
int loop_run_once(struct loop *l, int timeout_ms);
/* Runs until loop_stop() (consumed on return); returns 0 or -errno. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#ifdef LOOP_BACKEND_INTERNAL
/*
 * Between loop.c and the backends only. A registration is named by a
 * token, (generation << 32) | fd: a completion or event carrying an old
 * token (fd deleted, modified, or its number reused) is dropped, so a
 * stale callback is never called and no backend keeps pointers to
 * watchers. Token 0 is never a watcher (fd 0 gets generation >= 1).
 */
struct loop_ops {
	const char *name;
	int kind;
	/* false: a registration fires once and loop.c re-arms it (poll). */
	int persistent;
	int (*init)(void **be);
	void (*fini)(void *be);
	int (*arm)(void *be, int fd, uint64_t token, uint32_t events);
	/* old_token is 0 when nothing is armed for fd. */
	int (*modify)(void *be, int fd, uint64_t old_token, uint64_t token,
		      uint32_t events);
	int (*disarm)(void *be, int fd, uint64_t old_token);
	/* Waits, then calls loop_dispatch() per event; returns calls or -errno. */
	int (*wait)(void *be, struct loop *l, int timeout_ms);
};

extern const struct loop_ops loop_epoll_ops;
extern const struct loop_ops loop_uring_ops;

/* Returns 1 if a callback was called, 0 if the event was stale. */
int loop_dispatch(struct loop *l, uint64_t token, uint32_t revents);
#endif /* LOOP_BACKEND_INTERNAL */

#endif /* LOOP_H */
