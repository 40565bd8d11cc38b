/* control.h — the agent's end of the control log: the single-partition
 * control topic every agent of the fleet reads and appends to.
 *
 * A consumer reads partition 0 from a start offset (static assignment, no
 * consumer group) and hands every message that decodes, in log order, to
 * one callback with its offset; messages the codec refuses are logged and
 * skipped. A producer appends encoded messages (acks=all, a long message
 * timeout: a decision must eventually land even through a broker outage).
 * Both run inside the GLib main loop through eventfds librdkafka writes
 * when its queues become non-empty, plus a slow periodic poll, so an idle
 * agent does not spin. "Replayed" is reported once, the first time the
 * consumer reaches the end of the partition.
 *
 * With a fleet key (bgd_control_set_keyring()), every appended message is
 * signed, and a consumed message is handed on only if it carries a valid
 * signature of a key that verifies and passes the replay guard
 * (control-sign.h: during the replay at start without the clock window,
 * once following with it). Without a key, messages are taken as they are,
 * signed or not: there is nothing to verify a signature with, and a fleet
 * that signs is configured so on every host. Whatever is ignored is logged
 * (g_message, with its offset and why), at most IGNORED_LOG_BURST lines per
 * IGNORED_LOG_PERIOD and then a count, so a flood cannot fill the journal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "common/control-codec.h"
#include "common/control-sign.h"

G_BEGIN_DECLS

#define BGD_CONTROL_ERROR (bgd_control_error_quark ())
GQuark bgd_control_error_quark (void);

typedef enum {
  BGD_CONTROL_ERROR_CONFIG, /* a Kafka property librdkafka refuses */
  BGD_CONTROL_ERROR_CREATE, /* rd_kafka_new() or the assignment failed */
} BgdControlError;

typedef struct _BgdControl BgdControl;

/* @msg is only valid during the call; @offset is its log offset. */
typedef void (*BgdControlMessageFunc) (const BgControlMessage *msg, gint64 offset, gpointer user_data);
/* Called once: the consumer reached the end of the log as it was at start. */
typedef void (*BgdControlReplayedFunc) (gpointer user_data);

/* @start_offset: the next offset to read, or < 0 for the beginning.
 * @keyring (taken, may be NULL): as bgd_control_set_keyring(), from the
 * first message on. */
BgdControl *bgd_control_new (const char *bootstrap_servers, GPtrArray *properties,
                             const char *topic, gint64 start_offset, BgKeyring *keyring,
                             BgdControlMessageFunc on_message, BgdControlReplayedFunc on_replayed,
                             gpointer user_data, GError **error);
void bgd_control_free (BgdControl *ctl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdControl, bgd_control_free)

/* Encodes and produces @msg (taken). A message the codec refuses is
 * logged and dropped (a programming error: it would be refused by every
 * reader); returns whether it was queued. */
gboolean bgd_control_append (BgdControl *ctl, BgControlMessage *msg);

gboolean bgd_control_is_replayed (BgdControl *ctl);

/* Signs and verifies with @keyring (taken) from now on; NULL: neither. The
 * replay guard is kept across a change of keys (a rollover by Reload). */
void bgd_control_set_keyring (BgdControl *ctl, BgKeyring *keyring);
/* Messages ignored so far for a bad or missing signature or as replays
 * (not counting those the codec refused). */
guint64 bgd_control_n_rejected (BgdControl *ctl);
/* Messages on the control topic this agent has not read yet (from
 * librdkafka's cached high watermark, no broker call), -1 if unknown. */
gint64 bgd_control_lag (BgdControl *ctl);
/* FALSE while librdkafka reports every broker down (until something is
 * read or appended again). */
gboolean bgd_control_brokers_up (BgdControl *ctl);

G_END_DECLS
