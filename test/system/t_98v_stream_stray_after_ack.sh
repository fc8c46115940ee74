#!/bin/bash
# t_98v: a file stored under the name of the segment being streamed, after bytes of it
# were acknowledged, does not take the acknowledged bytes' place (issue 13).  One replica,
# synchronous_commit on: the commits of the first insert returned on the replica's
# PROGRESS of the segment; then a file of random bytes is moved into the replica's archive
# under that segment's name (a stray copy put there by hand), and the load goes on.
# - The replica finds it at its next group commit, compares it from byte 0 (not only from
#   the bytes acknowledged so far, as before, which let a stray that agreed with the rest
#   pass) and, as it contradicts acknowledged bytes, sets it aside as
#   archive_dir/.refused/NAME (logged as an error, counted as set_aside), unchanged; while
#   it cannot be moved (immutable), the segment fails with an I/O error on the replica,
#   its bytes kept, and is neither refused nor stored over the stray;
# - the commits after it return (the replica goes on acknowledging), and the segment is
#   stored equal to pg_wal's, which is what walship fetch serves: a recovery after the
#   loss of the primary host finds the committed rows.  Before, the replica refused the
#   segment (CONFLICT), set its copy aside, and walship fetch served the stray file;
# - walship check on the replica warns about the file set aside;
# - the primary host lost (its walshipd killed) with the next segment's first bytes
#   acknowledged, and a stray file moved under that segment's name afterwards, when
#   walshipd writes that segment no more: walship fetch serves the acknowledged bytes (the
#   incoming file's durable prefix, the rest zeros, saying why), not the stray file, which
#   stays as it is.  Before, it served the stray file, or here, as random bytes do not
#   validate, refused to serve anything: a recovery stopped short of the commits;
# - that incoming copy unreadable by PostgreSQL's user (mode 000): walship fetch exits 4
#   naming it, and serves nothing (the build before served the stray over it).
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

# First immutable (chattr +i): it cannot be set aside, so the replica fails the segment
# with an I/O error (its durable bytes kept, the link closed, the set-aside tried again
# as the primary resumes it), neither refusing it nor giving the stray's name up to it.
# (The primary counts the resumed partial's durable bytes: they are on the replica's disk,
# and walship fetch serves them over the stray, the second part below.)
if chattr +i "$RARCHIVE/$seg" 2>/dev/null; then
	bg_start "$TEST_DIR/held.out" psql_at "$NS_P" "$PG_PORT" \
		"insert into ws_fill select g, 'held' from generate_series(1, 100) g"
	held=$BG_PID
	stuck=0
	for ((i = 0; i < 150 && !stuck; i++)); do
		grep -q "could not store \"$seg\" beyond its [0-9]* bytes acknowledged durable: \"$RARCHIVE/$seg\" differs from byte 0 .* could not be set aside" \
			"$TEST_DIR/ws-r1.log" && stuck=1
		((stuck)) || ws_sleep 0.2
	done
	kept=0
	cmp -s "$RARCHIVE/$seg" "$TEST_DIR/stray" && kept=1
	chattr -i "$RARCHIVE/$seg"
	((stuck)) || fail "the replica did not say it could not set the immutable $seg aside"
	((kept)) || fail "the immutable stray $seg was changed"
	if grep -q "refused \"$seg\"" "$TEST_DIR/ws-r1.log"; then
		fail "the replica refused $seg: $(grep "refused \"$seg\"" "$TEST_DIR/ws-r1.log")"
	fi
	log "ok: $(grep -o "could not store \"$seg\" beyond.*" "$TEST_DIR/ws-r1.log" | head -n 1)"
	held_returned() { ! pid_alive "$held"; }
	wait_for 60 "the commit begun meanwhile to return" held_returned
	wait "$held" || fail "the commit begun meanwhile failed: $(cat "$TEST_DIR/held.out")"
else
	log "note: chattr +i does not work here: the stray that cannot be moved is not tried"
fi

# Each statement is a synchronous commit: it returns once the replica holds its WAL.
WS_PSQL_TIMEOUT=60
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
	from generate_series(1, 5000) g" >/dev/null ||
	fail "the synchronous commit after the stray did not return within $WS_PSQL_TIMEOUT s"
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('y', 200)
	from generate_series(1, 2000) g" >/dev/null ||
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

seg2=$(pg_segment_name "$NS_P" "$PG_PORT")
[[ "$seg2" != "$seg" ]] || fail "the switch did not leave $seg"
log "SIGKILL of the primary walshipd with $seg2 streaming: the primary host lost"
walshipd_kill "$PCONF"
wait_for 30 "the replica to keep the durable bytes of $seg2" grep -q \
	"kept \"$seg2\" for resuming" "$TEST_DIR/ws-r1.log"
durable=$(grep -o "kept \"$seg2\" for resuming: [0-9]*" "$TEST_DIR/ws-r1.log" | tail -n 1 |
	grep -o '[0-9]*$')
((durable > 0)) || fail "the replica kept no durable byte of $seg2"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/stray2"
cp "$TEST_DIR/stray2" "$TEST_DIR/stray2.in"
mv "$TEST_DIR/stray2.in" "$RARCHIVE/$seg2"
log "a stray file stored as $seg2, of which $durable bytes are acknowledged"
walship_fetch_as_postgres "$RCONF" "$seg2" "$SCRATCH/$seg2" 2>"$TEST_DIR/fetch2.err" ||
	fail "walship fetch $seg2 failed: $(cat "$TEST_DIR/fetch2.err")"
grep -q "is stored with other bytes than the $durable durable bytes of" "$TEST_DIR/fetch2.err" ||
	fail "walship fetch $seg2 did not say why it served the incoming file:" \
		"$(cat "$TEST_DIR/fetch2.err")"
cmp -s -n "$durable" "$SCRATCH/$seg2" "$PDATA/pg_wal/$seg2" ||
	fail "the first $durable bytes walship fetch served of $seg2 are not pg_wal's"
cmp -s -i "$durable:0" "$SCRATCH/$seg2" /dev/zero -n $((16 * 1024 * 1024 - durable)) ||
	fail "what walship fetch served of $seg2 after its $durable durable bytes is not zeros"
cmp -s "$RARCHIVE/$seg2" "$TEST_DIR/stray2" || fail "walship fetch changed the stored $seg2"
log "ok: walship fetch served the $durable acknowledged bytes of $seg2, the rest zeros:" \
	"$(head -n 1 "$TEST_DIR/fetch2.err")"

# The incoming copy unreadable by PostgreSQL's user: the stray is not served over it
# (exit 4, the copy named), as for a segment with no stored file.  Before, fetch served
# the stray (here exit 3, its random bytes failing validation; a valid one, exit 0).
incoming=("$RARCHIVE/.incoming/$seg2".*)
[[ -f "${incoming[0]}" ]] || fail "no incoming copy of $seg2 in $RARCHIVE/.incoming"
mode=$(stat -c %a "${incoming[0]}")
chmod 000 "${incoming[@]}"
rm -f "$SCRATCH/$seg2"
run_capture "$TEST_DIR/fetch3.err" walship_fetch_as_postgres "$RCONF" "$seg2" "$SCRATCH/$seg2"
chmod "$mode" "${incoming[@]}"
((RC == 4)) || fail "walship fetch $seg2 with its incoming copy unreadable exited $RC, not 4:" \
	"$(cat "$TEST_DIR/fetch3.err")"
grep -q "could not read file \"$RARCHIVE/.incoming/$seg2\.[0-9]*\": Permission denied" \
	"$TEST_DIR/fetch3.err" || fail "walship fetch $seg2 did not name its unreadable copy:" \
	"$(cat "$TEST_DIR/fetch3.err")"
[[ ! -e "$SCRATCH/$seg2" ]] || fail "walship fetch $seg2 delivered something"
log "ok: with its incoming copy unreadable, walship fetch $seg2 exits 4:" \
	"$(head -n 1 "$TEST_DIR/fetch3.err")"
log "PASS"
