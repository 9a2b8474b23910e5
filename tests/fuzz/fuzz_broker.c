/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer harness for the probe's request path (security.md P9): one
 * input = one datagram from a hostile aggregator, through sp_ctl_recv and
 * broker_dispatch exactly as the probe's loop runs them. Any crash, or an
 * fd left open after the round, is a finding (abort).
 *
 * Input layout: byte 0 is a control byte, the rest is the datagram.
 *   bits 0-2: number of /dev/null fds attached with SCM_RIGHTS (0..7)
 *   bit 6:    patch pid/start_time of a request to this process, so the
 *             handlers get past the process check into the file opens
 *
 *   clang -g -fsanitize=fuzzer,address -D_GNU_SOURCE -Ishared \
 *     tests/fuzz/fuzz_broker.c shared/sp_ctl.c probe/broker.c \
 *     shared/sp_log.c -o /tmp/fuzz_broker
 *   /tmp/fuzz_broker -max_total_time=60
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../probe/broker.h"
#include "sp_ctl.h"
#include "sp_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct broker *fz_broker;
static int fz_agg = -1, fz_probe = -1;
static uint32_t fz_pid;
static uint64_t fz_start_time;

/* Lowest free fd number: it grows if a round leaks an fd. */
static int lowest_free_fd(void)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

/*
 * The baseline is taken per input: between inputs libFuzzer opens and
 * closes fds of its own (corpus files, the sanitizer's symbolizer pipe).
 * An input that leaves one more fd open shows as a higher lowest-free fd.
 */
static void check_no_fd_leak(int before)
{
	char path[64], target[256];
	int cur = lowest_free_fd();
	ssize_t n;

	if (cur <= before)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", cur - 1);
	n = readlink(path, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "fd leak: fd %d -> %s\n", cur - 1, target);
	abort();
}

static uint64_t self_start_time_ns(void)
{
	char buf[2048], *p;
	unsigned long long ticks;
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n;
	int i;

	if (!f)
		abort();
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (i = 2; p && i < 22; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", &ticks) != 1)
		abort();
	return ticks * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

static void fz_init(void)
{
	struct broker_config cfg = {
		.rate_per_sec = UINT32_MAX, .burst = UINT32_MAX,
	};
	int sv[2];

	log_init("probe", SP_LOG_WARN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0, sv) < 0)
		abort();
	fz_agg = sv[0];
	fz_probe = sv[1];
	fz_broker = broker_new(&cfg);
	if (!fz_broker)
		abort();
	fz_pid = (uint32_t)getpid();
	fz_start_time = self_start_time_ns();
}

/* pid/start_time offsets in each request struct. */
static void aim_at_self(unsigned char *dgram, size_t len)
{
	struct sp_msg_hdr hdr;
	size_t pid_off;

	if (len < sizeof(hdr) + 24)
		return;
	memcpy(&hdr, dgram, sizeof(hdr));
	if (hdr.type == SP_MSG_OPEN_PROC || hdr.type == SP_MSG_OPEN_DEBUG)
		pid_off = 16;
	else if ((hdr.type == SP_MSG_OPEN_MAPPING && len >= sizeof(hdr) + 56) ||
		 (hdr.type == SP_MSG_OPEN_DEBUGLINK &&
		  len >= sizeof(hdr) + sizeof(struct sp_msg_open_debuglink)))
		pid_off = 48;
	else
		return;
	memcpy(dgram + sizeof(hdr) + 8, &fz_start_time, sizeof(fz_start_time));
	memcpy(dgram + sizeof(hdr) + pid_off, &fz_pid, sizeof(fz_pid));
}

static void fz_send(unsigned char *dgram, size_t len, unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cbuf;
	struct iovec iov = { .iov_base = dgram, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fds[8];
	unsigned int i;

	for (i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	(void)sendmsg(fz_agg, &mh, MSG_NOSIGNAL);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char dgram[65536];
	struct sp_ctl_msg m;
	size_t len;
	int before;

	if (!fz_broker)
		fz_init();
	before = lowest_free_fd();
	if (size < 1)
		return 0;
	len = size - 1 < sizeof(dgram) ? size - 1 : sizeof(dgram);
	memcpy(dgram, data + 1, len);
	if (data[0] & 0x40)
		aim_at_self(dgram, len);
	fz_send(dgram, len, data[0] & 7);

	/* The probe side: on success dispatch, then close whatever arrived. */
	if (sp_ctl_recv(fz_probe, &m) == 0) {
		(void)broker_dispatch(fz_broker, fz_probe, &m);
		sp_ctl_msg_close_fds(&m);
	}
	/* Drain whatever the probe sent back, as the aggregator would. */
	while (sp_ctl_recv(fz_agg, &m) == 0)
		sp_ctl_msg_close_fds(&m);
	/* A datagram sp_ctl_recv left queued (it never should) ends here. */
	while (recv(fz_probe, dgram, sizeof(dgram), MSG_DONTWAIT) >= 0)
		;
	check_no_fd_leak(before);
	return 0;
}
