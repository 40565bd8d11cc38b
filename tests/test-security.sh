#!/bin/bash
# test-security.sh — [security] the shipped bluegreend.service (system
# variant, generated from units/bluegreend.service.in): its
# `systemd-analyze security --offline=yes` exposure is at or below 2.0 and
# below a bare unit's, every setting systemd-analyze still counts against
# it is explained in a comment of the template, and `systemd-analyze verify`
# accepts the unit's settings (with ExecStart= pointed at the built binary,
# since nothing is installed here).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
TOP_SRCDIR=${BG_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
TOP_BUILDDIR=${BG_TOP_BUILDDIR:-$PWD}
UNIT="$TOP_BUILDDIR/units/bluegreend.service"
TEMPLATE="$TOP_SRCDIR/units/bluegreend.service.in"
MAX=2.0
T=${BG_TEST_TMPDIR:-$(mktemp -d)}
cd "$T" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
skip_all () { echo "1..0 # SKIP $1"; exit 0; }
command -v systemd-analyze >/dev/null 2>&1 || skip_all "systemd-analyze not found"
[ -f "$UNIT" ] || skip_all "$UNIT not generated"

figures=$(BG_TOP_BUILDDIR="$TOP_BUILDDIR" bash "$TOP_SRCDIR/tests/bench/security.sh" 2>&1)
echo "$figures" | sed 's/^/# /'
e=$(echo "$figures" | sed -n 's/^security.exposure //p')
b=$(echo "$figures" | sed -n 's/^security.baseline //p')
if [ -n "$e" ] && awk -v e="$e" -v m="$MAX" 'BEGIN { exit !(e <= m) }'; then
  ok "security: exposure $e <= $MAX"
else
  not_ok "security: exposure '$e' <= $MAX"
fi
if [ -n "$e" ] && [ -n "$b" ] && awk -v e="$e" -v b="$b" 'BEGIN { exit !(e < b) }'; then
  ok "security: exposure $e below a bare unit's $b"
else
  not_ok "security: exposure '$e' below a bare unit's '$b'"
fi

# [sandbox] A slot unit with the default sandbox preset (issue 13: <= 3.0).
se=$(echo "$figures" | sed -n 's/^security.slot.exposure //p')
if [ -n "$se" ] && awk -v e="$se" 'BEGIN { exit !(e <= 3.0) }'; then
  ok "security: slot unit exposure $se <= 3.0"
else
  not_ok "security: slot unit exposure '$se' <= 3.0"
fi

# Each counted setting ("✗ Name=..." lines) must be named in a comment of
# the template: "User=/DynamicUser=" needs "User=" or "DynamicUser=",
# "RestrictAddressFamilies=~AF_UNIX" needs "RestrictAddressFamilies=" and
# "AF_UNIX".
cp "$UNIT" "$T/bluegreend.service"
systemd-analyze security --offline=yes --no-pager "$T/bluegreend.service" 2>/dev/null |
  sed -n 's/^✗ \([^ ]*\) .*/\1/p' >"$T/counted"
grep '^#' "$TEMPLATE" >"$T/comments"
unexplained=""
while read -r setting; do
  found=""
  detail=${setting#*=~}
  [ "$detail" = "$setting" ] && detail=""
  for alt in $(echo "$setting" | tr '/' ' '); do
    k=${alt%%=*}
    grep -qF "$k=" "$T/comments" && found=1
  done
  if [ -n "$found" ] && [ -n "$detail" ]; then
    # AF_(INET|INET6) -> both names must appear
    for af in $(echo "$detail" | sed -e 's/AF_(\(.*\))/\1/' -e 's/|/ /g'); do
      af=${af#AF_}
      grep -qF "AF_$af" "$T/comments" || grep -qF "$af" "$T/comments" || found=""
    done
  fi
  [ -n "$found" ] || unexplained="$unexplained $setting"
done <"$T/counted"
if [ -s "$T/counted" ] && [ -z "$unexplained" ]; then
  ok "security: every counted setting ($(wc -l <"$T/counted")) is explained in the template"
else
  not_ok "security: every counted setting is explained in the template (unexplained:${unexplained:- none counted})"
fi

# verify: the settings parse and apply (no unknown or invalid directives).
mkdir -p "$T/verify"
sed -e "s|^ExecStart=.*|ExecStart=$TOP_BUILDDIR/bluegreend --system|" "$UNIT" >"$T/verify/bluegreend.service"
if out=$(systemd-analyze verify --man=no "$T/verify/bluegreend.service" 2>&1) && [ -z "$out" ]; then
  ok "security: systemd-analyze verify accepts the system unit"
else
  not_ok "security: systemd-analyze verify accepts the system unit"
  echo "$out" | sed 's/^/# /'
fi

echo "1..$n"
exit $failed
