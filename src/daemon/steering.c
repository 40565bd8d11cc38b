/* steering.c — the slots' steering as a function of the protocol's steps
 * (see steering.h and docs/protocol.md, "Steering").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/steering.h"

#include <string.h>

static GVariant *
empty_ranges (void)
{
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(sixx)"), NULL, 0));
}

static GVariant *
empty_holds (void)
{
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(si)"), NULL, 0));
}

static GVariant *
no_plan (void)
{
  return g_variant_ref_sink (g_variant_new ("(sssx@a(six))", "", "", "", (gint64) 0,
                                            g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0)));
}

BgdSteering *
bgd_steering_new (const char *mode)
{
  BgdSteering *s = g_new0 (BgdSteering, 1);

  s->mode = g_strdup (mode);
  s->ranges = empty_ranges ();
  s->plan = no_plan ();
  s->holds = empty_holds ();
  return s;
}

BgdSteering *
bgd_steering_new_full (const char *mode, GVariant *ranges, GVariant *plan, GVariant *holds)
{
  BgdSteering *s = g_new0 (BgdSteering, 1);

  s->mode = g_strdup (mode);
  s->ranges = ranges ? g_variant_ref_sink (ranges) : empty_ranges ();
  s->plan = plan ? g_variant_ref_sink (plan) : no_plan ();
  s->holds = holds ? g_variant_ref_sink (holds) : empty_holds ();
  return s;
}

BgdSteering *
bgd_steering_copy (const BgdSteering *s)
{
  return bgd_steering_new_full (s->mode, s->ranges, s->plan, s->holds);
}

void
bgd_steering_free (BgdSteering *s)
{
  if (s == NULL)
    return;
  g_free (s->mode);
  g_clear_pointer (&s->ranges, g_variant_unref);
  g_clear_pointer (&s->plan, g_variant_unref);
  g_clear_pointer (&s->holds, g_variant_unref);
  g_free (s);
}

gboolean
bgd_steering_equal (const BgdSteering *a, const BgdSteering *b)
{
  return g_strcmp0 (a->mode, b->mode) == 0 && g_variant_equal (a->ranges, b->ranges)
         && g_variant_equal (a->plan, b->plan) && g_variant_equal (a->holds, b->holds);
}

const char *
bgd_steering_plan_id (const BgdSteering *s)
{
  const char *id = "";

  g_variant_get_child (s->plan, 0, "&s", &id);
  return id;
}

const char *
bgd_steering_plan_state (const BgdSteering *s)
{
  const char *state = "";

  g_variant_get_child (s->plan, 2, "&s", &state);
  return state;
}

GVariant *
bgd_steering_to_reply (const BgdSteering *s, guint64 generation)
{
  return g_variant_new ("(s@a(sixx)@(sssxa(six))@a(si)t)", s->mode, s->ranges, s->plan, s->holds, generation);
}

GVariant *
bgd_steering_barriers_variant (const BgdCutoverPlan *plan)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(six)"));
  for (guint i = 0; i < plan->barriers->len; i++)
    {
      const BgControlOffset *o = plan->barriers->pdata[i];
      g_variant_builder_add (&b, "(six)", o->topic, o->partition, o->offset);
    }
  return g_variant_builder_end (&b);
}

static GVariant *
plan_variant (const BgdCutoverPlan *plan, gboolean outgoing, const char *state)
{
  return g_variant_new ("(sssx@a(six))", plan->id, outgoing ? "outgoing" : "incoming", state, plan->deadline,
                        bgd_steering_barriers_variant (plan));
}

/* The result of a step: NULL when it equals @cur. */
static BgdSteering *
changed_or_null (const BgdSteering *cur, BgdSteering *next)
{
  if (bgd_steering_equal (cur, next))
    {
      bgd_steering_free (next);
      return NULL;
    }
  return next;
}

static GVariant *
holds_for_plan (const BgdCutoverPlan *plan)
{
  GVariantBuilder holds;

  g_variant_builder_init (&holds, G_VARIANT_TYPE ("a(si)"));
  for (guint i = 0; i < plan->barriers->len; i++)
    {
      const BgControlOffset *b = plan->barriers->pdata[i];
      /* Every barrier partition, barrier 0 too: the commit may move a
       * barrier up (an instance was past it), and then there is something
       * below it to wait for. One still at 0 is released at the commit. */
      g_variant_builder_add (&holds, "(si)", b->topic, b->partition);
    }
  return g_variant_builder_end (&holds);
}

BgdSteering *
bgd_steering_arm (const BgdSteering *cur, const BgdCutoverPlan *plan, gboolean outgoing)
{
  const char *state = bgd_steering_plan_state (cur);

  /* Never back from a decision to "prepared" (a replay after a restart). */
  if (g_str_equal (bgd_steering_plan_id (cur), plan->id) && !g_str_equal (state, "prepared"))
    return NULL;
  return changed_or_null (cur, bgd_steering_new_full (cur->mode, cur->ranges,
                                                      plan_variant (plan, outgoing, "prepared"),
                                                      outgoing ? NULL : holds_for_plan (plan)));
}

/* The start of the range @cur gives (topic, partition) below @barrier: 0
 * when live, the range's own start when gated (the default entry's for a
 * partition no entry names), @barrier (empty) otherwise. */
static gint64
outgoing_range_start (const BgdSteering *cur, const char *topic, gint32 partition, gint64 barrier)
{
  GVariantIter iter;
  const char *t;
  gint32 p;
  gint64 lo, hi;
  gint64 default_lo = barrier;

  if (g_strcmp0 (cur->mode, "live") == 0)
    return 0;
  if (g_strcmp0 (cur->mode, "gated") != 0)
    return barrier;
  g_variant_iter_init (&iter, cur->ranges);
  while (g_variant_iter_next (&iter, "(&sixx)", &t, &p, &lo, &hi))
    {
      gboolean empty = hi != -1 && lo >= hi;

      if (p == partition && g_str_equal (t, topic))
        return empty ? barrier : MIN (lo, barrier);
      if (p == BGD_STEERING_DEFAULT_PARTITION && !empty)
        default_lo = MIN (lo, barrier);
    }
  return default_lo;
}

BgdSteering *
bgd_steering_commit (const BgdSteering *cur, const BgdCutoverPlan *plan, gboolean outgoing)
{
  GVariantBuilder ranges;

  g_variant_builder_init (&ranges, G_VARIANT_TYPE ("a(sixx)"));
  for (guint i = 0; i < plan->barriers->len; i++)
    {
      const BgControlOffset *b = plan->barriers->pdata[i];

      if (outgoing)
        g_variant_builder_add (&ranges, "(sixx)", b->topic, b->partition,
                               outgoing_range_start (cur, b->topic, b->partition, b->offset), b->offset);
      else
        g_variant_builder_add (&ranges, "(sixx)", b->topic, b->partition, b->offset, (gint64) -1);
    }
  /* The plan's unnamed partitions (implicit barrier 0): incoming's whole. */
  if (!outgoing)
    g_variant_builder_add (&ranges, "(sixx)", BGD_STEERING_DEFAULT_TOPIC, BGD_STEERING_DEFAULT_PARTITION,
                           (gint64) 0, (gint64) -1);
  /* Already committed (a replayed commit): the ranges it gave stand. */
  if (g_str_equal (bgd_steering_plan_id (cur), plan->id) && g_str_equal (bgd_steering_plan_state (cur), "committed"))
    {
      g_variant_builder_clear (&ranges);
      return NULL;
    }
  return changed_or_null (cur, bgd_steering_new_full ("gated", g_variant_builder_end (&ranges),
                                                      plan_variant (plan, outgoing, "committed"),
                                                      outgoing ? empty_holds () : cur->holds));
}

BgdSteering *
bgd_steering_abort (const BgdSteering *cur, const BgdCutoverPlan *plan, gboolean outgoing, gboolean slot_active)
{
  /* Only a slot that carries @plan: a slot that never armed it (arming
   * waited for the previous decision, or failed) keeps the previous plan's
   * decision, which an instance may not have fetched yet: replacing it
   * would leave that instance holding the previous plan armed for good
   * (it never guesses a decision). Write-ahead makes sure a slot restored
   * after a restart carries every plan its instances could have armed. */
  (void) slot_active;
  if (!g_str_equal (bgd_steering_plan_id (cur), plan->id))
    return NULL;
  return changed_or_null (cur, bgd_steering_new_full (cur->mode, cur->ranges,
                                                      plan_variant (plan, outgoing, "aborted"), empty_holds ()));
}

BgdSteering *
bgd_steering_release (const BgdSteering *cur, const char *topic, gint32 partition)
{
  GVariantBuilder holds;
  GVariantIter iter;
  const char *t;
  gint32 p;

  g_variant_builder_init (&holds, G_VARIANT_TYPE ("a(si)"));
  g_variant_iter_init (&iter, cur->holds);
  while (g_variant_iter_next (&iter, "(&si)", &t, &p))
    if (p != partition || !g_str_equal (t, topic))
      g_variant_builder_add (&holds, "(si)", t, p);
  return changed_or_null (cur, bgd_steering_new_full (cur->mode, cur->ranges, cur->plan,
                                                      g_variant_builder_end (&holds)));
}

BgdSteering *
bgd_steering_done_outgoing (const BgdSteering *cur)
{
  return changed_or_null (cur, bgd_steering_new_full ("blackhole", NULL, cur->plan, NULL));
}

gboolean
bgd_steering_decision_unconfirmed (const BgdSteering *cur, const char *id, gboolean active,
                                   guint64 applied_generation, guint64 generation)
{
  const char *pid = bgd_steering_plan_id (cur);

  if (!active || g_str_equal (pid, id) || *pid == '\0' || g_str_equal (bgd_steering_plan_state (cur), "prepared"))
    return FALSE;
  return applied_generation < generation;
}
