/*
 * test_agent_files: the state directory (preparing it, and each refusal),
 * file paths, the output file (creation, tail, NUL bytes, holes punched
 * before the tail), exit records (each form and each malformed one),
 * what an agent can put at either path instead (a symbolic link, a
 * directory, an oversized file, a FIFO: replaced when created, refused
 * when read, never waited on), removal and the sweep of agent ids.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_files.h"
#include "check_main.h"
#include "ids.h"

#define DIR_MAX 64
#define IDS_SEEN_MAX 16

static char dir[DIR_MAX];
static char id[TSR_AGENT_ID_MAX + 1];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tsr-af-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(ids_new_agent_id("s1", id, sizeof(id)), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void in_dir(char *buf, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(buf, len, "%s/%s", dir, name), (int)len);
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static void exit_file_len(const char *text, size_t len)
{
	char path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;

	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_EXIT, path, sizeof(path), &err), 0);
	write_file(path, text, len);
}

static void exit_file(const char *text)
{
	exit_file_len(text, strlen(text));
}

/* Whether path is a regular file itself, not a link to one. */
static bool is_regular(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

START_TEST(test_dir_prepare)
{
	char sub[128], file[128], deep[160], longdir[AGENT_FILES_DIR_MAX + 2];
	struct stat sb;
	struct tsr_err err;

	in_dir(sub, sizeof(sub), "state");
	ck_assert_msg(agent_files_dir_prepare(sub, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(stat(sub, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	/* Again, existing: fine; and open to others: fine, with a warning. */
	ck_assert_int_eq(agent_files_dir_prepare(sub, &err), 0);
	ck_assert_int_eq(chmod(sub, 0777), 0);
	ck_assert_int_eq(agent_files_dir_prepare(sub, &err), 0);

	ck_assert_int_eq(agent_files_dir_prepare("relative/dir", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	longdir[0] = '/';
	memset(longdir + 1, 'd', AGENT_FILES_DIR_MAX);
	longdir[AGENT_FILES_DIR_MAX + 1] = '\0';
	ck_assert_int_eq(agent_files_dir_prepare(longdir, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	in_dir(file, sizeof(file), "file");
	write_file(file, "x", 1);
	ck_assert_int_eq(agent_files_dir_prepare(file, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a directory"));
	/* Missing parents are made, as mkdir -p would... */
	in_dir(deep, sizeof(deep), "no/such/parent");
	ck_assert_msg(agent_files_dir_prepare(deep, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(stat(deep, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	/* ...but not through a file. */
	in_dir(deep, sizeof(deep), "file/sub");
	ck_assert_int_eq(agent_files_dir_prepare(deep, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "Not a directory"));
}
END_TEST

START_TEST(test_path)
{
	char path[AGENT_FILES_PATH_MAX], want[AGENT_FILES_PATH_MAX], small[32];
	struct tsr_err err;

	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_OUT, path, sizeof(path), &err), 0);
	snprintf(want, sizeof(want), "%s/%s.out", dir, id);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_EXIT, path, sizeof(path), &err), 0);
	snprintf(want, sizeof(want), "%s/%s.exit", dir, id);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(
		agent_files_path(dir, "../etc/passwd", AGENT_FILE_OUT, path, sizeof(path), &err),
		-1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_OUT, small, sizeof(small), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
}
END_TEST

START_TEST(test_output_tail)
{
	int wr = -1, rd = -1, rd2 = -1;
	char *tail = NULL;
	size_t len = 0;
	struct tsr_err err;

	ck_assert_msg(agent_files_out_create(dir, id, &wr, &err) == 0, "%s", err.msg);
	ck_assert_msg(agent_files_out_open(dir, id, &rd, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(agent_files_out_tail(rd, 100, &tail, &len, NULL, &err), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(tail, "");
	free(tail);
	ck_assert_int_eq(write(wr, "first line\nsec\0nd\n", 18), 18);
	ck_assert_int_eq(agent_files_out_tail(rd, 100, &tail, &len, NULL, &err), 0);
	ck_assert_uint_eq(len, 18);
	ck_assert_str_eq(tail, "first line\nsec?nd\n");
	free(tail);
	ck_assert_int_eq(agent_files_out_tail(rd, 4, &tail, &len, NULL, &err), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_str_eq(tail, "?nd\n");
	free(tail);
	/* Append only, from the agent's side. */
	ck_assert_int_eq(lseek(wr, 0, SEEK_SET), 0);
	ck_assert_int_eq(write(wr, "more", 4), 4);
	ck_assert_msg(agent_files_out_open(dir, id, &rd2, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(agent_files_out_tail(rd2, 6, &tail, &len, NULL, &err), 0);
	ck_assert_str_eq(tail, "d\nmore");
	free(tail);
	/* A new file for the same agent starts empty; the old one's descriptor reads the old. */
	close(wr);
	ck_assert_int_eq(agent_files_out_create(dir, id, &wr, &err), 0);
	ck_assert_int_eq(agent_files_out_read_tail(dir, id, 100, &tail, &len, NULL, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(tail);
	ck_assert_int_eq(agent_files_out_tail(rd, 4, &tail, &len, NULL, &err), 0);
	ck_assert_str_eq(tail, "more");
	free(tail);
	close(wr);
	close(rd);
	close(rd2);
	ck_assert_int_eq(agent_files_out_tail(rd2, 6, &tail, &len, NULL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
}
END_TEST

START_TEST(test_output_refusals)
{
	char path[AGENT_FILES_PATH_MAX], other[TSR_AGENT_ID_MAX + 1], *tail = NULL;
	size_t len = 0;
	int wr, rd;
	struct tsr_err err;

	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(agent_files_out_read_tail(dir, id, 10, &tail, &len, NULL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_ptr_null(tail);
	ck_assert_int_eq(agent_files_out_open(dir, "bad", &rd, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(agent_files_out_create(dir, "bad", &wr, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	/* A symlink planted where the output goes is never followed... */
	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_OUT, path, sizeof(path), &err), 0);
	ck_assert_int_eq(symlink("/etc/hostname", path), 0);
	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
	/* ...and a new file replaces it. */
	ck_assert_msg(agent_files_out_create(dir, id, &wr, &err) == 0, "%s", err.msg);
	ck_assert(is_regular(path));
	close(wr);
	/* Neither does a FIFO block the spoke: replaced when created, refused when opened. */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "is not a regular file (a FIFO)"));
	ck_assert_msg(agent_files_out_create(dir, id, &wr, &err) == 0, "%s", err.msg);
	ck_assert(is_regular(path));
	close(wr);
	/* What cannot be replaced fails the creation. */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(agent_files_out_create(dir, id, &wr, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	/* No directory to create it in. */
	ck_assert_int_eq(ids_new_agent_id("s1", other, sizeof(other)), 0);
	ck_assert_int_eq(agent_files_out_create("/nonexistent-tsr", other, &wr, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
}
END_TEST

/* Punching: nothing until the slack is exceeded, then whole blocks before the tail. */
START_TEST(test_output_trim)
{
	const size_t tail = 10000, chunk = 64 * 1024;
	char *buf = malloc(chunk), *out = NULL, path[AGENT_FILES_PATH_MAX];
	int64_t punched = 0, stop = -1, ro = 0;
	size_t total = 0, len = 0;
	struct stat before, after;
	int wr, rd;
	struct tsr_err err;

	ck_assert_ptr_nonnull(buf);
	memset(buf, 'o', chunk);
	ck_assert_int_eq(agent_files_out_create(dir, id, &wr, &err), 0);
	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), 0);
	while (total + chunk <= AGENT_FILES_SLACK) {
		ck_assert_int_eq(write(wr, buf, chunk), (ssize_t)chunk);
		total += chunk;
	}
	agent_files_out_trim(dir, id, tail, &punched);
	ck_assert_int_eq(punched, 0);
	ck_assert_int_eq(write(wr, buf, chunk), (ssize_t)chunk);
	ck_assert_int_eq(write(wr, "the end", 7), 7);
	total += chunk + 7;
	ck_assert_int_eq(fsync(wr), 0);
	ck_assert_int_eq(fstat(rd, &before), 0);
	/* By name, as the spoke does it: it holds no descriptor of a running agent's output. */
	agent_files_out_trim(dir, id, tail, &punched);
	ck_assert_int_eq(punched, (int64_t)((total - tail) / 4096 * 4096));
	ck_assert_int_eq(fstat(rd, &after), 0);
	ck_assert_int_eq(after.st_size, (off_t)total);
	ck_assert_int_lt(after.st_blocks, before.st_blocks);
	ck_assert_int_eq(agent_files_out_tail(rd, 7, &out, &len, NULL, &err), 0);
	ck_assert_str_eq(out, "the end");
	free(out);
	/* Nothing new beyond the slack: nothing more to punch. */
	agent_files_out_punch(rd, tail, &punched, id);
	ck_assert_int_eq(punched, (int64_t)((total - tail) / 4096 * 4096));
	/* Stopped for good after a file system said no. */
	agent_files_out_punch(rd, tail, &stop, id);
	ck_assert_int_eq(stop, -1);
	agent_files_out_trim(dir, id, tail, &stop);
	ck_assert_int_eq(stop, -1);
	/* A descriptor that cannot punch (read only): it stops, quietly. */
	close(rd);
	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_OUT, path, sizeof(path), &err), 0);
	rd = open(path, O_RDONLY);
	ck_assert_int_ge(rd, 0);
	agent_files_out_punch(rd, 1, &ro, id);
	ck_assert_int_eq(ro, -1);
	close(rd);
	close(wr);
	free(buf);
}
END_TEST

/* Where the last n lines of text begin, read from a fresh output file. */
static int64_t lines_start(const char *text, unsigned n)
{
	struct tsr_err err;
	int64_t pos = -1;
	int wr, rd;

	agent_files_remove(dir, id);
	ck_assert_int_eq(agent_files_out_create(dir, id, &wr, &err), 0);
	ck_assert_int_eq(write(wr, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), 0);
	ck_assert_int_eq(agent_files_out_lines_start(rd, n, &pos, &err), 0);
	close(rd);
	close(wr);
	return pos;
}

/* tail -n's lines: a last line without its newline counts. */
START_TEST(test_output_lines_start)
{
	ck_assert_int_eq(lines_start("a\nb\nc\n", 1), 4);
	ck_assert_int_eq(lines_start("a\nb\nc\n", 2), 2);
	ck_assert_int_eq(lines_start("a\nb\nc\n", 3), 0);
	ck_assert_int_eq(lines_start("a\nb\nc\n", 9), 0);
	ck_assert_int_eq(lines_start("a\nb\nc", 1), 4);
	ck_assert_int_eq(lines_start("a\nb\nc", 2), 2);
	ck_assert_int_eq(lines_start("a\nb\nc\n", 0), 6);
	ck_assert_int_eq(lines_start("", 3), 0);
	ck_assert_int_eq(lines_start("\n\n", 1), 1);
}
END_TEST

/*
 * Reading by offset: what was punched is skipped and counted, never read
 * as zeros, and the bytes after it come at their own offsets.
 */
START_TEST(test_output_read_offsets)
{
	const size_t chunk = 64 * 1024, tail = 100;
	char *buf = malloc(chunk), got[256];
	int64_t pos = 0, skipped = 0, punched = 0, start;
	size_t n, total = 0;
	struct tsr_err err;
	int wr, rd;

	ck_assert_ptr_nonnull(buf);
	memset(buf, 'o', chunk);
	ck_assert_int_eq(agent_files_out_create(dir, id, &wr, &err), 0);
	ck_assert_int_eq(agent_files_out_open(dir, id, &rd, &err), 0);
	ck_assert_int_eq(agent_files_out_read(rd, &pos, got, sizeof(got), &n, &skipped, &err), 0);
	ck_assert_uint_eq(n, 0);
	while (total <= AGENT_FILES_SLACK + chunk) {
		ck_assert_int_eq(write(wr, buf, chunk), (ssize_t)chunk);
		total += chunk;
	}
	ck_assert_int_eq(write(wr, "\nthe end\n", 9), 9);
	total += 9;
	agent_files_out_punch(rd, tail, &punched, id);
	ck_assert_int_gt(punched, 0);
	ck_assert_int_eq(agent_files_out_read(rd, &pos, got, sizeof(got), &n, &skipped, &err), 0);
	ck_assert_int_eq(skipped, punched);
	ck_assert_int_eq(pos, punched);
	ck_assert_uint_eq(n, sizeof(got));
	ck_assert_int_eq(got[0], 'o');
	/* Up to the end, at its offset; then nothing more. */
	pos = (int64_t)total - 8;
	skipped = 0;
	ck_assert_int_eq(agent_files_out_read(rd, &pos, got, sizeof(got), &n, &skipped, &err), 0);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(memcmp(got, "the end\n", 8), 0);
	ck_assert_int_eq(skipped, 0);
	pos = (int64_t)total;
	ck_assert_int_eq(agent_files_out_read(rd, &pos, got, sizeof(got), &n, &skipped, &err), 0);
	ck_assert_uint_eq(n, 0);
	/* The last lines start within what is held. */
	ck_assert_int_eq(agent_files_out_lines_start(rd, 1, &start, &err), 0);
	ck_assert_int_eq(start, (int64_t)total - 8);
	ck_assert_int_eq(agent_files_out_lines_start(rd, 2, &start, &err), 0);
	ck_assert_int_ge(start, punched);
	close(rd);
	close(wr);
	free(buf);
}
END_TEST

/* Reads the exit record text; the end it gives, or -1 with code. */
static int read_exit(const char *text, struct agent_end *end, grpc_status_code *code)
{
	struct tsr_err err;
	int rc;

	if (text != NULL)
		exit_file(text);
	tsr_err_clear(&err);
	rc = agent_files_exit_read(dir, id, end, &err);
	*code = err.code;
	return rc;
}

START_TEST(test_exit_records)
{
	static const char *const bad[] = {
		"",	     "exit\n",	  "exit 3",	"exit 3 \n",
		"exit x\n",  "exit -1\n", "exit 256\n", "quit 3\n",
		"none",	     "none\n\n",  "signal\n",	"exit 99999999999999999999\n",
		"exitt 3\n",
	};
	struct agent_end end;
	grpc_status_code code;
	char big[65];
	struct tsr_err err;

	ck_assert_int_eq(read_exit(NULL, &end, &code), 0);
	ck_assert(!end.found);
	ck_assert_int_eq(read_exit("none\n", &end, &code), 0);
	ck_assert(end.found);
	ck_assert(!end.started);
	ck_assert_int_eq(read_exit("exit 0\n", &end, &code), 0);
	ck_assert(end.found && end.started && !end.signaled);
	ck_assert_int_eq(end.status, 0);
	ck_assert_int_eq(read_exit("exit 255\n", &end, &code), 0);
	ck_assert_int_eq(end.status, 255);
	ck_assert_int_eq(read_exit("signal 9\n", &end, &code), 0);
	ck_assert(end.found && end.started && end.signaled);
	ck_assert_int_eq(end.status, 9);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(read_exit(bad[i], &end, &code) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(code, GRPC_STATUS_INTERNAL);
		ck_assert(!end.found);
	}
	ck_assert_int_eq(agent_files_exit_read(dir, "bad", &end, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	/* A NUL byte within, and more than a record's bound (a valid record first). */
	exit_file_len("exit 0\n\0", 8);
	ck_assert_int_eq(agent_files_exit_read(dir, id, &end, &err), -1);
	ck_assert_str_eq(err.msg, "exit record is malformed");
	exit_file_len("none\n\0", 6);
	ck_assert_int_eq(agent_files_exit_read(dir, id, &end, &err), -1);
	ck_assert(!end.found);
	memset(big, ' ', sizeof(big));
	memcpy(big, "exit 0\n", 7);
	exit_file_len(big, sizeof(big));
	ck_assert_int_eq(agent_files_exit_read(dir, id, &end, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_str_eq(err.msg, "exit record is larger than 64 bytes");
	ck_assert(!end.found);
}
END_TEST

/*
 * Anything but a regular file where the exit record goes is refused at
 * once, saying what it is, with no path in the message (it becomes the
 * agent's error): a directory, a symlink, and a FIFO with no writer,
 * which a blocking open would wait on for good.
 */
START_TEST(test_exit_record_not_a_file)
{
	char path[AGENT_FILES_PATH_MAX];
	struct agent_end end;
	struct tsr_err err;

	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_EXIT, path, sizeof(path), &err), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(agent_files_exit_read(dir, id, &end, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_str_eq(err.msg, "exit record is not a regular file (a directory)");
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(symlink("/etc/hostname", path), 0);
	ck_assert_int_eq(agent_files_exit_read(dir, id, &end, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_str_eq(err.msg, "exit record is a symbolic link");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(agent_files_exit_read(dir, id, &end, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_str_eq(err.msg, "exit record is not a regular file (a FIFO)");
	ck_assert(!end.found);
	/* And the FIFO goes with the agent's files. */
	agent_files_remove(dir, id);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(test_remove)
{
	char out[AGENT_FILES_PATH_MAX], ex[AGENT_FILES_PATH_MAX], tmp[AGENT_FILES_PATH_MAX + 8];
	struct tsr_err err;

	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_OUT, out, sizeof(out), &err), 0);
	ck_assert_int_eq(agent_files_path(dir, id, AGENT_FILE_EXIT, ex, sizeof(ex), &err), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", ex);
	write_file(out, "o", 1);
	write_file(ex, "exit 0\n", 7);
	write_file(tmp, "exit", 4);
	agent_files_remove(dir, id);
	ck_assert_int_eq(access(out, F_OK), -1);
	ck_assert_int_eq(access(ex, F_OK), -1);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	/* Missing ones are fine; a bad id touches nothing. */
	agent_files_remove(dir, id);
	write_file(out, "o", 1);
	agent_files_remove(dir, "../x");
	ck_assert_int_eq(access(out, F_OK), 0);
	/* What cannot be unlinked stays, with a warning, and the rest goes. */
	ck_assert_int_eq(mkdir(ex, 0700), 0);
	ck_assert_int_eq(mkdir(tmp, 0700), 0);
	agent_files_remove(dir, id);
	ck_assert_int_eq(access(out, F_OK), -1);
	ck_assert_int_eq(access(ex, F_OK), 0);
}
END_TEST

struct seen {
	size_t n;
	char ids[IDS_SEEN_MAX][TSR_AGENT_ID_MAX + 1];
};

static void collect(void *arg, const char *agent_id)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, IDS_SEEN_MAX);
	snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s", agent_id);
}

static size_t count(const struct seen *s, const char *agent_id)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += strcmp(s->ids[i], agent_id) == 0;
	return n;
}

START_TEST(test_each)
{
	char other[TSR_AGENT_ID_MAX + 1], name[200], path[260];
	struct seen s = { 0 };
	struct tsr_err err;

	ck_assert_int_eq(ids_new_agent_id("s1", other, sizeof(other)), 0);
	exit_file("exit 0\n");
	snprintf(name, sizeof(name), "%s.out", id);
	in_dir(path, sizeof(path), name);
	write_file(path, "", 0);
	snprintf(name, sizeof(name), "%s.out", other);
	in_dir(path, sizeof(path), name);
	write_file(path, "", 0);
	/* Not agents' files. */
	in_dir(path, sizeof(path), "notes");
	write_file(path, "", 0);
	in_dir(path, sizeof(path), "a.b");
	write_file(path, "", 0);
	in_dir(path, sizeof(path), "s1.nothex.out");
	write_file(path, "", 0);
	memset(name, 'x', 120);
	snprintf(name + 120, sizeof(name) - 120, ".a.out");
	in_dir(path, sizeof(path), name);
	write_file(path, "", 0);
	ck_assert_msg(agent_files_each(dir, collect, &s, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_uint_eq(count(&s, id), 2);
	ck_assert_uint_eq(count(&s, other), 1);
	ck_assert_int_eq(agent_files_each("/nonexistent-tsr", collect, &s, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "agent_files",
			 CHECK_TESTS(test_dir_prepare, test_path, test_output_tail,
				     test_output_refusals, test_output_trim,
				     test_output_lines_start, test_output_read_offsets,
				     test_exit_records, test_exit_record_not_a_file, test_remove,
				     test_each));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	return 0;
}
