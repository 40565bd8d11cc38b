/* membership.c — sticky job membership from hello/leave/evict (see
 * membership.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/membership.h"

typedef struct {
  gboolean ready[BG_N_COLORS];
  /* The slot has a unit (starting, running or stopping): not stopped, not
   * failed. */
  gboolean running[BG_N_COLORS];
  char *version[BG_N_COLORS];
  BgSinkMode sink_mode[BG_N_COLORS];
  gboolean has_live_color;
  BgColor live_color;
  gint64 ts;  /* of the hello these come from; 0: restored, not heard yet */
} MemberEntry;

static void
member_entry_free (MemberEntry *e)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    g_free (e->version[c]);
  g_free (e);
}

/* Undecided prepares remembered per job at most (a garbage flood must not
 * grow the agent); the oldest deadline is forgotten first. */
#define PENDING_MAX 16
/* A prepare nobody decided is forgotten this long after its deadline
 * (someone appends abort at the deadline; this only bounds garbage). */
#define PENDING_GRACE_USEC (60 * G_USEC_PER_SEC)

struct _BgdMembership {
  GHashTable *last_seen; /* host → gint64* */
  GHashTable *jobs;      /* job → (host → MemberEntry*) */
  GHashTable *pending;   /* job → (cutover id → gint64* deadline): prepared, undecided */
};

BgdMembership *
bgd_membership_new (void)
{
  BgdMembership *m = g_new0 (BgdMembership, 1);

  m->last_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify) g_hash_table_unref);
  m->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_hash_table_unref);
  return m;
}

void
bgd_membership_free (BgdMembership *m)
{
  if (m == NULL)
    return;
  g_hash_table_unref (m->last_seen);
  g_hash_table_unref (m->jobs);
  g_hash_table_unref (m->pending);
  g_free (m);
}

static GHashTable *
job_members (BgdMembership *m, const char *job, gboolean create)
{
  GHashTable *t = g_hash_table_lookup (m->jobs, job);

  if (t == NULL && create)
    {
      if (g_hash_table_size (m->jobs) >= BGD_MEMBERSHIP_MAX_JOBS)
        {
          g_message ("membership: %u jobs known already; job %s ignored", BGD_MEMBERSHIP_MAX_JOBS, job);
          return NULL;
        }
      t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) member_entry_free);
      g_hash_table_insert (m->jobs, g_strdup (job), t);
    }
  return t;
}

static void
evict_stalest_host (BgdMembership *m)
{
  GHashTableIter iter;
  gpointer key, value;
  const char *stalest = NULL;
  gint64 oldest = G_MAXINT64;

  g_hash_table_iter_init (&iter, m->last_seen);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (*(gint64 *) value < oldest)
      {
        oldest = *(gint64 *) value;
        stalest = key;
      }
  if (stalest != NULL)
    {
      g_debug ("membership: too many hosts heard of; forgetting when %s was last seen", stalest);
      g_hash_table_remove (m->last_seen, stalest);
    }
}

static void
handle_hello (BgdMembership *m, const BgControlMessage *msg)
{
  gint64 *seen = g_hash_table_lookup (m->last_seen, msg->host);

  if (seen == NULL)
    {
      /* Full: forget the host heard of longest ago rather than refuse the
       * newcomer — otherwise a burst of hellos from made-up hosts would
       * lock every later host out for good. Forgetting a last-seen time
       * only makes that host look silent until its next hello; its sticky
       * job membership (the tables below) is untouched. */
      if (g_hash_table_size (m->last_seen) >= BGD_MEMBERSHIP_MAX_HOSTS * 4)
        evict_stalest_host (m);
      seen = g_new0 (gint64, 1);
      g_hash_table_insert (m->last_seen, g_strdup (msg->host), seen);
    }
  *seen = MAX (*seen, msg->ts);

  for (guint i = 0; i < msg->jobs->len; i++)
    {
      const BgControlJob *j = msg->jobs->pdata[i];
      GHashTable *members = job_members (m, j->job, TRUE);
      MemberEntry *e;

      if (members == NULL)
        continue;
      e = g_hash_table_lookup (members, msg->host);

      if (e == NULL)
        {
          if (g_hash_table_size (members) >= BGD_MEMBERSHIP_MAX_HOSTS)
            {
              g_message ("membership: job %s has %u hosts already; %s ignored", j->job,
                         BGD_MEMBERSHIP_MAX_HOSTS, msg->host);
              continue;
            }
          e = g_new0 (MemberEntry, 1);
          g_hash_table_insert (members, g_strdup (msg->host), e);
          g_info ("membership: %s hosts job %s", msg->host, j->job);
        }
      /* A replayed older hello (the log is read again from a pinned
       * offset) does not overwrite what a newer one said. */
      if (msg->ts < e->ts)
        continue;
      e->ts = msg->ts;
      e->has_live_color = j->has_live_color;
      e->live_color = j->live_color;
      for (guint c = 0; c < BG_N_COLORS; c++)
        {
          e->ready[c] = e->running[c] = FALSE;
          e->sink_mode[c] = BG_SINK_MODE_UNKNOWN;
          g_clear_pointer (&e->version[c], g_free);
        }
      for (guint s = 0; s < j->slots->len; s++)
        {
          const BgControlSlot *slot = j->slots->pdata[s];
          e->ready[slot->color] = slot->ready;
          e->sink_mode[slot->color] = slot->sink_mode;
          e->running[slot->color] = slot->state != NULL && !g_str_equal (slot->state, "stopped")
                                    && !g_str_equal (slot->state, "failed");
          g_free (e->version[slot->color]);
          e->version[slot->color] = g_strdup (slot->version);
        }
    }
}

static void
remove_member (BgdMembership *m, const char *job, const char *host, const char *why)
{
  GHashTable *members = job_members (m, job, FALSE);

  if (members != NULL && g_hash_table_remove (members, host))
    g_message ("membership: %s no longer hosts job %s (%s)", host, job, why);
}

/* Prepares of jobs known from hellos, until their first decision: a
 * host that is not a participant (it joins late) must know that the
 * fleet is cutting over. */
static void
note_prepare (BgdMembership *m, const BgControlMessage *msg)
{
  GHashTable *ids;

  if (msg->job == NULL || msg->id == NULL || job_members (m, msg->job, FALSE) == NULL)
    return;
  ids = g_hash_table_lookup (m->pending, msg->job);
  if (ids == NULL)
    {
      ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_hash_table_insert (m->pending, g_strdup (msg->job), ids);
    }
  if (g_hash_table_size (ids) >= PENDING_MAX)
    {
      GHashTableIter iter;
      gpointer key, value;
      const char *oldest = NULL;
      gint64 first = G_MAXINT64;

      g_hash_table_iter_init (&iter, ids);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (*(gint64 *) value < first)
          {
            first = *(gint64 *) value;
            oldest = key;
          }
      g_hash_table_remove (ids, oldest);
    }
  g_hash_table_replace (ids, g_strdup (msg->id), g_memdup2 (&msg->deadline, sizeof msg->deadline));
}

static void
note_decision (BgdMembership *m, const BgControlMessage *msg)
{
  GHashTable *ids = msg->job != NULL ? g_hash_table_lookup (m->pending, msg->job) : NULL;

  if (ids != NULL && msg->id != NULL)
    g_hash_table_remove (ids, msg->id);
}

void
bgd_membership_handle (BgdMembership *m, const BgControlMessage *msg)
{
  switch (msg->type)
    {
    case BG_CONTROL_PREPARE:
      note_prepare (m, msg);
      break;
    case BG_CONTROL_COMMIT:
    case BG_CONTROL_ABORT:
      note_decision (m, msg);
      break;
    case BG_CONTROL_HELLO:
      handle_hello (m, msg);
      break;
    case BG_CONTROL_LEAVE:
      remove_member (m, msg->job, msg->host, "left");
      break;
    case BG_CONTROL_EVICT:
      remove_member (m, msg->job, msg->evicted_host, "evicted");
      break;
    default:
      break;
    }
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

char **
bgd_membership_expected (BgdMembership *m, const char *job, const char *const *static_hosts,
                         const char *self)
{
  g_autoptr(GPtrArray) hosts = g_ptr_array_new ();
  GHashTable *members = job_members (m, job, FALSE);

  if (static_hosts != NULL && static_hosts[0] != NULL)
    for (guint i = 0; static_hosts[i] != NULL; i++)
      g_ptr_array_add (hosts, g_strdup (static_hosts[i]));
  else
    {
      GHashTableIter iter;
      gpointer key;

      if (members != NULL)
        {
          g_hash_table_iter_init (&iter, members);
          while (g_hash_table_iter_next (&iter, &key, NULL))
            g_ptr_array_add (hosts, g_strdup (key));
        }
    }
  if (self != NULL)
    {
      gboolean found = FALSE;
      for (guint i = 0; i < hosts->len && !found; i++)
        found = g_str_equal (hosts->pdata[i], self);
      if (!found)
        g_ptr_array_add (hosts, g_strdup (self));
    }
  g_ptr_array_sort (hosts, compare_strings);
  g_ptr_array_add (hosts, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&hosts), FALSE);
}

gint64
bgd_membership_last_seen (BgdMembership *m, const char *host)
{
  const gint64 *seen = g_hash_table_lookup (m->last_seen, host);

  return seen ? *seen : 0;
}

gboolean
bgd_membership_slot_ready (BgdMembership *m, const char *job, const char *host, BgColor color)
{
  GHashTable *members = job_members (m, job, FALSE);
  const MemberEntry *e = members ? g_hash_table_lookup (members, host) : NULL;

  return e != NULL && e->ready[color];
}

gboolean
bgd_membership_slot_running (BgdMembership *m, const char *job, const char *host, BgColor color)
{
  GHashTable *members = job_members (m, job, FALSE);
  const MemberEntry *e = members ? g_hash_table_lookup (members, host) : NULL;

  return e != NULL && e->running[color];
}

char **
bgd_membership_members (BgdMembership *m, const char *job)
{
  return bgd_membership_expected (m, job, NULL, NULL);
}

void
bgd_membership_restore (BgdMembership *m, const char *job, const char *const *hosts)
{
  GHashTable *members;

  if (hosts == NULL || hosts[0] == NULL)
    return;
  members = job_members (m, job, TRUE);
  if (members == NULL)
    return;
  for (guint i = 0; hosts[i] != NULL; i++)
    {
      if (g_hash_table_contains (members, hosts[i]))
        continue;
      if (g_hash_table_size (members) >= BGD_MEMBERSHIP_MAX_HOSTS)
        break;
      g_hash_table_insert (members, g_strdup (hosts[i]), g_new0 (MemberEntry, 1));
      g_info ("membership: %s hosts job %s (remembered from before this agent's restart)", hosts[i], job);
    }
}

gboolean
bgd_membership_fleet_settled (BgdMembership *m, const char *job, const char *self)
{
  GHashTable *members = job_members (m, job, FALSE);
  GHashTableIter iter;
  gpointer key, value;
  gboolean have_color = FALSE;
  BgColor color = BG_COLOR_BLUE;

  GHashTable *ids = g_hash_table_lookup (m->pending, job);
  gint64 now = g_get_real_time ();

  if (ids != NULL)
    {
      g_hash_table_iter_init (&iter, ids);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (now < *(gint64 *) value + PENDING_GRACE_USEC)
          return FALSE;
    }
  if (members == NULL)
    return TRUE;
  g_hash_table_iter_init (&iter, members);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const MemberEntry *e = value;
      BgColor other;

      if (g_strcmp0 (key, self) == 0 || !e->has_live_color)
        continue;
      if (have_color && e->live_color != color)
        return FALSE;
      have_color = TRUE;
      color = e->live_color;
      other = bg_color_other (e->live_color);
      if (e->running[other] && e->sink_mode[other] == BG_SINK_MODE_GATED)
        return FALSE;
    }
  return TRUE;
}

gboolean
bgd_membership_fleet_live (BgdMembership *m, const char *job, const char *self, BgColor *color,
                           char **version)
{
  GHashTable *members = job_members (m, job, FALSE);
  const MemberEntry *newest = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (members == NULL)
    return FALSE;
  g_hash_table_iter_init (&iter, members);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const MemberEntry *e = value;

      if (g_strcmp0 (key, self) == 0 || !e->has_live_color || !e->running[e->live_color]
          || e->version[e->live_color] == NULL)
        continue;
      if (newest == NULL || e->ts > newest->ts)
        newest = e;
    }
  if (newest == NULL)
    return FALSE;
  *color = newest->live_color;
  if (version != NULL)
    *version = g_strdup (newest->version[newest->live_color]);
  return TRUE;
}
