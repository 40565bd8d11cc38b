/* mock-command.c — see mock-command.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rig/mock-command.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

G_DEFINE_QUARK (bg-mock-command-error-quark, bg_mock_command_error)

/* Kafka protocol API keys as librdkafka's protocol header names them; that
 * header is not installed, so the table lives here. */
static const struct {
  const char *name;
  int key;
} api_keys[] = {
  { "Produce", 0 },
  { "Fetch", 1 },
  { "ListOffsets", 2 },
  { "Offset", 2 },
  { "Metadata", 3 },
  { "LeaderAndIsr", 4 },
  { "StopReplica", 5 },
  { "UpdateMetadata", 6 },
  { "ControlledShutdown", 7 },
  { "OffsetCommit", 8 },
  { "OffsetFetch", 9 },
  { "FindCoordinator", 10 },
  { "JoinGroup", 11 },
  { "Heartbeat", 12 },
  { "LeaveGroup", 13 },
  { "SyncGroup", 14 },
  { "DescribeGroups", 15 },
  { "ListGroups", 16 },
  { "SaslHandshake", 17 },
  { "ApiVersion", 18 },
  { "ApiVersions", 18 },
  { "CreateTopics", 19 },
  { "DeleteTopics", 20 },
  { "DeleteRecords", 21 },
  { "InitProducerId", 22 },
  { "OffsetForLeaderEpoch", 23 },
  { "AddPartitionsToTxn", 24 },
  { "AddOffsetsToTxn", 25 },
  { "EndTxn", 26 },
  { "WriteTxnMarkers", 27 },
  { "TxnOffsetCommit", 28 },
};

void
bg_mock_command_clear (BgMockCommand *cmd)
{
  g_clear_pointer (&cmd->topic, g_free);
  memset (cmd, 0, sizeof *cmd);
}

static gboolean
parse_int (const char *s, gint64 min, gint64 max, int *out)
{
  gint64 v;
  if (!g_ascii_string_to_signed (s, 10, min, max, &v, NULL))
    return FALSE;
  *out = (int) v;
  return TRUE;
}

int
bg_mock_api_key_from_string (const char *s)
{
  int key;
  if (parse_int (s, 0, 99, &key))
    return key;
  for (size_t i = 0; i < G_N_ELEMENTS (api_keys); i++)
    if (g_ascii_strcasecmp (s, api_keys[i].name) == 0)
      return api_keys[i].key;
  return -1;
}

gboolean
bg_mock_error_code_from_string (const char *s, int *code_out)
{
  if (parse_int (s, -200, 10000, code_out))
    return TRUE;

  const char *name = s;
  if (g_ascii_strncasecmp (name, "RD_KAFKA_RESP_ERR_", 18) == 0)
    name += 18;
  if (name[0] == '\0')
    return FALSE;

  const struct rd_kafka_err_desc *descs;
  size_t n_descs;
  rd_kafka_get_err_descs (&descs, &n_descs);
  for (size_t i = 0; i < n_descs; i++)
    {
      if (descs[i].name == NULL)
        continue;
      if (g_ascii_strcasecmp (name, descs[i].name) == 0)
        {
          *code_out = descs[i].code;
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
topic_name_is_valid (const char *name)
{
  size_t len = strlen (name);
  if (len == 0 || len > 249 || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && strchr ("._-", name[i]) == NULL)
      return FALSE;
  return TRUE;
}

gboolean
bg_mock_parse_topic_spec (const char *spec, char **name_out, int *partitions_out, GError **error)
{
  const char *colon = strrchr (spec, ':');
  if (colon == NULL)
    {
      g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                   "topic '%s': expected NAME:PARTITIONS", spec);
      return FALSE;
    }
  g_autofree char *name = g_strndup (spec, colon - spec);
  if (!topic_name_is_valid (name))
    {
      g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                   "topic '%s': invalid name (1..249 of [A-Za-z0-9._-])", spec);
      return FALSE;
    }
  int partitions;
  if (!parse_int (colon + 1, 1, 10000, &partitions))
    {
      g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                   "topic '%s': partitions must be 1..10000", spec);
      return FALSE;
    }
  *name_out = g_steal_pointer (&name);
  *partitions_out = partitions;
  return TRUE;
}

static gboolean
parse_broker (const char *s, int n_brokers, int *out, GError **error)
{
  if (g_ascii_strcasecmp (s, "all") == 0)
    {
      *out = BG_MOCK_ALL_BROKERS;
      return TRUE;
    }
  if (!parse_int (s, 1, n_brokers, out))
    {
      g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                   "broker '%s': expected 1..%d or all", s, n_brokers);
      return FALSE;
    }
  return TRUE;
}

static gboolean
expect_args (const char *verb, guint n_args, guint expected, const char *usage, GError **error)
{
  if (n_args == expected)
    return TRUE;
  g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_ARGUMENTS,
               "%s: usage: %s", verb, usage);
  return FALSE;
}

gboolean
bg_mock_command_parse (const char *line, int n_brokers, BgMockCommand *out, GError **error)
{
  memset (out, 0, sizeof *out);

  g_autofree char *copy = g_strstrip (g_strdup (line));
  if (copy[0] == '\0' || copy[0] == '#')
    return TRUE;

  /* Split on runs of blanks: commands are typed by hand too. */
  g_auto (GStrv) raw = g_strsplit_set (copy, " \t", -1);
  g_autoptr (GPtrArray) words = g_ptr_array_new ();
  for (char **w = raw; *w != NULL; w++)
    if (**w != '\0')
      g_ptr_array_add (words, *w);
  const char *verb = g_ptr_array_index (words, 0);
  const char **args = (const char **) words->pdata + 1;
  guint n_args = words->len - 1;

  if (g_str_equal (verb, "down") || g_str_equal (verb, "up"))
    {
      if (!expect_args (verb, n_args, 1, g_str_equal (verb, "up") ? "up BROKER" : "down BROKER", error)
          || !parse_broker (args[0], n_brokers, &out->broker, error))
        return FALSE;
      out->verb = g_str_equal (verb, "down") ? BG_MOCK_VERB_DOWN : BG_MOCK_VERB_UP;
      return TRUE;
    }

  if (g_str_equal (verb, "rtt"))
    {
      if (!expect_args (verb, n_args, 2, "rtt BROKER MS", error)
          || !parse_broker (args[0], n_brokers, &out->broker, error))
        return FALSE;
      if (!parse_int (args[1], 0, 600000, &out->rtt_ms))
        {
          g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                       "rtt '%s': expected 0..600000 milliseconds", args[1]);
          return FALSE;
        }
      out->verb = BG_MOCK_VERB_RTT;
      return TRUE;
    }

  if (g_str_equal (verb, "errors"))
    {
      if (!expect_args (verb, n_args, 3, "errors APIKEY ERRCODE COUNT", error))
        return FALSE;
      out->api_key = bg_mock_api_key_from_string (args[0]);
      if (out->api_key < 0)
        {
          g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                       "API key '%s': expected a name (Produce, Fetch, Metadata, ...) or 0..99", args[0]);
          return FALSE;
        }
      if (!bg_mock_error_code_from_string (args[1], &out->error_code))
        {
          g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                       "error code '%s': expected a number or a name like NOT_LEADER_FOR_PARTITION", args[1]);
          return FALSE;
        }
      if (!parse_int (args[2], 1, 100000, &out->count))
        {
          g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                       "count '%s': expected 1..100000", args[2]);
          return FALSE;
        }
      out->verb = BG_MOCK_VERB_ERRORS;
      return TRUE;
    }

  if (g_str_equal (verb, "topic"))
    {
      if (!expect_args (verb, n_args, 1, "topic NAME:PARTITIONS", error)
          || !bg_mock_parse_topic_spec (args[0], &out->topic, &out->partitions, error))
        return FALSE;
      out->verb = BG_MOCK_VERB_TOPIC;
      return TRUE;
    }

  if (g_str_equal (verb, "leader"))
    {
      if (!expect_args (verb, n_args, 3, "leader TOPIC PARTITION BROKER", error))
        return FALSE;
      if (!parse_int (args[1], 0, 9999, &out->partition))
        {
          g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                       "partition '%s': expected 0..9999", args[1]);
          return FALSE;
        }
      /* A partition has one leader: "all" makes no sense here. */
      if (!parse_int (args[2], 1, n_brokers, &out->broker))
        {
          g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_INVALID_VALUE,
                       "broker '%s': expected 1..%d", args[2], n_brokers);
          return FALSE;
        }
      out->topic = g_strdup (args[0]);
      out->verb = BG_MOCK_VERB_LEADER;
      return TRUE;
    }

  if (g_str_equal (verb, "quit"))
    {
      if (!expect_args (verb, n_args, 0, "quit", error))
        return FALSE;
      out->verb = BG_MOCK_VERB_QUIT;
      return TRUE;
    }

  g_set_error (error, BG_MOCK_COMMAND_ERROR, BG_MOCK_COMMAND_ERROR_UNKNOWN_VERB,
               "unknown command '%s' (down, up, rtt, errors, topic, leader, quit)", verb);
  return FALSE;
}
