#!/bin/bash
# Access rules and the control socket's owner check (issue 6):
# - hba_file admits the replicas its rules name, refuses the rest with the rule (or its
#   absence) in the log, counted in status; SIGHUP reloads it, and a reload with errors
#   keeps the previous rules;
# - the control socket serves only its owner and group: even with its mode widened by
#   hand, another user's push is refused after checking the peer's credentials.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds runuser
HBA=$TEST_DIR/hba.conf
PRIMARY_CONF_EXTRA=("hba_file=$HBA")
# net_create runs inside walship_daemons_up; the subnet is only known after it, so
# start with a rule for ws-r1 from anywhere and narrow it on reload below.
cat >"$HBA" <<EOF
# TYPE  ROLE     NODE_NAME  CERT_NAME  ADDRESS
host    replica  ws-r1      all        all
EOF
walship_daemons_up

start_r2() {
	R2DIR=$TEST_DIR/ws-r2
	mkdir -p "$R2DIR"
	R2CONF=$R2DIR/walship.conf
	write_replica_conf "$R2CONF" "$R2DIR" "$NS_P"
	walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
}
r2_streaming() {
	walship_status "$PCONF" --json |
		jq -e '.peers[] | select(.name == "ws-r2" and .state == "streaming")' >/dev/null
}

log "a replica the rules do not name is refused, with the reason on both sides"
start_r2
wait_for 15 "the primary to refuse ws-r2" \
	grep -q 'no hba_file entry for node "ws-r2", role replica' "$TEST_DIR/ws-primary.log"
wait_for 15 "ws-r2 to log the refusal" grep -q "refused this replica: no hba_file entry" \
	"$TEST_DIR/ws-r2.log"
refused=$(status_counter "$PCONF" hba_refused)
((refused >= 1)) || fail "hba_refused is $refused"
! r2_streaming || fail "ws-r2 streams despite the rules"

log "a reload with errors keeps the rules in force"
printf 'host replica ws-r2 all 10.0.0.0/33\n' >"$HBA"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the primary to refuse the broken rules" \
	grep -q "access rules in \"$HBA\" not reloaded" "$TEST_DIR/ws-primary.log"
refused_before=$(status_counter "$PCONF" hba_refused)
# ws-r2 tries again after the reload, and is refused by the rules kept (looked at
# before its next attempt, the check would pass whatever the reload did).
refused_again() { (($(status_counter "$PCONF" hba_refused) > refused_before)); }
wait_for 20 "ws-r2 to be refused again after the reload" refused_again
! r2_streaming || fail "ws-r2 admitted by a broken rules file"

log "SIGHUP: rules naming ws-r2 from its subnet admit it"
cat >"$HBA" <<EOF
host    replica  ws-r1,ws-r2  all  $NET_PREFIX.0/24
reject  all      all          all  all
EOF
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the reload" grep -q "access rules reloaded from \"$HBA\" (2 rule(s))" \
	"$TEST_DIR/ws-primary.log"
wait_for 20 "ws-r2 to be admitted" r2_streaming
peers_streaming "$PCONF" || fail "ws-r1 lost its connection on reload"

log "the control socket refuses users other than its owner and group"
seg=000000010000000000000001
head -c $((16 * 1024 * 1024)) /dev/zero >"$SCRATCH/$seg"
chmod 0644 "$SCRATCH/$seg"
sock=$(conf_get "$PCONF" socket)
chmod 0666 "$sock" # widened by hand: the credential check must still hold
refused0=$(status_counter "$PCONF" connections_refused)
assert_fails "push as nobody" runuser -u nobody -- "$WALSHIP" push -c "$PCONF" "$SCRATCH/$seg"
grep -q "may not use this walshipd's socket" "$TEST_DIR/last.out" ||
	fail "unexpected message: $(cat "$TEST_DIR/last.out")"
refused1=$(status_counter "$PCONF" connections_refused)
((refused1 > refused0)) || fail "the refusal was not counted"
log "PASS"
