/* retention.h — what the agent keeps on disk, bounded: savepoints (the
 * newest N per job) and slot output files (rotated by size where no
 * journald takes the units' output).
 *
 * Pure file operations, no D-Bus or Kafka: tested on their own
 * (tests/test-retention.c) and called by the job after a deploy from a
 * savepoint and by the agent's periodic tick.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BGD_RETENTION_ERROR (bgd_retention_error_quark ())
GQuark bgd_retention_error_quark (void);

typedef enum {
  BGD_RETENTION_ERROR_IO,
} BgdRetentionError;

/* Savepoints are directories "<version>-<µs since the epoch>" under
 * @directory (the job's savepoint directory). Deletes all but the @keep
 * newest (by that time stamp; @keep >= 1), whole; entries of another shape
 * are left alone. Sets *@n_removed (if not NULL). A missing @directory is
 * nothing to prune. */
gboolean bgd_retention_prune_savepoints (const char *directory, guint keep, guint *n_removed,
                                         GError **error);

/* If @path is larger than @max_bytes (> 0), its content moves to
 * "@path.1" (replacing an older one) and @path is truncated in place: the
 * unit keeps appending to the same file (systemd opened it with O_APPEND),
 * so nothing is lost but what it writes between the copy and the truncate.
 * Sets *@rotated (if not NULL). A missing @path is nothing to rotate. */
gboolean bgd_retention_rotate_log (const char *path, goffset max_bytes, gboolean *rotated, GError **error);

G_END_DECLS
