# Issue 7: operating two versions — [metrics], [journal], [capacity],
# [guard] — on a test host with the real agent and the example job.
check_PROGRAMS += tests/test-ops
TESTS += tests/test-ops
tests_test_ops_SOURCES = tests/test-ops.c
tests_test_ops_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib -I$(top_srcdir)/src
tests_test_ops_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)
