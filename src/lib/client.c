/* client.c — libbluegreen's link to the agent (bluegreend): it keeps a job's
 * gate steered by its slot's org.bluegreen.Slot1 object and reports the
 * gate's progress back.
 *
 * The job needs no GLib main loop: the link runs in its own thread with its
 * own GMainContext and its own (private) bus connection, so it neither
 * depends on nor disturbs whatever the job does with GLib. Everything in
 * BgClient below the "link thread only" line is touched by that thread only;
 * other threads reach it through idle sources attached to its context.
 *
 * Safety rule: the gate starts in BG_SINK_MODE_UNKNOWN (admit waits) and only
 * the agent's steering changes it. Losing the bus or the agent never touches
 * the gate: it keeps the last steering until the agent is back and answers.
 *
 * The protocol (data/org.bluegreen.Agent1.xml, Slot1): GetSteering at start,
 * whenever PropertiesChanged announces a new Generation, and whenever the
 * name org.bluegreen.Agent1 gets a new owner; after applying it,
 * ReportProgress confirms the generation. ReportProgress also runs every
 * 500 ms when something changed, and every few seconds regardless.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bluegreen.h"
#include "client-private.h"
#include "gate-private.h"

#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define AGENT_BUS_NAME "org.bluegreen.Agent1"
#define SLOT_INTERFACE "org.bluegreen.Slot1"
#define CALL_TIMEOUT_MS 10000
#define REPORT_INTERVAL_MS 500
#define KEEPALIVE_US (5 * G_TIME_SPAN_SECOND)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DELIVERED_INTERVAL_MS 10
#define ARMED_REASON_MAX 1000 /* the agent takes at most 1024 bytes */

/* The link's state machine. Transitions go through link_set_state().
 *
 *   CONNECTING --connected--> NO_AGENT --owner appears--> FETCHING
 *   FETCHING --steering applied--> STEERED --Generation changed--> FETCHING
 *   NO_AGENT/FETCHING/STEERED --owner vanishes--> NO_AGENT
 *   any --bus connection closed--> CONNECTING
 *   any --bg_gate_free()--> STOPPING
 */
typedef enum {
  LINK_CONNECTING,
  LINK_NO_AGENT,
  LINK_FETCHING,
  LINK_STEERED,
  LINK_STOPPING,
} LinkState;

static const char *const link_state_names[] = {
  "connecting", "no-agent", "fetching", "steered", "stopping",
};

/* Kinds of failure, each logged once until the same kind succeeds again. */
typedef enum {
  FAIL_CONNECT,
  FAIL_FETCH,
  FAIL_STEERING,
  FAIL_REPORT,
  FAIL_SAVEPOINT,
  FAIL_ARMED,
  FAIL_DELIVERED,
  N_FAIL_KINDS,
} FailKind;

struct _BgClient {
  BgGate *gate; /* not owned: the gate owns the client */
  char *slot_path;
  GBusType bus_type;

  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;

  GMutex lock; /* guards the savepoint handler and the delivered offsets */
  BgSavepointFunc savepoint_func;
  void *savepoint_data;
  GHashTable *delivered;      /* "partition:topic" -> gint64 next offset delivered */
  gboolean delivered_dirty;   /* changed since the last ReportDelivered went out */
  gboolean delivered_timer;   /* a send is scheduled */

  /* ---- link thread only ---- */
  LinkState state;
  GCancellable *cancellable;
  guint n_pending; /* async operations whose callbacks have not run yet */

  GDBusConnection *connection;
  gulong closed_handler;
  guint watch_id;
  char *owner; /* unique name of the agent, NULL while it has none */
  guint sub_properties;
  guint sub_savepoint;

  guint connect_backoff_ms;
  GSource *connect_retry;
  guint fetch_backoff_ms;
  GSource *fetch_retry;
  gboolean fetch_in_flight;
  gboolean refetch; /* something changed while a fetch was in flight */

  gboolean steered_once;
  guint64 applied_generation;
  /* The steering last applied, and the gate's past serial when its
   * prepared plan was last answered: a partition resumed past a barrier
   * after that is answered again (PlanArmedAt with the new positions). */
  GVariant *applied_steering;
  guint64 answered_past_serial;
  GHashTable *applied_holds; /* "partition:topic" we put on the gate */

  GSource *report_timer;
  GSource *watchdog_timer; /* WATCHDOG=1 pings, if the unit has a watchdog */
  gboolean report_in_flight;
  gboolean report_forced;
  gboolean delivered_in_flight;
  GVariant *last_report; /* the arguments last delivered (without waiting_us) */
  gint64 last_report_time;

  gboolean failed[N_FAIL_KINDS];
};

static void link_connect (BgClient *client);
static void link_fetch (BgClient *client);
static void link_report (BgClient *client, gboolean force);
static void link_send_delivered (BgClient *client);
static void link_answer_armed (BgClient *client, GVariant *steering, const GError *error);

/* ---- Small helpers --------------------------------------------------------- */

static void
link_set_state (BgClient *client, LinkState state)
{
  if (client->state == state)
    return;
  /* Once stopping, nothing may revive the link. */
  if (client->state == LINK_STOPPING)
    return;
  g_debug ("bluegreen: agent link %s: %s -> %s", client->slot_path,
           link_state_names[client->state], link_state_names[state]);
  client->state = state;
}

static void
link_fail (BgClient *client, FailKind kind, const char *what, const GError *error)
{
  if (client->failed[kind] || client->state == LINK_STOPPING)
    return;
  client->failed[kind] = TRUE;
  /* A message, not a warning: an absent agent is an expected condition and
   * the job's G_DEBUG=fatal-warnings must not turn it into an abort. */
  g_message ("bluegreen: %s (slot %s): %s (retrying quietly)", what, client->slot_path,
             error != NULL ? error->message : "failed");
}

static void
link_ok (BgClient *client, FailKind kind, const char *what)
{
  if (!client->failed[kind])
    return;
  client->failed[kind] = FALSE;
  g_message ("bluegreen: %s (slot %s): working again", what, client->slot_path);
}

static guint
backoff_next (guint *backoff_ms)
{
  guint delay = *backoff_ms == 0 ? BACKOFF_MIN_MS : *backoff_ms;
  *backoff_ms = MIN (delay * 2, BACKOFF_MAX_MS);
  return delay;
}

static GSource *
link_timeout (BgClient *client, guint ms, GSourceFunc func)
{
  GSource *source = g_timeout_source_new (ms);
  g_source_set_callback (source, func, client, NULL);
  g_source_attach (source, client->context);
  return source;
}

/* Runs @func in the link thread, always from its loop (never in the calling
 * thread, as g_main_context_invoke() might when the loop is not running). */
static void
link_invoke (BgClient *client, GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, data, destroy);
  g_source_attach (source, client->context);
  g_source_unref (source);
}

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

/* Called by every async callback: the stop waits until none is left, so no
 * callback ever runs on a freed client. */
static void
link_pending_done (BgClient *client)
{
  g_assert (client->n_pending > 0);
  client->n_pending--;
  if (client->state == LINK_STOPPING && client->n_pending == 0)
    g_main_loop_quit (client->loop);
}

static char *
hold_key (const char *topic, gint32 partition)
{
  return g_strdup_printf ("%d:%s", partition, topic);
}

/* ---- Applying steering ------------------------------------------------------ */

static gboolean
parse_plan_state (const char *s, BgPlanState *out)
{
  if (strcmp (s, "prepared") == 0)
    *out = BG_PLAN_STATE_PREPARED;
  else if (strcmp (s, "committed") == 0)
    *out = BG_PLAN_STATE_COMMITTED;
  else if (strcmp (s, "aborted") == 0)
    *out = BG_PLAN_STATE_ABORTED;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_sink_mode (const char *sink_mode, BgSinkMode *mode, GError **error)
{
  if (strcmp (sink_mode, "live") == 0)
    *mode = BG_SINK_MODE_LIVE;
  else if (strcmp (sink_mode, "blackhole") == 0)
    *mode = BG_SINK_MODE_BLACKHOLE;
  else if (strcmp (sink_mode, "unknown") == 0)
    *mode = BG_SINK_MODE_UNKNOWN;
  else if (strcmp (sink_mode, "gated") == 0)
    *mode = BG_SINK_MODE_GATED;
  else
    {
      g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING,
                   "unknown sink mode \"%s\"", sink_mode);
      return FALSE;
    }
  return TRUE;
}

/* The agent's ranges: an entry with partition -1 is the range of every
 * partition no other entry names (partitions a cutover plan did not name
 * belong to the incoming side whole); without one, such partitions emit
 * nothing. */
static gboolean
parse_ranges (GVariant *ranges, BgGateRange **list_out, gsize *n_out, gint64 *default_lo,
              gint64 *default_hi, GError **error)
{
  gsize n = g_variant_n_children (ranges);
  g_autofree BgGateRange *list = g_new0 (BgGateRange, MAX (n, 1));
  gsize used = 0;

  *default_lo = *default_hi = 0;
  for (gsize i = 0; i < n; i++)
    {
      const char *topic;
      gint32 partition;
      gint64 lo, hi;
      g_variant_get_child (ranges, i, "(&sixx)", &topic, &partition, &lo, &hi);
      if (*topic == '\0' || partition < -1 || lo < 0 || hi < -1)
        {
          g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING,
                       "bad range (%s, %d, %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                       topic, partition, lo, hi);
          return FALSE;
        }
      if (partition == -1)
        {
          *default_lo = lo;
          *default_hi = hi == -1 ? INT64_MAX : hi;
          continue;
        }
      list[used++] = (BgGateRange){ topic, partition, lo, hi == -1 ? INT64_MAX : hi };
    }
  *list_out = g_steal_pointer (&list);
  *n_out = used;
  return TRUE;
}

static gboolean
parse_holds (GVariant *holds, BgGateHold **list_out, gsize *n_out, GError **error)
{
  gsize n = g_variant_n_children (holds);
  g_autofree BgGateHold *list = g_new0 (BgGateHold, MAX (n, 1));

  for (gsize i = 0; i < n; i++)
    {
      g_variant_get_child (holds, i, "(&si)", &list[i].topic, &list[i].partition);
      if (*list[i].topic == '\0' || list[i].partition < 0)
        {
          g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING, "bad hold (%s, %d)",
                       list[i].topic, list[i].partition);
          return FALSE;
        }
    }
  *list_out = g_steal_pointer (&list);
  *n_out = n;
  return TRUE;
}

static BgPlan *
parse_plan (const char *id, const char *role_s, gint64 deadline, GVariant *barriers, GError **error)
{
  BgPlanRole role;
  if (strcmp (role_s, "outgoing") == 0)
    role = BG_PLAN_ROLE_OUTGOING;
  else if (strcmp (role_s, "incoming") == 0)
    role = BG_PLAN_ROLE_INCOMING;
  else
    {
      g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING,
                   "plan %s: unknown role \"%s\"", id, role_s);
      return NULL;
    }

  BgPlan *plan = bg_plan_new (id, role, deadline);
  gsize n = g_variant_n_children (barriers);
  for (gsize i = 0; i < n; i++)
    {
      const char *topic;
      gint32 partition;
      gint64 offset;
      g_variant_get_child (barriers, i, "(&six)", &topic, &partition, &offset);
      if (*topic == '\0' || !bg_plan_add_barrier (plan, topic, partition, offset))
        {
          bg_plan_free (plan);
          g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING,
                       "plan %s: bad barrier (%s, %d, %" G_GINT64_FORMAT ")", id, topic,
                       partition, offset);
          return NULL;
        }
    }
  return plan;
}

/* @applied mirrors the holds on the gate ("partition:topic"), for tests. */
static void
note_holds (GHashTable *applied, const BgGateHold *holds, gsize n)
{
  g_hash_table_remove_all (applied);
  for (gsize i = 0; i < n; i++)
    g_hash_table_add (applied, hold_key (holds[i].topic, holds[i].partition));
}

/* The simulator's view of the job's own threads: they may admit records
 * whenever the link has changed the gate and not yet finished (see
 * client-private.h). NULL outside the simulator. */
static BgClientInterleaveFunc interleave_func;
static gpointer interleave_data;

void
bg_client_debug_set_interleave (BgClientInterleaveFunc func, gpointer user_data)
{
  interleave_func = func;
  interleave_data = user_data;
}

static void
interleave (BgGate *gate)
{
  if (interleave_func != NULL)
    interleave_func (gate, interleave_data);
}

gboolean
bg_client_apply_steering (BgGate *gate, GVariant *steering, GHashTable *applied_holds,
                          GError **error)
{
  g_return_val_if_fail (g_variant_is_of_type (steering, G_VARIANT_TYPE (BG_STEERING_TYPE)), FALSE);

  const char *sink_mode;
  g_autoptr (GVariant) ranges = NULL;
  g_autoptr (GVariant) holds = NULL;
  g_autoptr (GVariant) barriers = NULL;
  const char *plan_id, *plan_role, *plan_state_s;
  gint64 plan_deadline;
  guint64 generation;
  g_variant_get (steering, "(&s@a(sixx)(&s&s&sx@a(six))@a(si)t)", &sink_mode, &ranges, &plan_id,
                 &plan_role, &plan_state_s, &plan_deadline, &barriers, &holds, &generation);

  BgPlanState plan_state = BG_PLAN_STATE_ABORTED;
  if (*plan_id != '\0' && !parse_plan_state (plan_state_s, &plan_state))
    {
      g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING,
                   "plan %s: unknown state \"%s\"", plan_id, plan_state_s);
      return FALSE;
    }
  BgSinkMode mode;
  g_autofree BgGateRange *range_list = NULL;
  gsize n_ranges = 0;
  gint64 default_lo, default_hi;
  g_autofree BgGateHold *hold_list = NULL;
  gsize n_holds = 0;
  if (!parse_sink_mode (sink_mode, &mode, error)
      || !parse_ranges (ranges, &range_list, &n_ranges, &default_lo, &default_hi, error)
      || !parse_holds (holds, &hold_list, &n_holds, error))
    return FALSE;

  /* A plan the gate holds prepared ends only by its own decision: never by
   * a mode, and never by a guess when the agent names another plan. */
  BgPlanState gate_state;
  gboolean deciding_commit = FALSE;
  g_autofree char *gate_plan = bg_gate_get_plan (gate, &gate_state);
  gboolean same_plan = gate_plan != NULL && strcmp (gate_plan, plan_id) == 0;
  if (gate_plan != NULL && gate_state == BG_PLAN_STATE_PREPARED)
    {
      if (!same_plan || plan_state == BG_PLAN_STATE_PREPARED)
        {
          bg_gate_set_holds (gate, hold_list, n_holds);
          note_holds (applied_holds, hold_list, n_holds);
          return TRUE;
        }
      /* A commit goes on below with the plan's final barriers, the
       * committed ranges and the holds in one snapshot (the barriers may
       * have moved up to where instances were when they armed). An abort
       * restores the ranges from before the plan; the steering below then
       * sets them as the agent gives them. */
      if (plan_state == BG_PLAN_STATE_COMMITTED)
        deciding_commit = TRUE;
      else if (!bg_gate_abort (gate, plan_id))
        {
          g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_REFUSED,
                       "the gate refused the decision on plan %s", plan_id);
          return FALSE;
        }
      interleave (gate);
    }

  if (mode == BG_SINK_MODE_UNKNOWN)
    {
      /* Nothing known: admit waits; a plan cannot be armed on top. */
      if (!bg_gate_set_mode (gate, mode))
        {
          g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_REFUSED,
                       "the gate refused sink mode \"%s\"", sink_mode);
          return FALSE;
        }
      note_holds (applied_holds, NULL, 0);
      return TRUE;
    }

  /* A new plan goes on in the same snapshot as the base. A committed plan
   * this instance never saw prepared (it started or restarted after the
   * decision) still needs its barriers, or the handoff holds would have
   * nothing to hold from; the agent's ranges stay what counts. */
  g_autoptr (BgPlan) plan = NULL;
  if (*plan_id != '\0' && plan_state != BG_PLAN_STATE_ABORTED && (!same_plan || deciding_commit))
    {
      plan = parse_plan (plan_id, plan_role, plan_deadline, barriers, error);
      if (plan == NULL)
        return FALSE;
    }
  BgGateSteering st = {
    .mode = mode,
    .default_lo = default_lo,
    .default_hi = default_hi,
    .ranges = range_list,
    .n_ranges = n_ranges,
    .plan = plan,
    .plan_state = plan_state,
    .holds = hold_list,
    .n_holds = n_holds,
  };
  g_autofree char *reason = NULL;
  if (bg_gate_steer (gate, &st, &reason) == BG_PREPARE_REFUSED)
    {
      g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_REFUSED, "the gate refused the steering: %s",
                   reason ? reason : "?");
      return FALSE;
    }
  /* PAST_BARRIER: the plan is armed all the same (only its decision, which
   * will be abort, may end it); the PlanArmed answer tells the agent. */
  note_holds (applied_holds, hold_list, n_holds);
  return TRUE;
}

/* ---- Progress --------------------------------------------------------------- */

/* (a(six) t t t): positions, emitted, dropped, applied generation. */
static GVariant *
progress_snapshot (BgClient *client)
{
  g_autoptr (GPtrArray) topics = bg_gate_dup_topics (client->gate);
  GVariantBuilder positions;
  g_variant_builder_init (&positions, G_VARIANT_TYPE ("a(six)"));
  for (guint i = 0; i < topics->len; i++)
    {
      BgTopic *topic = g_ptr_array_index (topics, i);
      int32_t n = bg_topic_n_partitions (topic);
      for (int32_t p = 0; p < n; p++)
        {
          int64_t position = bg_gate_position (client->gate, topic, p);
          if (position >= 0)
            g_variant_builder_add (&positions, "(six)", bg_topic_name (topic), p, position);
        }
    }
  /* Partitions beyond a topic's registered count (added to the topic after
   * this instance started): the agent's lag and the fleet's view of this
   * instance must include them too. */
  {
    g_autoptr (GArray) untracked = bg_gate_dup_untracked_positions (client->gate);
    for (guint i = 0; i < untracked->len; i++)
      {
        const BgUntrackedPosition *up = &g_array_index (untracked, BgUntrackedPosition, i);
        g_variant_builder_add (&positions, "(six)", up->topic, up->partition, up->position);
      }
  }
  return g_variant_ref_sink (g_variant_new ("(a(six)ttt)", &positions,
                                            (guint64) bg_gate_emitted (client->gate),
                                            (guint64) bg_gate_dropped (client->gate),
                                            client->applied_generation));
}

typedef struct {
  BgClient *client;
  GVariant *snapshot;
} ReportCall;

static void
report_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ReportCall *call = user_data;
  BgClient *client = call->client;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                              &error);
  client->report_in_flight = FALSE;
  if (reply != NULL)
    {
      g_clear_pointer (&client->last_report, g_variant_unref);
      client->last_report = g_steal_pointer (&call->snapshot);
      client->last_report_time = g_get_monotonic_time ();
      link_ok (client, FAIL_REPORT, "reporting progress");
    }
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    link_fail (client, FAIL_REPORT, "reporting progress", error);

  g_clear_pointer (&call->snapshot, g_variant_unref);
  g_free (call);

  gboolean again = client->report_forced;
  client->report_forced = FALSE;
  if (again)
    link_report (client, TRUE);
  link_pending_done (client);
}

static void
link_report (BgClient *client, gboolean force)
{
  if (client->state != LINK_STEERED)
    return;
  if (client->applied_steering != NULL && bg_gate_past_serial (client->gate) != client->answered_past_serial)
    link_answer_armed (client, client->applied_steering, NULL);
  if (client->report_in_flight)
    {
      client->report_forced |= force;
      return;
    }

  g_autoptr (GVariant) snapshot = progress_snapshot (client);
  int64_t since = 0;
  gint64 now = g_get_monotonic_time ();
  gint64 waiting = bg_gate_is_waiting (client->gate, &since) ? MAX (now - since, 1) : 0;

  gboolean changed = client->last_report == NULL || !g_variant_equal (snapshot, client->last_report)
                     || waiting != 0;
  if (!force && !changed && now - client->last_report_time < KEEPALIVE_US)
    return;

  g_autoptr (GVariant) positions = g_variant_get_child_value (snapshot, 0);
  guint64 emitted, dropped, applied;
  g_variant_get (snapshot, "(@a(six)ttt)", NULL, &emitted, &dropped, &applied);

  ReportCall *call = g_new0 (ReportCall, 1);
  call->client = client;
  call->snapshot = g_variant_ref (snapshot);
  client->report_in_flight = TRUE;
  client->n_pending++;
  g_dbus_connection_call (client->connection, AGENT_BUS_NAME, client->slot_path, SLOT_INTERFACE,
                          "ReportProgress",
                          g_variant_new ("(@a(six)tttx)", positions, emitted, dropped, applied,
                                         (gint64) waiting),
                          NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                          client->cancellable, report_done, call);
}

static gboolean
report_tick (gpointer user_data)
{
  link_report (user_data, FALSE);
  link_send_delivered (user_data); /* retries a failed one */
  return G_SOURCE_CONTINUE;
}

/* The unit's watchdog (WatchdogSec=, WATCHDOG_USEC for this very pid):
 * pinged at half its period, so a job that links the library need not do
 * it itself. The ping says the process and its link thread are alive; a
 * job that wants its own processing loop watched pings from there too
 * (more pings do no harm). */
static gboolean
watchdog_tick (gpointer user_data)
{
  sd_notify (0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

static void
link_start_watchdog (BgClient *client)
{
  uint64_t usec = 0;

  if (sd_watchdog_enabled (0, &usec) <= 0 || usec == 0)
    return;
  sd_notify (0, "WATCHDOG=1");
  client->watchdog_timer = link_timeout (client, (guint) MAX (usec / 2000, 1), watchdog_tick);
}

static gboolean
report_now_cb (gpointer user_data)
{
  link_report (user_data, TRUE);
  return G_SOURCE_REMOVE;
}

/* ---- Steering ----------------------------------------------------------------- */

static gboolean
fetch_retry_cb (gpointer user_data)
{
  BgClient *client = user_data;
  g_clear_pointer (&client->fetch_retry, g_source_unref);
  link_fetch (client);
  return G_SOURCE_REMOVE;
}

static void
fetch_later (BgClient *client)
{
  if (client->fetch_retry == NULL && client->owner != NULL)
    client->fetch_retry = link_timeout (client, backoff_next (&client->fetch_backoff_ms),
                                        fetch_retry_cb);
}

static guint64
steering_generation (GVariant *steering)
{
  guint64 generation = 0;
  g_variant_get_child (steering, 4, "t", &generation);
  return generation;
}

static void
fetch_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BgClient *client = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                              &error);
  client->fetch_in_flight = FALSE;

  if (client->state == LINK_STOPPING || G_DBUS_CONNECTION (source) != client->connection
      || client->owner == NULL)
    {
      /* Stopped, an old connection, or the agent vanished meanwhile (it is
       * asked again when it comes back). */
    }
  else if (client->refetch)
    {
      /* Something newer exists (a new Generation or a new owner). */
      client->refetch = FALSE;
      link_fetch (client);
    }
  else if (reply == NULL)
    {
      link_fail (client, FAIL_FETCH, "fetching the steering from the agent", error);
      fetch_later (client);
    }
  else if (client->steered_once && steering_generation (reply) < client->applied_generation)
    {
      /* Steering never goes back (docs/protocol.md, "What survives a
       * restart"): an older generation than the one applied is stale. The
       * agent answers the report of the applied one by moving past it. */
      g_autoptr (GError) stale = g_error_new (BG_CLIENT_ERROR, BG_CLIENT_ERROR_REFUSED,
                                              "generation %" G_GUINT64_FORMAT " is older than the applied %"
                                              G_GUINT64_FORMAT, steering_generation (reply),
                                              client->applied_generation);
      link_fail (client, FAIL_STEERING, "applying the agent's steering", stale);
      link_report (client, TRUE);
      fetch_later (client);
    }
  else if (!bg_client_apply_steering (client->gate, reply, client->applied_holds, &error))
    {
      /* The gate keeps its last steering; the generation stays unconfirmed. */
      link_fail (client, FAIL_STEERING, "applying the agent's steering", error);
      link_answer_armed (client, reply, error);
      fetch_later (client);
    }
  else
    {
      link_ok (client, FAIL_FETCH, "fetching the steering from the agent");
      link_ok (client, FAIL_STEERING, "applying the agent's steering");
      client->fetch_backoff_ms = 0;
      client->steered_once = TRUE;
      g_variant_get_child (reply, 4, "t", &client->applied_generation);
      g_clear_pointer (&client->applied_steering, g_variant_unref);
      client->applied_steering = g_variant_ref (reply);
      link_set_state (client, LINK_STEERED);
      link_answer_armed (client, reply, NULL);
      link_report (client, TRUE);
      link_send_delivered (client);
    }
  link_pending_done (client);
}

static void
link_fetch (BgClient *client)
{
  if (client->owner == NULL || client->state == LINK_STOPPING)
    return;
  link_set_state (client, LINK_FETCHING);
  if (client->fetch_in_flight)
    {
      client->refetch = TRUE;
      return;
    }
  clear_source (&client->fetch_retry);
  client->fetch_in_flight = TRUE;
  client->n_pending++;
  g_dbus_connection_call (client->connection, AGENT_BUS_NAME, client->slot_path, SLOT_INTERFACE,
                          "GetSteering", NULL, G_VARIANT_TYPE (BG_STEERING_TYPE),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, client->cancellable,
                          fetch_done, client);
}

static void
on_properties_changed (GDBusConnection *connection, const char *sender, const char *path,
                       const char *interface, const char *signal, GVariant *parameters,
                       gpointer user_data)
{
  BgClient *client = user_data;
  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;

  g_autoptr (GVariant) changed = g_variant_get_child_value (parameters, 1);
  g_autoptr (GVariant) invalidated = g_variant_get_child_value (parameters, 2);
  guint64 generation;
  gboolean relevant = FALSE;
  if (g_variant_lookup (changed, "Generation", "t", &generation))
    relevant = !client->steered_once || generation != client->applied_generation
               || client->state != LINK_STEERED;
  g_autofree const char **names = g_variant_get_strv (invalidated, NULL);
  if (names != NULL && g_strv_contains (names, "Generation"))
    relevant = TRUE;
  if (relevant)
    link_fetch (client);
}

/* ---- Cutover answers: PlanArmed and ReportDelivered ----------------------------- */

static void
armed_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BgClient *client = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                              &error);
  if (reply != NULL)
    link_ok (client, FAIL_ARMED, "answering a prepared plan");
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      link_fail (client, FAIL_ARMED, "answering a prepared plan", error);
      /* Fetching again answers again (the agent waits until its deadline). */
      fetch_later (client);
    }
  link_pending_done (client);
}

/* After a steering with a plan in state "prepared" was applied (or failed to
 * be, with @error): tell the agent whether this instance armed it without
 * passing a barrier. Sent on every such fetch; the agent takes repeats. */
static void
link_answer_armed (BgClient *client, GVariant *steering, const GError *error)
{
  const char *id, *state;
  g_variant_get_child (steering, 2, "(&s&s&sx@a(six))", &id, NULL, &state, NULL, NULL);
  if (*id == '\0' || strcmp (state, "prepared") != 0 || client->connection == NULL)
    return;
  client->answered_past_serial = bg_gate_past_serial (client->gate);

  g_autofree char *unnamed = NULL;
  g_autofree char *reason = NULL;
  g_autoptr (GPtrArray) past = NULL;
  gboolean ok = FALSE;
  GVariantBuilder positions;
  g_variant_builder_init (&positions, G_VARIANT_TYPE ("a(six)"));
  if (bg_gate_get_armed_positions (client->gate, id, &unnamed, &past))
    {
      /* Past a named barrier is fine: the commit moves the barrier up to
       * the position reported here. Past a partition the plan does not
       * name is not (its implicit barrier 0 cannot move). */
      ok = unnamed == NULL;
      reason = g_steal_pointer (&unnamed);
      for (guint i = 0; i < past->len; i++)
        {
          const BgArmedPosition *ap = past->pdata[i];
          g_variant_builder_add (&positions, "(six)", ap->topic, ap->partition, (gint64) ap->position);
        }
    }
  else
    {
      BgPlanState gate_state;
      g_autofree char *gate_plan = bg_gate_get_plan (client->gate, &gate_state);
      if (gate_plan != NULL && gate_state == BG_PLAN_STATE_PREPARED)
        reason = g_strdup_printf ("another plan (%s) is armed in this instance", gate_plan);
      else
        reason = g_strdup_printf ("not armed: %s", error != NULL ? error->message : "refused");
    }
  if (reason == NULL)
    reason = g_strdup ("");
  if (strlen (reason) > ARMED_REASON_MAX)
    reason[ARMED_REASON_MAX] = '\0';
  if (!g_utf8_validate (reason, -1, NULL))
    {
      g_free (reason);
      reason = g_strdup ("not armed");
    }
  g_debug ("bluegreen: plan %s %s%s%s", id, ok ? "armed" : "not armed", ok ? "" : ": ",
           ok ? "" : reason);

  client->n_pending++;
  g_dbus_connection_call (client->connection, AGENT_BUS_NAME, client->slot_path, SLOT_INTERFACE,
                          "PlanArmedAt", g_variant_new ("(sbsa(six))", id, ok, reason, &positions), NULL,
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, client->cancellable,
                          armed_done, client);
}

static gboolean delivered_timer_cb (gpointer user_data);

/* Coalesced: one send per interval while offsets keep moving. */
static void
delivered_schedule_locked (BgClient *client)
{
  if (client->delivered_timer)
    return;
  client->delivered_timer = TRUE;
  GSource *source = g_timeout_source_new (DELIVERED_INTERVAL_MS);
  g_source_set_callback (source, delivered_timer_cb, client, NULL);
  g_source_attach (source, client->context);
  g_source_unref (source);
}

static void
delivered_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BgClient *client = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                              &error);
  client->delivered_in_flight = FALSE;
  if (reply != NULL)
    link_ok (client, FAIL_DELIVERED, "reporting delivered offsets");
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      link_fail (client, FAIL_DELIVERED, "reporting delivered offsets", error);
      /* Sent again with the next report tick. */
      g_mutex_lock (&client->lock);
      client->delivered_dirty = TRUE;
      g_mutex_unlock (&client->lock);
    }
  /* What changed meanwhile goes out after the interval. */
  if (reply != NULL)
    {
      g_mutex_lock (&client->lock);
      if (client->delivered_dirty)
        delivered_schedule_locked (client);
      g_mutex_unlock (&client->lock);
    }
  link_pending_done (client);
}

/* Sends every delivered offset if some changed: the handoff waits for it. */
static void
link_send_delivered (BgClient *client)
{
  if (client->state != LINK_STEERED || client->connection == NULL || client->delivered_in_flight)
    return;

  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(six)"));
  g_mutex_lock (&client->lock);
  gboolean dirty = client->delivered_dirty;
  if (dirty)
    {
      GHashTableIter iter;
      gpointer key, value;
      g_hash_table_iter_init (&iter, client->delivered);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          const char *colon = strchr (key, ':');
          g_variant_builder_add (&b, "(six)", colon + 1,
                                 (gint32) g_ascii_strtoll (key, NULL, 10), *(gint64 *) value);
        }
      client->delivered_dirty = FALSE;
    }
  g_mutex_unlock (&client->lock);
  if (!dirty)
    {
      g_variant_builder_clear (&b);
      return;
    }

  client->delivered_in_flight = TRUE;
  client->n_pending++;
  g_dbus_connection_call (client->connection, AGENT_BUS_NAME, client->slot_path, SLOT_INTERFACE,
                          "ReportDelivered", g_variant_new ("(a(six))", &b), NULL,
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, client->cancellable,
                          delivered_done, client);
}

static gboolean
delivered_timer_cb (gpointer user_data)
{
  BgClient *client = user_data;
  g_mutex_lock (&client->lock);
  client->delivered_timer = FALSE;
  g_mutex_unlock (&client->lock);
  link_send_delivered (client);
  return G_SOURCE_REMOVE;
}

/* ---- Savepoints --------------------------------------------------------------- */

typedef struct {
  BgClient *client;
  char *directory;
  gboolean ok;
  char *message;
} SavepointAnswer;

static void
savepoint_answer_free (gpointer data)
{
  SavepointAnswer *answer = data;
  g_free (answer->directory);
  g_free (answer->message);
  g_free (answer);
}

static void
savepoint_done_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BgClient *client = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                              &error);
  if (reply != NULL)
    link_ok (client, FAIL_SAVEPOINT, "answering a savepoint request");
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    link_fail (client, FAIL_SAVEPOINT, "answering a savepoint request", error);
  link_pending_done (client);
}

static gboolean
savepoint_answer_cb (gpointer data)
{
  SavepointAnswer *answer = data;
  BgClient *client = answer->client;
  if (client->connection == NULL || client->state == LINK_STOPPING)
    {
      g_autoptr (GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                                                      "not connected to the bus");
      link_fail (client, FAIL_SAVEPOINT, "answering a savepoint request", error);
      return G_SOURCE_REMOVE;
    }
  client->n_pending++;
  g_dbus_connection_call (client->connection, AGENT_BUS_NAME, client->slot_path, SLOT_INTERFACE,
                          "SavepointDone",
                          g_variant_new ("(sbs)", answer->directory, answer->ok,
                                         answer->message != NULL ? answer->message : ""),
                          NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                          client->cancellable, savepoint_done_reply, client);
  return G_SOURCE_REMOVE;
}

static void
client_savepoint_answer (BgClient *client, const char *directory, gboolean ok, const char *message)
{
  SavepointAnswer *answer = g_new0 (SavepointAnswer, 1);
  answer->client = client;
  answer->directory = g_strdup (directory);
  answer->ok = ok;
  answer->message = g_strdup (message);
  link_invoke (client, savepoint_answer_cb, answer, savepoint_answer_free);
}

static void
on_savepoint_requested (GDBusConnection *connection, const char *sender, const char *path,
                        const char *interface, const char *signal, GVariant *parameters,
                        gpointer user_data)
{
  BgClient *client = user_data;
  const char *directory;
  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(s)")))
    return;
  g_variant_get (parameters, "(&s)", &directory);

  g_mutex_lock (&client->lock);
  BgSavepointFunc func = client->savepoint_func;
  void *data = client->savepoint_data;
  g_mutex_unlock (&client->lock);

  if (func == NULL)
    {
      client_savepoint_answer (client, directory, FALSE, "this job has no savepoint handler");
      return;
    }
  func (client->gate, directory, data);
}

/* ---- The agent's name ----------------------------------------------------------- */

static void
unsubscribe (BgClient *client)
{
  if (client->sub_properties != 0)
    g_dbus_connection_signal_unsubscribe (client->connection, client->sub_properties);
  if (client->sub_savepoint != 0)
    g_dbus_connection_signal_unsubscribe (client->connection, client->sub_savepoint);
  client->sub_properties = 0;
  client->sub_savepoint = 0;
}

static void
on_agent_appeared (GDBusConnection *connection, const char *name, const char *owner,
                   gpointer user_data)
{
  BgClient *client = user_data;
  if (client->state == LINK_STOPPING)
    return;

  unsubscribe (client);
  g_free (client->owner);
  client->owner = g_strdup (owner);
  /* Signals only from the current owner (its unique name): nobody else on
   * the bus can steer the gate by faking them. */
  client->sub_properties = g_dbus_connection_signal_subscribe (
      connection, owner, "org.freedesktop.DBus.Properties", "PropertiesChanged",
      client->slot_path, SLOT_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, client,
      NULL);
  client->sub_savepoint = g_dbus_connection_signal_subscribe (
      connection, owner, SLOT_INTERFACE, "SavepointRequested", client->slot_path, NULL,
      G_DBUS_SIGNAL_FLAGS_NONE, on_savepoint_requested, client, NULL);

  /* A new owner may be a restarted agent with other steering: always ask.
   * It has not seen our delivered offsets either: send them all again once
   * steered. */
  g_mutex_lock (&client->lock);
  client->delivered_dirty = g_hash_table_size (client->delivered) > 0;
  g_mutex_unlock (&client->lock);
  client->fetch_backoff_ms = 0;
  link_fetch (client);
}

static void
on_agent_vanished (GDBusConnection *connection, const char *name, gpointer user_data)
{
  BgClient *client = user_data;
  if (client->state == LINK_STOPPING || client->connection == NULL)
    return;
  unsubscribe (client);
  g_clear_pointer (&client->owner, g_free);
  clear_source (&client->fetch_retry);
  client->refetch = FALSE;
  /* The gate keeps its steering: no guess while the agent is away. */
  link_set_state (client, LINK_NO_AGENT);
}

/* ---- The bus connection -------------------------------------------------------- */

static void
link_drop_connection (BgClient *client)
{
  if (client->connection == NULL)
    return;
  unsubscribe (client);
  if (client->watch_id != 0)
    g_bus_unwatch_name (client->watch_id);
  client->watch_id = 0;
  g_clear_signal_handler (&client->closed_handler, client->connection);
  g_clear_pointer (&client->owner, g_free);
  clear_source (&client->fetch_retry);
  client->refetch = FALSE;
  client->report_in_flight = FALSE;
  client->delivered_in_flight = FALSE;
  g_clear_object (&client->connection);
}

static gboolean
connect_retry_cb (gpointer user_data)
{
  BgClient *client = user_data;
  g_clear_pointer (&client->connect_retry, g_source_unref);
  link_connect (client);
  return G_SOURCE_REMOVE;
}

static void
connect_later (BgClient *client)
{
  if (client->connect_retry == NULL && client->state != LINK_STOPPING)
    client->connect_retry = link_timeout (client, backoff_next (&client->connect_backoff_ms),
                                          connect_retry_cb);
}

static void
on_connection_closed (GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
                      gpointer user_data)
{
  BgClient *client = user_data;
  link_fail (client, FAIL_CONNECT, "the bus connection closed", error);
  link_drop_connection (client);
  link_set_state (client, LINK_CONNECTING);
  connect_later (client);
}

static void
connect_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BgClient *client = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = g_dbus_connection_new_for_address_finish (result, &error);

  if (client->state == LINK_STOPPING)
    {
      if (connection != NULL)
        g_dbus_connection_close_sync (connection, NULL, NULL);
      link_pending_done (client);
      return;
    }
  if (connection == NULL)
    {
      link_fail (client, FAIL_CONNECT, "connecting to the bus", error);
      connect_later (client);
      link_pending_done (client);
      return;
    }

  link_ok (client, FAIL_CONNECT, "connecting to the bus");
  client->connect_backoff_ms = 0;
  /* The job must survive its bus going away. */
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  client->connection = g_steal_pointer (&connection);
  client->closed_handler = g_signal_connect (client->connection, "closed",
                                             G_CALLBACK (on_connection_closed), client);
  link_set_state (client, LINK_NO_AGENT);
  client->watch_id = g_bus_watch_name_on_connection (client->connection, AGENT_BUS_NAME,
                                                     G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                     on_agent_appeared, on_agent_vanished, client,
                                                     NULL);
  link_pending_done (client);
}

/* The bus address, resolved on every attempt (a socket may appear later).
 * Never autolaunches a session bus: a job must not spawn one. */
static char *
bus_address (GBusType bus_type, GError **error)
{
  if (bus_type == G_BUS_TYPE_SYSTEM)
    return g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, NULL, error);

  const char *env = g_getenv ("DBUS_SESSION_BUS_ADDRESS");
  if (env != NULL && *env != '\0')
    return g_strdup (env);
  const char *runtime = g_getenv ("XDG_RUNTIME_DIR");
  if (runtime != NULL && *runtime != '\0')
    {
      g_autofree char *path = g_build_filename (runtime, "bus", NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        {
          g_autofree char *escaped = g_dbus_address_escape_value (path);
          return g_strconcat ("unix:path=", escaped, NULL);
        }
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "no session bus: neither DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus");
  return NULL;
}

static void
link_connect (BgClient *client)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *address = bus_address (client->bus_type, &error);
  link_set_state (client, LINK_CONNECTING);
  if (address == NULL)
    {
      link_fail (client, FAIL_CONNECT, "connecting to the bus", error);
      connect_later (client);
      return;
    }
  client->n_pending++;
  g_dbus_connection_new_for_address (address,
                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                         | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                     NULL, client->cancellable, connect_done, client);
}

/* ---- The thread ------------------------------------------------------------------ */

static gpointer
link_thread (gpointer data)
{
  BgClient *client = data;
  g_main_context_push_thread_default (client->context);

  link_connect (client);
  client->report_timer = link_timeout (client, REPORT_INTERVAL_MS, report_tick);
  link_start_watchdog (client);
  g_main_loop_run (client->loop);

  /* Stopping: every callback has run (n_pending is 0). */
  clear_source (&client->report_timer);
  clear_source (&client->watchdog_timer);
  clear_source (&client->connect_retry);
  if (client->connection != NULL)
    {
      g_autoptr (GDBusConnection) connection = g_object_ref (client->connection);
      link_drop_connection (client);
      g_dbus_connection_close_sync (connection, NULL, NULL);
    }
  /* Let the unwatch and unsubscribe notifications run before the context goes. */
  while (g_main_context_iteration (client->context, FALSE))
    ;
  g_main_context_pop_thread_default (client->context);
  return NULL;
}

static gboolean
link_stop_cb (gpointer data)
{
  BgClient *client = data;
  client->state = LINK_STOPPING;
  g_cancellable_cancel (client->cancellable);
  if (client->n_pending == 0)
    g_main_loop_quit (client->loop);
  return G_SOURCE_REMOVE;
}

static void
client_free (gpointer data)
{
  BgClient *client = data;
  if (client == NULL)
    return;
  link_invoke (client, link_stop_cb, client, NULL);
  g_thread_join (client->thread);

  g_clear_pointer (&client->last_report, g_variant_unref);
  g_clear_pointer (&client->applied_steering, g_variant_unref);
  g_clear_pointer (&client->applied_holds, g_hash_table_unref);
  g_clear_pointer (&client->delivered, g_hash_table_unref);
  g_clear_object (&client->cancellable);
  g_main_loop_unref (client->loop);
  g_main_context_unref (client->context);
  g_mutex_clear (&client->lock);
  g_free (client->slot_path);
  g_free (client);
}

static BgClient *
client_start (BgGate *gate, const char *slot_path, GBusType bus_type)
{
  BgClient *client = g_new0 (BgClient, 1);
  client->gate = gate;
  client->slot_path = g_strdup (slot_path);
  client->bus_type = bus_type;
  client->context = g_main_context_new ();
  client->loop = g_main_loop_new (client->context, FALSE);
  client->cancellable = g_cancellable_new ();
  client->applied_holds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  client->delivered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init (&client->lock);
  client->state = LINK_CONNECTING;
  client->thread = g_thread_new ("bluegreen-link", link_thread, client);
  return client;
}

/* ---- Public API ------------------------------------------------------------------- */

G_DEFINE_QUARK (bg-client-error-quark, bg_client_error)

BgGate *
bg_client_gate_new (const char *slot, const char *bus, const char *sink_mode, GError **error)
{
  if (slot == NULL || *slot == '\0')
    {
      BgSinkMode mode;
      if (sink_mode == NULL || *sink_mode == '\0' || strcmp (sink_mode, "live") == 0)
        mode = BG_SINK_MODE_LIVE;
      else if (strcmp (sink_mode, "blackhole") == 0)
        mode = BG_SINK_MODE_BLACKHOLE;
      else
        {
          g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_ENVIRONMENT,
                       "BLUEGREEN_SINK_MODE=\"%s\": expected \"live\" or \"blackhole\"",
                       sink_mode);
          return NULL;
        }
      return bg_gate_new (mode);
    }

  if (!g_variant_is_object_path (slot))
    {
      g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_ENVIRONMENT,
                   "BLUEGREEN_SLOT=\"%s\" is not a D-Bus object path", slot);
      return NULL;
    }
  GBusType bus_type;
  if (bus == NULL || *bus == '\0' || strcmp (bus, "session") == 0)
    bus_type = G_BUS_TYPE_SESSION;
  else if (strcmp (bus, "system") == 0)
    bus_type = G_BUS_TYPE_SYSTEM;
  else
    {
      g_set_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_ENVIRONMENT,
                   "BLUEGREEN_BUS=\"%s\": expected \"system\" or \"session\"", bus);
      return NULL;
    }

  /* Steered: nothing is emitted until the agent says so. */
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  bg_gate_set_client (gate, client_start (gate, slot, bus_type), client_free);
  return gate;
}

BgGate *
bg_gate_new_from_env (char **error_message)
{
  g_autoptr (GError) error = NULL;
  BgGate *gate = bg_client_gate_new (g_getenv ("BLUEGREEN_SLOT"), g_getenv ("BLUEGREEN_BUS"),
                                     g_getenv ("BLUEGREEN_SINK_MODE"), &error);
  if (gate == NULL && error_message != NULL)
    *error_message = g_strdup (error->message);
  return gate;
}

const char *
bg_gate_get_slot_path (BgGate *gate)
{
  g_return_val_if_fail (gate != NULL, NULL);
  BgClient *client = bg_gate_get_client (gate);
  return client != NULL ? client->slot_path : NULL;
}

void
bg_gate_set_savepoint_handler (BgGate *gate, BgSavepointFunc func, void *user_data)
{
  g_return_if_fail (gate != NULL);
  BgClient *client = bg_gate_get_client (gate);
  if (client == NULL)
    return;
  g_mutex_lock (&client->lock);
  client->savepoint_func = func;
  client->savepoint_data = user_data;
  g_mutex_unlock (&client->lock);
}

void
bg_gate_savepoint_done (BgGate *gate, const char *directory, bool ok, const char *message)
{
  g_return_if_fail (gate != NULL);
  g_return_if_fail (directory != NULL);
  BgClient *client = bg_gate_get_client (gate);
  if (client != NULL)
    client_savepoint_answer (client, directory, ok, message);
}

const char *
bg_client_debug_state (BgGate *gate)
{
  BgClient *client = bg_gate_get_client (gate);
  /* A racy read of an int, for tests that poll it. */
  return client != NULL ? link_state_names[g_atomic_int_get ((gint *) &client->state)] : NULL;
}

void
bg_gate_report_now (BgGate *gate)
{
  g_return_if_fail (gate != NULL);
  BgClient *client = bg_gate_get_client (gate);
  if (client != NULL)
    link_invoke (client, report_now_cb, client, NULL);
}

void
bg_gate_report_delivered (BgGate *gate, BgTopic *topic, int32_t partition, int64_t next_offset)
{
  g_return_if_fail (gate != NULL);
  g_return_if_fail (topic != NULL);
  BgClient *client = bg_gate_get_client (gate);
  if (client == NULL || partition < 0 || next_offset < 0)
    return;

  char *key = hold_key (bg_topic_name (topic), partition);
  g_mutex_lock (&client->lock);
  gint64 *old = g_hash_table_lookup (client->delivered, key);
  if (old != NULL && *old >= next_offset)
    {
      g_mutex_unlock (&client->lock);
      g_free (key);
      return;
    }
  g_hash_table_insert (client->delivered, key, g_memdup2 (&next_offset, sizeof next_offset));
  client->delivered_dirty = TRUE;
  delivered_schedule_locked (client);
  g_mutex_unlock (&client->lock);
}
