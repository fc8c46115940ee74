#!/bin/bash
# t_98v: a file stored under the name of the segment being streamed, after bytes of it
# were acknowledged, does not take the acknowledged bytes' place (issue 13).  One replica,
# synchronous_commit on: the commits of the first insert returned on the replica's
# PROGRESS of the segment; then a file of random bytes is moved into the replica's archive
# under that segment's name (a stray copy put there by hand), and the load goes on.
# - The replica finds it at its next group commit, compares it from byte 0 (not only from
#   the bytes acknowledged so far, as before, which let a stray that agreed with the rest
#   pass) and, as it contradicts acknowledged bytes, sets it aside as
#   archive_dir/.refused/NAME (logged as an error, counted as set_aside), unchanged;
# - the commits after it return (the replica goes on acknowledging), and the segment is
#   stored equal to pg_wal's, which is what walship fetch serves: a recovery after the
#   loss of the primary host finds the committed rows.  Before, the replica refused the
#   segment (CONFLICT), set its copy aside, and walship fetch served the stray file;
# - walship check on the replica warns about the file set aside.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
# synchronous_commit on: the insert returns once the replica acknowledged its WAL.
segment_part_durable ws_fill
seg=$PART_SEG ins=$PART_LSN
log "the replica acknowledged $seg up to $ins"

head -c $((16 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/stray"
cp "$TEST_DIR/stray" "$TEST_DIR/stray.in"
mv "$TEST_DIR/stray.in" "$RARCHIVE/$seg" # one rename: the replica never sees half of it
log "a stray file stored as $seg, the segment being streamed"

# Each statement is a synchronous commit: it returns once the replica holds its WAL.
WS_PSQL_TIMEOUT=60
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
	from generate_series(1, 5000) g" >/dev/null ||
	fail "the synchronous commit after the stray did not return within $WS_PSQL_TIMEOUT s"
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill values (0, 'after the switch')" >/dev/null ||
	fail "the synchronous commit in the next segment did not return"
unset WS_PSQL_TIMEOUT
grep -q "set \"$seg\" aside as \"$RARCHIVE/.refused/$seg\": it differs from byte 0 of the" \
	"$TEST_DIR/ws-r1.log" || fail "the replica did not set the stray $seg aside:" \
	"$(grep -e "\"$seg\"" "$TEST_DIR/ws-r1.log" | tail -n 5)"
log "ok: $(grep -o "set \"$seg\" aside.*" "$TEST_DIR/ws-r1.log")"
if grep -q "refused \"$seg\"" "$TEST_DIR/ws-r1.log"; then
	fail "the replica refused $seg: $(grep "refused \"$seg\"" "$TEST_DIR/ws-r1.log")"
fi

wait_archived "$seg" 30
cmp -s "$RARCHIVE/$seg" "$PDATA/pg_wal/$seg" || fail "the stored $seg differs from pg_wal's"
cmp -s "$RARCHIVE/.refused/$seg" "$TEST_DIR/stray" ||
	fail "the file set aside, .refused/$seg, is not the stray file as it was"
assert_eq 1 "$(status_counter "$RCONF" set_aside)" "files set aside (set_aside)"
fetch_and_compare "$seg" "$PDATA/pg_wal/$seg"
log "ok: the stored $seg, and what walship fetch serves, equal pg_wal's; the stray is in" \
	".refused as it was"

run_capture "$TEST_DIR/check.out" "$WALSHIP" check -c "$RCONF"
sed 's/^/    | /' "$TEST_DIR/check.out"
grep -q "^WARN  refused files.*1 file(s) set aside" "$TEST_DIR/check.out" ||
	fail "walship check did not warn about the stray set aside"
log "ok: walship check warns about it"
log "PASS"
