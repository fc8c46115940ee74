// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/wal/spool.c's durable writes: a held copy is made through the
 * durable write (nothing left in .incoming), a push retried with the same bytes reuses it,
 * one with other bytes is refused and the held copy kept; the identity and the lost-WAL
 * record are written durably and read back; a claim released while a copy of the same
 * file is being claimed for another replica (the event loop and the spool's worker thread)
 * leaves the copy and every claim in place; a replica dropped while a copy is being
 * claimed for it is dropped, and nothing is held for it; a drop whose fsync of replicas/
 * fails after its rename is done all the same; a replica whose folder was removed by
 * hand is not held for, a store says so, and it is dropped; a copy no claim holds that
 * cannot be removed is reported, the rest removed; the stream's record is written
 * and read back, and one not valid is refused.  Made under build/ (on the disk).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "wal/spool.h"

#define SEG1 "000000010000000000000001"
#define SEG2 "000000010000000000000002"
#define SEG3 "000000010000000000000003"

static char dir[256];
static char replica_name[] = "r1";
static char *const replicas[] = { replica_name };

/*
 * linkat(2), as spool_store() calls it to claim a copy, with a hook run first: what the
 * event loop does meanwhile on its own thread, at the one moment that matters, so that
 * the interleaving is the same at every run.  This definition is the program's own, so
 * spool.c's call comes here; the real call is the system call itself.
 */
static void (*before_link)(void);
/* and a claim into the folder of inode @fail_link_ino refused (EMLINK, once), as a full
 * file system refuses it */
static ino_t fail_link_ino;

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
	void (*hook)(void) = before_link;
	struct stat st;

	before_link = NULL; /* once */
	if (hook)
		hook();
	if (fail_link_ino && fstat(newdirfd, &st) == 0 && st.st_ino == fail_link_ino) {
		fail_link_ino = 0;
		errno = EMLINK;
		return -1;
	}
	return (int)syscall(SYS_linkat, olddirfd, oldpath, newdirfd, newpath, flags);
}

/* unlinkat(2) likewise, with a hook run before the first removal of a directory (the
 * one spool_drop() makes of a replica's); and the removal of a file named
 * @fail_unlink_name refused (EIO, once), as a failing disk refuses it. */
static void (*before_rmdir)(void);
static const char *fail_unlink_name;
static int fail_unlink_dirfd = -1; /* (and only in this directory, when not -1) */

int unlinkat(int dirfd, const char *path, int flags)
{
	void (*hook)(void) = (flags & AT_REMOVEDIR) ? before_rmdir : NULL;

	if (hook) {
		before_rmdir = NULL;
		hook();
	}
	if (fail_unlink_name && !(flags & AT_REMOVEDIR) && !strcmp(path, fail_unlink_name) &&
	    (fail_unlink_dirfd < 0 || dirfd == fail_unlink_dirfd)) {
		fail_unlink_name = NULL;
		fail_unlink_dirfd = -1;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_unlinkat, dirfd, path, flags);
}

/* fsync(2) likewise, failing with EIO for descriptor @fail_fsync_fd (once), as a disk
 * that lost the write would. */
static int fail_fsync_fd = -1;

int fsync(int fd)
{
	if (fd >= 0 && fd == fail_fsync_fd) {
		fail_fsync_fd = -1;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

/* An unlinked file holding @len bytes of @text, repeated. */
static int source(const char *text, size_t len)
{
	char path[300];
	size_t step = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s-src-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	for (size_t off = 0; off < len; off += step)
		assert_int_equal(write(fd, text, len - off < step ? len - off : step),
				 (ssize_t)(len - off < step ? len - off : step));
	return fd;
}

/* How many entries @sub of the spool holds, "." and ".." aside. */
static int count_entries(const char *sub)
{
	char path[512];
	struct dirent *de;
	int count = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		count += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return count;
}

static int setup(void **state)
{
	(void)state;
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/spool-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	log_set_level(LOG_LEVEL_FATAL);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_store_retry_conflict(void **state)
{
	struct spool sp;
	char err[256], **backlog;
	int src, other, fd, n;
	char buf[9] = { 0 };

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_register(&sp, "r1"), 1);
	src = source("walship!", 100000);
	other = source("another!", 100000);

	assert_int_equal(spool_store(&sp, src, SEG1, 100000, replicas, 1, NULL, err, sizeof(err)),
			 0);
	assert_int_equal(count_entries(".incoming"), 0);
	assert_true(sp.files == 1 && sp.used_bytes == 100000);
	/* Retried with the same bytes: the held copy is reused, not counted twice. */
	assert_int_equal(spool_store(&sp, src, SEG1, 100000, replicas, 1, NULL, err, sizeof(err)),
			 0);
	assert_true(sp.files == 1 && sp.used_bytes == 100000);
	/* Other bytes under the same name: refused, the held copy kept. */
	assert_int_equal(spool_store(&sp, other, SEG1, 100000, replicas, 1, NULL, err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "different content"));
	assert_int_equal(count_entries(".incoming"), 0);
	fd = spool_open_file(&sp, SEG1);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, 8), 8);
	assert_string_equal(buf, "walship!");
	close(fd);
	/* A source shorter than pushed: refused, nothing left behind. */
	assert_int_equal(spool_store(&sp, src, SEG2, 200000, replicas, 1, NULL, err, sizeof(err)),
			 -ENODATA);
	assert_non_null(strstr(err, "shorter"));
	assert_int_equal(count_entries(".incoming"), 0);
	assert_int_equal(count_entries("wal"), 1);

	/* Held for a replica that is not registered (no directory of its own: dropped since
	 * the caller listed it, or removed by hand): nothing is held for it, the caller is
	 * told it is gone (and not the registered one), and the copy made for it does not
	 * stay behind, held for nobody. */
	{
		char nobody[] = "nobody";
		char *const unknown[] = { nobody };
		bool gone[1] = { false };

		assert_int_equal(
			spool_store(&sp, src, SEG2, 100000, unknown, 1, gone, err, sizeof(err)), 0);
		assert_true(gone[0]);
		assert_false(spool_holds(&sp, "nobody", SEG2));
		assert_int_equal(count_entries("wal"), 1);
		assert_true(sp.files == 1 && sp.used_bytes == 100000);
	}

	n = spool_backlog(&sp, "r1", &backlog);
	assert_int_equal(n, 1);
	assert_string_equal(backlog[0], SEG1);
	spool_free_names(backlog, n);
	close(src);
	close(other);
	spool_close(&sp);
}

static void test_identity_and_lost(void **state)
{
	const struct wal_identity id = { .system_identifier = 7713288329218603033ull,
					 .page_magic = 0xD110,
					 .seg_size = 16 << 20,
					 .block_size = 8192 };
	struct wal_identity back;
	struct spool_lost lost;
	struct spool sp;
	uint64_t released, kept, unremoved;
	char err[256];
	int src;

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_get_identity(&sp, &back), 0);
	assert_true(back.system_identifier == 0);
	assert_int_equal(spool_set_identity(&sp, &id), 0);
	spool_close(&sp);

	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_get_identity(&sp, &back), 0);
	assert_true(back.system_identifier == id.system_identifier);
	assert_int_equal(back.page_magic, id.page_magic);
	assert_int_equal(back.seg_size, id.seg_size);
	assert_int_equal(back.block_size, id.block_size);
	/* The spool's top level: its three folders and the identity, no temporary file. */
	assert_int_equal(count_entries(""), 4);

	assert_int_equal(spool_register(&sp, "r1"), 1);
	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG1, 4096, replicas, 1, NULL, err, sizeof(err)), 0);
	assert_int_equal(spool_store(&sp, src, SEG2, 4096, replicas, 1, NULL, err, sizeof(err)), 0);
	close(src);
	assert_int_equal(spool_release_all_lost(&sp, "r1", &lost, &released, &kept, &unremoved), 0);
	assert_true(released == 2 && lost.files == 2 && kept == 0 && unremoved == 0);
	memset(&lost, 0, sizeof(lost));
	assert_int_equal(spool_read_lost(&sp, "r1", &lost), 0);
	assert_true(lost.files == 2);
	assert_string_equal(lost.first, SEG1);
	assert_string_equal(lost.last, SEG2);
	assert_int_equal(count_entries("replicas/r1"), 1); /* LOST alone */
	assert_int_equal(count_entries("wal"), 0);
	spool_close(&sp);
}

/* A replica's AWAY note: replaced whole, read back, never a held file, cleared; a drop
 * removes it with the folder. */
static void test_away_note(void **state)
{
	struct spool sp;
	char buf[SPOOL_AWAY_MAX], **files, err[256];
	int src;

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_put_away(&sp, "r1", "x\n"), -ENOENT); /* not registered */
	assert_int_equal(spool_register(&sp, "r1"), 1);
	assert_int_equal(spool_get_away(&sp, "r1", buf, sizeof(buf)), 0);
	assert_int_equal(spool_put_away(&sp, "r1", "- 0 0 1\n"), 0);
	assert_int_equal(spool_put_away(&sp, "r1", "000000010000000000000001 1000000 0 2\n"), 0);
	assert_int_equal(spool_get_away(&sp, "r1", buf, sizeof(buf)), 37);
	assert_string_equal(buf, "000000010000000000000001 1000000 0 2\n");
	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG1, 4096, replicas, 1, NULL, err, sizeof(err)), 0);
	close(src);
	assert_int_equal(spool_backlog(&sp, "r1", &files), 1); /* the note is no held file */
	assert_string_equal(files[0], SEG1);
	spool_free_names(files, 1);
	assert_int_equal(count_entries("replicas/r1"), 2); /* SEG1 and AWAY, no temporary */
	spool_clear_away(&sp, "r1");
	assert_int_equal(spool_get_away(&sp, "r1", buf, sizeof(buf)), 0);
	assert_int_equal(spool_put_away(&sp, "r1", "- 0 0 3\n"), 0);
	assert_int_equal(spool_drop(&sp, "r1"), 0);
	assert_int_equal(count_entries("replicas"), 0);
	assert_int_equal(count_entries("wal"), 0);
	spool_close(&sp);
}

/* A copy in wal/ that no replica's claim links (a crash between the copy and its claims)
 * is held for nobody: removed at open, not counted against spool_max_size for ever. */
/* A spool (closed again) where r1 is registered and holds SEG1, 4096 bytes. */
/* Replica @name's folder removed by hand, the claims in it with it (as an operator's
 * rm -rf). */
static void remove_by_hand(const char *name)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/replicas/%s'", dir, name);
	assert_int_equal(system(cmd), 0);
}

static void spool_with_seg1_held(void)
{
	struct spool sp;
	char err[256];
	int src;

	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_register(&sp, "r1"), 1);
	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG1, 4096, replicas, 1, NULL, err, sizeof(err)), 0);
	close(src);
	spool_close(&sp);
}

static void test_unclaimed_removed_at_open(void **state)
{
	struct spool sp;
	char path[600];
	int fd;

	(void)state;
	spool_with_seg1_held();
	snprintf(path, sizeof(path), "%s/wal/%s", dir, SEG2);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "walship!", 8), 8);
	close(fd);

	assert_int_equal(spool_open(&sp, dir), 0);
	assert_true(sp.files == 1 && sp.used_bytes == 4096);
	assert_int_equal(count_entries("wal"), 1);
	assert_true(access(path, F_OK) < 0);
	spool_close(&sp);
}

/* A drop cut short (a crash or a stop after its rename, before all its claims were
 * released): the replica is registered no more, and the next open finishes the drop,
 * its claims released and the copies they alone held removed. */
static void test_drop_finished_at_open(void **state)
{
	struct spool sp;
	char from[600], to[600];
	char **names;
	int n;

	(void)state;
	spool_with_seg1_held();
	snprintf(from, sizeof(from), "%s/replicas/r1", dir);
	snprintf(to, sizeof(to), "%s/replicas/.dropping-r1", dir);
	assert_int_equal(rename(from, to), 0); /* as spool_drop() does first */

	assert_int_equal(spool_open(&sp, dir), 0);
	n = spool_replicas(&sp, &names);
	assert_int_equal(n, 0);
	spool_free_names(names, n);
	assert_int_equal(count_entries("replicas"), 0);
	assert_int_equal(count_entries("wal"), 0);
	assert_true(sp.files == 0 && sp.used_bytes == 0);
	spool_close(&sp);
}

/* A drop whose release a stop interrupts: unregistered, what it held left, and finished
 * at the next open. */
static void test_drop_stopped(void **state)
{
	struct spool sp;
	char **names;
	int n;

	(void)state;
	spool_with_seg1_held();
	assert_int_equal(spool_open(&sp, dir), 0);
	__atomic_store_n(&sp.stopping, true, __ATOMIC_RELAXED);
	assert_int_equal(spool_drop(&sp, "r1"), -EINTR);
	n = spool_replicas(&sp, &names);
	assert_int_equal(n, 0); /* unregistered */
	spool_free_names(names, n);
	assert_int_equal(count_entries("wal"), 1); /* not released yet */
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(count_entries("replicas"), 0);
	assert_int_equal(count_entries("wal"), 0);
	spool_close(&sp);
}

/*
 * A drop whose fsync of replicas/ fails after its rename: the replica is unregistered
 * (renamed, stores hold nothing for it), and spool_unregister() says so, the fsync's
 * failure a warning: the build before returned -EIO, and the primary kept the replica
 * registered, copying every push it lacked into the spool for it again and again.
 */
static void test_unregister_fsync_fails(void **state)
{
	struct spool sp;
	char **names;
	int n;

	(void)state;
	spool_with_seg1_held();
	assert_int_equal(spool_open(&sp, dir), 0);
	fail_fsync_fd = sp.replicas_fd;
	assert_int_equal(spool_unregister(&sp, "r1"), 0);
	assert_int_equal(fail_fsync_fd, -1); /* it was tried */
	n = spool_replicas(&sp, &names);
	assert_int_equal(n, 0);
	spool_free_names(names, n);
	assert_int_equal(spool_release_dropped(&sp, "r1"), 0);
	assert_int_equal(count_entries("replicas"), 0);
	assert_int_equal(count_entries("wal"), 0);
	spool_close(&sp);
}

/*
 * A replica's folder removed by hand (with its claims): it is not registered, a store
 * for it holds nothing and says it is gone, and a drop of it succeeds (the build before
 * failed the rename, "No such file or directory") and removes the copies its claims
 * alone held, not another replica's nor a history file.
 */
static void test_removed_by_hand(void **state)
{
	static const char history[] = "1\t0/3000000\tno recovery target specified\n";
	char r1[] = "r1", r2[] = "r2", path[600], err[256];
	char *const both[] = { r1, r2 };
	bool gone[2] = { false, false };
	struct spool sp;
	int src;

	(void)state;
	spool_with_seg1_held(); /* for r1 */
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_register(&sp, "r2"), 1);
	assert_int_equal(spool_keep_history(&sp, "00000002.history", history, strlen(history)), 0);
	remove_by_hand("r1");
	assert_false(spool_registered(&sp, "r1"));
	assert_true(spool_registered(&sp, "r2"));

	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG2, 4096, both, 2, gone, err, sizeof(err)), 0);
	close(src);
	assert_true(gone[0]);
	assert_false(gone[1]);
	assert_true(spool_holds(&sp, "r2", SEG2));
	assert_int_equal(count_entries("wal"), 3); /* SEG1 held for nobody now */

	assert_int_equal(spool_unregister(&sp, "r1"), 0);
	assert_int_equal(spool_release_dropped(&sp, "r1"), 0);
	assert_int_equal(count_entries("wal"), 2); /* SEG2 for r2, the history */
	snprintf(path, sizeof(path), "%s/wal/%s", dir, SEG1);
	assert_true(access(path, F_OK) < 0);
	assert_true(spool_holds(&sp, "r2", SEG2));
	assert_int_equal(sp.files, 2);
	spool_close(&sp);
}

/*
 * The removal of copies no claim holds, one of which cannot be unlinked (an I/O error):
 * the others are removed all the same, and the caller is told (-EIO: the failed one
 * still counts, and the primary tries again; the build before said it removed one and
 * returned success).  Tried again, it is removed.
 */
static void test_unclaimed_removal_fails(void **state)
{
	char r1[] = "r1", err[256];
	char *const one[] = { r1 };
	struct spool sp;
	int src;

	(void)state;
	spool_with_seg1_held(); /* for r1 */
	assert_int_equal(spool_open(&sp, dir), 0);
	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG2, 4096, one, 1, NULL, err, sizeof(err)), 0);
	close(src);
	assert_int_equal(sp.files, 2);
	remove_by_hand("r1");

	fail_unlink_name = SEG1;
	assert_int_equal(spool_remove_unclaimed(&sp), -EIO);
	assert_null(fail_unlink_name); /* it was tried */
	assert_int_equal(count_entries("wal"), 1); /* SEG2 removed all the same */
	assert_int_equal(sp.files, 1);
	assert_int_equal(sp.used_bytes, 4096); /* SEG1 still counted */
	assert_int_equal(sp.unremovable, 1); /* (status) */

	assert_int_equal(spool_remove_unclaimed(&sp), 1);
	assert_int_equal(count_entries("wal"), 0);
	assert_true(sp.files == 0 && sp.used_bytes == 0);
	assert_false(sp.unclaimed_left); /* (the caller was told) */
	spool_close(&sp);
}

/*
 * Where no caller is told of a copy no claim holds that could not be removed, its
 * removal is owed (unclaimed_left): a release whose unlink of the copy fails; a drop of
 * a folder removed by hand, which succeeds all the same (the copy may be no copy of its:
 * the build before failed the drop, and refused the name until the copy could go).
 */
static void test_unclaimed_left_owed(void **state)
{
	char r1[] = "r1", err[256];
	char *const one[] = { r1 };
	struct spool sp;
	int src;

	(void)state;
	spool_with_seg1_held(); /* for r1 */
	assert_int_equal(spool_open(&sp, dir), 0);
	fail_unlink_name = SEG1; /* the claim goes, the copy does not */
	fail_unlink_dirfd = sp.wal_fd;
	assert_int_equal(spool_release(&sp, "r1", SEG1), 1);
	assert_null(fail_unlink_name);
	assert_true(sp.unclaimed_left);
	assert_int_equal(sp.unremovable, 1);
	assert_int_equal(count_entries("wal"), 1);
	assert_int_equal(spool_remove_unclaimed(&sp), 1);
	sp.unclaimed_left = false;

	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG2, 4096, one, 1, NULL, err, sizeof(err)), 0);
	close(src);
	remove_by_hand("r1");
	assert_int_equal(spool_unregister(&sp, "r1"), 0);
	fail_unlink_name = SEG2;
	assert_int_equal(spool_release_dropped(&sp, "r1"), 0);
	assert_null(fail_unlink_name);
	assert_true(sp.unclaimed_left);
	assert_int_equal(sp.unremovable, 2);
	assert_int_equal(count_entries("wal"), 1);

	/* release_slowest's release says how many of its copies stayed (their room is not
	 * free: the primary releases no other replica for it in that push) */
	{
		char r2[] = "r2";
		char *const two[] = { r2 };
		struct spool_lost lost;
		uint64_t released, kept, unremoved;

		assert_int_equal(spool_register(&sp, "r2"), 1);
		src = source("walship!", 4096);
		assert_int_equal(spool_store(&sp, src, SEG1, 4096, two, 1, NULL, err, sizeof(err)),
				 0);
		close(src);
		fail_unlink_name = SEG1;
		fail_unlink_dirfd = sp.wal_fd;
		assert_int_equal(
			spool_release_all_lost(&sp, "r2", &lost, &released, &kept, &unremoved), 0);
		assert_true(released == 1 && kept == 0 && unremoved == 1 && lost.files == 1);
		assert_int_equal(count_entries("wal"), 2);

		/* a claim that cannot be released (an immutable file refuses the unlink of
		 * every link to it) keeps the copy: counted alike */
		src = source("walship!", 4096);
		assert_int_equal(spool_store(&sp, src, SEG3, 4096, two, 1, NULL, err, sizeof(err)),
				 0);
		close(src);
		fail_unlink_name = SEG3; /* the first unlink of it: the claim's */
		assert_int_equal(
			spool_release_all_lost(&sp, "r2", &lost, &released, &kept, &unremoved), 0);
		assert_null(fail_unlink_name);
		assert_true(released == 0 && kept == 1 && unremoved == 1);
		assert_true(spool_holds(&sp, "r2", SEG3));
		/* the claim kept is not in the record (which says SEG1 alone), and released
		 * again it counts once: the build before counted it at every release */
		assert_true(lost.files == 1);
		assert_string_equal(lost.last, SEG1);
		assert_int_equal(
			spool_release_all_lost(&sp, "r2", &lost, &released, &kept, &unremoved), 0);
		assert_true(released == 1 && kept == 0 && unremoved == 0);
		assert_true(lost.files == 2);
		assert_string_equal(lost.first, SEG1);
		assert_string_equal(lost.last, SEG3);
		assert_false(spool_holds(&sp, "r2", SEG3));
	}
	spool_close(&sp);
}

/* Only a folder registers a replica: a link leading nowhere, a link to a folder (a drop
 * could not remove it: rmdir does not follow links), a file are neither listed nor
 * registered, and registering over them is refused. */
static void test_dangling_link(void **state)
{
	char path[600], **names;
	struct spool sp;
	int n;

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_register(&sp, "r1"), 1);
	snprintf(path, sizeof(path), "%s/replicas/r2", dir);
	assert_int_equal(symlink("/nonexistent/walship-r2", path), 0);
	snprintf(path, sizeof(path), "%s/elsewhere", dir);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/replicas/r3", dir);
	assert_int_equal(symlink("../elsewhere", path), 0);
	snprintf(path, sizeof(path), "%s/replicas/r5", dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	assert_false(spool_registered(&sp, "r2"));
	assert_false(spool_registered(&sp, "r3"));
	assert_false(spool_registered(&sp, "r5"));
	assert_true(spool_registered(&sp, "r1"));
	n = spool_replicas(&sp, &names);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "r1");
	spool_free_names(names, n);
	assert_int_equal(spool_register(&sp, "r2"), -ENOTDIR);
	assert_int_equal(spool_register(&sp, "r3"), -ENOTDIR);
	assert_int_equal(spool_register(&sp, "r5"), -ENOTDIR);
	assert_int_equal(spool_register(&sp, "r1"), 0);
	for (const char *const *r = (const char *const[]){ "r2", "r3", "r5", NULL }; *r; r++) {
		snprintf(path, sizeof(path), "%s/replicas/%s", dir, *r);
		assert_int_equal(unlink(path), 0);
	}
	snprintf(path, sizeof(path), "%s/elsewhere", dir);
	assert_int_equal(rmdir(path), 0);
	spool_close(&sp);
}

/* A drop cut short of a link (builds before c63fdcb took a link to a folder for a
 * registration, and renamed it at a drop): finished at the next start by removing the
 * link itself, never through it: here it leads to r1's folder, whose claims stay. */
static void test_dropping_link(void **state)
{
	char path[600];
	struct spool sp;

	(void)state;
	spool_with_seg1_held(); /* for r1 */
	snprintf(path, sizeof(path), "%s/replicas/.dropping-r9", dir);
	assert_int_equal(symlink("r1", path), 0);
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_true(faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0); /* the link went */
	assert_true(spool_holds(&sp, "r1", SEG1));
	assert_int_equal(sp.files, 1);
	spool_close(&sp);
}

/* A replica's folder swapped for a link into another's by hand while walshipd runs (r2 ->
 * r1): nothing is done through it: no claim made in r1's folder (r2 taken for gone), none
 * of r1's released or counted as r2's. */
static void test_link_into_another(void **state)
{
	char r2[] = "r2", path[600], err[256];
	char *const only_r2[] = { r2 };
	bool gone[1] = { false };
	char **names;
	struct spool sp;
	int src, n;

	(void)state;
	spool_with_seg1_held(); /* for r1 */
	assert_int_equal(spool_open(&sp, dir), 0);
	snprintf(path, sizeof(path), "%s/replicas/r2", dir);
	assert_int_equal(symlink("r1", path), 0);
	assert_false(spool_holds(&sp, "r2", SEG1));
	assert_int_equal(spool_backlog(&sp, "r2", &names), 0);
	src = source("walship!", 4096);
	assert_int_equal(spool_store(&sp, src, SEG2, 4096, only_r2, 1, gone, err, sizeof(err)), 0);
	close(src);
	assert_true(gone[0]);
	assert_false(spool_holds(&sp, "r1", SEG2));
	assert_int_equal(spool_release(&sp, "r2", SEG1), 0);
	assert_true(spool_holds(&sp, "r1", SEG1));
	n = spool_backlog(&sp, "r1", &names);
	assert_int_equal(n, 1);
	spool_free_names(names, n);
	assert_int_equal(unlink(path), 0);
	spool_close(&sp);
}

/* The stream's record: none, one written and read back after a restart, one replaced, one
 * not valid (refused, not read as a position). */
static void test_reported(void **state)
{
	const struct spool_reported r = { .system_identifier = 7713288329218603033ull,
					  .timeline = 3,
					  .lsn = 0x1A2B3C4D5E6ull };
	struct spool_reported back = { .lsn = 1 };
	struct spool sp;
	char path[4200], line[128], *crc;
	FILE *f;

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_get_reported(&sp, &back), 0);
	assert_true(back.system_identifier == 0 && back.lsn == 0);
	assert_int_equal(spool_set_reported(&sp, &r), 0);
	spool_close(&sp);

	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_get_reported(&sp, &back), 0);
	assert_true(back.system_identifier == r.system_identifier);
	assert_int_equal(back.timeline, 3);
	assert_true(back.lsn == r.lsn);
	back.lsn = 0x2000000;
	assert_int_equal(spool_set_reported(&sp, &back), 0);
	assert_int_equal(spool_get_reported(&sp, &back), 0);
	assert_true(back.lsn == 0x2000000 && back.timeline == 3);

	/* As written: the text and its CRC-32C, 8 hex digits. */
	snprintf(path, sizeof(path), "%s/reported", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(strlen(line), 41);
	assert_int_equal(strncmp(line, "7713288329218603033 3 0/2000000 ", 32), 0);
	crc = line + 32;
	crc[8] = '\0';

	/* Lines that are not valid: head, the CRC of the line written (or none), tail. */
	static const struct {
		const char *head, *tail;
		bool crc;
	} bad[] = {
		{ "7713288329218603033 3 0/2000001 ", "\n", true }, /* another position */
		{ "7713288329218603033 3 0/2000000 ", "", true }, /* cut: no end of line */
		{ "7713288329218603033 3 0/2000000", "\n", false }, /* no CRC */
		{ "7713288329218603033 3 0/02000000 ", "\n", true }, /* not as written */
		{ "7713288329218603033 3 0/2000000 ", " \n", true }, { "", "", false },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "%s%s%s", bad[i].head, bad[i].crc ? crc : "", bad[i].tail);
		fclose(f);
		back.lsn = 1;
		assert_int_equal(spool_get_reported(&sp, &back), -EINVAL);
		assert_true(back.lsn == 0 && back.system_identifier == 0);
	}
	f = fopen(path, "w"); /* the line written, by hand */
	assert_non_null(f);
	fprintf(f, "7713288329218603033 3 0/2000000 %s\n", crc);
	fclose(f);
	assert_int_equal(spool_get_reported(&sp, &back), 0);
	assert_true(back.lsn == 0x2000000);
	unlink(path);
	spool_close(&sp);
}

static struct spool race_sp;

/* The event loop: replica r1 acknowledged SEG1 (sent from the spool), and releases it. */
static void release_r1(void)
{
	assert_int_equal(spool_release(&race_sp, "r1", SEG1), 1);
}

/* The event loop: a release of SEG1 for a replica that holds no claim on it. */
static void release_r2(void)
{
	assert_int_equal(spool_release(&race_sp, "r2", SEG1), 0);
}

/*
 * Two pushes of one file at once: SEG1 is held for r1, and a second push of it (retried
 * by PostgreSQL) is being held for r2 on the worker thread, which finds the held copy and
 * reuses it; r1 acknowledges SEG1 meanwhile and the event loop releases r1's claim, the
 * copy's last but for the one being made.  The copy must stay for r2: without that the
 * release removed it under the store, whose link then failed (or, a moment later, left
 * r2 a claim on a copy that was gone, which nothing sends).  And a fresh copy not yet
 * claimed is not taken for one held for nobody by a release of another replica.
 */
static void test_release_while_claiming(void **state)
{
	char r2[] = "r2";
	char *const for_r2[] = { r2 };
	char err[256];
	struct stat sb;
	int src, fd;

	(void)state;
	assert_int_equal(spool_open(&race_sp, dir), 0);
	assert_int_equal(spool_register(&race_sp, "r1"), 1);
	assert_int_equal(spool_register(&race_sp, "r2"), 1);
	src = source("walship!", 100000);
	assert_int_equal(
		spool_store(&race_sp, src, SEG1, 100000, replicas, 1, NULL, err, sizeof(err)), 0);

	before_link = release_r1;
	assert_int_equal(
		spool_store(&race_sp, src, SEG1, 100000, for_r2, 1, NULL, err, sizeof(err)), 0);
	assert_null(before_link);
	assert_false(spool_holds(&race_sp, "r1", SEG1));
	assert_true(spool_holds(&race_sp, "r2", SEG1));
	fd = spool_open_file(&race_sp, SEG1);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_nlink, 2); /* wal/ and r2's claim */
	close(fd);
	assert_true(race_sp.files == 1 && race_sp.used_bytes == 100000);

	/* r2's claim released: the copy goes with it. */
	assert_int_equal(spool_release(&race_sp, "r2", SEG1), 1);
	assert_int_equal(count_entries("wal"), 0);
	assert_true(race_sp.files == 0 && race_sp.used_bytes == 0);

	/* A fresh copy, renamed into wal/ and not claimed yet, while another release of
	 * its name runs. */
	before_link = release_r2;
	assert_int_equal(
		spool_store(&race_sp, src, SEG1, 100000, replicas, 1, NULL, err, sizeof(err)), 0);
	assert_true(spool_holds(&race_sp, "r1", SEG1));
	assert_int_equal(count_entries("wal"), 1);
	assert_true(race_sp.files == 1 && race_sp.used_bytes == 100000);
	close(src);
	spool_close(&race_sp);
}

/* The event loop: `walship replica drop r2`. */
static void drop_r2(void)
{
	assert_int_equal(spool_drop(&race_sp, "r2"), 0);
}

/* The worker thread: a store claims SEG1 for r2 (registered when its list was taken), in
 * the folder it opened before the drop renamed it (spool.c's SPOOL_DROPPING). */
static void claim_r2(void)
{
	int rfd = openat(race_sp.replicas_fd, ".dropping-r2", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(rfd >= 0);
	assert_int_equal(syscall(SYS_linkat, race_sp.wal_fd, SEG1, rfd, SEG1, 0), 0);
	close(rfd);
}

/*
 * `walship replica drop` on the event loop while the worker thread holds a file for the
 * registered replicas, the dropped one among them.  A drop between the store's listing
 * and its claims: the store holds nothing for the dropped replica, and succeeds for the
 * others (before, it failed the hold, all or nothing).  A claim made between the drop's
 * listing and its removal of the directory: released in a second round, the directory
 * removed (before, the drop failed, "Directory not empty", and the replica stayed).
 */
static void test_drop_while_claiming(void **state)
{
	char r1[] = "r1", r2[] = "r2";
	char *const both[] = { r1, r2 };
	char **names;
	char err[256];
	int src, n;

	(void)state;
	assert_int_equal(spool_open(&race_sp, dir), 0);
	assert_int_equal(spool_register(&race_sp, "r1"), 1);
	assert_int_equal(spool_register(&race_sp, "r2"), 1);
	src = source("walship!", 100000);
	before_link = drop_r2; /* before r1's claim, so before r2's too */
	assert_int_equal(spool_store(&race_sp, src, SEG1, 100000, both, 2, NULL, err, sizeof(err)),
			 0);
	assert_null(before_link);
	assert_true(spool_holds(&race_sp, "r1", SEG1));
	assert_false(spool_holds(&race_sp, "r2", SEG1));
	n = spool_replicas(&race_sp, &names);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "r1");
	spool_free_names(names, n);

	assert_int_equal(spool_register(&race_sp, "r2"), 1);
	before_rmdir = claim_r2;
	assert_int_equal(spool_drop(&race_sp, "r2"), 0);
	assert_null(before_rmdir);
	n = spool_replicas(&race_sp, &names);
	assert_int_equal(n, 1);
	spool_free_names(names, n);
	assert_true(spool_holds(&race_sp, "r1", SEG1));
	assert_true(race_sp.files == 1 && race_sp.used_bytes == 100000);

	/* A drop between the store's open of the dropped replica's directory and its link
	 * into it: the link finds the directory gone, nothing is held for it, the others
	 * are. */
	assert_int_equal(spool_register(&race_sp, "r2"), 1);
	{
		char *const r2_first[] = { r2, r1 };

		before_link = drop_r2;
		assert_int_equal(spool_store(&race_sp, src, SEG2, 100000, r2_first, 2, NULL, err,
					     sizeof(err)),
				 0);
		assert_null(before_link);
		assert_true(spool_holds(&race_sp, "r1", SEG2));
		assert_false(spool_holds(&race_sp, "r2", SEG2));
	}
	close(src);
	spool_close(&race_sp);
}

/*
 * A store for two replicas whose second claim fails (its folder no longer a folder)
 * undoes the claims it made, not one the first replica had before it: that replica held
 * the file before this store, and still does (the build before released it, and the copy
 * went with its last claim).
 */
static void test_store_failure_keeps_earlier_claims(void **state)
{
	char r1[] = "r1", r2[] = "r2", path[PATH_MAX], err[256];
	char *const both[] = { r1, r2 };
	struct spool sp;
	int src, fd;

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_register(&sp, "r1"), 1);
	assert_int_equal(spool_register(&sp, "r2"), 1);
	src = source("walship!", 100000);
	assert_int_equal(spool_store(&sp, src, SEG1, 100000, replicas, 1, NULL, err, sizeof(err)),
			 0);
	assert_true(spool_holds(&sp, "r1", SEG1));
	snprintf(path, sizeof(path), "%s/replicas/r2", dir);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		fail_link_ino = st.st_ino; /* r2's claim fails */
	}
	assert_true(spool_store(&sp, src, SEG1, 100000, both, 2, NULL, err, sizeof(err)) < 0);
	assert_int_equal(fail_link_ino, 0); /* it was tried */
	assert_true(spool_holds(&sp, "r1", SEG1));
	fd = spool_open_file(&sp, SEG1);
	assert_true(fd >= 0);
	close(fd);
	close(src);
	spool_close(&sp);
}

/*
 * The stream's NAME.partial of an old timeline held for a replica away, and PostgreSQL's
 * own pushed after its promotion, equal up to the switch point only: the same WAL once
 * the new timeline's history is kept in the spool (spool_keep_history()), which neither
 * a release nor the next open removes, claimed or not.
 */
static void test_partial_same_with_kept_history(void **state)
{
	static const char history[] = "1\t0/5000100\tno recovery target specified\n";
	const char *partial = "000000010000000000000005.partial";
	const size_t seg = 16 * 1024 * 1024;
	struct spool sp;
	char err[256];
	int held, pushed;

	(void)state;
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(spool_register(&sp, "r1"), 1);
	held = source("walship!", seg);
	pushed = source("walship!", seg);
	assert_int_equal(pwrite(pushed, "other bytes past the switch", 27, 0x1000), 27);
	assert_int_equal(spool_store(&sp, held, partial, seg, replicas, 1, NULL, err, sizeof(err)),
			 0);
	/* Without the history: only identical bytes would be the same. */
	assert_true(spool_store(&sp, pushed, partial, seg, replicas, 1, NULL, err, sizeof(err)) <
		    0);
	assert_int_equal(spool_keep_history(&sp, "00000002.history", history, strlen(history)), 0);
	assert_int_equal(spool_keep_history(&sp, "00000002.history", history, strlen(history)),
			 0); /* again: the same */
	/* counted as room no release frees (spool_max_size: release_slowest), once */
	assert_int_equal(sp.kept_bytes, strlen(history));
	assert_int_equal(
		spool_store(&sp, pushed, partial, seg, replicas, 1, NULL, err, sizeof(err)), 0);
	/* Released, the .partial goes; the history, claimed by nobody, stays, also across an
	 * open. */
	assert_int_equal(spool_release(&sp, "r1", partial), 1);
	assert_int_equal(count_entries("wal"), 1);
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, dir), 0);
	assert_int_equal(count_entries("wal"), 1);
	assert_true(sp.files == 1 && sp.used_bytes == strlen(history));
	assert_int_equal(sp.kept_bytes, strlen(history));
	spool_close(&sp);
	close(held);
	close(pushed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_retry_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_and_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_away_note, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclaimed_removed_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_finished_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unregister_fsync_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_by_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclaimed_removal_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclaimed_left_owed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dangling_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropping_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_into_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_while_claiming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_while_claiming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failure_keeps_earlier_claims, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_partial_same_with_kept_history, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
