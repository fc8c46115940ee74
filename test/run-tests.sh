#!/bin/bash
# Run every walship test from the repository root (make check calls this after building):
#   1. `make format-check`, as one test; `scripts/check-layers.sh` (the layer order of
#      docs/architecture.md), as one test;
#   2. every test/system/t_*.sh, up to TEST_JOBS side by side, each under a timeout: exit 0
#      pass, 77 skip (its last output line is the reason), anything else fail.  A test that prints
#      `SUBTESTS: N passed, M failed` (t_84 for its QEMU guest) counts N + M results;
#   3. every unit test binary under build/unit (cmocka; each cmocka test counts once when
#      its "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines can be read, else the
#      binary counts once), built meanwhile when UNIT_BUILD names the command (make
#      check), a failed build counting as one failed test, and then run once the last
#      system test has started (one at a time, in the cores the last tests leave idle).
# Each test's output goes to build/test-logs/NAME.log; a failure shows its last 50 lines.
# Where a cgroup v2 hierarchy is writable, each system test runs in a cgroup of its own:
# its line shows the CPU time it used (every process it started, daemons and PostgreSQL
# included), processes it left behind are named and killed, and the total is printed at the
# end, so that the suite's cost can be seen test by test.
#
# Environment:
#   UNIT_BUILD=CMD      a command that builds build/unit, run while the system tests run
#                       (make check passes `make -jN unit`); without it, the unit tests
#                       found built are run
#   TESTS=REGEX         run only tests whose name matches (names: format-check,
#                       layers, unit/<path>, system/t_NN_name)
#   TEST_TIMEOUT=SECS   per system test (default 300, more where its `# test-timeout: N`
#                       line says); unit binaries get the same
#   TEST_JOBS=N         system-test slots run side by side (default 5 for two cores: the
#                       tests mostly wait on PostgreSQL, fsync and the network: on a fresh
#                       clone, 4 slots left the two CPUs about 70 % busy, 8 min 0 s and
#                       646 s of system-test CPU, where 5 took 6 min 52 s and 577 s
#                       (2026-12-06); more only made them pay for their crowding: 6 slots
#                       took 8 min 22 s and 858 s, against 4's 7 min 55 s and 787 s on a
#                       slower day; 1 runs them one by one); a test's
#                       `# test-slots: N` line says how many it
#                       takes (default 1: a test that loads both cores, e.g. the QEMU
#                       guest, takes more)
#
# The last line of output is always `N passed, N failed` (`, N skipped` when any were
# skipped).  Exit status is non-zero if any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_DIR=build/test-logs
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
TEST_JOBS=${TEST_JOBS:-5}
TESTS=${TESTS:-}
PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=()
SKIPPED_NAMES=()

mkdir -p "$LOG_DIR"

# CG_ROOT: a writable cgroup v2 directory for the tests' cgroups, or empty (no accounting).
CG_ROOT=
cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts 2>/dev/null || true)
if [[ -n "$cg2" ]]; then
	cg_self=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null || true)
	CG_ROOT=$cg2${cg_self%/}/walship-tests.$$
	mkdir "$CG_ROOT" 2>/dev/null || CG_ROOT=
fi
CPU_TOTAL_MS=0

# selected NAME: true if NAME is to run under $TESTS.
selected() {
	[[ -z "$TESTS" || "$1" =~ $TESTS ]]
}

# log_path NAME: the log file for test NAME (slashes become dashes).
log_path() {
	printf '%s/%s.log\n' "$LOG_DIR" "${1//\//-}"
}

# cmocka_counts LOG: set NPASS, NFAIL and NSKIP to the sums of a cmocka log's "[  PASSED  ]
# N test(s).", "[  FAILED  ] N test(s)" and "[  SKIPPED ] N test(s)" lines (a test that
# called skip() is in neither of the first two), and SKIP_WHAT to the skipped tests' names.  Read by the shell itself, as the other
# helpers here: the runner starts no process per test that it can avoid (each costs
# milliseconds of CPU on a virtual machine, taken from the tests running beside it).
cmocka_counts() {
	local line n listed=0
	NPASS=0
	NFAIL=0
	NSKIP=0
	SKIP_WHAT=""
	while IFS= read -r line; do
		case "$line" in
		"[  SKIPPED ] "*" test(s)"*)
			n=${line#"[  SKIPPED ] "}
			n=${n%% *}
			[[ "$n" =~ ^[0-9]+$ ]] && NSKIP=$((NSKIP + n))
			listed=1 # the names follow (each was also said as it ran)
			;;
		"[  SKIPPED ] test_"*)
			((listed)) && SKIP_WHAT+=" ${line#"[  SKIPPED ] "}"
			;;
		"[  PASSED  ] "*" test(s)."*)
			n=${line#"[  PASSED  ] "}
			n=${n%% *}
			[[ "$n" =~ ^[0-9]+$ ]] && NPASS=$((NPASS + n))
			;;
		"[  FAILED  ] "*" test(s)"*)
			n=${line#"[  FAILED  ] "}
			n=${n%% *}
			[[ "$n" =~ ^[0-9]+$ ]] && NFAIL=$((NFAIL + n))
			;;
		esac
	done <"$1"
	return 0
}

# show_failure NAME LOG: print the tail of a failed test's log.
show_failure() {
	echo "---- last 50 lines of $2 ----"
	tail -n 50 "$2"
	echo "---- end of $1 ----"
}

# record NAME RESULT [DETAIL]: count one result (pass, fail, skip) and print it.
record() {
	local name=$1 result=$2 detail=${3:-}
	case "$result" in
	pass)
		PASSED=$((PASSED + 1))
		printf 'PASS  %s%s\n' "$name" "${detail:+ ($detail)}"
		;;
	fail)
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("$name")
		printf 'FAIL  %s%s\n' "$name" "${detail:+ ($detail)}"
		;;
	skip)
		SKIPPED=$((SKIPPED + 1))
		SKIPPED_NAMES+=("$name: $detail")
		printf 'SKIP  %s: %s\n' "$name" "$detail"
		;;
	esac
}

# run_format_check: `make format-check` as one test.
run_format_check() {
	local name=format-check logf rc=0
	selected "$name" || return 0
	logf=$(log_path "$name")
	make --no-print-directory format-check </dev/null >"$logf" 2>&1 || rc=$?
	if ((rc == 0)); then
		record "$name" pass
	else
		record "$name" fail "exit $rc"
		show_failure "$name" "$logf"
	fi
}

# run_layer_check: scripts/check-layers.sh (no lower layer includes a higher one) as one
# test.
run_layer_check() {
	local name=layers logf rc=0
	selected "$name" || return 0
	logf=$(log_path "$name")
	scripts/check-layers.sh </dev/null >"$logf" 2>&1 || rc=$?
	if ((rc == 0)); then
		record "$name" pass
	else
		record "$name" fail "exit $rc"
		show_failure "$name" "$logf"
	fi
}

# start_unit_build: with UNIT_BUILD set (make check: the make command that builds the unit
# tests), run it in the background while the system tests run, its output in
# $LOG_DIR/unit-build.log: the build's serial steps (links, the archive) and the end of
# the system tests, when fewer of them are left than cores, each leave a core idle, and
# each fills the other's gaps.  finish_unit_build, called by run_unit_tests, waits for it
# and counts a failed build as a failed test.
UNIT_BUILD_PID=""
start_unit_build() {
	[[ -n "${UNIT_BUILD:-}" ]] || return 0
	rm -f "$LOG_DIR/unit-build.rc"
	(
		rc=0
		bash -c "$UNIT_BUILD" </dev/null >"$LOG_DIR/unit-build.log" 2>&1 || rc=$?
		echo "$rc" >"$LOG_DIR/unit-build.rc"
	) &
	UNIT_BUILD_PID=$!
}
finish_unit_build() {
	local rc=1
	[[ -n "$UNIT_BUILD_PID" ]] || return 0
	# (its exit status may have gone to the system tests' wait -n: it is in the .rc file)
	while kill -0 "$UNIT_BUILD_PID" 2>/dev/null; do
		wait "$UNIT_BUILD_PID" 2>/dev/null || true
	done
	read -r rc <"$LOG_DIR/unit-build.rc" || rc=1
	if ((rc == 0)); then
		return 0
	fi
	record unit-build fail "exit $rc"
	show_failure unit-build "$LOG_DIR/unit-build.log"
	return 1
}

# unit_bins: the unit test binaries under build/unit that $TESTS selects, in name order.
unit_bins() {
	local bin
	while IFS= read -r bin; do
		selected "unit/${bin#build/unit/}" && printf '%s\n' "$bin"
	done < <(find build/unit -type f -perm -u+x 2>/dev/null | sort)
}

# unit_name BIN: how unit binary BIN is named in results (unit/DIR/.../NAME_test).
unit_name() {
	printf 'unit/%s\n' "${1#build/unit/}"
}

# unit_log BIN: the log file of unit binary BIN (its exit status goes to the log's .rc).
unit_log() {
	local name
	name=$(unit_name "$1")
	printf '%s\n' "$LOG_DIR/${name//\//-}.log"
}

# run_unit_bins JOBS BIN...: run each unit binary, JOBS of them side by side (each is a
# single process), its output in unit_log BIN and its exit status in that log's .rc.
run_unit_bins() {
	local jobs=$1 bin logf running=0
	shift
	for bin; do
		logf=$(unit_log "$bin")
		if ((running >= jobs)); then
			wait -n || true
			running=$((running - 1))
		fi
		(
			rc=0
			timeout -k 10 "$TEST_TIMEOUT" "$bin" </dev/null >"$logf" 2>&1 || rc=$?
			echo "$rc" >"$logf.rc"
		) &
		running=$((running + 1))
	done
	wait
}

# start_unit_tests: with UNIT_BUILD, once the last system test has started (fewer tests
# than slots run from then on, and the last ones leave cores idle), run the unit binaries
# in the background, one at a time, as soon as their build is done; run_unit_tests
# reports them.  Without UNIT_BUILD, run_unit_tests runs them itself.
UNIT_RUN_PID=""
start_unit_tests() {
	[[ -n "$UNIT_BUILD_PID" && -z "$UNIT_RUN_PID" ]] || return 0
	(
		while kill -0 "$UNIT_BUILD_PID" 2>/dev/null; do
			sleep 0.2
		done
		read -r rc <"$LOG_DIR/unit-build.rc" 2>/dev/null || rc=1
		((rc == 0)) || exit 0
		mapfile -t bins < <(unit_bins)
		run_unit_bins 1 "${bins[@]}"
	) &
	UNIT_RUN_PID=$!
}

# run_unit_tests: every selected executable under build/unit (run by start_unit_tests
# during the system tests' last minutes, else here one per core side by side), reported
# in name order, each counted per cmocka test when its summary lines can be read.
run_unit_tests() {
	local bin name logf rc npass nfail
	local -a bins=()
	if [[ -n "$UNIT_RUN_PID" ]]; then
		while kill -0 "$UNIT_RUN_PID" 2>/dev/null; do
			wait "$UNIT_RUN_PID" 2>/dev/null || true
		done
	fi
	finish_unit_build || return 0
	[[ -d build/unit ]] || return 0
	mapfile -t bins < <(unit_bins)
	if [[ -z "$UNIT_RUN_PID" ]]; then
		run_unit_bins "$(nproc 2>/dev/null || echo 1)" "${bins[@]}"
	fi
	for bin in "${bins[@]}"; do
		name=$(unit_name "$bin")
		logf=$(unit_log "$bin")
		rc=1
		read -r rc <"$logf.rc" || rc=1
		rm -f "$logf.rc"
		cmocka_counts "$logf"
		npass=$NPASS
		nfail=$NFAIL
		if ((rc != 0 && nfail == 0)); then
			# Crashed, sanitizer report, timeout: the binary itself failed.
			nfail=1
		fi
		if ((npass == 0 && nfail == 0 && NSKIP == 0)); then
			npass=1
		fi
		PASSED=$((PASSED + npass))
		FAILED=$((FAILED + nfail))
		if ((NSKIP > 0)); then
			# (each skipped unit test logs its reason before skip(): in LOG)
			SKIPPED=$((SKIPPED + NSKIP))
			SKIPPED_NAMES+=("$name: $NSKIP unit test(s) skipped:$SKIP_WHAT (reasons in $logf)")
			printf 'SKIP  %s: %d unit test(s):%s\n' "$name" "$NSKIP" "$SKIP_WHAT"
		fi
		if ((nfail == 0 && npass == 0)); then
			: # all skipped: said above, no pass
		elif ((nfail == 0)); then
			printf 'PASS  %s (%d test(s))\n' "$name" "$npass"
		else
			FAILED_NAMES+=("$name")
			printf 'FAIL  %s (%d passed, %d failed, exit %d)\n' "$name" "$npass" "$nfail" "$rc"
			show_failure "$name" "$logf"
		fi
	done
}

# test_headers SCRIPT: set SLOTS[SCRIPT] and LIMIT[SCRIPT] from the script's header
# comments (the lines before its first line of code).  SLOTS: how many of the $TEST_JOBS
# slots it takes while it runs, the number on its `# test-slots: N` line (a test that
# loads both cores, e.g. a QEMU guest or a benchmark, takes them all), else 1.  LIMIT: the
# seconds it may run, the number on its `# test-timeout: N` line (for a test whose length
# is its own job, e.g. the benchmark smoke test), else $TEST_TIMEOUT; never less.  EARLY:
# 1 when it has a `# test-early` line (a test that runs for long, started before the
# shorter ones so that these end the run and leave no core idle), else 0.
declare -A SLOTS=() LIMIT=() EARLY=()
test_headers() {
	local line n slots=1 limit=$TEST_TIMEOUT early=0
	while IFS= read -r line; do
		case "$line" in
		"#!"* | "") ;;
		"# test-early"*) early=1 ;;
		"# test-slots:"*)
			n=${line#"# test-slots:"}
			n=${n#"${n%%[! ]*}"}
			n=${n%%[!0-9]*}
			[[ -n "$n" ]] && slots=$n
			;;
		"# test-timeout:"*)
			n=${line#"# test-timeout:"}
			n=${n#"${n%%[! ]*}"}
			n=${n%%[!0-9]*}
			[[ -n "$n" ]] && ((n > limit)) && limit=$n
			;;
		"#"*) ;;
		*) break ;;
		esac
	done <"$1"
	((slots <= TEST_JOBS)) || slots=$TEST_JOBS
	((slots >= 1)) || slots=1
	SLOTS[$1]=$slots
	LIMIT[$1]=$limit
	EARLY[$1]=$early
}

# run_one SCRIPT NAME LOG: run one system test under the timeout (in its own cgroup when
# CG_ROOT is set); its exit status, duration and CPU milliseconds (-1 when not measured) go
# to LOG.result for report_one.
run_one() {
	local script=$1 name=$2 logf=$3 start=$SECONDS rc=0 cg='' cpu=-1 left='' limit=${LIMIT[$1]}
	local pid key value
	if [[ -n "$CG_ROOT" ]]; then
		cg=$CG_ROOT/${name#system/}
		mkdir "$cg" 2>/dev/null || cg=
	fi
	(
		[[ -z "$cg" ]] || echo "$BASHPID" >"$cg/cgroup.procs"
		WS_TEST_NAME=${name#system/} exec timeout -k 30 "$limit" \
			bash "$script" </dev/null >"$logf" 2>&1
	) || rc=$?
	if [[ -n "$cg" ]]; then
		while read -r pid; do
			left+=" $pid"
		done <"$cg/cgroup.procs"
		if [[ -n "$left" ]]; then
			left=${left# }
			left=$(ps -o pid=,comm= -p "${left// /,}" 2>/dev/null | xargs || true)
			echo "run-tests: the test left processes behind (killed): $left" >>"$logf"
			echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
			while [[ -s "$cg/cgroup.procs" ]]; do sleep 0.1; done
		fi
		while read -r key value; do
			[[ "$key" == usage_usec ]] && cpu=$((value / 1000))
		done <"$cg/cpu.stat"
		rmdir "$cg" 2>/dev/null || true
	fi
	echo "$rc $((SECONDS - start)) $cpu $limit" >"$logf.result"
}

# subtests LOG: "N M" from the last `SUBTESTS: N passed, M failed` line of LOG, if any.
subtests() {
	local line last=
	while IFS= read -r line; do
		[[ "$line" =~ ^SUBTESTS:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]] &&
			last="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
	done <"$1"
	printf '%s\n' "$last"
}

# report_one NAME LOG: count and print the result run_one left for NAME.
report_one() {
	local name=$1 logf=$2 rc secs cpu limit took reason sub npass nfail
	read -r rc secs cpu limit <"$logf.result"
	rm -f "$logf.result"
	took=${secs}s
	if ((cpu >= 0)); then
		CPU_TOTAL_MS=$((CPU_TOTAL_MS + cpu))
		took+=", cpu $((cpu / 1000)).$((cpu % 1000 / 100))s"
	fi
	sub=$(subtests "$logf")
	if [[ -n "$sub" && "$rc" != 77 ]]; then
		read -r npass nfail <<<"$sub"
		((rc == 0 || nfail > 0)) || nfail=1
		PASSED=$((PASSED + npass))
		FAILED=$((FAILED + nfail))
		((nfail == 0)) || FAILED_NAMES+=("$name")
		printf '%s  %s (%d passed, %d failed, %s)\n' "$( ((nfail)) && echo FAIL || echo PASS)" \
			"$name" "$npass" "$nfail" "$took"
		((nfail == 0)) || show_failure "$name" "$logf"
		return 0
	fi
	case "$rc" in
	0)
		record "$name" pass "$took"
		;;
	77)
		reason=$(grep -v '^[[:space:]]*$' "$logf" | tail -n 1)
		record "$name" skip "${reason#SKIP: }"
		;;
	124)
		record "$name" fail "timed out after ${limit}s"
		show_failure "$name" "$logf"
		;;
	*)
		record "$name" fail "exit $rc, $took"
		show_failure "$name" "$logf"
		;;
	esac
}

# run_system_tests: every test/system/t_*.sh under a timeout, up to $TEST_JOBS slots' worth
# side by side (each test makes its own namespaces, addresses, clusters and directories,
# so tests share nothing but the machine).  Tests that take several slots start first,
# then those with a longer timeout or a `# test-early` line (the long ones), then the
# rest, each group in name order; results are printed as tests finish.
run_system_tests() {
	local script name slots used=0 pid
	local -a queue=() heavy=() long=() light=()
	local -A running=() pid_slots=() pid_log=()
	for script in test/system/t_*.sh; do
		[[ -e "$script" ]] || continue
		name=${script##*/}
		name=system/${name%.sh}
		selected "$name" || continue
		test_headers "$script"
		if ((SLOTS[$script] > 1)); then
			heavy+=("$script")
		elif ((LIMIT[$script] > TEST_TIMEOUT || EARLY[$script])); then
			long+=("$script")
		else
			light+=("$script")
		fi
	done
	queue=("${heavy[@]}" "${long[@]}" "${light[@]}")
	while ((${#queue[@]} > 0 || ${#running[@]} > 0)); do
		# Start the next test when its slots are free (in queue order, so a heavy test
		# is not overtaken for ever by light ones).
		if ((${#queue[@]} > 0)); then
			script=${queue[0]}
			slots=${SLOTS[$script]}
			if ((used + slots <= TEST_JOBS)); then
				queue=("${queue[@]:1}")
				name=${script##*/}
				name=system/${name%.sh}
				run_one "$script" "$name" "$LOG_DIR/${name//\//-}.log" &
				pid=$!
				running[$pid]=$name
				pid_slots[$pid]=$slots
				pid_log[$pid]=$LOG_DIR/${name//\//-}.log
				used=$((used + slots))
				continue
			fi
		fi
		((${#queue[@]} > 0)) || start_unit_tests
		# Wait for any test to end, then report every one that has.
		wait -n || true
		for pid in "${!running[@]}"; do
			if ! kill -0 "$pid" 2>/dev/null; then
				wait "$pid" 2>/dev/null || true
				report_one "${running[$pid]}" "${pid_log[$pid]}"
				used=$((used - pid_slots[$pid]))
				unset "running[$pid]" "pid_slots[$pid]" "pid_log[$pid]"
			fi
		done
	done
}

# stop_running_tests: on an interrupt of the runner, TERM every test still running (their
# traps take down their daemons, clusters and namespaces), then kill what is left of them
# in their cgroups after a grace period.  The running tests are the run_one subshells,
# children of this shell.
stop_running_tests() {
	local pids deadline=$((SECONDS + 20))
	trap - INT TERM
	pids=$(jobs -p)
	[[ -n "$pids" ]] || return 0
	echo "run-tests: interrupted; stopping the tests still running" >&2
	# shellcheck disable=SC2086  # one argument per pid
	pkill -TERM -P "$(echo $pids | tr ' ' ,)" 2>/dev/null || true
	while [[ -n "$(jobs -pr)" ]] && ((SECONDS < deadline)); do
		sleep 0.5
	done
	if [[ -n "$CG_ROOT" ]]; then
		local cg
		for cg in "$CG_ROOT"/*/; do
			[[ -d "$cg" ]] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
		done
	fi
	wait 2>/dev/null || true
	exit 130
}
trap stop_running_tests INT TERM

run_format_check
run_layer_check
start_unit_build
run_system_tests
run_unit_tests

echo
echo "logs in $LOG_DIR/"
if [[ -n "$CG_ROOT" ]]; then
	rmdir "$CG_ROOT" 2>/dev/null || true
	echo "system tests used $((CPU_TOTAL_MS / 1000)) s of CPU"
fi
if ((${#SKIPPED_NAMES[@]} > 0)); then
	echo "skipped:"
	printf '  %s\n' "${SKIPPED_NAMES[@]}"
fi
if ((${#FAILED_NAMES[@]} > 0)); then
	echo "failed:"
	printf '  %s\n' "${FAILED_NAMES[@]}"
fi
if ((SKIPPED > 0)); then
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "$PASSED passed, $FAILED failed"
fi
((FAILED == 0))
