#!/bin/bash
# A bounded spool with an explicit overflow policy (issue 3, part 2), never a silent drop:
# - spool_overflow = fail (the default): a push that does not fit fails with a clear
#   reason, counted in status; PostgreSQL would keep the WAL and retry; a retried push of
#   a file held already takes no room and is answered;
# - spool_overflow = release_slowest (reloaded with SIGHUP): the replica furthest behind
#   loses its held files, which status shows as a range, counts, and reports with exit
#   status 3, also after a restart; the replica then catches up on what is still held;
# - a full spool (spool_overflow = fail) whose room a replica's folder removed by hand still
#   takes: the push fails ("try again") until that replica is dropped and its copies
#   removed, then succeeds.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds jq
require_postgres
net_create 2
PG_PORT=5432
PDATA=$TEST_DIR/pg-primary
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1" "$TEST_DIR/ws-r2"
chown postgres:postgres "$SCRATCH"
PCONF=$TEST_DIR/ws-primary/walship.conf
R1CONF=$TEST_DIR/ws-r1/walship.conf
R2CONF=$TEST_DIR/ws-r2/walship.conf
# Room for two 16 MiB segments, not three.
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" push_timeout=5s \
	spool_max_size=40MB spool_overflow=fail
write_replica_conf "$R1CONF" "$TEST_DIR/ws-r1" "$NS_P"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P"

log "making 5 real WAL segments"
pg_make_segments 5 "$SCRATCH"

peer_field() {
	walship_status "$PCONF" --json | jq -r --arg n "$1" --arg f "$2" \
		'[.peers[] | select(.name == $n)][0][$f]'
}
# (a function: wait_for evaluates it at every poll)
spool_empty() {
	test "$(status_counter "$PCONF" spool_files)" = 0
}
push_ok() {
	assert_exit 0 "push $1" walship_push_as_postgres "$PCONF" "$SCRATCH/$1"
}

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "both replicas streaming" peers_streaming_are "$PCONF" 2
walshipd_stop "$R2CONF"
wait_for 10 "ws-r2 away" peers_streaming_are "$PCONF" 1

log "spool_overflow = fail: two segments are held for ws-r2, the third does not fit"
push_ok "${SEGS[0]}"
push_ok "${SEGS[1]}"
assert_eq 2 "$(peer_field ws-r2 held)" "files held for ws-r2"
assert_fails "push beyond spool_max_size" walship_push_as_postgres "$PCONF" "$SCRATCH/${SEGS[2]}"
grep -q "the spool is full" "$TEST_DIR/last.out" || fail "unclear reason: $(cat "$TEST_DIR/last.out")"
assert_eq 1 "$(status_counter "$PCONF" spool_full)" "pushes refused for a full spool"
assert_eq 2 "$(peer_field ws-r2 held)" "files held for ws-r2 after the refusal"
# A push of a file held already, retried, takes no room: it is answered, not refused.
push_ok "${SEGS[1]}"
assert_eq 1 "$(status_counter "$PCONF" spool_full)" "pushes refused for a full spool, after a retry"
assert_eq 2 "$(peer_field ws-r2 held)" "files held for ws-r2 after the retry"
assert_eq 0 "$(status_counter "$PCONF" lost_files)" "files lost under the fail policy"
assert_exit 0 "walship status with nothing lost" walship_status "$PCONF"

log "spool_overflow = release_slowest: ws-r2 loses what was held, explicitly"
sed -i 's/^spool_overflow = .*/spool_overflow = release_slowest/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the reload" grep -q 'parameter "spool_overflow" changed' "$TEST_DIR/ws-primary.log"
push_ok "${SEGS[2]}"
assert_eq 2 "$(peer_field ws-r2 lost_files)" "files ws-r2 lost"
assert_eq "${SEGS[0]}" "$(peer_field ws-r2 lost_first)" "first file ws-r2 lost"
assert_eq "${SEGS[1]}" "$(peer_field ws-r2 lost_last)" "last file ws-r2 lost"
assert_eq 1 "$(peer_field ws-r2 held)" "files held for ws-r2 after the release"
grep -q "spool full: replica \"ws-r2\" lost 2 held file(s)" "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not log the loss"
assert_exit 3 "walship status reports the loss" walship_status "$PCONF"
grep -q "LOST:.*${SEGS[0]} to ${SEGS[1]}" "$TEST_DIR/last.out" || fail "no LOST line in status"

log "the loss is durable: still reported after a restart of the primary's daemon"
walshipd_stop "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
assert_exit 3 "walship status after a restart" walship_status "$PCONF"
assert_eq 2 "$(peer_field ws-r2 lost_files)" "files ws-r2 lost, after a restart"

log "ws-r2 comes back: it gets what is still held, not what it lost"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 30 "ws-r2 to receive ${SEGS[2]}" test -f "$TEST_DIR/ws-r2/archive/${SEGS[2]}"
assert_file_identical "$SCRATCH/${SEGS[2]}" "$TEST_DIR/ws-r2/archive/${SEGS[2]}"
assert_file_absent "$TEST_DIR/ws-r2/archive/${SEGS[1]}"
for seg in "${SEGS[@]:0:3}"; do
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-r1/archive/$seg"
done

log "spool_overflow = fail, the spool full of what ws-r2 holds, and its folder removed by hand"
sed -i 's/^spool_overflow = .*/spool_overflow = fail/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the reload" grep -q 'parameter "spool_overflow" changed to "fail"' \
	"$TEST_DIR/ws-primary.log"
walshipd_stop "$R2CONF"
wait_for 10 "ws-r2 away" peers_streaming_are "$PCONF" 1
push_ok "${SEGS[3]}"
push_ok "${SEGS[4]}"
assert_eq 2 "$(peer_field ws-r2 held)" "files held for ws-r2"
rm -rf "$TEST_DIR/ws-primary/spool/replicas/ws-r2"
# The push that needs room finds ws-r2's folder gone and fails until its copies are
# removed (PostgreSQL retries); the build before refused it for a full spool, and every
# push after it, until ws-r2 connected again or walshipd restarted.
assert_fails "push while ws-r2's copies are removed" walship_push_as_postgres "$PCONF" \
	"$SCRATCH/${SEGS[2]}"
grep -q "whose folder is gone are removed, which frees room: try again" "$TEST_DIR/last.out" ||
	fail "unclear reason: $(cat "$TEST_DIR/last.out")"
grep -q 'replica "ws-r2" is no longer registered' "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not say ws-r2 is no longer registered"
wait_for 10 "the spool to be empty" spool_empty
push_ok "${SEGS[2]}"
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"
log "PASS"
