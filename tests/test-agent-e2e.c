/* test-agent-e2e.c — bluegreend end to end on one host (issue 4): the
 * agent as a real service of a test host's user manager (the fleet fixture,
 * tests/lib/fleet.h, with one host), the real example job in both slots,
 * the Kafka mock, bluegreen-loadgen and bluegreen-verify: [deploy],
 * [savepoint], [flip].
 *
 * Clocks: the [flip] test compares the wall-clock time of its SetSinkMode
 * call (g_get_real_time, CLOCK_REALTIME, µs) with the Kafka timestamps of
 * the results, which are CreateTime set by the job's librdkafka producer
 * when it produces (also CLOCK_REALTIME, in ms) on the same machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/watermarks.h"
#include "fleet.h"

#define WAIT_MS 30000
#define READY_WAIT_MS 60000
#define PARTITIONS 4
#define KEYS 300
#define FLIP_LIMIT_US (100 * 1000)

typedef struct {
  BgtFleet *fleet;
  BgtFleetOptions opts;
  gint64 produced; /* records produced by produce_batch() so far (the next index) */
  rd_kafka_t *rk;  /* for the output topic's watermarks */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  bgt_fleet_options_init (&f->opts);
  f->opts.n_hosts = 1;
  f->opts.partitions = PARTITIONS;
  f->fleet = bgt_fleet_new (&f->opts, &error);
  g_assert_no_error (error);
  {
    /* The agent answers Deploy with Busy until it has replayed the control
     * log; its first hello follows the replay at once. */
    const char *needles[] = { "\"type\":\"hello\"", "\"host\":\"a\"", NULL };
    g_assert_cmpint (bgt_fleet_control_wait (f->fleet, 0, needles, WAIT_MS), >=, 0);
  }
}

/* The same with a HealthCommand= that records each run in health-calls and
 * passes once a file healthy-COLOR exists, both in the test's directory. */
static void
fixture_setup_health (Fixture *f, gconstpointer data)
{
  const char *dir = g_getenv ("BG_TEST_TMPDIR");
  g_autofree char *cmd = NULL;
  g_autoptr (GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  g_assert_nonnull (dir);
  cmd = g_strdup_printf ("/bin/sh -c \"echo %%c >>%s/health-calls; test -e %s/healthy-%%c\"", dir, dir);
  bgt_fleet_options_init (&f->opts);
  f->opts.n_hosts = 1;
  f->opts.partitions = PARTITIONS;
  f->opts.health_command = cmd;
  f->fleet = bgt_fleet_new (&f->opts, &error);
  f->opts.health_command = NULL;
  g_assert_no_error (error);
}


/* [sandbox]: the job's Kafka secret in a credential file only root can
 * read, handed over with LoadCredential= and read by the example job from
 * $CREDENTIALS_DIRECTORY (--kafka-properties=NAME). */
#define SANDBOX_SECRET "pw-5a4db0x-only-in-the-credential"

static void
fixture_setup_sandbox (Fixture *f, gconstpointer data)
{
  const char *dir = g_getenv ("BG_TEST_TMPDIR");
  g_autofree char *cred = NULL;
  g_autofree char *sandbox = NULL;
  g_autoptr (GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  g_assert_nonnull (dir);
  cred = g_build_filename (dir, "kafka.properties", NULL);
  g_assert_true (g_file_set_contents (cred, "# the job's client settings\nsasl.username=counts\n"
                                      "sasl.password=" SANDBOX_SECRET "\nclient.id=counts-sandboxed\n", -1, NULL));
  g_assert_cmpint (chmod (cred, 0600), ==, 0);
  sandbox = g_strdup_printf ("LoadCredential=kafka.properties:%s\n", cred);
  bgt_fleet_options_init (&f->opts);
  f->opts.n_hosts = 1;
  f->opts.partitions = PARTITIONS;
  f->opts.sandbox = sandbox;
  f->opts.job_args = "--kafka-properties=kafka.properties";
  f->fleet = bgt_fleet_new (&f->opts, &error);
  f->opts.sandbox = NULL;
  g_assert_no_error (error);
  {
    const char *needles[] = { "\"type\":\"hello\"", "\"host\":\"a\"", NULL };
    g_assert_cmpint (bgt_fleet_control_wait (f->fleet, 0, needles, WAIT_MS), >=, 0);
  }
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->rk, rd_kafka_destroy);
  g_clear_pointer (&f->fleet, bgt_fleet_free);
}

/* ---- properties -------------------------------------------------------------- */

static GVariant *
slot_get (Fixture *f, const char *color, const char *prop)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  return bgt_fleet_get (f->fleet, 0, path, BGT_SLOT_IFACE, prop);
}

static guint64
slot_u64 (Fixture *f, const char *color, const char *prop)
{
  g_autoptr (GVariant) v = slot_get (f, color, prop);

  g_assert_nonnull (v);
  return g_variant_get_uint64 (v);
}

static char *
slot_string (Fixture *f, const char *color, const char *prop)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  return bgt_fleet_get_string (f->fleet, 0, path, BGT_SLOT_IFACE, prop);
}

static void
wait_slot (Fixture *f, const char *color, const char *prop, const char *want)
{
  g_autofree char *path = bgt_fleet_slot_path (color);
  g_assert_true (bgt_fleet_wait_string (f->fleet, 0, path, BGT_SLOT_IFACE, prop, want, WAIT_MS));
}

static void
wait_job (Fixture *f, const char *prop, const char *want)
{
  g_assert_true (bgt_fleet_wait_string (f->fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, prop, want,
                                        WAIT_MS));
}

/* Positions (a(six)) as next offset per partition, -1 where none. */
static void
positions_to_array (GVariant *v, gint64 out[PARTITIONS])
{
  GVariantIter iter;
  const char *topic;
  gint32 p;
  gint64 off;

  for (int i = 0; i < PARTITIONS; i++)
    out[i] = -1;
  if (v == NULL)
    return;
  g_variant_iter_init (&iter, v);
  while (g_variant_iter_next (&iter, "(&six)", &topic, &p, &off))
    if (g_strcmp0 (topic, BGT_FLEET_INPUT) == 0 && p >= 0 && p < PARTITIONS)
      out[p] = off;
}

static gint64
positions_sum (Fixture *f, const char *color)
{
  g_autoptr (GVariant) v = slot_get (f, color, "Positions");
  gint64 pos[PARTITIONS], sum = 0;

  positions_to_array (v, pos);
  for (int i = 0; i < PARTITIONS; i++)
    sum += MAX (pos[i], 0);
  return sum;
}

typedef struct {
  Fixture *f;
  const char *color;
  gint64 above;
} PositionsWait;

static gboolean
positions_above (gpointer data)
{
  PositionsWait *w = data;
  return positions_sum (w->f, w->color) > w->above;
}

/* Waits until @color's Positions sum past @above; returns the sum. */
static gint64
wait_positions_above (Fixture *f, const char *color, gint64 above)
{
  PositionsWait w = { f, color, above };

  if (!bgt_wait_until (positions_above, &w, WAIT_MS))
    g_test_message ("%s: positions sum %" G_GINT64_FORMAT ", waited for > %" G_GINT64_FORMAT, color,
                    positions_sum (f, color), above);
  g_assert_true (positions_above (&w));
  return positions_sum (f, color);
}

typedef struct {
  Fixture *f;
  const char *color;
  const char *prop;
  guint64 want;
} U64Wait;

static gboolean
u64_at_least (gpointer data)
{
  U64Wait *w = data;
  g_autoptr (GVariant) v = slot_get (w->f, w->color, w->prop);
  return v != NULL && g_variant_get_uint64 (v) >= w->want;
}

/* Waits until the job has applied the slot's current steering generation
 * (it confirms through ReportProgress). */
static void
wait_applied (Fixture *f, const char *color)
{
  U64Wait w = { f, color, "AppliedGeneration", slot_u64 (f, color, "Generation") };

  if (!bgt_wait_until (u64_at_least, &w, WAIT_MS))
    g_test_message ("%s: AppliedGeneration %" G_GUINT64_FORMAT ", Generation %" G_GUINT64_FORMAT, color,
                    slot_u64 (f, color, "AppliedGeneration"), w.want);
  g_assert_true (u64_at_least (&w));
}

/* ---- PropertiesChanged of one slot ------------------------------------------------ */

typedef struct {
  guint id;
  GDBusConnection *bus;
  gboolean have_positions;
  gint64 first_positions[PARTITIONS]; /* the first non-empty Positions announced */
  gboolean ready;                     /* Ready=true announced */
  gint64 lag_when_ready;              /* Lag announced with or before it, -2 if none */
  gint64 last_lag;
  guint n_signals;
} SlotWatch;

static void
on_slot_properties (GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                    const char *signal, GVariant *params, gpointer user_data)
{
  SlotWatch *w = user_data;
  g_autoptr (GVariant) changed = NULL;
  const char *name;
  GVariant *value;
  GVariantIter iter;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  g_variant_get (params, "(&s@a{sv}@as)", &name, &changed, NULL);
  if (g_strcmp0 (name, BGT_SLOT_IFACE) != 0)
    return;
  w->n_signals++;
  g_variant_iter_init (&iter, changed);
  while (g_variant_iter_next (&iter, "{&sv}", &name, &value))
    {
      if (g_str_equal (name, "Positions") && !w->have_positions && g_variant_n_children (value) > 0)
        {
          g_autofree char *text = g_variant_print (value, FALSE);
          positions_to_array (value, w->first_positions);
          w->have_positions = TRUE;
          g_test_message ("first Positions announced: %s", text);
        }
      else if (g_str_equal (name, "Lag") && g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
        w->last_lag = g_variant_get_int64 (value);
      else if (g_str_equal (name, "Ready") && g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN)
               && g_variant_get_boolean (value) && !w->ready)
        {
          w->ready = TRUE;
          w->lag_when_ready = w->last_lag;
          g_test_message ("Ready=true announced (Lag %" G_GINT64_FORMAT ")", w->last_lag);
        }
      g_variant_unref (value);
    }
}

static void
slot_watch_start (Fixture *f, SlotWatch *w, const char *color)
{
  g_autofree char *path = bgt_fleet_slot_path (color);

  memset (w, 0, sizeof *w);
  w->last_lag = -2;
  w->lag_when_ready = -2;
  w->bus = bgt_fleet_host (f->fleet, 0)->bus;
  w->id = g_dbus_connection_signal_subscribe (w->bus, NULL, "org.freedesktop.DBus.Properties",
                                              "PropertiesChanged", path, BGT_SLOT_IFACE,
                                              G_DBUS_SIGNAL_FLAGS_NONE, on_slot_properties, w, NULL);
}

static void
slot_watch_stop (SlotWatch *w)
{
  if (w->id != 0)
    g_dbus_connection_signal_unsubscribe (w->bus, w->id);
  w->id = 0;
}

static gboolean
watch_ready (gpointer data)
{
  return ((SlotWatch *) data)->ready;
}

static gboolean
watch_has_positions (gpointer data)
{
  return ((SlotWatch *) data)->have_positions;
}

/* ---- operations ------------------------------------------------------------------ */

static void
deploy (Fixture *f, const char *version, gboolean live)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_deploy (f->fleet, 0, version, live, &error);
  g_assert_no_error (error);
}

static void
set_sink_mode (Fixture *f, const char *color, const char *mode)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = bgt_fleet_call (f->fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE,
                                               "SetSinkMode", g_variant_new ("(ss)", color, mode),
                                               "()", WAIT_MS, &error);
  g_assert_no_error (error);
}

/* Produces @n more records of the loadgen sequence (synchronously, all
 * delivered). */
static void
produce_batch (Fixture *f, gint64 n)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *loadgen = bgt_build_path ("bluegreen-loadgen");
  g_autofree char *n_s = g_strdup_printf ("%" G_GINT64_FORMAT, n);
  g_autofree char *i_s = g_strdup_printf ("%" G_GINT64_FORMAT, f->produced);
  g_autofree char *k_s = g_strdup_printf ("%d", KEYS);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = -1;

  g_assert_nonnull (loadgen);
  {
    const char *argv[] = { loadgen, "-b", bgt_fleet_bootstrap (f->fleet), "-t", BGT_FLEET_INPUT,
                           "-n", n_s, "-i", i_s, "-k", k_s, "-q", NULL };
    bgt_run (argv, NULL, WAIT_MS, &out, &err, &status, &error);
  }
  g_assert_no_error (error);
  if (status != 0)
    g_test_message ("loadgen (%d): %s %s", status, out, err);
  g_assert_cmpint (status, ==, 0);
  f->produced += n;
}

static void
load_start (Fixture *f, guint rate)
{
  g_autoptr (GError) error = NULL;

  bgt_fleet_load_start (f->fleet, rate, &error);
  g_assert_no_error (error);
}

static gint64
load_stop (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  gint64 n = bgt_fleet_load_stop (f->fleet, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  return n;
}

static void
wait_caught_up (Fixture *f, const char *color)
{
  g_assert_true (bgt_fleet_wait_caught_up (f->fleet, 0, color, WAIT_MS));
}

static gint64
input_total (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) hwm = bgt_fleet_input_watermarks (f->fleet, &error);
  gint64 sum = 0;

  g_assert_no_error (error);
  for (guint p = 0; p < hwm->len; p++)
    sum += g_array_index (hwm, gint64, p);
  return sum;
}

/* The verifier's report; asserts what holds in every test here: state
 * checked, correct, no gap, nothing malformed. */
static JsonObject *
verify (Fixture *f, int *status)
{
  g_autoptr (GError) error = NULL;
  JsonObject *report = bgt_fleet_verify (f->fleet, NULL, NULL, NULL, status, &error);

  g_assert_no_error (error);
  g_assert_nonnull (report);
  g_assert_cmpint (bgt_report_num (report, "inputs"), >, 0);
  g_assert_true (json_object_get_boolean_member (report, "state_checked"));
  g_assert_cmpint (bgt_report_num (report, "gaps"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "wrong_state"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "malformed"), ==, 0);
  return report;
}

/* ---- the output topic, with timestamps ------------------------------------------------ */

typedef struct {
  gint64 count;
  gint64 first_ms; /* smallest CreateTime, G_MAXINT64 if none */
  gint64 last_ms;  /* largest, -1 if none */
} ColorTimes;

/* Reads the whole output topic (up to its current high watermarks) and
 * sums up the results' CreateTime per color. */
static void
read_output_times (Fixture *f, ColorTimes *blue, ColorTimes *green)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_t *rk;
  rd_kafka_topic_partition_list_t *parts;
  gint64 hwm[PARTITIONS], next[PARTITIONS];
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gboolean done = FALSE;

  blue->count = green->count = 0;
  blue->first_ms = green->first_ms = G_MAXINT64;
  blue->last_ms = green->last_ms = -1;
  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", bgt_fleet_bootstrap (f->fleet), errstr,
                                      sizeof errstr), ==, RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "group.id", "agent-e2e-reader", errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "fetch.wait.max.ms", "10", errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);
  rd_kafka_poll_set_consumer (rk);

  parts = rd_kafka_topic_partition_list_new (PARTITIONS);
  for (int p = 0; p < PARTITIONS; p++)
    {
      gint64 lo = -1, hi = -1;
      gint32 id = p;
      g_autoptr (GError) error = NULL;
      g_assert_true (bg_watermarks_query (rk, BGT_FLEET_OUTPUT, &id, 1, &lo, &hi, 5000, &error));
      g_assert_no_error (error);
      g_assert_cmpint (lo, ==, 0);
      hwm[p] = hi;
      next[p] = 0;
      rd_kafka_topic_partition_list_add (parts, BGT_FLEET_OUTPUT, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
  g_assert_cmpint (rd_kafka_assign (rk, parts), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy (parts);

  while (!done && g_get_monotonic_time () < deadline)
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, 100);

      if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0
          && m->partition < PARTITIONS)
        {
          rd_kafka_timestamp_type_t type;
          gint64 ts = rd_kafka_message_timestamp (m, &type);
          g_autofree char *text = g_strndup (m->payload ? m->payload : "", m->len);
          ColorTimes *c = strstr (text, "\"color\":\"green\"") != NULL ? green
                          : strstr (text, "\"color\":\"blue\"") != NULL ? blue : NULL;

          g_assert_cmpint (type, ==, RD_KAFKA_TIMESTAMP_CREATE_TIME);
          g_assert_nonnull (c);
          c->count++;
          c->first_ms = MIN (c->first_ms, ts);
          c->last_ms = MAX (c->last_ms, ts);
          next[m->partition] = m->offset + 1;
        }
      if (m != NULL)
        rd_kafka_message_destroy (m);
      done = TRUE;
      for (int p = 0; p < PARTITIONS; p++)
        done = done && next[p] >= hwm[p];
    }
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  g_assert_true (done);
}

/* The number of results on the output topic (sum of its high watermarks). */
static gint64
output_watermarks (Fixture *f)
{
  gint64 sum = 0;

  if (f->rk == NULL)
    {
      char errstr[512];
      rd_kafka_conf_t *conf = rd_kafka_conf_new ();
      g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", bgt_fleet_bootstrap (f->fleet),
                                          errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
      g_assert_cmpint (rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr), ==,
                       RD_KAFKA_CONF_OK);
      f->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
      g_assert_nonnull (f->rk);
    }
  for (int p = 0; p < PARTITIONS; p++)
    {
      gint64 hi = -1;
      gint32 id = p;
      g_autoptr (GError) error = NULL;
      g_assert_true (bg_watermarks_query (f->rk, BGT_FLEET_OUTPUT, &id, 1, NULL, &hi, 5000, &error));
      g_assert_no_error (error);
      sum += hi;
    }
  return sum;
}

static gboolean
output_complete (gpointer data)
{
  Fixture *f = data;
  return output_watermarks (f)
         == (gint64) (slot_u64 (f, "blue", "Emitted") + slot_u64 (f, "green", "Emitted"));
}

/* Waits until every result the jobs emitted is on the output topic. Call
 * once every running slot has caught up with the input: Emitted comes in
 * the same report as the Positions that said so, so it is final. */
static void
wait_output_complete (Fixture *f)
{
  if (!bgt_wait_until (output_complete, f, WAIT_MS))
    g_test_message ("output: %" G_GINT64_FORMAT " results, emitted: blue %" G_GUINT64_FORMAT
                    ", green %" G_GUINT64_FORMAT, output_watermarks (f), slot_u64 (f, "blue", "Emitted"),
                    slot_u64 (f, "green", "Emitted"));
  g_assert_true (output_complete (f));
}

/* ---- systemd side ------------------------------------------------------------------ */

/* The unit's Environment= as the user manager has it. */
static char **
unit_environment (Fixture *f, const char *unit)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *bus = bgt_fleet_host (f->fleet, 0)->bus;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) value = NULL;
  const char *path;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "GetUnit",
                                       g_variant_new ("(s)", unit), G_VARIANT_TYPE ("(o)"),
                                       G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&o)", &path);
  {
    g_autoptr (GVariant) r2 = g_dbus_connection_call_sync (bus, "org.freedesktop.systemd1", path,
                                                           "org.freedesktop.DBus.Properties", "Get",
                                                           g_variant_new ("(ss)", "org.freedesktop.systemd1.Service",
                                                                          "Environment"),
                                                           G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                                           WAIT_MS, NULL, &error);
    g_assert_no_error (error);
    g_variant_get (r2, "(v)", &value);
  }
  return g_variant_dup_strv (value, NULL);
}

/* ---- [deploy] ----------------------------------------------------------------------- */

/* Blue v1 deployed live: its results reach the output. Green v2 deployed
 * next to it: its unit is active, its positions advance with the load, it
 * becomes Ready once caught up, and not one of its results reaches the
 * output (the verifier sees every input offset answered, all by blue). */
static void
test_deploy (Fixture *f, gconstpointer data)
{
  SlotWatch green_watch;
  g_autoptr (JsonObject) report = NULL;
  g_autofree char *active = NULL;
  g_autofree char *str = NULL;
  g_autoptr (GError) error = NULL;
  gint64 before, n_out;
  int status = -1;

  if (f->fleet == NULL)
    return;
  deploy (f, "v1", TRUE);
  wait_slot (f, "blue", "State", "running");
  wait_job (f, "LiveColor", "blue");
  wait_slot (f, "blue", "SinkMode", "live");

  /* Blue's results reach the output topic: one per input record. */
  produce_batch (f, 2000);
  wait_caught_up (f, "blue");
  g_assert_cmpuint (slot_u64 (f, "blue", "Emitted"), ==, 2000);
  wait_output_complete (f);
  n_out = output_watermarks (f);
  g_test_message ("after 2000 records: %" G_GINT64_FORMAT " results on the output", n_out);
  g_assert_cmpint (n_out, ==, 2000);

  load_start (f, 1000);
  slot_watch_start (f, &green_watch, "green");
  deploy (f, "v2", FALSE);
  wait_slot (f, "green", "State", "running");
  active = bgt_unit_active_state (bgt_fleet_host (f->fleet, 0), "bluegreen-counts-green.service", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (active, ==, "active");
  str = slot_string (f, "green", "ActiveState");
  g_assert_cmpstr (str, ==, "active");
  g_clear_pointer (&str, g_free);
  str = slot_string (f, "green", "SinkMode");
  g_assert_cmpstr (str, ==, "blackhole");
  g_clear_pointer (&str, g_free);
  str = slot_string (f, "green", "Version");
  g_assert_cmpstr (str, ==, "v2");

  /* Its positions advance: first past 0, then past that again while the
   * load keeps coming. */
  before = wait_positions_above (f, "green", 0);
  wait_positions_above (f, "green", before);

  /* Ready is announced once it has caught up. */
  if (!bgt_wait_until (watch_ready, &green_watch, READY_WAIT_MS))
    g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", 1));
  g_assert_true (green_watch.ready);
  g_assert_cmpint (green_watch.lag_when_ready, <=, f->opts.max_lag);
  wait_job (f, "Phase", "ready");
  slot_watch_stop (&green_watch);

  load_stop (f);
  wait_caught_up (f, "blue");
  wait_caught_up (f, "green");
  g_assert_cmpuint (slot_u64 (f, "green", "Emitted"), ==, 0);
  g_assert_cmpuint (slot_u64 (f, "green", "Dropped"), >, 0);
  g_assert_cmpuint (slot_u64 (f, "blue", "Emitted"), >, 0);
  wait_output_complete (f);

  report = verify (f, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpint (bgt_report_num (report, "cross_duplicates"), ==, 0);
  for (int p = 0; p < PARTITIONS; p++)
    {
      g_assert_cmpint (bgt_report_color_first (report, p, "green"), ==, -1);
      g_assert_cmpint (bgt_report_color_first (report, p, "blue"), ==, 0);
    }
}

/* ---- [savepoint] -------------------------------------------------------------------- */

typedef struct {
  gint64 next[PARTITIONS];
  guint n_keys;
} Savepoint;

static void
read_savepoint (const char *dir, Savepoint *sp)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *file = g_build_filename (dir, "savepoint.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root;
  JsonArray *offsets;

  for (int p = 0; p < PARTITIONS; p++)
    sp->next[p] = -1;
  json_parser_load_from_file (parser, file, &error);
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (root, "input"), ==, BGT_FLEET_INPUT);
  offsets = json_object_get_array_member (root, "offsets");
  for (guint i = 0; i < json_array_get_length (offsets); i++)
    {
      JsonObject *o = json_array_get_object_element (offsets, i);
      gint64 p = json_object_get_int_member (o, "partition");
      g_assert_cmpint (p, >=, 0);
      g_assert_cmpint (p, <, PARTITIONS);
      sp->next[p] = json_object_get_int_member (o, "next");
    }
  sp->n_keys = json_object_get_size (json_object_get_object_member (root, "state"));
}

typedef struct {
  Fixture *f;
  guint64 want;
} DroppedWait;

static gboolean
green_dropped_is (gpointer data)
{
  DroppedWait *w = data;
  g_autoptr (GVariant) v = slot_get (w->f, "green", "Dropped");
  return v != NULL && g_variant_get_uint64 (v) == w->want;
}

/* Green v2 deployed from a savepoint of the live blue v1 under load:
 * it restores the savepoint (its first positions are at or past the
 * savepoint's offsets and it drops exactly the records after them, so it
 * did not re-read from 0), and once flipped live its results carry the
 * right state (count and sum over the whole input, which it only has if
 * it restored blue's). */
static gboolean
health_ran (gpointer data)
{
  g_autofree char *path = g_build_filename (g_getenv ("BG_TEST_TMPDIR"), "health-calls", NULL);
  g_autofree char *text = NULL;

  return g_file_get_contents (path, &text, NULL, NULL) && strstr (text, "blue") != NULL;
}

/* [deploy] with HealthCommand=: a caught-up slot is Ready only once its
 * health command passes. */
static void
test_health (Fixture *f, gconstpointer data)
{
  g_autofree char *healthy = NULL;
  g_autoptr (GVariant) lag = NULL;
  g_autoptr (GVariant) ready = NULL;
  g_autoptr (GError) error = NULL;

  if (f->fleet == NULL)
    return;
  deploy (f, "v1", TRUE);
  wait_slot (f, "blue", "State", "running");
  produce_batch (f, 500);
  wait_caught_up (f, "blue");
  /* The command ran (the lag is fine) and failed: not Ready. */
  g_assert_true (bgt_wait_until (health_ran, NULL, WAIT_MS));
  lag = slot_get (f, "blue", "Lag");
  g_assert_nonnull (lag);
  g_assert_cmpint (g_variant_get_int64 (lag), <=, f->opts.max_lag);
  ready = slot_get (f, "blue", "Ready");
  g_assert_false (g_variant_get_boolean (ready));

  healthy = g_build_filename (g_getenv ("BG_TEST_TMPDIR"), "healthy-blue", NULL);
  g_file_set_contents (healthy, "", 0, &error);
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "blue", READY_WAIT_MS));
}

static void
test_savepoint (Fixture *f, gconstpointer data)
{
  SlotWatch green_watch;
  Savepoint sp;
  g_auto (GStrv) env = NULL;
  const char *sp_dir = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (JsonObject) report = NULL;
  g_autoptr (GError) error = NULL;
  GVariantBuilder opts;
  gint64 sp_total = 0, total;
  int status = -1;

  if (f->fleet == NULL)
    return;
  deploy (f, "v1", TRUE);
  wait_slot (f, "blue", "State", "running");
  wait_job (f, "LiveColor", "blue");
  load_start (f, 1000);
  /* Some state to save. */
  wait_positions_above (f, "blue", 1500);

  slot_watch_start (f, &green_watch, "green");
  g_variant_builder_init (&opts, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&opts, "{sv}", "from", g_variant_new_string ("savepoint"));
  reply = bgt_fleet_call (f->fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Deploy",
                          g_variant_new ("(sa{sv})", "v2", &opts), "(o)", WAIT_MS, &error);
  g_assert_no_error (error);
  wait_slot (f, "green", "State", "running");

  /* The savepoint the agent had blue write, as green was told to restore. */
  env = unit_environment (f, "bluegreen-counts-green.service");
  for (char **e = env; *e != NULL; e++)
    if (g_str_has_prefix (*e, "BLUEGREEN_SAVEPOINT="))
      sp_dir = *e + strlen ("BLUEGREEN_SAVEPOINT=");
  g_assert_nonnull (sp_dir);
  read_savepoint (sp_dir, &sp);
  for (int p = 0; p < PARTITIONS; p++)
    {
      g_test_message ("savepoint %s: partition %d next %" G_GINT64_FORMAT, sp_dir, p, sp.next[p]);
      /* Blue had seen every partition before the savepoint. */
      g_assert_cmpint (sp.next[p], >, 0);
      sp_total += sp.next[p];
    }
  g_assert_cmpuint (sp.n_keys, >, 0);
  g_assert_cmpint (sp_total, >=, 1500);

  /* Green's first positions: at or past the savepoint's, never behind. */
  g_assert_true (bgt_wait_until (watch_has_positions, &green_watch, WAIT_MS));
  for (int p = 0; p < PARTITIONS; p++)
    if (green_watch.first_positions[p] >= 0)
      g_assert_cmpint (green_watch.first_positions[p], >=, sp.next[p]);
  if (!bgt_wait_until (watch_ready, &green_watch, READY_WAIT_MS))
    g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", 1));
  slot_watch_stop (&green_watch);

  /* Quiesce: both caught up with the same input, so the flip below is
   * neither a gap nor a duplicate and the verifier may demand a clean run. */
  f->produced = load_stop (f);
  wait_caught_up (f, "blue");
  wait_caught_up (f, "green");
  total = input_total (f);
  {
    /* Green dropped exactly what came after the savepoint: it did not
     * re-read anything before it. */
    DroppedWait w = { f, (guint64) (total - sp_total) };
    if (!bgt_wait_until (green_dropped_is, &w, WAIT_MS))
      g_test_message ("green Dropped %" G_GUINT64_FORMAT ", input %" G_GINT64_FORMAT
                      ", savepoint %" G_GINT64_FORMAT, slot_u64 (f, "green", "Dropped"), total, sp_total);
    g_assert_cmpuint (slot_u64 (f, "green", "Dropped"), ==, (guint64) (total - sp_total));
    g_assert_cmpuint (slot_u64 (f, "green", "Dropped"), <, (guint64) total);
    g_assert_cmpuint (slot_u64 (f, "green", "Emitted"), ==, 0);
  }

  set_sink_mode (f, "green", "live");
  set_sink_mode (f, "blue", "blackhole");
  wait_job (f, "LiveColor", "green");
  wait_slot (f, "green", "SinkMode", "live");
  wait_slot (f, "blue", "SinkMode", "blackhole");
  wait_applied (f, "green");
  wait_applied (f, "blue");

  produce_batch (f, 2000);
  wait_caught_up (f, "green");
  wait_caught_up (f, "blue");
  g_assert_cmpuint (slot_u64 (f, "green", "Emitted"), >=, 2000);
  wait_output_complete (f);

  report = verify (f, &status);
  g_assert_cmpint (bgt_report_num (report, "cross_duplicates"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "order_violations"), ==, 0);
  g_assert_cmpint (status, ==, 0);
  for (int p = 0; p < PARTITIONS; p++)
    {
      gint64 blue_last = bgt_report_color_last (report, p, "blue");
      gint64 green_first = bgt_report_color_first (report, p, "green");
      g_test_message ("partition %d: blue up to %" G_GINT64_FORMAT ", green from %" G_GINT64_FORMAT, p,
                      blue_last, green_first);
      g_assert_cmpint (green_first, >, sp.next[p]);
      g_assert_cmpint (green_first, ==, blue_last + 1);
    }
}

/* ---- [flip] ------------------------------------------------------------------------- */

/* SetSinkMode (green live, then blue blackhole) under load takes effect
 * within 100 ms of the call, as the output topic shows: green's first
 * result was produced no earlier than the call and at most 100 ms after
 * it, and blue's last result at most 100 ms after it. */
static void
test_flip (Fixture *f, gconstpointer data)
{
  ColorTimes blue, green;
  gint64 t_us, t_ms, t_calls_done;

  if (f->fleet == NULL)
    return;
  deploy (f, "v1", TRUE);
  wait_slot (f, "blue", "State", "running");
  wait_job (f, "LiveColor", "blue");
  load_start (f, 2000);
  deploy (f, "v2", FALSE);
  wait_slot (f, "green", "State", "running");
  g_assert_true (bgt_fleet_wait_ready (f->fleet, 0, "green", READY_WAIT_MS));
  wait_positions_above (f, "blue", 0);
  wait_applied (f, "blue");
  wait_applied (f, "green");

  t_us = g_get_real_time ();
  set_sink_mode (f, "green", "live");
  set_sink_mode (f, "blue", "blackhole");
  t_calls_done = g_get_real_time ();
  t_ms = t_us / 1000;
  g_test_message ("SetSinkMode calls at %" G_GINT64_FORMAT " us (realtime), both answered after %"
                  G_GINT64_FORMAT " us", t_us, t_calls_done - t_us);

  /* Let the load run on well past the window, then quiesce. */
  {
    U64Wait w = { f, "green", "Emitted", 500 };
    g_assert_true (bgt_wait_until (u64_at_least, &w, WAIT_MS));
  }
  load_stop (f);
  wait_caught_up (f, "green");
  wait_caught_up (f, "blue");
  wait_output_complete (f);

  read_output_times (f, &blue, &green);
  g_test_message ("blue: %" G_GINT64_FORMAT " results, last at T%+" G_GINT64_FORMAT " ms; green: %"
                  G_GINT64_FORMAT " results, first at T%+" G_GINT64_FORMAT " ms",
                  blue.count, blue.last_ms - t_ms, green.count, green.first_ms - t_ms);
  g_assert_cmpuint (blue.count, ==, slot_u64 (f, "blue", "Emitted"));
  g_assert_cmpuint (green.count, ==, slot_u64 (f, "green", "Emitted"));
  g_assert_cmpint (blue.count, >, 0);
  g_assert_cmpint (green.count, >, 0);
  /* Blue was emitting right up to the flip (the bound below is not empty). */
  g_assert_cmpint (blue.last_ms, >=, t_ms - 1000);
  g_assert_cmpint (blue.last_ms, <=, (t_us + FLIP_LIMIT_US) / 1000);
  /* Green emitted nothing before the call, and started within the limit. */
  g_assert_cmpint (green.first_ms, >=, t_ms);
  g_assert_cmpint (green.first_ms, <=, (t_us + FLIP_LIMIT_US) / 1000);
}


/* ---- [sandbox] ------------------------------------------------------------------------ */

static GVariant *
unit_get_all (Fixture *f, const char *unit, const char *iface)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *bus = bgt_fleet_host (f->fleet, 0)->bus;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) all = NULL;
  const char *path;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "GetUnit",
                                       g_variant_new ("(s)", unit), G_VARIANT_TYPE ("(o)"),
                                       G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&o)", &path);
  all = g_dbus_connection_call_sync (bus, "org.freedesktop.systemd1", path, "org.freedesktop.DBus.Properties",
                                     "GetAll", g_variant_new ("(s)", iface), G_VARIANT_TYPE ("(a{sv})"),
                                     G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
  g_assert_no_error (error);
  return g_variant_get_child_value (all, 0);
}

/* /proc/PID/FILE with its NULs turned into spaces. */
static char *
proc_text (guint32 pid, const char *file)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/%s", pid, file);
  char *contents = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  for (gsize i = 0; i < len; i++)
    if (contents[i] == '\0')
      contents[i] = ' ';
  return contents;
}

/* The example job deployed with the default sandbox and its Kafka secret
 * as a credential: the unit's hardening, credential and (absent) user read
 * back from systemd; the job reads the credential and emits; the secret is
 * in neither the job's command line nor its environment, in no `ps`
 * output and not in `systemctl show` of the unit. */
static void
test_sandbox (Fixture *f, gconstpointer data)
{
  const char *unit = "bluegreen-counts-blue.service";
  BgtHost *host;
  g_autoptr (GVariant) svc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *printed = NULL, *cmdline = NULL, *environ = NULL, *log = NULL, *log_path = NULL;
  g_autofree char *show = NULL, *ps = NULL;
  g_autofree char *cred = NULL;
  int status = -1;
  guint32 pid = 0;

  if (f->fleet == NULL)
    return;
  host = bgt_fleet_host (f->fleet, 0);
  cred = g_build_filename (g_getenv ("BG_TEST_TMPDIR"), "kafka.properties", NULL);
  deploy (f, "v1", TRUE);
  wait_slot (f, "blue", "State", "running");
  wait_job (f, "LiveColor", "blue");

  /* It runs and emits under the sandbox. */
  produce_batch (f, 500);
  wait_caught_up (f, "blue");
  g_assert_cmpuint (slot_u64 (f, "blue", "Emitted"), ==, 500);
  wait_output_complete (f);
  g_assert_cmpint (output_watermarks (f), ==, 500);

  /* The unit as systemd has it. */
  svc = unit_get_all (f, unit, "org.freedesktop.systemd1.Service");
  {
    const char *s, *id, *path;
    gboolean b, allow;
    guint64 t;
    g_autoptr (GVariantIter) items = NULL;
    g_autoptr (GVariant) creds = NULL;

    g_assert_true (g_variant_lookup (svc, "User", "&s", &s));
    g_assert_cmpstr (s, ==, ""); /* no User= in the job file: the manager's user */
    g_assert_true (g_variant_lookup (svc, "DynamicUser", "b", &b));
    g_assert_false (b);
    g_assert_true (g_variant_lookup (svc, "ProtectSystem", "&s", &s));
    g_assert_cmpstr (s, ==, "strict");
    g_assert_true (g_variant_lookup (svc, "ProtectHome", "&s", &s));
    g_assert_cmpstr (s, ==, "no"); /* left out under a user manager */
    const char *on[] = { "NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectControlGroups",
                         "ProtectKernelModules", "ProtectClock", "LockPersonality", "MemoryDenyWriteExecute" };
    for (gsize i = 0; i < G_N_ELEMENTS (on); i++)
      {
        g_assert_true (g_variant_lookup (svc, on[i], "b", &b));
        if (!b)
          g_error ("%s is not set on %s", on[i], unit);
      }
    g_assert_true (g_variant_lookup (svc, "CapabilityBoundingSet", "t", &t));
    g_assert_cmpuint (t, ==, 0);
    g_assert_true (g_variant_lookup (svc, "RestrictNamespaces", "t", &t));
    g_assert_cmpuint (t, ==, 0);
    g_assert_true (g_variant_lookup (svc, "RestrictAddressFamilies", "(bas)", &allow, &items));
    g_assert_true (allow);
    g_assert_cmpuint (g_variant_iter_n_children (items), ==, 3);
    g_clear_pointer (&items, g_variant_iter_free);
    g_assert_true (g_variant_lookup (svc, "SystemCallFilter", "(bas)", &allow, &items));
    g_assert_true (allow);
    g_assert_cmpuint (g_variant_iter_n_children (items), >, 0);
    creds = g_variant_lookup_value (svc, "LoadCredential", G_VARIANT_TYPE ("a(ss)"));
    g_assert_nonnull (creds);
    g_assert_cmpuint (g_variant_n_children (creds), ==, 1);
    g_variant_get_child (creds, 0, "(&s&s)", &id, &path);
    g_assert_cmpstr (id, ==, "kafka.properties");
    g_assert_cmpstr (path, ==, cred);
    g_assert_true (g_variant_lookup (svc, "MainPID", "u", &pid));
    g_assert_cmpuint (pid, >, 0);
  }
  printed = g_variant_print (svc, FALSE);
  g_assert_null (strstr (printed, SANDBOX_SECRET));

  /* The job read the credential (it logs how many properties, never values). */
  /* (the agent sends the unit's output to STATE/logs/UNIT.log on a host
   * without journald) */
  log_path = g_strdup_printf ("%s/logs/%s.log", bgt_fleet_state_dir (f->fleet, 0), unit);
  g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "/kafka.properties: 3"));
  g_assert_null (strstr (log, SANDBOX_SECRET));

  /* Not in the process's command line nor environment... */
  cmdline = proc_text (pid, "cmdline");
  g_test_message ("job command line: %s", cmdline);
  g_assert_nonnull (strstr (cmdline, "--kafka-properties=kafka.properties"));
  g_assert_null (strstr (cmdline, SANDBOX_SECRET));
  environ = proc_text (pid, "environ");
  g_assert_nonnull (strstr (environ, "CREDENTIALS_DIRECTORY="));
  g_assert_null (strstr (environ, SANDBOX_SECRET));
  /* ... nor anywhere in ps ... */
  {
    const char *argv[] = { "ps", "-eww", "-o", "pid=,args=", NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &ps, NULL,
                                 &status, &error));
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (strstr (ps, "--kafka-properties=kafka.properties"));
    g_assert_null (strstr (ps, SANDBOX_SECRET));
  }
  /* ... nor in systemctl show. */
  {
    const char *argv[] = { "systemctl", "--user", "show", unit, NULL };
    g_assert_true (bgt_host_exec (host, argv, &show, &status, &error));
    g_assert_no_error (error);
    g_assert_cmpint (status, ==, 0);
    g_assert_nonnull (strstr (show, "ProtectSystem=strict"));
    g_assert_null (strstr (show, SANDBOX_SECRET));
  }
}


/* ---- [bad-job]: slots that cannot start ----------------------------------------------- */

#define AGENT_PATH "/org/bluegreen/Agent1"
#define AGENT_IFACE "org.bluegreen.Agent1"

typedef struct {
  const char *name;      /* the job (file name without .job) */
  const char *exec;      /* ExecStart=, to which a token unique to this test process is appended */
  const char *extra;     /* more [Job] lines, "" if none */
  const char *reasons[3]; /* what the Deploy error must also say, besides the unit */
  const char *result;    /* systemd's Result for the failed unit */
  const char *restart;   /* Restart=; NULL: "no" */
} BadJob;

/* A property of the agent's own unit, bluegreend.service, read from the
 * host's user manager. */
static GVariant *
unit_property (Fixture *f, const char *unit, const char *iface, const char *prop)
{
  GDBusConnection *bus = bgt_fleet_host (f->fleet, 0)->bus;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *path = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "GetUnit", g_variant_new ("(s)", unit),
                                       G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.systemd1", path, "org.freedesktop.DBus.Properties",
                                       "Get", g_variant_new ("(ss)", iface, prop), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static guint32
agent_n_restarts (Fixture *f)
{
  g_autoptr (GVariant) v = unit_property (f, "bluegreend.service", "org.freedesktop.systemd1.Service", "NRestarts");

  return g_variant_get_uint32 (v);
}

static guint64
unit_u64 (Fixture *f, const char *unit, const char *iface, const char *prop)
{
  g_autoptr (GVariant) v = unit_property (f, unit, iface, prop);

  return g_variant_get_uint64 (v);
}

/* Whether a process whose command line holds @token runs anywhere. */
static gboolean
process_with_token_runs (const char *token)
{
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  g_assert_nonnull (proc);
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *cmdline = NULL;
      gsize len = 0;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_build_filename ("/proc", name, "cmdline", NULL);
      if (!g_file_get_contents (path, &cmdline, &len, NULL))
        continue;
      for (gsize i = 0; i + 1 < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (strstr (cmdline, token) != NULL)
        return TRUE;
    }
  return FALSE;
}

/* Writes jobs.d/@name.job on the host and reloads the agent; returns the
 * Reload error (NULL if none). */
static GError *
add_job_file (Fixture *f, const char *name, const char *contents)
{
  g_autofree char *dir = bgt_fleet_jobs_dir (f->fleet, 0);
  g_autofree char *file = g_strconcat (name, ".job", NULL);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autoptr (GVariant) reply = NULL;
  GError *error = NULL;

  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
  reply = bgt_fleet_call (f->fleet, 0, AGENT_PATH, AGENT_IFACE, "Reload", NULL, "()", WAIT_MS, &error);
  return error;
}

static char *
get_job (Fixture *f, const char *name, GError **error)
{
  g_autoptr (GVariant) reply = bgt_fleet_call (f->fleet, 0, AGENT_PATH, AGENT_IFACE, "GetJob",
                                               g_variant_new ("(s)", name), "(o)", WAIT_MS, error);
  char *path = NULL;

  if (reply != NULL)
    g_variant_get (reply, "(o)", &path);
  return path;
}

static void
assert_error_says (const GError *error, const char *dbus_name, const char *const *needles)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_test_message ("error: %s", error->message);
  g_assert_cmpstr (remote, ==, dbus_name);
  for (const char *const *n = needles; *n != NULL; n++)
    if (strstr (error->message, *n) == NULL)
      g_error ("'%s' does not say '%s'", error->message, *n);
}

/* The agent still runs the same process, systemd never restarted it, and
 * the fleet's own job still answers. */
static void
assert_agent_unharmed (Fixture *f, guint32 pid)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  g_assert_cmpuint (bgt_fleet_agent_pid (f->fleet, 0), ==, pid);
  g_assert_cmpuint (agent_n_restarts (f), ==, 0);
  path = get_job (f, BGT_FLEET_JOB, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (path, ==, BGT_FLEET_JOB_PATH);
}

/* A Deploy whose slot cannot start: a registered error naming the unit and
 * the reason, the slot "failed" with the same in LastError, the unit not
 * running and nothing of it left, and the agent alive (NRestarts 0). A
 * second Deploy fails the same way (the failed unit does not block its
 * name). */
static void
test_bad_job (Fixture *f, gconstpointer data)
{
  const BadJob *bad = data;
  g_autofree char *token = g_strdup_printf ("1%d", (int) getpid ());
  g_autofree char *exec = g_strconcat (bad->exec, token, NULL);
  g_autofree char *contents = NULL;
  g_autofree char *unit = g_strdup_printf ("bluegreen-%s-blue.service", bad->name);
  g_autofree char *job_path = NULL;
  g_autofree char *slot_path = NULL;
  g_autoptr (GError) error = NULL;
  guint32 agent_pid;

  if (f->fleet == NULL)
    return;
  agent_pid = bgt_fleet_agent_pid (f->fleet, 0);
  g_assert_cmpuint (agent_pid, >, 0);
  g_assert_cmpuint (agent_n_restarts (f), ==, 0);

  /* Restart=no: this is what a Deploy whose unit cannot start reports and
   * leaves behind; restarts after a crash are tests/test-supervise.c's. */
  contents = g_strdup_printf ("[Job]\nExecStart=%s\nInputTopics=%s:%d\nRestart=%s\nRestartSec=0.2\n%s", exec,
                              BGT_FLEET_INPUT, PARTITIONS, bad->restart ? bad->restart : "no", bad->extra);
  error = add_job_file (f, bad->name, contents);
  g_assert_no_error (error);
  job_path = get_job (f, bad->name, &error);
  g_assert_no_error (error);
  slot_path = g_strconcat (job_path, "/blue", NULL);

  for (int attempt = 0; attempt < 2; attempt++)
    {
      g_autoptr (GVariant) reply = NULL;
      g_autofree char *state = NULL;
      g_autofree char *last_error = NULL;
      g_autofree char *job_error = NULL;
      g_autofree char *active = NULL;
      const char *needles[G_N_ELEMENTS (bad->reasons) + 2] = { unit };

      for (guint i = 0; i < G_N_ELEMENTS (bad->reasons); i++)
        needles[i + 1] = bad->reasons[i];
      g_clear_error (&error);
      reply = bgt_fleet_call (f->fleet, 0, job_path, BGT_JOB_IFACE, "Deploy",
                              g_variant_new ("(s@a{sv})", "v1", g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                              "(o)", WAIT_MS, &error);
      g_assert_null (reply);
      assert_error_says (error, "org.bluegreen.Error.StartFailed", needles);
      g_clear_error (&error);

      state = bgt_fleet_get_string (f->fleet, 0, slot_path, BGT_SLOT_IFACE, "State");
      g_assert_cmpstr (state, ==, "failed");
      last_error = bgt_fleet_get_string (f->fleet, 0, slot_path, BGT_SLOT_IFACE, "LastError");
      g_test_message ("slot LastError: %s", last_error);
      g_assert_nonnull (strstr (last_error, unit));
      g_assert_nonnull (strstr (last_error, bad->result));
      job_error = bgt_fleet_get_string (f->fleet, 0, job_path, BGT_JOB_IFACE, "LastError");
      g_assert_nonnull (strstr (job_error, unit));

      /* systemd agrees: the unit failed and nothing of it runs. Under
       * Restart=on-failure the agent stopped it: systemd does not retry a
       * version that cannot start (watched for ten RestartSec=). */
      if (bad->restart != NULL)
        {
          bgt_pause (2000);
          state = (g_free (state), bgt_fleet_get_string (f->fleet, 0, slot_path, BGT_SLOT_IFACE, "State"));
          g_assert_cmpstr (state, ==, "failed");
          g_clear_pointer (&last_error, g_free);
          last_error = bgt_fleet_get_string (f->fleet, 0, slot_path, BGT_SLOT_IFACE, "LastError");
          g_assert_nonnull (strstr (last_error, bad->result));
          g_assert_false (process_with_token_runs (token));
          active = bgt_unit_active_state (bgt_fleet_host (f->fleet, 0), unit, &error);
          g_assert_no_error (error);
          g_test_message ("unit %s after the failed Deploy: %s", unit, active);
          g_assert_true (g_strcmp0 (active, "inactive") == 0 || g_strcmp0 (active, "failed") == 0);
          {
            g_autoptr (GVariant) restarts = bgt_fleet_get (f->fleet, 0, slot_path, BGT_SLOT_IFACE, "Restarts");
            g_assert_nonnull (restarts);
            g_assert_cmpuint (g_variant_get_uint32 (restarts), ==, 0);
          }
          assert_agent_unharmed (f, agent_pid);
          continue;
        }
      active = bgt_unit_active_state (bgt_fleet_host (f->fleet, 0), unit, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (active, ==, "failed");
      g_assert_cmpuint (bgt_unit_main_pid (bgt_fleet_host (f->fleet, 0), unit, &error), ==, 0);
      g_assert_no_error (error);
      g_assert_false (process_with_token_runs (token));
      {
        g_autoptr (GVariant) result = unit_property (f, unit, "org.freedesktop.systemd1.Service", "Result");
        g_assert_cmpstr (g_variant_get_string (result, NULL), ==, bad->result);
      }

      assert_agent_unharmed (f, agent_pid);
    }
}

/* Type=notify gets 1 s for READY=1 (StartTimeoutSec=1): the unit is read
 * back from systemd with that start timeout and the job's WatchdogSec=. */
static void
test_bad_job_never_ready (Fixture *f, gconstpointer data)
{
  g_autofree char *unit = NULL;

  test_bad_job (f, data);
  if (f->fleet == NULL)
    return;
  unit = g_strdup_printf ("bluegreen-%s-blue.service", ((const BadJob *) data)->name);
  g_assert_cmpuint (unit_u64 (f, unit, "org.freedesktop.systemd1.Service", "TimeoutStartUSec"), ==,
                    G_USEC_PER_SEC);
  g_assert_cmpuint (unit_u64 (f, unit, "org.freedesktop.systemd1.Service", "WatchdogUSec"), ==,
                    7 * G_USEC_PER_SEC);
}

/* A job file with a bad value: Reload names the file, the key and why;
 * the job does not exist, and asking for it (what `bluegreenctl deploy`
 * does first) says why; the agent is unharmed. */
static void
test_bad_job_file (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  guint32 agent_pid;
  g_autofree char *contents = NULL;
  const char *reload_needles[] = { "broken.job", "[Job] StartTimeoutSec", "\"soon\"", NULL };
  const char *get_needles[] = { "'broken'", "broken.job", "[Job] StartTimeoutSec", "\"soon\"", NULL };

  if (f->fleet == NULL)
    return;
  agent_pid = bgt_fleet_agent_pid (f->fleet, 0);
  contents = g_strdup_printf ("[Job]\nExecStart=/bin/sleep 1000\nInputTopics=%s:%d\nStartTimeoutSec=soon\n",
                              BGT_FLEET_INPUT, PARTITIONS);
  error = add_job_file (f, "broken", contents);
  assert_error_says (error, "org.bluegreen.Error.Failed", reload_needles);
  g_clear_error (&error);
  path = get_job (f, "broken", &error);
  g_assert_null (path);
  assert_error_says (error, "org.bluegreen.Error.UnknownJob", get_needles);
  assert_agent_unharmed (f, agent_pid);
}

static const BadJob bad_missing = {
  "missing", "/nonexistent/bluegreen-job-", "", { "exit-code", "status 203/EXEC", NULL }, "exit-code",
};
static const BadJob bad_exits = {
  "exits", "/bin/false ", "", { "exit-code", "status 1", NULL }, "exit-code",
};
/* The default Restart=on-failure: the failed start is not retried. */
static const BadJob bad_exits_restart = {
  "exitsr", "/bin/false ", "", { "exit-code", "status 1", NULL }, "exit-code", "on-failure",
};
static const BadJob bad_never_ready = {
  "never", "/bin/sleep ", "StartTimeoutSec=1\nWatchdogSec=7\n",
  { "timeout", "StartTimeoutSec=1", NULL }, "timeout",
};

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/agent/deploy/blue-live-green-blackholed", Fixture, NULL, fixture_setup, test_deploy,
              fixture_teardown);
  g_test_add ("/agent/deploy/ready-needs-health-command", Fixture, NULL, fixture_setup_health, test_health,
              fixture_teardown);
  g_test_add ("/agent/savepoint/restore-then-flip", Fixture, NULL, fixture_setup, test_savepoint,
              fixture_teardown);
  g_test_add ("/agent/flip/within-100ms", Fixture, NULL, fixture_setup, test_flip, fixture_teardown);
  g_test_add ("/agent/[sandbox]/credential-not-in-ps-or-show", Fixture, NULL, fixture_setup_sandbox, test_sandbox,
              fixture_teardown);
  g_test_add ("/agent/[bad-job]/missing-binary", Fixture, &bad_missing, fixture_setup, test_bad_job,
              fixture_teardown);
  g_test_add ("/agent/[bad-job]/exits-before-ready", Fixture, &bad_exits, fixture_setup, test_bad_job,
              fixture_teardown);
  g_test_add ("/agent/[bad-job]/exits-before-ready-not-retried", Fixture, &bad_exits_restart, fixture_setup,
              test_bad_job, fixture_teardown);
  g_test_add ("/agent/[bad-job]/never-ready", Fixture, &bad_never_ready, fixture_setup,
              test_bad_job_never_ready, fixture_teardown);
  g_test_add ("/agent/[bad-job]/bad-job-file", Fixture, NULL, fixture_setup, test_bad_job_file,
              fixture_teardown);
  return g_test_run ();
}
