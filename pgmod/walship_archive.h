/* SPDX-License-Identifier: MIT */
/*
 * walship_archive: PostgreSQL's archive module (PostgreSQL 15 only: 16 changed the API)
 * handing each WAL file to the local walshipd, in place of `archive_command = 'walship push %p'`.
 *
 *   archive_mode = on
 *   archive_library = 'walship_archive'
 *   walship.socket = '/run/walship/walshipd.sock'   # walshipd's `socket`
 *   walship.timeout = 90s                             # the longest wait for a verdict
 *   walship.push_ahead = 2                            # ready segments passed along
 *
 * The archiver loads it and calls it once per file, in its own process: no fork and exec
 * of `walship push` per segment.  Each file is pushed as `walship push` pushes it (the CLI's
 * own client code, tools/client.c, is built into the module): the file is opened and its
 * descriptor passed to walshipd over the control socket (SCM_RIGHTS, op CTL_PUSH), and the
 * callback returns true only when walshipd answers CTL_OK, i.e. the file is safe per
 * durability rule 1 (docs/architecture.md).  Any other outcome returns false with one
 * WARNING in PostgreSQL's log saying why, and the archiver keeps the file and retries.
 *
 * One connection is kept across calls (request flag CTL_F_KEEP): it is made on the first
 * file, checked before each push (a daemon that restarted has closed it: a new one is
 * made), and dropped after any failure of the exchange, so a late reply can never be
 * taken for the next file's.  The wait for the verdict is on the archiver's latch and
 * the socket together, and the whole of one file's (connecting, the verdict, the one
 * retry on a kept connection walshipd closed) is bounded by walship.timeout: a shutdown
 * request (SIGTERM), the postmaster's death and interrupts are seen while walshipd works.
 */
#ifndef WALSHIP_PGMOD_WALSHIP_ARCHIVE_H
#define WALSHIP_PGMOD_WALSHIP_ARCHIVE_H

/*
 * Called by PostgreSQL when it loads the library: defines the GUCs walship.socket
 * (default: walshipd's default `socket`), walship.timeout (default: walshipd's default
 * `push_timeout` plus the grace `walship push` allows, in milliseconds) and
 * walship.push_ahead (the ready segments passed along with each push), all reloadable,
 * and reserves the prefix "walship".
 */
void _PG_init(void);

/*
 * Called by the archiver after loading the library: fills @cb with the module's three
 * callbacks.  check_configured_cb is false only when walship.socket is empty (a daemon
 * that is down is not a configuration problem: the file's archiving fails, is counted in
 * pg_stat_archiver and retried); archive_file_cb pushes one file as above; shutdown_cb
 * closes the connection.
 */
struct ArchiveModuleCallbacks;
void _PG_archive_module_init(struct ArchiveModuleCallbacks *cb);

#endif /* WALSHIP_PGMOD_WALSHIP_ARCHIVE_H */
