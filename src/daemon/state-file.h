/* state-file.h — what the agent must remember across its own restarts.
 *
 * Slots outlive the agent (they are transient units of the manager, not
 * children of bluegreend), but systemd does not know which color is live,
 * which version a slot runs or which sink mode it was steered to. That is
 * kept here, one group per job, in a GKeyFile under the state directory,
 * rewritten atomically (g_file_set_contents) on every change:
 *
 *   [Job example]
 *   LiveColor=blue
 *   BlueVersion=v1
 *   BlueSinkMode=live
 *   BlueGeneration=3
 *   BlueState=running
 *   GreenVersion=v2
 *   ...
 *   Members=a;b;c
 *   ObservingColor=blue
 *   ObservingSince=1764650000000000
 *
 * Members= is the job's sticky membership (the hosts that announced it
 * and did not leave), so a restarted agent still knows a host that went
 * silent before the offset its replay starts from. ObservingColor= and
 * ObservingSince= (wall clock µs) are the observation window after a
 * cutover's done: which color is kept blackholed for a rollback, and since
 * when. Files written before these keys existed read as "no members
 * remembered" and "not observing".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "common/names.h"

G_BEGIN_DECLS

typedef struct {
  char *version;     /* NULL: nothing deployed in this slot */
  char *sink_mode;   /* "live", "blackhole" or "gated"; NULL if unknown */
  guint64 generation;
  char *steering;    /* ranges, plan, holds as GVariant text; NULL if none */
  /* What the agent last wanted of the slot's unit: "running" (started and
   * not stopped by the agent: brought back after a reboot), "stopped"
   * (stopped or retired by the agent) or "failed" (failed for good); NULL:
   * not known (a state file of an older agent). <Color>State= in the file. */
  char *state;
} BgdSlotRecord;

typedef struct {
  char *name;
  char *live_color;  /* "blue", "green" or "" */
  /* The control log offset from which this job's messages are news: its
   * steering reflects everything before (docs/protocol.md, "What survives
   * a restart"); -1 if unknown (a state file of an older agent). */
  gint64 control_offset;
  /* Job1.LastCutover as GVariant text, NULL if none: what the operator sees
   * of the last cutover outlives the agent (its messages may be history). */
  char *last_cutover;
  /* The last cutover the log committed, this host a participant or not
   * (fleet-plans.h), as GVariant text; NULL if none. FleetCommitted=. */
  char *fleet_committed;
  BgdSlotRecord slots[BG_N_COLORS];
  char **members;         /* NULL: none remembered */
  char *observing_color;  /* "blue"/"green" while observing, else NULL */
  gint64 observing_since; /* wall clock µs of the done */
} BgdJobRecord;

/* A deep copy of @record. */
BgdJobRecord *bgd_job_record_copy (const BgdJobRecord *record);

void bgd_job_record_free (BgdJobRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdJobRecord, bgd_job_record_free)

/* Reads @path into a table job name → BgdJobRecord*. A missing file is an
 * empty table (first start); an unreadable or corrupt one is an error. */
GHashTable *bgd_state_file_load (const char *path, GError **error);
/* [Control] NextOffset: where the control log is read from next; -1 if
 * the file has none (or does not exist). */
gint64 bgd_state_file_load_control_offset (const char *path);

/* Writes @records (BgdJobRecord*) to @path atomically. */
gboolean bgd_state_file_save (const char *path, GPtrArray *records, GError **error);
/* The same with [Control] NextOffset=@control_offset (left out if < 0). */
gboolean bgd_state_file_save_full (const char *path, GPtrArray *records, gint64 control_offset,
                                   GError **error);

G_END_DECLS
