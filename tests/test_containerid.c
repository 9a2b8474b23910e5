/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "containerid.h"

#define ID  "3f2a9c1b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a"
#define ID2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct cg {
	char name[40];
	char text[600];
	char want[CONTAINER_ID_LEN + 1];	/* "" = none */
};

ParameterizedTestParameters(containerid, fixtures)
{
	static struct cg cases[] = {
		{ "docker cgroupfs v1",
		  "12:pids:/docker/" ID "\n11:memory:/docker/" ID "\n"
		  "1:name=systemd:/docker/" ID "\n0::/system.slice/containerd.service\n",
		  ID },
		{ "docker cgroupfs v2", "0::/docker/" ID "\n", ID },
		{ "docker systemd", "0::/system.slice/docker-" ID ".scope\n", ID },
		{ "containerd cri systemd",
		  "0::/kubepods.slice/kubepods-burstable.slice/"
		  "kubepods-burstable-pod1c3e6f2a_4b5d_4e6f_8a9b_0c1d2e3f4a5b.slice/"
		  "cri-containerd-" ID ".scope\n", ID },
		{ "kubepods cgroupfs",
		  "0::/kubepods/burstable/pod1c3e6f2a-4b5d-4e6f-8a9b-0c1d2e3f4a5b/"
		  ID "\n", ID },
		{ "kubepods besteffort v1",
		  "4:cpu,cpuacct:/kubepods/besteffort/podabc/" ID "\n", ID },
		{ "crio", "0::/kubepods.slice/kubepods-pod1.slice/crio-" ID
		  ".scope\n", ID },
		{ "crio conmon", "0::/system.slice/crio-conmon-" ID ".scope\n", ID },
		{ "podman", "0::/user.slice/user-1000.slice/user@1000.service/"
		  "user.slice/libpod-" ID ".scope\n", ID },
		{ "podman conmon", "0::/machine.slice/libpod-conmon-" ID
		  ".scope\n", ID },
		{ "podman container child", "0::/machine.slice/libpod-" ID
		  ".scope/container\n", ID },
		{ "containerd default ns", "0::/default/" ID "\n", ID },
		{ "namespaced relative", "0::/../../kubepods/besteffort/pod1/" ID
		  "\n", ID },
		{ "nested kind", "0::/docker/" ID2 "/kubepods/besteffort/pod1/"
		  ID "\n", ID },
		{ "docker init scope", "0::/docker/" ID "/init.scope\n", ID },
		{ "no trailing newline", "0::/docker/" ID, ID },
		{ "host v2", "0::/user.slice/user-0.slice/session-1.scope\n", "" },
		{ "host v1", "12:pids:/user.slice\n1:name=systemd:/init.scope\n",
		  "" },
		{ "root", "0::/\n", "" },
		{ "empty", "", "" },
		{ "63 hex", "0::/docker/" ID "\n" "", ID },
		{ "short id", "0::/docker/3f2a9c1b7d6e\n", "" },
		{ "uppercase hex", "0::/docker/3F2A9C1B7D6E5F4A3B2C1D0E9F8A7B6C"
		  "5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A\n", "" },
		{ "65 hex", "0::/docker/a" ID "\n", "" },
		{ "hex then junk", "0::/docker/" ID "x\n", "" },
		{ "garbage", "no colons here\n::\n:::\n0:\n", "" },
	};

	return cr_make_param_array(struct cg, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct cg *c, containerid, fixtures)
{
	char out[CONTAINER_ID_LEN + 1];
	int r = containerid_from_cgroup(c->text, out);

	cr_expect_eq(r, c->want[0] != '\0', "%s", c->name);
	cr_expect_str_eq(out, c->want, "%s", c->name);
}

Test(containerid, this_machine_has_none)
{
	char buf[4096], out[CONTAINER_ID_LEN + 1];
	ssize_t n;
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	if (strstr(buf, "docker") || strstr(buf, "kubepods") ||
	    strstr(buf, "libpod") || strstr(buf, "crio"))
		cr_skip_test("running inside a container: %s", buf);
	cr_expect_eq(containerid_from_cgroup(buf, out), 0, "%s", buf);
	cr_expect_str_eq(out, "");
}

Test(containerid, null_and_huge_input)
{
	static char big[CONTAINERID_TEXT_MAX * 2];
	char out[CONTAINER_ID_LEN + 1];

	cr_expect_eq(containerid_from_cgroup(NULL, out), 0);
	memset(big, '/', sizeof(big) - 1);
	cr_expect_eq(containerid_from_cgroup(big, out), 0);
	/* an id past the bound is not looked at */
	memcpy(big + CONTAINERID_TEXT_MAX + 10, "0::/docker/" ID "\n",
	       11 + 64 + 1);
	cr_expect_eq(containerid_from_cgroup(big, out), 0);
}
