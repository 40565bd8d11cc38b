/* test-quiet.c — a cutover and a rollback must finish however little
 * traffic a partition has (issue 15): three simulated hosts under load,
 * the input's 6 partitions driven by separate generators with keys of
 * their own —
 *
 *   0-2  busy all along;
 *   3    busy until the operation's prepare is in the control log, then
 *        silent (the test follows the log and stops that generator);
 *   4    sparse: a record every 10 s, the operation called right after one
 *        arrived;
 *   5    empty at the prepare, its first records produced right after the
 *        commit is in the log.
 *
 * For a cutover ([quiet-partition] cutover) and for a rollback after a
 * cutover ([quiet-partition] rollback; that cutover must end in time too):
 * every host signals CutoverFinished "done" within 2 s of the commit
 * record's appearance in the control log (its timestamp) and reports it in
 * LastCutover, the barriers of the quiet, sparse and empty partitions are
 * within what those partitions hold (the empty one's is 0), and after more
 * records on them (consumed by the live color alone) the verifier finds no
 * gap, no cross-version duplicate, no order violation and the right state,
 * with each color's results exactly on its side of the barriers.
 *
 * The bound is on the protocol, not on a backlog: each operation starts
 * with the incoming color Ready and the outgoing one caught up with the
 * load (which is light, so a sanitizer build on a busy machine keeps up).
 * Before the fix of issue 15 the cutover never ended (LastCutover stayed
 * "committed": the quiet partition's barrier was ahead of its last
 * record), and a cutover that came after a sparse record ended only with
 * the next one, ~10 s later.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "scenario.h"

#define QUIET 3
#define SPARSE 4
#define EMPTY 5
/* The bound of issue 15: done within 2 s of the commit. */
#define DONE_WITHIN_MS 2000
/* How much longer to wait for CutoverFinished before failing, so that the
 * failure says whether the operation was late or never ended. */
#define LATE_MS 8000
/* Records/s on each busy partition (see start()). */
#define RATE 30
/* The sparse generator's period is 10 s. */
#define SPARSE_WAIT_MS 25000

typedef struct {
  BgtLoad *busy, *quiet, *sparse, *empty;
} Loads;

static BgtLoad *
load (Fixture *f, double rate, guint64 count, const char *partitions, const char *prefix, guint keys)
{
  g_autoptr (GError) error = NULL;
  BgtLoadOptions o = { .rate = rate, .count = count, .partitions = partitions, .key_prefix = prefix,
                       .keys = keys };
  BgtLoad *l = bgt_fleet_load_new (f->fleet, &o, &error);

  g_assert_no_error (error);
  g_assert_nonnull (l);
  return l;
}

static void
load_stop (BgtLoad *l)
{
  g_autoptr (GError) error = NULL;
  gint64 n = bgt_load_stop (l, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, >=, 0);
}

/* A bounded generator: all of it produced. */
static void
load_all (Fixture *f, guint64 count, const char *partitions, const char *prefix, guint keys)
{
  g_autoptr (GError) error = NULL;
  BgtLoad *l = load (f, 0, count, partitions, prefix, keys);
  gint64 n = bgt_load_wait (l, WAIT_MS, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, ==, (gint64) count);
}

static GArray *
watermarks (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  GArray *w = bgt_fleet_input_watermarks (f->fleet, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (w->len, ==, f->opts.partitions);
  return w;
}

#define HWM(w, p) g_array_index ((w), gint64, (p))

/* Blue v1 live on every host, the generators running (partition 4 with a
 * few records already, 5 with none), green v2 deployed and Ready. */
static void
start (Fixture *f, Loads *l)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_deploy (f->fleet, 0, "v1", TRUE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "blue", "State", "running");
  wait_job (f, 0, "LiveColor", "blue");
  /* RATE records/s on each busy partition (a lead of 1 s of traffic, as
   * before issue 15 with opts_quiet(), is 30 records): far less than the
   * other fleet tests, so that in a sanitizer build on a busy machine
   * (seen: a load average of 27 on 2 cores) the old version keeps up with
   * it: the bound is on the protocol, not on a backlog. */
  l->busy = load (f, 3 * RATE, 0, "0-2", NULL, 300);
  l->quiet = load (f, RATE, 0, "3", "quiet-", 30);
  load_all (f, 3, "4", "sparse-", 10);
  l->sparse = load (f, 0.1, 0, "4", "sparse-", 10);
  bgt_fleet_deploy (f->fleet, 0, "v2", FALSE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "green", "State", "running");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", 60000));
  wait_job (f, 0, "Phase", "ready");
  {
    g_autoptr (GArray) w = watermarks (f);
    g_assert_cmpint (HWM (w, EMPTY), ==, 0);
  }
}

typedef struct {
  Fixture *f;
  gint64 above;
} SparseWait;

static gboolean
sparse_arrived (gpointer data)
{
  SparseWait *w = data;
  g_autoptr (GArray) marks = bgt_fleet_input_watermarks (w->f->fleet, NULL);

  return marks != NULL && HWM (marks, SPARSE) > w->above;
}

/* Returns right after the sparse partition got its next record: a rate
 * sample taken now sees it busy (a lead of one record, before issue 15). */
static void
wait_sparse_record (Fixture *f)
{
  g_autoptr (GArray) before = watermarks (f);
  SparseWait w = { f, HWM (before, SPARSE) };

  g_assert_true (bgt_wait_until (sparse_arrived, &w, SPARSE_WAIT_MS));
  g_test_message ("sparse partition %d: a record at offset %" G_GINT64_FORMAT, SPARSE, w.above);
}

/* Where @color's instances are against the input, for the log: a late
 * done on a loaded machine is an instance that has not caught up. */
static void
log_progress (Fixture *f, const char *color, const char *when)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_autoptr (GArray) w = watermarks (f);
  g_autoptr (GString) marks = g_string_new (NULL);

  for (guint p = 0; p < w->len; p++)
    g_string_append_printf (marks, " %" G_GINT64_FORMAT, HWM (w, p));
  g_test_message ("%s: input high watermarks%s", when, marks->str);
  for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
    {
      g_autoptr (GVariant) lag = bgt_fleet_get (f->fleet, i, path, BGT_SLOT_IFACE, "Lag");
      g_autoptr (GVariant) pos = bgt_fleet_get (f->fleet, i, path, BGT_SLOT_IFACE, "Positions");
      g_autofree char *text = pos != NULL ? g_variant_print (pos, FALSE) : NULL;

      g_test_message ("%s: host %s %s: Lag %" G_GINT64_FORMAT ", Positions %s", when, bgt_fleet_host_id (f->fleet, i),
                      color, lag != NULL ? g_variant_get_int64 (lag) : -1, text);
    }
}

/* Waits until every host signalled CutoverFinished(@id) "done" and
 * asserts that the last of them came within DONE_WITHIN_MS of @commit_at
 * (when the commit record appeared in the log). */
static void
assert_done_in_time (Fixture *f, const char *id, gint64 commit_at)
{
  g_autofree char *result = bgt_fleet_wait_finished (f->fleet, id, 0, DONE_WITHIN_MS + LATE_MS);
  g_autoptr (GPtrArray) seen = NULL;
  gint64 last = G_MININT64;

  if (result == NULL)
    for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
      {
        g_auto (BgtCutoverInfo) info = { 0 };
        bgt_fleet_last_cutover (f->fleet, i, &info);
        g_test_message ("host %s, %d ms after the commit: LastCutover %s %s (%s)", bgt_fleet_host_id (f->fleet, i),
                        (int) ((g_get_monotonic_time () - commit_at) / 1000), info.id, info.result, info.reason);
      }
  g_assert_cmpstr (result, ==, "done");
  seen = bgt_fleet_finished_for (f->fleet, id);
  g_assert_cmpuint (seen->len, ==, bgt_fleet_n_hosts (f->fleet));
  for (guint i = 0; i < seen->len; i++)
    {
      BgtFinished *fin = g_ptr_array_index (seen, i);
      g_test_message ("%s: CutoverFinished %s on %s %" G_GINT64_FORMAT " ms after the commit", id, fin->result,
                      fin->host, (fin->at - commit_at) / 1000);
      last = MAX (last, fin->at);
    }
  g_assert_cmpint (last - commit_at, <=, DONE_WITHIN_MS * G_GINT64_CONSTANT (1000));
}

/* Every host appended a hello after now. */
static void
wait_hellos (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  gint64 mark = bgt_fleet_control_watermark (f->fleet, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
    {
      g_autofree char *h = needle ("host", bgt_fleet_host_id (f->fleet, i));
      const char *needles[] = { "\"type\":\"hello\"", h, NULL };
      g_assert_cmpint (bgt_fleet_control_wait (f->fleet, mark, needles, WAIT_MS), >=, mark);
    }
}

/* Cutover (or Rollback) called on @host. With @quiet: partition 3 goes
 * quiet at its prepare and partition 5 gets its first records after its
 * commit. Asserts the end in time; returns the id.
 *
 * An attempt may be aborted and retried under "<id>.N" with a new prepare
 * (before issue 15, when an instance was past its barrier when it armed);
 * the quiet partition's traffic resumes at each such abort and stops again
 * at the next prepare, so it goes quiet right after the prepare of the
 * attempt that commits. */
static char *
operate (Fixture *f, Loads *l, guint host, gboolean rollback, gboolean quiet)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *id_prefix = NULL;
  gint64 from, committed = -1, commit_at = 0;
  guint attempts = 0;

  from = bgt_fleet_control_watermark (f->fleet, &error);
  g_assert_no_error (error);
  if (quiet)
    wait_sparse_record (f);
  /* On a loaded machine a group may have rebalanced meanwhile: the
   * incoming color rebuilds its state and is not Ready for a while. And
   * the bound is on the protocol, not on a backlog: the outgoing color
   * must emit everything below the barriers, so it starts caught up (a
   * sanitizer build on a busy machine lagged 4 s behind the load). */
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, rollback ? "blue" : "green", 60000));
  keep_producing (f, 0, rollback ? "green" : "blue");
  /* An agent starved on a loaded machine may miss a heartbeat or two:
   * refused as HostSilent then, as an operator would, ask again. */
  for (gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;;)
    {
      g_autofree char *remote = NULL;

      g_clear_error (&error);
      id = bgt_fleet_cutover (f->fleet, host, rollback, 0, 0, &error);
      if (id != NULL)
        break;
      remote = g_dbus_error_get_remote_error (error);
      if (g_strcmp0 (remote, "org.bluegreen.Error.HostSilent") != 0 || g_get_monotonic_time () > end)
        break;
      g_test_message ("%s; asking again once every host was heard", error->message);
      wait_hellos (f);
    }
  g_assert_no_error (error);
  g_assert_nonnull (id);
  /* Its records, and those of its retried attempts ("<id>.N"). */
  id_prefix = g_strdup_printf ("\"id\":\"%s", id);
  while (committed < 0)
    {
      const char *needles[] = { id_prefix, NULL };
      g_autofree char *text = NULL;
      gint64 at = 0;
      gint64 offset = bgt_fleet_control_wait_timed (f->fleet, from, needles, WAIT_MS, &at, &text);

      g_assert_cmpint (offset, >=, from);
      from = offset + 1;
      if (strstr (text, "\"type\":\"prepare\"") != NULL)
        {
          attempts++;
          if (quiet && l->quiet != NULL)
            {
              load_stop (l->quiet);
              l->quiet = NULL;
            }
          g_test_message ("prepare at control offset %" G_GINT64_FORMAT ": %s", offset, text);
          log_progress (f, rollback ? "green" : "blue", "prepared");
        }
      else if (strstr (text, "\"type\":\"abort\"") != NULL)
        {
          g_test_message ("abort at control offset %" G_GINT64_FORMAT ": %s", offset, text);
          if (quiet && l->quiet == NULL)
            l->quiet = load (f, RATE, 0, "3", "quiet-", 30);
        }
      else if (strstr (text, "\"type\":\"commit\"") != NULL)
        {
          committed = offset;
          commit_at = at;
        }
    }
  g_test_message ("%s %s: %u attempts, commit at control offset %" G_GINT64_FORMAT ", read %" G_GINT64_FORMAT
                  " ms after it appeared", rollback ? "rollback" : "cutover", id, attempts, committed,
                  (g_get_monotonic_time () - commit_at) / 1000);
  g_assert_cmpuint (attempts, >=, 1);
  if (quiet)
    {
      g_assert_null (l->quiet);
      l->empty = load (f, 200, 0, "5", "empty-", 30);
    }
  assert_done_in_time (f, id, commit_at);
  return g_steal_pointer (&id);
}

/* The quiet, sparse and empty partitions' barriers hold no record that
 * has not arrived (the old version reached them without more traffic);
 * the empty partition's is 0. */
static void
assert_barriers_reached (Fixture *f, GArray *barriers)
{
  g_autoptr (GArray) w = watermarks (f);
  const int parts[] = { QUIET, SPARSE, EMPTY };

  g_assert_cmpuint (barriers->len, ==, f->opts.partitions);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      int p = parts[i];
      g_test_message ("partition %d: barrier %" G_GINT64_FORMAT ", high watermark %" G_GINT64_FORMAT, p,
                      HWM (barriers, p), HWM (w, p));
      g_assert_cmpint (HWM (barriers, p), >=, 0);
      g_assert_cmpint (HWM (barriers, p), <=, HWM (w, p));
    }
  g_assert_cmpint (HWM (barriers, EMPTY), ==, 0);
}

/* More records on the quiet, sparse and empty partitions after the end,
 * then every generator stopped and @live caught up with all of it.
 * Returns the final high watermarks. */
static GArray *
produce_after_and_stop (Fixture *f, Loads *l, const char *live)
{
  load_all (f, 200, "3", "quiet-", 30);
  load_all (f, 50, "4", "sparse-", 10);
  keep_producing (f, 0, live);
  load_stop (l->busy);
  load_stop (l->empty);
  /* The sparse one may not have produced since it started: no count. */
  {
    g_autoptr (GError) error = NULL;
    bgt_load_stop (l->sparse, &error);
    g_assert_no_error (error);
  }
  keep_producing (f, 0, live);
  return watermarks (f);
}

/* @live emitted the last record of the quiet, sparse and empty partitions. */
static void
assert_live_took_the_rest (JsonObject *report, GArray *hwm, const char *live)
{
  const int parts[] = { QUIET, SPARSE, EMPTY };

  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      int p = parts[i];
      g_test_message ("partition %d: %" G_GINT64_FORMAT " records, %s's last result at %" G_GINT64_FORMAT, p,
                      HWM (hwm, p), live, bgt_report_color_last (report, p, live));
      g_assert_cmpint (bgt_report_color_last (report, p, live), ==, HWM (hwm, p) - 1);
    }
}

/* ---- [quiet-partition] cutover ------------------------------------------------ */

/* LeadFactor=1 s: before the fix of issue 15 every barrier was that much
 * traffic ahead of the high watermark, so the test's reaction to the
 * prepare (up to 0.7 s on a loaded machine) stayed within it and the quiet
 * partition was left behind its barrier, as in the issue (with the
 * default 0.2 s a slow reaction let it reach the barrier). Since the fix
 * barriers have no lead and the setting is ignored. */
static void
opts_quiet (BgtFleetOptions *o)
{
  o->lead_sec = 1;
}

static void
test_cutover (Fixture *f, gconstpointer data)
{
  Loads l = { 0 };
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (GArray) hwm = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start (f, &l);
  id = operate (f, &l, A, FALSE, TRUE);
  barriers = assert_last_cutover (f, 0, id, "done");
  assert_barriers_reached (f, barriers);
  wait_job (f, 0, "LiveColor", "green");
  /* ObservationSec=0: the old version stops at once. */
  wait_slot (f, 0, "blue", "State", "stopped");
  wait_job (f, 0, "Phase", "live");
  hwm = produce_after_and_stop (f, &l, "green");
  /* Green's first result on every partition exactly at its barrier, blue's
   * last just below. */
  report = verify (f, "blue", "green", barriers);
  assert_live_took_the_rest (report, hwm, "green");
}

/* ---- [quiet-partition] rollback ----------------------------------------------- */

static void
opts_observe (BgtFleetOptions *o)
{
  opts_quiet (o);
  o->observation_sec = 120;
}

static void
test_rollback (Fixture *f, gconstpointer data)
{
  Loads l = { 0 };
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  g_autoptr (GArray) x1 = NULL;
  g_autoptr (GArray) x2 = NULL;
  g_autoptr (GArray) hwm = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start (f, &l);
  /* The cutover, with every partition as it is: it too ends in time. */
  id1 = operate (f, &l, A, FALSE, FALSE);
  x1 = assert_last_cutover (f, 0, id1, "done");
  wait_job (f, 0, "Phase", "observing");
  wait_slot (f, 0, "blue", "State", "running");
  keep_producing (f, 0, "green");

  /* Back to blue, coordinated from another host, with partition 3 going
   * quiet at its prepare, 4 sparse and 5 empty until its commit. */
  id2 = operate (f, &l, B, TRUE, TRUE);
  x2 = assert_last_cutover (f, 0, id2, "done");
  assert_barriers_reached (f, x2);
  wait_job (f, 0, "LiveColor", "blue");
  {
    g_auto (BgtCutoverInfo) info = { 0 };
    g_assert_true (bgt_fleet_last_cutover (f->fleet, C, &info));
    g_assert_cmpstr (info.outgoing, ==, "green");
    g_assert_cmpstr (info.incoming, ==, "blue");
  }
  hwm = produce_after_and_stop (f, &l, "blue");

  /* Green emitted exactly [X1, X2) on every partition, blue everything
   * else; with no gap and no cross-version duplicate that is exact. */
  report = verify (f, "blue", "green", NULL);
  for (guint p = 0; p < x1->len; p++)
    {
      gint64 a = HWM (x1, p), b = HWM (x2, p);
      g_test_message ("partition %u: X1 %" G_GINT64_FORMAT " X2 %" G_GINT64_FORMAT ", green [%" G_GINT64_FORMAT
                      ", %" G_GINT64_FORMAT "]", p, a, b, bgt_report_color_first (report, (int) p, "green"),
                      bgt_report_color_last (report, (int) p, "green"));
      g_assert_cmpint (a, >=, 0);
      g_assert_cmpint (b, >=, a);
      if (b > a)
        {
          g_assert_cmpint (bgt_report_color_first (report, (int) p, "green"), ==, a);
          g_assert_cmpint (bgt_report_color_last (report, (int) p, "green"), ==, b - 1);
        }
      else
        g_assert_cmpint (bgt_report_color_first (report, (int) p, "green"), ==, -1);
    }
  assert_live_took_the_rest (report, hwm, "blue");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/quiet/[quiet-partition]/cutover", Fixture, opts_quiet, fixture_setup, test_cutover,
              fixture_teardown);
  g_test_add ("/quiet/[quiet-partition]/rollback", Fixture, opts_observe, fixture_setup, test_rollback,
              fixture_teardown);
  return g_test_run ();
}
