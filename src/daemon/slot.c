/* slot.c — a job's slot: Slot1 object, unit lifecycle, steering, progress
 * and readiness (see slot.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/slot.h"

#include <errno.h>

#include "common/control-codec.h"
#include "common/dbus-args.h"
#include "daemon/bg-dbus-generated.h"
#include "daemon/caller.h"
#include "daemon/errors.h"
#include "daemon/history.h"
#include "daemon/log.h"


struct _BgdSlot {
  gint ref_count;
  BgdContext *ctx;
  char *job_name;
  BgColor color;
  char *path;
  char *unit;
  BgObjectSkeleton *object;
  BgSlot1 *iface;
  gulong unit_changed_id;
  BgdSlotChangedFunc changed;
  gpointer changed_data;

  BgdSlotState state;
  char **input_topics;  /* what reports may name */
  /* Partition "topic:partition" → next position (gint64), as reported:
   * at most BG_DBUS_ARGS_MAX_OFFSETS entries (a report replaces them). */
  GHashTable *positions;
  /* "topic:partition" → gint64 delivered, as reported (only grows), of
   * the input topics only and at most BG_DBUS_ARGS_MAX_OFFSETS entries:
   * a job cannot grow the agent's memory without bound. */
  GHashTable *delivered;
  BgdSlotArmedFunc armed_hook;
  BgdSlotDeliveredFunc delivered_hook;
  gpointer hook_data;
  gint64 lag_ok_since; /* monotonic µs since Lag <= MaxLag; 0: not */
  /* HealthCommand=: the last check's verdict (TRUE when there is none), the
   * check running now, and when the last one started. */
  gboolean health_ok;
  GCancellable *health_cancellable;
  gint64 health_started;
  /* Whether the unit runs with the live settings (full CPUWeight, no
   * IPAddressDeny guard) or the not-live ones (CatchUpCPUWeight=, the
   * [Guard] settings); see bgd_slot_set_live(). */
  gboolean live;
  /* What the agent wants of the unit, kept in the state file so that a
   * reboot brings back what should run (bgd_slot_wants_run()). Only the
   * agent's own start and stop, and a failure systemd gave up on, change
   * it: a unit that stops because its host shuts down stays wanted. */
  BgdSlotIntent intent;
  /* Restart=on-failure: a "failed" unit is restarted unless its start
   * limit was hit. */
  gboolean restart_on_failure;
  gint64 restart_usec;
  /* A "failed" unit under Restart=on-failure: if systemd has not started
   * it again by RestartSec= plus a margin, it gave up (start limit). */
  guint restart_check_id;
  /* The unit's start limit, for the reason a crash loop gives. */
  guint start_limit_burst;
  gint64 start_limit_interval_usec;
  char *last_result;                    /* the unit's Result as last reported */
  gboolean restart_on_failure_given_up; /* restart_check_cb is deciding */
  gboolean crash_pending;               /* died, systemd restarts it: keep the reason */
  /* A Deploy's start failed under Restart=on-failure: the agent stopped
   * the unit so systemd does not keep retrying a job that cannot start;
   * the slot stays "failed" with the start's reason until the next start. */
  gboolean start_abandoned;

  /* The pending savepoint request, if any. */
  GTask *savepoint_task;
  char *savepoint_dir;
  guint savepoint_timeout_id;
};

const char *
bgd_slot_state_to_string (BgdSlotState state)
{
  switch (state)
    {
    case BGD_SLOT_STOPPED: return "stopped";
    case BGD_SLOT_STARTING: return "starting";
    case BGD_SLOT_RUNNING: return "running";
    case BGD_SLOT_STOPPING: return "stopping";
    case BGD_SLOT_FAILED: return "failed";
    default: g_assert_not_reached ();
    }
}

/* <Color>State= in the state file. */
static const char *const slot_intent_names[] = {
  [BGD_SLOT_INTENT_UNKNOWN] = NULL,
  [BGD_SLOT_INTENT_RUN] = "running",
  [BGD_SLOT_INTENT_STOPPED] = "stopped",
  [BGD_SLOT_INTENT_FAILED] = "failed",
};

static void
slot_log_id (BgdSlot *slot, GLogLevelFlags level, const char *message_id, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);

/* Every line about a slot carries the job's journal fields (log.h). */
static void
slot_log_id (BgdSlot *slot, GLogLevelFlags level, const char *message_id, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  bgd_log_job (level, message_id, slot->job_name, bg_color_to_string (slot->color),
               bg_slot1_get_version (slot->iface), NULL, "%s: %s", bg_color_to_string (slot->color), msg);
}

#define slot_log(slot, level, ...) slot_log_id ((slot), (level), NULL, __VA_ARGS__)

static void
slot_emit_changed (BgdSlot *slot)
{
  if (slot->changed != NULL)
    slot->changed (slot, slot->changed_data);
}

/* The one transition function of the slot state machine. Every state may
 * follow every other one when systemd says so (a unit can fail while
 * starting, be restarted by someone else, ...), except that a stopped slot
 * only leaves "stopped" by starting or by systemd reporting the unit. What
 * matters is that the state and LastError always change together and are
 * announced. */
static void
slot_transition (BgdSlot *slot, BgdSlotState to, const char *error_text)
{
  BgdSlotState from = slot->state;

  /* Cleared by a fresh start (the agent's, or systemd's "activating"
   * outside a crash): a crash's reason outlives systemd's restart. */
  if (error_text != NULL)
    bg_slot1_set_last_error (slot->iface, error_text);
  if (to != BGD_SLOT_STARTING)
    g_clear_handle_id (&slot->restart_check_id, g_source_remove);

  if (from == to)
    return;
  slot->state = to;
  bg_slot1_set_state (slot->iface, bgd_slot_state_to_string (to));
  if (to != BGD_SLOT_RUNNING)
    {
      slot->lag_ok_since = 0;
      bg_slot1_set_ready (slot->iface, FALSE);
    }
  if (to == BGD_SLOT_STOPPED || to == BGD_SLOT_FAILED)
    bg_slot1_set_main_pid (slot->iface, 0);
  if (to == BGD_SLOT_FAILED)
    slot->intent = BGD_SLOT_INTENT_FAILED;
  if (to == BGD_SLOT_RUNNING || to == BGD_SLOT_FAILED)
    slot->crash_pending = FALSE;
  if (to == BGD_SLOT_RUNNING && slot->intent == BGD_SLOT_INTENT_FAILED)
    slot->intent = BGD_SLOT_INTENT_RUN; /* systemd restarted it after all */
  slot_log_id (slot, to == BGD_SLOT_FAILED ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_INFO,
               to == BGD_SLOT_FAILED ? BGD_MESSAGE_SLOT_FAILED : NULL,
            "state %s -> %s%s%s", bgd_slot_state_to_string (from),
            bgd_slot_state_to_string (to), error_text ? ": " : "",
            error_text ? error_text : "");
  slot_emit_changed (slot);
}

#define RESTART_CHECK_MARGIN_MS 3000

/* The instance died and systemd restarts it: one restart, counted once
 * however many of systemd's announcements say so, and only for an instance
 * that was running (a start that fails is the slot's State and LastError,
 * and a Deploy's failed start is not retried). Slot1.Restarts. */
static void
slot_count_crash (BgdSlot *slot)
{
  if (!slot->crash_pending && slot->state == BGD_SLOT_RUNNING)
    bg_slot1_set_restarts (slot->iface, bg_slot1_get_restarts (slot->iface) + 1);
  slot->crash_pending = TRUE;
}

static void slot_apply_unit_state (BgdSlot *slot, const char *active_state, const char *sub_state,
                                   const char *result, guint main_pid);

static gboolean
restart_check_cb (gpointer user_data)
{
  BgdSlot *slot = user_data;
  g_autofree char *result = g_strdup (slot->last_result);

  const char *active = bg_slot1_get_active_state (slot->iface);

  slot->restart_check_id = 0;
  if ((g_strcmp0 (active, "failed") != 0 && g_strcmp0 (active, "inactive") != 0)
      || slot->state != BGD_SLOT_STARTING)
    return G_SOURCE_REMOVE;
  /* Still down: systemd did not restart it (its start limit). */
  slot->restart_on_failure_given_up = TRUE;
  slot_apply_unit_state (slot, "failed", bg_slot1_get_sub_state (slot->iface), result, 0);
  slot->restart_on_failure_given_up = FALSE;
  return G_SOURCE_REMOVE;
}

static void
slot_arm_restart_check (BgdSlot *slot)
{
  g_clear_handle_id (&slot->restart_check_id, g_source_remove);
  slot->restart_check_id = g_timeout_add ((guint) MIN (slot->restart_usec / 1000 + RESTART_CHECK_MARGIN_MS, G_MAXUINT),
                                          restart_check_cb, slot);
}

/* systemd's ActiveState → the slot's state. */
static void
slot_apply_unit_state (BgdSlot *slot, const char *active_state, const char *sub_state,
                       const char *result, guint main_pid)
{
  bg_slot1_set_active_state (slot->iface, active_state ? active_state : "");
  bg_slot1_set_sub_state (slot->iface, sub_state ? sub_state : "");
  if (result != NULL && *result != '\0' && g_strcmp0 (result, slot->last_result) != 0)
    {
      g_free (slot->last_result);
      slot->last_result = g_strdup (result);
      /* systemd announces Result apart from ActiveState: a crash's reason
       * may come after the crash itself. */
      if (slot->restart_check_id != 0 && g_strcmp0 (result, "success") != 0)
        {
          g_autofree char *text = g_strdup_printf ("unit %s: the instance died (result %s); systemd restarts it",
                                                   slot->unit, result);
          bg_slot1_set_last_error (slot->iface, text);
        }
    }
  if (main_pid != 0)
    bg_slot1_set_main_pid (slot->iface, main_pid);

  if (slot->start_abandoned)
    {
      /* Whatever the stop shows (deactivating, inactive, failed), the
       * slot keeps the failed start's state and reason. */
      if (slot->state != BGD_SLOT_FAILED)
        slot_transition (slot, BGD_SLOT_FAILED, NULL);
    }
  else if (g_strcmp0 (active_state, "active") == 0 || g_strcmp0 (active_state, "reloading") == 0)
    slot_transition (slot, BGD_SLOT_RUNNING, NULL);
  else if (g_strcmp0 (active_state, "activating") == 0 && g_strcmp0 (sub_state, "auto-restart") == 0)
    {
      /* Restart=on-failure: the instance died and systemd starts a new
       * one after RestartSec=. Not ready meanwhile; the reason stays. */
      g_autofree char *text = g_strdup_printf ("unit %s: the instance died (result %s); systemd restarts it",
                                               slot->unit, result && *result ? result : "unknown");
      slot_count_crash (slot);
      slot_transition (slot, BGD_SLOT_STARTING, text);
    }
  else if (g_strcmp0 (active_state, "activating") == 0)
    {
      /* systemd starts the unit: a fresh start clears the last error, a
       * restart after a crash keeps its reason. */
      if (slot->state != BGD_SLOT_STARTING)
        slot_transition (slot, BGD_SLOT_STARTING, slot->crash_pending ? NULL : "");
    }
  else if (g_strcmp0 (active_state, "deactivating") == 0)
    slot_transition (slot, BGD_SLOT_STOPPING, NULL);
  else if (g_strcmp0 (active_state, "failed") == 0 && g_strcmp0 (result, "start-limit-hit") == 0)
    {
      g_autofree char *text = g_strdup_printf ("unit %s failed: crash loop, %u starts within %.0f s "
                                               "(StartLimitBurst=, StartLimitIntervalSec=): no more restarts",
                                               slot->unit, slot->start_limit_burst,
                                               slot->start_limit_interval_usec / (double) G_USEC_PER_SEC);
      slot_transition (slot, BGD_SLOT_FAILED, text);
    }
  else if (g_strcmp0 (active_state, "failed") == 0 && slot->restart_on_failure && slot->state != BGD_SLOT_STOPPING
           && !slot->restart_on_failure_given_up)
    {
      /* systemd shows "failed" for a moment before the auto-restart (up
       * to systemd 253): under Restart=on-failure only the start limit is
       * the end. The Result may still be the previous run's "success". */
      g_autofree char *text = g_strdup_printf ("unit %s: the instance died (result %s); systemd restarts it",
                                               slot->unit, result && *result && g_strcmp0 (result, "success") != 0
                                                 ? result : "not known yet");
      slot_count_crash (slot);
      slot_transition (slot, BGD_SLOT_STARTING, text);
      slot_arm_restart_check (slot);
    }
  else if (g_strcmp0 (active_state, "failed") == 0 && g_strcmp0 (result, "start-limit-hit") != 0
           && slot->restart_on_failure_given_up && slot->start_limit_burst > 0)
    {
      g_autofree char *text = g_strdup_printf ("unit %s failed: result %s; systemd did not restart it "
                                               "(a crash loop: at most %u starts within %.0f s, "
                                               "StartLimitBurst=, StartLimitIntervalSec=)",
                                               slot->unit, result && *result ? result : "unknown",
                                               slot->start_limit_burst,
                                               slot->start_limit_interval_usec / (double) G_USEC_PER_SEC);
      slot_transition (slot, BGD_SLOT_FAILED, text);
    }
  else if (g_strcmp0 (active_state, "failed") == 0)
    {
      /* A slot already failed keeps the reason it has: a failed start
       * says more (exit status, start timeout) than the Result here. */
      g_autofree char *text = slot->state == BGD_SLOT_FAILED ? NULL
        : g_strdup_printf ("unit %s failed: result %s", slot->unit, result && *result ? result : "unknown");
      slot_transition (slot, BGD_SLOT_FAILED, text);
    }
  else if (g_strcmp0 (active_state, "inactive") == 0)
    {
      /* A unit that stops with a failing result but is collected at once
       * shows "inactive"; keep the reason. */
      if (result != NULL && *result != '\0' && g_strcmp0 (result, "success") != 0
          && slot->state != BGD_SLOT_STOPPING && slot->restart_on_failure)
        {
          /* Between the auto-restart and the new start systemd shows the
           * unit "inactive" with the old result for a moment. */
          g_autofree char *text = g_strdup_printf ("unit %s: the instance died (result %s); systemd restarts it",
                                                   slot->unit, result);
          slot->crash_pending = TRUE;
          slot_transition (slot, BGD_SLOT_STARTING, text);
          slot_arm_restart_check (slot);
        }
      else if (result != NULL && *result != '\0' && g_strcmp0 (result, "success") != 0
               && slot->state != BGD_SLOT_STOPPING)
        {
          g_autofree char *text = slot->state == BGD_SLOT_FAILED ? NULL
            : g_strdup_printf ("unit %s failed: result %s", slot->unit, result);
          slot_transition (slot, BGD_SLOT_FAILED, text);
        }
      else
        slot_transition (slot, BGD_SLOT_STOPPED, NULL);
    }
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (slot->iface));
}

static void
on_unit_changed (BgdSystemd *systemd, const char *unit, const char *active_state,
                 const char *sub_state, const char *result, guint main_pid, gpointer user_data)
{
  BgdSlot *slot = user_data;

  if (g_strcmp0 (unit, slot->unit) != 0)
    return;
  slot_apply_unit_state (slot, active_state, sub_state, result, main_pid);
}

/* ---- the job-facing methods ------------------------------------------- */

/* Only a process inside this slot's own unit may steer by these methods. */
static gboolean
slot_check_caller (BgdSlot *slot, GDBusMethodInvocation *invocation)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *unit = NULL;
  const char *sender = g_dbus_method_invocation_get_sender (invocation);

  unit = bgd_caller_get_unit (g_dbus_method_invocation_get_connection (invocation),
                              sender, slot->ctx->user_manager, NULL, &error);
  if (unit != NULL && g_strcmp0 (unit, slot->unit) == 0)
    return TRUE;

  g_info ("%s: refused %s from %s (unit %s)", slot->path,
          g_dbus_method_invocation_get_method_name (invocation), sender,
          unit ? unit : (error ? error->message : "none"));
  g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_ACCESS_DENIED,
                                         "%s may only be called from inside %s",
                                         g_dbus_method_invocation_get_method_name (invocation),
                                         slot->unit);
  return FALSE;
}

static gboolean
handle_get_steering (BgSlot1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
  BgdSlot *slot = user_data;

  if (!slot_check_caller (slot, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  bg_slot1_complete_get_steering (iface, invocation,
                                  bg_slot1_get_sink_mode (iface),
                                  bg_slot1_get_ranges (iface),
                                  bg_slot1_get_plan (iface),
                                  bg_slot1_get_holds (iface),
                                  bg_slot1_get_generation (iface));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
positions_equal (GVariant *a, GVariant *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_variant_equal (a, b);
}

static gboolean
handle_report_progress (BgSlot1 *iface, GDBusMethodInvocation *invocation,
                        GVariant *positions, guint64 emitted, guint64 dropped,
                        guint64 applied_generation, gint64 waiting_us, gpointer user_data)
{
  BgdSlot *slot = user_data;
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 position;
  g_autoptr(GError) error = NULL;

  if (!slot_check_caller (slot, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  /* -1: nothing admitted yet on that partition. */
  if (!bg_dbus_args_check_offsets ("positions", positions, (const char *const *) slot->input_topics, -1, &error))
    {
      bgd_error_return (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (applied_generation > bg_slot1_get_generation (iface))
    {
      /* The instance applied a generation this agent does not know: its
       * state was lost (write-ahead keeps it otherwise). Generations only
       * grow, so the slot's steering moves past it and the instance, which
       * refuses anything older than what it applied, fetches it again. */
      slot_log (slot, G_LOG_LEVEL_MESSAGE,
                "the instance applied generation %" G_GUINT64_FORMAT ", ahead of %" G_GUINT64_FORMAT
                " (agent state lost?): moving past it", applied_generation, bg_slot1_get_generation (iface));
      bg_slot1_set_generation (iface, applied_generation);
      bgd_slot_set_steering (slot, NULL, NULL, NULL, NULL);
    }

  g_hash_table_remove_all (slot->positions);
  g_variant_iter_init (&iter, positions);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &position))
    g_hash_table_insert (slot->positions, g_strdup_printf ("%s:%d", topic, partition),
                         g_memdup2 (&position, sizeof position));

  if (!positions_equal (bg_slot1_get_positions (iface), positions))
    bg_slot1_set_positions (iface, positions);
  if (bg_slot1_get_emitted (iface) != emitted)
    bg_slot1_set_emitted (iface, emitted);
  if (bg_slot1_get_dropped (iface) != dropped)
    bg_slot1_set_dropped (iface, dropped);
  if (bg_slot1_get_applied_generation (iface) != applied_generation)
    bg_slot1_set_applied_generation (iface, applied_generation);
  if (bg_slot1_get_waiting (iface) != waiting_us)
    bg_slot1_set_waiting (iface, waiting_us);
  bg_slot1_complete_report_progress (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
slot_plan_armed (BgdSlot *slot, GDBusMethodInvocation *invocation, const char *id, gboolean ok,
                 const char *reason, GVariant *positions)
{
  g_autoptr(GError) error = NULL;

  if (!bg_dbus_args_check_id ("id", id, &error)
      || (positions != NULL
          && !bg_dbus_args_check_offsets ("positions", positions, (const char *const *) slot->input_topics, 0,
                                          &error)))
    {
      bgd_error_return (invocation, error);
      return;
    }
  if (strlen (reason) > BG_CONTROL_MAX_REASON)
    {
      g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                                             "reason: %zu bytes, at most %d", strlen (reason),
                                             BG_CONTROL_MAX_REASON);
      return;
    }
  bg_slot1_set_armed (slot->iface, g_variant_new ("(sbs)", id, ok, reason));
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (slot->iface));
  g_dbus_method_invocation_return_value (invocation, NULL);
  if (slot->armed_hook != NULL)
    slot->armed_hook (slot, id, ok, reason, positions, slot->hook_data);
}

static gboolean
handle_plan_armed (BgSlot1 *iface, GDBusMethodInvocation *invocation, const char *id,
                   gboolean ok, const char *reason, gpointer user_data)
{
  BgdSlot *slot = user_data;

  if (slot_check_caller (slot, invocation))
    slot_plan_armed (slot, invocation, id, ok, reason, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_plan_armed_at (BgSlot1 *iface, GDBusMethodInvocation *invocation, const char *id,
                      gboolean ok, const char *reason, GVariant *positions, gpointer user_data)
{
  BgdSlot *slot = user_data;

  if (slot_check_caller (slot, invocation))
    slot_plan_armed (slot, invocation, id, ok, reason, positions);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static GVariant *
delivered_variant (BgdSlot *slot)
{
  GVariantBuilder b;
  GHashTableIter iter;
  gpointer key, value;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(six)"));
  g_hash_table_iter_init (&iter, slot->delivered);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const char *k = key;
      const char *colon = strrchr (k, ':');
      g_autofree char *topic = g_strndup (k, colon - k);
      g_variant_builder_add (&b, "(six)", topic, (gint32) g_ascii_strtoll (colon + 1, NULL, 10),
                             *(gint64 *) value);
    }
  return g_variant_builder_end (&b);
}

static gboolean
handle_report_delivered (BgSlot1 *iface, GDBusMethodInvocation *invocation, GVariant *delivered,
                         gpointer user_data)
{
  BgdSlot *slot = user_data;
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 offset;
  gboolean changed = FALSE;
  g_autoptr(GError) error = NULL;

  if (!slot_check_caller (slot, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!bg_dbus_args_check_offsets ("delivered", delivered, (const char *const *) slot->input_topics, 0, &error))
    {
      bgd_error_return (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_variant_iter_init (&iter, delivered);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
    {
      g_autofree char *key = NULL;
      gint64 *old;

      if (*topic == '\0' || partition < 0 || offset < 0)
        continue;
      key = g_strdup_printf ("%s:%d", topic, partition);
      old = g_hash_table_lookup (slot->delivered, key);
      if (old != NULL && *old >= offset)
        continue;
      if (old == NULL && g_hash_table_size (slot->delivered) >= BG_DBUS_ARGS_MAX_OFFSETS)
        continue;
      g_hash_table_insert (slot->delivered, g_steal_pointer (&key), g_memdup2 (&offset, sizeof offset));
      changed = TRUE;
    }
  if (changed)
    {
      bg_slot1_set_delivered (iface, delivered_variant (slot));
      g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (iface));
    }
  bg_slot1_complete_report_delivered (iface, invocation);
  if (changed && slot->delivered_hook != NULL)
    slot->delivered_hook (slot, slot->hook_data);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
savepoint_finish_pending (BgdSlot *slot, GError *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&slot->savepoint_task);

  g_clear_handle_id (&slot->savepoint_timeout_id, g_source_remove);
  g_clear_pointer (&slot->savepoint_dir, g_free);
  if (task == NULL)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static gboolean
handle_savepoint_done (BgSlot1 *iface, GDBusMethodInvocation *invocation,
                       const char *directory, gboolean success, const char *message,
                       gpointer user_data)
{
  BgdSlot *slot = user_data;

  if (!slot_check_caller (slot, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (slot->savepoint_task == NULL || g_strcmp0 (directory, slot->savepoint_dir) != 0)
    {
      g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                                             "no savepoint was requested in '%s'", directory);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  slot_log (slot, G_LOG_LEVEL_INFO, "savepoint in %s %s%s%s", directory,
            success ? "written" : "failed", *message ? ": " : "", message);
  bg_slot1_complete_savepoint_done (iface, invocation);
  if (success)
    savepoint_finish_pending (slot, NULL);
  else
    savepoint_finish_pending (slot, g_error_new (BGD_ERROR, BGD_ERROR_FAILED,
                                                 "the job could not write a savepoint: %s",
                                                 *message ? message : "no reason given"));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- lifetime ------------------------------------------------------------ */

BgdSlot *
bgd_slot_new (BgdContext *ctx, const char *job_name, const char *job_path, BgColor color,
              BgdSlotChangedFunc changed, gpointer user_data)
{
  BgdSlot *slot = g_new0 (BgdSlot, 1);
  g_autoptr(GVariant) empty_plan = NULL;

  slot->ref_count = 1;
  slot->ctx = ctx;
  slot->job_name = g_strdup (job_name);
  slot->color = color;
  slot->path = g_strdup_printf ("%s/%s", job_path, bg_color_to_string (color));
  slot->unit = g_strdup_printf ("bluegreen-%s-%s.service", job_name, bg_color_to_string (color));
  slot->changed = changed;
  slot->changed_data = user_data;
  slot->state = BGD_SLOT_STOPPED;
  slot->positions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  slot->delivered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  slot->object = bg_object_skeleton_new (slot->path);
  slot->iface = bg_slot1_skeleton_new ();
  bg_slot1_set_job (slot->iface, job_name);
  bg_slot1_set_color (slot->iface, bg_color_to_string (color));
  bg_slot1_set_version (slot->iface, "");
  bg_slot1_set_state (slot->iface, "stopped");
  bg_slot1_set_unit (slot->iface, slot->unit);
  bg_slot1_set_active_state (slot->iface, "inactive");
  bg_slot1_set_sub_state (slot->iface, "dead");
  bg_slot1_set_sink_mode (slot->iface, "blackhole");
  bg_slot1_set_ranges (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(sixx)"), NULL, 0));
  bg_slot1_set_plan (slot->iface, g_variant_new ("(sssx@a(six))", "", "", "", (gint64) 0,
                                                 g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0)));
  bg_slot1_set_holds (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(si)"), NULL, 0));
  bg_slot1_set_positions (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0));
  bg_slot1_set_lag (slot->iface, -1);
  bg_slot1_set_last_error (slot->iface, "");
  bg_slot1_set_delivered (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0));
  bg_slot1_set_armed (slot->iface, g_variant_new ("(sbs)", "", FALSE, ""));
  g_signal_connect (slot->iface, "handle-plan-armed", G_CALLBACK (handle_plan_armed), slot);
  g_signal_connect (slot->iface, "handle-plan-armed-at", G_CALLBACK (handle_plan_armed_at), slot);
  g_signal_connect (slot->iface, "handle-report-delivered", G_CALLBACK (handle_report_delivered), slot);
  g_signal_connect (slot->iface, "handle-get-steering", G_CALLBACK (handle_get_steering), slot);
  g_signal_connect (slot->iface, "handle-report-progress", G_CALLBACK (handle_report_progress), slot);
  g_signal_connect (slot->iface, "handle-savepoint-done", G_CALLBACK (handle_savepoint_done), slot);
  bg_object_skeleton_set_slot1 (slot->object, slot->iface);

  slot->unit_changed_id = g_signal_connect (ctx->systemd, "unit-changed",
                                            G_CALLBACK (on_unit_changed), slot);
  bgd_systemd_watch_unit (ctx->systemd, slot->unit);
  return slot;
}

BgdSlot *
bgd_slot_ref (BgdSlot *slot)
{
  g_atomic_int_inc (&slot->ref_count);
  return slot;
}

void
bgd_slot_dispose (BgdSlot *slot)
{
  if (slot == NULL)
    return;
  slot->changed = NULL;
  slot->armed_hook = NULL;
  slot->delivered_hook = NULL;
  if (slot->unit_changed_id != 0)
    {
      g_clear_signal_handler (&slot->unit_changed_id, slot->ctx->systemd);
      bgd_systemd_unwatch_unit (slot->ctx->systemd, slot->unit);
    }
  savepoint_finish_pending (slot, g_error_new_literal (BGD_ERROR, BGD_ERROR_FAILED,
                                                       "the slot was removed"));
  if (slot->health_cancellable != NULL)
    g_cancellable_cancel (slot->health_cancellable);
  g_clear_handle_id (&slot->restart_check_id, g_source_remove);
  bgd_slot_unref (slot);
}

void
bgd_slot_unref (BgdSlot *slot)
{
  if (!g_atomic_int_dec_and_test (&slot->ref_count))
    return;
  g_assert (slot->savepoint_task == NULL);
  g_clear_object (&slot->health_cancellable);
  g_clear_object (&slot->iface);
  g_clear_object (&slot->object);
  g_hash_table_unref (slot->positions);
  g_hash_table_unref (slot->delivered);
  g_strfreev (slot->input_topics);
  g_clear_handle_id (&slot->restart_check_id, g_source_remove);
  g_free (slot->last_result);
  g_free (slot->job_name);
  g_free (slot->path);
  g_free (slot->unit);
  g_free (slot);
}

GDBusObjectSkeleton *bgd_slot_get_object (BgdSlot *slot) { return G_DBUS_OBJECT_SKELETON (slot->object); }
const char *bgd_slot_get_path (BgdSlot *slot) { return slot->path; }
const char *bgd_slot_get_unit (BgdSlot *slot) { return slot->unit; }
BgColor bgd_slot_get_color (BgdSlot *slot) { return slot->color; }
BgdSlotState bgd_slot_get_state (BgdSlot *slot) { return slot->state; }
const char *bgd_slot_get_sink_mode (BgdSlot *slot) { return bg_slot1_get_sink_mode (slot->iface); }
gboolean bgd_slot_get_ready (BgdSlot *slot) { return bg_slot1_get_ready (slot->iface); }
gint64 bgd_slot_get_lag (BgdSlot *slot) { return bg_slot1_get_lag (slot->iface); }
gboolean
bgd_slot_has_reported (BgdSlot *slot)
{
  return g_hash_table_size (slot->positions) > 0 || bg_slot1_get_applied_generation (slot->iface) > 0;
}

gboolean
bgd_slot_is_active (BgdSlot *slot)
{
  return slot->state == BGD_SLOT_STARTING || slot->state == BGD_SLOT_RUNNING
         || slot->state == BGD_SLOT_STOPPING;
}

const char *
bgd_slot_get_version (BgdSlot *slot)
{
  const char *v = bg_slot1_get_version (slot->iface);
  return v && *v ? v : NULL;
}

void
bgd_slot_set_sink_mode (BgdSlot *slot, const char *mode)
{
  guint64 generation = bg_slot1_get_generation (slot->iface) + 1;

  /* Generation last: a job that sees it change fetches everything. */
  bg_slot1_set_sink_mode (slot->iface, mode);
  bg_slot1_set_generation (slot->iface, generation);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (slot->iface));
  slot_log (slot, G_LOG_LEVEL_INFO, "sink mode %s (generation %" G_GUINT64_FORMAT ")",
            mode, generation);
  slot_emit_changed (slot);
}

static void
slot_flush (gpointer iface)
{
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (iface));
}

void
bgd_slot_set_steering (BgdSlot *slot, const char *mode, GVariant *ranges, GVariant *plan,
                       GVariant *holds)
{
  guint64 generation = bg_slot1_get_generation (slot->iface) + 1;
  g_autoptr(GVariant) r = ranges ? g_variant_ref_sink (ranges) : NULL;
  g_autoptr(GVariant) p = plan ? g_variant_ref_sink (plan) : NULL;
  g_autoptr(GVariant) h = holds ? g_variant_ref_sink (holds) : NULL;

  if (mode != NULL)
    bg_slot1_set_sink_mode (slot->iface, mode);
  if (r != NULL)
    bg_slot1_set_ranges (slot->iface, r);
  if (p != NULL)
    bg_slot1_set_plan (slot->iface, p);
  if (h != NULL)
    bg_slot1_set_holds (slot->iface, h);
  /* Generation last: a job that sees it change fetches everything. */
  bg_slot1_set_generation (slot->iface, generation);
  /* Write-ahead (docs/protocol.md, "What survives a restart"): the state
   * file has this steering before any instance can fetch it, so an agent
   * restarted at any point never hands out an older steering under a
   * generation an instance already applied. Nothing runs in between: the
   * main loop answers GetSteering only after this returns. */
  bgd_history_write_ahead (slot->ctx->persist, slot->ctx->agent, slot_flush, slot->iface);
  slot_log (slot, G_LOG_LEVEL_INFO, "steering: %s (generation %" G_GUINT64_FORMAT ")",
            bg_slot1_get_sink_mode (slot->iface), generation);
  slot_emit_changed (slot);
}

BgdSteering *
bgd_slot_dup_steering (BgdSlot *slot)
{
  return bgd_steering_new_full (bg_slot1_get_sink_mode (slot->iface), bg_slot1_get_ranges (slot->iface),
                                bg_slot1_get_plan (slot->iface), bg_slot1_get_holds (slot->iface));
}

void
bgd_slot_apply_steering (BgdSlot *slot, BgdSteering *next)
{
  g_autoptr(BgdSteering) owned = next;

  if (next == NULL)
    return;
  bgd_slot_set_steering (slot, next->mode, next->ranges, next->plan, next->holds);
}

GVariant *bgd_slot_get_ranges (BgdSlot *slot) { return bg_slot1_get_ranges (slot->iface); }
GVariant *bgd_slot_get_plan (BgdSlot *slot) { return bg_slot1_get_plan (slot->iface); }
GVariant *bgd_slot_get_holds (BgdSlot *slot) { return bg_slot1_get_holds (slot->iface); }

gint64
bgd_slot_get_delivered (BgdSlot *slot, const char *topic, gint32 partition)
{
  g_autofree char *key = g_strdup_printf ("%s:%d", topic, partition);
  const gint64 *v = g_hash_table_lookup (slot->delivered, key);

  return v ? *v : -1;
}

void
bgd_slot_set_input_topics (BgdSlot *slot, const char *const *topics)
{
  g_strfreev (slot->input_topics);
  slot->input_topics = g_strdupv ((char **) topics);
}

void
bgd_slot_set_cutover_hooks (BgdSlot *slot, BgdSlotArmedFunc armed, BgdSlotDeliveredFunc delivered,
                            gpointer user_data)
{
  slot->armed_hook = armed;
  slot->delivered_hook = delivered;
  slot->hook_data = user_data;
}

#define STEERING_RECORD_TYPE "(a(sixx)(sssxa(six))a(si))"

void
bgd_slot_fill_record (BgdSlot *slot, BgdSlotRecord *record)
{
  g_autoptr(GVariant) steering = g_variant_ref_sink (
    g_variant_new ("(@a(sixx)@(sssxa(six))@a(si))", bg_slot1_get_ranges (slot->iface),
                   bg_slot1_get_plan (slot->iface), bg_slot1_get_holds (slot->iface)));

  record->steering = g_variant_print (steering, FALSE);
  record->version = g_strdup (bgd_slot_get_version (slot));
  record->sink_mode = g_strdup (bg_slot1_get_sink_mode (slot->iface));
  record->generation = bg_slot1_get_generation (slot->iface);
  record->state = g_strdup (slot_intent_names[slot->intent]);
}

void
bgd_slot_restore_record (BgdSlot *slot, const BgdSlotRecord *record)
{
  bg_slot1_set_version (slot->iface, record->version ? record->version : "");
  if (record->sink_mode != NULL)
    bg_slot1_set_sink_mode (slot->iface, record->sink_mode);
  if (record->steering != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE (STEERING_RECORD_TYPE), record->steering,
                                               NULL, NULL, &error);
      if (v == NULL)
        slot_log (slot, G_LOG_LEVEL_MESSAGE, "stored steering ignored: %s", error->message);
      else
        {
          bg_slot1_set_ranges (slot->iface, g_variant_get_child_value (v, 0));
          bg_slot1_set_plan (slot->iface, g_variant_get_child_value (v, 1));
          bg_slot1_set_holds (slot->iface, g_variant_get_child_value (v, 2));
        }
    }
  /* Never go back in generations: a job that applied N must see a change. */
  bg_slot1_set_generation (slot->iface, record->generation);
  slot->intent = BGD_SLOT_INTENT_UNKNOWN;
  for (guint i = 0; i < G_N_ELEMENTS (slot_intent_names); i++)
    if (slot_intent_names[i] != NULL && g_strcmp0 (record->state, slot_intent_names[i]) == 0)
      slot->intent = (BgdSlotIntent) i;
  if (record->state != NULL && slot->intent == BGD_SLOT_INTENT_UNKNOWN)
    slot_log (slot, G_LOG_LEVEL_MESSAGE, "stored state '%s' ignored: expected running, stopped or failed",
              record->state);
}

gboolean
bgd_slot_wants_run (BgdSlot *slot)
{
  return slot->intent == BGD_SLOT_INTENT_RUN && bgd_slot_get_version (slot) != NULL;
}

void
bgd_slot_adopt (BgdSlot *slot, const char *active_state, const char *sub_state,
                const char *result, guint main_pid)
{
  slot_log (slot, G_LOG_LEVEL_INFO, "adopting %s (%s/%s, pid %u)", slot->unit,
            active_state, sub_state, main_pid);
  slot_apply_unit_state (slot, active_state, sub_state, result, main_pid);
  /* A running unit is wanted (a state file of an older agent says nothing). */
  if (bgd_slot_is_active (slot) && slot->state != BGD_SLOT_STOPPING)
    slot->intent = BGD_SLOT_INTENT_RUN;
}

/* ---- start and stop ------------------------------------------------------ */

/* g_strv_builder_take() is GLib 2.80. */
static void
strv_builder_take (GStrvBuilder *builder, char *value)
{
  g_strv_builder_add (builder, value);
  g_free (value);
}

static char *
join_topics (const BgJobConfig *job)
{
  return g_strjoinv (",", job->input_topics);
}

/* CPUWeight= for a live slot, CatchUpCPUWeight= (if set) for one that is
 * not: a candidate catching up cannot starve the live version. 0: not set. */
static guint
slot_cpu_weight (const BgJobConfig *job, gboolean live)
{
  if (!live && job->catch_up_cpu_weight != 0)
    return job->catch_up_cpu_weight;
  return job->cpu_weight;
}

/* What a start needs when it completes. The task has no source object:
 * the slot is here, referenced for as long as the start runs. */
typedef struct {
  BgdSlot *slot;
  gint64 start_timeout_usec; /* the job's StartTimeoutSec=, for the message */
  char *failure;             /* why the start failed, while its unit is stopped */
} SlotStart;

static void
slot_start_free (SlotStart *start)
{
  bgd_slot_unref (start->slot);
  g_free (start->failure);
  g_free (start);
}

/* Why the unit did not start, as the slot's LastError and the Deploy error
 * say it: the driver's message names the unit and systemd's reason. */
static char *
slot_start_failure_text (const SlotStart *start, const GError *error)
{
  if (g_error_matches (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_START_TIMEOUT))
    return g_strdup_printf ("%s: no READY=1 within StartTimeoutSec=%g (unit result: timeout)", start->slot->unit,
                            (double) start->start_timeout_usec / G_USEC_PER_SEC);
  if (g_str_has_prefix (error->message, start->slot->unit))
    return g_strdup (error->message);
  return g_strdup_printf ("%s: %s", start->slot->unit, error->message);
}

/* The unit of a failed start is stopped: the Deploy gets the start's
 * error (a failure to stop is logged, the start's reason matters more). */
static void
slot_abandon_stopped_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  SlotStart *start = g_task_get_task_data (task);

  if (!bgd_systemd_stop_unit_finish (BGD_SYSTEMD (source), res, &error))
    g_message ("could not stop %s, whose start failed: %s", start->slot->unit, error->message);
  g_task_return_new_error (task, BGD_ERROR, BGD_ERROR_START_FAILED, "%s", start->failure);
}

static void
slot_start_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  SlotStart *start = g_task_get_task_data (task);
  BgdSlot *slot = start->slot;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gboolean did_not_start;

  if (bgd_systemd_start_transient_finish (BGD_SYSTEMD (source), res, &error))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  /* The unit ran and failed (StartFailed), or was never made (Failed). */
  did_not_start = g_error_matches (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_JOB_FAILED)
                  || g_error_matches (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_START_TIMEOUT);
  text = slot_start_failure_text (start, error);
  if (slot->state != BGD_SLOT_FAILED)
    slot_transition (slot, BGD_SLOT_FAILED, text);
  else
    bg_slot1_set_last_error (slot->iface, text);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (slot->iface));
  if (did_not_start && slot->restart_on_failure)
    {
      /* Restart= is for crashes of a job that ran: a version that cannot
       * start would be retried by systemd until its start limit, in the
       * background of a Deploy that already failed. Nothing is left
       * running: the Deploy answers once the unit is stopped. */
      slot->start_abandoned = TRUE;
      slot_log (slot, G_LOG_LEVEL_MESSAGE, "stopping %s: its start failed, no restarts", slot->unit);
      start->failure = g_steal_pointer (&text);
      bgd_systemd_stop_unit_async (slot->ctx->systemd, slot->unit, NULL, slot_abandon_stopped_cb,
                                   g_steal_pointer (&task));
      return;
    }
  g_task_return_new_error (task, BGD_ERROR, did_not_start ? BGD_ERROR_START_FAILED : BGD_ERROR_FAILED,
                           "%s", text);
}

void
bgd_slot_apply_sandbox (BgdUnitSpec *spec, const BgJobConfig *job, gboolean user_manager)
{
  spec->user = job->user;
  spec->group = job->group;
  spec->dynamic_user = job->dynamic_user;
  spec->hardening = job->hardening == BG_HARDENING_DEFAULT;
  spec->hardening_user_manager = user_manager;
  spec->read_write_paths = (const char *const *) job->read_write_paths;
  spec->bind_paths = (const char *const *) job->bind_paths;
  spec->load_credentials = (const char *const *) job->load_credentials;
  spec->environment_files = (const char *const *) job->environment_files;
}

/* Deploy (@resume FALSE): a new version, steering reset to @sink_mode.
 * Resume: the same version under the slot's current steering. */
static void
slot_start_unit (BgdSlot *slot, BgJobConfig *job, const char *version, const char *sink_mode,
                 const BgdSteering *initial, const char *savepoint_dir, gboolean resume,
                 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *group = NULL;
  g_autofree char *topics = NULL;
  g_autofree char *description = NULL;
  g_autofree char *output = NULL;
  g_autoptr(GStrvBuilder) env = g_strv_builder_new ();
  g_auto(GStrv) environment = NULL;
  BgdUnitSpec spec = { 0 };
  gboolean live = resume ? slot->live : g_strcmp0 (sink_mode, "live") == 0;
  g_autofree char *savepoints = NULL;
  g_autoptr(GStrvBuilder) bind = NULL;
  g_auto(GStrv) bind_paths = NULL;
  SlotStart *start = g_new0 (SlotStart, 1);

  start->slot = bgd_slot_ref (slot);
  start->start_timeout_usec = job->start_timeout_usec;
  g_task_set_task_data (task, start, (GDestroyNotify) slot_start_free);

  argv = bg_job_config_expand_exec (job, version, &error);
  if (argv != NULL)
    group = bg_job_config_expand_consumer_group (job, slot->color, version, &error);
  if (argv == NULL || group == NULL)
    {
      g_task_return_new_error (task, BGD_ERROR, BGD_ERROR_FAILED, "%s", error->message);
      return;
    }
  topics = join_topics (job);

  g_strv_builder_addv (env, (const char **) job->environment);
  /* The guard's overrides come after the job's own settings, so they win
   * (systemd keeps the last assignment of a variable). They stay until the
   * unit restarts: a process's environment cannot change from outside. */
  if (!live)
    g_strv_builder_addv (env, (const char **) job->guard_environment);
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_JOB=%s", slot->job_name));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_COLOR=%s", bg_color_to_string (slot->color)));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_VERSION=%s", version));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_SLOT=%s", slot->path));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_BUS=%s", slot->ctx->user_manager ? "session" : "system"));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_GROUP_ID=%s", group));
  /* Tells a color's instances apart across the fleet and stays the same
   * across an instance's restarts (e.g. a transactional.id). */
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_HOST=%s", slot->ctx->config->host_id));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_SINK_MODE=%s", sink_mode));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_BOOTSTRAP=%s", slot->ctx->config->bootstrap_servers));
  strv_builder_take (env, g_strdup_printf ("BLUEGREEN_INPUT_TOPICS=%s", topics));
  if (savepoint_dir != NULL)
    strv_builder_take (env, g_strdup_printf ("BLUEGREEN_SAVEPOINT=%s", savepoint_dir));
  environment = g_strv_builder_end (env);

  description = g_strdup_printf ("bluegreen %s %s (version %s)", slot->job_name,
                                 bg_color_to_string (slot->color), version);
  if (!slot->ctx->have_journal)
    output = g_strdup_printf ("%s/%s.log", slot->ctx->logs_directory, slot->unit);

  spec.name = slot->unit;
  spec.description = description;
  spec.slice = "bluegreen.slice";
  spec.argv = (const char *const *) argv;
  spec.environment = (const char *const *) environment;
  spec.service_type = "notify";
  /* READY=1 may come from a child of ExecStart= (a wrapper script). */
  spec.notify_access = "all";
  spec.cpu_weight = slot_cpu_weight (job, live);
  if (!live)
    spec.ip_address_deny = (const char *const *) job->guard_ip_address_deny;
  spec.memory_max = job->memory_max;
  spec.tasks_max = job->tasks_max;
  /* systemd waits StartTimeoutSec= for READY=1: the job sends it once it
   * consumes, which may need a consumer-group assignment first. */
  spec.watchdog_usec = (guint64) job->watchdog_usec;
  spec.timeout_start_usec = (guint64) job->start_timeout_usec;
  /* A crash restarts the instance (it comes back in mode unknown and
   * fetches the slot's steering); a crash loop hits the start limit and
   * the unit fails with Result "start-limit-hit". */
  spec.restart = job->restart_on_failure ? "on-failure" : "no";
  spec.restart_usec = (guint64) job->restart_usec;
  spec.start_limit_burst = job->start_limit_burst;
  spec.start_limit_interval_usec = (guint64) job->start_limit_interval_usec;
  slot->restart_on_failure = job->restart_on_failure;
  slot->restart_usec = job->restart_usec;
  slot->start_limit_burst = job->start_limit_burst;
  slot->start_limit_interval_usec = job->start_limit_interval_usec;
  spec.output_path = output;

  /* [Sandbox]. The job's savepoints directory is bound into the unit at
   * its own path (BindPaths=), so the job can write savepoints under
   * ProtectSystem=strict and still sees it under PrivateTmp= when the
   * state directory is below /tmp. */
  savepoints = g_build_filename (slot->ctx->state_directory, "savepoints", slot->job_name, NULL);
  if (g_mkdir_with_parents (savepoints, 0700) != 0)
    {
      int errsv = errno;
      g_task_return_new_error (task, BGD_ERROR, BGD_ERROR_FAILED, "cannot create %s: %s",
                               savepoints, g_strerror (errsv));
      return;
    }
  bind = g_strv_builder_new ();
  g_strv_builder_add (bind, savepoints);
  g_strv_builder_addv (bind, (const char **) job->bind_paths);
  bind_paths = g_strv_builder_end (bind);
  bgd_slot_apply_sandbox (&spec, job, slot->ctx->user_manager);
  spec.bind_paths = (const char *const *) bind_paths;

  /* The new version is announced before the unit starts so that a job
   * that asks for its steering at once finds a consistent slot. */
  if (!resume)
    {
      bg_slot1_set_version (slot->iface, version);
      bg_slot1_set_sink_mode (slot->iface, sink_mode);
      slot->live = live;
      if (initial != NULL)
        {
          bg_slot1_set_sink_mode (slot->iface, initial->mode);
          bg_slot1_set_ranges (slot->iface, initial->ranges);
          bg_slot1_set_plan (slot->iface, initial->plan);
          bg_slot1_set_holds (slot->iface, initial->holds);
        }
      else
        {
          bg_slot1_set_ranges (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(sixx)"), NULL, 0));
          bg_slot1_set_plan (slot->iface, g_variant_new ("(sssx@a(six))", "", "", "", (gint64) 0,
                                                         g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0)));
          bg_slot1_set_holds (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(si)"), NULL, 0));
        }
      /* Delivered offsets are facts about the output topic: a resumed
       * slot keeps them (they stay true), a new version starts afresh. */
      g_hash_table_remove_all (slot->delivered);
      bg_slot1_set_delivered (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0));
    }
  bg_slot1_set_armed (slot->iface, g_variant_new ("(sbs)", "", FALSE, ""));
  bg_slot1_set_generation (slot->iface, bg_slot1_get_generation (slot->iface) + 1);
  bg_slot1_set_applied_generation (slot->iface, 0);
  slot->intent = BGD_SLOT_INTENT_RUN;
  bg_slot1_set_positions (slot->iface, g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0));
  bg_slot1_set_emitted (slot->iface, 0);
  bg_slot1_set_dropped (slot->iface, 0);
  if (!resume)
    bg_slot1_set_restarts (slot->iface, 0);
  bg_slot1_set_lag (slot->iface, -1);
  g_hash_table_remove_all (slot->positions);
  bg_slot1_set_last_error (slot->iface, "");
  slot->crash_pending = FALSE;
  slot->start_abandoned = FALSE;
  slot_transition (slot, BGD_SLOT_STARTING, NULL);
  /* Write-ahead as for any steering: the grown generation is on disk
   * before the instance can fetch it. */
  if (resume && slot->ctx->persist != NULL)
    slot->ctx->persist (slot->ctx->agent);
  slot_log (slot, G_LOG_LEVEL_MESSAGE, "%s %s version %s (%s%s%s, generation %" G_GUINT64_FORMAT ")",
            resume ? "resuming" : "starting", slot->unit, version, resume ? bg_slot1_get_sink_mode (slot->iface) : sink_mode,
            savepoint_dir ? ", from savepoint " : "", savepoint_dir ? savepoint_dir : "",
            bg_slot1_get_generation (slot->iface));
  slot_emit_changed (slot);

  bgd_systemd_start_transient_async (slot->ctx->systemd, &spec, cancellable,
                                     slot_start_cb, g_steal_pointer (&task));
}

void
bgd_slot_start_async (BgdSlot *slot, BgJobConfig *job, const char *version,
                      const char *sink_mode, const char *savepoint_dir,
                      GCancellable *cancellable, GAsyncReadyCallback callback,
                      gpointer user_data)
{
  slot_start_unit (slot, job, version, sink_mode, NULL, savepoint_dir, FALSE, cancellable, callback, user_data);
}

void
bgd_slot_start_steered_async (BgdSlot *slot, BgJobConfig *job, const char *version,
                              const BgdSteering *initial, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  /* Live for a job that knows only live and blackhole (it cannot be
   * steered by ranges anyway); a linked job fetches @initial. */
  slot_start_unit (slot, job, version, "live", initial, NULL, FALSE, cancellable, callback, user_data);
}

void
bgd_slot_resume_async (BgdSlot *slot, BgJobConfig *job, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  g_autofree char *version = g_strdup (bgd_slot_get_version (slot));
  const char *mode = bg_slot1_get_sink_mode (slot->iface);

  g_return_if_fail (version != NULL);
  /* BLUEGREEN_SINK_MODE is the initial mode of jobs that cannot link the
   * library and know only live and blackhole; a linked job ignores it,
   * starts in mode unknown and fetches the slot's steering. */
  slot_start_unit (slot, job, version, g_strcmp0 (mode, "live") == 0 ? "live" : "blackhole", NULL, NULL, TRUE,
                   cancellable, callback, user_data);
}

gboolean
bgd_slot_start_finish (BgdSlot *slot, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
slot_stop_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  BgdSlot *slot = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!bgd_systemd_stop_unit_finish (BGD_SYSTEMD (source), res, &error))
    {
      g_task_return_new_error (task, BGD_ERROR, BGD_ERROR_FAILED, "%s: %s",
                               slot->unit, error->message);
      return;
    }
  /* Reported by systemd too, but a unit that never existed sends nothing. */
  slot_transition (slot, BGD_SLOT_STOPPED, NULL);
  bg_slot1_set_version (slot->iface, "");
  bg_slot1_set_active_state (slot->iface, "inactive");
  bg_slot1_set_sub_state (slot->iface, "dead");
  bg_slot1_set_lag (slot->iface, -1);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (slot->iface));
  slot_emit_changed (slot);
  g_task_return_boolean (task, TRUE);
}

void
bgd_slot_stop_async (BgdSlot *slot, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_task_data (task, bgd_slot_ref (slot), (GDestroyNotify) bgd_slot_unref);
  slot_log (slot, G_LOG_LEVEL_MESSAGE, "stopping %s", slot->unit);
  slot->intent = BGD_SLOT_INTENT_STOPPED;
  slot->start_abandoned = FALSE;
  /* Written ahead: an agent killed before the unit is gone must not bring
   * it back after its restart. */
  if (slot->ctx->persist != NULL)
    slot->ctx->persist (slot->ctx->agent);
  if (slot->state == BGD_SLOT_STARTING || slot->state == BGD_SLOT_RUNNING)
    slot_transition (slot, BGD_SLOT_STOPPING, NULL);
  bgd_systemd_stop_unit_async (slot->ctx->systemd, slot->unit, cancellable,
                               slot_stop_cb, task);
}

gboolean
bgd_slot_stop_finish (BgdSlot *slot, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- live or not: CPU weight and guards at runtime ---------------------------- */

static void
set_live_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(BgdSlot) slot = user_data;
  g_autoptr(GError) error = NULL;

  if (!bgd_systemd_set_unit_properties_finish (BGD_SYSTEMD (source), res, &error))
    slot_log (slot, G_LOG_LEVEL_MESSAGE, "cannot change %s's properties: %s", slot->unit, error->message);
}

void
bgd_slot_set_live (BgdSlot *slot, const BgJobConfig *job, gboolean live)
{
  GVariantBuilder props;
  gboolean any = FALSE;
  guint weight;

  if (slot->live == live)
    return;
  slot->live = live;
  if (!bgd_slot_is_active (slot))
    return;

  g_variant_builder_init (&props, G_VARIANT_TYPE ("a(sv)"));
  if (job->catch_up_cpu_weight != 0)
    {
      /* Back to systemd's default when CPUWeight= is not set. */
      weight = slot_cpu_weight (job, live);
      g_variant_builder_add (&props, "(sv)", "CPUWeight", g_variant_new_uint64 (weight ? weight : 100));
      any = TRUE;
    }
  if (job->guard_ip_address_deny != NULL && job->guard_ip_address_deny[0] != NULL)
    {
      /* An empty list clears the property. */
      g_variant_builder_add (&props, "(sv)", "IPAddressDeny",
                             bgd_systemd_ip_address_list (live ? NULL : (const char *const *) job->guard_ip_address_deny));
      any = TRUE;
    }
  if (!any)
    {
      g_variant_builder_clear (&props);
      return;
    }
  slot_log (slot, G_LOG_LEVEL_INFO, "%s: %s", live ? "live" : "not live",
            live ? "full CPU weight, IPAddressDeny guard lifted" : "catch-up CPU weight, IPAddressDeny guard set");
  bgd_systemd_set_unit_properties_async (slot->ctx->systemd, slot->unit, g_variant_builder_end (&props), NULL,
                                         set_live_cb, bgd_slot_ref (slot));
}

gboolean bgd_slot_get_live (BgdSlot *slot) { return slot->live; }
GVariant *bgd_slot_get_positions (BgdSlot *slot) { return bg_slot1_get_positions (slot->iface); }
guint64 bgd_slot_get_emitted (BgdSlot *slot) { return bg_slot1_get_emitted (slot->iface); }
guint64 bgd_slot_get_dropped (BgdSlot *slot) { return bg_slot1_get_dropped (slot->iface); }
guint bgd_slot_get_restarts (BgdSlot *slot) { return bg_slot1_get_restarts (slot->iface); }

/* ---- savepoints ---------------------------------------------------------- */

static gboolean
savepoint_timeout_cb (gpointer user_data)
{
  BgdSlot *slot = user_data;
  g_autofree char *dir = g_strdup (slot->savepoint_dir);

  slot->savepoint_timeout_id = 0;
  savepoint_finish_pending (slot, g_error_new (BGD_ERROR, BGD_ERROR_TIMEOUT,
                                               "no savepoint from %s in %s in time",
                                               slot->unit, dir));
  return G_SOURCE_REMOVE;
}

void
bgd_slot_request_savepoint_async (BgdSlot *slot, const char *directory,
                                  gint64 timeout_usec, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  if (slot->savepoint_task != NULL)
    {
      g_task_return_new_error (task, BGD_ERROR, BGD_ERROR_BUSY,
                               "a savepoint of %s is already being written", slot->unit);
      return;
    }
  slot->savepoint_task = g_steal_pointer (&task);
  slot->savepoint_dir = g_strdup (directory);
  slot->savepoint_timeout_id = g_timeout_add ((guint) (timeout_usec / 1000),
                                              savepoint_timeout_cb, slot);
  slot_log (slot, G_LOG_LEVEL_INFO, "asking for a savepoint in %s", directory);
  bg_slot1_emit_savepoint_requested (slot->iface, directory);
}

gboolean
bgd_slot_request_savepoint_finish (BgdSlot *slot, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- lag and readiness --------------------------------------------------- */

/* ---- HealthCommand= --------------------------------------------------------- */

#define HEALTH_INTERVAL_USEC (2 * G_USEC_PER_SEC)
#define HEALTH_TIMEOUT_SEC 10

typedef struct {
  BgdSlot *slot;
  guint timeout_id;
  GSubprocess *proc;
} HealthCheck;

static gboolean
health_timeout_cb (gpointer user_data)
{
  HealthCheck *hc = user_data;

  hc->timeout_id = 0;
  g_subprocess_force_exit (hc->proc);
  return G_SOURCE_REMOVE;
}

static void
health_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HealthCheck *hc = user_data;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_subprocess_wait_check_finish (G_SUBPROCESS (source), result, &error);
  BgdSlot *slot = hc->slot;

  g_clear_handle_id (&hc->timeout_id, g_source_remove);
  g_clear_object (&hc->proc);
  g_free (hc);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      bgd_slot_unref (slot);
      return;
    }
  g_clear_object (&slot->health_cancellable);
  if (ok != slot->health_ok)
    {
      if (ok)
        slot_log (slot, G_LOG_LEVEL_INFO, "health command passes");
      else
        slot_log (slot, G_LOG_LEVEL_MESSAGE, "health command fails: %s", error->message);
    }
  slot->health_ok = ok;
  bgd_slot_unref (slot);
}

/* Starts HealthCommand= unless one runs or the last started less than
 * HEALTH_INTERVAL_USEC ago; its verdict counts from the next lag update.
 * A command that cannot start, fails or outlives HEALTH_TIMEOUT_SEC fails. */
static void
slot_run_health_check (BgdSlot *slot, char **argv, gint64 now)
{
  g_autoptr(GError) error = NULL;
  HealthCheck *hc;

  if (slot->health_cancellable != NULL || now - slot->health_started < HEALTH_INTERVAL_USEC)
    return;
  slot->health_started = now;
  hc = g_new0 (HealthCheck, 1);
  hc->proc = g_subprocess_newv ((const char *const *) argv,
                                G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  if (hc->proc == NULL)
    {
      if (slot->health_ok)
        slot_log (slot, G_LOG_LEVEL_MESSAGE, "health command cannot run: %s", error->message);
      slot->health_ok = FALSE;
      g_free (hc);
      return;
    }
  hc->slot = bgd_slot_ref (slot);
  slot->health_cancellable = g_cancellable_new ();
  hc->timeout_id = g_timeout_add_seconds (HEALTH_TIMEOUT_SEC, health_timeout_cb, hc);
  g_subprocess_wait_check_async (hc->proc, slot->health_cancellable, health_done_cb, hc);
}

void
bgd_slot_update_lag (BgdSlot *slot, GHashTable *watermarks, gint64 max_lag, gint64 stable_usec,
                     char **health_argv)
{
  GHashTableIter iter;
  gpointer key, value;
  gint64 lag = 0;
  gboolean ready;
  gint64 now = g_get_monotonic_time ();

  /* Unknown until the job has admitted something: before its consumer
   * group assigns it partitions it has reported none, and "nothing to catch
   * up on" would make it Ready too early. (So a job on an input that never
   * had a record is never Ready; see README, Limits.) */
  if (watermarks == NULL || g_hash_table_size (slot->positions) == 0)
    lag = -1;
  g_hash_table_iter_init (&iter, slot->positions);
  while (lag >= 0 && g_hash_table_iter_next (&iter, &key, &value))
    {
      const gint64 *hwm = g_hash_table_lookup (watermarks, key);
      gint64 pos = *(const gint64 *) value;

      if (hwm == NULL)
        {
          lag = -1;
          break;
        }
      /* -1: nothing admitted yet on that partition, all of it is behind. */
      lag += MAX (0, *hwm - MAX (pos, 0));
    }

  if (bg_slot1_get_lag (slot->iface) != lag)
    bg_slot1_set_lag (slot->iface, lag);

  if (slot->state == BGD_SLOT_RUNNING && lag >= 0 && lag <= max_lag)
    {
      if (slot->lag_ok_since == 0)
        slot->lag_ok_since = now;
    }
  else
    slot->lag_ok_since = 0;

  /* The health command runs only once the lag is fine: it says whether a
   * caught-up instance is also healthy, not how far it is behind. */
  if (health_argv == NULL)
    slot->health_ok = TRUE;
  else if (slot->lag_ok_since != 0)
    slot_run_health_check (slot, health_argv, now);
  else
    slot->health_ok = FALSE;
  ready = slot->lag_ok_since != 0 && now - slot->lag_ok_since >= stable_usec && slot->health_ok;
  if (ready != bg_slot1_get_ready (slot->iface))
    {
      bg_slot1_set_ready (slot->iface, ready);
      if (ready)
        slot_log_id (slot, G_LOG_LEVEL_MESSAGE, BGD_MESSAGE_SLOT_READY, "ready (lag %" G_GINT64_FORMAT ")", lag);
      else
        slot_log (slot, G_LOG_LEVEL_INFO, "not ready (lag %" G_GINT64_FORMAT ")", lag);
      slot_emit_changed (slot);
    }
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (slot->iface));
}
