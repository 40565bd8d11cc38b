/* mock-command.h — the fault-injection language of bluegreen-kafka-mock.
 *
 * Tests and the demo steer the embedded Kafka with one command per line
 * (stdin or a FIFO): take a broker down, bring it up, add latency, push
 * request errors, create a topic. Parsing is kept apart from executing so the
 * grammar can be tested without a cluster.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#define BG_MOCK_COMMAND_ERROR (bg_mock_command_error_quark ())
GQuark bg_mock_command_error_quark (void);

typedef enum {
  BG_MOCK_COMMAND_ERROR_UNKNOWN_VERB,  /* first word is not a command */
  BG_MOCK_COMMAND_ERROR_ARGUMENTS,     /* wrong number of arguments */
  BG_MOCK_COMMAND_ERROR_INVALID_VALUE, /* an argument does not parse or is out of range */
} BgMockCommandError;

typedef enum {
  BG_MOCK_VERB_NONE = 0, /* empty line or comment: nothing to do, no reply */
  BG_MOCK_VERB_DOWN,
  BG_MOCK_VERB_UP,
  BG_MOCK_VERB_RTT,
  BG_MOCK_VERB_ERRORS,
  BG_MOCK_VERB_TOPIC,
  BG_MOCK_VERB_LEADER,
  BG_MOCK_VERB_QUIT,
} BgMockVerb;

/* Brokers are numbered 1..N as in the mock; "all" means every broker. */
#define BG_MOCK_ALL_BROKERS (-1)

typedef struct {
  BgMockVerb verb;
  int broker;        /* down, up, rtt */
  int rtt_ms;        /* rtt */
  int api_key;       /* errors */
  int error_code;    /* errors: an rd_kafka_resp_err_t */
  int count;         /* errors */
  char *topic;       /* topic, leader */
  int partitions;    /* topic */
  int partition;     /* leader */
} BgMockCommand;

void bg_mock_command_clear (BgMockCommand *cmd);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BgMockCommand, bg_mock_command_clear)

/* Parses one line (without or with its newline). @n_brokers bounds the
 * broker numbers. An empty line or a '#' comment gives BG_MOCK_VERB_NONE. */
gboolean bg_mock_command_parse (const char *line, int n_brokers, BgMockCommand *out, GError **error);

/* "NAME:PARTITIONS": a Kafka topic name ([A-Za-z0-9._-], 1..249 characters,
 * not "." or "..") and 1..10000 partitions. */
gboolean bg_mock_parse_topic_spec (const char *spec, char **name_out, int *partitions_out, GError **error);

/* A Kafka API key by name (Produce, Fetch, ListOffsets, Metadata, ...;
 * case-insensitive) or number (0..99). -1 if neither. */
int bg_mock_api_key_from_string (const char *s);

/* An error code by librdkafka name (NOT_LEADER_FOR_PARTITION, with or
 * without the RD_KAFKA_RESP_ERR_ prefix, case-insensitive) or number.
 * FALSE if neither. */
gboolean bg_mock_error_code_from_string (const char *s, int *code_out);
