#!/bin/bash
# The written results of a benchmark run (test/bench/run-bench.sh runs it; the settings
# come in the environment, see test/bench/results.sh):
#
#   report.sh results     the text table of medians, the goals of issue 7 and every run,
#                         on stdout and in $RESULTS
#   report.sh doc FILE    the Markdown report (docs/benchmarks.md): machine and versions,
#                         method, the table, the plots of test/bench/plot.sh, the goals
#   report.sh info        what the report says of the run itself, as of now (run-bench.sh
#                         keeps it in RUN_DIR/run.info at the end of a run)
set -euo pipefail
# shellcheck source=test/bench/results.sh
. "$(dirname "$0")/results.sh"

# ms_per_seg CONTENDER: its CPU per 16 MiB segment on both hosts, in ms (sender + receiver
# CPU per GB, a side it has no figure for counted as 0), "-" when it has no results.
ms_per_seg() {
	awk -v s="$(median "$1" 6)" -v r="$(median "$1" 7)" 'BEGIN {
		if (s == "-" && r == "-") { print "-"; exit }
		t = (s == "-" ? 0 : s) + (r == "-" ? 0 : r); printf "%.1f\n", t * 16.777216 }'
}

# table FORMAT: the table of medians, as text or as Markdown (FORMAT = text | md).
table() {
	local c fmt=$1 ms
	if [[ $fmt == md ]]; then
		echo "| contender | seg/s | MB/s | x baseline | x limit | send CPU s/GB | recv CPU s/GB | CPU ms/seg (send+recv) | ack p50 ms | ack p99 ms | ack max ms |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	else
		printf '%-15s %7s %6s %7s %7s %9s %9s %9s %8s %8s %8s\n' contender seg/s MB/s \
			"x base" "x limit" "sndCPU/GB" "rcvCPU/GB" "CPUms/seg" "p50 ms" "p99 ms" \
			"max ms"
	fi
	for c in $(contenders); do
		ms=$(ms_per_seg "$c")
		if [[ $fmt == md ]]; then
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" \
				"$(median "$c" 4)" "$(median "$c" 5)" "$(median_ratio "$c")" \
				"$(median_limit_ratio "$c")" "$(median "$c" 6)" "$(median "$c" 7)" "$ms" \
				"$(median "$c" 8)" "$(median "$c" 9)" "$(median "$c" 10)"
		else
			printf '%-15s %7s %6s %7s %7s %9s %9s %9s %8s %8s %8s\n' "$c" \
				"$(median "$c" 4)" "$(median "$c" 5)" "$(median_ratio "$c")" \
				"$(median_limit_ratio "$c")" "$(median "$c" 6)" "$(median "$c" 7)" "$ms" \
				"$(median "$c" 8)" "$(median "$c" 9)" "$(median "$c" 10)"
		fi
	done
}

# limit_note: how the limits were measured (the chunk and depth of limit-disk, from its
# last run), then walship's fraction of min(disk, network) in each run, one line per run;
# nothing without both limits.
limit_note() {
	local params runs
	runs=$(limit_ratios walship | awk '{printf "run %s: %s x (disk %s, network %s seg/s)\n",
		$1, $2, $3, $4}')
	[[ -n "$runs" ]] || return 0
	params=$(cat "$RUN_DIR/limit-disk.params" 2>/dev/null || echo "chunk - depth -")
	# shellcheck disable=SC2086  # "chunk N depth N"
	set -- $params
	echo "limits: limit-disk writes from memory with O_DIRECT, $2-byte chunks" \
		"(WIRE_CHUNK_SIZE), $4 in flight (the replica's io_buffers, registered buffers)," \
		"fdatasync, rename and directory fsync per file; limit-net sends from memory over" \
		"the veth to a receiver that discards, one ack per file; walship / min(disk," \
		"network), per run:"
	printf '%s\n' "$runs"
}

# goals: one line per issue-7 goal: "goal | measured | met".
goals() {
	local wr ws pg pgc wc wp99 f1 fmax
	wr=$(median_ratio walship)
	ws=$(median walship 4)
	pg=$(median pgbr-sync-off 4)
	# CPU per segment, both hosts (ms).
	wc=$(ms_per_seg walship)
	pgc=$(ms_per_seg pgbr-sync-off)
	wp99=$(median walship 9)
	# Without a baseline in the run (BENCH_CONTENDERS), nothing to compare: "-", not NO.
	awk -v v="$wr" 'BEGIN {
		if (v == "-") { print "throughput >= 0.9 x baseline | - | -"; exit }
		printf "throughput >= 0.9 x baseline | %s x | %s\n", v, (v >= 0.9) ? "yes" : "NO" }'
	awk -v a="$ws" -v b="$pg" 'BEGIN {
		if (b == "-" || b == 0) { print "throughput >= 3 x pgBackRest sync, compression off | - | -"; exit }
		printf "throughput >= 3 x pgBackRest sync, compression off | %.2f x (%s vs %s seg/s) | %s\n", a / b, a, b, (a / b >= 3) ? "yes" : "NO" }'
	awk -v a="$wc" -v b="$pgc" 'BEGIN {
		if (b == "-" || b == 0) { print "CPU per segment <= 1/5 of pgBackRest sync, compression off | - | -"; exit }
		printf "CPU per segment <= 1/5 of pgBackRest sync, compression off | %.2f of it (%s vs %s ms/seg, both hosts) | %s\n", a / b, a, b, (a / b <= 0.2) ? "yes" : "NO" }'
	awk -v v="$wp99" 'BEGIN {printf "ack p99 < 100 ms | %s ms | %s\n", v, (v == "-") ? "-" : (v < 100) ? "yes" : "NO"}'
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
	# Issue 15: the sender and the receiver against the plain copy of the same run, the CPU
	# per segment on a quiet machine, the acknowledgement on a loaded one (BENCH_LOAD).
	if contenders | grep -x baseline >/dev/null; then
		# plain-send: the same plain sender to a receiver that keeps up (run-bench.sh's
		# run_net), the reference that does not depend on the baseline receiver's speed.
		awk -v ws="$(median walship 6)" -v wr="$(median walship 7)" \
			-v bs="$(median baseline 6)" -v br="$(median baseline 7)" \
			-v ps="$(contenders | grep -x plain-send >/dev/null && median plain-send 6 || echo -)" \
			-v ms="$(contenders | grep -x walship-module >/dev/null && median walship-module 6 || echo -)" 'BEGIN {
			printf "sender CPU per GB <= the baseline'"'"'s (issue 15) | walship %s (module %s), baseline %s s/GB (its sender to a receiver that keeps up, plain-send: %s) | %s\n",
				ws, ms, bs, ps, (ws != "-" && ws + 0 <= bs + 0) ? "yes" : "NO"
			printf "receiver CPU per GB <= half the baseline'"'"'s (issue 15) | walship %s, baseline %s s/GB | %s\n",
				wr, br, (wr != "-" && wr + 0 <= br / 2) ? "yes" : "NO" }'
	fi
	local load
	load=$(run_info load)
	if ((${load:-0} > 0)); then
		echo "CPU per segment <= 12 ms on a quiet machine (issue 15) | $wc ms/seg, both hosts, but loaded (BENCH_LOAD=$load) | -"
		awk -v v="$wp99" -v l="$load" 'BEGIN {printf "ack p99 < 100 ms on a loaded machine (issue 15) | %s ms (BENCH_LOAD=%s) | %s\n", v, l, (v == "-") ? "-" : (v < 100) ? "yes" : "NO"}'
	else
		# The machine's floor beside it: the network path alone (limit-net: no file read,
		# no disk) plus the disk alone (limit-disk: no network), each memory to its end.
		awk -v v="$wc" -v n="$(ms_per_seg limit-net)" -v d="$(ms_per_seg limit-disk)" 'BEGIN {
			f = (n == "-" || d == "-") ? "-" : sprintf("%.1f", n + d)
			printf "CPU per segment <= 12 ms on a quiet machine (issue 15) | %s ms/seg, both hosts (floor: limit-net %s + limit-disk %s = %s) | %s\n", v, n, d, f, (v == "-") ? "-" : (v + 0 <= 12) ? "yes" : "NO"}'
		echo "ack p99 < 100 ms on a loaded machine (issue 15) | - (a quiet run: BENCH_LOAD=PCT loads it) | -"
	fi
	# Issue 15: walship against the limits of the same run.
	if contenders | grep -x limit-disk >/dev/null && contenders | grep -x limit-net >/dev/null; then
		awk -v v="$(median_limit_ratio walship)" -v d="$(median limit-disk 4)" \
			-v n="$(median limit-net 4)" -v w="$(median walship 4)" 'BEGIN {
			printf "walship >= 0.9 x min(disk, network) (issue 15) | %s x (walship %s, disk %s, network %s seg/s; median of the per-run ratios) | %s\n",
				v, w, d, n, (v != "-" && v >= 0.9) ? "yes" : "NO" }'
	fi
	# Issue 15: the archive module against archive_command, both behind the archiver.
	# (grep without -q: it reads all, so contenders never writes into a closed pipe)
	if contenders | grep -x walship-module >/dev/null &&
		contenders | grep -x walship-archcmd >/dev/null; then
		awk -v ms="$(median walship-module 4)" -v cs="$(median walship-archcmd 4)" \
			-v m="$(ms_per_seg walship-module)" -v c="$(ms_per_seg walship-archcmd)" 'BEGIN {
			printf "archive module: >= archive_command throughput at lower CPU per segment | %s vs %s seg/s, %s vs %s ms/seg (both hosts) | %s\n", ms, cs, m, c, (ms >= cs && m + 0 < c + 0) ? "yes" : "NO" }'
	fi
}

# sync_medians: one line per synchronous-commit contender with results: its name, then the
# medians over its runs of SYNC_TSV's columns 4 to 16 ("-" where a run has "-" or, from
# before the walsender's or the kernel workers' column, nothing), as median() takes them;
# one awk for all (median() per figure took seconds).
sync_medians() {
	local c
	for c in $(sync_contenders); do
		awk -v c="$c" '$1 == c {n++; for (k = 4; k <= 16; k++) v[k, n] = $k}
			END {
				printf "%s", c
				for (k = 4; k <= 16; k++) {
					dash = 0
					for (i = 1; i <= n; i++) {
						if (v[k, i] == "-" || v[k, i] == "") dash = 1
						x = v[k, i] + 0
						for (j = i - 1; j >= 1 && a[j] > x; j--) {
							a[j + 1] = a[j]
							t[j + 1] = t[j]
						}
						a[j + 1] = x
						t[j + 1] = v[k, i] # as written
					}
					if (dash) printf " -"
					else if (n % 2) printf " %s", t[(n + 1) / 2]
					else printf " %.3f", (a[n / 2] + a[n / 2 + 1]) / 2
				}
				printf "\n"
			}' "$SYNC_TSV"
	done
}

# sync_rows: sync_medians in the tables' column order (the walsender's share after the
# sending side's CPU it is part of, the kernel workers after both sides).
sync_rows() {
	sync_medians | awk '{print $1, $2, $3, $4, $5, $6, $7, $13, $8, $9, $14, $10, $11, $12}'
}

# sync_table FORMAT: the table of medians of the synchronous-commit contenders, as text or
# as Markdown (FORMAT = text | md).
sync_table() {
	if [[ $1 == md ]]; then
		echo "| contender | TPS | latency p50 ms | latency p99 ms | latency max ms | WAL MB/s | send CPU s/GB | of which walsender | recv CPU s/GB | of which apply | kernel workers s/GB | flush lag p50 ms | flush lag p99 ms | flush lag max ms |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		sync_rows | awk '{printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n"}'
	else
		{
			echo contender TPS "p50-ms" "p99-ms" "max-ms" "WAL-MB/s" "sndCPU/GB" "(walsnd)" \
				"rcvCPU/GB" "(apply)" "kwrk/GB" "lag-p50" "lag-p99" "lag-max"
			sync_rows
		} | awk '{printf "%-21s %8s %7s %7s %7s %8s %9s %8s %9s %8s %8s %8s %8s %8s\n",
			$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14}'
	fi
}

# sync_goals: one line per issue-13 goal: "goal | measured | met" (walship against the
# PostgreSQL standby and pg_receivewal; "-" where one has no result).  CPU: walship's two
# sides against the walsender + walreceiver, that is the standby's receiving side without
# the startup process's replay, which walship does not do; the machine's kernel workers
# are given beside it, in neither.  A last line, no goal, gives sync-receivewal-relay's
# figures: the cost of walship's topology alone.
sync_goals() {
	sync_medians | awk '
		# Fields: name tps p50 p99 max wal snd rcv apply lag-p50 lag-p99 lag-max walsender
		# kworkers.
		{for (i = 2; i <= NF; i++) m[$1, i] = $i; has[$1] = 1}
		function ok(cond) { return cond ? "yes" : "NO" }
		function g(c, i) { return has[c] ? m[c, i] : "-" }
		END {
			w = "sync-walship"; s = "sync-standby"; r = "sync-receivewal"
			all = has[w] && has[s] && has[r]
			msg = sprintf("walship %s, standby %s, pg_receivewal %s", g(w, 2), g(s, 2), g(r, 2))
			printf "TPS >= standby and pg_receivewal | %s | %s\n", msg,
				all ? ok(m[w, 2] + 0 >= m[s, 2] && m[w, 2] + 0 >= m[r, 2]) : "-"
			msg = sprintf("walship %s, standby %s, pg_receivewal %s ms", g(w, 4), g(s, 4), g(r, 4))
			printf "commit latency p99 <= standby and pg_receivewal | %s | %s\n", msg,
				all ? ok(m[w, 4] + 0 <= m[s, 4] && m[w, 4] + 0 <= m[r, 4]) : "-"
			cw = has[w] ? sprintf("%.3f", m[w, 7] + m[w, 8]) : "-"
			cs = has[s] ? sprintf("%.3f", m[s, 7] + m[s, 8] - m[s, 9]) : "-"
			printf "CPU per GB of WAL < walsender + walreceiver | walship %s, walsender + walreceiver %s s/GB (both hosts; kernel workers, machine-wide, in neither: walship %s, standby %s) | %s\n",
				cw, cs, g(w, 14), g(s, 14), (has[w] && has[s]) ? ok(cw + 0 < cs + 0) : "-"
			# The same with the kernel workers: the walship replica flushes its direct writes
			# in a kworker (RWF_DSYNC), where the walreceiver flushes in its own process.
			kw = has[w] ? sprintf("%.3f", cw + m[w, 14]) : "-"
			ks = has[s] ? sprintf("%.3f", cs + m[s, 14]) : "-"
			printf "  the same, kernel workers counted (machine-wide; not the goal) | walship %s, walsender + walreceiver %s s/GB | %s\n",
				kw, ks, (has[w] && has[s]) ? ok(kw + 0 < ks + 0) : "-"
			lw = g(w, 11)
			ls = g(s, 11)
			lagok = lw != "-" && ls != "-"
			printf "flush lag p99 <= standby | walship %s, standby %s ms (pg_receivewal %s) | %s\n",
				lw, ls, g(r, 11), lagok ? ok(lw + 0 <= ls + 0) : "-"
			# What the topology of walship costs with none of its work: pg_receivewal behind a
			# byte relay where the primary walshipd runs.
			x = "sync-receivewal-relay"
			if (has[x])
				printf "(reference, no goal) the topology of walship alone: pg_receivewal behind a byte relay | TPS %s; CPU %.3f s/GB (walsender %s, relay %.3f, pg_receivewal %s), walsender + walreceiver %s | -\n",
					m[x, 2], m[x, 7] + m[x, 8], m[x, 13], m[x, 7] - m[x, 13], m[x, 8], cs
		}'
}

# standby_table FORMAT: the table of medians of the standby contenders (issue 14), as text
# or as Markdown (FORMAT = text | md).
standby_table() {
	local c k
	{
		if [[ $1 == md ]]; then
			echo "| contender | standbys | walsenders | TPS | WAL MB/s | primary postgres CPU % | of which walsenders % | primary walshipd CPU % | appliance CPU % | replay lag p50 ms | replay lag p99 ms | replay lag max ms |"
			echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		else
			echo contender standbys walsnd TPS "WAL-MB/s" "pgCPU%" "(walsnd)" "wsdCPU%" \
				"applCPU%" "lag-p50" "lag-p99" "lag-max"
		fi
		for c in $(standby_contenders); do
			printf '%s' "$c"
			for ((k = 4; k <= 14; k++)); do
				printf ' %s' "$(median "$c" "$k" "$STANDBY_TSV")"
			done
			printf '\n'
		done
	} | if [[ $1 == md ]]; then
		awk 'NR <= 2 {print; next} {printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n"}'
	else
		awk '{printf "%-22s %8s %6s %6s %8s %6s %8s %7s %8s %7s %7s %7s\n",
			$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12}'
	fi
}

# standby_goals: one line per issue-14 benchmark goal: "goal | measured | met" ("-" where
# a contender has no result).
standby_goals() {
	local a d
	# The replay lag through the appliance against straight from the primary: per run (the
	# same load, side by side), then the median of the ratios.
	awk '$1 == "standby-lag-direct" {d[$2] = $13} $1 == "standby-lag-appliance" {a[$2] = $13}
		END {for (r in a) if (r in d && d[r] > 0) printf "%.3f\n", a[r] / d[r]}' \
		"$STANDBY_TSV" | sort -g | awk -v a="$(median standby-lag-appliance 13 "$STANDBY_TSV")" \
		-v d="$(median standby-lag-direct 13 "$STANDBY_TSV")" '{v[NR] = $1}
		END {
			if (NR == 0) { print "replay lag p99 through the appliance <= 1.2 x straight from the primary | - | -"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "replay lag p99 through the appliance <= 1.2 x straight from the primary | %.2f x (median of the per-run ratios; p99 %s vs %s ms) | %s\n",
				m, a, d, m <= 1.2 ? "yes" : "NO" }'
	# Fan-out: the most standbys served by the appliance against the most on the primary.
	a=$(standby_contenders | sed -n 's/^standby-appliance-//p' | sort -n | tail -n 1)
	d=$(standby_contenders | sed -n 's/^standby-direct-//p' | sort -n | tail -n 1)
	[[ -n "$a" && -n "$d" ]] || return 0
	# The primary's CPU per transaction (a loaded machine may not keep pgbench's rate):
	# per run, then the median.
	awk -v a="standby-appliance-$a" -v d="standby-direct-$d" '
		$1 == a || $1 == d {
			v = $8 * 10 / $6 # % of a CPU -> ms per transaction
			if ($1 == a) { na++; va[na] = v; ws = ($10 == "-" ? 0 : $10) * 10 / $6; vs[na] = v + ws }
			else { nd++; vd[nd] = v }
		}
		function med(x, n,   i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
			return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
		}
		END {
			if (!na || !nd) exit
			ma = med(va, na); ms = med(vs, na); md = med(vd, nd)
			printf "primary CPU per transaction with %s standbys on the appliance < with %s on the primary | postgres %.2f ms (%.2f with the primary walshipd) against %.2f ms | %s\n",
				substr(a, 19), substr(d, 16), ma, ms, md, (ma < md) ? "yes" : "NO"
		}' "$STANDBY_TSV"
	awk -v a="$a" -v d="$d" -v wa="$(median "standby-appliance-$a" 5 "$STANDBY_TSV")" \
		-v wd="$(median "standby-direct-$d" 5 "$STANDBY_TSV")" \
		-v la="$(median "standby-appliance-$a" 13 "$STANDBY_TSV")" \
		-v ld="$(median "standby-direct-$d" 13 "$STANDBY_TSV")" 'BEGIN {
		printf "%d standbys on the appliance cost the primary one walsender | %s walsender(s), against %s for %d standbys on the primary | %s\n",
			a, wa, wd, d, wa == 1 ? "yes" : "NO"
		printf "(no goal) standbys'"'"' replay lag p99, %d on the appliance, %d on the primary | %s vs %s ms | -\n", a, d, la, ld
	}'
}

# load_line: what BENCH_LOAD added to the machine during the run, if anything.
load_line() {
	local load
	load=$(run_info load)
	((${load:-0} > 0)) || return 0
	echo "loaded: $(nproc) busy loops took $load % of the $(nproc) CPUs throughout (BENCH_LOAD=$load)"
}

# run_info_now: the facts the report states about a run, as of now, one KEY=VALUE a line:
# date, loadavg, load (BENCH_LOAD), git (the tree measured).  run-bench.sh keeps them at
# the end of a run (report.sh info > RUN_DIR/run.info).
run_info_now() {
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "load=${LOAD:-0}"
	echo "git=$(git -C "$WS_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$WS_ROOT" diff --quiet -- daemon tools include 2>/dev/null || echo ', with uncommitted changes in the tree')"
}

# run_info KEY: KEY as the run noted it (RUN_DIR/run.info), so that BENCH_REPORT_ONLY
# states the run's facts; without that file (a run from before it), as of now.
run_info() {
	local v
	v=$(sed -n "s/^$1=//p" "$RUN_DIR/run.info" 2>/dev/null)
	[[ -n "$v" ]] || v=$(run_info_now | sed -n "s/^$1=//p")
	printf '%s\n' "$v"
}

# report: the text table on stdout and in build/bench-results.txt.
report() {
	{
		echo
		echo "walship benchmark, $(run_info date), $(uname -r), $(nproc) CPUs"
		load_line
		if [[ -s "$RESULTS_TSV" ]]; then # else only synchronous-commit contenders ran
			echo "$SEGMENTS segments of 16 MiB ($((CORPUS_BYTES / 1000000)) MB) of real PostgreSQL 15 WAL per run" \
				"(fan-out: $FANOUT_SEGMENTS); median of $RUNS runs, contenders alternated"
			echo
			table text
			limit_note | awk 'NR == 1' | fold -s -w 90 | sed 's/ $//; 1!s/^/  /'
			limit_note | awk 'NR > 1' | sed 's/^/  /'
			echo
			echo "goals (issue 7):"
			goals | sed 's/^/  /'
			echo
			echo "every run (contender run wall_s seg/s MB/s sendCPU/GB recvCPU/GB p50 p99 max replicas):"
			sed 's/^/  /' "$RESULTS_TSV"
		fi
		if [[ -s "$SYNC_TSV" ]]; then
			echo
			echo "synchronous commit (issue 13): pgbench -N -c 8 -j 2, $SYNC_SECONDS s per run," \
				"synchronous_commit = on, one synchronous standby; transaction latency in ms," \
				"CPU s per GB of WAL; flush lag (from positions, ms) over $SYNC_LAG_SECONDS s" \
				"with synchronous_commit = off; median of $RUNS runs"
			echo
			sync_table text
			echo
			echo "goals (issue 13):"
			sync_goals | sed 's/^/  /'
			echo
			echo "every run (contender run wall_s tps p50 p99 max WAL-MB/s sendCPU/GB recvCPU/GB applyCPU/GB lag-p50 lag-p99 lag-max walsenderCPU/GB kworkerCPU/GB):"
			sed 's/^/  /' "$SYNC_TSV"
		fi
		if [[ -s "$STANDBY_TSV" ]]; then
			echo
			echo "standbys (issue 14): PostgreSQL 15 standbys streaming from the appliance" \
				"(pg_listen) or from the primary under pgbench -R $STANDBY_RATE (TPC-B, scale" \
				"$STANDBY_SCALE), $STANDBY_SECONDS s per run; CPU in % of one CPU over the load;" \
				"replay lag (ms) against the primary's flush timeline; median of $RUNS runs"
			echo
			standby_table text
			echo
			echo "goals (issue 14):"
			standby_goals | sed 's/^/  /'
			echo
			echo "every run (contender run wall_s standbys walsenders tps WAL-MB/s pgCPU% walsndCPU% wsdCPU% applCPU% lag-p50 lag-p99 lag-max):"
			sed 's/^/  /' "$STANDBY_TSV"
		fi
	} | tee "$RESULTS"
	log "results written to $RESULTS; logs in $RUN_DIR"
}

# doc FILE: docs/benchmarks.md, from this run.
doc() {
	local f=$1 cmd
	cmd="sudo make bench"
	[[ $SEGMENTS != 500 || $RUNS != 3 ]] && cmd="sudo BENCH_SEGMENTS=$SEGMENTS BENCH_RUNS=$RUNS make bench"
	{
		echo "# Benchmarks"
		echo
		echo "Generated by \`make bench\` (test/bench/run-bench.sh runs the contenders, test/bench/report.sh"
		echo "writes this page and test/bench/plot.sh the plots) on $(run_info date); do not edit by"
		echo "hand: run it again. Issue 7: walship against what users run today, on the same real WAL,"
		echo "with ratios to the plain baseline of the same run (the machine is shared and noisy: the"
		echo "ratios within one run are what count). Measurements by hand around the runs (single"
		echo "contenders, two versions side by side, profiles) are in docs/benchmark-notes.md."
		echo
		echo "## Machine and versions"
		echo
		echo "- CPU: $(lscpu | awk -F': *' '/^Model name/ {print $2; exit}'), $(nproc) CPUs;" \
			"RAM $(free -g | awk '/^Mem:/ {print $2}') GiB; load average at the end" \
			"$(run_info loadavg) (other engineers' tests ran meanwhile)"
		echo "- Kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
		load_line | sed 's/^l/- L/'
		echo "- Store: $(df --output=source,fstype "$RUN_DIR" | tail -n 1 | tr -s ' ') (the receivers'" \
			"stores and the pgBackRest repository: the same disk as the corpus)"
		echo "- Hosts: network namespaces, the sender with a bridge, receivers on veth pairs"
		echo "- walship $("$WALSHIP" --version | awk '{print $2}') (git $(run_info git))," \
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
		echo "- $RUNS runs; in each run every contender once, in this order (the sync-*"
		echo "  contenders rotate their order from one run to the next): walship,"
		echo "  walship-async, walship-probes, walship-map, walship-archcmd, walship-module,"
		echo "  pgBackRest (5 variants), baseline, cp, limit-disk, limit-net, plain-send,"
		echo "  streaming, sync-standby, sync-receivewal, sync-receivewal-relay, sync-walship,"
		echo "  fan-out 1 2 4 8, standby-lag,"
		echo "  standby-appliance-N, standby-direct-N. Each figure"
		echo "  is the median over the runs; \"x baseline\" is"
		echo "  the median of the per-run ratio to the baseline's seg/s of the same run, \"x limit\""
		echo "  the median of the per-run ratio to min(limit-disk, limit-net) seg/s of the same"
		echo "  run (issue 15's goal: walship >= 0.9 x it)."
		echo "- CPU: cpuacct cgroups around everything each side runs (daemons, every push or"
		echo "  archive-push process with what it forks, pgBackRest's async workers, the"
		echo "  \`pgbackrest server\` and its children); for streaming, the walsender and"
		echo "  walreceiver processes. Per GB shipped to each replica. CPU ms/seg is sender +"
		echo "  receiver per 16 MiB segment. limit-disk's is the helper's own, counted from its"
		echo "  clock's start: not its mapping and locking of the corpus before it."
		echo "- Percentiles are nearest-rank over one run's samples: of fewer than 100 samples"
		echo "  (fan-out's ${FANOUT_SEGMENTS} segments, a synchronous run's flush lag, one sample per"
		echo "  primary flush advance), p99 is their maximum.  walship-archcmd's and"
		echo "  walship-module's latencies come from file times of the kernel's coarse clock:"
		echo "  multiples of its tick (4 ms here)."
		echo "- Acknowledgement latency: archive_command start until it returns 0 (asynchronous"
		echo "  contenders return before the receiver has the file; their throughput runs until"
		echo "  the receiver has every file). Streaming: pg_stat_replication.flush_lag sampled"
		echo "  every 0.1 s during the load (WAL flushed on the primary until flushed on the"
		echo "  standby); its seg/s is the WAL rate the pgbench load generated, not a capacity."
		echo "- Contenders:"
		echo "  - walship: sync_replicas = 1, probes = off, send_source = buffers (default);"
		echo "    walship-async: sync_replicas = 0, the replica connected and registered, a push"
		echo "    returns once the replica has the file or the primary's spool holds it for it"
		echo "    (spool_delay, default 200 ms: a replica that keeps up is waited for, so no copy"
		echo "    is made); walship-probes: probes = on in both daemons; walship-map: send_source"
		echo "    = map."
		echo "  - walship-archcmd, walship-module: walship (as the walship contender) behind a real"
		echo "    PostgreSQL 15 archiver: a fresh cluster (pg_resetwal moves its own WAL past the"
		echo "    corpus) with the corpus linked into pg_wal and marked ready, started in the"
		echo "    sender's cgroup; archive_command = 'exec walship push %p' (a shell that becomes"
		echo "    the push process, per segment) or archive_library = 'walship_archive' (the archive module: none,"
		echo "    one kept connection). PostgreSQL starts with archiving not configured; the run"
		echo "    lasts from the reload that configures it (SIGHUP) to the last .done, so that"
		echo "    PostgreSQL's start-up, which no other contender has, is not in the figures;"
		echo "    the latency of a segment is the time from the previous .done to its own."
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
		echo "  - limit-disk, limit-net (issue 15): what the machine can do in the same run."
		echo "    limit-disk: bench_baseline disk on the receiver host (its namespace and cgroup)"
		echo "    writes every segment, mapped and locked in memory before the clock starts, to"
		echo "    the receiver's store as the best local writer would and as walship's replica"
		echo "    does: O_DIRECT, WIRE_CHUNK_SIZE chunks through io_uring with as many writes in"
		echo "    flight as the replica's io_buffers (its registered buffers; both figures are in"
		echo "    the note under the table), fdatasync, rename, directory fsync per file; no"
		echo "    network. limit-net:"
		echo "    bench_baseline sendmem/recvnull, each segment from memory over the same veth"
		echo "    between the same namespaces to a receiver that reads and discards it, one ack"
		echo "    per file (the baseline's wire format); no disk. Their CPU per segment added up"
		echo "    is the floor the CPU-per-segment goal is read against: a segment moved over"
		echo "    the network and written to disk, before any file is read or byte checked."
		echo "  - plain-send: the baseline's sender (read() and write()) to limit-net's discarding"
		echo "    receiver: the plain sender's CPU when its receiver keeps up. The baseline's"
		echo "    receiver, slow at its buffered writes, acknowledges from its own context and the"
		echo "    sender's queued data goes out from there, so the baseline's sender CPU is lower"
		echo "    than the same sender's beside a fast receiver (docs/benchmark-notes.md)."
		echo "  - streaming: PostgreSQL 15 primary on the sender, standby (pg_basebackup) on"
		echo "    the receiver, fsync on; $STREAM_SECONDS s of pgbench load (scale $STREAM_SCALE) per run."
		echo "  - fanout-N: walship to N replica hosts, sync_replicas = N, $FANOUT_SEGMENTS segments"
		echo "    (every replica keeps a full copy: 8 x $SEGMENTS segments would not fit the disk)."
		echo "  - sync-standby, sync-receivewal, sync-walship (issue 13, test/bench/sync.sh):"
		echo "    synchronous commit. A PostgreSQL 15 primary on the sender (fsync on, pgbench"
		echo "    scale $STREAM_SCALE), synchronous_commit = on and synchronous_standby_names naming"
		echo "    exactly one synchronous standby on the receiver, each in turn: a PostgreSQL 15"
		echo "    standby streaming from it (a fresh pg_basebackup each run); \`pg_receivewal"
		echo "    --synchronous --slot\` (flushes and reports at once); walship: a primary walshipd"
		echo "    streaming from PostgreSQL (pg_conninfo, a slot) and a replica walshipd,"
		echo "    sync_replicas = 1; and, as a reference for walship's topology (not a contender of"
		echo "    the goals), sync-receivewal-relay: the same pg_receivewal connected through a"
		echo "    byte relay on the sender (socat from a TCP port to PostgreSQL's Unix socket, in"
		echo "    the sender's cgroup), one more process on the path as the primary walshipd is,"
		echo "    with none of its work. Each run: pgbench_history truncated, CHECKPOINT, then"
		echo "    \`pgbench -n -N -c 8 -j 2 -T $SYNC_SECONDS -l\` (TPS as pgbench reports it; transaction"
		echo "    latency p50/p99/max from its per-transaction log). CPU per GB of the WAL the load"
		echo "    generated, until the contender has flushed it: sending side the walsender (from"
		echo "    /proc) plus, for walship, the primary walshipd (for the relay, socat; cgroup);"
		echo "    receiving side the walreceiver and the startup process (/proc; \"apply\" is the"
		echo "    startup process, WAL replay, alone), pg_receivewal or the replica walshipd"
		echo "    (cgroup). Then"
		echo "    $SYNC_LAG_SECONDS s of the same load with synchronous_commit = off in its sessions,"
		echo "    the flush lag from positions: every 2 ms a session on the primary notes its flush"
		echo "    position and the contender's (pg_stat_replication.flush_lsn); each new position"
		echo "    flushed is timed until the contender's reaches it (the same measure for the three;"
		echo "    pg_stat_replication.flush_lag is not: it is cleared only for a client reporting"
		echo "    everything applied, and walship and pg_receivewal report apply 0)."
		echo "  - standby-lag, standby-appliance-N, standby-direct-N (issue 14, test/bench/standby.sh):"
		echo "    PostgreSQL 15 standbys (copies of one base backup, shared_buffers = 16MB) on a"
		echo "    third host, streaming from the appliance (a replica walshipd's pg_listen on the"
		echo "    receiver, fed by a primary walshipd streaming from PostgreSQL with pg_conninfo"
		echo "    and a slot) or straight from a PostgreSQL 15 primary on the sender (fsync on),"
		echo "    under \`pgbench -n -c 4 -j 2 -R $STANDBY_RATE\` (scale $STANDBY_SCALE) for $STANDBY_SECONDS s,"
		echo "    every standby caught up first. standby-lag: one standby on each path side by"
		echo "    side, the same load; standby-appliance-N: N on the appliance; standby-direct-N:"
		echo "    N on the primary (the primary walshipd stopped). CPU in % of one CPU over the"
		echo "    load: the primary's postgres processes (a cgroup around its postmaster), its"
		echo "    walsenders alone (/proc), the primary walshipd and the appliance (cgroups)."
		echo "    Replay lag: not pg_stat_replication.replay_lag, which for the appliance's"
		echo "    standbys is measured on the appliance (without the hop from the primary) and is"
		echo "    reported only every wal_receiver_status_interval; instead one timeline for both"
		echo "    paths: the primary's pg_current_wal_flush_lsn() sampled every 20 ms, each"
		echo "    standby's pg_last_wal_replay_lsn() every 50 ms (same clock: namespaces of one"
		echo "    machine); a sample's lag is how long before it the primary had flushed the first"
		echo "    byte the standby had not replayed (interpolated between the primary's samples,"
		echo "    so within about 20 ms; 0 when all was replayed); p50/p99/max over every sample of"
		echo "    every standby of the contender."
		echo
		if [[ -s "$RESULTS_TSV" ]]; then # else only synchronous-commit contenders ran
			echo "## Results"
			echo
			table md
			echo
			if [[ -n "$(limit_note)" ]]; then
				limit_note | sed '1!s/^/- /'
				echo
			fi
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
		fi
		if [[ -s "$SYNC_TSV" ]]; then
			echo "## Synchronous commit (issue 13)"
			echo
			echo "\`pgbench -N -c 8 -j 2\`, $SYNC_SECONDS s per run, synchronous_commit = on, the one"
			echo "synchronous standby on the receiver host; CPU in seconds per GB of WAL (the sending"
			echo "side is the walsender, plus the primary walshipd for walship; the receiving side the"
			echo "walreceiver and startup, pg_receivewal, or the replica walshipd; the kernel workers"
			echo "are the whole machine's kworker threads, in neither side); flush lag over"
			echo "$SYNC_LAG_SECONDS s with synchronous_commit = off. Median of $RUNS runs."
			echo
			sync_table md
			echo
			echo "| goal (issue 13) | measured | met |"
			echo "|---|---|---|"
			sync_goals | sed 's/^/| /; s/$/ |/'
			echo
		fi
		if [[ -s "$STANDBY_TSV" ]]; then
			echo "## Standbys served by the appliance (issue 14)"
			echo
			echo "\`pgbench -n -c 4 -j 2 -R $STANDBY_RATE\` (scale $STANDBY_SCALE), $STANDBY_SECONDS s per run; standbys on a"
			echo "third host; CPU in % of one CPU over the load; replay lag against the primary's"
			echo "flush timeline. Median of $RUNS runs."
			echo
			standby_table md
			echo
			echo "| goal (issue 14) | measured | met |"
			echo "|---|---|---|"
			standby_goals | sed 's/^/| /; s/$/ |/'
			echo
		fi
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
		if [[ -s "$RESULTS_TSV" ]]; then
			echo '```'
			echo "contender run wall_s seg/s MB/s sendCPU/GB recvCPU/GB p50 p99 max replicas"
			cat "$RESULTS_TSV"
			echo '```'
			echo
		fi
		if [[ -s "$SYNC_TSV" ]]; then
			echo '```'
			echo "contender run wall_s tps p50 p99 max WAL-MB/s sendCPU/GB recvCPU/GB applyCPU/GB lag-p50 lag-p99 lag-max walsenderCPU/GB kworkerCPU/GB"
			cat "$SYNC_TSV"
			echo '```'
			echo
		fi
		if [[ -s "$STANDBY_TSV" ]]; then
			echo '```'
			echo "contender run wall_s standbys walsenders tps WAL-MB/s pgCPU% walsndCPU% wsdCPU% applCPU% lag-p50 lag-p99 lag-max"
			cat "$STANDBY_TSV"
			echo '```'
		fi
		echo
		echo "## Reproduce"
		echo
		echo '```'
		echo "sudo scripts/install-deps.sh    # PostgreSQL 15, pgbackrest, gnuplot-nox, ..."
		echo "make"
		echo "$cmd    # 45 minutes to over an hour here; writes this file and docs/bench-*.png"
		echo '```'
		echo
		echo "Knobs (environment): BENCH_SEGMENTS (500), BENCH_RUNS (3), BENCH_FANOUT (\"1 2 4 8\"),"
		echo "BENCH_FANOUT_SEGMENTS (50), BENCH_STREAM_SECONDS (20), BENCH_SYNC_SECONDS (20),"
		echo "BENCH_SYNC_LAG_SECONDS (10), BENCH_STANDBY_SECONDS (20), BENCH_STANDBY_FANOUT (\"1 4 8\"),"
		echo "BENCH_STANDBY_DIRECT (\"8\"), BENCH_STANDBY_RATE (200), BENCH_STANDBY_SCALE (10),"
		echo "BENCH_CONTENDERS (shell patterns: \"sync-*\", \"standby-*\"), BENCH_PGBR, BENCH_PROBES,"
		echo "BENCH_LOAD (0: a quiet machine; PCT: busy loops capped at PCT % of all CPUs);"
		echo "see the head of test/bench/run-bench.sh. \`BENCH_REPORT_ONLY=1\` writes this page and the"
		echo "plots again from the last run's results. \`make check\` runs a smoke version"
		echo "(test/bench/smoke.sh: 4 segments, one run, every contender but the standby ones and three of"
		echo "the five pgBackRest ones)."
	} >"$f"
	log "report written to $f"
}

case "${1:-}" in
results)
	report
	;;
doc)
	doc "${2:?usage: report.sh doc FILE}"
	;;
info)
	run_info_now
	;;
*)
	echo "usage: $0 results | doc FILE | info" >&2
	exit 2
	;;
esac
