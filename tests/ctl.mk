# [ctl] bluegreenctl against the real agent on a test host (the fleet
# fixture with one host: Kafka mock, bluegreend, the example job); and
# [demo] tools/demo in a shortened form from this build tree.
check_PROGRAMS += tests/test-ctl
TESTS += tests/test-ctl
tests_test_ctl_SOURCES = tests/test-ctl.c
tests_test_ctl_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_ctl_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

TESTS += tests/test-demo.sh
dist_check_SCRIPTS += tests/test-demo.sh
