/* ctl.c — bluegreenctl: verbs, agent calls, human and JSON output.
 *
 * Every verb reads the agent's objects in one GetManagedObjects call (the
 * agent is an ObjectManager) or calls one method; long operations (deploy
 * --wait, cutover --wait) follow PropertiesChanged and CutoverFinished on
 * the bus instead of polling.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ctl/ctl.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/names.h"

#define AGENT_NAME "org.bluegreen.Agent1"
#define AGENT_PATH "/org/bluegreen/Agent1"
#define AGENT_IFACE "org.bluegreen.Agent1"
#define JOB_IFACE "org.bluegreen.Job1"
#define SLOT_IFACE "org.bluegreen.Slot1"
#define CALL_TIMEOUT_MS 30000

/* ---- options ------------------------------------------------------------ */

typedef struct {
  gboolean user;
  gboolean system;
  gboolean json;
  gboolean quiet;
  gboolean no_pager;
  gboolean wait;
  gboolean auto_cutover;
  gboolean auto_rollback;
  gboolean force;
  gboolean live;
  char *from;
  int timeout_sec;
  gboolean use_color;
  GDBusConnection *bus;
} Ctl;

static void
ctl_clear (Ctl *ctl)
{
  g_clear_object (&ctl->bus);
  g_clear_pointer (&ctl->from, g_free);
}

static void
print_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
static void
print_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "%s %s\n", _("error:"), msg);
}

/* ---- output helpers ------------------------------------------------------ */

static const char *
ansi (Ctl *ctl, const char *code)
{
  return ctl->use_color ? code : "";
}
#define ANSI_RESET "\033[0m"
#define ANSI_BOLD "\033[1m"
#define ANSI_GREEN "\033[1;32m"
#define ANSI_RED "\033[1;31m"
#define ANSI_BLUE "\033[1;34m"
#define ANSI_YELLOW "\033[1;33m"

static void
print_json (JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, node);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

/* ---- talking to the agent ------------------------------------------------ */

static int
exit_code_for_error (const GError *error)
{
  g_autofree char *name = g_dbus_error_get_remote_error (error);
  if (name == NULL)
    return BGCTL_EXIT_FAILED;
  if (g_str_equal (name, "org.freedesktop.DBus.Error.ServiceUnknown") ||
      g_str_equal (name, "org.freedesktop.DBus.Error.NameHasNoOwner"))
    return BGCTL_EXIT_NO_AGENT;
  if (g_str_equal (name, "org.bluegreen.Error.UnknownJob"))
    return BGCTL_EXIT_NO_JOB;
  if (g_str_equal (name, "org.bluegreen.Error.InvalidArgs") ||
      g_str_equal (name, "org.bluegreen.Error.UnknownOption"))
    return BGCTL_EXIT_USAGE;
  return BGCTL_EXIT_FAILED;
}

/* Prints one error line for a failed call, with a hint where one helps. */
static int
report_call_error (Ctl *ctl, GError *error)
{
  int code = exit_code_for_error (error);
  g_dbus_error_strip_remote_error (error);
  if (ctl->bus == NULL)
    {
      print_error (_("cannot connect to the %s bus: %s (is the bluegreen agent running? start it with: systemctl %sstart bluegreend)"),
                   ctl->user ? "session" : "system", error->message, ctl->user ? "--user " : "");
      return BGCTL_EXIT_NO_AGENT;
    }
  if (code == BGCTL_EXIT_NO_AGENT)
    {
      print_error (_("the bluegreen agent is not running on the %s bus (start it with: systemctl %sstart bluegreend)"),
                   ctl->user ? "session" : "system", ctl->user ? "--user " : "");
    }
  else
    print_error ("%s", error->message);
  return code;
}

/* Connects on the first call, so bad arguments are reported before the bus
 * is even looked at. */
static GVariant *
call_agent (Ctl *ctl, const char *path, const char *iface, const char *method,
            GVariant *params, const GVariantType *reply_type, GError **error)
{
  if (ctl->bus == NULL)
    {
      ctl->bus = g_bus_get_sync (ctl->user ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, error);
      if (ctl->bus == NULL)
        {
          if (params != NULL)
            g_variant_unref (g_variant_ref_sink (params));
          return NULL;
        }
    }
  return g_dbus_connection_call_sync (ctl->bus, AGENT_NAME, path, iface, method, params,
                                      reply_type, G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS,
                                      NULL, error);
}

/* The agent's whole object tree: path -> (interface -> properties a{sv}). */
typedef struct {
  GVariant *objects; /* a{oa{sa{sv}}} */
} Tree;

static void
tree_clear (Tree *tree)
{
  g_clear_pointer (&tree->objects, g_variant_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Tree, tree_clear)

static gboolean
tree_load (Ctl *ctl, Tree *tree, GError **error)
{
  g_autoptr (GVariant) reply = call_agent (ctl, AGENT_PATH, "org.freedesktop.DBus.ObjectManager",
                                           "GetManagedObjects", NULL,
                                           G_VARIANT_TYPE ("(a{oa{sa{sv}}})"), error);
  if (reply == NULL)
    return FALSE;
  tree->objects = g_variant_get_child_value (reply, 0);
  return TRUE;
}

/* Properties of @iface on @path, or NULL. */
static GVariant *
tree_props (Tree *tree, const char *path, const char *iface)
{
  g_autoptr (GVariant) ifaces = g_variant_lookup_value (tree->objects, path, G_VARIANT_TYPE ("a{sa{sv}}"));
  if (ifaces == NULL)
    return NULL;
  return g_variant_lookup_value (ifaces, iface, G_VARIANT_TYPE ("a{sv}"));
}

static const char *
prop_str (GVariant *props, const char *key)
{
  const char *s = NULL;
  if (props == NULL || !g_variant_lookup (props, key, "&s", &s))
    return "";
  return s;
}

static gint64
prop_int64 (GVariant *props, const char *key, gint64 fallback)
{
  gint64 v;
  if (props == NULL || !g_variant_lookup (props, key, "x", &v))
    return fallback;
  return v;
}

static guint64
prop_uint64 (GVariant *props, const char *key)
{
  guint64 v;
  if (props == NULL || !g_variant_lookup (props, key, "t", &v))
    return 0;
  return v;
}

static gboolean
prop_bool (GVariant *props, const char *key)
{
  gboolean v;
  if (props == NULL || !g_variant_lookup (props, key, "b", &v))
    return FALSE;
  return v;
}

static const char *
prop_path (GVariant *props, const char *key)
{
  const char *s = NULL;
  if (props == NULL || !g_variant_lookup (props, key, "&o", &s))
    return NULL;
  return s;
}

/* The object path of job @name, or NULL with the exit code set. */
static char *
job_path (Ctl *ctl, const char *name, int *exit_code)
{
  g_autoptr (GError) error = NULL;
  if (!bg_name_is_valid (name))
    {
      print_error (_("'%s' is not a valid job name"), name);
      *exit_code = BGCTL_EXIT_USAGE;
      return NULL;
    }
  g_autoptr (GVariant) reply = call_agent (ctl, AGENT_PATH, AGENT_IFACE, "GetJob",
                                           g_variant_new ("(s)", name), G_VARIANT_TYPE ("(o)"), &error);
  if (reply == NULL)
    {
      *exit_code = report_call_error (ctl, error);
      return NULL;
    }
  char *path = NULL;
  g_variant_get (reply, "(o)", &path);
  return path;
}

/* ---- status -------------------------------------------------------------- */

/* An a(six) list of (topic, partition, offset) as a JSON array of objects. */
static void
add_offsets_json (JsonBuilder *b, GVariant *offsets)
{
  json_builder_begin_array (b);
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 offset;
  g_variant_iter_init (&iter, offsets);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "topic");
      json_builder_add_string_value (b, topic);
      json_builder_set_member_name (b, "partition");
      json_builder_add_int_value (b, partition);
      json_builder_set_member_name (b, "offset");
      json_builder_add_int_value (b, offset);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static JsonNode *
slot_to_json (GVariant *slot)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  const char *str_keys[] = { "Color", "Version", "State", "Unit", "ActiveState", "SubState",
                             "SinkMode", "LastError" };
  for (size_t i = 0; i < G_N_ELEMENTS (str_keys); i++)
    {
      g_autofree char *k = g_ascii_strdown (str_keys[i], -1);
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, prop_str (slot, str_keys[i]));
    }
  json_builder_set_member_name (b, "lag");
  json_builder_add_int_value (b, prop_int64 (slot, "Lag", -1));
  json_builder_set_member_name (b, "ready");
  json_builder_add_boolean_value (b, prop_bool (slot, "Ready"));
  json_builder_set_member_name (b, "emitted");
  json_builder_add_int_value (b, (gint64) prop_uint64 (slot, "Emitted"));
  json_builder_set_member_name (b, "dropped");
  json_builder_add_int_value (b, (gint64) prop_uint64 (slot, "Dropped"));
  json_builder_set_member_name (b, "positions");
  g_autoptr (GVariant) positions = slot ? g_variant_lookup_value (slot, "Positions", G_VARIANT_TYPE ("a(six)")) : NULL;
  if (positions != NULL)
    add_offsets_json (b, positions);
  else
    {
      json_builder_begin_array (b);
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static JsonNode *
job_to_json (Tree *tree, GVariant *job)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, prop_str (job, "Name"));
  json_builder_set_member_name (b, "live_color");
  json_builder_add_string_value (b, prop_str (job, "LiveColor"));
  json_builder_set_member_name (b, "phase");
  json_builder_add_string_value (b, prop_str (job, "Phase"));
  json_builder_set_member_name (b, "last_error");
  json_builder_add_string_value (b, prop_str (job, "LastError"));
  json_builder_set_member_name (b, "slots");
  json_builder_begin_object (b);
  const char *colors[] = { "Blue", "Green" };
  for (size_t i = 0; i < G_N_ELEMENTS (colors); i++)
    {
      const char *path = prop_path (job, colors[i]);
      g_autoptr (GVariant) slot = path ? tree_props (tree, path, SLOT_IFACE) : NULL;
      g_autofree char *k = g_ascii_strdown (colors[i], -1);
      json_builder_set_member_name (b, k);
      if (slot != NULL)
        json_builder_add_value (b, slot_to_json (slot));
      else
        json_builder_add_null_value (b);
    }
  json_builder_end_object (b);
  g_autoptr (GVariant) last = job ? g_variant_lookup_value (job, "LastCutover", G_VARIANT_TYPE ("(ssssstta(six))")) : NULL;
  json_builder_set_member_name (b, "last_cutover");
  if (last != NULL)
    {
      const char *id, *out, *in, *result, *reason;
      guint64 started, duration;
      g_autoptr (GVariant) barriers = NULL;
      g_variant_get (last, "(&s&s&s&s&stt@a(six))", &id, &out, &in, &result, &reason,
                     &started, &duration, &barriers);
      if (*id == '\0')
        json_builder_add_null_value (b);
      else
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "id");
          json_builder_add_string_value (b, id);
          json_builder_set_member_name (b, "outgoing");
          json_builder_add_string_value (b, out);
          json_builder_set_member_name (b, "incoming");
          json_builder_add_string_value (b, in);
          json_builder_set_member_name (b, "result");
          json_builder_add_string_value (b, result);
          json_builder_set_member_name (b, "reason");
          json_builder_add_string_value (b, reason);
          json_builder_set_member_name (b, "started_us");
          json_builder_add_int_value (b, (gint64) started);
          json_builder_set_member_name (b, "duration_us");
          json_builder_add_int_value (b, (gint64) duration);
          json_builder_set_member_name (b, "barriers");
          add_offsets_json (b, barriers);
          json_builder_end_object (b);
        }
    }
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static char *
format_lag (gint64 lag)
{
  return lag < 0 ? g_strdup ("-") : g_strdup_printf ("%" G_GINT64_FORMAT, lag);
}

static void
print_job_human (Ctl *ctl, Tree *tree, GVariant *job)
{
  const char *live = prop_str (job, "LiveColor");
  const char *phase = prop_str (job, "Phase");
  const char *last_error = prop_str (job, "LastError");
  printf ("%s●%s %s%s%s — %s %s, %s %s\n",
          ansi (ctl, *live ? ANSI_GREEN : ANSI_YELLOW), ansi (ctl, ANSI_RESET),
          ansi (ctl, ANSI_BOLD), prop_str (job, "Name"), ansi (ctl, ANSI_RESET),
          _("live:"), *live ? live : _("none"), _("phase:"), phase);
  printf ("    %-6s %-12s %-20s %-10s %10s %-5s %12s %12s\n", _("COLOR"), _("VERSION"), _("UNIT STATE"),
          _("SINK"), _("LAG"), _("READY"), _("EMITTED"), _("DROPPED"));
  const char *colors[] = { "Blue", "Green" };
  for (size_t i = 0; i < G_N_ELEMENTS (colors); i++)
    {
      const char *path = prop_path (job, colors[i]);
      g_autoptr (GVariant) slot = path ? tree_props (tree, path, SLOT_IFACE) : NULL;
      if (slot == NULL)
        continue;
      const char *version = prop_str (slot, "Version");
      const char *state = prop_str (slot, "State");
      if (g_str_equal (state, "stopped") && *version == '\0')
        continue;
      g_autofree char *unit_state = g_strdup_printf ("%s/%s", prop_str (slot, "ActiveState"),
                                                     prop_str (slot, "SubState"));
      g_autofree char *lag = format_lag (prop_int64 (slot, "Lag", -1));
      const char *sink = prop_str (slot, "SinkMode");
      const char *color_code = g_str_equal (prop_str (slot, "Color"), "blue") ? ANSI_BLUE : ANSI_GREEN;
      printf ("    %s%-6s%s %-12s %-20s %-10s %10s %-5s %12" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT "\n",
              ansi (ctl, color_code), prop_str (slot, "Color"), ansi (ctl, ANSI_RESET),
              *version ? version : "-", unit_state, sink, lag,
              prop_bool (slot, "Ready") ? _("yes") : _("no"),
              prop_uint64 (slot, "Emitted"), prop_uint64 (slot, "Dropped"));
      const char *slot_error = prop_str (slot, "LastError");
      if (*slot_error)
        printf ("           %s%s%s\n", ansi (ctl, ANSI_RED), slot_error, ansi (ctl, ANSI_RESET));
    }
  g_autoptr (GVariant) last = g_variant_lookup_value (job, "LastCutover", G_VARIANT_TYPE ("(ssssstta(six))"));
  if (last != NULL)
    {
      const char *id, *out, *in, *result, *reason;
      guint64 started, duration;
      g_autoptr (GVariant) barriers = NULL;
      g_variant_get (last, "(&s&s&s&s&stt@a(six))", &id, &out, &in, &result, &reason,
                     &started, &duration, &barriers);
      if (*id != '\0')
        {
          printf ("    %s %s: %s → %s, %s%s%s, %.1f ms\n", _("last cutover"), id, out, in, result,
                  *reason ? ": " : "", reason, duration / 1000.0);
          GVariantIter iter;
          const char *topic;
          gint32 partition;
          gint64 offset;
          g_autoptr (GString) line = g_string_new ("    ");
          g_string_append (line, _("barriers:"));
          g_variant_iter_init (&iter, barriers);
          while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
            g_string_append_printf (line, " %s/%d@%" G_GINT64_FORMAT, topic, partition, offset);
          printf ("%s\n", line->str);
        }
    }
  if (*last_error)
    printf ("    %s %s%s%s\n", _("last error:"), ansi (ctl, ANSI_RED), last_error, ansi (ctl, ANSI_RESET));
}

static GVariant *get_all (Ctl *ctl, const char *path, const char *iface);

/* Job property dictionaries of the tree, sorted by name. */
static GPtrArray *
tree_jobs (Tree *tree)
{
  GPtrArray *jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  GVariantIter iter;
  const char *path;
  GVariant *ifaces;
  g_variant_iter_init (&iter, tree->objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", &path, &ifaces))
    {
      GVariant *job = g_variant_lookup_value (ifaces, JOB_IFACE, G_VARIANT_TYPE ("a{sv}"));
      if (job != NULL)
        g_ptr_array_add (jobs, job);
      g_variant_unref (ifaces);
    }
  return jobs;
}

static gint
compare_job_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (prop_str (*(GVariant **) a, "Name"), prop_str (*(GVariant **) b, "Name"));
}

static int
verb_status (Ctl *ctl, int argc, char **argv)
{
  if (argc > 2)
    {
      print_error (_("status takes at most one job name"));
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  g_autofree char *only = NULL;
  if (argc == 2 && (only = job_path (ctl, argv[1], &code)) == NULL)
    return code;
  g_auto (Tree) tree = { 0 };
  g_autoptr (GError) error = NULL;
  if (!tree_load (ctl, &tree, &error))
    return report_call_error (ctl, error);
  /* An ObjectManager lists the objects below it, not itself: the agent's
   * own properties (HostId, Version) need a call of their own. */
  g_autoptr (GVariant) agent = tree_props (&tree, AGENT_PATH, AGENT_IFACE);
  if (agent == NULL)
    agent = get_all (ctl, AGENT_PATH, AGENT_IFACE);
  g_autoptr (GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  if (only != NULL)
    {
      GVariant *job = tree_props (&tree, only, JOB_IFACE);
      if (job != NULL)
        g_ptr_array_add (jobs, job);
    }
  else
    {
      g_autoptr (GPtrArray) all = tree_jobs (&tree);
      g_ptr_array_sort (all, compare_job_names);
      for (guint i = 0; i < all->len; i++)
        g_ptr_array_add (jobs, g_variant_ref (all->pdata[i]));
    }

  if (ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "host");
      json_builder_add_string_value (b, prop_str (agent, "HostId"));
      json_builder_set_member_name (b, "agent_version");
      json_builder_add_string_value (b, prop_str (agent, "Version"));
      json_builder_set_member_name (b, "jobs");
      json_builder_begin_array (b);
      for (guint i = 0; i < jobs->len; i++)
        json_builder_add_value (b, job_to_json (&tree, jobs->pdata[i]));
      json_builder_end_array (b);
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      print_json (root);
      return BGCTL_EXIT_OK;
    }
  if (ctl->quiet)
    return BGCTL_EXIT_OK;
  if (only == NULL)
    printf ("%s %s%s%s, %u %s\n", _("host"), ansi (ctl, ANSI_BOLD), prop_str (agent, "HostId"),
            ansi (ctl, ANSI_RESET), jobs->len, jobs->len == 1 ? _("job") : _("jobs"));
  for (guint i = 0; i < jobs->len; i++)
    print_job_human (ctl, &tree, jobs->pdata[i]);
  return BGCTL_EXIT_OK;
}

static int
verb_list (Ctl *ctl, int argc, char **argv)
{
  if (argc != 1)
    {
      print_error (_("list takes no arguments"));
      return BGCTL_EXIT_USAGE;
    }
  g_auto (Tree) tree = { 0 };
  g_autoptr (GError) error = NULL;
  if (!tree_load (ctl, &tree, &error))
    return report_call_error (ctl, error);
  g_autoptr (GPtrArray) jobs = tree_jobs (&tree);
  g_ptr_array_sort (jobs, compare_job_names);
  if (ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_array (b);
      for (guint i = 0; i < jobs->len; i++)
        {
          GVariant *job = jobs->pdata[i];
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, prop_str (job, "Name"));
          json_builder_set_member_name (b, "live_color");
          json_builder_add_string_value (b, prop_str (job, "LiveColor"));
          json_builder_set_member_name (b, "phase");
          json_builder_add_string_value (b, prop_str (job, "Phase"));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      print_json (root);
      return BGCTL_EXIT_OK;
    }
  if (ctl->quiet)
    return BGCTL_EXIT_OK;
  if (isatty (STDOUT_FILENO))
    printf ("%s%-24s %-6s %-14s%s\n", ansi (ctl, ANSI_BOLD), _("JOB"), _("LIVE"), _("PHASE"), ansi (ctl, ANSI_RESET));
  for (guint i = 0; i < jobs->len; i++)
    {
      GVariant *job = jobs->pdata[i];
      const char *live = prop_str (job, "LiveColor");
      printf ("%-24s %-6s %-14s\n", prop_str (job, "Name"), *live ? live : "-", prop_str (job, "Phase"));
    }
  return BGCTL_EXIT_OK;
}

static int
verb_hosts (Ctl *ctl, int argc, char **argv)
{
  if (argc > 2)
    {
      print_error (_("hosts takes at most one job name"));
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  g_autofree char *only = NULL;
  if (argc == 2 && (only = job_path (ctl, argv[1], &code)) == NULL)
    return code;
  g_auto (Tree) tree = { 0 };
  g_autoptr (GError) error = NULL;
  if (!tree_load (ctl, &tree, &error))
    return report_call_error (ctl, error);
  g_autoptr (GPtrArray) jobs = tree_jobs (&tree);
  g_ptr_array_sort (jobs, compare_job_names);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (guint i = 0; i < jobs->len; i++)
    {
      GVariant *job = jobs->pdata[i];
      if (only != NULL && !g_str_equal (prop_str (job, "Name"), argv[1]))
        continue;
      g_autofree const char **hosts = NULL;
      g_autoptr (GVariant) v = g_variant_lookup_value (job, "Hosts", G_VARIANT_TYPE ("as"));
      if (v != NULL)
        hosts = g_variant_get_strv (v, NULL);
      if (ctl->json)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "job");
          json_builder_add_string_value (b, prop_str (job, "Name"));
          json_builder_set_member_name (b, "hosts");
          json_builder_begin_array (b);
          for (size_t h = 0; hosts && hosts[h]; h++)
            json_builder_add_string_value (b, hosts[h]);
          json_builder_end_array (b);
          json_builder_end_object (b);
        }
      else if (!ctl->quiet)
        {
          g_autofree char *joined = hosts ? g_strjoinv (" ", (char **) hosts) : g_strdup ("");
          printf ("%-24s %s\n", prop_str (job, "Name"), *joined ? joined : "-");
        }
    }
  json_builder_end_array (b);
  if (ctl->json)
    {
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      print_json (root);
    }
  return BGCTL_EXIT_OK;
}

/* ---- simple method verbs ----------------------------------------------- */

static int
print_ok_json (Ctl *ctl, const char *verb, const char *key, const char *value)
{
  if (!ctl->json)
    return BGCTL_EXIT_OK;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "verb");
  json_builder_add_string_value (b, verb);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, TRUE);
  if (key != NULL)
    {
      json_builder_set_member_name (b, key);
      json_builder_add_string_value (b, value);
    }
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  print_json (root);
  return BGCTL_EXIT_OK;
}

static gboolean
check_color (const char *color, int *code)
{
  BgColor c;
  if (bg_color_from_string (color, &c))
    return TRUE;
  print_error (_("'%s' is not a color (use blue or green)"), color);
  *code = BGCTL_EXIT_USAGE;
  return FALSE;
}

static int
verb_reload (Ctl *ctl, int argc, char **argv)
{
  if (argc != 1)
    {
      print_error (_("reload takes no arguments"));
      return BGCTL_EXIT_USAGE;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) r = call_agent (ctl, AGENT_PATH, AGENT_IFACE, "Reload", NULL, NULL, &error);
  if (r == NULL)
    return report_call_error (ctl, error);
  return print_ok_json (ctl, "reload", NULL, NULL);
}

static int
verb_sink (Ctl *ctl, int argc, char **argv)
{
  if (argc != 4)
    {
      print_error (_("usage: sink JOB COLOR live|blackhole"));
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  if (!check_color (argv[2], &code))
    return code;
  if (!g_str_equal (argv[3], "live") && !g_str_equal (argv[3], "blackhole"))
    {
      print_error (_("'%s' is not a sink mode (use live or blackhole)"), argv[3]);
      return BGCTL_EXIT_USAGE;
    }
  g_autofree char *path = job_path (ctl, argv[1], &code);
  if (path == NULL)
    return code;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) r = call_agent (ctl, path, JOB_IFACE, "SetSinkMode",
                                       g_variant_new ("(ss)", argv[2], argv[3]), NULL, &error);
  if (r == NULL)
    return report_call_error (ctl, error);
  return print_ok_json (ctl, "sink", "mode", argv[3]);
}

static int
verb_retire (Ctl *ctl, int argc, char **argv)
{
  if (argc != 3)
    {
      print_error (_("usage: retire JOB COLOR"));
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  if (!check_color (argv[2], &code))
    return code;
  g_autofree char *path = job_path (ctl, argv[1], &code);
  if (path == NULL)
    return code;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) r = call_agent (ctl, path, JOB_IFACE, "Retire", g_variant_new ("(s)", argv[2]), NULL, &error);
  if (r == NULL)
    return report_call_error (ctl, error);
  return print_ok_json (ctl, "retire", "color", argv[2]);
}

static int
verb_abort (Ctl *ctl, int argc, char **argv)
{
  if (argc != 2)
    {
      print_error (_("usage: abort JOB"));
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  g_autofree char *path = job_path (ctl, argv[1], &code);
  if (path == NULL)
    return code;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) r = call_agent (ctl, path, JOB_IFACE, "Abort", NULL, NULL, &error);
  if (r == NULL)
    return report_call_error (ctl, error);
  return print_ok_json (ctl, "abort", NULL, NULL);
}

/* ---- waiting ----------------------------------------------------------- */

typedef struct {
  Ctl *ctl;
  GMainLoop *loop;
  char *job_path;
  char *slot_path;
  char *cutover_id;
  int result;
  gboolean finished;
  gint64 started;
  gint64 first_lag;
  gint64 last_lag;
  gint64 last_print;
  char *last_phase;
} Waiter;

static void
waiter_clear (Waiter *w)
{
  g_clear_pointer (&w->loop, g_main_loop_unref);
  g_clear_pointer (&w->job_path, g_free);
  g_clear_pointer (&w->slot_path, g_free);
  g_clear_pointer (&w->cutover_id, g_free);
  g_clear_pointer (&w->last_phase, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Waiter, waiter_clear)

static GVariant *
get_all (Ctl *ctl, const char *path, const char *iface)
{
  g_autoptr (GVariant) r = call_agent (ctl, path, "org.freedesktop.DBus.Properties", "GetAll",
                                       g_variant_new ("(s)", iface), G_VARIANT_TYPE ("(a{sv})"), NULL);
  return r ? g_variant_get_child_value (r, 0) : NULL;
}

static void
finish_wait (Waiter *w, int result)
{
  w->finished = TRUE;
  w->result = result;
  g_main_loop_quit (w->loop);
}

/* deploy --wait: catch-up progress until the slot is Ready. */
static void
deploy_progress (Waiter *w)
{
  Ctl *ctl = w->ctl;
  g_autoptr (GVariant) slot = get_all (ctl, w->slot_path, SLOT_IFACE);
  if (slot == NULL)
    {
      print_error (_("the agent went away while waiting"));
      finish_wait (w, BGCTL_EXIT_NO_AGENT);
      return;
    }
  const char *state = prop_str (slot, "State");
  if (g_str_equal (state, "failed"))
    {
      print_error (_("the slot failed: %s"), prop_str (slot, "LastError"));
      finish_wait (w, BGCTL_EXIT_WAIT_FAILED);
      return;
    }
  gint64 lag = prop_int64 (slot, "Lag", -1);
  gint64 now = g_get_monotonic_time ();
  if (lag >= 0 && w->first_lag < 0)
    w->first_lag = lag;
  gboolean ready = prop_bool (slot, "Ready");
  double elapsed = (now - w->started) / 1e6;
  double rate = (w->first_lag >= 0 && lag >= 0 && elapsed > 0.5) ? (w->first_lag - lag) / elapsed : 0;
  g_autofree char *eta = (rate > 0 && lag > 0) ? g_strdup_printf ("%.0f s", lag / rate) : g_strdup ("-");
  if (!ctl->quiet && !ctl->json)
    {
      if (isatty (STDOUT_FILENO))
        {
          double frac = (w->first_lag > 0 && lag >= 0) ? 1.0 - (double) lag / w->first_lag : (ready ? 1.0 : 0.0);
          frac = CLAMP (frac, 0.0, 1.0);
          int width = 30, filled = (int) (frac * width);
          g_autofree char *bar = g_strnfill (filled, '#');
          g_autofree char *rest = g_strnfill (width - filled, '.');
          g_autofree char *lag_s = format_lag (lag);
          printf ("\r[%s%s] %s %s  %.0f rec/s  ETA %s   ", bar, rest, _("lag"), lag_s, rate, eta);
          fflush (stdout);
        }
      else if (now - w->last_print >= G_USEC_PER_SEC || ready)
        {
          g_autofree char *lag_s = format_lag (lag);
          printf ("%s %s %s, %.0f rec/s, ETA %s, %s %s\n", _("catching up:"), _("lag"), lag_s, rate, eta,
                  _("ready"), ready ? _("yes") : _("no"));
          w->last_print = now;
        }
    }
  w->last_lag = lag;
  if (ready)
    {
      if (!ctl->quiet && !ctl->json)
        printf ("%s%s\n", isatty (STDOUT_FILENO) ? "\n" : "", _("ready"));
      finish_wait (w, BGCTL_EXIT_OK);
    }
}

static void
on_slot_changed (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                 const char *signal, GVariant *params, gpointer user_data)
{
  deploy_progress (user_data);
}

static gboolean
on_wait_tick (gpointer user_data)
{
  Waiter *w = user_data;
  if (w->slot_path != NULL && w->cutover_id == NULL)
    deploy_progress (w);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_wait_timeout (gpointer user_data)
{
  Waiter *w = user_data;
  print_error (_("timed out after %d s (the operation goes on; see: bluegreenctl status)"), w->ctl->timeout_sec);
  finish_wait (w, BGCTL_EXIT_WAIT_FAILED);
  return G_SOURCE_REMOVE;
}

static void
cutover_progress (Waiter *w)
{
  Ctl *ctl = w->ctl;
  g_autoptr (GVariant) job = get_all (ctl, w->job_path, JOB_IFACE);
  if (job == NULL)
    return;
  const char *phase = prop_str (job, "Phase");
  if (g_strcmp0 (phase, w->last_phase) != 0)
    {
      if (!ctl->quiet && !ctl->json)
        printf ("%s %s\n", _("phase:"), phase);
      g_free (w->last_phase);
      w->last_phase = g_strdup (phase);
    }
}

static void
on_job_changed (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                const char *signal, GVariant *params, gpointer user_data)
{
  cutover_progress (user_data);
}

static void
on_cutover_finished (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                     const char *signal, GVariant *params, gpointer user_data)
{
  Waiter *w = user_data;
  const char *id, *result, *reason;
  g_variant_get (params, "(&s&s&s)", &id, &result, &reason);
  if (g_strcmp0 (id, w->cutover_id) != 0)
    return;
  gboolean ok = g_str_equal (result, "done");
  if (w->ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, id);
      json_builder_set_member_name (b, "result");
      json_builder_add_string_value (b, result);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, reason);
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      print_json (root);
    }
  else if (!w->ctl->quiet)
    printf ("%s %s: %s%s%s\n", _("cutover"), id, result, *reason ? ": " : "", reason);
  if (!ok && !w->ctl->json)
    print_error (_("cutover %s ended %s: %s"), id, result, reason);
  finish_wait (w, ok ? BGCTL_EXIT_OK : BGCTL_EXIT_WAIT_FAILED);
}

static int
run_wait (Ctl *ctl, Waiter *w)
{
  w->loop = g_main_loop_new (NULL, FALSE);
  w->started = g_get_monotonic_time ();
  w->first_lag = -1;
  guint sub_props = 0, sub_finished = 0, sub_job = 0;
  if (w->slot_path != NULL && w->cutover_id == NULL)
    sub_props = g_dbus_connection_signal_subscribe (ctl->bus, AGENT_NAME, "org.freedesktop.DBus.Properties",
                                                    "PropertiesChanged", w->slot_path, SLOT_IFACE,
                                                    G_DBUS_SIGNAL_FLAGS_NONE, on_slot_changed, w, NULL);
  if (w->cutover_id != NULL)
    {
      sub_finished = g_dbus_connection_signal_subscribe (ctl->bus, AGENT_NAME, JOB_IFACE, "CutoverFinished",
                                                         w->job_path, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                         on_cutover_finished, w, NULL);
      sub_job = g_dbus_connection_signal_subscribe (ctl->bus, AGENT_NAME, "org.freedesktop.DBus.Properties",
                                                    "PropertiesChanged", w->job_path, JOB_IFACE,
                                                    G_DBUS_SIGNAL_FLAGS_NONE, on_job_changed, w, NULL);
      cutover_progress (w);
    }
  else
    deploy_progress (w);
  guint tick = g_timeout_add (1000, on_wait_tick, w);
  guint timeout = ctl->timeout_sec > 0 ? g_timeout_add_seconds (ctl->timeout_sec, on_wait_timeout, w) : 0;
  if (!w->finished)
    g_main_loop_run (w->loop);
  g_source_remove (tick);
  if (timeout != 0 && g_main_context_find_source_by_id (NULL, timeout) != NULL)
    g_source_remove (timeout);
  if (sub_props)
    g_dbus_connection_signal_unsubscribe (ctl->bus, sub_props);
  if (sub_finished)
    g_dbus_connection_signal_unsubscribe (ctl->bus, sub_finished);
  if (sub_job)
    g_dbus_connection_signal_unsubscribe (ctl->bus, sub_job);
  return w->result;
}

/* ---- deploy, cutover, rollback ------------------------------------------ */

static int
verb_deploy (Ctl *ctl, int argc, char **argv)
{
  if (argc != 3)
    {
      print_error (_("usage: deploy JOB VERSION [--from=scratch|savepoint] [--live] [--auto-cutover] [--wait]"));
      return BGCTL_EXIT_USAGE;
    }
  if (!bg_version_is_valid (argv[2]))
    {
      print_error (_("'%s' is not a valid version (1 to 64 of A-Z a-z 0-9 . _ + ~ -, not starting with . or -)"), argv[2]);
      return BGCTL_EXIT_USAGE;
    }
  if (ctl->from != NULL && !g_str_equal (ctl->from, "scratch") && !g_str_equal (ctl->from, "savepoint"))
    {
      print_error (_("--from must be scratch or savepoint, not '%s'"), ctl->from);
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  g_autofree char *path = job_path (ctl, argv[1], &code);
  if (path == NULL)
    return code;
  GVariantBuilder opts;
  g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
  if (ctl->from != NULL)
    g_variant_builder_add (&opts, "{sv}", "from", g_variant_new_string (ctl->from));
  if (ctl->auto_cutover)
    g_variant_builder_add (&opts, "{sv}", "auto_cutover", g_variant_new_boolean (TRUE));
  if (ctl->auto_rollback)
    g_variant_builder_add (&opts, "{sv}", "auto_rollback", g_variant_new_boolean (TRUE));
  if (ctl->force)
    g_variant_builder_add (&opts, "{sv}", "force", g_variant_new_boolean (TRUE));
  if (ctl->live)
    g_variant_builder_add (&opts, "{sv}", "live", g_variant_new_boolean (TRUE));
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) r = call_agent (ctl, path, JOB_IFACE, "Deploy",
                                       g_variant_new ("(sa{sv})", argv[2], &opts),
                                       G_VARIANT_TYPE ("(o)"), &error);
  if (r == NULL)
    return report_call_error (ctl, error);
  const char *slot_path;
  g_variant_get (r, "(&o)", &slot_path);
  if (!ctl->json && !ctl->quiet)
    printf (_("deploying %s version %s (%s)\n"), argv[1], argv[2], slot_path);
  if (!ctl->wait)
    return print_ok_json (ctl, "deploy", "slot", slot_path);
  g_auto (Waiter) w = { .ctl = ctl, .job_path = g_strdup (path), .slot_path = g_strdup (slot_path) };
  int rc = run_wait (ctl, &w);
  if (rc == BGCTL_EXIT_OK)
    print_ok_json (ctl, "deploy", "slot", slot_path);
  return rc;
}

static int
switch_verb (Ctl *ctl, int argc, char **argv, const char *method)
{
  if (argc != 2)
    {
      print_error (_("usage: %s JOB [--wait]"), argv[0]);
      return BGCTL_EXIT_USAGE;
    }
  int code = BGCTL_EXIT_OK;
  g_autofree char *path = job_path (ctl, argv[1], &code);
  if (path == NULL)
    return code;
  g_auto (Waiter) w = { .ctl = ctl, .job_path = g_strdup (path) };
  if (ctl->wait)
    {
      /* Subscribe before the call so a fast cutover cannot finish unseen. */
      w.cutover_id = g_strdup ("");
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) r = NULL;
  gint64 give_up = ctl->timeout_sec > 0 ? g_get_monotonic_time () + ctl->timeout_sec * G_USEC_PER_SEC : G_MAXINT64;
  g_autofree char *said = NULL;
  while ((r = call_agent (ctl, path, JOB_IFACE, method,
                          g_variant_new ("(@a{sv})", g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                          G_VARIANT_TYPE ("(s)"), &error)) == NULL)
    {
      /* With --wait, "not yet" is part of the wait: a host's readiness or
       * hello reaches this agent through the control log a heartbeat after
       * that host's own deploy --wait returned, and an agent still reading
       * the log says Busy. Asked again every half second (saying why once
       * per new reason) until --timeout; any other refusal is final. */
      g_autofree char *name = g_dbus_error_get_remote_error (error);
      gboolean not_yet = g_strcmp0 (name, "org.bluegreen.Error.NotReady") == 0
                         || g_strcmp0 (name, "org.bluegreen.Error.HostSilent") == 0
                         || (g_strcmp0 (name, "org.bluegreen.Error.Busy") == 0 && strstr (error->message, "replaying") != NULL);
      if (!ctl->wait || !not_yet || g_get_monotonic_time () + 500 * G_TIME_SPAN_MILLISECOND > give_up)
        return report_call_error (ctl, error);
      g_dbus_error_strip_remote_error (error);
      if (!ctl->json && !ctl->quiet && g_strcmp0 (said, error->message) != 0)
        printf ("%s: %s (%s)\n", argv[0], error->message, _("waiting"));
      g_free (said);
      said = g_strdup (error->message);
      g_clear_error (&error);
      g_usleep (500 * G_TIME_SPAN_MILLISECOND);
    }
  const char *id;
  g_variant_get (r, "(&s)", &id);
  if (!ctl->wait)
    {
      if (!ctl->json && !ctl->quiet)
        printf ("%s %s\n", argv[0], id);
      return print_ok_json (ctl, argv[0], "id", id);
    }
  if (!ctl->json && !ctl->quiet)
    printf ("%s %s %s\n", argv[0], id, _("started"));
  g_free (w.cutover_id);
  w.cutover_id = g_strdup (id);
  /* The decision may already be in: LastCutover tells. */
  g_autoptr (GVariant) job = get_all (ctl, path, JOB_IFACE);
  g_autoptr (GVariant) last = job ? g_variant_lookup_value (job, "LastCutover", G_VARIANT_TYPE ("(ssssstta(six))")) : NULL;
  if (last != NULL)
    {
      const char *lid, *out, *in, *result, *reason;
      guint64 s, d;
      g_autoptr (GVariant) barriers = NULL;
      g_variant_get (last, "(&s&s&s&s&stt@a(six))", &lid, &out, &in, &result, &reason, &s, &d, &barriers);
      if (g_str_equal (lid, id) && (g_str_equal (result, "done") || g_str_equal (result, "aborted")))
        {
          if (!ctl->json && !ctl->quiet)
            printf ("%s %s: %s%s%s\n", argv[0], id, result, *reason ? ": " : "", reason);
          return g_str_equal (result, "done") ? print_ok_json (ctl, argv[0], "id", id) : BGCTL_EXIT_WAIT_FAILED;
        }
    }
  return run_wait (ctl, &w);
}

static int
verb_cutover (Ctl *ctl, int argc, char **argv)
{
  return switch_verb (ctl, argc, argv, "Cutover");
}

static int
verb_rollback (Ctl *ctl, int argc, char **argv)
{
  return switch_verb (ctl, argc, argv, "Rollback");
}

/* ---- the verb table -------------------------------------------------------- */

typedef struct {
  const char *name;
  int (*run) (Ctl *ctl, int argc, char **argv);
  const char *synopsis;
  const char *summary;
} Verb;

static const Verb verbs[] = {
  { "status", verb_status, "[JOB]", N_("Show jobs, slots and the last cutover (default)") },
  { "list", verb_list, "", N_("List the configured jobs") },
  { "deploy", verb_deploy, "JOB VERSION", N_("Start VERSION in the non-live slot, blackholed") },
  { "cutover", verb_cutover, "JOB", N_("Switch the live version fleet-wide, exactly") },
  { "rollback", verb_rollback, "JOB", N_("Switch back during the observation window") },
  { "abort", verb_abort, "JOB", N_("Abort an undecided cutover") },
  { "sink", verb_sink, "JOB COLOR live|blackhole", N_("Flip a slot's sink on this host only") },
  { "retire", verb_retire, "JOB COLOR", N_("Stop a non-live slot") },
  { "hosts", verb_hosts, "[JOB]", N_("Show the hosts expected in each job's cutovers") },
  { "reload", verb_reload, "", N_("Re-read the agent's configuration") },
};

static char *
verbs_help (void)
{
  GString *s = g_string_new (_("Verbs:"));
  g_string_append_c (s, '\n');
  for (size_t i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_autofree char *left = g_strdup_printf ("%s %s", verbs[i].name, verbs[i].synopsis);
      g_string_append_printf (s, "  %-34s %s\n", left, _(verbs[i].summary));
    }
  g_string_append_printf (s, "\n%s\n", _("Exit status: 0 ok, 1 failed, 2 bad usage, 3 agent not running, 4 no such job, 5 a waited-for operation failed."));
  return g_string_free (s, FALSE);
}

int
bgctl_main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  const char *localedir = g_getenv ("BLUEGREEN_LOCALEDIR");
  bindtextdomain (GETTEXT_PACKAGE, localedir ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  /* Progress lines (deploy --wait, cutover --wait) must reach a pipe or a
   * log as they happen, and in order with the error lines on stderr. */
  setvbuf (stdout, NULL, _IOLBF, 0);

  Ctl ctl = { .timeout_sec = 0 };
  gboolean no_color = FALSE;
  const GOptionEntry entries[] = {
    { "user", 0, 0, G_OPTION_ARG_NONE, &ctl.user, N_("Talk to the agent on the session bus (user manager)"), NULL },
    { "system", 0, 0, G_OPTION_ARG_NONE, &ctl.system, N_("Talk to the agent on the system bus (default)"), NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl.json, N_("Print JSON for programs"), NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &ctl.quiet, N_("Print nothing but errors"), NULL },
    { "no-pager", 0, 0, G_OPTION_ARG_NONE, &ctl.no_pager, N_("Do not pipe output into a pager (the default: none is used)"), NULL },
    { "no-color", 0, 0, G_OPTION_ARG_NONE, &no_color, N_("Never use colour"), NULL },
    { "wait", 0, 0, G_OPTION_ARG_NONE, &ctl.wait, N_("deploy, cutover, rollback: wait for the end, showing progress"), NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &ctl.timeout_sec, N_("With --wait: give up after SECONDS (0: never)"), N_("SECONDS") },
    { "from", 0, 0, G_OPTION_ARG_STRING, &ctl.from, N_("deploy: start from scratch or from a savepoint of the live slot"), "scratch|savepoint" },
    { "auto-cutover", 0, 0, G_OPTION_ARG_NONE, &ctl.auto_cutover, N_("deploy: cut over once Ready on every host"), NULL },
    { "auto-rollback", 0, 0, G_OPTION_ARG_NONE, &ctl.auto_rollback, N_("deploy: roll back if the new version fails while observed"), NULL },
    { "live", 0, 0, G_OPTION_ARG_NONE, &ctl.live, N_("deploy: the job's first version: start it live"), NULL },
    { "force", 0, 0, G_OPTION_ARG_NONE, &ctl.force, N_("deploy: start even if the host lacks the memory the slot reserves"), NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new (_("[VERB] [ARGUMENTS]"));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context, _("Control bluegreen, blue-green deployments of stateful streaming jobs."));
  g_autofree char *desc = verbs_help ();
  g_option_context_set_description (context, desc);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) args = g_strdupv (argv);
  int n_args = argc;
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      print_error ("%s (see --help)", error->message);
      ctl_clear (&ctl);
      return BGCTL_EXIT_USAGE;
    }
  n_args = (int) g_strv_length (args);
  if (ctl.user && ctl.system)
    {
      print_error (_("--user and --system exclude each other"));
      ctl_clear (&ctl);
      return BGCTL_EXIT_USAGE;
    }
  ctl.use_color = !no_color && !ctl.json && isatty (STDOUT_FILENO) && g_getenv ("NO_COLOR") == NULL;

  const Verb *verb = &verbs[0];
  char *default_argv[] = { (char *) "status", NULL };
  char **verb_argv = default_argv;
  int verb_argc = 1;
  if (n_args > 1)
    {
      verb = NULL;
      for (size_t i = 0; i < G_N_ELEMENTS (verbs); i++)
        if (g_str_equal (args[1], verbs[i].name))
          verb = &verbs[i];
      if (verb == NULL)
        {
          print_error (_("unknown verb '%s' (see --help)"), args[1]);
          ctl_clear (&ctl);
          return BGCTL_EXIT_USAGE;
        }
      verb_argv = args + 1;
      verb_argc = n_args - 1;
    }
  int code = verb->run (&ctl, verb_argc, verb_argv);
  ctl_clear (&ctl);
  return code;
}
