/* test-ops.c — operating two versions (issue 7) on a test host with the
 * real agent (units/test/bluegreend.service), the example job and the
 * Kafka mock: [metrics] (the node_exporter textfile, parsed as Prometheus
 * text format), [journal] (the structured fields and MESSAGE_IDs, captured
 * through BLUEGREEN_LOG_FIELDS_FILE since no journald runs in a test host;
 * the catalog's syntax), [capacity] (CPUWeight/MemoryMax/TasksMax read
 * back from systemd, the catch-up weight, NoResources through the
 * BLUEGREEN_TEST_MEMINFO hook) and [guard] (a blackholed example job
 * skips its schema registration and has the override environment; once
 * live it registers).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "bgtest.h"
#include "daemon/log.h"

#define WAIT_MS 60000
#define AGENT "org.bluegreen.Agent1"
#define AGENT_PATH "/org/bluegreen/Agent1"
#define JOB_IFACE "org.bluegreen.Job1"
#define SLOT_IFACE "org.bluegreen.Slot1"
#define JOB "ops"
#define JOB_PATH "/org/bluegreen/Agent1/job/ops"
#define HOST_ID "opshost"
#define PARTITIONS 2
#define CPU_WEIGHT 400
#define CATCH_UP_WEIGHT 20
#define MEMORY_MAX (256 * 1024 * 1024)
#define TASKS_MAX 64

typedef struct {
  BgtKafka *kafka;
  BgtHost *host;
  char *dir;
  char *state_dir;
  char *metrics_dir;
  char *schema_dir;
  char *fields_path;
  char *meminfo_path;
  gint64 produced;
} Fixture;

/* ---- set-up ---------------------------------------------------------------------- */

static void
write_file (const char *path, const char *contents, int mode)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
}

static void
set_mem_available (Fixture *f, guint64 kib)
{
  g_autofree char *text = g_strdup_printf ("MemTotal:       16777216 kB\nMemFree:         1000 kB\n"
                                           "MemAvailable:   %" G_GUINT64_FORMAT " kB\n", kib);
  write_file (f->meminfo_path, text, 0644);
}

static void
host_exec_ok (Fixture *f, const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  int status = -1;

  bgt_host_exec (f->host, argv, &out, &status, &error);
  g_assert_no_error (error);
  if (status != 0)
    g_test_message ("%s failed (%d): %s", argv[0], status, out);
  g_assert_cmpint (status, ==, 0);
}

static GVariant *
get_prop (Fixture *f, const char *path, const char *iface, const char *prop)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (f->host->bus, AGENT, path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", iface, prop), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return value;
}

static gboolean
control_log_following (gpointer data)
{
  Fixture *f = data;
  g_autoptr(GVariant) v = get_prop (f, AGENT_PATH, AGENT, "ControlLog");

  return v != NULL && g_strcmp0 (g_variant_get_string (v, NULL), "following") == 0;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  const char *tmp = g_getenv ("BG_TEST_TMPDIR");
  const char *builddir = g_getenv ("BG_TOP_BUILDDIR");
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  g_autofree char *jobs = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *conf_path = NULL;
  g_autofree char *job = NULL;
  g_autofree char *binds = NULL;
  g_autofree char *job_path = NULL;
  g_autofree char *job_bin = NULL;
  g_autofree char *unit = NULL;
  g_autofree char *slice = NULL;
  g_autofree char *env_conf = NULL;
  g_autofree char *env_fields = NULL;
  g_autofree char *env_meminfo = NULL;
  static guint n = 0;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  g_assert_nonnull (builddir);
  /* Never an earlier run's directory (its state file would bring that
   * run's slots back): the process id too, when run outside tap-test. */
  f->dir = g_strdup_printf ("%s/ops-%d-%u", tmp ? tmp : g_get_tmp_dir (), (int) getpid (), n++);
  f->state_dir = g_build_filename (f->dir, "state", NULL);
  f->metrics_dir = g_build_filename (f->dir, "metrics", NULL);
  f->schema_dir = g_build_filename (f->dir, "schemas", NULL);
  f->fields_path = g_build_filename (f->dir, "fields.jsonl", NULL);
  f->meminfo_path = g_build_filename (f->dir, "meminfo", NULL);
  jobs = g_build_filename (f->dir, "jobs", NULL);
  g_assert_cmpint (g_mkdir_with_parents (jobs, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (f->state_dir, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (f->metrics_dir, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (f->schema_dir, 0755), ==, 0);
  set_mem_available (f, 8 * 1024 * 1024); /* 8 GiB: a deploy fits */

  {
    const char *topics[] = { "bluegreen-control:1", "in:2", "out:2", NULL };
    f->kafka = bgt_kafka_start (1, topics, f->dir, &error);
    g_assert_no_error (error);
  }
  conf = g_strdup_printf ("[Agent]\nHostId=" HOST_ID "\nBus=session\nStateDirectory=%s\nJobsDirectory=%s\n"
                          "MetricsDirectory=%s\nHeartbeatSec=0.3\n[Kafka]\nBootstrapServers=%s\n[Kafka.Properties]\nfetch.wait.max.ms=10\n",
                          f->state_dir, jobs, f->metrics_dir, f->kafka->bootstrap);
  conf_path = g_build_filename (f->dir, "bluegreend.conf", NULL);
  write_file (conf_path, conf, 0644);

  job_bin = bgt_build_path ("bluegreen-example-job");
  g_assert_nonnull (job_bin);
  binds = bgt_sandbox_bind_paths (f->dir);
  job = g_strdup_printf ("[Job]\nExecStart=%s --version=%%v --output=out --status-interval=0.1\n"
                         "InputTopics=in:%d\nOutputTopics=out\nEnvironment=EXAMPLE_SCHEMA_DIR=%s\n"
                         "[Readiness]\nMaxLag=100000\nStableSec=0\n"
                         "[Resources]\nCPUWeight=%d\nCatchUpCPUWeight=%d\nMemoryMax=256M\nTasksMax=%d\n"
                         "[Cutover]\nObservationSec=300\nDeadlineSec=5\n"
                         "[Guard]\nEnvironment=EXAMPLE_GUARDED=1;SCHEMA_REGISTRY_URL=http://192.0.2.1:9/\n"
                         "IPAddressDeny=192.0.2.0/24\n"
                         /* the test's directory (below /tmp) under PrivateTmp= */
                         "[Sandbox]\nBindPaths=%s\n",
                         job_bin, PARTITIONS, f->schema_dir, CPU_WEIGHT, CATCH_UP_WEIGHT, TASKS_MAX, binds);
  job_path = g_build_filename (jobs, JOB ".job", NULL);
  write_file (job_path, job, 0644);

  f->host = bgt_host_start ("ops", &error);
  g_assert_no_error (error);
  unit = g_build_filename (builddir, "units", "test", "bluegreend.service", NULL);
  slice = g_build_filename (srcdir, "units", "bluegreen.slice", NULL);
  {
    const char *files[] = { unit, slice, NULL };
    bgt_host_install_units (f->host, files, &error);
    g_assert_no_error (error);
  }
  env_conf = g_strdup_printf ("BLUEGREEN_TEST_CONFIG=%s", conf_path);
  env_fields = g_strdup_printf ("%s=%s", BGD_LOG_FIELDS_FILE_ENV, f->fields_path);
  env_meminfo = g_strdup_printf ("BLUEGREEN_TEST_MEMINFO=%s", f->meminfo_path);
  {
    const char *argv[] = { "systemctl", "--user", "set-environment", env_conf, env_fields, env_meminfo,
                           "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1",
                           "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", NULL };
    host_exec_ok (f, argv);
  }
  {
    const char *argv[] = { "systemctl", "--user", "start", "bluegreend.service", NULL };
    host_exec_ok (f, argv);
  }
  g_assert_true (bgt_wait_bus_name (f->host->bus, AGENT, WAIT_MS));
  g_assert_true (bgt_wait_until (control_log_following, f, WAIT_MS));
}

static void
dump_file (const char *path)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  g_test_message ("---- %s", path);
  for (guint i = 0; lines[i] != NULL; i++)
    g_test_message ("%s", lines[i]);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->host != NULL)
    {
      if (g_test_failed ())
        {
          g_autofree char *logs = g_build_filename (f->state_dir, "logs", NULL);
          g_autoptr(GDir) d = g_dir_open (logs, 0, NULL);
          const char *name;

          while (d != NULL && (name = g_dir_read_name (d)) != NULL)
            {
              g_autofree char *path = g_build_filename (logs, name, NULL);
              dump_file (path);
            }
          dump_file (f->fields_path);
        }
      g_clear_pointer (&f->host, bgt_host_free);
    }
  g_clear_pointer (&f->kafka, bgt_kafka_free);
  g_free (f->dir);
  g_free (f->state_dir);
  g_free (f->metrics_dir);
  g_free (f->schema_dir);
  g_free (f->fields_path);
  g_free (f->meminfo_path);
}

/* ---- the agent over D-Bus --------------------------------------------------------- */

static GVariant *
call (Fixture *f, const char *path, const char *iface, const char *method, GVariant *args,
      const char *reply_type, GError **error)
{
  return g_dbus_connection_call_sync (f->host->bus, AGENT, path, iface, method, args,
                                      reply_type ? G_VARIANT_TYPE (reply_type) : NULL, G_DBUS_CALL_FLAGS_NONE,
                                      WAIT_MS, NULL, error);
}

static GVariant *
deploy_full (Fixture *f, const char *version, gboolean live, gboolean force, GError **error)
{
  GVariantBuilder opts;

  g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
  if (live)
    g_variant_builder_add (&opts, "{sv}", "live", g_variant_new_boolean (TRUE));
  if (force)
    g_variant_builder_add (&opts, "{sv}", "force", g_variant_new_boolean (TRUE));
  return call (f, JOB_PATH, JOB_IFACE, "Deploy", g_variant_new ("(sa{sv})", version, &opts), "(o)", error);
}

static void
deploy (Fixture *f, const char *version, gboolean live)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = deploy_full (f, version, live, FALSE, &error);

  g_assert_no_error (error);
}

static void
set_sink_mode (Fixture *f, const char *color, const char *mode)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (f, JOB_PATH, JOB_IFACE, "SetSinkMode", g_variant_new ("(ss)", color, mode),
                                    NULL, &error);

  g_assert_no_error (error);
}

static char *
slot_path (const char *color)
{
  return g_strdup_printf ("%s/%s", JOB_PATH, color);
}

typedef struct {
  Fixture *f;
  char *path;
} AppliedWait;

static gboolean
steering_applied (gpointer data)
{
  AppliedWait *w = data;
  g_autoptr(GVariant) gen = get_prop (w->f, w->path, SLOT_IFACE, "Generation");
  g_autoptr(GVariant) applied = get_prop (w->f, w->path, SLOT_IFACE, "AppliedGeneration");

  return gen != NULL && applied != NULL && g_variant_get_uint64 (applied) >= g_variant_get_uint64 (gen);
}

/* Waits until @color's job has confirmed its current steering (a flip is
 * on this host only and takes effect when the job has applied it). */
static void
wait_steering_applied (Fixture *f, const char *color)
{
  AppliedWait w = { f, slot_path (color) };

  g_assert_true (bgt_wait_until (steering_applied, &w, WAIT_MS));
  g_free (w.path);
}

typedef struct {
  Fixture *f;
  const char *path;
  const char *iface;
  const char *prop;
  const char *want_string;
  gboolean want_bool;
} PropWait;

static gboolean
prop_matches (gpointer data)
{
  PropWait *w = data;
  g_autoptr(GVariant) v = get_prop (w->f, w->path, w->iface, w->prop);

  if (v == NULL)
    return FALSE;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
    return g_variant_get_boolean (v) == w->want_bool;
  return g_variant_is_of_type (v, G_VARIANT_TYPE_STRING) && g_strcmp0 (g_variant_get_string (v, NULL), w->want_string) == 0;
}

static void
wait_slot_string (Fixture *f, const char *color, const char *prop, const char *want)
{
  g_autofree char *path = slot_path (color);
  PropWait w = { f, path, SLOT_IFACE, prop, want, FALSE };

  if (!bgt_wait_until (prop_matches, &w, WAIT_MS))
    g_test_message ("%s %s never became %s", path, prop, want);
  g_assert_true (prop_matches (&w));
}

static void
wait_slot_ready (Fixture *f, const char *color)
{
  g_autofree char *path = slot_path (color);
  PropWait w = { f, path, SLOT_IFACE, "Ready", NULL, TRUE };

  if (!bgt_wait_until (prop_matches, &w, WAIT_MS))
    g_test_message ("%s never became Ready", path);
  g_assert_true (prop_matches (&w));
}

static void
produce (Fixture *f, gint64 count)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *loadgen = bgt_build_path ("bluegreen-loadgen");
  g_autofree char *n = g_strdup_printf ("%" G_GINT64_FORMAT, count);
  g_autofree char *start = g_strdup_printf ("%" G_GINT64_FORMAT, f->produced);
  g_autofree char *out = NULL, *err = NULL;
  int status = -1;
  const char *argv[] = { loadgen, "--bootstrap", f->kafka->bootstrap, "--topic", "in", "--count", n,
                         "--start-index", start, "--quiet", NULL };

  g_assert_nonnull (loadgen);
  bgt_run (argv, NULL, WAIT_MS, &out, &err, &status, &error);
  g_assert_no_error (error);
  if (status != 0)
    g_test_message ("loadgen: %s", err);
  g_assert_cmpint (status, ==, 0);
  f->produced += count;
}

/* The sum of a slot's Positions (next offsets, -1 counted as 0). */
static gint64
positions_sum (Fixture *f, const char *color)
{
  g_autofree char *path = slot_path (color);
  g_autoptr(GVariant) v = get_prop (f, path, SLOT_IFACE, "Positions");
  GVariantIter iter;
  const char *topic;
  gint32 p;
  gint64 off, sum = 0;

  if (v == NULL)
    return -1;
  g_variant_iter_init (&iter, v);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &p, &off))
    sum += MAX (off, 0);
  return sum;
}

typedef struct {
  Fixture *f;
  const char *color;
  gint64 want;
} PositionsWait;

static gboolean
positions_reach (gpointer data)
{
  PositionsWait *w = data;
  return positions_sum (w->f, w->color) >= w->want;
}

/* Waits until the slot's instances consumed everything produced. */
static void
wait_caught_up (Fixture *f, const char *color)
{
  PositionsWait w = { f, color, f->produced };

  if (!bgt_wait_until (positions_reach, &w, WAIT_MS))
    {
      /* Tell "never steered" (AppliedGeneration behind Generation: the
       * gate waits in mode unknown) from "steered, consumed nothing". */
      g_autofree char *path = slot_path (color);
      const char *props[] = { "State", "SinkMode", "Generation", "AppliedGeneration", "Positions", "Lag",
                              "LastError", NULL };

      g_test_message ("%s: positions %" G_GINT64_FORMAT ", produced %" G_GINT64_FORMAT, color,
                      positions_sum (f, color), f->produced);
      for (const char **p = props; *p != NULL; p++)
        {
          g_autoptr(GVariant) v = get_prop (f, path, SLOT_IFACE, *p);
          g_autofree char *text = v != NULL ? g_variant_print (v, FALSE) : g_strdup ("(unreadable)");
          g_test_message ("%s %s: %s", color, *p, text);
        }
    }
  g_assert_true (positions_reach (&w));
}

/* ---- systemd's view of a slot unit ------------------------------------------------- */

static GVariant *
unit_prop (Fixture *f, const char *color, const char *iface, const char *prop)
{
  g_autofree char *unit = g_strdup_printf ("bluegreen-" JOB "-%s.service", color);
  g_autoptr(GVariant) path = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *p;
  GVariant *value = NULL;

  path = g_dbus_connection_call_sync (f->host->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                      "org.freedesktop.systemd1.Manager", "GetUnit", g_variant_new ("(s)", unit),
                                      G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (path, "(&o)", &p);
  reply = g_dbus_connection_call_sync (f->host->bus, "org.freedesktop.systemd1", p,
                                       "org.freedesktop.DBus.Properties", "Get", g_variant_new ("(ss)", iface, prop),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static guint64
unit_u64 (Fixture *f, const char *color, const char *prop)
{
  g_autoptr(GVariant) v = unit_prop (f, color, "org.freedesktop.systemd1.Service", prop);

  return g_variant_get_uint64 (v);
}

typedef struct {
  Fixture *f;
  const char *color;
  const char *prop;
  guint64 want;
} UnitWait;

static gboolean
unit_u64_is (gpointer data)
{
  UnitWait *w = data;
  return unit_u64 (w->f, w->color, w->prop) == w->want;
}

static void
wait_unit_u64 (Fixture *f, const char *color, const char *prop, guint64 want)
{
  UnitWait w = { f, color, prop, want };

  if (!bgt_wait_until (unit_u64_is, &w, WAIT_MS))
    g_test_message ("%s %s is %" G_GUINT64_FORMAT ", waited for %" G_GUINT64_FORMAT, color, prop,
                    unit_u64 (f, color, prop), want);
  g_assert_true (unit_u64_is (&w));
}

static gsize
unit_ip_deny_count (Fixture *f, const char *color)
{
  g_autoptr(GVariant) v = unit_prop (f, color, "org.freedesktop.systemd1.Service", "IPAddressDeny");

  return g_variant_n_children (v);
}

typedef struct {
  Fixture *f;
  const char *color;
  gboolean want_set;
} DenyWait;

static gboolean
deny_is (gpointer data)
{
  DenyWait *w = data;
  return (unit_ip_deny_count (w->f, w->color) > 0) == w->want_set;
}

static gboolean
unit_env_has (Fixture *f, const char *color, const char *entry)
{
  g_autoptr(GVariant) v = unit_prop (f, color, "org.freedesktop.systemd1.Service", "Environment");
  g_autofree const char **env = g_variant_get_strv (v, NULL);

  return g_strv_contains (env, entry);
}

/* ---- Prometheus text format ---------------------------------------------------------- */

typedef struct {
  char *name;
  GHashTable *labels; /* name → value (unescaped) */
  double value;
} Sample;

static void
sample_free (Sample *s)
{
  g_free (s->name);
  g_hash_table_unref (s->labels);
  g_free (s);
}

static gboolean
is_name (const char *s, gsize len, gboolean colons)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = s[i];
      if (!(g_ascii_isalpha (c) || c == '_' || (colons && c == ':') || (i > 0 && g_ascii_isdigit (c))))
        return FALSE;
    }
  return TRUE;
}

/* Parses @text as the Prometheus text exposition format (0.0.4), checking
 * what node_exporter's parser checks: metric and label names, label value
 * escapes, numeric values, a TYPE before a family's samples and at most
 * once, families not interleaved, no series twice. */
static GPtrArray *
prom_parse (const char *text, GError **error)
{
  g_autoptr(GPtrArray) samples = g_ptr_array_new_with_free_func ((GDestroyNotify) sample_free);
  g_autoptr(GHashTable) types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) closed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) series = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree char *current = NULL;

  if (!g_str_has_suffix (text, "\n"))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "no newline at the end");
      return NULL;
    }
  for (guint ln = 0; lines[ln] != NULL; ln++)
    {
      const char *l = lines[ln];
      const char *p;
      g_autoptr(GString) key = NULL;
      g_autoptr(GPtrArray) label_list = NULL;
      Sample *s;
      char *end;

      if (*l == '\0')
        continue;
      if (g_str_has_prefix (l, "# HELP ") || g_str_has_prefix (l, "# TYPE "))
        {
          g_auto(GStrv) parts = g_strsplit (l + 7, " ", 2);
          if (parts[0] == NULL || !is_name (parts[0], strlen (parts[0]), TRUE) || parts[1] == NULL)
            goto bad;
          if (l[2] == 'T')
            {
              static const char *const kinds[] = { "counter", "gauge", "histogram", "summary", "untyped", NULL };
              if (!g_strv_contains (kinds, parts[1]) || g_hash_table_contains (types, parts[0])
                  || g_hash_table_contains (closed, parts[0]))
                goto bad;
              g_hash_table_insert (types, g_strdup (parts[0]), g_strdup (parts[1]));
            }
          continue;
        }
      if (*l == '#')
        continue;

      s = g_new0 (Sample, 1);
      s->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_ptr_array_add (samples, s);
      p = l;
      while (*p != '\0' && *p != '{' && *p != ' ')
        p++;
      if (!is_name (l, p - l, TRUE))
        goto bad;
      s->name = g_strndup (l, p - l);
      key = g_string_new (s->name);
      label_list = g_ptr_array_new_with_free_func (g_free);
      if (*p == '{')
        {
          p++;
          while (*p != '}')
            {
              const char *n0 = p;
              g_autoptr(GString) value = g_string_new (NULL);
              g_autofree char *lname = NULL;

              while (*p != '\0' && *p != '=')
                p++;
              if (*p != '=' || !is_name (n0, p - n0, FALSE) || p[1] != '"')
                goto bad;
              lname = g_strndup (n0, p - n0);
              for (p += 2; *p != '"'; p++)
                {
                  if (*p == '\0')
                    goto bad;
                  if (*p == '\\')
                    {
                      p++;
                      if (*p == 'n')
                        g_string_append_c (value, '\n');
                      else if (*p == '\\' || *p == '"')
                        g_string_append_c (value, *p);
                      else
                        goto bad;
                    }
                  else
                    g_string_append_c (value, *p);
                }
              p++;
              if (g_hash_table_contains (s->labels, lname))
                goto bad;
              g_ptr_array_add (label_list, g_strdup_printf ("%s=%s", lname, value->str));
              g_hash_table_insert (s->labels, g_steal_pointer (&lname), g_string_free (g_steal_pointer (&value), FALSE));
              if (*p == ',')
                p++;
              else if (*p != '}')
                goto bad;
            }
          p++;
        }
      if (*p != ' ')
        goto bad;
      p++;
      s->value = g_ascii_strtod (p, &end);
      if (end == p || (*end != '\0' && *end != ' '))
        goto bad;
      /* The family: TYPE'd before, and not interrupted by another one. */
      if (!g_hash_table_contains (types, s->name))
        goto bad;
      if (g_strcmp0 (current, s->name) != 0)
        {
          if (g_hash_table_contains (closed, s->name))
            goto bad;
          if (current != NULL)
            g_hash_table_add (closed, g_steal_pointer (&current));
          current = g_strdup (s->name);
        }
      g_ptr_array_sort (label_list, (GCompareFunc) g_strcmp0);
      for (guint i = 0; i < label_list->len; i++)
        g_string_append_printf (key, "\x1f%s", (char *) label_list->pdata[i]);
      if (!g_hash_table_add (series, g_string_free (g_steal_pointer (&key), FALSE)))
        goto bad;
      continue;
    bad:
      g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "line %u is not valid: %s", ln + 1, l);
      return NULL;
    }
  return g_steal_pointer (&samples);
}

/* The value of the one sample of @name whose labels include every
 * (name, value) pair of @labels (NULL-terminated); NAN if none, and a
 * failed assertion if several match. */
static double
prom_value (GPtrArray *samples, const char *name, const char *const *labels)
{
  double found = NAN;
  guint n = 0;

  for (guint i = 0; i < samples->len; i++)
    {
      Sample *s = samples->pdata[i];
      gboolean match = g_str_equal (s->name, name);

      for (guint k = 0; match && labels[k] != NULL; k += 2)
        match = g_strcmp0 (g_hash_table_lookup (s->labels, labels[k]), labels[k + 1]) == 0;
      if (match)
        {
          found = s->value;
          n++;
        }
    }
  g_assert_cmpuint (n, <=, 1);
  return found;
}

static GPtrArray *
read_metrics (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->metrics_dir, "bluegreen.prom", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *samples;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  samples = prom_parse (text, &error);
  if (samples == NULL)
    {
      g_test_message ("%s", text);
      g_assert_no_error (error);
    }
  return samples;
}

typedef struct {
  Fixture *f;
  const char *name;
  const char *const *labels;
  double want;
} MetricWait;

static gboolean
metric_is (gpointer data)
{
  MetricWait *w = data;
  g_autoptr(GPtrArray) samples = read_metrics (w->f);

  return samples != NULL && prom_value (samples, w->name, w->labels) == w->want;
}

static void
wait_metric (Fixture *f, const char *name, const char *const *labels, double want)
{
  MetricWait w = { f, name, labels, want };

  if (!bgt_wait_until (metric_is, &w, WAIT_MS))
    {
      g_autofree char *path = g_build_filename (f->metrics_dir, "bluegreen.prom", NULL);
      g_test_message ("%s (%s=%s ...) never became %g", name, labels[0], labels[1], want);
      dump_file (path);
    }
  g_assert_true (metric_is (&w));
}

/* ---- [metrics-access] ----------------------------------------------------------------- */

/* The agent runs with UMask=0077; the collector (node_exporter) runs as
 * another user and must still read the file. And what the agent reports of
 * itself: the control log's state and lag, whether the brokers are up,
 * silent hosts per job. With every broker down, bluegreen_kafka_up drops to
 * 0, and comes back. */
static void
test_metrics_access (Fixture *f, gconstpointer data)
{
  const char *following[] = { "host", HOST_ID, "state", "following", NULL };
  const char *replaying[] = { "host", HOST_ID, "state", "replaying", NULL };
  const char *host[] = { "host", HOST_ID, NULL };
  const char *job[] = { "job", JOB, "host", HOST_ID, NULL };
  g_autofree char *path = NULL;
  g_autoptr(GPtrArray) samples = NULL;
  g_autoptr(GError) error = NULL;
  GStatBuf st;

  if (f->host == NULL)
    return;
  path = g_build_filename (f->metrics_dir, "bluegreen.prom", NULL);
  wait_metric (f, "bluegreen_control_log_state", following, 1);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_test_message ("%s: mode %04o", path, (unsigned) (st.st_mode & 07777));
  g_assert_cmpuint (st.st_mode & 07777, ==, 0644);
  samples = read_metrics (f);
  g_assert_nonnull (samples);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_control_log_state", replaying), ==, 0);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_control_log_lag", host), >=, 0);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_job_silent_hosts", job), ==, 0);
  wait_metric (f, "bluegreen_kafka_up", host, 1);

  /* Every broker down: librdkafka says so, the metric follows. */
  g_assert_true (bgt_kafka_command (f->kafka, "down all", &error));
  g_assert_no_error (error);
  wait_metric (f, "bluegreen_kafka_up", host, 0);
  g_assert_true (bgt_kafka_command (f->kafka, "up all", &error));
  g_assert_no_error (error);
  wait_metric (f, "bluegreen_kafka_up", host, 1);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 07777, ==, 0644);
}

/* ---- [metrics] ------------------------------------------------------------------------ */

static void
test_metrics (Fixture *f, gconstpointer data)
{
  const char *blue_v1[] = { "job", JOB, "color", "blue", "version", "v1", "host", HOST_ID, NULL };
  const char *green_v2[] = { "job", JOB, "color", "green", "version", "v2", "host", HOST_ID, NULL };
  const char *blue_running[] = { "job", JOB, "color", "blue", "version", "v1", "state", "running", NULL };
  const char *green_running[] = { "job", JOB, "color", "green", "version", "v2", "state", "running", NULL };
  const char *green_failed[] = { "job", JOB, "color", "green", "version", "v2", "state", "failed", NULL };
  const char *agent[] = { "host", HOST_ID, "version", PACKAGE_VERSION, NULL };
  const char *cutovers[] = { "job", JOB, "host", HOST_ID, "result", "committed", NULL };
  g_autoptr(GPtrArray) samples = NULL;
  gint64 flip_at;

  if (f->host == NULL)
    return;
  deploy (f, "v1", TRUE);
  wait_slot_string (f, "blue", "State", "running");
  produce (f, 400);
  wait_caught_up (f, "blue");
  wait_metric (f, "bluegreen_slot_live", blue_v1, 1);
  wait_metric (f, "bluegreen_slot_emitted_total", blue_v1, 400);
  wait_metric (f, "bluegreen_slot_state", blue_running, 1);
  /* Nothing crashed (test-supervise counts a kill -9). */
  wait_metric (f, "bluegreen_slot_restarts_total", blue_v1, 0);

  /* A deploy of v2 (blackholed) and a flip to it. */
  deploy (f, "v2", FALSE);
  wait_slot_string (f, "green", "State", "running");
  wait_caught_up (f, "green");
  wait_slot_ready (f, "green");
  wait_metric (f, "bluegreen_slot_ready", green_v2, 1);
  wait_metric (f, "bluegreen_slot_dropped_total", green_v2, 400);
  wait_metric (f, "bluegreen_slot_live", green_v2, 0);

  set_sink_mode (f, "blue", "blackhole");
  set_sink_mode (f, "green", "live");
  wait_steering_applied (f, "blue");
  wait_steering_applied (f, "green");
  flip_at = f->produced;
  produce (f, 200);
  wait_caught_up (f, "green");
  wait_caught_up (f, "blue");
  wait_metric (f, "bluegreen_slot_live", green_v2, 1);
  wait_metric (f, "bluegreen_slot_live", blue_v1, 0);
  /* Every record after the flip: emitted by green, dropped by blue. */
  wait_metric (f, "bluegreen_slot_emitted_total", green_v2, f->produced - flip_at);
  wait_metric (f, "bluegreen_slot_dropped_total", blue_v1, f->produced - flip_at);
  wait_metric (f, "bluegreen_slot_emitted_total", blue_v1, flip_at);
  wait_metric (f, "bluegreen_slot_lag", green_v2, 0);

  samples = read_metrics (f);
  g_assert_nonnull (samples);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_agent_info", agent), ==, 1);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_slot_state", green_running), ==, 1);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_slot_state", green_failed), ==, 0);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_slot_ready", green_v2), ==, 1);
  g_assert_cmpfloat (prom_value (samples, "bluegreen_cutovers_total", cutovers), ==, 0);
  {
    /* Positions per partition add up to everything produced. */
    double sum = 0;
    for (int p = 0; p < PARTITIONS; p++)
      {
        g_autofree char *ps = g_strdup_printf ("%d", p);
        const char *labels[] = { "job", JOB, "color", "green", "version", "v2", "topic", "in", "partition", ps, NULL };
        double v = prom_value (samples, "bluegreen_slot_position", labels);
        g_assert_false (isnan (v));
        sum += v;
      }
    g_assert_cmpfloat (sum, ==, (double) f->produced);
  }
}

/* ---- [journal] ------------------------------------------------------------------------ */

static GPtrArray *
read_fields (Fixture *f)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *records = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  if (!g_file_get_contents (f->fields_path, &text, NULL, NULL))
    return records;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      if (*lines[i] == '\0')
        continue;
      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
      g_ptr_array_add (records, json_object_ref (json_node_get_object (json_parser_get_root (parser))));
    }
  return records;
}

/* A record with every field of @fields (name, value, ..., NULL). */
static JsonObject *
find_record (GPtrArray *records, const char *const *fields)
{
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *o = records->pdata[i];
      gboolean match = TRUE;

      for (guint k = 0; match && fields[k] != NULL; k += 2)
        match = g_strcmp0 (json_object_get_string_member_with_default (o, fields[k], NULL), fields[k + 1]) == 0;
      if (match)
        return o;
    }
  return NULL;
}

typedef struct {
  Fixture *f;
  const char *const *fields;
} RecordWait;

static gboolean
record_seen (gpointer data)
{
  RecordWait *w = data;
  g_autoptr(GPtrArray) records = read_fields (w->f);

  return find_record (records, w->fields) != NULL;
}

static void
wait_record (Fixture *f, const char *const *fields)
{
  RecordWait w = { f, fields };

  if (!bgt_wait_until (record_seen, &w, WAIT_MS))
    g_test_message ("no record with MESSAGE_ID=%s", fields[1]);
  g_assert_true (record_seen (&w));
}

static const char *const documented_ids[] = {
  BGD_MESSAGE_DEPLOY_STARTED, BGD_MESSAGE_SLOT_READY, BGD_MESSAGE_SLOT_FAILED,
  BGD_MESSAGE_CUTOVER_PREPARED, BGD_MESSAGE_CUTOVER_COMMITTED, BGD_MESSAGE_CUTOVER_ABORTED,
  BGD_MESSAGE_CUTOVER_DONE, BGD_MESSAGE_ROLLBACK_STARTED, NULL,
};

/* data/bluegreen.catalog: one entry per documented id, each a "-- <32
 * hex>" header followed by Subject:, Defined-By: and Documentation: lines
 * (journalctl's catalog syntax); and journalctl itself accepts it. */
static void
check_catalog (Fixture *f)
{
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  g_autofree char *path = g_build_filename (srcdir, "data", "bluegreen.catalog", NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GHashTable) ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GError) error = NULL;
  char *current = NULL;
  gboolean subject = FALSE, defined_by = FALSE, documentation = FALSE;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0;; i++)
    {
      const char *l = lines[i];

      if (l == NULL || g_str_has_prefix (l, "-- "))
        {
          if (current != NULL)
            {
              g_test_message ("catalog entry %s: Subject %d Defined-By %d Documentation %d", current, subject,
                              defined_by, documentation);
              g_assert_true (subject && defined_by && documentation);
            }
          if (l == NULL)
            break;
          g_assert_cmpuint (strlen (l), ==, 3 + 32);
          for (guint k = 3; k < 35; k++)
            g_assert_true (g_ascii_isxdigit (l[k]) && !g_ascii_isupper (l[k]));
          current = g_strdup (l + 3);
          g_assert_true (g_hash_table_add (ids, current));
          subject = defined_by = documentation = FALSE;
          continue;
        }
      if (current == NULL)
        {
          g_assert_true (*l == '\0' || *l == '#');
          continue;
        }
      subject |= g_str_has_prefix (l, "Subject: ");
      defined_by |= g_str_has_prefix (l, "Defined-By: ");
      documentation |= g_str_has_prefix (l, "Documentation: ");
    }
  g_assert_cmpuint (g_hash_table_size (ids), ==, g_strv_length ((char **) documented_ids));
  for (guint i = 0; documented_ids[i] != NULL; i++)
    g_assert_true (g_hash_table_contains (ids, documented_ids[i]));

  if (g_find_program_in_path ("journalctl") != NULL)
    {
      g_autofree char *root = g_build_filename (f->dir, "catalog-root", NULL);
      g_autofree char *catdir = g_build_filename (root, "usr", "lib", "systemd", "catalog", NULL);
      g_autofree char *copy = g_build_filename (catdir, "bluegreen.catalog", NULL);
      g_autofree char *out = NULL, *err = NULL;
      int status = -1;

      g_assert_cmpint (g_mkdir_with_parents (catdir, 0755), ==, 0);
      write_file (copy, text, 0644);
      {
        const char *argv[] = { "journalctl", "--root", root, "--update-catalog", NULL };
        bgt_run (argv, NULL, WAIT_MS, &out, &err, &status, &error);
        g_assert_no_error (error);
        g_assert_cmpint (status, ==, 0);
      }
      g_clear_pointer (&out, g_free);
      {
        const char *argv[] = { "journalctl", "--root", root, "--list-catalog", NULL };
        bgt_run (argv, NULL, WAIT_MS, &out, &err, &status, &error);
        g_assert_no_error (error);
        g_assert_cmpint (status, ==, 0);
      }
      for (guint i = 0; documented_ids[i] != NULL; i++)
        g_assert_nonnull (strstr (out, documented_ids[i]));
    }
}

static void
test_journal (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) description = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *rollback_id = NULL;
  guint about_job = 0;

  if (f->host == NULL)
    return;
  check_catalog (f);

  deploy (f, "v1", TRUE);
  {
    const char *fields[] = { "MESSAGE_ID", BGD_MESSAGE_DEPLOY_STARTED, "BLUEGREEN_JOB", JOB, "BLUEGREEN_COLOR", "blue",
                             "BLUEGREEN_VERSION", "v1", "PRIORITY", "5", NULL };
    wait_record (f, fields);
  }
  /* The unit says who it is (systemctl status). */
  wait_slot_string (f, "blue", "State", "running");
  description = unit_prop (f, "blue", "org.freedesktop.systemd1.Unit", "Description");
  g_assert_cmpstr (g_variant_get_string (description, NULL), ==, "bluegreen " JOB " blue (version v1)");

  produce (f, 200);
  deploy (f, "v2", FALSE);
  {
    const char *fields[] = { "MESSAGE_ID", BGD_MESSAGE_DEPLOY_STARTED, "BLUEGREEN_JOB", JOB, "BLUEGREEN_COLOR", "green",
                             "BLUEGREEN_VERSION", "v2", NULL };
    wait_record (f, fields);
  }
  {
    const char *fields[] = { "MESSAGE_ID", BGD_MESSAGE_SLOT_READY, "BLUEGREEN_JOB", JOB, "BLUEGREEN_COLOR", "green",
                             "BLUEGREEN_VERSION", "v2", NULL };
    wait_record (f, fields);
  }
  wait_slot_ready (f, "green");

  reply = call (f, JOB_PATH, JOB_IFACE, "Cutover", g_variant_new ("(a{sv})", NULL), "(s)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(s)", &id);
  g_test_message ("cutover %s", id);
  {
    const char *prepared[] = { "MESSAGE_ID", BGD_MESSAGE_CUTOVER_PREPARED, "BLUEGREEN_JOB", JOB,
                               "BLUEGREEN_CUTOVER", id, NULL };
    const char *committed[] = { "MESSAGE_ID", BGD_MESSAGE_CUTOVER_COMMITTED, "BLUEGREEN_JOB", JOB,
                                "BLUEGREEN_CUTOVER", id, "BLUEGREEN_COLOR", "green", "BLUEGREEN_VERSION", "v2", NULL };
    const char *done[] = { "MESSAGE_ID", BGD_MESSAGE_CUTOVER_DONE, "BLUEGREEN_JOB", JOB, "BLUEGREEN_CUTOVER", id, NULL };
    wait_record (f, prepared);
    wait_record (f, committed);
    wait_record (f, done);
  }

  /* Back to v1, still running blackholed in the observation window. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (f, JOB_PATH, JOB_IFACE, "Rollback", g_variant_new ("(a{sv})", NULL), "(s)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(s)", &rollback_id);
  {
    const char *started[] = { "MESSAGE_ID", BGD_MESSAGE_ROLLBACK_STARTED, "BLUEGREEN_JOB", JOB,
                              "BLUEGREEN_CUTOVER", rollback_id, "BLUEGREEN_COLOR", "blue", "BLUEGREEN_VERSION", "v1",
                              NULL };
    const char *done[] = { "MESSAGE_ID", BGD_MESSAGE_CUTOVER_DONE, "BLUEGREEN_JOB", JOB, "BLUEGREEN_CUTOVER",
                           rollback_id, "BLUEGREEN_COLOR", "blue", NULL };
    wait_record (f, started);
    wait_record (f, done);
  }

  /* Every line about the job names it, in the field and the message. */
  records = read_fields (f);
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *o = records->pdata[i];
      const char *job = json_object_get_string_member_with_default (o, "BLUEGREEN_JOB", NULL);
      const char *message = json_object_get_string_member_with_default (o, "MESSAGE", "");

      g_assert_nonnull (json_object_get_string_member_with_default (o, "PRIORITY", NULL));
      if (job == NULL)
        continue;
      about_job++;
      g_assert_cmpstr (job, ==, JOB);
      g_assert_true (g_str_has_prefix (message, JOB ": "));
    }
  g_test_message ("%u of %u records are about the job", about_job, records->len);
  g_assert_cmpuint (about_job, >=, 10);
}

/* ---- [capacity] ------------------------------------------------------------------------ */

static void
test_capacity (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *remote = NULL;

  if (f->host == NULL)
    return;
  deploy (f, "v1", TRUE);
  wait_slot_string (f, "blue", "State", "running");
  /* Live from the start: the full weight and the limits. */
  g_assert_cmpuint (unit_u64 (f, "blue", "CPUWeight"), ==, CPU_WEIGHT);
  g_assert_cmpuint (unit_u64 (f, "blue", "MemoryMax"), ==, MEMORY_MAX);
  g_assert_cmpuint (unit_u64 (f, "blue", "TasksMax"), ==, TASKS_MAX);

  /* A candidate catches up with the lower weight. */
  deploy (f, "v2", FALSE);
  wait_slot_string (f, "green", "State", "running");
  g_assert_cmpuint (unit_u64 (f, "green", "CPUWeight"), ==, CATCH_UP_WEIGHT);
  g_assert_cmpuint (unit_u64 (f, "green", "MemoryMax"), ==, MEMORY_MAX);
  g_assert_cmpuint (unit_u64 (f, "green", "TasksMax"), ==, TASKS_MAX);
  {
    g_autoptr(GVariant) slice = unit_prop (f, "green", "org.freedesktop.systemd1.Service", "Slice");
    g_assert_cmpstr (g_variant_get_string (slice, NULL), ==, "bluegreen.slice");
  }

  /* Live: raised at runtime; the old live one is lowered. */
  set_sink_mode (f, "green", "live");
  wait_unit_u64 (f, "green", "CPUWeight", CPU_WEIGHT);
  wait_unit_u64 (f, "blue", "CPUWeight", CATCH_UP_WEIGHT);
  {
    g_autoptr(GVariant) state = unit_prop (f, "green", "org.freedesktop.systemd1.Unit", "ActiveState");
    g_assert_cmpstr (g_variant_get_string (state, NULL), ==, "active");
  }

  /* A host with 100 MiB available cannot take a slot reserving 256 MiB. */
  set_mem_available (f, 100 * 1024);
  reply = deploy_full (f, "v3", FALSE, FALSE, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_test_message ("%s: %s", remote, error->message);
  g_assert_cmpstr (remote, ==, "org.bluegreen.Error.NoResources");
  g_assert_nonnull (strstr (error->message, "host has 100 MiB available, the slot reserves 256 MiB (MemoryMax=)"));
  /* Nothing was touched: blue still runs v1. */
  {
    g_autofree char *path = slot_path ("blue");
    g_autoptr(GVariant) v = get_prop (f, path, SLOT_IFACE, "Version");
    g_assert_cmpstr (g_variant_get_string (v, NULL), ==, "v1");
  }
  g_clear_error (&error);
  reply = deploy_full (f, "v3", FALSE, TRUE, &error);
  g_assert_no_error (error);
  wait_slot_string (f, "blue", "Version", "v3");
  wait_slot_string (f, "blue", "State", "running");
  g_assert_cmpuint (unit_u64 (f, "blue", "CPUWeight"), ==, CATCH_UP_WEIGHT);
}

/* ---- [guard] ------------------------------------------------------------------------ */

typedef struct {
  const char *path;
} FileWait;

static gboolean
file_exists (gpointer data)
{
  FileWait *w = data;
  return g_file_test (w->path, G_FILE_TEST_EXISTS);
}

static void
test_guard (Fixture *f, gconstpointer data)
{
  g_autofree char *schema = g_build_filename (f->schema_dir, "out.schema.json", NULL);
  g_autofree char *environ_path = NULL;
  g_autofree char *environ_text = NULL;
  gsize environ_len = 0;
  g_autoptr(GError) error = NULL;
  FileWait w = { schema };
  guint pid;

  if (f->host == NULL)
    return;
  /* The first deploy, blackholed. */
  deploy (f, "v1", FALSE);
  wait_slot_string (f, "blue", "State", "running");
  produce (f, 300);
  wait_caught_up (f, "blue");
  {
    /* The job has applied its steering (blackhole) and processed every
     * record: had it been allowed to, it would have registered by now. */
    g_autofree char *path = slot_path ("blue");
    g_autoptr(GVariant) gen = get_prop (f, path, SLOT_IFACE, "Generation");
    g_autoptr(GVariant) applied = get_prop (f, path, SLOT_IFACE, "AppliedGeneration");
    g_assert_cmpuint (g_variant_get_uint64 (applied), ==, g_variant_get_uint64 (gen));
  }
  g_assert_false (g_file_test (schema, G_FILE_TEST_EXISTS));

  /* The override environment, in the unit and in the process. */
  g_assert_true (unit_env_has (f, "blue", "EXAMPLE_GUARDED=1"));
  g_assert_true (unit_env_has (f, "blue", "SCHEMA_REGISTRY_URL=http://192.0.2.1:9/"));
  pid = bgt_unit_main_pid (f->host, "bluegreen-" JOB "-blue.service", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pid, >, 0);
  environ_path = g_strdup_printf ("/proc/%u/environ", pid);
  g_file_get_contents (environ_path, &environ_text, &environ_len, &error);
  g_assert_no_error (error);
  {
    gboolean found = FALSE;
    for (gsize at = 0; at < environ_len; at += strlen (environ_text + at) + 1)
      found |= g_str_equal (environ_text + at, "EXAMPLE_GUARDED=1");
    g_assert_true (found);
  }

  /* IPAddressDeny= while not live (whether the kernel enforces it depends
   * on systemd's BPF firewall support on the host; the unit carries it). */
  {
    g_autoptr(GVariant) deny = unit_prop (f, "blue", "org.freedesktop.systemd1.Service", "IPAddressDeny");
    g_autofree char *text = g_variant_print (deny, TRUE);
    g_test_message ("IPAddressDeny while blackholed: %s", text);
    g_assert_cmpuint (g_variant_n_children (deny), ==, 1);
  }

  /* Live: the job registers its schema; the agent lifts IPAddressDeny at
   * runtime; the environment guard stays until a restart. */
  set_sink_mode (f, "blue", "live");
  if (!bgt_wait_until (file_exists, &w, WAIT_MS))
    g_test_message ("%s never appeared", schema);
  g_assert_true (file_exists (&w));
  {
    DenyWait dw = { f, "blue", FALSE };
    g_assert_true (bgt_wait_until (deny_is, &dw, WAIT_MS));
  }
  g_assert_true (unit_env_has (f, "blue", "EXAMPLE_GUARDED=1"));
  {
    g_autofree char *text = NULL;
    g_file_get_contents (schema, &text, NULL, &error);
    g_assert_no_error (error);
    g_test_message ("schema: %s", text);
    g_assert_nonnull (strstr (text, "\"version\":\"v1\""));
  }

  /* Back to blackhole: the guard comes back at runtime too. */
  set_sink_mode (f, "blue", "blackhole");
  {
    DenyWait dw = { f, "blue", TRUE };
    g_assert_true (bgt_wait_until (deny_is, &dw, WAIT_MS));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/ops/metrics", Fixture, NULL, fixture_setup, test_metrics, fixture_teardown);
  g_test_add ("/ops/[metrics-access]", Fixture, NULL, fixture_setup, test_metrics_access, fixture_teardown);
  g_test_add ("/ops/journal", Fixture, NULL, fixture_setup, test_journal, fixture_teardown);
  g_test_add ("/ops/capacity", Fixture, NULL, fixture_setup, test_capacity, fixture_teardown);
  g_test_add ("/ops/guard", Fixture, NULL, fixture_setup, test_guard, fixture_teardown);
  return g_test_run ();
}
