/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsym.h"
#include "kallsyms.h"
#include "symbolize.h"
#include "strmap.h"
#include "symcache.h"

/* Distinct demangled names kept; beyond it names stay mangled (counted). */
#define DEMANGLE_CACHE_MAX	65536

struct symbolizer {
	struct symcache *sc;
	struct kallsyms *ks;
	struct elfsym *vdso;
	struct probe_client *pc;
	bool no_query;			/* the kernel has no PROCMAP_QUERY */
	enum demangle_mode demangle;
	struct strmap *names;		/* mangled -> demangled, or &not_mangled */
	struct procmaps_query_result qr;	/* scratch for one lookup */
	struct symbolizer_stats st;
};

/* What the cache's open callbacks need to ask the probe for a file. */
struct open_ctx {
	struct symbolizer *s;
	const struct proc *p;
	const struct procmaps_entry *e;
};

static int open_mapping_cb(void *arg)
{
	struct open_ctx *oc = arg;
	int fd = -1, r;

	if (!oc->s->pc)
		return -ENOTCONN;
	r = probe_open_mapping(oc->s->pc, oc->p->pid, oc->p->start_time,
			       oc->e->start, oc->e->end, (uint64_t)oc->e->dev,
			       oc->e->ino, &fd);
	if (r < 0)
		oc->s->st.open_errors++;
	return r < 0 ? r : fd;
}

static int open_debug_cb(void *arg, const uint8_t *id, size_t len)
{
	struct open_ctx *oc = arg;
	int fd = -1, r;

	if (!oc->s->pc)
		return -ENOTCONN;
	r = probe_open_debug(oc->s->pc, oc->p->pid, oc->p->start_time, id,
			     (uint32_t)len, &fd);
	return r < 0 ? r : fd;
}

static int open_debuglink_cb(void *arg, const char *name)
{
	struct open_ctx *oc = arg;
	int fd = -1, r;

	if (!oc->s->pc)
		return -ENOTCONN;
	r = probe_open_debuglink(oc->s->pc, oc->p->pid, oc->p->start_time,
				 oc->e->start, oc->e->end, (uint64_t)oc->e->dev,
				 oc->e->ino, name, &fd);
	return r < 0 ? r : fd;
}

static char not_mangled;	/* cached answer: the demangler refused it */

static void free_name(void *v)
{
	if (v != &not_mangled)
		free(v);
}

/* Each distinct name is demangled once; the cache lives as long as the
 * symbolizer, so what it returns stays valid. */
static const char *demangled(struct symbolizer *s, const char *name)
{
	void **slot;
	char *d;

	if (!s->names || strncmp(name, "_Z", 2) != 0)
		return name;
	slot = strmap_slot(s->names, name, strlen(name), true);
	if (!slot) {
		s->st.demangle_cache_full++;
		return name;
	}
	if (!*slot) {
		d = demangle(name, s->demangle);
		*slot = d ? d : &not_mangled;
		if (d)
			s->st.demangled++;
		else
			s->st.demangle_failed++;
	}
	return *slot == &not_mangled ? name : *slot;
}

struct symbolizer *symbolizer_new(const struct symbolizer_config *cfg,
				  struct probe_client *pc, int kallsyms_fd)
{
	struct symcache_opts so = {
		.build_id_cache_size = cfg->build_id_cache_size,
		.same_file_cache_size = cfg->same_file_cache_size,
		.open_debug = open_debug_cb,
		.open_debuglink = open_debuglink_cb,
	};
	struct symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->pc = pc;
	s->demangle = cfg->demangle;
	s->sc = symcache_new(&so);
	if (s->demangle != DEMANGLE_NONE)
		s->names = strmap_new(DEMANGLE_CACHE_MAX);
	if (!s->sc || (s->demangle != DEMANGLE_NONE && !s->names)) {
		symcache_free(s->sc);
		free(s);
		return NULL;
	}
	/* Without kallsyms (or with zeroed addresses) kernel frames stay
	 * unnamed but keep their vmlinux mapping. */
	if (kallsyms_fd >= 0) {
		if (kallsyms_read_fd(kallsyms_fd, &s->ks) < 0)
			s->ks = NULL;
		close(kallsyms_fd);
	}
	s->st.kallsyms_symbols = s->ks ? kallsyms_count(s->ks) : 0;
	/* Every process maps the same vDSO image: our own. */
	if (elfsym_open_vdso(&s->vdso) < 0)
		s->vdso = NULL;
	return s;
}

void symbolizer_free(struct symbolizer *s)
{
	if (!s)
		return;
	symcache_free(s->sc);
	strmap_free(s->names, free_name);
	kallsyms_free(s->ks);
	elfsym_free(s->vdso);
	free(s);
}

static void set_unknown(struct sym_frame *out, uint64_t ip)
{
	*out = (struct sym_frame){ .func = "[unknown]", .addr = ip };
}

/* Fill the ELF-space mapping bounds and name of a file-backed frame. */
static void from_elf(struct symbolizer *s, const struct elfsym *es,
		     const struct procmaps_entry *e,
		     uint64_t ip, uint64_t lookup, struct sym_frame *out)
{
	uint64_t v, start;
	const char *name;

	out->build_id = elfsym_build_id(es);
	if (elfsym_ip_to_vaddr(es, e->start, e->offset, lookup, &v) < 0)
		return;
	out->addr = v + (ip - lookup);
	if (elfsym_file_to_vaddr(es, e->offset, &start) == 0) {
		out->map_start = start;
		out->map_limit = start + (e->end - e->start);
	}
	name = elfsym_lookup(es, v, NULL);
	if (name) {
		out->func = demangled(s, name);
		out->named = true;
	}
}

/*
 * A library loaded after we read the maps: ask the kernel for just that
 * address (PROCMAP_QUERY, Linux >= 6.11) and let the table catch up at its
 * own pace; without the ioctl, re-read the whole text (rate-limited).
 */
static const struct procmaps_entry *find_mapping(struct symbolizer *s,
						 struct proctable *pt,
						 struct proc *p, uint64_t ip,
						 uint64_t now_ns)
{
	const struct procmaps_entry *e = NULL;
	int r;

	if (p->maps)
		e = procmaps_lookup(p->maps, ip);
	if (e || p->maps_fd < 0)
		return e;
	if (!s->no_query) {
		r = procmaps_query(p->maps_fd, ip, &s->qr);
		if (r == 0)
			s->st.map_queries++;
		(void)proctable_refresh(pt, p, now_ns);
		if (r == 0)
			return &s->qr.e;
		if (r != -ENOTTY && r != -EINVAL)
			return NULL;	/* in no file mapping */
		s->no_query = true;
	}
	if (proctable_refresh(pt, p, now_ns) == 1)
		e = procmaps_lookup(p->maps, ip);
	return e;
}

void symbolize_user(struct symbolizer *s, struct proctable *pt,
		    struct proc *p, uint64_t ip, bool leaf, uint64_t now_ns,
		    struct sym_frame *out)
{
	uint64_t lookup = leaf || ip == 0 ? ip : ip - 1;
	const struct procmaps_entry *e;
	struct open_ctx oc = { s, p, NULL };
	const struct elfsym *es = NULL;
	struct procmaps_entry vdso;

	s->st.user_frames++;
	set_unknown(out, ip);
	e = find_mapping(s, pt, p, lookup, now_ns);
	if (!e) {
		s->st.unknown_mapping++;
		return;
	}
	out->file = e->path[0] ? e->path : NULL;
	out->func = symcache_module_name(e->path);
	out->map_start = e->start;
	out->map_limit = e->end;
	out->map_offset = e->offset;
	if (strcmp(e->path, "[vdso]") == 0) {
		/* the vDSO image is mapped from its start, offset 0 */
		vdso = (struct procmaps_entry){ .start = e->start, .end = e->end };
		es = s->vdso;
		oc.e = &vdso;
	} else if (e->ino != 0 && e->path[0] == '/') {
		oc.e = e;
		es = symcache_get(s->sc, e->dev, e->ino, open_mapping_cb, &oc);
	}
	if (es)
		from_elf(s, es, oc.e, ip, lookup, out);
	s->st.user_named += out->named;
}

void symbolize_kernel(struct symbolizer *s, uint64_t ip, bool leaf,
		      struct sym_frame *out)
{
	uint64_t lookup = leaf || ip == 0 ? ip : ip - 1;
	const char *module = NULL, *name = NULL;

	s->st.kernel_frames++;
	*out = (struct sym_frame){ .func = "[kernel]", .file = "vmlinux",
				   .kernel = true, .addr = ip };
	if (s->ks)
		name = kallsyms_lookup(s->ks, lookup, &module, NULL);
	if (module)
		out->file = module;
	if (name) {
		out->func = name;
		out->named = true;
		s->st.kernel_named++;
	}
}

void symbolizer_stats(const struct symbolizer *s, struct symbolizer_stats *st)
{
	struct symcache_stats cs;

	*st = s->st;
	symcache_get_stats(s->sc, &cs);
	st->cache_hits = cs.build_id.hits + cs.same_file.hits;
	st->cache_misses = cs.same_file.misses;
	st->bad_elf = cs.bad_elf;
	st->debug_files = cs.debug_files;
	st->debuglink_files = cs.debuglink_files;
	st->bad_debug = cs.bad_debug;
	st->debuglink_crc_mismatch = cs.debuglink_crc_mismatch;
}
