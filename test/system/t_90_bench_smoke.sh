#!/bin/bash
# The benchmark harness cannot rot: a short `make bench` (8 real segments, one run of each
# contender) must ship every segment with every contender and print its table.
exec bash "$(dirname "$0")/../bench/smoke.sh"
