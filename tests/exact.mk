# Exactness across agent restarts, end to end on 3 hosts (tests/test-exact.c).
check_PROGRAMS += tests/test-exact
TESTS += tests/test-exact
tests_test_exact_SOURCES = tests/test-exact.c
tests_test_exact_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_exact_LDADD = tests/lib/libbgtest.la libbgcommon.la $(BG_DEPS_LIBS)
# Two 3-host scenarios with two cutovers each: ~1 min, 2-3 times that under
# the sanitizers.
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-exact) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-900};; esac;
