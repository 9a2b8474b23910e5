/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shapes recognised, one path component each (what Alloy's regex matches:
 * a 64-hex run after the last '/', preceded by nothing, '-' or ':', and
 * followed by '.' or the end; here a bounded scan instead of a regex):
 *   <id>                          docker cgroupfs /docker/<id>,
 *                                 kubepods/.../pod<uid>/<id>, containerd
 *   docker-<id>.scope             docker, systemd driver
 *   cri-containerd-<id>.scope     containerd CRI, systemd driver
 *   crio-<id>.scope, crio-conmon-<id>.scope
 *   libpod-<id>.scope, libpod-conmon-<id>.scope (podman)
 * conmon is attributed to its container, as Alloy does. Relative paths
 * (0::/../../kubepods/...: a cgroup namespace) need nothing special: the
 * ".." components simply never match.
 */
#include <stddef.h>
#include <string.h>

#include "containerid.h"

static int is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* comp[0..len) is one path component; the id is its last 64-hex run. */
static const char *component_id(const char *comp, size_t len)
{
	size_t end = len, i;
	const char *dot = memchr(comp, '.', len);

	/* the id ends at the first '.' (".scope") or at the end */
	if (dot)
		end = (size_t)(dot - comp);
	if (end < CONTAINER_ID_LEN)
		return NULL;
	for (i = end - CONTAINER_ID_LEN; i < end; i++)
		if (!is_lower_hex(comp[i]))
			return NULL;
	i = end - CONTAINER_ID_LEN;
	if (i > 0 && comp[i - 1] != '-' && comp[i - 1] != ':')
		return NULL;
	return comp + i;
}

/* The path of one "hierarchy-id:controllers:path" line, or NULL. */
static const char *line_path(const char *line, const char *eol)
{
	const char *c1 = memchr(line, ':', (size_t)(eol - line)), *c2;

	if (!c1)
		return NULL;
	c2 = memchr(c1 + 1, ':', (size_t)(eol - c1 - 1));
	return c2 ? c2 + 1 : NULL;
}

static const char *path_id(const char *p, const char *eol)
{
	const char *found = NULL, *id, *slash;

	while (p < eol) {
		slash = memchr(p, '/', (size_t)(eol - p));
		if (!slash)
			slash = eol;
		id = component_id(p, (size_t)(slash - p));
		if (id)
			found = id;
		p = slash + 1;
	}
	return found;
}

int containerid_from_cgroup(const char *text, char out[CONTAINER_ID_LEN + 1])
{
	const char *end, *line, *eol, *path, *id, *found = NULL;

	out[0] = '\0';
	if (!text)
		return 0;
	end = text + strnlen(text, CONTAINERID_TEXT_MAX);
	for (line = text; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		path = line_path(line, eol);
		id = path ? path_id(path, eol) : NULL;
		if (id)
			found = id;
	}
	if (!found)
		return 0;
	memcpy(out, found, CONTAINER_ID_LEN);
	out[CONTAINER_ID_LEN] = '\0';
	return 1;
}
