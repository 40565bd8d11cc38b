/* test-restart.c — what a fleet's agents must keep across their own
 * restarts and topology changes (issue 11), end to end on the fleet rig
 * (tests/lib/fleet.[ch]): three hosts, each a systemd user manager with its
 * own bus and bluegreend, one Kafka mock, the example job in the slots, the
 * load generator producing during the whole test, and bluegreen-verify at
 * the end of every test.
 *
 * Tests:
 *   [membership-restart]  a restarted agent still knows a silent host:
 *                         Cutover stays refused with HostSilent and Hosts
 *                         lists it; once it is back, the cutover is exact.
 *   [observe-restart]     an agent restarted in the observation window is
 *                         back in "observing", and its window ends when
 *                         the other hosts' does (from the done, not from
 *                         its restart).
 *   [rollback-dead-slot]  in the observation window one host's blackholed
 *                         old-version slot dies for good: Rollback still
 *                         succeeds, exactly.
 *   [join-late]           a host whose agent starts (empty) after the
 *                         fleet cut over to green learns the live color
 *                         and version from the log: 'live' with another
 *                         version is refused (ContradictsLog), another
 *                         version is a blackholed candidate in blue, and
 *                         a Deploy of the live version joins green live,
 *                         steered with the ranges of the fleet's last
 *                         commit (C took no part in it): exact.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"

#define WAIT_MS 60000
/* The input consumed to its end once the load stops: generous, the
 * machine may be shared with other test runs. */
#define CATCH_UP_MS 180000
#define LOAD_RATE 300
#define A 0
#define B 1
#define C 2
#define MASK(i) (G_GUINT64_CONSTANT (1) << (i))

typedef struct {
  BgtFleet *fleet;
  BgtFleetOptions opts;
  /* The scenario makes a consumer group re-read records (see verify). */
  gboolean replays;
} Fixture;

typedef void (*OptionsFunc) (BgtFleetOptions *opts);

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  OptionsFunc tweak = (OptionsFunc) data;
  g_autoptr (GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  bgt_fleet_options_init (&f->opts);
  /* Silent after 3 heartbeats: 3 s, which a loaded machine (2 cores
   * shared with other test runs, sanitizers) does not reach by accident
   * (1.8 s late was seen with 0.5 s heartbeats). */
  f->opts.heartbeat_sec = 1.0;
  /* Readiness is not what these tests are about: a loaded machine must
   * not make a slot lose it (the cutover then only waits longer for the
   * instances to reach their barriers). */
  f->opts.max_lag = 20000;
  /* Nor is the deadline: arming took over 2 s at a load average of 50. */
  f->opts.deadline_sec = 10;
  if (tweak != NULL)
    tweak (&f->opts);
  f->fleet = bgt_fleet_new (&f->opts, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->fleet, bgt_fleet_free);
}

/* ---- helpers -------------------------------------------------------------- */

static void
wait_job (Fixture *f, guint64 mask, const char *prop, const char *want)
{
  g_assert_true (bgt_fleet_wait_string (f->fleet, mask, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, prop, want, WAIT_MS));
}

static void
wait_slot (Fixture *f, guint64 mask, const char *color, const char *prop, const char *want)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_assert_true (bgt_fleet_wait_string (f->fleet, mask, path, BGT_SLOT_IFACE, prop, want, WAIT_MS));
}

/* Blue v1 live on @mask, load running, green v2 deployed there and Ready. */
static void
start_blue_then_green (Fixture *f, guint64 mask)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_deploy (f->fleet, mask, "v1", TRUE, &error);
  g_assert_no_error (error);
  wait_slot (f, mask, "blue", "State", "running");
  wait_job (f, mask, "LiveColor", "blue");
  bgt_fleet_load_start (f->fleet, LOAD_RATE, &error);
  g_assert_no_error (error);
  bgt_fleet_deploy (f->fleet, mask, "v2", FALSE, &error);
  g_assert_no_error (error);
  wait_slot (f, mask, "green", "State", "running");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, mask, "green", 60000));
  wait_job (f, mask, "Phase", "ready");
}

static char *
cutover (Fixture *f, guint host, gboolean rollback)
{
  g_autoptr (GError) error = NULL;
  char *id = bgt_fleet_cutover (f->fleet, host, rollback, 0, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (id);
  return id;
}

static void
assert_finished (Fixture *f, const char *id, guint64 mask, const char *result)
{
  g_autofree char *got = bgt_fleet_wait_finished (f->fleet, id, mask, WAIT_MS);
  g_assert_cmpstr (got, ==, result);
}

/* Every host in @mask reports @id with @result in LastCutover; returns its
 * barriers (the same everywhere). */
static GArray *
assert_last_cutover (Fixture *f, guint64 mask, const char *id, const char *result)
{
  GArray *barriers = NULL;

  for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
    {
      g_auto (BgtCutoverInfo) info = { 0 };
      if (mask != 0 && (mask & MASK (i)) == 0)
        continue;
      g_assert_true (bgt_fleet_last_cutover (f->fleet, i, &info));
      g_assert_cmpstr (info.id, ==, id);
      g_assert_cmpstr (info.result, ==, result);
      if (barriers == NULL)
        barriers = g_array_ref (info.barriers);
      else
        g_assert_cmpmem (barriers->data, barriers->len * sizeof (gint64), info.barriers->data,
                         info.barriers->len * sizeof (gint64));
    }
  g_assert_nonnull (barriers);
  return barriers;
}

static void
assert_dbus_error (GError *error, const char *name, const char *mentions)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_test_message ("got %s: %s", remote, error->message);
  g_assert_cmpstr (remote, ==, name);
  if (mentions != NULL)
    g_assert_nonnull (strstr (error->message, mentions));
}

static void
stop_load (Fixture *f, guint64 mask, const char *live_color)
{
  g_autoptr (GError) error = NULL;
  gint64 n = bgt_fleet_load_stop (f->fleet, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, mask, live_color, CATCH_UP_MS));
  /* Admitted is not delivered (see tests/lib/scenario.c). */
  g_assert_true (bgt_fleet_wait_delivered (f->fleet, mask, live_color, CATCH_UP_MS));
}

/* The verifier: no gap, no cross-version duplicate, no order violation
 * (beyond re-read records where the scenario has a group re-read), and
 * with @barriers the incoming color's first result exactly there. */
static JsonObject *
verify (Fixture *f, const char *outgoing, const char *incoming, GArray *barriers)
{
  g_autoptr (GError) error = NULL;
  int status = -1;
  JsonObject *report = bgt_fleet_verify (f->fleet, outgoing, incoming, barriers, &status, &error);

  g_assert_no_error (error);
  g_assert_nonnull (report);
  g_assert_cmpint (bgt_report_num (report, "inputs"), >, 0);
  g_assert_cmpint (bgt_report_num (report, "gaps"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "cross_duplicates"), ==, 0);
  if (f->replays)
    g_assert_cmpint (bgt_report_num (report, "order_violations"), <=,
                     bgt_report_num (report, "within_duplicates"));
  else
    g_assert_cmpint (bgt_report_num (report, "order_violations"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "wrong_state"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "malformed"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "barrier_violations"), ==, 0);
  g_assert_cmpint (status, ==, f->replays && bgt_report_num (report, "order_violations") > 0 ? 1 : 0);
  if (barriers != NULL)
    bgt_report_assert_barriers (report, outgoing, incoming, barriers);
  return report;
}

static char *
needle (const char *key, const char *value)
{
  return g_strdup_printf ("\"%s\":\"%s\"", key, value);
}

typedef struct {
  Fixture *f;
  guint host;
  gint64 from;
  guint want;
} HelloWait;

static gboolean
enough_hellos (gpointer data)
{
  HelloWait *w = data;
  g_autoptr (GPtrArray) all = bgt_fleet_control_read (w->f->fleet, w->from, NULL);
  g_autofree char *h = needle ("host", bgt_fleet_host_id (w->f->fleet, w->host));
  guint n = 0;

  for (guint i = 0; all != NULL && i < all->len; i++)
    {
      const char *text = g_ptr_array_index (all, i);
      if (strstr (text, "\"type\":\"hello\"") != NULL && strstr (text, h) != NULL)
        n++;
    }
  return n >= w->want;
}

/* Waits until host @host has appended @n hellos from now on. */
static void
wait_hellos (Fixture *f, guint host, guint n)
{
  g_autoptr (GError) error = NULL;
  HelloWait w = { f, host, 0, n };

  w.from = bgt_fleet_control_watermark (f->fleet, &error);
  g_assert_no_error (error);
  g_assert_true (bgt_wait_until (enough_hellos, &w, WAIT_MS));
}

typedef struct {
  Fixture *f;
  guint host;
  gint64 usec;
} SilentWait;

/* Whether @host's newest hello in the log is older than @usec (by the
 * "ts" it carries: the sender's wall clock, as the agents judge it). */
static gboolean
silent_long_enough (gpointer data)
{
  SilentWait *w = data;
  g_autoptr (GPtrArray) all = bgt_fleet_control_read (w->f->fleet, 0, NULL);
  g_autofree char *h = needle ("host", bgt_fleet_host_id (w->f->fleet, w->host));
  gint64 last = 0;

  for (guint i = 0; all != NULL && i < all->len; i++)
    {
      const char *text = g_ptr_array_index (all, i);
      const char *ts = strstr (text, "\"ts\":");
      if (ts != NULL && strstr (text, "\"type\":\"hello\"") != NULL && strstr (text, h) != NULL)
        last = MAX (last, g_ascii_strtoll (ts + 5, NULL, 10));
    }
  return last > 0 && g_get_real_time () - last > w->usec;
}

/* Waits until host @i has been silent for @sec seconds. */
static void
wait_silent (Fixture *f, guint i, double sec)
{
  SilentWait w = { f, i, (gint64) (sec * G_USEC_PER_SEC) };
  g_assert_true (bgt_wait_until (silent_long_enough, &w, WAIT_MS));
}

static char *
hosts_of (Fixture *f, guint i)
{
  g_autoptr (GVariant) hosts = bgt_fleet_get (f->fleet, i, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Hosts");

  g_assert_nonnull (hosts);
  return g_variant_print (hosts, FALSE);
}

static GVariant *
call_job (Fixture *f, guint i, const char *method, GVariant *args, const char *reply_type, GError **error)
{
  return bgt_fleet_call (f->fleet, i, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, method, args, reply_type, 0, error);
}

/* A Deploy on host @i as an operator's `bluegreenctl deploy` would make
 * it: asked again while the agent answers Busy (a host that just started
 * replays the log and learns the fleet's last commit first; slower under
 * the sanitizers, where the first answer was Busy), bounded. */
static GVariant *
deploy_when_not_busy (Fixture *f, guint i, const char *args_text, GError **error)
{
  gint64 end = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  for (;;)
    {
      GError *local = NULL;
      GVariant *reply = call_job (f, i, "Deploy", g_variant_new_parsed (args_text), "(o)", &local);
      g_autofree char *remote = local != NULL ? g_dbus_error_get_remote_error (local) : NULL;

      if (reply != NULL || g_strcmp0 (remote, "org.bluegreen.Error.Busy") != 0
          || g_get_monotonic_time () > end)
        {
          if (local != NULL)
            g_propagate_error (error, local);
          return reply;
        }
      g_test_message ("Deploy on %s: %s; asking again", bgt_fleet_host_id (f->fleet, i), local->message);
      g_error_free (local);
      bgt_pause (200);
    }
}

static guint32
restart_agent (Fixture *f, guint i)
{
  guint32 pid = bgt_fleet_signal_agent (f->fleet, i, SIGKILL);

  g_assert_cmpuint (pid, >, 0);
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, i, pid, WAIT_MS));
  return pid;
}

/* ---- [membership-restart] ---------------------------------------------------- */

static void
test_membership_restart (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *id = NULL;
  g_autofree char *hosts_before = NULL;
  g_autofree char *hosts_after = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  /* C's agent stops; its job instances go on (they are not its children). */
  bgt_fleet_systemctl (f->fleet, C, "stop", "bluegreend.service", &error);
  g_assert_no_error (error);
  /* Silent for longer than 3 heartbeats, and A has read on since. */
  wait_silent (f, C, 4 * f->opts.heartbeat_sec);
  wait_hellos (f, A, 2);
  reply = call_job (f, A, "Cutover", g_variant_new_parsed ("(@a{sv} {},)"), "(s)", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.bluegreen.Error.HostSilent", "host c ");
  g_clear_error (&error);
  hosts_before = hosts_of (f, A);

  /* A's agent restarts: it replays the log from its stored offset, past
   * C's last hellos. It must still know C. */
  restart_agent (f, A);
  g_assert_true (bgt_fleet_wait_ready (f->fleet, MASK (A), "green", WAIT_MS));
  wait_hellos (f, A, 3);
  hosts_after = hosts_of (f, A);
  g_test_message ("Hosts on a while c is silent: before a's restart %s, after %s", hosts_before, hosts_after);
  reply = call_job (f, A, "Cutover", g_variant_new_parsed ("(@a{sv} {},)"), "(s)", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.bluegreen.Error.HostSilent", "host c ");
  g_clear_error (&error);
  g_assert_nonnull (strstr (hosts_after, "'c'"));
  g_assert_cmpstr (hosts_after, ==, hosts_before);

  /* C comes back: the cutover is exact on all three. */
  bgt_fleet_systemctl (f->fleet, C, "start", "bluegreend.service", &error);
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, C, 0, WAIT_MS));
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", 60000));
  wait_job (f, 0, "Phase", "ready");
  /* C's hellos are in the log, and A has read on past them (it reads
   * with a 10 ms fetch wait, and heartbeats every 0.2 s). */
  wait_hellos (f, C, 2);
  wait_hellos (f, A, 2);
  id = cutover (f, A, FALSE);
  assert_finished (f, id, 0, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  wait_job (f, 0, "LiveColor", "green");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [observe-restart] ------------------------------------------------------- */

#define OBSERVE_SEC 15

static void
opts_observe_short (BgtFleetOptions *o)
{
  o->observation_sec = OBSERVE_SEC;
}

typedef struct {
  Fixture *f;
  gint64 stopped_at[3]; /* monotonic µs when blue was seen stopped, 0: not yet */
} StopWait;

static gboolean
all_blue_stopped (gpointer data)
{
  StopWait *w = data;
  g_autofree char *path = bgt_fleet_slot_path ("blue");
  gboolean all = TRUE;

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *state = NULL;
      if (w->stopped_at[i] != 0)
        continue;
      state = bgt_fleet_get_string (w->f->fleet, i, path, BGT_SLOT_IFACE, "State");
      if (g_strcmp0 (state, "stopped") == 0)
        w->stopped_at[i] = g_get_monotonic_time ();
      else
        all = FALSE;
    }
  return all;
}

static void
test_observe_restart (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  StopWait sw = { f, { 0 } };
  gint64 others;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id = cutover (f, A, FALSE);
  assert_finished (f, id, 0, "done");
  barriers = assert_last_cutover (f, 0, id, "done");
  wait_job (f, 0, "Phase", "observing");
  /* Some of the window passes (the scenario, not a synchronisation), then
   * A's agent restarts inside it. */
  bgt_pause (6000);
  restart_agent (f, A);
  /* Back in the phase the fleet is in, not "ready". */
  g_assert_true (bgt_fleet_wait_string (f->fleet, MASK (A), BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Phase",
                                        "observing", 5000));
  wait_job (f, MASK (A), "LiveColor", "green");
  wait_slot (f, MASK (A), "blue", "State", "running");
  wait_slot (f, MASK (A), "blue", "SinkMode", "blackhole");

  /* Every host stops blue when the window ends, A too, and at about the
   * same time: A's timer runs from the done it persisted (if it ran from
   * its restart, A would stop blue 7 s or more after the others). */
  g_assert_true (bgt_wait_until (all_blue_stopped, &sw, (OBSERVE_SEC + 20) * 1000));
  others = MAX (sw.stopped_at[B], sw.stopped_at[C]);
  g_test_message ("blue stopped: a %+.2f s, c %+.2f s after b",
                  (sw.stopped_at[A] - sw.stopped_at[B]) / 1e6, (sw.stopped_at[C] - sw.stopped_at[B]) / 1e6);
  g_assert_cmpint (sw.stopped_at[A], <, others + 3500 * G_GINT64_CONSTANT (1000));
  wait_job (f, 0, "Phase", "live");
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

/* ---- [rollback-dead-slot] ------------------------------------------------------ */

static void
opts_observe_long (BgtFleetOptions *o)
{
  o->observation_sec = 300;
  /* The old version's instance on c dies for good: no restart policy
   * brings it back (restarts are tests/test-supervise.c's). */
  o->job_settings = "Restart=no";
}

static void
test_rollback_dead_slot (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  g_autoptr (GArray) x1 = NULL;
  g_autoptr (GArray) x2 = NULL;
  g_autoptr (JsonObject) report = NULL;

  if (f->fleet == NULL)
    return;
  start_blue_then_green (f, 0);
  id1 = cutover (f, A, FALSE);
  assert_finished (f, id1, 0, "done");
  x1 = assert_last_cutover (f, 0, id1, "done");
  wait_job (f, 0, "Phase", "observing");
  wait_slot (f, 0, "blue", "SinkMode", "blackhole");

  /* C's old version dies for good while blackholed. */
  {
    const char *argv[] = { "systemctl", "--user", "kill", "--signal=SIGKILL",
                           "bluegreen-" BGT_FLEET_JOB "-blue.service", NULL };
    int status = -1;
    g_assert_true (bgt_host_exec (bgt_fleet_host (f->fleet, C), argv, NULL, &status, &error));
    g_assert_no_error (error);
    g_assert_cmpint (status, ==, 0);
  }
  wait_slot (f, MASK (C), "blue", "State", "failed");
  wait_job (f, MASK (C), "Phase", "observing");
  /* Blue's group gives C's partitions to A's and B's blue instances,
   * which rebuild their state from the input (nothing emitted: blue is
   * blackholed); the rollback waits until they are Ready. */
  g_assert_true (bgt_fleet_wait_ready (f->fleet, MASK (A) | MASK (B), "blue", 60000));
  /* The rebalance is over once A's and B's blue instances together have
   * positions on every partition, at the high watermark. */
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, MASK (A) | MASK (B), "blue", CATCH_UP_MS));
  wait_hellos (f, C, 2);
  /* Blue's group re-read C's partitions from its committed offsets
   * (at-least-once); a later rebalance of the mock's group can make a
   * member re-read again after the rollback, re-emitting blue results:
   * within-version duplicates, counted apart, as in [silent-host]. */
  f->replays = TRUE;

  id2 = cutover (f, A, TRUE);
  assert_finished (f, id2, 0, "done");
  x2 = assert_last_cutover (f, 0, id2, "done");
  wait_job (f, 0, "LiveColor", "blue");
  stop_load (f, MASK (A) | MASK (B), "blue");

  /* Green emitted exactly [X1, X2) on every partition, blue the rest. */
  report = verify (f, "blue", "green", NULL);
  bgt_report_assert_rollback (report, x1, x2);
}

/* ---- [join-late] ----------------------------------------------------------------- */

static void
opts_c_late (BgtFleetOptions *o)
{
  o->late_hosts = MASK (C);
}

static void
test_join_late (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *id = NULL;
  g_autoptr (GArray) barriers = NULL;
  g_autoptr (JsonObject) report = NULL;
  const guint64 ab = MASK (A) | MASK (B);

  if (f->fleet == NULL)
    return;
  /* A and B alone: blue v1, then green v2 live. */
  start_blue_then_green (f, ab);
  id = cutover (f, A, FALSE);
  assert_finished (f, id, ab, "done");
  barriers = assert_last_cutover (f, ab, id, "done");
  wait_job (f, ab, "LiveColor", "green");
  wait_slot (f, ab, "blue", "State", "stopped");

  /* C's agent starts with an empty state and replays the log. */
  bgt_fleet_systemctl (f->fleet, C, "start", "bluegreend.service", &error);
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, C, 0, WAIT_MS));

  /* 'live' with another version than the fleet's is refused, with the
   * reason; nothing was started. */
  reply = deploy_when_not_busy (f, C, "('v1', {'live': <true>})", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.bluegreen.Error.ContradictsLog", "live in green with version v2");
  g_clear_error (&error);
  wait_slot (f, MASK (C), "blue", "State", "stopped");
  wait_slot (f, MASK (C), "green", "State", "stopped");

  /* A plain Deploy of another version is a candidate next to the
   * fleet's live color: blue, blackholed, and green is the live color. */
  reply = deploy_when_not_busy (f, C, "('v3', @a{sv} {})", &error);
  g_assert_no_error (error);
  {
    const char *slot = NULL;
    g_variant_get (reply, "(&o)", &slot);
    g_assert_cmpstr (slot, ==, BGT_FLEET_JOB_PATH "/blue");
  }
  g_clear_pointer (&reply, g_variant_unref);
  wait_job (f, MASK (C), "LiveColor", "green");
  wait_slot (f, MASK (C), "blue", "State", "running");
  wait_slot (f, MASK (C), "blue", "SinkMode", "blackhole");
  wait_slot (f, MASK (C), "green", "State", "stopped");
  reply = call_job (f, C, "Retire", g_variant_new ("(s)", "blue"), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  wait_slot (f, MASK (C), "blue", "State", "stopped");

  /* A plain Deploy of the live version joins green, live. */
  reply = deploy_when_not_busy (f, C, "('v2', @a{sv} {})", &error);
  g_assert_no_error (error);
  {
    const char *slot = NULL;
    g_variant_get (reply, "(&o)", &slot);
    g_assert_cmpstr (slot, ==, BGT_FLEET_JOB_PATH "/green");
  }
  wait_job (f, MASK (C), "LiveColor", "green");
  wait_slot (f, MASK (C), "green", "State", "running");
  /* C took no part in the cutover, yet its green instance is steered like
   * the fleet's: the incoming ranges of the log's last commit, from the
   * final barriers on (never plain live: a partition it takes over at
   * the green group's committed offset below a barrier would be emitted
   * twice). */
  wait_slot (f, MASK (C), "green", "SinkMode", "gated");
  {
    g_autofree char *green = bgt_fleet_slot_path ("green");
    g_autoptr (GVariant) ranges_a = bgt_fleet_get (f->fleet, A, green, BGT_SLOT_IFACE, "Ranges");
    g_autoptr (GVariant) ranges_c = bgt_fleet_get (f->fleet, C, green, BGT_SLOT_IFACE, "Ranges");
    g_autofree char *ra = ranges_a ? g_variant_print (ranges_a, FALSE) : NULL;
    g_autofree char *rc = ranges_c ? g_variant_print (ranges_c, FALSE) : NULL;

    g_test_message ("green ranges on A %s, on C %s", ra, rc);
    g_assert_nonnull (ra);
    g_assert_cmpstr (rc, ==, ra);
  }
  wait_slot (f, MASK (C), "blue", "State", "stopped");
  /* Green's group now has C's instance too: it takes partitions over. */
  f->replays = TRUE;
  stop_load (f, 0, "green");
  report = verify (f, "blue", "green", barriers);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/restart/[membership-restart]", Fixture, NULL, fixture_setup, test_membership_restart,
              fixture_teardown);
  g_test_add ("/restart/[observe-restart]", Fixture, opts_observe_short, fixture_setup, test_observe_restart,
              fixture_teardown);
  g_test_add ("/restart/[rollback-dead-slot]", Fixture, opts_observe_long, fixture_setup,
              test_rollback_dead_slot, fixture_teardown);
  g_test_add ("/restart/[join-late]", Fixture, opts_c_late, fixture_setup, test_join_late, fixture_teardown);
  return g_test_run ();
}
