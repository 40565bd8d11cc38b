/* test-cutover.c — the fleet-wide cutover end to end (issue 5): three
 * simulated hosts, each a systemd user manager with its own bus and
 * bluegreend, one Kafka mock, an input topic with 6 partitions, the example
 * job in both slots of every host (one consumer group per color, so the
 * three instances of a color share the partitions), the load generator
 * producing during the whole test, and bluegreen-verify at the end of every
 * test: 0 gaps, 0 cross-version duplicates, 0 order violations, correct
 * state, and where a cutover committed, the incoming color's first result
 * on every partition at exactly the committed barrier.
 *
 * Tests: [cutover] [rollback] [coordinator-prepare] [coordinator-commit]
 * [participant-crash] [participant-hang] [broker-down] [not-ready]
 * [silent-host] [garbage].
 *
 * Failure scenarios that depend on a moment inside the protocol ("right
 * after prepare") are made deterministic where the protocol allows it: a
 * participant that must not ack yet is SIGSTOPped before the Cutover call,
 * and the test follows the control topic itself (a 1 ms fetch wait) to act
 * on the record it waits for.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "scenario.h"

/* ---- [cutover] ------------------------------------------------------------- */

static void
test_cutover (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id = cutover (f, A, 0);
  assert_finished (f, id, 0, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  assert_first_decision (f, id, "commit");
  wait_job (f, 0, "LiveColor", "green");
  /* ObservationSec=0: the old version stops at once. */
  wait_slot (f, 0, "blue", "State", "stopped");
  wait_job (f, 0, "Phase", "live");
  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [cutover] attempts ------------------------------------------------------ */

/* How many prepares the log holds for the attempts of @id. */
static guint
count_attempts (Fixture *f, const char *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) all = bgt_fleet_control_read (f->fleet, 0, &error);
  g_autofree char *first = needle ("id", id);
  g_autofree char *later = g_strdup_printf ("\"id\":\"%s.", id);
  guint n = 0;

  g_assert_no_error (error);
  for (guint i = 0; i < all->len; i++)
    {
      const char *text = g_ptr_array_index (all, i);
      if (strstr (text, "\"type\":\"prepare\"") != NULL
          && (strstr (text, first) != NULL || strstr (text, later) != NULL))
        n++;
    }
  return n;
}

/* A lead of 1 ms under load: instances are usually past their barriers
 * before every host armed the plan, so the first attempt aborts with
 * "past barrier" and the coordinator retries with a doubled lead. Whatever
 * the number of attempts, the operator sees one cutover: the id Cutover
 * returned, one CutoverFinished "done" per host, LastCutover under that
 * id, and the output is exact at the last attempt's barriers. */
static void
test_cutover_attempts (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (GPtrArray) seen = NULL;
  g_autoptr (JsonObject) report = NULL;
  guint attempts;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id = bgt_fleet_cutover (f->fleet, A, FALSE, 0, 1, &error);
  g_assert_no_error (error);
  assert_finished (f, id, 0, "done");
  seen = bgt_fleet_finished_for (f->fleet, id);
  g_assert_cmpuint (seen->len, ==, bgt_fleet_n_hosts (f->fleet));
  barriers = assert_last_cutover (f, 0, id, "done");
  attempts = count_attempts (f, id);
  g_test_message ("cutover %s: %u attempts", id, attempts);
  g_assert_cmpuint (attempts, >=, 1);
  g_assert_cmpuint (attempts, <=, 3);
  wait_job (f, 0, "LiveColor", "green");
  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [rollback] ---------------------------------------------------------------- */

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
  g_autoptr (GArray) x1 = NULL;
  g_autoptr (GArray) x2 = NULL;
  g_autoptr (JsonObject) report = NULL;
  g_autoptr (GError) error = NULL;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id1 = cutover (f, A, 0);
  assert_finished (f, id1, 0, "done");
  x1 = assert_last_cutover (f, 0, id1, "done");
  wait_job (f, 0, "Phase", "observing");
  wait_slot (f, 0, "blue", "State", "running");
  keep_producing (f, 0, "green");

  /* Back to blue, coordinated from another host. */
  id2 = bgt_fleet_cutover (f->fleet, B, TRUE, 0, 0, &error);
  g_assert_no_error (error);
  assert_finished (f, id2, 0, "done");
  x2 = assert_last_cutover (f, 0, id2, "done");
  wait_job (f, 0, "LiveColor", "blue");
  {
    g_auto (BgtCutoverInfo) info = { 0 };
    g_assert_true (bgt_fleet_last_cutover (f->fleet, C, &info));
    g_assert_cmpstr (info.outgoing, ==, "green");
    g_assert_cmpstr (info.incoming, ==, "blue");
  }
  keep_producing (f, 0, "blue");
  stop_load (f, 0, "blue");

  /* Green emitted exactly [X1, X2) on every partition, blue everything
   * else; with no gap and no cross-version duplicate that is exact. */
  report = verify (f, "blue", "green", NULL);
  bgt_report_assert_rollback (report, x1, x2);
}

/* ---- [coordinator-prepare] -------------------------------------------------- */

static void
test_coordinator_prepare (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *id2 = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  guint32 pid;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  /* C cannot ack while stopped, so the coordinator cannot have committed
   * before we kill it; a deadline shorter than systemd's RestartSec=1s
   * means the restarted coordinator finds the deadline passed. */
  stop_after_hello (f, C);
  id = cutover (f, A, 700);
  g_assert_cmpint (wait_record (f, "prepare", id, NULL, WAIT_MS), >=, 0);
  pid = bgt_fleet_signal_agent (f->fleet, A, SIGKILL);
  g_assert_cmpuint (pid, >, 0);
  bgt_fleet_signal_agent (f->fleet, C, SIGCONT);

  assert_finished (f, id, MASK (B) | MASK (C), "aborted");
  assert_first_decision (f, id, "abort");
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, A, pid, WAIT_MS));
  wait_last_cutover (f, A, id, "aborted");
  wait_job (f, 0, "LiveColor", "blue");
  /* Blue kept emitting, green emitted nothing. */
  keep_producing (f, 0, "blue");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", WAIT_MS));
  wait_job (f, 0, "Phase", "ready");

  /* After the restart, a new cutover from the same host succeeds. */
  id2 = cutover (f, A, 0);
  assert_finished (f, id2, 0, "done");
  barriers = assert_last_cutover (f, 0, id2, "done");
  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [coordinator-commit] --------------------------------------------------- */

static void
test_coordinator_commit (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  guint32 pid;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id = cutover (f, A, 0);
  g_assert_cmpint (wait_record (f, "commit", id, NULL, WAIT_MS), >=, 0);
  pid = bgt_fleet_signal_agent (f->fleet, A, SIGKILL);
  g_assert_cmpuint (pid, >, 0);

  assert_finished (f, id, MASK (B) | MASK (C), "done");
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, A, pid, WAIT_MS));
  wait_last_cutover (f, A, id, "done");
  assert_first_decision (f, id, "commit");
  barriers = assert_last_cutover (f, 0, id, "done");
  wait_job (f, 0, "LiveColor", "green");
  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [participant-crash] ----------------------------------------------------- */

static void
test_participant_crash (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  guint32 pid;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  /* C stopped: no decision can be taken until it acks, so B can be killed
   * after its ack and before the decision. The deadline leaves room. */
  stop_after_hello (f, C);
  id = cutover (f, A, 15000);
  g_assert_cmpint (wait_record (f, "ack", id, bgt_fleet_host_id (f->fleet, B), WAIT_MS), >=, 0);
  pid = bgt_fleet_signal_agent (f->fleet, B, SIGKILL);
  g_assert_cmpuint (pid, >, 0);
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) d = bgt_fleet_control_decisions (f->fleet, id, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (d->len, ==, 0);
  }
  /* Now let C ack: A commits while B's agent is down (or restarting);
   * B's instances hold at their barriers meanwhile. */
  bgt_fleet_signal_agent (f->fleet, C, SIGCONT);
  assert_finished (f, id, MASK (A) | MASK (C), "done");
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, B, pid, WAIT_MS));
  wait_last_cutover (f, B, id, "done");
  assert_first_decision (f, id, "commit");
  barriers = assert_last_cutover (f, 0, id, "done");
  wait_job (f, 0, "LiveColor", "green");
  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  /* The barrier check covers B's instances: blue emitted nothing at or
   * past a barrier, green nothing below. */
  report = verify (f, "blue", "green", barriers);
}

/* ---- [participant-hang] ------------------------------------------------------- */

static void
test_participant_hang (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  /* C hangs before it can ack the prepare (stopped just before the call,
   * well within the silence threshold, so the call is accepted). */
  stop_after_hello (f, C);
  id = cutover (f, A, 1000);
  g_assert_cmpint (wait_record (f, "prepare", id, NULL, WAIT_MS), >=, 0);
  assert_finished (f, id, MASK (A) | MASK (B), "aborted");
  assert_first_decision (f, id, "abort");
  wait_job (f, MASK (A) | MASK (B), "LiveColor", "blue");
  /* After SIGCONT, C reads the log and converges on the same decision. */
  bgt_fleet_signal_agent (f->fleet, C, SIGCONT);
  wait_last_cutover (f, C, id, "aborted");
  wait_job (f, 0, "LiveColor", "blue");
  keep_producing (f, 0, "blue");
  stop_load (f, 0, "blue");
  report = verify (f, "blue", "green", NULL);
  for (int p = 0; p < (int) f->opts.partitions; p++)
    g_assert_cmpint (bgt_report_color_first (report, p, "green"), ==, -1);
}

/* ---- [broker-down] ------------------------------------------------------------ */

static void
test_broker_down (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *result = NULL;
  g_autoptr (GPtrArray) seen = NULL;
  g_autoptr (JsonObject) report = NULL;
  const char *live;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id = cutover (f, A, 0);
  g_assert_cmpint (wait_record (f, "prepare", id, NULL, WAIT_MS), >=, 0);
  bgt_kafka_command (bgt_fleet_kafka (f->fleet), "down all", &error);
  g_assert_no_error (error);
  /* The outage itself lasts a fixed time: it is the scenario, not a
   * synchronisation. */
  bgt_pause (3000);
  bgt_kafka_command (bgt_fleet_kafka (f->fleet), "up all", &error);
  g_assert_no_error (error);

  result = bgt_fleet_wait_finished (f->fleet, id, 0, 60000);
  g_test_message ("after the outage: %s", result);
  g_assert_true (g_strcmp0 (result, "done") == 0 || g_strcmp0 (result, "aborted") == 0);
  seen = bgt_fleet_finished_for (f->fleet, id);
  /* One CutoverFinished per host: nobody both committed and aborted. */
  g_assert_cmpuint (seen->len, ==, bgt_fleet_n_hosts (f->fleet));
  assert_first_decision (f, id, g_strcmp0 (result, "done") == 0 ? "commit" : "abort");
  live = g_strcmp0 (result, "done") == 0 ? "green" : "blue";
  f->replays = TRUE;
  wait_job (f, 0, "LiveColor", live);
  keep_producing (f, 0, live);
  stop_load (f, 0, live);
  if (g_strcmp0 (result, "done") == 0)
    {
      g_autoptr (GArray) barriers = assert_last_cutover (f, 0, id, "done");
      report = verify (f, "blue", "green", barriers);
    }
  else
    {
      report = verify (f, "blue", "green", NULL);
      for (int p = 0; p < (int) f->opts.partitions; p++)
        g_assert_cmpint (bgt_report_color_first (report, p, "green"), ==, -1);
    }
}

/* ---- [not-ready] ------------------------------------------------------------ */

static void
opts_green_crashes_on_c (BgtFleetOptions *o)
{
  o->crash_versions[C] = "v2";
  /* Failed at its first crash, not after a crash loop. */
  o->job_settings = "Restart=no";
}

static void
test_not_ready (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  /* Green is Ready on A and B; on C its job crashes while catching up. */
  start_blue_then_green (f, MASK (A) | MASK (B));
  wait_slot (f, MASK (C), "green", "State", "failed");
  /* C's crash rebalances green's group: A's or B's green may lose
   * readiness for a moment while it catches up on C's partitions. Until
   * both are Ready again, NotReady may name them instead of C. */
  for (gint64 end = g_get_monotonic_time () + WAIT_MS * G_GINT64_CONSTANT (1000);;)
    {
      g_autofree char *remote = NULL;

      g_clear_error (&error);
      g_assert_true (bgt_fleet_wait_ready (f->fleet, MASK (A) | MASK (B), "green", 60000));
      reply = bgt_fleet_call (f->fleet, A, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Cutover",
                              g_variant_new_parsed ("(@a{sv} {},)"), "(s)", 0, &error);
      g_assert_null (reply);
      remote = g_dbus_error_get_remote_error (error);
      if (g_strcmp0 (remote, "org.bluegreen.Error.NotReady") != 0 || strstr (error->message, "host c") != NULL
          || g_get_monotonic_time () > end)
        break;
      g_test_message ("not yet: %s", error->message);
    }
  assert_dbus_error (error, "org.bluegreen.Error.NotReady", "host c");
  g_clear_error (&error);
  /* Nothing was prepared. */
  {
    g_autoptr (GPtrArray) all = bgt_fleet_control_read (f->fleet, 0, &error);
    g_assert_no_error (error);
    for (guint i = 0; i < all->len; i++)
      g_assert_null (strstr (g_ptr_array_index (all, i), "\"type\":\"prepare\""));
  }
  wait_job (f, 0, "LiveColor", "blue");
  keep_producing (f, 0, "blue");
  stop_load (f, 0, "blue");
  report = verify (f, "blue", "green", NULL);
  for (int p = 0; p < (int) f->opts.partitions; p++)
    g_assert_cmpint (bgt_report_color_first (report, p, "green"), ==, -1);
}

/* ---- [silent-host] ------------------------------------------------------------ */

typedef struct {
  Fixture *f;
  gint64 from;
  guint want;
} HelloWait;

static gboolean
enough_hellos (gpointer data)
{
  HelloWait *w = data;
  g_autoptr (GPtrArray) all = bgt_fleet_control_read (w->f->fleet, w->from, NULL);
  g_autofree char *h = needle ("host", bgt_fleet_host_id (w->f->fleet, A));
  guint n = 0;

  for (guint i = 0; all != NULL && i < all->len; i++)
    {
      const char *text = g_ptr_array_index (all, i);
      if (strstr (text, "\"type\":\"hello\"") != NULL && strstr (text, h) != NULL)
        n++;
    }
  return n >= w->want;
}

static void
test_silent_host (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  HelloWait hw = { f, 0, 6 };
  const char *c;
  g_autofree char *hosts_text = NULL;

  if (f->fleet == NULL)
    return;
  c = bgt_fleet_host_id (f->fleet, C);
  start_blue_then_green (f, 0);
  /* C's agent stops; its job instances go on (they are not its children). */
  bgt_fleet_systemctl (f->fleet, C, "stop", "bluegreend.service", &error);
  g_assert_no_error (error);
  /* "Longer than several heartbeat intervals", as the log shows it: A
   * has sent 6 heartbeats since. */
  hw.from = bgt_fleet_control_watermark (f->fleet, &error);
  g_assert_no_error (error);
  g_assert_true (bgt_wait_until (enough_hellos, &hw, WAIT_MS));

  reply = bgt_fleet_call (f->fleet, A, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Cutover",
                          g_variant_new_parsed ("(@a{sv} {},)"), "(s)", 0, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.bluegreen.Error.HostSilent", "host c ");
  g_clear_error (&error);
  /* Still expected: not dropped on a timeout (checked at the end, so a
   * wrong property does not hide the rest of the scenario). */
  {
    g_autoptr (GVariant) hosts = bgt_fleet_get (f->fleet, A, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Hosts");
    g_assert_nonnull (hosts);
    hosts_text = g_variant_print (hosts, FALSE);
    g_test_message ("Hosts on a while c is silent: %s", hosts_text);
  }

  /* The operator stops C's slots, then evicts C. */
  bgt_fleet_systemctl (f->fleet, C, "stop", "bluegreen-" BGT_FLEET_JOB "-blue.service", &error);
  g_assert_no_error (error);
  bgt_fleet_systemctl (f->fleet, C, "stop", "bluegreen-" BGT_FLEET_JOB "-green.service", &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = bgt_fleet_call (f->fleet, B, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "EvictHost",
                          g_variant_new ("(s)", c), NULL, 0, &error);
  g_assert_no_error (error);
  {
    g_autofree char *n = needle ("evicted_host", c);
    const char *needles[] = { "\"type\":\"evict\"", n, NULL };
    g_assert_cmpint (bgt_fleet_control_wait (f->fleet, 0, needles, WAIT_MS), >=, 0);
  }
  /* A and B took over C's partitions (their groups rebalanced): they
   * re-read them from the group's last committed offsets, re-emitting
   * what C's instances had already emitted since (at-least-once). */
  f->replays = TRUE;
  /* A and B took over C's partitions (their groups rebalanced). */
  keep_producing (f, MASK (A) | MASK (B), "blue");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, MASK (A) | MASK (B), "green", 60000));
  wait_job (f, MASK (A) | MASK (B), "Phase", "ready");

  id = cutover (f, A, 0);
  assert_finished (f, id, MASK (A) | MASK (B), "done");
  barriers = assert_last_cutover (f, MASK (A) | MASK (B), id, "done");
  wait_job (f, MASK (A) | MASK (B), "LiveColor", "green");
  keep_producing (f, MASK (A) | MASK (B), "green");
  stop_load (f, MASK (A) | MASK (B), "green");
  report = verify (f, "blue", "green", barriers);
  g_assert_nonnull (strstr (hosts_text, "'c'"));
}

/* ---- [garbage] --------------------------------------------------------------- */

static void
produce (Fixture *f, const char *text)
{
  g_autoptr (GError) error = NULL;
  bgt_fleet_control_produce (f->fleet, text, strlen (text), &error);
  g_assert_no_error (error);
}

static void
assert_agents_alive (Fixture *f, const guint32 *pids)
{
  for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
    g_assert_cmpuint (bgt_fleet_agent_pid (f->fleet, i), ==, pids[i]);
}

static void
test_garbage (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  g_autoptr (GError) error = NULL;
  guint32 pids[3];
  gint64 mark;
  static const char binary[] = { 0x00, (char) 0xff, (char) 0xfe, '{', 0x01 };

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  for (guint i = 0; i < 3; i++)
    pids[i] = bgt_fleet_agent_pid (f->fleet, i);

  bgt_fleet_control_produce (f->fleet, binary, sizeof binary, &error);
  g_assert_no_error (error);
  produce (f, "this is not json");
  produce (f, "[1,2,3]");
  produce (f, "{\"v\":1,\"type\":\"prepare\"}");
  produce (f, "{\"v\":2,\"type\":\"commit\",\"host\":\"a\",\"ts\":1,\"id\":\"future\",\"job\":\"counts\"}");
  produce (f, "{\"v\":99,\"type\":\"prepare\",\"host\":\"z\",\"ts\":1,\"id\":\"x\",\"job\":\"counts\","
              "\"outgoing\":\"blue\",\"incoming\":\"green\",\"deadline\":1,"
              "\"barriers\":[{\"topic\":\"in\",\"partition\":0,\"offset\":0}],\"participants\":[\"z\"]}");
  /* Well-formed decisions for ids nobody prepared. */
  produce (f, "{\"v\":1,\"type\":\"commit\",\"host\":\"z\",\"ts\":1,\"id\":\"no-such-cutover\",\"job\":\"counts\"}");
  produce (f, "{\"v\":1,\"type\":\"abort\",\"host\":\"z\",\"ts\":1,\"id\":\"nor-this\",\"job\":\"counts\",\"reason\":\"x\"}");
  produce (f, "{\"v\":1,\"type\":\"done\",\"host\":\"z\",\"ts\":1,\"id\":\"no-such-cutover\",\"job\":\"counts\",\"all\":true}");
  /* Every agent has read past them: a heartbeat of each after the garbage. */
  mark = bgt_fleet_control_watermark (f->fleet, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *h = needle ("host", bgt_fleet_host_id (f->fleet, i));
      const char *needles[] = { "\"type\":\"hello\"", h, NULL };
      g_assert_cmpint (bgt_fleet_control_wait (f->fleet, mark, needles, WAIT_MS), >=, mark);
    }
  assert_agents_alive (f, pids);
  wait_job (f, 0, "Phase", "ready");
  wait_job (f, 0, "LiveColor", "blue");
  wait_slot (f, 0, "green", "SinkMode", "blackhole");
  wait_slot (f, 0, "blue", "SinkMode", "live");

  /* A real cutover works after the garbage ... */
  id = cutover (f, A, 0);
  assert_finished (f, id, 0, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  /* ... and a second decision for it changes nothing. */
  {
    g_autofree char *msg = g_strdup_printf ("{\"v\":1,\"type\":\"abort\",\"host\":\"b\",\"ts\":1,\"id\":\"%s\","
                                            "\"job\":\"counts\",\"reason\":\"too late\"}", id);
    produce (f, msg);
  }
  mark = bgt_fleet_control_watermark (f->fleet, &error);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *h = needle ("host", bgt_fleet_host_id (f->fleet, i));
      const char *needles[] = { "\"type\":\"hello\"", h, NULL };
      g_assert_cmpint (bgt_fleet_control_wait (f->fleet, mark, needles, WAIT_MS), >=, mark);
    }
  assert_agents_alive (f, pids);
  {
    g_autoptr (GArray) again = assert_last_cutover (f, 0, id, "done");
  }
  assert_first_decision (f, id, "commit");
  wait_job (f, 0, "LiveColor", "green");
  {
    g_autoptr (GPtrArray) seen = bgt_fleet_finished_for (f->fleet, id);
    g_assert_cmpuint (seen->len, ==, 3);
  }
  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/cutover/cutover", Fixture, NULL, fixture_setup, test_cutover, fixture_teardown);
  g_test_add ("/cutover/attempts", Fixture, NULL, fixture_setup, test_cutover_attempts, fixture_teardown);
  g_test_add ("/cutover/rollback", Fixture, opts_observe, fixture_setup, test_rollback, fixture_teardown);
  g_test_add ("/cutover/coordinator-prepare", Fixture, NULL, fixture_setup, test_coordinator_prepare,
              fixture_teardown);
  g_test_add ("/cutover/coordinator-commit", Fixture, NULL, fixture_setup, test_coordinator_commit,
              fixture_teardown);
  g_test_add ("/cutover/participant-crash", Fixture, NULL, fixture_setup, test_participant_crash,
              fixture_teardown);
  g_test_add ("/cutover/participant-hang", Fixture, NULL, fixture_setup, test_participant_hang,
              fixture_teardown);
  g_test_add ("/cutover/broker-down", Fixture, NULL, fixture_setup, test_broker_down, fixture_teardown);
  g_test_add ("/cutover/not-ready", Fixture, opts_green_crashes_on_c, fixture_setup, test_not_ready,
              fixture_teardown);
  g_test_add ("/cutover/silent-host", Fixture, NULL, fixture_setup, test_silent_host, fixture_teardown);
  g_test_add ("/cutover/garbage", Fixture, NULL, fixture_setup, test_garbage, fixture_teardown);
  return g_test_run ();
}
