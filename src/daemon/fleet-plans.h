/* fleet-plans.h — the last cutover of a job the control log committed,
 * whether or not this host took part in it (docs/protocol.md, "A host
 * joining late").
 *
 * The cutover machine (cutover.c) follows only the cutovers that name this
 * host. A host that joins the fleet's live color later must still emit
 * exactly what that color's instances emit: from the last commit's final
 * barrier on, on every barrier partition, and every other partition whole.
 * Otherwise an instance of it that takes a partition over at its group's
 * committed offset below the barrier would emit records the outgoing color
 * already emitted. This module reads every prepare, commit and abort of one
 * job and keeps that last committed plan: the job steers a slot joining the
 * live color with it (bgd_steering_commit()) and persists it in the state
 * file (FleetCommitted=).
 *
 * It also tells when that plan is handed over fleet-wide (its dones named
 * every barrier partition): a late host joins only then, as its slot gets
 * no holds.
 *
 * Pure: no D-Bus, no Kafka, no clock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "common/control-codec.h"
#include "daemon/cutover.h"

G_BEGIN_DECLS

typedef struct _BgdFleetPlans BgdFleetPlans;

BgdFleetPlans *bgd_fleet_plans_new (void);
void bgd_fleet_plans_free (BgdFleetPlans *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdFleetPlans, bgd_fleet_plans_free)

/* Reads one control message of the job, in log order (other types are
 * ignored). The first decision read for a prepare counts, as on every
 * host; a commit's final barriers move the prepared ones up, never down. */
void bgd_fleet_plans_handle (BgdFleetPlans *f, const BgControlMessage *msg);

/* The last committed plan (id, outgoing, incoming, final barriers; its
 * other fields are empty), or NULL if the log read so far (and the restored
 * state) had none. Owned by @f. */
const BgdCutoverPlan *bgd_fleet_plans_last_committed (BgdFleetPlans *f);

/* Whether the last committed plan is handed over fleet-wide: a done of it
 * named each of its barrier partitions (those at 0 need none). TRUE when
 * there is none. Until then the outgoing color still emits below the
 * barriers somewhere, and a host joining late waits (Busy). */
gboolean bgd_fleet_plans_handed_over (BgdFleetPlans *f);

/* The persisted form (a GVariant text "(sssa(six)a(si))": id, outgoing,
 * incoming, final barriers, partitions handed over); NULL when there is no
 * committed plan. */
char *bgd_fleet_plans_to_string (BgdFleetPlans *f);
/* Restores what bgd_fleet_plans_to_string() wrote. FALSE with @error
 * naming what is wrong; @f is unchanged then. */
gboolean bgd_fleet_plans_restore (BgdFleetPlans *f, const char *text, GError **error);

G_END_DECLS
