#!/bin/bash
# t_98j: two replicas stream, sync_replicas = 1, and one of them fills up (issue 13).  The
# stream is the only source (archive_command = /bin/true); ws-r2's archive lives on a small
# ext4 image, which a filler takes but 4 MiB of, while synchronous commits go on.
# - Commits do not wait for ws-r2: ws-r1 makes them durable;
# - ws-r2 refuses the segment it cannot preallocate; the primary shows it failing and
#   holds for it (the spool) the segments it lacks;
# - once ws-r2 has room again, it is sent them after its backoff, by itself, and its
#   archive equals pg_wal's up to PostgreSQL's flush position, without a gap.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
archive_on_ext4_image
# shellcheck disable=SC2034  # read by lib.sh
REPLICA2_CONF_EXTRA=("${REPLICA_CONF_EXTRA[@]}")
REPLICA_CONF_EXTRA=()
STREAM_ARCHIVE_COMMAND=/bin/true
STREAM_REPLICA2=1
walship_stream_up on
R2ARCHIVE=$MNT/archive

# peer_field NAME FIELD: FIELD of the primary's peer NAME in `walship status --json`.
peer_field() {
	walship_status "$PCONF" --json | jq -r --arg n "$1" ".peers[] | select(.name == \$n) | .$2"
}
# peer_holds NAME LSN_INT: true once the primary counts NAME durable up to LSN_INT.
peer_holds() {
	local lsn
	lsn=$(peer_field "$1" flush_lsn)
	[[ -n "$lsn" && "$lsn" != null ]] && (($(lsn_to_int "$lsn") >= $2))
}
peer_streaming() {
	[[ "$(peer_field "$1" state)" == streaming ]]
}
wait_for 20 "ws-r2 streaming" peer_streaming ws-r2
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
lsn=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
wait_for 60 "ws-r2 to hold what pgbench -i wrote" peer_holds ws-r2 "$lsn"

fs_fill_but 4
# Synchronous commits of about 5 MB of WAL each, which ws-r1 alone makes durable: each
# returns (a bound of 60 s each, for a commit that would wait for ws-r2), until ws-r2 could
# not preallocate a segment, and seven more (two segments that complete while it fails).
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)"
fill_until_io_errors "$R2CONF" ws-r2 20
r2_held() {
	(($(peer_field ws-r2 held) > 0))
}
wait_for 30 "the primary to hold segments for ws-r2 in its spool" r2_held
log "ok: the spool holds $(peer_field ws-r2 held) file(s) for ws-r2"
log "ok: commits went on; ws-r2 failing: $(walship_status "$R2CONF" --json | jq -r .last_error)"
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 30 "ws-r1 to hold up to $final" peer_holds ws-r1 "$(lsn_to_int "$final")"

log "freeing space on ws-r2"
rm -f "$MNT/filler"
wait_for 120 "ws-r2 to hold up to $final" peer_holds ws-r2 "$(lsn_to_int "$final")"
log "ok: ws-r2 caught up to $final"
RARCHIVE=$R2ARCHIVE
RCONF=$R2CONF
assert_stream_equals_pg_wal "$final"
log "PASS"
