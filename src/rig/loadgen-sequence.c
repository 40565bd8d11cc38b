/* loadgen-sequence.c — see loadgen-sequence.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rig/loadgen-sequence.h"

#include <stdio.h>
#include <string.h>

void
bg_loadgen_sequence_init (BgLoadgenSequence *seq, guint32 seed, guint32 n_keys, guint64 start_index)
{
  g_return_if_fail (n_keys >= 1);
  seq->rand = g_rand_new_with_seed (seed);
  seq->n_keys = n_keys;
  seq->index = 0;
  /* Skipping costs two draws per record (a few ns each): continuing a run
   * of millions takes milliseconds, and keeps one simple definition. */
  guint32 k, v;
  while (seq->index < start_index)
    bg_loadgen_sequence_next (seq, &k, &v);
}

void
bg_loadgen_sequence_clear (BgLoadgenSequence *seq)
{
  g_clear_pointer (&seq->rand, g_rand_free);
}

guint64
bg_loadgen_sequence_next (BgLoadgenSequence *seq, guint32 *key_index, guint32 *value)
{
  *key_index = (guint32) g_rand_int_range (seq->rand, 0, (gint32) MIN (seq->n_keys, (guint32) G_MAXINT32));
  *value = (guint32) g_rand_int_range (seq->rand, BG_LOADGEN_VALUE_MIN, BG_LOADGEN_VALUE_MAX + 1);
  return seq->index++;
}

int
bg_loadgen_format_key (guint32 key_index, char buf[static 16])
{
  return snprintf (buf, 16, "key-%05u", key_index);
}

int
bg_loadgen_format_key_prefixed (const char *prefix, guint32 key_index, char buf[static BG_LOADGEN_KEY_BUF])
{
  g_return_val_if_fail (strlen (prefix) <= BG_LOADGEN_KEY_PREFIX_MAX, 0);
  return snprintf (buf, BG_LOADGEN_KEY_BUF, "%s%05u", prefix, key_index);
}
