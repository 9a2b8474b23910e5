/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sp_ctl.c - one control message per SOCK_SEQPACKET datagram.
 *
 * Both sides use sp_ctl_recv on data written by the other, less trusted or
 * more trusted, process, so it validates the whole shape (header, exact
 * payload length for the type, fd count, control data) before handing
 * anything out, and closes every fd it received on every error path: a
 * malformed message must never leak fds into the receiver.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sp_ctl.h"

/* Not in Debian 12's glibc headers; the only other fd-carrying cmsg. */
#ifndef SCM_PIDFD
#define SCM_PIDFD	0x04
#endif

struct sp_ctl_shape {
	uint32_t len;
	unsigned int min_fds;
	unsigned int max_fds;
};

static const struct sp_ctl_shape sp_ctl_shapes[SP_MSG_TYPE_MAX + 1] = {
	[SP_MSG_HELLO]        = { sizeof(struct sp_msg_hello), 3, 4 },
	[SP_MSG_OPEN_PROC]    = { sizeof(struct sp_msg_open_proc), 0, 0 },
	[SP_MSG_OPEN_MAPPING] = { sizeof(struct sp_msg_open_mapping), 0, 0 },
	[SP_MSG_OPEN_DEBUG]   = { sizeof(struct sp_msg_open_debug), 0, 0 },
	[SP_MSG_FILES]        = { sizeof(struct sp_msg_files), 1,
				  SP_CTL_MAX_FDS },
	[SP_MSG_ERROR]        = { sizeof(struct sp_msg_error), 0, 0 },
	[SP_MSG_OPEN_DEBUGLINK] = { sizeof(struct sp_msg_open_debuglink), 0, 0 },
	[SP_MSG_PROBE_CONFIG] = { sizeof(struct sp_msg_probe_config), 0, 0 },
};

_Static_assert(sizeof(struct sp_msg_hello) <= SP_CTL_MAX_PAYLOAD &&
	       sizeof(struct sp_msg_open_mapping) <= SP_CTL_MAX_PAYLOAD &&
	       sizeof(struct sp_msg_open_debug) <= SP_CTL_MAX_PAYLOAD &&
	       sizeof(struct sp_msg_open_debuglink) <= SP_CTL_MAX_PAYLOAD,
	       "every payload fits in sp_ctl_msg.u");

int sp_ctl_shape(uint32_t type, uint32_t *len, unsigned int *min_fds,
		 unsigned int *max_fds)
{
	/* Index 0 is a hole in the table: len 0 marks "no such type". */
	if (type > SP_MSG_TYPE_MAX || sp_ctl_shapes[type].len == 0)
		return -EINVAL;
	*len = sp_ctl_shapes[type].len;
	*min_fds = sp_ctl_shapes[type].min_fds;
	*max_fds = sp_ctl_shapes[type].max_fds;
	return 0;
}

int sp_ctl_send(int sock, uint32_t type, const void *payload, uint32_t len,
		const int *fds, unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SP_CTL_MAX_FDS)];
	} cbuf;
	struct sp_msg_hdr hdr = { .type = type, .len = len };
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)(uintptr_t)payload, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *cm;
	ssize_t n;

	if (len > SP_CTL_MAX_PAYLOAD || nfds > SP_CTL_MAX_FDS ||
	    (len && !payload) || (nfds && !fds))
		return -EINVAL;
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
	/* A datagram is sent whole or not at all, so EINTR is safe to retry. */
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(hdr) + len)
		return -EIO;
	return 0;
}

void sp_ctl_msg_close_fds(struct sp_ctl_msg *m)
{
	unsigned int i;

	for (i = 0; i < m->nfds && i < SP_CTL_MAX_FDS; i++) {
		if (m->fds[i] >= 0)
			(void)close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
}

/*
 * Room for one fd more than any message may carry plus an SCM_CREDENTIALS
 * block, so the common malformations (one fd too many, SO_PASSCRED turned
 * on) show up as a countable cmsg rather than only as MSG_CTRUNC. Anything
 * larger is truncated by the kernel, which closes the fds that did not fit.
 */
#define SP_CTL_RX_CONTROL \
	(CMSG_SPACE(sizeof(int) * (SP_CTL_MAX_FDS + 1)) + \
	 CMSG_SPACE(sizeof(struct ucred)))
#define SP_CTL_RX_FDS	(SP_CTL_RX_CONTROL / sizeof(int))

struct sp_ctl_rx_fds {
	int fd[SP_CTL_RX_FDS];
	unsigned int n;
};

static void sp_ctl_rx_close(struct sp_ctl_rx_fds *rx)
{
	while (rx->n)
		(void)close(rx->fd[--rx->n]);
}

static void sp_ctl_rx_add(struct sp_ctl_rx_fds *rx, const unsigned char *data,
			  size_t bytes)
{
	size_t i;
	int fd;

	for (i = 0; i + sizeof(int) <= bytes; i += sizeof(int)) {
		memcpy(&fd, data + i, sizeof(int));
		/* Cannot happen with our control buffer; never leak anyway. */
		if (rx->n == SP_CTL_RX_FDS)
			(void)close(fd);
		else
			rx->fd[rx->n++] = fd;
	}
}

/*
 * Take ownership of every fd the kernel installed, whatever cmsg it came in,
 * before judging the control data: a bad cmsg must still not leak fds.
 */
static int sp_ctl_rx_collect(struct msghdr *mh, struct sp_ctl_rx_fds *rx)
{
	struct cmsghdr *cm;
	size_t bytes;
	int ret = 0;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		/* The kernel wrote these; checked anyway so the walk is total. */
		if (cm->cmsg_len < CMSG_LEN(0) ||
		    (char *)cm + cm->cmsg_len >
		    (char *)mh->msg_control + mh->msg_controllen) {
			ret = -EBADMSG;
			break;
		}
		bytes = cm->cmsg_len - CMSG_LEN(0);
		if (cm->cmsg_level == SOL_SOCKET &&
		    (cm->cmsg_type == SCM_RIGHTS || cm->cmsg_type == SCM_PIDFD))
			sp_ctl_rx_add(rx, CMSG_DATA(cm), bytes);
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			ret = -EBADMSG;
	}
	return ret;
}

/* Everything about the datagram except the control data. */
static int sp_ctl_check(const struct msghdr *mh, ssize_t n,
			const struct sp_msg_hdr *hdr, unsigned int nfds)
{
	uint32_t len;
	unsigned int min_fds, max_fds;

	if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EBADMSG;
	if ((size_t)n < sizeof(*hdr))
		return -EBADMSG;
	if (hdr->len != (size_t)n - sizeof(*hdr))
		return -EBADMSG;
	if (sp_ctl_shape(hdr->type, &len, &min_fds, &max_fds) < 0)
		return -EBADMSG;
	if (hdr->len != len || nfds < min_fds || nfds > max_fds)
		return -EBADMSG;
	return 0;
}

/* The datagram is read straight into hdr + payload: no padding between. */
_Static_assert(sizeof(struct sp_msg_hdr) % 4 == 0 &&
	       SP_CTL_MAX_PAYLOAD % 4 == 0, "no padding in the receive buffer");

int sp_ctl_recv(int sock, struct sp_ctl_msg *m)
{
	union {
		struct cmsghdr align;
		char buf[SP_CTL_RX_CONTROL];
	} cbuf;
	struct {
		struct sp_msg_hdr hdr;
		unsigned char payload[SP_CTL_MAX_PAYLOAD];
	} dgram;
	struct iovec iov = { .iov_base = &dgram, .iov_len = sizeof(dgram) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct sp_ctl_rx_fds rx = { .n = 0 };
	unsigned int i;
	ssize_t n;
	int ret;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < SP_CTL_MAX_FDS; i++)
		m->fds[i] = -1;

	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	ret = sp_ctl_rx_collect(&mh, &rx);
	if (ret < 0)
		goto out;
	/* SEQPACKET reads 0 at EOF, or for an empty datagram: equally bad. */
	if (n == 0) {
		ret = -ECONNRESET;
		goto out;
	}
	ret = sp_ctl_check(&mh, n, &dgram.hdr, rx.n);
	if (ret < 0)
		goto out;

	m->type = dgram.hdr.type;
	m->len = dgram.hdr.len;
	memcpy(m->u.raw, dgram.payload, m->len);
	memcpy(m->fds, rx.fd, rx.n * sizeof(int));
	m->nfds = rx.n;
	rx.n = 0;
out:
	sp_ctl_rx_close(&rx);
	return ret;
}

bool sp_ctl_debuglink_name_ok(const char name[SP_DEBUGLINK_MAX])
{
	size_t i, len = strnlen(name, SP_DEBUGLINK_MAX);

	for (i = 0; i < len; i++)
		if (name[i] <= ' ' || name[i] >= 0x7f || name[i] == '/')
			return false;
	return len > 6 && len < SP_DEBUGLINK_MAX &&
	       strcmp(name + len - 6, ".debug") == 0;
}
