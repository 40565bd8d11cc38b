/* state.c — see state.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "example/state.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (bg-state-error-quark, bg_state_error)

#define SAVEPOINT_FORMAT 1
#define SAVEPOINT_FILE "savepoint.json"

struct _BgJobState {
  GHashTable *keys;   /* char* -> BgKeyState* (both owned) */
  GArray *next;       /* int64_t per partition, -1 = unknown */
};

BgJobState *
bg_job_state_new (void)
{
  BgJobState *state = g_new0 (BgJobState, 1);
  state->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  state->next = g_array_new (FALSE, FALSE, sizeof (int64_t));
  return state;
}

void
bg_job_state_free (BgJobState *state)
{
  if (state == NULL)
    return;
  g_hash_table_unref (state->keys);
  g_array_unref (state->next);
  g_free (state);
}

const BgKeyState *
bg_job_state_update (BgJobState *state, const void *key, size_t key_len, int64_t value)
{
  /* Keys are short (loadgen: "key-00042"); look them up from a stack copy so
   * the common case (a known key) allocates nothing. */
  char buf[128];
  g_autofree char *heap = NULL;
  const char *k;
  if (key_len < sizeof buf)
    {
      if (key_len > 0)
        memcpy (buf, key, key_len);
      buf[key_len] = '\0';
      k = buf;
    }
  else
    k = heap = g_strndup (key, key_len);

  BgKeyState *ks = g_hash_table_lookup (state->keys, k);
  if (ks == NULL)
    {
      ks = g_new0 (BgKeyState, 1);
      g_hash_table_insert (state->keys, heap != NULL ? g_steal_pointer (&heap) : g_strdup (k), ks);
    }
  ks->count++;
  ks->sum += value;
  return ks;
}

const BgKeyState *
bg_job_state_lookup (BgJobState *state, const char *key)
{
  return g_hash_table_lookup (state->keys, key);
}

guint
bg_job_state_n_keys (BgJobState *state)
{
  return g_hash_table_size (state->keys);
}

void
bg_job_state_set_next_offset (BgJobState *state, int32_t partition, int64_t offset)
{
  g_return_if_fail (partition >= 0);
  while ((int32_t) state->next->len <= partition)
    {
      int64_t unknown = -1;
      g_array_append_val (state->next, unknown);
    }
  g_array_index (state->next, int64_t, partition) = offset;
}

int64_t
bg_job_state_get_next_offset (BgJobState *state, int32_t partition)
{
  if (partition < 0 || partition >= (int32_t) state->next->len)
    return -1;
  return g_array_index (state->next, int64_t, partition);
}

int32_t
bg_job_state_n_partitions (BgJobState *state)
{
  return (int32_t) state->next->len;
}

int64_t
bg_parse_value (const void *data, size_t len)
{
  const char *s = data;
  size_t i = 0;
  while (i < len && (s[i] == ' ' || s[i] == '\t'))
    i++;
  gboolean neg = FALSE;
  if (i < len && (s[i] == '-' || s[i] == '+'))
    neg = s[i++] == '-';
  size_t start = i;
  int64_t v = 0;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
    {
      if (v > (INT64_MAX - 9) / 10)
        return 0; /* out of range: not a value we understand */
      v = v * 10 + (s[i] - '0');
    }
  if (i == start)
    return 0;
  while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  if (i != len)
    return 0;
  return neg ? -v : v;
}

/* ---- savepoint files ---------------------------------------------------- */

static char *
serialize (BgJobState *state, const char *input)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_int_value (b, SAVEPOINT_FORMAT);
  json_builder_set_member_name (b, "input");
  json_builder_add_string_value (b, input);
  json_builder_set_member_name (b, "offsets");
  json_builder_begin_array (b);
  for (guint p = 0; p < state->next->len; p++)
    {
      int64_t off = g_array_index (state->next, int64_t, p);
      if (off < 0)
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "partition");
      json_builder_add_int_value (b, p);
      json_builder_set_member_name (b, "next");
      json_builder_add_int_value (b, off);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "state");
  json_builder_begin_object (b);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, state->keys);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      const BgKeyState *ks = v;
      json_builder_set_member_name (b, k);
      json_builder_begin_array (b);
      json_builder_add_int_value (b, (gint64) ks->count);
      json_builder_add_int_value (b, ks->sum);
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gboolean
write_all_fsync (int fd, const char *data, size_t len, GError **error)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_IO, "write: %s", g_strerror (e));
          return FALSE;
        }
      data += n;
      len -= (size_t) n;
    }
  if (fsync (fd) < 0)
    {
      int e = errno;
      g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_IO, "fsync: %s", g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

gboolean
bg_job_state_save (BgJobState *state, const char *dir, const char *input, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) < 0)
    {
      int e = errno;
      g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_IO, "cannot create %s: %s", dir,
                   g_strerror (e));
      return FALSE;
    }
  g_autofree char *data = serialize (state, input);
  g_autofree char *path = g_build_filename (dir, SAVEPOINT_FILE, NULL);
  g_autofree char *tmp = g_build_filename (dir, ".savepoint.json.XXXXXX", NULL);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_IO, "cannot create %s: %s", tmp,
                   g_strerror (e));
      return FALSE;
    }
  gboolean ok = write_all_fsync (fd, data, strlen (data), error);
  close (fd);
  if (ok && rename (tmp, path) < 0)
    {
      int e = errno;
      g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_IO, "cannot rename %s to %s: %s", tmp,
                   path, g_strerror (e));
      ok = FALSE;
    }
  if (!ok)
    {
      unlink (tmp);
      return FALSE;
    }
  /* Make the rename itself durable. */
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  return TRUE;
}

static gboolean
format_error (GError **error, const char *path, const char *what)
{
  g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_FORMAT, "%s: not a savepoint: %s", path, what);
  return FALSE;
}

BgJobState *
bg_job_state_load (const char *dir, const char *input, GError **error)
{
  g_autofree char *path = g_build_filename (dir, SAVEPOINT_FILE, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_mapped_file (parser, path, &local))
    {
      g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_IO, "%s: %s", path, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return format_error (error, path, "not an object"), NULL;
  JsonObject *o = json_node_get_object (root);
  if (json_object_get_int_member_with_default (o, "format", 0) != SAVEPOINT_FORMAT)
    return format_error (error, path, "unknown format"), NULL;
  const char *saved_input = json_object_get_string_member_with_default (o, "input", NULL);
  if (saved_input == NULL)
    return format_error (error, path, "no input topic"), NULL;
  if (g_strcmp0 (saved_input, input) != 0)
    {
      g_set_error (error, BG_STATE_ERROR, BG_STATE_ERROR_MISMATCH,
                   "%s: savepoint is for input topic '%s', not '%s'", path, saved_input, input);
      return NULL;
    }
  JsonNode *offsets = json_object_get_member (o, "offsets");
  JsonNode *keys = json_object_get_member (o, "state");
  if (offsets == NULL || !JSON_NODE_HOLDS_ARRAY (offsets) || keys == NULL
      || !JSON_NODE_HOLDS_OBJECT (keys))
    return format_error (error, path, "offsets or state missing"), NULL;

  g_autoptr (BgJobState) state = bg_job_state_new ();
  JsonArray *arr = json_node_get_array (offsets);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        return format_error (error, path, "bad offset entry"), NULL;
      JsonObject *e = json_node_get_object (n);
      gint64 p = json_object_get_int_member_with_default (e, "partition", -1);
      gint64 next = json_object_get_int_member_with_default (e, "next", -1);
      if (p < 0 || p > 65535 || next < 0)
        return format_error (error, path, "bad offset entry"), NULL;
      bg_job_state_set_next_offset (state, (int32_t) p, next);
    }
  JsonObjectIter it;
  const char *name;
  JsonNode *val;
  json_object_iter_init (&it, json_node_get_object (keys));
  while (json_object_iter_next (&it, &name, &val))
    {
      if (!JSON_NODE_HOLDS_ARRAY (val) || json_array_get_length (json_node_get_array (val)) != 2)
        return format_error (error, path, "bad key state"), NULL;
      JsonArray *pair = json_node_get_array (val);
      gint64 count = json_array_get_int_element (pair, 0);
      gint64 sum = json_array_get_int_element (pair, 1);
      if (count < 0)
        return format_error (error, path, "bad key state"), NULL;
      BgKeyState *ks = g_new0 (BgKeyState, 1);
      ks->count = (uint64_t) count;
      ks->sum = sum;
      g_hash_table_replace (state->keys, g_strdup (name), ks);
    }
  return g_steal_pointer (&state);
}
