/* loadgen.c — bluegreen-loadgen: deterministic keyed input for the example
 * job, the demo and the tests.
 *
 * Produces records (key "key-%05u", ASCII integer value 1..1000; see
 * loadgen-sequence.h) to one topic, at a given rate or as fast as possible,
 * for a count, a duration, or until SIGTERM. Keys are partitioned by
 * librdkafka's default partitioner, so a key always lands on the same
 * partition; or, with --partitions=LIST, key index k goes to the k mod n-th
 * listed partition, so a test can drive some partitions alone (a quiet
 * one, a sparse one). --key-prefix replaces "key-", so generators that run
 * side by side never share a key (a key on two partitions has no single
 * order, and the verifier cannot check its state). On exit it flushes
 * (bounded), prints
 * "produced N records (delivered N, failed N)" and fails if a delivery did.
 *
 * Pacing is a token bucket on the monotonic clock, refilled by a 10 ms
 * timer that produces a batch per tick: no per-record sleeps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib-unix.h>
#include <glib.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "rig/loadgen-sequence.h"

#define EXIT_USAGE 2
#define TICK_MS 10
#define FLUSH_TIMEOUT_MS 10000
/* Unpaced runs produce this many records per main-loop iteration, so
 * signals and timers are still served between batches. */
#define UNPACED_BATCH 10000

typedef struct {
  GMainLoop *loop;
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  BgLoadgenSequence seq;
  const char *key_prefix;
  GArray *partitions; /* gint32; NULL: librdkafka's partitioner */
  gboolean has_pending; /* drawn but not yet accepted by librdkafka */
  guint32 pending_key;
  guint32 pending_value;
  guint64 count; /* 0: unbounded */
  double rate;   /* records per second; 0: unpaced */
  gboolean quiet;

  guint64 produced;
  guint64 delivered;
  guint64 failed;
  gboolean fatal;

  double tokens;
  double burst; /* bucket size: at most this many records per tick */
  gint64 last_refill_us;
  gint64 last_progress_us;
  guint work_id;
} Loadgen;

static void
dr_msg_cb (rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
  Loadgen *lg = opaque;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      lg->delivered++;
      return;
    }
  /* Only the first few: a broker outage fails thousands at once. */
  if (lg->failed < 5)
    g_printerr ("loadgen: delivery failed: %s\n", rd_kafka_err2str (msg->err));
  lg->failed++;
}

static void
error_cb (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  Loadgen *lg = opaque;
  char fatal_reason[512];

  if (err == RD_KAFKA_RESP_ERR__FATAL)
    {
      rd_kafka_fatal_error (rk, fatal_reason, sizeof fatal_reason);
      g_printerr ("error: fatal Kafka error: %s\n", fatal_reason);
      lg->fatal = TRUE;
      g_main_loop_quit (lg->loop);
      return;
    }
  /* Transient (brokers down, ...): librdkafka retries by itself. */
  if (!lg->quiet)
    g_printerr ("loadgen: %s: %s\n", rd_kafka_err2name (err), reason);
}

static void
log_cb (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  g_debug ("rdkafka %d %s: %s", level, fac, buf);
}

static gboolean
done_producing (Loadgen *lg)
{
  return lg->count != 0 && lg->produced >= lg->count;
}

/* Produces up to @n records; returns how many went into the queue (fewer
 * if the local queue is full: that record stays pending for the next try,
 * so the sequence never skips one). */
static guint64
produce_batch (Loadgen *lg, guint64 n)
{
  guint64 i;
  for (i = 0; i < n && !done_producing (lg); i++)
    {
      if (!lg->has_pending)
        {
          bg_loadgen_sequence_next (&lg->seq, &lg->pending_key, &lg->pending_value);
          lg->has_pending = TRUE;
        }
      char key[BG_LOADGEN_KEY_BUF];
      char value[16];
      int key_len = bg_loadgen_format_key_prefixed (lg->key_prefix, lg->pending_key, key);
      int value_len = snprintf (value, sizeof value, "%u", lg->pending_value);
      gint32 partition = RD_KAFKA_PARTITION_UA;
      if (lg->partitions != NULL)
        partition = g_array_index (lg->partitions, gint32, lg->pending_key % lg->partitions->len);
      if (rd_kafka_produce (lg->rkt, partition, RD_KAFKA_MSG_F_COPY, value, (size_t) value_len, key,
                            (size_t) key_len, NULL)
          != 0)
        {
          rd_kafka_resp_err_t err = rd_kafka_last_error ();
          if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            {
              g_printerr ("error: produce: %s\n", rd_kafka_err2str (err));
              lg->fatal = TRUE;
              g_main_loop_quit (lg->loop);
            }
          break;
        }
      lg->has_pending = FALSE;
      lg->produced++;
    }
  return i;
}

static void
maybe_report_progress (Loadgen *lg, gint64 now)
{
  if (lg->quiet || now - lg->last_progress_us < 5 * G_USEC_PER_SEC)
    return;
  lg->last_progress_us = now;
  g_printerr ("loadgen: produced %" G_GUINT64_FORMAT ", delivered %" G_GUINT64_FORMAT "\n", lg->produced,
              lg->delivered);
}

static gboolean
on_tick (gpointer user_data)
{
  Loadgen *lg = user_data;
  gint64 now = g_get_monotonic_time ();

  rd_kafka_poll (lg->rk, 0);
  if (lg->rate > 0)
    {
      lg->tokens += lg->rate * (double) (now - lg->last_refill_us) / G_USEC_PER_SEC;
      lg->last_refill_us = now;
      /* The cap keeps a stalled loop (or full queue) from bursting later. */
      if (lg->tokens > lg->burst)
        lg->tokens = lg->burst;
      guint64 n = (guint64) lg->tokens;
      lg->tokens -= (double) produce_batch (lg, n);
    }
  else if (produce_batch (lg, UNPACED_BATCH) < UNPACED_BATCH && !done_producing (lg))
    rd_kafka_poll (lg->rk, 5); /* queue full: wait for deliveries, not spin */

  maybe_report_progress (lg, now);
  if (done_producing (lg))
    {
      lg->work_id = 0;
      g_main_loop_quit (lg->loop);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_stop (gpointer user_data)
{
  Loadgen *lg = user_data;
  g_main_loop_quit (lg->loop);
  return G_SOURCE_CONTINUE;
}

static int
usage_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static int
usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_printerr ("error: %s\n", msg);
  return EXIT_USAGE;
}

/* "0,1,2" or "0-2,5": the partitions, each once. */
static GArray *
parse_partitions (const char *spec, GError **error)
{
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_auto (GStrv) items = g_strsplit (spec, ",", -1);

  for (char **it = items; *it != NULL; it++)
    {
      g_auto (GStrv) range = g_strsplit (*it, "-", 2);
      guint64 first = 0, last = 0;

      if (range[0] == NULL
          || !g_ascii_string_to_unsigned (range[0], 10, 0, G_MAXINT32, &first, NULL)
          || !g_ascii_string_to_unsigned (range[1] != NULL ? range[1] : range[0], 10, first, G_MAXINT32,
                                          &last, NULL))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--partitions: '%s' is not a partition N or a range N-M with N <= M", *it);
          return NULL;
        }
      for (guint64 p = first; p <= last; p++)
        {
          gint32 v = (gint32) p;
          for (guint i = 0; i < out->len; i++)
            if (g_array_index (out, gint32, i) == v)
              {
                g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                             "--partitions: partition %d is listed twice", v);
                return NULL;
              }
          if (out->len >= 65536)
            {
              g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--partitions: more than 65536 partitions");
              return NULL;
            }
          g_array_append_val (out, v);
        }
    }
  if (out->len == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--partitions: the list is empty");
      return NULL;
    }
  return g_steal_pointer (&out);
}

/* Every listed partition exists in the topic: a record for a missing one
 * would fail only at delivery, after the run started. */
static gboolean
check_partitions (rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic, GArray *partitions)
{
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata (rk, 0, rkt, &md, FLUSH_TIMEOUT_MS);
  int n = -1;

  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
      else
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
      rd_kafka_metadata_destroy (md);
    }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_printerr ("error: --partitions: metadata of topic %s: %s\n", topic, rd_kafka_err2str (err));
      return FALSE;
    }
  for (guint i = 0; i < partitions->len; i++)
    if (g_array_index (partitions, gint32, i) >= n)
      {
        g_printerr ("error: --partitions: topic %s has no partition %d (it has %d)\n", topic,
                    g_array_index (partitions, gint32, i), n);
        return FALSE;
      }
  return TRUE;
}

static gboolean
set_conf (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];
  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s", errstr);
      return FALSE;
    }
  return TRUE;
}

static rd_kafka_conf_t *
make_conf (Loadgen *lg, const char *bootstrap, char **properties, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  /* linger.ms=5 batches well against the mock; the short reconnect
   * backoffs recover in seconds after a broker comes back (docs/testing.md). */
  if (!set_conf (conf, "bootstrap.servers", bootstrap, error) || !set_conf (conf, "linger.ms", "5", error)
      || !set_conf (conf, "reconnect.backoff.ms", "50", error)
      || !set_conf (conf, "reconnect.backoff.max.ms", "500", error)
      || !set_conf (conf, "client.id", "bluegreen-loadgen", error))
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  for (char **p = properties; p != NULL && *p != NULL; p++)
    {
      g_auto (GStrv) kv = g_strsplit (*p, "=", 2);
      if (kv[0] == NULL || kv[1] == NULL || !set_conf (conf, kv[0], kv[1], error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "'%s': expected KEY=VALUE", *p);
          g_prefix_error (error, "-X: ");
          rd_kafka_conf_destroy (conf);
          return NULL;
        }
    }
  rd_kafka_conf_set_opaque (conf, lg);
  rd_kafka_conf_set_dr_msg_cb (conf, dr_msg_cb);
  rd_kafka_conf_set_error_cb (conf, error_cb);
  rd_kafka_conf_set_log_cb (conf, log_cb);
  return conf;
}

int
main (int argc, char **argv)
{
  g_autofree char *bootstrap = NULL;
  g_autofree char *topic = NULL;
  gint64 count = 0;
  int keys = 100;
  double rate = 0;
  gint64 seed = 1;
  double duration = 0;
  gint64 start_index = 0;
  gboolean quiet = FALSE;
  gboolean verbose = FALSE;
  g_auto (GStrv) properties = NULL;
  g_autofree char *partitions_spec = NULL;
  g_autofree char *key_prefix = NULL;
  g_autoptr (GArray) partitions = NULL;
  GOptionEntry entries[] = {
    { "bootstrap", 'b', 0, G_OPTION_ARG_STRING, &bootstrap, "Kafka bootstrap servers (required)", "HOST:PORT,..." },
    { "topic", 't', 0, G_OPTION_ARG_STRING, &topic, "Topic to produce to (required)", "NAME" },
    { "count", 'n', 0, G_OPTION_ARG_INT64, &count, "Records to produce; 0 = until --duration or SIGTERM (default 0)",
      "N" },
    { "keys", 'k', 0, G_OPTION_ARG_INT, &keys, "Number of distinct keys, key-00000 .. (default 100)", "K" },
    { "key-prefix", 0, 0, G_OPTION_ARG_STRING, &key_prefix, "Keys are PREFIX%05u (default \"key-\")", "PREFIX" },
    { "partitions", 'p', 0, G_OPTION_ARG_STRING, &partitions_spec,
      "Produce only to these partitions: key index k to the (k mod n)-th listed", "N,N-M,..." },
    { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &rate, "Records per second; 0 = as fast as possible (default 0)", "R" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Seed of the key/value sequence, 0..4294967295 (default 1)", "S" },
    { "duration", 'd', 0, G_OPTION_ARG_DOUBLE, &duration, "Stop after SECONDS (default: no limit)", "SECONDS" },
    { "start-index", 'i', 0, G_OPTION_ARG_INT64, &start_index,
      "Start at record I of the sequence (continue an earlier run)", "I" },
    { "property", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &properties, "Extra librdkafka producer setting (repeatable)",
      "KEY=VALUE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress or transient-error messages", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log librdkafka events to stderr", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- produce deterministic keyed records");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (
    context,
    "Record i has key \"key-%05u\" and an ASCII integer value 1..1000, both drawn\n"
    "from a GRand seeded with --seed: the same seed and --keys give the same\n"
    "sequence. Keys are partitioned by librdkafka's default partitioner, or\n"
    "with --partitions=LIST key index k goes to the (k mod n)-th listed one;\n"
    "either way a key always lands on the same partition. Generators that\n"
    "run side by side should use different --key-prefix values.\n"
    "On exit (count reached, --duration, SIGTERM or SIGINT) it flushes for up to\n"
    "10 s and prints \"produced N records (delivered N, failed N)\" on stdout.\n"
    "Exit status: 0 all delivered, 1 a delivery failed, 2 bad arguments (a\n"
    "--partitions entry the topic does not have included).");

  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error ("%s", error->message);
  if (argc > 1)
    return usage_error ("unexpected argument '%s'", argv[1]);
  if (bootstrap == NULL || bootstrap[0] == '\0')
    return usage_error ("--bootstrap is required");
  if (topic == NULL || topic[0] == '\0')
    return usage_error ("--topic is required");
  if (count < 0)
    return usage_error ("--count: %" G_GINT64_FORMAT " is negative", count);
  if (keys < 1 || keys > 100000)
    return usage_error ("--keys: %d is not in 1..100000", keys);
  if (!(rate >= 0 && rate <= 1e9))
    return usage_error ("--rate: %g is not in 0..1e9", rate);
  if (seed < 0 || seed > G_MAXUINT32)
    return usage_error ("--seed: %" G_GINT64_FORMAT " is not in 0..4294967295", seed);
  if (!(duration >= 0 && duration <= 1e7))
    return usage_error ("--duration: %g is not a number of seconds >= 0", duration);
  if (start_index < 0)
    return usage_error ("--start-index: %" G_GINT64_FORMAT " is negative", start_index);
  if (key_prefix != NULL && strlen (key_prefix) > BG_LOADGEN_KEY_PREFIX_MAX)
    return usage_error ("--key-prefix: '%s' is longer than %d bytes", key_prefix, BG_LOADGEN_KEY_PREFIX_MAX);
  if (partitions_spec != NULL && (partitions = parse_partitions (partitions_spec, &error)) == NULL)
    return usage_error ("%s", error->message);

  /* stdout carries the program's output (bootstrap line and replies, or
   * the summary); GLib would log info and debug there too. */
  g_log_writer_default_set_use_stderr (TRUE);
  if (verbose)
    g_log_set_debug_enabled (TRUE);

  Loadgen lg = {
    .count = (guint64) count,
    .rate = rate,
    .quiet = quiet,
    .key_prefix = key_prefix != NULL ? key_prefix : "key-",
    .partitions = partitions,
    /* Two ticks' worth, at least one record, so rates under 100/s work. */
    .burst = MAX (1.0, rate * 2 * TICK_MS / 1000.0),
  };
  rd_kafka_conf_t *conf = make_conf (&lg, bootstrap, properties, &error);
  if (conf == NULL)
    return usage_error ("%s", error->message);
  char errstr[512];
  lg.rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (lg.rk == NULL)
    {
      g_printerr ("error: cannot create a producer: %s\n", errstr);
      return EXIT_FAILURE;
    }
  lg.rkt = rd_kafka_topic_new (lg.rk, topic, NULL);
  if (lg.rkt == NULL)
    {
      g_printerr ("error: topic %s: %s\n", topic, rd_kafka_err2str (rd_kafka_last_error ()));
      rd_kafka_destroy (lg.rk);
      return EXIT_FAILURE;
    }
  if (partitions != NULL && !check_partitions (lg.rk, lg.rkt, topic, partitions))
    {
      rd_kafka_topic_destroy (lg.rkt);
      rd_kafka_destroy (lg.rk);
      return EXIT_USAGE;
    }
  bg_loadgen_sequence_init (&lg.seq, (guint32) seed, (guint32) keys, (guint64) start_index);

  lg.loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, on_stop, &lg);
  g_unix_signal_add (SIGINT, on_stop, &lg);
  if (duration > 0)
    g_timeout_add ((guint) (duration * 1000), on_stop, &lg);
  lg.last_refill_us = lg.last_progress_us = g_get_monotonic_time ();
  if (rate > 0)
    lg.work_id = g_timeout_add (TICK_MS, on_tick, &lg);
  else
    lg.work_id = g_idle_add (on_tick, &lg);

  g_main_loop_run (lg.loop);

  g_clear_handle_id (&lg.work_id, g_source_remove);
  rd_kafka_resp_err_t flush_err = rd_kafka_flush (lg.rk, FLUSH_TIMEOUT_MS);
  int undelivered = rd_kafka_outq_len (lg.rk);
  if (flush_err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_printerr ("error: flush: %s, %d records not delivered\n", rd_kafka_err2str (flush_err), undelivered);
  printf ("produced %" G_GUINT64_FORMAT " records (delivered %" G_GUINT64_FORMAT ", failed %" G_GUINT64_FORMAT ")\n",
          lg.produced, lg.delivered, lg.failed + (guint64) MAX (undelivered, 0));
  fflush (stdout);

  gboolean ok = lg.failed == 0 && undelivered == 0 && !lg.fatal;
  /* What the flush did not deliver is counted as failed above: drop it,
   * so that rd_kafka_destroy() does not wait on requests to a broker that
   * is gone. */
  if (undelivered > 0)
    rd_kafka_purge (lg.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
  rd_kafka_topic_destroy (lg.rkt);
  rd_kafka_destroy (lg.rk);
  bg_loadgen_sequence_clear (&lg.seq);
  g_main_loop_unref (lg.loop);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
