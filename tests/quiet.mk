# A cutover and a rollback finish however little traffic a partition has
# (issue 15): 3 simulated hosts, partitions that go quiet at the prepare,
# see a record every 10 s, or are empty until after the commit
# (tests/test-quiet.c, on the fleet fixture tests/lib/fleet.[ch]).
check_PROGRAMS += tests/test-quiet
TESTS += tests/test-quiet
tests_test_quiet_SOURCES = tests/test-quiet.c
tests_test_quiet_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_quiet_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

# Two 3-host scenarios of about a minute each on 2 cores, 2-3 times that
# under the sanitizers: more than tests/tap-test's default 300 s timeout.
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-quiet) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-600};; esac;
