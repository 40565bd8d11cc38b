/* steering.h — what each slot of a job is told to do, as a pure function of
 * the cutover protocol's decisions (docs/protocol.md, "Steering").
 *
 * A slot's steering is what its job instances fetch with
 * Slot1.GetSteering: a sink mode, emit ranges per input partition, the
 * latest cutover plan and the partitions held for the ordered handoff.
 * The functions here compute the next steering of one slot from its
 * current one and a step of the protocol (arm, commit, abort, release,
 * done). They have no D-Bus, no Kafka and no clock: the agent (job.c)
 * publishes their results on the slot's object, and the protocol
 * simulator (tests/sim) hands them to real gates directly.
 *
 * Ranges: (topic, partition, from, to), to = -1 for "no end". An entry
 * with partition -1 (BGD_STEERING_DEFAULT_PARTITION) is the range of every
 * partition no other entry names ("*" as topic): after a commit the
 * incoming side owns such partitions whole and the outgoing side none of
 * them, because a plan's unnamed partitions have an implicit barrier at
 * offset 0 (the gate holds records there while the plan is prepared, and
 * an instance that already admitted one cannot arm the plan).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "daemon/cutover.h"

G_BEGIN_DECLS

#define BGD_STEERING_DEFAULT_TOPIC "*"
#define BGD_STEERING_DEFAULT_PARTITION (-1)

typedef struct {
  char *mode;       /* "live", "blackhole" or "gated" */
  GVariant *ranges; /* a(sixx), non-floating */
  GVariant *plan;   /* (sssxa(six)): id, role, state, deadline, barriers */
  GVariant *holds;  /* a(si) */
} BgdSteering;

/* A new steering in @mode with no ranges, no plan and no holds. */
BgdSteering *bgd_steering_new (const char *mode);
/* A copy of @mode, @ranges, @plan, @holds (references taken, floating
 * ones sunk). */
BgdSteering *bgd_steering_new_full (const char *mode, GVariant *ranges, GVariant *plan, GVariant *holds);
BgdSteering *bgd_steering_copy (const BgdSteering *s);
void bgd_steering_free (BgdSteering *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdSteering, bgd_steering_free)

gboolean bgd_steering_equal (const BgdSteering *a, const BgdSteering *b);

/* The latest plan's id ("" if none) and state ("prepared", "committed",
 * "aborted"; "" if none). */
const char *bgd_steering_plan_id (const BgdSteering *s);
const char *bgd_steering_plan_state (const BgdSteering *s);

/* @plan's barriers as a(six) (floating). */
GVariant *bgd_steering_barriers_variant (const BgdCutoverPlan *plan);

/* Slot1.GetSteering's reply, (sa(sixx)(sssxa(six))a(si)t). */
GVariant *bgd_steering_to_reply (const BgdSteering *s, guint64 generation);

/* The steps. Each returns the slot's next steering, or NULL when the step
 * changes nothing for this slot (already applied: a replayed log, a
 * repeated message). @outgoing: the slot's role in @plan. */

/* Arms @plan. The incoming side holds every barrier partition from now
 * on (the hold travels with the prepared plan, so no
 * instance can see the commit before the hold); on every barrier partition,
 * since the commit may move a barrier up. Never moves a slot back
 * from a decision on @plan to "prepared". */
BgdSteering *bgd_steering_arm (const BgdSteering *cur, const BgdCutoverPlan *plan, gboolean outgoing);
/* The commit: outgoing keeps [from, barrier) of what it emitted on each
 * barrier partition and nothing of the others; incoming gets [barrier, end)
 * and every partition the plan does not name. Holds are kept. */
BgdSteering *bgd_steering_commit (const BgdSteering *cur, const BgdCutoverPlan *plan, gboolean outgoing);
/* The abort: the ranges stay what they were before the plan; no holds.
 * NULL when the slot names another plan (it never armed @plan: its
 * instances cannot hold it, and the other plan's decision must stay
 * visible to an instance that has not fetched it yet). @slot_active is
 * not used any more (kept for the callers). */
BgdSteering *bgd_steering_abort (const BgdSteering *cur, const BgdCutoverPlan *plan, gboolean outgoing,
                                 gboolean slot_active);
/* (topic, partition) is handed over: the incoming side's hold on it goes. */
BgdSteering *bgd_steering_release (const BgdSteering *cur, const char *topic, gint32 partition);
/* Every partition is handed over: the outgoing side emits nothing more. */
BgdSteering *bgd_steering_done_outgoing (const BgdSteering *cur);

/* Whether arming plan @id must wait for a slot's instances: the slot is
 * active and its steering @cur names another plan, decided, whose
 * generation the instances have not confirmed yet (@applied_generation <
 * @generation). Steering is one set of properties: a new prepared plan
 * published before the instances fetched that decision would hide it, and
 * an instance that never guesses a decision would keep the old plan armed. */
gboolean bgd_steering_decision_unconfirmed (const BgdSteering *cur, const char *id, gboolean active,
                                            guint64 applied_generation, guint64 generation);

G_END_DECLS
