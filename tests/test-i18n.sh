#!/bin/bash
# test-i18n.sh — [i18n] the shipped German translation: po/de.po is valid,
# has no fuzzy or untranslated entries and covers every message of the
# sources in po/POTFILES.in; and bluegreenctl, pointed at the catalog with
# BLUEGREEN_LOCALEDIR, prints German under LANGUAGE=de (errors, usage lines,
# --help) and English without it.
#
# The catalog is laid out as DIR/de/LC_MESSAGES/bluegreen.mo in the test's
# own directory: compiled from po/de.po, so the test checks the translation
# as it is in the tree, not a stale build product. LANGUAGE is honoured
# under C.UTF-8 (glibc ignores it only in the plain "C" locale), so no
# generated de_DE locale is needed.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

SRC="${BG_TOP_SRCDIR:-.}"
BUILD="${BG_TOP_BUILDDIR:-.}"
CTL="$BUILD/bluegreenctl"
work="${BG_TEST_TMPDIR:-$(mktemp -d)}"
cd "$work" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }

for tool in msgfmt xgettext msgcmp; do
  command -v $tool >/dev/null 2>&1 || { echo "Bail out! $tool (gettext) is not installed; see tools/deps"; exit 99; }
done
[ -x "$CTL" ] || { echo "Bail out! $CTL is not built"; exit 99; }

echo "1..11"

# 1. de is in LINGUAS and de.po compiles with every check msgfmt has.
if grep -qx 'de' "$SRC/po/LINGUAS" && mkdir -p locale/de/LC_MESSAGES &&
   msgfmt -c --statistics -o locale/de/LC_MESSAGES/bluegreen.mo "$SRC/po/de.po" 2> stats.txt; then
  ok "i18n: de is in LINGUAS and po/de.po compiles (msgfmt -c)"
else
  sed 's/^/# /' stats.txt; not_ok "i18n: de is in LINGUAS and po/de.po compiles (msgfmt -c)"
fi

# 2. Nothing fuzzy or untranslated.
if grep -q 'translated message' stats.txt && ! grep -q 'fuzzy\|untranslated' stats.txt; then
  ok "i18n: de.po is complete ($(cat stats.txt))"
else
  sed 's/^/# /' stats.txt; not_ok "i18n: de.po has no fuzzy or untranslated entries"
fi

# 3. Every message of the sources is translated: a fresh template from
# POTFILES.in, with the keywords of po/Makevars, against de.po.
keywords=$(sed -n 's/^XGETTEXT_OPTIONS *= *//p' "$SRC/po/Makevars")
mapfile -t sources < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$SRC/po/POTFILES.in")
# shellcheck disable=SC2086
if (cd "$SRC" && xgettext $keywords -o "$work/fresh.pot" "${sources[@]}") &&
   msgcmp "$SRC/po/de.po" fresh.pot 2> msgcmp.txt; then
  ok "i18n: de.po translates every message of po/POTFILES.in (${#sources[@]} files)"
else
  sed 's/^/# /' msgcmp.txt | head -20; not_ok "i18n: de.po translates every message of po/POTFILES.in"
fi

# de CMD...: run with the German catalog; en CMD...: without.
de () { BLUEGREEN_LOCALEDIR="$work/locale" LANGUAGE=de LC_ALL=C.UTF-8 "$@"; }
en () { BLUEGREEN_LOCALEDIR="$work/locale" LANGUAGE= LC_ALL=C.UTF-8 "$@"; }

# 4-5. An unknown verb: the error prefix and the message in German, exit 2.
de "$CTL" frobnicate > out.txt 2> err.txt
rc=$?
if [ $rc -eq 2 ] && grep -q '^Fehler: ' err.txt; then
  ok "i18n: 'error:' is 'Fehler:' in German (exit 2)"
else
  echo "# rc=$rc stderr: $(cat err.txt)"; not_ok "i18n: 'error:' is 'Fehler:' in German (exit 2)"
fi
if grep -qF 'unbekanntes Verb „frobnicate“ (siehe --help)' err.txt && [ ! -s out.txt ]; then
  ok "i18n: the unknown-verb message is German, on stderr only"
else
  echo "# stderr: $(cat err.txt)"; not_ok "i18n: the unknown-verb message is German, on stderr only"
fi

# 6. The same without LANGUAGE: English.
en "$CTL" frobnicate > /dev/null 2> err-en.txt
if grep -qF "error: unknown verb 'frobnicate' (see --help)" err-en.txt; then
  ok "i18n: English without LANGUAGE=de"
else
  echo "# stderr: $(cat err-en.txt)"; not_ok "i18n: English without LANGUAGE=de"
fi

# 7. A usage line of a verb (checked before the agent is asked).
de "$CTL" sink onlyjob > /dev/null 2> err.txt
if grep -qF 'Fehler: Aufruf: sink JOB FARBE live|blackhole' err.txt; then
  ok "i18n: a verb's usage line in German"
else
  echo "# stderr: $(cat err.txt)"; not_ok "i18n: a verb's usage line in German"
fi

# 8. A message with an argument (c-format kept intact).
de "$CTL" sink clicks purple live > /dev/null 2> err.txt
if grep -qF 'Fehler: „purple“ ist keine Farbe (blue oder green verwenden)' err.txt; then
  ok "i18n: a formatted message in German"
else
  echo "# stderr: $(cat err.txt)"; not_ok "i18n: a formatted message in German"
fi

# 9-11. --help: the summary, an option's help, a verb's summary and the
# exit status line.
de "$CTL" --help > help.txt 2>&1
if grep -qF 'bluegreen steuern: Blue-Green-Bereitstellungen zustandsbehafteter Streaming-Jobs.' help.txt; then
  ok "i18n: --help summary in German"
else
  sed 's/^/# /' help.txt | head -20; not_ok "i18n: --help summary in German"
fi
if grep -qE '^  --json +JSON für Programme ausgeben$' help.txt &&
   grep -qE '^  --timeout=SEKUNDEN +Mit --wait: nach SEKUNDEN aufgeben \(0: nie\)$' help.txt; then
  ok "i18n: --help option lines in German (with the translated argument name)"
else
  sed 's/^/# /' help.txt | head -30; not_ok "i18n: --help option lines in German"
fi
if grep -q '^Verben:' help.txt && grep -qE '^  list +Die konfigurierten Jobs auflisten$' help.txt &&
   grep -q '^Rückgabewert: 0 in Ordnung' help.txt; then
  ok "i18n: --help verb table and exit status in German"
else
  sed 's/^/# /' help.txt | tail -16; not_ok "i18n: --help verb table and exit status in German"
fi

exit $failed
