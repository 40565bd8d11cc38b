/* log.c — structured log lines about jobs, and the agent's log writer
 * (see log.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

static int fields_fd = -1;
static GMutex fields_lock;

/* GLib's own mapping (gmessages.c), which g_log_structured() applies but
 * g_log_structured_array() leaves to the caller. */
static const char *
level_to_priority (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "3";
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    return "4";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "5";
  if (level & G_LOG_LEVEL_INFO)
    return "6";
  return "7";
}

static void
append_fields (const GLogField *fields, gsize n_fields)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *line = NULL;
  gsize len;

  json_builder_begin_object (b);
  for (gsize i = 0; i < n_fields; i++)
    {
      g_autofree char *value = NULL;

      if (fields[i].length < 0)
        value = g_utf8_make_valid (fields[i].value, -1);
      else
        value = g_utf8_make_valid (fields[i].value, fields[i].length);
      json_builder_set_member_name (b, fields[i].key);
      json_builder_add_string_value (b, value);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  line = json_generator_to_data (gen, &len);
  line = g_realloc (line, len + 2);
  line[len++] = '\n';
  line[len] = '\0';

  /* One write per record on an O_APPEND descriptor: lines of concurrent
   * writers (librdkafka's threads log too) never interleave. */
  g_mutex_lock (&fields_lock);
  for (gsize done = 0; done < len;)
    {
      ssize_t n = write (fields_fd, line + done, len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; /* a debugging aid: never fail the agent for it */
      done += (gsize) n;
    }
  g_mutex_unlock (&fields_lock);
}

static GLogWriterOutput
agent_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if (fields_fd >= 0)
    {
      const char *domain = NULL;

      for (gsize i = 0; i < n_fields; i++)
        if (g_str_equal (fields[i].key, "GLIB_DOMAIN") && fields[i].length < 0)
          domain = fields[i].value;
      /* Everything down to INFO; debug lines only where G_MESSAGES_DEBUG
       * asks for them, as in the journal. */
      if ((level & (G_LOG_LEVEL_DEBUG)) == 0 || !g_log_writer_default_would_drop (level, domain))
        append_fields (fields, n_fields);
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

void
bgd_log_init (void)
{
  static gsize done = 0;
  const char *path;

  if (!g_once_init_enter (&done))
    return;
  path = g_getenv (BGD_LOG_FIELDS_FILE_ENV);
  if (path != NULL && *path != '\0')
    {
      fields_fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fields_fd < 0)
        g_printerr ("bluegreend: %s=%s: %s (ignored)\n", BGD_LOG_FIELDS_FILE_ENV, path,
                    g_strerror (errno));
    }
  g_log_set_writer_func (agent_log_writer, NULL, NULL);
  g_once_init_leave (&done, 1);
}

/* Empty values are left out: journald would store an empty field. */
static void
add_field (GLogField *fields, gsize *n, const char *key, const char *value)
{
  if (value == NULL || *value == '\0')
    return;
  fields[*n] = (GLogField){ key, value, -1 };
  (*n)++;
}

void
bgd_log_job (GLogLevelFlags level, const char *message_id, const char *job, const char *color,
             const char *version, const char *cutover, const char *format, ...)
{
  g_autofree char *text = NULL;
  g_autofree char *message = NULL;
  GLogField fields[8];
  gsize n = 0;
  va_list ap;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  message = g_strdup_printf ("%s: %s", job, text);

  add_field (fields, &n, "MESSAGE", message);
  add_field (fields, &n, "PRIORITY", level_to_priority (level));
  add_field (fields, &n, "GLIB_DOMAIN", G_LOG_DOMAIN);
  add_field (fields, &n, "MESSAGE_ID", message_id);
  add_field (fields, &n, "BLUEGREEN_JOB", job);
  add_field (fields, &n, "BLUEGREEN_COLOR", color);
  add_field (fields, &n, "BLUEGREEN_VERSION", version);
  add_field (fields, &n, "BLUEGREEN_CUTOVER", cutover);
  g_log_structured_array (level, fields, n);
}
