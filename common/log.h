/*
 * log: one line per message on stderr, "time level daemon: text", and
 * fatal(), the one way out for a state the code cannot go on from.
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

void log_init(const char *name, enum log_level min);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs an error, then aborts: the core shows where the impossible happened. */
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
