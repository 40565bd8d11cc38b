/* fleet-plans.c — the last cutover of a job the control log committed (see
 * fleet-plans.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/fleet-plans.h"

#include "daemon/errors.h"
#include "daemon/steering.h"

/* Prepares read and not decided yet, at most; beyond, the oldest is
 * forgotten (a flood of garbage prepares must not grow the agent; a real
 * fleet has one in flight per job). */
#define PENDING_MAX 16
/* Decided ids remembered, so that a second decision for one is ignored. */
#define DECIDED_MAX 64

struct _BgdFleetPlans {
  GQueue pending;   /* of BgdCutoverPlan*, oldest first */
  GQueue decided;   /* of char* ids, oldest first */
  BgdCutoverPlan *committed;
  /* Its barrier partitions handed over ("topic:partition"): named by a
   * done of it, or at a final barrier of 0. */
  GHashTable *released;
};

static char *
partition_key (const char *topic, gint32 partition)
{
  return g_strdup_printf ("%s:%d", topic, partition);
}

static BgdCutoverPlan *
plan_new (const char *id, BgColor outgoing, BgColor incoming)
{
  BgdCutoverPlan *p = g_new0 (BgdCutoverPlan, 1);

  p->id = g_strdup (id);
  p->outgoing = outgoing;
  p->incoming = incoming;
  p->barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  return p;
}

BgdFleetPlans *
bgd_fleet_plans_new (void)
{
  BgdFleetPlans *f = g_new0 (BgdFleetPlans, 1);

  g_queue_init (&f->pending);
  g_queue_init (&f->decided);
  f->released = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return f;
}

void
bgd_fleet_plans_free (BgdFleetPlans *f)
{
  if (f == NULL)
    return;
  g_queue_clear_full (&f->pending, (GDestroyNotify) bgd_cutover_plan_free);
  g_queue_clear_full (&f->decided, g_free);
  bgd_cutover_plan_free (f->committed);
  g_hash_table_unref (f->released);
  g_free (f);
}

static gboolean
is_decided (BgdFleetPlans *f, const char *id)
{
  return g_queue_find_custom (&f->decided, id, (GCompareFunc) g_strcmp0) != NULL;
}

static void
remember_decided (BgdFleetPlans *f, const char *id)
{
  g_queue_push_tail (&f->decided, g_strdup (id));
  while (f->decided.length > DECIDED_MAX)
    g_free (g_queue_pop_head (&f->decided));
}

static BgdCutoverPlan *
take_pending (BgdFleetPlans *f, const char *id)
{
  for (GList *l = f->pending.head; l != NULL; l = l->next)
    {
      BgdCutoverPlan *p = l->data;

      if (g_str_equal (p->id, id))
        {
          g_queue_delete_link (&f->pending, l);
          return p;
        }
    }
  return NULL;
}

static void
handle_prepare (BgdFleetPlans *f, const BgControlMessage *msg)
{
  BgdCutoverPlan *p;

  if (is_decided (f, msg->id) || (f->committed != NULL && g_str_equal (f->committed->id, msg->id)))
    return;
  for (GList *l = f->pending.head; l != NULL; l = l->next)
    if (g_str_equal (((BgdCutoverPlan *) l->data)->id, msg->id))
      return;
  p = plan_new (msg->id, msg->outgoing, msg->incoming);
  for (guint i = 0; i < msg->barriers->len; i++)
    {
      const BgControlOffset *b = msg->barriers->pdata[i];
      g_ptr_array_add (p->barriers, bg_control_offset_new (b->topic, b->partition, b->offset));
    }
  g_queue_push_tail (&f->pending, p);
  while (f->pending.length > PENDING_MAX)
    bgd_cutover_plan_free (g_queue_pop_head (&f->pending));
}

static void
handle_decision (BgdFleetPlans *f, const BgControlMessage *msg)
{
  BgdCutoverPlan *p;

  if (is_decided (f, msg->id))
    return;
  p = take_pending (f, msg->id);
  if (p == NULL)
    return;   /* a decision for a prepare not read (before the log's start) */
  remember_decided (f, msg->id);
  if (msg->type != BG_CONTROL_COMMIT)
    {
      bgd_cutover_plan_free (p);
      return;
    }
  /* The final barriers: the prepared ones, moved up where the commit says
   * so (as the participants' machines do, cutover.c decide()). */
  for (guint i = 0; i < msg->barriers->len; i++)
    {
      const BgControlOffset *c = msg->barriers->pdata[i];

      for (guint j = 0; j < p->barriers->len; j++)
        {
          BgControlOffset *b = p->barriers->pdata[j];

          if (b->partition == c->partition && g_str_equal (b->topic, c->topic) && c->offset > b->offset)
            b->offset = c->offset;
        }
    }
  bgd_cutover_plan_free (f->committed);
  f->committed = p;
  g_hash_table_remove_all (f->released);
  for (guint j = 0; j < p->barriers->len; j++)
    {
      const BgControlOffset *b = p->barriers->pdata[j];

      if (b->offset == 0)
        g_hash_table_add (f->released, partition_key (b->topic, b->partition));
    }
}

static void
handle_done (BgdFleetPlans *f, const BgControlMessage *msg)
{
  if (f->committed == NULL || !g_str_equal (f->committed->id, msg->id))
    return;
  for (guint i = 0; i < msg->partitions->len; i++)
    {
      const BgControlPartition *q = msg->partitions->pdata[i];

      g_hash_table_add (f->released, partition_key (q->topic, q->partition));
    }
}

void
bgd_fleet_plans_handle (BgdFleetPlans *f, const BgControlMessage *msg)
{
  switch (msg->type)
    {
    case BG_CONTROL_PREPARE:
      handle_prepare (f, msg);
      break;
    case BG_CONTROL_COMMIT:
    case BG_CONTROL_ABORT:
      handle_decision (f, msg);
      break;
    case BG_CONTROL_DONE:
      handle_done (f, msg);
      break;
    default:
      break;
    }
}

const BgdCutoverPlan *
bgd_fleet_plans_last_committed (BgdFleetPlans *f)
{
  return f->committed;
}

gboolean
bgd_fleet_plans_handed_over (BgdFleetPlans *f)
{
  if (f->committed == NULL)
    return TRUE;
  for (guint i = 0; i < f->committed->barriers->len; i++)
    {
      const BgControlOffset *b = f->committed->barriers->pdata[i];
      g_autofree char *key = partition_key (b->topic, b->partition);

      if (!g_hash_table_contains (f->released, key))
        return FALSE;
    }
  return TRUE;
}

char *
bgd_fleet_plans_to_string (BgdFleetPlans *f)
{
  g_autoptr(GVariant) v = NULL;
  GVariantBuilder released;

  if (f->committed == NULL)
    return NULL;
  g_variant_builder_init (&released, G_VARIANT_TYPE ("a(si)"));
  for (guint i = 0; i < f->committed->barriers->len; i++)
    {
      const BgControlOffset *b = f->committed->barriers->pdata[i];
      g_autofree char *k = partition_key (b->topic, b->partition);

      if (g_hash_table_contains (f->released, k))
        g_variant_builder_add (&released, "(si)", b->topic, b->partition);
    }
  v = g_variant_ref_sink (g_variant_new ("(sss@a(six)a(si))", f->committed->id,
                                         bg_color_to_string (f->committed->outgoing),
                                         bg_color_to_string (f->committed->incoming),
                                         bgd_steering_barriers_variant (f->committed), &released));
  return g_variant_print (v, TRUE);
}

gboolean
bgd_fleet_plans_restore (BgdFleetPlans *f, const char *text, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  g_autoptr(GVariantIter) released = NULL;
  const char *id, *out_s, *in_s, *topic;
  BgColor out, in;
  gint32 partition;
  gint64 offset;
  BgdCutoverPlan *p;

  v = g_variant_parse (G_VARIANT_TYPE ("(sssa(six)a(si))"), text, NULL, NULL, error);
  if (v == NULL)
    return FALSE;
  g_variant_get (v, "(&s&s&sa(six)a(si))", &id, &out_s, &in_s, &iter, &released);
  if (!bg_color_from_string (out_s, &out) || !bg_color_from_string (in_s, &in) || out == in || *id == '\0')
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_FAILED,
                   "a committed plan needs an id and two different colors: '%s'", text);
      return FALSE;
    }
  p = plan_new (id, out, in);
  while (g_variant_iter_next (iter, "(&six)", &topic, &partition, &offset))
    g_ptr_array_add (p->barriers, bg_control_offset_new (topic, partition, offset));
  bgd_cutover_plan_free (f->committed);
  f->committed = p;
  g_hash_table_remove_all (f->released);
  while (g_variant_iter_next (released, "(&si)", &topic, &partition))
    g_hash_table_add (f->released, partition_key (topic, partition));
  return TRUE;
}
