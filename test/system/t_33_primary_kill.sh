#!/bin/bash
# Issue 3, fault injection: the primary walshipd is SIGKILLed in the middle of a segment
# (the replica has a file in .incoming, the transfer under way) during pgbench load, and
# restarted; the replica's daemon is SIGKILLed too before both come back.  PostgreSQL's
# failed pushes are retried; the replica keeps the half-received file (made durable when
# the connection broke, checked again at its restart) and the restarted primary sends only
# the rest of it, from the replica's durable length; nothing acknowledged is lost
# (check_invariants), the standby catches up and its data equal the primary's.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=5s
inv_topology_up 2

log "load: pgbench in the background, 150 transactions/s"
load_start "$NS_P" "$PG_PORT" 150

# kept_or_stored NAME: true once the replica has kept NAME's partial file for resuming or
# stored NAME whole.
kept_or_stored() {
	[[ -e "$RARCHIVE/$1" ]] || grep -q "kept \"$1\" for resuming" "$TEST_DIR/ws-r1.log"
}

# kill_primary_mid_file: SIGKILL the primary walshipd as soon as the replica has a
# non-empty file in .incoming (a segment under transfer); true if the transfer was cut:
# the replica kept that file for resuming.  What was already in flight (the throttled
# link's queue, the socket buffers: megabytes) still arrives after the kill, so whether
# the file was cut is known only once the replica has seen the connection end: it then
# either kept the file or stored it whole.
kill_primary_mid_file() {
	local pid=${WS_DAEMON_PID[$PCONF]} deadline=$((SECONDS + 30)) f name size
	while ((SECONDS < deadline)); do
		for f in "$RARCHIVE"/.incoming/*; do
			[[ -s "$f" ]] || continue
			kill -KILL "$pid"
			size=$(stat -c %s "$f" 2>/dev/null) || size="?"
			walshipd_kill "$PCONF"
			name=$(basename "$f")
			name=${name%.*}
			wait_for 20 "the replica to keep $name for resuming or store it whole" \
				kept_or_stored "$name"
			if [[ ! -e "$RARCHIVE/$name" ]]; then
				log "primary killed while the replica received $name ($size bytes in .incoming)"
				CUT=$name
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

kill_mid_file kill_primary_mid_file "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log" "the primary walshipd"

# Pushes fail meanwhile: PostgreSQL keeps the segments.  The replica keeps the cut file
# when its connection breaks; then its daemon is SIGKILLed too (both daemons down), so
# that the partial must survive a restart: read back, checked against its record.
wait_for 20 "the replica to keep $CUT for resuming" \
	grep -q "kept \"$CUT\" for resuming" "$TEST_DIR/ws-r1.log"
walshipd_kill "$RCONF"
log "replica walshipd killed as well"
sleep 2
log "restarting the replica and the primary walshipd"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
# (its old control socket is still there: wait for the new daemon's word, not the socket)
wait_for 10 "the restarted replica to keep the partial $CUT" \
	grep -q "kept partial file \"$CUT\.[0-9]*\": [0-9]* of [0-9]* bytes are durable and checked" \
	"$TEST_DIR/ws-r1.log"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PCONF" 30

load_stop

final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 90
wait_archived "$CUT" 30
# The cut file was resumed from what the replica held durably, not sent again whole.
kept_at=$(sed -n "s/.*kept \"$CUT\" for resuming: \([0-9]*\) of .*/\1/p" "$TEST_DIR/ws-r1.log" | tail -n 1)
[[ -n "$kept_at" ]] || fail "the replica did not keep the cut $CUT for resuming"
grep -q "resuming \"$CUT\" for replica \"ws-r1\" at offset $kept_at," "$TEST_DIR/ws-primary.log" ||
	fail "the restarted primary did not resume $CUT at the replica's durable length $kept_at"
log "ok: $CUT resumed at offset $kept_at after the primary's restart"
assert_no_gap "$RARCHIVE"
check_invariants -P "$PCONF" -R "$RCONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
