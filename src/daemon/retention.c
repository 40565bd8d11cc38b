/* retention.c — bounded savepoints and slot output files (see retention.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/retention.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (bgd-retention-error-quark, bgd_retention_error)

/* The time stamp of a savepoint directory "<version>-<µs>", -1 if @name
 * has another shape. */
static gint64
savepoint_stamp (const char *name)
{
  const char *dash = strrchr (name, '-');
  guint64 v;

  if (dash == NULL || dash == name
      || !g_ascii_string_to_unsigned (dash + 1, 10, 0, G_MAXINT64, &v, NULL))
    return -1;
  return (gint64) v;
}

typedef struct {
  char *name;
  gint64 stamp;
} Entry;

static void
entry_free (Entry *e)
{
  g_free (e->name);
  g_free (e);
}

static gint
newest_first (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(Entry *const *) a, *y = *(Entry *const *) b;

  if (x->stamp != y->stamp)
    return x->stamp > y->stamp ? -1 : 1;
  return g_strcmp0 (y->name, x->name);
}

/* Deletes @file and, for a directory, everything below it (symlinks are
 * removed, not followed). */
static gboolean
delete_tree (GFile *file, GError **error)
{
  g_autoptr(GFileEnumerator) e = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME ","
                                                            G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                                            G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);

  while (e != NULL)
    {
      GFileInfo *info = NULL;
      GFile *child = NULL;

      if (!g_file_enumerator_iterate (e, &info, &child, NULL, error))
        return FALSE;
      if (info == NULL)
        break;
      if (!delete_tree (child, error))
        return FALSE;
    }
  return g_file_delete (file, NULL, error);
}

gboolean
bgd_retention_prune_savepoints (const char *directory, guint keep, guint *n_removed, GError **error)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  g_autoptr(GError) local_error = NULL;
  const char *name;
  guint removed = 0;

  g_return_val_if_fail (keep >= 1, FALSE);
  if (n_removed != NULL)
    *n_removed = 0;
  dir = g_dir_open (directory, 0, &local_error);
  if (dir == NULL)
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error (error, BGD_RETENTION_ERROR, BGD_RETENTION_ERROR_IO, "savepoints in %s: %s", directory,
                   local_error->message);
      return FALSE;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (directory, name, NULL);
      gint64 stamp = savepoint_stamp (name);
      Entry *e;

      if (stamp < 0 || !g_file_test (path, G_FILE_TEST_IS_DIR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        continue;
      e = g_new0 (Entry, 1);
      e->name = g_strdup (name);
      e->stamp = stamp;
      g_ptr_array_add (entries, e);
    }
  g_ptr_array_sort (entries, newest_first);
  for (guint i = keep; i < entries->len; i++)
    {
      const Entry *e = entries->pdata[i];
      g_autofree char *path = g_build_filename (directory, e->name, NULL);
      g_autoptr(GFile) file = g_file_new_for_path (path);

      if (!delete_tree (file, &local_error))
        {
          g_set_error (error, BGD_RETENTION_ERROR, BGD_RETENTION_ERROR_IO, "removing savepoint %s: %s", path,
                       local_error->message);
          return FALSE;
        }
      removed++;
    }
  if (n_removed != NULL)
    *n_removed = removed;
  return TRUE;
}

gboolean
bgd_retention_rotate_log (const char *path, goffset max_bytes, gboolean *rotated, GError **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autofree char *old_path = g_strconcat (path, ".1", NULL);
  g_autoptr(GFile) old = g_file_new_for_path (old_path);
  g_autoptr(GFileInfo) info = NULL;
  g_autoptr(GError) local_error = NULL;

  if (rotated != NULL)
    *rotated = FALSE;
  info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, NULL, &local_error);
  if (info == NULL)
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return TRUE;
      g_set_error (error, BGD_RETENTION_ERROR, BGD_RETENTION_ERROR_IO, "%s: %s", path, local_error->message);
      return FALSE;
    }
  if (max_bytes <= 0 || g_file_info_get_size (info) <= max_bytes)
    return TRUE;
  if (!g_file_copy (file, old, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &local_error))
    {
      g_set_error (error, BGD_RETENTION_ERROR, BGD_RETENTION_ERROR_IO, "copying %s to %s: %s", path, old_path,
                   local_error->message);
      return FALSE;
    }
  if (truncate (path, 0) != 0)
    {
      int errsv = errno;
      g_set_error (error, BGD_RETENTION_ERROR, BGD_RETENTION_ERROR_IO, "truncating %s: %s", path,
                   g_strerror (errsv));
      return FALSE;
    }
  if (rotated != NULL)
    *rotated = TRUE;
  return TRUE;
}
