/* bluegreen-example-job — the example stateful job (see job.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "example/job.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

static gboolean
parse_mode (const char *s, BgSinkMode *out)
{
  if (g_strcmp0 (s, "live") == 0)
    *out = BG_SINK_MODE_LIVE;
  else if (g_strcmp0 (s, "blackhole") == 0)
    *out = BG_SINK_MODE_BLACKHOLE;
  else
    return FALSE;
  return TRUE;
}

static char *
env_default (char *value, const char *env, const char *fallback)
{
  if (value != NULL)
    return value;
  const char *e = g_getenv (env);
  if (e != NULL && *e != '\0')
    return g_strdup (e);
  return g_strdup (fallback);
}

/* --kafka-properties=FILE: librdkafka properties, "key=value" per line
 * ('#' comments and blank lines ignored), e.g. sasl.username and
 * sasl.password. A FILE without '/' is a systemd credential: it is read
 * from $CREDENTIALS_DIRECTORY (LoadCredential= in the job's [Sandbox]), so
 * the secret is on neither the command line nor in the environment. */
static gboolean
read_properties_file (const char *name, GPtrArray *out, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;

  if (strchr (name, '/') == NULL)
    {
      const char *dir = g_getenv ("CREDENTIALS_DIRECTORY");
      if (dir == NULL || *dir == '\0')
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                       "--kafka-properties=%s: a credential name, but $CREDENTIALS_DIRECTORY is not set "
                       "(LoadCredential=%s:PATH in the job's [Sandbox])", name, name);
          return FALSE;
        }
      path = g_build_filename (dir, name, NULL);
    }
  else
    path = g_strdup (name);
  if (!g_file_get_contents (path, &contents, NULL, error))
    {
      g_prefix_error (error, "--kafka-properties: ");
      return FALSE;
    }
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *eq = strchr (line, '=');
      if (line[0] == '\0' || line[0] == '#')
        continue;
      if (eq == NULL || eq == line)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "%s:%zu: not a property (write key=value)", path, i + 1);
          return FALSE;
        }
      *eq = '\0';
      g_ptr_array_add (out, g_strdup_printf ("%s=%s", g_strstrip (line), g_strstrip (eq + 1)));
    }
  /* Names only: the values may be secrets. */
  g_message ("Kafka properties read from %s: %u", path, out->len);
  return TRUE;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_auto (BgJobConfig) cfg = { 0 };
  g_autofree char *mode = NULL;
  g_auto (GStrv) props = NULL;
  g_autofree char *props_file = NULL;
  cfg.status_interval = 1.0;
  cfg.commit_interval = 0.1;
  GOptionEntry entries[] = {
    { "bootstrap", 'b', 0, G_OPTION_ARG_STRING, &cfg.bootstrap, "Kafka bootstrap servers (BLUEGREEN_BOOTSTRAP)", "HOST:PORT,..." },
    { "input", 'i', 0, G_OPTION_ARG_STRING, &cfg.input, "Input topic (BLUEGREEN_INPUT_TOPICS: one topic)", "TOPIC" },
    { "output", 'o', 0, G_OPTION_ARG_STRING, &cfg.output, "Output topic", "TOPIC" },
    { "version", 0, 0, G_OPTION_ARG_STRING, &cfg.version, "Job version (BLUEGREEN_VERSION; default v1)", "VERSION" },
    { "color", 0, 0, G_OPTION_ARG_STRING, &cfg.color, "Slot color (BLUEGREEN_COLOR; default blue)", "blue|green" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &mode, "Initial sink mode when stand-alone, i.e. without BLUEGREEN_SLOT (BLUEGREEN_SINK_MODE; default live)", "live|blackhole" },
    { "group", 'g', 0, G_OPTION_ARG_STRING, &cfg.group, "Consumer group (BLUEGREEN_GROUP_ID)", "GROUP" },
    { "assign", 'a', 0, G_OPTION_ARG_STRING, &cfg.assign, "Static assignment instead of a group (default all without a group)", "all|P,P,..." },
    { "savepoint-dir", 0, 0, G_OPTION_ARG_FILENAME, &cfg.savepoint_dir, "Write savepoints here (SIGUSR1, clean stop)", "DIR" },
    { "restore", 0, 0, G_OPTION_ARG_FILENAME, &cfg.restore_dir, "Start from the savepoint in DIR (BLUEGREEN_SAVEPOINT)", "DIR" },
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &cfg.control_path, "Test/debug control FIFO (prepare/commit/abort/mode)", "FIFO" },
    { "control-ack", 0, 0, G_OPTION_ARG_FILENAME, &cfg.control_ack_path, "Append control replies to FILE", "FILE" },
    { "status-file", 0, 0, G_OPTION_ARG_FILENAME, &cfg.status_file, "Rewrite a JSON status here every status interval", "FILE" },
    { "status-interval", 0, 0, G_OPTION_ARG_DOUBLE, &cfg.status_interval, "Seconds between status reports (default 1)", "SEC" },
    { "no-gate", 0, 0, G_OPTION_ARG_NONE, &cfg.no_gate, "Bypass the gate: emit everything (benchmark baseline)", NULL },
    { "transactional", 0, 0, G_OPTION_ARG_NONE, &cfg.transactional,
      "Exactly-once: commit results and input offsets in Kafka transactions (needs a group)", NULL },
    { "transactional-id", 0, 0, G_OPTION_ARG_STRING, &cfg.transactional_id,
      "The producer's transactional.id (default GROUP-HOST, HOST from BLUEGREEN_HOST or the host name)", "ID" },
    { "commit-interval", 0, 0, G_OPTION_ARG_DOUBLE, &cfg.commit_interval,
      "With --transactional: seconds between two commits (default 0.1)", "SEC" },
    { "property", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &props, "librdkafka property for both clients, verbatim", "KEY=VALUE" },
    { "kafka-properties", 0, 0, G_OPTION_ARG_FILENAME, &props_file,
      "librdkafka properties file (key=value lines); a NAME without '/' is read from $CREDENTIALS_DIRECTORY", "FILE|NAME" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- bluegreen example stateful job");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return 2;
    }
  /* Under the agent, everything comes from the slot's environment. */
  cfg.bootstrap = env_default (cfg.bootstrap, "BLUEGREEN_BOOTSTRAP", NULL);
  cfg.input = env_default (cfg.input, "BLUEGREEN_INPUT_TOPICS", NULL);
  cfg.restore_dir = env_default (cfg.restore_dir, "BLUEGREEN_SAVEPOINT", NULL);
  cfg.version = env_default (cfg.version, "BLUEGREEN_VERSION", "v1");
  cfg.color = env_default (cfg.color, "BLUEGREEN_COLOR", "blue");
  mode = env_default (g_steal_pointer (&mode), "BLUEGREEN_SINK_MODE", "live");
  if (cfg.assign == NULL)
    cfg.group = env_default (cfg.group, "BLUEGREEN_GROUP_ID", NULL);
  if (cfg.group == NULL && cfg.assign == NULL)
    cfg.assign = g_strdup ("all");
  if (!parse_mode (mode, &cfg.mode))
    {
      g_printerr ("error: --mode must be live or blackhole, not '%s'\n", mode);
      return 2;
    }
  cfg.kafka_props = g_ptr_array_new_with_free_func (g_free);
  if (props_file != NULL && !read_properties_file (props_file, cfg.kafka_props, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return 2;
    }
  for (char **p = props; p != NULL && *p != NULL; p++)
    g_ptr_array_add (cfg.kafka_props, g_strdup (*p));
  return bg_job_run (&cfg);
}
