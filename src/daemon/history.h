/* history.h — what an agent's persisted state reflects of the control log,
 * and the order in which a new steering reaches disk and the instances
 * (docs/protocol.md, "What survives a restart").
 *
 * Pure rules, kept apart so that the agent (job.c, slot.c) and the protocol
 * simulator (tests/sim) obey the very same ones:
 *
 * - Replay is history, not command: a job's record stores the control log
 *   offset its state reflects (ControlOffset=); after a restart, messages
 *   of that job below it are not applied again.
 * - Write-ahead: the state file holds a steering before any instance can
 *   fetch it, so a restarted agent never hands out an older steering under
 *   a generation an instance already applied.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether a message of a job at log @offset is history for a job whose
 * restored state reflects the log below @replay_from (-1: nothing
 * restored, nothing is history). */
gboolean bgd_history_is_past (gint64 offset, gint64 replay_from);

/* The ControlOffset= to store for a job: the prepare of its cutover in
 * flight (@pinned >= 0; the machine is rebuilt from the log), else the
 * next offset the agent reads (@next), never below what the restored
 * state already reflected (@replay_from). */
gint64 bgd_history_control_offset (gint64 pinned, gint64 next, gint64 replay_from);

/* Shows a new steering: @persist (the state file gets it) before @publish
 * (instances may fetch it). Nothing may run in between. */
void bgd_history_write_ahead (void (*persist) (gpointer data), gpointer persist_data,
                              void (*publish) (gpointer data), gpointer publish_data);

G_END_DECLS
