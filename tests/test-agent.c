/* test-agent.c — bluegreend as a real service of a test host's user
 * manager (units/test/bluegreend.service, installed with bg-host), driven
 * over D-Bus as an operator and a job would: [introspect], [access],
 * [crash], [restart].
 *
 * The jobs here are a small shell script (no Kafka, no library): it asks
 * for its steering from inside its slot unit, then sends READY=1 and
 * watchdog pings in a loop. That is enough for the daemon's own behaviour;
 * the end-to-end tests with the example job, the Kafka mock and the
 * verifier are [deploy], [flip] and [savepoint].
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "bgtest.h"

#define WAIT_MS 30000
#define AGENT "org.bluegreen.Agent1"
#define AGENT_PATH "/org/bluegreen/Agent1"
#define JOB_PATH "/org/bluegreen/Agent1/job/sleepy"
#define BLUE_PATH JOB_PATH "/blue"
#define GREEN_PATH JOB_PATH "/green"

typedef struct {
  BgtKafka *kafka;
  BgtHost *host;
  char *dir;
  char *config_path;
  char *state_dir;
} Fixture;

static const char job_script[] =
  "#!/bin/sh\n"
  "# A slot's job for the agent tests: asks for its steering from inside\n"
  "# its unit (must be allowed), then keeps telling systemd it is alive.\n"
  "busctl --user call org.bluegreen.Agent1 \"$BLUEGREEN_SLOT\" org.bluegreen.Slot1 GetSteering \\\n"
  "  >\"$OUT/steering-$BLUEGREEN_COLOR-$BLUEGREEN_VERSION.out\" 2>&1\n"
  "env | grep '^BLUEGREEN_' | sort >\"$OUT/env-$BLUEGREEN_COLOR-$BLUEGREEN_VERSION.out\"\n"
  "while :; do systemd-notify --ready WATCHDOG=1; sleep 1; done\n";

static void
write_file (const char *path, const char *contents, int mode)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
}

static char *
host_exec (Fixture *f, const char *const *argv, int *status_out)
{
  g_autoptr(GError) error = NULL;
  char *out = NULL;
  int status = -1;

  bgt_host_exec (f->host, argv, &out, &status, &error);
  g_assert_no_error (error);
  if (status_out != NULL)
    *status_out = status;
  return out;
}

static void
host_exec_ok (Fixture *f, const char *const *argv)
{
  int status = -1;
  g_autofree char *out = host_exec (f, argv, &status);

  if (status != 0)
    g_test_message ("%s failed (%d): %s", argv[0], status, out);
  g_assert_cmpint (status, ==, 0);
}

static gboolean
control_log_following (gpointer data)
{
  Fixture *f = data;
  g_autoptr(GVariant) v = g_dbus_connection_call_sync (f->host->bus, AGENT, AGENT_PATH,
                                                       "org.freedesktop.DBus.Properties", "Get",
                                                       g_variant_new ("(ss)", "org.bluegreen.Agent1", "ControlLog"),
                                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  g_autoptr(GVariant) inner = NULL;

  if (v == NULL)
    return FALSE;
  g_variant_get (v, "(v)", &inner);
  return g_strcmp0 (g_variant_get_string (inner, NULL), "following") == 0;
}

/* The agent starts and steers slots only once it has replayed the control
 * log (Agent1.ControlLog "following"). */
static gboolean
wait_control_log_following (Fixture *f)
{
  return bgt_wait_until (control_log_following, f, WAIT_MS);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  const char *tmp = g_getenv ("BG_TEST_TMPDIR");
  const char *builddir = g_getenv ("BG_TOP_BUILDDIR");
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  g_autofree char *jobs = NULL;
  g_autofree char *script = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *job = NULL;
  g_autofree char *binds = NULL;
  g_autofree char *unit = NULL;
  g_autofree char *slice = NULL;
  g_autofree char *env = NULL;
  static guint n = 0;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  g_assert_nonnull (builddir);
  /* Never an earlier run's directory: the process id too, when run
   * outside tap-test. */
  f->dir = g_strdup_printf ("%s/agent-%d-%u", tmp ? tmp : g_get_tmp_dir (), (int) getpid (), n++);
  f->state_dir = g_build_filename (f->dir, "state", NULL);
  jobs = g_build_filename (f->dir, "jobs", NULL);
  g_assert_cmpint (g_mkdir_with_parents (jobs, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (f->state_dir, 0700), ==, 0);

  script = g_build_filename (f->dir, "job.sh", NULL);
  write_file (script, job_script, 0755);
  /* The agent refuses to start or steer slots until it has replayed the
   * control log, so it needs a Kafka with the control topic. */
  {
    const char *topics[] = { "bluegreen-control:1", "input:2", NULL };
    f->kafka = bgt_kafka_start (1, topics, f->dir, &error);
    g_assert_no_error (error);
  }
  conf = g_strdup_printf ("[Agent]\nHostId=testhost\nBus=session\nStateDirectory=%s\nJobsDirectory=%s\n"
                          "HeartbeatSec=0.5\n[Kafka]\nBootstrapServers=%s\n[Kafka.Properties]\nfetch.wait.max.ms=10\n", f->state_dir, jobs,
                          f->kafka->bootstrap);
  f->config_path = g_build_filename (f->dir, "bluegreend.conf", NULL);
  write_file (f->config_path, conf, 0644);
  /* BindPaths=: the test's directory (below /tmp) stays visible and
   * writable under the default sandbox's PrivateTmp= and ProtectSystem=.
   * Restart=no: these tests check what a failed unit does; restarts are
   * tests/test-supervise.c's. */
  binds = bgt_sandbox_bind_paths (f->dir);
  job = g_strdup_printf ("[Job]\nExecStart=%s %%v\nInputTopics=input\nEnvironment=OUT=%s\nRestart=no\n"
                         "[Readiness]\nMaxLag=0\nStableSec=0\n[Sandbox]\nBindPaths=%s\n", script, f->dir, binds);
  g_free (jobs), jobs = g_build_filename (f->dir, "jobs", "sleepy.job", NULL);
  write_file (jobs, job, 0644);

  f->host = bgt_host_start ("agent", &error);
  g_assert_no_error (error);
  unit = g_build_filename (builddir, "units", "test", "bluegreend.service", NULL);
  slice = g_build_filename (srcdir, "units", "bluegreen.slice", NULL);
  {
    const char *files[] = { unit, slice, NULL };
    bgt_host_install_units (f->host, files, &error);
    g_assert_no_error (error);
  }
  env = g_strdup_printf ("BLUEGREEN_TEST_CONFIG=%s", f->config_path);
  {
    const char *argv[] = { "systemctl", "--user", "set-environment", env,
                           "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1",
                           "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", NULL };
    host_exec_ok (f, argv);
  }
  {
    /* Returns once the agent sent READY=1 (Type=notify). */
    const char *argv[] = { "systemctl", "--user", "start", "bluegreend.service", NULL };
    host_exec_ok (f, argv);
  }
  g_assert_true (bgt_wait_bus_name (f->host->bus, AGENT, WAIT_MS));
  g_assert_true (wait_control_log_following (f));
}

static void
dump_dir_logs (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = NULL;
      g_auto(GStrv) lines = NULL;

      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      lines = g_strsplit (text, "\n", -1);
      g_test_message ("---- %s", path);
      for (guint i = 0; lines[i] != NULL; i++)
        g_test_message ("%s", lines[i]);
    }
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->host != NULL)
    {
      if (g_test_failed ())
        {
          g_autofree char *logs = g_build_filename (f->state_dir, "logs", NULL);
          dump_dir_logs (logs);
          dump_dir_logs (f->dir);
        }
      g_clear_pointer (&f->host, bgt_host_free);
    }
  g_clear_pointer (&f->kafka, bgt_kafka_free);
  g_free (f->dir);
  g_free (f->config_path);
  g_free (f->state_dir);
}

/* ---- D-Bus helpers --------------------------------------------------------- */

static GVariant *
call (Fixture *f, const char *path, const char *iface, const char *method, GVariant *args,
      const char *reply_type, GError **error)
{
  return g_dbus_connection_call_sync (f->host->bus, AGENT, path, iface, method, args,
                                      reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, error);
}

static void
assert_dbus_error (GError *error, const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_test_message ("got %s: %s", remote, error->message);
  g_assert_cmpstr (remote, ==, name);
}

static GVariant *
get_prop (Fixture *f, const char *path, const char *iface, const char *prop)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (f->host->bus, AGENT, path, "org.freedesktop.DBus.Properties",
                                       "Get", g_variant_new ("(ss)", iface, prop),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static char *
get_string (Fixture *f, const char *path, const char *iface, const char *prop)
{
  g_autoptr(GVariant) v = get_prop (f, path, iface, prop);
  return g_variant_dup_string (v, NULL);
}

typedef struct {
  Fixture *f;
  const char *path;
  const char *iface;
  const char *prop;
  const char *want;
} PropWait;

static gboolean
prop_is (gpointer data)
{
  PropWait *w = data;
  g_autofree char *v = get_string (w->f, w->path, w->iface, w->prop);
  return g_strcmp0 (v, w->want) == 0;
}

static void
wait_prop (Fixture *f, const char *path, const char *iface, const char *prop, const char *want)
{
  PropWait w = { f, path, iface, prop, want };

  if (!bgt_wait_until (prop_is, &w, WAIT_MS))
    {
      g_autofree char *v = get_string (f, path, iface, prop);
      g_test_message ("%s %s.%s is '%s', waited for '%s'", path, iface, prop, v, want);
      g_assert_not_reached ();
    }
}

static void
deploy (Fixture *f, const char *version, gboolean live)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariantBuilder opts;

  g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
  if (live)
    g_variant_builder_add (&opts, "{sv}", "live", g_variant_new_boolean (TRUE));
  reply = call (f, JOB_PATH, "org.bluegreen.Job1", "Deploy",
                g_variant_new ("(sa{sv})", version, &opts), "(o)", &error);
  g_assert_no_error (error);
}

static guint
slot_pid (Fixture *f, const char *color)
{
  g_autofree char *unit = g_strdup_printf ("bluegreen-sleepy-%s.service", color);
  g_autoptr(GError) error = NULL;
  guint pid = bgt_unit_main_pid (f->host, unit, &error);

  g_assert_no_error (error);
  return pid;
}

/* ---- the tests ------------------------------------------------------------- */

static void
test_introspect (Fixture *f, gconstpointer data)
{
  if (f->host == NULL)
    return;
  {
    const char *argv[] = { "busctl", "--user", "--list", "tree", AGENT, NULL };
    g_autofree char *out = host_exec (f, argv, NULL);
    g_test_message ("%s", out);
    g_assert_nonnull (strstr (out, AGENT_PATH "\n"));
    g_assert_nonnull (strstr (out, JOB_PATH "\n"));
    g_assert_nonnull (strstr (out, BLUE_PATH "\n"));
    g_assert_nonnull (strstr (out, GREEN_PATH "\n"));
  }
  {
    const char *argv[] = { "busctl", "--user", "introspect", AGENT, AGENT_PATH, NULL };
    g_autofree char *out = host_exec (f, argv, NULL);
    g_test_message ("%s", out);
    g_assert_nonnull (strstr (out, "org.bluegreen.Agent1"));
    g_assert_nonnull (strstr (out, ".GetJob"));
    g_assert_nonnull (strstr (out, ".Reload"));
    g_assert_nonnull (strstr (out, ".HostId"));
    g_assert_nonnull (strstr (out, "org.freedesktop.DBus.ObjectManager"));
  }
  {
    const char *argv[] = { "busctl", "--user", "introspect", AGENT, GREEN_PATH, NULL };
    g_autofree char *out = host_exec (f, argv, NULL);
    g_assert_nonnull (strstr (out, "org.bluegreen.Slot1"));
    g_assert_nonnull (strstr (out, ".GetSteering"));
    g_assert_nonnull (strstr (out, ".SavepointRequested"));
    g_assert_nonnull (strstr (out, ".Generation"));
  }
  {
    g_autofree char *host_id = get_string (f, AGENT_PATH, "org.bluegreen.Agent1", "HostId");
    g_autofree char *phase = get_string (f, JOB_PATH, "org.bluegreen.Job1", "Phase");
    g_autofree char *unit = get_string (f, BLUE_PATH, "org.bluegreen.Slot1", "Unit");
    g_assert_cmpstr (host_id, ==, "testhost");
    g_assert_cmpstr (phase, ==, "empty");
    g_assert_cmpstr (unit, ==, "bluegreen-sleepy-blue.service");
  }
}

static void
expect_error (Fixture *f, const char *path, const char *iface, const char *method,
              GVariant *args, const char *dbus_error)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (f, path, iface, method, args, NULL, &error);

  g_assert_null (reply);
  assert_dbus_error (error, dbus_error);
}

static GVariant *
options1 (const char *key, GVariant *value)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", key, value);
  return g_variant_builder_end (&b);
}

static void
test_access (Fixture *f, gconstpointer data)
{
  const char *J = "org.bluegreen.Job1";
  const char *S = "org.bluegreen.Slot1";
  g_autofree char *steering_path = NULL;
  g_autofree char *steering = NULL;

  if (f->host == NULL)
    return;
  /* Bad arguments, each with its own registered error. */
  expect_error (f, AGENT_PATH, "org.bluegreen.Agent1", "GetJob", g_variant_new ("(s)", "nope"),
                "org.bluegreen.Error.UnknownJob");
  expect_error (f, AGENT_PATH, "org.bluegreen.Agent1", "GetJob", g_variant_new ("(s)", "Bad/Name"),
                "org.bluegreen.Error.InvalidArgs");
  expect_error (f, JOB_PATH, J, "Deploy", g_variant_new ("(s@a{sv})", "v1/evil", options1 ("live", g_variant_new_boolean (TRUE))),
                "org.bluegreen.Error.InvalidArgs");
  expect_error (f, JOB_PATH, J, "Deploy", g_variant_new ("(s@a{sv})", "v1", options1 ("colour", g_variant_new_string ("x"))),
                "org.bluegreen.Error.UnknownOption");
  expect_error (f, JOB_PATH, J, "Deploy", g_variant_new ("(s@a{sv})", "v1", options1 ("live", g_variant_new_string ("yes"))),
                "org.bluegreen.Error.InvalidArgs");
  expect_error (f, JOB_PATH, J, "Deploy", g_variant_new ("(s@a{sv})", "v1", options1 ("from", g_variant_new_string ("backup"))),
                "org.bluegreen.Error.InvalidArgs");
  expect_error (f, JOB_PATH, J, "SetSinkMode", g_variant_new ("(ss)", "purple", "live"),
                "org.bluegreen.Error.InvalidArgs");
  expect_error (f, JOB_PATH, J, "SetSinkMode", g_variant_new ("(ss)", "blue", "sideways"),
                "org.bluegreen.Error.InvalidArgs");
  /* Valid arguments in the wrong phase. */
  expect_error (f, JOB_PATH, J, "SetSinkMode", g_variant_new ("(ss)", "blue", "live"),
                "org.bluegreen.Error.WrongState");
  expect_error (f, JOB_PATH, J, "Retire", g_variant_new ("(s)", "green"),
                "org.bluegreen.Error.WrongState");
  expect_error (f, JOB_PATH, J, "Cutover", g_variant_new ("(@a{sv})", g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                "org.bluegreen.Error.WrongState");

  deploy (f, "v1", TRUE);
  wait_prop (f, BLUE_PATH, S, "State", "running");
  wait_prop (f, JOB_PATH, J, "LiveColor", "blue");
  expect_error (f, JOB_PATH, J, "Retire", g_variant_new ("(s)", "blue"),
                "org.bluegreen.Error.WrongState");

  /* The job itself, inside its unit, got its steering... */
  steering_path = g_build_filename (f->dir, "steering-blue-v1.out", NULL);
  g_assert_true (g_file_get_contents (steering_path, &steering, NULL, NULL));
  g_test_message ("steering from inside the unit: %s", steering);
  g_assert_true (g_str_has_prefix (steering, "s\"live\"") || g_str_has_prefix (steering, "sa(sixx)(sssxa(six))a(si)t \"live\""));

  /* ...but this process, outside the unit, gets AccessDenied. */
  expect_error (f, BLUE_PATH, S, "GetSteering", NULL, "org.bluegreen.Error.AccessDenied");
  expect_error (f, BLUE_PATH, S, "ReportProgress",
                g_variant_new ("(@a(six)tttx)", g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0),
                               (guint64) 1, (guint64) 2, (guint64) 0, (gint64) 0),
                "org.bluegreen.Error.AccessDenied");
  expect_error (f, BLUE_PATH, S, "SavepointDone", g_variant_new ("(sbs)", "/tmp/x", TRUE, ""),
                "org.bluegreen.Error.AccessDenied");
  /* Another unit is not the slot's unit either. */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *log = NULL;
    g_autofree char *log_path = NULL;
    const char *argv[] = { "/usr/bin/busctl", "--user", "call", AGENT, BLUE_PATH, S, "GetSteering", NULL };

    bgt_start_transient_unit (f->host, "intruder.service", argv, NULL, &error);
    g_assert_no_error (error);
    /* busctl exits non-zero on the error, so the unit ends failed. */
    bgt_wait_unit_state (f->host, "intruder.service", "failed", WAIT_MS, &error);
    g_assert_no_error (error);
    log_path = bgt_host_log_path (f->host, "intruder.service");
    g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
    g_test_message ("intruder: %s", log);
    g_assert_nonnull (strstr (log, "may only be called from inside"));
  }
  /* The agent is still there. */
  {
    g_autofree char *phase = get_string (f, JOB_PATH, J, "Phase");
    g_assert_cmpstr (phase, ==, "live");
  }
}

static void
test_crash (Fixture *f, gconstpointer data)
{
  const char *J = "org.bluegreen.Job1";
  const char *S = "org.bluegreen.Slot1";
  guint pid;
  g_autofree char *last_error = NULL;
  g_autofree char *env_path = NULL;
  g_autofree char *env = NULL;

  if (f->host == NULL)
    return;
  deploy (f, "v1", TRUE);
  deploy (f, "v2", FALSE);
  wait_prop (f, GREEN_PATH, S, "State", "running");
  wait_prop (f, JOB_PATH, J, "Phase", "deploying");
  {
    g_autofree char *mode = get_string (f, GREEN_PATH, S, "SinkMode");
    g_assert_cmpstr (mode, ==, "blackhole");
  }
  env_path = g_build_filename (f->dir, "env-green-v2.out", NULL);
  g_assert_true (g_file_get_contents (env_path, &env, NULL, NULL));
  g_assert_nonnull (strstr (env, "BLUEGREEN_SINK_MODE=blackhole\n"));
  g_assert_nonnull (strstr (env, "BLUEGREEN_SLOT=" GREEN_PATH "\n"));
  g_assert_nonnull (strstr (env, "BLUEGREEN_GROUP_ID=sleepy-green\n"));

  pid = slot_pid (f, "green");
  g_assert_cmpuint (pid, >, 0);
  g_assert_cmpint (kill ((pid_t) pid, SIGKILL), ==, 0);

  wait_prop (f, GREEN_PATH, S, "State", "failed");
  last_error = get_string (f, GREEN_PATH, S, "LastError");
  g_test_message ("LastError: %s", last_error);
  g_assert_nonnull (strstr (last_error, "signal"));
  wait_prop (f, JOB_PATH, J, "Phase", "live");

  /* Deploy again recovers (the failed unit is reset first). */
  deploy (f, "v3", FALSE);
  wait_prop (f, GREEN_PATH, S, "State", "running");
  wait_prop (f, GREEN_PATH, S, "Version", "v3");
  wait_prop (f, GREEN_PATH, S, "LastError", "");
  g_assert_cmpuint (slot_pid (f, "green"), !=, pid);
}

static void
test_restart (Fixture *f, gconstpointer data)
{
  const char *J = "org.bluegreen.Job1";
  const char *S = "org.bluegreen.Slot1";
  guint blue_pid, green_pid;
  g_autofree char *owner_before = NULL;
  g_autofree char *owner_after = NULL;
  g_autoptr(GVariant) gen_before = NULL;
  g_autoptr(GVariant) gen_after = NULL;

  if (f->host == NULL)
    return;
  deploy (f, "v1", TRUE);
  deploy (f, "v2", FALSE);
  wait_prop (f, GREEN_PATH, S, "State", "running");
  /* Green live, blue blackholed: a state that only the state file knows. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r1 = call (f, JOB_PATH, J, "SetSinkMode", g_variant_new ("(ss)", "green", "live"), NULL, &error);
    g_assert_no_error (error);
    g_autoptr(GVariant) r2 = call (f, JOB_PATH, J, "SetSinkMode", g_variant_new ("(ss)", "blue", "blackhole"), NULL, &error);
    g_assert_no_error (error);
  }
  wait_prop (f, JOB_PATH, J, "LiveColor", "green");
  gen_before = get_prop (f, BLUE_PATH, S, "Generation");
  blue_pid = slot_pid (f, "blue");
  green_pid = slot_pid (f, "green");
  g_assert_cmpuint (blue_pid, >, 0);
  g_assert_cmpuint (green_pid, >, 0);
  {
    g_autoptr(GVariant) r = g_dbus_connection_call_sync (f->host->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                         "org.freedesktop.DBus", "GetNameOwner", g_variant_new ("(s)", AGENT),
                                                         G_VARIANT_TYPE ("(s)"), 0, WAIT_MS, NULL, NULL);
    g_assert_nonnull (r);
    g_variant_get (r, "(s)", &owner_before);
  }

  {
    const char *argv[] = { "systemctl", "--user", "restart", "bluegreend.service", NULL };
    host_exec_ok (f, argv);
  }
  g_assert_true (bgt_wait_bus_name (f->host->bus, AGENT, WAIT_MS));
  {
    g_autoptr(GVariant) r = g_dbus_connection_call_sync (f->host->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                         "org.freedesktop.DBus", "GetNameOwner", g_variant_new ("(s)", AGENT),
                                                         G_VARIANT_TYPE ("(s)"), 0, WAIT_MS, NULL, NULL);
    g_assert_nonnull (r);
    g_variant_get (r, "(s)", &owner_after);
  }
  g_assert_cmpstr (owner_before, !=, owner_after);

  /* Same processes, same steering, adopted. */
  g_assert_cmpuint (slot_pid (f, "blue"), ==, blue_pid);
  g_assert_cmpuint (slot_pid (f, "green"), ==, green_pid);
  wait_prop (f, BLUE_PATH, S, "State", "running");
  wait_prop (f, GREEN_PATH, S, "State", "running");
  wait_prop (f, JOB_PATH, J, "LiveColor", "green");
  wait_prop (f, BLUE_PATH, S, "Version", "v1");
  wait_prop (f, GREEN_PATH, S, "Version", "v2");
  wait_prop (f, BLUE_PATH, S, "SinkMode", "blackhole");
  wait_prop (f, GREEN_PATH, S, "SinkMode", "live");
  gen_after = get_prop (f, BLUE_PATH, S, "Generation");
  g_assert_cmpuint (g_variant_get_uint64 (gen_after), >=, g_variant_get_uint64 (gen_before));
  {
    g_autoptr(GVariant) pid = get_prop (f, GREEN_PATH, S, "MainPID");
    g_assert_cmpuint (g_variant_get_uint32 (pid), ==, green_pid);
  }
}

typedef struct {
  gint64 at;
  char *mode;
} FlipSeen;

static void
on_slot_props (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
               const char *signal, GVariant *params, gpointer user_data)
{
  FlipSeen *seen = user_data;
  g_autoptr(GVariant) changed = NULL;
  const char *mode = NULL;

  g_variant_get (params, "(&s@a{sv}@as)", NULL, &changed, NULL);
  if (g_variant_lookup (changed, "SinkMode", "&s", &mode) && seen->at == 0)
    {
      seen->at = g_get_monotonic_time ();
      seen->mode = g_strdup (mode);
    }
}

static gboolean
flip_seen (gpointer data)
{
  g_main_context_iteration (NULL, FALSE);
  return ((FlipSeen *) data)->at != 0;
}

/* The D-Bus half of [flip]: SetSinkMode announces the new SinkMode and
 * Generation (what the job's library reacts to) well within 100 ms. */
static void
test_flip_signal (Fixture *f, gconstpointer data)
{
  const char *J = "org.bluegreen.Job1";
  const char *S = "org.bluegreen.Slot1";
  FlipSeen seen = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) gen_before = NULL;
  g_autoptr(GVariant) gen_after = NULL;
  guint sub;
  gint64 start;

  if (f->host == NULL)
    return;
  deploy (f, "v1", TRUE);
  deploy (f, "v2", FALSE);
  wait_prop (f, GREEN_PATH, S, "State", "running");
  gen_before = get_prop (f, GREEN_PATH, S, "Generation");
  sub = g_dbus_connection_signal_subscribe (f->host->bus, AGENT, "org.freedesktop.DBus.Properties",
                                            "PropertiesChanged", GREEN_PATH, S,
                                            G_DBUS_SIGNAL_FLAGS_NONE, on_slot_props, &seen, NULL);
  start = g_get_monotonic_time ();
  reply = call (f, JOB_PATH, J, "SetSinkMode", g_variant_new ("(ss)", "green", "live"), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bgt_wait_until (flip_seen, &seen, WAIT_MS));
  g_test_message ("PropertiesChanged SinkMode=%s after %" G_GINT64_FORMAT " us",
                  seen.mode, seen.at - start);
  g_assert_cmpstr (seen.mode, ==, "live");
  g_assert_cmpint (seen.at - start, <, 100000);
  g_dbus_connection_signal_unsubscribe (f->host->bus, sub);
  gen_after = get_prop (f, GREEN_PATH, S, "Generation");
  g_assert_cmpuint (g_variant_get_uint64 (gen_after), >, g_variant_get_uint64 (gen_before));
  wait_prop (f, JOB_PATH, J, "LiveColor", "green");
  g_free (seen.mode);
}

/* Reload: a new job appears, a bad job file is reported and the running
 * slots of the unchanged job are untouched. */
static void
test_reload (Fixture *f, gconstpointer data)
{
  const char *J = "org.bluegreen.Job1";
  const char *S = "org.bluegreen.Slot1";
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) jobs = NULL;
  g_autofree char *good = g_build_filename (f->dir, "jobs", "other.job", NULL);
  g_autofree char *bad = g_build_filename (f->dir, "jobs", "broken.job", NULL);
  guint pid;

  if (f->host == NULL)
    return;
  deploy (f, "v1", TRUE);
  pid = slot_pid (f, "blue");
  write_file (good, "[Job]\nExecStart=/bin/true\nInputTopics=other\n", 0644);
  write_file (bad, "[Job]\nExecStart=/bin/true\nNoSuchKey=1\nInputTopics=x\n", 0644);
  reply = call (f, AGENT_PATH, "org.bluegreen.Agent1", "Reload", NULL, NULL, &error);
  assert_dbus_error (error, "org.bluegreen.Error.Failed");
  g_assert_nonnull (strstr (error->message, "broken.job"));
  g_clear_error (&error);
  jobs = get_prop (f, AGENT_PATH, "org.bluegreen.Agent1", "Jobs");
  g_assert_cmpuint (g_variant_n_children (jobs), ==, 2);
  {
    g_autoptr(GVariant) reply2 = call (f, AGENT_PATH, "org.bluegreen.Agent1", "GetJob",
                                       g_variant_new ("(s)", "other"), "(o)", &error);
    g_assert_no_error (error);
    g_assert_nonnull (reply2);
  }
  g_assert_cmpuint (slot_pid (f, "blue"), ==, pid);
  wait_prop (f, BLUE_PATH, S, "State", "running");
  wait_prop (f, JOB_PATH, J, "Phase", "live");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/agent/introspect", Fixture, NULL, fixture_setup, test_introspect, fixture_teardown);
  g_test_add ("/agent/access", Fixture, NULL, fixture_setup, test_access, fixture_teardown);
  g_test_add ("/agent/crash", Fixture, NULL, fixture_setup, test_crash, fixture_teardown);
  g_test_add ("/agent/restart", Fixture, NULL, fixture_setup, test_restart, fixture_teardown);
  g_test_add ("/agent/flip/signal", Fixture, NULL, fixture_setup, test_flip_signal, fixture_teardown);
  g_test_add ("/agent/reload", Fixture, NULL, fixture_setup, test_reload, fixture_teardown);
  return g_test_run ();
}
