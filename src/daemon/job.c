/* job.c — a job on this host: Job1 object, phase state machine, Deploy,
 * Retire and SetSinkMode (see job.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/job.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "common/dbus-args.h"
#include "daemon/bg-dbus-generated.h"
#include "daemon/capacity.h"
#include "daemon/cutover.h"
#include "daemon/errors.h"
#include "daemon/fleet-plans.h"
#include "daemon/kafka.h"
#include "daemon/log.h"
#include "daemon/retention.h"
#include "daemon/history.h"
#include "daemon/steering.h"


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
  /* Deploy options, kept in memory only (an agent restart forgets them:
   * the operator then calls Cutover/Rollback by hand). */
  gboolean auto_cutover;     /* Cutover once the incoming slot is Ready everywhere */
  gboolean auto_rollback;    /* Rollback if the new live slot fails while observing */
  BgColor auto_color;        /* the color those apply to */
  guint auto_idle_id;
  gboolean disposed;

  BgdCutover *cutover;
  char *pending_id;          /* a Cutover/Rollback call whose prepare is not read yet */
  gint64 call_started;       /* wall clock µs of this host's Cutover call */
  BgdJobPhase phase_before;  /* to go back to on abort */
  /* The observation window after a done: @observe_outgoing runs on,
   * blackholed, from @observe_since (wall clock µs) for ObservationSec=,
   * then it is stopped. Persisted, so that an agent restart keeps both
   * the phase and the window's end. */
  gboolean observing;
  BgColor observe_outgoing;
  gint64 observe_since;
  guint observation_id;
  /* A plan whose arming waits until the local instances applied the
   * previous plan's decision (see cut_arm). */
  char *arm_pending_id;
  guint arm_wait_id;
  /* Decisions and completions this agent applied since it started, for
   * the metrics (bluegreen_cutovers_total{result}). */
  guint64 cutovers[BGD_JOB_N_CUTOVER_RESULTS];
  /* Messages of this job below this control log offset are history: the
   * restored steering already reflects them (-1: none known). */
  gint64 replay_from;
  /* The last cutover the log committed, whether or not this host took
   * part: a slot joining the live color later is steered with it. */
  BgdFleetPlans *fleet_plans;
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
  /* A participant follows the log whatever its local phase was. */
  [BGD_JOB_PHASE_CUTTING_OVER] = ~0u,
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
  g_clear_pointer (&job->cutover, bgd_cutover_free);
  g_clear_pointer (&job->fleet_plans, bgd_fleet_plans_free);
  g_clear_handle_id (&job->observation_id, g_source_remove);
  g_clear_handle_id (&job->arm_wait_id, g_source_remove);
  g_free (job->arm_pending_id);
  g_free (job->pending_id);
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

/* Nothing starts, stops or steers a slot before the control log is
 * replayed: until then this host may not know that the fleet cut over (or
 * is cutting over) and would start or steer a slot in the wrong mode.
 * Checked after the arguments and the phase (those refusals do not depend
 * on the log) and answered at once rather than waited for: the replay
 * waits for the brokers, which may be down for long. */
static gboolean
job_check_replayed (BgdJob *job, JobMethod method, GError **error)
{
  if (job->ctx->replay_finished)
    return TRUE;
  g_set_error (error, BGD_ERROR, BGD_ERROR_BUSY,
               "%s of job '%s' refused: replaying the control log (the agent starts or steers "
               "slots only once it has read the log up to its end; is Kafka reachable?)",
               job_method_names[method], job->config->name);
  return FALSE;
}

static void job_maybe_auto (BgdJob *job);
static void job_end_observation (BgdJob *job);
static void job_arm_observation (BgdJob *job);

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
  bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, NULL, NULL, NULL, "phase %s -> %s",
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
  job_maybe_auto (job);
}

/* The slots follow the live color: CPU weight and runtime guards. */
static void
job_apply_liveness (BgdJob *job)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    bgd_slot_set_live (job->slots[c], job->config,
                       g_strcmp0 (job_live_color (job), bg_color_to_string ((BgColor) c)) == 0);
}

static void
job_set_live_color (BgdJob *job, const char *color)
{
  if (g_strcmp0 (job_live_color (job), color) == 0)
    return;
  bg_job1_set_live_color (job->iface, color);
  bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, color, NULL, NULL, "live color is now '%s'", color);
  job_apply_liveness (job);
  job_update_phase (job);
}

/* Argument checks are src/common/dbus-args.c (pure, fuzzed); their
 * errors map to InvalidArgs/UnknownOption in bgd_error_return(). */

/* ---- Deploy ---------------------------------------------------------------- */

typedef struct {
  BgdJob *job;
  GDBusMethodInvocation *invocation;
  BgColor color;
  char *version;
  gboolean from_savepoint;
  gboolean live;
  gboolean auto_cutover;
  gboolean auto_rollback;
  char *savepoint_dir;
  /* Joining the fleet's live color: the steering its last commit gives
   * the incoming side (NULL: plain live or blackhole). */
  BgdSteering *initial;
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
  g_clear_pointer (&op->initial, bgd_steering_free);
  g_free (op);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DeployOp, deploy_op_free)

static void
deploy_fail (DeployOp *op, GError *error)
{
  g_autoptr(DeployOp) owned = op;
  g_autofree char *text = g_strdup_printf ("Deploy %s: %s", op->version, error->message);

  bgd_job_set_last_error (op->job, text);
  bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, op->job->config->name, bg_color_to_string (op->color), op->version,
               NULL, "%s", text);
  bgd_error_return (g_steal_pointer (&op->invocation), error);
  g_error_free (error);
}

/* Keeps the job's newest SavepointsKept= savepoints (the one just used
 * among them); a failure to prune is logged, never a failed deploy. */
static void
job_prune_savepoints (BgdJob *job)
{
  g_autofree char *base = g_build_filename (job->ctx->state_directory, "savepoints", job->config->name, NULL);
  g_autoptr(GError) error = NULL;
  guint removed = 0;

  if (!bgd_retention_prune_savepoints (base, job->config->savepoints_kept, &removed, &error))
    bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL, "%s", error->message);
  else if (removed > 0)
    bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, NULL, NULL, NULL,
                 "removed %u old savepoints (SavepointsKept=%u)", removed, job->config->savepoints_kept);
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
  if (op->savepoint_dir != NULL)
    job_prune_savepoints (op->job);
  op->job->auto_cutover = op->auto_cutover && !op->live;
  op->job->auto_rollback = op->auto_rollback && !op->live;
  op->job->auto_color = op->color;
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

  if (op->initial != NULL)
    bgd_slot_start_steered_async (slot, op->job->config, op->version, op->initial, NULL, deploy_started_cb, op);
  else
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

/* A slot joining the fleet's live color @color on a host that took no part
 * in the cutover that made it live (docs/protocol.md, "A host joining
 * late"): the incoming side's steering of the log's last commit, so that it
 * emits from the final barriers on like the color's other instances. NULL
 * when the log read has no commit making @color live (never cut over: plain
 * live is exact). */
static BgdSteering *
job_join_live_steering (BgdJob *job, BgColor color)
{
  const BgdCutoverPlan *last = bgd_fleet_plans_last_committed (job->fleet_plans);
  g_autoptr(BgdSteering) base = bgd_steering_new ("live");

  if (last == NULL || last->incoming != color)
    {
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string (color), NULL, NULL,
                   "no committed cutover to %s in the control log read: joining live from every offset",
                   bg_color_to_string (color));
      return NULL;
    }
  bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string (color), NULL, last->id,
               "joining %s with the ranges of its last committed cutover %s (%u barriers)",
               bg_color_to_string (color), last->id, last->barriers->len);
  return bgd_steering_commit (base, last, FALSE);
}

static gboolean
handle_deploy (BgJob1 *iface, GDBusMethodInvocation *invocation, const char *version,
               GVariant *options, gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;
  const char *from = "scratch";
  gboolean live = FALSE, auto_cutover = FALSE, auto_rollback = FALSE, force = FALSE;
  BgdSlot *live_slot;
  BgColor color = BG_COLOR_BLUE;
  DeployOp *op;
  g_autoptr(BgdSteering) initial = NULL;

  if (!bg_dbus_args_check_version ("version", version, &error)
      || !bg_dbus_args_parse_deploy_options (options, &from, &live, &auto_cutover, &auto_rollback, &error))
    goto out;
  if (!job_check_method (job, JOB_METHOD_DEPLOY, &error)
      || !job_check_replayed (job, JOB_METHOD_DEPLOY, &error))
    goto out;
  if (job->deploy_in_flight)
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_BUSY,
                   "a Deploy of job '%s' is already in flight", job->config->name);
      goto out;
    }
  /* "force" is checked for its type by the options parser above. */
  g_variant_lookup (options, "force", "b", &force);
  if (!force && !bgd_capacity_check_memory (job->config->name, job->config->memory_max, &error))
    goto out;

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
      BgColor fleet_color;
      g_autofree char *fleet_version = NULL;

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
      /* Nothing live here, but the log says the fleet is live (this host
       * joins late, or comes back empty): join it, never start a second
       * live group of another color or version. */
      if (bgd_membership_fleet_live (job->ctx->membership, job->config->name, job->ctx->config->host_id,
                                     &fleet_color, &fleet_version))
        {
          /* Settled: no prepare undecided, no host's hello showing a
           * handoff, and the log's last commit handed over on every
           * barrier partition (hellos lag the log: right after a commit
           * they still show the old steering). Until then the outgoing
           * color emits below the barriers: a slot of either color joining
           * its group now could take a partition over from it. */
          if (!bgd_membership_fleet_settled (job->ctx->membership, job->config->name,
                                             job->ctx->config->host_id)
              || !bgd_fleet_plans_handed_over (job->fleet_plans))
            {
              g_set_error (&error, BGD_ERROR, BGD_ERROR_BUSY,
                           "job '%s' is cutting over on the other hosts (control log): nothing is live "
                           "here yet, so Deploy waits until their cutover is done", job->config->name);
              goto out;
            }
          if (g_str_equal (version, fleet_version))
            {
              color = fleet_color;
              live = TRUE;
              initial = job_join_live_steering (job, fleet_color);
            }
          else if (live)
            {
              g_set_error (&error, BGD_ERROR, BGD_ERROR_CONTRADICTS_LOG,
                           "options: 'live' contradicts the control log: job '%s' is live in %s with "
                           "version %s on the fleet; deploy %s to join it live, or %s without 'live' "
                           "as a candidate", job->config->name, bg_color_to_string (fleet_color),
                           fleet_version, fleet_version, version);
              goto out;
            }
          else
            {
              /* A candidate next to the fleet's live color. */
              color = bg_color_other (fleet_color);
              job_set_live_color (job, bg_color_to_string (fleet_color));
            }
          bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string (fleet_color),
                       fleet_version, NULL, "nothing live on this host; the fleet is live in %s with %s "
                       "(control log): %s joins as %s", bg_color_to_string (fleet_color), fleet_version,
                       version, live ? "a live instance" : "a candidate");
        }
    }

  op = g_new0 (DeployOp, 1);
  op->job = job_ref (job);
  op->invocation = g_object_ref (invocation);
  op->color = color;
  op->version = g_strdup (version);
  op->from_savepoint = g_str_equal (from, "savepoint");
  op->live = live;
  op->initial = g_steal_pointer (&initial);
  op->auto_cutover = auto_cutover;
  op->auto_rollback = auto_rollback;
  /* A new Deploy replaces what an earlier one asked for. */
  job->auto_cutover = job->auto_rollback = FALSE;
  /* It replaces the observed old version too: no timer may stop it. */
  if (job->observing && color == job->observe_outgoing)
    job_end_observation (job);
  job->deploy_in_flight = TRUE;
  bgd_log_job (G_LOG_LEVEL_MESSAGE, BGD_MESSAGE_DEPLOY_STARTED, job->config->name, bg_color_to_string (color),
               version, NULL, "deploying %s in %s (from %s%s%s)", version, bg_color_to_string (color), from,
               live ? ", live" : "", force ? ", forced" : "");

  /* Whatever ran in that slot (a failed unit, an older candidate) goes. */
  bgd_slot_stop_async (job->slots[color], NULL, deploy_stopped_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;

out:
  bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, NULL, version, NULL, "Deploy refused: %s", error->message);
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

  if (!bg_dbus_args_parse_color ("color", color_str, &color, &error)
      || !job_check_method (job, JOB_METHOD_RETIRE, &error))
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
  if (!job_check_replayed (job, JOB_METHOD_RETIRE, &error))
    goto out;
  if (g_str_equal (job_live_color (job), color_str))
    job_set_live_color (job, "");
  g_object_set_data_full (G_OBJECT (invocation), "bgd-job", job_ref (job), (GDestroyNotify) job_unref);
  g_object_set_data (G_OBJECT (invocation), "bgd-slot", slot);
  bgd_slot_stop_async (slot, NULL, retire_stopped_cb, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;

out:
  bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, color_str, NULL, NULL, "Retire refused: %s",
               error->message);
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

  if (!bg_dbus_args_parse_color ("color", color_str, &color, &error)
      || !bg_dbus_args_check_sink_mode ("mode", mode, &error))
    goto out;
  if (!job_check_method (job, JOB_METHOD_SET_SINK_MODE, &error)
      || !job_check_replayed (job, JOB_METHOD_SET_SINK_MODE, &error))
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
  bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, color_str, NULL, NULL, "SetSinkMode refused: %s",
               error->message);
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- the fleet-wide cutover (cutover.c drives; this steers the slots) ---- */

static void
job_set_last_cutover (BgdJob *job, const BgdCutoverPlan *plan, const char *result, const char *reason,
                      gint64 started, gint64 duration)
{
  g_autofree char *id = bgd_cutover_operator_id (plan->id);

  bg_job1_set_last_cutover (job->iface,
                            g_variant_new ("(ssssstt@a(six))", id,
                                           bg_color_to_string (plan->outgoing),
                                           bg_color_to_string (plan->incoming), result,
                                           reason ? reason : "", (guint64) MAX (started, 0),
                                           (guint64) MAX (duration, 0), bgd_steering_barriers_variant (plan)));
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
}

static void
job_append (BgdJob *job, BgControlMessage *msg)
{
  if (job->ctx->append == NULL)
    {
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL, "no control log; %s dropped",
                   bg_control_type_to_string (msg->type));
      bg_control_message_free (msg);
      return;
    }
  job->ctx->append (job->ctx->agent, msg);
}

static void
cut_append (gpointer data, BgControlMessage *msg)
{
  job_append (data, msg);
}

static void
cut_prepared (gpointer data, const BgdCutoverPlan *plan)
{
  BgdJob *job = data;

  g_clear_handle_id (&job->observation_id, g_source_remove);
  if (job->phase != BGD_JOB_PHASE_CUTTING_OVER)
    job->phase_before = job->phase == BGD_JOB_PHASE_OBSERVING ? BGD_JOB_PHASE_OBSERVING : BGD_JOB_PHASE_READY;
  job_set_phase (job, BGD_JOB_PHASE_CUTTING_OVER);
  if (g_strcmp0 (job->pending_id, plan->id) == 0)
    g_clear_pointer (&job->pending_id, g_free);
  job_set_last_cutover (job, plan, "prepared", "", plan->read_at, 0);
  bgd_log_job (G_LOG_LEVEL_MESSAGE, BGD_MESSAGE_CUTOVER_PREPARED, job->config->name,
               bg_color_to_string (plan->incoming), bgd_slot_get_version (job->slots[plan->incoming]), plan->id,
               "cutover %s prepared: %s -> %s, coordinator %s", plan->id, bg_color_to_string (plan->outgoing),
               bg_color_to_string (plan->incoming), plan->coordinator);
  job_changed (job);
}

/* How often a deferred arming looks at the instances' confirmations. */
#define ARM_WAIT_POLL_MS 10

/* Whether @slot's instance may still hold an earlier plan armed: the slot
 * names another plan, decided, and the instance has not yet confirmed
 * (ReportProgress) the generation that carries that decision. Steering
 * is one set of properties: a new prepared plan published before the
 * instance fetched the decision would hide it, the instance would keep
 * the old plan armed (it never guesses a decision) and answer the new one
 * with "another plan is armed" — seen when a retried attempt follows its
 * abort within milliseconds. */
static gboolean
slot_decision_unconfirmed (BgdSlot *slot, const char *id)
{
  g_autoptr(BgSlot1) iface = bg_object_get_slot1 (BG_OBJECT (bgd_slot_get_object (slot)));
  g_autoptr(BgdSteering) cur = NULL;

  if (iface == NULL)
    return FALSE;
  cur = bgd_slot_dup_steering (slot);
  return bgd_steering_decision_unconfirmed (cur, id, bgd_slot_is_active (slot),
                                            bg_slot1_get_applied_generation (iface),
                                            bg_slot1_get_generation (iface));
}

static gboolean cut_arm (gpointer data, const BgdCutoverPlan *plan, char **reason);

static gboolean
arm_wait_cb (gpointer user_data)
{
  BgdJob *job = user_data;
  const BgdCutoverPlan *plan = job->cutover != NULL ? bgd_cutover_get_plan (job->cutover) : NULL;
  g_autofree char *reason = NULL;

  if (plan != NULL && plan->state == BGD_CUTOVER_PREPARED && g_strcmp0 (plan->id, job->arm_pending_id) == 0
      && g_get_real_time () < plan->deadline
      && (slot_decision_unconfirmed (job->slots[plan->outgoing], plan->id)
          || slot_decision_unconfirmed (job->slots[plan->incoming], plan->id)))
    return G_SOURCE_CONTINUE;
  job->arm_wait_id = 0;
  if (plan == NULL || plan->state != BGD_CUTOVER_PREPARED || g_strcmp0 (plan->id, job->arm_pending_id) != 0
      || g_get_real_time () >= plan->deadline)
    {
      /* Decided meanwhile, or the deadline rule takes over. */
      g_clear_pointer (&job->arm_pending_id, g_free);
      return G_SOURCE_REMOVE;
    }
  g_clear_pointer (&job->arm_pending_id, g_free);
  if (!cut_arm (job, plan, &reason))
    bgd_cutover_plan_armed (job->cutover,
                            bgd_slot_is_active (job->slots[plan->outgoing]) ? plan->incoming : plan->outgoing,
                            plan->id, FALSE, reason);
  return G_SOURCE_REMOVE;
}

static gboolean
cut_arm (gpointer data, const BgdCutoverPlan *plan, char **reason)
{
  BgdJob *job = data;
  BgdSlot *out = job->slots[plan->outgoing];
  BgdSlot *in = job->slots[plan->incoming];

  if (slot_decision_unconfirmed (out, plan->id) || slot_decision_unconfirmed (in, plan->id))
    {
      bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, NULL, NULL, plan->id,
                   "cutover %s: arming waits until the instances applied the previous decision", plan->id);
      g_free (job->arm_pending_id);
      job->arm_pending_id = g_strdup (plan->id);
      if (job->arm_wait_id == 0)
        job->arm_wait_id = g_timeout_add (ARM_WAIT_POLL_MS, arm_wait_cb, job);
      return TRUE;
    }

  for (guint c = 0; c < 2; c++)
    {
      BgdSlot *slot = c == 0 ? out : in;
      g_autoptr(BgdSteering) cur = NULL;

      if (!bgd_slot_is_active (slot))
        continue;
      cur = bgd_slot_dup_steering (slot);
      bgd_slot_apply_steering (slot, bgd_steering_arm (cur, plan, c == 0));
    }
  job_changed (job);
  if (!bgd_slot_is_active (out) && !bgd_slot_is_active (in))
    {
      *reason = g_strdup_printf ("neither slot runs on this host (%s %s, %s %s)",
                                 bg_color_to_string (plan->outgoing),
                                 bgd_slot_state_to_string (bgd_slot_get_state (out)),
                                 bg_color_to_string (plan->incoming),
                                 bgd_slot_state_to_string (bgd_slot_get_state (in)));
      return FALSE;
    }
  /* A slot without a unit (stopped, failed) has no instance that could
   * emit, and its color's consumer group has given its partitions to the
   * instances of that color on the other hosts, which are armed there:
   * nothing to arm here, so it is answered for at once and this host acks
   * when its running slot has armed (Job1.Rollback in the D-Bus XML). */
  for (guint c = 0; c < 2; c++)
    {
      BgdSlot *slot = c == 0 ? out : in;

      if (!bgd_slot_is_active (slot))
        {
          bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string (bgd_slot_get_color (slot)),
                       NULL, plan->id, "cutover %s: the %s slot is %s on this host: nothing to arm there",
                       plan->id, bg_color_to_string (bgd_slot_get_color (slot)),
                       bgd_slot_state_to_string (bgd_slot_get_state (slot)));
          bgd_cutover_plan_armed (job->cutover, bgd_slot_get_color (slot), plan->id, TRUE, NULL);
        }
    }
  return TRUE;
}

static void
cut_commit (gpointer data, const BgdCutoverPlan *plan)
{
  BgdJob *job = data;
  BgdSlot *out = job->slots[plan->outgoing];
  BgdSlot *in = job->slots[plan->incoming];

  for (guint c = 0; c < 2; c++)
    {
      BgdSlot *slot = c == 0 ? out : in;
      g_autoptr(BgdSteering) cur = bgd_slot_dup_steering (slot);

      bgd_slot_apply_steering (slot, bgd_steering_commit (cur, plan, c == 0));
    }
  bg_job1_set_live_color (job->iface, bg_color_to_string (plan->incoming));
  job_apply_liveness (job);
  job_set_last_cutover (job, plan, "committed", "", plan->read_at, 0);
  job->cutovers[BGD_JOB_CUTOVER_COMMITTED]++;
  bgd_log_job (G_LOG_LEVEL_MESSAGE, BGD_MESSAGE_CUTOVER_COMMITTED, job->config->name,
               bg_color_to_string (plan->incoming), bgd_slot_get_version (in), plan->id,
               "live color is now '%s' (cutover %s committed)", bg_color_to_string (plan->incoming), plan->id);
  job_changed (job);
}

static void
cut_abort (gpointer data, const BgdCutoverPlan *plan)
{
  BgdJob *job = data;

  /* LastCutover first, written ahead with the steering below. */
  job_set_last_cutover (job, plan, "aborted", plan->reason, plan->read_at,
                        plan->finished_at - plan->read_at);

  for (guint c = 0; c < 2; c++)
    {
      BgdSlot *slot = job->slots[c == 0 ? plan->outgoing : plan->incoming];
      g_autoptr(BgdSteering) cur = bgd_slot_dup_steering (slot);

      bgd_slot_apply_steering (slot, bgd_steering_abort (cur, plan, c == 0, bgd_slot_is_active (slot)));
    }
  if (g_strcmp0 (job->pending_id, plan->id) == 0)
    g_clear_pointer (&job->pending_id, g_free);
  job->cutovers[BGD_JOB_CUTOVER_ABORTED]++;
  bgd_log_job (G_LOG_LEVEL_MESSAGE, BGD_MESSAGE_CUTOVER_ABORTED, job->config->name,
               bg_color_to_string (plan->incoming), bgd_slot_get_version (job->slots[plan->incoming]), plan->id,
               "cutover %s aborted: %s", plan->id, plan->reason ? plan->reason : "no reason given");
  if (job->phase == BGD_JOB_PHASE_CUTTING_OVER)
    {
      if (job->phase_before == BGD_JOB_PHASE_OBSERVING)
        {
          job->phase = BGD_JOB_PHASE_OBSERVING;
          bg_job1_set_phase (job->iface, bgd_job_phase_to_string (job->phase));
          job_arm_observation (job); /* prepare stopped the timer */
        }
      else
        {
          /* Back to the phase the slots give. */
          job->phase = BGD_JOB_PHASE_READY;
          bg_job1_set_phase (job->iface, "ready");
          job_update_phase (job);
        }
    }
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
  /* An attempt its coordinator retries is not the end of the cutover. */
  if (plan->retry_id == NULL)
    {
      g_autofree char *operator_id = bgd_cutover_operator_id (plan->id);
      bg_job1_emit_cutover_finished (job->iface, operator_id, "aborted", plan->reason ? plan->reason : "");
    }
  job_changed (job);
}

static void
cut_release (gpointer data, const BgdCutoverPlan *plan, const char *topic, gint32 partition)
{
  BgdJob *job = data;
  BgdSlot *in = job->slots[plan->incoming];
  g_autoptr(BgdSteering) cur = bgd_slot_dup_steering (in);

  bgd_slot_apply_steering (in, bgd_steering_release (cur, topic, partition));
}

static void job_stop_outgoing (BgdJob *job);

static gboolean
observation_end_cb (gpointer user_data)
{
  BgdJob *job = user_data;

  job->observation_id = 0;
  job_stop_outgoing (job);
  return G_SOURCE_REMOVE;
}

static void
observation_stopped_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(BgdJob) job = user_data;
  g_autoptr(GError) error = NULL;

  if (!bgd_slot_stop_finish (NULL, res, &error))
    bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL, "stopping the old version: %s",
                 error->message);
  if (job->disposed)
    return;
  job->observing = FALSE;
  if (job->phase == BGD_JOB_PHASE_OBSERVING)
    {
      job->phase = BGD_JOB_PHASE_LIVE;
      bg_job1_set_phase (job->iface, "live");
      job_update_phase (job);
      g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
    }
  job_changed (job);
}

static void
job_stop_outgoing (BgdJob *job)
{
  BgColor out = job->observe_outgoing;

  if (!job->observing || bgd_cutover_in_flight (job->cutover))
    return;
  bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string (out),
               bgd_slot_get_version (job->slots[out]), NULL,
               "observation window over, stopping the %s slot", bg_color_to_string (out));
  bgd_slot_stop_async (job->slots[out], NULL, observation_stopped_cb, job_ref (job));
}

/* (Re)arms the observation timer for what is left of the window (a
 * restarted agent: from the persisted done time, not from its start). */
static void
job_arm_observation (BgdJob *job)
{
  gint64 left = job->observe_since + job->config->observation_usec - g_get_real_time ();

  g_clear_handle_id (&job->observation_id, g_source_remove);
  if (!job->observing)
    return;
  if (left <= 0)
    {
      job_stop_outgoing (job);
      return;
    }
  job->observation_id = g_timeout_add ((guint) MIN (left / 1000 + 1, G_MAXUINT), observation_end_cb, job);
}

static void
job_begin_observation (BgdJob *job, BgColor outgoing, gint64 since)
{
  job->observing = TRUE;
  job->observe_outgoing = outgoing;
  job->observe_since = since;
  job_arm_observation (job);
}

/* The window ends without the timer (a Deploy replaces the observed
 * slot): the phase follows the slots again. */
static void
job_end_observation (BgdJob *job)
{
  g_clear_handle_id (&job->observation_id, g_source_remove);
  if (!job->observing)
    return;
  job->observing = FALSE;
  if (job->phase == BGD_JOB_PHASE_OBSERVING)
    {
      job->phase = BGD_JOB_PHASE_LIVE;
      bg_job1_set_phase (job->iface, "live");
      job_update_phase (job);
    }
}

static void
cut_done (gpointer data, const BgdCutoverPlan *plan)
{
  BgdJob *job = data;
  BgdSlot *out = job->slots[plan->outgoing];
  gint64 started = g_str_equal (plan->coordinator, job->ctx->config->host_id) && job->call_started > 0
                   ? job->call_started : plan->read_at;

  /* LastCutover first: the steering below is written ahead to the state
   * file, and after a restart a done cutover's messages are history. */
  job_set_last_cutover (job, plan, "done", "", started, plan->finished_at - started);
  /* Everything below every barrier is delivered: the old version emits
   * nothing more, for good. */
  {
    g_autoptr(BgdSteering) cur = bgd_slot_dup_steering (out);
    bgd_slot_apply_steering (out, bgd_steering_done_outgoing (cur));
  }
  job->cutovers[BGD_JOB_CUTOVER_DONE]++;
  bgd_log_job (G_LOG_LEVEL_MESSAGE, BGD_MESSAGE_CUTOVER_DONE, job->config->name,
               bg_color_to_string (plan->incoming), bgd_slot_get_version (job->slots[plan->incoming]), plan->id,
               "cutover %s done in %.3f s: %s is live, %s blackholed", plan->id,
               (plan->finished_at - started) / (double) G_USEC_PER_SEC, bg_color_to_string (plan->incoming),
               bg_color_to_string (plan->outgoing));
  job_set_phase (job, BGD_JOB_PHASE_OBSERVING);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
  {
    g_autofree char *operator_id = bgd_cutover_operator_id (plan->id);
    bg_job1_emit_cutover_finished (job->iface, operator_id, "done", "");
  }
  job_changed (job);
  job->call_started = 0;
  job_begin_observation (job, plan->outgoing, plan->finished_at);
}

static gint64
cut_delivered (gpointer data, BgColor color, const char *topic, gint32 partition)
{
  BgdJob *job = data;

  return bgd_slot_get_delivered (job->slots[color], topic, partition);
}

static void cut_retry (gpointer data, const BgdCutoverPlan *plan);

static const BgdCutoverOps job_cutover_ops = {
  .append = cut_append,
  .prepared = cut_prepared,
  .arm = cut_arm,
  .commit = cut_commit,
  .abort = cut_abort,
  .release = cut_release,
  .done = cut_done,
  .delivered = cut_delivered,
  .retry = cut_retry,
};

static void
on_slot_armed (BgdSlot *slot, const char *id, gboolean ok, const char *reason, GVariant *positions,
               gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GPtrArray) past = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 offset;

  if (job->cutover == NULL)
    return;
  if (positions != NULL)
    {
      g_variant_iter_init (&iter, positions);
      while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
        g_ptr_array_add (past, bg_control_offset_new (topic, partition, offset));
    }
  bgd_cutover_plan_armed_at (job->cutover, bgd_slot_get_color (slot), id, ok, reason, past);
}

static void
on_slot_delivered (BgdSlot *slot, gpointer user_data)
{
  BgdJob *job = user_data;

  if (job->cutover != NULL)
    bgd_cutover_check_delivered (job->cutover);
}

/* ---- Cutover, Rollback, Abort, EvictHost ----------------------------------- */

typedef struct {
  BgdJob *job;
  GDBusMethodInvocation *invocation;
  BgColor outgoing;
  BgColor incoming;
  gint64 deadline_usec;
  char **participants;
  gboolean rollback;
  char *attempt_id;          /* a retry: its id ("<id>.N"); NULL: a new cutover */
  guint attempt;             /* 1, 2, ... */
} CutoverCall;

static void
cutover_call_free (CutoverCall *call)
{
  job_unref (call->job);
  g_clear_object (&call->invocation);
  g_strfreev (call->participants);
  g_free (call->attempt_id);
  g_free (call);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CutoverCall, cutover_call_free)

/* The call's reply, or (an automatic cutover has no caller) LastError. */
static void
cutover_call_fail (CutoverCall *call, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
cutover_call_fail (CutoverCall *call, const char *fmt, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (call->attempt_id != NULL)
    {
      /* The previous attempt's abort promised this one; nobody else will
       * end the operator's cutover. */
      g_autofree char *operator_id = bgd_cutover_operator_id (call->attempt_id);
      g_autofree char *reason = g_strdup_printf ("attempt %s not started: %s", call->attempt_id, text);
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, call->job->config->name, NULL, NULL, operator_id, "%s", reason);
      bgd_job_set_last_error (call->job, reason);
      bg_job1_emit_cutover_finished (call->job->iface, operator_id, "aborted", reason);
      return;
    }
  if (call->invocation != NULL)
    g_dbus_method_invocation_return_error_literal (g_steal_pointer (&call->invocation), BGD_ERROR,
                                                   BGD_ERROR_FAILED, text);
  else
    {
      g_autofree char *last = g_strdup_printf ("automatic cutover: %s", text);
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, call->job->config->name, NULL, NULL, NULL, "%s", last);
      bgd_job_set_last_error (call->job, last);
    }
}

static void
cutover_watermarks_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(CutoverCall) call = user_data;
  BgdJob *job = call->job;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) marks = bgd_kafka_query_watermarks_finish (BGD_KAFKA (source), res, &error);
  g_autoptr(GPtrArray) barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  BgControlMessage *prepare;
  g_autofree char *id = NULL;

  if (marks == NULL)
    {
      g_clear_pointer (&job->pending_id, g_free);
      cutover_call_fail (call, "input high watermarks: %s", error->message);
      return;
    }
  /* The barriers are the high watermarks, no lead (docs/protocol.md,
   * "Barriers"): records that exist now are all an outgoing instance must
   * reach for the cutover to end, whatever the traffic does next. An
   * instance that is past a barrier when it arms reports where it is, and
   * the commit moves that barrier up to it. */
  for (guint i = 0; i < marks->len; i++)
    {
      const BgdWatermark *m = &g_array_index (marks, BgdWatermark, i);
      g_ptr_array_add (barriers, bg_control_offset_new (m->topic, m->partition, MAX (m->high, 0)));
    }
  if (barriers->len == 0)
    {
      g_clear_pointer (&job->pending_id, g_free);
      cutover_call_fail (call, "the input topics have no partitions");
      return;
    }
  prepare = bgd_cutover_make_prepare (job->cutover, call->outgoing, call->incoming, barriers,
                                      g_get_real_time () + call->deadline_usec,
                                      (const char *const *) call->participants);
  if (call->attempt_id != NULL)
    {
      g_free (prepare->id);
      prepare->id = g_strdup (call->attempt_id);
    }
  id = g_strdup (prepare->id);
  g_free (job->pending_id);
  job->pending_id = g_strdup (id);
  bgd_log_job (G_LOG_LEVEL_MESSAGE, call->rollback ? BGD_MESSAGE_ROLLBACK_STARTED : NULL, job->config->name,
               bg_color_to_string (call->incoming), bgd_slot_get_version (job->slots[call->incoming]), id,
               "%s %s: appending prepare %s -> %s (attempt %u)", call->rollback ? "rollback" : "cutover", id,
               bg_color_to_string (call->outgoing), bg_color_to_string (call->incoming), call->attempt);
  job_append (job, prepare);
  if (call->invocation != NULL)
    bg_job1_complete_cutover (job->iface, g_steal_pointer (&call->invocation), id);
}

/* This host coordinated @plan and the log aborted it with a retry mark
 * (an instance was past its barrier): the next attempt, same colors and
 * participants, new barriers. No refusals: the
 * operator's call was accepted, and the abort put every slot back as it
 * was. */
static void
cut_retry (gpointer data, const BgdCutoverPlan *plan)
{
  BgdJob *job = data;
  CutoverCall *call;

  if (job->disposed || job->pending_id != NULL || job->ctx->kafka == NULL || job->ctx->append == NULL)
    return;
  call = g_new0 (CutoverCall, 1);
  call->job = job_ref (job);
  call->outgoing = plan->outgoing;
  call->incoming = plan->incoming;
  call->deadline_usec = MAX (plan->deadline - plan->prepared_at, G_USEC_PER_SEC);
  call->participants = g_strdupv (plan->participants);
  call->attempt_id = g_strdup (plan->retry_id);
  call->attempt = bgd_cutover_attempt (plan->retry_id);
  job->pending_id = g_strdup (""); /* Busy from now on */
  bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, plan->id,
               "cutover %s aborted past a barrier: retrying as %s", plan->id, plan->retry_id);
  bgd_kafka_query_watermarks_async (job->ctx->kafka, (const char *const *) job->config->input_topics, NULL,
                                    cutover_watermarks_cb, call);
}

/* Refusals first, in the documented order; then the barriers. */
static gboolean
start_cutover (BgdJob *job, GDBusMethodInvocation *invocation, JobMethod method, GVariant *options,
               GError **error)
{
  BgdSlot *live = job_live_slot (job);
  BgColor outgoing, incoming;
  guint32 deadline_ms = 0, lead_ms = 0;
  gboolean have_lead;
  g_auto(GStrv) hosts = NULL;
  gint64 now = g_get_real_time ();
  gint64 silence = 3 * job->ctx->config->heartbeat_usec;
  const char *self = job->ctx->config->host_id;
  gboolean rollback;
  CutoverCall *call;

  if (!bg_dbus_args_parse_cutover_options (options, job_method_names[method], &deadline_ms, &have_lead,
                                           &lead_ms, error)
      || !job_check_method (job, method, error) || !job_check_replayed (job, method, error))
    return FALSE;
  if (live == NULL)
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_WRONG_STATE, "job '%s' has no live color", job->config->name);
      return FALSE;
    }
  outgoing = bgd_slot_get_color (live);
  incoming = bg_color_other (outgoing);
  rollback = method == JOB_METHOD_ROLLBACK;
  if (bgd_cutover_in_flight (job->cutover) || job->pending_id != NULL)
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_BUSY, "a cutover of job '%s' is in flight", job->config->name);
      return FALSE;
    }
  if (job->ctx->append == NULL || job->ctx->kafka == NULL)
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_FAILED,
                   "the control log is not available on this host (see the agent's log)");
      return FALSE;
    }
  hosts = bgd_membership_expected (job->ctx->membership, job->config->name,
                                   (const char *const *) job->config->hosts, self);
  /* The handoff needs an instance of the outgoing version somewhere: on
   * each partition the incoming side waits until one has delivered
   * everything below the barrier. A host where it died does not block
   * the cutover (see cut_arm); no host at all would hold it for ever. */
  {
    gboolean anywhere = bgd_slot_is_active (live);

    for (guint i = 0; hosts[i] != NULL && !anywhere; i++)
      anywhere = !g_str_equal (hosts[i], self)
                 && bgd_membership_slot_running (job->ctx->membership, job->config->name, hosts[i], outgoing);
    if (!anywhere)
      {
        g_set_error (error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                     "the live %s slot of job '%s' runs on no host: no instance could hand its partitions "
                     "over exactly (SetSinkMode is the manual way out)", bg_color_to_string (outgoing),
                     job->config->name);
        return FALSE;
      }
  }
  /* A rollback needs the old version running somewhere; a host where its
   * unit died does not block it (see cut_arm). */
  if (rollback)
    {
      gboolean anywhere = bgd_slot_is_active (job->slots[incoming]);

      for (guint i = 0; hosts[i] != NULL && !anywhere; i++)
        anywhere = !g_str_equal (hosts[i], self)
                   && bgd_membership_slot_running (job->ctx->membership, job->config->name, hosts[i], incoming);
      if (!anywhere)
        {
          g_set_error (error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                       "the previous version has stopped; a rollback is a new deploy");
          return FALSE;
        }
    }
  for (guint i = 0; hosts[i] != NULL; i++)
    {
      gint64 seen;

      if (g_str_equal (hosts[i], self))
        continue;
      seen = bgd_membership_last_seen (job->ctx->membership, hosts[i]);
      if (now - seen > silence)
        {
          g_autofree char *ago = seen == 0 ? g_strdup ("not heard since this agent started")
                                           : g_strdup_printf ("last heard %.1f s ago", (now - seen) / 1e6);
          g_set_error (error, BGD_ERROR, BGD_ERROR_HOST_SILENT,
                       "host %s is silent (%s); it blocks the cutover until it is back or evicted",
                       hosts[i], ago);
          return FALSE;
        }
    }
  if (!bgd_slot_get_ready (job->slots[incoming]) && !(rollback && !bgd_slot_is_active (job->slots[incoming])))
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_NOT_READY, "the %s slot of job '%s' is not ready on host %s",
                   bg_color_to_string (incoming), job->config->name, self);
      return FALSE;
    }
  for (guint i = 0; hosts[i] != NULL; i++)
    if (!g_str_equal (hosts[i], self)
        && !bgd_membership_slot_ready (job->ctx->membership, job->config->name, hosts[i], incoming)
        && !(rollback && !bgd_membership_slot_running (job->ctx->membership, job->config->name, hosts[i],
                                                       incoming)))
      {
        g_set_error (error, BGD_ERROR, BGD_ERROR_NOT_READY, "the %s slot of job '%s' is not ready on host %s",
                     bg_color_to_string (incoming), job->config->name, hosts[i]);
        return FALSE;
      }

  call = g_new0 (CutoverCall, 1);
  call->job = job_ref (job);
  call->invocation = invocation ? g_object_ref (invocation) : NULL;
  call->outgoing = outgoing;
  call->incoming = incoming;
  call->deadline_usec = deadline_ms > 0 ? deadline_ms * (gint64) 1000 : job->config->deadline_usec;
  call->participants = g_steal_pointer (&hosts);
  call->rollback = rollback;
  call->attempt = 1;
  job->pending_id = g_strdup (""); /* Busy from now on */
  job->call_started = now;
  bgd_kafka_query_watermarks_async (job->ctx->kafka, (const char *const *) job->config->input_topics, NULL,
                                    cutover_watermarks_cb, call);
  return TRUE;
}

/* Deploy's auto_cutover and auto_rollback: this agent (the one Deploy was
 * called on) calls Cutover or Rollback itself, with the refusals any
 * caller gets. NotReady, HostSilent and Busy mean "not yet": readiness
 * and hellos bring it back here. Anything else ends the automation, with
 * the reason in LastError. */
static void
job_try_auto (BgdJob *job)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) no_options = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  JobMethod method;
  BgdSlot *live = job_live_slot (job);

  if (job->disposed || !job->ctx->replay_finished)
    return;
  if (job->auto_cutover && job->phase == BGD_JOB_PHASE_READY
      && bgd_slot_get_ready (job->slots[job->auto_color]))
    method = JOB_METHOD_CUTOVER;
  else if (job->auto_rollback && job->phase == BGD_JOB_PHASE_OBSERVING && live != NULL
           && bgd_slot_get_color (live) == job->auto_color && bgd_slot_get_state (live) == BGD_SLOT_FAILED)
    /* The new version's unit failed while the old one still runs. The
     * rollback goes through the same protocol: the failed instance has
     * nothing to arm (cut_arm), its partitions went to the instances of
     * its color on the other hosts, and the handoff on each partition
     * waits until one of those has delivered everything below the
     * barrier. If it failed on every host, start_cutover refuses (no
     * instance could hand over) and the automation gives up with that
     * reason in LastError. */
    method = JOB_METHOD_ROLLBACK;
  else
    return;

  if (start_cutover (job, NULL, method, no_options, &error))
    {
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL, "automatic %s started",
                   method == JOB_METHOD_CUTOVER ? "cutover" : "rollback");
      if (method == JOB_METHOD_CUTOVER)
        job->auto_cutover = FALSE; /* the rollback option now guards the new version */
      else
        job->auto_rollback = FALSE;
      return;
    }
  if (g_error_matches (error, BGD_ERROR, BGD_ERROR_NOT_READY) || g_error_matches (error, BGD_ERROR, BGD_ERROR_HOST_SILENT)
      || g_error_matches (error, BGD_ERROR, BGD_ERROR_BUSY))
    {
      bgd_log_job (G_LOG_LEVEL_DEBUG, NULL, job->config->name, NULL, NULL, NULL, "automatic %s waits: %s",
                   job_method_names[method], error->message);
      return;
    }
  {
    g_autofree char *text = g_strdup_printf ("automatic %s given up: %s", job_method_names[method], error->message);
    bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL, "%s", text);
    bgd_job_set_last_error (job, text);
    if (method == JOB_METHOD_CUTOVER)
      job->auto_cutover = FALSE;
    else
      job->auto_rollback = FALSE;
  }
}

static gboolean
auto_idle_cb (gpointer user_data)
{
  BgdJob *job = user_data;

  job->auto_idle_id = 0;
  job_try_auto (job);
  return G_SOURCE_REMOVE;
}

/* From slot changes and hellos, which may come in the middle of steering
 * for the protocol: looked at once the main loop is back, once per burst. */
static void
job_maybe_auto (BgdJob *job)
{
  if ((job->auto_cutover || job->auto_rollback) && job->auto_idle_id == 0 && !job->disposed)
    job->auto_idle_id = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, auto_idle_cb, job_ref (job),
                                         (GDestroyNotify) job_unref);
}

static gboolean
handle_cutover (BgJob1 *iface, GDBusMethodInvocation *invocation, GVariant *options, gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;

  if (!start_cutover (job, invocation, JOB_METHOD_CUTOVER, options, &error))
    {
      bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, NULL, NULL, NULL, "Cutover refused: %s",
                   error->message);
      bgd_error_return (invocation, error);
    }
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_rollback (BgJob1 *iface, GDBusMethodInvocation *invocation, GVariant *options, gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;

  if (job->phase == BGD_JOB_PHASE_LIVE || job->phase == BGD_JOB_PHASE_READY
      || job->phase == BGD_JOB_PHASE_DEPLOYING)
    {
      const BgdCutoverPlan *plan = bgd_cutover_get_plan (job->cutover);
      if (plan != NULL && plan->state == BGD_CUTOVER_DONE)
        {
          g_set_error (&error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                       "the previous version has stopped; a rollback is a new deploy");
          goto out;
        }
    }
  if (start_cutover (job, invocation, JOB_METHOD_ROLLBACK, options, &error))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
out:
  bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, NULL, NULL, NULL, "Rollback refused: %s", error->message);
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_abort (BgJob1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
  BgdJob *job = user_data;
  g_autoptr(GError) error = NULL;

  if (!job_check_method (job, JOB_METHOD_ABORT, &error) || !job_check_replayed (job, JOB_METHOD_ABORT, &error))
    goto out;
  if (!bgd_cutover_request_abort (job->cutover, "aborted by operator"))
    {
      g_set_error (&error, BGD_ERROR, BGD_ERROR_WRONG_STATE,
                   "the cutover of job '%s' is already decided", job->config->name);
      goto out;
    }
  bg_job1_complete_abort (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
out:
  bgd_error_return (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_evict_host (BgJob1 *iface, GDBusMethodInvocation *invocation, const char *host, gpointer user_data)
{
  BgdJob *job = user_data;
  BgControlMessage *msg;
  g_autoptr(GError) error = NULL;

  if (!bg_dbus_args_check_name ("host", "host id", host, &error))
    {
      bgd_error_return (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (g_str_equal (host, job->ctx->config->host_id))
    {
      g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_INVALID_ARGS,
                                             "host: '%s' is this host; a host cannot evict itself", host);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (job->ctx->append == NULL)
    {
      g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_FAILED,
                                             "the control log is not available");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  msg = bg_control_message_new (BG_CONTROL_EVICT, job->ctx->config->host_id, g_get_real_time ());
  msg->job = g_strdup (job->config->name);
  msg->evicted_host = g_strdup (host);
  bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL, "evicting host %s", host);
  /* Applied to membership when read back, like everything else. */
  job_append (job, msg);
  bg_job1_complete_evict_host (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- the control log, for the agent ------------------------------------------ */

void
bgd_job_handle_control (BgdJob *job, const BgControlMessage *msg, gint64 offset)
{
  /* Replay is history, not command (docs/protocol.md, "What survives a
   * restart"): re-applying an old prepare, commit or done would move the
   * slots' steering back, or stop a live slot. */
  if (bgd_history_is_past (offset, job->replay_from))
    {
      bgd_log_job (G_LOG_LEVEL_DEBUG, NULL, job->config->name, NULL, NULL, msg->id,
                   "control log: %s at offset %" G_GINT64_FORMAT " is history (state from %" G_GINT64_FORMAT ")",
                   bg_control_type_to_string (msg->type), offset, job->replay_from);
      return;
    }
  bgd_fleet_plans_handle (job->fleet_plans, msg);
  bgd_cutover_handle (job->cutover, msg, offset);
}

gint64
bgd_job_control_offset (BgdJob *job, gint64 next)
{
  return bgd_history_control_offset (bgd_cutover_pinned_offset (job->cutover), next, job->replay_from);
}

void
bgd_job_set_replaying (BgdJob *job, gboolean replaying)
{
  bgd_cutover_set_replaying (job->cutover, replaying);
  if (!replaying && job->observing && job->phase == BGD_JOB_PHASE_OBSERVING && job->observation_id == 0)
    job_arm_observation (job);
}

gint64
bgd_job_pinned_offset (BgdJob *job)
{
  return bgd_cutover_pinned_offset (job->cutover);
}

BgControlJob *
bgd_job_make_hello (BgdJob *job)
{
  BgControlJob *j = bg_control_job_new (job->config->name);
  BgColor live;

  if (bg_color_from_string (job_live_color (job), &live))
    {
      j->has_live_color = TRUE;
      j->live_color = live;
    }
  for (guint c = 0; c < BG_N_COLORS; c++)
    {
      BgdSlot *slot = job->slots[c];
      BgControlSlot *s = bg_control_slot_new ((BgColor) c, bgd_slot_state_to_string (bgd_slot_get_state (slot)));
      BgSinkMode mode;

      if (bgd_slot_get_version (slot) != NULL)
        s->version = g_strdup (bgd_slot_get_version (slot));
      if (bg_control_sink_mode_from_string (bgd_slot_get_sink_mode (slot), &mode))
        s->sink_mode = mode;
      s->ready = bgd_slot_get_ready (slot);
      g_ptr_array_add (j->slots, s);
    }
  return j;
}

/* ---- lifetime ---------------------------------------------------------------- */

/* Hosts: the expected hosts, as a Cutover would take them (the static
 * Hosts= list, else sticky membership from the log; always this host). */
static void
job_update_hosts (BgdJob *job)
{
  g_auto(GStrv) hosts = bgd_membership_expected (job->ctx->membership, job->config->name,
                                                 (const char *const *) job->config->hosts,
                                                 job->ctx->config->host_id);
  const char *const *old = bg_job1_get_hosts (job->iface);

  if (old != NULL && g_strv_equal (old, (const char *const *) hosts))
    return;
  bg_job1_set_hosts (job->iface, (const char *const *) hosts);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
}

void
bgd_job_membership_changed (BgdJob *job)
{
  job_update_hosts (job);
  job_maybe_auto (job);
}

static void
job_apply_config (BgdJob *job)
{
  BgJobConfig *c = job->config;

  bg_job1_set_input_topics (job->iface, (const char *const *) c->input_topics);
  for (guint i = 0; i < BG_N_COLORS; i++)
    bgd_slot_set_input_topics (job->slots[i], (const char *const *) c->input_topics);
  job_update_hosts (job);
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
  job->replay_from = -1;
  job->fleet_plans = bgd_fleet_plans_new ();
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
  job->cutover = bgd_cutover_new (ctx->config->host_id, config->name, &job_cutover_ops, job);
  bgd_cutover_set_max_attempts (job->cutover, config->cutover_attempts);
  for (guint c = 0; c < BG_N_COLORS; c++)
    bgd_slot_set_cutover_hooks (job->slots[c], on_slot_armed, on_slot_delivered, job);

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
  g_clear_handle_id (&job->auto_idle_id, g_source_remove);
  g_signal_handlers_disconnect_by_data (job->iface, job);
  g_clear_handle_id (&job->observation_id, g_source_remove);
  g_clear_handle_id (&job->arm_wait_id, g_source_remove);
  g_clear_pointer (&job->cutover, bgd_cutover_free);
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
  if (job->cutover != NULL)
    bgd_cutover_set_max_attempts (job->cutover, config->cutover_attempts);
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
  r->control_offset = -1; /* the agent knows where the log is */
  r->last_cutover = g_variant_print (bg_job1_get_last_cutover (job->iface), TRUE);
  r->fleet_committed = bgd_fleet_plans_to_string (job->fleet_plans);
  for (guint c = 0; c < BG_N_COLORS; c++)
    bgd_slot_fill_record (job->slots[c], &r->slots[c]);
  r->members = bgd_membership_members (job->ctx->membership, job->config->name);
  if (job->observing)
    {
      r->observing_color = g_strdup (bg_color_to_string (job->observe_outgoing));
      r->observing_since = job->observe_since;
    }
  return r;
}

void
bgd_job_restore_record (BgdJob *job, const BgdJobRecord *record)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    bgd_slot_restore_record (job->slots[c], &record->slots[c]);
  job->replay_from = record->control_offset;
  if (record->last_cutover != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) last = g_variant_parse (G_VARIANT_TYPE ("(ssssstta(six))"), record->last_cutover, NULL,
                                                 NULL, &error);
      if (last != NULL)
        bg_job1_set_last_cutover (job->iface, last);
      else
        bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL,
                     "stored LastCutover ignored: %s", error->message);
    }
  if (record->fleet_committed != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (!bgd_fleet_plans_restore (job->fleet_plans, record->fleet_committed, &error))
        bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, NULL, NULL, NULL,
                     "stored FleetCommitted ignored: %s", error->message);
    }
  bg_job1_set_live_color (job->iface, record->live_color ? record->live_color : "");
  job_apply_liveness (job);
  job_update_phase (job);
  if (record->observing_color != NULL && bg_color_from_string (record->observing_color, &job->observe_outgoing))
    {
      /* Back in the observation window the done started; its timer is
       * re-armed once the log is replayed and the units adopted. */
      job->observing = TRUE;
      job->observe_since = record->observing_since;
      job->phase = BGD_JOB_PHASE_OBSERVING;
      bg_job1_set_phase (job->iface, bgd_job_phase_to_string (job->phase));
      bgd_log_job (G_LOG_LEVEL_INFO, NULL, job->config->name, record->observing_color, NULL, NULL,
                   "restored: observing since %.1f s ago", (g_get_real_time () - job->observe_since) / 1e6);
    }
}

typedef struct {
  BgdJob *job;
  BgColor color;
} ResumeOp;

static void
resume_started_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  ResumeOp *op = user_data;
  g_autoptr(BgdJob) job = op->job;
  BgColor color = op->color;
  g_autoptr(GError) error = NULL;

  g_free (op);
  if (!bgd_slot_start_finish (NULL, res, &error))
    {
      g_autofree char *text = g_strdup_printf ("bringing back the %s slot: %s", bg_color_to_string (color),
                                               error->message);
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string (color), NULL, NULL, "%s",
                   text);
      if (!job->disposed)
        bgd_job_set_last_error (job, text);
      return;
    }
  if (job->disposed)
    return;
  job_update_phase (job);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (job->iface));
  job_changed (job);
}

void
bgd_job_resume_slots (BgdJob *job)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    {
      BgdSlot *slot = job->slots[c];
      ResumeOp *op;

      if (bgd_slot_get_state (slot) != BGD_SLOT_STOPPED || !bgd_slot_wants_run (slot))
        continue;
      bgd_log_job (G_LOG_LEVEL_MESSAGE, NULL, job->config->name, bg_color_to_string ((BgColor) c),
                   bgd_slot_get_version (slot), NULL,
                   "the %s slot should run but has no unit (the host restarted): bringing it back, steered as before",
                   bg_color_to_string ((BgColor) c));
      op = g_new0 (ResumeOp, 1);
      op->job = job_ref (job);
      op->color = (BgColor) c;
      bgd_slot_resume_async (slot, job->config, NULL, resume_started_cb, op);
    }
  job_update_phase (job);
}

void
bgd_job_update_lag (BgdJob *job, GHashTable *watermarks)
{
  for (guint c = 0; c < BG_N_COLORS; c++)
    if (bgd_slot_is_active (job->slots[c]))
      {
        const char *version = bgd_slot_get_version (job->slots[c]);
        g_auto(GStrv) health = NULL;

        if (job->config->health_argv != NULL && version != NULL)
          health = bg_job_config_expand_health (job->config, (BgColor) c, version, NULL);
        bgd_slot_update_lag (job->slots[c], watermarks, job->config->max_lag, job->config->stable_usec,
                             health);
      }
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

guint64
bgd_job_get_cutover_count (BgdJob *job, BgdJobCutoverResult result)
{
  g_return_val_if_fail (result < BGD_JOB_N_CUTOVER_RESULTS, 0);
  return job->cutovers[result];
}

const char *
bgd_job_cutover_result_to_string (BgdJobCutoverResult result)
{
  switch (result)
    {
    case BGD_JOB_CUTOVER_COMMITTED: return "committed";
    case BGD_JOB_CUTOVER_ABORTED: return "aborted";
    case BGD_JOB_CUTOVER_DONE: return "done";
    default: g_assert_not_reached ();
    }
}

GVariant *
bgd_job_get_last_cutover (BgdJob *job)
{
  return bg_job1_get_last_cutover (job->iface);
}

const char *
bgd_job_get_live_color (BgdJob *job)
{
  return job_live_color (job);
}

guint
bgd_job_n_silent_hosts (BgdJob *job)
{
  g_auto(GStrv) hosts = bgd_membership_expected (job->ctx->membership, job->config->name,
                                                 (const char *const *) job->config->hosts,
                                                 job->ctx->config->host_id);
  gint64 now = g_get_real_time ();
  gint64 silence = 3 * job->ctx->config->heartbeat_usec;
  guint n = 0;

  for (guint i = 0; hosts[i] != NULL; i++)
    if (!g_str_equal (hosts[i], job->ctx->config->host_id)
        && now - bgd_membership_last_seen (job->ctx->membership, hosts[i]) > silence)
      n++;
  return n;
}
