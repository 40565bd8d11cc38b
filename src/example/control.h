/* control.h — the example job's control channel (a test and debug interface).
 *
 * With --control=FIFO the job reads one command per line from a named pipe
 * and applies it to its gate through the public libbluegreen API, from a
 * thread of its own (so a record waiting at a barrier can be released while
 * the consuming thread is blocked in bg_gate_admit()). In production the
 * agent steers the gate over D-Bus instead; this channel lets tests hand a
 * job a cutover plan without an agent.
 *
 *   prepare ID outgoing|incoming DEADLINE_US TOPIC:PARTITION:OFFSET ...
 *   commit ID
 *   abort ID
 *   mode live|blackhole|unknown
 *   savepoint            (as SIGUSR1)
 *   flush                (flush outstanding deliveries now)
 *
 * Each command is answered by one line appended to --control-ack=FILE:
 * "ok VERB [ID]", or "error VERB [ID] REASON" (e.g. "error prepare c1
 * past-barrier 3:1200>1100" when the job had already admitted a record at
 * or past a barrier when the plan arrived).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "bluegreen.h"

#define BG_CONTROL_ERROR (bg_control_error_quark ())
GQuark bg_control_error_quark (void);

typedef enum {
  BG_CONTROL_ERROR_SYNTAX,  /* the line is not a valid command */
} BgControlError;

typedef enum {
  BG_CONTROL_PREPARE,
  BG_CONTROL_COMMIT,
  BG_CONTROL_ABORT,
  BG_CONTROL_MODE,
  BG_CONTROL_SAVEPOINT,
  BG_CONTROL_FLUSH,
} BgControlVerb;

typedef struct {
  char *topic;
  int32_t partition;
  int64_t offset;
} BgControlBarrier;

typedef struct {
  BgControlVerb verb;
  char *id;                /* prepare, commit, abort */
  BgPlanRole role;         /* prepare */
  int64_t deadline_us;     /* prepare */
  GArray *barriers;        /* prepare: BgControlBarrier */
  BgSinkMode mode;         /* mode */
} BgControlCommand;

void bg_control_command_free (BgControlCommand *cmd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgControlCommand, bg_control_command_free)

const char *bg_control_verb_to_string (BgControlVerb verb);

/* Parses one line (without its newline). */
BgControlCommand *bg_control_parse_line (const char *line, GError **error);

/* The plan a prepare command describes (caller frees). */
BgPlan *bg_control_command_to_plan (const BgControlCommand *cmd);
