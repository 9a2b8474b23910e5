/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sp_ctl.h"
#include "ctl_util.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void seqpacket_pair(int sv[2], int flags)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags,
				0, sv), 0);
}

static void open_devnulls(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fds[i], 0);
	}
}

static void close_all(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

struct bad_msg {
	char name[48];
	uint32_t type;
	uint32_t hdr_len;	/* what the header claims */
	uint32_t body_len;	/* bytes actually sent after the header */
	int total;		/* >= 0: send only this many bytes in all */
	unsigned int nfds;
	bool passcred;		/* receiver gets an SCM_CREDENTIALS cmsg */
};

#define BAD(n, t, hl, bl, f) \
	{ .name = n, .type = t, .hdr_len = hl, .body_len = bl, .total = -1, \
	  .nfds = f }

ParameterizedTestParameters(ctl, rejects_malformed)
{
	static struct bad_msg cases[] = {
		{ .name = "short header 4", .total = 4 },
		{ .name = "short header 7", .type = SP_MSG_ERROR, .total = 7 },
		BAD("len claims more", SP_MSG_OPEN_PROC, 24, 16, 0),
		BAD("len claims less", SP_MSG_OPEN_PROC, 16, 24, 0),
		BAD("len claims huge", SP_MSG_ERROR, 0xffffffff, 16, 0),
		BAD("type 0", 0, 16, 16, 0),
		BAD("type 7", 7, 16, 16, 0),
		BAD("type max", 0xffffffff, 16, 16, 0),
		BAD("hello 47", SP_MSG_HELLO, 47, 47, 3),
		BAD("hello 56", SP_MSG_HELLO, 56, 56, 3),
		BAD("open_proc 0", SP_MSG_OPEN_PROC, 0, 0, 0),
		BAD("open_proc 32", SP_MSG_OPEN_PROC, 32, 32, 0),
		BAD("open_mapping 48", SP_MSG_OPEN_MAPPING, 48, 48, 0),
		BAD("open_mapping 64", SP_MSG_OPEN_MAPPING, 64, 64, 0),
		BAD("open_debug 56", SP_MSG_OPEN_DEBUG, 56, 56, 0),
		BAD("files 8", SP_MSG_FILES, 8, 8, 1),
		BAD("files 16", SP_MSG_FILES, 16, 16, 1),
		BAD("files 32", SP_MSG_FILES, 32, 32, 1),
		BAD("error 8", SP_MSG_ERROR, 8, 8, 0),
		BAD("error 24", SP_MSG_ERROR, 24, 24, 0),
		BAD("hello 5 fds", SP_MSG_HELLO, 48, 48, 5),
		BAD("files 6 fds", SP_MSG_FILES, 24, 24, 6),
		BAD("files 12 fds (ctrunc)", SP_MSG_FILES, 24, 24, 12),
		BAD("hello 2 fds", SP_MSG_HELLO, 48, 48, 2),
		BAD("hello 0 fds", SP_MSG_HELLO, 48, 48, 0),
		BAD("files 0 fds", SP_MSG_FILES, 24, 24, 0),
		BAD("open_proc 1 fd", SP_MSG_OPEN_PROC, 24, 24, 1),
		BAD("open_mapping 1 fd", SP_MSG_OPEN_MAPPING, 56, 56, 1),
		BAD("open_debug 2 fds", SP_MSG_OPEN_DEBUG, 64, 64, 2),
		BAD("error 1 fd", SP_MSG_ERROR, 16, 16, 1),
		{ .name = "scm_credentials", .type = SP_MSG_ERROR,
		  .hdr_len = 16, .body_len = 16, .total = -1, .passcred = true },
		{ .name = "scm_credentials + fd", .type = SP_MSG_FILES,
		  .hdr_len = 24, .body_len = 24, .total = -1, .nfds = 1,
		  .passcred = true },
		BAD("oversize 65", SP_MSG_ERROR, 65, 65, 0),
		BAD("oversize 200", SP_MSG_ERROR, 200, 200, 2),
	};

	return cr_make_param_array(struct bad_msg, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_msg *c, ctl, rejects_malformed)
{
	unsigned char buf[8 + 256] = { 0 };
	struct sp_msg_hdr hdr = { .type = c->type, .len = c->hdr_len };
	struct sp_ctl_msg m;
	int sv[2], fds[16], before, one = 1;
	size_t len;

	seqpacket_pair(sv, 0);
	if (c->passcred)
		cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one,
					sizeof(one)), 0);
	before = count_fds();
	memcpy(buf, &hdr, sizeof(hdr));
	len = c->total >= 0 ? (size_t)c->total : sizeof(hdr) + c->body_len;
	cr_assert_leq(len, sizeof(buf));
	open_devnulls(fds, c->nfds);
	raw_send(sv[0], buf, len, fds, c->nfds);
	close_all(fds, c->nfds);

	cr_expect_eq(sp_ctl_recv(sv[1], &m), -EBADMSG, "%s", c->name);
	cr_expect_eq(m.nfds, 0, "%s", c->name);
	cr_expect_eq(count_fds(), before, "%s: fd leak", c->name);
	close(sv[0]);
	close(sv[1]);
}

static void send_recv_ok(uint32_t type, uint32_t len, unsigned int nfds)
{
	unsigned char payload[SP_CTL_MAX_PAYLOAD];
	struct sp_ctl_msg m;
	int sv[2], fds[SP_CTL_MAX_FDS];
	unsigned int i;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 7 + type);
	seqpacket_pair(sv, 0);
	open_devnulls(fds, nfds);
	cr_assert_eq(sp_ctl_send(sv[0], type, payload, len, fds, nfds), 0);
	close_all(fds, nfds);
	cr_assert_eq(sp_ctl_recv(sv[1], &m), 0, "type %u", type);
	cr_expect_eq(m.type, type);
	cr_expect_eq(m.len, len);
	cr_expect_eq(m.nfds, nfds);
	cr_expect_arr_eq(m.u.raw, payload, len);
	sp_ctl_msg_close_fds(&m);
	cr_expect_eq(m.nfds, 0);
	close(sv[0]);
	close(sv[1]);
}

Test(ctl, accepts_every_valid_shape)
{
	uint32_t type, len;
	unsigned int min_fds, max_fds, n;

	for (type = 1; type <= SP_MSG_TYPE_MAX; type++) {
		cr_assert_eq(sp_ctl_shape(type, &len, &min_fds, &max_fds), 0);
		for (n = min_fds; n <= max_fds; n++)
			send_recv_ok(type, len, n);
	}
}

Test(ctl, shape_table)
{
	uint32_t len;
	unsigned int lo, hi;

	cr_assert_eq(sp_ctl_shape(SP_MSG_HELLO, &len, &lo, &hi), 0);
	cr_expect(len == 48 && lo == 3 && hi == 4);
	cr_assert_eq(sp_ctl_shape(SP_MSG_OPEN_PROC, &len, &lo, &hi), 0);
	cr_expect(len == sizeof(struct sp_msg_open_proc) && lo == 0 && hi == 0);
	cr_assert_eq(sp_ctl_shape(SP_MSG_OPEN_MAPPING, &len, &lo, &hi), 0);
	cr_expect(len == sizeof(struct sp_msg_open_mapping) && lo == 0 && hi == 0);
	cr_assert_eq(sp_ctl_shape(SP_MSG_OPEN_DEBUG, &len, &lo, &hi), 0);
	cr_expect(len == sizeof(struct sp_msg_open_debug) && lo == 0 && hi == 0);
	cr_assert_eq(sp_ctl_shape(SP_MSG_FILES, &len, &lo, &hi), 0);
	cr_expect(len == 24 && lo == 1 && hi == SP_CTL_MAX_FDS);
	cr_assert_eq(sp_ctl_shape(SP_MSG_ERROR, &len, &lo, &hi), 0);
	cr_expect(len == 16 && lo == 0 && hi == 0);
	cr_expect_eq(sp_ctl_shape(0, &len, &lo, &hi), -EINVAL);
	cr_expect_eq(sp_ctl_shape(SP_MSG_TYPE_MAX + 1, &len, &lo, &hi), -EINVAL);
}

Test(ctl, send_refuses_oversize)
{
	unsigned char big[SP_CTL_MAX_PAYLOAD + 1] = { 0 };
	int sv[2], fds[SP_CTL_MAX_FDS + 1] = { 0 };

	seqpacket_pair(sv, 0);
	cr_expect_eq(sp_ctl_send(sv[0], SP_MSG_ERROR, big, sizeof(big), NULL, 0),
		     -EINVAL);
	cr_expect_eq(sp_ctl_send(sv[0], SP_MSG_FILES, big, 16, fds,
				 SP_CTL_MAX_FDS + 1), -EINVAL);
	close(sv[0]);
	close(sv[1]);
}

Test(ctl, passes_fds_intact)
{
	struct sp_msg_files f = { .req_id = 42, .request = 2, .nfds = 2 };
	struct sp_ctl_msg m;
	int sv[2], p[2], mfd, fds[2];
	char buf[16] = { 0 };
	unsigned int i;

	seqpacket_pair(sv, 0);
	mfd = memfd_create("ctl-test", MFD_CLOEXEC);
	cr_assert_geq(mfd, 0);
	cr_assert_eq(write(mfd, "memfd!", 6), 6);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fds[0] = mfd;
	fds[1] = p[0];
	cr_assert_eq(sp_ctl_send(sv[0], SP_MSG_FILES, &f, sizeof(f), fds, 2), 0);
	close(mfd);
	close(p[0]);

	cr_assert_eq(sp_ctl_recv(sv[1], &m), 0);
	cr_assert_eq(m.nfds, 2);
	cr_expect_eq(m.u.files.req_id, 42);
	for (i = 0; i < m.nfds; i++)
		cr_expect(fcntl(m.fds[i], F_GETFD) & FD_CLOEXEC,
			  "received fd %u lacks FD_CLOEXEC", i);
	cr_assert_eq(pread(m.fds[0], buf, sizeof(buf), 0), 6);
	cr_expect_str_eq(buf, "memfd!");
	cr_assert_eq(write(p[1], "pipe", 4), 4);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(read(m.fds[1], buf, sizeof(buf)), 4);
	cr_expect_str_eq(buf, "pipe");
	sp_ctl_msg_close_fds(&m);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

Test(ctl, closes_fds_of_rejected_message)
{
	struct sp_msg_hdr hdr = { .type = SP_MSG_OPEN_PROC, .len = 24 };
	unsigned char buf[8 + 24] = { 0 };
	struct sp_ctl_msg m;
	int sv[2], fds[4], before, after;

	seqpacket_pair(sv, 0);
	memcpy(buf, &hdr, sizeof(hdr));
	before = count_fds();
	open_devnulls(fds, 4);
	raw_send(sv[0], buf, sizeof(buf), fds, 4);
	close_all(fds, 4);
	cr_assert_eq(sp_ctl_recv(sv[1], &m), -EBADMSG);
	after = count_fds();
	cr_expect_eq(after, before, "fds before %d after %d", before, after);
	close(sv[0]);
	close(sv[1]);
}

Test(ctl, eof_is_connreset)
{
	struct sp_ctl_msg m;
	int sv[2];

	seqpacket_pair(sv, 0);
	close(sv[0]);
	cr_expect_eq(sp_ctl_recv(sv[1], &m), -ECONNRESET);
	close(sv[1]);
}

Test(ctl, empty_datagram_with_fds_is_connreset_without_leak)
{
	struct sp_ctl_msg m;
	int sv[2], fd, before;

	seqpacket_pair(sv, 0);
	before = count_fds();
	open_devnulls(&fd, 1);
	raw_send(sv[0], "", 0, &fd, 1);
	close(fd);
	cr_expect_eq(sp_ctl_recv(sv[1], &m), -ECONNRESET);
	cr_expect_eq(count_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

Test(ctl, nonblocking_empty_is_eagain)
{
	struct sp_ctl_msg m;
	int sv[2];

	seqpacket_pair(sv, SOCK_NONBLOCK);
	cr_expect_eq(sp_ctl_recv(sv[1], &m), -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

Test(ctl, one_message_per_datagram)
{
	struct sp_msg_error e1 = { .req_id = 1, .error = 5 };
	struct sp_msg_error e2 = { .req_id = 2, .error = 6 };
	struct sp_ctl_msg m;
	int sv[2];

	seqpacket_pair(sv, SOCK_NONBLOCK);
	cr_assert_eq(sp_ctl_send(sv[0], SP_MSG_ERROR, &e1, sizeof(e1), NULL, 0), 0);
	cr_assert_eq(sp_ctl_send(sv[0], SP_MSG_ERROR, &e2, sizeof(e2), NULL, 0), 0);
	cr_assert_eq(sp_ctl_recv(sv[1], &m), 0);
	cr_expect_eq(m.u.error.req_id, 1);
	cr_assert_eq(sp_ctl_recv(sv[1], &m), 0);
	cr_expect_eq(m.u.error.req_id, 2);
	cr_expect_eq(sp_ctl_recv(sv[1], &m), -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

/* OPEN_DEBUGLINK's name rule, shared by the aggregator (which never sends a
 * name the probe would take as a protocol violation) and the broker. */
Test(ctl, debuglink_name_rule)
{
	static const char *const good[] = { "bin.debug", "libc.so.6.debug",
		"a3f0c1d2e4.debug", "x-1.2_3+4.debug" };
	static const char *const bad[] = { "", ".debug", "bin", "secret.txt",
		"../bin.debug", "a/b.debug", "bin .debug", "bin\n.debug",
		"bin\x7f.debug", "bin\xc3\xa9.debug", "bin.debug.txt" };
	char name[SP_DEBUGLINK_MAX];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(name, sizeof(name), "%s", good[i]);
		cr_expect(sp_ctl_debuglink_name_ok(name), "'%s' refused", good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(name, sizeof(name), "%s", bad[i]);
		cr_expect(!sp_ctl_debuglink_name_ok(name), "'%s' accepted", bad[i]);
	}
	memset(name, 'a', sizeof(name));	/* no NUL within the field */
	memcpy(name + sizeof(name) - 6, ".debug", 6);
	cr_expect(!sp_ctl_debuglink_name_ok(name), "an unterminated name");
	memset(name, 'a', sizeof(name));
	memcpy(name + sizeof(name) - 7, ".debug", 7);	/* 127 chars + NUL */
	cr_expect(sp_ctl_debuglink_name_ok(name), "the longest name refused");
}
