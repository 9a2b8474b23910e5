/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_debuglink - workload shipped stripped and without a GNU build id: its
 * symbols exist only in a separate debug file that only its .gnu_debuglink
 * (name + CRC32) leads to, in gdb's DIR/.debug/NAME.
 * Known CPU split:
 *   dl_hot   65 %
 *   dl_cold  35 %
 * Usage: wl_debuglink SECONDS
 */
#include "wl_common.h"

#define SHARE_HOT	650
#define SHARE_COLD	350

WL_NOINLINE uint64_t dl_hot(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t dl_cold(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_MAIN_TWO(dl_hot, SHARE_HOT, dl_cold, SHARE_COLD)
