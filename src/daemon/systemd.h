/* systemd.h — the agent's driver for the systemd manager.
 *
 * The agent runs every slot as a transient service and follows its state;
 * it does so over D-Bus (org.freedesktop.systemd1), never by spawning
 * systemctl, so that it learns the outcome of every job and every state
 * change as a signal instead of polling. The same code drives the system
 * manager (--system, on the system bus) and a user manager (--user, on that
 * user's session bus): only the connection differs.
 *
 * Usage: bgd_systemd_new(), then bgd_systemd_init_async() (Subscribe, so the
 * manager sends JobRemoved and PropertiesChanged), then any of the calls
 * below. All calls and signals run in the thread-default main context of
 * the thread that called bgd_systemd_new().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BGD_SYSTEMD_ERROR (bgd_systemd_error_quark ())
GQuark bgd_systemd_error_quark (void);

typedef enum {
  /* The start or stop job finished with a result other than "done"; the
   * message names the job result ("failed", "timeout", "canceled",
   * "dependency") and the unit's Result ("exit-code", "signal",
   * "watchdog", "timeout", "core-dump", ...). */
  BGD_SYSTEMD_ERROR_JOB_FAILED,
  /* StartTransientUnit refused: a unit of that name is loaded and not
   * failed (it is running, or still stopping). */
  BGD_SYSTEMD_ERROR_UNIT_EXISTS,
  /* The BgdUnitSpec is incomplete (no name, no argv, relative argv[0]). */
  BGD_SYSTEMD_ERROR_INVALID_SPEC,
  /* The manager went away while a job was pending. */
  BGD_SYSTEMD_ERROR_DISCONNECTED,
  /* The start job failed because the unit ran out of its start timeout
   * (TimeoutStartUSec; for Type=notify: no READY=1 in time); the unit's
   * Result is "timeout". */
  BGD_SYSTEMD_ERROR_START_TIMEOUT,
} BgdSystemdError;

/* What a transient service is started with. Every pointer is borrowed for
 * the duration of the bgd_systemd_start_transient_async() call only: the
 * D-Bus message is built before it returns. */
typedef struct {
  const char *name;               /* "bluegreen-<job>-<color>.service"; required */
  const char *description;        /* NULL: not set */
  const char *slice;              /* "bluegreen.slice"; NULL: the manager's default */
  const char *const *argv;        /* ExecStart; argv[0] absolute; required */
  const char *const *environment; /* "KEY=VALUE", NULL-terminated; NULL: none */
  const char *service_type;       /* "notify", "simple", "exec", ...; NULL: systemd's default (simple) */
  const char *notify_access;      /* "all", "main", ...; NULL: not set */
  const char *collect_mode;       /* "inactive" or "inactive-or-failed"; NULL: systemd's default
                                   * (a failed unit stays visible until it is reset) */
  guint cpu_weight;               /* 1..10000; 0: not set */
  guint64 memory_max;             /* bytes, G_MAXUINT64 = infinity; 0: not set */
  guint64 tasks_max;              /* G_MAXUINT64 = infinity; 0: not set */
  guint64 watchdog_usec;          /* WatchdogUSec; 0: no watchdog */
  guint64 timeout_start_usec;     /* TimeoutStartUSec; 0: the manager's default */
  /* Restart= ("on-failure", "no"; NULL: not set), RestartUSec, and the
   * start rate limit (StartLimitBurst within StartLimitIntervalUSec; 0:
   * the manager's default) after which a restarting unit fails with
   * Result "start-limit-hit". */
  const char *restart;
  guint64 restart_usec;
  guint start_limit_burst;
  guint64 start_limit_interval_usec;
  /* IPAddressDeny= items as in a unit file ("10.0.0.0/8", "192.0.2.1",
   * "any", "localhost", "link-local", "multicast"); NULL or empty: not set.
   * Takes effect only where systemd supports BPF firewalling. */
  const char *const *ip_address_deny;
  /* Where stdout and stderr go: NULL sends both to the journal; an absolute
   * path appends both to that file (systemd opens it, so its directory must
   * exist and be writable by the manager). Hosts without journald (the test
   * hosts) need the file. */
  const char *output_path;

  /* Sandboxing (bluegreen.job(5) [Sandbox]). */
  const char *user;               /* User=; NULL: not set */
  const char *group;              /* Group=; NULL: not set */
  gboolean dynamic_user;          /* DynamicUser=yes */
  gboolean hardening;             /* the preset, bgd_systemd_add_hardening() */
  gboolean hardening_user_manager;/* the preset without ProtectHome= and ProtectKernelTunables= */
  const char *const *read_write_paths;  /* ReadWritePaths=; '-' prefix: ignore if missing */
  const char *const *bind_paths;        /* BindPaths= (source = destination, read-write); '-' prefix as above */
  const char *const *load_credentials;  /* LoadCredential= "ID:PATH" */
  const char *const *environment_files; /* EnvironmentFile=; '-' prefix: ignore if missing */
} BgdUnitSpec;

/* Adds the hardening preset to @b (an "a(sv)" builder): the settings of a
 * slot unit with [Sandbox] Hardening=default. With @user_manager, leaves
 * out ProtectHome= and ProtectKernelTunables=, which a user manager cannot
 * set up where it runs in a private mount namespace (the test hosts: the
 * unit fails with status 226/NAMESPACE); everything else is kept. */
void bgd_systemd_add_hardening (GVariantBuilder *b, gboolean user_manager);

/* The properties of @spec written as a unit file ("[Unit]" and "[Service]"
 * sections), for `bluegreend --print-slot-unit` and for
 * `systemd-analyze security` of what a slot would be started with. Only
 * the property types bgd_systemd_build_properties() produces are known. */
char *bgd_systemd_properties_to_unit_file (GVariant *properties);

/* One unit as listed by bgd_systemd_list_units_finish(). */
typedef struct {
  char *name;
  char *active_state; /* "active", "activating", "failed", ... */
  char *sub_state;    /* "running", "start", "dead", ... */
  char *result;       /* the service's Result: "success", "exit-code", "watchdog", ... */
  guint32 main_pid;   /* 0 if none */
  /* How the last main process ended: ExecMainCode (CLD_EXITED 1,
   * CLD_KILLED 2, CLD_DUMPED 3; 0 if none ended) and ExecMainStatus (the
   * exit status, or the signal). */
  gint32 exec_main_code;
  gint32 exec_main_status;
} BgdUnitInfo;

void bgd_unit_info_free (BgdUnitInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdUnitInfo, bgd_unit_info_free)

#define BGD_TYPE_SYSTEMD (bgd_systemd_get_type ())
G_DECLARE_FINAL_TYPE (BgdSystemd, bgd_systemd, BGD, SYSTEMD, GObject)

/* @bus: the system bus (system manager) or the session bus of a user
 * manager. @user_manager only records which one it is (callers use it to
 * pick sd_pid_get_user_unit over sd_pid_get_unit). */
BgdSystemd *bgd_systemd_new (GDBusConnection *bus, gboolean user_manager);
gboolean bgd_systemd_is_user_manager (BgdSystemd *self);
GDBusConnection *bgd_systemd_get_connection (BgdSystemd *self);

/* Calls Manager.Subscribe. Subscriptions last as long as the connection;
 * if the manager restarts (its bus name gets a new owner) the driver
 * subscribes again by itself and re-reads every watched unit. */
void bgd_systemd_init_async (BgdSystemd *self,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data);
gboolean bgd_systemd_init_finish (BgdSystemd *self, GAsyncResult *result, GError **error);

/* Resets a failed unit of that name (ResetFailedUnit; a unit that does not
 * exist is fine), then StartTransientUnit in mode "fail", and completes
 * when the start job has finished: with success if its result is "done"
 * (for Type=notify that is after READY=1), else with
 * BGD_SYSTEMD_ERROR_START_TIMEOUT when the unit ran out of its start
 * timeout, or BGD_SYSTEMD_ERROR_JOB_FAILED; the message names the unit,
 * its Result and how its main process ended. @cancellable cancels the D-Bus calls; once
 * the job is queued, the wait for it is bounded by the unit's own start
 * timeout and is not cancelled. */
void bgd_systemd_start_transient_async (BgdSystemd *self,
                                        const BgdUnitSpec *spec,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
gboolean bgd_systemd_start_transient_finish (BgdSystemd *self, GAsyncResult *result, GError **error);

/* StopUnit in mode "replace"; completes when the stop job has finished.
 * A unit that is not loaded is not an error. */
void bgd_systemd_stop_unit_async (BgdSystemd *self,
                                  const char *unit,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean bgd_systemd_stop_unit_finish (BgdSystemd *self, GAsyncResult *result, GError **error);

/* SetUnitProperties(unit, runtime=TRUE, @properties): @properties is an
 * "a(sv)" GVariant (floating references are sunk), e.g. built with
 * bgd_systemd_build_properties() or by hand for CPUWeight. */
void bgd_systemd_set_unit_properties_async (BgdSystemd *self,
                                            const char *unit,
                                            GVariant *properties,
                                            GCancellable *cancellable,
                                            GAsyncReadyCallback callback,
                                            gpointer user_data);
gboolean bgd_systemd_set_unit_properties_finish (BgdSystemd *self, GAsyncResult *result, GError **error);

/* ListUnitsByPatterns([], [@pattern]) (every loaded unit whose name
 * matches the glob, in any state), plus MainPID and Result of each.
 * Returns a GPtrArray of BgdUnitInfo* (it frees them), sorted by name. */
void bgd_systemd_list_units_async (BgdSystemd *self,
                                   const char *pattern,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
GPtrArray *bgd_systemd_list_units_finish (BgdSystemd *self, GAsyncResult *result, GError **error);

/* Follows the unit @unit (it need not exist yet): the "unit-changed"
 * signal is emitted once soon after with the current values (a unit that
 * is not loaded reads as "inactive", "dead", result "", pid 0), then
 * whenever any of the four values changes. A failure shows as
 * active_state "failed" with the unit's Result ("exit-code", "signal",
 * "core-dump", "watchdog", "timeout", ...). Watching a unit twice is the
 * same as once. */
void bgd_systemd_watch_unit (BgdSystemd *self, const char *unit);
void bgd_systemd_unwatch_unit (BgdSystemd *self, const char *unit);

/* The a(sv) property list StartTransientUnit gets for @spec (exposed for
 * tests and for SetUnitProperties); NULL with BGD_SYSTEMD_ERROR_INVALID_SPEC
 * if @spec is incomplete. Floating. */
GVariant *bgd_systemd_build_properties (const BgdUnitSpec *spec, GError **error);

/* The IPAddressDeny property value (a(iayu): family, address bytes,
 * prefix length) for @items (see BgdUnitSpec); an empty array for NULL or
 * no items, which SetUnitProperties takes as "clear the list". Items that
 * do not parse are left out (the config loader refuses them). Floating. */
GVariant *bgd_systemd_ip_address_list (const char *const *items);

/* The object path systemd gives the unit @unit (it escapes the name the
 * way sd_bus_path_encode() does); newly allocated. */
char *bgd_systemd_unit_path (const char *unit);

/* Signals:
 *   "unit-changed" (BgdSystemd *self, const char *unit,
 *                   const char *active_state, const char *sub_state,
 *                   const char *result, guint main_pid)
 */

G_END_DECLS
