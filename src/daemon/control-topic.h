/* control-topic.h — the agent's check of the control topic at start.
 *
 * The cutover protocol relies on the control topic being one totally
 * ordered log that keeps every message for as long as an agent may be
 * away: one partition, cleanup.policy=delete (compaction would drop
 * decisions: every message has no key or the same few). A topic that is
 * missing, has more than one partition or is compacted is an error naming
 * the topic and what is wrong; weak durability (replication below 3,
 * min.insync.replicas below 2) and a retention shorter than a week (an
 * agent down longer would find the decisions it missed deleted) are
 * warnings.
 *
 * bgd_control_topic_assess() is pure (the facts in, the verdict out);
 * bgd_control_topic_check_async() gathers the facts in a worker thread:
 * metadata for the topic (the agent's client never creates topics by
 * asking), then DescribeConfigs. A broker that cannot answer
 * DescribeConfigs (librdkafka's mock cluster) leaves the configuration
 * unknown: only what is known is judged.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "daemon/kafka.h"

G_BEGIN_DECLS

#define BGD_CONTROL_TOPIC_ERROR (bgd_control_topic_error_quark ())
GQuark bgd_control_topic_error_quark (void);

typedef enum {
  BGD_CONTROL_TOPIC_ERROR_MISSING,    /* the topic does not exist */
  BGD_CONTROL_TOPIC_ERROR_PARTITIONS, /* it has more than one partition */
  BGD_CONTROL_TOPIC_ERROR_COMPACTED,  /* cleanup.policy includes compact */
  BGD_CONTROL_TOPIC_ERROR_QUERY,      /* Kafka did not answer (down, timeout): no verdict */
} BgdControlTopicError;

/* Retention below which the check warns: a week, Kafka's default. */
#define BGD_CONTROL_TOPIC_MIN_RETENTION_MS (7 * 24 * 3600 * G_GINT64_CONSTANT (1000))

/* What is known about the topic; -1 / NULL for unknown. */
typedef struct {
  gboolean exists;
  int partitions;
  int replication;          /* replicas of partition 0 */
  char *cleanup_policy;
  int min_insync_replicas;
  gint64 retention_ms;      /* -1: unlimited or unknown, see retention_known */
  gboolean retention_known;
  char *config_error;       /* why the configuration is unknown, or NULL */
} BgdControlTopicFacts;

void bgd_control_topic_facts_clear (BgdControlTopicFacts *facts);
void bgd_control_topic_facts_free (BgdControlTopicFacts *facts);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BgdControlTopicFacts, bgd_control_topic_facts_clear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdControlTopicFacts, bgd_control_topic_facts_free)

/* The verdict on @facts about @topic: FALSE with @error for what makes the
 * topic unusable; otherwise TRUE, with a sentence per weakness appended to
 * @warnings (char*, may be NULL). */
gboolean bgd_control_topic_assess (const char *topic, const BgdControlTopicFacts *facts,
                                   GPtrArray *warnings, GError **error);

/* Gathers the facts about @topic with @kafka's client in a worker thread
 * (each query bounded by @timeout_ms). Completes in the caller's
 * thread-default main context. */
void bgd_control_topic_check_async (BgdKafka *kafka, const char *topic, guint timeout_ms,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
/* The facts (free with bgd_control_topic_facts_free()), or NULL
 * with BGD_CONTROL_TOPIC_ERROR_QUERY when Kafka did not answer. */
BgdControlTopicFacts *bgd_control_topic_check_finish (BgdKafka *kafka, GAsyncResult *result,
                                                      GError **error);

G_END_DECLS
