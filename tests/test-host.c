/* test-host.c — the simulated hosts (tools/bg-host) and the test helper
 * library (tests/lib/bgtest): two hosts at once keep their units apart, a
 * unit's process is attributed to its unit by sd_pid_get_user_unit() as on
 * a real machine, and stopping a host leaves no process, cgroup, mount
 * namespace or directory behind. Also exercises the library's waits and
 * its embedded-Kafka helpers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include "bgtest.h"

typedef struct {
  BgtHost *a;
  BgtHost *b;
} TwoHosts;

static void
two_hosts_setup (TwoHosts *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->a = bgt_host_start ("alpha", &error);
  g_assert_no_error (error);
  f->b = bgt_host_start ("beta", &error);
  g_assert_no_error (error);
}

static void
two_hosts_teardown (TwoHosts *f, gconstpointer data)
{
  g_clear_pointer (&f->a, bgt_host_free);
  g_clear_pointer (&f->b, bgt_host_free);
}

static char *
list_units (BgtHost *host)
{
  const char *argv[] = { "systemctl", "--user", "list-units", "--all", "--no-legend", "--no-pager", NULL };
  g_autoptr (GError) error = NULL;
  char *out = NULL;
  int status = -1;
  g_assert_true (bgt_host_exec (host, argv, &out, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  return out;
}

typedef struct {
  const char *path;
  const char *needle;
} FileWait;

static gboolean
file_contains (gpointer data)
{
  FileWait *w = data;
  g_autofree char *contents = NULL;
  return g_file_get_contents (w->path, &contents, NULL, NULL) && strstr (contents, w->needle) != NULL;
}

static void
test_host_units_apart (TwoHosts *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "/bin/sh", "-c", "echo probe-started; exec sleep 600", NULL };
  const char *env[] = { "BG_PROBE=1", NULL };

  g_assert_true (bgt_wait_bus_name (f->a->bus, "org.freedesktop.systemd1", 5000));
  g_assert_true (bgt_start_transient_unit (f->a, "probe", argv, env, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_wait_unit_state (f->a, "probe.service", "active", 5000, &error));
  g_assert_no_error (error);

  g_autofree char *units_a = list_units (f->a);
  g_autofree char *units_b = list_units (f->b);
  g_assert_nonnull (strstr (units_a, "probe.service"));
  g_assert_null (strstr (units_b, "probe.service"));
  g_autofree char *state_b = bgt_unit_active_state (f->b, "probe.service", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (state_b, ==, "inactive");

  /* The unit's process is attributed to it as the agent's caller check
   * expects under a user manager. */
  guint32 pid = bgt_unit_main_pid (f->a, "probe", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pid, >, 0);
  g_autofree char *user_unit = NULL;
  g_assert_cmpint (sd_pid_get_user_unit ((pid_t) pid, &user_unit), >=, 0);
  g_assert_cmpstr (user_unit, ==, "probe.service");
  g_autofree char *unit = NULL;
  g_assert_cmpint (sd_pid_get_unit ((pid_t) pid, &unit), >=, 0);
  g_assert_cmpstr (unit, ==, "user@0.service");
  g_autofree char *cgroup_file = g_strdup_printf ("/proc/%u/cgroup", pid);
  g_autofree char *cgroups = NULL;
  g_assert_true (g_file_get_contents (cgroup_file, &cgroups, NULL, NULL));
  g_assert_nonnull (strstr (cgroups, f->a->cgroup));
  g_assert_null (strstr (cgroups, f->b->cgroup));

  /* Its environment and output: the log file the library points it to. */
  g_autofree char *environ_file = g_strdup_printf ("/proc/%u/environ", pid);
  g_autofree char *environ = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (environ_file, &environ, &len, NULL));
  gboolean found = FALSE;
  for (gsize at = 0; at < len; at += strlen (environ + at) + 1)
    found = found || g_str_equal (environ + at, "BG_PROBE=1");
  g_assert_true (found);
  g_autofree char *log = bgt_host_log_path (f->a, "probe");
  FileWait w = { log, "probe-started" };
  g_assert_true (bgt_wait_until (file_contains, &w, 5000));
}

static void
test_host_unit_failure (TwoHosts *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "/bin/false", NULL };
  g_assert_true (bgt_start_transient_unit (f->b, "fails", argv, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_wait_unit_state (f->b, "fails", "failed", 5000, &error));
  g_assert_no_error (error);
  /* A failed unit blocks its name: a second start is refused. */
  g_assert_false (bgt_start_transient_unit (f->b, "fails", argv, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  /* A wait that cannot succeed ends in time with a timeout error. */
  gint64 start = g_get_monotonic_time ();
  g_assert_false (bgt_wait_unit_state (f->b, "fails", "active", 200, &error));
  g_assert_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 200 * 1000);
  g_clear_error (&error);
  g_assert_false (bgt_wait_bus_name (f->b->bus, "org.bluegreen.Never", 100));
}

static void
test_host_install_unit (TwoHosts *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *file = g_build_filename (cwd, "hello-host.service", NULL);
  g_assert_true (g_file_set_contents (file,
                                      "[Unit]\nDescription=bg-host install test\n"
                                      "[Service]\nExecStart=/bin/sh -c 'echo hello-from-unit; exec sleep 600'\n",
                                      -1, &error));
  const char *files[] = { file, NULL };
  g_assert_true (bgt_host_install_units (f->a, files, &error));
  g_assert_no_error (error);
  const char *argv[] = { "systemctl", "--user", "start", "hello-host.service", NULL };
  int status = -1;
  g_assert_true (bgt_host_exec (f->a, argv, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_assert_true (bgt_wait_unit_state (f->a, "hello-host.service", "active", 5000, &error));
  g_assert_no_error (error);
  g_autofree char *log = bgt_host_log_path (f->a, "hello-host.service");
  FileWait w = { log, "hello-from-unit" };
  g_assert_true (bgt_wait_until (file_contains, &w, 5000));
  g_autofree char *state_b = bgt_unit_active_state (f->b, "hello-host.service", &error);
  g_assert_cmpstr (state_b, ==, "inactive");
}

static gboolean
pid_exists (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d", pid);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}


/* A process in mount namespace @ns ("mnt:[...]"), or NULL (caller frees). */
static char *
mntns_member (const char *ns)
{
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *entry;

  while (proc != NULL && (entry = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *link = g_strdup_printf ("/proc/%s/ns/mnt", entry);
      g_autofree char *target = g_file_read_link (link, NULL);
      if (target != NULL && g_str_equal (target, ns))
        return g_strdup (entry);
    }
  return NULL;
}

static gboolean
mntns_empty (gpointer data)
{
  g_autofree char *member = mntns_member (data);
  return member == NULL;
}

static void
test_host_teardown_leaves_nothing (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgtHost) host = bgt_host_start ("gone", &error);
  g_assert_no_error (error);
  const char *argv[] = { "/bin/sleep", "600", NULL };
  g_assert_true (bgt_start_transient_unit (host, "sleeper", argv, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_wait_unit_state (host, "sleeper", "active", 5000, &error));
  guint32 unit_pid = bgt_unit_main_pid (host, "sleeper", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (unit_pid, >, 0);

  GPid manager = host->pid;
  g_autofree char *ns_link = g_strdup_printf ("/proc/%d/ns/mnt", manager);
  g_autofree char *mntns = g_file_read_link (ns_link, &error);
  g_assert_no_error (error);
  g_autofree char *own_mntns = g_file_read_link ("/proc/self/ns/mnt", NULL);
  g_assert_cmpstr (mntns, !=, own_mntns);
  /* Holding the namespace keeps its number ours: a freed namespace's number
   * is reused at once, and tests running in parallel make new ones. */
  int ns_fd = open (ns_link, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (ns_fd, >=, 0);
  g_autofree char *slice = g_strndup (host->cgroup, strcspn (host->cgroup, "/"));
  g_autofree char *cg_systemd = g_build_filename ("/sys/fs/cgroup/systemd", slice, NULL);
  g_autofree char *cg_unified = g_build_filename ("/sys/fs/cgroup/unified", slice, NULL);
  g_autofree char *cg_v2 = g_build_filename ("/sys/fs/cgroup", slice, NULL);
  g_assert_true (g_file_test (cg_systemd, G_FILE_TEST_IS_DIR) || g_file_test (cg_v2, G_FILE_TEST_IS_DIR));
  g_autofree char *dir = g_strdup (host->dir);
  g_assert_true (g_file_test (dir, G_FILE_TEST_IS_DIR));

  g_assert_true (bgt_host_stop (host, FALSE, &error));
  g_assert_no_error (error);

  g_assert_false (pid_exists (manager));
  g_assert_false (pid_exists ((GPid) unit_pid));
  g_assert_false (g_file_test (cg_systemd, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (cg_unified, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (cg_v2, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  /* No process is left in the mount namespace (it goes with the last one
   * and our reference). A killed process leaves its namespaces only at the
   * end of its exit, after its memory is unmapped (slow for a sanitizer
   * build): wait, bounded. */
  if (!bgt_wait_until (mntns_empty, (gpointer) mntns, 10000))
    {
      g_autofree char *pid = mntns_member (mntns);
      g_autofree char *status_path = g_strdup_printf ("/proc/%s/status", pid);
      g_autofree char *cmdline_path = g_strdup_printf ("/proc/%s/cmdline", pid);
      g_autofree char *status = NULL;
      g_autofree char *cmdline = NULL;
      gsize len = 0;

      g_file_get_contents (status_path, &status, NULL, NULL);
      if (g_file_get_contents (cmdline_path, &cmdline, &len, NULL))
        for (gsize i = 0; i + 1 < len; i++)
          if (cmdline[i] == '\0')
            cmdline[i] = ' ';
      g_error ("process %s (%s) still in the host's mount namespace %s:\n%s", pid,
               cmdline ? cmdline : "?", mntns, status ? status : "");
    }
  close (ns_fd);
  /* Stopping again is harmless. */
  g_assert_true (bgt_host_stop (host, FALSE, &error));
  g_assert_no_error (error);
}

static void
test_host_bg_host_errors (void)
{
  g_autofree char *tool = g_build_filename (g_getenv ("BG_TOP_SRCDIR"), "tools", "bg-host", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  const char *bad_name[] = { tool, "start", "no/slash", NULL };
  g_assert_true (bgt_run (bad_name, NULL, 10000, NULL, &err, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpint (status, !=, 0);
  g_assert_true (g_str_has_prefix (err, "error: "));
  g_clear_pointer (&err, g_free);
  const char *not_running[] = { tool, "exec", "nobody-here", "--", "true", NULL };
  g_assert_true (bgt_run (not_running, NULL, 10000, NULL, &err, &status, &error));
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (err, "not running"));
  const char *stop_unknown[] = { tool, "stop", "nobody-here", NULL };
  g_assert_true (bgt_run (stop_unknown, NULL, 10000, NULL, NULL, &status, &error));
  g_assert_cmpint (status, ==, 0);
}

static void
produce (const char *bootstrap, const char *topic, int32_t partition, int n)
{
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);
  char value[] = "x";
  for (int i = 0; i < n; i++)
    g_assert_cmpint (rd_kafka_producev (rk, RD_KAFKA_V_TOPIC (topic), RD_KAFKA_V_PARTITION (partition),
                                        RD_KAFKA_V_VALUE (value, 1), RD_KAFKA_V_END),
                     ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  g_assert_cmpint (rd_kafka_flush (rk, 10000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy (rk);
}

static void
test_host_kafka_helpers (void)
{
  g_autofree char *mock = bgt_build_path ("bluegreen-kafka-mock");
  if (mock == NULL)
    {
      g_test_skip ("bluegreen-kafka-mock not built");
      return;
    }
  g_autoptr (GError) error = NULL;
  const char *topics[] = { "hosttopic:2", NULL };
  g_autoptr (BgtKafka) kafka = bgt_kafka_start (1, topics, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (kafka->bootstrap, "127.0.0.1:"));
  g_assert_true (bgt_kafka_command (kafka, "rtt 1 1", &error));
  g_assert_no_error (error);
  g_assert_false (bgt_kafka_command (kafka, "no-such-command", &error));
  g_assert_error (error, BGT_ERROR, BGT_ERROR_FAILED);
  g_clear_error (&error);

  produce (kafka->bootstrap, "hosttopic", 1, 3);
  g_assert_true (bgt_wait_high_watermark (kafka->bootstrap, "hosttopic", 1, 3, 10000, &error));
  g_assert_no_error (error);
  g_assert_false (bgt_wait_high_watermark (kafka->bootstrap, "hosttopic", 0, 1, 300, &error));
  g_assert_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT);
  g_clear_error (&error);

  g_assert_true (bgt_kafka_stop (kafka, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (kafka->bootstrap_file, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (getuid () != 0)
    {
      g_test_skip ("needs root (mount namespaces, cgroups)");
      return g_test_run ();
    }
  g_test_add ("/host/two-hosts/units-apart", TwoHosts, NULL, two_hosts_setup, test_host_units_apart,
              two_hosts_teardown);
  g_test_add ("/host/two-hosts/unit-failure-and-timeouts", TwoHosts, NULL, two_hosts_setup,
              test_host_unit_failure, two_hosts_teardown);
  g_test_add ("/host/two-hosts/install-unit", TwoHosts, NULL, two_hosts_setup, test_host_install_unit,
              two_hosts_teardown);
  g_test_add_func ("/host/teardown-leaves-nothing", test_host_teardown_leaves_nothing);
  g_test_add_func ("/host/bg-host-errors", test_host_bg_host_errors);
  g_test_add_func ("/host/kafka-helpers", test_host_kafka_helpers);
  return g_test_run ();
}
