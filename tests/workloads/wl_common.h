/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_common.h - helpers for the end-to-end test workloads.
 *
 * Each workload spends its CPU time in named, non-inlined functions with an
 * exactly known split. Budgets are measured in thread CPU time
 * (CLOCK_THREAD_CPUTIME_ID: user + system), the clock a CPU-clock sampler
 * effectively samples, so the split holds however the host is loaded. The
 * functions take turns in short slices so that any sampling window, not just
 * the whole run, sees the intended proportions.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

/* noclone: no hot_a.constprop.0 clones; the names must be exact. */
#ifdef __clang__
#define WL_NOINLINE	__attribute__((noinline))
#else
#define WL_NOINLINE	__attribute__((noinline, noclone))
#endif
#define WL_INLINE	static inline __attribute__((always_inline))

/*
 * One round of all functions takes 3 to 17 ms of CPU time (10 ms on
 * average), shared out per mille; a collect window of seconds holds
 * hundreds of rounds, so every window, not just the whole run, sees the
 * split. The length varies from round to round: a fixed 10 ms rotation is
 * a 100 Hz rhythm that a 97 Hz sampler can alias with, and some runs came
 * out 9 points off the truth that way.
 */
#define WL_ROUND_MIN_NS	3000000ull
#define WL_ROUND_SPAN_NS	14000000ull

/* Iterations between two clock reads: ~75 us of work, so the clock
 * syscall (~0.6 us, it is not in the vDSO) costs under 1 % of
 * every function's time. */
#define WL_CHUNK	65536

/*
 * A system call issued right here, not through libc: the libc wrappers
 * (and the vDSO's clock_gettime fallback) run without a frame of their own,
 * so a frame-pointer unwinder sampling inside them skips their caller and
 * charges the time to the wrong workload function. Inlined, the syscall
 * instruction lies in the workload function itself, and samples taken in
 * the kernel unwind back to that function.
 */
WL_INLINE long wl_syscall3(long nr, long a1, long a2, long a3)
{
	long ret;
#if defined(__x86_64__)
	__asm__ volatile ("syscall"
			  : "=a"(ret)
			  : "0"(nr), "D"(a1), "S"(a2), "d"(a3)
			  : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;

	__asm__ volatile ("svc #0"
			  : "+r"(x0)
			  : "r"(x8), "r"(x1), "r"(x2)
			  : "memory");
	ret = x0;
#else
#error "workloads: add the raw syscall sequence for this architecture"
#endif
	return ret;
}

WL_INLINE uint64_t wl_clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (wl_syscall3(SYS_clock_gettime, clk, (long)&ts, 0) != 0)
		abort();
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

WL_INLINE uint64_t wl_cpu_ns(void)
{
	return wl_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Pure user-space work the compiler cannot drop: every step goes through a
 * volatile accumulator. Inlined so the loop, and hence the sampled
 * instruction pointer, lies in the calling workload function. Returns the
 * CPU time actually spent. */
WL_INLINE uint64_t wl_burn(uint64_t budget_ns)
{
	static volatile uint64_t acc;
	uint64_t start = wl_cpu_ns(), now;
	unsigned int i;

	do {
		for (i = 0; i < WL_CHUNK; i++)
			acc = acc * 6364136223846793005ull + i;
		now = wl_cpu_ns();
	} while (now - start < budget_ns);
	return now - start;
}

/* Budget for the next slice of a function that should get share_pm per
 * mille of the CPU time: what it is owed after `rounds` rounds. Tracking
 * what was really spent keeps overshoot from adding up. */
/* CPU time of rounds 1..rounds together (rounds only ever grows by one). */
WL_INLINE uint64_t wl_rounds_ns(uint64_t rounds)
{
	static uint64_t seen, total, x = 88172645463325252ull;

	for (; seen < rounds; seen++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		total += WL_ROUND_MIN_NS + x % (WL_ROUND_SPAN_NS + 1);
	}
	return total;
}

WL_INLINE uint64_t wl_owed(unsigned int share_pm, uint64_t rounds,
			   uint64_t spent)
{
	uint64_t target = wl_rounds_ns(rounds) / 1000 * share_pm;

	return target > spent ? target - spent : 0;
}

/* argv[1]: run time in seconds (fractions allowed). Returns the deadline
 * on CLOCK_MONOTONIC. */
WL_INLINE uint64_t wl_deadline(int argc, char **argv)
{
	double sec;
	char *end;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SECONDS\n", argv[0]);
		exit(2);
	}
	sec = strtod(argv[1], &end);
	if (end == argv[1] || *end != '\0' || !(sec > 0 && sec < 86400)) {
		fprintf(stderr, "%s: bad run time '%s'\n", argv[0], argv[1]);
		exit(2);
	}
	return wl_clock_ns(CLOCK_MONOTONIC) + (uint64_t)(sec * 1e9);
}

WL_INLINE int wl_running(uint64_t deadline)
{
	return wl_clock_ns(CLOCK_MONOTONIC) < deadline;
}

/* main() of a workload that splits its CPU time between two functions,
 * per mille, called straight from main. */
#define WL_MAIN_TWO(hot_fn, hot_pm, cold_fn, cold_pm)			\
int main(int argc, char **argv)						\
{									\
	uint64_t deadline = wl_deadline(argc, argv);			\
	uint64_t hot = 0, cold = 0, rounds = 0;				\
									\
	while (wl_running(deadline)) {					\
		rounds++;						\
		hot += hot_fn(wl_owed(hot_pm, rounds, hot));		\
		cold += cold_fn(wl_owed(cold_pm, rounds, cold));	\
	}								\
	return 0;							\
}

#endif /* WL_COMMON_H */
