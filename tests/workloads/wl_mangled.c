/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_mangled - C++-mangled function names, written in C: the asm labels
 * give the symbols the names g++ would, so no C++ compiler is needed.
 *   _ZN2sp6WorkerIiE3hotEm   void sp::Worker<int>::hot(unsigned long)  70 %
 *   _ZN2sp6Worker4coldEPKc   sp::Worker::cold(char const*)             30 %
 * Usage: wl_mangled SECONDS
 */
#include "wl_common.h"

#define SHARE_HOT	700
#define SHARE_COLD	300

WL_NOINLINE uint64_t mangled_hot(uint64_t budget_ns)
	__asm__("_ZN2sp6WorkerIiE3hotEm");
WL_NOINLINE uint64_t mangled_cold(uint64_t budget_ns)
	__asm__("_ZN2sp6Worker4coldEPKc");

WL_NOINLINE uint64_t mangled_hot(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_NOINLINE uint64_t mangled_cold(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

WL_MAIN_TWO(mangled_hot, SHARE_HOT, mangled_cold, SHARE_COLD)
