/* SPDX-License-Identifier: MIT */
/*
 * How far a standby on pg_listen may be sent WAL: delayed and held standbys (docs/
 * operations.md, "Delayed and held standbys").  The walsender asks sendlimit_for() before
 * each read; everything else (the commits known, the delays, the holds) lives here.
 *
 *  - Delay (standby_delay = NAME:DURATION[,...], by application name, reloadable): a
 *    delayed standby is sent WAL only up to the end of the last commit record whose commit
 *    time (the primary's xact_time) is at least the delay old by this host's clock, as
 *    recovery_min_apply_delay measures it; everything after waits, commits or not.
 *  - Hold (`walship hold NAME`): the standby is sent nothing past where it was when held.
 *    `walship release NAME --before TIME` lets it go up to the start of the first commit
 *    at or after TIME (the standby replays all before it, not that commit); `--upto LSN`
 *    up to LSN; plain release removes the hold.  Holds are kept in
 *    archive_dir/.walship/standby_holds (written through common/durable.h) and survive a
 *    restart.
 *
 * The commits come from the WAL the replica makes durable: the walsender passes each
 * durable growth to sendlimit_wal(), which reads the new bytes (pread, on the event
 * loop's thread: they were just written, and only while some standby is delayed or held)
 * and feeds them to the record decoder (wal/record.h).  Commits older than every delay
 * and before every hold are folded into one boundary, so memory follows the delay window.
 * Where no commit is known (WAL stored before decoding began, after a restart or a gap,
 * or that left a full index), a delay keeps whole stored segments back until their last
 * write is the delay old: later than by their commits, never sooner.
 */
#ifndef WALSHIP_SERVE_SENDLIMIT_H
#define WALSHIP_SERVE_SENDLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "status/status.h"
#include "wal/record.h"
#include "wal/store.h"

#define SENDLIMIT_NONE UINT64_MAX
#define SENDLIMIT_MAX_HOLDS 64
#define SENDLIMIT_HOLDS_FILE "standby_holds"

enum sendlimit_release {
	SENDLIMIT_RELEASE_ALL, /* remove the hold */
	SENDLIMIT_RELEASE_BEFORE, /* up to just before the first commit at or after a time */
	SENDLIMIT_RELEASE_UPTO, /* up to an LSN */
};

struct sendlimit;

/*
 * For the WAL of @store (its metadata folder .walship holds the holds file), with the
 * delays of @standby_delay (config text, already checked).  Loads the holds.  Returns
 * NULL on error (logged).
 */
struct sendlimit *sendlimit_new(const struct store *store, const char *standby_delay);

/* SIGHUP: the new standby_delay text (already checked). */
void sendlimit_reload(struct sendlimit *sl, const char *standby_delay);

/*
 * Whether the commits of the WAL stored are being indexed (a delay or a hold was in
 * effect when WAL last came).  When not, and one now is (a delay added by a reload, a
 * first hold), the caller starts the index from the newest WAL stored (sendlimit_wal()),
 * as at start: else a delayed standby is sent nothing of the WAL stored already until more
 * comes, which on a quiet cluster may be never.
 */
bool sendlimit_indexing(const struct sendlimit *sl);

/*
 * Whether the decoder is still behind the newest WAL fed (from the oldest hold's segment,
 * or a newest segment's first bytes): each sendlimit_wal() reads a bounded step, so the
 * caller feeds the newest WAL again on its tick until this is false (the commits found
 * meanwhile may let standbys go further).  False too while the decoder waits for news (a
 * segment before the newest still being stored, a short read).
 */
bool sendlimit_catching_up(const struct sendlimit *sl);

/* The first @durable bytes of segment @name are durable; @dir_fd/@file is where they are
 * (.incoming's temporary name, or the stored name), or @image when not NULL (the
 * segment in memory, written directly: serve_wal_durable()).  Feeds the new bytes to the
 * decoder when some standby is delayed or held. */
void sendlimit_wal(struct sendlimit *sl, const char *name, int dir_fd, const char *file,
		   uint64_t durable, const uint8_t *image);

/*
 * The LSN up to which standby @app may be sent now (@now_us: Unix µs); SENDLIMIT_NONE when
 * it is neither delayed nor held.
 */
uint64_t sendlimit_for(struct sendlimit *sl, const char *app, int64_t now_us);

/*
 * The timer: true when a delay boundary moved since the last call (a commit became due
 * at @now_us); the walsender then wakes its waiting standbys.  Cheap: compares @now_us
 * with the next due time.
 */
bool sendlimit_due(struct sendlimit *sl, int64_t now_us);

/*
 * Hold standby @app at @lsn (its sent position).  Returns 0, -EEXIST when it is held
 * already (the hold is kept), -EOVERFLOW when SENDLIMIT_MAX_HOLDS are held (not ENOSPC,
 * which a full disk under the holds file says), or -errno when the holds file could not
 * be written (logged; nothing changed).
 */
int sendlimit_hold(struct sendlimit *sl, const char *app, uint64_t lsn);

/* Release standby @app: @how, with @value a PostgreSQL timestamp (BEFORE) or an LSN
 * (UPTO).  Returns 0, -ENOENT when it is not held, or -errno (holds file, logged). */
int sendlimit_release(struct sendlimit *sl, const char *app, enum sendlimit_release how,
		      int64_t value);

/* Describe @app's delay and hold into @o (delay_ms, hold text, send_limit). */
void sendlimit_fill_status(struct sendlimit *sl, const char *app, int64_t now_us,
			   struct status_standby *o);

/*
 * The lowest position a hold is at (UINT64_MAX: none): a held standby is sent the WAL after
 * it once released, connected or not then (holds survive restarts), so retention keeps it
 * (serve_retention_floor()).
 */
uint64_t sendlimit_floor(const struct sendlimit *sl);

void sendlimit_free(struct sendlimit *sl);

#endif /* WALSHIP_SERVE_SENDLIMIT_H */
