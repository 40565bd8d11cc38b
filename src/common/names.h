/* names.h — validation of the names that travel between hosts and reach
 * object paths and unit names: host ids, job names, colors, versions.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

/* Host ids and job names: [a-z0-9][a-z0-9._-]{0,63}. They appear in unit
 * names (bluegreen-<job>-<color>.service), object paths and the control
 * protocol, so the set is deliberately small. */
gboolean bg_name_is_valid (const char *name);

/* Versions: 1..64 characters of [A-Za-z0-9._+~-], not starting with '.' or
 * '-'; never a slash, so a version can be put in a path. */
gboolean bg_version_is_valid (const char *version);

/* Cutover ids: 1..64 characters of [A-Za-z0-9._-]. */
gboolean bg_id_is_valid (const char *id);

typedef enum {
  BG_COLOR_BLUE = 0,
  BG_COLOR_GREEN = 1,
} BgColor;

#define BG_N_COLORS 2

const char *bg_color_to_string (BgColor color);
/* Parses "blue" or "green"; FALSE for anything else. */
gboolean bg_color_from_string (const char *s, BgColor *out);
BgColor bg_color_other (BgColor color);
