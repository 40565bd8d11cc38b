/* watermarks.h — the low and high watermarks of a topic's partitions, in
 * a query that keeps its timeout.
 *
 * librdkafka's rd_kafka_query_watermark_offsets() (before 2.3.0, Debian 12
 * ships 2.0.2) retries a request to a partition's dead leader for as long
 * as the broker states keep changing, past its timeout: with a node
 * killed, a caller waited for ever. This asks the same thing (ListOffsets
 * for the latest and the earliest offset, under the handle's
 * isolation.level) with rd_kafka_offsets_for_times(), which keeps its
 * timeout, one request per leader for all the partitions at once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <librdkafka/rdkafka.h>

#define BG_WATERMARKS_ERROR (bg_watermarks_error_quark ())
GQuark bg_watermarks_error_quark (void);

typedef enum {
  BG_WATERMARKS_ERROR_QUERY, /* the brokers did not answer in time, or answered an error */
} BgWatermarksError;

/* The watermarks of @n partitions of @topic: @high[i] (the next offset to
 * be written; under read_committed, the last stable offset) and, when
 * @low is not NULL, @low[i] (the oldest offset kept) of @partitions[i].
 * FALSE with an error naming the topic (and the partition, if one failed
 * alone) when they are not known within @timeout_ms. */
gboolean bg_watermarks_query (rd_kafka_t *rk, const char *topic, const gint32 *partitions, guint n,
                              gint64 *low, gint64 *high, int timeout_ms, GError **error);
