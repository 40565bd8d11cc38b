/* control-codec.c — the control protocol's JSON wire format; see
 * control-codec.h for the schema.
 *
 * Decoding runs in three steps: cheap checks on the raw bytes (size, NUL,
 * UTF-8, and a lexical pre-scan), json-glib's parser, then a walk over the
 * tree that copies each member into the struct while checking it. The
 * pre-scan exists because json-glib 1.6 (measured on Debian 12) is lenient
 * and unsafe where we need strict: it recurses once per nesting level
 * (64 KiB of '[' overflows a 1 MiB thread stack), wraps integers beyond 64
 * bits silently (-9223372036854775809 becomes INT64_MAX, a valid offset),
 * accepts hex and octal literals, single quotes, comments and a second
 * top-level value, and truncates strings at \u0000. The pre-scan only
 * tokenises; the grammar stays json-glib's.
 *
 * Encoding builds the tree with json-glib, sorts members by name and then
 * runs the decoder over its own output, so what an agent appends is exactly
 * what every other agent accepts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/control-codec.h"

#include <json-glib/json-glib.h>
#include <string.h>

G_DEFINE_QUARK (bg-codec-error-quark, bg_codec_error)

/* ---- Enums as words ---------------------------------------------------- */

static const char *const type_names[] = {
  [BG_CONTROL_HELLO] = "hello",
  [BG_CONTROL_LEAVE] = "leave",
  [BG_CONTROL_EVICT] = "evict",
  [BG_CONTROL_PREPARE] = "prepare",
  [BG_CONTROL_ACK] = "ack",
  [BG_CONTROL_NACK] = "nack",
  [BG_CONTROL_COMMIT] = "commit",
  [BG_CONTROL_ABORT] = "abort",
  [BG_CONTROL_DONE] = "done",
};

const char *
bg_control_type_to_string (BgControlType type)
{
  if ((int) type < BG_CONTROL_HELLO || (int) type > BG_CONTROL_DONE)
    return NULL;
  return type_names[type];
}

gboolean
bg_control_type_from_string (const char *s, BgControlType *out)
{
  for (int t = BG_CONTROL_HELLO; t <= BG_CONTROL_DONE; t++)
    if (g_strcmp0 (s, type_names[t]) == 0)
      {
        *out = (BgControlType) t;
        return TRUE;
      }
  return FALSE;
}

static const char *const sink_mode_names[] = {
  [BG_SINK_MODE_UNKNOWN] = "unknown",
  [BG_SINK_MODE_LIVE] = "live",
  [BG_SINK_MODE_BLACKHOLE] = "blackhole",
  [BG_SINK_MODE_GATED] = "gated",
};

const char *
bg_control_sink_mode_to_string (BgSinkMode mode)
{
  if ((int) mode < BG_SINK_MODE_UNKNOWN || (int) mode > BG_SINK_MODE_GATED)
    return NULL;
  return sink_mode_names[mode];
}

gboolean
bg_control_sink_mode_from_string (const char *s, BgSinkMode *out)
{
  for (int m = BG_SINK_MODE_UNKNOWN; m <= BG_SINK_MODE_GATED; m++)
    if (g_strcmp0 (s, sink_mode_names[m]) == 0)
      {
        *out = (BgSinkMode) m;
        return TRUE;
      }
  return FALSE;
}

/* ---- Construction ------------------------------------------------------ */

BgControlOffset *
bg_control_offset_new (const char *topic, gint32 partition, gint64 offset)
{
  BgControlOffset *o = g_new0 (BgControlOffset, 1);
  o->topic = g_strdup (topic);
  o->partition = partition;
  o->offset = offset;
  return o;
}

void
bg_control_offset_free (BgControlOffset *offset)
{
  if (offset == NULL)
    return;
  g_free (offset->topic);
  g_free (offset);
}

BgControlPartition *
bg_control_partition_new (const char *topic, gint32 partition)
{
  BgControlPartition *p = g_new0 (BgControlPartition, 1);
  p->topic = g_strdup (topic);
  p->partition = partition;
  return p;
}

void
bg_control_partition_free (BgControlPartition *partition)
{
  if (partition == NULL)
    return;
  g_free (partition->topic);
  g_free (partition);
}

BgControlSlot *
bg_control_slot_new (BgColor color, const char *state)
{
  BgControlSlot *s = g_new0 (BgControlSlot, 1);
  s->color = color;
  s->state = g_strdup (state);
  s->sink_mode = BG_SINK_MODE_UNKNOWN;
  s->positions = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  return s;
}

void
bg_control_slot_free (BgControlSlot *slot)
{
  if (slot == NULL)
    return;
  g_free (slot->version);
  g_free (slot->state);
  g_ptr_array_unref (slot->positions);
  g_free (slot);
}

BgControlJob *
bg_control_job_new (const char *job)
{
  BgControlJob *j = g_new0 (BgControlJob, 1);
  j->job = g_strdup (job);
  j->slots = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_slot_free);
  return j;
}

void
bg_control_job_free (BgControlJob *job)
{
  if (job == NULL)
    return;
  g_free (job->job);
  g_ptr_array_unref (job->slots);
  g_free (job);
}

BgControlMessage *
bg_control_message_new (BgControlType type, const char *host, gint64 ts)
{
  BgControlMessage *m = g_new0 (BgControlMessage, 1);
  m->type = type;
  m->host = g_strdup (host);
  m->ts = ts;
  m->outgoing = BG_COLOR_BLUE;
  m->incoming = BG_COLOR_GREEN;
  m->jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_job_free);
  m->barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  m->positions = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  m->participants = g_ptr_array_new_with_free_func (g_free);
  m->partitions = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_partition_free);
  return m;
}

void
bg_control_message_free (BgControlMessage *msg)
{
  if (msg == NULL)
    return;
  g_free (msg->host);
  g_free (msg->sig_key_id);
  g_free (msg->sig_mac);
  g_free (msg->job);
  g_free (msg->id);
  g_free (msg->evicted_host);
  g_free (msg->reason);
  g_ptr_array_unref (msg->jobs);
  g_ptr_array_unref (msg->barriers);
  g_ptr_array_unref (msg->positions);
  g_ptr_array_unref (msg->participants);
  g_ptr_array_unref (msg->partitions);
  g_free (msg);
}

/* ---- Lexical pre-scan -------------------------------------------------- */

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The code unit of the \uXXXX escape at @p (pointing at the backslash), or
 * -1 if it is not one. */
static int
unicode_escape (const char *p, gsize avail)
{
  if (avail < 6 || p[0] != '\\' || p[1] != 'u')
    return -1;
  int v = 0;
  for (int k = 2; k < 6; k++)
    {
      int h = hex_value (p[k]);
      if (h < 0)
        return -1;
      v = v * 16 + h;
    }
  return v;
}

/* Skips the string starting at the quote at *pos. */
static gboolean
scan_string (const char *p, gsize len, gsize *pos, GError **error)
{
  gsize start = *pos;
  gsize i = start + 1;

  while (i < len)
    {
      guchar c = (guchar) p[i];
      if (c == '"')
        {
          *pos = i + 1;
          return TRUE;
        }
      if (c < 0x20)
        {
          g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
                       "message: unescaped control character in a string at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
      if (c != '\\')
        {
          i++;
          continue;
        }
      if (i + 1 < len && strchr ("\"\\/bfnrt", p[i + 1]) != NULL && p[i + 1] != '\0')
        {
          i += 2;
          continue;
        }
      int cu = unicode_escape (p + i, len - i);
      if (cu < 0)
        {
          g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
                       "message: invalid escape in a string at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
      if (cu == 0)
        {
          /* json-glib would cut the string here: "a\u0000b" would read "a". */
          g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_INVALID_UTF8,
                       "message: \\u0000 in a string at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
      if (cu >= 0xDC00 && cu <= 0xDFFF)
        {
          g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_INVALID_UTF8,
                       "message: unpaired low surrogate at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
      if (cu >= 0xD800 && cu <= 0xDBFF)
        {
          int low = unicode_escape (p + i + 6, len - i - 6);
          if (low < 0xDC00 || low > 0xDFFF)
            {
              g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_INVALID_UTF8,
                           "message: unpaired high surrogate at byte %" G_GSIZE_FORMAT, i);
              return FALSE;
            }
          i += 12;
          continue;
        }
      i += 6;
    }
  g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
               "message: unterminated string starting at byte %" G_GSIZE_FORMAT, start);
  return FALSE;
}

/* Skips the number at *pos: RFC 8259 syntax; integers must fit in 64 bits. */
static gboolean
scan_number (const char *p, gsize len, gsize *pos, GError **error)
{
  gsize start = *pos;
  gsize i = start;
  gboolean negative = FALSE;
  gboolean overflow = FALSE;
  guint64 value = 0;

  if (p[i] == '-')
    {
      negative = TRUE;
      i++;
    }
  if (i >= len || !g_ascii_isdigit (p[i]))
    goto bad;
  if (p[i] == '0' && i + 1 < len && g_ascii_isdigit (p[i + 1]))
    goto bad; /* json-glib would read 010 as octal */
  for (; i < len && g_ascii_isdigit (p[i]); i++)
    {
      guint d = (guint) (p[i] - '0');
      if (value > (G_MAXUINT64 - d) / 10)
        overflow = TRUE;
      else
        value = value * 10 + d;
    }
  gboolean is_integer = TRUE;
  if (i < len && p[i] == '.')
    {
      is_integer = FALSE;
      i++;
      if (i >= len || !g_ascii_isdigit (p[i]))
        goto bad;
      while (i < len && g_ascii_isdigit (p[i]))
        i++;
    }
  if (i < len && (p[i] == 'e' || p[i] == 'E'))
    {
      is_integer = FALSE;
      i++;
      if (i < len && (p[i] == '+' || p[i] == '-'))
        i++;
      if (i >= len || !g_ascii_isdigit (p[i]))
        goto bad;
      while (i < len && g_ascii_isdigit (p[i]))
        i++;
    }
  guint64 limit = negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64;
  if (is_integer && (overflow || value > limit))
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_OUT_OF_RANGE,
                   "message: integer at byte %" G_GSIZE_FORMAT " does not fit in 64 bits", start);
      return FALSE;
    }
  *pos = i;
  return TRUE;

bad:
  g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
               "message: malformed number at byte %" G_GSIZE_FORMAT, start);
  return FALSE;
}

static gboolean
scan_literal (const char *p, gsize len, gsize *pos, GError **error)
{
  static const char *const literals[] = { "true", "false", "null" };
  for (guint k = 0; k < G_N_ELEMENTS (literals); k++)
    {
      gsize n = strlen (literals[k]);
      if (len - *pos >= n && memcmp (p + *pos, literals[k], n) == 0)
        {
          *pos += n;
          return TRUE;
        }
    }
  g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
               "message: unexpected character at byte %" G_GSIZE_FORMAT, *pos);
  return FALSE;
}

/* Rejects, without recursion or allocation, what json-glib would mishandle:
 * nesting over BG_CONTROL_MAX_DEPTH, out-of-range integers, non-JSON tokens,
 * bad escapes and anything after the first value. */
static gboolean
prescan (const char *p, gsize len, GError **error)
{
  guint depth = 0;
  gboolean have_value = FALSE;
  gsize i = 0;

  while (i < len)
    {
      char c = p[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        {
          i++;
          continue;
        }
      if (have_value && depth == 0)
        {
          g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
                       "message: trailing data at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
      gboolean ok = TRUE;
      switch (c)
        {
        case '{':
        case '[':
          if (++depth > BG_CONTROL_MAX_DEPTH)
            {
              g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_TOO_DEEP,
                           "message: nested deeper than %d at byte %" G_GSIZE_FORMAT,
                           BG_CONTROL_MAX_DEPTH, i);
              return FALSE;
            }
          i++;
          break;
        case '}':
        case ']':
          if (depth == 0)
            {
              g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
                           "message: unbalanced '%c' at byte %" G_GSIZE_FORMAT, c, i);
              return FALSE;
            }
          depth--;
          i++;
          break;
        case ':':
        case ',':
          i++;
          break;
        case '"':
          ok = scan_string (p, len, &i, error);
          break;
        case '-':
        case '0' ... '9':
          ok = scan_number (p, len, &i, error);
          break;
        default:
          ok = scan_literal (p, len, &i, error);
          break;
        }
      if (!ok)
        return FALSE;
      if (depth == 0)
        have_value = TRUE;
    }
  if (!have_value || depth != 0)
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
                   have_value || depth != 0 ? "message: truncated" : "message: empty");
      return FALSE;
    }
  return TRUE;
}

/* ---- Tree walk: members into the struct -------------------------------- */

/* Where we are, for error messages: "prepare: barriers[3].offset: ...". */
typedef struct {
  const char *type; /* message type, or "message" before it is known */
  const char *path; /* "" at the top, else e.g. "jobs[0].slots[1]" */
} Ctx;

static void fail (GError **error, BgCodecError code, const Ctx *ctx, const char *field,
                  const char *fmt, ...) G_GNUC_PRINTF (5, 6);

static void
fail (GError **error, BgCodecError code, const Ctx *ctx, const char *field, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *detail = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  const char *sep = (ctx->path[0] != '\0' && field != NULL) ? "." : "";
  g_set_error (error, BG_CODEC_ERROR, code, "%s: %s%s%s: %s", ctx->type, ctx->path, sep,
               field != NULL ? field : "", detail);
}

static char *
child_path (const Ctx *ctx, const char *field, guint index)
{
  return g_strdup_printf ("%s%s%s[%u]", ctx->path, ctx->path[0] != '\0' ? "." : "", field, index);
}

/* The member @name, or NULL if absent or null (an error if @required). */
static gboolean
member (JsonObject *obj, const Ctx *ctx, const char *name, gboolean required, JsonNode **out,
        GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);
  if (node != NULL && JSON_NODE_HOLDS_NULL (node))
    node = NULL;
  *out = node;
  if (node == NULL && required)
    {
      fail (error, BG_CODEC_ERROR_MISSING_FIELD, ctx, name, "missing");
      return FALSE;
    }
  return TRUE;
}

static gboolean
holds (JsonNode *node, GType type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

static gboolean
get_int (JsonObject *obj, const Ctx *ctx, const char *name, gint64 min, gint64 max, gint64 *out,
         GError **error)
{
  JsonNode *node;
  if (!member (obj, ctx, name, TRUE, &node, error))
    return FALSE;
  if (!holds (node, G_TYPE_INT64))
    {
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, name, "must be an integer");
      return FALSE;
    }
  gint64 v = json_node_get_int (node);
  if (v < min)
    {
      fail (error, BG_CODEC_ERROR_OUT_OF_RANGE, ctx, name, "must be >= %" G_GINT64_FORMAT, min);
      return FALSE;
    }
  if (v > max)
    {
      fail (error, BG_CODEC_ERROR_OUT_OF_RANGE, ctx, name, "must be <= %" G_GINT64_FORMAT, max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static gboolean
get_bool (JsonObject *obj, const Ctx *ctx, const char *name, gboolean required, gboolean *out,
          GError **error)
{
  JsonNode *node;
  if (!member (obj, ctx, name, required, &node, error))
    return FALSE;
  if (node == NULL)
    {
      *out = FALSE;
      return TRUE;
    }
  if (!holds (node, G_TYPE_BOOLEAN))
    {
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, name, "must be true or false");
      return FALSE;
    }
  *out = json_node_get_boolean (node);
  return TRUE;
}

/* A string member; *out NULL if absent and optional. The pre-scan and the
 * UTF-8 check on the input guarantee valid UTF-8 without NULs here. */
static gboolean
get_string (JsonObject *obj, const Ctx *ctx, const char *name, gboolean required,
            const char **out, GError **error)
{
  JsonNode *node;
  if (!member (obj, ctx, name, required, &node, error))
    return FALSE;
  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!holds (node, G_TYPE_STRING))
    {
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, name, "must be a string");
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

typedef gboolean (*NameCheck) (const char *s);

static gboolean
topic_is_valid (const char *s)
{
  size_t n = strlen (s);
  if (n == 0 || n > 249)
    return FALSE;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
      return FALSE;
  return TRUE;
}

/* A string that @check accepts, copied to *out (NULL if absent and optional). */
static gboolean
get_name (JsonObject *obj, const Ctx *ctx, const char *name, gboolean required, NameCheck check,
          char **out, GError **error)
{
  const char *s;
  if (!get_string (obj, ctx, name, required, &s, error))
    return FALSE;
  if (s != NULL && !check (s))
    {
      fail (error, BG_CODEC_ERROR_INVALID_NAME, ctx, name, "not a valid name: \"%.64s\"", s);
      return FALSE;
    }
  *out = g_strdup (s);
  return TRUE;
}

static gboolean
get_color (JsonObject *obj, const Ctx *ctx, const char *name, gboolean required, gboolean *present,
           BgColor *out, GError **error)
{
  const char *s;
  if (!get_string (obj, ctx, name, required, &s, error))
    return FALSE;
  if (present != NULL)
    *present = s != NULL;
  if (s != NULL && !bg_color_from_string (s, out))
    {
      fail (error, BG_CODEC_ERROR_INVALID_VALUE, ctx, name, "must be \"blue\" or \"green\"");
      return FALSE;
    }
  return TRUE;
}

static gboolean
get_reason (JsonObject *obj, const Ctx *ctx, char **out, GError **error)
{
  const char *s;
  if (!get_string (obj, ctx, "reason", TRUE, &s, error))
    return FALSE;
  size_t n = strlen (s);
  if (n == 0 || n > BG_CONTROL_MAX_REASON)
    {
      fail (error, BG_CODEC_ERROR_OUT_OF_RANGE, ctx, "reason", "must be 1..%d bytes",
            BG_CONTROL_MAX_REASON);
      return FALSE;
    }
  *out = g_strdup (s);
  return TRUE;
}

/* An array member, at most BG_CONTROL_MAX_ITEMS long (NULL if absent and
 * optional). */
static gboolean
get_array (JsonObject *obj, const Ctx *ctx, const char *name, gboolean required, JsonArray **out,
           GError **error)
{
  JsonNode *node;
  if (!member (obj, ctx, name, required, &node, error))
    return FALSE;
  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, name, "must be an array");
      return FALSE;
    }
  JsonArray *array = json_node_get_array (node);
  if (json_array_get_length (array) > BG_CONTROL_MAX_ITEMS)
    {
      fail (error, BG_CODEC_ERROR_TOO_MANY, ctx, name, "more than %d elements",
            BG_CONTROL_MAX_ITEMS);
      return FALSE;
    }
  *out = array;
  return TRUE;
}

/* Element @i of @array, which must be an object. */
static JsonObject *
element_object (JsonArray *array, guint i, const Ctx *ctx, const char *name, GError **error)
{
  JsonNode *node = json_array_get_element (array, i);
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autofree char *field = g_strdup_printf ("%s[%u]", name, i);
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, field, "must be an object");
      return NULL;
    }
  return json_node_get_object (node);
}

/* Tracks keys that must be unique within one list. */
static gboolean
check_unique (GHashTable *seen, char *key, const Ctx *ctx, const char *what, GError **error)
{
  if (!g_hash_table_add (seen, key))
    {
      fail (error, BG_CODEC_ERROR_DUPLICATE, ctx, NULL, "%s appears twice", what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
decode_topic_partition (JsonObject *obj, const Ctx *ctx, char **topic, gint32 *partition,
                        GError **error)
{
  gint64 p;
  if (!get_name (obj, ctx, "topic", TRUE, topic_is_valid, topic, error)
      || !get_int (obj, ctx, "partition", 0, G_MAXINT32, &p, error))
    return FALSE;
  *partition = (gint32) p;
  return TRUE;
}

/* "barriers" or "positions": a list of (topic, partition, offset), each
 * (topic, partition) once. */
static gboolean
decode_offsets (JsonObject *obj, const Ctx *ctx, const char *name, gboolean nonempty,
                GPtrArray *out, GError **error)
{
  JsonArray *array;
  if (!get_array (obj, ctx, name, TRUE, &array, error))
    return FALSE;
  guint n = json_array_get_length (array);
  if (nonempty && n == 0)
    {
      fail (error, BG_CODEC_ERROR_OUT_OF_RANGE, ctx, name, "must not be empty");
      return FALSE;
    }
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *e = element_object (array, i, ctx, name, error);
      if (e == NULL)
        return FALSE;
      g_autofree char *path = child_path (ctx, name, i);
      Ctx sub = { ctx->type, path };
      g_autoptr (BgControlOffset) o = g_new0 (BgControlOffset, 1);
      if (!decode_topic_partition (e, &sub, &o->topic, &o->partition, error)
          || !get_int (e, &sub, "offset", 0, G_MAXINT64, &o->offset, error))
        return FALSE;
      if (!check_unique (seen, g_strdup_printf ("%s/%d", o->topic, o->partition), &sub,
                         "(topic, partition)", error))
        return FALSE;
      g_ptr_array_add (out, g_steal_pointer (&o));
    }
  return TRUE;
}

/* The same, for an optional member (absent or null: an empty list). */
static gboolean
decode_offsets_optional (JsonObject *obj, const Ctx *ctx, const char *name, GPtrArray *out, GError **error)
{
  JsonArray *array;
  if (!get_array (obj, ctx, name, FALSE, &array, error))
    return FALSE;
  if (array == NULL)
    return TRUE;
  return decode_offsets (obj, ctx, name, FALSE, out, error);
}

static gboolean
decode_partitions (JsonObject *obj, const Ctx *ctx, GPtrArray *out, GError **error)
{
  JsonArray *array;
  if (!get_array (obj, ctx, "partitions", FALSE, &array, error))
    return FALSE;
  if (array == NULL)
    return TRUE;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *e = element_object (array, i, ctx, "partitions", error);
      if (e == NULL)
        return FALSE;
      g_autofree char *path = child_path (ctx, "partitions", i);
      Ctx sub = { ctx->type, path };
      g_autoptr (BgControlPartition) p = g_new0 (BgControlPartition, 1);
      if (!decode_topic_partition (e, &sub, &p->topic, &p->partition, error))
        return FALSE;
      if (!check_unique (seen, g_strdup_printf ("%s/%d", p->topic, p->partition), &sub,
                         "(topic, partition)", error))
        return FALSE;
      g_ptr_array_add (out, g_steal_pointer (&p));
    }
  return TRUE;
}

static gboolean
decode_participants (JsonObject *obj, const Ctx *ctx, GPtrArray *out, GError **error)
{
  JsonArray *array;
  if (!get_array (obj, ctx, "participants", TRUE, &array, error))
    return FALSE;
  guint n = json_array_get_length (array);
  if (n == 0)
    {
      fail (error, BG_CODEC_ERROR_OUT_OF_RANGE, ctx, "participants", "must not be empty");
      return FALSE;
    }
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      g_autofree char *field = g_strdup_printf ("participants[%u]", i);
      if (!holds (node, G_TYPE_STRING))
        {
          fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, field, "must be a string");
          return FALSE;
        }
      const char *host = json_node_get_string (node);
      if (!bg_name_is_valid (host))
        {
          fail (error, BG_CODEC_ERROR_INVALID_NAME, ctx, field, "not a valid name: \"%.64s\"",
                host);
          return FALSE;
        }
      if (!g_hash_table_add (seen, (gpointer) host))
        {
          fail (error, BG_CODEC_ERROR_DUPLICATE, ctx, field, "\"%s\" appears twice", host);
          return FALSE;
        }
      g_ptr_array_add (out, g_strdup (host));
    }
  return TRUE;
}

static BgControlSlot *
decode_slot (JsonObject *obj, const Ctx *ctx, GError **error)
{
  g_autoptr (BgControlSlot) slot = bg_control_slot_new (BG_COLOR_BLUE, NULL);
  const char *mode;
  if (!get_color (obj, ctx, "color", TRUE, NULL, &slot->color, error)
      || !get_name (obj, ctx, "version", FALSE, bg_version_is_valid, &slot->version, error)
      || !get_name (obj, ctx, "state", TRUE, bg_name_is_valid, &slot->state, error)
      || !get_string (obj, ctx, "sink_mode", TRUE, &mode, error))
    return NULL;
  if (!bg_control_sink_mode_from_string (mode, &slot->sink_mode))
    {
      fail (error, BG_CODEC_ERROR_INVALID_VALUE, ctx, "sink_mode",
            "must be \"unknown\", \"live\", \"blackhole\" or \"gated\"");
      return NULL;
    }
  if (!get_bool (obj, ctx, "ready", TRUE, &slot->ready, error)
      || !decode_offsets (obj, ctx, "positions", FALSE, slot->positions, error))
    return NULL;
  return g_steal_pointer (&slot);
}

static BgControlJob *
decode_job (JsonObject *obj, const Ctx *ctx, GError **error)
{
  g_autoptr (BgControlJob) job = bg_control_job_new (NULL);
  JsonArray *slots;
  if (!get_name (obj, ctx, "job", TRUE, bg_name_is_valid, &job->job, error)
      || !get_color (obj, ctx, "live_color", FALSE, &job->has_live_color, &job->live_color, error)
      || !get_array (obj, ctx, "slots", TRUE, &slots, error))
    return NULL;
  gboolean seen[BG_N_COLORS] = { FALSE };
  for (guint i = 0; i < json_array_get_length (slots); i++)
    {
      JsonObject *e = element_object (slots, i, ctx, "slots", error);
      if (e == NULL)
        return NULL;
      g_autofree char *path = child_path (ctx, "slots", i);
      Ctx sub = { ctx->type, path };
      BgControlSlot *slot = decode_slot (e, &sub, error);
      if (slot == NULL)
        return NULL;
      g_ptr_array_add (job->slots, slot);
      if (seen[slot->color])
        {
          fail (error, BG_CODEC_ERROR_DUPLICATE, &sub, "color", "%s appears twice",
                bg_color_to_string (slot->color));
          return NULL;
        }
      seen[slot->color] = TRUE;
    }
  return g_steal_pointer (&job);
}

static gboolean
decode_hello (JsonObject *obj, const Ctx *ctx, BgControlMessage *msg, GError **error)
{
  JsonArray *jobs;
  if (!get_array (obj, ctx, "jobs", TRUE, &jobs, error))
    return FALSE;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < json_array_get_length (jobs); i++)
    {
      JsonObject *e = element_object (jobs, i, ctx, "jobs", error);
      if (e == NULL)
        return FALSE;
      g_autofree char *path = child_path (ctx, "jobs", i);
      Ctx sub = { ctx->type, path };
      BgControlJob *job = decode_job (e, &sub, error);
      if (job == NULL)
        return FALSE;
      g_ptr_array_add (msg->jobs, job);
      if (!g_hash_table_add (seen, job->job))
        {
          fail (error, BG_CODEC_ERROR_DUPLICATE, &sub, "job", "\"%s\" appears twice", job->job);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
decode_sig (JsonObject *obj, const Ctx *ctx, BgControlMessage *msg, GError **error)
{
  JsonNode *node;
  if (!member (obj, ctx, "sig", FALSE, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, ctx, "sig", "must be an object");
      return FALSE;
    }
  Ctx sub = { ctx->type, "sig" };
  JsonObject *sig = json_node_get_object (node);
  const char *mac;
  if (!get_name (sig, &sub, "key_id", TRUE, bg_id_is_valid, &msg->sig_key_id, error)
      || !get_string (sig, &sub, "mac", TRUE, &mac, error))
    return FALSE;
  size_t n = strlen (mac);
  gboolean ok = n >= 2 && n <= 128 && n % 2 == 0;
  for (size_t i = 0; ok && i < n; i++)
    ok = g_ascii_isdigit (mac[i]) || (mac[i] >= 'a' && mac[i] <= 'f');
  if (!ok)
    {
      fail (error, BG_CODEC_ERROR_INVALID_VALUE, &sub, "mac",
            "must be 2..128 lowercase hex digits, an even number");
      return FALSE;
    }
  msg->sig_mac = g_strdup (mac);
  return TRUE;
}

static gboolean
decode_body (JsonObject *obj, const Ctx *ctx, BgControlMessage *msg, GError **error)
{
  gint64 ts;
  if (!get_name (obj, ctx, "host", TRUE, bg_name_is_valid, &msg->host, error)
      || !get_int (obj, ctx, "ts", 0, G_MAXINT64, &ts, error)
      || !decode_sig (obj, ctx, msg, error))
    return FALSE;
  msg->ts = ts;

  if (msg->type == BG_CONTROL_HELLO)
    return decode_hello (obj, ctx, msg, error);

  if (!get_name (obj, ctx, "job", TRUE, bg_name_is_valid, &msg->job, error))
    return FALSE;
  if (msg->type != BG_CONTROL_LEAVE && msg->type != BG_CONTROL_EVICT
      && !get_name (obj, ctx, "id", TRUE, bg_id_is_valid, &msg->id, error))
    return FALSE;

  switch (msg->type)
    {
    case BG_CONTROL_HELLO:
    case BG_CONTROL_LEAVE:
      return TRUE;
    case BG_CONTROL_ACK:
      return decode_offsets_optional (obj, ctx, "positions", msg->positions, error);
    case BG_CONTROL_COMMIT:
      return decode_offsets_optional (obj, ctx, "barriers", msg->barriers, error);
    case BG_CONTROL_EVICT:
      if (!get_name (obj, ctx, "evicted_host", TRUE, bg_name_is_valid, &msg->evicted_host, error))
        return FALSE;
      if (strcmp (msg->evicted_host, msg->host) == 0)
        {
          fail (error, BG_CODEC_ERROR_CONFLICT, ctx, "evicted_host",
                "a host cannot evict itself (that is a leave)");
          return FALSE;
        }
      return TRUE;
    case BG_CONTROL_PREPARE:
      if (!get_color (obj, ctx, "outgoing", TRUE, NULL, &msg->outgoing, error)
          || !get_color (obj, ctx, "incoming", TRUE, NULL, &msg->incoming, error))
        return FALSE;
      if (msg->outgoing == msg->incoming)
        {
          fail (error, BG_CODEC_ERROR_CONFLICT, ctx, "incoming", "must differ from outgoing");
          return FALSE;
        }
      return get_int (obj, ctx, "deadline", 0, G_MAXINT64, &msg->deadline, error)
             && decode_offsets (obj, ctx, "barriers", TRUE, msg->barriers, error)
             && decode_participants (obj, ctx, msg->participants, error);
    case BG_CONTROL_NACK:
    case BG_CONTROL_ABORT:
      return get_reason (obj, ctx, &msg->reason, error);
    case BG_CONTROL_DONE:
      if (!decode_partitions (obj, ctx, msg->partitions, error)
          || !get_bool (obj, ctx, "all", FALSE, &msg->all, error))
        return FALSE;
      if (msg->partitions->len == 0 && !msg->all)
        {
          fail (error, BG_CODEC_ERROR_MISSING_FIELD, ctx, "partitions",
                "missing (or empty) and \"all\" is not true");
          return FALSE;
        }
      return TRUE;
    }
  g_assert_not_reached ();
}

BgControlMessage *
bg_control_message_decode (const guint8 *data, gsize len, GError **error)
{
  const char *text = (const char *) data;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (len > BG_CONTROL_MAX_SIZE)
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_TOO_LARGE,
                   "message: %" G_GSIZE_FORMAT " bytes, more than %d", len, BG_CONTROL_MAX_SIZE);
      return NULL;
    }
  if (len == 0)
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON, "message: empty");
      return NULL;
    }
  const char *nul = memchr (text, '\0', len);
  if (nul != NULL)
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON,
                   "message: NUL byte at byte %" G_GSIZE_FORMAT, (gsize) (nul - text));
      return NULL;
    }
  const char *end;
  if (!g_utf8_validate_len (text, len, &end))
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_INVALID_UTF8,
                   "message: invalid UTF-8 at byte %" G_GSIZE_FORMAT, (gsize) (end - text));
      return NULL;
    }
  if (!prescan (text, len, error))
    return NULL;

  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  if (!json_parser_load_from_data (parser, text, (gssize) len, &local_error))
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_JSON, "message: %s",
                   local_error->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_NOT_OBJECT,
                   "message: not a JSON object");
      return NULL;
    }
  JsonObject *obj = json_node_get_object (root);

  Ctx top = { "message", "" };
  gint64 v;
  JsonNode *vnode;
  if (!member (obj, &top, "v", TRUE, &vnode, error))
    return NULL;
  if (!holds (vnode, G_TYPE_INT64))
    {
      fail (error, BG_CODEC_ERROR_WRONG_TYPE, &top, "v", "must be an integer");
      return NULL;
    }
  v = json_node_get_int (vnode);
  if (v != BG_CONTROL_PROTOCOL_VERSION)
    {
      fail (error, BG_CODEC_ERROR_UNKNOWN_VERSION, &top, "v",
            "protocol version %" G_GINT64_FORMAT " is not %d", v, BG_CONTROL_PROTOCOL_VERSION);
      return NULL;
    }
  const char *type_name;
  BgControlType type;
  if (!get_string (obj, &top, "type", TRUE, &type_name, error))
    return NULL;
  if (!bg_control_type_from_string (type_name, &type))
    {
      fail (error, BG_CODEC_ERROR_UNKNOWN_TYPE, &top, "type", "unknown message type \"%.32s\"",
            type_name);
      return NULL;
    }

  g_autoptr (BgControlMessage) msg = bg_control_message_new (type, NULL, 0);
  Ctx ctx = { bg_control_type_to_string (type), "" };
  if (!decode_body (obj, &ctx, msg, error))
    return NULL;
  return g_steal_pointer (&msg);
}

/* ---- Encoding ---------------------------------------------------------- */

static void
set_string (JsonObject *obj, const char *name, const char *value)
{
  /* A NULL required member is left out; the decoder then names it. */
  if (value != NULL)
    json_object_set_string_member (obj, name, value);
}

static const char *
color_word (BgColor color)
{
  /* An out-of-range enum must not pass as "blue". */
  return color == BG_COLOR_BLUE || color == BG_COLOR_GREEN ? bg_color_to_string (color) : "invalid";
}

static JsonArray *
offsets_to_array (GPtrArray *offsets)
{
  JsonArray *array = json_array_new ();
  for (guint i = 0; i < offsets->len; i++)
    {
      const BgControlOffset *o = offsets->pdata[i];
      JsonObject *e = json_object_new ();
      set_string (e, "topic", o->topic);
      json_object_set_int_member (e, "partition", o->partition);
      json_object_set_int_member (e, "offset", o->offset);
      json_array_add_object_element (array, e);
    }
  return array;
}

static JsonArray *
jobs_to_array (GPtrArray *jobs)
{
  JsonArray *array = json_array_new ();
  for (guint i = 0; i < jobs->len; i++)
    {
      const BgControlJob *job = jobs->pdata[i];
      JsonObject *je = json_object_new ();
      set_string (je, "job", job->job);
      if (job->has_live_color)
        json_object_set_string_member (je, "live_color", color_word (job->live_color));
      JsonArray *slots = json_array_new ();
      for (guint k = 0; k < job->slots->len; k++)
        {
          const BgControlSlot *slot = job->slots->pdata[k];
          JsonObject *se = json_object_new ();
          const char *mode = bg_control_sink_mode_to_string (slot->sink_mode);
          json_object_set_string_member (se, "color", color_word (slot->color));
          set_string (se, "version", slot->version);
          set_string (se, "state", slot->state);
          json_object_set_string_member (se, "sink_mode", mode != NULL ? mode : "invalid");
          json_object_set_boolean_member (se, "ready", slot->ready);
          json_object_set_array_member (se, "positions", offsets_to_array (slot->positions));
          json_array_add_object_element (slots, se);
        }
      json_object_set_array_member (je, "slots", slots);
      json_array_add_object_element (array, je);
    }
  return array;
}

static JsonObject *
message_to_object (const BgControlMessage *msg, gboolean with_sig)
{
  JsonObject *obj = json_object_new ();

  json_object_set_int_member (obj, "v", BG_CONTROL_PROTOCOL_VERSION);
  set_string (obj, "type", bg_control_type_to_string (msg->type));
  set_string (obj, "host", msg->host);
  json_object_set_int_member (obj, "ts", msg->ts);
  if (with_sig && (msg->sig_key_id != NULL || msg->sig_mac != NULL))
    {
      JsonObject *sig = json_object_new ();
      set_string (sig, "key_id", msg->sig_key_id);
      set_string (sig, "mac", msg->sig_mac);
      json_object_set_object_member (obj, "sig", sig);
    }
  if (msg->type != BG_CONTROL_HELLO)
    set_string (obj, "job", msg->job);
  if (msg->type != BG_CONTROL_HELLO && msg->type != BG_CONTROL_LEAVE
      && msg->type != BG_CONTROL_EVICT)
    set_string (obj, "id", msg->id);

  switch (msg->type)
    {
    case BG_CONTROL_HELLO:
      json_object_set_array_member (obj, "jobs", jobs_to_array (msg->jobs));
      break;
    case BG_CONTROL_EVICT:
      set_string (obj, "evicted_host", msg->evicted_host);
      break;
    case BG_CONTROL_PREPARE:
      {
        json_object_set_string_member (obj, "outgoing", color_word (msg->outgoing));
        json_object_set_string_member (obj, "incoming", color_word (msg->incoming));
        json_object_set_int_member (obj, "deadline", msg->deadline);
        json_object_set_array_member (obj, "barriers", offsets_to_array (msg->barriers));
        JsonArray *participants = json_array_new ();
        for (guint i = 0; i < msg->participants->len; i++)
          if (msg->participants->pdata[i] != NULL)
            json_array_add_string_element (participants, msg->participants->pdata[i]);
          else
            json_array_add_null_element (participants);
        json_object_set_array_member (obj, "participants", participants);
        break;
      }
    case BG_CONTROL_NACK:
    case BG_CONTROL_ABORT:
      set_string (obj, "reason", msg->reason);
      break;
    case BG_CONTROL_DONE:
      if (msg->partitions->len > 0)
        {
          JsonArray *parts = json_array_new ();
          for (guint i = 0; i < msg->partitions->len; i++)
            {
              const BgControlPartition *p = msg->partitions->pdata[i];
              JsonObject *e = json_object_new ();
              set_string (e, "topic", p->topic);
              json_object_set_int_member (e, "partition", p->partition);
              json_array_add_object_element (parts, e);
            }
          json_object_set_array_member (obj, "partitions", parts);
        }
      if (msg->all)
        json_object_set_boolean_member (obj, "all", TRUE);
      break;
    case BG_CONTROL_ACK:
      if (msg->positions->len > 0)
        json_object_set_array_member (obj, "positions", offsets_to_array (msg->positions));
      break;
    case BG_CONTROL_COMMIT:
      if (msg->barriers->len > 0)
        json_object_set_array_member (obj, "barriers", offsets_to_array (msg->barriers));
      break;
    case BG_CONTROL_LEAVE:
    default:
      break;
    }
  return obj;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (a, b);
}

/* A copy of @node with every object's members sorted by name: json-glib
 * writes members in insertion order, and the canonical form must not depend
 * on how the tree was built. */
static JsonNode *
sorted_copy (JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *src = json_node_get_object (node);
      JsonObject *dst = json_object_new ();
      GList *names = g_list_sort (json_object_get_members (src), compare_names);
      for (GList *l = names; l != NULL; l = l->next)
        json_object_set_member (dst, l->data, sorted_copy (json_object_get_member (src, l->data)));
      g_list_free (names);
      JsonNode *copy = json_node_init_object (json_node_alloc (), dst);
      json_object_unref (dst);
      return copy;
    }
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *src = json_node_get_array (node);
      JsonArray *dst = json_array_sized_new (json_array_get_length (src));
      for (guint i = 0; i < json_array_get_length (src); i++)
        json_array_add_element (dst, sorted_copy (json_array_get_element (src, i)));
      JsonNode *copy = json_node_init_array (json_node_alloc (), dst);
      json_array_unref (dst);
      return copy;
    }
  return json_node_copy (node);
}

static GBytes *
encode (const BgControlMessage *msg, gboolean with_sig, GError **error)
{
  g_return_val_if_fail (msg != NULL, NULL);

  if (bg_control_type_to_string (msg->type) == NULL)
    {
      g_set_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_UNKNOWN_TYPE,
                   "message: type: unknown message type %d", (int) msg->type);
      return NULL;
    }
  g_autoptr (JsonObject) obj = message_to_object (msg, with_sig);
  g_autoptr (JsonNode) tree = json_node_init_object (json_node_alloc (), obj);
  g_autoptr (JsonNode) sorted = sorted_copy (tree);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, FALSE);
  json_generator_set_root (gen, sorted);
  gsize len = 0;
  char *text = json_generator_to_data (gen, &len);
  g_autoptr (GBytes) bytes = g_bytes_new_take (text, len);

  /* Our own output must pass our own checks, or nobody else will take it. */
  g_autoptr (BgControlMessage) check = bg_control_message_decode ((const guint8 *) text, len, error);
  if (check == NULL)
    return NULL;
  return g_steal_pointer (&bytes);
}

GBytes *
bg_control_message_encode (const BgControlMessage *msg, GError **error)
{
  return encode (msg, TRUE, error);
}

GBytes *
bg_control_message_canonical (const BgControlMessage *msg, GError **error)
{
  return encode (msg, FALSE, error);
}

gboolean
bg_control_message_validate (const BgControlMessage *msg, GError **error)
{
  g_autoptr (GBytes) bytes = encode (msg, TRUE, error);
  return bytes != NULL;
}

/* ---- Equality ---------------------------------------------------------- */

static gboolean
offsets_equal (GPtrArray *a, GPtrArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    {
      const BgControlOffset *x = a->pdata[i], *y = b->pdata[i];
      if (g_strcmp0 (x->topic, y->topic) != 0 || x->partition != y->partition
          || x->offset != y->offset)
        return FALSE;
    }
  return TRUE;
}

static gboolean
slot_equal (const BgControlSlot *a, const BgControlSlot *b)
{
  return a->color == b->color && g_strcmp0 (a->version, b->version) == 0
         && g_strcmp0 (a->state, b->state) == 0 && a->sink_mode == b->sink_mode
         && !a->ready == !b->ready && offsets_equal (a->positions, b->positions);
}

static gboolean
job_equal (const BgControlJob *a, const BgControlJob *b)
{
  if (g_strcmp0 (a->job, b->job) != 0 || !a->has_live_color != !b->has_live_color
      || (a->has_live_color && a->live_color != b->live_color) || a->slots->len != b->slots->len)
    return FALSE;
  for (guint i = 0; i < a->slots->len; i++)
    if (!slot_equal (a->slots->pdata[i], b->slots->pdata[i]))
      return FALSE;
  return TRUE;
}

static gboolean
strv_equal (GPtrArray *a, GPtrArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    if (g_strcmp0 (a->pdata[i], b->pdata[i]) != 0)
      return FALSE;
  return TRUE;
}

gboolean
bg_control_message_equal (const BgControlMessage *a, const BgControlMessage *b)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL)
    return FALSE;
  if (a->type != b->type || a->ts != b->ts || g_strcmp0 (a->host, b->host) != 0
      || g_strcmp0 (a->sig_key_id, b->sig_key_id) != 0 || g_strcmp0 (a->sig_mac, b->sig_mac) != 0)
    return FALSE;
  if (a->type != BG_CONTROL_HELLO && g_strcmp0 (a->job, b->job) != 0)
    return FALSE;
  if (a->type != BG_CONTROL_HELLO && a->type != BG_CONTROL_LEAVE && a->type != BG_CONTROL_EVICT
      && g_strcmp0 (a->id, b->id) != 0)
    return FALSE;

  switch (a->type)
    {
    case BG_CONTROL_HELLO:
      if (a->jobs->len != b->jobs->len)
        return FALSE;
      for (guint i = 0; i < a->jobs->len; i++)
        if (!job_equal (a->jobs->pdata[i], b->jobs->pdata[i]))
          return FALSE;
      return TRUE;
    case BG_CONTROL_EVICT:
      return g_strcmp0 (a->evicted_host, b->evicted_host) == 0;
    case BG_CONTROL_PREPARE:
      return a->outgoing == b->outgoing && a->incoming == b->incoming
             && a->deadline == b->deadline && offsets_equal (a->barriers, b->barriers)
             && strv_equal (a->participants, b->participants);
    case BG_CONTROL_NACK:
    case BG_CONTROL_ABORT:
      return g_strcmp0 (a->reason, b->reason) == 0;
    case BG_CONTROL_DONE:
      {
        if (!a->all != !b->all || a->partitions->len != b->partitions->len)
          return FALSE;
        for (guint i = 0; i < a->partitions->len; i++)
          {
            const BgControlPartition *x = a->partitions->pdata[i], *y = b->partitions->pdata[i];
            if (g_strcmp0 (x->topic, y->topic) != 0 || x->partition != y->partition)
              return FALSE;
          }
        return TRUE;
      }
    case BG_CONTROL_ACK:
      return offsets_equal (a->positions, b->positions);
    case BG_CONTROL_COMMIT:
      return offsets_equal (a->barriers, b->barriers);
    case BG_CONTROL_LEAVE:
    default:
      return TRUE;
    }
}
