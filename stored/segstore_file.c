/* segstore_file.c: the data files of the segment store (one sparse file
 * per tier and volume, tier_dir/vol-<volume id>.data, block b at byte
 * b*4096): a table of open descriptors, full-length pread/pwrite, hole
 * punching and the dirty tracking behind segstore_flush().
 *
 * Failure: system call errors are returned as errno values (I/O helpers)
 * or OMBRA_EIO with the path and strerror (table functions).  A file that
 * does not exist is not an error for readers: OMBRA_ENOTFOUND lets them
 * treat its blocks as zeros, which then fail verification if the index
 * says they were written. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segstore_internal.h"

static size_t seg_file_bucket(size_t tier, uint64_t volume_id)
{
	return (size_t)(((volume_id * UINT64_C(0x9E3779B97F4A7C15)) >> 40) ^
			tier) %
	       SEG_FILE_BUCKETS;
}

static int seg_file_path(const struct segstore *s, size_t tier,
			 uint64_t volume_id, char *buf, size_t len,
			 char *errmsg)
{
	int n = snprintf(buf, len, "%s/vol-%" PRIu64 ".data",
			 s->tiers[tier].dir, volume_id);

	if (n < 0 || (size_t)n >= len) {
		ombra_errmsg_printf(errmsg, "tier '%s': path too long",
				    s->tiers[tier].name);
		return OMBRA_EINVAL;
	}
	return 0;
}

/* The table entry for (tier, volume), or NULL; files_lock held. */
static struct seg_file *seg_file_find(struct segstore *s, size_t tier,
				      uint64_t volume_id)
{
	struct seg_file *f = s->files[seg_file_bucket(tier, volume_id)];

	while (f != NULL && (f->tier != tier || f->volume_id != volume_id))
		f = f->next;
	return f;
}

int seg_file_get(struct segstore *s, size_t tier, uint64_t volume_id,
		 bool create, int *fd, char *errmsg)
{
	char path[4096];
	struct seg_file *f;
	int rv = 0;

	(void)pthread_mutex_lock(&s->files_lock);
	f = seg_file_find(s, tier, volume_id);
	if (f != NULL) {
		*fd = f->fd;
		goto out;
	}
	rv = seg_file_path(s, tier, volume_id, path, sizeof(path), errmsg);
	if (rv != 0)
		goto out;
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out;
	}
	f->fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (f->fd < 0) {
		rv = (!create && errno == ENOENT) ? OMBRA_ENOTFOUND : OMBRA_EIO;
		ombra_errmsg_printf(errmsg, "open %s: %s", path,
				    strerror(errno));
		free(f);
		goto out;
	}
	f->tier = tier;
	f->volume_id = volume_id;
	f->next = s->files[seg_file_bucket(tier, volume_id)];
	s->files[seg_file_bucket(tier, volume_id)] = f;
	*fd = f->fd;
out:
	(void)pthread_mutex_unlock(&s->files_lock);
	return rv;
}

int seg_file_peek(struct segstore *s, size_t tier, uint64_t volume_id)
{
	struct seg_file *f;
	int fd = -1;

	if (pthread_mutex_trylock(&s->files_lock) != 0)
		return -1;
	f = seg_file_find(s, tier, volume_id);
	if (f != NULL)
		fd = f->fd;
	(void)pthread_mutex_unlock(&s->files_lock);
	return fd;
}

void seg_file_mark_dirty(struct segstore *s, size_t tier, uint64_t volume_id)
{
	struct seg_file *f;

	(void)pthread_mutex_lock(&s->files_lock);
	f = seg_file_find(s, tier, volume_id);
	if (f != NULL)
		f->dirty = true;
	(void)pthread_mutex_unlock(&s->files_lock);
}

/* Unlink f from its bucket and close it; files_lock held. */
static void seg_file_drop(struct segstore *s, struct seg_file *f)
{
	struct seg_file **pp =
	    &s->files[seg_file_bucket(f->tier, f->volume_id)];

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	(void)close(f->fd);
	free(f);
}

int seg_file_remove_volume(struct segstore *s, uint64_t volume_id, char *errmsg)
{
	char path[4096];
	struct seg_file *f;
	size_t tier;
	int rv = 0;

	for (tier = 0; tier < s->n_tiers; tier++) {
		(void)pthread_mutex_lock(&s->files_lock);
		f = seg_file_find(s, tier, volume_id);
		if (f != NULL)
			seg_file_drop(s, f);
		(void)pthread_mutex_unlock(&s->files_lock);
		if (seg_file_path(s, tier, volume_id, path, sizeof(path),
				  errmsg) != 0)
			return OMBRA_EIO;
		if (unlink(path) != 0 && errno != ENOENT && rv == 0) {
			ombra_errmsg_printf(errmsg, "unlink %s: %s", path,
					    strerror(errno));
			rv = OMBRA_EIO;
		}
	}
	return rv;
}

int seg_files_sync(struct segstore *s, char *errmsg)
{
	struct seg_file *f;
	int *fds = NULL, err;
	size_t n = 0, cap = 0, i, b;
	int rv = 0;

	/* Duplicate the dirty descriptors under the lock and sync the
	 * duplicates without it: a concurrent delete_volume may close the
	 * originals meanwhile.  A flag cleared here and set again by a
	 * concurrent write only costs one more sync next time. */
	(void)pthread_mutex_lock(&s->files_lock);
	for (b = 0; b < SEG_FILE_BUCKETS && rv == 0; b++) {
		for (f = s->files[b]; f != NULL; f = f->next) {
			if (!f->dirty)
				continue;
			if (n == cap) {
				size_t ncap = cap == 0 ? 16 : cap * 2;
				int *nf = realloc(fds, ncap * sizeof(*nf));

				if (nf == NULL) {
					ombra_errmsg_printf(errmsg,
							    "out of memory");
					rv = OMBRA_ENOMEM;
					break;
				}
				fds = nf;
				cap = ncap;
			}
			fds[n] = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
			if (fds[n] < 0) {
				ombra_errmsg_printf(errmsg, "dup: %s",
						    strerror(errno));
				rv = OMBRA_EIO;
				break;
			}
			n++;
			f->dirty = false;
		}
	}
	(void)pthread_mutex_unlock(&s->files_lock);
	for (i = 0; i < n; i++) {
		err = seg_datasync(s, fds[i]);
		if (err != 0 && rv == 0) {
			ombra_errmsg_printf(errmsg, "fdatasync: %s",
					    strerror(err));
			rv = OMBRA_EIO;
		}
		(void)close(fds[i]);
	}
	free(fds);
	if (rv != 0) {
		/* Keep every file dirty so the next flush retries the ones
		 * not synced; see segstore_flush() for what a failed
		 * fdatasync means for the data. */
		(void)pthread_mutex_lock(&s->files_lock);
		for (b = 0; b < SEG_FILE_BUCKETS; b++)
			for (f = s->files[b]; f != NULL; f = f->next)
				f->dirty = true;
		(void)pthread_mutex_unlock(&s->files_lock);
	}
	return rv;
}

void seg_files_close_all(struct segstore *s)
{
	struct seg_file *f, *next;
	size_t b;

	for (b = 0; b < SEG_FILE_BUCKETS; b++) {
		for (f = s->files[b]; f != NULL; f = next) {
			next = f->next;
			(void)close(f->fd);
			free(f);
		}
		s->files[b] = NULL;
	}
}

int seg_pread_full(const struct segstore *s, int fd, void *buf, size_t len,
		   uint64_t off)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = s->io.pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0) {
			/* Past the end of a sparse file: zeros. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int seg_pwrite_full(const struct segstore *s, int fd, const void *buf,
		    size_t len, uint64_t off)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = s->io.pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Fallback of seg_punch(): write zeros over the part of the range that
 * lies inside the file (past its end already reads as zeros). */
static int seg_zero_fill(const struct segstore *s, int fd, uint64_t off,
			 uint64_t len)
{
	static const unsigned char zeros[64 * 1024];
	struct stat st;
	uint64_t end;
	int err;

	if (fstat(fd, &st) != 0)
		return errno;
	end = off + len;
	if (end > (uint64_t)st.st_size)
		end = (uint64_t)st.st_size;
	while (off < end) {
		size_t n = end - off < sizeof(zeros) ? (size_t)(end - off)
						     : sizeof(zeros);

		err = seg_pwrite_full(s, fd, zeros, n, off);
		if (err != 0)
			return err;
		off += n;
	}
	return 0;
}

int seg_punch(const struct segstore *s, int fd, uint64_t off, uint64_t len)
{
	if (s->io.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			    (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return errno;
	return seg_zero_fill(s, fd, off, len);
}

int seg_datasync(const struct segstore *s, int fd)
{
	while (s->io.fdatasync(fd) != 0) {
		if (errno != EINTR)
			return errno;
	}
	return 0;
}
