/* log.c: leveled logging to stderr, one line per call:
 *
 *   2026-11-22T03:10:36.123Z metad-1 INFO raft: elected leader, term 3
 *
 * Each line is formatted into memory first and written with a single
 * fputs(), which stdio locks, so lines from different threads never
 * interleave.  Logging never fails: if a long message cannot be allocated
 * it is printed truncated, and a line stderr refuses is dropped. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_NAME_LEN 64
#define LOG_LINE_LEN 1024
/* Room for any value snprintf could print for struct tm fields. */
#define LOG_TS_LEN 96

static char log_name[LOG_NAME_LEN] = "ombra";
static atomic_int log_min_level = LOG_INFO;

static const char *const log_level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

static const char *const log_level_tags[] = {
    [LOG_DEBUG] = "DEBUG",
    [LOG_INFO] = "INFO",
    [LOG_WARN] = "WARN",
    [LOG_ERROR] = "ERROR",
};

int log_level_parse(const char *s)
{
	size_t i;

	if (s == NULL) {
		return -1;
	}
	for (i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]);
	     i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

/* Programs and tests that log without log_init() still honour
 * OMBRA_LOG_LEVEL; applied once, before the first line or log_init(). */
static void log_env_default(void)
{
	int env_level = log_level_parse(getenv("OMBRA_LOG_LEVEL"));

	if (env_level >= 0) {
		atomic_store(&log_min_level, env_level);
	}
}

/* OMBRA_LOG_LEVEL, when set to a known level, overrides the level the
 * daemon passes in, so an operator can turn on debug output without
 * editing configuration.  An unknown value is reported and ignored.
 * Must run before other threads log: the name is not copied atomically. */
void log_init(const char *name, enum log_level level)
{
	const char *env = getenv("OMBRA_LOG_LEVEL");
	int env_level = -1;

	pthread_once(&log_env_once, log_env_default);
	if (name != NULL && name[0] != '\0') {
		snprintf(log_name, sizeof(log_name), "%s", name);
	}
	if (level < LOG_DEBUG || level > LOG_ERROR) {
		level = LOG_INFO;
	}
	if (env != NULL && env[0] != '\0') {
		env_level = log_level_parse(env);
	}
	atomic_store(&log_min_level, env_level >= 0 ? env_level : (int)level);
	if (env != NULL && env[0] != '\0' && env_level < 0) {
		log_warn("OMBRA_LOG_LEVEL=%s is not one of "
			 "debug|info|warn|error; using %s",
			 env, log_level_names[level]);
	}
}

/* "2026-11-22T03:10:36.123Z" into ts (LOG_TS_LEN bytes). */
static void log_timestamp(char *ts, size_t len)
{
	struct timespec now;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &now) != 0 ||
	    gmtime_r(&now.tv_sec, &tm) == NULL) {
		snprintf(ts, len, "-");
		return;
	}
	snprintf(ts, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L);
}

/* Format "<ts> <name> <LEVEL> " + message + "\n" into buf (size len).
 * Returns the length the full line needs, excluding the NUL. */
static int log_format(char *buf, size_t len, const char *ts, const char *tag,
		      const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static int log_format(char *buf, size_t len, const char *ts, const char *tag,
		      const char *fmt, va_list ap)
{
	int head;
	int body;
	size_t used;

	head = snprintf(buf, len, "%s %s %s ", ts, log_name, tag);
	if (head < 0) {
		return -1;
	}
	used = (size_t)head < len ? (size_t)head : len;
	body = vsnprintf(buf + used, len - used, fmt, ap);
	if (body < 0) {
		return -1;
	}
	return head + body;
}

/* Replace the message's trailing newline, if any, by exactly one. */
static void log_end_line(char *line, size_t cap)
{
	size_t n = strlen(line);

	while (n > 0 && line[n - 1] == '\n') {
		line[--n] = '\0';
	}
	if (n + 1 < cap) {
		line[n] = '\n';
		line[n + 1] = '\0';
	} else if (n > 0) {
		line[n - 1] = '\n';
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char ts[LOG_TS_LEN];
	char stack_line[LOG_LINE_LEN];
	char *line = stack_line;
	size_t cap = sizeof(stack_line);
	const char *tag;
	va_list ap;
	int need;

	if (level < LOG_DEBUG || level > LOG_ERROR) {
		level = LOG_ERROR;
	}
	pthread_once(&log_env_once, log_env_default);
	if ((int)level < atomic_load(&log_min_level)) {
		return;
	}
	tag = log_level_tags[level];
	log_timestamp(ts, sizeof(ts));

	va_start(ap, fmt);
	need = log_format(stack_line, sizeof(stack_line), ts, tag, fmt, ap);
	va_end(ap);
	if (need < 0) {
		return;
	}
	/* +2: room for the newline and the NUL. */
	if ((size_t)need + 2 > sizeof(stack_line)) {
		char *big = malloc((size_t)need + 2);

		if (big != NULL) {
			va_start(ap, fmt);
			need =
			    log_format(big, (size_t)need + 2, ts, tag, fmt, ap);
			va_end(ap);
			if (need >= 0) {
				line = big;
				cap = (size_t)need + 2;
			} else {
				free(big);
			}
		}
	}
	log_end_line(line, cap);
	fputs(line, stderr);
	if (line != stack_line) {
		free(line);
	}
}
