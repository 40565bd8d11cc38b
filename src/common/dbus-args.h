/* dbus-args.h — validation of the arguments of the agent's D-Bus methods
 * (data/org.bluegreen.Agent1.xml), as pure functions.
 *
 * The agent's method handlers call these before they look at any state, so
 * what a client may send is decided in one place that needs no bus, no
 * daemon and no Kafka: the fuzzer (tests/fuzz/fuzz-dbus-args.c) drives the
 * same functions with arbitrary message bodies. Each failure is a
 * BG_DBUS_ARGS_ERROR whose code says which registered D-Bus error it
 * means (the daemon maps INVALID_ARGS to org.bluegreen.Error.InvalidArgs
 * and UNKNOWN_OPTION to org.bluegreen.Error.UnknownOption), and whose
 * message names the argument.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "common/names.h"

G_BEGIN_DECLS

#define BG_DBUS_ARGS_ERROR (bg_dbus_args_error_quark ())
GQuark bg_dbus_args_error_quark (void);

typedef enum {
  BG_DBUS_ARGS_ERROR_INVALID_ARGS,   /* org.bluegreen.Error.InvalidArgs */
  BG_DBUS_ARGS_ERROR_UNKNOWN_OPTION, /* org.bluegreen.Error.UnknownOption */
} BgDbusArgsError;

/* One key of an options dictionary (a{sv}) and the type its value must
 * have (a GVariant type string). */
typedef struct {
  const char *name;
  const char *type;
} BgOptionSpec;

/* Job1.Deploy: from s ("scratch" | "savepoint"), live b, force b,
 * auto_cutover b, auto_rollback b. */
extern const BgOptionSpec bg_deploy_options[];
extern const gsize bg_deploy_options_len;
/* Job1.Cutover and Job1.Rollback: deadline_ms u, lead_ms u. */
extern const BgOptionSpec bg_cutover_options[];
extern const gsize bg_cutover_options_len;

/* Every key of @options (of type a{sv}) is in @specs, with a value of that
 * type; @method names the method in the message. An options value that is
 * not a dictionary is INVALID_ARGS. */
gboolean bg_dbus_args_check_options (GVariant *options, const BgOptionSpec *specs, gsize n_specs,
                                     const char *method, GError **error);

/* Deploy's options, checked (keys, types, "from"'s value, and that
 * auto_cutover/auto_rollback are not combined with live) and read; any
 * output pointer may be NULL. *@from points into @options. */
gboolean bg_dbus_args_parse_deploy_options (GVariant *options, const char **from, gboolean *live,
                                            gboolean *auto_cutover, gboolean *auto_rollback,
                                            GError **error);
/* Cutover/Rollback's options; absent values are 0. */
gboolean bg_dbus_args_parse_cutover_options (GVariant *options, const char *method, guint32 *deadline_ms,
                                             gboolean *have_lead, guint32 *lead_ms, GError **error);

/* @arg names the argument in the message ("color", "host", ...). */
gboolean bg_dbus_args_parse_color (const char *arg, const char *s, BgColor *out, GError **error);
/* The modes SetSinkMode takes: "live" or "blackhole" ("gated" is only
 * ever set by a cutover). */
gboolean bg_dbus_args_check_sink_mode (const char *arg, const char *s, GError **error);
gboolean bg_dbus_args_check_version (const char *arg, const char *s, GError **error);
/* Job names and host ids (bg_name_is_valid). */
gboolean bg_dbus_args_check_name (const char *arg, const char *what, const char *s, GError **error);
/* Cutover ids (bg_id_is_valid). */
gboolean bg_dbus_args_check_id (const char *arg, const char *s, GError **error);

/* Kafka topic names: [A-Za-z0-9._-]{1,249}, not "." or "..". */
gboolean bg_dbus_args_topic_is_valid (const char *topic);

/* Most (topic, partition, offset) entries a job may report in one call:
 * what a job reports is kept by the agent, so it must be bounded. */
#define BG_DBUS_ARGS_MAX_OFFSETS 65536

/* A job's a(six) report (ReportProgress positions, ReportDelivered):
 * at most BG_DBUS_ARGS_MAX_OFFSETS entries, each topic a valid Kafka name
 * and, if @topics is not NULL, one of them; partitions >= 0; offsets >=
 * @min_offset (-1 lets a position say "nothing admitted yet"). */
gboolean bg_dbus_args_check_offsets (const char *arg, GVariant *offsets, const char *const *topics,
                                     gint64 min_offset, GError **error);

G_END_DECLS
