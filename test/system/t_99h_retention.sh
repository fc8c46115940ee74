#!/bin/bash
# t_99h: retention on the replica appliance (issue 14, item 4; docs/operations.md,
# "Retention").  The primary streams WAL to a replica walshipd with retain_size = 16MB (the
# newest segment) and pg_listen.  Switching segments on the primary: the oldest segments are
# removed, oldest first, the newest kept, a timeline history file never removed, and
# walship status (text, JSON) counts the removals with one LOG line per batch.  A client
# streaming on pg_listen that does not read (pg_receivewal, stopped) keeps the WAL it still
# needs beyond retain_size; once it is gone, that WAL goes too.  Then `walship fetch` of a
# removed segment exits 1 (not available), and a client asking to stream from a removed
# segment gets PostgreSQL's 58P01 "requested WAL segment ... has already been removed".
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5443
ws_setup
require_cmds jq
mkdir -p "$TEST_DIR/ws-r1"
HBA=$TEST_DIR/ws-r1/hba.conf
printf '%s\n' '# TYPE     ROLE     NODE_NAME  CERT_NAME  ADDRESS' \
	'hostnossl  standby  postgres   all        10.77.0.0/16' >"$HBA"
chmod 0644 "$HBA"
# keepalive_timeout: the stopped client below stays connected while the test looks at it.
# (probes off: this test looks at no histogram, and loading them takes seconds)
REPLICA_CONF_EXTRA=("pg_listen=0.0.0.0:$PG_LISTEN_PORT" "hba_file=$HBA" retain_size=16MB
	keepalive_timeout=5min probes=off)
PRIMARY_CONF_EXTRA=(probes=off)
walship_stream_up off
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" && chown postgres:postgres "$SCRATCH"
psql_at "$NS_P" "$PG_PORT" "create table t (i int)"

# A timeline history file: never removed, whatever the policy.
printf '1\t0/3000000\tno recovery target specified\n' >"$RARCHIVE/00000001.history"
chmod 0640 "$RARCHIVE/00000001.history"

segments() {
	find "$RARCHIVE" -maxdepth 1 -regextype egrep -regex '.*/[0-9A-F]{24}$' -printf '%f\n' |
		sort
}
counter_above() { (($(status_counter "$RCONF" "$1") > $2)); }

first=$(switch_segments 1)
newest=$(switch_segments 3)
wait_for 20 "retention to remove the oldest segments" counter_above retain_removed_files 2
[[ ! -e "$RARCHIVE/$first" ]] || fail "the oldest segment $first was not removed"
[[ -f "$RARCHIVE/$newest" ]] || fail "the newest segment $newest was removed"
[[ -f "$RARCHIVE/00000001.history" ]] || fail "a timeline history file was removed"
log "ok: retain_size 16MB: kept $(segments | tr '\n' ' '), removed the older ones"
json=$(walship_status "$RCONF" --json)
jq -e '.retain_removed_bytes >= 3 * 16777216 and .retained_bytes > 0 and
	.retain_oldest != "" and (.retain_policy | test("retain_size 16MB"))' <<<"$json" \
	>/dev/null || fail "walship status --json: $(jq -c '{retain_removed_files,
	retain_removed_bytes, retained_files, retained_bytes, retain_oldest, retain_policy}' <<<"$json")"
walship_status "$RCONF" | grep -Eq '^removed: +[0-9]+ file\(s\)' ||
	fail "walship status (text) does not show the removals"
grep -Eq 'removed [0-9]+ WAL file\(s\) \([0-9]+ bytes\) from' "$TEST_DIR/ws-r1.log" ||
	fail "no LOG line for the removal batch in $TEST_DIR/ws-r1.log"
log "ok: $(grep -E 'removed [0-9]+ WAL file' "$TEST_DIR/ws-r1.log" | tail -n 1)"

# A client on pg_listen that stops reading: what it needs stays beyond retain_size.
base="host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres"
RW=$TEST_DIR/receivewal
mkdir -p "$RW" && chown postgres:postgres "$RW"
# (as_postgres_in, setpriv: runuser stops itself when its child is stopped, and was left
# stopped after the SIGKILL below, for ws_cleanup to kill 10 s later)
bg_start "$TEST_DIR/receivewal.out" as_postgres_in "$NS_P" \
	"$PG_BIN/pg_receivewal" -d "$base application_name=held" -D "$RW" -n --no-sync
held_streaming() {
	walship_status "$RCONF" --json |
		jq -e '.standbys[] | select(.application_name == "held" and
			.state == "streaming")' >/dev/null
}
wait_for 20 "pg_receivewal streaming from the appliance" held_streaming
# This test's pg_receivewal, the only one in NS_P: not the newest on the host, which may be
# another test's (stopping that one, this test's streamed on and the floor followed it).
HELD_PID=$(ns_pids "$NS_P" pg_receivewal) || fail "no pg_receivewal process in $NS_P"
[[ "$HELD_PID" =~ ^[0-9]+$ ]] || fail "more than one pg_receivewal in $NS_P: $HELD_PID"
kill -STOP "$HELD_PID"
removed=$(status_counter "$RCONF" retain_removed_files)
switch_segments 2 >/dev/null
wait_for 20 "retention to see the held client's position" counter_above retain_floor_lsn 0
# one more pass after those segments, so the policy alone would have left one segment
listed=$(status_counter "$RCONF" retained_files)
switch_segments 1 >/dev/null
floor=$(status_counter "$RCONF" retain_floor_lsn)
floor_seg=$(printf '%08X%08X%08X' 1 $((floor / 16777216 / 256)) $((floor / 16777216 % 256)))
[[ -f "$RARCHIVE/$floor_seg" ]] || fail "segment $floor_seg, which the held client needs, was removed"
nsegs=$(segments | wc -l)
((nsegs >= 3)) || fail "only $nsegs segments kept while a client needs WAL from $floor_seg"
log "ok: a stopped client needs WAL from $floor_seg: $nsegs segments kept (retain_size alone keeps 1; $listed files at the pass before)"

# The client gone, its WAL goes too.
kill -KILL "$HELD_PID" 2>/dev/null || true
gone() {
	! walship_status "$RCONF" --json |
		jq -e '.standbys[] | select(.application_name == "held")' >/dev/null
}
wait_for 20 "the appliance to see the client gone" gone
last=$(switch_segments 1)
# retain_size alone keeps the newest segment only: the batch that removed the last of the
# others is done (logged and counted), so none chosen under retain_size is still removing
# after the reload below (which stops no batch already chosen).
only_last() {
	[[ "$(segments)" == "$last" ]] && grep -q "oldest retained \"$last\"" "$TEST_DIR/ws-r1.log"
}
wait_for 40 "retention to keep only $last once nothing needs older WAL" only_last
counter_above retain_removed_files "$removed" || fail "retain_removed_files did not move"
[[ -f "$RARCHIVE/00000001.history" ]] || fail "a timeline history file was removed"
log "ok: the client gone, $floor_seg was removed; kept $(segments | tr '\n' ' ')"

# walship fetch of a removed segment: 1, not available (restore_command goes on).
assert_exit 1 "walship fetch of removed $floor_seg" walship_fetch_as_postgres "$RCONF" \
	"$floor_seg" "$SCRATCH/fetched"
[[ ! -e "$SCRATCH/fetched" ]] || fail "walship fetch of a removed segment left a file"
log "ok: walship fetch $floor_seg exits 1 (not available)"

# Streaming from a removed segment: PostgreSQL's 58P01, as a standby would see it.
# pg_receivewal starts after the newest segment of its directory.
oldest=$(segments | head -n 1)
gap=$(printf '%08X%08X%08X' 1 0 $((16#${oldest:16:8} - 1)))
before=$(printf '%08X%08X%08X' 1 0 $((16#${oldest:16:8} - 2)))
RW2=$TEST_DIR/receivewal-gap
mkdir -p "$RW2"
truncate -s 16M "$RW2/$before"
chown -R postgres:postgres "$RW2"
if out=$(as_postgres_in "$NS_P" timeout 20 "$PG_BIN/pg_receivewal" -d "$base" -D "$RW2" -n \
	--no-sync 2>&1); then
	fail "pg_receivewal from $gap (removed) succeeded: $out"
fi
[[ "$out" == *"requested WAL segment $gap has already been removed"* ]] ||
	fail "pg_receivewal from a removed segment: '$out'"
log "ok: ${out//$'\n'/ }"

# Reloadable: without the keys (SIGHUP), retention is off and nothing more is removed.
sed -i '/^retain_size/d' "$RCONF"
kill -HUP "${WS_DAEMON_PID[$RCONF]}"
policy_off() { [[ "$(walship_status "$RCONF" --json | jq -r .retain_policy)" == off ]]; }
wait_for 10 "retention off after SIGHUP" policy_off
removed=$(status_counter "$RCONF" retain_removed_files)
kept=$(segments | wc -l)
switch_segments 1 >/dev/null
new_stored() { (($(segments | wc -l) >= kept + 1)); }
wait_for 20 "the new segment stored" new_stored
listed_new() { (($(status_counter "$RCONF" retained_files) >= kept + 1)); }
wait_for 20 "a retention pass to list the new segments" listed_new
assert_eq "$removed" "$(status_counter "$RCONF" retain_removed_files)" \
	"files removed with retention off"
log "ok: SIGHUP without retain_size: retention off, $(segments | wc -l) segments kept"
# walship check: the archive's space against the rate of the WAL stored in the last hour.
"$WALSHIP" check -c "$RCONF" >"$TEST_DIR/check.out" 2>&1 || true
grep -Eq '^SKIP  archive_dir space +the WAL stored in .* spans [0-9]+ s, too little to measure a rate: .*retention off' \
	"$TEST_DIR/check.out" ||
	fail "walship check: $(grep 'archive_dir space' "$TEST_DIR/check.out")"
log "ok: $(grep 'archive_dir space' "$TEST_DIR/check.out")"
# A small file system holding two fresh segments: at that rate it fills within the
# horizon; with retention off too, the check says so.
SMALL=$TEST_DIR/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=40m tmpfs "$SMALL"
cp "$RARCHIVE/$(segments | tail -n 1)" "$SMALL/000000010000000000000001"
cp "$RARCHIVE/$(segments | tail -n 1)" "$SMALL/000000010000000000000002"
# (stored 30 and 10 minutes ago: a rate over half an hour, 64 MB/h)
touch -d '-30 min' "$SMALL/000000010000000000000001"
touch -d '-10 min' "$SMALL/000000010000000000000002"
sed -e "s|^archive_dir = .*|archive_dir = $SMALL|" -e '/^retain_size/d' "$RCONF" \
	>"$TEST_DIR/small.conf"
"$WALSHIP" check -c "$TEST_DIR/small.conf" >"$TEST_DIR/check-small.out" 2>&1 || true
umount "$SMALL"
grep -Eq '^WARN  archive_dir space +at [0-9.]+ MB/h .* fills in about [0-9.]+ h: .*retention off' \
	"$TEST_DIR/check-small.out" ||
	fail "walship check on a filling disk: $(grep -A1 'archive_dir space' "$TEST_DIR/check-small.out")"
log "ok: $(grep -A1 'archive_dir space' "$TEST_DIR/check-small.out" | tr -s ' \n' ' ')"
ws_check_daemons
log "PASS"
