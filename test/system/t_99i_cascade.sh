#!/bin/bash
# t_99i: a cascade (issue 14, cascading relays): primary -> replica A (listen set) ->
# replica B, with a PostgreSQL 15 standby streaming from B's pg_listen under a light
# pgbench load.  B is sent only what is durable on A, whole files and the stream: the
# standby replays the primary's WAL through both, B's files equal the primary's byte for
# byte, A's status shows B as a primary shows its replicas, and the standby's apply reaches
# the primary through B and A.  A is SIGKILLed: B stops advancing (its upstream is gone, a
# segment completed meanwhile does not reach it), the standby keeps what it has.  A
# restarted: B resumes without a gap (every segment present, the same bytes as A's) and
# the standby catches up to the primary's data; so it does after a SIGKILL of the
# primary's walshipd under load.  A keeps only its newest segment (retain_size = 16MB) and
# what B needs: B stopped (registered, away), the segments it lacks stay on A, and B
# restarted gets them, even holding the newest of them already (stored out of order), and
# again after losing its newest files.  A drop of B that cannot be written fails and
# leaves B registered.  A stopped cleanly and started again; B dropped on A once stopped.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5443
SB_PORT=5444
ws_setup
require_walship
require_cmds jq curl
net_create 2
PG_PORT=5432
PCONF=$TEST_DIR/ws-primary/walship.conf
ACONF=$TEST_DIR/ws-a/walship.conf
BCONF=$TEST_DIR/ws-b/walship.conf
AARCHIVE=$TEST_DIR/ws-a/archive
BARCHIVE=$TEST_DIR/ws-b/archive
PDATA=$TEST_DIR/pg-primary
mkdir -p "$TEST_DIR/ws-primary" "$TEST_DIR/ws-a" "$TEST_DIR/ws-b"
HBA_B=$TEST_DIR/ws-b/hba.conf
echo "hostnossl standby postgres all $NET_PREFIX.0/24" >"$HBA_B"
chmod 0644 "$HBA_B"

write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" \
	"pg_conninfo='host=$ADDR_P port=$PG_PORT user=postgres'"
# A: a replica of the primary that relays: listen set (its own address, the same port)
# is what says so, without relay = on.
# retain_size = 16MB: A keeps only its newest segment, and what B still needs.
write_replica_conf "$ACONF" "$TEST_DIR/ws-a" "$NS_P" \
	"listen=$ADDR_R1:$WALSHIP_PORT" retain_size=16MB "metrics_listen=127.0.0.1:9198"
# B: a replica of A, serving the standby.
write_replica_conf "$BCONF" "$TEST_DIR/ws-b" "$NS_R1" \
	"pg_listen=0.0.0.0:$PG_LISTEN_PORT" "hba_file=$HBA_B"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "$WALSHIP push -c $PCONF %p"
pg_start "$PDATA" "$NS_P"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$ACONF" "$TEST_DIR/ws-a.log"
walshipd_start "$NS_R2" "$BCONF" "$TEST_DIR/ws-b.log"
wait_replica_streaming "$PCONF" 20

# A shows B as a primary shows its replicas (peers[0] is A's own upstream).
b_streaming_on_a() {
	walship_status "$ACONF" --json |
		jq -e '.peers[] | select(.name == "ws-b" and .state == "streaming")' >/dev/null
}
wait_for 20 "ws-b streaming from the relay ws-a" b_streaming_on_a

psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key)"
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >/dev/null 2>&1 || fail "pgbench -i failed"

# The standby on B's host, streaming from B.
SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R2" "$SB_PORT" \
	"$WALSHIP fetch -c $BCONF %f %p"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = 'host=$ADDR_R2 port=$PG_LISTEN_PORT user=postgres application_name=sb'
	wal_receiver_status_interval = 1s
EOF
pg_start "$SDATA" "$NS_R2"
receiver_streaming() {
	[[ "$(psql_at "$NS_R2" "$SB_PORT" "select status || ' ' || sender_host from
		pg_stat_wal_receiver")" == "streaming $ADDR_R2" ]]
}
wait_for 30 "the standby streaming from ws-b" receiver_streaming

# The segment being written, completed at once (pg_switch_wal): its name.
switch_segment() {
	psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name(pg_switch_wal())"
}

# A light load; everything it wrote reaches the standby through A and B.
pgbench_at "$NS_P" "$PG_PORT" -T 3 -c 2 -R 200 -n >"$TEST_DIR/pgbench.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench.out" >&2; fail "pgbench failed"; }
log "pgbench: $(grep -E '^tps' "$TEST_DIR/pgbench.out" | tr '\n' ' ')"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (1)"
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R2" "$SB_PORT" "$target" 30
[[ "$(psql_at "$NS_R2" "$SB_PORT" "select count(*) from marker")" == 1 ]] ||
	fail "the standby does not show marker 1"
log "ok: the standby on ws-b replayed up to $target through ws-a (marker 1)"
# A relays to B, and B serves the standby, from the images of the streamed segments they
# write with O_DIRECT (never through the page cache, which each direct write drops): the
# standby's WAL above came that way through both.  Unless an archive refuses direct I/O.
for node in a b; do
	assert_stream_direct "$TEST_DIR/ws-$node/walship.conf" "$TEST_DIR/ws-$node.log"
	log "ok: ws-$node: $STREAM_DIRECT direct group commits"
done
# Its apply travels up, B to A to the primary (what remote_apply waits for).
apply_upstream() {
	local apply
	apply=$(status_counter "$PCONF" source_apply_lsn)
	((apply >= $(lsn_to_int "$target")))
}
wait_for 15 "the primary to learn the standby's apply through ws-b and ws-a" apply_upstream
log "ok: the primary reports the apply of ws-b's standby: $(status_counter "$PCONF" source_apply_lsn)"

# A whole segment: B's copy is the primary's, byte for byte.
seg=$(switch_segment)
wait_for 30 "$seg in ws-b's archive" test -f "$BARCHIVE/$seg"
assert_file_identical "$PDATA/pg_wal/$seg" "$BARCHIVE/$seg"
log "ok: $seg in ws-b's archive equals the primary's pg_wal/$seg"
# A's status: the downstream replica with its counters, in text and /metrics' source.
walship_status "$ACONF" --json | jq -e '.peers[] | select(.name == "ws-b") |
	select(.files_acked > 0)' >/dev/null || fail "ws-a's status shows no file acknowledged by ws-b"
text=$(walship_status "$ACONF")
grep -q "^  peer ws-b ($ADDR_R2:[0-9]*): streaming" <<<"$text" ||
	fail "walship status (text) on ws-a does not show ws-b streaming"
grep -q "^relay: *1 downstream replica(s) registered" <<<"$text" ||
	fail "walship status (text) on ws-a does not show the registered downstream replica"
metrics=$(in_ns "$NS_R1" curl -fsS "http://127.0.0.1:9198/metrics")
grep -q "^walship_peer_files_acked_total{peer=\"ws-b\",addr=\"$ADDR_R2:" <<<"$metrics" ||
	fail "/metrics on ws-a does not show ws-b"
grep -q "^walship_registered_replicas 1$" <<<"$metrics" ||
	fail "/metrics on ws-a: walship_registered_replicas is not 1"
log "ws-b on ws-a: $(walship_status "$ACONF" --json | jq -c '.peers[] | select(.name == "ws-b") |
	{state, files_sent, files_acked, sent_lsn, write_lsn, flush_lsn, lag_bytes, lag_us}')"
registered=$(status_counter "$ACONF" registered_replicas)
assert_eq 1 "$registered" "registered_replicas on ws-a"

# A killed: B's upstream is gone and B stops advancing; the standby keeps what it has.
replayed=$(pg_replay_lsn "$NS_R2" "$SB_PORT")
walshipd_kill "$ACONF"
b_upstream_down() {
	walship_status "$BCONF" --json | jq -e '.peers[0].state != "streaming"' >/dev/null
}
wait_for 15 "ws-b to see its upstream ws-a gone" b_upstream_down
# Everything B holds was durable on A before A died, so before this position.
before=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
psql_at "$NS_P" "$PG_PORT" "insert into marker values (2)"
missed=$(switch_segment)
# The primary walshipd streams on; what A did not store cannot reach B.
[[ ! -e "$BARCHIVE/$missed" ]] || fail "$missed reached ws-b while ws-a was down"
now=$(pg_replay_lsn "$NS_R2" "$SB_PORT")
lsn_ge "$now" "$replayed" || fail "the standby went back from $replayed to $now"
lsn_ge "$before" "$now" || fail "the standby replayed up to $now, past $before, with ws-a down"
[[ "$(psql_at "$NS_R2" "$SB_PORT" "select count(*) from marker")" == 1 ]] ||
	fail "the standby does not hold exactly what it had (marker 1, not 2)"
log "ok: with ws-a down ws-b does not advance ($missed absent) and the standby keeps marker 1"

# A restarted: B resumes without a gap, the standby catches up.
walshipd_start "$NS_R1" "$ACONF" "$TEST_DIR/ws-a.log"
wait_for 20 "ws-b streaming from the restarted ws-a" b_streaming_on_a
psql_at "$NS_P" "$PG_PORT" "insert into marker values (3)"
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R2" "$SB_PORT" "$target" 30
wait_for 30 "$missed in ws-b's archive" test -f "$BARCHIVE/$missed"
log "ok: after ws-a's restart ws-b resumed and the standby caught up to $target"

# The primary's walshipd killed and restarted under load: A keeps its durable part of the
# segment it was receiving and resumes it, and B goes on receiving it from A.
pgbench_at "$NS_P" "$PG_PORT" -T 4 -c 2 -R 200 -n >"$TEST_DIR/pgbench2.out" 2>&1 &
load=$!
sleep 1 # (not an assertion: the kill lands while the load runs)
walshipd_kill "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait "$load" || { cat "$TEST_DIR/pgbench2.out" >&2; fail "pgbench failed"; }
psql_at "$NS_P" "$PG_PORT" "insert into marker values (4)"
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R2" "$SB_PORT" "$target" 30
log "ok: after a SIGKILL of the primary's walshipd the standby on ws-b caught up to $target"

# Retention on A removed what B holds, oldest first...
first=$(wal_segment_numbers "$BARCHIVE" | head -n 1)
first=$(printf '%08X%08X%08X' 1 0 "$first")
wait_for 20 "ws-a's retention to remove $first (ws-b holds it)" test ! -e "$AARCHIVE/$first"
# ...but B stopped (registered, away), A keeps every segment B lacks.
walshipd_stop "$BCONF"
lacks=()
for i in 1 2 3; do
	psql_at "$NS_P" "$PG_PORT" "insert into marker values (1$i)"
	lacks+=("$(switch_segment)")
	wait_for 20 "${lacks[-1]} in ws-a's archive" test -f "$AARCHIVE/${lacks[-1]}"
done
a_listed_all() {
	local n
	n=$(find "$AARCHIVE" -maxdepth 1 -type f -name '0*' | wc -l)
	[[ "$(status_counter "$ACONF" retained_files)" == "$n" ]]
}
wait_for 20 "a retention pass on ws-a after ${lacks[-1]}" a_listed_all
for f in "${lacks[@]}"; do
	[[ -f "$AARCHIVE/$f" ]] || fail "ws-a removed $f, which the registered ws-b lacks"
done
log "ok: ws-a keeps ${lacks[*]} for ws-b while it is away (retain_size = 16MB)"
# B holds the newest of them already, stored before the others (as a downstream replica
# catching up can: a file A stores meanwhile goes before the rest of its backlog): placed
# by hand while B is stopped, with A's record of its CRC (the xattr a store keeps), so
# that B's HAVE lists it as its newest; A still sends the earlier ones, from the floor it
# recorded for B, not after B's newest file.
cp --preserve=mode,ownership,xattr "$AARCHIVE/${lacks[-1]}" "$BARCHIVE/${lacks[-1]}"
sync "$BARCHIVE/${lacks[-1]}" "$BARCHIVE"
walshipd_start "$NS_R2" "$BCONF" "$TEST_DIR/ws-b.log"
for f in "${lacks[@]}"; do
	wait_for 20 "$f in ws-b's archive" test -f "$BARCHIVE/$f"
done
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R2" "$SB_PORT" "$target" 30
assert_same_data "$NS_P" "$PG_PORT" "$NS_R2" "$SB_PORT"
assert_no_gap "$BARCHIVE"
newest=$(find "$AARCHIVE" -maxdepth 1 -regex '.*/[0-9A-F]+' -printf '%f\n' | sort | tail -n 1)
wait_for 30 "$newest (ws-a's newest) in ws-b's archive" test -f "$BARCHIVE/$newest"
for f in "$AARCHIVE"/*; do
	name=$(basename "$f")
	assert_file_identical "$f" "$BARCHIVE/$name"
done
for f in "$BARCHIVE"/0*; do
	name=$(basename "$f")
	[[ ! -e "$PDATA/pg_wal/$name" ]] || assert_file_identical "$PDATA/pg_wal/$name" "$f"
done
log "ok: ws-b holds every segment, the bytes of ws-a's and of the primary's pg_wal, and the standby the primary's data"
ws_check_daemons

# A stopped cleanly (SIGTERM) with B connected, and started again: B streams from it again.
walshipd_stop "$ACONF"
walshipd_start "$NS_R1" "$ACONF" "$TEST_DIR/ws-a.log"
wait_for 20 "ws-b streaming from ws-a after its clean restart" b_streaming_on_a

# B loses files it acknowledged (the segments A still holds, B's newest, removed by hand
# while B is stopped): A finds B's newest stored segment older than the floor it recorded
# for B and sends B what follows it again.
walshipd_stop "$BCONF"
mapfile -t gone < <(find "$AARCHIVE" -maxdepth 1 -regex '.*/[0-9A-F]+' -printf '%f\n' | sort)
((${#gone[@]} > 0)) || fail "no segment in ws-a's archive"
for f in "${gone[@]}"; do
	rm "$BARCHIVE/$f"
done
sync "$BARCHIVE"
walshipd_start "$NS_R2" "$BCONF" "$TEST_DIR/ws-b.log"
for f in "${gone[@]}"; do
	wait_for 20 "$f in ws-b's archive again" test -f "$BARCHIVE/$f"
	assert_file_identical "$AARCHIVE/$f" "$BARCHIVE/$f"
done
grep -q 'downstream replica "ws-b" holds less than it acknowledged' "$TEST_DIR/ws-a.log" ||
	fail "ws-a did not log that ws-b holds less than it acknowledged"
log "ok: ws-b, having lost ${gone[*]}, is sent them again"

# B gone for good: dropped on A (not while connected), so that A no longer keeps WAL for it.
assert_exit 1 "replica drop of the connected ws-b" "$WALSHIP" replica drop -c "$ACONF" ws-b
walshipd_stop "$BCONF"
# A drop whose registry cannot be written (its directory made immutable) fails, and B
# stays registered: A keeps its WAL for it.
chattr +i "$AARCHIVE/.walship"
rc=0
"$WALSHIP" replica drop -c "$ACONF" ws-b >"$TEST_DIR/drop.out" 2>&1 || rc=$?
chattr -i "$AARCHIVE/.walship"
((rc != 0)) || fail "replica drop of ws-b succeeded with ws-a's registry unwritable"
assert_eq 1 "$(status_counter "$ACONF" registered_replicas)" \
	"registered_replicas after a drop that could not be written"
log "ok: a drop that could not be written fails ($(head -c 200 "$TEST_DIR/drop.out")), ws-b stays registered"
assert_exit 0 "replica drop of ws-b on ws-a" "$WALSHIP" replica drop -c "$ACONF" ws-b
assert_eq 0 "$(status_counter "$ACONF" registered_replicas)" "registered_replicas after the drop"
log "ok: ws-b dropped on ws-a"
log "PASS"
