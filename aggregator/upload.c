/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upload.c - pyroscope.write on the aggregator's event loop.
 *
 * One CURLM for all endpoints; libcurl's sockets and its timer live in the
 * loop (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION). Each endpoint owns one
 * easy handle, reused for every request so its connection stays open, a
 * FIFO of payloads and one loop timer for backoff. One request in flight
 * per endpoint, as Alloy's Append is sequential; endpoints never wait for
 * each other.
 *
 * A payload is built once per submitted profile (labels prepared, the
 * PushRequest encoded, the /ingest query built) and shared, refcounted,
 * by every endpoint queue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "push.pb-c.h"
#include "sp_log.h"
#include "upload.h"
#include "upload_labels.h"

#define RESP_MAX		1024	/* error bodies kept for their "code" */
#define CA_BUNDLE_MAX		(4u << 20)
#define WARNED_KEYS_MAX		64
#define WARN_INTERVAL_NS	1000000000ll
#define DEFAULT_TIMEOUT_NS	10000000000ull
#define DEFAULT_MIN_BACKOFF_NS	500000000ull
#define DEFAULT_MAX_BACKOFF_NS	300000000000ull

const double upload_latency_bounds[UPLOAD_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

struct payload {
	unsigned refs;
	uint64_t size;			/* raw_profile bytes, for the counters */
	uint8_t *push_body;		/* encoded PushRequest */
	size_t push_len;
	uint8_t *gz;			/* /ingest body */
	char *query;			/* /ingest query; NULL: bad app name */
	unsigned ingest_dropped;	/* labels /ingest cannot carry */
};

struct qitem {
	struct qitem *next;
	struct payload *p;
};

enum { EP_IDLE, EP_IN_FLIGHT, EP_BACKOFF };

struct endpoint {
	struct uploader *u;
	char *name;
	char *url;			/* .../push.v1.PusherService/Push or .../ingest */
	int api;
	CURL *easy;
	struct curl_slist *headers, *connect_to, *resolve;
	uint64_t min_backoff_ns, max_backoff_ns, queue_max;
	uint32_t max_attempts;		/* 0: unlimited */
	bool retry_429;
	bool ca_loaded;			/* system CA bundle read at start */
	struct qitem *head, *tail;	/* waiting, oldest first */
	struct payload *cur;		/* being sent or waiting to retry */
	int state;
	uint32_t attempts;
	int timer;
	int64_t t0_ns;
	char resp[RESP_MAX];
	size_t resp_len;
	char errbuf[CURL_ERROR_SIZE];
	char last_error[UPLOAD_ERR_MAX];
	struct upload_stats st;
};

struct uploader {
	struct loop *loop;
	CURLM *multi;
	int curl_timer;
	struct endpoint *eps;
	size_t n;
	struct labelset ext;
	bool have_push, have_ingest;
	uint64_t rng;
	int *fds;			/* sockets libcurl has in the loop */
	size_t nfds, capfds;
	char *warned[WARNED_KEYS_MAX];
	size_t nwarned;
	int64_t last_warn_ns;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* xorshift64*: backoff jitter needs spread, not secrecy. */
static uint64_t rng_next(struct uploader *u)
{
	u->rng ^= u->rng >> 12;
	u->rng ^= u->rng << 25;
	u->rng ^= u->rng >> 27;
	return u->rng * 2685821657736338717ull;
}

/* ---- payloads ------------------------------------------------------------ */

static void payload_unref(struct payload *p)
{
	if (!p || --p->refs)
		return;
	free(p->push_body);
	free(p->gz);
	free(p->query);
	free(p);
}

static int encode_push(struct payload *p, const struct labelset *ls,
		       const void *gz, size_t len)
{
	Push__V1__PushRequest req;
	Push__V1__RawProfileSeries series, *sp = &series;
	Push__V1__RawSample sample, *smp = &sample;
	Types__V1__LabelPair lp[LABELS_MAX], *lpp[LABELS_MAX];
	size_t i;

	push__v1__push_request__init(&req);
	push__v1__raw_profile_series__init(&series);
	push__v1__raw_sample__init(&sample);
	for (i = 0; i < ls->n; i++) {
		types__v1__label_pair__init(&lp[i]);
		lp[i].name = ls->v[i].name;
		lp[i].value = ls->v[i].value;
		lpp[i] = &lp[i];
	}
	/* protobuf-c's bytes are non-const but only read when packing. */
	sample.raw_profile.data = (uint8_t *)(uintptr_t)gz;
	sample.raw_profile.len = len;
	series.n_labels = ls->n;
	series.labels = lpp;
	series.n_samples = 1;
	series.samples = &smp;
	req.n_series = 1;
	req.series = &sp;
	p->push_len = push__v1__push_request__get_packed_size(&req);
	p->push_body = malloc(p->push_len);
	if (!p->push_body)
		return -ENOMEM;
	push__v1__push_request__pack(&req, p->push_body);
	return 0;
}

struct drop_ctx {
	struct uploader *u;
	struct payload *p;
};

/* Once per key, at most one line a second: a label config mistake
 * shows up once, and a flood of new keys cannot flood the log. */
static void ingest_label_dropped(void *arg, const char *name, const char *why)
{
	struct drop_ctx *ctx = arg;
	struct uploader *u = ctx->u;
	int64_t now = mono_ns();
	size_t i;
	char *k;

	ctx->p->ingest_dropped++;
	for (i = 0; i < u->nwarned; i++)
		if (!strcmp(u->warned[i], name))
			return;
	if (u->nwarned == WARNED_KEYS_MAX ||
	    (u->last_warn_ns && now - u->last_warn_ns < WARN_INTERVAL_NS))
		return;
	k = strdup(name);
	if (!k)
		return;
	u->warned[u->nwarned++] = k;
	u->last_warn_ns = now;
	log_warnx("upload: /ingest cannot carry label '%s' (%s): dropped",
		  name, why);
}

static int build_ingest(struct uploader *u, struct payload *p,
			const struct labelset *ls, const void *gz, size_t len,
			int64_t from_ns, int64_t until_ns, uint32_t rate)
{
	struct drop_ctx ctx = { u, p };
	int r;

	p->gz = malloc(len ? len : 1);
	if (!p->gz)
		return -ENOMEM;
	memcpy(p->gz, gz, len);
	r = upload_ingest_query(ls, from_ns / 1000000000ll,
				until_ns / 1000000000ll, rate,
				ingest_label_dropped, &ctx, &p->query);
	return r == -EINVAL ? 0 : r;	/* no query: dropped per endpoint */
}

static struct payload *payload_new(struct uploader *u,
				   const struct labelset *ls, const void *gz,
				   size_t len, int64_t from_ns,
				   int64_t until_ns, uint32_t rate)
{
	struct payload *p = calloc(1, sizeof(*p));
	int r = 0;

	if (!p)
		return NULL;
	p->refs = 1;
	p->size = len;
	if (u->have_push)
		r = encode_push(p, ls, gz, len);
	if (r == 0 && u->have_ingest)
		r = build_ingest(u, p, ls, gz, len, from_ns, until_ns, rate);
	if (r < 0) {
		payload_unref(p);
		return NULL;
	}
	return p;
}

/* ---- per-endpoint queue ----------------------------------------------- */

static int ep_send(struct endpoint *ep);

static void ep_release(struct endpoint *ep, struct payload *p)
{
	ep->st.queue_bytes -= p->size;
	ep->st.queue_profiles--;
	payload_unref(p);
}

static void ep_count_drop(struct endpoint *ep, const struct payload *p)
{
	ep->st.dropped_profiles++;
	ep->st.dropped_bytes += p->size;
}

static void ep_start_next(struct endpoint *ep)
{
	struct qitem *q;

	while (!ep->cur && ep->head) {
		q = ep->head;
		ep->head = q->next;
		if (!ep->head)
			ep->tail = NULL;
		ep->cur = q->p;
		free(q);
		ep->attempts = 0;
		if (ep_send(ep) < 0) {
			ep_count_drop(ep, ep->cur);
			ep_release(ep, ep->cur);
			ep->cur = NULL;
		}
	}
}

/* The current payload is done with: sent, or dropped and counted. */
static void ep_finish(struct endpoint *ep, bool sent)
{
	if (sent) {
		ep->st.sent_profiles++;
		ep->st.sent_bytes += ep->cur->size;
	} else {
		ep_count_drop(ep, ep->cur);
	}
	ep_release(ep, ep->cur);
	ep->cur = NULL;
	ep->state = EP_IDLE;
	ep_start_next(ep);
}

/* queue_full: evicted to make room (counted apart from drops at exit). */
static void ep_drop_oldest(struct endpoint *ep, bool queue_full)
{
	struct qitem *q = ep->head;

	ep->head = q->next;
	if (!ep->head)
		ep->tail = NULL;
	ep_count_drop(ep, q->p);
	ep->st.dropped_queue_full += queue_full;
	ep_release(ep, q->p);
	free(q);
}

/*
 * Make room for size bytes by dropping the oldest: the one waiting to
 * retry, then the waiting ones. A request in flight is left to finish;
 * if it alone leaves no room, false (the new one is dropped).
 */
static bool ep_make_room(struct endpoint *ep, uint64_t size)
{
	while (ep->st.queue_bytes + size > ep->queue_max) {
		if (ep->cur && ep->state == EP_BACKOFF) {
			(void)loop_mod_timer(ep->u->loop, ep->timer, 0, 0);
			ep->st.dropped_queue_full++;
			ep_count_drop(ep, ep->cur);
			ep_release(ep, ep->cur);
			ep->cur = NULL;
			ep->state = EP_IDLE;
		} else if (ep->head) {
			ep_drop_oldest(ep, true);
		} else {
			return false;
		}
	}
	return true;
}

static void ep_enqueue(struct endpoint *ep, struct payload *p)
{
	struct qitem *q;

	if (ep->api == ENDPOINT_API_INGEST) {
		ep->st.ingest_labels_dropped += p->ingest_dropped;
		if (!p->query) {
			ep->st.dropped_invalid++;
			ep_count_drop(ep, p);
			return;
		}
	}
	if (!ep_make_room(ep, p->size) || !(q = calloc(1, sizeof(*q)))) {
		ep->st.dropped_queue_full++;
		ep_count_drop(ep, p);
		ep_start_next(ep);
		return;
	}
	p->refs++;
	q->p = p;
	if (ep->tail)
		ep->tail->next = q;
	else
		ep->head = q;
	ep->tail = q;
	ep->st.queue_bytes += p->size;
	ep->st.queue_profiles++;
	ep_start_next(ep);
}

/* ---- one attempt ---------------------------------------------------------- */

static int ep_set_body(struct endpoint *ep)
{
	const struct payload *p = ep->cur;
	CURLcode c;
	char *url;

	if (ep->api == ENDPOINT_API_PUSH) {
		c = curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				     (curl_off_t)p->push_len);
		if (c == CURLE_OK)
			c = curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDS,
					     p->push_body);
		return c == CURLE_OK ? 0 : -EINVAL;
	}
	if (asprintf(&url, "%s?%s", ep->url, p->query) < 0)
		return -ENOMEM;
	c = curl_easy_setopt(ep->easy, CURLOPT_URL, url);
	free(url);
	if (c == CURLE_OK)
		c = curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				     (curl_off_t)p->size);
	if (c == CURLE_OK)
		c = curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDS, p->gz);
	return c == CURLE_OK ? 0 : -EINVAL;
}

static int ep_send(struct endpoint *ep)
{
	int r = ep_set_body(ep);

	if (r < 0)
		return r;
	ep->resp_len = 0;
	ep->errbuf[0] = '\0';
	ep->attempts++;
	ep->t0_ns = mono_ns();
	if (curl_multi_add_handle(ep->u->multi, ep->easy) != CURLM_OK)
		return -EIO;
	ep->state = EP_IN_FLIGHT;
	return 0;
}

static size_t ep_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct endpoint *ep = arg;
	size_t n = size * nmemb, room = sizeof(ep->resp) - 1 - ep->resp_len;

	memcpy(ep->resp + ep->resp_len, data, n < room ? n : room);
	ep->resp_len += n < room ? n : room;
	ep->resp[ep->resp_len] = '\0';
	return n;	/* the rest is read and ignored */
}

/* ---- retry policy (reference section 4.4) --------------------------------- */

enum { OUT_OK, OUT_RETRY, OUT_FAIL };

/* Local mistakes a retry cannot fix; every other transport error (refused,
 * reset, timeout, TLS handshake) is Connect's "unavailable" or a deadline,
 * which Alloy retries. */
static bool transport_retryable(CURLcode c)
{
	switch (c) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_TOO_MANY_REDIRECTS:
		return false;
	default:
		return true;
	}
}

/* The "code" of a Connect JSON error body, or "" (not found). */
static void connect_code(const char *body, char *out, size_t outlen)
{
	const char *s = strstr(body, "\"code\"");
	size_t n = 0;

	out[0] = '\0';
	if (!s)
		return;
	s += 6;
	s += strspn(s, " \t\r\n");
	if (*s++ != ':')
		return;
	s += strspn(s, " \t\r\n");
	if (*s++ != '"')
		return;
	while (s[n] && s[n] != '"' && n + 1 < outlen)
		n++;
	memcpy(out, s, n);
	out[n] = '\0';
}

static int classify_code(const struct endpoint *ep, const char *code)
{
	static const char *const retry[] = {
		"unavailable", "internal", "unknown", "aborted", "data_loss",
		"deadline_exceeded",
	};
	size_t i;

	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		if (!strcmp(code, retry[i]))
			return OUT_RETRY;
	if (!strcmp(code, "resource_exhausted"))
		return ep->retry_429 ? OUT_RETRY : OUT_FAIL;
	return OUT_FAIL;
}

static int classify_http(const struct endpoint *ep, long status,
			 const char *ctype, const char *code)
{
	if (status >= 200 && status < 300)
		return OUT_OK;
	switch (status) {
	case 400: case 401: case 403: case 404: case 413: case 422:
		return OUT_FAIL;	/* the request itself is wrong */
	case 429:
		return ep->retry_429 ? OUT_RETRY : OUT_FAIL;
	}
	if (ep->api == ENDPOINT_API_PUSH && ctype && code[0] &&
	    !strncmp(ctype, "application/json", 16))
		return classify_code(ep, code);
	return status == 408 || status >= 500 ? OUT_RETRY : OUT_FAIL;
}

static int ep_classify(struct endpoint *ep, CURLcode c)
{
	char code[32];
	char *ctype = NULL;
	long status = 0;
	int out;

	if (c != CURLE_OK) {
		snprintf(ep->last_error, sizeof(ep->last_error), "%s",
			 ep->errbuf[0] ? ep->errbuf : curl_easy_strerror(c));
		return transport_retryable(c) ? OUT_RETRY : OUT_FAIL;
	}
	(void)curl_easy_getinfo(ep->easy, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_easy_getinfo(ep->easy, CURLINFO_CONTENT_TYPE, &ctype);
	connect_code(ep->resp, code, sizeof(code));
	out = classify_http(ep, status, ctype, code);
	if (out != OUT_OK)
		snprintf(ep->last_error, sizeof(ep->last_error), "HTTP %ld%s%s",
			 status, code[0] ? ": " : "", code);
	return out;
}

/* Retry k (k >= 1) waits uniform in [min*2^(k-1), min*2^k), capped at max. */
static uint64_t ep_backoff_ns(struct endpoint *ep, uint32_t k)
{
	uint64_t lo = ep->min_backoff_ns;

	while (--k && lo < ep->max_backoff_ns)
		lo *= 2;
	if (lo >= ep->max_backoff_ns)
		return ep->max_backoff_ns;
	lo += rng_next(ep->u) % lo;
	return lo < ep->max_backoff_ns ? lo : ep->max_backoff_ns;
}

static void ep_observe_latency(struct endpoint *ep)
{
	uint64_t ns = (uint64_t)(mono_ns() - ep->t0_ns);
	double s = (double)ns / 1e9;
	size_t i = 0;

	while (i < UPLOAD_LATENCY_BUCKETS && s > upload_latency_bounds[i])
		i++;
	ep->st.latency_counts[i]++;
	ep->st.latency_sum_ns += ns;
	ep->st.latency_count++;
}

static void ep_done(struct endpoint *ep, CURLcode c)
{
	int out = ep_classify(ep, c);

	(void)curl_multi_remove_handle(ep->u->multi, ep->easy);
	ep_observe_latency(ep);
	if (out == OUT_OK || out == OUT_FAIL ||
	    (ep->max_attempts && ep->attempts >= ep->max_attempts)) {
		ep_finish(ep, out == OUT_OK);
		return;
	}
	ep->st.retries++;
	ep->state = EP_BACKOFF;
	if (loop_mod_timer(ep->u->loop, ep->timer,
			   ep_backoff_ns(ep, ep->attempts), 0) < 0)
		ep_finish(ep, false);
}

static void ep_backoff_done(struct loop *l, int id, void *arg)
{
	struct endpoint *ep = arg;

	(void)l;
	(void)id;
	if (ep->state != EP_BACKOFF || !ep->cur)
		return;
	if (ep_send(ep) < 0)
		ep_finish(ep, false);
}

/* ---- libcurl multi on the loop -------------------------------------------- */

static void check_done(struct uploader *u)
{
	struct endpoint *ep;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(u->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		ep = NULL;
		(void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &ep);
		if (ep && ep->state == EP_IN_FLIGHT)
			ep_done(ep, m->data.result);
	}
}

static void on_fd(struct loop *l, int fd, uint32_t revents, void *arg)
{
	struct uploader *u = arg;
	int flags = 0, running;

	(void)l;
	if (revents & (POLLIN | POLLHUP | POLLRDHUP))
		flags |= CURL_CSELECT_IN;
	if (revents & POLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & POLLERR)
		flags |= CURL_CSELECT_ERR;
	(void)curl_multi_socket_action(u->multi, fd, flags, &running);
	check_done(u);
}

static void on_curl_timer(struct loop *l, int id, void *arg)
{
	struct uploader *u = arg;
	int running;

	(void)l;
	(void)id;
	(void)curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0,
				       &running);
	check_done(u);
}

static int fds_add(struct uploader *u, int fd)
{
	int *v;

	if (u->nfds == u->capfds) {
		v = reallocarray(u->fds, u->capfds ? u->capfds * 2 : 8,
				 sizeof(*v));
		if (!v)
			return -ENOMEM;
		u->fds = v;
		u->capfds = u->capfds ? u->capfds * 2 : 8;
	}
	u->fds[u->nfds++] = fd;
	return 0;
}

static void fds_del(struct uploader *u, int fd)
{
	size_t i;

	for (i = 0; i < u->nfds; i++)
		if (u->fds[i] == fd) {
			u->fds[i] = u->fds[--u->nfds];
			return;
		}
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp,
		     void *socketp)
{
	struct uploader *u = userp;
	uint32_t ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			(void)loop_del_fd(u->loop, s);
			fds_del(u, s);
			(void)curl_multi_assign(u->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= POLLIN;
	if (what & CURL_POLL_OUT)
		ev |= POLLOUT;
	if (socketp)
		return loop_mod_fd(u->loop, s, ev) < 0 ? -1 : 0;
	if (fds_add(u, s) < 0)
		return -1;
	if (loop_add_fd(u->loop, s, ev, on_fd, u) < 0) {
		fds_del(u, s);
		return -1;
	}
	(void)curl_multi_assign(u->multi, s, u);
	return 0;
}

/* libcurl asks to be called after timeout_ms; -1 cancels. Calling it from
 * here is forbidden, so even 0 goes through the loop. */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct uploader *u = userp;
	uint64_t ns = timeout_ms < 0 ? 0 :
		      timeout_ms == 0 ? 1 : (uint64_t)timeout_ms * 1000000ull;

	(void)m;
	return loop_mod_timer(u->loop, u->curl_timer, ns, 0) < 0 ? -1 : 0;
}

/* ---- endpoint set-up -------------------------------------------------------- */

#define SETOPT(ep, opt, val) \
	(curl_easy_setopt((ep)->easy, (opt), (val)) == CURLE_OK ? 0 : -EINVAL)

static int add_header(struct curl_slist **l, const char *name,
		      const char *value)
{
	struct curl_slist *n;
	char *h;

	/* A CR or LF would let a config value inject headers. */
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") || !*name)
		return -EINVAL;
	if (asprintf(&h, "%s: %s", name, value) < 0)
		return -ENOMEM;
	n = curl_slist_append(*l, h);
	free(h);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

static int ep_set_auth(struct endpoint *ep, const struct cfg_endpoint *c)
{
	char *v = NULL;
	int r = 0;

	if (c->basic_username || c->basic_password) {
		r = SETOPT(ep, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		if (!r)
			r = SETOPT(ep, CURLOPT_USERNAME,
				   c->basic_username ? c->basic_username : "");
		if (!r)
			r = SETOPT(ep, CURLOPT_PASSWORD,
				   c->basic_password ? c->basic_password : "");
		return r;
	}
	if (c->bearer_token)
		r = asprintf(&v, "Bearer %s", c->bearer_token);
	else if (c->authorization_credentials)
		r = asprintf(&v, "%s %s", c->authorization_type ?
			     c->authorization_type : "Bearer",
			     c->authorization_credentials);
	if (r < 0)
		return -ENOMEM;
	if (v)
		r = add_header(&ep->headers, "Authorization", v);
	free(v);
	return r;
}

static int ep_set_headers(struct endpoint *ep, const struct cfg_endpoint *c,
			  uint64_t timeout_ms)
{
	char ms[24];
	size_t i;
	int r;

	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)timeout_ms);
	if (ep->api == ENDPOINT_API_PUSH) {
		r = add_header(&ep->headers, "Content-Type", "application/proto");
		if (!r)
			r = add_header(&ep->headers, "Connect-Protocol-Version", "1");
		if (!r)
			r = add_header(&ep->headers, "Connect-Timeout-Ms", ms);
	} else {
		/* raw pprof body: anything but multipart or a form */
		r = add_header(&ep->headers, "Content-Type",
			       "application/octet-stream");
	}
	/* libcurl would wait up to 1 s for "100 Continue" on big bodies. */
	if (!r && !(ep->headers = curl_slist_append(ep->headers, "Expect:")))
		r = -ENOMEM;
	for (i = 0; !r && i < c->headers.n; i++)
		r = add_header(&ep->headers, c->headers.v[i].name,
			       c->headers.v[i].value);
	if (!r)
		r = ep_set_auth(ep, c);
	return r ? r : SETOPT(ep, CURLOPT_HTTPHEADER, ep->headers);
}

static int set_blob(struct endpoint *ep, CURLoption opt, const char *pem)
{
	struct curl_blob b = {
		.data = (void *)(uintptr_t)pem,	/* copied: CURL_BLOB_COPY */
		.len = strlen(pem),
		.flags = CURL_BLOB_COPY,
	};

	return SETOPT(ep, opt, &b);
}

/*
 * Without a configured CA the system bundle is read now, once, because a
 * sandboxed aggregator cannot open it when the first connection is made.
 */
static int set_system_ca(struct endpoint *ep)
{
	char *path = NULL, *buf;
	size_t len;
	FILE *f;
	int r;

	(void)curl_easy_getinfo(ep->easy, CURLINFO_CAINFO, &path);
	if (!path || !(f = fopen(path, "re")))
		return 0;	/* libcurl will try its default itself */
	buf = malloc(CA_BUNDLE_MAX + 1);
	len = buf ? fread(buf, 1, CA_BUNDLE_MAX, f) : 0;
	fclose(f);
	if (!buf)
		return -ENOMEM;
	buf[len] = '\0';
	r = len ? set_blob(ep, CURLOPT_CAINFO_BLOB, buf) : 0;
	ep->ca_loaded = len && !r;
	free(buf);
	return r;
}

static int tls_version(const char *v, long *out)
{
	static const struct { const char *name; long v; } t[] = {
		{ "TLS10", CURL_SSLVERSION_TLSv1_0 },
		{ "TLS11", CURL_SSLVERSION_TLSv1_1 },
		{ "TLS12", CURL_SSLVERSION_TLSv1_2 },
		{ "TLS13", CURL_SSLVERSION_TLSv1_3 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(v, t[i].name)) {
			*out = t[i].v;
			return 0;
		}
	return -EINVAL;
}

static int ep_set_tls(struct endpoint *ep, const struct cfg_tls *t)
{
	long ver;
	int r = 0;

	if (t->ca_pem)
		r = set_blob(ep, CURLOPT_CAINFO_BLOB, t->ca_pem);
	else if (!t->insecure_skip_verify && !strncmp(ep->url, "https:", 6))
		r = set_system_ca(ep);
	/* With a blob in place, no CA file or folder is opened at connect
	 * time (the sandbox would refuse it). */
	if (!r && (t->ca_pem || ep->ca_loaded))
		r = SETOPT(ep, CURLOPT_CAINFO, (char *)NULL);
	if (!r && (t->ca_pem || ep->ca_loaded))
		r = SETOPT(ep, CURLOPT_CAPATH, (char *)NULL);
	if (!r && t->cert_pem)
		r = set_blob(ep, CURLOPT_SSLCERT_BLOB, t->cert_pem);
	if (!r && t->cert_pem)
		r = SETOPT(ep, CURLOPT_SSLCERTTYPE, "PEM");
	if (!r && t->key_pem)
		r = set_blob(ep, CURLOPT_SSLKEY_BLOB, t->key_pem);
	if (!r && t->key_pem)
		r = SETOPT(ep, CURLOPT_SSLKEYTYPE, "PEM");
	if (!r && t->insecure_skip_verify)
		r = SETOPT(ep, CURLOPT_SSL_VERIFYPEER, 0L);
	if (!r && t->insecure_skip_verify)
		r = SETOPT(ep, CURLOPT_SSL_VERIFYHOST, 0L);
	if (!r && t->min_version)
		r = tls_version(t->min_version, &ver);
	if (!r && t->min_version)
		r = SETOPT(ep, CURLOPT_SSLVERSION, ver);
	return r;
}

static int ep_set_proxy(struct endpoint *ep, const struct cfg_endpoint *c)
{
	int r = 0;

	if (c->proxy_url)
		r = SETOPT(ep, CURLOPT_PROXY, c->proxy_url);
	else if (!c->proxy_from_environment)
		r = SETOPT(ep, CURLOPT_PROXY, "");	/* "": ignore *_proxy env */
	if (!r && c->no_proxy)
		r = SETOPT(ep, CURLOPT_NOPROXY, c->no_proxy);
	return r;
}

static int ep_set_basics(struct endpoint *ep, const struct cfg_endpoint *c,
			 uint64_t timeout_ms)
{
	int r;

	r = SETOPT(ep, CURLOPT_URL, ep->url);
	r = r ? r : SETOPT(ep, CURLOPT_PRIVATE, ep);
	r = r ? r : SETOPT(ep, CURLOPT_POST, 1L);
	r = r ? r : SETOPT(ep, CURLOPT_NOSIGNAL, 1L);
	r = r ? r : SETOPT(ep, CURLOPT_PROTOCOLS_STR, "http,https");
	r = r ? r : SETOPT(ep, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	r = r ? r : SETOPT(ep, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	r = r ? r : SETOPT(ep, CURLOPT_USERAGENT, "splitprof/" SPLITPROF_VERSION);
	r = r ? r : SETOPT(ep, CURLOPT_ACCEPT_ENCODING, "gzip");
	r = r ? r : SETOPT(ep, CURLOPT_WRITEFUNCTION, ep_write_cb);
	r = r ? r : SETOPT(ep, CURLOPT_WRITEDATA, ep);
	r = r ? r : SETOPT(ep, CURLOPT_ERRORBUFFER, ep->errbuf);
	r = r ? r : SETOPT(ep, CURLOPT_FOLLOWLOCATION, c->follow_redirects ? 1L : 0L);
	r = r ? r : SETOPT(ep, CURLOPT_MAXREDIRS, 10L);	/* Go's limit */
	r = r ? r : SETOPT(ep, CURLOPT_HTTP_VERSION, c->enable_http2 ?
			   (long)CURL_HTTP_VERSION_2TLS :
			   (long)CURL_HTTP_VERSION_1_1);
	return r;
}

/*
 * tls server_name: verify (and send as SNI) a name other than the URL's
 * host. libcurl verifies the URL's host, so the URL is rewritten to
 * server_name, CONNECT_TO sends the connection to the real host, and a
 * Host header keeps what the server sees as Go would send it.
 */
static int rewrite_server_name(char **url, const char *server_name,
			       struct curl_slist **connect_to,
			       struct curl_slist **headers)
{
	char *host = NULL, *port = NULL, *eport = NULL, *hostport = NULL;
	char *ct = NULL, *nu = NULL;
	CURLU *h = curl_url();
	int r = -EINVAL;

	if (!h || curl_url_set(h, CURLUPART_URL, *url, 0) ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT))
		goto out;
	if (asprintf(&ct, "%s:%s:%s:%s", server_name, port, host, port) < 0 ||
	    !(*connect_to = curl_slist_append(*connect_to, ct)))
		goto out;
	hostport = host;
	if (!curl_url_get(h, CURLUPART_PORT, &eport, 0) &&
	    asprintf(&hostport, "%s:%s", host, eport) < 0)
		goto out;
	if (add_header(headers, "Host", hostport) < 0 ||
	    curl_url_set(h, CURLUPART_HOST, server_name, 0) ||
	    curl_url_get(h, CURLUPART_URL, &nu, 0))
		goto out;
	free(*url);
	*url = strdup(nu);
	r = *url ? 0 : -ENOMEM;
out:
	if (hostport != host)
		free(hostport);
	free(ct);
	curl_free(nu);
	curl_free(host);
	curl_free(port);
	curl_free(eport);
	curl_url_cleanup(h);
	return r;
}

static int ep_build_url(struct endpoint *ep, const struct cfg_endpoint *c)
{
	size_t len;
	char *base;
	int r = 0;

	if (!c->url || !*c->url)
		return -EINVAL;
	base = strdup(c->url);
	if (!base)
		return -ENOMEM;
	len = strlen(base);
	while (len && base[len - 1] == '/')	/* as connect-go trims it */
		base[--len] = '\0';
	if (c->tls.server_name && *c->tls.server_name)
		r = rewrite_server_name(&base, c->tls.server_name,
					&ep->connect_to, &ep->headers);
	if (!r && asprintf(&ep->url, "%s%s", base,
			   ep->api == ENDPOINT_API_PUSH ?
			   "/push.v1.PusherService/Push" : "/ingest") < 0)
		r = -ENOMEM;
	free(base);
	return r;
}

static void ep_defaults(struct endpoint *ep, const struct cfg_endpoint *c)
{
	ep->api = c->api;
	ep->min_backoff_ns = c->min_backoff_ns ? c->min_backoff_ns :
			     DEFAULT_MIN_BACKOFF_NS;
	ep->max_backoff_ns = c->max_backoff_ns ? c->max_backoff_ns :
			     DEFAULT_MAX_BACKOFF_NS;
	if (ep->max_backoff_ns < ep->min_backoff_ns)
		ep->max_backoff_ns = ep->min_backoff_ns;
	ep->max_attempts = c->max_backoff_retries;
	ep->retry_429 = c->retry_on_http_429;
	ep->queue_max = c->queue_max_bytes ? c->queue_max_bytes :
			UPLOAD_QUEUE_DEFAULT;
	ep->timer = -1;
}

/* ---- DNS, once, before the sandbox ---------------------------------------- */

/* "a.b.c.d" or "[v6]" into out; 0 or -1. */
static int addr_text(const struct addrinfo *ai, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	const void *a;

	if (ai->ai_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
	else if (ai->ai_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
	else
		return -1;
	if (!inet_ntop(ai->ai_family, a, ip, sizeof(ip)))
		return -1;
	return snprintf(out, len, ai->ai_family == AF_INET6 ? "[%s]" : "%s",
			ip) < (int)len ? 0 : -1;
}

/* "host:port:addr1,addr2,..." for CURLOPT_RESOLVE. */
static int resolve_entry(const char *host, long port, char *out, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	size_t n;
	int r;

	r = getaddrinfo(host, NULL, &hints, &res);
	if (r != 0) {
		log_warnx("upload: cannot resolve %s: %s (endpoint names are "
			  "resolved once, at start)", host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	n = (size_t)snprintf(out, len, "%s:%ld:", host, port);
	for (ai = res; ai && n + INET6_ADDRSTRLEN + 4 < len; ai = ai->ai_next) {
		if (out[n - 1] != ':')
			out[n++] = ',';
		if (addr_text(ai, out + n, len - n) == 0)
			n += strlen(out + n);
		else if (out[n - 1] == ',')
			n--;
	}
	out[n] = '\0';
	freeaddrinfo(res);
	return out[n - 1] == ':' ? -EHOSTUNREACH : 0;
}

/*
 * Pin the address of url's host (an endpoint or a proxy). Inside the
 * sandbox glibc's resolver could not read /etc/resolv.conf (Landlock) and
 * its netlink probe would be killed (seccomp), and libcurl would resolve in
 * a thread of its own; so names are resolved here, once, and libcurl finds
 * them in its DNS cache (CURLOPT_RESOLVE entries never expire). An IP
 * literal needs nothing. The price: a new address for the name needs a
 * restart.
 */
static int pin_url_host(struct endpoint *ep, const char *url)
{
	char *host = NULL, *port = NULL, entry[1024];
	struct curl_slist *n;
	unsigned char buf[sizeof(struct in6_addr)];
	CURLU *h = curl_url();
	int r = -EINVAL;

	if (!h)
		return -ENOMEM;
	if (curl_url_set(h, CURLUPART_URL, url, CURLU_GUESS_SCHEME) ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT))
		goto out;
	r = 0;
	if (host[0] == '[' || inet_pton(AF_INET, host, buf) == 1)
		goto out;
	r = resolve_entry(host, strtol(port, NULL, 10), entry, sizeof(entry));
	if (r == 0 && !(n = curl_slist_append(ep->resolve, entry)))
		r = -ENOMEM;
	else if (r == 0)
		ep->resolve = n;
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return r;
}

/*
 * The proxy libcurl would take from the environment for this URL (its
 * rules: <scheme>_proxy, then ALL_PROXY; lower case first; NO_PROXY is
 * left to libcurl). Made explicit here so its name can be pinned too.
 */
static const char *env_proxy(const char *url)
{
	bool https = strncmp(url, "https:", 6) == 0;
	const char *names[] = {
		https ? "https_proxy" : "http_proxy",
		https ? "HTTPS_PROXY" : "http_proxy",	/* no HTTP_PROXY: CGI */
		"all_proxy", "ALL_PROXY",
	};
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((v = getenv(names[i])) && *v)
			return v;
	return NULL;
}

/* Through a proxy only the proxy's name is resolved here; it resolves ours. */
static int ep_pin_hosts(struct endpoint *ep, const struct cfg_endpoint *c)
{
	const char *proxy = c->proxy_url;
	int r;

	if (!proxy && c->proxy_from_environment)
		proxy = env_proxy(c->url);
	if (proxy && !c->proxy_url && SETOPT(ep, CURLOPT_PROXY, proxy))
		return -EINVAL;
	r = pin_url_host(ep, proxy ? proxy : c->url);
	/* NO_PROXY may send us direct: pin our own name too if it resolves */
	if (!r && proxy)
		(void)pin_url_host(ep, c->url);
	if (!r && ep->resolve)
		r = SETOPT(ep, CURLOPT_RESOLVE, ep->resolve);
	return r;
}

static int ep_init(struct uploader *u, struct endpoint *ep,
		   const struct cfg_endpoint *c)
{
	uint64_t timeout_ns = c->remote_timeout_ns ? c->remote_timeout_ns :
			      DEFAULT_TIMEOUT_NS;
	uint64_t timeout_ms = (timeout_ns + 999999) / 1000000;
	int r;

	ep->u = u;
	ep_defaults(ep, c);
	if (c->api != ENDPOINT_API_PUSH && c->api != ENDPOINT_API_INGEST)
		return -EINVAL;
	ep->name = strdup(c->name ? c->name : c->url ? c->url : "");
	ep->easy = curl_easy_init();
	if (!ep->name || !ep->easy)
		return -ENOMEM;
	ep->st.endpoint = ep->name;
	ep->st.last_error = ep->last_error;
	r = ep_build_url(ep, c);
	r = r ? r : ep_set_basics(ep, c, timeout_ms);
	r = r ? r : ep_set_headers(ep, c, timeout_ms);
	r = r ? r : ep_set_tls(ep, &c->tls);
	r = r ? r : ep_set_proxy(ep, c);
	r = r ? r : ep_pin_hosts(ep, c);
	if (!r && ep->connect_to)
		r = SETOPT(ep, CURLOPT_CONNECT_TO, ep->connect_to);
	if (r)
		return r;
	ep->timer = loop_add_timer(u->loop, 0, 0, ep_backoff_done, ep);
	return ep->timer < 0 ? ep->timer : 0;
}

/* Drop everything the endpoint holds, counted, and stop its transfer. */
static void ep_abort(struct endpoint *ep)
{
	if (ep->state == EP_IN_FLIGHT)
		(void)curl_multi_remove_handle(ep->u->multi, ep->easy);
	if (ep->timer >= 0)
		(void)loop_mod_timer(ep->u->loop, ep->timer, 0, 0);
	ep->state = EP_IDLE;
	while (ep->head)
		ep_drop_oldest(ep, false);
	if (ep->cur) {
		ep_count_drop(ep, ep->cur);
		ep_release(ep, ep->cur);
		ep->cur = NULL;
	}
}

static void ep_fini(struct endpoint *ep)
{
	if (!ep->u)
		return;
	ep_abort(ep);
	if (ep->timer >= 0)
		(void)loop_del_timer(ep->u->loop, ep->timer);
	if (ep->easy)
		curl_easy_cleanup(ep->easy);
	curl_slist_free_all(ep->headers);
	curl_slist_free_all(ep->connect_to);
	curl_slist_free_all(ep->resolve);
	free(ep->name);
	free(ep->url);
}

/* ---- API ------------------------------------------------------------------ */

static int uploader_init_multi(struct uploader *u)
{
	u->multi = curl_multi_init();
	if (!u->multi)
		return -ENOMEM;
	u->curl_timer = loop_add_timer(u->loop, 0, 0, on_curl_timer, u);
	if (u->curl_timer < 0)
		return u->curl_timer;
	if (curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) ||
	    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u) ||
	    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb) ||
	    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u))
		return -EINVAL;
	return 0;
}

static int uploader_init(struct uploader *u, const struct cfg_endpoint *eps,
			 size_t n, const struct cfg_labels *ext)
{
	size_t i;
	int r;

	u->rng = (uint64_t)mono_ns() ^ (uint64_t)(uintptr_t)u ^
		 0x9e3779b97f4a7c15ull;
	for (i = 0; ext && i < ext->n; i++) {
		r = labelset_set(&u->ext, ext->v[i].name, ext->v[i].value);
		if (r < 0)
			return r;
	}
	r = uploader_init_multi(u);
	if (r < 0)
		return r;
	u->eps = calloc(n ? n : 1, sizeof(*u->eps));
	if (!u->eps)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		u->n = i + 1;
		r = ep_init(u, &u->eps[i], &eps[i]);
		if (r < 0)
			return r;
		if (eps[i].api == ENDPOINT_API_PUSH)
			u->have_push = true;
		else
			u->have_ingest = true;
	}
	return 0;
}

struct uploader *uploader_new(struct loop *loop, const struct cfg_endpoint *eps,
			      size_t n, const struct cfg_labels *external_labels,
			      int *err)
{
	struct uploader *u;
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*err = -ENOMEM;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		curl_global_cleanup();
		*err = -ENOMEM;
		return NULL;
	}
	u->loop = loop;
	u->curl_timer = -1;
	r = uploader_init(u, eps, n, external_labels);
	if (r < 0) {
		uploader_free(u);
		*err = r;
		return NULL;
	}
	return u;
}

static void count_invalid(struct uploader *u, size_t len)
{
	size_t i;

	for (i = 0; i < u->n; i++) {
		u->eps[i].st.dropped_invalid++;
		u->eps[i].st.dropped_profiles++;
		u->eps[i].st.dropped_bytes += len;
	}
}

int uploader_submit(struct uploader *u, const struct labelset *labels,
		    const void *pprof_gz, size_t len, int64_t from_ns,
		    int64_t until_ns, uint32_t sample_rate)
{
	struct labelset ls = { 0 };
	struct payload *p;
	size_t i;
	int r;

	r = upload_labels_prepare(labels, &u->ext, &ls);
	if (r == -EINVAL)
		count_invalid(u, len);
	if (r < 0)
		return r;
	p = payload_new(u, &ls, pprof_gz, len, from_ns, until_ns, sample_rate);
	labelset_clear(&ls);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < u->n; i++)
		ep_enqueue(&u->eps[i], p);
	payload_unref(p);
	return 0;
}

size_t uploader_pending(const struct uploader *u)
{
	size_t i, n = 0;

	for (i = 0; i < u->n; i++)
		n += u->eps[i].st.queue_profiles;
	return n;
}

int uploader_flush(struct uploader *u, int timeout_ms)
{
	int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000ll, left;
	size_t i;
	int r;

	while (uploader_pending(u)) {
		left = deadline - mono_ns();
		if (left <= 0)
			break;
		r = loop_run_once(u->loop, (int)((left + 999999) / 1000000));
		if (r < 0)
			break;
	}
	if (!uploader_pending(u))
		return 0;
	for (i = 0; i < u->n; i++)
		ep_abort(&u->eps[i]);
	return -ETIMEDOUT;
}

void uploader_foreach_stats(const struct uploader *u, upload_stats_fn cb,
			    void *ctx)
{
	size_t i;

	for (i = 0; i < u->n; i++)
		cb(ctx, &u->eps[i].st);
}

void uploader_free(struct uploader *u)
{
	size_t i;

	if (!u)
		return;
	for (i = 0; i < u->n; i++)
		ep_fini(&u->eps[i]);
	/* The loop must forget a socket before libcurl closes it. */
	for (i = 0; i < u->nfds; i++)
		(void)loop_del_fd(u->loop, u->fds[i]);
	if (u->multi) {
		(void)curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, NULL);
		(void)curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, NULL);
		curl_multi_cleanup(u->multi);
	}
	if (u->curl_timer >= 0)
		(void)loop_del_timer(u->loop, u->curl_timer);
	for (i = 0; i < u->nwarned; i++)
		free(u->warned[i]);
	free(u->fds);
	free(u->eps);
	labelset_clear(&u->ext);
	free(u);
	curl_global_cleanup();
}
