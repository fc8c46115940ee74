#!/bin/bash
# t_99p: `walship hold` of an application name that two standbys stream under (as under
# PostgreSQL's default name, "walreceiver") holds them where the least advanced stands:
# the flush position it reported.  Two pg_receivewal named "held" stream from the
# appliance's pg_listen (--synchronous: each flush reported at once); one is stopped
# (SIGSTOP), the other goes on as WAL is written.  The hold's position, which is also the
# retention floor kept for them while they are away, is the stopped one's flush, before
# what the other was sent.
# On the build before, it was the furthest position sent: the stopped one, had it gone
# away, would have asked again for WAL retention could remove.
# Then, released and gone, a delay of one second added for "held" by a reload: a
# pg_receivewal of that name is sent the WAL stored before the reload once its commits
# are a second old (before, nothing until more WAL came).
# test-early (about 21 s here, 6 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5445
ws_setup
require_cmds jq
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up off
switch_segments 1 >/dev/null

# receivewal DIR: a pg_receivewal named "held" into DIR, reporting each flush at once.
receivewal() {
	mkdir -p "$1" && chown postgres:postgres "$1"
	bg_start "$1.out" in_ns "$NS_P" runuser -u postgres -- \
		"$PG_BIN/pg_receivewal" -d "host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres
		application_name=held" -D "$1" -n --synchronous
}
# held_streaming N: N standbys named "held" stream.
held_streaming() {
	[[ "$(walship_status "$RCONF" --json |
		jq '[.standbys[] | select(.application_name == "held" and .state == "streaming")] |
			length')" == "$1" ]]
}
# held_flushed_at_least LSN: every standby named "held" reported a flush at LSN or past.
held_flushed_at_least() {
	local f
	for f in $(walship_status "$RCONF" --json |
		jq -r '.standbys[] | select(.application_name == "held") | .flush_lsn // "0/0"'); do
		lsn_ge "$f" "$1" || return 1
	done
}

receivewal "$TEST_DIR/rw-a"
wait_for 20 "the first pg_receivewal streaming" held_streaming 1
mapfile -t before < <(ns_pids "$NS_P" pg_receivewal)
receivewal "$TEST_DIR/rw-b"
wait_for 20 "both pg_receivewal streaming" held_streaming 2
b_pid=
for pid in $(ns_pids "$NS_P" pg_receivewal); do
	[[ " ${before[*]} " == *" $pid "* ]] || b_pid=$pid
done
[[ -n "$b_pid" ]] || fail "the second pg_receivewal's process not found"
# Commits flushed locally before they return (synchronous_commit is off on this primary):
# pg_current_wal_lsn() then stands past them, not behind them in the WAL buffers.
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local; create table t99p (i int);
	insert into t99p values (1)"
lsn=$(pg_current_lsn "$NS_P" "$PG_PORT")
wait_for 20 "both to report a flush at $lsn" held_flushed_at_least "$lsn"

# The second stopped; the first goes on.
kill -STOP "$b_pid"
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
	insert into t99p select generate_series(1, 10000)"
lsn2=$(pg_current_lsn "$NS_P" "$PG_PORT")
a_past() {
	local f
	for f in $(walship_status "$RCONF" --json |
		jq -r '.standbys[] | select(.application_name == "held") | .flush_lsn // "0/0"'); do
		lsn_ge "$f" "$lsn2" && return 0
	done
	return 1
}
wait_for 20 "the first to report a flush at $lsn2" a_past

out=$("$WALSHIP" hold -c "$RCONF" held) || fail "walship hold held failed"
log "ok: $out"
json=$(walship_status "$RCONF" --json)
held_at=$(jq -er '[.standbys[] | select(.application_name == "held")][0].send_limit' <<<"$json")
flushes=$(jq -r '[.standbys[] | select(.application_name == "held") | .flush_lsn] | join(" ")' \
	<<<"$json")
kill -CONT "$b_pid"
lsn_ge "$lsn2" "$held_at" && ! lsn_ge "$held_at" "$lsn2" ||
	fail "held at $held_at, not before $lsn2 (the stopped standby flushed only up to $lsn)"
lsn_ge "$held_at" "$lsn" || fail "held at $held_at, before the stopped standby's flush $lsn"
log "ok: held at $held_at (flush positions: $flushes): the stopped standby's, before $lsn2"

# A first delay, by a reload: WAL stored before it is sent once due, without waiting for
# more WAL (before, a delay added while nothing was delayed or held sent nothing until
# new WAL came, which on a quiet cluster may be never).
for pid in $(ns_pids "$NS_P" pg_receivewal); do kill "$pid"; done
wait_for 10 "no standby named held streaming" held_streaming 0
"$WALSHIP" release -c "$RCONF" held >/dev/null || fail "walship release held failed"
# Nothing delayed or held when this WAL is stored: its commits are not indexed.
lsn_pre=$(pg_current_lsn "$NS_P" "$PG_PORT")
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
	insert into t99p select generate_series(1, 1000)"
lsn3=$(pg_current_lsn "$NS_P" "$PG_PORT")
replica_durable_at() {
	lsn_ge "$(walship_status "$PCONF" --json | jq -r '.peers[0].flush_lsn // "0/0"')" "$1"
}
wait_for 20 "the replica to store up to $lsn3" replica_durable_at "$lsn3"
echo "standby_delay = held:1s" >>"$RCONF"
kill -HUP "${WS_DAEMON_PID[$RCONF]}"
wait_for 10 "the replica to load standby_delay" \
	grep -q 'parameter "standby_delay" changed to "held:1s"' "$TEST_DIR/ws-r1.log"
receivewal "$TEST_DIR/rw-a"
# held_past LSN: a standby named "held" streams, and reported a flush past LSN (it is sent
# up to the end of the last commit due, which pg_current_wal_lsn() may stand past).
held_past() {
	local f
	for f in $(walship_status "$RCONF" --json | jq -r '.standbys[] |
		select(.application_name == "held" and .state == "streaming") |
		.flush_lsn // "0/0"'); do
		[[ "$f" != "$1" ]] && lsn_ge "$f" "$1" && return 0
	done
	return 1
}
wait_for 10 "the delayed standby to be sent past $lsn_pre (its commits 1 s old)" held_past "$lsn_pre"
log "ok: standby_delay added by a reload: the standby was sent the WAL stored before it, past $lsn_pre (stored up to $lsn3)"
ws_check_daemons
log "PASS"
