#!/bin/bash
# t_98e: the stream catches up (issue 13).  While the primary walshipd is stopped,
# PostgreSQL writes eight segments with synchronous_commit = local (its slot keeps them);
# the walshipd started again streams them from the slot, several in flight at once.  The
# flush position reported to PostgreSQL must reach PostgreSQL's and a synchronous commit
# then return.  (Acknowledgements that arrive out of order, which made such a catch-up hang
# in the benchmark, are covered by test_stream_run in test/unit/daemon/role/decide_test.c:
# here they mostly arrive in order.)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table t (i int, pad text)"
walshipd_stop "$PCONF"
log "primary walshipd stopped; 8 segments written with synchronous_commit = local"
for i in 1 2 3 4 5 6 7 8; do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into t select g, repeat('x', 500) from generate_series(1, 2000) g;
		select pg_switch_wal()" >/dev/null
done
behind=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
flushed() {
	lsn_ge "$(psql_at "$NS_P" "$PG_PORT" "select flush_lsn from pg_stat_replication
		where application_name = '$(conf_get "$PCONF" node_name)'")" "$1"
}
wait_for 90 "walship's flush position to reach $behind" flushed "$behind"
log "walship reported $behind flushed after catching up"
# A synchronous commit returns (bounded: a hung commit fails the test).
bg_start "$TEST_DIR/commit.out" psql_at "$NS_P" "$PG_PORT" \
	"insert into t values (0, 'after the catch-up')"
COMMIT=$BG_PID
wait_for 30 "a synchronous commit after the catch-up" eval '! pid_alive '"$COMMIT"
wait "$COMMIT" || fail "the synchronous commit failed: $(cat "$TEST_DIR/commit.out")"
stored=$(status_counter "$RCONF" files_stored)
((stored >= 8)) || fail "the replica stored $stored segments, not the 8 written meanwhile"
log "ok: $stored segments stored, the synchronous commit returned"
log "PASS"
