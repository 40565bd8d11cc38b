/* test-config.c — the configuration module: the documented examples parse
 * to their documented values, every class of mistake is refused with its
 * error code and a message naming file, group and key, templates expand,
 * and a jobs directory with a bad file yields the good jobs plus the errors.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/config.h"

#include <string.h>

#include <glib/gstdio.h>

#define JOB_PATH "/etc/bluegreen/jobs.d/clicks.job"
#define AGENT_PATH "/etc/bluegreen/bluegreend.conf"

/* Asserts @error is @code and its message names @path, "[group]" and @key
 * (@key NULL: a whole-group or whole-file message). */
static void
assert_config_error (const GError *error, BgConfigError code,
                     const char *path, const char *group, const char *key)
{
  g_assert_nonnull (error);
  if (g_test_verbose ())
    g_test_message ("%s", error->message);
  g_assert_error (error, BG_CONFIG_ERROR, (gint) code);
  g_assert_true (g_str_has_prefix (error->message, path));
  if (group != NULL)
    {
      g_autofree char *where = key != NULL ? g_strdup_printf ("[%s] %s:", group, key)
                                           : g_strdup_printf ("[%s]", group);
      if (strstr (error->message, where) == NULL)
        g_error ("\"%s\" does not name %s", error->message, where);
    }
}

/* ---- The documented examples ---------------------------------------------- */

static void
test_agent_example (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "bluegreend.conf", NULL);
  g_autofree char *host = g_ascii_strdown (g_get_host_name (), -1);
  if (!bg_name_is_valid (host))
    {
      g_test_skip ("this machine's host name is not a valid host id");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (BgAgentConfig) c = bg_agent_config_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->path, ==, path);
  g_assert_cmpstr (c->host_id, ==, host);
  g_assert_cmpint (c->bus, ==, G_BUS_TYPE_SYSTEM);
  g_assert_cmpstr (c->state_directory, ==, BG_CONFIG_DEFAULT_STATE_DIRECTORY);
  g_assert_cmpstr (c->jobs_directory, ==, BG_CONFIG_DEFAULT_JOBS_DIRECTORY);
  g_assert_cmpstr (c->metrics_directory, ==, BG_CONFIG_DEFAULT_METRICS_DIRECTORY);
  g_assert_cmpint (c->heartbeat_usec, ==, 2 * G_USEC_PER_SEC);
  g_assert_null (c->fleet_key_file);
  g_assert_cmpuint (c->max_jobs, ==, 64);
  g_assert_cmpstr (c->bootstrap_servers, ==, "localhost:9092");
  g_assert_cmpstr (c->control_topic, ==, "bluegreen-control");
  g_assert_cmpuint (c->kafka_properties->len, ==, 0);
}

static void
test_job_example (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "example.job", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) j = bg_job_config_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (j->name, ==, "example");
  g_assert_cmpstr (j->description, ==, "Counts clicks per key, from clicks to click-counts");
  g_assert_cmpstr (j->exec_start_argv[0], ==, "/usr/bin/bluegreen-example-job");
  g_assert_cmpuint (g_strv_length (j->exec_start_argv), ==, 4);
  g_assert_null (j->exec_savepoint);
  g_assert_cmpuint (g_strv_length (j->input_topics), ==, 1);
  g_assert_cmpstr (j->input_topics[0], ==, "clicks");
  g_assert_cmpint (j->input_partitions[0], ==, 0);
  g_assert_cmpstr (j->output_topics[0], ==, "click-counts");
  g_assert_cmpstr (j->consumer_group, ==, "%j-%c");
  g_assert_cmpuint (g_strv_length (j->hosts), ==, 0);
  g_assert_cmpuint (g_strv_length (j->environment), ==, 0);
  g_assert_cmpint (j->start_timeout_usec, ==, 300 * G_USEC_PER_SEC);
  g_assert_cmpint (j->watchdog_usec, ==, 30 * G_USEC_PER_SEC);
  g_assert_cmpint (j->max_lag, ==, 1000);
  g_assert_cmpint (j->stable_usec, ==, 10 * G_USEC_PER_SEC);
  g_assert_null (j->health_argv);
  g_assert_cmpuint (j->cpu_weight, ==, 0);
  g_assert_cmpuint (j->catch_up_cpu_weight, ==, 0);
  g_assert_cmpuint (j->memory_max, ==, 0);
  g_assert_cmpuint (j->tasks_max, ==, 0);
  g_assert_cmpint (j->observation_usec, ==, 300 * G_USEC_PER_SEC);
  g_assert_cmpint (j->deadline_usec, ==, 10 * G_USEC_PER_SEC);
  g_assert_cmpint (j->lead_usec, ==, 200000);
  g_assert_cmpuint (j->cutover_attempts, ==, 3);
  g_assert_true (j->restart_on_failure);
  g_assert_cmpint (j->restart_usec, ==, G_USEC_PER_SEC);
  g_assert_cmpuint (j->start_limit_burst, ==, 5);
  g_assert_cmpint (j->start_limit_interval_usec, ==, 60 * G_USEC_PER_SEC);
  g_assert_cmpuint (g_strv_length (j->guard_environment), ==, 0);
  g_assert_cmpuint (g_strv_length (j->guard_ip_address_deny), ==, 0);

  g_auto (GStrv) argv = bg_job_config_expand_exec (j, "1.4.2", &error);
  g_assert_no_error (error);
  const char *const expected[] = { "/usr/bin/bluegreen-example-job", "--version=1.4.2",
                                   "--input=clicks", "--output=click-counts", NULL };
  g_assert_cmpstrv (argv, expected);
}

/* ---- Every key set ----------------------------------------------------------- */

static void
test_agent_full (void)
{
  const char *data =
    "[Agent]\n"
    "HostId=host-1.example\n"
    "Bus=session\n"
    "StateDirectory=/srv/bg/state\n"
    "JobsDirectory=/srv/bg/jobs\n"
    "MetricsDirectory=\n"
    "HeartbeatSec=0.5\n"
    "FleetKeyFile=/etc/bluegreen/fleet.key\n"
    "MaxJobs=3\n"
    "[Kafka]\n"
    "BootstrapServers=k1:9092,k2:9092\n"
    "ControlTopic=ops.control_v2\n"
    "[Kafka.Properties]\n"
    "security.protocol=SASL_SSL\n"
    "sasl.mechanisms=PLAIN\n"
    "sasl.password=p\\a;ss\n"
    "client.id=agent\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (BgAgentConfig) c = bg_agent_config_load_from_data (AGENT_PATH, data, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->host_id, ==, "host-1.example");
  g_assert_cmpint (c->bus, ==, G_BUS_TYPE_SESSION);
  g_assert_cmpstr (c->state_directory, ==, "/srv/bg/state");
  g_assert_cmpstr (c->jobs_directory, ==, "/srv/bg/jobs");
  g_assert_null (c->metrics_directory);
  g_assert_cmpint (c->heartbeat_usec, ==, 500000);
  g_assert_cmpstr (c->fleet_key_file, ==, "/etc/bluegreen/fleet.key");
  g_assert_cmpuint (c->max_jobs, ==, 3);
  g_assert_cmpstr (c->bootstrap_servers, ==, "k1:9092,k2:9092");
  g_assert_cmpstr (c->control_topic, ==, "ops.control_v2");

  /* In file order, values verbatim. */
  const char *const expected[][2] = {
    { "security.protocol", "SASL_SSL" },
    { "sasl.mechanisms", "PLAIN" },
    { "sasl.password", "p\\a;ss" },
    { "client.id", "agent" },
  };
  g_assert_cmpuint (c->kafka_properties->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      BgConfigProperty *p = c->kafka_properties->pdata[i];
      g_assert_cmpstr (p->key, ==, expected[i][0]);
      g_assert_cmpstr (p->value, ==, expected[i][1]);
    }

  g_autoptr (BgAgentConfig) ref = bg_agent_config_ref (c);
  g_assert_true (ref == c);
}

static void
test_job_full (void)
{
  const char *data =
    "[Job]\n"
    "Description=Click counter\n"
    "ExecStart=/opt/clicks/%v/bin/clicks --name=%j --rate='100%%' \"two words\"\n"
    "ExecSavepoint=/opt/clicks/%v/bin/savepoint --dir=%d\n"
    "InputTopics=clicks:12; impressions\n"
    "OutputTopics=click-counts;click-stats\n"
    "ConsumerGroup=grp-%j-%c-%v\n"
    "Hosts=host-a;host-b\n"
    "Environment=LANG=C.UTF-8;OPTS=a b=c\n"
    "StartTimeoutSec=90.5\n"
    "WatchdogSec=0\n"
    "Restart=no\n"
    "RestartSec=0.5\n"
    "StartLimitBurst=3\n"
    "StartLimitIntervalSec=20\n"
    "[Readiness]\n"
    "MaxLag=0\n"
    "StableSec=2.5\n"
    "HealthCommand=/usr/bin/check --job=%j --color=%c\n"
    "[Resources]\n"
    "CPUWeight=200\n"
    "CatchUpCPUWeight=20\n"
    "MemoryMax=2G\n"
    "TasksMax=infinity\n"
    "[Cutover]\n"
    "ObservationSec=0\n"
    "DeadlineSec=3.25\n"
    "LeadFactor=0.2\n"
    "Attempts=5\n"
    "[Guard]\n"
    "Environment=SINK=/dev/null\n"
    "IPAddressDeny=any;10.0.0.0/8;::1\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) j = bg_job_config_load_from_data (JOB_PATH, data, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (j->name, ==, "clicks");
  g_assert_cmpstr (j->path, ==, JOB_PATH);
  g_assert_cmpstr (j->description, ==, "Click counter");
  const char *const start[] = { "/opt/clicks/%v/bin/clicks", "--name=%j", "--rate=100%%", "two words", NULL };
  g_assert_cmpstrv (j->exec_start_argv, start);
  g_assert_cmpstr (j->exec_savepoint_argv[1], ==, "--dir=%d");
  const char *const inputs[] = { "clicks", "impressions", NULL };
  g_assert_cmpstrv (j->input_topics, inputs);
  g_assert_cmpint (j->input_partitions[0], ==, 12);
  g_assert_cmpint (j->input_partitions[1], ==, 0);
  const char *const outputs[] = { "click-counts", "click-stats", NULL };
  g_assert_cmpstrv (j->output_topics, outputs);
  const char *const hosts[] = { "host-a", "host-b", NULL };
  g_assert_cmpstrv (j->hosts, hosts);
  const char *const env[] = { "LANG=C.UTF-8", "OPTS=a b=c", NULL };
  g_assert_cmpstrv (j->environment, env);
  g_assert_cmpint (j->start_timeout_usec, ==, 90500000);
  g_assert_cmpint (j->watchdog_usec, ==, 0);
  g_assert_false (j->restart_on_failure);
  g_assert_cmpint (j->restart_usec, ==, 500000);
  g_assert_cmpuint (j->start_limit_burst, ==, 3);
  g_assert_cmpint (j->start_limit_interval_usec, ==, 20 * G_USEC_PER_SEC);
  g_assert_cmpint (j->max_lag, ==, 0);
  g_assert_cmpint (j->stable_usec, ==, 2500000);
  g_assert_cmpstr (j->health_argv[0], ==, "/usr/bin/check");
  g_assert_cmpuint (j->cpu_weight, ==, 200);
  g_assert_cmpuint (j->catch_up_cpu_weight, ==, 20);
  g_assert_cmpuint (j->memory_max, ==, G_GUINT64_CONSTANT (2) << 30);
  g_assert_cmpuint (j->tasks_max, ==, BG_CONFIG_INFINITY);
  g_assert_cmpint (j->observation_usec, ==, 0);
  g_assert_cmpint (j->deadline_usec, ==, 3250000);
  g_assert_cmpint (j->lead_usec, ==, 200000);
  g_assert_cmpuint (j->cutover_attempts, ==, 5);
  const char *const guard_env[] = { "SINK=/dev/null", NULL };
  g_assert_cmpstrv (j->guard_environment, guard_env);
  const char *const deny[] = { "any", "10.0.0.0/8", "::1", NULL };
  g_assert_cmpstrv (j->guard_ip_address_deny, deny);
}

static void
test_sizes (void)
{
  const struct {
    const char *value;
    guint64 bytes;
  } cases[] = {
    { "1", 1 },
    { "512K", 512 * 1024 },
    { "3M", 3 * 1024 * 1024 },
    { "2T", G_GUINT64_CONSTANT (2) << 40 },
    { "infinity", BG_CONFIG_INFINITY },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *data = g_strdup_printf ("[Job]\nExecStart=/bin/true\nInputTopics=t\n"
                                               "[Resources]\nMemoryMax=%s\n", cases[i].value);
      g_autoptr (GError) error = NULL;
      g_autoptr (BgJobConfig) j = bg_job_config_load_from_data (JOB_PATH, data, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (j->memory_max, ==, cases[i].bytes);
    }
}

/* ---- Errors ------------------------------------------------------------------ */

typedef struct {
  const char *data;
  BgConfigError code;
  const char *group;
  const char *key; /* NULL: the message names only the group */
} ErrorCase;

#define AGENT_OK_KAFKA "[Kafka]\nBootstrapServers=localhost:9092\n"

static const ErrorCase agent_errors[] = {
  { "[Agnet]\nHostId=a\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_UNKNOWN_GROUP, "Agnet", NULL },
  { "[Agent]\nHostID=a\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_UNKNOWN_KEY, "Agent", "HostID" },
  { "[Agent]\nHostId=a\nHostId=b\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "HostId" },
  { "[Agent]\nHostId=a\n", BG_CONFIG_ERROR_MISSING_KEY, "Kafka", "BootstrapServers" },
  { "[Agent]\nHostId=a\n[Kafka]\nBootstrapServers=\n", BG_CONFIG_ERROR_MISSING_KEY, "Kafka", "BootstrapServers" },
  { "[Agent]\nHostId=Not Valid\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_NAME, "Agent", "HostId" },
  { "[Agent]\nHostId=a\nBus=user\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "Bus" },
  { "[Agent]\nHostId=a\nMaxJobs=ten\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "MaxJobs" },
  { "[Agent]\nHostId=a\nMaxJobs=0\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "MaxJobs" },
  { "[Agent]\nHostId=a\nMaxJobs=5000\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "MaxJobs" },
  { "[Agent]\nHostId=a\nMaxJobs=-1\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "MaxJobs" },
  { "[Agent]\nHostId=a\nHeartbeatSec=0\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "HeartbeatSec" },
  { "[Agent]\nHostId=a\nHeartbeatSec=2s\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "HeartbeatSec" },
  { "[Agent]\nHostId=a\nHeartbeatSec=inf\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "HeartbeatSec" },
  { "[Agent]\nHostId=a\nStateDirectory=var/lib/bg\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "StateDirectory" },
  { "[Agent]\nHostId=a\nJobsDirectory=\n" AGENT_OK_KAFKA, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "JobsDirectory" },
  { "[Agent]\nHostId=a\n[Kafka]\nBootstrapServers=k:1\nControlTopic=a/b\n", BG_CONFIG_ERROR_INVALID_VALUE, "Kafka", "ControlTopic" },
  { "[Agent]\nHostId=a\n[Kafka]\nBootstrapServers=k:1\nAcks=all\n", BG_CONFIG_ERROR_UNKNOWN_KEY, "Kafka", "Acks" },
  { "[Agent]\nHostId=a\n" AGENT_OK_KAFKA "[Kafka.Properties]\nno.such.property=1\n",
    BG_CONFIG_ERROR_UNKNOWN_KEY, "Kafka.Properties", "no.such.property" },
  { "[Agent]\nHostId=a\n" AGENT_OK_KAFKA "[Kafka.Properties]\nsecurity.protocol=CARRIER_PIGEON\n",
    BG_CONFIG_ERROR_INVALID_VALUE, "Kafka.Properties", "security.protocol" },
  { "[Agent]\nHostId=a\n" AGENT_OK_KAFKA "[Kafka.Properties]\nbootstrap.servers=k:1\n",
    BG_CONFIG_ERROR_INVALID_VALUE, "Kafka.Properties", "bootstrap.servers" },
  { "[Agent]\nHostId=a\n" AGENT_OK_KAFKA "[librdkafka]\nclient.id=x\n", BG_CONFIG_ERROR_UNKNOWN_GROUP, "librdkafka", NULL },
};

#define JOB_OK "[Job]\nExecStart=/usr/bin/job --version=%v\nInputTopics=clicks\n"

static const ErrorCase job_errors[] = {
  { JOB_OK "[Resource]\nCPUWeight=1\n", BG_CONFIG_ERROR_UNKNOWN_GROUP, "Resource", NULL },
  { JOB_OK "Descripton=x\n", BG_CONFIG_ERROR_UNKNOWN_KEY, "Job", "Descripton" },
  { JOB_OK "Description[de]=Klicks\n", BG_CONFIG_ERROR_UNKNOWN_KEY, "Job", "Description[de]" },
  { JOB_OK "[Readiness]\nMaxLagg=1\n", BG_CONFIG_ERROR_UNKNOWN_KEY, "Readiness", "MaxLagg" },
  { "[Job]\nInputTopics=clicks\n", BG_CONFIG_ERROR_MISSING_KEY, "Job", "ExecStart" },
  { "[Job]\nExecStart=\nInputTopics=clicks\n", BG_CONFIG_ERROR_MISSING_KEY, "Job", "ExecStart" },
  { "[Job]\nExecStart=   \nInputTopics=clicks\n", BG_CONFIG_ERROR_MISSING_KEY, "Job", "ExecStart" },
  { "[Job]\nExecStart=/usr/bin/job 'unterminated\nInputTopics=clicks\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ExecStart" },
  { "[Job]\nExecStart=bin/job --version=%v\nInputTopics=clicks\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ExecStart" },
  { "[Job]\nExecStart=/usr/bin/job --color=%c\nInputTopics=clicks\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ExecStart" },
  { "[Job]\nExecStart=/usr/bin/job 100%\nInputTopics=clicks\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ExecStart" },
  { JOB_OK "ExecSavepoint=save %d\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ExecSavepoint" },
  { "[Job]\nExecStart=/usr/bin/job\n", BG_CONFIG_ERROR_MISSING_KEY, "Job", "InputTopics" },
  { "[Job]\nExecStart=/usr/bin/job\nInputTopics=\n", BG_CONFIG_ERROR_MISSING_KEY, "Job", "InputTopics" },
  { "[Job]\nExecStart=/usr/bin/job\nInputTopics=a;;b\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics" },
  { "[Job]\nExecStart=/usr/bin/job\nInputTopics=a b\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics" },
  { "[Job]\nExecStart=/usr/bin/job\nInputTopics=a:0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics" },
  { "[Job]\nExecStart=/usr/bin/job\nInputTopics=a:x\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics" },
  { "[Job]\nExecStart=/usr/bin/job\nInputTopics=a;a\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics" },
  { JOB_OK "OutputTopics=ok;not ok\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "OutputTopics" },
  { JOB_OK "ConsumerGroup=%j-%x\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ConsumerGroup" },
  { JOB_OK "ConsumerGroup=\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ConsumerGroup" },
  { JOB_OK "Hosts=good;Bad_Host\n", BG_CONFIG_ERROR_INVALID_NAME, "Job", "Hosts" },
  { JOB_OK "Hosts=a;a\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Hosts" },
  { JOB_OK "Environment=JUSTANAME\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Environment" },
  { JOB_OK "Environment=1X=a\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Environment" },
  { JOB_OK "Environment=BLUEGREEN_COLOR=blue\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Environment" },
  { JOB_OK "Description=bad escape \\q\n", BG_CONFIG_ERROR_PARSE, "Job", "Description" },
  { JOB_OK "Description=not UTF-8 \xff\n", BG_CONFIG_ERROR_PARSE, "Job", "Description" },
  { JOB_OK "Hosts=a\\q\n", BG_CONFIG_ERROR_PARSE, "Job", "Hosts" },
  { JOB_OK "StartTimeoutSec=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartTimeoutSec" },
  { JOB_OK "StartTimeoutSec=soon\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartTimeoutSec" },
  { JOB_OK "StartTimeoutSec=-1\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartTimeoutSec" },
  { JOB_OK "StartTimeoutSec=99999999999\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartTimeoutSec" },
  { JOB_OK "WatchdogSec=30s\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "WatchdogSec" },
  { JOB_OK "WatchdogSec=-1\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "WatchdogSec" },
  { JOB_OK "Restart=always\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Restart" },
  { JOB_OK "RestartSec=-1\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "RestartSec" },
  { JOB_OK "RestartSec=soon\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "RestartSec" },
  { JOB_OK "StartLimitBurst=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartLimitBurst" },
  { JOB_OK "StartLimitBurst=1001\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartLimitBurst" },
  { JOB_OK "StartLimitIntervalSec=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Job", "StartLimitIntervalSec" },
  { JOB_OK "[Readiness]\nMaxLag=-1\n", BG_CONFIG_ERROR_INVALID_VALUE, "Readiness", "MaxLag" },
  { JOB_OK "[Readiness]\nMaxLag=lots\n", BG_CONFIG_ERROR_INVALID_VALUE, "Readiness", "MaxLag" },
  { JOB_OK "[Readiness]\nStableSec=1e3\n", BG_CONFIG_ERROR_INVALID_VALUE, "Readiness", "StableSec" },
  { JOB_OK "[Readiness]\nStableSec=99999999999\n", BG_CONFIG_ERROR_INVALID_VALUE, "Readiness", "StableSec" },
  { JOB_OK "[Readiness]\nHealthCommand=check\n", BG_CONFIG_ERROR_INVALID_VALUE, "Readiness", "HealthCommand" },
  { JOB_OK "[Resources]\nCPUWeight=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "CPUWeight" },
  { JOB_OK "[Resources]\nCPUWeight=10001\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "CPUWeight" },
  { JOB_OK "[Resources]\nCPUWeight=high\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "CPUWeight" },
  { JOB_OK "[Resources]\nCatchUpCPUWeight=1.5\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "CatchUpCPUWeight" },
  { JOB_OK "[Resources]\nMemoryMax=12X\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "MemoryMax" },
  { JOB_OK "[Resources]\nMemoryMax=G\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "MemoryMax" },
  { JOB_OK "[Resources]\nMemoryMax=1.5G\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "MemoryMax" },
  { JOB_OK "[Resources]\nMemoryMax=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "MemoryMax" },
  { JOB_OK "[Resources]\nMemoryMax=99999999999T\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "MemoryMax" },
  { JOB_OK "[Resources]\nMemoryMax=99999999999999999999\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "MemoryMax" },
  { JOB_OK "[Resources]\nTasksMax=many\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "TasksMax" },
  { JOB_OK "[Resources]\nTasksMax=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "TasksMax" },
  { JOB_OK "[Cutover]\nDeadlineSec=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Cutover", "DeadlineSec" },
  { JOB_OK "[Cutover]\nObservationSec=-5\n", BG_CONFIG_ERROR_INVALID_VALUE, "Cutover", "ObservationSec" },
  { JOB_OK "[Cutover]\nLeadFactor=x\n", BG_CONFIG_ERROR_INVALID_VALUE, "Cutover", "LeadFactor" },
  { JOB_OK "[Cutover]\nAttempts=0\n", BG_CONFIG_ERROR_INVALID_VALUE, "Cutover", "Attempts" },
  { JOB_OK "[Cutover]\nAttempts=11\n", BG_CONFIG_ERROR_INVALID_VALUE, "Cutover", "Attempts" },
  { JOB_OK "[Cutover]\nAttempts=two\n", BG_CONFIG_ERROR_INVALID_VALUE, "Cutover", "Attempts" },
  { JOB_OK "[Guard]\nIPAddressDeny=10.0.0.0/99\n", BG_CONFIG_ERROR_INVALID_VALUE, "Guard", "IPAddressDeny" },
  { JOB_OK "[Guard]\nEnvironment=NOPE\n", BG_CONFIG_ERROR_INVALID_VALUE, "Guard", "Environment" },
};

static void
test_agent_errors (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (agent_errors); i++)
    {
      const ErrorCase *c = &agent_errors[i];
      g_autofree char *shown = g_strescape (c->data, NULL);
      g_test_message ("case %u: %s", i, shown);
      g_autoptr (GError) error = NULL;
      g_autoptr (BgAgentConfig) config = bg_agent_config_load_from_data (AGENT_PATH, c->data, &error);
      g_assert_null (config);
      assert_config_error (error, c->code, AGENT_PATH, c->group, c->key);
    }
}

static void
test_job_errors (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (job_errors); i++)
    {
      const ErrorCase *c = &job_errors[i];
      g_autofree char *shown = g_strescape (c->data, NULL);
      g_test_message ("case %u: %s", i, shown);
      g_autoptr (GError) error = NULL;
      g_autoptr (BgJobConfig) job = bg_job_config_load_from_data (JOB_PATH, c->data, &error);
      g_assert_null (job);
      assert_config_error (error, c->code, JOB_PATH, c->group, c->key);
    }
}

/* The exact wording an operator sees, for one representative case. */
static void
test_error_message (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) job =
    bg_job_config_load_from_data (JOB_PATH, JOB_OK "[Resources]\nMemoryMax=12X\n", &error);
  g_assert_null (job);
  g_assert_cmpstr (error->message, ==,
                   "/etc/bluegreen/jobs.d/clicks.job: [Resources] MemoryMax: \"12X\" is not a size "
                   "(use a number with an optional K, M, G or T suffix, or \"infinity\")");
}

static void
test_job_bad_name (void)
{
  const char *const paths[] = {
    "/etc/bluegreen/jobs.d/Clicks.job",
    "/etc/bluegreen/jobs.d/two words.job",
    "/etc/bluegreen/jobs.d/-dash.job",
    "/etc/bluegreen/jobs.d/.job",
    "/etc/bluegreen/jobs.d/clicks.conf",
  };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BgJobConfig) job = bg_job_config_load_from_data (paths[i], JOB_OK, &error);
      g_assert_null (job);
      assert_config_error (error, BG_CONFIG_ERROR_INVALID_NAME, paths[i], NULL, NULL);
    }
}

static void
test_missing_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-config-XXXXXX", NULL);
  g_autofree char *job_path = g_build_filename (dir, "nothing.job", NULL);
  g_autofree char *conf_path = g_build_filename (dir, "bluegreend.conf", NULL);
  g_autoptr (GError) error = NULL;

  g_autoptr (BgJobConfig) job = bg_job_config_load (job_path, &error);
  g_assert_null (job);
  assert_config_error (error, BG_CONFIG_ERROR_READ, job_path, NULL, NULL);
  g_clear_error (&error);

  g_autoptr (BgAgentConfig) conf = bg_agent_config_load (conf_path, &error);
  g_assert_null (conf);
  assert_config_error (error, BG_CONFIG_ERROR_READ, conf_path, NULL, NULL);
  g_rmdir (dir);
}

static void
test_not_a_key_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-config-XXXXXX", NULL);
  g_autofree char *job_path = g_build_filename (dir, "clicks.job", NULL);
  g_autofree char *conf_path = g_build_filename (dir, "bluegreend.conf", NULL);
  g_assert_true (g_file_set_contents (job_path, "#!/bin/sh\nexec /usr/bin/clicks\n", -1, NULL));
  g_assert_true (g_file_set_contents (conf_path, "HostId=a\n[Agent]\n", -1, NULL));
  g_autoptr (GError) error = NULL;

  g_autoptr (BgJobConfig) job = bg_job_config_load (job_path, &error);
  g_assert_null (job);
  assert_config_error (error, BG_CONFIG_ERROR_PARSE, job_path, NULL, NULL);
  g_clear_error (&error);

  g_autoptr (BgAgentConfig) conf = bg_agent_config_load (conf_path, &error);
  g_assert_null (conf);
  assert_config_error (error, BG_CONFIG_ERROR_PARSE, conf_path, NULL, NULL);

  g_unlink (job_path);
  g_unlink (conf_path);
  g_rmdir (dir);
}

/* ---- Templates --------------------------------------------------------------- */

static void
test_expand_exec (void)
{
  const char *data =
    "[Job]\n"
    "ExecStart=/opt/%j/%v/run --version=%v --literal=%%v \"a b\"\n"
    "InputTopics=clicks\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) j = bg_job_config_load_from_data (JOB_PATH, data, &error);
  g_assert_no_error (error);

  g_auto (GStrv) argv = bg_job_config_expand_exec (j, "2.0.0-rc1+b7", &error);
  g_assert_no_error (error);
  const char *const expected[] = { "/opt/clicks/2.0.0-rc1+b7/run", "--version=2.0.0-rc1+b7",
                                   "--literal=%v", "a b", NULL };
  g_assert_cmpstrv (argv, expected);

  /* A version never becomes a path component that escapes, nor new words. */
  const char *const bad[] = { "../1", "1/2", "", "-rc", "1 2", "v;rm" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_auto (GStrv) none = bg_job_config_expand_exec (j, bad[i], &e);
      g_assert_null (none);
      assert_config_error (e, BG_CONFIG_ERROR_INVALID_VERSION, JOB_PATH, "Job", "ExecStart");
    }
  g_autoptr (GError) e = NULL;
  g_auto (GStrv) none = bg_job_config_expand_exec (j, NULL, &e);
  g_assert_null (none);
  g_assert_error (e, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VERSION);
}

static void
test_expand_consumer_group (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) j = bg_job_config_load_from_data (JOB_PATH, JOB_OK, &error);
  g_assert_no_error (error);
  g_autofree char *blue = bg_job_config_expand_consumer_group (j, BG_COLOR_BLUE, "1.0", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (blue, ==, "clicks-blue");
  g_autofree char *green = bg_job_config_expand_consumer_group (j, BG_COLOR_GREEN, "1.0", &error);
  g_assert_cmpstr (green, ==, "clicks-green");

  g_autoptr (BgJobConfig) k =
    bg_job_config_load_from_data (JOB_PATH, JOB_OK "ConsumerGroup=team.%j.%c.v%v.100%%\n", &error);
  g_assert_no_error (error);
  g_autofree char *custom = bg_job_config_expand_consumer_group (k, BG_COLOR_GREEN, "1.2", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (custom, ==, "team.clicks.green.v1.2.100%");

  g_autofree char *none = bg_job_config_expand_consumer_group (k, BG_COLOR_GREEN, "1/2", &error);
  g_assert_null (none);
  assert_config_error (error, BG_CONFIG_ERROR_INVALID_VERSION, JOB_PATH, "Job", "ConsumerGroup");
}

static void
test_expand_savepoint_health (void)
{
  const char *data = JOB_OK
    "ExecSavepoint=/usr/bin/save --job=%j --version=%v --to=%d/%v\n"
    "[Readiness]\n"
    "HealthCommand=/usr/bin/check %j %c %v\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) j = bg_job_config_load_from_data (JOB_PATH, data, &error);
  g_assert_no_error (error);

  g_auto (GStrv) save = bg_job_config_expand_savepoint (j, "3", "/var/lib/bluegreen/sp", &error);
  g_assert_no_error (error);
  const char *const save_expected[] = { "/usr/bin/save", "--job=clicks", "--version=3",
                                        "--to=/var/lib/bluegreen/sp/3", NULL };
  g_assert_cmpstrv (save, save_expected);

  g_auto (GStrv) health = bg_job_config_expand_health (j, BG_COLOR_GREEN, "3", &error);
  g_assert_no_error (error);
  const char *const health_expected[] = { "/usr/bin/check", "clicks", "green", "3", NULL };
  g_assert_cmpstrv (health, health_expected);

  /* Not configured: a named error, not a crash. */
  g_autoptr (BgJobConfig) plain = bg_job_config_load_from_data (JOB_PATH, JOB_OK, &error);
  g_assert_no_error (error);
  g_auto (GStrv) none = bg_job_config_expand_savepoint (plain, "3", "/tmp", &error);
  g_assert_null (none);
  assert_config_error (error, BG_CONFIG_ERROR_MISSING_KEY, JOB_PATH, "Job", "ExecSavepoint");
  g_clear_error (&error);
  g_auto (GStrv) none2 = bg_job_config_expand_health (plain, BG_COLOR_BLUE, "3", &error);
  g_assert_null (none2);
  assert_config_error (error, BG_CONFIG_ERROR_MISSING_KEY, JOB_PATH, "Readiness", "HealthCommand");
}

/* ---- Directories ------------------------------------------------------------- */

static const char *
find_error_for (GPtrArray *errors, const char *basename)
{
  for (guint i = 0; i < errors->len; i++)
    {
      const GError *e = errors->pdata[i];
      g_autofree char *needle = g_strdup_printf ("/%s: ", basename);
      if (strstr (e->message, needle) != NULL)
        return e->message;
    }
  return NULL;
}

static void
test_dir_mixed (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "data", "config", "jobs.d", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) file_errors = NULL;
  g_autoptr (GPtrArray) jobs = bg_job_configs_load_dir (dir, 0, &file_errors, &error);
  g_assert_no_error (error);

  /* The good ones, by name; README and .hidden.job ignored. */
  g_assert_cmpuint (jobs->len, ==, 3);
  g_assert_cmpstr (((BgJobConfig *) jobs->pdata[0])->name, ==, "alpha");
  g_assert_cmpstr (((BgJobConfig *) jobs->pdata[1])->name, ==, "beta");
  g_assert_cmpstr (((BgJobConfig *) jobs->pdata[2])->name, ==, "gamma");
  g_assert_cmpint (((BgJobConfig *) jobs->pdata[1])->input_partitions[0], ==, 4);
  g_assert_cmpint (((BgJobConfig *) jobs->pdata[1])->observation_usec, ==, 0);

  /* Each bad file reported once, by its path. */
  g_assert_cmpuint (file_errors->len, ==, 2);
  const char *broken = find_error_for (file_errors, "broken.job");
  g_assert_nonnull (broken);
  g_assert_nonnull (strstr (broken, "[Resources] MemoryMax:"));
  g_assert_nonnull (find_error_for (file_errors, "Capital.job"));
  for (guint i = 0; i < file_errors->len; i++)
    g_assert_true (g_str_has_prefix (((GError *) file_errors->pdata[i])->message, dir));

  /* Without a place for per-file errors, the first bad file fails it all
   * ("Capital.job" sorts first in byte order). */
  g_autoptr (GPtrArray) strict = bg_job_configs_load_dir (dir, 0, NULL, &error);
  g_assert_null (strict);
  g_assert_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_NAME);
  g_assert_nonnull (strstr (error->message, "Capital.job"));
}

static void
test_dir_max_jobs (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "data", "config", "jobs.d", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) file_errors = NULL;
  g_autoptr (GPtrArray) jobs = bg_job_configs_load_dir (dir, 2, &file_errors, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (jobs->len, ==, 2);
  g_assert_cmpstr (((BgJobConfig *) jobs->pdata[0])->name, ==, "alpha");
  g_assert_cmpstr (((BgJobConfig *) jobs->pdata[1])->name, ==, "beta");
  /* Capital.job (first in byte order) fails on its own and does not count;
   * once two jobs are loaded, the files after them are skipped unread. */
  g_assert_cmpuint (file_errors->len, ==, 3);
  g_assert_error ((GError *) file_errors->pdata[0], BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_NAME);
  g_assert_error ((GError *) file_errors->pdata[1], BG_CONFIG_ERROR, BG_CONFIG_ERROR_TOO_MANY_JOBS);
  g_assert_error ((GError *) file_errors->pdata[2], BG_CONFIG_ERROR, BG_CONFIG_ERROR_TOO_MANY_JOBS);
  g_assert_nonnull (find_error_for (file_errors, "broken.job"));
  const char *gamma = find_error_for (file_errors, "gamma.job");
  g_assert_nonnull (gamma);
  g_assert_nonnull (strstr (gamma, "MaxJobs=2"));
}

static void
test_dir_missing (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) file_errors = NULL;
  g_autoptr (GPtrArray) jobs = bg_job_configs_load_dir ("/nonexistent/bluegreen/jobs.d", 0, &file_errors, &error);
  g_assert_null (jobs);
  assert_config_error (error, BG_CONFIG_ERROR_READ, "/nonexistent/bluegreen/jobs.d", NULL, NULL);
}

static void
test_dir_empty (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-config-XXXXXX", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) file_errors = NULL;
  g_autoptr (GPtrArray) jobs = bg_job_configs_load_dir (dir, 0, &file_errors, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (jobs->len, ==, 0);
  g_assert_cmpuint (file_errors->len, ==, 0);
  g_rmdir (dir);
}


/* ---- [sandbox] ----------------------------------------------------------------- */

static const ErrorCase sandbox_errors[] = {
  { JOB_OK "[Sandbox]\nUser=two words\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "User" },
  { JOB_OK "[Sandbox]\nUser=-x\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "User" },
  { JOB_OK "[Sandbox]\nGroup=a/b\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "Group" },
  { JOB_OK "[Sandbox]\nDynamicUser=maybe\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "DynamicUser" },
  { JOB_OK "[Sandbox]\nUser=clicks\nDynamicUser=yes\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "DynamicUser" },
  { JOB_OK "[Sandbox]\nHardening=strict\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "Hardening" },
  { JOB_OK "[Sandbox]\nReadWritePaths=var/lib/x\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "ReadWritePaths" },
  { JOB_OK "[Sandbox]\nBindPaths=/a:/b\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "BindPaths" },
  { JOB_OK "[Sandbox]\nEnvironmentFile=env\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "EnvironmentFile" },
  { JOB_OK "[Sandbox]\nLoadCredential=/etc/secret\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "LoadCredential" },
  { JOB_OK "[Sandbox]\nLoadCredential=kafka:relative\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "LoadCredential" },
  { JOB_OK "[Sandbox]\nLoadCredential=a b:/x\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "LoadCredential" },
  { JOB_OK "[Sandbox]\nLoadCredential=k:/x;k:/y\n", BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", "LoadCredential" },
  { JOB_OK "[Sandbox]\nPrivateNetwork=yes\n", BG_CONFIG_ERROR_UNKNOWN_KEY, "Sandbox", "PrivateNetwork" },
};

static void
test_sandbox_errors (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (sandbox_errors); i++)
    {
      const ErrorCase *c = &sandbox_errors[i];
      g_autofree char *shown = g_strescape (c->data, NULL);
      g_test_message ("case %u: %s", i, shown);
      g_autoptr (GError) error = NULL;
      g_autoptr (BgJobConfig) job = bg_job_config_load_from_data (JOB_PATH, c->data, &error);
      g_assert_null (job);
      assert_config_error (error, c->code, JOB_PATH, c->group, c->key);
    }
}

static void
test_sandbox_full (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) d = bg_job_config_load_from_data (JOB_PATH, JOB_OK, &error);
  g_assert_no_error (error);
  /* Defaults: the preset, no user, nothing else. */
  g_assert_cmpint (d->hardening, ==, BG_HARDENING_DEFAULT);
  g_assert_null (d->user);
  g_assert_null (d->group);
  g_assert_false (d->dynamic_user);
  g_assert_cmpuint (g_strv_length (d->load_credentials), ==, 0);
  g_assert_cmpuint (g_strv_length (d->environment_files), ==, 0);

  g_autoptr (BgJobConfig) j = bg_job_config_load_from_data (
    JOB_PATH, JOB_OK "[Sandbox]\nUser=clicks\nGroup=kafka\nHardening=none\n"
    "ReadWritePaths=/var/lib/clicks;-/var/cache/clicks\nBindPaths=/srv/clicks\n"
    "LoadCredential=kafka.properties:/etc/bluegreen/credentials/clicks.properties\n"
    "EnvironmentFile=-/etc/default/clicks\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (j->user, ==, "clicks");
  g_assert_cmpstr (j->group, ==, "kafka");
  g_assert_cmpint (j->hardening, ==, BG_HARDENING_NONE);
  const char *const rw[] = { "/var/lib/clicks", "-/var/cache/clicks", NULL };
  g_assert_cmpstrv (j->read_write_paths, rw);
  g_assert_cmpstr (j->bind_paths[0], ==, "/srv/clicks");
  g_assert_cmpstr (j->load_credentials[0], ==, "kafka.properties:/etc/bluegreen/credentials/clicks.properties");
  g_assert_cmpstr (j->environment_files[0], ==, "-/etc/default/clicks");

  g_autoptr (BgJobConfig) dyn = bg_job_config_load_from_data (JOB_PATH, JOB_OK "[Sandbox]\nDynamicUser=yes\n", &error);
  g_assert_no_error (error);
  g_assert_true (dyn->dynamic_user);

  g_autoptr (BgJobConfig) bad = bg_job_config_load_from_data (JOB_PATH, JOB_OK "[Sandbox]\nHardening=strict\n", &error);
  g_assert_null (bad);
  g_assert_cmpstr (error->message, ==,
                   "/etc/bluegreen/jobs.d/clicks.job: [Sandbox] Hardening: \"strict\" is not a preset "
                   "(use \"default\" or \"none\")");
}

/* A bluegreend.conf with a secret is refused unless only its owner can read
 * it; PropertiesFile= reads the secret from a credential instead. */
static void
test_agent_secrets (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-config-XXXXXX", NULL);
  g_autofree char *conf = g_build_filename (dir, "bluegreend.conf", NULL);
  g_autofree char *props = g_build_filename (dir, "agent.properties", NULL);
  g_autoptr (GError) error = NULL;
  const char *with_secret = "[Agent]\nHostId=a\n" AGENT_OK_KAFKA
                            "[Kafka.Properties]\nsasl.username=agent\nsasl.password=hunter2\n";

  g_assert_true (g_file_set_contents (conf, with_secret, -1, NULL));
  g_assert_cmpint (g_chmod (conf, 0640), ==, 0);
  {
    g_autoptr (BgAgentConfig) c = bg_agent_config_load (conf, &error);
    g_assert_null (c);
    g_assert_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INSECURE);
    g_assert_true (g_str_has_prefix (error->message, conf));
    g_assert_nonnull (strstr (error->message, "[Kafka.Properties] sasl.password"));
    g_assert_nonnull (strstr (error->message, "its group"));
    g_assert_null (strstr (error->message, "hunter2"));
    g_clear_error (&error);
  }
  g_assert_cmpint (g_chmod (conf, 0604), ==, 0);
  {
    g_autoptr (BgAgentConfig) c = bg_agent_config_load (conf, &error);
    g_assert_null (c);
    g_assert_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INSECURE);
    g_assert_nonnull (strstr (error->message, "others"));
    g_clear_error (&error);
  }
  g_assert_cmpint (g_chmod (conf, 0600), ==, 0);
  {
    g_autoptr (BgAgentConfig) c = bg_agent_config_load (conf, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (c->kafka_properties->len, ==, 2);
  }
  /* Without secrets, a world-readable file is fine. */
  g_assert_true (g_file_set_contents (conf, "[Agent]\nHostId=a\n" AGENT_OK_KAFKA, -1, NULL));
  g_assert_cmpint (g_chmod (conf, 0644), ==, 0);
  {
    g_autoptr (BgAgentConfig) c = bg_agent_config_load (conf, &error);
    g_assert_no_error (error);
  }

  /* PropertiesFile=: a credential name from $CREDENTIALS_DIRECTORY, or a path. */
  g_assert_true (g_file_set_contents (props, "# agent\nsasl.username = agent\n\nsasl.password=hunter2\n", -1, NULL));
  {
    g_autofree char *data = g_strdup_printf ("[Agent]\nHostId=a\n" AGENT_OK_KAFKA "PropertiesFile=agent.properties\n"
                                             "[Kafka.Properties]\nclient.id=x\n");
    g_unsetenv ("CREDENTIALS_DIRECTORY");
    g_autoptr (BgAgentConfig) none = bg_agent_config_load_from_data (AGENT_PATH, data, &error);
    g_assert_null (none);
    assert_config_error (error, BG_CONFIG_ERROR_READ, AGENT_PATH, "Kafka", "PropertiesFile");
    g_clear_error (&error);

    g_setenv ("CREDENTIALS_DIRECTORY", dir, TRUE);
    g_autoptr (BgAgentConfig) c = bg_agent_config_load_from_data (AGENT_PATH, data, &error);
    g_unsetenv ("CREDENTIALS_DIRECTORY");
    g_assert_no_error (error);
    g_assert_cmpstr (c->properties_file, ==, props);
    g_assert_cmpuint (c->kafka_properties->len, ==, 3);
    BgConfigProperty *p0 = c->kafka_properties->pdata[0], *p1 = c->kafka_properties->pdata[1];
    BgConfigProperty *p2 = c->kafka_properties->pdata[2];
    g_assert_cmpstr (p0->key, ==, "sasl.username");
    g_assert_cmpstr (p0->value, ==, "agent");
    g_assert_cmpstr (p1->key, ==, "sasl.password");
    g_assert_cmpstr (p1->value, ==, "hunter2");
    g_assert_cmpstr (p2->key, ==, "client.id");
  }
  {
    g_autofree char *data = g_strdup_printf ("[Agent]\nHostId=a\n" AGENT_OK_KAFKA "PropertiesFile=%s\n", props);
    g_autoptr (BgAgentConfig) c = bg_agent_config_load_from_data (AGENT_PATH, data, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (c->kafka_properties->len, ==, 2);
  }
  /* The cluster stays in BootstrapServers=. */
  g_assert_true (g_file_set_contents (props, "bootstrap.servers=elsewhere:9092\n", -1, NULL));
  {
    g_autofree char *data = g_strdup_printf ("[Agent]\nHostId=a\n" AGENT_OK_KAFKA "PropertiesFile=%s\n", props);
    g_autoptr (BgAgentConfig) c = bg_agent_config_load_from_data (AGENT_PATH, data, &error);
    g_assert_null (c);
    assert_config_error (error, BG_CONFIG_ERROR_INVALID_VALUE, AGENT_PATH, "Kafka", "PropertiesFile");
    g_clear_error (&error);
  }
  /* A bad line names the file and line, never the value. */
  g_assert_true (g_file_set_contents (props, "sasl.password=hunter2\nno.such.property=hunter3\n", -1, NULL));
  {
    g_autofree char *data = g_strdup_printf ("[Agent]\nHostId=a\n" AGENT_OK_KAFKA "PropertiesFile=%s\n", props);
    g_autoptr (BgAgentConfig) c = bg_agent_config_load_from_data (AGENT_PATH, data, &error);
    g_assert_null (c);
    assert_config_error (error, BG_CONFIG_ERROR_UNKNOWN_KEY, AGENT_PATH, "Kafka", "PropertiesFile");
    g_autofree char *where = g_strdup_printf ("%s:2: no.such.property", props);
    g_assert_nonnull (strstr (error->message, where));
    g_assert_null (strstr (error->message, "hunter3"));
  }
  g_remove (conf);
  g_remove (props);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/agent/example", test_agent_example);
  g_test_add_func ("/config/agent/full", test_agent_full);
  g_test_add_func ("/config/agent/errors", test_agent_errors);
  g_test_add_func ("/config/job/example", test_job_example);
  g_test_add_func ("/config/job/full", test_job_full);
  g_test_add_func ("/config/job/sizes", test_sizes);
  g_test_add_func ("/config/job/errors", test_job_errors);
  g_test_add_func ("/config/job/error-message", test_error_message);
  g_test_add_func ("/config/job/bad-name", test_job_bad_name);
  g_test_add_func ("/config/file/missing", test_missing_file);
  g_test_add_func ("/config/file/not-a-key-file", test_not_a_key_file);
  g_test_add_func ("/config/expand/exec", test_expand_exec);
  g_test_add_func ("/config/expand/consumer-group", test_expand_consumer_group);
  g_test_add_func ("/config/expand/savepoint-health", test_expand_savepoint_health);
  g_test_add_func ("/config/dir/mixed", test_dir_mixed);
  g_test_add_func ("/config/dir/max-jobs", test_dir_max_jobs);
  g_test_add_func ("/config/dir/missing", test_dir_missing);
  g_test_add_func ("/config/dir/empty", test_dir_empty);
  g_test_add_func ("/config/job/[sandbox]/errors", test_sandbox_errors);
  g_test_add_func ("/config/job/[sandbox]/keys", test_sandbox_full);
  g_test_add_func ("/config/agent/[sandbox]/secrets", test_agent_secrets);
  return g_test_run ();
}
