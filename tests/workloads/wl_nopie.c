/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_nopie - non-PIE workload (fixed load address) with a known CPU split:
 *   np_hot   70 %
 *   np_cold  30 %
 * Usage: wl_nopie SECONDS
 */
#include "wl_common.h"

#define SHARE_HOT	700
#define SHARE_COLD	300

WL_NOINLINE uint64_t np_hot(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t np_cold(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_MAIN_TWO(np_hot, SHARE_HOT, np_cold, SHARE_COLD)
