/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ring_util.h - hand a producer's ring fds to a consumer in another
 * process the way the probe does: a HELLO on the control channel
 * (sp_ctl_send / sp_ctl_recv, SCM_RIGHTS). For the ring test and bench.
 */
#ifndef TESTS_RING_UTIL_H
#define TESTS_RING_UTIL_H

#include "sp_abi.h"
#include "sp_ctl.h"
#include "sp_ring.h"

static inline int ring_send_fds(int sock, const struct sp_ring_fds *fds)
{
	const int v[3] = { fds->data_fd, fds->cons_fd, fds->event_fd };
	const struct sp_msg_hello h = { .abi_version = SP_ABI_VERSION,
					.ctl_version = SP_CTL_VERSION };

	return sp_ctl_send(sock, SP_MSG_HELLO, &h, sizeof(h), v, 3);
}

static inline int ring_recv_fds(int sock, struct sp_ring_fds *fds)
{
	struct sp_ctl_msg m;
	int r = sp_ctl_recv(sock, &m);

	if (r < 0)
		return r;
	if (m.type != SP_MSG_HELLO || m.nfds != 3) {
		sp_ctl_msg_close_fds(&m);
		return -EPROTO;
	}
	*fds = (struct sp_ring_fds){ m.fds[0], m.fds[1], m.fds[2] };
	return 0;
}

#endif /* TESTS_RING_UTIL_H */
