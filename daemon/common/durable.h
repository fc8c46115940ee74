/* SPDX-License-Identifier: MIT */
/*
 * The durable write: the one way walship puts a file under its final name so that it
 * survives a crash (docs/architecture.md, "Durability rules"), as PostgreSQL's
 * durable_rename() and pgBackRest's atomic, synced storage writes do:
 *
 *   1. create a temporary file (O_EXCL, never following a link) in the temporary
 *      directory, which is on the same file system as the final one;
 *   2. write the content (errno = 0 before each write; a write that stops short without
 *      an errno is a full disk, ENOSPC);
 *   3. DURABLE_STEP_SYNC_FILE  fdatasync the temporary file: the file is new, so its data,
 *      size and allocation are all that must survive (the name is step 5's);
 *   4. DURABLE_STEP_RENAME     rename it to the final name; with DURABLE_NOREPLACE
 *      (renameat2 RENAME_NOREPLACE) an existing file of that name is never replaced:
 *      the step fails with -EEXIST and the caller compares (file_compare.h);
 *   5. DURABLE_STEP_SYNC_DIR   fsync the final name's directory.
 *
 * Only when step 5 has succeeded is the file durable under its final name; nothing may
 * be acknowledged before.  Steps 3 to 5 are one sequence, durable_step_done(), which the
 * synchronous durable_commit() runs one step after the other.  The replica's io_uring
 * path (role/replica_infile.c: IN_SYNCING, IN_RENAMING, IN_DIR_SYNCING) takes the same
 * steps in the same order, one completion at a time, with its own work between them (the
 * store's identity after the fdatasync, the duplicate rule on -EEXIST); it does not drive
 * durable_step_done() yet.
 *
 * Failures.  Every function that fails fills @message (PostgreSQL's wording:
 * `could not fsync file "DIR/NAME": REASON`) and logs nothing, except durable_put(),
 * which logs it: the caller decides where the reason goes (a log line, a push's answer).
 * A failure before the rename leaves the temporary file to durable_end(), which removes
 * it.  A failed directory fsync of a DURABLE_NOREPLACE write removes the final name
 * again (the file is not known to survive, and a caller that reports failure must not
 * leave a file it called failed; that name was created by this write).  A replacing
 * write's final name is kept (df->renamed stays true): its rename already took the
 * version before, and removing the new one would leave no version at all, where a crash
 * leaves the one or the other, both whole.  After a crash a temporary file may remain:
 * it never carries the final name.
 */
#ifndef WALSHIP_COMMON_DURABLE_H
#define WALSHIP_COMMON_DURABLE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The default temporary name: NAME.walship-tmp.TID (a process's main thread: its pid). */
#define DURABLE_TMP_INFIX ".walship-tmp."
#define DURABLE_MESSAGE_MAX 512

enum durable_flags {
	DURABLE_NOREPLACE = 1u << 0, /* never replace an existing final name: -EEXIST */
};

/* The steps after the content is written, in their order. */
enum durable_step {
	DURABLE_STEP_SYNC_FILE,
	DURABLE_STEP_RENAME,
	DURABLE_STEP_SYNC_DIR,
	DURABLE_STEP_DONE,
};

/* A directory: its descriptor (O_DIRECTORY, the caller's) and its path for messages. */
struct durable_dir {
	int fd;
	const char *path;
};

struct durable_file {
	int fd; /* the temporary file (O_RDWR), -1 when not open */
	struct durable_dir dir; /* where the final name goes */
	struct durable_dir tmp_dir; /* where the temporary file is; same file system */
	unsigned int flags; /* enum durable_flags */
	bool tmp_exists; /* tmp_name exists: durable_end() removes it */
	bool renamed; /* the final name is the file's */
	char name[NAME_MAX + 1];
	char tmp_name[NAME_MAX + 1];
	char message[DURABLE_MESSAGE_MAX]; /* the last failure */
};

/*
 * Prepare @df to write @name into @dir through @tmp_name in @tmp_dir (NULL: @dir), or
 * through the default temporary name when @tmp_name is NULL.  Opens nothing: a writer
 * that creates the file itself (through io_uring) sets @fd and @tmp_exists.  The paths of
 * the two durable_dir must outlive @df.  Returns 0, or -ENAMETOOLONG with @message.
 */
int durable_init(struct durable_file *df, const struct durable_dir *dir,
		 const struct durable_dir *tmp_dir, const char *name, const char *tmp_name,
		 unsigned int flags);

/*
 * durable_init(), then create the temporary file with @mode (O_RDWR, O_EXCL, O_NOFOLLOW,
 * O_CLOEXEC; one left under the same name by a dead writer or a crash is removed first).
 * Returns 0 with @fd open for writing, or -errno with @message.  Call durable_end() in
 * every case.
 */
int durable_begin(struct durable_file *df, const struct durable_dir *dir,
		  const struct durable_dir *tmp_dir, const char *name, unsigned int flags,
		  mode_t mode);

/*
 * Append @len bytes of @buf at @fd's offset, whole: a short write is continued, EINTR
 * retried, a write that stops without an errno is -ENOSPC.  Returns 0 or -errno with
 * @message.  (Content may also be written to @fd by other means, e.g. file_copy().)
 */
int durable_write(struct durable_file *df, const void *buf, size_t len);

/*
 * Run steps 3 to 5 on the written temporary file.  Returns 0 when the file is durable
 * under its final name; -errno with @message otherwise: -EEXIST (DURABLE_NOREPLACE) leaves
 * the final file untouched and @fd open on the new content, for a comparison, until
 * durable_end().  Blocks.
 */
int durable_commit(struct durable_file *df);

/* Close @fd and remove the temporary file if it still exists.  Safe to call twice. */
void durable_end(struct durable_file *df);

/*
 * Step @step of @df has been carried out with result @res (0 or -errno: the system call's
 * or the io_uring completion's).  Returns the next step to carry out (DURABLE_STEP_DONE:
 * the file is durable under its name), or -errno with @message filled, the final name
 * removed again if @step was the directory fsync of a DURABLE_NOREPLACE write.  Blocks
 * only for that removal.
 */
int durable_step_done(struct durable_file *df, enum durable_step step, int res);

/* Carry out @step synchronously: fdatasync, renameat2 or fsync.  Returns 0 or -errno. */
int durable_step_run(const struct durable_file *df, enum durable_step step);

/* renameat2() flags of the rename step: RENAME_NOREPLACE with DURABLE_NOREPLACE. */
unsigned int durable_rename_flags(const struct durable_file *df);

/*
 * The whole sequence for a small file: write @len bytes of @buf as @name in @dir (its
 * temporary file in @dir too), mode 0640.  Returns 0 when durable, -errno otherwise
 * (logged: `could not ... "DIR/NAME": REASON`), leaving no temporary file.
 */
int durable_put(const struct durable_dir *dir, const char *name, const void *buf, size_t len,
		unsigned int flags);

/*
 * Open directory @name under @at_fd (AT_FDCWD: @name is a path), creating it with mode
 * 0750 when it is missing; @at_path names @at_fd in messages (NULL with AT_FDCWD).
 * Returns the descriptor (O_DIRECTORY, O_CLOEXEC) or -errno, logged.  A directory it
 * creates under a directory @at_fd survives a crash once @at_fd is fsynced: the caller's,
 * after its last one; one it creates at a path (AT_FDCWD) has its parent fsynced here.
 */
int durable_dir_open(int at_fd, const char *at_path, const char *name);

/*
 * Remove the temporary files (NAME.walship-tmp.TID) a durable write cut short by a crash
 * left in directory @dir_fd: never read as anything (readers open exact names), they would
 * only stay.  At start, before anything writes there.  Returns how many went.
 */
int durable_remove_leftovers(int dir_fd);

#endif /* WALSHIP_COMMON_DURABLE_H */
