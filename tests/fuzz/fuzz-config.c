/* fuzz-config.c — libFuzzer target for the configuration parser
 * (src/common/config.c): the input is one file's text, read both as
 * bluegreend.conf and as a jobs.d/NAME.job.
 *
 * A config is root's, but a typo must never crash the agent on a reload,
 * and what the loader accepts must be what config.h promises, because the
 * agent builds unit names, paths and command lines from it without
 * checking again: any input either loads or fails with a BG_CONFIG_ERROR;
 * a loaded agent config has a valid host id and absolute paths; a loaded
 * job's command lines expand for every valid version and color, argument
 * for argument (a value never splits or adds an argument), and refuse an
 * invalid version.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/config.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

#define require(cond) \
  do { if (!(cond)) abort (); } while (0)

static gboolean
fails_as_config_error (GError *error)
{
  return error != NULL && error->domain == BG_CONFIG_ERROR;
}

static gboolean
is_absolute_or_null (const char *path)
{
  return path == NULL || g_path_is_absolute (path);
}

static void
check_agent (const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgAgentConfig) c = bg_agent_config_load_from_data ("/etc/bluegreen/bluegreend.conf", text, &error);

  if (c == NULL)
    {
      require (fails_as_config_error (error));
      return;
    }
  require (bg_name_is_valid (c->host_id));
  require (c->bus == G_BUS_TYPE_SYSTEM || c->bus == G_BUS_TYPE_SESSION);
  require (c->state_directory != NULL && g_path_is_absolute (c->state_directory));
  require (c->jobs_directory != NULL && g_path_is_absolute (c->jobs_directory));
  require (is_absolute_or_null (c->metrics_directory));
  require (is_absolute_or_null (c->fleet_key_file));
  require (c->heartbeat_usec > 0);
  require (c->max_jobs >= 1 && c->max_jobs <= BG_CONFIG_MAX_MAX_JOBS);
  require (c->bootstrap_servers != NULL && *c->bootstrap_servers != '\0');
  require (c->control_topic != NULL && *c->control_topic != '\0');
  require (c->kafka_properties != NULL);
  for (guint i = 0; i < c->kafka_properties->len; i++)
    {
      BgConfigProperty *p = c->kafka_properties->pdata[i];
      require (p->key != NULL && p->value != NULL);
    }
}

/* @argv expanded from @template: same number of arguments, none NULL. */
static void
check_expansion (char **argv, char **template)
{
  require (argv != NULL && template != NULL);
  require (g_strv_length (argv) == g_strv_length (template));
}

static void
check_job (const char *text)
{
  static const char *const versions[] = { "1.0", "2.3.4+build~rc-1", "A", "v_9" };
  g_autoptr (GError) error = NULL;
  g_autoptr (BgJobConfig) j = bg_job_config_load_from_data ("/etc/bluegreen/jobs.d/fuzz.job", text, &error);

  if (j == NULL)
    {
      require (fails_as_config_error (error));
      return;
    }
  require (g_strcmp0 (j->name, "fuzz") == 0);
  require (j->exec_start_argv != NULL && j->exec_start_argv[0] != NULL);
  require (g_path_is_absolute (j->exec_start_argv[0]));
  require (j->input_topics != NULL && j->input_topics[0] != NULL);
  for (guint i = 0; j->input_topics[i] != NULL; i++)
    require (*j->input_topics[i] != '\0' && j->input_partitions[i] >= 0);
  require (j->max_lag >= 0 && j->stable_usec >= 0);
  require (j->cpu_weight <= 10000 && j->catch_up_cpu_weight <= 10000);
  require (j->observation_usec >= 0 && j->deadline_usec > 0 && j->lead_usec >= 0);
  require ((j->exec_savepoint == NULL) == (j->exec_savepoint_argv == NULL));
  require ((j->health_command == NULL) == (j->health_argv == NULL));

  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    {
      g_auto (GStrv) exec = bg_job_config_expand_exec (j, versions[v], NULL);
      check_expansion (exec, j->exec_start_argv);
      if (j->exec_savepoint_argv != NULL)
        {
          g_auto (GStrv) sp = bg_job_config_expand_savepoint (j, versions[v], "/var/lib/bluegreen/sp dir;1", NULL);
          check_expansion (sp, j->exec_savepoint_argv);
        }
      for (int c = BG_COLOR_BLUE; c <= BG_COLOR_GREEN; c++)
        {
          if (j->health_argv != NULL)
            {
              g_auto (GStrv) h = bg_job_config_expand_health (j, (BgColor) c, versions[v], NULL);
              check_expansion (h, j->health_argv);
            }
          g_autofree char *group = bg_job_config_expand_consumer_group (j, (BgColor) c, versions[v], NULL);
          require (group != NULL);
        }
    }

  /* A version that could climb out of a path must be refused, not expanded. */
  g_autoptr (GError) bad = NULL;
  g_auto (GStrv) refused = bg_job_config_expand_exec (j, "../evil", &bad);
  require (refused == NULL && g_error_matches (bad, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VERSION));
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* The loaders take C strings (files are read whole and NUL-terminated);
   * an embedded NUL ends the text as it would for a file read that way. */
  g_autofree char *text = g_strndup ((const char *) data, size);

  check_agent (text);
  check_job (text);
  return 0;
}
