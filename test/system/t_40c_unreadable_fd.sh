#!/bin/bash
# Issue 11, defect 8: a push whose descriptor cannot be read fails alone.  A write-only
# and an O_PATH descriptor of a regular file of segment size (build/helpers/push_fd
# passes them over the control socket as `walship push` would) used to pass the checks;
# the read on the replica connection then failed and closed that connection with every
# transfer in flight.  Now each push is refused at once with a clear reason, counted, and
# the replica's connection stays up: nothing is logged as disconnected and the replica
# connected once.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PUSH_FD=$WS_ROOT/build/helpers/push_fd
[[ -x "$PUSH_FD" ]] || skip "build/helpers/push_fd is not built (make all)"
walship_daemons_up
SOCK=$(conf_get "$PCONF" socket)
SEG=$SCRATCH/000000010000000000000005
head -c $((16 * 1024 * 1024)) /dev/zero >"$SEG"
chmod 0644 "$SEG"
since=$(walship_status "$PCONF" --json | jq -r '.peers[] | select(.name == "ws-r1") | .connected_since')
failed_before=$(status_counter "$PCONF" pushes_failed)

for mode in wronly path; do
	run_capture "$TEST_DIR/push-$mode.out" "$PUSH_FD" "$SOCK" "$SEG" "$mode"
	out=$(cat "$TEST_DIR/push-$mode.out")
	((RC == 1)) || fail "a push of an $mode descriptor: expected exit 1, got $RC: $out"
	[[ "$out" == *"is not open for reading"* ]] ||
		fail "a push of an $mode descriptor does not say why it failed: $out"
	log "ok: $mode descriptor refused: $out"
done
assert_eq $((failed_before + 2)) "$(status_counter "$PCONF" pushes_failed)" "failed pushes"

# The replica's connection saw none of it.
! grep -q 'replica "ws-r1" .* disconnected' "$TEST_DIR/ws-primary.log" ||
	fail "the replica's connection was closed: $(grep -m1 disconnected "$TEST_DIR/ws-primary.log")"
assert_eq 1 "$(grep -c 'connected to primary' "$TEST_DIR/ws-r1.log")" "connections of ws-r1"
assert_eq "$since" \
	"$(walship_status "$PCONF" --json | jq -r '.peers[] | select(.name == "ws-r1") | .connected_since')" \
	"ws-r1 connected since"
assert_eq 0 "$(status_counter "$RCONF" invalid)" "files the replica refused"
log "ok: the replica's connection stayed up"
log "PASS"
