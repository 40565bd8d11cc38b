/* context.h — what the agent's jobs and slots share: the bus, the drivers
 * and the configuration, plus the hook through which they tell the agent
 * that its persistent state or summary changed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "common/config.h"
#include "common/control-codec.h"
#include "daemon/membership.h"
#include "daemon/kafka.h"
#include "daemon/systemd.h"

G_BEGIN_DECLS

typedef struct {
  GDBusConnection *bus;
  gboolean user_manager;            /* --user: a user manager, the session bus */
  BgAgentConfig *config;            /* replaced on Reload */
  BgdSystemd *systemd;
  BgdKafka *kafka;                  /* NULL until Kafka could be configured */
  GDBusObjectManagerServer *manager;
  char *state_directory;
  char *logs_directory;             /* unit output when no journald runs */
  gboolean have_journal;
  gint64 savepoint_timeout_usec;
  /* Called (from the main loop) after any change worth persisting or
   * showing in STATUS=; the agent coalesces them. */
  void (*changed) (gpointer agent);
  /* Writes the state file now: called before a new steering is published
   * (write-ahead). NULL in tests that have no agent. */
  void (*persist) (gpointer agent);
  gpointer agent;
  /* The control log: who is in the fleet, and how to append (the message
   * is taken). append is NULL while there is no control log. */
  BgdMembership *membership;
  void (*append) (gpointer agent, BgControlMessage *msg);
  /* The control log was read up to its end as it was at start (TRUE at
   * once when there is no control log at all: nothing to replay). */
  gboolean control_replayed;
  /* Replayed and the units adopted: only from now on may a method start,
   * stop or steer a slot (docs/protocol.md: a host replays the log before it
   * starts any slot). Until then such methods answer Busy. */
  gboolean replay_finished;
} BgdContext;

G_END_DECLS
