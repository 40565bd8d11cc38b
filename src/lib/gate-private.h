/* gate-private.h — what libbluegreen's own modules (and its tests) see of
 * the gate and the plan beyond the public header: the plan's layout, the
 * bulk range setter the agent client uses to restore a slot's ranges, and
 * test hooks. Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "bluegreen.h"

/* Key of a (topic, partition) in the gate's and the plan's tables: the
 * topic's quark in the high half, the partition in the low half. Topics are
 * named by quark so a plan may name topics the job has not registered yet. */
static inline gint64
bg_part_key (GQuark topic, int32_t partition)
{
  return (gint64) (((guint64) topic << 32) | (guint32) partition);
}

static inline GQuark
bg_part_key_topic (gint64 key)
{
  return (GQuark) ((guint64) key >> 32);
}

static inline int32_t
bg_part_key_partition (gint64 key)
{
  return (int32_t) (guint32) ((guint64) key & 0xffffffffu);
}

struct _BgPlan {
  char *id;
  BgPlanRole role;
  int64_t deadline_us;
  GHashTable *barriers; /* gint64 part key -> gint64 barrier offset (both owned) */
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgPlan, bg_plan_free)

/* A new table with the same barriers as @plan's, for the gate to keep. */
GHashTable *bg_plan_dup_barriers (const BgPlan *plan);

/* One emit range [lo, hi) for a (topic, partition). lo >= hi is empty. */
typedef struct {
  const char *topic;
  int32_t partition;
  int64_t lo;
  int64_t hi;
} BgGateRange;

/* Replaces every emit range at once: (topic, partition) pairs listed in
 * @ranges get theirs, every other partition gets [default_lo, default_hi).
 * The mode becomes GATED. Holds are kept. This is how the agent client
 * restores a slot's committed ranges into a fresh instance.
 * Returns false (and changes nothing) while a plan is PREPARED, or if an
 * entry has no topic or a negative partition. */
bool bg_gate_set_ranges (BgGate *gate, int64_t default_lo, int64_t default_hi,
                         const BgGateRange *ranges, size_t n_ranges);

/* A partition held for the ordered handoff. Topics are named, not
 * handles: a hold may name a topic the job has not registered yet. */
typedef struct {
  const char *topic;
  int32_t partition;
} BgGateHold;

/* Replaces the holds. false on an entry without a topic or with a
 * negative partition. */
bool bg_gate_set_holds (BgGate *gate, const BgGateHold *holds, size_t n_holds);

/* A whole steering from the agent, applied in one snapshot: the base
 * (mode, and for GATED the ranges, partitions without an entry getting
 * [default_lo, default_hi)), optionally a plan on top of it in @plan_state
 * (PREPARED: armed as bg_gate_prepare_checked() does; COMMITTED: the base
 * ranges are already the committed ones, the plan only gives the holds
 * their barriers), and the holds. Applying the base and the plan apart
 * would let an instance run under the base alone, for a moment, while its
 * slot's plan is prepared (docs/protocol.md, "Steering").
 * REFUSED while a plan is PREPARED (only its decision ends it: the same
 * plan in state COMMITTED, whose barriers may have moved up, is applied)
 * or on bad input; otherwise ARMED or PAST_BARRIER (as bg_gate_prepare_checked(),
 * for a PREPARED plan), with *@reason (g_free) for anything but ARMED. */
typedef struct {
  BgSinkMode mode; /* LIVE, BLACKHOLE or GATED */
  int64_t default_lo;
  int64_t default_hi;
  const BgGateRange *ranges;
  size_t n_ranges;
  const BgPlan *plan; /* NULL: the gate's latest plan stays as it is */
  BgPlanState plan_state;
  const BgGateHold *holds;
  size_t n_holds;
} BgGateSteering;

BgPrepareResult bg_gate_steer (BgGate *gate, const BgGateSteering *steering, char **reason);

/* Whether @id is the latest plan and armed (PREPARED); then *@past_reason
 * (if not NULL) gets what bg_gate_prepare_checked() found passed, or NULL
 * if no barrier was (free with g_free). For the link's PlanArmed answer. */
gboolean bg_gate_get_armed (BgGate *gate, const char *id, char **past_reason);

/* What arming plan @id (the latest, PREPARED) found passed: the highest
 * position admitted on each barrier partition past its barrier (a commit
 * may move those barriers up), and in *@unnamed_reason (g_free) a
 * partition the plan does not name that had records admitted (its
 * implicit barrier 0 cannot move), or NULL. FALSE if @id is not armed. */
typedef struct {
  char *topic;
  int32_t partition;
  int64_t position;
} BgArmedPosition;
void bg_armed_position_free (BgArmedPosition *ap);
gboolean bg_gate_get_armed_positions (BgGate *gate, const char *id, char **unnamed_reason,
                                      GPtrArray **positions);
/* Changes whenever what the prepared plan found passed grows after arming
 * (bg_gate_partition_resumed()): the link then answers PlanArmedAt again. */
guint64 bg_gate_past_serial (BgGate *gate);

/* The agent link (client.c) attached to a gate: bg_gate_free() calls
 * @destroy (@client) first, so the link's thread stops before the gate goes. */
void bg_gate_set_client (BgGate *gate, gpointer client, GDestroyNotify destroy);
gpointer bg_gate_get_client (BgGate *gate);

/* The registered topics in registration order, in a new array of borrowed
 * handles (valid as long as the gate), for reporting positions. */
GPtrArray *bg_gate_dup_topics (BgGate *gate);
int32_t bg_topic_n_partitions (const BgTopic *topic);

/* The positions on untracked partitions (beyond a topic's registered
 * count: e.g. one added to the input topic after the instance started),
 * those with a position, sorted by topic and partition; topic names are
 * interned. For reporting positions with the tracked ones. */
typedef struct {
  const char *topic;
  int32_t partition;
  int64_t position;
} BgUntrackedPosition;
GArray *bg_gate_dup_untracked_positions (BgGate *gate);

/* Test hooks. The number of snapshot buffers the gate has allocated (the
 * current one, the spare, and those retired by growth); it must not grow with
 * the number of changes. */
guint bg_gate_debug_n_buffers (BgGate *gate);
/* How many snapshots were published so far. */
guint64 bg_gate_debug_n_publishes (BgGate *gate);
