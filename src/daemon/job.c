/* job.c — a job on this host: Job1 object, phase state machine, Deploy,
 * Retire and SetSinkMode (see job.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/job.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "daemon/bg-dbus-generated.h"
#include "daemon/errors.h"


struct _BgdJob {
  gint ref_count;
  BgdContext *ctx;
  BgJobConfig *config;
  char *path;
  BgObjectSkeleton *object;
  BgJob1 *iface;
  BgdSlot *slots[BG_N_COLORS];
  BgdJobPhase phase;
  gboolean deploy_in_flight;
  gboolean disposed;
};

typedef enum {
  JOB_METHOD_DEPLOY,
  JOB_METHOD_RETIRE,
  JOB_METHOD_SET_SINK_MODE,
  JOB_METHOD_CUTOVER,
  JOB_METHOD_ROLLBACK,
  JOB_METHOD_ABORT,
  JOB_METHOD_EVICT_HOST,
  JOB_N_METHODS,
} JobMethod;

static const char *const job_method_names[JOB_N_METHODS] = {
  "Deploy", "Retire", "SetSinkMode", "Cutover", "Rollback", "Abort", "EvictHost",
};

#define P(phase) (1u << (phase))
/* Which method is valid in which phase: the table of the XML's Job1
 * comment. EvictHost is about membership, not about this host's slots. */
static const guint job_method_phases[JOB_N_METHODS] = {
  [JOB_METHOD_DEPLOY] = P (BGD_JOB_PHASE_EMPTY) | P (BGD_JOB_PHASE_LIVE) | P (BGD_JOB_PHASE_DEPLOYING)
                        | P (BGD_JOB_PHASE_READY) | P (BGD_JOB_PHASE_OBSERVING),
  [JOB_METHOD_RETIRE] = P (BGD_JOB_PHASE_LIVE) | P (BGD_JOB_PHASE_DEPLOYING) | P (BGD_JOB_PHASE_READY)
                        | P (BGD_JOB_PHASE_OBSERVING) | P (BGD_JOB_PHASE_EMPTY),
  [JOB_METHOD_SET_SINK_MODE] = P (BGD_JOB_PHASE_LIVE) | P (BGD_JOB_PHASE_DEPLOYING) | P (BGD_JOB_PHASE_READY),
  [JOB_METHOD_CUTOVER] = P (BGD_JOB_PHASE_READY),
  [JOB_METHOD_ROLLBACK] = P (BGD_JOB_PHASE_OBSERVING),
  [JOB_METHOD_ABORT] = P (BGD_JOB_PHASE_CUTTING_OVER),
  [JOB_METHOD_EVICT_HOST] = ~0u,
};

/* Allowed phase transitions. The local phases follow from the slots in
 * any order; the cutover phases are entered only through the protocol. */
static const guint job_phase_from[] = {
  [BGD_JOB_PHASE_EMPTY] = ~0u,
  [BGD_JOB_PHASE_LIVE] = ~0u,
  [BGD_JOB_PHASE_DEPLOYING] = ~0u,
  [BGD_JOB_PHASE_READY] = ~0u,
  [BGD_JOB_PHASE_CUTTING_OVER] = P (BGD_JOB_PHASE_READY),
  [BGD_JOB_PHASE_OBSERVING] = P (BGD_JOB_PHASE_CUTTING_OVER),
};
#undef P

const char *
bgd_job_phase_to_string (BgdJobPhase phase)
{
  switch (phase)
    {
    case BGD_JOB_PHASE_EMPTY: return "empty";
    case BGD_JOB_PHASE_LIVE: return "live";
    case BGD_JOB_PHASE_DEPLOYING: return "deploying";
    case BGD_JOB_PHASE_READY: return "ready";
    case BGD_JOB_PHASE_CUTTING_OVER: return "cutting-over";
    case BGD_JOB_PHASE_OBSERVING: return "observing";
    default: g_assert_not_reached ();
    }
}

static BgdJob *
job_ref (BgdJob *job)
{
  g_atomic_int_inc (&job->ref_count);
  return job;
}

static void
job_unref (BgdJob *job)
{
  if (!g_atomic_int_dec_and_test (&job->ref_count))
    return;
  for (guint c = 0; c < BG_N_COLORS; c++)
    g_clear_pointer (&job->slots[c], bgd_slot_unref);
  g_clear_object (&job->iface);
  g_clear_object (&job->object);
  g_clear_pointer (&job->config, bg_job_config_unref);
  g_free (job->path);
  g_free (job);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdJob, job_unref)

static void
job_changed (BgdJob *job)
{
  if (!job->disposed && job->ctx->changed != NULL)
    job->ctx->changed (job->ctx->agent);
}

static gboolean
job_check_method (BgdJob *job, JobMethod method, GError **error)
{
  if (job_method_phases[method] & (1u << job->phase))
    return TRUE;
  g_set_error (error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
               "%s is not valid while job '%s' is in phase '%s'",
               job_method_names[method], job->config->name,
               bgd_job_phase_to_string (job->phase));
  return FALSE;
}

static const char *
job_live_color (BgdJob *job)
{
  return bg_job1_get_live_color (job->iface);
}

static BgdSlot *
job_live_slot (BgdJob *job)
{
  BgColor c;

  if (!bg_color_from_string (job_live_color (job), &c))
    return NULL;
  return job->slots[c];
}

/* The one transition function of the phase state machine. */
static void
job_set_phase (BgdJob *job, BgdJobPhase to)
{
  BgdJobPhase from = job->phase;

  if (from == to)
    return;
  if (!(job_phase_from[to] & (1u << from)))
    {
      g_critical ("job %s: invalid phase transition %s -> %s", job->config->name,
                  bgd_job_phase_to_string (from), bgd_job_phase_to_string (to));
      return;
    }
  job->phase = to;
  bg_job1_set_phase (job->iface, bgd_job_phase_to_string (to));
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_INFO,
                    "BLUEGREEN_JOB", job->config->name,
                    "MESSAGE", "%s: phase %s -> %s", job->config->name,
                    bgd_job_phase_to_string (from), bgd_job_phase_to_string (to));
}

/* The local phases follow from the slots: which one runs, which is live,
 * whether the other one is Ready. */
static void
job_update_phase (BgdJob *job)
{
  BgdSlot *live = job_live_slot (job);
  BgdSlot *other = NULL;
  gboolean live_active = live != NULL && bgd_slot_is_active (live);

  if (job->phase == BGD_JOB_PHASE_CUTTING_OVER || job->phase == BGD_JOB_PHASE_OBSERVING)
    return; /* the cutover protocol owns these */

  for (guint c = 0; c < BG_N_COLORS; c++)
    if (job->slots[c] != live && bgd_slot_is_active (job->slots[c]))
      other = job->slots[c];

  if (other != NULL)
    job_set_phase (job, bgd_slot_get_ready (other) ? BGD_JOB_PHASE_READY : BGD_JOB_PHASE_DEPLOYING);
  else if (live_active)
    job_set_phase (job, BGD_JOB_PHASE_LIVE);
  else
    job_set_phase (job, BGD_JOB_PHASE_EMPTY);
}

static void
on_slot_changed (BgdSlot *slot, gpointer user_data)
{
  BgdJob *job = user_data;

  if (bgd_slot_get_state (slot) == BGD_SLOT_FAILED)
    {
      g_autofree char *text = NULL;
      text = g_strdup_printf ("%s slot: unit %s failed", bg_color_to_string (bgd_slot_get_color (slot)),
                              bgd_slot_get_unit (slot));
      bg_job1_set_last_error (job->iface, text);
    }
  job_update_phase (job);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
  job_changed (job);
}

static void
job_set_live_color (BgdJob *job, const char *color)
{
  if (g_strcmp0 (job_live_color (job), color) == 0)
    return;
  bg_job1_set_live_color (job->iface, color);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                    "BLUEGREEN_JOB", job->config->name,
                    "MESSAGE", "%s: live color is now '%s'", job->config->name, color);
  job_update_phase (job);
}

/* ---- argument checks ---------------------------------------------------- */

static gboolean
parse_color (const char *s, BgColor *out, GError **error)
{
  if (bg_color_from_string (s, out))
    return TRUE;
  g_set_error (error, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
               "color: '%s' is not a color (blue or green)", s);
  return FALSE;
}

typedef struct {
  const char *name;
  const char *type;
} OptionSpec;

static gboolean
check_options (GVariant *options, const OptionSpec *specs, guint n_specs,
               const char *method, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      guint i;

      for (i = 0; i < n_specs; i++)
        if (g_str_equal (key, specs[i].name))
          break;
      if (i == n_specs)
        {
          g_set_error (error, BGD_ERROR, BGD_ERROR_UNKNOWN_OPTION,
                       "options: '%s' is not an option of %s", key, method);
          return FALSE;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (specs[i].type)))
        {
          g_set_error (error, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                       "options: '%s' must be of type '%s', not '%s'", key,
                       specs[i].type, g_variant_get_type_string (value));
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- Deploy ---------------------------------------------------------------- */

typedef struct {
  BgdJob *job;
  GDBusMethodInvocation *invocation;
  BgColor color;
  char *version;
  gboolean from_savepoint;
  gboolean live;
  char *savepoint_dir;
  GCancellable *savepoint_cancellable;
  guint savepoint_timeout_id;
} DeployOp;

static void
deploy_op_free (DeployOp *op)
{
  op->job->deploy_in_flight = FALSE;
  job_unref (op->job);
  g_clear_object (&op->invocation);
  g_clear_handle_id (&op->savepoint_timeout_id, g_source_remove);
  g_clear_object (&op->savepoint_cancellable);
  g_free (op->version);
  g_free (op->savepoint_dir);
  g_free (op);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DeployOp, deploy_op_free)

static void
deploy_fail (DeployOp *op, GError *error)
{
  g_autoptr(DeployOp) owned = op;
  g_autofree char *text = g_strdup_printf ("Deploy %s: %s", op->version, error->message);

  bgd_job_set_last_error (op->job, text);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                    "BLUEGREEN_JOB", op->job->config->name,
                    "BLUEGREEN_COLOR", bg_color_to_string (op->color),
                    "BLUEGREEN_VERSION", op->version,
                    "MESSAGE", "%s: %s", op->job->config->name, text);
  bgd_error_return (g_steal_pointer (&op->invocation), error);
  g_error_free (error);
}

static void
deploy_started_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(DeployOp) op = user_data;
  BgdSlot *slot = op->job->slots[op->color];
  GError *error = NULL;

  if (!bgd_slot_start_finish (slot, res, &error))
    {
      deploy_fail (g_steal_pointer (&op), error);
      return;
    }
  bgd_job_set_last_error (op->job, "");
  if (op->live)
    job_set_live_color (op->job, bg_color_to_string (op->color));
  job_update_phase (op->job);
  job_changed (op->job);
  bg_job1_complete_deploy (op->job->iface, g_steal_pointer (&op->invocation),
                           bgd_slot_get_path (slot));
}

static void
deploy_start (DeployOp *op)
{
  BgdSlot *slot = op->job->slots[op->color];

  bgd_slot_start_async (slot, op->job->config, op->version,
                        op->live ? "live" : "blackhole", op->savepoint_dir,
                        NULL, deploy_started_cb, op);
}

static void
deploy_savepoint_done (DeployOp *op, GError *error)
{
  if (error != NULL)
    {
      deploy_fail (op, error);
      return;
    }
  deploy_start (op);
}

static void
deploy_slot_savepoint_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  DeployOp *op = user_data;
  GError *error = NULL;

  bgd_slot_request_savepoint_finish (NULL, res, &error);
  deploy_savepoint_done (op, error);
}

static gboolean
deploy_exec_timeout_cb (gpointer user_data)
{
  DeployOp *op = user_data;

  op->savepoint_timeout_id = 0;
  g_cancellable_cancel (op->savepoint_cancellable);
  return G_SOURCE_REMOVE;
}

static void
deploy_exec_savepoint_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  DeployOp *op = user_data;
  g_autoptr(GError) local_error = NULL;

  g_clear_handle_id (&op->savepoint_timeout_id, g_source_remove);
  if (g_subprocess_wait_check_finish (G_SUBPROCESS (source), res, &local_error))
    {
      deploy_savepoint_done (op, NULL);
      return;
    }
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_subprocess_force_exit (G_SUBPROCESS (source));
      deploy_savepoint_done (op, g_error_new (BGD_ERROR, BGD_ERROR_TIMEOUT,
                                              "ExecSavepoint= did not finish in time"));
      return;
    }
  deploy_savepoint_done (op, g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "ExecSavepoint=: %s",
                                          local_error->message));
}

static void
deploy_savepoint (DeployOp *op)
{
  BgdJob *job = op->job;
  BgdSlot *live = job_live_slot (job);
  g_autofree char *base = g_build_filename (job->ctx->state_directory, "savepoints",
                                            job->config->name, NULL);
  g_autofree char *stamp = g_strdup_printf ("%s-%" G_GINT64_FORMAT, op->version, g_get_real_time ());
  GError *error = NULL;

  op->savepoint_dir = g_build_filename (base, stamp, NULL);
  if (g_mkdir_with_parents (op->savepoint_dir, 0700) != 0)
    {
      int errsv = errno;
      deploy_fail (op, g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "cannot create %s: %s",
                                    op->savepoint_dir, g_strerror (errsv)));
      return;
    }

  if (job->config->exec_savepoint_argv != NULL)
    {
      g_auto(GStrv) argv = bg_job_config_expand_savepoint (job->config, bgd_slot_get_version (live),
                                                           op->savepoint_dir, &error);
      g_autoptr(GSubprocess) proc = NULL;

      if (argv != NULL)
        proc = g_subprocess_newv ((const char *const *) argv, G_SUBPROCESS_FLAGS_NONE, &error);
      if (proc == NULL)
        {
          GError *e = g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "ExecSavepoint=: %s", error->message);
          g_error_free (error);
          deploy_fail (op, e);
          return;
        }
      op->savepoint_cancellable = g_cancellable_new ();
      op->savepoint_timeout_id = g_timeout_add ((guint) (job->ctx->savepoint_timeout_usec / 1000),
                                                deploy_exec_timeout_cb, op);
      g_subprocess_wait_check_async (proc, op->savepoint_cancellable, deploy_exec_savepoint_cb, op);
      return;
    }
  bgd_slot_request_savepoint_async (live, op->savepoint_dir, job->ctx->savepoint_timeout_usec,
                                    NULL, deploy_slot_savepoint_cb, op);
}

static void
deploy_stopped_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  DeployOp *op = user_data;
  GError *error = NULL;

  if (!bgd_slot_stop_finish (op->job->slots[op->color], res, &error))
    {
      deploy_fail (op, error);
      return;
    }
  if (op->from_savepoint)
    deploy_savepoint (op);
  else
    deploy_start (op);
}

static gboolean
handle_deploy (BgJob1 *iface, GDBusMethodInvocation *invocation, const char *version,
               GVariant *options, gpointer user_data)
{
  static const OptionSpec specs[] = {
    { "from", "s" }, { "live", "b" }, { "force", "b" },
    { "auto_cutover", "b" }, { "auto_rollback", "b" },
  };
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;
  const char *from = "scratch";
  gboolean live = FALSE, auto_cutover = FALSE, auto_rollback = FALSE;
  BgdSlot *live_slot;
  BgColor color = BG_COLOR_BLUE;
  DeployOp *op;

  if (!bg_version_is_valid (version))
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                   "version: '%s' is not a valid version (1..64 of [A-Za-z0-9._+~-], "
                   "not starting with '.' or '-')", version);
      goto out;
    }
  if (!check_options (options, specs, G_N_ELEMENTS (specs), "Deploy", &error))
    goto out;
  g_variant_lookup (options, "from", "&s", &from);
  g_variant_lookup (options, "live", "b", &live);
  g_variant_lookup (options, "auto_cutover", "b", &auto_cutover);
  g_variant_lookup (options, "auto_rollback", "b", &auto_rollback);
  if (!g_str_equal (from, "scratch") && !g_str_equal (from, "savepoint"))
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                   "options: 'from' must be 'scratch' or 'savepoint', not '%s'", from);
      goto out;
    }
  if (auto_cutover || auto_rollback)
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_FAILED,
                   "options: '%s': cutover is not available yet",
                   auto_cutover ? "auto_cutover" : "auto_rollback");
      goto out;
    }
  if (!job_check_method (job, JOB_METHOD_DEPLOY, &error))
    goto out;
  if (job->deploy_in_flight)
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_BUSY,
                   "a Deploy of job '%s' is already in flight", job->config->name);
      goto out;
    }

  live_slot = job_live_slot (job);
  if (live_slot != NULL && bgd_slot_is_active (live_slot))
    {
      if (live)
        {
          g_set_error (&error, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                       "options: 'live' is only for the first deploy; job '%s' is live in %s",
                       job->config->name, job_live_color (job));
          goto out;
        }
      color = bg_color_other (bgd_slot_get_color (live_slot));
    }
  else
    {
      if (g_str_equal (from, "savepoint"))
        {
          g_set_error (&error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                       "options: 'from' 'savepoint' needs a live slot; job '%s' has none",
                       job->config->name);
          goto out;
        }
      /* Nothing live: a slot that runs blackholed is replaced, else blue. */
      if (bgd_slot_is_active (job->slots[BG_COLOR_GREEN]) && !bgd_slot_is_active (job->slots[BG_COLOR_BLUE]))
        color = BG_COLOR_GREEN;
    }

  op = g_new0 (DeployOp, 1);
  op->job = job_ref (job);
  op->invocation = g_object_ref (invocation);
  op->color = color;
  op->version = g_strdup (version);
  op->from_savepoint = g_str_equal (from, "savepoint");
  op->live = live;
  job->deploy_in_flight = TRUE;
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                    "BLUEGREEN_JOB", job->config->name,
                    "BLUEGREEN_COLOR", bg_color_to_string (color),
                    "BLUEGREEN_VERSION", version,
                    "MESSAGE", "%s: deploying %s in %s (from %s%s)", job->config->name,
                    version, bg_color_to_string (color), from, live ? ", live" : "");

  /* Whatever ran in that slot (a failed unit, an older candidate) goes. */
  bgd_slot_stop_async (job->slots[color], NULL, deploy_stopped_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;

out:
  g_info ("%s: Deploy refused: %s", job->config->name, error->message);
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Retire ---------------------------------------------------------------- */

static void
retire_stopped_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  BgdJob *job = g_object_get_data (G_OBJECT (invocation), "bgd-job");
  BgdSlot *slot = g_object_get_data (G_OBJECT (invocation), "bgd-slot");
  g_autoptr(GError) error = NULL;

  if (!bgd_slot_stop_finish (slot, res, &error))
    {
      bgd_error_return (g_steal_pointer (&invocation), error);
      return;
    }
  job_update_phase (job);
  job_changed (job);
  bg_job1_complete_retire (job->iface, g_steal_pointer (&invocation));
}

static gboolean
handle_retire (BgJob1 *iface, GDBusMethodInvocation *invocation, const char *color_str,
               gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;
  BgColor color;
  BgdSlot *slot;

  if (!parse_color (color_str, &color, &error) || !job_check_method (job, JOB_METHOD_RETIRE, &error))
    goto out;
  slot = job->slots[color];
  if (bgd_slot_get_state (slot) == BGD_SLOT_STOPPED && bgd_slot_get_version (slot) == NULL)
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                   "color: the %s slot of job '%s' is stopped", color_str, job->config->name);
      goto out;
    }
  if (g_str_equal (job_live_color (job), color_str) && bgd_slot_is_active (slot))
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                   "color: %s is the live slot of job '%s' in phase '%s'; "
                   "only a non-live slot can be retired", color_str, job->config->name,
                   bgd_job_phase_to_string (job->phase));
      goto out;
    }
  if (g_str_equal (job_live_color (job), color_str))
    job_set_live_color (job, "");
  g_object_set_data_full (G_OBJECT (invocation), "bgd-job", job_ref (job), (GDestroyNotify) job_unref);
  g_object_set_data (G_OBJECT (invocation), "bgd-slot", slot);
  bgd_slot_stop_async (slot, NULL, retire_stopped_cb, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;

out:
  g_info ("%s: Retire refused: %s", job->config->name, error->message);
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- SetSinkMode ------------------------------------------------------------ */

static gboolean
handle_set_sink_mode (BgJob1 *iface, GDBusMethodInvocation *invocation, const char *color_str,
                      const char *mode, gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;
  BgColor color;
  BgdSlot *slot;

  if (!parse_color (color_str, &color, &error))
    goto out;
  if (!g_str_equal (mode, "live") && !g_str_equal (mode, "blackhole"))
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                   "mode: '%s' is not a sink mode SetSinkMode takes (live or blackhole)", mode);
      goto out;
    }
  if (!job_check_method (job, JOB_METHOD_SET_SINK_MODE, &error))
    goto out;
  slot = job->slots[color];
  if (bgd_slot_get_state (slot) != BGD_SLOT_RUNNING && bgd_slot_get_state (slot) != BGD_SLOT_STARTING)
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                   "color: the %s slot of job '%s' is %s, not running", color_str,
                   job->config->name, bgd_slot_state_to_string (bgd_slot_get_state (slot)));
      goto out;
    }

  bgd_slot_set_sink_mode (slot, mode);
  if (g_str_equal (mode, "live"))
    job_set_live_color (job, color_str);
  else if (g_str_equal (job_live_color (job), color_str))
    {
      BgdSlot *other = job->slots[bg_color_other (color)];
      gboolean other_live = bgd_slot_is_active (other)
                            && g_strcmp0 (bgd_slot_get_sink_mode (other), "live") == 0;
      job_set_live_color (job, other_live ? bg_color_to_string (bg_color_other (color)) : "");
    }
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
  job_changed (job);
  bg_job1_complete_set_sink_mode (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;

out:
  g_info ("%s: SetSinkMode refused: %s", job->config->name, error->message);
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- the cutover methods (next issue) ------------------------------------ */

static gboolean
refuse_cutover_method (BgdJob *job, GDBusMethodInvocation *invocation, JobMethod method,
                       GVariant *options)
{
  g_autoptr(GError) error = NULL;

  if (options != NULL)
    {
      static const OptionSpec specs[] = { { "deadline_ms", "u" }, { "lead_ms", "u" } };
      if (!check_options (options, specs, method == JOB_METHOD_CUTOVER ? G_N_ELEMENTS (specs) : 0,
                          job_method_names[method], &error))
        goto out;
    }
  if (!job_check_method (job, method, &error))
    goto out;
  g_set_error (&error, BGD_ERROR, BGD_ERROR_FAILED,
               "%s: cutover is not available yet", job_method_names[method]);
out:
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_cutover (BgJob1 *iface, GDBusMethodInvocation *invocation, GVariant *options, gpointer user_data)
{
  return refuse_cutover_method (user_data, invocation, JOB_METHOD_CUTOVER, options);
}

static gboolean
handle_rollback (BgJob1 *iface, GDBusMethodInvocation *invocation, GVariant *options, gpointer user_data)
{
  return refuse_cutover_method (user_data, invocation, JOB_METHOD_ROLLBACK, options);
}

static gboolean
handle_abort (BgJob1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
  return refuse_cutover_method (user_data, invocation, JOB_METHOD_ABORT, NULL);
}

static gboolean
handle_evict_host (BgJob1 *iface, GDBusMethodInvocation *invocation, const char *host, gpointer user_data)
{
  if (!bg_name_is_valid (host))
    {
      g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                                             "host: '%s' is not a valid host id", host);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  return refuse_cutover_method (user_data, invocation, JOB_METHOD_EVICT_HOST, NULL);
}

/* ---- lifetime ---------------------------------------------------------------- */

static void
job_apply_config (BgdJob *job)
{
  BgJobConfig *c = job->config;

  bg_job1_set_input_topics (job->iface, (const char *const *) c->input_topics);
  bg_job1_set_hosts (job->iface, (const char *const *) c->hosts);
}

BgdJob *
bgd_job_new (BgdContext *ctx, BgJobConfig *config)
{
  BgdJob *job = g_new0 (BgdJob, 1);
  g_autofree char *escaped = g_dbus_escape_object_path (config->name);

  job->ref_count = 1;
  job->ctx = ctx;
  job->config = bg_job_config_ref (config);
  job->path = g_strdup_printf ("/org/bluegreen/Agent1/job/%s", escaped);
  job->phase = BGD_JOB_PHASE_EMPTY;
  job->object = bg_object_skeleton_new (job->path);
  job->iface = bg_job1_skeleton_new ();

  for (guint c = 0; c < BG_N_COLORS; c++)
    job->slots[c] = bgd_slot_new (ctx, config->name, job->path, (BgColor) c, on_slot_changed, job);

  bg_job1_set_name (job->iface, config->name);
  bg_job1_set_live_color (job->iface, "");
  bg_job1_set_phase (job->iface, bgd_job_phase_to_string (job->phase));
  bg_job1_set_blue (job->iface, bgd_slot_get_path (job->slots[BG_COLOR_BLUE]));
  bg_job1_set_green (job->iface, bgd_slot_get_path (job->slots[BG_COLOR_GREEN]));
  bg_job1_set_last_error (job->iface, "");
  bg_job1_set_last_cutover (job->iface,
                            g_variant_new ("(ssssstt@a(six))", "", "", "", "", "", (guint64) 0, (guint64) 0,
                                           g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0)));
  job_apply_config (job);

  g_signal_connect (job->iface, "handle-deploy", G_CALLBACK (handle_deploy), job);
  g_signal_connect (job->iface, "handle-retire", G_CALLBACK (handle_retire), job);
  g_signal_connect (job->iface, "handle-set-sink-mode", G_CALLBACK (handle_set_sink_mode), job);
  g_signal_connect (job->iface, "handle-cutover", G_CALLBACK (handle_cutover), job);
  g_signal_connect (job->iface, "handle-rollback", G_CALLBACK (handle_rollback), job);
  g_signal_connect (job->iface, "handle-abort", G_CALLBACK (handle_abort), job);
  g_signal_connect (job->iface, "handle-evict-host", G_CALLBACK (handle_evict_host), job);
  bg_object_skeleton_set_job1 (job->object, job->iface);
  return job;
}

void
bgd_job_dispose (BgdJob *job)
{
  job->disposed = TRUE;
  g_signal_handlers_disconnect_by_data (job->iface, job);
  for (guint c = 0; c < BG_N_COLORS; c++)
    {
      bgd_slot_dispose (g_steal_pointer (&job->slots[c]));
    }
  job_unref (job);
}

void
bgd_job_export (BgdJob *job, GDBusObjectManagerServer *manager)
{
  g_dbus_object_manager_server_export (manager, G_DBUS_OBJECT_SKELETON (job->object));
  for (guint c = 0; c < BG_N_COLORS; c++)
    g_dbus_object_manager_server_export (manager, bgd_slot_get_object (job->slots[c]));
}

void
bgd_job_unexport (BgdJob *job, GDBusObjectManagerServer *manager)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    if (job->slots[c] != NULL)
      g_dbus_object_manager_server_unexport (manager, bgd_slot_get_path (job->slots[c]));
  g_dbus_object_manager_server_unexport (manager, job->path);
}

const char *bgd_job_get_name (BgdJob *job) { return job->config->name; }
const char *bgd_job_get_path (BgdJob *job) { return job->path; }
BgJobConfig *bgd_job_get_config (BgdJob *job) { return job->config; }
BgdJobPhase bgd_job_get_phase (BgdJob *job) { return job->phase; }
BgdSlot *bgd_job_get_slot (BgdJob *job, BgColor color) { return job->slots[color]; }

gboolean
bgd_job_has_active_slots (BgdJob *job)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    if (bgd_slot_is_active (job->slots[c]))
      return TRUE;
  return FALSE;
}

void
bgd_job_set_config (BgdJob *job, BgJobConfig *config)
{
  g_clear_pointer (&job->config, bg_job_config_unref);
  job->config = bg_job_config_ref (config);
  job_apply_config (job);
}

void
bgd_job_set_last_error (BgdJob *job, const char *text)
{
  bg_job1_set_last_error (job->iface, text);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
}

BgdJobRecord *
bgd_job_make_record (BgdJob *job)
{
  BgdJobRecord *r = g_new0 (BgdJobRecord, 1);

  r->name = g_strdup (job->config->name);
  r->live_color = g_strdup (job_live_color (job));
  for (guint c = 0; c < BG_N_COLORS; c++)
    bgd_slot_fill_record (job->slots[c], &r->slots[c]);
  return r;
}

void
bgd_job_restore_record (BgdJob *job, const BgdJobRecord *record)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    bgd_slot_restore_record (job->slots[c], &record->slots[c]);
  bg_job1_set_live_color (job->iface, record->live_color ? record->live_color : "");
  job_update_phase (job);
}

void
bgd_job_update_lag (BgdJob *job, GHashTable *watermarks)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    if (bgd_slot_is_active (job->slots[c]))
      bgd_slot_update_lag (job->slots[c], watermarks, job->config->max_lag, job->config->stable_usec);
}

char *
bgd_job_describe (BgdJob *job)
{
  GString *s = g_string_new (job->config->name);

  g_string_append_printf (s, " %s", bgd_job_phase_to_string (job->phase));
  for (guint c = 0; c < BG_N_COLORS; c++)
    {
      BgdSlot *slot = job->slots[c];
      if (bgd_slot_get_state (slot) == BGD_SLOT_STOPPED)
        continue;
      g_string_append_printf (s, " %s=%s/%s/%s", bg_color_to_string ((BgColor) c),
                              bgd_slot_get_version (slot) ? bgd_slot_get_version (slot) : "-",
                              bgd_slot_state_to_string (bgd_slot_get_state (slot)),
                              bgd_slot_get_sink_mode (slot));
    }
  return g_string_free (s, FALSE);
}
