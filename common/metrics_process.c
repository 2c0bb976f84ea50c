/* metrics_process: this process's memory, CPU, descriptors and start, for each scrape. */
#include "metrics_process.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROCESS_STAT_MAX 4096	 /* bytes of /proc/self/stat: 52 numbers and a name */
#define PROCESS_STAT_START 22	 /* its field: start time, in clock ticks after boot */
#define PROCESS_LINE_MAX 256	 /* bytes of a /proc/stat line looked at */
#define PROCESS_FDS_MAX 10000000 /* more entries than any fd table holds */

/* Pages of memory mapped (vsize) and resident, from /proc/self/statm. */
static int process_statm(unsigned long long *vsize, unsigned long long *rss)
{
	FILE *f = fopen("/proc/self/statm", "re");
	int rc = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%llu %llu", vsize, rss) == 2)
		rc = 0;
	fclose(f);
	return rc;
}

static long process_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while (n < PROCESS_FDS_MAX && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the one reading the folder */
}

static void process_collect(void *arg)
{
	struct metrics_process *p = arg;
	long page = sysconf(_SC_PAGESIZE), fds = process_open_fds();
	unsigned long long vsize, rss;
	struct rusage ru;
	struct rlimit rl;

	if (page > 0 && process_statm(&vsize, &rss) == 0) {
		metric_set(p->vsize, (double)vsize * (double)page);
		metric_set(p->rss, (double)rss * (double)page);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		metric_set(p->cpu,
			   (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	if (fds >= 0)
		metric_set(p->open_fds, (double)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metric_set(p->max_fds, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

/* The machine's boot, in seconds since the epoch: /proc/stat's btime line. */
static int process_boot_time(unsigned long long *out)
{
	char line[PROCESS_LINE_MAX];
	FILE *f = fopen("/proc/stat", "re");
	int rc = -1;

	if (f == NULL)
		return -1;
	/* Long lines come in pieces; only a line's start can say "btime ". */
	while (rc != 0 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %llu", out) == 1)
			rc = 0;
	fclose(f);
	return rc;
}

/* This process's start, in seconds since the epoch. */
static int process_start_time(double *out)
{
	char buf[PROCESS_STAT_MAX];
	unsigned long long boot;
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n = 0;
	char *p;

	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	/* The name, field 2, is in parentheses and may hold anything: count after its end. */
	p = strrchr(buf, ')');
	for (int field = 3; p != NULL && field <= PROCESS_STAT_START; field++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL || tick <= 0 || process_boot_time(&boot) != 0)
		return -1;
	*out = (double)boot + (double)strtoull(p, NULL, 10) / (double)tick;
	return 0;
}

static int process_family(struct metrics *m, const char *name, const char *help,
			  enum metric_type type, struct metric_series **out, struct tsr_err *err)
{
	const struct metric_desc d = { .name = name, .help = help, .type = type };
	struct metric_family *f;

	if (metrics_add(m, &d, &f, err) != 0)
		return -1;
	*out = metrics_series(f, NULL);
	if (*out == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

int metrics_process_register(struct metrics *m, struct metrics_process *p, struct tsr_err *err)
{
	double start;

	if (process_family(m, "process_resident_memory_bytes", "Resident memory size in bytes.",
			   METRIC_GAUGE, &p->rss, err) != 0 ||
	    process_family(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
			   METRIC_GAUGE, &p->vsize, err) != 0 ||
	    process_family(m, "process_cpu_seconds_total",
			   "Total user and system CPU time spent in seconds.", METRIC_COUNTER,
			   &p->cpu, err) != 0 ||
	    process_family(m, "process_open_fds", "Number of open file descriptors.", METRIC_GAUGE,
			   &p->open_fds, err) != 0 ||
	    process_family(m, "process_max_fds",
			   "Maximum number of open file descriptors (-1: unlimited).", METRIC_GAUGE,
			   &p->max_fds, err) != 0 ||
	    process_family(m, "process_start_time_seconds",
			   "Start time of the process since unix epoch in seconds.", METRIC_GAUGE,
			   &p->start, err) != 0)
		return -1;
	/* It never changes: read once. */
	if (process_start_time(&start) == 0)
		metric_set(p->start, start);
	return metrics_on_collect(m, process_collect, p, err);
}
