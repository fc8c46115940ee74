#!/bin/bash
# t_98o: no replica's durable position counts past a streamed segment that failed (issue
# 13).  The only replica holds a stray file under the next segment's name; that segment
# streams, is acknowledged durable, and is refused at its end (CONFLICT): it fails, and
# no replica holds it (the refusing one set it aside in .refused, which walship fetch
# does not serve): the flush reported stays before its end, where the build before
# t_98r counted the refusing replica as holding it and went on past it with that
# replica's next segment.  The replica is then replaced by a new one (an empty archive,
# another name): it is sent the segments after the failed one and stores them, but its
# durable position for PostgreSQL must stay before the failed segment's end, since it
# does not hold that segment; on the build before 2a31234 it counted past it (the failed
# segment counted as settled).  Last, the failed segment is pushed to the new replica from
# pg_wal (what the archiver does once what refused it is fixed), the replica restarts
# (its acknowledgements start again: the segments it stored since are not sent again),
# and its durable position counts past the failed segment once more: a synchronous commit
# returns.  On the build before, the failed segment, held by no replica it had named,
# kept the replica's position from beginning anywhere after it for good, and every
# synchronous commit waited until the primary walshipd restarted.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
SEG=$((16 * 1024 * 1024))
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)" >/dev/null
failed=$(psql_at "$NS_P" "$PG_PORT" \
	"select pg_walfile_name(pg_current_wal_insert_lsn() + $SEG)")
head -c "$SEG" /dev/urandom >"$RARCHIVE/$failed"
log "a stray file stored as $failed, the segment after the current one"
# Commits that do not wait (synchronous_commit = local): those after the failed segment
# would wait, since no replica's position counts past it.
for _ in 1 2; do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g;
		select pg_switch_wal()" >/dev/null
done
wait_for 60 "the replica to refuse $failed" grep -q \
	"could not archive \"$failed\": replica \"ws-r1\" refused it" "$TEST_DIR/ws-primary.log"
failed_end=$(((0x${failed:8:8} * 256 + 0x${failed:16:8} + 1) * SEG))
log "ok: $failed failed; it ends at $failed_end"

log "the replica replaced: an empty archive, the name ws-r1b"
walshipd_stop "$RCONF"
before=$(walship_status "$PCONF" --json | jq -r '.source_flush_lsn')
[[ "$before" =~ ^[0-9]+$ ]] || fail "no source_flush_lsn in the primary's status: $before"
find "$RARCHIVE" -mindepth 1 -delete
sed -i 's/^node_name = .*/node_name = ws-r1b/' "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1b.log"
wait_replica_streaming "$PCONF" 20
after=$(psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
	insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g;
	select pg_walfile_name(pg_current_wal_insert_lsn())")
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local; select pg_switch_wal()" >/dev/null
wait_for 60 "the new replica to store $after, after the failed segment" test -f \
	"$RARCHIVE/$after"
# What the primary walshipd reports as flushed stays where the replaced replica left it
# (before the end of the failed segment, which it refused), and PostgreSQL was told no
# more: at most the failed segment's start, which the new replica may reach by storing
# the segment before it (sent it as a newcomer: `before` may have been read while the
# last byte of that one, which counts only at its ACK, was not counted yet).
failed_start=$((failed_end - SEG))
reported=$(walship_status "$PCONF" --json | jq -r '.source_flush_lsn')
flush=$(psql_at "$NS_P" "$PG_PORT" "select coalesce(max(flush_lsn), '0/0')
	from pg_stat_replication where application_name = '$(conf_get "$PCONF" node_name)'")
[[ "$reported" =~ ^[0-9]+$ ]] || fail "no source_flush_lsn in the primary's status: $reported"
((reported <= failed_start)) ||
	fail "the flush reported moved from $before to $reported: the new replica's WAL counts past $failed, which it does not hold"
(($(lsn_to_int "$flush") <= failed_start)) ||
	fail "PostgreSQL was told $flush is flushed, past the start of $failed ($failed_start)"
((before < failed_end)) ||
	fail "the flush reported, $before, is past the end of $failed ($failed_end), which the" \
		"replica refused"
[[ ! -f "$RARCHIVE/$failed" ]] || fail "the new replica holds $failed after all"
grep -q "streamed segment \"$failed\" failed: 0 replica(s) hold it" "$TEST_DIR/ws-primary.log" ||
	fail "the primary walshipd did not say that $failed failed, held by no replica"
log "ok: the new replica stored $after; the flush reported stays at $reported (it was" \
	"$before; PostgreSQL: $flush), not past the start of $failed"

log "the failed segment pushed to the new replica, which then restarts"
[[ -f "$PDATA/pg_wal/$failed" ]] || fail "$failed left pg_wal (walship's slot should keep it)"
run_capture "$TEST_DIR/push-failed.out" "$WALSHIP" push -c "$PCONF" "$PDATA/pg_wal/$failed" ||
	fail "walship push of $failed failed: $(cat "$TEST_DIR/push-failed.out")"
cmp -s "$PDATA/pg_wal/$failed" "$RARCHIVE/$failed" || fail "the new replica's $failed differs"
grep -q "replica \"ws-r1b\" holds the failed segment \"$failed\" now" \
	"$TEST_DIR/ws-primary.log" || fail "the primary walshipd did not take ws-r1b as holding $failed"
walshipd_stop "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1b-2.log"
wait_replica_streaming "$PCONF" 20
# A synchronous commit (the cluster's synchronous_standby_names names walship) returns
# once the replica's position counts past the failed segment; bounded, so that a hang
# fails the test instead of stopping it.
WS_PSQL_TIMEOUT=60 psql_at "$NS_P" "$PG_PORT" "insert into ws_fill values (-1, 'sync')" \
	>/dev/null ||
	fail "a synchronous commit did not return within 60 s: the replica's position does" \
		"not count past $failed"
reported=$(walship_status "$PCONF" --json | jq -r '.source_flush_lsn')
((reported > failed_end)) || fail "the flush reported, $reported, is not past $failed's end"
log "ok: a synchronous commit returned; the flush reported is $reported, past $failed"
log "PASS"
