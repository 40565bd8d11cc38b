/* gate.c — the gate: for every result a job is about to produce, emit or
 * blackhole, by the (topic, partition, offset) of the input record that
 * caused it; and the steering calls the agent side uses to move the switch.
 *
 * Two halves:
 *
 * - The writer state (mode, emit ranges per partition, the latest plan,
 *   holds), changed only under gate->lock by set_mode, set_ranges, prepare,
 *   commit, abort, hold and release. After each change the writer compiles it
 *   into a *snapshot*: one flat array, indexed by topic base + partition, of
 *   {lo, hi, wait_from}: a record at offset o is emitted iff lo <= o < hi,
 *   unless o >= wait_from, when the decision is not known yet (a prepared
 *   barrier, a held partition, mode UNKNOWN: wait_from = INT64_MIN) and the
 *   slow path takes over.
 *
 * - The reader, bg_gate_admit(): an acquire load of the current snapshot
 *   pointer, three loads, two compares. No lock, no allocation, no locked
 *   read-modify-write.
 *
 * Reclaiming snapshots. A per-admit reference count or hazard pointer would
 * cost a locked instruction or a full fence per record (more than the whole
 * budget); keeping every retired snapshot until bg_gate_free() grows without
 * bound; an epoch/quiescence scheme needs readers to register and stalls on an
 * idle partition. So the gate never frees a snapshot buffer while it lives:
 * it keeps exactly two (the current one and a spare) and recycles the spare
 * for the next change. Each buffer carries a generation number that is odd
 * while the writer rewrites it (a seqlock on the buffer): a reader that
 * loaded the pointer just before a recycle sees the generation change across
 * its loads and retries, so every verdict comes from one consistent
 * generation. Memory is bounded: two buffers, plus the ones retired when
 * registering topics outgrows them (capacity doubles, so few).
 *
 * Waiting happens on the slow path only, under gate->lock, on gate->cond;
 * every writer broadcasts. The waiter re-evaluates from the writer state
 * (which the current snapshot mirrors exactly). A deadline never ends a wait:
 * only commit, abort, release or a new mode does.
 *
 * Positions and counters live per partition with the topic, each partition on
 * its own cache line; one thread admits a partition at a time (documented in
 * bluegreen.h), so they are relaxed load + store, summed on read. Records on
 * partitions beyond the registered count go through the slow path and are
 * counted with atomic adds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bluegreen.h"
#include "gate-private.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WAIT_REPORT_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)
#define SNAPSHOT_MIN_CAPACITY 16u
#define MAX_PARTITIONS_PER_TOPIC 65536
#define MAX_ENTRIES (1u << 30)

/* One partition's compiled state. Atomic fields only because a recycled
 * buffer is rewritten while a late reader may still look at it (the
 * generation check then discards what it read). */
typedef struct {
  _Atomic int64_t lo;
  _Atomic int64_t hi;
  _Atomic int64_t wait_from;
  int64_t unused; /* 32 bytes: two entries per cache line, none straddling */
} Entry;

typedef struct {
  _Atomic uint64_t gen; /* odd while being rewritten */
  uint32_t capacity;    /* fixed for the buffer's life */
  Entry entries[];
} Snapshot;

/* The same, as the writer computes it. */
typedef struct {
  int64_t lo;
  int64_t hi;
  int64_t wait_from;
} Bounds;

typedef struct {
  int64_t lo;
  int64_t hi;
} Range;

typedef struct {
  GQuark topic;
  int32_t partition;
  int64_t highest;
} PastPosition;

static const Range RANGE_FULL = { 0, INT64_MAX };
static const Range RANGE_EMPTY = { 0, 0 };

/* Admitted and emitted rather than emitted and dropped: both counters are
 * updated at fixed addresses on every record (emitted by 0 or 1), so the
 * store never waits for the verdict to pick its address. */
typedef struct {
  _Atomic int64_t position;
  _Atomic int64_t highest; /* the highest position before it last went back (a rebalance) */
  _Atomic uint64_t admitted;
  _Atomic uint64_t emitted;
} __attribute__ ((aligned (64))) PartStats;

struct _BgTopic {
  uint32_t base;         /* index of partition 0 in a snapshot */
  uint32_t n_partitions; /* tracked partitions 0 .. n_partitions-1 */
  PartStats *stats;
  GQuark quark;
  char *name;
};

struct _BgGate {
  /* Read on every admit. */
  _Atomic (Snapshot *) current;
  atomic_bool side_effects_allowed;

  /* Counters of untracked partitions (slow path only). */
  _Atomic uint64_t untracked_emitted;
  _Atomic uint64_t untracked_dropped;

  /* Everything below is under lock. */
  GMutex lock;
  GCond cond;

  BgSinkMode mode;
  Range default_range;  /* partitions without an entry in ranges */
  GHashTable *ranges;   /* part key -> Range */
  GHashTable *holds;    /* set of part keys */
  /* The highest position admitted on each untracked partition (beyond a
   * topic's registered count; those admit under the lock), part key ->
   * gint64, so arming can check them like the tracked ones. */
  GHashTable *untracked_highest;
  /* Their positions (next offset; -1 once revoked), part key -> gint64,
   * reported like the tracked ones (a partition added to an input topic
   * after the instance started is untracked). */
  GHashTable *untracked_position;

  /* The latest plan. barriers is NULL once it is aborted. */
  char *plan_id;
  BgPlanRole plan_role;
  BgPlanState plan_state;
  int64_t plan_deadline_us;
  GHashTable *plan_barriers;
  BgSinkMode mode_before_plan;
  char *plan_past_reason; /* why arming it found a barrier passed, or NULL */
  /* What arming found passed: the named barrier partitions (PastPosition:
   * a commit may move their barriers up to these), and a partition the
   * plan does not name (its implicit barrier 0 cannot move), or NULL. */
  GArray *plan_past;
  char *plan_past_unnamed;
  /* Bumped whenever what a prepared plan found passed changes after it was
   * armed (a partition resumed past its barrier). */
  guint64 past_serial;

  GPtrArray *topics;          /* BgTopic, registration order */
  GHashTable *topics_by_name; /* name -> BgTopic */
  uint32_t n_entries;

  Snapshot *spare;
  GPtrArray *retired; /* buffers outgrown by topic registration */
  guint n_buffers;
  uint64_t generation;
  uint64_t n_publishes;

  GQueue waiters; /* links on the waiting threads' stacks; data: start time */
  BgGateWaitFunc wait_func;
  void *wait_data;

  /* The agent link (client.c), set once before the gate is handed out. */
  gpointer client;
  GDestroyNotify client_destroy;
};

/* ---- Snapshots ------------------------------------------------------------ */

static Snapshot *
snapshot_new (uint32_t capacity)
{
  Snapshot *s = g_malloc0 (sizeof (Snapshot) + (gsize) capacity * sizeof (Entry));
  s->capacity = capacity;
  /* Slots no topic owns yet send their reader to the slow path. */
  for (uint32_t i = 0; i < capacity; i++)
    atomic_init (&s->entries[i].wait_from, INT64_MIN);
  return s;
}

static Range
range_normalize (int64_t lo, int64_t hi)
{
  if (lo >= hi)
    return RANGE_EMPTY;
  return (Range) { lo, hi };
}

static bool
range_is_open_ended (Range r)
{
  return r.lo < r.hi && r.hi == INT64_MAX;
}

static Range
range_lookup_locked (BgGate *gate, gint64 key)
{
  const Range *r = g_hash_table_lookup (gate->ranges, &key);
  return r != NULL ? *r : gate->default_range;
}

static void
range_set_locked (BgGate *gate, gint64 key, Range r)
{
  g_hash_table_insert (gate->ranges, g_memdup2 (&key, sizeof key), g_memdup2 (&r, sizeof r));
}

static bool
plan_is_live_locked (BgGate *gate)
{
  return gate->plan_barriers != NULL
         && (gate->plan_state == BG_PLAN_STATE_PREPARED
             || gate->plan_state == BG_PLAN_STATE_COMMITTED);
}

/* The compiled state of one partition. Holds apply from the latest live
 * plan's barrier on; a hold on a partition without one has no effect. */
static Bounds
bounds_locked (BgGate *gate, GQuark topic, int32_t partition)
{
  if (gate->mode == BG_SINK_MODE_UNKNOWN)
    return (Bounds) { 0, 0, INT64_MIN };

  gint64 key = bg_part_key (topic, partition);
  Range r = range_lookup_locked (gate, key);
  Bounds b = { r.lo, r.hi, INT64_MAX };

  if (!plan_is_live_locked (gate))
    return b;
  /* A partition the plan does not name has an implicit barrier at 0 (it
   * belongs to the incoming side whole once committed): while the plan is
   * prepared, every record there waits. */
  const gint64 *barrier = g_hash_table_lookup (gate->plan_barriers, &key);
  int64_t at = barrier != NULL ? *barrier : 0;
  if (gate->plan_state == BG_PLAN_STATE_PREPARED
      || (barrier != NULL && g_hash_table_contains (gate->holds, &key)))
    b.wait_from = at;
  return b;
}

static bool
side_effects_allowed_locked (BgGate *gate)
{
  if (gate->mode == BG_SINK_MODE_LIVE)
    return true;
  if (gate->mode != BG_SINK_MODE_GATED)
    return false;
  if (gate->plan_barriers != NULL && gate->plan_state == BG_PLAN_STATE_PREPARED)
    return false;
  if (plan_is_live_locked (gate) && g_hash_table_size (gate->holds) > 0)
    return false;

  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, gate->ranges);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!range_is_open_ended (*(const Range *) value))
      return false;

  if (range_is_open_ended (gate->default_range))
    return true;
  /* Registered partitions without their own range fall back to the closed
   * default: this instance would not emit there. */
  for (guint t = 0; t < gate->topics->len; t++)
    {
      const BgTopic *topic = g_ptr_array_index (gate->topics, t);
      for (uint32_t p = 0; p < topic->n_partitions; p++)
        {
          gint64 key = bg_part_key (topic->quark, (int32_t) p);
          if (!g_hash_table_contains (gate->ranges, &key))
            return false;
        }
    }
  return true;
}

/* Compiles the writer state into the spare buffer and publishes it; wakes
 * every waiter so it re-evaluates. */
static void
publish_locked (BgGate *gate)
{
  Snapshot *buf = gate->spare;
  Snapshot *old = atomic_load_explicit (&gate->current, memory_order_relaxed);

  if (buf == NULL || buf->capacity < gate->n_entries)
    {
      uint32_t capacity = MAX (SNAPSHOT_MIN_CAPACITY, gate->n_entries);
      if (old != NULL)
        capacity = MAX (capacity, MIN (old->capacity * 2, MAX_ENTRIES));
      /* A reader may still hold an outgrown buffer: keep it until free. */
      if (buf != NULL)
        g_ptr_array_add (gate->retired, buf);
      buf = snapshot_new (capacity);
      gate->n_buffers++;
    }
  gate->spare = NULL;

  gate->generation += 2;
  atomic_store_explicit (&buf->gen, gate->generation - 1, memory_order_relaxed);
  atomic_thread_fence (memory_order_release);
  for (guint t = 0; t < gate->topics->len; t++)
    {
      const BgTopic *topic = g_ptr_array_index (gate->topics, t);
      for (uint32_t p = 0; p < topic->n_partitions; p++)
        {
          Bounds b = bounds_locked (gate, topic->quark, (int32_t) p);
          Entry *e = &buf->entries[topic->base + p];
          atomic_store_explicit (&e->lo, b.lo, memory_order_relaxed);
          atomic_store_explicit (&e->hi, b.hi, memory_order_relaxed);
          atomic_store_explicit (&e->wait_from, b.wait_from, memory_order_relaxed);
        }
    }
  atomic_store_explicit (&buf->gen, gate->generation, memory_order_release);
  atomic_store_explicit (&gate->current, buf, memory_order_release);
  gate->spare = old;
  gate->n_publishes++;

  atomic_store_explicit (&gate->side_effects_allowed, side_effects_allowed_locked (gate),
                         memory_order_release);
  g_cond_broadcast (&gate->cond);
}

/* ---- Lifetime and topics ---------------------------------------------------- */

static void
topic_free (gpointer data)
{
  BgTopic *topic = data;
  g_aligned_free (topic->stats);
  g_free (topic->name);
  g_free (topic);
}

static GHashTable *
key_table_new (void)
{
  return g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
}

BgGate *
bg_gate_new (BgSinkMode initial_mode)
{
  g_return_val_if_fail (initial_mode == BG_SINK_MODE_UNKNOWN || initial_mode == BG_SINK_MODE_LIVE
                            || initial_mode == BG_SINK_MODE_BLACKHOLE,
                        NULL);

  BgGate *gate = g_new0 (BgGate, 1);
  g_mutex_init (&gate->lock);
  g_cond_init (&gate->cond);
  gate->mode = initial_mode;
  gate->default_range = initial_mode == BG_SINK_MODE_LIVE ? RANGE_FULL : RANGE_EMPTY;
  gate->ranges = key_table_new ();
  gate->holds = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  gate->untracked_highest = key_table_new ();
  gate->untracked_position = key_table_new ();
  gate->plan_past = g_array_new (FALSE, FALSE, sizeof (PastPosition));
  gate->topics = g_ptr_array_new_with_free_func (topic_free);
  gate->topics_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  gate->retired = g_ptr_array_new_with_free_func (g_free);
  g_queue_init (&gate->waiters);

  g_mutex_lock (&gate->lock);
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return gate;
}

void
bg_gate_free (BgGate *gate)
{
  if (gate == NULL)
    return;
  /* The link's thread steers this gate: stop it before anything goes. */
  if (gate->client_destroy != NULL)
    gate->client_destroy (gate->client);
  g_free (atomic_load_explicit (&gate->current, memory_order_relaxed));
  g_free (gate->spare);
  g_ptr_array_unref (gate->retired);
  g_hash_table_unref (gate->topics_by_name);
  g_ptr_array_unref (gate->topics);
  g_hash_table_unref (gate->ranges);
  g_hash_table_unref (gate->holds);
  g_hash_table_unref (gate->untracked_highest);
  g_hash_table_unref (gate->untracked_position);
  g_clear_pointer (&gate->plan_barriers, g_hash_table_unref);
  g_free (gate->plan_id);
  g_free (gate->plan_past_reason);
  g_free (gate->plan_past_unnamed);
  g_array_unref (gate->plan_past);
  g_cond_clear (&gate->cond);
  g_mutex_clear (&gate->lock);
  g_free (gate);
}

BgTopic *
bg_gate_topic (BgGate *gate, const char *name, int32_t n_partitions)
{
  g_return_val_if_fail (gate != NULL, NULL);

  if (name == NULL || *name == '\0' || n_partitions < 1 || n_partitions > MAX_PARTITIONS_PER_TOPIC)
    return NULL;

  g_mutex_lock (&gate->lock);
  BgTopic *topic = g_hash_table_lookup (gate->topics_by_name, name);
  if (topic != NULL || gate->n_entries + (uint32_t) n_partitions > MAX_ENTRIES)
    {
      g_mutex_unlock (&gate->lock);
      return topic;
    }

  topic = g_new0 (BgTopic, 1);
  topic->name = g_strdup (name);
  topic->quark = g_quark_from_string (name);
  topic->base = gate->n_entries;
  topic->n_partitions = (uint32_t) n_partitions;
  topic->stats = g_aligned_alloc0 ((gsize) n_partitions, sizeof (PartStats), 64);
  for (int32_t p = 0; p < n_partitions; p++)
    {
      atomic_init (&topic->stats[p].position, -1);
      atomic_init (&topic->stats[p].highest, -1);
    }
  gate->n_entries += (uint32_t) n_partitions;
  g_ptr_array_add (gate->topics, topic);
  g_hash_table_insert (gate->topics_by_name, topic->name, topic);
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return topic;
}

const char *
bg_topic_name (const BgTopic *topic)
{
  g_return_val_if_fail (topic != NULL, NULL);
  return topic->name;
}

/* ---- The hot path --------------------------------------------------------- */

static inline BgVerdict
verdict_for (int64_t offset, int64_t lo, int64_t hi)
{
  return offset >= lo && offset < hi ? BG_VERDICT_EMIT : BG_VERDICT_DROP;
}

/* The position half of recording a record: stored before the verdict is
 * final (see admit()), so a writer arming a plan either sees it or the
 * reader sees the writer's new snapshot. Tracked partitions only. */
static inline void
record_position (PartStats *st, int64_t offset)
{
  /* Single writer per partition: plain loads and stores, no locked
   * instruction. The highest position is kept aside only when the position
   * goes back (a rebalance re-reads), so the usual record costs one store. */
  int64_t prev = atomic_load_explicit (&st->position, memory_order_relaxed);
  if (G_UNLIKELY (offset + 1 < prev) && prev > atomic_load_explicit (&st->highest, memory_order_relaxed))
    atomic_store_explicit (&st->highest, prev, memory_order_relaxed);
  atomic_store_explicit (&st->position, offset + 1, memory_order_relaxed);
}

static inline void
record_counters (PartStats *st, BgVerdict verdict)
{
  atomic_store_explicit (&st->admitted, atomic_load_explicit (&st->admitted, memory_order_relaxed) + 1,
                         memory_order_relaxed);
  atomic_store_explicit (&st->emitted,
                         atomic_load_explicit (&st->emitted, memory_order_relaxed)
                             + (verdict == BG_VERDICT_EMIT),
                         memory_order_release);
}

/* Under the lock. */
static void
untracked_set_position (BgGate *gate, gint64 key, int64_t position)
{
  gint64 *pos = g_hash_table_lookup (gate->untracked_position, &key);
  if (pos == NULL)
    {
      gint64 v = position;
      g_hash_table_insert (gate->untracked_position, g_memdup2 (&key, sizeof key), g_memdup2 (&v, sizeof v));
    }
  else
    *pos = position;
}

static inline void
record (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset, BgVerdict verdict)
{
  if ((uint32_t) partition >= topic->n_partitions)
    {
      /* Only ever under the lock (untracked partitions always take the
       * slow path). */
      gint64 key = bg_part_key (topic->quark, partition);
      gint64 *highest = g_hash_table_lookup (gate->untracked_highest, &key);
      if (highest == NULL)
        {
          gint64 next = offset + 1;
          g_hash_table_insert (gate->untracked_highest, g_memdup2 (&key, sizeof key), g_memdup2 (&next, sizeof next));
        }
      else if (offset + 1 > *highest)
        *highest = offset + 1;
      untracked_set_position (gate, key, offset + 1);
      atomic_fetch_add_explicit (verdict == BG_VERDICT_EMIT ? &gate->untracked_emitted
                                                            : &gate->untracked_dropped,
                                 1, memory_order_relaxed);
      return;
    }
  PartStats *st = &topic->stats[partition];
  record_position (st, offset);
  record_counters (st, verdict);
}

static void
report_wait_unlocked (BgGate *gate, BgGateWaitFunc func, void *data, BgTopic *topic,
                      int32_t partition, int64_t offset, int64_t waited_us)
{
  g_mutex_unlock (&gate->lock);
  func (gate, topic, partition, offset, waited_us, data);
  g_mutex_lock (&gate->lock);
}

/* Untracked partitions, pending decisions, topics newer than the snapshot. */
static G_GNUC_NO_INLINE BgVerdict
admit_slow (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset, bool may_wait)
{
  g_mutex_lock (&gate->lock);
  Bounds b = bounds_locked (gate, topic->quark, partition);
  if (offset >= b.wait_from)
    {
      if (!may_wait)
        {
          g_mutex_unlock (&gate->lock);
          return BG_VERDICT_WAIT;
        }

      int64_t start = g_get_monotonic_time ();
      GList link = { .data = &start };
      int64_t next_report = start + WAIT_REPORT_INTERVAL_US;
      g_queue_push_tail_link (&gate->waiters, &link);
      g_debug ("gate: %s[%d] offset %" G_GINT64_FORMAT " waits for a decision", topic->name,
               partition, offset);
      while (offset >= b.wait_from)
        {
          if (!g_cond_wait_until (&gate->cond, &gate->lock, next_report))
            {
              int64_t now = g_get_monotonic_time ();
              next_report = now + WAIT_REPORT_INTERVAL_US;
              if (gate->wait_func != NULL)
                report_wait_unlocked (gate, gate->wait_func, gate->wait_data, topic, partition,
                                      offset, now - start);
            }
          b = bounds_locked (gate, topic->quark, partition);
        }
      g_queue_unlink (&gate->waiters, &link);
    }
  /* Recorded under the lock: a prepare (which takes it) then either ran
   * before this verdict was decided, or sees this position. */
  BgVerdict verdict = verdict_for (offset, b.lo, b.hi);
  record (gate, topic, partition, offset, verdict);
  g_mutex_unlock (&gate->lock);
  return verdict;
}

static inline __attribute__ ((always_inline)) BgVerdict
admit (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset, bool may_wait)
{
  if (G_UNLIKELY ((uint32_t) partition >= topic->n_partitions))
    return admit_slow (gate, topic, partition, offset, may_wait);

  uint32_t idx = topic->base + (uint32_t) partition;
  Snapshot *s;
  uint64_t gen;
  int64_t lo, hi, wait_from;
  for (;;)
    {
      s = atomic_load_explicit (&gate->current, memory_order_acquire);
      if (G_UNLIKELY (idx >= s->capacity))
        return admit_slow (gate, topic, partition, offset, may_wait);
      gen = atomic_load_explicit (&s->gen, memory_order_acquire);
      const Entry *e = &s->entries[idx];
      lo = atomic_load_explicit (&e->lo, memory_order_relaxed);
      hi = atomic_load_explicit (&e->hi, memory_order_relaxed);
      wait_from = atomic_load_explicit (&e->wait_from, memory_order_relaxed);
      atomic_thread_fence (memory_order_acquire);
      if (G_LIKELY (atomic_load_explicit (&s->gen, memory_order_relaxed) == gen && !(gen & 1)))
        break;
    }
  if (G_UNLIKELY (offset >= wait_from))
    return admit_slow (gate, topic, partition, offset, may_wait);

  /* Exactness at arming: store the position, then look again whether the
   * snapshot is still the one the verdict came from. bg_gate_prepare()
   * publishes, runs membarrier() (a full barrier on every thread of the
   * process, so only a compiler barrier is needed here), then reads the
   * positions: either it sees this position, or this re-load sees its
   * snapshot and the slow path re-decides (a prepared barrier then waits).
   * The generation catches a recycled buffer at the same address. */
  PartStats *st = &topic->stats[partition];
  record_position (st, offset);
  atomic_signal_fence (memory_order_seq_cst);
  if (G_UNLIKELY (atomic_load_explicit (&gate->current, memory_order_relaxed) != s
                  || atomic_load_explicit (&s->gen, memory_order_relaxed) != gen))
    return admit_slow (gate, topic, partition, offset, may_wait);

  BgVerdict verdict = verdict_for (offset, lo, hi);
  record_counters (st, verdict);
  return verdict;
}

BgVerdict
bg_gate_admit (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset)
{
  return admit (gate, topic, partition, offset, true);
}

BgVerdict
bg_gate_try_admit (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset)
{
  return admit (gate, topic, partition, offset, false);
}

bool
bg_gate_side_effects_allowed (BgGate *gate)
{
  return atomic_load_explicit (&gate->side_effects_allowed, memory_order_acquire);
}

/* ---- Steering ---------------------------------------------------------------- */

static bool
plan_prepared_locked (BgGate *gate)
{
  return gate->plan_barriers != NULL && gate->plan_state == BG_PLAN_STATE_PREPARED;
}

bool
bg_gate_set_mode (BgGate *gate, BgSinkMode mode)
{
  g_return_val_if_fail (gate != NULL, false);

  /* GATED comes from a plan or from bg_gate_set_ranges(), never on its own. */
  if (mode != BG_SINK_MODE_UNKNOWN && mode != BG_SINK_MODE_LIVE && mode != BG_SINK_MODE_BLACKHOLE)
    return false;

  g_mutex_lock (&gate->lock);
  /* A prepared plan may only end by the decision in the log; a manual flip
   * would be a local abort of a plan this host may have voted for. */
  if (plan_prepared_locked (gate))
    {
      g_mutex_unlock (&gate->lock);
      g_info ("gate: refusing a mode change while plan %s is prepared", gate->plan_id);
      return false;
    }
  gate->mode = mode;
  gate->default_range = mode == BG_SINK_MODE_LIVE ? RANGE_FULL : RANGE_EMPTY;
  g_hash_table_remove_all (gate->ranges);
  g_hash_table_remove_all (gate->holds);
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return true;
}

BgSinkMode
bg_gate_get_mode (BgGate *gate)
{
  g_return_val_if_fail (gate != NULL, BG_SINK_MODE_UNKNOWN);

  g_mutex_lock (&gate->lock);
  BgSinkMode mode = gate->mode;
  g_mutex_unlock (&gate->lock);
  return mode;
}

bool
bg_gate_set_ranges (BgGate *gate, int64_t default_lo, int64_t default_hi,
                    const BgGateRange *ranges, size_t n_ranges)
{
  g_return_val_if_fail (gate != NULL, false);
  g_return_val_if_fail (ranges != NULL || n_ranges == 0, false);

  for (size_t i = 0; i < n_ranges; i++)
    if (ranges[i].topic == NULL || *ranges[i].topic == '\0' || ranges[i].partition < 0)
      return false;

  g_mutex_lock (&gate->lock);
  if (plan_prepared_locked (gate))
    {
      g_mutex_unlock (&gate->lock);
      return false;
    }
  gate->mode = BG_SINK_MODE_GATED;
  gate->default_range = range_normalize (default_lo, default_hi);
  g_hash_table_remove_all (gate->ranges);
  for (size_t i = 0; i < n_ranges; i++)
    range_set_locked (gate, bg_part_key (g_quark_from_string (ranges[i].topic), ranges[i].partition),
                      range_normalize (ranges[i].lo, ranges[i].hi));
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return true;
}

static void
set_holds_locked (BgGate *gate, const BgGateHold *holds, size_t n_holds)
{
  g_hash_table_remove_all (gate->holds);
  for (size_t i = 0; i < n_holds; i++)
    {
      gint64 key = bg_part_key (g_quark_from_string (holds[i].topic), holds[i].partition);
      g_hash_table_add (gate->holds, g_memdup2 (&key, sizeof key));
    }
}

static bool
holds_valid (const BgGateHold *holds, size_t n_holds)
{
  for (size_t i = 0; i < n_holds; i++)
    if (holds[i].topic == NULL || *holds[i].topic == '\0' || holds[i].partition < 0)
      return false;
  return true;
}

bool
bg_gate_set_holds (BgGate *gate, const BgGateHold *holds, size_t n_holds)
{
  g_return_val_if_fail (gate != NULL, false);
  g_return_val_if_fail (holds != NULL || n_holds == 0, false);

  if (!holds_valid (holds, n_holds))
    return false;
  g_mutex_lock (&gate->lock);
  set_holds_locked (gate, holds, n_holds);
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return true;
}

static char *past_barrier_locked (BgGate *gate);
static void reader_barrier (void);

BgPrepareResult
bg_gate_steer (BgGate *gate, const BgGateSteering *st, char **reason)
{
  g_return_val_if_fail (gate != NULL, BG_PREPARE_REFUSED);
  g_return_val_if_fail (st != NULL, BG_PREPARE_REFUSED);

  if (reason != NULL)
    *reason = NULL;
  if ((st->mode != BG_SINK_MODE_LIVE && st->mode != BG_SINK_MODE_BLACKHOLE && st->mode != BG_SINK_MODE_GATED)
      || (st->plan != NULL && st->plan_state != BG_PLAN_STATE_PREPARED && st->plan_state != BG_PLAN_STATE_COMMITTED)
      || !holds_valid (st->holds, st->n_holds))
    {
      if (reason != NULL)
        *reason = g_strdup ("invalid steering");
      return BG_PREPARE_REFUSED;
    }
  for (size_t i = 0; i < st->n_ranges; i++)
    if (st->ranges[i].topic == NULL || *st->ranges[i].topic == '\0' || st->ranges[i].partition < 0)
      {
        if (reason != NULL)
          *reason = g_strdup ("invalid range");
        return BG_PREPARE_REFUSED;
      }

  g_mutex_lock (&gate->lock);
  /* Only the decision may end a prepared plan: the same plan, committed
   * (with its final barriers), in the same snapshot as the new ranges. */
  if (plan_prepared_locked (gate)
      && !(st->plan != NULL && st->plan_state == BG_PLAN_STATE_COMMITTED
           && g_strcmp0 (st->plan->id, gate->plan_id) == 0))
    {
      if (reason != NULL)
        *reason = g_strdup ("another plan is prepared");
      g_mutex_unlock (&gate->lock);
      return BG_PREPARE_REFUSED;
    }
  /* The base: what the slot emits outside any prepared barrier. */
  gate->mode = st->mode;
  g_hash_table_remove_all (gate->ranges);
  if (st->mode == BG_SINK_MODE_GATED)
    {
      gate->default_range = range_normalize (st->default_lo, st->default_hi);
      for (size_t i = 0; i < st->n_ranges; i++)
        range_set_locked (gate,
                          bg_part_key (g_quark_from_string (st->ranges[i].topic), st->ranges[i].partition),
                          range_normalize (st->ranges[i].lo, st->ranges[i].hi));
    }
  else
    gate->default_range = st->mode == BG_SINK_MODE_LIVE ? RANGE_FULL : RANGE_EMPTY;
  /* The plan on top, in the same snapshot: an instance never runs under
   * the base alone while the slot's plan is prepared. */
  if (st->plan != NULL)
    {
      g_free (gate->plan_id);
      gate->plan_id = g_strdup (st->plan->id);
      gate->plan_role = st->plan->role;
      gate->plan_state = st->plan_state;
      gate->plan_deadline_us = st->plan->deadline_us;
      g_clear_pointer (&gate->plan_barriers, g_hash_table_unref);
      gate->plan_barriers = bg_plan_dup_barriers (st->plan);
      gate->mode_before_plan = st->mode;
      gate->mode = BG_SINK_MODE_GATED;
      g_clear_pointer (&gate->plan_past_reason, g_free);
    }
  set_holds_locked (gate, st->holds, st->n_holds);
  publish_locked (gate);

  char *past = NULL;
  if (st->plan != NULL && st->plan_state == BG_PLAN_STATE_PREPARED)
    {
      reader_barrier ();
      past = past_barrier_locked (gate);
      gate->plan_past_reason = g_strdup (past);
    }
  g_mutex_unlock (&gate->lock);

  if (past == NULL)
    return BG_PREPARE_ARMED;
  g_info ("gate: plan %s armed, but %s", st->plan->id, past);
  if (reason != NULL)
    *reason = past;
  else
    g_free (past);
  return BG_PREPARE_PAST_BARRIER;
}

/* ---- Arming a plan exactly ---------------------------------------------------- */

#define GRACE_PERIOD_US 5000

static gsize membarrier_state; /* 0 unknown, 1 usable, 2 unavailable */

static int
sys_membarrier (int cmd)
{
  return (int) syscall (SYS_membarrier, cmd, 0, 0);
}

/* Makes every thread of the process pass a full memory barrier before this
 * returns, so a reader's position store either precedes it (the caller sees
 * it) or the reader's later re-load of the snapshot pointer sees what the
 * caller published before (see admit()). */
static void
reader_barrier (void)
{
  if (g_once_init_enter (&membarrier_state))
    {
      gsize state = 2;
      int cmds = sys_membarrier (MEMBARRIER_CMD_QUERY);
      if (cmds >= 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)
          && sys_membarrier (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
        state = 1;
      else
        g_info ("gate: membarrier() unavailable (%s); arming a plan waits a grace period instead",
                cmds < 0 ? g_strerror (errno) : "no private expedited command");
      g_once_init_leave (&membarrier_state, state);
    }
  if (membarrier_state == 1 && sys_membarrier (MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
    return;
  /* Without membarrier (an old kernel, or a seccomp filter that denies it):
   * a reader's store sits in its store buffer for nanoseconds, and a reader
   * preempted between its verdict and its position store re-loads the
   * snapshot after resuming (a context switch is a full barrier) and sees
   * the new one. Waiting a few milliseconds covers the first case in
   * practice, not by proof; membarrier is the proof. */
  g_usleep (GRACE_PERIOD_US);
}

/* The highest position admitted on (topic, partition), -1 if none. */
static int64_t
highest_position_locked (BgGate *gate, GQuark quark, int32_t partition)
{
  const BgTopic *topic = g_hash_table_lookup (gate->topics_by_name, g_quark_to_string (quark));
  if (topic != NULL && partition >= 0 && (uint32_t) partition < topic->n_partitions)
    return MAX (atomic_load_explicit (&topic->stats[partition].position, memory_order_relaxed),
                atomic_load_explicit (&topic->stats[partition].highest, memory_order_relaxed));
  gint64 key = bg_part_key (quark, partition);
  const gint64 *highest = g_hash_table_lookup (gate->untracked_highest, &key);
  return highest != NULL ? *highest : -1;
}

static char *
past_reason (GQuark quark, int32_t partition, int64_t highest, int64_t barrier, bool implicit)
{
  return g_strdup_printf ("past barrier %s/%d: position %" G_GINT64_FORMAT " > %" G_GINT64_FORMAT "%s",
                          g_quark_to_string (quark), partition, highest, barrier,
                          implicit ? " (a partition the plan does not name)" : "");
}

/* The first barrier partition this instance has passed (admitted an offset
 * at or past the barrier: emitted it as outgoing, dropped it as incoming),
 * as a reason, or NULL. A partition the plan does not name has its
 * implicit barrier at 0: any record admitted there before arming is past
 * it. Untracked partitions (beyond a topic's registered count) admit under
 * the lock, which orders them against this check. */
static char *
past_barrier_locked (BgGate *gate)
{
  GHashTableIter iter;
  gpointer k, v;
  char *first = NULL;

  g_array_set_size (gate->plan_past, 0);
  g_clear_pointer (&gate->plan_past_unnamed, g_free);
  g_hash_table_iter_init (&iter, gate->plan_barriers);
  while (g_hash_table_iter_next (&iter, &k, &v))
    {
      gint64 key = *(const gint64 *) k;
      int64_t barrier = *(const gint64 *) v;
      int64_t highest = highest_position_locked (gate, bg_part_key_topic (key), bg_part_key_partition (key));
      if (highest <= barrier)
        continue;
      PastPosition pp = { bg_part_key_topic (key), bg_part_key_partition (key), highest };
      g_array_append_val (gate->plan_past, pp);
      if (first == NULL)
        first = past_reason (pp.topic, pp.partition, highest, barrier, false);
    }
  for (guint t = 0; t < gate->topics->len && gate->plan_past_unnamed == NULL; t++)
    {
      const BgTopic *topic = g_ptr_array_index (gate->topics, t);
      for (uint32_t p = 0; p < topic->n_partitions; p++)
        {
          gint64 key = bg_part_key (topic->quark, (int32_t) p);
          int64_t highest;
          if (g_hash_table_contains (gate->plan_barriers, &key))
            continue;
          highest = highest_position_locked (gate, topic->quark, (int32_t) p);
          if (highest > 0)
            {
              gate->plan_past_unnamed = past_reason (topic->quark, (int32_t) p, highest, 0, true);
              break;
            }
        }
    }
  g_hash_table_iter_init (&iter, gate->untracked_highest);
  while (gate->plan_past_unnamed == NULL && g_hash_table_iter_next (&iter, &k, &v))
    {
      gint64 key = *(const gint64 *) k;
      if (!g_hash_table_contains (gate->plan_barriers, &key) && *(const gint64 *) v > 0)
        gate->plan_past_unnamed = past_reason (bg_part_key_topic (key), bg_part_key_partition (key),
                                               *(const gint64 *) v, 0, true);
    }
  if (gate->plan_past_unnamed != NULL)
    {
      g_free (first);
      return g_strdup (gate->plan_past_unnamed);
    }
  return first;
}

BgPrepareResult
bg_gate_prepare_checked (BgGate *gate, const BgPlan *plan, char **reason)
{
  g_return_val_if_fail (gate != NULL, BG_PREPARE_REFUSED);
  g_return_val_if_fail (plan != NULL, BG_PREPARE_REFUSED);

  if (reason != NULL)
    *reason = NULL;
  g_mutex_lock (&gate->lock);
  /* Arming on top of unknown ranges would make "below the barrier follows
   * the current ranges" meaningless; the agent sets them first. */
  if (plan_prepared_locked (gate) || gate->mode == BG_SINK_MODE_UNKNOWN)
    {
      if (reason != NULL)
        *reason = g_strdup (gate->mode == BG_SINK_MODE_UNKNOWN
                                ? "the sink mode is not known yet"
                                : "another plan is prepared");
      g_mutex_unlock (&gate->lock);
      return BG_PREPARE_REFUSED;
    }
  g_free (gate->plan_id);
  gate->plan_id = g_strdup (plan->id);
  gate->plan_role = plan->role;
  gate->plan_state = BG_PLAN_STATE_PREPARED;
  gate->plan_deadline_us = plan->deadline_us;
  g_clear_pointer (&gate->plan_barriers, g_hash_table_unref);
  gate->plan_barriers = bg_plan_dup_barriers (plan);
  gate->mode_before_plan = gate->mode;
  gate->mode = BG_SINK_MODE_GATED;
  publish_locked (gate);

  /* Under the lock, so slow-path admits (which record under it) are ordered
   * too; fast-path ones are ordered by the barrier. */
  reader_barrier ();
  char *past = past_barrier_locked (gate);
  g_free (gate->plan_past_reason);
  gate->plan_past_reason = g_strdup (past);
  g_mutex_unlock (&gate->lock);

  if (past == NULL)
    return BG_PREPARE_ARMED;
  g_info ("gate: plan %s armed, but %s", plan->id, past);
  if (reason != NULL)
    *reason = past;
  else
    g_free (past);
  return BG_PREPARE_PAST_BARRIER;
}

bool
bg_gate_prepare (BgGate *gate, const BgPlan *plan)
{
  return bg_gate_prepare_checked (gate, plan, NULL) != BG_PREPARE_REFUSED;
}

/* Whether @id names the latest plan, and it is in @state. */
static bool
plan_is_locked (BgGate *gate, const char *id, BgPlanState state)
{
  return gate->plan_id != NULL && g_strcmp0 (gate->plan_id, id) == 0 && gate->plan_state == state;
}

bool
bg_gate_commit (BgGate *gate, const char *id)
{
  g_return_val_if_fail (gate != NULL, false);
  g_return_val_if_fail (id != NULL, false);

  g_mutex_lock (&gate->lock);
  if (plan_is_locked (gate, id, BG_PLAN_STATE_COMMITTED))
    {
      g_mutex_unlock (&gate->lock);
      return true; /* a replayed decision */
    }
  if (!plan_is_locked (gate, id, BG_PLAN_STATE_PREPARED))
    {
      g_mutex_unlock (&gate->lock);
      return false;
    }

  GHashTableIter iter;
  gpointer k, v;
  g_hash_table_iter_init (&iter, gate->plan_barriers);
  while (g_hash_table_iter_next (&iter, &k, &v))
    {
      gint64 key = *(const gint64 *) k;
      int64_t barrier = *(const gint64 *) v;
      Range cur = range_lookup_locked (gate, key);
      /* Outgoing keeps what it emitted so far, cut at the barrier; incoming
       * takes everything from the barrier on, whatever it had before. */
      Range next = gate->plan_role == BG_PLAN_ROLE_OUTGOING
                       ? range_normalize (cur.lo, MIN (cur.hi, barrier))
                       : range_normalize (barrier, INT64_MAX);
      range_set_locked (gate, key, next);
    }
  /* Every partition the plan does not name has an implicit barrier at 0:
   * the incoming side owns it whole, the outgoing side none of it. */
  {
    GHashTableIter it;
    gpointer rk, rv;
    g_hash_table_iter_init (&it, gate->ranges);
    while (g_hash_table_iter_next (&it, &rk, &rv))
      if (!g_hash_table_contains (gate->plan_barriers, rk))
        *(Range *) rv = gate->plan_role == BG_PLAN_ROLE_OUTGOING ? RANGE_EMPTY : RANGE_FULL;
    gate->default_range = gate->plan_role == BG_PLAN_ROLE_OUTGOING ? RANGE_EMPTY : RANGE_FULL;
  }
  gate->plan_state = BG_PLAN_STATE_COMMITTED;
  gate->mode = BG_SINK_MODE_GATED;
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return true;
}

bool
bg_gate_abort (BgGate *gate, const char *id)
{
  g_return_val_if_fail (gate != NULL, false);
  g_return_val_if_fail (id != NULL, false);

  g_mutex_lock (&gate->lock);
  if (plan_is_locked (gate, id, BG_PLAN_STATE_ABORTED))
    {
      g_mutex_unlock (&gate->lock);
      return true;
    }
  if (!plan_is_locked (gate, id, BG_PLAN_STATE_PREPARED))
    {
      g_mutex_unlock (&gate->lock);
      return false;
    }
  /* Prepare never touched the ranges: dropping the barriers restores them. */
  gate->plan_state = BG_PLAN_STATE_ABORTED;
  g_clear_pointer (&gate->plan_barriers, g_hash_table_unref);
  gate->mode = gate->mode_before_plan;
  g_hash_table_remove_all (gate->holds);
  publish_locked (gate);
  g_mutex_unlock (&gate->lock);
  return true;
}

char *
bg_gate_get_plan (BgGate *gate, BgPlanState *state_out)
{
  g_return_val_if_fail (gate != NULL, NULL);

  g_mutex_lock (&gate->lock);
  char *id = g_strdup (gate->plan_id);
  if (id != NULL && state_out != NULL)
    *state_out = gate->plan_state;
  g_mutex_unlock (&gate->lock);
  return id;
}

gboolean
bg_gate_get_armed (BgGate *gate, const char *id, char **past_reason)
{
  g_return_val_if_fail (gate != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  g_mutex_lock (&gate->lock);
  gboolean armed = plan_is_locked (gate, id, BG_PLAN_STATE_PREPARED);
  if (past_reason != NULL)
    *past_reason = armed ? g_strdup (gate->plan_past_reason) : NULL;
  g_mutex_unlock (&gate->lock);
  return armed;
}

gboolean
bg_gate_get_armed_positions (BgGate *gate, const char *id, char **unnamed_reason, GPtrArray **positions)
{
  g_return_val_if_fail (gate != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  g_mutex_lock (&gate->lock);
  gboolean armed = plan_is_locked (gate, id, BG_PLAN_STATE_PREPARED);
  if (unnamed_reason != NULL)
    *unnamed_reason = armed ? g_strdup (gate->plan_past_unnamed) : NULL;
  if (positions != NULL)
    {
      *positions = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_armed_position_free);
      for (guint i = 0; armed && i < gate->plan_past->len; i++)
        {
          const PastPosition *pp = &g_array_index (gate->plan_past, PastPosition, i);
          BgArmedPosition *ap = g_new0 (BgArmedPosition, 1);
          ap->topic = g_strdup (g_quark_to_string (pp->topic));
          ap->partition = pp->partition;
          ap->position = pp->highest;
          g_ptr_array_add (*positions, ap);
        }
    }
  g_mutex_unlock (&gate->lock);
  return armed;
}

void
bg_armed_position_free (BgArmedPosition *ap)
{
  if (ap == NULL)
    return;
  g_free (ap->topic);
  g_free (ap);
}

static void
set_hold (BgGate *gate, BgTopic *topic, int32_t partition, bool hold)
{
  g_return_if_fail (gate != NULL);
  g_return_if_fail (topic != NULL);

  gint64 key = bg_part_key (topic->quark, partition);
  g_mutex_lock (&gate->lock);
  bool changed = hold ? g_hash_table_add (gate->holds, g_memdup2 (&key, sizeof key))
                      : g_hash_table_remove (gate->holds, &key);
  if (changed)
    publish_locked (gate);
  g_mutex_unlock (&gate->lock);
}

void
bg_gate_hold_partition (BgGate *gate, BgTopic *topic, int32_t partition)
{
  set_hold (gate, topic, partition, true);
}

void
bg_gate_release_partition (BgGate *gate, BgTopic *topic, int32_t partition)
{
  set_hold (gate, topic, partition, false);
}

/* ---- Progress ------------------------------------------------------------------ */

static gint
untracked_position_cmp (gconstpointer a, gconstpointer b)
{
  const BgUntrackedPosition *x = a, *y = b;
  int c = strcmp (x->topic, y->topic);
  return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

int64_t
bg_gate_position (BgGate *gate, BgTopic *topic, int32_t partition)
{
  g_return_val_if_fail (gate != NULL, -1);
  g_return_val_if_fail (topic != NULL, -1);

  if (partition < 0)
    return -1;
  if ((uint32_t) partition >= topic->n_partitions)
    {
      gint64 key = bg_part_key (topic->quark, partition);
      g_mutex_lock (&gate->lock);
      const gint64 *pos = g_hash_table_lookup (gate->untracked_position, &key);
      int64_t position = pos != NULL ? *pos : -1;
      g_mutex_unlock (&gate->lock);
      return position;
    }
  return atomic_load_explicit (&topic->stats[partition].position, memory_order_relaxed);
}

GArray *
bg_gate_dup_untracked_positions (BgGate *gate)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (BgUntrackedPosition));
  GHashTableIter iter;
  gpointer k, v;

  g_return_val_if_fail (gate != NULL, out);
  g_mutex_lock (&gate->lock);
  g_hash_table_iter_init (&iter, gate->untracked_position);
  while (g_hash_table_iter_next (&iter, &k, &v))
    {
      gint64 key = *(const gint64 *) k;
      BgUntrackedPosition up = { g_quark_to_string (bg_part_key_topic (key)), bg_part_key_partition (key),
                                 *(const gint64 *) v };
      if (up.position >= 0)
        g_array_append_val (out, up);
    }
  g_mutex_unlock (&gate->lock);
  g_array_sort (out, untracked_position_cmp);
  return out;
}

void
bg_gate_partition_revoked (BgGate *gate, BgTopic *topic, int32_t partition)
{
  g_return_if_fail (gate != NULL);
  g_return_if_fail (topic != NULL);

  if (partition < 0)
    return;
  if ((uint32_t) partition >= topic->n_partitions)
    {
      /* Its highest (untracked_highest) keeps what was admitted. */
      gint64 key = bg_part_key (topic->quark, partition);
      g_mutex_lock (&gate->lock);
      if (g_hash_table_contains (gate->untracked_position, &key))
        untracked_set_position (gate, key, -1);
      g_mutex_unlock (&gate->lock);
      return;
    }
  PartStats *st = &topic->stats[partition];
  int64_t prev = atomic_load_explicit (&st->position, memory_order_relaxed);
  /* The highest position keeps what was admitted, for arming checks. */
  if (prev > atomic_load_explicit (&st->highest, memory_order_relaxed))
    atomic_store_explicit (&st->highest, prev, memory_order_relaxed);
  atomic_store_explicit (&st->position, -1, memory_order_relaxed);
}

void
bg_gate_partition_resumed (BgGate *gate, BgTopic *topic, int32_t partition, int64_t next_offset)
{
  g_return_if_fail (gate != NULL);
  g_return_if_fail (topic != NULL);

  if (partition < 0 || next_offset <= 0)
    return;
  g_mutex_lock (&gate->lock);
  if ((uint32_t) partition < topic->n_partitions)
    {
      PartStats *st = &topic->stats[partition];
      if (next_offset > atomic_load_explicit (&st->highest, memory_order_relaxed))
        atomic_store_explicit (&st->highest, next_offset, memory_order_relaxed);
      /* A partition without a position (never admitted here, or revoked)
       * is at the resume point: reported, and counted in the lag, from
       * now on, also before its next record (an idle partition). */
      if (atomic_load_explicit (&st->position, memory_order_relaxed) < 0)
        atomic_store_explicit (&st->position, next_offset, memory_order_relaxed);
    }
  else
    {
      gint64 key = bg_part_key (topic->quark, partition);
      gint64 *highest = g_hash_table_lookup (gate->untracked_highest, &key);
      if (highest == NULL)
        {
          gint64 v = next_offset;
          g_hash_table_insert (gate->untracked_highest, g_memdup2 (&key, sizeof key), g_memdup2 (&v, sizeof v));
        }
      else if (next_offset > *highest)
        *highest = next_offset;
      /* As for a tracked partition: without a position, the resume point. */
      const gint64 *pos = g_hash_table_lookup (gate->untracked_position, &key);
      if (pos == NULL || *pos < 0)
        untracked_set_position (gate, key, next_offset);
    }
  /* A plan armed already learns it now: what it found passed grows, and
   * the agent link answers again (bg_gate_get_armed_positions). */
  if (plan_prepared_locked (gate))
    {
      g_free (gate->plan_past_reason);
      gate->plan_past_reason = past_barrier_locked (gate);
      gate->past_serial++;
    }
  g_mutex_unlock (&gate->lock);
}

guint64
bg_gate_past_serial (BgGate *gate)
{
  g_mutex_lock (&gate->lock);
  guint64 serial = gate->past_serial;
  g_mutex_unlock (&gate->lock);
  return serial;
}

static uint64_t
sum_counters (BgGate *gate, bool emitted)
{
  uint64_t total = atomic_load_explicit (emitted ? &gate->untracked_emitted
                                                 : &gate->untracked_dropped,
                                         memory_order_relaxed);
  g_mutex_lock (&gate->lock);
  for (guint t = 0; t < gate->topics->len; t++)
    {
      const BgTopic *topic = g_ptr_array_index (gate->topics, t);
      for (uint32_t p = 0; p < topic->n_partitions; p++)
        {
          /* Emitted first: a concurrent admit can only make admitted larger,
           * never dropped negative. */
          uint64_t e = atomic_load_explicit (&topic->stats[p].emitted, memory_order_acquire);
          uint64_t a = atomic_load_explicit (&topic->stats[p].admitted, memory_order_relaxed);
          total += emitted ? e : a - e;
        }
    }
  g_mutex_unlock (&gate->lock);
  return total;
}

uint64_t
bg_gate_emitted (BgGate *gate)
{
  g_return_val_if_fail (gate != NULL, 0);
  return sum_counters (gate, true);
}

uint64_t
bg_gate_dropped (BgGate *gate)
{
  g_return_val_if_fail (gate != NULL, 0);
  return sum_counters (gate, false);
}

void
bg_gate_set_wait_callback (BgGate *gate, BgGateWaitFunc func, void *user_data)
{
  g_return_if_fail (gate != NULL);

  g_mutex_lock (&gate->lock);
  gate->wait_func = func;
  gate->wait_data = user_data;
  g_mutex_unlock (&gate->lock);
}

bool
bg_gate_is_waiting (BgGate *gate, int64_t *since_us_out)
{
  g_return_val_if_fail (gate != NULL, false);

  g_mutex_lock (&gate->lock);
  /* Waiters join at the tail under the lock, so the head waited longest. */
  GList *head = g_queue_peek_head_link (&gate->waiters);
  bool waiting = head != NULL;
  if (waiting && since_us_out != NULL)
    *since_us_out = *(const int64_t *) head->data;
  g_mutex_unlock (&gate->lock);
  return waiting;
}

/* ---- For the agent link (client.c) ----------------------------------------------- */

void
bg_gate_set_client (BgGate *gate, gpointer client, GDestroyNotify destroy)
{
  g_return_if_fail (gate != NULL);

  g_mutex_lock (&gate->lock);
  gate->client = client;
  gate->client_destroy = destroy;
  g_mutex_unlock (&gate->lock);
}

gpointer
bg_gate_get_client (BgGate *gate)
{
  g_return_val_if_fail (gate != NULL, NULL);

  g_mutex_lock (&gate->lock);
  gpointer client = gate->client;
  g_mutex_unlock (&gate->lock);
  return client;
}

GPtrArray *
bg_gate_dup_topics (BgGate *gate)
{
  g_return_val_if_fail (gate != NULL, NULL);

  g_mutex_lock (&gate->lock);
  GPtrArray *topics = g_ptr_array_sized_new (gate->topics->len);
  for (guint t = 0; t < gate->topics->len; t++)
    g_ptr_array_add (topics, g_ptr_array_index (gate->topics, t));
  g_mutex_unlock (&gate->lock);
  return topics;
}

int32_t
bg_topic_n_partitions (const BgTopic *topic)
{
  g_return_val_if_fail (topic != NULL, 0);
  return (int32_t) topic->n_partitions;
}

/* ---- Test hooks ------------------------------------------------------------------ */

guint
bg_gate_debug_n_buffers (BgGate *gate)
{
  g_mutex_lock (&gate->lock);
  guint n = gate->n_buffers;
  g_mutex_unlock (&gate->lock);
  return n;
}

guint64
bg_gate_debug_n_publishes (BgGate *gate)
{
  g_mutex_lock (&gate->lock);
  guint64 n = gate->n_publishes;
  g_mutex_unlock (&gate->lock);
  return n;
}
