#!/bin/bash
# t_99d: a delayed and held standby on the appliance (issue 14, item 2).  A PostgreSQL 15
# primary streams to a replica walshipd (walship_stream_up) serving pg_listen with
# standby_delay = sb1:20s; a standby (application_name sb1, no restore_command: the
# appliance is its only source) streams from it.
#   (a) a committed row appears on the standby no sooner than 20 s after its commit time
#       (the primary's commit timestamp, track_commit_timestamp): the standby is polled and
#       the last time it did not show the row is past half the delay, the first
#       time it did at least 20 s;
#   (b) `walship hold sb1`, then DROP TABLE on the primary; the appliance restarted without
#       the delay keeps the hold (walship status shows it, the standby receives nothing past
#       it);
#   (c) `walship release sb1 --before` the drop's commit time: the standby receives WAL up to
#       just before the drop's commit record; promoted, it still has the table.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5433
SB_PORT=5434
DELAY_S=20
ws_setup
require_cmds jq bc
mkdir -p "$TEST_DIR/ws-r1"
HBA=$TEST_DIR/ws-r1/hba.conf
printf '%s\n' "# TYPE     ROLE     NODE_NAME  CERT_NAME  ADDRESS" \
	"hostnossl  standby  postgres   all        10.77.0.0/16" >"$HBA"
chmod 0644 "$HBA"
REPLICA_CONF_EXTRA=("pg_listen=0.0.0.0:$PG_LISTEN_PORT" "hba_file=$HBA"
	"standby_delay=sb1:${DELAY_S}s")
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "alter system set track_commit_timestamp = on" >/dev/null
pg_stop "$PDATA" && pg_start "$PDATA" "$NS_P"
wait_for 30 "walship back as a synchronous standby" pg_sync_standby "$NS_P" "$PG_PORT" \
	"$(conf_get "$PCONF" node_name)"
psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key)"
psql_at "$NS_P" "$PG_PORT" "create table precious (v text)"
psql_at "$NS_P" "$PG_PORT" "insert into precious values ('keep me')"

SDATA=$TEST_DIR/pg-standby
pg_standby_on_appliance "$SDATA" "$SB_PORT" sb1
sb() { psql_at "$NS_R1" "$SB_PORT" "$1"; }
receiver_streaming() {
	[[ "$(sb "select status from pg_stat_wal_receiver")" == streaming ]]
}
wait_for 30 "the standby streaming from the appliance" receiver_streaming

# (a) the delay, measured: the commit time on the primary, then the standby polled.  A
# query that finds no row, begun at T, says the row was not there at T or later; one
# that finds it, ended at T, that it was there by T.  So: too early if a query ended
# before the delay had passed and found the row; and the last query without it must have
# begun well into the delay (past its half: one poll of psql on a loaded machine can
# take seconds, so "near its end" would be a timing assertion), or the wait proved
# nothing: without a delay the row is there within milliseconds.
psql_at "$NS_P" "$PG_PORT" "insert into marker values (1)"
commit_time=$(psql_at "$NS_P" "$PG_PORT" \
	"select extract(epoch from pg_xact_commit_timestamp(xmin)) from marker where i = 1")
last_unseen=0
first_seen=0
deadline=$((SECONDS + DELAY_S + 25))
while ((SECONDS < deadline)); do
	began=$EPOCHREALTIME
	if [[ "$(sb "select count(*) from marker" 2>/dev/null)" == 1 ]]; then
		first_seen=$EPOCHREALTIME
		break
	fi
	last_unseen=$began
	ws_sleep 0.2
done
[[ "$first_seen" != 0 ]] || fail "the row committed at $commit_time never reached the standby"
unseen_after=$(echo "$last_unseen - $commit_time" | bc)
seen_after=$(echo "$first_seen - $commit_time" | bc)
(($(echo "$seen_after >= $DELAY_S" | bc))) ||
	fail "the row was on the standby ${seen_after}s after its commit, before the ${DELAY_S}s delay"
(($(echo "$unseen_after >= $DELAY_S / 2" | bc))) ||
	fail "the last look without the row was ${unseen_after}s after its commit, not past half the ${DELAY_S}s delay (seen by ${seen_after}s)"
log "ok: delayed ${DELAY_S}s: the row was not on the standby ${unseen_after}s after its commit, and was ${seen_after}s after"
walship_status "$RCONF" --json | jq -e '.standbys[] | select(.application_name == "sb1") |
	.delay_ms == 20000' >/dev/null || fail "walship status does not show sb1's delay"
# standby_delay reloads on SIGHUP (docs/configuration.md): shorter, so that the hold below
# is where sb1 was sent up to.  keepalive_timeout with it, past the 30 s (its default) that
# sb1's connection has for TCP_USER_TIMEOUT: the reload reaches that too.
sb1_user_timeout_is() {
	[[ "$(tcp_user_timeouts "${WS_DAEMON_PID[$RCONF]}" "$PG_LISTEN_PORT")" == "$1" ]]
}
sb1_user_timeout_is 30000 || fail "sb1's connection does not have TCP_USER_TIMEOUT 30000 ms"
sed -i "s/^standby_delay = .*/standby_delay = sb1:$((DELAY_S / 2))s/" "$RCONF"
grep -q "^standby_delay = sb1:$((DELAY_S / 2))s" "$RCONF" || fail "standby_delay not rewritten"
echo "keepalive_timeout = 45s" >>"$RCONF"
kill -HUP "${WS_DAEMON_PID[$RCONF]}"
delay_is() {
	walship_status "$RCONF" --json | jq -e --argjson ms "$1" '.standbys[] |
		select(.application_name == "sb1") | .delay_ms == $ms' >/dev/null
}
wait_for 10 "sb1's delay to reload as $((DELAY_S / 2))s" delay_is $((DELAY_S / 2 * 1000))
wait_for 10 "sb1's connection to take TCP_USER_TIMEOUT 45 s" sb1_user_timeout_is 45000
log "ok: standby_delay and keepalive_timeout reloaded on SIGHUP: sb1 delayed $((DELAY_S / 2))s"

# (b) hold, drop the table, restart the appliance without the delay: the hold stays.
out=$("$WALSHIP" hold -c "$RCONF" sb1) || fail "walship hold sb1 failed"
log "ok: $out"
# Asked of the primary's walshipd, which serves no standby: said so (exit 1), not an
# "unknown request".
rc=0
out=$("$WALSHIP" hold -c "$PCONF" sb1 2>&1) || rc=$?
assert_eq 1 "$rc" "walship hold asked of the primary"
[[ "$out" == *"this walshipd is a primary"* ]] ||
	fail "walship hold asked of the primary did not say why: $out"
held_at=$(walship_status "$RCONF" --json | jq -er '.standbys[] |
	select(.application_name == "sb1") | .send_limit')
psql_at "$NS_P" "$PG_PORT" "drop table precious"
drop_time=$(psql_at "$NS_P" "$PG_PORT" \
	"select (pg_last_committed_xact()).timestamp at time zone 'UTC'")
after_drop=$(pg_current_lsn "$NS_P" "$PG_PORT")
psql_at "$NS_P" "$PG_PORT" "insert into marker values (2)"
walshipd_stop "$RCONF"
sed -i '/^standby_delay/d' "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
held() {
	walship_status "$RCONF" --json | jq -e --arg at "$held_at" '.standbys[] |
		select(.application_name == "sb1" and .state == "streaming") |
		select((.hold | startswith("held at")) and .send_limit == $at)'
}
wait_for 30 "sb1 streaming again, held at $held_at after the restart" held
psql_at "$NS_P" "$PG_PORT" "insert into marker values (3)"
received=$(sb "select pg_last_wal_receive_lsn()")
lsn_ge "$held_at" "$received" ||
	fail "the held standby received up to $received, past the hold at $held_at"
walship_status "$RCONF" | grep -q "hold:            held at $held_at" ||
	fail "walship status (text) does not show the hold"
log "ok: the hold at $held_at survived the restart; the standby received up to $received"

# (c) release up to just before the drop's commit, promote: the table is there.
out=$("$WALSHIP" release -c "$RCONF" sb1 --before "$drop_time") ||
	fail "walship release sb1 --before '$drop_time' failed"
log "ok: $out"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (4)"
limit=$(walship_status "$RCONF" --json | jq -er '.standbys[] |
	select(.application_name == "sb1") | .send_limit')
[[ "$limit" != "$held_at" ]] && lsn_ge "$limit" "$held_at" && ! lsn_ge "$limit" "$after_drop" ||
	fail "the send limit $limit after release --before is not past the hold $held_at and before the drop's end $after_drop"
received_limit() { lsn_ge "$(sb "select pg_last_wal_receive_lsn()")" "$limit"; }
wait_for 30 "the standby to receive up to $limit" received_limit
log "ok: released up to $limit (the drop's commit ends before $after_drop)"
as_postgres_in "$NS_R1" "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null ||
	fail "could not promote the standby"
promoted() { [[ "$(sb "select pg_is_in_recovery()")" == f ]]; }
wait_for 30 "the standby to end recovery" promoted
assert_eq "keep me" "$(sb "select v from precious")" "the promoted standby's precious table"
log "ok: promoted, the standby has the table dropped on the primary"
