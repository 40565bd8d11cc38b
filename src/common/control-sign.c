/* control-sign.c — fleet keys, signatures and the replay guard (see
 * control-sign.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/control-sign.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/names.h"

/* A key file is a few lines; anything much larger is not one. */
#define MAX_KEY_FILE_SIZE (64 * 1024)
#define GROUP_PREFIX "Key "

G_DEFINE_QUARK (bg-sign-error-quark, bg_sign_error)

typedef struct {
  char *id;
  guint8 *secret;
  gsize secret_len;
  gboolean retired;
} Key;

struct _BgKeyring {
  GPtrArray *keys; /* of Key*, file order */
  const Key *signing;
};

static void
key_free (Key *key)
{
  if (key->secret != NULL)
    explicit_bzero (key->secret, key->secret_len);
  g_free (key->secret);
  g_free (key->id);
  g_free (key);
}

void
bg_keyring_free (BgKeyring *keyring)
{
  if (keyring == NULL)
    return;
  g_ptr_array_unref (keyring->keys);
  g_free (keyring);
}

static gboolean
is_base64 (const char *s)
{
  gsize len = strlen (s);
  gsize pad = 0;

  if (len == 0 || len % 4 != 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = s[i];
      if (c == '=')
        {
          /* Padding only at the very end, at most two. */
          if (i < len - 2)
            return FALSE;
          pad++;
        }
      else if (pad > 0 || !(g_ascii_isalnum (c) || c == '+' || c == '/'))
        return FALSE;
    }
  return TRUE;
}

static gboolean
invalid (GError **error, const char *origin, const char *group, const char *key, const char *what)
{
  if (key != NULL)
    g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_INVALID, "%s: [%s] %s: %s", origin, group, key, what);
  else if (group != NULL)
    g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_INVALID, "%s: [%s]: %s", origin, group, what);
  else
    g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_INVALID, "%s: %s", origin, what);
  return FALSE;
}

/* A boolean key, FALSE when absent. */
static gboolean
get_flag (GKeyFile *kf, const char *origin, const char *group, const char *key, gboolean *out,
          GError **error)
{
  g_autoptr(GError) local = NULL;

  *out = FALSE;
  if (!g_key_file_has_key (kf, group, key, NULL))
    return TRUE;
  *out = g_key_file_get_boolean (kf, group, key, &local);
  if (local != NULL)
    return invalid (error, origin, group, key, "not a boolean (true or false)");
  return TRUE;
}

static Key *
parse_key (GKeyFile *kf, const char *origin, const char *group, gboolean *sign_with, GError **error)
{
  static const char *const known[] = { "Secret", "SignWith", "Retired", NULL };
  g_auto(GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);
  g_autofree char *secret = NULL;
  Key *key;
  const char *id = group + strlen (GROUP_PREFIX);
  gboolean retired;

  if (!g_str_has_prefix (group, GROUP_PREFIX) || !bg_id_is_valid (id))
    {
      invalid (error, origin, group, NULL,
               "unknown group (keys are groups named \"Key ID\", ID 1..64 of [A-Za-z0-9._-])");
      return NULL;
    }
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!g_strv_contains (known, keys[i]))
      {
        invalid (error, origin, group, keys[i], "unknown key");
        return NULL;
      }
  secret = g_key_file_get_value (kf, group, "Secret", NULL);
  if (secret == NULL)
    {
      invalid (error, origin, group, "Secret", "missing");
      return NULL;
    }
  g_strstrip (secret);
  if (!is_base64 (secret))
    {
      invalid (error, origin, group, "Secret", "not base64");
      return NULL;
    }
  if (!get_flag (kf, origin, group, "SignWith", sign_with, error)
      || !get_flag (kf, origin, group, "Retired", &retired, error))
    return NULL;
  if (*sign_with && retired)
    {
      invalid (error, origin, group, "SignWith", "a retired key cannot sign");
      return NULL;
    }
  key = g_new0 (Key, 1);
  key->id = g_strdup (id);
  key->retired = retired;
  key->secret = g_base64_decode (secret, &key->secret_len);
  explicit_bzero (secret, strlen (secret));
  if (key->secret_len < BG_KEYRING_MIN_SECRET)
    {
      g_autofree char *what = g_strdup_printf ("%" G_GSIZE_FORMAT " bytes, at least %d needed",
                                               key->secret_len, BG_KEYRING_MIN_SECRET);
      key_free (key);
      invalid (error, origin, group, "Secret", what);
      return NULL;
    }
  return key;
}

BgKeyring *
bg_keyring_load_from_data (const char *data, gsize len, const char *origin, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  g_autoptr(BgKeyring) keyring = g_new0 (BgKeyring, 1);
  g_auto(GStrv) groups = NULL;
  const Key *last_verifying = NULL;

  keyring->keys = g_ptr_array_new_with_free_func ((GDestroyNotify) key_free);
  if (!g_key_file_load_from_data (kf, data, len, G_KEY_FILE_NONE, &local))
    {
      invalid (error, origin, NULL, NULL, local->message);
      return NULL;
    }
  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      gboolean sign_with = FALSE;
      Key *key;

      if (keyring->keys->len >= BG_KEYRING_MAX_KEYS)
        {
          invalid (error, origin, groups[i], NULL, "too many keys (at most 16)");
          return NULL;
        }
      key = parse_key (kf, origin, groups[i], &sign_with, error);
      if (key == NULL)
        return NULL;
      g_ptr_array_add (keyring->keys, key);
      for (guint j = 0; j + 1 < keyring->keys->len; j++)
        if (strcmp (((Key *) keyring->keys->pdata[j])->id, key->id) == 0)
          {
            invalid (error, origin, groups[i], NULL, "the same key id twice");
            return NULL;
          }
      if (sign_with && keyring->signing != NULL)
        {
          invalid (error, origin, groups[i], "SignWith", "only one key may sign");
          return NULL;
        }
      if (sign_with)
        keyring->signing = key;
      if (!key->retired)
        last_verifying = key;
    }
  if (last_verifying == NULL)
    {
      invalid (error, origin, NULL, NULL, "no key that is not retired");
      return NULL;
    }
  if (keyring->signing == NULL)
    keyring->signing = last_verifying;
  return g_steal_pointer (&keyring);
}

BgKeyring *
bg_keyring_load (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  struct stat st;
  gsize len = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  int errsv;
  BgKeyring *keyring;

  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_FILE, "%s: %s", path, g_strerror (errsv));
      return NULL;
    }
  /* Checked on the open file: what is read is what was checked. */
  if (fstat (fd, &st) != 0)
    {
      errsv = errno;
      close (fd);
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_FILE, "%s: %s", path, g_strerror (errsv));
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_FILE, "%s: not a regular file", path);
      return NULL;
    }
  if ((st.st_mode & 077) != 0)
    {
      close (fd);
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_PERMISSIONS,
                   "%s: the fleet key file must be accessible to its owner only (mode %04o; chmod 600)",
                   path, (unsigned) (st.st_mode & 07777));
      return NULL;
    }
  if (st.st_size > MAX_KEY_FILE_SIZE)
    {
      close (fd);
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_FILE, "%s: too large for a key file", path);
      return NULL;
    }
  data = g_malloc (MAX_KEY_FILE_SIZE + 1);
  for (;;)
    {
      ssize_t n = read (fd, data + len, MAX_KEY_FILE_SIZE - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          errsv = errno;
          close (fd);
          explicit_bzero (data, len);
          g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_FILE, "%s: %s", path, g_strerror (errsv));
          return NULL;
        }
      if (n == 0 || len + (gsize) n >= MAX_KEY_FILE_SIZE)
        {
          len += (gsize) n;
          break;
        }
      len += (gsize) n;
    }
  close (fd);
  data[len] = '\0';
  keyring = bg_keyring_load_from_data (data, len, path, error);
  explicit_bzero (data, len);
  return keyring;
}

const char *
bg_keyring_signing_key (const BgKeyring *keyring)
{
  return keyring->signing->id;
}

guint
bg_keyring_n_verifying (const BgKeyring *keyring)
{
  guint n = 0;

  for (guint i = 0; i < keyring->keys->len; i++)
    if (!((const Key *) keyring->keys->pdata[i])->retired)
      n++;
  return n;
}

static const Key *
find_key (const BgKeyring *keyring, const char *id)
{
  for (guint i = 0; i < keyring->keys->len; i++)
    {
      const Key *key = keyring->keys->pdata[i];
      if (strcmp (key->id, id) == 0)
        return key;
    }
  return NULL;
}

/* Lowercase hex HMAC-SHA256 of @msg's canonical bytes, or NULL (the codec's
 * error). */
static char *
compute_mac (const Key *key, const BgControlMessage *msg, GError **error)
{
  g_autoptr(GBytes) canonical = bg_control_message_canonical (msg, error);
  g_autoptr(GHmac) hmac = NULL;
  gsize len;
  const guint8 *data;

  if (canonical == NULL)
    return NULL;
  data = g_bytes_get_data (canonical, &len);
  hmac = g_hmac_new (G_CHECKSUM_SHA256, key->secret, key->secret_len);
  g_hmac_update (hmac, data, (gssize) len);
  return g_strdup (g_hmac_get_string (hmac));
}

gboolean
bg_keyring_sign (const BgKeyring *keyring, BgControlMessage *msg, GError **error)
{
  char *mac = compute_mac (keyring->signing, msg, error);

  if (mac == NULL)
    return FALSE;
  g_free (msg->sig_key_id);
  g_free (msg->sig_mac);
  msg->sig_key_id = g_strdup (keyring->signing->id);
  msg->sig_mac = mac;
  return TRUE;
}

/* Whether two strings are equal, in time that depends on their lengths only:
 * a verifier that stops at the first wrong digit tells a forger how many
 * leading digits were right. */
static gboolean
equal_constant_time (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  guint8 diff = la != lb;

  for (gsize i = 0; i < MIN (la, lb); i++)
    diff |= (guint8) (a[i] ^ b[i]);
  return diff == 0;
}

gboolean
bg_keyring_verify (const BgKeyring *keyring, const BgControlMessage *msg, GError **error)
{
  g_autofree char *mac = NULL;
  const Key *key;

  if (msg->sig_key_id == NULL || msg->sig_mac == NULL)
    {
      g_set_error_literal (error, BG_SIGN_ERROR, BG_SIGN_ERROR_UNSIGNED, "not signed");
      return FALSE;
    }
  key = find_key (keyring, msg->sig_key_id);
  if (key == NULL)
    {
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_UNKNOWN_KEY, "signed with unknown key %s",
                   msg->sig_key_id);
      return FALSE;
    }
  if (key->retired)
    {
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_RETIRED_KEY, "signed with retired key %s",
                   msg->sig_key_id);
      return FALSE;
    }
  mac = compute_mac (key, msg, error);
  if (mac == NULL)
    return FALSE;
  if (!equal_constant_time (mac, msg->sig_mac))
    {
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_BAD_MAC, "bad signature (key %s)", msg->sig_key_id);
      return FALSE;
    }
  return TRUE;
}

/* ---- the replay guard ----------------------------------------------------------
 *
 * The rule. A message that verified is accepted unless
 *   (1) the agent follows the log (@now >= 0) and its ts is more than
 *       BG_REPLAY_WINDOW_USEC from this host's clock, either way;
 *   (2) its ts is more than BG_REPLAY_WINDOW_USEC older than the newest
 *       message already accepted from the same sender ("host");
 *   (3) a message with the same mac was already accepted from that sender
 *       (an exact copy: the mac covers every field, ts included, and no
 *       agent signs two messages with the same content and µs).
 *
 * Why not simply (1): at start, the agent replays the log from its stored
 * offset, and those messages are legitimately old — a window on this
 * host's clock would throw away the history the agent must replay to
 * rebuild its state. (2) and (3) compare a sender with itself, which works
 * during the replay as well as while following, and needs no clock
 * agreement. (1) adds what (2) and (3) cannot know after a restart: a copy
 * of a message from before the stored offset (whose mac this process never
 * saw), appended later, is caught by (1) once it is older than the window,
 * and by (2) as soon as its sender has written anything newer by a window.
 * What remains — such a copy appended while this agent was down, and
 * within a window of its sender's next message — meets state machines
 * that are idempotent per cutover id (the first decision wins, a second
 * prepare for an id is ignored) and sticky membership ordered by ts.
 *
 * Why not (type, id, host): a host legitimately sends several done (and
 * hellos) for one id; the mac is unique per message.
 *
 * Memory: macs are remembered per sender only while (2) does not already
 * reject them (ts within the window of that sender's newest), at most
 * BG_REPLAY_MAX_MACS_PER_SENDER each, for at most BG_REPLAY_MAX_SENDERS
 * senders. A sender is only created for a message that verified, so only a
 * key holder can fill the table; beyond the cap a new sender is refused
 * (logged by the caller), which fails closed.
 */

typedef struct {
  gint64 ts;
  char *mac;
} Seen;

typedef struct {
  gint64 newest;
  GQueue order;     /* of Seen*, arrival order */
  GHashTable *macs; /* mac (owned by the Seen) → Seen* */
} Sender;

struct _BgReplayGuard {
  GHashTable *senders; /* host (owned) → Sender* */
  guint n_macs;
};

static void
seen_free (Seen *seen)
{
  g_free (seen->mac);
  g_free (seen);
}

static void
sender_free (Sender *sender)
{
  g_hash_table_unref (sender->macs);
  g_queue_clear_full (&sender->order, (GDestroyNotify) seen_free);
  g_free (sender);
}

BgReplayGuard *
bg_replay_guard_new (void)
{
  BgReplayGuard *guard = g_new0 (BgReplayGuard, 1);

  guard->senders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) sender_free);
  return guard;
}

void
bg_replay_guard_free (BgReplayGuard *guard)
{
  if (guard == NULL)
    return;
  g_hash_table_unref (guard->senders);
  g_free (guard);
}

guint
bg_replay_guard_n_senders (const BgReplayGuard *guard)
{
  return g_hash_table_size (guard->senders);
}

guint
bg_replay_guard_n_macs (const BgReplayGuard *guard)
{
  return guard->n_macs;
}

static void
forget_head (BgReplayGuard *guard, Sender *sender)
{
  Seen *seen = g_queue_pop_head (&sender->order);

  g_hash_table_remove (sender->macs, seen->mac);
  seen_free (seen);
  guard->n_macs--;
}

gboolean
bg_replay_guard_check (BgReplayGuard *guard, const BgControlMessage *msg, gint64 now, GError **error)
{
  Sender *sender;
  Seen *seen;

  g_return_val_if_fail (msg->sig_mac != NULL, FALSE);

  if (now >= 0 && (msg->ts < now - BG_REPLAY_WINDOW_USEC || msg->ts > now + BG_REPLAY_WINDOW_USEC))
    {
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_STALE,
                   "ts %" G_GINT64_FORMAT " is %" G_GINT64_FORMAT " s from this host's clock (window %d s)",
                   msg->ts, (msg->ts - now) / G_USEC_PER_SEC, (int) (BG_REPLAY_WINDOW_USEC / G_USEC_PER_SEC));
      return FALSE;
    }
  sender = g_hash_table_lookup (guard->senders, msg->host);
  if (sender != NULL && msg->ts < sender->newest - BG_REPLAY_WINDOW_USEC)
    {
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_STALE,
                   "ts %" G_GINT64_FORMAT " is %" G_GINT64_FORMAT " s older than %s's newest message",
                   msg->ts, (sender->newest - msg->ts) / G_USEC_PER_SEC, msg->host);
      return FALSE;
    }
  if (sender != NULL && g_hash_table_contains (sender->macs, msg->sig_mac))
    {
      g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_REPLAYED, "a copy of an earlier message of %s",
                   msg->host);
      return FALSE;
    }
  if (sender == NULL)
    {
      if (g_hash_table_size (guard->senders) >= BG_REPLAY_MAX_SENDERS)
        {
          g_set_error (error, BG_SIGN_ERROR, BG_SIGN_ERROR_TOO_MANY,
                       "%u senders known already; new sender %s refused", BG_REPLAY_MAX_SENDERS, msg->host);
          return FALSE;
        }
      sender = g_new0 (Sender, 1);
      sender->newest = msg->ts;
      g_queue_init (&sender->order);
      sender->macs = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (guard->senders, g_strdup (msg->host), sender);
    }

  seen = g_new0 (Seen, 1);
  seen->ts = msg->ts;
  seen->mac = g_strdup (msg->sig_mac);
  g_queue_push_tail (&sender->order, seen);
  g_hash_table_insert (sender->macs, seen->mac, seen);
  guard->n_macs++;
  sender->newest = MAX (sender->newest, msg->ts);

  /* Arrival order is nearly ts order; what (2) rejects anyway is dropped
   * from the head, and the cap bounds the rest. */
  while (sender->order.length > 0
         && (((Seen *) g_queue_peek_head (&sender->order))->ts < sender->newest - BG_REPLAY_WINDOW_USEC
             || sender->order.length > BG_REPLAY_MAX_MACS_PER_SENDER))
    forget_head (guard, sender);
  return TRUE;
}
