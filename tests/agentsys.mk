# agentsys tests: the agent's systemd, caller-check and Kafka drivers
# (src/daemon/systemd.[ch], caller.[ch], kafka.[ch]) against a real user
# manager (tools/bg-host) and librdkafka's mock cluster. The driver sources
# are compiled into the test itself (own object names through the
# per-target flags), so the test does not depend on how the daemon's
# internal library is put together.
check_PROGRAMS += tests/test-agent-systemd
TESTS += tests/test-agent-systemd
tests_test_agent_systemd_SOURCES = \
	tests/test-agent-systemd.c \
	src/daemon/systemd.c src/daemon/systemd.h \
	src/daemon/caller.c src/daemon/caller.h \
	src/daemon/kafka.c src/daemon/kafka.h
tests_test_agent_systemd_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
tests_test_agent_systemd_LDADD = libbgcommon.la $(BG_DEPS_LIBS)
