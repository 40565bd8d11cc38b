/* test-signed.c — signed control messages (issue 8), test [signed].
 *
 * The fleet key file, signing and verifying, and the replay guard as
 * functions (src/common/control-sign.[ch]); then a fleet of two agents
 * with the same key file, the test itself acting as a key holder: a forged
 * commit and hello, an unsigned prepare and hello, a replayed hello (after
 * its sender left) and a hello signed with a retired key are ignored, each
 * with its reason in both agents' logs, and change nothing (Job1.Hosts,
 * Phase, LastCutover); validly signed hellos and leaves count, also during
 * a key rollover by Reload (a signs with the new key while b still signs
 * with the old one, both verifying both) — a whole cutover commits and
 * verifies clean in that state — and no agent's own signed message is ever
 * refused.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/control-sign.h"
#include "fleet.h"

/* 32 bytes each, base64. */
#define SECRET_OLD "b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW4="
#define SECRET_NEW "bmV3LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW4="
#define SECRET_EVIL "ZXZpbC1rZXktMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG0="

static BgKeyring *
keyring (const char *text)
{
  g_autoptr(GError) error = NULL;
  BgKeyring *k = bg_keyring_load_from_data (text, strlen (text), "test.key", &error);

  g_assert_no_error (error);
  g_assert_nonnull (k);
  return k;
}

static void
assert_refused (const char *text, const char *mentions)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgKeyring) k = bg_keyring_load_from_data (text, strlen (text), "test.key", &error);

  g_assert_null (k);
  g_assert_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_INVALID);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, "test.key"));
  g_assert_nonnull (strstr (error->message, mentions));
}

static BgControlMessage *
make_commit (const char *host, const char *id, gint64 ts)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_COMMIT, host, ts);

  msg->job = g_strdup ("counts");
  msg->id = g_strdup (id);
  return msg;
}

/* Encodes and decodes @msg, as a reader would see it. */
static BgControlMessage *
roundtrip (const BgControlMessage *msg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = bg_control_message_encode (msg, &error);
  BgControlMessage *out;
  gsize len;
  const guint8 *data;

  g_assert_no_error (error);
  data = g_bytes_get_data (bytes, &len);
  out = bg_control_message_decode (data, len, &error);
  g_assert_no_error (error);
  return out;
}

static void
test_keyring_parse (void)
{
  g_autoptr(BgKeyring) one = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n");
  g_autoptr(BgKeyring) two = keyring ("[Key k1]\nSecret=" SECRET_OLD "\nSignWith=true\n"
                                      "[Key k2]\nSecret=" SECRET_NEW "\n");
  g_autoptr(BgKeyring) last = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n[Key k2]\nSecret=" SECRET_NEW "\n");
  g_autoptr(BgKeyring) retired = keyring ("[Key k1]\nSecret=" SECRET_OLD "\nRetired=true\n"
                                          "[Key k2]\nSecret=" SECRET_NEW "\n");

  g_assert_cmpstr (bg_keyring_signing_key (one), ==, "k1");
  g_assert_cmpuint (bg_keyring_n_verifying (one), ==, 1);
  g_assert_cmpstr (bg_keyring_signing_key (two), ==, "k1");
  g_assert_cmpuint (bg_keyring_n_verifying (two), ==, 2);
  /* Without SignWith, the last key that is not retired signs. */
  g_assert_cmpstr (bg_keyring_signing_key (last), ==, "k2");
  g_assert_cmpstr (bg_keyring_signing_key (retired), ==, "k2");
  g_assert_cmpuint (bg_keyring_n_verifying (retired), ==, 1);

  assert_refused ("", "no key");
  assert_refused ("[Key k1]\nSecret=c2hvcnQ=\n", "at least 32");
  assert_refused ("[Key k1]\nSecret=not*base64\n", "not base64");
  assert_refused ("[Key k1]\n", "Secret");
  assert_refused ("[Key k1]\nSecret=" SECRET_OLD "\nColour=red\n", "Colour");
  assert_refused ("[Keys]\nSecret=" SECRET_OLD "\n", "unknown group");
  assert_refused ("[Key bad id]\nSecret=" SECRET_OLD "\n", "unknown group");
  assert_refused ("[Key k1]\nSecret=" SECRET_OLD "\nSignWith=yes please\n", "SignWith");
  assert_refused ("[Key k1]\nSecret=" SECRET_OLD "\nSignWith=true\n[Key k2]\nSecret=" SECRET_NEW
                  "\nSignWith=true\n", "only one key may sign");
  assert_refused ("[Key k1]\nSecret=" SECRET_OLD "\nSignWith=true\nRetired=true\n[Key k2]\nSecret="
                  SECRET_NEW "\n", "retired key cannot sign");
  assert_refused ("[Key k1]\nSecret=" SECRET_OLD "\nRetired=true\n", "no key that is not retired");
}

static void
test_keyring_permissions (void)
{
  g_autofree char *dir = g_dir_make_tmp ("signed-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "fleet.key", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgKeyring) k = NULL;

  g_assert_true (g_file_set_contents (path, "[Key k1]\nSecret=" SECRET_OLD "\n", -1, NULL));
  g_assert_cmpint (g_chmod (path, 0640), ==, 0);
  k = bg_keyring_load (path, &error);
  g_assert_null (k);
  g_assert_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_PERMISSIONS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);

  g_assert_cmpint (g_chmod (path, 0604), ==, 0);
  k = bg_keyring_load (path, &error);
  g_assert_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_PERMISSIONS);
  g_clear_error (&error);

  g_assert_cmpint (g_chmod (path, 0600), ==, 0);
  k = bg_keyring_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bg_keyring_signing_key (k), ==, "k1");
  g_clear_pointer (&k, bg_keyring_free);

  k = bg_keyring_load ("/nonexistent/fleet.key", &error);
  g_assert_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_FILE);
  g_assert_nonnull (strstr (error->message, "/nonexistent/fleet.key"));
  g_unlink (path);
  g_rmdir (dir);
}

static void
assert_verify (const BgKeyring *k, const BgControlMessage *msg, int code)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = bg_keyring_verify (k, msg, &error);

  if (code < 0)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      return;
    }
  g_assert_false (ok);
  g_assert_error (error, BG_SIGN_ERROR, code);
  g_test_message ("rejected: %s", error->message);
}

static void
test_sign_verify (void)
{
  g_autoptr(BgKeyring) k = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n");
  /* A forger who guessed the key id but not the secret. */
  g_autoptr(BgKeyring) evil = keyring ("[Key k1]\nSecret=" SECRET_EVIL "\n");
  g_autoptr(BgKeyring) other_id = keyring ("[Key k9]\nSecret=" SECRET_OLD "\n");
  g_autoptr(BgControlMessage) msg = make_commit ("a", "c1", 1000);
  g_autoptr(BgControlMessage) read = NULL;
  g_autoptr(BgControlMessage) forged = make_commit ("a", "c1", 1000);
  g_autoptr(BgControlMessage) unsigned_msg = make_commit ("a", "c1", 1000);
  g_autoptr(BgControlMessage) other = make_commit ("a", "c1", 1000);
  g_autoptr(GError) error = NULL;

  g_assert_true (bg_keyring_sign (k, msg, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (msg->sig_key_id, ==, "k1");
  g_assert_cmpuint (strlen (msg->sig_mac), ==, 64);
  read = roundtrip (msg);
  assert_verify (k, read, -1);

  /* Any field changed after signing, ts included, breaks the mac. */
  read->ts++;
  assert_verify (k, read, BG_SIGN_ERROR_BAD_MAC);
  read->ts--;
  g_free (read->id);
  read->id = g_strdup ("c2");
  assert_verify (k, read, BG_SIGN_ERROR_BAD_MAC);

  g_assert_true (bg_keyring_sign (evil, forged, NULL));
  assert_verify (k, forged, BG_SIGN_ERROR_BAD_MAC);
  assert_verify (k, unsigned_msg, BG_SIGN_ERROR_UNSIGNED);
  g_assert_true (bg_keyring_sign (other_id, other, NULL));
  assert_verify (k, other, BG_SIGN_ERROR_UNKNOWN_KEY);
  /* A mac of another length (the codec allows 2..128 digits). */
  g_free (forged->sig_mac);
  forged->sig_mac = g_strdup ("00");
  assert_verify (k, forged, BG_SIGN_ERROR_BAD_MAC);
}

/* The three steps of a rollover: at every step every host verifies what
 * every other signs; once k1 is retired, what k1 signs is refused. */
static void
test_rollover (void)
{
  g_autoptr(BgKeyring) before = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n");
  g_autoptr(BgKeyring) added = keyring ("[Key k1]\nSecret=" SECRET_OLD "\nSignWith=true\n"
                                        "[Key k2]\nSecret=" SECRET_NEW "\n");
  g_autoptr(BgKeyring) switched = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n"
                                           "[Key k2]\nSecret=" SECRET_NEW "\nSignWith=true\n");
  g_autoptr(BgKeyring) retired = keyring ("[Key k1]\nSecret=" SECRET_OLD "\nRetired=true\n"
                                          "[Key k2]\nSecret=" SECRET_NEW "\n");
  BgKeyring *steps[][2] = { { before, added }, { added, switched }, { switched, retired } };

  for (guint s = 0; s < G_N_ELEMENTS (steps); s++)
    for (guint from = 0; from < 2; from++)
      for (guint to = 0; to < 2; to++)
        {
          g_autoptr(BgControlMessage) msg = make_commit ("a", "c1", 1000 + s);
          g_assert_true (bg_keyring_sign (steps[s][from], msg, NULL));
          assert_verify (steps[s][to], msg, -1);
        }
  {
    g_autoptr(BgControlMessage) old = make_commit ("a", "c1", 1000);
    g_assert_true (bg_keyring_sign (before, old, NULL));
    assert_verify (retired, old, BG_SIGN_ERROR_RETIRED_KEY);
  }
}

static BgControlMessage *
signed_commit (BgKeyring *k, const char *host, const char *id, gint64 ts)
{
  BgControlMessage *msg = make_commit (host, id, ts);

  g_assert_true (bg_keyring_sign (k, msg, NULL));
  return msg;
}

static void
assert_guard (BgReplayGuard *g, const BgControlMessage *msg, gint64 now, int code)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = bg_replay_guard_check (g, msg, now, &error);

  if (code < 0)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      return;
    }
  g_assert_false (ok);
  g_assert_error (error, BG_SIGN_ERROR, code);
  g_test_message ("guard: %s", error->message);
}

static void
test_replay_guard (void)
{
  g_autoptr(BgKeyring) k = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n");
  g_autoptr(BgReplayGuard) g = bg_replay_guard_new ();
  const gint64 W = BG_REPLAY_WINDOW_USEC;
  const gint64 t0 = G_GINT64_CONSTANT (1700000000) * G_USEC_PER_SEC;
  g_autoptr(BgControlMessage) m1 = signed_commit (k, "a", "c1", t0);
  g_autoptr(BgControlMessage) m1_copy = roundtrip (m1);
  g_autoptr(BgControlMessage) m2 = signed_commit (k, "a", "c2", t0 + 1);
  g_autoptr(BgControlMessage) b1 = signed_commit (k, "b", "c1", t0);
  g_autoptr(BgControlMessage) late = signed_commit (k, "a", "c3", t0 + 2 * W);
  g_autoptr(BgControlMessage) old = signed_commit (k, "a", "c4", t0 + W + 1);
  g_autoptr(BgControlMessage) older = signed_commit (k, "a", "c5", t0 + W / 2);

  /* Replay at start (now = -1): old messages are fine, copies are not. */
  assert_guard (g, m1, -1, -1);
  assert_guard (g, m1_copy, -1, BG_SIGN_ERROR_REPLAYED);
  assert_guard (g, m2, -1, -1);
  /* Same content from another sender: another mac, another message. */
  assert_guard (g, b1, -1, -1);
  assert_guard (g, b1, -1, BG_SIGN_ERROR_REPLAYED);
  g_assert_cmpuint (bg_replay_guard_n_senders (g), ==, 2);
  g_assert_cmpuint (bg_replay_guard_n_macs (g), ==, 3);

  /* A sender's newest message moves its window: older by more than the
   * window is refused, and what the window refuses is forgotten. */
  assert_guard (g, late, -1, -1);
  assert_guard (g, m1_copy, -1, BG_SIGN_ERROR_STALE);
  assert_guard (g, older, -1, BG_SIGN_ERROR_STALE);
  assert_guard (g, old, -1, -1);
  g_assert_cmpuint (bg_replay_guard_n_macs (g), ==, 3); /* b1, late, old */

  /* Following the log: this host's clock counts too, either way. */
  {
    g_autoptr(BgReplayGuard) f = bg_replay_guard_new ();
    g_autoptr(BgControlMessage) now_msg = signed_commit (k, "c", "c1", t0);
    g_autoptr(BgControlMessage) past = signed_commit (k, "c", "c2", t0 - W - 1);
    g_autoptr(BgControlMessage) future = signed_commit (k, "c", "c3", t0 + W + 1);
    g_autoptr(BgControlMessage) skewed = signed_commit (k, "c", "c4", t0 - W + 1);

    assert_guard (f, past, t0, BG_SIGN_ERROR_STALE);
    assert_guard (f, future, t0, BG_SIGN_ERROR_STALE);
    assert_guard (f, now_msg, t0, -1);
    assert_guard (f, now_msg, t0, BG_SIGN_ERROR_REPLAYED);
    assert_guard (f, skewed, t0, -1);
    /* During a replay, an old message is fine unless its sender has
     * written something newer by more than the window. */
    assert_guard (f, past, -1, BG_SIGN_ERROR_STALE);
    {
      g_autoptr(BgControlMessage) d_past = signed_commit (k, "d", "c2", t0 - W - 1);
      assert_guard (f, d_past, -1, -1);
    }
  }
}

static void
test_replay_guard_bounds (void)
{
  g_autoptr(BgKeyring) k = keyring ("[Key k1]\nSecret=" SECRET_OLD "\n");
  g_autoptr(BgReplayGuard) g = bg_replay_guard_new ();
  const gint64 t0 = G_GINT64_CONSTANT (1700000000) * G_USEC_PER_SEC;

  for (guint i = 0; i < BG_REPLAY_MAX_MACS_PER_SENDER + 100; i++)
    {
      g_autoptr(BgControlMessage) m = signed_commit (k, "a", "c1", t0 + i);
      assert_guard (g, m, -1, -1);
    }
  g_assert_cmpuint (bg_replay_guard_n_macs (g), ==, BG_REPLAY_MAX_MACS_PER_SENDER);
  for (guint i = 1; i < BG_REPLAY_MAX_SENDERS; i++)
    {
      g_autofree char *host = g_strdup_printf ("h%u", i);
      g_autoptr(BgControlMessage) m = signed_commit (k, host, "c1", t0);
      assert_guard (g, m, -1, -1);
    }
  g_assert_cmpuint (bg_replay_guard_n_senders (g), ==, BG_REPLAY_MAX_SENDERS);
  {
    g_autoptr(BgControlMessage) m = signed_commit (k, "one-too-many", "c1", t0);
    assert_guard (g, m, -1, BG_SIGN_ERROR_TOO_MANY);
  }
  g_assert_cmpuint (bg_replay_guard_n_senders (g), ==, BG_REPLAY_MAX_SENDERS);
}


/* ---- on a fleet ---------------------------------------------------------------- */

#define WAIT_MS 30000

/* Writes host @i's key file and points its config at it (the fleet
 * fixture writes the config; its path is in the manager's environment). */
static void
install_key (BgtFleet *fleet, guint i, const char *keys)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *env = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *conf_path = NULL;
  g_autofree char *key_path = NULL;
  const char *argv[] = { "systemctl", "--user", "show-environment", NULL };
  char *line;

  g_assert_true (bgt_host_exec (bgt_fleet_host (fleet, i), argv, &env, NULL, &error));
  g_assert_no_error (error);
  line = strstr (env, "BLUEGREEN_TEST_CONFIG=");
  g_assert_nonnull (line);
  conf_path = g_strndup (line + strlen ("BLUEGREEN_TEST_CONFIG="), strcspn (line, "\n") - strlen ("BLUEGREEN_TEST_CONFIG="));
  key_path = g_strconcat (conf_path, ".key", NULL);
  g_assert_true (g_file_set_contents (key_path, keys, -1, NULL));
  g_assert_cmpint (g_chmod (key_path, 0600), ==, 0);
  g_assert_true (g_file_get_contents (conf_path, &conf, NULL, NULL));
  if (strstr (conf, "FleetKeyFile=") == NULL)
    {
      g_autofree char *line_key = g_strdup_printf ("FleetKeyFile=%s\n[Kafka]\n", key_path);
      g_auto(GStrv) parts = g_strsplit (conf, "[Kafka]\n", 2);
      g_autofree char *new_conf = g_strconcat (parts[0], line_key, parts[1], NULL);
      g_assert_true (g_file_set_contents (conf_path, new_conf, -1, NULL));
    }
}

static gboolean
hosts_have (BgtFleet *fleet, guint i, const char *host)
{
  g_autoptr(GVariant) v = bgt_fleet_get (fleet, i, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Hosts");
  g_autofree const char **hosts = v ? g_variant_get_strv (v, NULL) : NULL;

  return hosts != NULL && g_strv_contains (hosts, host);
}

typedef struct {
  BgtFleet *fleet;
  guint host;
  const char *member;
  gboolean want;
} HostsWait;

static gboolean
hosts_are (gpointer data)
{
  HostsWait *w = data;
  return hosts_have (w->fleet, w->host, w->member) == w->want;
}

static void
wait_hosts (BgtFleet *fleet, guint i, const char *member, gboolean want)
{
  HostsWait w = { fleet, i, member, want };
  g_assert_true (bgt_wait_until (hosts_are, &w, WAIT_MS));
}

typedef struct {
  BgtFleet *fleet;
  guint host;
  const char *needle;
  guint count;
} LogWait;

static guint
log_count (BgtFleet *fleet, guint i, const char *needle)
{
  g_autofree char *path = bgt_host_log_path (bgt_fleet_host (fleet, i), "bluegreend.service");
  g_autofree char *text = NULL;
  guint n = 0;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  for (const char *p = strstr (text, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

static gboolean
log_has (gpointer data)
{
  LogWait *w = data;
  return log_count (w->fleet, w->host, w->needle) >= w->count;
}

/* Waits until every host logged @needle at least once more than @before. */
static void
wait_log (BgtFleet *fleet, const char *needle, const guint *before)
{
  for (guint i = 0; i < bgt_fleet_n_hosts (fleet); i++)
    {
      LogWait w = { fleet, i, needle, before[i] + 1 };
      if (!bgt_wait_until (log_has, &w, WAIT_MS))
        {
          bgt_fleet_dump_logs (fleet);
          g_error ("host %s never logged \"%s\"", bgt_fleet_host_id (fleet, i), needle);
        }
    }
}

static void
produce_msg (BgtFleet *fleet, const BgControlMessage *msg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = bg_control_message_encode (msg, &error);
  gsize len;
  const void *data;

  g_assert_no_error (error);
  data = g_bytes_get_data (bytes, &len);
  g_assert_true (bgt_fleet_control_produce (fleet, data, len, &error));
  g_assert_no_error (error);
}

static BgControlMessage *
hello (const char *host)
{
  BgControlMessage *msg = bg_control_message_new (BG_CONTROL_HELLO, host, g_get_real_time ());
  g_ptr_array_add (msg->jobs, bg_control_job_new (BGT_FLEET_JOB));
  return msg;
}

/* Produces @msg and waits until every host logged why it ignored it. */
static void
produce_ignored (BgtFleet *fleet, const BgControlMessage *msg, const char *why)
{
  guint before[8] = { 0 };

  for (guint i = 0; i < bgt_fleet_n_hosts (fleet); i++)
    before[i] = log_count (fleet, i, why);
  produce_msg (fleet, msg);
  wait_log (fleet, why, before);
}

static void
restart_agents (BgtFleet *fleet)
{
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < bgt_fleet_n_hosts (fleet); i++)
    {
      g_assert_true (bgt_fleet_systemctl (fleet, i, "restart", "bluegreend.service", &error));
      g_assert_no_error (error);
    }
  g_assert_true (bgt_fleet_wait_string (fleet, 0, "/org/bluegreen/Agent1", "org.bluegreen.Agent1",
                                        "ControlLog", "following", WAIT_MS));
}

static void
reload_agents (BgtFleet *fleet)
{
  for (guint i = 0; i < bgt_fleet_n_hosts (fleet); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) r = bgt_fleet_call (fleet, i, "/org/bluegreen/Agent1", "org.bluegreen.Agent1",
                                              "Reload", NULL, "()", WAIT_MS, &error);
      g_assert_no_error (error);
    }
}

#define KEYS_OLD "[Key k1]\nSecret=" SECRET_OLD "\n"
#define KEYS_ADDED "[Key k1]\nSecret=" SECRET_OLD "\nSignWith=true\n[Key k2]\nSecret=" SECRET_NEW "\n"
#define KEYS_SWITCHED "[Key k1]\nSecret=" SECRET_OLD "\n[Key k2]\nSecret=" SECRET_NEW "\nSignWith=true\n"
#define KEYS_RETIRED "[Key k1]\nSecret=" SECRET_OLD "\nRetired=true\n[Key k2]\nSecret=" SECRET_NEW "\n"

/* A whole cutover while the fleet's keys roll over (a signs with the new
 * key, b with the old one, both verify both): blue v1 live under load,
 * green v2 caught up, Cutover on a, done on both hosts, and the verifier
 * finds every input offset emitted exactly once, blue below the committed
 * barriers and green at or above them. */
static void
signed_cutover (BgtFleet *fleet)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *result = NULL;
  g_autoptr(JsonObject) report = NULL;
  g_auto (BgtCutoverInfo) info = { 0 };
  int status = -1;

  g_assert_true (bgt_fleet_deploy (fleet, 0, "v1", TRUE, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_string (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "LiveColor", "blue",
                                        WAIT_MS));
  g_assert_true (bgt_fleet_load_start (fleet, 500, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_deploy (fleet, 0, "v2", FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_ready (fleet, 0, "green", 60000));
  g_assert_true (bgt_fleet_wait_string (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Phase", "ready",
                                        WAIT_MS));
  /* Each coordinator learns the other host's readiness from its signed
   * hellos: wait for one after Ready, as the cutover tests do. */
  for (int tries = 0; (id = bgt_fleet_cutover (fleet, 0, FALSE, 0, 0, &error)) == NULL && tries < 30; tries++)
    {
      g_assert_true (g_dbus_error_is_remote_error (error));
      g_test_message ("Cutover refused (%s), retrying", error->message);
      g_clear_error (&error);
      {
        const char *needles[] = { "\"type\":\"hello\"", "\"host\":\"b\"", NULL };
        bgt_fleet_control_wait (fleet, bgt_fleet_control_watermark (fleet, NULL), needles, WAIT_MS);
      }
    }
  g_assert_no_error (error);
  g_assert_nonnull (id);
  result = bgt_fleet_wait_finished (fleet, id, 0, 60000);
  g_assert_cmpstr (result, ==, "done");
  g_assert_true (bgt_fleet_last_cutover (fleet, 0, &info));
  g_assert_cmpstr (info.id, ==, id);
  g_assert_true (bgt_fleet_wait_caught_up (fleet, 0, "green", WAIT_MS));
  g_assert_cmpint (bgt_fleet_load_stop (fleet, &error), >, 0);
  g_assert_no_error (error);
  g_assert_true (bgt_fleet_wait_caught_up (fleet, 0, "green", WAIT_MS));
  report = bgt_fleet_verify (fleet, "blue", "green", info.barriers, &status, &error);
  g_assert_no_error (error);
  g_assert_nonnull (report);
  g_assert_cmpint (bgt_report_num (report, "inputs"), >, 0);
  g_assert_cmpint (bgt_report_num (report, "gaps"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "cross_duplicates"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "wrong_state"), ==, 0);
  g_assert_cmpint (bgt_report_num (report, "barrier_violations"), ==, 0);
  g_assert_cmpint (status, ==, 0);
}

static void
test_fleet (void)
{
  g_autoptr(BgtFleet) fleet = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgKeyring) k1 = keyring (KEYS_OLD);
  g_autoptr(BgKeyring) k2 = keyring (KEYS_SWITCHED);
  g_autoptr(BgKeyring) evil = keyring ("[Key k1]\nSecret=" SECRET_EVIL "\n");
  g_autoptr(BgControlMessage) carol = hello ("carol");
  g_autoptr(BgControlMessage) carol_leaves = NULL;
  BgtFleetOptions opts;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return;
    }
  bgt_fleet_options_init (&opts);
  opts.n_hosts = 2;
  opts.partitions = 2;
  fleet = bgt_fleet_new (&opts, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 2; i++)
    install_key (fleet, i, KEYS_OLD);
  restart_agents (fleet);

  /* Signed hellos from the other agent count. */
  wait_hosts (fleet, 0, "b", TRUE);
  wait_hosts (fleet, 1, "a", TRUE);

  /* A key holder's hello counts; a forged, an unsigned one does not. */
  g_assert_true (bg_keyring_sign (k1, carol, NULL));
  produce_msg (fleet, carol);
  wait_hosts (fleet, 0, "carol", TRUE);
  wait_hosts (fleet, 1, "carol", TRUE);
  {
    g_autoptr(BgControlMessage) forged = hello ("mallory");
    g_autoptr(BgControlMessage) unsigned_msg = hello ("eve");
    g_autoptr(BgControlMessage) commit = bg_control_message_new (BG_CONTROL_COMMIT, "a", g_get_real_time ());
    g_autoptr(BgControlMessage) prepare = bg_control_message_new (BG_CONTROL_PREPARE, "a", g_get_real_time ());

    g_assert_true (bg_keyring_sign (evil, forged, NULL));
    produce_ignored (fleet, forged, "hello from mallory: bad signature (key k1)");
    produce_ignored (fleet, unsigned_msg, "hello from eve: not signed");
    commit->job = g_strdup (BGT_FLEET_JOB);
    commit->id = g_strdup ("forged-1");
    g_assert_true (bg_keyring_sign (evil, commit, NULL));
    produce_ignored (fleet, commit, "commit from a: bad signature (key k1)");
    prepare->job = g_strdup (BGT_FLEET_JOB);
    prepare->id = g_strdup ("unsigned-1");
    prepare->deadline = g_get_real_time () + 60 * G_USEC_PER_SEC;
    g_ptr_array_add (prepare->barriers, bg_control_offset_new (BGT_FLEET_INPUT, 0, 0));
    g_ptr_array_add (prepare->participants, g_strdup ("a"));
    g_ptr_array_add (prepare->participants, g_strdup ("b"));
    produce_ignored (fleet, prepare, "prepare from a: not signed");
  }
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *phase = bgt_fleet_get_string (fleet, i, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "Phase");
      g_auto (BgtCutoverInfo) info = { 0 };
      g_assert_false (hosts_have (fleet, i, "mallory"));
      g_assert_false (hosts_have (fleet, i, "eve"));
      g_test_message ("host %s: Phase %s", bgt_fleet_host_id (fleet, i), phase);
      g_assert_cmpstr (phase, !=, "cutting-over");
      if (bgt_fleet_last_cutover (fleet, i, &info))
        {
          g_assert_cmpstr (info.id, !=, "forged-1");
          g_assert_cmpstr (info.id, !=, "unsigned-1");
        }
    }

  /* carol leaves (signed); a copy of her old hello must not bring her
   * back. */
  carol_leaves = bg_control_message_new (BG_CONTROL_LEAVE, "carol", g_get_real_time ());
  carol_leaves->job = g_strdup (BGT_FLEET_JOB);
  g_assert_true (bg_keyring_sign (k1, carol_leaves, NULL));
  produce_msg (fleet, carol_leaves);
  wait_hosts (fleet, 0, "carol", FALSE);
  wait_hosts (fleet, 1, "carol", FALSE);
  produce_ignored (fleet, carol, "hello from carol: a copy of an earlier message of carol");
  g_assert_false (hosts_have (fleet, 0, "carol"));
  g_assert_false (hosts_have (fleet, 1, "carol"));

  /* Rollover: a signs with k2 while b still signs with k1; both verify
   * both. A new hello from each, accepted by the other, shows it. */
  install_key (fleet, 0, KEYS_SWITCHED);
  install_key (fleet, 1, KEYS_ADDED);
  reload_agents (fleet);
  {
    g_autoptr(BgControlMessage) dave = hello ("dave");
    g_autoptr(BgControlMessage) erin = hello ("erin");
    g_assert_true (bg_keyring_sign (k2, dave, NULL));
    g_assert_true (bg_keyring_sign (k1, erin, NULL));
    produce_msg (fleet, dave);
    produce_msg (fleet, erin);
    for (guint i = 0; i < 2; i++)
      {
        wait_hosts (fleet, i, "dave", TRUE);
        wait_hosts (fleet, i, "erin", TRUE);
      }
  }
  /* The key holders that only said hello run no slots: evict them, then
   * a whole cutover while the keys roll over. */
  for (const char *const *h = (const char *const[]) { "dave", "erin", NULL }; *h != NULL; h++)
    {
      g_autoptr(GVariant) r = bgt_fleet_call (fleet, 0, BGT_FLEET_JOB_PATH, BGT_JOB_IFACE, "EvictHost",
                                              g_variant_new ("(s)", *h), NULL, WAIT_MS, &error);
      g_assert_no_error (error);
      wait_hosts (fleet, 0, *h, FALSE);
      wait_hosts (fleet, 1, *h, FALSE);
    }
  signed_cutover (fleet);

  /* k1 retired: what it signs is ignored, what k2 signs counts, and the
   * agents still hear each other. */
  install_key (fleet, 0, KEYS_RETIRED);
  install_key (fleet, 1, KEYS_RETIRED);
  reload_agents (fleet);
  {
    g_autoptr(BgControlMessage) old = hello ("trudy");
    g_autoptr(BgControlMessage) fresh = hello ("frank");
    g_assert_true (bg_keyring_sign (k1, old, NULL));
    produce_ignored (fleet, old, "hello from trudy: signed with retired key k1");
    g_assert_true (bg_keyring_sign (k2, fresh, NULL));
    produce_msg (fleet, fresh);
    for (guint i = 0; i < 2; i++)
      {
        wait_hosts (fleet, i, "frank", TRUE);
        g_assert_false (hosts_have (fleet, i, "trudy"));
      }
  }
  /* No agent's own signed message was refused, before, during or after
   * the rollover (unsigned hellos from before the key was installed are). */
  for (guint i = 0; i < 2; i++)
    for (const char *const *h = (const char *const[]) { "a", "b", NULL }; *h != NULL; h++)
      for (const char *const *why = (const char *const[]) { "bad signature", "key k", "a copy", "ts ", NULL };
           *why != NULL; why++)
        {
          g_autofree char *needle = g_strdup_printf ("ignored: hello from %s: %s", *h, *why);
          g_assert_cmpuint (log_count (fleet, i, needle), ==, 0);
        }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/signed/keyring/parse", test_keyring_parse);
  g_test_add_func ("/signed/keyring/permissions", test_keyring_permissions);
  g_test_add_func ("/signed/sign-verify", test_sign_verify);
  g_test_add_func ("/signed/rollover", test_rollover);
  g_test_add_func ("/signed/replay-guard", test_replay_guard);
  g_test_add_func ("/signed/replay-guard/bounds", test_replay_guard_bounds);
  g_test_add_func ("/signed/fleet", test_fleet);
  return g_test_run ();
}
