# Booted hosts (issue 14): the Debian packages of this tree built, installed
# and run on two booted Debian hosts (tools/bg-machine) [package]
# [system-bus] [journal-system] [boot] [reboot-host]. Not in TESTS: .ci/run runs it once,
# on its own, after tools/check (it builds the packages itself, so both
# builds would test the same binaries, and its compile and hosts would
# compete with the suite's timing-sensitive tests). By hand:
#   BG_TEST_TIMEOUT=900 BG_TOP_SRCDIR=$PWD sh tests/tap-test tests/test-machine.sh
# About 1.5-2.5 min plus the package build (BG_TEST_DEBS=DIR: packages
# tools/debs built there), plus a one-time Debian root (debootstrap, ~1.5 min).
dist_check_SCRIPTS += tests/test-machine.sh
EXTRA_DIST += debian tools/bg-machine tools/debs
