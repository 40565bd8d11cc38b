#!/bin/bash
# security — `systemd-analyze security --offline=yes` exposure of the shipped
# bluegreend.service (the system variant generated from
# units/bluegreend.service.in), next to the exposure of a bare unit
# ([Service] ExecStart=/bin/true) measured in the same run, so a change of
# systemd's scoring shows in both figures.
# Also security.slot.exposure: the same analysis of a slot unit with the
# default sandbox preset, as `bluegreend --print-slot-unit` writes the
# properties the agent starts a slot with (system-manager preset; the job
# is data/example.job with its program pointed at the built example job).
# Prints: security.exposure V / security.baseline V / security.slot.exposure V
# (0.0 best .. 10.0 worst).
# With --details, the settings still counted follow as "# ..." lines.
# SPDX-License-Identifier: LGPL-2.1-or-later
set -uo pipefail
builddir=${BG_TOP_BUILDDIR:-$PWD}
unit="$builddir/units/bluegreend.service"
command -v systemd-analyze >/dev/null || { echo "error: systemd-analyze not found" >&2; exit 2; }
if [ ! -f "$unit" ]; then
  make -C "$builddir" units/bluegreend.service >/dev/null || { echo "error: cannot generate $unit" >&2; exit 2; }
fi
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT

# exposure FILE: the overall figure, e.g. 1.4
exposure () {
  systemd-analyze security --offline=yes --no-pager "$1" 2>"$work/err" |
    sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p'
}
printf '[Service]\nExecStart=/bin/true\n' >"$work/baseline.service"
cp "$unit" "$work/bluegreend.service"
e=$(exposure "$work/bluegreend.service")
b=$(exposure "$work/baseline.service")
if [ -z "$e" ] || [ -z "$b" ]; then
  echo "error: no exposure figure from systemd-analyze:" >&2
  cat "$work/err" >&2
  exit 1
fi
srcdir=${BG_TOP_SRCDIR:-$builddir/..}
sed -e "s|^ExecStart=/usr/bin/bluegreen-example-job|ExecStart=$builddir/bluegreen-example-job|" \
  "$srcdir/data/example.job" >"$work/example.job"
if ! "$builddir/bluegreend" --print-slot-unit="$work/example.job" >"$work/bluegreen-example-blue.service" 2>"$work/err"; then
  echo "error: bluegreend --print-slot-unit failed:" >&2
  cat "$work/err" >&2
  exit 1
fi
s=$(exposure "$work/bluegreen-example-blue.service")
if [ -z "$s" ]; then
  echo "error: no exposure figure for the slot unit from systemd-analyze:" >&2
  cat "$work/err" >&2
  exit 1
fi
echo "security.exposure $e"
echo "security.baseline $b"
echo "security.slot.exposure $s"
if [ "${1:-}" = --details ]; then
  systemd-analyze security --offline=yes --no-pager "$work/bluegreend.service" 2>/dev/null |
    grep '^✗' | sed 's/^/# /'
  echo "# slot unit:"
  systemd-analyze security --offline=yes --no-pager "$work/bluegreen-example-blue.service" 2>/dev/null |
    grep '^✗' | sed 's/^/# /'
fi
exit 0
