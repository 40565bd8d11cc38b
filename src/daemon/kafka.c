/* kafka.c — the agent's Kafka client (see kafka.h).
 *
 * Main-loop plumbing: librdkafka queues its callbacks (error_cb, and log_cb
 * with log.queue=true) on the handle's main queue and writes to our
 * eventfd when that queue goes from empty to non-empty. So every wake-up
 * drains the queue to empty, or the next event would never wake us; a slow
 * periodic poll covers anything else that only a poll call advances.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/kafka.h"

#include "common/watermarks.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/config.h"

#define DEFAULT_QUERY_TIMEOUT_MS 5000
#define PERIODIC_POLL_SEC 2
/* How long partition ids are reused before metadata is asked again: new
 * partitions show up in the lag at most this late. */
#define PARTITION_CACHE_USEC (60 * G_USEC_PER_SEC)
/* Events served per wake-up at most, so a flood cannot starve the loop;
 * the fd stays readable-worthy because we poll again at once (idle). */
#define MAX_EVENTS_PER_WAKEUP 1000

G_DEFINE_QUARK (bgd-kafka-error-quark, bgd_kafka_error)

struct _BgdKafka {
  GObject parent_instance;
  rd_kafka_t *rk;
  rd_kafka_queue_t *main_queue;
  int event_fd;
  guint fd_source;
  guint poll_source;
  guint query_timeout_ms; /* atomic: read by worker threads */
  /* Partition ids per topic (GArray of gint32), shared by the worker
   * threads: metadata for all topics is big on a big cluster, and
   * partition counts change rarely. */
  GMutex cache_lock;
  GHashTable *partition_cache;
};

G_DEFINE_TYPE (BgdKafka, bgd_kafka, G_TYPE_OBJECT)

enum { SIGNAL_ERROR, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- events into the main loop ---------------------------------------------- */

static void
on_rd_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  BgdKafka *self = opaque;
  gboolean fatal = (err == RD_KAFKA_RESP_ERR__FATAL);

  /* Brokers going away and coming back is ordinary life for an agent, and
   * librdkafka retries on its own: not a warning. */
  g_message ("kafka: %s%s (%s)", fatal ? "fatal error: " : "", reason, rd_kafka_err2name (err));
  g_signal_emit (self, signals[SIGNAL_ERROR], 0, err, reason, fatal);
}

static void
on_rd_log (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  if (level <= 4)
    g_message ("kafka %s: %s", fac, buf);
  else if (level <= 6)
    g_info ("kafka %s: %s", fac, buf);
  else
    g_debug ("kafka %s: %s", fac, buf);
}

static void
drain (BgdKafka *self)
{
  for (int i = 0; i < MAX_EVENTS_PER_WAKEUP; i++)
    if (rd_kafka_poll (self->rk, 0) == 0)
      return;
}

static gboolean
on_event_fd (int fd, GIOCondition condition, gpointer user_data)
{
  BgdKafka *self = user_data;
  guint64 count;

  /* Clear the eventfd first: an event queued after this read writes it
   * again, so nothing is missed between the read and the drain. */
  if (read (fd, &count, sizeof count) < 0 && errno != EAGAIN)
    g_debug ("kafka: reading the event fd: %s", g_strerror (errno));
  drain (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_periodic_poll (gpointer user_data)
{
  drain (user_data);
  return G_SOURCE_CONTINUE;
}

/* ---- construction ----------------------------------------------------------- */

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, const char *where, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_CONFIG, "%s%s: %s", where, key, errstr);
      return FALSE;
    }
  return TRUE;
}

BgdKafka *
bgd_kafka_new (const char *bootstrap_servers, GPtrArray *properties, GError **error)
{
  g_autoptr(BgdKafka) self = NULL;
  rd_kafka_conf_t *conf;
  char errstr[512];
  static const guint64 one = 1;

  g_return_val_if_fail (bootstrap_servers != NULL, NULL);

  conf = rd_kafka_conf_new ();
  /* Our defaults first, so [Kafka.Properties] can override them. The
   * agent only looks at topics: it must never create one by asking. */
  if (!conf_set (conf, "bootstrap.servers", bootstrap_servers, "[Kafka] BootstrapServers: ", error) ||
      !conf_set (conf, "client.id", "bluegreend", "", error) ||
      !conf_set (conf, "allow.auto.create.topics", "false", "", error) ||
      !conf_set (conf, "log.queue", "true", "", error))
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  for (guint i = 0; properties != NULL && i < properties->len; i++)
    {
      const BgConfigProperty *p = g_ptr_array_index (properties, i);

      if (!conf_set (conf, p->key, p->value, "[Kafka.Properties] ", error))
        {
          rd_kafka_conf_destroy (conf);
          return NULL;
        }
    }

  self = g_object_new (BGD_TYPE_KAFKA, NULL);
  rd_kafka_conf_set_opaque (conf, self);
  rd_kafka_conf_set_error_cb (conf, on_rd_error);
  rd_kafka_conf_set_log_cb (conf, on_rd_log);

  /* A producer handle: the cheapest kind, and metadata and watermark
   * queries work on any. rd_kafka_new() owns conf on success only. */
  self->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (self->rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_CREATE, "cannot create the Kafka client: %s", errstr);
      return NULL;
    }
  rd_kafka_set_log_queue (self->rk, NULL); /* NULL: the main queue */

  self->event_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->event_fd < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "eventfd: %s", g_strerror (e));
      return NULL;
    }
  self->main_queue = rd_kafka_queue_get_main (self->rk);
  rd_kafka_queue_io_event_enable (self->main_queue, self->event_fd, &one, sizeof one);
  self->fd_source = g_unix_fd_add (self->event_fd, G_IO_IN, on_event_fd, self);
  self->poll_source = g_timeout_add_seconds (PERIODIC_POLL_SEC, on_periodic_poll, self);
  /* Whatever was queued before the fd was registered never wrote it. */
  drain (self);
  return g_steal_pointer (&self);
}

rd_kafka_t *
bgd_kafka_get_handle (BgdKafka *self)
{
  g_return_val_if_fail (BGD_IS_KAFKA (self), NULL);
  return self->rk;
}

void
bgd_kafka_set_query_timeout (BgdKafka *self, guint timeout_ms)
{
  g_return_if_fail (BGD_IS_KAFKA (self));
  g_atomic_int_set (&self->query_timeout_ms, MAX (timeout_ms, 1));
}

/* ---- watermarks ------------------------------------------------------------- */

static void
clear_watermark (gpointer p)
{
  g_free (((BgdWatermark *) p)->topic);
}

static int
remaining_ms (gint64 deadline)
{
  gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
  return (int) CLAMP (left, 0, G_MAXINT);
}

static int
compare_int32 (gconstpointer a, gconstpointer b)
{
  gint32 x = *(const gint32 *) a, y = *(const gint32 *) b;
  return (x > y) - (x < y);
}

/* Partition ids of @topic, sorted. */
typedef struct {
  GArray *ids;
  gint64 fetched_at;
} CachedPartitions;

static void
cached_partitions_free (CachedPartitions *c)
{
  g_array_unref (c->ids);
  g_free (c);
}

static GArray *
topic_partitions_uncached (rd_kafka_t *rk, const char *topic, gint64 deadline, GError **error)
{
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gboolean found = FALSE;

  /* All topics, not just this one: a producer handle's request for one
   * topic asks the broker to create it if it does not exist (the mock and
   * brokers with auto.create.topics.enable do), whatever
   * allow.auto.create.topics says. */
  err = rd_kafka_metadata (rk, 1, NULL, &md, remaining_ms (deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_QUERY, "metadata of topic '%s': %s", topic,
                   rd_kafka_err2str (err));
      return NULL;
    }
  for (int t = 0; t < md->topic_cnt; t++)
    {
      const rd_kafka_metadata_topic_t *mt = &md->topics[t];

      if (strcmp (mt->topic, topic) != 0)
        continue;
      found = TRUE;
      if (mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_UNKNOWN_TOPIC, "topic '%s' does not exist", topic);
      else if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_QUERY, "metadata of topic '%s': %s", topic,
                     rd_kafka_err2str (mt->err));
      else
        for (int p = 0; p < mt->partition_cnt; p++)
          g_array_append_val (ids, mt->partitions[p].id);
      break;
    }
  rd_kafka_metadata_destroy (md);
  if (error != NULL && *error != NULL)
    return NULL;
  if (!found)
    {
      g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_UNKNOWN_TOPIC, "topic '%s' does not exist", topic);
      return NULL;
    }
  if (ids->len == 0)
    {
      g_set_error (error, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_UNKNOWN_TOPIC, "topic '%s' has no partitions", topic);
      return NULL;
    }
  g_array_sort (ids, compare_int32);
  return g_steal_pointer (&ids);
}

static GArray *
topic_partitions (BgdKafka *self, const char *topic, gint64 deadline, GError **error)
{
  gint64 now = g_get_monotonic_time ();
  CachedPartitions *c;
  GArray *ids;

  g_mutex_lock (&self->cache_lock);
  c = g_hash_table_lookup (self->partition_cache, topic);
  if (c != NULL && now - c->fetched_at < PARTITION_CACHE_USEC)
    {
      ids = g_array_ref (c->ids);
      g_mutex_unlock (&self->cache_lock);
      return ids;
    }
  g_mutex_unlock (&self->cache_lock);

  ids = topic_partitions_uncached (self->rk, topic, deadline, error);
  if (ids == NULL)
    return NULL;
  c = g_new0 (CachedPartitions, 1);
  c->ids = g_array_ref (ids);
  c->fetched_at = now;
  g_mutex_lock (&self->cache_lock);
  g_hash_table_replace (self->partition_cache, g_strdup (topic), c);
  g_mutex_unlock (&self->cache_lock);
  return ids;
}

static void
query_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  BgdKafka *self = source;
  char **topics = task_data;
  gint64 deadline = g_get_monotonic_time () + (gint64) g_atomic_int_get (&self->query_timeout_ms) * 1000;
  g_autoptr(GArray) result = g_array_new (FALSE, FALSE, sizeof (BgdWatermark));

  g_array_set_clear_func (result, clear_watermark);
  for (char **t = topics; *t; t++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) ids = topic_partitions (self, *t, deadline, &error);
      g_autofree gint64 *high = NULL;

      if (ids == NULL)
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      if (g_task_return_error_if_cancelled (task))
        return;
      high = g_new0 (gint64, MAX (ids->len, 1));
      /* Not rd_kafka_query_watermark_offsets(): with a partition's leader
       * killed, it never returned (see common/watermarks.h). */
      if (!bg_watermarks_query (self->rk, *t, (const gint32 *) (gpointer) ids->data, ids->len, NULL, high,
                                remaining_ms (deadline), &error))
        {
          g_task_return_new_error (task, BGD_KAFKA_ERROR, BGD_KAFKA_ERROR_QUERY, "%s", error->message);
          return;
        }
      for (guint i = 0; i < ids->len; i++)
        {
          BgdWatermark w = { g_strdup (*t), g_array_index (ids, gint32, i), high[i] };
          g_array_append_val (result, w);
        }
    }
  g_task_return_pointer (task, g_steal_pointer (&result), (GDestroyNotify) g_array_unref);
}

void
bgd_kafka_query_watermarks_async (BgdKafka *self, const char *const *topics, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BGD_IS_KAFKA (self));
  g_return_if_fail (topics != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bgd_kafka_query_watermarks_async);
  g_task_set_task_data (task, g_strdupv ((char **) topics), (GDestroyNotify) g_strfreev);
  g_task_run_in_thread (task, query_thread);
}

GArray *
bgd_kafka_query_watermarks_finish (BgdKafka *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- object ----------------------------------------------------------------- */

static void
bgd_kafka_dispose (GObject *object)
{
  BgdKafka *self = BGD_KAFKA (object);

  g_clear_handle_id (&self->fd_source, g_source_remove);
  g_clear_handle_id (&self->poll_source, g_source_remove);
  if (self->main_queue != NULL)
    {
      rd_kafka_queue_io_event_enable (self->main_queue, -1, NULL, 0);
      rd_kafka_queue_destroy (self->main_queue);
      self->main_queue = NULL;
    }
  if (self->rk != NULL)
    {
      rd_kafka_destroy (self->rk);
      self->rk = NULL;
    }
  if (self->event_fd >= 0)
    {
      close (self->event_fd);
      self->event_fd = -1;
    }
  G_OBJECT_CLASS (bgd_kafka_parent_class)->dispose (object);
}

static void
bgd_kafka_finalize (GObject *object)
{
  BgdKafka *self = BGD_KAFKA (object);

  g_hash_table_unref (self->partition_cache);
  g_mutex_clear (&self->cache_lock);
  G_OBJECT_CLASS (bgd_kafka_parent_class)->finalize (object);
}

static void
bgd_kafka_init (BgdKafka *self)
{
  g_mutex_init (&self->cache_lock);
  self->partition_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) cached_partitions_free);
  self->event_fd = -1;
  self->query_timeout_ms = DEFAULT_QUERY_TIMEOUT_MS;
}

static void
bgd_kafka_class_init (BgdKafkaClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bgd_kafka_dispose;
  object_class->finalize = bgd_kafka_finalize;
  signals[SIGNAL_ERROR] =
    g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_INT, G_TYPE_STRING, G_TYPE_BOOLEAN);
}
