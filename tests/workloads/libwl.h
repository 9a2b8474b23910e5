/* SPDX-License-Identifier: BSD-2-Clause */
/* libwl.h - the shared library half of wl_split. */
#ifndef LIBWL_H
#define LIBWL_H

#include <stdint.h>

/* Burns budget_ns of CPU time inside libwl.so; returns the time spent. */
uint64_t lib_hot(uint64_t budget_ns);

#endif /* LIBWL_H */
