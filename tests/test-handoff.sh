#!/bin/bash
# [handoff] blue (v1, live) and green (v2, blackhole) run on the same input
# while load continues; both get the same cutover plan through the library
# API (the job's control FIFO applies it with bg_gate_prepare/commit): barriers
# at the current high watermarks plus a lead, prepared in both, then
# committed. The verifier must see blue alone below every barrier, green alone
# at and above it, and no gap, duplicate or order violation.
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/test-example-lib.sh"
echo "1..10"
P=6
LEAD=1500

start_mock hin:$P hout:$P
"$LOADGEN" -b "$BS" -t hin -k 200 -r 8000 -s 5 -q >"$T/load.out" 2>"$T/load.err" & lp=$!; pids+=($lp)

start_job () { # start_job COLOR VERSION MODE
  "$JOB" -b "$BS" -i hin -o hout --color="$1" --version="$2" --mode="$3" \
    --control="$T/$1.ctl" --control-ack="$T/$1.ack" \
    --status-file="$T/$1.json" --status-interval=0.05 2>"$T/$1.err" &
  pids+=($!)
  eval "${1}_pid=$!"
}
start_job blue v1 live
start_job green v2 blackhole
has_consumed () { [ "$(status_pos_sum "$T/$1.json")" -ge "$2" ]; }
check "handoff: both colors consume the live input" \
  wait_until 30 eval 'has_consumed blue 3000 && has_consumed green 3000'

send () { echo "$2" >"$T/$1.ctl"; }
acked () { grep -q "^$2\$" "$T/$1.ack" 2>/dev/null; }
answered () { grep -q " $2 $3\( \|\$\)" "$T/$1.ack" 2>/dev/null; }

# Prepare in both; if either had already passed a barrier (load kept
# coming while we read the watermarks), abort and try again further ahead.
prepared=
for attempt in 1 2 3; do
  id=c$attempt
  barriers=() spec=()
  for p in $(seq 0 $((P - 1))); do
    b=$(( $(high_watermark hin $p) + LEAD * attempt ))
    barriers+=("hin:$p:$b"); spec+=("$p:$b")
  done
  deadline=$(( ($(date +%s) + 60) * 1000000 ))
  send blue "prepare $id outgoing $deadline ${barriers[*]}"
  send green "prepare $id incoming $deadline ${barriers[*]}"
  wait_until 10 eval "answered blue prepare $id && answered green prepare $id"
  if acked blue "ok prepare $id" && acked green "ok prepare $id"; then prepared=$id; break; fi
  send blue "abort $id"; send green "abort $id"
  wait_until 10 eval "answered blue abort $id && answered green abort $id"
done
check "handoff: plan prepared in blue and green" test -n "$prepared"
echo "# barriers ${spec[*]}"

past_barriers () { # past_barriers COLOR: position >= barrier on every partition
  local s p b
  for s in "${spec[@]}"; do
    p=${s%%:*} b=${s#*:}
    [ "$(status_pos "$T/$1.json" "$p")" -ge "$b" ] || return 1
  done
}
check "handoff: green holds at the barriers until the decision" \
  test "$(status_num "$T/green.json" emitted)" = 0

# Commit blue first and let it hand over (it passes every barrier and has
# its results below them delivered) before committing green: without an
# agent, the test does the ordered handoff itself.
send blue "commit $prepared"
check "handoff: blue committed" wait_until 10 acked blue "ok commit $prepared"
check "handoff: blue passed every barrier" wait_until 30 past_barriers blue
wait_until 30 delivered_all "$T/blue.json"
send green "commit $prepared"
check "handoff: green committed" wait_until 10 acked green "ok commit $prepared"
check "handoff: green passed every barrier and emits" \
  wait_until 30 eval 'past_barriers green && [ "$(status_num "$T/green.json" emitted)" -gt 0 ]'

kill -TERM $lp; wait $lp
total=$(sed -n 's/^produced \([0-9]*\) records.*/\1/p' "$T/load.out")
echo "# load: $(cat "$T/load.out")"
check "handoff: both colors consumed the whole input" \
  wait_until 30 eval "has_consumed blue $total && has_consumed green $total"
wait_until 30 delivered_all "$T/blue.json"
wait_until 30 delivered_all "$T/green.json"
kill -TERM $blue_pid $green_pid
wait $blue_pid; rc1=$?; wait $green_pid; rc2=$?
check "handoff: both stop cleanly" test $rc1 -eq 0 -a $rc2 -eq 0

barrier_list=$(IFS=,; echo "${spec[*]}")
"$VERIFY" -b "$BS" -i hin -o hout --json --outgoing=blue --incoming=green \
  --expect-barrier="$barrier_list" --strict-order --strict-dups >"$T/report" 2>"$T/verify.err"
rc=$?
check "handoff: verifier: blue below, green at/above every barrier; 0 gaps, 0 duplicates, 0 order violations" \
  test $rc -eq 0 -a "$(report_num "$T/report" barrier_violations)" = 0 \
  -a "$(report_num "$T/report" order_violations)" = 0 -a "$(report_num "$T/report" gaps)" = 0
[ $rc -eq 0 ] || diag "$T/report"
[ "$tap_failed" = 0 ]
