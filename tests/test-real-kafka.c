/* test-real-kafka.c — the fleet-wide cutover on a real Apache Kafka
 * cluster (3 KRaft nodes started by tools/kafka, one for the whole
 * program; every test gets topics and consumer groups of its own there):
 * three simulated hosts with their agents, the example job in both slots
 * of every host, the load generator, and bluegreen-verify at the end.
 *
 * Tests, all [real-kafka]: a cutover and a rollback under load; kill -9 of
 * the control partition's leader during a cutover; the whole cluster down
 * during a cutover and back; a partition added to the input topic after a
 * cutover (CreatePartitions; every record of it emitted exactly once, by
 * the live color); the control partition's leader paused (SIGSTOP, 8 s)
 * during a cutover, which ends done or aborts and then cuts over again;
 * in transactional mode (the example job's
 * --transactional, exactly-once within a version), a SIGKILLed blue and a
 * SIGKILLed green instance during a cutover, with no within-version
 * duplicate and no order violation either; the agent's control topic
 * check (a missing topic, two partitions, a compacted topic refused with
 * an error naming the topic; weak settings warned about); a watermark
 * query sent to a partition's killed leader keeps its timeout.
 *
 * Faults are real: SIGKILL of a JVM, SIGSTOP and SIGCONT of one, every
 * node killed and restarted on the same ports and data. The real group coordinator rebalances the
 * color groups when they change.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/watermarks.h"
#include "fleet.h"

#define WAIT_MS 60000
#define LOAD_RATE 150
#define A 0
#define B 1
#define C 2
#define MASK(i) (G_GUINT64_CONSTANT (1) << (i))

/* The program's cluster (started in main()). */
static BgtRealKafka *cluster;

typedef struct {
  BgtFleet *fleet;
  BgtFleetOptions opts;
  /* The scenario makes the consumer groups re-read records. */
  gboolean replays;
} Fixture;

typedef void (*OptionsFunc) (BgtFleetOptions *opts);

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  OptionsFunc tweak = (OptionsFunc) data;
  g_autoptr (GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  g_assert_nonnull (cluster);
  bgt_fleet_options_init (&f->opts);
  f->opts.kafka = "real";
  f->opts.real_kafka = cluster;
  /* A control message takes tens of ms from one agent to another through
   * a real cluster (acks=all on 3 replicas), more while the JVMs warm up
   * on 2 busy cores: barriers 0.2 s ahead were passed before every host
   * had armed the plan. The lead is at most half the deadline. */
  f->opts.lead_sec = 1.0;
  f->opts.deadline_sec = 10;
  /* Hellos every second: a host is silent after 3 s without one. At a
   * load average of 30, hellos through the cluster arrived 2-3 s apart
   * (0.6 s and 1.5 s were too short). */
  f->opts.heartbeat_sec = 1;
  if (tweak != NULL)
    tweak (&f->opts);
  f->fleet = bgt_fleet_new (&f->opts, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->fleet, bgt_fleet_free);
}

/* ---- helpers -------------------------------------------------------------- */

static void
wait_slot (Fixture *f, guint64 mask, const char *color, const char *prop, const char *want)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_assert_true (bgt_fleet_wait_string (f->fleet, mask, path, BGT_SLOT_IFACE, prop, want, WAIT_MS));
}

static void
wait_job (Fixture *f, guint64 mask, const char *prop, const char *want)
{
  g_assert_true (bgt_fleet_wait_string (f->fleet, mask, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, prop, want, WAIT_MS));
}

/* Blue v1 live on every host, load running, green v2 deployed and Ready
 * everywhere. */
static void
start_blue_then_green (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_deploy (f->fleet, 0, "v1", TRUE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "blue", "State", "running");
  wait_job (f, 0, "LiveColor", "blue");
  bgt_fleet_load_start (f->fleet, LOAD_RATE, &error);
  g_assert_no_error (error);
  bgt_fleet_deploy (f->fleet, 0, "v2", FALSE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "green", "State", "running");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", 90000));
  wait_job (f, 0, "Phase", "ready");
}

static void
stop_load (Fixture *f, const char *live_color)
{
  g_autoptr (GError) error = NULL;
  gint64 n;

  /* The live version keeps working after the switch. */
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, 0, live_color, WAIT_MS));
  n = bgt_fleet_load_stop (f->fleet, &error);
  if (f->replays && error != NULL)
    /* After an outage the loadgen may still hold a backlog that its
     * bounded final flush does not deliver. The input topic is what the
     * verifier checks against, so a record not delivered is no gap. */
    g_test_message ("load after the outage: %s", error->message);
  else
    {
      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
    }
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, 0, live_color, WAIT_MS));
  /* Admitted is not delivered: after the cluster came back, an instance
   * that took partitions over admitted them to the end at once while its
   * producer still held the results; a verifier run then counted them as
   * gaps (a third of the runs of [cluster down]). */
  g_assert_true (bgt_fleet_wait_delivered (f->fleet, 0, live_color, WAIT_MS));
}

/* The verifier: no gap, no cross-version duplicate, no order violation
 * (beyond the within-version re-reads of a scenario that replays), correct
 * state; with @barriers, @incoming's first result on every partition
 * exactly at the barrier and @outgoing's last just before it. */
static JsonObject *
verify (Fixture *f, const char *outgoing, const char *incoming, GArray *barriers)
{
  g_autoptr (GError) error = NULL;
  int status = -1;
  JsonObject *report = bgt_fleet_verify (f->fleet, outgoing, incoming, barriers, &status, &error);

  g_assert_no_error (error);
  g_assert_nonnull (report);
  g_assert_cmpint (bgt_report_num (report, "inputs"), >, 0);
  g_assert_cmpint (bgt_report_num (report, "gaps"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "cross_duplicates"), ==, 0);
  /* Exactly-once within a version too (the verifier reads
   * read_committed and fails on any duplicate or order violation). */
  if (f->opts.transactional)
    {
      g_assert_cmpint (bgt_report_num (report, "within_duplicates"), ==, 0);
      g_assert_cmpint (bgt_report_num (report, "order_violations"), ==, 0);
    }
  /* Plain (non-transactional) mode is at-least-once within a version: on
   * the real cluster a color's group may rebalance at any time (members
   * joining seconds apart under the sanitizers did, before any cutover:
   * 2 order violations with 11 re-read records), and a re-read record's
   * result comes after newer ones of its key. An order violation without
   * a re-read still fails; across versions, barriers and each color's
   * first and last results are checked below. */
  if (!f->opts.transactional)
    g_assert_cmpint (bgt_report_num (report, "order_violations"), <=,
                     bgt_report_num (report, "within_duplicates"));
  else
    g_assert_cmpint (bgt_report_num (report, "order_violations"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "wrong_state"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "malformed"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "barrier_violations"), ==, 0);
  /* The verifier runs with --strict-order, so it exits 1 exactly when an
   * (allowed, re-read) order violation was seen. */
  g_assert_cmpint (status, ==, !f->opts.transactional && bgt_report_num (report, "order_violations") > 0 ? 1 : 0);
  if (barriers != NULL)
    bgt_report_assert_barriers (report, outgoing, incoming, barriers);
  return report;
}

/* Every host reports @id with @result in LastCutover; their (equal)
 * barriers. */
static GArray *
assert_last_cutover (Fixture *f, const char *id, const char *result)
{
  GArray *barriers = NULL;

  for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
    {
      g_auto (BgtCutoverInfo) info = { 0 };
      g_assert_true (bgt_fleet_last_cutover (f->fleet, i, &info));
      g_test_message ("host %s: LastCutover %s %s->%s %s (%s), %" G_GUINT64_FORMAT " us",
                      bgt_fleet_host_id (f->fleet, i), info.id, info.outgoing, info.incoming, info.result,
                      info.reason, info.duration_us);
      g_assert_cmpstr (info.id, ==, id);
      g_assert_cmpstr (info.result, ==, result);
      if (barriers == NULL)
        barriers = g_array_ref (info.barriers);
      else
        g_assert_cmpmem (barriers->data, barriers->len * sizeof (gint64), info.barriers->data,
                         info.barriers->len * sizeof (gint64));
    }
  return barriers;
}

/* Cutover (or Rollback) on @host. HostSilent is answered again once the
 * silent host's next hello is in (bounded): on a loaded machine a hello
 * can be late right after the fleet started; any other error fails. */
static char *
cutover (Fixture *f, guint host, gboolean rollback)
{
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *remote = NULL;
      char *id = bgt_fleet_cutover (f->fleet, host, rollback, 0, 0, &error);

      if (id != NULL)
        return id;
      remote = g_dbus_error_get_remote_error (error);
      if (g_strcmp0 (remote, "org.bluegreen.Error.HostSilent") != 0 || g_get_monotonic_time () > end)
        g_assert_no_error (error);
      g_test_message ("%s; waiting for its next hello", error->message);
      {
        gint64 mark = bgt_fleet_control_watermark (f->fleet, NULL);
        const char *needles[] = { "\"type\":\"hello\"", NULL };
        bgt_fleet_control_wait (f->fleet, mark, needles, 5000);
      }
    }
}

/* The control log's decisions for @id and its retried attempts ("ID.2",
 * ...) agree with the outcome. Only the first decision for an attempt
 * counts (a commit appended just before the control leader died may land
 * after a participant's deadline abort, and is then ignored by every
 * host): a first decision "commit" for some attempt of a cutover that is
 * done, none for one that aborted. */
static void
assert_decisions (Fixture *f, const char *id, gboolean done)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) all = NULL;
  g_autofree char *exact = g_strdup_printf ("\"id\":\"%s\"", id);
  g_autofree char *attempt = g_strdup_printf ("\"id\":\"%s.", id);
  g_autoptr (GHashTable) first = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint commits = 0, aborts = 0;

  /* Right after a restart of the cluster a node may still answer "not
   * leader" for a moment: read again, bounded. */
  for (gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;;)
    {
      g_clear_error (&error);
      all = bgt_fleet_control_read (f->fleet, 0, &error);
      if (all != NULL || g_get_monotonic_time () > end)
        break;
      g_test_message ("reading the control log: %s; again", error->message);
      bgt_pause (200);
    }
  g_assert_no_error (error);
  for (guint i = 0; i < all->len; i++)
    {
      const char *text = g_ptr_array_index (all, i);
      const char *at = strstr (text, exact) ? strstr (text, exact) : strstr (text, attempt);
      gboolean commit = strstr (text, "\"type\":\"commit\"") != NULL;
      gboolean abort_ = strstr (text, "\"type\":\"abort\"") != NULL;
      const char *end;
      g_autofree char *key = NULL;

      if (at == NULL || (!commit && !abort_))
        continue;
      at += strlen ("\"id\":\"");
      end = strchr (at, '"');
      key = g_strndup (at, end != NULL ? (gsize) (end - at) : strlen (at));
      if (g_hash_table_contains (first, key))
        continue;
      g_hash_table_insert (first, g_steal_pointer (&key), GINT_TO_POINTER (1));
      if (commit)
        commits++;
      else
        aborts++;
    }
  g_test_message ("first decisions for %s and its attempts: %u commit, %u abort", id, commits, aborts);
  if (done)
    g_assert_cmpuint (commits, >=, 1);
  else
    {
      g_assert_cmpuint (commits, ==, 0);
      g_assert_cmpuint (aborts, >=, 1);
    }
}

static gint64
wait_prepare (Fixture *f, const char *id)
{
  g_autofree char *i = g_strdup_printf ("\"id\":\"%s\"", id);
  const char *needles[] = { "\"type\":\"prepare\"", i, NULL };

  return bgt_fleet_control_wait (f->fleet, 0, needles, WAIT_MS);
}

/* A cutover that either committed or aborted: one CutoverFinished per host
 * all agreeing, the log's first decision matching; then the load drains
 * into the live color and the verifier runs. */
static void
finish_either_way (Fixture *f, const char *id)
{
  g_autofree char *result = bgt_fleet_wait_finished (f->fleet, id, 0, 120000);
  g_autoptr (GPtrArray) seen = NULL;
  g_autoptr (JsonObject) report = NULL;
  const char *live;

  g_test_message ("cutover %s: %s", id, result);
  g_assert_true (g_strcmp0 (result, "done") == 0 || g_strcmp0 (result, "aborted") == 0);
  seen = bgt_fleet_finished_for (f->fleet, id);
  g_assert_cmpuint (seen->len, ==, bgt_fleet_n_hosts (f->fleet));
  assert_decisions (f, id, g_strcmp0 (result, "done") == 0);
  live = g_strcmp0 (result, "done") == 0 ? "green" : "blue";
  wait_job (f, 0, "LiveColor", live);
  stop_load (f, live);
  if (g_strcmp0 (result, "done") == 0)
    {
      g_autoptr (GArray) barriers = assert_last_cutover (f, id, "done");
      report = verify (f, "blue", "green", barriers);
    }
  else
    {
      report = verify (f, "blue", "green", NULL);
      for (int p = 0; p < (int) f->opts.partitions; p++)
        g_assert_cmpint (bgt_report_color_first (report, p, "green"), ==, -1);
    }
}

/* ---- [real-kafka] cutover --------------------------------------------------- */

static void
test_cutover (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *result = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;

  start_blue_then_green (f);
  id = cutover (f, A, FALSE);
  result = bgt_fleet_wait_finished (f->fleet, id, 0, WAIT_MS);
  g_assert_cmpstr (result, ==, "done");
  barriers = assert_last_cutover (f, id, "done");
  assert_decisions (f, id, TRUE);
  wait_job (f, 0, "LiveColor", "green");
  wait_slot (f, 0, "blue", "State", "stopped");
  stop_load (f, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [real-kafka] rollback --------------------------------------------------- */

static void
opts_observe (BgtFleetOptions *o)
{
  o->observation_sec = 120;
}

static void
test_rollback (Fixture *f, gconstpointer data)
{
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  g_autofree char *r1 = NULL;
  g_autofree char *r2 = NULL;
  g_autoptr (GArray) x1 = NULL;
  g_autoptr (GArray) x2 = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;

  start_blue_then_green (f);
  id1 = cutover (f, A, FALSE);
  r1 = bgt_fleet_wait_finished (f->fleet, id1, 0, WAIT_MS);
  g_assert_cmpstr (r1, ==, "done");
  x1 = assert_last_cutover (f, id1, "done");
  wait_job (f, 0, "Phase", "observing");
  wait_slot (f, 0, "blue", "State", "running");
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, 0, "green", WAIT_MS));

  /* Back to blue, coordinated from another host. */
  id2 = cutover (f, B, TRUE);
  r2 = bgt_fleet_wait_finished (f->fleet, id2, 0, WAIT_MS);
  g_assert_cmpstr (r2, ==, "done");
  x2 = assert_last_cutover (f, id2, "done");
  wait_job (f, 0, "LiveColor", "blue");
  stop_load (f, "blue");

  /* Green emitted exactly [X1, X2) on every partition, blue the rest. */
  report = verify (f, "blue", "green", NULL);
  bgt_report_assert_rollback (report, x1, x2);
}

/* ---- [real-kafka] control leader killed ------------------------------------- */

/* kill -9 of the node leading the control partition right after the
 * prepare is in the log: the control topic (replication 3,
 * min.insync.replicas=2) elects another leader, the agents' producers and
 * consumers follow it, and the cutover ends the same way on every host. */
static void
test_leader_killed (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  int leader, after;

  if (f->fleet == NULL)
    return;

  start_blue_then_green (f);
  leader = bgt_real_kafka_leader (cluster, bgt_fleet_control_topic (f->fleet), 0, &error);
  g_assert_no_error (error);
  id = cutover (f, A, FALSE);
  g_assert_cmpint (wait_prepare (f, id), >=, 0);
  bgt_real_kafka_node (cluster, "kill", (guint) leader, &error);
  g_assert_no_error (error);
  g_test_message ("killed node %d, the control partition's leader", leader);
  f->replays = TRUE;
  finish_either_way (f, id);
  after = bgt_real_kafka_leader (cluster, bgt_fleet_control_topic (f->fleet), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (after, !=, leader);
  /* The cluster whole again for the next test. */
  bgt_real_kafka_node (cluster, "restart", (guint) leader, &error);
  g_assert_no_error (error);
}

/* ---- [real-kafka] watermarks with the leader killed ------------------------- */

typedef struct {
  rd_kafka_t *rk;
  const char *topic;
  int timeout_ms;
  gboolean returned; /* atomic */
  gboolean ok;
  gint64 high;
  char *error;
} WatermarkQuery;

static gpointer
watermark_query_thread (gpointer data)
{
  WatermarkQuery *q = data;
  g_autoptr (GError) error = NULL;
  gint32 partition = 0;

  q->ok = bg_watermarks_query (q->rk, q->topic, &partition, 1, NULL, &q->high, q->timeout_ms, &error);
  q->error = error != NULL ? g_strdup (error->message) : NULL;
  g_atomic_int_set (&q->returned, TRUE);
  return NULL;
}

static gboolean
watermark_query_returned (gpointer data)
{
  return g_atomic_int_get (&((WatermarkQuery *) data)->returned);
}

/* A watermark query sent while the partition's leader is dead and the
 * handle still knows it as the leader keeps its timeout (librdkafka 2.0's
 * rd_kafka_query_watermark_offsets() retried such a request for as long
 * as the broker states changed: the test harness once waited 900 s on
 * it, and an agent's lag query would never end), and once another node
 * leads, the query answers again. */
static void
test_watermarks_leader_killed (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *topic = g_strdup_printf ("wm-%d", (int) getpid ());
  char errstr[512];
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  gint32 partition = 0;
  gint64 high = -1;
  int leader;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (the cluster runs as root)");
      return;
    }
  g_assert_nonnull (cluster);
  g_assert_true (bgt_real_kafka_create_topic (cluster, topic, 1, NULL, &error));
  g_assert_no_error (error);
  conf = rd_kafka_conf_new ();
  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", cluster->bootstrap, errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  /* The killed node's refused connections are the scenario. */
  g_assert_cmpint (rd_kafka_conf_set (conf, "log_level", "2", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);
  for (int i = 0; i < 10; i++)
    g_assert_cmpint (rd_kafka_producev (rk, RD_KAFKA_V_TOPIC (topic), RD_KAFKA_V_PARTITION (0),
                                        RD_KAFKA_V_VALUE ((void *) "x", 1), RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_END), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  g_assert_cmpint (rd_kafka_flush (rk, 30000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  /* The handle learns the leader (asked again while a node still answers
   * for an older view of the cluster: earlier tests killed and restarted
   * nodes; bounded). */
  {
    gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
    gboolean ok = FALSE;

    while (!ok && g_get_monotonic_time () < end)
      {
        g_clear_error (&error);
        ok = bg_watermarks_query (rk, topic, &partition, 1, NULL, &high, 10000, &error);
        if (!ok)
          g_test_message ("before the kill: %s; again", error->message);
      }
    g_assert_no_error (error);
    g_assert_cmpint (high, ==, 10);
  }

  leader = bgt_real_kafka_leader (cluster, topic, 0, &error);
  g_assert_no_error (error);
  g_assert_true (bgt_real_kafka_node (cluster, "kill", (guint) leader, &error));
  g_assert_no_error (error);
  g_test_message ("killed node %d, the leader of %s [0]", leader, topic);
  {
    WatermarkQuery q = { rk, topic, 3000, FALSE, FALSE, -1, NULL };
    GThread *thread = g_thread_new ("watermarks", watermark_query_thread, &q);
    gint64 start = g_get_monotonic_time ();
    gboolean returned = bgt_wait_until (watermark_query_returned, &q, 20000);

    g_test_message ("query with a 3 s timeout: %s after %" G_GINT64_FORMAT " ms (%s)",
                    returned ? "returned" : "still waiting", (g_get_monotonic_time () - start) / 1000,
                    q.ok ? "answered" : q.error != NULL ? q.error : "-");
    /* A query that never returns cannot be joined: the test fails here. */
    g_assert_true (returned);
    g_thread_join (thread);
    if (q.ok)
      g_assert_cmpint (q.high, ==, 10);
    g_free (q.error);
  }
  /* Another node leads: the query answers again (bounded retries). */
  {
    gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
    gboolean ok = FALSE;

    while (!ok && g_get_monotonic_time () < end)
      {
        g_clear_error (&error);
        ok = bg_watermarks_query (rk, topic, &partition, 1, NULL, &high, 3000, &error);
      }
    g_assert_no_error (error);
    g_assert_cmpint (high, ==, 10);
  }
  rd_kafka_destroy (rk);
  g_assert_true (bgt_real_kafka_node (cluster, "restart", (guint) leader, &error));
  g_assert_no_error (error);
}

/* ---- [real-kafka] cluster down ---------------------------------------------- */

/* Every node killed right after the prepare, restarted 3 s later on the
 * same ports and data: the cutover commits or aborts, the same on every
 * host, and the output is exact either way. */
static void
test_cluster_down (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;

  if (f->fleet == NULL)
    return;

  start_blue_then_green (f);
  id = cutover (f, A, FALSE);
  g_assert_cmpint (wait_prepare (f, id), >=, 0);
  bgt_real_kafka_node (cluster, "kill", 0, &error);
  g_assert_no_error (error);
  /* The outage itself lasts a fixed time: it is the scenario, not a
   * synchronisation. */
  bgt_pause (3000);
  bgt_real_kafka_node (cluster, "restart", 0, &error);
  g_assert_no_error (error);
  f->replays = TRUE;
  finish_either_way (f, id);
}

/* ---- [real-kafka] partition added after a cutover --------------------------- */

/* The example job's consumers see a partition added to the input on their
 * next metadata refresh: every 5 minutes by default, every second here. */
static void
opts_metadata_refresh (BgtFleetOptions *o)
{
  o->job_args = "--property=topic.metadata.refresh.interval.ms=1000";
}

typedef struct {
  Fixture *f;
  const char *color;
  gint32 partition;
  gint64 want;
  gint64 last;
} CommittedWait;

static gboolean
committed_reached (gpointer data)
{
  CommittedWait *w = data;
  g_autoptr (GError) error = NULL;

  w->last = bgt_fleet_committed_offset (w->f->fleet, w->color, w->partition, &error);
  if (error != NULL)
    g_test_message ("%s", error->message);
  return w->last >= w->want;
}

/* A cutover under load ends done; then a partition is added to the input
 * topic (CreatePartitions) and records go to it while the main load goes
 * on. No plan named it: its barrier is an implicit 0, so green, the live
 * color, owns it whole. Every record of it is emitted exactly once, by
 * green; the barriers of the cutover hold on the others. */
static void
test_partition_added (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *result = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  BgtLoad *load;
  guint added;
  gint64 n, high;
  gint64 zero = 0;
  /* Keys of their own on the new partition alone (loadgen --partitions:
   * key k to the listed partition, whatever the partition count). The main
   * load keeps librdkafka's partitioner on the 6 partitions it knows (its
   * metadata is refreshed every 5 minutes): a key moving to the new
   * partition would be a key on two partitions, not what this test is
   * about. */
  BgtLoadOptions lo = { .rate = 50, .partitions = NULL, .key_prefix = "added-", .keys = 40 };

  if (f->fleet == NULL)
    return;

  start_blue_then_green (f);
  id = cutover (f, A, FALSE);
  result = bgt_fleet_wait_finished (f->fleet, id, 0, WAIT_MS);
  g_assert_cmpstr (result, ==, "done");
  barriers = assert_last_cutover (f, id, "done");
  assert_decisions (f, id, TRUE);
  wait_job (f, 0, "LiveColor", "green");
  wait_slot (f, 0, "blue", "State", "stopped");
  g_assert_cmpuint (barriers->len, ==, f->opts.partitions);

  added = f->opts.partitions;
  bgt_fleet_add_input_partitions (f->fleet, added + 1, &error);
  g_assert_no_error (error);
  g_test_message ("partition %u added to %s", added, bgt_fleet_input_topic (f->fleet));
  {
    g_autofree char *spec = g_strdup_printf ("%u", added);
    lo.partitions = spec;
    load = bgt_fleet_load_new (f->fleet, &lo, &error);
    g_assert_no_error (error);
  }
  /* Records on it, then green (on the partition count it refreshed)
   * consumed them and everything else produced so far. */
  g_assert_true (bgt_wait_high_watermark (bgt_fleet_bootstrap (f->fleet), bgt_fleet_input_topic (f->fleet),
                                          (int32_t) added, 200, WAIT_MS, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, 0, "green", WAIT_MS));
  /* Its delivered offsets go to the group's commits like any other
   * partition's: an instance taking it over later resumes there, not
   * at its start. */
  {
    CommittedWait cw = { f, "green", (gint32) added, 200, -1 };
    if (!bgt_wait_until (committed_reached, &cw, WAIT_MS))
      g_test_message ("green's committed offset on partition %u: %" G_GINT64_FORMAT, added, cw.last);
    g_assert_cmpint (cw.last, >=, 200);
  }

  n = bgt_load_stop (load, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >=, 200);
  /* The consumer groups rebalance for the new partition (range: 7
   * partitions over 3 instances move some of the old ones): a partition
   * moved re-reads from its group's committed offset, within green. */
  f->replays = TRUE;
  stop_load (f, "green");

  /* The implicit barrier 0: every result on the new partition green's. */
  g_array_append_val (barriers, zero);
  report = verify (f, "blue", "green", barriers);
  high = bgt_report_partition_num (report, (int) added, "high");
  g_test_message ("partition %u: %" G_GINT64_FORMAT " records, green's results %" G_GINT64_FORMAT
                  "..%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT " within-version duplicates", added, high,
                  bgt_report_color_first (report, (int) added, "green"),
                  bgt_report_color_last (report, (int) added, "green"),
                  bgt_report_partition_num (report, (int) added, "within_duplicates"));
  g_assert_cmpint (bgt_report_partition_num (report, (int) added, "low"), ==, 0);
  g_assert_cmpint (high, >=, n);
  g_assert_cmpint (bgt_report_color_first (report, (int) added, "green"), ==, 0);
  g_assert_cmpint (bgt_report_color_last (report, (int) added, "green"), ==, high - 1);
  g_assert_cmpint (bgt_report_color_first (report, (int) added, "blue"), ==, -1);
  g_assert_cmpint (bgt_report_partition_num (report, (int) added, "gaps"), ==, 0);
  g_assert_cmpint (bgt_report_partition_num (report, (int) added, "cross_duplicates"), ==, 0);
  /* Exactly once: it never moved between instances. */
  g_assert_cmpint (bgt_report_partition_num (report, (int) added, "within_duplicates"), ==, 0);
}

/* ---- [real-kafka] broker paused --------------------------------------------- */

/* Cutover on @host once the fleet has recovered from a fault: a refusal
 * because green is not Ready on some host (NotReady, or WrongState in
 * phase "deploying": its readiness comes and goes while its group
 * rebalances and catches up) or a host is silent (its hellos were held up)
 * is answered again once every host's phase is "ready" again, within 60 s;
 * any other error fails. */
static char *
cutover_when_ready (Fixture *f, guint host)
{
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *remote = NULL;
      char *id;

      wait_job (f, 0, "Phase", "ready");
      id = bgt_fleet_cutover (f->fleet, host, FALSE, 0, 0, &error);
      if (id != NULL)
        return id;
      remote = g_dbus_error_get_remote_error (error);
      if (g_get_monotonic_time () > end
          || !(g_strcmp0 (remote, "org.bluegreen.Error.HostSilent") == 0
               || g_strcmp0 (remote, "org.bluegreen.Error.NotReady") == 0
               || (g_strcmp0 (remote, "org.bluegreen.Error.WrongState") == 0
                   && strstr (error->message, "'deploying'") != NULL)))
        g_assert_no_error (error);
      g_test_message ("%s; asking again once every host is ready", error->message);
      if (g_strcmp0 (remote, "org.bluegreen.Error.HostSilent") == 0)
        {
          gint64 mark = bgt_fleet_control_watermark (f->fleet, NULL);
          const char *needles[] = { "\"type\":\"hello\"", NULL };
          bgt_fleet_control_wait (f->fleet, mark, needles, 5000);
        }
      else
        {
          /* Phase ready everywhere again, then one more hello round so
           * every host has heard the others' readiness. */
          gint64 mark = bgt_fleet_control_watermark (f->fleet, NULL);
          const char *needles[] = { "\"type\":\"hello\"", NULL };
          wait_job (f, 0, "Phase", "ready");
          bgt_fleet_control_wait (f->fleet, mark, needles, 5000);
        }
    }
}

/* SIGSTOP of the node leading the control partition right after the
 * prepare is in the log, for 8 s (longer than broker.session.timeout.ms,
 * 6 s: the controller fences it and leadership moves), then SIGCONT. Its
 * connections stay open and silent meanwhile: requests in flight to it
 * (the agents' acks, commits of the groups' offsets replicated to it)
 * wait for it, not for an error. The cutover ends, the same on every
 * host: done, or aborted at its deadline, and then a second Cutover on the
 * recovered cluster ends done. The output is exact at the final barriers. */
static void
test_broker_paused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *result = NULL;
  g_autofree char *id2 = NULL;
  g_autoptr (GPtrArray) seen = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  const char *final_id;
  int leader;

  if (f->fleet == NULL)
    return;

  start_blue_then_green (f);
  leader = bgt_real_kafka_leader (cluster, bgt_fleet_control_topic (f->fleet), 0, &error);
  g_assert_no_error (error);
  id = cutover (f, A, FALSE);
  g_assert_cmpint (wait_prepare (f, id), >=, 0);
  bgt_real_kafka_node (cluster, "pause", (guint) leader, &error);
  g_assert_no_error (error);
  g_test_message ("paused node %d, the control partition's leader", leader);
  /* The pause itself lasts a fixed time: it is the scenario, not a
   * synchronisation. */
  bgt_pause (8000);
  bgt_real_kafka_node (cluster, "resume", (guint) leader, &error);
  g_assert_no_error (error);
  g_test_message ("resumed node %d", leader);
  /* The groups' coordinators wait for the paused replica too: sessions
   * time out, the groups rebalance and re-read from their committed
   * offsets (within one version). */
  f->replays = TRUE;

  result = bgt_fleet_wait_finished (f->fleet, id, 0, 120000);
  g_test_message ("cutover %s: %s", id, result);
  g_assert_true (g_strcmp0 (result, "done") == 0 || g_strcmp0 (result, "aborted") == 0);
  seen = bgt_fleet_finished_for (f->fleet, id);
  g_assert_cmpuint (seen->len, ==, bgt_fleet_n_hosts (f->fleet));
  assert_decisions (f, id, g_strcmp0 (result, "done") == 0);
  final_id = id;
  if (g_strcmp0 (result, "aborted") == 0)
    {
      g_autofree char *result2 = NULL;
      /* Nothing changed: blue live, green Ready again; cut over again. */
      wait_job (f, 0, "LiveColor", "blue");
      g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", 90000));
      id2 = cutover_when_ready (f, A);
      result2 = bgt_fleet_wait_finished (f->fleet, id2, 0, WAIT_MS);
      g_test_message ("cutover %s (again): %s", id2, result2);
      g_assert_cmpstr (result2, ==, "done");
      assert_decisions (f, id2, TRUE);
      final_id = id2;
    }
  barriers = assert_last_cutover (f, final_id, "done");
  wait_job (f, 0, "LiveColor", "green");
  stop_load (f, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [real-kafka] transactional: a SIGKILLed instance ------------------------ */

/* The example job in transactional mode (--transactional): results and
 * input offsets committed together in Kafka transactions, a transaction
 * about every second (so a kill finds one open, with results in it). */
static void
opts_transactional (BgtFleetOptions *o)
{
  o->transactional = TRUE;
  o->job_args = "--commit-interval=1";
  /* Blue stays up after the cutover: a blue instance killed after the
   * prepare must come back (and fence its open transaction) even when the
   * cutover is done before systemd restarts it; with no window, blue was
   * retired first and the restart never came (a CI run). */
  o->observation_sec = 120;
}

static guint32
slot_pid (Fixture *f, guint host, const char *color)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GVariant) v = bgt_fleet_get (f->fleet, host, path, BGT_SLOT_IFACE, "MainPID");

  return v != NULL && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (v) : 0;
}

static guint64
slot_emitted (Fixture *f, guint host, const char *color)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GVariant) v = bgt_fleet_get (f->fleet, host, path, BGT_SLOT_IFACE, "Emitted");

  return v != NULL && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64) ? g_variant_get_uint64 (v) : 0;
}

typedef struct {
  Fixture *f;
  guint host;
  const char *color;
  guint32 old_pid;
  guint64 emitted;
} SlotWait;

static gboolean
slot_restarted (gpointer data)
{
  SlotWait *w = data;
  guint32 pid = slot_pid (w->f, w->host, w->color);

  return pid != 0 && pid != w->old_pid;
}

static gboolean
slot_emitting (gpointer data)
{
  SlotWait *w = data;

  return slot_emitted (w->f, w->host, w->color) > w->emitted;
}

/* SIGKILL of slot @color's instance on @host (the unit's main process),
 * as systemd would deliver an OOM kill; returns the killed pid. */
static guint32
kill_slot (Fixture *f, guint host, const char *color)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *unit = g_strdup_printf ("bluegreen-" BGT_FLEET_JOB "-%s.service", color);
  const char *argv[] = { "systemctl", "--user", "kill", "--signal=SIGKILL", unit, NULL };
  guint32 pid = slot_pid (f, host, color);
  int status = -1;

  g_assert_cmpuint (pid, >, 0);
  g_assert_true (bgt_host_exec (bgt_fleet_host (f->fleet, host), argv, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  g_test_message ("SIGKILL to %s's %s instance (pid %u)", bgt_fleet_host_id (f->fleet, host), color, pid);
  return pid;
}

/* One instance of @color killed during a cutover in transactional mode:
 * blue (outgoing) right after the prepare, while it still emits up to the
 * barrier; green (incoming) right after the commit, once it emits. Its
 * open transaction is aborted (fenced by its restart, which has the same
 * transactional.id); the restart and the instances that take its
 * partitions over resume at the offsets committed with the last
 * transaction. The verifier, reading read_committed, finds no gap, no
 * cross-version and no within-version duplicate, no order violation. */
static void
txn_kill (Fixture *f, const char *color)
{
  g_autofree char *id = NULL;
  g_autofree char *commit = NULL;
  SlotWait w = { f, B, color, 0, 0 };

  if (f->fleet == NULL)
    return;
  g_assert_true (f->opts.transactional);

  start_blue_then_green (f);
  id = cutover (f, A, FALSE);
  g_assert_cmpint (wait_prepare (f, id), >=, 0);
  if (g_str_equal (color, "green"))
    {
      /* The commit of this attempt or a retry's, then green's first
       * results on host b. */
      const char *needles[] = { "\"type\":\"commit\"", NULL };
      g_assert_cmpint (bgt_fleet_control_wait (f->fleet, 0, needles, WAIT_MS), >=, 0);
      w.emitted = slot_emitted (f, B, "green");
      g_assert_true (bgt_wait_until (slot_emitting, &w, WAIT_MS));
    }
  w.old_pid = kill_slot (f, B, color);
  /* systemd restarts it (Restart=on-failure). */
  g_assert_true (bgt_wait_until (slot_restarted, &w, WAIT_MS));
  g_test_message ("%s's %s instance restarted (pid %u)", bgt_fleet_host_id (f->fleet, B), color,
                  slot_pid (f, B, color));
  finish_either_way (f, id);
}

static void
test_txn_kill_blue (Fixture *f, gconstpointer data)
{
  txn_kill (f, "blue");
}

static void
test_txn_kill_green (Fixture *f, gconstpointer data)
{
  txn_kill (f, "green");
}

/* ---- [real-kafka] control topic check --------------------------------------- */

typedef struct {
  const char *path;
  const char *needle;
} LogWait;

static gboolean
log_contains (gpointer data)
{
  LogWait *w = data;
  g_autofree char *text = NULL;

  return g_file_get_contents (w->path, &text, NULL, NULL) && strstr (text, w->needle) != NULL;
}

/* Runs bluegreend on @host with control topic @topic as unit @unit and
 * waits until its log contains @needle; returns the log. */
static char *
run_agent_until (BgtHost *host, const char *unit, const char *topic, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (host->dir, unit, NULL);
  g_autofree char *state = g_build_filename (dir, "state", NULL);
  g_autofree char *jobs = g_build_filename (dir, "jobs", NULL);
  g_autofree char *conf_path = g_build_filename (dir, "bluegreend.conf", NULL);
  g_autofree char *conf_opt = g_strdup_printf ("--config=%s", conf_path);
  g_autofree char *conf = g_strdup_printf ("[Agent]\nHostId=%s\nBus=session\nStateDirectory=%s\n"
                                           "JobsDirectory=%s\n[Kafka]\nBootstrapServers=%s\n"
                                           "ControlTopic=%s\n", unit, state, jobs, cluster->bootstrap,
                                           topic);
  g_autofree char *agent = bgt_build_path ("bluegreend");
  g_autofree char *log = bgt_host_log_path (host, unit);
  g_autofree char *text = NULL;
  const char *argv[] = { agent, "--user", conf_opt, NULL };
  LogWait w = { log, needle };

  g_assert_cmpint (g_mkdir_with_parents (state, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (jobs, 0755), ==, 0);
  g_assert_true (g_file_set_contents (conf_path, conf, -1, NULL));
  bgt_start_transient_unit (host, unit, argv, NULL, &error);
  g_assert_no_error (error);
  if (!bgt_wait_until (log_contains, &w, WAIT_MS))
    {
      g_file_get_contents (log, &text, NULL, NULL);
      g_test_message ("%s: no '%s' in its log:\n%s", unit, needle, text);
      g_assert_not_reached ();
    }
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_test_message ("%s:\n%s", unit, text);
  return g_steal_pointer (&text);
}

/* An agent whose control topic cannot carry the protocol stops with an
 * error naming the topic and what is wrong; weak settings are warned
 * about and the agent runs on. */
static void
test_control_topic_check (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgtHost) host = NULL;
  g_autofree char *name = g_strdup_printf ("rkc%d", (int) getpid ());
  g_autofree char *missing = g_strdup_printf ("check-%d-missing", (int) getpid ());
  g_autofree char *two = g_strdup_printf ("check-%d-two", (int) getpid ());
  g_autofree char *compacted = g_strdup_printf ("check-%d-compacted", (int) getpid ());
  g_autofree char *weak = g_strdup_printf ("check-%d-weak", (int) getpid ());
  const char *compact_configs[] = { "cleanup.policy", "compact", NULL };
  const char *weak_configs[] = { "min.insync.replicas", "1", "retention.ms", "3600000", NULL };

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  g_assert_nonnull (cluster);
  bgt_real_kafka_create_topic (cluster, two, 2, NULL, &error);
  g_assert_no_error (error);
  bgt_real_kafka_create_topic (cluster, compacted, 1, compact_configs, &error);
  g_assert_no_error (error);
  bgt_real_kafka_create_topic (cluster, weak, 1, weak_configs, &error);
  g_assert_no_error (error);
  host = bgt_host_start (name, &error);
  g_assert_no_error (error);

  {
    g_autofree char *needle = g_strdup_printf ("error: control topic '%s' does not exist", missing);
    g_autofree char *log = run_agent_until (host, "agent-missing", missing, needle);
    g_assert_nonnull (strstr (log, "cleanup.policy=delete"));
    g_assert_true (bgt_wait_unit_state (host, "agent-missing", "failed", WAIT_MS, &error));
    g_assert_no_error (error);
  }
  {
    g_autofree char *needle = g_strdup_printf ("error: control topic '%s' has 2 partitions", two);
    g_autofree char *log = run_agent_until (host, "agent-two", two, needle);
    g_assert_true (bgt_wait_unit_state (host, "agent-two", "failed", WAIT_MS, &error));
    g_assert_no_error (error);
  }
  {
    g_autofree char *needle = g_strdup_printf ("error: control topic '%s' has cleanup.policy=compact", compacted);
    g_autofree char *log = run_agent_until (host, "agent-compacted", compacted, needle);
    g_assert_true (bgt_wait_unit_state (host, "agent-compacted", "failed", WAIT_MS, &error));
    g_assert_no_error (error);
  }
  {
    g_autofree char *needle = g_strdup_printf ("control topic '%s' checked: 1 partition, replication 3, "
                                               "cleanup.policy=delete", weak);
    g_autofree char *log = run_agent_until (host, "agent-weak", weak, needle);
    g_autofree char *state = NULL;
    g_assert_nonnull (strstr (log, "has min.insync.replicas=1"));
    g_assert_nonnull (strstr (log, "retention.ms=3600000"));
    g_assert_null (strstr (log, "has replication factor"));
    state = bgt_unit_active_state (host, "agent-weak", &error);
    g_assert_no_error (error);
    g_assert_cmpstr (state, ==, "active");
  }
  bgt_host_stop (host, FALSE, &error);
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_autofree char *dir = NULL;
  g_autoptr (GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_add ("/real-kafka/[real-kafka] cutover", Fixture, NULL, fixture_setup, test_cutover,
              fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] rollback", Fixture, opts_observe, fixture_setup, test_rollback,
              fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] control leader killed", Fixture, NULL, fixture_setup,
              test_leader_killed, fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] cluster down", Fixture, NULL, fixture_setup, test_cluster_down,
              fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] partition added after a cutover", Fixture, opts_metadata_refresh,
              fixture_setup, test_partition_added, fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] broker paused", Fixture, NULL, fixture_setup, test_broker_paused,
              fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] transactional blue killed", Fixture, opts_transactional,
              fixture_setup, test_txn_kill_blue, fixture_teardown);
  g_test_add ("/real-kafka/[real-kafka] transactional green killed", Fixture, opts_transactional,
              fixture_setup, test_txn_kill_green, fixture_teardown);
  g_test_add_func ("/real-kafka/[real-kafka] control topic check", test_control_topic_check);
  g_test_add_func ("/real-kafka/[real-kafka] watermarks with the leader killed", test_watermarks_leader_killed);
  if (geteuid () != 0)
    return g_test_run ();
  /* One 3-node cluster for every test: ~7 s to start, ~1 s per topic. */
  dir = g_build_filename (g_getenv ("BG_TEST_TMPDIR") ? g_getenv ("BG_TEST_TMPDIR") : g_get_tmp_dir (),
                          "kafka", NULL);
  cluster = bgt_real_kafka_start (3, dir, &error);
  if (cluster != NULL && !bgt_real_kafka_warm_up (cluster, 20000, &error))
    g_clear_pointer (&cluster, bgt_real_kafka_free);
  if (cluster == NULL)
    g_printerr ("# cannot start the Kafka cluster: %s\n", error->message);
  status = g_test_run ();
  g_clear_pointer (&cluster, bgt_real_kafka_free);
  return status;
}
