/*
 * test_metrics: the metrics registry and its text format (HELP, TYPE,
 * labels and their escaping, histogram buckets, the series cap and its
 * "_other"), counts from many threads at once, the process_* metrics,
 * the metrics-listen address and its refusals, and the HTTP server on
 * loopback (200, 404, 405, HEAD, and an address already taken).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "metrics.h"
#include "metrics_http.h"
#include "metrics_process.h"

#define TEST_THREADS 4
#define TEST_INCS 100000
#define TEST_HTTP_MAX 65536

/* The exposition of m, NUL-ended (the caller frees it). */
static char *render(struct metrics *m)
{
	struct tsr_err err;
	char *text = NULL, *z;
	size_t len = 0;

	ck_assert_msg(metrics_render(m, &text, &len, &err) == 0, "%s", err.msg);
	z = malloc(len + 1);
	ck_assert_ptr_nonnull(z);
	memcpy(z, text, len);
	z[len] = '\0';
	free(text);
	return z;
}

static struct metric_family *add(struct metrics *m, const struct metric_desc *d)
{
	struct metric_family *f = NULL;
	struct tsr_err err;

	ck_assert_msg(metrics_add(m, d, &f, &err) == 0, "%s", err.msg);
	return f;
}

START_TEST(test_exposition)
{
	const struct metric_desc cd = { .name = "t_spawns_total",
					.help = "Spawns.",
					.type = METRIC_COUNTER,
					.labels = { "type", "result" } };
	const struct metric_desc gd = { .name = "t_up", .help = "Up.", .type = METRIC_GAUGE };
	struct metrics *m;
	struct tsr_err err;
	struct metric_family *c, *g;
	char *text;

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	c = add(m, &cd);
	g = add(m, &gd);
	metric_inc(metrics_series(c, (const char *const[]){ "sleep", "ok" }));
	metric_add(metrics_series(c, (const char *const[]){ "sleep", "ok" }), 2);
	metric_inc(metrics_series(c, (const char *const[]){ "true", "refused" }));
	metric_set(metrics_series(g, NULL), 0.5);
	metric_inc(NULL); /* metrics off: nothing happens */
	text = render(m);
	ck_assert_str_eq(text, "# HELP t_spawns_total Spawns.\n"
			       "# TYPE t_spawns_total counter\n"
			       "t_spawns_total{type=\"sleep\",result=\"ok\"} 3\n"
			       "t_spawns_total{type=\"true\",result=\"refused\"} 1\n"
			       "# HELP t_up Up.\n"
			       "# TYPE t_up gauge\n"
			       "t_up 0.5\n"
			       "# HELP tessera_metrics_series_overflow_total Label sets counted "
			       "under \"_other\" because their metric already had its most series\n"
			       "# TYPE tessera_metrics_series_overflow_total counter\n");
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(test_escaping)
{
	const struct metric_desc d = { .name = "t_escaped",
				       .help = "A \\ backslash\nand a newline.",
				       .type = METRIC_GAUGE,
				       .labels = { "v" } };
	struct metrics *m;
	struct tsr_err err;
	struct metric_family *f;
	char *text;

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	f = add(m, &d);
	metric_set(metrics_series1(f, "a\\b\"c\nd"), 1);
	/* Bytes that are not UTF-8 become '?': Prometheus takes UTF-8 only. */
	metric_set(metrics_series1(f, "x\xff\xc3y"), 2);
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "# HELP t_escaped A \\\\ backslash\\nand a newline.\n"));
	ck_assert_ptr_nonnull(strstr(text, "t_escaped{v=\"a\\\\b\\\"c\\nd\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "t_escaped{v=\"x??y\"} 2\n"));
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(test_overflow)
{
	const struct metric_desc d = {
		.name = "t_many_total", .help = "Many.", .type = METRIC_COUNTER, .labels = { "id" }
	};
	struct metrics *m;
	struct tsr_err err;
	struct metric_family *f;
	char id[32], *text, *p;
	int lines = 0;

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	f = add(m, &d);
	for (int i = 0; i < METRICS_SERIES_MAX + 44; i++) {
		snprintf(id, sizeof(id), "agent-%d", i);
		metric_inc(metrics_series1(f, id));
	}
	/* A known one still counts as itself. */
	metric_inc(metrics_series1(f, "agent-0"));
	text = render(m);
	for (p = text; (p = strstr(p, "\nt_many_total{")) != NULL; p++)
		lines++;
	ck_assert_int_eq(lines, METRICS_SERIES_MAX + 1);
	ck_assert_ptr_nonnull(strstr(text, "t_many_total{id=\"agent-0\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "t_many_total{id=\"_other\"} 44\n"));
	ck_assert_ptr_null(strstr(text, "agent-256\""));
	ck_assert_ptr_nonnull(strstr(
		text, "tessera_metrics_series_overflow_total{family=\"t_many_total\"} 44\n"));
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(test_histogram)
{
	static const double le[] = { 0.1, 1 };
	const struct metric_buckets b = { le, 2 };
	const struct metric_desc d = { .name = "t_seconds",
				       .help = "Time.",
				       .type = METRIC_HISTOGRAM,
				       .labels = { "op" },
				       .buckets = &b };
	const struct metric_desc nolabel = {
		.name = "t_plain_seconds", .help = "Time.", .type = METRIC_HISTOGRAM, .buckets = &b
	};
	struct metrics *m;
	struct tsr_err err;
	struct metric_family *f;
	struct metric_series *s;
	char *text;

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	f = add(m, &d);
	s = metrics_series1(f, "get");
	metric_observe(s, 0.05);
	metric_observe(s, 0.1); /* the bound itself: le is "less or equal" */
	metric_observe(s, 0.5);
	metric_observe(s, 2);
	metric_observe(metrics_series(add(m, &nolabel), NULL), 0.25);
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE t_seconds histogram\n"
					   "t_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
					   "t_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
					   "t_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
					   "t_seconds_sum{op=\"get\"} 2.65\n"
					   "t_seconds_count{op=\"get\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(text, "t_plain_seconds_bucket{le=\"0.1\"} 0\n"
					   "t_plain_seconds_bucket{le=\"1\"} 1\n"
					   "t_plain_seconds_bucket{le=\"+Inf\"} 1\n"
					   "t_plain_seconds_sum 0.25\n"
					   "t_plain_seconds_count 1\n"));
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(test_refusals)
{
	static const double down[] = { 1, 0.5 };
	const struct metric_buckets bad = { down, 2 };
	const struct metric_desc bad_name = { .name = "9lives", .help = "x" };
	const struct metric_desc bad_label = { .name = "t_x", .help = "x", .labels = { "le" } };
	const struct metric_desc reserved = { .name = "t_x", .help = "x", .labels = { "__n" } };
	const struct metric_desc no_buckets = { .name = "t_x",
						.help = "x",
						.type = METRIC_HISTOGRAM };
	const struct metric_desc descending = {
		.name = "t_x", .help = "x", .type = METRIC_HISTOGRAM, .buckets = &bad
	};
	struct metric_family *f;
	struct metrics *m;
	struct tsr_err err;

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	ck_assert_int_eq(metrics_add(m, &bad_name, &f, &err), -1);
	ck_assert_int_eq(metrics_add(m, &bad_label, &f, &err), -1);
	ck_assert_int_eq(metrics_add(m, &reserved, &f, &err), -1);
	ck_assert_int_eq(metrics_add(m, &no_buckets, &f, &err), -1);
	ck_assert_int_eq(metrics_add(m, &descending, &f, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	metrics_free(m);
}
END_TEST

struct counting {
	struct metric_family *f;
	struct metric_series *hist;
};

static void *count_many(void *arg)
{
	struct counting *c = arg;

	for (int i = 0; i < TEST_INCS; i++) {
		metric_inc(metrics_series1(c->f, i % 2 ? "odd" : "even"));
		metric_observe(c->hist, 0.001);
	}
	return NULL;
}

/* Lock-free counts from several threads, while scrapes go on, lose nothing. */
START_TEST(test_threads)
{
	const struct metric_desc d = {
		.name = "t_n_total", .help = "N.", .type = METRIC_COUNTER, .labels = { "parity" }
	};
	const struct metric_desc h = { .name = "t_h_seconds",
				       .help = "H.",
				       .type = METRIC_HISTOGRAM,
				       .buckets = &metrics_buckets_latency };
	pthread_t th[TEST_THREADS];
	struct counting c;
	struct metrics *m;
	struct tsr_err err;
	char *text, want[128];

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	c.f = add(m, &d);
	c.hist = metrics_series(add(m, &h), NULL);
	for (int i = 0; i < TEST_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, count_many, &c), 0);
	for (int i = 0; i < 20; i++)
		free(render(m));
	for (int i = 0; i < TEST_THREADS; i++)
		pthread_join(th[i], NULL);
	text = render(m);
	snprintf(want, sizeof(want), "t_n_total{parity=\"even\"} %d\n",
		 TEST_THREADS * TEST_INCS / 2);
	ck_assert_ptr_nonnull(strstr(text, want));
	snprintf(want, sizeof(want), "t_h_seconds_count %d\n", TEST_THREADS * TEST_INCS);
	ck_assert_ptr_nonnull(strstr(text, want));
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(test_process)
{
	struct metrics_process p;
	struct metrics *m;
	struct tsr_err err;
	char *text, *v;

	ck_assert_int_eq(metrics_new(&m, &err), 0);
	ck_assert_int_eq(metrics_process_register(m, &p, &err), 0);
	text = render(m);
	v = strstr(text, "\nprocess_resident_memory_bytes ");
	ck_assert_ptr_nonnull(v);
	ck_assert(strtod(v + strlen("\nprocess_resident_memory_bytes "), NULL) > 1e5);
	v = strstr(text, "\nprocess_open_fds ");
	ck_assert_ptr_nonnull(v);
	ck_assert(strtod(v + strlen("\nprocess_open_fds "), NULL) >= 3);
	v = strstr(text, "\nprocess_start_time_seconds ");
	ck_assert_ptr_nonnull(v);
	ck_assert(strtod(v + strlen("\nprocess_start_time_seconds "), NULL) > 1.6e9);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nprocess_max_fds "));
	free(text);
	metrics_free(m);
}
END_TEST

static void addr_ok(const char *text, int family, const char *ip, int port)
{
	struct metrics_addr a;
	struct tsr_err err;
	char got[INET6_ADDRSTRLEN];
	const void *raw;
	int got_port;

	ck_assert_msg(metrics_addr_parse(text, &a, &err) == 0, "%s: %s", text, err.msg);
	ck_assert_int_eq(a.sa.ss_family, family);
	if (family == AF_INET) {
		raw = &((struct sockaddr_in *)&a.sa)->sin_addr;
		got_port = ntohs(((struct sockaddr_in *)&a.sa)->sin_port);
	} else {
		raw = &((struct sockaddr_in6 *)&a.sa)->sin6_addr;
		got_port = ntohs(((struct sockaddr_in6 *)&a.sa)->sin6_port);
	}
	ck_assert_ptr_nonnull(inet_ntop(family, raw, got, sizeof(got)));
	ck_assert_str_eq(got, ip);
	ck_assert_int_eq(got_port, port);
}

START_TEST(test_addresses)
{
	static const char *const bad[] = {
		"",
		"abc",
		"127.0.0.1",
		"127.0.0.1:",
		":9464",
		"65536",
		"127.0.0.1:-1",
		"127.0.0.1:9x",
		"::1:9464",
		"[::1]",
		"[::1]9464",
		"localhost:80",
		"[127.0.0.1]:80",
		"300.1.1.1:80",
		"1.2.3:80",
		"123456",
		" 9464",
		"9464 ",
		"[fe80::1%lo]:80",
		"0x10",
		"127.0.0.1:99999999999999999999999999999999999999999999999999999999999999",
	};
	char dst[METRICS_LISTEN_MAX];
	char *argv[] = { "metrics-listen", "9464", "extra" };
	struct metrics_addr a;
	struct tsr_err err;

	addr_ok("9464", AF_INET, "127.0.0.1", 9464);
	addr_ok("0", AF_INET, "127.0.0.1", 0);
	addr_ok("0.0.0.0:80", AF_INET, "0.0.0.0", 80);
	addr_ok("10.1.2.3:65535", AF_INET, "10.1.2.3", 65535);
	addr_ok("[::1]:9464", AF_INET6, "::1", 9464);
	addr_ok("[::]:9100", AF_INET6, "::", 9100);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(metrics_addr_parse(bad[i], &a, &err) == -1, "took \"%s\"", bad[i]);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
		ck_assert_ptr_nonnull(strstr(err.msg, "metrics-listen"));
		ck_assert_ptr_nonnull(strstr(err.msg, "want IPV4:PORT, [IPV6]:PORT or PORT"));
	}
	ck_assert_int_eq(metrics_listen_line(dst, 1, argv, &err), -1);
	ck_assert_int_eq(metrics_listen_line(dst, 3, argv, &err), -1);
	ck_assert_int_eq(metrics_listen_line(dst, 2, argv, &err), 0);
	ck_assert_str_eq(dst, "9464");
}
END_TEST

/* One HTTP/1.0 exchange with 127.0.0.1:port; the whole answer, NUL-ended, in buf. */
static void http(int port, const char *request, char *buf, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	size_t n = 0;
	ssize_t r;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
}

START_TEST(test_http)
{
	const struct metric_desc d = { .name = "t_scrapes_total",
				       .help = "Scrapes.",
				       .type = METRIC_COUNTER };
	struct metrics_http *h, *again;
	struct metrics *m;
	struct tsr_err err;
	char addr[32], *buf = malloc(TEST_HTTP_MAX);
	int port;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(metrics_new(&m, &err), 0);
	metric_add(metrics_series(add(m, &d), NULL), 7);
	ck_assert_msg(metrics_http_start("0", m, &h, &err) == 0, "%s", err.msg);
	port = metrics_http_port(h);
	ck_assert_int_gt(port, 0);
	http(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, TEST_HTTP_MAX);
	ck_assert_msg(strncmp(buf, "HTTP/1.0 200", 12) == 0 ||
			      strncmp(buf, "HTTP/1.1 200", 12) == 0,
		      "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "Content-Type: " METRICS_CONTENT_TYPE "\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\n# HELP t_scrapes_total Scrapes.\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nt_scrapes_total 7\n"));
	http(port, "HEAD /metrics HTTP/1.0\r\n\r\n", buf, TEST_HTTP_MAX);
	ck_assert_ptr_nonnull(strstr(buf, " 200 "));
	ck_assert_ptr_null(strstr(buf, "t_scrapes_total"));
	http(port, "GET /other HTTP/1.0\r\n\r\n", buf, TEST_HTTP_MAX);
	ck_assert_ptr_nonnull(strstr(buf, " 404 "));
	http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", buf, TEST_HTTP_MAX);
	ck_assert_ptr_nonnull(strstr(buf, " 405 "));
	ck_assert_ptr_nonnull(strstr(buf, "Allow: GET, HEAD\r\n"));
	/* The address taken: refused at once, naming it and why. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	ck_assert_int_eq(metrics_http_start(addr, m, &again, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(err.msg, addr));
	ck_assert_ptr_nonnull(strstr(err.msg, "in use"));
	ck_assert_int_eq(metrics_http_start("nonsense", m, &again, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	metrics_http_stop(h);
	metrics_free(m);
	free(buf);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "metrics",
		    CHECK_TESTS(test_exposition, test_escaping, test_overflow, test_histogram,
				test_refusals, test_threads, test_process, test_addresses,
				test_http));
	return 0;
}
