/* bluegreen-verify — the end-to-end exactly-once verifier (see verifier.h).
 *
 * Exit status: 0 clean; 1 a gap, cross-version duplicate, wrong state,
 * malformed result or barrier violation (order violations with
 * --strict-order, within-version duplicates with --strict-dups, both with
 * --transactional);
 * 2 usage or Kafka errors, or an input topic whose start was dropped
 * (without --allow-truncated).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "verify/reader.h"

#include <locale.h>
#include <stdio.h>

typedef struct {
  char *outgoing, *incoming;
  GArray *barriers; /* pairs of int64: partition, offset */
} Setup;

static gboolean
parse_barriers (const char *spec, GArray *out, GError **error)
{
  g_auto (GStrv) items = g_strsplit (spec, ",", -1);
  for (char **it = items; *it != NULL; it++)
    {
      g_auto (GStrv) pair = g_strsplit (g_strstrip (*it), ":", 2);
      guint64 p, off;
      if (g_strv_length (pair) != 2
          || !g_ascii_string_to_unsigned (pair[0], 10, 0, 65535, &p, NULL)
          || !g_ascii_string_to_unsigned (pair[1], 10, 0, G_MAXINT64, &off, NULL))
        {
          g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_USAGE,
                       "--expect-barrier: '%s' is not PARTITION:OFFSET", *it);
          return FALSE;
        }
      int64_t pv[2] = { (int64_t) p, (int64_t) off };
      g_array_append_vals (out, pv, 2);
    }
  return TRUE;
}

static void
setup_cb (BgVerifier *v, gpointer user_data)
{
  Setup *s = user_data;
  bg_verifier_set_colors (v, s->outgoing, s->incoming);
  for (guint i = 0; i + 1 < s->barriers->len; i += 2)
    bg_verifier_expect_barrier (v, (int32_t) g_array_index (s->barriers, int64_t, i),
                                g_array_index (s->barriers, int64_t, i + 1));
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_autofree char *bootstrap = NULL, *input = NULL, *output = NULL, *barriers = NULL;
  g_autofree char *barriers_file = NULL;
  g_auto (GStrv) props = NULL;
  gboolean json = FALSE, strict_order = FALSE, strict_dups = FALSE, allow_truncated = FALSE;
  gboolean transactional = FALSE;
  double settle = 0, timeout = 60;
  Setup setup = { 0 };
  GOptionEntry entries[] = {
    { "bootstrap", 'b', 0, G_OPTION_ARG_STRING, &bootstrap, "Kafka bootstrap servers (BLUEGREEN_BOOTSTRAP)", "HOST:PORT,..." },
    { "input", 'i', 0, G_OPTION_ARG_STRING, &input, "Input topic", "TOPIC" },
    { "output", 'o', 0, G_OPTION_ARG_STRING, &output, "Output topic", "TOPIC" },
    { "expect-barrier", 0, 0, G_OPTION_ARG_STRING, &barriers, "Expected cutover barriers", "P:OFFSET,..." },
    { "barriers-file", 0, 0, G_OPTION_ARG_FILENAME, &barriers_file, "Expected barriers, P:OFFSET per line or comma-separated", "FILE" },
    { "outgoing", 0, 0, G_OPTION_ARG_STRING, &setup.outgoing, "Color that must emit below the barriers (default blue)", "COLOR" },
    { "incoming", 0, 0, G_OPTION_ARG_STRING, &setup.incoming, "Color that must emit at and above them (default green)", "COLOR" },
    { "settle", 0, 0, G_OPTION_ARG_DOUBLE, &settle, "Wait until the output is unchanged this long before reading", "SEC" },
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &timeout, "Give up reading after this long (default 60)", "SEC" },
    { "strict-order", 0, 0, G_OPTION_ARG_NONE, &strict_order, "Fail on per-key order violations too", NULL },
    { "strict-dups", 0, 0, G_OPTION_ARG_NONE, &strict_dups, "Fail on within-version duplicates too", NULL },
    { "transactional", 0, 0, G_OPTION_ARG_NONE, &transactional,
      "The job commits its results in Kafka transactions (exactly-once within a version): "
      "within-version duplicates and order violations fail too", NULL },
    { "allow-truncated", 0, 0, G_OPTION_ARG_NONE, &allow_truncated, "Accept an input whose start was dropped (state then unchecked)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the report as JSON", NULL },
    { "property", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &props, "librdkafka property, verbatim", "KEY=VALUE" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- check a job's output for exactly-once");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return 2;
    }
  if (bootstrap == NULL && g_getenv ("BLUEGREEN_BOOTSTRAP") != NULL)
    bootstrap = g_strdup (g_getenv ("BLUEGREEN_BOOTSTRAP"));
  if (bootstrap == NULL || input == NULL || output == NULL)
    {
      g_printerr ("error: --bootstrap, --input and --output are required\n");
      return 2;
    }
  /* Output is always read read_committed (reader.c); what a transactional
   * job promises on top is no result twice, within a version too. */
  if (transactional)
    strict_order = strict_dups = TRUE;
  if (setup.outgoing == NULL)
    setup.outgoing = g_strdup ("blue");
  if (setup.incoming == NULL)
    setup.incoming = g_strdup ("green");
  setup.barriers = g_array_new (FALSE, FALSE, sizeof (int64_t));
  gboolean ok = barriers == NULL || parse_barriers (barriers, setup.barriers, &error);
  if (ok && barriers_file != NULL)
    {
      g_autofree char *text = NULL;
      ok = g_file_get_contents (barriers_file, &text, NULL, &error);
      if (ok)
        {
          g_strdelimit (text, "\n\r\t ", ',');
          g_auto (GStrv) parts = g_strsplit (text, ",", -1);
          g_autofree char *joined = NULL;
          g_autoptr (GPtrArray) nonempty = g_ptr_array_new ();
          for (char **p = parts; *p != NULL; p++)
            if (**p != '\0')
              g_ptr_array_add (nonempty, *p);
          g_ptr_array_add (nonempty, NULL);
          joined = g_strjoinv (",", (char **) nonempty->pdata);
          ok = *joined == '\0' || parse_barriers (joined, setup.barriers, &error);
        }
    }
  if (!ok)
    {
      g_printerr ("error: %s\n", error->message);
      g_array_unref (setup.barriers);
      return 2;
    }

  BgVerifyReadOptions opts = {
    .bootstrap = bootstrap, .input = input, .output = output,
    .settle = settle, .timeout = timeout, .kafka_props = (const char *const *) props,
  };
  g_autoptr (BgVerifier) v = bg_verify_read (&opts, setup_cb, &setup, &error);
  g_array_unref (setup.barriers);
  g_free (setup.outgoing);
  g_free (setup.incoming);
  if (v == NULL)
    {
      g_printerr ("error: %s\n", error->message);
      return 2;
    }
  if (json)
    {
      g_autoptr (JsonNode) root = bg_verifier_report_json (v);
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      json_generator_set_pretty (gen, TRUE);
      json_generator_set_root (gen, root);
      g_autofree char *text = json_generator_to_data (gen, NULL);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *text = bg_verifier_report_text (v);
      fputs (text, stdout);
    }
  if (bg_verifier_input_truncated (v) && !allow_truncated)
    {
      g_printerr ("error: the input topic's start was dropped (low watermark > 0): the state "
                  "cannot be recomputed; use --allow-truncated to check the rest\n");
      return 2;
    }
  return bg_verifier_passed (v, strict_order, strict_dups) ? 0 : 1;
}
