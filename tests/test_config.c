/* SPDX-License-Identifier: BSD-2-Clause */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "loop.h"

struct tmp {
	char dir[64];
	char path[128];
};

static void tmp_write(struct tmp *t, const char *name, const char *text)
{
	char p[192];
	FILE *f;

	(void)snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	fclose(f);
}

static void tmp_init(struct tmp *t, const char *yaml)
{
	(void)snprintf(t->dir, sizeof(t->dir), "/tmp/spcfg.XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	(void)snprintf(t->path, sizeof(t->path), "%s/c.yaml", t->dir);
	tmp_write(t, "c.yaml", yaml);
	tmp_write(t, "secret.txt", "hunter2\n");
}

static void tmp_fini(struct tmp *t)
{
	char cmd[160];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	cr_assert_eq(system(cmd), 0);
}

/* Parameters are copied into the test by value: no pointers (re-exec). */
struct bad {
	char name[40];
	char yaml[300];
	char err[240];	/* after "<path>" */
};

#define EP "write:\n  endpoint:\n    - url: http://x\n"

ParameterizedTestParameters(config, rejects_bad_files)
{
	static struct bad cases[] = {
		{ "unknown top", "foo: 1\n", ":1: foo: unknown key" },
		{ "unknown nested", EP "      bogus: 1\n",
		  ":4: write.endpoint[0].bogus: unknown key" },
		{ "unknown in tls", EP "      tls_config: {ca: x}\n",
		  ":4: write.endpoint[0].tls_config.ca: unknown key" },
		{ "int word", "sample_rate: 97\ncollect_interval: 15s\n"
		  "targets_only: true\nsample_rate2: 1\n",
		  ":4: sample_rate2: unknown key" },
		{ "int fast", "\n\n\n\n\n\nsample_rate: fast\n",
		  ":7: sample_rate: expected an integer between 1 and 10000, "
		  "got \"fast\"" },
		{ "negative", "sample_rate: -5\n",
		  ":1: sample_rate: expected an integer between 1 and 10000, "
		  "got \"-5\"" },
		{ "huge", "pid_cache_size: 99999999999999999999999\n",
		  ":1: pid_cache_size: expected an integer between 1 and "
		  "1048576, got \"99999999999999999999999\"" },
		{ "zero", "sample_rate: 0\n",
		  ":1: sample_rate: expected an integer between 1 and 10000, "
		  "got \"0\"" },
		{ "int list", "sample_rate: [1]\n",
		  ":1: sample_rate: expected an integer between 1 and 10000, "
		  "got a list" },
		{ "duration", "collect_interval: 15\n",
		  ":1: collect_interval: expected a duration like 15s or "
		  "500ms, got \"15\"" },
		{ "duration range", "collect_interval: 2h\n",
		  ":1: collect_interval: expected a duration between 100ms "
		  "and 1h, got \"2h\"" },
		{ "bool", "collect_user_profile: yes\n",
		  ":1: collect_user_profile: expected true or false, got "
		  "\"yes\"" },
		{ "enum demangle", "demangle: fancy\n",
		  ":1: demangle: expected one of none, simplified, templates, "
		  "full, got \"fancy\"" },
		{ "enum loop", "event_loop: kqueue\n",
		  ":1: event_loop: expected one of auto, io_uring, epoll, got "
		  "\"kqueue\"" },
		{ "duplicate", "sample_rate: 97\nsample_rate: 98\n",
		  ":2: sample_rate: duplicate key" },
		{ "duplicate label", "default_target:\n  a: x\n  a: y\n",
		  ":3: default_target.a: duplicate key" },
		{ "syntax", "sample_rate: 97\ntargets: [a, b\n",
		  ":3: yaml: did not find expected ',' or ']' while parsing a "
		  "flow sequence" },
		{ "syntax indent", "write:\n  endpoint: x\n bad: 1\n",
		  ":3: yaml: did not find expected key while parsing a block "
		  "mapping" },
		{ "anchor", "default_target: &a {service_name: x}\n",
		  ":1: yaml: anchors and aliases are not supported" },
		{ "two docs", "sample_rate: 1\n---\nsample_rate: 2\n",
		  ":2: yaml: only one document is allowed" },
		{ "top list", "- a\n", ":1: (top level): expected a map, got a list" },
		{ "bad regex", "relabel:\n  - source_labels: [a]\n"
		  "    regex: '(unclosed'\n    action: keep\n",
		  ":3: relabel[0].regex: invalid regex: missing closing "
		  "parenthesis at offset 9" },
		{ "bad action", "relabel:\n  - action: explode\n",
		  ":2: relabel[0].action: expected one of replace, keep, drop, "
		  "keepequal, dropequal, hashmod, labelmap, labeldrop, "
		  "labelkeep, lowercase, uppercase, got \"explode\"" },
		{ "hashmod", "relabel:\n  - {source_labels: [a], "
		  "target_label: b, action: hashmod}\n",
		  ":2: relabel[0]: hashmod: action hashmod requires a modulus "
		  "greater than 0" },
		{ "replace no target", "relabel:\n  - {source_labels: [a]}\n",
		  ":2: relabel[0]: replace: this action requires target_label" },
		{ "labeldrop extra", "relabel:\n  - {source_labels: [a], "
		  "regex: x, action: labeldrop}\n",
		  ":2: relabel[0]: labeldrop: this action takes only regex" },
		{ "bad source", "relabel:\n  - {source_labels: ['1bad'], "
		  "target_label: x}\n",
		  ":2: relabel[0].source_labels: invalid label name \"1bad\"" },
		{ "profile_relabel", "profile_relabel:\n  - {target_label: "
		  "'a-b', source_labels: [x], action: lowercase}\n",
		  ":2: profile_relabel[0]: lowercase: invalid target_label" },
		{ "missing url", "write:\n  endpoint:\n    - name: x\n",
		  ":3: write.endpoint[0]: missing required key url" },
		{ "bad scheme", "write:\n  endpoint:\n    - url: ftp://x\n",
		  ":3: write.endpoint[0]: url must start with http:// or "
		  "https://, got \"ftp://x\"" },
		{ "two auth", EP "      basic_auth: {username: u, password: p}\n"
		  "      bearer_token: t\n",
		  ":5: write.endpoint[0].bearer_token: cannot be used together "
		  "with basic_auth" },
		{ "bearer both", EP "      bearer_token_file: secret.txt\n"
		  "      bearer_token: t\n",
		  ":5: write.endpoint[0].bearer_token: cannot be used together "
		  "with bearer_token_file" },
		{ "password both", EP "      basic_auth:\n        username: u\n"
		  "        password_file: secret.txt\n        password: p\n",
		  ":7: write.endpoint[0].basic_auth.password: cannot be used "
		  "together with password_file" },
		{ "ca both", EP "      tls_config: {ca_pem: x, ca_file: "
		  "secret.txt}\n",
		  ":4: write.endpoint[0].tls_config.ca_pem: cannot be used "
		  "together with ca_file" },
		{ "cert no key", EP "      tls_config: {cert_pem: x}\n",
		  ":4: write.endpoint[0].tls_config: a client certificate needs "
		  "both a cert and a key" },
		{ "missing password_file", EP "      basic_auth:\n"
		  "        username: u\n        password_file: missing.txt\n",
		  ":6: write.endpoint[0].basic_auth.password_file: cannot read "
		  "missing.txt: No such file or directory" },
		{ "password_file dir", EP "      bearer_token_file: /\n",
		  ":4: write.endpoint[0].bearer_token_file: cannot read /: Is "
		  "a directory" },
		{ "basic type", EP "      authorization: {type: Basic, "
		  "credentials: c}\n",
		  ":4: write.endpoint[0].authorization: type Basic is not "
		  "allowed, use basic_auth" },
		{ "no username", EP "      basic_auth: {password: p}\n",
		  ":4: write.endpoint[0].basic_auth: missing required key "
		  "username" },
		{ "proxy", EP "      proxy_url: http://p\n"
		  "      proxy_from_environment: true\n",
		  ":5: write.endpoint[0].proxy_from_environment: cannot be used "
		  "together with proxy_url" },
		{ "backoff", EP "      min_backoff_period: 10m\n"
		  "      max_backoff_period: 1m\n",
		  ":3: write.endpoint[0]: min_backoff_period is larger than "
		  "max_backoff_period" },
		{ "api", EP "      api: grpc\n",
		  ":4: write.endpoint[0].api: expected one of push, ingest, "
		  "got \"grpc\"" },
		{ "tls version", EP "      tls_config: {min_version: SSL3}\n",
		  ":4: write.endpoint[0].tls_config.min_version: expected one "
		  "of TLS10, TLS11, TLS12, TLS13, got \"SSL3\"" },
		{ "write scalar", "write: 5\n",
		  ":1: write: expected a map, got a scalar" },
		{ "targets map", "targets: {a: b}\n",
		  ":1: targets: expected a list, got a map" },
		{ "target value", "targets:\n  - service_name: [a]\n",
		  ":2: targets[0].service_name: expected a string, got a list" },
		{ "null string", "output_dir:\n",
		  ":1: output_dir: expected a string, got null" },
		{ "label name", "write:\n  external_labels: {'bad-name': x}\n",
		  ":2: write.external_labels.bad-name: invalid label name" },
		{ "retention", "retention: {max_files: 0}\n",
		  ":1: retention.max_files: expected an integer between 1 and "
		  "100000000, got \"0\"" },
		{ "endpoint not map", "write:\n  endpoint:\n    - http://x\n",
		  ":3: write.endpoint[0]: expected a map, got a scalar" },
	};

	return cr_make_param_array(struct bad, cases,
				   sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad *b, config, rejects_bad_files)
{
	char err[CFG_ERR_MAX], want[CFG_ERR_MAX + 128];
	struct config *c = NULL;
	struct tmp t;

	tmp_init(&t, b->yaml);
	(void)snprintf(want, sizeof(want), "%s%s", t.path, b->err);
	cr_expect_eq(config_load(t.path, &c, err, sizeof(err)), -EINVAL,
		     "%s", b->name);
	cr_expect_str_eq(err, want, "%s", b->name);
	cr_expect_null(c);
	tmp_fini(&t);
}

Test(config, secrets_never_in_errors)
{
	char err[CFG_ERR_MAX];
	struct config *c = NULL;
	struct tmp t;

	tmp_init(&t, EP "      basic_auth: {username: u, password: s3cret}\n"
		 "      bearer_token: {x: tok3n}\n");
	cr_assert_eq(config_load(t.path, &c, err, sizeof(err)), -EINVAL);
	cr_expect_null(strstr(err, "s3cret"));
	cr_expect_null(strstr(err, "tok3n"));
	tmp_fini(&t);
}

Test(config, missing_file_is_errno)
{
	char err[CFG_ERR_MAX];
	struct config *c = NULL;

	cr_expect_eq(config_load("/nonexistent/c.yaml", &c, err, sizeof(err)),
		     -ENOENT);
	cr_expect_str_eq(err, "/nonexistent/c.yaml: No such file or directory");
}

Test(config, defaults)
{
	struct config *c = NULL;

	cr_assert_eq(config_defaults(&c), 0);
	cr_expect_eq(c->sample_rate, 97);
	cr_expect_eq(c->collect_interval_ns, 15000000000ull);
	cr_expect(c->targets_only && c->local_output);
	cr_expect_str_eq(c->demangle, "none");
	cr_expect_str_eq(c->aggregator_user, "nobody");
	cr_expect_eq(c->container_id_cache_size, 1024);
	cr_expect_eq(c->event_loop, LOOP_AUTO);
	config_free(c);
	config_free(NULL);
}

Test(config, empty_file_is_defaults)
{
	char err[CFG_ERR_MAX];
	struct config *c = NULL;
	struct tmp t;

	tmp_init(&t, "# nothing\n");
	cr_assert_eq(config_load(t.path, &c, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(c->sample_rate, 97);
	cr_expect_str_eq(c->path, t.path);
	config_free(c);
	tmp_fini(&t);
}

Test(config, example_loads)
{
	char err[CFG_ERR_MAX];
	struct config *c = NULL;
	const struct cfg_endpoint *e;

	cr_assert_eq(config_load("tests/e2e-config/example.yaml", &c, err,
				 sizeof(err)), 0, "%s", err);
	cr_expect_eq(c->sample_rate, 97);
	cr_expect_eq(c->n_targets, 0);
	cr_expect_eq(c->default_target.n, 1);
	cr_expect_eq(c->relabel.n, 3);
	cr_expect_eq(c->relabel.v[0].action, RELABEL_DROP);
	cr_expect_str_eq(c->relabel.v[1].regex, "(.*)");
	cr_expect_str_eq(c->relabel.v[1].separator, ";");
	cr_expect_eq(c->profile_relabel.v[0].action, RELABEL_LABELDROP);
	cr_assert_eq(c->n_endpoints, 1);
	e = &c->endpoints[0];
	cr_expect_str_eq(e->name, "main");
	cr_expect_str_eq(e->basic_username, "123");
	cr_expect_str_eq(e->tls.min_version, "TLS12");
	cr_expect_eq(e->max_backoff_ns, 300000000000ull);
	cr_expect_eq(c->external_labels.n, 2);
	cr_expect_str_eq(c->external_labels.v[0].name, "env");
	cr_expect_not(c->local_output);
	config_free(c);
}

Test(config, round_trip)
{
	char err[CFG_ERR_MAX];
	struct config *c = NULL;
	const struct cfg_endpoint *e;
	struct tmp t;

	tmp_init(&t,
		 "sample_rate: 49\ncollect_interval: 1m30s\n"
		 "collect_kernel_profile: false\ndemangle: full\n"
		 "targets_only: false\n"
		 "targets:\n  - {__container_id__: abc, service_name: svc}\n"
		 "  - __process_pid__: 1234\n    env: dev\n"
		 "default_target: {service_name: host}\n"
		 "relabel:\n  - source_labels: [a, b]\n    separator: '|'\n"
		 "    regex: 'x(.*)'\n    target_label: c\n"
		 "    replacement: '${1}y'\n"
		 "  - {source_labels: [a], target_label: h, modulus: 8, "
		 "action: hashmod}\n"
		 "discover_commandline: true\n"
		 "write:\n  endpoint:\n    - url: https://p:4040\n"
		 "      api: ingest\n      remote_timeout: 3s\n"
		 "      headers: {X-Scope-OrgID: t}\n"
		 "      authorization: {credentials_file: secret.txt}\n"
		 "      tls_config: {ca_file: secret.txt, "
		 "insecure_skip_verify: true}\n"
		 "      enable_http2: false\n      queue_max_bytes: 1024\n"
		 "event_loop: epoll\nmetrics_listen: 127.0.0.1:9090\n");
	cr_assert_eq(config_load(t.path, &c, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(c->sample_rate, 49);
	cr_expect_eq(c->collect_interval_ns, 90000000000ull);
	cr_expect_not(c->collect_kernel_profile);
	cr_expect_str_eq(c->demangle, "full");
	cr_expect_not(c->targets_only);
	cr_assert_eq(c->n_targets, 2);
	cr_expect_str_eq(c->targets[0].v[0].name, "__container_id__");
	cr_expect_str_eq(c->targets[1].v[0].value, "1234");
	cr_expect_str_eq(c->relabel.v[0].separator, "|");
	cr_expect_str_eq(c->relabel.v[0].replacement, "${1}y");
	cr_expect_eq(c->relabel.v[0].n_source_labels, 2);
	cr_expect_eq(c->relabel.v[0].line, 12);
	cr_expect_eq(c->relabel.v[1].modulus, 8);
	cr_expect(c->discover_commandline);
	e = &c->endpoints[0];
	cr_expect_str_eq(e->name, "https://p:4040");
	cr_expect_eq(e->api, ENDPOINT_API_INGEST);
	cr_expect_eq(e->remote_timeout_ns, 3000000000ull);
	cr_expect_str_eq(e->authorization_type, "Bearer");
	cr_expect_str_eq(e->authorization_credentials, "hunter2");
	cr_expect_str_eq(e->tls.ca_pem, "hunter2");
	cr_expect(e->tls.insecure_skip_verify);
	cr_expect_not(e->enable_http2);
	cr_expect(e->follow_redirects);
	cr_expect_eq(e->max_backoff_retries, 10);
	cr_expect_eq(e->queue_max_bytes, 1024);
	cr_expect_eq(c->event_loop, LOOP_EPOLL);
	cr_expect_str_eq(c->metrics_listen, "127.0.0.1:9090");
	config_free(c);
	tmp_fini(&t);
}

Test(config, password_file_read_and_dump_redacts)
{
	char err[CFG_ERR_MAX], *text = NULL;
	struct config *c = NULL;
	size_t len = 0;
	struct tmp t;
	FILE *f;

	tmp_init(&t, EP "      basic_auth: {username: u, "
		 "password_file: secret.txt}\n");
	cr_assert_eq(config_load(t.path, &c, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(c->endpoints[0].basic_password, "hunter2");
	f = open_memstream(&text, &len);
	cr_assert_eq(config_dump(c, f), 0);
	fclose(f);
	cr_expect_null(strstr(text, "hunter2"));
	cr_expect_not_null(strstr(text, "password: <secret>"));
	cr_expect_not_null(strstr(text, "url: \"http://x\""));
	free(text);
	config_free(c);
	tmp_fini(&t);
}
