/* job.h — one configured job on this host: the org.bluegreen.Job1 object,
 * its two slots, and its Phase state machine (empty, live, deploying,
 * ready, cutting-over, observing; data/org.bluegreen.Agent1.xml).
 *
 * The phase follows from the slots (which runs, which is live, which is
 * Ready) through one transition function; which method is valid in which
 * phase is one table. The cutover phases are entered through the control
 * log (cutover.c): the job steers its slots as the protocol decides.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "common/config.h"
#include "daemon/context.h"
#include "daemon/slot.h"
#include "daemon/state-file.h"

G_BEGIN_DECLS

typedef enum {
  BGD_JOB_PHASE_EMPTY,
  BGD_JOB_PHASE_LIVE,
  BGD_JOB_PHASE_DEPLOYING,
  BGD_JOB_PHASE_READY,
  BGD_JOB_PHASE_CUTTING_OVER,
  BGD_JOB_PHASE_OBSERVING,
} BgdJobPhase;

const char *bgd_job_phase_to_string (BgdJobPhase phase);

typedef struct _BgdJob BgdJob;

BgdJob *bgd_job_new (BgdContext *ctx, BgJobConfig *config);
/* Unexports the job and its slots and drops the owner's reference. */
void bgd_job_dispose (BgdJob *job);

const char *bgd_job_get_name (BgdJob *job);
const char *bgd_job_get_path (BgdJob *job);
BgJobConfig *bgd_job_get_config (BgdJob *job);
BgdJobPhase bgd_job_get_phase (BgdJob *job);
BgdSlot *bgd_job_get_slot (BgdJob *job, BgColor color);
/* Whether any slot has a unit (the job cannot be dropped on Reload). */
gboolean bgd_job_has_active_slots (BgdJob *job);

/* Exports the job and its slots on the object manager. */
void bgd_job_export (BgdJob *job, GDBusObjectManagerServer *manager);
void bgd_job_unexport (BgdJob *job, GDBusObjectManagerServer *manager);

/* A new configuration of the same job (Reload): running slots untouched. */
void bgd_job_set_config (BgdJob *job, BgJobConfig *config);
void bgd_job_set_last_error (BgdJob *job, const char *text);

BgdJobRecord *bgd_job_make_record (BgdJob *job);
void bgd_job_restore_record (BgdJob *job, const BgdJobRecord *record);
/* After the control log is replayed and the units adopted: starts again,
 * steered as before, every slot that should run on this host but has no
 * unit (the host rebooted): the live color and a non-live slot that was
 * deploying, ready or observing. Not a slot that failed or was stopped. */
void bgd_job_resume_slots (BgdJob *job);

/* A periodic tick from the agent with fresh high watermarks
 * ("topic:partition" → gint64*), or NULL if they are unknown. */
void bgd_job_update_lag (BgdJob *job, GHashTable *watermarks);

/* The control log: one message of this job (any type but hello), in log
 * order; replaying on/off; the offset replay must restart from (-1: none). */
void bgd_job_handle_control (BgdJob *job, const BgControlMessage *msg, gint64 offset);
void bgd_job_set_replaying (BgdJob *job, gboolean replaying);
gint64 bgd_job_pinned_offset (BgdJob *job);
/* For the state file: from where this job must read the log after a
 * restart, the log's next offset being @next (its in-flight prepare, or
 * @next, never below what it restored). */
gint64 bgd_job_control_offset (BgdJob *job, gint64 next);
/* Membership changed (a hello, leave or evict was read): Hosts follows,
 * and an auto_cutover may now find every host ready. */
void bgd_job_membership_changed (BgdJob *job);
/* This job's entry of a hello. */
BgControlJob *bgd_job_make_hello (BgdJob *job);

/* For the metrics: the cutover decisions (committed, aborted) and
 * completions (done) this agent applied since it started, LastCutover
 * ((ssssstt a(six)): id, outgoing, incoming, result, reason, started µs,
 * duration µs, barriers) and LiveColor ("" if none). */
typedef enum {
  BGD_JOB_CUTOVER_COMMITTED,
  BGD_JOB_CUTOVER_ABORTED,
  BGD_JOB_CUTOVER_DONE,
  BGD_JOB_N_CUTOVER_RESULTS,
} BgdJobCutoverResult;

guint64 bgd_job_get_cutover_count (BgdJob *job, BgdJobCutoverResult result);
const char *bgd_job_cutover_result_to_string (BgdJobCutoverResult result);
GVariant *bgd_job_get_last_cutover (BgdJob *job);
const char *bgd_job_get_live_color (BgdJob *job);

/* How many of the job's expected hosts (this one aside) are silent: no
 * hello for three heartbeats. For the metrics. */
guint bgd_job_n_silent_hosts (BgdJob *job);

/* One-line summary for STATUS=, e.g. "example: live blue v1, green v2 deploying". */
char *bgd_job_describe (BgdJob *job);

G_END_DECLS
