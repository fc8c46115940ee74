/* SPDX-License-Identifier: MIT */
/*
 * Reading a small text file (a configuration or rules file) whole into memory.
 */
#ifndef WALSHIP_COMMON_TEXTFILE_H
#define WALSHIP_COMMON_TEXTFILE_H

#include <stdbool.h>
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

/*
 * That @path (@what in messages) opens and is a regular file, for a reader of its own
 * (OpenSSL, which says no errno): 0, or -errno logged as textfile_read() does
 * (textfile_error_lasts() tells them apart).
 */
int textfile_check_path(const char *path, const char *what);

/*
 * Whether @err (negative), from loading a file the configuration names (textfile_read*(),
 * hba_load(), scram_passwords_load()), says the file itself is wrong: missing, not a
 * regular file, refused for its permissions or its size, not valid; a later start meets
 * it again.  Not what a later start may not meet: no descriptor (EMFILE, ENFILE), no
 * memory, an I/O error (a network mount).  walshipd exits 2 for the first, 1 for the rest
 * (role_ops.start's config_error).
 */
bool textfile_error_lasts(int err);

#endif /* WALSHIP_COMMON_TEXTFILE_H */
