#!/bin/bash
# t_98u: a streamed segment one replica refuses while the other is away waits for the
# other, instead of failing (issue 13).  Two replicas, sync_replicas = 1; r2 is stopped
# (registered: the primary holds WAL for it), and r1's archive holds a stray file under
# the name of the next segment.
# - r1 refuses the segment (CONFLICT); the primary does not fail it, it waits for r2
#   (`... goes on without the replica that refused it: ... 1 registered one(s) away`).
#   Before, with no other replica being sent it at that moment, it failed (`streamed
#   segment ... failed: 0 replica(s) hold it`), was never sent to r2, and synchronous
#   commits after it waited until the primary walshipd was restarted;
# - r2 started again stores the segment, equal to pg_wal's, and a synchronous commit
#   returns: PostgreSQL's flush position for walship passes the segment's end;
# - a segment refused while r2 is away again fails once r2 is dropped (`walship replica
#   drop`): nothing is left to make up sync_replicas.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
stream_two_replicas_up local
walshipd_stop "$R2CONF"
wait_for 30 "r2 gone from the primary" peers_streaming_are "$PCONF" 1
next=$(stray_next_segment)
log "r2 stopped; a stray file stored on r1 as $next, the segment after the current one"

fill_and_switch 3
wait_for 60 "r1 to refuse $next" grep -q "refused \"$next\"" "$TEST_DIR/ws-r1.log"
wait_for 30 "the primary to keep $next for r2" grep -q \
	"streamed segment \"$next\" goes on without the replica that refused it: .* 1 registered one(s) away" \
	"$TEST_DIR/ws-primary.log"
if grep -q "streamed segment \"$next\" failed" "$TEST_DIR/ws-primary.log"; then
	grep "streamed segment \"$next\" failed" "$TEST_DIR/ws-primary.log"
	fail "the primary failed $next while r2 was away"
fi
log "ok: r1 refused $next; the primary waits for r2"

walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 60 "r2 to store $next" test -f "$R2ARCHIVE/$next"
cmp -s "$R2ARCHIVE/$next" "$PDATA/pg_wal/$next" || fail "r2's $next differs from pg_wal's"
log "ok: r2 back stored $next, equal to pg_wal's"

WS_PSQL_TIMEOUT=60
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = on; insert into ws_fill values (-1, 'sync')" \
	>/dev/null || fail "a synchronous commit did not return within $WS_PSQL_TIMEOUT s"
unset WS_PSQL_TIMEOUT
flush=$(assert_flush_past_segment "$next")
log "ok: a synchronous commit returned; flush $flush is past $next's end"

log "r2 stopped again, r1 refuses the next segment too; then r2 is dropped"
walshipd_stop "$R2CONF"
wait_for 30 "r2 gone from the primary" peers_streaming_are "$PCONF" 1
next2=$(psql_at "$NS_P" "$PG_PORT" \
	"select pg_walfile_name(pg_current_wal_insert_lsn() + 16777216)")
cp "$TEST_DIR/stray" "$RARCHIVE/$next2"
fill_and_switch 3
wait_for 30 "the primary to keep $next2 for r2" grep -q \
	"streamed segment \"$next2\" goes on without the replica that refused it: .* 1 registered one(s) away" \
	"$TEST_DIR/ws-primary.log"
assert_exit 0 "drop ws-r2" "$WALSHIP" replica drop -c "$PCONF" ws-r2
wait_for 30 "the primary to fail $next2, with no replica left to hold it" grep -q \
	"streamed segment \"$next2\" failed: 0 replica(s) hold it" "$TEST_DIR/ws-primary.log"
log "ok: $(grep -o "could not archive \"$next2\".*" "$TEST_DIR/ws-primary.log" | head -n 1)"
log "PASS"
