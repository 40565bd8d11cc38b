/* fleet.h — a fleet of simulated hosts for the end-to-end cutover tests and
 * the cutover benchmark: one Kafka mock or a real Apache Kafka cluster (an
 * input topic, an output topic and the control topic), N hosts (tools/bg-host), each running bluegreend
 * as a user service (units/test/bluegreend.service) with its own config
 * and state, and the example job configured on every host with one
 * consumer group per color, so the instances of a color share the input
 * partitions.
 *
 * Helpers drive the fleet as an operator would (Deploy on every host at
 * once, wait for properties, Cutover and CutoverFinished), produce load
 * with bluegreen-loadgen, kill or stop an agent by its MainPID, write raw
 * bytes to the control topic, and end with the verifier's --json report.
 * Every wait is on a condition with a timeout; on a failed test the
 * agents' and the jobs' logs are printed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "bgtest.h"

G_BEGIN_DECLS

#define BGT_FLEET_JOB "counts"
#define BGT_FLEET_JOB_PATH "/org/bluegreen/Agent1/job/counts"
#define BGT_FLEET_INPUT "in"
#define BGT_FLEET_OUTPUT "out"
#define BGT_FLEET_CONTROL "bluegreen-control"
#define BGT_AGENT_NAME "org.bluegreen.Agent1"
#define BGT_JOB_IFACE "org.bluegreen.Job1"
#define BGT_SLOT_IFACE "org.bluegreen.Slot1"

typedef struct {
  guint n_hosts;           /* default 3 */
  guint partitions;        /* input partitions, default 6 */
  double heartbeat_sec;    /* default 0.2 */
  double deadline_sec;     /* default 2 */
  double observation_sec;  /* default 0 */
  double lead_sec;         /* LeadFactor=, default 0 (not written) */
  gint64 max_lag;          /* default 2000 */
  double stable_sec;       /* default 0.3 */
  const char *health_command; /* HealthCommand=, NULL (default): none */
  /* Per host (index < n_hosts): versions whose job crashes (killed) ~1.5 s
   * after it started, e.g. "v2"; NULL for none. */
  const char *crash_versions[16];
  /* A second job configured on every host (same input, no slots ever
   * started), e.g. to hold a cutover in flight that pins the control log;
   * NULL (default): none. */
  const char *extra_job;
  /* Lines added to the job's [Sandbox] group (after BindPaths= of the
   * fleet's directory, which the default sandbox's PrivateTmp= would hide),
   * e.g. "LoadCredential=kafka:/path\n"; NULL (default): none. */
  const char *sandbox;
  /* Extra arguments for the example job (split by the job script's shell),
   * e.g. "--kafka-properties=kafka.properties"; NULL (default): none. */
  const char *job_args;
  /* Bit i: host i is configured but its agent is not started (a host
   * that joins later: bgt_fleet_systemctl (..., "start",
   * "bluegreend.service")). Default 0. */
  guint64 late_hosts;
  /* The broker: "mock" (bluegreen-kafka-mock, 3 brokers) or "real" (Apache
   * Kafka, tools/kafka); NULL: $BG_TEST_KAFKA, else "mock". */
  const char *kafka;
  /* With "real": a running cluster to use (the fleet creates its own topics
   * and consumer groups there, named after the fleet, so one cluster serves
   * every fleet of a test program); NULL: the fleet starts a 3-node cluster
   * of its own and stops it when freed. */
  BgtRealKafka *real_kafka;
  /* More lines for the job's [Job] group on every host, e.g.
   * "StartLimitBurst=3\nRestartSec=0.5"; NULL (default): none. */
  const char *job_settings;
  /* The example job commits its results in Kafka transactions
   * (--transactional) and the verifier expects exactly-once within a
   * version too (bluegreen-verify --transactional). Real Kafka only (the
   * mock stores no transactional offsets). Default FALSE. */
  gboolean transactional;
} BgtFleetOptions;

typedef struct {
  char *id;
  char *host;
  char *result;
  char *reason;
  gint64 at; /* monotonic µs when seen */
} BgtFinished;

typedef struct _BgtFleet BgtFleet;

/* Fills @opts with the defaults. */
void bgt_fleet_options_init (BgtFleetOptions *opts);

/* Starts Kafka, the hosts and their agents (in parallel) and waits until
 * every agent owns its bus name. NULL with a skip when not root. */
BgtFleet *bgt_fleet_new (const BgtFleetOptions *opts, GError **error);
/* Stops everything; prints the logs first if the test failed. */
void bgt_fleet_free (BgtFleet *fleet);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgtFleet, bgt_fleet_free)

guint bgt_fleet_n_hosts (BgtFleet *fleet);
BgtHost *bgt_fleet_host (BgtFleet *fleet, guint i);
const char *bgt_fleet_host_id (BgtFleet *fleet, guint i);
const char *bgt_fleet_bootstrap (BgtFleet *fleet);
/* Host @i's agent StateDirectory= (slot logs are in its logs/). */
const char *bgt_fleet_state_dir (BgtFleet *fleet, guint i);
BgtKafka *bgt_fleet_kafka (BgtFleet *fleet);
/* Host @i's jobs directory (JobsDirectory=): a test adds job files there
 * and calls Agent1.Reload. Newly allocated. */
char *bgt_fleet_jobs_dir (BgtFleet *fleet, guint i);
/* The mock (NULL on a real cluster). */
BgtKafka *bgt_fleet_kafka (BgtFleet *fleet);
/* The real cluster (NULL on the mock). */
BgtRealKafka *bgt_fleet_real_kafka (BgtFleet *fleet);
/* The fleet's topics: BGT_FLEET_INPUT, _OUTPUT and _CONTROL on the mock,
 * names of this fleet's own on a real cluster. */
const char *bgt_fleet_input_topic (BgtFleet *fleet);
const char *bgt_fleet_output_topic (BgtFleet *fleet);
const char *bgt_fleet_control_topic (BgtFleet *fleet);
/* Prints every agent's and job's log as test messages. */
void bgt_fleet_dump_logs (BgtFleet *fleet);

/* ---- D-Bus ----------------------------------------------------------------- */

/* A method call on host @i's agent; NULL and @error on failure. */
GVariant *bgt_fleet_call (BgtFleet *fleet, guint i, const char *path, const char *iface,
                          const char *method, GVariant *args, const char *reply_type,
                          int timeout_ms, GError **error);
/* A property of host @i's agent; NULL on error (a stopped agent). */
GVariant *bgt_fleet_get (BgtFleet *fleet, guint i, const char *path, const char *iface,
                         const char *prop);
char *bgt_fleet_get_string (BgtFleet *fleet, guint i, const char *path, const char *iface,
                            const char *prop);
/* The slot's object path for @color. */
char *bgt_fleet_slot_path (const char *color);

/* Waits until the string property is @want on every host in @mask (bit i:
 * host i; 0: all hosts). FALSE (after logging the values) on a timeout. */
gboolean bgt_fleet_wait_string (BgtFleet *fleet, guint64 mask, const char *path, const char *iface,
                                const char *prop, const char *want, int timeout_ms);
/* Waits until slot @color is Ready on every host in @mask (0: all). */
gboolean bgt_fleet_wait_ready (BgtFleet *fleet, guint64 mask, const char *color, int timeout_ms);

/* Deploy(@version, live=@live) on every host in @mask (0: all) at once
 * (the calls are in flight together, so the color's consumer group forms
 * in one generation). */
gboolean bgt_fleet_deploy (BgtFleet *fleet, guint64 mask, const char *version, gboolean live,
                           GError **error);

/* Job1.Cutover (or Rollback if @rollback) on host @i with deadline_ms and
 * lead_ms if not 0. Returns the id, NULL with @error (e.g. the D-Bus error
 * NotReady). */
char *bgt_fleet_cutover (BgtFleet *fleet, guint i, gboolean rollback, guint deadline_ms,
                         guint lead_ms, GError **error);
/* Waits until CutoverFinished(@id) has been seen from every host in @mask
 * (0: all); returns the result every one of them reported if they agree,
 * "split" if not, NULL on a timeout. */
char *bgt_fleet_wait_finished (BgtFleet *fleet, const char *id, guint64 mask, int timeout_ms);
/* The CutoverFinished signals seen for @id (BgtFinished*, owned by the fleet). */
GPtrArray *bgt_fleet_finished_for (BgtFleet *fleet, const char *id);

/* LastCutover of host @i, unpacked. FALSE if the agent does not answer. */
typedef struct {
  char *id, *outgoing, *incoming, *result, *reason;
  guint64 started_us, duration_us;
  GArray *barriers; /* gint64 per input partition, -1 where none */
} BgtCutoverInfo;
gboolean bgt_fleet_last_cutover (BgtFleet *fleet, guint i, BgtCutoverInfo *out);
void bgt_cutover_info_clear (BgtCutoverInfo *info);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BgtCutoverInfo, bgt_cutover_info_clear)

/* ---- processes ----------------------------------------------------------- */

/* The agent's MainPID on host @i (0 if not running). */
guint32 bgt_fleet_agent_pid (BgtFleet *fleet, guint i);
/* Sends @sig to host @i's agent (by its MainPID from systemd); returns the pid. */
guint32 bgt_fleet_signal_agent (BgtFleet *fleet, guint i, int sig);
/* Waits until host @i's agent has a MainPID other than @old_pid and owns
 * its bus name again (systemd restarted it). */
gboolean bgt_fleet_wait_agent_restarted (BgtFleet *fleet, guint i, guint32 old_pid, int timeout_ms);
/* Reboots host @i: stops it completely (with @power_cut, SIGKILLs its
 * manager, agent and slots at once; else the manager stops its units
 * first, as on a clean reboot) and starts it again under the same name,
 * with the same state directory and configuration, its units and
 * environment installed again; returns once its agent has replayed the
 * control log. Slots come back only if the agent brings them back. */
gboolean bgt_fleet_reboot_host (BgtFleet *fleet, guint i, gboolean power_cut, GError **error);
/* systemctl --user stop/start on host @i. */
gboolean bgt_fleet_systemctl (BgtFleet *fleet, guint i, const char *verb, const char *unit,
                              GError **error);

/* ---- load, control topic, verifier ---------------------------------------- */

/* Starts bluegreen-loadgen producing @rate records/s to the input until
 * bgt_fleet_load_stop(), which returns the number produced. */
gboolean bgt_fleet_load_start (BgtFleet *fleet, guint rate, GError **error);
gint64 bgt_fleet_load_stop (BgtFleet *fleet, GError **error);

/* More generators beside that one, e.g. one per partition that a test
 * drives alone (quiet after a moment, sparse, empty until later). */
typedef struct {
  double rate;            /* records/s; 0: as fast as possible (give a count) */
  guint64 count;          /* records, then it exits; 0: until stopped */
  const char *partitions; /* loadgen --partitions ("3", "0-2"); NULL: all, by key */
  const char *key_prefix; /* loadgen --key-prefix; NULL: "key-", the main load's */
  guint keys;             /* distinct keys; 0: 300 */
} BgtLoadOptions;
typedef struct _BgtLoad BgtLoad;

/* Starts bluegreen-loadgen on the input with @opts. The fleet owns it
 * (and stops it when it is freed). Generators that run side by side must
 * not share keys: give each its own key_prefix, or one that a key cannot
 * reach another partition with. */
BgtLoad *bgt_fleet_load_new (BgtFleet *fleet, const BgtLoadOptions *opts, GError **error);
/* Waits until @load exited by itself (a count) and returns the number it
 * produced; -1 with @error if it failed or did not exit in time. */
gint64 bgt_load_wait (BgtLoad *load, int timeout_ms, GError **error);
/* SIGTERM, then as bgt_load_wait(); a generator that exited already just
 * reports its count, one stopped before it could start counts 0. */
gint64 bgt_load_stop (BgtLoad *load, GError **error);

/* The input's high watermark per partition (gint64). */
GArray *bgt_fleet_input_watermarks (BgtFleet *fleet, GError **error);
/* The control topic's high watermark. */
gint64 bgt_fleet_control_watermark (BgtFleet *fleet, GError **error);

/* Grows the input topic to @total partitions (real Kafka only:
 * CreatePartitions; the mock cannot) and waits until each has a leader;
 * from then on the fleet's watermark and caught-up waits and its
 * options' partition count include them. */
gboolean bgt_fleet_add_input_partitions (BgtFleet *fleet, guint total, GError **error);

/* The offset @color's consumer group has committed on input partition
 * @partition (real Kafka only: the fleet's groups are named after it), -1
 * if none, -2 with @error if it cannot be read. */
gint64 bgt_fleet_committed_offset (BgtFleet *fleet, const char *color, gint32 partition, GError **error);

/* The control topic's messages from offset @from (0: the beginning) up
 * to its current high watermark, as strings, in log order. */
GPtrArray *bgt_fleet_control_read (BgtFleet *fleet, gint64 from, GError **error);
/* Reads the control topic from @from until a message contains every one
 * of @needles (e.g. "\"type\":\"prepare\"", "\"id\":\"...\""; the codec's
 * encoding is canonical: no whitespace); returns its offset, -1 on a
 * timeout. Polls with a 1 ms fetch wait, so it reacts within a few ms. */
gint64 bgt_fleet_control_wait (BgtFleet *fleet, gint64 from, const char *const *needles, int timeout_ms);
/* The same, and when the record appeared in the log, as a monotonic time
 * (µs): its timestamp (its producer's CreateTime), or when it was read if
 * that is earlier or the record has none; for bounds measured from a
 * record (e.g. "done within 2 s of the commit"). And the record itself
 * (free it), if @text_out is not NULL. Reading on from the offset after
 * the record returned last continues where the reader is (fast). */
gint64 bgt_fleet_control_wait_timed (BgtFleet *fleet, gint64 from, const char *const *needles, int timeout_ms,
                                     gint64 *appeared_at, char **text_out);
/* The decisions ("commit"/"abort") for @id in the log, in log order. */
GPtrArray *bgt_fleet_control_decisions (BgtFleet *fleet, const char *id, GError **error);

/* Produces @len raw bytes to the control topic (acks=all, flushed). */
gboolean bgt_fleet_control_produce (BgtFleet *fleet, const void *data, gsize len, GError **error);

/* Waits until the running instances of @color, summed over the hosts in
 * @mask (0: all), have positions at the input's high watermark on every
 * partition. */
gboolean bgt_fleet_wait_caught_up (BgtFleet *fleet, guint64 mask, const char *color, int timeout_ms);
/* Waits until @color's results of every input record so far are delivered
 * to the output topic (Slot1.Delivered, the highest over the hosts in @mask
 * per partition, reaches the input's high watermark). Admitted is not
 * delivered: after an outage a producer may hold results for seconds, and
 * a verifier run meanwhile finds gaps that are not there. */
gboolean bgt_fleet_wait_delivered (BgtFleet *fleet, guint64 mask, const char *color, int timeout_ms);

/* Runs bluegreen-verify --json --strict-order (with --outgoing/--incoming
 * and --barriers-file when @barriers is not NULL: gint64 per partition, -1
 * for none) and returns the parsed report; the exit status in @status. */
JsonObject *bgt_fleet_verify (BgtFleet *fleet, const char *outgoing, const char *incoming,
                              GArray *barriers, int *status, GError **error);
/* A number from the report's top level (-1 if absent). */
gint64 bgt_report_num (JsonObject *report, const char *member);
/* A number of @partition's entry in the report ("low", "high", "gaps",
 * "cross_duplicates", "within_duplicates"; -1 if absent). */
gint64 bgt_report_partition_num (JsonObject *report, int partition, const char *member);
/* The first/last offset @color emitted on @partition, -1 if none. */
gint64 bgt_report_color_first (JsonObject *report, int partition, const char *color);
gint64 bgt_report_color_last (JsonObject *report, int partition, const char *color);
/* After a cutover blue -> green at barriers @x1 and a rollback at @x2
 * (gint64 per partition): green emitted exactly [X1, X2) on every
 * partition, blue everything else, [0, X1) and [X2, high). With the
 * verifier's no gap and no cross-version duplicate, that is exact. A
 * partition that got no record after the rollback's barrier has no blue
 * result at or above it. */
void bgt_report_assert_rollback (JsonObject *report, GArray *x1, GArray *x2);
/* After a cutover @outgoing -> @incoming at @barriers (gint64 per
 * partition): @incoming's first result on every partition is exactly at
 * its barrier (none if no record came at or after it), @outgoing's last
 * one just below it. */
void bgt_report_assert_barriers (JsonObject *report, const char *outgoing, const char *incoming,
                                 GArray *barriers);

G_END_DECLS
