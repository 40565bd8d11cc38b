/* history.c — replay filter, ControlOffset= and write-ahead (see
 * history.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/history.h"

gboolean
bgd_history_is_past (gint64 offset, gint64 replay_from)
{
  return offset < replay_from;
}

gint64
bgd_history_control_offset (gint64 pinned, gint64 next, gint64 replay_from)
{
  if (pinned >= 0)
    return pinned;
  return MAX (next, replay_from);
}

void
bgd_history_write_ahead (void (*persist) (gpointer data), gpointer persist_data,
                         void (*publish) (gpointer data), gpointer publish_data)
{
  if (persist != NULL)
    persist (persist_data);
  publish (publish_data);
}
