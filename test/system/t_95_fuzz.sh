#!/bin/bash
# t_95: hostile input (issue 6).  Builds every libFuzzer target in test/fuzz/ (frame
# decoder, HELLO, config parser, WAL names, page-header validation, access rules, control
# socket requests, PostgreSQL's protocol, a standby's connection to pg_listen, WAL records)
# and runs each from its seed corpus for FUZZ_RUNS inputs (default 1000 here: every seed
# replayed, then mutations; at most FUZZ_SECONDS, default 5), enough to catch a target that
# no longer builds or crashes at once, in about 8 s of CPU for all of them (3 of them the
# standby's connection, whose inputs each run the endpoint over a real connection and
# store); `make fuzz` runs 300 s per target.
# Fails on any crash, sanitizer report, timeout or broken property; the input that did it
# is kept under build/fuzz/artifacts/.  Needs clang with the libFuzzer runtime, nothing
# else: no root, no PostgreSQL.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v clang >/dev/null 2>&1 || { echo "SKIP: clang not found (run scripts/install-deps.sh)"; exit 77; }
probe=$(mktemp -d /tmp/walship-fuzzprobe.XXXXXX)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	>"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >"$probe/out" 2>&1; then
	cat "$probe/out"
	echo "SKIP: clang cannot link -fsanitize=fuzzer here (install libclang-rt-14-dev)"
	exit 77
fi

FUZZ_SECONDS=${FUZZ_SECONDS:-5} FUZZ_RUNS=${FUZZ_RUNS:-1000} test/fuzz/run.sh
echo "t_95: no crash"
