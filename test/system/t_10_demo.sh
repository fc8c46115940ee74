#!/bin/bash
# The demo scenario as a test, with a short load: PostgreSQL primary archiving through
# `walship push`, standby restoring through `walship fetch` on another host, 15 s of
# pgbench; the standby must replay up to the primary's final position and hold the same
# data.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=5s
walship_topology_up 2

log "load: pgbench 15 s"
pgbench_at "$NS_P" "$PG_PORT" -n -c 4 -j 2 -T 15 -R 150 >"$TEST_DIR/pgbench-run.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-run.out"; fail "pgbench run failed"; }
final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 60
log "standby replayed $(pg_replay_lsn "$NS_R1" "$PG_PORT") >= $final"
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$PG_PORT"
assert_eq 0 "$(status_counter "$PCONF" conflicts)" "conflicts on the primary"
assert_eq 0 "$(status_counter "$RCONF" conflicts)" "conflicts on the replica"
log "PASS"
