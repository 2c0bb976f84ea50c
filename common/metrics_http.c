/*
 * metrics_http: parsing ADDR, binding it ourselves (so that a failure
 * says why, with errno), and libmicrohttpd serving /metrics on it.
 */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define METRICS_ADDR_WANT "want IPV4:PORT, [IPV6]:PORT or PORT (127.0.0.1:PORT), PORT 0-65535"

struct metrics_http {
	struct MHD_Daemon *d;
	struct metrics *m; /* borrowed */
	int port;
};

/* A port of 1-5 decimal digits, 0-65535. */
static int metrics_port_parse(const char *s, in_port_t *out)
{
	size_t len = strspn(s, "0123456789");
	unsigned long v;

	if (len == 0 || len > 5 || s[len] != '\0')
		return -1;
	v = strtoul(s, NULL, 10);
	if (v > 65535)
		return -1;
	*out = htons((in_port_t)v);
	return 0;
}

int metrics_addr_parse(const char *text, struct metrics_addr *out, struct tsr_err *err)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;
	size_t len = strnlen(text, METRICS_LISTEN_MAX);
	const char *colon = strrchr(text, ':');
	char host[METRICS_LISTEN_MAX];
	size_t hlen = colon != NULL ? (size_t)(colon - text) : 0;
	in_port_t port;
	bool ok;

	memset(out, 0, sizeof(*out));
	ok = len > 0 && len < METRICS_LISTEN_MAX &&
	     metrics_port_parse(colon != NULL ? colon + 1 : text, &port) == 0;
	if (ok && colon == NULL)
		snprintf(host, sizeof(host), "%s", METRICS_HTTP_HOST_DEFAULT);
	else if (ok)
		snprintf(host, sizeof(host), "%.*s", (int)hlen, text);
	if (ok && hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		ok = inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = port;
		out->len = sizeof(*v6);
	} else if (ok) {
		ok = inet_pton(AF_INET, host, &v4->sin_addr) == 1;
		v4->sin_family = AF_INET;
		v4->sin_port = port;
		out->len = sizeof(*v4);
	}
	if (!ok)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   METRICS_LISTEN_KEYWORD " \"%.*s\": " METRICS_ADDR_WANT,
				   METRICS_LISTEN_MAX, text);
	return 0;
}

int metrics_listen_line(char *dst, int argc, char **argv, struct tsr_err *err)
{
	struct metrics_addr a;

	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   METRICS_LISTEN_KEYWORD " takes one address: " METRICS_ADDR_WANT);
	if (metrics_addr_parse(argv[1], &a, err) != 0)
		return -1;
	/* metrics_addr_parse took it only if it fits. */
	snprintf(dst, METRICS_LISTEN_MAX, "%s", argv[1]);
	return 0;
}

/* A listening socket on a, and the port it got, or an error naming addr and errno. */
static int metrics_http_bind(const struct metrics_addr *a, const char *addr, int *out, int *port,
			     struct tsr_err *err)
{
	struct sockaddr_storage got;
	socklen_t got_len = sizeof(got);
	int one = 1, fd, rc = -1;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, METRICS_LISTEN_KEYWORD " %s: %s",
				   addr, strerror(errno));
	/* An IPv6 address listens on IPv6 alone: [::] does not mean 0.0.0.0 too. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (a->sa.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0 ||
	    listen(fd, METRICS_HTTP_BACKLOG) != 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &got_len) != 0) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
			    METRICS_LISTEN_KEYWORD " %s: cannot listen there: %s", addr,
			    strerror(errno));
		goto out;
	}
	*port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
						: ((struct sockaddr_in *)&got)->sin_port);
	*out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A short text answer; allow, if not NULL, is the Allow header of a 405. */
static enum MHD_Result metrics_http_text(struct MHD_Connection *c, unsigned int status,
					 const char *text, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result rc = MHD_NO;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") ==
		    MHD_YES &&
	    (allow == NULL || MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES))
		rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result metrics_http_scrape(struct metrics_http *h, struct MHD_Connection *c)
{
	struct MHD_Response *r;
	enum MHD_Result rc = MHD_NO;
	struct tsr_err err;
	char *text = NULL;
	size_t len = 0;

	if (metrics_render(h->m, &text, &len, &err) != 0) {
		log_error("%s", err.msg);
		return metrics_http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
					 "the metrics could not be written\n", NULL);
	}
	/* A response made from text frees it once sent; until then it is ours. */
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE) ==
	    MHD_YES)
		rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

/* libmicrohttpd's handler, on its thread; a request's body, if any, is never read. */
static enum MHD_Result metrics_http_answer(void *cls, struct MHD_Connection *c, const char *url,
					   const char *method, const char *version,
					   const char *upload, size_t *upload_len, void **state)
{
	if (strcmp(url, METRICS_HTTP_PATH) != 0)
		return metrics_http_text(c, MHD_HTTP_NOT_FOUND,
					 "not found: the metrics are at " METRICS_HTTP_PATH "\n",
					 NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return metrics_http_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
					 "method not allowed: use GET or HEAD\n", "GET, HEAD");
	return metrics_http_scrape(cls, c);
}

__attribute__((format(printf, 2, 0))) static void metrics_http_log(void *arg, const char *fmt,
								   va_list ap)
{
	char msg[256];
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	/* Debug: it speaks of every client that hangs up early, which any client can do. */
	log_debug("metrics HTTP server: %s", msg);
}

/* Where to scrape, with the port bound (the one chosen, for port 0). */
static void metrics_http_log_start(const struct metrics_addr *a, int port)
{
	char host[INET6_ADDRSTRLEN];
	bool v6 = a->sa.ss_family == AF_INET6;
	const void *ip = v6 ? (const void *)&((const struct sockaddr_in6 *)&a->sa)->sin6_addr
			    : (const void *)&((const struct sockaddr_in *)&a->sa)->sin_addr;

	if (inet_ntop(a->sa.ss_family, ip, host, sizeof(host)) == NULL)
		snprintf(host, sizeof(host), "?");
	log_info("metrics at http://%s%s%s:%d" METRICS_HTTP_PATH, v6 ? "[" : "", host,
		 v6 ? "]" : "", port);
}

int metrics_http_start(const char *addr, struct metrics *m, struct metrics_http **out,
		       struct tsr_err *err)
{
	struct metrics_http *h = NULL;
	struct metrics_addr a;
	int fd = -1, rc = -1;

	if (metrics_addr_parse(addr, &a, err) != 0)
		return -1;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	h->m = m;
	if (metrics_http_bind(&a, addr, &fd, &h->port, err) != 0)
		goto out;
	/* Its logger first, or libmicrohttpd says so on stderr. */
	h->d = MHD_start_daemon(
		MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		metrics_http_answer, h, MHD_OPTION_EXTERNAL_LOGGER, metrics_http_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)METRICS_HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)METRICS_HTTP_TIMEOUT_S, MHD_OPTION_END);
	/*
	 * libmicrohttpd closes a socket it was given on some failures and
	 * not on others: fd is left alone, since the daemon stops anyway.
	 */
	if (h->d == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    METRICS_LISTEN_KEYWORD " %s: the HTTP server did not start", addr);
		goto out;
	}
	metrics_http_log_start(&a, h->port);
	*out = h;
	h = NULL;
	rc = 0;
out:
	free(h);
	return rc;
}

int metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
