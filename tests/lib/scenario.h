/* scenario.h — the steps every end-to-end fleet scenario is made of, on
 * top of the fleet fixture (fleet.h): a GTest fixture that starts a fleet,
 * waits on properties of every host, the common start (blue live, load
 * running, green deployed and Ready), cutovers and their ends, the control
 * log's records, and the verifier's verdict with the assertions every
 * scenario makes. Each step asserts; a failed test prints the logs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "fleet.h"

G_BEGIN_DECLS

#define WAIT_MS 30000
#define LOAD_RATE 1500
#define A 0
#define B 1
#define C 2
#define MASK(i) (G_GUINT64_CONSTANT (1) << (i))

typedef struct {
  BgtFleet *fleet;
  BgtFleetOptions opts;
  /* The scenario makes the consumer groups re-read records (see verify). */
  gboolean replays;
} Fixture;

/* Fixture data: a function that adjusts the fleet's options, or NULL. */
typedef void (*OptionsFunc) (BgtFleetOptions *opts);

void fixture_setup (Fixture *f, gconstpointer data);
void fixture_teardown (Fixture *f, gconstpointer data);

void wait_string (Fixture *f, guint64 mask, const char *path, const char *iface, const char *prop,
                  const char *want);
void wait_slot (Fixture *f, guint64 mask, const char *color, const char *prop, const char *want);
void wait_job (Fixture *f, guint64 mask, const char *prop, const char *want);
/* Blue v1 live on every host, load running, green v2 deployed everywhere
 * and Ready on @ready_mask (0: all). */
void start_blue_then_green (Fixture *f, guint64 ready_mask);
/* Lets the load run until @color admitted everything produced so far. */
void keep_producing (Fixture *f, guint64 mask, const char *color);
/* Stops the load and waits until @live_color has consumed all of it. */
void stop_load (Fixture *f, guint64 mask, const char *live_color);
/* The verifier's report, asserted: no gap, no cross-version duplicate, no
 * order violation (or none beyond the within-version duplicates when
 * f->replays), correct state; with @barriers, @incoming's first result on
 * every partition exactly at the barrier. */
JsonObject *verify (Fixture *f, const char *outgoing, const char *incoming, GArray *barriers);
/* Every host in @mask reports (@id, @result) in LastCutover; returns the
 * barriers (the same everywhere). */
GArray *assert_last_cutover (Fixture *f, guint64 mask, const char *id, const char *result);
void wait_last_cutover (Fixture *f, guint i, const char *id, const char *result);
char *cutover (Fixture *f, guint host, guint deadline_ms);
void assert_finished (Fixture *f, const char *id, guint64 mask, const char *result);
void assert_first_decision (Fixture *f, const char *id, const char *decision);
void assert_dbus_error (GError *error, const char *name, const char *mentions);
/* "\"key\":\"value\"", for matching control records. */
char *needle (const char *key, const char *value);
/* The offset of a control record of @type for @id (from @host if not
 * NULL), -1 on a timeout. */
gint64 wait_record (Fixture *f, const char *type, const char *id, const char *host, int timeout_ms);
/* SIGKILLs host @i's agent and waits until systemd restarted it and it
 * follows the control log again. */
void kill_agent_and_wait (Fixture *f, guint i);
/* SIGSTOPs host @i's agent right after one of its hellos. */
void stop_after_hello (Fixture *f, guint i);

G_END_DECLS
