/* SPDX-License-Identifier: BSD-2-Clause */
/* libwl.c - libwl.so: a hot function that lives in a shared library, so
 * the profiler must symbolize a second mapping of the process. */
#include "libwl.h"
#include "wl_common.h"

WL_NOINLINE uint64_t lib_hot(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}
