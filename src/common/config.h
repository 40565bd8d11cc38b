/* config.h — the agent's configuration (bluegreend.conf) and the job
 * definitions (jobs.d/NAME.job), read with GKeyFile.
 *
 * Both files are strict: an unknown group or key, a missing required key or
 * a value that does not parse is an error, and every message names the file,
 * the group and the key ("PATH: [Group] Key: what is wrong"), because the
 * operator who reads it has only the file to go on. Nothing is guessed.
 *
 * Command lines (ExecStart=, ExecSavepoint=, HealthCommand=) are templates
 * with %-specifiers, like systemd's: %v version, %j job name, %c color,
 * %d savepoint directory, %% a literal percent sign. Which specifiers a key
 * accepts is checked when the file is loaded; they are substituted per
 * argument after the line is split with shell quoting rules, so a value can
 * never split an argument or inject a new one. Lists (InputTopics=, Hosts=,
 * Environment=, ...) are GKeyFile lists: items separated by ';', a literal
 * ';' written as '\;'.
 *
 * The documented examples are data/bluegreend.conf and data/example.job.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "common/names.h"

G_BEGIN_DECLS

#define BG_CONFIG_ERROR (bg_config_error_quark ())
GQuark bg_config_error_quark (void);

typedef enum {
  BG_CONFIG_ERROR_READ,            /* the file (or directory) cannot be read */
  BG_CONFIG_ERROR_PARSE,           /* not a key file, or a value GKeyFile cannot unescape */
  BG_CONFIG_ERROR_UNKNOWN_GROUP,
  BG_CONFIG_ERROR_UNKNOWN_KEY,
  BG_CONFIG_ERROR_MISSING_KEY,     /* a required key is missing or empty */
  BG_CONFIG_ERROR_INVALID_VALUE,   /* not an integer, out of range, bad suffix, bad enum, ... */
  BG_CONFIG_ERROR_INVALID_NAME,    /* a job name (from the file name) or host id that bg_name_is_valid() refuses */
  BG_CONFIG_ERROR_INVALID_VERSION, /* a version passed to an expansion helper */
  BG_CONFIG_ERROR_TOO_MANY_JOBS,   /* more job files than MaxJobs= */
  BG_CONFIG_ERROR_INSECURE,        /* secrets in a file others can read */
} BgConfigError;

/* Defaults, shared with the documented example files. */
#define BG_CONFIG_DEFAULT_PATH SYSCONFDIR "/bluegreen/bluegreend.conf"
#define BG_CONFIG_DEFAULT_STATE_DIRECTORY LOCALSTATEDIR "/lib/bluegreen"
#define BG_CONFIG_DEFAULT_JOBS_DIRECTORY SYSCONFDIR "/bluegreen/jobs.d"
#define BG_CONFIG_DEFAULT_METRICS_DIRECTORY LOCALSTATEDIR "/lib/prometheus/node-exporter"
#define BG_CONFIG_DEFAULT_HEARTBEAT_SEC 2
#define BG_CONFIG_DEFAULT_MAX_JOBS 64
#define BG_CONFIG_MAX_MAX_JOBS 1024
#define BG_CONFIG_DEFAULT_CONTROL_TOPIC "bluegreen-control"
#define BG_CONFIG_DEFAULT_CONSUMER_GROUP "%j-%c"
#define BG_CONFIG_DEFAULT_MAX_LAG 1000
#define BG_CONFIG_DEFAULT_STABLE_SEC 10
#define BG_CONFIG_DEFAULT_OBSERVATION_SEC 300
#define BG_CONFIG_DEFAULT_DEADLINE_SEC 10
#define BG_CONFIG_DEFAULT_CUTOVER_ATTEMPTS 3
#define BG_CONFIG_DEFAULT_SAVEPOINTS_KEPT 3
#define BG_CONFIG_MAX_SAVEPOINTS_KEPT 1000
#define BG_CONFIG_DEFAULT_SLOT_LOG_MAX_BYTES (64 * 1024 * 1024)
/* [Job] StartTimeoutSec=: how long a slot's unit may take to send READY=1
 * (the job sends it once it consumes, which may wait for a consumer-group
 * assignment); WatchdogSec=: the longest gap between two WATCHDOG=1 pings
 * (0: no watchdog). */
#define BG_CONFIG_DEFAULT_START_TIMEOUT_SEC 300
#define BG_CONFIG_DEFAULT_WATCHDOG_SEC 30
#define BG_CONFIG_MAX_CUTOVER_ATTEMPTS 10
/* The slot units' restart policy: a crashed instance is restarted after
 * RestartSec=; StartLimitBurst= starts within StartLimitIntervalSec= make a
 * crash loop, and the slot fails. */
#define BG_CONFIG_DEFAULT_RESTART_SEC 1
#define BG_CONFIG_DEFAULT_START_LIMIT_BURST 5
#define BG_CONFIG_DEFAULT_START_LIMIT_INTERVAL_SEC 60
#define BG_CONFIG_MAX_START_LIMIT_BURST 1000
/* A fifth of a second of traffic: enough for every host to arm a plan before
 * a running instance reaches the barrier, short enough for a quick switch. */
#define BG_CONFIG_DEFAULT_LEAD_USEC (200 * G_TIME_SPAN_MILLISECOND)

/* MemoryMax=infinity and TasksMax=infinity; 0 means "not set" (the
 * slice's default applies). */
#define BG_CONFIG_INFINITY G_MAXUINT64

/* [Sandbox] Hardening= of a job: the preset of systemd sandboxing settings
 * every slot unit gets (bluegreen.job(5) lists them), or none of them. */
typedef enum {
  BG_HARDENING_DEFAULT,
  BG_HARDENING_NONE,
} BgHardening;

/* One [Kafka.Properties] entry, passed verbatim to librdkafka. */
typedef struct {
  char *key;
  char *value;
} BgConfigProperty;

typedef struct {
  /*< private >*/
  gint ref_count;
  /*< public >*/
  char *path;               /* the file it was loaded from */

  /* [Agent] */
  char *host_id;            /* bg_name_is_valid(); default: the lowercased host name */
  GBusType bus;             /* G_BUS_TYPE_SYSTEM (default) or G_BUS_TYPE_SESSION */
  char *state_directory;    /* absolute */
  char *jobs_directory;     /* absolute */
  char *metrics_directory;  /* absolute, or NULL: no metrics file is written */
  gint64 heartbeat_usec;    /* > 0 */
  char *fleet_key_file;     /* absolute, or NULL: control messages are not signed */
  guint max_jobs;           /* 1 .. BG_CONFIG_MAX_MAX_JOBS */
  guint64 slot_log_max_bytes; /* SlotLogMaxSize=: output files rotated past this; BG_CONFIG_INFINITY: never */

  /* [Kafka] */
  char *bootstrap_servers;  /* required */
  char *control_topic;      /* a valid Kafka topic name */

  /* [Kafka.Properties]: BgConfigProperty*, in file order, never NULL; the
   * entries of [Kafka] PropertiesFile= come first, so the file's own
   * [Kafka.Properties] can still be read next to them */
  GPtrArray *kafka_properties;
  char *properties_file;    /* [Kafka] PropertiesFile= as resolved (absolute), or NULL */
} BgAgentConfig;

typedef struct {
  /*< private >*/
  gint ref_count;
  /*< public >*/
  char *path;                 /* the file it was loaded from */
  char *name;                 /* the file's basename without ".job"; bg_name_is_valid() */

  /* [Job] */
  char *description;          /* "" if not set */
  char *exec_start;           /* the template as written (%v %j %%) */
  char **exec_start_argv;     /* split, not expanded; argv[0] is absolute */
  char *exec_savepoint;       /* NULL if not set (%v %j %d %%) */
  char **exec_savepoint_argv; /* NULL if not set */
  guint savepoints_kept;      /* SavepointsKept=: 1 .. BG_CONFIG_MAX_SAVEPOINTS_KEPT */
  char **input_topics;        /* at least one; names only */
  gint32 *input_partitions;   /* same length; from "name:N", 0 if not given (ask Kafka) */
  char **output_topics;       /* informative; may be empty */
  char *consumer_group;       /* template (%j %c %v %%), default BG_CONFIG_DEFAULT_CONSUMER_GROUP */
  char **hosts;               /* static host list; empty: membership from the control topic */
  char **environment;         /* KEY=VALUE */
  gint64 start_timeout_usec;  /* > 0: systemd's TimeoutStartSec= for the slot's unit */
  gint64 watchdog_usec;       /* >= 0: WatchdogSec=; 0: no watchdog */
  /* [Job] restart policy of the slot units (Restart=on-failure|no) */
  gboolean restart_on_failure;
  gint64 restart_usec;        /* >= 0: RestartSec= */
  guint start_limit_burst;    /* 1 .. BG_CONFIG_MAX_START_LIMIT_BURST */
  gint64 start_limit_interval_usec; /* > 0 */

  /* [Readiness] */
  gint64 max_lag;             /* records, >= 0 */
  gint64 stable_usec;         /* >= 0 */
  char *health_command;       /* NULL if not set (%v %j %c %%) */
  char **health_argv;         /* NULL if not set */

  /* [Resources]: 0 means not set */
  guint cpu_weight;           /* 1 .. 10000 */
  guint catch_up_cpu_weight;  /* 1 .. 10000, used while the slot is not live */
  guint64 memory_max;         /* bytes, or BG_CONFIG_INFINITY */
  guint64 tasks_max;          /* or BG_CONFIG_INFINITY */

  /* [Cutover] */
  gint64 observation_usec;    /* >= 0; 0: stop the old slot at once */
  gint64 deadline_usec;       /* > 0: the prepare deadline */
  gint64 lead_usec;           /* >= 0: barrier lead, as that much time of traffic */
  guint cutover_attempts;     /* 1 .. BG_CONFIG_MAX_CUTOVER_ATTEMPTS: attempts of a cutover
                               * whose instances were past a barrier */

  /* [Guard]: applied only while a slot is not live */
  char **guard_environment;   /* KEY=VALUE overrides */
  char **guard_ip_address_deny;

  /* [Sandbox]: how the slot units are confined (bluegreen.job(5)) */
  char *user;                 /* User=; NULL: the manager's user (root under the system manager) */
  char *group;                /* Group=; NULL: the user's group */
  gboolean dynamic_user;      /* DynamicUser=; excludes User= */
  BgHardening hardening;      /* Hardening=, default BG_HARDENING_DEFAULT */
  char **read_write_paths;    /* ReadWritePaths=: absolute, optional leading '-' */
  char **bind_paths;          /* BindPaths=: absolute, bound read-write at the same place */
  char **load_credentials;    /* LoadCredential=: "ID:PATH", PATH absolute */
  char **environment_files;   /* EnvironmentFile=: absolute, optional leading '-' */
} BgJobConfig;

/* ---- bluegreend.conf --------------------------------------------------- */

/* Loading from a file also checks its mode: a file that sets a secret
 * (sasl.password, ssl.key.password, ssl.keystore.password,
 * sasl.oauthbearer.client.secret, ssl.key.pem) in [Kafka.Properties] while
 * readable by its group or by others is refused with
 * BG_CONFIG_ERROR_INSECURE: move the secret to PropertiesFile= (a systemd
 * credential) or chmod the file 0600.
 *
 * [Kafka] PropertiesFile=NAME|PATH names a librdkafka properties file
 * ("key=value" lines, '#' comments): a bare NAME is looked up in
 * $CREDENTIALS_DIRECTORY (LoadCredential= of the agent's unit), a PATH is
 * taken as is. */
BgAgentConfig *bg_agent_config_load (const char *path, GError **error);
/* The same from a string; @path is only used in messages. */
BgAgentConfig *bg_agent_config_load_from_data (const char *path, const char *data, GError **error);
BgAgentConfig *bg_agent_config_ref (BgAgentConfig *config);
void bg_agent_config_unref (BgAgentConfig *config);

/* ---- jobs.d/NAME.job --------------------------------------------------- */

BgJobConfig *bg_job_config_load (const char *path, GError **error);
/* The same from a string; the job name still comes from @path. */
BgJobConfig *bg_job_config_load_from_data (const char *path, const char *data, GError **error);
BgJobConfig *bg_job_config_ref (BgJobConfig *job);
void bg_job_config_unref (BgJobConfig *job);

/* Loads every DIR/NAME.job (names starting with '.' and files not ending in
 * ".job" are ignored), returns the good ones sorted by name as a
 * GPtrArray of BgJobConfig* (the array unrefs them).
 *
 * One bad file must not take the others down on a reload, so with
 * @file_errors non-NULL a bad file is skipped and its GError (message
 * starting with the file's path) appended to *@file_errors (created here,
 * frees its GErrors); files beyond the first @max_jobs (by name) are
 * skipped the same way with BG_CONFIG_ERROR_TOO_MANY_JOBS. With
 * @file_errors NULL the first bad file fails the whole load.
 * Returns NULL with @error set only if @dir itself cannot be read. */
GPtrArray *bg_job_configs_load_dir (const char *dir,
                                    guint max_jobs,
                                    GPtrArray **file_errors,
                                    GError **error);

/* ExecStart= with %v = @version and %j = the job name: a new argv. */
char **bg_job_config_expand_exec (const BgJobConfig *job, const char *version, GError **error);
/* ExecSavepoint= with %v, %j and %d = @savepoint_dir (absolute); fails with
 * BG_CONFIG_ERROR_MISSING_KEY if the job has none. */
char **bg_job_config_expand_savepoint (const BgJobConfig *job, const char *version,
                                       const char *savepoint_dir, GError **error);
/* HealthCommand= with %v, %j, %c; BG_CONFIG_ERROR_MISSING_KEY if none. */
char **bg_job_config_expand_health (const BgJobConfig *job, BgColor color,
                                    const char *version, GError **error);
/* ConsumerGroup= with %j, %c and %v = @version. */
char *bg_job_config_expand_consumer_group (const BgJobConfig *job, BgColor color,
                                           const char *version, GError **error);

/* Reads a librdkafka properties file ("key=value" per line, blank lines
 * and lines starting with '#' ignored, key and value stripped) into
 * BgConfigProperty* entries appended to @out; every key and value is
 * checked by librdkafka. Errors name the file and the line. Used by the
 * agent (PropertiesFile=) and the example job (--kafka-properties=). */
gboolean bg_config_read_properties_file (const char *path, GPtrArray *out, GError **error);
/* BgConfigProperty free function, for arrays built by the above. */
void bg_config_property_free (BgConfigProperty *p);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgAgentConfig, bg_agent_config_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgJobConfig, bg_job_config_unref)

G_END_DECLS
