/* cutover.c — the cutover state machine of one job (see cutover.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/cutover.h"

#include <string.h>

struct _BgdCutover {
  char *host;
  char *job;
  const BgdCutoverOps *ops;
  gpointer data;
  gboolean replaying;
  guint max_attempts;

  BgdCutoverPlan *plan;     /* the current or last plan */
  GHashTable *acks;         /* hosts that acked the current plan */
  gboolean answered;        /* this host's ack/nack is in the log (or sent) */
  gboolean nacked;          /* ... and it was (or one of them was) a nack */
  gboolean decision_sent;   /* this host appended a decision for the plan */
  gboolean armed[BG_N_COLORS];
  gboolean armed_answered[BG_N_COLORS];
  /* "partition:topic" → gint64: the highest position a local instance
   * had admitted past that barrier when it armed (both colors). */
  GHashTable *armed_past;
  /* The coordinator's: the same, from every ack read. */
  GHashTable *acked_past;
  GHashTable *released;     /* "partition:topic" handed over */
  GHashTable *done_sent;    /* "partition:topic" this host announced */
  char *nack_reason;        /* the first nack read for the current plan */
  guint deadline_source;
  guint done_source;        /* a batched done waiting for its interval */
  gint64 last_done;         /* monotonic µs of this host's last done */
  const BgdCutoverClock *clock; /* NULL: GLib's */
  gpointer clock_data;

  /* id → "commit"/"abort" of decided plans, the oldest dropped first. */
  GHashTable *decided;
  GQueue decided_order;
  /* Prepares seen and ignored (another in flight, not a participant),
   * the oldest dropped first. */
  GHashTable *ignored;
  GQueue ignored_order;
};

const char *
bgd_cutover_state_to_string (BgdCutoverState state)
{
  switch (state)
    {
    case BGD_CUTOVER_IDLE: return "idle";
    case BGD_CUTOVER_PREPARED: return "prepared";
    case BGD_CUTOVER_COMMITTED: return "committed";
    case BGD_CUTOVER_ABORTED: return "aborted";
    case BGD_CUTOVER_DONE: return "done";
    default: g_assert_not_reached ();
    }
}

static gint64
cut_real_time (BgdCutover *cut)
{
  return cut->clock != NULL ? cut->clock->real_time (cut->clock_data) : g_get_real_time ();
}

static gint64
cut_monotonic_time (BgdCutover *cut)
{
  return cut->clock != NULL ? cut->clock->monotonic_time (cut->clock_data) : g_get_monotonic_time ();
}

static guint
cut_timeout_add (BgdCutover *cut, guint ms, GSourceFunc func)
{
  return cut->clock != NULL ? cut->clock->timeout_add (cut->clock_data, ms, func, cut)
                            : g_timeout_add (ms, func, cut);
}

static void
cut_clear_source (BgdCutover *cut, guint *id)
{
  if (*id == 0)
    return;
  if (cut->clock != NULL)
    cut->clock->source_remove (cut->clock_data, *id);
  else
    g_source_remove (*id);
  *id = 0;
}

void
bgd_cutover_set_clock (BgdCutover *cut, const BgdCutoverClock *clock, gpointer data)
{
  cut->clock = clock;
  cut->clock_data = data;
}

void
bgd_cutover_plan_free (BgdCutoverPlan *p)
{
  if (p == NULL)
    return;
  g_free (p->id);
  g_free (p->job);
  g_free (p->coordinator);
  g_ptr_array_unref (p->barriers);
  g_strfreev (p->participants);
  g_free (p->reason);
  g_free (p->retry_id);
  g_free (p);
}

static void
cut_log (BgdCutover *cut, GLogLevelFlags level, const char *id, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static void
cut_log (BgdCutover *cut, GLogLevelFlags level, const char *id, const char *fmt, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_log_structured (G_LOG_DOMAIN, level,
                    "BLUEGREEN_JOB", cut->job,
                    "BLUEGREEN_CUTOVER", id ? id : "",
                    "MESSAGE", "%s: cutover %s: %s", cut->job, id ? id : "-", text);
}

BgdCutover *
bgd_cutover_new (const char *host, const char *job, const BgdCutoverOps *ops, gpointer data)
{
  BgdCutover *cut = g_new0 (BgdCutover, 1);

  cut->host = g_strdup (host);
  cut->job = g_strdup (job);
  cut->ops = ops;
  cut->data = data;
  cut->replaying = TRUE;
  cut->max_attempts = 1;
  cut->acks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  cut->released = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  cut->armed_past = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  cut->acked_past = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  cut->done_sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  cut->decided = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  cut->ignored = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&cut->decided_order);
  g_queue_init (&cut->ignored_order);
  return cut;
}

void
bgd_cutover_free (BgdCutover *cut)
{
  if (cut == NULL)
    return;
  cut_clear_source (cut, &cut->deadline_source);
  cut_clear_source (cut, &cut->done_source);
  bgd_cutover_plan_free (cut->plan);
  g_free (cut->nack_reason);
  g_hash_table_unref (cut->acks);
  g_hash_table_unref (cut->released);
  g_hash_table_unref (cut->armed_past);
  g_hash_table_unref (cut->acked_past);
  g_hash_table_unref (cut->done_sent);
  g_hash_table_unref (cut->decided);
  g_hash_table_unref (cut->ignored);
  g_queue_clear_full (&cut->decided_order, g_free);
  g_queue_clear_full (&cut->ignored_order, g_free);
  g_free (cut->host);
  g_free (cut->job);
  g_free (cut);
}

static char *
partition_key (const char *topic, gint32 partition)
{
  return g_strdup_printf ("%d:%s", partition, topic);
}

/* Keeps the larger of what @table has for (topic, partition) and @position. */
static void
note_past (GHashTable *table, const char *topic, gint32 partition, gint64 position)
{
  char *key = partition_key (topic, partition);
  gint64 *old = g_hash_table_lookup (table, key);

  if (old != NULL && *old >= position)
    {
      g_free (key);
      return;
    }
  g_hash_table_replace (table, key, g_memdup2 (&position, sizeof position));
}

/* The barrier of (topic, partition) in @p, or NULL. */
static BgControlOffset *
plan_barrier (const BgdCutoverPlan *p, const char *topic, gint32 partition)
{
  for (guint i = 0; i < p->barriers->len; i++)
    {
      BgControlOffset *b = p->barriers->pdata[i];
      if (b->partition == partition && g_str_equal (b->topic, topic))
        return b;
    }
  return NULL;
}

static gboolean
is_participant (const BgdCutoverPlan *p, const char *host)
{
  return g_strv_contains ((const char *const *) p->participants, host);
}

static gboolean
plan_is (BgdCutover *cut, const char *id, BgdCutoverState state)
{
  return cut->plan != NULL && g_str_equal (cut->plan->id, id) && cut->plan->state == state;
}

static void
remember_decision (BgdCutover *cut, const char *id, const char *decision)
{
  if (g_hash_table_contains (cut->decided, id))
    return;
  g_hash_table_insert (cut->decided, g_strdup (id), (gpointer) decision);
  g_queue_push_tail (&cut->decided_order, g_strdup (id));
  while (g_queue_get_length (&cut->decided_order) > BGD_CUTOVER_REMEMBERED_IDS)
    {
      g_autofree char *old = g_queue_pop_head (&cut->decided_order);
      g_hash_table_remove (cut->decided, old);
    }
}

static void
remember_ignored (BgdCutover *cut, const char *id)
{
  if (!g_hash_table_add (cut->ignored, g_strdup (id)))
    return;
  g_queue_push_tail (&cut->ignored_order, g_strdup (id));
  while (g_queue_get_length (&cut->ignored_order) > BGD_CUTOVER_REMEMBERED_IDS)
    {
      g_autofree char *old = g_queue_pop_head (&cut->ignored_order);
      g_hash_table_remove (cut->ignored, old);
    }
}

static BgControlMessage *
new_message (BgdCutover *cut, BgControlType type)
{
  BgControlMessage *msg = bg_control_message_new (type, cut->host, cut_real_time (cut));

  msg->job = g_strdup (cut->job);
  if (cut->plan != NULL)
    msg->id = g_strdup (cut->plan->id);
  return msg;
}

static void
append_decision (BgdCutover *cut, gboolean commit, const char *reason)
{
  BgControlMessage *msg;

  /* While replaying the decision may be further down the log; what is
   * still open afterwards is decided then. */
  if (cut->decision_sent || cut->replaying)
    return;
  cut->decision_sent = TRUE;
  msg = new_message (cut, commit ? BG_CONTROL_COMMIT : BG_CONTROL_ABORT);
  if (commit)
    for (guint i = 0; i < cut->plan->barriers->len; i++)
      {
        const BgControlOffset *b = cut->plan->barriers->pdata[i];
        g_autofree char *key = partition_key (b->topic, b->partition);
        const gint64 *past = g_hash_table_lookup (cut->acked_past, key);
        g_ptr_array_add (msg->barriers,
                         bg_control_offset_new (b->topic, b->partition, past ? MAX (*past, b->offset) : b->offset));
      }
  if (!commit)
    msg->reason = g_utf8_make_valid (reason, MIN (strlen (reason), BG_CONTROL_MAX_REASON - 4));
  cut_log (cut, G_LOG_LEVEL_MESSAGE, cut->plan->id, "appending %s%s%s", commit ? "commit" : "abort",
           commit ? "" : ": ", commit ? "" : reason);
  cut->ops->append (cut->data, msg);
}

static void
answer (BgdCutover *cut, gboolean ok, const char *reason)
{
  BgControlMessage *msg;

  if (cut->replaying || cut->nacked || (cut->answered && ok))
    return;
  /* An instance that finds itself past a barrier after this host acked
   * (one that restarted, or took a partition over, while the plan was
   * prepared) still says so: if the nack is read before the coordinator's
   * commit, the cutover aborts; the first decision in the log counts
   * either way, so this is no local abort. */
  if (cut->answered)
    cut_log (cut, G_LOG_LEVEL_MESSAGE, cut->plan->id, "an instance cannot be armed after this host acked: %s",
             reason ? reason : "?");
  cut->answered = TRUE;
  cut->nacked = !ok;
  msg = new_message (cut, ok ? BG_CONTROL_ACK : BG_CONTROL_NACK);
  if (ok)
    {
      GHashTableIter iter;
      gpointer k, v;

      g_hash_table_iter_init (&iter, cut->armed_past);
      while (g_hash_table_iter_next (&iter, &k, &v))
        for (guint i = 0; i < cut->plan->barriers->len; i++)
          {
            const BgControlOffset *b = cut->plan->barriers->pdata[i];
            g_autofree char *key = partition_key (b->topic, b->partition);
            if (g_str_equal (key, k))
              g_ptr_array_add (msg->positions, bg_control_offset_new (b->topic, b->partition, *(gint64 *) v));
          }
    }
  if (!ok)
    msg->reason = g_utf8_make_valid (reason && *reason ? reason : "not armed",
                                     MIN (strlen (reason && *reason ? reason : "not armed"),
                                          BG_CONTROL_MAX_REASON - 4));
  cut_log (cut, G_LOG_LEVEL_MESSAGE, cut->plan->id, "appending %s%s%s", ok ? "ack" : "nack",
           ok ? "" : ": ", ok ? "" : msg->reason);
  cut->ops->append (cut->data, msg);
}

static gboolean
deadline_cb (gpointer user_data)
{
  BgdCutover *cut = user_data;

  cut->deadline_source = 0;
  bgd_cutover_check_deadline (cut, G_MAXINT64);
  return G_SOURCE_REMOVE;
}

void
bgd_cutover_check_deadline (BgdCutover *cut, gint64 now)
{
  if (cut->plan == NULL || cut->plan->state != BGD_CUTOVER_PREPARED || now < cut->plan->deadline)
    return;
  /* Not deciding: appending. The first decision in the log counts. */
  append_decision (cut, FALSE, "deadline passed");
}

static void
arm_local (BgdCutover *cut)
{
  g_autofree char *reason = NULL;

  for (guint c = 0; c < BG_N_COLORS; c++)
    cut->armed[c] = cut->armed_answered[c] = FALSE;
  if (!cut->ops->arm (cut->data, cut->plan, &reason))
    {
      cut_log (cut, G_LOG_LEVEL_MESSAGE, cut->plan->id, "cannot arm: %s", reason ? reason : "?");
      answer (cut, FALSE, reason);
    }
}

static void
reset_plan_state (BgdCutover *cut)
{
  cut_clear_source (cut, &cut->deadline_source);
  cut_clear_source (cut, &cut->done_source);
  g_clear_pointer (&cut->nack_reason, g_free);
  bgd_cutover_plan_free (cut->plan);
  cut->plan = NULL;
  g_hash_table_remove_all (cut->acks);
  g_hash_table_remove_all (cut->released);
  g_hash_table_remove_all (cut->armed_past);
  g_hash_table_remove_all (cut->acked_past);
  g_hash_table_remove_all (cut->done_sent);
  cut->answered = cut->nacked = cut->decision_sent = FALSE;
  cut->last_done = 0;
}

/* ---- attempts ------------------------------------------------------------------ */

/* The length of @id without a ".N" attempt suffix (N >= 2, no leading 0). */
static gsize
attempt_base_len (const char *id, guint *attempt)
{
  const char *dot = strrchr (id, '.');
  guint64 n;

  *attempt = 1;
  if (dot == NULL || dot == id || dot[1] == '0'
      || !g_ascii_string_to_unsigned (dot + 1, 10, 2, BGD_CUTOVER_MAX_ATTEMPTS, &n, NULL))
    return strlen (id);
  *attempt = (guint) n;
  return (gsize) (dot - id);
}

char *
bgd_cutover_operator_id (const char *attempt_id)
{
  guint n;
  return g_strndup (attempt_id, attempt_base_len (attempt_id, &n));
}

guint
bgd_cutover_attempt (const char *attempt_id)
{
  guint n;
  attempt_base_len (attempt_id, &n);
  return n;
}

char *
bgd_cutover_next_attempt_id (const char *attempt_id)
{
  guint n;
  gsize len = attempt_base_len (attempt_id, &n);
  return g_strdup_printf ("%.*s.%u", (int) len, attempt_id, n + 1);
}

gboolean
bgd_cutover_reason_is_past_barrier (const char *reason)
{
  return reason != NULL && strstr (reason, "past barrier") != NULL;
}

void
bgd_cutover_set_max_attempts (BgdCutover *cut, guint attempts)
{
  cut->max_attempts = CLAMP (attempts, 1, BGD_CUTOVER_MAX_ATTEMPTS);
}

/* The coordinator's abort after a nack: marked for a retry when the nack
 * says "past barrier" (a longer lead fixes that) and attempts are left. */
static char *
abort_reason_for_nack (BgdCutover *cut)
{
  g_autofree char *next = NULL;

  if (!bgd_cutover_reason_is_past_barrier (cut->nack_reason)
      || bgd_cutover_attempt (cut->plan->id) >= cut->max_attempts)
    return g_strdup (cut->nack_reason);
  next = bgd_cutover_next_attempt_id (cut->plan->id);
  return g_strdup_printf (BGD_CUTOVER_RETRY_PREFIX "%s: %s", next, cut->nack_reason);
}

/* The next attempt's id if @msg (the first decision for @p) is the
 * coordinator's abort marked for a retry; NULL otherwise. Any other abort
 * (the deadline, an operator, a nack of another kind) ends the cutover. */
static char *
retry_id_of_abort (const BgdCutoverPlan *p, const BgControlMessage *msg)
{
  g_autofree char *next = NULL;
  gsize len;

  if (msg->reason == NULL || !g_str_has_prefix (msg->reason, BGD_CUTOVER_RETRY_PREFIX)
      || !g_str_equal (msg->host, p->coordinator))
    return NULL;
  next = bgd_cutover_next_attempt_id (p->id);
  len = strlen (next);
  if (strncmp (msg->reason + strlen (BGD_CUTOVER_RETRY_PREFIX), next, len) != 0
      || msg->reason[strlen (BGD_CUTOVER_RETRY_PREFIX) + len] != ':')
    return NULL;
  return g_steal_pointer (&next);
}

/* Every participant's ack is read: how long arming took, from the
 * prepare's own timestamp. */
static void
note_armed (BgdCutover *cut)
{
  BgdCutoverPlan *p = cut->plan;

  if (p->armed_after > 0)
    return;
  for (guint i = 0; p->participants[i] != NULL; i++)
    if (!g_hash_table_contains (cut->acks, p->participants[i]))
      return;
  p->armed_after = MAX (cut_real_time (cut) - p->prepared_at, 1);
}

static void
handle_prepare (BgdCutover *cut, const BgControlMessage *msg, gint64 offset)
{
  BgdCutoverPlan *p;
  gint64 now = cut_real_time (cut);

  if ((cut->plan != NULL && g_str_equal (cut->plan->id, msg->id))
      || g_hash_table_contains (cut->decided, msg->id) || g_hash_table_contains (cut->ignored, msg->id))
    {
      cut_log (cut, G_LOG_LEVEL_INFO, msg->id, "prepare read again, ignored");
      return;
    }
  if (bgd_cutover_in_flight (cut))
    {
      cut_log (cut, G_LOG_LEVEL_MESSAGE, msg->id, "prepare from %s ignored: cutover %s is in flight",
               msg->host, cut->plan->id);
      remember_ignored (cut, msg->id);
      return;
    }
  {
    gboolean found = FALSE;

    for (guint i = 0; i < msg->participants->len && !found; i++)
      found = g_str_equal (msg->participants->pdata[i], cut->host);
    if (!found)
      {
        cut_log (cut, G_LOG_LEVEL_INFO, msg->id, "this host is not a participant; ignored");
        remember_ignored (cut, msg->id);
        return;
      }
  }

  reset_plan_state (cut);

  p = cut->plan = g_new0 (BgdCutoverPlan, 1);
  p->id = g_strdup (msg->id);
  p->job = g_strdup (msg->job);
  p->coordinator = g_strdup (msg->host);
  p->outgoing = msg->outgoing;
  p->incoming = msg->incoming;
  p->deadline = msg->deadline;
  p->barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  for (guint i = 0; i < msg->barriers->len; i++)
    {
      const BgControlOffset *b = msg->barriers->pdata[i];
      g_ptr_array_add (p->barriers, bg_control_offset_new (b->topic, b->partition, b->offset));
    }
  p->participants = g_new0 (char *, msg->participants->len + 1);
  for (guint i = 0; i < msg->participants->len; i++)
    p->participants[i] = g_strdup (msg->participants->pdata[i]);
  p->prepare_offset = offset;
  p->state = BGD_CUTOVER_PREPARED;
  p->read_at = now;
  p->prepared_at = msg->ts;
  cut_log (cut, G_LOG_LEVEL_MESSAGE, p->id, "prepared by %s: %s -> %s, %u barriers, %u participants",
           p->coordinator, bg_color_to_string (p->outgoing), bg_color_to_string (p->incoming),
           p->barriers->len, msg->participants->len);

  cut->ops->prepared (cut->data, p);
  if (now >= p->deadline)
    {
      /* Read too late (a slow host, or a replay: then at its end): never
       * armed, since the instances would only hold until the abort; make
       * sure a decision lands. */
      bgd_cutover_check_deadline (cut, now);
      return;
    }
  cut->deadline_source = cut_timeout_add (cut, (guint) MIN ((p->deadline - now) / 1000 + 1, G_MAXUINT),
                                          deadline_cb);
  /* Replaying: the decision may follow in the log; arming waits for the
   * end of the replay (bgd_cutover_set_replaying). */
  if (!cut->replaying)
    arm_local (cut);
}

static void
maybe_commit (BgdCutover *cut)
{
  BgdCutoverPlan *p = cut->plan;

  if (!g_str_equal (p->coordinator, cut->host) || p->state != BGD_CUTOVER_PREPARED || cut->replaying)
    return;
  for (guint i = 0; p->participants[i] != NULL; i++)
    if (!g_hash_table_contains (cut->acks, p->participants[i]))
      return;
  if (cut_real_time (cut) >= p->deadline)
    return; /* the deadline rule appends the abort */
  append_decision (cut, TRUE, NULL);
}

static void
release (BgdCutover *cut, const char *topic, gint32 partition)
{
  char *key = partition_key (topic, partition);

  if (!g_hash_table_add (cut->released, key))
    return;
  cut->ops->release (cut->data, cut->plan, topic, partition);
}

static void
maybe_done (BgdCutover *cut)
{
  BgdCutoverPlan *p = cut->plan;

  if (p->state != BGD_CUTOVER_COMMITTED || g_hash_table_size (cut->released) < p->barriers->len)
    return;
  p->state = BGD_CUTOVER_DONE;
  p->finished_at = cut_real_time (cut);
  cut_log (cut, G_LOG_LEVEL_MESSAGE, p->id, "done: every partition handed over");
  cut->ops->done (cut->data, p);
}

static void
decide (BgdCutover *cut, const BgControlMessage *msg)
{
  BgdCutoverPlan *p = cut->plan;
  gboolean commit = msg->type == BG_CONTROL_COMMIT;
  const char *earlier = g_hash_table_lookup (cut->decided, msg->id);

  if (earlier != NULL)
    {
      cut_log (cut, G_LOG_LEVEL_INFO, msg->id, "%s from %s ignored: already decided (%s)",
               commit ? "commit" : "abort", msg->host, earlier);
      return;
    }
  if (p == NULL || !g_str_equal (p->id, msg->id) || p->state != BGD_CUTOVER_PREPARED)
    {
      cut_log (cut, G_LOG_LEVEL_INFO, msg->id, "%s from %s for an unknown cutover ignored",
               commit ? "commit" : "abort", msg->host);
      return;
    }
  remember_decision (cut, msg->id, commit ? "commit" : "abort");
  cut_clear_source (cut, &cut->deadline_source);
  if (!commit)
    {
      p->state = BGD_CUTOVER_ABORTED;
      p->reason = g_strdup (msg->reason);
      p->finished_at = cut_real_time (cut);
      p->retry_id = retry_id_of_abort (p, msg);
      cut_log (cut, G_LOG_LEVEL_MESSAGE, p->id, "aborted (by %s): %s", msg->host, msg->reason);
      cut->ops->abort (cut->data, p);
      /* cut->plan may be replaced from here on only by a prepare read
       * later; the retry appends one. */
      if (p->retry_id != NULL && g_str_equal (p->coordinator, cut->host) && !cut->replaying
          && cut->ops->retry != NULL)
        cut->ops->retry (cut->data, p);
      return;
    }
  /* The commit's final barriers: where an instance had passed the
   * prepared barrier when it armed, the barrier moves up to it (never
   * down: a commit that says less changes nothing there). */
  for (guint i = 0; i < msg->barriers->len; i++)
    {
      const BgControlOffset *f = msg->barriers->pdata[i];
      BgControlOffset *b = plan_barrier (p, f->topic, f->partition);
      if (b != NULL && f->offset > b->offset)
        {
          cut_log (cut, G_LOG_LEVEL_INFO, p->id, "barrier %s/%d moves from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                   b->topic, b->partition, b->offset, f->offset);
          b->offset = f->offset;
        }
    }
  p->state = BGD_CUTOVER_COMMITTED;
  cut_log (cut, G_LOG_LEVEL_MESSAGE, p->id, "committed (by %s)", msg->host);
  cut->ops->commit (cut->data, p);
  /* Nothing below offset 0 to hand over: every host knows that alone. */
  for (guint i = 0; i < p->barriers->len; i++)
    {
      const BgControlOffset *b = p->barriers->pdata[i];
      if (b->offset == 0)
        release (cut, b->topic, b->partition);
    }
  bgd_cutover_check_delivered (cut);
  maybe_done (cut);
}

static void
handle_done (BgdCutover *cut, const BgControlMessage *msg)
{
  BgdCutoverPlan *p = cut->plan;

  if (!plan_is (cut, msg->id, BGD_CUTOVER_COMMITTED))
    {
      cut_log (cut, G_LOG_LEVEL_DEBUG, msg->id, "done from %s ignored (no committed cutover of that id)",
               msg->host);
      return;
    }
  for (guint i = 0; i < p->barriers->len; i++)
    {
      const BgControlOffset *b = p->barriers->pdata[i];
      gboolean listed = msg->all && g_str_equal (msg->host, cut->host);

      for (guint j = 0; j < msg->partitions->len && !listed; j++)
        {
          const BgControlPartition *q = msg->partitions->pdata[j];
          listed = q->partition == b->partition && g_str_equal (q->topic, b->topic);
        }
      if (listed)
        release (cut, b->topic, b->partition);
    }
  maybe_done (cut);
}

void
bgd_cutover_handle (BgdCutover *cut, const BgControlMessage *msg, gint64 offset)
{
  if (msg->job == NULL || !g_str_equal (msg->job, cut->job))
    return;
  switch (msg->type)
    {
    case BG_CONTROL_PREPARE:
      handle_prepare (cut, msg, offset);
      break;
    case BG_CONTROL_ACK:
    case BG_CONTROL_NACK:
      if (cut->plan == NULL || !g_str_equal (cut->plan->id, msg->id))
        {
          cut_log (cut, G_LOG_LEVEL_DEBUG, msg->id, "%s from %s for an unknown cutover ignored",
                   bg_control_type_to_string (msg->type), msg->host);
          return;
        }
      if (g_str_equal (msg->host, cut->host))
        {
          cut->answered = TRUE; /* ours, perhaps from before a restart */
          cut->nacked |= msg->type == BG_CONTROL_NACK;
          /* What that ack certified: an instance answering the same
           * positions again (after this agent's restart) is no news. */
          for (guint i = 0; i < msg->positions->len; i++)
            {
              const BgControlOffset *o = msg->positions->pdata[i];
              note_past (cut->armed_past, o->topic, o->partition, o->offset);
            }
        }
      if (cut->plan->state != BGD_CUTOVER_PREPARED || !is_participant (cut->plan, msg->host))
        return;
      if (msg->type == BG_CONTROL_ACK)
        {
          for (guint i = 0; i < msg->positions->len; i++)
            {
              const BgControlOffset *o = msg->positions->pdata[i];
              if (plan_barrier (cut->plan, o->topic, o->partition) != NULL)
                note_past (cut->acked_past, o->topic, o->partition, o->offset);
            }
          g_hash_table_add (cut->acks, g_strdup (msg->host));
          cut_log (cut, G_LOG_LEVEL_INFO, msg->id, "ack from %s (%u of %u)", msg->host,
                   g_hash_table_size (cut->acks), g_strv_length (cut->plan->participants));
          note_armed (cut);
          maybe_commit (cut);
        }
      else
        {
          cut_log (cut, G_LOG_LEVEL_MESSAGE, msg->id, "nack from %s: %s", msg->host, msg->reason);
          if (cut->nack_reason == NULL)
            cut->nack_reason = g_strdup_printf ("host %s: %s", msg->host, msg->reason);
          if (g_str_equal (cut->plan->coordinator, cut->host))
            {
              g_autofree char *why = abort_reason_for_nack (cut);
              append_decision (cut, FALSE, why);
            }
        }
      break;
    case BG_CONTROL_COMMIT:
    case BG_CONTROL_ABORT:
      decide (cut, msg);
      break;
    case BG_CONTROL_DONE:
      handle_done (cut, msg);
      break;
    default:
      break;
    }
}

void
bgd_cutover_set_replaying (BgdCutover *cut, gboolean replaying)
{
  BgdCutoverPlan *p = cut->plan;
  gint64 now = cut_real_time (cut);

  if (cut->replaying == replaying)
    return;
  cut->replaying = replaying;
  if (replaying || p == NULL)
    return;
  if (p->state == BGD_CUTOVER_COMMITTED)
    {
      bgd_cutover_check_delivered (cut);
      return;
    }
  if (p->state != BGD_CUTOVER_PREPARED)
    return;
  /* The log is read to its end and the plan is still undecided. */
  if (now >= p->deadline)
    {
      bgd_cutover_check_deadline (cut, now);
      return;
    }
  if (cut->nack_reason != NULL && g_str_equal (p->coordinator, cut->host))
    {
      g_autofree char *why = abort_reason_for_nack (cut);
      append_decision (cut, FALSE, why);
      return;
    }
  maybe_commit (cut);
  if (!cut->answered)
    arm_local (cut);
}

void
bgd_cutover_plan_armed (BgdCutover *cut, BgColor color, const char *id, gboolean ok, const char *reason)
{
  bgd_cutover_plan_armed_at (cut, color, id, ok, reason, NULL);
}

void
bgd_cutover_plan_armed_at (BgdCutover *cut, BgColor color, const char *id, gboolean ok, const char *reason,
                           const GPtrArray *positions)
{
  if (cut->plan == NULL || !g_str_equal (cut->plan->id, id) || cut->plan->state != BGD_CUTOVER_PREPARED)
    return;
  if (color != cut->plan->outgoing && color != cut->plan->incoming)
    return;
  for (guint i = 0; positions != NULL && i < positions->len; i++)
    {
      const BgControlOffset *o = positions->pdata[i];
      const BgControlOffset *b = plan_barrier (cut->plan, o->topic, o->partition);
      g_autofree char *key = NULL;
      const gint64 *noted;

      if (b == NULL || o->offset <= b->offset)
        continue;
      key = partition_key (o->topic, o->partition);
      noted = g_hash_table_lookup (cut->armed_past, key);
      if (noted != NULL && o->offset <= *noted)
        continue; /* a repeated answer */
      if (cut->answered && !cut->nacked)
        {
          /* Positions learned after this host acked cannot move the
           * barrier any more: as a past barrier after an ack, a nack. */
          g_autofree char *why = g_strdup_printf ("%s: past barrier %s/%d: position %" G_GINT64_FORMAT " > %"
                                                  G_GINT64_FORMAT " after this host acked",
                                                  bg_color_to_string (color), o->topic, o->partition, o->offset,
                                                  b->offset);
          answer (cut, FALSE, why);
          return;
        }
      note_past (cut->armed_past, o->topic, o->partition, o->offset);
    }
  cut->armed_answered[color] = TRUE;
  cut->armed[color] = ok;
  cut_log (cut, G_LOG_LEVEL_INFO, id, "%s instance %s%s%s", bg_color_to_string (color),
           ok ? "armed" : "not armed", ok ? "" : ": ", ok ? "" : reason);
  if (!ok)
    {
      g_autofree char *why = g_strdup_printf ("%s: %s", bg_color_to_string (color),
                                              reason && *reason ? reason : "not armed");
      answer (cut, FALSE, why);
      return;
    }
  if (cut->armed[cut->plan->outgoing] && cut->armed[cut->plan->incoming])
    answer (cut, TRUE, NULL);
}

static gboolean
done_interval_cb (gpointer user_data)
{
  BgdCutover *cut = user_data;

  cut->done_source = 0;
  bgd_cutover_check_delivered (cut);
  return G_SOURCE_REMOVE;
}

void
bgd_cutover_check_delivered (BgdCutover *cut)
{
  BgdCutoverPlan *p = cut->plan;
  BgControlMessage *msg = NULL;
  gint64 now = cut_monotonic_time (cut);

  if (p == NULL || p->state != BGD_CUTOVER_COMMITTED || cut->replaying || cut->done_source != 0)
    return;
  if (cut->last_done != 0 && now - cut->last_done < BGD_CUTOVER_DONE_INTERVAL_USEC)
    {
      /* Batched: whatever is done by then goes in one message. */
      cut->done_source = cut_timeout_add (cut, (guint) ((BGD_CUTOVER_DONE_INTERVAL_USEC - (now - cut->last_done)) / 1000 + 1),
                                          done_interval_cb);
      return;
    }
  for (guint i = 0; i < p->barriers->len; i++)
    {
      const BgControlOffset *b = p->barriers->pdata[i];
      g_autofree char *key = partition_key (b->topic, b->partition);
      gint64 delivered;

      if (g_hash_table_contains (cut->released, key) || g_hash_table_contains (cut->done_sent, key))
        continue;
      delivered = cut->ops->delivered (cut->data, p->outgoing, b->topic, b->partition);
      if (delivered < 0 || delivered < b->offset)
        continue;
      if (msg == NULL)
        msg = new_message (cut, BG_CONTROL_DONE);
      g_ptr_array_add (msg->partitions, bg_control_partition_new (b->topic, b->partition));
      g_hash_table_add (cut->done_sent, g_steal_pointer (&key));
    }
  if (msg != NULL)
    {
      cut_log (cut, G_LOG_LEVEL_INFO, p->id, "appending done for %u partitions", msg->partitions->len);
      cut->last_done = now;
      cut->ops->append (cut->data, msg);
    }
}

BgControlMessage *
bgd_cutover_make_prepare (BgdCutover *cut, BgColor outgoing, BgColor incoming, GPtrArray *barriers,
                          gint64 deadline, const char *const *participants)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_PREPARE, cut->host, cut_real_time (cut));
  g_autofree char *uuid = g_uuid_string_random ();

  msg->job = g_strdup (cut->job);
  msg->id = g_steal_pointer (&uuid);
  msg->outgoing = outgoing;
  msg->incoming = incoming;
  msg->deadline = deadline;
  for (guint i = 0; i < barriers->len; i++)
    {
      const BgControlOffset *b = barriers->pdata[i];
      g_ptr_array_add (msg->barriers, bg_control_offset_new (b->topic, b->partition, b->offset));
    }
  for (guint i = 0; participants[i] != NULL; i++)
    g_ptr_array_add (msg->participants, g_strdup (participants[i]));
  return msg;
}

gboolean
bgd_cutover_request_abort (BgdCutover *cut, const char *reason)
{
  if (cut->plan == NULL || cut->plan->state != BGD_CUTOVER_PREPARED)
    return FALSE;
  /* An operator's abort is a decision like any other: it counts only if
   * it is the first in the log. */
  cut->decision_sent = FALSE;
  append_decision (cut, FALSE, reason);
  return TRUE;
}

const BgdCutoverPlan *
bgd_cutover_get_plan (BgdCutover *cut)
{
  return cut->plan;
}

gboolean
bgd_cutover_in_flight (BgdCutover *cut)
{
  return cut->plan != NULL
         && (cut->plan->state == BGD_CUTOVER_PREPARED || cut->plan->state == BGD_CUTOVER_COMMITTED);
}

gint64
bgd_cutover_pinned_offset (BgdCutover *cut)
{
  return bgd_cutover_in_flight (cut) ? cut->plan->prepare_offset : -1;
}

guint
bgd_cutover_n_remembered (BgdCutover *cut)
{
  return g_hash_table_size (cut->decided) + g_hash_table_size (cut->ignored);
}
