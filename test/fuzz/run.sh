#!/bin/bash
# Build the libFuzzer targets (test/fuzz/Makefile) and run each for a while:
#
#   test/fuzz/run.sh [-t SECONDS] [TARGET...]     default: every target, 300 s each
#
# FUZZ_RUNS=N stops a target after N inputs (its seeds and what earlier runs found
# included) if that comes before SECONDS: a quick pass over every target, as make check's
# t_95 runs it.
#
# Each target starts from its committed seed corpus (test/fuzz/corpus/<target>/, never
# written to) plus what earlier runs found (build/fuzz/corpus/<target>/, kept between
# runs, not committed).  A crash, leak, sanitizer report, timeout or broken property stops
# that target; its input is saved as build/fuzz/artifacts/<target>-crash-... and printed
# with the command that reproduces it.  Prints one line per target (runs, coverage) and
# exits non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-300}
RUNS=${FUZZ_RUNS:-}
while getopts 't:' opt; do
	case "$opt" in
	t) SECONDS_PER_TARGET=$OPTARG ;;
	*) echo "usage: $0 [-t SECONDS] [TARGET...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

FUZZ_DIR=build/fuzz
make --no-print-directory -s -j"$(nproc)" -f test/fuzz/Makefile >/dev/null

if (($# == 0)); then
	set -- $(for f in test/fuzz/fuzz_*.c; do basename "$f" .c; done | sed 's/^fuzz_//')
fi

failed=()
for target in "$@"; do
	bin=$FUZZ_DIR/fuzz_$target
	[[ -x "$bin" ]] || { echo "no fuzz target $target ($bin)" >&2; exit 2; }
	work=$FUZZ_DIR/corpus/$target
	seeds=test/fuzz/corpus/$target
	logf=$FUZZ_DIR/$target.log
	mkdir -p "$work" "$FUZZ_DIR/artifacts"
	rc=0
	start=${EPOCHREALTIME/./}
	"$bin" -max_total_time="$SECONDS_PER_TARGET" ${RUNS:+-runs="$RUNS"} -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$target-" \
		"$work" "$seeds" >"$logf" 2>&1 || rc=$?
	took=$((${EPOCHREALTIME/./} - start)) # microseconds
	took=$((took / 1000000)).$((took / 100000 % 10))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf")
	cov=$(grep -o 'cov: [0-9]*' "$logf" | tail -n 1 || true)
	corp=$(find "$work" -type f | wc -l)
	if ((rc == 0)); then
		printf 'ok    %-8s %s runs in %ss, %s, corpus %s\n' "$target" "${runs:-?}" \
			"$took" "${cov:-cov: ?}" "$corp"
	else
		failed+=("$target")
		printf 'FAIL  %-8s exit %d after %s runs; log %s\n' "$target" "$rc" "${runs:-?}" "$logf"
		grep -E 'ERROR|SUMMARY|property failed|Test unit written' "$logf" | head -n 10 | sed 's/^/      /'
		for crash in "$FUZZ_DIR"/artifacts/"$target"-*; do
			[[ -e "$crash" ]] && echo "      reproduce: $bin $crash"
		done
	fi
done
# The committed seeds are read, never written (libFuzzer writes to the first directory,
# build/fuzz/corpus/<target>): an input of libFuzzer's (named by its SHA-1) new under
# test/fuzz/corpus is a fault.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	stray=$(git status --porcelain --untracked-files=all -- test/fuzz/corpus |
		grep -E '^\?\? .*/[0-9a-f]{40}$' | head -n 5 || true)
	if [[ -n "$stray" ]]; then
		echo "fuzz: inputs found by fuzzing were written into the seed corpus test/fuzz/corpus:"
		printf '%s\n' "$stray" | sed 's/^/      /'
		failed+=(seed-corpus)
	fi
fi
if ((${#failed[@]} > 0)); then
	echo "fuzz: failed: ${failed[*]}"
	exit 1
fi
