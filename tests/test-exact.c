/* test-exact.c — exactness across agent restarts, end to end: three
 * simulated hosts (systemd user managers, each with its bus and
 * bluegreend), the Kafka mock, the example job in every slot, the load
 * generator, and the verifier at the end of every test.
 *
 * Tests: [replay-history] (a restarted agent that re-reads old prepares,
 * commits and dones of a job does not move its slots back or stop its
 * live slot) and [restart-commit] (an agent killed the moment a commit is
 * read comes back with the committed steering, never an older one).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/control-codec.h"
#include "scenario.h"

#define PINNED_JOB "pinned"

static void
opts_pinned (BgtFleetOptions *o)
{
  o->extra_job = PINNED_JOB;
}

static guint64
slot_u64 (Fixture *f, guint host, const char *color, const char *prop)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GVariant) v = bgt_fleet_get (f->fleet, host, path, BGT_SLOT_IFACE, prop);
  guint64 n = 0;

  g_assert_nonnull (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    n = g_variant_get_uint32 (v);
  else
    n = g_variant_get_uint64 (v);
  return n;
}

static char *
slot_plan_state (Fixture *f, guint host, const char *color, char **id)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GVariant) v = bgt_fleet_get (f->fleet, host, path, BGT_SLOT_IFACE, "Plan");
  const char *pid, *role, *state;
  gint64 deadline;
  g_autoptr (GVariant) barriers = NULL;

  g_assert_nonnull (v);
  g_variant_get (v, "(&s&s&sx@a(six))", &pid, &role, &state, &deadline, &barriers);
  if (id != NULL)
    *id = g_strdup (pid);
  return g_strdup (state);
}

/* A prepare of the extra job naming host a and a host that never answers,
 * with a deadline far ahead: a's agent keeps that cutover in flight, so the
 * control offset it must restart from stays at this prepare while the main
 * job's history piles up behind it. */
static void
pin_control_log (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = bg_control_message_new (BG_CONTROL_PREPARE, "nowhere",
                                                             g_get_real_time ());
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *path = g_strdup_printf ("/org/bluegreen/Agent1/job/%s", PINNED_JOB);

  msg->job = g_strdup (PINNED_JOB);
  msg->id = g_strdup ("pin-0001");
  msg->outgoing = BG_COLOR_BLUE;
  msg->incoming = BG_COLOR_GREEN;
  msg->deadline = g_get_real_time () + (gint64) 3600 * G_USEC_PER_SEC;
  g_ptr_array_add (msg->barriers, bg_control_offset_new (BGT_FLEET_INPUT, 0, 0));
  g_ptr_array_add (msg->participants, g_strdup (bgt_fleet_host_id (f->fleet, A)));
  g_ptr_array_add (msg->participants, g_strdup ("nowhere"));
  bytes = bg_control_message_encode (msg, &error);
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_control_produce (f->fleet, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                            &error));
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_string (f->fleet, MASK (A), path, BGT_JOB_IFACE, "Phase", "cutting-over",
                                        WAIT_MS));
}

/* ---- [replay-history] --------------------------------------------------------------- */

/* Two cutovers (blue → green, then a new blue v3 ← green), each done with
 * ObservationSec=0 (the old version stops at once), while another job's
 * cutover pins host a's restart offset before both. Then a's agent is
 * killed: it re-reads both cutovers' prepares, commits and dones. Replayed
 * as commands they would stop blue (the first done's outgoing color, live
 * now) and hand its instance the first cutover's steering. */
static void
test_replay_history (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  g_autofree char *state = NULL;
  g_autofree char *plan_id = NULL;
  g_autoptr (GArray) x2 = NULL;
  g_autoptr (JsonObject) report = NULL;
  guint64 generation, pid_before;

  if (f->fleet == NULL)
    return;
  pin_control_log (f);
  start_blue_then_green (f, 0);
  id1 = cutover (f, A, 0);
  assert_finished (f, id1, 0, "done");
  wait_slot (f, 0, "blue", "State", "stopped");
  keep_producing (f, 0, "green");

  g_assert_true (bgt_fleet_deploy (f->fleet, 0, "v3", FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "blue", 60000));
  wait_job (f, 0, "Phase", "ready");
  id2 = cutover (f, B, 0);
  assert_finished (f, id2, 0, "done");
  x2 = assert_last_cutover (f, 0, id2, "done");
  wait_job (f, 0, "LiveColor", "blue");
  wait_slot (f, 0, "green", "State", "stopped");
  keep_producing (f, 0, "blue");

  generation = slot_u64 (f, A, "blue", "Generation");
  pid_before = slot_u64 (f, A, "blue", "MainPID");
  g_assert_cmpuint (pid_before, >, 0);
  kill_agent_and_wait (f, A);

  /* History stayed history: the live slot runs on, in the same process,
   * with the last cutover's steering at a generation never lower. */
  wait_job (f, MASK (A), "LiveColor", "blue");
  wait_slot (f, MASK (A), "blue", "State", "running");
  wait_slot (f, MASK (A), "blue", "Version", "v3");
  g_assert_cmpuint (slot_u64 (f, A, "blue", "MainPID"), ==, pid_before);
  g_assert_cmpuint (slot_u64 (f, A, "blue", "Generation"), >=, generation);
  state = slot_plan_state (f, A, "blue", &plan_id);
  g_assert_cmpstr (plan_id, ==, id2);
  g_assert_cmpstr (state, ==, "committed");
  wait_job (f, MASK (A), "Phase", "live");

  keep_producing (f, 0, "blue");
  stop_load (f, 0, "blue");
  report = verify (f, "green", "blue", NULL);
  for (guint p = 0; p < x2->len; p++)
    g_assert_cmpint (bgt_report_color_first (report, (int) p, "blue"), <=, g_array_index (x2, gint64, p));
}

/* ---- [restart-commit] --------------------------------------------------------------- */

/* Host b's agent is killed the moment the commit appears in the log, so
 * its death lands anywhere between reading the commit and saving what it
 * steered (write-ahead: the state file has a steering before any instance
 * can fetch it). Restarted, its slots have the committed steering and a
 * generation at least what the instances applied; the output is exact. */
static void
test_restart_commit (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *state = NULL;
  g_autofree char *plan_id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  guint64 applied;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id = cutover (f, A, 0);
  g_assert_cmpint (wait_record (f, "commit", id, NULL, WAIT_MS), >=, 0);
  kill_agent_and_wait (f, B);
  wait_last_cutover (f, B, id, "done");
  wait_last_cutover (f, A, id, "done");
  wait_last_cutover (f, C, id, "done");
  barriers = assert_last_cutover (f, 0, id, "done");

  /* The green slot on b has the committed plan (never back to prepared),
   * and what its instance applied is not ahead of the agent. */
  state = slot_plan_state (f, B, "green", &plan_id);
  g_assert_cmpstr (plan_id, ==, id);
  g_assert_cmpstr (state, ==, "committed");
  applied = slot_u64 (f, B, "green", "AppliedGeneration");
  g_assert_cmpuint (slot_u64 (f, B, "green", "Generation"), >=, applied);
  wait_job (f, 0, "LiveColor", "green");

  keep_producing (f, 0, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/exact/[replay-history]", Fixture, opts_pinned, fixture_setup, test_replay_history,
              fixture_teardown);
  g_test_add ("/exact/[restart-commit]", Fixture, NULL, fixture_setup, test_restart_commit, fixture_teardown);
  return g_test_run ();
}
