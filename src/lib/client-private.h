/* client-private.h — libbluegreen's agent link (client.c) as its tests see
 * it: the error domain, and the steering step on its own (what one
 * GetSteering reply does to a gate). Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bluegreen.h"

typedef struct _BgClient BgClient;

#define BG_CLIENT_ERROR (bg_client_error_quark ())
GQuark bg_client_error_quark (void);

typedef enum {
  BG_CLIENT_ERROR_BAD_ENVIRONMENT, /* BLUEGREEN_SLOT/BUS/SINK_MODE invalid */
  BG_CLIENT_ERROR_BAD_STEERING,    /* the agent sent something unparseable */
  BG_CLIENT_ERROR_REFUSED,         /* the gate refused the steering (e.g. a prepared plan) */
} BgClientError;

/* Slot1.GetSteering's reply: sink mode, ranges, plan, holds, generation. */
#define BG_STEERING_TYPE "(sa(sixx)(sssxa(six))a(si)t)"

/* bg_gate_new_from_env() with the three variables given explicitly. */
BgGate *bg_client_gate_new (const char *slot, const char *bus, const char *sink_mode,
                            GError **error);

/* Applies one steering (of BG_STEERING_TYPE) to @gate. @applied_holds is the
 * set of holds the caller put on the gate before (kept up to date). A plan
 * the gate holds PREPARED is ended only by the steering's decision on that
 * same plan; until then only holds change. */
gboolean bg_client_apply_steering (BgGate *gate, GVariant *steering, GHashTable *applied_holds,
                                   GError **error);

/* Test hook for the protocol simulator (tests/sim): @func runs at every
 * point where bg_client_apply_steering() has changed @gate and will change
 * it again, which is where a job's processing threads may admit records
 * in between. Process-wide; NULL (the default) for none. */
typedef void (*BgClientInterleaveFunc) (BgGate *gate, gpointer user_data);
void bg_client_debug_set_interleave (BgClientInterleaveFunc func, gpointer user_data);

/* Test hook: the link's state ("connecting", "no-agent", "fetching",
 * "steered", "stopping"), or NULL for a stand-alone gate. */
const char *bg_client_debug_state (BgGate *gate);
