/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * caps.h - the probe's privilege handling, in the order main calls it:
 *   caps_check        kernel >= 5.8, BTF, every set-up capability held
 *   caps_reduce_setup permitted/effective = set-up set, bounding = steady set
 *   caps_drop_steady  keep CAP_SYS_PTRACE + CAP_CHECKPOINT_RESTORE only,
 *                     ambient cleared, no_new_privs
 *   sandbox_enter     the steady-state seccomp filter (kill by default)
 * Each logs what went wrong and returns 0 or -errno.
 */
#ifndef PROBE_CAPS_H
#define PROBE_CAPS_H

int caps_check(void);
int caps_reduce_setup(void);
int caps_drop_steady(void);
int sandbox_enter(void);

#endif /* PROBE_CAPS_H */
