#!/bin/bash
# [example] the example job against the embedded Kafka, checked end to end by
# bluegreen-verify: live (100k records, exactly once, right state),
# blackhole (computes, emits nothing) and restart from a savepoint mid-stream.
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/test-example-lib.sh"
echo "1..19"

start_mock in:6 out:6 bin:6 bout:6 rin:6 rout:6 gin:6 gout:6

# --- example/live: 100k records over 6 partitions (~17k each: well under the
# mock's 100k-per-partition retention).
"$LOADGEN" -b "$BS" -t in -n 100000 -k 1000 -s 7 -q >"$T/load1.out" 2>"$T/load1.err"
check "example/live: 100000 input records produced" grep -q "delivered 100000, failed 0" "$T/load1.out"
"$JOB" -b "$BS" -i in -o out --mode=live --status-file="$T/live.json" --status-interval=0.1 \
  2>"$T/live.err" & jp=$!; pids+=($jp)
check "example/live: job consumed all input" wait_until 60 consumed_all "$T/live.json" 100000
check "example/live: every result delivered" wait_until 30 delivered_all "$T/live.json"
kill -TERM $jp; wait $jp; rc=$?
check "example/live: clean stop exits 0" test $rc -eq 0
"$VERIFY" -b "$BS" -i in -o out --json --strict-order --strict-dups >"$T/live.report" 2>"$T/verify1.err"
rc=$?
check "example/live: verifier passes (0 gaps, 0 duplicates, right state, in order)" \
  test $rc -eq 0 -a "$(report_num "$T/live.report" outputs)" = 100000 \
  -a "$(report_num "$T/live.report" wrong_state)" = 0 -a "$(report_num "$T/live.report" gaps)" = 0
[ $rc -eq 0 ] || diag "$T/live.report"

# --- example/blackhole: positions advance, nothing reaches the output.
"$LOADGEN" -b "$BS" -t bin -n 20000 -k 100 -s 3 -q >/dev/null 2>"$T/load2.err"
"$JOB" -b "$BS" -i bin -o bout --mode=blackhole --color=green --version=v2 \
  --status-file="$T/bh.json" --status-interval=0.1 2>"$T/bh.err" & jp=$!; pids+=($jp)
check "example/blackhole: positions advance to the end of the input" \
  wait_until 60 consumed_all "$T/bh.json" 20000
check "example/blackhole: all dropped, none emitted" \
  test "$(status_num "$T/bh.json" dropped)" = 20000 -a "$(status_num "$T/bh.json" emitted)" = 0
kill -TERM $jp; wait $jp
"$VERIFY" -b "$BS" -i bin -o bout --json >"$T/bh.report" 2>"$T/verify2.err"
rc=$?
check "example/blackhole: output topic is empty" test "$(report_num "$T/bh.report" outputs)" = 0
check "example/blackhole: verifier reports every input as a gap (exit 1)" \
  test $rc -eq 1 -a "$(report_num "$T/bh.report" gaps)" = 20000

# --- example/restore: stop with SIGTERM mid-stream while load continues,
# restart from the savepoint.
"$LOADGEN" -b "$BS" -t rin -n 60000 -k 500 -r 20000 -s 11 -q >"$T/load3.out" 2>"$T/load3.err" &
lp=$!; pids+=($lp)
"$JOB" -b "$BS" -i rin -o rout --savepoint-dir="$T/sp" --status-file="$T/r1.json" \
  --status-interval=0.1 2>"$T/r1.err" & jp=$!; pids+=($jp)
wait_until 30 consumed_all "$T/r1.json" 15000
kill -TERM $jp; wait $jp; rc=$?
check "example/restore: first run stopped cleanly mid-stream with a savepoint" \
  test $rc -eq 0 -a -s "$T/sp/savepoint.json"
first=$(status_pos_sum "$T/r1.json")
"$JOB" -b "$BS" -i rin -o rout --restore="$T/sp" --savepoint-dir="$T/sp" --status-file="$T/r2.json" \
  --status-interval=0.1 2>"$T/r2.err" & jp=$!; pids+=($jp)
wait $lp
check "example/restore: load generator delivered all 60000 records" grep -q "delivered 60000, failed 0" "$T/load3.out"
check "example/restore: restarted job consumed the rest" wait_until 60 consumed_all "$T/r2.json" 60000
wait_until 30 delivered_all "$T/r2.json"
kill -TERM $jp; wait $jp
check "example/restore: restarted job did not re-read the first run's records ($first)" \
  test "$(status_num "$T/r2.json" consumed)" -eq $((60000 - first))
"$VERIFY" -b "$BS" -i rin -o rout --json --strict-order --strict-dups >"$T/r.report" 2>"$T/verify3.err"
rc=$?
check "example/restore: verifier passes across the restart (0 gaps, 0 duplicates, right state)" \
  test $rc -eq 0 -a "$(report_num "$T/r.report" within_duplicates)" = 0
[ $rc -eq 0 ] || diag "$T/r.report"
# --- example/group-takeover: two instances in one consumer group, the second
# joining while load runs. The rebalance moves partitions to the newcomer,
# which has no state for their keys: it rebuilds it from the input up to the
# group's committed offset (no results meanwhile), then continues. The
# verifier checks the state of every result; within-version duplicates from
# the rebalance are allowed (at-least-once consumption in a group). Offsets
# are committed every 200 ms, so the group's committed offset is well past the
# start when the newcomer takes over (with none it would read from the start).
"$LOADGEN" -b "$BS" -t gin -n 36000 -k 300 -r 4000 -s 13 -q >"$T/load4.out" 2>"$T/load4.err" &
lp=$!; pids+=($lp)
"$JOB" -b "$BS" -i gin -o gout --group=g1 --status-file="$T/g1.json" --status-interval=0.1 \
  -X auto.commit.interval.ms=200 2>"$T/g1.err" & ja=$!; pids+=($ja)
wait_until 30 consumed_all "$T/g1.json" 4000
"$JOB" -b "$BS" -i gin -o gout --group=g1 --status-file="$T/g2.json" --status-interval=0.1 \
  -X auto.commit.interval.ms=200 2>"$T/g2.err" & jb=$!; pids+=($jb)
wait $lp
check "example/group-takeover: load generator delivered all 36000 records" \
  grep -q "delivered 36000, failed 0" "$T/load4.out"
# Every partition processed to its end by whichever instance holds it now.
covered () {
  local p hw a b total=0
  for p in 0 1 2 3 4 5; do
    a=$(status_pos "$T/g1.json" $p) b=$(status_pos "$T/g2.json" $p)
    total=$(( total + (a > b ? a : b) ))
  done
  [ "$total" -ge 36000 ]
}
check "example/group-takeover: the two instances consumed the whole input" wait_until 60 covered
check "example/group-takeover: the newcomer rebuilt taken-over partitions' state first" \
  test "$(status_num "$T/g2.json" restored)" -gt 0
wait_until 30 delivered_all "$T/g1.json"; wait_until 30 delivered_all "$T/g2.json"
kill -TERM $ja $jb; wait $ja; wait $jb
"$VERIFY" -b "$BS" -i gin -o gout --json >"$T/g.report" 2>"$T/verify4.err"
rc=$?
check "example/group-takeover: verifier passes (right state, 0 gaps)" \
  test $rc -eq 0 -a "$(report_num "$T/g.report" wrong_state)" = 0 \
  -a "$(report_num "$T/g.report" gaps)" = 0
[ $rc -eq 0 ] || { diag "$T/g.report"; grep -h "partition\|assigned\|revoked" "$T/g1.err" "$T/g2.err" | diag; }
echo "# group-takeover: restored $(status_num "$T/g2.json" restored) records; within-version duplicates $(report_num "$T/g.report" within_duplicates)"

# --- example/transactional-needs-group: transactions commit input offsets
# to a consumer group; a static assignment has none to resume from. (The
# transactional mode itself runs on a real cluster: tests/test-real-kafka.c;
# the mock stores no transactional offsets.)
"$JOB" -b "$BS" -i gin -o gout --assign=all --transactional >/dev/null 2>"$T/txn.err"
rc=$?
check "example/transactional-needs-group: --transactional without a group is refused (exit 2)" \
  test $rc -eq 2 -a -n "$(grep -- '--transactional needs a consumer group' "$T/txn.err")"

[ "$tap_failed" = 0 ]
