#!/bin/bash
# Issue 3, fault injection: the replica walshipd is SIGKILLed in the middle of a write (a
# file in archive_dir/.incoming) during pgbench load, and restarted.  While it is down,
# nothing under a final name in its archive is partial or invalid.  The kill is aimed after
# the file's first checkpoint (its durable-length record, user.walship.resume): at its start
# the replica keeps the partial file, offers it, and the primary sends the rest from the
# durable length; the completed file is byte-identical to the primary's.  The standby
# catches up; nothing acknowledged is lost (check_invariants).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=5s
inv_topology_up 2

log "load: pgbench in the background, 150 transactions/s"
load_start "$NS_P" "$PG_PORT" 150

# kill_replica_mid_write: SIGKILL the replica walshipd as soon as a segment in .incoming
# carries a durable-length record (checkpoint_interval has passed while it arrived);
# true (and INCOMING set to it) if the file was still there after the kill.
kill_replica_mid_write() {
	local pid=${WS_DAEMON_PID[$RCONF]} deadline=$((SECONDS + 30)) f
	while ((SECONDS < deadline)); do
		for f in "$RARCHIVE"/.incoming/*; do
			[[ -s "$f" ]] || continue
			getfattr --absolute-names -n user.walship.resume "$f" >/dev/null 2>&1 ||
				continue
			kill -KILL "$pid"
			walshipd_kill "$RCONF"
			if [[ -e "$f" ]]; then
				INCOMING=$f
				return 0
			fi
			return 1
		done
		# (a 20 ms poll: the link is throttled to 40 Mbit/s by kill_mid_file, so a
		# segment takes seconds to cross; a poll without a pause took a core from the
		# load and the daemons it waits for)
		ws_sleep 0.02
	done
	fail "no file appeared in $RARCHIVE/.incoming within 30 s of load"
}

kill_mid_file kill_replica_mid_write "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log" "the replica walshipd"
name=$(basename "$INCOMING")
name=${name%.*}
log "replica killed while writing $name ($(stat -c %s "$INCOMING") bytes in .incoming, with a durable-length record)"

# While it is down: no partial file under a final name (fetch validates every one).
inv_check_stored "$RCONF"
log "ok: $INV_STORED file(s) under final names, all valid, with the daemon down"
if [[ -f "$RARCHIVE/$name" ]]; then
	fail "$name is under its final name although its write was cut"
fi

sleep 2
log "restarting the replica walshipd"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 30
# Completed and renamed: not left behind.
incoming_gone() {
	[[ ! -e "$INCOMING" ]]
}
wait_for 30 "the half-written $(basename "$INCOMING") to leave .incoming" incoming_gone
log "ok: the half-written $(basename "$INCOMING") is gone from .incoming"

# It was resumed, not sent again: the replica kept it at start and continued it from its
# durable length, and the primary sent only the rest.
grep -q "kept partial file \"$(basename "$INCOMING")\"" "$TEST_DIR/ws-r1.log" ||
	fail "the replica did not keep the partial $(basename "$INCOMING") at its start"
resumed_at=$(sed -n "s/.*resuming \"$name\" at offset \([0-9]*\) of .*/\1/p" "$TEST_DIR/ws-r1.log" | tail -n 1)
[[ -n "$resumed_at" ]] || fail "the replica did not resume $name"
((resumed_at > 0)) || fail "$name resumed at offset 0"
grep -q "resuming \"$name\" for replica \"ws-r1\" at offset $resumed_at," "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not resume $name at offset $resumed_at"
resumed=$(status_counter "$RCONF" resumed_files)
((resumed >= 1)) || fail "replica status shows no resumed file"
log "ok: $name resumed at offset $resumed_at (replica and primary agree)"

load_stop

final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 90
wait_archived "$name" 60
assert_no_gap "$RARCHIVE"
check_invariants -P "$PCONF" -R "$RCONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
