/* fuzz-dbus-args.c — libFuzzer target for the validation of D-Bus method
 * arguments: the part of it that is pure and lives outside the daemon, the
 * name validators of src/common/names.c.
 *
 * The first input byte picks a method of data/org.bluegreen.Agent1.xml,
 * the rest is that method's body in D-Bus (GVariant) serialisation; it is
 * deserialised as an untrusted message body is (g_variant_new_from_data,
 * trusted = FALSE, then the normal form GDBus hands to a handler), and the
 * strings that name a job, host, color, version or cutover id go through
 * the validators the daemon uses. Each validator is checked against the
 * grammar names.h documents, written out here independently: they must
 * agree on every input, since whatever a validator lets through ends up
 * in object paths, unit names and file names. The argument checks the
 * agent's handlers make (src/common/dbus-args.c: option dictionaries with
 * their known keys and types, colors, sink modes, versions, names, ids,
 * and the bounded (topic, partition, offset) reports of ReportProgress and
 * ReportDelivered) are run on every body too, each against an oracle
 * written out here from the XML's documentation: accept exactly what it
 * allows, and refuse with the documented error (UnknownOption for a key
 * the method does not know, InvalidArgs otherwise).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/dbus-args.h"
#include "common/names.h"

#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

#define require(cond) \
  do { if (!(cond)) abort (); } while (0)

/* ---- the documented grammars (names.h), independent of names.c ----------- */

static gboolean
in_set (char c, const char *set)
{
  return c != '\0' && strchr (set, c) != NULL;
}

#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM LOWER_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* [a-z0-9][a-z0-9._-]{0,63} */
static gboolean
grammar_name (const char *s)
{
  size_t len = strlen (s);
  if (len < 1 || len > 64 || !in_set (s[0], LOWER_ALNUM))
    return FALSE;
  for (size_t i = 1; i < len; i++)
    if (!in_set (s[i], LOWER_ALNUM "._-"))
      return FALSE;
  return TRUE;
}

/* 1..64 of [A-Za-z0-9._+~-], not starting with '.' or '-' */
static gboolean
grammar_version (const char *s)
{
  size_t len = strlen (s);
  if (len < 1 || len > 64 || s[0] == '.' || s[0] == '-')
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!in_set (s[i], ALNUM "._+~-"))
      return FALSE;
  return TRUE;
}

/* 1..64 of [A-Za-z0-9._-] */
static gboolean
grammar_id (const char *s)
{
  size_t len = strlen (s);
  if (len < 1 || len > 64)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!in_set (s[i], ALNUM "._-"))
      return FALSE;
  return TRUE;
}

/* ---- what a handler does with each kind of argument ----------------------- */

static void
check_name (const char *s)
{
  gboolean valid = bg_name_is_valid (s);
  require (valid == grammar_name (s));
  if (!valid)
    return;
  /* A valid job name makes a valid object path and unit name part. */
  g_autofree char *escaped = g_dbus_escape_object_path (s);
  g_autofree char *path = g_strconcat ("/org/bluegreen/Agent1/job/", escaped, NULL);
  require (g_variant_is_object_path (path));
  require (strchr (s, '/') == NULL && strcmp (s, "..") != 0);
}

static void
check_version (const char *s)
{
  gboolean valid = bg_version_is_valid (s);
  require (valid == grammar_version (s));
  /* Versions name savepoint and log files: never a path of their own. */
  if (valid)
    require (strchr (s, '/') == NULL && strcmp (s, ".") != 0 && strcmp (s, "..") != 0);
}

static void
check_id (const char *s)
{
  require (bg_id_is_valid (s) == grammar_id (s));
}

static void
check_color (const char *s)
{
  BgColor color = (BgColor) 7;
  gboolean valid = bg_color_from_string (s, &color);
  require (valid == (strcmp (s, "blue") == 0 || strcmp (s, "green") == 0));
  if (!valid)
    return;
  require (strcmp (bg_color_to_string (color), s) == 0);
  require (bg_color_other (bg_color_other (color)) == color && bg_color_other (color) != color);
}

static void
check_mode (const char *s)
{
  /* Sink modes are parsed in the daemon; only the colors around them are
   * pure today. Every name is also put through the other validators, which
   * must not care what kind of string they are given. */
  check_name (s);
  check_version (s);
  check_id (s);
}

static void
walk_options (GVariant *options)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      require (key != NULL && g_utf8_validate (key, -1, NULL));
      require (g_variant_type_string_is_valid (g_variant_get_type_string (value)));
    }
}

static void
walk_positions (GVariant *positions)
{
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 offset;

  g_variant_iter_init (&iter, positions);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
    require (topic != NULL && g_utf8_validate (topic, -1, NULL));
}

/* ---- the argument checks of the handlers (dbus-args.c) against oracles ---- */

static const char *const input_topics[] = { "clicks", "input.v2", NULL };

/* The error a check gave, or -1 if it accepted. */
static int
outcome (gboolean ok, GError *error)
{
  if (ok)
    {
      require (error == NULL);
      return -1;
    }
  require (error != NULL && error->domain == BG_DBUS_ARGS_ERROR);
  require (error->message != NULL && g_utf8_validate (error->message, -1, NULL));
  return error->code;
}

/* What an options dictionary deserves: -1 if acceptable, else the code. */
static int
oracle_options (GVariant *options, const char *const *keys, const char *const *types)
{
  GVariantIter iter;
  const char *key;
  GVariant *value = NULL;
  int verdict = -1;

  g_variant_iter_init (&iter, options);
  while (verdict == -1 && g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      guint i;
      for (i = 0; keys[i] != NULL && strcmp (keys[i], key) != 0; i++)
        ;
      if (keys[i] == NULL)
        verdict = BG_DBUS_ARGS_ERROR_UNKNOWN_OPTION;
      else if (strcmp (g_variant_get_type_string (value), types[i]) != 0)
        verdict = BG_DBUS_ARGS_ERROR_INVALID_ARGS;
    }
  if (verdict != -1 && value != NULL)
    g_variant_unref (value);
  return verdict;
}

static void
check_deploy_options (GVariant *options)
{
  static const char *const keys[] = { "from", "live", "force", "auto_cutover", "auto_rollback", NULL };
  static const char *const types[] = { "s", "b", "b", "b", "b" };
  g_autoptr(GError) error = NULL;
  const char *from = NULL;
  gboolean live = FALSE, ac = FALSE, ar = FALSE;
  int expected = oracle_options (options, keys, types);
  int got = outcome (bg_dbus_args_parse_deploy_options (options, &from, &live, &ac, &ar, &error), error);

  if (expected == -1)
    {
      const char *f = "scratch";
      gboolean l = FALSE, a1 = FALSE, a2 = FALSE;
      g_variant_lookup (options, "from", "&s", &f);
      g_variant_lookup (options, "live", "b", &l);
      g_variant_lookup (options, "auto_cutover", "b", &a1);
      g_variant_lookup (options, "auto_rollback", "b", &a2);
      if ((strcmp (f, "scratch") != 0 && strcmp (f, "savepoint") != 0) || ((a1 || a2) && l))
        expected = BG_DBUS_ARGS_ERROR_INVALID_ARGS;
      else
        require (got == -1 && strcmp (from, f) == 0 && live == l && ac == a1 && ar == a2);
    }
  require (got == expected);
}

static void
check_cutover_options (GVariant *options)
{
  static const char *const keys[] = { "deadline_ms", "lead_ms", NULL };
  static const char *const types[] = { "u", "u" };
  g_autoptr(GError) error = NULL;
  guint32 d = 7, l = 7;
  gboolean have_lead = FALSE;
  int expected = oracle_options (options, keys, types);
  int got = outcome (bg_dbus_args_parse_cutover_options (options, "Cutover", &d, &have_lead, &l, &error), error);

  require (got == expected);
  if (got == -1)
    {
      guint32 d2 = 0, l2 = 0;
      gboolean h2;
      g_variant_lookup (options, "deadline_ms", "u", &d2);
      h2 = g_variant_lookup (options, "lead_ms", "u", &l2);
      require (d == d2 && l == l2 && have_lead == h2);
    }
}

static void
check_color_arg (const char *s)
{
  g_autoptr(GError) error = NULL;
  BgColor c = (BgColor) 7;
  int got = outcome (bg_dbus_args_parse_color ("color", s, &c, &error), error);
  gboolean valid = strcmp (s, "blue") == 0 || strcmp (s, "green") == 0;

  require (got == (valid ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
  if (valid)
    require (strcmp (bg_color_to_string (c), s) == 0);
  check_color (s);
}

static void
check_mode_arg (const char *s)
{
  g_autoptr(GError) error = NULL;
  int got = outcome (bg_dbus_args_check_sink_mode ("mode", s, &error), error);

  require (got == (strcmp (s, "live") == 0 || strcmp (s, "blackhole") == 0 ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
  check_mode (s);
}

static void
check_string_args (const char *s)
{
  g_autoptr(GError) e1 = NULL;
  g_autoptr(GError) e2 = NULL;
  g_autoptr(GError) e3 = NULL;

  require (outcome (bg_dbus_args_check_name ("name", "job name", s, &e1), e1)
           == (grammar_name (s) ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
  require (outcome (bg_dbus_args_check_version ("version", s, &e2), e2)
           == (grammar_version (s) ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
  require (outcome (bg_dbus_args_check_id ("id", s, &e3), e3)
           == (grammar_id (s) ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
}

/* [A-Za-z0-9._-]{1,249}, not "." or ".." */
static gboolean
grammar_topic (const char *s)
{
  size_t len = strlen (s);
  if (len < 1 || len > 249 || strcmp (s, ".") == 0 || strcmp (s, "..") == 0)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!in_set (s[i], ALNUM "._-"))
      return FALSE;
  return TRUE;
}

static void
check_offsets (GVariant *offsets, gint64 min_offset)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error2 = NULL;
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 offset;
  gboolean ok = g_variant_n_children (offsets) <= BG_DBUS_ARGS_MAX_OFFSETS;
  gboolean ok_any_topic = ok;

  g_variant_iter_init (&iter, offsets);
  while (ok_any_topic && g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
    {
      gboolean fine = grammar_topic (topic) && partition >= 0 && offset >= min_offset;
      ok_any_topic = fine;
      if (ok && (!fine || !g_strv_contains (input_topics, topic)))
        ok = FALSE;
      require (bg_dbus_args_topic_is_valid (topic) == grammar_topic (topic));
    }
  require (outcome (bg_dbus_args_check_offsets ("positions", offsets, input_topics, min_offset, &error), error)
           == (ok ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
  require (outcome (bg_dbus_args_check_offsets ("positions", offsets, NULL, min_offset, &error2), error2)
           == (ok_any_topic ? -1 : BG_DBUS_ARGS_ERROR_INVALID_ARGS));
}

/* The in-arguments of every method that takes any, as in the XML. */
typedef enum {
  M_GET_JOB, M_DEPLOY, M_RETIRE, M_SET_SINK_MODE, M_CUTOVER, M_ROLLBACK,
  M_EVICT_HOST, M_REPORT_PROGRESS, M_PLAN_ARMED, M_REPORT_DELIVERED,
  M_SAVEPOINT_DONE, N_METHODS
} Method;

static const char *const signatures[N_METHODS] = {
  [M_GET_JOB] = "(s)",
  [M_DEPLOY] = "(sa{sv})",
  [M_RETIRE] = "(s)",
  [M_SET_SINK_MODE] = "(ss)",
  [M_CUTOVER] = "(a{sv})",
  [M_ROLLBACK] = "(a{sv})",
  [M_EVICT_HOST] = "(s)",
  [M_REPORT_PROGRESS] = "(a(six)tttx)",
  [M_PLAN_ARMED] = "(sbs)",
  [M_REPORT_DELIVERED] = "(a(six))",
  [M_SAVEPOINT_DONE] = "(sbs)",
};

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  if (size < 1)
    return 0;
  Method m = (Method) (data[0] % N_METHODS);
  /* GVariant wants the body aligned as a message buffer is: a copy. */
  g_autoptr (GBytes) body = g_bytes_new (data + 1, size - 1);
  g_autoptr (GVariant) raw = g_variant_ref_sink (
    g_variant_new_from_bytes (G_VARIANT_TYPE (signatures[m]), body, FALSE));
  g_autoptr (GVariant) args = g_variant_get_normal_form (raw);
  require (g_variant_is_of_type (args, G_VARIANT_TYPE (signatures[m])));

  const char *s1 = NULL, *s2 = NULL;
  gboolean b = FALSE;
  guint64 t1, t2, t3;
  gint64 x;
  g_autoptr (GVariant) container = NULL;

  switch (m)
    {
    case M_GET_JOB:
    case M_EVICT_HOST:
      g_variant_get (args, "(&s)", &s1);
      check_name (s1);
      check_string_args (s1);
      break;
    case M_RETIRE:
      g_variant_get (args, "(&s)", &s1);
      check_color_arg (s1);
      break;
    case M_DEPLOY:
      g_variant_get (args, "(&s@a{sv})", &s1, &container);
      check_version (s1);
      check_string_args (s1);
      walk_options (container);
      check_deploy_options (container);
      break;
    case M_SET_SINK_MODE:
      g_variant_get (args, "(&s&s)", &s1, &s2);
      check_color_arg (s1);
      check_mode_arg (s2);
      break;
    case M_CUTOVER:
    case M_ROLLBACK:
      g_variant_get (args, "(@a{sv})", &container);
      walk_options (container);
      check_cutover_options (container);
      break;
    case M_REPORT_PROGRESS:
      g_variant_get (args, "(@a(six)tttx)", &container, &t1, &t2, &t3, &x);
      walk_positions (container);
      check_offsets (container, -1);
      break;
    case M_REPORT_DELIVERED:
      g_variant_get (args, "(@a(six))", &container);
      walk_positions (container);
      check_offsets (container, 0);
      break;
    case M_PLAN_ARMED:
      g_variant_get (args, "(&sb&s)", &s1, &b, &s2);
      check_id (s1);
      check_string_args (s1);
      break;
    case M_SAVEPOINT_DONE:
      g_variant_get (args, "(&sb&s)", &s1, &b, &s2);
      require (g_utf8_validate (s1, -1, NULL) && g_utf8_validate (s2, -1, NULL));
      break;
    case N_METHODS:
      break;
    }
  return 0;
}
