/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pprof.h - one CPU profile (pprof profile.proto) for one target and one
 * collect interval, built by interning: strings, mappings, functions,
 * locations and whole stacks each live once, so a stack seen a thousand
 * times costs one sample. The encoding follows Alloy's pyroscope.ebpf
 * (shared/reference/pyroscope-api.md §4.2): sample and period type
 * cpu/nanoseconds, value = count × period, mapping 1 a dummy mapping for
 * frames without one, ids 1-based in insertion order.
 *
 * Memory is bounded: past PPROF_MAX_* items, new ones are refused and
 * counted in the stats instead of growing. Library code: never logs.
 */
#ifndef SP_PPROF_H
#define SP_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PPROF_MAX_STRINGS	(1u << 20)
#define PPROF_MAX_FUNCTIONS	(1u << 20)
#define PPROF_MAX_LOCATIONS	(1u << 20)
#define PPROF_MAX_MAPPINGS	(1u << 16)
#define PPROF_MAX_SAMPLES	(1u << 20)
/* Location ids kept across all distinct stacks (4 bytes each). */
#define PPROF_MAX_STACK_IDS	(1u << 24)
/* Pyroscope truncates longer strings anyway (max-profile-symbol-value-length). */
#define PPROF_MAX_STRING_LEN	65535u

/* Frames without a mapping point at this dummy mapping, as in Alloy. */
#define PPROF_MAPPING_NONE	1

struct pprof;

struct pprof_stats {
	uint64_t samples;	/* distinct stacks */
	uint64_t locations;
	uint64_t functions;
	uint64_t mappings;	/* including the dummy mapping */
	uint64_t strings;	/* including "" */
	int64_t total_count;	/* sum of counts added */
	uint64_t dropped_strings;
	uint64_t dropped_functions;
	uint64_t dropped_locations;
	uint64_t dropped_mappings;
	uint64_t dropped_samples;	/* add_sample calls refused */
	int64_t dropped_count;		/* their summed counts */
};

/*
 * period_ns is 1e9 / sample_rate (integer division, like Alloy);
 * time_nanos is the wall clock at build time; duration_nanos 0 leaves the
 * field unset, as Alloy does.
 */
struct pprof *pprof_new(uint64_t period_ns, int64_t time_nanos,
			int64_t duration_nanos);
void pprof_free(struct pprof *b);

/* The interval's real bounds are known only when it is flushed. */
void pprof_set_time(struct pprof *b, int64_t time_nanos, int64_t duration_nanos);

/*
 * Intern a mapping by (start, filename, build id) — Alloy's (start, file)
 * key plus the build id, so the same path replaced on disk stays two
 * mappings. Returns its id (>= 2), or 0 if refused (cap, no memory).
 * has_functions only ever turns on: a symbolized location sets it too.
 */
uint64_t pprof_mapping(struct pprof *b, uint64_t start, uint64_t limit,
		       uint64_t file_offset, const char *filename,
		       const char *build_id_hex, bool has_functions);

/*
 * A kernel mapping as Alloy writes it: file "vmlinux" or the module name,
 * start/limit/offset 0, has_functions and has_line_numbers set.
 */
uint64_t pprof_kernel_mapping(struct pprof *b, const char *name,
			      const char *build_id_hex);

/*
 * Intern a location by (mapping, address, function). mapping_id 0 means
 * "no mapping" (the dummy mapping 1). function_name NULL or "" gives a
 * location without a Line (unsymbolized: address + mapping only).
 * Returns its id (>= 1), or 0 if refused.
 */
uint64_t pprof_location(struct pprof *b, uint64_t mapping_id,
			uint64_t address, const char *function_name);

/*
 * Add count samples of one stack, leaf first. Identical stacks merge.
 * Returns 0, -EINVAL for an unknown location id or an empty stack,
 * -ENOSPC past the caps, -ENOMEM; refused samples are counted in stats.
 */
int pprof_add_sample(struct pprof *b, const uint64_t *location_ids, size_t n,
		     int64_t count);

/* Encode (optionally gzip, BestSpeed) into a new buffer the caller frees. */
int pprof_encode(const struct pprof *b, uint8_t **out, size_t *len, bool gzip);

void pprof_stats(const struct pprof *b, struct pprof_stats *st);

enum pprof_top_order {
	PPROF_TOP_SELF,		/* samples with the function as the leaf */
	PPROF_TOP_TOTAL,	/* samples with the function anywhere on the stack */
};

struct pprof_top_entry {
	const char *name;	/* owned by the builder; "[unknown]" if none */
	int64_t self;		/* in counts (samples), not nanoseconds */
	int64_t total;
};

/*
 * The top n functions by order, into a new array (*out, caller frees,
 * *n_out <= n entries). Locations without a function count as
 * "[unknown]". Names stay valid until pprof_free.
 */
int pprof_top(const struct pprof *b, size_t n, enum pprof_top_order order,
	      struct pprof_top_entry **out, size_t *n_out);

#endif /* SP_PPROF_H */
