# Issue 13, fleet-grade supervision, end to end on 3 hosts under load
# (tests/test-supervise.c): [reboot] (a host stopped and started again on
# its state directory) and [restart-policy] (crashes, crash loops).
check_PROGRAMS += tests/test-supervise
TESTS += tests/test-supervise
tests_test_supervise_SOURCES = tests/test-supervise.c
tests_test_supervise_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_supervise_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)
# Several 3-host scenarios with reboots: minutes on 2 cores, 2-3 times that
# under the sanitizers; more than tests/tap-test's default 300 s.
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-supervise) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-900};; esac;
