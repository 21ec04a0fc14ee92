/* fsutil.c: file-system helpers shared by the daemons (see fsutil.h).
 * Fails only with the errors documented there; never leaves partial state
 * other than the directories it managed to create. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "fsutil.h"

int ombra_mkdir_p(const char *path, char *errmsg)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		ombra_errmsg_printf(errmsg, "bad directory name '%s'", path);
		return OMBRA_EINVAL;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			ombra_errmsg_printf(errmsg, "mkdir %s: %s", buf,
					    strerror(errno));
			return OMBRA_EIO;
		}
		buf[i] = path[i];
	}
	return 0;
}
