# systemd test hosts and the C test helper library (tools/bg-host, tests/lib/)
check_PROGRAMS += tests/test-host
TESTS += tests/test-host
tests_test_host_SOURCES = tests/test-host.c
tests_test_host_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(SYSTEMD_CFLAGS) $(RDKAFKA_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_host_LDADD = tests/lib/libbgtest.la $(GLIB_LIBS) $(SYSTEMD_LIBS) $(RDKAFKA_LIBS)
