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
 * in object paths, unit names and file names. The option dictionaries
 * (a{sv}) are walked as a handler walks them; their checks (known keys,
 * value types) are static in src/daemon/job.c and not reachable from
 * here.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
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
      break;
    case M_RETIRE:
      g_variant_get (args, "(&s)", &s1);
      check_color (s1);
      break;
    case M_DEPLOY:
      g_variant_get (args, "(&s@a{sv})", &s1, &container);
      check_version (s1);
      walk_options (container);
      break;
    case M_SET_SINK_MODE:
      g_variant_get (args, "(&s&s)", &s1, &s2);
      check_color (s1);
      check_mode (s2);
      break;
    case M_CUTOVER:
    case M_ROLLBACK:
      g_variant_get (args, "(@a{sv})", &container);
      walk_options (container);
      break;
    case M_REPORT_PROGRESS:
      g_variant_get (args, "(@a(six)tttx)", &container, &t1, &t2, &t3, &x);
      walk_positions (container);
      break;
    case M_REPORT_DELIVERED:
      g_variant_get (args, "(@a(six))", &container);
      walk_positions (container);
      break;
    case M_PLAN_ARMED:
      g_variant_get (args, "(&sb&s)", &s1, &b, &s2);
      check_id (s1);
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
