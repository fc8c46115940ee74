#!/bin/bash
# t_98r: PostgreSQL invalidates walship's slot (max_slot_wal_keep_size) and removes WAL
# the stream still needs.  PostgreSQL archives into an archive of its own (cp, not walship
# push), the primary walshipd streams, and its only replica is stopped: reading from
# PostgreSQL waits, the slot stays behind, and after more WAL and a checkpoint it is
# invalidated (wal_status 'lost') and the segment walship was streaming is removed.
# - While paused, the source still reads the slot: `walship status` says it reserves no
#   WAL, `walship check` warns;
# - the replica back, streaming from where it stopped fails ("requested WAL segment ...
#   has already been removed", retried with backoff): `walship status` (text and JSON)
#   says which WAL is missing, from where, and what to do, and `walship check` fails on
#   it; what arrived of the segment is shipped as NAME.partial;
# - the operator pushes the segments from PostgreSQL's archive with walship push, as the
#   hint says: the stream goes on after them, the slot reserves WAL again, a synchronous
#   commit returns, and the replica holds every segment as archived and as in pg_wal,
#   without a gap.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
ARCH=$TEST_DIR/pg-archive
mkdir -p "$ARCH"
chown postgres:postgres "$ARCH"
STREAM_ARCHIVE_COMMAND="test ! -f $ARCH/%f && cp %p $ARCH/%f"
PRIMARY_CONF_EXTRA=(pg_status_interval=1s reconnect_max=2s)
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "alter system set wal_keep_size = 0"
psql_at "$NS_P" "$PG_PORT" "alter system set max_slot_wal_keep_size = '48MB'"
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)"
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $lsn" replica_holds "$(lsn_to_int "$lsn")"

json() { walship_status "$PCONF" --json | jq -r "$1"; }
slot_says() {
	psql_at "$NS_P" "$PG_PORT" "select $1 from pg_replication_slots where slot_name = 'walship'"
}
fill() {
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g"
}
# check_slot NAME: run walship check into $TEST_DIR/check-NAME.out; LINE is its "stream
# slot" item with the hint after it, if any.
check_slot() {
	run_capture "$TEST_DIR/check-$1.out" "$WALSHIP" check -B "$PG_BIN" -c "$PCONF" -D "$PDATA"
	LINE=$(grep -A1 -E '^[A-Z]+ +stream slot' "$TEST_DIR/check-$1.out" |
		grep -E '^[A-Z]+ +stream slot|^ +hint:' || true)
}

walshipd_stop "$RCONF"
log "replica walshipd stopped; WAL that does not wait for it until reading waits"
for ((i = 0; i < 40; i++)); do
	fill
	! grep -q 'reading from PostgreSQL waits' "$TEST_DIR/ws-primary.log" || break
done
wait_for 60 "the primary walshipd to stop reading from PostgreSQL" grep -q \
	'reading from PostgreSQL waits' "$TEST_DIR/ws-primary.log"
received=$(json .source_received_lsn)
segno=$((received / (16 * 1024 * 1024)))
SEG=$(printf '%08X%08X%08X' 1 $((segno >> 8)) $((segno & 255)))
log "walship received up to $received, in segment $SEG"
# Three segments more, archived, and a checkpoint: the slot holds more than 48 MB.
for _ in 1 2 3; do
	fill
	psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
done
archived() { [[ -f "$ARCH/$1" ]]; }
wait_for 30 "PostgreSQL to archive $SEG" archived "$SEG"
last=$(psql_at "$NS_P" "$PG_PORT" "select last_archived_wal from pg_stat_archiver")
removed() {
	psql_at "$NS_P" "$PG_PORT" "checkpoint" >/dev/null
	[[ "$(slot_says wal_status)" == lost && ! -f "$PDATA/pg_wal/$SEG" ]]
}
wait_for 60 "the slot invalidated and $SEG removed" removed
log "ok: slot walship is lost (restart_lsn '$(slot_says restart_lsn)'), $SEG removed; archived up to $last"

reserves_none() { [[ "$(json .source_slot_restart_lsn)" == 0 ]]; }
wait_for 20 "walship status to say the slot reserves no WAL" reserves_none
walship_status "$PCONF" | grep -q 'restart_lsn NULL: it reserves no WAL' ||
	fail "walship status does not say the slot reserves no WAL: $(walship_status "$PCONF")"
check_slot paused
[[ "$LINE" == WARN*'reserves no WAL'* ]] || fail "walship check does not warn: '$LINE'"
log "ok: paused, walship check says: $(echo "$LINE" | tr -s ' ' | tr '\n' ' ')"

walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-again.log"
wait_replica_streaming "$PCONF" 20
start=$((segno * 16 * 1024 * 1024))
missing_at_seg() { [[ "$(json .source_wal_missing_lsn)" == "$start" ]]; }
wait_for 60 "walship status to say the WAL from $SEG is missing" missing_at_seg
walship_status "$PCONF" >"$TEST_DIR/status-missing.out"
grep -q "^WAL MISSING: .*PostgreSQL removed the WAL from .*segment $SEG) on.*push the segments from $SEG on with walship push" \
	"$TEST_DIR/status-missing.out" ||
	fail "walship status does not say what is missing: $(cat "$TEST_DIR/status-missing.out")"
grep -E '^(stream source|source slot|WAL MISSING)' "$TEST_DIR/status-missing.out" | sed 's/^/    | /'
json .source_error | grep -q "has already been removed" ||
	fail "the source's error is not PostgreSQL's: $(json .source_error)"
check_slot missing
[[ "$LINE" == FAIL*"segment $SEG"*'hint: Push the segments'* ]] ||
	fail "walship check does not fail on the missing WAL: '$LINE'"
assert_eq 1 "$RC" "walship check's exit status with WAL missing"
log "ok: walship check says: $(echo "$LINE" | tr -s ' ' | tr '\n' ' ')"
partial=$RARCHIVE/$SEG.partial
wait_for 30 "what arrived of $SEG stored as $SEG.partial" test -f "$partial"
off=$((received - start))
cmp -s -n "$off" "$partial" "$ARCH/$SEG" || fail "$SEG.partial differs from the archived $SEG"
log "ok: $SEG.partial holds its first $off bytes as archived"

log "pushing the archived segments from $SEG on with walship push"
pushed=0
for f in "$ARCH"/*; do
	name=$(basename "$f")
	[[ "$name" =~ ^[0-9A-F]{24}$ && ! "$name" < "$SEG" ]] || continue
	walship_push_as_postgres "$PCONF" "$f" >/dev/null || fail "walship push $name failed"
	pushed=$((pushed + 1))
done
((pushed >= 3)) || fail "only $pushed segment(s) to push from $SEG on"
streams_again() {
	[[ "$(json .source_wal_missing_lsn)" == 0 && "$(json .source_state)" == streaming ]]
}
wait_for 60 "the stream to go on after the pushed segments" streams_again
grep -q 'pushed past what the server removed: streaming goes on there' \
	"$TEST_DIR/ws-primary.log" || fail "the primary walshipd did not say where it went on"
log "ok: $pushed segment(s) pushed; $(grep -o 'the replicas hold WAL up to .*' \
	"$TEST_DIR/ws-primary.log" | tail -n 1)"
WS_PSQL_TIMEOUT=30 psql_at "$NS_P" "$PG_PORT" "insert into ws_fill values (-1, 'sync')" ||
	fail "a synchronous commit did not return after the stream went on"
reserved() { [[ "$(slot_says wal_status)" == reserved || "$(slot_says wal_status)" == extended ]]; }
wait_for 20 "the slot to reserve WAL again" reserved
check_slot again
[[ "$LINE" == PASS*'reserves WAL from'* ]] || fail "walship check does not pass: '$LINE'"
log "ok: a synchronous commit returned; slot walship $(slot_says wal_status) from $(slot_says restart_lsn)"

for _ in 1 2; do
	fill
	psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
done
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
compared=0
for f in "$RARCHIVE"/*; do
	name=$(basename "$f")
	[[ "$name" =~ ^[0-9A-F]{24}$ && -f "$ARCH/$name" ]] || continue
	cmp -s "$f" "$ARCH/$name" || fail "stored $name differs from the archived one"
	compared=$((compared + 1))
done
log "ok: $compared stored segments equal to the archived ones"
assert_stream_equals_pg_wal "$final"
log "PASS"
