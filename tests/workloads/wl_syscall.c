/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wl_syscall - half kernel, half user. Known CPU split (thread CPU time,
 * user + system):
 *   sys_read_zero  50 %, read(2) of /dev/zero into a 64 KiB buffer in a tight
 *                  loop: mostly kernel time (entry_SYSCALL_64 ->
 *                  do_syscall_64 -> ksys_read -> vfs_read -> read_zero)
 *   user_spin      50 %, pure user loop
 * The syscall instruction is issued from sys_read_zero itself (see
 * wl_syscall3), so kernel samples unwind back through sys_read_zero.
 * Usage: wl_syscall SECONDS
 */
#include <fcntl.h>

#include "wl_common.h"

#define SHARE_SYS	500
#define SHARE_USER	500
#define READ_LEN	65536
/* ~3 us per read: the clock read costs about 1 % */
#define READS_PER_CLOCK	16

static char buf[READ_LEN];

WL_NOINLINE uint64_t sys_read_zero(int fd, uint64_t budget_ns)
{
	uint64_t start = wl_cpu_ns(), now;
	int i;

	do {
		for (i = 0; i < READS_PER_CLOCK; i++)
			if (wl_syscall3(SYS_read, fd, (long)buf,
					sizeof(buf)) != (long)sizeof(buf))
				abort();
		now = wl_cpu_ns();
	} while (now - start < budget_ns);
	return now - start;
}

WL_NOINLINE uint64_t user_spin(uint64_t budget_ns)
{
	return wl_burn(budget_ns);
}

int main(int argc, char **argv)
{
	uint64_t deadline = wl_deadline(argc, argv);
	uint64_t sys = 0, user = 0, rounds = 0;
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		perror("wl_syscall: /dev/zero");
		return 1;
	}
	while (wl_running(deadline)) {
		rounds++;
		sys += sys_read_zero(fd, wl_owed(SHARE_SYS, rounds, sys));
		user += user_spin(wl_owed(SHARE_USER, rounds, user));
	}
	return 0;
}
