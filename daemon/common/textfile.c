// SPDX-License-Identifier: MIT
/*
 * Small text files read whole (see textfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/textfile.h"

int textfile_read(const char *path, const char *what, size_t max, char **out, size_t *out_len)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_error("could not open %s \"%s\": %s", what, path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("could not stat %s \"%s\": %s", what, path, strerror(-ret));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		log_error("%s \"%s\" is not a regular file of at most %zu bytes", what, path, max);
		ret = -EINVAL;
		goto out_close;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		log_error("out of memory");
		ret = -ENOMEM;
		goto out_close;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_error("could not read %s \"%s\": %s", what, path, strerror(-ret));
			free(text);
			goto out_close;
		}
		if (n == 0)
			break; /* shrank under us: what is there */
		len += (size_t)n;
	}
	text[len] = '\0';
	*out = text;
	*out_len = len;
	ret = 0;
out_close:
	close(fd);
	return ret;
}
