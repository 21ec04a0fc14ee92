/* log.h: leveled logging to stderr with a timestamp and the daemon's name.
 *
 * Thread-safe (one fprintf per line).  Never fails: a line that cannot be
 * written is dropped.  The level comes from log_init() or OMBRA_LOG_LEVEL
 * (debug|info|warn|error). */
#ifndef OMBRA_LOG_H
#define OMBRA_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* name: copied; shown on every line ("metad-1").  level: minimum printed. */
void log_init(const char *name, enum log_level level);

/* Parse "debug".."error"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
