#!/bin/bash
# t_98z: a pushed segment sent from the middle of a page (issue 13).  The replica holds a
# streamed segment in part, its durable length the end of its last whole record (inside
# a page); the primary walshipd is killed, and started again without pg_conninfo (the
# stream off): PostgreSQL's archive_command then pushes that segment, and the replica's
# inventory offers its durable part.  The transfer resumes there: the push is answered
# OK at once, not refused as invalid (on the build before, the validation of the pushed
# file's pages took the mid-page start for its own mistake: "Invalid argument", counted
# invalid, and PostgreSQL's archiver had to try again), and the replica stores the
# segment equal to pg_wal's.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

SEG=$((16 * 1024 * 1024))
ws_setup
walship_stream_up off
# (a commit that waits for its own flush: the flush position is its end, inside a page)
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local; create table t (i int, pad text);
	insert into t select g, repeat('x', 100) from generate_series(1, 3000) g" >/dev/null
lsn=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
((lsn % 8192)) || fail "the flush position $lsn is at a page boundary: nothing to test"
seg=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name(pg_current_wal_flush_lsn())")
wait_for 30 "the replica to hold up to $lsn" replica_holds "$lsn"
walshipd_kill "$PCONF"
log "primary walshipd killed with $seg streamed up to $((lsn % SEG)) bytes; started again" \
	"without pg_conninfo"
sed -i '/^pg_conninfo/d' "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-2.log"
wait_replica_streaming "$PCONF" 20
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
wait_for 60 "the replica to store $seg" test -f "$RARCHIVE/$seg"
assert_file_identical "$PDATA/pg_wal/$seg" "$RARCHIVE/$seg"
resumed=$(grep -o "resuming \"$seg\" at offset [0-9]*" "$TEST_DIR/ws-r1.log" | tail -n 1)
[[ -n "$resumed" ]] || fail "the replica did not resume $seg"
((${resumed##* } % 8192)) || fail "$seg resumed at a page boundary (${resumed##* }): nothing tested"
assert_eq 0 "$(status_counter "$PCONF" invalid)" "pushes refused as invalid"
grep -q "refused push of \"$seg\"" "$TEST_DIR/ws-primary-2.log" &&
	fail "the push of $seg was refused: $(grep "refused push" "$TEST_DIR/ws-primary-2.log")"
log "ok: $seg pushed, resumed at ${resumed##* } (inside a page), stored equal to pg_wal's"
log "PASS"
