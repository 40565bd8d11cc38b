/* agent.h — bluegreend as a whole: the bus name, the object manager at
 * /org/bluegreen/Agent1 with the Agent1 object and every job and slot, the
 * configuration and its reloads, the state file, adoption of running slot
 * units at start, the lag poll, and the service protocol with systemd
 * (READY=1, STATUS=, WATCHDOG=1).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BGD_AGENT_BUS_NAME "org.bluegreen.Agent1"
#define BGD_AGENT_PATH "/org/bluegreen/Agent1"

typedef struct _BgdAgent BgdAgent;

typedef enum {
  BGD_AGENT_MANAGER_FROM_CONFIG, /* bluegreend.conf [Agent] Bus= */
  BGD_AGENT_MANAGER_SYSTEM,      /* --system */
  BGD_AGENT_MANAGER_USER,        /* --user */
} BgdAgentManager;

/* Loads @config_path; fails on a bad configuration (the agent must not
 * start half-configured). Bad job files are reported and skipped. */
BgdAgent *bgd_agent_new (const char *config_path, BgdAgentManager manager, GError **error);
void bgd_agent_free (BgdAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdAgent, bgd_agent_free)

/* Runs until SIGTERM/SIGINT or a fatal error (the bus name is taken or
 * lost, the bus goes away). Running slots are never stopped. */
gboolean bgd_agent_run (BgdAgent *agent, GError **error);

/* Re-reads the configuration (SIGHUP, Reload()). */
gboolean bgd_agent_reload (BgdAgent *agent, GError **error);

G_END_DECLS
