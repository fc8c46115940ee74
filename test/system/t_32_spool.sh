#!/bin/bash
# The spool holds WAL for registered replicas that are away (issue 3, part 1):
# - a replica is registered from its first connection;
# - with sync_replicas = 1 and one of two replicas away, pushes go on at the other's pace
#   and the spool holds every pushed segment for the away one (shown in status);
# - what is held survives a restart of the primary's daemon;
# - the away replica catches up from the spool, byte-identical, and the spool empties,
#   a held copy that cannot be opened when its turn comes sent once it can be;
# - sync_replicas = 0 (reloaded with SIGHUP): a push succeeds once held for every
#   registered replica, with none connected;
# - a registered replica's folder removed by hand (spool_dir/replicas/NAME) while it is
#   away is taken as a drop: the next push it lacks succeeds, the primary says it is no
#   longer registered and removes the copy only that folder's claim held, and no copy is
#   made for it again (the build before copied the push into the spool for it again and
#   again, holding nothing, until push_timeout failed the push); a copy only it claimed
#   that cannot be removed then is tried again;
# - `walship replica drop` releases what is held for a replica (a release that fails is
#   tried again), drops one whose folder was removed by hand (the build before failed the
#   rename), refuses an unknown one.
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
SPOOLDIR=$TEST_DIR/ws-primary/spool
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" push_timeout=5s
write_replica_conf "$R1CONF" "$TEST_DIR/ws-r1" "$NS_P"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P"

# Real segments, pushed by hand below (PostgreSQL's own archiver stays out of the way).
log "making 6 real WAL segments"
pg_make_segments 6 "$SCRATCH"

# held REPLICA: files the primary's spool holds for REPLICA, per walship status --json.
held() {
	walship_status "$PCONF" --json | jq -r --arg n "$1" '[.peers[] | select(.name == $n)][0].held'
}
streaming_count() {
	walship_status "$PCONF" --json | jq '[.peers[] | select(.state == "streaming")] | length'
}
# The conditions waited for: functions, so that wait_for evaluates them at every poll.
streaming_is() {
	test "$(streaming_count)" = "$1"
}
spool_files_is() {
	test "$(status_counter "$PCONF" spool_files)" = "$1"
}
state_is() {
	test "$(walship_status "$PCONF" --json |
		jq -r --arg n "$1" '.peers[] | select(.name == $n) | .state')" = "$2"
}
push() {
	assert_exit 0 "push $1" walship_push_as_postgres "$PCONF" "$SCRATCH/$1"
}

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "both replicas streaming" streaming_is 2
assert_eq 2 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"

log "both replicas up: a push leaves nothing in the spool"
push "${SEGS[0]}"
wait_for 10 "ws-r2 to store ${SEGS[0]}" test -f "$TEST_DIR/ws-r2/archive/${SEGS[0]}"
wait_for 10 "the spool to be empty" spool_files_is 0

log "ws-r2 away: pushes go on at ws-r1's pace, the spool holds them for ws-r2"
walshipd_stop "$R2CONF"
wait_for 10 "ws-r2 shown away" state_is ws-r2 away
for seg in "${SEGS[@]:1:3}"; do
	push "$seg"
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-r1/archive/$seg"
	assert_file_absent "$TEST_DIR/ws-r2/archive/$seg"
done
assert_eq 3 "$(held ws-r2)" "files held for ws-r2"
assert_eq 0 "$(held ws-r1)" "files held for ws-r1"
assert_eq 3 "$(status_counter "$PCONF" spool_files)" "files in the spool"

away_field() {
	walship_status "$PCONF" --json | jq -r --arg n "$1" \
		"[.peers[] | select(.name == \$n)][0].$2 // empty"
}
assert_eq "${SEGS[0]}" "$(away_field ws-r2 last_acked)" "ws-r2's last acknowledged file, away"
r2_flush=$(away_field ws-r2 flush_lsn)
[[ -f $SPOOLDIR/replicas/ws-r2/AWAY ]] || fail "no note of where ws-r2 stood in its spool folder"

log "the primary's daemon restarts: what is held is still held, and where ws-r2 stood"
walshipd_stop "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_for 20 "ws-r1 streaming again" streaming_is 1
assert_eq 3 "$(held ws-r2)" "files held for ws-r2 after a restart"
# Its note in the spool (replicas/ws-r2/AWAY): the build before forgot where it stood, and
# showed no file acknowledged and position 0/0.
assert_eq away "$(away_field ws-r2 state)" "ws-r2's state after a restart"
assert_eq "${SEGS[0]}" "$(away_field ws-r2 last_acked)" \
	"ws-r2's last acknowledged file after a restart"
assert_eq "$r2_flush" "$(away_field ws-r2 flush_lsn)" "ws-r2's durable position after a restart"

log "ws-r2 comes back and catches up from the spool, one held copy unopenable at first"
# The copy of ${SEGS[2]} replaced by a link (the spool opens its copies O_NOFOLLOW:
# ELOOP) when ws-r2's backlog reaches it: opened again a second later, and sent once it
# can be.  The build before dropped it from what the connected replica is sent until it
# reconnected: the spool never emptied.
aside=$TEST_DIR/aside-${SEGS[2]}
mv "$SPOOLDIR/wal/${SEGS[2]}" "$aside"
ln -s "$aside" "$SPOOLDIR/wal/${SEGS[2]}"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "ws-r2 streaming" state_is ws-r2 streaming
# back: its note is out of date, and gone (a crash now must not show it where it was)
assert_file_absent "$SPOOLDIR/replicas/ws-r2/AWAY"
wait_for 20 "the primary to fail to open ${SEGS[2]} for ws-r2" grep -q \
	"could not open \"${SEGS[2]}\", held for replica \"ws-r2\", to send it: .*trying again" \
	"$TEST_DIR/ws-primary.log"
mv -f "$aside" "$SPOOLDIR/wal/${SEGS[2]}"
wait_for 30 "ws-r2 to catch up" spool_files_is 0
for seg in "${SEGS[@]:0:4}"; do
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-r2/archive/$seg"
done
assert_eq 0 "$(held ws-r2)" "files held for ws-r2 after catching up"
grep -q 'replica "ws-r2" catches up on 3 held file(s)' "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not log the catch-up"

log "sync_replicas = 0: with no replica connected a push succeeds once held for both"
sed -i 's/^sync_replicas = .*/sync_replicas = 0/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the reload" grep -q 'parameter "sync_replicas" changed to "0"' \
	"$TEST_DIR/ws-primary.log"
walshipd_stop "$R1CONF"
walshipd_stop "$R2CONF"
wait_for 10 "no replica streaming" streaming_is 0
push "${SEGS[4]}"
assert_eq 1 "$(held ws-r1)" "files held for ws-r1"
assert_eq 1 "$(held ws-r2)" "files held for ws-r2"

log "ws-r1's folder in the spool removed by hand: taken as a drop at the next push"
rm -rf "$SPOOLDIR/replicas/ws-r1"
push "${SEGS[5]}"
grep -q 'replica "ws-r1" is no longer registered: its folder .* is gone' \
	"$TEST_DIR/ws-primary.log" || fail "the primary did not say ws-r1 is no longer registered"
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"
assert_eq 2 "$(held ws-r2)" "files held for ws-r2"
wait_for 10 "the spool to hold ws-r2's 2 files alone" spool_files_is 2
copies=$(status_counter "$PCONF" spool_copies)
ws_sleep 1
assert_eq "$copies" "$(status_counter "$PCONF" spool_copies)" "spool copies a second later"
log "ok: $(grep -o 'replica "ws-r1" is no longer registered.*' "$TEST_DIR/ws-primary.log")"

log "walship replica drop releases what is held"
held_file=$(find "$SPOOLDIR/replicas/ws-r2" -type f -o -type l | head -n 1)
if [[ -n "$held_file" ]] && chattr +i "$held_file" 2>/dev/null; then
	# A release that fails (a file it cannot unlink): the command says so, and the
	# primary tries again until it is done (the build before left it to the next start).
	run_capture "$TEST_DIR/drop-r2.out" "$WALSHIP" replica drop -c "$PCONF" ws-r2
	# (the same inode under every name: mutable again before anything can fail)
	chattr -i "$held_file" 2>/dev/null ||
		chattr -i "$SPOOLDIR/replicas/.dropping-ws-r2/$(basename "$held_file")"
	((RC != 0)) || fail "the drop of ws-r2 succeeded with an immutable held file"
	grep -q 'tried again from 10 s on' "$TEST_DIR/drop-r2.out" ||
		fail "the drop did not say it tries again: $(cat "$TEST_DIR/drop-r2.out")"
	wait_for 30 "the primary to release ws-r2's files on its own" grep -q \
		'released what the spool held for replica "ws-r2", dropped before' \
		"$TEST_DIR/ws-primary.log"
	log "ok: the failed release was done on a retry"
else
	log "chattr +i does not work here: the failed release is not tried"
	assert_exit 0 "drop ws-r2" "$WALSHIP" replica drop -c "$PCONF" ws-r2
fi
assert_eq 0 "$(status_counter "$PCONF" registered_replicas)" "registered replicas after a drop"
assert_eq 0 "$(status_counter "$PCONF" spool_files)" "files in the spool after both drops"

log "ws-r1 connects again: registered anew; away, its folder removed by hand with a copy"
log "only it claimed, which cannot be removed at first"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
wait_for 20 "ws-r1 streaming" streaming_is 1
assert_eq 2 "$(grep -c 'replica "ws-r1" registered: ' "$TEST_DIR/ws-primary.log")" \
	"registrations of ws-r1 logged"
walshipd_stop "$R1CONF"
wait_for 10 "ws-r1 shown away" state_is ws-r1 away
push "${SEGS[0]}"
assert_eq 1 "$(held ws-r1)" "files held for ws-r1"
rm -rf "$SPOOLDIR/replicas/ws-r1"
# ${SEGS[0]}'s copy, claimed by ws-r1's folder alone, goes on the dropper thread once the
# next push finds the folder gone; made immutable first (where chattr works), its
# removal fails and is tried again 10 s later (the build before gave up at once, and the
# copy stayed counted in the spool's use until a restart).
immutable=0
chattr +i "$SPOOLDIR/wal/${SEGS[0]}" 2>/dev/null && immutable=1
push "${SEGS[1]}"
assert_eq 2 "$(grep -c 'replica "ws-r1" is no longer registered: its folder .* is gone' \
	"$TEST_DIR/ws-primary.log")" "times ws-r1 was found no longer registered"
assert_eq 0 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"
if ((immutable)); then
	wait_for 10 "the primary to fail to remove ${SEGS[0]}" grep -q \
		"could not remove every copy in .* that no replica's claim holds: .*tried again in 10 s" \
		"$TEST_DIR/ws-primary.log"
	assert_eq 1 "$(status_counter "$PCONF" spool_files)" "files in the spool, one immutable"
	(($(status_counter "$PCONF" spool_unremovable) >= 1)) ||
		fail "walship status does not count the failed removal"
	chattr -i "$SPOOLDIR/wal/${SEGS[0]}"
	log "ok: the removal failed, and is tried again"
else
	log "chattr +i does not work here: a failed removal is not tried"
fi
wait_for 30 "the spool to be empty" spool_files_is 0

log "ws-r1 registered a third time; away, its folder removed by hand, then dropped"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
wait_for 20 "ws-r1 streaming" streaming_is 1
walshipd_stop "$R1CONF"
wait_for 10 "ws-r1 shown away" state_is ws-r1 away
rm -rf "$SPOOLDIR/replicas/ws-r1"
assert_exit 0 "drop ws-r1, its folder removed by hand" "$WALSHIP" replica drop -c "$PCONF" ws-r1
assert_eq 0 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"
assert_fails "drop an unknown replica" "$WALSHIP" replica drop -c "$PCONF" ws-r1
log "PASS"
