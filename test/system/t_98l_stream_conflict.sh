#!/bin/bash
# t_98l: a streamed segment whose name is already stored with other content (issue 13).
# The replica's archive holds another file under the name of the next segment (a stray
# copy, another history), put there after its HAVE; the stream brings that segment.
# - The replica compares the bytes it makes durable with the stored file before it
#   acknowledges them (walship fetch serves the stored file, not the streamed copy); here
#   the first byte differs, so it acknowledges nothing of the segment and refuses it at
#   once (CONFLICT, "from byte 0"), setting nothing aside.  Before, it acknowledged every
#   byte and set the copy aside at its end, in .refused, which fetch does not serve;
# - the primary logs the conflict, and with this only replica the segment fails, held by
#   no replica;
# - the stored file under that name is untouched, and `walship check` finds no refused
#   file;
# - a push of a segment the stream stored is answered at once when it is pg_wal's copy,
#   and sent, then refused, when one byte differs.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up local
next=$(stray_next_segment)
log "a stray file stored as $next, the segment after the current one"

fill_and_switch 3
wait_for 60 "the replica to refuse $next" grep -q "refused \"$next\"" "$TEST_DIR/ws-r1.log"
grep -q "refused \"$next\": \"$next\" is already stored with different content (from byte 0)" \
	"$TEST_DIR/ws-r1.log" || fail "the replica did not say why it refused $next"
log "ok: $(grep -o "refused \"$next\".*" "$TEST_DIR/ws-r1.log")"
assert_eq 0 "$(status_counter "$RCONF" set_aside)" "files set aside (set_aside)"
if grep -q "set \"$next\" aside" "$TEST_DIR/ws-r1.log"; then
	fail "the replica set $next aside: it had acknowledged bytes of it"
fi
wait_for 30 "the primary to fail $next, held by no replica" grep -q \
	"streamed segment \"$next\" failed: 0 replica(s) hold it" "$TEST_DIR/ws-primary.log"
cmp -s "$RARCHIVE/$next" "$TEST_DIR/stray" || fail "the stored $next was changed"
log "ok: nothing of $next acknowledged; the stored $next is kept as it was"

# A push of a segment the stream stored already is compared with the stream's copy (its
# CRC taken on the primary's worker thread): pg_wal's own copy is answered at once, sent
# nowhere (skipped_files); one byte changed in its records, it is sent, and the replica
# refuses it (CONFLICT), keeping its stored copy.
prev=$(printf '%08X%08X%08X' "0x${next:0:8}" "0x${next:8:8}" $((0x${next:16:8} - 1)))
wait_for 30 "$prev stored on the replica" test -f "$RARCHIVE/$prev"
skipped=$(status_counter "$PCONF" skipped_files)
mkdir -p "$TEST_DIR/same" "$TEST_DIR/other"
cp "$PDATA/pg_wal/$prev" "$TEST_DIR/same/$prev"
run_capture "$TEST_DIR/push-same.out" "$WALSHIP" push -c "$PCONF" "$TEST_DIR/same/$prev"
assert_eq 0 "$RC" "exit status of pushing pg_wal's $prev ($(cat "$TEST_DIR/push-same.out"))"
assert_eq $((skipped + 1)) "$(status_counter "$PCONF" skipped_files)" \
	"pushes answered as streamed already (skipped_files)"
cp "$PDATA/pg_wal/$prev" "$TEST_DIR/other/$prev"
printf '\xa5' | dd of="$TEST_DIR/other/$prev" bs=1 seek=$((1024 * 1024 + 100)) conv=notrunc \
	status=none
run_capture "$TEST_DIR/push-other.out" "$WALSHIP" push -c "$PCONF" "$TEST_DIR/other/$prev"
((RC != 0)) || fail "a push of other content as $prev succeeded"
grep -q "different content" "$TEST_DIR/push-other.out" ||
	fail "the push of other content as $prev failed otherwise: $(cat "$TEST_DIR/push-other.out")"
cmp -s "$RARCHIVE/$prev" "$PDATA/pg_wal/$prev" || fail "the stored $prev was changed"
log "ok: pg_wal's $prev pushed again: answered as streamed already; other content:" \
	"$(head -c 300 "$TEST_DIR/push-other.out")"

run_capture "$TEST_DIR/check.out" "$WALSHIP" check -c "$RCONF"
sed 's/^/    | /' "$TEST_DIR/check.out"
assert_eq 0 "$RC" "walship check's exit status"
grep -q "^PASS  refused files" "$TEST_DIR/check.out" ||
	fail "walship check did not find .refused empty"
log "ok: walship check finds no refused file"
log "PASS"
