#!/bin/bash
# A fake primary that begins files and sends no data (issue 11, defect 5): a replica keeps
# at most the protocol's window of files in flight (WIRE_MAX_INFLIGHT_FILES = 64, the
# largest max_inflight_files), refuses the next FILE_BEGIN with ERROR PROTOCOL, and removes
# the files of that connection from .incoming (none had data, so none is a partial worth
# keeping).  Before, 3,000 FILE_BEGINs cost 3,011 open descriptors and 3,000 files.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

BEGINS=3000
WINDOW=64
ws_setup
require_cmds jq
replica_for_fake_primary
INCOMING=$TEST_DIR/ws-r1/archive/.incoming
rpid=$WALSHIPD_PID

fds() { find "/proc/$rpid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
incoming() { find "$INCOMING" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fds0=$(fds)
log "replica ws-r1 holds $fds0 descriptors"

log "a fake primary begins $BEGINS files and sends no data"
bg_start "$TEST_DIR/fake.out" ip netns exec "$NS_P" timeout 40 "$FAKE" \
	--listen "$ADDR_P:$WALSHIP_PORT" --name fake-primary --timeout 20 \
	read-hello hello-primary begin-flood "$BEGINS" expect-error PROTOCOL
fake_pid=$BG_PID
wait_for 30 "the fake primary to send its FILE_BEGINs" \
	grep -qE "begin-flood: (sent|connection closed)" "$TEST_DIR/fake.out"
# Whether or not the replica has closed the connection yet, it holds a bounded number.
fds1=$(fds)
files1=$(incoming)
log "during the flood: $fds1 descriptors, $files1 files in .incoming"
((files1 <= WINDOW)) || fail "$files1 files in .incoming for one connection (window $WINDOW)"
((fds1 <= fds0 + WINDOW + 4)) || fail "$fds1 descriptors open (before: $fds0, window $WINDOW)"

rc=0
wait "$fake_pid" || rc=$?
cat "$TEST_DIR/fake.out"
((rc == 0)) || fail "the fake primary got no ERROR PROTOCOL (exit $rc)"
grep -q "error PROTOCOL: FILE_BEGIN .* while $WINDOW files are in flight" "$TEST_DIR/fake.out" ||
	fail "the ERROR does not say why"
grep -q "closing connection to primary at .*: FILE_BEGIN .* more than the protocol's window" \
	"$TEST_DIR/ws-r1.log" || fail "the replica did not log why it closed"
overflows=$(status_counter "$RCONF" queue_overflows)
((overflows >= 1)) || fail "the refusal is not counted in queue_overflows"

log "the files of that connection are removed, its descriptors closed"
incoming_empty() { (($(incoming) == 0)); }
fds_closed() { (($(fds) <= fds0 + 2)); }
wait_for 10 ".incoming to be empty" incoming_empty
wait_for 10 "the descriptors to be closed" fds_closed
log "after: $(fds) descriptors, $(incoming) files in .incoming"
log "PASS"
