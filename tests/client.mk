# tests: libbluegreen's agent link (src/lib/client.c) over a private bus.
check_PROGRAMS += tests/test-client
TESTS += tests/test-client
tests_test_client_SOURCES = tests/test-client.c
tests_test_client_CPPFLAGS = $(AM_CPPFLAGS) -DTOP_SRCDIR=\"$(abs_top_srcdir)\"
tests_test_client_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_test_client_LDADD = libbluegreen-internal.la $(GLIB_LIBS)
