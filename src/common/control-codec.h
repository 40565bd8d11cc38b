/* control-codec.h — the wire format of the control protocol.
 *
 * Every agent of the fleet reads and appends JSON messages on one Kafka
 * topic with a single partition; the log's total order is what decides a
 * cutover (docs/protocol.md, "The two-phase cutover"). This module turns those
 * messages into C structs and back, and is the one place that decides what
 * a well-formed message is: anything the decoder accepts is safe for the
 * agent to act on without further syntax checks (names are valid, offsets
 * and partitions are in range, colors differ, lists are bounded and free of
 * duplicates).
 *
 * ## Wire format (protocol version 1)
 *
 * A message is one JSON object, UTF-8, at most BG_CONTROL_MAX_SIZE bytes,
 * nested at most BG_CONTROL_MAX_DEPTH deep. Integers are JSON integers
 * (never strings or floats, no exponent) within the stated range. Members
 * not listed here are ignored (a newer sender may add fields); a `null`
 * member counts as absent. Names follow src/common/names.h: hosts and jobs
 * `[a-z0-9][a-z0-9._-]{0,63}`, ids bg_id_is_valid(), versions
 * bg_version_is_valid(); topics are Kafka topic names `[A-Za-z0-9._-]{1,249}`.
 * Colors are "blue" or "green". Partitions are 0 .. 2^31-1, offsets
 * 0 .. 2^63-1, times are microseconds since the epoch (CLOCK_REALTIME) >= 0.
 *
 * Envelope, on every message:
 *
 *     "v":    1                       protocol version (anything else: UNKNOWN_VERSION)
 *     "type": "hello" | "leave" | "evict" | "prepare" | "ack" | "nack"
 *             | "commit" | "abort" | "done"
 *     "host": sender's host id (for commit/abort: whoever decided)
 *     "ts":   sender's wall clock, µs
 *     "sig":  optional {"key_id": id, "mac": lowercase hex, 2..128 digits,
 *             even}; reserved for an HMAC over bg_control_message_canonical()
 *             — the codec carries it and checks its shape only.
 *
 * Per type (every type but hello names exactly one job in "job"):
 *
 *     hello   "jobs": [ {"job", "live_color"?, "slots": [ {"color",
 *                       "version"?, "state", "sink_mode", "ready",
 *                       "positions": [ {"topic","partition","offset"} ]} ]} ]
 *             A heartbeat: the jobs this host hosts, with per-slot state.
 *             "live_color" is absent while no color emits; "version" is
 *             absent for a slot with nothing deployed; "state" is the agent's
 *             slot state as a lowercase token (a name); "sink_mode" is
 *             "unknown" | "live" | "blackhole" | "gated"; "ready" a boolean;
 *             "positions" the next offset to admit per partition (partitions
 *             with no admitted record are left out). A job appears at most
 *             once, a color at most once per job, a (topic, partition) at
 *             most once per slot. A hello need not list every job of the host
 *             (split it if it would exceed BG_CONTROL_MAX_SIZE): membership is
 *             only ever ended by leave/evict, never by absence.
 *     leave   "job": the sending host stops hosting the job (sticky
 *             membership ends for that host).
 *     evict   "job", "evicted_host" (!= "host"): an operator, through the
 *             agent "host", removes a silent host after stopping its slots.
 *     prepare "id", "job", "outgoing", "incoming" (colors, different),
 *             "barriers": [ {"topic","partition","offset"} ] (1 ..
 *             BG_CONTROL_MAX_ITEMS, each (topic, partition) once),
 *             "deadline" (µs), "participants": [host, ...] (1 ..
 *             BG_CONTROL_MAX_ITEMS, distinct: the hosts whose ack the
 *             coordinator waits for, so anyone replaying the log can tell
 *             whether the decision was well-founded). The sender ("host") is
 *             the coordinator.
 *     ack     "id", "job", "positions"?: [ {"topic","partition","offset"} ]:
 *             the sender has armed every local instance; "positions" lists,
 *             per barrier partition, the highest position a local instance
 *             had admitted when it armed, where that is past the prepare's
 *             barrier (absent: none is).
 *     nack    "id", "job", "reason": the sender cannot arm (free text).
 *     commit  "id", "job", "barriers"?: [ {"topic","partition","offset"} ]:
 *             decision; the first decision for an id wins. "barriers" are
 *             the final barriers: per barrier partition of the prepare, the
 *             larger of its barrier and every acked position (the
 *             coordinator's; absent: the prepare's barriers stand).
 *     abort   "id", "job", "reason": decision; the first decision wins.
 *     done    "id", "job", "partitions"?: [ {"topic","partition"} ] (each
 *             once), "all"?: boolean. The sender's outgoing instances have
 *             passed and flushed everything below the barrier on the listed
 *             partitions (so the incoming side may release them); "all": true
 *             says this holds for every barrier of the plan on this host (the
 *             host's final done). At least one partition or "all": true.
 *
 * Reasons are 1 .. BG_CONTROL_MAX_REASON bytes of UTF-8.
 *
 * ## Canonical encoding
 *
 * bg_control_message_encode() is deterministic: members sorted by name
 * (bytewise) at every level, no whitespace, optional members left out when
 * absent (and "all" when false), array order as in the struct.
 * bg_control_message_canonical() is the same without "sig": the bytes a
 * signature covers. A verifier decodes, recomputes the canonical bytes from
 * the struct and checks the mac over them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "bluegreen.h"
#include "common/names.h"

G_BEGIN_DECLS

#define BG_CONTROL_PROTOCOL_VERSION 1
/* Checked before parsing; encode refuses to produce more. */
#define BG_CONTROL_MAX_SIZE (64 * 1024)
/* Nesting of objects and arrays; ours need 7, the rest is room for newer
 * fields. Checked before parsing: json-glib parses recursively, and 64 KiB
 * of '[' overflows a 1 MiB thread stack. */
#define BG_CONTROL_MAX_DEPTH 32
/* Elements in any one array. */
#define BG_CONTROL_MAX_ITEMS 4096
#define BG_CONTROL_MAX_REASON 1024

#define BG_CODEC_ERROR (bg_codec_error_quark ())
GQuark bg_codec_error_quark (void);

typedef enum {
  BG_CODEC_ERROR_TOO_LARGE,       /* input (or encoding) over BG_CONTROL_MAX_SIZE */
  BG_CODEC_ERROR_NOT_JSON,        /* empty, NUL byte, syntax error, trailing data */
  BG_CODEC_ERROR_INVALID_UTF8,    /* invalid UTF-8, \u0000, unpaired surrogate */
  BG_CODEC_ERROR_TOO_DEEP,        /* nesting over BG_CONTROL_MAX_DEPTH */
  BG_CODEC_ERROR_NOT_OBJECT,      /* the top-level value is not an object */
  BG_CODEC_ERROR_UNKNOWN_VERSION, /* "v" is not BG_CONTROL_PROTOCOL_VERSION */
  BG_CODEC_ERROR_UNKNOWN_TYPE,    /* "type" names no known message */
  BG_CODEC_ERROR_MISSING_FIELD,   /* a required member is absent (or null) */
  BG_CODEC_ERROR_WRONG_TYPE,      /* a member has the wrong JSON type (e.g. 1.0 or "1" for an integer) */
  BG_CODEC_ERROR_OUT_OF_RANGE,    /* a number out of range, a string too long, an empty list */
  BG_CODEC_ERROR_INVALID_NAME,    /* host, job, id, version, topic or state not a valid name */
  BG_CODEC_ERROR_INVALID_VALUE,   /* not one of the allowed words (color, sink mode), bad mac */
  BG_CODEC_ERROR_TOO_MANY,        /* an array over BG_CONTROL_MAX_ITEMS */
  BG_CODEC_ERROR_DUPLICATE,       /* the same key twice in a list that must be unique */
  BG_CODEC_ERROR_CONFLICT,        /* members contradict: outgoing == incoming, evicting oneself */
} BgCodecError;

typedef enum {
  BG_CONTROL_HELLO = 1,
  BG_CONTROL_LEAVE,
  BG_CONTROL_EVICT,
  BG_CONTROL_PREPARE,
  BG_CONTROL_ACK,
  BG_CONTROL_NACK,
  BG_CONTROL_COMMIT,
  BG_CONTROL_ABORT,
  BG_CONTROL_DONE,
} BgControlType;

/* NULL for a value outside the enum. */
const char *bg_control_type_to_string (BgControlType type);
gboolean bg_control_type_from_string (const char *s, BgControlType *out);

/* "unknown", "live", "blackhole", "gated". */
const char *bg_control_sink_mode_to_string (BgSinkMode mode);
gboolean bg_control_sink_mode_from_string (const char *s, BgSinkMode *out);

/* (topic, partition, offset): a barrier of a prepare, a position in a hello. */
typedef struct {
  char *topic;
  gint32 partition;
  gint64 offset;
} BgControlOffset;

/* (topic, partition): a partition handed over in a done. */
typedef struct {
  char *topic;
  gint32 partition;
} BgControlPartition;

typedef struct {
  BgColor color;
  char *version;        /* NULL: nothing deployed */
  char *state;          /* the agent's slot state, a name */
  BgSinkMode sink_mode;
  gboolean ready;
  GPtrArray *positions; /* of BgControlOffset*, never NULL */
} BgControlSlot;

typedef struct {
  char *job;
  gboolean has_live_color;
  BgColor live_color;   /* only if has_live_color */
  GPtrArray *slots;     /* of BgControlSlot*, never NULL */
} BgControlJob;

/* One message. Which members apply depends on @type (see the table at the
 * top); the others are NULL/0/empty and are neither encoded nor compared.
 * All GPtrArray members are non-NULL and own their elements. */
typedef struct {
  BgControlType type;
  char *host;               /* all */
  gint64 ts;                /* all */
  char *sig_key_id;         /* all, optional: both set or both NULL */
  char *sig_mac;
  char *job;                /* all but hello */
  char *id;                 /* prepare ack nack commit abort done */
  GPtrArray *jobs;          /* hello: of BgControlJob* */
  char *evicted_host;       /* evict */
  BgColor outgoing;         /* prepare */
  BgColor incoming;         /* prepare */
  gint64 deadline;          /* prepare */
  GPtrArray *barriers;      /* prepare, commit (optional): of BgControlOffset* */
  GPtrArray *positions;     /* ack (optional): of BgControlOffset* */
  GPtrArray *participants;  /* prepare: of char* (host ids) */
  char *reason;             /* nack abort */
  GPtrArray *partitions;    /* done: of BgControlPartition* */
  gboolean all;             /* done */
} BgControlMessage;

/* Constructors copy their string arguments. */
BgControlOffset *bg_control_offset_new (const char *topic, gint32 partition, gint64 offset);
void bg_control_offset_free (BgControlOffset *offset);
BgControlPartition *bg_control_partition_new (const char *topic, gint32 partition);
void bg_control_partition_free (BgControlPartition *partition);
/* A slot in sink mode UNKNOWN, not ready, with no version and no positions. */
BgControlSlot *bg_control_slot_new (BgColor color, const char *state);
void bg_control_slot_free (BgControlSlot *slot);
BgControlJob *bg_control_job_new (const char *job);
void bg_control_job_free (BgControlJob *job);

/* An empty message of @type from @host at @ts (all lists empty; outgoing
 * blue, incoming green); fill in the rest directly. Strings the struct
 * holds are g_malloc'd and freed with it. */
BgControlMessage *bg_control_message_new (BgControlType type, const char *host, gint64 ts);
void bg_control_message_free (BgControlMessage *msg);

/* The wire bytes of @msg (canonical, with "sig" if set), or NULL and an error
 * if @msg would not pass bg_control_message_decode() — an agent can never
 * append what the others would reject. */
GBytes *bg_control_message_encode (const BgControlMessage *msg, GError **error);
/* The canonical bytes without "sig": what a signature covers. */
GBytes *bg_control_message_canonical (const BgControlMessage *msg, GError **error);
/* Whether @msg is well-formed (same checks as decode). */
gboolean bg_control_message_validate (const BgControlMessage *msg, GError **error);

/* Parses and validates @len bytes at @data (not NUL-terminated). */
BgControlMessage *bg_control_message_decode (const guint8 *data, gsize len, GError **error);

/* Field-by-field equality of the members that apply to the type (sig
 * included). */
gboolean bg_control_message_equal (const BgControlMessage *a, const BgControlMessage *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgControlOffset, bg_control_offset_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgControlPartition, bg_control_partition_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgControlSlot, bg_control_slot_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgControlJob, bg_control_job_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgControlMessage, bg_control_message_free)

G_END_DECLS
