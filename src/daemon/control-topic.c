/* control-topic.c — the agent's check of the control topic (see
 * control-topic.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/control-topic.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

G_DEFINE_QUARK (bgd-control-topic-error-quark, bgd_control_topic_error)

void
bgd_control_topic_facts_clear (BgdControlTopicFacts *facts)
{
  g_clear_pointer (&facts->cleanup_policy, g_free);
  g_clear_pointer (&facts->config_error, g_free);
}

void
bgd_control_topic_facts_free (BgdControlTopicFacts *facts)
{
  if (facts == NULL)
    return;
  bgd_control_topic_facts_clear (facts);
  g_free (facts);
}

/* ---- the verdict ------------------------------------------------------------- */

static gboolean
policy_compacts (const char *policy)
{
  g_auto (GStrv) parts = g_strsplit (policy, ",", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (g_str_equal (g_strstrip (parts[i]), "compact"))
      return TRUE;
  return FALSE;
}

gboolean
bgd_control_topic_assess (const char *topic, const BgdControlTopicFacts *facts, GPtrArray *warnings,
                          GError **error)
{
  if (!facts->exists)
    {
      g_set_error (error, BGD_CONTROL_TOPIC_ERROR, BGD_CONTROL_TOPIC_ERROR_MISSING,
                   "control topic '%s' does not exist; create it with one partition and "
                   "cleanup.policy=delete (see bluegreend.conf(5))", topic);
      return FALSE;
    }
  if (facts->partitions != 1)
    {
      g_set_error (error, BGD_CONTROL_TOPIC_ERROR, BGD_CONTROL_TOPIC_ERROR_PARTITIONS,
                   "control topic '%s' has %d partitions; it must have exactly one (one log in one "
                   "order for every agent): use a new topic with one partition", topic, facts->partitions);
      return FALSE;
    }
  if (facts->cleanup_policy != NULL && policy_compacts (facts->cleanup_policy))
    {
      g_set_error (error, BGD_CONTROL_TOPIC_ERROR, BGD_CONTROL_TOPIC_ERROR_COMPACTED,
                   "control topic '%s' has cleanup.policy=%s; it must be 'delete' (compaction drops "
                   "cutover decisions)", topic, facts->cleanup_policy);
      return FALSE;
    }
  if (warnings == NULL)
    return TRUE;
  if (facts->replication > 0 && facts->replication < 3)
    g_ptr_array_add (warnings, g_strdup_printf ("control topic '%s' has replication factor %d; 3 or more "
                                                "keeps the log through a broker's loss", topic,
                                                facts->replication));
  if (facts->min_insync_replicas > 0 && facts->min_insync_replicas < 2)
    g_ptr_array_add (warnings, g_strdup_printf ("control topic '%s' has min.insync.replicas=%d; with 2 "
                                                "an acknowledged decision survives a broker's loss",
                                                topic, facts->min_insync_replicas));
  if (facts->retention_known && facts->retention_ms >= 0
      && facts->retention_ms < BGD_CONTROL_TOPIC_MIN_RETENTION_MS)
    g_ptr_array_add (warnings, g_strdup_printf ("control topic '%s' keeps messages %.1f hours "
                                                "(retention.ms=%" G_GINT64_FORMAT "); an agent away "
                                                "longer misses decisions (a week or more is safe)",
                                                topic, facts->retention_ms / 3600000.0, facts->retention_ms));
  if (facts->config_error != NULL)
    g_ptr_array_add (warnings, g_strdup_printf ("cannot read the configuration of control topic '%s' "
                                                "(cleanup.policy not checked): %s", topic,
                                                facts->config_error));
  return TRUE;
}

/* ---- gathering the facts --------------------------------------------------------- */

typedef struct {
  char *topic;
  guint timeout_ms;
} CheckData;

static void
check_data_free (CheckData *d)
{
  g_free (d->topic);
  g_free (d);
}

static gboolean
read_metadata (rd_kafka_t *rk, const char *topic, guint timeout_ms, BgdControlTopicFacts *facts,
               GError **error)
{
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err;
  gboolean ok = TRUE;

  if (rkt == NULL)
    {
      g_set_error (error, BGD_CONTROL_TOPIC_ERROR, BGD_CONTROL_TOPIC_ERROR_QUERY, "topic '%s': %s", topic,
                   rd_kafka_err2str (rd_kafka_last_error ()));
      return FALSE;
    }
  err = rd_kafka_metadata (rk, 0, rkt, &md, (int) timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1)
    {
      g_set_error (error, BGD_CONTROL_TOPIC_ERROR, BGD_CONTROL_TOPIC_ERROR_QUERY,
                   "metadata of topic '%s': %s", topic, rd_kafka_err2str (err));
      ok = FALSE;
    }
  else if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    facts->exists = FALSE;
  else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      /* e.g. a leader not yet elected: ask again later. */
      g_set_error (error, BGD_CONTROL_TOPIC_ERROR, BGD_CONTROL_TOPIC_ERROR_QUERY,
                   "metadata of topic '%s': %s", topic, rd_kafka_err2str (md->topics[0].err));
      ok = FALSE;
    }
  else
    {
      facts->exists = TRUE;
      facts->partitions = md->topics[0].partition_cnt;
      for (int i = 0; i < md->topics[0].partition_cnt; i++)
        if (md->topics[0].partitions[i].id == 0)
          facts->replication = md->topics[0].partitions[i].replica_cnt;
    }
  if (md != NULL)
    rd_kafka_metadata_destroy (md);
  rd_kafka_topic_destroy (rkt);
  return ok;
}

/* Fills the configuration facts; what cannot be read is left unknown with
 * the reason in config_error. */
static void
read_configs (rd_kafka_t *rk, const char *topic, guint timeout_ms, BgdControlTopicFacts *facts)
{
  char errstr[256];
  rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new (RD_KAFKA_RESOURCE_TOPIC, topic);
  rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new (rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_queue_t *queue = rd_kafka_queue_new (rk);
  rd_kafka_event_t *ev;

  rd_kafka_AdminOptions_set_request_timeout (opts, (int) timeout_ms, errstr, sizeof errstr);
  rd_kafka_DescribeConfigs (rk, &res, 1, opts, queue);
  ev = rd_kafka_queue_poll (queue, (int) timeout_ms + 1000);
  if (ev == NULL)
    facts->config_error = g_strdup ("DescribeConfigs: no answer");
  else if (rd_kafka_event_error (ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
    facts->config_error = g_strdup_printf ("DescribeConfigs: %s", rd_kafka_event_error_string (ev));
  else
    {
      size_t n = 0, n_entries = 0;
      const rd_kafka_ConfigResource_t **rs
        = rd_kafka_DescribeConfigs_result_resources (rd_kafka_event_DescribeConfigs_result (ev), &n);
      const rd_kafka_ConfigEntry_t **entries;

      if (n != 1 || rd_kafka_ConfigResource_error (rs[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        facts->config_error = g_strdup_printf ("DescribeConfigs: %s",
                                               n == 1 ? rd_kafka_ConfigResource_error_string (rs[0])
                                                      : "no result");
      else
        {
          entries = rd_kafka_ConfigResource_configs (rs[0], &n_entries);
          for (size_t i = 0; i < n_entries; i++)
            {
              const char *name = rd_kafka_ConfigEntry_name (entries[i]);
              const char *value = rd_kafka_ConfigEntry_value (entries[i]);

              if (value == NULL)
                continue;
              if (g_str_equal (name, "cleanup.policy"))
                facts->cleanup_policy = g_strdup (value);
              else if (g_str_equal (name, "min.insync.replicas"))
                facts->min_insync_replicas = (int) g_ascii_strtoll (value, NULL, 10);
              else if (g_str_equal (name, "retention.ms"))
                {
                  facts->retention_ms = g_ascii_strtoll (value, NULL, 10);
                  facts->retention_known = TRUE;
                }
            }
          if (facts->cleanup_policy == NULL)
            facts->config_error = g_strdup ("DescribeConfigs: no cleanup.policy in the answer");
        }
    }
  if (ev != NULL)
    rd_kafka_event_destroy (ev);
  rd_kafka_queue_destroy (queue);
  rd_kafka_AdminOptions_destroy (opts);
  rd_kafka_ConfigResource_destroy (res);
}

static void
check_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  CheckData *d = task_data;
  rd_kafka_t *rk = bgd_kafka_get_handle (BGD_KAFKA (source));
  BgdControlTopicFacts *facts = g_new0 (BgdControlTopicFacts, 1);
  GError *error = NULL;

  facts->partitions = -1;
  facts->replication = -1;
  facts->min_insync_replicas = -1;
  facts->retention_ms = -1;
  if (!read_metadata (rk, d->topic, d->timeout_ms, facts, &error))
    {
      bgd_control_topic_facts_free (facts);
      g_task_return_error (task, error);
      return;
    }
  if (facts->exists)
    read_configs (rk, d->topic, d->timeout_ms, facts);
  g_task_return_pointer (task, facts, (GDestroyNotify) bgd_control_topic_facts_free);
}

void
bgd_control_topic_check_async (BgdKafka *kafka, const char *topic, guint timeout_ms,
                               GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (kafka, cancellable, callback, user_data);
  CheckData *d = g_new0 (CheckData, 1);

  d->topic = g_strdup (topic);
  d->timeout_ms = timeout_ms;
  g_task_set_source_tag (task, bgd_control_topic_check_async);
  g_task_set_task_data (task, d, (GDestroyNotify) check_data_free);
  g_task_run_in_thread (task, check_thread);
}

BgdControlTopicFacts *
bgd_control_topic_check_finish (BgdKafka *kafka, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, kafka), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
