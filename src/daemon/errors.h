/* errors.h — the agent's D-Bus-facing errors.
 *
 * Every error a method of org.bluegreen.Agent1 / Job1 / Slot1 returns is a
 * BGD_ERROR code, registered with its D-Bus name (org.bluegreen.Error.*,
 * the list in data/org.bluegreen.Agent1.xml), so clients get the name, not
 * org.gtk.GDBus.UnmappedGError.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BGD_ERROR (bgd_error_quark ())
GQuark bgd_error_quark (void);

typedef enum {
  BGD_ERROR_FAILED,          /* org.bluegreen.Error.Failed */
  BGD_ERROR_INVALID_ARGS,    /* org.bluegreen.Error.InvalidArgs */
  BGD_ERROR_UNKNOWN_JOB,     /* org.bluegreen.Error.UnknownJob */
  BGD_ERROR_UNKNOWN_OPTION,  /* org.bluegreen.Error.UnknownOption */
  BGD_ERROR_WRONG_STATE,     /* org.bluegreen.Error.WrongState */
  BGD_ERROR_NOT_READY,       /* org.bluegreen.Error.NotReady */
  BGD_ERROR_BUSY,            /* org.bluegreen.Error.Busy */
  BGD_ERROR_HOST_SILENT,     /* org.bluegreen.Error.HostSilent */
  BGD_ERROR_ACCESS_DENIED,   /* org.bluegreen.Error.AccessDenied */
  BGD_ERROR_NO_RESOURCES,    /* org.bluegreen.Error.NoResources */
  BGD_ERROR_TIMEOUT,         /* org.bluegreen.Error.Timeout */
  BGD_ERROR_START_FAILED,    /* org.bluegreen.Error.StartFailed */
  BGD_ERROR_CONTRADICTS_LOG, /* org.bluegreen.Error.ContradictsLog */
} BgdError;

#define BGD_N_ERRORS (BGD_ERROR_CONTRADICTS_LOG + 1)

/* The D-Bus name of @code, e.g. "org.bluegreen.Error.WrongState". */
const char *bgd_error_to_dbus_name (BgdError code);

/* Returns @invocation's reply for @error: a BGD_ERROR keeps its registered
 * name; a BG_DBUS_ARGS_ERROR becomes InvalidArgs or UnknownOption; any
 * other domain becomes org.bluegreen.Error.Failed with the
 * message, so no unregistered error name ever reaches a client. Takes
 * ownership of @invocation like g_dbus_method_invocation_return_gerror. */
void bgd_error_return (GDBusMethodInvocation *invocation, const GError *error);

G_END_DECLS
