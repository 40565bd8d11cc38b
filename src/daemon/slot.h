/* slot.h — one color of a job on this host: the org.bluegreen.Slot1 object,
 * its systemd unit (bluegreen-<job>-<color>.service), its steering (sink
 * mode, generation) and what the job reports (positions, counters), from
 * which lag and readiness follow.
 *
 * The slot's State is an explicit state machine (bgd_slot_state_*, one
 * transition function) driven by the unit's ActiveState as systemd reports
 * it; the slot never guesses a state systemd did not report, except
 * "starting" from the moment it asks for the unit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "common/config.h"
#include "daemon/context.h"
#include "daemon/state-file.h"
#include "daemon/steering.h"
#include "daemon/systemd.h"

G_BEGIN_DECLS

typedef enum {
  BGD_SLOT_STOPPED,
  BGD_SLOT_STARTING,
  BGD_SLOT_RUNNING,
  BGD_SLOT_STOPPING,
  BGD_SLOT_FAILED,
} BgdSlotState;

const char *bgd_slot_state_to_string (BgdSlotState state);

/* What the agent wants of the slot's unit (persisted: <Color>State=). */
typedef enum {
  BGD_SLOT_INTENT_UNKNOWN, /* a state file of an older agent */
  BGD_SLOT_INTENT_RUN,     /* started by the agent, not stopped by it */
  BGD_SLOT_INTENT_STOPPED, /* stopped (retired, observation over) by the agent */
  BGD_SLOT_INTENT_FAILED,  /* failed, and systemd gave up restarting it */
} BgdSlotIntent;

typedef struct _BgdSlot BgdSlot;

/* Called whenever something the job's phase or the state file depends on
 * changes (state, version, sink mode, readiness). */
typedef void (*BgdSlotChangedFunc) (BgdSlot *slot, gpointer user_data);
/* The slot's instance answered PlanArmed / reported new delivered offsets. */
/* @positions (a(six), may be NULL: an instance of an older library): the
 * highest positions the instance had admitted past the plan's barriers. */
typedef void (*BgdSlotArmedFunc) (BgdSlot *slot, const char *id, gboolean ok, const char *reason,
                                  GVariant *positions, gpointer user_data);
typedef void (*BgdSlotDeliveredFunc) (BgdSlot *slot, gpointer user_data);

BgdSlot *bgd_slot_new (BgdContext *ctx, const char *job_name, const char *job_path,
                       BgColor color, BgdSlotChangedFunc changed, gpointer user_data);
BgdSlot *bgd_slot_ref (BgdSlot *slot);
/* Drops the owner's reference; also disconnects the changed callback and
 * unexports the object, so pending operations only finish quietly. */
void bgd_slot_dispose (BgdSlot *slot);
void bgd_slot_unref (BgdSlot *slot);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdSlot, bgd_slot_unref)

GDBusObjectSkeleton *bgd_slot_get_object (BgdSlot *slot);
const char *bgd_slot_get_path (BgdSlot *slot);
const char *bgd_slot_get_unit (BgdSlot *slot);
BgColor bgd_slot_get_color (BgdSlot *slot);
BgdSlotState bgd_slot_get_state (BgdSlot *slot);
/* Whether a unit exists for this slot (starting, running or stopping). */
gboolean bgd_slot_is_active (BgdSlot *slot);
const char *bgd_slot_get_version (BgdSlot *slot);
const char *bgd_slot_get_sink_mode (BgdSlot *slot);
gboolean bgd_slot_get_ready (BgdSlot *slot);
gint64 bgd_slot_get_lag (BgdSlot *slot);

/* Steering: sets the sink mode ("live"/"blackhole") and bumps Generation;
 * the job fetches it with GetSteering on the PropertiesChanged. */
void bgd_slot_set_sink_mode (BgdSlot *slot, const char *mode);

/* Steering for a cutover: any of @mode, @ranges (a(sixx)), @plan
 * ((sssxa(six))), @holds (a(si)) that is not NULL replaces the current
 * value (floating references are sunk); Generation is bumped once. */
void bgd_slot_set_steering (BgdSlot *slot, const char *mode, GVariant *ranges, GVariant *plan,
                            GVariant *holds);
/* The slot's current steering (a copy), and a new one to publish (taken;
 * NULL changes nothing): steering.c computes it, this publishes it. */
BgdSteering *bgd_slot_dup_steering (BgdSlot *slot);
void bgd_slot_apply_steering (BgdSlot *slot, BgdSteering *next);
GVariant *bgd_slot_get_ranges (BgdSlot *slot);
GVariant *bgd_slot_get_plan (BgdSlot *slot);
GVariant *bgd_slot_get_holds (BgdSlot *slot);
/* The instance's delivered offset on (topic, partition), -1 if none. */
gint64 bgd_slot_get_delivered (BgdSlot *slot, const char *topic, gint32 partition);
/* The job's input topics: what the instance may report positions and
 * deliveries for (anything else is refused with InvalidArgs). */
void bgd_slot_set_input_topics (BgdSlot *slot, const char *const *topics);
void bgd_slot_set_cutover_hooks (BgdSlot *slot, BgdSlotArmedFunc armed, BgdSlotDeliveredFunc delivered,
                                 gpointer user_data);

/* Whether the slot emits for its job (the job's live color): a live slot's
 * unit gets CPUWeight= and no IPAddressDeny= guard, one that is not gets
 * CatchUpCPUWeight= and the [Guard] IPAddressDeny= list. A slot starts
 * with the settings of its initial sink mode; a change is applied to the
 * running unit with SetUnitProperties (runtime). The [Guard]
 * Environment= overrides are set at start only (a process's environment
 * cannot change from outside): they go with a restart. */
void bgd_slot_set_live (BgdSlot *slot, const BgJobConfig *job, gboolean live);
gboolean bgd_slot_get_live (BgdSlot *slot);

/* What the instance reported: Positions (a(six)), Emitted, Dropped. */
GVariant *bgd_slot_get_positions (BgdSlot *slot);
guint64 bgd_slot_get_emitted (BgdSlot *slot);
guint64 bgd_slot_get_dropped (BgdSlot *slot);
guint bgd_slot_get_restarts (BgdSlot *slot);

/* The persistent part, for the state file, and its restoration. */
void bgd_slot_fill_record (BgdSlot *slot, BgdSlotRecord *record);
void bgd_slot_restore_record (BgdSlot *slot, const BgdSlotRecord *record);

/* Whether the slot should run on this host: the agent started it, never
 * stopped it, and it did not fail for good. At start, a slot that should
 * run but has no unit (the host rebooted) is resumed. */
gboolean bgd_slot_wants_run (BgdSlot *slot);

/* Adopts a unit found running at start: follows it, keeps its PID. */
void bgd_slot_adopt (BgdSlot *slot, const char *active_state, const char *sub_state,
                     const char *result, guint main_pid);

/* Sets @spec's sandboxing from the job's [Sandbox] group (the borrowed
 * pointers stay the job's): user, hardening preset (without the two
 * settings a user manager cannot set up when @user_manager), paths,
 * credentials, environment files. */
void bgd_slot_apply_sandbox (BgdUnitSpec *spec, const BgJobConfig *job, gboolean user_manager);

/* Starts the slot's unit running @version of @job in @sink_mode, restoring
 * from @savepoint_dir if not NULL, with the job's StartTimeoutSec= and
 * WatchdogSec=. Completes when systemd has started it (the job sent
 * READY=1), or with BGD_ERROR_START_FAILED when the unit did not start
 * (could not be run, exited or was killed before READY=1, or no READY=1
 * in time; the slot is then "failed" with the same message in LastError),
 * or BGD_ERROR_FAILED when systemd would not create it. */
void bgd_slot_start_async (BgdSlot *slot, BgJobConfig *job, const char *version,
                           const char *sink_mode, const char *savepoint_dir,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
gboolean bgd_slot_start_finish (BgdSlot *slot, GAsyncResult *result, GError **error);

/* As bgd_slot_start_async() in mode live, but the slot's steering (mode,
 * ranges, plan, holds) is @initial from the start: a slot joining the
 * fleet's live color emits what that color's committed plan gives it
 * (docs/protocol.md, "A host joining late"). */
void bgd_slot_start_steered_async (BgdSlot *slot, BgJobConfig *job, const char *version,
                                   const BgdSteering *initial, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);

/* Starts the slot's unit again with the version it had, steered exactly
 * as before: its sink mode, ranges, plan and holds are kept (not the reset
 * of a new deploy) and Generation grows (written ahead to the state file),
 * so the new instance, which starts in mode unknown and emits nothing,
 * fetches the same steering. For a host that rebooted. Completes as
 * bgd_slot_start_async() (finish with bgd_slot_start_finish()). */
void bgd_slot_resume_async (BgdSlot *slot, BgJobConfig *job, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);

/* Stops the unit (no error if there is none) and forgets the version. */
void bgd_slot_stop_async (BgdSlot *slot, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
gboolean bgd_slot_stop_finish (BgdSlot *slot, GAsyncResult *result, GError **error);

/* Asks the slot's job (through the library) for a savepoint in @directory:
 * emits SavepointRequested and completes on SavepointDone for the same
 * directory, or with BGD_ERROR_TIMEOUT after @timeout_usec. */
void bgd_slot_request_savepoint_async (BgdSlot *slot, const char *directory,
                                       gint64 timeout_usec, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
gboolean bgd_slot_request_savepoint_finish (BgdSlot *slot, GAsyncResult *result,
                                            GError **error);

/* Lag from the input topics' high watermarks: @watermarks maps
 * "topic:partition" → gint64* high watermark. Re-evaluates readiness
 * against @max_lag and @stable_usec, and with @health_argv (HealthCommand=,
 * expanded; NULL if none) requires that command to pass too. */
void bgd_slot_update_lag (BgdSlot *slot, GHashTable *watermarks,
                          gint64 max_lag, gint64 stable_usec, char **health_argv);
/* Whether the slot's job has reported its progress (lag can be known). */
gboolean bgd_slot_has_reported (BgdSlot *slot);

G_END_DECLS
