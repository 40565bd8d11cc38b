# Booted hosts (issue 14): the Debian packages of this tree built, installed
# and run on two booted Debian hosts (tools/bg-machine) [package]
# [system-bus] [journal-system] [boot]. Registered only without sanitizers:
# it tests the packages, which dpkg-buildpackage compiles with the
# distribution's flags, so the sanitizer build would run it again on
# identical binaries (and CI runs tools/check in both builds). About 4 min,
# a one-time Debian root (debootstrap, ~1.5 min) included.
if !ENABLE_SANITIZERS
TESTS += tests/test-machine.sh
endif
dist_check_SCRIPTS += tests/test-machine.sh
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-machine*) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-900};; esac;
EXTRA_DIST += debian tools/bg-machine tools/debs
