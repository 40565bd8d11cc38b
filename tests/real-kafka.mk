# [real-kafka]: the fleet-wide cutover and its faults on a real Apache Kafka
# cluster (3 KRaft nodes from tools/kafka, one per program run; the jars
# come from tools/kafka fetch, which .ci/run runs once per machine), and
# the agent's control topic check (tests/test-real-kafka.c).
check_PROGRAMS += tests/test-real-kafka
TESTS += tests/test-real-kafka
tests_test_real_kafka_SOURCES = tests/test-real-kafka.c
tests_test_real_kafka_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -I$(top_srcdir)/tests/lib
tests_test_real_kafka_LDADD = tests/lib/libbgtest.la $(BG_DEPS_LIBS)

# Starting the cluster (~7 s), its faults (a fail-over ~3 s, a whole
# restart ~9 s) and four 3-host scenarios: more than tests/tap-test's
# default 300 s under the sanitizers.
AM_TESTS_ENVIRONMENT += case "$$b" in tests/test-real-kafka) export BG_TEST_TIMEOUT=$${BG_TEST_TIMEOUT:-900};; esac;

# The verdict of the agent's control topic check on given facts: no Kafka.
check_PROGRAMS += tests/test-control-topic
TESTS += tests/test-control-topic
tests_test_control_topic_SOURCES = tests/test-control-topic.c
tests_test_control_topic_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"test-control-topic\"
tests_test_control_topic_LDADD = libbgdaemon.la $(BG_DEPS_LIBS)
