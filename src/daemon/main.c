/* bluegreend — the bluegreen per-host agent (see src/daemon/agent.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <locale.h>
#include <stdlib.h>

#include "common/config.h"
#include "daemon/agent.h"
#include "daemon/log.h"

int
main (int argc, char **argv)
{
  gboolean opt_system = FALSE, opt_user = FALSE, opt_version = FALSE;
  g_autofree char *opt_config = NULL;
  const GOptionEntry entries[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system, "Use the system bus and the system manager", NULL },
    { "user", 0, 0, G_OPTION_ARG_NONE, &opt_user, "Use the session bus and the user manager", NULL },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration file (default " BG_CONFIG_DEFAULT_PATH ")", "PATH" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- the bluegreen agent");
  g_autoptr(GError) error = NULL;
  g_autoptr(BgdAgent) agent = NULL;
  BgdAgentManager manager = BGD_AGENT_MANAGER_FROM_CONFIG;

  setlocale (LC_ALL, "");
  bgd_log_init ();
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return 2;
    }
  if (opt_version)
    {
      g_print ("bluegreend %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (opt_system && opt_user)
    {
      g_printerr ("error: --system and --user exclude each other\n");
      return 2;
    }
  if (opt_system)
    manager = BGD_AGENT_MANAGER_SYSTEM;
  else if (opt_user)
    manager = BGD_AGENT_MANAGER_USER;

  agent = bgd_agent_new (opt_config ? opt_config : BG_CONFIG_DEFAULT_PATH, manager, &error);
  if (agent == NULL || !bgd_agent_run (agent, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return 1;
    }
  return 0;
}
