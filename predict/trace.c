/* trace.c: opening traces (plain or .zst through a `zstd -dc` child),
 * format names and detection, dispatch to the per-format parsers. */
#include "predict/trace_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const format_names[] = {
    [TRACE_AUTO] = "auto",
    [TRACE_VSCSI] = "vscsi",
    [TRACE_LIS] = "lis",
    [TRACE_MSR] = "msr",
};

int trace_format_parse(const char *name, enum trace_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(*format_names);
	     i++) {
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum trace_format)i;
			return 0;
		}
	}
	return -1;
}

const char *trace_format_name(enum trace_format f)
{
	return (unsigned)f < sizeof(format_names) / sizeof(*format_names)
		   ? format_names[f]
		   : "?";
}

int trace_fail(struct trace *t, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(t->err, sizeof(t->err), "%.200s: record %llu: %.255s", t->path,
		 (unsigned long long)t->recno, msg);
	return -1;
}

int trace_parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static enum trace_format guess(const char *path, bool zst)
{
	size_t n = strlen(path) - (zst ? 4 : 0);

	if (ends_with(path, n, ".vscsi"))
		return TRACE_VSCSI;
	if (ends_with(path, n, ".lis"))
		return TRACE_LIS;
	if (ends_with(path, n, ".csv"))
		return TRACE_MSR;
	return TRACE_AUTO;
}

/* Start `zstd -dc -- path` with its stdout as t->f; no shell involved. */
static int open_zstd(struct trace *t, const char *path, char *errmsg)
{
	int fds[2];
	pid_t pid;

	if (access(path, R_OK) != 0) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "%s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execlp("zstd", "zstd", "-q", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	t->f = fdopen(fds[0], "rb");
	if (t->f == NULL) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "fdopen: %s",
			 strerror(errno));
		close(fds[0]);
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return -1;
	}
	t->child = pid;
	return 0;
}

struct trace *trace_open(const char *path, enum trace_format fmt, char *errmsg)
{
	bool zst = ends_with(path, strlen(path), ".zst");
	struct trace *t;

	if (fmt == TRACE_AUTO)
		fmt = guess(path, zst);
	if (fmt == TRACE_AUTO) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN,
			 "%s: cannot tell the trace format from the name "
			 "(.vscsi, .lis or .csv, optionally .zst); give "
			 "--format vscsi|lis|msr",
			 path);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "out of memory");
		return NULL;
	}
	t->child = -1;
	t->fmt = fmt;
	snprintf(t->path, sizeof(t->path), "%s", path);
	if (zst) {
		if (open_zstd(t, path, errmsg) != 0) {
			free(t);
			return NULL;
		}
	} else {
		t->f = fopen(path, "rb");
		if (t->f == NULL) {
			snprintf(errmsg, OMBRA_ERRMSG_LEN, "%s: %s", path,
				 strerror(errno));
			free(t);
			return NULL;
		}
	}
	return t;
}

/* At the end of a .zst stream: did the decompressor succeed? */
static int reap_child(struct trace *t)
{
	int status;
	pid_t pid = t->child;

	t->child = -1;
	if (waitpid(pid, &status, 0) != pid)
		return trace_fail(t, "waitpid zstd: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return trace_fail(t, "cannot run zstd (install the zstd "
				     "package)");
	return trace_fail(t,
			  "zstd -dc failed (status 0x%x): corrupt or "
			  "truncated file",
			  (unsigned)status);
}

int trace_next(struct trace *t, struct trace_req *out)
{
	int rc;

	switch (t->fmt) {
	case TRACE_VSCSI:
		rc = trace_vscsi_next(t, out);
		break;
	case TRACE_LIS:
		rc = trace_lis_next(t, out);
		break;
	case TRACE_MSR:
		rc = trace_msr_next(t, out);
		break;
	default:
		return trace_fail(t, "no reader for this format");
	}
	if (rc == 0 && ferror(t->f))
		return trace_fail(t, "read error");
	if (rc == 0 && t->child >= 0 && reap_child(t) != 0)
		return -1;
	return rc;
}

const char *trace_error(const struct trace *t)
{
	return t->err;
}

enum trace_format trace_get_format(const struct trace *t)
{
	return t->fmt;
}

void trace_close(struct trace *t)
{
	if (t == NULL)
		return;
	fclose(t->f);
	if (t->child >= 0) {
		/* Stopped early: zstd gets EPIPE or is told to stop. */
		kill(t->child, SIGTERM);
		waitpid(t->child, NULL, 0);
	}
	free(t->line);
	free(t->vols);
	free(t);
}
