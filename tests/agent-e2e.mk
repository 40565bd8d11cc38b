# bluegreend end to end on one host (issue 4: [deploy] [savepoint] [flip]):
# the agent as a user service, the example job in both slots, the Kafka
# mock, the load generator and the verifier (tests/test-agent-e2e.c, on the
# fleet fixture with one host); and its benchmark, the agent's idle RSS and
# CPU next to the example job's (tools/bench agent).
check_PROGRAMS += tests/test-agent-e2e
TESTS += tests/test-agent-e2e
tests_test_agent_e2e_SOURCES = tests/test-agent-e2e.c
tests_test_agent_e2e_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_agent_e2e_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

noinst_PROGRAMS += bench-agent
bench_agent_SOURCES = tests/bench/agent.c
bench_agent_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib -DBENCH_TOP_SRCDIR=\"$(abs_top_srcdir)\"
bench_agent_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)
