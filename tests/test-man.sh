#!/bin/bash
# test-man.sh — [man] the manual pages: every page under man/ is installed
# (listed in man/local.mk) and renders with man(1) and groff without a
# single warning; and the pages have not drifted from the code: every verb
# and option of bluegreenctl --help, every option of bluegreend --help,
# every key of the documented example configurations and every BLUEGREEN_*
# variable the agent gives jobs is described in its page.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

SRC="${BG_TOP_SRCDIR:-.}"
BUILD="${BG_TOP_BUILDDIR:-.}"
work="${BG_TEST_TMPDIR:-$(mktemp -d)}"
cd "$work" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }

command -v man >/dev/null 2>&1 || { echo "Bail out! man (man-db) is not installed; see tools/deps"; exit 99; }
command -v groff >/dev/null 2>&1 || { echo "Bail out! groff is not installed; see tools/deps"; exit 99; }

pages=("$SRC"/man/*.[1-8])
[ -e "${pages[0]}" ] || { echo "Bail out! no pages in $SRC/man"; exit 99; }

# Each page: installed, man -l silent, man --warnings silent, groff -ww
# silent, and it has its NAME section.
echo "1..$((${#pages[@]} * 5 + 6))"

for page in "${pages[@]}"; do
  base=$(basename "$page")
  if grep -q "man/$base\\b" "$SRC/man/local.mk"; then
    ok "man: $base is installed (dist_man_MANS)"
  else
    not_ok "man: $base is installed (dist_man_MANS)"
  fi

  out=$(man -l "$page" 2>&1 >/dev/null)
  if [ -z "$out" ]; then ok "man: man -l $base prints no warnings"
  else echo "$out" | sed 's/^/# /'; not_ok "man: man -l $base prints no warnings"; fi

  out=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
  if [ -z "$out" ]; then ok "man: man --warnings $base at 80 columns"
  else echo "$out" | sed 's/^/# /'; not_ok "man: man --warnings $base at 80 columns"; fi

  out=$(groff -ww -z -man "$page" 2>&1)
  if [ -z "$out" ]; then ok "man: groff -ww $base"
  else echo "$out" | sed 's/^/# /'; not_ok "man: groff -ww $base"; fi

  MANWIDTH=80 man -E UTF-8 -l "$page" 2>/dev/null > "$base.txt"
  name=${base%.*}
  if grep -q '^NAME' "$base.txt" && grep -qE "^ +$name +- " "$base.txt"; then
    ok "man: $base renders its NAME section"
  else
    not_ok "man: $base renders its NAME section"
  fi
done

# all_described PAGE NAME WORD... : every WORD occurs in the rendered PAGE.
all_described () {
  local page=$1 name=$2 missing=() w
  shift 2
  [ -s "$page.txt" ] || MANWIDTH=200 man -E UTF-8 -l "$SRC/man/$page" 2>/dev/null > "$page.txt"
  # Unwrapped and unhyphenated, so a word is found wherever it was broken.
  MANWIDTH=1000 man -E UTF-8 -l "$SRC/man/$page" 2>/dev/null | sed 's/‐//g' > "$page.wide"
  for w in "$@"; do
    grep -qF -- "$w" "$page.wide" || missing+=("$w")
  done
  if [ ${#missing[@]} -eq 0 ] && [ $# -gt 0 ]; then
    ok "man: $name"
  else
    echo "# not described in $page: ${missing[*]} (of $# words)"
    not_ok "man: $name"
  fi
}

# bluegreenctl(1): verbs and options of --help.
mapfile -t ctl_words < <(
  LC_ALL=C.UTF-8 LANGUAGE= "$BUILD/bluegreenctl" --help 2>/dev/null |
  awk '/^Verbs:/ { v = 1; next } v && /^  [a-z]/ { print $1 } /^  -/ { for (i = 1; i <= NF; i++) if ($i ~ /^--?[a-z]/) { sub(/[=,:].*/, "", $i); print $i } }' |
  grep -v -- '^--help-' | sort -u)
all_described bluegreenctl.1 "bluegreenctl.1 describes every verb and option of --help (${#ctl_words[@]})" "${ctl_words[@]}"

mapfile -t d_words < <(
  LC_ALL=C.UTF-8 "$BUILD/bluegreend" --help 2>/dev/null |
  awk '/^  -/ { for (i = 1; i <= NF; i++) if ($i ~ /^--?[a-z]/) { sub(/[=,:].*/, "", $i); print $i } }' |
  grep -v -- '^--help-' | sort -u)
all_described bluegreend.8 "bluegreend.8 describes every option of --help (${#d_words[@]})" "${d_words[@]}"

# bluegreend(8): every method, property and signal of the D-Bus API.
mapfile -t api_names < <(grep -oE '<(method|property|signal) name="[A-Za-z]+"' "$SRC/data/org.bluegreen.Agent1.xml" |
  sed 's/.*name="\(.*\)"/\1/' | sort -u)
all_described bluegreend.8 "bluegreend.8 describes every member of org.bluegreen.Agent1.xml (${#api_names[@]})" "${api_names[@]}"

# bluegreend.conf(5) and bluegreen.job(5): every key and group of the
# documented examples, commented out or not.
mapfile -t conf_keys < <(sed -n -e 's/^#\{0,1\}\([A-Z][A-Za-z]*\)=.*/\1=/p' -e 's/^\(\[[A-Za-z.]*\]\)$/\1/p' \
  "$SRC/data/bluegreend.conf" | sort -u)
all_described bluegreend.conf.5 "bluegreend.conf.5 describes every group and key of data/bluegreend.conf (${#conf_keys[@]})" "${conf_keys[@]}"

mapfile -t job_keys < <(sed -n -e 's/^#\{0,1\}\([A-Z][A-Za-z]*\)=.*/\1=/p' -e 's/^\(\[[A-Za-z.]*\]\)$/\1/p' \
  "$SRC/data/example.job" | sort -u)
all_described bluegreen.job.5 "bluegreen.job.5 describes every group and key of data/example.job (${#job_keys[@]})" "${job_keys[@]}"

# The environment the agent builds for a slot (src/daemon/slot.c).
mapfile -t env_vars < <(grep -o '"BLUEGREEN_[A-Z_]*=' "$SRC/src/daemon/slot.c" | tr -d '"=' | sort -u)
all_described bluegreen.job.5 "bluegreen.job.5 lists every BLUEGREEN_* variable a job gets (${#env_vars[@]})" "${env_vars[@]}"

exit $failed
