#!/bin/bash
# t_98q: PostgreSQL goes away while the primary walshipd's stream is paused (its only
# replica is stopped: four streamed segments are not yet safe, and reading from
# PostgreSQL waits).  Paused, the source reads nothing, so the silence of a server gone
# cannot show; after two status intervals (pg_status_interval = 1s) it leaves streaming,
# and a server that does not answer within connect_timeout (3s) is taken as gone, as
# `walship status` then says, and connected to again with backoff.  Twice:
# - the walsender stopped (SIGSTOP) as soon as reading waits, still streaming: its host's
#   TCP acknowledges walship's status updates, and would for ever;
# - every packet between walship and PostgreSQL dropped (a host cut off: no FIN, no RST)
#   once the source is out of streaming.
# Each time PostgreSQL comes back and the replica starts again, and at the end the replica
# holds every segment equal to pg_wal's, without a gap: nothing skipped.
# test-early (about 27 s here, 8 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

require_cmds iptables jq
ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
PRIMARY_CONF_EXTRA=(pg_status_interval=1s connect_timeout=3s reconnect_max=2s)
walship_stream_up on
APP=$(conf_get "$PCONF" node_name)
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)"
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $lsn" replica_holds "$(lsn_to_int "$lsn")"

# log_has_at_least N TEXT: the primary walshipd's log has N lines with TEXT (a regex).
log_has_at_least() {
	(($(grep -c -- "$2" "$TEST_DIR/ws-primary.log" || true) >= $1))
}
# pause_stream: stop the replica walshipd and write WAL that does not wait for it until the
# primary walshipd stops reading from PostgreSQL (says so once more); no more after that.
PAUSES=0
pause_stream() {
	local start now i
	PAUSES=$((PAUSES + 1))
	walshipd_stop "$RCONF"
	start=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")")
	for ((i = 0; i < 40; i++)); do
		psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
			insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g"
		! log_has_at_least "$PAUSES" 'reading from PostgreSQL waits' || break
		now=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")")
		((now - start < 12 * 16 * 1024 * 1024)) || break
	done
	wait_for 60 "the primary walshipd to stop reading from PostgreSQL" \
		log_has_at_least "$PAUSES" 'reading from PostgreSQL waits'
}
# gone_again: the source takes the server as gone once more: an ERROR line of the primary
# walshipd saying that reading waited, and its status says the same.
GONE=0
gone_again() {
	GONE=$((GONE + 1))
	wait_for 40 "walship to take the server as gone" \
		log_has_at_least "$GONE" 'ERROR: .* while reading from it waits (paused)'
	walship_status "$PCONF" --json |
		jq -e '.source_error | endswith("while reading from it waits (paused)")' >/dev/null ||
		fail "walship status does not say why: $(walship_status "$PCONF" | grep stream)"
	log "ok: $(walship_status "$PCONF" | grep 'stream source error:')"
}
connects_above() { (($(status_counter "$PCONF" source_connects) > $1)); }
# replica_back: start the replica walshipd again and wait until it holds what PostgreSQL
# flushed, through a new stream.
replica_back() {
	local flushed
	walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-again.log"
	wait_replica_streaming "$PCONF" 20
	flushed=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
	wait_for 120 "the replica to hold up to $flushed" replica_holds "$(lsn_to_int "$flushed")"
	log "ok: the replica holds up to $flushed"
}

log "episode 1: the walsender stopped as soon as reading waits"
pause_stream
walsender=$(psql_at "$NS_P" "$PG_PORT" "select pid from pg_stat_replication
	where application_name = '$APP'")
[[ "$walsender" =~ ^[0-9]+$ ]] || fail "no walsender for $APP: $walsender"
connects=$(status_counter "$PCONF" source_connects)
kill -STOP "$walsender"
gone_again
kill -CONT "$walsender"
wait_for 40 "the source to connect again" connects_above "$connects"
replica_back

log "episode 2: every packet between walship and PostgreSQL dropped, out of streaming"
pause_stream
wait_for 20 "the source to leave streaming" \
	log_has_at_least "$PAUSES" 'WAL streaming stops until it goes on'
connects=$(status_counter "$PCONF" source_connects)
drop=(-p tcp -m multiport --ports "$PG_PORT" -j DROP)
in_ns "$NS_P" iptables -I INPUT "${drop[@]}"
gone_again
refused='ERROR: .*timeout after 3000 ms connecting to the server'
n=$(grep -c -- "$refused" "$TEST_DIR/ws-primary.log" || true)
wait_for 40 "walship to try to connect again" log_has_at_least "$((n + 1))" "$refused"
in_ns "$NS_P" iptables -D INPUT "${drop[@]}"
wait_for 40 "the source to connect again" connects_above "$connects"
replica_back
grep -E 'stops until|while reading from it waits' "$TEST_DIR/ws-primary.log" |
	sed 's/^[^]]*] /  primary walshipd: /'

final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
assert_stream_equals_pg_wal "$final"
log "PASS"
