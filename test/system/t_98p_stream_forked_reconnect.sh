#!/bin/bash
# t_98p: a failover to a standby that had less of the timeline than walship streamed.  The
# primary walshipd streams from PostgreSQL (pg_conninfo names it and then a standby, as
# libpq's multi-host strings do); the standby is a base backup that receives nothing, so
# its WAL ends before what walship holds.  The primary PostgreSQL stops, the standby is
# promoted: timeline 2 forks before walship's position on timeline 1, which is not in the
# new server's history (PostgreSQL refuses START_REPLICATION there on every attempt).
# walship goes on at the fork's segment start on timeline 2: the replica holds
# 00000002.history and the new timeline's segment as in the promoted server's pg_wal, and a
# synchronous commit on the promoted server (walship its synchronous standby) completes.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
S_PORT=5433
SDATA=$TEST_DIR/pg-standby
PRIMARY_CONF_EXTRA=("pg_conninfo='host=$(pg_socket_dir "$TEST_DIR/pg-primary"),$(pg_socket_dir "$SDATA") port=5432,$S_PORT user=postgres'")
walship_stream_up off
psql_at "$NS_P" "$PG_PORT" "create table t (i int)"
# The standby's WAL ends where the base backup's does.
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_P" "$S_PORT" false
cat >>"$SDATA/postgresql.conf" <<EOF
synchronous_commit = on
EOF
source_streaming() {
	walship_status "$PCONF" --json | jq -e '.source_state == "streaming"' >/dev/null
}
wait_for 30 "the primary walshipd streaming" source_streaming

for _ in 1 2; do
	psql_at "$NS_P" "$PG_PORT" "insert into t select generate_series(1, 20000)"
	psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
done
psql_at "$NS_P" "$PG_PORT" "insert into t values (-1)"
ins=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_for 30 "the replica durable up to $ins" replica_holds "$(lsn_to_int "$ins")"
pg_stop "$PDATA" fast

pg_start "$SDATA" "$NS_P"
in_ns "$NS_P" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null
fork=$(awk -F'\t' '$1 == 1 {print $2}' "$SDATA/pg_wal/00000002.history")
[[ -n "$fork" ]] || fail "no fork of timeline 1 in the promoted standby's history"
lsn_ge "$ins" "$fork" || fail "walship's $ins is not past the fork $fork"
log "the standby is promoted: timeline 2 forks at $fork, walship holds timeline 1 up to $ins"

on_timeline_2() {
	walship_status "$PCONF" --json |
		jq -e '.source_state == "streaming" and .timeline == 2' >/dev/null
}
wait_for 30 "the primary walshipd streaming timeline 2" on_timeline_2
grep -q "past the server's fork from it at $fork: going on at the fork on timeline 2" \
	"$TEST_DIR/ws-primary.log" || fail "the restart at the fork is not logged"
# walship is the promoted server's synchronous standby (synchronous_standby_names came with
# the base backup): a commit there completes once the replica holds it.
in_ns "$NS_P" timeout 30 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		"host=$(pg_socket_dir "$SDATA") port=$S_PORT user=postgres dbname=postgres" \
		-c "insert into t values (-2)" ||
	fail "a synchronous commit on the promoted server did not complete"
seg2=$(pg_segment_name "$NS_P" "$S_PORT")
[[ "$seg2" == 00000002* ]] || fail "the promoted standby writes $seg2, not timeline 2"
psql_at "$NS_P" "$S_PORT" "select pg_switch_wal()" >/dev/null
wait_for 30 "00000002.history on the replica" test -f "$RARCHIVE/00000002.history"
wait_for 30 "segment $seg2 of timeline 2 on the replica" test -f "$RARCHIVE/$seg2"
assert_file_identical "$SDATA/pg_wal/00000002.history" "$RARCHIVE/00000002.history"
assert_file_identical "$SDATA/pg_wal/$seg2" "$RARCHIVE/$seg2"
assert_no_refusal_after_fork "$TEST_DIR/ws-primary.log"
log "ok: $(grep -m1 -o "streaming reached .*" "$TEST_DIR/ws-primary.log"); a synchronous commit on timeline 2 completed; $seg2 as in the promoted server's pg_wal"
log "PASS"
