#!/bin/bash
# walship demo (make demo): a PostgreSQL 15 primary ships its WAL through walship to a
# standby on another host, under pgbench load, and the standby ends up with the same data.
#
#   primary host (netns ws-X-p)                replica host (netns ws-X-r1)
#   postgres primary                            walshipd replica -> archive dir
#     archive_command = walship push  ──TCP──►  postgres standby
#   walshipd primary                              restore_command = walship fetch
#
# The standby has no primary_conninfo: every byte it replays came through walship.
#
# Environment: DEMO_SECONDS (pgbench duration, default 60), DEMO_SCALE (pgbench scale,
# default 10), DEMO_CLIENTS (default 4), WALSHIP_KEEP=1 to keep the directory.
# Exit 0 when the standby replayed everything and holds identical data.
set -euo pipefail
WS_TEST_NAME=demo
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/../test/system/lib.sh"

DEMO_SECONDS=${DEMO_SECONDS:-60}
DEMO_SCALE=${DEMO_SCALE:-10}
DEMO_CLIENTS=${DEMO_CLIENTS:-4}

# step MSG: a visible step header.
step() {
	echo
	echo "==> $*"
}

# show_positions: print the primary's WAL position and the standby's replay position.
show_positions() {
	printf '    primary  current WAL LSN: %s\n' "$(pg_current_lsn "$NS_P" "$PG_PORT")"
	printf '    standby  replayed LSN:    %s\n' "$(pg_replay_lsn "$NS_R1" "$PG_PORT")"
}

step "setup: hosts, walshipd primary and replica, PostgreSQL primary and standby"
ws_setup
PG_ARCHIVE_TIMEOUT=5s
walship_topology_up "$DEMO_SCALE"
log "primary: $ADDR_P port $PG_PORT, data $PDATA"
log "standby: $ADDR_R1 port $PG_PORT, data $SDATA, fed from $RARCHIVE"

step "load: pgbench -c $DEMO_CLIENTS -T $DEMO_SECONDS on the primary (progress every 5 s)"
pgbench_at "$NS_P" "$PG_PORT" -n -c "$DEMO_CLIENTS" -j 2 -T "$DEMO_SECONDS" -P 5 2>&1 |
	tee "$TEST_DIR/pgbench-run.log" || fail "pgbench failed"

step "end of load: switching WAL segments so the last one is archived"
FINAL_LSN=$(pg_finish_load "$NS_P" "$PG_PORT")
log "the standby must replay up to $FINAL_LSN"
show_positions

step "waiting for the standby to replay up to $FINAL_LSN (120 s at most)"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$FINAL_LSN" 120
show_positions

step "walship status on the primary host"
walship_status "$PCONF" || log "walship status failed on the primary"
step "walship status on the replica host"
walship_status "$RCONF" || log "walship status failed on the replica"

step "data: row counts and checksums of every table, primary then standby"
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$PG_PORT"

echo
echo "PASS: the standby replayed up to $FINAL_LSN through walship and holds the same data"
