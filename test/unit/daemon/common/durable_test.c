// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/durable.c: a file appears under its final name only
 * whole, never replaces a file with DURABLE_NOREPLACE, leaves no temporary file after a
 * failure (a full file system, a read-only one: a small tmpfs mounted in a private mount
 * namespace, skipped where mounting is not allowed), and removes the final name again when
 * the directory fsync fails, as the io_uring path drives the same steps.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/durable.h"
#include "common/log.h"

static char base_dir[256];
static struct durable_dir dir;
static int errors_logged;

static void count_errors(void *arg, enum log_level level, const char *line, size_t len)
{
	(void)arg;
	(void)line;
	(void)len;
	if (level == LOG_LEVEL_ERROR)
		errors_logged++;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The names in @fd's directory, "." and ".." aside, joined by spaces in sorted order. */
static const char *entries(int fd)
{
	static char out[1024];
	char names[16][NAME_MAX + 1];
	int count = 0, dup_fd = dup(fd);
	DIR *d = fdopendir(dup_fd);
	struct dirent *de;

	assert_non_null(d);
	rewinddir(d);
	while ((de = readdir(d)) != NULL && count < 16) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			snprintf(names[count++], sizeof(names[0]), "%s", de->d_name);
	}
	closedir(d);
	qsort(names, (size_t)count, sizeof(names[0]), cmp_name);
	out[0] = '\0';
	for (int idx = 0; idx < count; idx++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", idx ? " " : "",
			 names[idx]);
	return out;
}

static void assert_content(int dir_fd, const char *name, const char *want)
{
	char buf[256] = { 0 };
	int fd = openat(dir_fd, name, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	close(fd);
}

static void empty_dir(int fd)
{
	int dup_fd = dup(fd);
	DIR *d = fdopendir(dup_fd);
	struct dirent *de;

	assert_non_null(d);
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
}

static int setup(void **state)
{
	(void)state;
	snprintf(base_dir, sizeof(base_dir), "build/durable-test-XXXXXX");
	if (!mkdtemp(base_dir))
		return -1;
	dir.path = base_dir;
	dir.fd = open(base_dir, O_RDONLY | O_DIRECTORY);
	log_set_sink(count_errors, NULL);
	return dir.fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_sink(NULL, NULL);
	empty_dir(dir.fd);
	close(dir.fd);
	return rmdir(base_dir);
}

static int clean(void **state)
{
	(void)state;
	empty_dir(dir.fd);
	errors_logged = 0;
	return 0;
}

/* A small file, then its replacement: only the final name is left, logged nothing. */
static void test_put_and_replace(void **state)
{
	(void)state;
	assert_int_equal(durable_put(&dir, "identity", "one\n", 4, 0), 0);
	assert_content(dir.fd, "identity", "one\n");
	assert_int_equal(durable_put(&dir, "identity", "two\n", 4, 0), 0);
	assert_content(dir.fd, "identity", "two\n");
	assert_string_equal(entries(dir.fd), "identity");
	assert_int_equal(errors_logged, 0);
}

/* DURABLE_NOREPLACE: -EEXIST, the held file untouched, the new bytes open to compare. */
static void test_noreplace_keeps_existing(void **state)
{
	struct durable_file df;
	char buf[8] = { 0 };

	(void)state;
	assert_int_equal(durable_put(&dir, "000000010000000000000001", "held", 4, 0), 0);
	assert_int_equal(
		durable_begin(&df, &dir, NULL, "000000010000000000000001", DURABLE_NOREPLACE, 0640),
		0);
	assert_int_equal(durable_write(&df, "new!", 4), 0);
	assert_int_equal(durable_commit(&df), -EEXIST);
	assert_non_null(strstr(df.message, "never replaced"));
	assert_content(dir.fd, "000000010000000000000001", "held");
	assert_int_equal(pread(df.fd, buf, 4, 0), 4);
	assert_string_equal(buf, "new!");
	durable_end(&df);
	durable_end(&df); /* twice is harmless */
	assert_string_equal(entries(dir.fd), "000000010000000000000001");
}

/* The temporary file in another directory (.incoming), the final name in this one. */
static void test_tmp_dir(void **state)
{
	struct durable_dir incoming = { .path = "incoming" };
	struct durable_file df;
	struct stat sb;

	(void)state;
	assert_int_equal(mkdirat(dir.fd, "incoming", 0700), 0);
	incoming.fd = openat(dir.fd, "incoming", O_RDONLY | O_DIRECTORY);
	assert_true(incoming.fd >= 0);
	assert_int_equal(durable_begin(&df, &dir, &incoming, "f", DURABLE_NOREPLACE, 0600), 0);
	assert_string_equal(entries(incoming.fd), df.tmp_name);
	assert_int_equal(durable_write(&df, "abc", 3), 0);
	assert_int_equal(durable_commit(&df), 0);
	durable_end(&df);
	assert_string_equal(entries(incoming.fd), "");
	assert_content(dir.fd, "f", "abc");
	assert_int_equal(fstatat(dir.fd, "f", &sb, 0), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	close(incoming.fd);
	assert_int_equal(unlinkat(dir.fd, "incoming", AT_REMOVEDIR), 0);
}

/* A temporary file left by a dead writer of the same id does not stop the next one. */
static void test_stale_tmp_removed(void **state)
{
	struct durable_file df;
	char stale[NAME_MAX + 1];
	int fd;

	(void)state;
	snprintf(stale, sizeof(stale), "f" DURABLE_TMP_INFIX "%ld", (long)gettid());
	fd = openat(dir.fd, stale, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "stale", 5), 5);
	close(fd);
	assert_int_equal(durable_begin(&df, &dir, NULL, "f", 0, 0600), 0);
	assert_string_equal(df.tmp_name, stale);
	assert_int_equal(durable_write(&df, "fresh", 5), 0);
	assert_int_equal(durable_commit(&df), 0);
	durable_end(&df);
	assert_string_equal(entries(dir.fd), "f");
	assert_content(dir.fd, "f", "fresh");
}

/* A name whose temporary name cannot exist is refused before anything is created. */
static void test_name_too_long(void **state)
{
	struct durable_file df;
	char name[NAME_MAX + 1];

	(void)state;
	memset(name, 'a', NAME_MAX - 4);
	name[NAME_MAX - 4] = '\0';
	assert_int_equal(durable_begin(&df, &dir, NULL, name, 0, 0600), -ENAMETOOLONG);
	assert_non_null(strstr(df.message, "could not create file"));
	durable_end(&df);
	assert_string_equal(entries(dir.fd), "");
}

/* The steps in their order, as an asynchronous writer drives them. */
static void test_steps(void **state)
{
	struct durable_file df;
	int step;

	(void)state;
	assert_int_equal(durable_begin(&df, &dir, NULL, "f", DURABLE_NOREPLACE, 0600), 0);
	assert_int_equal(durable_rename_flags(&df), RENAME_NOREPLACE);
	assert_int_equal(durable_write(&df, "x", 1), 0);
	step = durable_step_done(&df, DURABLE_STEP_SYNC_FILE,
				 durable_step_run(&df, DURABLE_STEP_SYNC_FILE));
	assert_int_equal(step, DURABLE_STEP_RENAME);
	step = durable_step_done(&df, DURABLE_STEP_RENAME,
				 durable_step_run(&df, DURABLE_STEP_RENAME));
	assert_int_equal(step, DURABLE_STEP_SYNC_DIR);
	assert_false(df.tmp_exists);
	step = durable_step_done(&df, DURABLE_STEP_SYNC_DIR,
				 durable_step_run(&df, DURABLE_STEP_SYNC_DIR));
	assert_int_equal(step, DURABLE_STEP_DONE);
	durable_end(&df);
	assert_string_equal(entries(dir.fd), "f");

	/* A failed fdatasync stops there: nothing renamed, durable_end() cleans up. */
	assert_int_equal(durable_begin(&df, &dir, NULL, "g", 0, 0600), 0);
	assert_int_equal(durable_rename_flags(&df), 0);
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_SYNC_FILE, -EIO), -EIO);
	assert_non_null(strstr(df.message, "could not fsync file"));
	durable_end(&df);
	assert_string_equal(entries(dir.fd), "f");
}

/* The directory fsync fails (an I/O error reported by the ring): the name goes again. */
static void test_dir_sync_failure(void **state)
{
	struct durable_file df;

	(void)state;
	assert_int_equal(durable_begin(&df, &dir, NULL, "f", DURABLE_NOREPLACE, 0600), 0);
	assert_int_equal(durable_write(&df, "x", 1), 0);
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_SYNC_FILE, 0), DURABLE_STEP_RENAME);
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_RENAME,
					   durable_step_run(&df, DURABLE_STEP_RENAME)),
			 DURABLE_STEP_SYNC_DIR);
	assert_string_equal(entries(dir.fd), "f");
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_SYNC_DIR, -EIO), -EIO);
	assert_non_null(strstr(df.message, "could not fsync directory"));
	assert_false(df.renamed);
	durable_end(&df);
	assert_string_equal(entries(dir.fd), "");
}

/*
 * The directory fsync of a write that replaces a file fails: the new version stays under
 * the name.  The rename took the old one already; removing the new one too would leave a
 * state file (the relay's registry, the standbys' holds) missing at the next start.
 */
static void test_dir_sync_failure_replacing(void **state)
{
	struct durable_file df;

	(void)state;
	assert_int_equal(durable_put(&dir, "state", "old", 3, 0), 0);
	assert_int_equal(durable_begin(&df, &dir, NULL, "state", 0, 0600), 0);
	assert_int_equal(durable_write(&df, "new", 3), 0);
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_SYNC_FILE, 0), DURABLE_STEP_RENAME);
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_RENAME,
					   durable_step_run(&df, DURABLE_STEP_RENAME)),
			 DURABLE_STEP_SYNC_DIR);
	assert_int_equal(durable_step_done(&df, DURABLE_STEP_SYNC_DIR, -EIO), -EIO);
	assert_non_null(strstr(df.message, "could not fsync directory"));
	assert_true(df.renamed);
	durable_end(&df);
	assert_string_equal(entries(dir.fd), "state");
	assert_content(dir.fd, "state", "new");
}

/* A directory is created once and opened; a file of that name is not one. */
static void test_dir_open(void **state)
{
	mode_t mask = umask(0);
	struct stat sb;
	int fd, again;

	(void)state;
	umask(mask);
	fd = durable_dir_open(dir.fd, dir.path, "wal");
	assert_true(fd >= 0);
	assert_int_equal(fstatat(dir.fd, "wal", &sb, 0), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0750 & ~mask);
	again = durable_dir_open(dir.fd, dir.path, "wal");
	assert_true(again >= 0);
	close(again);
	close(fd);
	assert_int_equal(unlinkat(dir.fd, "wal", AT_REMOVEDIR), 0);

	assert_int_equal(durable_put(&dir, "file", "x", 1, 0), 0);
	assert_int_equal(durable_dir_open(dir.fd, dir.path, "file"), -ENOTDIR);
	assert_int_equal(errors_logged, 1);
}

/*
 * A small tmpfs of our own, in a private mount namespace (so nothing outlives the test).
 * Returns its directory's descriptor, or -1 when mounting is not allowed here.
 */
static int mount_tmpfs(char *path, size_t len, const char *options)
{
	static bool unshared;

	if (!unshared) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			return -1;
		unshared = true;
	}
	snprintf(path, len, "%s/mnt", base_dir);
	if (mkdir(path, 0700) < 0)
		return -1;
	if (mount("durable-test", path, "tmpfs", 0, options) < 0) {
		rmdir(path);
		return -1;
	}
	return open(path, O_RDONLY | O_DIRECTORY);
}

static void unmount_tmpfs(const char *path, int fd)
{
	close(fd);
	assert_int_equal(umount(path), 0);
	assert_int_equal(rmdir(path), 0);
}

/* A full file system: -ENOSPC from the write, no temporary file left, one error logged. */
static void test_full_file_system(void **state)
{
	char path[300];
	struct durable_dir small = { .path = path };
	struct durable_file df;
	size_t big = 1024 * 1024;
	char *buf = calloc(1, big);

	(void)state;
	assert_non_null(buf);
	small.fd = mount_tmpfs(path, sizeof(path), "size=64k");
	if (small.fd < 0) {
		free(buf);
		print_message("skipped: cannot mount a tmpfs here\n");
		skip();
	}
	assert_int_equal(durable_begin(&df, &small, NULL, "f", DURABLE_NOREPLACE, 0600), 0);
	assert_int_equal(durable_write(&df, buf, big), -ENOSPC);
	assert_non_null(strstr(df.message, "could not write file"));
	durable_end(&df);
	assert_string_equal(entries(small.fd), "");

	assert_int_equal(durable_put(&small, "f", buf, big, 0), -ENOSPC);
	assert_int_equal(errors_logged, 1);
	assert_string_equal(entries(small.fd), "");
	free(buf);
	unmount_tmpfs(path, small.fd);
}

/* A read-only file system: nothing can be created, the reason is said. */
static void test_read_only(void **state)
{
	char path[300];
	struct durable_dir ro = { .path = path };
	struct durable_file df;

	(void)state;
	ro.fd = mount_tmpfs(path, sizeof(path), "size=64k");
	if (ro.fd < 0) {
		print_message("skipped: cannot mount a tmpfs here\n");
		skip();
	}
	assert_int_equal(durable_put(&ro, "held", "held", 4, 0), 0);
	assert_int_equal(mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
	assert_int_equal(durable_begin(&df, &ro, NULL, "f", 0, 0600), -EROFS);
	assert_non_null(strstr(df.message, "could not create file"));
	durable_end(&df);
	assert_int_equal(durable_put(&ro, "held", "new!", 4, 0), -EROFS);
	assert_int_equal(errors_logged, 1);
	assert_content(ro.fd, "held", "held");
	unmount_tmpfs(path, ro.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_put_and_replace, clean),
		cmocka_unit_test_setup(test_noreplace_keeps_existing, clean),
		cmocka_unit_test_setup(test_tmp_dir, clean),
		cmocka_unit_test_setup(test_stale_tmp_removed, clean),
		cmocka_unit_test_setup(test_name_too_long, clean),
		cmocka_unit_test_setup(test_steps, clean),
		cmocka_unit_test_setup(test_dir_sync_failure, clean),
		cmocka_unit_test_setup(test_dir_sync_failure_replacing, clean),
		cmocka_unit_test_setup(test_dir_open, clean),
		cmocka_unit_test_setup(test_full_file_system, clean),
		cmocka_unit_test_setup(test_read_only, clean),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
