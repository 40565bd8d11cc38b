/* test-rig-mock-command.c — the kafka-mock command grammar and the
 * loadgen record sequence, without a cluster.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <librdkafka/rdkafka.h>

#include "rig/loadgen-sequence.h"
#include "rig/mock-command.h"

static void
test_mock_command_valid (void)
{
  g_autoptr (GError) error = NULL;
  g_auto (BgMockCommand) cmd = { 0 };

  g_assert_true (bg_mock_command_parse ("down 2\n", 3, &cmd, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_DOWN);
  g_assert_cmpint (cmd.broker, ==, 2);

  g_assert_true (bg_mock_command_parse ("  up   all ", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_UP);
  g_assert_cmpint (cmd.broker, ==, BG_MOCK_ALL_BROKERS);

  g_assert_true (bg_mock_command_parse ("rtt 1 250", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_RTT);
  g_assert_cmpint (cmd.rtt_ms, ==, 250);

  g_assert_true (bg_mock_command_parse ("errors produce NOT_LEADER_FOR_PARTITION 4", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_ERRORS);
  g_assert_cmpint (cmd.api_key, ==, 0);
  g_assert_cmpint (cmd.error_code, ==, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  g_assert_cmpint (cmd.count, ==, 4);

  bg_mock_command_clear (&cmd);
  g_assert_true (bg_mock_command_parse ("errors 1 RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT 1", 3, &cmd, &error));
  g_assert_cmpint (cmd.api_key, ==, 1);
  g_assert_cmpint (cmd.error_code, ==, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);

  g_assert_true (bg_mock_command_parse ("topic in.put-1:6", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_TOPIC);
  g_assert_cmpstr (cmd.topic, ==, "in.put-1");
  g_assert_cmpint (cmd.partitions, ==, 6);
  bg_mock_command_clear (&cmd);

  g_assert_true (bg_mock_command_parse ("leader in 5 2", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_LEADER);
  g_assert_cmpstr (cmd.topic, ==, "in");
  g_assert_cmpint (cmd.partition, ==, 5);
  g_assert_cmpint (cmd.broker, ==, 2);
  bg_mock_command_clear (&cmd);

  g_assert_true (bg_mock_command_parse ("quit", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_QUIT);

  g_assert_true (bg_mock_command_parse ("# a comment", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_NONE);
  g_assert_true (bg_mock_command_parse ("   ", 3, &cmd, &error));
  g_assert_cmpint (cmd.verb, ==, BG_MOCK_VERB_NONE);
}

static void
test_mock_command_invalid (void)
{
  static const struct {
    const char *line;
    int code;
  } cases[] = {
    { "explode", BG_MOCK_COMMAND_ERROR_UNKNOWN_VERB },
    { "down", BG_MOCK_COMMAND_ERROR_ARGUMENTS },
    { "down 1 2", BG_MOCK_COMMAND_ERROR_ARGUMENTS },
    { "down 0", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "down 4", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "up x", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "rtt 1 -5", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "errors Bogus 6 1", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "errors Fetch NO_SUCH_ERROR 1", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "errors Fetch 6 0", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "topic noparts", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "topic a/b:3", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "topic t:0", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "topic :3", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "leader in 0 all", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "leader in x 1", BG_MOCK_COMMAND_ERROR_INVALID_VALUE },
    { "leader in 0", BG_MOCK_COMMAND_ERROR_ARGUMENTS },
    { "quit now", BG_MOCK_COMMAND_ERROR_ARGUMENTS },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (BgMockCommand) cmd = { 0 };
      g_test_message ("line: %s", cases[i].line);
      g_assert_false (bg_mock_command_parse (cases[i].line, 3, &cmd, &error));
      g_assert_error (error, BG_MOCK_COMMAND_ERROR, cases[i].code);
      g_assert_null (cmd.topic);
    }
}

static void
test_mock_api_keys (void)
{
  g_assert_cmpint (bg_mock_api_key_from_string ("Produce"), ==, 0);
  g_assert_cmpint (bg_mock_api_key_from_string ("fetch"), ==, 1);
  g_assert_cmpint (bg_mock_api_key_from_string ("Metadata"), ==, 3);
  g_assert_cmpint (bg_mock_api_key_from_string ("OffsetCommit"), ==, 8);
  g_assert_cmpint (bg_mock_api_key_from_string ("FindCoordinator"), ==, 10);
  g_assert_cmpint (bg_mock_api_key_from_string ("42"), ==, 42);
  g_assert_cmpint (bg_mock_api_key_from_string ("100"), ==, -1);
  g_assert_cmpint (bg_mock_api_key_from_string ("Nope"), ==, -1);
}

static void
test_loadgen_sequence_deterministic (void)
{
  g_auto (BgLoadgenSequence) a = { 0 };
  g_auto (BgLoadgenSequence) b = { 0 };
  g_auto (BgLoadgenSequence) other = { 0 };
  bg_loadgen_sequence_init (&a, 42, 100, 0);
  bg_loadgen_sequence_init (&b, 42, 100, 0);
  bg_loadgen_sequence_init (&other, 43, 100, 0);
  guint n_differ = 0;
  guint seen_keys[100] = { 0 };
  for (guint64 i = 0; i < 10000; i++)
    {
      guint32 ka, va, kb, vb, ko, vo;
      g_assert_cmpuint (bg_loadgen_sequence_next (&a, &ka, &va), ==, i);
      bg_loadgen_sequence_next (&b, &kb, &vb);
      bg_loadgen_sequence_next (&other, &ko, &vo);
      g_assert_cmpuint (ka, ==, kb);
      g_assert_cmpuint (va, ==, vb);
      g_assert_cmpuint (ka, <, 100);
      g_assert_cmpuint (va, >=, BG_LOADGEN_VALUE_MIN);
      g_assert_cmpuint (va, <=, BG_LOADGEN_VALUE_MAX);
      seen_keys[ka]++;
      if (ka != ko || va != vo)
        n_differ++;
    }
  /* Another seed is another sequence, and every key occurs. */
  g_assert_cmpuint (n_differ, >, 9000);
  for (guint k = 0; k < 100; k++)
    g_assert_cmpuint (seen_keys[k], >, 0);
}

static void
test_loadgen_sequence_start_index (void)
{
  g_auto (BgLoadgenSequence) full = { 0 };
  g_auto (BgLoadgenSequence) tail = { 0 };
  bg_loadgen_sequence_init (&full, 7, 10, 0);
  bg_loadgen_sequence_init (&tail, 7, 10, 500);
  guint32 k, v;
  for (guint i = 0; i < 500; i++)
    bg_loadgen_sequence_next (&full, &k, &v);
  for (guint i = 0; i < 100; i++)
    {
      guint32 kf, vf, kt, vt;
      guint64 idx_full = bg_loadgen_sequence_next (&full, &kf, &vf);
      guint64 idx_tail = bg_loadgen_sequence_next (&tail, &kt, &vt);
      g_assert_cmpuint (idx_full, ==, idx_tail);
      g_assert_cmpuint (kf, ==, kt);
      g_assert_cmpuint (vf, ==, vt);
    }
}

static void
test_loadgen_key_format (void)
{
  char buf[16];
  g_assert_cmpint (bg_loadgen_format_key (7, buf), ==, 9);
  g_assert_cmpstr (buf, ==, "key-00007");
  bg_loadgen_format_key (99999, buf);
  g_assert_cmpstr (buf, ==, "key-99999");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rig/mock/command/valid", test_mock_command_valid);
  g_test_add_func ("/rig/mock/command/invalid", test_mock_command_invalid);
  g_test_add_func ("/rig/mock/api-keys", test_mock_api_keys);
  g_test_add_func ("/rig/loadgen/sequence/deterministic", test_loadgen_sequence_deterministic);
  g_test_add_func ("/rig/loadgen/sequence/start-index", test_loadgen_sequence_start_index);
  g_test_add_func ("/rig/loadgen/key-format", test_loadgen_key_format);
  return g_test_run ();
}
