#!/bin/bash
# The plots of a benchmark run, with gnuplot (test/bench/run-bench.sh runs it; the
# settings come in the environment, see test/bench/results.sh):
#
#   plot.sh DIR    bench-throughput.png, bench-fanout.png and bench-latency-cdf.png in DIR
#
# Without gnuplot it says so and makes none.
set -euo pipefail
# shellcheck source=test/bench/results.sh
. "$(dirname "$0")/results.sh"

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
		[walship-probes]="lw 2 lc rgb '#7733aa'" [walship-map]="lw 2 lc rgb '#aa77dd'"
		[pgbr-sync-off]="lw 2 dt 2 lc rgb '#ff0066'" [pgbr-sync-none]="lw 2 dt 2 lc rgb '#cc0000'"
		[pgbr-sync-lz4]="lw 2 dt 2 lc rgb '#ff7700'" [pgbr-async-off]="lw 2 dt 4 lc rgb '#aa00aa'"
		[pgbr-async-none]="lw 2 dt 4 lc rgb '#990033'" [pgbr-async-lz4]="lw 2 dt 4 lc rgb '#ddaa00'"
		[baseline]="lw 3 lc rgb '#000000'" [cp]="lw 2 dt 3 lc rgb '#777777'"
		[limit-disk]="lw 2 dt 3 lc rgb '#996600'" [limit-net]="lw 2 dt 3 lc rgb '#009966'"
		[plain-send]="lw 1 dt 3 lc rgb '#444444'"
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

plots "${1:?usage: plot.sh DIR}"
