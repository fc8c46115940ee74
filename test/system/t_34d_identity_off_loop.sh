#!/bin/bash
# The replica writes its store's identity (the first segment's cluster, durably) on a
# worker thread, not on its event loop: with that write's fsyncs held up for seconds
# (strace delays the replica's fdatasync and fsync system calls; the data path's syncs
# are io_uring requests, not system calls), the replica keeps answering PINGs, so the
# primary, with keepalive_timeout = 2s, keeps the link, and the replica's loop never
# stalls.  Three segments pushed at once all complete while the identity is written:
# each waits for it before its rename (nothing of a system is acknowledged before the
# store's identity is durable), then all are stored.
# test-early (about 16 s here, 4 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || skip "strace is not installed (make deps installs it)"
ws_setup
PRIMARY_CONF_EXTRA=(keepalive_interval=300ms keepalive_timeout=2s)
REPLICA_CONF_EXTRA=(keepalive_interval=300ms keepalive_timeout=2s)
walship_daemons_up

log "making three real WAL segments"
pg_make_segments 3 "$SCRATCH"
[[ ! -e "$RARCHIVE/.walship/system_identifier" ]] ||
	fail "test bug: the replica's store has an identity already"

log "the replica's fsync system calls held up 4 s each"
rpid=${WS_DAEMON_PID[$RCONF]}
bg_start "$TEST_DIR/strace.log" strace -f -p "$rpid" -e trace=fsync,fdatasync \
	-e inject=fsync,fdatasync:delay_enter=4000000
strace_pid=$BG_PID
attached() {
	grep -q "attached" "$TEST_DIR/strace.log"
}
wait_for 10 "strace to attach to the replica" attached

log "three pushes at once; the first one's identity write is slow"
push_pids=()
for seg in "${SEGS[@]}"; do
	walship_push_as_postgres "$PCONF" "$SCRATCH/$seg" >"$TEST_DIR/push-$seg.out" 2>&1 &
	push_pids+=("$!")
done
for i in "${!push_pids[@]}"; do
	wait "${push_pids[$i]}" ||
		fail "push of ${SEGS[$i]} failed: $(cat "$TEST_DIR/push-${SEGS[$i]}.out")"
done
kill "$strace_pid" 2>/dev/null || true
wait "$strace_pid" 2>/dev/null || true

grep -q "DELAYED" "$TEST_DIR/strace.log" ||
	fail "strace delayed no fsync: the identity was not written as expected"
for seg in "${SEGS[@]}"; do
	assert_file_identical "$SCRATCH/$seg" "$RARCHIVE/$seg"
done
[[ -s "$RARCHIVE/.walship/system_identifier" ]] ||
	fail "the replica's store has no identity after its first segments"
! grep -q "nothing received for .* (keepalive_timeout)" "$TEST_DIR/ws-primary.log" \
	"$TEST_DIR/ws-r1.log" || fail "a link was dropped while the identity was written"
! grep -q "the event loop did not run" "$TEST_DIR/ws-r1.log" ||
	fail "the replica's event loop stalled while the identity was written"
assert_eq 0 "$(walship_status "$PCONF" --json | jq -r '.peers[0].reconnects')" \
	"reconnects of the replica"
log "PASS"
