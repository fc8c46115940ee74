#!/bin/bash
# A push whose client goes away before its answer (PostgreSQL's archiver stopped or gave
# up, walship push killed) is neither failed nor answered to no one: walshipd sees the
# client go, writes nothing to it, and ships the file on as a segment shipped ahead of its
# push, which PostgreSQL's retry of the file takes over.
#  1. with the only replica stopped, a push waits; its walship push is killed: the primary
#     logs that its client went away, logs no failed reply, counts no failed push and one
#     abandoned;
#  2. the replica back, the retried push takes the first one over (ahead_taken) and
#     succeeds; the replica stored the segment once (no duplicate), identical.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PRIMARY_CONF_EXTRA=(push_timeout=60s)
walship_daemons_up
pg_make_segments 1 "$SCRATCH"
seg=${SEGS[0]}
PLOG=$TEST_DIR/ws-primary.log

log "1. the replica stopped: a push of $seg waits; its client is killed"
walshipd_stop "$RCONF"
# Not through as_postgres, a function: its subshell would be $!.  setpriv execs walship.
"${WS_SETPRIV_POSTGRES[@]}" "$WALSHIP" push -c "$PCONF" "$SCRATCH/$seg" \
	>"$TEST_DIR/push-killed.out" 2>&1 &
push_pid=$!
queued() { [[ "$(status_counter "$PCONF" pushes_queued)" == 1 ]]; }
wait_for 20 "the push to wait in walshipd" queued
kill -KILL "$push_pid"
wait "$push_pid" 2>/dev/null || true
client_gone() { grep -q "the client of the push of \"$seg\" (pid [0-9]*) went away" "$PLOG"; }
wait_for 10 "the primary to see the client go" client_gone
grep "went away" "$PLOG"
assert_eq 1 "$(status_counter "$PCONF" pushes_queued)" "pushes still shipping"
assert_eq 0 "$(status_counter "$PCONF" pushes_failed)" "failed pushes"
assert_eq 1 "$(status_counter "$PCONF" pushes_abandoned)" "pushes abandoned by their client"

log "2. the replica back: the retried push takes the first one over"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
assert_exit 0 "the retried push of $seg" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg"
assert_eq 1 "$(status_counter "$PCONF" ahead_taken)" "pushes that took one over"
assert_eq 0 "$(status_counter "$PCONF" pushes_failed)" "failed pushes"
assert_eq 1 "$(status_counter "$PCONF" pushes_ok)" "pushes answered ok (the retry only)"
assert_eq 0 "$(status_counter "$RCONF" duplicates)" "files the replica received twice"
wait_archived "$seg"
assert_file_identical "$SCRATCH/$seg" "$RARCHIVE/$seg"
if grep -q "could not send reply" "$PLOG"; then
	grep "could not send reply" "$PLOG"
	fail "the primary tried to answer the client that went away"
fi
log "PASS"
