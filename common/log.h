/*
 * log: one line per message on stderr, and fatal(), the one way out for a
 * state the code cannot go on from. Text by default, "time level daemon:
 * text"; or JSON (log-format json), one object per line with the keys
 * time, level, daemon, spoke (a spoke's own id, once known), agent (on a
 * line about one agent), msg, and truncated (true when msg was cut).
 * Never pass key material or tokens here.
 */
#ifndef TSR_LOG_H
#define TSR_LOG_H

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};

enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON
};

/* The settings, made before other threads log: name is kept, spoke_id copied. */
void log_init(const char *name, enum log_level min);
void log_set_format(enum log_format format);
/* Every line from now on carries this spoke's id (JSON's "spoke"). */
void log_set_spoke(const char *spoke_id);
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * A line about one agent: in text "agent ID: " then the message, as such
 * lines have always read; in JSON the id is "agent" and msg the message.
 */
void log_agent(enum log_level level, const char *agent_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * The same for a message that names the agent itself: its text is the
 * message alone. A NULL agent_id: a line about no one agent.
 */
void log_agent_tag(enum log_level level, const char *agent_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Whatever the minimum level: for lines another filter chose (GRPC_VERBOSITY). */
void log_unfiltered(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Logs an error, then aborts: the core shows where the impossible happened. */
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#define log_agent_info(id, ...) log_agent(LOG_LEVEL_INFO, id, __VA_ARGS__)
#define log_agent_warn(id, ...) log_agent(LOG_LEVEL_WARN, id, __VA_ARGS__)
#define log_agent_error(id, ...) log_agent(LOG_LEVEL_ERROR, id, __VA_ARGS__)

#endif
