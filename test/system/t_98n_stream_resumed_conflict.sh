#!/bin/bash
# t_98n: a streamed segment resumed as a whole file keeps the bytes the replica
# acknowledged of it against a file stored under its name meanwhile (issue 13).  The
# replica acknowledges durable bytes of the segment being streamed (PROGRESS) and is
# stopped; the segment completes on the primary walshipd meanwhile, so that after the
# restart it is resumed from the replica's durable length as a whole file, without the
# stream's flag, and the replica found its partial at start, which does not say whether it
# was streamed.  Another file (random bytes) is stored under the segment's name while the
# replica is stopped, so the resumed file's rename finds the name taken.
# - The stored file contradicts the acknowledged bytes (from byte 0): it is the one set
#   aside, as archive_dir/.refused/NAME (logged, counted as set_aside), unchanged;
# - the resumed copy is stored under the name, equal to pg_wal's segment, so that walship
#   fetch serves what PostgreSQL was told is durable.  Before, the copy was refused
#   (CONFLICT) and set aside, and fetch served the stray file.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up off
SEG=$((16 * 1024 * 1024))
segment_part_durable ws_fill
seg=$PART_SEG ins=$PART_LSN

log "replica walshipd stopped with $seg half streamed"
walshipd_stop "$RCONF"
grep -q "kept \"$seg\" for resuming" "$TEST_DIR/ws-r1.log" ||
	fail "the stopping replica did not keep the durable bytes of $seg"
# After its bytes were acknowledged: a file already stored under the name of a segment
# being streamed is compared as the bytes arrive, and none that differ is acknowledged
# (t_98l).
head -c "$SEG" /dev/urandom >"$TEST_DIR/stray"
cp "$TEST_DIR/stray" "$RARCHIVE/$seg"
log "a stray file stored as $seg, the segment being streamed, while the replica is stopped"
segno=$(($(lsn_to_int "$ins") / SEG))
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
	from generate_series(1, 5000) g; select pg_switch_wal()" >/dev/null
received_past() {
	local received
	received=$(walship_status "$PCONF" --json | jq -r '.source_received_lsn')
	[[ "$received" =~ ^[0-9]+$ ]] && ((received >= (segno + 1) * SEG))
}
wait_for 30 "the primary walshipd to receive the whole of $seg" received_past
log "ok: $seg is whole on the primary walshipd; replica walshipd started again"

walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 60 "the replica to set the stray $seg aside" grep -q "set \"$seg\" aside" \
	"$TEST_DIR/ws-r1.log"
grep -q "resuming \"$seg\" at offset" "$TEST_DIR/ws-r1.log" ||
	fail "the replica did not resume $seg (the case under test)"
grep -q "set \"$seg\" aside as \"$RARCHIVE/.refused/$seg\": it differs from byte 0 of the" \
	"$TEST_DIR/ws-r1.log" || fail "the replica set aside something else than the stray $seg" \
	"$(grep "set \"$seg\" aside" "$TEST_DIR/ws-r1.log")"
wait_archived "$seg" 60
wait_for 30 "$seg stored as pg_wal's" cmp -s "$RARCHIVE/$seg" "$PDATA/pg_wal/$seg"
log "ok: $(grep -o "resuming \"$seg\" at offset.*" "$TEST_DIR/ws-r1.log"); then" \
	"$(grep -o "set \"$seg\" aside.*" "$TEST_DIR/ws-r1.log")"
if grep -q "refused \"$seg\"" "$TEST_DIR/ws-r1.log"; then
	fail "the replica refused $seg: $(grep "refused \"$seg\"" "$TEST_DIR/ws-r1.log")"
fi
assert_eq 1 "$(status_counter "$RCONF" set_aside)" "files set aside (set_aside)"
cmp -s "$RARCHIVE/.refused/$seg" "$TEST_DIR/stray" ||
	fail "the file set aside, .refused/$seg, is not the stray file"
fetch_and_compare "$seg" "$PDATA/pg_wal/$seg"
log "ok: the stray $seg is in .refused as it was; the stored $seg, and what fetch serves," \
	"equal pg_wal's"
log "PASS"
