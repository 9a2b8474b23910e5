/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.h - the aggregator's configuration: one YAML file, strict (an
 * unknown key, a wrong type, a bad duration or regex, or a conflicting pair
 * of options is an error naming file:line: key: why), key names exactly
 * Alloy's pyroscope.ebpf / pyroscope.write / discovery.relabel arguments,
 * plus splitprof's own. Secrets named by *_file keys are read once at load
 * time (the sandbox forbids later opens) and never logged.
 */
#ifndef AGG_CONFIG_H
#define AGG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_ERR_MAX		512

/* Relabel actions, as Prometheus names them. */
#define RELABEL_REPLACE		0
#define RELABEL_KEEP		1
#define RELABEL_DROP		2
#define RELABEL_KEEPEQUAL	3
#define RELABEL_DROPEQUAL	4
#define RELABEL_HASHMOD		5
#define RELABEL_LABELMAP	6
#define RELABEL_LABELDROP	7
#define RELABEL_LABELKEEP	8
#define RELABEL_LOWERCASE	9
#define RELABEL_UPPERCASE	10

#define ENDPOINT_API_PUSH	0
#define ENDPOINT_API_INGEST	1

struct cfg_label {
	char *name;
	char *value;
};

/* An ordered list of labels (a YAML map keeps its order here). */
struct cfg_labels {
	struct cfg_label *v;
	size_t n;
};

struct cfg_relabel_rule {
	int action;			/* RELABEL_* (default replace) */
	char **source_labels;
	size_t n_source_labels;
	char *separator;		/* default ";" (NULL: the default) */
	char *regex;			/* default "(.*)", anchored when compiled */
	char *replacement;		/* default "$1" */
	char *target_label;		/* NULL: not set */
	uint64_t modulus;
	int line;			/* for error messages */
};

struct cfg_relabel_rules {
	struct cfg_relabel_rule *v;
	size_t n;
};

struct cfg_tls {
	char *ca_pem;			/* ca_file read at load, or ca_pem */
	char *cert_pem;
	char *key_pem;
	bool insecure_skip_verify;
	char *server_name;
	char *min_version;		/* "TLS12", "TLS13" or NULL */
};

struct cfg_endpoint {
	char *url;
	char *name;			/* default: the url */
	int api;			/* ENDPOINT_API_* (default push) */
	uint64_t remote_timeout_ns;	/* 10s */
	struct cfg_labels headers;
	/* at most one auth method; *_file contents are read at load */
	char *basic_username;
	char *basic_password;
	char *bearer_token;
	char *authorization_type;	/* default "Bearer" when credentials set */
	char *authorization_credentials;
	struct cfg_tls tls;
	char *proxy_url;
	char *no_proxy;
	bool proxy_from_environment;
	bool enable_http2;		/* true */
	bool follow_redirects;		/* true */
	uint64_t min_backoff_ns;	/* 500ms */
	uint64_t max_backoff_ns;	/* 5m */
	uint32_t max_backoff_retries;	/* 10 attempts in total; 0 = unlimited */
	bool retry_on_http_429;		/* true */
	uint64_t queue_max_bytes;	/* splitprof: default 8 MiB */
};

struct config {
	char *path;			/* NULL: defaults, no file */

	/* pyroscope.ebpf */
	uint32_t sample_rate;		/* 97 */
	uint64_t collect_interval_ns;	/* 15s */
	bool collect_user_profile;	/* true */
	bool collect_kernel_profile;	/* true */
	char *demangle;			/* "none" */
	bool targets_only;		/* true */
	struct cfg_labels *targets;	/* list of label maps */
	size_t n_targets;
	struct cfg_labels default_target;
	uint32_t pid_cache_size;	/* 32 */
	uint32_t build_id_cache_size;	/* 64 */
	uint32_t same_file_cache_size;	/* 8 */
	uint32_t container_id_cache_size; /* 1024 */

	/* discovery.relabel on targets, pyroscope.relabel on profiles */
	struct cfg_relabel_rules relabel;
	struct cfg_relabel_rules profile_relabel;
	bool discover_commandline;	/* __meta_process_commandline: off */

	/* pyroscope.write */
	struct cfg_labels external_labels;
	struct cfg_endpoint *endpoints;
	size_t n_endpoints;

	/* splitprof's own */
	char *output_dir;		/* "./profiles" */
	bool local_output;		/* default: only when no endpoint */
	uint64_t retention_max_files;	/* 10000 */
	uint64_t retention_max_bytes;	/* 1 GiB */
	int event_loop;			/* LOOP_AUTO */
	char *socket_path;		/* /run/splitprof/probe.sock */
	char *aggregator_user;		/* "nobody" */
	char *metrics_listen;		/* NULL: off */
};

/* Defaults for everything (as documented above). */
int config_defaults(struct config **out);

/*
 * Load and validate path. On error returns -EINVAL (or -errno for I/O) and
 * writes "file:line: key: why" into err.
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

void config_free(struct config *c);

/*
 * The effective configuration as YAML-ish text (--check-config -v).
 * Secrets (passwords, tokens, credentials, private keys) print as
 * <secret>. Returns 0 or -EIO.
 */
int config_dump(const struct config *c, FILE *f);

/* Free the rules' strings and array; rules is empty after. */
void config_rules_free(struct cfg_relabel_rules *rules);

/*
 * Check a relabel regex the way relabel.c compiles it (anchored, PCRE2).
 * Returns 0, or -EINVAL with PCRE2's message in msg.
 */
int config_check_regex(const char *re, char *msg, size_t size);

#endif /* AGG_CONFIG_H */
