/* fleet.c — see fleet.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fleet.h"

#include "common/watermarks.h"

#include <glib/gstdio.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 5000
/* Property reads while an agent may be stopped (SIGSTOP): short. */
#define GET_TIMEOUT_MS 1000
#define START_TIMEOUT_MS 30000

struct _BgtFleet {
  BgtFleetOptions opts;
  char *dir;
  BgtKafka *kafka;          /* the mock, or */
  BgtRealKafka *real;       /* a real cluster */
  gboolean owns_real;
  const char *bootstrap;
  char *input, *output, *control; /* topic names */
  GPtrArray *hosts;     /* BgtHost* */
  GPtrArray *host_ids;  /* char* */
  GPtrArray *state_dirs;
  GSubprocess *loadgen;
  char *loadgen_out;
  GPtrArray *loads;     /* BgtLoad*, from bgt_fleet_load_new() */
  GPtrArray *finished;  /* BgtFinished* */
  GArray *subscriptions; /* guint per host */
  rd_kafka_t *rk;       /* producer: control-topic writes and watermarks */
  rd_kafka_t *consumer; /* control-topic reader, created on first use */
  gint64 control_next;  /* the offset it reads next (-1: unknown) */
  GPtrArray *kept_logs;  /* agent logs of hosts before their reboot */
  guint reboots;
};

static const char job_script[] =
  "#!/bin/sh\n"
  "# The fleet's job: the example job, or for a version listed in\n"
  "# CRASH_VERSIONS the same killed after a short while (a job that crashes\n"
  "# while catching up).\n"
  "job=\"$FLEET_JOB_BIN\"\n"
  "for v in $CRASH_VERSIONS; do\n"
  "  if [ \"$v\" = \"$1\" ]; then\n"
  "    exec timeout -s KILL 1.5 \"$job\" --version=\"$1\" --input=\"$FLEET_INPUT\" --output=\"$FLEET_OUTPUT\" --status-interval=0.1 $FLEET_JOB_ARGS\n"
  "  fi\n"
  "done\n"
  "exec \"$job\" --version=\"$1\" --input=\"$FLEET_INPUT\" --output=\"$FLEET_OUTPUT\" --status-interval=0.1 $FLEET_JOB_ARGS\n";

void
bgt_fleet_options_init (BgtFleetOptions *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->n_hosts = 3;
  opts->partitions = 6;
  opts->heartbeat_sec = 0.2;
  opts->deadline_sec = 2;
  opts->observation_sec = 0;
  opts->lead_sec = 0;
  opts->max_lag = 2000;
  opts->stable_sec = 0.3;
}

static gboolean
write_file (const char *path, const char *contents, int mode, GError **error)
{
  if (!g_file_set_contents (path, contents, -1, error))
    return FALSE;
  if (g_chmod (path, mode) != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "chmod %s failed", path);
      return FALSE;
    }
  return TRUE;
}

guint bgt_fleet_n_hosts (BgtFleet *fleet) { return fleet->hosts->len; }
BgtHost *bgt_fleet_host (BgtFleet *fleet, guint i) { return g_ptr_array_index (fleet->hosts, i); }
const char *bgt_fleet_host_id (BgtFleet *fleet, guint i) { return g_ptr_array_index (fleet->host_ids, i); }
const char *bgt_fleet_state_dir (BgtFleet *fleet, guint i) { return g_ptr_array_index (fleet->state_dirs, i); }
const char *bgt_fleet_bootstrap (BgtFleet *fleet) { return fleet->bootstrap; }
BgtKafka *bgt_fleet_kafka (BgtFleet *fleet) { return fleet->kafka; }
BgtRealKafka *bgt_fleet_real_kafka (BgtFleet *fleet) { return fleet->real; }
const char *bgt_fleet_input_topic (BgtFleet *fleet) { return fleet->input; }
const char *bgt_fleet_output_topic (BgtFleet *fleet) { return fleet->output; }
const char *bgt_fleet_control_topic (BgtFleet *fleet) { return fleet->control; }

static gboolean
in_mask (guint64 mask, guint i)
{
  return mask == 0 || (i < 64 && (mask & (G_GUINT64_CONSTANT (1) << i)) != 0);
}

/* ---- CutoverFinished ------------------------------------------------------ */

typedef struct {
  BgtFleet *fleet;
  guint host;
} SignalCtx;

static void
finished_free (gpointer p)
{
  BgtFinished *f = p;
  g_free (f->id);
  g_free (f->host);
  g_free (f->result);
  g_free (f->reason);
  g_free (f);
}

static void
on_cutover_finished (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                     const char *signal, GVariant *params, gpointer user_data)
{
  SignalCtx *ctx = user_data;
  BgtFinished *f = g_new0 (BgtFinished, 1);

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sss)")))
    {
      g_free (f);
      return;
    }
  g_variant_get (params, "(sss)", &f->id, &f->result, &f->reason);
  f->host = g_strdup (bgt_fleet_host_id (ctx->fleet, ctx->host));
  f->at = g_get_monotonic_time ();
  g_test_message ("CutoverFinished on %s: %s %s %s", f->host, f->id, f->result, f->reason);
  g_ptr_array_add (ctx->fleet->finished, f);
}

GPtrArray *
bgt_fleet_finished_for (BgtFleet *fleet, const char *id)
{
  GPtrArray *out = g_ptr_array_new ();

  for (guint i = 0; i < fleet->finished->len; i++)
    {
      BgtFinished *f = g_ptr_array_index (fleet->finished, i);
      if (g_strcmp0 (f->id, id) == 0)
        g_ptr_array_add (out, f);
    }
  return out;
}

typedef struct {
  BgtFleet *fleet;
  const char *id;
  guint64 mask;
} FinishedWait;

static gboolean
all_finished (gpointer data)
{
  FinishedWait *w = data;

  for (guint i = 0; i < w->fleet->hosts->len; i++)
    {
      gboolean seen = FALSE;
      if (!in_mask (w->mask, i))
        continue;
      for (guint k = 0; k < w->fleet->finished->len && !seen; k++)
        {
          BgtFinished *f = g_ptr_array_index (w->fleet->finished, k);
          seen = g_strcmp0 (f->id, w->id) == 0
                 && g_strcmp0 (f->host, bgt_fleet_host_id (w->fleet, i)) == 0;
        }
      if (!seen)
        return FALSE;
    }
  return TRUE;
}

char *
bgt_fleet_wait_finished (BgtFleet *fleet, const char *id, guint64 mask, int timeout_ms)
{
  FinishedWait w = { fleet, id, mask };
  g_autoptr (GPtrArray) seen = NULL;
  const char *result = NULL;

  if (!bgt_wait_until (all_finished, &w, timeout_ms))
    {
      g_test_message ("CutoverFinished(%s) not seen from every host within %d ms", id, timeout_ms);
      return NULL;
    }
  seen = bgt_fleet_finished_for (fleet, id);
  for (guint i = 0; i < seen->len; i++)
    {
      BgtFinished *f = g_ptr_array_index (seen, i);
      if (result == NULL)
        result = f->result;
      else if (g_strcmp0 (result, f->result) != 0)
        return g_strdup ("split");
    }
  return g_strdup (result);
}

/* ---- set-up and teardown ------------------------------------------------------ */

static void load_free (gpointer p);

static gboolean
host_exec_ok (BgtHost *host, const char *const *argv, GError **error)
{
  g_autofree char *out = NULL;
  int status = -1;

  if (!bgt_host_exec (host, argv, &out, &status, error))
    return FALSE;
  if (status != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "host %s: %s %s failed (%d): %s", host->name,
                   argv[0], argv[1] ? argv[1] : "", status, out ? out : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
configure_host (BgtFleet *fleet, guint i, BgtHost *host, gboolean reboot, GError **error)
{
  const BgtFleetOptions *o = &fleet->opts;
  const char *id = bgt_fleet_host_id (fleet, i);
  g_autofree char *hdir = g_build_filename (fleet->dir, id, NULL);
  g_autofree char *state = g_build_filename (hdir, "state", NULL);
  g_autofree char *jobs = g_build_filename (hdir, "jobs", NULL);
  g_autofree char *conf_path = g_build_filename (hdir, "bluegreend.conf", NULL);
  g_autofree char *job_path = g_build_filename (jobs, BGT_FLEET_JOB ".job", NULL);
  g_autofree char *script = g_build_filename (fleet->dir, "job.sh", NULL);
  g_autofree char *job_bin = bgt_build_path ("bluegreen-example-job");
  g_autofree char *conf = NULL;
  g_autoptr (GString) job = g_string_new (NULL);
  g_autofree char *env = NULL;
  char num[G_ASCII_DTOSTR_BUF_SIZE];
  const char *builddir = g_getenv ("BG_TOP_BUILDDIR");
  const char *srcdir = g_getenv ("BG_TOP_SRCDIR");
  g_autofree char *unit = g_build_filename (builddir, "units", "test", "bluegreend.service", NULL);
  g_autofree char *slice = g_build_filename (srcdir ? srcdir : builddir, "units", "bluegreen.slice", NULL);

  if (g_mkdir_with_parents (state, 0700) != 0 || g_mkdir_with_parents (jobs, 0755) != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "cannot create %s", hdir);
      return FALSE;
    }
  if (!reboot)
    g_ptr_array_add (fleet->state_dirs, g_strdup (state));
  conf = g_strdup_printf ("[Agent]\nHostId=%s\nBus=session\nStateDirectory=%s\nJobsDirectory=%s\n"
                          "HeartbeatSec=%s\n[Kafka]\nBootstrapServers=%s\nControlTopic=%s\n%s",
                          id, state, jobs, g_ascii_dtostr (num, sizeof num, o->heartbeat_sec),
                          fleet->bootstrap, fleet->control,
                          /* The mock holds empty fetches for the whole wait;
                           * a real broker answers as soon as data arrives. */
                          fleet->real == NULL ? "[Kafka.Properties]\nfetch.wait.max.ms=10\n" : "");
  if (!write_file (conf_path, conf, 0644, error))
    return FALSE;

  g_string_append_printf (job, "[Job]\nExecStart=%s %%v\nInputTopics=%s:%u\nOutputTopics=%s\n",
                          script, fleet->input, o->partitions, fleet->output);
  /* On a shared real cluster, consumer groups of this fleet's own. */
  if (fleet->real != NULL)
    g_string_append_printf (job, "ConsumerGroup=%s-%%j-%%c\n", fleet->input);
  g_string_append_printf (job, "Environment=FLEET_JOB_BIN=%s;FLEET_INPUT=%s;FLEET_OUTPUT=%s", job_bin,
                          fleet->input, fleet->output);
  /* The example job waits 10 ms at most on a fetch, for the mock, which
   * holds empty fetches that long; a real broker answers as soon as data
   * arrives, and six jobs fetching 100 times a second from each node eat
   * the JVMs' share of 2 cores. Its 5 ms linger makes batches of one or
   * two records, each replicated to 3 nodes: on a loaded machine the
   * nodes acknowledged a fraction of them (see bgt_fleet_load_start()). */
  if (i < G_N_ELEMENTS (o->crash_versions) && o->crash_versions[i] != NULL)
    g_string_append_printf (job, ";CRASH_VERSIONS=%s", o->crash_versions[i]);
  /* One FLEET_JOB_ARGS (systemd keeps the last assignment of a variable). */
  if (fleet->real != NULL || o->job_args != NULL || o->transactional)
    g_string_append_printf (job, ";FLEET_JOB_ARGS=%s%s%s",
                            fleet->real != NULL ? "--property=fetch.wait.max.ms=500 --property=linger.ms=20 " : "",
                            o->transactional ? "--transactional " : "",
                            o->job_args != NULL ? o->job_args : "");
  if (o->job_settings != NULL)
    g_string_append_printf (job, "\n%s", o->job_settings);
  g_string_append_printf (job, "\n[Readiness]\nMaxLag=%" G_GINT64_FORMAT "\n", o->max_lag);
  g_string_append_printf (job, "StableSec=%s\n", g_ascii_dtostr (num, sizeof num, o->stable_sec));
  if (o->health_command != NULL)
    g_string_append_printf (job, "HealthCommand=%s\n", o->health_command);
  g_string_append_printf (job, "[Cutover]\nObservationSec=%s\n",
                          g_ascii_dtostr (num, sizeof num, o->observation_sec));
  g_string_append_printf (job, "DeadlineSec=%s\n", g_ascii_dtostr (num, sizeof num, o->deadline_sec));
  if (o->lead_sec > 0)
    g_string_append_printf (job, "LeadFactor=%s\n", g_ascii_dtostr (num, sizeof num, o->lead_sec));
  {
    g_autofree char *binds = bgt_sandbox_bind_paths (fleet->dir);
    g_string_append_printf (job, "[Sandbox]\nBindPaths=%s\n%s", binds, o->sandbox ? o->sandbox : "");
  }
  if (!write_file (job_path, job->str, 0644, error))
    return FALSE;
  if (o->extra_job != NULL)
    {
      g_autofree char *name = g_strconcat (o->extra_job, ".job", NULL);
      g_autofree char *extra_path = g_build_filename (jobs, name, NULL);
      g_autofree char *extra = g_strdup_printf ("[Job]\nExecStart=/bin/true\nInputTopics=%s\n", fleet->input);
      if (!write_file (extra_path, extra, 0644, error))
        return FALSE;
    }

  {
    const char *files[] = { unit, slice, NULL };
    if (!bgt_host_install_units (host, files, error))
      return FALSE;
  }
  env = g_strdup_printf ("BLUEGREEN_TEST_CONFIG=%s", conf_path);
  {
    const char *argv[] = { "systemctl", "--user", "set-environment", env,
                           "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1",
                           "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", NULL };
    if (!host_exec_ok (host, argv, error))
      return FALSE;
  }
  if (i < 64 && (o->late_hosts & (G_GUINT64_CONSTANT (1) << i)) != 0)
    return TRUE;
  {
    /* --no-block: the agents start in parallel; we wait for their names. */
    const char *argv[] = { "systemctl", "--user", "start", "--no-block", "bluegreend.service", NULL };
    return host_exec_ok (host, argv, error);
  }
}

static rd_kafka_t *
new_producer (const char *bootstrap, GError **error)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_t *rk;

  if (rd_kafka_conf_set (conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set (conf, "acks", "all", errstr, sizeof errstr) != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set (conf, "linger.ms", "0", errstr, sizeof errstr) != RD_KAFKA_CONF_OK
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

static gboolean
wants_real_kafka (const BgtFleetOptions *opts)
{
  const char *kind = opts->kafka != NULL ? opts->kafka : g_getenv ("BG_TEST_KAFKA");
  return g_strcmp0 (kind, "real") == 0;
}

/* The mock with the fleet's topics, or the fleet's topics on a real
 * cluster (started here unless the options give one). */
static gboolean
start_kafka (BgtFleet *fleet, guint n, GError **error)
{
  const BgtFleetOptions *opts = &fleet->opts;

  if (!wants_real_kafka (opts))
    {
      g_autofree char *topic_in = g_strdup_printf ("%s:%u", BGT_FLEET_INPUT, opts->partitions);
      g_autofree char *topic_out = g_strdup_printf ("%s:%u", BGT_FLEET_OUTPUT, opts->partitions);
      const char *topics[] = { topic_in, topic_out, BGT_FLEET_CONTROL ":1", NULL };

      fleet->input = g_strdup (BGT_FLEET_INPUT);
      fleet->output = g_strdup (BGT_FLEET_OUTPUT);
      fleet->control = g_strdup (BGT_FLEET_CONTROL);
      fleet->kafka = bgt_kafka_start (3, topics, fleet->dir, error);
      if (fleet->kafka == NULL)
        return FALSE;
      fleet->bootstrap = fleet->kafka->bootstrap;
      return TRUE;
    }
  if (opts->real_kafka != NULL)
    fleet->real = opts->real_kafka;
  else
    {
      g_autofree char *kdir = g_build_filename (fleet->dir, "kafka", NULL);
      fleet->real = bgt_real_kafka_start (3, kdir, error);
      if (fleet->real == NULL)
        return FALSE;
      fleet->owns_real = TRUE;
      if (!bgt_real_kafka_warm_up (fleet->real, 20000, error))
        return FALSE;
    }
  fleet->bootstrap = fleet->real->bootstrap;
  /* Names no earlier fleet of this program used on the same cluster. */
  fleet->input = g_strdup_printf ("f%u-%d-in", n, (int) getpid ());
  fleet->output = g_strdup_printf ("f%u-%d-out", n, (int) getpid ());
  fleet->control = g_strdup_printf ("f%u-%d-control", n, (int) getpid ());
  {
    const char *control_configs[] = { "cleanup.policy", "delete", "min.insync.replicas",
                                      fleet->real->n_nodes >= 3 ? "2" : "1", NULL };
    if (!bgt_real_kafka_create_topic (fleet->real, fleet->input, (int) opts->partitions, NULL, error)
        || !bgt_real_kafka_create_topic (fleet->real, fleet->output, (int) opts->partitions, NULL, error)
        || !bgt_real_kafka_create_topic (fleet->real, fleet->control, 1, control_configs, error))
      return FALSE;
  }
  return TRUE;
}

static guint
subscribe_finished (BgtFleet *fleet, guint i)
{
  SignalCtx *ctx = g_new0 (SignalCtx, 1);

  ctx->fleet = fleet;
  ctx->host = i;
  return g_dbus_connection_signal_subscribe (bgt_fleet_host (fleet, i)->bus, NULL, BGT_JOB_IFACE, "CutoverFinished",
                                             BGT_FLEET_JOB_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                             on_cutover_finished, ctx, g_free);
}

BgtFleet *
bgt_fleet_new (const BgtFleetOptions *opts, GError **error)
{
  static guint n = 0;
  const char *tmp = g_getenv ("BG_TEST_TMPDIR");
  g_autoptr (BgtFleet) fleet = g_new0 (BgtFleet, 1);
  gint64 t0 = g_get_monotonic_time ();
  guint fleet_no = n++;

  fleet->opts = *opts;
  fleet->dir = g_strdup_printf ("%s/fleet-%u-%d", tmp ? tmp : g_get_tmp_dir (), fleet_no, (int) getpid ());
  fleet->hosts = g_ptr_array_new_with_free_func ((GDestroyNotify) bgt_host_free);
  fleet->host_ids = g_ptr_array_new_with_free_func (g_free);
  fleet->state_dirs = g_ptr_array_new_with_free_func (g_free);
  fleet->finished = g_ptr_array_new_with_free_func (finished_free);
  fleet->subscriptions = g_array_new (FALSE, TRUE, sizeof (guint));
  fleet->loads = g_ptr_array_new_with_free_func (load_free);
  fleet->control_next = -1;
  fleet->kept_logs = g_ptr_array_new_with_free_func (g_free);
  if (g_mkdir_with_parents (fleet->dir, 0755) != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "cannot create %s", fleet->dir);
      return NULL;
    }
  {
    g_autofree char *script = g_build_filename (fleet->dir, "job.sh", NULL);
    if (!write_file (script, job_script, 0755, error))
      return NULL;
  }

  if (!start_kafka (fleet, fleet_no, error))
    return NULL;
  fleet->rk = new_producer (fleet->bootstrap, error);
  if (fleet->rk == NULL)
    return NULL;

  for (guint i = 0; i < opts->n_hosts; i++)
    {
      /* Host ids a, b, c, ...; the bg-host names carry our pid so
       * concurrent test programs do not collide. */
      g_autofree char *id = g_strdup_printf ("%c", 'a' + i);
      g_autofree char *name = g_strdup_printf ("cut%d-%s", (int) getpid (), id);
      BgtHost *host;

      g_ptr_array_add (fleet->host_ids, g_strdup (id));
      host = bgt_host_start (name, error);
      if (host == NULL)
        return NULL;
      g_ptr_array_add (fleet->hosts, host);
      if (!configure_host (fleet, i, host, FALSE, error))
        return NULL;
    }
  for (guint i = 0; i < opts->n_hosts; i++)
    {
      guint sub = subscribe_finished (fleet, i);
      g_array_append_val (fleet->subscriptions, sub);
    }
  for (guint i = 0; i < opts->n_hosts; i++)
    if (!(i < 64 && (opts->late_hosts & (G_GUINT64_CONSTANT (1) << i)) != 0)
        && !bgt_wait_bus_name (bgt_fleet_host (fleet, i)->bus, BGT_AGENT_NAME, START_TIMEOUT_MS))
      {
        g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "the agent of host %s did not start",
                     bgt_fleet_host_id (fleet, i));
        bgt_fleet_dump_logs (fleet);
        return NULL;
      }
  /* Slots are started and steered only once an agent has replayed the
   * control log. */
  if (!bgt_fleet_wait_string (fleet, G_MAXUINT64 & ~opts->late_hosts, "/org/bluegreen/Agent1", "org.bluegreen.Agent1",
                              "ControlLog", "following", START_TIMEOUT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "the agents did not finish replaying the control log");
      bgt_fleet_dump_logs (fleet);
      return NULL;
    }
  g_test_message ("fleet: %u hosts with agents up in %" G_GINT64_FORMAT " ms", opts->n_hosts,
                  (g_get_monotonic_time () - t0) / 1000);
  return g_steal_pointer (&fleet);
}

gboolean
bgt_fleet_reboot_host (BgtFleet *fleet, guint i, gboolean power_cut, GError **error)
{
  BgtHost *old = bgt_fleet_host (fleet, i);
  g_autofree char *name = g_strdup (old->name);
  g_autofree char *old_logs = g_build_filename (old->dir, "logs", NULL);
  g_autofree char *kept_logs = NULL;
  BgtHost *host;
  gint64 t0 = g_get_monotonic_time ();

  g_dbus_connection_signal_unsubscribe (old->bus, g_array_index (fleet->subscriptions, guint, i));
  g_array_index (fleet->subscriptions, guint, i) = 0;
  if (power_cut && !bgt_host_power_cut (old, error))
    return FALSE;
  if (!bgt_host_stop (old, TRUE, error))
    return FALSE;
  /* The host's directory is made anew at start: keep the agent's log of
   * this boot for a failed test's dump. */
  kept_logs = g_strdup_printf ("%s/%s/agent-logs-boot%u", fleet->dir, bgt_fleet_host_id (fleet, i),
                               fleet->reboots++);
  if (g_rename (old_logs, kept_logs) == 0)
    g_ptr_array_add (fleet->kept_logs, g_strdup (kept_logs));

  host = bgt_host_start (name, error);
  if (host == NULL)
    return FALSE;
  fleet->hosts->pdata[i] = host;
  bgt_host_free (old);
  if (!configure_host (fleet, i, host, TRUE, error))
    return FALSE;
  g_array_index (fleet->subscriptions, guint, i) = subscribe_finished (fleet, i);
  if (!bgt_wait_bus_name (host->bus, BGT_AGENT_NAME, START_TIMEOUT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "the agent of host %s did not start after the reboot",
                   bgt_fleet_host_id (fleet, i));
      return FALSE;
    }
  if (!bgt_fleet_wait_string (fleet, G_GUINT64_CONSTANT (1) << i, "/org/bluegreen/Agent1", "org.bluegreen.Agent1",
                              "ControlLog", "following", START_TIMEOUT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "the agent of host %s did not replay the control log",
                   bgt_fleet_host_id (fleet, i));
      return FALSE;
    }
  g_test_message ("fleet: host %s rebooted (%s) in %" G_GINT64_FORMAT " ms", bgt_fleet_host_id (fleet, i),
                  power_cut ? "power cut" : "clean stop", (g_get_monotonic_time () - t0) / 1000);
  return TRUE;
}

static void
dump_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = NULL;
      g_auto (GStrv) lines = NULL;
      guint n, first;

      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      lines = g_strsplit (text, "\n", -1);
      n = g_strv_length (lines);
      /* The tail is what matters; a long job log would drown the rest. */
      first = n > 300 ? n - 300 : 0;
      g_test_message ("---- %s (%u lines%s)", path, n, first ? ", last 300" : "");
      for (guint i = first; i < n; i++)
        g_test_message ("%s", lines[i]);
    }
}

void
bgt_fleet_dump_logs (BgtFleet *fleet)
{
  for (guint i = 0; i < fleet->hosts->len; i++)
    {
      BgtHost *host = bgt_fleet_host (fleet, i);
      g_autofree char *agent_logs = g_build_filename (host->dir, "logs", NULL);
      g_autofree char *job_logs = g_build_filename (g_ptr_array_index (fleet->state_dirs, i), "logs", NULL);

      g_test_message ("==== host %s", bgt_fleet_host_id (fleet, i));
      dump_dir (agent_logs);
      dump_dir (job_logs);
    }
  for (guint i = 0; i < fleet->kept_logs->len; i++)
    {
      g_test_message ("==== before a reboot: %s", (const char *) g_ptr_array_index (fleet->kept_logs, i));
      dump_dir (g_ptr_array_index (fleet->kept_logs, i));
    }
  if (fleet->kafka != NULL && fleet->kafka->log_path != NULL)
    {
      g_autofree char *text = NULL;
      if (g_file_get_contents (fleet->kafka->log_path, &text, NULL, NULL))
        g_test_message ("---- kafka mock: %s", text);
    }
  if (fleet->real != NULL)
    g_test_message ("---- real Kafka: the nodes' logs are in %s/node*/kafka.log", fleet->real->dir);
}

void
bgt_fleet_free (BgtFleet *fleet)
{
  if (fleet == NULL)
    return;
  /* Bounded, as in a test (see there). */
  bgt_fleet_load_stop (fleet, NULL);
  g_clear_pointer (&fleet->loads, g_ptr_array_unref);
  if (g_test_failed () && fleet->hosts != NULL)
    {
      /* SIGCONT first: a stopped agent would hold its host's stop. */
      for (guint i = 0; i < fleet->hosts->len; i++)
        bgt_fleet_signal_agent (fleet, i, SIGCONT);
      bgt_fleet_dump_logs (fleet);
    }
  for (guint i = 0; fleet->subscriptions != NULL && i < fleet->subscriptions->len; i++)
    if (g_array_index (fleet->subscriptions, guint, i) != 0)
      g_dbus_connection_signal_unsubscribe (bgt_fleet_host (fleet, i)->bus,
                                          g_array_index (fleet->subscriptions, guint, i));
  if (fleet->hosts != NULL)
    {
      for (guint i = 0; i < fleet->hosts->len; i++)
        bgt_fleet_signal_agent (fleet, i, SIGCONT);
      for (guint i = 0; i < fleet->hosts->len; i++)
        {
          g_autoptr (GError) error = NULL;
          if (!bgt_host_stop (bgt_fleet_host (fleet, i), FALSE, &error))
            g_test_message ("stopping host %s: %s", bgt_fleet_host_id (fleet, i), error->message);
        }
    }
  g_clear_pointer (&fleet->hosts, g_ptr_array_unref);
  /* Our clients first: with the brokers gone they would only complain. */
  if (fleet->consumer != NULL)
    rd_kafka_consumer_close (fleet->consumer);
  g_clear_pointer (&fleet->consumer, rd_kafka_destroy);
  g_clear_pointer (&fleet->rk, rd_kafka_destroy);
  g_clear_pointer (&fleet->kafka, bgt_kafka_free);
  if (fleet->owns_real)
    g_clear_pointer (&fleet->real, bgt_real_kafka_free);
  g_clear_pointer (&fleet->input, g_free);
  g_clear_pointer (&fleet->output, g_free);
  g_clear_pointer (&fleet->control, g_free);
  g_clear_pointer (&fleet->host_ids, g_ptr_array_unref);
  g_clear_pointer (&fleet->state_dirs, g_ptr_array_unref);
  g_clear_pointer (&fleet->finished, g_ptr_array_unref);
  g_clear_pointer (&fleet->subscriptions, g_array_unref);
  g_clear_pointer (&fleet->kept_logs, g_ptr_array_unref);
  g_free (fleet->loadgen_out);
  g_free (fleet->dir);
  g_free (fleet);
}

/* ---- D-Bus ----------------------------------------------------------------- */

GVariant *
bgt_fleet_call (BgtFleet *fleet, guint i, const char *path, const char *iface, const char *method,
                GVariant *args, const char *reply_type, int timeout_ms, GError **error)
{
  return g_dbus_connection_call_sync (bgt_fleet_host (fleet, i)->bus, BGT_AGENT_NAME, path, iface,
                                      method, args, reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NONE,
                                      timeout_ms > 0 ? timeout_ms : CALL_TIMEOUT_MS, NULL, error);
}

GVariant *
bgt_fleet_get (BgtFleet *fleet, guint i, const char *path, const char *iface, const char *prop)
{
  g_autoptr (GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = bgt_fleet_call (fleet, i, path, "org.freedesktop.DBus.Properties", "Get",
                          g_variant_new ("(ss)", iface, prop), "(v)", GET_TIMEOUT_MS, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return value;
}

char *
bgt_fleet_get_string (BgtFleet *fleet, guint i, const char *path, const char *iface, const char *prop)
{
  g_autoptr (GVariant) v = bgt_fleet_get (fleet, i, path, iface, prop);

  if (v == NULL || !g_variant_is_of_type (v, G_VARIANT_TYPE_STRING))
    return NULL;
  return g_variant_dup_string (v, NULL);
}

char *
bgt_fleet_slot_path (const char *color)
{
  return g_strdup_printf ("%s/%s", BGT_FLEET_JOB_PATH, color);
}

typedef struct {
  BgtFleet *fleet;
  guint64 mask;
  const char *path, *iface, *prop, *want;
} StringWait;

static gboolean
strings_are (gpointer data)
{
  StringWait *w = data;

  for (guint i = 0; i < w->fleet->hosts->len; i++)
    {
      g_autofree char *v = NULL;
      if (!in_mask (w->mask, i))
        continue;
      v = bgt_fleet_get_string (w->fleet, i, w->path, w->iface, w->prop);
      if (g_strcmp0 (v, w->want) != 0)
        return FALSE;
    }
  return TRUE;
}

gboolean
bgt_fleet_wait_string (BgtFleet *fleet, guint64 mask, const char *path, const char *iface,
                       const char *prop, const char *want, int timeout_ms)
{
  StringWait w = { fleet, mask, path, iface, prop, want };

  if (bgt_wait_until (strings_are, &w, timeout_ms))
    return TRUE;
  for (guint i = 0; i < fleet->hosts->len; i++)
    if (in_mask (mask, i))
      {
        g_autofree char *v = bgt_fleet_get_string (fleet, i, path, iface, prop);
        g_test_message ("host %s: %s %s is '%s', waited %d ms for '%s'", bgt_fleet_host_id (fleet, i),
                        path, prop, v ? v : "(no answer)", timeout_ms, want);
      }
  return FALSE;
}

typedef struct {
  BgtFleet *fleet;
  guint64 mask;
  char *path;
} ReadyWait;

static gboolean
all_ready (gpointer data)
{
  ReadyWait *w = data;

  for (guint i = 0; i < w->fleet->hosts->len; i++)
    {
      g_autoptr (GVariant) v = NULL;
      if (!in_mask (w->mask, i))
        continue;
      v = bgt_fleet_get (w->fleet, i, w->path, BGT_SLOT_IFACE, "Ready");
      if (v == NULL || !g_variant_get_boolean (v))
        return FALSE;
    }
  return TRUE;
}

gboolean
bgt_fleet_wait_ready (BgtFleet *fleet, guint64 mask, const char *color, int timeout_ms)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  ReadyWait w = { fleet, mask, path };

  if (bgt_wait_until (all_ready, &w, timeout_ms))
    return TRUE;
  for (guint i = 0; i < fleet->hosts->len; i++)
    if (in_mask (mask, i))
      {
        g_autoptr (GVariant) lag = bgt_fleet_get (fleet, i, path, BGT_SLOT_IFACE, "Lag");
        g_autofree char *state = bgt_fleet_get_string (fleet, i, path, BGT_SLOT_IFACE, "State");
        g_autoptr (GVariant) pos = bgt_fleet_get (fleet, i, path, BGT_SLOT_IFACE, "Positions");
        g_autofree char *pos_text = pos ? g_variant_print (pos, FALSE) : g_strdup ("?");
        g_test_message ("host %s: %s not Ready after %d ms: State %s, Lag %" G_GINT64_FORMAT ", Positions %s",
                        bgt_fleet_host_id (fleet, i), color, timeout_ms, state ? state : "?",
                        lag ? g_variant_get_int64 (lag) : -2, pos_text);
      }
  return FALSE;
}

typedef struct {
  guint pending;
  GPtrArray *errors;
} DeployWait;

static void
on_deployed (GObject *source, GAsyncResult *res, gpointer user_data)
{
  DeployWait *w = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);

  if (reply == NULL)
    g_ptr_array_add (w->errors, g_strdup (error->message));
  w->pending--;
}

static gboolean
deploys_done (gpointer data)
{
  return ((DeployWait *) data)->pending == 0;
}

gboolean
bgt_fleet_deploy (BgtFleet *fleet, guint64 mask, const char *version, gboolean live, GError **error)
{
  DeployWait w = { 0, g_ptr_array_new_with_free_func (g_free) };
  gboolean ok;

  for (guint i = 0; i < fleet->hosts->len; i++)
    {
      GVariantBuilder opts;
      if (!in_mask (mask, i))
        continue;
      g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
      if (live)
        g_variant_builder_add (&opts, "{sv}", "live", g_variant_new_boolean (TRUE));
      w.pending++;
      g_dbus_connection_call (bgt_fleet_host (fleet, i)->bus, BGT_AGENT_NAME, BGT_FLEET_JOB_PATH,
                              BGT_JOB_IFACE, "Deploy", g_variant_new ("(sa{sv})", version, &opts),
                              G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, START_TIMEOUT_MS, NULL,
                              on_deployed, &w);
    }
  /* The calls time out on their own; wait for every reply. */
  while (w.pending > 0)
    bgt_wait_until (deploys_done, &w, START_TIMEOUT_MS);
  ok = w.errors->len == 0;
  if (!ok)
    {
      g_autofree char *all = NULL;
      g_ptr_array_add (w.errors, NULL);
      all = g_strjoinv ("; ", (char **) w.errors->pdata);
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "Deploy %s: %s", version, all);
    }
  g_ptr_array_unref (w.errors);
  return ok;
}

static gboolean
fleet_never (gpointer data)
{
  return FALSE;
}

char *
bgt_fleet_cutover (BgtFleet *fleet, guint i, gboolean rollback, guint deadline_ms, guint lead_ms,
                   GError **error)
{
  GVariantBuilder opts;
  g_autoptr (GVariant) reply = NULL;
  char *id = NULL;

  g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
  if (deadline_ms > 0)
    g_variant_builder_add (&opts, "{sv}", "deadline_ms", g_variant_new_uint32 (deadline_ms));
  if (lead_ms > 0)
    g_variant_builder_add (&opts, "{sv}", "lead_ms", g_variant_new_uint32 (lead_ms));
  /* The coordinator knows the other hosts' readiness from their hellos,
   * up to a heartbeat (and the control topic's round trip) after their
   * own Ready property, which is what the caller waited for: NotReady
   * right after that is the fleet's view catching up, so ask again for a
   * few heartbeats. A slot that stays unready is still refused. */
  g_autoptr (GVariant) args = g_variant_ref_sink (g_variant_new ("(a{sv})", &opts));
  for (gint64 end = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;;)
    {
      g_autoptr (GError) local = NULL;
      g_autofree char *remote = NULL;

      reply = bgt_fleet_call (fleet, i, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, rollback ? "Rollback" : "Cutover",
                              g_variant_ref (args), "(s)", CALL_TIMEOUT_MS, &local);
      if (reply != NULL)
        break;
      remote = g_dbus_error_get_remote_error (local);
      if (g_strcmp0 (remote, "org.bluegreen.Error.NotReady") != 0 || g_get_monotonic_time () > end)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      g_test_message ("%s on %s: %s; asking again", rollback ? "Rollback" : "Cutover",
                      bgt_fleet_host_id (fleet, i), local->message);
      /* Pacing the retries, not a synchronisation: keeps dispatching. */
      bgt_wait_until (fleet_never, NULL, 50);
    }
  g_variant_get (reply, "(s)", &id);
  g_test_message ("%s on %s: id %s", rollback ? "Rollback" : "Cutover", bgt_fleet_host_id (fleet, i), id);
  return id;
}

void
bgt_cutover_info_clear (BgtCutoverInfo *info)
{
  g_clear_pointer (&info->id, g_free);
  g_clear_pointer (&info->outgoing, g_free);
  g_clear_pointer (&info->incoming, g_free);
  g_clear_pointer (&info->result, g_free);
  g_clear_pointer (&info->reason, g_free);
  g_clear_pointer (&info->barriers, g_array_unref);
}

gboolean
bgt_fleet_last_cutover (BgtFleet *fleet, guint i, BgtCutoverInfo *out)
{
  g_autoptr (GVariant) v = bgt_fleet_get (fleet, i, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "LastCutover");
  g_autoptr (GVariantIter) iter = NULL;
  const char *topic;
  gint32 partition;
  gint64 offset;

  memset (out, 0, sizeof *out);
  if (v == NULL || !g_variant_is_of_type (v, G_VARIANT_TYPE ("(ssssstta(six))")))
    return FALSE;
  g_variant_get (v, "(ssssstta(six))", &out->id, &out->outgoing, &out->incoming, &out->result,
                 &out->reason, &out->started_us, &out->duration_us, &iter);
  out->barriers = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint p = 0; p < fleet->opts.partitions; p++)
    {
      gint64 none = -1;
      g_array_append_val (out->barriers, none);
    }
  while (g_variant_iter_next (iter, "(&six)", &topic, &partition, &offset))
    if (g_strcmp0 (topic, fleet->input) == 0 && partition >= 0
        && (guint) partition < fleet->opts.partitions)
      g_array_index (out->barriers, gint64, partition) = offset;
  return TRUE;
}

char *
bgt_fleet_jobs_dir (BgtFleet *fleet, guint i)
{
  return g_build_filename (fleet->dir, bgt_fleet_host_id (fleet, i), "jobs", NULL);
}

/* ---- processes ----------------------------------------------------------- */

guint32
bgt_fleet_agent_pid (BgtFleet *fleet, guint i)
{
  g_autoptr (GError) error = NULL;
  guint32 pid = bgt_unit_main_pid (bgt_fleet_host (fleet, i), "bluegreend.service", &error);

  return error != NULL ? 0 : pid;
}

guint32
bgt_fleet_signal_agent (BgtFleet *fleet, guint i, int sig)
{
  guint32 pid = bgt_fleet_agent_pid (fleet, i);

  if (pid > 0)
    kill ((pid_t) pid, sig);
  return pid;
}

typedef struct {
  BgtFleet *fleet;
  guint i;
  guint32 old_pid;
} RestartWait;

static gboolean
restarted (gpointer data)
{
  RestartWait *w = data;
  guint32 pid = bgt_fleet_agent_pid (w->fleet, w->i);
  g_autoptr (GVariant) v = NULL;

  if (pid == 0 || pid == w->old_pid)
    return FALSE;
  /* Answers on the bus again, and has replayed the control log. */
  v = bgt_fleet_get (w->fleet, w->i, "/org/bluegreen/Agent1", "org.bluegreen.Agent1", "ControlLog");
  return v != NULL && g_strcmp0 (g_variant_get_string (v, NULL), "following") == 0;
}

gboolean
bgt_fleet_wait_agent_restarted (BgtFleet *fleet, guint i, guint32 old_pid, int timeout_ms)
{
  RestartWait w = { fleet, i, old_pid };
  return bgt_wait_until (restarted, &w, timeout_ms);
}

gboolean
bgt_fleet_systemctl (BgtFleet *fleet, guint i, const char *verb, const char *unit, GError **error)
{
  const char *argv[] = { "systemctl", "--user", verb, unit, NULL };
  return host_exec_ok (bgt_fleet_host (fleet, i), argv, error);
}

/* ---- load, control topic, verifier ---------------------------------------- */

/* The load generator dies with the test: a test that aborts (a failed
 * assertion) never tears its fleet down, and an orphaned generator keeps
 * producing to its bootstrap ports, which a later fleet's Kafka mock may
 * get again (seen: a later test's input grew by another test's load and
 * its verifier never settled). */
static void
die_with_parent (gpointer data)
{
  /* SIGKILL: on SIGTERM it would flush to brokers that are gone. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

gboolean
bgt_fleet_load_start (BgtFleet *fleet, guint rate, GError **error)
{
  g_autofree char *loadgen = bgt_build_path ("bluegreen-loadgen");
  g_autofree char *rate_s = g_strdup_printf ("%u", rate);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autofree char *out = g_build_filename (fleet->dir, "loadgen.out", NULL);
  g_autofree char *err = g_build_filename (fleet->dir, "loadgen.err", NULL);

  if (loadgen == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-loadgen is not built");
      return FALSE;
    }
  g_subprocess_launcher_set_stdout_file_path (launcher, out);
  g_subprocess_launcher_set_stderr_file_path (launcher, err);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  {
    /* On a real cluster the load (the world outside the fleet) is
     * acknowledged by the leader alone: a broker serves one request of a
     * connection at a time, and with acks=all each of the loadgen's small
     * batches waits for both followers, which on a loaded 2-core machine
     * with niced nodes took so long that 3 nodes delivered 729 of 3000
     * records in 20 s (acks=1: all of them in 10 s). The jobs' output
     * stays acks=all. */
    const char *argv[] = { loadgen, "-b", fleet->bootstrap, "-t", fleet->input, "-k", "300",
                           "-r", rate_s, "-q", fleet->real != NULL ? "--property=acks=1" : NULL,
                           "--property=linger.ms=20", NULL };
    fleet->loadgen = g_subprocess_launcher_spawnv (launcher, argv, error);
  }
  fleet->loadgen_out = g_steal_pointer (&out);
  return fleet->loadgen != NULL;
}

#define LOADGEN_EXIT_MS 30000

/* @data: gboolean[2], [0] set here, [1] set by a waiter that gave up. */
static void
loadgen_exited (GObject *source, GAsyncResult *res, gpointer data)
{
  gboolean *flags = data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), res, NULL);
  flags[0] = TRUE;
  if (flags[1])
    g_free (flags);
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

gint64
bgt_fleet_load_stop (BgtFleet *fleet, GError **error)
{
  g_autofree char *text = NULL;
  const char *p;
  gint64 n = -1;

  /* Freed by whoever is last: the wait below, or the callback if it came
   * after the wait gave up. */
  gboolean *exited;

  if (fleet->loadgen == NULL)
    return 0;
  exited = g_new0 (gboolean, 2);
  g_subprocess_wait_async (fleet->loadgen, NULL, loadgen_exited, exited);
  g_subprocess_send_signal (fleet->loadgen, SIGTERM);
  /* Its final flush is bounded (10 s), but not what librdkafka does after
   * it: a producer whose broker was killed once hung in rd_kafka_destroy()
   * and the test with it until the harness's timeout. Bounded here, and
   * said. */
  if (!bgt_wait_until (flag_set, exited, LOADGEN_EXIT_MS))
    {
      g_subprocess_force_exit (fleet->loadgen);
      bgt_wait_until (flag_set, exited, LOADGEN_EXIT_MS);
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "bluegreen-loadgen did not exit within %d s of SIGTERM; killed",
                   LOADGEN_EXIT_MS / 1000);
    }
  else if (!g_subprocess_get_if_exited (fleet->loadgen) || g_subprocess_get_exit_status (fleet->loadgen) != 0)
    g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-loadgen failed (%s)",
                 g_subprocess_get_if_exited (fleet->loadgen) ? "exit status not 0" : "killed by a signal");
  if (exited[0])
    g_free (exited);
  else
    exited[1] = TRUE; /* the callback frees it */
  g_clear_object (&fleet->loadgen);
  if (error != NULL && *error != NULL)
    {
      if (g_file_get_contents (fleet->loadgen_out, &text, NULL, NULL))
        g_test_message ("load: %s", g_strstrip (text));
      return -1;
    }
  if (g_file_get_contents (fleet->loadgen_out, &text, NULL, NULL)
      && (p = strstr (text, "produced ")) != NULL)
    n = g_ascii_strtoll (p + strlen ("produced "), NULL, 10);
  g_test_message ("load: %s", text ? g_strstrip (text) : "(no output)");
  if (n < 0)
    g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "loadgen printed no count");
  return n;
}

struct _BgtLoad {
  GSubprocess *proc;
  char *name;     /* "loadgen-N", its files in the fleet's directory */
  char *out_path;
  gboolean exited;
  gboolean ok;    /* exit status 0 */
  gboolean stopping;   /* we sent SIGTERM */
  gboolean terminated; /* SIGTERM killed it: before it set up its handler */
};

static gboolean
load_has_exited (gpointer data)
{
  return ((BgtLoad *) data)->exited;
}

static void
load_free (gpointer p)
{
  BgtLoad *load = p;

  /* Until its wait callback ran, which points at @load. */
  if (load->proc != NULL && !load->exited)
    {
      g_subprocess_send_signal (load->proc, SIGTERM);
      if (!bgt_wait_until (load_has_exited, load, 30000))
        {
          g_subprocess_force_exit (load->proc);
          bgt_wait_until (load_has_exited, load, 30000);
        }
    }
  g_clear_object (&load->proc);
  g_free (load->name);
  g_free (load->out_path);
  g_free (load);
}

static void
load_exited (GObject *source, GAsyncResult *res, gpointer data)
{
  BgtLoad *load = data;

  GSubprocess *proc = G_SUBPROCESS (source);

  /* The fleet keeps the load alive until this ran (load_free waits). */
  if (g_subprocess_wait_finish (proc, res, NULL))
    {
      load->ok = g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 0;
      load->terminated = g_subprocess_get_if_signaled (proc) && g_subprocess_get_term_sig (proc) == SIGTERM;
    }
  load->exited = TRUE;
}

BgtLoad *
bgt_fleet_load_new (BgtFleet *fleet, const BgtLoadOptions *opts, GError **error)
{
  g_autofree char *loadgen = bgt_build_path ("bluegreen-loadgen");
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *err = NULL;
  char num[G_ASCII_DTOSTR_BUF_SIZE];
  BgtLoad *load;

  if (loadgen == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-loadgen is not built");
      return NULL;
    }
  load = g_new0 (BgtLoad, 1);
  load->name = g_strdup_printf ("loadgen-%u", fleet->loads->len + 1);
  load->out_path = g_strdup_printf ("%s/%s.out", fleet->dir, load->name);
  err = g_strdup_printf ("%s/%s.err", fleet->dir, load->name);
  g_ptr_array_add (argv, g_steal_pointer (&loadgen));
  g_ptr_array_add (argv, g_strdup_printf ("--bootstrap=%s", fleet->bootstrap));
  g_ptr_array_add (argv, g_strdup_printf ("--topic=%s", fleet->input));
  g_ptr_array_add (argv, g_strdup_printf ("--keys=%u", opts->keys > 0 ? opts->keys : 300));
  g_ptr_array_add (argv, g_strdup_printf ("--rate=%s", g_ascii_dtostr (num, sizeof num, opts->rate)));
  g_ptr_array_add (argv, g_strdup_printf ("--count=%" G_GUINT64_FORMAT, opts->count));
  if (opts->partitions != NULL)
    g_ptr_array_add (argv, g_strdup_printf ("--partitions=%s", opts->partitions));
  if (opts->key_prefix != NULL)
    g_ptr_array_add (argv, g_strdup_printf ("--key-prefix=%s", opts->key_prefix));
  /* As the main load on a real cluster (see bgt_fleet_load_start()): with
   * acks=all and 5 ms batches a loaded machine's nodes acknowledged too
   * little for the final flush (316 of 787 records undelivered). */
  if (fleet->real != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("--property=acks=1"));
      g_ptr_array_add (argv, g_strdup ("--property=linger.ms=20"));
    }
  g_ptr_array_add (argv, g_strdup ("--quiet"));
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_stdout_file_path (launcher, load->out_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, err);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  load->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
  if (load->proc == NULL)
    {
      load_free (load);
      return NULL;
    }
  g_subprocess_wait_async (load->proc, NULL, load_exited, load);
  g_ptr_array_add (fleet->loads, load);
  g_test_message ("%s: rate %g/s, count %" G_GUINT64_FORMAT ", partitions %s, keys %s*", load->name, opts->rate,
                  opts->count, opts->partitions ? opts->partitions : "all",
                  opts->key_prefix ? opts->key_prefix : "key-");
  return load;
}

gint64
bgt_load_wait (BgtLoad *load, int timeout_ms, GError **error)
{
  g_autofree char *text = NULL;
  const char *p;
  gint64 n = -1;

  if (!bgt_wait_until (load_has_exited, load, timeout_ms))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "%s did not exit within %d ms", load->name, timeout_ms);
      return -1;
    }
  if (load->stopping && load->terminated)
    {
      /* Stopped so soon after its start that it had not produced yet. */
      g_test_message ("%s: stopped before it started", load->name);
      return 0;
    }
  if (g_file_get_contents (load->out_path, &text, NULL, NULL) && (p = strstr (text, "produced ")) != NULL)
    n = g_ascii_strtoll (p + strlen ("produced "), NULL, 10);
  g_test_message ("%s: %s", load->name, text ? g_strstrip (text) : "(no output)");
  if (!load->ok)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "%s failed (see %s)", load->name, load->out_path);
      return -1;
    }
  if (n < 0)
    g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "%s printed no count", load->name);
  return n;
}

gint64
bgt_load_stop (BgtLoad *load, GError **error)
{
  if (!load->exited)
    {
      load->stopping = TRUE;
      g_subprocess_send_signal (load->proc, SIGTERM);
    }
  return bgt_load_wait (load, 30000, error);
}

/* High watermarks of partitions 0..@n-1 of @topic, with a timeout that
 * holds even while a partition's leader is dead (common/watermarks.h:
 * rd_kafka_query_watermark_offsets() once waited for ever on a killed
 * node). After leaders moved, an idle producer's metadata is stale:
 * refresh it and ask again, for up to 30 s. */
static gboolean
query_high_watermarks (BgtFleet *fleet, const char *topic, guint n, gint64 *high, GError **error)
{
  g_autofree gint32 *ids = g_new (gint32, MAX (n, 1));
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  for (guint p = 0; p < n; p++)
    ids[p] = (gint32) p;
  for (;;)
    {
      g_autoptr (GError) local = NULL;
      rd_kafka_topic_t *rkt;
      const struct rd_kafka_metadata *md = NULL;

      if (bg_watermarks_query (fleet->rk, topic, ids, n, NULL, high, 5000, &local))
        return TRUE;
      if (g_get_monotonic_time () > deadline)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      rkt = rd_kafka_topic_new (fleet->rk, topic, NULL);
      if (rd_kafka_metadata (fleet->rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy (md);
      rd_kafka_topic_destroy (rkt);
      bgt_pause (100);
    }
}

GArray *
bgt_fleet_input_watermarks (BgtFleet *fleet, GError **error)
{
  g_autoptr (GArray) out = g_array_new (FALSE, TRUE, sizeof (gint64));

  g_array_set_size (out, fleet->opts.partitions);
  if (!query_high_watermarks (fleet, fleet->input, fleet->opts.partitions, (gint64 *) (gpointer) out->data, error))
    return NULL;
  return g_steal_pointer (&out);
}

gboolean
bgt_fleet_add_input_partitions (BgtFleet *fleet, guint total, GError **error)
{
  if (fleet->real == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "adding partitions needs a real Kafka cluster");
      return FALSE;
    }
  if (total <= fleet->opts.partitions)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "%s has %u partitions already", fleet->input,
                   fleet->opts.partitions);
      return FALSE;
    }
  if (!bgt_real_kafka_create_partitions (fleet->real, fleet->input, (int) total, error))
    return FALSE;
  fleet->opts.partitions = total;
  return TRUE;
}

gint64
bgt_fleet_committed_offset (BgtFleet *fleet, const char *color, gint32 partition, GError **error)
{
  char errstr[512];
  g_autofree char *group = g_strdup_printf ("%s-" BGT_FLEET_JOB "-%s", fleet->input, color);
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  rd_kafka_topic_partition_list_t *parts;
  rd_kafka_resp_err_t err;
  gint64 offset = -2;

  if (fleet->real == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "committed offsets: real Kafka only");
      return -2;
    }
  conf = rd_kafka_conf_new ();
  if (rd_kafka_conf_set (conf, "bootstrap.servers", fleet->bootstrap, errstr, sizeof errstr) != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set (conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "librdkafka: %s", errstr);
      return -2;
    }
  /* Never subscribes: asks the group's coordinator, does not join. */
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "rd_kafka_new: %s", errstr);
      return -2;
    }
  parts = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (parts, fleet->input, partition);
  err = rd_kafka_committed (rk, parts, 10000);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = parts->elems[0].err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "committed offset of %s on %s [%d]: %s", group,
                 fleet->input, partition, rd_kafka_err2str (err));
  else
    offset = parts->elems[0].offset >= 0 ? parts->elems[0].offset : -1;
  rd_kafka_topic_partition_list_destroy (parts);
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  return offset;
}

gint64
bgt_fleet_control_watermark (BgtFleet *fleet, GError **error)
{
  gint64 hi = -1;

  if (!query_high_watermarks (fleet, fleet->control, 1, &hi, error))
    return -1;
  return hi;
}

gboolean
bgt_fleet_control_produce (BgtFleet *fleet, const void *data, gsize len, GError **error)
{
  rd_kafka_resp_err_t err
    = rd_kafka_producev (fleet->rk, RD_KAFKA_V_TOPIC (fleet->control), RD_KAFKA_V_PARTITION (0),
                         RD_KAFKA_V_VALUE ((void *) data, len), RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY),
                         RD_KAFKA_V_END);

  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = rd_kafka_flush (fleet->rk, 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "producing to %s: %s", fleet->control,
                   rd_kafka_err2str (err));
      return FALSE;
    }
  return TRUE;
}

static gboolean
control_assign (BgtFleet *fleet, gint64 from, GError **error)
{
  char errstr[512];
  rd_kafka_topic_partition_list_t *parts;
  rd_kafka_resp_err_t err;

  if (fleet->consumer == NULL)
    {
      rd_kafka_conf_t *conf = rd_kafka_conf_new ();
      g_autofree char *group = g_strdup_printf ("bgt-fleet-%d", (int) getpid ());
      if (rd_kafka_conf_set (conf, "bootstrap.servers", fleet->bootstrap, errstr, sizeof errstr) != RD_KAFKA_CONF_OK
          || rd_kafka_conf_set (conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK
          || rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK
          || rd_kafka_conf_set (conf, "fetch.wait.max.ms", "1", errstr, sizeof errstr) != RD_KAFKA_CONF_OK
          || rd_kafka_conf_set (conf, "fetch.error.backoff.ms", "5", errstr, sizeof errstr) != RD_KAFKA_CONF_OK
          || rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        {
          rd_kafka_conf_destroy (conf);
          g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "librdkafka: %s", errstr);
          return FALSE;
        }
      fleet->consumer = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
      if (fleet->consumer == NULL)
        {
          g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "rd_kafka_new: %s", errstr);
          return FALSE;
        }
      rd_kafka_poll_set_consumer (fleet->consumer);
    }
  else if (from == fleet->control_next)
    return TRUE; /* reading on from where the last read stopped: no re-assign */
  fleet->control_next = -1;
  parts = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (parts, fleet->control, 0)->offset = from;
  err = rd_kafka_assign (fleet->consumer, parts);
  rd_kafka_topic_partition_list_destroy (parts);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "assign %s: %s", fleet->control, rd_kafka_err2str (err));
      return FALSE;
    }
  return TRUE;
}

GPtrArray *
bgt_fleet_control_read (BgtFleet *fleet, gint64 from, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  gint64 hwm = bgt_fleet_control_watermark (fleet, error);
  gint64 next = from;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  if (hwm < 0 || !control_assign (fleet, from, error))
    return NULL;
  while (next < hwm)
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (fleet->consumer, 10);
      if (g_get_monotonic_time () > deadline)
        {
          if (m != NULL)
            rd_kafka_message_destroy (m);
          g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "reading %s up to %" G_GINT64_FORMAT " timed out at %" G_GINT64_FORMAT,
                       fleet->control, hwm, next);
          return NULL;
        }
      if (m == NULL)
        continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_ptr_array_add (out, g_strndup (m->payload ? m->payload : "", m->len));
          next = fleet->control_next = m->offset + 1;
        }
      rd_kafka_message_destroy (m);
    }
  return g_steal_pointer (&out);
}

static gboolean
has_all (const char *text, const char *const *needles)
{
  for (const char *const *n = needles; *n != NULL; n++)
    if (strstr (text, *n) == NULL)
      return FALSE;
  return TRUE;
}

gint64
bgt_fleet_control_wait (BgtFleet *fleet, gint64 from, const char *const *needles, int timeout_ms)
{
  return bgt_fleet_control_wait_timed (fleet, from, needles, timeout_ms, NULL, NULL);
}

gint64
bgt_fleet_control_wait_timed (BgtFleet *fleet, gint64 from, const char *const *needles, int timeout_ms,
                              gint64 *appeared_at, char **text_out)
{
  g_autoptr (GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  if (!control_assign (fleet, from, &error))
    {
      g_test_message ("%s", error->message);
      return -1;
    }
  while (g_get_monotonic_time () < deadline)
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (fleet->consumer, 2);
      /* Signals (CutoverFinished) keep arriving meanwhile. */
      while (g_main_context_iteration (NULL, FALSE))
        ;
      if (m == NULL)
        continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_autofree char *text = g_strndup (m->payload ? m->payload : "", m->len);
          fleet->control_next = m->offset + 1;
          if (has_all (text, needles))
            {
              if (text_out != NULL)
                *text_out = g_steal_pointer (&text);
              gint64 offset = m->offset;
              if (appeared_at != NULL)
                {
                  gint64 now = g_get_monotonic_time ();
                  rd_kafka_timestamp_type_t type;
                  gint64 ts_ms = rd_kafka_message_timestamp (m, &type);

                  *appeared_at = now;
                  if (ts_ms > 0 && type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
                    *appeared_at = MIN (now, ts_ms * 1000 - (g_get_real_time () - now));
                }
              rd_kafka_message_destroy (m);
              return offset;
            }
        }
      rd_kafka_message_destroy (m);
    }
  g_test_message ("no control message with %s within %d ms", needles[0], timeout_ms);
  return -1;
}

GPtrArray *
bgt_fleet_control_decisions (BgtFleet *fleet, const char *id, GError **error)
{
  g_autoptr (GPtrArray) all = bgt_fleet_control_read (fleet, 0, error);
  g_autofree char *id_needle = g_strdup_printf ("\"id\":\"%s\"", id);
  GPtrArray *out;

  if (all == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < all->len; i++)
    {
      const char *text = g_ptr_array_index (all, i);
      if (strstr (text, id_needle) == NULL)
        continue;
      if (strstr (text, "\"type\":\"commit\"") != NULL)
        g_ptr_array_add (out, g_strdup ("commit"));
      else if (strstr (text, "\"type\":\"abort\"") != NULL)
        g_ptr_array_add (out, g_strdup ("abort"));
    }
  return out;
}

typedef struct {
  BgtFleet *fleet;
  guint64 mask;
  char *path;
  GArray *hwm;
  const char *prop; /* "Positions" or "Delivered" */
} CaughtUpWait;

static gboolean
caught_up (gpointer data)
{
  CaughtUpWait *w = data;
  g_autoptr (GArray) max = g_array_new (FALSE, TRUE, sizeof (gint64));

  g_array_set_size (max, w->fleet->opts.partitions);
  for (guint i = 0; i < w->fleet->hosts->len; i++)
    {
      g_autoptr (GVariant) v = NULL;
      GVariantIter iter;
      const char *topic;
      gint32 p;
      gint64 off;

      if (!in_mask (w->mask, i))
        continue;
      v = bgt_fleet_get (w->fleet, i, w->path, BGT_SLOT_IFACE, w->prop);
      if (v == NULL)
        return FALSE;
      g_variant_iter_init (&iter, v);
      while (g_variant_iter_next (&iter, "(&six)", &topic, &p, &off))
        if (p >= 0 && (guint) p < max->len && off > g_array_index (max, gint64, p))
          g_array_index (max, gint64, p) = off;
    }
  for (guint p = 0; p < max->len; p++)
    if (g_array_index (max, gint64, p) < g_array_index (w->hwm, gint64, p))
      return FALSE;
  return TRUE;
}

gboolean
bgt_fleet_wait_caught_up (BgtFleet *fleet, guint64 mask, const char *color, int timeout_ms)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GArray) hwm = bgt_fleet_input_watermarks (fleet, &error);
  CaughtUpWait w = { fleet, mask, path, hwm, "Positions" };

  if (hwm == NULL)
    {
      g_test_message ("%s", error->message);
      return FALSE;
    }
  return bgt_wait_until (caught_up, &w, timeout_ms);
}

gboolean
bgt_fleet_wait_delivered (BgtFleet *fleet, guint64 mask, const char *color, int timeout_ms)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GArray) hwm = bgt_fleet_input_watermarks (fleet, &error);
  CaughtUpWait w = { fleet, mask, path, hwm, "Delivered" };

  if (hwm == NULL)
    {
      g_test_message ("%s", error->message);
      return FALSE;
    }
  return bgt_wait_until (caught_up, &w, timeout_ms);
}

JsonObject *
bgt_fleet_verify (BgtFleet *fleet, const char *outgoing, const char *incoming, GArray *barriers,
                  int *status, GError **error)
{
  g_autofree char *verify = bgt_build_path ("bluegreen-verify");
  g_autofree char *bfile = g_build_filename (fleet->dir, "barriers", NULL);
  g_autofree char *bopt = NULL;
  g_autofree char *oopt = NULL;
  g_autofree char *iopt = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  int st = -1;

  if (verify == NULL)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "bluegreen-verify is not built");
      return NULL;
    }
  g_ptr_array_add (argv, verify);
  g_ptr_array_add (argv, (gpointer) "-b");
  g_ptr_array_add (argv, (gpointer) fleet->bootstrap);
  g_ptr_array_add (argv, (gpointer) "-i");
  g_ptr_array_add (argv, fleet->input);
  g_ptr_array_add (argv, (gpointer) "-o");
  g_ptr_array_add (argv, fleet->output);
  g_ptr_array_add (argv, (gpointer) "--json");
  g_ptr_array_add (argv, (gpointer) "--strict-order");
  if (fleet->opts.transactional)
    g_ptr_array_add (argv, (gpointer) "--transactional");
  /* Results still in flight when the load stopped: read until the output
   * has not changed for a moment. */
  g_ptr_array_add (argv, (gpointer) "--settle=0.5");
  if (outgoing != NULL)
    {
      oopt = g_strdup_printf ("--outgoing=%s", outgoing);
      iopt = g_strdup_printf ("--incoming=%s", incoming);
      g_ptr_array_add (argv, oopt);
      g_ptr_array_add (argv, iopt);
    }
  if (barriers != NULL)
    {
      g_autoptr (GString) text = g_string_new (NULL);
      for (guint p = 0; p < barriers->len; p++)
        if (g_array_index (barriers, gint64, p) >= 0)
          g_string_append_printf (text, "%u:%" G_GINT64_FORMAT "\n", p, g_array_index (barriers, gint64, p));
      if (!g_file_set_contents (bfile, text->str, -1, error))
        return NULL;
      g_test_message ("expected barriers: %s", text->str);
      bopt = g_strdup_printf ("--barriers-file=%s", bfile);
      g_ptr_array_add (argv, bopt);
    }
  g_ptr_array_add (argv, NULL);
  if (!bgt_run ((const char *const *) argv->pdata, NULL, 120000, &out, &err, &st, error))
    return NULL;
  if (status != NULL)
    *status = st;
  g_test_message ("verifier (exit %d): %s%s", st, out, err ? err : "");
  if (!json_parser_load_from_data (parser, out, -1, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_PROTOCOL, "verifier printed no JSON object");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

gint64
bgt_report_num (JsonObject *report, const char *member)
{
  if (!json_object_has_member (report, member))
    return -1;
  return json_object_get_int_member (report, member);
}

static JsonObject *
partition_of (JsonObject *report, int partition)
{
  JsonArray *parts;

  if (!json_object_has_member (report, "partitions"))
    return NULL;
  parts = json_object_get_array_member (report, "partitions");
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *p = json_array_get_object_element (parts, i);
      if (json_object_get_int_member (p, "partition") == partition)
        return p;
    }
  return NULL;
}

gint64
bgt_report_partition_num (JsonObject *report, int partition, const char *member)
{
  JsonObject *p = partition_of (report, partition);
  return p != NULL && json_object_has_member (p, member) ? json_object_get_int_member (p, member) : -1;
}

static JsonObject *
color_of (JsonObject *report, int partition, const char *color)
{
  JsonArray *parts;

  if (!json_object_has_member (report, "partitions"))
    return NULL;
  parts = json_object_get_array_member (report, "partitions");
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *p = json_array_get_object_element (parts, i);
      JsonObject *colors;
      if (json_object_get_int_member (p, "partition") != partition)
        continue;
      if (!json_object_has_member (p, "colors"))
        return NULL;
      colors = json_object_get_object_member (p, "colors");
      return json_object_has_member (colors, color) ? json_object_get_object_member (colors, color) : NULL;
    }
  return NULL;
}

gint64
bgt_report_color_first (JsonObject *report, int partition, const char *color)
{
  JsonObject *c = color_of (report, partition, color);
  return c != NULL ? json_object_get_int_member (c, "first") : -1;
}

gint64
bgt_report_color_last (JsonObject *report, int partition, const char *color)
{
  JsonObject *c = color_of (report, partition, color);
  return c != NULL ? json_object_get_int_member (c, "last") : -1;
}

void
bgt_report_assert_barriers (JsonObject *report, const char *outgoing, const char *incoming, GArray *barriers)
{
  for (guint p = 0; p < barriers->len; p++)
    {
      gint64 x = g_array_index (barriers, gint64, p);
      gint64 high = bgt_report_partition_num (report, (int) p, "high");
      gint64 first = bgt_report_color_first (report, (int) p, incoming);

      g_test_message ("partition %u: barrier %" G_GINT64_FORMAT ", high %" G_GINT64_FORMAT ", first %s %"
                      G_GINT64_FORMAT ", last %s %" G_GINT64_FORMAT, p, x, high, incoming, first, outgoing,
                      bgt_report_color_last (report, (int) p, outgoing));
      g_assert_cmpint (x, >=, 0);
      g_assert_cmpint (high, >=, x);
      /* A partition may get no record at or after its barrier before the
       * verifier reads it (quiet, or its replicas still catching up). */
      g_assert_cmpint (first, ==, high > x ? x : -1);
      if (x > 0)
        g_assert_cmpint (bgt_report_color_last (report, (int) p, outgoing), ==, x - 1);
    }
}

void
bgt_report_assert_rollback (JsonObject *report, GArray *x1, GArray *x2)
{
  g_assert_cmpuint (x1->len, ==, x2->len);
  for (guint p = 0; p < x1->len; p++)
    {
      gint64 a = g_array_index (x1, gint64, p), b = g_array_index (x2, gint64, p);
      gint64 high = bgt_report_partition_num (report, (int) p, "high");

      g_test_message ("partition %u: X1 %" G_GINT64_FORMAT " X2 %" G_GINT64_FORMAT " high %" G_GINT64_FORMAT
                      ", green [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "], blue last %" G_GINT64_FORMAT,
                      p, a, b, high, bgt_report_color_first (report, (int) p, "green"),
                      bgt_report_color_last (report, (int) p, "green"), bgt_report_color_last (report, (int) p, "blue"));
      g_assert_cmpint (a, >=, 0);
      g_assert_cmpint (b, >=, a);
      g_assert_cmpint (high, >=, b);
      if (b > a)
        {
          g_assert_cmpint (bgt_report_color_first (report, (int) p, "green"), ==, a);
          g_assert_cmpint (bgt_report_color_last (report, (int) p, "green"), ==, b - 1);
        }
      else
        g_assert_cmpint (bgt_report_color_first (report, (int) p, "green"), ==, -1);
      /* Blue's last result: the partition's last record if one came at or
       * after X2, else the one before X1 (-1: none). */
      g_assert_cmpint (bgt_report_color_last (report, (int) p, "blue"), ==, high > b ? high - 1 : a - 1);
    }
}
