#!/bin/bash
# t_99f: synchronous_commit = remote_apply through the appliance (issue 14).  The primary
# walshipd is PostgreSQL's synchronous standby (synchronous_standby_names names it); a
# standby streams from the replica appliance's pg_listen.  Its apply reports travel to the
# replica walshipd, upstream to the primary walshipd (APPLIED), which reports them to
# PostgreSQL as its apply position.  So a COMMIT under remote_apply returns only once the
# standby has applied it: each row is visible on the standby the moment its COMMIT
# returns (queried right after, no waiting), 20 times in a row; and pg_stat_replication
# shows walship's replay_lsn at the primary's position.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5453
SB_PORT=5454
ws_setup
require_cmds jq
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table ra (i int primary key)"
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null

SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$SB_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = 'host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres application_name=sb1'
	wal_receiver_status_interval = 10s
EOF
pg_start "$SDATA" "$NS_R1"
receiver_streaming() {
	[[ "$(psql_at "$NS_R1" "$SB_PORT" "select status from pg_stat_wal_receiver")" == streaming ]]
}
wait_for 30 "the standby streaming from the appliance" receiver_streaming
wait_standby_lsn "$NS_R1" "$SB_PORT" "$(psql_at "$NS_P" "$PG_PORT" \
	"select pg_current_wal_flush_lsn()")" 30

node=$(conf_get "$PCONF" node_name)
commit_ms=0
for i in $(seq 1 20); do
	t0=${EPOCHREALTIME/./}
	# (no statement_timeout: a COMMIT that never returns is the failure, caught by the
	# 20 s psql_at waits for its answer; a cancelled wait would commit locally)
	WS_PSQL_TIMEOUT=20 psql_at "$NS_P" "$PG_PORT" \
		"set synchronous_commit = remote_apply; insert into ra values ($i)" ||
		fail "COMMIT $i under remote_apply did not return"
	commit_ms=$((commit_ms + (${EPOCHREALTIME/./} - t0) / 1000))
	seen=$(psql_at "$NS_R1" "$SB_PORT" "select count(*) from ra where i = $i")
	assert_eq 1 "$seen" "row $i on the standby right after its COMMIT returned"
done
log "ok: 20 COMMITs under remote_apply, each visible on the standby when it returned" \
	"(psql and COMMIT: $((commit_ms / 20)) ms each on average, measured, not asserted)"
replay=$(psql_at "$NS_P" "$PG_PORT" "select replay_lsn from pg_stat_replication
	where application_name = '$node'")
flush=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
lsn_ge "$replay" "$(psql_at "$NS_R1" "$SB_PORT" "select pg_last_wal_replay_lsn()")" ||
	fail "walship's replay_lsn $replay is behind the standby's"
log "ok: pg_stat_replication: walship replay_lsn $replay (primary flushed $flush)"
reported=$(walship_status "$PCONF" --json | jq -r .source_apply_lsn)
(($(lsn_to_int "$replay") <= reported)) ||
	fail "walship status source_apply_lsn $reported is behind PostgreSQL's replay_lsn $replay"
ws_check_daemons
log "PASS"
