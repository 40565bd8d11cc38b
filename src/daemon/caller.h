/* caller.h — which systemd unit a D-Bus caller runs in.
 *
 * The job-facing Slot1 methods may only be called from inside the slot's
 * own unit: the bus daemon tells us the caller's PID and the kernel's
 * cgroup of that PID tells us the unit (sd_pid_get_unit() under the system
 * manager, sd_pid_get_user_unit() under a user manager, where the system's
 * view is just user@UID.service). Not cached: it is one round trip to the
 * bus daemon per job-facing call, and a cache keyed by unique name would
 * have to track NameOwnerChanged for no measurable gain.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

#define BGD_CALLER_ERROR (bgd_caller_error_quark ())
GQuark bgd_caller_error_quark (void);

typedef enum {
  BGD_CALLER_ERROR_NO_PID,  /* the bus daemon did not tell the caller's PID */
  BGD_CALLER_ERROR_NO_UNIT, /* the process is not in a (user) unit, or is gone */
} BgdCallerError;

/* The unit (e.g. "bluegreen-orders-green.service") that process @pid runs
 * in. @user_manager: the unit of the user manager it runs under
 * (sd_pid_get_user_unit) rather than the system unit (sd_pid_get_unit). */
char *bgd_caller_unit_for_pid (pid_t pid, gboolean user_manager, GError **error);

/* The unit of the D-Bus peer @sender (a unique name) on @conn:
 * org.freedesktop.DBus.GetConnectionUnixProcessID, then
 * bgd_caller_unit_for_pid(). Synchronous: one call to the bus daemon,
 * which answers at once. */
char *bgd_caller_get_unit (GDBusConnection *conn,
                           const char *sender,
                           gboolean user_manager,
                           GCancellable *cancellable,
                           GError **error);

/* The same without blocking the calling thread. */
void bgd_caller_get_unit_async (GDBusConnection *conn,
                                const char *sender,
                                gboolean user_manager,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
char *bgd_caller_get_unit_finish (GAsyncResult *result, GError **error);

G_END_DECLS
