# test-example-lib.sh — shell helpers for the example-job and handoff tests
# (sourced, not run): TAP output, the embedded Kafka, condition waits, and
# reading the job's --status-file and the verifier's --json report.
# SPDX-License-Identifier: LGPL-2.1-or-later

BUILDDIR=${BG_TOP_BUILDDIR:-$PWD}
JOB=$BUILDDIR/bluegreen-example-job
VERIFY=$BUILDDIR/bluegreen-verify
LOADGEN=$BUILDDIR/bluegreen-loadgen
MOCK=$BUILDDIR/bluegreen-kafka-mock
T=${BG_TEST_TMPDIR:-$(mktemp -d)}
tap_n=0
tap_failed=0
pids=()

ok () { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1"; }
not_ok () { tap_n=$((tap_n + 1)); tap_failed=1; echo "not ok $tap_n - $1"; }
check () { # check NAME CMD...: one TAP line for the command's status
  local name=$1; shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}
diag () { sed 's/^/# /' "$@" >&2 || true; }

cleanup () {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$tap_failed" != 0 ]; then
    for f in "$T"/*.err; do [ -f "$f" ] && { echo "# --- $f" >&2; tail -n 20 "$f" | diag; }; done
  fi
}
trap cleanup EXIT

# wait_until TIMEOUT_S CMD...: polls CMD (every 50 ms) until it succeeds.
wait_until () {
  local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
  until "$@"; do
    [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && return 1
    sleep 0.05
  done
}

# start_mock TOPIC:PARTITIONS...: sets BS to the bootstrap servers.
start_mock () {
  local args=() t
  for t in "$@"; do args+=(--topic="$t"); done
  "$MOCK" "${args[@]}" --bootstrap-file="$T/bootstrap" >"$T/mock.out" 2>"$T/mock.err" </dev/null &
  pids+=($!)
  wait_until 10 test -s "$T/bootstrap" || { echo "Bail out! mock did not start"; exit 1; }
  BS=$(cat "$T/bootstrap")
}

# status_num FILE FIELD: a number from a job's status file (0 if absent).
status_num () {
  local v
  v=$(grep -o "\"$2\":[0-9]*" "$1" 2>/dev/null | head -n 1 | cut -d: -f2)
  echo "${v:-0}"
}
# status_pos FILE PARTITION: the job's next offset on PARTITION (-1 if none).
status_pos () {
  local v
  v=$(sed -n 's/.*"positions":{\([^}]*\)}.*/\1/p' "$1" 2>/dev/null | tr ',' '\n' \
      | grep "^\"$2\":" | cut -d: -f2)
  echo "${v:--1}"
}
status_pos_sum () {
  sed -n 's/.*"positions":{\([^}]*\)}.*/\1/p' "$1" 2>/dev/null | tr ',' '\n' \
    | awk -F: '{ s += $2 } END { print s + 0 }'
}
consumed_all () { [ "$(status_pos_sum "$1")" -ge "$2" ]; }
delivered_all () { [ "$(status_num "$1" delivered)" -eq "$(status_num "$1" emitted)" ]; }
# report_num FILE FIELD: a number from the verifier's --json report.
report_num () { grep -o "\"$2\" : [0-9]*" "$1" | head -n 1 | awk '{ print $3 }'; }

# high_watermark TOPIC PARTITION
high_watermark () {
  local last
  last=$(kcat -b "$BS" -C -t "$1" -p "$2" -o -1 -c 1 -e -q -f '%o\n' 2>/dev/null | tail -n 1)
  echo $(( ${last:--1} + 1 ))
}
