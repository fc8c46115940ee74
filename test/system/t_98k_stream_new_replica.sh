#!/bin/bash
# t_98k: an empty replica put in place of a lost one while commits wait (issue 13).
# walship, the stream as its only source (archive_command = /bin/true), is the synchronous
# standby with sync_replicas = 1.  The replica walshipd is stopped; a session that does
# not wait for standbys writes about 3 segments, which the primary walshipd holds in
# memory, unsettled; a client's commits then wait.  The replica's archive is emptied (its
# disk replaced) and the replica started again: a new replica, whose HAVE lists nothing.
# - It is sent every unsettled segment and the one being streamed.  Whatever order their
#   durable bytes come back in, the flush position PostgreSQL is told never passes a
#   segment the replica does not hold: sampled over the catch-up, every segment from the
#   first unsettled one up to the segment of the flush position is stored;
# - the waiting commits return, and the stored WAL equals pg_wal without a gap.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

SEG=$((16 * 1024 * 1024))
ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
APP=$(conf_get "$PCONF" node_name)
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text);
	create table t (i int primary key, pad text)" >/dev/null
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $lsn" replica_holds "$(lsn_to_int "$lsn")"

# flush_told: the flush position PostgreSQL holds for walship (pg_stat_replication).
flush_told() {
	psql_at "$NS_P" "$PG_PORT" "select flush_lsn from pg_stat_replication
		where application_name = '$APP'"
}

walshipd_stop "$RCONF"
told=$(flush_told)
[[ -n "$told" ]] || told=$lsn
first=$(($(lsn_to_int "$told") / SEG))
log "replica walshipd stopped, durable up to $told (segment $first); about 3 segments that" \
	"do not wait for it"
start=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")")
for ((i = 0; i < 20; i++)); do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g"
	now=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")")
	((now - start < 3 * SEG)) || break
done
rows_client_start 100
wait_for 30 "commits waiting for walship" sync_waiters
received=$(walship_status "$PCONF" --json | jq -r '.source_received_lsn')
[[ "$received" =~ ^[0-9]+$ ]] || fail "no received position in the primary's status: $received"
(((received - 1) / SEG > first)) ||
	fail "the primary walshipd received nothing past segment $first ($received)"
log "commits wait; the primary walshipd holds segments $first to $(((received - 1) / SEG))" \
	"in memory"

# The replica's disk is replaced: an empty archive, the same node name.
find "$RARCHIVE" -mindepth 1 -delete
log "the replica's archive emptied; replica walshipd started again"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-new.log"

# Sample the flush position first, then the archive: a segment missing from the archive
# after the flush was read was missing when it was read (files are only added here).
samples=0 passed=0
deadline=$((SECONDS + 120))
while ! committed_at_least 100; do
	((SECONDS < deadline)) || fail "only $(committed) of 100 commits returned in 120 s"
	told=$(flush_told)
	[[ "$told" =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || continue
	upto=$(($(lsn_to_int "$told") / SEG))
	held=" $(wal_segment_numbers "$RARCHIVE" | tr '\n' ' ')"
	samples=$((samples + 1))
	for ((s = first; s < upto; s++)); do
		[[ "$held" == *" $s "* ]] ||
			fail "PostgreSQL was told WAL up to $told is flushed, but the replica" \
				"lacks segment $s (it holds:$held)"
	done
	((upto > first)) && passed=$((passed + 1))
done
((passed > 0)) || fail "no sample saw the flush position past segment $first"
log "ok: $samples samples of the flush position over the catch-up ($passed past segment" \
	"$first), each with every segment before it stored"
log "ok: all 100 waiting commits returned"

final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
min=$(wal_segment_numbers "$RARCHIVE" | head -n 1)
((min <= first)) || fail "the new replica's first stored segment is $min, after $first:" \
	"the unsettled segments were not sent to it"
assert_stream_equals_pg_wal "$final"
log "PASS"
