/* test-gate.c — the gate: modes, plans and their barrier edges, waiting for
 * decisions, the ordered-handoff hold, side effects, progress, and a stress
 * test of lock-free admits against a thread that keeps changing the gate.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bluegreen.h"
#include "gate-private.h"

#define WAIT_TIMEOUT_US (5 * G_USEC_PER_SEC)

/* ---- Helpers -------------------------------------------------------------------- */

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  int32_t partition;
  int64_t offset;
  BgVerdict verdict;
  gint done;
  GThread *thread;
} Admission;

static gpointer
admission_run (gpointer data)
{
  Admission *a = data;
  a->verdict = bg_gate_admit (a->gate, a->topic, a->partition, a->offset);
  g_atomic_int_set (&a->done, 1);
  return NULL;
}

static gboolean
gate_is_waiting (BgGate *gate)
{
  return bg_gate_is_waiting (gate, NULL);
}

/* Polls @pred until it holds or WAIT_TIMEOUT_US passes. */
static gboolean
wait_for (gboolean (*pred) (BgGate *), BgGate *gate)
{
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT_US;
  while (!pred (gate))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_usleep (1000);
    }
  return TRUE;
}

/* Starts bg_gate_admit() in a thread and returns once the gate reports that
 * it waits. */
static Admission *
admission_start_waiting (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset)
{
  Admission *a = g_new0 (Admission, 1);
  a->gate = gate;
  a->topic = topic;
  a->partition = partition;
  a->offset = offset;
  a->thread = g_thread_new ("admit", admission_run, a);
  g_assert_true (wait_for (gate_is_waiting, gate));
  g_assert_cmpint (g_atomic_int_get (&a->done), ==, 0);
  return a;
}

static BgVerdict
admission_finish (Admission *a)
{
  g_thread_join (a->thread);
  g_assert_cmpint (g_atomic_int_get (&a->done), ==, 1);
  BgVerdict v = a->verdict;
  g_free (a);
  return v;
}

static BgPlan *
plan_for_all (const char *id, BgPlanRole role, const char *topic, int n, int64_t barrier)
{
  BgPlan *plan = bg_plan_new (id, role, g_get_real_time () + 10 * G_USEC_PER_SEC);
  for (int p = 0; p < n; p++)
    g_assert_true (bg_plan_add_barrier (plan, topic, p, barrier));
  return plan;
}

static void
assert_try (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset, BgVerdict expected)
{
  BgVerdict v = bg_gate_try_admit (gate, topic, partition, offset);
  if (v != expected)
    g_error ("%s[%d] @%" G_GINT64_FORMAT ": verdict %d, expected %d", bg_topic_name (topic),
             partition, offset, v, expected);
}

/* ---- Modes ------------------------------------------------------------------------ */

static void
test_mode_live_blackhole (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 4);

  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_LIVE);
  g_assert_cmpint (bg_gate_admit (gate, t, 0, 0), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_admit (gate, t, 3, 123456789), ==, BG_VERDICT_EMIT);

  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_BLACKHOLE);
  g_assert_cmpint (bg_gate_admit (gate, t, 0, 1), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_admit (gate, t, 3, 123456790), ==, BG_VERDICT_DROP);

  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_cmpint (bg_gate_admit (gate, t, 1, 5), ==, BG_VERDICT_EMIT);

  /* GATED comes from plans only. */
  g_assert_false (bg_gate_set_mode (gate, BG_SINK_MODE_GATED));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_LIVE);

  g_assert_cmpuint (bg_gate_emitted (gate), ==, 3);
  g_assert_cmpuint (bg_gate_dropped (gate), ==, 2);
  bg_gate_free (gate);
}

static void
test_mode_unknown_waits (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *t = bg_gate_topic (gate, "in", 2);

  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_UNKNOWN);
  assert_try (gate, t, 0, 0, BG_VERDICT_WAIT);
  assert_try (gate, t, 7, 0, BG_VERDICT_WAIT); /* untracked partition too */
  g_assert_false (bg_gate_is_waiting (gate, NULL));

  Admission *a = admission_start_waiting (gate, t, 0, 10);
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_cmpint (admission_finish (a), ==, BG_VERDICT_EMIT);
  g_assert_false (bg_gate_is_waiting (gate, NULL));
  g_assert_cmpint (bg_gate_position (gate, t, 0), ==, 11);

  /* Back to unknown, released by blackhole this time. */
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_UNKNOWN));
  a = admission_start_waiting (gate, t, 1, 20);
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));
  g_assert_cmpint (admission_finish (a), ==, BG_VERDICT_DROP);
  bg_gate_free (gate);
}

static void
test_topic_handles (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *a = bg_gate_topic (gate, "a", 3);

  g_assert_nonnull (a);
  g_assert_cmpstr (bg_topic_name (a), ==, "a");
  g_assert_true (bg_gate_topic (gate, "a", 3) == a);
  g_assert_null (bg_gate_topic (gate, "", 3));
  g_assert_null (bg_gate_topic (gate, NULL, 3));
  g_assert_null (bg_gate_topic (gate, "b", 0));
  g_assert_null (bg_gate_topic (gate, "b", 65537));
  BgTopic *b = bg_gate_topic (gate, "b", 65536);
  g_assert_nonnull (b);
  g_assert_true (b != a);
  g_assert_cmpint (bg_gate_admit (gate, b, 65535, 1), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_position (gate, b, 65535), ==, 2);
  bg_gate_free (gate);
}

/* ---- Plans: barrier edges ------------------------------------------------------------ */

static void
test_plan_outgoing_edges (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  BgTopic *other = bg_gate_topic (gate, "other", 1);
  BgPlan *plan = bg_plan_new ("c1", BG_PLAN_ROLE_OUTGOING, g_get_real_time ());
  g_assert_true (bg_plan_add_barrier (plan, "in", 0, 100));

  g_assert_true (bg_gate_prepare (gate, plan));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_GATED);
  BgPlanState state = -1;
  g_autofree char *id = bg_gate_get_plan (gate, &state);
  g_assert_cmpstr (id, ==, "c1");
  g_assert_cmpint (state, ==, BG_PLAN_STATE_PREPARED);

  assert_try (gate, t, 0, 99, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 100, BG_VERDICT_WAIT);
  assert_try (gate, t, 0, 101, BG_VERDICT_WAIT);
  /* Not in the plan: an implicit barrier at 0, so they wait too. */
  assert_try (gate, t, 1, 1000, BG_VERDICT_WAIT);
  assert_try (gate, other, 0, 1000, BG_VERDICT_WAIT);
  assert_try (gate, t, 5, 1000, BG_VERDICT_WAIT); /* untracked partition */

  g_assert_true (bg_gate_commit (gate, "c1"));
  g_clear_pointer (&id, g_free);
  id = bg_gate_get_plan (gate, &state);
  g_assert_cmpint (state, ==, BG_PLAN_STATE_COMMITTED);
  assert_try (gate, t, 0, 99, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 100, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 101, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 0, BG_VERDICT_EMIT);
  /* The partitions the plan does not name are the incoming side's. */
  assert_try (gate, t, 1, 1000, BG_VERDICT_DROP);
  assert_try (gate, other, 0, 1000, BG_VERDICT_DROP);
  assert_try (gate, t, 5, 0, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_GATED);
  bg_plan_free (plan);
  bg_gate_free (gate);
}

static void
test_plan_incoming_edges (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_BLACKHOLE);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  BgTopic *other = bg_gate_topic (gate, "other", 1);
  BgPlan *plan = bg_plan_new ("c1", BG_PLAN_ROLE_INCOMING, g_get_real_time ());
  g_assert_true (bg_plan_add_barrier (plan, "in", 0, 100));

  g_assert_true (bg_gate_prepare (gate, plan));
  assert_try (gate, t, 0, 99, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 100, BG_VERDICT_WAIT);
  assert_try (gate, t, 0, 101, BG_VERDICT_WAIT);
  assert_try (gate, t, 1, 1000, BG_VERDICT_WAIT);
  assert_try (gate, other, 0, 1000, BG_VERDICT_WAIT);

  g_assert_true (bg_gate_commit (gate, "c1"));
  assert_try (gate, t, 0, 99, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 100, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 101, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, G_MAXINT64 - 1, BG_VERDICT_EMIT);
  assert_try (gate, t, 1, 1000, BG_VERDICT_EMIT);
  assert_try (gate, other, 0, 0, BG_VERDICT_EMIT);
  assert_try (gate, t, 9, 0, BG_VERDICT_EMIT); /* untracked partition */
  bg_plan_free (plan);
  bg_gate_free (gate);
}

static void
test_plan_abort_restores (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 1);
  BgPlan *plan = plan_for_all ("c1", BG_PLAN_ROLE_OUTGOING, "in", 1, 100);

  g_assert_true (bg_gate_prepare (gate, plan));
  assert_try (gate, t, 0, 100, BG_VERDICT_WAIT);
  g_assert_true (bg_gate_abort (gate, "c1"));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_LIVE);
  assert_try (gate, t, 0, 99, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 100, BG_VERDICT_EMIT);
  BgPlanState state = -1;
  g_autofree char *id = bg_gate_get_plan (gate, &state);
  g_assert_cmpint (state, ==, BG_PLAN_STATE_ABORTED);
  bg_plan_free (plan);

  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));
  plan = plan_for_all ("c2", BG_PLAN_ROLE_INCOMING, "in", 1, 100);
  g_assert_true (bg_gate_prepare (gate, plan));
  g_assert_true (bg_gate_abort (gate, "c2"));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_BLACKHOLE);
  assert_try (gate, t, 0, 100, BG_VERDICT_DROP);
  bg_plan_free (plan);
  bg_gate_free (gate);
}

static void
test_plan_refusals (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *t = bg_gate_topic (gate, "in", 1);
  BgPlan *plan = plan_for_all ("c1", BG_PLAN_ROLE_OUTGOING, "in", 1, 100);
  BgPlan *plan2 = plan_for_all ("c2", BG_PLAN_ROLE_OUTGOING, "in", 1, 200);
  char *id;

  g_assert_false (bg_plan_add_barrier (plan, "in", -1, 5));
  g_assert_false (bg_plan_add_barrier (plan, "in", 0, -5));
  g_assert_false (bg_plan_add_barrier (plan, "", 0, 5));

  /* No plan on top of unknown ranges. */
  g_assert_false (bg_gate_prepare (gate, plan));
  g_assert_null (bg_gate_get_plan (gate, NULL));
  g_assert_false (bg_gate_commit (gate, "c1"));

  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_true (bg_gate_prepare (gate, plan));
  g_assert_false (bg_gate_prepare (gate, plan2));
  g_assert_false (bg_gate_commit (gate, "c2"));
  g_assert_false (bg_gate_abort (gate, "c2"));
  /* Only the decision may end a prepared plan. */
  g_assert_false (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));
  g_assert_false (bg_gate_set_mode (gate, BG_SINK_MODE_UNKNOWN));
  BgGateRange r = { "in", 0, 0, G_MAXINT64 };
  g_assert_false (bg_gate_set_ranges (gate, 0, 0, &r, 1));
  assert_try (gate, t, 0, 100, BG_VERDICT_WAIT);

  g_assert_true (bg_gate_commit (gate, "c1"));
  g_assert_true (bg_gate_commit (gate, "c1")); /* replayed: no change */
  g_assert_false (bg_gate_abort (gate, "c1"));
  BgPlanState state = -1;
  id = bg_gate_get_plan (gate, &state);
  g_assert_cmpstr (id, ==, "c1");
  g_assert_cmpint (state, ==, BG_PLAN_STATE_COMMITTED);
  g_free (id);
  assert_try (gate, t, 0, 100, BG_VERDICT_DROP);

  /* The next plan may be armed once the previous one is decided. */
  g_assert_true (bg_gate_prepare (gate, plan2));
  g_assert_true (bg_gate_abort (gate, "c2"));
  g_assert_true (bg_gate_abort (gate, "c2"));
  g_assert_false (bg_gate_commit (gate, "c2"));
  assert_try (gate, t, 0, 99, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 100, BG_VERDICT_DROP);
  bg_plan_free (plan);
  bg_plan_free (plan2);
  bg_gate_free (gate);
}

/* A topic the plan names but the job registers only later obeys the ranges
 * the plan left behind. */
static void
test_plan_topic_registered_later (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_BLACKHOLE);
  BgPlan *plan = plan_for_all ("c1", BG_PLAN_ROLE_INCOMING, "late", 2, 50);

  g_assert_true (bg_gate_prepare (gate, plan));
  BgTopic *t = bg_gate_topic (gate, "late", 2);
  assert_try (gate, t, 1, 49, BG_VERDICT_DROP);
  assert_try (gate, t, 1, 50, BG_VERDICT_WAIT);
  g_assert_true (bg_gate_commit (gate, "c1"));
  BgTopic *t2 = bg_gate_topic (gate, "later", 1);
  assert_try (gate, t, 0, 50, BG_VERDICT_EMIT);
  assert_try (gate, t, 1, 49, BG_VERDICT_DROP);
  assert_try (gate, t2, 0, 50, BG_VERDICT_EMIT); /* not in the plan: the incoming side's */
  bg_plan_free (plan);
  bg_gate_free (gate);
}

/* The incoming version of one cutover is the outgoing one of the next: its
 * range becomes [X1, X2). */
static void
test_plan_chained (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_BLACKHOLE);
  BgTopic *t = bg_gate_topic (gate, "in", 1);
  BgPlan *p1 = plan_for_all ("c1", BG_PLAN_ROLE_INCOMING, "in", 1, 100);
  BgPlan *p2 = plan_for_all ("c2", BG_PLAN_ROLE_OUTGOING, "in", 1, 300);

  g_assert_true (bg_gate_prepare (gate, p1));
  g_assert_true (bg_gate_commit (gate, "c1"));
  g_assert_true (bg_gate_prepare (gate, p2));
  assert_try (gate, t, 0, 99, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 299, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 300, BG_VERDICT_WAIT);
  g_assert_true (bg_gate_commit (gate, "c2"));
  assert_try (gate, t, 0, 99, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 100, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 299, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 300, BG_VERDICT_DROP);
  bg_plan_free (p1);
  bg_plan_free (p2);
  bg_gate_free (gate);
}

/* ---- Waiting for the decision -------------------------------------------------------- */

static void
test_wait_commit (void)
{
  for (int role = BG_PLAN_ROLE_OUTGOING; role <= BG_PLAN_ROLE_INCOMING; role++)
    {
      BgGate *gate = bg_gate_new (role == BG_PLAN_ROLE_OUTGOING ? BG_SINK_MODE_LIVE
                                                                : BG_SINK_MODE_BLACKHOLE);
      BgTopic *t = bg_gate_topic (gate, "in", 2);
      BgPlan *plan = plan_for_all ("c1", role, "in", 2, 100);

      g_assert_true (bg_gate_prepare (gate, plan));
      Admission *a = admission_start_waiting (gate, t, 1, 100);
      int64_t since = 0;
      g_assert_true (bg_gate_is_waiting (gate, &since));
      g_assert_cmpint (since, >, 0);
      g_assert_cmpint (since, <=, g_get_monotonic_time ());
      g_assert_cmpint (bg_gate_position (gate, t, 1), ==, -1);

      g_assert_true (bg_gate_commit (gate, "c1"));
      g_assert_cmpint (admission_finish (a), ==,
                       role == BG_PLAN_ROLE_OUTGOING ? BG_VERDICT_DROP : BG_VERDICT_EMIT);
      g_assert_false (bg_gate_is_waiting (gate, NULL));
      g_assert_cmpint (bg_gate_position (gate, t, 1), ==, 101);
      bg_plan_free (plan);
      bg_gate_free (gate);
    }
}

static void
test_wait_abort (void)
{
  for (int role = BG_PLAN_ROLE_OUTGOING; role <= BG_PLAN_ROLE_INCOMING; role++)
    {
      BgGate *gate = bg_gate_new (role == BG_PLAN_ROLE_OUTGOING ? BG_SINK_MODE_LIVE
                                                                : BG_SINK_MODE_BLACKHOLE);
      BgTopic *t = bg_gate_topic (gate, "in", 1);
      BgPlan *plan = plan_for_all ("c1", role, "in", 1, 100);

      g_assert_true (bg_gate_prepare (gate, plan));
      Admission *a = admission_start_waiting (gate, t, 0, 150);
      g_assert_true (bg_gate_abort (gate, "c1"));
      g_assert_cmpint (admission_finish (a), ==,
                       role == BG_PLAN_ROLE_OUTGOING ? BG_VERDICT_EMIT : BG_VERDICT_DROP);
      g_assert_false (bg_gate_is_waiting (gate, NULL));
      bg_plan_free (plan);
      bg_gate_free (gate);
    }
}

typedef struct {
  gint calls;
  gint64 last_waited_us;
  BgTopic *topic;
  int32_t partition;
  int64_t offset;
  gboolean args_ok;
} WaitReports;

static void
on_wait (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset, int64_t waited_us,
         void *user_data)
{
  WaitReports *r = user_data;
  /* The callback may query the gate: it runs without the gate's lock. */
  if (topic != r->topic || partition != r->partition || offset != r->offset
      || waited_us < r->last_waited_us || !bg_gate_is_waiting (gate, NULL))
    r->args_ok = FALSE;
  r->last_waited_us = waited_us;
  g_atomic_int_inc (&r->calls);
}

/* The deadline passes; the waiter keeps waiting (and reporting) until the
 * decision arrives. */
static void
test_wait_deadline_does_not_release (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 1);
  int64_t deadline = g_get_real_time () + 50 * G_TIME_SPAN_MILLISECOND;
  BgPlan *plan = bg_plan_new ("c1", BG_PLAN_ROLE_OUTGOING, deadline);
  WaitReports reports = { .topic = t, .partition = 0, .offset = 100, .args_ok = TRUE };

  g_assert_true (bg_plan_add_barrier (plan, "in", 0, 100));
  bg_gate_set_wait_callback (gate, on_wait, &reports);
  g_assert_true (bg_gate_prepare (gate, plan));
  Admission *a = admission_start_waiting (gate, t, 0, 100);

  /* Asserting a non-event: watch it for a bounded ~250 ms past the deadline. */
  while (g_get_real_time () < deadline + 250 * G_TIME_SPAN_MILLISECOND)
    {
      g_assert_true (bg_gate_is_waiting (gate, NULL));
      g_assert_cmpint (g_atomic_int_get (&a->done), ==, 0);
      g_usleep (5000);
    }
  g_assert_true (bg_gate_is_waiting (gate, NULL));
  g_assert_cmpint (g_atomic_int_get (&a->done), ==, 0);
  assert_try (gate, t, 0, 100, BG_VERDICT_WAIT);

  g_assert_true (bg_gate_commit (gate, "c1"));
  g_assert_cmpint (admission_finish (a), ==, BG_VERDICT_DROP);
  /* ~300 ms of waiting at one report per ~100 ms. */
  g_assert_cmpint (reports.calls, >=, 2);
  g_assert_cmpint (reports.last_waited_us, >=, 100 * G_TIME_SPAN_MILLISECOND);
  g_assert_true (reports.args_ok);
  bg_plan_free (plan);
  bg_gate_free (gate);
}

/* ---- Ordered handoff ------------------------------------------------------------------- */

static void
test_handoff_hold (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_BLACKHOLE);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  BgPlan *plan = plan_for_all ("c1", BG_PLAN_ROLE_INCOMING, "in", 2, 100);

  /* A hold without a plan barrier does nothing. */
  bg_gate_hold_partition (gate, t, 0);
  assert_try (gate, t, 0, 150, BG_VERDICT_DROP);

  g_assert_true (bg_gate_prepare (gate, plan));
  g_assert_true (bg_gate_commit (gate, "c1"));
  assert_try (gate, t, 0, 99, BG_VERDICT_DROP);
  assert_try (gate, t, 0, 100, BG_VERDICT_WAIT);
  assert_try (gate, t, 0, 101, BG_VERDICT_WAIT);
  assert_try (gate, t, 1, 100, BG_VERDICT_EMIT); /* not held */
  g_assert_false (bg_gate_side_effects_allowed (gate));

  /* Held after the commit works too. */
  bg_gate_hold_partition (gate, t, 1);
  assert_try (gate, t, 1, 100, BG_VERDICT_WAIT);
  bg_gate_release_partition (gate, t, 1);
  assert_try (gate, t, 1, 100, BG_VERDICT_EMIT);

  Admission *a = admission_start_waiting (gate, t, 0, 120);
  bg_gate_release_partition (gate, t, 0);
  g_assert_cmpint (admission_finish (a), ==, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 100, BG_VERDICT_EMIT);
  g_assert_true (bg_gate_side_effects_allowed (gate));
  bg_plan_free (plan);
  bg_gate_free (gate);
}

static void
test_handoff_abort_clears_holds (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_BLACKHOLE);
  BgTopic *t = bg_gate_topic (gate, "in", 1);
  BgPlan *plan = plan_for_all ("c1", BG_PLAN_ROLE_INCOMING, "in", 1, 100);
  BgPlan *plan2 = plan_for_all ("c2", BG_PLAN_ROLE_INCOMING, "in", 1, 200);

  bg_gate_hold_partition (gate, t, 0);
  g_assert_true (bg_gate_prepare (gate, plan));
  g_assert_true (bg_gate_abort (gate, "c1"));
  g_assert_true (bg_gate_prepare (gate, plan2));
  g_assert_true (bg_gate_commit (gate, "c2"));
  assert_try (gate, t, 0, 200, BG_VERDICT_EMIT); /* the hold went with c1 */
  bg_plan_free (plan);
  bg_plan_free (plan2);
  bg_gate_free (gate);
}

/* ---- Side effects ------------------------------------------------------------------------ */

static void
test_side_effects (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  g_assert_false (bg_gate_side_effects_allowed (gate));
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_true (bg_gate_side_effects_allowed (gate));
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));
  g_assert_false (bg_gate_side_effects_allowed (gate));

  /* Incoming, the plan names one partition of two: the other one has an
   * implicit barrier at 0 and is the incoming side's whole. */
  BgPlan *partial = plan_for_all ("c1", BG_PLAN_ROLE_INCOMING, "in", 1, 100);
  g_assert_true (bg_gate_prepare (gate, partial));
  g_assert_false (bg_gate_side_effects_allowed (gate));
  g_assert_true (bg_gate_commit (gate, "c1"));
  g_assert_true (bg_gate_side_effects_allowed (gate));
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));

  BgPlan *full = plan_for_all ("c2", BG_PLAN_ROLE_INCOMING, "in", 2, 100);
  g_assert_true (bg_gate_prepare (gate, full));
  g_assert_false (bg_gate_side_effects_allowed (gate)); /* prepared */
  g_assert_true (bg_gate_commit (gate, "c2"));
  g_assert_true (bg_gate_side_effects_allowed (gate));
  /* A topic registered later, outside the plan: the incoming side's too. */
  bg_gate_topic (gate, "side", 1);
  g_assert_true (bg_gate_side_effects_allowed (gate));

  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_true (bg_gate_side_effects_allowed (gate));
  BgPlan *out = plan_for_all ("c3", BG_PLAN_ROLE_OUTGOING, "in", 2, 100);
  g_assert_true (bg_gate_prepare (gate, out));
  g_assert_false (bg_gate_side_effects_allowed (gate));
  g_assert_true (bg_gate_commit (gate, "c3"));
  g_assert_false (bg_gate_side_effects_allowed (gate)); /* outgoing: closed ranges */

  BgGateRange r = { "in", 0, 0, G_MAXINT64 };
  g_assert_true (bg_gate_set_ranges (gate, 0, G_MAXINT64, &r, 1));
  g_assert_true (bg_gate_side_effects_allowed (gate));
  (void) t;
  bg_plan_free (partial);
  bg_plan_free (full);
  bg_plan_free (out);
  bg_gate_free (gate);
}

/* A partition the job no longer consumes stops counting in its position
 * report, but what was admitted there still counts for arming. */
static void
test_partition_revoked (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  BgPlan *plan = plan_for_all ("c1", BG_PLAN_ROLE_OUTGOING, "in", 2, 10);
  char *reason = NULL;

  assert_try (gate, t, 1, 41, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_position (gate, t, 1), ==, 42);
  bg_gate_partition_revoked (gate, t, 1);
  g_assert_cmpint (bg_gate_position (gate, t, 1), ==, -1);
  g_assert_cmpint (bg_gate_prepare_checked (gate, plan, &reason), ==, BG_PREPARE_PAST_BARRIER);
  g_assert_nonnull (strstr (reason, "in/1: position 42"));
  free (reason);
  bg_plan_free (plan);
  bg_gate_free (gate);
}

/* ---- Ranges set in bulk (the agent client's restore path) ------------------------------- */

static void
test_set_ranges (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *t = bg_gate_topic (gate, "in", 3);
  BgGateRange ranges[] = {
    { "in", 0, 0, 100 },
    { "in", 1, 100, G_MAXINT64 },
    { "in", 7, 5, 6 }, /* untracked partition */
  };

  assert_try (gate, t, 0, 0, BG_VERDICT_WAIT);
  g_assert_true (bg_gate_set_ranges (gate, 0, 0, ranges, G_N_ELEMENTS (ranges)));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_GATED);
  assert_try (gate, t, 0, 99, BG_VERDICT_EMIT);
  assert_try (gate, t, 0, 100, BG_VERDICT_DROP);
  assert_try (gate, t, 1, 99, BG_VERDICT_DROP);
  assert_try (gate, t, 1, 100, BG_VERDICT_EMIT);
  assert_try (gate, t, 2, 100, BG_VERDICT_DROP); /* the default */
  assert_try (gate, t, 7, 5, BG_VERDICT_EMIT);
  assert_try (gate, t, 7, 6, BG_VERDICT_DROP);
  assert_try (gate, t, 8, 5, BG_VERDICT_DROP);

  BgGateRange bad = { "in", -1, 0, 1 };
  g_assert_false (bg_gate_set_ranges (gate, 0, 0, &bad, 1));
  g_assert_true (bg_gate_set_ranges (gate, 0, G_MAXINT64, NULL, 0));
  assert_try (gate, t, 0, 100, BG_VERDICT_EMIT);
  bg_gate_free (gate);
}

/* ---- Progress ---------------------------------------------------------------------------- */

static void
test_progress (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  BgTopic *u = bg_gate_topic (gate, "other", 1);

  g_assert_cmpint (bg_gate_position (gate, t, 0), ==, -1);
  g_assert_cmpint (bg_gate_position (gate, t, 2), ==, -1);
  g_assert_cmpint (bg_gate_position (gate, t, -1), ==, -1);
  g_assert_cmpuint (bg_gate_emitted (gate), ==, 0);

  for (int64_t o = 0; o < 10; o++)
    g_assert_cmpint (bg_gate_admit (gate, t, 0, o), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_position (gate, t, 0), ==, 10);
  g_assert_cmpint (bg_gate_position (gate, t, 1), ==, -1);
  g_assert_cmpint (bg_gate_admit (gate, u, 0, 41), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_position (gate, u, 0), ==, 42);

  /* An untracked partition (added to the topic after it was registered)
   * is admitted by the mode, counted, and has a position like the others:
   * the agent must see it (its lag, the fleet's positions). */
  g_assert_cmpint (bg_gate_admit (gate, t, 9, 5), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_position (gate, t, 9), ==, 6);
  g_assert_cmpuint (bg_gate_emitted (gate), ==, 12);
  {
    g_autoptr (GArray) up = bg_gate_dup_untracked_positions (gate);
    g_assert_cmpuint (up->len, ==, 1);
    g_assert_cmpstr (g_array_index (up, BgUntrackedPosition, 0).topic, ==, "in");
    g_assert_cmpint (g_array_index (up, BgUntrackedPosition, 0).partition, ==, 9);
    g_assert_cmpint (g_array_index (up, BgUntrackedPosition, 0).position, ==, 6);
  }

  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_BLACKHOLE));
  for (int64_t o = 10; o < 15; o++)
    g_assert_cmpint (bg_gate_admit (gate, t, 1, o), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_admit (gate, t, 9, 6), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_position (gate, t, 1), ==, 15);
  g_assert_cmpint (bg_gate_position (gate, t, 9), ==, 7);
  /* Revoked: no position, not reported; resumed: the resume point. */
  bg_gate_partition_revoked (gate, t, 9);
  g_assert_cmpint (bg_gate_position (gate, t, 9), ==, -1);
  {
    g_autoptr (GArray) up = bg_gate_dup_untracked_positions (gate);
    g_assert_cmpuint (up->len, ==, 0);
  }
  bg_gate_partition_resumed (gate, t, 9, 20);
  g_assert_cmpint (bg_gate_position (gate, t, 9), ==, 20);
  g_assert_cmpuint (bg_gate_emitted (gate), ==, 12);
  g_assert_cmpuint (bg_gate_dropped (gate), ==, 6);

  /* A record that would wait is not recorded by try_admit. */
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_UNKNOWN));
  assert_try (gate, t, 0, 10, BG_VERDICT_WAIT);
  g_assert_cmpint (bg_gate_position (gate, t, 0), ==, 10);
  g_assert_cmpuint (bg_gate_emitted (gate) + bg_gate_dropped (gate), ==, 18);
  bg_gate_free (gate);
}

static void
test_wait_reports_since (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *t = bg_gate_topic (gate, "in", 2);
  int64_t before = g_get_monotonic_time ();
  int64_t since = 0;

  g_assert_false (bg_gate_is_waiting (gate, &since));
  Admission *a = admission_start_waiting (gate, t, 0, 1);
  Admission *b = admission_start_waiting (gate, t, 1, 1);
  g_assert_true (bg_gate_is_waiting (gate, &since));
  g_assert_cmpint (since, >=, before);
  g_assert_cmpint (since, <=, g_get_monotonic_time ());
  g_assert_true (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_cmpint (admission_finish (a), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (admission_finish (b), ==, BG_VERDICT_EMIT);
  g_assert_false (bg_gate_is_waiting (gate, NULL));
  bg_gate_free (gate);
}

/* ---- Stress -------------------------------------------------------------------------------- */

/* Every state the swapper puts the gate in drops offsets 100..199: a verdict
 * there that is not DROP came from no snapshot (e.g. lo from one and hi from
 * another). */
#define STRESS_PARTITIONS 3
#define STRESS_CYCLE 300
#define STRESS_FORBIDDEN_LO 100
#define STRESS_FORBIDDEN_HI 200

#if defined(__SANITIZE_ADDRESS__)
#define STRESS_ADMITS 1000000
#else
#define STRESS_ADMITS 3000000
#endif

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  int32_t partition;
  guint64 emitted;
  guint64 dropped;
  guint64 violations;
} StressAdmitter;

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  gint stop;
  guint64 changes;
} StressSwapper;

static gpointer
stress_admit (gpointer data)
{
  StressAdmitter *s = data;
  for (guint64 n = 0; n < STRESS_ADMITS; n++)
    {
      int64_t offset = (int64_t) (n % STRESS_CYCLE);
      BgVerdict v = bg_gate_admit (s->gate, s->topic, s->partition, offset);
      if (v == BG_VERDICT_EMIT)
        s->emitted++;
      else if (v == BG_VERDICT_DROP)
        s->dropped++;
      else
        s->violations++;
      if (v != BG_VERDICT_DROP && offset >= STRESS_FORBIDDEN_LO && offset < STRESS_FORBIDDEN_HI)
        s->violations++;
    }
  return NULL;
}

static void
stress_plan (StressSwapper *s, BgPlanRole role, int64_t barrier, gboolean commit)
{
  g_autofree char *id = g_strdup_printf ("s%" G_GUINT64_FORMAT, s->changes);
  BgPlan *plan = plan_for_all (id, role, "in", STRESS_PARTITIONS, barrier);
  g_assert_true (bg_gate_prepare (s->gate, plan));
  g_assert_true (commit ? bg_gate_commit (s->gate, id) : bg_gate_abort (s->gate, id));
  bg_plan_free (plan);
}

static gpointer
stress_swap (gpointer data)
{
  StressSwapper *s = data;
  BgGateRange low[STRESS_PARTITIONS], high[STRESS_PARTITIONS];

  for (int p = 0; p < STRESS_PARTITIONS; p++)
    {
      low[p] = (BgGateRange) { "in", p, 0, STRESS_FORBIDDEN_LO };
      high[p] = (BgGateRange) { "in", p, STRESS_FORBIDDEN_HI, G_MAXINT64 };
    }
  while (!g_atomic_int_get (&s->stop))
    {
      switch (s->changes % 6)
        {
        case 0:
          g_assert_true (bg_gate_set_ranges (s->gate, 0, 0, low, STRESS_PARTITIONS));
          break;
        case 1:
          g_assert_true (bg_gate_set_ranges (s->gate, 0, 0, high, STRESS_PARTITIONS));
          break;
        case 2:
          g_assert_true (bg_gate_set_mode (s->gate, BG_SINK_MODE_BLACKHOLE));
          break;
        case 3: /* blackhole -> [200, inf) through a plan, holding a partition a while */
          bg_gate_hold_partition (s->gate, s->topic, 0);
          stress_plan (s, BG_PLAN_ROLE_INCOMING, STRESS_FORBIDDEN_HI, TRUE);
          bg_gate_release_partition (s->gate, s->topic, 0);
          break;
        case 4: /* [200, inf) -> [200, 250) */
          stress_plan (s, BG_PLAN_ROLE_OUTGOING, 250, TRUE);
          break;
        case 5: /* an aborted plan changes nothing */
          stress_plan (s, BG_PLAN_ROLE_INCOMING, 120, FALSE);
          break;
        }
      s->changes++;
    }
  return NULL;
}

static void
test_stress (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_BLACKHOLE);
  BgTopic *t = bg_gate_topic (gate, "in", STRESS_PARTITIONS);
  StressAdmitter admitters[STRESS_PARTITIONS];
  GThread *threads[STRESS_PARTITIONS];
  StressSwapper swapper = { .gate = gate, .topic = t };
  guint buffers_before = bg_gate_debug_n_buffers (gate);

  GThread *swap_thread = g_thread_new ("swap", stress_swap, &swapper);
  for (int p = 0; p < STRESS_PARTITIONS; p++)
    {
      admitters[p] = (StressAdmitter) { .gate = gate, .topic = t, .partition = p };
      threads[p] = g_thread_new ("admit", stress_admit, &admitters[p]);
    }
  guint64 emitted = 0, dropped = 0, violations = 0;
  for (int p = 0; p < STRESS_PARTITIONS; p++)
    {
      g_thread_join (threads[p]);
      emitted += admitters[p].emitted;
      dropped += admitters[p].dropped;
      violations += admitters[p].violations;
    }
  g_atomic_int_set (&swapper.stop, 1);
  g_thread_join (swap_thread);

  g_test_message ("%" G_GUINT64_FORMAT " changes, %" G_GUINT64_FORMAT " emitted, %" G_GUINT64_FORMAT
                  " dropped, %" G_GUINT64_FORMAT " snapshots published",
                  swapper.changes, emitted, dropped, bg_gate_debug_n_publishes (gate));
  g_assert_cmpuint (violations, ==, 0);
  g_assert_cmpuint (emitted + dropped, ==, (guint64) STRESS_ADMITS * STRESS_PARTITIONS);
  g_assert_cmpuint (bg_gate_emitted (gate), ==, emitted);
  g_assert_cmpuint (bg_gate_dropped (gate), ==, dropped);
  g_assert_cmpuint (swapper.changes, >, 100);
  g_assert_cmpuint (emitted, >, 0);
  for (int p = 0; p < STRESS_PARTITIONS; p++)
    g_assert_cmpint (bg_gate_position (gate, t, p), ==, (STRESS_ADMITS - 1) % STRESS_CYCLE + 1);
  /* However many snapshots went by, the same two buffers served them. */
  g_assert_cmpuint (bg_gate_debug_n_buffers (gate), ==, buffers_before);
  g_assert_cmpuint (bg_gate_debug_n_buffers (gate), <=, 2);
  bg_gate_free (gate);
}

/* Registering topics grows the snapshot; the buffers kept for late readers
 * grow with the logarithm of the partitions, not with the changes. */
static void
test_buffers_bounded (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);

  for (int i = 0; i < 200; i++)
    {
      g_autofree char *name = g_strdup_printf ("t%d", i);
      BgTopic *t = bg_gate_topic (gate, name, 64);
      g_assert_nonnull (t);
      g_assert_cmpint (bg_gate_admit (gate, t, 63, 1), ==, BG_VERDICT_EMIT);
    }
  for (int i = 0; i < 10000; i++)
    g_assert_true (bg_gate_set_mode (gate, i % 2 ? BG_SINK_MODE_LIVE : BG_SINK_MODE_BLACKHOLE));
  /* 12800 entries from 16: ~10 doublings, two buffers each at most. */
  g_assert_cmpuint (bg_gate_debug_n_buffers (gate), <=, 2 * 11 + 2);
  g_assert_cmpuint (bg_gate_debug_n_publishes (gate), >=, 10200);
  bg_gate_free (gate);
}

/* ---- Exactness at arming ------------------------------------------------------- */

/* A thread admits 0, 1, 2, ... on one partition of a live gate (slowed a
 * little, so it is near the barrier while prepare runs) while the test arms
 * an outgoing plan with a barrier just ahead of its position. Whenever
 * bg_gate_prepare_checked() says the plan was armed without a barrier
 * passed, the thread must never have emitted a record at or past it. */
#define ARMING_ROUNDS 300

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  _Atomic int64_t max_emitted;
  atomic_bool stop;
} ArmingAdmitter;

static gpointer
arming_admit (gpointer data)
{
  ArmingAdmitter *a = data;
  for (int64_t offset = 0; !atomic_load_explicit (&a->stop, memory_order_relaxed); offset++)
    {
      if (bg_gate_admit (a->gate, a->topic, 0, offset) == BG_VERDICT_EMIT)
        atomic_store (&a->max_emitted, offset);
      for (volatile int spin = 0; spin < 20; spin++)
        ;
    }
  return NULL;
}

static void
test_arming_exact (void)
{
  guint armed = 0, past = 0;
  GRand *rand = g_rand_new_with_seed (5);

  for (int round = 0; round < ARMING_ROUNDS; round++)
    {
      ArmingAdmitter a = { .gate = bg_gate_new (BG_SINK_MODE_LIVE), .max_emitted = -1 };
      a.topic = bg_gate_topic (a.gate, "in", 1);
      GThread *thread = g_thread_new ("admit", arming_admit, &a);

      /* Let it run a random while, then put the barrier just ahead of it
       * (sometimes behind it, sometimes far ahead). */
      int64_t start_at = g_rand_int_range (rand, 0, 20000);
      while (bg_gate_position (a.gate, a.topic, 0) < start_at)
        g_thread_yield ();
      int64_t barrier = bg_gate_position (a.gate, a.topic, 0) + g_rand_int_range (rand, -5, 400);
      if (round % 10 == 0)
        barrier += 1000000; /* certainly ahead: an ARMED outcome every tenth round */
      barrier = MAX (barrier, 0);

      g_autofree char *id = g_strdup_printf ("arm%d", round);
      BgPlan *plan = bg_plan_new (id, BG_PLAN_ROLE_OUTGOING, 0);
      bg_plan_add_barrier (plan, "in", 0, barrier);
      char *reason = NULL;
      BgPrepareResult result = bg_gate_prepare_checked (a.gate, plan, &reason);
      bg_plan_free (plan);
      g_assert_cmpint (result, !=, BG_PREPARE_REFUSED);

      if (result == BG_PREPARE_ARMED)
        {
          armed++;
          g_assert_null (reason);
          /* The thread reaches the barrier and waits there (it cannot pass). */
          gboolean waits = wait_for (gate_is_waiting, a.gate);
          gint64 max = atomic_load (&a.max_emitted);
          if (max >= barrier)
            g_error ("round %d: armed at %" G_GINT64_FORMAT " without a barrier passed, "
                     "but offset %" G_GINT64_FORMAT " was emitted", round, barrier, max);
          if (!waits)
            g_error ("round %d: barrier %" G_GINT64_FORMAT ", position %" G_GINT64_FORMAT
                     ", max emitted %" G_GINT64_FORMAT ", not waiting", round, barrier,
                     bg_gate_position (a.gate, a.topic, 0), max);
          g_assert_cmpint (bg_gate_position (a.gate, a.topic, 0), <=, barrier + 1);
        }
      else
        {
          past++;
          g_assert_nonnull (reason);
          g_assert_true (g_str_has_prefix (reason, "past barrier in/0: position "));
          free (reason);
        }
      /* Abort lets it go on past the barrier. */
      int64_t before = bg_gate_position (a.gate, a.topic, 0);
      g_assert_true (bg_gate_abort (a.gate, id));
      while (bg_gate_position (a.gate, a.topic, 0) <= MAX (before, barrier) + 1)
        g_thread_yield ();
      atomic_store (&a.stop, true);
      g_thread_join (thread);
      bg_gate_free (a.gate);
    }
  g_rand_free (rand);
  g_test_message ("%u rounds armed cleanly, %u past the barrier", armed, past);
  g_assert_cmpuint (armed, >=, ARMING_ROUNDS / 10);
}

/* The highest position survives a rebalance that sends positions back. */
static void
test_arming_highest_position (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_LIVE);
  BgTopic *t = bg_gate_topic (gate, "in", 2);

  g_assert_cmpint (bg_gate_admit (gate, t, 1, 100), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_admit (gate, t, 1, 40), ==, BG_VERDICT_EMIT); /* re-read after a rebalance */
  g_assert_cmpint (bg_gate_position (gate, t, 1), ==, 41);

  BgPlan *plan = bg_plan_new ("p", BG_PLAN_ROLE_OUTGOING, 0);
  bg_plan_add_barrier (plan, "in", 0, 0);
  bg_plan_add_barrier (plan, "in", 1, 60);
  char *reason = NULL;
  g_assert_cmpint (bg_gate_prepare_checked (gate, plan, &reason), ==, BG_PREPARE_PAST_BARRIER);
  g_assert_cmpstr (reason, ==, "past barrier in/1: position 101 > 60");
  free (reason);
  /* Armed anyway: only the decision ends it. */
  g_assert_false (bg_gate_set_mode (gate, BG_SINK_MODE_LIVE));
  g_assert_cmpint (bg_gate_prepare_checked (gate, plan, &reason), ==, BG_PREPARE_REFUSED);
  g_assert_cmpstr (reason, ==, "another plan is prepared");
  free (reason);
  g_assert_true (bg_gate_abort (gate, "p"));

  /* A barrier exactly at the highest position is not passed. */
  BgPlan *at = bg_plan_new ("q", BG_PLAN_ROLE_OUTGOING, 0);
  bg_plan_add_barrier (at, "in", 1, 101);
  g_assert_cmpint (bg_gate_prepare_checked (gate, at, &reason), ==, BG_PREPARE_ARMED);
  g_assert_null (reason);
  g_assert_true (bg_gate_abort (gate, "q"));
  bg_plan_free (at);
  bg_plan_free (plan);

  BgGate *unknown = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgPlan *u = bg_plan_new ("u", BG_PLAN_ROLE_INCOMING, 0);
  g_assert_cmpint (bg_gate_prepare_checked (unknown, u, NULL), ==, BG_PREPARE_REFUSED);
  bg_plan_free (u);
  bg_gate_free (unknown);
  bg_gate_free (gate);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/gate/mode/live-blackhole", test_mode_live_blackhole);
  g_test_add_func ("/gate/mode/unknown-waits", test_mode_unknown_waits);
  g_test_add_func ("/gate/topic/handles", test_topic_handles);
  g_test_add_func ("/gate/plan/outgoing-edges", test_plan_outgoing_edges);
  g_test_add_func ("/gate/plan/incoming-edges", test_plan_incoming_edges);
  g_test_add_func ("/gate/plan/abort-restores", test_plan_abort_restores);
  g_test_add_func ("/gate/plan/refusals", test_plan_refusals);
  g_test_add_func ("/gate/plan/topic-registered-later", test_plan_topic_registered_later);
  g_test_add_func ("/gate/plan/chained", test_plan_chained);
  g_test_add_func ("/gate/wait/commit", test_wait_commit);
  g_test_add_func ("/gate/wait/abort", test_wait_abort);
  g_test_add_func ("/gate/wait/deadline-does-not-release", test_wait_deadline_does_not_release);
  g_test_add_func ("/gate/wait/since", test_wait_reports_since);
  g_test_add_func ("/gate/handoff/hold", test_handoff_hold);
  g_test_add_func ("/gate/handoff/abort-clears-holds", test_handoff_abort_clears_holds);
  g_test_add_func ("/gate/side-effects", test_side_effects);
  g_test_add_func ("/gate/set-ranges", test_set_ranges);
  g_test_add_func ("/gate/partition-revoked", test_partition_revoked);
  g_test_add_func ("/gate/progress", test_progress);
  g_test_add_func ("/gate/stress/admit-while-swapping", test_stress);
  g_test_add_func ("/gate/stress/buffers-bounded", test_buffers_bounded);
  g_test_add_func ("/gate/arming/exact-against-admits", test_arming_exact);
  g_test_add_func ("/gate/arming/highest-position", test_arming_highest_position);

  return g_test_run ();
}
