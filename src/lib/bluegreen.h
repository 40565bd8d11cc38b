/* bluegreen.h — the job-side library of bluegreen.
 *
 * A stream-processing job links libbluegreen and asks the *gate*, for every
 * result it is about to produce, whether to emit it or to drop it
 * ("blackhole"). The decision depends only on the input record that caused
 * the result: (topic, partition, offset). The agent (bluegreend) steers the
 * gate; between two versions of a job it moves the switch to the same input
 * offset on every partition, so exactly one version emits each result.
 *
 * The hot path, bg_gate_admit(), takes no lock and allocates nothing. All
 * other calls may come from any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BG_API __attribute__((visibility("default")))

typedef struct _BgGate BgGate;

/* A topic handle, resolved once with bg_gate_topic(); never a string on the
 * hot path. Valid as long as the gate lives. */
typedef struct _BgTopic BgTopic;

typedef enum {
  BG_VERDICT_DROP = 0, /* blackhole the result */
  BG_VERDICT_EMIT = 1, /* produce the result to the real sink */
  BG_VERDICT_WAIT = 2, /* only from bg_gate_try_admit(): the decision is pending */
} BgVerdict;

typedef enum {
  BG_SINK_MODE_UNKNOWN = 0, /* nothing known yet: admit waits (never emits on a guess) */
  BG_SINK_MODE_LIVE,        /* emit everything */
  BG_SINK_MODE_BLACKHOLE,   /* emit nothing */
  BG_SINK_MODE_GATED,       /* a cutover plan is armed or committed: per-partition ranges */
} BgSinkMode;

typedef enum {
  BG_PLAN_ROLE_OUTGOING = 0, /* emits below the barrier */
  BG_PLAN_ROLE_INCOMING = 1, /* emits at or above the barrier */
} BgPlanRole;

typedef enum {
  BG_PLAN_STATE_PREPARED = 0,  /* armed: records at or past a barrier wait */
  BG_PLAN_STATE_COMMITTED = 1, /* decision recorded: ranges apply */
  BG_PLAN_STATE_ABORTED = 2,   /* decision recorded: back to the previous ranges */
} BgPlanState;

/* ---- Gate lifetime ----------------------------------------------------- */

/* A new gate in @initial_mode. Jobs steered by an agent start in
 * BG_SINK_MODE_UNKNOWN; stand-alone jobs in BG_SINK_MODE_LIVE. */
BG_API BgGate *bg_gate_new (BgSinkMode initial_mode);
BG_API void bg_gate_free (BgGate *gate);

/* Resolves @name to a handle, registering it with room for @n_partitions
 * partitions (partitions 0 .. n_partitions-1 are tracked; a record on a
 * higher partition is still admitted, by the mode, but not tracked).
 * Calling it again with the same name returns the same handle.
 * Returns NULL if @name is empty or @n_partitions is not in 1..65536. */
BG_API BgTopic *bg_gate_topic (BgGate *gate, const char *name, int32_t n_partitions);
BG_API const char *bg_topic_name (const BgTopic *topic);

/* ---- The hot path ------------------------------------------------------- */

/* EMIT or DROP for the result caused by input record (topic, partition,
 * offset >= 0). If the decision is not known yet (a prepared plan and
 * offset >= barrier, the mode UNKNOWN, or a partition held for the ordered
 * handoff) it blocks until it is. Records its position and counters.
 * One thread per (topic, partition) at a time: Kafka consumers process a
 * partition in order on one thread, and positions rely on it. */
BG_API BgVerdict bg_gate_admit (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset);

/* As bg_gate_admit() but never blocks: returns BG_VERDICT_WAIT instead
 * (and records nothing for that record). */
BG_API BgVerdict bg_gate_try_admit (BgGate *gate, BgTopic *topic, int32_t partition, int64_t offset);

/* Whether non-sink side effects (schema registration, HTTP calls, ...) are
 * allowed now: true only while this gate would emit on every partition
 * (mode LIVE, or a committed plan whose ranges are open-ended). */
BG_API bool bg_gate_side_effects_allowed (BgGate *gate);

/* ---- Steering (the agent side; any thread) ------------------------------ */

/* Replaces every range: LIVE is the full range on every partition, BLACKHOLE
 * the empty one, UNKNOWN makes admit wait. Clears the holds. This is also how
 * the agent applies a manual flip. Returns false (and changes nothing) for
 * BG_SINK_MODE_GATED (that mode comes from plans only) and while a plan is
 * PREPARED: only its decision may end it. */
BG_API bool bg_gate_set_mode (BgGate *gate, BgSinkMode mode);
BG_API BgSinkMode bg_gate_get_mode (BgGate *gate);

typedef struct _BgPlan BgPlan;

/* A cutover plan: an id, this slot's role, a deadline (CLOCK_REALTIME,
 * microseconds; informative only — the gate never decides on its own),
 * and barrier offsets per (topic, partition). */
BG_API BgPlan *bg_plan_new (const char *id, BgPlanRole role, int64_t deadline_us);
BG_API void bg_plan_free (BgPlan *plan);
/* Returns false on a negative partition or offset. */
BG_API bool bg_plan_add_barrier (BgPlan *plan, const char *topic, int32_t partition, int64_t offset);

/* Arms @plan as PREPARED on top of the current ranges. Offsets below a
 * barrier follow the current ranges; at or past it they wait for the
 * decision. A partition the plan names no barrier for (of any topic: one
 * added after the plan was made, or missing from its partition list) has an
 * implicit barrier at offset 0: every record there waits, and after the
 * commit it belongs to the incoming side whole — never to nobody, never to
 * both.
 * The gate copies what it needs; @plan stays the caller's.
 * Returns false if another plan is still PREPARED, or the mode is UNKNOWN
 * (the slot's ranges must be known before a plan is armed on top of them). */
BG_API bool bg_gate_prepare (BgGate *gate, const BgPlan *plan);
/* The outcome of bg_gate_prepare_checked(). */
typedef enum {
  BG_PREPARE_ARMED = 0,        /* armed, and no barrier was passed: the switch is exact */
  BG_PREPARE_PAST_BARRIER = 1, /* armed, but this instance already admitted a record at or
                                * past a barrier (outgoing: emitted it; incoming: dropped it) */
  BG_PREPARE_REFUSED = 2,      /* not armed (as bg_gate_prepare() returning false) */
} BgPrepareResult;

/* bg_gate_prepare(), and whether this instance has already passed a barrier
 * of @plan: the highest position ever admitted on a barrier partition
 * (positions may go back after a rebalance; the highest does not) is above
 * the barrier, or a record was admitted on a partition the plan does not
 * name (its implicit barrier is 0). Under an agent, a barrier passed this
 * way is reported and moved up by the commit (see docs/protocol.md). The check is exact against concurrent bg_gate_admit() calls:
 * a record admitted under the old ranges either shows in the positions
 * checked here, or waits for the decision. On BG_PREPARE_PAST_BARRIER the
 * plan stays armed (only its decision, which must then be abort, ends it).
 * For anything but BG_PREPARE_ARMED, *@reason (if not NULL) is set to a
 * description, e.g. "past barrier clicks/3: position 1042 > 1040"; free it
 * with free(). Takes a few microseconds (a process-wide memory barrier). */
BG_API BgPrepareResult bg_gate_prepare_checked (BgGate *gate, const BgPlan *plan, char **reason);

/* Decides the prepared plan @id. Commit turns it into the slot's ranges
 * (outgoing: [.., barrier), incoming: [barrier, ..); on partitions the plan
 * does not name, outgoing nothing and incoming everything); abort restores the
 * previous ranges (and mode) and clears the holds. Waiters wake up.
 * Returns false if @id is not the prepared plan; true without a change if
 * @id is the latest plan and already has that decision (a replayed log). */
BG_API bool bg_gate_commit (BgGate *gate, const char *id);
BG_API bool bg_gate_abort (BgGate *gate, const char *id);
/* The id and state of the latest plan, or NULL if none (caller frees id). */
BG_API char *bg_gate_get_plan (BgGate *gate, BgPlanState *state_out);

/* Ordered handoff: hold (topic, partition) for the incoming side of a plan
 * until the outgoing side has delivered everything below the barrier; while
 * held, records at or past the barrier of the latest prepared or committed
 * plan wait (a hold on a partition that plan has no barrier for does
 * nothing). It may be set before or after the commit. Release lifts it;
 * abort and bg_gate_set_mode() clear all holds. */
BG_API void bg_gate_hold_partition (BgGate *gate, BgTopic *topic, int32_t partition);
BG_API void bg_gate_release_partition (BgGate *gate, BgTopic *topic, int32_t partition);

/* ---- Progress ------------------------------------------------------------ */

/* The next offset after the last admitted record on (topic, partition),
 * or -1 if none was admitted. Also for a partition beyond the topic's
 * registered count (one added to the topic after bg_gate_topic()): it is
 * admitted on a slower path, and reported to the agent like the others. */
BG_API int64_t bg_gate_position (BgGate *gate, BgTopic *topic, int32_t partition);
/* The job no longer consumes (topic, partition) (its consumer group moved
 * it to another instance): its position goes back to -1, so it is no
 * longer reported and no longer counts in this instance's lag (a stale
 * position there would grow the lag for ever). What was admitted still
 * counts when a plan is armed. Call it from the thread that admits the
 * partition, e.g. in the rebalance callback. */
BG_API void bg_gate_partition_revoked (BgGate *gate, BgTopic *topic, int32_t partition);
/* The job takes (topic, partition) over and resumes it at @next_offset,
 * without admitting the records below it (another instance of this version
 * processed them: its consumer group's committed offset, a restore from a
 * changelog or savepoint). For the gate they count as admitted: a cutover
 * barrier below @next_offset is passed, and says so when a plan is armed
 * (then the commit moves the barrier up to it). Without this call a barrier
 * between the barrier and @next_offset would be emitted twice or never.
 * A partition without a position (revoked, or new here) takes
 * @next_offset as its position. Call it before admitting the first record
 * of the partition, also when the job takes back a partition it had
 * (then @next_offset is where its own state resumes). */
BG_API void bg_gate_partition_resumed (BgGate *gate, BgTopic *topic, int32_t partition, int64_t next_offset);
BG_API uint64_t bg_gate_emitted (BgGate *gate);
BG_API uint64_t bg_gate_dropped (BgGate *gate);

/* Called from the waiting thread about every 100 ms while a record waits for
 * a decision, with how long it has waited so far. It runs without the gate's
 * lock held, so it may call the gate (e.g. bg_gate_is_waiting()). A deadline
 * passing does not end the wait; only commit, abort, release or a new mode
 * does. */
typedef void (*BgGateWaitFunc) (BgGate *gate, BgTopic *topic, int32_t partition,
                                int64_t offset, int64_t waited_us, void *user_data);
BG_API void bg_gate_set_wait_callback (BgGate *gate, BgGateWaitFunc func, void *user_data);
/* Whether some thread is waiting now, and since when (CLOCK_MONOTONIC µs). */
BG_API bool bg_gate_is_waiting (BgGate *gate, int64_t *since_us_out);

/* ---- The agent link -------------------------------------------------------- */

/* A gate for a job started by bluegreend, or for one running on its own.
 *
 * Without BLUEGREEN_SLOT in the environment: a stand-alone gate in the mode
 * of BLUEGREEN_SINK_MODE ("live" by default, or "blackhole").
 *
 * With BLUEGREEN_SLOT (the slot's object path): a gate in
 * BG_SINK_MODE_UNKNOWN — admit waits, it never emits on a guess — linked to
 * the agent (org.bluegreen.Agent1) on the bus BLUEGREEN_BUS names ("system"
 * or "session", the default; the session bus is found from
 * DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus). The link runs in its
 * own thread (the job needs no main loop): it fetches the slot's steering
 * (sink mode, ranges, cutover plan, holds) at start, whenever the agent
 * changes it and whenever the agent comes back, and reports the gate's
 * positions and counters about every 500 ms while they change (and every
 * few seconds anyway). If the agent or the bus goes away, the gate keeps the
 * last steering it had; the link retries with backoff and logs the first
 * failure of a kind once on stderr. A bus that cannot be reached at start is
 * not an error: the gate waits for it.
 *
 * Returns NULL on a bad environment (an invalid BLUEGREEN_SLOT,
 * BLUEGREEN_BUS or BLUEGREEN_SINK_MODE) with *@error_message (if not NULL)
 * set to a description; free it with free(). bg_gate_free() stops the link. */
BG_API BgGate *bg_gate_new_from_env (char **error_message);

/* The slot's object path, or NULL for a stand-alone gate. */
BG_API const char *bg_gate_get_slot_path (BgGate *gate);

/* Called in the link's thread when the agent asks for a savepoint in
 * @directory (an existing directory the agent chose). The job writes the
 * savepoint consistently from its own processing loop — so the handler
 * should only hand the request over, not block — and answers with
 * bg_gate_savepoint_done(). Without a handler the agent is told at once
 * that this job cannot write savepoints. */
typedef void (*BgSavepointFunc) (BgGate *gate, const char *directory, void *user_data);
BG_API void bg_gate_set_savepoint_handler (BgGate *gate, BgSavepointFunc func, void *user_data);

/* The answer to a savepoint request: whether the savepoint in @directory
 * is complete, and a message for the operator (may be NULL). Any thread.
 * Does nothing on a stand-alone gate. */
BG_API void bg_gate_savepoint_done (BgGate *gate, const char *directory, bool ok,
                                    const char *message);

/* Tells the agent that every result caused by input offsets below
 * @next_offset on (@topic, @partition) has been delivered (acknowledged by
 * the sink; with a transactional producer: committed — call it after
 * commit_transaction() returned, never from a delivery report, see
 * docs/protocol.md "Transactional jobs"). The ordered handoff of a cutover waits for it: the incoming
 * version releases a partition only once the outgoing one has delivered
 * everything below the barrier, so call it promptly (e.g. after every
 * poll of the producer that leaves nothing in flight). Values only grow
 * (a lower one is ignored). Reports are coalesced and sent about every
 * 10 ms while they change. Any thread; never blocks. Does nothing on a
 * stand-alone gate. */
BG_API void bg_gate_report_delivered (BgGate *gate, BgTopic *topic, int32_t partition,
                                      int64_t next_offset);

/* Reports positions and counters to the agent now rather than at the next
 * tick (e.g. after a batch, or before a clean exit). Any thread; does not
 * wait for the report to be sent. Does nothing on a stand-alone gate. */
BG_API void bg_gate_report_now (BgGate *gate);

#ifdef __cplusplus
}
#endif
