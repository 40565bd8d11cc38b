/* job.c — see job.h.
 *
 * One thread consumes and produces (librdkafka's consumer_poll loop); a
 * second one, only with --control, reads the control FIFO and steers the
 * gate. Signals only set flags that the poll loop reads at least every
 * 100 ms, so stopping, savepoints and watchdog pings need no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "example/job.h"

#include "common/names.h"
#include "example/control.h"
#include "example/schema.h"
#include "example/state.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

G_DEFINE_QUARK (bg-job-error-quark, bg_job_error)

#define FLUSH_TIMEOUT_MS 10000
#define RESULT_BUF 512
#define EPOCHS 64             /* delivery epochs in flight at most (see Epoch) */
#define DELIVERY_CHECK_EVERY 16 /* records between two looks at the clock */
#define DELIVERY_CHECK_USEC 2000 /* at most this long between two delivery checks */
#define POLL_TIMEOUT_MS 10    /* idle consumer poll: bounds how late a delivery is reported */
#define COMMITTED_TIMEOUT_MS 10000
#define TXN_CALL_TIMEOUT_MS 10000 /* one transactional API call */
#define TXN_RETRY_USEC (60 * G_USEC_PER_SEC) /* retriable errors: give up after this long */
#define TXN_TIMEOUT_MS "10000" /* transaction.timeout.ms: a dead instance's transaction is aborted this soon */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t savepoint_signal;

/* Delivery epochs: how the job knows which input offsets' results are all
 * delivered. Every result produced carries the number of the epoch it was
 * produced in; each delivery report decrements its epoch's count. An epoch
 * is closed (between two records) with the input positions reached so far:
 * once it and every earlier epoch have nothing in flight, every result
 * caused by input offsets below those positions has been acknowledged by
 * the broker, which is what bg_gate_report_delivered() tells the agent
 * (the ordered handoff of a cutover waits for it). A ring of EPOCHS; when it
 * is full the current epoch simply stays open longer. */
typedef struct {
  uint64_t in_flight;
  int64_t *positions; /* next input offset per partition at closing, -1 none */
} Epoch;

typedef struct {
  const BgJobConfig *cfg;
  rd_kafka_t *consumer;
  rd_kafka_t *producer;
  rd_kafka_topic_t *out_rkt;
  BgGate *gate;
  BgTopic *gate_topic;
  BgJobState *state;
  int32_t n_partitions;
  gboolean with_mean;
  gboolean group_mode;

  uint64_t consumed;            /* poll thread only */
  atomic_uint_fast64_t emitted;
  atomic_uint_fast64_t dropped;
  atomic_uint_fast64_t delivered;
  atomic_uint_fast64_t failed;
  atomic_bool fatal;
  atomic_bool flush_requested;
  atomic_bool savepoint_requested;
  _Atomic (char *) agent_savepoint_dir; /* the agent asked for a savepoint here */

  GThread *control_thread;
  atomic_bool control_stop;
  FILE *control_ack;

  uint64_t watchdog_usec;
  int64_t last_watchdog;
  int64_t last_status;

  /* Delivery epochs (poll thread only; delivery reports run there too). */
  Epoch epochs[EPOCHS];
  uint64_t epoch_oldest;  /* oldest epoch not known delivered */
  uint64_t epoch_current; /* the open epoch new results join */
  gboolean delivery_broken; /* a result failed: never claim delivery again */

  /* Rebuilding a taken-over partition's state (group mode): records below
   * restore_until[p] only update the state (see rebalance_cb). -1: none. */
  int64_t *restore_until;
  uint64_t restored;

  /* Transactions (--transactional; poll thread only, see "transactions"
   * below). */
  gboolean txn_open;      /* begun, neither committed nor aborted yet */
  gboolean txn_pending;   /* records processed since the last commit */
  int64_t txn_since;      /* monotonic µs of the first of them */
  atomic_bool txn_failed; /* a transaction was aborted: the state is ahead of the commits */
  atomic_uint_fast64_t commits;
  char *txn_id;
} Job;

void
bg_job_config_clear (BgJobConfig *cfg)
{
  g_clear_pointer (&cfg->bootstrap, g_free);
  g_clear_pointer (&cfg->input, g_free);
  g_clear_pointer (&cfg->output, g_free);
  g_clear_pointer (&cfg->version, g_free);
  g_clear_pointer (&cfg->color, g_free);
  g_clear_pointer (&cfg->group, g_free);
  g_clear_pointer (&cfg->assign, g_free);
  g_clear_pointer (&cfg->savepoint_dir, g_free);
  g_clear_pointer (&cfg->restore_dir, g_free);
  g_clear_pointer (&cfg->control_path, g_free);
  g_clear_pointer (&cfg->control_ack_path, g_free);
  g_clear_pointer (&cfg->status_file, g_free);
  g_clear_pointer (&cfg->transactional_id, g_free);
  g_clear_pointer (&cfg->kafka_props, g_ptr_array_unref);
}

gboolean
bg_job_version_emits_mean (const char *version)
{
  if (version == NULL)
    return FALSE;
  if (*version == 'v' || *version == 'V')
    version++;
  if (!g_ascii_isdigit (*version))
    return FALSE;
  return g_ascii_strtoull (version, NULL, 10) >= 2;
}

/* ---- result formatting -------------------------------------------------- */

static gboolean
is_plain (const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    {
      unsigned char c = (unsigned char) s[i];
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
        return FALSE;
    }
  return TRUE;
}

/* The hot path formats with snprintf rather than json-glib (5-10x cheaper
 * per record). That is only safe because every string placed in the JSON is
 * checked to need no escaping: topic, color and version are validated at
 * start-up, the key per record by is_plain(); anything else goes through
 * bg_job_format_result_json(). */
int
bg_job_format_result (char *buf, size_t size, const char *topic, int32_t partition,
                      int64_t offset, const char *key, size_t key_len, gboolean null_key,
                      uint64_t count, int64_t sum, const char *color, const char *version,
                      gboolean with_mean)
{
  if (!null_key && (key_len > 256 || !is_plain (key, key_len)))
    return -1;
  char mean[64] = "";
  if (with_mean)
    g_snprintf (mean, sizeof mean, ",\"mean\":%.3f", count ? (double) sum / (double) count : 0.0);
  int n;
  if (null_key)
    n = g_snprintf (buf, size,
                    "{\"topic\":\"%s\",\"partition\":%" G_GINT32_FORMAT ",\"offset\":%" G_GINT64_FORMAT
                    ",\"key\":null,\"count\":%" G_GUINT64_FORMAT ",\"sum\":%" G_GINT64_FORMAT
                    "%s,\"color\":\"%s\",\"version\":\"%s\"}",
                    topic, partition, offset, (guint64) count, sum, mean, color, version);
  else
    n = g_snprintf (buf, size,
                    "{\"topic\":\"%s\",\"partition\":%" G_GINT32_FORMAT ",\"offset\":%" G_GINT64_FORMAT
                    ",\"key\":\"%.*s\",\"count\":%" G_GUINT64_FORMAT ",\"sum\":%" G_GINT64_FORMAT
                    "%s,\"color\":\"%s\",\"version\":\"%s\"}",
                    topic, partition, offset, (int) key_len, key, (guint64) count, sum, mean,
                    color, version);
  if (n < 0 || (size_t) n >= size)
    return -1;
  return n;
}

char *
bg_job_format_result_json (const char *topic, int32_t partition, int64_t offset, const char *key,
                           size_t key_len, gboolean null_key, uint64_t count, int64_t sum,
                           const char *color, const char *version, gboolean with_mean)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "topic");
  json_builder_add_string_value (b, topic);
  json_builder_set_member_name (b, "partition");
  json_builder_add_int_value (b, partition);
  json_builder_set_member_name (b, "offset");
  json_builder_add_int_value (b, offset);
  json_builder_set_member_name (b, "key");
  if (null_key)
    json_builder_add_null_value (b);
  else
    {
      /* Invalid UTF-8 in a key cannot be represented; it is replaced. */
      g_autofree char *k = g_utf8_make_valid (key, (gssize) key_len);
      json_builder_add_string_value (b, k);
    }
  json_builder_set_member_name (b, "count");
  json_builder_add_int_value (b, (gint64) count);
  json_builder_set_member_name (b, "sum");
  json_builder_add_int_value (b, sum);
  if (with_mean)
    {
      json_builder_set_member_name (b, "mean");
      json_builder_add_double_value (b, count ? (double) sum / (double) count : 0.0);
    }
  json_builder_set_member_name (b, "color");
  json_builder_add_string_value (b, color);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, version);
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

/* ---- librdkafka callbacks ---------------------------------------------- */

static void
error_cb (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  Job *job = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL)
    {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error (rk, buf, sizeof buf);
      g_printerr ("error: fatal Kafka error in %s: %s: %s\n", rd_kafka_name (rk),
                  rd_kafka_err2name (orig), buf);
      atomic_store (&job->fatal, TRUE);
      return;
    }
  /* Transient (broker down, ...): librdkafka retries on its own. */
  g_message ("kafka: %s: %s", rd_kafka_err2name (err), reason);
}

static void
dr_msg_cb (rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
  Job *job = opaque;
  uint64_t epoch = (uint64_t) (uintptr_t) m->_private;
  job->epochs[epoch % EPOCHS].in_flight--;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    atomic_fetch_add (&job->delivered, 1);
  else
    {
      job->delivery_broken = TRUE;
      /* Report the first few failures; the count goes to STATUS and the
       * exit status. */
      if (atomic_fetch_add (&job->failed, 1) < 5)
        g_message ("delivery failed: %s", rd_kafka_err2str (m->err));
    }
}

/* ---- transactions (--transactional) ------------------------------------- */

/* Exactly-once within a version (docs/protocol.md, "Transactional jobs"):
 * the results produced since the last commit and the input positions that
 * caused them are committed to Kafka in one transaction, the positions
 * through send_offsets_to_transaction() with the consumer group's metadata
 * (so a zombie of an older group generation is fenced). Readers of the
 * output use isolation.level=read_committed and see a result only once its
 * transaction committed, so for the ordered handoff of a cutover a result
 * counts as delivered only then: bg_gate_report_delivered() is called
 * after commit_transaction() returned, never after a mere broker ack.
 *
 * A transaction is committed every --commit-interval, when the agent's
 * decision asks for a flush, before a savepoint, while a record waits at a
 * barrier (the outgoing side's results below it must become visible for
 * the handoff to end; and no transaction stays open across a wait that may
 * outlast transaction.timeout.ms), before partitions are revoked, and at a
 * clean stop.
 *
 * When a transaction has to be aborted, the job's in-memory state is ahead
 * of what was committed; rather than roll it back, the instance stops with
 * status 1. Its restart (Restart=on-failure) is the same path as a crash:
 * the new producer with the same transactional.id fences what the old one
 * left open, and every partition is rebuilt from the input up to the
 * offsets committed with the last transaction (restore_plan), then emitted
 * from there: nothing twice, nothing lost. */

typedef enum {
  TXN_OK,
  TXN_RETRY,   /* retriable: call again */
  TXN_ABORT,   /* the transaction must be aborted */
  TXN_FATAL,   /* the producer is unusable (fenced, ...) */
} TxnStep;

static TxnStep
txn_step (Job *job, rd_kafka_error_t *e, const char *what)
{
  if (e == NULL)
    return TXN_OK;
  TxnStep step;
  if (rd_kafka_error_is_fatal (e))
    step = TXN_FATAL;
  else if (rd_kafka_error_txn_requires_abort (e))
    step = TXN_ABORT;
  else if (rd_kafka_error_is_retriable (e))
    step = TXN_RETRY;
  else
    step = TXN_FATAL; /* neither retriable nor abortable: librdkafka says treat as fatal */
  if (step == TXN_FATAL)
    {
      g_printerr ("error: %s: %s\n", what, rd_kafka_error_string (e));
      atomic_store (&job->fatal, TRUE);
    }
  else
    g_message ("%s: %s%s", what, rd_kafka_error_string (e),
               step == TXN_RETRY ? " (retrying)" : " (aborting the transaction)");
  rd_kafka_error_destroy (e);
  return step;
}

/* Aborts the open transaction and marks the instance failed (see above). */
static void
txn_abort (Job *job, const char *why)
{
  if (job->txn_open && !atomic_load (&job->fatal))
    {
      int64_t deadline = g_get_monotonic_time () + TXN_RETRY_USEC;
      TxnStep step;
      do
        step = txn_step (job, rd_kafka_abort_transaction (job->producer, TXN_CALL_TIMEOUT_MS),
                         "abort_transaction");
      while (step == TXN_RETRY && !stop_requested && g_get_monotonic_time () < deadline);
    }
  job->txn_open = FALSE;
  if (!atomic_exchange (&job->txn_failed, TRUE))
    g_printerr ("error: transaction aborted (%s): stopping; the restart resumes from the offsets "
                "committed with the last transaction\n", why);
}

static gboolean
txn_begin (Job *job)
{
  if (job->txn_open)
    return TRUE;
  if (atomic_load (&job->fatal) || atomic_load (&job->txn_failed))
    return FALSE;
  if (txn_step (job, rd_kafka_begin_transaction (job->producer), "begin_transaction") != TXN_OK)
    {
      atomic_store (&job->fatal, TRUE);
      return FALSE;
    }
  job->txn_open = TRUE;
  return TRUE;
}

/* The positions to commit: the next input offset of every partition
 * assigned to this instance now that has processed records, except those
 * still being rebuilt (their committed offset is already ahead). */
static rd_kafka_topic_partition_list_t *
txn_offsets (Job *job)
{
  rd_kafka_topic_partition_list_t *assigned = NULL;
  rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new (job->n_partitions);
  if (rd_kafka_assignment (job->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return offsets;
  for (int i = 0; i < assigned->cnt; i++)
    {
      int32_t p = assigned->elems[i].partition;
      int64_t next = bg_job_state_get_next_offset (job->state, p);
      if (next < 0 || (p < job->n_partitions && job->restore_until[p] >= 0))
        continue;
      rd_kafka_topic_partition_list_add (offsets, job->cfg->input, p)->offset = next;
    }
  rd_kafka_topic_partition_list_destroy (assigned);
  return offsets;
}

/* Commits what was processed since the last commit: the open transaction's
 * results and the positions reached. Then, and only then, reports those
 * positions delivered. FALSE if the instance failed (it stops). */
static gboolean
txn_commit (Job *job)
{
  if (!job->cfg->transactional || (!job->txn_pending && !job->txn_open))
    return TRUE;
  if (atomic_load (&job->fatal) || atomic_load (&job->txn_failed) || !txn_begin (job))
    return FALSE;
  rd_kafka_topic_partition_list_t *offsets = txn_offsets (job);
  int64_t deadline = g_get_monotonic_time () + TXN_RETRY_USEC;
  TxnStep step = TXN_OK;
  if (offsets->cnt > 0)
    do
      {
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata (job->consumer);
        step = txn_step (job,
                         rd_kafka_send_offsets_to_transaction (job->producer, offsets, cgmd,
                                                               TXN_CALL_TIMEOUT_MS),
                         "send_offsets_to_transaction");
        rd_kafka_consumer_group_metadata_destroy (cgmd);
      }
    while (step == TXN_RETRY && !stop_requested && g_get_monotonic_time () < deadline);
  while (step == TXN_OK)
    {
      step = txn_step (job, rd_kafka_commit_transaction (job->producer, TXN_CALL_TIMEOUT_MS),
                       "commit_transaction");
      if (step != TXN_RETRY || stop_requested || g_get_monotonic_time () >= deadline)
        break;
    }
  if (step != TXN_OK)
    {
      rd_kafka_topic_partition_list_destroy (offsets);
      if (step == TXN_FATAL)
        {
          job->txn_open = FALSE;
          atomic_store (&job->txn_failed, TRUE);
        }
      else
        txn_abort (job, "the commit failed");
      return FALSE;
    }
  job->txn_open = FALSE;
  job->txn_pending = FALSE;
  atomic_fetch_add (&job->commits, 1);
  /* Committed: visible to read_committed readers, so delivered. */
  for (int i = 0; i < offsets->cnt && job->gate_topic != NULL && !job->cfg->no_gate; i++)
    bg_gate_report_delivered (job->gate, job->gate_topic, offsets->elems[i].partition,
                              offsets->elems[i].offset);
  rd_kafka_topic_partition_list_destroy (offsets);
  return TRUE;
}

/* The periodic commit, between two records. */
static void
txn_maybe_commit (Job *job, int64_t now)
{
  if (job->txn_pending
      && now - job->txn_since >= (int64_t) (job->cfg->commit_interval * G_USEC_PER_SEC))
    txn_commit (job);
}

/* Where the group's last transaction left @parts (offsets set in place;
 * RD_KAFKA_OFFSET_INVALID where nothing was committed). While a dead
 * instance's transaction is still open the broker answers "unstable
 * offset" and librdkafka asks again; the wait ends when the transaction
 * is fenced by that instance's restart or aborted by the coordinator
 * (transaction.timeout.ms). Guessing instead would emit twice. */
static gboolean
txn_committed (Job *job, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
  int64_t deadline = g_get_monotonic_time () + TXN_RETRY_USEC;
  for (;;)
    {
      rd_kafka_resp_err_t err = rd_kafka_committed (rk, parts, COMMITTED_TIMEOUT_MS);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return TRUE;
      if (stop_requested || g_get_monotonic_time () >= deadline)
        {
          g_printerr ("error: the group's committed offsets are unknown: %s\n", rd_kafka_err2name (err));
          return FALSE;
        }
      g_message ("committed offsets: %s; asking again", rd_kafka_err2name (err));
    }
}

/* An assignment in transactional mode: every partition resumes exactly at
 * the offset committed with the group's last transaction. One whose state
 * this instance never had is rebuilt from the start (restore_plan); one it
 * had, but that another instance moved on meanwhile, catches its state up
 * from where this instance left it to the committed offset, emitting
 * nothing. */
static void
txn_assign (Job *job, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
  rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy (parts);
  if (!txn_committed (job, rk, committed))
    {
      atomic_store (&job->txn_failed, TRUE);
      rd_kafka_topic_partition_list_destroy (committed);
      return;
    }
  for (int i = 0; i < parts->cnt; i++)
    {
      int32_t p = parts->elems[i].partition;
      int64_t c = committed->elems[i].offset;
      int64_t next = bg_job_state_get_next_offset (job->state, p);
      int64_t resume = next;
      if (next < 0)
        {
          resume = c > 0 ? c : 0;
          parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        }
      else
        {
          if (c > next)
            resume = c;
          parts->elems[i].offset = next;
        }
      if (resume > 0 && resume > (next < 0 ? 0 : next) && p < job->n_partitions)
        {
          job->restore_until[p] = resume;
          g_message ("partition %d: rebuilding its state from the input up to offset %" G_GINT64_FORMAT
                     " (committed)", p, resume);
        }
      if (job->gate_topic != NULL && resume >= 0 && (next >= 0 || c > 0))
        bg_gate_partition_resumed (job->gate, job->gate_topic, p, resume);
    }
  rd_kafka_topic_partition_list_destroy (committed);
}

/* Taking over a partition whose keys this instance has no state for (the
 * group moved it here after another instance processed part of it): the
 * results from the group's committed offset on need the state of every
 * record before it. The example job rebuilds it from the input itself: it
 * reads the partition from the beginning (the low watermark) and, below the
 * committed offset, only updates its state — no gate, no result — then
 * continues normally. Input keys map to one partition each, so this is that
 * partition's whole state. (Real jobs restore from a changelog topic or a
 * savepoint instead; this works only while the input's retention still
 * holds the partition from its start, as in the tests.) */
static void
restore_plan (Job *job, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *assigned,
              rd_kafka_topic_partition_list_t *fresh)
{
  if (fresh->cnt == 0)
    return;
  rd_kafka_resp_err_t err = rd_kafka_committed (rk, fresh, COMMITTED_TIMEOUT_MS);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      /* Without the committed offsets the partitions start from the start
       * (auto.offset.reset=earliest): right state, more duplicates. */
      g_message ("committed offsets unknown (%s): new partitions start from the beginning",
                 rd_kafka_err2name (err));
      return;
    }
  for (int i = 0; i < fresh->cnt; i++)
    {
      int32_t p = fresh->elems[i].partition;
      int64_t committed = fresh->elems[i].offset;
      if (committed <= 0 || p < 0 || p >= job->n_partitions)
        continue;
      job->restore_until[p] = committed;
      /* What another instance of this version did below the committed
       * offset counts as admitted here: a cutover barrier below it is
       * passed, and the agent must hear of it (docs/protocol.md). */
      if (job->gate_topic != NULL)
        bg_gate_partition_resumed (job->gate, job->gate_topic, p, committed);
      for (int j = 0; j < assigned->cnt; j++)
        if (assigned->elems[j].partition == p)
          assigned->elems[j].offset = RD_KAFKA_OFFSET_BEGINNING;
      g_message ("partition %d: rebuilding its state from the input up to offset %" G_GINT64_FORMAT,
                 p, committed);
    }
}

/* A partition added to the input topic after this instance started (the
 * consumer group assigns it on its next metadata refresh): the
 * per-partition bookkeeping grows to it, so its delivered positions are
 * reported and committed like any other's. The gate keeps it untracked
 * (slow path) but reports it. Poll thread only, as everything it grows. */
static void
grow_partitions (Job *job, int32_t n)
{
  if (n <= job->n_partitions)
    return;
  g_message ("input %s: partition(s) %d..%d added since the start", job->cfg->input, job->n_partitions, n - 1);
  job->restore_until = g_renew (int64_t, job->restore_until, n);
  for (int e = 0; e < EPOCHS; e++)
    job->epochs[e].positions = g_renew (int64_t, job->epochs[e].positions, n);
  for (int32_t p = job->n_partitions; p < n; p++)
    {
      job->restore_until[p] = -1;
      /* Epochs closed before it existed claim nothing there. */
      for (int e = 0; e < EPOCHS; e++)
        job->epochs[e].positions[p] = -1;
    }
  job->n_partitions = n;
}

static void
rebalance_cb (rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
              void *opaque)
{
  Job *job = opaque;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
    for (int i = 0; i < parts->cnt; i++)
      if (strcmp (parts->elems[i].topic, job->cfg->input) == 0)
        grow_partitions (job, parts->elems[i].partition + 1);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && job->cfg->transactional)
    {
      txn_assign (job, rk, parts);
      g_message ("assigned %d partition(s)", parts->cnt);
      rd_kafka_assign (rk, parts);
    }
  else if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
    {
      /* Resume where our state is: it reflects exactly the records processed
       * so far (restored or not). Partitions our state never saw start from
       * the group's committed offset, or the earliest one. */
      rd_kafka_topic_partition_list_t *fresh = rd_kafka_topic_partition_list_new (parts->cnt);
      for (int i = 0; i < parts->cnt; i++)
        {
          int64_t next = bg_job_state_get_next_offset (job->state, parts->elems[i].partition);
          if (next >= 0)
            {
              parts->elems[i].offset = next;
              /* Its position again (revoke cleared it), also while idle. */
              if (job->gate_topic != NULL)
                bg_gate_partition_resumed (job->gate, job->gate_topic, parts->elems[i].partition, next);
            }
          else
            rd_kafka_topic_partition_list_add (fresh, parts->elems[i].topic,
                                               parts->elems[i].partition);
        }
      restore_plan (job, rk, parts, fresh);
      rd_kafka_topic_partition_list_destroy (fresh);
      g_message ("assigned %d partition(s)", parts->cnt);
      rd_kafka_assign (rk, parts);
    }
  else
    {
      g_message ("partitions revoked (%s)", rd_kafka_err2name (err));
      /* What was processed on them is committed before another instance
       * can take them over at the committed offsets. If the commit fails
       * (the assignment was lost: an older generation is fenced), the
       * transaction is aborted and this instance stops. */
      txn_commit (job);
      /* Another instance may get them: their positions here would only
       * grow this instance's lag from now on. */
      for (int i = 0; i < parts->cnt; i++)
        if (job->gate_topic != NULL && strcmp (parts->elems[i].topic, job->cfg->input) == 0)
          bg_gate_partition_revoked (job->gate, job->gate_topic, parts->elems[i].partition);
      rd_kafka_assign (rk, NULL);
    }
}

/* ---- set-up ------------------------------------------------------------- */

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];
  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      /* A secret's value stays out of the message (and so out of logs). */
      gboolean secret = strstr (key, "password") != NULL || strstr (key, "secret") != NULL
                        || g_str_has_suffix (key, ".pem");
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "%s=%s: %s", key,
                   secret ? "(hidden)" : value, errstr);
      return FALSE;
    }
  return TRUE;
}

static gboolean
conf_apply_props (rd_kafka_conf_t *conf, const BgJobConfig *cfg, GError **error)
{
  for (guint i = 0; cfg->kafka_props != NULL && i < cfg->kafka_props->len; i++)
    {
      const char *kv = cfg->kafka_props->pdata[i];
      const char *eq = strchr (kv, '=');
      if (eq == NULL || eq == kv)
        {
          g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "-X %s: want key=value", kv);
          return FALSE;
        }
      g_autofree char *key = g_strndup (kv, eq - kv);
      if (!conf_set (conf, key, eq + 1, error))
        return FALSE;
    }
  return TRUE;
}

static rd_kafka_t *
make_consumer (Job *job, GError **error)
{
  const BgJobConfig *cfg = job->cfg;
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  g_autofree char *client_id = g_strdup_printf ("bluegreen-example-%s", cfg->color);
  /* Session/heartbeat/eager assignor: see docs on the mock's rebalance
   * timing (docs/testing.md); fetch.wait.max.ms keeps an idle fetch from
   * delaying new records by 500 ms. */
  if (!conf_set (conf, "bootstrap.servers", cfg->bootstrap, error)
      || !conf_set (conf, "client.id", client_id, error)
      || !conf_set (conf, "session.timeout.ms", "3000", error)
      || !conf_set (conf, "heartbeat.interval.ms", "500", error)
      || !conf_set (conf, "fetch.wait.max.ms", "10", error)
      || !conf_set (conf, "partition.assignment.strategy", "range,roundrobin", error)
      || !conf_set (conf, "auto.offset.reset", "earliest", error)
      || !conf_set (conf, "enable.partition.eof", "false", error)
      || (job->group_mode && !conf_set (conf, "group.id", cfg->group, error))
      /* The group's committed offsets are where another instance taking a
       * partition over rebuilds its state up to, emitting nothing: commit
       * only offsets whose results are delivered (check_delivered), never
       * what poll() merely returned — a record waiting at a barrier, or a
       * result still in the producer's queue, would be lost. */
      || (job->group_mode && !conf_set (conf, "enable.auto.offset.store", "false", error))
      /* librdkafka's assign() needs a group.id even without joining; a
       * statically assigned job never commits to it. */
      || (!job->group_mode && !conf_set (conf, "group.id", client_id, error))
      || (!job->group_mode && !conf_set (conf, "enable.auto.commit", "false", error))
      /* Transactional: offsets go to the group only inside transactions,
       * and the input is read as committed (a transactional producer
       * upstream is this job's own kind). */
      || (cfg->transactional && !conf_set (conf, "enable.auto.commit", "false", error))
      || (cfg->transactional && !conf_set (conf, "isolation.level", "read_committed", error))
      || !conf_apply_props (conf, cfg, error))
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  rd_kafka_conf_set_opaque (conf, job);
  rd_kafka_conf_set_error_cb (conf, error_cb);
  if (job->group_mode)
    rd_kafka_conf_set_rebalance_cb (conf, rebalance_cb);
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_KAFKA, "consumer: %s", errstr);
      return NULL;
    }
  rd_kafka_poll_set_consumer (rk);
  return rk;
}

static rd_kafka_t *
make_producer (Job *job, GError **error)
{
  const BgJobConfig *cfg = job->cfg;
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  g_autofree char *client_id = g_strdup_printf ("bluegreen-example-%s-out", cfg->color);
  /* Idempotence keeps results in order per partition across retries, which
   * the per-key order check of the verifier relies on. */
  if (!conf_set (conf, "bootstrap.servers", cfg->bootstrap, error)
      || !conf_set (conf, "client.id", client_id, error)
      || !conf_set (conf, "linger.ms", "5", error)
      || !conf_set (conf, "enable.idempotence", "true", error)
      /* A dead instance's open transaction blocks the output's readers
       * (and the group's committed offsets) until it is fenced by the
       * instance's restart or aborted by the coordinator after this. */
      || (cfg->transactional && !conf_set (conf, "transactional.id", job->txn_id, error))
      || (cfg->transactional && !conf_set (conf, "transaction.timeout.ms", TXN_TIMEOUT_MS, error))
      || !conf_apply_props (conf, cfg, error))
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  rd_kafka_conf_set_opaque (conf, job);
  rd_kafka_conf_set_error_cb (conf, error_cb);
  rd_kafka_conf_set_dr_msg_cb (conf, dr_msg_cb);
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_KAFKA, "producer: %s", errstr);
      return NULL;
    }
  if (cfg->transactional)
    {
      /* Fences an older producer with the same transactional.id (this
       * instance before a crash) and aborts what it left open. */
      int64_t deadline = g_get_monotonic_time () + TXN_RETRY_USEC;
      TxnStep step;
      do
        step = txn_step (job, rd_kafka_init_transactions (rk, TXN_CALL_TIMEOUT_MS), "init_transactions");
      while (step == TXN_RETRY && !stop_requested && g_get_monotonic_time () < deadline);
      if (step != TXN_OK)
        {
          g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_TXN,
                       "init_transactions (transactional.id %s) failed", job->txn_id);
          rd_kafka_destroy (rk);
          return NULL;
        }
      g_message ("transactional producer %s ready", job->txn_id);
    }
  return rk;
}

static int32_t
input_partition_count (Job *job, GError **error)
{
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (job->consumer, job->cfg->input, NULL);
  int64_t deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  int32_t n = -1;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  while (n < 0 && !stop_requested && g_get_monotonic_time () < deadline)
    {
      const struct rd_kafka_metadata *md = NULL;
      err = rd_kafka_metadata (job->consumer, 0, rkt, &md, 5000);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0
          && md->topics[0].partition_cnt > 0)
        n = md->topics[0].partition_cnt;
      else if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1)
        err = md->topics[0].err;
      if (md != NULL)
        rd_kafka_metadata_destroy (md);
      if (n < 0)
        g_usleep (200 * 1000); /* retry back-off while the topic appears */
    }
  rd_kafka_topic_destroy (rkt);
  if (n < 0)
    g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_KAFKA, "no metadata for input topic %s: %s",
                 job->cfg->input, rd_kafka_err2str (err));
  return n;
}

static rd_kafka_topic_partition_list_t *
static_assignment (Job *job, GError **error)
{
  const char *spec = job->cfg->assign;
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new (job->n_partitions);
  if (g_str_equal (spec, "all"))
    for (int32_t p = 0; p < job->n_partitions; p++)
      rd_kafka_topic_partition_list_add (parts, job->cfg->input, p);
  else
    {
      g_auto (GStrv) items = g_strsplit (spec, ",", -1);
      for (char **it = items; *it != NULL; it++)
        {
          guint64 p;
          if (!g_ascii_string_to_unsigned (g_strstrip (*it), 10, 0, job->n_partitions - 1, &p, NULL))
            {
              g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG,
                           "--assign: '%s' is not a partition of %s (0..%d)", *it,
                           job->cfg->input, job->n_partitions - 1);
              rd_kafka_topic_partition_list_destroy (parts);
              return NULL;
            }
          rd_kafka_topic_partition_list_add (parts, job->cfg->input, (int32_t) p);
        }
    }
  for (int i = 0; i < parts->cnt; i++)
    {
      int64_t next = bg_job_state_get_next_offset (job->state, parts->elems[i].partition);
      parts->elems[i].offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
    }
  return parts;
}

/* The one place that decides how the gate is driven. A job started in a
 * slot (BLUEGREEN_SLOT set) gets a gate steered by the agent over D-Bus; it
 * emits nothing until the agent says so. Stand-alone: the mode from --mode
 * (or BLUEGREEN_SINK_MODE, resolved by main). */
static BgGate *
create_gate (const BgJobConfig *cfg, GError **error)
{
  const char *slot = g_getenv ("BLUEGREEN_SLOT");
  if (slot != NULL && *slot != '\0')
    {
      char *message = NULL;
      BgGate *gate = bg_gate_new_from_env (&message);
      if (gate == NULL)
        g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "%s", message);
      free (message);
      return gate;
    }
  BgGate *gate = bg_gate_new (cfg->mode);
  if (gate == NULL)
    g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "cannot create the gate");
  return gate;
}

/* Gets every result produced so far out: delivered, or with
 * --transactional committed (which delivers them first). */
static void
flush_results (Job *job)
{
  if (job->cfg->transactional)
    txn_commit (job);
  else
    rd_kafka_flush (job->producer, FLUSH_TIMEOUT_MS);
}

/* ---- status, savepoints ------------------------------------------------- */

static char *
positions_string (Job *job)
{
  GString *s = g_string_new (NULL);
  for (int32_t p = 0; p < bg_job_state_n_partitions (job->state); p++)
    {
      int64_t next = bg_job_state_get_next_offset (job->state, p);
      if (next >= 0)
        g_string_append_printf (s, "%s%d:%" G_GINT64_FORMAT, s->len ? " " : "", p, next);
    }
  return g_string_free (s, FALSE);
}

static void
write_status_file (Job *job)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "color");
  json_builder_add_string_value (b, job->cfg->color);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, job->cfg->version);
  json_builder_set_member_name (b, "consumed");
  json_builder_add_int_value (b, (gint64) job->consumed);
  json_builder_set_member_name (b, "emitted");
  json_builder_add_int_value (b, (gint64) atomic_load (&job->emitted));
  json_builder_set_member_name (b, "dropped");
  json_builder_add_int_value (b, (gint64) atomic_load (&job->dropped));
  json_builder_set_member_name (b, "delivered");
  json_builder_add_int_value (b, (gint64) atomic_load (&job->delivered));
  json_builder_set_member_name (b, "failed");
  json_builder_add_int_value (b, (gint64) atomic_load (&job->failed));
  json_builder_set_member_name (b, "commits");
  json_builder_add_int_value (b, (gint64) atomic_load (&job->commits));
  json_builder_set_member_name (b, "restored");
  json_builder_add_int_value (b, (gint64) job->restored);
  json_builder_set_member_name (b, "keys");
  json_builder_add_int_value (b, bg_job_state_n_keys (job->state));
  json_builder_set_member_name (b, "positions");
  json_builder_begin_object (b);
  for (int32_t p = 0; p < bg_job_state_n_partitions (job->state); p++)
    {
      int64_t next = bg_job_state_get_next_offset (job->state, p);
      if (next < 0)
        continue;
      char name[16];
      g_snprintf (name, sizeof name, "%d", p);
      json_builder_set_member_name (b, name);
      json_builder_add_int_value (b, next);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *data = json_generator_to_data (gen, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_file_set_contents_full (job->cfg->status_file, data, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                 0644, &error))
    g_message ("cannot write status file: %s", error->message);
}

static void
report_status (Job *job)
{
  g_autofree char *pos = positions_string (job);
  sd_notifyf (0,
              "STATUS=consumed %" G_GUINT64_FORMAT ", emitted %" G_GUINT64_FORMAT
              ", dropped %" G_GUINT64_FORMAT ", delivery failures %" G_GUINT64_FORMAT
              "; next offsets %s",
              (guint64) job->consumed, (guint64) atomic_load (&job->emitted),
              (guint64) atomic_load (&job->dropped), (guint64) atomic_load (&job->failed), pos);
  if (job->cfg->status_file != NULL)
    write_status_file (job);
}

static gboolean
write_savepoint (Job *job)
{
  if (job->cfg->savepoint_dir == NULL)
    {
      g_message ("savepoint requested but no --savepoint-dir given");
      return TRUE;
    }
  g_autoptr (GError) error = NULL;
  if (!bg_job_state_save (job->state, job->cfg->savepoint_dir, job->cfg->input, &error))
    {
      g_printerr ("error: savepoint: %s\n", error->message);
      return FALSE;
    }
  g_autofree char *pos = positions_string (job);
  g_message ("savepoint written to %s (next offsets %s)", job->cfg->savepoint_dir, pos);
  return TRUE;
}

/* The agent's savepoint request arrives in the library's thread: hand it to
 * the poll loop, which writes it between two records (housekeeping). */
static void
on_agent_savepoint (BgGate *gate, const char *directory, void *user_data)
{
  Job *job = user_data;
  /* A newer request supersedes one not yet served (the agent waits for the
   * newest only). */
  g_free (atomic_exchange (&job->agent_savepoint_dir, g_strdup (directory)));
}

static void
write_agent_savepoint (Job *job, const char *directory)
{
  g_autoptr (GError) error = NULL;
  /* Results already produced must not be lost if the new slot starts from it. */
  flush_results (job);
  gboolean ok = bg_job_state_save (job->state, directory, job->cfg->input, &error);
  if (ok)
    {
      g_autofree char *pos = positions_string (job);
      g_message ("savepoint for the agent written to %s (next offsets %s)", directory, pos);
    }
  else
    g_message ("savepoint for the agent into %s failed: %s", directory, error->message);
  bg_gate_savepoint_done (job->gate, directory, ok, ok ? "written" : error->message);
}

/* ---- control channel (test/debug interface, see control.h) --------------- */

static void control_ack (Job *job, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
control_ack (Job *job, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *line = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_message ("control: %s", line);
  if (job->control_ack != NULL)
    {
      fprintf (job->control_ack, "%s\n", line);
      fflush (job->control_ack);
    }
}

static void
control_prepare (Job *job, const BgControlCommand *cmd)
{
  BgPlan *plan = bg_control_command_to_plan (cmd);
  char *reason = NULL;
  BgPrepareResult result = bg_gate_prepare_checked (job->gate, plan, &reason);
  bg_plan_free (plan);
  /* Past a barrier the plan stays armed: only abort may end it. */
  if (result == BG_PREPARE_REFUSED)
    control_ack (job, "error prepare %s another-plan-prepared", cmd->id);
  else if (result == BG_PREPARE_PAST_BARRIER)
    control_ack (job, "error prepare %s past-barrier (%s)", cmd->id, reason);
  else
    control_ack (job, "ok prepare %s", cmd->id);
  free (reason);
}

static void
control_apply (Job *job, const char *line)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlCommand) cmd = bg_control_parse_line (line, &error);
  if (cmd == NULL)
    {
      control_ack (job, "error syntax %s", error->message);
      return;
    }
  switch (cmd->verb)
    {
    case BG_CONTROL_PREPARE:
      control_prepare (job, cmd);
      break;
    case BG_CONTROL_COMMIT:
      if (bg_gate_commit (job->gate, cmd->id))
        {
          /* The outgoing side hands over: get its last results below the
           * barrier out now rather than after linger/batching. */
          atomic_store (&job->flush_requested, TRUE);
          control_ack (job, "ok commit %s", cmd->id);
        }
      else
        control_ack (job, "error commit %s not-prepared", cmd->id);
      break;
    case BG_CONTROL_ABORT:
      if (bg_gate_abort (job->gate, cmd->id))
        control_ack (job, "ok abort %s", cmd->id);
      else
        control_ack (job, "error abort %s not-prepared", cmd->id);
      break;
    case BG_CONTROL_MODE:
      if (bg_gate_set_mode (job->gate, cmd->mode))
        control_ack (job, "ok mode");
      else
        control_ack (job, "error mode plan-prepared");
      break;
    case BG_CONTROL_SAVEPOINT:
      atomic_store (&job->savepoint_requested, TRUE);
      control_ack (job, "ok savepoint");
      break;
    case BG_CONTROL_FLUSH:
      atomic_store (&job->flush_requested, TRUE);
      control_ack (job, "ok flush");
      break;
    }
}

static gpointer
control_thread (gpointer data)
{
  Job *job = data;
  /* O_RDWR: we count as a writer ourselves, so the FIFO never reports EOF
   * when a test's writer closes it, and opening never blocks. */
  int fd = open (job->cfg->control_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      int e = errno;
      g_printerr ("error: control FIFO %s: %s\n", job->cfg->control_path, g_strerror (e));
      atomic_store (&job->fatal, TRUE);
      return NULL;
    }
  GString *buf = g_string_new (NULL);
  while (!atomic_load (&job->control_stop))
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      int r = poll (&pfd, 1, 100);
      if (r <= 0)
        continue;
      char chunk[4096];
      ssize_t n = read (fd, chunk, sizeof chunk);
      if (n <= 0)
        continue;
      g_string_append_len (buf, chunk, n);
      char *nl;
      while ((nl = memchr (buf->str, '\n', buf->len)) != NULL)
        {
          *nl = '\0';
          if (buf->str[0] != '\0')
            control_apply (job, buf->str);
          g_string_erase (buf, 0, nl - buf->str + 1);
        }
    }
  g_string_free (buf, TRUE);
  close (fd);
  return NULL;
}

static gboolean
start_control (Job *job, GError **error)
{
  const BgJobConfig *cfg = job->cfg;
  if (cfg->control_path == NULL)
    return TRUE;
  if (mkfifo (cfg->control_path, 0600) < 0 && errno != EEXIST)
    {
      int e = errno;
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "mkfifo %s: %s", cfg->control_path,
                   g_strerror (e));
      return FALSE;
    }
  if (cfg->control_ack_path != NULL)
    {
      job->control_ack = fopen (cfg->control_ack_path, "ae");
      if (job->control_ack == NULL)
        {
          int e = errno;
          g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "%s: %s", cfg->control_ack_path,
                       g_strerror (e));
          return FALSE;
        }
    }
  job->control_thread = g_thread_new ("control", control_thread, job);
  return TRUE;
}

static void check_delivered (Job *job);

/* While a record waits at a barrier the poll loop is blocked inside
 * bg_gate_admit(); keep the watchdog fed from here meanwhile. A job held
 * at its barrier is healthy: it waits for a decision on purpose. */
static void
gate_wait_cb (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset, int64_t waited_us,
              void *user_data)
{
  Job *job = user_data;
  if (job->watchdog_usec > 0)
    sd_notify (0, "WATCHDOG=1");
  /* What was produced before this record keeps getting delivered and
   * reported: the positions exclude the waiting record (it is recorded in
   * the state only once its result is produced). */
  check_delivered (job);
  /* Transactional: what was processed before this record is committed
   * now, so that the outgoing side's results below a barrier become
   * visible (delivered) while the incoming side waits for them, and no
   * transaction stays open across a wait that may outlast
   * transaction.timeout.ms. */
  if (job->cfg->transactional && !txn_commit (job))
    {
      /* Aborted while held inside bg_gate_admit(), which may not return
       * before the decision: nothing here needs a clean stop (what was
       * aborted is redone by the restart), so leave now. */
      g_printerr ("error: transaction aborted while waiting at a barrier\n");
      _exit (1);
    }
  if (waited_us > 0 && waited_us % (5 * G_USEC_PER_SEC) < 100000)
    g_message ("waiting at %s[%d]@%" G_GINT64_FORMAT " for the cutover decision (%" G_GINT64_FORMAT " s)",
               bg_topic_name (topic), partition, offset, waited_us / G_USEC_PER_SEC);
}

/* ---- the poll loop ------------------------------------------------------ */

static void
produce_result (Job *job, const rd_kafka_message_t *m, const BgKeyState *ks)
{
  const BgJobConfig *cfg = job->cfg;
  char buf[RESULT_BUF];
  gboolean null_key = m->key == NULL;
  g_autofree char *slow = NULL;
  const char *value = buf;
  int len = bg_job_format_result (buf, sizeof buf, cfg->input, m->partition, m->offset, m->key,
                                  m->key_len, null_key, ks->count, ks->sum, cfg->color,
                                  cfg->version, job->with_mean);
  if (len < 0)
    {
      slow = bg_job_format_result_json (cfg->input, m->partition, m->offset, m->key, m->key_len,
                                        null_key, ks->count, ks->sum, cfg->color, cfg->version,
                                        job->with_mean);
      value = slow;
      len = (int) strlen (slow);
    }
  if (job->cfg->transactional && !txn_begin (job))
    return;
  for (;;)
    {
      if (rd_kafka_produce (job->out_rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                            (void *) value, (size_t) len, m->key, m->key_len,
                            (void *) (uintptr_t) job->epoch_current) == 0)
        {
          job->epochs[job->epoch_current % EPOCHS].in_flight++;
          break;
        }
      rd_kafka_resp_err_t err = rd_kafka_last_error ();
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        {
          atomic_fetch_add (&job->failed, 1);
          g_message ("produce failed: %s", rd_kafka_err2str (err));
          if (job->cfg->transactional)
            txn_abort (job, "a result could not be produced");
          return;
        }
      /* Back-pressure: serve delivery reports until there is room. */
      rd_kafka_poll (job->producer, 10);
      if (atomic_load (&job->fatal))
        return;
    }
  atomic_fetch_add (&job->emitted, 1);
}

static void
process (Job *job, const rd_kafka_message_t *m)
{
  int64_t value = bg_parse_value (m->payload, m->len);
  const BgKeyState *ks = bg_job_state_update (job->state, m->key, m->key ? m->key_len : 0, value);
  job->consumed++;

  int32_t p = m->partition;
  if (G_UNLIKELY (p >= 0 && p < job->n_partitions && job->restore_until[p] >= 0))
    {
      /* Rebuilding a taken-over partition's state: no gate, no result. */
      job->restored++;
      bg_job_state_set_next_offset (job->state, p, m->offset + 1);
      if (m->offset + 1 >= job->restore_until[p])
        {
          g_message ("partition %d: state rebuilt up to offset %" G_GINT64_FORMAT, p, m->offset + 1);
          job->restore_until[p] = -1;
        }
      return;
    }

  /* Blackhole means: compute everything (above), emit nothing. */
  BgVerdict v = job->cfg->no_gate ? BG_VERDICT_EMIT
                                  : bg_gate_admit (job->gate, job->gate_topic, p, m->offset);
  if (v == BG_VERDICT_EMIT)
    produce_result (job, m, ks);
  else
    atomic_fetch_add (&job->dropped, 1);
  /* Only now: the delivery epochs read positions as "results produced". */
  bg_job_state_set_next_offset (job->state, p, m->offset + 1);
  /* The next commit carries this position (not before: a record waiting
   * at a barrier is not processed yet). */
  if (job->cfg->transactional && !job->txn_pending)
    {
      job->txn_pending = TRUE;
      job->txn_since = g_get_monotonic_time ();
    }
}

/* Serves delivery reports, closes the open epoch with the positions reached,
 * and reports every position whose results are all delivered. Between two
 * records only (or while one waits at a barrier, which is not yet in the
 * positions). */
static void
check_delivered (Job *job)
{
  if (job->cfg->no_gate || job->gate == NULL || job->cfg->transactional)
    return;
  rd_kafka_poll (job->producer, 0);

  /* Close the open epoch unless the ring is full. */
  if (job->epoch_current - job->epoch_oldest < EPOCHS - 1)
    {
      Epoch *e = &job->epochs[job->epoch_current % EPOCHS];
      for (int32_t p = 0; p < job->n_partitions; p++)
        e->positions[p] = bg_job_state_get_next_offset (job->state, p);
      job->epoch_current++;
      Epoch *next = &job->epochs[job->epoch_current % EPOCHS];
      next->in_flight = 0;
    }

  const int64_t *delivered = NULL;
  while (job->epoch_oldest < job->epoch_current
         && job->epochs[job->epoch_oldest % EPOCHS].in_flight == 0)
    delivered = job->epochs[job->epoch_oldest++ % EPOCHS].positions;
  if (delivered == NULL || job->delivery_broken)
    return;
  rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new (job->n_partitions);
  for (int32_t p = 0; p < job->n_partitions; p++)
    if (delivered[p] >= 0 && (job->restore_until[p] < 0 || delivered[p] >= job->restore_until[p]))
      {
        bg_gate_report_delivered (job->gate, job->gate_topic, p, delivered[p]);
        rd_kafka_topic_partition_list_add (store, job->cfg->input, p)->offset = delivered[p];
      }
  /* For the group's next commit; partitions no longer assigned are
   * refused, which is fine: their new owner commits them. */
  if (job->group_mode && store->cnt > 0)
    rd_kafka_offsets_store (job->consumer, store);
  rd_kafka_topic_partition_list_destroy (store);
}

static void
housekeeping (Job *job, int64_t now)
{
  if (job->watchdog_usec > 0 && now - job->last_watchdog >= (int64_t) job->watchdog_usec / 2)
    {
      sd_notify (0, "WATCHDOG=1");
      job->last_watchdog = now;
    }
  bg_example_schema_poll (job->gate, job->cfg->output, job->cfg->version, job->cfg->color);
  if (now - job->last_status >= (int64_t) (job->cfg->status_interval * G_USEC_PER_SEC))
    {
      report_status (job);
      job->last_status = now;
    }
  if (savepoint_signal || atomic_load (&job->savepoint_requested))
    {
      savepoint_signal = 0;
      atomic_store (&job->savepoint_requested, FALSE);
      /* Results already produced must not be lost if we restart from it. */
      flush_results (job);
      write_savepoint (job);
    }
  g_autofree char *agent_dir = atomic_exchange (&job->agent_savepoint_dir, NULL);
  if (agent_dir != NULL)
    write_agent_savepoint (job, agent_dir);
  if (atomic_exchange (&job->flush_requested, FALSE))
    flush_results (job);
}

static void
poll_loop (Job *job)
{
  int64_t now = g_get_monotonic_time ();
  job->last_watchdog = job->last_status = now;
  unsigned since_check = 0;
  int64_t last_delivery_check = now;
  while (!stop_requested && !atomic_load (&job->fatal) && !atomic_load (&job->txn_failed))
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (job->consumer, POLL_TIMEOUT_MS);
      if (m != NULL)
        {
          /* A failed assignment (rebalance_cb) stops before any record. */
          if (atomic_load (&job->txn_failed))
            ;
          else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            process (job, m);
          else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            g_message ("consume: %s", rd_kafka_message_errstr (m));
          rd_kafka_message_destroy (m);
        }
      /* Delivery reports every couple of milliseconds (the handoff of a
       * cutover waits for them; per record they would cost more than the
       * whole job), housekeeping every 256 records, or when idle. */
      if (m == NULL || ++since_check % DELIVERY_CHECK_EVERY == 0)
        {
          int64_t t = g_get_monotonic_time ();
          if (m == NULL || t - last_delivery_check >= DELIVERY_CHECK_USEC)
            {
              check_delivered (job);
              if (job->cfg->transactional)
                txn_maybe_commit (job, t);
              last_delivery_check = t;
            }
        }
      if (m == NULL || since_check >= 256)
        {
          since_check = 0;
          rd_kafka_poll (job->producer, 0);
          housekeeping (job, g_get_monotonic_time ());
        }
    }
}

static void
on_signal (int sig)
{
  if (sig == SIGUSR1)
    savepoint_signal = 1;
  else
    stop_requested = 1;
}

static void
install_signals (void)
{
  struct sigaction sa = { 0 };
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGUSR1, &sa, NULL);
}

static gboolean
validate (const BgJobConfig *cfg, GError **error)
{
  const char *missing = cfg->bootstrap == NULL ? "--bootstrap"
                        : cfg->input == NULL   ? "--input"
                        : cfg->output == NULL  ? "--output"
                                               : NULL;
  if (missing != NULL)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "%s is required", missing);
      return FALSE;
    }
  /* These strings go into results unescaped (bg_job_format_result), so
   * they are restricted to names that need no escaping. */
  BgColor color;
  if (!bg_color_from_string (cfg->color, &color))
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "color must be blue or green, not '%s'",
                   cfg->color);
      return FALSE;
    }
  if (!bg_version_is_valid (cfg->version))
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "invalid version '%s'", cfg->version);
      return FALSE;
    }
  if (!bg_id_is_valid (cfg->input) || !bg_id_is_valid (cfg->output))
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG,
                   "topic names must be [A-Za-z0-9._-], at most 64 characters");
      return FALSE;
    }
  if (cfg->group != NULL && cfg->assign != NULL)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "--group and --assign exclude each other");
      return FALSE;
    }
  if (cfg->transactional && cfg->group == NULL)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG,
                   "--transactional needs a consumer group (--group or BLUEGREEN_GROUP_ID): a "
                   "restarted instance resumes at the offsets committed with its transactions");
      return FALSE;
    }
  if (cfg->transactional && cfg->commit_interval <= 0)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "--commit-interval must be positive");
      return FALSE;
    }
  if (cfg->status_interval <= 0)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_CONFIG, "--status-interval must be positive");
      return FALSE;
    }
  return TRUE;
}

static gboolean
start (Job *job, GError **error)
{
  const BgJobConfig *cfg = job->cfg;
  if (cfg->restore_dir != NULL)
    {
      job->state = bg_job_state_load (cfg->restore_dir, cfg->input, error);
      if (job->state == NULL)
        return FALSE;
      g_autofree char *pos = positions_string (job);
      g_message ("restored %u keys from %s (next offsets %s)", bg_job_state_n_keys (job->state),
                 cfg->restore_dir, pos);
    }
  else
    job->state = bg_job_state_new ();

  if (cfg->transactional)
    {
      /* One id per instance that survives its restarts: the slot's group
       * names job and color, the host tells the instances of a color
       * apart (docs/protocol.md, "Transactional jobs"). */
      const char *host = g_getenv ("BLUEGREEN_HOST");
      job->txn_id = cfg->transactional_id != NULL
                        ? g_strdup (cfg->transactional_id)
                        : g_strdup_printf ("%s-%s", cfg->group,
                                           host != NULL && *host != '\0' ? host : g_get_host_name ());
    }
  job->consumer = make_consumer (job, error);
  if (job->consumer == NULL)
    return FALSE;
  job->producer = make_producer (job, error);
  if (job->producer == NULL)
    return FALSE;
  job->out_rkt = rd_kafka_topic_new (job->producer, cfg->output, NULL);

  job->n_partitions = input_partition_count (job, error);
  if (job->n_partitions < 0)
    return FALSE;
  job->restore_until = g_new (int64_t, job->n_partitions);
  for (int32_t p = 0; p < job->n_partitions; p++)
    job->restore_until[p] = -1;
  for (int e = 0; e < EPOCHS; e++)
    job->epochs[e].positions = g_new0 (int64_t, job->n_partitions);
  job->gate = create_gate (cfg, error);
  if (job->gate == NULL)
    return FALSE;
  job->gate_topic = bg_gate_topic (job->gate, cfg->input, job->n_partitions);
  bg_gate_set_wait_callback (job->gate, gate_wait_cb, job);
  bg_gate_set_savepoint_handler (job->gate, on_agent_savepoint, job);

  if (!start_control (job, error))
    return FALSE;

  rd_kafka_resp_err_t err;
  if (job->group_mode)
    {
      rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new (1);
      rd_kafka_topic_partition_list_add (topics, cfg->input, RD_KAFKA_PARTITION_UA);
      err = rd_kafka_subscribe (job->consumer, topics);
      rd_kafka_topic_partition_list_destroy (topics);
    }
  else
    {
      rd_kafka_topic_partition_list_t *parts = static_assignment (job, error);
      if (parts == NULL)
        return FALSE;
      err = rd_kafka_assign (job->consumer, parts);
      rd_kafka_topic_partition_list_destroy (parts);
    }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, BG_JOB_ERROR, BG_JOB_ERROR_KAFKA, "%s %s: %s",
                   job->group_mode ? "subscribe" : "assign", cfg->input, rd_kafka_err2str (err));
      return FALSE;
    }
  return TRUE;
}

static int
shut_down (Job *job, int status)
{
  if (job->control_thread != NULL)
    {
      atomic_store (&job->control_stop, TRUE);
      g_thread_join (job->control_thread);
    }
  if (job->control_ack != NULL)
    fclose (job->control_ack);
  if (job->consumer != NULL)
    {
      rd_kafka_consumer_close (job->consumer);
      rd_kafka_destroy (job->consumer);
    }
  if (job->producer != NULL)
    {
      if (job->out_rkt != NULL)
        rd_kafka_topic_destroy (job->out_rkt);
      rd_kafka_destroy (job->producer);
    }
  if (job->gate != NULL)
    bg_gate_free (job->gate); /* stops the agent link first */
  g_free (atomic_exchange (&job->agent_savepoint_dir, NULL));
  g_free (job->restore_until);
  g_free (job->txn_id);
  for (int e = 0; e < EPOCHS; e++)
    g_free (job->epochs[e].positions);
  bg_job_state_free (job->state);
  return status;
}

int
bg_job_run (const BgJobConfig *cfg)
{
  g_autoptr (GError) error = NULL;
  if (!validate (cfg, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return 2;
    }
  Job job_storage = { 0 };
  Job *job = &job_storage;
  job->cfg = cfg;
  job->group_mode = cfg->group != NULL;
  job->with_mean = bg_job_version_emits_mean (cfg->version);
  if (sd_watchdog_enabled (0, &job->watchdog_usec) <= 0)
    job->watchdog_usec = 0;
  install_signals ();

  if (!start (job, &error))
    {
      g_printerr ("error: %s\n", error->message);
      return shut_down (job, error->code == BG_JOB_ERROR_CONFIG ? 2 : 1);
    }

  {
    g_autofree char *pos = positions_string (job);
    g_message ("%s %s consuming %s (%d partitions, %s), producing to %s%s, gate %s", cfg->color,
               cfg->version, cfg->input, job->n_partitions,
               job->group_mode ? "group" : "static assignment", cfg->output,
               cfg->transactional ? " in transactions" : "", cfg->no_gate ? "bypassed" : "on");
    sd_notifyf (0, "READY=1\nSTATUS=consuming %s from %s", cfg->input,
                pos[0] ? pos : "the start");
  }
  report_status (job);

  poll_loop (job);

  int status = 0;
  if (atomic_load (&job->fatal))
    status = 1;
  sd_notify (0, "STOPPING=1");
  /* A clean stop commits what was processed; a failed instance leaves its
   * open transaction to be aborted (or fenced by its restart). */
  if (cfg->transactional && !atomic_load (&job->fatal) && !atomic_load (&job->txn_failed))
    txn_commit (job);
  if (cfg->transactional && atomic_load (&job->txn_failed))
    status = 1;
  /* Stop consuming first, so the savepoint's offsets match what was
   * produced; then get every produced result out (bounded). */
  rd_kafka_topic_partition_list_t *none = NULL;
  if (!job->group_mode)
    rd_kafka_assign (job->consumer, none);
  rd_kafka_resp_err_t ferr = rd_kafka_flush (job->producer, FLUSH_TIMEOUT_MS);
  int outstanding = rd_kafka_outq_len (job->producer);
  if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR || outstanding > 0)
    {
      g_printerr ("error: %d result(s) still undelivered after %d ms\n", outstanding,
                  FLUSH_TIMEOUT_MS);
      status = 1;
    }
  if (atomic_load (&job->failed) > 0)
    {
      g_printerr ("error: %" G_GUINT64_FORMAT " result(s) failed to be delivered\n",
                  (guint64) atomic_load (&job->failed));
      status = 1;
    }
  report_status (job);
  if ((status == 0 || !atomic_load (&job->fatal)) && !atomic_load (&job->txn_failed))
    {
      if (cfg->savepoint_dir != NULL && !write_savepoint (job))
        status = 1;
    }
  g_message ("stopped: consumed %" G_GUINT64_FORMAT ", emitted %" G_GUINT64_FORMAT
             ", dropped %" G_GUINT64_FORMAT ", delivered %" G_GUINT64_FORMAT,
             (guint64) job->consumed, (guint64) atomic_load (&job->emitted),
             (guint64) atomic_load (&job->dropped), (guint64) atomic_load (&job->delivered));
  return shut_down (job, status);
}
