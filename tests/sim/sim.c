/* sim.c — a deterministic simulation of bluegreen's fleet-wide cutover
 * (docs/sim.md).
 *
 * One process, simulated time, one seeded PRNG. A fleet of hosts, each with
 * an agent and job instances of both colors, a control log, an input topic
 * and the faults of a real fleet, all scheduled as events in simulated
 * time. What runs is the project's own code: the cutover state machine
 * (BgdCutover, with an injected clock), sticky membership (BgdMembership),
 * the steering steps (steering.c), the history rules (history.c: replay
 * filter, ControlOffset=, write-ahead) and, in every instance, a real
 * BgGate fed by bg_client_apply_steering() from its slot's steering. The
 * glue that the agent has in job.c, slot.c and agent.c (which op changes
 * which slot, what is persisted when, what a GetSteering reply carries) is
 * mirrored here in a few lines per op, and the job side follows the
 * example job (consume, ask the gate, produce, commit only what is
 * delivered, report delivered offsets).
 *
 * The oracle: every input offset is emitted by exactly one color (no gap,
 * no cross-version duplicate), in per-partition order across colors (the
 * ordered handoff), and every cutover ends once the faults stop.
 *
 * Usage: sim [--seed N] [--seeds COUNT] [--trace] [--stats]
 *   --seed N --trace replays seed N and prints every event.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/control-codec.h"
#include "daemon/cutover.h"
#include "daemon/fleet-plans.h"
#include "daemon/history.h"
#include "daemon/membership.h"
#include "daemon/steering.h"
#include "lib/bluegreen.h"
#include "lib/client-private.h"
#include "lib/gate-private.h"

#define JOB "j"
#define TOPIC "in"
/* A second job on every host: no instances, its cutovers arm and hand over
 * at once. It is there for what a second job does to the first: its
 * cutover in flight pins where the agent's replay starts, so the first
 * job's own history is read again after a restart. */
#define JOB2 "k"
#define TOPIC2 "kin"
#define MAX_HOSTS 4
#define MAX_INST 2      /* instances per color per host */
#define MAX_PARTS 8
#define T0 ((gint64) 1800000000 * G_USEC_PER_SEC) /* the simulated wall clock's start */
#define MS 1000
#define SEC G_USEC_PER_SEC
#define SILENCE_USEC (3 * SEC)       /* a host whose last hello is older is silent */
#define HELLO_USEC (1 * SEC)
#define FAULTS_USEC (6 * SEC)        /* faults and operator actions happen before this */
#define PRODUCE_END_USEC (FAULTS_USEC + 2 * SEC)
#define END_USEC (FAULTS_USEC + 9 * SEC)

typedef enum {
  EV_LOG_LAND,    /* an appended message reaches the log */
  EV_LOG_READ,    /* an agent reads the next log entry */
  EV_TIMER,       /* a cutover machine's timer */
  EV_IDLE_SAVE,   /* the agent's idle callback saves its state */
  EV_ARM_POLL,    /* job.c's arm_wait_cb */
  EV_HELLO,
  EV_AGENT_START,
  EV_JOIN,        /* a late host's Deploy of the live version (retried while Busy) */
  EV_PRODUCE,     /* a record is appended to an input partition */
  EV_SAMPLE,      /* the coordinators' high-watermark sample */
  EV_STEP,        /* an instance processes its next record on a partition */
  EV_LAND,        /* a result an instance produced is acknowledged */
  EV_FETCH,       /* the agent answers an instance's GetSteering */
  EV_FETCH_REPLY, /* the instance applies the reply */
  EV_ARMED,       /* PlanArmed reaches the agent */
  EV_PROGRESS,    /* ReportProgress (applied generation) reaches the agent */
  EV_DELIVERED,   /* ReportDelivered reaches the agent */
  EV_INST_START,
  EV_REBALANCE,
  EV_FAULT,
  EV_CRASH,       /* an agent crashes right after publishing a steering */
  EV_K_ARMED,     /* the second job's instances confirm its plan */
  EV_K_DELIVERED, /* the second job's outgoing side has delivered everything */
  EV_EVICT,
  EV_FAULTS_END,
  EV_PRODUCE_END,
  EV_END,
} EvType;

static const char *const ev_names[] = {
  "log-land", "log-read", "timer", "idle-save", "arm-poll", "hello", "agent-start", "join", "produce", "sample",
  "step", "land", "fetch", "fetch-reply", "armed", "progress", "delivered", "inst-start", "rebalance",
  "fault", "crash", "k-armed", "k-delivered", "evict", "faults-end", "produce-end", "end",
};

typedef enum {
  F_AGENT_CRASH, F_AGENT_SILENT, F_INST_CRASH, F_REBALANCE, F_ADD_PARTITION, F_LOG_DELAY,
  F_HOST_DIES, F_CUTOVER, F_ABORT, F_AGENT_CRASH_STEP, F_N
} FaultKind;

static const char *const fault_names[] = {
  "agent-crash", "agent-silent", "instance-crash", "rebalance", "add-partition", "log-delay",
  "host-dies", "cutover", "abort", "agent-crash-step",
};

typedef enum { P_REGULAR, P_SPARSE, P_QUIET, P_LATE } PartKind;
static const char *const part_kind_names[] = { "regular", "sparse", "quiet", "late" };

typedef struct {
  gint64 t;
  guint64 seq;
  EvType type;
  int host, color, inst, part;
  guint epoch;
  gint64 a, b;
  char *s, *s2;
  BgControlMessage *msg;
  GVariant *v;
} Event;

typedef struct _Sim Sim;
typedef struct _Agent Agent;

typedef struct {
  Agent *agent;
  int host, color, idx;
  gboolean running;
  guint epoch;
  guint flushes[MAX_PARTS];
  BgGate *gate;
  BgTopic *topic;
  GHashTable *applied_holds;
  guint64 applied_gen;
  GVariant *applied_reply;    /* the steering last applied */
  guint64 answered_serial;    /* the gate's past serial when it last answered */
  gboolean fetch_in_flight, refetch;
  gboolean owns[MAX_PARTS];
  gint64 pos[MAX_PARTS];
  gboolean step_scheduled[MAX_PARTS];
  gboolean waiting[MAX_PARTS];
  GQueue inflight[MAX_PARTS]; /* of gint64* offsets produced, not yet acknowledged */
  gint64 last_land[MAX_PARTS];
  gint64 delivered[MAX_PARTS];
  gint64 reported[MAX_PARTS]; /* the client's delivered table: only grows */
  gboolean report_pending[MAX_PARTS];
} Inst;

typedef struct {
  BgdSteering *st;
  guint64 gen;
  guint64 applied_gen;
  gint64 delivered[MAX_PARTS];
  gboolean active;
} Slot;

typedef struct {
  gboolean valid;
  BgdSteering *st[2];
  guint64 gen[2];
  int live;
  gint64 job_offset; /* the job's ControlOffset= */
  gint64 job2_offset; /* the second job's */
  gint64 start;      /* where the agent's replay starts */
  char *fp;          /* FleetCommitted= */
  gboolean joined;   /* a late host's slots were deployed */
} Disk;

typedef struct {
  GSourceFunc func;
  gpointer data;
} Timer;

struct _Agent {
  Sim *sim;
  int id;
  char name[16];
  gboolean exists; /* joined the fleet */
  gboolean dead;   /* gone for good (evicted) */
  gboolean up;
  guint epoch;
  gboolean replaying;
  gboolean insts_started;
  BgdMembership *m; /* persisted: survives restarts */
  BgdFleetPlans *fp; /* the last commit read, whoever took part; persisted (FleetCommitted=) */
  gboolean joiner;   /* joins the fleet late: deploys once the log is replayed */
  gboolean joined;   /* ... and has (its slots are steered, its hellos name a live color) */
  BgdCutover *cut;
  BgdCutover *cut2; /* the second job's */
  gint64 read_pos, replay_end, replay_from, replay2_from;
  gboolean reading;
  gint64 slow_until;
  gint64 skew;
  Slot slots[2];
  int live;
  Disk disk;
  GHashTable *timers; /* id → Timer* */
  guint next_timer;
  char *arm_pending;
  gboolean arm_poll;
  gboolean idle_save;
  gboolean crash_after_publish; /* crash within a millisecond of the next steering published */
  char *pending_id;
  gint64 last_append;
  Inst inst[2][MAX_INST];
};

struct _Sim {
  guint64 seed;
  gboolean trace;
  GRand *rng;
  gint64 now;
  guint64 seq;
  GPtrArray *heap; /* of Event*, a binary min-heap on (t, seq) */
  GPtrArray *log;  /* of BgControlMessage*, the control log */
  int n_hosts, n_inst;
  Agent agents[MAX_HOSTS];
  int n_parts;
  PartKind kind[MAX_PARTS];
  double rate[MAX_PARTS]; /* records per second */
  gint64 hw[MAX_PARTS];
  gint64 sample_hw[2][MAX_PARTS];
  gint64 sample_t[2];
  gboolean producing;
  gboolean quiet_stopped, late_started;
  gint64 committed[2][MAX_PARTS];
  Inst *owner[2][MAX_PARTS];
  guint rotation[2];
  GByteArray *emitted[MAX_PARTS]; /* per offset: bit 1 << color landed */
  gint64 max_landed[2][MAX_PARTS];
  gint64 deadline_usec;
  guint max_attempts;
  gboolean late_join_early;
  gboolean multi_instance;
  guint n_cutovers_started;
  guint n_prepares, n_commits, n_aborts, n_dones;
  gboolean faults_over;
  gint64 k_delivered_at; /* when the second job's outgoing side has delivered everything */
  GString *faults; /* what the seed drew: the replayable trace's summary */
  char *violation;
  guint stalls; /* cutovers waiting for traffic that stopped below a barrier (issue 15) */
};

static const BgdCutoverOps sim_cutover_ops;
static const BgdCutoverClock sim_clock;

/* ---- randomness, events ---------------------------------------------------------- */

static gint64
rnd (Sim *sim, gint64 lo, gint64 hi)
{
  return lo + (gint64) (g_rand_double (sim->rng) * (double) (hi - lo + 1));
}

static gboolean
chance (Sim *sim, double p)
{
  return g_rand_double (sim->rng) < p;
}

static gboolean
ev_before (const Event *a, const Event *b)
{
  return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static Event *
ev_push (Sim *sim, EvType type, gint64 t)
{
  Event *e = g_new0 (Event, 1);
  guint i;

  e->t = MAX (t, sim->now);
  e->seq = sim->seq++;
  e->type = type;
  e->host = e->color = e->inst = e->part = -1;
  g_ptr_array_add (sim->heap, e);
  i = sim->heap->len - 1;
  while (i > 0)
    {
      guint parent = (i - 1) / 2;
      if (!ev_before (sim->heap->pdata[i], sim->heap->pdata[parent]))
        break;
      Event *tmp = sim->heap->pdata[i];
      sim->heap->pdata[i] = sim->heap->pdata[parent];
      sim->heap->pdata[parent] = tmp;
      i = parent;
    }
  return e;
}

static Event *
ev_pop (Sim *sim)
{
  Event *top;
  guint i = 0, n;

  if (sim->heap->len == 0)
    return NULL;
  top = sim->heap->pdata[0];
  sim->heap->pdata[0] = sim->heap->pdata[sim->heap->len - 1];
  g_ptr_array_set_size (sim->heap, sim->heap->len - 1);
  n = sim->heap->len;
  for (;;)
    {
      guint l = 2 * i + 1, r = l + 1, m = i;
      if (l < n && ev_before (sim->heap->pdata[l], sim->heap->pdata[m]))
        m = l;
      if (r < n && ev_before (sim->heap->pdata[r], sim->heap->pdata[m]))
        m = r;
      if (m == i)
        break;
      Event *tmp = sim->heap->pdata[i];
      sim->heap->pdata[i] = sim->heap->pdata[m];
      sim->heap->pdata[m] = tmp;
      i = m;
    }
  return top;
}

static void
ev_free (Event *e)
{
  g_free (e->s);
  g_free (e->s2);
  if (e->msg != NULL)
    bg_control_message_free (e->msg);
  if (e->v != NULL)
    g_variant_unref (e->v);
  g_free (e);
}

static void sim_trace (Sim *sim, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
sim_trace (Sim *sim, const char *fmt, ...)
{
  va_list ap;

  if (!sim->trace)
    return;
  va_start (ap, fmt);
  printf ("%9.3f ms  ", sim->now / 1000.0);
  vprintf (fmt, ap);
  printf ("\n");
  va_end (ap);
}

static void sim_violation (Sim *sim, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
sim_violation (Sim *sim, const char *fmt, ...)
{
  va_list ap;

  if (sim->violation != NULL)
    return;
  va_start (ap, fmt);
  sim->violation = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  sim_trace (sim, "VIOLATION: %s", sim->violation);
}

static void sim_note (Sim *sim, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* A drawn fault or operator action: part of the seed's summary. */
static void
sim_note (Sim *sim, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *text = NULL;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_string_append_printf (sim->faults, "  %9.3f ms  %s\n", sim->now / 1000.0, text);
  sim_trace (sim, "** %s", text);
}

/* ---- the oracle ------------------------------------------------------------------- */

static void
oracle_land (Sim *sim, int color, int p, gint64 off)
{
  guint8 *mask;
  int other = 1 - color;

  g_assert (off < (gint64) sim->emitted[p]->len);
  mask = &sim->emitted[p]->data[off];
  sim_trace (sim, "emitted %s %s/%d@%" G_GINT64_FORMAT, bg_color_to_string (color), TOPIC, p, off);
  if (*mask & (1u << other))
    sim_violation (sim, "cross-version duplicate: %s/%d@%" G_GINT64_FORMAT " emitted by blue and green", TOPIC,
                   p, off);
  if (sim->max_landed[other][p] > off)
    sim_violation (sim, "order: %s result for %s/%d@%" G_GINT64_FORMAT " after %s's result for @%" G_GINT64_FORMAT,
                   bg_color_to_string (color), TOPIC, p, off, bg_color_to_string (other),
                   sim->max_landed[other][p]);
  *mask |= 1u << color;
  sim->max_landed[color][p] = MAX (sim->max_landed[color][p], off);
}

/* ---- the agent: steering, persistence ------------------------------------------------ */

static gint64
link_delay (Sim *sim)
{
  return chance (sim, 0.05) ? rnd (sim, 5 * MS, 60 * MS) : rnd (sim, 100, 2 * MS);
}

static void inst_notify (Inst *in);
static void agent_changed (Agent *a);

/* agent.c's agent_save_state. */
static void
agent_persist (gpointer data)
{
  Agent *a = data;
  gint64 pinned = bgd_cutover_pinned_offset (a->cut);
  gint64 pinned2 = bgd_cutover_pinned_offset (a->cut2);

  for (int c = 0; c < 2; c++)
    {
      g_clear_pointer (&a->disk.st[c], bgd_steering_free);
      a->disk.st[c] = bgd_steering_copy (a->slots[c].st);
      a->disk.gen[c] = a->slots[c].gen;
    }
  a->disk.valid = TRUE;
  a->disk.live = a->live;
  a->disk.joined = a->joined;
  g_free (a->disk.fp);
  a->disk.fp = bgd_fleet_plans_to_string (a->fp);
  a->disk.job_offset = bgd_history_control_offset (pinned, a->read_pos, a->replay_from);
  a->disk.job2_offset = bgd_history_control_offset (pinned2, a->read_pos, a->replay2_from);
  /* agent.c's agent_control_offset: the oldest offset any job pins. */
  a->disk.start = a->read_pos;
  if (pinned >= 0 && pinned < a->disk.start)
    a->disk.start = pinned;
  if (pinned2 >= 0 && pinned2 < a->disk.start)
    a->disk.start = pinned2;
}

typedef struct {
  Agent *a;
  int color;
} SlotRef;

/* The skeleton's flush: instances see the new generation. */
static void
slot_publish (gpointer data)
{
  SlotRef *ref = data;
  Agent *a = ref->a;

  sim_trace (a->sim, "%s: %s steering gen %" G_GUINT64_FORMAT ": %s %s", a->name,
             bg_color_to_string (ref->color), a->slots[ref->color].gen, a->slots[ref->color].st->mode,
             bgd_steering_plan_state (a->slots[ref->color].st));
  for (int i = 0; i < a->sim->n_inst; i++)
    if (a->inst[ref->color][i].running)
      inst_notify (&a->inst[ref->color][i]);
  if (a->crash_after_publish)
    {
      Event *e = ev_push (a->sim, EV_CRASH, a->sim->now + rnd (a->sim, 0, MS));
      e->host = a->id;
      e->epoch = a->epoch;
      a->crash_after_publish = FALSE;
    }
}

/* slot.c's bgd_slot_apply_steering / bgd_slot_set_steering. */
static void
slot_apply (Agent *a, int color, BgdSteering *next)
{
  SlotRef ref = { a, color };

  if (next == NULL)
    return;
  bgd_steering_free (a->slots[color].st);
  a->slots[color].st = next;
  a->slots[color].gen++;
  bgd_history_write_ahead (agent_persist, a, slot_publish, &ref);
  agent_changed (a);
}

/* ---- the agent: the cutover ops (job.c's cut_*) --------------------------------------- */

static void agent_append (Agent *a, BgControlMessage *msg);

static void
op_append (gpointer data, BgControlMessage *msg)
{
  agent_append (data, msg);
}

static void
op_prepared (gpointer data, const BgdCutoverPlan *plan)
{
  Agent *a = data;

  if (g_strcmp0 (a->pending_id, plan->id) == 0)
    g_clear_pointer (&a->pending_id, g_free);
}

static gboolean
slot_unconfirmed (Agent *a, int color, const char *id)
{
  Slot *s = &a->slots[color];
  return bgd_steering_decision_unconfirmed (s->st, id, s->active, s->applied_gen, s->gen);
}

static gboolean
op_arm (gpointer data, const BgdCutoverPlan *plan, char **reason)
{
  Agent *a = data;

  if (slot_unconfirmed (a, plan->outgoing, plan->id) || slot_unconfirmed (a, plan->incoming, plan->id))
    {
      g_free (a->arm_pending);
      a->arm_pending = g_strdup (plan->id);
      if (!a->arm_poll)
        {
          Event *e = ev_push (a->sim, EV_ARM_POLL, a->sim->now + 10 * MS);
          e->host = a->id;
          e->epoch = a->epoch;
          a->arm_poll = TRUE;
        }
      return TRUE;
    }
  for (int c = 0; c < 2; c++)
    {
      int color = c == 0 ? plan->outgoing : plan->incoming;
      if (a->slots[color].active)
        slot_apply (a, color, bgd_steering_arm (a->slots[color].st, plan, c == 0));
    }
  if (!a->slots[plan->outgoing].active || !a->slots[plan->incoming].active)
    {
      *reason = g_strdup ("a slot is not active on this host");
      return FALSE;
    }
  return TRUE;
}

static void
op_commit (gpointer data, const BgdCutoverPlan *plan)
{
  Agent *a = data;

  slot_apply (a, plan->outgoing, bgd_steering_commit (a->slots[plan->outgoing].st, plan, TRUE));
  slot_apply (a, plan->incoming, bgd_steering_commit (a->slots[plan->incoming].st, plan, FALSE));
  a->live = plan->incoming;
  agent_changed (a);
}

static void
op_abort (gpointer data, const BgdCutoverPlan *plan)
{
  Agent *a = data;

  slot_apply (a, plan->outgoing,
              bgd_steering_abort (a->slots[plan->outgoing].st, plan, TRUE, a->slots[plan->outgoing].active));
  slot_apply (a, plan->incoming,
              bgd_steering_abort (a->slots[plan->incoming].st, plan, FALSE, a->slots[plan->incoming].active));
  if (g_strcmp0 (a->pending_id, plan->id) == 0)
    g_clear_pointer (&a->pending_id, g_free);
}

static void
op_release (gpointer data, const BgdCutoverPlan *plan, const char *topic, gint32 partition)
{
  Agent *a = data;

  slot_apply (a, plan->incoming, bgd_steering_release (a->slots[plan->incoming].st, topic, partition));
}

static void
op_done (gpointer data, const BgdCutoverPlan *plan)
{
  Agent *a = data;

  slot_apply (a, plan->outgoing, bgd_steering_done_outgoing (a->slots[plan->outgoing].st));
}

static gint64
op_delivered (gpointer data, BgColor color, const char *topic, gint32 partition)
{
  Agent *a = data;

  if (!g_str_equal (topic, TOPIC) || partition < 0 || partition >= MAX_PARTS)
    return -1;
  return a->slots[color].delivered[partition];
}

static void operator_cutover (Agent *a, int outgoing, const char *attempt_id, guint attempt,
                              const char *const *participants, gint64 deadline_usec);

static void
op_retry (gpointer data, const BgdCutoverPlan *plan)
{
  Agent *a = data;

  if (a->pending_id != NULL)
    return;
  operator_cutover (a, plan->outgoing, plan->retry_id, bgd_cutover_attempt (plan->retry_id),
                    (const char *const *) plan->participants, MAX (plan->deadline - plan->prepared_at, SEC));
}

/* The second job's ops: its instances arm at once and have delivered
 * everything. */
static gboolean
op2_arm (gpointer data, const BgdCutoverPlan *plan, char **reason)
{
  Agent *a = data;
  Event *e = ev_push (a->sim, EV_K_ARMED, a->sim->now + rnd (a->sim, 100, 2 * MS));

  e->host = a->id;
  e->epoch = a->epoch;
  e->s = g_strdup (plan->id);
  return TRUE;
}

static void
op2_nothing (gpointer data, const BgdCutoverPlan *plan)
{
}

static void
op2_release (gpointer data, const BgdCutoverPlan *plan, const char *topic, gint32 partition)
{
}

static gint64
op2_delivered (gpointer data, BgColor color, const char *topic, gint32 partition)
{
  Agent *a = data;
  return a->sim->now >= a->sim->k_delivered_at ? G_MAXINT64 : -1;
}

static const BgdCutoverOps sim_cutover2_ops = {
  .append = op_append,
  .prepared = op2_nothing,
  .arm = op2_arm,
  .commit = op2_nothing,
  .abort = op2_nothing,
  .release = op2_release,
  .done = op2_nothing,
  .delivered = op2_delivered,
};

static const BgdCutoverOps sim_cutover_ops = {
  .append = op_append,
  .prepared = op_prepared,
  .arm = op_arm,
  .commit = op_commit,
  .abort = op_abort,
  .release = op_release,
  .done = op_done,
  .delivered = op_delivered,
  .retry = op_retry,
};

/* ---- the agent: clock, timers ---------------------------------------------------------- */

static gint64
clock_real (gpointer data)
{
  Agent *a = data;
  return T0 + a->sim->now + a->skew;
}

static gint64
clock_mono (gpointer data)
{
  Agent *a = data;
  return a->sim->now + 1;
}

static guint
clock_timeout_add (gpointer data, guint ms, GSourceFunc func, gpointer func_data)
{
  Agent *a = data;
  Timer *t = g_new0 (Timer, 1);
  guint id = ++a->next_timer;
  Event *e;

  t->func = func;
  t->data = func_data;
  g_hash_table_insert (a->timers, GUINT_TO_POINTER (id), t);
  e = ev_push (a->sim, EV_TIMER, a->sim->now + (gint64) ms * MS);
  e->host = a->id;
  e->epoch = a->epoch;
  e->a = id;
  return id;
}

static void
clock_source_remove (gpointer data, guint id)
{
  Agent *a = data;
  g_hash_table_remove (a->timers, GUINT_TO_POINTER (id));
}

static const BgdCutoverClock sim_clock = {
  .real_time = clock_real,
  .monotonic_time = clock_mono,
  .timeout_add = clock_timeout_add,
  .source_remove = clock_source_remove,
};

/* ---- the agent: the control log --------------------------------------------------------- */

static void
agent_schedule_read (Agent *a)
{
  Sim *sim = a->sim;
  gint64 t;
  Event *e;

  if (!a->up || a->reading || a->read_pos >= (gint64) sim->log->len)
    return;
  t = sim->now + (a->replaying ? rnd (sim, 20, 200) : rnd (sim, 200, 3 * MS));
  if (a->slow_until > t)
    t = a->slow_until + rnd (sim, 0, MS);
  e = ev_push (sim, EV_LOG_READ, t);
  e->host = a->id;
  e->epoch = a->epoch;
  a->reading = TRUE;
}

/* What the other agents read of @msg (taken): its wire form decoded, as
 * an agent appends and reads the control topic. Hellos are most of the
 * log and carry nothing the codec could change here: they skip the JSON
 * (the time goes to the protocol's own messages). */
static BgControlMessage *
codec_round_trip (Agent *a, BgControlMessage *msg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  BgControlMessage *back;
  gsize len;
  const guint8 *data;

  if (msg->type == BG_CONTROL_HELLO)
    return msg;
  bytes = bg_control_message_encode (msg, &error);
  if (bytes == NULL)
    g_error ("%s: cannot encode a %s: %s", a->name, bg_control_type_to_string (msg->type), error->message);
  data = g_bytes_get_data (bytes, &len);
  back = bg_control_message_decode (data, len, &error);
  if (back == NULL)
    g_error ("%s: cannot decode its own %s: %s", a->name, bg_control_type_to_string (msg->type),
             error->message);
  bg_control_message_free (msg);
  return back;
}

/* The agent's producer: in order, after a delay. */
static void
agent_append (Agent *a, BgControlMessage *msg)
{
  Sim *sim = a->sim;
  Event *e;
  gint64 t = sim->now + rnd (sim, 200, 3 * MS);

  t = MAX (t, a->last_append + 1);
  a->last_append = t;
  e = ev_push (sim, EV_LOG_LAND, t);
  e->host = a->id;
  e->epoch = a->epoch;
  e->msg = codec_round_trip (a, msg);
}

static void
send_hello (Agent *a)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_HELLO, a->name, clock_real (a));
  BgControlJob *j = bg_control_job_new (JOB);

  for (int c = 0; c < 2; c++)
    {
      BgControlSlot *s = bg_control_slot_new (c, "running");
      s->version = g_strdup (c == 0 ? "v1" : "v2");
      s->ready = TRUE;
      if (a->slots[c].st != NULL)
        bg_control_sink_mode_from_string (a->slots[c].st->mode, &s->sink_mode);
      g_ptr_array_add (j->slots, s);
    }
  /* As the agent's hello: its live color (a late host's once it joined). */
  if (!a->joiner || a->joined)
    {
      j->has_live_color = TRUE;
      j->live_color = a->live;
    }
  g_ptr_array_add (msg->jobs, j);
  g_ptr_array_add (msg->jobs, bg_control_job_new (JOB2));
  agent_append (a, msg);
}

static void inst_start (Inst *in);

static void
agent_finish_replay (Agent *a)
{
  Event *e;

  a->replaying = FALSE;
  sim_trace (a->sim, "%s: replay done at log offset %" G_GINT64_FORMAT, a->name, a->read_pos);
  bgd_cutover_set_replaying (a->cut, FALSE);
  bgd_cutover_set_replaying (a->cut2, FALSE);
  send_hello (a);
  e = ev_push (a->sim, EV_HELLO, a->sim->now + HELLO_USEC);
  e->host = a->id;
  e->epoch = a->epoch;
  /* A host that joins late deploys the live version once the log is
   * replayed (job.c's handle_deploy): EV_JOIN. */
  if (a->joiner && !a->joined)
    {
      e = ev_push (a->sim, EV_JOIN, a->sim->now);
      e->host = a->id;
      e->epoch = a->epoch;
      return;
    }
  /* A host that joins starts its instances once the log is replayed. */
  if (!a->insts_started)
    {
      a->insts_started = TRUE;
      for (int c = 0; c < 2; c++)
        for (int i = 0; i < a->sim->n_inst; i++)
          inst_start (&a->inst[c][i]);
    }
}

/* job.c's handle_deploy for a host joining late, once the log is
 * replayed: Busy while the fleet is cutting over (retried, as an operator
 * or a script would); else the live color's slot starts with the incoming
 * steering of the last commit read (plain live if none), the other one
 * blackholed. */
static void
agent_join (Agent *a)
{
  const BgdCutoverPlan *last;
  int live = 0;

  if (!bgd_membership_fleet_settled (a->m, JOB, a->name) || !bgd_fleet_plans_handed_over (a->fp))
    {
      Event *e = ev_push (a->sim, EV_JOIN, a->sim->now + 50 * MS);
      e->host = a->id;
      e->epoch = a->epoch;
      return;
    }
  last = bgd_fleet_plans_last_committed (a->fp);
  if (last != NULL)
    live = (int) last->incoming;
  for (int c = 0; c < 2; c++)
    {
      bgd_steering_free (a->slots[c].st);
      a->slots[c].st = bgd_steering_new (c == live ? "live" : "blackhole");
      a->slots[c].gen++;
    }
  if (last != NULL)
    {
      BgdSteering *in = bgd_steering_commit (a->slots[live].st, last, FALSE);
      if (in != NULL)
        {
          bgd_steering_free (a->slots[live].st);
          a->slots[live].st = in;
        }
    }
  a->live = live;
  a->joined = TRUE;
  sim_trace (a->sim, "%s: joins live in %s (%s)", a->name, live == 0 ? "blue" : "green",
             last != NULL ? last->id : "no commit read");
  /* Write-ahead, before any instance starts and fetches. */
  agent_persist (a);
  agent_finish_replay (a);
}

/* agent.c's on_control_message, with job.c's bgd_job_handle_control. */
static void
agent_handle (Agent *a, const BgControlMessage *msg, gint64 offset)
{
  bgd_membership_handle (a->m, msg);
  if (msg->type != BG_CONTROL_HELLO && g_strcmp0 (msg->job, JOB) == 0
      && !bgd_history_is_past (offset, a->replay_from))
    {
      bgd_fleet_plans_handle (a->fp, msg);
      bgd_cutover_handle (a->cut, msg, offset);
    }
  if (msg->type != BG_CONTROL_HELLO && g_strcmp0 (msg->job, JOB2) == 0
      && !bgd_history_is_past (offset, a->replay2_from))
    bgd_cutover_handle (a->cut2, msg, offset);
}

static void
agent_changed (Agent *a)
{
  Event *e;

  if (a->idle_save)
    return;
  a->idle_save = TRUE;
  e = ev_push (a->sim, EV_IDLE_SAVE, a->sim->now + rnd (a->sim, 0, 2 * MS));
  e->host = a->id;
  e->epoch = a->epoch;
}

static void
slot_init (Slot *s, const char *mode)
{
  s->st = bgd_steering_new (mode);
  s->gen = 1;
  s->applied_gen = 0;
  s->active = TRUE;
  for (int p = 0; p < MAX_PARTS; p++)
    s->delivered[p] = -1;
}

static void inst_send_delivered_all (Inst *in);

static void
agent_start (Agent *a)
{
  Sim *sim = a->sim;

  a->up = TRUE;
  a->epoch++;
  a->cut = bgd_cutover_new (a->name, JOB, &sim_cutover_ops, a);
  bgd_cutover_set_clock (a->cut, &sim_clock, a);
  bgd_cutover_set_max_attempts (a->cut, sim->max_attempts);
  a->cut2 = bgd_cutover_new (a->name, JOB2, &sim_cutover2_ops, a);
  bgd_cutover_set_clock (a->cut2, &sim_clock, a);
  a->timers = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  for (int c = 0; c < 2; c++)
    {
      slot_init (&a->slots[c], c == 0 ? "live" : "blackhole");
      if (a->disk.valid)
        {
          bgd_steering_free (a->slots[c].st);
          a->slots[c].st = bgd_steering_copy (a->disk.st[c]);
          a->slots[c].gen = a->disk.gen[c];
        }
    }
  a->live = a->disk.valid ? a->disk.live : 0;
  a->joined = a->disk.valid && a->disk.joined;
  a->fp = bgd_fleet_plans_new ();
  if (a->disk.valid && a->disk.fp != NULL && !bgd_fleet_plans_restore (a->fp, a->disk.fp, NULL))
    g_error ("%s: FleetCommitted= does not restore: %s", a->name, a->disk.fp);
  a->replay_from = a->disk.valid ? a->disk.job_offset : -1;
  a->replay2_from = a->disk.valid ? a->disk.job2_offset : -1;
  a->read_pos = a->disk.valid ? a->disk.start : 0;
  a->replay_end = sim->log->len;
  a->replaying = TRUE;
  a->reading = FALSE;
  a->idle_save = FALSE;
  a->arm_poll = FALSE;
  a->crash_after_publish = FALSE;
  sim_trace (sim, "%s: agent starts, replay %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT " (job state from %" G_GINT64_FORMAT ")",
             a->name, a->read_pos, a->replay_end, a->replay_from);
  if (a->read_pos >= a->replay_end)
    agent_finish_replay (a);
  else
    agent_schedule_read (a);
  /* The instances' links see the agent come back: fetch, resend. */
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < sim->n_inst; i++)
      if (a->inst[c][i].running)
        {
          inst_notify (&a->inst[c][i]);
          inst_send_delivered_all (&a->inst[c][i]);
        }
}

static void
agent_crash (Agent *a)
{
  a->up = FALSE;
  a->epoch++;
  g_clear_pointer (&a->cut, bgd_cutover_free);
  g_clear_pointer (&a->cut2, bgd_cutover_free);
  g_clear_pointer (&a->fp, bgd_fleet_plans_free);
  g_clear_pointer (&a->timers, g_hash_table_unref);
  for (int c = 0; c < 2; c++)
    g_clear_pointer (&a->slots[c].st, bgd_steering_free);
  g_clear_pointer (&a->arm_pending, g_free);
  g_clear_pointer (&a->pending_id, g_free);
  a->reading = FALSE;
}

/* ---- the operator and the coordinator's Cutover call (job.c) ------------------------------ */

static void
operator_cutover (Agent *a, int outgoing, const char *attempt_id, guint attempt,
                  const char *const *participants, gint64 deadline_usec)
{
  Sim *sim = a->sim;
  g_auto(GStrv) hosts = NULL;
  g_autoptr(GPtrArray) barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  BgControlMessage *msg;
  int n_known = sim->n_parts;
  gint64 now = clock_real (a);

  if (participants == NULL)
    {
      hosts = bgd_membership_expected (a->m, JOB, NULL, a->name);
      for (guint i = 0; hosts[i] != NULL; i++)
        if (!g_str_equal (hosts[i], a->name) && now - bgd_membership_last_seen (a->m, hosts[i]) > SILENCE_USEC)
          {
            sim_note (sim, "%s: cutover refused: host %s is silent", a->name, hosts[i]);
            return;
          }
      participants = (const char *const *) hosts;
    }
  /* A partition list a moment old: the newest partition unknown. */
  if (n_known > 1 && chance (sim, 0.2))
    n_known--;
  /* The agent's rule (job.c): the barriers are the high watermarks, no
   * lead; instances past them move them up when they arm. */
  for (int p = 0; p < n_known; p++)
    g_ptr_array_add (barriers, bg_control_offset_new (TOPIC, p, sim->hw[p]));
  msg = bgd_cutover_make_prepare (a->cut, outgoing, 1 - outgoing, barriers, now + deadline_usec, participants);
  g_free (msg->id);
  msg->id = attempt_id != NULL ? g_strdup (attempt_id) : g_strdup_printf ("c%u", ++sim->n_cutovers_started);
  g_free (a->pending_id);
  a->pending_id = g_strdup (msg->id);
  {
    g_autoptr(GString) b = g_string_new (NULL);
    for (guint i = 0; i < barriers->len; i++)
      {
        const BgControlOffset *o = barriers->pdata[i];
        g_string_append_printf (b, " %d@%" G_GINT64_FORMAT, o->partition, o->offset);
      }
    sim_note (sim, "%s: prepare %s %s -> %s, barriers%s, deadline +%" G_GINT64_FORMAT " ms", a->name, msg->id,
              bg_color_to_string (outgoing), bg_color_to_string (1 - outgoing), b->str, deadline_usec / MS);
  }
  agent_append (a, msg);
}

/* A cutover of the second job: one barrier, the same participants rule. */
static void
operator_cutover2 (Agent *a)
{
  Sim *sim = a->sim;
  g_auto(GStrv) hosts = bgd_membership_expected (a->m, JOB2, NULL, a->name);
  g_autoptr(GPtrArray) barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  const BgdCutoverPlan *plan = bgd_cutover_get_plan (a->cut2);
  BgColor out = plan != NULL && plan->state == BGD_CUTOVER_DONE ? plan->incoming : BG_COLOR_BLUE;
  BgControlMessage *msg;

  if (bgd_cutover_in_flight (a->cut2))
    return;
  g_ptr_array_add (barriers, bg_control_offset_new (TOPIC2, 0, 5));
  msg = bgd_cutover_make_prepare (a->cut2, out, 1 - out, barriers, clock_real (a) + sim->deadline_usec,
                                  (const char *const *) hosts);
  g_free (msg->id);
  msg->id = g_strdup_printf ("k%u", ++sim->n_cutovers_started);
  /* Its handover takes a while: the job pins the log meanwhile. */
  sim->k_delivered_at = sim->now + rnd (sim, 0, 3 * SEC);
  ev_push (sim, EV_K_DELIVERED, sim->k_delivered_at);
  sim_note (sim, "%s: prepare %s of job %s", a->name, msg->id, JOB2);
  agent_append (a, msg);
}

/* ---- instances ------------------------------------------------------------------------------ */

static void
inst_schedule_step (Inst *in, int p, gint64 delay)
{
  Event *e;

  if (!in->running || !in->owns[p] || in->step_scheduled[p])
    return;
  in->step_scheduled[p] = TRUE;
  e = ev_push (in->agent->sim, EV_STEP, in->agent->sim->now + delay);
  e->host = in->host;
  e->color = in->color;
  e->inst = in->idx;
  e->part = p;
  e->epoch = in->epoch;
}

static Event *
inst_event (Inst *in, EvType type, gint64 t)
{
  Event *e = ev_push (in->agent->sim, type, t);
  e->host = in->host;
  e->color = in->color;
  e->inst = in->idx;
  e->epoch = in->epoch;
  return e;
}

/* The link fetches the steering (coalesced: one fetch in flight). */
static void
inst_notify (Inst *in)
{
  if (!in->running)
    return;
  if (in->fetch_in_flight)
    {
      in->refetch = TRUE;
      return;
    }
  in->fetch_in_flight = TRUE;
  inst_event (in, EV_FETCH, in->agent->sim->now + link_delay (in->agent->sim));
}

/* ReportDelivered, coalesced like the library's (one call in flight per
 * partition here; it carries the latest value when it arrives). */
static void
inst_report_delivered (Inst *in, int p)
{
  Event *e;

  if (in->report_pending[p])
    return;
  in->report_pending[p] = TRUE;
  e = inst_event (in, EV_DELIVERED, in->agent->sim->now + 2 * MS + link_delay (in->agent->sim));
  e->part = p;
}

static void
inst_send_delivered_all (Inst *in)
{
  for (int p = 0; p < MAX_PARTS; p++)
    if (in->reported[p] >= 0)
      inst_report_delivered (in, p);
}

static void
inst_update_delivered (Inst *in, int p)
{
  Sim *sim = in->agent->sim;
  gint64 d;

  if (!in->owns[p])
    return;
  d = g_queue_is_empty (&in->inflight[p]) ? in->pos[p] : *(gint64 *) g_queue_peek_head (&in->inflight[p]);
  if (d <= in->delivered[p])
    return;
  in->delivered[p] = d;
  /* The example job commits only offsets whose results are delivered. */
  sim->committed[in->color][p] = d;
  if (d > in->reported[p])
    {
      in->reported[p] = d;
      inst_report_delivered (in, p);
    }
}

/* Results in flight are acknowledged now (a revoke flushes the producer). */
static void
inst_flush (Inst *in, int p)
{
  Sim *sim = in->agent->sim;
  gint64 *off;

  while ((off = g_queue_pop_head (&in->inflight[p])) != NULL)
    {
      oracle_land (sim, in->color, p, *off);
      g_free (off);
    }
  in->flushes[p]++;
  inst_update_delivered (in, p);
}

static void rebalance (Sim *sim, int color);

static void
inst_start (Inst *in)
{
  Sim *sim = in->agent->sim;

  if (in->running || in->agent->dead)
    return;
  in->running = TRUE;
  in->epoch++;
  in->gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  in->topic = bg_gate_topic (in->gate, TOPIC, MAX_PARTS);
  in->applied_holds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  in->applied_gen = 0;
  in->fetch_in_flight = in->refetch = FALSE;
  for (int p = 0; p < MAX_PARTS; p++)
    {
      in->owns[p] = in->step_scheduled[p] = in->waiting[p] = FALSE;
      in->reported[p] = -1;
      in->delivered[p] = -1;
      in->report_pending[p] = FALSE;
    }
  sim_trace (sim, "%s: %s instance %d starts", in->agent->name, bg_color_to_string (in->color), in->idx);
  inst_notify (in);
  rebalance (sim, in->color);
}

static void
inst_stop (Inst *in)
{
  Sim *sim = in->agent->sim;

  if (!in->running)
    return;
  in->running = FALSE;
  in->epoch++;
  for (int p = 0; p < MAX_PARTS; p++)
    {
      g_queue_clear_full (&in->inflight[p], g_free); /* lost: never acknowledged */
      if (sim->owner[in->color][p] == in)
        sim->owner[in->color][p] = NULL;
      in->owns[p] = FALSE;
    }
  g_clear_pointer (&in->gate, bg_gate_free);
  g_clear_pointer (&in->applied_holds, g_hash_table_unref);
  g_clear_pointer (&in->applied_reply, g_variant_unref);
  in->answered_serial = 0;
  in->topic = NULL;
}

/* The consumer group of @color: each partition to one running instance. */
static void inst_answer_armed (Inst *in, GVariant *reply, const GError *error);

static void
rebalance (Sim *sim, int color)
{
  Inst *members[MAX_HOSTS * MAX_INST];
  int n = 0;

  for (int h = 0; h < sim->n_hosts; h++)
    for (int i = 0; i < sim->n_inst; i++)
      if (sim->agents[h].inst[color][i].running)
        members[n++] = &sim->agents[h].inst[color][i];
  for (int p = 0; p < sim->n_parts; p++)
    {
      Inst *old = sim->owner[color][p];
      Inst *new = n > 0 ? members[(p + sim->rotation[color]) % n] : NULL;

      if (old == new)
        continue;
      if (old != NULL)
        {
          inst_flush (old, p);
          old->owns[p] = FALSE;
          old->waiting[p] = FALSE;
        }
      sim->owner[color][p] = new;
      if (new != NULL)
        {
          new->owns[p] = TRUE;
          new->waiting[p] = FALSE;
          new->pos[p] = sim->committed[color][p];
          /* As the example job does: what its color did below the
           * committed offset counts as admitted by this gate. */
          bg_gate_partition_resumed (new->gate, new->topic, p, new->pos[p]);
          /* The link answers a prepared plan again when that grew what
           * arming found passed (client.c, link_report). */
          if (new->applied_reply != NULL && bg_gate_past_serial (new->gate) != new->answered_serial)
            inst_answer_armed (new, new->applied_reply, NULL);
          new->last_land[p] = 0;
          /* Like the example job, which rebuilds its state up to the
           * committed offset and then reports it delivered. */
          new->delivered[p] = -1;
          inst_update_delivered (new, p);
          sim_trace (sim, "%s: %s instance %d takes %s/%d from %" G_GINT64_FORMAT, new->agent->name,
                     bg_color_to_string (color), new->idx, TOPIC, p, new->pos[p]);
          inst_schedule_step (new, p, rnd (sim, 100, MS));
        }
    }
}

/* Admits the next record of @p; FALSE if there is none or it waits. */
static gboolean
inst_process_one (Inst *in, int p)
{
  Sim *sim = in->agent->sim;
  BgVerdict v;

  if (!in->owns[p] || in->pos[p] >= sim->hw[p])
    return FALSE;
  v = bg_gate_try_admit (in->gate, in->topic, p, in->pos[p]);
  if (sim->trace)
    sim_trace (sim, "%s: %s instance %d: %s/%d@%" G_GINT64_FORMAT " %s", in->agent->name,
               bg_color_to_string (in->color), in->idx, TOPIC, p, in->pos[p],
               v == BG_VERDICT_EMIT ? "emit" : v == BG_VERDICT_DROP ? "drop" : "wait");
  if (v == BG_VERDICT_WAIT)
    {
      if (!in->waiting[p])
        sim_trace (sim, "%s: %s instance %d waits at %s/%d@%" G_GINT64_FORMAT, in->agent->name,
                   bg_color_to_string (in->color), in->idx, TOPIC, p, in->pos[p]);
      in->waiting[p] = TRUE;
      return FALSE;
    }
  in->waiting[p] = FALSE;
  if (v == BG_VERDICT_EMIT)
    {
      gint64 *off = g_new (gint64, 1);
      gint64 t = sim->now + rnd (sim, 300, 5 * MS);
      Event *e;

      t = MAX (t, in->last_land[p] + 1);

      *off = in->pos[p];
      g_queue_push_tail (&in->inflight[p], off);
      in->last_land[p] = t;
      e = inst_event (in, EV_LAND, t);
      e->part = p;
      e->a = *off;
      e->b = in->flushes[p];
    }
  in->pos[p]++;
  inst_update_delivered (in, p);
  return TRUE;
}

static void
inst_step (Inst *in, int p)
{
  Sim *sim = in->agent->sim;

  in->step_scheduled[p] = FALSE;
  if (inst_process_one (in, p) && in->pos[p] < sim->hw[p])
    inst_schedule_step (in, p, rnd (sim, 50, 800));
}

/* The instance whose steering is being applied: the job's threads go on
 * admitting records in the middle of it (bg_client_debug_set_interleave). */
static Inst *applying;

static void
interleave_cb (BgGate *gate, gpointer user_data)
{
  Inst *in = applying;

  if (in == NULL || in->gate != gate)
    return;
  for (int p = 0; p < MAX_PARTS; p++)
    if (in->owns[p] && chance (in->agent->sim, 0.5))
      inst_process_one (in, p);
}

static void
inst_wake (Inst *in)
{
  for (int p = 0; p < MAX_PARTS; p++)
    if (in->owns[p])
      {
        in->waiting[p] = FALSE;
        inst_schedule_step (in, p, rnd (in->agent->sim, 10, 300));
      }
}

/* client.c's link_answer_armed. */
static void
inst_answer_armed (Inst *in, GVariant *reply, const GError *error)
{
  const char *id, *state;
  g_autofree char *unnamed = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GPtrArray) past = NULL;
  gboolean ok = FALSE;
  GVariantBuilder positions;
  Event *e;

  g_variant_get_child (reply, 2, "(&s&s&sx@a(six))", &id, NULL, &state, NULL, NULL);
  if (*id == '\0' || strcmp (state, "prepared") != 0)
    return;
  in->answered_serial = bg_gate_past_serial (in->gate);
  /* As the library's link answers (PlanArmedAt): past a named barrier is
   * reported with the positions, past an unnamed partition is not ok. */
  g_variant_builder_init (&positions, G_VARIANT_TYPE ("a(six)"));
  if (bg_gate_get_armed_positions (in->gate, id, &unnamed, &past))
    {
      ok = unnamed == NULL;
      reason = g_steal_pointer (&unnamed);
      for (guint i = 0; i < past->len; i++)
        {
          const BgArmedPosition *ap = past->pdata[i];
          g_variant_builder_add (&positions, "(six)", ap->topic, ap->partition, (gint64) ap->position);
        }
    }
  else
    {
      BgPlanState gate_state;
      g_autofree char *gate_plan = bg_gate_get_plan (in->gate, &gate_state);
      if (gate_plan != NULL && gate_state == BG_PLAN_STATE_PREPARED)
        reason = g_strdup_printf ("another plan (%s) is armed in this instance", gate_plan);
      else
        reason = g_strdup_printf ("not armed: %s", error != NULL ? error->message : "refused");
    }
  e = inst_event (in, EV_ARMED, in->agent->sim->now + link_delay (in->agent->sim));
  e->s = g_strdup (id);
  e->a = ok;
  e->s2 = g_strdup (reason ? reason : "");
  e->v = g_variant_ref_sink (g_variant_builder_end (&positions));
}

static void
inst_fetch_reply (Inst *in, GVariant *reply)
{
  Sim *sim = in->agent->sim;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  in->fetch_in_flight = FALSE;
  if (reply == NULL)
    {
      /* No agent: try again later (the link's backoff). */
      in->fetch_in_flight = TRUE;
      inst_event (in, EV_FETCH, sim->now + rnd (sim, 50 * MS, 300 * MS));
      return;
    }
  applying = in;
  ok = bg_client_apply_steering (in->gate, reply, in->applied_holds, &error);
  applying = NULL;
  if (!ok)
    {
      sim_trace (sim, "%s: %s instance %d: %s", in->agent->name, bg_color_to_string (in->color), in->idx,
                 error->message);
      inst_answer_armed (in, reply, error);
      in->fetch_in_flight = TRUE;
      inst_event (in, EV_FETCH, sim->now + rnd (sim, 50 * MS, 300 * MS));
      return;
    }
  g_variant_get_child (reply, 4, "t", &in->applied_gen);
  g_clear_pointer (&in->applied_reply, g_variant_unref);
  in->applied_reply = g_variant_ref (reply);
  sim_trace (sim, "%s: %s instance %d applied gen %" G_GUINT64_FORMAT, in->agent->name,
             bg_color_to_string (in->color), in->idx, in->applied_gen);
  inst_answer_armed (in, reply, NULL);
  {
    Event *e = inst_event (in, EV_PROGRESS, sim->now + link_delay (sim));
    e->a = (gint64) in->applied_gen;
  }
  inst_send_delivered_all (in);
  inst_wake (in);
  if (in->refetch)
    {
      in->refetch = FALSE;
      inst_notify (in);
    }
}

/* ---- faults and the operator ------------------------------------------------------------------ */

static Agent *
random_up_agent (Sim *sim)
{
  int n = 0;
  Agent *up[MAX_HOSTS];

  for (int h = 0; h < sim->n_hosts; h++)
    if (sim->agents[h].up && !sim->agents[h].replaying)
      up[n++] = &sim->agents[h];
  return n > 0 ? up[rnd (sim, 0, n - 1)] : NULL;
}

static int
n_alive_hosts (Sim *sim)
{
  int n = 0;
  for (int h = 0; h < sim->n_hosts; h++)
    n += sim->agents[h].exists && !sim->agents[h].dead;
  return n;
}

static void
agent_restart_later (Agent *a, gint64 delay)
{
  Event *e = ev_push (a->sim, EV_AGENT_START, a->sim->now + delay);
  e->host = a->id;
  e->epoch = a->epoch;
}

static void
do_fault (Sim *sim, FaultKind kind)
{
  Agent *a;
  int h = (int) rnd (sim, 0, sim->n_hosts - 1);

  a = &sim->agents[h];
  switch (kind)
    {
    case F_AGENT_CRASH:
    case F_AGENT_SILENT:
      if (!a->up)
        return;
      {
        gint64 down = kind == F_AGENT_CRASH ? rnd (sim, 5 * MS, 400 * MS) : SILENCE_USEC + rnd (sim, 0, 2 * SEC);
        sim_note (sim, "%s: agent crashes, back in %" G_GINT64_FORMAT " ms", a->name, down / MS);
        agent_crash (a);
        agent_restart_later (a, down);
      }
      break;
    case F_AGENT_CRASH_STEP:
      if (!a->up)
        return;
      sim_note (sim, "%s: agent will crash right after its next steering change", a->name);
      a->crash_after_publish = TRUE;
      break;
    case F_INST_CRASH:
      {
        int c = (int) rnd (sim, 0, 1), i = (int) rnd (sim, 0, sim->n_inst - 1);
        Inst *in = &a->inst[c][i];
        Event *e;

        if (!in->running)
          return;
        sim_note (sim, "%s: %s instance %d crashes", a->name, bg_color_to_string (c), i);
        inst_stop (in);
        e = inst_event (in, EV_INST_START, sim->now + rnd (sim, 5 * MS, 300 * MS));
        e = ev_push (sim, EV_REBALANCE, sim->now + rnd (sim, MS, 200 * MS));
        e->color = c;
      }
      break;
    case F_REBALANCE:
      {
        int c = (int) rnd (sim, 0, 1);
        sim->rotation[c]++;
        sim_note (sim, "rebalance of the %s consumer group", bg_color_to_string (c));
        rebalance (sim, c);
      }
      break;
    case F_ADD_PARTITION:
      if (sim->n_parts >= MAX_PARTS)
        return;
      {
        int p = sim->n_parts++;
        Event *e;
        sim->kind[p] = P_REGULAR;
        sim->rate[p] = (double) rnd (sim, 10, 60);
        sim_note (sim, "partition %s/%d added", TOPIC, p);
        rebalance (sim, 0);
        rebalance (sim, 1);
        e = ev_push (sim, EV_PRODUCE, sim->now + rnd (sim, MS, 100 * MS));
        e->part = p;
      }
      break;
    case F_LOG_DELAY:
      if (!a->up)
        return;
      a->slow_until = sim->now + rnd (sim, 100 * MS, 1500 * MS);
      sim_note (sim, "%s: reads the log late until %.3f ms", a->name, a->slow_until / 1000.0);
      break;
    case F_HOST_DIES:
      if (!a->exists || a->dead || n_alive_hosts (sim) <= 2)
        return;
      sim_note (sim, "%s: host dies (agent and instances stopped), to be evicted", a->name);
      if (a->up)
        agent_crash (a);
      a->dead = TRUE;
      for (int c = 0; c < 2; c++)
        {
          for (int i = 0; i < sim->n_inst; i++)
            inst_stop (&a->inst[c][i]);
          rebalance (sim, c);
        }
      {
        Event *e = ev_push (sim, EV_EVICT, sim->now + rnd (sim, 100 * MS, SEC));
        e->host = h;
      }
      break;
    case F_CUTOVER:
      a = random_up_agent (sim);
      if (a == NULL)
        return;
      if (chance (sim, 0.3))
        {
          operator_cutover2 (a);
          return;
        }
      if (bgd_cutover_in_flight (a->cut) || a->pending_id != NULL)
        {
          sim_note (sim, "%s: cutover refused: one is in flight", a->name);
          return;
        }
      operator_cutover (a, a->live, NULL, 1, NULL, sim->deadline_usec);
      break;
    case F_ABORT:
      a = random_up_agent (sim);
      if (a == NULL)
        return;
      if (bgd_cutover_request_abort (a->cut, "operator abort"))
        sim_note (sim, "%s: operator abort", a->name);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* ---- the event loop ----------------------------------------------------------------------------- */

static Inst *
event_inst (Sim *sim, const Event *e)
{
  Inst *in = &sim->agents[e->host].inst[e->color][e->inst];
  return in->running && in->epoch == e->epoch ? in : NULL;
}

static Agent *
event_agent (Sim *sim, const Event *e)
{
  Agent *a = &sim->agents[e->host];
  return a->up && a->epoch == e->epoch ? a : NULL;
}

static void
final_checks (Sim *sim)
{
  for (int h = 0; h < sim->n_hosts && sim->violation == NULL; h++)
    {
      Agent *a = &sim->agents[h];
      const BgdCutoverPlan *plan;
      gboolean stalled = FALSE;

      if (!a->up)
        continue;
      if (bgd_cutover_in_flight (a->cut2))
        sim_violation (sim, "liveness: cutover %s of job %s still %s on %s at the end", bgd_cutover_get_plan (a->cut2)->id,
                       JOB2, bgd_cutover_state_to_string (bgd_cutover_get_plan (a->cut2)->state), a->name);
      if (!bgd_cutover_in_flight (a->cut))
        continue;
      plan = bgd_cutover_get_plan (a->cut);
      for (guint i = 0; i < plan->barriers->len; i++)
        {
          const BgControlOffset *b = plan->barriers->pdata[i];
          if (plan->state == BGD_CUTOVER_COMMITTED && b->partition < sim->n_parts && sim->hw[b->partition] < b->offset)
            stalled = TRUE;
        }
      if (stalled)
        {
          sim->stalls++;
          sim_trace (sim, "%s: cutover %s waits for traffic below a barrier (issue 15)", a->name, plan->id);
          continue;
        }
      sim_violation (sim, "liveness: cutover %s still %s on %s %.1f s after the faults stopped", plan->id,
                     bgd_cutover_state_to_string (plan->state), a->name, (END_USEC - FAULTS_USEC) / 1e6);
    }
  for (int p = 0; p < sim->n_parts && sim->violation == NULL; p++)
    for (gint64 off = 0; off < sim->hw[p]; off++)
      if (sim->emitted[p]->data[off] == 0)
        {
          sim_violation (sim, "gap: %s/%d@%" G_GINT64_FORMAT " emitted by neither color (high watermark %" G_GINT64_FORMAT ")",
                         TOPIC, p, off, sim->hw[p]);
          break;
        }
}

static void
handle_event (Sim *sim, Event *e)
{
  Agent *a;
  Inst *in;

  switch (e->type)
    {
    case EV_LOG_LAND:
      {
        Agent *from = &sim->agents[e->host];
        if (from->epoch != e->epoch && chance (sim, 0.5))
          {
            sim_trace (sim, "%s's %s lost with its agent", from->name, bg_control_type_to_string (e->msg->type));
            return;
          }
        sim_trace (sim, "log[%u] %s %s from %s%s%s", sim->log->len, bg_control_type_to_string (e->msg->type),
                   e->msg->id ? e->msg->id : "", e->msg->host, e->msg->reason ? ": " : "",
                   e->msg->reason ? e->msg->reason : "");
        switch (e->msg->type)
          {
          case BG_CONTROL_PREPARE: sim->n_prepares++; break;
          case BG_CONTROL_COMMIT: sim->n_commits++; break;
          case BG_CONTROL_ABORT: sim->n_aborts++; break;
          default: break;
          }
        if (e->msg->type == BG_CONTROL_PREPARE && !sim->quiet_stopped)
          sim->quiet_stopped = TRUE; /* quiet partitions go quiet right after a prepare */
        if (e->msg->type == BG_CONTROL_COMMIT && !sim->late_started)
          {
            sim->late_started = TRUE;
            for (int p = 0; p < sim->n_parts; p++)
              if (sim->kind[p] == P_LATE)
                {
                  Event *pe = ev_push (sim, EV_PRODUCE, sim->now + rnd (sim, MS, 50 * MS));
                  pe->part = p;
                }
          }
        g_ptr_array_add (sim->log, g_steal_pointer (&e->msg));
        for (int h = 0; h < sim->n_hosts; h++)
          agent_schedule_read (&sim->agents[h]);
      }
      break;
    case EV_LOG_READ:
      if ((a = event_agent (sim, e)) == NULL)
        return;
      a->reading = FALSE;
      if (a->read_pos < (gint64) sim->log->len)
        {
          const BgControlMessage *msg = sim->log->pdata[a->read_pos];
          sim_trace (sim, "%s reads log[%" G_GINT64_FORMAT "] %s %s", a->name, a->read_pos,
                     bg_control_type_to_string (msg->type), msg->id ? msg->id : msg->host);
          agent_handle (a, msg, a->read_pos);
          if (!a->up || a->epoch != e->epoch)
            return;
          a->read_pos++;
          agent_changed (a);
          if (a->replaying && a->read_pos >= a->replay_end)
            agent_finish_replay (a);
        }
      agent_schedule_read (a);
      break;
    case EV_TIMER:
      if ((a = event_agent (sim, e)) == NULL)
        return;
      {
        Timer *t = g_hash_table_lookup (a->timers, GUINT_TO_POINTER ((guint) e->a));
        if (t != NULL)
          {
            Timer copy = *t;
            g_hash_table_remove (a->timers, GUINT_TO_POINTER ((guint) e->a));
            copy.func (copy.data);
          }
      }
      break;
    case EV_IDLE_SAVE:
      if ((a = event_agent (sim, e)) == NULL)
        return;
      a->idle_save = FALSE;
      agent_persist (a);
      break;
    case EV_ARM_POLL:
      if ((a = event_agent (sim, e)) == NULL)
        return;
      {
        const BgdCutoverPlan *plan = bgd_cutover_get_plan (a->cut);
        g_autofree char *reason = NULL;

        a->arm_poll = FALSE;
        if (plan != NULL && plan->state == BGD_CUTOVER_PREPARED && g_strcmp0 (plan->id, a->arm_pending) == 0
            && clock_real (a) < plan->deadline
            && (slot_unconfirmed (a, plan->outgoing, plan->id) || slot_unconfirmed (a, plan->incoming, plan->id)))
          {
            Event *pe = ev_push (sim, EV_ARM_POLL, sim->now + 10 * MS);
            pe->host = a->id;
            pe->epoch = a->epoch;
            a->arm_poll = TRUE;
            return;
          }
        if (plan == NULL || plan->state != BGD_CUTOVER_PREPARED || g_strcmp0 (plan->id, a->arm_pending) != 0
            || clock_real (a) >= plan->deadline)
          {
            g_clear_pointer (&a->arm_pending, g_free);
            return;
          }
        g_clear_pointer (&a->arm_pending, g_free);
        if (!op_arm (a, plan, &reason))
          bgd_cutover_plan_armed (a->cut, plan->incoming, plan->id, FALSE, reason);
      }
      break;
    case EV_HELLO:
      if ((a = event_agent (sim, e)) == NULL)
        return;
      send_hello (a);
      {
        Event *he = ev_push (sim, EV_HELLO, sim->now + HELLO_USEC + rnd (sim, 0, 100 * MS));
        he->host = a->id;
        he->epoch = a->epoch;
      }
      break;
    case EV_JOIN:
      if ((a = event_agent (sim, e)) == NULL || a->joined)
        return;
      agent_join (a);
      break;
    case EV_AGENT_START:
      a = &sim->agents[e->host];
      if (a->up || a->dead || a->epoch != e->epoch)
        return;
      a->exists = TRUE;
      agent_start (a);
      break;
    case EV_PRODUCE:
      {
        int p = e->part;
        double rate = sim->rate[p];
        gint64 gap;

        if (!sim->producing || (sim->kind[p] == P_QUIET && sim->quiet_stopped)
            || (sim->kind[p] == P_LATE && !sim->late_started))
          return;
        g_byte_array_append (sim->emitted[p], (const guint8 *) "", 1);
        sim->emitted[p]->data[sim->hw[p]] = 0;
        sim->hw[p]++;
        for (int c = 0; c < 2; c++)
          if (sim->owner[c][p] != NULL && !sim->owner[c][p]->waiting[p] && sim->owner[c][p]->pos[p] == sim->hw[p] - 1)
            inst_schedule_step (sim->owner[c][p], p, rnd (sim, 50, 500));
        gap = (gint64) (-log (1.0 - g_rand_double (sim->rng)) / rate * SEC) + 1;
        {
          Event *pe = ev_push (sim, EV_PRODUCE, sim->now + gap);
          pe->part = p;
        }
      }
      break;
    case EV_SAMPLE:
      for (int p = 0; p < MAX_PARTS; p++)
        sim->sample_hw[0][p] = sim->sample_hw[1][p];
      sim->sample_t[0] = sim->sample_t[1];
      for (int p = 0; p < MAX_PARTS; p++)
        sim->sample_hw[1][p] = sim->hw[p];
      sim->sample_t[1] = sim->now;
      ev_push (sim, EV_SAMPLE, sim->now + 500 * MS);
      break;
    case EV_STEP:
      if ((in = event_inst (sim, e)) == NULL)
        return;
      inst_step (in, e->part);
      break;
    case EV_LAND:
      if ((in = event_inst (sim, e)) == NULL || (guint) e->b != in->flushes[e->part])
        return;
      {
        gint64 *head = g_queue_peek_head (&in->inflight[e->part]);
        if (head == NULL || *head != e->a)
          return;
        g_free (g_queue_pop_head (&in->inflight[e->part]));
        oracle_land (sim, in->color, e->part, e->a);
        inst_update_delivered (in, e->part);
      }
      break;
    case EV_FETCH:
      if ((in = event_inst (sim, e)) == NULL)
        return;
      {
        Agent *ag = in->agent;
        Event *re = inst_event (in, EV_FETCH_REPLY, sim->now + link_delay (sim));
        if (ag->up)
          re->v = g_variant_ref_sink (bgd_steering_to_reply (ag->slots[in->color].st, ag->slots[in->color].gen));
      }
      break;
    case EV_FETCH_REPLY:
      if ((in = event_inst (sim, e)) == NULL)
        return;
      inst_fetch_reply (in, e->v);
      break;
    case EV_ARMED:
      if ((in = event_inst (sim, e)) == NULL)
        return;
      a = in->agent;
      if (!a->up)
        {
          inst_notify (in); /* the call failed: fetching again answers again */
          return;
        }
      {
        g_autoptr(GPtrArray) past = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
        GVariantIter iter;
        const char *topic;
        gint32 partition;
        gint64 offset;

        if (e->v != NULL)
          {
            g_variant_iter_init (&iter, e->v);
            while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &offset))
              g_ptr_array_add (past, bg_control_offset_new (topic, partition, offset));
          }
        bgd_cutover_plan_armed_at (a->cut, in->color, e->s, (gboolean) e->a, e->s2, past);
      }
      break;
    case EV_PROGRESS:
      if ((in = event_inst (sim, e)) == NULL || !in->agent->up)
        return;
      if ((guint64) e->a <= in->agent->slots[in->color].gen)
        in->agent->slots[in->color].applied_gen = (guint64) e->a;
      break;
    case EV_DELIVERED:
      if ((in = event_inst (sim, e)) == NULL)
        return;
      in->report_pending[e->part] = FALSE;
      if (!in->agent->up)
        return;
      a = in->agent;
      if (in->reported[e->part] > a->slots[in->color].delivered[e->part])
        {
          a->slots[in->color].delivered[e->part] = in->reported[e->part];
          bgd_cutover_check_delivered (a->cut);
        }
      break;
    case EV_INST_START:
      in = &sim->agents[e->host].inst[e->color][e->inst];
      if (in->epoch != e->epoch)
        return;
      inst_start (in);
      break;
    case EV_REBALANCE:
      rebalance (sim, e->color);
      break;
    case EV_FAULT:
      if (!sim->faults_over)
        do_fault (sim, (FaultKind) e->a);
      break;
    case EV_CRASH:
      if ((a = event_agent (sim, e)) == NULL || sim->faults_over)
        return;
      {
        gint64 down = rnd (sim, 5 * MS, 400 * MS);
        sim_note (sim, "%s: agent crashes after a steering change, back in %" G_GINT64_FORMAT " ms", a->name, down / MS);
        agent_crash (a);
        agent_restart_later (a, down);
      }
      break;
    case EV_K_ARMED:
      if ((a = event_agent (sim, e)) == NULL)
        return;
      bgd_cutover_plan_armed (a->cut2, BG_COLOR_BLUE, e->s, TRUE, "");
      bgd_cutover_plan_armed (a->cut2, BG_COLOR_GREEN, e->s, TRUE, "");
      break;
    case EV_K_DELIVERED:
      for (int h = 0; h < sim->n_hosts; h++)
        if (sim->agents[h].up)
          bgd_cutover_check_delivered (sim->agents[h].cut2);
      break;
    case EV_EVICT:
      a = random_up_agent (sim);
      if (a == NULL)
        {
          Event *ee = ev_push (sim, EV_EVICT, sim->now + 200 * MS);
          ee->host = e->host;
          return;
        }
      {
        BgControlMessage *msg = bg_control_message_new (BG_CONTROL_EVICT, a->name, clock_real (a));
        msg->job = g_strdup (JOB);
        msg->evicted_host = g_strdup (sim->agents[e->host].name);
        sim_note (sim, "%s: operator evicts %s", a->name, msg->evicted_host);
        agent_append (a, msg);
      }
      break;
    case EV_FAULTS_END:
      sim->faults_over = TRUE;
      sim_note (sim, "faults stop: every agent and instance back");
      for (int h = 0; h < sim->n_hosts; h++)
        {
          a = &sim->agents[h];
          a->slow_until = 0;
          if (a->dead)
            continue;
          if (!a->up)
            {
              a->exists = TRUE;
              agent_start (a);
            }
          if (a->insts_started)
            for (int c = 0; c < 2; c++)
              for (int i = 0; i < sim->n_inst; i++)
                inst_start (&a->inst[c][i]);
        }
      break;
    case EV_PRODUCE_END:
      sim->producing = FALSE;
      break;
    case EV_END:
      final_checks (sim);
      break;
    }
}

/* ---- setup ------------------------------------------------------------------------------------------ */

static void
sim_setup (Sim *sim)
{
  int late_host = -1;
  int n_faults;

  sim->n_hosts = (int) rnd (sim, 2, MAX_HOSTS);
  sim->n_inst = chance (sim, 0.25) && sim->multi_instance ? 2 : 1;
  sim->n_parts = (int) rnd (sim, 1, 5);
  sim->deadline_usec = rnd (sim, 300 * MS, 2 * SEC);
  sim->max_attempts = (guint) rnd (sim, 1, 3);
  sim->producing = TRUE;
  g_string_append_printf (sim->faults, "  %d hosts, %d instance(s) per color and host, deadline %" G_GINT64_FORMAT " ms, %u attempt(s)\n",
                          sim->n_hosts, sim->n_inst, sim->deadline_usec / MS, sim->max_attempts);
  for (int p = 0; p < MAX_PARTS; p++)
    {
      sim->emitted[p] = g_byte_array_new ();
      sim->max_landed[0][p] = sim->max_landed[1][p] = -1;
    }
  for (int p = 0; p < sim->n_parts; p++)
    {
      double k = g_rand_double (sim->rng);
      sim->kind[p] = k < 0.6 ? P_REGULAR : k < 0.75 ? P_SPARSE : k < 0.9 ? P_QUIET : P_LATE;
      sim->rate[p] = sim->kind[p] == P_SPARSE ? 0.5 : (double) rnd (sim, 10, 60);
      g_string_append_printf (sim->faults, "  partition %d: %s, %.1f records/s\n", p, part_kind_names[sim->kind[p]],
                              sim->rate[p]);
      if (sim->kind[p] != P_LATE)
        {
          Event *e = ev_push (sim, EV_PRODUCE, rnd (sim, 0, 20 * MS));
          e->part = p;
        }
    }
  ev_push (sim, EV_SAMPLE, 0);
  if (sim->n_hosts > 2 && chance (sim, 0.3))
    late_host = sim->n_hosts - 1;
  for (int h = 0; h < sim->n_hosts; h++)
    {
      Agent *a = &sim->agents[h];

      a->sim = sim;
      a->id = h;
      g_snprintf (a->name, sizeof a->name, "h%d", h);
      a->m = bgd_membership_new ();
      a->skew = rnd (sim, -20 * MS, 20 * MS);
      a->last_append = 0;
      for (int c = 0; c < 2; c++)
        for (int i = 0; i < MAX_INST; i++)
          {
            a->inst[c][i].agent = a;
            a->inst[c][i].host = h;
            a->inst[c][i].color = c;
            a->inst[c][i].idx = i;
          }
      if (h == late_host)
        {
          /* Joins at any time of the faults (after cutovers, during
           * one), or before the first cutover with --late-join-early
           * (docs/sim.md). */
          a->joiner = TRUE;
          Event *e = ev_push (sim, EV_AGENT_START, rnd (sim, 100 * MS, sim->late_join_early ? 900 * MS : FAULTS_USEC));
          e->host = h;
          g_string_append_printf (sim->faults, "  %s joins at %.3f ms\n", a->name, e->t / 1000.0);
          continue;
        }
      /* Deployed before the simulation starts: blue live, green blackholed. */
      a->exists = TRUE;
      a->disk.valid = TRUE;
      a->disk.st[0] = bgd_steering_new ("live");
      a->disk.st[1] = bgd_steering_new ("blackhole");
      a->disk.gen[0] = a->disk.gen[1] = 1;
      a->disk.live = 0;
      a->disk.job_offset = a->disk.job2_offset = -1;
      a->disk.start = 0;
      agent_start (a);
    }
  /* Operator actions start after the first hellos (1 s), late joiners
   * after that unless asked otherwise. */
  n_faults = (int) rnd (sim, 4, 24);
  for (int i = 0; i < n_faults; i++)
    {
      double k = g_rand_double (sim->rng);
      FaultKind kind = k < 0.28 ? F_CUTOVER : k < 0.35 ? F_ABORT : k < 0.43 ? F_AGENT_CRASH : k < 0.52 ? F_AGENT_CRASH_STEP
                       : k < 0.57 ? F_AGENT_SILENT : k < 0.70 ? F_INST_CRASH : k < 0.80 ? F_REBALANCE
                       : k < 0.86 ? F_ADD_PARTITION : k < 0.96 ? F_LOG_DELAY : F_HOST_DIES;
      Event *e = ev_push (sim, EV_FAULT, rnd (sim, kind == F_CUTOVER ? 1100 * MS : 50 * MS, FAULTS_USEC));
      e->a = kind;
    }
  ev_push (sim, EV_FAULTS_END, FAULTS_USEC);
  ev_push (sim, EV_PRODUCE_END, PRODUCE_END_USEC);
  ev_push (sim, EV_END, END_USEC);
}

static void
sim_free (Sim *sim)
{
  Event *e;

  while ((e = ev_pop (sim)) != NULL)
    ev_free (e);
  g_ptr_array_unref (sim->heap);
  for (int h = 0; h < MAX_HOSTS; h++)
    {
      Agent *a = &sim->agents[h];
      if (a->sim == NULL)
        continue;
      for (int c = 0; c < 2; c++)
        for (int i = 0; i < MAX_INST; i++)
          {
            if (a->inst[c][i].agent != NULL)
              inst_stop (&a->inst[c][i]);
          }
      if (a->up)
        agent_crash (a);
      for (int c = 0; c < 2; c++)
        g_clear_pointer (&a->disk.st[c], bgd_steering_free);
      g_clear_pointer (&a->m, bgd_membership_free);
      g_clear_pointer (&a->fp, bgd_fleet_plans_free);
      g_clear_pointer (&a->disk.fp, g_free);
    }
  for (int p = 0; p < MAX_PARTS; p++)
    if (sim->emitted[p] != NULL)
      g_byte_array_unref (sim->emitted[p]);
  g_ptr_array_unref (sim->log);
  g_rand_free (sim->rng);
  g_string_free (sim->faults, TRUE);
  g_free (sim->violation);
}

typedef struct {
  guint prepares, commits, aborts, stalls, events;
  guint by_type[EV_END + 1];
} SeedStats;

/* Runs one seed; returns its violation (g_free) or NULL. */
static char *
run_seed (guint64 seed, gboolean trace, gboolean late_join_early, gboolean multi_instance, SeedStats *stats)
{
  Sim sim = { 0 };
  Event *e;
  char *result = NULL;
  guint32 words[2] = { (guint32) seed, (guint32) (seed >> 32) };

  sim.seed = seed;
  sim.trace = trace;
  sim.rng = g_rand_new_with_seed_array (words, 2);
  sim.heap = g_ptr_array_new ();
  sim.log = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_message_free);
  sim.faults = g_string_new (NULL);
  sim.late_join_early = late_join_early;
  sim.multi_instance = multi_instance;
  sim_setup (&sim);
  while (sim.violation == NULL && (e = ev_pop (&sim)) != NULL)
    {
      sim.now = e->t;
      stats->events++;
      stats->by_type[e->type]++;
      if (sim.trace && e->type != EV_STEP && e->type != EV_PRODUCE)
        sim_trace (&sim, "[%s host %d color %d inst %d part %d a %" G_GINT64_FORMAT "]", ev_names[e->type], e->host,
                   e->color, e->inst, e->part, e->a);
      if (e->type == EV_FAULT && sim.trace)
        sim_trace (&sim, "fault %s", fault_names[e->a]);
      handle_event (&sim, e);
      ev_free (e);
      if (sim.now >= END_USEC)
        break;
    }
  stats->prepares += sim.n_prepares;
  stats->commits += sim.n_commits;
  stats->aborts += sim.n_aborts;
  stats->stalls += sim.stalls;
  if (sim.violation != NULL)
    result = g_strdup_printf ("seed %" G_GUINT64_FORMAT ": %s\n  at %.3f ms; what the seed drew:\n%s"
                              "  replay: tests/sim/sim --seed %" G_GUINT64_FORMAT " --trace",
                              seed, sim.violation, sim.now / 1000.0, sim.faults->str, seed);
  else if (trace)
    printf ("seed %" G_GUINT64_FORMAT ": no violation; what the seed drew:\n%s", seed, sim.faults->str);
  sim_free (&sim);
  return result;
}

/* The daemon's and the library's log messages: only when tracing. */
static gboolean sim_tracing;

static GLogWriterOutput
quiet_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return g_log_writer_standard_streams (level, fields, n_fields, user_data);
  if (!sim_tracing)
    return G_LOG_WRITER_HANDLED;
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      printf ("              | %s\n", (const char *) fields[i].value);
  return G_LOG_WRITER_HANDLED;
}

/* Seeds a run takes by default: fewer under the sanitizers (several
 * times slower), so that the suite's run stays about a minute. */
#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 300
#else
#define DEFAULT_SEEDS 2000
#endif

static gboolean
parse_known (const char *text, GArray *out, GError **error)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      guint64 v;
      if (!g_ascii_string_to_unsigned (g_strstrip (parts[i]), 10, 0, G_MAXUINT64, &v, error))
        return FALSE;
      g_array_append_val (out, v);
    }
  return TRUE;
}

static gboolean
is_known (GArray *known, guint64 seed)
{
  for (guint i = 0; i < known->len; i++)
    if (g_array_index (known, guint64, i) == seed)
      return TRUE;
  return FALSE;
}

int
main (int argc, char **argv)
{
  gint64 seed = -1, first = 1, count = 0;
  gboolean trace = FALSE, bench = FALSE, tap = FALSE, late_join_early = FALSE, multi_instance = FALSE;
  g_autofree char *known_text = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- bluegreen's cutover protocol, simulated");
  GOptionEntry entries[] = {
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Run this one seed", "N" },
    { "first", 0, 0, G_OPTION_ARG_INT64, &first, "First seed of a run (default 1)", "N" },
    { "seeds", 0, 0, G_OPTION_ARG_INT64, &count, "How many seeds (0, the default: 2000, 300 under ASan)", "COUNT" },
    { "trace", 0, 0, G_OPTION_ARG_NONE, &trace, "Print every event", NULL },
    { "bench", 0, 0, G_OPTION_ARG_NONE, &bench, "Print sim.seeds, sim.violations, sim.seeds_per_s", NULL },
    { "tap", 0, 0, G_OPTION_ARG_NONE, &tap, "Print the outcome as TAP (the test suite's [sim])", NULL },
    { "known", 0, 0, G_OPTION_ARG_STRING, &known_text,
      "Seeds that show an open finding (docs/sim.md), reported apart with --tap", "N,N,..." },
    { "late-join-early", 0, 0, G_OPTION_ARG_NONE, &late_join_early,
      "Let the late host join only before the first cutover", NULL },
    { "multi-instance", 0, 0, G_OPTION_ARG_NONE, &multi_instance,
      "Let a slot run two instances on a host (the agent counts one per slot)", NULL },
    { NULL },
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) known = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr(GPtrArray) failures = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) known_failed = g_array_new (FALSE, FALSE, sizeof (guint64));
  SeedStats stats = { 0 };
  guint violations = 0;
  gint64 started;
  double secs;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)
      || (known_text != NULL && !parse_known (known_text, known, &error)))
    {
      fprintf (stderr, "error: %s\n", error->message);
      return 2;
    }
  if (count <= 0)
    count = DEFAULT_SEEDS;
  if (g_getenv ("BG_SIM_SEEDS") != NULL && seed < 0)
    count = MAX (g_ascii_strtoll (g_getenv ("BG_SIM_SEEDS"), NULL, 10), 1);
  sim_tracing = trace;
  /* The agents' warnings are part of what is simulated (an instance found
   * past its barrier after an ack): not fatal here, even under the
   * suite's G_DEBUG=fatal-warnings. Criticals still are. */
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL);
  g_log_set_writer_func (quiet_writer, NULL, NULL);
  bg_client_debug_set_interleave (interleave_cb, NULL);
  if (seed >= 0)
    {
      first = seed;
      count = 1;
    }
  started = g_get_monotonic_time ();
  for (gint64 s = first; s < first + count; s++)
    {
      char *v = run_seed ((guint64) s, trace, late_join_early, multi_instance, &stats);
      guint64 u = (guint64) s;

      if (v == NULL)
        continue;
      violations++;
      if (is_known (known, u))
        {
          g_array_append_val (known_failed, u);
          g_free (v);
        }
      else
        g_ptr_array_add (failures, v);
    }
  /* The open findings' seeds run whatever the range, so that each is
   * reported as still failing or as clean now. */
  for (guint i = 0; i < known->len; i++)
    {
      guint64 k = g_array_index (known, guint64, i);
      char *v;

      if ((gint64) k >= first && (gint64) k < first + count)
        continue;
      v = run_seed (k, FALSE, late_join_early, multi_instance, &stats);
      if (v != NULL)
        g_array_append_val (known_failed, k);
      g_free (v);
    }
  secs = (g_get_monotonic_time () - started) / 1e6;
  if (g_getenv ("BG_SIM_EVENT_COUNTS") != NULL)
    for (int t = 0; t <= EV_END; t++)
      fprintf (stderr, "%-12s %u\n", ev_names[t], stats.by_type[t]);
  if (bench)
    {
      printf ("sim.seeds %" G_GINT64_FORMAT "\n", count);
      printf ("sim.violations %u\n", violations);
      printf ("sim.seeds_per_s %.0f\n", count / MAX (secs, 1e-6));
      return 0;
    }
  if (tap)
    {
      guint n = 1;

      printf ("1..%u\n", 2 + known->len);
      printf ("# %" G_GINT64_FORMAT " seeds in %.1f s: %u prepares, %u commits, %u aborts, %u cutovers waiting for traffic "
              "below a barrier at the end (issue 15)\n", count, secs, stats.prepares, stats.commits, stats.aborts,
              stats.stalls);
      for (guint i = 0; i < failures->len; i++)
        {
          g_auto(GStrv) lines = g_strsplit (failures->pdata[i], "\n", -1);
          for (guint j = 0; lines[j] != NULL; j++)
            printf ("# %s\n", lines[j]);
        }
      printf ("%s %u - [sim] seeds %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ": every input offset emitted by exactly one "
              "color, in order across colors, and every cutover ends (%u new violations)\n",
              failures->len == 0 ? "ok" : "not ok", n++, first, first + count - 1, failures->len);
      /* Issue 15: a cutover waits for traffic to reach a barrier on a
       * partition that went quiet; not a violation of exactness, but it
       * does not end within a bound. TODO until the design changes. */
      if (stats.stalls > 0)
        printf ("not ok %u - [sim] every committed cutover ends within %.0f s of the faults stopping, quiet partitions "
                "included: %u did not (issue 15) # TODO\n", n++, (END_USEC - FAULTS_USEC) / 1e6, stats.stalls);
      else
        printf ("ok %u - [sim] every committed cutover ends within %.0f s of the faults stopping, quiet partitions "
                "included\n", n++, (END_USEC - FAULTS_USEC) / 1e6);
      for (guint i = 0; i < known->len; i++)
        {
          guint64 k = g_array_index (known, guint64, i);
          gboolean still = FALSE;

          for (guint j = 0; j < known_failed->len; j++)
            still |= g_array_index (known_failed, guint64, j) == k;
          if (still)
            printf ("not ok %u - [sim] seed %" G_GUINT64_FORMAT " still shows its open finding (docs/sim.md) # TODO\n", n++, k);
          else
            printf ("ok %u - [sim] seed %" G_GUINT64_FORMAT " (listed as an open finding) is clean now: drop it from the list\n",
                    n++, k);
        }
      return 0;
    }
  for (guint i = 0; i < failures->len && i < 5; i++)
    fprintf (stderr, "%s\n", (const char *) failures->pdata[i]);
  printf ("%" G_GINT64_FORMAT " seeds, %u with a violation; %u prepares, %u commits, %u aborts, %u stalled by quiet partitions (issue 15), %u events, %.1f s\n",
          count, violations, stats.prepares, stats.commits, stats.aborts, stats.stalls, stats.events, secs);
  return violations > 0 ? 1 : 0;
}
