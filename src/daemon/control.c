/* control.c — the control log's consumer and producer (see control.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/control.h"

#include <errno.h>
#include <glib-unix.h>
#include <librdkafka/rdkafka.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/config.h"

#define PERIODIC_POLL_MS 1000
/* Resource bounds (issue 8). Anyone who can write to the control topic
 * can make it long; the agent's memory must not follow:
 * - decoded per wake-up: at most MAX_MESSAGES_PER_WAKEUP messages are
 *   taken from librdkafka's queue and decoded (one at a time, each freed
 *   before the next); the rest waits for an idle callback, so a long
 *   replay cannot starve the D-Bus side of the loop either;
 * - prefetched, undecoded: librdkafka's consumer queue holds at most
 *   CONSUMER_QUEUE_KBYTES (its default is 64 MB per partition) and
 *   CONSUMER_QUEUE_MIN_MESSAGES; a message over the codec's 64 KB is
 *   refused when decoded;
 * - waiting to be appended: PRODUCER_QUEUE_KBYTES at most while the
 *   brokers are down; each message expires after message.timeout.ms
 *   (5 min), so hellos cannot pile up for ever (a decision that could not
 *   be appended in time is covered by the deadline rule).
 * The operator's [Kafka] properties come after these and may change them. */
#define MAX_MESSAGES_PER_WAKEUP 500
#define CONSUMER_QUEUE_KBYTES "4096"
#define CONSUMER_QUEUE_MIN_MESSAGES "1000"
#define PRODUCER_QUEUE_KBYTES "32768"
/* Logging what is ignored: a burst per period, then one line with a count. */
#define IGNORED_LOG_BURST 50
#define IGNORED_LOG_PERIOD_USEC (10 * G_USEC_PER_SEC)

G_DEFINE_QUARK (bgd-control-error-quark, bgd_control_error)

struct _BgdControl {
  char *topic;
  rd_kafka_t *consumer;
  rd_kafka_t *producer;
  rd_kafka_queue_t *consumer_queue;
  rd_kafka_queue_t *producer_queue;
  int consumer_fd;
  int producer_fd;
  guint consumer_source;
  guint producer_source;
  guint poll_source;
  guint more_source;
  gboolean replayed;
  BgKeyring *keyring;        /* NULL: no signing, no verifying */
  BgReplayGuard *guard;
  guint64 n_rejected;
  /* librdkafka's last word on the brokers: all down (until something is
   * read or appended again). For the metrics. */
  gboolean brokers_down;
  gint64 log_period_start;   /* monotonic µs */
  guint log_lines;           /* in this period */
  guint64 log_suppressed;
  BgdControlMessageFunc on_message;
  BgdControlReplayedFunc on_replayed;
  gpointer user_data;
};

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, BGD_CONTROL_ERROR, BGD_CONTROL_ERROR_CONFIG, "%s: %s", key, errstr);
      return FALSE;
    }
  return TRUE;
}

static void
on_rd_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  BgdControl *ctl = opaque;

  /* Brokers come and go; librdkafka retries by itself. */
  g_message ("control log: %s (%s)", reason, rd_kafka_err2name (err));
  if (ctl != NULL && err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    ctl->brokers_down = TRUE;
}

static void
on_rd_log (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  if (level <= 4)
    g_message ("control log kafka %s: %s", fac, buf);
  else
    g_debug ("control log kafka %s: %s", fac, buf);
}

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
  BgdControl *ctl = rd_kafka_opaque (rk);

  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_message ("control log: a message could not be appended: %s", rd_kafka_err2str (m->err));
  else if (ctl != NULL)
    ctl->brokers_down = FALSE;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    g_debug ("control log: appended at offset %" G_GINT64_FORMAT, (gint64) m->offset);
}

static rd_kafka_conf_t *
make_conf (const char *bootstrap_servers, GPtrArray *properties, gboolean consumer, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  gboolean ok;

  ok = conf_set (conf, "bootstrap.servers", bootstrap_servers, error)
       && conf_set (conf, "client.id", consumer ? "bluegreend-control-reader" : "bluegreend-control-writer", error)
       && conf_set (conf, "allow.auto.create.topics", "false", error)
       && conf_set (conf, "log.queue", "true", error)
       && conf_set (conf, "reconnect.backoff.ms", "50", error)
       && conf_set (conf, "reconnect.backoff.max.ms", "500", error);
  if (ok && consumer)
    /* A group id only so that librdkafka gives the consumer its queue:
     * nothing subscribes or commits (the offset lives in the state file). */
    ok = conf_set (conf, "group.id", "bluegreend-control", error)
         && conf_set (conf, "enable.auto.commit", "false", error)
         && conf_set (conf, "enable.auto.offset.store", "false", error)
         && conf_set (conf, "enable.partition.eof", "true", error)
         /* If the stored offset is gone (retention deleted it while the agent
          * was down or behind), read from the oldest message still there:
          * never jump to the end past decisions it has not seen. */
         && conf_set (conf, "auto.offset.reset", "earliest", error)
         /* How long a broker may hold an empty fetch. A real broker answers
          * a waiting fetch as soon as a message arrives, so this costs no
          * latency there, only wake-ups when idle (10 a second). The mock
          * cluster holds every empty fetch for the whole time: the rig sets
          * 10 ms in [Kafka.Properties]. */
         && conf_set (conf, "fetch.wait.max.ms", "100", error)
         && conf_set (conf, "fetch.error.backoff.ms", "50", error)
         && conf_set (conf, "queued.max.messages.kbytes", CONSUMER_QUEUE_KBYTES, error)
         && conf_set (conf, "queued.min.messages", CONSUMER_QUEUE_MIN_MESSAGES, error);
  else if (ok)
    /* A decision must land even after a long outage: retry for minutes. */
    ok = conf_set (conf, "acks", "all", error)
         && conf_set (conf, "linger.ms", "0", error)
         && conf_set (conf, "message.timeout.ms", "300000", error)
         && conf_set (conf, "queue.buffering.max.kbytes", PRODUCER_QUEUE_KBYTES, error);
  for (guint i = 0; ok && properties != NULL && i < properties->len; i++)
    {
      const BgConfigProperty *p = g_ptr_array_index (properties, i);
      char errstr[512];

      /* The operator's properties are meant for every client; a
       * consumer-only key on the producer (or the other way round) is
       * just not for this handle. */
      if (rd_kafka_conf_set (conf, p->key, p->value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        g_debug ("control log: property %s not applied: %s", p->key, errstr);
    }
  if (!ok)
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  rd_kafka_conf_set_error_cb (conf, on_rd_error);
  rd_kafka_conf_set_log_cb (conf, on_rd_log);
  if (!consumer)
    rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  return conf;
}

static void
clear_fd (int fd)
{
  guint64 count;

  if (read (fd, &count, sizeof count) < 0 && errno != EAGAIN)
    g_debug ("control log: reading an event fd: %s", g_strerror (errno));
}

static gboolean consume_more_cb (gpointer user_data);

/* Logs an ignored message, rate-limited (see control.h). */
static void
log_ignored (BgdControl *ctl, gint64 offset, const char *why)
{
  gint64 now = g_get_monotonic_time ();

  if (now - ctl->log_period_start >= IGNORED_LOG_PERIOD_USEC)
    {
      if (ctl->log_suppressed > 0)
        g_message ("control log: %" G_GUINT64_FORMAT " more messages ignored without a log line",
                   ctl->log_suppressed);
      ctl->log_period_start = now;
      ctl->log_lines = 0;
      ctl->log_suppressed = 0;
    }
  if (ctl->log_lines >= IGNORED_LOG_BURST)
    {
      ctl->log_suppressed++;
      return;
    }
  ctl->log_lines++;
  g_message ("control log: offset %" G_GINT64_FORMAT " ignored: %s", offset, why);
}

/* Whether a decoded message may be acted on (see control.h). */
static gboolean
admit (BgdControl *ctl, const BgControlMessage *msg, gint64 offset)
{
  g_autoptr(GError) error = NULL;

  if (ctl->keyring == NULL)
    return TRUE;
  if (!bg_keyring_verify (ctl->keyring, msg, &error)
      /* The replay at start reads legitimately old messages: no clock
       * window until the end of the log as it was at start is reached. */
      || !bg_replay_guard_check (ctl->guard, msg, ctl->replayed ? g_get_real_time () : -1, &error))
    {
      g_autofree char *why = g_strdup_printf ("%s from %s: %s", bg_control_type_to_string (msg->type),
                                              msg->host, error->message);
      ctl->n_rejected++;
      log_ignored (ctl, offset, why);
      return FALSE;
    }
  return TRUE;
}

/* Reads what the consumer queue holds; returns FALSE if it stopped early
 * (more to read). */
static gboolean
consume (BgdControl *ctl)
{
  for (int i = 0; i < MAX_MESSAGES_PER_WAKEUP; i++)
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (ctl->consumer, 0);
      g_autoptr(GError) error = NULL;
      g_autoptr(BgControlMessage) msg = NULL;

      if (m == NULL)
        return TRUE;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        ctl->brokers_down = FALSE;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        {
          if (!ctl->replayed)
            {
              ctl->replayed = TRUE;
              g_message ("control log: replayed up to offset %" G_GINT64_FORMAT, (gint64) m->offset);
              rd_kafka_message_destroy (m);
              if (ctl->on_replayed != NULL)
                ctl->on_replayed (ctl->user_data);
              continue;
            }
        }
      else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
        g_message ("control log: messages were deleted before this agent read them (%s); "
                   "reading on from the oldest one left", rd_kafka_message_errstr (m));
      else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        g_message ("control log: %s", rd_kafka_message_errstr (m));
      else
        {
          msg = bg_control_message_decode (m->payload, m->len, &error);
          if (msg == NULL)
            log_ignored (ctl, m->offset, error->message);
          else if (admit (ctl, msg, m->offset))
            ctl->on_message (msg, m->offset, ctl->user_data);
        }
      rd_kafka_message_destroy (m);
    }
  return FALSE;
}

static void
consume_and_schedule (BgdControl *ctl)
{
  if (!consume (ctl) && ctl->more_source == 0)
    ctl->more_source = g_idle_add (consume_more_cb, ctl);
}

static gboolean
consume_more_cb (gpointer user_data)
{
  BgdControl *ctl = user_data;

  ctl->more_source = 0;
  consume_and_schedule (ctl);
  return G_SOURCE_REMOVE;
}

static gboolean
on_consumer_fd (int fd, GIOCondition condition, gpointer user_data)
{
  BgdControl *ctl = user_data;

  /* Clear first: anything queued after this read writes the fd again. */
  clear_fd (fd);
  consume_and_schedule (ctl);
  return G_SOURCE_CONTINUE;
}

static void
drain_producer (BgdControl *ctl)
{
  for (int i = 0; i < MAX_MESSAGES_PER_WAKEUP; i++)
    if (rd_kafka_poll (ctl->producer, 0) == 0)
      return;
}

static gboolean
on_producer_fd (int fd, GIOCondition condition, gpointer user_data)
{
  clear_fd (fd);
  drain_producer (user_data);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_periodic_poll (gpointer user_data)
{
  BgdControl *ctl = user_data;

  consume_and_schedule (ctl);
  drain_producer (ctl);
  return G_SOURCE_CONTINUE;
}

static int
new_event_fd (GError **error)
{
  int fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);

  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "eventfd: %s", g_strerror (e));
    }
  return fd;
}

BgdControl *
bgd_control_new (const char *bootstrap_servers, GPtrArray *properties, const char *topic,
                 gint64 start_offset, BgKeyring *keyring, BgdControlMessageFunc on_message,
                 BgdControlReplayedFunc on_replayed, gpointer user_data, GError **error)
{
  g_autoptr(BgdControl) ctl = g_new0 (BgdControl, 1);
  rd_kafka_conf_t *conf;
  rd_kafka_topic_partition_list_t *parts;
  rd_kafka_resp_err_t err;
  char errstr[512];
  static const guint64 one = 1;

  ctl->topic = g_strdup (topic);
  ctl->consumer_fd = ctl->producer_fd = -1;
  ctl->on_message = on_message;
  ctl->on_replayed = on_replayed;
  ctl->user_data = user_data;
  bgd_control_set_keyring (ctl, keyring);

  conf = make_conf (bootstrap_servers, properties, TRUE, error);
  if (conf == NULL)
    return NULL;
  rd_kafka_conf_set_opaque (conf, ctl);
  ctl->consumer = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (ctl->consumer == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, BGD_CONTROL_ERROR, BGD_CONTROL_ERROR_CREATE, "control log reader: %s", errstr);
      return NULL;
    }
  conf = make_conf (bootstrap_servers, properties, FALSE, error);
  if (conf == NULL)
    return NULL;
  rd_kafka_conf_set_opaque (conf, ctl);
  ctl->producer = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (ctl->producer == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, BGD_CONTROL_ERROR, BGD_CONTROL_ERROR_CREATE, "control log writer: %s", errstr);
      return NULL;
    }
  rd_kafka_set_log_queue (ctl->producer, NULL);
  /* Everything of the consumer (messages, errors, logs) in one queue. */
  rd_kafka_poll_set_consumer (ctl->consumer);

  if ((ctl->consumer_fd = new_event_fd (error)) < 0 || (ctl->producer_fd = new_event_fd (error)) < 0)
    return NULL;
  ctl->consumer_queue = rd_kafka_queue_get_consumer (ctl->consumer);
  if (ctl->consumer_queue == NULL)
    {
      g_set_error (error, BGD_CONTROL_ERROR, BGD_CONTROL_ERROR_CREATE, "control log reader: no consumer queue");
      return NULL;
    }
  rd_kafka_queue_io_event_enable (ctl->consumer_queue, ctl->consumer_fd, &one, sizeof one);
  ctl->producer_queue = rd_kafka_queue_get_main (ctl->producer);
  rd_kafka_queue_io_event_enable (ctl->producer_queue, ctl->producer_fd, &one, sizeof one);
  ctl->consumer_source = g_unix_fd_add (ctl->consumer_fd, G_IO_IN, on_consumer_fd, ctl);
  ctl->producer_source = g_unix_fd_add (ctl->producer_fd, G_IO_IN, on_producer_fd, ctl);
  ctl->poll_source = g_timeout_add (PERIODIC_POLL_MS, on_periodic_poll, ctl);

  parts = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (parts, topic, 0)->offset =
    start_offset >= 0 ? start_offset : RD_KAFKA_OFFSET_BEGINNING;
  err = rd_kafka_assign (ctl->consumer, parts);
  rd_kafka_topic_partition_list_destroy (parts);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BGD_CONTROL_ERROR, BGD_CONTROL_ERROR_CREATE, "control log: assigning %s [0]: %s",
                   topic, rd_kafka_err2str (err));
      return NULL;
    }
  g_info ("control log: reading %s from %s", topic,
          start_offset >= 0 ? "the stored offset" : "the beginning");
  /* Anything queued before the fds were registered never wrote them; read
   * it from the main loop, never from here: the caller may not have set up
   * what handles the messages yet (the agent creates its jobs after this,
   * and a message of a job it does not know yet would be skipped). */
  ctl->more_source = g_idle_add (consume_more_cb, ctl);
  drain_producer (ctl);
  return g_steal_pointer (&ctl);
}

gboolean
bgd_control_append (BgdControl *ctl, BgControlMessage *msg)
{
  g_autoptr(BgControlMessage) owned = msg;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  rd_kafka_resp_err_t err;
  gsize len;
  gconstpointer data;

  if (ctl->keyring != NULL && !bg_keyring_sign (ctl->keyring, msg, &error))
    {
      g_critical ("control log: refusing to append an invalid %s: %s",
                  bg_control_type_to_string (msg->type), error->message);
      return FALSE;
    }
  bytes = bg_control_message_encode (msg, &error);
  if (bytes == NULL)
    {
      g_critical ("control log: refusing to append an invalid %s: %s",
                  bg_control_type_to_string (msg->type), error->message);
      return FALSE;
    }
  data = g_bytes_get_data (bytes, &len);
  err = rd_kafka_producev (ctl->producer,
                           RD_KAFKA_V_TOPIC (ctl->topic),
                           RD_KAFKA_V_PARTITION (0),
                           RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY),
                           RD_KAFKA_V_VALUE ((void *) data, len),
                           RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_message ("control log: cannot append a %s: %s", bg_control_type_to_string (msg->type),
                 rd_kafka_err2str (err));
      return FALSE;
    }
  g_debug ("control log: appending %.*s", (int) len, (const char *) data);
  return TRUE;
}

gboolean
bgd_control_is_replayed (BgdControl *ctl)
{
  return ctl->replayed;
}

void
bgd_control_set_keyring (BgdControl *ctl, BgKeyring *keyring)
{
  g_clear_pointer (&ctl->keyring, bg_keyring_free);
  ctl->keyring = keyring;
  if (keyring != NULL && ctl->guard == NULL)
    ctl->guard = bg_replay_guard_new ();
  if (keyring != NULL)
    g_info ("control log: signing with key %s, %u key(s) verify", bg_keyring_signing_key (keyring),
            bg_keyring_n_verifying (keyring));
  else
    g_info ("control log: no fleet key, messages are neither signed nor verified");
}

guint64
bgd_control_n_rejected (BgdControl *ctl)
{
  return ctl->n_rejected;
}

void
bgd_control_free (BgdControl *ctl)
{
  if (ctl == NULL)
    return;
  g_clear_handle_id (&ctl->consumer_source, g_source_remove);
  g_clear_handle_id (&ctl->producer_source, g_source_remove);
  g_clear_handle_id (&ctl->poll_source, g_source_remove);
  g_clear_handle_id (&ctl->more_source, g_source_remove);
  if (ctl->producer != NULL)
    {
      /* Bounded: what is still queued (a decision!) gets a moment to land. */
      rd_kafka_flush (ctl->producer, 2000);
    }
  if (ctl->consumer_queue != NULL)
    {
      rd_kafka_queue_io_event_enable (ctl->consumer_queue, -1, NULL, 0);
      rd_kafka_queue_destroy (ctl->consumer_queue);
    }
  if (ctl->producer_queue != NULL)
    {
      rd_kafka_queue_io_event_enable (ctl->producer_queue, -1, NULL, 0);
      rd_kafka_queue_destroy (ctl->producer_queue);
    }
  if (ctl->consumer != NULL)
    {
      rd_kafka_consumer_close (ctl->consumer);
      rd_kafka_destroy (ctl->consumer);
    }
  if (ctl->producer != NULL)
    rd_kafka_destroy (ctl->producer);
  if (ctl->consumer_fd >= 0)
    close (ctl->consumer_fd);
  if (ctl->producer_fd >= 0)
    close (ctl->producer_fd);
  g_clear_pointer (&ctl->keyring, bg_keyring_free);
  g_clear_pointer (&ctl->guard, bg_replay_guard_free);
  g_free (ctl->topic);
  g_free (ctl);
}

gint64
bgd_control_lag (BgdControl *ctl)
{
  int64_t low = -1, high = -1;
  rd_kafka_topic_partition_list_t *parts;
  gint64 position;

  if (rd_kafka_get_watermark_offsets (ctl->consumer, ctl->topic, 0, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR
      || high < 0)
    return -1;
  parts = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (parts, ctl->topic, 0);
  position = rd_kafka_position (ctl->consumer, parts) == RD_KAFKA_RESP_ERR_NO_ERROR ? parts->elems[0].offset : -1;
  rd_kafka_topic_partition_list_destroy (parts);
  if (position < 0)
    return -1;
  return MAX (high - position, 0);
}

gboolean
bgd_control_brokers_up (BgdControl *ctl)
{
  return !ctl->brokers_down;
}
