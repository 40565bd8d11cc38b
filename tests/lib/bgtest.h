/* bgtest.h — helpers for GTest programs that test with real parts:
 * simulated hosts (a systemd user manager and its bus, run by tools/bg-host),
 * the embedded Kafka (bluegreen-kafka-mock), running programs, and waiting
 * on conditions with a timeout (never on a fixed sleep).
 *
 * Cleanup: every host and Kafka started here is registered; a failed
 * assertion (SIGABRT), SIGTERM (the tap-test timeout) or SIGINT prints the
 * hosts' logs and stops them before the test dies, so nothing is left
 * running even when a fixture's teardown never runs. Kafka mocks also die
 * with the test process (PR_SET_PDEATHSIG).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define BGT_ERROR (bgt_error_quark ())
GQuark bgt_error_quark (void);

typedef enum {
  BGT_ERROR_FAILED,   /* a helper program failed (its stderr is in the message) */
  BGT_ERROR_TIMEOUT,  /* a bounded wait ran out */
  BGT_ERROR_PROTOCOL, /* a helper printed something unexpected */
  BGT_ERROR_JOB,      /* a systemd job ended with a result other than "done" */
} BgtError;

/* Interval at which waits re-check their condition (ms). */
#define BGT_POLL_MS 10

/* ---- Waiting --------------------------------------------------------------- */

typedef gboolean (*BgtPredicate) (gpointer data);

/* Iterates the thread-default main context until @predicate returns TRUE
 * (checked after every dispatch and at least every BGT_POLL_MS) or
 * @timeout_ms passed. Returns the predicate's last value. */
gboolean bgt_wait_until (BgtPredicate predicate, gpointer data, int timeout_ms);

/* Waits until @name has an owner on @conn. */
gboolean bgt_wait_bus_name (GDBusConnection *conn, const char *name, int timeout_ms);

/* ---- Running programs -------------------------------------------------------- */

/* Runs @argv (PATH searched) with @envp (NULL: ours), feeding nothing on
 * stdin, and collects its output. Fails only if it could not run or did not
 * exit within @timeout_ms (then it is killed); the exit status is returned
 * in @exit_status (the raw wait status decoded: exit code, or 128+signal). */
gboolean bgt_run (const char *const *argv, const char *const *envp, int timeout_ms,
                  char **stdout_out, char **stderr_out, int *exit_status, GError **error);

/* The path of a program built in the top build directory ($BG_TOP_BUILDDIR),
 * or NULL if it is not there. */
char *bgt_build_path (const char *program);
/* Lets @ms of a scenario pass (an outage's length, part of a window),
 * iterating the main context: a duration the scenario is made of, never
 * a wait for a condition, so BG_TEST_TIME_SCALE does not stretch it. */
void bgt_pause (int ms);
/* A job's [Sandbox] BindPaths= value for the rig: @dir (the test's own
 * directory), the build tree and the source tree, which the default
 * hardening (PrivateTmp=, ProtectHome=) would hide when the checkout is
 * below /tmp or a home directory. */
char *bgt_sandbox_bind_paths (const char *dir);

/* ---- Hosts ----------------------------------------------------------------- */

typedef struct {
  char *name;
  GPid pid;          /* the host's systemd --user */
  char *bus_address; /* its session bus, reachable from here */
  char *dir;         /* runtime dir, HOME and logs/ */
  char *cgroup;      /* e.g. "bg-a-1234abcd.slice/user@0.service" */
  GDBusConnection *bus; /* open, Subscribe()d to the manager's signals */
  gboolean running;
} BgtHost;

/* Starts host @name with tools/bg-host ($BG_TOP_SRCDIR/tools/bg-host, else
 * from PATH) under $BG_HOSTS_DIR or $TMPDIR/bg-hosts. Makes this process a
 * child subreaper so the managers' exit statuses are reaped here. */
BgtHost *bgt_host_start (const char *name, GError **error);
/* Stops the host (idempotent): the manager, every process left in its
 * cgroups, the cgroups and the host's directory (unless keep_dir). */
gboolean bgt_host_stop (BgtHost *host, gboolean keep_dir, GError **error);
/* A power cut: SIGKILLs the host's manager and every process in its
 * cgroups at once (nothing is stopped in order, nothing runs a stop
 * handler). The host must then be cleaned up with bgt_host_stop(). */
gboolean bgt_host_power_cut (BgtHost *host, GError **error);
/* Stops the host if still running (dumping its logs first if the test
 * failed) and frees it. */
void bgt_host_free (BgtHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgtHost, bgt_host_free)

/* Runs @argv inside the host (bg-host exec): its mount namespace, its
 * XDG_RUNTIME_DIR, bus and HOME; e.g. systemctl --user list-units. */
gboolean bgt_host_exec (BgtHost *host, const char *const *argv, char **stdout_out,
                        int *exit_status, GError **error);

/* Installs user unit files into the host and reloads its manager. */
gboolean bgt_host_install_units (BgtHost *host, const char *const *files, GError **error);

/* The file a unit's output goes to when started by
 * bgt_start_transient_unit() or installed by bgt_host_install_units()
 * without an output setting of its own: DIR/logs/UNIT.log. */
char *bgt_host_log_path (BgtHost *host, const char *unit);

/* Prints every file under the host's logs/ as TAP comments. */
void bgt_dump_logs (BgtHost *host);

/* Starts a transient service @unit (".service" appended if it has no
 * suffix) running @argv with @env ("K=V", may be NULL), its stdout and
 * stderr appended to bgt_host_log_path(). @extra_properties: NULL or an
 * a(sv) of more unit properties (a floating ref is consumed). Returns once
 * the start job is removed; fails unless its result is "done". */
gboolean bgt_start_transient_unit_full (BgtHost *host, const char *unit, const char *const *argv,
                                        const char *const *env, GVariant *extra_properties,
                                        GError **error);
gboolean bgt_start_transient_unit (BgtHost *host, const char *unit, const char *const *argv,
                                   const char *const *env, GError **error);

/* The unit's ActiveState ("active", "failed", ...), "inactive" if the
 * manager does not know it. NULL on a D-Bus error. */
char *bgt_unit_active_state (BgtHost *host, const char *unit, GError **error);
/* A service's MainPID, 0 if none. */
guint32 bgt_unit_main_pid (BgtHost *host, const char *unit, GError **error);

/* Waits until the unit's ActiveState is @active_state. */
gboolean bgt_wait_unit_state (BgtHost *host, const char *unit, const char *active_state,
                              int timeout_ms, GError **error);

/* ---- Kafka -------------------------------------------------------------- */

typedef struct {
  GSubprocess *proc;
  GDataInputStream *out; /* its stdout: the bootstrap line, then replies */
  GOutputStream *in;     /* its stdin: commands */
  char *bootstrap;       /* "127.0.0.1:port,..." */
  char *bootstrap_file;
  char *control_path;    /* FIFO taking the same commands, for other processes */
  char *log_path;        /* its stderr */
} BgtKafka;

/* Starts bluegreen-kafka-mock from $BG_TOP_BUILDDIR with @n_brokers and
 * @topics ("NAME:PARTITIONS", NULL-terminated, may be NULL); files go to
 * @dir (NULL: the current directory). */
BgtKafka *bgt_kafka_start (int n_brokers, const char *const *topics, const char *dir, GError **error);
/* Sends one command ("down 1", "rtt 2 100", "topic t:4") and waits for its
 * "ok"; "error: ..." becomes a GError. */
gboolean bgt_kafka_command (BgtKafka *kafka, const char *command, GError **error);
/* SIGTERM, wait for a clean exit (idempotent). */
gboolean bgt_kafka_stop (BgtKafka *kafka, GError **error);
void bgt_kafka_free (BgtKafka *kafka);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgtKafka, bgt_kafka_free)

/* ---- A real Apache Kafka cluster (tools/kafka) ------------------------------
 *
 * KRaft nodes (JVMs) on loopback ports, started by tools/kafka
 * ($BG_TOP_SRCDIR/tools/kafka) in their own directory. They are stopped by
 * bgt_real_kafka_free(), by the emergency cleanup on a failed assertion, and
 * by a watchdog of tools/kafka when this process dies any other way. Nodes
 * are numbered from 1. */

typedef struct {
  char *dir;
  char *bootstrap; /* "127.0.0.1:port,..." */
  guint n_nodes;
  char *tool;      /* tools/kafka */
} BgtRealKafka;

/* Starts a cluster of @n_nodes (1 or 3) in @dir and waits until every node
 * serves (~7 s for 3 nodes). */
BgtRealKafka *bgt_real_kafka_start (guint n_nodes, const char *dir, GError **error);
/* Runs "tools/kafka VERB DIR ARGS..."; its stdout (stripped) in @out. */
gboolean bgt_real_kafka_run (BgtRealKafka *kafka, const char *verb, const char *const *args,
                             char **out, GError **error);
/* SIGKILL, SIGSTOP, SIGCONT (@verb "kill", "pause", "resume") or restart
 * (and wait until it serves) node @node, or every node if @node is 0. */
gboolean bgt_real_kafka_node (BgtRealKafka *kafka, const char *verb, guint node, GError **error);
/* The node id leading (@topic, @partition), -1 with @error if none. */
int bgt_real_kafka_leader (BgtRealKafka *kafka, const char *topic, int partition, GError **error);
/* Creates @topic with @partitions, replication min(3, nodes) and @configs
 * ("key", "value", ..., NULL-terminated; may be NULL) through the admin
 * API, and waits until every partition has a leader. */
gboolean bgt_real_kafka_create_topic (BgtRealKafka *kafka, const char *topic, int partitions,
                                      const char *const *configs, GError **error);
/* Grows @topic to @total partitions (CreatePartitions through the admin
 * API) and waits until every partition has a leader. */
gboolean bgt_real_kafka_create_partitions (BgtRealKafka *kafka, const char *topic, int total,
                                           GError **error);
/* Warms a fresh cluster up: bluegreen-loadgen produces @records to a topic
 * of its own ("bgt-warm-up", 6 partitions) and waits for every delivery.
 * A cold cluster acknowledges a few hundred records a second for its
 * first seconds (JIT, first segments), and a test's load falls behind. */
gboolean bgt_real_kafka_warm_up (BgtRealKafka *kafka, guint records, GError **error);
/* Stops every node at once (SIGKILL: the data is not kept). */
void bgt_real_kafka_free (BgtRealKafka *kafka);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgtRealKafka, bgt_real_kafka_free)

/* Waits until (topic, partition)'s high watermark is >= @min_offset. */
gboolean bgt_wait_high_watermark (const char *bootstrap, const char *topic, int32_t partition,
                                  int64_t min_offset, int timeout_ms, GError **error);

G_END_DECLS
