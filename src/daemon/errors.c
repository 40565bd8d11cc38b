/* errors.c — registration of the agent's errors as org.bluegreen.Error.*.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/errors.h"

#include "common/dbus-args.h"

static const GDBusErrorEntry bgd_error_entries[] = {
  { BGD_ERROR_FAILED, "org.bluegreen.Error.Failed" },
  { BGD_ERROR_INVALID_ARGS, "org.bluegreen.Error.InvalidArgs" },
  { BGD_ERROR_UNKNOWN_JOB, "org.bluegreen.Error.UnknownJob" },
  { BGD_ERROR_UNKNOWN_OPTION, "org.bluegreen.Error.UnknownOption" },
  { BGD_ERROR_WRONG_STATE, "org.bluegreen.Error.WrongState" },
  { BGD_ERROR_NOT_READY, "org.bluegreen.Error.NotReady" },
  { BGD_ERROR_BUSY, "org.bluegreen.Error.Busy" },
  { BGD_ERROR_HOST_SILENT, "org.bluegreen.Error.HostSilent" },
  { BGD_ERROR_ACCESS_DENIED, "org.bluegreen.Error.AccessDenied" },
  { BGD_ERROR_NO_RESOURCES, "org.bluegreen.Error.NoResources" },
  { BGD_ERROR_TIMEOUT, "org.bluegreen.Error.Timeout" },
  { BGD_ERROR_START_FAILED, "org.bluegreen.Error.StartFailed" },
  { BGD_ERROR_CONTRADICTS_LOG, "org.bluegreen.Error.ContradictsLog" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (bgd_error_entries) == BGD_N_ERRORS);

GQuark
bgd_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("bgd-error-quark", &quark,
                                      bgd_error_entries,
                                      G_N_ELEMENTS (bgd_error_entries));
  return (GQuark) quark;
}

const char *
bgd_error_to_dbus_name (BgdError code)
{
  for (gsize i = 0; i < G_N_ELEMENTS (bgd_error_entries); i++)
    if (bgd_error_entries[i].error_code == (gint) code)
      return bgd_error_entries[i].dbus_error_name;
  return "org.bluegreen.Error.Failed";
}

void
bgd_error_return (GDBusMethodInvocation *invocation, const GError *error)
{
  if (error->domain == BGD_ERROR)
    g_dbus_method_invocation_return_gerror (invocation, error);
  else if (error->domain == BG_DBUS_ARGS_ERROR)
    /* The argument checks of src/common/dbus-args.c: their codes are
     * registered errors' meanings. */
    g_dbus_method_invocation_return_error_literal (invocation, BGD_ERROR,
                                                   error->code == BG_DBUS_ARGS_ERROR_UNKNOWN_OPTION
                                                   ? BGD_ERROR_UNKNOWN_OPTION : BGD_ERROR_INVALID_ARGS,
                                                   error->message);
  else
    g_dbus_method_invocation_return_error_literal (invocation, BGD_ERROR,
                                                   BGD_ERROR_FAILED,
                                                   error->message);
}
