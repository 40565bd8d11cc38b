/* reader.c — see reader.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "verify/reader.h"

#include "common/watermarks.h"
#include "example/state.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

G_DEFINE_QUARK (bg-verify-error-quark, bg_verify_error)

typedef struct {
  int32_t n;
  int64_t *low, *high;
} Marks;

static void
marks_clear (Marks *m)
{
  g_clear_pointer (&m->low, g_free);
  g_clear_pointer (&m->high, g_free);
}

static rd_kafka_t *
make_consumer (const BgVerifyReadOptions *opts, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  char errstr[512];
  const char *base[] = {
    "bootstrap.servers", opts->bootstrap,
    "client.id", "bluegreen-verify",
    /* assign() needs a group.id; nothing is ever committed to it. */
    "group.id", "bluegreen-verify",
    "enable.auto.commit", "false",
    "enable.partition.eof", "false",
    "fetch.wait.max.ms", "10",
    /* Results of a transactional job count only once committed; aborted
     * ones (a dead instance's open transaction) are never seen. The high
     * watermarks queried are then the last stable offsets. */
    "isolation.level", "read_committed",
    NULL,
  };
  for (int i = 0; base[i] != NULL; i += 2)
    if (rd_kafka_conf_set (conf, base[i], base[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      goto bad;
  for (int i = 0; opts->kafka_props != NULL && opts->kafka_props[i] != NULL; i++)
    {
      const char *kv = opts->kafka_props[i];
      const char *eq = strchr (kv, '=');
      if (eq == NULL)
        {
          g_snprintf (errstr, sizeof errstr, "-X %s: want key=value", kv);
          goto bad;
        }
      g_autofree char *k = g_strndup (kv, eq - kv);
      if (rd_kafka_conf_set (conf, k, eq + 1, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        goto bad;
    }
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_KAFKA, "consumer: %s", errstr);
      return NULL;
    }
  return rk;
bad:
  rd_kafka_conf_destroy (conf);
  g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_USAGE, "%s", errstr);
  return NULL;
}

static gboolean
query_marks (rd_kafka_t *rk, const char *topic, Marks *m, GError **error)
{
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, topic, NULL);
  rd_kafka_resp_err_t err = rd_kafka_metadata (rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy (rkt);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err != 0))
    err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      if (md != NULL)
        rd_kafka_metadata_destroy (md);
      g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_KAFKA, "metadata for %s: %s", topic,
                   rd_kafka_err2str (err));
      return FALSE;
    }
  m->n = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy (md);
  m->low = g_new0 (int64_t, m->n);
  m->high = g_new0 (int64_t, m->n);
  {
    g_autofree gint32 *ids = g_new (gint32, MAX (m->n, 1));
    g_autoptr(GError) local_error = NULL;

    for (int32_t p = 0; p < m->n; p++)
      ids[p] = p;
    /* Bounded even with a partition's leader gone (common/watermarks.h). */
    if (!bg_watermarks_query (rk, topic, ids, (guint) m->n, m->low, m->high, 10000, &local_error))
      {
        g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_KAFKA, "%s", local_error->message);
        return FALSE;
      }
  }
  return TRUE;
}

static int64_t
marks_total (const Marks *m)
{
  int64_t t = 0;
  for (int32_t p = 0; p < m->n; p++)
    t += m->high[p];
  return t;
}

typedef void (*RecordFunc) (const rd_kafka_message_t *msg, gpointer user_data);

/* Marks the partitions whose consumer position reached their end as done.
 * A transactional output ends with a commit marker (and may hold aborted
 * records), which read_committed never returns as a message: the last
 * message's offset is then below high - 1, and only the position tells. */
static int
mark_done_by_position (rd_kafka_t *rk, const char *topic, const Marks *m, gboolean *done)
{
  int finished = 0;
  rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new (m->n);
  for (int32_t p = 0; p < m->n; p++)
    if (!done[p])
      rd_kafka_topic_partition_list_add (pos, topic, p);
  if (pos->cnt > 0 && rd_kafka_position (rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR)
    for (int i = 0; i < pos->cnt; i++)
      {
        int32_t p = pos->elems[i].partition;
        if (pos->elems[i].offset >= 0 && pos->elems[i].offset >= m->high[p] && !done[p])
          {
            done[p] = TRUE;
            finished++;
          }
      }
  rd_kafka_topic_partition_list_destroy (pos);
  return finished;
}

/* Reads [low, high) of every partition of @topic, calling @func per record
 * in per-partition order. */
static gboolean
read_range (rd_kafka_t *rk, const char *topic, const Marks *m, int64_t deadline, RecordFunc func,
            gpointer user_data, GError **error)
{
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new (m->n);
  int remaining = 0;
  g_autofree gboolean *done = g_new0 (gboolean, m->n);
  for (int32_t p = 0; p < m->n; p++)
    {
      if (m->high[p] <= m->low[p])
        {
          done[p] = TRUE;
          continue;
        }
      rd_kafka_topic_partition_list_add (parts, topic, p)->offset = m->low[p];
      remaining++;
    }
  rd_kafka_resp_err_t err = rd_kafka_assign (rk, parts);
  rd_kafka_topic_partition_list_destroy (parts);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_KAFKA, "assign %s: %s", topic,
                   rd_kafka_err2str (err));
      return FALSE;
    }
  while (remaining > 0)
    {
      if (g_get_monotonic_time () > deadline)
        {
          rd_kafka_assign (rk, NULL);
          g_set_error (error, BG_VERIFY_ERROR, BG_VERIFY_ERROR_TIMEOUT,
                       "timed out reading %s (%d partitions short of their high watermark)",
                       topic, remaining);
          return FALSE;
        }
      rd_kafka_message_t *msg = rd_kafka_consumer_poll (rk, 100);
      if (msg == NULL)
        {
          remaining -= mark_done_by_position (rk, topic, m, done);
          continue;
        }
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_message ("consume %s: %s", topic, rd_kafka_message_errstr (msg));
          rd_kafka_message_destroy (msg);
          continue;
        }
      int32_t p = msg->partition;
      if (p >= 0 && p < m->n && !done[p] && msg->offset < m->high[p])
        func (msg, user_data);
      if (p >= 0 && p < m->n && !done[p] && msg->offset + 1 >= m->high[p])
        {
          done[p] = TRUE;
          remaining--;
        }
      rd_kafka_message_destroy (msg);
    }
  rd_kafka_assign (rk, NULL);
  return TRUE;
}

static void
on_input (const rd_kafka_message_t *msg, gpointer user_data)
{
  bg_verifier_add_input (user_data, msg->partition, msg->offset, msg->key, msg->key_len,
                         bg_parse_value (msg->payload, msg->len));
}

static void
on_output (const rd_kafka_message_t *msg, gpointer user_data)
{
  bg_verifier_add_output (user_data, msg->payload, msg->len);
}

BgVerifier *
bg_verify_read (const BgVerifyReadOptions *opts, BgVerifySetupFunc setup, gpointer user_data,
                GError **error)
{
  int64_t deadline = g_get_monotonic_time () + (int64_t) (opts->timeout * G_USEC_PER_SEC);
  rd_kafka_t *rk = make_consumer (opts, error);
  if (rk == NULL)
    return NULL;
  Marks in = { 0 }, out = { 0 };
  BgVerifier *v = NULL;
  /* Inputs first: every result we then read refers to an input captured
   * (or is counted as "beyond"). */
  if (!query_marks (rk, opts->input, &in, error))
    goto out;
  if (!query_marks (rk, opts->output, &out, error))
    goto out;
  if (opts->settle > 0)
    {
      /* Wait until the output stops growing, so results still in flight are
       * not reported as gaps. */
      int64_t stable_since = g_get_monotonic_time ();
      int64_t total = marks_total (&out);
      while (g_get_monotonic_time () - stable_since < (int64_t) (opts->settle * G_USEC_PER_SEC))
        {
          if (g_get_monotonic_time () > deadline)
            break;
          g_usleep (50 * 1000); /* polling interval, not a synchronisation */
          marks_clear (&out);
          if (!query_marks (rk, opts->output, &out, error))
            goto out;
          if (marks_total (&out) != total)
            {
              total = marks_total (&out);
              stable_since = g_get_monotonic_time ();
            }
        }
    }
  v = bg_verifier_new (opts->input, in.n);
  for (int32_t p = 0; p < in.n; p++)
    bg_verifier_set_input_range (v, p, in.low[p], in.high[p]);
  if (!read_range (rk, opts->input, &in, deadline, on_input, v, error))
    goto fail;
  bg_verifier_inputs_done (v);
  if (setup != NULL)
    setup (v, user_data);
  if (!read_range (rk, opts->output, &out, deadline, on_output, v, error))
    goto fail;
  goto out;
fail:
  g_clear_pointer (&v, bg_verifier_free);
out:
  marks_clear (&in);
  marks_clear (&out);
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  return v;
}
