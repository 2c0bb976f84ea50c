/*
 * test_log: the lines common/log.c writes, read back from stderr pointed
 * at a file. Text as it always read, "agent ID: " included; JSON with its
 * fields, escaping (quotes, backslashes, control characters, ill-formed
 * UTF-8 as U+FFFD) checked exactly, and on random bytes by a JSON reader
 * written here that decodes msg back to the input as utf8_repair() sees
 * it; cuts at a character, marked "truncated"; a bounded id; one whole
 * line per call from several threads; the level filter, and lines that
 * bypass it; the log-format line's refusal.
 */
#include <check.h>
#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "daemon.h"
#include "log.h"
#include "utf8.h"

#define NAME "tessera-test"
#define STAMP_LEN 24 /* 2024-05-01T12:00:00.123Z */
#define CAPTURE_MAX (1024 * 1024)
#define THREADS 4
#define THREAD_LINES 500

static char captured[CAPTURE_MAX + 1];
static int capture_fd = -1, saved_fd = -1;

/* From now on stderr goes to a fresh file. */
static void capture(void)
{
	FILE *f = tmpfile();

	ck_assert_ptr_nonnull(f);
	capture_fd = dup(fileno(f));
	ck_assert_int_ge(capture_fd, 0);
	fclose(f);
	saved_fd = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_fd, 0);
	ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

/* stderr back, and what was written since capture(), NUL-ended. */
static const char *captured_text(size_t *len)
{
	ssize_t n;

	ck_assert_int_eq(dup2(saved_fd, STDERR_FILENO), STDERR_FILENO);
	close(saved_fd);
	n = pread(capture_fd, captured, CAPTURE_MAX, 0);
	ck_assert_int_ge(n, 0);
	close(capture_fd);
	captured[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return captured;
}

/* Whether s starts with a time as log.c writes it: RFC 3339, UTC, milliseconds. */
static bool stamp_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	for (size_t i = 0; i < STAMP_LEN; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return false;
	return true;
}

/* One text line: its time, then exactly rest. */
static void text_line_is(const char *line, const char *rest)
{
	ck_assert_msg(stamp_ok(line), "no time in %s", line);
	ck_assert_str_eq(line + STAMP_LEN, rest);
}

/* One JSON line: {"time":"<time>", then exactly rest. */
static void json_line_is(const char *line, const char *rest)
{
	static const char head[] = "{\"time\":\"";

	ck_assert_msg(strncmp(line, head, sizeof(head) - 1) == 0, "%s", line);
	ck_assert(stamp_ok(line + sizeof(head) - 1));
	ck_assert_str_eq(line + sizeof(head) - 1 + STAMP_LEN, rest);
}

START_TEST(test_text)
{
	log_init(NAME, LOG_LEVEL_INFO);
	capture();
	log_info("hello %d", 5);
	text_line_is(captured_text(NULL), " info " NAME ": hello 5\n");

	capture();
	log_agent_warn("spoke-1.ab12", "timed out after %u ms", 100u);
	text_line_is(captured_text(NULL),
		     " warn " NAME ": agent spoke-1.ab12: timed out after 100 ms\n");

	capture();
	log_agent_tag(LOG_LEVEL_INFO, "spoke-1.ab12", "agent %s COMPLETED (%s)", "spoke-1.ab12",
		      "exited with code 0");
	text_line_is(captured_text(NULL),
		     " info " NAME ": agent spoke-1.ab12 COMPLETED (exited with code 0)\n");

	/* A spoke's id is JSON's alone; a peer's agent id is escaped. */
	log_set_spoke("spoke-1");
	capture();
	log_agent_error("bad\x1b[31m\xff", "dropped");
	text_line_is(captured_text(NULL), " error " NAME ": agent bad\\x1b[31m\\xff: dropped\n");

	capture();
	log_debug("below the level");
	log_agent_tag(LOG_LEVEL_DEBUG, "spoke-1.ab12", "below the level too");
	ck_assert_str_eq(captured_text(NULL), "");

	/* What gRPC's own filter let through. */
	capture();
	log_unfiltered(LOG_LEVEL_DEBUG, "grpc %s", "chosen by GRPC_VERBOSITY");
	text_line_is(captured_text(NULL), " debug " NAME ": grpc chosen by GRPC_VERBOSITY\n");
}
END_TEST

START_TEST(test_text_cut)
{
	char big[2000];
	size_t len;
	const char *out;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_init(NAME, LOG_LEVEL_INFO);
	capture();
	log_info("%s", big);
	out = captured_text(&len);
	/* As always: 1023 bytes, the newline kept. */
	ck_assert_uint_eq(len, 1023);
	ck_assert_int_eq(out[len - 1], '\n');
}
END_TEST

START_TEST(test_json_fields)
{
	log_init(NAME, LOG_LEVEL_DEBUG);
	log_set_format(LOG_FORMAT_JSON);
	capture();
	log_info("no spoke yet");
	json_line_is(captured_text(NULL),
		     "\",\"level\":\"info\",\"daemon\":\"" NAME "\",\"msg\":\"no spoke yet\"}\n");

	log_set_spoke("spoke-1");
	capture();
	log_agent_warn("spoke-1.ab12", "timed out after %u ms", 100u);
	json_line_is(captured_text(NULL), "\",\"level\":\"warn\",\"daemon\":\"" NAME
					  "\",\"spoke\":\"spoke-1\",\"agent\":\"spoke-1.ab12\","
					  "\"msg\":\"timed out after 100 ms\"}\n");

	capture();
	log_agent_tag(LOG_LEVEL_DEBUG, "spoke-1.ab12", "agent %s (sh) running as pid %d",
		      "spoke-1.ab12", 42);
	json_line_is(captured_text(NULL),
		     "\",\"level\":\"debug\",\"daemon\":\"" NAME
		     "\",\"spoke\":\"spoke-1\",\"agent\":\"spoke-1.ab12\","
		     "\"msg\":\"agent spoke-1.ab12 (sh) running as pid 42\"}\n");

	capture();
	log_agent_tag(LOG_LEVEL_ERROR, NULL, "about no agent");
	json_line_is(captured_text(NULL), "\",\"level\":\"error\",\"daemon\":\"" NAME
					  "\",\"spoke\":\"spoke-1\",\"msg\":\"about no agent\"}\n");
}
END_TEST

START_TEST(test_json_escapes)
{
	static const char head[] = "\"agent\":\"a\\\"\\n\\ufffd", tail[] = "\",\"msg\":\"m\"}\n";
	char id[200], want[sizeof(head) - 1 + 92 + sizeof(tail)];

	log_init(NAME, LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON);
	capture();
	log_info("%s", "q\" b\\ n\n r\r t\t nul-ish\x01\x1f del\x7f c1\xc2\x85 "
		       "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e / bad\xff cut\xe2\x82!");
	json_line_is(captured_text(NULL),
		     "\",\"level\":\"info\",\"daemon\":\"" NAME "\",\"msg\":\""
		     "q\\\" b\\\\ n\\n r\\r t\\t nul-ish\\u0001\\u001f del\\u007f c1\\u0085 "
		     "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e / bad\\ufffd cut\\ufffd!\"}\n");

	/* An id the hub got from a spoke: escaped, and at most 96 bytes of it. */
	memset(id, 'i', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	memcpy(id, "a\"\n\xff", 4);
	memcpy(want, head, sizeof(head) - 1);
	memset(want + sizeof(head) - 1, 'i', 92); /* 96 bytes: a " \n \xff and 92 of these */
	memcpy(want + sizeof(head) - 1 + 92, tail, sizeof(tail));
	capture();
	log_agent_info(id, "m");
	ck_assert_ptr_nonnull(strstr(captured_text(NULL), want));
}
END_TEST

/*
 * A JSON reader for what log.c writes: a string at *p (after its opening
 * quote) decoded into out (UTF-8); false if it is not a JSON string that
 * holds only well-formed UTF-8 and no raw control character.
 */
static bool json_string(const char **p, char *out, size_t size, size_t *len)
{
	const unsigned char *s = (const unsigned char *)*p;
	unsigned cp;

	*len = 0;
	while (*s != '"') {
		if (*len + 4 > size || *s < 0x20 || *s == 0x7f)
			return false;
		if (*s != '\\') {
			out[(*len)++] = (char)*s++;
			continue;
		}
		s++;
		if (*s == 'u') {
			for (int k = 1; k <= 4; k++)
				if (!isxdigit(s[k]))
					return false;
			/* log.c escapes only code points below U+0100, and U+FFFD. */
			if (sscanf((const char *)s + 1, "%4x", &cp) != 1 ||
			    (cp >= 0x100 && cp != 0xfffd))
				return false;
			s += 5;
			if (cp < 0x80) {
				out[(*len)++] = (char)cp;
			} else if (cp < 0x800) {
				out[(*len)++] = (char)(0xc0 | cp >> 6);
				out[(*len)++] = (char)(0x80 | (cp & 0x3f));
			} else {
				out[(*len)++] = (char)(0xe0 | cp >> 12);
				out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[(*len)++] = (char)(0x80 | (cp & 0x3f));
			}
			continue;
		}
		if (strchr("\"\\nrt", *s) == NULL || *s == '\0')
			return false;
		out[(*len)++] = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : (char)*s;
		s++;
	}
	*p = (const char *)s + 1;
	return true;
}

/*
 * Reads one line {"key":"value"|true,...}\n; msg gets the decoded "msg".
 * Raw C1 characters are refused too: log.c escapes them for terminals.
 */
static bool json_line(const char *line, char *msg, size_t size, size_t *msglen)
{
	const char *p = line;
	char key[64], value[4096];
	size_t klen, vlen;
	bool have_msg = false;

	if (!utf8_valid(line, strlen(line), NULL) || *p++ != '{')
		return false;
	for (const char *c = line; (c = strstr(c, "\xc2")) != NULL; c++)
		if ((unsigned char)c[1] < 0xa0)
			return false;
	for (;;) {
		if (*p++ != '"' || !json_string(&p, key, sizeof(key) - 1, &klen) || *p++ != ':')
			return false;
		key[klen] = '\0';
		if (strncmp(p, "true", 4) == 0) {
			p += 4;
		} else if (*p++ != '"' || !json_string(&p, value, sizeof(value), &vlen)) {
			return false;
		} else if (strcmp(key, "msg") == 0) {
			if (vlen > size)
				return false;
			memcpy(msg, value, vlen);
			*msglen = vlen;
			have_msg = true;
		}
		if (*p == '}')
			break;
		if (*p++ != ',')
			return false;
	}
	return have_msg && strcmp(p, "}\n") == 0;
}

START_TEST(test_json_cut)
{
	char big[5000], msg[4096];
	const char *out;
	size_t len, msglen;

	log_init(NAME, LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON);
	/* Longer than a message may be: its first 1023 bytes. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture();
	log_info("%s", big);
	out = captured_text(&len);
	ck_assert_msg(json_line(out, msg, sizeof(msg), &msglen), "%s", out);
	ck_assert_uint_eq(msglen, 1023);
	ck_assert_ptr_nonnull(strstr(out, "x\",\"truncated\":true}\n"));

	/* Cut inside a character: that part goes, with no U+FFFD for it. */
	memset(big, 'y', 1022);
	memcpy(big + 1022, "\xc3\xa9z", 4);
	capture();
	log_info("%s", big);
	out = captured_text(&len);
	ck_assert_msg(json_line(out, msg, sizeof(msg), &msglen), "%s", out);
	ck_assert_uint_eq(msglen, 1022);
	ck_assert_ptr_nonnull(strstr(out, "y\",\"truncated\":true}\n"));

	/* Escapes that outgrow the line: cut between two, the line still whole JSON. */
	memset(big, '\x01', 1000);
	big[1000] = '\0';
	capture();
	log_info("%s", big);
	out = captured_text(&len);
	ck_assert_uint_le(len, 3072);
	ck_assert_msg(json_line(out, msg, sizeof(msg), &msglen), "%s", out);
	ck_assert_uint_lt(msglen, 1000);
	ck_assert_ptr_nonnull(strstr(out, "\\u0001\",\"truncated\":true}\n"));
}
END_TEST

/* Random bytes (no NUL: a message is a C string) come back as utf8_repair() makes them. */
START_TEST(test_json_random)
{
	unsigned char in[300];
	char msg[4096], *want;
	size_t len, msglen, wantlen;
	struct tsr_err err;

	log_init(NAME, LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON);
	log_set_spoke("spoke-1");
	for (int round = 0; round < 2000; round++) {
		len = 1 + randombytes_uniform(sizeof(in) - 1);
		randombytes_buf(in, len);
		for (size_t i = 0; i < len; i++)
			in[i] = in[i] == 0 ? 'z' : in[i];
		in[len] = '\0';
		capture();
		log_agent_info((const char *)in, "%s", (const char *)in);
		captured_text(NULL);
		ck_assert_msg(json_line(captured, msg, sizeof(msg), &msglen), "round %d: %s", round,
			      captured);
		ck_assert_int_eq(utf8_repair((const char *)in, len, 3 * len, UTF8_KEEP_HEAD, &want,
					     &wantlen, &err),
				 0);
		ck_assert_uint_eq(msglen, wantlen);
		ck_assert_mem_eq(msg, want, wantlen);
		free(want);
	}
}
END_TEST

static void *log_lines(void *arg)
{
	const char *id = arg;

	for (int i = 0; i < THREAD_LINES; i++)
		log_agent_info(id, "line %d of a thread, with some length to it: %0100d", i, i);
	return NULL;
}

/* Threads logging at once: every line whole. */
START_TEST(test_threads)
{
	static const char *const ids[THREADS] = { "s.1", "s.2", "s.3", "s.4" };
	pthread_t t[THREADS];
	char msg[4096];
	size_t msglen, n = 0;
	char *line, *save = NULL;

	log_init(NAME, LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_JSON);
	capture();
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, log_lines, (void *)ids[i]), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	captured_text(NULL);
	for (line = strtok_r(captured, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char whole[4096];

		snprintf(whole, sizeof(whole), "%s\n", line);
		ck_assert_msg(json_line(whole, msg, sizeof(msg), &msglen), "%s", whole);
		n++;
	}
	ck_assert_uint_eq(n, THREADS * THREAD_LINES);
}
END_TEST

START_TEST(test_format_line)
{
	enum log_format f = LOG_FORMAT_TEXT;
	char *json[] = { "log-format", "json" }, *yaml[] = { "log-format", "yaml" };
	char *none[] = { "log-format" }, *two[] = { "log-format", "json", "text" };
	struct tsr_err err;

	ck_assert_int_eq(daemon_log_format_line(&f, 2, json, &err), 0);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_int_eq(daemon_log_format_line(&f, 2, yaml, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.msg, "log-format must be text or json, not \"yaml\"");
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_int_eq(daemon_log_format_line(&f, 1, none, &err), -1);
	ck_assert_int_eq(daemon_log_format_line(&f, 3, two, &err), -1);
	ck_assert_str_eq(err.msg, "\"log-format\" takes one value: text or json");
	ck_assert_int_eq(log_format_parse("text", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_TEXT);
	ck_assert_int_eq(log_format_parse("JSON", &f), -1);
	ck_assert_int_eq(log_format_parse("", &f), -1);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "log",
		    CHECK_TESTS(test_text, test_text_cut, test_json_fields, test_json_escapes,
				test_json_cut, test_json_random, test_threads, test_format_line));
	return 0;
}
