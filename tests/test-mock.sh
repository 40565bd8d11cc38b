#!/bin/sh
# test-mock.sh — bluegreen-kafka-mock: the embedded Kafka starts, kcat sees
# its brokers and topics, fault injection (down/up a broker) has the effect
# it claims, and it exits cleanly on quit and SIGTERM and with status 2 on a
# bad option.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

MOCK="${BG_TOP_BUILDDIR:-.}/bluegreen-kafka-mock"
KCAT="${KCAT:-kcat}"
work="${BG_TEST_TMPDIR:-$(mktemp -d)}"
cd "$work" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check () { # check NAME COMMAND...: one TAP line from a command's status
  name="$1"; shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}
skip_all () { echo "1..0 # SKIP $1"; exit 0; }

command -v "$KCAT" >/dev/null 2>&1 || skip_all "kcat not found"
[ -x "$MOCK" ] || skip_all "bluegreen-kafka-mock not built"

# Bounded polls: wait on a condition, 10 s at most.
wait_for_file () {
  i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && return 1
    sleep 0.05
  done
}
wait_for_lines () { # FILE N: the file has at least N lines
  i=0
  while [ "$(wc -l < "$1")" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && return 1
    sleep 0.05
  done
}
wait_for_exit () { # PID: gone within 10 s
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && return 1
    sleep 0.05
  done
}
# Sends one command over the FIFO and waits for its reply (one more line on
# stdout) into $reply. Not called in $(...): the count must persist.
replies=1 # the bootstrap line
send () {
  reply="(no reply)"
  timeout 5 sh -c 'echo "$1" > "$2"' sh "$1" control || return 1
  replies=$((replies + 1))
  wait_for_lines out "$replies" || return 1
  reply=$(sed -n "${replies}p" out)
}
show_logs () { echo "# mock stdout:"; sed 's/^/#   /' out; echo "# mock stderr:"; sed 's/^/#   /' err; }

echo "1..17"

"$MOCK" --brokers=3 --topic=in:6 --topic=other:1 --bootstrap-file=bootstrap \
  --control=control -v </dev/null >out 2>err &
pid=$!

check "mock: bootstrap file appears" wait_for_file bootstrap
bs=$(cat bootstrap)
check "mock: stdout line equals the bootstrap file" test "$(head -n1 out)" = "$bs"
b2=$(echo "$bs" | cut -d, -f2)

"$KCAT" -b "$bs" -L -m 5 >meta 2>meta.err
check "mock: kcat -L lists 3 brokers" grep -q '^ 3 brokers:' meta
check "mock: kcat -L lists topic in with 6 partitions" grep -q 'topic "in" with 6 partitions' meta

# Partition 0 led by broker 2, partition 1 by broker 1: the outage below
# must hit one and not the other.
send "leader in 0 2"; r1=$reply; send "leader in 1 1"; r2=$reply
check "mock: leader commands answered ok" test "$r1 $r2" = "ok ok"

send "down 2"
check "mock: down 2 answered ok" test "$reply" = "ok"
check "mock: broker 2 refuses connections while down" \
  sh -c '! "$1" -b "$2" -L -m 2 >/dev/null 2>&1' sh "$KCAT" "$b2"
check "mock: produce to a partition led by broker 2 fails while it is down" \
  sh -c 'if echo x | "$1" -b "$2" -P -t in -p 0 -X message.timeout.ms=1000 >/dev/null 2>&1; then exit 1; fi' sh "$KCAT" "$bs"
check "mock: produce to a partition led by broker 1 still works" \
  sh -c 'echo x | "$1" -b "$2" -P -t in -p 1 -X message.timeout.ms=5000 2>/dev/null' sh "$KCAT" "$bs"

send "up 2"
check "mock: up 2 restores broker 2 and its partition" \
  sh -c 'test "$1" = ok && "$2" -b "$3" -L -m 5 >/dev/null 2>&1 &&
         echo y | "$2" -b "$4" -P -t in -p 0 -X message.timeout.ms=5000 2>/dev/null' sh "$reply" "$KCAT" "$b2" "$bs"

send "rtt 1 5"; r1=$reply
send "errors Produce NOT_LEADER_FOR_PARTITION 1"; r2=$reply
send "topic extra:2"; r3=$reply
"$KCAT" -b "$bs" -L -m 5 >meta2 2>/dev/null
check "mock: rtt, errors and topic commands work" \
  sh -c 'test "$1 $2 $3" = "ok ok ok" && grep -q "topic \"extra\" with 2 partitions" meta2' sh "$r1" "$r2" "$r3"

send "frobnicate"
case "$reply" in "error: "*) ok "mock: an unknown command gets an error: reply" ;;
  *) not_ok "mock: an unknown command gets an error: reply (got '$reply')" ;; esac

# stdin was /dev/null all along: EOF there must not have stopped it.
check "mock: still running with stdin at EOF" kill -0 "$pid"

send "quit"
wait "$pid"; rc=$?
check "mock: quit exits with status 0" test "$reply" = "ok" -a "$rc" -eq 0
check "mock: bootstrap file removed on exit" test ! -e bootstrap
[ $failed -eq 0 ] || show_logs

# SIGTERM, commands on stdin this time.
rm -f out err
: >out
mkfifo stdin.fifo
"$MOCK" --brokers=1 <stdin.fifo >out 2>err &
pid=$!
exec 3>stdin.fifo
wait_for_lines out 1
echo "down 1" >&3
wait_for_lines out 2
kill -TERM "$pid"
wait_for_exit "$pid"
wait "$pid"; rc=$?
exec 3>&-
check "mock: commands on stdin answered, SIGTERM exits with status 0" \
  test "$(sed -n 2p out)" = "ok" -a "$rc" -eq 0

# Bad options: one error: line naming the option, status 2.
bad_ok=1
for args in "--brokers=0" "--brokers=x" "--topic=nopartitions" "--topic=in:0" "--replication=4" "--no-such-option"; do
  "$MOCK" $args </dev/null >bad.out 2>bad.err
  rc=$?
  opt=${args%%=*}
  if [ $rc -ne 2 ] || ! grep -q "^error: .*$opt" bad.err || [ "$(wc -l < bad.err)" -ne 1 ]; then
    echo "# $args: status $rc, stderr: $(cat bad.err)"
    bad_ok=0
  fi
done
check "mock: bad options exit 2 with an error: line naming the option" test $bad_ok -eq 1

exit 0
