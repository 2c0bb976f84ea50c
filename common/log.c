/*
 * log: timestamped lines on stderr, text or JSON, and fatal(). One
 * write(2) per line, and no line longer than PIPE_BUF, so that lines from
 * several threads never interleave, in a file or in a pipe (journald's,
 * a container runtime's).
 */
#include "log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

#define LOG_TEXT_MAX 1024 /* a text line, newline included, as it always was */
#define LOG_MSG_MAX 1024  /* a message as formatted, NUL included */
#define LOG_STAMP_MAX 48  /* "2024-05-01T12:00:00.123Z" and room to spare */
#define LOG_ID_MAX 96	  /* bytes kept of the daemon's name or an id: ours are shorter */
#define LOG_ESCAPE_MAX 6  /* what one byte can take in a JSON string: \u001f */
#define LOG_JSON_KEYS 128 /* a JSON line's keys, quotes and separators */
#define LOG_JSON_MAX 3072 /* a JSON line: every field, and the message escaped */
#define LOG_JSON_CUT "\",\"truncated\":true}\n"
#define LOG_JSON_END "\"}\n"

_Static_assert(LOG_TEXT_MAX <= PIPE_BUF && LOG_JSON_MAX <= PIPE_BUF,
	       "a line must reach a pipe in one piece");
/* The fields before msg always fit, and so does an unescaped message after them. */
_Static_assert(LOG_JSON_KEYS + LOG_STAMP_MAX + 3 * LOG_ID_MAX * LOG_ESCAPE_MAX + LOG_MSG_MAX +
			       sizeof(LOG_JSON_CUT) <=
		       LOG_JSON_MAX,
	       "a JSON line must hold its fields and a message");

static const char *const log_tags[] = { "debug", "info", "warn", "error" };
static const char *log_name = "tessera";
static enum log_level log_min = LOG_LEVEL_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;
static char log_spoke[LOG_ID_MAX + 1]; /* "" until a spoke knows its id */

void log_init(const char *name, enum log_level min)
{
	log_name = name;
	log_min = min;
}

void log_set_format(enum log_format format)
{
	log_format = format;
}

void log_set_spoke(const char *spoke_id)
{
	size_t len = strnlen(spoke_id, LOG_ID_MAX);

	memcpy(log_spoke, spoke_id, len);
	log_spoke[len] = '\0';
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(log_tags) / sizeof(log_tags[0]); i++) {
		if (strcasecmp(s, log_tags[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

/* Now, as RFC 3339 in UTC with milliseconds: "2024-05-01T12:00:00.123Z". */
static void log_stamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000);
	if (n < 0)
		buf[0] = '\0';
}

/* "time level daemon: [agent ID: ]msg\n", cut to LOG_TEXT_MAX; its length. */
static size_t log_text(char *line, const char *stamp, enum log_level level, const char *agent,
		       const char *msg)
{
	char id[LOG_ID_MAX * 4 + 1]; /* each byte at most "\xNN" */
	int n;

	/* Ours are plain; a peer's (the hub logs what spokes send) must not drive a terminal. */
	if (agent != NULL)
		utf8_escape(agent, strnlen(agent, LOG_ID_MAX), id, sizeof(id));
	n = snprintf(line, LOG_TEXT_MAX - 1, "%s %s %s: %s%s%s%s", stamp, log_tags[level], log_name,
		     agent != NULL ? "agent " : "", agent != NULL ? id : "",
		     agent != NULL ? ": " : "", msg);
	if (n < 0)
		return 0;
	if (n > LOG_TEXT_MAX - 2)
		n = LOG_TEXT_MAX - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	return (size_t)n;
}

/* Copies s to line[*o..end) if all of it fits. */
static bool log_put(char *line, size_t end, size_t *o, const char *s)
{
	size_t len = strlen(s);

	if (*o + len > end)
		return false;
	memcpy(line + *o, s, len);
	*o += len;
	return true;
}

/*
 * Appends s[0..len) to line[*o..end) as the inside of a JSON string, in
 * whole characters and escapes: quotes, backslashes and control characters
 * (C0, DEL, C1) escaped, each ill-formed stretch as \ufffd, so that any
 * JSON parser takes it and no terminal obeys it. false if some was left off.
 */
static bool log_json_chars(char *line, size_t end, size_t *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char esc[LOG_ESCAPE_MAX + 1];
	const char *put;
	size_t n, w;
	bool ok;

	for (size_t i = 0; i < len; i += n) {
		unsigned c = p[i];

		n = utf8_next(s + i, len - i, &ok);
		put = esc;
		w = 2;
		esc[0] = '\\';
		if (!ok) {
			put = "\\ufffd";
			w = 6;
		} else if (n == 1 && (c == '"' || c == '\\')) {
			esc[1] = (char)c;
		} else if (n == 1 && (c == '\n' || c == '\r' || c == '\t')) {
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if ((n == 1 && (c < 0x20 || c == 0x7f)) ||
			   (n == 2 && c == 0xc2 && p[i + 1] < 0xa0)) {
			c = n == 1 ? c : p[i + 1]; /* U+0080..U+009F is C2 80..C2 9F */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			w = 6;
		} else {
			put = s + i;
			w = n;
		}
		if (*o + w > end)
			return false;
		memcpy(line + *o, put, w);
		*o += w;
	}
	return true;
}

/* Appends "key":"value" after a comma, or after "{" as the first field. */
static bool log_json_field(char *line, size_t end, size_t *o, const char *key, const char *value,
			   size_t len)
{
	return log_put(line, end, o, *o == 0 ? "{\"" : ",\"") && log_put(line, end, o, key) &&
	       log_put(line, end, o, "\":\"") && log_json_chars(line, end, o, value, len) &&
	       log_put(line, end, o, "\"");
}

/*
 * {"time":…,"level":…,"daemon":…,"spoke":…,"agent":…,"msg":…}\n, spoke
 * and agent only when known, msg cut at a character to fit LOG_JSON_MAX
 * (and "truncated":true then); its length.
 */
static size_t log_json(char *line, const char *stamp, enum log_level level, const char *agent,
		       const char *msg, size_t msglen, bool cut)
{
	size_t o = 0, end = LOG_JSON_MAX - (sizeof(LOG_JSON_CUT) - 1);

	if (!log_json_field(line, end, &o, "time", stamp, strlen(stamp)) ||
	    !log_json_field(line, end, &o, "level", log_tags[level], strlen(log_tags[level])) ||
	    !log_json_field(line, end, &o, "daemon", log_name, strnlen(log_name, LOG_ID_MAX)) ||
	    (log_spoke[0] != '\0' &&
	     !log_json_field(line, end, &o, "spoke", log_spoke, strlen(log_spoke))) ||
	    (agent != NULL &&
	     !log_json_field(line, end, &o, "agent", agent, strnlen(agent, LOG_ID_MAX))) ||
	    !log_put(line, end, &o, ",\"msg\":\""))
		return 0; /* cannot happen: the _Static_assert above */
	if (!log_json_chars(line, end, &o, msg, msglen))
		cut = true;
	/* end left room for the longer ending. */
	log_put(line, LOG_JSON_MAX, &o, cut ? LOG_JSON_CUT : LOG_JSON_END);
	return o;
}

/* A message cut at len bytes may end inside a character: that part goes too. */
static size_t log_whole_chars(const char *s, size_t len)
{
	size_t i, n = 0;
	bool ok = true;

	for (i = 0; i < len; i += n)
		n = utf8_next(s + i, len - i, &ok);
	return ok ? len : len - n;
}

/* agent: the line is about that agent (NULL: none); prefix: the text names it first. */
__attribute__((format(printf, 4, 0))) static void log_vwrite(enum log_level level,
							     const char *agent, bool prefix,
							     const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], stamp[LOG_STAMP_MAX], line[LOG_JSON_MAX];
	size_t len, n;
	bool cut;
	int m;

	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m < 0)
		return;
	cut = (size_t)m >= sizeof(msg);
	len = cut ? log_whole_chars(msg, sizeof(msg) - 1) : (size_t)m;
	log_stamp(stamp, sizeof(stamp));
	if (log_format == LOG_FORMAT_JSON)
		n = log_json(line, stamp, level, agent, msg, len, cut);
	else
		n = log_text(line, stamp, level, prefix ? agent : NULL, msg);
	if (n > 0 && write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	log_vwrite(level, NULL, false, fmt, ap);
	va_end(ap);
}

void log_agent(enum log_level level, const char *agent_id, const char *fmt, ...)
{
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	log_vwrite(level, agent_id, true, fmt, ap);
	va_end(ap);
}

void log_agent_tag(enum log_level level, const char *agent_id, const char *fmt, ...)
{
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	log_vwrite(level, agent_id, false, fmt, ap);
	va_end(ap);
}

void log_unfiltered(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, NULL, false, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, NULL, false, fmt, ap);
	va_end(ap);
	abort();
}
