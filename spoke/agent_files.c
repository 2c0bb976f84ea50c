/* agent_files: an agent's output and exit files in the spoke's state directory. */
#include "agent_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"
#include "protocol.h"

#define AGENT_FILES_BLOCK 4096	    /* punched ranges are whole blocks */
#define AGENT_FILES_EXIT_MAX 64	    /* bytes of an exit record; "signal 255\n" is 11 */
#define AGENT_FILES_SCAN_MAX 100000 /* directory entries one sweep looks at */

static const char *const agent_file_suffix[] = {
	[AGENT_FILE_OUT] = ".out",
	[AGENT_FILE_EXIT] = ".exit",
};

int agent_files_dir_prepare(const char *dir, struct tsr_err *err)
{
	char path[AGENT_FILES_DIR_MAX + 1];
	struct stat sb;
	size_t len;

	len = strnlen(dir, AGENT_FILES_DIR_MAX + 1);
	if (dir[0] != '/' || len > AGENT_FILES_DIR_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "state-dir must be an absolute path of at most %d bytes",
				   AGENT_FILES_DIR_MAX);
	/* Missing parents too, as `mkdir -p` would: the default is under /var/lib. */
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, i == len ? 0700 : 0755) != 0 && errno != EEXIST)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "state-dir %s: %s: %s", dir,
					   path, strerror(errno));
		path[i] = dir[i];
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "state-dir %s: not a directory", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "state-dir %s: %s", dir,
				   strerror(errno));
	if (sb.st_mode & 0022)
		log_warn("state-dir %s is writable by others: agent output lives there", dir);
	return 0;
}

int agent_files_path(const char *dir, const char *agent_id, enum agent_file_kind kind, char *buf,
		     size_t len, struct tsr_err *err)
{
	int n;

	if (!ids_valid_agent_id(agent_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid agent id");
	n = snprintf(buf, len, "%s/%s%s", dir, agent_id, agent_file_suffix[kind]);
	if (n < 0 || (size_t)n >= len)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "state-dir path too long");
	return 0;
}

/* What a file of mode m is, for a message. */
static const char *af_file_type(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	return "of another kind";
}

/*
 * Opens path with access mode flags as a regular file and nothing else,
 * *fd and *sb its descriptor and status; what names it in messages. An
 * agent can put anything at its files' paths: a symbolic link is never
 * followed, and the open never blocks, which opening a FIFO would until
 * some writer came. NOT_FOUND if there is no such file.
 */
static int af_open_regular(const char *path, int flags, const char *what, int *fd, struct stat *sb,
			   struct tsr_err *err)
{
	int f, rc = -1;

	f = open(path, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0) {
		if (errno == ELOOP)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s is a symbolic link",
					   what);
		return tsr_err_set(err,
				   errno == ENOENT ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INTERNAL,
				   "%s: %s", what, strerror(errno));
	}
	if (fstat(f, sb) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", what, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb->st_mode)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s is not a regular file (%s)", what,
			    af_file_type(sb->st_mode));
		goto out;
	}
	*fd = f;
	f = -1;
	rc = 0;
out:
	if (f >= 0)
		close(f);
	return rc;
}

int agent_files_out_create(const char *dir, const char *agent_id, int *wr, struct tsr_err *err)
{
	char path[AGENT_FILES_PATH_MAX];
	int w;

	if (agent_files_path(dir, agent_id, AGENT_FILE_OUT, path, sizeof(path), err) != 0)
		return -1;
	/* A new file, whatever was there: opening a FIFO left there would block. */
	if (unlink(path) != 0 && errno != ENOENT)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", path, strerror(errno));
	w = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (w < 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", path, strerror(errno));
	*wr = w;
	return 0;
}

int agent_files_out_open(const char *dir, const char *agent_id, int *rd, struct tsr_err *err)
{
	char path[AGENT_FILES_PATH_MAX];
	struct stat sb;

	if (agent_files_path(dir, agent_id, AGENT_FILE_OUT, path, sizeof(path), err) != 0)
		return -1;
	return af_open_regular(path, O_RDWR, path, rd, &sb, err);
}

int agent_files_out_tail(int rd, size_t tail, char **out, size_t *len, int64_t *end,
			 struct tsr_err *err)
{
	struct stat sb;
	off_t start;
	size_t want, got = 0;
	ssize_t n;
	char *s;

	if (fstat(rd, &sb) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "output: %s", strerror(errno));
	start = sb.st_size > (off_t)tail ? sb.st_size - (off_t)tail : 0;
	want = (size_t)(sb.st_size - start);
	s = malloc(want + 1);
	if (s == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	/* A short read means the file was truncated meanwhile: keep what came. */
	while (got < want) {
		n = pread(rd, s + got, want - got, start + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(s);
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "output: %s",
					   strerror(errno));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	for (size_t i = 0; i < got; i++)
		if (s[i] == '\0')
			s[i] = '?';
	s[got] = '\0';
	*out = s;
	*len = got;
	if (end != NULL)
		*end = (int64_t)start + (int64_t)got;
	return 0;
}

int agent_files_out_read_tail(const char *dir, const char *agent_id, size_t tail, char **out,
			      size_t *len, int64_t *end, struct tsr_err *err)
{
	int rd = -1, rc;

	if (agent_files_out_open(dir, agent_id, &rd, err) != 0)
		return -1;
	rc = agent_files_out_tail(rd, tail, out, len, end, err);
	close(rd);
	return rc;
}

/*
 * The first byte at or after pos that holds data; pos itself when none
 * does yet (the supervisor never punches the output's end, so that means
 * pos is at its end, and what the agent writes next lands there).
 */
static int af_data_at(int rd, int64_t pos, int64_t *data, struct tsr_err *err)
{
	off_t d = lseek(rd, (off_t)pos, SEEK_DATA);

	if (d < 0 && errno != ENXIO)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "output: %s", strerror(errno));
	*data = d < 0 ? pos : (int64_t)d;
	return 0;
}

int agent_files_out_read(int rd, int64_t *pos, char *buf, size_t cap, size_t *n, int64_t *skipped,
			 struct tsr_err *err)
{
	int64_t data = 0, after = 0;
	ssize_t got;

	for (;;) {
		if (af_data_at(rd, *pos, &data, err) != 0)
			return -1;
		*skipped += data - *pos;
		*pos = data;
		do
			got = pread(rd, buf, cap, (off_t)*pos);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "output: %s",
					   strerror(errno));
		if (got == 0)
			break;
		/* A punch landing during the read left zeros: read again past it. */
		if (af_data_at(rd, *pos, &after, err) != 0)
			return -1;
		if (after == *pos)
			break;
	}
	*n = (size_t)got;
	return 0;
}

/* Where in buf[0, len) the *lines-th newline back ends; -1, less *lines, if before it. */
static ssize_t af_lines_back(const char *buf, size_t len, unsigned *lines)
{
	for (size_t i = len; i > 0; i--)
		if (buf[i - 1] == '\n' && --*lines == 0)
			return (ssize_t)i;
	return -1;
}

size_t agent_files_tail_lines_start(const char *tail, size_t len, unsigned lines)
{
	ssize_t k;

	if (lines == 0 || len == 0)
		return len;
	k = af_lines_back(tail, len - (tail[len - 1] == '\n'), &lines);
	return k < 0 ? 0 : (size_t)k;
}

int agent_files_out_lines_start(int rd, unsigned lines, int64_t *pos, struct tsr_err *err)
{
	char buf[AGENT_FILES_BLOCK];
	int64_t end, floor, at, first = 0;
	struct stat sb;
	size_t len;
	ssize_t got, k;
	unsigned left = lines;

	if (fstat(rd, &sb) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "output: %s", strerror(errno));
	if (af_data_at(rd, 0, &first, err) != 0)
		return -1;
	end = sb.st_size;
	floor = end - TSR_OUTPUT_MAX > first ? end - TSR_OUTPUT_MAX : first;
	*pos = floor;
	if (lines == 0) {
		*pos = end;
		return 0;
	}
	for (at = end; at > floor; at -= (int64_t)len) {
		len = at - floor > (int64_t)sizeof(buf) ? sizeof(buf) : (size_t)(at - floor);
		got = pread(rd, buf, len, (off_t)(at - (int64_t)len));
		if (got != (ssize_t)len)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "output: short read");
		/*
		 * The lines start after the lines-th newline back, not counting
		 * the one that ends the output (a last line without one counts).
		 */
		k = af_lines_back(buf, at == end ? len - (buf[len - 1] == '\n') : len, &left);
		if (k >= 0) {
			*pos = at - (int64_t)len + k;
			return 0;
		}
	}
	return 0;
}

void agent_files_out_punch(int rd, size_t tail, int64_t *punched, const char *agent_id)
{
	struct stat sb;
	off_t upto;

	if (*punched < 0 || fstat(rd, &sb) != 0)
		return;
	if (sb.st_size - *punched <= (off_t)(tail + AGENT_FILES_SLACK))
		return;
	upto = (sb.st_size - (off_t)tail) / AGENT_FILES_BLOCK * AGENT_FILES_BLOCK;
	if (fallocate(rd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, *punched, upto - *punched) !=
	    0) {
		log_agent_warn(agent_id, "cannot free old output (%s): the file keeps growing",
			       strerror(errno));
		*punched = -1;
		return;
	}
	*punched = upto;
}

void agent_files_out_trim(const char *dir, const char *agent_id, size_t tail, int64_t *punched)
{
	char path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;
	struct stat sb;
	int rd;

	if (*punched < 0 ||
	    agent_files_path(dir, agent_id, AGENT_FILE_OUT, path, sizeof(path), &err) != 0)
		return;
	/* Opened only to punch: most passes find nothing to free. */
	if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size - *punched <= (off_t)(tail + AGENT_FILES_SLACK) ||
	    af_open_regular(path, O_RDWR, path, &rd, &sb, &err) != 0)
		return;
	agent_files_out_punch(rd, tail, punched, agent_id);
	close(rd);
}

/* The exit record's text, n bytes NUL-ended in buf, into end. */
static int af_exit_parse(const char *buf, size_t n, struct agent_end *end, struct tsr_err *err)
{
	char word[8], *rest;
	long v;

	if (memchr(buf, '\0', n) != NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "exit record is malformed");
	if (strcmp(buf, "none\n") == 0) {
		end->found = true;
		return 0;
	}
	if (sscanf(buf, "%7s", word) != 1 ||
	    (strcmp(word, "exit") != 0 && strcmp(word, "signal") != 0))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "exit record is malformed");
	errno = 0;
	v = strtol(buf + strlen(word), &rest, 10);
	if (errno != 0 || rest == buf + strlen(word) || strcmp(rest, "\n") != 0 || v < 0 || v > 255)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "exit record is malformed");
	end->found = end->started = true;
	end->signaled = word[0] == 's';
	end->status = (int)v;
	return 0;
}

int agent_files_exit_read(const char *dir, const char *agent_id, struct agent_end *end,
			  struct tsr_err *err)
{
	char path[AGENT_FILES_PATH_MAX], buf[AGENT_FILES_EXIT_MAX + 1];
	struct stat sb;
	ssize_t n;
	int fd, rc = -1;

	memset(end, 0, sizeof(*end));
	if (agent_files_path(dir, agent_id, AGENT_FILE_EXIT, path, sizeof(path), err) != 0)
		return -1;
	if (af_open_regular(path, O_RDONLY, "exit record", &fd, &sb, err) != 0)
		return err->code == GRPC_STATUS_NOT_FOUND ? 0 : -1; /* none (yet) */
	if (sb.st_size > AGENT_FILES_EXIT_MAX) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "exit record is larger than %d bytes",
			    AGENT_FILES_EXIT_MAX);
		goto out;
	}
	do
		n = read(fd, buf, AGENT_FILES_EXIT_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "exit record: %s", strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	rc = af_exit_parse(buf, (size_t)n, end, err);
out:
	close(fd);
	return rc;
}

void agent_files_remove(const char *dir, const char *agent_id)
{
	char path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;

	for (int k = AGENT_FILE_OUT; k <= AGENT_FILE_EXIT; k++) {
		if (agent_files_path(dir, agent_id, (enum agent_file_kind)k, path, sizeof(path),
				     &err) != 0)
			return;
		if (unlink(path) != 0 && errno != ENOENT)
			log_agent_tag(LOG_LEVEL_WARN, agent_id, "%s: %s", path, strerror(errno));
	}
	/* What a shim killed while writing its exit record left (shim.c). */
	if (strlen(path) + 4 < sizeof(path)) {
		strcat(path, ".tmp");
		if (unlink(path) != 0 && errno != ENOENT)
			log_agent_tag(LOG_LEVEL_WARN, agent_id, "%s: %s", path, strerror(errno));
	}
}

int agent_files_each(const char *dir, void (*fn)(void *arg, const char *agent_id), void *arg,
		     struct tsr_err *err)
{
	char id[TSR_AGENT_ID_MAX + 1];
	struct dirent *de;
	DIR *d;
	size_t n, seen = 0;
	const char *dot;

	d = opendir(dir);
	if (d == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "state-dir %s: %s", dir,
				   strerror(errno));
	while ((de = readdir(d)) != NULL && seen++ < AGENT_FILES_SCAN_MAX) {
		dot = strchr(de->d_name, '.');
		/* Agent ids hold one dot: "<spoke>.<hex>"; the suffix is after the second. */
		dot = dot != NULL ? strchr(dot + 1, '.') : NULL;
		if (dot == NULL)
			continue;
		n = (size_t)(dot - de->d_name);
		if (n > TSR_AGENT_ID_MAX)
			continue;
		memcpy(id, de->d_name, n);
		id[n] = '\0';
		if (ids_valid_agent_id(id))
			fn(arg, id);
	}
	closedir(d);
	return 0;
}
