# The cutover state machine and sticky membership of bluegreend, driven
# through their ops tables with an in-memory log: no hosts, Kafka or D-Bus.
check_PROGRAMS += tests/test-cutover-unit
TESTS += tests/test-cutover-unit
tests_test_cutover_unit_SOURCES = tests/test-cutover-unit.c
tests_test_cutover_unit_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"test-cutover-unit\"
tests_test_cutover_unit_LDADD = libbgdaemon.la $(BG_DEPS_LIBS)
