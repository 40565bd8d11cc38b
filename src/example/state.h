/* state.h — the example job's keyed state and its savepoint.
 *
 * The example job keeps, per record key, how many records it has seen and
 * the sum of their values. A savepoint is that state together with the next
 * input offset per partition: restoring it and consuming from those offsets
 * continues the computation exactly where it stopped. Savepoints are JSON
 * (json-glib), written atomically (temporary file, fsync, rename).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#define BG_STATE_ERROR (bg_state_error_quark ())
GQuark bg_state_error_quark (void);

typedef enum {
  BG_STATE_ERROR_IO,      /* the savepoint could not be read or written */
  BG_STATE_ERROR_FORMAT,  /* the savepoint is not a valid savepoint */
  BG_STATE_ERROR_MISMATCH /* the savepoint is for another input topic */
} BgStateError;

typedef struct {
  uint64_t count;
  int64_t sum;
} BgKeyState;

typedef struct _BgJobState BgJobState;

BgJobState *bg_job_state_new (void);
void bg_job_state_free (BgJobState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgJobState, bg_job_state_free)

/* Adds @value under @key (@key_len bytes, not NUL-terminated) and returns
 * the key's updated state. The pointer stays valid until the state is
 * freed. */
const BgKeyState *bg_job_state_update (BgJobState *state, const void *key, size_t key_len,
                                       int64_t value);
const BgKeyState *bg_job_state_lookup (BgJobState *state, const char *key);
guint bg_job_state_n_keys (BgJobState *state);

/* Next input offset per partition; -1 (or absent) means "from the start". */
void bg_job_state_set_next_offset (BgJobState *state, int32_t partition, int64_t offset);
int64_t bg_job_state_get_next_offset (BgJobState *state, int32_t partition);
/* Number of partition slots (highest partition with an offset, plus one). */
int32_t bg_job_state_n_partitions (BgJobState *state);

/* Writes a savepoint for input topic @input into directory @dir (created if
 * missing) as @dir/savepoint.json, atomically. */
gboolean bg_job_state_save (BgJobState *state, const char *dir, const char *input, GError **error);
/* Reads @dir/savepoint.json; fails if it is for another input topic. */
BgJobState *bg_job_state_load (const char *dir, const char *input, GError **error);

/* Parses an input record's value: an ASCII decimal integer (optional sign,
 * surrounding blanks allowed). Anything else counts as 0; the verifier's
 * reference recomputation applies the same rule. */
int64_t bg_parse_value (const void *data, size_t len);
