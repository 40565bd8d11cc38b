/* plan.c — a cutover plan as the agent hands it to the gate: an id, this
 * slot's role, an informative deadline and barrier offsets per
 * (topic, partition). The gate copies what it needs when it arms the plan.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bluegreen.h"
#include "gate-private.h"

static GHashTable *
barrier_table_new (void)
{
  return g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
}

BgPlan *
bg_plan_new (const char *id, BgPlanRole role, int64_t deadline_us)
{
  g_return_val_if_fail (id != NULL && *id != '\0', NULL);
  g_return_val_if_fail (role == BG_PLAN_ROLE_OUTGOING || role == BG_PLAN_ROLE_INCOMING, NULL);

  BgPlan *plan = g_new0 (BgPlan, 1);
  plan->id = g_strdup (id);
  plan->role = role;
  plan->deadline_us = deadline_us;
  plan->barriers = barrier_table_new ();
  return plan;
}

void
bg_plan_free (BgPlan *plan)
{
  if (plan == NULL)
    return;
  g_hash_table_unref (plan->barriers);
  g_free (plan->id);
  g_free (plan);
}

bool
bg_plan_add_barrier (BgPlan *plan, const char *topic, int32_t partition, int64_t offset)
{
  g_return_val_if_fail (plan != NULL, false);

  if (topic == NULL || *topic == '\0' || partition < 0 || offset < 0)
    return false;
  gint64 key = bg_part_key (g_quark_from_string (topic), partition);
  /* A second barrier for the same partition replaces the first: the plan
   * the coordinator wrote has one barrier per partition. */
  g_hash_table_insert (plan->barriers, g_memdup2 (&key, sizeof key),
                       g_memdup2 (&offset, sizeof offset));
  return true;
}

GHashTable *
bg_plan_dup_barriers (const BgPlan *plan)
{
  GHashTable *copy = barrier_table_new ();
  GHashTableIter iter;
  gpointer k, v;

  g_hash_table_iter_init (&iter, plan->barriers);
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_hash_table_insert (copy, g_memdup2 (k, sizeof (gint64)), g_memdup2 (v, sizeof (gint64)));
  return copy;
}
