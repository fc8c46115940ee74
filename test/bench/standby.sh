# shellcheck shell=bash
# The standby contenders of `make bench` (issue 14): PostgreSQL 15 standbys streaming from
# the appliance (a replica walshipd's pg_listen) against standbys streaming straight from
# the primary.  Sourced by test/bench/run-bench.sh, whose helpers (on, cg_usage, proc_cpu,
# latency_summary, stop_pid, ...) and lib.sh's (pg_primary_init, pg_start,
# pg_standby_from_basebackup, write_primary_conf, ...) they use.
#
# Hosts: a PostgreSQL 15 primary (fsync on, pgbench tables at BENCH_STANDBY_SCALE) on the
# sender, in a cpuacct cgroup of its own (every postgres process: backends, walsenders,
# checkpointer, ...); a primary walshipd streaming from it (pg_conninfo, a slot) on the
# sender; the appliance, a replica walshipd with pg_listen, on receiver 1; the standbys on
# receiver 2 (the appliance is a host of its own, as in production).  The walshipds run in
# cgroups of their own too.  Every standby is a copy of one base backup taken at set-up
# (shared_buffers = 16MB), with restore_command = walship fetch from the appliance for
# the WAL a stopped standby missed; per run, its primary_conninfo (postgresql.auto.conf)
# points at the appliance or the primary, it starts, and it is caught up (replayed the
# primary's flush position, streaming from the right upstream) before the load starts.
#
# Every load starts after a CHECKPOINT (the one the standbys replayed before their last stop).
#
#   standby-lag          one standby streaming from the primary and one from the
#                        appliance, side by side under the same load: replay lag of each
#                        (rows standby-lag-direct and standby-lag-appliance);
#   standby-appliance-N  N standbys (BENCH_STANDBY_FANOUT, default "1 4 8") served by the
#                        appliance;
#   standby-direct-N     N standbys (BENCH_STANDBY_DIRECT, default "8") streaming from the
#                        primary; the primary walshipd is stopped meanwhile, so that the
#                        primary serves exactly these N.
#
# The load: `pgbench -n -c 4 -j 2 -R BENCH_STANDBY_RATE -T BENCH_STANDBY_SECONDS` (TPC-B,
# a fixed rate, so that every contender puts the same work on the primary; a loaded machine
# may fall short of it, so the report compares the primary's CPU per transaction).  Measured over
# the load: the CPU seconds of the primary's postgres processes (its cgroup; the lag
# sampler's session below included, the same in every contender), of its
# walsenders alone (/proc, the pids of pg_stat_replication at the start, which must still
# be there at the end), of the primary walshipd and of the appliance (their cgroups); the
# number of walsenders; the WAL generated; the standbys' replay lag.
#
# Replay lag: not pg_stat_replication.replay_lag.  That is measured on each standby's
# upstream, which for the appliance's standbys is the appliance (it leaves out the hop
# from the primary to the appliance, and the primary sees only the primary walshipd), and
# a walreceiver reports its replay position only every wal_receiver_status_interval, not
# when it replays.  Instead, one timeline for every path: a session on the primary samples
# (clock_timestamp(), pg_current_wal_flush_lsn()) every 20 ms (the WAL a walsender may
# send: neither path can stream earlier), a session on each standby samples
# (clock_timestamp(), pg_last_wal_replay_lsn()) every 50 ms; one clock, as every host is
# a namespace of this machine.  A standby's lag at a sample is how long before it the
# primary had flushed the first byte the standby had not replayed (interpolated between
# the primary's samples, so within about 20 ms), 0 when it had replayed everything flushed.
# The samplers connect to a database of their own (wsbench), so that their snapshot
# conflicts with no cleanup record pgbench's database replays on the standby (a standby
# waits up to max_standby_streaming_delay for such a session: that would be the lag
# measured).
#
# Results: one line per contender (standby-lag: per upstream) and run in STANDBY_TSV
# (sb_record), read by test/bench/report.sh.

STANDBY_SECONDS=${BENCH_STANDBY_SECONDS:-20}
STANDBY_FANOUT=${BENCH_STANDBY_FANOUT-1 4 8}
STANDBY_DIRECT=${BENCH_STANDBY_DIRECT-8}
STANDBY_RATE=${BENCH_STANDBY_RATE:-200}
STANDBY_SCALE=${BENCH_STANDBY_SCALE:-10}
SB_PG_PORT=5435        # the primary, on the sender
SB_LISTEN_PORT=5436    # the appliance's pg_listen, on receiver 1
SB_WALSHIP_PORT=5482   # the primary walshipd's listen (run_walship's daemons use 5480)
SB_STANDBY_PORT=5440   # standby I listens on SB_STANDBY_PORT + I, on receiver 2
SB_SLOT=wsbench_sb
SB_DIR=""              # set by sb_setup (RUN_DIR is emptied at the start of a run)
SB_CG_PG=wsbench-$$-sbpg  # the primary's postgres processes
SB_CG_WSP=wsbench-$$-sbwsp # the primary walshipd
SB_CG_WSA=wsbench-$$-sbwsa # the appliance
SB_WSP_UP=0            # the primary walshipd runs
SB_MAX=0               # the most standbys any contender runs
declare -A SB_MADE=()  # standby I -> 1 once copied from the base backup

# sb_contenders: the standby contenders to run, in the order of a run.
sb_contenders() {
	local n
	((STANDBY_SECONDS > 0)) || return 0
	want standby-lag && echo standby-lag
	for n in $STANDBY_FANOUT; do
		want "standby-appliance-$n" && echo "standby-appliance-$n"
	done
	for n in $STANDBY_DIRECT; do
		want "standby-direct-$n" && echo "standby-direct-$n"
	done
	return 0
}

# sb_check: fail unless BENCH_STANDBY_FANOUT and BENCH_STANDBY_DIRECT are in 1..8; set
# SB_MAX.
sb_check() {
	local n
	for n in $STANDBY_FANOUT $STANDBY_DIRECT; do
		[[ $n =~ ^[1-8]$ ]] || fail "BENCH_STANDBY_FANOUT, BENCH_STANDBY_DIRECT: $n is not in 1..8"
	done
	SB_MAX=0
	for n in $(sb_contenders); do
		n=${n##*-}
		[[ $n == lag ]] && n=2
		((n > SB_MAX)) && SB_MAX=$n
	done
	return 0
}

# sb_cg_adopt DATADIR CG: move the running postmaster of DATADIR and every process it has
# forked into cgroup CG (the backends it forks later are born there).
sb_cg_adopt() {
	local pm pid
	pm=$(head -n 1 "$1/postmaster.pid")
	for pid in "$pm" $(pgrep -P "$pm"); do
		echo "$pid" >"$CG_ROOT/$2/cgroup.procs"
	done
}

# psql_sb SQL: one value from the primary (unix socket).
psql_sb() {
	timeout -k 2 30 runuser -u postgres -- "$PG_BIN/psql" -h "$(pg_socket_dir "$SB_DIR/primary")" \
		-p "$SB_PG_PORT" -U postgres -XAtq -v ON_ERROR_STOP=1 -c "$1" postgres </dev/null
}

# sb_setup: the primary (pgbench tables), the primary walshipd and the appliance, the
# sampler's database, the base backup every standby is copied from.
sb_setup() {
	SB_DIR=$RUN_DIR/standby
	local d=$SB_DIR cg
	NS_SB=$NS_R2
	mkdir -p "$d/wsp" "$d/wsa"
	chown postgres:postgres "$d"
	for cg in "$SB_CG_PG" "$SB_CG_WSP" "$SB_CG_WSA"; do
		mkdir "$CG_ROOT/$cg"
		CGROUPS+=("$cg")
	done
	log "standbys: PostgreSQL 15 primary and primary walshipd on $NS_SND, the appliance" \
		"(pg_listen) on $NS_RCV, up to $SB_MAX standbys on $NS_SB"
	pg_primary_init "$d/primary" "$SB_PG_PORT" "$NS_SND" true
	cat >>"$d/primary/postgresql.conf" <<-CONF
		archive_mode = off
		max_wal_senders = 16
		max_replication_slots = 4
		wal_keep_size = 1GB
	CONF
	pg_start "$d/primary" "$NS_SND"
	sb_cg_adopt "$d/primary" "$SB_CG_PG"
	pg_as "$PG_BIN/pgbench" -h "$(pg_socket_dir "$d/primary")" -p "$SB_PG_PORT" -U postgres \
		-i -q -s "$STANDBY_SCALE" postgres >"$d/pgbench-init.out" 2>&1 ||
		{ tail "$d/pgbench-init.out" >&2; fail "standbys: pgbench -i failed"; }
	psql_sb "create database wsbench" >/dev/null
	# shellcheck disable=SC2086  # BENCH_WALSHIP_EXTRA: one KEY=VALUE per word
	write_primary_conf "$d/wsp.conf" "$d/wsp" "$NS_SND" "listen=$ADDR_SND:$SB_WALSHIP_PORT" \
		"pg_conninfo='host=$(pg_socket_dir "$d/primary") port=$SB_PG_PORT user=postgres'" \
		"pg_slot=$SB_SLOT" \
		$WALSHIP_EXTRA
	# The appliance: pg_listen with trust for the standbys (lib.sh's rule, in its own dir).
	local -a REPLICA_CONF_EXTRA=()
	TEST_DIR=$d ws_pg_listen_trust "$SB_LISTEN_PORT"
	# shellcheck disable=SC2086
	write_replica_conf "$d/wsa.conf" "$d/wsa" "$NS_SND" "upstream=$ADDR_SND:$SB_WALSHIP_PORT" \
		"${REPLICA_CONF_EXTRA[@]}" $WALSHIP_EXTRA
	daemon_start "$NS_RCV" "$SB_CG_WSA" "$d/wsa.conf" "$d/wsa.log"
	sb_wsp 1
	# The base backup starts in a segment the appliance holds whole.
	psql_sb "select pg_switch_wal()" >/dev/null
	pg_standby_from_basebackup "$NS_SND" "$SB_PG_PORT" "$d/base" "$NS_SB" "$SB_STANDBY_PORT" \
		"$WALSHIP fetch -c $d/wsa.conf %f %p"
}

# sb_wsp 1|0: the primary walshipd running (started, streaming to the appliance) or not.
sb_wsp() {
	if (($1 && !SB_WSP_UP)); then
		daemon_start "$NS_SND" "$SB_CG_WSP" "$SB_DIR/wsp.conf" "$SB_DIR/wsp.log"
		SB_WSP_UP=1
		wait_replica_streaming "$SB_DIR/wsp.conf" 30
	elif ((!$1 && SB_WSP_UP)); then
		walshipd_stop "$SB_DIR/wsp.conf"
		SB_WSP_UP=0
	fi
	return 0
}

# sb_data I: the data directory of standby I.
sb_data() {
	printf '%s/sb%d\n' "$SB_DIR" "$1"
}

# sb_up I UPSTREAM: start standby I (a copy of the base backup the first time) streaming
# from UPSTREAM (direct: the primary; appliance: pg_listen), application_name sbI.
sb_up() {
	local i=$1 up=$2 sb host port sock
	sb=$(sb_data "$i")
	sock=$(pg_socket_dir "$sb")
	if [[ -z "${SB_MADE[$i]:-}" ]]; then
		rm -rf "$sb" "$sock"
		cp -a "$SB_DIR/base" "$sb"
		mkdir -p "$sock"
		chown postgres:postgres "$sock"
		cat >>"$sb/postgresql.conf" <<-CONF
			# standby $i of the bench
			port = $((SB_STANDBY_PORT + i))
			unix_socket_directories = '$sock'
			shared_buffers = 16MB
			hot_standby_feedback = off
			# A copy starts as after a crash: one syncfs, not an fsync per file (seconds).
			recovery_init_sync_method = syncfs
		CONF
		SB_MADE[$i]=1
	fi
	if [[ $up == direct ]]; then
		host=$ADDR_SND
		port=$SB_PG_PORT
	else
		host=$ADDR_RCV
		port=$SB_LISTEN_PORT
	fi
	# After postgresql.conf: the upstream of this run.
	echo "primary_conninfo = 'host=$host port=$port user=postgres application_name=sb$i'" \
		>"$sb/postgresql.auto.conf"
	chown postgres:postgres "$sb/postgresql.auto.conf"
	pg_start "$sb" "$NS_SB"
}

# sb_ready I UPSTREAM LSN: true when standby I streams from UPSTREAM and has replayed LSN.
sb_ready() {
	local want=$ADDR_SND:$SB_PG_PORT
	[[ $2 == appliance ]] && want=$ADDR_RCV:$SB_LISTEN_PORT
	[[ "$(psql_at "$NS_SB" $((SB_STANDBY_PORT + $1)) "select status || ' ' || sender_host ||
		':' || sender_port from pg_stat_wal_receiver" 2>/dev/null)" == "streaming $want" ]] &&
		standby_reached "$NS_SB" $((SB_STANDBY_PORT + $1)) "$3"
}

# sb_sampler_start SOCK PORT EXPR INTERVAL_S SECS RAW: a session (database wsbench) on the
# server at SOCK:PORT writing "s EPOCH VALUE" notices into RAW every INTERVAL_S, VALUE the
# bigint SQL EXPR (-1 while null), for SECS plus 60 at most; sets SB_SAMPLER (psql's pid:
# setpriv execs).  Stop it with stop_pid: the backend ends at its next notice.
sb_sampler_start() {
	local n
	n=$(awk -v s="$5" -v i="$4" 'BEGIN {printf "%d", (s + 60) / i}')
	setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/psql" -h "$1" -p "$2" \
		-U postgres -Xq -c "do \$\$ begin for i in 1..$n loop
			raise notice 's % %', extract(epoch from clock_timestamp()),
				coalesce(($3 - '0/0'::pg_lsn)::bigint, -1);
			perform pg_sleep($4);
		end loop; end \$\$" wsbench </dev/null >/dev/null 2>"$6" &
	SB_SAMPLER=$!
	WS_BG_PIDS+=("$SB_SAMPLER")
}

# sb_lags PRIMARY_RAW T0 T1 STANDBY_RAW...: the replay lags (microseconds, one a line) of
# the standby samples taken between T0 and T1, against the primary's flush timeline.
sb_lags() {
	local praw=$1 t0=$2 t1=$3
	shift 3
	awk -v t0="$t0" -v t1="$t1" '
		FNR == NR { if ($2 == "s" && $4 >= 0) { n++; pt[n] = $3; pl[n] = $4 } next }
		$2 == "s" && $4 >= 0 && $3 >= t0 && $3 <= t1 && n > 0 && $3 <= pt[n] {
			ts = $3; l = $4
			# The first primary sample past l.
			lo = 1; hi = n + 1
			while (lo < hi) { m = int((lo + hi) / 2); if (pl[m] > l) hi = m; else lo = m + 1 }
			if (lo > n) { print 0; next }	# everything flushed was replayed
			if (lo == 1) next			# before the first primary sample: unknown
			t = pt[lo - 1] + (l - pl[lo - 1]) / (pl[lo] - pl[lo - 1]) * (pt[lo] - pt[lo - 1])
			printf "%d\n", (ts > t ? (ts - t) * 1e6 : 0)
		}' "$praw" "$@"
}

# sb_walsenders: "COUNT PID..." of the primary's walsenders.
sb_walsenders() {
	local pids
	pids=$(psql_sb "select pid from pg_stat_replication order by pid" | tr '\n' ' ')
	# shellcheck disable=SC2086
	set -- $pids
	echo "$# $pids"
}

# run_sb RUN NAME: one run of standby contender NAME.
run_sb() {
	local run=$1 name=$2 n i dir lsn t0 t1 l0 l1 p0 p1 w0 w1 s0 s1 a0 a1 tps ws kind
	local sock praw wlist wlist1
	local -a ups=() wpids=() samplers=() raws=()
	dir=$RUN_DIR/$name-$run
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	case $name in
	standby-lag) ups=(direct appliance) ;;
	standby-appliance-*) for ((i = 0; i < ${name##*-}; i++)); do ups+=(appliance); done ;;
	standby-direct-*) for ((i = 0; i < ${name##*-}; i++)); do ups+=(direct); done ;;
	*) fail "run_sb: no contender $name" ;;
	esac
	n=${#ups[@]}
	if [[ " ${ups[*]} " == *" appliance "* ]]; then sb_wsp 1; else sb_wsp 0; fi
	for ((i = 1; i <= n; i++)); do
		sb_up "$i" "${ups[i - 1]}"
	done
	lsn=$(psql_sb "select pg_current_wal_flush_lsn()")
	for ((i = 1; i <= n; i++)); do
		wait_for 120 "standby sb$i to stream from the ${ups[i - 1]} and replay $lsn" \
			sb_ready "$i" "${ups[i - 1]}" "$lsn"
	done
	read -r ws wlist < <(sb_walsenders)
	read -ra wpids <<<"$wlist"
	praw=$dir/primary.raw
	sock=$(pg_socket_dir "$SB_DIR/primary")
	sb_sampler_start "$sock" "$SB_PG_PORT" "pg_current_wal_flush_lsn()" 0.02 \
		"$STANDBY_SECONDS" "$praw"
	samplers+=("$SB_SAMPLER")
	for ((i = 1; i <= n; i++)); do
		sb_sampler_start "$(pg_socket_dir "$(sb_data "$i")")" $((SB_STANDBY_PORT + i)) \
			"pg_last_wal_replay_lsn()" 0.05 "$STANDBY_SECONDS" "$dir/sb$i.raw"
		samplers+=("$SB_SAMPLER")
	done
	sleep 0.5 # the samplers connected: a sample before the load starts
	progress_start "$name" "$run"
	l0=$(psql_sb "select pg_current_wal_flush_lsn() - '0/0'::pg_lsn")
	p0=$(cg_usage "$SB_CG_PG")
	s0=$(cg_usage "$SB_CG_WSP")
	a0=$(cg_usage "$SB_CG_WSA")
	w0=$(pids_cpu "${wpids[@]}")
	t0=$(now_s)
	pg_as "$PG_BIN/pgbench" -h "$sock" -p "$SB_PG_PORT" -U postgres -n -c 4 -j 2 \
		-R "$STANDBY_RATE" -T "$STANDBY_SECONDS" postgres >"$dir/pgbench.out" 2>&1 ||
		{ tail "$dir/pgbench.out" >&2; fail "$name: pgbench failed; logs in $dir"; }
	t1=$(now_s)
	printf '\n'
	p1=$(cg_usage "$SB_CG_PG")
	s1=$(cg_usage "$SB_CG_WSP")
	a1=$(cg_usage "$SB_CG_WSA")
	w1=$(pids_cpu "${wpids[@]}")
	l1=$(psql_sb "select pg_current_wal_flush_lsn() - '0/0'::pg_lsn")
	read -r _ wlist1 < <(sb_walsenders)
	[[ $wlist1 == "$wlist" ]] || fail "$name: the walsenders changed during the load" \
		"(pids $wlist, then $wlist1): the CPU of those that ended is lost"
	sleep 0.5 # a sample after the load
	for i in "${samplers[@]}"; do
		stop_pid "$i" 5
	done
	tps=$(awk '/^tps = / {printf "%.1f", $3; exit}' "$dir/pgbench.out")
	for kind in direct appliance; do
		raws=()
		for ((i = 1; i <= n; i++)); do
			[[ ${ups[i - 1]} == "$kind" ]] && raws+=("$dir/sb$i.raw")
		done
		((${#raws[@]})) || continue
		sb_lags "$praw" "$t0" "$t1" "${raws[@]}" >"$dir/lags-$kind"
		[[ -s "$dir/lags-$kind" ]] || fail "$name: no replay lag sampled ($kind); logs in $dir"
		sb_record "$([[ $name == standby-lag ]] && echo "$name-$kind" || echo "$name")" "$run" \
			"$(sub "$t1" "$t0")" "${#raws[@]}" "$ws" "$tps" "$(sub "$l1" "$l0")" \
			"$(sub "$p1" "$p0")" "$(sub "$w1" "$w0")" \
			"$( ((SB_WSP_UP)) && sub "$s1" "$s0" || echo -)" \
			"$( ((SB_WSP_UP)) && sub "$a1" "$a0" || echo -)" "$dir/lags-$kind"
	done
	# A checkpoint replayed by every standby before it stops: its shutdown restartpoint is
	# there, so that its next start replays from there, not from its first restartpoint
	# (seconds of CPU per standby and run); and every load starts after a checkpoint.
	psql_sb "checkpoint" >/dev/null
	lsn=$(psql_sb "select pg_current_wal_flush_lsn()")
	for ((i = 1; i <= n; i++)); do
		wait_for 60 "standby sb$i to replay the checkpoint at $lsn" \
			standby_reached "$NS_SB" $((SB_STANDBY_PORT + i)) "$lsn"
		pg_stop "$(sb_data "$i")"
	done
}

# sb_record NAME RUN WALL STANDBYS WALSENDERS TPS WAL_BYTES PG_CPU WALSND_CPU WSP_CPU
# WSA_CPU LAGFILE: append one line to STANDBY_TSV (CPU as percent of one CPU over the
# load, WAL in MB/s, lags in ms) and print it.
sb_record() {
	local name=$1 run=$2 wall=$3 lat=${12} p50 p99 max line
	read -r p50 p99 max < <(latency_summary "$lat")
	line=$(awk -v w="$wall" -v b="$7" -v p="$8" -v ws="$9" -v s="${10}" -v a="${11}" 'BEGIN {
		printf "%.1f %.1f %.1f %s %s", b / 1e6 / w, 100 * p / w, 100 * ws / w,
			(s == "-" ? "-" : sprintf("%.1f", 100 * s / w)),
			(a == "-" ? "-" : sprintf("%.1f", 100 * a / w)) }')
	printf '%s %s %s %s %s %s %s %s %s %s\n' "$name" "$run" "$wall" "$4" "$5" "$6" "$line" \
		"$p50" "$p99" "$max" >>"$STANDBY_TSV"
	cp "$lat" "$RUN_DIR/lat/$name.$run"
	# shellcheck disable=SC2086  # split line into its fields
	set -- "$4" "$5" "$6" $line
	log "$(printf '%-22s run %d: %d standbys, %d walsenders, %s tps, WAL %s MB/s, CPU %% primary postgres %s (walsenders %s) walshipd %s appliance %s, replay lag p50 %s p99 %s max %s ms' \
		"$name" "$run" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$p50" "$p99" "$max")"
}

# sb_run_all RUN: every standby contender once, then the primary walshipd stopped (it
# would stream idle WAL during the other contenders' runs).
sb_run_all() {
	local c
	for c in $(sb_contenders); do
		run_sb "$1" "$c"
	done
	sb_wsp 0
}

# sb_cleanup: after ws_cleanup has stopped the clusters and daemons, delete their data (8
# standbys at scale 10 and the appliance's archive are gigabytes); their logs stay.
sb_cleanup() {
	[[ -n "$SB_DIR" ]] || return 0
	rm -rf "$SB_DIR"/primary "$SB_DIR"/base "$SB_DIR"/sb[1-8] "$SB_DIR"/wsa/archive \
		"$SB_DIR"/wsp/spool
}
