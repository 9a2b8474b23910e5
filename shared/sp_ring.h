/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sp_ring.h - single-producer single-consumer byte ring in sealed memfd
 * shared memory, across a trust boundary.
 *
 * Producer (probe, trusted): creates the data memfd, the consumer memfd and
 * the eventfd; never blocks; drops and counts when full; treats the consumer
 * position as hostile.
 * Consumer (aggregator, untrusted by the producer): maps the data memfd
 * read-only after checking its seals, copies every record out before it
 * looks at it, rejects bad lengths and counts sequence gaps.
 *
 * All functions return 0 (or a documented non-negative value) or -errno and
 * never log.
 */
#ifndef SP_RING_H
#define SP_RING_H

#include <fcntl.h>	/* F_SEAL_* for SP_RING_SEALS_REQUIRED */
#include <stddef.h>
#include <stdint.h>
#include "sp_abi.h"

/* The seals the consumer requires on the data memfd. */
#define SP_RING_SEALS_REQUIRED \
	(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

struct sp_producer;
struct sp_consumer;

struct sp_ring_fds {
	int data_fd;	/* sealed data memfd: header page + data area */
	int cons_fd;	/* consumer page memfd */
	int event_fd;	/* producer -> consumer wake-up */
};

/* Producer counters as the producer sees them (also in the header page). */
struct sp_ring_stats {
	uint64_t records;
	uint64_t dropped_records;
	uint64_t dropped_bytes;
	uint64_t bpf_lost;
	uint64_t idle_samples;
};

/*
 * Create a ring whose data area is data_size bytes (a power of two between
 * SP_RING_MIN_DATA and SP_RING_MAX_DATA). The returned fds stay owned by the
 * producer (sp_producer_free closes them); dup or pass them as needed.
 */
int sp_producer_create(uint64_t data_size, struct sp_producer **out);
void sp_producer_free(struct sp_producer *p);
const struct sp_ring_fds *sp_producer_fds(const struct sp_producer *p);

/*
 * Append one record. Never blocks. Returns 0, -ENOSPC when the ring is full
 * (the record is dropped and counted) or -EINVAL for a record larger than
 * SP_REC_MAX (also counted as dropped).
 */
int sp_producer_write(struct sp_producer *p, uint16_t type, uint16_t flags,
		      const void *payload, uint32_t len);

/*
 * Wake the consumer if it said it is waiting and records were written since
 * the last call. Call once per batch of writes. Returns 1 if it signalled.
 */
int sp_producer_notify(struct sp_producer *p);

/* Add to the BPF-loss and idle counters kept in the header page. */
void sp_producer_add_bpf_lost(struct sp_producer *p, uint64_t n);
void sp_producer_add_idle(struct sp_producer *p, uint64_t n);
void sp_producer_stats(const struct sp_producer *p, struct sp_ring_stats *st);

/* Bytes the producer currently considers unconsumed (for tests/metrics). */
uint64_t sp_producer_used(struct sp_producer *p);

/*
 * Consumer side. Takes ownership of the three fds on success (closed by
 * sp_consumer_free) and leaves them to the caller on failure.
 * Fails with -EPERM when the seals are not what SP_RING_SEALS_REQUIRED says,
 * -EINVAL when the size or header is not a valid ring.
 */
int sp_consumer_open(const struct sp_ring_fds *fds, struct sp_consumer **out);
void sp_consumer_free(struct sp_consumer *c);

/* Consumer statistics: what it saw go wrong. */
struct sp_consumer_stats {
	uint64_t records;	/* records returned */
	uint64_t bytes;
	uint64_t seq_gaps;	/* number of gaps */
	uint64_t seq_missing;	/* records missing in those gaps */
	uint64_t bad_records;	/* rejected: bad len/type; ring reset to prod */
};

/*
 * Copy the next record (header included) into buf (cap bytes, at least
 * SP_REC_MAX is always enough) and consume it. Returns the record length,
 * 0 when the ring is empty, or -EBADMSG when the record at the consumer
 * position is malformed (it then skips to the producer position and counts
 * the loss). A valid record longer than cap is left in place and -ENOBUFS
 * returned, so the caller can retry with a larger buffer.
 */
int sp_consumer_next(struct sp_consumer *c, void *buf, size_t cap);

/*
 * Prepare to sleep: announce "waiting", full barrier, re-check. Returns 1 if
 * records arrived meanwhile (do not sleep), 0 if the caller may block on the
 * eventfd. After waking call sp_consumer_wake_ack().
 */
int sp_consumer_prepare_wait(struct sp_consumer *c);
void sp_consumer_wake_ack(struct sp_consumer *c);
int sp_consumer_event_fd(const struct sp_consumer *c);

void sp_consumer_stats(const struct sp_consumer *c,
		       struct sp_consumer_stats *st);
/* A snapshot of the producer's counters from the read-only header page. */
void sp_consumer_producer_stats(const struct sp_consumer *c,
				struct sp_ring_stats *st);
uint64_t sp_consumer_data_size(const struct sp_consumer *c);

#endif /* SP_RING_H */
