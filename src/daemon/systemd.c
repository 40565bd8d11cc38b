/* systemd.c — the agent's driver for the systemd manager (see systemd.h).
 *
 * Jobs: StartTransientUnit and StopUnit return a job object path at once;
 * the outcome comes later as Manager.JobRemoved. Every JobRemoved is
 * matched against the pending tasks by job path. GDBus delivers a method
 * reply and the signals of one connection in bus order and systemd answers
 * before it runs the job, so the reply normally comes first; a few recent
 * unmatched removals are kept anyway so that a job that finishes "before"
 * its reply is processed is never waited for forever.
 *
 * Watches: a unit's object path is a pure function of its name, so a watch
 * subscribes to PropertiesChanged on that path before the unit exists and
 * sees it appear (activating, active, ...) without UnitNew. Reads go
 * through GetUnit, never straight to the path: Properties.Get on the path
 * of a unit that is not loaded makes systemd load a stub, announce it with
 * UnitNew and collect it again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/systemd.h"

#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#define SD_NAME "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"
#define SD_UNIT_PREFIX "/org/freedesktop/systemd1/unit/"
#define DBUS_PROPERTIES "org.freedesktop.DBus.Properties"

/* Unmatched JobRemoved signals remembered (see the header comment). */
#define RECENT_REMOVED_MAX 64

G_DEFINE_QUARK (bgd-systemd-error-quark, bgd_systemd_error)

typedef struct {
  char *name;
  char *path;
  guint props_sub;
  /* Last values seen; emitted when one of them changes. */
  char *active_state;
  char *sub_state;
  char *result;
  guint32 main_pid;
  gboolean emitted_once;
  guint fetch_serial; /* bumps per fetch, so a stale fetch does not emit */
} Watch;

struct _BgdSystemd {
  GObject parent_instance;
  GDBusConnection *bus;
  gboolean user_manager;
  guint job_removed_sub;
  guint name_watch;
  gboolean subscribed;
  gboolean manager_seen;
  /* job path -> GTask waiting for its JobRemoved */
  GHashTable *pending_jobs;
  /* job path -> result, for JobRemoved nobody waited for (yet) */
  GHashTable *recent_removed;
  GQueue recent_order;
  /* unit name -> Watch */
  GHashTable *watches;
};

G_DEFINE_TYPE (BgdSystemd, bgd_systemd, G_TYPE_OBJECT)

enum { SIGNAL_UNIT_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

void
bgd_unit_info_free (BgdUnitInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  g_free (info->active_state);
  g_free (info->sub_state);
  g_free (info->result);
  g_free (info);
}

char *
bgd_systemd_unit_path (const char *unit)
{
  GString *s = g_string_new (SD_UNIT_PREFIX);
  static const char hex[] = "0123456789abcdef";

  if (*unit == '\0')
    g_string_append_c (s, '_');
  for (const char *p = unit; *p; p++)
    {
      /* Same rule as systemd's bus_label_escape(): letters stay, digits
       * stay unless first, everything else becomes _XX. */
      if (g_ascii_isalpha (*p) || (p > unit && g_ascii_isdigit (*p)))
        g_string_append_c (s, *p);
      else
        {
          g_string_append_c (s, '_');
          g_string_append_c (s, hex[((guchar) *p) >> 4]);
          g_string_append_c (s, hex[((guchar) *p) & 0xf]);
        }
    }
  return g_string_free (s, FALSE);
}

/* ---- properties ---------------------------------------------------------- */

static void
add_prop (GVariantBuilder *b, const char *name, GVariant *value)
{
  g_variant_builder_add (b, "(sv)", name, value);
}

static void
add_ip_prefix (GVariantBuilder *b, const char *address, guint prefix)
{
  g_autoptr(GInetAddress) a = g_inet_address_new_from_string (address);
  int family;

  if (a == NULL)
    return;
  family = g_inet_address_get_family (a) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
  g_variant_builder_add (b, "(i@ayu)", family,
                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, g_inet_address_to_bytes (a),
                                                    g_inet_address_get_native_size (a), 1),
                         prefix);
}

GVariant *
bgd_systemd_ip_address_list (const char *const *items)
{
  /* systemd's symbolic names, as systemd.resource-control(5) defines them. */
  static const struct {
    const char *word;
    const char *v4;
    guint v4_prefix;
    const char *v6;
    guint v6_prefix;
  } words[] = {
    { "any", "0.0.0.0", 0, "::", 0 },
    { "localhost", "127.0.0.0", 8, "::1", 128 },
    { "link-local", "169.254.0.0", 16, "fe80::", 64 },
    { "multicast", "224.0.0.0", 4, "ff00::", 8 },
  };
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(iayu)"));
  for (gsize i = 0; items != NULL && items[i] != NULL; i++)
    {
      g_autoptr(GInetAddressMask) mask = NULL;
      gboolean found = FALSE;

      for (gsize w = 0; w < G_N_ELEMENTS (words) && !found; w++)
        if (g_str_equal (items[i], words[w].word))
          {
            add_ip_prefix (&b, words[w].v4, words[w].v4_prefix);
            add_ip_prefix (&b, words[w].v6, words[w].v6_prefix);
            found = TRUE;
          }
      if (found)
        continue;
      mask = g_inet_address_mask_new_from_string (items[i], NULL);
      if (mask != NULL)
        {
          g_autofree char *address = g_inet_address_to_string (g_inet_address_mask_get_address (mask));
          add_ip_prefix (&b, address, g_inet_address_mask_get_length (mask));
        }
    }
  return g_variant_builder_end (&b);
}

void
bgd_systemd_add_hardening (GVariantBuilder *b, gboolean user_manager)
{
  static const char *const booleans[] = {
    "NoNewPrivileges", "PrivateTmp", "PrivateDevices", "PrivateMounts",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
    "ProtectClock", "ProtectHostname", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "MemoryDenyWriteExecute",
  };
  const char *families[] = { "AF_INET", "AF_INET6", "AF_UNIX", NULL };
  const char *syscalls[] = { "@system-service", NULL };
  const char *archs[] = { "native", NULL };

  for (gsize i = 0; i < G_N_ELEMENTS (booleans); i++)
    add_prop (b, booleans[i], g_variant_new_boolean (TRUE));
  add_prop (b, "ProtectSystem", g_variant_new_string ("strict"));
  /* A user manager in a private mount namespace (the test hosts) fails a
   * unit with either of these two at namespace setup (status 226); they
   * are the only difference between the two presets. */
  if (!user_manager)
    {
      add_prop (b, "ProtectHome", g_variant_new_string ("yes"));
      add_prop (b, "ProtectKernelTunables", g_variant_new_boolean (TRUE));
    }
  add_prop (b, "ProtectProc", g_variant_new_string ("invisible"));
  add_prop (b, "ProcSubset", g_variant_new_string ("pid"));
  add_prop (b, "KeyringMode", g_variant_new_string ("private"));
  add_prop (b, "UMask", g_variant_new_uint32 (0077));
  /* The namespaces a unit may create: none. */
  add_prop (b, "RestrictNamespaces", g_variant_new_uint64 (0));
  add_prop (b, "CapabilityBoundingSet", g_variant_new_uint64 (0));
  add_prop (b, "AmbientCapabilities", g_variant_new_uint64 (0));
  /* (allow-list, items) */
  add_prop (b, "RestrictAddressFamilies", g_variant_new ("(b^as)", TRUE, families));
  add_prop (b, "SystemCallFilter", g_variant_new ("(b^as)", TRUE, syscalls));
  add_prop (b, "SystemCallArchitectures", g_variant_new_strv (archs, -1));
}

/* "-/path" → ("/path", TRUE) */
static const char *
strip_dash (const char *item, gboolean *ignore_missing)
{
  *ignore_missing = item[0] == '-';
  return *ignore_missing ? item + 1 : item;
}

static void
add_sandbox (GVariantBuilder *b, const BgdUnitSpec *spec)
{
  if (spec->user != NULL)
    add_prop (b, "User", g_variant_new_string (spec->user));
  if (spec->group != NULL)
    add_prop (b, "Group", g_variant_new_string (spec->group));
  if (spec->dynamic_user)
    add_prop (b, "DynamicUser", g_variant_new_boolean (TRUE));
  if (spec->hardening)
    bgd_systemd_add_hardening (b, spec->hardening_user_manager);
  if (spec->read_write_paths != NULL && spec->read_write_paths[0] != NULL)
    add_prop (b, "ReadWritePaths", g_variant_new_strv (spec->read_write_paths, -1));
  if (spec->bind_paths != NULL && spec->bind_paths[0] != NULL)
    {
      GVariantBuilder binds;
      g_variant_builder_init (&binds, G_VARIANT_TYPE ("a(ssbt)"));
      for (gsize i = 0; spec->bind_paths[i] != NULL; i++)
        {
          gboolean ignore;
          const char *path = strip_dash (spec->bind_paths[i], &ignore);
          /* 0x4000: MS_REC, what BindPaths= in a unit file does. */
          g_variant_builder_add (&binds, "(ssbt)", path, path, ignore, (guint64) 0x4000);
        }
      add_prop (b, "BindPaths", g_variant_builder_end (&binds));
    }
  if (spec->load_credentials != NULL && spec->load_credentials[0] != NULL)
    {
      GVariantBuilder creds;
      g_variant_builder_init (&creds, G_VARIANT_TYPE ("a(ss)"));
      for (gsize i = 0; spec->load_credentials[i] != NULL; i++)
        {
          const char *colon = strchr (spec->load_credentials[i], ':');
          if (colon == NULL)
            continue; /* checked when the job file was loaded */
          g_autofree char *id = g_strndup (spec->load_credentials[i], (gsize) (colon - spec->load_credentials[i]));
          g_variant_builder_add (&creds, "(ss)", id, colon + 1);
        }
      add_prop (b, "LoadCredential", g_variant_builder_end (&creds));
    }
  if (spec->environment_files != NULL && spec->environment_files[0] != NULL)
    {
      GVariantBuilder files;
      g_variant_builder_init (&files, G_VARIANT_TYPE ("a(sb)"));
      for (gsize i = 0; spec->environment_files[i] != NULL; i++)
        {
          gboolean ignore;
          const char *path = strip_dash (spec->environment_files[i], &ignore);
          g_variant_builder_add (&files, "(sb)", path, ignore);
        }
      add_prop (b, "EnvironmentFiles", g_variant_builder_end (&files));
    }
}

/* ---- unit files ---------------------------------------------------------- */

static void
append_word (GString *s, const char *word)
{
  if (s->len > 0 && s->str[s->len - 1] != '=')
    g_string_append_c (s, ' ');
  g_autofree char *quoted = strpbrk (word, " \t\"'\\") != NULL ? g_shell_quote (word) : NULL;
  g_string_append (s, quoted != NULL ? quoted : word);
}

char *
bgd_systemd_properties_to_unit_file (GVariant *properties)
{
  g_autoptr (GString) unit = g_string_new ("[Unit]\n");
  g_autoptr (GString) service = g_string_new ("[Service]\n");
  GVariantIter iter;
  const char *name;
  GVariant *value;

  g_variant_iter_init (&iter, properties);
  while (g_variant_iter_next (&iter, "(&sv)", &name, &value))
    {
      g_autoptr (GVariant) v = value;
      g_autoptr (GString) line = g_string_new (NULL);
      GString *section = service;

      if (g_str_has_prefix (name, "Standard") && g_str_has_suffix (name, "FileToAppend"))
        {
          g_string_append_printf (section, "%.*s=append:%s\n", (int) (strlen (name) - strlen ("FileToAppend")),
                                  name, g_variant_get_string (v, NULL));
          continue;
        }
      if (g_str_has_suffix (name, "USec"))
        g_string_append_printf (line, "%.*sSec=", (int) (strlen (name) - strlen ("USec")), name);
      else
        g_string_append_printf (line, "%s=", name);
      if (g_str_equal (name, "Description"))
        section = unit;
      if (g_variant_is_of_type (v, G_VARIANT_TYPE_STRING))
        g_string_append (line, g_variant_get_string (v, NULL));
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
        g_string_append (line, g_variant_get_boolean (v) ? "yes" : "no");
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) && g_str_equal (name, "UMask"))
        g_string_append_printf (line, "%04o", g_variant_get_uint32 (v));
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64)
               && (g_str_equal (name, "CapabilityBoundingSet") || g_str_equal (name, "AmbientCapabilities")))
        {
          if (g_variant_get_uint64 (v) != 0)
            continue; /* only the empty set is ever built */
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64) && g_str_equal (name, "RestrictNamespaces"))
        g_string_append (line, g_variant_get_uint64 (v) == 0 ? "yes" : "no");
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64) && g_str_has_suffix (name, "USec"))
        g_string_append_printf (line, "%" G_GUINT64_FORMAT "us", g_variant_get_uint64 (v));
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
        g_string_append_printf (line, "%" G_GUINT64_FORMAT, g_variant_get_uint64 (v));
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_STRING_ARRAY))
        {
          g_autofree const char **items = g_variant_get_strv (v, NULL);
          for (gsize i = 0; items[i] != NULL; i++)
            append_word (line, items[i]);
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE ("(bas)")))
        {
          gboolean allow;
          g_autoptr (GVariantIter) items = NULL;
          const char *item;
          g_variant_get (v, "(bas)", &allow, &items);
          if (!allow)
            g_string_append_c (line, '~');
          while (g_variant_iter_next (items, "&s", &item))
            append_word (line, item);
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(sasb)")))
        {
          g_autoptr (GVariantIter) execs = NULL;
          g_autoptr (GVariantIter) argv = NULL;
          const char *path, *arg;
          gboolean ignore;
          g_variant_get (v, "a(sasb)", &execs);
          while (g_variant_iter_next (execs, "(&sasb)", &path, &argv, &ignore))
            {
              gboolean first = TRUE;
              while (g_variant_iter_next (argv, "&s", &arg))
                {
                  append_word (line, first ? path : arg);
                  first = FALSE;
                }
              g_clear_pointer (&argv, g_variant_iter_free);
            }
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(ss)")))
        {
          GVariantIter items;
          const char *a, *b;
          g_string_truncate (line, 0);
          g_variant_iter_init (&items, v);
          while (g_variant_iter_next (&items, "(&s&s)", &a, &b))
            g_string_append_printf (line, "%s=%s:%s\n", name, a, b);
          g_string_append (section, line->str);
          continue;
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(ssbt)")))
        {
          GVariantIter items;
          const char *a, *b;
          gboolean ignore;
          guint64 flags;
          g_variant_iter_init (&items, v);
          while (g_variant_iter_next (&items, "(&s&sbt)", &a, &b, &ignore, &flags))
            {
              g_autofree char *item = g_strdup_printf ("%s%s:%s", ignore ? "-" : "", a, b);
              append_word (line, item);
            }
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(sb)")))
        {
          GVariantIter items;
          const char *a;
          gboolean ignore;
          g_string_truncate (line, 0);
          g_variant_iter_init (&items, v);
          while (g_variant_iter_next (&items, "(&sb)", &a, &ignore))
            g_string_append_printf (line, "EnvironmentFile=%s%s\n", ignore ? "-" : "", a);
          g_string_append (section, line->str);
          continue;
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE ("a(iayu)")))
        {
          GVariantIter items;
          int family;
          g_autoptr (GVariant) bytes = NULL;
          guint prefix;
          g_variant_iter_init (&items, v);
          while (g_variant_iter_next (&items, "(i@ayu)", &family, &bytes, &prefix))
            {
              gsize n;
              const guint8 *raw = g_variant_get_fixed_array (bytes, &n, 1);
              g_autoptr (GInetAddress) a = g_inet_address_new_from_bytes (raw, family == AF_INET6
                                                                            ? G_SOCKET_FAMILY_IPV6
                                                                            : G_SOCKET_FAMILY_IPV4);
              g_autofree char *text = g_inet_address_to_string (a);
              g_autofree char *item = g_strdup_printf ("%s/%u", text, prefix);
              append_word (line, item);
              g_clear_pointer (&bytes, g_variant_unref);
            }
        }
      else
        {
          g_autofree char *printed = g_variant_print (v, FALSE);
          g_string_printf (line, "# %s=%s (not representable)", name, printed);
        }
      g_string_append_printf (section, "%s\n", line->str);
    }
  g_string_append_c (unit, '\n');
  g_string_append (unit, service->str);
  return g_string_free (g_steal_pointer (&unit), FALSE);
}

GVariant *
bgd_systemd_build_properties (const BgdUnitSpec *spec, GError **error)
{
  GVariantBuilder b, exec, argv;

  if (spec->name == NULL || *spec->name == '\0')
    {
      g_set_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_INVALID_SPEC, "unit spec without a name");
      return NULL;
    }
  if (spec->argv == NULL || spec->argv[0] == NULL || !g_path_is_absolute (spec->argv[0]))
    {
      g_set_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_INVALID_SPEC,
                   "%s: ExecStart needs an absolute program path", spec->name);
      return NULL;
    }
  if (spec->output_path != NULL && !g_path_is_absolute (spec->output_path))
    {
      g_set_error (error, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_INVALID_SPEC,
                   "%s: output path '%s' is not absolute", spec->name, spec->output_path);
      return NULL;
    }

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sv)"));
  if (spec->description != NULL)
    add_prop (&b, "Description", g_variant_new_string (spec->description));
  if (spec->slice != NULL)
    add_prop (&b, "Slice", g_variant_new_string (spec->slice));
  if (spec->service_type != NULL)
    add_prop (&b, "Type", g_variant_new_string (spec->service_type));
  if (spec->notify_access != NULL)
    add_prop (&b, "NotifyAccess", g_variant_new_string (spec->notify_access));
  if (spec->collect_mode != NULL)
    add_prop (&b, "CollectMode", g_variant_new_string (spec->collect_mode));

  /* ExecStart is a(sasb): program, argv (with argv[0]), ignore-failure. */
  g_variant_builder_init (&argv, G_VARIANT_TYPE_STRING_ARRAY);
  for (const char *const *a = spec->argv; *a; a++)
    g_variant_builder_add (&argv, "s", *a);
  g_variant_builder_init (&exec, G_VARIANT_TYPE ("a(sasb)"));
  g_variant_builder_add (&exec, "(sasb)", spec->argv[0], &argv, FALSE);
  add_prop (&b, "ExecStart", g_variant_builder_end (&exec));

  if (spec->environment != NULL && spec->environment[0] != NULL)
    add_prop (&b, "Environment", g_variant_new_strv (spec->environment, -1));

  if (spec->cpu_weight != 0)
    add_prop (&b, "CPUWeight", g_variant_new_uint64 (spec->cpu_weight));
  if (spec->memory_max != 0)
    add_prop (&b, "MemoryMax", g_variant_new_uint64 (spec->memory_max));
  if (spec->tasks_max != 0)
    add_prop (&b, "TasksMax", g_variant_new_uint64 (spec->tasks_max));
  if (spec->ip_address_deny != NULL && spec->ip_address_deny[0] != NULL)
    add_prop (&b, "IPAddressDeny", bgd_systemd_ip_address_list (spec->ip_address_deny));
  if (spec->watchdog_usec != 0)
    add_prop (&b, "WatchdogUSec", g_variant_new_uint64 (spec->watchdog_usec));
  if (spec->timeout_start_usec != 0)
    add_prop (&b, "TimeoutStartUSec", g_variant_new_uint64 (spec->timeout_start_usec));
  if (spec->restart != NULL)
    {
      add_prop (&b, "Restart", g_variant_new_string (spec->restart));
      add_prop (&b, "RestartUSec", g_variant_new_uint64 (spec->restart_usec));
    }
  if (spec->start_limit_burst != 0)
    add_prop (&b, "StartLimitBurst", g_variant_new_uint32 (spec->start_limit_burst));
  if (spec->start_limit_interval_usec != 0)
    add_prop (&b, "StartLimitIntervalUSec", g_variant_new_uint64 (spec->start_limit_interval_usec));

  add_sandbox (&b, spec);

  if (spec->output_path != NULL)
    {
      add_prop (&b, "StandardOutputFileToAppend", g_variant_new_string (spec->output_path));
      add_prop (&b, "StandardErrorFileToAppend", g_variant_new_string (spec->output_path));
    }
  else
    {
      add_prop (&b, "StandardOutput", g_variant_new_string ("journal"));
      add_prop (&b, "StandardError", g_variant_new_string ("journal"));
    }
  return g_variant_builder_end (&b);
}

/* ---- jobs ------------------------------------------------------------------ */

typedef enum { JOB_START, JOB_STOP } JobKind;

typedef struct {
  JobKind kind;
  char *unit;
  char *job_path;
  GVariant *properties; /* start only; owned until the call is made */
  guint64 timeout_start_usec; /* start only; 0: the manager's default */
} JobData;

static void
job_data_free (JobData *d)
{
  g_free (d->unit);
  g_free (d->job_path);
  g_clear_pointer (&d->properties, g_variant_unref);
  g_free (d);
}

static void
remember_removed (BgdSystemd *self, const char *job_path, const char *result)
{
  char *key;

  /* Job paths carry an increasing id, so a repeat is not expected; the
   * check keeps the queue's borrowed keys valid anyway. */
  if (g_hash_table_contains (self->recent_removed, job_path))
    return;
  key = g_strdup (job_path);
  g_hash_table_insert (self->recent_removed, key, g_strdup (result));
  g_queue_push_tail (&self->recent_order, key);
  while (g_queue_get_length (&self->recent_order) > RECENT_REMOVED_MAX)
    {
      char *old = g_queue_pop_head (&self->recent_order);
      g_hash_table_remove (self->recent_removed, old);
    }
}

static void job_finished (BgdSystemd *self, GTask *task, const char *result);

/* Called once the start/stop job has its path. */
static void
job_wait (BgdSystemd *self, GTask *task, const char *job_path)
{
  JobData *d = g_task_get_task_data (task);
  const char *early;

  d->job_path = g_strdup (job_path);
  early = g_hash_table_lookup (self->recent_removed, job_path);
  if (early != NULL)
    {
      g_autofree char *result = g_strdup (early);
      job_finished (self, task, result);
      return;
    }
  g_hash_table_insert (self->pending_jobs, g_strdup (job_path), g_object_ref (task));
  g_debug ("%s: waiting for job %s", d->unit, job_path);
}

static void fetch_state_async (BgdSystemd *self, const char *unit, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
static BgdUnitInfo *fetch_state_finish (BgdSystemd *self, GAsyncResult *result, GError **error);

/* systemd's own exit statuses (systemd.exec(5), "Process exit codes"):
 * the ones a misconfigured job meets, so the reason reads "203/EXEC". */
static const char *
exec_status_name (int status)
{
  switch (status)
    {
    case 200: return "CHDIR";
    case 203: return "EXEC";
    case 209: return "STDOUT";
    case 216: return "GROUP";
    case 217: return "USER";
    case 226: return "NAMESPACE";
    case 243: return "CREDENTIALS";
    default: return NULL;
    }
}

/* How the main process ended, e.g. "main process exited with status
 * 203/EXEC", "main process killed by signal 9 (Killed)"; NULL if none ended. */
static char *
describe_main_exit (const BgdUnitInfo *info)
{
  const char *name;

  switch (info->exec_main_code)
    {
    case CLD_EXITED:
      name = exec_status_name (info->exec_main_status);
      return g_strdup_printf ("main process exited with status %d%s%s", info->exec_main_status,
                              name ? "/" : "", name ? name : "");
    case CLD_KILLED:
    case CLD_DUMPED:
      return g_strdup_printf ("main process killed by signal %d (%s)%s", info->exec_main_status,
                              g_strsignal (info->exec_main_status),
                              info->exec_main_code == CLD_DUMPED ? ", core dumped" : "");
    default:
      return NULL;
    }
}

static void
job_result_got_unit_result (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  JobData *d = g_task_get_task_data (task);
  const char *job_result = g_object_get_data (G_OBJECT (task), "job-result");
  g_autoptr(BgdUnitInfo) info = fetch_state_finish (BGD_SYSTEMD (source), res, NULL);
  const char *unit_result = info != NULL && info->result != NULL && *info->result ? info->result : "unknown";
  g_autofree char *exit = info != NULL ? describe_main_exit (info) : NULL;

  if (d->kind == JOB_START && g_str_equal (unit_result, "timeout"))
    {
      /* The process was killed for the timeout: how it ended says nothing. */
      g_autofree char *within = NULL;

      if (d->timeout_start_usec > 0)
        within = g_strdup_printf (" within %g s", (double) d->timeout_start_usec / G_USEC_PER_SEC);
      g_task_return_new_error (task, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_START_TIMEOUT,
                               "%s: not started%s: start job %s (unit result: timeout)", d->unit,
                               within ? within : " within its start timeout", job_result);
      return;
    }
  g_task_return_new_error (task, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_JOB_FAILED,
                           "%s: %s job %s (unit result: %s%s%s)", d->unit,
                           d->kind == JOB_START ? "start" : "stop", job_result, unit_result,
                           exit ? "; " : "", exit ? exit : "");
}

static void
job_finished (BgdSystemd *self, GTask *task, const char *result)
{
  JobData *d = g_task_get_task_data (task);

  g_debug ("%s: job %s finished: %s", d->unit, d->job_path, result);
  if (g_str_equal (result, "done"))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  /* The unit's Result says why (exit-code, signal, watchdog, ...). */
  g_object_set_data_full (G_OBJECT (task), "job-result", g_strdup (result), g_free);
  fetch_state_async (self, d->unit, NULL, job_result_got_unit_result, g_object_ref (task));
}

static void
on_job_removed (GDBusConnection *bus, const char *sender, const char *object_path,
                const char *interface, const char *signal_name, GVariant *params, gpointer user_data)
{
  BgdSystemd *self = user_data;
  guint32 id;
  const char *job_path, *unit, *result;
  g_autoptr(GTask) task = NULL;
  gpointer key = NULL, value = NULL;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(uoss)")))
    return;
  g_variant_get (params, "(u&o&s&s)", &id, &job_path, &unit, &result);
  if (!g_hash_table_steal_extended (self->pending_jobs, job_path, &key, &value))
    {
      remember_removed (self, job_path, result);
      return;
    }
  g_free (key);
  task = value;
  job_finished (self, task, result);
}

static void
on_job_queued (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  BgdSystemd *self = g_task_get_source_object (task);
  JobData *d = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *job_path;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);

      if (d->kind == JOB_STOP && g_strcmp0 (remote, SD_NAME ".NoSuchUnit") == 0)
        {
          g_task_return_boolean (task, TRUE);
          return;
        }
      g_dbus_error_strip_remote_error (error);
      if (d->kind == JOB_START && g_strcmp0 (remote, SD_NAME ".UnitExists") == 0)
        {
          g_task_return_new_error (task, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_UNIT_EXISTS,
                                   "%s: %s", d->unit, error->message);
          return;
        }
      g_prefix_error (&error, "%s: %s: ", d->unit, d->kind == JOB_START ? "StartTransientUnit" : "StopUnit");
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_variant_get (reply, "(&o)", &job_path);
  job_wait (self, task, job_path);
}

static void
start_after_reset (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  BgdSystemd *self = g_task_get_source_object (task);
  JobData *d = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);

      /* Not loaded, or loaded and not failed: nothing to reset. */
      if (g_strcmp0 (remote, SD_NAME ".NoSuchUnit") != 0)
        {
          g_dbus_error_strip_remote_error (error);
          g_prefix_error (&error, "%s: ResetFailedUnit: ", d->unit);
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
    }
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "StartTransientUnit",
                          g_variant_new ("(ss@a(sv)@a(sa(sv)))", d->unit, "fail",
                                         d->properties,
                                         g_variant_new_array (G_VARIANT_TYPE ("(sa(sv))"), NULL, 0)),
                          G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          g_task_get_cancellable (task), on_job_queued, g_object_ref (task));
}

void
bgd_systemd_start_transient_async (BgdSystemd *self, const BgdUnitSpec *spec, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  JobData *d;
  GVariant *props;

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  g_return_if_fail (spec != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_systemd_start_transient_async);
  props = bgd_systemd_build_properties (spec, &error);
  if (props == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  d = g_new0 (JobData, 1);
  d->kind = JOB_START;
  d->unit = g_strdup (spec->name);
  d->properties = g_variant_ref_sink (props);
  d->timeout_start_usec = spec->timeout_start_usec;
  g_task_set_task_data (task, d, (GDestroyNotify) job_data_free);

  /* A failed transient unit blocks its name until it is reset. */
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "ResetFailedUnit",
                          g_variant_new ("(s)", spec->name), NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                          cancellable, start_after_reset, g_object_ref (task));
}

gboolean
bgd_systemd_start_transient_finish (BgdSystemd *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
bgd_systemd_stop_unit_async (BgdSystemd *self, const char *unit, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  JobData *d;

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  g_return_if_fail (unit != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_systemd_stop_unit_async);
  d = g_new0 (JobData, 1);
  d->kind = JOB_STOP;
  d->unit = g_strdup (unit);
  g_task_set_task_data (task, d, (GDestroyNotify) job_data_free);
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "StopUnit",
                          g_variant_new ("(ss)", unit, "replace"), G_VARIANT_TYPE ("(o)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, cancellable, on_job_queued, g_object_ref (task));
}

gboolean
bgd_systemd_stop_unit_finish (BgdSystemd *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- SetUnitProperties ----------------------------------------------------- */

static void
on_set_properties (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_prefix_error (&error, "%s: SetUnitProperties: ", (const char *) g_task_get_task_data (task));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

void
bgd_systemd_set_unit_properties_async (BgdSystemd *self, const char *unit, GVariant *properties,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GVariant) props = g_variant_ref_sink (properties);

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  g_return_if_fail (g_variant_is_of_type (props, G_VARIANT_TYPE ("a(sv)")));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_systemd_set_unit_properties_async);
  g_task_set_task_data (task, g_strdup (unit), g_free);
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "SetUnitProperties",
                          g_variant_new ("(sb@a(sv))", unit, TRUE, props), NULL,
                          G_DBUS_CALL_FLAGS_NONE, -1, cancellable, on_set_properties, g_object_ref (task));
}

gboolean
bgd_systemd_set_unit_properties_finish (BgdSystemd *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- reading a unit's state ------------------------------------------------ */

/* Reads ActiveState, SubState (Unit) and Result, MainPID (Service) of one
 * unit path with one GetAll per interface, since Get x4 is four round
 * trips and GetAll on Unit is not much bigger. */
typedef struct {
  char *path;
  int pending;
  GError *error;
  BgdUnitInfo *info;
} StateFetch;

static void
state_fetch_free (StateFetch *f)
{
  g_free (f->path);
  g_clear_error (&f->error);
  bgd_unit_info_free (f->info);
  g_free (f);
}

static void
apply_props (BgdUnitInfo *info, GVariant *dict)
{
  const char *s;
  guint32 u;
  gint32 i;

  if (g_variant_lookup (dict, "ActiveState", "&s", &s))
    g_free (info->active_state), info->active_state = g_strdup (s);
  if (g_variant_lookup (dict, "SubState", "&s", &s))
    g_free (info->sub_state), info->sub_state = g_strdup (s);
  if (g_variant_lookup (dict, "Result", "&s", &s))
    g_free (info->result), info->result = g_strdup (s);
  if (g_variant_lookup (dict, "MainPID", "u", &u))
    info->main_pid = u;
  if (g_variant_lookup (dict, "ExecMainCode", "i", &i))
    info->exec_main_code = i;
  if (g_variant_lookup (dict, "ExecMainStatus", "i", &i))
    info->exec_main_status = i;
}

static void
on_state_part (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  StateFetch *f = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      if (f->error == NULL)
        {
          g_dbus_error_strip_remote_error (error);
          f->error = g_steal_pointer (&error);
        }
    }
  else
    {
      g_autoptr(GVariant) dict = g_variant_get_child_value (reply, 0);
      apply_props (f->info, dict);
    }
  if (--f->pending > 0)
    return;
  if (f->error != NULL)
    g_task_return_error (task, g_steal_pointer (&f->error));
  else
    g_task_return_pointer (task, g_steal_pointer (&f->info), (GDestroyNotify) bgd_unit_info_free);
}

static void
on_state_unit (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  BgdSystemd *self = g_task_get_source_object (task);
  StateFetch *f = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  static const char *const ifaces[] = { SD_UNIT, SD_SERVICE };

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);

      if (g_strcmp0 (remote, SD_NAME ".NoSuchUnit") == 0)
        {
          f->info->active_state = g_strdup ("inactive");
          f->info->sub_state = g_strdup ("dead");
          f->info->result = g_strdup ("");
          g_task_return_pointer (task, g_steal_pointer (&f->info), (GDestroyNotify) bgd_unit_info_free);
          return;
        }
      g_dbus_error_strip_remote_error (error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_variant_get (reply, "(o)", &f->path);
  f->pending = G_N_ELEMENTS (ifaces);
  for (gsize i = 0; i < G_N_ELEMENTS (ifaces); i++)
    g_dbus_connection_call (self->bus, SD_NAME, f->path, DBUS_PROPERTIES, "GetAll",
                            g_variant_new ("(s)", ifaces[i]), G_VARIANT_TYPE ("(a{sv})"),
                            G_DBUS_CALL_FLAGS_NONE, -1, g_task_get_cancellable (task), on_state_part,
                            g_object_ref (task));
}

/* GetUnit first: reading the properties of a unit that is not loaded
 * would make systemd load a stub (and announce it with UnitNew). */
static void
fetch_state_async (BgdSystemd *self, const char *unit, GCancellable *cancellable,
                   GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  StateFetch *f = g_new0 (StateFetch, 1);

  f->info = g_new0 (BgdUnitInfo, 1);
  f->info->name = g_strdup (unit);
  g_task_set_task_data (task, f, (GDestroyNotify) state_fetch_free);
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "GetUnit", g_variant_new ("(s)", unit),
                          G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, cancellable, on_state_unit, task);
}

static BgdUnitInfo *
fetch_state_finish (BgdSystemd *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- ListUnitsByPatterns --------------------------------------------------- */

typedef struct {
  GPtrArray *units;
  int pending;
  GError *error;
} ListData;

static void
list_data_free (ListData *l)
{
  g_clear_pointer (&l->units, g_ptr_array_unref);
  g_clear_error (&l->error);
  g_free (l);
}

static int
compare_info (gconstpointer a, gconstpointer b)
{
  const BgdUnitInfo *x = *(BgdUnitInfo *const *) a, *y = *(BgdUnitInfo *const *) b;
  return strcmp (x->name, y->name);
}

static void
list_done_one (ListData *l, GTask *task)
{
  if (--l->pending > 0)
    return;
  if (l->error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&l->error));
      return;
    }
  g_ptr_array_sort (l->units, compare_info);
  g_task_return_pointer (task, g_steal_pointer (&l->units), (GDestroyNotify) g_ptr_array_unref);
}

static void
on_list_state (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ListData *l = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  BgdUnitInfo *info = fetch_state_finish (BGD_SYSTEMD (source), res, &error);

  if (info != NULL)
    g_ptr_array_add (l->units, info);
  else if (l->error == NULL)
    l->error = g_steal_pointer (&error);
  list_done_one (l, task);
}

static void
on_list_units (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  BgdSystemd *self = g_task_get_source_object (task);
  ListData *l = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  GVariant *child;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_prefix_error (&error, "ListUnitsByPatterns: ");
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* The listing has the states already, but not MainPID and Result;
   * one fetch per unit reads all four consistently. */
  l->pending = 1;
  g_variant_get (reply, "(a(ssssssouso))", &iter);
  while ((child = g_variant_iter_next_value (iter)) != NULL)
    {
      g_autoptr(GVariant) unit = child;
      g_autoptr(GVariant) name = g_variant_get_child_value (unit, 0);

      l->pending++;
      fetch_state_async (self, g_variant_get_string (name, NULL), g_task_get_cancellable (task),
                         on_list_state, g_object_ref (task));
    }
  list_done_one (l, task);
}

void
bgd_systemd_list_units_async (BgdSystemd *self, const char *pattern, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  ListData *l;
  const char *patterns[] = { pattern, NULL };

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  g_return_if_fail (pattern != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_systemd_list_units_async);
  l = g_new0 (ListData, 1);
  l->units = g_ptr_array_new_with_free_func ((GDestroyNotify) bgd_unit_info_free);
  g_task_set_task_data (task, l, (GDestroyNotify) list_data_free);
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "ListUnitsByPatterns",
                          g_variant_new ("(^as^as)", (const char *const[]){ NULL }, patterns),
                          G_VARIANT_TYPE ("(a(ssssssouso))"), G_DBUS_CALL_FLAGS_NONE, -1,
                          cancellable, on_list_units, g_object_ref (task));
}

GPtrArray *
bgd_systemd_list_units_finish (BgdSystemd *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- watches ----------------------------------------------------------------- */

static void
watch_free (Watch *w)
{
  g_free (w->name);
  g_free (w->path);
  g_free (w->active_state);
  g_free (w->sub_state);
  g_free (w->result);
  g_free (w);
}

static gboolean
set_str (char **field, const char *value)
{
  if (value == NULL || g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

static void
watch_update (BgdSystemd *self, Watch *w, const char *active, const char *sub,
              const char *result, const guint32 *main_pid)
{
  gboolean changed = FALSE;

  changed |= set_str (&w->active_state, active);
  changed |= set_str (&w->sub_state, sub);
  changed |= set_str (&w->result, result);
  if (main_pid != NULL && *main_pid != w->main_pid)
    {
      w->main_pid = *main_pid;
      changed = TRUE;
    }
  if (!changed && w->emitted_once)
    return;
  if (w->active_state == NULL)
    return; /* nothing known yet: wait for the first fetch */
  w->emitted_once = TRUE;
  g_signal_emit (self, signals[SIGNAL_UNIT_CHANGED], 0, w->name, w->active_state,
                 w->sub_state ? w->sub_state : "", w->result ? w->result : "", (guint) w->main_pid);
}

typedef struct {
  BgdSystemd *self; /* strong */
  char *unit;
  guint serial;
} WatchFetch;

static void
on_watch_fetched (GObject *source, GAsyncResult *res, gpointer user_data)
{
  WatchFetch *wf = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgdUnitInfo) info = fetch_state_finish (wf->self, res, &error);
  Watch *w = g_hash_table_lookup (wf->self->watches, wf->unit);

  /* Only the newest fetch of a live watch counts; signals that came in
   * between are newer than an older fetch's answer. */
  if (w != NULL && w->fetch_serial == wf->serial)
    {
      if (info != NULL)
        watch_update (wf->self, w, info->active_state, info->sub_state, info->result, &info->main_pid);
      else
        g_debug ("%s: cannot read unit state: %s", wf->unit, error->message);
    }
  g_object_unref (wf->self);
  g_free (wf->unit);
  g_free (wf);
}

static void
watch_refetch (BgdSystemd *self, Watch *w)
{
  WatchFetch *wf = g_new0 (WatchFetch, 1);

  wf->self = g_object_ref (self);
  wf->unit = g_strdup (w->name);
  wf->serial = ++w->fetch_serial;
  fetch_state_async (self, w->name, NULL, on_watch_fetched, wf);
}

static void
on_unit_properties_changed (GDBusConnection *bus, const char *sender, const char *object_path,
                            const char *interface, const char *signal_name, GVariant *params,
                            gpointer user_data)
{
  BgdSystemd *self = user_data;
  const char *iface;
  g_autoptr(GVariant) changed = NULL;
  g_autofree const char **invalidated = NULL;
  const char *active = NULL, *sub = NULL, *result = NULL;
  guint32 pid;
  gboolean have_pid;
  Watch *w = NULL;
  GHashTableIter it;
  gpointer value;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  g_variant_get (params, "(&s@a{sv}^a&s)", &iface, &changed, &invalidated);
  if (!g_str_equal (iface, SD_UNIT) && !g_str_equal (iface, SD_SERVICE))
    return;
  g_hash_table_iter_init (&it, self->watches);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (g_str_equal (((Watch *) value)->path, object_path))
      {
        w = value;
        break;
      }
  if (w == NULL)
    return;

  g_variant_lookup (changed, "ActiveState", "&s", &active);
  g_variant_lookup (changed, "SubState", "&s", &sub);
  g_variant_lookup (changed, "Result", "&s", &result);
  have_pid = g_variant_lookup (changed, "MainPID", "u", &pid);
  /* A fetch under way would answer with values older than these. */
  if (active != NULL || sub != NULL || result != NULL || have_pid)
    w->fetch_serial++;
  watch_update (self, w, active, sub, result, have_pid ? &pid : NULL);

  for (const char **p = invalidated; p && *p; p++)
    if (g_str_equal (*p, "ActiveState") || g_str_equal (*p, "SubState") ||
        g_str_equal (*p, "Result") || g_str_equal (*p, "MainPID"))
      {
        watch_refetch (self, w);
        break;
      }
}

void
bgd_systemd_watch_unit (BgdSystemd *self, const char *unit)
{
  Watch *w;

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  g_return_if_fail (unit != NULL);

  if (g_hash_table_contains (self->watches, unit))
    return;
  w = g_new0 (Watch, 1);
  w->name = g_strdup (unit);
  w->path = bgd_systemd_unit_path (unit);
  w->props_sub = g_dbus_connection_signal_subscribe (self->bus, SD_NAME, DBUS_PROPERTIES,
                                                     "PropertiesChanged", w->path, NULL,
                                                     G_DBUS_SIGNAL_FLAGS_NONE,
                                                     on_unit_properties_changed, self, NULL);
  g_hash_table_insert (self->watches, w->name, w);
  watch_refetch (self, w);
}

void
bgd_systemd_unwatch_unit (BgdSystemd *self, const char *unit)
{
  Watch *w;

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  w = g_hash_table_lookup (self->watches, unit);
  if (w == NULL)
    return;
  g_dbus_connection_signal_unsubscribe (self->bus, w->props_sub);
  g_hash_table_remove (self->watches, unit);
}

/* ---- Subscribe --------------------------------------------------------------- */

static void
on_subscribed (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  BgdSystemd *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res, &error);
  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);

      /* Subscriptions are per connection: another user of this
       * connection did it already, which is as good. */
      if (g_strcmp0 (remote, SD_NAME ".AlreadySubscribed") == 0)
        {
          self->subscribed = TRUE;
          g_task_return_boolean (task, TRUE);
          return;
        }
      g_dbus_error_strip_remote_error (error);
      g_prefix_error (&error, "systemd Subscribe: ");
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  self->subscribed = TRUE;
  g_task_return_boolean (task, TRUE);
}

static void
subscribe (BgdSystemd *self, GTask *task)
{
  g_dbus_connection_call (self->bus, SD_NAME, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL,
                          G_DBUS_CALL_FLAGS_NONE, -1, task ? g_task_get_cancellable (task) : NULL,
                          task ? on_subscribed : NULL, task ? g_object_ref (task) : NULL);
}

static void
on_manager_appeared (GDBusConnection *bus, const char *name, const char *owner, gpointer user_data)
{
  BgdSystemd *self = user_data;
  GHashTableIter it;
  gpointer value;

  if (!self->manager_seen)
    {
      self->manager_seen = TRUE;
      return;
    }
  /* A new manager instance (daemon-reexec, or a user manager restarted):
   * the old subscription is gone and watched units may have changed. */
  g_message ("systemd manager reappeared as %s, subscribing again", owner);
  subscribe (self, NULL);
  g_hash_table_iter_init (&it, self->watches);
  while (g_hash_table_iter_next (&it, NULL, &value))
    watch_refetch (self, value);
}

static void
on_manager_vanished (GDBusConnection *bus, const char *name, gpointer user_data)
{
  BgdSystemd *self = user_data;
  GHashTableIter it;
  gpointer value;

  /* Jobs of a manager that went away never report JobRemoved. */
  g_hash_table_iter_init (&it, self->pending_jobs);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      GTask *task = value;
      JobData *d = g_task_get_task_data (task);

      g_task_return_new_error (task, BGD_SYSTEMD_ERROR, BGD_SYSTEMD_ERROR_DISCONNECTED,
                               "%s: the systemd manager went away during the job", d->unit);
      g_hash_table_iter_remove (&it);
    }
  if (self->manager_seen)
    g_message ("systemd manager left the bus");
}

void
bgd_systemd_init_async (BgdSystemd *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BGD_IS_SYSTEMD (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_systemd_init_async);
  if (self->name_watch == 0)
    self->name_watch = g_bus_watch_name_on_connection (self->bus, SD_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                       on_manager_appeared, on_manager_vanished,
                                                       self, NULL);
  subscribe (self, task);
}

gboolean
bgd_systemd_init_finish (BgdSystemd *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- object ----------------------------------------------------------------- */

BgdSystemd *
bgd_systemd_new (GDBusConnection *bus, gboolean user_manager)
{
  BgdSystemd *self;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (bus), NULL);
  self = g_object_new (BGD_TYPE_SYSTEMD, NULL);
  self->bus = g_object_ref (bus);
  self->user_manager = user_manager;
  self->job_removed_sub = g_dbus_connection_signal_subscribe (bus, SD_NAME, SD_MANAGER, "JobRemoved",
                                                              SD_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                              on_job_removed, self, NULL);
  return self;
}

gboolean
bgd_systemd_is_user_manager (BgdSystemd *self)
{
  g_return_val_if_fail (BGD_IS_SYSTEMD (self), FALSE);
  return self->user_manager;
}

GDBusConnection *
bgd_systemd_get_connection (BgdSystemd *self)
{
  g_return_val_if_fail (BGD_IS_SYSTEMD (self), NULL);
  return self->bus;
}

static void
bgd_systemd_dispose (GObject *object)
{
  BgdSystemd *self = BGD_SYSTEMD (object);
  GHashTableIter it;
  gpointer value;

  if (self->bus != NULL)
    {
      g_hash_table_iter_init (&it, self->watches);
      while (g_hash_table_iter_next (&it, NULL, &value))
        g_dbus_connection_signal_unsubscribe (self->bus, ((Watch *) value)->props_sub);
      g_hash_table_remove_all (self->watches);
      if (self->job_removed_sub != 0)
        g_dbus_connection_signal_unsubscribe (self->bus, self->job_removed_sub);
      self->job_removed_sub = 0;
    }
  if (self->name_watch != 0)
    {
      g_bus_unwatch_name (self->name_watch);
      self->name_watch = 0;
    }
  g_clear_object (&self->bus);
  G_OBJECT_CLASS (bgd_systemd_parent_class)->dispose (object);
}

static void
bgd_systemd_finalize (GObject *object)
{
  BgdSystemd *self = BGD_SYSTEMD (object);

  /* Pending tasks hold a reference on us, so none is left here. */
  g_hash_table_unref (self->pending_jobs);
  g_hash_table_unref (self->recent_removed);
  g_queue_clear (&self->recent_order);
  g_hash_table_unref (self->watches);
  G_OBJECT_CLASS (bgd_systemd_parent_class)->finalize (object);
}

static void
bgd_systemd_init (BgdSystemd *self)
{
  self->pending_jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  /* The queue owns nothing: its strings are the table's keys. */
  self->recent_removed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_queue_init (&self->recent_order);
  self->watches = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) watch_free);
}

static void
bgd_systemd_class_init (BgdSystemdClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bgd_systemd_dispose;
  object_class->finalize = bgd_systemd_finalize;

  signals[SIGNAL_UNIT_CHANGED] =
    g_signal_new ("unit-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_UINT);
}
