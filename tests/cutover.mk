# The fleet-wide cutover end to end: 3 simulated hosts, each with its own
# agent and bus, one Kafka mock, the example job in every slot, the load
# generator and the verifier (tests/test-cutover.c); and its benchmark
# (tools/bench cutover). The fleet fixture is tests/lib/fleet.[ch].
check_PROGRAMS += tests/test-cutover
TESTS += tests/test-cutover
tests_test_cutover_SOURCES = tests/test-cutover.c
tests_test_cutover_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_cutover_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

noinst_PROGRAMS += bench-cutover
bench_cutover_SOURCES = tests/bench/cutover.c
bench_cutover_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib -DBG_BENCH_TOP_SRCDIR=\"$(abs_top_srcdir)\"
bench_cutover_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

# Ten 3-host scenarios take about 4 minutes on 2 cores, and 2-3 times that
# under the sanitizers: more than tests/tap-test's default 300 s timeout.
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-cutover) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-900};; esac;
