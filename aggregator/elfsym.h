/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * elfsym.h - a compact, immutable function-symbol table of one ELF file
 * (.symtab + .dynsym), its GNU build id, .gnu_debuglink and PT_LOAD
 * segments. Built with libelf in ELF_C_READ mode (pread, never mmap: a
 * profiled process may truncate its binary under us, which would SIGBUS a
 * mapping). The file is hostile; nothing libelf returns is trusted. Once
 * built, the table keeps no reference to the fd.
 */
#ifndef ELFSYM_H
#define ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELFSYM_MAX_MEM		(64u << 20)	/* symbols + names */
#define ELFSYM_MAX_NAME		1024		/* longer names are cut */
#define ELFSYM_MAX_BUILD_ID	64		/* bytes */

struct elfsym;

/* Parses an ELF file; fd stays the caller's. -ENOEXEC: not ELF / not
 * ET_EXEC or ET_DYN; -EINVAL: malformed; -E2BIG: over the memory cap. */
int elfsym_open_fd(int fd, struct elfsym **out);
/* Same from memory (copied; buf may be freed after). */
int elfsym_open_mem(const void *buf, size_t len, struct elfsym **out);
/* The vDSO of this process (same image in every process of this kernel). */
int elfsym_open_vdso(struct elfsym **out);
void elfsym_free(struct elfsym *es);

/* Function containing vaddr (ELF virtual address), or NULL. */
const char *elfsym_lookup(const struct elfsym *es, uint64_t vaddr,
			  uint64_t *offset_in_func);

/* File offset -> ELF vaddr through the PT_LOAD holding it. -ENOENT if none. */
int elfsym_file_to_vaddr(const struct elfsym *es, uint64_t file_offset,
			 uint64_t *vaddr);
/* Runtime ip in a mapping {map_start, map_offset} -> ELF vaddr. */
int elfsym_ip_to_vaddr(const struct elfsym *es, uint64_t map_start,
		       uint64_t map_offset, uint64_t ip, uint64_t *vaddr);

/* Lowercase hex, or NULL if the file has no NT_GNU_BUILD_ID note. */
const char *elfsym_build_id(const struct elfsym *es);
/* Raw build id bytes; returns the length (0: none). */
size_t elfsym_build_id_raw(const struct elfsym *es, const uint8_t **id);
/* .gnu_debuglink file name (and CRC32), or NULL. */
const char *elfsym_debuglink(const struct elfsym *es, uint32_t *crc);

/* Number of function symbols in the table. */
size_t elfsym_count(const struct elfsym *es);
/* At least one function symbol. */
bool elfsym_has_symbols(const struct elfsym *es);
/* Had a full .symtab; false for stripped files (dynsym only or nothing),
 * the cue to look for a separate debug file. */
bool elfsym_has_symtab(const struct elfsym *es);

/*
 * Adds the symbols of a separate debug file of the same binary (same
 * build id; its PT_LOADs and thus vaddrs match). dbg is left untouched.
 */
int elfsym_merge(struct elfsym *es, const struct elfsym *dbg);

#endif /* ELFSYM_H */
