/* proc_tree: walking and signalling the processes below one, from /proc. */
#include "proc_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROC_TREE_CHUNK 4096 /* bytes of a children file read at a time */

/*
 * Appends the pids listed in one task's children file, read to its end
 * (a subreaper's list can be far longer than a page); the new count.
 */
static size_t proc_tree_read_task(pid_t pid, const char *tid, pid_t *pids, size_t n, size_t max)
{
	char path[96], buf[PROC_TREE_CHUNK + 1], *p, *end;
	size_t have = 0, used;
	ssize_t len;
	long v;
	int fd;

	if (snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, tid) >=
	    (int)sizeof(path))
		return n;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return n;
	while (n < max) {
		len = read(fd, buf + have, PROC_TREE_CHUNK - have);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			break;
		have += (size_t)len;
		buf[have] = '\0';
		/* Whole numbers only: one cut by the chunk's end waits for the next read. */
		used = 0;
		for (p = buf; n < max; p = end) {
			v = strtol(p, &end, 10);
			if (end == p || *end == '\0')
				break;
			if (v > 0)
				pids[n++] = (pid_t)v;
			used = (size_t)(end - buf);
		}
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	close(fd);
	/* What is left is the last number, whole now that the file has ended. */
	buf[have] = '\0';
	v = have > 0 && n < max ? strtol(buf, &end, 10) : 0;
	if (v > 0)
		pids[n++] = (pid_t)v;
	return n;
}

int proc_tree_children(pid_t pid, pid_t *pids, size_t max)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while (n < max && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n = proc_tree_read_task(pid, de->d_name, pids, n, max);
	closedir(d);
	return (int)n;
}

size_t proc_tree_kill_below(pid_t root)
{
	pid_t *pids = malloc(PROC_TREE_MAX * sizeof(*pids));
	size_t n = 0, next = 0;
	int got;

	if (pids == NULL)
		return 0;
	got = proc_tree_children(root, pids, PROC_TREE_MAX);
	n = got > 0 ? (size_t)got : 0;
	/*
	 * Stopped before its children are read, a process can fork no more
	 * of them, and none is reparented away from the list: a killed one's
	 * would be.
	 */
	while (next < n) {
		kill(pids[next], SIGSTOP);
		got = proc_tree_children(pids[next], pids + n, PROC_TREE_MAX - n);
		if (got > 0)
			n += (size_t)got;
		next++;
	}
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	free(pids);
	return n;
}
