# tests/lib: libbgtest, the helpers every GTest program that runs real parts
# links (hosts via tools/bg-host, the embedded Kafka, waits with timeouts).
check_LTLIBRARIES += tests/lib/libbgtest.la
tests_lib_libbgtest_la_SOURCES = tests/lib/bgtest.c tests/lib/bgtest.h tests/lib/fleet.c tests/lib/fleet.h \
	tests/lib/scenario.c tests/lib/scenario.h
tests_lib_libbgtest_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS) $(SYSTEMD_CFLAGS) $(RDKAFKA_CFLAGS)
tests_lib_libbgtest_la_LIBADD = libbgcommon.la $(GLIB_LIBS) $(JSON_GLIB_LIBS) $(SYSTEMD_LIBS) $(RDKAFKA_LIBS)
