#!/bin/bash
# test-demo.sh — [demo] tools/demo, shortened (50,000 records at 2,500/s:
# the load still runs when the cutover comes, so both versions emit),
# against the build under test (BG_DEMO_BUILDDIR=$BG_TOP_BUILDDIR: nothing
# is built elsewhere): it exits 0 within 60 s, its summary shows 0 gaps and
# 0 cross-version duplicates, and nothing it started is left running
# afterwards (no host manager, no Kafka mock, no load generator), which is
# checked by looking for processes carrying this test's temporary directory
# in their environment or command line.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

TOP_SRC="${BG_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}"
TOP_BUILD="${BG_TOP_BUILDDIR:-$TOP_SRC/_build}"
work="${BG_TEST_TMPDIR:-$(mktemp -d)}"
cd "$work" || exit 99

echo "1..7"
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
check () { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
failed=0

if [ "$(id -u)" -ne 0 ]; then
  for i in 1 2 3 4 5 6 7; do echo "ok $i # SKIP demo needs root (bg-host)"; done
  exit 0
fi
[ -x "$TOP_BUILD/bluegreenctl" ] || { echo "Bail out! $TOP_BUILD/bluegreenctl is not built"; exit 99; }

# The demo's own files go under this test's directory (it honours TMPDIR).
export TMPDIR="$work"
start=$(date +%s%N)
BG_DEMO_BUILDDIR="$TOP_BUILD" timeout --kill-after=5 120 \
  "$TOP_SRC/tools/demo" --records=50000 --rate=2500 >demo.out 2>demo.err </dev/null
rc=$?
secs=$(( ($(date +%s%N) - start) / 1000000000 ))
sed 's/^/# /' demo.out
sed 's/^/# stderr: /' demo.err

summary_num () { sed -n "s/^  $1: *\([0-9][0-9]*\)\$/\1/p" demo.out | head -n 1; }

check "demo exits 0 (exit $rc)" [ "$rc" -eq 0 ]
check "demo finishes under 60 s (took $secs s)" [ "$secs" -lt 60 ]
gaps=$(summary_num gaps)
dups=$(summary_num "cross-version duplicates")
check "summary: 0 gaps (got '${gaps}')" [ "$gaps" = 0 ]
check "summary: 0 cross-version duplicates (got '${dups}')" [ "$dups" = 0 ]
check "summary: records in and results out are counted" \
  grep -Eq '^  records in: +[1-9][0-9]*$' demo.out
# The verifier's partition lines: blue below the barrier, green from it.
check "the cutover came under load: green emitted on some partition" \
  grep -Eq '^partition [0-9]+ .*blue .*green [0-9]+' demo.out

# Anything still running with our directory in its environment or command
# line came from the demo (the host manager, its services, the Kafka mock,
# the load generator); our own shell and its parents are excluded.
ancestors=" $$ "
pid=$$
while [ "$pid" -gt 1 ] 2>/dev/null; do
  pid=$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null) || break
  ancestors="$ancestors$pid "
done
leftovers=
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  case "$ancestors" in *" $p "*) continue ;; esac
  # Our own command substitutions and pipelines are children of this shell.
  [ "$(awk '{ print $4 }' "$d/stat" 2>/dev/null)" = "$$" ] && continue
  if tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qxF "BG_TEST_TMPDIR=$work" \
     || tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF "$work/"; then
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline")
    [ -n "$cmd" ] || continue
    leftovers="$leftovers $p:[$cmd]"
  fi
done
check "nothing left running${leftovers:+: $leftovers}" [ -z "$leftovers" ]
# The demo keeps its work directory only on failure; its hosts are gone.
if [ "$rc" -ne 0 ]; then
  for log in "$work"/bluegreen-demo.*/state/logs/*.log "$work"/bluegreen-demo.*/hosts/*/logs/*.log; do
    [ -f "$log" ] || continue
    echo "# ---- $log"
    tail -n 40 "$log" | sed 's/^/# /'
  done
fi
exit $failed
