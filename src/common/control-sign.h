/* control-sign.h — signed control messages: the fleet key file, HMAC
 * signatures over the codec's canonical encoding, and the replay guard.
 *
 * Anyone who can write to the control topic could otherwise prepare,
 * commit or abort cutovers and announce or evict hosts. With a fleet key
 * (bluegreend.conf FleetKeyFile=), every agent signs what it appends and
 * ignores whatever does not carry a valid signature of a current key.
 *
 * ## The key file
 *
 * A GKeyFile readable by the agent only (no permission bits for group or
 * other: bg_keyring_load() refuses it otherwise), one group per key:
 *
 *     [Key 2024-06]
 *     Secret=<base64, at least 32 bytes once decoded>
 *     SignWith=true      # optional: this key signs
 *     Retired=true       # optional: this key no longer verifies
 *
 * The id (after "Key ") is bg_id_is_valid(); it travels as sig.key_id.
 * Every key that is not retired verifies. Exactly one key signs: the one
 * with SignWith=true (at most one may say so, and not a retired one), else
 * the last key in the file that is not retired. A rollover is three
 * deployments of the file, each to every host (and a Reload, or restart):
 * add the new key (it verifies, the old one still signs); then give the
 * new key SignWith=true; then mark the old key Retired=true (or remove
 * it). Between any two steps every host verifies what every other signs.
 *
 * ## The signature
 *
 * sig = {key_id, mac}, mac = lowercase hex HMAC-SHA256(secret,
 * bg_control_message_canonical(msg)): the canonical encoding covers every
 * field but sig itself, "ts" included, so neither the content nor the time
 * can be changed without the key. The mac is compared in constant time.
 *
 * ## Replays
 *
 * A valid signature proves a key holder wrote the message, not that it is
 * new: anyone who can write to the topic can append an exact copy of an
 * earlier message. BgReplayGuard rejects copies; see bg_replay_guard_check()
 * for the rule and why it has the shape it has.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "common/control-codec.h"

G_BEGIN_DECLS

/* Decoded secrets shorter than this are refused (the HMAC's block size is
 * 64, its output 32: a shorter secret weakens it). */
#define BG_KEYRING_MIN_SECRET 32
/* Keys in one file at most. */
#define BG_KEYRING_MAX_KEYS 16
/* How far from the newest message of the same sender (and, while
 * following the log, from this host's clock) a message's ts may be. Wider
 * than the agent's producer message timeout (5 min: a message may land
 * that late after a broker outage) so that a legitimate late message is
 * never taken for a replay. */
#define BG_REPLAY_WINDOW_USEC (10 * 60 * G_USEC_PER_SEC)
/* Senders the replay guard tracks at most, and macs remembered per sender
 * (the oldest is forgotten first; the window still rejects it once it is
 * older than the window). A hello every 0.2 s for 10 min is 3000. */
#define BG_REPLAY_MAX_SENDERS 1024
#define BG_REPLAY_MAX_MACS_PER_SENDER 8192

#define BG_SIGN_ERROR (bg_sign_error_quark ())
GQuark bg_sign_error_quark (void);

typedef enum {
  BG_SIGN_ERROR_FILE,        /* the key file cannot be read */
  BG_SIGN_ERROR_PERMISSIONS, /* the key file is accessible to group or other */
  BG_SIGN_ERROR_INVALID,     /* the key file is malformed (names file, group, key) */
  BG_SIGN_ERROR_UNSIGNED,    /* a message without sig */
  BG_SIGN_ERROR_UNKNOWN_KEY, /* sig.key_id names no key of the file */
  BG_SIGN_ERROR_RETIRED_KEY, /* sig.key_id names a retired key */
  BG_SIGN_ERROR_BAD_MAC,     /* the mac does not match */
  BG_SIGN_ERROR_STALE,       /* ts outside the replay window */
  BG_SIGN_ERROR_REPLAYED,    /* an exact copy of a message already accepted */
  BG_SIGN_ERROR_TOO_MANY,    /* a new sender beyond BG_REPLAY_MAX_SENDERS */
} BgSignError;

typedef struct _BgKeyring BgKeyring;

/* Reads and checks the key file at @path, refusing it (PERMISSIONS) if
 * group or other have any permission on it. */
BgKeyring *bg_keyring_load (const char *path, GError **error);
/* Parses key-file text; @origin names it in errors. No permission check. */
BgKeyring *bg_keyring_load_from_data (const char *data, gsize len, const char *origin, GError **error);
void bg_keyring_free (BgKeyring *keyring);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgKeyring, bg_keyring_free)

/* The id of the key that signs. */
const char *bg_keyring_signing_key (const BgKeyring *keyring);
/* The number of keys that verify. */
guint bg_keyring_n_verifying (const BgKeyring *keyring);

/* Sets @msg's sig (replacing any) with the signing key. Fails only if the
 * message cannot be encoded (the codec's error). */
gboolean bg_keyring_sign (const BgKeyring *keyring, BgControlMessage *msg, GError **error);
/* Whether @msg carries a valid signature of a key that verifies; the error
 * says why not (UNSIGNED, UNKNOWN_KEY, RETIRED_KEY, BAD_MAC). */
gboolean bg_keyring_verify (const BgKeyring *keyring, const BgControlMessage *msg, GError **error);

typedef struct _BgReplayGuard BgReplayGuard;

BgReplayGuard *bg_replay_guard_new (void);
void bg_replay_guard_free (BgReplayGuard *guard);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgReplayGuard, bg_replay_guard_free)

/* Whether a message that verified may be acted on; remembers it if so.
 * @now is this host's wall clock (µs) while the agent follows the log, or
 * -1 while it replays the log at start (old messages are legitimate then).
 * See control-sign.c for the rule. Errors: STALE, REPLAYED, TOO_MANY. */
gboolean bg_replay_guard_check (BgReplayGuard *guard, const BgControlMessage *msg, gint64 now,
                                GError **error);
/* Senders and macs currently remembered (for tests and bounds). */
guint bg_replay_guard_n_senders (const BgReplayGuard *guard);
guint bg_replay_guard_n_macs (const BgReplayGuard *guard);

G_END_DECLS
