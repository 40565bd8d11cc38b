/* test-cutover-unit.c — the cutover state machine (src/daemon/cutover.c)
 * and sticky membership (src/daemon/membership.c) without hosts, Kafka or
 * D-Bus.
 *
 * A "fleet" here is a few BgdCutover instances of the same job sharing one
 * in-memory log: whatever one appends through its ops is read back, in log
 * order, by every instance (the coordinator included), which is exactly
 * how the agents use the control topic. The fake ops count what the
 * machine asks of the job (arm, commit, abort, release, done) so each test
 * can assert on the protocol's outcome on every host.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>

#include "daemon/cutover.h"
#include "daemon/membership.h"

#define JOB "clicks"
#define TOPIC "input"
#define N_PARTITIONS 3
#define MAX_HOSTS 4

typedef struct _Fleet Fleet;

typedef struct {
  Fleet *fleet;
  char *name;
  BgdCutover *cut;
  guint read;               /* log entries read so far */
  gboolean arm_ok;          /* what arm() answers */
  guint prepared, armed, commits, aborts, dones;
  GPtrArray *retries;       /* retry ids the machine asked this host to start */
  GHashTable *released;     /* partition → count */
  gint64 delivered[N_PARTITIONS]; /* outgoing instance, -1: none */
} Host;

struct _Fleet {
  GPtrArray *log;           /* of BgControlMessage*, the appended order */
  Host hosts[MAX_HOSTS];
  guint n_hosts;
};

static void
fake_append (gpointer data, BgControlMessage *msg)
{
  Host *h = data;
  g_ptr_array_add (h->fleet->log, msg);
}

static void
fake_prepared (gpointer data, const BgdCutoverPlan *plan)
{
  ((Host *) data)->prepared++;
}

static gboolean
fake_arm (gpointer data, const BgdCutoverPlan *plan, char **reason)
{
  Host *h = data;

  h->armed++;
  if (!h->arm_ok)
    *reason = g_strdup ("the green slot is failed on this host");
  return h->arm_ok;
}

static void fake_commit (gpointer data, const BgdCutoverPlan *plan) { ((Host *) data)->commits++; }
static void fake_abort (gpointer data, const BgdCutoverPlan *plan) { ((Host *) data)->aborts++; }
static void fake_done (gpointer data, const BgdCutoverPlan *plan) { ((Host *) data)->dones++; }

static void
fake_release (gpointer data, const BgdCutoverPlan *plan, const char *topic, gint32 partition)
{
  Host *h = data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (h->released, GINT_TO_POINTER (partition)));

  g_assert_cmpstr (topic, ==, TOPIC);
  g_hash_table_insert (h->released, GINT_TO_POINTER (partition), GUINT_TO_POINTER (n + 1));
}

static gint64
fake_delivered (gpointer data, BgColor color, const char *topic, gint32 partition)
{
  Host *h = data;
  const BgdCutoverPlan *plan = bgd_cutover_get_plan (h->cut);

  /* Only the outgoing side's delivery counts for done. */
  g_assert_true (plan != NULL && color == plan->outgoing);
  return partition >= 0 && partition < N_PARTITIONS ? h->delivered[partition] : -1;
}

static void
fake_retry (gpointer data, const BgdCutoverPlan *plan)
{
  Host *h = data;

  g_assert_nonnull (plan->retry_id);
  g_ptr_array_add (h->retries, g_strdup (plan->retry_id));
}

static const BgdCutoverOps fake_ops = {
  .append = fake_append,
  .prepared = fake_prepared,
  .arm = fake_arm,
  .commit = fake_commit,
  .abort = fake_abort,
  .release = fake_release,
  .done = fake_done,
  .delivered = fake_delivered,
  .retry = fake_retry,
};

static Fleet *
fleet_new (guint n_hosts)
{
  static const char *const names[MAX_HOSTS] = { "a", "b", "c", "d" };
  Fleet *f = g_new0 (Fleet, 1);

  f->log = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_message_free);
  f->n_hosts = n_hosts;
  for (guint i = 0; i < n_hosts; i++)
    {
      Host *h = &f->hosts[i];
      h->fleet = f;
      h->name = g_strdup (names[i]);
      h->arm_ok = TRUE;
      h->released = g_hash_table_new (NULL, NULL);
      h->retries = g_ptr_array_new_with_free_func (g_free);
      for (guint p = 0; p < N_PARTITIONS; p++)
        h->delivered[p] = -1;
      h->cut = bgd_cutover_new (h->name, JOB, &fake_ops, h);
      bgd_cutover_set_replaying (h->cut, FALSE);
    }
  return f;
}

static void
fleet_free (Fleet *f)
{
  for (guint i = 0; i < f->n_hosts; i++)
    {
      bgd_cutover_free (f->hosts[i].cut);
      g_hash_table_unref (f->hosts[i].released);
      g_ptr_array_unref (f->hosts[i].retries);
      g_free (f->hosts[i].name);
    }
  g_ptr_array_unref (f->log);
  g_free (f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fleet, fleet_free)

/* Every host reads the log to its end (what they append meanwhile too). */
static void
pump (Fleet *f)
{
  gboolean more = TRUE;

  while (more)
    {
      more = FALSE;
      for (guint i = 0; i < f->n_hosts; i++)
        {
          Host *h = &f->hosts[i];
          while (h->read < f->log->len)
            {
              const BgControlMessage *msg = f->log->pdata[h->read];
              gint64 offset = h->read++;
              bgd_cutover_handle (h->cut, msg, offset);
              more = TRUE;
            }
        }
    }
}

static guint
count (Fleet *f, BgControlType type, const char *host)
{
  guint n = 0;

  for (guint i = 0; i < f->log->len; i++)
    {
      const BgControlMessage *m = f->log->pdata[i];
      if (m->type == type && (host == NULL || g_str_equal (m->host, host)))
        n++;
    }
  return n;
}

static char *
prepare (Fleet *f, guint coordinator, BgColor outgoing, gint64 deadline_in_usec)
{
  g_autoptr(GPtrArray) barriers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) participants = NULL;
  BgControlMessage *msg;
  char *id;

  for (guint p = 0; p < N_PARTITIONS; p++)
    g_ptr_array_add (barriers, bg_control_offset_new (TOPIC, (gint32) p, 100 * (p + 1)));
  for (guint i = 0; i < f->n_hosts; i++)
    g_strv_builder_add (b, f->hosts[i].name);
  participants = g_strv_builder_end (b);
  msg = bgd_cutover_make_prepare (f->hosts[coordinator].cut, outgoing, bg_color_other (outgoing), barriers,
                                  g_get_real_time () + deadline_in_usec, (const char *const *) participants);
  id = g_strdup (msg->id);
  g_ptr_array_add (f->log, msg);
  return id;
}

/* Every host's two instances answer PlanArmed ok. */
static void
arm_all (Fleet *f, const char *id)
{
  for (guint i = 0; i < f->n_hosts; i++)
    {
      bgd_cutover_plan_armed (f->hosts[i].cut, BG_COLOR_BLUE, id, TRUE, "");
      bgd_cutover_plan_armed (f->hosts[i].cut, BG_COLOR_GREEN, id, TRUE, "");
    }
}

static BgdCutoverState
state_of (Host *h)
{
  const BgdCutoverPlan *p = bgd_cutover_get_plan (h->cut);
  return p ? p->state : BGD_CUTOVER_IDLE;
}

static void
inject_decision (Fleet *f, const char *host, const char *id, gboolean commit)
{
  BgControlMessage *msg = bg_control_message_new (commit ? BG_CONTROL_COMMIT : BG_CONTROL_ABORT, host,
                                                  g_get_real_time ());
  msg->job = g_strdup (JOB);
  msg->id = g_strdup (id);
  if (!commit)
    msg->reason = g_strdup ("injected");
  g_ptr_array_add (f->log, msg);
}

/* A committed cutover blue → green on every host. */
static char *
committed (Fleet *f)
{
  char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);

  pump (f);
  arm_all (f, id);
  pump (f);
  for (guint i = 0; i < f->n_hosts; i++)
    g_assert_cmpint (state_of (&f->hosts[i]), ==, BGD_CUTOVER_COMMITTED);
  return id;
}

/* ---- the tests ------------------------------------------------------------ */

static void
test_commit (void)
{
  g_autoptr(Fleet) f = fleet_new (3);
  g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);

  pump (f);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpuint (f->hosts[i].prepared, ==, 1);
      g_assert_cmpuint (f->hosts[i].armed, ==, 1);
      g_assert_cmpint (state_of (&f->hosts[i]), ==, BGD_CUTOVER_PREPARED);
      g_assert_true (bgd_cutover_in_flight (f->hosts[i].cut));
      g_assert_cmpint (bgd_cutover_pinned_offset (f->hosts[i].cut), ==, 0);
    }
  /* Two of three acks: no decision yet. */
  for (guint i = 0; i < 2; i++)
    {
      bgd_cutover_plan_armed (f->hosts[i].cut, BG_COLOR_BLUE, id, TRUE, "");
      bgd_cutover_plan_armed (f->hosts[i].cut, BG_COLOR_GREEN, id, TRUE, "");
    }
  /* One instance alone is not an ack. */
  bgd_cutover_plan_armed (f->hosts[2].cut, BG_COLOR_GREEN, id, TRUE, "");
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_ACK, NULL), ==, 2);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, NULL), ==, 0);
  bgd_cutover_plan_armed (f->hosts[2].cut, BG_COLOR_BLUE, id, TRUE, "");
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_ACK, NULL), ==, 3);
  /* Only the coordinator decides. */
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, NULL), ==, 1);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, "a"), ==, 1);
  g_assert_cmpuint (count (f, BG_CONTROL_ABORT, NULL), ==, 0);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpint (state_of (&f->hosts[i]), ==, BGD_CUTOVER_COMMITTED);
      g_assert_cmpuint (f->hosts[i].commits, ==, 1);
      g_assert_cmpuint (f->hosts[i].aborts, ==, 0);
    }
}

static void
test_nack (void)
{
  g_autoptr(Fleet) f = fleet_new (3);
  g_autofree char *id = NULL;

  f->hosts[2].arm_ok = FALSE;
  id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_NACK, "c"), ==, 1);
  g_assert_cmpuint (count (f, BG_CONTROL_ABORT, "a"), ==, 1);
  arm_all (f, id);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, NULL), ==, 0);
  for (guint i = 0; i < 3; i++)
    {
      const BgdCutoverPlan *p = bgd_cutover_get_plan (f->hosts[i].cut);
      g_assert_cmpint (p->state, ==, BGD_CUTOVER_ABORTED);
      g_assert_nonnull (strstr (p->reason, "host c"));
      g_assert_cmpuint (f->hosts[i].aborts, ==, 1);
      g_assert_cmpuint (f->hosts[i].commits, ==, 0);
      g_assert_false (bgd_cutover_in_flight (f->hosts[i].cut));
    }

  /* An instance that cannot arm (past a barrier) nacks too. */
  {
    g_autoptr(Fleet) g = fleet_new (2);
    g_autofree char *id2 = prepare (g, 1, BG_COLOR_GREEN, 60 * G_USEC_PER_SEC);
    pump (g);
    bgd_cutover_plan_armed (g->hosts[0].cut, BG_COLOR_GREEN, id2, FALSE, "past barrier input/0");
    pump (g);
    g_assert_cmpuint (count (g, BG_CONTROL_NACK, "a"), ==, 1);
    g_assert_cmpuint (count (g, BG_CONTROL_ABORT, "b"), ==, 1);
    g_assert_cmpint (state_of (&g->hosts[0]), ==, BGD_CUTOVER_ABORTED);
  }
}

/* [instance-restart-prepared]: an instance that restarts (or takes a
 * partition over) while the plan is prepared may find itself past a
 * barrier after its host acked. Its answer is not dropped: the host
 * appends a nack, and a coordinator that reads it before it committed
 * aborts. A later "not armed" of the same host changes nothing more. */
static void
test_nack_after_ack (void)
{
  g_autoptr(Fleet) f = fleet_new (3);
  g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);

  pump (f);
  /* b acks; a and c have not answered yet. */
  bgd_cutover_plan_armed (f->hosts[1].cut, BG_COLOR_BLUE, id, TRUE, "");
  bgd_cutover_plan_armed (f->hosts[1].cut, BG_COLOR_GREEN, id, TRUE, "");
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_ACK, "b"), ==, 1);
  /* b's restarted blue instance was past a barrier when it armed. */
  bgd_cutover_plan_armed (f->hosts[1].cut, BG_COLOR_BLUE, id, FALSE, "past barrier input/0: position 120 > 100");
  bgd_cutover_plan_armed (f->hosts[1].cut, BG_COLOR_BLUE, id, FALSE, "past barrier input/0: position 121 > 100");
  g_assert_cmpuint (count (f, BG_CONTROL_NACK, "b"), ==, 1);
  pump (f);
  arm_all (f, id);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, NULL), ==, 0);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (state_of (&f->hosts[i]), ==, BGD_CUTOVER_ABORTED);
}

/* Barriers move up, never wait for traffic: an instance already past its
 * barrier when it armed reports its position, the host's ack carries the
 * largest per partition, the coordinator's commit the final barriers, and
 * every host applies them (done then waits for them, not for the
 * prepared ones). */
static void
test_barriers_move (void)
{
  g_autoptr(Fleet) f = fleet_new (3);
  g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC); /* 100, 200, 300 */
  g_autoptr(GPtrArray) b_blue = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  g_autoptr(GPtrArray) b_green = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);
  g_autoptr(GPtrArray) c_green = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_control_offset_free);

  g_ptr_array_add (b_blue, bg_control_offset_new (TOPIC, 0, 104));
  g_ptr_array_add (b_green, bg_control_offset_new (TOPIC, 0, 107));
  g_ptr_array_add (b_green, bg_control_offset_new (TOPIC, 2, 250)); /* below: no move */
  g_ptr_array_add (c_green, bg_control_offset_new (TOPIC, 1, 230));
  pump (f);
  bgd_cutover_plan_armed (f->hosts[0].cut, BG_COLOR_BLUE, id, TRUE, "");
  bgd_cutover_plan_armed (f->hosts[0].cut, BG_COLOR_GREEN, id, TRUE, "");
  bgd_cutover_plan_armed_at (f->hosts[1].cut, BG_COLOR_BLUE, id, TRUE, "", b_blue);
  bgd_cutover_plan_armed_at (f->hosts[1].cut, BG_COLOR_GREEN, id, TRUE, "", b_green);
  bgd_cutover_plan_armed_at (f->hosts[2].cut, BG_COLOR_BLUE, id, TRUE, "", NULL);
  bgd_cutover_plan_armed_at (f->hosts[2].cut, BG_COLOR_GREEN, id, TRUE, "", c_green);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, "a"), ==, 1);
  for (guint i = 0; i < 3; i++)
    {
      const BgdCutoverPlan *p = bgd_cutover_get_plan (f->hosts[i].cut);
      g_assert_cmpint (p->state, ==, BGD_CUTOVER_COMMITTED);
      g_assert_cmpint (((BgControlOffset *) p->barriers->pdata[0])->offset, ==, 107);
      g_assert_cmpint (((BgControlOffset *) p->barriers->pdata[1])->offset, ==, 230);
      g_assert_cmpint (((BgControlOffset *) p->barriers->pdata[2])->offset, ==, 300);
    }
  /* Done waits for the moved barriers: delivered up to the prepared 100 is
   * not enough on partition 0, 107 is. */
  for (guint i = 0; i < 3; i++)
    {
      f->hosts[i].delivered[0] = 100;
      f->hosts[i].delivered[1] = 230;
      f->hosts[i].delivered[2] = 300;
      bgd_cutover_check_delivered (f->hosts[i].cut);
    }
  pump (f);
  g_assert_null (g_hash_table_lookup (f->hosts[0].released, GINT_TO_POINTER (0)));
  g_assert_nonnull (g_hash_table_lookup (f->hosts[0].released, GINT_TO_POINTER (1)));
}

static void
test_first_decision_wins (void)
{
  for (guint order = 0; order < 2; order++)
    {
      g_autoptr(Fleet) f = fleet_new (2);
      g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
      gboolean first_commit = order == 0;

      pump (f);
      inject_decision (f, "b", id, first_commit);
      inject_decision (f, "a", id, !first_commit);
      inject_decision (f, "b", id, !first_commit);
      pump (f);
      for (guint i = 0; i < 2; i++)
        {
          g_assert_cmpint (state_of (&f->hosts[i]), ==, first_commit ? BGD_CUTOVER_COMMITTED : BGD_CUTOVER_ABORTED);
          g_assert_cmpuint (f->hosts[i].commits, ==, first_commit ? 1 : 0);
          g_assert_cmpuint (f->hosts[i].aborts, ==, first_commit ? 0 : 1);
        }
      /* Late acks change nothing either. */
      arm_all (f, id);
      pump (f);
      g_assert_cmpuint (count (f, BG_CONTROL_ACK, NULL), ==, 0);
      g_assert_cmpuint (f->hosts[0].commits + f->hosts[0].aborts, ==, 1);
    }
}

static void
test_unknown_id (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *id = NULL;

  /* Idle: decisions and dones for ids nobody prepared. */
  inject_decision (f, "a", "nope-1", TRUE);
  inject_decision (f, "a", "nope-2", FALSE);
  pump (f);
  g_assert_null (bgd_cutover_get_plan (f->hosts[0].cut));
  g_assert_cmpuint (f->hosts[0].commits + f->hosts[0].aborts, ==, 0);

  /* In flight: a decision for another id does not decide this one. */
  id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  pump (f);
  inject_decision (f, "b", "some-other-id", TRUE);
  {
    BgControlMessage *done = bg_control_message_new (BG_CONTROL_DONE, "b", g_get_real_time ());
    done->job = g_strdup (JOB);
    done->id = g_strdup ("some-other-id");
    done->all = TRUE;
    g_ptr_array_add (f->log, done);
  }
  pump (f);
  g_assert_cmpint (state_of (&f->hosts[0]), ==, BGD_CUTOVER_PREPARED);
  g_assert_cmpuint (f->hosts[1].commits, ==, 0);
  g_assert_cmpuint (g_hash_table_size (f->hosts[1].released), ==, 0);

  /* Messages of other jobs are not this machine's business. */
  {
    BgControlMessage *c = bg_control_message_new (BG_CONTROL_COMMIT, "b", g_get_real_time ());
    c->job = g_strdup ("another-job");
    c->id = g_strdup (id);
    g_ptr_array_add (f->log, c);
  }
  pump (f);
  g_assert_cmpint (state_of (&f->hosts[1]), ==, BGD_CUTOVER_PREPARED);
}

static void
test_second_prepare (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *first = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  g_autofree char *second = NULL;

  pump (f);
  second = prepare (f, 1, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  pump (f);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpstr (bgd_cutover_get_plan (f->hosts[i].cut)->id, ==, first);
      g_assert_cmpuint (f->hosts[i].armed, ==, 1);
    }
  /* The first one completes undisturbed; the second is never answered. */
  arm_all (f, first);
  arm_all (f, second);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_ACK, NULL), ==, 2);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, NULL), ==, 1);
  g_assert_cmpint (state_of (&f->hosts[1]), ==, BGD_CUTOVER_COMMITTED);
  /* The whole log read again (a replay from a pinned offset) starts no
   * new cutover and applies nothing twice. */
  f->hosts[1].read = 0;
  pump (f);
  g_assert_cmpuint (f->hosts[1].armed, ==, 1);
  g_assert_cmpuint (f->hosts[1].commits, ==, 1);
}

static void
test_deadline (void)
{
  g_autoptr(Fleet) f = fleet_new (3);
  g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  const BgdCutoverPlan *plan;

  pump (f);
  plan = bgd_cutover_get_plan (f->hosts[1].cut);
  /* Before the deadline nothing happens. */
  bgd_cutover_check_deadline (f->hosts[1].cut, plan->deadline - 1);
  g_assert_cmpuint (f->log->len, ==, 1);
  /* Host b reaches the deadline: it appends an abort but does not apply it
   * on its own: only what the log says counts. */
  bgd_cutover_check_deadline (f->hosts[1].cut, plan->deadline);
  g_assert_cmpuint (count (f, BG_CONTROL_ABORT, "b"), ==, 1);
  g_assert_cmpint (state_of (&f->hosts[1]), ==, BGD_CUTOVER_PREPARED);
  g_assert_cmpuint (f->hosts[1].aborts, ==, 0);
  /* Appended once only. */
  bgd_cutover_check_deadline (f->hosts[1].cut, plan->deadline + 1);
  g_assert_cmpuint (count (f, BG_CONTROL_ABORT, "b"), ==, 1);
  /* Meanwhile the acks arrived and the coordinator committed first: the
   * commit is earlier in the log than b's abort, so it wins everywhere. */
  {
    BgControlMessage *late_abort = g_ptr_array_steal_index (f->log, f->log->len - 1);
    inject_decision (f, "a", id, TRUE);
    g_ptr_array_add (f->log, late_abort);
  }
  pump (f);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpint (state_of (&f->hosts[i]), ==, BGD_CUTOVER_COMMITTED);
      g_assert_cmpuint (f->hosts[i].aborts, ==, 0);
    }

  /* And without a commit, the deadline's abort decides. */
  {
    g_autoptr(Fleet) g = fleet_new (2);
    g_autofree char *id2 = prepare (g, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
    pump (g);
    bgd_cutover_check_deadline (g->hosts[1].cut, G_MAXINT64);
    pump (g);
    g_assert_cmpint (state_of (&g->hosts[0]), ==, BGD_CUTOVER_ABORTED);
    g_assert_cmpstr (bgd_cutover_get_plan (g->hosts[0].cut)->reason, ==, "deadline passed");
    /* A prepare read after its deadline is never armed, only aborted. */
    g_autofree char *id3 = prepare (g, 0, BG_COLOR_BLUE, -1);
    pump (g);
    g_assert_cmpuint (g->hosts[1].armed, ==, 1);
    g_assert_cmpint (state_of (&g->hosts[1]), ==, BGD_CUTOVER_ABORTED);
    g_assert_cmpstr (bgd_cutover_get_plan (g->hosts[1].cut)->id, ==, id3);
  }
}

static void
test_operator_abort (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);

  pump (f);
  g_assert_true (bgd_cutover_request_abort (f->hosts[1].cut, "aborted by operator"));
  pump (f);
  g_assert_cmpint (state_of (&f->hosts[0]), ==, BGD_CUTOVER_ABORTED);
  /* Decided: nothing to abort any more. */
  g_assert_false (bgd_cutover_request_abort (f->hosts[1].cut, "again"));
}

static void
test_done (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *id = committed (f);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  gint64 until;
  guint dones_before;

  /* Host a's outgoing instance delivered below partition 0's barrier. */
  f->hosts[0].delivered[0] = 100;
  f->hosts[0].delivered[1] = 199; /* one short of 200 */
  bgd_cutover_check_delivered (f->hosts[0].cut);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_DONE, "a"), ==, 1);
  for (guint i = 0; i < 2; i++)
    {
      Host *h = &f->hosts[i];
      /* A done from any host releases that partition on every host. */
      g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (h->released, GINT_TO_POINTER (0))), ==, 1);
      g_assert_false (g_hash_table_contains (h->released, GINT_TO_POINTER (1)));
      g_assert_cmpuint (h->dones, ==, 0);
      g_assert_cmpint (state_of (h), ==, BGD_CUTOVER_COMMITTED);
    }

  /* Batched: within the interval, what becomes done waits for one message. */
  f->hosts[0].delivered[1] = 200;
  bgd_cutover_check_delivered (f->hosts[0].cut);
  f->hosts[0].delivered[2] = 1000;
  bgd_cutover_check_delivered (f->hosts[0].cut);
  dones_before = count (f, BG_CONTROL_DONE, "a");
  g_assert_cmpuint (dones_before, ==, 1);
  until = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  while (count (f, BG_CONTROL_DONE, "a") == dones_before && g_get_monotonic_time () < until)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (count (f, BG_CONTROL_DONE, "a"), ==, 2);
  {
    const BgControlMessage *last = f->log->pdata[f->log->len - 1];
    g_assert_cmpint (last->type, ==, BG_CONTROL_DONE);
    g_assert_cmpuint (last->partitions->len, ==, 2);
  }
  pump (f);
  for (guint i = 0; i < 2; i++)
    {
      Host *h = &f->hosts[i];
      g_assert_cmpuint (g_hash_table_size (h->released), ==, N_PARTITIONS);
      g_assert_cmpuint (h->dones, ==, 1);
      g_assert_cmpint (state_of (h), ==, BGD_CUTOVER_DONE);
      g_assert_false (bgd_cutover_in_flight (h->cut));
      g_assert_cmpint (bgd_cutover_pinned_offset (h->cut), ==, -1);
    }
  /* A host's done repeated (b catching up late) releases nothing twice. */
  f->hosts[1].delivered[0] = f->hosts[1].delivered[1] = f->hosts[1].delivered[2] = 5000;
  bgd_cutover_check_delivered (f->hosts[1].cut);
  pump (f);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (f->hosts[1].released, GINT_TO_POINTER (0))), ==, 1);
  g_assert_cmpuint (f->hosts[1].dones, ==, 1);
}

static void
test_rollback (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *id = committed (f);
  g_autofree char *back = NULL;
  const BgdCutoverPlan *p;

  for (guint i = 0; i < 2; i++)
    for (guint q = 0; q < N_PARTITIONS; q++)
      f->hosts[i].delivered[q] = 10000;
  bgd_cutover_check_delivered (f->hosts[0].cut);
  pump (f);
  g_assert_cmpint (state_of (&f->hosts[1]), ==, BGD_CUTOVER_DONE);

  /* The same protocol the other way: green out, blue in (green's
   * instances have delivered nothing yet). */
  for (guint i = 0; i < 2; i++)
    for (guint q = 0; q < N_PARTITIONS; q++)
      f->hosts[i].delivered[q] = -1;
  back = prepare (f, 1, BG_COLOR_GREEN, 60 * G_USEC_PER_SEC);
  pump (f);
  p = bgd_cutover_get_plan (f->hosts[0].cut);
  g_assert_cmpstr (p->id, ==, back);
  g_assert_cmpint (p->outgoing, ==, BG_COLOR_GREEN);
  g_assert_cmpint (p->incoming, ==, BG_COLOR_BLUE);
  arm_all (f, back);
  pump (f);
  g_assert_cmpuint (count (f, BG_CONTROL_COMMIT, "b"), ==, 1);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpint (state_of (&f->hosts[i]), ==, BGD_CUTOVER_COMMITTED);
      g_assert_cmpuint (f->hosts[i].commits, ==, 2);
    }
}

static void
test_replay (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *id = NULL;
  Host *late;

  /* b restarts: its replay reads a prepare, its own earlier ack and the
   * commit. It arms nothing and appends nothing, it applies the commit. */
  id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  pump (f);
  arm_all (f, id);
  pump (f);
  late = &f->hosts[1];
  bgd_cutover_free (late->cut);
  late->cut = bgd_cutover_new (late->name, JOB, &fake_ops, late);
  late->read = 0;
  late->prepared = late->armed = late->commits = 0;
  {
    guint len = f->log->len;
    while (late->read < len)
      {
        bgd_cutover_handle (late->cut, f->log->pdata[late->read], late->read);
        late->read++;
      }
    g_assert_cmpuint (f->log->len, ==, len);
  }
  g_assert_cmpuint (late->prepared, ==, 1);
  g_assert_cmpuint (late->armed, ==, 0);
  g_assert_cmpuint (late->commits, ==, 1);
  bgd_cutover_set_replaying (late->cut, FALSE);
  g_assert_cmpuint (late->armed, ==, 0);

  /* c restarts before the decision: at the end of the replay it arms the
   * plan and answers; it never acks during the replay itself. */
  {
    g_autoptr(Fleet) g = fleet_new (2);
    g_autofree char *id2 = prepare (g, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
    Host *h = &g->hosts[1];

    bgd_cutover_free (h->cut);
    h->cut = bgd_cutover_new (h->name, JOB, &fake_ops, h);
    bgd_cutover_handle (h->cut, g->log->pdata[0], 0);
    h->read = 1;
    bgd_cutover_plan_armed (h->cut, BG_COLOR_BLUE, id2, TRUE, "");
    bgd_cutover_plan_armed (h->cut, BG_COLOR_GREEN, id2, TRUE, "");
    g_assert_cmpuint (h->armed, ==, 0);
    g_assert_cmpuint (g->log->len, ==, 1);
    bgd_cutover_set_replaying (h->cut, FALSE);
    g_assert_cmpuint (h->armed, ==, 1);
    pump (g);
    arm_all (g, id2);
    pump (g);
    g_assert_cmpuint (count (g, BG_CONTROL_ACK, "b"), ==, 1);
    g_assert_cmpuint (count (g, BG_CONTROL_COMMIT, "a"), ==, 1);
    g_assert_cmpint (state_of (h), ==, BGD_CUTOVER_COMMITTED);
  }

  /* A coordinator that restarts after all acks were appended commits at
   * the end of its replay (not during it). */
  {
    g_autoptr(Fleet) g = fleet_new (2);
    g_autofree char *id3 = prepare (g, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
    Host *h = &g->hosts[0];
    BgControlMessage *ack;

    for (guint i = 0; i < 2; i++)
      {
        ack = bg_control_message_new (BG_CONTROL_ACK, g->hosts[i].name, g_get_real_time ());
        ack->job = g_strdup (JOB);
        ack->id = g_strdup (id3);
        g_ptr_array_add (g->log, ack);
      }
    bgd_cutover_free (h->cut);
    h->cut = bgd_cutover_new (h->name, JOB, &fake_ops, h);
    for (h->read = 0; h->read < g->log->len; h->read++)
      bgd_cutover_handle (h->cut, g->log->pdata[h->read], h->read);
    g_assert_cmpuint (count (g, BG_CONTROL_COMMIT, NULL), ==, 0);
    bgd_cutover_set_replaying (h->cut, FALSE);
    g_assert_cmpuint (count (g, BG_CONTROL_COMMIT, "a"), ==, 1);
    g_assert_cmpuint (h->armed, ==, 0); /* its ack is in the log already */
  }
}

static void
test_remembered_cap (void)
{
  g_autoptr(Fleet) f = fleet_new (1);

  for (guint i = 0; i < 3 * BGD_CUTOVER_REMEMBERED_IDS; i++)
    {
      g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
      pump (f);
      inject_decision (f, "a", id, FALSE);
      pump (f);
      /* Prepares of which this host is not a participant. */
      {
        BgControlMessage *other = bg_control_message_new (BG_CONTROL_PREPARE, "zz", g_get_real_time ());
        other->job = g_strdup (JOB);
        other->id = g_strdup_printf ("foreign-%u", i);
        other->deadline = g_get_real_time () + G_USEC_PER_SEC;
        g_ptr_array_add (other->participants, g_strdup ("zz"));
        g_ptr_array_add (other->barriers, bg_control_offset_new (TOPIC, 0, 1));
        g_ptr_array_add (f->log, other);
      }
      pump (f);
    }
  g_assert_cmpuint (f->hosts[0].aborts, ==, 3 * BGD_CUTOVER_REMEMBERED_IDS);
  g_assert_cmpuint (bgd_cutover_n_remembered (f->hosts[0].cut), <=, 2 * BGD_CUTOVER_REMEMBERED_IDS);
  g_assert_cmpuint (bgd_cutover_n_remembered (f->hosts[0].cut), >=, BGD_CUTOVER_REMEMBERED_IDS);
}

/* ---- membership -------------------------------------------------------------- */

static BgControlMessage *
hello (const char *host, gint64 ts, const char *job, gboolean green_ready)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_HELLO, host, ts);
  BgControlJob *j = bg_control_job_new (job);
  BgControlSlot *s = bg_control_slot_new (BG_COLOR_GREEN, "running");

  s->ready = green_ready;
  g_ptr_array_add (j->slots, s);
  g_ptr_array_add (msg->jobs, j);
  return msg;
}

static void
feed (BgdMembership *m, BgControlMessage *msg)
{
  bgd_membership_handle (m, msg);
  bg_control_message_free (msg);
}

static void
assert_hosts (BgdMembership *m, const char *const *static_hosts, const char *expected)
{
  g_auto(GStrv) hosts = bgd_membership_expected (m, JOB, static_hosts, "self");
  g_autofree char *joined = g_strjoinv (",", hosts);

  g_assert_cmpstr (joined, ==, expected);
}

static void
test_membership_sticky (void)
{
  g_autoptr(BgdMembership) m = bgd_membership_new ();
  gint64 t0 = 1000000;
  BgControlMessage *msg;

  assert_hosts (m, NULL, "self");
  feed (m, hello ("b", t0, JOB, FALSE));
  feed (m, hello ("a", t0 + 1, JOB, TRUE));
  feed (m, hello ("x", t0, "other-job", TRUE));
  assert_hosts (m, NULL, "a,b,self");
  g_assert_true (bgd_membership_slot_ready (m, JOB, "a", BG_COLOR_GREEN));
  g_assert_false (bgd_membership_slot_ready (m, JOB, "b", BG_COLOR_GREEN));
  g_assert_false (bgd_membership_slot_ready (m, JOB, "a", BG_COLOR_BLUE));
  g_assert_false (bgd_membership_slot_ready (m, JOB, "x", BG_COLOR_GREEN));
  g_assert_cmpint (bgd_membership_last_seen (m, "a"), ==, t0 + 1);
  g_assert_cmpint (bgd_membership_last_seen (m, "nobody"), ==, 0);

  /* A replayed older hello never makes a host look more recent... */
  feed (m, hello ("a", t0 - 5, JOB, TRUE));
  g_assert_cmpint (bgd_membership_last_seen (m, "a"), ==, t0 + 1);
  /* ...and silence never drops a host: it stays expected. */
  feed (m, hello ("c", t0 + (gint64) 3600 * G_USEC_PER_SEC, JOB, TRUE));
  assert_hosts (m, NULL, "a,b,c,self");

  /* leave and evict end membership. */
  msg = bg_control_message_new (BG_CONTROL_LEAVE, "b", t0 + 10);
  msg->job = g_strdup (JOB);
  feed (m, msg);
  assert_hosts (m, NULL, "a,c,self");
  msg = bg_control_message_new (BG_CONTROL_EVICT, "self", t0 + 11);
  msg->job = g_strdup (JOB);
  msg->evicted_host = g_strdup ("a");
  feed (m, msg);
  assert_hosts (m, NULL, "c,self");
  /* A leave for another job does not touch this one. */
  msg = bg_control_message_new (BG_CONTROL_LEAVE, "c", t0 + 12);
  msg->job = g_strdup ("other-job");
  feed (m, msg);
  assert_hosts (m, NULL, "c,self");
  /* A host that comes back announces itself again. */
  feed (m, hello ("b", t0 + 20, JOB, FALSE));
  assert_hosts (m, NULL, "b,c,self");

  /* A static Hosts= list replaces what the log says (self always in). */
  {
    const char *const fixed[] = { "q", "p", NULL };
    const char *const empty[] = { NULL };
    assert_hosts (m, fixed, "p,q,self");
    assert_hosts (m, empty, "b,c,self");
  }
}

static void
test_membership_caps (void)
{
  g_autoptr(BgdMembership) m = bgd_membership_new ();
  g_auto(GStrv) hosts = NULL;

  for (guint i = 0; i < BGD_MEMBERSHIP_MAX_HOSTS + 50; i++)
    {
      g_autofree char *name = g_strdup_printf ("h%04u", i);
      feed (m, hello (name, 1000 + i, JOB, TRUE));
    }
  hosts = bgd_membership_expected (m, JOB, NULL, "self");
  /* The cap, plus this host itself. */
  g_assert_cmpuint (g_strv_length (hosts), ==, BGD_MEMBERSHIP_MAX_HOSTS + 1);
  g_assert_false (bgd_membership_slot_ready (m, JOB, "h0300", BG_COLOR_GREEN));
  g_assert_true (bgd_membership_slot_ready (m, JOB, "h0000", BG_COLOR_GREEN));

  for (guint i = 0; i < BGD_MEMBERSHIP_MAX_JOBS + 10; i++)
    {
      g_autofree char *job = g_strdup_printf ("job%05u", i);
      feed (m, hello ("h0000", 5000 + i, job, TRUE));
    }
  /* Jobs beyond the cap are not remembered; the known ones still work. */
  g_assert_false (bgd_membership_slot_ready (m, "job01030", "h0000", BG_COLOR_GREEN));
  g_assert_true (bgd_membership_slot_ready (m, JOB, "h0001", BG_COLOR_GREEN));
}

/* ---- attempts ------------------------------------------------------------- */

/* What the job does for a retry: the coordinator's prepare under @id. */
static void
prepare_attempt (Fleet *f, guint coordinator, const char *id)
{
  g_autofree char *random_id = prepare (f, coordinator, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  BgControlMessage *msg = f->log->pdata[f->log->len - 1];

  g_free (msg->id);
  msg->id = g_strdup (id);
}

static const BgControlMessage *
last_of (Fleet *f, BgControlType type)
{
  for (guint i = f->log->len; i > 0; i--)
    if (((BgControlMessage *) f->log->pdata[i - 1])->type == type)
      return f->log->pdata[i - 1];
  return NULL;
}

static void
test_attempt_ids (void)
{
  g_autofree char *a = bgd_cutover_operator_id ("f00d");
  g_autofree char *b = bgd_cutover_operator_id ("f00d.2");
  g_autofree char *c = bgd_cutover_operator_id ("f00d.10");
  g_autofree char *d = bgd_cutover_operator_id ("f00d.1");   /* not an attempt suffix */
  g_autofree char *e = bgd_cutover_operator_id ("f00d.02");
  g_autofree char *n1 = bgd_cutover_next_attempt_id ("f00d");
  g_autofree char *n2 = bgd_cutover_next_attempt_id ("f00d.2");
  g_autofree char *n3 = bgd_cutover_next_attempt_id ("a.b");

  g_assert_cmpstr (a, ==, "f00d");
  g_assert_cmpstr (b, ==, "f00d");
  g_assert_cmpstr (c, ==, "f00d");
  g_assert_cmpstr (d, ==, "f00d.1");
  g_assert_cmpstr (e, ==, "f00d.02");
  g_assert_cmpuint (bgd_cutover_attempt ("f00d"), ==, 1);
  g_assert_cmpuint (bgd_cutover_attempt ("f00d.3"), ==, 3);
  g_assert_cmpstr (n1, ==, "f00d.2");
  g_assert_cmpstr (n2, ==, "f00d.3");
  g_assert_cmpstr (n3, ==, "a.b.2");
  g_assert_true (bgd_cutover_reason_is_past_barrier ("host b: green: past barrier in/0: position 5 > 4"));
  g_assert_false (bgd_cutover_reason_is_past_barrier ("deadline passed"));
  g_assert_false (bgd_cutover_reason_is_past_barrier (NULL));
}

/* Past-barrier nacks: retried by the coordinator up to Attempts=, every
 * host sees the retry mark in the first decision; the last attempt's abort
 * carries the plain reason. */
static void
test_attempts_retry (void)
{
  g_autoptr(Fleet) f = fleet_new (3);
  g_autofree char *id = NULL;
  g_autofree char *attempt = NULL;

  for (guint i = 0; i < 3; i++)
    bgd_cutover_set_max_attempts (f->hosts[i].cut, 3);
  id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
  attempt = g_strdup (id);
  for (guint n = 1; n <= 3; n++)
    {
      const BgControlMessage *abort_msg;

      if (n > 1)
        {
          /* The machine asked the coordinator, and only it, for this one. */
          g_assert_cmpuint (f->hosts[0].retries->len, ==, n - 1);
          g_assert_cmpuint (f->hosts[1].retries->len, ==, 0);
          g_assert_cmpstr (g_ptr_array_index (f->hosts[0].retries, n - 2), ==, attempt);
          prepare_attempt (f, 0, attempt);
        }
      pump (f);
      bgd_cutover_plan_armed (f->hosts[0].cut, BG_COLOR_BLUE, attempt, TRUE, "");
      bgd_cutover_plan_armed (f->hosts[0].cut, BG_COLOR_GREEN, attempt, TRUE, "");
      bgd_cutover_plan_armed (f->hosts[2].cut, BG_COLOR_BLUE, attempt, FALSE,
                              "past barrier input/1: position 205 > 200");
      pump (f);
      abort_msg = last_of (f, BG_CONTROL_ABORT);
      g_assert_nonnull (abort_msg);
      g_assert_cmpstr (abort_msg->id, ==, attempt);
      g_test_message ("attempt %s: abort %s", attempt, abort_msg->reason);
      for (guint i = 0; i < 3; i++)
        {
          const BgdCutoverPlan *p = bgd_cutover_get_plan (f->hosts[i].cut);
          g_assert_cmpstr (p->id, ==, attempt);
          g_assert_cmpint (p->state, ==, BGD_CUTOVER_ABORTED);
          g_assert_cmpuint (f->hosts[i].aborts, ==, n);
          g_assert_nonnull (strstr (p->reason, "past barrier"));
          if (n < 3)
            {
              g_autofree char *next = bgd_cutover_next_attempt_id (attempt);
              g_assert_cmpstr (p->retry_id, ==, next);
              g_assert_true (g_str_has_prefix (p->reason, BGD_CUTOVER_RETRY_PREFIX));
            }
          else
            {
              g_assert_null (p->retry_id);
              g_assert_false (g_str_has_prefix (p->reason, BGD_CUTOVER_RETRY_PREFIX));
            }
        }
      if (n < 3)
        {
          g_autofree char *next = bgd_cutover_next_attempt_id (attempt);
          g_free (attempt);
          attempt = g_steal_pointer (&next);
        }
    }
  g_assert_cmpuint (f->hosts[0].retries->len, ==, 2);
  {
    g_autofree char *op = bgd_cutover_operator_id (attempt);
    g_assert_cmpstr (op, ==, id);
  }
}

/* Only past-barrier nacks are retried, only when Attempts= allows, and
 * only the coordinator's marked abort counts as a retry. */
static void
test_attempts_no_retry (void)
{
  /* A nack of another kind. */
  {
    g_autoptr(Fleet) f = fleet_new (2);
    g_autofree char *id = NULL;

    bgd_cutover_set_max_attempts (f->hosts[0].cut, 3);
    f->hosts[1].arm_ok = FALSE;
    id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
    pump (f);
    g_assert_null (bgd_cutover_get_plan (f->hosts[1].cut)->retry_id);
    g_assert_cmpuint (f->hosts[0].retries->len, ==, 0);
  }
  /* Attempts=1 (the default of the machine). */
  {
    g_autoptr(Fleet) f = fleet_new (2);
    g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);

    pump (f);
    bgd_cutover_plan_armed (f->hosts[1].cut, BG_COLOR_GREEN, id, FALSE, "past barrier input/0: position 9 > 8");
    pump (f);
    g_assert_cmpint (state_of (&f->hosts[1]), ==, BGD_CUTOVER_ABORTED);
    g_assert_null (bgd_cutover_get_plan (f->hosts[1].cut)->retry_id);
    g_assert_cmpuint (f->hosts[0].retries->len, ==, 0);
  }
  /* A deadline abort came first: the coordinator's marked abort is a
   * second decision and changes nothing. */
  {
    g_autoptr(Fleet) f = fleet_new (2);
    g_autofree char *id = NULL;

    for (guint i = 0; i < 2; i++)
      bgd_cutover_set_max_attempts (f->hosts[i].cut, 3);
    id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
    pump (f);
    inject_decision (f, "b", id, FALSE);
    bgd_cutover_plan_armed (f->hosts[1].cut, BG_COLOR_GREEN, id, FALSE, "past barrier input/0: position 9 > 8");
    pump (f);
    for (guint i = 0; i < 2; i++)
      {
        g_assert_null (bgd_cutover_get_plan (f->hosts[i].cut)->retry_id);
        g_assert_cmpuint (f->hosts[i].aborts, ==, 1);
      }
    g_assert_cmpuint (f->hosts[0].retries->len, ==, 0);
  }
  /* A forged mark from a host that is not the coordinator. */
  {
    g_autoptr(Fleet) f = fleet_new (2);
    g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);
    BgControlMessage *msg;

    pump (f);
    msg = bg_control_message_new (BG_CONTROL_ABORT, "b", g_get_real_time ());
    msg->job = g_strdup (JOB);
    msg->id = g_strdup (id);
    msg->reason = g_strdup_printf (BGD_CUTOVER_RETRY_PREFIX "%s.2: forged", id);
    g_ptr_array_add (f->log, msg);
    pump (f);
    g_assert_cmpint (state_of (&f->hosts[0]), ==, BGD_CUTOVER_ABORTED);
    g_assert_null (bgd_cutover_get_plan (f->hosts[0].cut)->retry_id);
    g_assert_cmpuint (f->hosts[0].retries->len, ==, 0);
  }
}

/* The arming time a later lead learns from: set once every ack is read. */
static void
test_attempts_armed_after (void)
{
  g_autoptr(Fleet) f = fleet_new (2);
  g_autofree char *id = prepare (f, 0, BG_COLOR_BLUE, 60 * G_USEC_PER_SEC);

  pump (f);
  g_assert_cmpint (bgd_cutover_get_plan (f->hosts[0].cut)->armed_after, ==, 0);
  arm_all (f, id);
  pump (f);
  g_assert_cmpint (bgd_cutover_get_plan (f->hosts[0].cut)->armed_after, >, 0);
  g_assert_cmpint (bgd_cutover_get_plan (f->hosts[0].cut)->armed_after, <, 60 * G_USEC_PER_SEC);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cutover-unit/commit", test_commit);
  g_test_add_func ("/cutover-unit/nack", test_nack);
  g_test_add_func ("/cutover-unit/[quiet-partition]/barriers-move", test_barriers_move);
  g_test_add_func ("/cutover-unit/[instance-restart-prepared]/nack-after-ack", test_nack_after_ack);
  g_test_add_func ("/cutover-unit/first-decision-wins", test_first_decision_wins);
  g_test_add_func ("/cutover-unit/unknown-id", test_unknown_id);
  g_test_add_func ("/cutover-unit/second-prepare", test_second_prepare);
  g_test_add_func ("/cutover-unit/deadline", test_deadline);
  g_test_add_func ("/cutover-unit/operator-abort", test_operator_abort);
  g_test_add_func ("/cutover-unit/done", test_done);
  g_test_add_func ("/cutover-unit/rollback", test_rollback);
  g_test_add_func ("/cutover-unit/replay", test_replay);
  g_test_add_func ("/cutover-unit/remembered-cap", test_remembered_cap);
  g_test_add_func ("/cutover-unit/attempts/ids", test_attempt_ids);
  g_test_add_func ("/cutover-unit/attempts/retry", test_attempts_retry);
  g_test_add_func ("/cutover-unit/attempts/no-retry", test_attempts_no_retry);
  g_test_add_func ("/cutover-unit/attempts/armed-after", test_attempts_armed_after);
  g_test_add_func ("/cutover-unit/membership/sticky", test_membership_sticky);
  g_test_add_func ("/cutover-unit/membership/caps", test_membership_caps);
  return g_test_run ();
}
