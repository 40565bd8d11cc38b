/* scenario.c — the steps of end-to-end fleet scenarios (see scenario.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "scenario.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

void
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
  if (tweak != NULL)
    tweak (&f->opts);
  f->fleet = bgt_fleet_new (&f->opts, &error);
  g_assert_no_error (error);
}

void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->fleet, bgt_fleet_free);
}

/* ---- helpers -------------------------------------------------------------- */

void
wait_string (Fixture *f, guint64 mask, const char *path, const char *iface, const char *prop,
             const char *want)
{
  g_assert_true (bgt_fleet_wait_string (f->fleet, mask, path, iface, prop, want, WAIT_MS));
}

void
wait_slot (Fixture *f, guint64 mask, const char *color, const char *prop, const char *want)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  wait_string (f, mask, path, BGT_SLOT_IFACE, prop, want);
}

void
wait_job (Fixture *f, guint64 mask, const char *prop, const char *want)
{
  wait_string (f, mask, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, prop, want);
}

/* The common start of every test: blue v1 live on every host, load
 * running, green v2 deployed everywhere (or on @green_mask) and Ready on
 * @ready_mask (0: all). */
void
start_blue_then_green (Fixture *f, guint64 ready_mask)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_deploy (f->fleet, 0, "v1", TRUE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "blue", "State", "running");
  wait_job (f, 0, "LiveColor", "blue");
  bgt_fleet_load_start (f->fleet, LOAD_RATE, &error);
  g_assert_no_error (error);
  bgt_fleet_deploy (f->fleet, 0, "v2", FALSE, &error);
  g_assert_no_error (error);
  wait_slot (f, 0, "green", "State", "running");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, ready_mask, "green", 60000));
  wait_job (f, ready_mask, "Phase", "ready");
}

/* Lets the load run on until @color has admitted everything produced so
 * far (the live version keeps working after a switch). */
void
keep_producing (Fixture *f, guint64 mask, const char *color)
{
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, mask, color, WAIT_MS));
}

/* Stops the load and waits until @live_color has consumed all of it and
 * its results of it are delivered. */
void
stop_load (Fixture *f, guint64 mask, const char *live_color)
{
  g_autoptr (GError) error = NULL;
  gint64 n = bgt_fleet_load_stop (f->fleet, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, mask, live_color, WAIT_MS));
  /* Admitted is not delivered: after the brokers came back, an instance
   * admitted its partitions to the end while its producer, backing off
   * its reconnects, still held 2,532 results; the verifier, run then,
   * counted them as gaps (a sanitizer run of [broker-down]). */
  g_assert_true (bgt_fleet_wait_delivered (f->fleet, mask, live_color, WAIT_MS));
}

/* Runs the verifier and asserts what every test must: no gap, no
 * cross-version duplicate, no order violation, correct state, no barrier
 * violation. With @barriers, also that @incoming's first result on every
 * partition is exactly at the barrier. Returns the report. */
JsonObject *
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
    /* With every broker down the groups' commits fail, and instances that
     * take over partitions re-read them: either way members re-read from
     * their group's last committed offsets (at-least-once, docs/protocol.md:
     * within-version duplicates are counted apart). Each result re-emitted
     * that way is a within-version duplicate and, older than the results
     * emitted since, also an order violation; only order violations
     * beyond those would be the handoff's. */
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

/* Asserts that every host in @mask reports cutover @id with @result in
 * LastCutover and returns its barriers (the same on every host). */
GArray *
assert_last_cutover (Fixture *f, guint64 mask, const char *id, const char *result)
{
  GArray *barriers = NULL;

  for (guint i = 0; i < bgt_fleet_n_hosts (f->fleet); i++)
    {
      g_auto (BgtCutoverInfo) info = { 0 };
      if (mask != 0 && (mask & MASK (i)) == 0)
        continue;
      g_assert_true (bgt_fleet_last_cutover (f->fleet, i, &info));
      g_test_message ("host %s: LastCutover %s %s->%s %s (%s), %" G_GUINT64_FORMAT " us",
                      bgt_fleet_host_id (f->fleet, i), info.id, info.outgoing, info.incoming,
                      info.result, info.reason, info.duration_us);
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

typedef struct {
  Fixture *f;
  guint host;
  const char *id;
  const char *result;
} LastWait;

static gboolean
last_cutover_is (gpointer data)
{
  LastWait *w = data;
  g_auto (BgtCutoverInfo) info = { 0 };

  return bgt_fleet_last_cutover (w->f->fleet, w->host, &info) && g_strcmp0 (info.id, w->id) == 0
         && g_strcmp0 (info.result, w->result) == 0;
}

/* Waits until host @i's LastCutover is (@id, @result): for a host that
 * was down when the signal went out. */
void
wait_last_cutover (Fixture *f, guint i, const char *id, const char *result)
{
  LastWait w = { f, i, id, result };
  if (!bgt_wait_until (last_cutover_is, &w, WAIT_MS))
    {
      g_auto (BgtCutoverInfo) info = { 0 };
      bgt_fleet_last_cutover (f->fleet, i, &info);
      g_test_message ("host %s: LastCutover %s %s, waited for %s %s", bgt_fleet_host_id (f->fleet, i),
                      info.id, info.result, id, result);
      g_assert_not_reached ();
    }
}

char *
cutover (Fixture *f, guint host, guint deadline_ms)
{
  g_autoptr (GError) error = NULL;
  char *id = bgt_fleet_cutover (f->fleet, host, FALSE, deadline_ms, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (id);
  return id;
}

void
assert_finished (Fixture *f, const char *id, guint64 mask, const char *result)
{
  g_autofree char *got = bgt_fleet_wait_finished (f->fleet, id, mask, WAIT_MS);
  g_assert_cmpstr (got, ==, result);
}

/* The log holds exactly one decision for @id that counts (the first) and
 * it is @decision; later ones may exist but change nothing. */
void
assert_first_decision (Fixture *f, const char *id, const char *decision)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) d = bgt_fleet_control_decisions (f->fleet, id, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (d->len, >=, 1);
  g_test_message ("decisions for %s: first %s of %u", id, (char *) g_ptr_array_index (d, 0), d->len);
  g_assert_cmpstr (g_ptr_array_index (d, 0), ==, decision);
}

void
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

char *
needle (const char *key, const char *value)
{
  return g_strdup_printf ("\"%s\":\"%s\"", key, value);
}

/* Waits for a control record of @type for @id (from @host if not NULL). */
gint64
wait_record (Fixture *f, const char *type, const char *id, const char *host, int timeout_ms)
{
  g_autofree char *t = needle ("type", type);
  g_autofree char *i = needle ("id", id);
  g_autofree char *h = host ? needle ("host", host) : NULL;
  const char *needles[] = { t, i, h, NULL };

  return bgt_fleet_control_wait (f->fleet, 0, needles, timeout_ms);
}

/* SIGSTOPs host @i's agent right after it appended a hello, so a Cutover
 * called next finds it heard from well within the silence threshold (3
 * heartbeats of 0.2 s: a stop at a random moment left too little of it
 * under the sanitizers, and the call was refused with HostSilent). */
void
stop_after_hello (Fixture *f, guint i)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *h = needle ("host", bgt_fleet_host_id (f->fleet, i));
  const char *needles[] = { "\"type\":\"hello\"", h, NULL };
  gint64 mark = bgt_fleet_control_watermark (f->fleet, &error);

  g_assert_no_error (error);
  g_assert_cmpint (bgt_fleet_control_wait (f->fleet, mark, needles, WAIT_MS), >=, mark);
  g_assert_cmpuint (bgt_fleet_signal_agent (f->fleet, i, SIGSTOP), >, 0);
}

void
kill_agent_and_wait (Fixture *f, guint i)
{
  guint32 pid = bgt_fleet_signal_agent (f->fleet, i, SIGKILL);

  g_assert_cmpuint (pid, >, 0);
  g_assert_true (bgt_fleet_wait_agent_restarted (f->fleet, i, pid, WAIT_MS));
  g_assert_true (bgt_fleet_wait_string (f->fleet, MASK (i), "/org/bluegreen/Agent1", "org.bluegreen.Agent1",
                                        "ControlLog", "following", WAIT_MS));
}
