#!/bin/bash
# t_98f: a replica whose archive takes no direct I/O (a ramfs) still streams (issue 13).
# A replica writes streamed segments with O_DIRECT and RWF_DSYNC where its archive allows;
# here the archive refuses O_DIRECT, so the first streamed segment falls back to buffered
# writes and fdatasync (replica_infile.c, infile_image_start()):
# - the replica says so once, and makes no direct group commit (stream_direct_syncs = 0)
#   but does make streamed WAL durable (stream_syncs > 0);
# - synchronous commits return, so the durable positions it reports move on;
# - restarted, it keeps and resumes the segment it was streaming, though the archive keeps
#   no record of its durable length (no extended attributes), and so it does when the
#   connection is lost;
# - every stored segment equals pg_wal's byte for byte, without a gap, and the segment
#   being streamed has pg_wal's bytes up to PostgreSQL's flush position.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
archive_on_ramfs_no_direct
walship_stream_up on
RARCHIVE=$MNT/archive

log "pgbench -i -s 1, then synchronous commits for 4 s"
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -j 2 -T 4 >"$TEST_DIR/pgbench.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench.out"; fail "pgbench failed"; }
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TEST_DIR/pgbench.out" | head -n 1)
log "synchronous commits through the buffered replica: $tps TPS"

final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"

assert_eq 1 "$(grep -c 'direct I/O is not available in' "$TEST_DIR/ws-r1.log")" \
	"replica notices of buffered writes"
assert_eq 0 "$(status_counter "$RCONF" stream_direct_syncs)" "direct group commits"
syncs=$(status_counter "$RCONF" stream_syncs)
((syncs > 0)) || fail "the replica made no streamed WAL durable (stream_syncs = 0)"
log "ok: buffered, $syncs group commits by fdatasync, none direct"

# A restart of the replica daemon keeps the segment being streamed: it has no record of its
# durable length, but it is written in place, so its whole records are durable and it
# resumes from their end (store.c, store_partial_record()).  Nothing acknowledged is removed.
walshipd_kill "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-again.log"
wait_replica_streaming "$PCONF" 20
grep -q 'kept partial file' "$TEST_DIR/ws-r1-again.log" ||
	fail "the restarted replica did not keep the segment it was streaming"
wait_for 30 "the replica to resume the streamed segment" \
	grep -q 'resuming ".*" at offset' "$TEST_DIR/ws-r1-again.log"
log "ok: restarted, $(grep -o 'resuming ".*" at offset [0-9]* of [0-9]*' \
	"$TEST_DIR/ws-r1-again.log" | head -n 1)"
# The connection lost (the primary daemon SIGKILLed): the replica keeps the segment for
# resuming, synced, with no record either.
walshipd_kill "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-again.log"
wait_replica_streaming "$PCONF" 20
grep -q 'kept ".*" for resuming' "$TEST_DIR/ws-r1-again.log" ||
	fail "the replica did not keep the segment it was streaming when the connection was lost"
log "ok: connection lost, $(grep -o 'kept ".*" for resuming: [0-9]* of [0-9]*' \
	"$TEST_DIR/ws-r1-again.log" | head -n 1)"
pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -j 2 -T 2 >"$TEST_DIR/pgbench2.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench2.out"; fail "pgbench after the restart failed"; }
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"

assert_stream_equals_pg_wal "$final"
log "PASS"
