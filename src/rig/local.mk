# src/rig: the test and demo rig — an embedded Kafka (bluegreen-kafka-mock)
# and a deterministic load generator (bluegreen-loadgen). Their shared code
# (command grammar, record sequence) is in librig.la, so tests and the
# verifier can use it too.
noinst_LTLIBRARIES += librig.la
librig_la_SOURCES = \
	src/rig/mock-command.c src/rig/mock-command.h \
	src/rig/loadgen-sequence.c src/rig/loadgen-sequence.h
librig_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(RDKAFKA_CFLAGS)
librig_la_LIBADD = $(GLIB_LIBS) $(RDKAFKA_LIBS)

# Test and demo tools, not commands for a host's PATH: installed in
# $(pkglibexecdir) (tools/demo and the tests run them from the build tree).
pkglibexec_PROGRAMS = bluegreen-kafka-mock bluegreen-loadgen
bluegreen_kafka_mock_SOURCES = src/rig/kafka-mock.c
bluegreen_kafka_mock_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(RDKAFKA_CFLAGS)
bluegreen_kafka_mock_LDADD = librig.la $(GLIB_LIBS) $(RDKAFKA_LIBS)

bluegreen_loadgen_SOURCES = src/rig/loadgen.c
bluegreen_loadgen_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(RDKAFKA_CFLAGS)
bluegreen_loadgen_LDADD = librig.la $(GLIB_LIBS) $(RDKAFKA_LIBS)
