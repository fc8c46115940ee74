#!/bin/bash
# Issue 3, fault injection: the link between the hosts is cut (interface down) for a while
# during pgbench load, first on the replica's side (eth0 in its namespace), then on the
# primary's side (its veth end, in its namespace); each time it is restored.  While it is
# down, pushes time out and WAL waits in PostgreSQL (segments marked .ready, not
# acknowledged); afterwards
# everything flows, the standby catches up, nothing acknowledged is lost
# (check_invariants).
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=2s
PRIMARY_CONF_EXTRA=(push_timeout=5s)
inv_topology_up 2

log "load: pgbench in the background, 100 transactions/s"
load_start "$NS_P" "$PG_PORT" 100

# ready_count: segments PostgreSQL has completed and not archived yet.
ready_count() {
	find "$PDATA/pg_wal/archive_status" -name '*.ready' | wc -l
}
# wal_waits: true while PostgreSQL holds at least one completed, unarchived segment.
wal_waits() {
	(($(ready_count) > 0))
}
# acked_now: how many files push has acknowledged so far.
acked_now() {
	wc -l <"$INV_ACKED"
}

# cut NS DEV SECS: take DEV down inside NS for SECS seconds under load, then up again;
# asserts that WAL waited in PostgreSQL meanwhile and that pushes resume afterwards.
cut() {
	local ns=$1 dev=$2 secs=$3 before failed0
	failed0=$(status_counter "$PCONF" pushes_failed)
	log "cutting $dev in $ns for ${secs}s"
	ip -n "$ns" link set "$dev" down
	sleep "$secs"
	# The cut had an effect: a push timed out (push_timeout = 5s) for want of the only
	# replica (.ready files alone come and go every archive_timeout whatever the link).
	failed_more() {
		(($(status_counter "$PCONF" pushes_failed) > failed0))
	}
	wait_for 20 "a push to fail while $dev is down" failed_more
	wait_for 20 "PostgreSQL to hold unarchived WAL while $dev is down" wal_waits
	before=$(acked_now)
	log "link down: $(ready_count) segment(s) wait in pg_wal; restoring $dev"
	ip -n "$ns" link set "$dev" up
	ip -n "$NS_P" link set br0 up
	wait_for 20 "$NS_R1 to reach the primary again" \
		in_ns "$NS_R1" ping -c 1 -W 1 "$ADDR_P"
	acked_more() {
		(($(acked_now) > before))
	}
	wait_for 60 "pushes to be acknowledged again after the cut of $dev" acked_more
	wait_replica_streaming "$PCONF" 30
	log "ok: pushes flow again after the cut of $dev ($(acked_now) acknowledged)"
}

cut "$NS_R1" eth0 8
cut "$NS_P" vr1 8

load_stop

final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 90
no_ready() {
	(($(ready_count) == 0))
}
wait_for 60 "PostgreSQL to have archived everything" no_ready
assert_no_gap "$RARCHIVE"
check_invariants -P "$PCONF" -R "$RCONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
