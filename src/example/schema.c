/* schema.c — the example job's schema registration, a side effect guarded
 * by bg_gate_side_effects_allowed() (see schema.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "example/schema.h"

#include <json-glib/json-glib.h>

/* One job per process: the state of its one registration. */
static gboolean registered;
static gboolean deferral_logged;

static char *
schema_json (const char *output, const char *version, const char *color)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  static const char *const fields[] = { "topic", "partition", "offset", "key", "count", "sum", "color", "version" };

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "subject");
  json_builder_add_string_value (b, output);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, version);
  json_builder_set_member_name (b, "registered_by");
  json_builder_add_string_value (b, color);
  json_builder_set_member_name (b, "fields");
  json_builder_begin_array (b);
  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    json_builder_add_string_value (b, fields[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

void
bg_example_schema_poll (BgGate *gate, const char *output, const char *version, const char *color)
{
  const char *dir;
  g_autofree char *path = NULL;
  g_autofree char *name = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  if (registered || gate == NULL)
    return;
  dir = g_getenv (BG_EXAMPLE_SCHEMA_DIR_ENV);
  if (dir == NULL || *dir == '\0')
    return;
  /* The guard: a blackholed (or not yet fully live) version registers
   * nothing; we ask again on the next call, so a flip to live is enough. */
  if (!bg_gate_side_effects_allowed (gate))
    {
      if (!deferral_logged)
        g_message ("schema registration deferred: side effects are not allowed in this mode");
      deferral_logged = TRUE;
      return;
    }
  name = g_strdup_printf ("%s.schema.json", output);
  path = g_build_filename (dir, name, NULL);
  text = schema_json (output, version, color);
  if (!g_file_set_contents (path, text, -1, &error))
    {
      g_message ("schema registration failed (tried again later): %s", error->message);
      return;
    }
  registered = TRUE;
  g_message ("schema of %s registered in %s (version %s)", output, dir, version);
}
