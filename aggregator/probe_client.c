/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe_client.h"
#include "sp_abi.h"

struct probe_client {
	int sock;
	int timeout_ms;
	uint64_t next_id;
	struct probe_client_stats st;
};

struct probe_client *probe_client_new(int sock, int timeout_ms)
{
	struct probe_client *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	/* Nonblocking so every wait is a bounded poll(), never a bare recv. */
	if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) < 0) {
		free(pc);
		return NULL;
	}
	pc->sock = sock;
	pc->timeout_ms = timeout_ms;
	pc->next_id = 1;
	return pc;
}

void probe_client_free(struct probe_client *pc)
{
	if (!pc)
		return;
	if (pc->sock >= 0)
		close(pc->sock);
	free(pc);
}

int probe_client_fd(const struct probe_client *pc)
{
	return pc->sock;
}

void probe_client_stats(const struct probe_client *pc,
			struct probe_client_stats *st)
{
	*st = pc->st;
}

static int pc_recv(struct probe_client *pc, struct sp_ctl_msg *m, int timeout_ms)
{
	struct pollfd p = { .fd = pc->sock, .events = POLLIN };
	int r;

	for (;;) {
		r = sp_ctl_recv(pc->sock, m);
		if (r != -EAGAIN)
			return r;
		r = poll(&p, 1, timeout_ms);
		if (r == 0) {
			pc->st.timeouts++;
			return -ETIMEDOUT;
		}
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int probe_client_hello(struct probe_client *pc, struct probe_hello *h)
{
	struct sp_ctl_msg m;
	int r;

	/* The probe sends HELLO right after accepting; allow for its set-up. */
	r = pc_recv(pc, &m, 30000);
	if (r < 0)
		return r;
	if (m.type != SP_MSG_HELLO) {
		sp_ctl_msg_close_fds(&m);
		return -EPROTO;
	}
	if (m.u.hello.abi_version != SP_ABI_VERSION ||
	    m.u.hello.ctl_version != SP_CTL_VERSION) {
		sp_ctl_msg_close_fds(&m);
		return -EPROTONOSUPPORT;
	}
	h->msg = m.u.hello;
	h->ring.data_fd = m.fds[0];
	h->ring.cons_fd = m.fds[1];
	h->ring.event_fd = m.fds[2];
	h->kallsyms_fd = -1;
	if (m.nfds == 4 && (m.u.hello.flags & SP_HELLO_F_KALLSYMS))
		h->kallsyms_fd = m.fds[3];
	else if (m.nfds == 4)
		close(m.fds[3]);
	return 0;
}

/*
 * Send one request and wait for its reply. Replies to earlier requests that
 * timed out may still arrive; they are recognised by req_id and discarded
 * (their fds closed).
 */
static int pc_call(struct probe_client *pc, uint32_t type, void *req,
		   uint32_t len, int *fds, unsigned int nfds)
{
	uint64_t id = pc->next_id++;
	struct sp_ctl_msg m;
	unsigned int i;
	int r;

	memcpy(req, &id, sizeof(id));	/* every request starts with req_id */
	pc->st.requests++;
	r = sp_ctl_send(pc->sock, type, req, len, NULL, 0);
	if (r < 0)
		return r;
	for (;;) {
		r = pc_recv(pc, &m, pc->timeout_ms);
		if (r < 0)
			return r;
		if (m.type == SP_MSG_ERROR && m.u.error.req_id == id) {
			pc->st.errors++;
			return m.u.error.error > 0 ? -m.u.error.error : -EIO;
		}
		if (m.type == SP_MSG_FILES && m.u.files.req_id == id)
			break;
		sp_ctl_msg_close_fds(&m);	/* stale or unexpected reply */
		if (m.type != SP_MSG_ERROR && m.type != SP_MSG_FILES)
			return -EPROTO;
	}
	if (m.nfds != nfds || m.u.files.request != type) {
		sp_ctl_msg_close_fds(&m);
		return -EPROTO;
	}
	for (i = 0; i < nfds; i++)
		fds[i] = m.fds[i];
	pc->st.files += nfds;
	return 0;
}

int probe_open_proc(struct probe_client *pc, uint32_t pid, uint64_t start_time,
		    int *maps_fd, int *cgroup_fd)
{
	struct sp_msg_open_proc req = { .pid = pid, .start_time = start_time };
	int fds[2];
	int r;

	r = pc_call(pc, SP_MSG_OPEN_PROC, &req, sizeof(req), fds, 2);
	if (r < 0)
		return r;
	*maps_fd = fds[0];
	*cgroup_fd = fds[1];
	return 0;
}

int probe_open_mapping(struct probe_client *pc, uint32_t pid,
		       uint64_t start_time, uint64_t start, uint64_t end,
		       uint64_t dev, uint64_t ino, int *fd)
{
	struct sp_msg_open_mapping req = {
		.pid = pid, .start_time = start_time, .start = start,
		.end = end, .dev = dev, .ino = ino,
	};

	return pc_call(pc, SP_MSG_OPEN_MAPPING, &req, sizeof(req), fd, 1);
}

int probe_open_debug(struct probe_client *pc, uint32_t pid, uint64_t start_time,
		     const uint8_t *build_id, uint32_t len, int *fd)
{
	struct sp_msg_open_debug req = { .pid = pid, .start_time = start_time };

	/* the broker treats a build id shorter than 2 bytes as a protocol error */
	if (len < 2 || len > SP_BUILD_ID_MAX)
		return -EINVAL;
	req.build_id_len = len;
	memcpy(req.build_id, build_id, len);
	return pc_call(pc, SP_MSG_OPEN_DEBUG, &req, sizeof(req), fd, 1);
}
