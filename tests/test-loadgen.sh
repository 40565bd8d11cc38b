#!/bin/sh
# test-loadgen.sh — bluegreen-loadgen against the embedded Kafka: every
# record arrives, the same seed gives the same keyed sequence (and a key
# always the same partition), --start-index continues a sequence, --rate
# paces, SIGTERM flushes and exits 0, --partitions and --key-prefix drive
# some partitions alone with their own keys, bad arguments exit 2.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

MOCK="${BG_TOP_BUILDDIR:-.}/bluegreen-kafka-mock"
LOADGEN="${BG_TOP_BUILDDIR:-.}/bluegreen-loadgen"
KCAT="${KCAT:-kcat}"
work="${BG_TEST_TMPDIR:-$(mktemp -d)}"
cd "$work" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check () {
  name="$1"; shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}
skip_all () { echo "1..0 # SKIP $1"; exit 0; }

command -v "$KCAT" >/dev/null 2>&1 || skip_all "kcat not found"
[ -x "$MOCK" ] && [ -x "$LOADGEN" ] || skip_all "programs not built"

wait_for_file () {
  i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && return 1
    sleep 0.05
  done
}

echo "1..12"

"$MOCK" --topic=in1:6 --topic=in2:6 --topic=in3:6 --topic=in4:6 --topic=paced:2 --topic=term:2 --topic=parts:6 \
  --bootstrap-file=bootstrap </dev/null >mock.out 2>mock.err &
mock_pid=$!
trap 'kill -TERM $mock_pid 2>/dev/null' EXIT
if ! wait_for_file bootstrap; then
  echo "Bail out! the mock did not start"; cat mock.err; exit 1
fi
bs=$(cat bootstrap)

# Sum of the high watermarks of TOPIC's partitions 0..N-1.
high_watermark_sum () {
  sum=0
  p=0
  while [ $p -lt "$2" ]; do
    hw=$("$KCAT" -b "$bs" -Q -t "$1:$p:-1" 2>/dev/null | sed -n 's/.* offset \([0-9]*\)$/\1/p')
    [ -n "$hw" ] || { echo -1; return; }
    sum=$((sum + hw))
    p=$((p + 1))
  done
  echo $sum
}
# "partition key value" per record, in offset order within each partition.
dump () {
  "$KCAT" -b "$bs" -C -t "$1" -e -q -f '%p %k %s\n' 2>/dev/null | sort -s -n -k1,1
}

"$LOADGEN" --bootstrap="$bs" --topic=in1 --count=30000 --keys=100 --seed=42 --quiet >run1.out 2>run1.err
rc=$?
check "loadgen: 30000 records produced and delivered, status 0" \
  sh -c 'test "$1" -eq 0 && grep -qx "produced 30000 records (delivered 30000, failed 0)" run1.out' sh $rc
check "loadgen: high watermarks of the 6 partitions sum to 30000" test "$(high_watermark_sum in1 6)" -eq 30000

dump in1 >in1.dump
check "loadgen: keys are key-%05u over 100 keys, values 1..1000" \
  awk 'BEGIN { bad = 0 }
       $2 !~ /^key-000[0-9][0-9]$/ || $3 !~ /^[0-9]+$/ || $3 < 1 || $3 > 1000 { bad = 1 }
       { keys[$2] = 1 }
       END { n = 0; for (k in keys) n++; exit !(bad == 0 && n == 100 && NR == 30000) }' in1.dump
check "loadgen: a key always lands on the same partition" \
  awk '{ if (($2 in part) && part[$2] != $1) bad = 1; part[$2] = $1 } END { exit bad }' in1.dump

"$LOADGEN" --bootstrap="$bs" --topic=in2 --count=30000 --keys=100 --seed=42 --quiet >/dev/null 2>&1
dump in2 >in2.dump
check "loadgen: the same seed produces the identical sequence per partition" cmp -s in1.dump in2.dump

# Two runs that split the sequence at 12345 equal one run.
"$LOADGEN" --bootstrap="$bs" --topic=in3 --count=12345 --keys=100 --seed=42 --quiet >/dev/null 2>&1
"$LOADGEN" --bootstrap="$bs" --topic=in3 --count=17655 --start-index=12345 --keys=100 --seed=42 --quiet \
  >/dev/null 2>&1
dump in3 >in3.dump
check "loadgen: --start-index continues the sequence" cmp -s in1.dump in3.dump

"$LOADGEN" --bootstrap="$bs" --topic=in4 --count=30000 --keys=100 --seed=43 --quiet >/dev/null 2>&1
dump in4 >in4.dump
check "loadgen: another seed gives another sequence" \
  sh -c 'test "$(wc -l < in4.dump)" -eq 30000 && ! cmp -s in1.dump in4.dump'

# Pacing: 2000 records at 2000/s take about a second; only a lower bound is
# asserted (a slow machine may take longer, never shorter).
start=$(date +%s%N)
"$LOADGEN" --bootstrap="$bs" --topic=paced --count=2000 --rate=2000 --quiet >paced.out 2>&1
end=$(date +%s%N)
elapsed_ms=$(( (end - start) / 1000000 ))
echo "# 2000 records at --rate=2000 took $elapsed_ms ms"
check "loadgen: --rate=2000 paces 2000 records over >= 0.9 s" \
  sh -c 'test "$1" -ge 900 && grep -q "delivered 2000, failed 0" paced.out' sh $elapsed_ms

# Unbounded in the background, stopped by SIGTERM: flushes and exits 0, and
# everything it says it delivered is in the topic.
"$LOADGEN" --bootstrap="$bs" --topic=term --rate=5000 --quiet >term.out 2>term.err &
lg_pid=$!
i=0
while [ "$(high_watermark_sum term 2)" -lt 500 ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
kill -TERM $lg_pid
wait $lg_pid
rc=$?
delivered=$(sed -n 's/^produced \([0-9]*\) records (delivered \1, failed 0)$/\1/p' term.out)
echo "# SIGTERM run: status $rc, $(cat term.out)"
in_topic=$(high_watermark_sum term 2)
check "loadgen: SIGTERM flushes, exits 0, all produced records delivered" \
  sh -c 'test "$1" -eq 0 && test -n "$2" && test "$2" -ge 500 && test "$3" = "$2"' sh $rc "$delivered" "$in_topic"

# Two generators side by side: one on partitions 0-2 by the default keys,
# one on 4 alone with its own keys; 3 and 5 get nothing.
"$LOADGEN" --bootstrap="$bs" --topic=parts --count=3000 --keys=30 --partitions=0-1,2 --quiet \
  >parts1.out 2>&1
rc1=$?
"$LOADGEN" --bootstrap="$bs" --topic=parts --count=500 --keys=7 --partitions=4 --key-prefix=sparse- --quiet \
  >parts2.out 2>&1
rc2=$?
dump parts >parts.dump
echo "# --partitions runs: status $rc1 $rc2, per partition: $(cut -d' ' -f1 parts.dump | uniq -c | tr -s ' \n' ' ')"
check "loadgen: --partitions produces only to the listed partitions, every one of them" \
  awk -v rc1=$rc1 -v rc2=$rc2 '
       $1 == 3 || $1 == 5 || $1 > 5 { bad = 1 }
       $1 != 4 && $2 !~ /^key-000[0-2][0-9]$/ { bad = 1 }
       $1 == 4 && $2 !~ /^sparse-0000[0-6]$/ { bad = 1 }
       { n[$1]++; if (($2 in part) && part[$2] != $1) bad = 1; part[$2] = $1 }
       END { exit !(bad == 0 && rc1 == 0 && rc2 == 0 && n[0] > 0 && n[1] > 0 && n[2] > 0 \
                    && n[0] + n[1] + n[2] == 3000 && n[4] == 500) }' parts.dump
check "loadgen: --partitions with a partition the topic lacks exits 2 naming it" \
  sh -c 'timeout 20 "$1" --bootstrap="$2" --topic=parts --count=5 --partitions=2,6 >bad.out 2>bad.err;
         test $? -eq 2 && grep -q "^error: .*no partition 6" bad.err' sh "$LOADGEN" "$bs"

bad_ok=1
for args in "--topic=t --count=-1" "--topic=t --keys=0" "--topic=t --rate=-5" "--topic=t --seed=x" \
    "--topic=t --nope" "--topic=t -X nosuch.setting=1" "--count=5" "--topic=t --partitions=1,x" \
    "--topic=t --partitions=3-1" "--topic=t --partitions=1,0-2" "--topic=t --partitions=" \
    "--topic=t --key-prefix=0123456789012345678901234567890123456789"; do
  # No --topic in the last case: it is required.
  timeout 10 "$LOADGEN" --bootstrap="$bs" $args >bad.out 2>bad.err
  rc=$?
  if [ $rc -ne 2 ] || ! grep -q "^error: " bad.err; then
    echo "# $args: status $rc, stderr: $(cat bad.err)"
    bad_ok=0
  fi
done
check "loadgen: bad arguments exit 2 with an error: line" test $bad_ok -eq 1

[ $failed -eq 0 ] || { echo "# mock stderr:"; sed 's/^/#   /' mock.err; }
exit 0
