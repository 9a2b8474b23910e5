/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_split - PIE workload with a known CPU split (of thread CPU time):
 *   hot_a       40 %
 *   hot_b       20 %
 *   chain_leaf  20 %, always reached as main -> chain_1 -> chain_2 ->
 *                     chain_3 -> chain_leaf
 *   lib_hot     20 %, in libwl.so
 * Usage: wl_split SECONDS
 */
#include "libwl.h"
#include "wl_common.h"

#define SHARE_HOT_A	400
#define SHARE_HOT_B	200
#define SHARE_CHAIN	200
#define SHARE_LIB	200

/* Keeps the chain functions from becoming tail calls, which would drop
 * their frames from the stack. */
static volatile uint64_t chain_calls;

WL_NOINLINE uint64_t hot_a(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t hot_b(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t chain_leaf(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t chain_3(uint64_t budget_ns)
{
	uint64_t spent = chain_leaf(budget_ns);

	chain_calls++;
	return spent;
}

WL_NOINLINE uint64_t chain_2(uint64_t budget_ns)
{
	uint64_t spent = chain_3(budget_ns);

	chain_calls++;
	return spent;
}

WL_NOINLINE uint64_t chain_1(uint64_t budget_ns)
{
	uint64_t spent = chain_2(budget_ns);

	chain_calls++;
	return spent;
}

/* The hot functions are called from main itself (no dispatch helper) so
 * that the chain is exactly main -> chain_1 -> ... -> chain_leaf. */
int main(int argc, char **argv)
{
	uint64_t deadline = wl_deadline(argc, argv);
	uint64_t a = 0, b = 0, c = 0, l = 0, rounds = 0;

	while (wl_running(deadline)) {
		rounds++;
		a += hot_a(wl_owed(SHARE_HOT_A, rounds, a));
		b += hot_b(wl_owed(SHARE_HOT_B, rounds, b));
		c += chain_1(wl_owed(SHARE_CHAIN, rounds, c));
		l += lib_hot(wl_owed(SHARE_LIB, rounds, l));
	}
	return 0;
}
