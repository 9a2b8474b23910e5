/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef SP_DURATION_H
#define SP_DURATION_H

#include <stdint.h>

/*
 * Parse a Go-style duration ("500ms", "15s", "5m", "1h30m", "1.5s", "0")
 * into nanoseconds. Units: ns, us (µs), ms, s, m, h. A bare number other
 * than 0 is rejected (as in Go). Returns 0 or -EINVAL / -ERANGE.
 */
int sp_parse_duration(const char *s, uint64_t *ns);

#endif /* SP_DURATION_H */
