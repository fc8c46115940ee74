#!/bin/bash
# Checks the system-test harness itself (test/system/lib.sh), without walship:
#   1. two namespaces joined by veth answer ping;
#   2. a PostgreSQL 15 primary in one, a pg_basebackup standby in the other, fed through a
#      plain `cp` archive directory (archive_command / restore_command), replays up to the
#      primary's position after a pgbench load, and both hold identical data;
#   3. cleanup leaves no namespace, process or directory behind, after a normal run and
#      after a SIGTERM in the middle of a run.
# The parent process runs the scenarios as child processes and inspects what they leave.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

# scenario_replicate: the real replication check (run as a child; writes its namespace
# number and test directory to $HARNESS_STATE).
scenario_replicate() {
	ws_setup
	net_create 1
	printf '%s %s\n' "$WS_NET_ID" "$TEST_DIR" >"$HARNESS_STATE"

	local arch=$TEST_DIR/archive port=5432
	mkdir -p "$arch"
	chown postgres:postgres "$arch"

	log "primary: initdb and start in $NS_P"
	pg_primary_init "$TEST_DIR/primary" "$port" "$NS_P" \
		"test ! -f $arch/%f && cp %p $arch/%f.tmp && mv $arch/%f.tmp $arch/%f"
	pg_start "$TEST_DIR/primary" "$NS_P"
	pgbench_at "$NS_P" "$port" -i -s 2 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
		{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }

	log "standby: pg_basebackup from $ADDR_P into $NS_R1, restore_command = cp"
	pg_standby_from_basebackup "$NS_P" "$port" "$TEST_DIR/standby" "$NS_R1" "$port" \
		"cp $arch/%f %p"
	pg_start "$TEST_DIR/standby" "$NS_R1"
	assert_eq t "$(psql_at "$NS_R1" "$port" 'select pg_is_in_recovery()')" "standby in recovery"
	assert_eq "" "$(psql_at "$NS_R1" "$port" "select status from pg_stat_wal_receiver")" \
		"standby streams nothing"

	log "load: pgbench 5 s on the primary, 200 transactions/s"
	pgbench_at "$NS_P" "$port" -c 2 -T 5 -R 200 -n >"$TEST_DIR/pgbench-run.out" 2>&1 ||
		{ cat "$TEST_DIR/pgbench-run.out"; fail "pgbench run failed"; }
	local final
	final=$(pg_finish_load "$NS_P" "$port")
	log "primary at $final; waiting for the standby"
	wait_standby_lsn "$NS_R1" "$port" "$final" 60
	log "standby replayed $(pg_replay_lsn "$NS_R1" "$port") >= $final"
	assert_same_data "$NS_P" "$port" "$NS_R1" "$port"
	log "data identical"
}

# scenario_interrupted: start a primary and a background job, report ready (namespace
# number, test directory, pid), then wait to be killed by SIGTERM.
scenario_interrupted() {
	ws_setup
	net_create 1
	pg_primary_init "$TEST_DIR/primary" 5432 "$NS_P" "true"
	pg_start "$TEST_DIR/primary" "$NS_P"
	bg_start "$TEST_DIR/sleeper.log" in_ns "$NS_R1" sleep 300
	printf '%s %s %s\n' "$WS_NET_ID" "$TEST_DIR" "$$" >"$HARNESS_STATE"
	wait
}

# assert_cleaned NETID DIR: fail if namespaces ws-NETID-*, processes in or of DIR, or DIR
# itself remain.
assert_cleaned() {
	local id=$1 dir=$2
	if ip netns list | grep -q "^ws-$id-"; then
		fail "namespaces left behind: $(ip netns list | grep "^ws-$id-" | tr '\n' ' ')"
	fi
	if pgrep -f -- "$dir" >/dev/null; then
		fail "processes left behind: $(pgrep -a -f -- "$dir")"
	fi
	[[ ! -e "$dir" ]] || fail "test directory $dir left behind"
}

case "${1:-}" in
--replicate)
	scenario_replicate
	exit 0
	;;
--interrupted)
	scenario_interrupted
	exit 0
	;;
esac

require_root
require_postgres
STATE_DIR=$(mktemp -d /tmp/walship-harness.XXXXXX)
trap 'rm -rf "$STATE_DIR"' EXIT

log "scenario 1: replication through a cp archive"
rc=0
HARNESS_STATE=$STATE_DIR/replicate WS_TEST_NAME=t_00_harness/replicate \
	timeout -k 5 240 bash "$0" --replicate || rc=$?
[[ -s "$STATE_DIR/replicate" ]] || fail "the replication scenario did not start (exit $rc)"
((rc == 0)) || fail "the replication scenario failed (exit $rc)"
read -r net_id dir <"$STATE_DIR/replicate"
assert_cleaned "$net_id" "$dir"
log "ok: cleanup after a normal run left nothing"

log "scenario 2: SIGTERM in the middle of a run"
HARNESS_STATE=$STATE_DIR/interrupted WS_TEST_NAME=t_00_harness/interrupted \
	timeout -k 60 120 bash "$0" --interrupted &
child=$!
wait_for 60 "the interrupted scenario to be ready" test -s "$STATE_DIR/interrupted"
read -r net_id dir child_bash <"$STATE_DIR/interrupted"
# Only the test's shell gets the signal, as from `kill PID`: its trap must do everything.
kill -TERM "$child_bash"
rc=0
wait "$child" || rc=$?
((rc == 143)) || fail "interrupted scenario exited $rc, expected 143"
assert_cleaned "$net_id" "$dir"
log "ok: cleanup after SIGTERM left nothing"
log "PASS"
