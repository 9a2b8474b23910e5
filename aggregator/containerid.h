/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * containerid.h - the container a process runs in, from its /proc/P/cgroup
 * text: the 64-hex-digit id docker, containerd/CRI, CRI-O and podman put
 * in the cgroup path. The text is the process's own doing (a process can
 * move itself into a cgroup it named), so parsing is bounded and never
 * allocates; a wrong id can only misattribute that process, as in Alloy.
 *
 * The id is computed once per process and kept on struct proc, so the
 * proc table's size (pid_cache_size) bounds it; container_id_cache_size is
 * accepted for Alloy compatibility and needs no cache of its own.
 */
#ifndef AGG_CONTAINERID_H
#define AGG_CONTAINERID_H

#define CONTAINER_ID_LEN	64
#define CONTAINERID_TEXT_MAX	65536	/* bytes of cgroup text looked at */

/*
 * Returns 1 and the id in out (NUL-terminated), or 0 and "" when no line
 * names a container. Every line (cgroup v1 hierarchies, v2 "0::") is
 * looked at; the last path component that carries an id wins, so nested
 * containers (kind: a pod inside a docker node) resolve to the innermost.
 */
int containerid_from_cgroup(const char *text, char out[CONTAINER_ID_LEN + 1]);

#endif /* AGG_CONTAINERID_H */
