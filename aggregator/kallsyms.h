/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kallsyms.h - kernel text symbols from /proc/kallsyms (an fd the probe
 * opened while it still had CAP_SYSLOG).
 */
#ifndef KALLSYMS_H
#define KALLSYMS_H

#include <stddef.h>
#include <stdint.h>

#define KALLSYMS_MAX_BYTES	(64u << 20)
/* No kernel function is this long; bounds the symbol before a gap. */
#define KALLSYMS_MAX_SYM_SIZE	(1u << 20)

struct kallsyms;

/*
 * Parses /proc/kallsyms text read from fd (pread from 0). -EPERM: every
 * address is zero (kptr_restrict, or opened without CAP_SYSLOG): the
 * caller should report that kernel frames cannot be named.
 */
int kallsyms_read_fd(int fd, struct kallsyms **out);
int kallsyms_parse(const char *buf, size_t len, struct kallsyms **out);
/*
 * Name of the text symbol containing ip, or NULL. *module (optional) is
 * the module name without brackets ("ext4") or NULL for vmlinux.
 */
const char *kallsyms_lookup(const struct kallsyms *ks, uint64_t ip,
			    const char **module, uint64_t *offset);
/* Address of a kept name (one per address; linear, for set-up and tests). */
int kallsyms_find(const struct kallsyms *ks, const char *name,
		  uint64_t *addr);
size_t kallsyms_count(const struct kallsyms *ks);
size_t kallsyms_bad_lines(const struct kallsyms *ks);
void kallsyms_free(struct kallsyms *ks);

#endif /* KALLSYMS_H */
