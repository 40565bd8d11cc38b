# Signed control messages (issue 8): the fleet key file, signatures and the
# replay guard (src/common/control-sign.[ch]), tested as functions and on a
# fleet of agents (tests/test-signed.c); and a flood of junk control
# messages against a running agent (tests/test-flood.c).

check_PROGRAMS += tests/test-signed
TESTS += tests/test-signed
tests_test_signed_SOURCES = tests/test-signed.c
tests_test_signed_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib -DG_LOG_DOMAIN=\"test-signed\"
tests_test_signed_LDADD = tests/lib/libbgtest.la libbgdaemon.la $(BG_DEPS_LIBS)

check_PROGRAMS += tests/test-flood
TESTS += tests/test-flood
tests_test_flood_SOURCES = tests/test-flood.c
tests_test_flood_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib -DG_LOG_DOMAIN=\"test-flood\"
tests_test_flood_LDADD = tests/lib/libbgtest.la libbgdaemon.la $(BG_DEPS_LIBS)
