/* bench-agent — bluegreend's footprint when idle (tools/bench agent): its
 * RSS and CPU time over a window (60 s; BENCH_SECONDS overrides) with two
 * jobs, four slots (each job: blue v1 live, green v2 blackholed, both
 * Ready after 400 records), then the input idle; next to one example-job process measured over
 * the same window as the baseline.
 *
 * The fleet fixture (tests/lib/fleet.h) gives one host with the agent as a
 * user service and job "counts"; a copy of its job file as "counts2" is
 * added to the agent's jobs directory (found through the agent's config,
 * BLUEGREEN_TEST_CONFIG in the user manager's environment) and picked up
 * with Reload().
 *
 * RSS is VmRSS from /proc/PID/status at the end of the window; CPU is the
 * growth of utime+stime (/proc/PID/stat) over the window, in percent of
 * one core. Per thread of the agent, the CPU time and the context switches
 * in the window follow as "# " lines: a thread that wakes often shows
 * there.
 *
 * BENCH_AGENT_PROPS="key=value ..." restarts the agent with those
 * librdkafka settings ([Kafka.Properties]) before the deploys, e.g.
 * "fetch.wait.max.ms=500" to see what the control consumer's fetch wait
 * costs when idle.
 *
 * Prints: agent.rss MiB, agent.idle_cpu %, agent.baseline.rss MiB,
 * agent.baseline.idle_cpu %. Needs root (bg-host).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"

#define WAIT_MS 60000
#define JOB2 "counts2"
#define JOB2_PATH "/org/bluegreen/Agent1/job/counts2"

/* utime+stime of /proc/PID[/task/TID]/stat in clock ticks, -1 if gone. */
static gint64
cpu_ticks (const char *stat_path)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;
  const char *p;

  if (!g_file_get_contents (stat_path, &text, NULL, NULL))
    return -1;
  /* comm may hold spaces: the fields after it start past the last ')'. */
  p = strrchr (text, ')');
  if (p == NULL)
    return -1;
  fields = g_strsplit (p + 2, " ", -1);
  /* After ")": state is field 3 of stat(5), utime 14, stime 15. */
  if (g_strv_length (fields) < 13)
    return -1;
  return g_ascii_strtoll (fields[11], NULL, 10) + g_ascii_strtoll (fields[12], NULL, 10);
}

static gint64
status_value (const char *status_path, const char *key)
{
  g_autofree char *text = NULL;
  g_autofree char *needle = g_strdup_printf ("\n%s:", key);
  const char *p;

  if (!g_file_get_contents (status_path, &text, NULL, NULL) || (p = strstr (text, needle)) == NULL)
    return -1;
  return g_ascii_strtoll (p + strlen (needle), NULL, 10);
}

typedef struct {
  char *tid;
  char *comm;
  gint64 ticks;
  gint64 switches; /* voluntary + involuntary */
} ThreadSample;

static void
thread_sample_free (gpointer p)
{
  ThreadSample *t = p;
  g_free (t->tid);
  g_free (t->comm);
  g_free (t);
}

static GHashTable *
sample_threads (guint32 pid)
{
  g_autofree char *dir = g_strdup_printf ("/proc/%u/task", pid);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  GHashTable *out = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, thread_sample_free);
  const char *tid;

  while (d != NULL && (tid = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *stat = g_strdup_printf ("%s/%s/stat", dir, tid);
      g_autofree char *status = g_strdup_printf ("%s/%s/status", dir, tid);
      g_autofree char *comm_path = g_strdup_printf ("%s/%s/comm", dir, tid);
      ThreadSample *t = g_new0 (ThreadSample, 1);

      t->tid = g_strdup (tid);
      if (!g_file_get_contents (comm_path, &t->comm, NULL, NULL))
        t->comm = g_strdup ("?");
      g_strstrip (t->comm);
      t->ticks = cpu_ticks (stat);
      t->switches = status_value (status, "voluntary_ctxt_switches")
                    + status_value (status, "nonvoluntary_ctxt_switches");
      g_hash_table_replace (out, t->tid, t);
    }
  return out;
}

/* The agent's config file, from the user manager's environment. */
static char *
agent_config_path (BgtHost *host, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) value = NULL;
  g_autofree const char **env = NULL;

  reply = g_dbus_connection_call_sync (host->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.freedesktop.systemd1.Manager", "Environment"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  env = g_variant_get_strv (value, NULL);
  for (const char **e = env; *e != NULL; e++)
    if (g_str_has_prefix (*e, "BLUEGREEN_TEST_CONFIG="))
      return g_strdup (*e + strlen ("BLUEGREEN_TEST_CONFIG="));
  g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "no BLUEGREEN_TEST_CONFIG in the manager's environment");
  return NULL;
}

static gboolean
wait_hello (BgtFleet *fleet, gint64 from, GError **error)
{
  const char *needles[] = { "\"type\":\"hello\"", "\"host\":\"a\"", NULL };

  /* Deploy is refused (Busy) until the agent has replayed the control
   * log; its first hello follows at once. */
  if (bgt_fleet_control_wait (fleet, from, needles, WAIT_MS) < 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "the agent never said hello");
      return FALSE;
    }
  return TRUE;
}

/* BENCH_AGENT_PROPS="key=value ...": librdkafka settings for the agent's
 * own clients ([Kafka.Properties]), to see what a setting costs or saves;
 * the agent is restarted with them. */
static gboolean
apply_agent_props (BgtFleet *fleet, const char *props, GError **error)
{
  g_autofree char *conf_path = agent_config_path (bgt_fleet_host (fleet, 0), error);
  g_autofree char *text = NULL;
  g_auto (GStrv) items = g_strsplit (props, " ", -1);
  g_autoptr (GString) section = g_string_new ("\n[Kafka.Properties]\n");
  gint64 from;

  if (conf_path == NULL || !g_file_get_contents (conf_path, &text, NULL, error))
    return FALSE;
  for (char **it = items; *it != NULL; it++)
    if (**it != '\0')
      g_string_append_printf (section, "%s\n", *it);
  g_string_prepend (section, text);
  if (!g_file_set_contents (conf_path, section->str, -1, error))
    return FALSE;
  from = bgt_fleet_control_watermark (fleet, error);
  if (from < 0 || !bgt_fleet_systemctl (fleet, 0, "restart", "bluegreend.service", error))
    return FALSE;
  g_printerr ("# agent restarted with [Kafka.Properties] %s\n", props);
  return wait_hello (fleet, from, error);
}

/* Adds job JOB2 (a copy of the fleet's job) and reloads the agent. */
static gboolean
add_second_job (BgtFleet *fleet, GError **error)
{
  g_autofree char *conf_path = agent_config_path (bgt_fleet_host (fleet, 0), error);
  g_autoptr (GKeyFile) conf = g_key_file_new ();
  g_autofree char *jobs = NULL;
  g_autofree char *src = NULL;
  g_autofree char *dst = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GVariant) reply = NULL;

  if (conf_path == NULL || !g_key_file_load_from_file (conf, conf_path, G_KEY_FILE_NONE, error))
    return FALSE;
  jobs = g_key_file_get_string (conf, "Agent", "JobsDirectory", error);
  if (jobs == NULL)
    return FALSE;
  src = g_build_filename (jobs, BGT_FLEET_JOB ".job", NULL);
  dst = g_build_filename (jobs, JOB2 ".job", NULL);
  if (!g_file_get_contents (src, &text, NULL, error) || !g_file_set_contents (dst, text, -1, error))
    return FALSE;
  reply = bgt_fleet_call (fleet, 0, "/org/bluegreen/Agent1", "org.bluegreen.Agent1", "Reload", NULL, "()",
                          10000, error);
  return reply != NULL;
}

static gboolean
deploy (BgtFleet *fleet, const char *job_path, const char *version, gboolean live, GError **error)
{
  GVariantBuilder opts;
  g_autoptr (GVariant) reply = NULL;

  g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
  if (live)
    g_variant_builder_add (&opts, "{sv}", "live", g_variant_new_boolean (TRUE));
  reply = bgt_fleet_call (fleet, 0, job_path, BGT_JOB_IFACE, "Deploy",
                          g_variant_new ("(sa{sv})", version, &opts), "(o)", WAIT_MS, error);
  return reply != NULL;
}

typedef struct {
  BgtFleet *fleet;
} ReadyWait;

static gboolean
all_four_ready (gpointer data)
{
  ReadyWait *w = data;
  const char *jobs[] = { BGT_FLEET_JOB_PATH, JOB2_PATH };
  const char *colors[] = { "blue", "green" };

  for (guint j = 0; j < G_N_ELEMENTS (jobs); j++)
    for (guint c = 0; c < G_N_ELEMENTS (colors); c++)
      {
        g_autofree char *path = g_strdup_printf ("%s/%s", jobs[j], colors[c]);
        g_autoptr (GVariant) v = bgt_fleet_get (w->fleet, 0, path, BGT_SLOT_IFACE, "Ready");
        if (v == NULL || !g_variant_get_boolean (v))
          return FALSE;
      }
  return TRUE;
}

static gboolean
wait_phase (BgtFleet *fleet, const char *job_path, const char *prop, const char *want)
{
  return bgt_fleet_wait_string (fleet, 1, job_path, BGT_JOB_IFACE, prop, want, WAIT_MS);
}

static gboolean
produce (BgtFleet *fleet, int n, GError **error)
{
  g_autofree char *loadgen = bgt_build_path ("bluegreen-loadgen");
  g_autofree char *n_s = g_strdup_printf ("%d", n);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = -1;

  if (loadgen == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-loadgen is not built");
      return FALSE;
    }
  {
    const char *argv[] = { loadgen, "-b", bgt_fleet_bootstrap (fleet), "-t", BGT_FLEET_INPUT, "-n", n_s,
                           "-q", NULL };
    if (!bgt_run (argv, NULL, WAIT_MS, &out, &err, &status, error))
      return FALSE;
  }
  if (status != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "loadgen failed (%d): %s", status, err);
      return FALSE;
    }
  return TRUE;
}

static gboolean
set_up (BgtFleet *fleet, GError **error)
{
  const char *jobs[] = { BGT_FLEET_JOB_PATH, JOB2_PATH };
  ReadyWait w = { fleet };
  const char *props = g_getenv ("BENCH_AGENT_PROPS");

  if (!wait_hello (fleet, 0, error))
    return FALSE;
  if (props != NULL && *props != '\0' && !apply_agent_props (fleet, props, error))
    return FALSE;
  if (!add_second_job (fleet, error))
    return FALSE;
  for (guint j = 0; j < G_N_ELEMENTS (jobs); j++)
    {
      if (!deploy (fleet, jobs[j], "v1", TRUE, error))
        return FALSE;
      if (!wait_phase (fleet, jobs[j], "LiveColor", "blue"))
        {
          g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "%s: blue did not go live", jobs[j]);
          return FALSE;
        }
    }
  for (guint j = 0; j < G_N_ELEMENTS (jobs); j++)
    if (!deploy (fleet, jobs[j], "v2", FALSE, error))
      return FALSE;
  /* A slot that never admitted a record has no Positions, so no Lag and
   * never Ready: give every partition a few records, then the input
   * stays idle. */
  if (!produce (fleet, 400, error))
    return FALSE;
  if (!bgt_wait_until (all_four_ready, &w, WAIT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "the four slots did not become Ready");
      return FALSE;
    }
  for (guint j = 0; j < G_N_ELEMENTS (jobs); j++)
    if (!wait_phase (fleet, jobs[j], "Phase", "ready"))
      {
        g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "%s: Phase did not become ready", jobs[j]);
        return FALSE;
      }
  return TRUE;
}

static guint32
slot_pid (BgtFleet *fleet, const char *job_path, const char *color)
{
  g_autofree char *path = g_strdup_printf ("%s/%s", job_path, color);
  g_autoptr (GVariant) v = bgt_fleet_get (fleet, 0, path, BGT_SLOT_IFACE, "MainPID");
  return v != NULL ? g_variant_get_uint32 (v) : 0;
}

/* Lets the main context run (the fleet's D-Bus connections) for @ms. */
static void
idle_for (int ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  GMainContext *ctx = g_main_context_default ();

  while (g_get_monotonic_time () < end)
    {
      if (!g_main_context_iteration (ctx, FALSE))
        g_usleep (MIN (100000, MAX (0, end - g_get_monotonic_time ())));
    }
}

static int
cmp_ticks_desc (gconstpointer a, gconstpointer b)
{
  const ThreadSample *x = *(ThreadSample *const *) a, *y = *(ThreadSample *const *) b;
  return (x->ticks < y->ticks) - (x->ticks > y->ticks);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgtFleet) fleet = NULL;
  g_autoptr (GHashTable) threads0 = NULL;
  g_autoptr (GHashTable) threads1 = NULL;
  g_autoptr (GPtrArray) deltas = g_ptr_array_new_with_free_func (thread_sample_free);
  BgtFleetOptions opts;
  const char *env = g_getenv ("BENCH_SECONDS");
  int seconds = env ? atoi (env) : 60;
  double hz = (double) sysconf (_SC_CLK_TCK);
  guint32 agent, job;
  g_autofree char *agent_stat = NULL, *agent_status = NULL, *job_stat = NULL, *job_status = NULL;
  gint64 a0, a1, j0, j1, t0, t1, rss_agent, rss_job;
  double window;

  g_test_init (&argc, &argv, NULL);
  if (geteuid () != 0)
    {
      g_printerr ("bench-agent: needs root (bg-host)\n");
      return 77;
    }
  if (seconds <= 0)
    seconds = 60;
  /* Run by tools/bench from the build directory, not by the test harness. */
  if (g_getenv ("BG_TOP_BUILDDIR") == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *dir = self ? g_path_get_dirname (self) : g_get_current_dir ();
      g_setenv ("BG_TOP_BUILDDIR", dir, TRUE);
    }
  if (g_getenv ("BG_TOP_SRCDIR") == NULL)
    g_setenv ("BG_TOP_SRCDIR", BENCH_TOP_SRCDIR, TRUE);
  if (g_getenv ("BG_TEST_TMPDIR") == NULL)
    {
      g_autofree char *tmp = g_dir_make_tmp ("bench-agent-XXXXXX", NULL);
      g_setenv ("BG_TEST_TMPDIR", tmp, TRUE);
    }
  bgt_fleet_options_init (&opts);
  opts.n_hosts = 1;
  opts.partitions = 4;
  /* The heartbeat the shipped config uses (bluegreend.conf: HeartbeatSec). */
  opts.heartbeat_sec = 2;
  fleet = bgt_fleet_new (&opts, &error);
  if (fleet == NULL || !set_up (fleet, &error))
    {
      g_printerr ("bench-agent: %s\n", error->message);
      return 1;
    }

  agent = bgt_fleet_agent_pid (fleet, 0);
  job = slot_pid (fleet, BGT_FLEET_JOB_PATH, "blue");
  if (agent == 0 || job == 0)
    {
      g_printerr ("bench-agent: no agent or job process (agent %u, job %u)\n", agent, job);
      return 1;
    }
  agent_stat = g_strdup_printf ("/proc/%u/stat", agent);
  agent_status = g_strdup_printf ("/proc/%u/status", agent);
  job_stat = g_strdup_printf ("/proc/%u/stat", job);
  job_status = g_strdup_printf ("/proc/%u/status", job);

  /* Start-up work (the deploys, the first reports) is not idle: let it pass. */
  idle_for (2000);
  t0 = g_get_monotonic_time ();
  a0 = cpu_ticks (agent_stat);
  j0 = cpu_ticks (job_stat);
  threads0 = sample_threads (agent);
  idle_for (seconds * 1000);
  t1 = g_get_monotonic_time ();
  a1 = cpu_ticks (agent_stat);
  j1 = cpu_ticks (job_stat);
  threads1 = sample_threads (agent);
  rss_agent = status_value (agent_status, "VmRSS");
  rss_job = status_value (job_status, "VmRSS");
  if (a0 < 0 || a1 < 0 || j0 < 0 || j1 < 0 || rss_agent < 0 || rss_job < 0)
    {
      g_printerr ("bench-agent: the agent (%u) or the job (%u) went away during the window\n", agent, job);
      return 1;
    }
  window = (t1 - t0) / 1e6;

  printf ("agent.rss %.1f MiB\n", rss_agent / 1024.0);
  printf ("agent.idle_cpu %.3f %%\n", 100.0 * (a1 - a0) / hz / window);
  printf ("agent.baseline.rss %.1f MiB\n", rss_job / 1024.0);
  printf ("agent.baseline.idle_cpu %.3f %%\n", 100.0 * (j1 - j0) / hz / window);
  fflush (stdout);

  /* Where the agent's time and wake-ups went, per thread. */
  {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, threads1);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      {
        ThreadSample *t = value, *before = g_hash_table_lookup (threads0, t->tid);
        ThreadSample *d = g_new0 (ThreadSample, 1);
        d->tid = g_strdup (t->tid);
        d->comm = g_strdup (t->comm);
        d->ticks = t->ticks - (before ? before->ticks : 0);
        d->switches = t->switches - (before ? before->switches : 0);
        g_ptr_array_add (deltas, d);
      }
    g_ptr_array_sort (deltas, cmp_ticks_desc);
    g_printerr ("# agent pid %u, %u threads, window %.1f s; job pid %u (baseline: counts/blue)\n", agent,
                deltas->len, window, job);
    g_autofree char *agent_smaps = g_strdup_printf ("/proc/%u/smaps_rollup", agent);
    g_autofree char *job_smaps = g_strdup_printf ("/proc/%u/smaps_rollup", job);
    g_printerr ("# agent RSS: anon %.1f MiB, file %.1f MiB, PSS %.1f MiB; job RSS: anon %.1f MiB, file %.1f MiB, PSS %.1f MiB\n",
                status_value (agent_status, "RssAnon") / 1024.0, status_value (agent_status, "RssFile") / 1024.0,
                status_value (agent_smaps, "Pss") / 1024.0,
                status_value (job_status, "RssAnon") / 1024.0, status_value (job_status, "RssFile") / 1024.0,
                status_value (job_smaps, "Pss") / 1024.0);
    for (guint i = 0; i < deltas->len; i++)
      {
        ThreadSample *d = g_ptr_array_index (deltas, i);
        g_printerr ("#   thread %-16s %6s: cpu %5.0f ms, %6.1f wake-ups/s\n", d->comm, d->tid,
                    1000.0 * d->ticks / hz, d->switches / window);
      }
  }
  return 0;
}
