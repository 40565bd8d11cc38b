/* cutover.h — the fleet-wide cutover's state machine, one per job on each
 * host (docs/protocol.md, "The two-phase cutover").
 *
 * Everything is driven by what is read back from the control log, never by
 * what was sent: the coordinator acts on its own prepare when it reads it,
 * like every participant. States of the job's current cutover:
 *
 *   IDLE → PREPARED (read a prepare naming this host) → COMMITTED | ABORTED
 *   COMMITTED → DONE (every barrier partition handed over)
 *
 * The first decision (commit/abort) read for an id wins; later ones,
 * decisions for unknown ids and prepares while another is in flight are
 * logged and ignored. The module has no D-Bus or Kafka of its own: it asks
 * its owner (the job) to append messages and to steer the local slots
 * through BgdCutoverOps, which is what lets the unit tests drive it with
 * decoded messages alone.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "common/control-codec.h"

G_BEGIN_DECLS

typedef enum {
  BGD_CUTOVER_IDLE,
  BGD_CUTOVER_PREPARED,
  BGD_CUTOVER_COMMITTED,
  BGD_CUTOVER_ABORTED,
  BGD_CUTOVER_DONE,
} BgdCutoverState;

const char *bgd_cutover_state_to_string (BgdCutoverState state);

/* Cutover ids remembered per job, each list capped (issue 8: a flood of
 * garbage prepares/decisions must not grow the agent): decided ids for
 * "first decision wins", and prepares ignored (not a participant, another
 * cutover in flight). The oldest id is forgotten first; a forgotten id's
 * late duplicate is still harmless, since a decision only ever applies to
 * the current plan, and the current plan is never forgotten. */
#define BGD_CUTOVER_REMEMBERED_IDS 64
/* At most one done per this interval per cutover: partitions that become
 * done meanwhile go into the next one (ReportDelivered may come every few
 * ms while the outgoing side flushes). */
#define BGD_CUTOVER_DONE_INTERVAL_USEC (20 * 1000)

typedef struct {
  char *id;
  char *job;
  char *coordinator;
  BgColor outgoing;
  BgColor incoming;
  gint64 deadline;         /* wall clock µs */
  GPtrArray *barriers;     /* of BgControlOffset* */
  char **participants;
  gint64 prepare_offset;   /* where the prepare is in the log */
  BgdCutoverState state;
  char *reason;            /* of an abort */
  gint64 read_at;          /* wall clock µs when the prepare was read */
  gint64 finished_at;      /* ... when it ended (aborted or done) */
  gint64 prepared_at;      /* the prepare's own timestamp (its sender's wall clock µs) */
  /* From the prepare's timestamp to reading the last ack, µs; 0 until
   * every participant's ack is read. The coordinator's own figure
   * (same clock) is what a later cutover's lead learns from. */
  gint64 armed_after;
  /* Of an abort the coordinator retries (see "Attempts" below): the next
   * attempt's id; NULL otherwise. */
  char *retry_id;
} BgdCutoverPlan;

/* Frees @p and every field it has (NULL ones are fine). */
void bgd_cutover_plan_free (BgdCutoverPlan *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdCutoverPlan, bgd_cutover_plan_free)

typedef struct {
  /* Appends @msg (taken) to the control log. */
  void (*append) (gpointer data, BgControlMessage *msg);
  /* A prepare naming this host was read (also while replaying, and when
   * its deadline has passed): the job enters its cutting-over phase. No
   * steering here. */
  void (*prepared) (gpointer data, const BgdCutoverPlan *plan);
  /* Arm both local slots with the plan (never while replaying, never past
   * the deadline). FALSE with *@reason (g_malloc'd) if they cannot be
   * armed. */
  gboolean (*arm) (gpointer data, const BgdCutoverPlan *plan, char **reason);
  void (*commit) (gpointer data, const BgdCutoverPlan *plan);
  void (*abort) (gpointer data, const BgdCutoverPlan *plan);
  /* The incoming side may release (topic, partition). */
  void (*release) (gpointer data, const BgdCutoverPlan *plan, const char *topic, gint32 partition);
  /* Every barrier partition is handed over. */
  void (*done) (gpointer data, const BgdCutoverPlan *plan);
  /* The local slot of @color's delivered offset on (topic, partition), or
   * -1 if it reported none. */
  gint64 (*delivered) (gpointer data, BgColor color, const char *topic, gint32 partition);
  /* This host coordinated @plan, which the log aborted with a retry mark:
   * start the next attempt (plan->retry_id) with a doubled lead. Never
   * while replaying. May be NULL (no retries). */
  void (*retry) (gpointer data, const BgdCutoverPlan *plan);
} BgdCutoverOps;

/* Attempts. An instance that passed its barrier before it was armed (a
 * slow host, a lead too short for the traffic) makes its host nack with a
 * "past barrier" reason and the attempt aborts; nothing was emitted twice,
 * but the operator asked for a cutover. Its coordinator then retries with
 * a doubled lead, up to [Cutover] Attempts= in all. The operator-visible
 * id is the first attempt's; later attempts are "<id>.2", "<id>.3" on the
 * control topic. The coordinator's abort of an attempt it will retry
 * carries the mark in its reason ("retrying as <id>.2: host b: ..."), so
 * every host knows from the first decision in the log alone that the
 * cutover goes on, and keeps CutoverFinished for the last attempt. */
#define BGD_CUTOVER_RETRY_PREFIX "retrying as "
#define BGD_CUTOVER_MAX_ATTEMPTS 16

/* "<id>" of "<id>.N" (N >= 2), else a copy of @attempt_id. */
char *bgd_cutover_operator_id (const char *attempt_id);
/* N of "<id>.N", 1 for a first attempt. */
guint bgd_cutover_attempt (const char *attempt_id);
/* "<id>.(N+1)". */
char *bgd_cutover_next_attempt_id (const char *attempt_id);
/* Whether a nack reason says an instance was past a barrier. */
gboolean bgd_cutover_reason_is_past_barrier (const char *reason);

typedef struct _BgdCutover BgdCutover;

/* Where the machine gets its time and timers from: GLib's (wall and
 * monotonic clocks, g_timeout_add on the default main context) unless a
 * clock is set. The protocol simulator (tests/sim) sets one to run many
 * hosts in simulated time, deterministically. Every field is required. */
typedef struct {
  gint64 (*real_time) (gpointer data);      /* wall clock µs */
  gint64 (*monotonic_time) (gpointer data); /* monotonic µs */
  /* Calls @func (@func_data) once after @ms; returns a non-zero id. */
  guint (*timeout_add) (gpointer data, guint ms, GSourceFunc func, gpointer func_data);
  void (*source_remove) (gpointer data, guint id);
} BgdCutoverClock;

BgdCutover *bgd_cutover_new (const char *host, const char *job, const BgdCutoverOps *ops, gpointer data);
void bgd_cutover_free (BgdCutover *cut);
/* Replaces GLib's clock and timers (before the first message is fed). */
void bgd_cutover_set_clock (BgdCutover *cut, const BgdCutoverClock *clock, gpointer data);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdCutover, bgd_cutover_free)

/* While replaying, this host appends nothing and arms nothing: it only
 * applies the decisions it reads (its slots keep the steering persisted
 * before a restart, which may be a prepared plan it acked). Once
 * replayed, whatever the log left open is taken up: an unanswered
 * prepared plan is armed and answered (or aborted if past its deadline),
 * the coordinator decides on the acks/nacks it read, a committed plan
 * looks for partitions done. Starts TRUE. */
void bgd_cutover_set_replaying (BgdCutover *cut, gboolean replaying);

/* How many attempts a cutover this host coordinates gets in all (>= 1;
 * default 1: no retries). */
void bgd_cutover_set_max_attempts (BgdCutover *cut, guint attempts);

/* Feeds one message of this job read from the log at @offset. */
void bgd_cutover_handle (BgdCutover *cut, const BgControlMessage *msg, gint64 offset);

/* A local instance of @color answered PlanArmed (an older library: no
 * positions; one past a barrier answers not ok). */
void bgd_cutover_plan_armed (BgdCutover *cut, BgColor color, const char *id, gboolean ok,
                             const char *reason);
/* ... or PlanArmedAt: @positions (BgControlOffset*, may be NULL) are the
 * highest positions it had admitted past barriers of the plan. This host's
 * ack carries the largest of them per partition, and the coordinator's
 * commit moves each barrier up to the largest position acked for it
 * (docs/protocol.md, "Barriers"). */
void bgd_cutover_plan_armed_at (BgdCutover *cut, BgColor color, const char *id, gboolean ok,
                                const char *reason, const GPtrArray *positions);
/* A local instance reported delivered offsets: look for partitions done. */
void bgd_cutover_check_delivered (BgdCutover *cut);
/* The deadline timer: appends abort if the plan is still undecided at
 * @now (wall clock µs). Called by the module's own timer; public for tests. */
void bgd_cutover_check_deadline (BgdCutover *cut, gint64 now);

/* Builds the prepare this host appends as coordinator (the id is new). */
BgControlMessage *bgd_cutover_make_prepare (BgdCutover *cut, BgColor outgoing, BgColor incoming,
                                            GPtrArray *barriers, gint64 deadline,
                                            const char *const *participants);
/* Operator abort: appends abort if undecided; FALSE otherwise. */
gboolean bgd_cutover_request_abort (BgdCutover *cut, const char *reason);

/* The current (or last) plan, NULL if none. */
const BgdCutoverPlan *bgd_cutover_get_plan (BgdCutover *cut);
/* Whether a cutover is in flight (prepared or committed, not yet done). */
gboolean bgd_cutover_in_flight (BgdCutover *cut);
/* The log offset replay must restart from for this job, -1 if none. */
gint64 bgd_cutover_pinned_offset (BgdCutover *cut);
/* How many cutover ids are remembered (decided plus ignored), for tests of
 * the cap. */
guint bgd_cutover_n_remembered (BgdCutover *cut);

G_END_DECLS
