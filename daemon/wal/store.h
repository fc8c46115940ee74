/* SPDX-License-Identifier: MIT */
/*
 * The replica's durable WAL store: `archive_dir` holds complete, fsynced, validated files
 * under their WAL names; `archive_dir/.incoming/` holds files being received (never
 * served as complete: `walship fetch` serves only a segment's durable prefix from there,
 * found with store_find_incoming(), padded with zeros); `archive_dir/.walship/`
 * holds the store's own durable state (the system identifier it belongs to).
 *
 * Resuming (docs/operations.md, "Resuming a cut transfer"): a file in .incoming whose
 * first bytes have been made durable carries the extended attribute user.walship.resume
 * (durable length, CRC-32C of those bytes), set before the fsync that makes them durable.
 * At start the store keeps every such file whose bytes still match their record and whose
 * pages validate, as a partial the primary may resume; everything else in .incoming is
 * removed.  A complete file carries user.walship.crc32c (its size and CRC), so the
 * replica can tell the primary what it holds without reading it again.  Both records
 * are hints checked against the bytes (and by the primary against its own copy): a lost
 * or stale record costs a resend, never a wrong file.
 *
 * These are the synchronous pieces of the store (start-up, rare paths).  The data path's
 * write, fsync, rename and directory fsync are issued through io_uring by the replica
 * role, as the steps of common/durable.h (docs/architecture.md, "Durability rules").
 */
#ifndef WALSHIP_WAL_STORE_H
#define WALSHIP_WAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/durable.h"
#include "wal/page.h"

#define STORE_INCOMING_DIR ".incoming"
#define STORE_STATE_DIR ".walship"
/* Refused files of which part was acknowledged durable: set aside, never removed. */
#define STORE_REFUSED_DIR ".refused"
/* Partial files kept for resuming; the oldest is discarded to make room. */
#define STORE_MAX_PARTIALS 16
/* Recently stored files the store remembers (name, size, CRC) to offer the primary. */
#define STORE_MAX_RECENT 16

/* A file in .incoming whose first @durable bytes are durable and checked. */
struct store_partial {
	char name[64]; /* its WAL file name */
	char tmp_name[96]; /* its name in .incoming: NAME.SEQ */
	uint64_t seq;
	uint64_t size; /* the whole file's size */
	uint64_t durable; /* 1 .. size - 1 */
	uint32_t crc; /* CRC-32C of the first @durable bytes */
	struct wal_validator wv; /* the validator after those bytes */
	/* store_partial_check() failed on bytes the file says are durable (unreadable, a CRC
	 * other than recorded, WAL that does not validate): maybe acknowledged, so set aside
	 * at start rather than removed */
	bool damaged;
};

/* A file stored under its final name. */
struct store_recent {
	char name[64];
	uint64_t size;
	uint32_t crc;
};

struct store {
	char path[4096];
	char incoming_path[4096 + sizeof(STORE_INCOMING_DIR)]; /* path/.incoming */
	int dir_fd; /* archive_dir, O_DIRECTORY */
	int incoming_fd; /* archive_dir/.incoming */
	/* the cluster it holds: id.system_identifier 0 until the first file is stored; the
	 * version, segment and block size 0 while unknown */
	struct wal_identity id;
	uint64_t max_seq; /* highest NAME.SEQ found in .incoming at start */
	bool no_xattr; /* the file system keeps no user xattrs: nothing is resumable */
	struct store_partial partials[STORE_MAX_PARTIALS];
	unsigned int npartials;
	struct store_recent recent[STORE_MAX_RECENT]; /* a ring, newest at recent_next - 1 */
	unsigned int nrecent;
	unsigned int recent_next;
	uint64_t set_aside; /* files moved into .refused in this store's life */
	/* called when a partial's file leaves the table other than to be resumed (removed,
	 * set aside, or left untracked: store_partial_retire(), store_partial_discard()),
	 * with its WAL name and its name in .incoming: what reads the file as it grew (the
	 * relay) stops following it.  NULL: nobody follows. */
	void (*partial_gone)(void *arg, const char *name, const char *tmp_name);
	void *partial_gone_arg;
};

/*
 * Open (creating if needed) the store at @path: create .incoming and .walship, read the
 * recorded system identifier (none recorded, but segments copied in by hand: learn and
 * record it from the newest one, if it validates), keep the resumable partial files left in .incoming by a
 * crash (their durable bytes are read back, checked against their CRC and validated) and
 * discard the rest (they were never acknowledged), and remember the newest stored files.
 * Returns 0 or -errno (logged).
 */
int store_open(struct store *st, const char *path);
void store_close(struct store *st);

/*
 * Write @len bytes of @buf as file @name of the store's state directory (STORE_STATE_DIR),
 * durably (durable_put(): temporary file, fsync, rename, directory fsync).  Returns 0 or
 * -errno (logged).
 */
int store_state_put(const struct store *st, const char *name, const void *buf, size_t len);

/*
 * Record the cluster of the store's first segment (system identifier, page magic, segment
 * and block size), durably (temporary file, fsync, rename, directory fsync).  It blocks
 * on the disk and reads only what does not change once the store is open, so it may run
 * on a worker thread.  Returns 0 or -errno (logged).
 */
int store_write_identity(const struct store *st, const struct wal_identity *id);

/*
 * Read the identity recorded by the store whose archive_dir is open at @archive_fd (its
 * .walship/system_identifier), read-only: for `walship fetch`, which serves only WAL of
 * that cluster.  Returns 0 (@id filled), -ENOENT when none is recorded, -EINVAL when the
 * record is not one, or -errno.
 */
int store_read_identity(int archive_fd, struct wal_identity *id);

/* Take @id as the store's identity in memory (after store_write_identity()). */
void store_adopt_identity(struct store *st, const struct wal_identity *id);

/*
 * Compare the complete file @incoming_name in .incoming with @name in the store, and when
 * they are identical make @name's bytes durable (it may not have been written by walship).
 * Returns 1 when identical (and synced), 0 when different, -errno on error (logged).
 */
int store_same_content(struct store *st, const char *incoming_name, const char *name);
/* Make stored file @name durable, and its name: fdatasync, then the directory's fsync (it
 * may have been put there by other hands: cp, rsync).  Returns 0 or -errno (logged). */
int store_sync_stored(struct store *st, const char *name);

/*
 * Move @tmp_name from .incoming into .refused (created when missing), durably (the
 * directories fsynced), under its own name or, where one set aside before has it,
 * NAME.SEQ-N, written to @as (@as_len bytes): a refused file of which part was
 * acknowledged durable, kept for the operator instead of removed.  A blocking rename and
 * three fsyncs: for the rare path only.  Returns 0 once moved (a failed fsync after the
 * move is logged), or -errno (logged): not moved.  Counted in store.set_aside.
 */
int store_set_aside(struct store *st, const char *tmp_name, char *as, size_t as_len);

/*
 * Move @name, a file stored under its final name in archive_dir, into .refused as
 * store_set_aside() does (@as, @as_len, the return value, store.set_aside), and forget
 * what store.recent remembers of it: a file put there by hand that contradicts bytes this
 * replica acknowledged durable of the segment of that name (role/replica_infile.c), the
 * acknowledged copy then stored in its place.
 */
int store_set_aside_stored(struct store *st, const char *name, char *as, size_t as_len);

/*
 * The name in .incoming of file @name being received: NAME.SEQ, @seq > 0 and new for
 * each file in the store's life (store.max_seq: above those kept at start).  store_open()
 * reads NAME and SEQ back from it to keep partial files.  Returns 0, or -ENAMETOOLONG.
 */
int store_tmp_name(char *buf, size_t len, const char *name, uint64_t seq);

/*
 * The store's directories as durable.h takes them: @dir (archive_dir, where files get
 * their final names) and @incoming (where they are written), for a durable_file of the
 * store's (durable_init() with store_tmp_name(), DURABLE_NOREPLACE).
 */
void store_durable_dirs(const struct store *st, struct durable_dir *dir,
			struct durable_dir *incoming);

/* Size of @name in the store, or -errno (-ENOENT when absent). */
int64_t store_file_size(struct store *st, const char *name);

/*
 * Record on @fd (a file in .incoming of @size bytes) that its first @durable bytes have
 * CRC-32C @crc.  The caller makes it durable with the fsync that follows (the record is
 * inode metadata: fsync, not fdatasync).  Returns 0, or -ENOTSUP when the file system
 * keeps no user xattrs (logged once; then no file is resumable), or -errno (logged).
 */
int store_mark_durable(struct store *st, int fd, uint64_t size, uint64_t durable, uint32_t crc);

/*
 * The CRC-32C of the whole of stored file @fd, recorded when it was stored
 * (store_mark_complete()), into *@crc: 0 when the record is there, valid and of the file's
 * size now; -ENODATA otherwise (an archive without xattrs, a file put there by hand).
 */
int store_recorded_crc(int fd, uint32_t *crc);

/* CRC-32C of the first @len bytes of @fd into *@crc: 0, or -EIO when they cannot be read
 * (-ENOMEM). */
int store_crc_prefix(int fd, uint64_t len, uint32_t *crc);

/*
 * @fd is complete (@size bytes, CRC-32C @crc) and about to be fsynced and renamed: record
 * its CRC (its resume record stays, for a crash before that fsync).  Best effort (a
 * missing record costs a resend).
 */
void store_mark_complete(struct store *st, int fd, uint64_t size, uint32_t crc);

/*
 * Is @tmp_name in .incoming a partial file that can be resumed (its record sound, its
 * durable bytes of the recorded CRC, valid WAL of its name's system)?  A segment counts as
 * durable to the end of its whole records, synced first, unless @synced > 0: then exactly
 * its first @synced bytes, which this daemon synced (a streamed segment that failed after
 * they were acknowledged).  A record ahead of the bytes (a crash during the fsync after
 * it) counts for the end of the whole records, and is rewritten so.  Fills @p (its CRC
 * and validator over those bytes) for store_partial_keep(); false: nothing to resume.
 */
bool store_partial_check(struct store *st, const char *tmp_name, uint64_t synced,
			 struct store_partial *p);

/*
 * Keep @p (its file in .incoming, durable as recorded) for resuming.  Of two partials of
 * one name, the one durable further stays; the other goes, and when the table is full the
 * oldest does, as store_partial_retire() says (the one that stays the holder of the
 * first).
 */
void store_partial_keep(struct store *st, const struct store_partial *p);

/*
 * How many of partial @p's durable bytes may be served (to standbys, downstream replicas,
 * `walship fetch`): all of them, unless the history file of the newest later timeline in
 * the archive open at @archive_fd that holds @p's timeline says it ended before they do
 * (the segment cut at a switch, kept until its NAME.partial is stored: its bytes past the
 * fork are not the WAL of the timeline that goes on).  Then up to the fork, 0 when it
 * forked before the segment.  Reads up to STORE_HISTORY_LOOK history files: not for the
 * stream's path.
 */
#define STORE_HISTORY_LOOK 32
uint64_t store_partial_servable(int archive_fd, const struct store_partial *p);

/*
 * Where in its segment the timeline of WAL file @name (a segment or a .partial of
 * @size bytes) ended, as the newest later timeline's history file in directory @dir_fd
 * that holds it says (up to STORE_HISTORY_LOOK timelines later), into *@end_off: an
 * offset, 0 when it ended before the segment, UINT64_MAX when none says it ended within
 * or before it.  Returns 0, or -errno: no memory, or a later history there that could not
 * be read (too long, no descriptor, I/O); *@end_off then UINT64_MAX: not known.
 */
int store_timeline_end_in(int dir_fd, const char *name, uint64_t size, uint64_t *end_off);

/*
 * Whether open files @a and @b, both of WAL file @name, are the same WAL: identical, or,
 * for a timeline's cut segment `NAME.partial`, the same bytes up to where its timeline
 * ended (store_timeline_end_in(), from the history files in @dir_fd).  Past that, what a
 * .partial holds is not WAL of any timeline that goes on: PostgreSQL archives its own
 * (renamed as it was, a recycled file's tail after the switch point), the stream its own
 * (zeros after what arrived).  Returns 1 same, 0 not, or -errno.  Blocks.
 */
int store_same_wal(int dir_fd, const char *name, int a, int b);

/* The partial kept for @name, or NULL. */
struct store_partial *store_partial_find(struct store *st, const char *name);

/* Forget @p without touching its file (a transfer resumes it and owns the file now). */
void store_partial_take(struct store *st, struct store_partial *p);

/* Remove @p's file from .incoming and forget it: for a partial none of whose bytes were
 * acknowledged (the primary sends the file again), else store_partial_retire(). */
void store_partial_discard(struct store *st, struct store_partial *p);

/*
 * @p, a partial no longer kept for resuming (taken from the table, or never in it), whose
 * durable bytes may have been acknowledged (a streamed segment's PROGRESS; a partial
 * found at start does not say whether it was streamed): its file is removed from
 * .incoming only where file @holder in directory @holder_dir (a stored file, or another
 * partial of the same name) begins with the same bytes (their CRC-32C); otherwise, or
 * with @holder NULL, it is set aside into .refused (store_set_aside()), never removed.
 * Blocking reads (up to a segment) and fsyncs: for the rare path only.  Returns 0
 * (removed), 1 (set aside) or -1 (left in .incoming, logged).
 */
int store_partial_retire(struct store *st, const struct store_partial *p, int holder_dir,
			 const char *holder);

/*
 * Find, read-only (nothing is kept, taken or removed: walshipd may be writing), the file
 * of @name in the .incoming directory of the store whose archive_dir is open at
 * @archive_fd, that has the largest durable length: as recorded (store_mark_durable(),
 * once an fdatasync here has made it so: the record is set before the fsync), or, in a
 * streamed segment written in place (preallocated to its size), further to the end of its
 * whole WAL records (store_valid_records(), the CRC then of that prefix), once an
 * fdatasync has made them durable (walshipd may have written them and not yet synced).
 * Fills @found's name, tmp_name, seq, size, durable (> 0) and crc, not checked against
 * the bytes again (the caller reads and validates them); wv is left zeroed.
 * Returns 0, -ENOENT when no file of @name has a durable length, or -errno: of the
 * directory (@found->tmp_name empty), or, when none was found, of the first file of @name
 * that could not be opened or made durable (its name in @found->tmp_name).
 */
int store_find_incoming(int archive_fd, const char *name, struct store_partial *found);

/*
 * Whether the file open at @fd (read with pread: its offset is left alone) begins with
 * @p's durable bytes (their CRC-32C, p->crc, as store_find_incoming() fills it): 1 yes, 0
 * no (other bytes, or shorter), -errno when it cannot be read.  A blocking read of up to
 * a segment: for walship fetch, not the event loop.
 */
int store_file_begins_with(int fd, const struct store_partial *p);

/* Whether the file open at @fd carries the record of a complete file this store wrote
 * (store_mark_complete(): user.walship.crc32c, valid and of its size). */
bool store_file_recorded(int fd);

/* Whether .incoming holds a file of @name being received (NAME.SEQ): a listing, no file
 * opened or synced (for the event loop). */
bool store_has_incoming(const struct store *st, const char *name);

/*
 * How much of @fd, an incoming WAL segment named @name of @size bytes, is whole WAL
 * records, decoded (wal/record.h: page headers, lengths, prev-links, CRCs) as PostgreSQL's
 * recovery finds the end of WAL: *@valid is the end of the last whole record with its
 * padding to 8 bytes (where the next record would begin: recovery's EndRecPtr, and the
 * flush position PostgreSQL reaches with it), 0 when none (or @name is not a segment, or
 * its first page does not say @size).  A record running in
 * from the segment before counts when that segment is stored under its name in the
 * archive open at @archive_fd, or else, @incoming_fd not -1, a copy of it in that
 * .incoming folder (NAME.SEQ) holds the record's start (decoded first).  The durable length of a streamed
 * segment written in place, whose group commits record nothing (docs/architecture.md,
 * "Durability rules").  Returns 0, or -errno (-ENOMEM, a read that failed): then where the
 * records end is not known, and *@valid is only where those read before end.
 */
int store_valid_records(int archive_fd, int incoming_fd, int fd, const char *name, uint64_t size,
			uint64_t *valid);

/* Remember that @name (@size bytes, CRC-32C @crc) is stored under its final name. */
void store_recent_add(struct store *st, const char *name, uint64_t size, uint32_t crc);

/* Whether @name is among the files this store stored lately (store_recent_add()) and has
 * not set aside since: a file under that name is one it accepted, not one put there by
 * hand that it has not looked at yet. */
bool store_recent_has(const struct store *st, const char *name);

/* Whether @name sorts before every file among those store_recent_has() knows (WAL order):
 * a file under that name, if any, is older than what the store stored lately, from
 * before its recent window rather than put there by hand lately. */
bool store_recent_older(const struct store *st, const char *name);

#endif /* WALSHIP_WAL_STORE_H */
