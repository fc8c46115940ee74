#!/bin/bash
# t_98t: a replica's durable position does not count past a streamed segment it refused
# while the segment is safe on no other replica (issue 13).  Two replicas,
# sync_replicas = 1; r1's archive holds a stray file under the name of the next segment,
# and r2 is frozen (SIGSTOP: connected, being sent the segment, holding none of it).
# - r1 acknowledges the segment's bytes as they arrive (PROGRESS) and refuses it at its
#   end (CONFLICT): those bytes are set aside in its .refused, which walship fetch does
#   not serve, and its archive holds the stray file under the name; the segment goes on
#   to r2;
# - r1 stores the segment after it: the flush position reported to PostgreSQL stays
#   before the refused segment's end, which no replica holds.  On the build before this
#   test, r1's PROGRESS had taken its position to the segment's end, and the next
#   segment continued it without a gap: the flush passed the refused segment on r1 alone;
# - r2 goes on: it stores the segment, and a synchronous commit returns.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
STREAM_REPLICA2=1
# r2 is frozen below for longer than the default keepalive_timeout: it stays connected.
PRIMARY_CONF_EXTRA=(keepalive_timeout=10min)
walship_stream_up on
R2ARCHIVE=$TEST_DIR/ws-r2/archive
wait_for 30 "both replicas streaming" peers_streaming_are "$PCONF" 2
assert_eq 1 "$(conf_get "$PCONF" sync_replicas)" "sync_replicas"
R1=$(conf_get "$RCONF" node_name)
SEG=$((16 * 1024 * 1024))

next=$(stray_next_segment)
segno=$((0x${next:8:8} * 256 + 0x${next:16:8}))
next_end=$(((segno + 1) * SEG))
log "a stray file stored on r1 as $next (it ends at $next_end); r2 frozen"
kill -STOP "${WS_DAEMON_PID[$R2CONF]}"

# Commits that do not wait (synchronous_commit = local), to the end of $next and into the
# segment after it, which is then completed too.
current() { psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name(pg_current_wal_insert_lsn())"; }
while [[ ! "$(current)" > "$next" ]]; do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g;
		select pg_switch_wal()" >/dev/null
done
after=$(current)
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local; insert into ws_fill values (0);
	select pg_switch_wal()" >/dev/null
log "WAL written past $next, to the end of $after"

wait_for 60 "r1 to refuse $next" grep -q "refused \"$next\"" "$TEST_DIR/ws-r1.log"
wait_for 30 "the primary to send $next on to r2" grep -q \
	"streamed segment \"$next\" goes on without the replica that refused it" \
	"$TEST_DIR/ws-primary.log"
r1_acked() {
	local acked
	acked=$(walship_status "$PCONF" --json |
		jq -r --arg n "$R1" '.peers[] | select(.name == $n) | .last_acked')
	[[ -n "$acked" && ! "$acked" < "$after" ]]
}
wait_for 60 "the primary to have r1's acknowledgement of $after" r1_acked
reported=$(walship_status "$PCONF" --json | jq -r '.source_flush_lsn')
[[ "$reported" =~ ^[0-9]+$ ]] || fail "no source_flush_lsn in the primary's status: $reported"
((reported < next_end)) ||
	fail "the flush reported, $reported, is past $next's end ($next_end): r1 counted past" \
		"the segment it refused, which no replica holds"
flush=$(psql_at "$NS_P" "$PG_PORT" "select coalesce(max(flush_lsn), '0/0')
	from pg_stat_replication where application_name = '$(conf_get "$PCONF" node_name)'")
(($(lsn_to_int "$flush") < next_end)) ||
	fail "PostgreSQL was told $flush is flushed, past $next's end ($next_end)"
log "ok: r1 stored $after; the flush reported stays at $reported (PostgreSQL: $flush)," \
	"before $next's end"

log "r2 goes on"
kill -CONT "${WS_DAEMON_PID[$R2CONF]}"
wait_for 60 "r2 to store $next" test -f "$R2ARCHIVE/$next"
cmp -s "$R2ARCHIVE/$next" "$PDATA/pg_wal/$next" || fail "r2's $next differs from pg_wal's"
WS_PSQL_TIMEOUT=60
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill values (1)" >/dev/null ||
	fail "a synchronous commit did not return within $WS_PSQL_TIMEOUT s once r2 went on"
unset WS_PSQL_TIMEOUT
reported=$(walship_status "$PCONF" --json | jq -r '.source_flush_lsn')
((reported > next_end)) || fail "the flush reported, $reported, is not past $next_end"
if grep -q "streamed segment \"$next\" failed" "$TEST_DIR/ws-primary.log"; then
	fail "the primary failed $next"
fi
log "ok: r2 stored $next; a synchronous commit returned; the flush reported is $reported"
log "PASS"
