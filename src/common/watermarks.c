/* watermarks.c — partition watermarks with a timeout that holds (see
 * watermarks.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/watermarks.h"

G_DEFINE_QUARK (bg-watermarks-error-quark, bg_watermarks_error)

static int
remaining_ms (gint64 deadline)
{
  gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
  /* At least 1: a timeout of 0 ends the query before it is sent. */
  return (int) CLAMP (left, 1, G_MAXINT);
}

/* @which: RD_KAFKA_OFFSET_END or RD_KAFKA_OFFSET_BEGINNING, which
 * ListOffsets answers with the high and the low watermark. */
static gboolean
query_end (rd_kafka_t *rk, const char *topic, const gint32 *partitions, guint n, gint64 which,
           gint64 *out, gint64 deadline, GError **error)
{
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new ((int) n);
  rd_kafka_resp_err_t err;
  gboolean ok = TRUE;

  for (guint i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add (list, topic, partitions[i])->offset = which;
  err = rd_kafka_offsets_for_times (rk, list, remaining_ms (deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BG_WATERMARKS_ERROR, BG_WATERMARKS_ERROR_QUERY, "%s watermarks of %s: %s",
                   which == RD_KAFKA_OFFSET_END ? "high" : "low", topic, rd_kafka_err2str (err));
      ok = FALSE;
    }
  for (guint i = 0; ok && i < n; i++)
    {
      const rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find (list, topic, partitions[i]);

      if (tp == NULL || tp->err != RD_KAFKA_RESP_ERR_NO_ERROR || tp->offset < 0)
        {
          g_set_error (error, BG_WATERMARKS_ERROR, BG_WATERMARKS_ERROR_QUERY, "%s watermark of %s [%d]: %s",
                       which == RD_KAFKA_OFFSET_END ? "high" : "low", topic, partitions[i],
                       tp == NULL ? "not in the answer"
                       : tp->err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str (tp->err)
                                                                : "no offset in the answer");
          ok = FALSE;
        }
      else
        out[i] = tp->offset;
    }
  rd_kafka_topic_partition_list_destroy (list);
  return ok;
}

gboolean
bg_watermarks_query (rd_kafka_t *rk, const char *topic, const gint32 *partitions, guint n,
                     gint64 *low, gint64 *high, int timeout_ms, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) MAX (timeout_ms, 1) * 1000;

  g_return_val_if_fail (rk != NULL && topic != NULL && high != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n == 0)
    return TRUE;
  if (!query_end (rk, topic, partitions, n, RD_KAFKA_OFFSET_END, high, deadline, error))
    return FALSE;
  return low == NULL || query_end (rk, topic, partitions, n, RD_KAFKA_OFFSET_BEGINNING, low, deadline, error);
}
