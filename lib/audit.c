/* audit.c: the JSON-lines audit record of fencing decisions (audit.h).
 *
 * One O_APPEND descriptor per file; a line is formatted into a stack
 * buffer and written with one write(2).  Failure: open errors are
 * returned to the caller; write errors and oversized lines are logged
 * once per audit and the line dropped (the daemon goes on). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "log.h"

#define AUDIT_LINE_MAX 4096

struct audit {
	int fd;
	atomic_bool warned;
	char path[];
};

int audit_open(const char *path, struct audit **out, char *errmsg)
{
	struct audit *a;
	size_t n = strlen(path) + 1;

	a = calloc(1, sizeof(*a) + n);
	if (a == NULL) {
		ombra_errmsg_printf(errmsg, "audit log %s: out of memory",
				    path);
		return OMBRA_ENOMEM;
	}
	memcpy(a->path, path, n);
	a->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (a->fd < 0) {
		ombra_errmsg_printf(errmsg, "audit log %s: %s", path,
				    strerror(errno));
		free(a);
		return OMBRA_EIO;
	}
	atomic_init(&a->warned, false);
	*out = a;
	return 0;
}

void audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	close(a->fd);
	free(a);
}

uint64_t audit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void warn_once(struct audit *a, const char *what)
{
	if (!atomic_exchange(&a->warned, true))
		log_warn("audit log %s: %s; records are being dropped", a->path,
			 what);
}

/* {"t_ms":now,<members>}\n into buf; its length, or 0 if it overflows. */
static size_t format_line(char *buf, size_t cap, const char *fmt, va_list ap)
{
	int head, body;

	head = snprintf(buf, cap, "{\"t_ms\":%llu,",
			(unsigned long long)audit_now_ms());
	if (head < 0 || (size_t)head >= cap)
		return 0;
	body = vsnprintf(buf + head, cap - (size_t)head, fmt, ap);
	if (body < 0 || (size_t)(head + body) + 2 >= cap)
		return 0;
	buf[head + body] = '}';
	buf[head + body + 1] = '\n';
	return (size_t)(head + body) + 2;
}

static void write_line(struct audit *a, const char *buf, size_t len)
{
	ssize_t w;

	do {
		w = write(a->fd, buf, len);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		warn_once(a, strerror(errno));
	else if ((size_t)w != len)
		warn_once(a, "short write");
}

void audit_log(struct audit *a, const char *fmt, ...)
{
	char buf[AUDIT_LINE_MAX];
	va_list ap;
	size_t len;

	if (a == NULL)
		return;
	va_start(ap, fmt);
	len = format_line(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len == 0) {
		warn_once(a, "a record longer than 4096 bytes");
		return;
	}
	write_line(a, buf, len);
}

void audit_defer(struct audit_pending *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		p->dropped = true;
		return;
	}
	if (p->len + (size_t)n + 2 > p->cap) {
		size_t cap = p->cap == 0 ? 1024 : p->cap;
		char *grown;

		while (p->len + (size_t)n + 2 > cap)
			cap *= 2;
		grown = realloc(p->buf, cap);
		if (grown == NULL) {
			p->dropped = true;
			return;
		}
		p->buf = grown;
		p->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	p->len += (size_t)n;
	p->buf[p->len++] = '\n';
}

void audit_flush(struct audit *a, struct audit_pending *p)
{
	size_t i = 0;

	if (a != NULL && p->dropped)
		warn_once(a, "out of memory holding records");
	while (a != NULL && i < p->len) {
		char *nl = memchr(p->buf + i, '\n', p->len - i);
		size_t n = (size_t)(nl - (p->buf + i));

		audit_log(a, "%.*s", (int)n, p->buf + i);
		i += n + 1;
	}
	audit_discard(p);
}

void audit_discard(struct audit_pending *p)
{
	p->len = 0;
	p->dropped = false;
}

void audit_pending_free(struct audit_pending *p)
{
	free(p->buf);
	p->buf = NULL;
	p->len = p->cap = 0;
	p->dropped = false;
}

char *audit_json_str(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	if (cap < 3) {
		if (cap > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c < 0x20) {
			n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		if (o + n + 2 > cap)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
