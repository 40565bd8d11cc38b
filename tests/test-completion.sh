#!/bin/bash
# test-completion.sh — [completion] the bash completion of bluegreenctl,
# sourced as bash-completion would load it: COMPREPLY for verbs, options,
# colours, sink modes, --from values, and job names asked from the agent
# (a stub bluegreenctl on PATH records how it was asked, so --user/--system
# are seen to be passed on), and silence when no agent answers.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

COMPLETION="${BG_TOP_SRCDIR:-.}/data/completion/bluegreenctl"
CTL="${BG_TOP_BUILDDIR:-.}/bluegreenctl"
work="${BG_TEST_TMPDIR:-$(mktemp -d)}"
cd "$work" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }

[ -r "$COMPLETION" ] || { echo "Bail out! $COMPLETION not found"; exit 99; }
# shellcheck source=/dev/null
. "$COMPLETION"

# complete WORD... : COMPREPLY for the command line WORDS, the cursor in the
# last word (give '' for a fresh word), sorted and joined by spaces.
complete_line () {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _bluegreenctl 2>"$work/stderr"
  printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

# expect NAME WANT WORD... : the completion of WORDS is exactly WANT.
expect () {
  local name=$1 want=$2 got
  shift 2
  got=$(complete_line "$@")
  if [ "$got" = "$want" ]; then
    ok "$name"
  else
    echo "# words: $*"
    echo "# want: '$want'"
    echo "# got:  '$got'"
    not_ok "$name"
  fi
}

# The stub agent client: two jobs, and a record of its arguments.
mkdir -p stub
cat > stub/bluegreenctl <<'EOF'
#!/bin/sh
printf '%s\n' "$*" >> "$STUB_LOG"
case "$*" in
  *list*) printf 'clicks                   blue   live\ncounts                   -      empty\n' ;;
esac
EOF
chmod +x stub/bluegreenctl
export STUB_LOG="$work/stub.log"
saved_path=$PATH
PATH="$work/stub:$PATH"

echo "1..15"

expect "completion: verbs after 'bluegreenctl '" \
  "abort cutover deploy hosts list reload retire rollback sink status" bluegreenctl ''
expect "completion: a verb prefix" "deploy" bluegreenctl de
expect "completion: options" "--json" bluegreenctl --j
expect "completion: colors after 'sink JOB '" "blue green" bluegreenctl sink clicks ''
expect "completion: sink modes after 'sink JOB COLOR '" "blackhole live" bluegreenctl sink clicks green ''
expect "completion: colors after 'retire JOB '" "blue green" bluegreenctl retire clicks ''
expect "completion: --from values, '=' split off" "savepoint scratch" bluegreenctl deploy clicks 1.2 --from = ''
expect "completion: --from value in one word (no '=' word break)" "--from=savepoint" bluegreenctl deploy --from=sa
expect "completion: option values are not taken for the verb" "blue green" \
  bluegreenctl --timeout 5 --from = scratch sink clicks ''

: > "$STUB_LOG"
expect "completion: job names from 'bluegreenctl list'" "clicks counts" bluegreenctl deploy ''
if grep -q -- 'list' "$STUB_LOG" && ! grep -q -- '--user\|--system' "$STUB_LOG"; then
  ok "completion: list asked on the default bus"
else
  echo "# stub calls: $(cat "$STUB_LOG")"; not_ok "completion: list asked on the default bus"
fi

: > "$STUB_LOG"
expect "completion: job names with --user, by prefix" "clicks counts" bluegreenctl --user status c
if grep -q -- '--user .*list' "$STUB_LOG"; then
  ok "completion: --user passed on to list"
else
  echo "# stub calls: $(cat "$STUB_LOG")"; not_ok "completion: --user passed on to list"
fi

# Every option and verb of the real --help is offered (no drift).
if [ -x "$CTL" ]; then
  offered=" $(complete_line bluegreenctl --) $(complete_line bluegreenctl '') "
  missing=
  for w in $(LC_ALL=C.UTF-8 LANGUAGE= "$CTL" --help 2>/dev/null |
             awk '/^Verbs:/ { v = 1; next } v && /^  [a-z]/ { print $1 }
                  /^  -/ { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) { sub(/[,:].*/, "", $i); sub(/=.*/, "=", $i); print $i } }' |
             grep -v -- '^--help-'); do
    case "$offered" in *" $w "*) ;; *) missing="$missing $w" ;; esac
  done
  if [ -z "$missing" ]; then ok "completion: offers every verb and option of --help"
  else echo "# not offered:$missing"; not_ok "completion: offers every verb and option of --help"; fi
else
  echo "ok 14 # SKIP bluegreenctl not built"; n=$((n + 1))
fi

# The real client with no agent reachable: no names, and nothing printed.
PATH=$saved_path
if [ -x "$CTL" ]; then
  got=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$work/no-such-bus complete_line "$CTL" cutover '')
  if [ -z "$got" ] && [ ! -s "$work/stderr" ]; then
    ok "completion: quiet and empty when the agent is not running"
  else
    echo "# got: '$got'; stderr: $(cat "$work/stderr")"
    not_ok "completion: quiet and empty when the agent is not running"
  fi
else
  echo "ok 15 # SKIP bluegreenctl not built"
  n=$((n + 1))
fi

exit $failed
