# shellcheck shell=bash
# walship system-test library.  Sourced by test/system/t_*.sh, scripts/demo.sh and the
# benchmark (test/bench/run-bench.sh, whose daemons run in cgroups: WS_DAEMON_WRAP):
#
#   . "$(dirname "$0")/lib.sh"
#   ws_setup            # root check, test dir, cleanup trap
#   net_create 1        # namespaces: $NS_P (primary host), $NS_R1 (replica host 1)
#   ...
#
# Hosts are network namespaces joined by veth pairs through a bridge in the primary's
# namespace: ws-<X>-p has 10.77.<X>.1 on br0, ws-<X>-r<i> has 10.77.<X>.<1+i> on eth0.
# <X> is a free number in 1..250 (ip netns add is the lock), tried from one derived from
# the pid, so concurrent or repeated runs never share a subnet.  Only addresses inside these namespaces are used.
#
# Everything a test starts (namespaces, PostgreSQL clusters, walshipd, background jobs,
# the test directory) is recorded and torn down by ws_cleanup, which ws_setup registers on
# EXIT; INT and TERM exit through it too, so a failing or interrupted test leaves nothing.
#
# Exit codes: 0 pass, 1 fail (fail), 77 skip (skip; its reason is the last line printed).
#
# Environment:
#   WALSHIP_TEST_DIR  use this directory (created if needed) instead of a mktemp one
#   WALSHIP_KEEP=1    keep the test directory after the test (logs, data dirs)
#   PG_BIN            PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)

set -euo pipefail

WS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WALSHIPD=${WALSHIPD:-$WS_ROOT/build/walshipd}
WALSHIP=${WALSHIP:-$WS_ROOT/build/walship}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WS_TEST_NAME=${WS_TEST_NAME:-$(basename "$0" .sh)}
# Port the primary walshipd listens on (inside its namespace).
WALSHIP_PORT=${WALSHIP_PORT:-5480}

TEST_DIR=""
WS_NET_ID=""
WS_NAMESPACES=()
WS_PG_DIRS=()
WS_BG_PIDS=()
declare -A WS_NS_ADDR=()	# namespace -> its address
declare -A WS_PG_NS=()		# data dir -> namespace its postmaster runs in
declare -A WS_DAEMON_PID=()	# walshipd config file -> pid
WS_CLEANED=0
WS_TRAPPED=0
PRIMARY_CONF_EXTRA=()
REPLICA_CONF_EXTRA=()
WS_WAIT_POLL=0.2	# wait_for's poll interval, seconds (the benchmark polls every 0.1 s)
WS_DAEMON_WRAP=()	# a command walshipd_start runs walshipd through (the benchmark's cgroup)
WS_PGQ_PORT=""		# this test's SQL relay for psql_at (ws_pgq_start): its port,
WS_PGQ_TOKEN=""		# the token a request starts with,
WS_PGQ_PID=""		# and its pid

# ---------------------------------------------------------------------------------------
# Messages and assertions

# log MSG...: a progress line on stdout, prefixed with the time and test name.
log() {
	printf '%(%H:%M:%S)T [%s] %s\n' -1 "$WS_TEST_NAME" "$*"
}

# ws_sleep SECONDS: sleep without starting a process: read -t on a pipe that nobody writes
# to (opened once; subshells inherit it).  The loops of these tests poll every 0.1 to
# 0.2 s, and a process costs 2 to 5 ms of CPU on a virtual machine (its page tables): the
# sleep processes alone were 1 % of the system tests' CPU (perf record -a, by command).
WS_SLEEP_FD=""
ws_sleep() {
	[[ -n "$WS_SLEEP_FD" ]] || exec {WS_SLEEP_FD}<> <(:)
	read -rt "$1" -u "$WS_SLEEP_FD" _ || true
}

# fail MSG...: report a failure and exit 1 (cleanup runs from the EXIT trap).
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# skip MSG...: report why the test cannot run here and exit 77.  The reason is printed
# last, on stdout, so the runner can show it.
skip() {
	WS_SKIP_REASON="$*"
	# Before ws_setup there is no EXIT trap to print the reason last: print it here.
	((WS_TRAPPED)) || echo "SKIP: $WS_SKIP_REASON"
	exit 77
}

# pid_alive PID: true if PID runs (a zombie, dead but not yet reaped, does not count).
# Read from /proc with builtins: wait_for calls it for every daemon on every poll, and a
# fork costs milliseconds of CPU on a loaded virtual machine.
pid_alive() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ -n "$stat" && "$stat" != Z* ]]
}

# assert_eq EXPECTED ACTUAL WHAT: fail unless the two strings are equal.
assert_eq() {
	if [[ "$1" != "$2" ]]; then
		fail "$3: expected '$1', got '$2'"
	fi
}

# assert_file_identical A B: fail unless files A and B exist and have the same bytes.
assert_file_identical() {
	[[ -f "$1" ]] || fail "file $1 does not exist"
	[[ -f "$2" ]] || fail "file $2 does not exist"
	cmp -s "$1" "$2" || fail "files differ: $1 ($(stat -c %s "$1") bytes) and $2 ($(stat -c %s "$2") bytes)"
}

# assert_file_absent PATH: fail if PATH exists.
assert_file_absent() {
	[[ ! -e "$1" ]] || fail "$1 exists but must not"
}

# run_capture OUTFILE CMD...: run CMD with stdout+stderr into OUTFILE, never failing;
# sets RC to CMD's exit code.
run_capture() {
	local out=$1
	shift
	RC=0
	"$@" >"$out" 2>&1 || RC=$?
}

# assert_exit EXPECTED DESCRIPTION CMD...: run CMD, fail unless it exits EXPECTED.  The
# output goes to $TEST_DIR/last.out (and is printed on mismatch).
assert_exit() {
	local expected=$1 what=$2
	shift 2
	run_capture "$TEST_DIR/last.out" "$@"
	if [[ "$RC" != "$expected" ]]; then
		sed 's/^/    | /' "$TEST_DIR/last.out" >&2
		fail "$what: expected exit $expected, got $RC from: $*"
	fi
}

# assert_fails DESCRIPTION CMD...: run CMD, fail unless it exits non-zero AND prints a
# message (stdout or stderr).  The output is left in $TEST_DIR/last.out.
assert_fails() {
	local what=$1
	shift
	run_capture "$TEST_DIR/last.out" "$@"
	if [[ "$RC" == 0 ]]; then
		sed 's/^/    | /' "$TEST_DIR/last.out" >&2
		fail "$what: expected a non-zero exit, got 0 from: $*"
	fi
	if [[ ! -s "$TEST_DIR/last.out" ]]; then
		fail "$what: exited $RC but printed no message: $*"
	fi
	log "ok: $what (exit $RC: $(head -1 "$TEST_DIR/last.out"))"
}

# wait_for TIMEOUT_S DESCRIPTION CMD...: poll CMD (every WS_WAIT_POLL s) until it succeeds; fail
# with DESCRIPTION if it has not after TIMEOUT_S seconds, or at once if a walshipd died
# (ws_check_daemons).  A bounded wait, not an assertion about timing.  CMD's arguments are
# expanded once, at the call: to poll a value read by $(...), wrap the test in a function.
# (Polling long waits every 0.5 s after their first 2 s saved a fresh clone's make check
# 55 s of CPU but cost it 36 s of wall time: waits are what its length is made of.)
wait_for() {
	# (Names of its own: CMD is often a function of the caller's that reads the caller's
	# variables, which a local of the same name here would hide.)
	local ws_wait_timeout=$1 ws_wait_what=$2
	shift 2
	local ws_wait_deadline=$((SECONDS + ws_wait_timeout))
	while ! "$@" >/dev/null 2>&1; do
		ws_check_daemons
		if ((SECONDS >= ws_wait_deadline)); then
			fail "timed out after ${ws_wait_timeout}s waiting for $ws_wait_what"
		fi
		ws_sleep "$WS_WAIT_POLL"
	done
}

# ws_check_daemons: fail at once if a walshipd this test started (and has not stopped or
# killed on purpose) is no longer running, instead of waiting out a timeout.
ws_check_daemons() {
	local conf
	for conf in "${!WS_DAEMON_PID[@]}"; do
		pid_alive "${WS_DAEMON_PID[$conf]}" ||
			fail "walshipd -c $conf (pid ${WS_DAEMON_PID[$conf]}) exited unexpectedly"
	done
}

# ---------------------------------------------------------------------------------------
# Setup and cleanup

# require_root: skip unless running as root (namespaces, setpriv, chgrp need it).
require_root() {
	((EUID == 0)) || skip "needs root (network namespaces, setpriv)"
}

# require_cmds CMD...: skip unless every command is on PATH.
require_cmds() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "command $c not found (run scripts/install-deps.sh)"
	done
}

# require_postgres: skip unless PostgreSQL 15 server binaries and the postgres user exist.
require_postgres() {
	[[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] ||
		skip "PostgreSQL 15 server not found in $PG_BIN (run scripts/install-deps.sh)"
	id postgres >/dev/null 2>&1 || skip "no postgres user"
}

# require_walship: skip unless build/walshipd and build/walship exist; fail if the
# postgres user cannot execute them (archive_command and restore_command run as postgres).
require_walship() {
	[[ -x "$WALSHIPD" && -x "$WALSHIP" ]] || skip "walship not built ($WALSHIPD, $WALSHIP): run make"
	as_postgres test -x "$WALSHIP" ||
		fail "user postgres cannot execute $WALSHIP (check the permissions of its directories)"
}

# ws_setup: common start of every test: root and tool checks, test directory (mode 0755
# so postgres can reach its own subdirectories), cleanup trap on EXIT, INT and TERM.
ws_setup() {
	require_root
	require_cmds ip nsenter setpriv timeout cmp md5sum
	require_postgres
	trap 'ws_cleanup; exit $?' EXIT
	WS_TRAPPED=1
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [[ -n "${WALSHIP_TEST_DIR:-}" ]]; then
		TEST_DIR=$WALSHIP_TEST_DIR
		mkdir -p "$TEST_DIR"
	else
		TEST_DIR=$(mktemp -d /tmp/walship-test.XXXXXX)
	fi
	chmod 0755 "$TEST_DIR"
	log "test directory $TEST_DIR"
	ws_pgq_start
}

# ws_pgq_start: start this test's SQL relay, build/helpers/pgq (test/helpers/pgq.c), which
# psql_at sends its SQL to: a connection to each server kept open between calls, instead
# of a psql and a new backend per call (about 90 ms of CPU each here; the polls of a make
# check made about 1,300).  It listens on 127.0.0.1 in the test's own namespace, answers
# only requests that carry its random token, and dies with the test's shell.  Without
# the helper (not built), psql_at runs psql.
ws_pgq_start() {
	local pgq=$WS_ROOT/build/helpers/pgq fd
	[[ -x "$pgq" ]] || return 0
	exec {fd}< <(exec "$pgq" 2>>"$TEST_DIR/pgq.log")
	WS_PGQ_PID=$!
	read -r WS_PGQ_PORT WS_PGQ_TOKEN <&"$fd" || WS_PGQ_PORT=""
	exec {fd}<&-
}

# ws_cleanup: EXIT trap.  Stops walshipd daemons, PostgreSQL clusters and background jobs,
# kills whatever still runs in our namespaces, deletes the namespaces and the test
# directory (kept when WALSHIP_KEEP=1).  On failure, prints the tails of the daemon and
# PostgreSQL logs first.  Keeps the exit status of the test.
ws_cleanup() {
	local rc=$?
	((WS_CLEANED)) && return "$rc"
	WS_CLEANED=1
	set +e
	trap '' INT TERM
	if ((rc != 0 && rc != 77)) && [[ -n "$TEST_DIR" ]]; then
		ws_dump_logs
	fi
	local pid conf dir ns st
	[[ -n "$WS_PGQ_PID" ]] && kill -TERM "$WS_PGQ_PID" 2>/dev/null
	WS_PGQ_PORT=""
	for pid in "${WS_BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	# A test that passed leaves its daemons running (the ones it stopped or killed on
	# purpose are no longer listed): one that died meanwhile, or does not stop cleanly
	# on SIGTERM (exit 0), fails it, or a crash after the last check would pass.
	local dead="" gone=" "
	if ((rc == 0)); then
		for conf in "${!WS_DAEMON_PID[@]}"; do
			pid=${WS_DAEMON_PID[$conf]}
			pid_alive "$pid" && continue
			gone+="$pid "
			st=0
			wait "$pid" 2>/dev/null || st=$?
			dead+=" walshipd -c $conf (pid $pid) had exited (status $st);"
		done
	fi
	for conf in "${!WS_DAEMON_PID[@]}"; do
		pid=${WS_DAEMON_PID[$conf]}
		kill -TERM "$pid" 2>/dev/null
	done
	if ((rc == 0)); then
		local deadline_stop=$((SECONDS + 10))
		for conf in "${!WS_DAEMON_PID[@]}"; do
			pid=${WS_DAEMON_PID[$conf]}
			[[ "$gone" == *" $pid "* ]] && continue
			while pid_alive "$pid" && ((SECONDS < deadline_stop)); do
				ws_sleep 0.1
			done
			if pid_alive "$pid"; then # (killed below)
				dead+=" walshipd -c $conf (pid $pid) did not stop within 10 s of SIGTERM;"
				continue
			fi
			st=0
			wait "$pid" 2>/dev/null || st=$?
			((st == 0)) || dead+=" walshipd -c $conf (pid $pid) exited with status $st;"
		done
		if [[ -n "$dead" ]]; then
			echo "FAIL: at the end of the test:$dead" >&2
			[[ -n "$TEST_DIR" ]] && ws_dump_logs
			rc=1
		fi
	fi
	for dir in "${WS_PG_DIRS[@]}"; do
		if [[ -f "$dir/postmaster.pid" ]]; then
			as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m immediate -t 20 -w stop \
				>/dev/null 2>&1
		fi
	done
	# Anything left in our namespaces (daemons that ignored SIGTERM, psql, pgbench).
	local deadline=$((SECONDS + 10)) left
	while :; do
		left=""
		for ns in "${WS_NAMESPACES[@]}"; do
			left+=" $(ip netns pids "$ns" 2>/dev/null)"
		done
		for pid in "${WS_BG_PIDS[@]}" "${WS_DAEMON_PID[@]}"; do
			pid_alive "$pid" && left+=" $pid"
		done
		[[ -z "${left//[[:space:]]/}" ]] && break
		if ((SECONDS >= deadline)); then
			echo "cleanup: killing leftover processes:${left//[[:space:]]/ }" >&2
			# shellcheck disable=SC2086  # a list of pids
			kill -KILL $left 2>/dev/null
			ws_sleep 0.5
			break
		fi
		ws_sleep 0.2
	done
	((${#WS_NAMESPACES[@]} == 0)) ||
		printf 'netns delete %s\n' "${WS_NAMESPACES[@]}" | ip -force -batch - 2>/dev/null ||
		true
	if [[ -n "$TEST_DIR" && -d "$TEST_DIR" ]]; then
		if [[ "${WALSHIP_KEEP:-0}" == 1 ]]; then
			echo "keeping $TEST_DIR" >&2
		elif [[ -z "${WALSHIP_TEST_DIR:-}" ]]; then
			rm -rf "$TEST_DIR"
		fi
	fi
	if ((rc == 77)); then
		echo "SKIP: ${WS_SKIP_REASON:-no reason given}"
	fi
	return "$rc" # (the EXIT traps exit with it: a trap's own status is not the script's)
}

# ws_dump_logs: name the walshipd daemons that died on their own, and print the last lines
# of every *.log under the test directory (daemon and PostgreSQL logs), so the runner's
# saved output explains a failure.
ws_dump_logs() {
	local f conf
	for conf in "${!WS_DAEMON_PID[@]}"; do
		pid_alive "${WS_DAEMON_PID[$conf]}" ||
			echo "note: walshipd -c $conf (pid ${WS_DAEMON_PID[$conf]}) was no longer running" >&2
	done
	while IFS= read -r f; do
		echo "----- tail of $f -----" >&2
		tail -n 30 "$f" >&2
	done < <(find "$TEST_DIR" -maxdepth 3 -name '*.log' -type f 2>/dev/null | sort)
}

# bg_start LOGFILE CMD...: run CMD in the background with output to LOGFILE; records the
# pid (for cleanup) in BG_PID.  A shell function runs in a subshell of its own, whose pid
# a kill reaches but not the command it runs: in_ns and as_postgres_in are run as the
# commands they stand for (nsenter and setpriv exec theirs), so that BG_PID is the
# command's own pid (their definitions below; t_99q killed its subshell and left its
# 70 connections open).
bg_start() {
	local logfile=$1
	shift
	case "$1" in
	in_ns)
		nsenter --net="/run/netns/$2" -- "${@:3}" >"$logfile" 2>&1 &
		;;
	as_postgres_in)
		HOME=$WS_PG_HOME USER=postgres LOGNAME=postgres nsenter --net="/run/netns/$2" -- \
			"${WS_SETPRIV_POSTGRES[@]}" "${@:3}" >"$logfile" 2>&1 &
		;;
	*)
		"$@" >"$logfile" 2>&1 &
		;;
	esac
	BG_PID=$!
	WS_BG_PIDS+=("$BG_PID")
}

# ---------------------------------------------------------------------------------------
# Network namespaces

# net_create [NREPLICAS]: create the primary host namespace NS_P and NREPLICAS (default 1)
# replica host namespaces NS_R1.. joined through bridge br0 in NS_P; sets NET_PREFIX
# (10.77.X), ADDR_P, ADDR_R1.., and checks each replica can ping the primary.
net_create() {
	local nrep=${1:-1} x i k ns
	# Start from a number derived from our pid, so that concurrent runs rarely race for
	# the same number and a number just freed is not reused at once.
	for ((k = 0; k < 250; k++)); do
		x=$(((BASHPID + k) % 250 + 1))
		if ip netns add "ws-$x-p" 2>/dev/null; then
			WS_NET_ID=$x
			break
		fi
	done
	[[ -n "$WS_NET_ID" ]] || fail "no free namespace number in 1..250 (stale ws-*-p namespaces?)"
	NS_P="ws-$WS_NET_ID-p"
	WS_NAMESPACES+=("$NS_P")
	NET_PREFIX="10.77.$WS_NET_ID"
	ADDR_P="$NET_PREFIX.1"
	WS_NS_ADDR[$NS_P]=$ADDR_P
	# One `ip -batch` per namespace, not a process per command (a process costs 2 to 5 ms
	# of CPU here, and every test makes its network).
	local -a pcmds=("link set lo up" "link add br0 type bridge"
		"link set br0 type bridge forward_delay 0 stp_state 0"
		"addr add $ADDR_P/24 dev br0" "link set br0 up")
	for ((i = 1; i <= nrep; i++)); do
		ns="ws-$WS_NET_ID-r$i"
		ip netns add "$ns" || fail "could not create namespace $ns"
		WS_NAMESPACES+=("$ns")
		WS_NS_ADDR[$ns]="$NET_PREFIX.$((1 + i))"
		pcmds+=("link add vr$i type veth peer name eth0 netns $ns"
			"link set vr$i master br0" "link set vr$i up")
		printf -v "NS_R$i" '%s' "$ns"
		printf -v "ADDR_R$i" '%s' "${WS_NS_ADDR[$ns]}"
	done
	printf '%s\n' "${pcmds[@]}" | ip -n "$NS_P" -batch - ||
		fail "could not set up the network of $NS_P"
	for ((i = 1; i <= nrep; i++)); do
		ns="ws-$WS_NET_ID-r$i"
		printf '%s\n' "link set lo up" "addr add ${WS_NS_ADDR[$ns]}/24 dev eth0" \
			"link set eth0 up" | ip -n "$ns" -batch - ||
			fail "could not set up the network of $ns"
	done
	for ((i = 1; i <= nrep; i++)); do
		ns="ws-$WS_NET_ID-r$i"
		wait_for 10 "$ns to reach $ADDR_P" in_ns "$ns" ping -c 1 -W 1 "$ADDR_P"
	done
	log "network: $NS_P ($ADDR_P) with $nrep replica host(s) on $NET_PREFIX.0/24"
}

# ns_addr NS: print the address of namespace NS.
ns_addr() {
	printf '%s\n' "${WS_NS_ADDR[$1]}"
}

# in_ns NS CMD...: run CMD inside namespace NS (its network only: nsenter, where `ip netns
# exec` also makes a mount namespace and mounts a /sys for it, a third more CPU per
# command; walshipd_start keeps `ip netns exec`, whose /sys the daemons' probes use).
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# ns_pids NS NAME: print the pids of the processes named NAME (their comm, as pgrep -x
# matches it) in namespace NS, one a line; false when there is none.  What this test started
# there, where `pgrep -n NAME` takes the newest NAME on the host: another test's, when tests
# run side by side (t_99h stopped t_99's pg_receivewal so, and streamed on with its own).
ns_pids() {
	local pid comm found=1
	for pid in $(ip netns pids "$1" 2>/dev/null); do
		{ read -r comm <"/proc/$pid/comm"; } 2>/dev/null || continue
		[[ "$comm" == "$2" ]] || continue
		printf '%s\n' "$pid"
		found=0
	done
	return "$found"
}

# as_postgres CMD...: run CMD as user postgres (its groups, HOME, USER and LOGNAME), with
# setpriv: runuser opens a PAM session, twice setpriv's CPU for each of the hundreds of
# commands the tests run as postgres.
WS_PG_HOME=/var/lib/postgresql
while IFS=: read -r ws_user _ _ _ _ ws_home _; do
	[[ "$ws_user" == postgres ]] && WS_PG_HOME=$ws_home && break
done </etc/passwd
unset ws_user ws_home
WS_SETPRIV_POSTGRES=(setpriv --reuid=postgres --regid=postgres --init-groups --)
as_postgres() {
	HOME=$WS_PG_HOME USER=postgres LOGNAME=postgres "${WS_SETPRIV_POSTGRES[@]}" "$@"
}

# as_postgres_in NS CMD...: run CMD as user postgres inside namespace NS.
as_postgres_in() {
	local ns=$1
	shift
	HOME=$WS_PG_HOME USER=postgres LOGNAME=postgres in_ns "$ns" "${WS_SETPRIV_POSTGRES[@]}" "$@"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

# pg_socket_dir DATADIR: the unix socket directory used for the cluster at DATADIR.
pg_socket_dir() {
	printf '%s.sock\n' "$1"
}

# pg_primary_init DIR PORT NS ARCHIVE_COMMAND: initdb a primary at DIR (as postgres) for
# namespace NS: wal_level replica, archive_mode on with ARCHIVE_COMMAND, listening on NS's
# address and PORT, sockets in $(pg_socket_dir DIR), trust for the test subnet (replication
# included).  PG_ARCHIVE_TIMEOUT (default 0 = off) sets archive_timeout.
pg_primary_init() {
	local dir=$1 port=$2 ns=$3 archive_command=$4
	local sock
	sock=$(pg_socket_dir "$dir")
	mkdir -p "$sock"
	chown postgres:postgres "$sock"
	pg_initdb "$dir"
	cat >>"$dir/postgresql.conf" <<-EOF
		# walship test settings
		listen_addresses = '$(ns_addr "$ns")'
		port = $port
		unix_socket_directories = '$sock'
		wal_level = replica
		archive_mode = on
		archive_command = '${archive_command//\'/\'\'}'
		archive_timeout = ${PG_ARCHIVE_TIMEOUT:-0}
		max_wal_senders = 4
		wal_keep_size = 256MB
		shared_buffers = 64MB
		max_connections = 40
		checkpoint_timeout = 5min
		max_wal_size = 1GB
		log_line_prefix = '%m [%p] '
		log_checkpoints = off
	EOF
	cat >>"$dir/pg_hba.conf" <<-EOF
		# walship test hosts
		host all all $NET_PREFIX.0/24 trust
		host replication all $NET_PREFIX.0/24 trust
	EOF
}

# pg_initdb DIR: create DIR (mode 0700, owned by postgres) holding a fresh cluster:
# superuser postgres, trust, no locale, UTF8.  The cluster is a copy of a template made once
# by initdb (build/test-pg-template/, keyed by the server's version and these options) and
# shared by every test, as PostgreSQL's own test suites do (initdb --template caching):
# initdb costs over a second of CPU, a copy a tenth of that.  All copies share one system
# identifier; a test that needs a cluster of another system sets PG_INITDB_FRESH=1 for a
# real initdb.  initdb's output is DIR.initdb.out.
PG_INITDB_OPTS=(-U postgres --auth=trust --no-locale -E UTF8)
pg_initdb() {
	local dir=$1 key tmpl
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	chmod 0700 "$dir"
	if [[ -n "${PG_INITDB_FRESH:-}" ]]; then
		pg_initdb_run "$dir"
		return
	fi
	key=$("$PG_BIN/postgres" --version | cksum | cut -d' ' -f1)-$(echo "${PG_INITDB_OPTS[*]}" | cksum | cut -d' ' -f1)
	tmpl=$WS_ROOT/build/test-pg-template/$key
	# One test makes it; the others wait on the lock, then find it made.
	(
		flock 9
		if [[ ! -f "$tmpl/PG_VERSION" ]]; then
			rm -rf "$tmpl.tmp" && mkdir -p "$tmpl.tmp" && chown postgres:postgres "$tmpl.tmp"
			pg_initdb_run "$tmpl.tmp" && mv "$tmpl.tmp" "$tmpl"
		fi
	) 9>"$(mkdir -p "${tmpl%/*}" && echo "$tmpl.lock")"
	[[ -f "$tmpl/PG_VERSION" ]] || fail "could not make the initdb template $tmpl"
	cp -a "$tmpl/." "$dir/" || fail "could not copy the initdb template into $dir"
	echo "copied from the initdb template $tmpl" >"$dir.initdb.out"
}

# pg_initdb_run DIR: initdb a cluster into the existing directory DIR (owned by postgres)
# with PG_INITDB_OPTS, as postgres.  Its output is DIR.initdb.out.
pg_initdb_run() {
	local dir=$1
	as_postgres "$PG_BIN/initdb" -D "$dir" "${PG_INITDB_OPTS[@]}" \
		>"$dir.initdb.out" 2>&1 ||
		{ cat "$dir.initdb.out" >&2; fail "initdb $dir failed"; }
}

# pg_start DIR NS: start the cluster at DIR inside namespace NS (as postgres); waits until
# it accepts connections.  Its log is DIR.log.
pg_start() {
	local dir=$1 ns=$2
	WS_PG_NS[$dir]=$ns
	local d
	for d in "${WS_PG_DIRS[@]}"; do
		[[ "$d" == "$dir" ]] && break
	done
	[[ "${d:-}" == "$dir" ]] || WS_PG_DIRS+=("$dir")
	touch "$dir.log" && chown postgres:postgres "$dir.log"
	as_postgres_in "$ns" "$PG_BIN/pg_ctl" -D "$dir" -l "$dir.log" -w -t 60 start \
		>/dev/null || { tail -n 30 "$dir.log" >&2; fail "could not start PostgreSQL at $dir"; }
}

# pg_stop DIR [MODE]: stop the cluster at DIR (MODE fast by default), bounded.
pg_stop() {
	local dir=$1 mode=${2:-fast}
	as_postgres_in "${WS_PG_NS[$dir]}" "$PG_BIN/pg_ctl" -D "$dir" -m "$mode" -w -t 60 stop \
		>/dev/null || fail "could not stop PostgreSQL at $dir"
}

# psql_at NS PORT SQL: run SQL on the cluster listening on NS's address and PORT, as user
# postgres over TCP; prints unaligned tuples-only output; fails on SQL errors.  What
# `psql -X -A -t -q -v ON_ERROR_STOP=1 -c SQL` prints and returns, through the test's
# relay (ws_pgq_start) when it runs: one connect on /dev/tcp, no process.  With
# WS_PSQL_TIMEOUT=SECS set, gives up (status 124) when no answer has come after SECS.
psql_at() {
	local ns=$1 port=$2 sql=$3 fd out err rc tmo=()
	[[ -z "${WS_PSQL_TIMEOUT:-}" ]] || tmo=(-t "$WS_PSQL_TIMEOUT")
	if [[ -n "$WS_PGQ_PORT" ]] && exec {fd}<>"/dev/tcp/127.0.0.1/$WS_PGQ_PORT"; then
		printf '%s\n%s\n%s\n%s\n%s\0' "$WS_PGQ_TOKEN" "$ns" "${WS_NS_ADDR[$ns]}" "$port" \
			"$sql" >&"$fd"
		if ! IFS= read -r "${tmo[@]}" -d '' -u "$fd" out; then
			exec {fd}<&-
			echo "psql_at: no answer from $ns:$port${tmo[*]:+ in ${tmo[1]} s}" >&2
			return 124
		fi
		IFS= read -r -d '' -u "$fd" err || err="pgq: no answer (see $TEST_DIR/pgq.log)"$'\n'
		read -r -u "$fd" rc || rc=2
		exec {fd}<&-
		if ((rc != 3)); then # 3: the relay could not enter NS; psql can try
			printf '%s' "$out"
			[[ -z "$err" ]] || printf '%s' "$err" >&2
			return "$rc"
		fi
	fi
	in_ns "$ns" ${tmo[1]:+timeout "${tmo[1]}"} "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
		"host=${WS_NS_ADDR[$ns]} port=$port user=postgres dbname=postgres connect_timeout=10" \
		-c "$sql"
}

# pg_standby_from_basebackup PRIMARY_NS PRIMARY_PORT DIR NS PORT RESTORE_COMMAND: take a
# pg_basebackup of the primary over the network from namespace NS into DIR, and configure it
# as a standby fed only by RESTORE_COMMAND (no primary_conninfo, no streaming): standby.signal,
# hot_standby, archive_mode off, listening on NS's address and PORT.  Does not start it.
# A standby that has replayed all there is runs RESTORE_COMMAND (a shell and `walship
# fetch`, twice) every wal_retrieve_retry_interval: 1 s (PostgreSQL's default is 5 s), fast
# enough to follow, and half the CPU of 500 ms over a test's minute.
pg_standby_from_basebackup() {
	local pns=$1 pport=$2 dir=$3 ns=$4 port=$5 restore_command=$6
	local sock
	sock=$(pg_socket_dir "$dir")
	mkdir -p "$dir" "$sock"
	chown postgres:postgres "$dir" "$sock"
	chmod 0700 "$dir"
	as_postgres_in "$ns" "$PG_BIN/pg_basebackup" -h "$(ns_addr "$pns")" -p "$pport" \
		-U postgres -D "$dir" -X stream -c fast --no-sync >"$dir.basebackup.out" 2>&1 ||
		{ cat "$dir.basebackup.out" >&2; fail "pg_basebackup into $dir failed"; }
	cat >>"$dir/postgresql.conf" <<-EOF
		# walship test standby settings (override the primary's above)
		listen_addresses = '$(ns_addr "$ns")'
		port = $port
		unix_socket_directories = '$sock'
		archive_mode = off
		hot_standby = on
		primary_conninfo = ''
		restore_command = '${restore_command//\'/\'\'}'
		recovery_target_timeline = 'latest'
		wal_retrieve_retry_interval = 1s
	EOF
	as_postgres touch "$dir/standby.signal"
}

# assert_no_refusal_after_fork LOG: the streaming source whose log is LOG (walshipd's, or
# pgsource_run's) went on at the fork of timeline 2 ("going on at the fork on timeline 2"),
# and PostgreSQL refused none of its START_REPLICATIONs after that ("... is not in this
# server's history").  One before it is the promotion's, not the source's: a connection
# made while the standby was still in recovery (its IDENTIFY_SYSTEM said timeline 1) whose
# START_REPLICATION came after the promotion.  (Before the source went on at forks, every
# attempt was refused and timeline 2 never came.)
assert_no_refusal_after_fork() {
	local log=$1 after
	grep -q "going on at the fork on timeline 2" "$log" ||
		fail "the source did not go on at the fork on timeline 2 (see $log)"
	after=$(awk '/going on at the fork on timeline 2/ {on = 1}
		on && /not in this server.s history/ {n++} END {print n + 0}' "$log")
	((after == 0)) || fail "START_REPLICATION was refused after going on at the fork:" \
		"$(grep "not in this server's history" "$log" | tail -n 1)"
}

# pg_current_lsn NS PORT: the primary's current WAL write position (X/X).
pg_current_lsn() {
	psql_at "$1" "$2" "select pg_current_wal_lsn()"
}

# pg_inserted_lsn NS PORT: the primary's WAL insert position (X/X): where what it has
# committed ends.  With synchronous_commit = off the write and flush positions can lag it
# (the WAL writer catches up within wal_writer_delay), so a standby must reach this one to
# hold the last commit.
pg_inserted_lsn() {
	psql_at "$1" "$2" "select pg_current_wal_insert_lsn()"
}

# pg_replay_lsn NS PORT: the standby's last replayed position (X/X; empty if none yet).
pg_replay_lsn() {
	psql_at "$1" "$2" "select pg_last_wal_replay_lsn()"
}

# lsn_to_int X/Y: print the LSN as a decimal integer.
lsn_to_int() {
	local hi=${1%/*} lo=${1#*/}
	printf '%d\n' $(((16#$hi << 32) + 16#$lo))
}

# lsn_ge A B: true if LSN A >= LSN B (false if A is empty).
lsn_ge() {
	[[ -n "$1" ]] || return 1
	(($(lsn_to_int "$1") >= $(lsn_to_int "$2")))
}

# standby_reached NS PORT LSN: true if the standby at NS:PORT has replayed up to LSN.
standby_reached() {
	local replay
	replay=$(pg_replay_lsn "$1" "$2" 2>/dev/null) || return 1
	lsn_ge "$replay" "$3"
}

# pg_finish_load NS PORT: after a load on the primary, print the LSN the standby must reach
# to have every change made so far, and switch WAL segments so that it gets archived.
pg_finish_load() {
	local ns=$1 port=$2 lsn
	lsn=$(pg_current_lsn "$ns" "$port")
	psql_at "$ns" "$port" "select pg_switch_wal()" >/dev/null
	printf '%s\n' "$lsn"
}

# wait_standby_lsn NS PORT LSN TIMEOUT_S: wait (bounded) until the standby has replayed LSN;
# on timeout fails with the standby's position.
wait_standby_lsn() {
	local ns=$1 port=$2 lsn=$3 timeout=$4
	local deadline=$((SECONDS + timeout)) replay=""
	while :; do
		replay=$(pg_replay_lsn "$ns" "$port" 2>/dev/null) || replay=""
		lsn_ge "$replay" "$lsn" && return 0
		ws_check_daemons
		if ((SECONDS >= deadline)); then
			fail "standby replayed up to '${replay:-nothing}', not $lsn, after ${timeout}s"
		fi
		ws_sleep 0.2
	done
}

# pg_data_checksum NS PORT: print one line per user table ("schema.table rows md5") over
# every user table of database postgres, row order independent.  Works on a hot standby.
pg_data_checksum() {
	local ns=$1 port=$2 table
	local tables
	tables=$(psql_at "$ns" "$port" "select format('%I.%I', n.nspname, c.relname)
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
		and n.nspname not like 'pg_toast%' order by 1")
	for table in $tables; do
		printf '%s %s\n' "$table" "$(psql_at "$ns" "$port" "select count(*) || ' ' ||
			coalesce(md5(string_agg(h, '' order by h)), '-')
			from (select md5(t::text) as h from $table t) s")"
	done
}

# assert_same_data NS_A PORT_A NS_B PORT_B: fail unless both clusters hold the same rows
# in every user table; prints the checksums.
assert_same_data() {
	local a b
	a=$(pg_data_checksum "$1" "$2")
	b=$(pg_data_checksum "$3" "$4")
	[[ -n "$a" ]] || fail "no user tables on $1:$2 to compare"
	printf '%s\n' "$a" | sed 's/^/    /'
	if [[ "$a" != "$b" ]]; then
		diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") >&2
		fail "data differ between $1:$2 and $3:$4"
	fi
}

# pgbench_at NS PORT ARGS...: run pgbench as postgres in NS against NS's address and PORT.
pgbench_at() {
	local ns=$1 port=$2
	shift 2
	in_ns "$ns" "$PG_BIN/pgbench" -h "$(ns_addr "$ns")" -p "$port" -U postgres "$@" postgres
}

# load_start NS PORT RATE: a pgbench load in the background on the primary at NS:PORT, RATE
# transactions/s from 4 clients, until load_stop: rounds of 3 s, so that a test ends the
# load when its scenario is over instead of waiting out a length chosen for a slow
# machine.  Waits for the first progress line; progress goes to $TEST_DIR/load.out.
load_start() {
	rm -f "$TEST_DIR/load.stop"
	bg_start "$TEST_DIR/load.out" load_rounds "$@"
	LOAD_PID=$BG_PID
	wait_for 20 "pgbench to report progress" grep -q '^progress:' "$TEST_DIR/load.out"
}

# load_rounds NS PORT RATE: load_start's loop; ends with the first round that fails.
load_rounds() {
	while [[ ! -e "$TEST_DIR/load.stop" ]]; do
		pgbench_at "$1" "$2" -n -c 4 -j 2 -T 3 -P 1 -R "$3" || return
	done
}

# load_stop: end load_start's load once its round is over; fails if a round failed.
load_stop() {
	local rc=0
	touch "$TEST_DIR/load.stop"
	wait "$LOAD_PID" || rc=$?
	((rc == 0)) || { tail -n 20 "$TEST_DIR/load.out"; fail "pgbench exited $rc"; }
}

# pg_system_identifier DIR: print the database system identifier of the cluster at DIR.
pg_system_identifier() {
	"$PG_BIN/pg_controldata" "$1" | awk -F': *' '/^Database system identifier/ {print $2}'
}

# ---------------------------------------------------------------------------------------
# walship configuration and daemons

# ws_write_conf FILE KEY=VALUE...: write a walshipd config file, one `key = value` per
# argument, in order; a later KEY replaces an earlier one (walshipd refuses duplicates).
ws_write_conf() {
	local file=$1 kv key
	shift
	local -a keys=()
	local -A values=()
	for kv in "$@"; do
		key=${kv%%=*}
		[[ -v "values[$key]" ]] || keys+=("$key")
		values[$key]=${kv#*=}
	done
	{
		echo "# written by test/system/lib.sh for $WS_TEST_NAME"
		for key in "${keys[@]}"; do
			printf '%s = %s\n' "$key" "${values[$key]}"
		done
	} >"$file"
	chmod 0644 "$file"
}

# write_primary_conf FILE NODE_DIR NS [KEY=VALUE...]: config for a primary walshipd in NS
# named after NODE_DIR's basename: listen on NS's address, spool in NODE_DIR/spool,
# control socket NODE_DIR/walshipd.sock usable by group postgres.  Extra KEY=VALUE
# arguments override the defaults.  The BPF probes are off unless a test asks for them
# (probes=on or auto): loading them costs about half a second of CPU per daemon start,
# and only the tests that look at them need them.
write_primary_conf() {
	local file=$1 nodedir=$2 ns=$3
	shift 3
	mkdir -p "$nodedir/spool"
	chmod 0755 "$nodedir"
	ws_write_conf "$file" \
		role=primary \
		"node_name=$(basename "$nodedir")" \
		"listen=$(ns_addr "$ns"):$WALSHIP_PORT" \
		"spool_dir=$nodedir/spool" \
		"socket=$nodedir/walshipd.sock" \
		socket_group=postgres \
		socket_permissions=0660 \
		sync_replicas=1 \
		push_timeout=20s \
		connect_timeout=5s \
		tls=off \
		probes=off \
		"$@"
}

# write_replica_conf FILE NODE_DIR UPSTREAM_NS [KEY=VALUE...]: config for a replica walshipd
# named after NODE_DIR's basename, pulling from the primary walshipd in UPSTREAM_NS, storing
# WAL in NODE_DIR/archive (group postgres, mode 2750 so restore_command can read it),
# control socket NODE_DIR/walshipd.sock.  Extra KEY=VALUE arguments override the defaults
# (probes off, as for the primary).
write_replica_conf() {
	local file=$1 nodedir=$2 upns=$3
	shift 3
	mkdir -p "$nodedir/archive"
	chmod 0755 "$nodedir"
	chgrp postgres "$nodedir/archive"
	chmod 2750 "$nodedir/archive"
	ws_write_conf "$file" \
		role=replica \
		"node_name=$(basename "$nodedir")" \
		"upstream=$(ns_addr "$upns"):$WALSHIP_PORT" \
		"archive_dir=$nodedir/archive" \
		"socket=$nodedir/walshipd.sock" \
		socket_group=postgres \
		socket_permissions=0660 \
		connect_timeout=5s \
		reconnect_min=100ms \
		reconnect_max=1s \
		tls=off \
		probes=off \
		"$@"
}

# conf_get FILE KEY: print KEY's value from a config file written above.
conf_get() {
	local line
	while IFS= read -r line; do
		[[ "$line" == "$2 "*=* || "$line" == "$2="* ]] || continue
		line=${line#"$2"}
		line=${line#"${line%%[! ]*}"}
		line=${line#=}
		printf '%s\n' "${line#"${line%%[! ]*}"}"
	done <"$1"
}

# walshipd_start NS CONF LOGFILE: start walshipd -c CONF inside NS in the background (log
# to LOGFILE, appended; through WS_DAEMON_WRAP if set), record its pid in WALSHIPD_PID,
# and wait (30 s at most: loading the BPF probes takes seconds on a loaded machine) until
# its control socket answers.  Fails with the log's tail if it exits or never gets ready.
walshipd_start() {
	local ns=$1 conf=$2 logfile=$3
	local sock pid
	sock=$(conf_get "$conf" socket)
	"${WS_DAEMON_WRAP[@]}" ip netns exec "$ns" "$WALSHIPD" -c "$conf" >>"$logfile" 2>&1 &
	pid=$!
	WS_DAEMON_PID[$conf]=$pid
	# shellcheck disable=SC2034  # for the test that sourced us
	WALSHIPD_PID=$pid
	local deadline=$((SECONDS + 30))
	# Ready when its socket answers: a daemon that was killed leaves its socket behind,
	# which refuses connections until the new daemon replaces it.
	while ! walship_answers "$conf"; do
		if ! pid_alive "$pid"; then
			local rc=0
			wait "$pid" || rc=$?
			tail -n 30 "$logfile" >&2
			unset "WS_DAEMON_PID[$conf]"
			fail "walshipd -c $conf exited with status $rc before it was ready"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 30 "$logfile" >&2
			fail "walshipd -c $conf did not answer on its socket $sock within 30s"
		fi
		ws_sleep 0.1
	done
	log "walshipd $(conf_get "$conf" node_name) started in $ns (pid $pid)"
}

# walshipd_stop CONF: SIGTERM the walshipd started with CONF, wait 10 s at most, then
# SIGKILL it and fail (it must stop cleanly on SIGTERM).
walshipd_stop() {
	local conf=$1 pid
	pid=${WS_DAEMON_PID[$conf]:-}
	[[ -n "$pid" ]] || fail "walshipd_stop: no walshipd started with $conf"
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 10))
	while pid_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			unset "WS_DAEMON_PID[$conf]"
			fail "walshipd (pid $pid, $conf) did not stop within 10s of SIGTERM; killed"
		fi
		ws_sleep 0.1
	done
	local rc=0
	wait "$pid" 2>/dev/null || rc=$?
	unset "WS_DAEMON_PID[$conf]"
	# A stop on SIGTERM exits 0: anything else is a crash, or a fatal error it logged.
	((rc == 0)) || fail "walshipd (pid $pid, $conf) exited with status $rc, not 0, on SIGTERM"
}

# walship_answers CONF: true if the walshipd with config CONF answers `walship status`
# (exit 0, or 3: it answered and reports lost segments).
walship_answers() {
	local rc=0
	"$WALSHIP" status -c "$1" >/dev/null 2>&1 || rc=$?
	((rc == 0 || rc == 3))
}

# walshipd_kill CONF: SIGKILL the walshipd started with CONF (crash simulation) and reap it.
walshipd_kill() {
	local conf=$1 pid
	pid=${WS_DAEMON_PID[$conf]:-}
	[[ -n "$pid" ]] || fail "walshipd_kill: no walshipd started with $conf"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "WS_DAEMON_PID[$conf]"
}

# kill_mid_file KILL_FN NS CONF LOGFILE WHAT: aim a SIGKILL at a walshipd in the middle of a
# file.  The primary's link to the first replica (vr1) is slowed to 40 Mbit/s meanwhile, so
# that a 16 MiB segment takes about 3.4 s to cross and the kill lands mid-file whatever the
# machine's load.  KILL_FN kills the daemon and is true when the kill landed mid-file; on
# a miss the daemon (walshipd -c CONF in NS, logging to LOGFILE) is started again and
# KILL_FN tried again, 5 times at most.  WHAT names the daemon in the failure.
kill_mid_file() {
	local fn=$1 ns=$2 conf=$3 logfile=$4 what=$5 attempt
	in_ns "$NS_P" tc qdisc add dev vr1 root tbf rate 40mbit burst 64kb latency 400ms
	for attempt in 1 2 3 4 5; do
		if "$fn"; then
			in_ns "$NS_P" tc qdisc del dev vr1 root
			return 0
		fi
		log "attempt $attempt: the file was complete before the kill landed; restarting"
		walshipd_start "$ns" "$conf" "$logfile"
		wait_replica_streaming "$PCONF" 20
	done
	fail "could not kill $what in the middle of a file in 5 attempts"
}

# walship_status CONF [--json]: `walship status -c CONF` (in the daemon's own host; the
# socket is a path, so any namespace works).
walship_status() {
	local conf=$1
	shift
	"$WALSHIP" status -c "$conf" "$@"
}

# walship_push_as_postgres CONF PATH: `walship push -c CONF PATH` as user postgres, like
# archive_command does.
walship_push_as_postgres() {
	as_postgres "$WALSHIP" push -c "$1" "$2"
}

# walship_fetch_as_postgres CONF NAME DEST: `walship fetch -c CONF NAME DEST` as user
# postgres, like restore_command does.
walship_fetch_as_postgres() {
	as_postgres "$WALSHIP" fetch -c "$1" "$2" "$3"
}

# peers_streaming PCONF: true if the primary walshipd with config PCONF reports at least one
# peer in state "streaming" (its text status's "  peer NAME (ADDR): STATE" lines, matched
# by the shell: wait_replica_streaming polls this, and a jq costs 50 ms of CPU here).
peers_streaming() {
	local status nl=$'\n'
	status=$(walship_status "$1") || return 1
	[[ "$status" =~ $nl"  peer "[^$nl]*": streaming"($nl|$) ]]
}

# tcp_user_timeouts PID PORT: the TCP_USER_TIMEOUT in ms, one line each, of the connected
# TCP sockets of process PID with PORT at either end, read from copies of its descriptors
# (pidfd_getfd(2): no tool shows the option).
tcp_user_timeouts() {
	python3 - "$1" "$2" <<-'PY'
		import ctypes, os, socket, sys
		pid, port = int(sys.argv[1]), int(sys.argv[2])
		libc = ctypes.CDLL(None, use_errno=True)
		pidfd = os.pidfd_open(pid)
		for name in os.listdir("/proc/%d/fd" % pid):
		    try:
		        if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
		            continue
		    except OSError:
		        continue  # closed meanwhile
		    fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
		    if fd < 0:
		        continue
		    with socket.socket(fileno=fd) as s:
		        if s.family not in (socket.AF_INET, socket.AF_INET6) or s.type != socket.SOCK_STREAM:
		            continue
		        try:
		            ends = (s.getsockname()[1], s.getpeername()[1])
		        except OSError:
		            continue  # not connected: a listener
		        if port in ends:
		            print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
	PY
}

# wait_replica_streaming PCONF [TIMEOUT_S]: wait (default 20 s at most) until
# peers_streaming PCONF holds.
wait_replica_streaming() {
	local conf=$1 timeout=${2:-20}
	wait_for "$timeout" "a replica streaming from $(conf_get "$conf" node_name)" \
		peers_streaming "$conf"
}

# status_counter CONF FIELD: print a node-level counter (e.g. conflicts) from
# `walship status --json` of the daemon with config CONF; fails if it cannot be read.
# Assign it (x=$(status_counter ...)) so that such a failure stops the test.
status_counter() {
	local value
	value=$(walship_status "$1" --json | jq -er ".$2") ||
		fail "could not read $2 from walship status -c $1 --json"
	[[ "$value" =~ ^[0-9]+$ ]] || fail "$2 in walship status -c $1 --json is '$value'"
	printf '%s\n' "$value"
}

# status_counter_sum FIELD CONF...: the sum of counter FIELD over the daemons with the
# given configs (see status_counter).
status_counter_sum() {
	local field=$1 conf value sum=0
	shift
	for conf in "$@"; do
		value=$(status_counter "$conf" "$field")
		sum=$((sum + value))
	done
	printf '%s\n' "$sum"
}

# replica_for_fake_primary: a replica walshipd for a test that plays its primary with
# build/helpers/fake_peer (FAKE; skips when it is not built): net_create 1, then the
# replica (RCONF, node ws-r1, archive $TEST_DIR/ws-r1/archive, log $TEST_DIR/ws-r1.log)
# started in NS_R1, its primary at NS_P's address, where the fake one listens.
replica_for_fake_primary() {
	FAKE=$WS_ROOT/build/helpers/fake_peer
	[[ -x "$FAKE" ]] || skip "$FAKE not built: run make"
	require_walship
	net_create 1
	RCONF=$TEST_DIR/ws-r1/walship.conf
	mkdir -p "$TEST_DIR/ws-r1"
	write_replica_conf "$RCONF" "$TEST_DIR/ws-r1" "$NS_P"
	walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
}

# pgsource_primary_setup: for a test of the replication-protocol source alone, run as
# build/helpers/pgsource_run (RUN; skips when it is not built): net_create 1, PG_PORT,
# PDATA (a primary's data directory, not made yet), RX (the directory it receives into,
# made) and STATUS (its status file).
pgsource_primary_setup() {
	RUN=$WS_ROOT/build/helpers/pgsource_run
	[[ -x "$RUN" ]] || skip "$RUN is not built (make helpers)"
	net_create 1
	PG_PORT=5432
	PDATA=$TEST_DIR/pg-primary
	RX=$TEST_DIR/received
	STATUS=$TEST_DIR/pgsource.status
	mkdir -p "$RX"
}

# pgsource_field N: field N of pgsource_run's status file STATUS (state received flushed
# timeline connects disconnects bytes paused); false while it has none.
pgsource_field() {
	[[ -s "$STATUS" ]] || return 1
	awk -v n="$1" '{print $n}' "$STATUS"
}

# pgsource_streaming: true while pgsource_run says it streams.
pgsource_streaming() { [[ "$(pgsource_field 1)" == streaming ]]; }

# walship_daemons_up: hosts NS_P (primary) and NS_R1 (replica) on one bridge; walshipd
# primary (config PCONF, node ws-primary) in NS_P and walshipd replica (RCONF, node ws-r1,
# archive RARCHIVE) in NS_R1, waiting until the replica streams.  Also SCRATCH, a directory
# postgres can read and write, for files handed to `walship push` / `walship fetch` by hand.
# Extra config keys come from the arrays PRIMARY_CONF_EXTRA and REPLICA_CONF_EXTRA
# (KEY=VALUE), when a test sets them after sourcing this file.
# ws_one_replica_up [HOSTS]: what every one-primary one-replica topology starts with: jq,
# the network (net_create HOSTS, default 1: replica hosts NS_R1 ..), PG_PORT, the config
# files PCONF and RCONF with their node directories, RARCHIVE and PDATA.
ws_one_replica_up() {
	require_walship
	require_cmds jq
	net_create "${1:-1}"
	PG_PORT=5432
	PCONF=$TEST_DIR/ws-primary/walship.conf
	RCONF=$TEST_DIR/ws-r1/walship.conf
	# shellcheck disable=SC2034  # for the test that sourced us
	RARCHIVE=$TEST_DIR/ws-r1/archive
	PDATA=$TEST_DIR/pg-primary
	mkdir -p "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1"
}

# ws_two_replicas_up: a primary walshipd (sync_replicas = 1) in NS_P and two replicas,
# ws-r1 in NS_R1 and ws-r2 in NS_R2, written (PCONF, R1CONF, R2CONF; RCONF is R1CONF,
# RARCHIVE and R2ARCHIVE their archives), started, and both streaming.  Arguments are
# more key=value settings of ws-r2.
ws_two_replicas_up() {
	require_walship
	require_cmds jq
	net_create 2
	# shellcheck disable=SC2034  # for the test that sourced us
	PG_PORT=5432
	# shellcheck disable=SC2034
	PDATA=$TEST_DIR/pg-primary
	PCONF=$TEST_DIR/ws-primary/walship.conf
	R1CONF=$TEST_DIR/ws-r1/walship.conf
	R2CONF=$TEST_DIR/ws-r2/walship.conf
	RCONF=$R1CONF
	# shellcheck disable=SC2034
	RARCHIVE=$TEST_DIR/ws-r1/archive
	# shellcheck disable=SC2034
	R2ARCHIVE=$TEST_DIR/ws-r2/archive
	mkdir -p "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1" "$TEST_DIR/ws-r2"
	write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" sync_replicas=1
	write_replica_conf "$R1CONF" "$TEST_DIR/ws-r1" "$NS_P"
	write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P" "$@"
	walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
	walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
	walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
	wait_for 20 "both replicas streaming" peers_streaming_are "$PCONF" 2
}

# peers_streaming_are PCONF N: true when exactly N peers of the walshipd with config PCONF
# are streaming.
peers_streaming_are() {
	test "$(walship_status "$1" --json |
		jq '[.peers[] | select(.state == "streaming")] | length')" = "$2"
}

# pg_standby_on_appliance SDATA PORT APP: a PostgreSQL standby in NS_R1 at SDATA (PORT),
# from a base backup of the primary, streaming from the replica's pg_listen
# (PG_LISTEN_PORT) as application APP, and started.
pg_standby_on_appliance() {
	local sdata=$1 port=$2 app=$3
	pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$sdata" "$NS_R1" "$port" ""
	printf '%s\n' \
		"primary_conninfo = 'host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres application_name=$app'" \
		"wal_receiver_status_interval = 1s" >>"$sdata/postgresql.conf"
	pg_start "$sdata" "$NS_R1"
}

walship_daemons_up() {
	ws_one_replica_up
	SDATA=$TEST_DIR/pg-standby
	SCRATCH=$TEST_DIR/scratch
	mkdir -p "$SCRATCH"
	chown postgres:postgres "$SCRATCH"
	write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" "${PRIMARY_CONF_EXTRA[@]}"
	write_replica_conf "$RCONF" "$TEST_DIR/ws-r1" "$NS_P" "${REPLICA_CONF_EXTRA[@]}"

	log "starting walshipd primary ($NS_P) and replica ($NS_R1)"
	walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
	walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
	wait_replica_streaming "$PCONF" 20
}

# walship_primary_up [SCALE]: after walship_daemons_up, a PostgreSQL primary (PDATA, port
# PG_PORT) in NS_P with archive_command = 'exec walship push -c PCONF %p', initialised by
# pgbench -i -s SCALE (default 1).
walship_primary_up() {
	local scale=${1:-1}
	log "PostgreSQL primary in $NS_P: archive_command = walship push"
	pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "exec $WALSHIP push -c $PCONF %p"
	pg_start "$PDATA" "$NS_P"
	log "pgbench -i -s $scale"
	pgbench_at "$NS_P" "$PG_PORT" -i -s "$scale" -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
		{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
}

# walship_standby_up: after walship_primary_up, a standby (SDATA, port PG_PORT) in NS_R1 from
# pg_basebackup, fed only by restore_command = 'walship fetch -c RCONF %f %p', started.
walship_standby_up() {
	log "standby in $NS_R1 from pg_basebackup: restore_command = walship fetch"
	pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$PG_PORT" \
		"$WALSHIP fetch -c $RCONF %f %p"
	pg_start "$SDATA" "$NS_R1"
	assert_eq t "$(psql_at "$NS_R1" "$PG_PORT" 'select pg_is_in_recovery()')" \
		"standby in recovery"
}

# walship_topology_up [SCALE]: the setup of the demo and of most walship tests:
# walship_daemons_up, walship_primary_up SCALE, walship_standby_up.
walship_topology_up() {
	walship_daemons_up
	walship_primary_up "${1:-1}"
	walship_standby_up
}

# ws_pg_listen_trust PORT: the replica (ws-r1) serves standbys on pg_listen = PORT, all
# interfaces, with access rules admitting role standby as postgres from the test networks
# without TLS (trust): HBA is their file; pg_listen and hba_file are added to
# REPLICA_CONF_EXTRA, for walship_stream_up or walship_daemons_up to use.
ws_pg_listen_trust() {
	mkdir -p "$TEST_DIR/ws-r1"
	HBA=$TEST_DIR/ws-r1/hba.conf
	echo "hostnossl standby postgres all 10.77.0.0/16" >"$HBA"
	chmod 0644 "$HBA"
	REPLICA_CONF_EXTRA+=("pg_listen=0.0.0.0:$1" "hba_file=$HBA")
}

# walship_stream_up [SYNCHRONOUS_COMMIT]: the streaming topology (docs/operations.md,
# "Streaming"): net_create 1; a PostgreSQL primary (PDATA, port PG_PORT) in NS_P that
# archives through `walship push` too (both sources); the primary walshipd (PCONF) streaming
# from it (pg_conninfo, slot "walship") and named in its synchronous_standby_names, with
# synchronous_commit SYNCHRONOUS_COMMIT (default on); a replica walshipd (RCONF, archive
# RARCHIVE) in NS_R1.  Waits until PostgreSQL lists walship as a synchronous standby (unless
# SYNCHRONOUS_COMMIT is off).  PRIMARY_CONF_EXTRA and REPLICA_CONF_EXTRA apply;
# STREAM_ARCHIVE_COMMAND, when set, is PostgreSQL's archive_command instead (/bin/true: the
# stream is the only source).  With STREAM_REPLICA2 set, a second replica walshipd too
# (R2CONF, node ws-r2, in NS_R2), with REPLICA2_CONF_EXTRA.
walship_stream_up() {
	local sync=${1:-on}
	ws_one_replica_up "${STREAM_REPLICA2:+2}"
	write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" \
		"pg_conninfo='host=$(ns_addr "$NS_P") port=$PG_PORT user=postgres'" \
		"${PRIMARY_CONF_EXTRA[@]}"
	write_replica_conf "$RCONF" "$TEST_DIR/ws-r1" "$NS_P" "${REPLICA_CONF_EXTRA[@]}"
	if [[ -n "${STREAM_REPLICA2:-}" ]]; then
		R2CONF=$TEST_DIR/ws-r2/walship.conf
		mkdir -p "$TEST_DIR/ws-r2"
		# shellcheck disable=SC2153  # set by the test
		write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P" "${REPLICA2_CONF_EXTRA[@]}"
	fi
	log "PostgreSQL primary in $NS_P: walship its synchronous standby (synchronous_commit = $sync)"
	pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" \
		"${STREAM_ARCHIVE_COMMAND:-exec $WALSHIP push -c $PCONF %p}"
	cat >>"$PDATA/postgresql.conf" <<-EOF
		synchronous_standby_names = '"$(conf_get "$PCONF" node_name)"'
		synchronous_commit = $sync
	EOF
	pg_start "$PDATA" "$NS_P"
	walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
	walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
	[[ -z "${STREAM_REPLICA2:-}" ]] || walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
	wait_replica_streaming "$PCONF" 20
	[[ "$sync" == off ]] ||
		wait_for 30 "walship listed as a synchronous standby" pg_sync_standby "$NS_P" \
			"$PG_PORT" "$(conf_get "$PCONF" node_name)"
}

# relay_stream_up: walship_stream_up off with the replica ws-r1 (RCONF) a relay (listen
# set), and ws-b (BCONF, archive BARCHIVE), a replica of it, on ws-r1's host (NS_R1, its
# own directory and ports), B_CONF_EXTRA added to its configuration; returns once ws-b
# streams from ws-r1 (b_streaming_on_a).
relay_stream_up() {
	REPLICA_CONF_EXTRA+=("listen=0.0.0.0:$WALSHIP_PORT")
	walship_stream_up off
	BCONF=$TEST_DIR/ws-b/walship.conf
	# shellcheck disable=SC2034  # for the test that sourced us
	BARCHIVE=$TEST_DIR/ws-b/archive
	mkdir -p "$TEST_DIR/ws-b"
	write_replica_conf "$BCONF" "$TEST_DIR/ws-b" "$NS_R1" "${B_CONF_EXTRA[@]}"
	walshipd_start "$NS_R1" "$BCONF" "$TEST_DIR/ws-b.log"
	wait_for 20 "ws-b streaming from the relay ws-r1" b_streaming_on_a
}

# b_streaming_on_a: ws-b streams from the relay ws-r1 (relay_stream_up).
# cascade_standby_stopped APP: a standby S of the primary (SDATA, port S_PORT, in NS_P,
# asynchronous, application_name APP) replays a table's creation and 1000 rows, then is
# stopped; sets STOPPED_LSN (what it replayed at least) and STOPPED_SEG (its segment, N).
cascade_standby_stopped() {
	pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_P" "$S_PORT" false
	cat >>"$SDATA/postgresql.conf" <<-EOF
		primary_conninfo = 'host=$(ns_addr "$NS_P") port=$PG_PORT user=postgres application_name=$1'
		synchronous_standby_names = ''
	EOF
	pg_start "$SDATA" "$NS_P"
	psql_at "$NS_P" "$PG_PORT" "create table t (i int); insert into t select generate_series(1, 1000)"
	STOPPED_LSN=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
	STOPPED_SEG=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$STOPPED_LSN')")
	wait_for 30 "S to replay up to $STOPPED_LSN" cascade_standby_at "$STOPPED_LSN"
	pg_stop "$SDATA"
}
cascade_standby_at() {
	lsn_ge "$(psql_at "$NS_P" "$S_PORT" "select pg_last_wal_replay_lsn()")" "$1"
}

# cascade_promote: the failover of cascade_standby_stopped's S (P gone already): S
# promoted, the primary walshipd started on it; sets SWITCH (where timeline 1 ends) and
# fails unless timeline 2 forks inside STOPPED_SEG.
cascade_promote() {
	local fork_seg
	echo "primary_conninfo = ''" >>"$SDATA/postgresql.conf"
	pg_start "$SDATA" "$NS_P"
	in_ns "$NS_P" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null
	write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" \
		"pg_conninfo='host=$(pg_socket_dir "$SDATA") port=$S_PORT user=postgres'"
	walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
	SWITCH=$(awk -F'\t' '$1 == 1 {print $2}' "$SDATA/pg_wal/00000002.history")
	fork_seg=$(psql_at "$NS_P" "$S_PORT" "select pg_walfile_name('$SWITCH')")
	[[ "${fork_seg:8}" == "${STOPPED_SEG:8}" ]] ||
		fail "timeline 2 forks at $SWITCH, in $fork_seg, not in $STOPPED_SEG"
}

b_streaming_on_a() {
	walship_status "$RCONF" --json |
		jq -e '.peers[] | select(.name == "ws-b" and .state == "streaming")' >/dev/null
}

# ext4_image_mount IMG DIR: mount the ext4 image IMG at DIR (a loop device), its journal's
# periodic commit set to 300 s, so that within a test the journal commits only when
# something on that file system is fsynced (or sync(2) runs): shutting it down without
# flushing its log (power_cut) then loses, as a power cut would, every change to names,
# sizes and allocations since the last such commit, and file data written buffered and
# not yet written back.  It does not lose data that reached the loop device (written
# back, or written with O_DIRECT: no volatile cache below it), and a commit for one
# file's fsync carries every change before it, so what it can catch is the last fsync
# missing before an answer.  (Checked on 6.18, 2026-12-07: a file written and renamed
# without fsync came back empty, one fsynced and renamed without its directory's fsync
# came back under its temporary name, one with both whole.)
ext4_image_mount() {
	mount -o loop,commit=300 "$1" "$2"
}

# power_cut DIR: shut the file system mounted at DIR down as a power cut would leave it
# (FS_IOC_SHUTDOWN, without flushing its log: every operation fails with EIO from then
# on; with ext4_image_mount, what the journal did not commit is lost).  Skips the test
# where the kernel cannot.
power_cut() {
	"$WS_ROOT/build/helpers/fs_shutdown" "$1" ||
		skip "this kernel cannot shut down an ext4 file system (FS_IOC_SHUTDOWN)"
}

# ext4_image_remount IMG DIR: after power_cut, the image's content mounted again at DIR as
# a new device (the dead file system lives on in the mount namespaces of processes started
# before, and mounting its image again would find it, still dead): IMG copied to
# IMG.after, its journal replayed at the mount, as at a boot.
ext4_image_remount() {
	umount "$2"
	cp --sparse=always "$1" "$1.after"
	ext4_image_mount "$1.after" "$2"
}

# archive_on_ext4_image: the replica's archive on a 256 MiB ext4 image, loop-mounted at MNT
# (outside the test directory: the EXIT trap set here unmounts it, which frees the loop
# device, after ws_cleanup has stopped the daemons, then removes the mount point):
# $MNT/archive, group postgres, mode 2750, the replica's archive_dir in REPLICA_CONF_EXTRA
# (set RARCHIVE to it once the topology is up).  Skips the test where no image can be made
# or mounted.
archive_on_ext4_image() {
	require_cmds mkfs.ext4 losetup mount umount fallocate
	MNT=$(mktemp -d /tmp/walship-fs.XXXXXX)
	chmod 0755 "$MNT"
	trap 'ws_cleanup; rc=$?; umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		rmdir "$MNT"; exit "$rc"' EXIT
	truncate -s 256M "$TEST_DIR/archive.img"
	mkfs.ext4 -q -m 0 "$TEST_DIR/archive.img" ||
		skip "mkfs.ext4 cannot make a file system image here"
	ext4_image_mount "$TEST_DIR/archive.img" "$MNT" ||
		skip "cannot loop-mount an ext4 image (no loop device?)"
	rmdir "$MNT/lost+found"
	mkdir "$MNT/archive"
	chgrp postgres "$MNT/archive"
	chmod 2750 "$MNT/archive"
	REPLICA_CONF_EXTRA+=("archive_dir=$MNT/archive")
	log "archive_dir on a 256 MiB ext4 image mounted at $MNT"
}

# archive_on_ramfs_no_direct: the replica's archive on a ramfs mounted at MNT, which takes
# no O_DIRECT, so that streamed segments are written buffered (outside the test directory:
# the EXIT trap set here unmounts it after ws_cleanup has stopped the daemons):
# $MNT/archive, group postgres, mode 2750, the replica's archive_dir in REPLICA_CONF_EXTRA
# (set RARCHIVE to it once the topology is up).  Skips where no ramfs can be mounted, or
# where it takes O_DIRECT.
archive_on_ramfs_no_direct() {
	require_cmds mount umount
	MNT=$(mktemp -d /tmp/walship-ramfs.XXXXXX)
	trap 'ws_cleanup; rc=$?; umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		rmdir "$MNT"; exit "$rc"' EXIT
	mount -t ramfs -o mode=0755 walship-ramfs "$MNT" || skip "cannot mount a ramfs here"
	if dd if=/dev/zero of="$MNT/probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
		skip "this kernel's ramfs takes O_DIRECT: no file system without it at hand"
	fi
	rm -f "$MNT/probe"
	mkdir "$MNT/archive"
	chgrp postgres "$MNT/archive"
	chmod 2750 "$MNT/archive"
	REPLICA_CONF_EXTRA+=("archive_dir=$MNT/archive")
	log "archive_dir on a ramfs at $MNT (no O_DIRECT)"
}

# fs_fill_but MIB: a file, $MNT/filler, takes all the free space of the file system at MNT
# but MIB MiB (archive_on_ext4_image; rm it to free the space again).
# fill_until_io_errors CONF NAME MAX: synchronous commits of about 5 MB of WAL each into
# ws_fill (which must exist), each of which must return (another replica makes it
# durable), until the replica of CONF (NAME in messages), on a full file system, counts
# an I/O error, and seven more (segments that complete while it fails); at most MAX. Then
# it must have counted one, and its last_error name ENOSPC.
fill_until_io_errors() {
	local conf=$1 name=$2 max=$3 more=7 i
	WS_PSQL_TIMEOUT=60
	for ((i = 0; i < max && more > 0; i++)); do
		psql_at "$NS_P" "$PG_PORT" "insert into ws_fill
			select g, repeat('x', 200) from generate_series(1, 20000) g" ||
			fail "a synchronous commit did not return with ws-r1 streaming"
		(($(status_counter "$conf" io_errors) == 0)) || more=$((more - 1))
	done
	unset WS_PSQL_TIMEOUT
	(($(status_counter "$conf" io_errors) > 0)) || fail "$name counted no I/O error"
	[[ "$(walship_status "$conf" --json | jq -r .last_error)" == *"No space left on device"* ]] ||
		fail "$name's last_error does not name ENOSPC"
}
fs_fill_but() {
	local avail
	avail=$(($(stat -f -c '%a * %S' "$MNT")))
	fallocate -l $((avail - $1 * 1024 * 1024)) "$MNT/filler"
	log "file system full: $(($(stat -f -c '%a * %S' "$MNT") / 1024)) KiB left"
}

# rows_client_start ROWS [SWITCH_EVERY]: the RPO client, in the background (CLIENT: its
# pid): one psql session on the primary (NS_P, PG_PORT) inserts rows 1..ROWS into table t
# (i int primary key, pad text: 1500 bytes each), one commit each, and prints "committed N"
# to $TEST_DIR/client.out once the commit of row N returned; with SWITCH_EVERY, a segment
# switch after every SWITCH_EVERY rows.
rows_client_start() {
	local rows=$1 every=${2:-0} i
	for ((i = 1; i <= rows; i++)); do
		echo "insert into t values ($i, repeat('x', 1500));"
		printf '%s\n' "\\echo committed $i"
		((every && i % every == 0)) && echo "select pg_switch_wal();"
	done >"$TEST_DIR/load.sql"
	chmod 0644 "$TEST_DIR/load.sql"
	bg_start "$TEST_DIR/client.out" in_ns "$NS_P" "$PG_BIN/psql" -X -q -A -t \
		"host=$(ns_addr "$NS_P") port=$PG_PORT user=postgres dbname=postgres" \
		-f "$TEST_DIR/load.sql"
	# shellcheck disable=SC2034  # read by the tests
	CLIENT=$BG_PID
}

# committed: the highest row whose commit returned to rows_client_start's client (0 if none).
committed() {
	local n
	n=$(grep -o '^committed [0-9]*' "$TEST_DIR/client.out" | tail -n 1 | cut -d' ' -f2)
	printf '%s\n' "${n:-0}"
}

# committed_at_least N: true once the commit of row N returned.
committed_at_least() {
	(($(committed) >= $1))
}

# sync_waiters: true while a backend of the primary (NS_P, PG_PORT) waits for its
# synchronous standby (wait event SyncRep).
sync_waiters() {
	(($(psql_at "$NS_P" "$PG_PORT" "select count(*) from pg_stat_activity
		where wait_event = 'SyncRep'") >= 1))
}

# stream_up_holding TABLE: walship_stream_up (synchronous) with archive_command archiving
# nowhere (the stream is the only way WAL reaches the replica) and wal_keep_size 512MB;
# TABLE (i int, pad text) made and filled, and the replica holding the WAL up to HELD.
# RARCHIVE: the replica's archive.
stream_up_holding() {
	local table=$1
	STREAM_ARCHIVE_COMMAND="true"
	walship_stream_up on
	psql_at "$NS_P" "$PG_PORT" "alter system set wal_keep_size = '512MB'"
	psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
	psql_at "$NS_P" "$PG_PORT" "create table $table (i int, pad text)"
	psql_at "$NS_P" "$PG_PORT" \
		"insert into $table select g, repeat('x', 100) from generate_series(1, 2000) g"
	HELD=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
	wait_for 60 "the replica to hold up to $HELD" replica_holds "$(lsn_to_int "$HELD")"
	RARCHIVE=$TEST_DIR/ws-r1/archive
}

# waiting_commit_returns_with_s: the COMMIT of slot_made_anew_under_waiting_commit returns,
# and the replica stores S, equal to pg_wal's.
waiting_commit_returns_with_s() {
	returned() { ! pid_alive "$COMMIT_PID"; }
	wait_for 60 "the waiting COMMIT to return" returned
	grep -q '^returned$' "$TEST_DIR/commit.out" ||
		fail "the COMMIT failed: $(cat "$TEST_DIR/commit.out")"
	# (the COMMIT returns once its bytes are durable there; the segment's rename follows)
	wait_for 30 "the replica to store $S, which the returned COMMIT's WAL (up to $WAITED) is in" \
		test -f "$RARCHIVE/$S"
	assert_file_identical "$PDATA/pg_wal/$S" "$RARCHIVE/$S"
}

# stream_record_line SYSID TIMELINE LSN: print the line of spool_dir/reported that says
# so ("SYSID TIMELINE X/X CRC": the CRC-32C of the text before it, 8 hex digits).
stream_record_line() {
	python3 - "$1 $2 $3" <<-'PY'
		import sys
		text = sys.argv[1].encode()
		crc = 0xFFFFFFFF
		for b in text:
		    crc ^= b
		    for _ in range(8):
		        crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
		print("%s %08X" % (sys.argv[1], crc ^ 0xFFFFFFFF))
	PY
}

# slot_made_anew_under_waiting_commit TABLE: the primary walshipd is stopped.  Drops
# walship's slot; starts a synchronous COMMIT into TABLE (i int, pad text) that waits (no
# synchronous standby is connected): COMMIT_PID, its output in $TEST_DIR/commit.out
# ("returned" once it returned), its WAL flushed up to WAITED, in segment S; moves WAL on
# two segments and checkpoints, so that the redo point is after S; makes the slot again
# (RESERVE_WAL: at that redo point, SLOT_AT, checked to be after S).  That is a slot made
# anew while a commit waits for walship on WAL before it (t_98w, t_98x).
slot_made_anew_under_waiting_commit() {
	local table=$1
	slot_gone() {
		psql_at "$NS_P" "$PG_PORT" "select pg_drop_replication_slot('walship')" \
			>/dev/null 2>&1 || true
		[[ "$(psql_at "$NS_P" "$PG_PORT" "select count(*) from pg_replication_slots")" == 0 ]]
	}
	wait_for 20 "walship's slot dropped" slot_gone
	commit_waiting() {
		WS_PSQL_TIMEOUT=600 psql_at "$NS_P" "$PG_PORT" \
			"insert into $table values (-1, 'waited')" && echo returned
	}
	bg_start "$TEST_DIR/commit.out" commit_waiting
	COMMIT_PID=$BG_PID
	wait_for 30 "the COMMIT to wait for walship" sync_waiters
	WAITED=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
	S=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$WAITED')")
	for _ in 1 2; do
		psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
			insert into $table select g, repeat('y', 100) from generate_series(1, 500) g" \
			>/dev/null
		psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
	done
	psql_at "$NS_P" "$PG_PORT" "checkpoint"
	pid_alive "$COMMIT_PID" ||
		fail "the COMMIT returned with no synchronous standby: $(cat "$TEST_DIR/commit.out")"
	psql_at "$NS_P" "$PG_PORT" "select pg_create_physical_replication_slot('walship', true)" \
		>/dev/null
	SLOT_AT=$(psql_at "$NS_P" "$PG_PORT" "select restart_lsn from pg_replication_slots")
	[[ "$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$SLOT_AT') > '$S'")" == t ]] ||
		fail "the slot made again at $SLOT_AT is not after segment $S"
	log "a COMMIT waits, its WAL flushed up to $WAITED (segment $S); the slot made again at $SLOT_AT"
}

# pg_sync_standby NS PORT NAME: true if the PostgreSQL at NS:PORT lists a synchronous
# standby of application_name NAME (pg_stat_replication.sync_state = sync).
pg_sync_standby() {
	[[ "$(psql_at "$1" "$2" "select sync_state from pg_stat_replication
		where application_name = '$3'")" == sync ]]
}

# stream_two_replicas_up SYNC: walship_stream_up SYNC (synchronous_commit) with two
# replicas, r1 and r2 (R2ARCHIVE their second's archive), no archive_command, both
# streaming.
stream_two_replicas_up() {
	STREAM_ARCHIVE_COMMAND=/bin/true
	STREAM_REPLICA2=1
	walship_stream_up "$1"
	# shellcheck disable=SC2034  # for the test that sourced us
	R2ARCHIVE=$TEST_DIR/ws-r2/archive
	wait_for 30 "both replicas streaming" peers_streaming_are "$PCONF" 2
}

# fill_and_switch ROUNDS: ROUNDS times, 20000 rows into ws_fill (stray_next_segment made
# it) and a switch to the next segment, on the primary.
fill_and_switch() {
	local round
	for ((round = 0; round < $1; round++)); do
		psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
			from generate_series(1, 20000) g; select pg_switch_wal()" >/dev/null
	done
}

# segment_part_durable TABLE: on the primary, creates TABLE (i int, pad text) and inserts
# 5000 rows into it (about 1.3 MB of WAL) within the segment being written, then waits
# until the replica holds them durable (replica_holds); sets PART_SEG to that segment's
# name and PART_LSN to the LSN after the insert.
segment_part_durable() {
	psql_at "$NS_P" "$PG_PORT" "create table $1 (i int, pad text)" >/dev/null
	PART_SEG=$(pg_segment_name "$NS_P" "$PG_PORT")
	psql_at "$NS_P" "$PG_PORT" "insert into $1 select g, repeat('x', 200)
		from generate_series(1, 5000) g" >/dev/null
	PART_LSN=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
	[[ "$(pg_segment_name "$NS_P" "$PG_PORT")" == "$PART_SEG" ]] ||
		fail "the insert filled segment $PART_SEG"
	wait_for 30 "the replica durable up to the insert ($PART_LSN)" \
		replica_holds "$(lsn_to_int "$PART_LSN")"
}

# assert_flush_past_segment NAME: fail unless PostgreSQL's flush position for walship (the
# primary walshipd PCONF's node_name, in pg_stat_replication) is past WAL segment NAME's
# end; prints that position.
assert_flush_past_segment() {
	local end_lsn flush
	end_lsn=$(segment_end_lsn "$1")
	flush=$(psql_at "$NS_P" "$PG_PORT" "select flush_lsn from pg_stat_replication
		where application_name = '$(conf_get "$PCONF" node_name)'")
	lsn_ge "$flush" "$end_lsn" || fail "PostgreSQL's flush position for walship, $flush, is" \
		"not past $1's end ($end_lsn)"
	printf '%s\n' "$flush"
}

# segment_end_lsn NAME: the LSN (X/X) where WAL segment NAME (16 MiB segments) ends.
segment_end_lsn() {
	local hi=$((16#${1:8:8})) lo=$(((16#${1:16:8} + 1) * 16777216))
	((lo < 1 << 32)) || { hi=$((hi + 1)) && lo=$((lo - (1 << 32))); }
	printf '%X/%X\n' "$hi" "$lo"
}

# stray_next_segment: a stray file, a zero byte and 16 MiB less one of random bytes
# ($TEST_DIR/stray), stored in the replica's archive (RARCHIVE) under the name of the
# primary's next segment, which it prints; creates table ws_fill (i int, pad text) on the
# primary for the load that follows.
stray_next_segment() {
	local next
	psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)" >/dev/null
	next=$(psql_at "$NS_P" "$PG_PORT" \
		"select pg_walfile_name(pg_current_wal_insert_lsn() + 16777216)")
	head -c 16777216 /dev/urandom >"$TEST_DIR/stray"
	# differing from byte 0 on: WAL begins with its page magic's low byte (0x10 for
	# PostgreSQL 15), which random bytes would match one time in 256
	printf '\0' | dd of="$TEST_DIR/stray" bs=1 count=1 conv=notrunc status=none
	cp "$TEST_DIR/stray" "$RARCHIVE/$next"
	printf '%s\n' "$next"
}

# wait_archived NAME [TIMEOUT_S]: wait (default 30 s at most) until NAME is in the replica's
# archive directory RARCHIVE.
wait_archived() {
	wait_for "${2:-30}" "$1 in the replica archive $RARCHIVE" test -f "$RARCHIVE/$1"
}

# switch_segments N: N new segments on the primary (PostgreSQL at NS_P:PG_PORT, a row into
# its table t each time, created if missing), each stored in the replica archive RARCHIVE;
# prints the name of the last one completed.
switch_segments() {
	local n=$1 seg
	for (( ; n > 0; n--)); do
		seg=$(psql_at "$NS_P" "$PG_PORT" "create table if not exists t (i int);
			insert into t values (1); select pg_walfile_name(pg_switch_wal())")
		wait_archived "$seg" 30
	done
	printf '%s\n' "$seg"
}

# fetch_and_compare NAME ORIGINAL: `walship fetch -c RCONF NAME DEST` as postgres into a
# fresh DEST (in SCRATCH, made when unset); fails unless it exits 0 and DEST has the same
# bytes as ORIGINAL.
fetch_and_compare() {
	local name=$1 original=$2 dest
	if [[ -z "${SCRATCH:-}" ]]; then
		SCRATCH=$TEST_DIR/scratch
		mkdir -p "$SCRATCH"
		chown postgres:postgres "$SCRATCH"
	fi
	dest=$SCRATCH/fetched.$name
	rm -f "$dest"
	assert_exit 0 "walship fetch $name" walship_fetch_as_postgres "$RCONF" "$name" "$dest"
	assert_file_identical "$original" "$dest"
	log "ok: fetched $name, identical to $original"
}

# pg_segment_name NS PORT: the name of the WAL segment the primary is writing: the one its
# next WAL byte goes to.  From the insert position (the write position lags it with
# synchronous_commit = off), plus one byte: pg_walfile_name() names a position on a segment
# boundary, as after pg_switch_wal(), after the segment that ends there.
pg_segment_name() {
	psql_at "$1" "$2" "select pg_walfile_name(pg_current_wal_insert_lsn() + 1)"
}

# pg_complete_segment NS PORT: write WAL on the primary (table ws_fill) until the segment it
# was writing is full and a new one begun, without pg_switch_wal (so every page of it holds
# real records); prints the completed segment's name.
pg_complete_segment() {
	local ns=$1 port=$2 seg tries=0
	psql_at "$ns" "$port" "create table if not exists ws_fill (i int, pad text)"
	seg=$(pg_segment_name "$ns" "$port")
	while [[ "$(pg_segment_name "$ns" "$port")" == "$seg" ]]; do
		((tries++ < 20)) || fail "could not fill WAL segment $seg"
		psql_at "$ns" "$port" "insert into ws_fill
			select g, repeat('x', 200) from generate_series(1, 20000) g"
	done
	printf '%s\n' "$seg"
}

# pg_make_segments N DIR: a primary that archives nothing (archive_command = /bin/true)
# at $PDATA fills N WAL segments (pg_complete_segment); copies of them go to DIR, owned by
# postgres, their names to the array SEGS; the server is stopped again.
pg_make_segments() {
	local n=$1 dir=$2 seg i
	pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" /bin/true
	pg_start "$PDATA" "$NS_P"
	SEGS=()
	for ((i = 0; i < n; i++)); do
		seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
		cp "$PDATA/pg_wal/$seg" "$dir/$seg"
		chown postgres:postgres "$dir/$seg"
		SEGS+=("$seg")
	done
	pg_stop "$PDATA"
}

# wal_segment_numbers DIR: print the segment numbers (decimal, sorted) of the timeline-1
# WAL segments (24 hex digits, no suffix) in DIR, assuming 16 MB segments.
wal_segment_numbers() {
	local f name
	for f in "$1"/*; do
		name=$(basename "$f")
		[[ "$name" =~ ^[0-9A-F]{24}$ ]] || continue
		printf '%d\n' $(((16#${name:8:8} << 8) + 16#${name:16:8}))
	done | sort -n
}

# assert_no_gap DIR: fail unless the WAL segments in DIR form one run without holes.
assert_no_gap() {
	local prev="" n count=0
	while read -r n; do
		if [[ -n "$prev" ]] && ((n != prev + 1)); then
			fail "gap in $1 between segments $prev and $n"
		fi
		prev=$n
		count=$((count + 1))
	done < <(wal_segment_numbers "$1")
	((count > 0)) || fail "no WAL segment in $1"
	log "ok: $count WAL segments in $1, no gap"
}

# seg_name SEGNO: the name of segment SEGNO of timeline 1 at 16 MiB.
seg_name() {
	printf '00000001%08X%08X' $(($1 >> 8)) $(($1 & 255))
}

# held_all DIR FIRST LAST: DIR holds every segment from FIRST to LAST (seg_name).
held_all() {
	local s
	for ((s = $2; s <= $3; s++)); do
		[[ -f "$1/$(seg_name "$s")" ]] || return 1
	done
}

# replica_holds LSN_INT: true once the primary walshipd (PCONF) reports its first replica
# durable up to LSN_INT (lsn_to_int) or further: walship's flush position for PostgreSQL.
replica_holds() {
	local lsn
	lsn=$(walship_status "$PCONF" --json | jq -r '.peers[0].flush_lsn // "0/0"')
	(($(lsn_to_int "$lsn") >= $1))
}

# assert_stream_direct CONF LOG: the replica walshipd of CONF (logging to LOG) made streamed
# WAL durable with direct writes from the segments' images (stream_direct_syncs > 0; its
# standbys and downstream replicas read those images, never the page cache), or with none
# where it logged that its archive refuses direct I/O ("using buffered writes").  Sets
# STREAM_DIRECT to the count.
assert_stream_direct() {
	local name
	name=$(conf_get "$1" node_name)
	STREAM_DIRECT=$(status_counter "$1" stream_direct_syncs)
	if grep -q "using buffered writes" "$2"; then
		assert_eq 0 "$STREAM_DIRECT" "direct group commits on $name, where direct I/O is refused"
	else
		((STREAM_DIRECT > 0)) ||
			fail "no group commit on $name was a direct write (stream_direct_syncs = 0)"
	fi
}

# assert_stream_equals_pg_wal LSN: after streaming up to LSN (PostgreSQL's flush position,
# held by the replica: replica_holds), every segment stored in RARCHIVE equals the
# primary's pg_wal (PDATA) byte for byte, without a gap up to the segment of LSN, and the
# segment being streamed at LSN, served by `walship fetch` (RCONF) as its durable prefix,
# has pg_wal's bytes up to LSN: no file of two halves, nothing acknowledged lost.
assert_stream_equals_pg_wal() {
	local final=$1 f name compared=0 seg off last
	for f in "$RARCHIVE"/*; do
		name=$(basename "$f")
		[[ "$name" =~ ^[0-9A-F]{24}$ && -f "$PDATA/pg_wal/$name" ]] || continue
		cmp -s "$f" "$PDATA/pg_wal/$name" || fail "stored $name differs from pg_wal's"
		compared=$((compared + 1))
	done
	((compared >= 1)) || fail "no stored segment to compare with pg_wal"
	assert_no_gap "$RARCHIVE"
	seg=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$final')")
	off=$(psql_at "$NS_P" "$PG_PORT" \
		"select file_offset from pg_walfile_name_offset('$final')")
	# The gap check sees stored segments only: the one before LSN's must be there too.
	last=$(wal_segment_numbers "$RARCHIVE" | tail -n 1)
	[[ -f "$RARCHIVE/$seg" ]] || ((last + 1 == (16#${seg:8:8} << 8) + 16#${seg:16:8})) ||
		fail "the replica lacks segments between its last stored one ($last) and $seg"
	if [[ ! -f "$RARCHIVE/$seg" ]]; then
		mkdir -p "$TEST_DIR/scratch"
		chown postgres:postgres "$TEST_DIR/scratch"
		walship_fetch_as_postgres "$RCONF" "$seg" "$TEST_DIR/scratch/$seg" ||
			fail "walship fetch $seg (being streamed) failed"
		cmp -s -n "$off" "$TEST_DIR/scratch/$seg" "$PDATA/pg_wal/$seg" ||
			fail "the durable prefix of $seg differs from pg_wal's first $off bytes"
		log "ok: $seg being streamed, its first $off bytes as in pg_wal"
	fi
	log "ok: $compared stored segments equal to pg_wal's"
}

# ---------------------------------------------------------------------------------------
# Fault-injection tests (issue 3): recording what push acknowledged, and the invariant
# checker run at the end of every scenario.
#
#   inv_setup                 the log of acknowledged files and the logging push wrapper
#   inv_archive_command CONF  an archive_command that pushes with CONF and logs the ack
#   inv_topology_up [SCALE]   walship_topology_up, with that archive_command
#   check_invariants -P PCONF -R RCONF [-R RCONF...] [-D "NS_A PORT_A NS_B PORT_B"]
#
# The log, $INV_ACKED (default $TEST_DIR/acked.log), has one line per acknowledged push:
# "NAME MD5", the MD5 of the file when `walship push` exited 0 (PostgreSQL does not touch
# a segment before its archive_command returns).  A test may set INV_ACKED to another file
# before inv_setup to keep a separate log (and wrapper) per primary.  Lines are appended
# with O_APPEND, one short write each, so concurrent pushes do not mix them.

# inv_setup: create $INV_ACKED (writable by postgres) and $INV_PUSH (the log's name with
# .push.sh for .log), the wrapper `$INV_PUSH CONF PATH` that runs `walship push -c CONF
# PATH`, returns its exit status, and on success appends "NAME MD5" to $INV_ACKED.
# Idempotent.
inv_setup() {
	INV_ACKED=${INV_ACKED:-$TEST_DIR/acked.log}
	INV_PUSH=${INV_ACKED%.log}.push.sh
	[[ -f "$INV_ACKED" ]] || install -m 0664 -o postgres -g postgres /dev/null "$INV_ACKED"
	cat >"$INV_PUSH" <<-SCRIPT
		#!/bin/sh
		# written by lib.sh (inv_setup): walship push, logging what it acknowledged
		"$WALSHIP" push -c "\$1" "\$2" || exit \$?
		sum=\$(md5sum <"\$2") || exit 1
		echo "\${2##*/} \${sum%% *}" >>"$INV_ACKED"
	SCRIPT
	chmod 0755 "$INV_PUSH"
}

# inv_archive_command CONF: print an archive_command pushing through the primary walshipd
# with config CONF and logging every acknowledged file in $INV_ACKED.  Call inv_setup in
# the test's own shell first if it reads INV_ACKED (a $(...) cannot set it there).
inv_archive_command() {
	inv_setup
	printf '%s %s %%p\n' "$INV_PUSH" "$1"
}

# inv_acked_count: how many distinct files $INV_ACKED records.
inv_acked_count() {
	awk '{print $1}' "$INV_ACKED" | sort -u | wc -l
}

# inv_topology_up [SCALE]: walship_topology_up SCALE, except that the primary's
# archive_command is inv_archive_command PCONF, so that check_invariants knows what was
# acknowledged.
inv_topology_up() {
	local scale=${1:-1}
	walship_daemons_up
	inv_setup
	log "PostgreSQL primary in $NS_P: archive_command = walship push, logged"
	pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "$(inv_archive_command "$PCONF")"
	pg_start "$PDATA" "$NS_P"
	log "pgbench -i -s $scale"
	pgbench_at "$NS_P" "$PG_PORT" -i -s "$scale" -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
		{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
	walship_standby_up
}

# inv_spool_empty PCONF: true when the primary walshipd with config PCONF holds nothing.
inv_spool_empty() {
	[[ "$(walship_status "$1" --json | jq -r .spool_files)" == 0 ]]
}

# inv_missing ARCHIVE_DIR: print the acknowledged names (from $INV_ACKED) that are not (yet)
# in ARCHIVE_DIR; true when none is missing.
inv_missing() {
	local name missing=0
	while read -r name; do
		[[ -f "$1/$name" ]] || { echo "$name"; missing=1; }
	done < <(awk '{print $1}' "$INV_ACKED" | sort -u)
	return "$missing"
}

# inv_check_stored RCONF [SUMS]: every file under its final name in RCONF's archive_dir is
# complete and valid: `walship fetch -c RCONF` (which validates, and works while the
# replica's daemon is down) delivers it, byte-identical to the stored file.  SUMS, a file
# of "NAME MD5" lines, gives the stored files' MD5s already computed (check_invariants
# has them); the others are computed here.  Sets INV_STORED to the number of files checked.
inv_check_stored() {
	local rconf=$1 sums=${2:-} adir name size sum fdir rc batch=() batch_bytes=0
	local -A inv_sums=() # NAME -> MD5 of the stored file, read by inv_compare_batch
	adir=$(conf_get "$rconf" archive_dir)
	if [[ -n "$sums" ]]; then
		while read -r name sum; do
			inv_sums[$name]=$sum
		done <"$sums"
	fi
	# Fetch into tmpfs when there is one: fetch fsyncs what it delivers, which costs more
	# than the check itself over thousands of small files on a busy disk.
	fdir=$(mktemp -d /dev/shm/walship-inv.XXXXXX 2>/dev/null) || fdir=$(mktemp -d "$TEST_DIR/inv.XXXXXX")
	INV_STORED=0
	# The fetched files are compared in batches (64 files or 256 MiB), one md5sum per batch
	# and an rm, not a cmp per file: t_39 checks hundreds of files.
	while read -r name size; do
		rc=0
		"$WALSHIP" fetch -c "$rconf" "$name" "$fdir/$name" >"$TEST_DIR/inv-fetch.out" 2>&1 ||
			rc=$?
		if ((rc != 0)); then
			cat "$TEST_DIR/inv-fetch.out" >&2
			rm -rf "$fdir"
			fail "invariants: walship fetch $name from $adir exited $rc"
		fi
		batch+=("$name")
		batch_bytes=$((batch_bytes + size))
		if ((${#batch[@]} >= 64 || batch_bytes >= 256 << 20)); then
			inv_compare_batch "$fdir" "$adir" "${batch[@]}"
			batch=()
			batch_bytes=0
		fi
	done < <(find "$adir" -mindepth 1 -maxdepth 1 -type f ! -name '.*' -printf '%f %s\n' | sort)
	((${#batch[@]} == 0)) || inv_compare_batch "$fdir" "$adir" "${batch[@]}"
	rm -rf "$fdir"
}

# inv_compare_batch FETCH_DIR ARCHIVE_DIR NAME...: fail unless each NAME in FETCH_DIR (what
# fetch delivered) has the MD5 of NAME in ARCHIVE_DIR: inv_check_stored's inv_sums, or
# computed now for the names it lacks; then remove the fetched copies.
inv_compare_batch() {
	local fdir=$1 adir=$2 got want="" name sum ok=1
	shift 2
	local -a unsummed=()
	for name; do
		[[ -n "${inv_sums[$name]:-}" ]] || unsummed+=("$name")
	done
	if ((${#unsummed[@]} > 0)); then
		while read -r sum name; do
			inv_sums[$name]=$sum
		done < <(cd "$adir" && md5sum -- "${unsummed[@]}" 2>/dev/null)
	fi
	for name; do
		want+="${inv_sums[$name]:-(unreadable)}  $name"$'\n'
	done
	got=$(cd "$fdir" && md5sum -- "$@" 2>&1) || ok=0
	if ((!ok)) || [[ "$got"$'\n' != "$want" ]]; then
		rm -rf "$fdir"
		fail "invariants: fetch delivered other bytes than $adir holds (< stored, > fetched):" \
			"$(diff <(printf '%s' "$want") <(printf '%s\n' "$got") | grep '^[<>]' | head -n 6)"
	fi
	rm -f -- "${@/#/$fdir/}"
	INV_STORED=$((INV_STORED + $#))
}

# check_invariants -P PCONF -R RCONF [-R RCONF...] [-D "NS_A PORT_A NS_B PORT_B"] [-t SECS]:
# the invariants of issue 3, asserted after a scenario, once everything has been restored:
#   1. every replica registered with the primary (PCONF) is among the RCONFs, and the
#      primary's spool drains (bounded by -t, default 60 s): nothing is held any more;
#   2. every file that push acknowledged ($INV_ACKED) is present in every RCONF's
#      archive_dir with the same MD5 (a lost-segment report is not implemented yet);
#   3. every file under its final name in every archive_dir is complete and valid:
#      `walship fetch` (which validates) delivers it, byte-identical to the stored file;
#   4. with -D, the two clusters hold the same data (assert_same_data); the caller has
#      waited for the standby to replay what it must have.
# Fails on the first violation; logs a summary otherwise.
check_invariants() {
	local pconf="" data="" timeout=60 opt OPTIND=1
	local -a rconfs=()
	while getopts 'P:R:D:t:' opt; do
		case "$opt" in
		P) pconf=$OPTARG ;;
		R) rconfs+=("$OPTARG") ;;
		D) data=$OPTARG ;;
		t) timeout=$OPTARG ;;
		*) fail "check_invariants: bad option" ;;
		esac
	done
	[[ -n "$pconf" && ${#rconfs[@]} -gt 0 ]] || fail "check_invariants: needs -P PCONF and -R RCONF"
	inv_setup
	local nacked
	nacked=$(inv_acked_count)
	((nacked > 0)) || fail "invariants: $INV_ACKED records no acknowledged push"
	log "invariants: checking $nacked acknowledged file(s) on ${#rconfs[@]} replica(s)"

	# 1. Registered replicas are all checked; the spool drains.
	local reg rconf known
	while read -r reg; do
		known=0
		for rconf in "${rconfs[@]}"; do
			[[ "$(conf_get "$rconf" node_name)" == "$reg" ]] && known=1
		done
		((known)) || fail "invariants: registered replica \"$reg\" is not among those checked"
	done < <(walship_status "$pconf" --json | jq -r '.peers[].name' | sort -u)
	wait_for "$timeout" "the primary's spool to drain" inv_spool_empty "$pconf"

	# 2. Every acknowledged file, on every replica, with the acknowledged content.
	local adir nfiles=0
	for rconf in "${rconfs[@]}"; do
		adir=$(conf_get "$rconf" archive_dir)
		local deadline=$((SECONDS + timeout))
		until inv_missing "$adir" >"$TEST_DIR/inv-missing.out" || ((SECONDS >= deadline)); do
			ws_check_daemons
			ws_sleep 0.5
		done
		if ! inv_missing "$adir" >"$TEST_DIR/inv-missing.out"; then
			head -n 5 "$TEST_DIR/inv-missing.out" >&2
			fail "invariants: $(wc -l <"$TEST_DIR/inv-missing.out") acknowledged file(s) missing in $adir"
		fi
		# The MD5 of every stored file, once: step 3 compares the fetched copies with it.
		(cd "$adir" && find . -mindepth 1 -maxdepth 1 -type f ! -name '.*' -printf '%f\0' |
			xargs -0r md5sum --) | awk '{print $2, $1}' >"$TEST_DIR/inv-stored.out"
		sort -u "$INV_ACKED" >"$TEST_DIR/inv-want.out"
		awk 'NR == FNR { acked[$1]; next } $1 in acked' "$TEST_DIR/inv-want.out" \
			"$TEST_DIR/inv-stored.out" | sort -u >"$TEST_DIR/inv-got.out"
		if ! cmp -s "$TEST_DIR/inv-want.out" "$TEST_DIR/inv-got.out"; then
			diff "$TEST_DIR/inv-want.out" "$TEST_DIR/inv-got.out" | head -n 10 >&2
			fail "invariants: files in $adir differ from what push acknowledged (< acknowledged, > stored)"
		fi

		# 3. Everything under a final name is complete and valid (fetch validates).
		inv_check_stored "$rconf" "$TEST_DIR/inv-stored.out"
		nfiles=$((nfiles + INV_STORED))
	done
	log "invariants: every acknowledged file on every replica; $nfiles stored file(s) valid"

	# 4. The standby's data equal the primary's.
	if [[ -n "$data" ]]; then
		# shellcheck disable=SC2086  # "NS_A PORT_A NS_B PORT_B"
		assert_same_data $data
		log "invariants: standby data equal the primary's"
	fi
}
