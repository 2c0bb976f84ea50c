/* agent_cgroup: finding the base cgroup; agents' cgroups in it made, entered, killed, removed. */
#include "agent_cgroup.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "ids.h"
#include "protocol.h"

#define CG_PREFIX "agent-"
#define CG_PROBE "tessera-probe-" /* + our pid: the cgroup opening makes and removes */
#define CG_NAME_MAX 128		  /* "agent-ID/cgroup.events", "tessera-probe-PID" */
#define CG_LINE_MAX (2 * AGENT_CGROUP_PATH_MAX) /* a line of /proc; longer ones are skipped */
#define CG_EVENTS_MAX 256			/* cgroup.events: "populated 0\nfrozen 0\n" */
#define CG_MOUNT_FIELDS 5 /* mountinfo: id, parent, device, root, mount point */

_Static_assert(sizeof(CG_PREFIX) + TSR_AGENT_ID_MAX + sizeof("/cgroup.events") <= CG_NAME_MAX,
	       "an agent's cgroup file name fits");

static void cg_init(struct agent_cgroup *cg, char *why, size_t why_len)
{
	cg->enabled = false;
	cg->dirfd = -1;
	cg->base[0] = '\0';
	if (why_len > 0)
		why[0] = '\0';
}

/* Disables cg with the reason in why; returns 0, for "return cg_disable(...)". */
__attribute__((format(printf, 4, 5))) static int cg_disable(struct agent_cgroup *cg, char *why,
							    size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (cg->dirfd >= 0)
		close(cg->dirfd);
	cg->dirfd = -1;
	cg->enabled = false;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return 0;
}

/* Errno e while opening, about what: -1 if out of memory or descriptors, else cg disabled and 0. */
static int cg_open_failed(struct agent_cgroup *cg, int e, const char *what, char *why,
			  size_t why_len, struct tsr_err *err)
{
	cg_disable(cg, why, why_len, "%s: %s", what, strerror(e));
	if (e == ENOMEM || e == EMFILE || e == ENFILE)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: %s", what,
				   strerror(e));
	return 0;
}

/* The status for errno e from a cgroup file: ENODEV is a cgroup removed while its file was open. */
static grpc_status_code cg_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENODEV:
	case ESRCH:
		return GRPC_STATUS_NOT_FOUND;
	case EBUSY:
		return GRPC_STATUS_UNAVAILABLE;
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

static int cg_fail(const struct agent_cgroup *cg, const char *name, int e, struct tsr_err *err)
{
	return tsr_err_set(err, cg_code(e), "cgroup %s/%s: %s", cg->base, name, strerror(e));
}

/* "agent-ID", or "agent-ID/FILE" unless file is "", into buf (CG_NAME_MAX). */
static int cg_name(char *buf, size_t len, const char *agent_id, const char *file,
		   struct tsr_err *err)
{
	int n;

	assert(ids_valid_agent_id(agent_id));
	n = snprintf(buf, len, "%s%s%s%s", CG_PREFIX, agent_id, file[0] != '\0' ? "/" : "", file);
	if (n < 0 || (size_t)n >= len)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cgroup name too long");
	return 0;
}

/*
 * Reads f's next line into line (len bytes) without its newline; a line
 * longer than that is skipped whole. false at the end or on an error.
 */
static bool cg_next_line(FILE *f, char *line, size_t len)
{
	bool whole = true;
	size_t n;

	while (fgets(line, (int)len, f) != NULL) {
		n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		else if (n + 1 == len) {
			whole = false; /* the rest of a line too long */
			continue;
		}
		if (whole)
			return true;
		whole = true;
	}
	return false;
}

/* Whether the absolute path p names a parent anywhere ("/.." as a whole component). */
static bool cg_has_dotdot(const char *p)
{
	for (const char *d = strstr(p, "/.."); d != NULL; d = strstr(d + 1, "/.."))
		if (d[3] == '/' || d[3] == '\0')
			return true;
	return false;
}

/*
 * This process's cgroup v2 path ("0::PATH" in /proc/self/cgroup) into path
 * (len bytes), or "" with the reason in why.
 */
static int cg_self_path(struct agent_cgroup *cg, char *path, size_t len, char *why, size_t why_len,
			struct tsr_err *err)
{
	static const char deleted[] = " (deleted)";
	char line[CG_LINE_MAX];
	bool found = false;
	size_t n;
	FILE *f;

	path[0] = '\0';
	f = fopen("/proc/self/cgroup", "re");
	if (f == NULL)
		return cg_open_failed(cg, errno, "/proc/self/cgroup", why, why_len, err);
	while (!found && cg_next_line(f, line, sizeof(line)))
		found = strncmp(line, "0::", 3) == 0;
	fclose(f);
	/* Until cgroup2 is mounted somewhere the kernel shows no "0::" line. */
	if (!found)
		return cg_disable(cg, why, why_len, "this host has no cgroup v2 hierarchy");
	n = strlen(line + 3);
	if (n >= sizeof(deleted) - 1 && strcmp(line + 3 + n - (sizeof(deleted) - 1), deleted) == 0)
		return cg_disable(cg, why, why_len, "this process's cgroup has been removed");
	/* A cgroup outside our cgroup namespace shows as "/../..". */
	if (line[3] != '/' || cg_has_dotdot(line + 3))
		return cg_disable(cg, why, why_len,
				  "this process's cgroup is outside its cgroup namespace");
	if (n >= len)
		return cg_disable(cg, why, why_len, "this process's cgroup path is too long");
	memcpy(path, line + 3, n + 1);
	return 0;
}

/* Undoes mountinfo's escapes in place: "\040" is a space, and so on. */
static void cg_unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++, w++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w = *s;
		}
	}
	*w = '\0';
}

/*
 * Whether the mountinfo line (split in place) is a cgroup2 mount whose root
 * holds cgroup path; if so, path's directory under its mount point goes
 * into base (len bytes).
 */
static bool cg_mount_match(char *line, const char *path, char *base, size_t len)
{
	char *field[CG_MOUNT_FIELDS], *save = NULL, *tok, *root, *mnt;
	const char *rel;
	size_t rl;
	int n;

	tok = strtok_r(line, " ", &save);
	for (int i = 0; i < CG_MOUNT_FIELDS; i++, tok = strtok_r(NULL, " ", &save)) {
		if (tok == NULL)
			return false;
		field[i] = tok;
	}
	/* Mount options, then optional fields up to "-", then the file system type. */
	while (tok != NULL && strcmp(tok, "-") != 0)
		tok = strtok_r(NULL, " ", &save);
	tok = strtok_r(NULL, " ", &save);
	if (tok == NULL || strcmp(tok, "cgroup2") != 0)
		return false;
	root = field[3];
	mnt = field[4];
	cg_unescape(root);
	cg_unescape(mnt);
	rl = strlen(root);
	if (strcmp(root, "/") == 0)
		rel = path;
	else if (strncmp(path, root, rl) == 0 && (path[rl] == '\0' || path[rl] == '/'))
		rel = path + rl;
	else
		return false;
	if (strcmp(rel, "/") == 0)
		rel = "";
	n = snprintf(base, len, "%s%s", strcmp(mnt, "/") == 0 && rel[0] != '\0' ? "" : mnt, rel);
	return n >= 0 && (size_t)n < len;
}

/*
 * The directory of cgroup path under the cgroup2 mount holding it, into base
 * (len bytes), or "" with the reason in why. Of several mounts the last
 * wins: a later mount on the same point hides an earlier one.
 */
static int cg_mount_base(struct agent_cgroup *cg, const char *path, char *base, size_t len,
			 char *why, size_t why_len, struct tsr_err *err)
{
	char line[CG_LINE_MAX], found[AGENT_CGROUP_PATH_MAX];
	FILE *f;

	base[0] = '\0';
	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return cg_open_failed(cg, errno, "/proc/self/mountinfo", why, why_len, err);
	while (cg_next_line(f, line, sizeof(line)))
		if (cg_mount_match(line, path, found, sizeof(found)))
			snprintf(base, len, "%s", found);
	fclose(f);
	if (base[0] == '\0')
		return cg_disable(cg, why, why_len,
				  "no cgroup2 mount holds this process's cgroup %s", path);
	return 0;
}

int agent_cgroup_open(struct agent_cgroup *cg, bool want_off, char *why, size_t why_len,
		      struct tsr_err *err)
{
	char path[AGENT_CGROUP_PATH_MAX], base[AGENT_CGROUP_PATH_MAX];

	cg_init(cg, why, why_len);
	if (want_off)
		return cg_disable(cg, why, why_len, "agent-cgroups off in the config");
	if (cg_self_path(cg, path, sizeof(path), why, why_len, err) != 0)
		return -1;
	if (path[0] == '\0')
		return 0;
	if (cg_mount_base(cg, path, base, sizeof(base), why, why_len, err) != 0)
		return -1;
	if (base[0] == '\0')
		return 0;
	return agent_cgroup_open_at(cg, base, why, why_len, err);
}

/*
 * Makes BASE/tessera-probe-PID, opens its cgroup.procs and cgroup.kill for
 * writing (which writes nothing) and removes it: what agents' cgroups will
 * need. The root cgroup has no cgroup.kill, hence a child. cg disabled if
 * any step fails.
 */
static int cg_probe(struct agent_cgroup *cg, char *why, size_t why_len, struct tsr_err *err)
{
	static const char *const files[] = { "cgroup.procs", "cgroup.kill" };
	char name[CG_NAME_MAX], file[CG_NAME_MAX + sizeof("/cgroup.procs")], what[CG_NAME_MAX];
	const char *failed = NULL; /* the file that would not open */
	int fd, n, e = 0;

	n = snprintf(name, sizeof(name), "%s%ld", CG_PROBE, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(name))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cgroup probe name too long");
	/* One left by a spoke of the same pid that died while probing is reused. */
	if (mkdirat(cg->dirfd, name, 0755) != 0 && errno != EEXIST)
		return cg_open_failed(cg, errno, "cannot make a cgroup in the base", why, why_len,
				      err);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && failed == NULL; i++) {
		snprintf(file, sizeof(file), "%s/%s", name, files[i]);
		fd = openat(cg->dirfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			e = errno;
			failed = files[i];
		} else {
			close(fd);
		}
	}
	/* Before any cg_disable, which closes the base. */
	if (unlinkat(cg->dirfd, name, AT_REMOVEDIR) != 0 && failed == NULL)
		return cg_open_failed(cg, errno, "cannot remove a cgroup in the base", why, why_len,
				      err);
	if (failed == NULL)
		return 0;
	if (e == ENOENT)
		return cg_disable(cg, why, why_len,
				  "the kernel has no %s (Linux 5.14 or later needed)", failed);
	snprintf(what, sizeof(what), "cannot open %s of a cgroup in the base", failed);
	return cg_open_failed(cg, e, what, why, why_len, err);
}

int agent_cgroup_open_at(struct agent_cgroup *cg, const char *base, char *why, size_t why_len,
			 struct tsr_err *err)
{
	struct statfs sfs;
	size_t len;

	cg_init(cg, why, why_len);
	len = strnlen(base, AGENT_CGROUP_PATH_MAX);
	if (base[0] != '/' || len == AGENT_CGROUP_PATH_MAX)
		return cg_disable(cg, why, why_len,
				  "the cgroup base must be an absolute path under %d bytes",
				  AGENT_CGROUP_PATH_MAX);
	memcpy(cg->base, base, len + 1);
	cg->dirfd = open(base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cg->dirfd < 0)
		return cg_open_failed(cg, errno, base, why, why_len, err);
	if (fstatfs(cg->dirfd, &sfs) != 0)
		return cg_open_failed(cg, errno, base, why, why_len, err);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return cg_disable(cg, why, why_len, "%s is not in a cgroup2 file system", base);
	if (cg_probe(cg, why, why_len, err) != 0)
		return -1;
	cg->enabled = cg->dirfd >= 0; /* a failed probe closed it */
	return 0;
}

void agent_cgroup_close(struct agent_cgroup *cg)
{
	if (cg->dirfd >= 0)
		close(cg->dirfd);
	cg->dirfd = -1;
	cg->enabled = false;
}

int agent_cgroup_create(const struct agent_cgroup *cg, const char *agent_id, int *dirfd,
			struct tsr_err *err)
{
	char name[CG_NAME_MAX];

	*dirfd = -1;
	if (!cg->enabled)
		return 0;
	if (cg_name(name, sizeof(name), agent_id, "", err) != 0)
		return -1;
	if (mkdirat(cg->dirfd, name, 0755) != 0 && errno != EEXIST)
		return cg_fail(cg, name, errno, err);
	/* Not O_PATH: clone3 takes only a descriptor opened for reading. */
	*dirfd = openat(cg->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (*dirfd < 0)
		return cg_fail(cg, name, errno, err);
	return 0;
}

/* Writes text to the agent's cgroup file in one write(): each write is one command to cgroupfs. */
static int cg_write(const struct agent_cgroup *cg, const char *agent_id, const char *file,
		    const char *text, struct tsr_err *err)
{
	char name[CG_NAME_MAX];
	size_t len = strlen(text);
	ssize_t n;
	int fd, rc = -1;

	if (cg_name(name, sizeof(name), agent_id, file, err) != 0)
		return -1;
	fd = openat(cg->dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cg_fail(cg, name, errno, err);
	n = write(fd, text, len);
	if (n < 0) {
		cg_fail(cg, name, errno, err);
		goto out;
	}
	if ((size_t)n != len) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cgroup %s/%s: short write", cg->base, name);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int agent_cgroup_enter(const struct agent_cgroup *cg, const char *agent_id, pid_t pid,
		       struct tsr_err *err)
{
	char text[24];

	if (!cg->enabled)
		return 0;
	snprintf(text, sizeof(text), "%ld", (long)pid);
	return cg_write(cg, agent_id, "cgroup.procs", text, err);
}

int agent_cgroup_kill(const struct agent_cgroup *cg, const char *agent_id, struct tsr_err *err)
{
	if (!cg->enabled)
		return 0;
	if (cg_write(cg, agent_id, "cgroup.kill", "1", err) != 0)
		return err->code == GRPC_STATUS_NOT_FOUND ? 0 : -1; /* nothing left to kill */
	return 0;
}

int agent_cgroup_populated(const struct agent_cgroup *cg, const char *agent_id, bool *populated,
			   struct tsr_err *err)
{
	static const char key[] = "populated ";
	char name[CG_NAME_MAX], buf[CG_EVENTS_MAX + 1];
	const char *p;
	ssize_t n;
	int fd, rc = -1;

	*populated = false;
	if (!cg->enabled)
		return 0;
	if (cg_name(name, sizeof(name), agent_id, "cgroup.events", err) != 0)
		return -1;
	fd = openat(cg->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : cg_fail(cg, name, errno, err);
	do
		n = read(fd, buf, CG_EVENTS_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* ENODEV: removed since the open, so empty. */
		rc = errno == ENODEV ? 0 : cg_fail(cg, name, errno, err);
		goto out;
	}
	buf[n] = '\0';
	p = strncmp(buf, key, sizeof(key) - 1) == 0 ? buf : strstr(buf, "\npopulated ");
	if (p != NULL && p != buf)
		p++;
	if (p == NULL || (p[sizeof(key) - 1] != '0' && p[sizeof(key) - 1] != '1') ||
	    p[sizeof(key)] != '\n') {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cgroup %s/%s: no populated line", cg->base,
			    name);
		goto out;
	}
	*populated = p[sizeof(key) - 1] == '1';
	rc = 0;
out:
	close(fd);
	return rc;
}

int agent_cgroup_remove(const struct agent_cgroup *cg, const char *agent_id, struct tsr_err *err)
{
	char name[CG_NAME_MAX];

	if (!cg->enabled)
		return 0;
	if (cg_name(name, sizeof(name), agent_id, "", err) != 0)
		return -1;
	if (unlinkat(cg->dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		return cg_fail(cg, name, errno, err);
	return 0;
}
