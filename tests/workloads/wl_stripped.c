/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_stripped - workload shipped stripped (no .symtab, functions not in
 * .dynsym); its symbols exist only in a separate debug file found by GNU
 * build id (<debug-dir>/.build-id/xx/rest.debug) or .gnu_debuglink.
 * Known CPU split:
 *   st_hot   60 %
 *   st_cold  40 %
 * Usage: wl_stripped SECONDS
 */
#include "wl_common.h"

#define SHARE_HOT	600
#define SHARE_COLD	400

WL_NOINLINE uint64_t st_hot(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t st_cold(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_MAIN_TWO(st_hot, SHARE_HOT, st_cold, SHARE_COLD)
