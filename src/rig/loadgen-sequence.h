/* loadgen-sequence.h — the deterministic record sequence of
 * bluegreen-loadgen.
 *
 * Record i of a run with seed S over K keys is a pair (key index, value):
 * both drawn, in that order, from one GRand seeded with S, two draws per
 * record. The same (S, K) always gives the same sequence, so a test can run
 * the generator twice and compare, and a verifier can recompute what the
 * input was. --start-index continues a sequence by skipping the first draws.
 *
 * On the wire: key "key-%05u" (the key index; another prefix than "key-"
 * may be chosen), value the ASCII decimal of an integer 1..1000.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#define BG_LOADGEN_VALUE_MIN 1
#define BG_LOADGEN_VALUE_MAX 1000

typedef struct {
  GRand *rand;
  guint32 n_keys;
  guint64 index; /* index of the record next() returns */
} BgLoadgenSequence;

/* @n_keys must be at least 1. */
void bg_loadgen_sequence_init (BgLoadgenSequence *seq, guint32 seed, guint32 n_keys, guint64 start_index);
void bg_loadgen_sequence_clear (BgLoadgenSequence *seq);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BgLoadgenSequence, bg_loadgen_sequence_clear)

/* Returns the index of the record it produced. */
guint64 bg_loadgen_sequence_next (BgLoadgenSequence *seq, guint32 *key_index, guint32 *value);

/* Formats a key as it goes on the wire; @buf needs 16 bytes. Returns the
 * length. */
int bg_loadgen_format_key (guint32 key_index, char buf[static 16]);

/* The longest key prefix bg_loadgen_format_key_prefixed() takes. */
#define BG_LOADGEN_KEY_PREFIX_MAX 32
/* The key with @prefix instead of "key-" (at most
 * BG_LOADGEN_KEY_PREFIX_MAX bytes); @buf needs BG_LOADGEN_KEY_BUF bytes.
 * Returns the length. */
#define BG_LOADGEN_KEY_BUF (BG_LOADGEN_KEY_PREFIX_MAX + 16)
int bg_loadgen_format_key_prefixed (const char *prefix, guint32 key_index, char buf[static BG_LOADGEN_KEY_BUF]);
