/* caller.c — which systemd unit a D-Bus caller runs in (see caller.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/caller.h"

#include <errno.h>
#include <string.h>
#include <systemd/sd-login.h>

G_DEFINE_QUARK (bgd-caller-error-quark, bgd_caller_error)

char *
bgd_caller_unit_for_pid (pid_t pid, gboolean user_manager, GError **error)
{
  char *unit = NULL;
  g_autofree char *copy = NULL;
  int r;

  if (pid <= 0)
    {
      g_set_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_PID, "invalid caller PID %d", (int) pid);
      return NULL;
    }
  r = user_manager ? sd_pid_get_user_unit (pid, &unit) : sd_pid_get_unit (pid, &unit);
  if (r < 0)
    {
      g_set_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_UNIT,
                   "process %d is not in a %sunit: %s", (int) pid, user_manager ? "user " : "",
                   g_strerror (-r));
      return NULL;
    }
  /* libsystemd allocates with malloc; hand out GLib memory. */
  copy = g_strdup (unit);
  free (unit);
  return g_steal_pointer (&copy);
}

static char *
unit_from_reply (GVariant *reply, gboolean user_manager, const char *sender, GError **error)
{
  guint32 pid;

  g_variant_get (reply, "(u)", &pid);
  if (pid == 0)
    {
      g_set_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_PID, "no PID known for %s", sender);
      return NULL;
    }
  return bgd_caller_unit_for_pid ((pid_t) pid, user_manager, error);
}

static GVariant *
pid_call_params (const char *sender)
{
  return g_variant_new ("(s)", sender);
}

char *
bgd_caller_get_unit (GDBusConnection *conn, const char *sender, gboolean user_manager,
                     GCancellable *cancellable, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (conn), NULL);
  g_return_val_if_fail (sender != NULL, NULL);

  reply = g_dbus_connection_call_sync (conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                       pid_call_params (sender), G_VARIANT_TYPE ("(u)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, cancellable, &local);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (local);
      g_set_error (error, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_PID,
                   "cannot get the PID of %s: %s", sender, local->message);
      return NULL;
    }
  return unit_from_reply (reply, user_manager, sender, error);
}

typedef struct {
  char *sender;
  gboolean user_manager;
} CallerData;

static void
caller_data_free (CallerData *d)
{
  g_free (d->sender);
  g_free (d);
}

static void
on_pid (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  CallerData *d = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  char *unit;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_task_return_new_error (task, BGD_CALLER_ERROR, BGD_CALLER_ERROR_NO_PID,
                               "cannot get the PID of %s: %s", d->sender, error->message);
      return;
    }
  unit = unit_from_reply (reply, d->user_manager, d->sender, &error);
  if (unit == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, unit, g_free);
}

void
bgd_caller_get_unit_async (GDBusConnection *conn, const char *sender, gboolean user_manager,
                           GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  CallerData *d;

  g_return_if_fail (G_IS_DBUS_CONNECTION (conn));
  g_return_if_fail (sender != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_caller_get_unit_async);
  d = g_new0 (CallerData, 1);
  d->sender = g_strdup (sender);
  d->user_manager = user_manager;
  g_task_set_task_data (task, d, (GDestroyNotify) caller_data_free);
  g_dbus_connection_call (conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixProcessID", pid_call_params (sender), G_VARIANT_TYPE ("(u)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, cancellable, on_pid, g_object_ref (task));
}

char *
bgd_caller_get_unit_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
