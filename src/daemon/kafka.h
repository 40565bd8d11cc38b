/* kafka.h — the agent's Kafka client.
 *
 * One librdkafka handle per agent, configured from bluegreend.conf
 * (BootstrapServers= plus [Kafka.Properties] passed verbatim). Its work
 * for now: the input topics' high watermarks, from which a slot's lag is
 * computed. librdkafka's blocking calls run in GTask worker threads; its
 * own events (errors, logs) are delivered into the GLib main loop through
 * an eventfd that librdkafka writes when its queue becomes non-empty, so
 * the agent never busy-polls. The control-topic consumer and producer of
 * the fleet-wide cutover are meant to join this module (same properties,
 * same main-loop plumbing).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <librdkafka/rdkafka.h>

G_BEGIN_DECLS

#define BGD_KAFKA_ERROR (bgd_kafka_error_quark ())
GQuark bgd_kafka_error_quark (void);

typedef enum {
  BGD_KAFKA_ERROR_CONFIG,        /* a property librdkafka refuses; the message names the key */
  BGD_KAFKA_ERROR_CREATE,        /* rd_kafka_new() failed */
  BGD_KAFKA_ERROR_UNKNOWN_TOPIC, /* a queried topic does not exist */
  BGD_KAFKA_ERROR_QUERY,         /* metadata or watermark query failed (broker down, timeout, ...) */
} BgdKafkaError;

/* One partition's high watermark (the agent needs no low one). */
typedef struct {
  char *topic;
  gint32 partition;
  gint64 high; /* the offset the next record will get */
} BgdWatermark;

#define BGD_TYPE_KAFKA (bgd_kafka_get_type ())
G_DECLARE_FINAL_TYPE (BgdKafka, bgd_kafka, BGD, KAFKA, GObject)

/* @bootstrap_servers: "host:port,..."; @properties: BgConfigProperty* (see
 * common/config.h: key, value), applied in order after the agent's own
 * defaults, so the operator can override them; may be NULL. Must be called
 * from the thread whose thread-default main context receives the events. */
BgdKafka *bgd_kafka_new (const char *bootstrap_servers, GPtrArray *properties, GError **error);

/* The handle, for modules that need librdkafka directly (thread-safe). */
rd_kafka_t *bgd_kafka_get_handle (BgdKafka *self);

/* Bound on one watermark query (metadata plus every partition), 5 s unless
 * changed. */
void bgd_kafka_set_query_timeout (BgdKafka *self, guint timeout_ms);

/* High watermarks of every partition of each of @topics (a
 * NULL-terminated array, copied), in a worker thread: metadata for the
 * partition count (cached for a minute), then one bg_watermarks_query()
 * per topic (common/watermarks.h: a timeout that holds with a leader
 * killed).
 * Completes in the caller's thread-default main context. The result is a
 * GArray of BgdWatermark in topic order then partition order (the array
 * frees the topic strings). */
void bgd_kafka_query_watermarks_async (BgdKafka *self,
                                       const char *const *topics,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
GArray *bgd_kafka_query_watermarks_finish (BgdKafka *self, GAsyncResult *result, GError **error);

/* Signals (main loop):
 *   "error" (BgdKafka *self, int rd_kafka_resp_err, const char *reason,
 *            gboolean fatal) — librdkafka's error_cb; most errors are
 *            transient (brokers down) and librdkafka retries by itself.
 */

G_END_DECLS
