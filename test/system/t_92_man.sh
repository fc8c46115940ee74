#!/bin/bash
# t_92: the man pages (man/, issue 16).  Each renders without a warning, through groff
# (-ww: every warning) and through man-db (man --warnings -l), and its .TH names the page
# as its file does, with the version of the programs.  walship.conf(5)'s key reference is what the config table generates
# (scripts/gen-docs.sh --check, as `make docs` writes it).  walship(1) agrees with the
# CLI: one subsection "walship COMMAND" per command of `walship --help` and no other, each
# with the usage lines, every option and every exit code of `walship COMMAND --help`;
# walshipd(8) documents every option of `walshipd --help` and no other.  `make install`
# puts each page into MANDIR's section directory.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

require_cmds groff man python3
[[ -x "$WALSHIPD" && -x "$WALSHIP" ]] || skip "walship not built ($WALSHIPD, $WALSHIP): run make"
MAN=$WS_ROOT/man
pages=("$MAN"/*.[1-8])
((${#pages[@]} == 3)) || fail "expected walship.1, walship.conf.5 and walshipd.8 in man/: ${pages[*]}"

version=$("$WALSHIP" --version)
for page in "${pages[@]}"; do
	name=$(basename "$page")
	grep -q "^\.TH .* \"$version\" " "$page" ||
		fail "$name: .TH does not say \"$version\" (the Makefile's VERSION, walship --version)"
	warnings=$(groff -ww -man -Tutf8 -z "$page" 2>&1)
	[[ -z "$warnings" ]] || fail "groff -ww warns on $name: $warnings"
	warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
	[[ -z "$warnings" ]] || fail "man --warnings -l warns on $name: $warnings"
	th=$(awk '$1 == ".TH" {print tolower($2) "." $3; exit}' "$page")
	[[ "$th" == "$name" ]] || fail "$name: .TH names it $th"
done
log "ok: ${#pages[@]} pages render without a warning (groff -ww, man --warnings -l)"

WALSHIPD=$WALSHIPD "$WS_ROOT/scripts/gen-docs.sh" --check ||
	fail "a generated key reference is stale (above): run make docs"
log "ok: walship.conf(5) and docs/configuration.md hold the config table's key reference"

# render PAGE: the page as plain ASCII, wide, without hyphenation or adjustment, so that
# option names and usage lines come out whole.
render() {
	groff -man -Tascii -rLL=200n -rHY=0 -dAD=l -P-cbou "$1" 2>/dev/null
}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
render "$MAN/walship.1" >"$WORK/walship.1.txt"
render "$MAN/walshipd.8" >"$WORK/walshipd.8.txt"
{
	"$WALSHIP" --help
	for cmd in $("$WALSHIP" --help | awk '/^Commands:/ {on = 1; next} on && NF == 0 {exit}
			on {print $1}'); do
		printf '\f%s\n' "$cmd"
		"$WALSHIP" "$cmd" --help
	done
} >"$WORK/walship-help.txt"
"$WALSHIPD" --help >"$WORK/walshipd-help.txt"

python3 - "$WORK/walship.1.txt" "$MAN/walship.1" "$WORK/walship-help.txt" \
	"$WORK/walshipd.8.txt" "$WORK/walshipd-help.txt" <<-'EOF' ||
	import re, sys

	page_txt, page_src, help_txt, d_txt, d_help = (open(p).read() for p in sys.argv[1:])
	errors = []
	norm = lambda s: " ".join(s.split())
	COMMON = {"-c", "--config", "-h", "--help"}

	def options(text):
	    """Short and long options named in a usage text: -c, --config, ..."""
	    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))

	# walship(1): the subsections of COMMANDS against the commands of walship --help.
	top, *per_cmd = help_txt.split("\f")
	commands = {c.split("\n", 1)[0]: c.split("\n", 1)[1] for c in per_cmd}
	documented = re.findall(r'^\.SS "walship ([a-z]+)"$', page_src, re.M)
	for cmd in sorted(set(commands) - set(documented)):
	    errors.append(f"walship(1) has no subsection for command {cmd}")
	for cmd in sorted(set(documented) - set(commands)):
	    errors.append(f"walship(1) documents command {cmd}, which walship --help lacks")
	# the rendered subsections: from "   walship CMD" to the next heading
	sections = {}
	heads = list(re.finditer(r"^(   walship [a-z]+|[A-Z][A-Z ]+)$", page_txt, re.M))
	for i, m in enumerate(heads):
	    end = heads[i + 1].start() if i + 1 < len(heads) else len(page_txt)
	    sections[m.group(1).strip()] = page_txt[m.end():end]
	synopsis = norm(sections.get("SYNOPSIS", ""))
	for cmd, usage in commands.items():
	    text = sections.get(f"walship {cmd}", "")
	    lines = re.match(r"Usage: (.*?)\n\n", usage, re.S)
	    if not lines:
	        errors.append(f"walship {cmd} --help has no Usage: paragraph")
	        continue
	    for line in lines.group(1).split("\n"):
	        line = norm(line)
	        if line not in norm(text):
	            errors.append(f"walship(1), walship {cmd}: lacks the usage line \"{line}\"")
	        if line not in synopsis:
	            errors.append(f"walship(1) SYNOPSIS lacks \"{line}\"")
	    opts = usage.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0] if "\nOptions:\n" in usage else ""
	    # -c and -h are every command's: OPTIONS documents them once
	    for opt in sorted(options(opts)):
	        where = sections.get("OPTIONS", "") if opt in COMMON else text
	        if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", where):
	            errors.append(f"walship(1), walship {cmd}: lacks option {opt}")
	    codes = re.search(r"Exit codes: (.*)", usage, re.S)
	    for code in re.findall(r"(?:^|; )(\d+) ", norm(codes.group(1)) if codes else ""):
	        if not re.search(rf"^ +{code}\s", text, re.M):
	            errors.append(f"walship(1), walship {cmd}: lacks exit status {code}")
	for opt in sorted(options(top.split("Options:", 1)[1])):
	    if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", sections.get("OPTIONS", "")):
	        errors.append(f"walship(1) OPTIONS lacks {opt} of walship --help")

	# walshipd(8): its options against walshipd --help's usage lines.
	usage = d_help.split("Usage:", 1)[1].split("\n\n", 1)[0]
	d_sections = {}
	heads = list(re.finditer(r"^([A-Z][A-Z ]+)$", d_txt, re.M))
	for i, m in enumerate(heads):
	    end = heads[i + 1].start() if i + 1 < len(heads) else len(d_txt)
	    d_sections[m.group(1)] = d_txt[m.end():end]
	have = options(d_sections.get("OPTIONS", ""))
	want = options(usage) | {"-h", "--help"}
	for opt in sorted(want - have):
	    errors.append(f"walshipd(8) OPTIONS lacks {opt} of walshipd --help")
	for opt in sorted({o for o in have - want if not o.startswith("--config")} - {"--config"}):
	    errors.append(f"walshipd(8) documents option {opt}, which walshipd --help lacks")

	for e in errors:
	    print("ERROR: " + e)
	print(f"walship(1): {len(commands)} commands checked; walshipd(8): {len(want)} options")
	sys.exit(1 if errors else 0)
	EOF
	fail "the man pages and the programs disagree (above)"
log "ok: walship(1) and walshipd(8) agree with walship --help and walshipd --help"

installs=$(make -s -n -C "$WS_ROOT" install DESTDIR=/nonexistent PREFIX=/usr)
for page in "${pages[@]}"; do
	name=$(basename "$page")
	grep -qF "install -D -m 0644 man/$name /nonexistent/usr/share/man/man${name##*.}/$name" \
		<<<"$installs" ||
		fail "make install does not install $name into MANDIR/man${name##*.}"
done
log "ok: make install puts each page into \$(MANDIR)/manN"
