# What agents keep across their own restarts and topology changes, end to
# end on the 3-host fleet rig (tests/test-restart.c, tests/lib/fleet.[ch]):
# [membership-restart] [observe-restart] [rollback-dead-slot] [join-late].
check_PROGRAMS += tests/test-restart
TESTS += tests/test-restart
tests_test_restart_SOURCES = tests/test-restart.c
tests_test_restart_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_restart_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

# Four 3-host scenarios of 1-2 minutes each (an observation window of 15 s
# among them), 2-3 times that under the sanitizers.
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-restart) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-900};; esac;

# The same without hosts, Kafka or D-Bus: the state file's membership and
# observation keys (and older files), membership restored, what hellos
# tell a late host.
check_PROGRAMS += tests/test-restart-unit
TESTS += tests/test-restart-unit
tests_test_restart_unit_SOURCES = tests/test-restart-unit.c
tests_test_restart_unit_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"test-restart-unit\"
tests_test_restart_unit_LDADD = libbgdaemon.la $(BG_DEPS_LIBS)
