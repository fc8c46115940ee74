#!/bin/bash
# The benchmark harness cannot rot: a short `make bench` (4 real segments, one run of each
# contender) must ship every segment with every contender and print its table.
# test-timeout: 600 (sixteen contenders, each with its own set-up, on a loaded machine)
exec bash "$(dirname "$0")/../bench/smoke.sh"
