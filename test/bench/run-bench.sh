#!/bin/bash
# walship benchmark (`make bench`, issue 7): walship against what users run today, on the
# same BENCH_SEGMENTS real 16 MiB WAL segments (from a PostgreSQL 15 primary that pgbench
# filled), each contender BENCH_RUNS times, alternating, between network-namespace hosts:
# one sender host and up to 8 receiver hosts on a bridge in the sender's namespace.
#
#   walship        walshipd primary -> walshipd replica, every segment handed over by
#                  `walship push` one after another as PostgreSQL's archiver does,
#                  sync_replicas = 1 (a push returns once the replica has it durably);
#   walship-async  the same with sync_replicas = 0: the replica is connected (so
#                  registered) and a push returns once the primary's spool holds the file
#                  for it; the run ends when the replica has every file durably;
#   walship-probes walship with probes = on in both daemons (BPF fsync and send latency;
#                  its `walship stats --json` is kept); left out without BTF;
#   walship-buf    walship with send_source = buffers;
#   pgbr-sync-off, pgbr-sync-none, pgbr-sync-lz4, pgbr-async-off, pgbr-async-lz4
#                  pgBackRest `archive-push` as archive_command to a repository host over
#                  TLS (`pgbackrest server` on the receiver, certificates made at run time),
#                  synchronous, or archive-async = y with process-max = 2 and a spool;
#                  compression off (compress-type none and compress-level-network 0),
#                  none (compress-type none: pgBackRest then still compresses on the wire
#                  with compress-level-network, its default 3, as users run it) or lz4.  pg1-path is a copy of the
#                  corpus cluster's control data (its pg_control: system identifier and
#                  version), with the segments linked into its pg_wal and marked .ready,
#                  as PostgreSQL leaves them; the wrapper renames .ready to .done as the
#                  archiver does, so the async look-ahead sees what PostgreSQL would show it;
#   baseline       build/helpers/bench_baseline send/recv: plain read()/write() over one TCP
#                  connection; the receiver writes NAME.tmp, fsyncs it, renames it, fsyncs
#                  the directory and acks each file (the machine's practical limit);
#   cp             a durable cp archive_command (cp, sync file, mv, sync directory);
#   streaming      PostgreSQL's own streaming replication (a PostgreSQL 15 primary on the
#                  sender, a standby on the receiver) under pgbench load for
#                  BENCH_STREAM_SECONDS: throughput is the WAL it generated and streamed,
#                  latency is pg_stat_replication.flush_lag sampled every 0.1 s (WAL flushed
#                  on the primary until flushed on the standby): the lag reference;
#   fanout-N       walship to N = 1 2 4 8 replica hosts (BENCH_FANOUT), sync_replicas = N,
#                  on the first BENCH_FANOUT_SEGMENTS segments (every replica stores a full
#                  copy: 8 x 500 segments would need 67 GB of disk).
#
# For each: segments/s, MB/s, CPU seconds per GB on the sending and on the receiving host
# (cpuacct cgroups around everything each side runs, so forked and detached processes
# count), per-segment acknowledgement latency p50/p99/max (archive_command start until it
# returns), and the ratio of its throughput to the plain baseline of the same run; the
# median over the runs.  Results: build/bench-results.txt, docs/benchmarks.md (BENCH_DOC)
# and PNG plots docs/bench-*.png (BENCH_PLOTS), made with gnuplot.
#
# Page cache policy: the corpus is kept warm (read once before every run, for every
# contender alike); the receivers' stores are emptied and everything synced before every run.
#
# Environment:
#   BENCH_SEGMENTS=N    segments shipped per run (default 500, as issue 7 asks: 3 runs
#                       take about 45 minutes on the shared 2-core machine, pgBackRest
#                       sync alone about 2.5 minutes a run)
#   BENCH_RUNS=N        runs per contender (default 3); the median is reported
#   BENCH_FANOUT="1 2 4 8"   replica counts of the fan-out contenders ("" leaves them out)
#   BENCH_FANOUT_SEGMENTS=N  segments per fan-out run (default 50, at most BENCH_SEGMENTS)
#   BENCH_STREAM_SECONDS=N   pgbench load of the streaming contender (default 20; 0: none)
#   BENCH_STREAM_SCALE=N     pgbench scale of that load (default 10)
#   BENCH_PGBR=0        leave out the pgBackRest contenders (default 1)
#   BENCH_PROGRESS=N    print a counter every N segments (default 50)
#   BENCH_WALSHIP_EXTRA="key=value ..."  extra config keys for every walshipd
#   BENCH_PROBES=0      leave out the walship-probes contender (default 1: in it with BTF)
#   BENCH_RUN_DIR=DIR   logs and the receivers' stores (default build/bench-run; emptied
#                       at the start; must be on a real disk, not tmpfs)
#   BENCH_RESULTS=FILE  where the text table is written (default build/bench-results.txt)
#   BENCH_REPORT_ONLY=1 write the table, plots and doc again from the last run's results
#   BENCH_DOC=FILE      the Markdown report (default docs/benchmarks.md; "" for none)
#   BENCH_PLOTS=DIR     where bench-*.png go (default docs; "" for none)
#   PG_BIN              PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
#
# The corpus is real WAL from a throw-away PostgreSQL 15 cluster running pgbench; it is
# cached under build/bench-corpus/<count>/ with the stopped cluster itself in cluster/ (a
# larger cached corpus serves a smaller count).  Logs of the last run stay in
# build/bench-run/.  Exit status: 0 when every run of every contender shipped every
# segment, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build
WALSHIPD=$BUILD/walshipd
WALSHIP=$BUILD/walship
HELPER=$BUILD/helpers/bench_baseline
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SEGMENTS=${BENCH_SEGMENTS:-500}
RUNS=${BENCH_RUNS:-3}
FANOUT=${BENCH_FANOUT-1 2 4 8}
FANOUT_SEGMENTS=${BENCH_FANOUT_SEGMENTS:-50}
STREAM_SECONDS=${BENCH_STREAM_SECONDS:-20}
STREAM_SCALE=${BENCH_STREAM_SCALE:-10}
PGBR=${BENCH_PGBR:-1}
PROGRESS=${BENCH_PROGRESS:-50}
WALSHIP_EXTRA=${BENCH_WALSHIP_EXTRA:-}
PROBES=${BENCH_PROBES:-1}
CORPUS_ROOT=$BUILD/bench-corpus
RUN_DIR=${BENCH_RUN_DIR:-$BUILD/bench-run}
RESULTS=${BENCH_RESULTS:-$BUILD/bench-results.txt}
DOC=${BENCH_DOC-$ROOT/docs/benchmarks.md}
PLOTS=${BENCH_PLOTS-$ROOT/docs}
SEG_BYTES=$((16 * 1024 * 1024))
((FANOUT_SEGMENTS <= SEGMENTS)) || FANOUT_SEGMENTS=$SEGMENTS

NS_SND="wsbench-$$-snd"
NS_PREFIX="wsbench-$$-r"
NET=10.201.0
ADDR_SND=$NET.1
ADDR_RCV=$NET.2
WALSHIP_PORT=5480
BASELINE_PORT=5490
PGBR_PORT=8432
STREAM_PORT=5433
CG_ROOT=/sys/fs/cgroup/cpuacct
CG_SND=wsbench-$$-snd
CG_RCV=wsbench-$$-rcv

CLK_TCK=$(getconf CLK_TCK)
NAMESPACES=()
CGROUPS=()
PIDS=()
PG_DIRS=()
GEN_DIR=""
GEN_PG_UP=0
CLEANED=0
MAX_REPLICAS=1
# log MSG...: a progress line on stdout with the time.
log() {
	printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*"
}

# die MSG...: report a fatal error and exit 1 (cleanup runs from the EXIT trap).
die() {
	printf 'bench: ERROR: %s\n' "$*" >&2
	exit 1
}

# pid_alive PID: true if PID runs and is not a zombie.
pid_alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n "$state" && "$state" != Z* ]]
}

# stop_pid PID [TIMEOUT_S]: SIGTERM PID, wait (default 10 s at most), then SIGKILL it.
stop_pid() {
	local pid=$1 timeout=${2:-10} deadline
	deadline=$((SECONDS + timeout))
	kill -TERM "$pid" 2>/dev/null || return 0
	while pid_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			echo "bench: pid $pid ignored SIGTERM for ${timeout}s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# cleanup: EXIT trap: stop what we started (daemons, receivers, the corpus cluster),
# delete our namespaces and the corpus scratch directory; the corpus cache and the logs
# in build/bench-run stay.  Keeps the exit status.
cleanup() {
	local rc=$? pid ns d cg
	((CLEANED)) && return "$rc"
	CLEANED=1
	set +e
	trap '' INT TERM
	for pid in "${PIDS[@]}"; do
		pid_alive "$pid" && stop_pid "$pid" 5
	done
	for d in "${PG_DIRS[@]}"; do
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 30 stop \
			>/dev/null 2>&1
	done
	if ((GEN_PG_UP)); then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$GEN_DIR/pgdata" -m immediate -w \
			-t 30 stop >/dev/null 2>&1
	fi
	[[ -n "$GEN_DIR" ]] && rm -rf "$GEN_DIR"
	for ns in "${NAMESPACES[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns delete "$ns" 2>/dev/null
	done
	for cg in "${CGROUPS[@]}"; do
		for pid in $(cat "$CG_ROOT/$cg/cgroup.procs" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		sleep 0.2
		rmdir "$CG_ROOT/$cg" 2>/dev/null
	done
	return "$rc"
}

# wait_for TIMEOUT_S WHAT CMD...: poll CMD every 0.1 s until it succeeds; die after
# TIMEOUT_S seconds.
wait_for() {
	local timeout=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
		sleep 0.1
	done
}

# wait_for_or TIMEOUT_S WHAT LOG CMD...: wait_for, printing LOG when it times out.
wait_for_or() {
	local timeout=$1 what=$2 logf=$3 deadline
	shift 3
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || { cat "$logf" >&2; die "timed out after ${timeout}s waiting for $what"; }
		sleep 0.1
	done
}

# require: check that we are root and that the binaries and tools we need exist.
require() {
	((EUID == 0)) || die "needs root (network namespaces, runuser)"
	local f c
	for f in "$WALSHIPD" "$WALSHIP" "$HELPER"; do
		[[ -x "$f" ]] || die "$f not built: run make"
	done
	if ((PGBR)); then
		command -v pgbackrest >/dev/null || die "pgbackrest not found (scripts/install-deps.sh)"
	fi
	[[ -d "$CG_ROOT" ]] || die "no cpuacct cgroup at $CG_ROOT (CPU accounting)"
	for c in ip runuser awk sort sync openssl; do
		command -v "$c" >/dev/null || die "command $c not found (scripts/install-deps.sh)"
	done
}

# ---------------------------------------------------------------------------------------
# Corpus

# corpus_find N: print the smallest cached corpus directory holding at least N segments,
# or nothing.
corpus_find() {
	local n=$1 d count best="" bestcount=0
	for d in "$CORPUS_ROOT"/*/; do
		d=${d%/}
		[[ -f "$d/.complete" && -f "$d/cluster/global/pg_control" ]] || continue
		count=$(cat "$d/.complete")
		if ((count >= n)) && { [[ -z "$best" ]] || ((count < bestcount)); }; then
			best=$d
			bestcount=$count
		fi
	done
	[[ -n "$best" ]] && printf '%s\n' "$best"
	return 0
}

# archived_count DIR: the number of completed WAL segments (24 hex digits) in DIR.
archived_count() {
	find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' |
		wc -l
}

# completed_unarchived PGDATA: the number of completed segments waiting for the archiver.
completed_unarchived() {
	find "$1/pg_wal/archive_status" -maxdepth 1 -name '*.ready' | wc -l
}

# archived_at_least DIR N: true if DIR holds at least N completed segments.
archived_at_least() {
	(($(archived_count "$1") >= $2))
}

# corpus_generate N: run a PostgreSQL 15 primary (fsync off, archiving with cp) under
# pgbench until N completed segments are archived, keep the first N in
# build/bench-corpus/N, stop the cluster.
corpus_generate() {
	local n=$1 pgdata arch sock dest count rounds=0
	[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 not found in $PG_BIN"
	id postgres >/dev/null 2>&1 || die "no postgres user"
	mkdir -p "$CORPUS_ROOT"
	GEN_DIR=$(mktemp -d "$CORPUS_ROOT/.gen.XXXXXX")
	pgdata=$GEN_DIR/pgdata
	arch=$GEN_DIR/archive
	sock=$GEN_DIR/sock
	mkdir -p "$pgdata" "$arch" "$sock"
	chown -R postgres:postgres "$GEN_DIR"
	chmod 0700 "$pgdata"
	log "corpus: generating $n segments with PostgreSQL 15 + pgbench in $GEN_DIR"
	runuser -u postgres -- "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust \
		--no-locale -E UTF8 >"$GEN_DIR/initdb.out" 2>&1 ||
		{ cat "$GEN_DIR/initdb.out" >&2; die "initdb failed"; }
	cat >>"$pgdata/postgresql.conf" <<-EOF
		# walship bench corpus: fast and throw-away
		listen_addresses = ''
		unix_socket_directories = '$sock'
		fsync = off
		synchronous_commit = off
		full_page_writes = on
		wal_level = replica
		archive_mode = on
		archive_command = 'cp %p $arch/%f.tmp && mv $arch/%f.tmp $arch/%f'
		max_wal_size = 16GB
		checkpoint_timeout = 30s
		shared_buffers = 256MB
		max_connections = 20
	EOF
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pgdata" -l "$GEN_DIR/pg.log" -w -t 60 \
		start >/dev/null || { tail -n 20 "$GEN_DIR/pg.log" >&2; die "could not start PostgreSQL"; }
	GEN_PG_UP=1
	# Bulk WAL from pgbench's initialisation (server-side generation), with a short
	# transactional run after each round so the corpus also holds ordinary OLTP records.
	while (($(archived_count "$arch") + $(completed_unarchived "$pgdata") < n)); do
		((rounds++ < 200)) || die "corpus: still fewer than $n segments after 200 rounds"
		runuser -u postgres -- "$PG_BIN/pgbench" -h "$sock" -U postgres -i -q -I dtGvp \
			-s 20 postgres >>"$GEN_DIR/pgbench.out" 2>&1 ||
			{ tail -n 20 "$GEN_DIR/pgbench.out" >&2; die "pgbench -i failed"; }
		runuser -u postgres -- "$PG_BIN/pgbench" -h "$sock" -U postgres -n -c 4 -j 2 -T 3 \
			postgres >>"$GEN_DIR/pgbench.out" 2>&1 ||
			{ tail -n 20 "$GEN_DIR/pgbench.out" >&2; die "pgbench run failed"; }
		log "corpus: $(archived_count "$arch") of $n segments archived," \
			"$(completed_unarchived "$pgdata") more completed"
	done
	wait_for 300 "the archiver to archive $n segments" archived_at_least "$arch" "$n"
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null ||
		die "could not stop the corpus cluster"
	GEN_PG_UP=0
	count=$(archived_count "$arch")
	((count >= n)) || die "corpus: only $count segments archived"
	dest=$CORPUS_ROOT/$n
	rm -rf "$dest"
	mkdir -p "$dest"
	find "$arch" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' |
		sort | head -n "$n" | xargs mv -t "$dest"
	chown -R root:root "$dest"
	# Keep the corpus cluster itself (stopped, its pg_wal emptied: the segments are the
	# corpus): pgBackRest's stanza and archive-push read its pg_control (system identifier,
	# version), and the segments' page headers carry that system identifier.
	find "$pgdata/pg_wal" -type f -delete
	mv "$pgdata" "$dest/cluster"
	sync
	echo "$n" >"$dest/.complete"
	rm -rf "$GEN_DIR"
	GEN_DIR=""
	log "corpus: $n segments cached in $dest"
}

# corpus_prepare: set CORPUS_LIST (a file listing the first SEGMENTS segments of a cached
# corpus, generating one if none is big enough) and check every segment is 16 MiB.
corpus_prepare() {
	local dir f
	dir=$(corpus_find "$SEGMENTS")
	if [[ -z "$dir" ]]; then
		corpus_generate "$SEGMENTS"
		dir=$(corpus_find "$SEGMENTS")
	else
		log "corpus: using the cache in $dir"
	fi
	CORPUS_DIR=$dir
	CORPUS_LIST=$RUN_DIR/corpus.list
	find "$dir" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' |
		sort | head -n "$SEGMENTS" >"$CORPUS_LIST"
	while IFS= read -r f; do
		[[ $(stat -c %s "$f") == "$SEG_BYTES" ]] || die "corpus file $f is not 16 MiB"
	done <"$CORPUS_LIST"
	(($(wc -l <"$CORPUS_LIST") == SEGMENTS)) || die "corpus list is short"
	CORPUS_BYTES=$((SEGMENTS * SEG_BYTES))
}

# ---------------------------------------------------------------------------------------
# Hosts and CPU accounting

# net_create: the sender namespace with bridge br0 ($ADDR_SND) and MAX_REPLICAS receiver
# namespaces ${NS_PREFIX}1.. ($NET.2 ..) on it, addresses inside them only; checks that
# each reaches the sender.  NS_RCV (receiver 1) hosts every one-receiver contender.
net_create() {
	local i ns
	ip netns add "$NS_SND"
	NAMESPACES+=("$NS_SND")
	ip -n "$NS_SND" link set lo up
	ip -n "$NS_SND" link add br0 type bridge
	ip -n "$NS_SND" link set br0 type bridge forward_delay 0 stp_state 0
	ip -n "$NS_SND" addr add "$ADDR_SND/24" dev br0
	ip -n "$NS_SND" link set br0 up
	for ((i = 1; i <= MAX_REPLICAS; i++)); do
		ns=$NS_PREFIX$i
		ip netns add "$ns"
		NAMESPACES+=("$ns")
		ip -n "$ns" link set lo up
		ip -n "$NS_SND" link add "veth$i" type veth peer name eth0 netns "$ns"
		ip -n "$NS_SND" link set "veth$i" master br0
		ip -n "$NS_SND" link set "veth$i" up
		ip -n "$ns" addr add "$NET.$((1 + i))/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
	for ((i = 1; i <= MAX_REPLICAS; i++)); do
		wait_for 10 "receiver $i to reach the sender" \
			ip netns exec "$NS_PREFIX$i" ping -c 1 -W 1 "$ADDR_SND"
	done
	NS_RCV=${NS_PREFIX}1
	log "hosts: $NS_SND ($ADDR_SND, bridge) and $MAX_REPLICAS receiver(s)" \
		"${NS_PREFIX}1.. ($ADDR_RCV ..)"
}

# cg_create: the cpuacct cgroups of the sending and the receiving side.
cg_create() {
	local cg
	for cg in "$CG_SND" "$CG_RCV"; do
		mkdir "$CG_ROOT/$cg"
		CGROUPS+=("$cg")
	done
}

# cg_usage CG: CPU seconds used so far by every process that ran in CG.
cg_usage() {
	awk '{printf "%.3f\n", $1 / 1e9}' "$CG_ROOT/$1/cpuacct.usage"
}

# cg_idle CG: true when no process runs in CG.
cg_idle() {
	[[ -z "$(cat "$CG_ROOT/$1/cgroup.procs")" ]]
}

# on HOSTNS CG CMD...: run CMD in network namespace HOSTNS inside cgroup CG.
on() {
	local ns=$1 cg=$2
	shift 2
	# shellcheck disable=SC2016  # expanded by sh
	# Join the cgroup first: ip netns exec mounts its own /sys, without the cgroup trees.
	sh -c 'echo $$ >"$0" && exec "$@"' "$CG_ROOT/$cg/cgroup.procs" ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------------------
# Measurement helpers

# proc_cpu PID: print the CPU seconds (user + system, all threads) used so far by PID.
proc_cpu() {
	local stat rest
	stat=$(cat "/proc/$1/stat")
	rest=${stat##*) }
	# After "pid (comm) ", utime and stime are fields 12 and 13.
	awk -v tck="$CLK_TCK" '{printf "%.3f\n", ($12 + $13) / tck}' <<<"$rest"
}

# stats_field FILE KEY: the value after KEY in a bench_baseline stats line.
stats_field() {
	awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$1"
}

# now_s: seconds since the epoch with nanoseconds.
now_s() {
	date +%s.%N
}

# sub A B: A - B to three decimals.
sub() {
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", a - b}'
}

# latency_summary FILE: print "p50 p99 max" in milliseconds of the microsecond latencies
# in FILE (nearest-rank percentiles).
latency_summary() {
	sort -n "$1" | awk '{v[NR] = $1}
		END {
			if (NR == 0) { print "- - -"; exit }
			i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
			i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
			printf "%.2f %.2f %.2f\n", v[i50] / 1000, v[i99] / 1000, v[NR] / 1000
		}'
}

# record CONTENDER RUN NSEG BYTES WALL_S SND_CPU RCV_CPU LATFILE [NREPLICAS]: append one
# run's figures to RESULTS_TSV and print them.  RCV_CPU may be "-".  CPU per GB is per
# GB shipped to each replica (the bytes times NREPLICAS, default 1).
record() {
	local name=$1 run=$2 nseg=$3 bytes=$4 wall=$5 scpu=$6 rcpu=$7 lat=$8 nrep=${9:-1}
	local p50 p99 max line
	read -r p50 p99 max < <(latency_summary "$lat")
	line=$(awk -v n="$nseg" -v b="$bytes" -v w="$wall" -v s="$scpu" -v r="$rcpu" -v k="$nrep" \
		'BEGIN {
			gb = b * k / 1e9
			printf "%.1f %.0f %.3f %s", n / w, b / 1e6 / w, s / gb,
				(r == "-" ? "-" : sprintf("%.3f", r / gb))
		}')
	printf '%s %s %s %s %s %s %s %s\n' "$name" "$run" "$wall" "$line" "$p50" "$p99" "$max" \
		"$nrep" >>"$RESULTS_TSV"
	cp "$lat" "$RUN_DIR/lat/$name.$run"
	# shellcheck disable=SC2086  # split line into its fields
	set -- $line
	printf '\n'
	log "$(printf '%-15s run %d: %6.1f seg/s %6s MB/s  cpu/GB send %6s s recv %6s s  latency p50 %s p99 %s max %s ms' \
		"$name" "$run" "$1" "$2" "$3" "$4" "$p50" "$p99" "$max")"
}

# store_reset DIR...: empty each store, sync, and warm the corpus into the page cache
# (the same for every contender).
store_reset() {
	local d
	for d in "$@"; do
		rm -rf "$d"
		mkdir -p "$d"
	done
	sync
	xargs cat <"$CORPUS_LIST" >/dev/null
}

# store_check NAME DIR LIST: die unless DIR holds every segment of LIST, each 16 MiB,
# and the first and last are byte-identical to the corpus.
store_check() {
	local name=$1 store=$2 list=$3 count first last n
	n=$(wc -l <"$list")
	count=$(archived_count "$store")
	((count == n)) || die "$name: $store has $count segments, not $n"
	if find "$store" -maxdepth 1 -type f ! -size "${SEG_BYTES}c" | grep -q .; then
		die "$name: $store has files that are not 16 MiB"
	fi
	first=$(head -n 1 "$list")
	last=$(tail -n 1 "$list")
	cmp -s "$first" "$store/${first##*/}" || die "$name: ${first##*/} differs in $store"
	cmp -s "$last" "$store/${last##*/}" || die "$name: ${last##*/} differs in $store"
}

# settle CG: wait (60 s at most) until every process of CG exited (the async contenders'
# background processes), so that a run's CPU is all counted and none spills into the next.
settle() {
	wait_for 60 "the processes of cgroup $1 to exit" cg_idle "$1"
}

# progress_start NAME RUN: the start of a progress line.
progress_start() {
	printf '%s [bench] %-15s run %d:' "$(date +%H:%M:%S)" "$1" "$2"
}

# ---------------------------------------------------------------------------------------
# walship

# walship_conf FILE KEY=VALUE...: write a walshipd config, plus BENCH_WALSHIP_EXTRA.
walship_conf() {
	local file=$1 kv
	shift
	{
		echo "# written by test/bench/run-bench.sh"
		echo "tls = off" # namespaces on one host: plaintext, said explicitly
		for kv in "$@" $WALSHIP_EXTRA; do
			printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"
		done
	} >"$file"
}

# daemon_start NS CG CONF LOG: start walshipd -c CONF in NS and cgroup CG (stderr to LOG);
# sets DAEMON_PID; waits (10 s at most) for its control socket.
daemon_start() {
	local ns=$1 cg=$2 conf=$3 logf=$4 sock
	sock=$(awk -F' *= *' '$1 == "socket" {print $2}' "$conf")
	rm -f "$sock"
	# A simple command, so that $! is walshipd itself (ip and sh exec into it).
	# shellcheck disable=SC2016  # expanded by sh
	sh -c 'echo $$ >"$0" && exec "$@"' "$CG_ROOT/$cg/cgroup.procs" ip netns exec "$ns" \
		"$WALSHIPD" -c "$conf" >"$logf" 2>&1 &
	DAEMON_PID=$!
	PIDS+=("$DAEMON_PID")
	local deadline=$((SECONDS + 10))
	until [[ -S "$sock" ]]; do
		pid_alive "$DAEMON_PID" || { tail -n 20 "$logf" >&2; die "walshipd -c $conf exited"; }
		((SECONDS < deadline)) || { tail -n 20 "$logf" >&2; die "walshipd -c $conf: no socket"; }
		sleep 0.05
	done
}

# run_walship RUN NAME SEND_SOURCE PROBES SYNC NREPLICAS LIST: one walship run: fresh
# daemons (a primary on the sender, NREPLICAS replicas), push every segment of LIST, wait
# until every replica has every segment, measure.  SYNC is the primary's sync_replicas.
run_walship() {
	local run=$1 name=$2 source=$3 probes=$4 sync=$5 nrep=$6 list=$7
	local dir pconf ppid i st=0 s0 r0 t0 t1 s1 r1 nseg f
	local -a rpids=() stores=()
	nseg=$(wc -l <"$list")
	dir=$RUN_DIR/$name-$run
	mkdir -p "$dir/spool"
	pconf=$dir/primary.conf
	walship_conf "$pconf" role=primary node_name=bench-snd "listen=$ADDR_SND:$WALSHIP_PORT" \
		"socket=$dir/p.sock" "spool_dir=$dir/spool" socket_permissions=0600 \
		"sync_replicas=$sync" max_senders=8 push_timeout=60s "send_source=$source" \
		"probes=$probes"
	for ((i = 1; i <= nrep; i++)); do
		stores+=("$RUN_DIR/store$i")
		walship_conf "$dir/replica$i.conf" role=replica "node_name=bench-rcv$i" \
			"upstream=$ADDR_SND:$WALSHIP_PORT" "archive_dir=$RUN_DIR/store$i" \
			"socket=$dir/r$i.sock" socket_permissions=0600 reconnect_min=50ms \
			reconnect_max=500ms "probes=$probes"
	done
	store_reset "${stores[@]}"
	daemon_start "$NS_SND" "$CG_SND" "$pconf" "$dir/primary.log"
	ppid=$DAEMON_PID
	for ((i = 1; i <= nrep; i++)); do
		daemon_start "$NS_PREFIX$i" "$CG_RCV" "$dir/replica$i.conf" "$dir/replica$i.log"
		rpids+=("$DAEMON_PID")
	done
	for ((i = 1; i <= nrep; i++)); do
		wait_for 20 "replica $i to connect to the primary" \
			grep -q "connected to primary" "$dir/replica$i.log"
	done
	for f in "$dir"/primary.log "$dir"/replica*.log; do
		if grep -q "BPF probes on" "$f"; then
			[[ $probes == on ]] || die "$name: probes are on in $f"
		else
			[[ $probes != on ]] || die "$name: probes are not on in $f"
		fi
	done
	progress_start "$name" "$run"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	t0=$(now_s)
	on "$NS_SND" "$CG_SND" timeout -k 5 900 "$HELPER" each --list "$list" \
		--latencies "$dir/latencies" --stats "$dir/stats" --progress "$PROGRESS" \
		-- "$WALSHIP" push -c "$pconf" 2>"$dir/push.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/push.err" >&2
		echo "---- tail of $dir/primary.log ----" >&2
		tail -n 30 "$dir/primary.log" >&2
		die "$name run $run failed (exit $st); logs in $dir"
	fi
	# Asynchronous: the run ends when every replica has every file.
	for ((i = 1; i <= nrep; i++)); do
		wait_for 300 "replica $i to store $nseg segments" \
			archived_at_least "$RUN_DIR/store$i" "$nseg"
	done
	t1=$(now_s)
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	if [[ $probes == on ]]; then
		# The histograms are pinned in the daemons' mount namespaces (ip netns exec).
		nsenter -t "$ppid" -m "$WALSHIP" stats -c "$pconf" --json \
			>"$RUN_DIR/probes-primary.json" 2>&1 || true
		nsenter -t "${rpids[0]}" -m "$WALSHIP" stats -c "$dir/replica1.conf" --json \
			>"$RUN_DIR/probes-replica.json" 2>&1 || true
		"$WALSHIP" status -c "$pconf" >"$RUN_DIR/status-primary.txt" 2>&1 || true
		"$WALSHIP" status -c "$dir/replica1.conf" >"$RUN_DIR/status-replica.txt" 2>&1 || true
	fi
	stop_pid "$ppid"
	for i in "${rpids[@]}"; do
		stop_pid "$i"
	done
	for ((i = 1; i <= nrep; i++)); do
		store_check "$name" "$RUN_DIR/store$i" "$list"
	done
	record "$name" "$run" "$nseg" $((nseg * SEG_BYTES)) \
		"$( ((sync > 0)) && stats_field "$dir/stats" wall_s || sub "$t1" "$t0")" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies" "$nrep"
}

# ---------------------------------------------------------------------------------------
# The plain contenders

# run_baseline RUN: one plain read/write + fsync run over TCP.
run_baseline() {
	local run=$1 dir rpid st=0 s0 r0 s1 r1
	dir=$RUN_DIR/baseline-$run
	mkdir -p "$dir"
	store_reset "$RUN_DIR/store1"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	on "$NS_RCV" "$CG_RCV" timeout -k 5 900 "$HELPER" recv \
		--listen "$ADDR_RCV:$BASELINE_PORT" --dir "$RUN_DIR/store1" \
		--stats "$dir/recv.stats" 2>"$dir/recv.err" &
	rpid=$!
	PIDS+=("$rpid")
	progress_start baseline "$run"
	# shellcheck disable=SC2046  # one argument per corpus file
	on "$NS_SND" "$CG_SND" timeout -k 5 900 "$HELPER" send \
		--connect "$ADDR_RCV:$BASELINE_PORT" --latencies "$dir/latencies" \
		--stats "$dir/send.stats" --progress "$PROGRESS" $(cat "$CORPUS_LIST") \
		2>"$dir/send.err" || st=$?
	wait "$rpid" || st=$((st ? st : 1))
	if ((st != 0)); then
		printf '\n'
		cat "$dir/send.err" "$dir/recv.err" >&2
		die "baseline run $run failed; logs in $dir"
	fi
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	store_check baseline "$RUN_DIR/store1" "$CORPUS_LIST"
	record baseline "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/send.stats" wall_s)" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies"
}

# run_cp RUN: one run of a durable cp archive_command, once per segment.
run_cp() {
	local run=$1 dir st=0 s0 s1
	dir=$RUN_DIR/cp-$run
	# The archive_command: copy under a temporary name, fsync it, rename, fsync the dir.
	# shellcheck disable=SC2016  # expanded by sh -c, not here
	local cmd='d=$1; f=${2##*/}; cp "$2" "$d/$f.tmp" && sync "$d/$f.tmp" &&
		mv "$d/$f.tmp" "$d/$f" && sync "$d"'
	mkdir -p "$dir"
	store_reset "$RUN_DIR/store1"
	progress_start cp "$run"
	s0=$(cg_usage "$CG_SND")
	on "$NS_SND" "$CG_SND" timeout -k 5 900 "$HELPER" each --list "$CORPUS_LIST" \
		--latencies "$dir/latencies" --stats "$dir/stats" --progress "$PROGRESS" \
		-- sh -c "$cmd" sh "$RUN_DIR/store1" 2>"$dir/each.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/each.err" >&2
		die "cp run $run failed; logs in $dir"
	fi
	s1=$(cg_usage "$CG_SND")
	store_check cp "$RUN_DIR/store1" "$CORPUS_LIST"
	record cp "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/stats" wall_s)" \
		"$(sub "$s1" "$s0")" - "$dir/latencies"
}

# ---------------------------------------------------------------------------------------
# pgBackRest

# pgbr_setup: TLS certificates (a CA, the repository host's server certificate for
# $ADDR_RCV, a client certificate with CN = the stanza), the repository host's config,
# `pgbackrest server` on receiver 1, and pg1-path: a copy of the corpus cluster's control
# data with an empty pg_wal/archive_status.
pgbr_setup() {
	local d=$RUN_DIR/pgbr tls
	tls=$d/tls
	mkdir -p "$tls" "$d/log" "$d/lock" "$d/pgdata/pg_wal/archive_status"
	log "pgBackRest $(pgbackrest version | awk '{print $2}'): certificates, repository host, stanza"
	(
		cd "$tls"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=walship bench CA" \
			-keyout ca.key -out ca.crt
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$ADDR_RCV" -keyout server.key \
			-out server.csr
		printf 'subjectAltName = DNS:%s, IP:%s\n' "$ADDR_RCV" "$ADDR_RCV" >server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile server.ext -out server.crt
		openssl req -newkey rsa:2048 -nodes -subj "/CN=bench" -keyout client.key \
			-out client.csr
		openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-out client.crt
	) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "openssl failed"; }
	chmod 0600 "$tls"/*.key
	cp -a "$CORPUS_DIR/cluster/PG_VERSION" "$CORPUS_DIR/cluster/global" "$d/pgdata/"
	cat >"$d/server.conf" <<-CONF
		[global]
		repo1-path=$d/repo
		log-path=$d/log
		lock-path=$d/lock
		tls-server-address=$ADDR_RCV
		tls-server-port=$PGBR_PORT
		tls-server-ca-file=$tls/ca.crt
		tls-server-cert-file=$tls/server.crt
		tls-server-key-file=$tls/server.key
		tls-server-auth=bench=bench

		[bench]
		pg1-path=$d/pgdata
	CONF
	chown -R postgres:postgres "$d"
	# shellcheck disable=SC2016  # expanded by sh
	sh -c 'echo $$ >"$0" && exec "$@"' "$CG_ROOT/$CG_RCV/cgroup.procs" ip netns exec "$NS_RCV" \
		runuser -u postgres -- pgbackrest --config="$d/server.conf" server \
		>"$d/server.out" 2>&1 &
	PIDS+=("$!")
	wait_for_or 10 "pgbackrest server to listen" "$d/server.out" \
		ip netns exec "$NS_RCV" bash -c "echo >/dev/tcp/$ADDR_RCV/$PGBR_PORT"
}

# pgbr_client_conf FILE COMPRESS ASYNC: the database host's config: repository host over
# TLS, compress-type COMPRESS (off: none, and no compression on the wire either),
# archive-async ASYNC (y: process-max = 2 and a spool).
pgbr_client_conf() {
	local file=$1 compress=$2 async=$3 d=$RUN_DIR/pgbr net=3
	if [[ $compress == off ]]; then
		compress=none
		net=0
	fi
	cat >"$file" <<-CONF
		[global]
		repo1-host=$ADDR_RCV
		repo1-host-type=tls
		repo1-host-port=$PGBR_PORT
		repo1-host-ca-file=$d/tls/ca.crt
		repo1-host-cert-file=$d/tls/client.crt
		repo1-host-key-file=$d/tls/client.key
		repo1-host-config=$d/server.conf
		repo1-path=$d/repo
		log-path=$d/log
		lock-path=$d/lock
		spool-path=$d/spool
		compress-type=$compress
		compress-level-network=$net
		archive-async=$async
		process-max=$([[ $async == y ]] && echo 2 || echo 1)

		[bench]
		pg1-path=$d/pgdata
	CONF
	chown postgres:postgres "$file"
}

# pgbr_stored: the number of segments in the repository's archive.
pgbr_stored() {
	find "$RUN_DIR/pgbr/repo/archive/bench" -type f -regextype posix-extended \
		-regex '.*/[0-9A-F]{24}-[0-9a-f]{40}(\.lz4|\.gz)?' 2>/dev/null | wc -l
}

# run_pgbr RUN NAME COMPRESS ASYNC: one run of pgBackRest archive-push as archive_command.
run_pgbr() {
	local run=$1 name=$2 compress=$3 async=$4 d=$RUN_DIR/pgbr dir conf st=0 s0 r0 s1 r1 t0 t1
	local f wal=$RUN_DIR/pgbr/pgdata/pg_wal
	dir=$RUN_DIR/$name-$run
	mkdir -p "$dir"
	conf=$dir/pgbackrest.conf
	pgbr_client_conf "$conf" "$compress" "$async"
	# A fresh repository and stanza, a fresh spool, pg_wal as PostgreSQL leaves it.
	rm -rf "$d/repo" "$d/spool" "$wal"
	mkdir -p "$wal/archive_status" "$d/repo" "$d/spool"
	while IFS= read -r f; do
		ln "$f" "$wal/" 2>/dev/null || cp "$f" "$wal/"
		: >"$wal/archive_status/${f##*/}.ready"
		printf '%s\n' "$wal/${f##*/}"
	done <"$CORPUS_LIST" >"$dir/list"
	chown -R postgres:postgres "$d/repo" "$d/spool" "$wal" "$dir"
	ip netns exec "$NS_RCV" runuser -u postgres -- pgbackrest --config="$d/server.conf" \
		--stanza=bench --no-online stanza-create >"$dir/stanza.out" 2>&1 ||
		{ cat "$dir/stanza.out" >&2; die "$name: stanza-create failed"; }
	store_reset
	progress_start "$name" "$run"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	t0=$(now_s)
	# archive_command = 'pgbackrest --stanza=bench archive-push %p', run by the archiver
	# (as postgres), which then marks the segment .done.
	# shellcheck disable=SC2016  # expanded by sh -c
	on "$NS_SND" "$CG_SND" runuser -u postgres -- timeout -k 5 1800 "$HELPER" each \
		--list "$dir/list" --latencies "$dir/latencies" --stats "$dir/stats" \
		--progress "$PROGRESS" -- sh -c 'pgbackrest --config="$0" --stanza=bench \
			archive-push "$1" && mv "${1%/*}/archive_status/${1##*/}.ready" \
			"${1%/*}/archive_status/${1##*/}.done"' "$conf" 2>"$dir/each.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/each.err" >&2
		tail -n 20 "$d"/log/*.log >&2 || true
		die "$name run $run failed; logs in $dir and $d/log"
	fi
	t1=$(now_s)
	settle "$CG_SND"
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	(($(pgbr_stored) == SEGMENTS)) || die "$name: the repository has $(pgbr_stored) segments"
	record "$name" "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/stats" wall_s)" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies"
	: "$t0" "$t1"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL streaming replication (the lag reference)

# pg_as CMD...: run CMD as postgres.
pg_as() {
	runuser -u postgres -- "$@"
}

# stream_setup: a PostgreSQL 15 primary on the sender (pgbench tables at
# BENCH_STREAM_SCALE) and a streaming standby on receiver 1 made with pg_basebackup;
# both durable (fsync on), the standby's walreceiver flushing as PostgreSQL does.
stream_setup() {
	local d=$RUN_DIR/stream
	mkdir -p "$d/primary" "$d/sock-p" "$d/sock-s"
	chown -R postgres:postgres "$d"
	chmod 0700 "$d/primary"
	log "streaming: PostgreSQL 15 primary on $NS_SND, standby on $NS_RCV"
	pg_as "$PG_BIN/initdb" -D "$d/primary" -U postgres --auth=trust --no-locale -E UTF8 \
		>"$d/initdb.out" 2>&1 || { cat "$d/initdb.out" >&2; die "initdb failed"; }
	cat >>"$d/primary/postgresql.conf" <<-CONF
		listen_addresses = '$ADDR_SND'
		port = $STREAM_PORT
		unix_socket_directories = '$d/sock-p'
		wal_level = replica
		max_wal_senders = 4
		max_wal_size = 4GB
		shared_buffers = 256MB
		wal_receiver_status_interval = 1s
	CONF
	echo "host replication all $NET.0/24 trust" >>"$d/primary/pg_hba.conf"
	# Outside the cgroups: its CPU is counted per process (walsender, walreceiver).
	ip netns exec "$NS_SND" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d/primary" \
		-l "$d/primary.log" -w -t 60 start >/dev/null ||
		{ tail -n 20 "$d/primary.log" >&2; die "streaming primary did not start"; }
	PG_DIRS+=("$d/primary")
	pg_as "$PG_BIN/pgbench" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -i -q \
		-s "$STREAM_SCALE" postgres >"$d/pgbench-init.out" 2>&1 ||
		{ tail "$d/pgbench-init.out" >&2; die "pgbench -i failed"; }
	ip netns exec "$NS_RCV" runuser -u postgres -- "$PG_BIN/pg_basebackup" -h "$ADDR_SND" \
		-p "$STREAM_PORT" -U postgres -D "$d/standby" -R -X stream -c fast \
		>"$d/basebackup.out" 2>&1 || { cat "$d/basebackup.out" >&2; die "pg_basebackup failed"; }
	cat >>"$d/standby/postgresql.conf" <<-CONF
		listen_addresses = ''
		unix_socket_directories = '$d/sock-s'
		hot_standby = on
		wal_receiver_status_interval = 1s
	CONF
	# Outside the cgroups: its CPU is counted per process (walsender, walreceiver).
	ip netns exec "$NS_RCV" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d/standby" \
		-l "$d/standby.log" -w -t 60 start >/dev/null ||
		{ tail -n 20 "$d/standby.log" >&2; die "standby did not start"; }
	PG_DIRS+=("$d/standby")
	wait_for 30 "the standby to stream" stream_pid walsender
}

# stream_pid walsender|walreceiver: the pid of the streaming walsender (on the primary)
# or walreceiver (on the standby); fails when there is none.
stream_pid() {
	local d=$RUN_DIR/stream q sock
	if [[ $1 == walsender ]]; then
		q="select pid from pg_stat_replication where state = 'streaming'"
		sock=$d/sock-p
	else
		q="select pid from pg_stat_wal_receiver where status = 'streaming'"
		sock=$d/sock-s
	fi
	local pid
	pid=$(timeout -k 2 20 runuser -u postgres -- "$PG_BIN/psql" -h "$sock" -p "$STREAM_PORT" \
		-U postgres -XAtc "$q" postgres </dev/null)
	[[ -n "$pid" ]] && echo "$pid"
}

# psql_p SQL: one value from the streaming primary.
psql_p() {
	timeout -k 2 20 runuser -u postgres -- "$PG_BIN/psql" -h "$RUN_DIR/stream/sock-p" \
		-p "$STREAM_PORT" -U postgres -XAtc "$1" postgres </dev/null
}

# stream_caught_up LSN: true when the standby has flushed LSN.
stream_caught_up() {
	[[ $(psql_p "select coalesce(bool_and(flush_lsn >= '$1'), false) from pg_stat_replication") == t ]]
}

# run_stream RUN: pgbench on the primary for BENCH_STREAM_SECONDS (rounds of the corpus's
# load: pgbench -i of the tables, then a short TPC-B run), flush_lag sampled every 0.1 s.
run_stream() {
	local run=$1 d=$RUN_DIR/stream dir wsnd wrcv c0 c1 rc0 rc1 l0 l1 t0 t1 spid bytes nseg lsn
	dir=$RUN_DIR/streaming-$run
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	wsnd=$(stream_pid walsender) || die "streaming: no walsender"
	wrcv=$(stream_pid walreceiver) || die "streaming: no walreceiver"
	progress_start streaming "$run"
	# The sampler: one session on the primary reporting flush_lag every 0.1 s as a notice
	# (one psql, no pipeline); ended with pg_terminate_backend below.
	pg_as "$PG_BIN/psql" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -Xq \
		-c "set application_name = 'wsbench-sampler'" -c "do \$\$ begin
			for i in 1..$(((STREAM_SECONDS + 300) * 10)) loop
				raise notice 'lag %', (select coalesce((extract(epoch from flush_lag)
					* 1e6)::bigint, -1) from pg_stat_replication limit 1);
				perform pg_sleep(0.1);
			end loop; end \$\$" postgres </dev/null >/dev/null 2>"$dir/lag.raw" &
	spid=$!
	PIDS+=("$spid")
	l0=$(psql_p "select pg_current_wal_lsn() - '0/0'::pg_lsn")
	c0=$(proc_cpu "$wsnd")
	rc0=$(proc_cpu "$wrcv")
	t0=$(now_s)
	while (($(awk -v a="$t0" -v b="$(now_s)" 'BEGIN {print int(b - a)}') < STREAM_SECONDS)); do
		pg_as "$PG_BIN/pgbench" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -i -q -I dtGvp \
			-s "$STREAM_SCALE" postgres >>"$dir/pgbench.out" 2>&1 ||
			{ tail "$dir/pgbench.out" >&2; die "streaming: pgbench -i failed"; }
		pg_as "$PG_BIN/pgbench" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -n -c 4 -j 2 \
			-T 3 postgres >>"$dir/pgbench.out" 2>&1 ||
			{ tail "$dir/pgbench.out" >&2; die "streaming: pgbench failed"; }
		printf ' %s' "$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN {printf "%ds", b - a}')"
	done
	l1=$(psql_p "select pg_current_wal_lsn() - '0/0'::pg_lsn")
	lsn=$(psql_p "select pg_current_wal_lsn()")
	# Until the standby has flushed everything generated.
	wait_for 120 "the standby to catch up" stream_caught_up "$lsn"
	t1=$(now_s)
	c1=$(proc_cpu "$wsnd")
	rc1=$(proc_cpu "$wrcv")
	psql_p "select pg_terminate_backend(pid) from pg_stat_activity
		where application_name = 'wsbench-sampler'" >/dev/null || true
	stop_pid "$spid" 5
	awk '$2 == "lag" && $3 >= 0 {print $3}' "$dir/lag.raw" >"$dir/latencies"
	[[ -s "$dir/latencies" ]] || echo 0 >"$dir/latencies"
	bytes=$(awk -v a="$l0" -v b="$l1" 'BEGIN {printf "%d", b - a}')
	nseg=$(awk -v b="$bytes" -v s="$SEG_BYTES" 'BEGIN {printf "%.1f", b / s}')
	record streaming "$run" "$nseg" "$bytes" "$(sub "$t1" "$t0")" "$(sub "$c1" "$c0")" \
		"$(sub "$rc1" "$rc0")" "$dir/latencies"
}

# ---------------------------------------------------------------------------------------
# Report

# median CONTENDER COLUMN: the median of COLUMN (1-based in RESULTS_TSV) over the runs of
# CONTENDER ("-" if none or the column holds "-").
median() {
	awk -v c="$1" -v k="$2" '$1 == c {print $k}' "$RESULTS_TSV" | sort -g | awk '
		{v[NR] = $1}
		END {
			if (NR == 0 || v[1] == "-") { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]
			else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# median_ratio CONTENDER: the median over the runs of its seg/s divided by the baseline's
# seg/s of the same run.
median_ratio() {
	awk -v c="$1" '$1 == "baseline" {b[$2] = $4} $1 == c {v[$2] = $4}
		END {for (r in v) if (b[r] > 0) printf "%.3f\n", v[r] / b[r]}' "$RESULTS_TSV" |
		sort -g | awk '{v[NR] = $1}
		END {
			if (NR == 0) { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]
			else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# contenders: the contenders that have results, in table order.
contenders() {
	local c
	for c in walship walship-async walship-probes walship-buf pgbr-sync-off pgbr-sync-none \
		pgbr-sync-lz4 pgbr-async-off pgbr-async-none pgbr-async-lz4 baseline cp streaming \
		fanout-1 fanout-2 fanout-4 fanout-8; do
		grep -q "^$c " "$RESULTS_TSV" && echo "$c"
	done
	return 0
}

# table FORMAT: the table of medians, as text or as Markdown (FORMAT = text | md).
table() {
	local c fmt=$1 ms
	if [[ $fmt == md ]]; then
		echo "| contender | seg/s | MB/s | x baseline | send CPU s/GB | recv CPU s/GB | CPU ms/seg (send+recv) | ack p50 ms | ack p99 ms | ack max ms |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	else
		printf '%-15s %7s %6s %7s %9s %9s %9s %8s %8s %8s\n' contender seg/s MB/s \
			"x base" "sndCPU/GB" "rcvCPU/GB" "CPUms/seg" "p50 ms" "p99 ms" "max ms"
	fi
	for c in $(contenders); do
		ms=$(awk -v s="$(median "$c" 6)" -v r="$(median "$c" 7)" 'BEGIN {
			t = s + (r == "-" ? 0 : r); printf "%.1f", t * 16.777216 }')
		if [[ $fmt == md ]]; then
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" \
				"$(median "$c" 4)" "$(median "$c" 5)" "$(median_ratio "$c")" \
				"$(median "$c" 6)" "$(median "$c" 7)" "$ms" "$(median "$c" 8)" \
				"$(median "$c" 9)" "$(median "$c" 10)"
		else
			printf '%-15s %7s %6s %7s %9s %9s %9s %8s %8s %8s\n' "$c" "$(median "$c" 4)" \
				"$(median "$c" 5)" "$(median_ratio "$c")" "$(median "$c" 6)" \
				"$(median "$c" 7)" "$ms" "$(median "$c" 8)" "$(median "$c" 9)" \
				"$(median "$c" 10)"
		fi
	done
}

# goals: one line per issue-7 goal: "goal | measured | met".
goals() {
	local wr ws pg pgc wc wp99 f1 fmax fmin
	wr=$(median_ratio walship)
	ws=$(median walship 4)
	pg=$(median pgbr-sync-off 4)
	# CPU per segment, both hosts (ms).
	wc=$(awk -v s="$(median walship 6)" -v r="$(median walship 7)" 'BEGIN {printf "%.1f", (s + r) * 16.777216}')
	pgc=$(awk -v s="$(median pgbr-sync-off 6)" -v r="$(median pgbr-sync-off 7)" 'BEGIN {
		if (s == "-") print "-"; else printf "%.1f", (s + r) * 16.777216}')
	wp99=$(median walship 9)
	awk -v v="$wr" 'BEGIN {printf "throughput >= 0.9 x baseline | %s x | %s\n", v, (v != "-" && v >= 0.9) ? "yes" : "NO"}'
	awk -v a="$ws" -v b="$pg" 'BEGIN {
		if (b == "-" || b == 0) { print "throughput >= 3 x pgBackRest sync, compression off | - | -"; exit }
		printf "throughput >= 3 x pgBackRest sync, compression off | %.2f x (%s vs %s seg/s) | %s\n", a / b, a, b, (a / b >= 3) ? "yes" : "NO" }'
	awk -v a="$wc" -v b="$pgc" 'BEGIN {
		if (b == "-" || b == 0) { print "CPU per segment <= 1/5 of pgBackRest sync, compression off | - | -"; exit }
		printf "CPU per segment <= 1/5 of pgBackRest sync, compression off | %.2f of it (%s vs %s ms/seg, both hosts) | %s\n", a / b, a, b, (a / b <= 0.2) ? "yes" : "NO" }'
	awk -v v="$wp99" 'BEGIN {printf "ack p99 < 100 ms | %s ms | %s\n", v, (v != "-" && v < 100) ? "yes" : "NO"}'
	# Flat: no replica count costs the sender more per replica than one replica does
	# (within 25 %); less is fine (the push processes are shared by all replicas).
	f1=""
	fmax=0
	for c in $(contenders | grep '^fanout-'); do
		v=$(median "$c" 6)
		[[ -z "$f1" ]] && { f1=$v; fmax=$v; }
		fmax=$(awk -v a="$fmax" -v b="$v" 'BEGIN {print (b > a) ? b : a}')
	done
	if [[ -n "$f1" ]]; then
		awk -v a="$fmax" -v b="$f1" -v all="$(for c in $(contenders | grep '^fanout-'); do
			printf '%s: %s, ' "${c#fanout-}" "$(median "$c" 6)"; done)" 'BEGIN {
			sub(/, $/, "", all)
			printf "flat sender CPU per replica, 1..8 replicas | highest / one replica %.2f (s/GB per replica, N: %s) | %s\n", a / b, all, (a / b <= 1.25) ? "yes" : "NO" }'
	fi
}

# report: the text table on stdout and in build/bench-results.txt.
report() {
	{
		echo
		echo "walship benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs"
		echo "$SEGMENTS segments of 16 MiB ($((CORPUS_BYTES / 1000000)) MB) of real PostgreSQL 15 WAL per run" \
			"(fan-out: $FANOUT_SEGMENTS); median of $RUNS runs, contenders alternated"
		echo
		table text
		echo
		echo "goals (issue 7):"
		goals | sed 's/^/  /'
		echo
		echo "every run (contender run wall_s seg/s MB/s sendCPU/GB recvCPU/GB p50 p99 max replicas):"
		sed 's/^/  /' "$RESULTS_TSV"
	} | tee "$RESULTS"
	log "results written to $RESULTS; logs in $RUN_DIR"
}

# plots DIR: bench-throughput.png, bench-fanout.png, bench-latency-cdf.png with gnuplot.
plots() {
	local out=$1 c pd=$RUN_DIR/plot
	command -v gnuplot >/dev/null || { log "gnuplot not found: no plots"; return 0; }
	mkdir -p "$pd" "$out"
	: >"$pd/throughput.dat"
	for c in $(contenders); do
		printf '%s %s %s\n' "$c" "$(median "$c" 5)" "$(median "$c" 4)" >>"$pd/throughput.dat"
	done
	: >"$pd/fanout.dat"
	for c in $(contenders | grep '^fanout-'); do
		printf '%s %s %s %s\n' "${c#fanout-}" "$(median "$c" 5)" "$(median "$c" 6)" \
			"$(median "$c" 7)" >>"$pd/fanout.dat"
	done
	local base
	base=$(median baseline 5)
	gnuplot <<-GP
		set terminal pngcairo noenhanced size 1000,560 font "DejaVu Sans,10"
		set output "$out/bench-throughput.png"
		set title "Throughput per contender ($SEGMENTS x 16 MiB real WAL segments, median of $RUNS runs; fan-out: MB/s pushed)"
		set style fill solid 0.8 border -1
		set boxwidth 0.7
		set ylabel "MB/s (10^6 bytes)"
		set yrange [0:*]
		set grid ytics
		set xtics rotate by -35 left
		set key top right
		plot "$pd/throughput.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa" title "MB/s", \
			"" using 0:2:(sprintf("%.0f", \$2)) with labels offset 0,0.7 notitle, \
			$( [[ $base != - ]] && echo "$base * 0.9 with lines dt 2 lw 2 lc rgb '#cc3311' title '0.9 x baseline'" || echo "NaN notitle")
	GP
	if [[ -s "$pd/fanout.dat" ]]; then
		gnuplot <<-GP
			set terminal pngcairo noenhanced size 900,520 font "DejaVu Sans,10"
			set output "$out/bench-fanout.png"
			set title "walship fan-out ($FANOUT_SEGMENTS segments, sync_replicas = N, median of $RUNS runs)"
			set xlabel "replica hosts N"
			set ylabel "MB/s of WAL pushed"
			set y2label "sender CPU s per GB per replica"
			set xtics (1, 2, 4, 8)
			set logscale x 2
			set xrange [0.8:10]
			set yrange [0:*]
			set y2range [0:*]
			set ytics nomirror
			set y2tics
			set grid
			set key top center
			plot "$pd/fanout.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#4477aa" title "throughput (MB/s)", \
				"" using 1:3 axes x1y2 with linespoints lw 2 pt 5 lc rgb "#cc3311" title "sender CPU s/GB per replica", \
				"" using 1:4 axes x1y2 with linespoints lw 1 dt 2 pt 4 lc rgb "#228833" title "receiver CPU s/GB per replica"
		GP
	fi
	local plotcmd="" n=0 f style
	# One colour and dash per contender (walship's family solid, the others dashed).
	declare -A styles=([walship]="lw 3 lc rgb '#0044aa'" [walship-async]="lw 2 lc rgb '#66aaff'"
		[walship-probes]="lw 2 lc rgb '#7733aa'" [walship-buf]="lw 2 lc rgb '#aa77dd'"
		[pgbr-sync-off]="lw 2 dt 2 lc rgb '#ff0066'" [pgbr-sync-none]="lw 2 dt 2 lc rgb '#cc0000'"
		[pgbr-sync-lz4]="lw 2 dt 2 lc rgb '#ff7700'" [pgbr-async-off]="lw 2 dt 4 lc rgb '#aa00aa'"
		[pgbr-async-none]="lw 2 dt 4 lc rgb '#990033'" [pgbr-async-lz4]="lw 2 dt 4 lc rgb '#ddaa00'"
		[baseline]="lw 3 lc rgb '#000000'" [cp]="lw 2 dt 3 lc rgb '#777777'"
		[streaming]="lw 2 lc rgb '#228833'" [fanout-1]="lw 1 dt 5 lc rgb '#00aaaa'")
	for c in $(contenders | grep -v '^fanout-[248]'); do
		f=$pd/cdf-$c.dat
		cat "$RUN_DIR/lat/$c".* 2>/dev/null | sort -n |
			awk '{v[NR] = $1} END {for (i = 1; i <= NR; i++) printf "%.4f %.5f\n", v[i] / 1000, i / NR}' >"$f"
		[[ -s "$f" ]] || continue
		style=${styles[$c]:-lw 2}
		plotcmd+="${plotcmd:+, }\"$f\" using 1:2 with lines $style title \"$c\""
		n=$((n + 1))
	done
	((n)) && gnuplot <<-GP
		set terminal pngcairo noenhanced size 1000,600 font "DejaVu Sans,10"
		set output "$out/bench-latency-cdf.png"
		set title "Per-segment acknowledgement latency CDF (all runs; streaming: flush_lag samples)"
		set xlabel "latency, ms (log scale)"
		set ylabel "fraction of segments"
		set logscale x 10
		set xrange [0.05:3000]
		set yrange [0:1]
		set grid
		set key bottom right font ",9"
		plot $plotcmd
	GP
	log "plots: $out/bench-throughput.png $out/bench-fanout.png $out/bench-latency-cdf.png"
}

# doc FILE: docs/benchmarks.md, from this run.
doc() {
	local f=$1 cmd
	cmd="sudo make bench"
	[[ $SEGMENTS != 200 || $RUNS != 3 ]] && cmd="sudo BENCH_SEGMENTS=$SEGMENTS BENCH_RUNS=$RUNS make bench"
	{
		echo "# Benchmarks"
		echo
		echo "Generated by \`make bench\` (test/bench/run-bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC');"
		echo "do not edit by hand: run it again. Issue 7: walship against what users run today,"
		echo "on the same real WAL, with ratios to the plain baseline of the same run (the machine"
		echo "is shared and noisy: the ratios within one run are what count)."
		echo
		echo "## Machine and versions"
		echo
		echo "- CPU: $(lscpu | awk -F': *' '/^Model name/ {print $2; exit}'), $(nproc) CPUs;" \
			"RAM $(free -g | awk '/^Mem:/ {print $2}') GiB; load average at the end" \
			"$(cut -d' ' -f1-3 /proc/loadavg) (other engineers' tests ran meanwhile)"
		echo "- Kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "- Store: $(df --output=source,fstype "$RUN_DIR" | tail -n 1 | tr -s ' ') (the receivers'" \
			"stores and the pgBackRest repository: the same disk as the corpus)"
		echo "- Hosts: network namespaces, the sender with a bridge, receivers on veth pairs"
		echo "- walship $("$WALSHIP" --version | awk '{print $2}') (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet -- daemon tools include 2>/dev/null || echo ', with uncommitted changes in the tree'))," \
			"$(pgbackrest version 2>/dev/null || echo 'pgBackRest -'), $("$PG_BIN/postgres" --version)," \
			"$(openssl version | awk '{print $1, $2}'), $(gnuplot --version 2>/dev/null || echo 'gnuplot -')"
		echo
		echo "## Method"
		echo
		echo "- Corpus: the first $SEGMENTS of the real 16 MiB segments of a PostgreSQL 15 primary"
		echo "  filled by pgbench (\`pgbench -i -s 20\` rounds with short TPC-B runs), cached in"
		echo "  build/bench-corpus/; every contender ships the same files, one at a time, as"
		echo "  PostgreSQL's archiver runs archive_command. Corpus warm in the page cache,"
		echo "  stores emptied and synced before every run."
		echo "- Size: $SEGMENTS segments, $RUNS runs, fan-out $FANOUT_SEGMENTS segments (issue 7 asks"
		echo "  for at least 500; fan-out ships fewer because every replica keeps a full copy)."
		echo "- $RUNS runs; in each run every contender once, in this order: walship,"
		echo "  walship-async, walship-probes, walship-buf, pgBackRest (5 variants), baseline, cp,"
		echo "  streaming, fan-out 1 2 4 8. Each figure is the median over the runs; \"x baseline\" is"
		echo "  the median of the per-run ratio to the baseline's seg/s of the same run."
		echo "- CPU: cpuacct cgroups around everything each side runs (daemons, every push or"
		echo "  archive-push process with what it forks, pgBackRest's async workers, the"
		echo "  \`pgbackrest server\` and its children); for streaming, the walsender and"
		echo "  walreceiver processes. Per GB shipped to each replica. CPU ms/seg is sender +"
		echo "  receiver per 16 MiB segment."
		echo "- Acknowledgement latency: archive_command start until it returns 0 (asynchronous"
		echo "  contenders return before the receiver has the file; their throughput runs until"
		echo "  the receiver has every file). Streaming: pg_stat_replication.flush_lag sampled"
		echo "  every 0.1 s during the load (WAL flushed on the primary until flushed on the"
		echo "  standby); its seg/s is the WAL rate the pgbench load generated, not a capacity."
		echo "- Contenders:"
		echo "  - walship: sync_replicas = 1, probes = off, send_source = map (default);"
		echo "    walship-async: sync_replicas = 0, the replica connected and registered, a push"
		echo "    returns once the replica has the file or the primary's spool holds it for it"
		echo "    (spool_delay, default 200 ms: a replica that keeps up is waited for, so no copy"
		echo "    is made); walship-probes: probes = on in both daemons; walship-buf: send_source"
		echo "    = buffers."
		echo "  - pgbr-{sync,async}-{off,none,lz4}: \`pgbackrest archive-push %p\` to a repository"
		echo "    host over TLS (\`pgbackrest server\`, certificates made at run time with openssl,"
		echo "    client certificate authentication); async: archive-async = y, process-max = 2, a"
		echo "    spool-path. off: compress-type none and compress-level-network 0 (no compression"
		echo "    anywhere: the goals compare with pgbr-sync-off); none: compress-type none, which"
		echo "    leaves pgBackRest's default compress-level-network = 3 (gz on the wire), as users"
		echo "    run it; lz4: compress-type lz4. The stanza is made with"
		echo "    \`stanza-create --no-online\` from the corpus cluster's own pg_control, so the"
		echo "    WAL header checks (system identifier, version) run as in production."
		echo "  - baseline: bench_baseline: plain read()/write() of each file over one TCP"
		echo "    connection; the receiver writes NAME.tmp, fsyncs, renames, fsyncs the directory,"
		echo "    acknowledges. cp: \`cp; sync file; mv; sync dir\` as archive_command (same disk,"
		echo "    no network; no receiving process)."
		echo "  - streaming: PostgreSQL 15 primary on the sender, standby (pg_basebackup) on"
		echo "    the receiver, fsync on; $STREAM_SECONDS s of pgbench load (scale $STREAM_SCALE) per run."
		echo "  - fanout-N: walship to N replica hosts, sync_replicas = N, $FANOUT_SEGMENTS segments"
		echo "    (every replica keeps a full copy: 8 x $SEGMENTS segments would not fit the disk)."
		echo
		echo "## Results"
		echo
		table md
		echo
		echo "![throughput per contender](bench-throughput.png)"
		echo
		echo "![fan-out: throughput and sender CPU per replica](bench-fanout.png)"
		echo
		echo "![acknowledgement latency CDF](bench-latency-cdf.png)"
		echo
		echo "## Goals of issue 7"
		echo
		echo "| goal | measured | met |"
		echo "|---|---|---|"
		goals | sed 's/^/| /; s/$/ |/'
		echo
		if [[ -s "$RUN_DIR/status-primary.txt" ]]; then
			echo "## BPF fsync and send latency (walship-probes, last run)"
			echo
			echo "From \`walship status\` at the end of the run (\`walship stats --json\` output is kept"
			echo "in build/bench-run/probes-*.json)."
			echo
			echo '```'
			echo "primary:"
			sed -n '/latency probes/,$p' "$RUN_DIR/status-primary.txt" | grep -E '^(latency|  )' | head -n 12
			echo "replica:"
			sed -n '/latency probes/,$p' "$RUN_DIR/status-replica.txt" | grep -E '^(latency|  )' | head -n 12
			echo '```'
			echo
		fi
		echo "## Every run"
		echo
		echo '```'
		echo "contender run wall_s seg/s MB/s sendCPU/GB recvCPU/GB p50 p99 max replicas"
		cat "$RESULTS_TSV"
		echo '```'
		echo
		echo "## Reproduce"
		echo
		echo '```'
		echo "sudo scripts/install-deps.sh    # PostgreSQL 15, pgbackrest, gnuplot-nox, ..."
		echo "make"
		echo "$cmd    # about 25 minutes here; writes this file and docs/bench-*.png"
		echo '```'
		echo
		echo "Knobs (environment): BENCH_SEGMENTS (200), BENCH_RUNS (3), BENCH_FANOUT (\"1 2 4 8\"),"
		echo "BENCH_FANOUT_SEGMENTS (50), BENCH_STREAM_SECONDS (20), BENCH_PGBR, BENCH_PROBES;"
		echo "see the head of test/bench/run-bench.sh. \`make check\` runs a smoke version"
		echo "(test/bench/smoke.sh: 8 segments, one run, every contender)."
	} >"$f"
	log "report written to $f"
}

# ---------------------------------------------------------------------------------------

main() {
	require
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	((SEGMENTS >= 1 && RUNS >= 1)) || die "BENCH_SEGMENTS and BENCH_RUNS must be >= 1"
	if [[ -n "${BENCH_REPORT_ONLY:-}" ]]; then
		# Report, plots and doc again from the last run's results (same BENCH_* settings).
		RESULTS_TSV=$RUN_DIR/runs.txt
		[[ -s "$RESULTS_TSV" ]] || die "no results in $RESULTS_TSV"
		CORPUS_BYTES=$((SEGMENTS * SEG_BYTES))
		report
		[[ -n "$PLOTS" ]] && plots "$PLOTS"
		[[ -n "$DOC" ]] && doc "$DOC"
		return 0
	fi
	rm -rf "$RUN_DIR"
	mkdir -p "$RUN_DIR/lat"
	RESULTS_TSV=$RUN_DIR/runs.txt
	: >"$RESULTS_TSV"
	if ((PROBES)) && [[ ! -r /sys/kernel/btf/vmlinux ]]; then
		log "no BTF (/sys/kernel/btf/vmlinux): the walship-probes contender is left out"
		PROBES=0
	fi
	local n
	for n in $FANOUT; do
		[[ $n =~ ^[1-8]$ ]] || die "BENCH_FANOUT: $n is not in 1..8"
		((n > MAX_REPLICAS)) && MAX_REPLICAS=$n
	done
	log "$SEGMENTS segments x $RUNS runs: walship, walship-async$( ((PROBES)) && echo ", walship-probes")," \
		"walship-buf$( ((PGBR)) && echo ", pgBackRest x 5"), baseline, cp$( ((STREAM_SECONDS)) && echo ", streaming")" \
		"${FANOUT:+, fan-out to $FANOUT replicas ($FANOUT_SEGMENTS segments)}"
	corpus_prepare
	if [[ -n "${BENCH_CORPUS_ONLY:-}" ]]; then
		return 0
	fi
	head -n "$FANOUT_SEGMENTS" "$CORPUS_LIST" >"$RUN_DIR/fanout.list"
	net_create
	cg_create
	((PGBR)) && pgbr_setup
	((STREAM_SECONDS)) && stream_setup
	local run
	for ((run = 1; run <= RUNS; run++)); do
		log "---- run $run of $RUNS"
		run_walship "$run" walship map off 1 1 "$CORPUS_LIST"
		run_walship "$run" walship-async map off 0 1 "$CORPUS_LIST"
		((PROBES)) && run_walship "$run" walship-probes map on 1 1 "$CORPUS_LIST"
		run_walship "$run" walship-buf buffers off 1 1 "$CORPUS_LIST"
		if ((PGBR)); then
			run_pgbr "$run" pgbr-sync-off off n
			run_pgbr "$run" pgbr-sync-none none n
			run_pgbr "$run" pgbr-sync-lz4 lz4 n
			run_pgbr "$run" pgbr-async-off off y
			run_pgbr "$run" pgbr-async-lz4 lz4 y
		fi
		run_baseline "$run"
		run_cp "$run"
		((STREAM_SECONDS)) && run_stream "$run"
		for n in $FANOUT; do
			run_walship "$run" "fanout-$n" map off "$n" "$n" "$RUN_DIR/fanout.list"
		done
	done
	rm -rf "$RUN_DIR"/store* "$RUN_DIR/pgbr/repo" "$RUN_DIR/pgbr/pgdata/pg_wal"
	report
	[[ -n "$PLOTS" ]] && plots "$PLOTS"
	[[ -n "$DOC" ]] && doc "$DOC"
	return 0
}

main "$@"
