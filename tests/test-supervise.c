/* test-supervise.c — the agent supervising its slots through what happens
 * to a host (issue 13), end to end on 3 simulated hosts under load, with
 * the verifier's verdict at the end of every test.
 *
 * [reboot]: a whole host stopped (its service manager, agent and slots)
 * and started again on the same state directory. The agent brings back
 * what should run there, steered exactly as before: mid-observation (both
 * slots come back, the rollback still works and is exact) and mid-catch-up
 * (the candidate comes back, becomes Ready, the cutover works).
 *
 * [restart-policy]: kill -9 of a live and of a blackholed instance (systemd
 * restarts them, they fetch their steering, the cutover after is exact);
 * a crash loop of the new live version on one host (the slot fails with
 * the reason, and the Deploy's auto_rollback rolls the fleet back).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "scenario.h"

/* ---- helpers ------------------------------------------------------------------ */

static GVariant *
slot_prop (Fixture *f, guint i, const char *color, const char *prop)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  GVariant *v = bgt_fleet_get (f->fleet, i, path, BGT_SLOT_IFACE, prop);

  g_assert_nonnull (v);
  return v;
}

static guint64
slot_u64 (Fixture *f, guint i, const char *color, const char *prop)
{
  g_autoptr (GVariant) v = slot_prop (f, i, color, prop);
  return g_variant_get_uint64 (v);
}

/* A slot's steering as the instance fetches it: sink mode, ranges, plan
 * and holds, printed. */
static char *
slot_steering (Fixture *f, guint i, const char *color)
{
  g_autoptr (GVariant) mode = slot_prop (f, i, color, "SinkMode");
  g_autoptr (GVariant) ranges = slot_prop (f, i, color, "Ranges");
  g_autoptr (GVariant) plan = slot_prop (f, i, color, "Plan");
  g_autoptr (GVariant) holds = slot_prop (f, i, color, "Holds");
  g_autofree char *m = g_variant_print (mode, FALSE);
  g_autofree char *r = g_variant_print (ranges, FALSE);
  g_autofree char *p = g_variant_print (plan, FALSE);
  g_autofree char *h = g_variant_print (holds, FALSE);

  return g_strdup_printf ("mode %s ranges %s plan %s holds %s", m, r, p, h);
}

typedef struct {
  Fixture *f;
  guint i;
  const char *color;
} SlotRef;

static gboolean
steering_applied (gpointer data)
{
  SlotRef *s = data;
  g_autofree char *path = bgt_fleet_slot_path (s->color);
  g_autoptr (GVariant) gen = bgt_fleet_get (s->f->fleet, s->i, path, BGT_SLOT_IFACE, "Generation");
  g_autoptr (GVariant) applied = bgt_fleet_get (s->f->fleet, s->i, path, BGT_SLOT_IFACE, "AppliedGeneration");

  return gen != NULL && applied != NULL && g_variant_get_uint64 (applied) == g_variant_get_uint64 (gen);
}

/* Waits until host @i's @color instance has applied the slot's steering. */
static void
wait_applied (Fixture *f, guint i, const char *color)
{
  SlotRef s = { f, i, color };
  g_assert_true (bgt_wait_until (steering_applied, &s, WAIT_MS));
}

/* What host @i runs before a reboot, to compare with what comes back. */
typedef struct {
  char *version[2];
  char *steering[2];
  guint64 generation[2];
  guint32 pid[2];
} SlotsBefore;

static const char *const colors[] = { "blue", "green" };

static void
slots_before (Fixture *f, guint i, SlotsBefore *b)
{
  for (guint c = 0; c < 2; c++)
    {
      g_autofree char *path = bgt_fleet_slot_path (colors[c]);
      g_autoptr (GVariant) pid = slot_prop (f, i, colors[c], "MainPID");

      b->version[c] = bgt_fleet_get_string (f->fleet, i, path, BGT_SLOT_IFACE, "Version");
      b->steering[c] = slot_steering (f, i, colors[c]);
      b->generation[c] = slot_u64 (f, i, colors[c], "Generation");
      b->pid[c] = g_variant_get_uint32 (pid);
      g_test_message ("before: %s %s gen %" G_GUINT64_FORMAT " pid %u: %s", colors[c], b->version[c],
                      b->generation[c], b->pid[c], b->steering[c]);
    }
}

static void
slots_before_clear (SlotsBefore *b)
{
  for (guint c = 0; c < 2; c++)
    {
      g_free (b->version[c]);
      g_free (b->steering[c]);
    }
}

/* Host @i runs @color again after its reboot: a new process, the same
 * version, the same steering under a grown generation, applied by the new
 * instance. */
static void
assert_resumed (Fixture *f, guint i, const char *color, const SlotsBefore *b)
{
  guint c = g_str_equal (color, "blue") ? 0 : 1;
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autofree char *version = NULL;
  g_autofree char *steering = NULL;
  g_autoptr (GVariant) pid = NULL;

  wait_slot (f, MASK (i), color, "State", "running");
  wait_applied (f, i, color);
  version = bgt_fleet_get_string (f->fleet, i, path, BGT_SLOT_IFACE, "Version");
  steering = slot_steering (f, i, color);
  pid = slot_prop (f, i, color, "MainPID");
  g_test_message ("after: %s %s gen %" G_GUINT64_FORMAT " pid %u: %s", color, version,
                  slot_u64 (f, i, color, "Generation"), g_variant_get_uint32 (pid), steering);
  g_assert_cmpstr (version, ==, b->version[c]);
  g_assert_cmpstr (steering, ==, b->steering[c]);
  g_assert_cmpuint (slot_u64 (f, i, color, "Generation"), >, b->generation[c]);
  g_assert_cmpuint (g_variant_get_uint32 (pid), !=, 0);
  g_assert_cmpuint (g_variant_get_uint32 (pid), !=, b->pid[c]);
}

/* After a reboot the instances that take over partitions rebuild their
 * state from the input's start (the example job): on a loaded machine
 * that takes far longer than the scenarios' usual waits. */
#define CATCH_UP_MS 180000

static void
catch_up (Fixture *f, const char *color)
{
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, 0, color, CATCH_UP_MS));
}

static void
reboot (Fixture *f, guint i, gboolean power_cut)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (bgt_fleet_reboot_host (f->fleet, i, power_cut, &error));
  g_assert_no_error (error);
  /* The rebooted host's instances left their consumer groups without
   * committing what they had processed; the members that take over their
   * partitions, and the instances that come back, re-read from the last
   * committed offsets (at-least-once): within-version duplicates, counted
   * apart by the verifier. Across versions nothing may be duplicated. */
  f->replays = TRUE;
}

/* Records per second, a fifteenth of the other scenarios' rate. A reboot
 * or a crash rebalances both colors' groups, and an instance that takes a
 * partition over rebuilds its state by reading it from the start (the
 * example job); the mock broker serves such reads ever slower as the log
 * grows, and on a loaded machine a few minutes of the full rate take
 * longer to re-read than any test should wait. */
#define SUPERVISE_RATE 100

/* Blue v1 live everywhere, load running, green v2 deployed everywhere;
 * Ready everywhere if @wait_ready. */
static void
start_fleet (Fixture *f, gboolean wait_ready)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_deploy (f->fleet, 0, "v1", TRUE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "blue", "State", "running");
  wait_job (f, 0, "LiveColor", "blue");
  bgt_fleet_load_start (f->fleet, SUPERVISE_RATE, &error);
  g_assert_no_error (error);
  bgt_fleet_deploy (f->fleet, 0, "v2", FALSE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "green", "State", "running");
  if (!wait_ready)
    return;
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", CATCH_UP_MS));
  wait_job (f, 0, "Phase", "ready");
}

/* ---- [reboot] mid-observation ---------------------------------------------------- */

static void
opts_observe (BgtFleetOptions *o)
{
  /* Longer than the test: blue keeps running blackholed throughout. */
  o->observation_sec = 600;
}

static void
test_reboot_observing (Fixture *f, gconstpointer data)
{
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  g_autoptr (GArray) x1 = NULL;
  g_autoptr (GArray) x2 = NULL;
  g_autoptr (JsonObject) report = NULL;
  g_autoptr (GError) error = NULL;
  SlotsBefore before = { 0 };

  if (f->fleet == NULL)
    return;
  start_fleet (f, TRUE);
  id1 = cutover (f, A, 0);
  assert_finished (f, id1, 0, "done");
  x1 = assert_last_cutover (f, 0, id1, "done");
  wait_job (f, 0, "Phase", "observing");
  wait_slot (f, 0, "blue", "State", "running");
  catch_up (f, "green");
  wait_applied (f, B, "blue");
  wait_applied (f, B, "green");
  slots_before (f, B, &before);

  /* A clean reboot: the manager stops the slots (they exit cleanly) while
   * the agent may still be running and see them go. */
  reboot (f, B, FALSE);
  wait_job (f, MASK (B), "LiveColor", "green");
  assert_resumed (f, B, "green", &before);
  assert_resumed (f, B, "blue", &before);
  slots_before_clear (&before);
  catch_up (f, "green");

  /* The rollback still works, coordinated from a host that kept running. */
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "blue", CATCH_UP_MS));
  id2 = bgt_fleet_cutover (f->fleet, A, TRUE, 0, 0, &error);
  g_assert_no_error (error);
  assert_finished (f, id2, 0, "done");
  x2 = assert_last_cutover (f, 0, id2, "done");
  wait_job (f, 0, "LiveColor", "blue");
  catch_up (f, "blue");
  stop_load (f, 0, "blue");

  /* Green emitted exactly [X1, X2) on every partition, blue the rest. */
  report = verify (f, "blue", "green", NULL);
  bgt_report_assert_rollback (report, x1, x2);
}

/* ---- [reboot] mid-catch-up ------------------------------------------------------- */

static void
opts_slow_ready (BgtFleetOptions *o)
{
  /* Green is not Ready for 5 s after it caught up: the reboot surely
   * comes before. */
  o->stable_sec = 5;
}

static void
test_reboot_catching_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  g_autoptr (GVariant) ready = NULL;
  SlotsBefore before = { 0 };

  if (f->fleet == NULL)
    return;
  start_fleet (f, FALSE);
  wait_applied (f, C, "blue");
  wait_applied (f, C, "green");
  slots_before (f, C, &before);
  ready = slot_prop (f, C, "green", "Ready");
  g_assert_false (g_variant_get_boolean (ready));
  {
    g_autofree char *phase = bgt_fleet_get_string (f->fleet, C, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Phase");
    g_assert_cmpstr (phase, ==, "deploying");
  }

  /* A power cut: nothing is stopped in order, the agent sees nothing. */
  reboot (f, C, TRUE);
  wait_job (f, MASK (C), "LiveColor", "blue");
  assert_resumed (f, C, "blue", &before);
  assert_resumed (f, C, "green", &before);
  slots_before_clear (&before);

  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", CATCH_UP_MS));
  wait_job (f, 0, "Phase", "ready");
  /* Both groups settled after c's return (every partition has a position
   * at the high watermark): a rebalance during the prepare can move a
   * partition to an instance past its barrier after its host acked. */
  catch_up (f, "green");
  catch_up (f, "blue");
  id = cutover (f, A, 0);
  assert_finished (f, id, 0, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  wait_job (f, 0, "LiveColor", "green");
  catch_up (f, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [restart-policy] ------------------------------------------------------------- */

static guint32
slot_pid (Fixture *f, guint i, const char *color)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GVariant) v = bgt_fleet_get (f->fleet, i, path, BGT_SLOT_IFACE, "MainPID");

  return v != NULL ? g_variant_get_uint32 (v) : 0;
}

typedef struct {
  Fixture *f;
  guint i;
  const char *color;
  guint32 old_pid;
} PidWait;

static gboolean
new_instance_running (gpointer data)
{
  PidWait *w = data;
  g_autofree char *path = bgt_fleet_slot_path (w->color);
  g_autofree char *state = bgt_fleet_get_string (w->f->fleet, w->i, path, BGT_SLOT_IFACE, "State");
  guint32 pid = slot_pid (w->f, w->i, w->color);

  return g_strcmp0 (state, "running") == 0 && pid != 0 && pid != w->old_pid;
}

/* kill -9 of host @i's @color instance; systemd starts a new one, which
 * fetches the slot's steering and applies it. */
static void
kill_and_wait_restart (Fixture *f, guint i, const char *color)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autofree char *error_text = NULL;
  PidWait w = { f, i, color, slot_pid (f, i, color) };
  guint64 generation = slot_u64 (f, i, color, "Generation");
  g_autoptr (GVariant) before = bgt_fleet_get (f->fleet, i, path, BGT_SLOT_IFACE, "Restarts");
  g_autoptr (GVariant) after = NULL;

  g_assert_cmpuint (w.old_pid, >, 0);
  g_test_message ("kill -9 %s instance on host %s (pid %u)", color, bgt_fleet_host_id (f->fleet, i), w.old_pid);
  g_assert_cmpint (kill ((pid_t) w.old_pid, SIGKILL), ==, 0);
  f->replays = TRUE; /* the killed instance's uncommitted records are read again */
  g_assert_true (bgt_wait_until (new_instance_running, &w, WAIT_MS));
  wait_applied (f, i, color);
  /* Same steering: a crash is not a new deploy. */
  g_assert_cmpuint (slot_u64 (f, i, color, "Generation"), ==, generation);
  error_text = bgt_fleet_get_string (f->fleet, i, path, BGT_SLOT_IFACE, "LastError");
  g_test_message ("LastError: %s", error_text);
  g_assert_nonnull (strstr (error_text, "the instance died"));
  g_assert_nonnull (strstr (error_text, "systemd restarts it"));
  /* Counted once (Slot1.Restarts, bluegreen_slot_restarts_total). */
  after = bgt_fleet_get (f->fleet, i, path, BGT_SLOT_IFACE, "Restarts");
  g_assert_nonnull (before);
  g_assert_nonnull (after);
  g_assert_cmpuint (g_variant_get_uint32 (after), ==, g_variant_get_uint32 (before) + 1);
}

/* kill -9 of the live instance and of a blackholed one: both restarted,
 * and the cutover after them is exact. */
static void
test_restart_kill (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start_fleet (f, TRUE);
  kill_and_wait_restart (f, A, "blue");
  kill_and_wait_restart (f, B, "green");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", CATCH_UP_MS));
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "blue", CATCH_UP_MS));
  wait_job (f, 0, "Phase", "ready");
  id = cutover (f, A, 0);
  assert_finished (f, id, 0, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  wait_job (f, 0, "LiveColor", "green");
  catch_up (f, "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

static void
opts_crash_loop (BgtFleetOptions *o)
{
  o->observation_sec = 600;
  o->job_settings = "RestartSec=0.5\nStartLimitBurst=3\nStartLimitIntervalSec=120";
}

typedef struct {
  Fixture *f;
  guint i;
  const char *color;
  guint32 last_killed;
  guint kills;
} CrashLoop;

/* Kills every new instance of the slot until systemd gives up. */
static gboolean
crash_loop_step (gpointer data)
{
  CrashLoop *l = data;
  g_autofree char *path = bgt_fleet_slot_path (l->color);
  g_autofree char *state = bgt_fleet_get_string (l->f->fleet, l->i, path, BGT_SLOT_IFACE, "State");
  g_autofree char *unit = g_strdup_printf ("bluegreen-%s-%s.service", BGT_FLEET_JOB, l->color);
  guint32 pid = bgt_unit_main_pid (bgt_fleet_host (l->f->fleet, l->i), unit, NULL);

  if (g_strcmp0 (state, "failed") == 0)
    return TRUE;
  if (pid != 0 && pid != l->last_killed && kill ((pid_t) pid, SIGKILL) == 0)
    {
      l->last_killed = pid;
      l->kills++;
      g_test_message ("crash loop: killed pid %u (kill %u), slot %s", pid, l->kills, state);
    }
  return FALSE;
}

/* The new live version crash-loops on one host while the old one is
 * observed: the slot fails with the reason, and the Deploy's
 * auto_rollback on that host rolls the fleet back, exactly. */
static void
test_restart_crash_loop (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *id = NULL;
  g_autofree char *green_path = bgt_fleet_slot_path ("green");
  g_autofree char *slot_error = NULL;
  g_autofree char *job_error = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  CrashLoop loop = { f, C, "green", 0, 0 };

  if (f->fleet == NULL)
    return;
  bgt_fleet_deploy (f->fleet, 0, "v1", TRUE, &error);
  g_assert_no_error (error);
  wait_job (f, 0, "LiveColor", "blue");
  bgt_fleet_load_start (f->fleet, SUPERVISE_RATE, &error);
  g_assert_no_error (error);
  bgt_fleet_deploy (f->fleet, MASK (A) | MASK (B), "v2", FALSE, &error);
  g_assert_no_error (error);
  {
    GVariantBuilder opts;
    g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
    g_variant_builder_add (&opts, "{sv}", "auto_rollback", g_variant_new_boolean (TRUE));
    reply = bgt_fleet_call (f->fleet, C, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Deploy",
                            g_variant_new ("(sa{sv})", "v2", &opts), "(o)", 30000, &error);
    g_assert_no_error (error);
  }
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", CATCH_UP_MS));
  wait_job (f, 0, "Phase", "ready");
  /* Both groups settled after c's return (every partition has a position
   * at the high watermark): a rebalance during the prepare can move a
   * partition to an instance past its barrier after its host acked. */
  catch_up (f, "green");
  catch_up (f, "blue");
  id = cutover (f, A, 0);
  assert_finished (f, id, 0, "done");
  wait_job (f, 0, "Phase", "observing");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "blue", CATCH_UP_MS));

  /* Host c's green crash-loops: StartLimitBurst=3, then systemd gives up. */
  f->replays = TRUE;
  g_assert_true (bgt_wait_until (crash_loop_step, &loop, 60000));
  g_test_message ("green on c failed after %u kills", loop.kills);
  g_assert_cmpuint (loop.kills, >=, 3);
  slot_error = bgt_fleet_get_string (f->fleet, C, green_path, BGT_SLOT_IFACE, "LastError");
  g_test_message ("LastError: %s", slot_error);
  g_assert_nonnull (strstr (slot_error, "crash loop"));
  job_error = bgt_fleet_get_string (f->fleet, C, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "LastError");
  g_assert_nonnull (strstr (job_error, "failed"));

  /* auto_rollback: c rolls the fleet back to blue by itself. */
  wait_job (f, 0, "LiveColor", "blue");
  {
    g_auto (BgtCutoverInfo) info = { 0 };
    g_assert_true (bgt_fleet_last_cutover (f->fleet, A, &info));
    g_test_message ("last cutover %s: %s -> %s %s", info.id, info.outgoing, info.incoming, info.result);
    g_assert_cmpstr (info.outgoing, ==, "green");
    g_assert_cmpstr (info.incoming, ==, "blue");
    g_assert_cmpstr (info.result, !=, "aborted");
    g_free (id);
    id = g_strdup (info.id);
  }
  wait_last_cutover (f, A, id, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  catch_up (f, "blue");
  stop_load (f, 0, "blue");
  report = verify (f, "blue", "green", NULL);
  g_assert_nonnull (report);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/supervise/[reboot]/observing", Fixture, opts_observe, fixture_setup, test_reboot_observing,
              fixture_teardown);
  g_test_add ("/supervise/[reboot]/catching-up", Fixture, opts_slow_ready, fixture_setup,
              test_reboot_catching_up, fixture_teardown);
  g_test_add ("/supervise/[restart-policy]/kill", Fixture, NULL, fixture_setup, test_restart_kill,
              fixture_teardown);
  g_test_add ("/supervise/[restart-policy]/crash-loop", Fixture, opts_crash_loop, fixture_setup,
              test_restart_crash_loop, fixture_teardown);
  return g_test_run ();
}
