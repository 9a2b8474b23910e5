/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe_client.h"
#include "proctable.h"
#include "sp_abi.h"
#include "sp_log.h"

struct probe_client {
	int sock;
	int timeout_ms;
	uint64_t next_id;
	bool cmdline_refused;	/* the probe said EPERM to F_CMDLINE */
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
static int pc_call_msg(struct probe_client *pc, uint32_t type, void *req,
		       uint32_t len, struct sp_ctl_msg *m)
{
	uint64_t id = pc->next_id++;
	int r;

	memcpy(req, &id, sizeof(id));	/* every request starts with req_id */
	pc->st.requests++;
	r = sp_ctl_send(pc->sock, type, req, len, NULL, 0);
	if (r < 0)
		return r;
	for (;;) {
		r = pc_recv(pc, m, pc->timeout_ms);
		if (r < 0)
			return r;
		if (m->type == SP_MSG_ERROR && m->u.error.req_id == id) {
			pc->st.errors++;
			return m->u.error.error > 0 ? -m->u.error.error : -EIO;
		}
		if (m->type == SP_MSG_FILES && m->u.files.req_id == id)
			break;
		sp_ctl_msg_close_fds(m);	/* stale or unexpected reply */
		if (m->type != SP_MSG_ERROR && m->type != SP_MSG_FILES)
			return -EPROTO;
	}
	if (m->u.files.request != type || m->u.files.nfds != m->nfds) {
		sp_ctl_msg_close_fds(m);
		return -EPROTO;
	}
	pc->st.files += m->nfds;
	return 0;
}

static int pc_call(struct probe_client *pc, uint32_t type, void *req,
		   uint32_t len, int *fds, unsigned int nfds)
{
	struct sp_ctl_msg m;
	unsigned int i;
	int r;

	r = pc_call_msg(pc, type, req, len, &m);
	if (r < 0)
		return r;
	if (m.nfds != nfds) {
		sp_ctl_msg_close_fds(&m);
		return -EPROTO;
	}
	for (i = 0; i < nfds; i++)
		fds[i] = m.fds[i];
	return 0;
}

/*
 * The mask says which slots the packed fds fill: maps and cgroup always,
 * cmdline only if asked, one fd per bit. Anything else is a broken probe.
 */
static int proc_reply_check(const struct sp_ctl_msg *m, uint32_t flags)
{
	uint32_t mask = m->u.files.fd_mask, must, may;

	must = 1u << SP_PROC_FD_MAPS | 1u << SP_PROC_FD_CGROUP;
	may = must | 1u << SP_PROC_FD_EXE | 1u << SP_PROC_FD_CWD;
	if (flags & SP_OPEN_PROC_F_CMDLINE)
		may |= 1u << SP_PROC_FD_CMDLINE;
	if ((mask & must) != must || (mask & ~may) ||
	    (unsigned int)__builtin_popcount(mask) != m->nfds)
		return -EPROTO;
	return 0;
}

static void proc_reply_unpack(const struct sp_ctl_msg *m, struct proc_files *f)
{
	int *slot[SP_PROC_FD_COUNT] = {
		&f->maps_fd, &f->cgroup_fd, &f->exe_fd, &f->cwd_fd,
		&f->cmdline_fd,
	};
	unsigned int i, next = 0;

	for (i = 0; i < SP_PROC_FD_COUNT; i++)
		*slot[i] = m->u.files.fd_mask & (1u << i) ? m->fds[next++] : -1;
	f->uid = m->u.files.uid;
	f->has_uid = true;
}

static int open_proc_once(struct probe_client *pc, uint32_t pid,
			  uint64_t start_time, uint32_t flags,
			  struct proc_files *f)
{
	struct sp_msg_open_proc req = {
		.pid = pid, .start_time = start_time, .flags = flags,
	};
	struct sp_ctl_msg m;
	int r;

	r = pc_call_msg(pc, SP_MSG_OPEN_PROC, &req, sizeof(req), &m);
	if (r < 0)
		return r;
	r = proc_reply_check(&m, flags);
	if (r < 0) {
		sp_ctl_msg_close_fds(&m);
		return r;
	}
	proc_reply_unpack(&m, f);
	return 0;
}

/*
 * A probe started without --discover-commandline answers EPERM to the
 * cmdline flag; remember that and go on without the command line rather
 * than losing every process.
 */
int probe_open_proc_files(struct probe_client *pc, uint32_t pid,
			  uint64_t start_time, uint32_t flags,
			  struct proc_files *f)
{
	int r;

	*f = (struct proc_files){ -1, -1, -1, -1, -1, 0, false };
	if (pc->cmdline_refused)
		flags &= ~(uint32_t)SP_OPEN_PROC_F_CMDLINE;
	r = open_proc_once(pc, pid, start_time, flags, f);
	if (r == -EPERM && (flags & SP_OPEN_PROC_F_CMDLINE)) {
		log_warnx("the probe does not serve command lines (it needs "
			  "--discover-commandline too): __meta_process_"
			  "commandline stays empty");
		pc->cmdline_refused = true;
		r = open_proc_once(pc, pid, start_time,
				   flags & ~(uint32_t)SP_OPEN_PROC_F_CMDLINE, f);
	}
	return r;
}

bool probe_client_cmdline_refused(const struct probe_client *pc)
{
	return pc->cmdline_refused;
}

int probe_open_proc(struct probe_client *pc, uint32_t pid, uint64_t start_time,
		    int *maps_fd, int *cgroup_fd)
{
	struct proc_files f;
	int r;

	r = probe_open_proc_files(pc, pid, start_time, 0, &f);
	if (r < 0)
		return r;
	if (f.exe_fd >= 0)
		close(f.exe_fd);
	if (f.cwd_fd >= 0)
		close(f.cwd_fd);
	*maps_fd = f.maps_fd;
	*cgroup_fd = f.cgroup_fd;
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

int probe_open_debuglink(struct probe_client *pc, uint32_t pid,
			 uint64_t start_time, uint64_t start, uint64_t end,
			 uint64_t dev, uint64_t ino, const char *name, int *fd)
{
	struct sp_msg_open_debuglink req = {
		.pid = pid, .start_time = start_time, .start = start,
		.end = end, .dev = dev, .ino = ino,
	};

	/* the broker's rule: a name it refuses would cost the link */
	if (!name || strnlen(name, sizeof(req.name)) == sizeof(req.name))
		return -EINVAL;
	memcpy(req.name, name, strlen(name) + 1);
	if (!sp_ctl_debuglink_name_ok(req.name))
		return -EINVAL;
	return pc_call(pc, SP_MSG_OPEN_DEBUGLINK, &req, sizeof(req), fd, 1);
}
