/* SPDX-License-Identifier: BSD-2-Clause */
/* caps.h - the probe's privileges, in the order main drops them (caps.c).
 * Each function logs what went wrong and returns 0 or -errno. */
#ifndef PROBE_CAPS_H
#define PROBE_CAPS_H

int caps_check(void);		/* kernel >= 5.8, BTF, set-up caps held */
int caps_reduce_setup(void);	/* caps = set-up set, bounding = steady */
int caps_drop_steady(void);	/* PTRACE + CHECKPOINT_RESTORE only, nnp */
int sandbox_enter(void);	/* seccomp, kill by default */

#endif /* PROBE_CAPS_H */
