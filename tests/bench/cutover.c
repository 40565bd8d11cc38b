/* bench-cutover — the fleet-wide cutover's duration and blue's longest
 * output pause at 1, 3 and 10 agents (tools/bench cutover).
 *
 * Each run builds a fleet (tests/lib/fleet.h) of N simulated hosts with
 * blue v1 live and green v2 Ready under steady load, measures the control
 * topic's produce-to-consume round trip in the same run (the baseline: a
 * cutover needs at least a few of them), then calls Cutover on the first
 * host and times until every host has signalled CutoverFinished "done".
 * The pause is the longest gap between consecutive blue results (by their
 * Kafka timestamps) from the call until blue's last result: how long the
 * outgoing version stood still at its barriers.
 *
 * Prints, one per line: control.roundtrip, cutover.1host, cutover.3hosts,
 * cutover.10hosts, cutover.pause (the longest of the runs), all in ms.
 * Needs root (bg-host). BENCH_HOSTS="1 3" limits the runs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"

#define ROUNDTRIPS 20
#define WAIT_MS 60000

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* Median produce-to-consume time of a marker on the control topic. */
static double
control_roundtrip_ms (BgtFleet *fleet)
{
  double samples[ROUNDTRIPS];
  int n = 0;

  for (int i = 0; i < ROUNDTRIPS; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *marker = g_strdup_printf ("bench-roundtrip-%d-%d", (int) getpid (), i);
      const char *needles[] = { marker, NULL };
      gint64 from = bgt_fleet_control_watermark (fleet, &error);
      gint64 t0 = g_get_monotonic_time ();

      /* Not a control message: agents log it and ignore it. */
      if (from < 0 || !bgt_fleet_control_produce (fleet, marker, strlen (marker), &error))
        continue;
      if (bgt_fleet_control_wait (fleet, from, needles, 10000) < 0)
        continue;
      samples[n++] = (g_get_monotonic_time () - t0) / 1000.0;
    }
  if (n == 0)
    return -1;
  qsort (samples, n, sizeof samples[0], cmp_double);
  return samples[n / 2];
}

static gint
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

/* The longest gap between consecutive blue results with a timestamp in
 * [from_ms, ...], up to blue's last result. */
static double
blue_pause_ms (BgtFleet *fleet, gint64 from_ms)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_t *rk;
  g_autoptr (GArray) stamps = g_array_new (FALSE, FALSE, sizeof (gint64));
  rd_kafka_topic_partition_list_t *parts;
  rd_kafka_metadata_t const *md = NULL;
  int n_parts = 0, eofs = 0;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  double best = 0;

  rd_kafka_conf_set (conf, "bootstrap.servers", bgt_fleet_bootstrap (fleet), errstr, sizeof errstr);
  rd_kafka_conf_set (conf, "group.id", "bench-cutover-pause", errstr, sizeof errstr);
  rd_kafka_conf_set (conf, "enable.partition.eof", "true", errstr, sizeof errstr);
  rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr);
  rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr);
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    return -1;
  rd_kafka_poll_set_consumer (rk);
  if (rd_kafka_metadata (rk, 1, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      for (int t = 0; t < md->topic_cnt; t++)
        if (g_strcmp0 (md->topics[t].topic, BGT_FLEET_OUTPUT) == 0)
          n_parts = md->topics[t].partition_cnt;
      rd_kafka_metadata_destroy (md);
    }
  parts = rd_kafka_topic_partition_list_new (n_parts);
  for (int p = 0; p < n_parts; p++)
    rd_kafka_topic_partition_list_add (parts, BGT_FLEET_OUTPUT, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign (rk, parts);
  rd_kafka_topic_partition_list_destroy (parts);
  while (eofs < n_parts && g_get_monotonic_time () < deadline)
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, 100);
      if (m == NULL)
        continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        eofs++;
      else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->payload != NULL
               && g_strstr_len (m->payload, m->len, "\"color\":\"blue\"") != NULL)
        {
          gint64 ts = rd_kafka_message_timestamp (m, NULL);
          if (ts >= from_ms)
            g_array_append_val (stamps, ts);
        }
      rd_kafka_message_destroy (m);
    }
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  if (stamps->len < 2)
    return -1;
  g_array_sort (stamps, cmp_gint64);
  for (guint i = 1; i < stamps->len; i++)
    {
      double gap = (double) (g_array_index (stamps, gint64, i) - g_array_index (stamps, gint64, i - 1));
      if (gap > best)
        best = gap;
    }
  return best;
}

typedef struct {
  double cutover_ms;
  double pause_ms;
  double roundtrip_ms;
} RunResult;

static gboolean
run (guint n_hosts, RunResult *out, GError **error)
{
  BgtFleetOptions opts;
  g_autoptr (BgtFleet) fleet = NULL;
  g_autofree char *id = NULL;
  g_autofree char *result = NULL;
  gint64 t0, t1, wall0;

  bgt_fleet_options_init (&opts);
  opts.n_hosts = n_hosts;
  /* Ten hosts on two cores: slower heartbeats leave room for the jobs. */
  opts.heartbeat_sec = n_hosts > 3 ? 1 : 0.5;
  opts.deadline_sec = 10;
  /* Every instance of a color group needs a partition of its own: one
   * that holds none has no lag and is never Ready, and the cutover would
   * be refused. */
  opts.partitions = MAX (opts.partitions, n_hosts);
  /* On a real cluster (BG_TEST_KAFKA=real) a control message takes tens
   * of ms from agent to agent: barriers a second of traffic ahead. */
  if (g_strcmp0 (g_getenv ("BG_TEST_KAFKA"), "real") == 0)
    {
      opts.lead_sec = 1;
      /* Hellos through three loaded JVMs arrived up to 1.8 s apart. */
      opts.heartbeat_sec = 1;
    }
  fleet = bgt_fleet_new (&opts, error);
  if (fleet == NULL)
    return FALSE;
  if (!bgt_fleet_deploy (fleet, 0, "v1", TRUE, error))
    return FALSE;
  if (!bgt_fleet_wait_string (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "LiveColor", "blue", WAIT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "blue did not go live");
      return FALSE;
    }
  /* 1000 records/s; at 10 hosts (20 job instances, 10 agents and user
   * managers on the 2 cores measured here) green could not catch up with
   * that and never became Ready: 300/s there. The cutover's duration
   * depends on the lead (time of traffic, not records) and the control
   * round trips, not on the rate. */
  if (!bgt_fleet_load_start (fleet, n_hosts > 3 ? 300 : 1000, error) || !bgt_fleet_deploy (fleet, 0, "v2", FALSE, error))
    return FALSE;
  if (!bgt_fleet_wait_ready (fleet, 0, "green", 120000)
      || !bgt_fleet_wait_string (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Phase", "ready", WAIT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "green did not become Ready on every host");
      return FALSE;
    }
  out->roundtrip_ms = control_roundtrip_ms (fleet);
  /* Steady state: blue's consumer group settled and caught up (with ten
   * members the mock's group rebalanced for seconds after green was
   * Ready, and a cutover then waited for blue to get its partitions back
   * before it could reach its barriers). */
  if (!bgt_fleet_wait_caught_up (fleet, 0, "blue", WAIT_MS))
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_TIMEOUT, "blue did not catch up");
      return FALSE;
    }

  wall0 = g_get_real_time () / 1000;
  t0 = g_get_monotonic_time ();
  id = bgt_fleet_cutover (fleet, 0, FALSE, 0, 0, error);
  if (id == NULL)
    return FALSE;
  result = bgt_fleet_wait_finished (fleet, id, 0, WAIT_MS);
  if (g_strcmp0 (result, "done") != 0)
    {
      g_set_error (error, BGT_ERROR, BGT_ERROR_FAILED, "cutover %s ended %s", id, result ? result : "(timeout)");
      return FALSE;
    }
  /* The last host's signal: when every host was done. */
  {
    g_autoptr (GPtrArray) seen = bgt_fleet_finished_for (fleet, id);
    t1 = t0;
    for (guint i = 0; i < seen->len; i++)
      t1 = MAX (t1, ((BgtFinished *) g_ptr_array_index (seen, i))->at);
  }
  out->cutover_ms = (t1 - t0) / 1000.0;
  bgt_fleet_load_stop (fleet, NULL);
  out->pause_ms = blue_pause_ms (fleet, wall0);
  return TRUE;
}

int
main (int argc, char **argv)
{
  const char *env = g_getenv ("BENCH_HOSTS");
  /* e.g. "real." for the figures on a real cluster (tools/bench realkafka). */
  const char *prefix = g_getenv ("BENCH_PREFIX") ? g_getenv ("BENCH_PREFIX") : "";
  g_auto (GStrv) which = g_strsplit (env ? env : "1 3 10", " ", -1);
  double pause = 0, roundtrip = -1;
  int status = 0;

  g_test_init (&argc, &argv, NULL);
  if (geteuid () != 0)
    {
      g_printerr ("bench-cutover: needs root (bg-host)\n");
      return 77;
    }
  /* tools/bench runs the program as it is: the fleet finds the agent, the
   * example job, bg-host and the verifier through these. */
  if (g_getenv ("BG_TOP_BUILDDIR") == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *dir = self ? g_path_get_dirname (self) : g_get_current_dir ();
      g_setenv ("BG_TOP_BUILDDIR", dir, TRUE);
    }
  if (g_getenv ("BG_TOP_SRCDIR") == NULL)
    g_setenv ("BG_TOP_SRCDIR", BG_BENCH_TOP_SRCDIR, TRUE);
  {
    g_autofree char *path = g_strdup_printf ("%s:%s/tools:%s", g_getenv ("BG_TOP_BUILDDIR"),
                                             g_getenv ("BG_TOP_SRCDIR"), g_getenv ("PATH"));
    g_setenv ("PATH", path, TRUE);
  }
  if (g_getenv ("BG_TEST_TMPDIR") == NULL)
    {
      g_autofree char *tmp = g_dir_make_tmp ("bench-cutover-XXXXXX", NULL);
      g_setenv ("BG_TEST_TMPDIR", tmp, TRUE);
    }
  for (char **w = which; *w != NULL; w++)
    {
      g_autoptr (GError) error = NULL;
      RunResult r = { -1, -1, -1 };
      guint n = (guint) g_ascii_strtoull (*w, NULL, 10);

      if (n == 0)
        continue;
      if (!run (n, &r, &error))
        {
          g_printerr ("bench-cutover: %u hosts: %s\n", n, error->message);
          status = 1;
          continue;
        }
      printf ("%scutover.%u%s %.1f ms\n", prefix, n, n == 1 ? "host" : "hosts", r.cutover_ms);
      fflush (stdout);
      pause = MAX (pause, r.pause_ms);
      if (r.roundtrip_ms > 0 && (roundtrip < 0 || r.roundtrip_ms < roundtrip))
        roundtrip = r.roundtrip_ms;
      g_printerr ("# %u hosts: cutover %.1f ms, blue pause %.1f ms, control round trip %.1f ms\n", n,
                  r.cutover_ms, r.pause_ms, r.roundtrip_ms);
    }
  printf ("%scutover.pause %.1f ms\n", prefix, pause);
  printf ("%scontrol.roundtrip %.1f ms\n", prefix, roundtrip);
  return status;
}
