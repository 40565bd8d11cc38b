/* verifier.h — the exactly-once checks on a job's output topic.
 *
 * Fed the input topic's records and the results a job (or two versions of
 * it) produced, it recomputes what the example job must have produced and
 * reports: gaps (input offsets without a result), duplicates across
 * versions and within one, results whose state (count, sum) is wrong,
 * per-key order violations, which color emitted which offsets, and
 * violations of an expected cutover barrier. Kafka-free, so tests can feed
 * it directly; reader.c feeds it from Kafka.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdint.h>

typedef struct _BgVerifier BgVerifier;

/* @input is the input topic's name, which results must carry. */
BgVerifier *bg_verifier_new (const char *input, int32_t n_partitions);
void bg_verifier_free (BgVerifier *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgVerifier, bg_verifier_free)

/* The captured range [low, high) of input partition @p. Call for every
 * partition before adding records. */
void bg_verifier_set_input_range (BgVerifier *v, int32_t p, int64_t low, int64_t high);
/* One input record; offsets outside the range are ignored. */
void bg_verifier_add_input (BgVerifier *v, int32_t p, int64_t offset, const void *key,
                            size_t key_len, int64_t value);
/* Recomputes the expected state; call once after all inputs, before any
 * output. */
void bg_verifier_inputs_done (BgVerifier *v);

/* Expected cutover: below @offset on @p only @outgoing emits, at or above it
 * only @incoming. */
void bg_verifier_set_colors (BgVerifier *v, const char *outgoing, const char *incoming);
void bg_verifier_expect_barrier (BgVerifier *v, int32_t p, int64_t offset);

/* One result (the output record's value), in output-log order per output
 * partition. Unparsable results are counted as malformed. */
void bg_verifier_add_output (BgVerifier *v, const void *value, size_t len);

/* Whether the inputs did not start at offset 0 (the broker dropped old
 * records): the state cannot be recomputed then. */
gboolean bg_verifier_input_truncated (BgVerifier *v);

/* Summary counters, valid after all outputs are added. */
typedef struct {
  uint64_t inputs;
  uint64_t outputs;
  uint64_t gaps;
  uint64_t cross_duplicates;  /* input offsets with results from two colors */
  uint64_t within_duplicates; /* extra results of one color for one offset */
  uint64_t wrong_state;
  uint64_t order_violations;
  uint64_t barrier_violations;
  uint64_t malformed;         /* results that are not the example job's JSON */
  uint64_t foreign;           /* results for another input topic */
  uint64_t beyond;            /* results for offsets past the captured input */
  uint64_t unchecked_keys;    /* keys on several partitions: state not checked */
} BgVerifyCounts;

void bg_verifier_counts (BgVerifier *v, BgVerifyCounts *out);

/* Whether the run passes: no gap, cross-version duplicate, wrong state,
 * malformed result or barrier violation (and, if @strict_order, no order
 * violation). Within-version duplicates fail only with @strict_dups. */
gboolean bg_verifier_passed (BgVerifier *v, gboolean strict_order, gboolean strict_dups);

JsonNode *bg_verifier_report_json (BgVerifier *v);
char *bg_verifier_report_text (BgVerifier *v);
