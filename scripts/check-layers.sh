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
declare -a PREFIXES=() RANKS=() NAMES=()

# Read the table: rank = row number, one prefix per backquoted path in column 2.
row=0
while IFS='|' read -r _ layer where _; do
	row=$((row + 1))
	layer=$(sed 's/^ *//; s/ *$//' <<<"$layer")
	while read -r path; do
		[[ -n "$path" ]] || continue
		PREFIXES+=("$path")
		RANKS+=("$row")
		NAMES+=("$layer")
	done < <(grep -o '`[^`]*`' <<<"$where" | tr -d '`')
done < <(awk '/^## Layers of the code/ {t = 1; next} t && /^## / {exit}
	t && /^\| / && !/^\| layer/ && !/^\|---/ {print}' "$TABLE")
((${#PREFIXES[@]} > 0)) || { echo "check-layers: no layers table in $TABLE" >&2; exit 2; }

# layer_of PATH: print "RANK NAME" of the longest table prefix of PATH, or nothing.
layer_of() {
	local best=-1 len=0 i p
	for i in "${!PREFIXES[@]}"; do
		p=${PREFIXES[$i]}
		if [[ "$1" == "$p"* ]] && ((${#p} > len)); then
			best=$i
			len=${#p}
		fi
	done
	((best >= 0)) && echo "${RANKS[$best]} ${NAMES[$best]}"
	return 0
}

breaches=0
if (($# > 0)); then
	files=("$@")
else
	mapfile -t files < <(find daemon tools pgmod -name '*.[ch]' | sort)
fi
for file in "${files[@]}"; do
	read -r frank fname < <(layer_of "$file") || true
	if [[ -z "${frank:-}" ]]; then
		echo "$file: not in any layer of $TABLE"
		breaches=$((breaches + 1))
		continue
	fi
	while IFS=: read -r line inc; do
		inc=${inc#*\"}
		inc=${inc%%\"*}
		if [[ "$inc" == ../* || "$inc" == */../* ]]; then
			echo "$file:$line: relative include \"$inc\" (include from the include roots)"
			breaches=$((breaches + 1))
			continue
		fi
		[[ "$inc" != */* && -e "$(dirname "$file")/$inc" ]] && continue # own folder
		target=""
		for root in daemon include bpf; do
			if [[ -e "$root/$inc" ]]; then
				target=$root/$inc
				break
			fi
		done
		# Generated headers (the BPF skeleton in the build output) belong to probes.
		[[ -n "$target" ]] || continue
		read -r irank iname < <(layer_of "$target") || true
		if [[ -z "${irank:-}" ]]; then
			echo "$file:$line: \"$inc\" is in no layer of $TABLE"
			breaches=$((breaches + 1))
		elif ((irank > frank)); then
			echo "$file:$line: $fname includes \"$inc\" of a higher layer ($iname)"
			breaches=$((breaches + 1))
		fi
		irank=""
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*("|<walship/)' "$file" |
		sed -E 's/<(walship\/[^>]*)>/"\1"/')
	frank=""
done
if ((breaches > 0)); then
	echo "check-layers: $breaches breach(es) of the layer order in $TABLE"
	exit 1
fi
echo "check-layers: ${#files[@]} files follow the layer order of $TABLE"
