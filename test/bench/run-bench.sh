#!/bin/bash
# walship benchmark (`make bench`): ship BENCH_SEGMENTS real 16 MiB WAL segments from a
# sender host to a receiver host (two network namespaces joined by a veth pair) with these
# contenders, each BENCH_RUNS times, alternating, on the same corpus:
#
#   walship   primary walshipd (sender) -> replica walshipd (receiver), every segment
#             handed over by `walship push`, one after another as PostgreSQL's archiver
#             does, sync_replicas = 1, probes = off;
#   walship-probes  the same with probes = on in both daemons (the BPF fsync and send
#             latency probes, docs/observability.md), run right after walship: what the
#             probes cost (goal: at most 3 % of throughput); left out without BTF;
#   walship-buf  the same as walship with send_source = buffers;
#   baseline  build/helpers/bench_baseline send/recv: plain read()/write() over one TCP
#             connection, the receiver writes NAME.tmp, fsyncs it, renames it, fsyncs the
#             directory and acks each file;
#   cp        a durable cp archive_command run once per segment (sh -c 'cp, sync file, mv,
#             sync directory'), writing straight into the receiver's directory.
#
# For each it prints the median over the runs of segments/s, MB/s, CPU seconds per GB on
# the sending and on the receiving side, and per-file latency p50/p99/max, then the ratios
# of walship to the baselines of the same run.  The table is also written to
# build/bench-results.txt.  Speed goals live only here, as ratios: the machine is shared.
#
# Page cache policy: the corpus is kept warm (read once before every run, for every
# contender alike); the receiver's store is emptied and everything synced before every run.
#
# Environment:
#   BENCH_SEGMENTS=N    segments shipped per run (default 200)
#   BENCH_RUNS=N        runs per contender (default 3); the median is reported
#   BENCH_PROGRESS=N    print a counter every N segments (default 20)
#   BENCH_WALSHIP_EXTRA="key=value ..."  extra config keys for both walshipd daemons (not
#                       probes: each contender sets it)
#   BENCH_PROBES=0      leave out the walship-probes contender (default 1: in it when the
#                       kernel has BTF)
#   BENCH_RUN_DIR=DIR   logs and the receiver's store (default build/bench-run; emptied
#                       at the start; must be on a real disk, not tmpfs)
#   BENCH_RESULTS=FILE  where the table is written (default build/bench-results.txt)
#   PG_BIN              PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
#
# The corpus is real WAL from a throw-away PostgreSQL 15 cluster running pgbench; it is
# cached under build/bench-corpus/<count>/ (a larger cached corpus serves a smaller count).
# Logs of the last run stay in build/bench-run/ (BENCH_RUN_DIR).  Exit status: 0 when every run of every
# contender shipped every segment, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build
WALSHIPD=$BUILD/walshipd
WALSHIP=$BUILD/walship
HELPER=$BUILD/helpers/bench_baseline
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SEGMENTS=${BENCH_SEGMENTS:-200}
RUNS=${BENCH_RUNS:-3}
PROGRESS=${BENCH_PROGRESS:-20}
WALSHIP_EXTRA=${BENCH_WALSHIP_EXTRA:-}
PROBES=${BENCH_PROBES:-1}
CORPUS_ROOT=$BUILD/bench-corpus
RUN_DIR=${BENCH_RUN_DIR:-$BUILD/bench-run}
RESULTS=${BENCH_RESULTS:-$BUILD/bench-results.txt}
SEG_BYTES=$((16 * 1024 * 1024))

NS_SND="wsbench-$$-snd"
NS_RCV="wsbench-$$-rcv"
ADDR_SND=10.201.0.1
ADDR_RCV=10.201.0.2
WALSHIP_PORT=5480
BASELINE_PORT=5490

CLK_TCK=$(getconf CLK_TCK)
NAMESPACES=()
PIDS=()
GEN_DIR=""
GEN_PG_UP=0
CLEANED=0

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
	local rc=$? pid ns
	((CLEANED)) && return "$rc"
	CLEANED=1
	set +e
	trap '' INT TERM
	for pid in "${PIDS[@]}"; do
		pid_alive "$pid" && stop_pid "$pid" 5
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

# require: check that we are root and that the binaries and tools we need exist.
require() {
	((EUID == 0)) || die "needs root (network namespaces, runuser)"
	local f c
	for f in "$WALSHIPD" "$WALSHIP" "$HELPER"; do
		[[ -x "$f" ]] || die "$f not built: run make"
	done
	for c in ip runuser awk sort sync; do
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
		[[ -f "$d/.complete" ]] || continue
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
# Hosts

# net_create: the sender and receiver namespaces joined by one veth pair, addresses in
# 10.201.0.0/24 inside them only; checks they reach each other.
net_create() {
	ip netns add "$NS_SND"
	NAMESPACES+=("$NS_SND")
	ip netns add "$NS_RCV"
	NAMESPACES+=("$NS_RCV")
	ip -n "$NS_SND" link set lo up
	ip -n "$NS_RCV" link set lo up
	ip -n "$NS_SND" link add eth0 type veth peer name eth0 netns "$NS_RCV"
	ip -n "$NS_SND" addr add "$ADDR_SND/24" dev eth0
	ip -n "$NS_RCV" addr add "$ADDR_RCV/24" dev eth0
	ip -n "$NS_SND" link set eth0 up
	ip -n "$NS_RCV" link set eth0 up
	wait_for 10 "the receiver to reach the sender" \
		ip netns exec "$NS_RCV" ping -c 1 -W 1 "$ADDR_SND"
	log "hosts: $NS_SND ($ADDR_SND) -- veth -- $NS_RCV ($ADDR_RCV)"
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

# stats_cpu FILE: user_s + sys_s from a bench_baseline stats line.
stats_cpu() {
	awk '{for (i = 1; i < NF; i++) {if ($i == "user_s") u = $(i + 1); if ($i == "sys_s") s = $(i + 1)}}
		END {printf "%.3f\n", u + s}' "$1"
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

# record CONTENDER RUN WALL_S SND_CPU RCV_CPU LATFILE: append one run's figures to
# RESULTS_TSV and print them.  RCV_CPU may be "-" (no receiving process).
record() {
	local name=$1 run=$2 wall=$3 scpu=$4 rcpu=$5 lat=$6 p50 p99 max line
	read -r p50 p99 max < <(latency_summary "$lat")
	line=$(awk -v n="$SEGMENTS" -v b="$CORPUS_BYTES" -v w="$wall" -v s="$scpu" -v r="$rcpu" \
		'BEGIN {
			gb = b / 1e9
			printf "%.1f %.0f %.3f %s", n / w, b / 1e6 / w, s / gb,
				(r == "-" ? "-" : sprintf("%.3f", r / gb))
		}')
	printf '%s %s %s %s %s %s %s\n' "$name" "$run" "$wall" "$line" "$p50" "$p99" "$max" \
		>>"$RESULTS_TSV"
	# shellcheck disable=SC2086  # split line into its fields
	set -- $line
	printf '\n'
	log "$(printf '%-14s run %d: %6.1f seg/s %6s MB/s  cpu/GB send %6s s recv %6s s  latency p50 %s p99 %s max %s ms' \
		"$name" "$run" "$1" "$2" "$3" "$4" "$p50" "$p99" "$max")"
}

# store_reset: empty the receiver's store, sync, and warm the corpus into the page cache
# (the same for every contender).
store_reset() {
	rm -rf "$STORE"
	mkdir -p "$STORE"
	sync
	xargs cat <"$CORPUS_LIST" >/dev/null
}

# store_check: die unless the store holds every corpus segment, each 16 MiB, and the first
# and last are byte-identical to the corpus.
store_check() {
	local name=$1 count first last
	count=$(archived_count "$STORE")
	((count == SEGMENTS)) || die "$name: the store has $count segments, not $SEGMENTS"
	if find "$STORE" -maxdepth 1 -type f ! -size "${SEG_BYTES}c" | grep -q .; then
		die "$name: the store has files that are not 16 MiB"
	fi
	first=$(head -n 1 "$CORPUS_LIST")
	last=$(tail -n 1 "$CORPUS_LIST")
	cmp -s "$first" "$STORE/${first##*/}" || die "$name: ${first##*/} differs in the store"
	cmp -s "$last" "$STORE/${last##*/}" || die "$name: ${last##*/} differs in the store"
}

# ---------------------------------------------------------------------------------------
# Contenders

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

# daemon_start NS CONF LOG: start walshipd -c CONF in NS (stderr to LOG); sets DAEMON_PID;
# waits (10 s at most) for its control socket.
daemon_start() {
	local ns=$1 conf=$2 logf=$3 sock
	sock=$(awk -F' *= *' '$1 == "socket" {print $2}' "$conf")
	rm -f "$sock"
	ip netns exec "$ns" "$WALSHIPD" -c "$conf" >"$logf" 2>&1 &
	DAEMON_PID=$!
	PIDS+=("$DAEMON_PID")
	local deadline=$((SECONDS + 10))
	until [[ -S "$sock" ]]; do
		pid_alive "$DAEMON_PID" || { tail -n 20 "$logf" >&2; die "walshipd -c $conf exited"; }
		((SECONDS < deadline)) || { tail -n 20 "$logf" >&2; die "walshipd -c $conf: no socket"; }
		sleep 0.05
	done
}

# run_walship RUN [NAME SEND_SOURCE [PROBES]]: one walship run: fresh daemons, push every
# segment, measure.  NAME (default walship) labels the contender; SEND_SOURCE (default map)
# is the primary's send_source: map sends from a mapping of the file, buffers reads it into
# registered buffers first; PROBES (default off) is both daemons' probes key: with on, both
# must report the probes loaded.
run_walship() {
	local run=$1 name=${2:-walship} source=${3:-map} probes=${4:-off}
	local dir pconf rconf ppid rpid p0 p1 r0 r1 st f
	dir=$RUN_DIR/$name-$run
	mkdir -p "$dir/spool"
	pconf=$dir/primary.conf
	rconf=$dir/replica.conf
	walship_conf "$pconf" role=primary node_name=bench-snd "listen=$ADDR_SND:$WALSHIP_PORT" \
		"socket=$dir/p.sock" "spool_dir=$dir/spool" socket_permissions=0600 \
		sync_replicas=1 push_timeout=30s "send_source=$source" "probes=$probes"
	walship_conf "$rconf" role=replica node_name=bench-rcv "upstream=$ADDR_SND:$WALSHIP_PORT" \
		"archive_dir=$STORE" "socket=$dir/r.sock" socket_permissions=0600 \
		reconnect_min=50ms reconnect_max=500ms "probes=$probes"
	store_reset
	daemon_start "$NS_SND" "$pconf" "$dir/primary.log"
	ppid=$DAEMON_PID
	daemon_start "$NS_RCV" "$rconf" "$dir/replica.log"
	rpid=$DAEMON_PID
	wait_for 20 "the replica walshipd to connect to the primary" \
		grep -q "connected to primary" "$dir/replica.log"
	for f in "$dir/primary.log" "$dir/replica.log"; do
		if grep -q "BPF probes on" "$f"; then
			[[ $probes == on ]] || die "$name: probes are on in $f"
		else
			[[ $probes != on ]] || die "$name: probes are not on in $f"
		fi
	done
	printf '%s [bench] %-14s run %d:' "$(date +%H:%M:%S)" "$name" "$run"
	p0=$(proc_cpu "$ppid")
	r0=$(proc_cpu "$rpid")
	st=0
	ip netns exec "$NS_SND" timeout -k 5 900 "$HELPER" each --list "$CORPUS_LIST" \
		--latencies "$dir/latencies" --stats "$dir/stats" --progress "$PROGRESS" \
		-- "$WALSHIP" push -c "$pconf" 2>"$dir/push.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/push.err" >&2
		echo "---- tail of $dir/primary.log ----" >&2
		tail -n 30 "$dir/primary.log" >&2
		echo "---- tail of $dir/replica.log ----" >&2
		tail -n 30 "$dir/replica.log" >&2
		die "walship run $run failed (exit $st); logs in $dir"
	fi
	p1=$(proc_cpu "$ppid")
	r1=$(proc_cpu "$rpid")
	stop_pid "$ppid"
	stop_pid "$rpid"
	store_check "$name"
	record "$name" "$run" "$(stats_field "$dir/stats" wall_s)" \
		"$(awk -v a="$p0" -v b="$p1" -v c="$(stats_cpu "$dir/stats")" \
			'BEGIN {printf "%.3f", b - a + c}')" \
		"$(awk -v a="$r0" -v b="$r1" 'BEGIN {printf "%.3f", b - a}')" "$dir/latencies"
	# Where walship's CPU went, to tell the daemons from the per-file push processes.
	log "$(awk -v name="$name" -v run="$run" -v p0="$p0" -v p1="$p1" -v r0="$r0" -v r1="$r1" \
		-v push="$(stats_cpu "$dir/stats")" 'BEGIN {
			printf "%s run %d CPU s: primary walshipd %.2f, ", name, run, p1 - p0
			printf "push processes %.2f, replica walshipd %.2f", push, r1 - r0
		}')"
}

# run_baseline RUN: one plain read/write + fsync run over TCP.
run_baseline() {
	local run=$1 dir rpid st=0
	dir=$RUN_DIR/baseline-$run
	mkdir -p "$dir"
	store_reset
	ip netns exec "$NS_RCV" timeout -k 5 900 "$HELPER" recv \
		--listen "$ADDR_RCV:$BASELINE_PORT" --dir "$STORE" --stats "$dir/recv.stats" \
		2>"$dir/recv.err" &
	rpid=$!
	PIDS+=("$rpid")
	printf '%s [bench] baseline       run %d:' "$(date +%H:%M:%S)" "$run"
	# shellcheck disable=SC2046  # one argument per corpus file
	ip netns exec "$NS_SND" timeout -k 5 900 "$HELPER" send \
		--connect "$ADDR_RCV:$BASELINE_PORT" --latencies "$dir/latencies" \
		--stats "$dir/send.stats" --progress "$PROGRESS" $(cat "$CORPUS_LIST") \
		2>"$dir/send.err" || st=$?
	wait "$rpid" || st=$((st ? st : 1))
	if ((st != 0)); then
		printf '\n'
		cat "$dir/send.err" "$dir/recv.err" >&2
		die "baseline run $run failed; logs in $dir"
	fi
	store_check baseline
	record baseline "$run" "$(stats_field "$dir/send.stats" wall_s)" \
		"$(stats_cpu "$dir/send.stats")" "$(stats_cpu "$dir/recv.stats")" "$dir/latencies"
}

# run_cp RUN: one run of a durable cp archive_command, once per segment.
run_cp() {
	local run=$1 dir st=0
	dir=$RUN_DIR/cp-$run
	# The archive_command: copy under a temporary name, fsync it, rename, fsync the dir.
	# shellcheck disable=SC2016  # expanded by sh -c, not here
	local cmd='d=$1; f=${2##*/}; cp "$2" "$d/$f.tmp" && sync "$d/$f.tmp" &&
		mv "$d/$f.tmp" "$d/$f" && sync "$d"'
	mkdir -p "$dir"
	store_reset
	printf '%s [bench] cp             run %d:' "$(date +%H:%M:%S)" "$run"
	ip netns exec "$NS_SND" timeout -k 5 900 "$HELPER" each --list "$CORPUS_LIST" \
		--latencies "$dir/latencies" --stats "$dir/stats" --progress "$PROGRESS" \
		-- sh -c "$cmd" sh "$STORE" 2>"$dir/each.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/each.err" >&2
		die "cp run $run failed; logs in $dir"
	fi
	store_check cp
	record cp "$run" "$(stats_field "$dir/stats" wall_s)" "$(stats_cpu "$dir/stats")" - \
		"$dir/latencies"
}

# ---------------------------------------------------------------------------------------
# Report

# median CONTENDER COLUMN: the median of COLUMN (1-based in RESULTS_TSV) over the runs of
# CONTENDER ("-" if the column holds "-").
median() {
	awk -v c="$1" -v k="$2" '$1 == c {print $k}' "$RESULTS_TSV" | sort -g | awk '
		{v[NR] = $1}
		END {
			if (NR == 0 || v[1] == "-") { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]
			else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# ratio A B: A / B to two decimals ("-" if either is missing or B is 0).
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

# ratio3 A B: A / B to three decimals (a 3 % goal needs them).
ratio3() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.3f\n", a / b }'
}

# report: the table of medians and the ratios, on stdout and in build/bench-results.txt.
report() {
	local c
	declare -A m=()
	for c in walship walship-probes walship-buf baseline cp; do
		# RESULTS_TSV: name run wall seg/s MB/s sndcpu rcvcpu p50 p99 max
		m[$c.segs]=$(median "$c" 4)
		m[$c.mbs]=$(median "$c" 5)
		m[$c.scpu]=$(median "$c" 6)
		m[$c.rcpu]=$(median "$c" 7)
		m[$c.p50]=$(median "$c" 8)
		m[$c.p99]=$(median "$c" 9)
		m[$c.max]=$(median "$c" 10)
	done
	{
		echo
		echo "walship benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs"
		echo "$SEGMENTS segments of 16 MiB ($((CORPUS_BYTES / 1000000)) MB) of real PostgreSQL 15 WAL per run;" \
			"median of $RUNS runs per contender, run alternately"
		echo "sender $NS_SND -> receiver $NS_RCV over veth; store on $(df --output=source "$RUN_DIR" | tail -n 1) ($STORE)"
		echo "page cache: corpus warm (read before every run); store emptied and synced before every run"
		echo "MB = 10^6 bytes; CPU s/GB = (user + system) CPU seconds per 10^9 bytes shipped;"
		echo "latency = one file handed over until durable on the receiver (archive_command time)"
		echo
		printf '%-14s %9s %8s %14s %14s %9s %9s %9s\n' contender "seg/s" "MB/s" \
			"send CPU s/GB" "recv CPU s/GB" "p50 ms" "p99 ms" "max ms"
		for c in walship walship-probes walship-buf baseline cp; do
			printf '%-14s %9s %8s %14s %14s %9s %9s %9s\n' "$c" "${m[$c.segs]}" \
				"${m[$c.mbs]}" "${m[$c.scpu]}" "${m[$c.rcpu]}" "${m[$c.p50]}" \
				"${m[$c.p99]}" "${m[$c.max]}"
		done
		echo
		echo "walship: send_source = map (content sent from a mapping of the WAL file), probes = off;"
		echo "walship-probes: walship with probes = on (BPF fsync and send latency) in both daemons;"
		echo "walship-buf: send_source = buffers (READ_FIXED into registered buffers, then sent)"
		echo "walship sender:   walshipd (primary) + every walship push process"
		echo "walship receiver: walshipd (replica); baseline: bench_baseline send / recv;"
		echo "cp: sh + cp + sync + mv processes (no receiving process: recv CPU is '-')"
		echo
		echo "ratios (walship / other, same run):"
		printf '  throughput walship/baseline       %s   (goal >= 1.00)\n' \
			"$(ratio "${m[walship.segs]}" "${m[baseline.segs]}")"
		printf '  throughput walship/cp             %s\n' \
			"$(ratio "${m[walship.segs]}" "${m[cp.segs]}")"
		printf '  sender CPU/GB walship/baseline    %s   (goal < 1.00)\n' \
			"$(ratio "${m[walship.scpu]}" "${m[baseline.scpu]}")"
		printf '  sender CPU/GB walship-buf/baseline %s\n' \
			"$(ratio "${m[walship-buf.scpu]}" "${m[baseline.scpu]}")"
		printf '  throughput walship-buf/baseline   %s\n' \
			"$(ratio "${m[walship-buf.segs]}" "${m[baseline.segs]}")"
		printf '  receiver CPU/GB walship/baseline  %s\n' \
			"$(ratio "${m[walship.rcpu]}" "${m[baseline.rcpu]}")"
		printf '  latency p50 walship/baseline      %s\n' \
			"$(ratio "${m[walship.p50]}" "${m[baseline.p50]}")"
		echo
		echo "the probes' cost (probes on / off, same run):"
		printf '  throughput walship-probes/walship    %s   (goal >= 0.97)\n' \
			"$(ratio3 "${m[walship-probes.segs]}" "${m[walship.segs]}")"
		printf '  sender CPU/GB walship-probes/walship %s\n' \
			"$(ratio3 "${m[walship-probes.scpu]}" "${m[walship.scpu]}")"
		printf '  receiver CPU/GB walship-probes/walship %s\n' \
			"$(ratio3 "${m[walship-probes.rcpu]}" "${m[walship.rcpu]}")"
		printf '  latency p50 walship-probes/walship   %s\n' \
			"$(ratio3 "${m[walship-probes.p50]}" "${m[walship.p50]}")"
		echo
		echo "every run (contender run wall_s seg/s MB/s sendCPU/GB recvCPU/GB p50 p99 max):"
		sed 's/^/  /' "$RESULTS_TSV"
	} | tee "$RESULTS"
	log "results written to $RESULTS; logs in $RUN_DIR"
}

# ---------------------------------------------------------------------------------------

main() {
	require
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	((SEGMENTS >= 1 && RUNS >= 1)) || die "BENCH_SEGMENTS and BENCH_RUNS must be >= 1"
	rm -rf "$RUN_DIR"
	mkdir -p "$RUN_DIR"
	STORE=$RUN_DIR/store
	RESULTS_TSV=$RUN_DIR/runs.txt
	: >"$RESULTS_TSV"
	if ((PROBES)) && [[ ! -r /sys/kernel/btf/vmlinux ]]; then
		log "no BTF (/sys/kernel/btf/vmlinux): the walship-probes contender is left out"
		PROBES=0
	fi
	log "$SEGMENTS segments x $RUNS runs of walship$( ((PROBES)) && echo ", walship-probes")," \
		"walship-buf, baseline, cp"
	corpus_prepare
	net_create
	local run
	for ((run = 1; run <= RUNS; run++)); do
		run_walship "$run" walship map off
		((PROBES)) && run_walship "$run" walship-probes map on
		run_walship "$run" walship-buf buffers off
		run_baseline "$run"
		run_cp "$run"
	done
	rm -rf "$STORE"
	report
}

main "$@"
