# What the agent keeps on disk, bounded (src/daemon/retention.c).
check_PROGRAMS += tests/test-retention
TESTS += tests/test-retention
tests_test_retention_SOURCES = tests/test-retention.c
tests_test_retention_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"test-retention\"
tests_test_retention_LDADD = libbgdaemon.la $(BG_DEPS_LIBS)
