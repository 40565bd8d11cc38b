/* bluegreend — the bluegreen per-host agent (see src/daemon/agent.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <locale.h>
#include <stdlib.h>

#include "common/config.h"
#include "daemon/agent.h"
#include "daemon/log.h"
#include "daemon/slot.h"
#include "daemon/systemd.h"

/* --print-slot-unit=JOB: the properties a slot of that job is started
 * with (version "0", color blue, no agent-set environment), as a unit
 * file, e.g. for `systemd-analyze security --offline=yes`. */
static int
print_slot_unit (const char *path, gboolean user_manager)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgJobConfig) job = bg_job_config_load (path, &error);
  g_auto(GStrv) argv = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autofree char *unit = NULL;
  g_autofree char *name = NULL;
  BgdUnitSpec spec = { 0 };

  if (job != NULL)
    argv = bg_job_config_expand_exec (job, "0", &error);
  if (argv == NULL)
    {
      g_printerr ("error: %s\n", error->message);
      return 1;
    }
  name = g_strdup_printf ("bluegreen-%s-blue.service", job->name);
  spec.name = name;
  spec.description = job->description[0] != '\0' ? job->description : NULL;
  spec.slice = "bluegreen.slice";
  spec.argv = (const char *const *) argv;
  spec.environment = (const char *const *) job->environment;
  spec.service_type = "notify";
  spec.notify_access = "all";
  bgd_slot_apply_sandbox (&spec, job, user_manager);
  props = bgd_systemd_build_properties (&spec, &error);
  if (props == NULL)
    {
      g_printerr ("error: %s\n", error->message);
      return 1;
    }
  g_variant_ref_sink (props);
  unit = bgd_systemd_properties_to_unit_file (props);
  g_print ("%s", unit);
  return 0;
}

int
main (int argc, char **argv)
{
  gboolean opt_system = FALSE, opt_user = FALSE, opt_version = FALSE;
  g_autofree char *opt_config = NULL;
  g_autofree char *opt_print_slot_unit = NULL;
  const GOptionEntry entries[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system, "Use the system bus and the system manager", NULL },
    { "user", 0, 0, G_OPTION_ARG_NONE, &opt_user, "Use the session bus and the user manager", NULL },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration file (default " BG_CONFIG_DEFAULT_PATH ")", "PATH" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
    { "print-slot-unit", 0, 0, G_OPTION_ARG_FILENAME, &opt_print_slot_unit,
      "Print the unit a slot of the job in FILE would run as (with --user: under a user manager) and exit", "FILE" },
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
  if (opt_print_slot_unit != NULL)
    return print_slot_unit (opt_print_slot_unit, opt_user);
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
