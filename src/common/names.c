/* names.c — see names.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/names.h"

#include <string.h>

static gboolean
is_lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

gboolean
bg_name_is_valid (const char *name)
{
  if (name == NULL || !is_lower_alnum (name[0]))
    return FALSE;
  size_t len = strlen (name);
  if (len > 64)
    return FALSE;
  for (size_t i = 1; i < len; i++)
    if (!is_lower_alnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

gboolean
bg_version_is_valid (const char *version)
{
  if (version == NULL || version[0] == '\0' || version[0] == '.' || version[0] == '-')
    return FALSE;
  size_t len = strlen (version);
  if (len > 64)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isalnum (version[i]) && strchr ("._+~-", version[i]) == NULL)
      return FALSE;
  return TRUE;
}

gboolean
bg_id_is_valid (const char *id)
{
  if (id == NULL || id[0] == '\0')
    return FALSE;
  size_t len = strlen (id);
  if (len > 64)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isalnum (id[i]) && strchr ("._-", id[i]) == NULL)
      return FALSE;
  return TRUE;
}

const char *
bg_color_to_string (BgColor color)
{
  return color == BG_COLOR_GREEN ? "green" : "blue";
}

gboolean
bg_color_from_string (const char *s, BgColor *out)
{
  if (g_strcmp0 (s, "blue") == 0)
    *out = BG_COLOR_BLUE;
  else if (g_strcmp0 (s, "green") == 0)
    *out = BG_COLOR_GREEN;
  else
    return FALSE;
  return TRUE;
}

BgColor
bg_color_other (BgColor color)
{
  return color == BG_COLOR_BLUE ? BG_COLOR_GREEN : BG_COLOR_BLUE;
}
