#!/bin/bash
# The CPU of a relaying replica (issue 14's cascades): a PostgreSQL 15 primary with a
# primary walshipd streaming from it (pg_conninfo, asynchronous), replica A relaying
# (listen set) and replica B following A, each on a host (network namespace) of its own,
# as test/system/t_99i_cascade.sh sets them up.  Under `pgbench -n -c 4 -j 2 -T SECONDS`
# (scale 2), it measures A's walshipd: its CPU (user + system, every thread, from
# /proc/PID/stat) over the load, the WAL PostgreSQL wrote meanwhile, and A's direct group
# commits.  Not part of `make bench`: a measurement by hand, for comparing two builds of
# the relaying daemon (docs/benchmark-notes.md).  Kernel workers are not counted.
#
#   test/bench/relay-cpu.sh [SECONDS]         (default 15)
#   RELAY_WALSHIPD=PATH: A's walshipd (default build/walshipd; the others always are)
#
# Needs root and what `make check` needs.  Prints one line:
#   relay cpu S s, WAL B bytes, X s/GB, Y ms/1000 commits, direct syncs N
set -euo pipefail
SECONDS_LOADED=${1:-15}
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/../system/lib.sh"
RELAY_WALSHIPD=${RELAY_WALSHIPD:-$WALSHIPD}

ws_setup
require_walship
net_create 2
PG_PORT=5432
PCONF=$TEST_DIR/ws-primary/walship.conf
ACONF=$TEST_DIR/ws-a/walship.conf
BCONF=$TEST_DIR/ws-b/walship.conf
PDATA=$TEST_DIR/pg-primary
mkdir -p "$TEST_DIR/ws-primary" "$TEST_DIR/ws-a" "$TEST_DIR/ws-b"
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" \
	"pg_conninfo='host=$ADDR_P port=$PG_PORT user=postgres'"
write_replica_conf "$ACONF" "$TEST_DIR/ws-a" "$NS_P" "listen=$ADDR_R1:$WALSHIP_PORT"
write_replica_conf "$BCONF" "$TEST_DIR/ws-b" "$NS_R1"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "/bin/true"
pg_start "$PDATA" "$NS_P"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
WALSHIPD=$RELAY_WALSHIPD walshipd_start "$NS_R1" "$ACONF" "$TEST_DIR/ws-a.log"
walshipd_start "$NS_R2" "$BCONF" "$TEST_DIR/ws-b.log"
wait_replica_streaming "$PCONF" 20
pgbench_at "$NS_P" "$PG_PORT" -i -s 2 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
relay_pid=${WS_DAEMON_PID[$ACONF]}
ticks() { awk '{ print $14 + $15 }' "/proc/$relay_pid/stat"; }
wal_lsn() { lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_lsn()")"; }
b_holds() { # B durable at LSN_INT: its upstream A reports it (peers[1] is B on A)
	local lsn
	lsn=$(walship_status "$ACONF" --json |
		jq -r '.peers[] | select(.name == "ws-b") | .flush_lsn // "0/0"')
	[[ -n "$lsn" ]] && (($(lsn_to_int "$lsn") >= $1))
}
wait_for 60 "ws-b to hold the WAL of pgbench -i" b_holds "$(wal_lsn)"
l0=$(wal_lsn)
t0=$(ticks)
pgbench_at "$NS_P" "$PG_PORT" -n -c 4 -j 2 -T "$SECONDS_LOADED" >"$TEST_DIR/pgbench.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench.out"; fail "pgbench failed"; }
l1=$(wal_lsn)
wait_for 60 "ws-b to hold the WAL of the load" b_holds "$l1"
t1=$(ticks)
commits=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
	"$TEST_DIR/pgbench.out")
direct=$(status_counter "$ACONF" stream_direct_syncs)
python3 -c "
c = ($t1 - $t0) / $(getconf CLK_TCK); b = $l1 - $l0
print('relay cpu %.2f s, WAL %d bytes, %.2f s/GB, %.1f ms/1000 commits, direct syncs $direct'
      % (c, b, c / (b / 1e9), c * 1e6 / max($commits, 1)))"
