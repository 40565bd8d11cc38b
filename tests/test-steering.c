/* test-steering.c — the agent's steering steps (src/daemon/steering.c)
 * applied to real gates the way a job instance applies them
 * (bg_client_apply_steering): what a slot is told at each step of a
 * cutover, and what its instances then emit, drop or hold.
 *
 * Tests: [handoff-hold] (the hold travels with the prepared plan),
 * [new-partition] (a partition no plan names belongs to the live color,
 * never to nobody, never to both), [instance-restart-prepared] (a fresh
 * instance never runs under the base mode alone while a plan is
 * prepared), and replayed steps that must change nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <stdatomic.h>

#include "bluegreen.h"
#include "client-private.h"
#include "daemon/errors.h"
#include "daemon/fleet-plans.h"
#include "daemon/steering.h"
#include "gate-private.h"

#define TOPIC "in"

/* A plan on TOPIC with barriers for partitions 0 .. n-1 at @offsets. */
static BgdCutoverPlan *
plan_new (const char *id, const gint64 *offsets, guint n)
{
  BgdCutoverPlan *p = g_new0 (BgdCutoverPlan, 1);

  p->id = g_strdup (id);
  p->outgoing = BG_COLOR_BLUE;
  p->incoming = BG_COLOR_GREEN;
  p->deadline = G_MAXINT64 / 2;
  p->barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (p->barriers, bg_control_offset_new (TOPIC, (gint32) i, offsets[i]));
  p->state = BGD_CUTOVER_PREPARED;
  return p;
}


/* One job instance: a gate fed the slot's steering as the link feeds it. */
typedef struct {
  BgGate *gate;
  BgTopic *topic;
  GHashTable *holds;
  guint64 generation;
} Instance;

static void
instance_init (Instance *in, guint n_partitions)
{
  in->gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  in->topic = bg_gate_topic (in->gate, TOPIC, (int32_t) n_partitions);
  in->holds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
instance_clear (Instance *in)
{
  g_clear_pointer (&in->gate, bg_gate_free);
  g_clear_pointer (&in->holds, g_hash_table_unref);
}

static void
instance_steer (Instance *in, const BgdSteering *s)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_variant_ref_sink (bgd_steering_to_reply (s, ++in->generation));

  g_assert_true (bg_client_apply_steering (in->gate, reply, in->holds, &error));
  g_assert_no_error (error);
}

/* @cur replaced by @next if the step changed something. */
static void
step (BgdSteering **cur, BgdSteering *next)
{
  if (next == NULL)
    return;
  bgd_steering_free (*cur);
  *cur = next;
}

/* ---- [handoff-hold] ----------------------------------------------------------------- */

/* The incoming side's hold on a partition must be on the gate before any
 * instance can see the commit: arming carries it. After the commit a
 * record at the barrier waits until the partition is released. */
static void
test_handoff_hold (void)
{
  const gint64 barriers[] = { 100, 0 };
  g_autoptr (BgdCutoverPlan) plan = plan_new ("c1", barriers, 2);
  g_autoptr (BgdSteering) in = bgd_steering_new ("blackhole");
  Instance inst = { 0 };

  step (&in, bgd_steering_arm (in, plan, FALSE));
  /* The hold is in the prepared steering itself (not only at the commit),
   * on every barrier partition: the commit may move a barrier of 0 up. */
  g_assert_cmpstr (bgd_steering_plan_state (in), ==, "prepared");
  g_assert_cmpuint (g_variant_n_children (in->holds), ==, 2);
  {
    const char *t;
    gint32 p;
    g_variant_get_child (in->holds, 0, "(&si)", &t, &p);
    g_assert_cmpstr (t, ==, TOPIC);
    g_assert_cmpint (p, ==, 0);
  }

  instance_init (&inst, 2);
  instance_steer (&inst, in);
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 0, 99), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 0, 100), ==, BG_VERDICT_WAIT);

  step (&in, bgd_steering_commit (in, plan, FALSE));
  instance_steer (&inst, in);
  /* Committed, but held: the outgoing side has not delivered below 100.
   * Partition 1's barrier stayed 0: the agent releases it at the commit. */
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 0, 100), ==, BG_VERDICT_WAIT);
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 1, 0), ==, BG_VERDICT_WAIT);
  step (&in, bgd_steering_release (in, TOPIC, 1));
  instance_steer (&inst, in);
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 1, 0), ==, BG_VERDICT_EMIT);

  /* A fresh instance of the incoming side that starts after the commit
   * gets the hold in the same snapshot as its ranges. */
  {
    Instance fresh = { 0 };
    instance_init (&fresh, 2);
    instance_steer (&fresh, in);
    g_assert_cmpint (bg_gate_try_admit (fresh.gate, fresh.topic, 0, 100), ==, BG_VERDICT_WAIT);
    instance_clear (&fresh);
  }

  step (&in, bgd_steering_release (in, TOPIC, 0));
  instance_steer (&inst, in);
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 0, 100), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 0, 99), ==, BG_VERDICT_DROP);
  instance_clear (&inst);
}

/* ---- [new-partition] ---------------------------------------------------------------- */

/* The plan names partitions 0 and 1 of a topic with 3 registered (2 is
 * "added later", or missing from a stale list); partition 5 is beyond what
 * the job registered (untracked). After the commit the incoming side emits
 * them whole and the outgoing side none of them; while prepared both wait
 * there; an instance that emitted there before arming is past a barrier. */
static void
test_new_partition (void)
{
  const gint64 barriers[] = { 50, 50 };
  g_autoptr (BgdCutoverPlan) plan = plan_new ("c1", barriers, 2);
  g_autoptr (BgdSteering) out = bgd_steering_new ("live");
  g_autoptr (BgdSteering) in = bgd_steering_new ("blackhole");
  Instance o = { 0 }, i = { 0 };

  instance_init (&o, 3);
  instance_init (&i, 3);
  instance_steer (&o, out);
  instance_steer (&i, in);

  step (&out, bgd_steering_arm (out, plan, TRUE));
  step (&in, bgd_steering_arm (in, plan, FALSE));
  instance_steer (&o, out);
  instance_steer (&i, in);
  g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 2, 0), ==, BG_VERDICT_WAIT);
  g_assert_cmpint (bg_gate_try_admit (i.gate, i.topic, 2, 0), ==, BG_VERDICT_WAIT);
  g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 5, 7), ==, BG_VERDICT_WAIT);

  step (&out, bgd_steering_commit (out, plan, TRUE));
  step (&in, bgd_steering_commit (in, plan, FALSE));
  instance_steer (&o, out);
  instance_steer (&i, in);
  for (gint64 off = 0; off < 200; off += 37)
    {
      g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 2, off), ==, BG_VERDICT_DROP);
      g_assert_cmpint (bg_gate_try_admit (i.gate, i.topic, 2, off), ==, BG_VERDICT_EMIT);
      g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 5, off), ==, BG_VERDICT_DROP);
      g_assert_cmpint (bg_gate_try_admit (i.gate, i.topic, 5, off), ==, BG_VERDICT_EMIT);
    }
  g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 0, 49), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 0, 50), ==, BG_VERDICT_DROP);

  /* Done: the outgoing side is blackholed; the incoming one keeps them. */
  step (&out, bgd_steering_done_outgoing (out));
  instance_steer (&o, out);
  g_assert_cmpint (bg_gate_try_admit (o.gate, o.topic, 2, 300), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_try_admit (i.gate, i.topic, 2, 300), ==, BG_VERDICT_EMIT);

  /* A restarted incoming instance gets the same ownership. */
  {
    Instance fresh = { 0 };
    instance_init (&fresh, 3);
    instance_steer (&fresh, in);
    g_assert_cmpint (bg_gate_try_admit (fresh.gate, fresh.topic, 2, 0), ==, BG_VERDICT_EMIT);
    g_assert_cmpint (bg_gate_try_admit (fresh.gate, fresh.topic, 7, 0), ==, BG_VERDICT_EMIT);
    instance_clear (&fresh);
  }

  /* The next cutover (back) names partition 2: the side going out keeps
   * what it emitted there from 0, below the new barrier. */
  {
    const gint64 back[] = { 400, 400, 400 };
    g_autoptr (BgdCutoverPlan) plan2 = plan_new ("c2", back, 3);
    g_autoptr (BgdSteering) next = NULL;
    gint32 p;
    gint64 lo, hi;
    const char *t;
    gboolean seen = FALSE;

    plan2->outgoing = BG_COLOR_GREEN;
    plan2->incoming = BG_COLOR_BLUE;
    next = bgd_steering_commit (in, plan2, TRUE);
    g_assert_nonnull (next);
    for (gsize k = 0; k < g_variant_n_children (next->ranges); k++)
      {
        g_variant_get_child (next->ranges, k, "(&sixx)", &t, &p, &lo, &hi);
        if (p == 2)
          {
            seen = TRUE;
            g_assert_cmpint (lo, ==, 0);
            g_assert_cmpint (hi, ==, 400);
          }
        if (p == 0)
          g_assert_cmpint (lo, ==, 50);
      }
    g_assert_true (seen);
  }

  /* An instance that admitted a record on a partition the plan does not
   * name, before arming, cannot arm it exactly. */
  {
    Instance live = { 0 };
    g_autoptr (BgdSteering) l = bgd_steering_new ("live");
    g_autoptr (BgdCutoverPlan) plan3 = plan_new ("c3", barriers, 2);
    g_autofree char *reason = NULL;

    instance_init (&live, 3);
    instance_steer (&live, l);
    g_assert_cmpint (bg_gate_try_admit (live.gate, live.topic, 2, 0), ==, BG_VERDICT_EMIT);
    step (&l, bgd_steering_arm (l, plan3, TRUE));
    instance_steer (&live, l);
    g_assert_true (bg_gate_get_armed (live.gate, "c3", &reason));
    g_assert_nonnull (reason);
    g_test_message ("%s", reason);
    g_assert_nonnull (strstr (reason, "past barrier in/2"));
    instance_clear (&live);
  }
  instance_clear (&o);
  instance_clear (&i);
}

/* ---- [instance-restart-prepared] -------------------------------------------------- */

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  atomic_bool stop;
  atomic_uint emitted_past;
  atomic_uint admits;
} Spinner;

static gpointer
spin (gpointer data)
{
  Spinner *s = data;

  while (!atomic_load (&s->stop))
    {
      /* Offset 10 is at the barrier: it may wait or be dropped, never
       * emitted while the plan is prepared. */
      if (bg_gate_try_admit (s->gate, s->topic, 0, 10) == BG_VERDICT_EMIT)
        atomic_fetch_add (&s->emitted_past, 1);
      atomic_fetch_add (&s->admits, 1);
    }
  return NULL;
}

/* An instance that starts (or restarts) while its slot's plan is prepared
 * fetches a steering whose base is "live" and whose plan holds offsets
 * from 10 on. Applying the base first and the plan after would let a
 * record at the barrier be emitted in between (and the host has already
 * acked). A thread admits all along while the steering is applied to a
 * fresh gate, many times. */
static void
test_instance_restart_prepared (void)
{
  const gint64 barriers[] = { 10 };
  g_autoptr (BgdCutoverPlan) plan = plan_new ("c1", barriers, 1);
  g_autoptr (BgdSteering) out = bgd_steering_new ("live");
  guint rounds = g_test_slow () ? 20000 : 2000;
  guint total_admits = 0;

  step (&out, bgd_steering_arm (out, plan, TRUE));
  for (guint r = 0; r < rounds; r++)
    {
      Instance inst = { 0 };
      Spinner s = { 0 };
      GThread *t;

      instance_init (&inst, 1);
      s.gate = inst.gate;
      s.topic = inst.topic;
      t = g_thread_new ("admit", spin, &s);
      /* Let the thread reach its loop (it sees UNKNOWN: WAIT) first. */
      while (atomic_load (&s.admits) == 0)
        g_thread_yield ();
      instance_steer (&inst, out);
      atomic_store (&s.stop, TRUE);
      g_thread_join (t);
      g_assert_cmpuint (atomic_load (&s.emitted_past), ==, 0);
      total_admits += atomic_load (&s.admits);
      g_assert_cmpint (bg_gate_try_admit (inst.gate, inst.topic, 0, 9), ==, BG_VERDICT_EMIT);
      instance_clear (&inst);
    }
  g_test_message ("%u rounds, %u admits, none emitted at the barrier", rounds, total_admits);
}

/* ---- replayed steps ------------------------------------------------------------------- */

/* A replayed log hands the steps again: they change nothing that a
 * decision already settled. */
static void
test_replayed_steps (void)
{
  const gint64 barriers[] = { 10, 20 };
  g_autoptr (BgdCutoverPlan) plan = plan_new ("c1", barriers, 2);
  g_autoptr (BgdCutoverPlan) other = plan_new ("c0", barriers, 2);
  g_autoptr (BgdSteering) out = bgd_steering_new ("live");
  g_autoptr (BgdSteering) again = NULL;

  step (&out, bgd_steering_arm (out, plan, TRUE));
  g_assert_null (bgd_steering_arm (out, plan, TRUE));
  step (&out, bgd_steering_commit (out, plan, TRUE));
  g_assert_cmpstr (bgd_steering_plan_state (out), ==, "committed");
  /* Never back from a decision to "prepared", never a second commit. */
  g_assert_null (bgd_steering_arm (out, plan, TRUE));
  g_assert_null (bgd_steering_commit (out, plan, TRUE));
  step (&out, bgd_steering_done_outgoing (out));
  g_assert_null (bgd_steering_done_outgoing (out));
  /* An abort of another plan while this slot has one prepared: ignored. */
  {
    g_autoptr (BgdSteering) p = bgd_steering_new ("live");
    step (&p, bgd_steering_arm (p, plan, TRUE));
    g_assert_null (bgd_steering_abort (p, other, TRUE, TRUE));
  }
}

/* A control message of @type for cutover @id (prepare: blue -> green with
 * barriers @offsets on partitions 0 .. n-1; commit: final barriers). */
static BgControlMessage *
message (BgControlType type, const char *id, const gint64 *offsets, guint n)
{
  BgControlMessage *m = bg_control_message_new (type, "a", 1);

  m->job = g_strdup ("counts");
  m->id = g_strdup (id);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (m->barriers, bg_control_offset_new (TOPIC, (gint32) i, offsets[i]));
  if (type == BG_CONTROL_PREPARE)
    g_ptr_array_add (m->participants, g_strdup ("a"));
  return m;
}

static void
feed (BgdFleetPlans *f, BgControlType type, const char *id, const gint64 *offsets, guint n)
{
  g_autoptr (BgControlMessage) m = message (type, id, offsets, n);

  bgd_fleet_plans_handle (f, m);
}

/* What a host that took no part in a cutover knows of it: the last
 * committed plan with its final barriers, the first decision counting;
 * it survives the state file. A late host's slot joining the live color
 * is steered with it exactly as the participants' incoming slots. */
static void
test_fleet_plans (void)
{
  const gint64 prepared[] = { 10, 20 }, final[] = { 15, 5 }, other[] = { 30, 40 };
  g_autoptr (BgdFleetPlans) f = bgd_fleet_plans_new ();
  g_autoptr (BgdFleetPlans) g = bgd_fleet_plans_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  const BgdCutoverPlan *last;

  g_assert_null (bgd_fleet_plans_last_committed (f));
  g_assert_null (bgd_fleet_plans_to_string (f));
  /* A decision for a prepare never read (before the log's start). */
  feed (f, BG_CONTROL_COMMIT, "c0", final, 2);
  g_assert_null (bgd_fleet_plans_last_committed (f));

  feed (f, BG_CONTROL_PREPARE, "c1", prepared, 2);
  g_assert_null (bgd_fleet_plans_last_committed (f));
  g_assert_true (bgd_fleet_plans_handed_over (f));
  feed (f, BG_CONTROL_COMMIT, "c1", final, 2);
  /* Committed, not handed over until a done named each partition. */
  g_assert_false (bgd_fleet_plans_handed_over (f));
  {
    g_autoptr (BgControlMessage) done = message (BG_CONTROL_DONE, "c1", NULL, 0);
    g_ptr_array_add (done->partitions, bg_control_partition_new (TOPIC, 0));
    bgd_fleet_plans_handle (f, done);
  }
  g_assert_false (bgd_fleet_plans_handed_over (f));
  /* The state file keeps what was handed over so far. */
  {
    g_autofree char *partial = bgd_fleet_plans_to_string (f);
    g_autoptr (BgdFleetPlans) h = bgd_fleet_plans_new ();
    g_autoptr (BgControlMessage) done = message (BG_CONTROL_DONE, "c1", NULL, 0);

    g_assert_true (bgd_fleet_plans_restore (h, partial, &error));
    g_assert_no_error (error);
    g_assert_false (bgd_fleet_plans_handed_over (h));
    g_ptr_array_add (done->partitions, bg_control_partition_new (TOPIC, 1));
    bgd_fleet_plans_handle (h, done);
    g_assert_true (bgd_fleet_plans_handed_over (h));
    bgd_fleet_plans_handle (f, done);
  }
  g_assert_true (bgd_fleet_plans_handed_over (f));
  last = bgd_fleet_plans_last_committed (f);
  g_assert_nonnull (last);
  g_assert_cmpstr (last->id, ==, "c1");
  g_assert_cmpint (last->incoming, ==, BG_COLOR_GREEN);
  /* Final barriers move up, never down. */
  g_assert_cmpint (((BgControlOffset *) last->barriers->pdata[0])->offset, ==, 15);
  g_assert_cmpint (((BgControlOffset *) last->barriers->pdata[1])->offset, ==, 20);

  /* An aborted attempt changes nothing, and a commit after its abort does
   * not count (the first decision does, on every host). */
  feed (f, BG_CONTROL_PREPARE, "c2", other, 2);
  feed (f, BG_CONTROL_ABORT, "c2", NULL, 0);
  feed (f, BG_CONTROL_COMMIT, "c2", other, 2);
  g_assert_cmpstr (bgd_fleet_plans_last_committed (f)->id, ==, "c1");
  /* A replayed prepare and commit of c1 change nothing either. */
  feed (f, BG_CONTROL_PREPARE, "c1", other, 2);
  feed (f, BG_CONTROL_COMMIT, "c1", other, 2);
  g_assert_cmpint (((BgControlOffset *) bgd_fleet_plans_last_committed (f)->barriers->pdata[0])->offset, ==, 15);

  /* The state file's form. */
  text = bgd_fleet_plans_to_string (f);
  g_assert_nonnull (text);
  g_assert_true (bgd_fleet_plans_restore (g, text, &error));
  g_assert_no_error (error);
  {
    g_autofree char *again = bgd_fleet_plans_to_string (g);
    g_assert_cmpstr (again, ==, text);
  }
  g_assert_false (bgd_fleet_plans_restore (g, "('c9', 'blue', 'blue', @a(six) [], @a(si) [])", &error));
  g_assert_error (error, BGD_ERROR, BGD_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (bgd_fleet_plans_restore (g, "garbage", &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpstr (bgd_fleet_plans_last_committed (g)->id, ==, "c1");

  /* A slot joining green: the participants' incoming steering. */
  {
    g_autoptr (BgdSteering) participant = bgd_steering_new ("blackhole");
    g_autoptr (BgdSteering) late = NULL;
    g_autoptr (BgdCutoverPlan) plan = plan_new ("c1", prepared, 2);
    g_autoptr (BgdSteering) base = bgd_steering_new ("live");

    ((BgControlOffset *) plan->barriers->pdata[0])->offset = 15;
    step (&participant, bgd_steering_arm (participant, plan, FALSE));
    step (&participant, bgd_steering_commit (participant, plan, FALSE));
    late = bgd_steering_commit (base, bgd_fleet_plans_last_committed (g), FALSE);
    g_assert_nonnull (late);
    g_assert_cmpstr (late->mode, ==, "gated");
    g_assert_true (g_variant_equal (late->ranges, participant->ranges));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/steering/[handoff-hold]", test_handoff_hold);
  g_test_add_func ("/steering/[new-partition]", test_new_partition);
  g_test_add_func ("/steering/[instance-restart-prepared]", test_instance_restart_prepared);
  g_test_add_func ("/steering/replayed-steps", test_replayed_steps);
  g_test_add_func ("/steering/[join-late]/fleet-plans", test_fleet_plans);
  return g_test_run ();
}
