/* test-restart-unit.c — what bluegreend keeps across its own restarts,
 * without hosts, Kafka or D-Bus: the state file's membership and
 * observation keys (and files written before they existed), membership
 * restored from it, and what hellos tell a host that joins late (the
 * fleet's live color and version, which slots run). The end-to-end side
 * is tests/test-restart.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>

#include "daemon/membership.h"
#include "daemon/state-file.h"

#define JOB "counts"

static BgControlMessage *
hello (const char *host, gint64 ts, gboolean has_live, BgColor live, const char *blue_version,
       const char *blue_state, const char *green_version, const char *green_state)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_HELLO, host, ts);
  BgControlJob *j = bg_control_job_new (JOB);
  BgControlSlot *b = bg_control_slot_new (BG_COLOR_BLUE, blue_state);
  BgControlSlot *g = bg_control_slot_new (BG_COLOR_GREEN, green_state);

  j->has_live_color = has_live;
  j->live_color = live;
  b->version = g_strdup (blue_version);
  g->version = g_strdup (green_version);
  g_ptr_array_add (j->slots, b);
  g_ptr_array_add (j->slots, g);
  g_ptr_array_add (msg->jobs, j);
  return msg;
}

static void
feed (BgdMembership *m, BgControlMessage *msg)
{
  bgd_membership_handle (m, msg);
  bg_control_message_free (msg);
}

static char *
joined (char **strv)
{
  g_auto(GStrv) owned = strv;
  return g_strjoinv (",", owned);
}

/* Members survive in the state file and come back before any hello: a
 * restored host is expected again, and counts as never heard. */
static void
test_members_round_trip (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-restart-unit-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "agent.state", NULL);
  g_autoptr(BgdMembership) m = bgd_membership_new ();
  g_autoptr(BgdMembership) again = bgd_membership_new ();
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) bgd_job_record_free);
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *members = NULL;
  BgdJobRecord *r = g_new0 (BgdJobRecord, 1);
  const BgdJobRecord *back;

  feed (m, hello ("c", 10, TRUE, BG_COLOR_BLUE, "v1", "running", NULL, "stopped"));
  feed (m, hello ("a", 11, TRUE, BG_COLOR_BLUE, "v1", "running", NULL, "stopped"));
  r->name = g_strdup (JOB);
  r->live_color = g_strdup ("blue");
  r->slots[BG_COLOR_BLUE].version = g_strdup ("v1");
  r->members = bgd_membership_members (m, JOB);
  r->observing_color = g_strdup ("green");
  r->observing_since = G_GINT64_CONSTANT (1764650000123456);
  g_ptr_array_add (records, r);
  g_assert_true (bgd_state_file_save_full (path, records, 42, &error));
  g_assert_no_error (error);

  table = bgd_state_file_load (path, &error);
  g_assert_no_error (error);
  back = g_hash_table_lookup (table, JOB);
  g_assert_nonnull (back);
  members = g_strjoinv (",", back->members);
  g_assert_cmpstr (members, ==, "a,c");
  g_assert_cmpstr (back->observing_color, ==, "green");
  g_assert_cmpint (back->observing_since, ==, G_GINT64_CONSTANT (1764650000123456));
  g_assert_cmpint (bgd_state_file_load_control_offset (path), ==, 42);

  bgd_membership_restore (again, JOB, (const char *const *) back->members);
  {
    g_autofree char *expected = joined (bgd_membership_expected (again, JOB, NULL, "b"));
    g_assert_cmpstr (expected, ==, "a,b,c");
  }
  g_assert_cmpint (bgd_membership_last_seen (again, "c"), ==, 0);
  /* A leave read in the replay after the restart still ends membership. */
  {
    BgControlMessage *leave = bg_control_message_new (BG_CONTROL_LEAVE, "c", 20);
    g_autofree char *expected = NULL;
    leave->job = g_strdup (JOB);
    feed (again, leave);
    expected = joined (bgd_membership_expected (again, JOB, NULL, "b"));
    g_assert_cmpstr (expected, ==, "a,b");
  }
  /* Restoring twice, or an empty list, changes nothing. */
  bgd_membership_restore (again, JOB, NULL);
  {
    const char *const one[] = { "a", NULL };
    g_autofree char *expected = NULL;
    bgd_membership_restore (again, JOB, one);
    expected = joined (bgd_membership_expected (again, JOB, NULL, "b"));
    g_assert_cmpstr (expected, ==, "a,b");
  }
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* A state file written before Members=/Observing* existed reads as "no
 * members remembered, not observing", and everything else as before. */
static void
test_old_state_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-restart-unit-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "agent.state", NULL);
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(GError) error = NULL;
  const BgdJobRecord *r;
  const char old[] = "[Job counts]\nLiveColor=green\nBlueVersion=v1\nBlueSinkMode=blackhole\n"
                     "BlueGeneration=4\nGreenVersion=v2\nGreenSinkMode=gated\nGreenGeneration=7\n"
                     "\n[Control]\nNextOffset=99\n";

  g_assert_true (g_file_set_contents (path, old, -1, &error));
  table = bgd_state_file_load (path, &error);
  g_assert_no_error (error);
  r = g_hash_table_lookup (table, JOB);
  g_assert_nonnull (r);
  g_assert_cmpstr (r->live_color, ==, "green");
  g_assert_cmpstr (r->slots[BG_COLOR_GREEN].version, ==, "v2");
  g_assert_cmpuint (r->slots[BG_COLOR_GREEN].generation, ==, 7);
  g_assert_null (r->members);
  g_assert_null (r->observing_color);
  g_assert_cmpint (bgd_state_file_load_control_offset (path), ==, 99);
  {
    g_autoptr(BgdJobRecord) copy = bgd_job_record_copy (r);
    g_assert_cmpstr (copy->slots[BG_COLOR_BLUE].sink_mode, ==, "blackhole");
    g_assert_null (copy->members);
  }
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* What a late host learns from the hellos it replays. */
static void
test_fleet_live (void)
{
  g_autoptr(BgdMembership) m = bgd_membership_new ();
  g_autofree char *version = NULL;
  BgColor color = BG_COLOR_BLUE;

  g_assert_false (bgd_membership_fleet_live (m, JOB, "c", &color, NULL));
  /* Blue v1 live, then the fleet cut over to green v2. */
  feed (m, hello ("a", 100, TRUE, BG_COLOR_BLUE, "v1", "running", "v2", "running"));
  feed (m, hello ("b", 101, TRUE, BG_COLOR_BLUE, "v1", "running", "v2", "running"));
  g_assert_true (bgd_membership_fleet_live (m, JOB, "c", &color, &version));
  g_assert_cmpint (color, ==, BG_COLOR_BLUE);
  g_assert_cmpstr (version, ==, "v1");
  g_clear_pointer (&version, g_free);
  feed (m, hello ("a", 200, TRUE, BG_COLOR_GREEN, NULL, "stopped", "v2", "running"));
  feed (m, hello ("b", 201, TRUE, BG_COLOR_GREEN, NULL, "stopped", "v2", "running"));
  g_assert_true (bgd_membership_fleet_live (m, JOB, "c", &color, &version));
  g_assert_cmpint (color, ==, BG_COLOR_GREEN);
  g_assert_cmpstr (version, ==, "v2");
  g_clear_pointer (&version, g_free);
  g_assert_true (bgd_membership_slot_running (m, JOB, "a", BG_COLOR_GREEN));
  g_assert_false (bgd_membership_slot_running (m, JOB, "a", BG_COLOR_BLUE));
  /* An older hello read again (a replay from a pinned offset) does not
   * bring the old live color back. */
  feed (m, hello ("b", 101, TRUE, BG_COLOR_BLUE, "v1", "running", "v2", "running"));
  g_assert_true (bgd_membership_fleet_live (m, JOB, "c", &color, &version));
  g_assert_cmpint (color, ==, BG_COLOR_GREEN);
  g_clear_pointer (&version, g_free);
  g_assert_false (bgd_membership_slot_running (m, JOB, "b", BG_COLOR_BLUE));
  /* A failed slot does not run; this host's own hello never counts. */
  feed (m, hello ("a", 300, TRUE, BG_COLOR_GREEN, "v1", "failed", "v2", "running"));
  g_assert_false (bgd_membership_slot_running (m, JOB, "a", BG_COLOR_BLUE));
  g_assert_true (bgd_membership_fleet_live (m, JOB, "a", &color, &version));
  g_assert_cmpstr (version, ==, "v2");
  g_clear_pointer (&version, g_free);
  /* A host whose live slot does not run says nothing about the fleet. */
  {
    g_autoptr(BgdMembership) lone = bgd_membership_new ();
    feed (lone, hello ("a", 10, TRUE, BG_COLOR_GREEN, NULL, "stopped", "v2", "failed"));
    g_assert_false (bgd_membership_fleet_live (lone, JOB, "c", &color, NULL));
  }
}

static BgControlMessage *
with_modes (BgControlMessage *msg, BgSinkMode blue, BgSinkMode green)
{
  BgControlJob *j = msg->jobs->pdata[0];

  ((BgControlSlot *) j->slots->pdata[0])->sink_mode = blue;
  ((BgControlSlot *) j->slots->pdata[1])->sink_mode = green;
  return msg;
}

static BgControlMessage *
decision (BgControlType type, const char *id)
{
  BgControlMessage *msg = bg_control_message_new (type, "a", 1);

  msg->job = g_strdup (JOB);
  msg->id = g_strdup (id);
  if (type == BG_CONTROL_ABORT)
    msg->reason = g_strdup ("x");
  return msg;
}

/* A late host deploys only into a settled fleet: no prepare without its
 * decision, no host with the non-live color still gated. */
static void
test_fleet_settled (void)
{
  g_autoptr(BgdMembership) m = bgd_membership_new ();
  BgControlMessage *prepare;

  g_assert_true (bgd_membership_fleet_settled (m, JOB, "c"));
  feed (m, with_modes (hello ("a", 100, TRUE, BG_COLOR_BLUE, "v1", "running", "v2", "running"),
                       BG_SINK_MODE_LIVE, BG_SINK_MODE_BLACKHOLE));
  feed (m, with_modes (hello ("b", 101, TRUE, BG_COLOR_BLUE, "v1", "running", "v2", "running"),
                       BG_SINK_MODE_LIVE, BG_SINK_MODE_BLACKHOLE));
  g_assert_true (bgd_membership_fleet_settled (m, JOB, "c"));

  /* Prepared (modes unchanged): not settled until the decision. */
  prepare = bg_control_message_new (BG_CONTROL_PREPARE, "a", 110);
  prepare->job = g_strdup (JOB);
  prepare->id = g_strdup ("k1");
  prepare->outgoing = BG_COLOR_BLUE;
  prepare->incoming = BG_COLOR_GREEN;
  prepare->deadline = g_get_real_time () + 10 * G_USEC_PER_SEC;
  g_ptr_array_add (prepare->participants, g_strdup ("a"));
  g_ptr_array_add (prepare->participants, g_strdup ("b"));
  feed (m, prepare);
  g_assert_false (bgd_membership_fleet_settled (m, JOB, "c"));
  feed (m, decision (BG_CONTROL_COMMIT, "k1"));
  /* Committed, not done: blue gated on a, the hosts disagree for now. */
  feed (m, with_modes (hello ("a", 120, TRUE, BG_COLOR_GREEN, "v1", "running", "v2", "running"),
                       BG_SINK_MODE_GATED, BG_SINK_MODE_GATED));
  g_assert_false (bgd_membership_fleet_settled (m, JOB, "c"));
  feed (m, with_modes (hello ("b", 121, TRUE, BG_COLOR_GREEN, "v1", "running", "v2", "running"),
                       BG_SINK_MODE_BLACKHOLE, BG_SINK_MODE_GATED));
  g_assert_false (bgd_membership_fleet_settled (m, JOB, "c"));
  /* Done on both: blue blackholed. */
  feed (m, with_modes (hello ("a", 130, TRUE, BG_COLOR_GREEN, "v1", "running", "v2", "running"),
                       BG_SINK_MODE_BLACKHOLE, BG_SINK_MODE_GATED));
  g_assert_true (bgd_membership_fleet_settled (m, JOB, "c"));
  /* This host's own hello never counts; an aborted prepare settles. */
  g_assert_true (bgd_membership_fleet_settled (m, JOB, "a"));
  prepare = bg_control_message_new (BG_CONTROL_PREPARE, "b", 140);
  prepare->job = g_strdup (JOB);
  prepare->id = g_strdup ("k2");
  prepare->deadline = g_get_real_time () + 10 * G_USEC_PER_SEC;
  g_ptr_array_add (prepare->participants, g_strdup ("a"));
  feed (m, prepare);
  g_assert_false (bgd_membership_fleet_settled (m, JOB, "c"));
  feed (m, decision (BG_CONTROL_ABORT, "k2"));
  g_assert_true (bgd_membership_fleet_settled (m, JOB, "c"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/restart-unit/[membership-restart]/state-file", test_members_round_trip);
  g_test_add_func ("/restart-unit/[membership-restart]/old-state-file", test_old_state_file);
  g_test_add_func ("/restart-unit/[join-late]/fleet-live", test_fleet_live);
  g_test_add_func ("/restart-unit/[join-late]/fleet-settled", test_fleet_settled);
  return g_test_run ();
}
