/*
 * The floor of the perf benchmark (perf_bench.sh): what starting and
 * reaping a process costs on this machine, with nothing else around it.
 *
 *   spawn-floor seq N [MS]  posix_spawn /bin/true and waitpid, N times one
 *                           after the other, each MS ms (0) after the
 *                           last; prints p50 and p90 in µs
 *   spawn-floor par N K     the same N times with K in flight; prints the
 *                           rate per second
 *
 * Both also print the CPU time (user + system) of this process and its
 * reaped children per spawn, in µs (getrusage). One line of key=value.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double tv_us(struct timeval tv)
{
	return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* User + system time of this process and its reaped children, µs. */
static double cpu_us(void)
{
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	return tv_us(self.ru_utime) + tv_us(self.ru_stime) + tv_us(kids.ru_utime) +
	       tv_us(kids.ru_stime);
}

static pid_t start_true(void)
{
	char *argv[] = { (char *)"/bin/true", NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);

	if (rc != 0) {
		fprintf(stderr, "spawn-floor: posix_spawn /bin/true: %s\n", strerror(rc));
		exit(1);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("spawn-floor: waitpid");
			exit(1);
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "spawn-floor: /bin/true did not exit 0\n");
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double p)
{
	long i = (long)(p / 100.0 * (double)(n - 1) + 0.5);

	return sorted[i];
}

static int run_seq(long n, long pause_ms)
{
	double *lat = calloc((size_t)n, sizeof(*lat));
	struct timespec pause = { pause_ms / 1000, pause_ms % 1000 * 1000000L };
	double c0, c1, t;
	long i;

	if (lat == NULL)
		return 1;
	reap(start_true()); /* warm the page cache and the binary */
	c0 = cpu_us();
	for (i = 0; i < n; i++) {
		if (pause_ms > 0)
			nanosleep(&pause, NULL);
		t = now_us();
		reap(start_true());
		lat[i] = now_us() - t;
	}
	c1 = cpu_us();
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("p50_us=%.1f p90_us=%.1f cpu_us_per=%.1f\n", pct(lat, n, 50), pct(lat, n, 90),
	       (c1 - c0) / (double)n);
	free(lat);
	return 0;
}

static int run_par(long n, long k)
{
	long started = 0, done = 0;
	double c0, c1, t0, t1;
	int status;

	reap(start_true());
	c0 = cpu_us();
	t0 = now_us();
	while (started < n && started < k) {
		start_true();
		started++;
	}
	while (done < n) {
		if (waitpid(-1, &status, 0) < 0) {
			if (errno == EINTR)
				continue;
			perror("spawn-floor: waitpid");
			return 1;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "spawn-floor: /bin/true did not exit 0\n");
			return 1;
		}
		done++;
		if (started < n) {
			start_true();
			started++;
		}
	}
	t1 = now_us();
	c1 = cpu_us();
	printf("rate_per_s=%.1f cpu_us_per=%.1f\n", (double)n / ((t1 - t0) / 1e6),
	       (c1 - c0) / (double)n);
	return 0;
}

int main(int argc, char **argv)
{
	long n, k, ms = 0;

	if ((argc == 3 || argc == 4) && strcmp(argv[1], "seq") == 0 && (n = atol(argv[2])) > 0 &&
	    (argc == 3 || (ms = atol(argv[3])) > 0))
		return run_seq(n, ms);
	if (argc == 4 && strcmp(argv[1], "par") == 0 && (n = atol(argv[2])) > 0 &&
	    (k = atol(argv[3])) > 0)
		return run_par(n, k);
	fprintf(stderr, "usage: spawn-floor seq N [PAUSE_MS] | spawn-floor par N IN_FLIGHT\n");
	return 2;
}
