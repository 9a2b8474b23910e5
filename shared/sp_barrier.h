/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sp_barrier.h - the one place memory ordering is spelled out, over the C11
 * __atomic builtins (as liburing's barrier.h). Every use in the ring carries
 * a one-line comment naming the barrier on the other side it pairs with.
 *
 * Shared-memory words written by the other process are only ever accessed
 * through these macros, so no access can tear or be merged by the compiler.
 */
#ifndef SP_BARRIER_H
#define SP_BARRIER_H

/* Single-copy-atomic access, no ordering. */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Everything before the store is visible before the stored value is. */
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Nothing after the load is performed before the load. */
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)

/*
 * Full barrier, including StoreLoad: a store before it is globally visible
 * before any load after it. Needed for "publish mine, then read theirs".
 */
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

#endif /* SP_BARRIER_H */
