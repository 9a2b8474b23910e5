// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_upload.c - the Pyroscope uploader against a real HTTP(S) server:
 * tests/receiver/receiver.go, built here with the Go standard library,
 * decodes every request and logs it as one JSON line.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gz.h"
#include "labels.h"
#include "loop.h"
#include "upload.h"
#include "receiver_util.h"

#define MS		1000000ull	/* ns */

static char tmpdir[64];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rcv_start_on_tmp(struct rcv *r, int port, const char *name,
			     const char *const *args)
{
	rcv_start_on(r, port, tmpdir, name, args);
}

static void rcv_start(struct rcv *r, const char *name, const char *const *args)
{
	rcv_start_on(r, 0, tmpdir, name, args);
}

/* Line i (0-based) of the receiver's log into buf; false if not there yet. */
static bool rcv_line(const struct rcv *r, int i, char *buf, size_t len)
{
	FILE *f = fopen(r->log, "r");
	bool ok = false;
	int n = 0;

	if (!f)
		return false;
	while (fgets(buf, (int)len, f))
		if (strchr(buf, '\n') && n++ == i) {
			ok = true;
			break;
		}
	fclose(f);
	return ok;
}

static int rcv_count(const struct rcv *r)
{
	static char buf[1 << 16];
	int n = 0;

	while (rcv_line(r, n, buf, sizeof(buf)))
		n++;
	return n;
}

static long long json_int(const char *line, const char *key)
{
	char pat[64];
	const char *s;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	s = strstr(line, pat);
	cr_assert_not_null(s, "no %s in %s", key, line);
	return strtoll(s + strlen(pat), NULL, 10);
}

static void assert_has(const char *line, const char *what)
{
	cr_assert_not_null(strstr(line, what), "expected %s in\n%s", what, line);
}

/* ---- the uploader under test ------------------------------------------ */

struct env {
	struct loop *loop;
	struct uploader *u;
};

static struct cfg_endpoint ep_cfg(const char *url)
{
	return (struct cfg_endpoint){
		.url = (char *)(uintptr_t)url,
		.api = ENDPOINT_API_PUSH,
		.remote_timeout_ns = 3000 * MS,
		.enable_http2 = true,
		.follow_redirects = true,
		.min_backoff_ns = 10 * MS,
		.max_backoff_ns = 200 * MS,
		.max_backoff_retries = 10,
		.retry_on_http_429 = true,
	};
}

static char *url_of(const struct rcv *r, const char *scheme)
{
	static char urls[8][128];
	static int next;
	char *u = urls[next++ % 8];

	snprintf(u, 128, "%s://127.0.0.1:%d/", scheme, r->port);
	return u;
}

static void env_new(struct env *e, const struct cfg_endpoint *eps, size_t n,
		    const struct cfg_labels *ext)
{
	int err = 0;

	e->loop = loop_new(LOOP_AUTO, &err);
	cr_assert_not_null(e->loop, "loop_new: %s", strerror(-err));
	e->u = uploader_new(e->loop, eps, n, ext, &err);
	cr_assert_not_null(e->u, "uploader_new: %s", strerror(-err));
}

static void env_free(struct env *e)
{
	uploader_free(e->u);
	loop_free(e->loop);
}

/* Runs the loop until cond holds or timeout_ms passes. */
#define PUMP_UNTIL(e, cond, timeout_ms)					\
	do {								\
		int64_t _end = now_ms() + (timeout_ms);			\
		while (!(cond) && now_ms() < _end)			\
			(void)loop_run_once((e)->loop, 10);		\
	} while (0)

struct stats_ctx {
	struct upload_stats st[4];
	char err[4][UPLOAD_ERR_MAX];
	int n;
};

static void stats_cb(void *ctx, const struct upload_stats *st)
{
	struct stats_ctx *c = ctx;

	c->st[c->n] = *st;
	snprintf(c->err[c->n], UPLOAD_ERR_MAX, "%s", st->last_error);
	c->n++;
}

static struct upload_stats stats(const struct env *e, int i)
{
	struct stats_ctx c = { .n = 0 };

	uploader_foreach_stats(e->u, stats_cb, &c);
	cr_assert(i < c.n);
	return c.st[i];
}

static void last_error(const struct env *e, int i, char *out)
{
	struct stats_ctx c = { .n = 0 };

	uploader_foreach_stats(e->u, stats_cb, &c);
	memcpy(out, c.err[i], UPLOAD_ERR_MAX);
}

static void set(struct labelset *ls, const char *n, const char *v)
{
	cr_assert_eq(labelset_set(ls, n, v), 0);
}

/* A profile: raw bytes (the receiver only gunzips) and their gzip. */
struct prof {
	uint8_t *raw, *gz;
	size_t raw_len, gz_len;
};

static void prof_make(struct prof *p, size_t len, unsigned seed, bool zip)
{
	size_t i;

	p->raw = malloc(len);
	cr_assert_not_null(p->raw);
	srand(seed);
	for (i = 0; i < len; i++)	/* half text, half noise: pprof-ish */
		p->raw[i] = (i & 64) ? (uint8_t)rand() : (uint8_t)("main.f"[i % 6]);
	p->raw_len = len;
	if (zip) {
		cr_assert_eq(gz_compress(p->raw, len, GZ_LEVEL_BEST_SPEED,
					 &p->gz, &p->gz_len), 0);
	} else {
		p->gz = malloc(len);
		memcpy(p->gz, p->raw, len);
		p->gz_len = len;
	}
}

static void prof_free(struct prof *p)
{
	free(p->raw);
	free(p->gz);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	char path[PATH_MAX], cmd[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sha-input", tmpdir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%64s", out), 1);
	pclose(f);
}

static int submit(struct env *e, const struct labelset *ls,
		  const struct prof *p)
{
	return uploader_submit(e->u, ls, p->gz, p->gz_len,
			       1700000000123456789ll, 1700000015123456789ll, 97);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sp-upload-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", tmpdir);
}

TestSuite(upload, .init = setup, .fini = teardown, .timeout = 30);

/* ---- labels, headers, auth, payload ------------------------------------ */

Test(upload, push_labels_headers_basic_auth)
{
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_label ext_v[] = { { "env", "prod" }, { "cluster", "c1" } };
	struct cfg_labels ext = { ext_v, 2 };
	struct cfg_label hdr_v[] = { { "X-Scope-OrgID", "team-a" } };
	struct cfg_endpoint c;
	struct env e;
	struct prof p;
	char line[1 << 14], sha[65], saved[PATH_MAX];
	struct upload_stats st;
	uint8_t *back;
	FILE *f;

	rcv_start(&r, "push", NULL);
	c = ep_cfg(url_of(&r, "http"));
	c.headers = (struct cfg_labels){ hdr_v, 1 };
	c.basic_username = "alice";
	c.basic_password = "s3cret";
	env_new(&e, &c, 1, &ext);
	set(&ls, "service_name", "checkout");
	set(&ls, "env", "dev");
	set(&ls, "zone", "a");
	set(&ls, "__delta__", "false");
	set(&ls, "__container_id__", "3f2a");
	set(&ls, "__process_pid__", "42");
	set(&ls, "__meta_docker_container_name", "web");
	prof_make(&p, 20000, 1, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	cr_assert(rcv_line(&r, 0, line, sizeof(line)), "nothing arrived");
	assert_has(line, "\"path\":\"/push.v1.PusherService/Push\"");
	assert_has(line, "\"series\":1,\"samples\":1");
	assert_has(line, "\"labels\":[[\"__delta__\",\"false\"],"
		   "[\"__name__\",\"process_cpu\"],[\"cluster\",\"c1\"],"
		   "[\"env\",\"prod\"],[\"service_name\",\"checkout\"],"
		   "[\"zone\",\"a\"]]");
	assert_has(line, "\"Content-Type\":\"application/proto\"");
	assert_has(line, "\"Connect-Protocol-Version\":\"1\"");
	assert_has(line, "\"Connect-Timeout-Ms\":\"3000\"");
	assert_has(line, "\"User-Agent\":\"splitprof/" SPLITPROF_VERSION "\"");
	assert_has(line, "\"X-Scope-Orgid\":\"team-a\"");
	assert_has(line, "\"Authorization\":\"Basic YWxpY2U6czNjcmV0\"");
	cr_assert_null(strstr(line, "Content-Encoding"), "body must not be compressed");
	cr_assert_eq(json_int(line, "profile_size"), (long long)p.gz_len);
	sha256_hex(p.raw, p.raw_len, sha);
	assert_has(line, sha);
	/* and the saved, un-gzipped profile is byte for byte what we gave */
	snprintf(saved, sizeof(saved), "%s.0.pprof", r.log);
	back = malloc(p.raw_len + 1);
	f = fopen(saved, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fread(back, 1, p.raw_len + 1, f), p.raw_len);
	fclose(f);
	cr_assert_eq(memcmp(back, p.raw, p.raw_len), 0);
	st = stats(&e, 0);
	cr_assert_eq(st.sent_profiles, 1);
	cr_assert_eq(st.sent_bytes, p.gz_len);
	cr_assert_eq(st.dropped_profiles + st.retries + st.queue_bytes, 0);
	cr_assert_eq(st.latency_count, 1);
	cr_log_info("push request body: %lld bytes for a %zu-byte gzip'd profile "
		    "with 6 labels", json_int(line, "body_size"), p.gz_len);
	free(back);
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

Test(upload, bearer_token_and_authorization)
{
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_endpoint c[2];
	struct env e;
	struct prof p;
	char a[1 << 14], b[1 << 14];

	rcv_start(&r, "auth", NULL);
	c[0] = ep_cfg(url_of(&r, "http"));
	c[0].bearer_token = "tok123";
	c[1] = ep_cfg(url_of(&r, "http"));
	c[1].authorization_type = "Token";
	c[1].authorization_credentials = "xyz";
	c[1].enable_http2 = false;
	env_new(&e, c, 2, NULL);
	set(&ls, "service_name", "svc");
	prof_make(&p, 1000, 2, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	cr_assert(rcv_line(&r, 0, a, sizeof(a)) && rcv_line(&r, 1, b, sizeof(b)));
	cr_assert(strstr(a, "\"Authorization\":\"Bearer tok123\"") ||
		  strstr(b, "\"Authorization\":\"Bearer tok123\""));
	cr_assert(strstr(a, "\"Authorization\":\"Token xyz\"") ||
		  strstr(b, "\"Authorization\":\"Token xyz\""));
	/* no label but service_name given: __name__ is added */
	assert_has(a, "\"labels\":[[\"__name__\",\"process_cpu\"],"
		   "[\"service_name\",\"svc\"]]");
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

Test(upload, invalid_labels_dropped_and_counted)
{
	struct rcv r = { 0 };
	struct labelset bad = { 0 }, empty = { 0 }, good = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	struct env e;
	struct prof p;

	rcv_start(&r, "invalid", NULL);
	c = ep_cfg(url_of(&r, "http"));
	env_new(&e, &c, 1, NULL);
	prof_make(&p, 1000, 3, true);
	set(&bad, "service_name", "svc");
	set(&bad, "bad-name", "x");
	cr_assert_eq(submit(&e, &bad, &p), -EINVAL);
	labelset_clear(&bad);
	set(&bad, "service_name", "caf\xc3");	/* truncated UTF-8 */
	cr_assert_eq(submit(&e, &bad, &p), -EINVAL);
	cr_assert_eq(submit(&e, &empty, &p), -EINVAL);
	set(&good, "service_name", "svc");
	cr_assert_eq(submit(&e, &good, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	st = stats(&e, 0);
	cr_assert_eq(st.dropped_profiles, 3);
	cr_assert_eq(st.dropped_invalid, 3);
	cr_assert_eq(st.dropped_bytes, 3 * p.gz_len);
	cr_assert_eq(st.sent_profiles, 1);
	cr_assert_eq(rcv_count(&r), 1, "only the valid profile is sent");
	prof_free(&p);
	labelset_clear(&bad);
	labelset_clear(&good);
	env_free(&e);
	rcv_stop(&r);
}

/* ---- fan-out ------------------------------------------------------------ */

Test(upload, two_endpoints_slow_one_does_not_block, .timeout = 30)
{
	static const char *const slow_args[] = { "-delay", "5000", NULL };
	struct rcv fast = { 0 }, slow = { 0 };
	struct labelset ls = { 0 };
	struct cfg_endpoint c[2];
	char lf[1 << 14], ls_[1 << 14];
	struct env e;
	struct prof p[3];
	int64_t t0, t_fast, t_slow;
	int i;

	rcv_start(&fast, "fast", NULL);
	rcv_start(&slow, "slow", slow_args);
	c[0] = ep_cfg(url_of(&slow, "http"));
	c[0].remote_timeout_ns = 10000 * MS;
	c[1] = ep_cfg(url_of(&fast, "http"));
	env_new(&e, c, 2, NULL);
	set(&ls, "service_name", "svc");
	t0 = now_ms();
	for (i = 0; i < 3; i++) {
		prof_make(&p[i], 5000, 10 + i, true);
		cr_assert_eq(submit(&e, &ls, &p[i]), 0);
	}
	PUMP_UNTIL(&e, stats(&e, 1).sent_profiles == 3, 4000);
	t_fast = now_ms() - t0;
	cr_assert_eq(stats(&e, 1).sent_profiles, 3);
	/* well under the slow one's 5 s, with room for a loaded machine */
	cr_assert_lt(t_fast, 3000, "fast endpoint took %lld ms", (long long)t_fast);
	cr_assert_eq(stats(&e, 0).sent_profiles, 0, "slow one still busy");
	PUMP_UNTIL(&e, stats(&e, 0).sent_profiles >= 1, 8000);
	t_slow = now_ms() - t0;
	cr_assert_geq(t_slow, 4900);
	cr_assert_eq(stats(&e, 0).sent_profiles, 1);
	/* both got the same first profile */
	cr_assert(rcv_line(&fast, 0, lf, sizeof(lf)));
	cr_assert(rcv_line(&slow, 0, ls_, sizeof(ls_)));
	cr_assert_str_eq(strstr(lf, "\"profile_sha256\""),
			 strstr(ls_, "\"profile_sha256\""));
	cr_assert_eq(uploader_flush(e.u, 100), -ETIMEDOUT);
	cr_assert_eq(stats(&e, 0).dropped_profiles, 2, "left over at exit");
	for (i = 0; i < 3; i++)
		prof_free(&p[i]);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&fast);
	rcv_stop(&slow);
}

/* ---- retries -------------------------------------------------------------- */

Test(upload, retries_with_growing_backoff)
{
	/*
	 * The 5th answer comes after the 500 ms remote_timeout. The reset comes
	 * first: on a reused connection libcurl would transparently retry it.
	 */
	static const char *const args[] = {
		"-script", "reset,503,429,500,200@1500,200", NULL };
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char line[1 << 14], err[UPLOAD_ERR_MAX];
	long long t[6], gap;
	struct env e;
	struct prof p;
	int i;

	rcv_start(&r, "retry", args);
	c = ep_cfg(url_of(&r, "http"));
	c.remote_timeout_ns = 500 * MS;
	c.enable_http2 = false;
	env_new(&e, &c, 1, NULL);
	set(&ls, "service_name", "svc");
	prof_make(&p, 3000, 4, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 8000);
	st = stats(&e, 0);
	last_error(&e, 0, err);
	cr_assert_eq(st.sent_profiles, 1, "dropped %llu, last error %s",
		     (unsigned long long)st.dropped_profiles, err);
	cr_assert_eq(st.retries, 5, "retries %llu, arrivals %d, last error %s",
		     (unsigned long long)st.retries, rcv_count(&r), err);
	cr_assert_eq(st.dropped_profiles, 0);
	cr_assert_eq(rcv_count(&r), 6);
	for (i = 0; i < 6; i++) {
		cr_assert(rcv_line(&r, i, line, sizeof(line)));
		t[i] = json_int(line, "t_ms");
	}
	/*
	 * Retry k waits in [10*2^(k-1), 10*2^k) ms, capped at 200, and the one
	 * after the timeout also holds the 500 ms the attempt took. Only the
	 * lower bounds are asserted: a loaded machine delays a timer, never
	 * fires it early, so comparing one gap with the previous one (which
	 * may have been stretched) would fail at random. Lower bounds that
	 * double from 10 to 160 ms already prove the growth.
	 */
	for (i = 1; i < 6; i++) {
		long long lo = 10ll << (i - 1);

		gap = t[i] - t[i - 1];
		cr_log_info("retry %d after %lld ms", i, gap);
		cr_assert_geq(gap, (lo > 200 ? 200 : lo) - 2,
			      "retry %d after %lld ms, before its backoff", i,
			      gap);
	}
	cr_assert_geq(t[5] - t[4], 500);
	last_error(&e, 0, err);
	cr_assert_str_not_empty(err);
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

/* One attempt, dropped, for each status that must never be retried. */
Test(upload, no_retry_on_4xx)
{
	static const char *const statuses[] = { "400", "401", "403", "404",
						"413", "422" };
	struct labelset ls = { 0 };
	struct prof p;
	size_t i;

	set(&ls, "service_name", "svc");
	prof_make(&p, 1000, 5, true);
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		char script[16], name[16];
		const char *const args[] = { "-script", script, NULL };
		struct rcv r = { 0 };
		struct cfg_endpoint c;
		struct upload_stats st;
		struct env e;

		snprintf(script, sizeof(script), "%s,200", statuses[i]);
		snprintf(name, sizeof(name), "s%s", statuses[i]);
		rcv_start(&r, name, args);
		c = ep_cfg(url_of(&r, "http"));
		env_new(&e, &c, 1, NULL);
		cr_assert_eq(submit(&e, &ls, &p), 0);
		PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
		st = stats(&e, 0);
		cr_assert_eq(st.dropped_profiles, 1, "%s", statuses[i]);
		cr_assert_eq(st.retries, 0, "%s retried", statuses[i]);
		cr_assert_eq(st.sent_profiles, 0);
		cr_assert_eq(rcv_count(&r), 1, "%s: exactly one attempt", statuses[i]);
		env_free(&e);
		rcv_stop(&r);
	}
	prof_free(&p);
	labelset_clear(&ls);
}

Test(upload, http_429_not_retried_when_disabled)
{
	static const char *const args[] = { "-script", "429,200", NULL };
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_endpoint c;
	struct env e;
	struct prof p;
	char err[UPLOAD_ERR_MAX];

	rcv_start(&r, "429", args);
	c = ep_cfg(url_of(&r, "http"));
	c.retry_on_http_429 = false;
	env_new(&e, &c, 1, NULL);
	set(&ls, "service_name", "svc");
	prof_make(&p, 1000, 6, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	cr_assert_eq(stats(&e, 0).dropped_profiles, 1);
	cr_assert_eq(stats(&e, 0).retries, 0);
	cr_assert_eq(rcv_count(&r), 1);
	last_error(&e, 0, err);
	cr_assert_str_eq(err, "HTTP 429: resource_exhausted");
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

Test(upload, retries_exhausted_dropped)
{
	static const char *const args[] = { "-script", "503,503,503,503,503", NULL };
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	struct env e;
	struct prof p;

	rcv_start(&r, "exhausted", args);
	c = ep_cfg(url_of(&r, "http"));
	c.max_backoff_retries = 3;
	env_new(&e, &c, 1, NULL);
	set(&ls, "service_name", "svc");
	prof_make(&p, 1000, 7, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	st = stats(&e, 0);
	cr_assert_eq(rcv_count(&r), 3, "3 attempts in total");
	cr_assert_eq(st.retries, 2);
	cr_assert_eq(st.dropped_profiles, 1);
	cr_assert_eq(st.dropped_bytes, p.gz_len);
	cr_assert_eq(st.sent_profiles, 0);
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

/* ---- backend down ----------------------------------------------------------- */

Test(upload, backend_down_queue_capped_then_resumes, .timeout = 40)
{
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char url[64], line[1 << 14], sha[65];
	struct env e;
	struct prof p[50];
	int port = free_port(), i, j, n;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	c = ep_cfg(url);
	c.queue_max_bytes = 4u << 20;
	c.max_backoff_retries = 0;	/* unlimited */
	c.max_backoff_ns = 50 * MS;
	env_new(&e, &c, 1, NULL);
	set(&ls, "service_name", "svc");
	for (i = 0; i < 50; i++) {	/* one per "interval" */
		prof_make(&p[i], 1u << 20, 100 + i, false);
		cr_assert_eq(submit(&e, &ls, &p[i]), 0);
		PUMP_UNTIL(&e, false, 20);
		st = stats(&e, 0);
		cr_assert_leq(st.queue_bytes, c.queue_max_bytes);
	}
	st = stats(&e, 0);
	cr_assert_eq(st.queue_profiles, 4);
	cr_assert_eq(st.dropped_profiles, 46);
	cr_assert_eq(st.dropped_queue_full, 46);
	cr_assert_eq(st.dropped_bytes, 46ull << 20);
	cr_assert_gt(st.retries, 10);
	rcv_start_on_tmp(&r, port, "down", NULL);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 10000);
	st = stats(&e, 0);
	cr_assert_eq(st.sent_profiles, 4);
	cr_assert_eq(st.queue_bytes, 0);
	n = rcv_count(&r);
	cr_assert_eq(n, 4);
	/*
	 * The oldest were dropped: what arrives is recent and in order (one
	 * in flight when a newer profile came may have been kept), ending
	 * with the newest.
	 */
	for (i = 0, j = 40; i < n; i++) {
		cr_assert(rcv_line(&r, i, line, sizeof(line)));
		for (; j < 50; j++) {
			sha256_hex(p[j].raw, p[j].raw_len, sha);
			if (strstr(line, sha))
				break;
		}
		cr_assert_lt(j, 50, "arrival %d is not a recent profile", i);
		cr_log_info("arrival %d: profile %d", i, j);
		j++;
	}
	cr_assert_eq(j, 50, "the newest profile arrived last");
	for (i = 0; i < 50; i++)
		prof_free(&p[i]);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

/* ---- TLS ------------------------------------------------------------------ */

static char *slurp(const char *name)
{
	char path[PATH_MAX];
	FILE *f;
	char *buf = calloc(1, 65536);

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	(void)!fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A CA, a server cert (127.0.0.1 + one with only DNS:pyroscope.test),
 * a client cert, and an unrelated CA. */
static void make_certs(void)
{
	static const char *const keyopt =
		"-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

	sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.crt "
	   "-subj /CN=test-ca -days 2 2>/dev/null", tmpdir, keyopt);
	sh("cd %s && openssl req -x509 %s -keyout other.key -out other.crt "
	   "-subj /CN=other-ca -days 2 2>/dev/null", tmpdir, keyopt);
	sh("cd %s && printf 'subjectAltName=IP:127.0.0.1\\n' > srv.ext && "
	   "printf 'subjectAltName=DNS:pyroscope.test\\n' > dns.ext && "
	   "printf 'extendedKeyUsage=clientAuth\\n' > cli.ext", tmpdir);
	sh("cd %s && for n in srv dns cli; do "
	   "openssl req %s -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null && "
	   "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
	   "-CAcreateserial -days 2 -extfile $n.ext -out $n.crt 2>/dev/null "
	   "|| exit 1; done", tmpdir, keyopt);
}

static void tls_rcv(struct rcv *r, const char *name, const char *cert,
		    bool client_ca)
{
	char c[PATH_MAX], k[PATH_MAX], ca[PATH_MAX];
	const char *args[] = { "-cert", c, "-key", k,
			       client_ca ? "-clientca" : NULL, ca, NULL };

	snprintf(c, sizeof(c), "%s/%s.crt", tmpdir, cert);
	snprintf(k, sizeof(k), "%s/%s.key", tmpdir, cert);
	snprintf(ca, sizeof(ca), "%s/ca.crt", tmpdir);
	rcv_start(r, name, args);
}

/* Sends one profile; returns what the endpoint's counters say. */
static struct upload_stats send_one(const struct cfg_endpoint *c, char *err)
{
	struct labelset ls = { 0 };
	struct upload_stats st;
	struct env e;
	struct prof p;

	env_new(&e, c, 1, NULL);
	set(&ls, "service_name", "svc");
	prof_make(&p, 1000, 8, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	st = stats(&e, 0);
	last_error(&e, 0, err);
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	return st;
}

Test(upload, mtls)
{
	struct rcv r = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char line[1 << 14], err[UPLOAD_ERR_MAX], *cert, *key;

	make_certs();
	tls_rcv(&r, "mtls", "srv", true);
	c = ep_cfg(url_of(&r, "https"));
	c.tls.ca_pem = slurp("ca.crt");
	c.tls.cert_pem = cert = slurp("cli.crt");
	c.tls.key_pem = key = slurp("cli.key");
	c.tls.min_version = "TLS12";
	st = send_one(&c, err);
	cr_assert_eq(st.sent_profiles, 1, "mTLS failed: %s", err);
	cr_assert(rcv_line(&r, 0, line, sizeof(line)));
	assert_has(line, "\"client_cn\":\"cli\"");
	/* without the client certificate the server refuses */
	c.tls.cert_pem = NULL;
	c.tls.key_pem = NULL;
	c.max_backoff_retries = 2;
	st = send_one(&c, err);
	cr_assert_eq(st.dropped_profiles, 1);
	cr_log_info("no client cert: %s", err);
	free(c.tls.ca_pem);
	free(cert);
	free(key);
	rcv_stop(&r);
}

Test(upload, wrong_ca_fails_clearly)
{
	struct rcv r = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char err[UPLOAD_ERR_MAX];

	make_certs();
	tls_rcv(&r, "wrongca", "srv", false);
	c = ep_cfg(url_of(&r, "https"));
	c.tls.ca_pem = slurp("other.crt");
	c.max_backoff_retries = 2;
	st = send_one(&c, err);
	cr_assert_eq(st.dropped_profiles, 1);
	cr_assert_eq(st.sent_profiles, 0);
	cr_assert_not_null(strstr(err, "SSL certificate problem"), "error: %s", err);
	cr_log_info("wrong CA: %s", err);
	cr_assert_eq(rcv_count(&r), 0);
	free(c.tls.ca_pem);
	rcv_stop(&r);
}

Test(upload, insecure_skip_verify)
{
	struct rcv r = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char err[UPLOAD_ERR_MAX];

	make_certs();
	tls_rcv(&r, "insecure", "srv", false);
	c = ep_cfg(url_of(&r, "https"));
	c.tls.insecure_skip_verify = true;
	st = send_one(&c, err);
	cr_assert_eq(st.sent_profiles, 1, "%s", err);
	rcv_stop(&r);
}

Test(upload, tls_server_name)
{
	struct rcv r = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char err[UPLOAD_ERR_MAX];

	make_certs();
	tls_rcv(&r, "sni", "dns", false);	/* cert names pyroscope.test only */
	c = ep_cfg(url_of(&r, "https"));
	c.tls.ca_pem = slurp("ca.crt");
	c.max_backoff_retries = 1;
	st = send_one(&c, err);
	cr_assert_eq(st.dropped_profiles, 1, "127.0.0.1 is not in the cert");
	c.tls.server_name = "pyroscope.test";
	st = send_one(&c, err);
	cr_assert_eq(st.sent_profiles, 1, "server_name: %s", err);
	free(c.tls.ca_pem);
	rcv_stop(&r);
}

/* ---- /ingest ------------------------------------------------------------ */

Test(upload, ingest_query_and_body)
{
	struct rcv r = { 0 };
	struct labelset ls = { 0 };
	struct cfg_label ext_v[] = { { "env", "prod" } };
	struct cfg_labels ext = { ext_v, 1 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char line[1 << 14], sha[65];
	struct env e;
	struct prof p;

	rcv_start(&r, "ingest", NULL);
	c = ep_cfg(url_of(&r, "http"));
	c.api = ENDPOINT_API_INGEST;
	env_new(&e, &c, 1, &ext);
	set(&ls, "service_name", "ebpf/ns/app");
	set(&ls, "otel.scope.name", "com.grafana.alloy/pyroscope.ebpf");
	set(&ls, "note", "a,b");		/* ',' cannot be carried */
	set(&ls, "__delta__", "false");	/* reserved for /ingest */
	set(&ls, "__process_pid__", "7");	/* never on the wire anyway */
	prof_make(&p, 4000, 9, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	PUMP_UNTIL(&e, uploader_pending(e.u) == 0, 5000);
	cr_assert(rcv_line(&r, 0, line, sizeof(line)));
	assert_has(line, "\"path\":\"/ingest\"");
	assert_has(line, "\"query\":\"name=ebpf%2Fns%2Fapp%7Benv%3Dprod%2C"
		   "otel.scope.name%3Dcom.grafana.alloy%2Fpyroscope.ebpf%7D"
		   "\\u0026from=1700000000\\u0026until=1700000015"
		   "\\u0026format=pprof\\u0026sampleRate=97"
		   "\\u0026spyName=splitprof\"");
	assert_has(line, "\"User-Agent\":\"splitprof/" SPLITPROF_VERSION "\"");
	cr_assert_eq(json_int(line, "body_size"), (long long)p.gz_len);
	sha256_hex(p.raw, p.raw_len, sha);
	assert_has(line, sha);
	st = stats(&e, 0);
	cr_assert_eq(st.sent_profiles, 2);
	cr_assert_eq(st.ingest_labels_dropped, 4, "note and __delta__, twice");
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
	rcv_stop(&r);
}

Test(upload, flush_counts_what_is_left)
{
	struct labelset ls = { 0 };
	struct cfg_endpoint c;
	struct upload_stats st;
	char url[64];
	struct env e;
	struct prof p;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port());
	c = ep_cfg(url);
	c.max_backoff_retries = 0;
	env_new(&e, &c, 1, NULL);
	set(&ls, "service_name", "svc");
	prof_make(&p, 1000, 11, true);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	cr_assert_eq(submit(&e, &ls, &p), 0);
	cr_assert_eq(uploader_flush(e.u, 200), -ETIMEDOUT);
	st = stats(&e, 0);
	cr_assert_eq(st.dropped_profiles, 2);
	cr_assert_eq(st.queue_bytes, 0);
	cr_assert_eq(uploader_pending(e.u), 0);
	cr_assert_eq(uploader_flush(e.u, 200), 0);
	prof_free(&p);
	labelset_clear(&ls);
	env_free(&e);
}

/*
 * Host names are resolved once, before the sandbox: an endpoint whose name
 * does not resolve is a start-up error, not a silent failure later (inside
 * the sandbox the resolver cannot run at all).
 */
Test(upload, unresolvable_endpoint_is_a_startup_error)
{
	struct cfg_endpoint ep = ep_cfg("http://no-such-host.invalid:4040");
	struct loop *l;
	int err = 0;

	l = loop_new(LOOP_EPOLL, &err);
	cr_assert_not_null(l);
	cr_expect_null(uploader_new(l, &ep, 1, NULL, &err));
	cr_expect_eq(err, -EHOSTUNREACH, "err %d", err);
	loop_free(l);
}

Test(upload, proxy_from_environment_is_resolved_at_start)
{
	struct cfg_endpoint ep = ep_cfg("http://127.0.0.1:9");
	struct loop *l;
	int err = 0;

	ep.proxy_from_environment = true;
	cr_assert_eq(setenv("http_proxy", "http://no-such-proxy.invalid:3128", 1), 0);
	l = loop_new(LOOP_EPOLL, &err);
	cr_assert_not_null(l);
	cr_expect_null(uploader_new(l, &ep, 1, NULL, &err),
		       "the proxy's name must be resolved before the sandbox");
	cr_expect_eq(err, -EHOSTUNREACH, "err %d", err);
	loop_free(l);
}
