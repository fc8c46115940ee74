#!/bin/bash
# check-layers.sh: fail when a lower layer of the code includes a higher one.
#
# The layer order lives in one place: the table under "## Layers of the code" in
# docs/architecture.md.  Its rows are the layers, lowest first; the second column names
# the folders and files of each layer in backquotes (`daemon/common/`, `tools/`,
# `include/walship/wire.h`).  A C file may include headers of its own layer and of the
# layers above its row, never of a row below.  Includes are written from the include
# roots (`-Idaemon -Iinclude -Ibpf`): "wal/page.h", <walship/wire.h>; a bare "x.h" is the
# file's own folder, else a root's; a relative "../" include is refused (it hides the
# dependency).
#
# Usage: scripts/check-layers.sh [FILE...]   (default: every .c and .h under daemon/,
# tools/ and pgmod/).  Prints one line per breach and exits 1 when there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

TABLE=docs/architecture.md

if (($# > 0)); then
	files=("$@")
else
	mapfile -t files < <(find daemon tools pgmod -name '*.[ch]' | sort)
fi

# One awk over the table, the headers that exist and every file: a shell loop with a
# subshell per include took 13 s of CPU, the longest step before the system tests start.
# Its first input (stdin) holds the table's rows ("ROW" lines) and the headers that exist
# ("HDR" lines, to resolve includes); the files to check follow.
{
	awk '/^## Layers of the code/ {t = 1; next} t && /^## / {exit}
		t && /^\| / && !/^\| layer/ && !/^\|---/ {print "ROW\t" $0}' "$TABLE"
	find daemon include bpf -name '*.h' | sed 's/^/HDR\t/'
} | awk -v table="$TABLE" -F '\t' '
# layer_of(path): the index of the longest table prefix of path, or 0.
function layer_of(path,    i, best, len) {
	best = 0; len = 0
	for (i = 1; i <= np; i++)
		if (substr(path, 1, length(prefix[i])) == prefix[i] && length(prefix[i]) > len) {
			best = i; len = length(prefix[i])
		}
	return best
}
function dirname(path) {
	sub(/\/[^\/]*$/, "", path)
	return path
}
FNR == NR || FILENAME == "-" {
	if ($1 == "ROW") {
		row++
		n = split($2, col, "|")
		layer = col[2]; where = col[3]
		gsub(/^ +| +$/, "", layer)
		while (match(where, /`[^`]*`/)) {
			np++
			prefix[np] = substr(where, RSTART + 1, RLENGTH - 2)
			rank[np] = row; lname[np] = layer
			where = substr(where, RSTART + RLENGTH)
		}
	} else if ($1 == "HDR") {
		exists[$2] = 1
	}
	next
}
FNR == 1 {
	if (np == 0) { print "check-layers: no layers table in " table > "/dev/stderr"; bad = 2; exit 2 }
	nfiles++
	fl = layer_of(FILENAME)
	if (!fl) { print FILENAME ": not in any layer of " table; breaches++ }
}
fl && /^[[:space:]]*#[[:space:]]*include[[:space:]]*("|<walship\/)/ {
	line = $0
	if (match(line, /<walship\/[^>]*>/))
		inc = substr(line, RSTART + 1, RLENGTH - 2)
	else {
		inc = line
		sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
	}
	if (inc ~ /^\.\.\// || inc ~ /\/\.\.\//) {
		print FILENAME ":" FNR ": relative include \"" inc "\" (include from the include roots)"
		breaches++
		next
	}
	if (inc !~ /\// && ((dirname(FILENAME) "/" inc) in exists)) next   # own folder
	target = ""
	if (("daemon/" inc) in exists) target = "daemon/" inc
	else if (("include/" inc) in exists) target = "include/" inc
	else if (("bpf/" inc) in exists) target = "bpf/" inc
	# Generated headers (the BPF skeleton in the build output) belong to probes.
	if (target == "") next
	il = layer_of(target)
	if (!il) {
		print FILENAME ":" FNR ": \"" inc "\" is in no layer of " table
		breaches++
	} else if (rank[il] > rank[fl]) {
		print FILENAME ":" FNR ": " lname[fl] " includes \"" inc "\" of a higher layer (" lname[il] ")"
		breaches++
	}
}
END {
	if (bad) exit bad
	if (breaches > 0) {
		print "check-layers: " breaches " breach(es) of the layer order in " table
		exit 1
	}
	print "check-layers: " nfiles " files follow the layer order of " table
}' - "${files[@]}"
