/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symbolize.h - turn one sampled address into a frame: function name,
 * mapping file, build id, and the address in the ELF's own address space.
 * User frames go through the process's maps and the ELF caches (files come
 * from the probe as fds); kernel frames through the kallsyms fd from HELLO.
 * An address that cannot be named gets the module's base name, like Alloy;
 * one that is in no mapping gets "[unknown]". Never fails.
 */
#ifndef AGG_SYMBOLIZE_H
#define AGG_SYMBOLIZE_H

#include <stdbool.h>
#include <stdint.h>
#include "demangle.h"
#include "probe_client.h"
#include "proctable.h"

struct symbolizer;

struct sym_frame {
	const char *func;	/* never NULL */
	bool named;		/* func came from a symbol table */
	const char *file;	/* mapping file; NULL: no mapping */
	const char *build_id;	/* hex, or NULL */
	bool kernel;
	uint64_t addr;		/* ELF vaddr (user) or kernel address */
	uint64_t map_start, map_limit, map_offset;	/* ELF space */
};

struct symbolizer_config {
	uint32_t build_id_cache_size;	/* Alloy default 64 */
	uint32_t same_file_cache_size;	/* Alloy default 8 */
	enum demangle_mode demangle;	/* Alloy default none */
};

struct symbolizer_stats {
	uint64_t user_frames, user_named;
	uint64_t kernel_frames, kernel_named;
	uint64_t unknown_mapping;	/* address in no mapping */
	uint64_t map_queries;		/* found with PROCMAP_QUERY after a miss */
	uint64_t open_errors;		/* OPEN_MAPPING refused */
	uint64_t bad_elf;		/* truncated/hostile ELF files */
	uint64_t debug_files;		/* separate debug files used */
	uint64_t debuglink_files;	/* of which found by .gnu_debuglink */
	uint64_t bad_debug;		/* debug files unusable/other build */
	uint64_t debuglink_crc_mismatch; /* debuglink file with a wrong CRC */
	uint64_t cache_hits, cache_misses;
	uint64_t demangled;		/* distinct names demangled */
	uint64_t demangle_failed;	/* _Z names the demangler refused */
	uint64_t demangle_cache_full;	/* lookups left mangled: cache full */
	uint64_t kallsyms_symbols;
};

/* Takes ownership of kallsyms_fd (may be -1). pc may be NULL in tests. */
struct symbolizer *symbolizer_new(const struct symbolizer_config *cfg,
				  struct probe_client *pc, int kallsyms_fd);
void symbolizer_free(struct symbolizer *s);

/*
 * Strings in *out stay valid until the next symbolizer call. leaf is true
 * for the sampled address itself; other frames are return addresses and
 * are looked up at ip - 1 so a call at the end of a function names it.
 */
void symbolize_user(struct symbolizer *s, struct proctable *pt,
		    struct proc *p, uint64_t ip, bool leaf, uint64_t now_ns,
		    struct sym_frame *out);
void symbolize_kernel(struct symbolizer *s, uint64_t ip, bool leaf,
		      struct sym_frame *out);

void symbolizer_stats(const struct symbolizer *s, struct symbolizer_stats *st);

#endif /* AGG_SYMBOLIZE_H */
