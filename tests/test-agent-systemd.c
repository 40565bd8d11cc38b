/* test-agent-systemd.c — the agent's drivers against real parts: the
 * systemd driver and the caller check on a real user manager (a test host
 * from tools/bg-host), the Kafka driver on librdkafka's mock cluster.
 *
 * The systemd tests need root (bg-host builds mount namespaces and
 * cgroups); without it they are skipped, the rest still runs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "daemon/caller.h"
#include "daemon/kafka.h"
#include "daemon/systemd.h"

#define WAIT_MS 20000

/* The test host, started once for all systemd tests. */
static struct {
  char *name;
  char *dir;
  char *bus_address;
  GDBusConnection *bus;
  char *skip_reason;
  int guard_fd;
} host = { .guard_fd = -1 };

/* ---- main-loop helpers ------------------------------------------------------ */

static gboolean
on_timeout_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

typedef gboolean (*Predicate) (gpointer data);

/* Iterates the main context until @pred holds or @timeout_ms passes. */
static gboolean
wait_until (Predicate pred, gpointer data, guint timeout_ms)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (timeout_ms, on_timeout_flag, &timed_out);

  while (!pred (data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return pred (data);
}

static gboolean
pointer_set (gpointer data)
{
  return *(gpointer *) data != NULL;
}

static void
store_result (GObject *source, GAsyncResult *res, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (res);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  g_assert_true (wait_until (pointer_set, slot, WAIT_MS));
  return *slot;
}

/* ---- the test host ---------------------------------------------------------- */

static char *
env_value (const char *output, const char *key)
{
  g_auto(GStrv) lines = g_strsplit (output, "\n", -1);
  g_autofree char *prefix = g_strconcat (key, "=", NULL);

  for (char **l = lines; *l; l++)
    if (g_str_has_prefix (*l, prefix))
      {
        g_autofree char *raw = g_strdup (*l + strlen (prefix));
        /* bg-host prints values with printf %q: unquote the simple cases. */
        return g_shell_unquote (raw, NULL) ?: g_steal_pointer (&raw);
      }
  return NULL;
}

static void
guard_setup (gpointer data)
{
  setsid ();
}

static void
host_start (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;
  const char *tmp = g_getenv ("TMPDIR") ?: g_get_tmp_dir ();

  if (getuid () != 0)
    {
      host.skip_reason = g_strdup ("test hosts need root");
      return;
    }
  host.name = g_strdup_printf ("agsys%d", (int) getpid ());
  host.dir = g_build_filename (tmp, host.name, NULL);
  {
    const char *argv[] = { "bg-host", "start", host.name, NULL, NULL };
    g_autofree char *dir_arg = g_strconcat ("--dir=", host.dir, NULL);

    argv[3] = dir_arg;
    if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error) ||
        !g_spawn_check_wait_status (status, NULL))
      {
        host.skip_reason = g_strdup_printf ("bg-host start failed: %s%s",
                                            error ? error->message : "", err ? err : "");
        return;
      }
  }
  /* A failed assertion aborts without host_stop(): a guard process
   * stops the host once our end of its stdin closes, however we exit. */
  {
    g_autofree char *dir_arg = g_strconcat ("--dir=", host.dir, NULL);
    const char *argv[] = { "/bin/sh", "-c", "cat >/dev/null; exec bg-host stop \"$0\" \"$1\" >/dev/null 2>&1",
                           host.name, dir_arg, NULL };

    /* Its own session: `timeout` kills our process group, not it. */
    if (!g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, guard_setup, NULL, NULL,
                                   &host.guard_fd, NULL, NULL, &error))
      g_error ("cannot start the host guard: %s", error->message);
  }
  host.bus_address = env_value (out, "BG_HOST_BUS");
  g_assert_nonnull (host.bus_address);
  host.bus = g_dbus_connection_new_for_address_sync (host.bus_address,
                                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                     NULL, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_set_exit_on_close (host.bus, FALSE);
}

static void
host_stop (void)
{
  if (host.bus != NULL)
    {
      g_dbus_connection_close_sync (host.bus, NULL, NULL);
      g_clear_object (&host.bus);
    }
  if (host.dir != NULL && host.skip_reason == NULL)
    {
      g_autofree char *dir_arg = g_strconcat ("--dir=", host.dir, NULL);
      const char *argv[] = { "bg-host", "stop", host.name, dir_arg, NULL };
      int status = 0;

      g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL);
    }
  if (host.guard_fd >= 0)
    close (host.guard_fd);
}

static gboolean
need_host (void)
{
  if (host.skip_reason != NULL)
    {
      g_test_skip (host.skip_reason);
      return FALSE;
    }
  return TRUE;
}

static char *
log_path (const char *unit)
{
  g_autofree char *file = g_strconcat (unit, ".log", NULL);
  return g_build_filename (host.dir, "logs", file, NULL);
}

/* A driver on the host's bus, subscribed. */
static BgdSystemd *
new_driver (void)
{
  g_autoptr(BgdSystemd) sd = bgd_systemd_new (host.bus, TRUE);
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  bgd_systemd_init_async (sd, NULL, store_result, &res);
  g_assert_true (bgd_systemd_init_finish (sd, wait_result (&res), &error));
  g_assert_no_error (error);
  return g_steal_pointer (&sd);
}

static gboolean
start_unit (BgdSystemd *sd, const BgdUnitSpec *spec, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  bgd_systemd_start_transient_async (sd, spec, NULL, store_result, &res);
  return bgd_systemd_start_transient_finish (sd, wait_result (&res), error);
}

static void
stop_unit (BgdSystemd *sd, const char *unit)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  bgd_systemd_stop_unit_async (sd, unit, NULL, store_result, &res);
  g_assert_true (bgd_systemd_stop_unit_finish (sd, wait_result (&res), &error));
  g_assert_no_error (error);
}

static GVariant *
get_all (const char *unit, const char *iface)
{
  g_autofree char *path = bgd_systemd_unit_path (unit);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (host.bus, "org.freedesktop.systemd1", path,
                                       "org.freedesktop.DBus.Properties", "GetAll",
                                       g_variant_new ("(s)", iface), G_VARIANT_TYPE ("(a{sv})"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  return g_variant_get_child_value (reply, 0);
}

/* ---- unit-changed recorder ---------------------------------------------------- */

typedef struct {
  char *unit, *active, *sub, *result;
  guint pid;
} Change;

typedef struct {
  GPtrArray *changes; /* Change* */
  /* what wait_change() looks for */
  const char *want_unit, *want_active, *want_result;
  const Change *found;
} Recorder;

static void
change_free (Change *c)
{
  g_free (c->unit);
  g_free (c->active);
  g_free (c->sub);
  g_free (c->result);
  g_free (c);
}

static void
on_unit_changed (BgdSystemd *sd, const char *unit, const char *active, const char *sub,
                 const char *result, guint pid, gpointer user_data)
{
  Recorder *r = user_data;
  Change *c = g_new0 (Change, 1);

  c->unit = g_strdup (unit);
  c->active = g_strdup (active);
  c->sub = g_strdup (sub);
  c->result = g_strdup (result);
  c->pid = pid;
  g_test_message ("unit-changed %s %s/%s result=%s pid=%u", unit, active, sub, result, pid);
  g_ptr_array_add (r->changes, c);
}

static gboolean
recorder_has (gpointer data)
{
  Recorder *r = data;

  for (guint i = 0; i < r->changes->len; i++)
    {
      const Change *c = g_ptr_array_index (r->changes, i);
      if (g_str_equal (c->unit, r->want_unit) && g_str_equal (c->active, r->want_active) &&
          (r->want_result == NULL || g_str_equal (c->result, r->want_result)))
        {
          r->found = c;
          return TRUE;
        }
    }
  return FALSE;
}

static const Change *
wait_change (Recorder *r, const char *unit, const char *active, const char *result)
{
  r->want_unit = unit;
  r->want_active = active;
  r->want_result = result;
  r->found = NULL;
  if (!wait_until (recorder_has, r, WAIT_MS))
    g_error ("no unit-changed %s %s %s", unit, active, result ? result : "");
  return r->found;
}

static void
recorder_init (Recorder *r, BgdSystemd *sd)
{
  memset (r, 0, sizeof *r);
  r->changes = g_ptr_array_new_with_free_func ((GDestroyNotify) change_free);
  g_signal_connect (sd, "unit-changed", G_CALLBACK (on_unit_changed), r);
}

static void
recorder_clear (Recorder *r, BgdSystemd *sd)
{
  g_signal_handlers_disconnect_by_data (sd, r);
  g_ptr_array_unref (r->changes);
}

/* ---- systemd tests ---------------------------------------------------------- */

static void
test_unit_path (void)
{
  g_autofree char *a = bgd_systemd_unit_path ("bluegreen-orders-blue.service");
  g_autofree char *b = bgd_systemd_unit_path ("1x_y.service");

  g_assert_cmpstr (a, ==, "/org/freedesktop/systemd1/unit/bluegreen_2dorders_2dblue_2eservice");
  g_assert_cmpstr (b, ==, "/org/freedesktop/systemd1/unit/_31x_5fy_2eservice");
}

static void
test_bad_spec (void)
{
  const char *argv[] = { "sleep", "1", NULL };
  BgdUnitSpec spec = { .name = "x.service", .argv = argv };
  g_autoptr(GError) error = NULL;
  GVariant *props = bgd_systemd_build_properties (&spec, &error);

  g_assert_null (props);
  g_assert_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_INVALID_SPEC);
}

static void
test_transient_properties (void)
{
  const char *unit = "bgtest-props.service";
  const char *argv[] = { "/bin/sleep", "1000", NULL };
  const char *env[] = { "BLUEGREEN_JOB=props", "WITH_SPACE=a b;c", NULL };
  g_autofree char *out = NULL;
  BgdUnitSpec spec = { 0 };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) svc = NULL, u = NULL;
  g_autofree const char **got_env = NULL;
  guint64 t;
  Recorder r;
  const Change *c;

  if (!need_host ())
    return;
  sd = new_driver ();
  recorder_init (&r, sd);
  bgd_systemd_watch_unit (sd, unit);
  /* Before it exists, a watched unit reads inactive. */
  wait_change (&r, unit, "inactive", NULL);

  out = log_path (unit);
  spec.name = unit;
  spec.description = "bluegreen props blue (version 1)";
  spec.argv = argv;
  spec.environment = env;
  spec.service_type = "exec";
  spec.notify_access = "all";
  spec.cpu_weight = 150;
  spec.memory_max = 64 * 1024 * 1024;
  spec.tasks_max = 32;
  spec.timeout_start_usec = 300 * G_USEC_PER_SEC;
  spec.output_path = out;
  g_assert_true (start_unit (sd, &spec, &error));
  g_assert_no_error (error);

  c = wait_change (&r, unit, "active", NULL);
  g_assert_cmpuint (c->pid, >, 0);
  g_assert_cmpstr (c->sub, ==, "running");

  svc = get_all (unit, "org.freedesktop.systemd1.Service");
  g_assert_true (g_variant_lookup (svc, "CPUWeight", "t", &t));
  g_assert_cmpuint (t, ==, 150);
  g_assert_true (g_variant_lookup (svc, "MemoryMax", "t", &t));
  g_assert_cmpuint (t, ==, 64 * 1024 * 1024);
  g_assert_true (g_variant_lookup (svc, "TasksMax", "t", &t));
  g_assert_cmpuint (t, ==, 32);
  g_assert_true (g_variant_lookup (svc, "TimeoutStartUSec", "t", &t));
  g_assert_cmpuint (t, ==, 300 * G_USEC_PER_SEC);
  g_assert_true (g_variant_lookup (svc, "Environment", "^a&s", &got_env));
  g_assert_cmpuint (g_strv_length ((char **) got_env), ==, 2);
  g_assert_cmpstr (got_env[0], ==, env[0]);
  g_assert_cmpstr (got_env[1], ==, env[1]);
  {
    const char *s;
    g_assert_true (g_variant_lookup (svc, "StandardOutputFileToAppend", "&s", &s) ||
                   g_variant_lookup (svc, "StandardOutput", "&s", &s));
    g_assert_true (g_variant_lookup (svc, "NotifyAccess", "&s", &s));
    g_assert_cmpstr (s, ==, "all");
    g_assert_true (g_variant_lookup (svc, "Type", "&s", &s));
    g_assert_cmpstr (s, ==, "exec");
  }
  u = get_all (unit, "org.freedesktop.systemd1.Unit");
  {
    const char *s;
    g_assert_true (g_variant_lookup (u, "Description", "&s", &s));
    g_assert_cmpstr (s, ==, spec.description);
  }

  /* Starting it again while it runs is refused by name. */
  g_assert_false (start_unit (sd, &spec, &error));
  g_assert_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_UNIT_EXISTS);

  stop_unit (sd, unit);
  wait_change (&r, unit, "inactive", NULL);
  recorder_clear (&r, sd);
}


/* [sandbox]: the hardening preset (user-manager variant), a credential, an
 * environment file and a bound directory, read back from systemd and seen
 * from inside the unit; then User= seen as the process's uid. */
static guint32
proc_uid (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *status = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &status, NULL, NULL));
  line = strstr (status, "\nUid:");
  g_assert_nonnull (line);
  return (guint32) g_ascii_strtoull (line + strlen ("\nUid:"), NULL, 10);
}

static void
test_sandbox (void)
{
  const char *unit = "bgtest-sandbox.service";
  const char *user_unit = "bgtest-sandbox-user.service";
  g_autofree char *dir = NULL, *cred = NULL, *envfile = NULL, *seen = NULL, *script = NULL;
  g_autofree char *cred_item = NULL, *out = NULL, *got = NULL;
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) svc = NULL, usvc = NULL;
  BgdUnitSpec spec = { 0 };
  Recorder r;
  const Change *c;
  const char *secret = "s3cret-sandbox-token";

  if (!need_host ())
    return;
  dir = g_build_filename (host.dir, "sandbox", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  cred = g_build_filename (dir, "token", NULL);
  envfile = g_build_filename (dir, "env", NULL);
  seen = g_build_filename (dir, "seen", NULL);
  g_assert_true (g_file_set_contents (cred, secret, -1, NULL));
  g_assert_cmpint (g_chmod (cred, 0600), ==, 0);
  g_assert_true (g_file_set_contents (envfile, "FROM_FILE=yes\n", -1, NULL));
  cred_item = g_strconcat ("token:", cred, NULL);
  script = g_strdup_printf ("cat \"$CREDENTIALS_DIRECTORY/token\" >%s.tmp && echo \" $FROM_FILE\" >>%s.tmp "
                            "&& mv %s.tmp %s && systemd-notify --ready && exec sleep 1000", seen, seen, seen, seen);

  sd = new_driver ();
  recorder_init (&r, sd);
  bgd_systemd_watch_unit (sd, unit);
  bgd_systemd_watch_unit (sd, user_unit);
  {
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    const char *creds[] = { cred_item, NULL };
    const char *envs[] = { envfile, "-/nonexistent/env", NULL };
    const char *binds[] = { dir, NULL };
    out = log_path (unit);
    spec.name = unit;
    spec.argv = argv;
    /* Active once READY=1 came, after the file was written. */
    spec.service_type = "notify";
    spec.notify_access = "all";
    spec.output_path = out;
    spec.hardening = TRUE;
    spec.hardening_user_manager = TRUE;
    spec.load_credentials = creds;
    spec.environment_files = envs;
    spec.bind_paths = binds;
    g_assert_true (start_unit (sd, &spec, &error));
    g_assert_no_error (error);
  }
  c = wait_change (&r, unit, "active", NULL);
  g_assert_cmpuint (c->pid, >, 0);
  /* What the unit saw: the credential's content and the file's variable. */
  {
    g_assert_true (g_file_get_contents (seen, &got, NULL, NULL));
    g_assert_cmpstr (got, ==, "s3cret-sandbox-token yes\n");
  }

  svc = get_all (unit, "org.freedesktop.systemd1.Service");
  {
    const char *s;
    gboolean b;
    guint64 t;
    gboolean allow;
    g_autoptr(GVariantIter) items = NULL;
    g_autoptr(GVariant) v = NULL;
    const char *id, *path;
    guint n = 0;

    g_assert_true (g_variant_lookup (svc, "ProtectSystem", "&s", &s));
    g_assert_cmpstr (s, ==, "strict");
    g_assert_true (g_variant_lookup (svc, "ProtectProc", "&s", &s));
    g_assert_cmpstr (s, ==, "invisible");
    /* The two settings the user-manager preset leaves out. */
    g_assert_true (g_variant_lookup (svc, "ProtectHome", "&s", &s));
    g_assert_cmpstr (s, ==, "no");
    g_assert_true (g_variant_lookup (svc, "ProtectKernelTunables", "b", &b));
    g_assert_false (b);
    const char *on[] = { "NoNewPrivileges", "PrivateTmp", "PrivateDevices", "PrivateMounts",
                         "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                         "ProtectClock", "ProtectHostname", "RestrictRealtime", "RestrictSUIDSGID",
                         "LockPersonality", "MemoryDenyWriteExecute" };
    for (gsize i = 0; i < G_N_ELEMENTS (on); i++)
      {
        g_test_message ("%s", on[i]);
        g_assert_true (g_variant_lookup (svc, on[i], "b", &b));
        g_assert_true (b);
      }
    g_assert_true (g_variant_lookup (svc, "CapabilityBoundingSet", "t", &t));
    g_assert_cmpuint (t, ==, 0);
    g_assert_true (g_variant_lookup (svc, "RestrictNamespaces", "t", &t));
    g_assert_cmpuint (t, ==, 0);
    g_assert_true (g_variant_lookup (svc, "RestrictAddressFamilies", "(bas)", &allow, &items));
    g_assert_true (allow);
    while (g_variant_iter_next (items, "&s", &s))
      {
        g_assert_true (g_str_equal (s, "AF_INET") || g_str_equal (s, "AF_INET6") || g_str_equal (s, "AF_UNIX"));
        n++;
      }
    g_assert_cmpuint (n, ==, 3);
    g_clear_pointer (&items, g_variant_iter_free);
    g_assert_true (g_variant_lookup (svc, "SystemCallFilter", "(bas)", &allow, &items));
    g_assert_true (allow);
    g_assert_true (g_variant_iter_n_children (items) > 50); /* @system-service, expanded */
    v = g_variant_lookup_value (svc, "LoadCredential", G_VARIANT_TYPE ("a(ss)"));
    g_assert_nonnull (v);
    g_assert_cmpuint (g_variant_n_children (v), ==, 1);
    g_variant_get_child (v, 0, "(&s&s)", &id, &path);
    g_assert_cmpstr (id, ==, "token");
    g_assert_cmpstr (path, ==, cred);
  }
  /* The secret itself is in no property of the unit. */
  {
    g_autofree char *printed = g_variant_print (svc, FALSE);
    g_assert_null (strstr (printed, secret));
  }
  stop_unit (sd, unit);

  /* User=: the process runs as that user. */
  {
    const char *argv[] = { "/bin/sleep", "1000", NULL };
    g_autofree char *uout = log_path (user_unit);
    BgdUnitSpec u = { 0 };
    const char *s;
    u.name = user_unit;
    u.argv = argv;
    u.service_type = "exec";
    u.output_path = uout;
    u.user = "nobody";
    /* Without the preset: under the test hosts' user manager (root, in a
     * private mount namespace) ProtectKernelLogs= fails a unit with User=
     * at namespace setup (status 226), while it works for root's units. */
    u.hardening = FALSE;
    g_assert_true (start_unit (sd, &u, &error));
    g_assert_no_error (error);
    c = wait_change (&r, user_unit, "active", NULL);
    g_assert_cmpuint (c->pid, >, 0);
    g_assert_cmpuint (proc_uid (c->pid), ==, 65534);
    usvc = get_all (user_unit, "org.freedesktop.systemd1.Service");
    g_assert_true (g_variant_lookup (usvc, "User", "&s", &s));
    g_assert_cmpstr (s, ==, "nobody");
    stop_unit (sd, user_unit);
  }
  recorder_clear (&r, sd);
}

static void
test_start_failure (void)
{
  /* Type=notify that exits before READY=1: the start job fails and the
   * error carries the unit's Result. */
  const char *unit = "bgtest-startfail.service";
  const char *argv[] = { "/bin/sh", "-c", "exit 3", NULL };
  g_autofree char *out = log_path (unit);
  BgdUnitSpec spec = { .name = unit, .argv = argv, .service_type = "notify",
                       .notify_access = "all", .output_path = out };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;

  if (!need_host ())
    return;
  sd = new_driver ();
  g_assert_false (start_unit (sd, &spec, &error));
  g_assert_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_JOB_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "failed"));
  g_assert_nonnull (strstr (error->message, "exit-code"));
  g_assert_nonnull (strstr (error->message, "main process exited with status 3"));

  /* The failed unit blocks its name; the driver resets it first, so the
   * same name starts again (and fails the same way, not with UnitExists). */
  g_clear_error (&error);
  g_assert_false (start_unit (sd, &spec, &error));
  g_assert_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_JOB_FAILED);
}

/* Type=notify that never sends READY=1: killed after TimeoutStartUSec,
 * reported as a start timeout (not as how the killed process ended). */
static void
test_start_timeout (void)
{
  const char *unit = "bgtest-starttimeout.service";
  const char *argv[] = { "/bin/sleep", "1000", NULL };
  g_autofree char *out = log_path (unit);
  BgdUnitSpec spec = { .name = unit, .argv = argv, .service_type = "notify", .notify_access = "all",
                       .timeout_start_usec = G_USEC_PER_SEC / 2, .output_path = out };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;

  if (!need_host ())
    return;
  sd = new_driver ();
  g_assert_false (start_unit (sd, &spec, &error));
  g_test_message ("%s", error->message);
  g_assert_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_START_TIMEOUT);
  g_assert_nonnull (strstr (error->message, unit));
  g_assert_nonnull (strstr (error->message, "within 0.5 s"));
  g_assert_nonnull (strstr (error->message, "unit result: timeout"));
}

static void
test_exit_code (void)
{
  const char *unit = "bgtest-exit.service";
  const char *argv_fail[] = { "/bin/sh", "-c", "exit 3", NULL };
  const char *argv_ok[] = { "/bin/sleep", "1000", NULL };
  g_autofree char *out = log_path (unit);
  BgdUnitSpec spec = { .name = unit, .argv = argv_fail, .output_path = out };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  Recorder r;
  const Change *c;

  if (!need_host ())
    return;
  sd = new_driver ();
  recorder_init (&r, sd);
  bgd_systemd_watch_unit (sd, unit);
  bgd_systemd_watch_unit (sd, unit); /* twice is once */
  g_assert_true (start_unit (sd, &spec, &error)); /* Type=simple: started once forked */
  g_assert_no_error (error);
  c = wait_change (&r, unit, "failed", "exit-code");
  g_assert_cmpstr (c->sub, ==, "failed");

  /* Deploy again: the failed unit is reset and the name reused. */
  g_ptr_array_set_size (r.changes, 0);
  spec.argv = argv_ok;
  g_assert_true (start_unit (sd, &spec, &error));
  g_assert_no_error (error);
  c = wait_change (&r, unit, "active", NULL);
  g_assert_cmpuint (c->pid, >, 0);

  bgd_systemd_unwatch_unit (sd, unit);
  stop_unit (sd, unit);
  recorder_clear (&r, sd);
}

static void
test_watchdog (void)
{
  const char *unit = "bgtest-watchdog.service";
  const char *argv[] = { "/bin/sleep", "1000", NULL };
  g_autofree char *out = log_path (unit);
  BgdUnitSpec spec = { .name = unit, .argv = argv, .service_type = "simple",
                       .watchdog_usec = G_USEC_PER_SEC, .output_path = out };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  Recorder r;

  if (!need_host ())
    return;
  sd = new_driver ();
  recorder_init (&r, sd);
  bgd_systemd_watch_unit (sd, unit);
  g_assert_true (start_unit (sd, &spec, &error));
  g_assert_no_error (error);
  wait_change (&r, unit, "active", NULL);
  /* Never pings: killed after 1 s, reported with Result=watchdog. */
  wait_change (&r, unit, "failed", "watchdog");
  recorder_clear (&r, sd);
}

static void
test_list_stop (void)
{
  const char *argv[] = { "/bin/sleep", "1000", NULL };
  const char *names[] = { "bgtest-list-a.service", "bgtest-list-b.service" };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) units = NULL;

  if (!need_host ())
    return;
  sd = new_driver ();
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *out = log_path (names[i]);
      BgdUnitSpec spec = { .name = names[i], .argv = argv, .service_type = "exec", .output_path = out };

      g_assert_true (start_unit (sd, &spec, &error));
      g_assert_no_error (error);
    }

  bgd_systemd_list_units_async (sd, "bgtest-list-*.service", NULL, store_result, &res);
  units = bgd_systemd_list_units_finish (sd, wait_result (&res), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (units->len, ==, 2);
  for (guint i = 0; i < units->len; i++)
    {
      const BgdUnitInfo *info = g_ptr_array_index (units, i);
      g_autofree char *unit = NULL;

      g_assert_cmpstr (info->name, ==, names[i]);
      g_assert_cmpstr (info->active_state, ==, "active");
      g_assert_cmpstr (info->sub_state, ==, "running");
      g_assert_cmpstr (info->result, ==, "success");
      g_assert_cmpuint (info->main_pid, >, 0);
      /* The caller check maps a process of the unit to the unit. */
      unit = bgd_caller_unit_for_pid ((pid_t) info->main_pid, TRUE, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (unit, ==, names[i]);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    stop_unit (sd, names[i]);
  /* Stopping what is not there is fine. */
  stop_unit (sd, "bgtest-never-existed.service");

  g_clear_object (&res);
  g_clear_pointer (&units, g_ptr_array_unref);
  bgd_systemd_list_units_async (sd, "bgtest-list-*.service", NULL, store_result, &res);
  units = bgd_systemd_list_units_finish (sd, wait_result (&res), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (units->len, ==, 0);
}

static void
test_set_properties (void)
{
  const char *unit = "bgtest-setprops.service";
  const char *argv[] = { "/bin/sleep", "1000", NULL };
  g_autofree char *out = log_path (unit);
  BgdUnitSpec spec = { .name = unit, .argv = argv, .cpu_weight = 100, .output_path = out };
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GVariant) svc = NULL;
  GVariantBuilder b;
  guint64 t;

  if (!need_host ())
    return;
  sd = new_driver ();
  g_assert_true (start_unit (sd, &spec, &error));
  g_assert_no_error (error);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sv)"));
  g_variant_builder_add (&b, "(sv)", "CPUWeight", g_variant_new_uint64 (700));
  bgd_systemd_set_unit_properties_async (sd, unit, g_variant_builder_end (&b), NULL, store_result, &res);
  g_assert_true (bgd_systemd_set_unit_properties_finish (sd, wait_result (&res), &error));
  g_assert_no_error (error);
  svc = get_all (unit, "org.freedesktop.systemd1.Service");
  g_assert_true (g_variant_lookup (svc, "CPUWeight", "t", &t));
  g_assert_cmpuint (t, ==, 700);
  stop_unit (sd, unit);
}

/* ---- the caller check over the bus ------------------------------------------ */

static const char caller_xml[] =
  "<node><interface name='org.bluegreen.Test1'><method name='Who'>"
  "<arg direction='out' type='s' name='unit'/></method></interface></node>";

typedef struct {
  char *unit;
  char *error;
} CallerSeen;

static void
on_who (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
        const char *method, GVariant *params, GDBusMethodInvocation *inv, gpointer user_data)
{
  CallerSeen *seen = user_data;
  g_autoptr(GError) error = NULL;

  seen->unit = bgd_caller_get_unit (conn, sender, TRUE, NULL, &error);
  if (seen->unit == NULL)
    {
      seen->error = g_strdup (error->message);
      g_dbus_method_invocation_return_dbus_error (inv, "org.bluegreen.Error.AccessDenied", error->message);
      return;
    }
  g_dbus_method_invocation_return_value (inv, g_variant_new ("(s)", seen->unit));
}

static gboolean
caller_seen (gpointer data)
{
  CallerSeen *s = data;
  return s->unit != NULL || s->error != NULL;
}

static void
test_caller_bus (void)
{
  const char *unit = "bgtest-caller.service";
  const GDBusInterfaceVTable vtable = { on_who, NULL, NULL, { 0 } };
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(BgdSystemd) sd = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  CallerSeen seen = { 0 };
  guint reg;
  const char *env[] = { "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus", NULL };
  const char *argv[] = { "/usr/bin/busctl", "--user", "call", NULL, "/test", "org.bluegreen.Test1", "Who", NULL };

  if (!need_host ())
    return;
  argv[3] = g_dbus_connection_get_unique_name (host.bus);
  node = g_dbus_node_info_new_for_xml (caller_xml, &error);
  g_assert_no_error (error);
  reg = g_dbus_connection_register_object (host.bus, "/test", node->interfaces[0], &vtable, &seen, NULL, &error);
  g_assert_no_error (error);

  sd = new_driver ();
  out = log_path (unit);
  {
    BgdUnitSpec spec = { .name = unit, .argv = argv, .environment = env, .output_path = out };
    g_assert_true (start_unit (sd, &spec, &error));
    g_assert_no_error (error);
  }
  g_assert_true (wait_until (caller_seen, &seen, WAIT_MS));
  g_assert_null (seen.error);
  g_assert_cmpstr (seen.unit, ==, unit);

  /* And a caller outside any unit: this test process itself. */
  {
    g_autofree char *mine = bgd_caller_get_unit (host.bus, g_dbus_connection_get_unique_name (host.bus),
                                                 TRUE, NULL, &error);
    g_assert_null (mine);
    g_assert_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_UNIT);
    g_clear_error (&error);
  }
  /* A name that is not on the bus. */
  {
    g_autofree char *none = bgd_caller_get_unit (host.bus, ":1.999999", TRUE, NULL, &error);
    g_assert_null (none);
    g_assert_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_PID);
  }

  g_dbus_connection_unregister_object (host.bus, reg);
  stop_unit (sd, unit);
  g_free (seen.unit);
  g_free (seen.error);
}

static void
test_caller_async (void)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *unit = NULL;

  if (!need_host ())
    return;
  bgd_caller_get_unit_async (host.bus, g_dbus_connection_get_unique_name (host.bus), TRUE, NULL,
                             store_result, &res);
  unit = bgd_caller_get_unit_finish (wait_result (&res), &error);
  g_assert_null (unit);
  g_assert_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_UNIT);
}

/* ---- Kafka ------------------------------------------------------------------ */

typedef struct {
  rd_kafka_t *rk; /* hosts the mock cluster */
  const char *bootstraps;
} Mock;

static void
mock_start (Mock *m)
{
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_mock_cluster_t *mc;

  g_assert_cmpint (rd_kafka_conf_set (conf, "test.mock.num.brokers", "3", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "linger.ms", "1", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  m->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  g_assert_nonnull (m->rk);
  mc = rd_kafka_handle_mock_cluster (m->rk);
  g_assert_nonnull (mc);
  m->bootstraps = rd_kafka_mock_cluster_bootstraps (mc);
  g_assert_cmpint (rd_kafka_mock_topic_create (mc, "agentsys-in", 3, 1), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void
mock_produce (Mock *m, const char *topic, gint32 partition, int count)
{
  for (int i = 0; i < count; i++)
    {
      char value[32];
      int n = g_snprintf (value, sizeof value, "r%d", i);

      g_assert_cmpint (rd_kafka_producev (m->rk, RD_KAFKA_V_TOPIC (topic), RD_KAFKA_V_PARTITION (partition),
                                          RD_KAFKA_V_VALUE (value, (size_t) n),
                                          RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                       ==, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  g_assert_cmpint (rd_kafka_flush (m->rk, 10000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void
mock_stop (Mock *m)
{
  rd_kafka_destroy (m->rk);
}

static void
test_kafka_watermarks (void)
{
  Mock m;
  g_autoptr(BgdKafka) k = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GArray) wm = NULL;
  g_autoptr(GPtrArray) props = g_ptr_array_new ();
  BgConfigProperty p = { (char *) "socket.timeout.ms", (char *) "5000" };
  const char *topics[] = { "agentsys-in", NULL };
  const gint64 counts[] = { 5, 7, 0 };

  mock_start (&m);
  for (gint32 i = 0; i < 3; i++)
    mock_produce (&m, "agentsys-in", i, (int) counts[i]);

  g_ptr_array_add (props, &p);
  k = bgd_kafka_new (m.bootstraps, props, &error);
  g_assert_no_error (error);
  bgd_kafka_query_watermarks_async (k, topics, NULL, store_result, &res);
  wm = bgd_kafka_query_watermarks_finish (k, wait_result (&res), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (wm->len, ==, 3);
  for (guint i = 0; i < wm->len; i++)
    {
      const BgdWatermark *w = &g_array_index (wm, BgdWatermark, i);

      g_assert_cmpstr (w->topic, ==, "agentsys-in");
      g_assert_cmpint (w->partition, ==, (gint32) i);
      g_assert_cmpint (w->high, ==, counts[i]);
    }

  /* More records move the high watermark. */
  mock_produce (&m, "agentsys-in", 2, 4);
  g_clear_object (&res);
  g_clear_pointer (&wm, g_array_unref);
  bgd_kafka_query_watermarks_async (k, topics, NULL, store_result, &res);
  wm = bgd_kafka_query_watermarks_finish (k, wait_result (&res), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_array_index (wm, BgdWatermark, 2).high, ==, 4);

  /* An unknown topic is an error of its own, and asking does not create it. */
  {
    const char *unknown[] = { "agentsys-in", "agentsys-nope", NULL };

    g_clear_object (&res);
    bgd_kafka_query_watermarks_async (k, unknown, NULL, store_result, &res);
    g_assert_null (bgd_kafka_query_watermarks_finish (k, wait_result (&res), &error));
    g_assert_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_UNKNOWN_TOPIC);
    g_assert_nonnull (strstr (error->message, "agentsys-nope"));
    g_clear_error (&error);
  }
  g_clear_object (&k);
  mock_stop (&m);
}

static void
test_kafka_bad_property (void)
{
  g_autoptr(GPtrArray) props = g_ptr_array_new ();
  BgConfigProperty good = { (char *) "socket.timeout.ms", (char *) "5000" };
  BgConfigProperty bad = { (char *) "no.such.property", (char *) "1" };
  BgConfigProperty badval = { (char *) "socket.timeout.ms", (char *) "many" };
  g_autoptr(GError) error = NULL;
  BgdKafka *k;

  g_ptr_array_add (props, &good);
  g_ptr_array_add (props, &bad);
  k = bgd_kafka_new ("127.0.0.1:9", props, &error);
  g_assert_null (k);
  g_assert_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "[Kafka.Properties] no.such.property"));
  g_clear_error (&error);

  g_ptr_array_remove_index (props, 1);
  g_ptr_array_add (props, &badval);
  k = bgd_kafka_new ("127.0.0.1:9", props, &error);
  g_assert_null (k);
  g_assert_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "socket.timeout.ms"));
}

typedef struct {
  int err;
  GThread *thread;
} ErrorSeen;

static void
on_kafka_error (BgdKafka *k, int err, const char *reason, gboolean fatal, gpointer user_data)
{
  ErrorSeen *e = user_data;

  if (e->err == 0)
    {
      e->err = err;
      e->thread = g_thread_self ();
    }
}

static gboolean
error_seen (gpointer data)
{
  return ((ErrorSeen *) data)->err != 0;
}

static void
test_kafka_events (void)
{
  g_autoptr(GPtrArray) props = g_ptr_array_new ();
  BgConfigProperty backoff = { (char *) "reconnect.backoff.ms", (char *) "10" };
  g_autoptr(BgdKafka) k = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  const char *topics[] = { "anything", NULL };
  ErrorSeen seen = { 0 };
  gint64 start;

  /* Nobody listens on port 9 (discard) here: librdkafka reports all
   * brokers down, through the eventfd, in the main loop. */
  g_ptr_array_add (props, &backoff);
  k = bgd_kafka_new ("127.0.0.1:9", props, &error);
  g_assert_no_error (error);
  g_signal_connect (k, "error", G_CALLBACK (on_kafka_error), &seen);
  g_assert_true (wait_until (error_seen, &seen, WAIT_MS));
  g_assert_true (seen.thread == g_thread_self ());

  /* A query against no broker ends within its bound. */
  bgd_kafka_set_query_timeout (k, 300);
  start = g_get_monotonic_time ();
  bgd_kafka_query_watermarks_async (k, topics, NULL, store_result, &res);
  g_assert_null (bgd_kafka_query_watermarks_finish (k, wait_result (&res), &error));
  g_assert_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_QUERY);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  host_start ();

  g_test_add_func ("/agent/systemd/unit-path", test_unit_path);
  g_test_add_func ("/agent/systemd/bad-spec", test_bad_spec);
  g_test_add_func ("/agent/systemd/transient-properties", test_transient_properties);
  g_test_add_func ("/agent/systemd/[sandbox]/preset-credential-user", test_sandbox);
  g_test_add_func ("/agent/systemd/start-failure", test_start_failure);
  g_test_add_func ("/agent/systemd/start-timeout", test_start_timeout);
  g_test_add_func ("/agent/systemd/exit-code", test_exit_code);
  g_test_add_func ("/agent/systemd/watchdog", test_watchdog);
  g_test_add_func ("/agent/systemd/list-stop", test_list_stop);
  g_test_add_func ("/agent/systemd/set-properties", test_set_properties);
  g_test_add_func ("/agent/systemd/caller-bus", test_caller_bus);
  g_test_add_func ("/agent/systemd/caller-async", test_caller_async);
  g_test_add_func ("/agent/kafka/watermarks", test_kafka_watermarks);
  g_test_add_func ("/agent/kafka/bad-property", test_kafka_bad_property);
  g_test_add_func ("/agent/kafka/events", test_kafka_events);

  rc = g_test_run ();
  host_stop ();
  return rc;
}
