/*
 * agent_files: the files an agent leaves in the spoke's state directory,
 * which outlive the spoke process (unlike its memory and pipes), so that
 * a restarted spoke can still read what its agents did meanwhile:
 *   STATE_DIR/ID.out   stdout and stderr, appended by the agent. Only the
 *                      last tail bytes matter: the spoke punches holes
 *                      into what lies before them, so the disk holds at
 *                      most about tail + AGENT_FILES_SLACK bytes of it
 *                      while the spoke runs.
 *   STATE_DIR/ID.exit  "exit N" or "signal N", written by tessera-shim
 *                      once the agent has ended, or "none" if the shim
 *                      ended without starting it.
 * Both go once the agent's end is recorded in Valkey. The agent can put
 * anything at these paths: the spoke opens them only as regular files,
 * without following a symbolic link or blocking (a FIFO there is refused,
 * not waited on), and reads an exit record only up to a bound.
 */
#ifndef TSR_AGENT_FILES_H
#define TSR_AGENT_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AGENT_FILES_DIR_MAX 3800 /* state dir path; leaves room for names */
#define AGENT_FILES_PATH_MAX 4096
#define AGENT_FILES_SLACK (1024 * 1024) /* output kept beyond the tail before a punch */

enum agent_file_kind {
	AGENT_FILE_OUT,
	AGENT_FILE_EXIT,
};

/* Creates dir (and missing parents) if missing, mode 0700; it must be a directory we can write. */
int agent_files_dir_prepare(const char *dir, struct tsr_err *err);
/* The path of agent_id's file of kind, into buf (AGENT_FILES_PATH_MAX). */
int agent_files_path(const char *dir, const char *agent_id, enum agent_file_kind kind, char *buf,
		     size_t len, struct tsr_err *err);
/*
 * A new, empty output file for agent_id, replacing whatever was at its
 * path: *wr for the agent (append only, O_CLOEXEC). The spoke holds no
 * descriptor of it while the agent runs (one per agent would halve how
 * many can run under a file limit): it opens the file by name to read or
 * trim it.
 */
int agent_files_out_create(const char *dir, const char *agent_id, int *wr, struct tsr_err *err);
/*
 * Opens an existing output file for the spoke, to read and punch.
 * NOT_FOUND if there is none; INTERNAL if it is not a regular file.
 */
int agent_files_out_open(const char *dir, const char *agent_id, int *rd, struct tsr_err *err);
/*
 * A malloc'd, NUL-ended copy of the last tail bytes of the output file
 * open as rd, NUL bytes of the output as '?' (the tail travels as a
 * protobuf string); its length in *len, and in *end (if not NULL) the
 * offset where the output, and so the tail, ends.
 */
int agent_files_out_tail(int rd, size_t tail, char **out, size_t *len, int64_t *end,
			 struct tsr_err *err);
/* agent_files_out_open, agent_files_out_tail and close in one. */
int agent_files_out_read_tail(const char *dir, const char *agent_id, size_t tail, char **out,
			      size_t *len, int64_t *end, struct tsr_err *err);
/*
 * Frees the disk blocks of rd's output before its last tail bytes once
 * they exceed AGENT_FILES_SLACK; *punched is how far it has freed, kept
 * by the caller (0 at first). Quietly stops punching (*punched = -1) on a
 * file system that cannot.
 */
void agent_files_out_punch(int rd, size_t tail, int64_t *punched, const char *agent_id);
/* agent_files_out_punch on agent_id's output file, opened only if there is something to free. */
void agent_files_out_trim(const char *dir, const char *agent_id, size_t tail, int64_t *punched);
/* The agent's end as tessera-shim recorded it. */
struct agent_end {
	bool found;    /* false: no record (yet); the rest is unset */
	bool started;  /* false: "none", the agent never ran */
	bool signaled; /* then status is the signal number */
	int status;    /* else the exit code */
};

/*
 * Reads agent_id's exit record into end (!end->found if there is none).
 * INTERNAL if it is not a regular file, is too large or is malformed;
 * err's message then names no path, so that it can be the agent's error.
 */
int agent_files_exit_read(const char *dir, const char *agent_id, struct agent_end *end,
			  struct tsr_err *err);
/*
 * Reads at most cap bytes of rd's output from *pos on into buf. Output
 * the supervisor has punched (agent_files_out_punch) is not there to
 * read: *pos moves past it and *skipped grows by its length. *n is 0 at
 * the end of what has been written.
 */
int agent_files_out_read(int rd, int64_t *pos, char *buf, size_t cap, size_t *n, int64_t *skipped,
			 struct tsr_err *err);
/*
 * Where the last lines of rd's output begin (a last line without its
 * newline counts), looking back over at most TSR_OUTPUT_MAX bytes; with
 * fewer lines than that, where the output still held begins.
 */
int agent_files_out_lines_start(int rd, unsigned lines, int64_t *pos, struct tsr_err *err);
/* The same within a tail of len bytes in memory: where in it they begin. */
size_t agent_files_tail_lines_start(const char *tail, size_t len, unsigned lines);
/* Removes both files of agent_id; missing ones are fine. */
void agent_files_remove(const char *dir, const char *agent_id);
/* Calls fn for each agent id that has a file in dir (once per id or more). */
int agent_files_each(const char *dir, void (*fn)(void *arg, const char *agent_id), void *arg,
		     struct tsr_err *err);

#endif
