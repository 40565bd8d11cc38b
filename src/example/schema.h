/* schema.h — the example job's guarded side effect: registering the
 * schema of its results, the way a job registers with a schema registry.
 *
 * It shows bg_gate_side_effects_allowed(): a blackholed version must not
 * register anything (its schema may be incompatible with what the live
 * version produces), so the job asks the gate before it does, and asks
 * again later — every call of bg_example_schema_poll(), from the job's
 * housekeeping — so that it registers once its mode changes to live
 * (a manual flip or a committed cutover), without a restart.
 *
 * The "registry" is a directory named by EXAMPLE_SCHEMA_DIR (unset: the
 * job registers nothing): registering writes DIR/<output>.schema.json.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "bluegreen.h"

#define BG_EXAMPLE_SCHEMA_DIR_ENV "EXAMPLE_SCHEMA_DIR"

/* Registers the schema of @output's results (once per process) if
 * EXAMPLE_SCHEMA_DIR is set and @gate allows side effects now; cheap when
 * there is nothing to do (one atomic load). */
void bg_example_schema_poll (BgGate *gate, const char *output, const char *version, const char *color);
