/*
 * metrics_http: the "metrics-listen ADDR" line both daemons take, and the
 * HTTP server it starts: libmicrohttpd with its own polling thread, so
 * that a scrape (and whoever holds a connection open) never waits on, nor
 * holds up, the daemon's gRPC loop. GET or HEAD of /metrics answers 200
 * with the registry's exposition (metrics.h); any other path is 404, any
 * other method on /metrics 405. At most METRICS_HTTP_CONNECTIONS_MAX
 * connections at once, each closed after METRICS_HTTP_TIMEOUT_S idle.
 *
 * ADDR is IPV4:PORT, [IPV6]:PORT or PORT alone, which means
 * 127.0.0.1:PORT; numeric addresses only, no names to resolve. Port 0
 * takes any free port (the daemon logs which).
 */
#ifndef TSR_METRICS_HTTP_H
#define TSR_METRICS_HTTP_H

#include <sys/socket.h>

#include "error.h"
#include "metrics.h"

#define METRICS_LISTEN_KEYWORD "metrics-listen"
#define METRICS_LISTEN_MAX 64		      /* bytes of an ADDR, its NUL among them */
#define METRICS_HTTP_HOST_DEFAULT "127.0.0.1" /* where PORT alone listens */
#define METRICS_HTTP_PATH "/metrics"
#define METRICS_HTTP_CONNECTIONS_MAX 32
#define METRICS_HTTP_TIMEOUT_S 10
#define METRICS_HTTP_BACKLOG 16

struct metrics_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* INVALID_ARGUMENT, saying what ADDR may be, unless text is one. */
int metrics_addr_parse(const char *text, struct metrics_addr *out, struct tsr_err *err);
/*
 * The configuration line "metrics-listen ADDR": checked, then copied into
 * dst (METRICS_LISTEN_MAX bytes); a later line replaces it.
 */
int metrics_listen_line(char *dst, int argc, char **argv, struct tsr_err *err);

struct metrics_http;

/*
 * Binds listen and serves m from a thread of its own; m must outlive the
 * server. A failure names the address (UNAVAILABLE when it cannot be
 * bound).
 */
int metrics_http_start(const char *listen, struct metrics *m, struct metrics_http **out,
		       struct tsr_err *err);
/* The port it listens on (the one chosen, for port 0). */
int metrics_http_port(const struct metrics_http *h);
/* Stops serving, closes every connection and joins the thread. NULL is fine. */
void metrics_http_stop(struct metrics_http *h);

#endif
