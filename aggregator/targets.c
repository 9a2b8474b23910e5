/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "containerid.h"
#include "proctable.h"
#include "relabel.h"
#include "targets.h"
#include "users.h"

struct target {
	struct labelset out;	/* final labels: stripped, service_name */
	char cid[CONTAINER_ID_LEN + 1];	/* "" when none */
	uint32_t pid;		/* 0 when none */
};

struct targets {
	struct target *v;
	size_t n;
	bool have_list;
	bool targets_only;
	bool commandline;
	struct labelset deflt;	/* default_target, final */
	struct relabel *rl;
	struct targets_stats st;
};

const char *targets_infer_service_name(const struct labelset *ls)
{
	static char buf[512];
	const char *v, *ns, *ct;

	v = labelset_get(ls, "__meta_kubernetes_pod_annotation_pyroscope_io_service_name");
	if (v)
		return v;
	ns = labelset_get(ls, "__meta_kubernetes_namespace");
	ct = labelset_get(ls, "__meta_kubernetes_pod_container_name");
	if (ns && ct) {
		(void)snprintf(buf, sizeof(buf), "ebpf/%s/%s", ns, ct);
		return buf;
	}
	if ((v = labelset_get(ls, "__meta_docker_container_name")) ||
	    (v = labelset_get(ls, "__meta_dockerswarm_container_label_service_name")) ||
	    (v = labelset_get(ls, "__meta_dockerswarm_service_name")))
		return v;
	return "unspecified";
}

/* Alloy's NewTarget: keep non-"__" labels (and __name__), service_name. */
static int finalize(const struct labelset *full, struct labelset *out)
{
	size_t i;
	int ret = 0;

	labelset_clear(out);
	for (i = 0; ret == 0 && i < full->n; i++)
		if (strncmp(full->v[i].name, "__", 2) ||
		    !strcmp(full->v[i].name, "__name__"))
			ret = labelset_set(out, full->v[i].name,
					   full->v[i].value);
	if (ret == 0 && !labelset_get(out, "service_name"))
		ret = labelset_set(out, "service_name",
				   targets_infer_service_name(full));
	return ret;
}

static void strip_runtime_prefix(const char *v, char *cid)
{
	static const char *const pfx[] = {
		"docker://", "containerd://", "cri-o://",
	};
	size_t i, n;

	for (i = 0; i < 3; i++) {
		n = strlen(pfx[i]);
		if (!strncmp(v, pfx[i], n)) {
			v += n;
			break;
		}
	}
	(void)snprintf(cid, CONTAINER_ID_LEN + 1, "%s", v);
}

/* The order Alloy's target.go looks in. */
static void target_keys(struct target *t, const struct labelset *ls)
{
	const char *v;
	char *end;
	unsigned long pid;

	if ((v = labelset_get(ls, "__container_id__")))
		(void)snprintf(t->cid, sizeof(t->cid), "%s", v);
	else if ((v = labelset_get(ls, "__meta_kubernetes_pod_container_id")))
		strip_runtime_prefix(v, t->cid);
	else if ((v = labelset_get(ls, "__meta_docker_container_id")) ||
		 (v = labelset_get(ls, "__meta_dockerswarm_task_container_id")))
		(void)snprintf(t->cid, sizeof(t->cid), "%s", v);
	v = labelset_get(ls, "__process_pid__");
	if (v) {
		pid = strtoul(v, &end, 10);
		if (*v && !*end && pid > 0 && pid <= UINT32_MAX)
			t->pid = (uint32_t)pid;
	}
}

static int labels_from_cfg(struct labelset *ls, const struct cfg_labels *l)
{
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < l->n; i++)
		ret = labelset_set(ls, l->v[i].name, l->v[i].value);
	return ret;
}

/* One configured target: relabel (may drop it), keys, final labels. */
static int target_add(struct targets *t, const struct cfg_labels *l)
{
	struct labelset ls = { 0 };
	struct target *tg = &t->v[t->n];
	int ret;

	memset(tg, 0, sizeof(*tg));
	ret = labels_from_cfg(&ls, l);
	if (ret == 0)
		ret = relabel_apply(t->rl, &ls);
	if (ret == 1) {
		target_keys(tg, &ls);
		ret = finalize(&ls, &tg->out);
		if (ret == 0)
			t->n++;
	} else if (ret == 0) {
		t->st.relabel_dropped++;
	}
	labelset_clear(&ls);
	return ret < 0 ? ret : 0;
}

void targets_free(struct targets *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		labelset_clear(&t->v[i].out);
	free(t->v);
	labelset_clear(&t->deflt);
	relabel_free(t->rl);
	free(t);
}

static int targets_build(struct targets *t, const struct config *c)
{
	struct labelset ls = { 0 };
	size_t i;
	int ret;

	t->v = calloc(c->n_targets ? c->n_targets : 1, sizeof(*t->v));
	if (!t->v)
		return -ENOMEM;
	for (i = 0; i < c->n_targets; i++) {
		ret = target_add(t, &c->targets[i]);
		if (ret < 0)
			return ret;
	}
	ret = labels_from_cfg(&ls, &c->default_target);
	if (ret == 0)
		ret = finalize(&ls, &t->deflt);
	labelset_clear(&ls);
	return ret;
}

struct targets *targets_new(const struct config *c, char *err, size_t errlen)
{
	struct targets *t = calloc(1, sizeof(*t));

	if (errlen)
		err[0] = '\0';
	if (!t)
		goto oom;
	t->have_list = c->n_targets > 0;
	t->targets_only = c->targets_only;
	t->commandline = c->discover_commandline;
	t->rl = relabel_compile(&c->relabel, err, errlen);
	if (!t->rl)
		goto fail;
	if (targets_build(t, c) < 0)
		goto oom;
	return t;
oom:
	if (errlen)
		(void)snprintf(err, errlen, "targets: out of memory");
fail:
	targets_free(t);
	return NULL;
}

static const struct target *find_target(const struct targets *t,
					const struct target_input *in)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].pid && t->v[i].pid == in->pid)
			return &t->v[i];
	if (!in->container_id || !*in->container_id)
		return NULL;
	for (i = 0; i < t->n; i++)
		if (t->v[i].cid[0] && !strcmp(t->v[i].cid, in->container_id))
			return &t->v[i];
	return NULL;
}

static int set_opt(struct labelset *ls, const char *name, const char *v)
{
	return v ? labelset_set(ls, name, v) : 0;
}

/* discovery.process' labels for one process. */
static int discovery_labels(const struct targets *t,
			    const struct target_input *in, struct labelset *ls)
{
	char pid[16], uid[16];
	int ret;

	(void)snprintf(pid, sizeof(pid), "%u", in->pid);
	(void)snprintf(uid, sizeof(uid), "%u", in->uid);
	ret = labelset_set(ls, "__process_pid__", pid);
	if (ret == 0)
		ret = labelset_set(ls, "__meta_process_pid", pid);
	if (ret == 0)
		ret = set_opt(ls, "__meta_process_exe", in->exe);
	if (ret == 0)
		ret = set_opt(ls, "__meta_process_cwd", in->cwd);
	if (ret == 0)
		ret = set_opt(ls, "__meta_process_username", in->username);
	if (ret == 0)
		ret = set_opt(ls, "__meta_process_uid", in->has_uid ? uid : NULL);
	if (ret == 0)
		ret = set_opt(ls, "__meta_process_container_id",
			      in->container_id);
	if (ret == 0)
		ret = set_opt(ls, "__meta_process_comm", in->comm);
	if (ret == 0 && t->commandline)
		ret = set_opt(ls, "__meta_process_commandline", in->cmdline);
	return ret;
}

static int resolve_discovery(struct targets *t, const struct target_input *in,
			     struct labelset *out)
{
	struct labelset ls = { 0 };
	int ret;

	ret = discovery_labels(t, in, &ls);
	if (ret == 0)
		ret = relabel_apply(t->rl, &ls);
	if (ret == 1) {
		ret = finalize(&ls, out);
		if (ret == 0) {
			t->st.matched++;
			ret = 1;
		}
	} else if (ret == 0) {
		t->st.relabel_dropped++;
		ret = 2;	/* fall back as unmatched */
	}
	labelset_clear(&ls);
	return ret;
}

static int resolve_unmatched(struct targets *t, struct labelset *out)
{
	int ret;

	if (t->targets_only) {
		t->st.skipped++;
		return 0;
	}
	ret = labelset_copy(out, &t->deflt);
	if (ret < 0)
		return ret;
	t->st.defaulted++;
	return 1;
}

int targets_resolve(struct targets *t, const struct target_input *in,
		    struct labelset *out)
{
	const struct target *tg;
	int ret;

	labelset_clear(out);
	if (!t->have_list) {
		ret = resolve_discovery(t, in, out);
		return ret == 2 ? resolve_unmatched(t, out) : ret;
	}
	tg = find_target(t, in);
	if (!tg)
		return resolve_unmatched(t, out);
	ret = labelset_copy(out, &tg->out);
	if (ret < 0)
		return ret;
	t->st.matched++;
	return 1;
}

void targets_stats(const struct targets *t, struct targets_stats *st)
{
	*st = t->st;
}

void targets_input_from_proc(struct target_input *in, const struct proc *p,
			     const struct users *u)
{
	memset(in, 0, sizeof(*in));
	in->pid = p->pid;
	in->start_time = p->start_time;
	in->comm = p->comm;
	in->container_id = p->container_id[0] ? p->container_id : NULL;
	in->exe = p->exe;
	in->cwd = p->cwd;
	in->cmdline = p->cmdline;
	in->uid = p->uid;
	in->has_uid = p->has_uid;
	in->username = p->has_uid ? users_name(u, p->uid) : NULL;
}
