/* fsutil.h: small file-system helpers shared by the daemons.
 * Failure: every function returns 0 or an OMBRA_E* code with a message in
 * errmsg (OMBRA_ERRMSG_LEN bytes, caller-owned). */
#ifndef OMBRA_FSUTIL_H
#define OMBRA_FSUTIL_H

/* mkdir -p: create path and every missing parent with mode 0700; existing
 * directories are fine.  Errors: OMBRA_EINVAL (empty or longer than
 * PATH_MAX - 1), OMBRA_EIO (mkdir failed; errmsg names the directory and
 * the reason). */
int ombra_mkdir_p(const char *path, char *errmsg);

#endif
