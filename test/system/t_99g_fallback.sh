#!/bin/bash
# t_99g: a standby of the appliance through its failures (issue 14).  (1) The appliance is
# SIGKILLed while the standby streams under load: the standby reconnects once the daemon
# is started again and catches up.  (2) The WAL the standby needs is removed from the
# appliance while the standby is stopped: on its start the appliance answers its
# START_REPLICATION with PostgreSQL's "requested WAL segment ... has already been
# removed", the standby falls back to restore_command (here a plain archive directory,
# empty until that error is seen), gets the removed segments from there, then streams
# from the appliance again and holds the primary's data.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5463
SB_PORT=5464
ws_setup
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up off
psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key)"
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >/dev/null 2>&1 || fail "pgbench -i failed"
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null

# restore_command: a plain archive directory, and a log of what it restored.
ALT=$TEST_DIR/alt-archive
RESTORED=$TEST_DIR/restored.log
mkdir -p "$ALT"
touch "$RESTORED"
chmod 0755 "$ALT"
chmod 0666 "$RESTORED"
cat >"$TEST_DIR/restore.sh" <<-EOF
	#!/bin/sh
	[ -f "$ALT/\$1" ] || exit 1
	cp "$ALT/\$1" "\$2" && echo "\$1" >>"$RESTORED"
EOF
chmod 0755 "$TEST_DIR/restore.sh"

SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$SB_PORT" \
	"$TEST_DIR/restore.sh %f %p"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = 'host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres application_name=sb1'
	wal_receiver_status_interval = 1s
EOF
pg_start "$SDATA" "$NS_R1"
receiver_streaming() {
	[[ "$(psql_at "$NS_R1" "$SB_PORT" "select status from pg_stat_wal_receiver")" == streaming ]]
}
wait_for 30 "the standby streaming from the appliance" receiver_streaming

# (1) SIGKILL of the appliance under load.
bg_start "$TEST_DIR/pgbench.out" pgbench_at "$NS_P" "$PG_PORT" -T 6 -c 2 -R 200 -n
PGBENCH=$BG_PID
sleep 2 # (not a timing assertion: lets the load run before the kill lands)
walshipd_kill "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait "$PGBENCH" || { cat "$TEST_DIR/pgbench.out" >&2; fail "pgbench failed"; }
psql_at "$NS_P" "$PG_PORT" "insert into marker values (1)"
target=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
wait_for 15 "the standby streaming from the restarted appliance" receiver_streaming
log "ok: after a SIGKILL of the appliance under load the standby streams again, at $target"

# (2) The segments the stopped standby needs, removed from the appliance.
# (the standby received up to $target: the segment of it is the one it streams next)
needed=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$target')")
pg_stop "$SDATA"
for i in 2 3; do
	psql_at "$NS_P" "$PG_PORT" "insert into marker values ($i); select pg_switch_wal()" >/dev/null
done
next=$(printf '%s%08X' "${needed:0:16}" $((16#${needed:16:8} + 1)))
wait_archived "$needed"
wait_archived "$next"
mkdir -p "$TEST_DIR/removed"
mv "$RARCHIVE/$needed" "$RARCHIVE/$next" "$TEST_DIR/removed/"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (4)"
target=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
pg_start "$SDATA" "$NS_R1"
removed_seen() {
	grep -q "requested WAL segment $needed has already been removed" "$SDATA.log"
}
wait_for 30 "the standby told that $needed has already been removed" removed_seen
log "ok: $(grep -m 1 "requested WAL segment $needed has already been removed" "$SDATA.log")"
cp "$TEST_DIR/removed/"* "$ALT/"
chmod 0644 "$ALT"/*
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 40
grep -qx "$needed" "$RESTORED" || fail "restore_command did not restore $needed: $(cat "$RESTORED")"
grep -qx "$next" "$RESTORED" || fail "restore_command did not restore $next: $(cat "$RESTORED")"
wait_for 15 "the standby streaming from the appliance again" receiver_streaming
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$SB_PORT"
log "ok: restore_command gave $needed and $next, then the standby streamed from the appliance"
ws_check_daemons
log "PASS"
