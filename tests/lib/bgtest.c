/* bgtest.c — see bgtest.h: hosts, the embedded Kafka, programs and waits
 * for the GTest programs that test with real parts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bgtest.h"

#include "common/watermarks.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

G_DEFINE_QUARK (bgt-error-quark, bgt_error)

#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define HOST_TIMEOUT_MS 30000
#define JOB_TIMEOUT_MS 30000

/* ---- Emergency cleanup ------------------------------------------------------
 *
 * A failed g_assert aborts the test program (a fatal critical traps), so
 * fixture teardowns never run.
 * The handler below stops what is registered here with only async-signal-safe
 * calls (fork, execv, waitpid, kill): the argv of each host's cleanup is built
 * when the host starts. */

#define MAX_REGISTERED 32

static char **volatile registered_hosts[MAX_REGISTERED];
/* "tools/kafka stop --now DIR" of each real cluster. */
static char **volatile registered_clusters[MAX_REGISTERED];
static volatile pid_t registered_kafkas[MAX_REGISTERED];
static gsize handlers_installed;

static void
emergency_cleanup (int sig)
{
  for (int i = 0; i < MAX_REGISTERED; i++)
    {
      char **argv = registered_hosts[i];
      if (argv == NULL)
        continue;
      pid_t pid = fork ();
      if (pid == 0)
        {
          execv (argv[0], argv);
          _exit (127);
        }
      if (pid > 0)
        waitpid (pid, NULL, 0);
    }
  for (int i = 0; i < MAX_REGISTERED; i++)
    if (registered_kafkas[i] > 0)
      kill (registered_kafkas[i], SIGTERM);
  for (int i = 0; i < MAX_REGISTERED; i++)
    {
      char **argv = registered_clusters[i];
      if (argv == NULL)
        continue;
      pid_t pid = fork ();
      if (pid == 0)
        {
          execv (argv[0], argv);
          _exit (127);
        }
      if (pid > 0)
        waitpid (pid, NULL, 0);
    }
  signal (sig, SIG_DFL);
  raise (sig);
}

static void
install_handlers (void)
{
  if (!g_once_init_enter (&handlers_installed))
    return;
  struct sigaction sa = { 0 };
  sa.sa_handler = emergency_cleanup;
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction (SIGABRT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  /* A critical made fatal by G_DEBUG=fatal-warnings (the test
   * environment) ends in G_BREAKPOINT, i.e. SIGTRAP; a crash in the test
   * itself in SIGSEGV. Neither may leave hosts running. */
  sigaction (SIGTRAP, &sa, NULL);
  sigaction (SIGSEGV, &sa, NULL);
  g_once_init_leave (&handlers_installed, 1);
}

static char *
bg_host_path (void)
{
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  if (srcdir != NULL)
    {
      g_autofree char *path = g_build_filename (srcdir, "tools", "bg-host", NULL);
      if (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
        return g_steal_pointer (&path);
    }
  char *found = g_find_program_in_path ("bg-host");
  return found != NULL ? found : g_strdup ("bg-host");
}

static void
register_host (BgtHost *host)
{
  install_handlers ();
  g_autofree char *tool = bg_host_path ();
  /* Logs first (the test failed), then stop, keeping the dir to read. */
  const char *script =
    "for f in \"$1\"/logs/*; do [ -s \"$f\" ] || continue; echo \"# ==> $f <==\";"
    " sed 's/^/# /' \"$f\"; done; exec \"$2\" stop \"$3\" --dir=\"$1\" --keep";
  char **argv = g_new0 (char *, 8);
  argv[0] = g_strdup ("/bin/sh");
  argv[1] = g_strdup ("-c");
  argv[2] = g_strdup (script);
  argv[3] = g_strdup ("bgt-cleanup");
  argv[4] = g_strdup (host->dir);
  argv[5] = g_strdup (tool);
  argv[6] = g_strdup (host->name);
  for (int i = 0; i < MAX_REGISTERED; i++)
    if (registered_hosts[i] == NULL)
      {
        registered_hosts[i] = argv;
        return;
      }
  g_strfreev (argv);
  g_test_message ("bgtest: more than %d hosts; host %s has no emergency cleanup", MAX_REGISTERED,
                  host->name);
}

static void
unregister_host (BgtHost *host)
{
  for (int i = 0; i < MAX_REGISTERED; i++)
    {
      char **argv = registered_hosts[i];
      if (argv != NULL && g_strcmp0 (argv[4], host->dir) == 0)
        {
          registered_hosts[i] = NULL;
          g_strfreev (argv);
        }
    }
}

static void
register_kafka (pid_t pid, gboolean add)
{
  install_handlers ();
  for (int i = 0; i < MAX_REGISTERED; i++)
    {
      if (add && registered_kafkas[i] == 0)
        {
          registered_kafkas[i] = pid;
          return;
        }
      if (!add && registered_kafkas[i] == pid)
        registered_kafkas[i] = 0;
    }
}

/* ---- Waiting ---------------------------------------------------------------- */

static gboolean
poll_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
bgt_wait_until (BgtPredicate predicate, gpointer data, int timeout_ms)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  /* BG_TEST_TIME_SCALE (a sanitizer build: every process several times
   * slower) stretches every wait; a condition met early still ends it. */
  const char *scale_env = g_getenv ("BG_TEST_TIME_SCALE");
  double scale = scale_env != NULL ? g_ascii_strtod (scale_env, NULL) : 1.0;
  gint64 deadline = g_get_monotonic_time () + (gint64) ((double) timeout_ms * 1000 * MAX (scale, 1.0));
  /* The tick only guarantees a wake-up; the predicate is what we wait on. */
  GSource *tick = g_timeout_source_new (BGT_POLL_MS);
  g_source_set_callback (tick, poll_tick, NULL, NULL);
  g_source_attach (tick, context);

  gboolean ok;
  while (!(ok = predicate (data)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (tick);
  g_source_unref (tick);
  g_main_context_unref (context);
  return ok;
}

static gboolean
flag_is_set (gpointer data)
{
  return *(gboolean *) data;
}

static void
on_name_appeared (GDBusConnection *conn, const char *name, const char *owner, gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

gboolean
bgt_wait_bus_name (GDBusConnection *conn, const char *name, int timeout_ms)
{
  gboolean appeared = FALSE;
  guint id = g_bus_watch_name_on_connection (conn, name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                             on_name_appeared, NULL, &appeared, NULL);
  gboolean ok = bgt_wait_until (flag_is_set, &appeared, timeout_ms);
  g_bus_unwatch_name (id);
  return ok;
}

/* ---- Running programs ------------------------------------------------------------ */

typedef struct {
  gboolean done;
  GAsyncResult *result;
} AsyncWait;

static void
on_async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncWait *w = user_data;
  w->result = g_object_ref (result);
  w->done = TRUE;
}

/* Waits for @w up to @timeout_ms; on a timeout cancels and still waits for
 * the callback (it points into our stack). */
static gboolean
async_wait (AsyncWait *w, GCancellable *cancellable, int timeout_ms)
{
  if (bgt_wait_until (flag_is_set, &w->done, timeout_ms))
    return TRUE;
  g_cancellable_cancel (cancellable);
  while (!w->done)
    g_main_context_iteration (NULL, TRUE);
  return FALSE;
}

static int
decode_status (GSubprocess *proc)
{
  if (g_subprocess_get_if_exited (proc))
    return g_subprocess_get_exit_status (proc);
  if (g_subprocess_get_if_signaled (proc))
    return 128 + g_subprocess_get_term_sig (proc);
  return -1;
}

gboolean
bgt_run (const char *const *argv, const char *const *envp, int timeout_ms, char **stdout_out,
         char **stderr_out, int *exit_status, GError **error)
{
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                 | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  if (envp != NULL)
    g_subprocess_launcher_set_environ (launcher, (char **) envp);
  g_autoptr (GSubprocess) proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (proc == NULL)
    return FALSE;

  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  AsyncWait w = { 0 };
  g_subprocess_communicate_utf8_async (proc, NULL, cancellable, on_async_done, &w);
  gboolean in_time = async_wait (&w, cancellable, timeout_ms);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr (GError) local_error = NULL;
  gboolean ok = g_subprocess_communicate_utf8_finish (proc, w.result, &out, &err, &local_error);
  g_clear_object (&w.result);
  if (!in_time)
    {
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "%s did not finish within %d ms", argv[0],
                   timeout_ms);
      return FALSE;
    }
  if (!ok)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", argv[0]);
      return FALSE;
    }
  /* Its pipes are closed; exiting is all that is left to do. */
  if (!g_subprocess_wait (proc, NULL, error))
    return FALSE;
  if (exit_status != NULL)
    *exit_status = decode_status (proc);
  if (stdout_out != NULL)
    *stdout_out = g_steal_pointer (&out);
  if (stderr_out != NULL)
    *stderr_out = g_steal_pointer (&err);
  return TRUE;
}

char *
bgt_build_path (const char *program)
{
  const char *builddir = g_getenv ("BG_TOP_BUILDDIR");
  if (builddir == NULL)
    return NULL;
  g_autofree char *path = g_build_filename (builddir, program, NULL);
  return g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) ? g_steal_pointer (&path) : NULL;
}

/* ---- Hosts -------------------------------------------------------------------- */

/* Runs bg-host with @args; fails with its stderr unless it exits 0. */
static gboolean
run_bg_host (const char *const *args, char **stdout_out, GError **error)
{
  g_autofree char *tool = bg_host_path ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, tool);
  for (const char *const *a = args; *a != NULL; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);

  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = -1;
  if (!bgt_run ((const char *const *) argv->pdata, NULL, HOST_TIMEOUT_MS, &out, &err, &status, error))
    return FALSE;
  if (status != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bg-host %s exited with %d: %s", args[0], status,
                   g_strstrip (err));
      return FALSE;
    }
  if (stdout_out != NULL)
    *stdout_out = g_steal_pointer (&out);
  return TRUE;
}

static gboolean
parse_host_env (BgtHost *host, const char *text, GError **error)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree char *pid = NULL;
  char **slot;
  for (char **l = lines; *l != NULL; l++)
    {
      char *eq = strchr (*l, '=');
      if (eq == NULL)
        continue;
      g_autofree char *key = g_strndup (*l, eq - *l);
      g_autofree char *value = g_shell_unquote (eq + 1, error);
      if (value == NULL)
        return FALSE;
      if (g_str_equal (key, "BG_HOST_PID"))
        slot = &pid;
      else if (g_str_equal (key, "BG_HOST_BUS"))
        slot = &host->bus_address;
      else if (g_str_equal (key, "BG_HOST_DIR"))
        slot = &host->dir;
      else if (g_str_equal (key, "BG_HOST_CGROUP"))
        slot = &host->cgroup;
      else
        continue;
      g_free (*slot);
      *slot = g_steal_pointer (&value);
    }
  guint64 n = 0;
  if (pid == NULL || host->bus_address == NULL || host->dir == NULL || host->cgroup == NULL
      || !g_ascii_string_to_unsigned (pid, 10, 1, G_MAXINT32, &n, NULL))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "bg-host start printed no usable variables: %s",
                   text);
      return FALSE;
    }
  host->pid = (GPid) n;
  return TRUE;
}

BgtHost *
bgt_host_start (const char *name, GError **error)
{
  /* Managers outlive bg-host; as their subreaper we reap them on stop, so a
   * stopped manager's pid is really gone (not a zombie under init). */
  prctl (PR_SET_CHILD_SUBREAPER, 1);

  g_autoptr (BgtHost) host = g_new0 (BgtHost, 1);
  host->name = g_strdup (name);
  g_autofree char *out = NULL;
  const char *args[] = { "start", name, NULL };
  if (!run_bg_host (args, &out, error))
    return NULL;
  if (!parse_host_env (host, out, error))
    return NULL;
  host->running = TRUE;
  register_host (host);

  host->bus = g_dbus_connection_new_for_address_sync (
    host->bus_address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, error);
  if (host->bus == NULL)
    {
      g_prefix_error (error, "host %s: bus %s: ", name, host->bus_address);
      return NULL;
    }
  /* The manager emits JobRemoved & co. only to subscribers. */
  g_autoptr (GVariant) reply
    = g_dbus_connection_call_sync (host->bus, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, "Subscribe",
                                   NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, error);
  if (reply == NULL)
    {
      g_prefix_error (error, "host %s: Subscribe: ", name);
      return NULL;
    }
  return g_steal_pointer (&host);
}

static void
collect_cgroup_pids (const char *path, GArray *pids)
{
  g_autofree char *procs_path = g_build_filename (path, "cgroup.procs", NULL);
  g_autofree char *procs = NULL;
  if (g_file_get_contents (procs_path, &procs, NULL, NULL))
    {
      g_auto (GStrv) lines = g_strsplit (procs, "\n", -1);
      for (char **l = lines; *l != NULL; l++)
        {
          guint64 pid;
          if (g_ascii_string_to_unsigned (*l, 10, 1, G_MAXINT32, &pid, NULL))
            {
              GPid p = (GPid) pid;
              g_array_append_val (pids, p);
            }
        }
    }
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *entry;
  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, entry, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        collect_cgroup_pids (child, pids);
    }
}

typedef struct {
  GArray *pids;
} ReapState;

/* True once every pid is gone; reaps those that died as our children. */
static gboolean
all_reaped (gpointer data)
{
  ReapState *st = data;
  gboolean all_gone = TRUE;
  for (guint i = 0; i < st->pids->len; i++)
    {
      GPid pid = g_array_index (st->pids, GPid, i);
      if (pid <= 0)
        continue;
      if (waitpid (pid, NULL, WNOHANG) == pid)
        {
          g_array_index (st->pids, GPid, i) = 0;
          continue;
        }
      g_autofree char *proc = g_strdup_printf ("/proc/%d", pid);
      if (g_file_test (proc, G_FILE_TEST_EXISTS))
        all_gone = FALSE;
      else
        g_array_index (st->pids, GPid, i) = 0;
    }
  return all_gone;
}

typedef struct {
  BgtHost *host;
} KillState;

/* SIGKILLs everything in the host's cgroups; TRUE once nothing is left
 * to kill (a process forked meanwhile is found on the next round). */
static gboolean
host_killed (gpointer data)
{
  KillState *st = data;
  g_autoptr (GArray) pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  const char *hierarchies[] = { "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
  guint alive = 0;

  for (guint i = 0; i < G_N_ELEMENTS (hierarchies); i++)
    {
      g_autofree char *path = g_build_filename (hierarchies[i], st->host->cgroup, NULL);
      collect_cgroup_pids (path, pids);
    }
  for (guint i = 0; i < pids->len; i++)
    {
      GPid pid = g_array_index (pids, GPid, i);
      if (kill (pid, SIGKILL) == 0)
        alive++;
      /* Ours since the manager died (we are the subreaper): reap them. */
      waitpid (pid, NULL, WNOHANG);
    }
  return alive == 0;
}

gboolean
bgt_host_power_cut (BgtHost *host, GError **error)
{
  KillState st = { host };

  g_return_val_if_fail (host != NULL, FALSE);
  if (host->pid > 0)
    kill (host->pid, SIGKILL);
  if (!bgt_wait_until (host_killed, &st, 5000))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "host %s: processes survive SIGKILL", host->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
bgt_host_stop (BgtHost *host, gboolean keep_dir, GError **error)
{
  g_return_val_if_fail (host != NULL, FALSE);
  if (!host->running)
    return TRUE;

  g_autoptr (GArray) pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_array_append_val (pids, host->pid);
  const char *hierarchies[] = { "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
  for (guint i = 0; i < G_N_ELEMENTS (hierarchies); i++)
    {
      g_autofree char *path = g_build_filename (hierarchies[i], host->cgroup, NULL);
      collect_cgroup_pids (path, pids);
    }

  if (host->bus != NULL)
    {
      g_dbus_connection_close_sync (host->bus, NULL, NULL);
      g_clear_object (&host->bus);
    }
  g_autofree char *dir_arg = g_strdup_printf ("--dir=%s", host->dir);
  const char *args[] = { "stop", host->name, dir_arg, keep_dir ? "--keep" : NULL, NULL };
  if (!run_bg_host (args, NULL, error))
    return FALSE;
  host->running = FALSE;
  unregister_host (host);

  ReapState st = { pids };
  if (!bgt_wait_until (all_reaped, &st, 5000))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "host %s: processes still there after stop",
                   host->name);
      return FALSE;
    }
  return TRUE;
}

void
bgt_host_free (BgtHost *host)
{
  if (host == NULL)
    return;
  if (host->running)
    {
      if (g_test_failed ())
        bgt_dump_logs (host);
      g_autoptr (GError) error = NULL;
      if (!bgt_host_stop (host, g_test_failed (), &error))
        g_test_message ("bgtest: cannot stop host %s: %s", host->name, error->message);
    }
  unregister_host (host);
  g_clear_object (&host->bus);
  g_free (host->name);
  g_free (host->bus_address);
  g_free (host->dir);
  g_free (host->cgroup);
  g_free (host);
}

gboolean
bgt_host_exec (BgtHost *host, const char *const *argv, char **stdout_out, int *exit_status,
               GError **error)
{
  g_autofree char *tool = bg_host_path ();
  g_autofree char *dir_arg = g_strdup_printf ("--dir=%s", host->dir);
  g_autoptr (GPtrArray) full = g_ptr_array_new ();
  const char *head[] = { tool, "exec", host->name, dir_arg, "--" };
  for (guint i = 0; i < G_N_ELEMENTS (head); i++)
    g_ptr_array_add (full, (gpointer) head[i]);
  for (const char *const *a = argv; *a != NULL; a++)
    g_ptr_array_add (full, (gpointer) *a);
  g_ptr_array_add (full, NULL);
  return bgt_run ((const char *const *) full->pdata, NULL, HOST_TIMEOUT_MS, stdout_out, NULL, exit_status,
                  error);
}

gboolean
bgt_host_install_units (BgtHost *host, const char *const *files, GError **error)
{
  g_autofree char *dir_arg = g_strdup_printf ("--dir=%s", host->dir);
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) "install-unit");
  g_ptr_array_add (args, host->name);
  g_ptr_array_add (args, dir_arg);
  for (const char *const *f = files; *f != NULL; f++)
    g_ptr_array_add (args, (gpointer) *f);
  g_ptr_array_add (args, NULL);
  return run_bg_host ((const char *const *) args->pdata, NULL, error);
}

static char *
full_unit_name (const char *unit)
{
  return strchr (unit, '.') != NULL ? g_strdup (unit) : g_strconcat (unit, ".service", NULL);
}

char *
bgt_host_log_path (BgtHost *host, const char *unit)
{
  g_autofree char *full = full_unit_name (unit);
  g_autofree char *file = g_strconcat (full, ".log", NULL);
  return g_build_filename (host->dir, "logs", file, NULL);
}

void
bgt_dump_logs (BgtHost *host)
{
  g_autofree char *logs = g_build_filename (host->dir, "logs", NULL);
  g_autoptr (GDir) dir = g_dir_open (logs, 0, NULL);
  const char *entry;
  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (logs, entry, NULL);
      g_autofree char *contents = NULL;
      if (!g_file_get_contents (path, &contents, NULL, NULL) || *contents == '\0')
        continue;
      g_test_message ("==> host %s: %s <==", host->name, path);
      g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
      for (char **l = lines; *l != NULL; l++)
        if (**l != '\0')
          g_test_message ("%s", *l);
    }
}

/* ---- Units ---------------------------------------------------------------------- */

typedef struct {
  GHashTable *results; /* job path -> result */
} JobWatch;

static void
on_job_removed (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                const char *signal, GVariant *params, gpointer user_data)
{
  JobWatch *watch = user_data;
  guint32 id;
  const char *job, *unit, *result;
  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(uoss)")))
    return;
  g_variant_get (params, "(u&o&s&s)", &id, &job, &unit, &result);
  g_hash_table_insert (watch->results, g_strdup (job), g_strdup (result));
}

typedef struct {
  JobWatch *watch;
  const char *job;
} JobWait;

static gboolean
job_removed (gpointer data)
{
  JobWait *w = data;
  return g_hash_table_contains (w->watch->results, w->job);
}

gboolean
bgt_start_transient_unit_full (BgtHost *host, const char *unit, const char *const *argv,
                               const char *const *env, GVariant *extra_properties, GError **error)
{
  g_autofree char *name = full_unit_name (unit);
  g_autofree char *log = bgt_host_log_path (host, name);
  g_autoptr (GVariant) extra = extra_properties != NULL ? g_variant_ref_sink (extra_properties) : NULL;

  GVariantBuilder props;
  g_variant_builder_init (&props, G_VARIANT_TYPE ("a(sv)"));
  g_variant_builder_add (&props, "(sv)", "Description", g_variant_new_string (name));
  GVariantBuilder exec;
  g_variant_builder_init (&exec, G_VARIANT_TYPE ("a(sasb)"));
  g_variant_builder_add (&exec, "(s^asb)", argv[0], argv, FALSE);
  g_variant_builder_add (&props, "(sv)", "ExecStart", g_variant_builder_end (&exec));
  if (env != NULL)
    g_variant_builder_add (&props, "(sv)", "Environment", g_variant_new_strv (env, -1));
  g_variant_builder_add (&props, "(sv)", "StandardOutputFileToAppend", g_variant_new_string (log));
  g_variant_builder_add (&props, "(sv)", "StandardErrorFileToAppend", g_variant_new_string (log));
  if (extra != NULL)
    {
      GVariantIter iter;
      GVariant *child;
      g_variant_iter_init (&iter, extra);
      while ((child = g_variant_iter_next_value (&iter)) != NULL)
        {
          g_variant_builder_add_value (&props, child);
          g_variant_unref (child);
        }
    }

  JobWatch watch = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free) };
  guint sub = g_dbus_connection_signal_subscribe (host->bus, NULL, SYSTEMD_MANAGER, "JobRemoved",
                                                  SYSTEMD_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                  on_job_removed, &watch, NULL);
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
    host->bus, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, "StartTransientUnit",
    g_variant_new ("(ssa(sv)a(sa(sv)))", name, "fail", &props, NULL), G_VARIANT_TYPE ("(o)"),
    G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
  gboolean ok = FALSE;
  if (reply == NULL)
    g_prefix_error (error, "host %s: StartTransientUnit %s: ", host->name, name);
  else
    {
      const char *job;
      g_variant_get (reply, "(&o)", &job);
      JobWait w = { &watch, job };
      if (!bgt_wait_until (job_removed, &w, JOB_TIMEOUT_MS))
        g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "host %s: start job of %s not done within %d ms",
                     host->name, name, JOB_TIMEOUT_MS);
      else
        {
          const char *result = g_hash_table_lookup (watch.results, job);
          ok = g_str_equal (result, "done");
          if (!ok)
            g_set_error (error, BGT_ERROR, BGT_ERROR_JOB, "host %s: start job of %s: %s", host->name, name,
                         result);
        }
    }
  g_dbus_connection_signal_unsubscribe (host->bus, sub);
  g_hash_table_unref (watch.results);
  return ok;
}

gboolean
bgt_start_transient_unit (BgtHost *host, const char *unit, const char *const *argv,
                          const char *const *env, GError **error)
{
  return bgt_start_transient_unit_full (host, unit, argv, env, NULL, error);
}

/* The unit's object path, or NULL with *missing set if it is not loaded. */
static char *
get_unit_path (BgtHost *host, const char *name, gboolean *missing, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  *missing = FALSE;
  g_autoptr (GVariant) reply
    = g_dbus_connection_call_sync (host->bus, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit",
                                   g_variant_new ("(s)", name), G_VARIANT_TYPE ("(o)"),
                                   G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &local_error);
  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (local_error);
      if (g_strcmp0 (remote, "org.freedesktop.systemd1.NoSuchUnit") == 0)
        *missing = TRUE;
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  char *path;
  g_variant_get (reply, "(o)", &path);
  return path;
}

static GVariant *
get_unit_property (BgtHost *host, const char *path, const char *iface, const char *property,
                   GError **error)
{
  g_autoptr (GVariant) reply
    = g_dbus_connection_call_sync (host->bus, SYSTEMD_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                   g_variant_new ("(ss)", iface, property), G_VARIANT_TYPE ("(v)"),
                                   G_DBUS_CALL_FLAGS_NONE, 5000, NULL, error);
  if (reply == NULL)
    return NULL;
  GVariant *value;
  g_variant_get (reply, "(v)", &value);
  return value;
}

char *
bgt_unit_active_state (BgtHost *host, const char *unit, GError **error)
{
  g_autofree char *name = full_unit_name (unit);
  gboolean missing;
  g_autofree char *path = get_unit_path (host, name, &missing, error);
  if (path == NULL)
    return missing ? g_strdup ("inactive") : NULL;
  g_autoptr (GVariant) value = get_unit_property (host, path, "org.freedesktop.systemd1.Unit", "ActiveState",
                                                  error);
  if (value == NULL || !g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    return NULL;
  return g_variant_dup_string (value, NULL);
}

guint32
bgt_unit_main_pid (BgtHost *host, const char *unit, GError **error)
{
  g_autofree char *name = full_unit_name (unit);
  gboolean missing;
  g_autofree char *path = get_unit_path (host, name, &missing, error);
  if (path == NULL)
    return 0;
  g_autoptr (GVariant) value = get_unit_property (host, path, "org.freedesktop.systemd1.Service", "MainPID",
                                                  error);
  if (value == NULL || !g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return 0;
  return g_variant_get_uint32 (value);
}

typedef struct {
  BgtHost *host;
  const char *unit;
  const char *want;
  char *last;
  GError *error;
} UnitStateWait;

static gboolean
unit_state_reached (gpointer data)
{
  UnitStateWait *w = data;
  if (w->error != NULL)
    return TRUE; /* stop waiting; reported below */
  g_free (w->last);
  w->last = bgt_unit_active_state (w->host, w->unit, &w->error);
  return w->error != NULL || g_strcmp0 (w->last, w->want) == 0;
}

gboolean
bgt_wait_unit_state (BgtHost *host, const char *unit, const char *active_state, int timeout_ms,
                     GError **error)
{
  UnitStateWait w = { host, unit, active_state, NULL, NULL };
  gboolean reached = bgt_wait_until (unit_state_reached, &w, timeout_ms);
  gboolean ok = FALSE;
  if (w.error != NULL)
    g_propagate_error (error, w.error);
  else if (!reached)
    g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "host %s: %s still %s, not %s after %d ms", host->name,
                 unit, w.last, active_state, timeout_ms);
  else
    ok = TRUE;
  g_free (w.last);
  return ok;
}

/* ---- Kafka ------------------------------------------------------------------------ */

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* One line of @in, without its newline, within @timeout_ms. */
static char *
read_line (GDataInputStream *in, int timeout_ms, GError **error)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  AsyncWait w = { 0 };
  g_data_input_stream_read_line_async (in, G_PRIORITY_DEFAULT, cancellable, on_async_done, &w);
  gboolean in_time = async_wait (&w, cancellable, timeout_ms);
  g_autoptr (GError) local_error = NULL;
  char *line = g_data_input_stream_read_line_finish_utf8 (in, w.result, NULL, &local_error);
  g_clear_object (&w.result);
  if (!in_time)
    {
      g_free (line);
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "no line within %d ms", timeout_ms);
      return NULL;
    }
  if (line == NULL && local_error == NULL)
    g_set_error_literal (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "end of output");
  else if (line == NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return line;
}

BgtKafka *
bgt_kafka_start (int n_brokers, const char *const *topics, const char *dir, GError **error)
{
  g_autofree char *mock = bgt_build_path ("bluegreen-kafka-mock");
  if (mock == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-kafka-mock not found in $BG_TOP_BUILDDIR");
      return NULL;
    }
  g_autofree char *cwd = g_get_current_dir ();
  g_autoptr (BgtKafka) kafka = g_new0 (BgtKafka, 1);
  kafka->bootstrap_file = g_build_filename (dir != NULL ? dir : cwd, "kafka.bootstrap", NULL);
  kafka->control_path = g_build_filename (dir != NULL ? dir : cwd, "kafka.control", NULL);
  kafka->log_path = g_build_filename (dir != NULL ? dir : cwd, "kafka.log", NULL);

  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, g_strdup (mock));
  g_ptr_array_add (argv, g_strdup_printf ("--brokers=%d", n_brokers));
  for (const char *const *t = topics; t != NULL && *t != NULL; t++)
    g_ptr_array_add (argv, g_strdup_printf ("--topic=%s", *t));
  g_ptr_array_add (argv, g_strdup_printf ("--bootstrap-file=%s", kafka->bootstrap_file));
  g_ptr_array_add (argv, g_strdup_printf ("--control=%s", kafka->control_path));
  g_ptr_array_add (argv, NULL);

  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_stderr_file_path (launcher, kafka->log_path);
  /* Debug logs would go to stdout and mix with the replies. */
  g_subprocess_launcher_unsetenv (launcher, "G_MESSAGES_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  kafka->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
  if (kafka->proc == NULL)
    return NULL;
  const char *pid = g_subprocess_get_identifier (kafka->proc);
  register_kafka ((pid_t) g_ascii_strtoll (pid, NULL, 10), TRUE);
  kafka->in = g_object_ref (g_subprocess_get_stdin_pipe (kafka->proc));
  kafka->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (kafka->proc));

  g_autoptr (GError) local_error = NULL;
  kafka->bootstrap = read_line (kafka->out, 10000, &local_error);
  if (kafka->bootstrap == NULL || !g_str_has_prefix (kafka->bootstrap, "127.0.0.1:"))
    {
      g_autofree char *log = NULL;
      g_file_get_contents (kafka->log_path, &log, NULL, NULL);
      g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "bluegreen-kafka-mock: no bootstrap line (%s): %s",
                   local_error != NULL ? local_error->message : kafka->bootstrap, log ? log : "");
      return NULL;
    }
  return g_steal_pointer (&kafka);
}

gboolean
bgt_kafka_command (BgtKafka *kafka, const char *command, GError **error)
{
  g_autofree char *line = g_strconcat (command, "\n", NULL);
  if (!g_output_stream_write_all (kafka->in, line, strlen (line), NULL, NULL, error)
      || !g_output_stream_flush (kafka->in, NULL, error))
    return FALSE;
  for (;;)
    {
      g_autofree char *reply = read_line (kafka->out, 10000, error);
      if (reply == NULL)
        {
          g_prefix_error (error, "kafka command '%s': ", command);
          return FALSE;
        }
      if (g_str_equal (reply, "ok"))
        return TRUE;
      if (g_str_has_prefix (reply, "error:"))
        {
          g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "kafka command '%s': %s", command, reply);
          return FALSE;
        }
      /* Anything else is not a reply (e.g. a stray log line). */
    }
}

gboolean
bgt_kafka_stop (BgtKafka *kafka, GError **error)
{
  if (kafka->proc == NULL)
    return TRUE;
  g_autoptr (GSubprocess) proc = g_steal_pointer (&kafka->proc);
  g_subprocess_send_signal (proc, SIGTERM);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  AsyncWait w = { 0 };
  g_subprocess_wait_async (proc, cancellable, on_async_done, &w);
  gboolean in_time = async_wait (&w, cancellable, 10000);
  g_clear_object (&w.result);
  if (!in_time)
    {
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
    }
  register_kafka ((pid_t) g_ascii_strtoll (g_subprocess_get_identifier (proc) ?: "0", NULL, 10), FALSE);
  if (!in_time)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "bluegreen-kafka-mock did not exit on SIGTERM");
      return FALSE;
    }
  int status = decode_status (proc);
  if (status != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-kafka-mock exited with %d", status);
      return FALSE;
    }
  return TRUE;
}

void
bgt_kafka_free (BgtKafka *kafka)
{
  if (kafka == NULL)
    return;
  if (kafka->proc != NULL)
    {
      g_autoptr (GError) error = NULL;
      if (!bgt_kafka_stop (kafka, &error))
        g_test_message ("bgtest: %s", error->message);
    }
  if (g_test_failed () && kafka->log_path != NULL)
    {
      g_autofree char *log = NULL;
      if (g_file_get_contents (kafka->log_path, &log, NULL, NULL) && *log != '\0')
        g_test_message ("==> kafka log %s <==\n%s", kafka->log_path, log);
    }
  g_clear_object (&kafka->in);
  g_clear_object (&kafka->out);
  g_free (kafka->bootstrap);
  g_free (kafka->bootstrap_file);
  g_free (kafka->control_path);
  g_free (kafka->log_path);
  g_free (kafka);
}

typedef struct {
  rd_kafka_t *rk;
  const char *topic;
  gint32 partition;
  int64_t min_offset;
  int64_t high;
  gboolean ok;
  char *last_error;
} WatermarkWait;

static gboolean
watermark_reached (gpointer data)
{
  WatermarkWait *w = data;
  g_autoptr (GError) error = NULL;
  gint64 high = -1;

  /* Bounded even with the leader gone (common/watermarks.h). */
  w->ok = bg_watermarks_query (w->rk, w->topic, &w->partition, 1, NULL, &high, 500, &error);
  if (w->ok)
    w->high = high;
  else
    {
      g_free (w->last_error);
      w->last_error = g_strdup (error->message);
    }
  return w->ok && high >= w->min_offset;
}

gboolean
bgt_wait_high_watermark (const char *bootstrap, const char *topic, int32_t partition, int64_t min_offset,
                         int timeout_ms, GError **error)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  if (rd_kafka_conf_set (conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bootstrap.servers: %s", errstr);
      return FALSE;
    }
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "rd_kafka_new: %s", errstr);
      return FALSE;
    }
  WatermarkWait w = { rk, topic, partition, min_offset, -1, FALSE, NULL };
  gboolean ok = bgt_wait_until (watermark_reached, &w, timeout_ms);
  if (!ok)
    g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT,
                 "%s [%d]: high watermark %" G_GINT64_FORMAT " < %" G_GINT64_FORMAT " after %d ms (%s)", topic,
                 partition, w.high, min_offset, timeout_ms, w.last_error != NULL ? w.last_error : "no error");
  g_free (w.last_error);
  rd_kafka_destroy (rk);
  return ok;
}

/* ---- A real Apache Kafka cluster ------------------------------------------------ */

static char *
kafka_tool_path (void)
{
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  if (srcdir != NULL)
    {
      g_autofree char *path = g_build_filename (srcdir, "tools", "kafka", NULL);
      if (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
        return g_steal_pointer (&path);
    }
  return g_strdup ("tools/kafka");
}

static void
register_cluster (BgtRealKafka *kafka, gboolean add)
{
  install_handlers ();
  for (int i = 0; i < MAX_REGISTERED; i++)
    {
      char **argv = registered_clusters[i];
      if (add && argv == NULL)
        {
          argv = g_new0 (char *, 5);
          argv[0] = g_strdup (kafka->tool);
          argv[1] = g_strdup ("stop");
          argv[2] = g_strdup ("--now");
          argv[3] = g_strdup (kafka->dir);
          registered_clusters[i] = argv;
          return;
        }
      if (!add && argv != NULL && g_strcmp0 (argv[3], kafka->dir) == 0)
        {
          registered_clusters[i] = NULL;
          g_strfreev (argv);
          return;
        }
    }
}

gboolean
bgt_real_kafka_run (BgtRealKafka *kafka, const char *verb, const char *const *args, char **out,
                    GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  int status = -1;

  g_ptr_array_add (argv, kafka->tool);
  g_ptr_array_add (argv, (gpointer) verb);
  g_ptr_array_add (argv, kafka->dir);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  if (!bgt_run ((const char *const *) argv->pdata, NULL, 180000, &stdout_text, &stderr_text, &status, error))
    return FALSE;
  if (status != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "tools/kafka %s failed (%d): %s", verb, status,
                   stderr_text ? g_strstrip (stderr_text) : "");
      return FALSE;
    }
  if (out != NULL)
    *out = g_strdup (g_strstrip (stdout_text));
  return TRUE;
}

BgtRealKafka *
bgt_real_kafka_start (guint n_nodes, const char *dir, GError **error)
{
  g_autoptr (BgtRealKafka) kafka = g_new0 (BgtRealKafka, 1);
  g_autofree char *owner = g_strdup_printf ("%d", (int) getpid ());
  g_autofree char *nodes = g_strdup_printf ("%u", n_nodes);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = -1;
  gint64 t0 = g_get_monotonic_time ();

  kafka->tool = kafka_tool_path ();
  kafka->dir = g_strdup (dir);
  kafka->n_nodes = n_nodes;
  {
    /* --owner: tools/kafka's watchdog stops the nodes when we die. */
    const char *argv[] = { kafka->tool, "start", "--nodes", nodes, "--owner", owner, dir, NULL };
    if (!bgt_run (argv, NULL, 180000, &out, &err, &status, error))
      return NULL;
  }
  /* Registered even if the start failed half way: it cleans up after. */
  register_cluster (kafka, TRUE);
  if (status != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "tools/kafka start failed (%d): %s", status,
                   err ? g_strstrip (err) : "");
      return NULL;
    }
  kafka->bootstrap = g_strdup (g_strstrip (out));
  g_test_message ("real Kafka: %u node(s) at %s in %" G_GINT64_FORMAT " ms", n_nodes, kafka->bootstrap,
                  (g_get_monotonic_time () - t0) / 1000);
  return g_steal_pointer (&kafka);
}

gboolean
bgt_real_kafka_node (BgtRealKafka *kafka, const char *verb, guint node, GError **error)
{
  g_autofree char *n = node == 0 ? g_strdup ("all") : g_strdup_printf ("%u", node);
  const char *args[] = { n, NULL };
  gint64 t0 = g_get_monotonic_time ();

  if (!bgt_real_kafka_run (kafka, verb, args, NULL, error))
    return FALSE;
  g_test_message ("real Kafka: %s %s done in %" G_GINT64_FORMAT " ms", verb, n,
                  (g_get_monotonic_time () - t0) / 1000);
  return TRUE;
}

int
bgt_real_kafka_leader (BgtRealKafka *kafka, const char *topic, int partition, GError **error)
{
  g_autofree char *p = g_strdup_printf ("%d", partition);
  g_autofree char *out = NULL;
  const char *args[] = { topic, p, NULL };
  gint64 id;

  if (!bgt_real_kafka_run (kafka, "leader", args, &out, error))
    return -1;
  id = g_ascii_strtoll (out, NULL, 10);
  if (id <= 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "no leader for %s [%d]: '%s'", topic, partition, out);
      return -1;
    }
  return (int) id;
}

static rd_kafka_t *
admin_client (const char *bootstrap, GError **error)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_t *rk;

  if (rd_kafka_conf_set (conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "librdkafka: %s", errstr);
      return NULL;
    }
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "rd_kafka_new: %s", errstr);
  return rk;
}

/* TRUE once every partition of @topic has a leader in @rk's metadata. */
static gboolean
topic_has_leaders (rd_kafka_t *rk, const char *topic, int partitions)
{
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  gboolean ok = FALSE;

  if (rd_kafka_metadata (rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1
      && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt == partitions)
    {
      ok = TRUE;
      for (int i = 0; i < md->topics[0].partition_cnt; i++)
        if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err != 0)
          ok = FALSE;
    }
  if (md != NULL)
    rd_kafka_metadata_destroy (md);
  rd_kafka_topic_destroy (rkt);
  return ok;
}

/* The answer of an admin request about one topic (CreateTopics,
 * CreatePartitions) on @queue: TRUE, or FALSE with @error naming @what. */
typedef const rd_kafka_topic_result_t **(*TopicResults) (const rd_kafka_event_t *ev, size_t *n);

static const rd_kafka_topic_result_t **
create_topics_results (const rd_kafka_event_t *ev, size_t *n)
{
  return rd_kafka_CreateTopics_result_topics (rd_kafka_event_CreateTopics_result ((rd_kafka_event_t *) ev), n);
}

static const rd_kafka_topic_result_t **
create_partitions_results (const rd_kafka_event_t *ev, size_t *n)
{
  return rd_kafka_CreatePartitions_result_topics (rd_kafka_event_CreatePartitions_result ((rd_kafka_event_t *) ev),
                                                  n);
}

static gboolean
admin_answer (rd_kafka_queue_t *queue, const char *what, const char *topic, TopicResults results, GError **error)
{
  rd_kafka_event_t *ev = rd_kafka_queue_poll (queue, 30000);
  gboolean ok = FALSE;

  if (ev == NULL)
    g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "%s %s: no answer", what, topic);
  else if (rd_kafka_event_error (ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "%s %s: %s", what, topic, rd_kafka_event_error_string (ev));
  else
    {
      size_t n = 0;
      const rd_kafka_topic_result_t **res = results (ev, &n);
      if (n != 1 || rd_kafka_topic_result_error (res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "%s %s: %s", what, topic,
                     n == 1 ? rd_kafka_topic_result_error_string (res[0]) : "no result");
      else
        ok = TRUE;
    }
  if (ev != NULL)
    rd_kafka_event_destroy (ev);
  return ok;
}

gboolean
bgt_real_kafka_create_topic (BgtRealKafka *kafka, const char *topic, int partitions,
                             const char *const *configs, GError **error)
{
  g_autoptr (GError) local = NULL;
  rd_kafka_t *rk = admin_client (kafka->bootstrap, error);
  char errstr[512];
  rd_kafka_NewTopic_t *nt;
  rd_kafka_queue_t *queue;
  gboolean ok = FALSE;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  if (rk == NULL)
    return FALSE;
  nt = rd_kafka_NewTopic_new (topic, partitions, MIN (3, (int) kafka->n_nodes), errstr, sizeof errstr);
  for (guint i = 0; nt != NULL && configs != NULL && configs[i] != NULL && configs[i + 1] != NULL; i += 2)
    rd_kafka_NewTopic_set_config (nt, configs[i], configs[i + 1]);
  if (nt == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "topic %s: %s", topic, errstr);
      rd_kafka_destroy (rk);
      return FALSE;
    }
  queue = rd_kafka_queue_new (rk);
  rd_kafka_CreateTopics (rk, &nt, 1, NULL, queue);
  ok = admin_answer (queue, "CreateTopics", topic, create_topics_results, &local);
  rd_kafka_queue_destroy (queue);
  rd_kafka_NewTopic_destroy (nt);
  /* The controller answers before the partitions' leaders are known. */
  while (ok && !topic_has_leaders (rk, topic, partitions))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (&local, BGT_ERROR, BGT_ERROR_TIMEOUT, "topic %s: no leaders within 30 s", topic);
          ok = FALSE;
        }
      else
        g_usleep (20000);
    }
  rd_kafka_destroy (rk);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local));
  return ok;
}

static gboolean
every_node_has_leaders (BgtRealKafka *kafka, const char *topic, int partitions)
{
  g_auto (GStrv) nodes = g_strsplit (kafka->bootstrap, ",", -1);

  for (guint i = 0; nodes[i] != NULL; i++)
    {
      rd_kafka_t *one = admin_client (nodes[i], NULL);
      gboolean ok = one != NULL && topic_has_leaders (one, topic, partitions);
      if (one != NULL)
        rd_kafka_destroy (one);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

gboolean
bgt_real_kafka_create_partitions (BgtRealKafka *kafka, const char *topic, int total, GError **error)
{
  g_autoptr (GError) local = NULL;
  rd_kafka_t *rk = admin_client (kafka->bootstrap, error);
  char errstr[512];
  rd_kafka_NewPartitions_t *np;
  rd_kafka_queue_t *queue;
  gboolean ok = FALSE;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  if (rk == NULL)
    return FALSE;
  np = rd_kafka_NewPartitions_new (topic, (size_t) total, errstr, sizeof errstr);
  if (np == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "topic %s: %s", topic, errstr);
      rd_kafka_destroy (rk);
      return FALSE;
    }
  queue = rd_kafka_queue_new (rk);
  rd_kafka_CreatePartitions (rk, &np, 1, NULL, queue);
  ok = admin_answer (queue, "CreatePartitions", topic, create_partitions_results, &local);
  rd_kafka_queue_destroy (queue);
  rd_kafka_NewPartitions_destroy (np);
  /* The controller answers before the new partitions' leaders are known,
   * and each node learns them on its own: a client asking a node that
   * did not yet (a loadgen checking its --partitions) would see the old
   * count. Every node's own answer, from a client that knows only it. */
  while (ok && !every_node_has_leaders (kafka, topic, total))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (&local, BGT_ERROR, BGT_ERROR_TIMEOUT, "topic %s: %d partitions with leaders not within 30 s",
                       topic, total);
          ok = FALSE;
        }
      else
        g_usleep (100000);
    }
  rd_kafka_destroy (rk);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local));
  return ok;
}

gboolean
bgt_real_kafka_warm_up (BgtRealKafka *kafka, guint records, GError **error)
{
  g_autofree char *loadgen = bgt_build_path ("bluegreen-loadgen");
  g_autofree char *n = g_strdup_printf ("%u", MAX (records / 4, 1));
  gint64 t0 = g_get_monotonic_time ();

  if (loadgen == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-loadgen is not built");
      return FALSE;
    }
  if (!bgt_real_kafka_create_topic (kafka, "bgt-warm-up", 6, NULL, error))
    return FALSE;
  /* Rounds of a quarter each, until one is delivered in full within the
   * loadgen's flush timeout (a cold cluster on a busy machine is slower). */
  for (guint round = 1;; round++)
    {
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;
      int status = -1;
      const char *argv[] = { loadgen, "-b", kafka->bootstrap, "-t", "bgt-warm-up", "-n", n, "-q", NULL };

      if (!bgt_run (argv, NULL, 120000, &out, &err, &status, error))
        return FALSE;
      if (status == 0 && round >= 4)
        break;
      if (status != 0 && round >= 12)
        {
          g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "warming up: bluegreen-loadgen exited with %d: %s%s",
                       status, out ? out : "", err ? err : "");
          return FALSE;
        }
    }
  g_test_message ("real Kafka: warmed up in %" G_GINT64_FORMAT " ms", (g_get_monotonic_time () - t0) / 1000);
  return TRUE;
}

void
bgt_real_kafka_free (BgtRealKafka *kafka)
{
  if (kafka == NULL)
    return;
  if (kafka->bootstrap != NULL || kafka->dir != NULL)
    {
      g_autoptr (GError) error = NULL;
      const char *argv[] = { kafka->tool, "stop", "--now", kafka->dir, NULL };
      int status = -1;
      if (kafka->tool != NULL && kafka->dir != NULL
          && (!bgt_run (argv, NULL, 60000, NULL, NULL, &status, &error) || status != 0))
        g_test_message ("bgtest: stopping the Kafka cluster in %s: %s", kafka->dir,
                        error ? error->message : "tools/kafka stop failed");
      if (g_test_failed () && kafka->dir != NULL)
        g_test_message ("real Kafka: the nodes' logs are in %s/node*/kafka.log", kafka->dir);
    }
  if (kafka->dir != NULL)
    register_cluster (kafka, FALSE);
  g_free (kafka->dir);
  g_free (kafka->bootstrap);
  g_free (kafka->tool);
  g_free (kafka);
}

char *
bgt_sandbox_bind_paths (const char *dir)
{
  const char *builddir = g_getenv ("BG_TOP_BUILDDIR");
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  GString *s = g_string_new (dir);

  if (builddir != NULL && *builddir != '\0')
    g_string_append_printf (s, ";%s", builddir);
  if (srcdir != NULL && *srcdir != '\0' && g_strcmp0 (srcdir, builddir) != 0)
    g_string_append_printf (s, ";%s", srcdir);
  return g_string_free (s, FALSE);
}

void
bgt_pause (int ms)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  GSource *tick = g_timeout_source_new (BGT_POLL_MS);

  g_source_set_callback (tick, poll_tick, NULL, NULL);
  g_source_attach (tick, context);
  while (g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  g_main_context_unref (context);
}
