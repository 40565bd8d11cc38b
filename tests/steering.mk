# The agent's steering steps (src/daemon/steering.c) applied to real gates
# through the library's steering application, without hosts or D-Bus.
check_PROGRAMS += tests/test-steering
TESTS += tests/test-steering
tests_test_steering_SOURCES = tests/test-steering.c
tests_test_steering_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/lib
tests_test_steering_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"test-steering\"
tests_test_steering_LDADD = libbgdaemon.la libbluegreen-internal.la $(BG_DEPS_LIBS)
