// SPDX-License-Identifier: BSD-2-Clause
/*
 * sp_ring.c - the shared-memory ring: producer (probe) and consumer
 * (aggregator). See sp_ring.h for the contract and security.md section 4
 * for the rules this follows.
 *
 * Layout of the data memfd: one header page (struct sp_ring_hdr), then the
 * power-of-two data area. Both sides map the data area twice, back to back,
 * so a record that runs past the end of the area is contiguous in memory.
 * Positions are free-running 64-bit byte counts; offset = pos & mask.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sp_barrier.h"
#include "sp_ring.h"

/* Linux 6.3 uapi; Debian 12's headers predate them. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL		0x0008U
#endif

/* The consumer page is sealed against resizing so a hostile consumer cannot
 * truncate it under the producer's read-only mapping (SIGBUS). */
#define SP_CONS_SEALS	(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

struct sp_producer {
	struct sp_ring_fds fds;
	struct sp_ring_hdr *hdr;		/* RW, sole writer */
	uint8_t *data;				/* RW, 2 * size */
	const struct sp_cons_page *cons;	/* RO, hostile */
	uint64_t size;
	uint64_t mask;
	uint64_t prod;				/* our own copy, authoritative */
	uint64_t cons_seen;			/* clamped consumer position */
	uint64_t seq;				/* next seq to commit */
	uint64_t notified;			/* prod at the last notify */
	struct sp_ring_stats st;		/* mirrored into hdr */
};

struct sp_consumer {
	struct sp_ring_fds fds;
	const struct sp_ring_hdr *hdr;		/* RO, sealed */
	const uint8_t *data;			/* RO, 2 * size */
	struct sp_cons_page *cons;		/* RW, ours */
	uint64_t size;
	uint64_t mask;
	uint64_t cons_pos;			/* our own copy */
	uint64_t next_seq;
	bool have_seq;				/* next_seq is known */
	struct sp_consumer_stats st;
};

static bool valid_data_size(uint64_t size)
{
	return size >= SP_RING_MIN_DATA && size <= SP_RING_MAX_DATA &&
	       (size & (size - 1)) == 0;
}

static uint64_t rec_total(uint32_t payload_len)
{
	uint64_t n = sizeof(struct sp_rec_hdr) + (uint64_t)payload_len;

	return (n + SP_RING_ALIGN - 1) & ~(uint64_t)(SP_RING_ALIGN - 1);
}

static void fds_init(struct sp_ring_fds *fds)
{
	fds->data_fd = -1;
	fds->cons_fd = -1;
	fds->event_fd = -1;
}

static void fds_close(const struct sp_ring_fds *fds)
{
	if (fds->data_fd >= 0)
		(void)close(fds->data_fd);
	if (fds->cons_fd >= 0)
		(void)close(fds->cons_fd);
	if (fds->event_fd >= 0)
		(void)close(fds->event_fd);
}

static void unmap(const void *addr, size_t len)
{
	if (addr && addr != MAP_FAILED)
		(void)munmap((void *)(uintptr_t)addr, len);
}

/* A sealable memfd of exactly size bytes, all pages allocated up front so
 * no later first touch can fail with SIGBUS. */
static int ring_memfd(const char *name, uint64_t size)
{
	int fd, err;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_NOEXEC_SEAL |
				MFD_ALLOW_SEALING);
	if (fd < 0 && errno == EINVAL)	/* kernel < 6.3 */
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fallocate(fd, 0, 0, (off_t)size) < 0) {
		err = -errno;
		(void)close(fd);
		return err;
	}
	return fd;
}

/*
 * Map the data area of fd (at SP_RING_HDR_SIZE) twice back to back: reserve
 * 2 * size of address space, then place the same file range over each half.
 */
static int map_double(int fd, uint64_t size, int prot, void **out)
{
	uint8_t *base;
	void *m;
	int i, err;

	base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	for (i = 0; i < 2; i++) {
		m = mmap(base + i * size, size, prot, MAP_SHARED | MAP_FIXED,
			 fd, SP_RING_HDR_SIZE);
		if (m == MAP_FAILED) {
			err = -errno;
			(void)munmap(base, 2 * size);
			return err;
		}
	}
	*out = base;
	return 0;
}

static void *map_page(int fd, size_t len, int prot)
{
	void *m = mmap(NULL, len, prot, MAP_SHARED, fd, 0);

	return m == MAP_FAILED ? NULL : m;
}

/* ---------------------------------------------------------------- producer */

static int producer_map_data(struct sp_producer *p)
{
	void *data;
	int fd, err;

	fd = ring_memfd("splitprof-ring", SP_RING_HDR_SIZE + p->size);
	if (fd < 0)
		return fd;
	p->fds.data_fd = fd;
	p->hdr = map_page(fd, SP_RING_HDR_SIZE, PROT_READ | PROT_WRITE);
	if (!p->hdr)
		return -errno;
	err = map_double(fd, p->size, PROT_READ | PROT_WRITE, &data);
	if (err)
		return err;
	p->data = data;
	p->hdr->magic = SP_RING_MAGIC;
	p->hdr->version = SP_ABI_VERSION;
	p->hdr->hdr_size = SP_RING_HDR_SIZE;
	p->hdr->data_size = p->size;
	/* After this no new writable mapping or write() is possible, for us
	 * either; the two mappings above keep working (FUTURE_WRITE). */
	if (fcntl(fd, F_ADD_SEALS, SP_RING_SEALS_REQUIRED) < 0)
		return -errno;
	return 0;
}

static int producer_map_cons(struct sp_producer *p)
{
	int fd;

	fd = ring_memfd("splitprof-cons", SP_CONS_PAGE_SIZE);
	if (fd < 0)
		return fd;
	p->fds.cons_fd = fd;
	if (fcntl(fd, F_ADD_SEALS, SP_CONS_SEALS) < 0)
		return -errno;
	p->cons = map_page(fd, SP_CONS_PAGE_SIZE, PROT_READ);
	if (!p->cons)
		return -errno;
	return 0;
}

int sp_producer_create(uint64_t data_size, struct sp_producer **out)
{
	struct sp_producer *p;
	int err;

	if (!valid_data_size(data_size))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	fds_init(&p->fds);
	p->size = data_size;
	p->mask = data_size - 1;
	err = producer_map_data(p);
	if (!err)
		err = producer_map_cons(p);
	if (err)
		goto out;
	p->fds.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->fds.event_fd < 0) {
		err = -errno;
		goto out;
	}
	*out = p;
	return 0;
out:
	sp_producer_free(p);
	return err;
}

void sp_producer_free(struct sp_producer *p)
{
	if (!p)
		return;
	unmap(p->hdr, SP_RING_HDR_SIZE);
	unmap(p->data, 2 * p->size);
	unmap(p->cons, SP_CONS_PAGE_SIZE);
	fds_close(&p->fds);
	free(p);
}

const struct sp_ring_fds *sp_producer_fds(const struct sp_producer *p)
{
	return &p->fds;
}

/*
 * The consumer position is hostile: load it once, accept it only inside
 * [cons_seen, prod] (so it never goes backwards and never passes what we
 * wrote), otherwise keep the last accepted value. Unsigned differences keep
 * this right even across a 2^64 wrap.
 */
static uint64_t producer_cons(struct sp_producer *p)
{
	/* pairs with smp_store_release(cons_pos) in consumer_advance */
	uint64_t c = smp_load_acquire(&p->cons->cons_pos);

	if (c - p->cons_seen <= p->prod - p->cons_seen)
		p->cons_seen = c;
	return p->cons_seen;
}

static void producer_drop(struct sp_producer *p, uint64_t bytes)
{
	p->st.dropped_records++;
	p->st.dropped_bytes += bytes;
	WRITE_ONCE(p->hdr->dropped_records, p->st.dropped_records);
	WRITE_ONCE(p->hdr->dropped_bytes, p->st.dropped_bytes);
}

/* Offsets come only from our own prod; h->len <= SP_REC_MAX <= size, so
 * the record ends inside the second mapping at the latest. */
static void producer_put(struct sp_producer *p, const struct sp_rec_hdr *h,
			 const void *payload, uint32_t len)
{
	uint8_t *dst = p->data + (p->prod & p->mask);

	memcpy(dst, h, sizeof(*h));
	if (len)
		memcpy(dst + sizeof(*h), payload, len);
	memset(dst + sizeof(*h) + len, 0, h->len - sizeof(*h) - len);
}

int sp_producer_write(struct sp_producer *p, uint16_t type, uint16_t flags,
		      const void *payload, uint32_t len)
{
	uint64_t total = rec_total(len);
	struct sp_rec_hdr h;

	if (total > SP_REC_MAX) {
		producer_drop(p, total);
		return -EINVAL;
	}
	if (total > p->size - (p->prod - producer_cons(p))) {
		producer_drop(p, total);
		return -ENOSPC;
	}
	h = (struct sp_rec_hdr){ .len = (uint32_t)total, .type = type,
				 .flags = flags, .seq = p->seq };
	producer_put(p, &h, payload, len);
	p->prod += total;
	p->seq++;
	p->st.records++;
	/* pairs with smp_load_acquire(prod_pos) in consumer_avail */
	smp_store_release(&p->hdr->prod_pos, p->prod);
	WRITE_ONCE(p->hdr->records, p->st.records);
	return 0;
}

int sp_producer_notify(struct sp_producer *p)
{
	uint64_t one = 1;

	if (p->prod == p->notified)
		return 0;
	p->notified = p->prod;
	/* pairs with smp_mb() in sp_consumer_prepare_wait (Dekker) */
	smp_mb();
	if (!READ_ONCE(p->cons->waiting))
		return 0;
	if (write(p->fds.event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 1;
}

void sp_producer_add_bpf_lost(struct sp_producer *p, uint64_t n)
{
	p->st.bpf_lost += n;
	WRITE_ONCE(p->hdr->bpf_lost, p->st.bpf_lost);
}

void sp_producer_add_idle(struct sp_producer *p, uint64_t n)
{
	p->st.idle_samples += n;
	WRITE_ONCE(p->hdr->idle_samples, p->st.idle_samples);
}

void sp_producer_stats(const struct sp_producer *p, struct sp_ring_stats *st)
{
	*st = p->st;
}

uint64_t sp_producer_used(struct sp_producer *p)
{
	return p->prod - producer_cons(p);
}

/* ---------------------------------------------------------------- consumer */

/* The data fd: a regular file whose size alone gives the geometry. */
static int check_data_fd(int fd, uint64_t *size)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)SP_RING_HDR_SIZE)
		return -EINVAL;
	*size = (uint64_t)st.st_size - SP_RING_HDR_SIZE;
	if (!valid_data_size(*size))
		return -EINVAL;
	/* Fails with EINVAL on anything but a memfd: not sealed either. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & SP_RING_SEALS_REQUIRED) !=
			 SP_RING_SEALS_REQUIRED)
		return -EPERM;
	return 0;
}

static int check_side_fds(const struct sp_ring_fds *fds)
{
	struct stat st;
	int fl;

	if (fstat(fds->cons_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size != SP_CONS_PAGE_SIZE)
		return -EINVAL;
	/* sp_consumer_wake_ack must never block on the producer. */
	fl = fcntl(fds->event_fd, F_GETFL);
	if (fl < 0 || fcntl(fds->event_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The header must agree with what fstat told us; read it once, here. */
static int check_header(const struct sp_ring_hdr *hdr, uint64_t size)
{
	if (READ_ONCE(hdr->magic) != SP_RING_MAGIC ||
	    READ_ONCE(hdr->version) != SP_ABI_VERSION ||
	    READ_ONCE(hdr->hdr_size) != SP_RING_HDR_SIZE ||
	    READ_ONCE(hdr->data_size) != size)
		return -EINVAL;
	return 0;
}

static int consumer_map(struct sp_consumer *c)
{
	void *data;
	int err;

	c->hdr = map_page(c->fds.data_fd, SP_RING_HDR_SIZE, PROT_READ);
	if (!c->hdr)
		return -errno;
	err = map_double(c->fds.data_fd, c->size, PROT_READ, &data);
	if (err)
		return err;
	c->data = data;
	c->cons = map_page(c->fds.cons_fd, SP_CONS_PAGE_SIZE,
			   PROT_READ | PROT_WRITE);
	if (!c->cons)
		return -errno;
	return check_header(c->hdr, c->size);
}

int sp_consumer_open(const struct sp_ring_fds *fds, struct sp_consumer **out)
{
	struct sp_consumer *c;
	uint64_t size = 0;
	int err;

	err = check_data_fd(fds->data_fd, &size);
	if (!err)
		err = check_side_fds(fds);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fds = *fds;
	c->size = size;
	c->mask = size - 1;
	err = consumer_map(c);
	if (err)
		goto out;
	/* Resume where the page says; a fresh ring starts at seq 0. */
	c->cons_pos = READ_ONCE(c->cons->cons_pos);
	c->have_seq = c->cons_pos == 0;
	*out = c;
	return 0;
out:
	fds_init(&c->fds);	/* failure: the fds stay the caller's */
	sp_consumer_free(c);
	return err;
}

void sp_consumer_free(struct sp_consumer *c)
{
	if (!c)
		return;
	unmap(c->hdr, SP_RING_HDR_SIZE);
	unmap(c->data, 2 * c->size);
	unmap(c->cons, SP_CONS_PAGE_SIZE);
	fds_close(&c->fds);
	free(c);
}

/* Release: our copy of the record is complete before the producer may
 * reuse its space. */
static void consumer_advance(struct sp_consumer *c, uint64_t pos)
{
	c->cons_pos = pos;
	/* pairs with smp_load_acquire(cons_pos) in producer_cons */
	smp_store_release(&c->cons->cons_pos, pos);
}

/* Bytes published and not yet consumed; may be garbage if the producer is. */
static uint64_t consumer_avail(struct sp_consumer *c, uint64_t *prod)
{
	/* pairs with smp_store_release(prod_pos) in sp_producer_write */
	*prod = smp_load_acquire(&c->hdr->prod_pos);
	return *prod - c->cons_pos;
}

/* A malformed record or position: drop everything up to prod, resync. */
static int consumer_reject(struct sp_consumer *c, uint64_t prod)
{
	c->st.bad_records++;
	c->have_seq = false;
	consumer_advance(c, prod);
	return -EBADMSG;
}

static bool rec_len_ok(uint32_t len, uint64_t avail)
{
	return len % SP_RING_ALIGN == 0 && len >= sizeof(struct sp_rec_hdr) &&
	       len <= SP_REC_MAX && len <= avail;
}

/* Forward gaps are counted and tolerated; a seq that goes back is not. */
static int consumer_check_seq(struct sp_consumer *c, uint64_t seq)
{
	if (c->have_seq && seq != c->next_seq) {
		if (seq < c->next_seq)
			return -EBADMSG;
		c->st.seq_gaps++;
		c->st.seq_missing += seq - c->next_seq;
	}
	c->have_seq = true;
	c->next_seq = seq + 1;
	return 0;
}

int sp_consumer_next(struct sp_consumer *c, void *buf, size_t cap)
{
	uint64_t prod, avail = consumer_avail(c, &prod);
	const uint8_t *src;
	struct sp_rec_hdr h;

	if (avail == 0)
		return 0;
	if (avail > c->size || avail < sizeof(h))
		return consumer_reject(c, prod);
	/* The double mapping makes [src, src + avail) contiguous and mapped:
	 * offset < size and avail <= size. */
	src = c->data + (c->cons_pos & c->mask);
	memcpy(&h, src, sizeof(h));
	if (!rec_len_ok(h.len, avail))
		return consumer_reject(c, prod);
	if (h.len > cap)
		return -ENOBUFS;
	if (consumer_check_seq(c, h.seq) < 0)
		return consumer_reject(c, prod);
	memcpy(buf, src, h.len);
	/* The header the caller sees is the one we validated. */
	memcpy(buf, &h, sizeof(h));
	consumer_advance(c, c->cons_pos + h.len);
	c->st.records++;
	c->st.bytes += h.len;
	return (int)h.len;
}

/*
 * Dekker-style handshake with sp_producer_notify: each side publishes its
 * own word (waiting / prod_pos), full fence, then reads the other's. With a
 * StoreLoad fence on both sides at least one of them sees the other, so a
 * record is never left unnoticed while we sleep (libbpf's lost-wakeup bug).
 */
int sp_consumer_prepare_wait(struct sp_consumer *c)
{
	uint64_t prod;

	WRITE_ONCE(c->cons->waiting, 1);
	/* pairs with smp_mb() in sp_producer_notify (Dekker) */
	smp_mb();
	if (consumer_avail(c, &prod) == 0)
		return 0;
	WRITE_ONCE(c->cons->waiting, 0);
	return 1;
}

void sp_consumer_wake_ack(struct sp_consumer *c)
{
	uint64_t v;
	ssize_t n;

	/* Nonblocking; EAGAIN (nothing pending) or a spurious wake-up is
	 * harmless, the caller re-checks the ring anyway. */
	n = read(c->fds.event_fd, &v, sizeof(v));
	(void)n;
	WRITE_ONCE(c->cons->waiting, 0);
}

int sp_consumer_event_fd(const struct sp_consumer *c)
{
	return c->fds.event_fd;
}

void sp_consumer_stats(const struct sp_consumer *c,
		       struct sp_consumer_stats *st)
{
	*st = c->st;
}

void sp_consumer_producer_stats(const struct sp_consumer *c,
				struct sp_ring_stats *st)
{
	st->records = READ_ONCE(c->hdr->records);
	st->dropped_records = READ_ONCE(c->hdr->dropped_records);
	st->dropped_bytes = READ_ONCE(c->hdr->dropped_bytes);
	st->bpf_lost = READ_ONCE(c->hdr->bpf_lost);
	st->idle_samples = READ_ONCE(c->hdr->idle_samples);
}

uint64_t sp_consumer_data_size(const struct sp_consumer *c)
{
	return c->size;
}
