#!/bin/bash
# t_32e: lowering sync_replicas by reload answers the pushes waiting for it.  The primary
# walshipd asks for two replicas' acknowledgements and has one; a push waits.  Its config
# then says sync_replicas = 1 and it is sent SIGHUP: the waiting push is looked at again
# and answered OK (the replica has it), not failed at push_timeout as on the build before
# this test (whose reason then spoke of holding the file for registered replicas).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PRIMARY_CONF_EXTRA=(sync_replicas=2 push_timeout=20s)
walship_daemons_up
pg_make_segments 1 "$SCRATCH"
seg=${SEGS[0]}

bg_start "$TEST_DIR/push.out" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg"
PUSH_PID=$BG_PID
waiting() { (($(status_counter "$PCONF" pushes_queued) >= 1)) && test -f "$RARCHIVE/$seg"; }
wait_for 15 "the push to wait with $seg stored on the one replica" waiting
sed -i 's/^sync_replicas = .*/sync_replicas = 1/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
rc=0
wait "$PUSH_PID" || rc=$?
assert_eq 0 "$rc" "exit status of the push after the reload ($(cat "$TEST_DIR/push.out"))"
log "ok: the push waiting for two replicas was answered once sync_replicas = 1 was loaded"
log "PASS"
