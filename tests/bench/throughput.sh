#!/bin/bash
# throughput — the example job's end-to-end rate against the embedded Kafka,
# gated (live gate, every record through bg_gate_admit) versus the same job
# with the gate bypassed (--no-gate), in the same run. 200k records are
# pre-loaded over 8 partitions (25k each, under the mock's 100k retention);
# a run is timed from the job's first status (ready, consuming) until all
# results are delivered.
# Prints throughput.ungated / throughput.gated (records/s) and their ratio.
# SPDX-License-Identifier: LGPL-2.1-or-later
set -uo pipefail
BG_TEST_TMPDIR=$(mktemp -d)
export BG_TEST_TMPDIR
. "${BG_TOP_SRCDIR:-$(dirname "$0")/../..}/tests/test-example-lib.sh"
trap 'cleanup; rm -rf "$BG_TEST_TMPDIR"' EXIT
N=200000
ROUNDS=${BENCH_ROUNDS:-2}
start_mock in:8 $(for r in $(seq $ROUNDS); do echo outg$r:8 outu$r:8; done)
"$LOADGEN" -b "$BS" -t in -n $N -k 1000 -q >/dev/null || { echo "error: load failed" >&2; exit 1; }

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
run () { # run OUTPUT [--no-gate]: prints records/s
  local out=$1; shift
  local t0 t1 jp
  "$JOB" -b "$BS" -i in -o "$out" --status-file="$T/$out.json" --status-interval=0.02 "$@" \
    2>"$T/$out.err" & jp=$!
  # Timed from READY (the first status file), so connection set-up, equal
  # for both variants, does not dilute the difference.
  wait_until 30 test -s "$T/$out.json"
  t0=$(now_ms)
  wait_until 60 eval "consumed_all '$T/$out.json' $N && [ \"\$(status_num '$T/$out.json' delivered)\" -ge $N ]" \
    || { kill $jp; echo 0; return; }
  t1=$(now_ms)
  kill -TERM $jp; wait $jp
  echo $(( N * 1000 / (t1 - t0) ))
}
best_g=0 best_u=0
for r in $(seq $ROUNDS); do
  # Alternate the order so neither variant always runs on a warmer machine.
  if [ $((r % 2)) = 1 ]; then
    u=$(run outu$r --no-gate); g=$(run outg$r)
  else
    g=$(run outg$r); u=$(run outu$r --no-gate)
  fi
  [ "$u" -gt "$best_u" ] && best_u=$u
  [ "$g" -gt "$best_g" ] && best_g=$g
done
echo "throughput.ungated $best_u records/s"
echo "throughput.gated $best_g records/s"
awk -v g=$best_g -v u=$best_u 'BEGIN { printf "throughput.ratio %.3f\n", u ? g / u : 0 }'
