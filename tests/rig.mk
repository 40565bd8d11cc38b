# tests of the rig: the embedded Kafka (test-mock.sh), the load generator
# (test-loadgen.sh) and their shared code (test-rig-mock-command).
TESTS += tests/test-mock.sh tests/test-loadgen.sh
dist_check_SCRIPTS += tests/test-mock.sh tests/test-loadgen.sh

check_PROGRAMS += tests/test-rig-mock-command
TESTS += tests/test-rig-mock-command
tests_test_rig_mock_command_SOURCES = tests/test-rig-mock-command.c
tests_test_rig_mock_command_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(RDKAFKA_CFLAGS)
tests_test_rig_mock_command_LDADD = librig.la $(GLIB_LIBS) $(RDKAFKA_LIBS)
