# shellcheck shell=bash
# The synchronous-commit contenders of `make bench` (issue 13), sourced by
# test/bench/run-bench.sh, whose helpers (on, cg_usage, proc_cpu, latency_summary,
# lag_sampler_start, ...) and lib.sh's they use.
#
# A PostgreSQL 15 primary on the sender host (pgbench tables at BENCH_STREAM_SCALE, fsync
# on), synchronous_commit = on and synchronous_standby_names naming exactly one synchronous
# standby on receiver 1, each contender in turn:
#
#   sync-standby     a PostgreSQL 15 standby streaming from it (a fresh pg_basebackup each
#                    run; primary_conninfo with application_name = standby);
#   sync-receivewal  pg_receivewal --synchronous --slot into an empty directory
#                    (application_name = receivewal; the slot made with --create-slot);
#   sync-receivewal-relay
#                    the same pg_receivewal, connected through a byte relay on the sender
#                    (socat, from a TCP port to PostgreSQL's Unix socket, in the sender's
#                    cgroup): walship's topology, one more process between the walsender
#                    and the receiver, with none of walship's work; a reference for what
#                    that topology costs, not a contender of the goals;
#   sync-walship     a primary walshipd streaming from it (pg_conninfo, pg_slot; the name
#                    PostgreSQL sees is its node_name) and a replica walshipd on the
#                    receiver, sync_replicas = 1.
#
# Each run of each: truncate pgbench_history, CHECKPOINT (every contender starts with the
# same full-page writes to come), then `pgbench -n -N -c 8 -j 2 -T BENCH_SYNC_SECONDS -l`:
# TPS (pgbench's, without connection time), transaction latency p50/p99/max from the
# per-transaction log, the WAL generated (pg_current_wal_lsn before and after) and the CPU
# seconds per GB of it on each host until the contender has flushed it all: the sending
# side is the walsender (/proc) plus, for walship, the primary walshipd (for the relay,
# socat: the sender's cgroup); the receiving side is the walreceiver and the startup
# process (/proc; the startup process, WAL replay, is also given alone as "apply"),
# pg_receivewal or the replica walshipd (the receiver's cgroup).  Beside them, in neither
# side, the machine's kernel workers (kworkers_snapshot): work done for all, such as writeback,
# and for walship's replica the cache flush that completes each of its direct writes with
# RWF_DSYNC on a disk without FUA.  Then BENCH_SYNC_LAG_SECONDS of the same load
# with synchronous_commit = off (the pgbench sessions' own setting) while a session on the
# primary measures the flush lag of the contender from positions (sync_lag_sampler_start):
# the same measure for the three, and nothing else runs beside the load (walship's own lag,
# `walship status --json` piped to jq, was sampled every 0.2 s during walship's run only:
# 67 ms of CPU a sample, a third of a CPU taken from its load and its daemons alone).
#
# Why not pg_stat_replication.flush_lag: PostgreSQL's lag tracker (walsender.c) is fair to
# a standby only.  It is cleared (NULL, not sampled) only after replies reporting
# everything applied, which only the standby sends: walship and pg_receivewal report apply
# as 0, so their last value stayed visible through idle moments and was sampled again and
# again.  (By our reading of LagTrackerWrite(), its 8192 samples are also freed only as the
# slowest position, apply, passes them, so for those two the buffer fills and then keeps
# only its newest sample; not verified here.)
#
# Results: one line per contender and run in SYNC_TSV (sync_record), read by
# test/bench/report.sh.

SYNC_SECONDS=${BENCH_SYNC_SECONDS:-20}
SYNC_LAG_SECONDS=${BENCH_SYNC_LAG_SECONDS:-10}
SYNC_CONTENDERS="sync-standby sync-receivewal sync-receivewal-relay sync-walship"
SYNC_PORT=5434
SYNC_RELAY_PORT=5438 # sync-receivewal-relay's relay on the sender (5435-5436: standby.sh)
SYNC_RELAY_PID=""
SYNC_SLOT=wsbench
SYNC_DIR="" # set by sync_setup (RUN_DIR is emptied at the start of a run)
# The contender being measured: the application_name PostgreSQL sees, the pids measured
# through /proc on the receiver (walreceiver, startup) and the startup process alone.
SYNC_APP=""
SYNC_RCV_PIDS=()
SYNC_APPLY_PID=""
SYNC_BG_PID=""

# sync_wanted: true when any synchronous-commit contender is to run.
sync_wanted() {
	local c
	((SYNC_SECONDS > 0)) || return 1
	for c in $SYNC_CONTENDERS; do
		want "$c" && return 0
	done
	return 1
}

# psql_sync SQL...: run each SQL (a transaction of its own) on the synchronous-commit
# primary over its unix socket, in one session; prints the values.
psql_sync() {
	local -a cmds=()
	local sql
	for sql in "$@"; do
		cmds+=(-c "$sql")
	done
	timeout -k 2 30 runuser -u postgres -- "$PG_BIN/psql" -h "$SYNC_DIR/sock" -p "$SYNC_PORT" \
		-U postgres -XAtq -v ON_ERROR_STOP=1 "${cmds[@]}" postgres </dev/null
}

# sync_setup: the primary (PostgreSQL 15, fsync on, trust for the bench's subnet,
# replication included) on the sender, with pgbench tables at BENCH_STREAM_SCALE.
sync_setup() {
	SYNC_DIR=$RUN_DIR/sync
	local d=$SYNC_DIR
	mkdir -p "$d/sock"
	chown -R postgres:postgres "$d"
	log "synchronous commit: PostgreSQL 15 primary on $NS_SND, one synchronous standby" \
		"at a time on $NS_RCV"
	pg_initdb "$d/primary"
	cat >>"$d/primary/postgresql.conf" <<-CONF
		listen_addresses = '$ADDR_SND'
		port = $SYNC_PORT
		unix_socket_directories = '$d/sock'
		wal_level = replica
		max_wal_senders = 4
		max_replication_slots = 4
		max_wal_size = 4GB
		shared_buffers = 256MB
		synchronous_commit = on
		synchronous_standby_names = ''
	CONF
	cat >>"$d/primary/pg_hba.conf" <<-HBA
		host all all $NET_PREFIX.0/24 trust
		host replication all $NET_PREFIX.0/24 trust
	HBA
	# Outside the cgroups: its CPU is counted per process (the walsender).
	pg_start "$d/primary" "$NS_SND"
	pg_as "$PG_BIN/pgbench" -h "$d/sock" -p "$SYNC_PORT" -U postgres -i -q \
		-s "$STREAM_SCALE" postgres >"$d/pgbench-init.out" 2>&1 ||
		{ tail "$d/pgbench-init.out" >&2; fail "synchronous commit: pgbench -i failed"; }
}

# sync_names APP: synchronous_standby_names = APP (quoted: names hold dashes), or none
# when APP is empty; reloaded.
sync_names() {
	local v=""
	[[ -n "$1" ]] && v="\"$1\""
	psql_sync "alter system set synchronous_standby_names = '$v'" "select pg_reload_conf()" \
		>/dev/null
}

# sync_walsender APP: the pid of the walsender streaming to APP; fails when there is none.
sync_walsender() {
	local pid
	pid=$(psql_sync "select pid from pg_stat_replication
		where application_name = '$1' and state = 'streaming'")
	[[ -n "$pid" ]] && echo "$pid"
}

# sync_flushed APP LSN: true when APP has flushed LSN.
sync_flushed() {
	[[ $(psql_sync "select coalesce(bool_and(flush_lsn >= '$2'), false)
		from pg_stat_replication where application_name = '$1'") == t ]]
}

# sync_slot_released SLOT: true when no walsender uses replication slot SLOT.
sync_slot_released() {
	[[ -z "$(psql_sync "select active_pid from pg_replication_slots
		where slot_name = '$1' and active")" ]]
}

# sync_slot_drop SLOT: drop replication slot SLOT once no walsender uses it (if it exists).
sync_slot_drop() {
	wait_for 20 "slot $1 to be released" sync_slot_released "$1"
	psql_sync "select pg_drop_replication_slot(slot_name) from pg_replication_slots
		where slot_name = '$1'" >/dev/null
}

# psql_standby DIR SQL: one value from the standby of DIR (unix socket).
psql_standby() {
	timeout -k 2 20 runuser -u postgres -- "$PG_BIN/psql" -h "$1/sock-s" -p "$SYNC_PORT" \
		-U postgres -XAtq -c "$2" postgres </dev/null
}

# sync_standby_pids DIR: set SYNC_RCV_PIDS (walreceiver, startup) and SYNC_APPLY_PID
# (startup) of the standby of DIR; fails while either is missing.
sync_standby_pids() {
	local wr st
	wr=$(psql_standby "$1" "select pid from pg_stat_wal_receiver where status = 'streaming'")
	st=$(psql_standby "$1" "select pid from pg_stat_activity where backend_type = 'startup'")
	[[ -n "$wr" && -n "$st" ]] || return 1
	SYNC_RCV_PIDS=("$wr" "$st")
	SYNC_APPLY_PID=$st
}

# sync_relay_listening: true when sync-receivewal-relay's relay listens.
sync_relay_listening() {
	[[ -n $(ip netns exec "$NS_SND" ss -Hltn "sport = :$SYNC_RELAY_PORT") ]]
}

# sync_up NAME DIR: start contender NAME on receiver 1 (and, for walship, the sender),
# streaming from the primary; sets SYNC_APP and, for the standby, the pids measured
# through /proc.
sync_up() {
	local name=$1 dir=$2 conninfo
	conninfo="host=$ADDR_SND port=$SYNC_PORT user=postgres"
	SYNC_RCV_PIDS=()
	SYNC_APPLY_PID=""
	case $name in
	sync-standby)
		SYNC_APP=standby
		# --no-sync: the copy's own durability is no part of the measure (its WAL's is).
		as_postgres_in "$NS_RCV" "$PG_BIN/pg_basebackup" -h "$ADDR_SND" -p "$SYNC_PORT" \
			-U postgres -D "$dir/standby" -X stream -c fast --no-sync \
			>"$dir/basebackup.out" 2>&1 ||
			{ cat "$dir/basebackup.out" >&2; fail "$name: pg_basebackup failed"; }
		mkdir -p "$dir/sock-s"
		chown postgres:postgres "$dir/sock-s"
		# After the primary's settings, which pg_basebackup copied.
		cat >>"$dir/standby/postgresql.conf" <<-CONF
			listen_addresses = ''
			unix_socket_directories = '$dir/sock-s'
			hot_standby = on
			primary_conninfo = '$conninfo application_name=$SYNC_APP'
		CONF
		runuser -u postgres -- touch "$dir/standby/standby.signal"
		# Outside the cgroups: walreceiver and startup are counted per process.
		pg_start "$dir/standby" "$NS_RCV"
		wait_for 30 "the standby to stream" sync_standby_pids "$dir"
		sync_standby_pids "$dir"
		;;
	sync-receivewal | sync-receivewal-relay)
		SYNC_APP=receivewal
		if [[ $name == sync-receivewal-relay ]]; then
			# A byte relay on the sender, in its cgroup (so counted on the sending
			# side), from a TCP port there to PostgreSQL's Unix socket: walship's
			# topology, one more process on the path, without walship's work.
			cg_cmd "$CG_SND"
			bg_start "$dir/relay.out" "${CG_CMD[@]}" ip netns exec "$NS_SND" socat \
				"TCP-LISTEN:$SYNC_RELAY_PORT,bind=$ADDR_SND,reuseaddr,fork,nodelay" \
				"UNIX-CONNECT:$SYNC_DIR/sock/.s.PGSQL.$SYNC_PORT"
			SYNC_RELAY_PID=$BG_PID
			wait_for 10 "the relay to listen" sync_relay_listening
			conninfo="host=$ADDR_SND port=$SYNC_RELAY_PORT user=postgres"
		fi
		mkdir -p "$dir/wal"
		chown postgres:postgres "$dir/wal"
		as_postgres_in "$NS_RCV" "$PG_BIN/pg_receivewal" --create-slot --if-not-exists \
			--slot="$SYNC_SLOT" -d "$conninfo application_name=$SYNC_APP" \
			>"$dir/create-slot.out" 2>&1 ||
			{ cat "$dir/create-slot.out" >&2; fail "$name: could not create the slot"; }
		# The prefix and setpriv exec: the recorded pid is pg_receivewal's (PostgreSQL 15's
		# ends cleanly on SIGINT only; runuser would pass SIGTERM on, then kill it 2 s later).
		cg_cmd "$CG_RCV"
		bg_start "$dir/receivewal.out" "${CG_CMD[@]}" ip netns exec "$NS_RCV" \
			setpriv --reuid=postgres --regid=postgres --init-groups \
			"$PG_BIN/pg_receivewal" --synchronous --no-loop \
			--slot="$SYNC_SLOT" -D "$dir/wal" -d "$conninfo application_name=$SYNC_APP"
		SYNC_BG_PID=$BG_PID
		;;
	sync-walship)
		SYNC_APP=bench-snd # the primary walshipd's node_name
		# The primary walshipd runs on PostgreSQL's host: it connects over the Unix socket,
		# as docs/operations.md sets it up (the walsender then spends less than over TCP).
		mkdir -p "$dir/spool" "$dir/store"
		walship_conf "$dir/primary.conf" role=primary "node_name=$SYNC_APP" \
			"listen=$ADDR_SND:$WALSHIP_PORT" "socket=$dir/p.sock" "spool_dir=$dir/spool" \
			socket_permissions=0600 sync_replicas=1 \
			"pg_conninfo='host=$SYNC_DIR/sock port=$SYNC_PORT user=postgres'" \
			"pg_slot=$SYNC_SLOT" probes=off
		walship_conf "$dir/replica.conf" role=replica node_name=bench-rcv1 \
			"upstream=$ADDR_SND:$WALSHIP_PORT" "archive_dir=$dir/store" \
			"socket=$dir/r.sock" socket_permissions=0600 reconnect_min=50ms \
			reconnect_max=500ms probes=off
		daemon_start "$NS_SND" "$CG_SND" "$dir/primary.conf" "$dir/primary.log"
		daemon_start "$NS_RCV" "$CG_RCV" "$dir/replica.conf" "$dir/replica.log"
		wait_for 20 "the replica walshipd to connect to the primary" \
			grep -q "connected to primary" "$dir/replica.log"
		;;
	*)
		fail "sync_up: no contender $name"
		;;
	esac
	wait_for 30 "$name to stream from PostgreSQL (logs in $dir)" sync_walsender "$SYNC_APP"
}

# sync_down NAME DIR: stop contender NAME, drop its slot, delete its copy of the WAL.
sync_down() {
	local name=$1 dir=$2
	case $name in
	sync-standby)
		pg_stop "$dir/standby"
		rm -rf "$dir/standby"
		;;
	sync-receivewal | sync-receivewal-relay)
		stop_pid "$SYNC_BG_PID" 10 INT
		[[ -z $SYNC_RELAY_PID ]] || stop_pid "$SYNC_RELAY_PID" 10
		SYNC_RELAY_PID=""
		sync_slot_drop "$SYNC_SLOT"
		rm -rf "$dir/wal"
		;;
	sync-walship)
		walshipd_stop "$dir/replica.conf"
		walshipd_stop "$dir/primary.conf"
		sync_slot_drop "$SYNC_SLOT"
		rm -rf "$dir/store" "$dir/spool"
		;;
	esac
}

# sync_fail MSG: fail with MSG after showing what the primary's sessions wait for and
# its replication connections.
sync_fail() {
	{
		psql_sync "select pid, backend_type, state, wait_event_type, wait_event,
			left(query, 60) from pg_stat_activity"
		psql_sync "select pid, application_name, state, sync_state, sent_lsn, flush_lsn,
			pg_current_wal_lsn() from pg_stat_replication"
	} >&2 || true
	fail "$@"
}

# sync_pgbench DIR PREFIX SECONDS: the load, as postgres, over the primary's unix socket:
# pgbench -N -c 8 -j 2 for SECONDS (throttled by BENCH_PGBENCH_RATE, run-bench.sh's
# PGBENCH_RATE) with its per-transaction log DIR/PREFIX.* (PGOPTIONS passes on); its output
# in DIR/PREFIX.out.
sync_pgbench() {
	local dir=$1 prefix=$2 secs=$3
	pg_as "$PG_BIN/pgbench" -h "$SYNC_DIR/sock" -p "$SYNC_PORT" -U postgres -n -N -c 8 -j 2 \
		"${PGBENCH_RATE[@]}" -T "$secs" -l --log-prefix="$dir/$prefix" postgres \
		>"$dir/$prefix.out" 2>&1 ||
		{ tail "$dir/$prefix.out" >&2; fail "pgbench failed; logs in $dir"; }
}

# sync_lag_sampler_start SECONDS RAW: one session on the primary noting, every 2 ms for
# SECONDS plus 300 at most, the time (microseconds), the primary's flush position and the
# contender's (SYNC_APP's flush_lsn in pg_stat_replication, -1 while it has none) as a
# notice into RAW; sets SAMPLER_PID.  End it with sync_lag_sampler_stop.
sync_lag_sampler_start() {
	local secs=$1 raw=$2
	pg_as "$PG_BIN/psql" -h "$SYNC_DIR/sock" -p "$SYNC_PORT" -U postgres -Xq \
		-c "set application_name = 'wsbench-sampler'" -c "do \$\$ begin
			for i in 1..$(((secs + 300) * 500)) loop
				raise notice 'pos % % %',
					(extract(epoch from clock_timestamp()) * 1e6)::bigint,
					pg_current_wal_flush_lsn() - '0/0'::pg_lsn,
					(select coalesce(max(flush_lsn - '0/0'::pg_lsn), -1)
					from pg_stat_replication where application_name = '$SYNC_APP');
				perform pg_sleep(0.002);
			end loop; end \$\$" postgres </dev/null >/dev/null 2>"$raw" &
	SAMPLER_PID=$!
	WS_BG_PIDS+=("$SAMPLER_PID")
}

# sync_lag_sampler_stop RAW OUT: end the sampler of sync_lag_sampler_start (its backend
# terminated, then psql); OUT gets the flush lags (microseconds, one a line): for each
# sample that saw the primary's flush position advance, the time until the first sample
# that saw the contender's flush position reach it (0 when it already had; the resolution
# is the sampling interval, the same for every contender).
sync_lag_sampler_stop() {
	timeout -k 2 20 runuser -u postgres -- "$PG_BIN/psql" -h "$SYNC_DIR/sock" -p "$SYNC_PORT" \
		-U postgres -XAtc "select pg_terminate_backend(pid) from pg_stat_activity
		where application_name = 'wsbench-sampler'" postgres </dev/null >/dev/null || true
	stop_pid "$SAMPLER_PID" 5
	awk '$2 == "pos" && NF == 5 {n++; t[n] = $3; l[n] = $4; f[n] = $5}
		END {
			j = 1
			for (i = 1; i <= n; i++) {
				if (i > 1 && l[i] <= l[i - 1])
					continue
				if (j < i)
					j = i
				while (j <= n && f[j] < l[i])
					j++
				if (j > n)
					break
				print t[j] - t[i]
			}
		}' "$1" >"$2"
}

# run_sync RUN NAME: one run of synchronous-commit contender NAME.
run_sync() {
	local run=$1 name=$2 dir wsnd l0 l1 lsn s0 r0 c0 rc0 a0 s1 r1 c1 rc1 a1 t0 t1
	local tps p50 p99 max lp50 lp99 lmax apply line out k
	dir=$RUN_DIR/$name-$run
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	# Every contender starts streaming from about here: pg_basebackup begins with a
	# checkpoint, pg_receivewal and walship start at the redo position of their new slot.
	psql_sync "checkpoint" >/dev/null
	sync_up "$name" "$dir"
	sync_names "$SYNC_APP"
	wait_for 30 "$SYNC_APP to be the synchronous standby" pg_sync_standby "$NS_SND" \
		"$SYNC_PORT" "$SYNC_APP"
	# One session: the walsender's pid, the same start for every run, the start position.
	out=$(psql_sync "select pid from pg_stat_replication where application_name = '$SYNC_APP'" \
		"truncate pgbench_history" "checkpoint" "select pg_current_wal_lsn() - '0/0'::pg_lsn") ||
		sync_fail "$name: truncate and checkpoint failed or took more than 30 s"
	wsnd=${out%%$'\n'*}
	l0=${out##*$'\n'}
	# The page cache written out first: the previous contender's files and this one's base
	# backup (pg_basebackup --no-sync) would otherwise be written back during its load,
	# competing with its fsyncs and counted among its kernel workers.
	sync
	progress_start "$name" "$run"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	c0=$(proc_cpu "$wsnd")
	rc0=$(pids_cpu "${SYNC_RCV_PIDS[@]}")
	a0=$( ((${#SYNC_APPLY_PID})) && proc_cpu "$SYNC_APPLY_PID" || echo 0)
	kworkers_snapshot "$dir/kworkers.0"
	t0=$(now_s)
	sync_pgbench "$dir" tx "$SYNC_SECONDS"
	IFS='|' read -r lsn l1 < <(psql_sync "select pg_current_wal_lsn(),
		pg_current_wal_lsn() - '0/0'::pg_lsn")
	wait_for 60 "$name to flush $lsn" sync_flushed "$SYNC_APP" "$lsn"
	t1=$(now_s)
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	c1=$(proc_cpu "$wsnd")
	rc1=$(pids_cpu "${SYNC_RCV_PIDS[@]}")
	a1=$( ((${#SYNC_APPLY_PID})) && proc_cpu "$SYNC_APPLY_PID" || echo 0)
	kworkers_snapshot "$dir/kworkers.1"
	[[ $(sync_walsender "$SYNC_APP") == "$wsnd" ]] ||
		fail "$name: the walsender changed during the run (its CPU would be lost)"
	tps=$(awk '/^tps = / {printf "%.1f", $3; exit}' "$dir/tx.out")
	[[ -n "$tps" ]] || fail "$name: no tps in $dir/tx.out"
	# The per-transaction log: client transaction latency_us script epoch us.
	cat "$dir"/tx.[0-9]* | awk '{print $3}' >"$dir/latencies"
	read -r p50 p99 max < <(latency_summary "$dir/latencies")
	# The lag, asynchronously.
	if ((SYNC_LAG_SECONDS > 0)); then
		sync # (as before the load above)
		sync_lag_sampler_start "$SYNC_LAG_SECONDS" "$dir/lag.raw"
		PGOPTIONS="-c synchronous_commit=off" sync_pgbench "$dir" async "$SYNC_LAG_SECONDS"
		# Until the contender has flushed what the last samples saw flushed here.
		lsn=$(psql_sync "select pg_current_wal_flush_lsn()")
		wait_for 60 "$name to flush $lsn" sync_flushed "$SYNC_APP" "$lsn"
		sync_lag_sampler_stop "$dir/lag.raw" "$dir/lags"
		read -r lp50 lp99 lmax < <(latency_summary "$dir/lags")
	else
		: >"$dir/lags"
		read -r lp50 lp99 lmax <<<"- - -"
	fi
	sync_names ""
	sync_down "$name" "$dir"
	k=$(kworkers_cpu_between "$dir/kworkers.0" "$dir/kworkers.1")
	line=$(awk -v w="$(sub "$t1" "$t0")" -v l0="$l0" -v l1="$l1" -v s="$(sub "$s1" "$s0")" \
		-v r="$(sub "$r1" "$r0")" -v c="$(sub "$c1" "$c0")" -v rc="$(sub "$rc1" "$rc0")" \
		-v a="$(sub "$a1" "$a0")" -v app="${#SYNC_APPLY_PID}" -v k="$k" 'BEGIN {
			gb = (l1 - l0) / 1e9
			printf "%.3f %.1f %.3f %.3f %s %.3f %.3f", w, (l1 - l0) / 1e6 / w, (s + c) / gb,
				(r + rc) / gb, (app ? sprintf("%.3f", a / gb) : "-"), c / gb, k / gb
		}')
	# shellcheck disable=SC2086  # split line into its fields
	set -- $line
	printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$name" "$run" "$1" "$tps" \
		"$p50" "$p99" "$max" "$2" "$3" "$4" "$5" "$lp50" "$lp99" "$lmax" "$6" "$7" \
		>>"$SYNC_TSV"
	cp "$dir/latencies" "$RUN_DIR/lat/$name.$run"
	cp "$dir/lags" "$RUN_DIR/lat/$name-lag.$run"
	apply=$5
	printf '\n'
	log "$(printf '%-15s run %d: %8.1f tps  latency p50 %s p99 %s ms  WAL %s MB/s  cpu/GB send %s s (walsender %s) recv %s s (apply %s) kernel workers %s s  flush lag p50 %s p99 %s ms' \
		"$name" "$run" "$tps" "$p50" "$p99" "$2" "$3" "$6" "$4" "$apply" "$7" "$lp50" "$lp99")"
	return 0
}
