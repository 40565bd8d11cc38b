/* verifier.c — see verifier.h.
 *
 * Memory: one 32-byte slot per input record (key id, value, expected
 * state, per-color result counts), in one flat array per partition indexed
 * by offset − low. A few 100k inputs cost a few MB.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "verify/verifier.h"

#include <math.h>
#include <string.h>

#define MAX_COLORS 4
#define MAX_EXAMPLES 5
#define NO_KEY G_MAXUINT32

typedef struct {
  uint32_t key;          /* key id, NO_KEY for a null key */
  uint32_t exp_count;
  int64_t value;
  int64_t exp_sum;
  uint8_t present;
  uint8_t results[MAX_COLORS]; /* results per color (saturating) */
} Input;

typedef struct {
  int64_t low, high;
  Input *in;             /* high - low slots */
  int64_t barrier;       /* -1: none expected */
  int64_t first[MAX_COLORS], last[MAX_COLORS];
  uint64_t gaps, cross_duplicates, within_duplicates; /* this partition's share */
} Partition;

typedef struct {
  int32_t partition;     /* first partition it was seen on */
  gboolean spans;        /* seen on several partitions */
  int64_t last_out;      /* input offset of its last result in the output log */
} Key;

typedef struct {
  const char *name;
  GPtrArray *items;
} Examples;

struct _BgVerifier {
  char *input;
  int32_t n_partitions;
  Partition *parts;
  GHashTable *key_ids;   /* char* -> id+1 */
  GPtrArray *key_names;
  GArray *keys;          /* Key */
  char *colors[MAX_COLORS];
  int n_colors;
  char *outgoing, *incoming;
  gboolean truncated;
  JsonParser *parser;
  BgVerifyCounts c;
  Examples ex_gap, ex_dup, ex_state, ex_order, ex_barrier, ex_malformed;
  gboolean finished;
};

static void
examples_init (Examples *e, const char *name)
{
  e->name = name;
  e->items = g_ptr_array_new_with_free_func (g_free);
}

static void example_add (Examples *e, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
example_add (Examples *e, const char *fmt, ...)
{
  if (e->items->len >= MAX_EXAMPLES)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_ptr_array_add (e->items, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

BgVerifier *
bg_verifier_new (const char *input, int32_t n_partitions)
{
  g_return_val_if_fail (n_partitions > 0, NULL);
  BgVerifier *v = g_new0 (BgVerifier, 1);
  v->input = g_strdup (input);
  v->n_partitions = n_partitions;
  v->parts = g_new0 (Partition, n_partitions);
  for (int32_t p = 0; p < n_partitions; p++)
    {
      v->parts[p].barrier = -1;
      for (int c = 0; c < MAX_COLORS; c++)
        v->parts[p].first[c] = v->parts[p].last[c] = -1;
    }
  v->key_ids = g_hash_table_new (g_str_hash, g_str_equal);
  v->key_names = g_ptr_array_new_with_free_func (g_free);
  v->keys = g_array_new (FALSE, TRUE, sizeof (Key));
  v->parser = json_parser_new_immutable ();
  examples_init (&v->ex_gap, "gaps");
  examples_init (&v->ex_dup, "duplicates");
  examples_init (&v->ex_state, "wrong_state");
  examples_init (&v->ex_order, "order_violations");
  examples_init (&v->ex_barrier, "barrier_violations");
  examples_init (&v->ex_malformed, "malformed");
  return v;
}

void
bg_verifier_free (BgVerifier *v)
{
  if (v == NULL)
    return;
  for (int32_t p = 0; p < v->n_partitions; p++)
    g_free (v->parts[p].in);
  g_free (v->parts);
  g_hash_table_unref (v->key_ids);
  g_ptr_array_unref (v->key_names);
  g_array_unref (v->keys);
  for (int c = 0; c < v->n_colors; c++)
    g_free (v->colors[c]);
  g_free (v->outgoing);
  g_free (v->incoming);
  g_free (v->input);
  g_object_unref (v->parser);
  Examples *all[] = { &v->ex_gap, &v->ex_dup, &v->ex_state, &v->ex_order, &v->ex_barrier, &v->ex_malformed };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_ptr_array_unref (all[i]->items);
  g_free (v);
}

void
bg_verifier_set_input_range (BgVerifier *v, int32_t p, int64_t low, int64_t high)
{
  g_return_if_fail (p >= 0 && p < v->n_partitions && low >= 0 && high >= low);
  Partition *part = &v->parts[p];
  part->low = low;
  part->high = high;
  g_free (part->in);
  part->in = g_new0 (Input, high - low);
  if (low > 0)
    v->truncated = TRUE;
}

static uint32_t
key_id (BgVerifier *v, const char *key, int32_t p)
{
  gpointer idp = g_hash_table_lookup (v->key_ids, key);
  if (idp != NULL)
    {
      uint32_t id = GPOINTER_TO_UINT (idp) - 1;
      Key *k = &g_array_index (v->keys, Key, id);
      if (p >= 0 && k->partition != p)
        k->spans = TRUE;
      return id;
    }
  if (p < 0)
    return NO_KEY;
  uint32_t id = v->key_names->len;
  char *name = g_strdup (key);
  g_ptr_array_add (v->key_names, name);
  g_hash_table_insert (v->key_ids, name, GUINT_TO_POINTER (id + 1));
  Key k = { .partition = p, .spans = FALSE, .last_out = -1 };
  g_array_append_val (v->keys, k);
  return id;
}

void
bg_verifier_add_input (BgVerifier *v, int32_t p, int64_t offset, const void *key, size_t key_len,
                       int64_t value)
{
  if (p < 0 || p >= v->n_partitions)
    return;
  Partition *part = &v->parts[p];
  if (offset < part->low || offset >= part->high)
    return;
  Input *in = &part->in[offset - part->low];
  if (key == NULL)
    in->key = NO_KEY;
  else
    {
      g_autofree char *k = g_strndup (key, key_len);
      in->key = key_id (v, k, p);
    }
  in->value = value;
  in->present = 1;
  v->c.inputs++;
}

/* The reference computation: the example job's state, per key, in
 * per-partition input order from the start of the topic. Keys seen on
 * several partitions have no single order; they are not checked. */
void
bg_verifier_inputs_done (BgVerifier *v)
{
  guint n = v->keys->len;
  g_autofree uint32_t *count = g_new0 (uint32_t, n + 1);
  g_autofree int64_t *sum = g_new0 (int64_t, n + 1);
  for (int32_t p = 0; p < v->n_partitions; p++)
    {
      Partition *part = &v->parts[p];
      for (int64_t i = 0; i < part->high - part->low; i++)
        {
          Input *in = &part->in[i];
          if (!in->present)
            continue;
          uint32_t slot = in->key == NO_KEY ? n : in->key;
          count[slot]++;
          sum[slot] += in->value;
          in->exp_count = count[slot];
          in->exp_sum = sum[slot];
        }
    }
  for (guint k = 0; k < n; k++)
    if (g_array_index (v->keys, Key, k).spans)
      v->c.unchecked_keys++;
}

gboolean
bg_verifier_input_truncated (BgVerifier *v)
{
  return v->truncated;
}

void
bg_verifier_set_colors (BgVerifier *v, const char *outgoing, const char *incoming)
{
  g_free (v->outgoing);
  g_free (v->incoming);
  v->outgoing = g_strdup (outgoing);
  v->incoming = g_strdup (incoming);
}

void
bg_verifier_expect_barrier (BgVerifier *v, int32_t p, int64_t offset)
{
  if (p >= 0 && p < v->n_partitions)
    v->parts[p].barrier = offset;
}

static int
color_index (BgVerifier *v, const char *color)
{
  for (int c = 0; c < v->n_colors; c++)
    if (g_str_equal (v->colors[c], color))
      return c;
  if (v->n_colors == MAX_COLORS)
    return -1;
  v->colors[v->n_colors] = g_strdup (color);
  return v->n_colors++;
}

static void
malformed (BgVerifier *v, const char *why, const void *value, size_t len)
{
  v->c.malformed++;
  example_add (&v->ex_malformed, "%s: %.*s", why, (int) MIN (len, 120), (const char *) value);
}

void
bg_verifier_add_output (BgVerifier *v, const void *value, size_t len)
{
  v->c.outputs++;
  if (value == NULL || !json_parser_load_from_data (v->parser, value, (gssize) len, NULL))
    {
      malformed (v, "not JSON", value ? value : "", value ? len : 0);
      return;
    }
  JsonNode *root = json_parser_get_root (v->parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      malformed (v, "not an object", value, len);
      return;
    }
  JsonObject *o = json_node_get_object (root);
  const char *topic = json_object_get_string_member_with_default (o, "topic", NULL);
  gint64 p = json_object_get_int_member_with_default (o, "partition", -1);
  gint64 off = json_object_get_int_member_with_default (o, "offset", -1);
  gint64 count = json_object_get_int_member_with_default (o, "count", -1);
  gint64 sum = json_object_get_int_member_with_default (o, "sum", G_MININT64);
  const char *color = json_object_get_string_member_with_default (o, "color", NULL);
  JsonNode *key_node = json_object_get_member (o, "key");
  if (topic == NULL || p < 0 || off < 0 || count < 0 || color == NULL || key_node == NULL)
    {
      malformed (v, "missing fields", value, len);
      return;
    }
  if (!g_str_equal (topic, v->input))
    {
      v->c.foreign++;
      return;
    }
  if (p >= v->n_partitions || off < v->parts[p].low)
    {
      malformed (v, "unknown input partition or offset", value, len);
      return;
    }
  Partition *part = &v->parts[p];
  if (off >= part->high)
    {
      v->c.beyond++;
      return;
    }
  Input *in = &part->in[off - part->low];
  int ci = color_index (v, color);
  if (ci < 0)
    {
      malformed (v, "too many colors", value, len);
      return;
    }
  if (in->results[ci] < UINT8_MAX)
    in->results[ci]++;
  if (part->first[ci] < 0 || off < part->first[ci])
    part->first[ci] = off;
  if (off > part->last[ci])
    part->last[ci] = off;

  if (part->barrier >= 0 && v->outgoing != NULL && v->incoming != NULL)
    {
      const char *want = off < part->barrier ? v->outgoing : v->incoming;
      if (!g_str_equal (color, want))
        {
          v->c.barrier_violations++;
          example_add (&v->ex_barrier, "%s emitted %" G_GINT64_FORMAT ":%" G_GINT64_FORMAT
                       " (barrier %" G_GINT64_FORMAT ")", color, p, off, part->barrier);
        }
    }

  /* State and order: only for results whose key is the input's key. */
  uint32_t kid = NO_KEY;
  if (!JSON_NODE_HOLDS_NULL (key_node))
    {
      const char *k = json_node_get_string (key_node);
      kid = k != NULL ? key_id (v, k, -1) : NO_KEY;
      if (kid == NO_KEY)
        kid = NO_KEY - 1; /* a key the inputs never had */
    }
  if (!in->present || kid != in->key)
    {
      v->c.wrong_state++;
      example_add (&v->ex_state, "%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT " result for another key",
                   p, off);
      return;
    }
  Key *key = kid == NO_KEY ? NULL : &g_array_index (v->keys, Key, kid);
  if (key != NULL && key->spans)
    return;
  gboolean state_ok = !v->truncated && (uint64_t) count == in->exp_count && sum == in->exp_sum;
  JsonNode *mean = json_object_get_member (o, "mean");
  if (state_ok && mean != NULL)
    {
      double want = count ? (double) sum / (double) count : 0.0;
      state_ok = JSON_NODE_HOLDS_VALUE (mean) && fabs (json_node_get_double (mean) - want) < 0.001;
    }
  if (!v->truncated && !state_ok)
    {
      v->c.wrong_state++;
      example_add (&v->ex_state,
                   "%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT " by %s: count %" G_GINT64_FORMAT
                   " sum %" G_GINT64_FORMAT ", expected %u %" G_GINT64_FORMAT,
                   p, off, color, count, sum, in->exp_count, in->exp_sum);
    }
  if (key != NULL)
    {
      if (off < key->last_out)
        {
          v->c.order_violations++;
          example_add (&v->ex_order, "key %s: result for %" G_GINT64_FORMAT ":%" G_GINT64_FORMAT
                       " (%s) after one for offset %" G_GINT64_FORMAT,
                       (const char *) v->key_names->pdata[kid], p, off, color, key->last_out);
        }
      else
        key->last_out = off;
    }
}

static void
finish (BgVerifier *v)
{
  if (v->finished)
    return;
  v->finished = TRUE;
  for (int32_t p = 0; p < v->n_partitions; p++)
    {
      Partition *part = &v->parts[p];
      for (int64_t i = 0; i < part->high - part->low; i++)
        {
          Input *in = &part->in[i];
          if (!in->present)
            continue;
          int colors = 0;
          unsigned total = 0;
          for (int c = 0; c < MAX_COLORS; c++)
            {
              if (in->results[c] == 0)
                continue;
              colors++;
              total += in->results[c];
              v->c.within_duplicates += in->results[c] - 1u;
              part->within_duplicates += in->results[c] - 1u;
            }
          int64_t off = part->low + i;
          if (total == 0)
            {
              v->c.gaps++;
              part->gaps++;
              example_add (&v->ex_gap, "%d:%" G_GINT64_FORMAT, p, off);
            }
          if (colors > 1)
            {
              v->c.cross_duplicates++;
              part->cross_duplicates++;
              example_add (&v->ex_dup, "%d:%" G_GINT64_FORMAT " from %d colors", p, off, colors);
            }
        }
    }
}

void
bg_verifier_counts (BgVerifier *v, BgVerifyCounts *out)
{
  finish (v);
  *out = v->c;
}

gboolean
bg_verifier_passed (BgVerifier *v, gboolean strict_order, gboolean strict_dups)
{
  finish (v);
  return v->c.gaps == 0 && v->c.cross_duplicates == 0 && v->c.wrong_state == 0
         && v->c.barrier_violations == 0 && v->c.malformed == 0
         && (!strict_order || v->c.order_violations == 0)
         && (!strict_dups || v->c.within_duplicates == 0);
}

static void
add_uint (JsonBuilder *b, const char *name, uint64_t value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, (gint64) value);
}

JsonNode *
bg_verifier_report_json (BgVerifier *v)
{
  finish (v);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input");
  json_builder_add_string_value (b, v->input);
  add_uint (b, "inputs", v->c.inputs);
  add_uint (b, "outputs", v->c.outputs);
  add_uint (b, "gaps", v->c.gaps);
  add_uint (b, "cross_duplicates", v->c.cross_duplicates);
  add_uint (b, "within_duplicates", v->c.within_duplicates);
  add_uint (b, "wrong_state", v->c.wrong_state);
  add_uint (b, "order_violations", v->c.order_violations);
  add_uint (b, "barrier_violations", v->c.barrier_violations);
  add_uint (b, "malformed", v->c.malformed);
  add_uint (b, "foreign", v->c.foreign);
  add_uint (b, "beyond", v->c.beyond);
  add_uint (b, "unchecked_keys", v->c.unchecked_keys);
  json_builder_set_member_name (b, "input_truncated");
  json_builder_add_boolean_value (b, v->truncated);
  json_builder_set_member_name (b, "state_checked");
  json_builder_add_boolean_value (b, !v->truncated);
  json_builder_set_member_name (b, "passed");
  json_builder_add_boolean_value (b, bg_verifier_passed (v, FALSE, FALSE));

  json_builder_set_member_name (b, "partitions");
  json_builder_begin_array (b);
  for (int32_t p = 0; p < v->n_partitions; p++)
    {
      Partition *part = &v->parts[p];
      json_builder_begin_object (b);
      add_uint (b, "partition", (uint64_t) p);
      add_uint (b, "low", (uint64_t) part->low);
      add_uint (b, "high", (uint64_t) part->high);
      if (part->barrier >= 0)
        add_uint (b, "barrier", (uint64_t) part->barrier);
      add_uint (b, "gaps", part->gaps);
      add_uint (b, "cross_duplicates", part->cross_duplicates);
      add_uint (b, "within_duplicates", part->within_duplicates);
      json_builder_set_member_name (b, "colors");
      json_builder_begin_object (b);
      for (int c = 0; c < v->n_colors; c++)
        {
          if (part->first[c] < 0)
            continue;
          json_builder_set_member_name (b, v->colors[c]);
          json_builder_begin_object (b);
          add_uint (b, "first", (uint64_t) part->first[c]);
          add_uint (b, "last", (uint64_t) part->last[c]);
          json_builder_end_object (b);
        }
      json_builder_end_object (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "examples");
  json_builder_begin_object (b);
  Examples *all[] = { &v->ex_gap, &v->ex_dup, &v->ex_state, &v->ex_order, &v->ex_barrier, &v->ex_malformed };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (all[i]->items->len == 0)
        continue;
      json_builder_set_member_name (b, all[i]->name);
      json_builder_begin_array (b);
      for (guint j = 0; j < all[i]->items->len; j++)
        json_builder_add_string_value (b, all[i]->items->pdata[j]);
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

char *
bg_verifier_report_text (BgVerifier *v)
{
  finish (v);
  GString *s = g_string_new (NULL);
  const BgVerifyCounts *c = &v->c;
  g_string_append_printf (s, "input topic %s: %" G_GUINT64_FORMAT " records; results: %" G_GUINT64_FORMAT "\n",
                          v->input, c->inputs, c->outputs);
  if (v->truncated)
    g_string_append (s, "input truncated (low watermark > 0): state not checked\n");
  g_string_append_printf (s,
                          "gaps %" G_GUINT64_FORMAT ", cross-version duplicates %" G_GUINT64_FORMAT
                          ", within-version duplicates %" G_GUINT64_FORMAT ", wrong state %" G_GUINT64_FORMAT
                          ", order violations %" G_GUINT64_FORMAT ", barrier violations %" G_GUINT64_FORMAT
                          ", malformed %" G_GUINT64_FORMAT "\n",
                          c->gaps, c->cross_duplicates, c->within_duplicates, c->wrong_state,
                          c->order_violations, c->barrier_violations, c->malformed);
  if (c->foreign || c->beyond || c->unchecked_keys)
    g_string_append_printf (s, "ignored: %" G_GUINT64_FORMAT " for other topics, %" G_GUINT64_FORMAT
                            " past the captured input; %" G_GUINT64_FORMAT " keys on several partitions not state-checked\n",
                            c->foreign, c->beyond, c->unchecked_keys);
  for (int32_t p = 0; p < v->n_partitions; p++)
    {
      Partition *part = &v->parts[p];
      g_string_append_printf (s, "partition %d [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", p,
                              part->low, part->high);
      if (part->barrier >= 0)
        g_string_append_printf (s, " barrier %" G_GINT64_FORMAT, part->barrier);
      for (int col = 0; col < v->n_colors; col++)
        if (part->first[col] >= 0)
          g_string_append_printf (s, " %s %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT, v->colors[col],
                                  part->first[col], part->last[col]);
      g_string_append_c (s, '\n');
    }
  Examples *all[] = { &v->ex_gap, &v->ex_dup, &v->ex_state, &v->ex_order, &v->ex_barrier, &v->ex_malformed };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    for (guint j = 0; j < all[i]->items->len; j++)
      g_string_append_printf (s, "  %s: %s\n", all[i]->name, (const char *) all[i]->items->pdata[j]);
  g_string_append (s, bg_verifier_passed (v, FALSE, FALSE) ? "PASS\n" : "FAIL\n");
  return g_string_free (s, FALSE);
}
