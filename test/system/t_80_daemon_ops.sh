#!/bin/bash
# How walshipd behaves as a daemon: configuration errors name file and line; max_senders
# admits no more replicas than it says; a replica refuses pushes (one direction only);
# with fewer than sync_replicas replicas a push fails after push_timeout with a one-line
# reason, and succeeds again once the replica is back (it reconnects by itself); SIGHUP
# reloads reloadable keys (a shorter push_timeout fails a push already waiting at the new
# timeout, not at the one it began with), says what the file leaves unguarded (no access
# rules, pushes answered with no copy anywhere) as the start does, and a reload that
# breaks a rule across keys changes nothing and says so once; SIGTERM stops cleanly and
# removes the control socket.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PRIMARY_CONF_EXTRA=(push_timeout=2s max_senders=1)
walship_daemons_up
walship_primary_up 1
# PostgreSQL's own archiver ships this segment too; the pushes below are retries of it.
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
segpath=$SCRATCH/$seg
cp "$PDATA/pg_wal/$seg" "$segpath"
chown postgres:postgres "$segpath"

log "a bad configuration is refused with file and line"
bad=$TEST_DIR/bad.conf
printf 'role = primary\nno_such_key = 1\n' >"$bad"
run_capture "$TEST_DIR/bad.out" "$WALSHIPD" -c "$bad"
assert_eq 2 "$RC" "walshipd exit code for an unknown key"
grep -q "unrecognized configuration parameter \"no_such_key\".*line 2" "$TEST_DIR/bad.out" ||
	fail "no file:line in: $(cat "$TEST_DIR/bad.out")"
printf 'role = primary\nmax_senders = lots\n' >"$bad"
run_capture "$TEST_DIR/bad.out" "$WALSHIPD" -c "$bad"
assert_eq 2 "$RC" "walshipd exit code for a bad value"
grep -q "max_senders.*line 2" "$TEST_DIR/bad.out" || fail "bad value not named: $(cat "$TEST_DIR/bad.out")"

log "TLS is the default: without certificates (and no explicit tls = off) walshipd refuses"
printf 'role = primary\nsocket = %s/notls.sock\nspool_dir = %s/notls-spool\n' "$TEST_DIR" \
	"$TEST_DIR" >"$bad"
run_capture "$TEST_DIR/bad.out" timeout 10 "$WALSHIPD" -c "$bad"
# exit 2, a configuration error, which systemd does not restart (every start would fail)
assert_eq 2 "$RC" "walshipd exit code without certificates"
grep -q "tls = on (the default) needs tls_ca_file" "$TEST_DIR/bad.out" ||
	fail "no clear reason: $(cat "$TEST_DIR/bad.out")"

log "max_senders = 1: a second replica is refused"
R2DIR=$TEST_DIR/ws-r2
mkdir -p "$R2DIR"
R2CONF=$R2DIR/walship.conf
write_replica_conf "$R2CONF" "$R2DIR" "$NS_P"
walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "the primary to refuse replica ws-r2" \
	grep -q "too many replicas connected (max_senders = 1)" "$TEST_DIR/ws-r2.log"
refused=$(status_counter "$PCONF" connections_refused)
((refused >= 1)) || fail "connections_refused is $refused"
streaming=$(walship_status "$PCONF" --json | jq '[.peers[] | select(.state == "streaming")] | length')
assert_eq 1 "$streaming" "replicas streaming with max_senders = 1"
walshipd_stop "$R2CONF"

log "a replica's daemon refuses pushes: WAL flows from primary to replica only"
assert_fails "push to the replica's daemon" walship_push_as_postgres "$RCONF" "$segpath"
grep -q "replica" "$TEST_DIR/last.out" || fail "unexpected message: $(cat "$TEST_DIR/last.out")"

log "with the replica gone, a push waits; a shorter push_timeout reloaded fails it, with a reason"
walshipd_stop "$RCONF"
no_replica_streaming() {
	! peers_streaming "$PCONF"
}
wait_for 10 "the primary to notice the replica left" no_replica_streaming
sed -i 's/^push_timeout = .*/push_timeout = 1min/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the primary to load push_timeout = 1min" \
	grep -q 'parameter "push_timeout" changed to "1min"' "$TEST_DIR/ws-primary.log"
failed0=$(status_counter "$PCONF" pushes_failed)
bg_start "$TEST_DIR/push.out" walship_push_as_postgres "$PCONF" "$segpath"
PUSH_PID=$BG_PID
push_waits() { (($(status_counter "$PCONF" pushes_queued) >= 1)); }
wait_for 10 "the push to wait for the replica" push_waits
sed -i 's/^push_timeout = .*/push_timeout = 2s/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
push_ended() { ! pid_alive "$PUSH_PID"; }
# (on the build before, the push waited the whole minute it began with)
wait_for 15 "the waiting push to fail at the shorter push_timeout" push_ended
rc=0
wait "$PUSH_PID" || rc=$?
((rc != 0)) || fail "the push without replicas succeeded: $(cat "$TEST_DIR/push.out")"
grep -q "only 0 of 1 required replica acknowledgements within 2000 ms" "$TEST_DIR/push.out" ||
	fail "unexpected message: $(cat "$TEST_DIR/push.out")"
[[ $(wc -l <"$TEST_DIR/push.out") -eq 1 ]] || fail "push printed more than one line"
failed1=$(status_counter "$PCONF" pushes_failed)
((failed1 > failed0)) || fail "pushes_failed went from $failed0 to $failed1"
# (room for the push below: a 16 MiB segment to a replica just back, on a loaded machine)
sed -i 's/^push_timeout = .*/push_timeout = 20s/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the primary to load push_timeout = 20s" \
	grep -q 'parameter "push_timeout" changed to "20s"' "$TEST_DIR/ws-primary.log"

log "the replica comes back by itself and the retried push succeeds"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 20
assert_exit 0 "push after the replica is back" walship_push_as_postgres "$PCONF" "$segpath"
assert_file_identical "$segpath" "$RARCHIVE/$seg"

log "a reload that breaks a rule across keys is refused whole, and says so once"
# Valid alone; sync_replicas = 2 exceeds the running max_senders = 1 (a restart-only key).
sed -i -e 's/^sync_replicas = .*/sync_replicas = 2/' -e 's/^max_senders = .*/max_senders = 2/' \
	"$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the primary to refuse the reload" \
	grep -q 'no changes were applied' "$TEST_DIR/ws-primary.log"
grep -q '"sync_replicas" (2) cannot be greater than "max_senders" (1)' \
	"$TEST_DIR/ws-primary.log" || fail "the refused reload does not say which rule it breaks"
assert_eq 1 "$(grep -c 'no changes were applied' "$TEST_DIR/ws-primary.log")" \
	"lines saying the reload changed nothing"
sed -i -e 's/^sync_replicas = .*/sync_replicas = 1/' -e 's/^max_senders = .*/max_senders = 1/' \
	"$PCONF"

log "a reload says what the file leaves unguarded, as the start does"
# A second primary, which no replica ever reached: sync_replicas = 0 would answer pushes
# with no copy of the WAL anywhere.
P2DIR=$TEST_DIR/ws-p2
mkdir -p "$P2DIR"
P2CONF=$P2DIR/walship.conf
printf 'host replica all all all\n' >"$P2DIR/hba.conf"
write_primary_conf "$P2CONF" "$P2DIR" "$NS_P" "listen=$(ns_addr "$NS_P"):$((WALSHIP_PORT + 1))" \
	"hba_file=$P2DIR/hba.conf"
walshipd_start "$NS_P" "$P2CONF" "$TEST_DIR/ws-p2.log"
! grep -q "hba_file is not set\|no registered replica" "$TEST_DIR/ws-p2.log" ||
	fail "ws-p2 warns at start: $(cat "$TEST_DIR/ws-p2.log")"
sed -i -e "s/^hba_file = .*/hba_file = ''/" -e 's/^sync_replicas = .*/sync_replicas = 0/' "$P2CONF"
kill -HUP "${WS_DAEMON_PID[$P2CONF]}"
wait_for 10 "ws-p2 to warn that pushes may have no copy anywhere" \
	grep -q "WARNING:  sync_replicas = 0 and no registered replica" "$TEST_DIR/ws-p2.log"
grep -q "hba_file is not set: any replica that reaches" "$TEST_DIR/ws-p2.log" ||
	fail "ws-p2 does not say that the reload admits any replica"
walshipd_stop "$P2CONF"

log "SIGTERM stops both daemons cleanly and removes their sockets"
psock=$(conf_get "$PCONF" socket)
rsock=$(conf_get "$RCONF" socket)
walshipd_stop "$PCONF"
walshipd_stop "$RCONF"
assert_file_absent "$psock"
assert_file_absent "$rsock"
grep -q "walshipd stopped" "$TEST_DIR/ws-primary.log" || fail "primary did not log its stop"
log "PASS"
