/* test-flood.c — a flood of junk on the control topic (issue 8), test
 * [flood].
 *
 * One host of the fleet fixture runs bluegreend; the test produces 90,000
 * junk messages to the control topic (a quarter each: garbage bytes,
 * broken JSON, well-formed messages for jobs nobody runs, hellos from
 * 5,000 fake hosts announcing 3,000 fake jobs) — 90k, not 100k, and in
 * three waves of 30k, because the Kafka mock keeps only 100,000 messages
 * or 5 MB per partition. While the agent reads them, and after, a D-Bus
 * call must be answered within 1 s; once it has read a wave (a hello from
 * a "sentinel" host, produced last, shows up in Job1.Hosts) the next one
 * goes out; after the last, its RSS may be at most FLOOD_MAX_GROWTH_KB
 * above what it was before.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <unistd.h>

#include "common/control-codec.h"
#include "fleet.h"

#define FLOOD_MESSAGES 90000
#define FLOOD_WAVES 3
#define FLOOD_BATCH 5000
#define FAKE_HOSTS 5000
#define FAKE_JOBS 3000
#define FLOOD_MAX_GROWTH_KB (20 * 1024)
#define PING_MAX_MS 1000
#define WAIT_MS 60000

static gint64
rss_kb (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *text = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  line = strstr (text, "VmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoll (line + strlen ("VmRSS:"), NULL, 10);
}

/* A D-Bus round trip through the agent's main loop; returns its ms. */
static gint64
ping (BgtFleet *fleet)
{
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr(GVariant) reply = bgt_fleet_call (fleet, 0, "/org/bluegreen/Agent1", "org.freedesktop.DBus.Properties",
                                              "Get", g_variant_new ("(ss)", "org.bluegreen.Agent1", "HostId"),
                                              "(v)", PING_MAX_MS, &error);
  gint64 ms = (g_get_monotonic_time () - t0) / 1000;

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  g_assert_cmpint (ms, <, PING_MAX_MS);
  return ms;
}

static GBytes *
encode (BgControlMessage *msg)
{
  g_autoptr(BgControlMessage) owned = msg;
  g_autoptr(GError) error = NULL;
  GBytes *bytes = bg_control_message_encode (msg, &error);

  g_assert_no_error (error);
  return bytes;
}

static GBytes *
fake_hello (const char *host, const char *job)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_HELLO, host, g_get_real_time ());
  BgControlJob *j = bg_control_job_new (job);

  g_ptr_array_add (j->slots, bg_control_slot_new (BG_COLOR_BLUE, "running"));
  g_ptr_array_add (msg->jobs, j);
  return encode (msg);
}

/* Junk message @i: the kinds take turns. */
static GBytes *
junk (guint i)
{
  switch (i % 4)
    {
    case 0:
      {
        gsize len = 1 + g_test_rand_int_range (0, 100);
        guint8 *data = g_malloc (len);
        for (gsize k = 0; k < len; k++)
          data[k] = (guint8) g_test_rand_int_range (0, 256);
        return g_bytes_new_take (data, len);
      }
    case 1:
      {
        static const char *const broken[] = {
          "{\"v\":1,\"type\":\"hello\",\"host\":", "[[[[[[[[", "{\"v\":2,\"type\":\"commit\"}",
          "{\"v\":1,\"type\":\"prepare\",\"host\":\"x\",\"ts\":1}", "null", "{\"v\":1,\"type\":\"hello\",\"host\":\"UPPER\",\"ts\":1,\"jobs\":[]}",
        };
        const char *s = broken[(i / 4) % G_N_ELEMENTS (broken)];
        return g_bytes_new_static (s, strlen (s));
      }
    case 2:
      {
        BgControlType types[] = { BG_CONTROL_COMMIT, BG_CONTROL_ABORT, BG_CONTROL_ACK, BG_CONTROL_LEAVE };
        g_autofree char *host = g_strdup_printf ("fake-%u", i % FAKE_HOSTS);
        BgControlMessage *msg = bg_control_message_new (types[(i / 4) % 4], host, g_get_real_time ());
        msg->job = g_strdup_printf ("ghost-%u", i % FAKE_JOBS);
        if (msg->type != BG_CONTROL_LEAVE)
          msg->id = g_strdup_printf ("flood-%u", i);
        if (msg->type == BG_CONTROL_ABORT)
          msg->reason = g_strdup ("flood");
        return encode (msg);
      }
    default:
      {
        g_autofree char *host = g_strdup_printf ("fake-%u", (i / 4) % FAKE_HOSTS);
        g_autofree char *job = g_strdup_printf ("ghost-%u", (i / 4) % FAKE_JOBS);
        return fake_hello (host, job);
      }
    }
}

static rd_kafka_t *
new_producer (const char *bootstrap)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_t *rk;

  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "linger.ms", "5", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "queue.buffering.max.messages", "200000", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);
  return rk;
}

static void
produce (rd_kafka_t *rk, GBytes *bytes)
{
  gsize len;
  gconstpointer data = g_bytes_get_data (bytes, &len);
  rd_kafka_resp_err_t err;

  do
    {
      err = rd_kafka_producev (rk, RD_KAFKA_V_TOPIC (BGT_FLEET_CONTROL), RD_KAFKA_V_PARTITION (0),
                               RD_KAFKA_V_VALUE ((void *) data, len), RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll (rk, 10);
    }
  while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
  g_assert_cmpint (err, ==, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static gboolean
hosts_contain (BgtFleet *fleet, const char *host)
{
  g_autoptr(GVariant) v = bgt_fleet_get (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Hosts");
  g_autofree const char **hosts = NULL;

  if (v == NULL)
    return FALSE;
  hosts = g_variant_get_strv (v, NULL);
  return g_strv_contains (hosts, host);
}

static void
test_flood (void)
{
  g_autoptr(BgtFleet) fleet = NULL;
  g_autoptr(GError) error = NULL;
  BgtFleetOptions opts;
  rd_kafka_t *rk;
  guint32 pid;
  gint64 before, after, worst = 0, t0, start_offset;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  bgt_fleet_options_init (&opts);
  opts.n_hosts = 1;
  opts.partitions = 1;
  fleet = bgt_fleet_new (&opts, &error);
  g_assert_no_error (error);
  pid = bgt_fleet_agent_pid (fleet, 0);
  g_assert_cmpuint (pid, >, 0);
  start_offset = bgt_fleet_control_watermark (fleet, &error);
  g_assert_no_error (error);

  /* A first sentinel: once it is in Hosts, the agent has read the log
   * up to it (and knows the job) — the baseline is an agent at work. */
  rk = new_producer (bgt_fleet_bootstrap (fleet));
  {
    g_autoptr(GBytes) sentinel = fake_hello ("sentinel0", BGT_FLEET_JOB);
    produce (rk, sentinel);
    g_assert_cmpint (rd_kafka_flush (rk, 30000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  t0 = g_get_monotonic_time ();
  while (!hosts_contain (fleet, "sentinel0"))
    {
      g_assert_cmpint (g_get_monotonic_time () - t0, <, WAIT_MS * (gint64) 1000);
      g_usleep (20 * 1000); /* pacing the polls, not synchronisation */
    }
  ping (fleet);
  before = rss_kb (pid);
  g_test_message ("agent %u: VmRSS %" G_GINT64_FORMAT " kB before the flood", pid, before);

  /* In waves: the mock keeps only 5 MB per partition as well, and a
   * reader that falls behind what the mock dropped skips ahead. */
  for (guint wave = 0; wave < FLOOD_WAVES; wave++)
    {
      g_autofree char *name = g_strdup_printf ("sentinel%u", wave + 1);

      t0 = g_get_monotonic_time ();
      for (guint i = wave * (FLOOD_MESSAGES / FLOOD_WAVES); i < (wave + 1) * (FLOOD_MESSAGES / FLOOD_WAVES); i++)
        {
          g_autoptr(GBytes) bytes = junk (i);
          produce (rk, bytes);
          if ((i + 1) % FLOOD_BATCH == 0)
            {
              rd_kafka_poll (rk, 0);
              worst = MAX (worst, ping (fleet));
            }
        }
      {
        g_autoptr(GBytes) sentinel = fake_hello (name, BGT_FLEET_JOB);
        produce (rk, sentinel);
      }
      g_assert_cmpint (rd_kafka_flush (rk, 30000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
      g_test_message ("wave %u: %d junk messages produced in %" G_GINT64_FORMAT " ms (control log from offset %"
                      G_GINT64_FORMAT " to %" G_GINT64_FORMAT ")", wave + 1, FLOOD_MESSAGES / FLOOD_WAVES,
                      (g_get_monotonic_time () - t0) / 1000, start_offset,
                      bgt_fleet_control_watermark (fleet, NULL));

      /* The agent reads on; it must answer all the while. */
      while (!hosts_contain (fleet, name))
        {
          g_assert_cmpint (g_get_monotonic_time () - t0, <, WAIT_MS * (gint64) 1000);
          worst = MAX (worst, ping (fleet));
          g_usleep (20 * 1000); /* pacing the pings, not synchronisation */
        }
      g_test_message ("wave %u read in %" G_GINT64_FORMAT " ms; slowest D-Bus answer so far %" G_GINT64_FORMAT
                      " ms", wave + 1, (g_get_monotonic_time () - t0) / 1000, worst);
    }
  rd_kafka_destroy (rk);
  g_assert_cmpuint (bgt_fleet_agent_pid (fleet, 0), ==, pid);
  for (int k = 0; k < 5; k++)
    ping (fleet);

  after = rss_kb (pid);
  g_test_message ("agent %u: VmRSS %" G_GINT64_FORMAT " kB after the flood (%+" G_GINT64_FORMAT " kB)", pid,
                  after, after - before);
#if defined(__SANITIZE_ADDRESS__)
  /* AddressSanitizer keeps freed memory in quarantine (256 MB by default)
   * and adds shadow memory: RSS says nothing about the agent's own bounds
   * then. The normal build checks them. */
  g_test_message ("built with AddressSanitizer: RSS bound not checked");
#else
  g_assert_cmpint (after - before, <, FLOOD_MAX_GROWTH_KB);
#endif
  /* The fake hosts announced fake jobs only: the job this host runs
   * expects itself and the sentinels (new hosts after 5,000 others: the
   * table of hosts heard of made room), nobody else. */
  {
    g_autoptr(GVariant) v = bgt_fleet_get (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Hosts");
    g_autofree const char **hosts = g_variant_get_strv (v, NULL);
    g_assert_cmpuint (g_strv_length ((char **) hosts), ==, 2 + FLOOD_WAVES);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/flood/control-topic", test_flood);
  return g_test_run ();
}
