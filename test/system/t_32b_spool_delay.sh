#!/bin/bash
# Asynchronous pushes (sync_replicas = 0) copy into the spool only what a replica does not
# acknowledge within spool_delay (issue 7: walship-async wrote every segment twice on the
# one disk).  With the replica connected and keeping up, pushes are answered from its
# acknowledgements and no copy is made (after the first push, which shows how fast it
# acknowledges); with spool_delay = 0 (reloaded) every push is copied into the spool as
# before; with the replica away every push is copied at once, whatever spool_delay says.
# Each push succeeds, and the replica ends up with every segment byte for byte.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# spool_delay = 10s, not the default 200 ms: "keeping up" is a property of the replica, and
# on a loaded machine (make check runs tests side by side) its acknowledgements can take
# longer than 200 ms without it falling behind.
# shellcheck disable=SC2034  # read by walship_daemons_up
PRIMARY_CONF_EXTRA=(sync_replicas=0 spool_delay=10s)
walship_daemons_up
walship_primary_up 1

# push_segments N: fill and archive N segments; prints their names.
push_segments() {
	local k seg
	for ((k = 0; k < $1; k++)); do
		seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
		wait_archived "$seg"
		printf '%s\n' "$seg"
	done
}
# pushes_ok_at_least N: true once N pushes have succeeded (PostgreSQL's archiver pushes on
# its own).
pushes_ok_at_least() {
	(($(status_counter "$PCONF" pushes_ok) >= $1))
}

log "sync_replicas = 0, the replica connected: 5 segments"
ok0=$(status_counter "$PCONF" pushes_ok)
segs=$(push_segments 5)
wait_for 30 "5 more successful pushes" pushes_ok_at_least $((ok0 + 5))
copies=$(status_counter "$PCONF" spool_copies)
avoided=$(status_counter "$PCONF" spool_avoided)
log "spool copies $copies, not needed $avoided"
((avoided >= 3)) || fail "only $avoided push(es) were answered without a spool copy"
((copies <= 2)) || fail "$copies spool copies for a replica that keeps up"
for seg in $segs; do
	# (PostgreSQL may have recycled its copy already)
	if [[ -e "$PDATA/pg_wal/$seg" ]] && ! cmp -s "$PDATA/pg_wal/$seg" "$RARCHIVE/$seg"; then
		fail "$seg differs on the replica"
	fi
done

log "spool_delay = 0 (SIGHUP): every push is copied into the spool"
sed -i 's/^spool_delay = .*/spool_delay = 0/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 30 "the reload" grep -qE 'parameter "spool_delay" changed to "0(ms)?"' \
	"$TEST_DIR/ws-primary.log"
copies0=$(status_counter "$PCONF" spool_copies)
ok0=$(status_counter "$PCONF" pushes_ok)
push_segments 2 >/dev/null
wait_for 30 "2 more successful pushes" pushes_ok_at_least $((ok0 + 2))
copies=$(status_counter "$PCONF" spool_copies)
((copies - copies0 >= 2)) || fail "spool_delay = 0 made $((copies - copies0)) copies for 2 pushes"
assert_eq "$avoided" "$(status_counter "$PCONF" spool_avoided)" "spool_avoided with spool_delay = 0"

log "spool_delay = 200ms again, the replica away: pushes are copied at once"
sed -i 's/^spool_delay = 0$/spool_delay = 200ms/' "$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 30 "the reload" grep -q 'parameter "spool_delay" changed to "200ms"' \
	"$TEST_DIR/ws-primary.log"
walshipd_stop "$RCONF"
copies0=$(status_counter "$PCONF" spool_copies)
ok0=$(status_counter "$PCONF" pushes_ok)
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_for 30 "a push with the replica away" pushes_ok_at_least $((ok0 + 1))
(($(status_counter "$PCONF" spool_copies) > copies0)) || fail "no spool copy for an away replica"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_archived "$seg" 30
# The name is in the archive at the rename; the acknowledgement that frees the spool copy
# follows the directory fsync.
wait_for 30 "the spool to empty once the replica caught up" inv_spool_empty "$PCONF"
log "PASS"
