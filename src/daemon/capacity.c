/* capacity.c — MemAvailable against a slot's MemoryMax= (see capacity.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/capacity.h"

#include <string.h>

#include "common/config.h"
#include "daemon/errors.h"

gboolean
bgd_capacity_parse_mem_available (const char *text, guint64 *bytes)
{
  const char *line = text;

  while (line != NULL && *line != '\0')
    {
      if (g_str_has_prefix (line, "MemAvailable:"))
        {
          char *end = NULL;
          guint64 kib = g_ascii_strtoull (line + strlen ("MemAvailable:"), &end, 10);

          if (end == line + strlen ("MemAvailable:") || kib > G_MAXUINT64 / 1024)
            return FALSE;
          while (*end == ' ' || *end == '\t')
            end++;
          /* The kernel always says kB (meaning KiB). */
          if (!g_str_has_prefix (end, "kB"))
            return FALSE;
          *bytes = kib * 1024;
          return TRUE;
        }
      line = strchr (line, '\n');
      if (line != NULL)
        line++;
    }
  return FALSE;
}

gboolean
bgd_capacity_mem_available (guint64 *bytes, GError **error)
{
  const char *path = g_getenv (BGD_CAPACITY_MEMINFO_ENV);
  g_autofree char *text = NULL;

  if (path == NULL || *path == '\0')
    path = "/proc/meminfo";
  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  if (!bgd_capacity_parse_mem_available (text, bytes))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: no MemAvailable line", path);
      return FALSE;
    }
  return TRUE;
}

gboolean
bgd_capacity_check_memory (const char *job, guint64 memory_max, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  guint64 available = 0;

  if (memory_max == 0 || memory_max == BG_CONFIG_INFINITY)
    return TRUE;
  if (!bgd_capacity_mem_available (&available, &local_error))
    {
      g_message ("%s: memory check skipped: %s", job, local_error->message);
      return TRUE;
    }
  if (available >= memory_max)
    return TRUE;
  g_set_error (error, BGD_ERROR, BGD_ERROR_NO_RESOURCES,
               "host has %" G_GUINT64_FORMAT " MiB available, the slot reserves %" G_GUINT64_FORMAT
               " MiB (MemoryMax=); Deploy with force=true to start it anyway",
               available / (1024 * 1024), (memory_max + 1024 * 1024 - 1) / (1024 * 1024));
  return FALSE;
}
