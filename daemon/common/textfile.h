/* SPDX-License-Identifier: MIT */
/*
 * Reading a small text file (a configuration or rules file) whole into memory.
 */
#ifndef WALSHIP_COMMON_TEXTFILE_H
#define WALSHIP_COMMON_TEXTFILE_H

#include <stddef.h>

/*
 * Read the regular file at @path, of at most @max bytes, into a malloc'd buffer with a NUL
 * added; @what names it in messages ("configuration file": `could not open configuration
 * file "x": ...`).  A file that shrinks while read yields what was there.  Returns 0 and
 * sets *@text (free() it) and *@len, or -errno / -EINVAL, logged once.
 */
int textfile_read(const char *path, const char *what, size_t max, char **text, size_t *len);

/*
 * The same for a file holding secrets (password verifiers), refused when group or others
 * may access it, as PostgreSQL refuses its key file: mode 0600 or less, or 0640 or less
 * when root owns it.  Else `%s "x" has group or world access` (with @what), -EACCES.
 */
int textfile_read_private(const char *path, const char *what, size_t max, char **text, size_t *len);

#endif /* WALSHIP_COMMON_TEXTFILE_H */
