// SPDX-License-Identifier: BSD-2-Clause
/*
 * ring_bench.c - shared-memory ring throughput, producer and consumer in
 * separate processes, against a plain memcpy of the same bytes measured in
 * the same run.
 *
 * The producer waits for room instead of dropping (the consumer signals a
 * second eventfd as it frees space), so every record is delivered and the
 * number is sustained throughput, not "how fast can we drop".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sp_ring.h"
#include "../ring_util.h"

#define RING_SIZE	(4u << 20)
#define SPACE_EVERY	1024

struct bench_case {
	uint32_t rec;		/* bytes per record on the ring, header included */
	uint64_t count;
};

struct bench_result {
	uint64_t records;
	uint64_t errors;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t n = write(fd, &one, sizeof(one));

	(void)n;
}

static void drain_fd(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;
	ssize_t n;

	(void)poll(&pfd, 1, timeout_ms);
	n = read(fd, &v, sizeof(v));
	(void)n;
}

/* Read until empty; every record is copied out, as the aggregator does. */
static uint64_t consume_some(struct sp_consumer *c, struct bench_result *res,
			     uint32_t rec, int space_fd)
{
	static uint8_t buf[SP_REC_MAX];
	uint64_t n = 0;
	int r;

	while ((r = sp_consumer_next(c, buf, sizeof(buf))) > 0) {
		res->records++;
		if ((uint32_t)r != rec)
			res->errors++;
		if (++n % SPACE_EVERY == 0)
			signal_fd(space_fd);
	}
	if (r < 0)
		res->errors++;
	return n;
}

static int consumer_main(int sock, int space_fd, const struct bench_case *bc)
{
	struct bench_result res = { 0 };
	struct sp_consumer_stats st;
	struct sp_consumer *c;
	struct sp_ring_fds fds;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ring_recv_fds(sock, &fds) < 0 || sp_consumer_open(&fds, &c) < 0)
		return 2;
	while (res.records < bc->count) {
		if (consume_some(c, &res, bc->rec, space_fd))
			signal_fd(space_fd);
		else if (!sp_consumer_prepare_wait(c)) {
			drain_fd(sp_consumer_event_fd(c), 1000);
			sp_consumer_wake_ack(c);
		}
	}
	sp_consumer_stats(c, &st);
	res.errors += st.seq_gaps + st.bad_records;
	sp_consumer_free(c);
	return write(sock, &res, sizeof(res)) == sizeof(res) ? 0 : 3;
}

static void produce(struct sp_producer *p, int space_fd,
		    const struct bench_case *bc)
{
	static uint8_t payload[SP_REC_MAX];
	uint32_t len = bc->rec - (uint32_t)sizeof(struct sp_rec_hdr);
	uint64_t i;

	memset(payload, 0x5a, sizeof(payload));
	for (i = 0; i < bc->count; i++) {
		while (sp_producer_used(p) + bc->rec > RING_SIZE) {
			(void)sp_producer_notify(p);
			drain_fd(space_fd, 100);
		}
		(void)sp_producer_write(p, SP_REC_SAMPLE, 0, payload, len);
		if (i % 64 == 0)
			(void)sp_producer_notify(p);
	}
	(void)sp_producer_notify(p);
}

/* Seconds for bc->count records through the ring, or < 0 on failure. */
static double bench_ring(const struct bench_case *bc)
{
	struct bench_result res = { 0 };
	struct sp_producer *p = NULL;
	int sv[2], space, status;
	double t0, t = -1;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	space = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(consumer_main(sv[1], space, bc));
	}
	close(sv[1]);
	if (pid < 0 || space < 0 || sp_producer_create(RING_SIZE, &p) < 0 ||
	    ring_send_fds(sv[0], sp_producer_fds(p)) < 0)
		goto out;
	t0 = now();
	produce(p, space, bc);
	if (read(sv[0], &res, sizeof(res)) == sizeof(res) &&
	    res.records == bc->count && res.errors == 0)
		t = now() - t0;
out:
	if (pid > 0)
		(void)waitpid(pid, &status, 0);
	sp_producer_free(p);
	close(sv[0]);
	if (space >= 0)
		close(space);
	return t;
}

/* The same total bytes, copied in record-sized pieces around a buffer the
 * size of the ring, in this one process. */
static double bench_memcpy(const struct bench_case *bc)
{
	uint8_t *src = malloc(RING_SIZE), *dst = malloc(RING_SIZE);
	uint64_t i, off = 0;
	double t0, t;

	if (!src || !dst)
		return -1;
	memset(src, 0x5a, RING_SIZE);
	memset(dst, 0, RING_SIZE);
	t0 = now();
	for (i = 0; i < bc->count; i++) {
		memcpy(dst + off, src + off, bc->rec);
		off = (off + bc->rec) & (RING_SIZE - 1);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	t = now() - t0;
	free(src);
	free(dst);
	return t;
}

static void print_row(const struct bench_case *bc, double tr, double tm)
{
	double bytes = (double)bc->count * bc->rec;

	printf("%8u %11lu %8.2f %11.1f %12.2f %14.2f %9.3f\n", bc->rec,
	       (unsigned long)bc->count, tr, bc->count / tr / 1e6,
	       bytes / tr / 1e9, bytes / tm / 1e9, tm / tr);
}

int main(void)
{
	static const struct bench_case cases[] = {
		{ 64, 100000000 },
		{ 1024, 25000000 },
	};
	size_t i;

	printf("splitprof ring: %u KiB data area, producer and consumer in "
	       "separate processes, zero loss\n", RING_SIZE / 1024);
	printf("%8s %11s %8s %11s %12s %14s %9s\n", "record_B", "records",
	       "ring_s", "ring_Mrec/s", "ring_GB/s", "memcpy_GB/s",
	       "ring/memcpy");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double tr = bench_ring(&cases[i]);
		double tm = bench_memcpy(&cases[i]);

		if (tr <= 0 || tm <= 0) {
			fprintf(stderr, "ring_bench: %u-byte run failed\n",
				cases[i].rec);
			return 1;
		}
		print_row(&cases[i], tr, tm);
	}
	return 0;
}
