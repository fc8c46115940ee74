#!/bin/bash
# t_98s: one replica of two refuses a streamed segment for its content; the other still
# gets it whole (issue 13).  sync_replicas = 1 with two replicas, the usual way to survive
# the loss of either; r1's archive holds a stray file under the name of the next segment,
# and r2's link is throttled, so that r1 refuses the segment while r2 is still being sent
# it.
# - r1 refuses it at its end (CONFLICT): counted on the primary, the bytes it had
#   acknowledged set aside on r1, never removed, its own file kept;
# - the segment goes on to r2, which stores it, equal to pg_wal's, and it is settled as
#   safe (a push of it later is answered "streamed already").  Before, the one refusal
#   failed the segment for every replica (`streamed segment ... failed`): only the
#   replicas that held it at that moment counted past it after a reconnection, and r1's
#   set-aside copy was one of them;
# - synchronous commits in it and after it return (each INSERT waits for a replica);
# - PostgreSQL's flush position for walship passes the segment's end; both replicas keep
#   streaming, no link closed.
# test-early (about 24 s here, 4 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
stream_two_replicas_up on
assert_eq 1 "$(conf_get "$PCONF" sync_replicas)" "sync_replicas"

next=$(stray_next_segment)
log "a stray file stored on r1 as $next, the segment after the current one"
# r2 behind 16 Mbit/s: it has the segment about 8 s after r1 refused it, so the refusal
# comes while the segment is still unsafe (not yet whole on r2).
tc -n "$NS_P" qdisc add dev vr2 root tbf rate 16mbit burst 64kb latency 400ms ||
	skip "tc cannot add a tbf qdisc here"

# Each statement is a synchronous commit: it returns once a replica holds its WAL.
WS_PSQL_TIMEOUT=90
for round in 1 2 3 4; do
	psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
		from generate_series(1, 20000) g" >/dev/null ||
		fail "round $round: the synchronous commit did not return within $WS_PSQL_TIMEOUT s"
	psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
done
unset WS_PSQL_TIMEOUT
log "ok: four rounds of synchronous commits returned across $next"

wait_for 60 "r2 to store $next" test -f "$R2ARCHIVE/$next"
cmp -s "$R2ARCHIVE/$next" "$PDATA/pg_wal/$next" || fail "r2's $next differs from pg_wal's"
log "ok: r2 stored $next, equal to pg_wal's"

wait_for 30 "r1 to refuse $next" grep -q "refused \"$next\"" "$TEST_DIR/ws-r1.log"
grep -q "replica \"$(conf_get "$RCONF" node_name)\" holds different content for \"$next\"" \
	"$TEST_DIR/ws-primary.log" || fail "the primary did not log r1's conflict on $next"
grep -q "streamed segment \"$next\" goes on without the replica that refused it" \
	"$TEST_DIR/ws-primary.log" || fail "the primary did not send $next on to r2"
if grep -E -q "could not archive \"$next\"|streamed segment \"$next\" failed" \
	"$TEST_DIR/ws-primary.log"; then
	grep -E "could not archive \"$next\"|streamed segment \"$next\" failed" \
		"$TEST_DIR/ws-primary.log"
	fail "the primary failed $next for every replica"
fi
(($(status_counter "$PCONF" conflicts) >= 1)) || fail "the primary counted no conflict"
cmp -s "$RARCHIVE/$next" "$TEST_DIR/stray" || fail "r1's stored $next was changed"
log "ok: r1 refused $next and kept its own file"

flush=$(assert_flush_past_segment "$next")
log "ok: PostgreSQL's flush position for walship is $flush, past $next's end"
assert_eq 2 "$(walship_status "$PCONF" --json |
	jq '[.peers[] | select(.state == "streaming")] | length')" "replicas still streaming"
log "PASS"
