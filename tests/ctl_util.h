/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctl_util.h - raw control-channel datagrams for the tests that must send
 * what sp_ctl_send would refuse (wrong lengths, too many fds).
 */
#ifndef TESTS_CTL_UTIL_H
#define TESTS_CTL_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define RAW_SEND_MAX_FDS	16

/* Send raw bytes with nfds fds, bypassing sp_ctl_send's own limits. */
static inline void raw_send(int sock, const void *buf, size_t len,
			    const int *fds, unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * RAW_SEND_MAX_FDS)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	cr_assert_leq(nfds, RAW_SEND_MAX_FDS);
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
	cr_assert_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len,
		     "sendmsg: %s", strerror(errno));
}

#endif /* TESTS_CTL_UTIL_H */
