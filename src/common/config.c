/* config.c — see config.h.
 *
 * Every file is checked against a schema (known groups and keys) before any
 * value is read, so a typo in a key name is reported as such rather than
 * silently leaving the default in place. The value readers below all take
 * the file, group and key, so every message can name them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/config.h"

#include <string.h>
#include <sys/stat.h>

#include <librdkafka/rdkafka.h>

G_DEFINE_QUARK (bg-config-error-quark, bg_config_error)

#define MAX_SECONDS (365.0 * 24 * 3600)
#define KAFKA_MAX_PARTITIONS 65536 /* as bg_gate_topic() accepts */

/* The file being read: its name for messages and its parsed content. */
typedef struct {
  const char *path;
  GKeyFile *kf;
} Ctx;

typedef struct {
  const char *name;
  const char *const *keys; /* NULL: free-form group, any key */
} GroupSchema;

/* ---- Messages ------------------------------------------------------------- */

static void set_key_error (GError **error, const Ctx *ctx, BgConfigError code,
                           const char *group, const char *key,
                           const char *format, ...) G_GNUC_PRINTF (6, 7);

static void
set_key_error (GError **error, const Ctx *ctx, BgConfigError code,
               const char *group, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, BG_CONFIG_ERROR, code, "%s: [%s] %s: %s", ctx->path, group, key, what);
}

/* ---- Specifiers --------------------------------------------------------- */

typedef struct {
  char letter;
  const char *value;
} Specifier;

static char *
describe_specifiers (const Specifier *specs, gsize n_specs)
{
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < n_specs; i++)
    g_string_append_printf (s, "%%%c, ", specs[i].letter);
  g_string_append (s, "%%");
  return g_string_free (s, FALSE);
}

/* Substitutes %X specifiers in @tmpl; an unknown one or a lone trailing '%'
 * is an error (the message is the bare reason, the caller adds where). */
static char *
expand_specifiers (const char *tmpl, const Specifier *specs, gsize n_specs, GError **error)
{
  g_autoptr (GString) out = g_string_new (NULL);
  for (const char *p = tmpl; *p != '\0'; p++)
    {
      if (*p != '%')
        {
          g_string_append_c (out, *p);
          continue;
        }
      p++;
      if (*p == '%')
        {
          g_string_append_c (out, '%');
          continue;
        }
      const Specifier *found = NULL;
      for (gsize i = 0; i < n_specs && *p != '\0'; i++)
        if (specs[i].letter == *p)
          found = &specs[i];
      if (found == NULL)
        {
          g_autofree char *known = describe_specifiers (specs, n_specs);
          if (*p == '\0')
            g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VALUE,
                         "a lone %% at the end (write %%%% for a percent sign; this key accepts %s)", known);
          else
            g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VALUE,
                         "unknown specifier \"%%%c\" (this key accepts %s)", *p, known);
          return NULL;
        }
      g_string_append (out, found->value);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static char **
expand_argv (const char *const *argv, const Specifier *specs, gsize n_specs, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; argv[i] != NULL; i++)
    {
      char *arg = expand_specifiers (argv[i], specs, n_specs, error);
      if (arg == NULL)
        return NULL;
      g_ptr_array_add (out, arg);
    }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&out), FALSE);
}

/* ---- Schema ---------------------------------------------------------------- */

static const GroupSchema *
find_group (const GroupSchema *schema, gsize n_groups, const char *name)
{
  for (gsize i = 0; i < n_groups; i++)
    if (g_strcmp0 (schema[i].name, name) == 0)
      return &schema[i];
  return NULL;
}

static gboolean
check_schema (const Ctx *ctx, const GroupSchema *schema, gsize n_groups, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (ctx->kf, NULL);
  for (gsize g = 0; groups[g] != NULL; g++)
    {
      const GroupSchema *gs = find_group (schema, n_groups, groups[g]);
      if (gs == NULL)
        {
          g_autoptr (GString) known = g_string_new (NULL);
          for (gsize i = 0; i < n_groups; i++)
            g_string_append_printf (known, "%s[%s]", i ? ", " : "", schema[i].name);
          g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_UNKNOWN_GROUP,
                       "%s: [%s]: unknown group (known groups: %s)", ctx->path, groups[g], known->str);
          return FALSE;
        }
      g_auto (GStrv) keys = g_key_file_get_keys (ctx->kf, groups[g], NULL, NULL);
      for (gsize k = 0; keys != NULL && keys[k] != NULL; k++)
        {
          /* GKeyFile keeps a repeated key twice and returns the last value;
           * a second line would be silently lost, so refuse it. */
          for (gsize j = 0; j < k; j++)
            if (strcmp (keys[j], keys[k]) == 0)
              {
                set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, groups[g], keys[k],
                               "set more than once (put list items on one line, separated by ';')");
                return FALSE;
              }
          if (gs->keys != NULL && !g_strv_contains (gs->keys, keys[k]))
            {
              set_key_error (error, ctx, BG_CONFIG_ERROR_UNKNOWN_KEY, groups[g], keys[k], "unknown key");
              return FALSE;
            }
        }
    }
  return TRUE;
}

/* ---- Value readers ----------------------------------------------------------
 * Each leaves *out untouched (the default) when the key is absent. */

/* GKeyFile's own message for a value it cannot unescape names neither the
 * file nor the reason; say which of the two reasons it is. */
static void
set_value_error (const Ctx *ctx, const char *group, const char *key, GError **error)
{
  g_autofree char *raw = g_key_file_get_value (ctx->kf, group, key, NULL);
  if (raw != NULL && !g_utf8_validate (raw, -1, NULL))
    set_key_error (error, ctx, BG_CONFIG_ERROR_PARSE, group, key, "the value is not valid UTF-8");
  else
    set_key_error (error, ctx, BG_CONFIG_ERROR_PARSE, group, key,
                   "the value has an invalid escape sequence (write \\\\ for a backslash)");
}

/* GKeyFile-unescaped and stripped; *out NULL when absent. */
static gboolean
lookup_string (const Ctx *ctx, const char *group, const char *key, char **out, GError **error)
{
  if (!g_key_file_has_key (ctx->kf, group, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  char *s = g_key_file_get_string (ctx->kf, group, key, &local);
  /* On a bad escape GKeyFile sets the error but still returns a string. */
  if (local != NULL)
    {
      g_free (s);
      set_value_error (ctx, group, key, error);
      return FALSE;
    }
  g_free (*out);
  *out = g_strstrip (s);
  return TRUE;
}

/* The value exactly as written (no escape processing), stripped: command
 * lines and librdkafka values keep their backslashes. */
static char *
lookup_raw (const Ctx *ctx, const char *group, const char *key)
{
  if (!g_key_file_has_key (ctx->kf, group, key, NULL))
    return NULL;
  char *s = g_key_file_get_value (ctx->kf, group, key, NULL);
  return s != NULL ? g_strstrip (s) : NULL;
}

static gboolean
lookup_uint (const Ctx *ctx, const char *group, const char *key,
             guint64 min, guint64 max, guint64 *out, GError **error)
{
  g_autofree char *s = NULL;
  if (!lookup_string (ctx, group, key, &s, error))
    return FALSE;
  if (s == NULL)
    return TRUE;
  guint64 v;
  g_autoptr (GError) local = NULL;
  if (!g_ascii_string_to_unsigned (s, 10, min, max, &v, &local))
    {
      /* "-1" is a number, just not one in range. */
      gboolean negative = s[0] == '-' && s[1] != '\0' && strspn (s + 1, "0123456789") == strlen (s + 1);
      if (negative || g_error_matches (local, G_NUMBER_PARSER_ERROR, G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS))
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                       "\"%s\" is out of range (%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ")",
                       s, min, max);
      else
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                       "\"%s\" is not an integer (use digits only)", s);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static gboolean
is_decimal (const char *s)
{
  gsize digits = 0, dots = 0;
  for (const char *p = s; *p != '\0'; p++)
    {
      if (g_ascii_isdigit (*p))
        digits++;
      else if (*p == '.' && dots == 0)
        dots++;
      else
        return FALSE;
    }
  return digits > 0;
}

/* Seconds with an optional fraction ("2", "0.5"), stored as microseconds.
 * @positive: 0 is refused too. */
static gboolean
lookup_seconds (const Ctx *ctx, const char *group, const char *key,
                gboolean positive, gint64 *usec_out, GError **error)
{
  g_autofree char *s = NULL;
  if (!lookup_string (ctx, group, key, &s, error))
    return FALSE;
  if (s == NULL)
    return TRUE;
  /* g_ascii_strtod alone would take "0x1p3", "inf" and "nan". */
  if (!is_decimal (s))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                     "\"%s\" is not a number of seconds (e.g. 10 or 2.5)", s);
      return FALSE;
    }
  double v = g_ascii_strtod (s, NULL);
  /* v >= 0 (no sign allowed), so adding 0.5 rounds; no libm needed. Range
   * first: converting a double beyond gint64 is undefined behaviour. */
  gint64 usec = v > MAX_SECONDS ? 0 : (gint64) (v * G_USEC_PER_SEC + 0.5);
  if (v > MAX_SECONDS || (positive && usec <= 0))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                     "\"%s\" is out of range (%s%.0f seconds)", s,
                     positive ? "more than 0, at most " : "0..", MAX_SECONDS);
      return FALSE;
    }
  *usec_out = usec;
  return TRUE;
}

/* A byte size with an optional binary K/M/G/T suffix, or "infinity". */
static gboolean
lookup_size (const Ctx *ctx, const char *group, const char *key, guint64 *out, GError **error)
{
  g_autofree char *s = NULL;
  if (!lookup_string (ctx, group, key, &s, error))
    return FALSE;
  if (s == NULL)
    return TRUE;
  if (strcmp (s, "infinity") == 0)
    {
      *out = BG_CONFIG_INFINITY;
      return TRUE;
    }
  gsize len = strlen (s);
  guint shift = 0;
  const char *suffixes = "KMGT";
  const char *suffix = len > 0 ? strchr (suffixes, s[len - 1]) : NULL;
  if (suffix != NULL && *suffix != '\0')
    shift = 10 * (guint) (suffix - suffixes + 1);
  g_autofree char *digits = g_strndup (s, shift ? len - 1 : len);
  guint64 v;
  gboolean all_digits = digits[0] != '\0';
  for (const char *p = digits; *p != '\0'; p++)
    all_digits = all_digits && g_ascii_isdigit (*p);
  if (!all_digits || !g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT64, &v, NULL))
    {
      if (all_digits) /* only overflow gets here */
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                       "\"%s\" is too large", s);
      else
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                       "\"%s\" is not a size (use a number with an optional K, M, G or T suffix, or \"infinity\")", s);
      return FALSE;
    }
  if (v == 0 || v > (G_MAXUINT64 >> shift) || (v << shift) == BG_CONFIG_INFINITY)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                     v == 0 ? "\"%s\" is out of range (at least 1 byte, or \"infinity\")"
                            : "\"%s\" is too large", s);
      return FALSE;
    }
  *out = v << shift;
  return TRUE;
}

/* A GKeyFile list, items stripped; an empty item is an error. Absent or
 * empty: an empty (non-NULL) vector. */
static gboolean
lookup_list (const Ctx *ctx, const char *group, const char *key, char ***out, GError **error)
{
  g_auto (GStrv) items = NULL;
  if (g_key_file_has_key (ctx->kf, group, key, NULL))
    {
      g_autoptr (GError) local = NULL;
      items = g_key_file_get_string_list (ctx->kf, group, key, NULL, &local);
      if (local != NULL)
        {
          set_value_error (ctx, group, key, error);
          return FALSE;
        }
    }
  if (items == NULL)
    items = g_new0 (char *, 1);
  for (gsize i = 0; items[i] != NULL; i++)
    if (g_strstrip (items[i])[0] == '\0')
      {
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                       "item %zu of the list is empty", i + 1);
        return FALSE;
      }
  g_strfreev (*out);
  *out = g_steal_pointer (&items);
  return TRUE;
}

static gboolean
lookup_absolute_path (const Ctx *ctx, const char *group, const char *key,
                      gboolean empty_unsets, char **out, GError **error)
{
  g_autofree char *s = NULL;
  if (!lookup_string (ctx, group, key, &s, error))
    return FALSE;
  if (s == NULL)
    return TRUE;
  if (s[0] == '\0' && empty_unsets)
    {
      g_clear_pointer (out, g_free);
      return TRUE;
    }
  if (!g_path_is_absolute (s))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                     "\"%s\" is not an absolute path", s);
      return FALSE;
    }
  g_free (*out);
  *out = g_steal_pointer (&s);
  return TRUE;
}

/* Kafka's own rule for topic names. */
static gboolean
topic_name_is_valid (const char *name)
{
  gsize len = strlen (name);
  if (len == 0 || len > 249 || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._-", *p) == NULL)
      return FALSE;
  return TRUE;
}

#define TOPIC_RULE "1..249 characters of A-Z a-z 0-9 . _ -"
#define NAME_RULE "1..64 characters of a-z 0-9 . _ -, starting with a letter or digit"
#define VERSION_RULE "1..64 characters of A-Z a-z 0-9 . _ + ~ -, not starting with . or -"

/* A command-line template: split with shell rules, argv[0] absolute, only
 * the specifiers in @specs. An empty value unsets an optional key. */
static gboolean
lookup_command (const Ctx *ctx, const char *group, const char *key, gboolean required,
                const Specifier *specs, gsize n_specs,
                char **line_out, char ***argv_out, GError **error)
{
  g_autofree char *line = lookup_raw (ctx, group, key);
  if (line == NULL || line[0] == '\0')
    {
      if (!required)
        return TRUE;
      set_key_error (error, ctx, BG_CONFIG_ERROR_MISSING_KEY, group, key,
                     line == NULL ? "required key is missing" : "required key is empty");
      return FALSE;
    }
  g_auto (GStrv) argv = NULL;
  g_autoptr (GError) local = NULL;
  if (!g_shell_parse_argv (line, NULL, &argv, &local))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                     "cannot split \"%s\" into arguments: %s", line, local->message);
      return FALSE;
    }
  if (argv[0][0] != '/')
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                     "the program \"%s\" is not an absolute path", argv[0]);
      return FALSE;
    }
  g_auto (GStrv) trial = expand_argv ((const char *const *) argv, specs, n_specs, &local);
  if (trial == NULL)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key, "%s", local->message);
      return FALSE;
    }
  *line_out = g_steal_pointer (&line);
  *argv_out = g_steal_pointer (&argv);
  return TRUE;
}

static gboolean
check_environment (const Ctx *ctx, const char *group, const char *key,
                   char *const *env, GError **error)
{
  for (gsize i = 0; env[i] != NULL; i++)
    {
      const char *eq = strchr (env[i], '=');
      gboolean ok = eq != NULL && eq != env[i] && !g_ascii_isdigit (env[i][0]);
      for (const char *p = env[i]; ok && p < eq; p++)
        ok = g_ascii_isalnum (*p) || *p == '_';
      if (!ok)
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                         "\"%s\" is not an assignment NAME=VALUE (NAME of A-Z a-z 0-9 _, not starting with a digit)",
                         env[i]);
          return FALSE;
        }
      /* The agent sets these per slot; a job file overriding them would
       * lie to the job about who it is. */
      if (g_str_has_prefix (env[i], "BLUEGREEN_"))
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, key,
                         "\"%.*s\" is reserved: the agent sets the BLUEGREEN_* variables itself",
                         (int) (eq - env[i]), env[i]);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
load_key_file (const char *path, const char *data, GKeyFile **kf_out, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_autofree char *contents = NULL;
  if (data == NULL)
    {
      if (!g_file_get_contents (path, &contents, NULL, &local))
        {
          g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_READ,
                       "%s: cannot read the file: %s", path, local->message);
          return FALSE;
        }
      data = contents;
    }
  /* Translations are kept so that "Description[de]=" shows up as an
   * unknown key instead of vanishing. */
  if (!g_key_file_load_from_data (kf, data, -1, G_KEY_FILE_KEEP_TRANSLATIONS, &local))
    {
      g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_PARSE,
                   "%s: not a valid key file: %s", path, local->message);
      return FALSE;
    }
  *kf_out = g_steal_pointer (&kf);
  return TRUE;
}

/* ---- bluegreend.conf ------------------------------------------------------- */

static const char *const agent_keys[] = {
  "HostId", "Bus", "StateDirectory", "JobsDirectory", "MetricsDirectory",
  "HeartbeatSec", "FleetKeyFile", "MaxJobs", "SlotLogMaxSize", NULL
};
static const char *const kafka_keys[] = { "BootstrapServers", "ControlTopic", "PropertiesFile", NULL };

static const GroupSchema agent_schema[] = {
  { "Agent", agent_keys },
  { "Kafka", kafka_keys },
  { "Kafka.Properties", NULL },
};

void
bg_config_property_free (BgConfigProperty *p)
{
  g_free (p->key);
  g_free (p->value);
  g_free (p);
}

static BgAgentConfig *
agent_config_new (const char *path)
{
  BgAgentConfig *c = g_new0 (BgAgentConfig, 1);
  c->ref_count = 1;
  c->path = g_strdup (path);
  c->bus = G_BUS_TYPE_SYSTEM;
  c->state_directory = g_strdup (BG_CONFIG_DEFAULT_STATE_DIRECTORY);
  c->jobs_directory = g_strdup (BG_CONFIG_DEFAULT_JOBS_DIRECTORY);
  c->metrics_directory = g_strdup (BG_CONFIG_DEFAULT_METRICS_DIRECTORY);
  c->heartbeat_usec = BG_CONFIG_DEFAULT_HEARTBEAT_SEC * G_USEC_PER_SEC;
  c->max_jobs = BG_CONFIG_DEFAULT_MAX_JOBS;
  c->slot_log_max_bytes = BG_CONFIG_DEFAULT_SLOT_LOG_MAX_BYTES;
  c->control_topic = g_strdup (BG_CONFIG_DEFAULT_CONTROL_TOPIC);
  c->kafka_properties = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_config_property_free);
  return c;
}

BgAgentConfig *
bg_agent_config_ref (BgAgentConfig *config)
{
  g_atomic_int_inc (&config->ref_count);
  return config;
}

void
bg_agent_config_unref (BgAgentConfig *c)
{
  if (c == NULL || !g_atomic_int_dec_and_test (&c->ref_count))
    return;
  g_free (c->path);
  g_free (c->host_id);
  g_free (c->state_directory);
  g_free (c->jobs_directory);
  g_free (c->metrics_directory);
  g_free (c->fleet_key_file);
  g_free (c->bootstrap_servers);
  g_free (c->control_topic);
  g_free (c->properties_file);
  g_ptr_array_unref (c->kafka_properties);
  g_free (c);
}

static gboolean
read_host_id (const Ctx *ctx, BgAgentConfig *c, GError **error)
{
  if (!lookup_string (ctx, "Agent", "HostId", &c->host_id, error))
    return FALSE;
  if (c->host_id != NULL)
    {
      if (!bg_name_is_valid (c->host_id))
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_NAME, "Agent", "HostId",
                         "\"%s\" is not a valid host id (" NAME_RULE ")", c->host_id);
          return FALSE;
        }
      return TRUE;
    }
  /* The host name, lowercased, is what an operator expects to see; if it
   * does not fit the rule we refuse rather than invent a mangled id that
   * other hosts would then have to guess. */
  g_autofree char *host = g_ascii_strdown (g_get_host_name (), -1);
  if (!bg_name_is_valid (host))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_MISSING_KEY, "Agent", "HostId",
                     "not set, and the host name \"%s\" is not a valid host id (" NAME_RULE "); set HostId=",
                     host);
      return FALSE;
    }
  c->host_id = g_steal_pointer (&host);
  return TRUE;
}

static gboolean
read_agent_group (const Ctx *ctx, BgAgentConfig *c, GError **error)
{
  if (!read_host_id (ctx, c, error))
    return FALSE;

  g_autofree char *bus = NULL;
  if (!lookup_string (ctx, "Agent", "Bus", &bus, error))
    return FALSE;
  if (g_strcmp0 (bus, "session") == 0)
    c->bus = G_BUS_TYPE_SESSION;
  else if (bus != NULL && strcmp (bus, "system") != 0)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Agent", "Bus",
                     "\"%s\" is not a bus (use \"system\" or \"session\")", bus);
      return FALSE;
    }

  guint64 max_jobs = c->max_jobs;
  if (!lookup_absolute_path (ctx, "Agent", "StateDirectory", FALSE, &c->state_directory, error) ||
      !lookup_absolute_path (ctx, "Agent", "JobsDirectory", FALSE, &c->jobs_directory, error) ||
      !lookup_absolute_path (ctx, "Agent", "MetricsDirectory", TRUE, &c->metrics_directory, error) ||
      !lookup_absolute_path (ctx, "Agent", "FleetKeyFile", TRUE, &c->fleet_key_file, error) ||
      !lookup_seconds (ctx, "Agent", "HeartbeatSec", TRUE, &c->heartbeat_usec, error) ||
      !lookup_uint (ctx, "Agent", "MaxJobs", 1, BG_CONFIG_MAX_MAX_JOBS, &max_jobs, error) ||
      !lookup_size (ctx, "Agent", "SlotLogMaxSize", &c->slot_log_max_bytes, error))
    return FALSE;
  c->max_jobs = (guint) max_jobs;
  return TRUE;
}

/* librdkafka properties whose value is a secret. */
static const char *const secret_properties[] = {
  "sasl.password", "ssl.key.password", "ssl.keystore.password",
  "sasl.oauthbearer.client.secret", "ssl.key.pem", NULL
};

gboolean
bg_config_read_properties_file (const char *path, GPtrArray *out, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &contents, NULL, &local))
    {
      g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_READ,
                   "%s: cannot read the Kafka properties file: %s", path, local->message);
      return FALSE;
    }
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  rd_kafka_conf_t *scratch = rd_kafka_conf_new ();
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      if (line[0] == '\0' || line[0] == '#')
        continue;
      char *eq = strchr (line, '=');
      if (eq == NULL || eq == line)
        {
          g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_PARSE,
                       "%s:%zu: not a property (write key=value)", path, i + 1);
          rd_kafka_conf_destroy (scratch);
          return FALSE;
        }
      *eq = '\0';
      const char *key = g_strstrip (line);
      const char *value = g_strstrip (eq + 1);
      char errstr[512];
      rd_kafka_conf_res_t res = rd_kafka_conf_set (scratch, key, value, errstr, sizeof errstr);
      if (res != RD_KAFKA_CONF_OK)
        {
          /* The value may be a secret: the message names the key only. */
          g_set_error (error, BG_CONFIG_ERROR,
                       res == RD_KAFKA_CONF_UNKNOWN ? BG_CONFIG_ERROR_UNKNOWN_KEY : BG_CONFIG_ERROR_INVALID_VALUE,
                       "%s:%zu: %s: librdkafka refuses it%s", path, i + 1, key,
                       res == RD_KAFKA_CONF_UNKNOWN ? " (unknown property)" : " (invalid value)");
          rd_kafka_conf_destroy (scratch);
          return FALSE;
        }
      BgConfigProperty *p = g_new0 (BgConfigProperty, 1);
      p->key = g_strdup (key);
      p->value = g_strdup (value);
      g_ptr_array_add (out, p);
    }
  rd_kafka_conf_destroy (scratch);
  return TRUE;
}

/* [Kafka] PropertiesFile=: a bare name is a credential of the agent's unit. */
static gboolean
read_properties_file_key (const Ctx *ctx, BgAgentConfig *c, GError **error)
{
  g_autofree char *name = NULL;
  if (!lookup_string (ctx, "Kafka", "PropertiesFile", &name, error))
    return FALSE;
  if (name == NULL || name[0] == '\0')
    return TRUE;
  if (!g_path_is_absolute (name))
    {
      const char *creds = g_getenv ("CREDENTIALS_DIRECTORY");
      if (strchr (name, '/') != NULL)
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Kafka", "PropertiesFile",
                         "\"%s\" is neither an absolute path nor a credential name (no '/')", name);
          return FALSE;
        }
      if (creds == NULL || creds[0] == '\0')
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_READ, "Kafka", "PropertiesFile",
                         "\"%s\" is a credential name, but $CREDENTIALS_DIRECTORY is not set "
                         "(add LoadCredential=%s:PATH to the agent's unit)", name, name);
          return FALSE;
        }
      c->properties_file = g_build_filename (creds, name, NULL);
    }
  else
    c->properties_file = g_steal_pointer (&name);
  g_autoptr (GError) local = NULL;
  if (!bg_config_read_properties_file (c->properties_file, c->kafka_properties, &local))
    {
      set_key_error (error, ctx, (BgConfigError) local->code, "Kafka", "PropertiesFile", "%s", local->message);
      return FALSE;
    }
  for (guint i = 0; i < c->kafka_properties->len; i++)
    {
      const BgConfigProperty *p = c->kafka_properties->pdata[i];
      if (strcmp (p->key, "bootstrap.servers") == 0 || strcmp (p->key, "metadata.broker.list") == 0)
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Kafka", "PropertiesFile",
                         "%s: %s: set BootstrapServers= in [Kafka] instead", c->properties_file, p->key);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
read_kafka_groups (const Ctx *ctx, BgAgentConfig *c, GError **error)
{
  if (!lookup_string (ctx, "Kafka", "BootstrapServers", &c->bootstrap_servers, error))
    return FALSE;
  if (c->bootstrap_servers == NULL || c->bootstrap_servers[0] == '\0')
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_MISSING_KEY, "Kafka", "BootstrapServers",
                     c->bootstrap_servers == NULL ? "required key is missing" : "required key is empty");
      return FALSE;
    }
  if (!lookup_string (ctx, "Kafka", "ControlTopic", &c->control_topic, error))
    return FALSE;
  if (!topic_name_is_valid (c->control_topic))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Kafka", "ControlTopic",
                     "\"%s\" is not a valid topic name (" TOPIC_RULE ")", c->control_topic);
      return FALSE;
    }

  if (!read_properties_file_key (ctx, c, error))
    return FALSE;

  const char *group = "Kafka.Properties";
  g_auto (GStrv) keys = g_key_file_get_keys (ctx->kf, group, NULL, NULL);
  /* librdkafka itself judges names and values, on a scratch configuration,
   * so a typo surfaces here, with file and key, not when the agent starts
   * its first client. */
  rd_kafka_conf_t *scratch = rd_kafka_conf_new ();
  for (gsize i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *value = lookup_raw (ctx, group, keys[i]);
      if (strcmp (keys[i], "bootstrap.servers") == 0 || strcmp (keys[i], "metadata.broker.list") == 0)
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, group, keys[i],
                         "set BootstrapServers= in [Kafka] instead");
          rd_kafka_conf_destroy (scratch);
          return FALSE;
        }
      char errstr[512];
      rd_kafka_conf_res_t res = rd_kafka_conf_set (scratch, keys[i], value, errstr, sizeof errstr);
      if (res != RD_KAFKA_CONF_OK)
        {
          set_key_error (error, ctx,
                         res == RD_KAFKA_CONF_UNKNOWN ? BG_CONFIG_ERROR_UNKNOWN_KEY : BG_CONFIG_ERROR_INVALID_VALUE,
                         group, keys[i], "librdkafka refuses it: %s", errstr);
          rd_kafka_conf_destroy (scratch);
          return FALSE;
        }
      BgConfigProperty *p = g_new0 (BgConfigProperty, 1);
      p->key = g_strdup (keys[i]);
      p->value = g_steal_pointer (&value);
      g_ptr_array_add (c->kafka_properties, p);
    }
  rd_kafka_conf_destroy (scratch);
  return TRUE;
}

BgAgentConfig *
bg_agent_config_load_from_data (const char *path, const char *data, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GKeyFile) kf = NULL;
  if (!load_key_file (path, data, &kf, error))
    return NULL;
  Ctx ctx = { path, kf };
  if (!check_schema (&ctx, agent_schema, G_N_ELEMENTS (agent_schema), error))
    return NULL;
  g_autoptr (BgAgentConfig) c = agent_config_new (path);
  if (!read_agent_group (&ctx, c, error) || !read_kafka_groups (&ctx, c, error))
    return NULL;
  return g_steal_pointer (&c);
}

/* Refuses a bluegreend.conf that carries a secret while its group or
 * others may read it. Refused rather than warned about: a warning in a log
 * nobody reads leaves the password readable; the fix is one chmod or a
 * move to PropertiesFile=. */
static gboolean
check_secrets_mode (const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = NULL;
  if (!load_key_file (path, NULL, &kf, NULL))
    return TRUE; /* the load reports it */
  struct stat st;
  if (stat (path, &st) != 0 || (st.st_mode & 0077) == 0)
    return TRUE;
  for (gsize i = 0; secret_properties[i] != NULL; i++)
    if (g_key_file_has_key (kf, "Kafka.Properties", secret_properties[i], NULL))
      {
        g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INSECURE,
                     "%s: [Kafka.Properties] %s: a secret in a file readable by %s (mode %04o); "
                     "chmod 0600 the file, or move the secret to [Kafka] PropertiesFile= "
                     "(a systemd credential)", path, secret_properties[i],
                     (st.st_mode & 0007) ? "others" : "its group", (unsigned) (st.st_mode & 07777));
        return FALSE;
      }
  return TRUE;
}

BgAgentConfig *
bg_agent_config_load (const char *path, GError **error)
{
  if (!check_secrets_mode (path, error))
    return NULL;
  return bg_agent_config_load_from_data (path, NULL, error);
}

/* ---- jobs.d/NAME.job ------------------------------------------------------- */

static const char *const job_keys[] = {
  "Description", "ExecStart", "ExecSavepoint", "InputTopics", "OutputTopics",
  "ConsumerGroup", "Hosts", "Environment", "SavepointsKept", "StartTimeoutSec", "WatchdogSec",
  /* the slot unit's restart policy (read_restart_keys) */
  "Restart", "RestartSec", "StartLimitBurst", "StartLimitIntervalSec",
  NULL
};
static const char *const readiness_keys[] = { "MaxLag", "StableSec", "HealthCommand", NULL };
static const char *const resources_keys[] = { "CPUWeight", "CatchUpCPUWeight", "MemoryMax", "TasksMax", NULL };
static const char *const cutover_keys[] = { "ObservationSec", "DeadlineSec", "LeadFactor", "Attempts", NULL };
static const char *const guard_keys[] = { "Environment", "IPAddressDeny", NULL };
static const char *const sandbox_keys[] = {
  "User", "Group", "DynamicUser", "Hardening", "ReadWritePaths", "BindPaths",
  "LoadCredential", "EnvironmentFile", NULL
};

static const GroupSchema job_schema[] = {
  { "Job", job_keys },
  { "Readiness", readiness_keys },
  { "Resources", resources_keys },
  { "Cutover", cutover_keys },
  { "Guard", guard_keys },
  { "Sandbox", sandbox_keys },
};

/* Placeholder values: at load time only the specifier letters are checked. */
static const Specifier exec_specs[] = { { 'v', "0" }, { 'j', "j" } };
static const Specifier savepoint_specs[] = { { 'v', "0" }, { 'j', "j" }, { 'd', "/" } };
static const Specifier health_specs[] = { { 'v', "0" }, { 'j', "j" }, { 'c', "blue" } };
static const Specifier group_specs[] = { { 'j', "j" }, { 'c', "blue" }, { 'v', "0" } };

static BgJobConfig *
job_config_new (const char *path, const char *name)
{
  BgJobConfig *j = g_new0 (BgJobConfig, 1);
  j->ref_count = 1;
  j->path = g_strdup (path);
  j->name = g_strdup (name);
  j->description = g_strdup ("");
  j->consumer_group = g_strdup (BG_CONFIG_DEFAULT_CONSUMER_GROUP);
  j->input_topics = g_new0 (char *, 1);
  j->input_partitions = g_new0 (gint32, 1);
  j->output_topics = g_new0 (char *, 1);
  j->hosts = g_new0 (char *, 1);
  j->environment = g_new0 (char *, 1);
  j->max_lag = BG_CONFIG_DEFAULT_MAX_LAG;
  j->stable_usec = BG_CONFIG_DEFAULT_STABLE_SEC * G_USEC_PER_SEC;
  j->observation_usec = BG_CONFIG_DEFAULT_OBSERVATION_SEC * G_USEC_PER_SEC;
  j->deadline_usec = BG_CONFIG_DEFAULT_DEADLINE_SEC * G_USEC_PER_SEC;
  j->lead_usec = BG_CONFIG_DEFAULT_LEAD_USEC;
  j->cutover_attempts = BG_CONFIG_DEFAULT_CUTOVER_ATTEMPTS;
  j->savepoints_kept = BG_CONFIG_DEFAULT_SAVEPOINTS_KEPT;
  j->start_timeout_usec = BG_CONFIG_DEFAULT_START_TIMEOUT_SEC * G_USEC_PER_SEC;
  j->watchdog_usec = BG_CONFIG_DEFAULT_WATCHDOG_SEC * G_USEC_PER_SEC;
  j->restart_on_failure = TRUE;
  j->restart_usec = BG_CONFIG_DEFAULT_RESTART_SEC * G_USEC_PER_SEC;
  j->start_limit_burst = BG_CONFIG_DEFAULT_START_LIMIT_BURST;
  j->start_limit_interval_usec = BG_CONFIG_DEFAULT_START_LIMIT_INTERVAL_SEC * G_USEC_PER_SEC;
  j->guard_environment = g_new0 (char *, 1);
  j->guard_ip_address_deny = g_new0 (char *, 1);
  j->hardening = BG_HARDENING_DEFAULT;
  j->read_write_paths = g_new0 (char *, 1);
  j->bind_paths = g_new0 (char *, 1);
  j->load_credentials = g_new0 (char *, 1);
  j->environment_files = g_new0 (char *, 1);
  return j;
}

BgJobConfig *
bg_job_config_ref (BgJobConfig *job)
{
  g_atomic_int_inc (&job->ref_count);
  return job;
}

void
bg_job_config_unref (BgJobConfig *j)
{
  if (j == NULL || !g_atomic_int_dec_and_test (&j->ref_count))
    return;
  g_free (j->path);
  g_free (j->name);
  g_free (j->description);
  g_free (j->exec_start);
  g_strfreev (j->exec_start_argv);
  g_free (j->exec_savepoint);
  g_strfreev (j->exec_savepoint_argv);
  g_strfreev (j->input_topics);
  g_free (j->input_partitions);
  g_strfreev (j->output_topics);
  g_free (j->consumer_group);
  g_strfreev (j->hosts);
  g_strfreev (j->environment);
  g_free (j->health_command);
  g_strfreev (j->health_argv);
  g_strfreev (j->guard_environment);
  g_strfreev (j->guard_ip_address_deny);
  g_free (j->user);
  g_free (j->group);
  g_strfreev (j->read_write_paths);
  g_strfreev (j->bind_paths);
  g_strfreev (j->load_credentials);
  g_strfreev (j->environment_files);
  g_free (j);
}

/* InputTopics=: "name" or "name:partitions". */
static gboolean
read_input_topics (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  g_auto (GStrv) items = NULL;
  if (!lookup_list (ctx, "Job", "InputTopics", &items, error))
    return FALSE;
  guint n = g_strv_length (items);
  if (n == 0)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_MISSING_KEY, "Job", "InputTopics",
                     "at least one input topic is required");
      return FALSE;
    }
  g_autofree gint32 *partitions = g_new0 (gint32, n + 1);
  for (guint i = 0; i < n; i++)
    {
      char *colon = strchr (items[i], ':');
      if (colon != NULL)
        {
          guint64 np;
          if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, KAFKA_MAX_PARTITIONS, &np, NULL))
            {
              set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics",
                             "\"%s\": the partition count after ':' must be an integer in 1..%d",
                             items[i], KAFKA_MAX_PARTITIONS);
              return FALSE;
            }
          partitions[i] = (gint32) np;
          *colon = '\0';
        }
      if (!topic_name_is_valid (items[i]))
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics",
                         "\"%s\" is not a valid topic name (" TOPIC_RULE ")", items[i]);
          return FALSE;
        }
      for (guint k = 0; k < i; k++)
        if (strcmp (items[k], items[i]) == 0)
          {
            set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "InputTopics",
                           "topic \"%s\" is listed twice", items[i]);
            return FALSE;
          }
    }
  g_strfreev (j->input_topics);
  g_free (j->input_partitions);
  j->input_topics = g_steal_pointer (&items);
  j->input_partitions = g_steal_pointer (&partitions);
  return TRUE;
}

static gboolean
read_job_group (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  if (!lookup_string (ctx, "Job", "Description", &j->description, error) ||
      !lookup_command (ctx, "Job", "ExecStart", TRUE, exec_specs, G_N_ELEMENTS (exec_specs),
                       &j->exec_start, &j->exec_start_argv, error) ||
      !lookup_command (ctx, "Job", "ExecSavepoint", FALSE, savepoint_specs, G_N_ELEMENTS (savepoint_specs),
                       &j->exec_savepoint, &j->exec_savepoint_argv, error) ||
      !read_input_topics (ctx, j, error) ||
      !lookup_list (ctx, "Job", "OutputTopics", &j->output_topics, error) ||
      !lookup_string (ctx, "Job", "ConsumerGroup", &j->consumer_group, error) ||
      !lookup_list (ctx, "Job", "Hosts", &j->hosts, error) ||
      !lookup_list (ctx, "Job", "Environment", &j->environment, error) ||
      !check_environment (ctx, "Job", "Environment", j->environment, error) ||
      !lookup_seconds (ctx, "Job", "StartTimeoutSec", TRUE, &j->start_timeout_usec, error) ||
      !lookup_seconds (ctx, "Job", "WatchdogSec", FALSE, &j->watchdog_usec, error))
    return FALSE;
  {
    guint64 kept = j->savepoints_kept;
    if (!lookup_uint (ctx, "Job", "SavepointsKept", 1, BG_CONFIG_MAX_SAVEPOINTS_KEPT, &kept, error))
      return FALSE;
    j->savepoints_kept = (guint) kept;
  }

  for (gsize i = 0; j->output_topics[i] != NULL; i++)
    if (!topic_name_is_valid (j->output_topics[i]))
      {
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "OutputTopics",
                       "\"%s\" is not a valid topic name (" TOPIC_RULE ")", j->output_topics[i]);
        return FALSE;
      }

  if (j->consumer_group[0] == '\0')
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ConsumerGroup",
                     "must not be empty (leave it out for the default \"%s\")",
                     BG_CONFIG_DEFAULT_CONSUMER_GROUP);
      return FALSE;
    }
  g_autoptr (GError) local = NULL;
  g_autofree char *trial = expand_specifiers (j->consumer_group, group_specs, G_N_ELEMENTS (group_specs), &local);
  if (trial == NULL)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "ConsumerGroup", "%s", local->message);
      return FALSE;
    }

  for (gsize i = 0; j->hosts[i] != NULL; i++)
    {
      if (!bg_name_is_valid (j->hosts[i]))
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_NAME, "Job", "Hosts",
                         "\"%s\" is not a valid host id (" NAME_RULE ")", j->hosts[i]);
          return FALSE;
        }
      for (gsize k = 0; k < i; k++)
        if (strcmp (j->hosts[k], j->hosts[i]) == 0)
          {
            set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Hosts",
                           "host \"%s\" is listed twice", j->hosts[i]);
            return FALSE;
          }
    }
  return TRUE;
}

/* [Job] Restart=, RestartSec=, StartLimitBurst=, StartLimitIntervalSec=:
 * systemd's own settings of the same names, for the slot units. */
static gboolean
read_restart_keys (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  g_autofree char *restart = NULL;
  guint64 burst = j->start_limit_burst;

  if (!lookup_string (ctx, "Job", "Restart", &restart, error) ||
      !lookup_seconds (ctx, "Job", "RestartSec", FALSE, &j->restart_usec, error) ||
      !lookup_uint (ctx, "Job", "StartLimitBurst", 1, BG_CONFIG_MAX_START_LIMIT_BURST, &burst, error) ||
      !lookup_seconds (ctx, "Job", "StartLimitIntervalSec", TRUE, &j->start_limit_interval_usec, error))
    return FALSE;
  j->start_limit_burst = (guint) burst;
  if (restart == NULL)
    return TRUE;
  if (strcmp (restart, "no") == 0)
    j->restart_on_failure = FALSE;
  else if (strcmp (restart, "on-failure") == 0)
    j->restart_on_failure = TRUE;
  else
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Job", "Restart",
                     "\"%s\": expected \"on-failure\" or \"no\"", restart);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_readiness_group (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  guint64 max_lag = (guint64) j->max_lag;
  if (!lookup_uint (ctx, "Readiness", "MaxLag", 0, G_MAXINT64, &max_lag, error) ||
      !lookup_seconds (ctx, "Readiness", "StableSec", FALSE, &j->stable_usec, error) ||
      !lookup_command (ctx, "Readiness", "HealthCommand", FALSE, health_specs, G_N_ELEMENTS (health_specs),
                       &j->health_command, &j->health_argv, error))
    return FALSE;
  j->max_lag = (gint64) max_lag;
  return TRUE;
}

static gboolean
read_resources_group (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  guint64 cpu = 0, catch_up = 0;
  if (!lookup_uint (ctx, "Resources", "CPUWeight", 1, 10000, &cpu, error) ||
      !lookup_uint (ctx, "Resources", "CatchUpCPUWeight", 1, 10000, &catch_up, error) ||
      !lookup_size (ctx, "Resources", "MemoryMax", &j->memory_max, error))
    return FALSE;
  j->cpu_weight = (guint) cpu;
  j->catch_up_cpu_weight = (guint) catch_up;

  g_autofree char *tasks = NULL;
  if (!lookup_string (ctx, "Resources", "TasksMax", &tasks, error))
    return FALSE;
  if (tasks == NULL)
    return TRUE;
  if (strcmp (tasks, "infinity") == 0)
    {
      j->tasks_max = BG_CONFIG_INFINITY;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (tasks, 10, 1, G_MAXUINT64 - 1, &j->tasks_max, NULL))
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Resources", "TasksMax",
                     "\"%s\" is not a number of tasks (at least 1) or \"infinity\"", tasks);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_cutover_group (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  guint64 attempts = j->cutover_attempts;

  if (!lookup_seconds (ctx, "Cutover", "ObservationSec", FALSE, &j->observation_usec, error) ||
      !lookup_seconds (ctx, "Cutover", "DeadlineSec", TRUE, &j->deadline_usec, error) ||
      !lookup_seconds (ctx, "Cutover", "LeadFactor", FALSE, &j->lead_usec, error) ||
      !lookup_uint (ctx, "Cutover", "Attempts", 1, BG_CONFIG_MAX_CUTOVER_ATTEMPTS, &attempts, error))
    return FALSE;
  j->cutover_attempts = (guint) attempts;
  return TRUE;
}

static gboolean
ip_deny_item_is_valid (const char *item)
{
  /* systemd's symbolic names, or an address with an optional prefix. */
  static const char *const words[] = { "any", "localhost", "link-local", "multicast", NULL };
  if (g_strv_contains (words, item))
    return TRUE;
  g_autoptr (GInetAddressMask) mask = g_inet_address_mask_new_from_string (item, NULL);
  return mask != NULL;
}

static gboolean
read_guard_group (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  if (!lookup_list (ctx, "Guard", "Environment", &j->guard_environment, error) ||
      !check_environment (ctx, "Guard", "Environment", j->guard_environment, error) ||
      !lookup_list (ctx, "Guard", "IPAddressDeny", &j->guard_ip_address_deny, error))
    return FALSE;
  for (gsize i = 0; j->guard_ip_address_deny[i] != NULL; i++)
    if (!ip_deny_item_is_valid (j->guard_ip_address_deny[i]))
      {
        set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Guard", "IPAddressDeny",
                       "\"%s\" is not an address, an address/prefix, or one of any, localhost, link-local, multicast",
                       j->guard_ip_address_deny[i]);
        return FALSE;
      }
  return TRUE;
}

/* A user or group name as systemd accepts it for User=/Group= (its "relaxed"
 * rule kept simple): 1..31 characters of a-z A-Z 0-9 _ . -, not starting
 * with a digit or '-' ; or a numeric id. */
static gboolean
user_name_is_valid (const char *s)
{
  gsize len = strlen (s);
  if (len == 0 || len > 31)
    return FALSE;
  if (strspn (s, "0123456789") == len)
    return TRUE;
  if (g_ascii_isdigit (s[0]) || s[0] == '-')
    return FALSE;
  for (const char *p = s; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("_.-", *p) == NULL)
      return FALSE;
  return TRUE;
}

/* Absolute paths, each with an optional '-' in front when @dash_ok. */
static gboolean
check_paths (const Ctx *ctx, const char *key, char *const *paths, gboolean dash_ok, GError **error)
{
  for (gsize i = 0; paths[i] != NULL; i++)
    {
      const char *p = paths[i];
      if (dash_ok && p[0] == '-')
        p++;
      if (!g_path_is_absolute (p) || strchr (p, ':') != NULL)
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, "Sandbox", key,
                         "\"%s\" is not an absolute path%s (and may not contain ':')", paths[i],
                         dash_ok ? " (optionally with a leading '-': ignored when missing)" : "");
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
read_sandbox_group (const Ctx *ctx, BgJobConfig *j, GError **error)
{
  const char *g = "Sandbox";
  g_autofree char *hardening = NULL;
  g_autofree char *dynamic = NULL;
  if (!lookup_string (ctx, g, "User", &j->user, error) ||
      !lookup_string (ctx, g, "Group", &j->group, error) ||
      !lookup_string (ctx, g, "DynamicUser", &dynamic, error) ||
      !lookup_string (ctx, g, "Hardening", &hardening, error) ||
      !lookup_list (ctx, g, "ReadWritePaths", &j->read_write_paths, error) ||
      !lookup_list (ctx, g, "BindPaths", &j->bind_paths, error) ||
      !lookup_list (ctx, g, "LoadCredential", &j->load_credentials, error) ||
      !lookup_list (ctx, g, "EnvironmentFile", &j->environment_files, error))
    return FALSE;

  const char *const names[] = { "User", "Group" };
  char **values[] = { &j->user, &j->group };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      if (*values[i] != NULL && (*values[i])[0] == '\0')
        g_clear_pointer (values[i], g_free);
      if (*values[i] != NULL && !user_name_is_valid (*values[i]))
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, g, names[i],
                         "\"%s\" is not a user or group name (1..31 characters of a-z A-Z 0-9 _ . -, "
                         "not starting with a digit or '-', or a numeric id)", *values[i]);
          return FALSE;
        }
    }

  if (dynamic != NULL)
    {
      if (g_strcmp0 (dynamic, "yes") == 0 || g_strcmp0 (dynamic, "true") == 0)
        j->dynamic_user = TRUE;
      else if (g_strcmp0 (dynamic, "no") != 0 && g_strcmp0 (dynamic, "false") != 0)
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, g, "DynamicUser",
                         "\"%s\" is not a boolean (use yes or no)", dynamic);
          return FALSE;
        }
    }
  if (j->dynamic_user && j->user != NULL)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, g, "DynamicUser",
                     "cannot be combined with User=%s (choose one)", j->user);
      return FALSE;
    }

  if (g_strcmp0 (hardening, "none") == 0)
    j->hardening = BG_HARDENING_NONE;
  else if (hardening != NULL && strcmp (hardening, "default") != 0)
    {
      set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, g, "Hardening",
                     "\"%s\" is not a preset (use \"default\" or \"none\")", hardening);
      return FALSE;
    }

  if (!check_paths (ctx, "ReadWritePaths", j->read_write_paths, TRUE, error) ||
      !check_paths (ctx, "BindPaths", j->bind_paths, TRUE, error) ||
      !check_paths (ctx, "EnvironmentFile", j->environment_files, TRUE, error))
    return FALSE;

  for (gsize i = 0; j->load_credentials[i] != NULL; i++)
    {
      const char *item = j->load_credentials[i];
      const char *colon = strchr (item, ':');
      gboolean id_ok = colon != NULL && colon != item;
      for (const char *p = item; id_ok && p < colon; p++)
        id_ok = g_ascii_isalnum (*p) || strchr ("._-", *p) != NULL;
      if (!id_ok || !g_path_is_absolute (colon + 1))
        {
          set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, g, "LoadCredential",
                         "\"%s\" is not ID:PATH (ID of A-Z a-z 0-9 . _ -, PATH absolute)", item);
          return FALSE;
        }
      for (gsize k = 0; k < i; k++)
        if (strncmp (j->load_credentials[k], item, (gsize) (colon - item) + 1) == 0)
          {
            set_key_error (error, ctx, BG_CONFIG_ERROR_INVALID_VALUE, g, "LoadCredential",
                           "credential \"%.*s\" is listed twice", (int) (colon - item), item);
            return FALSE;
          }
    }
  return TRUE;
}

/* The job name is the file's name without ".job". */
static char *
job_name_from_path (const char *path, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  if (!g_str_has_suffix (base, ".job"))
    {
      g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_NAME,
                   "%s: a job file's name must end in \".job\" (the job is named after it)", path);
      return NULL;
    }
  base[strlen (base) - strlen (".job")] = '\0';
  if (!bg_name_is_valid (base))
    {
      g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_NAME,
                   "%s: \"%s\" (the file name without .job) is not a valid job name (" NAME_RULE ")",
                   path, base);
      return NULL;
    }
  return g_steal_pointer (&base);
}

BgJobConfig *
bg_job_config_load_from_data (const char *path, const char *data, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autofree char *name = job_name_from_path (path, error);
  if (name == NULL)
    return NULL;
  g_autoptr (GKeyFile) kf = NULL;
  if (!load_key_file (path, data, &kf, error))
    return NULL;
  Ctx ctx = { path, kf };
  if (!check_schema (&ctx, job_schema, G_N_ELEMENTS (job_schema), error))
    return NULL;
  g_autoptr (BgJobConfig) j = job_config_new (path, name);
  if (!read_job_group (&ctx, j, error) ||
      !read_restart_keys (&ctx, j, error) ||
      !read_readiness_group (&ctx, j, error) ||
      !read_resources_group (&ctx, j, error) ||
      !read_cutover_group (&ctx, j, error) ||
      !read_guard_group (&ctx, j, error) ||
      !read_sandbox_group (&ctx, j, error))
    return NULL;
  return g_steal_pointer (&j);
}

BgJobConfig *
bg_job_config_load (const char *path, GError **error)
{
  return bg_job_config_load_from_data (path, NULL, error);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

GPtrArray *
bg_job_configs_load_dir (const char *dir, guint max_jobs, GPtrArray **file_errors, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  if (d == NULL)
    {
      g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_READ,
                   "%s: cannot read the jobs directory: %s", dir, local->message);
      return NULL;
    }
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL)
    if (entry[0] != '.' && g_str_has_suffix (entry, ".job"))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_strings);

  if (file_errors != NULL)
    *file_errors = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  g_autoptr (GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_job_config_unref);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      GError *file_error = NULL;
      BgJobConfig *job = NULL;
      if (max_jobs > 0 && jobs->len >= max_jobs)
        g_set_error (&file_error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_TOO_MANY_JOBS,
                     "%s: skipped: more than MaxJobs=%u job files (files are taken in name order)",
                     path, max_jobs);
      else
        job = bg_job_config_load (path, &file_error);
      if (job != NULL)
        {
          g_ptr_array_add (jobs, job);
          continue;
        }
      if (file_errors == NULL)
        {
          g_propagate_error (error, file_error);
          return NULL;
        }
      g_ptr_array_add (*file_errors, file_error);
    }
  return g_steal_pointer (&jobs);
}

/* ---- Expansion ------------------------------------------------------------- */

static gboolean
check_version (const BgJobConfig *job, const char *key, const char *version, GError **error)
{
  if (bg_version_is_valid (version))
    return TRUE;
  g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VERSION,
               "%s: [%s] %s: version \"%s\" is not valid (" VERSION_RULE ")",
               job->path, strcmp (key, "HealthCommand") == 0 ? "Readiness" : "Job", key,
               version != NULL ? version : "(null)");
  return FALSE;
}

static char **
expand_command (const BgJobConfig *job, const char *group, const char *key, char *const *argv,
                const Specifier *specs, gsize n_specs, GError **error)
{
  if (argv == NULL)
    {
      g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_MISSING_KEY,
                   "%s: [%s] %s: not set for this job", job->path, group, key);
      return NULL;
    }
  g_autoptr (GError) local = NULL;
  char **out = expand_argv ((const char *const *) argv, specs, n_specs, &local);
  if (out == NULL) /* the load already checked the letters; kept for safety */
    g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VALUE,
                 "%s: [%s] %s: %s", job->path, group, key, local->message);
  return out;
}

char **
bg_job_config_expand_exec (const BgJobConfig *job, const char *version, GError **error)
{
  g_return_val_if_fail (job != NULL, NULL);
  if (!check_version (job, "ExecStart", version, error))
    return NULL;
  const Specifier specs[] = { { 'v', version }, { 'j', job->name } };
  return expand_command (job, "Job", "ExecStart", job->exec_start_argv, specs, G_N_ELEMENTS (specs), error);
}

char **
bg_job_config_expand_savepoint (const BgJobConfig *job, const char *version,
                                const char *savepoint_dir, GError **error)
{
  g_return_val_if_fail (job != NULL && savepoint_dir != NULL, NULL);
  if (!check_version (job, "ExecSavepoint", version, error))
    return NULL;
  const Specifier specs[] = { { 'v', version }, { 'j', job->name }, { 'd', savepoint_dir } };
  return expand_command (job, "Job", "ExecSavepoint", job->exec_savepoint_argv, specs, G_N_ELEMENTS (specs), error);
}

char **
bg_job_config_expand_health (const BgJobConfig *job, BgColor color, const char *version, GError **error)
{
  g_return_val_if_fail (job != NULL, NULL);
  if (!check_version (job, "HealthCommand", version, error))
    return NULL;
  const Specifier specs[] = { { 'v', version }, { 'j', job->name }, { 'c', bg_color_to_string (color) } };
  return expand_command (job, "Readiness", "HealthCommand", job->health_argv, specs, G_N_ELEMENTS (specs), error);
}

char *
bg_job_config_expand_consumer_group (const BgJobConfig *job, BgColor color, const char *version, GError **error)
{
  g_return_val_if_fail (job != NULL, NULL);
  if (!check_version (job, "ConsumerGroup", version, error))
    return NULL;
  const Specifier specs[] = { { 'j', job->name }, { 'c', bg_color_to_string (color) }, { 'v', version } };
  g_autoptr (GError) local = NULL;
  char *group = expand_specifiers (job->consumer_group, specs, G_N_ELEMENTS (specs), &local);
  if (group == NULL)
    g_set_error (error, BG_CONFIG_ERROR, BG_CONFIG_ERROR_INVALID_VALUE,
                 "%s: [Job] ConsumerGroup: %s", job->path, local->message);
  return group;
}
