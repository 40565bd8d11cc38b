/* job.h — the example stateful job: consume, keep per-key state, produce
 * one result per input record through the gate.
 *
 * It is the demo job of bluegreen and the subject of the end-to-end tests:
 * every result carries the input (topic, partition, offset) that caused it,
 * the key's new count and sum, and the producing color and version, so the
 * verifier can check on the output topic that exactly one version emitted
 * each result and that the state is right.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "bluegreen.h"

#define BG_JOB_ERROR (bg_job_error_quark ())
GQuark bg_job_error_quark (void);

typedef enum {
  BG_JOB_ERROR_CONFIG,  /* invalid options */
  BG_JOB_ERROR_KAFKA,   /* librdkafka refused a setting or failed */
  BG_JOB_ERROR_TXN,     /* a Kafka transaction could not be committed */
} BgJobError;

typedef struct {
  char *bootstrap;
  char *input;
  char *output;
  char *version;
  char *color;
  char *group;          /* consumer group mode when set */
  char *assign;         /* "all" or "0,1,2": static assignment */
  char *savepoint_dir;
  char *restore_dir;
  char *control_path;   /* test/debug control FIFO, see control.h */
  char *control_ack_path;
  char *status_file;    /* JSON status, rewritten every status interval */
  BgSinkMode mode;      /* initial mode of a stand-alone gate */
  gboolean no_gate;     /* bypass the gate entirely (benchmark baseline) */
  /* Exactly-once within a version: results and the input offsets that
   * caused them are committed together in Kafka transactions (needs a
   * consumer group; see docs/protocol.md, "Transactional jobs"). */
  gboolean transactional;
  char *transactional_id; /* default: <group>-<host> (BLUEGREEN_HOST, else the host name) */
  double commit_interval; /* seconds between two transaction commits (default 0.1) */
  double status_interval; /* seconds */
  GPtrArray *kafka_props; /* "key=value" strings passed to librdkafka verbatim */
} BgJobConfig;

void bg_job_config_clear (BgJobConfig *cfg);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BgJobConfig, bg_job_config_clear)

/* Runs the job until SIGTERM/SIGINT or a fatal error. Returns the process
 * exit status: 0 after a clean stop, 1 after a fatal error or if results
 * could not be delivered, 2 for invalid configuration. */
int bg_job_run (const BgJobConfig *cfg);

/* Whether results of @version carry the extra "mean" field (versions whose
 * leading number, after an optional 'v', is 2 or more). */
gboolean bg_job_version_emits_mean (const char *version);

/* Formats a result value into @buf (JSON). Returns the length, or -1 if it
 * does not fit or @key needs escaping (then the caller uses the slow path,
 * bg_job_format_result_json()). */
int bg_job_format_result (char *buf, size_t size, const char *topic, int32_t partition,
                          int64_t offset, const char *key, size_t key_len, gboolean null_key,
                          uint64_t count, int64_t sum, const char *color, const char *version,
                          gboolean with_mean);
char *bg_job_format_result_json (const char *topic, int32_t partition, int64_t offset,
                                 const char *key, size_t key_len, gboolean null_key,
                                 uint64_t count, int64_t sum, const char *color,
                                 const char *version, gboolean with_mean);
