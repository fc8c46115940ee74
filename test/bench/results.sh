# shellcheck shell=bash
# The figures of a benchmark run, for test/bench/report.sh and test/bench/plot.sh, which
# source this file.  Both are run by test/bench/run-bench.sh (after the runs, or alone with
# BENCH_REPORT_ONLY=1), which passes the run's settings in the environment:
#
#   RESULTS_TSV     the run's results: one line per contender and run (run-bench.sh's
#                   record(): contender run wall_s seg/s MB/s sendCPU/GB recvCPU/GB p50
#                   p99 max replicas)
#   SYNC_TSV        the synchronous-commit contenders' results (test/bench/sync.sh's
#                   run_sync(): contender run wall_s tps p50 p99 max WAL-MB/s sendCPU/GB
#                   recvCPU/GB applyCPU/GB lag-p50 lag-p99 lag-max walsenderCPU/GB
#                   kworkerCPU/GB; milliseconds; the sending side's CPU includes the
#                   walsender's; the kernel workers are the machine's, in neither side)
#   STANDBY_TSV     the standby contenders' results (test/bench/standby.sh's sb_record():
#                   contender run wall_s standbys walsenders tps WAL-MB/s pgCPU%
#                   walsenderCPU% walshipdCPU% applianceCPU% lag-p50 lag-p99 lag-max;
#                   CPU in percent of one CPU over the load, lags in ms); may be unset
#   RUN_DIR         the run directory (lat/ latencies, status-*.txt, plot/ scratch)
#   RESULTS         where the text table goes
#   SEGMENTS RUNS FANOUT_SEGMENTS STREAM_SECONDS STREAM_SCALE CORPUS_BYTES SYNC_SECONDS
#   SYNC_LAG_SECONDS STANDBY_SECONDS STANDBY_RATE STANDBY_SCALE LOAD
#                   the run's size, as run-bench.sh describes its BENCH_* knobs
#
# Sources test/system/lib.sh for log (progress lines tagged [bench]), WS_ROOT, WALSHIP
# and PG_BIN.

WS_TEST_NAME=bench
# shellcheck source=test/system/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../system/lib.sh"

: "${RESULTS_TSV:?set by test/bench/run-bench.sh}" "${RUN_DIR:?}" "${RESULTS:?}" \
	"${SEGMENTS:?}" "${RUNS:?}" "${FANOUT_SEGMENTS:?}" "${STREAM_SECONDS:?}" \
	"${STREAM_SCALE:?}" "${CORPUS_BYTES:?}" "${SYNC_TSV:?}" "${SYNC_SECONDS:?}" \
	"${SYNC_LAG_SECONDS:?}"
STANDBY_TSV=${STANDBY_TSV:-}

# MEDIANS["FILE CONTENDER COLUMN"]: the median of COLUMN (1-based) over the runs of
# CONTENDER in FILE ("-" if the column holds "-"), for every file, contender and column at
# once: one sort and one awk, where a pipeline per figure took seconds of forks.
# RATIOS[CONTENDER] and LIMIT_RATIOS[CONTENDER]: median_ratio's and median_limit_ratio's
# figures, from the same single pass over RESULTS_TSV.
declare -A MEDIANS=() RATIOS=() LIMIT_RATIOS=()
medians_load() {
	local f c k value
	MEDIANS=()
	RATIOS=()
	LIMIT_RATIOS=()
	for f in "$RESULTS_TSV" "$SYNC_TSV" ${STANDBY_TSV:+"$STANDBY_TSV"}; do
		[[ -s "$f" ]] || continue
		while read -r c k value; do
			MEDIANS["$f $c $k"]=$value
		done < <(awk '{for (k = 3; k <= NF; k++) print $1, k, $k}' "$f" |
			sort -k1,1 -k2,2n -k3,3g | awk '
			function flush() {
				if (n == 0) return
				if (v[1] == "-") m = "-"
				else if (n % 2) m = v[(n + 1) / 2]
				else m = sprintf("%.3f", (v[n / 2] + v[n / 2 + 1]) / 2)
				print key, m
			}
			{ k = $1 " " $2; if (k != key) { flush(); key = k; n = 0 } v[++n] = $3 }
			END { flush() }')
	done
	[[ -s "$RESULTS_TSV" ]] || return 0
	while read -r k c value; do
		if [[ $k == ratio ]]; then
			RATIOS[$c]=$value
		else
			LIMIT_RATIOS[$c]=$value
		fi
	done < <(awk '
		# med(list): the median of the space-separated figures, "-" if there are none
		# (odd count: the middle one as written; even: the mean of the two, %.3f).
		function med(list,    a, n, i, j, x) {
			n = split(list, a, " ")
			if (n == 0) return "-"
			for (i = 2; i <= n; i++) {
				x = a[i]
				for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]
				a[j + 1] = x
			}
			if (n % 2) return a[(n + 1) / 2]
			return sprintf("%.3f", (a[n / 2] + a[n / 2 + 1]) / 2)
		}
		{ segs[$1, $2] = $4; runs[$1] = runs[$1] " " $2 }
		$1 == "baseline" { base[$2] = $4 }
		$1 == "limit-disk" { disk[$2] = $4 }
		$1 == "limit-net" { net[$2] = $4 }
		END {
			for (c in runs) {
				n = split(runs[c], rs, " ")
				rl = ""
				ll = ""
				for (i = 1; i <= n; i++) {
					r = rs[i]
					if (base[r] > 0) rl = rl " " sprintf("%.3f", segs[c, r] / base[r])
					if ((r in disk) && (r in net)) {
						m = disk[r] < net[r] ? disk[r] : net[r]
						if (m > 0) ll = ll " " sprintf("%.3f", segs[c, r] / m)
					}
				}
				print "ratio", c, med(rl)
				print "limit", c, med(ll)
			}
		}' "$RESULTS_TSV")
}
medians_load

# median CONTENDER COLUMN [FILE]: MEDIANS's figure for COLUMN of CONTENDER in FILE
# (default RESULTS_TSV); "-" if there is none.
median() {
	printf '%s\n' "${MEDIANS["${3:-$RESULTS_TSV} $1 $2"]:--}"
}

# median_ratio CONTENDER: the median over the runs of its seg/s divided by the baseline's
# seg/s of the same run ("-" without a baseline).
median_ratio() {
	printf '%s\n' "${RATIOS[$1]:--}"
}

# limit_ratios CONTENDER: one line per run that has both limits: "RUN RATIO DISK NET",
# its seg/s divided by min(limit-disk, limit-net seg/s) of the same run, and those two.
limit_ratios() {
	awk -v c="$1" '$1 == "limit-disk" {d[$2] = $4} $1 == "limit-net" {n[$2] = $4}
		$1 == c {v[$2] = $4}
		END {
			for (r in v) {
				if (!(r in d) || !(r in n)) continue
				m = d[r] < n[r] ? d[r] : n[r]
				if (m > 0) printf "%s %.3f %s %s\n", r, v[r] / m, d[r], n[r]
			}
		}' "$RESULTS_TSV" | sort -n
}

# median_limit_ratio CONTENDER: the median over the runs of limit_ratios's ratio ("-"
# without both limits).
median_limit_ratio() {
	printf '%s\n' "${LIMIT_RATIOS[$1]:--}"
}

# contenders: the contenders that have results, in table order.
contenders() {
	local c
	for c in walship walship-async walship-probes walship-map walship-archcmd walship-module \
		pgbr-sync-off pgbr-sync-none \
		pgbr-sync-lz4 pgbr-async-off pgbr-async-none pgbr-async-lz4 baseline cp limit-disk \
		limit-net plain-send streaming \
		fanout-1 fanout-2 fanout-4 fanout-8; do
		[[ -n "${MEDIANS["$RESULTS_TSV $c 3"]:-}" ]] && echo "$c"
	done
	return 0
}

# standby_contenders: the standby contenders that have results, in table order.
standby_contenders() {
	[[ -s "$STANDBY_TSV" ]] || return 0
	awk '!seen[$1]++ {print $1}' "$STANDBY_TSV"
}

# sync_contenders: the synchronous-commit contenders that have results, in table order.
sync_contenders() {
	local c
	for c in sync-standby sync-receivewal sync-receivewal-relay sync-walship; do
		[[ -n "${MEDIANS["$SYNC_TSV $c 3"]:-}" ]] && echo "$c"
	done
	return 0
}
