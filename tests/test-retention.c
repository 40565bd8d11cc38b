/* test-retention.c — what the agent keeps on disk stays bounded
 * (src/daemon/retention.c): the newest savepoints of a job, and slot output
 * files rotated by size while the unit keeps appending to them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/retention.h"

static char *
make_dir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("bg-retention-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
make_savepoint (const char *base, const char *name)
{
  g_autofree char *dir = g_build_filename (base, name, NULL);
  g_autofree char *sub = g_build_filename (dir, "state", NULL);
  g_autofree char *file = g_build_filename (sub, "partition-0", NULL);

  g_assert_cmpint (g_mkdir_with_parents (sub, 0700), ==, 0);
  g_assert_true (g_file_set_contents (file, "state", -1, NULL));
}

static gboolean
exists (const char *base, const char *name)
{
  g_autofree char *path = g_build_filename (base, name, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static void
remove_tree (const char *path)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", path);
  g_assert_cmpint (system (cmd), ==, 0);
}

/* The newest N by time stamp stay, whatever their version; anything else
 * in the directory is not ours and stays too. */
static void
test_savepoints (void)
{
  g_autofree char *base = make_dir ();
  g_autoptr (GError) error = NULL;
  guint removed = 99;

  make_savepoint (base, "v1-1000");
  make_savepoint (base, "v2-3000");
  make_savepoint (base, "v10-2000");
  make_savepoint (base, "v3-4000");
  make_savepoint (base, "not-a-savepoint");
  {
    g_autofree char *file = g_build_filename (base, "v9-9999", NULL);
    g_assert_true (g_file_set_contents (file, "a file", -1, NULL));
  }

  g_assert_true (bgd_retention_prune_savepoints (base, 2, &removed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (removed, ==, 2);
  g_assert_true (exists (base, "v3-4000"));
  g_assert_true (exists (base, "v2-3000"));
  g_assert_false (exists (base, "v10-2000"));
  g_assert_false (exists (base, "v1-1000"));
  g_assert_true (exists (base, "not-a-savepoint"));
  g_assert_true (exists (base, "v9-9999"));

  /* Nothing more to remove; a missing directory is nothing to prune. */
  g_assert_true (bgd_retention_prune_savepoints (base, 2, &removed, &error));
  g_assert_cmpuint (removed, ==, 0);
  g_assert_true (bgd_retention_prune_savepoints ("/nonexistent/savepoints", 1, &removed, &error));
  g_assert_no_error (error);
  remove_tree (base);
}

/* Past the size the content moves to .1 and the file starts again, while
 * a writer that opened it for appending (as systemd does for a unit's
 * output) goes on writing into the same file. */
static void
test_rotate_log (void)
{
  g_autofree char *base = make_dir ();
  g_autofree char *path = g_build_filename (base, "bluegreen-x-blue.service.log", NULL);
  g_autofree char *old = g_strconcat (path, ".1", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  gboolean rotated = TRUE;
  gsize len = 0;
  int fd;

  g_assert_true (bgd_retention_rotate_log (path, 100, &rotated, &error));
  g_assert_false (rotated);
  fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  g_assert_cmpint (fd, >=, 0);
  for (int i = 0; i < 20; i++)
    g_assert_cmpint (write (fd, "0123456789", 10), ==, 10);
  g_assert_true (bgd_retention_rotate_log (path, 1000, &rotated, &error));
  g_assert_false (rotated);
  g_assert_true (bgd_retention_rotate_log (path, 100, &rotated, &error));
  g_assert_no_error (error);
  g_assert_true (rotated);
  g_assert_true (g_file_get_contents (old, &text, &len, NULL));
  g_assert_cmpuint (len, ==, 200);
  g_clear_pointer (&text, g_free);

  g_assert_cmpint (write (fd, "after\n", 6), ==, 6);
  close (fd);
  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  g_assert_cmpstr (text, ==, "after\n");
  remove_tree (base);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/retention/[retention]/savepoints", test_savepoints);
  g_test_add_func ("/retention/[retention]/slot-log", test_rotate_log);
  return g_test_run ();
}
