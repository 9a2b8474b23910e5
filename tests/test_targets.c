/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "proctable.h"
#include "targets.h"
#include "users.h"

#define CID "3f2a9c1b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a"
#define CID2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct config *load(const char *yaml)
{
	char path[] = "/tmp/sptgt.XXXXXX", err[CFG_ERR_MAX];
	struct config *c = NULL;
	int fd = mkstemp(path);
	FILE *f;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	fputs(yaml, f);
	fclose(f);
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	return c;
}

static struct targets *tnew(struct config *c)
{
	char err[256];
	struct targets *t = targets_new(c, err, sizeof(err));

	cr_assert_not_null(t, "%s", err);
	return t;
}

static void format(const struct labelset *ls, char *buf, size_t size)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < ls->n; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s=%s", i ? "," : "",
				      ls->v[i].name, ls->v[i].value);
}

/* resolve, and return the labels as text or "SKIP" */
static const char *resolve(struct targets *t, const struct target_input *in)
{
	static char buf[1024];
	struct labelset out = { 0 };
	int r = targets_resolve(t, in, &out);

	cr_assert_geq(r, 0);
	if (r == 0)
		(void)snprintf(buf, sizeof(buf), "SKIP");
	else
		format(&out, buf, sizeof(buf));
	labelset_clear(&out);
	return buf;
}

#define TARGETS_YAML \
	"targets:\n" \
	"  - {__container_id__: " CID ", service_name: a}\n" \
	"  - {__meta_docker_container_id: " CID2 ", __meta_docker_container_name: web}\n" \
	"  - {__process_pid__: '42', service_name: pid42}\n" \
	"default_target: {service_name: host, zone: z1}\n"

Test(targets, match_by_container_id_and_pid)
{
	struct config *c = load(TARGETS_YAML);
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 7, .container_id = CID };
	struct targets_stats st;

	cr_expect_str_eq(resolve(t, &in), "service_name=a");
	in.container_id = CID2;
	cr_expect_str_eq(resolve(t, &in), "service_name=web");
	in.pid = 42;	/* pid target wins over container target */
	cr_expect_str_eq(resolve(t, &in), "service_name=pid42");
	in.pid = 8;
	in.container_id = NULL;
	cr_expect_str_eq(resolve(t, &in), "SKIP");	/* targets_only */
	targets_stats(t, &st);
	cr_expect_eq(st.matched, 3);
	cr_expect_eq(st.skipped, 1);
	targets_free(t);
	config_free(c);
}

Test(targets, default_target_when_not_targets_only)
{
	struct config *c = load(TARGETS_YAML "targets_only: false\n");
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 8, .container_id = CID2 "x" };
	struct targets_stats st;

	cr_expect_str_eq(resolve(t, &in), "service_name=host,zone=z1");
	targets_stats(t, &st);
	cr_expect_eq(st.defaulted, 1);
	targets_free(t);
	config_free(c);
}

Test(targets, container_id_label_spellings)
{
	struct config *c = load(
		"targets:\n"
		"  - {__meta_kubernetes_pod_container_id: 'containerd://" CID "', s: k1}\n"
		"  - {__meta_kubernetes_pod_container_id: 'docker://" CID2 "', s: k2}\n"
		"  - {__meta_dockerswarm_task_container_id: "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, s: sw}\n"
		"  - {__meta_kubernetes_pod_container_id: "
		"'cri-o://bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', s: k3}\n");
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 1, .container_id = CID };

	cr_expect_str_eq(resolve(t, &in), "s=k1,service_name=unspecified");
	in.container_id = CID2;
	cr_expect_str_eq(resolve(t, &in), "s=k2,service_name=unspecified");
	in.container_id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	cr_expect_str_eq(resolve(t, &in), "s=sw,service_name=unspecified");
	in.container_id = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	cr_expect_str_eq(resolve(t, &in), "s=k3,service_name=unspecified");
	targets_free(t);
	config_free(c);
}

Test(targets, service_name_inference_order)
{
	struct config *c = load(
		"targets:\n"
		"  - {__process_pid__: '1', __meta_kubernetes_pod_annotation_pyroscope_io_service_name: ann,"
		" __meta_kubernetes_namespace: ns, __meta_kubernetes_pod_container_name: ct,"
		" __meta_docker_container_name: dk}\n"
		"  - {__process_pid__: '2', __meta_kubernetes_namespace: ns,"
		" __meta_kubernetes_pod_container_name: ct, __meta_docker_container_name: dk}\n"
		"  - {__process_pid__: '3', __meta_kubernetes_namespace: ns,"
		" __meta_docker_container_name: dk}\n"
		"  - {__process_pid__: '4', __meta_dockerswarm_container_label_service_name: s1,"
		" __meta_dockerswarm_service_name: s2}\n"
		"  - {__process_pid__: '5', __meta_dockerswarm_service_name: s2}\n"
		"  - {__process_pid__: '6', __name__: keep, other: x}\n"
		"  - {__process_pid__: '7', service_name: given, __meta_docker_container_name: dk}\n");
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 1 };

	cr_expect_str_eq(resolve(t, &in), "service_name=ann");
	in.pid = 2;
	cr_expect_str_eq(resolve(t, &in), "service_name=ebpf/ns/ct");
	in.pid = 3;
	cr_expect_str_eq(resolve(t, &in), "service_name=dk");
	in.pid = 4;
	cr_expect_str_eq(resolve(t, &in), "service_name=s1");
	in.pid = 5;
	cr_expect_str_eq(resolve(t, &in), "service_name=s2");
	in.pid = 6;
	cr_expect_str_eq(resolve(t, &in),
			 "__name__=keep,other=x,service_name=unspecified");
	in.pid = 7;
	cr_expect_str_eq(resolve(t, &in), "service_name=given");
	targets_free(t);
	config_free(c);
}

Test(targets, relabel_applies_to_target_list)
{
	struct config *c = load(TARGETS_YAML
		"relabel:\n"
		"  - {source_labels: [service_name], regex: a, action: drop}\n"
		"  - {source_labels: [__meta_docker_container_name], target_label: app}\n");
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 7, .container_id = CID };
	struct targets_stats st;

	cr_expect_str_eq(resolve(t, &in), "SKIP");
	in.container_id = CID2;
	cr_expect_str_eq(resolve(t, &in), "app=web,service_name=web");
	targets_stats(t, &st);
	cr_expect_eq(st.relabel_dropped, 1);
	targets_free(t);
	config_free(c);
}

Test(targets, discovery_labels_relabel_and_strip)
{
	struct config *c = load(
		"discover_commandline: true\n"
		"relabel:\n"
		"  - {source_labels: [__meta_process_exe], regex: '.*/sshd', action: drop}\n"
		"  - {source_labels: [__meta_process_comm], target_label: service_name}\n"
		"  - {source_labels: [__meta_process_pid, __meta_process_uid,"
		" __meta_process_username, __meta_process_cwd, __meta_process_container_id,"
		" __meta_process_commandline], separator: '|', target_label: all}\n"
		"  - {source_labels: [__process_pid__], target_label: pp}\n");
	struct targets *t = tnew(c);
	struct target_input in = {
		.pid = 99, .comm = "app", .exe = "/usr/bin/app", .cwd = "/srv",
		.uid = 1000, .has_uid = true, .username = "alice",
		.container_id = CID, .cmdline = "app --flag",
	};
	struct targets_stats st;

	cr_expect_str_eq(resolve(t, &in),
			 "all=99|1000|alice|/srv|" CID "|app --flag,pp=99,"
			 "service_name=app");
	in.exe = "/usr/sbin/sshd";
	cr_expect_str_eq(resolve(t, &in), "SKIP");
	targets_stats(t, &st);
	cr_expect_eq(st.matched, 1);
	cr_expect_eq(st.relabel_dropped, 1);
	cr_expect_eq(st.skipped, 1);
	targets_free(t);
	config_free(c);
}

Test(targets, discovery_without_rules_is_unspecified)
{
	struct config *c = load("targets_only: false\n"
				"relabel:\n  - {source_labels: [__meta_process_comm],"
				" regex: bad, action: drop}\n"
				"default_target: {service_name: rest}\n");
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 5, .comm = "x", .cmdline = "secret" };

	/* Alloy's wire behaviour; commandline is off by default */
	cr_expect_str_eq(resolve(t, &in), "service_name=unspecified");
	in.comm = "bad";	/* dropped by relabel, targets_only false */
	cr_expect_str_eq(resolve(t, &in), "service_name=rest");
	targets_free(t);
	config_free(c);
}

Test(targets, commandline_only_when_enabled)
{
	struct config *c = load("relabel:\n  - {source_labels: "
				"[__meta_process_commandline], target_label: cl}\n");
	struct targets *t = tnew(c);
	struct target_input in = { .pid = 5, .cmdline = "app --token=x" };

	cr_expect_str_eq(resolve(t, &in), "service_name=unspecified");
	targets_free(t);
	config_free(c);
}

Test(targets, input_from_proc_and_users)
{
	const char *pw = "root:x:0:0:root:/root:/bin/bash\n"
			 "alice:x:1000:1000::/home/alice:/bin/sh\n"
			 "dup:x:1000:1000::/:/bin/sh\nbroken line\nx::y:\n";
	struct users *u = NULL;
	struct proc p = { .pid = 3, .comm = "c", .uid = 1000, .has_uid = true };
	struct target_input in;

	cr_assert_eq(users_parse(pw, strlen(pw), &u), 0);
	cr_expect_str_eq(users_name(u, 0), "root");
	cr_expect_str_eq(users_name(u, 1000), "alice");
	cr_expect_null(users_name(u, 5));
	targets_input_from_proc(&in, &p, u);
	cr_expect_str_eq(in.username, "alice");
	cr_expect_null(in.container_id);
	cr_expect_eq(in.pid, 3);
	users_free(u);
	cr_assert_eq(users_load("/etc/passwd", &u), 0);
	cr_expect_str_eq(users_name(u, 0), "root");
	users_free(u);
	cr_assert_eq(users_load("/nonexistent", &u), 0);
	cr_expect_null(users_name(u, 0));
	users_free(u);
	users_free(NULL);
}

Test(targets, bad_relabel_rule_fails_new)
{
	struct config *c = NULL;
	struct cfg_relabel_rule r = { .action = RELABEL_KEEP, .regex = "(" };
	char err[256];

	cr_assert_eq(config_defaults(&c), 0);
	c->relabel.v = &r;
	c->relabel.n = 1;
	cr_expect_null(targets_new(c, err, sizeof(err)));
	cr_expect_neq(err[0], '\0');
	c->relabel.v = NULL;
	c->relabel.n = 0;
	config_free(c);
	targets_free(NULL);
}
