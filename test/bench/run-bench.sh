#!/bin/bash
# walship benchmark (`make bench`, issue 7): walship against what users run today, on the
# same BENCH_SEGMENTS real 16 MiB WAL segments (from a PostgreSQL 15 primary that pgbench
# filled), each contender BENCH_RUNS times, alternating, between network-namespace hosts:
# one sender host and up to 8 receiver hosts on a bridge in the sender's namespace.
#
#   walship        walshipd primary -> walshipd replica, every segment handed over by
#                  `walship push` one after another as PostgreSQL's archiver does, from a
#                  pg_wal with every segment linked in and marked ready (so push_ahead
#                  passes the next ones along, as behind a real archiver),
#                  sync_replicas = 1 (a push returns once the replica has it durably);
#   walship-async  the same with sync_replicas = 0: the replica is connected (so
#                  registered) and a push returns once the primary's spool holds the file
#                  for it; the run ends when the replica has every file durably;
#   walship-probes walship with probes = on in both daemons (BPF fsync and send latency;
#                  its `walship stats --json` is kept); left out without BTF;
#   walship-map    walship with send_source = map (buffers is the default);
#   walship-archcmd, walship-module
#                  walship behind a real PostgreSQL 15 archiver (a fresh cluster with the
#                  corpus linked into its pg_wal and marked ready): archive_command =
#                  'exec walship push %p', or archive_library = 'walship_archive' (the archive
#                  module; left out when build/walship_archive.so is not built);
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
#   limit-disk     the disk limit (issue 15): bench_baseline disk on the receiver host (its
#                  namespace and cgroup) writes every segment, mapped and locked in memory
#                  before the clock starts, to the receiver's store as walship's replica
#                  does at best: O_DIRECT, WIRE_CHUNK_SIZE (1 MiB) chunks through io_uring
#                  with as many writes in flight as the replica has io_buffers (registered
#                  buffers: walshipd's default, or BENCH_WALSHIP_EXTRA's), fdatasync,
#                  rename, directory fsync per file; no network;
#   limit-net      the network limit (issue 15): bench_baseline sendmem/recvnull, each
#                  segment from memory over the same veth between the same namespaces, the
#                  receiver reading and discarding it, one ack per file; no disk;
#   plain-send     the baseline's sender (bench_baseline send: read() and write()) to
#                  limit-net's discarding receiver: the plain sender's CPU when its
#                  receiver keeps up, beside the baseline's, whose slow receiver takes
#                  part of the sending work into its own context (run_net says how);
#   streaming      PostgreSQL's own streaming replication (a PostgreSQL 15 primary on the
#                  sender, a standby on the receiver) under pgbench load for
#                  BENCH_STREAM_SECONDS: throughput is the WAL it generated and streamed,
#                  latency is pg_stat_replication.flush_lag sampled every 0.1 s (WAL flushed
#                  on the primary until flushed on the standby): the lag reference;
#   fanout-N       walship to N = 1 2 4 8 replica hosts (BENCH_FANOUT), sync_replicas = N,
#                  on the first BENCH_FANOUT_SEGMENTS segments (every replica stores a full
#                  copy: 8 x 500 segments would need 67 GB of disk);
#   sync-standby, sync-receivewal, sync-receivewal-relay, sync-walship
#                  synchronous commit (issue 13): pgbench -N -c 8 -j 2 on a PostgreSQL 15
#                  primary on the sender, synchronous_commit = on, the one synchronous
#                  standby on the receiver a PostgreSQL standby, pg_receivewal
#                  --synchronous or walship streaming (sync_replicas = 1); TPS, transaction
#                  latency, CPU per GB of WAL on each host, and the flush lag with
#                  synchronous_commit = off (test/bench/sync.sh says how);
#   standby-lag, standby-appliance-N, standby-direct-N
#                  PostgreSQL 15 standbys (issue 14) under a fixed-rate pgbench load: one
#                  streaming from the appliance (a replica walshipd's pg_listen) beside one
#                  streaming from the primary, their replay lag; N = 1 4 8 standbys served by
#                  the appliance against N = 8 on the primary: the primary's CPU, its
#                  walsenders, the standbys' lag (test/bench/standby.sh says how).
#
# For each (but the sync-* contenders, whose figures are their own, test/bench/sync.sh):
# segments/s, MB/s, CPU seconds per GB on the sending and on the receiving host
# (cpuacct cgroups around everything each side runs, so forked and detached processes
# count), per-segment acknowledgement latency p50/p99/max (archive_command start until it
# returns), the ratio of its throughput to the plain baseline of the same run, and to
# min(disk limit, network limit) of the same run (issue 15's goal: walship >= 0.9 x it);
# the median over the runs.  Results: build/bench-results.txt and docs/benchmarks.md
# (BENCH_DOC), written by test/bench/report.sh, and PNG plots docs/bench-*.png
# (BENCH_PLOTS), made with gnuplot by test/bench/plot.sh; this script runs both.
#
# Hosts, PostgreSQL clusters, walshipd daemons, waits and clean-up are test/system/lib.sh's
# (sourced): the sender is its primary host, the receivers its replica hosts.
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
#   BENCH_SYNC_SECONDS=N     pgbench load of each synchronous-commit contender (default 20;
#                            0: none)
#   BENCH_SYNC_LAG_SECONDS=N its asynchronous load, for the flush lag (default 10; 0: none)
#   BENCH_PGBENCH_RATE=N     throttle the streaming and synchronous-commit loads to N
#                            transactions per second (pgbench -R; default: none, full
#                            speed).  For the smoke test, whose figures mean nothing: a
#                            full-speed load takes both cores for as long as it runs
#   BENCH_STANDBY_SECONDS=N  pgbench load of each standby contender (default 20; 0: none)
#   BENCH_STANDBY_FANOUT="1 4 8"  standby counts served by the appliance ("" for none)
#   BENCH_STANDBY_DIRECT="8"     standby counts streaming from the primary ("" for none)
#   BENCH_STANDBY_RATE=N     the standby contenders' load, transactions/s (default 200)
#   BENCH_STANDBY_SCALE=N    pgbench scale of their primary (default 10)
#   BENCH_CONTENDERS="PATTERN ..."  run only the contenders whose names match one of these
#                       shell patterns (e.g. "sync-*" or "walship streaming"; default: all)
#   BENCH_PGBR=0        leave out the pgBackRest contenders (default 1)
#   BENCH_LOAD=PCT      run every contender on a loaded machine: one busy loop per CPU,
#                       together capped at PCT % of all CPUs (a cpu cgroup's CFS quota),
#                       from the first run to the last (default 0: none).  The quiet and
#                       the loaded figures come from two runs of make bench.
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
# segment, 1 otherwise, 77 when it cannot run here (not root, a tool missing).
set -euo pipefail

WS_TEST_NAME=bench # lib.sh's log lines: "HH:MM:SS [bench] ..."
# shellcheck source=test/system/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../system/lib.sh"
# The asynchronous contenders' runs end with a wait_for: poll it as often as a run ends.
WS_WAIT_POLL=0.1

BENCH_DIR=$WS_ROOT/test/bench
BUILD=$WS_ROOT/build
HELPER=$BUILD/helpers/bench_baseline
PGMOD=$BUILD/walship_archive.so
SEGMENTS=${BENCH_SEGMENTS:-500}
RUNS=${BENCH_RUNS:-3}
FANOUT=${BENCH_FANOUT-1 2 4 8}
FANOUT_SEGMENTS=${BENCH_FANOUT_SEGMENTS:-50}
STREAM_SECONDS=${BENCH_STREAM_SECONDS:-20}
# pgbench's rate option, empty for full speed (BENCH_PGBENCH_RATE)
PGBENCH_RATE=(${BENCH_PGBENCH_RATE:+-R "$BENCH_PGBENCH_RATE"})
STREAM_SCALE=${BENCH_STREAM_SCALE:-10}
PGBR=${BENCH_PGBR:-1}
LOAD=${BENCH_LOAD:-0}
CONTENDERS=${BENCH_CONTENDERS:-}
# The contenders that ship the corpus, in the order of a run (fanout-N aside).
CORPUS_CONTENDERS="walship walship-async walship-probes walship-map walship-archcmd
	walship-module pgbr-sync-off
	pgbr-sync-none pgbr-sync-lz4 pgbr-async-off pgbr-async-lz4 baseline cp limit-disk
	limit-net plain-send"
PROGRESS=${BENCH_PROGRESS:-50}
WALSHIP_EXTRA=${BENCH_WALSHIP_EXTRA:-}
PROBES=${BENCH_PROBES:-1}
CORPUS_ROOT=$BUILD/bench-corpus
RUN_DIR=${BENCH_RUN_DIR:-$BUILD/bench-run}
RESULTS=${BENCH_RESULTS:-$BUILD/bench-results.txt}
DOC=${BENCH_DOC-$WS_ROOT/docs/benchmarks.md}
PLOTS=${BENCH_PLOTS-$WS_ROOT/docs}
SEG_BYTES=$((16 * 1024 * 1024))
((FANOUT_SEGMENTS <= SEGMENTS)) || FANOUT_SEGMENTS=$SEGMENTS

BASELINE_PORT=5490
LIMIT_NET_PORT=5491
PGBR_PORT=8432
STREAM_PORT=5433
CG_ROOT=/sys/fs/cgroup/cpuacct
CG_SND=wsbench-$$-snd
CG_RCV=wsbench-$$-rcv
LOAD_CG=/sys/fs/cgroup/cpu/wsbench-$$-load # BENCH_LOAD's busy loops (load_start)

CLK_TCK=$(getconf CLK_TCK)
CGROUPS=()
GEN_DIR=""
MAX_REPLICAS=1

# shellcheck source=test/bench/sync.sh
. "$BENCH_DIR/sync.sh"
# shellcheck source=test/bench/standby.sh
. "$BENCH_DIR/standby.sh"

# stop_pid PID [TIMEOUT_S [SIGNAL]]: send PID SIGNAL (default TERM), wait (default 10 s at
# most), then SIGKILL it.
stop_pid() {
	local pid=$1 timeout=${2:-10} sig=${3:-TERM} deadline
	deadline=$((SECONDS + timeout))
	kill -"$sig" "$pid" 2>/dev/null || return 0
	while pid_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			echo "bench: pid $pid ignored SIG$sig for ${timeout}s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		ws_sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# bench_cleanup: EXIT trap: lib.sh's ws_cleanup stops what we started (daemons, receivers,
# clusters) and deletes our namespaces; then the cgroups and the corpus scratch directory
# go.  The corpus cache and the logs in build/bench-run stay.  Keeps the exit status.
bench_cleanup() {
	ws_cleanup
	local rc=$? pid cg
	set +e
	[[ -n "$GEN_DIR" ]] && rm -rf "$GEN_DIR"
	sb_cleanup
	load_stop
	for cg in "${CGROUPS[@]}"; do
		for pid in $(cat "$CG_ROOT/$cg/cgroup.procs" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		sleep 0.2
		rmdir "$CG_ROOT/$cg" 2>/dev/null
	done
	return "$rc"
}

# want NAME: true when contender NAME is to run: BENCH_CONTENDERS is empty or one of its
# patterns matches NAME.
want() {
	local -a pats
	local p
	[[ -z "$CONTENDERS" ]] && return 0
	read -ra pats <<<"$CONTENDERS" # read: no pathname expansion of the patterns
	for p in "${pats[@]}"; do
		# shellcheck disable=SC2053  # a pattern
		[[ $1 == $p ]] && return 0
	done
	return 1
}

# want_corpus: true when a contender that ships the corpus is to run (after main has
# applied BENCH_CONTENDERS to FANOUT, PROBES and PGBR).
want_corpus() {
	local c
	for c in $CORPUS_CONTENDERS; do
		case $c in
		walship-probes) ((PROBES)) || continue ;;
		walship-module) ((PGMOD_ON)) || continue ;;
		pgbr-*) ((PGBR)) || continue ;;
		esac
		want "$c" && return 0
	done
	[[ -n "$FANOUT" ]]
}

# require: skip (exit 77) unless we are root and the binaries and tools we need exist.
require() {
	require_root
	require_walship
	[[ -x "$HELPER" ]] || skip "$HELPER not built: run make"
	((PGBR)) && require_cmds pgbackrest
	[[ -n "$(sb_contenders)" ]] && require_cmds jq pgrep setpriv
	[[ -d "$CG_ROOT" ]] || skip "no cpuacct cgroup at $CG_ROOT (CPU accounting)"
	((LOAD > 0)) && { [[ -d ${LOAD_CG%/*} ]] || skip "no cpu cgroup at ${LOAD_CG%/*} (BENCH_LOAD)"; }
	require_cmds ip runuser awk sort sync openssl
}

# ---------------------------------------------------------------------------------------
# Corpus

# pg_as CMD...: run CMD as postgres on this host (the corpus cluster, psql and
# pgbench over unix sockets).
pg_as() {
	runuser -u postgres -- "$@"
}

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

# The helpers below that the runs call often (the polls of wait_for every 0.1 s, the CPU
# readings) count and read with the shell itself: a process costs milliseconds of CPU on
# a virtual machine, taken from the contender being measured.

# count_files PATTERN...: set COUNT to the number of regular files among the words a glob
# PATTERN expanded to (the caller writes the glob unquoted).
count_files() {
	local f
	COUNT=0
	for f in "$@"; do
		[[ -f "$f" ]] && COUNT=$((COUNT + 1))
	done
	return 0
}

# SEGMENT_GLOB: a completed WAL segment's name, 24 hex digits.
SEGMENT_GLOB=$(printf '[0-9A-F]%.0s' {1..24})

# archived_count DIR: the number of completed WAL segments (24 hex digits) in DIR.
archived_count() {
	# shellcheck disable=SC2086  # the glob
	count_files "$1"/$SEGMENT_GLOB
	echo "$COUNT"
}

# completed_unarchived PGDATA: the number of completed segments waiting for the archiver.
completed_unarchived() {
	count_files "$1"/pg_wal/archive_status/*.ready
	echo "$COUNT"
}

# archived_at_least DIR N: true if DIR holds at least N completed segments.
archived_at_least() {
	# shellcheck disable=SC2086  # the glob
	count_files "$1"/$SEGMENT_GLOB
	((COUNT >= $2))
}

# corpus_generate N: run a PostgreSQL 15 primary (fsync off, archiving with cp) under
# pgbench until N completed segments are archived, keep the first N in
# build/bench-corpus/N, stop the cluster.
corpus_generate() {
	local n=$1 pgdata arch sock dest count scale oltp_seconds rounds=0
	require_postgres
	mkdir -p "$CORPUS_ROOT"
	GEN_DIR=$(mktemp -d "$CORPUS_ROOT/.gen.XXXXXX")
	pgdata=$GEN_DIR/pgdata
	arch=$GEN_DIR/archive
	sock=$GEN_DIR/sock
	mkdir -p "$arch" "$sock"
	chown -R postgres:postgres "$GEN_DIR"
	log "corpus: generating $n segments with PostgreSQL 15 + pgbench in $GEN_DIR"
	pg_initdb "$pgdata"
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
	# On this host, not in a namespace (there are none yet): lib.sh's pg_start takes one.
	WS_PG_DIRS+=("$pgdata") # stopped by ws_cleanup if we fail
	pg_as "$PG_BIN/pg_ctl" -D "$pgdata" -l "$GEN_DIR/pg.log" -w -t 60 \
		start >/dev/null || { tail -n 20 "$GEN_DIR/pg.log" >&2; fail "could not start PostgreSQL"; }
	# Bulk WAL from pgbench's initialisation (server-side generation), with a short
	# transactional run after each round so the corpus also holds ordinary OLTP records.
	# A round at scale s writes about s to 2s segments: scale 20, or N when fewer are
	# wanted (the smoke test's 4 segments need not cost a 20-segment load); the
	# transactional run lasts 3 s, 1 s below 20 segments.
	scale=$((n < 20 ? (n < 2 ? 2 : n) : 20))
	oltp_seconds=$((n < 20 ? 1 : 3))
	while (($(archived_count "$arch") + $(completed_unarchived "$pgdata") < n)); do
		((rounds++ < 200)) || fail "corpus: still fewer than $n segments after 200 rounds"
		pg_as "$PG_BIN/pgbench" -h "$sock" -U postgres -i -q -I dtGvp \
			-s "$scale" postgres >>"$GEN_DIR/pgbench.out" 2>&1 ||
			{ tail -n 20 "$GEN_DIR/pgbench.out" >&2; fail "pgbench -i failed"; }
		pg_as "$PG_BIN/pgbench" -h "$sock" -U postgres -n -c 4 -j 2 -T "$oltp_seconds" \
			postgres >>"$GEN_DIR/pgbench.out" 2>&1 ||
			{ tail -n 20 "$GEN_DIR/pgbench.out" >&2; fail "pgbench run failed"; }
		log "corpus: $(archived_count "$arch") of $n segments archived," \
			"$(completed_unarchived "$pgdata") more completed"
	done
	wait_for 300 "the archiver to archive $n segments" archived_at_least "$arch" "$n"
	pg_as "$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null ||
		fail "could not stop the corpus cluster"
	count=$(archived_count "$arch")
	((count >= n)) || fail "corpus: only $count segments archived"
	dest=$CORPUS_ROOT/$n
	rm -rf "$dest"
	mkdir -p "$dest"
	find "$arch" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' |
		sort | sed -n "1,${n}p" | xargs mv -t "$dest"
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
	# sed, not head: it reads to the end, so sort never writes into a closed pipe (SIGPIPE,
	# status 141 under pipefail, when a cached corpus is larger than BENCH_SEGMENTS).
	find "$dir" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' |
		sort | sed -n "1,${SEGMENTS}p" >"$CORPUS_LIST"
	while IFS= read -r f; do
		[[ $(stat -c %s "$f") == "$SEG_BYTES" ]] || fail "corpus file $f is not 16 MiB"
	done <"$CORPUS_LIST"
	(($(wc -l <"$CORPUS_LIST") == SEGMENTS)) || fail "corpus list is short"
	CORPUS_BYTES=$((SEGMENTS * SEG_BYTES))
}

# ---------------------------------------------------------------------------------------
# Hosts and CPU accounting

# hosts_create: lib.sh's network with MAX_REPLICAS receivers: the sender NS_SND
# ($ADDR_SND, with the bridge) is its primary host, receiver i its replica host NS_R<i>
# ($ADDR_R<i>); NS_RCV ($ADDR_RCV, receiver 1) hosts every one-receiver contender.
hosts_create() {
	net_create "$MAX_REPLICAS" >/dev/null # its log line: the one below
	NS_SND=$NS_P
	ADDR_SND=$ADDR_P
	NS_RCV=$NS_R1
	ADDR_RCV=$ADDR_R1
	log "hosts: $NS_SND ($ADDR_SND, bridge) and $MAX_REPLICAS receiver(s)" \
		"$NS_RCV.. ($ADDR_RCV ..)"
}

# rcv_ns I: the namespace of receiver I.
rcv_ns() {
	local var=NS_R$1
	printf '%s\n' "${!var}"
}

# cg_create: the cpuacct cgroups of the sending and the receiving side.
cg_create() {
	local cg
	for cg in "$CG_SND" "$CG_RCV"; do
		mkdir "$CG_ROOT/$cg"
		CGROUPS+=("$cg")
	done
}

# load_start: with BENCH_LOAD=PCT, one busy loop per CPU in cpu cgroup LOAD_CG, whose CFS
# quota caps them together at PCT % of all CPUs: a fixed share of the machine taken from
# every contender alike (what other work on a shared host does, at a known level).
load_start() {
	((LOAD > 0)) || return 0
	local i period=100000
	mkdir "$LOAD_CG"
	echo "$period" >"$LOAD_CG/cpu.cfs_period_us"
	echo $((period * LOAD * $(nproc) / 100)) >"$LOAD_CG/cpu.cfs_quota_us"
	for ((i = 0; i < $(nproc); i++)); do
		# shellcheck disable=SC2016  # expanded by sh
		sh -c 'echo $$ >"$0" && exec sh -c "while :; do :; done"' "$LOAD_CG/cgroup.procs" &
	done
	log "load: $(nproc) busy loops capped together at $LOAD % of $(nproc) CPUs ($LOAD_CG)"
}

# load_stop: end load_start's busy loops and remove their cgroup.
load_stop() {
	[[ -d "$LOAD_CG" ]] || return 0
	local pid
	for pid in $(cat "$LOAD_CG/cgroup.procs" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	for _ in {1..100}; do # also from the EXIT trap: no wait_for, which may exit
		cg_dir_idle "$LOAD_CG" && break
		ws_sleep 0.1
	done
	rmdir "$LOAD_CG" 2>/dev/null || echo "bench: could not remove $LOAD_CG" >&2
}

# cg_dir_idle DIR: true when no process runs in the cgroup at DIR.
cg_dir_idle() {
	local pid=
	read -r pid <"$1/cgroup.procs" || true
	[[ -z "$pid" ]]
}

# ms_to_s MS: print MS milliseconds as seconds with three decimals.
ms_to_s() {
	printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000))
}

# cg_usage CG: CPU seconds used so far by every process that ran in CG.
cg_usage() {
	local ns
	read -r ns <"$CG_ROOT/$1/cpuacct.usage"
	ms_to_s $(((ns + 500000) / 1000000))
}

# cg_idle CG: true when no process runs in CG.
cg_idle() {
	cg_dir_idle "$CG_ROOT/$1"
}

# cg_cmd CG: set CG_CMD to the command prefix that runs what follows inside cgroup CG.  It
# joins the cgroup first (ip netns exec mounts its own /sys, without the cgroup trees), then
# execs, so that the pid of the prefix is the command's.
cg_cmd() {
	# shellcheck disable=SC2016  # expanded by sh
	CG_CMD=(sh -c 'echo $$ >"$0" && exec "$@"' "$CG_ROOT/$1/cgroup.procs")
}

# on HOSTNS CG CMD...: run CMD in network namespace HOSTNS inside cgroup CG.
on() {
	local ns=$1
	cg_cmd "$2"
	shift 2
	"${CG_CMD[@]}" ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------------------
# Measurement helpers

# proc_cpu_ms PID: set CPU_MS to the CPU milliseconds (user + system, all threads) used so
# far by PID.
proc_cpu_ms() {
	local stat
	local -a f
	read -r stat <"/proc/$1/stat"
	# After "pid (comm) ", utime and stime are fields 12 and 13 (indexes 11 and 12).
	read -r -a f <<<"${stat##*) }"
	CPU_MS=$(((f[11] + f[12]) * 1000 / CLK_TCK))
}

# proc_cpu PID: print the CPU seconds (user + system, all threads) used so far by PID.
proc_cpu() {
	proc_cpu_ms "$1"
	ms_to_s "$CPU_MS"
}

# pids_cpu PID...: the CPU seconds so far of these pids, summed (proc_cpu of each).
pids_cpu() {
	local pid sum=0
	for pid in "$@"; do
		proc_cpu_ms "$pid"
		sum=$((sum + CPU_MS))
	done
	ms_to_s "$sum"
}

# kworkers_snapshot FILE: write to FILE a line "PID STARTTIME TICKS" for each of the
# machine's kernel workers (every kworker thread) with the CPU ticks (user + system) it
# used so far: work the kernel does outside the processes and cgroups measured, such as
# writeback, or the cache flush that completes a direct write with RWF_DSYNC on a disk
# without FUA.  Machine-wide, so shared by everything that runs.
kworkers_snapshot() {
	local f line
	local -a v
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		[[ $line == *" (kworker/"* ]] || continue
		read -r -a v <<<"${line##*) }"
		echo "${f//[^0-9]/} ${v[19]} $((v[11] + v[12]))"
	done >"$1"
}

# kworkers_cpu_between START END: the CPU seconds the kernel workers used between two
# kworkers_snapshot files: for a worker in both (the same PID and start time), what it
# added; for one that started in between, all of it.  A worker that exited in between
# takes what it used with it (the kernel keeps no count): the figure is a lower bound,
# never negative (the sums of two snapshots would be, when workers exit).
kworkers_cpu_between() {
	local ticks
	ticks=$(awk 'NR == FNR { t[$1 " " $2] = $3; next }
		{ d = $3 - (($1 " " $2) in t ? t[$1 " " $2] : 0); if (d > 0) s += d }
		END { print s + 0 }' "$1" "$2")
	ms_to_s $((ticks * 1000 / CLK_TCK))
}

# stats_field FILE KEY: the value after KEY in a bench_baseline stats line.
stats_field() {
	awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$1"
}

# now_s: seconds since the epoch with microseconds.
now_s() {
	local t=$EPOCHREALTIME
	echo "${t/,/.}"
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
# run's figures to RESULTS_TSV and print them.  SND_CPU or RCV_CPU may be "-" (no such
# side).  CPU per GB is per
# GB shipped to each replica (the bytes times NREPLICAS, default 1).
record() {
	local name=$1 run=$2 nseg=$3 bytes=$4 wall=$5 scpu=$6 rcpu=$7 lat=$8 nrep=${9:-1}
	local p50 p99 max line
	read -r p50 p99 max < <(latency_summary "$lat")
	line=$(awk -v n="$nseg" -v b="$bytes" -v w="$wall" -v s="$scpu" -v r="$rcpu" -v k="$nrep" \
		'BEGIN {
			gb = b * k / 1e9
			printf "%.1f %.0f %s %s", n / w, b / 1e6 / w,
				(s == "-" ? "-" : sprintf("%.3f", s / gb)),
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

# store_check NAME DIR LIST: fail unless DIR holds every segment of LIST, each 16 MiB,
# and the first and last are byte-identical to the corpus.
store_check() {
	local name=$1 store=$2 list=$3 count first last n
	n=$(wc -l <"$list")
	count=$(archived_count "$store")
	((count == n)) || fail "$name: $store has $count segments, not $n"
	if find "$store" -maxdepth 1 -type f ! -size "${SEG_BYTES}c" | grep -q .; then
		fail "$name: $store has files that are not 16 MiB"
	fi
	first=$(head -n 1 "$list")
	last=$(tail -n 1 "$list")
	cmp -s "$first" "$store/${first##*/}" || fail "$name: ${first##*/} differs in $store"
	cmp -s "$last" "$store/${last##*/}" || fail "$name: ${last##*/} differs in $store"
}

# settle CG: wait (60 s at most) until every process of CG exited (the async contenders'
# background processes), so that a run's CPU is all counted and none spills into the next.
settle() {
	wait_for 60 "the processes of cgroup $1 to exit" cg_idle "$1"
}

# progress_start NAME RUN: the start of a progress line.
progress_start() {
	printf '%(%H:%M:%S)T [bench] %-15s run %d:' -1 "$1" "$2"
}

# ---------------------------------------------------------------------------------------
# walship

# walship_conf FILE KEY=VALUE...: write a walshipd config, plus BENCH_WALSHIP_EXTRA.
walship_conf() {
	local file=$1
	shift
	# Namespaces on one host: plaintext, said explicitly.
	# shellcheck disable=SC2086  # BENCH_WALSHIP_EXTRA: one KEY=VALUE per word
	ws_write_conf "$file" tls=off "$@" $WALSHIP_EXTRA
}

# daemon_start NS CG CONF LOG: lib.sh's walshipd_start of walshipd -c CONF in NS, inside
# cgroup CG (log to LOG); sets DAEMON_PID.  Quiet: the runs' progress lines are the output.
daemon_start() {
	cg_cmd "$2"
	WS_DAEMON_WRAP=("${CG_CMD[@]}")
	walshipd_start "$1" "$3" "$4" >/dev/null
	WS_DAEMON_WRAP=()
	DAEMON_PID=$WALSHIPD_PID
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
	# pg_wal as PostgreSQL leaves it while its archiver is behind: the segments linked in,
	# each marked ready, which is what walship push looks at for push_ahead.
	rm -rf "$dir/pg_wal"
	mkdir -p "$dir/pg_wal/archive_status"
	while IFS= read -r f; do
		ln "$f" "$dir/pg_wal/" 2>/dev/null || cp "$f" "$dir/pg_wal/"
		: >"$dir/pg_wal/archive_status/${f##*/}.ready"
		printf '%s\n' "$dir/pg_wal/${f##*/}"
	done <"$list" >"$dir/push.list"
	daemon_start "$NS_SND" "$CG_SND" "$pconf" "$dir/primary.log"
	ppid=$DAEMON_PID
	for ((i = 1; i <= nrep; i++)); do
		daemon_start "$(rcv_ns "$i")" "$CG_RCV" "$dir/replica$i.conf" "$dir/replica$i.log"
		rpids+=("$DAEMON_PID")
	done
	for ((i = 1; i <= nrep; i++)); do
		wait_for 20 "replica $i to connect to the primary" \
			grep -q "connected to primary" "$dir/replica$i.log"
	done
	for f in "$dir"/primary.log "$dir"/replica*.log; do
		if grep -q "BPF probes on" "$f"; then
			[[ $probes == on ]] || fail "$name: probes are on in $f"
		else
			[[ $probes != on ]] || fail "$name: probes are not on in $f"
		fi
	done
	progress_start "$name" "$run"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	t0=$(now_s)
	on "$NS_SND" "$CG_SND" timeout -k 5 900 "$HELPER" each --list "$dir/push.list" \
		--latencies "$dir/latencies" --stats "$dir/stats" --progress "$PROGRESS" \
		-- "$WALSHIP" push -c "$pconf" 2>"$dir/push.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/push.err" >&2
		echo "---- tail of $dir/primary.log ----" >&2
		tail -n 30 "$dir/primary.log" >&2
		fail "$name run $run failed (exit $st); logs in $dir"
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
	walshipd_stop "$pconf"
	for ((i = 1; i <= nrep; i++)); do
		walshipd_stop "$dir/replica$i.conf"
	done
	for ((i = 1; i <= nrep; i++)); do
		store_check "$name" "$RUN_DIR/store$i" "$list"
	done
	record "$name" "$run" "$nseg" $((nseg * SEG_BYTES)) \
		"$( ((sync > 0)) && stats_field "$dir/stats" wall_s || sub "$t1" "$t0")" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies" "$nrep"
}

# ---------------------------------------------------------------------------------------
# walship through PostgreSQL's archiver: archive_command against the archive module

# wal_name_after NAME: the name of the timeline-1 segment after NAME (16 MiB segments).
wal_name_after() {
	local n=$(((16#${1:8:8} << 8) + 16#${1:16:8} + 1))
	printf '%08X%08X%08X\n' 1 $((n >> 8)) $((n & 255))
}

# done_at_least PGDATA N: true when the archiver has marked at least N files done.
done_at_least() {
	count_files "$1"/pg_wal/archive_status/*.done
	((COUNT >= $2))
}

# run_archiver RUN NAME MODE: one run of a real PostgreSQL 15 archiver shipping the
# corpus through walship, with MODE command (archive_command = 'exec walship push %p':
# a shell that becomes the push process, per segment) or module (archive_library = 'walship_archive':
# no process per segment, one kept connection).  The cluster is a fresh initdb whose WAL
# is moved past the corpus's names (pg_resetwal -l); the corpus is linked into its pg_wal
# and marked ready, as PostgreSQL leaves completed segments; wal_recycle = off and no
# checkpoint during the run (immediate stop) so the links are never written through.
# PostgreSQL runs in the sender's cgroup (the archiver and what it forks count).  It starts
# with archiving not configured (archive_mode = on with no archive_command, or the module
# loaded with no walship.socket: PostgreSQL keeps the ready segments and waits), so that
# its start-up is not in the figures, as no other contender has one; the run's clock and
# CPU start just before the SIGHUP that configures archiving, and end when every segment
# is done.  The latency of a segment is the time between its .done and the one before it
# (the archiver works one file at a time), from the renames' change times; the first
# segment has none.
run_archiver() {
	local run=$1 name=$2 mode=$3
	local dir pconf pgdata nseg last f s0 r0 t0 t1 s1 r1 archiving pm_pid
	nseg=$(wc -l <"$CORPUS_LIST")
	dir=$RUN_DIR/$name-$run
	pgdata=$dir/pgdata
	rm -rf "$dir"
	mkdir -p "$dir/spool" "$dir/pgsock"
	touch "$dir/pg.log"
	chown postgres:postgres "$dir/pgsock" "$dir/pg.log"
	pconf=$dir/primary.conf
	walship_conf "$pconf" role=primary node_name=bench-snd "listen=$ADDR_SND:$WALSHIP_PORT" \
		"socket=$dir/p.sock" "spool_dir=$dir/spool" socket_group=postgres \
		socket_permissions=0660 sync_replicas=1 max_senders=8 push_timeout=60s
	walship_conf "$dir/replica1.conf" role=replica node_name=bench-rcv1 \
		"upstream=$ADDR_SND:$WALSHIP_PORT" "archive_dir=$RUN_DIR/store1" \
		"socket=$dir/r1.sock" socket_permissions=0600 reconnect_min=50ms reconnect_max=500ms
	store_reset "$RUN_DIR/store1"

	pg_initdb "$pgdata"
	last=$(tail -n 1 "$CORPUS_LIST")
	pg_as "$PG_BIN/pg_resetwal" -l "$(wal_name_after "${last##*/}")" "$pgdata" \
		>"$dir/resetwal.out" 2>&1 || { cat "$dir/resetwal.out" >&2; fail "pg_resetwal failed"; }
	cat >>"$pgdata/postgresql.conf" <<-EOF
		listen_addresses = ''
		unix_socket_directories = '$dir/pgsock'
		archive_mode = on
		wal_recycle = off
		checkpoint_timeout = 1h
		max_wal_size = 16GB
	EOF
	if [[ $mode == module ]]; then
		# Loaded at the start, not configured until walship.socket is set (a change of
		# archive_library would restart the archiver only at the postmaster's next turn,
		# up to a minute later).
		cat >>"$pgdata/postgresql.conf" <<-EOF
			archive_library = '${PGMOD%.so}'
			walship.socket = ''
		EOF
		archiving="walship.socket = '$dir/p.sock'"
	else
		archiving="archive_command = 'exec $WALSHIP push -c $pconf %p'"
	fi
	# The archiver runs as postgres: the corpus files (root's, 0600) become readable by
	# group postgres, their only change.
	while IFS= read -r f; do
		chgrp postgres "$f"
		chmod 0640 "$f"
		ln -s "$f" "$pgdata/pg_wal/${f##*/}"
		: >"$pgdata/pg_wal/archive_status/${f##*/}.ready"
	done <"$CORPUS_LIST"
	chown -h postgres:postgres "$pgdata"/pg_wal/archive_status/* "$pgdata"/pg_wal/0*

	daemon_start "$NS_SND" "$CG_SND" "$pconf" "$dir/primary.log"
	daemon_start "$NS_RCV" "$CG_RCV" "$dir/replica1.conf" "$dir/replica1.log"
	wait_for 20 "the replica to connect to the primary" \
		grep -q "connected to primary" "$dir/replica1.log"
	WS_PG_DIRS+=("$pgdata") # stopped by ws_cleanup if we fail
	on "$NS_SND" "$CG_SND" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pgdata" \
		-l "$dir/pg.log" -w -t 60 start >/dev/null ||
		{ tail -n 20 "$dir/pg.log" >&2; fail "$name: could not start PostgreSQL"; }
	# Up, its segments ready, nothing archived: configure archiving and signal the
	# postmaster (kill is the shell's: no process in the run's CPU).
	done_at_least "$pgdata" 1 && fail "$name: PostgreSQL archived before it was configured"
	printf '%s\n' "$archiving" >>"$pgdata/postgresql.conf"
	read -r pm_pid <"$pgdata/postmaster.pid"
	progress_start "$name" "$run"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	t0=$(now_s)
	kill -HUP "$pm_pid"
	wait_for 900 "$name: the archiver to archive $nseg segments" \
		done_at_least "$pgdata" "$nseg"
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	# The end: the last segment marked done.
	find "$pgdata/pg_wal/archive_status" -maxdepth 1 -name '*.done' -printf '%C@\n' |
		sort -n >"$dir/done.times"
	t1=$(tail -n 1 "$dir/done.times")
	# The first segment's wait includes the reload: no latency of its own.
	awk 'NR > 1 {printf "%d\n", ($1 - prev) * 1e6} {prev = $1}' "$dir/done.times" \
		>"$dir/latencies"
	printf '\n'
	# (Not configured until the SIGHUP: PostgreSQL and the module say so, as expected.)
	grep -E 'WARNING|ERROR|FATAL' "$dir/pg.log" |
		grep -v -e 'archive_mode enabled, yet archiving is not configured' \
			-e '"walship.socket" is not set' | head -n 5 >&2 || true
	pg_as "$PG_BIN/pg_ctl" -D "$pgdata" -m immediate -w -t 60 stop >/dev/null ||
		fail "$name: could not stop PostgreSQL"
	walshipd_stop "$pconf"
	walshipd_stop "$dir/replica1.conf"
	store_check "$name" "$RUN_DIR/store1" "$CORPUS_LIST"
	rm -rf "$pgdata"
	record "$name" "$run" "$nseg" $((nseg * SEG_BYTES)) "$(sub "$t1" "$t0")" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies"
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
	bg_start "$dir/recv.err" on "$NS_RCV" "$CG_RCV" timeout -k 5 900 "$HELPER" recv \
		--listen "$ADDR_RCV:$BASELINE_PORT" --dir "$RUN_DIR/store1" \
		--stats "$dir/recv.stats"
	rpid=$BG_PID
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
		fail "baseline run $run failed; logs in $dir"
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
		fail "cp run $run failed; logs in $dir"
	fi
	s1=$(cg_usage "$CG_SND")
	store_check cp "$RUN_DIR/store1" "$CORPUS_LIST"
	record cp "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/stats" wall_s)" \
		"$(sub "$s1" "$s0")" - "$dir/latencies"
}

# replica_io_buffers: the io_buffers of the walship contenders' replicas (registered
# buffers, each holding a received chunk until it is written: the most writes in flight):
# BENCH_WALSHIP_EXTRA's, else walshipd's default from its config table.
replica_io_buffers() {
	local kv
	for kv in $WALSHIP_EXTRA; do
		[[ $kv == io_buffers=* ]] && { printf '%s\n' "${kv#*=}"; return 0; }
	done
	"$WALSHIPD" --describe-config | awk -F'|' '$2 ~ /`io_buffers`/ {gsub(/[ `]/, "", $4); print $4}'
}

# run_limit_disk RUN: one run of the disk limit: the segments from memory to the store,
# on the receiver host, as the replica writes them (bench_baseline disk).
run_limit_disk() {
	local run=$1 dir st=0 depth
	dir=$RUN_DIR/limit-disk-$run
	mkdir -p "$dir"
	depth=$(replica_io_buffers)
	[[ $depth =~ ^[0-9]+$ ]] || fail "limit-disk: no io_buffers from $WALSHIPD --describe-config"
	store_reset "$RUN_DIR/store1"
	progress_start limit-disk "$run"
	# shellcheck disable=SC2046  # one argument per corpus file
	on "$NS_RCV" "$CG_RCV" timeout -k 5 900 "$HELPER" disk --dir "$RUN_DIR/store1" \
		--depth "$depth" --latencies "$dir/latencies" --stats "$dir/stats" \
		--progress "$PROGRESS" $(cat "$CORPUS_LIST") 2>"$dir/disk.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/disk.err" >&2
		fail "limit-disk run $run failed; logs in $dir"
	fi
	store_check limit-disk "$RUN_DIR/store1" "$CORPUS_LIST"
	# For the report: how the limit wrote.
	echo "chunk $(stats_field "$dir/stats" chunk) depth $(stats_field "$dir/stats" depth)" \
		>"$RUN_DIR/limit-disk.params"
	# Its CPU from the helper's own count from its clock's start: the cgroup's counts
	# the mapping and locking of the whole corpus before it, and the unmapping after,
	# which no replica does (most of the figure on a run of 500 segments).
	record limit-disk "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/stats" wall_s)" \
		- "$(awk -v u="$(stats_field "$dir/stats" user_s)" -v s="$(stats_field "$dir/stats" sys_s)" \
			'BEGIN {printf "%.3f\n", u + s}')" "$dir/latencies"
}

# run_net RUN NAME SENDER: one run of bench_baseline SENDER to a receiver on the same veth
# that reads and discards each file, one ack per file (bench_baseline recvnull).
#   limit-net   (SENDER sendmem) the network limit: each segment from memory;
#   plain-send  (SENDER send) the baseline's own sender, read() and write(), to a receiver
#               that keeps up.  A sender's CPU depends on its receiver's speed: the
#               baseline's slow receiver acknowledges from its own context and sends the
#               sender's queued data from there (docs/benchmark-notes.md), so this is the
#               plain sender's CPU with a receiver as fast as walship's replica.
run_net() {
	local run=$1 name=$2 sender=$3 dir rpid st=0 s0 r0 s1 r1 n
	dir=$RUN_DIR/$name-$run
	mkdir -p "$dir"
	store_reset # the same warm corpus and synced disk as the others
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	bg_start "$dir/recv.err" on "$NS_RCV" "$CG_RCV" timeout -k 5 900 "$HELPER" recvnull \
		--listen "$ADDR_RCV:$LIMIT_NET_PORT" --stats "$dir/recv.stats"
	rpid=$BG_PID
	progress_start "$name" "$run"
	# shellcheck disable=SC2046  # one argument per corpus file
	on "$NS_SND" "$CG_SND" timeout -k 5 900 "$HELPER" "$sender" \
		--connect "$ADDR_RCV:$LIMIT_NET_PORT" --latencies "$dir/latencies" \
		--stats "$dir/send.stats" --progress "$PROGRESS" $(cat "$CORPUS_LIST") \
		2>"$dir/send.err" || st=$?
	wait "$rpid" || st=$((st ? st : 1))
	if ((st != 0)); then
		printf '\n'
		cat "$dir/send.err" "$dir/recv.err" >&2
		fail "$name run $run failed; logs in $dir"
	fi
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	n=$(stats_field "$dir/recv.stats" files)
	((n == SEGMENTS)) || fail "$name: the receiver got $n files, not $SEGMENTS"
	record "$name" "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/send.stats" wall_s)" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies"
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
	) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; fail "openssl failed"; }
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
	# The prefix execs: the recorded pid is runuser's, which passes SIGTERM on at clean-up.
	cg_cmd "$CG_RCV"
	bg_start "$d/server.out" "${CG_CMD[@]}" ip netns exec "$NS_RCV" \
		runuser -u postgres -- pgbackrest --config="$d/server.conf" server
	# In a subshell, so that a timeout can show the server's output before failing.
	(wait_for 10 "pgbackrest server to listen" \
		in_ns "$NS_RCV" bash -c "echo >/dev/tcp/$ADDR_RCV/$PGBR_PORT") ||
		{ cat "$d/server.out" >&2; fail "pgbackrest server did not start"; }
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
	as_postgres_in "$NS_RCV" pgbackrest --config="$d/server.conf" \
		--stanza=bench --no-online stanza-create >"$dir/stanza.out" 2>&1 ||
		{ cat "$dir/stanza.out" >&2; fail "$name: stanza-create failed"; }
	store_reset
	progress_start "$name" "$run"
	s0=$(cg_usage "$CG_SND")
	r0=$(cg_usage "$CG_RCV")
	t0=$(now_s)
	# archive_command = 'pgbackrest --stanza=bench archive-push %p', run by the archiver
	# (as postgres), which then marks the segment .done.  A failed command is tried again
	# as PostgreSQL's archiver does (pgarch.c: three tries a second apart), its wait
	# counted: pgBackRest's server once refused a push with "unable to acquire lock on
	# file .../bench-archive.lock" (2026-12-04 23:39, in the middle of 300 pushes),
	# presumably the previous push's server process not gone yet.
	# shellcheck disable=SC2016  # expanded by sh -c
	on "$NS_SND" "$CG_SND" runuser -u postgres -- timeout -k 5 1800 "$HELPER" each \
		--list "$dir/list" --latencies "$dir/latencies" --stats "$dir/stats" \
		--progress "$PROGRESS" -- sh -c 'for try in 1 2 3; do
			pgbackrest --config="$0" --stanza=bench archive-push "$1" &&
				exec mv "${1%/*}/archive_status/${1##*/}.ready" \
					"${1%/*}/archive_status/${1##*/}.done"
			[ "$try" = 3 ] || sleep 1
		done; exit 1' "$conf" 2>"$dir/each.err" || st=$?
	if ((st != 0)); then
		printf '\n'
		cat "$dir/each.err" >&2
		tail -n 20 "$d"/log/*.log >&2 || true
		fail "$name run $run failed; logs in $dir and $d/log"
	fi
	t1=$(now_s)
	settle "$CG_SND"
	s1=$(cg_usage "$CG_SND")
	r1=$(cg_usage "$CG_RCV")
	(($(pgbr_stored) == SEGMENTS)) || fail "$name: the repository has $(pgbr_stored) segments"
	record "$name" "$run" "$SEGMENTS" "$CORPUS_BYTES" "$(stats_field "$dir/stats" wall_s)" \
		"$(sub "$s1" "$s0")" "$(sub "$r1" "$r0")" "$dir/latencies"
	: "$t0" "$t1"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL streaming replication (the lag reference)

# stream_setup: a PostgreSQL 15 primary on the sender (pgbench tables at
# BENCH_STREAM_SCALE) and a streaming standby on receiver 1 made with pg_basebackup;
# both durable (fsync on), the standby's walreceiver flushing as PostgreSQL does.
stream_setup() {
	local d=$RUN_DIR/stream
	mkdir -p "$d/sock-p" "$d/sock-s"
	chown -R postgres:postgres "$d"
	log "streaming: PostgreSQL 15 primary on $NS_SND, standby on $NS_RCV"
	pg_initdb "$d/primary"
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
	echo "host replication all $NET_PREFIX.0/24 trust" >>"$d/primary/pg_hba.conf"
	# Outside the cgroups: its CPU is counted per process (walsender, walreceiver).
	pg_start "$d/primary" "$NS_SND"
	pg_as "$PG_BIN/pgbench" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -i -q \
		-s "$STREAM_SCALE" postgres >"$d/pgbench-init.out" 2>&1 ||
		{ tail "$d/pgbench-init.out" >&2; fail "pgbench -i failed"; }
	as_postgres_in "$NS_RCV" "$PG_BIN/pg_basebackup" -h "$ADDR_SND" \
		-p "$STREAM_PORT" -U postgres -D "$d/standby" -R -X stream -c fast \
		>"$d/basebackup.out" 2>&1 || { cat "$d/basebackup.out" >&2; fail "pg_basebackup failed"; }
	cat >>"$d/standby/postgresql.conf" <<-CONF
		listen_addresses = ''
		unix_socket_directories = '$d/sock-s'
		hot_standby = on
		wal_receiver_status_interval = 1s
	CONF
	# Outside the cgroups: its CPU is counted per process (walsender, walreceiver).
	pg_start "$d/standby" "$NS_RCV"
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

# lag_sampler_start SOCK PORT SECONDS RAW [APP]: one session on the PostgreSQL primary at
# SOCK:PORT reporting pg_stat_replication.flush_lag (WAL flushed there until flushed by the
# standby) in microseconds (-1 while null) every 0.1 s as a notice into RAW (one psql, no
# pipeline), of the standby whose application_name is APP (else the first), for SECONDS
# plus 300 at most; sets SAMPLER_PID.  End it with lag_sampler_stop.
lag_sampler_start() {
	local sock=$1 port=$2 secs=$3 raw=$4 where=""
	[[ -n "${5:-}" ]] && where="where application_name = '$5'"
	pg_as "$PG_BIN/psql" -h "$sock" -p "$port" -U postgres -Xq \
		-c "set application_name = 'wsbench-sampler'" -c "do \$\$ begin
			for i in 1..$(((secs + 300) * 10)) loop
				raise notice 'lag %', (select coalesce((extract(epoch from flush_lag)
					* 1e6)::bigint, -1) from pg_stat_replication $where limit 1);
				perform pg_sleep(0.1);
			end loop; end \$\$" postgres </dev/null >/dev/null 2>"$raw" &
	SAMPLER_PID=$!
	WS_BG_PIDS+=("$SAMPLER_PID")
}

# lag_sampler_stop SOCK PORT RAW OUT: end the sampler of lag_sampler_start (its backend
# terminated, then psql); OUT gets the lags it sampled (microseconds, one a line; none
# while null).
lag_sampler_stop() {
	timeout -k 2 20 runuser -u postgres -- "$PG_BIN/psql" -h "$1" -p "$2" -U postgres -XAtc \
		"select pg_terminate_backend(pid) from pg_stat_activity
		where application_name = 'wsbench-sampler'" postgres </dev/null >/dev/null || true
	stop_pid "$SAMPLER_PID" 5
	awk '$2 == "lag" && $3 >= 0 {print $3}' "$3" >"$4"
}

# stream_caught_up LSN: true when the standby has flushed LSN.
stream_caught_up() {
	[[ $(psql_p "select coalesce(bool_and(flush_lsn >= '$1'), false) from pg_stat_replication") == t ]]
}

# run_stream RUN: pgbench on the primary for BENCH_STREAM_SECONDS (rounds of the corpus's
# load: pgbench -i of the tables, then a short TPC-B run), flush_lag sampled every 0.1 s.
run_stream() {
	local run=$1 d=$RUN_DIR/stream dir wsnd wrcv c0 c1 rc0 rc1 l0 l1 t0 t1 bytes nseg lsn
	dir=$RUN_DIR/streaming-$run
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	wsnd=$(stream_pid walsender) || fail "streaming: no walsender"
	wrcv=$(stream_pid walreceiver) || fail "streaming: no walreceiver"
	progress_start streaming "$run"
	lag_sampler_start "$d/sock-p" "$STREAM_PORT" "$STREAM_SECONDS" "$dir/lag.raw"
	l0=$(psql_p "select pg_current_wal_lsn() - '0/0'::pg_lsn")
	c0=$(proc_cpu "$wsnd")
	rc0=$(proc_cpu "$wrcv")
	t0=$(now_s)
	while (($(awk -v a="$t0" -v b="$(now_s)" 'BEGIN {print int(b - a)}') < STREAM_SECONDS)); do
		pg_as "$PG_BIN/pgbench" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -i -q -I dtGvp \
			-s "$STREAM_SCALE" postgres >>"$dir/pgbench.out" 2>&1 ||
			{ tail "$dir/pgbench.out" >&2; fail "streaming: pgbench -i failed"; }
		pg_as "$PG_BIN/pgbench" -h "$d/sock-p" -p "$STREAM_PORT" -U postgres -n -c 4 -j 2 \
			"${PGBENCH_RATE[@]}" -T 3 postgres >>"$dir/pgbench.out" 2>&1 ||
			{ tail "$dir/pgbench.out" >&2; fail "streaming: pgbench failed"; }
		printf ' %s' "$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN {printf "%ds", b - a}')"
	done
	l1=$(psql_p "select pg_current_wal_lsn() - '0/0'::pg_lsn")
	lsn=$(psql_p "select pg_current_wal_lsn()")
	# Until the standby has flushed everything generated.
	wait_for 120 "the standby to catch up" stream_caught_up "$lsn"
	t1=$(now_s)
	c1=$(proc_cpu "$wsnd")
	rc1=$(proc_cpu "$wrcv")
	lag_sampler_stop "$d/sock-p" "$STREAM_PORT" "$dir/lag.raw" "$dir/latencies"
	[[ -s "$dir/latencies" ]] || echo 0 >"$dir/latencies"
	bytes=$(awk -v a="$l0" -v b="$l1" 'BEGIN {printf "%d", b - a}')
	nseg=$(awk -v b="$bytes" -v s="$SEG_BYTES" 'BEGIN {printf "%.1f", b / s}')
	record streaming "$run" "$nseg" "$bytes" "$(sub "$t1" "$t0")" "$(sub "$c1" "$c0")" \
		"$(sub "$rc1" "$rc0")" "$dir/latencies"
}

# ---------------------------------------------------------------------------------------
# Report

# bench_script SCRIPT ARGS...: run test/bench/SCRIPT (report.sh, plot.sh) with this run's
# settings in its environment (test/bench/results.sh lists them).
bench_script() {
	local script=$1
	shift
	RESULTS_TSV=$RESULTS_TSV RUN_DIR=$RUN_DIR RESULTS=$RESULTS SEGMENTS=$SEGMENTS RUNS=$RUNS \
		FANOUT_SEGMENTS=$FANOUT_SEGMENTS STREAM_SECONDS=$STREAM_SECONDS \
		STREAM_SCALE=$STREAM_SCALE CORPUS_BYTES=$CORPUS_BYTES WALSHIP=$WALSHIP \
		SYNC_TSV=$SYNC_TSV SYNC_SECONDS=$SYNC_SECONDS SYNC_LAG_SECONDS=$SYNC_LAG_SECONDS \
		STANDBY_TSV=$STANDBY_TSV STANDBY_SECONDS=$STANDBY_SECONDS STANDBY_RATE=$STANDBY_RATE \
		STANDBY_SCALE=$STANDBY_SCALE LOAD=$LOAD PG_BIN=$PG_BIN "$BENCH_DIR/$script" "$@"
}

# run_info_write: what the report states about the run itself (when it ended, the load
# average then, the tree measured), in RUN_DIR/run.info, so that BENCH_REPORT_ONLY later
# states the run's facts, not those of the moment it writes.
run_info_write() {
	bench_script report.sh info >"$RUN_DIR/run.info"
}

# bench_report: the text table (stdout and BENCH_RESULTS), the plots (BENCH_PLOTS) and the
# Markdown report (BENCH_DOC) of the results in RESULTS_TSV.
bench_report() {
	bench_script report.sh results
	# The plots are of the corpus contenders (a run of sync-* alone has none).
	[[ -n "$PLOTS" && -s "$RESULTS_TSV" ]] && bench_script plot.sh "$PLOTS"
	[[ -n "$DOC" ]] && bench_script report.sh doc "$DOC"
	return 0
}

# ---------------------------------------------------------------------------------------

main() {
	if [[ ! $LOAD =~ ^[0-9]+$ ]] || ((LOAD > 100)); then
		fail "BENCH_LOAD must be 0 to 100, not $LOAD"
	fi
	require
	trap 'bench_cleanup; exit $?' EXIT
	WS_TRAPPED=1
	trap 'exit 130' INT
	trap 'exit 143' TERM
	((SEGMENTS >= 1 && RUNS >= 1)) || fail "BENCH_SEGMENTS and BENCH_RUNS must be >= 1"
	if [[ -n "${BENCH_REPORT_ONLY:-}" ]]; then
		# Report, plots and doc again from the last run's results (same BENCH_* settings).
		RESULTS_TSV=$RUN_DIR/runs.txt
		SYNC_TSV=$RUN_DIR/sync-runs.txt
		STANDBY_TSV=$RUN_DIR/standby-runs.txt
		[[ -s "$RESULTS_TSV" || -s "$SYNC_TSV" || -s "$STANDBY_TSV" ]] ||
			fail "no results in $RUN_DIR"
		CORPUS_BYTES=$((SEGMENTS * SEG_BYTES))
		bench_report
		return 0
	fi
	rm -rf "$RUN_DIR"
	mkdir -p "$RUN_DIR/lat"
	RESULTS_TSV=$RUN_DIR/runs.txt
	SYNC_TSV=$RUN_DIR/sync-runs.txt
	STANDBY_TSV=$RUN_DIR/standby-runs.txt
	: >"$RESULTS_TSV"
	: >"$SYNC_TSV"
	: >"$STANDBY_TSV"
	if ((PROBES)) && [[ ! -r /sys/kernel/btf/vmlinux ]]; then
		log "no BTF (/sys/kernel/btf/vmlinux): the walship-probes contender is left out"
		PROBES=0
	fi
	local n fanout=""
	for n in $FANOUT; do
		[[ $n =~ ^[1-8]$ ]] || fail "BENCH_FANOUT: $n is not in 1..8"
		want "fanout-$n" || continue
		fanout+="${fanout:+ }$n"
		((n > MAX_REPLICAS)) && MAX_REPLICAS=$n
	done
	FANOUT=$fanout
	# BENCH_CONTENDERS: the contenders left out turn their switches off.
	want walship-probes || PROBES=0
	PGMOD_ON=0
	if want walship-module; then
		PGMOD_ON=1
		if [[ ! -f "$PGMOD" ]]; then
			log "no $PGMOD (postgresql-server-dev-15): the walship-module contender is left out"
			PGMOD_ON=0
		fi
	fi
	local c pgbr=0
	for c in $CORPUS_CONTENDERS; do
		[[ $c == pgbr-* ]] && want "$c" && pgbr=1
	done
	((pgbr)) || PGBR=0
	want streaming || STREAM_SECONDS=0
	sync_wanted || SYNC_SECONDS=0
	sb_check
	# The standbys' host is receiver 2 (the appliance is receiver 1).
	((SB_MAX && MAX_REPLICAS < 2)) && MAX_REPLICAS=2
	log "$SEGMENTS segments x $RUNS runs:" \
		"$(for c in $CORPUS_CONTENDERS streaming $SYNC_CONTENDERS; do
			case $c in
			walship-probes) ((PROBES)) || continue ;;
			walship-module) ((PGMOD_ON)) || continue ;;
			pgbr-*) ((PGBR)) || continue ;;
			streaming) ((STREAM_SECONDS)) || continue ;;
			sync-*) ((SYNC_SECONDS)) || continue ;;
			esac
			want "$c" && printf '%s ' "$c"
		done)$(sb_contenders | tr '\n' ' ')${FANOUT:+fan-out to $FANOUT replicas ($FANOUT_SEGMENTS segments)}"
	if want_corpus; then
		corpus_prepare
		head -n "$FANOUT_SEGMENTS" "$CORPUS_LIST" >"$RUN_DIR/fanout.list"
	else
		CORPUS_BYTES=$((SEGMENTS * SEG_BYTES)) # for the report's header
	fi
	[[ -n "${BENCH_CORPUS_ONLY:-}" ]] && return 0
	hosts_create
	cg_create
	((PGBR)) && pgbr_setup
	((STREAM_SECONDS)) && stream_setup
	((SYNC_SECONDS)) && sync_setup
	((SB_MAX)) && sb_setup
	load_start
	local run k sync_order
	for ((run = 1; run <= RUNS; run++)); do
		log "---- run $run of $RUNS"
		want walship && run_walship "$run" walship buffers off 1 1 "$CORPUS_LIST"
		want walship-async && run_walship "$run" walship-async buffers off 0 1 "$CORPUS_LIST"
		((PROBES)) && run_walship "$run" walship-probes buffers on 1 1 "$CORPUS_LIST"
		want walship-map && run_walship "$run" walship-map map off 1 1 "$CORPUS_LIST"
		want walship-archcmd && run_archiver "$run" walship-archcmd command
		((PGMOD_ON)) && run_archiver "$run" walship-module module
		if ((PGBR)); then
			want pgbr-sync-off && run_pgbr "$run" pgbr-sync-off off n
			want pgbr-sync-none && run_pgbr "$run" pgbr-sync-none none n
			want pgbr-sync-lz4 && run_pgbr "$run" pgbr-sync-lz4 lz4 n
			want pgbr-async-off && run_pgbr "$run" pgbr-async-off off y
			want pgbr-async-lz4 && run_pgbr "$run" pgbr-async-lz4 lz4 y
		fi
		want baseline && run_baseline "$run"
		want cp && run_cp "$run"
		want limit-disk && run_limit_disk "$run"
		want limit-net && run_net "$run" limit-net sendmem
		want plain-send && run_net "$run" plain-send send
		((STREAM_SECONDS)) && run_stream "$run"
		# In another order each round: each contender after another's teardown (its
		# files removed, autovacuum's rounds), not always the same one's.
		read -ra sync_order <<<"$SYNC_CONTENDERS"
		for ((k = 0; k < ${#sync_order[@]}; k++)); do
			c=${sync_order[(k + run - 1) % ${#sync_order[@]}]}
			((SYNC_SECONDS)) && want "$c" && run_sync "$run" "$c"
		done
		for n in $FANOUT; do
			run_walship "$run" "fanout-$n" buffers off "$n" "$n" "$RUN_DIR/fanout.list"
		done
		((SB_MAX)) && sb_run_all "$run"
	done
	load_stop
	rm -rf "$RUN_DIR"/store* "$RUN_DIR/pgbr/repo" "$RUN_DIR/pgbr/pgdata/pg_wal"
	run_info_write
	bench_report
	return 0
}

main "$@"
