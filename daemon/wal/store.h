/* SPDX-License-Identifier: MIT */
/*
 * The replica's durable WAL store: `archive_dir` holds complete, fsynced, validated files
 * under their WAL names; `archive_dir/.incoming/` holds files being received (never
 * served: `walship fetch` opens only WAL names in archive_dir itself); `archive_dir/.walship/`
 * holds the store's own durable state (the system identifier it belongs to).
 *
 * These are the synchronous pieces of the store (start-up, rare paths).  The data path's
 * write, fsync, rename and directory fsync are issued through io_uring by the replica
 * role, in the order DESIGN §4.2 requires.
 */
#ifndef WALSHIP_WAL_STORE_H
#define WALSHIP_WAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_INCOMING_DIR ".incoming"
#define STORE_STATE_DIR ".walship"

struct store {
	char path[4096];
	int dir_fd; /* archive_dir, O_DIRECTORY */
	int incoming_fd; /* archive_dir/.incoming */
	uint64_t system_identifier; /* 0 until the first file is stored */
};

/*
 * Open (creating if needed) the store at @path: create .incoming and .walship, discard
 * files left in .incoming by a crash (they were never acknowledged), read the recorded
 * system identifier.  Returns 0 or -errno (logged).
 */
int store_open(struct store *st, const char *path);
void store_close(struct store *st);

/*
 * Record @sysid as the store's system identifier, durably (temporary file, fsync, rename,
 * directory fsync).  Returns 0 or -errno (logged).
 */
int store_set_system_identifier(struct store *st, uint64_t sysid);

/*
 * Compare the complete file @incoming_name in .incoming with @name in the store.
 * Returns 1 when identical, 0 when different, -errno on error (logged).
 */
int store_same_content(struct store *st, const char *incoming_name, const char *name);

/* Size of @name in the store, or -errno (-ENOENT when absent). */
int64_t store_file_size(struct store *st, const char *name);

#endif /* WALSHIP_WAL_STORE_H */
