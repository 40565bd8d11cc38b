/* test-client.c — libbluegreen's agent link against a real private bus
 * (a dbus-daemon of its own) and a small in-test double of the agent:
 * an org.bluegreen.Slot1 object from the project's own API XML, served on its
 * own connection under the name org.bluegreen.Agent1. Checks that admit
 * waits for the first steering, that flips reach the gate fast, what
 * ReportProgress carries, that the gate keeps its steering while the agent is
 * away and re-fetches when it is back, the savepoint round trip, stand-alone
 * gates from the environment, and the steering mapping (ranges, plans, holds)
 * on its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bluegreen.h"
#include "client-private.h"
#include "gate-private.h"

#define SLOT_PATH "/org/bluegreen/Agent1/job/demo/blue"
#define WAIT_TIMEOUT_US (10 * G_USEC_PER_SEC)

/* ---- The agent double ----------------------------------------------------------- */

typedef struct {
  GDBusConnection *connection;
  guint registration;

  char *sink_mode;
  GVariant *ranges; /* a(sixx) */
  GVariant *plan;   /* (sssxa(six)) */
  GVariant *holds;  /* a(si) */
  guint64 generation;

  guint n_get_steering;
  guint n_reports;
  GVariant *last_report; /* (a(six)tttx) */
  char *savepoint_dir;
  gboolean savepoint_ok;
  char *savepoint_message;

  GPtrArray *armed;         /* "id ok reason" of every PlanArmed, in order */
  guint n_delivered_calls;
  GHashTable *delivered;    /* "topic:partition" -> highest offset reported (gint64) */
} FakeAgent;

static GDBusInterfaceInfo *
slot_interface_info (void)
{
  static GDBusNodeInfo *node;
  if (node == NULL)
    {
      g_autofree char *path = g_build_filename (g_getenv ("BG_TOP_SRCDIR") ? g_getenv ("BG_TOP_SRCDIR")
                                                                          : TOP_SRCDIR,
                                                "data", "org.bluegreen.Agent1.xml", NULL);
      g_autofree char *xml = NULL;
      g_autoptr (GError) error = NULL;
      g_assert_true (g_file_get_contents (path, &xml, NULL, &error));
      node = g_dbus_node_info_new_for_xml (xml, &error);
      g_assert_no_error (error);
    }
  GDBusInterfaceInfo *info = g_dbus_node_info_lookup_interface (node, "org.bluegreen.Slot1");
  g_assert_nonnull (info);
  return info;
}

static GVariant *
fake_steering (FakeAgent *agent)
{
  return g_variant_new ("(s@a(sixx)@(sssxa(six))@a(si)t)", agent->sink_mode, agent->ranges,
                        agent->plan, agent->holds, agent->generation);
}

static void
fake_method (GDBusConnection *connection, const char *sender, const char *path,
             const char *interface, const char *method, GVariant *parameters,
             GDBusMethodInvocation *invocation, gpointer user_data)
{
  FakeAgent *agent = user_data;
  if (strcmp (method, "GetSteering") == 0)
    {
      agent->n_get_steering++;
      g_dbus_method_invocation_return_value (invocation, fake_steering (agent));
    }
  else if (strcmp (method, "ReportProgress") == 0)
    {
      agent->n_reports++;
      g_clear_pointer (&agent->last_report, g_variant_unref);
      agent->last_report = g_variant_ref (parameters);
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else if (strcmp (method, "PlanArmed") == 0)
    {
      const char *id, *reason;
      gboolean ok;
      g_variant_get (parameters, "(&sb&s)", &id, &ok, &reason);
      g_ptr_array_add (agent->armed, g_strdup_printf ("%s %s %s", id, ok ? "ok" : "not-ok", reason));
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else if (strcmp (method, "PlanArmedAt") == 0)
    {
      /* "id ok reason" and " topic/partition=position" per position. */
      const char *id, *reason, *topic;
      gboolean ok;
      gint32 partition;
      gint64 position;
      g_autoptr (GVariantIter) iter = NULL;
      GString *text;
      g_variant_get (parameters, "(&sb&sa(six))", &id, &ok, &reason, &iter);
      text = g_string_new (NULL);
      g_string_printf (text, "%s %s %s", id, ok ? "ok" : "not-ok", reason);
      while (g_variant_iter_next (iter, "(&six)", &topic, &partition, &position))
        g_string_append_printf (text, " %s/%d=%" G_GINT64_FORMAT, topic, partition, position);
      g_ptr_array_add (agent->armed, g_string_free (text, FALSE));
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else if (strcmp (method, "ReportDelivered") == 0)
    {
      g_autoptr (GVariantIter) iter = NULL;
      const char *topic;
      gint32 partition;
      gint64 offset;
      agent->n_delivered_calls++;
      g_variant_get (parameters, "(a(six))", &iter);
      while (g_variant_iter_next (iter, "(&six)", &topic, &partition, &offset))
        {
          char *key = g_strdup_printf ("%s:%d", topic, partition);
          gint64 old = GPOINTER_TO_SIZE (g_hash_table_lookup (agent->delivered, key));
          g_hash_table_insert (agent->delivered, key, GSIZE_TO_POINTER (MAX (old, offset)));
        }
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else if (strcmp (method, "SavepointDone") == 0)
    {
      g_free (agent->savepoint_dir);
      g_free (agent->savepoint_message);
      g_variant_get (parameters, "(sbs)", &agent->savepoint_dir, &agent->savepoint_ok,
                     &agent->savepoint_message);
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else
    g_dbus_method_invocation_return_dbus_error (invocation, "org.bluegreen.Error.Failed",
                                                "not in the test double");
}

static const GDBusInterfaceVTable fake_vtable = { fake_method, NULL, NULL, { 0 } };

static FakeAgent *
fake_agent_new (const char *sink_mode)
{
  FakeAgent *agent = g_new0 (FakeAgent, 1);
  agent->sink_mode = g_strdup (sink_mode);
  agent->ranges = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(sixx)"), NULL, 0));
  agent->plan = g_variant_ref_sink (
      g_variant_new ("(sssx@a(six))", "", "", "", (gint64) 0,
                     g_variant_new_array (G_VARIANT_TYPE ("(six)"), NULL, 0)));
  agent->holds = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(si)"), NULL, 0));
  agent->generation = 1;
  agent->armed = g_ptr_array_new_with_free_func (g_free);
  agent->delivered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return agent;
}

/* Connects, exports the slot and takes the agent's name. */
static void
fake_agent_up (FakeAgent *agent)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  agent->connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  agent->registration = g_dbus_connection_register_object (
      agent->connection, SLOT_PATH, slot_interface_info (), &fake_vtable, agent, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      agent->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "RequestName", g_variant_new ("(su)", "org.bluegreen.Agent1", 4 /* DO_NOT_QUEUE */),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  guint32 result;
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1 /* PRIMARY_OWNER */);
}

/* The agent goes away: its connection closes, so the name loses its owner. */
static void
fake_agent_down (FakeAgent *agent)
{
  if (agent->connection == NULL)
    return;
  g_dbus_connection_unregister_object (agent->connection, agent->registration);
  g_dbus_connection_close_sync (agent->connection, NULL, NULL);
  g_clear_object (&agent->connection);
}

static void
fake_agent_free (FakeAgent *agent)
{
  fake_agent_down (agent);
  g_free (agent->sink_mode);
  g_variant_unref (agent->ranges);
  g_variant_unref (agent->plan);
  g_variant_unref (agent->holds);
  g_clear_pointer (&agent->last_report, g_variant_unref);
  g_free (agent->savepoint_dir);
  g_free (agent->savepoint_message);
  g_ptr_array_unref (agent->armed);
  g_hash_table_unref (agent->delivered);
  g_free (agent);
}

/* Changes the steering as the agent does: bump Generation, announce it. */
static void
fake_agent_set_mode (FakeAgent *agent, const char *sink_mode)
{
  g_free (agent->sink_mode);
  agent->sink_mode = g_strdup (sink_mode);
  agent->generation++;
  if (agent->connection == NULL)
    return;
  GVariantBuilder changed;
  g_variant_builder_init (&changed, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&changed, "{sv}", "SinkMode", g_variant_new_string (sink_mode));
  g_variant_builder_add (&changed, "{sv}", "Generation", g_variant_new_uint64 (agent->generation));
  g_autoptr (GError) error = NULL;
  g_dbus_connection_emit_signal (agent->connection, NULL, SLOT_PATH,
                                 "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                 g_variant_new ("(sa{sv}as)", "org.bluegreen.Slot1", &changed,
                                                NULL),
                                 &error);
  g_assert_no_error (error);
}

/* The whole steering at once, from GVariant text (NULL keeps a part). */
static void
fake_agent_set_steering (FakeAgent *agent, const char *sink_mode, const char *ranges,
                         const char *plan, const char *holds)
{
  g_autoptr (GError) error = NULL;
  if (ranges != NULL)
    {
      g_variant_unref (agent->ranges);
      agent->ranges = g_variant_ref_sink (
          g_variant_parse (G_VARIANT_TYPE ("a(sixx)"), ranges, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  if (plan != NULL)
    {
      g_variant_unref (agent->plan);
      agent->plan = g_variant_ref_sink (
          g_variant_parse (G_VARIANT_TYPE ("(sssxa(six))"), plan, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  if (holds != NULL)
    {
      g_variant_unref (agent->holds);
      agent->holds = g_variant_ref_sink (
          g_variant_parse (G_VARIANT_TYPE ("a(si)"), holds, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  /* Announces the new Generation too. */
  fake_agent_set_mode (agent, sink_mode);
}

/* ---- Waiting ---------------------------------------------------------------------- */

typedef gboolean (*Predicate) (gpointer data);

/* Runs the test's main context (where the agent double answers) until @pred
 * holds; FALSE after WAIT_TIMEOUT_US. */
static gboolean
wait_until (Predicate pred, gpointer data)
{
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT_US;
  while (!pred (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      /* The condition may change in the link's thread without waking this
       * context, so poll it every millisecond. */
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
  return TRUE;
}

/* ---- A private bus ------------------------------------------------------------- */

/* dbus-daemon with a minimal session-like config, its address in
 * DBUS_SESSION_BUS_ADDRESS while it runs. The address is a fixed socket path
 * rather than one read back from --print-address: under the test harness the
 * daemon's print pipe reads EOF here (and GTestDBus, which uses it, hangs). */
typedef struct {
  GPid pid;
  char *dir;
} TestBus;

static void
die_with_parent (gpointer data)
{
  /* A failed assertion must not leave the daemon behind. */
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static TestBus *
test_bus_up (void)
{
  g_autoptr (GError) error = NULL;
  TestBus *bus = g_new0 (TestBus, 1);
  bus->dir = g_dir_make_tmp ("bgbus-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *config = g_build_filename (bus->dir, "bus.conf", NULL);
  g_autofree char *text = g_strdup_printf (
      "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig><type>session</type><listen>unix:path=%s/bus</listen>"
      "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
      "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
      bus->dir);
  g_assert_true (g_file_set_contents (config, text, -1, &error));
  g_autofree char *config_arg = g_strconcat ("--config-file=", config, NULL);
  const char *argv[] = { "dbus-daemon", config_arg, "--nofork", NULL };
  g_assert_true (g_spawn_async (NULL, (char **) argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &bus->pid, &error));
  g_assert_no_error (error);

  /* Ready once its socket accepts a connection. */
  g_autofree char *address = g_strdup_printf ("unix:path=%s/bus", bus->dir);
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT_US;
  for (;;)
    {
      g_autoptr (GDBusConnection) probe = g_dbus_connection_new_for_address_sync (
          address,
          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
              | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
          NULL, NULL, NULL);
      if (probe != NULL)
        {
          g_dbus_connection_close_sync (probe, NULL, NULL);
          break;
        }
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (1000);
    }
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", address, TRUE);
  return bus;
}

static void
test_bus_down (TestBus *bus)
{
  if (bus == NULL)
    return;
  kill (bus->pid, SIGTERM);
  int status;
  waitpid (bus->pid, &status, 0);
  g_spawn_close_pid (bus->pid);
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_autofree char *config = g_build_filename (bus->dir, "bus.conf", NULL);
  g_unlink (config);
  g_autoptr (GDir) dir = g_dir_open (bus->dir, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (bus->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (bus->dir);
  g_free (bus->dir);
  g_free (bus);
}

typedef struct {
  TestBus *bus;
  FakeAgent *agent;
  BgGate *gate;
  BgTopic *topic;
} Fixture;

/* By the mode, not by admitting a probe: a probe would move the positions
 * and counters the report tests check. */
static gboolean
gate_emits (gpointer data)
{
  Fixture *f = data;
  return bg_gate_get_mode (f->gate) == BG_SINK_MODE_LIVE;
}

static gboolean
gate_drops (gpointer data)
{
  Fixture *f = data;
  return bg_gate_get_mode (f->gate) == BG_SINK_MODE_BLACKHOLE;
}

static gboolean
gate_waits (gpointer data)
{
  Fixture *f = data;
  return bg_gate_is_waiting (f->gate, NULL);
}

static gboolean
agent_has_report (gpointer data)
{
  Fixture *f = data;
  return f->agent->last_report != NULL;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->bus = test_bus_up ();
  f->agent = fake_agent_new ("live");
}

/* The gate as a job under the agent gets it. */
static void
fixture_link (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  f->gate = bg_client_gate_new (SLOT_PATH, "session", "live", &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->gate);
  f->topic = bg_gate_topic (f->gate, "in", 2);
  g_assert_nonnull (f->topic);
  g_assert_cmpstr (bg_gate_get_slot_path (f->gate), ==, SLOT_PATH);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  /* The gate first: its thread must stop cleanly with the bus still up. */
  bg_gate_free (f->gate);
  fake_agent_free (f->agent);
  test_bus_down (f->bus);
}

/* ---- Tests over the bus --------------------------------------------------------- */

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  BgVerdict verdict;
  gint done;
} Admission;

static gpointer
admission_run (gpointer data)
{
  Admission *a = data;
  a->verdict = bg_gate_admit (a->gate, a->topic, 1, 7);
  g_atomic_int_set (&a->done, 1);
  return NULL;
}

static gboolean
admission_done (gpointer data)
{
  return g_atomic_int_get (&((Admission *) data)->done);
}

static void
test_waits_for_steering (Fixture *f, gconstpointer data)
{
  /* BLUEGREEN_SINK_MODE says live, but a linked gate obeys the agent only. */
  fixture_link (f);
  g_assert_cmpint (bg_gate_get_mode (f->gate), ==, BG_SINK_MODE_UNKNOWN);
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 0), ==, BG_VERDICT_WAIT);

  Admission a = { f->gate, f->topic, BG_VERDICT_WAIT, 0 };
  GThread *thread = g_thread_new ("admit", admission_run, &a);
  g_assert_true (wait_until (gate_waits, f));
  g_assert_false (g_atomic_int_get (&a.done));

  /* The agent appears: the first steering releases the waiting record. */
  fake_agent_up (f->agent);
  g_assert_true (wait_until (admission_done, &a));
  g_thread_join (thread);
  g_assert_cmpint (a.verdict, ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_get_mode (f->gate), ==, BG_SINK_MODE_LIVE);
  g_assert_cmpuint (f->agent->n_get_steering, >=, 1);
}

static void
test_flip_fast (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));

  for (int i = 0; i < 5; i++)
    {
      gint64 start = g_get_monotonic_time ();
      fake_agent_set_mode (f->agent, i % 2 == 0 ? "blackhole" : "live");
      g_assert_true (wait_until (i % 2 == 0 ? gate_drops : gate_emits, f));
      gint64 took = g_get_monotonic_time () - start;
      g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, i), ==,
                       i % 2 == 0 ? BG_VERDICT_DROP : BG_VERDICT_EMIT);
      g_test_message ("flip %d reached the gate in %" G_GINT64_FORMAT " us", i, took);
      g_assert_cmpint (took, <, 100 * G_TIME_SPAN_MILLISECOND);
    }
}

typedef struct {
  Fixture *f;
  guint64 generation;
  gint64 position0;
  gint64 position1;
  guint64 emitted;
} ReportWanted;

static gboolean
report_matches (gpointer data)
{
  ReportWanted *w = data;
  GVariant *report = w->f->agent->last_report;
  if (report == NULL)
    return FALSE;
  g_autoptr (GVariant) positions = NULL;
  guint64 emitted, dropped, applied;
  gint64 waiting;
  g_variant_get (report, "(@a(six)tttx)", &positions, &emitted, &dropped, &applied, &waiting);
  g_autofree char *text = g_variant_print (report, TRUE);
  g_test_message ("last report: %s", text);
  gint64 p0 = -1, p1 = -1;
  GVariantIter iter;
  const char *topic;
  gint32 partition;
  gint64 position;
  g_variant_iter_init (&iter, positions);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &position))
    {
      g_assert_cmpstr (topic, ==, "in");
      if (partition == 0)
        p0 = position;
      else if (partition == 1)
        p1 = position;
    }
  return applied == w->generation && p0 == w->position0 && p1 == w->position1
         && emitted == w->emitted && waiting == 0;
}

static void
test_report_progress (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));
  /* The first report confirms the applied generation, with no positions. */
  g_assert_true (wait_until (agent_has_report, f));

  for (int64_t o = 0; o < 10; o++)
    g_assert_cmpint (bg_gate_admit (f->gate, f->topic, 0, o), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_admit (f->gate, f->topic, 1, 41), ==, BG_VERDICT_EMIT);
  bg_gate_report_now (f->gate);
  ReportWanted w = { f, f->agent->generation, 10, 42, 11 };
  g_assert_true (wait_until (report_matches, &w));

  /* A new generation is confirmed once applied; positions keep coming. */
  fake_agent_set_mode (f->agent, "blackhole");
  g_assert_true (wait_until (gate_drops, f));
  g_assert_cmpint (bg_gate_admit (f->gate, f->topic, 0, 10), ==, BG_VERDICT_DROP);
  ReportWanted w2 = { f, f->agent->generation, 11, 42, 11 };
  /* No report_now this time: the periodic report must carry it. */
  g_assert_true (wait_until (report_matches, &w2));
  guint64 dropped;
  g_variant_get_child (f->agent->last_report, 2, "t", &dropped);
  g_assert_cmpuint (dropped, ==, 1);
}

static gboolean
link_has_no_agent (gpointer data)
{
  Fixture *f = data;
  return g_strcmp0 (bg_client_debug_state (f->gate), "no-agent") == 0;
}

static gboolean
link_is_connecting (gpointer data)
{
  Fixture *f = data;
  return g_strcmp0 (bg_client_debug_state (f->gate), "connecting") == 0;
}

static void
test_agent_restart (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));
  guint fetches = f->agent->n_get_steering;

  /* The agent goes away; while it is away its steering changes. The gate
   * must keep the last steering it had, never guess. */
  fake_agent_down (f->agent);
  g_assert_true (wait_until (link_has_no_agent, f));
  fake_agent_set_mode (f->agent, "blackhole");
  g_assert_cmpint (bg_gate_get_mode (f->gate), ==, BG_SINK_MODE_LIVE);
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 5), ==, BG_VERDICT_EMIT);

  /* Back, under a new unique name: the link asks again and applies it. */
  fake_agent_up (f->agent);
  g_assert_true (wait_until (gate_drops, f));
  g_assert_cmpuint (f->agent->n_get_steering, >, fetches);
  g_assert_cmpint (bg_gate_get_mode (f->gate), ==, BG_SINK_MODE_BLACKHOLE);
}

typedef struct {
  BgGate *gate;
  char *directory;
} SavepointJob;

static gpointer
savepoint_job_run (gpointer data)
{
  SavepointJob *job = data;
  bg_gate_savepoint_done (job->gate, job->directory, true, "written");
  return NULL;
}

static void
on_savepoint_threaded (BgGate *gate, const char *directory, void *user_data)
{
  SavepointJob *job = user_data;
  g_assert_null (job->directory);
  job->gate = gate;
  job->directory = g_strdup (directory);
  g_thread_unref (g_thread_new ("savepoint", savepoint_job_run, job));
}

static gboolean
savepoint_answered (gpointer data)
{
  Fixture *f = data;
  return f->agent->savepoint_dir != NULL;
}

static void
emit_savepoint_requested (FakeAgent *agent, const char *directory)
{
  g_autoptr (GError) error = NULL;
  g_dbus_connection_emit_signal (agent->connection, NULL, SLOT_PATH, "org.bluegreen.Slot1",
                                 "SavepointRequested", g_variant_new ("(s)", directory), &error);
  g_assert_no_error (error);
}

static void
test_savepoint (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));

  /* No handler: the agent learns at once that this job cannot. */
  emit_savepoint_requested (f->agent, "/var/lib/bluegreen/savepoints/a");
  g_assert_true (wait_until (savepoint_answered, f));
  g_assert_cmpstr (f->agent->savepoint_dir, ==, "/var/lib/bluegreen/savepoints/a");
  g_assert_false (f->agent->savepoint_ok);
  g_clear_pointer (&f->agent->savepoint_dir, g_free);

  SavepointJob job = { NULL, NULL };
  bg_gate_set_savepoint_handler (f->gate, on_savepoint_threaded, &job);
  emit_savepoint_requested (f->agent, "/var/lib/bluegreen/savepoints/b");
  g_assert_true (wait_until (savepoint_answered, f));
  g_assert_cmpstr (job.directory, ==, "/var/lib/bluegreen/savepoints/b");
  g_assert_cmpstr (f->agent->savepoint_dir, ==, "/var/lib/bluegreen/savepoints/b");
  g_assert_true (f->agent->savepoint_ok);
  g_assert_cmpstr (f->agent->savepoint_message, ==, "written");
  g_free (job.directory);
}

static void
test_bus_lost (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));

  /* The whole bus goes away: the gate keeps its mode, and freeing the gate
   * still stops the link's thread (it is retrying to connect by then). */
  fake_agent_down (f->agent);
  g_clear_pointer (&f->bus, test_bus_down);
  g_assert_true (wait_until (link_is_connecting, f));
  g_assert_cmpint (bg_gate_get_mode (f->gate), ==, BG_SINK_MODE_LIVE);
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 0), ==, BG_VERDICT_EMIT);
  bg_gate_free (f->gate);
  f->gate = NULL;
}

/* ---- Cutover: plans, answers, holds, delivered offsets --------------------------- */

typedef struct {
  Fixture *f;
  const char *want;
} ArmedWanted;

static gboolean
agent_got_armed (gpointer data)
{
  ArmedWanted *w = data;
  GPtrArray *armed = w->f->agent->armed;
  for (guint i = 0; i < armed->len; i++)
    if (strcmp (g_ptr_array_index (armed, i), w->want) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
gate_plan_is_committed (gpointer data)
{
  Fixture *f = data;
  BgPlanState state;
  g_autofree char *id = bg_gate_get_plan (f->gate, &state);
  return id != NULL && state == BG_PLAN_STATE_COMMITTED;
}

static gboolean
gate_plan_is_aborted (gpointer data)
{
  Fixture *f = data;
  BgPlanState state;
  g_autofree char *id = bg_gate_get_plan (f->gate, &state);
  return id != NULL && state == BG_PLAN_STATE_ABORTED;
}

/* Outgoing (live) side: prepared -> PlanArmed ok; committed -> the ranges. */
static void
test_cutover_outgoing_commit (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));
  for (int64_t o = 0; o < 90; o++)
    g_assert_cmpint (bg_gate_admit (f->gate, f->topic, 0, o), ==, BG_VERDICT_EMIT);

  fake_agent_set_steering (f->agent, "gated", "[('in', 0, 0, -1), ('in', 1, 0, -1)]",
                           "('c1', 'outgoing', 'prepared', int64 0, [('in', 0, int64 100), ('in', 1, int64 0)])",
                           NULL);
  ArmedWanted w = { f, "c1 ok " };
  g_assert_true (wait_until (agent_got_armed, &w));
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 99), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 100), ==, BG_VERDICT_WAIT);

  /* A record at the barrier waits for the decision; commit drops it. */
  Admission a = { f->gate, f->topic, BG_VERDICT_WAIT, 0 };
  GThread *thread = g_thread_new ("admit", admission_run, &a); /* partition 1, offset 7 */
  g_assert_true (wait_until (gate_waits, f));
  fake_agent_set_steering (f->agent, "gated", "[('in', 0, 0, 100), ('in', 1, 0, 0)]",
                           "('c1', 'outgoing', 'committed', int64 0, [('in', 0, int64 100), ('in', 1, int64 0)])",
                           NULL);
  g_assert_true (wait_until (admission_done, &a));
  g_thread_join (thread);
  g_assert_cmpint (a.verdict, ==, BG_VERDICT_DROP);
  g_assert_true (gate_plan_is_committed (f));
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 99), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 100), ==, BG_VERDICT_DROP);
  /* One answer per prepared plan's fetch; none for the committed one. */
  g_assert_cmpuint (f->agent->armed->len, ==, 1);
}

/* Past the barrier: armed, with the position the commit would move the
 * barrier up to; abort: the old mode. */
static void
test_cutover_past_barrier_abort (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));
  g_assert_cmpint (bg_gate_admit (f->gate, f->topic, 0, 150), ==, BG_VERDICT_EMIT);

  fake_agent_set_steering (f->agent, "gated", "[('in', 0, 0, -1), ('in', 1, 0, -1)]",
                           "('c2', 'outgoing', 'prepared', int64 0, [('in', 0, int64 100)])", NULL);
  ArmedWanted w = { f, "c2 ok  in/0=151" };
  g_assert_true (wait_until (agent_got_armed, &w));
  /* Armed anyway: only the decision ends it. */
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 151), ==, BG_VERDICT_WAIT);

  fake_agent_set_steering (f->agent, "live", "@a(sixx) []",
                           "('c2', 'outgoing', 'aborted', int64 0, [('in', 0, int64 100)])", NULL);
  g_assert_true (wait_until (gate_plan_is_aborted, f));
  g_assert_cmpint (bg_gate_get_mode (f->gate), ==, BG_SINK_MODE_LIVE);
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 151), ==, BG_VERDICT_EMIT);
}

typedef struct {
  BgGate *gate;
  BgTopic *topic;
  int64_t offset;
  BgVerdict verdict;
  gint done;
} AdmitAt;

static gpointer
admit_at_run (gpointer data)
{
  AdmitAt *a = data;
  a->verdict = bg_gate_admit (a->gate, a->topic, 0, a->offset);
  g_atomic_int_set (&a->done, 1);
  return NULL;
}

static gboolean
admit_at_done (gpointer data)
{
  return g_atomic_int_get (&((AdmitAt *) data)->done);
}

static gboolean
agent_confirmed_generation (gpointer data)
{
  Fixture *f = data;
  guint64 applied = 0;
  if (f->agent->last_report != NULL)
    g_variant_get_child (f->agent->last_report, 3, "t", &applied);
  return applied == f->agent->generation;
}

/* Incoming (blackhole) side: committed but held, the record past the
 * barrier waits; released, it is emitted. */
static void
test_cutover_incoming_holds (Fixture *f, gconstpointer data)
{
  g_free (f->agent->sink_mode);
  f->agent->sink_mode = g_strdup ("blackhole");
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_drops, f));

  fake_agent_set_steering (f->agent, "blackhole", NULL,
                           "('c3', 'incoming', 'prepared', int64 0, [('in', 0, int64 50)])",
                           "[('in', 0)]");
  ArmedWanted w = { f, "c3 ok " };
  g_assert_true (wait_until (agent_got_armed, &w));
  fake_agent_set_steering (f->agent, "gated", "[('in', 0, 50, -1)]",
                           "('c3', 'incoming', 'committed', int64 0, [('in', 0, int64 50)])",
                           NULL);
  g_assert_true (wait_until (gate_plan_is_committed, f));
  g_assert_cmpint (bg_gate_try_admit (f->gate, f->topic, 0, 49), ==, BG_VERDICT_DROP);

  AdmitAt a = { f->gate, f->topic, 50, BG_VERDICT_WAIT, 0 };
  GThread *thread = g_thread_new ("admit", admit_at_run, &a);
  g_assert_true (wait_until (gate_waits, f));
  /* Still held after another steering change that keeps the hold. */
  guint64 before = f->agent->generation;
  fake_agent_set_steering (f->agent, "gated", NULL, NULL, NULL);
  g_assert_cmpuint (f->agent->generation, >, before);
  g_assert_true (wait_until (agent_confirmed_generation, f));
  g_assert_false (g_atomic_int_get (&a.done));

  fake_agent_set_steering (f->agent, "gated", NULL, NULL, "@a(si) []");
  g_assert_true (wait_until (admit_at_done, &a));
  g_thread_join (thread);
  g_assert_cmpint (a.verdict, ==, BG_VERDICT_EMIT);
}

/* The agent goes away while a record waits at a prepared barrier: the job
 * keeps waiting (never emits on a guess) until the agent is back and its
 * steering carries the decision. */
static void
test_cutover_agent_gone_keeps_waiting (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));
  fake_agent_set_steering (f->agent, "gated", "[('in', 0, 0, -1), ('in', 1, 0, -1)]",
                           "('c4', 'outgoing', 'prepared', int64 1, [('in', 0, int64 20)])", NULL);
  ArmedWanted w = { f, "c4 ok " };
  g_assert_true (wait_until (agent_got_armed, &w));

  AdmitAt a = { f->gate, f->topic, 25, BG_VERDICT_WAIT, 0 };
  GThread *thread = g_thread_new ("admit", admit_at_run, &a);
  g_assert_true (wait_until (gate_waits, f));
  fake_agent_down (f->agent);
  g_assert_true (wait_until (link_has_no_agent, f));
  /* Past the plan's deadline (1 µs after the epoch) and without an agent:
   * still waiting. */
  gint64 since = 0;
  g_assert_true (bg_gate_is_waiting (f->gate, &since));
  g_assert_false (g_atomic_int_get (&a.done));

  /* Back, with the decision: abort, so the old (live) ranges apply. */
  fake_agent_set_steering (f->agent, "live", "@a(sixx) []",
                           "('c4', 'outgoing', 'aborted', int64 1, [('in', 0, int64 20)])", NULL);
  fake_agent_up (f->agent);
  g_assert_true (wait_until (admit_at_done, &a));
  g_thread_join (thread);
  g_assert_cmpint (a.verdict, ==, BG_VERDICT_EMIT);
}

typedef struct {
  Fixture *f;
  const char *key;
  gint64 offset;
} DeliveredWanted;

static gboolean
agent_got_delivered (gpointer data)
{
  DeliveredWanted *w = data;
  return (gint64) GPOINTER_TO_SIZE (g_hash_table_lookup (w->f->agent->delivered, w->key))
         == w->offset;
}

/* Delivered offsets reach the agent promptly, coalesced, and again after
 * the agent restarts (it keeps them in memory only). */
static void
test_cutover_delivered (Fixture *f, gconstpointer data)
{
  fake_agent_up (f->agent);
  fixture_link (f);
  g_assert_true (wait_until (gate_emits, f));

  gint64 start = g_get_monotonic_time ();
  for (int64_t o = 1; o <= 1000; o++)
    bg_gate_report_delivered (f->gate, f->topic, 0, o);
  bg_gate_report_delivered (f->gate, f->topic, 1, 7);
  bg_gate_report_delivered (f->gate, f->topic, 1, 5); /* lower: ignored */
  DeliveredWanted w0 = { f, "in:0", 1000 }, w1 = { f, "in:1", 7 };
  g_assert_true (wait_until (agent_got_delivered, &w0));
  g_assert_true (wait_until (agent_got_delivered, &w1));
  gint64 took = g_get_monotonic_time () - start;
  g_test_message ("delivered offsets reached the agent in %" G_GINT64_FORMAT " us, %u call(s)",
                  took, f->agent->n_delivered_calls);
  g_assert_cmpint (took, <, 200 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpuint (f->agent->n_delivered_calls, <=, 5);

  /* Unchanged: nothing more is sent. */
  guint calls = f->agent->n_delivered_calls;
  bg_gate_report_delivered (f->gate, f->topic, 0, 1000);
  g_assert_cmpuint (f->agent->n_delivered_calls, ==, calls);

  /* A restarted agent gets them all again. */
  fake_agent_down (f->agent);
  g_hash_table_remove_all (f->agent->delivered);
  g_assert_true (wait_until (link_has_no_agent, f));
  fake_agent_up (f->agent);
  g_assert_true (wait_until (agent_got_delivered, &w0));
  g_assert_true (wait_until (agent_got_delivered, &w1));
}

/* ---- Stand-alone gates from the environment --------------------------------------- */

static void
test_standalone (void)
{
  g_unsetenv ("BLUEGREEN_SLOT");
  g_unsetenv ("BLUEGREEN_BUS");
  g_unsetenv ("BLUEGREEN_SINK_MODE");
  char *message = NULL;
  BgGate *gate = bg_gate_new_from_env (&message);
  g_assert_null (message);
  g_assert_nonnull (gate);
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_LIVE);
  g_assert_null (bg_gate_get_slot_path (gate));
  BgTopic *topic = bg_gate_topic (gate, "in", 1);
  g_assert_cmpint (bg_gate_admit (gate, topic, 0, 0), ==, BG_VERDICT_EMIT);
  /* No-ops without an agent, but safe to call. */
  bg_gate_report_now (gate);
  bg_gate_savepoint_done (gate, "/tmp/x", true, NULL);
  bg_gate_free (gate);

  g_setenv ("BLUEGREEN_SINK_MODE", "blackhole", TRUE);
  gate = bg_gate_new_from_env (NULL);
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_BLACKHOLE);
  bg_gate_free (gate);

  struct {
    const char *slot, *bus, *mode, *complaint;
  } bad[] = {
    { NULL, NULL, "gated", "BLUEGREEN_SINK_MODE" },
    { NULL, NULL, "Live", "BLUEGREEN_SINK_MODE" },
    { "not/a/path", NULL, NULL, "BLUEGREEN_SLOT" },
    { "/org/bluegreen/Agent1/job/x/", NULL, NULL, "BLUEGREEN_SLOT" },
    { SLOT_PATH, "starter", NULL, "BLUEGREEN_BUS" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_null (bg_client_gate_new (bad[i].slot, bad[i].bus, bad[i].mode, &error));
      g_assert_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_ENVIRONMENT);
      g_assert_nonnull (strstr (error->message, bad[i].complaint));
    }
  g_setenv ("BLUEGREEN_SLOT", "bad", TRUE);
  message = NULL;
  g_assert_null (bg_gate_new_from_env (&message));
  g_assert_nonnull (strstr (message, "BLUEGREEN_SLOT"));
  free (message);
  g_unsetenv ("BLUEGREEN_SLOT");
  g_unsetenv ("BLUEGREEN_SINK_MODE");
}

/* ---- The steering mapping on its own ----------------------------------------------- */

static GVariant *
steering (const char *mode, const char *ranges, const char *plan, const char *holds,
          guint64 generation)
{
  g_autofree char *text = g_strdup_printf ("('%s', %s, %s, %s, uint64 %" G_GUINT64_FORMAT ")",
                                           mode, ranges, plan, holds, generation);
  g_autoptr (GError) error = NULL;
  GVariant *v = g_variant_parse (G_VARIANT_TYPE (BG_STEERING_TYPE), text, NULL, NULL, &error);
  g_assert_no_error (error);
  return g_variant_ref_sink (v);
}

#define NO_RANGES "@a(sixx) []"
#define NO_PLAN "('', '', '', int64 0, @a(six) [])"
#define NO_HOLDS "@a(si) []"

static void
apply_ok (BgGate *gate, GHashTable *holds, GVariant *s)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) owned = s;
  g_assert_true (bg_client_apply_steering (gate, owned, holds, &error));
  g_assert_no_error (error);
}

static void
test_steering_modes_and_ranges (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *in = bg_gate_topic (gate, "in", 2);
  g_autoptr (GHashTable) holds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  apply_ok (gate, holds, steering ("blackhole", NO_RANGES, NO_PLAN, NO_HOLDS, 1));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_BLACKHOLE);

  /* Committed ranges: partition 0 from 100 on, partition 1 below 50. */
  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, int64 100, int64 -1), ('in', 1, 0, 50)]", NO_PLAN,
                      NO_HOLDS, 2));
  g_assert_cmpint (bg_gate_get_mode (gate), ==, BG_SINK_MODE_GATED);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 99), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 100), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, G_MAXINT64 - 1), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 1, 49), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 1, 50), ==, BG_VERDICT_DROP);

  /* Bad steering changes nothing. */
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) bad = steering ("loud", NO_RANGES, NO_PLAN, NO_HOLDS, 3);
  g_assert_false (bg_client_apply_steering (gate, bad, holds, &error));
  g_assert_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING);
  g_clear_error (&error);
  g_autoptr (GVariant) bad_range = steering ("gated", "[('in', -2, 0, 5)]", NO_PLAN, NO_HOLDS, 3);
  g_assert_false (bg_client_apply_steering (gate, bad_range, holds, &error));
  g_assert_error (error, BG_CLIENT_ERROR, BG_CLIENT_ERROR_BAD_STEERING);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 100), ==, BG_VERDICT_EMIT);

  apply_ok (gate, holds, steering ("live", NO_RANGES, NO_PLAN, NO_HOLDS, 4));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 1, 50), ==, BG_VERDICT_EMIT);
  bg_gate_free (gate);
}

static void
test_steering_plan (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *in = bg_gate_topic (gate, "in", 1);
  g_autoptr (GHashTable) holds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* An outgoing live slot is armed: below the barrier emits, past it waits. */
  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, 0, -1)]",
                      "('c1', 'outgoing', 'prepared', int64 0, [('in', 0, int64 500)])", NO_HOLDS,
                      1));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 499), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 500), ==, BG_VERDICT_WAIT);
  BgPlanState state;
  g_autofree char *id = bg_gate_get_plan (gate, &state);
  g_assert_cmpstr (id, ==, "c1");
  g_assert_cmpint (state, ==, BG_PLAN_STATE_PREPARED);

  /* A mode alone never ends a prepared plan; another plan's id neither. */
  apply_ok (gate, holds, steering ("blackhole", NO_RANGES, NO_PLAN, NO_HOLDS, 2));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 500), ==, BG_VERDICT_WAIT);
  apply_ok (gate, holds,
            steering ("live", NO_RANGES, "('c2', 'outgoing', 'committed', int64 0, @a(six) [])",
                      NO_HOLDS, 3));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 500), ==, BG_VERDICT_WAIT);

  /* Its own commit ends it; the committed ranges follow. */
  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, 0, 500)]",
                      "('c1', 'outgoing', 'committed', int64 0, [('in', 0, int64 500)])",
                      NO_HOLDS, 4));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 499), ==, BG_VERDICT_EMIT);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 500), ==, BG_VERDICT_DROP);
  g_clear_pointer (&id, g_free);
  id = bg_gate_get_plan (gate, &state);
  g_assert_cmpint (state, ==, BG_PLAN_STATE_COMMITTED);
  bg_gate_free (gate);

  /* The incoming side, then an abort: back to blackhole. */
  gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  in = bg_gate_topic (gate, "in", 1);
  g_hash_table_remove_all (holds);
  apply_ok (gate, holds,
            steering ("blackhole", NO_RANGES,
                      "('c3', 'incoming', 'prepared', int64 0, [('in', 0, int64 70)])",
                      "[('in', 0)]", 1));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 69), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 70), ==, BG_VERDICT_WAIT);
  g_assert_cmpuint (g_hash_table_size (holds), ==, 1);
  apply_ok (gate, holds,
            steering ("blackhole", NO_RANGES,
                      "('c3', 'incoming', 'aborted', int64 0, [('in', 0, int64 70)])", NO_HOLDS,
                      2));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 70), ==, BG_VERDICT_DROP);
  g_assert_cmpuint (g_hash_table_size (holds), ==, 0);
  bg_gate_free (gate);
}

static void
test_steering_holds (void)
{
  BgGate *gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  BgTopic *in = bg_gate_topic (gate, "in", 1);
  g_autoptr (GHashTable) holds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* Incoming, committed at 10, held until the outgoing side delivered. */
  apply_ok (gate, holds,
            steering ("blackhole", NO_RANGES,
                      "('h1', 'incoming', 'prepared', int64 0, [('in', 0, int64 10)])", NO_HOLDS,
                      1));
  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, 10, -1)]",
                      "('h1', 'incoming', 'committed', int64 0, [('in', 0, int64 10)])",
                      "[('in', 0), ('unregistered', 3)]", 2));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 9), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 10), ==, BG_VERDICT_WAIT);
  /* A hold may name a topic the job has not registered yet. */
  g_assert_cmpuint (g_hash_table_size (holds), ==, 2);

  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, 10, -1)]",
                      "('h1', 'incoming', 'committed', int64 0, [('in', 0, int64 10)])", NO_HOLDS,
                      3));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 10), ==, BG_VERDICT_EMIT);
  g_assert_cmpuint (g_hash_table_size (holds), ==, 0);
  bg_gate_free (gate);

  /* An instance (re)started after the commit never saw the plan prepared:
   * its holds still hold from the barrier on. */
  gate = bg_gate_new (BG_SINK_MODE_UNKNOWN);
  in = bg_gate_topic (gate, "in", 1);
  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, 10, -1)]",
                      "('h2', 'incoming', 'committed', int64 0, [('in', 0, int64 10)])",
                      "[('in', 0)]", 1));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 9), ==, BG_VERDICT_DROP);
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 10), ==, BG_VERDICT_WAIT);
  apply_ok (gate, holds,
            steering ("gated", "[('in', 0, 10, -1)]",
                      "('h2', 'incoming', 'committed', int64 0, [('in', 0, int64 10)])", NO_HOLDS,
                      2));
  g_assert_cmpint (bg_gate_try_admit (gate, in, 0, 10), ==, BG_VERDICT_EMIT);
  bg_gate_free (gate);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Only the test's own bus: never a real session bus of this machine. */
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_unsetenv ("XDG_RUNTIME_DIR");

  g_test_add ("/client/link/waits-for-steering", Fixture, NULL, fixture_setup,
              test_waits_for_steering, fixture_teardown);
  g_test_add ("/client/link/flip-within-100ms", Fixture, NULL, fixture_setup, test_flip_fast,
              fixture_teardown);
  g_test_add ("/client/link/report-progress", Fixture, NULL, fixture_setup, test_report_progress,
              fixture_teardown);
  g_test_add ("/client/link/agent-restart-keeps-steering", Fixture, NULL, fixture_setup,
              test_agent_restart, fixture_teardown);
  g_test_add ("/client/link/savepoint", Fixture, NULL, fixture_setup, test_savepoint,
              fixture_teardown);
  g_test_add ("/client/link/bus-lost", Fixture, NULL, fixture_setup, test_bus_lost,
              fixture_teardown);
  g_test_add ("/client/cutover/outgoing-armed-then-committed", Fixture, NULL, fixture_setup,
              test_cutover_outgoing_commit, fixture_teardown);
  g_test_add ("/client/cutover/past-barrier-then-aborted", Fixture, NULL, fixture_setup,
              test_cutover_past_barrier_abort, fixture_teardown);
  g_test_add ("/client/cutover/incoming-holds", Fixture, NULL, fixture_setup,
              test_cutover_incoming_holds, fixture_teardown);
  g_test_add ("/client/cutover/agent-gone-keeps-waiting", Fixture, NULL, fixture_setup,
              test_cutover_agent_gone_keeps_waiting, fixture_teardown);
  g_test_add ("/client/cutover/delivered", Fixture, NULL, fixture_setup, test_cutover_delivered,
              fixture_teardown);
  g_test_add_func ("/client/env/standalone", test_standalone);
  g_test_add_func ("/client/steering/modes-and-ranges", test_steering_modes_and_ranges);
  g_test_add_func ("/client/steering/plan", test_steering_plan);
  g_test_add_func ("/client/steering/holds", test_steering_holds);
  return g_test_run ();
}
