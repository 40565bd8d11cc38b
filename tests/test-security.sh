#!/bin/bash
# test-security.sh — [security] the shipped bluegreend.service (system
# variant, generated from units/bluegreend.service.in): its
# `systemd-analyze security --offline=yes` exposure is at or below 2.0 and
# below a bare unit's, every setting systemd-analyze still counts against
# it has its own entry with a reason in the template's list of what is
# still counted, and `systemd-analyze verify`
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

# Each counted setting ("✗ Name=..." lines) must have its own entry, with
# a reason, in the template's list under "What it still counts, and why
# each stays:". An entry is a comment line "#   NAMES: why" (continued on
# "#     " lines); NAMES is one or more settings exactly as systemd-analyze
# prints them, separated by ", ", each optionally followed by a remark in
# parentheses ("User=/DynamicUser= (runs as root)"); a "~..." after a
# space belongs to the name ("RestrictAddressFamilies= ~AF_UNIX"). A
# setting merely mentioned elsewhere (e.g. "set no User=") explains nothing.
cp "$UNIT" "$T/bluegreend.service"
systemd-analyze security --offline=yes --no-pager "$T/bluegreend.service" 2>/dev/null |
  sed -n 's/^✗ \([^ ]*\) .*/\1/p' >"$T/counted"
awk '
  /why each stays:$/ { inblock = 1; next }
  inblock && /^#   [^ ]/ { if (entry != "") print entry; entry = substr($0, 5); next }
  inblock && /^#     [^ ]/ { line = $0; sub(/^#     /, "", line); entry = entry " " line; next }
  inblock { if (entry != "") print entry; entry = ""; inblock = 0 }
  END { if (entry != "") print entry }
' "$TEMPLATE" >"$T/entries"
# One "NAME<TAB>why" line per setting an entry names.
: >"$T/explained"
while IFS= read -r entry; do
  case "$entry" in *": "*) ;; *) continue ;; esac
  names=${entry%%: *}
  why=${entry#*: }
  rest=$names
  while [ -n "$rest" ]; do
    item=${rest%%, *}
    if [ "$item" = "$rest" ]; then rest=""; else rest=${rest#*, }; fi
    read -r name next _ <<<"$item"
    case "$next" in "~"*) name="$name$next" ;; esac
    printf '%s\t%s\n' "$name" "$why" >>"$T/explained"
  done
done <"$T/entries"
sed 's/^/# explained: /' "$T/explained"
unexplained=""
while read -r setting; do
  # The reason must say something: at least three words.
  if ! awk -F '\t' -v s="$setting" '$1 == s && split($2, w, " ") >= 3 { found = 1 } END { exit !found }' \
      "$T/explained"; then
    unexplained="$unexplained $setting"
  fi
done <"$T/counted"
if [ -s "$T/counted" ] && [ -z "$unexplained" ]; then
  ok "security: every counted setting ($(wc -l <"$T/counted")) has its own entry in the template's list"
else
  not_ok "security: every counted setting has its own entry in the template's list (unexplained:${unexplained:- none counted})"
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
