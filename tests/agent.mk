# Agent tests: bluegreend as a real service of a test host's user manager
# (units/test/bluegreend.service), driven over D-Bus.
check_PROGRAMS += tests/test-agent
TESTS += tests/test-agent
tests_test_agent_SOURCES = tests/test-agent.c
tests_test_agent_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_agent_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

# The fleet-wide cutover tests and benchmark (3 hosts).
include tests/cutover.mk
# Cutovers and rollbacks with quiet, sparse and empty partitions (3 hosts).
include tests/quiet.mk
# The cutover state machine and membership alone.
include tests/cutover-unit.mk
include tests/steering.mk
include tests/exact.mk
include tests/retention.mk
include tests/agent-e2e.mk
include tests/ops.mk
include tests/supervise.mk
