/* dbus-args.c — validation of D-Bus method arguments (see dbus-args.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/dbus-args.h"

#include <string.h>

G_DEFINE_QUARK (bg-dbus-args-error-quark, bg_dbus_args_error)

const BgOptionSpec bg_deploy_options[] = {
  { "from", "s" }, { "live", "b" }, { "force", "b" }, { "auto_cutover", "b" }, { "auto_rollback", "b" },
};
const gsize bg_deploy_options_len = G_N_ELEMENTS (bg_deploy_options);

const BgOptionSpec bg_cutover_options[] = {
  { "deadline_ms", "u" }, { "lead_ms", "u" },
};
const gsize bg_cutover_options_len = G_N_ELEMENTS (bg_cutover_options);

/* Strings from a client end up in messages: never let invalid UTF-8 or a
 * novel through. */
static char *
shown (const char *s)
{
  g_autofree char *valid = g_utf8_make_valid (s, -1);
  if (g_utf8_strlen (valid, -1) <= 80)
    return g_steal_pointer (&valid);
  return g_strdup_printf ("%.*s...", (int) (g_utf8_offset_to_pointer (valid, 80) - valid), valid);
}

gboolean
bg_dbus_args_check_options (GVariant *options, const BgOptionSpec *specs, gsize n_specs,
                            const char *method, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (!g_variant_is_of_type (options, G_VARIANT_TYPE ("a{sv}")))
    {
      g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                   "options: must be of type 'a{sv}', not '%s'", g_variant_get_type_string (options));
      return FALSE;
    }
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      gsize i;

      for (i = 0; i < n_specs; i++)
        if (g_str_equal (key, specs[i].name))
          break;
      if (i == n_specs)
        {
          g_autofree char *k = shown (key);
          g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_UNKNOWN_OPTION,
                       "options: '%s' is not an option of %s", k, method);
          g_variant_unref (value);
          return FALSE;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (specs[i].type)))
        {
          g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                       "options: '%s' must be of type '%s', not '%s'", key, specs[i].type,
                       g_variant_get_type_string (value));
          g_variant_unref (value);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
bg_dbus_args_parse_deploy_options (GVariant *options, const char **from, gboolean *live,
                                   gboolean *auto_cutover, gboolean *auto_rollback, GError **error)
{
  const char *f = "scratch";
  gboolean l = FALSE, ac = FALSE, ar = FALSE;

  if (!bg_dbus_args_check_options (options, bg_deploy_options, bg_deploy_options_len, "Deploy", error))
    return FALSE;
  g_variant_lookup (options, "from", "&s", &f);
  g_variant_lookup (options, "live", "b", &l);
  g_variant_lookup (options, "auto_cutover", "b", &ac);
  g_variant_lookup (options, "auto_rollback", "b", &ar);
  if (!g_str_equal (f, "scratch") && !g_str_equal (f, "savepoint"))
    {
      g_autofree char *v = shown (f);
      g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                   "options: 'from' must be 'scratch' or 'savepoint', not '%s'", v);
      return FALSE;
    }
  if ((ac || ar) && l)
    {
      g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                   "options: '%s' is for a candidate version, not with 'live'",
                   ac ? "auto_cutover" : "auto_rollback");
      return FALSE;
    }
  if (from != NULL)
    *from = f;
  if (live != NULL)
    *live = l;
  if (auto_cutover != NULL)
    *auto_cutover = ac;
  if (auto_rollback != NULL)
    *auto_rollback = ar;
  return TRUE;
}

gboolean
bg_dbus_args_parse_cutover_options (GVariant *options, const char *method, guint32 *deadline_ms,
                                    gboolean *have_lead, guint32 *lead_ms, GError **error)
{
  guint32 d = 0, l = 0;
  gboolean hl;

  if (!bg_dbus_args_check_options (options, bg_cutover_options, bg_cutover_options_len, method, error))
    return FALSE;
  g_variant_lookup (options, "deadline_ms", "u", &d);
  hl = g_variant_lookup (options, "lead_ms", "u", &l);
  if (deadline_ms != NULL)
    *deadline_ms = d;
  if (have_lead != NULL)
    *have_lead = hl;
  if (lead_ms != NULL)
    *lead_ms = l;
  return TRUE;
}

gboolean
bg_dbus_args_parse_color (const char *arg, const char *s, BgColor *out, GError **error)
{
  g_autofree char *v = NULL;

  if (bg_color_from_string (s, out))
    return TRUE;
  v = shown (s);
  g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
               "%s: '%s' is not a color (blue or green)", arg, v);
  return FALSE;
}

gboolean
bg_dbus_args_check_sink_mode (const char *arg, const char *s, GError **error)
{
  g_autofree char *v = NULL;

  if (g_str_equal (s, "live") || g_str_equal (s, "blackhole"))
    return TRUE;
  v = shown (s);
  g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
               "%s: '%s' is not a sink mode SetSinkMode takes (live or blackhole)", arg, v);
  return FALSE;
}

gboolean
bg_dbus_args_check_version (const char *arg, const char *s, GError **error)
{
  g_autofree char *v = NULL;

  if (bg_version_is_valid (s))
    return TRUE;
  v = shown (s);
  g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
               "%s: '%s' is not a valid version (1..64 of [A-Za-z0-9._+~-], "
               "not starting with '.' or '-')", arg, v);
  return FALSE;
}

gboolean
bg_dbus_args_check_name (const char *arg, const char *what, const char *s, GError **error)
{
  g_autofree char *v = NULL;

  if (bg_name_is_valid (s))
    return TRUE;
  v = shown (s);
  g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
               "%s: '%s' is not a valid %s", arg, v, what);
  return FALSE;
}

gboolean
bg_dbus_args_check_id (const char *arg, const char *s, GError **error)
{
  g_autofree char *v = NULL;

  if (bg_id_is_valid (s))
    return TRUE;
  v = shown (s);
  g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
               "%s: '%s' is not a valid cutover id", arg, v);
  return FALSE;
}

gboolean
bg_dbus_args_topic_is_valid (const char *topic)
{
  gsize len = strlen (topic);

  if (len < 1 || len > 249 || g_str_equal (topic, ".") || g_str_equal (topic, ".."))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (topic[i]) && topic[i] != '.' && topic[i] != '_' && topic[i] != '-')
      return FALSE;
  return TRUE;
}

gboolean
bg_dbus_args_check_offsets (const char *arg, GVariant *offsets, const char *const *topics,
                            gint64 min_offset, GError **error)
{
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 offset;
  gsize n;

  if (!g_variant_is_of_type (offsets, G_VARIANT_TYPE ("a(six)")))
    {
      g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                   "%s: must be of type 'a(six)', not '%s'", arg, g_variant_get_type_string (offsets));
      return FALSE;
    }
  n = g_variant_n_children (offsets);
  if (n > BG_DBUS_ARGS_MAX_OFFSETS)
    {
      g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                   "%s: %" G_GSIZE_FORMAT " entries, at most %d", arg, n, BG_DBUS_ARGS_MAX_OFFSETS);
      return FALSE;
    }
  g_variant_iter_init (&iter, offsets);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
    {
      if (!bg_dbus_args_topic_is_valid (topic))
        {
          g_autofree char *v = shown (topic);
          g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                       "%s: '%s' is not a valid topic name", arg, v);
          return FALSE;
        }
      if (topics != NULL && !g_strv_contains (topics, topic))
        {
          g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                       "%s: '%s' is not an input topic of this job", arg, topic);
          return FALSE;
        }
      if (partition < 0 || offset < min_offset)
        {
          g_set_error (error, BG_DBUS_ARGS_ERROR, BG_DBUS_ARGS_ERROR_INVALID_ARGS,
                       "%s: %s [%d] at %" G_GINT64_FORMAT ": partitions must be >= 0 and offsets >= %"
                       G_GINT64_FORMAT, arg, topic, partition, offset, min_offset);
          return FALSE;
        }
    }
  return TRUE;
}
