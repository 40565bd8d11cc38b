/* agent.c — bluegreend's top level (see agent.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/agent.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "common/config.h"
#include "common/dbus-args.h"
#include "daemon/bg-dbus-generated.h"
#include "daemon/context.h"
#include "daemon/control.h"
#include "daemon/control-topic.h"
#include "daemon/errors.h"
#include "daemon/membership.h"
#include "daemon/job.h"
#include "daemon/metrics.h"
#include "daemon/retention.h"
#include "daemon/state-file.h"


#define LAG_POLL_INTERVAL_MS 1000
#define SAVEPOINT_TIMEOUT_USEC (60 * G_USEC_PER_SEC)
/* A change of readiness or phase is announced at once, but not more often. */
#define HELLO_MIN_INTERVAL_USEC (200 * 1000)
/* The metrics file is rewritten on changes and at least this often (lag,
 * positions and counters change without an event). */
#define METRICS_INTERVAL_MS 5000

struct _BgdAgent {
  BgdContext ctx;
  char *config_path;
  BgdAgentManager manager_choice;
  GMainLoop *loop;
  GError *fatal_error;

  BgAgent1 *iface;
  GHashTable *jobs;          /* name (owned) → BgdJob* (owned, disposed by hand) */
  GHashTable *state_records; /* name → BgdJobRecord*, as read at start */
  char *state_path;

  guint name_id;
  gboolean name_owned;
  gboolean ready_sent;
  guint changed_idle_id;
  guint lag_timer_id;
  guint watchdog_id;
  guint signal_ids[3];
  GHashTable *lag_queries;   /* job name → TRUE while a query runs */
  /* The errors of the job files skipped by the last load ("PATH: ..."):
   * GetJob says why a job named in a bad file does not exist. */
  GPtrArray *bad_job_files;
  GCancellable *cancellable;
  gulong closed_id;

  BgdControl *control;
  gint64 control_start;      /* the stored offset read at start, -1: none */
  gint64 control_next;       /* the next offset to read, -1 until one was read */
  gboolean units_adopted;
  gboolean replay_finished;  /* told the jobs */
  guint heartbeat_id;
  gint64 last_hello;         /* monotonic µs */

  BgdMetrics *metrics;
  guint metrics_timer_id;
  guint control_topic_retry_id; /* the next control topic check, while Kafka does not answer */
  gboolean control_topic_unanswered; /* said so once */
};

static void agent_changed (gpointer user_data);

/* g_hash_table_get_{keys,values}_as_ptr_array() are GLib 2.76. */
static GPtrArray *
table_keys (GHashTable *table)
{
  GPtrArray *a = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (a, key);
  return a;
}

static GPtrArray *
table_values (GHashTable *table)
{
  GPtrArray *a = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (a, value);
  return a;
}

/* ---- jobs ------------------------------------------------------------------ */

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

static void
agent_update_jobs_property (BgdAgent *agent)
{
  g_autoptr(GPtrArray) names = table_keys (agent->jobs);
  g_autoptr(GStrvBuilder) paths = g_strv_builder_new ();
  g_auto(GStrv) strv = NULL;

  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    g_strv_builder_add (paths, bgd_job_get_path (g_hash_table_lookup (agent->jobs, names->pdata[i])));
  strv = g_strv_builder_end (paths);
  bg_agent1_set_jobs (agent->iface, (const char *const *) strv);
}

static void
agent_add_job (BgdAgent *agent, BgJobConfig *config)
{
  BgdJob *job = bgd_job_new (&agent->ctx, config);
  const BgdJobRecord *record = g_hash_table_lookup (agent->state_records, config->name);

  if (record != NULL)
    bgd_job_restore_record (job, record);
  if (agent->replay_finished)
    bgd_job_set_replaying (job, FALSE);
  /* Own key: a reload replaces the config the job's name points into. */
  g_hash_table_replace (agent->jobs, g_strdup (bgd_job_get_name (job)), job);
  bgd_job_export (job, agent->ctx.manager);
  g_info ("job %s configured from %s", config->name, config->path);
}

static void
agent_remove_job (BgdAgent *agent, BgdJob *job)
{
  g_info ("job %s removed from the configuration", bgd_job_get_name (job));
  if (agent->control != NULL)
    {
      /* Sticky membership ends only by saying so. */
      BgControlMessage *msg = bg_control_message_new (BG_CONTROL_LEAVE, agent->ctx.config->host_id,
                                                      g_get_real_time ());
      msg->job = g_strdup (bgd_job_get_name (job));
      bgd_control_append (agent->control, msg);
    }
  bgd_job_unexport (job, agent->ctx.manager);
  g_hash_table_remove (agent->jobs, bgd_job_get_name (job));
  bgd_job_dispose (job);
}

/* Applies a freshly loaded job list: new jobs appear, removed ones go
 * unless their slots still run, the others get the new configuration
 * without touching their slots. */
static void
agent_apply_jobs (BgdAgent *agent, GPtrArray *configs)
{
  g_autoptr(GHashTable) wanted = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) current = table_values (agent->jobs);

  for (guint i = 0; i < configs->len; i++)
    {
      BgJobConfig *config = configs->pdata[i];
      BgdJob *job = g_hash_table_lookup (agent->jobs, config->name);

      g_hash_table_add (wanted, config->name);
      if (job != NULL)
        bgd_job_set_config (job, config);
      else
        agent_add_job (agent, config);
    }
  for (guint i = 0; i < current->len; i++)
    {
      BgdJob *job = current->pdata[i];

      if (g_hash_table_contains (wanted, bgd_job_get_name (job)))
        continue;
      if (bgd_job_has_active_slots (job))
        {
          g_message ("job %s was removed from the configuration but its slots still run; "
                     "it stays until they are retired", bgd_job_get_name (job));
          bgd_job_set_last_error (job, "removed from the configuration; retire its slots to remove it");
          continue;
        }
      agent_remove_job (agent, job);
    }
  agent_update_jobs_property (agent);
  agent_changed (agent);
}

/* The number of jobs is capped by MaxJobs= (1 .. BG_CONFIG_MAX_MAX_JOBS,
 * config.h): job files beyond it (by name) are refused with an error that
 * says so. Each job costs two slots, two D-Bus objects, a cutover state
 * machine whose remembered ids are capped (cutover.h) and a membership
 * entry capped in hosts (membership.h): the agent's memory is bounded by
 * its configuration, not by what the control topic or the jobs send. */
static GPtrArray *
agent_load_jobs (BgdAgent *agent, BgAgentConfig *config, GString *problems, GError **error)
{
  g_autoptr(GPtrArray) file_errors = NULL;
  g_autoptr(GPtrArray) configs = NULL;

  configs = bg_job_configs_load_dir (config->jobs_directory, config->max_jobs, &file_errors, error);
  if (configs == NULL)
    return NULL;
  g_clear_pointer (&agent->bad_job_files, g_ptr_array_unref);
  agent->bad_job_files = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; file_errors != NULL && i < file_errors->len; i++)
    {
      const GError *e = file_errors->pdata[i];
      g_message ("bad job file, skipped: %s", e->message);
      g_ptr_array_add (agent->bad_job_files, g_strdup (e->message));
      if (problems != NULL)
        g_string_append_printf (problems, "%s%s", problems->len ? "; " : "", e->message);
    }
  return g_steal_pointer (&configs);
}

/* The error of job @name's file if the last load skipped it (every
 * config error starts with the file's path), else NULL. */
static const char *
agent_bad_job_file (BgdAgent *agent, const char *name)
{
  g_autofree char *file = g_strconcat (name, ".job", NULL);
  g_autofree char *path = g_build_filename (agent->ctx.config->jobs_directory, file, NULL);
  gsize len = strlen (path);

  for (guint i = 0; agent->bad_job_files != NULL && i < agent->bad_job_files->len; i++)
    {
      const char *message = agent->bad_job_files->pdata[i];
      if (strncmp (message, path, len) == 0 && message[len] == ':')
        return message;
    }
  return NULL;
}

gboolean
bgd_agent_reload (BgdAgent *agent, GError **error)
{
  g_autoptr(BgAgentConfig) config = NULL;
  g_autoptr(GPtrArray) configs = NULL;
  g_autoptr(GString) problems = g_string_new (NULL);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(BgKeyring) keyring = NULL;

  g_message ("reloading the configuration from %s", agent->config_path);
  config = bg_agent_config_load (agent->config_path, &local_error);
  /* The key file is re-read too: that is how a key rollover's steps
   * reach a running agent. */
  if (config != NULL && config->fleet_key_file != NULL)
    {
      keyring = bg_keyring_load (config->fleet_key_file, &local_error);
      if (keyring == NULL)
        g_clear_pointer (&config, bg_agent_config_unref);
    }
  if (config == NULL)
    {
      g_message ("reload: keeping the old configuration: %s", local_error->message);
      g_set_error (error, BGD_ERROR, BGD_ERROR_FAILED, "%s (old configuration kept)",
                   local_error->message);
      return FALSE;
    }
  /* Bus, state directory and Kafka are fixed for the life of the process;
   * the jobs are what a reload is for. */
  configs = agent_load_jobs (agent, config, problems, &local_error);
  if (configs == NULL)
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_FAILED, "%s (old configuration kept)",
                   local_error->message);
      return FALSE;
    }
  bg_agent_config_unref (agent->ctx.config);
  agent->ctx.config = g_steal_pointer (&config);
  bgd_metrics_set_directory (agent->metrics, agent->ctx.config->metrics_directory);
  if (agent->control != NULL)
    bgd_control_set_keyring (agent->control, g_steal_pointer (&keyring));
  agent_apply_jobs (agent, configs);
  if (problems->len > 0)
    {
      g_set_error (error, BGD_ERROR, BGD_ERROR_FAILED,
                   "bad job files (their old configuration is kept): %s", problems->str);
      return FALSE;
    }
  return TRUE;
}

/* ---- state file, STATUS= ------------------------------------------------------- */

/* Where a restart must read the control log from: after the last message
 * processed, but never past the prepare of a cutover still in flight, so
 * a restarted agent rebuilds that cutover from the log itself. */
static gint64
agent_control_offset (BgdAgent *agent)
{
  gint64 offset = agent->control_next >= 0 ? agent->control_next : agent->control_start;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, agent->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      gint64 pinned = bgd_job_pinned_offset (value);
      if (pinned >= 0 && (offset < 0 || pinned < offset))
        offset = pinned;
    }
  return offset;
}

static void
agent_save_state (BgdAgent *agent)
{
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) bgd_job_record_free);
  g_autoptr(GPtrArray) jobs = table_values (agent->jobs);
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer key, value;

  for (guint i = 0; i < jobs->len; i++)
    {
      BgdJobRecord *r = bgd_job_make_record (jobs->pdata[i]);
      r->control_offset = bgd_job_control_offset (jobs->pdata[i], agent->control_next >= 0 ? agent->control_next
                                                                                           : agent->control_start);
      g_ptr_array_add (records, r);
    }
  /* Jobs that left the configuration keep their record: if they come back
   * while their units still run, nothing is forgotten. */
  g_hash_table_iter_init (&iter, agent->state_records);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (g_hash_table_contains (agent->jobs, key))
        continue;
      g_ptr_array_add (records, bgd_job_record_copy (value));
    }
  if (!bgd_state_file_save_full (agent->state_path, records, agent_control_offset (agent), &error))
    g_message ("cannot write the state file: %s", error->message);
}

static void
agent_persist (gpointer user_data)
{
  agent_save_state (user_data);
}

static void
agent_send_status (BgdAgent *agent)
{
  g_autoptr(GPtrArray) names = table_keys (agent->jobs);
  g_autoptr(GString) s = g_string_new ("STATUS=");

  g_ptr_array_sort (names, compare_strings);
  if (names->len == 0)
    g_string_append (s, "no jobs");
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *d = bgd_job_describe (g_hash_table_lookup (agent->jobs, names->pdata[i]));
      g_string_append_printf (s, "%s%s", i ? "; " : "", d);
    }
  sd_notify (0, s->str);
}

static void agent_send_hello (BgdAgent *agent);

static gboolean
changed_idle_cb (gpointer user_data)
{
  BgdAgent *agent = user_data;

  agent->changed_idle_id = 0;
  if (agent->replay_finished && g_get_monotonic_time () - agent->last_hello >= HELLO_MIN_INTERVAL_USEC)
    agent_send_hello (agent);
  agent_save_state (agent);
  agent_send_status (agent);
  return G_SOURCE_REMOVE;
}

static void
agent_changed (gpointer user_data)
{
  BgdAgent *agent = user_data;

  if (agent->changed_idle_id == 0)
    agent->changed_idle_id = g_idle_add (changed_idle_cb, agent);
  if (agent->metrics != NULL)
    bgd_metrics_changed (agent->metrics);
}

/* ---- metrics ------------------------------------------------------------------- */

static char *
agent_metrics_collect (gpointer user_data)
{
  BgdAgent *agent = user_data;
  g_autoptr(GPtrArray) jobs = table_values (agent->jobs);

  BgdMetricsAgent a = {
    .host = agent->ctx.config->host_id,
    .version = PACKAGE_VERSION,
    .control_log = bg_agent1_get_control_log (agent->iface),
    .control_lag = agent->control != NULL ? bgd_control_lag (agent->control) : -1,
    .kafka_up = agent->control != NULL ? bgd_control_brokers_up (agent->control) : -1,
  };

  return bgd_metrics_render (&a, jobs);
}

/* Where no journald takes the units' output, it goes to files in the
 * logs directory: each is kept under SlotLogMaxSize= (one older part
 * beside it, "<unit>.log.1"). */
static void
agent_rotate_slot_logs (BgdAgent *agent)
{
  GHashTableIter iter;
  gpointer value;

  if (agent->ctx.have_journal || agent->ctx.config->slot_log_max_bytes == BG_CONFIG_INFINITY)
    return;
  g_hash_table_iter_init (&iter, agent->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    for (guint c = 0; c < BG_N_COLORS; c++)
      {
        BgdSlot *slot = bgd_job_get_slot (value, (BgColor) c);
        g_autofree char *path = g_strdup_printf ("%s/%s.log", agent->ctx.logs_directory, bgd_slot_get_unit (slot));
        g_autoptr(GError) error = NULL;
        gboolean rotated = FALSE;

        if (!bgd_retention_rotate_log (path, (goffset) agent->ctx.config->slot_log_max_bytes, &rotated, &error))
          g_message ("slot output: %s", error->message);
        else if (rotated)
          g_info ("slot output: %s rotated (SlotLogMaxSize=)", path);
      }
}

static gboolean
metrics_timer_cb (gpointer user_data)
{
  BgdAgent *agent = user_data;

  bgd_metrics_changed (agent->metrics);
  agent_rotate_slot_logs (agent);
  return G_SOURCE_CONTINUE;
}

/* ---- lag --------------------------------------------------------------------- */

typedef struct {
  BgdAgent *agent;
  char *job_name;
} LagQuery;

static void
lag_query_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  LagQuery *q = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) marks = bgd_kafka_query_watermarks_finish (BGD_KAFKA (source), res, &error);
  g_autoptr(GHashTable) table = NULL;
  BgdJob *job;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_free (q->job_name);
      g_free (q);
      return;
    }
  g_hash_table_remove (q->agent->lag_queries, q->job_name);
  job = g_hash_table_lookup (q->agent->jobs, q->job_name);
  if (marks == NULL)
    g_debug ("%s: no high watermarks: %s", q->job_name, error->message);
  else
    {
      table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      for (guint i = 0; i < marks->len; i++)
        {
          const BgdWatermark *m = &g_array_index (marks, BgdWatermark, i);
          g_hash_table_insert (table, g_strdup_printf ("%s:%d", m->topic, m->partition),
                               g_memdup2 (&m->high, sizeof m->high));
        }
    }
  if (job != NULL)
    bgd_job_update_lag (job, table);
  g_free (q->job_name);
  g_free (q);
}

/* Every second: for each job with a slot that reported positions, ask
 * Kafka for the input high watermarks (in a worker thread). Jobs without
 * reports cost nothing, so an idle agent stays idle. */
static gboolean
lag_timer_cb (gpointer user_data)
{
  BgdAgent *agent = user_data;
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, agent->jobs);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      BgdJob *job = value;
      gboolean wanted = FALSE;
      LagQuery *q;

      for (guint c = 0; c < BG_N_COLORS; c++)
        {
          BgdSlot *slot = bgd_job_get_slot (job, (BgColor) c);
          if (bgd_slot_is_active (slot) && bgd_slot_has_reported (slot))
            wanted = TRUE;
        }
      if (!wanted)
        continue;
      if (agent->ctx.kafka == NULL)
        {
          bgd_job_update_lag (job, NULL);
          continue;
        }
      if (g_hash_table_contains (agent->lag_queries, key))
        continue;
      q = g_new0 (LagQuery, 1);
      q->agent = agent;
      q->job_name = g_strdup (key);
      g_hash_table_add (agent->lag_queries, g_strdup (key));
      bgd_kafka_query_watermarks_async (agent->ctx.kafka,
                                        (const char *const *) bgd_job_get_config (job)->input_topics,
                                        agent->cancellable, lag_query_cb, q);
    }
  return G_SOURCE_CONTINUE;
}

/* ---- the control log ------------------------------------------------------------ */

static void
agent_append (gpointer user_data, BgControlMessage *msg)
{
  BgdAgent *agent = user_data;

  if (agent->control == NULL)
    {
      bg_control_message_free (msg);
      return;
    }
  bgd_control_append (agent->control, msg);
}

static void
agent_send_hello (BgdAgent *agent)
{
  BgControlMessage *msg;
  GHashTableIter iter;
  gpointer value;

  if (agent->control == NULL)
    return;
  msg = bg_control_message_new (BG_CONTROL_HELLO, agent->ctx.config->host_id, g_get_real_time ());
  g_hash_table_iter_init (&iter, agent->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (msg->jobs, bgd_job_make_hello (value));
  agent->last_hello = g_get_monotonic_time ();
  bgd_control_append (agent->control, msg);
}

static gboolean
heartbeat_cb (gpointer user_data)
{
  BgdAgent *agent = user_data;

  if (agent->replay_finished)
    agent_send_hello (agent);
  return G_SOURCE_CONTINUE;
}

/* Replayed and the units adopted: the jobs may answer prepares again. */
static void
agent_maybe_finish_replay (BgdAgent *agent)
{
  GHashTableIter iter;
  gpointer value;

  if (agent->replay_finished || !agent->units_adopted || !agent->ctx.control_replayed)
    return;
  agent->replay_finished = TRUE;
  agent->ctx.replay_finished = TRUE;
  bg_agent1_set_control_log (agent->iface, agent->control != NULL ? "following" : "unavailable");
  g_message ("control log replayed and units adopted: slots may be started and steered");
  g_hash_table_iter_init (&iter, agent->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    bgd_job_set_replaying (value, FALSE);
  /* Only now: a slot started earlier could be steered by history. */
  g_hash_table_iter_init (&iter, agent->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    bgd_job_resume_slots (value);
  agent_send_hello (agent);
}

static void
on_control_message (const BgControlMessage *msg, gint64 offset, gpointer user_data)
{
  BgdAgent *agent = user_data;

  bgd_membership_handle (agent->ctx.membership, msg);
  if (msg->type == BG_CONTROL_HELLO || msg->type == BG_CONTROL_LEAVE || msg->type == BG_CONTROL_EVICT)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, agent->jobs);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        bgd_job_membership_changed (value);
    }
  if (msg->type != BG_CONTROL_HELLO)
    {
      BgdJob *job = g_hash_table_lookup (agent->jobs, msg->job);
      if (job != NULL)
        bgd_job_handle_control (job, msg, offset);
      else
        g_debug ("control log: %s for unknown job %s ignored", bg_control_type_to_string (msg->type), msg->job);
    }
  /* Stored after processing: a crash replays this message (idempotent). */
  agent->control_next = offset + 1;
  agent_changed (agent);
}

static void
on_control_replayed (gpointer user_data)
{
  BgdAgent *agent = user_data;

  agent->ctx.control_replayed = TRUE;
  agent_maybe_finish_replay (agent);
}

/* ---- Agent1 methods --------------------------------------------------------------- */

static gboolean
handle_reload (BgAgent1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
  BgdAgent *agent = user_data;
  g_autoptr(GError) error = NULL;

  if (!bgd_agent_reload (agent, &error))
    bgd_error_return (invocation, error);
  else
    bg_agent1_complete_reload (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_job (BgAgent1 *iface, GDBusMethodInvocation *invocation, const char *name,
                gpointer user_data)
{
  BgdAgent *agent = user_data;
  BgdJob *job;
  g_autoptr(GError) error = NULL;

  if (!bg_dbus_args_check_name ("name", "job name", name, &error))
    {
      bgd_error_return (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  job = g_hash_table_lookup (agent->jobs, name);
  if (job == NULL)
    {
      const char *bad_file = agent_bad_job_file (agent, name);

      g_dbus_method_invocation_return_error (invocation, BGD_ERROR, BGD_ERROR_UNKNOWN_JOB,
                                             "name: no job '%s' on this host%s%s", name,
                                             bad_file ? ": its job file was skipped: " : "",
                                             bad_file ? bad_file : "");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bg_agent1_complete_get_job (iface, invocation, bgd_job_get_path (job));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- start-up ------------------------------------------------------------------- */

static void
agent_fail (BgdAgent *agent, GError *error)
{
  if (agent->fatal_error == NULL)
    agent->fatal_error = error;
  else
    g_error_free (error);
  g_main_loop_quit (agent->loop);
}

/* The control topic check (control-topic.h): a topic that cannot carry
 * the protocol stops the agent with an error naming it; weak settings are
 * logged. While Kafka does not answer, the check is retried. */
#define CONTROL_TOPIC_TIMEOUT_MS 10000
#define CONTROL_TOPIC_RETRY_SEC 10

static void check_control_topic (BgdAgent *agent);

static gboolean
control_topic_retry_cb (gpointer user_data)
{
  BgdAgent *agent = user_data;

  agent->control_topic_retry_id = 0;
  check_control_topic (agent);
  return G_SOURCE_REMOVE;
}

static void
control_topic_checked_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgdControlTopicFacts) facts = bgd_control_topic_check_finish (BGD_KAFKA (source), res, &error);
  g_autoptr (GPtrArray) warnings = NULL;
  BgdAgent *agent;
  const char *topic;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  agent = user_data;
  topic = agent->ctx.config->control_topic;
  if (facts == NULL)
    {
      if (!agent->control_topic_unanswered)
        g_message ("cannot check control topic '%s' yet (retrying every %d s): %s", topic,
                   CONTROL_TOPIC_RETRY_SEC, error->message);
      agent->control_topic_unanswered = TRUE;
      agent->control_topic_retry_id = g_timeout_add_seconds (CONTROL_TOPIC_RETRY_SEC, control_topic_retry_cb, agent);
      return;
    }
  warnings = g_ptr_array_new_with_free_func (g_free);
  if (!bgd_control_topic_assess (topic, facts, warnings, &error))
    {
      agent_fail (agent, g_steal_pointer (&error));
      return;
    }
  for (guint i = 0; i < warnings->len; i++)
    g_message ("warning: %s", (const char *) g_ptr_array_index (warnings, i));
  g_message ("control topic '%s' checked: 1 partition, replication %d, cleanup.policy=%s", topic,
             facts->replication, facts->cleanup_policy ? facts->cleanup_policy : "(unknown)");
}

static void
check_control_topic (BgdAgent *agent)
{
  bgd_control_topic_check_async (agent->ctx.kafka, agent->ctx.config->control_topic, CONTROL_TOPIC_TIMEOUT_MS,
                                 agent->cancellable, control_topic_checked_cb, agent);
}

static void
adopt_units_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  BgdAgent *agent = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) units = bgd_systemd_list_units_finish (BGD_SYSTEMD (source), res, &error);

  if (units == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      agent_fail (agent, g_error_new (BGD_ERROR, BGD_ERROR_FAILED,
                                      "cannot list the slot units: %s", error->message));
      return;
    }
  for (guint i = 0; i < units->len; i++)
    {
      const BgdUnitInfo *u = units->pdata[i];
      gboolean found = FALSE;
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, agent->jobs);
      while (!found && g_hash_table_iter_next (&iter, NULL, &value))
        for (guint c = 0; c < BG_N_COLORS; c++)
          {
            BgdSlot *slot = bgd_job_get_slot (value, (BgColor) c);
            if (g_str_equal (bgd_slot_get_unit (slot), u->name))
              {
                bgd_slot_adopt (slot, u->active_state, u->sub_state, u->result, u->main_pid);
                found = TRUE;
                break;
              }
          }
      if (!found)
        g_message ("unit %s (%s) belongs to no configured job; left alone", u->name, u->active_state);
    }
  agent->units_adopted = TRUE;
  agent_maybe_finish_replay (agent);
  agent->ready_sent = TRUE;
  agent_send_status (agent);
  sd_notify (0, "READY=1");
  g_message ("ready: %u jobs, %u units adopted", g_hash_table_size (agent->jobs), units->len);
}

static void
on_name_acquired (GDBusConnection *conn, const char *name, gpointer user_data)
{
  BgdAgent *agent = user_data;

  agent->name_owned = TRUE;
  g_info ("owning %s", name);
  bgd_systemd_list_units_async (agent->ctx.systemd, "bluegreen-*.service", agent->cancellable,
                                adopt_units_cb, agent);
}

static void
on_name_lost (GDBusConnection *conn, const char *name, gpointer user_data)
{
  BgdAgent *agent = user_data;

  if (conn == NULL)
    agent_fail (agent, g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "the bus connection is gone"));
  else if (agent->name_owned)
    agent_fail (agent, g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "lost the bus name %s", name));
  else
    agent_fail (agent, g_error_new (BGD_ERROR, BGD_ERROR_FAILED,
                                    "the bus name %s is taken: is another bluegreend running?", name));
}

static void
systemd_init_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  BgdAgent *agent = user_data;
  g_autoptr(GError) error = NULL;

  if (!bgd_systemd_init_finish (BGD_SYSTEMD (source), res, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      agent_fail (agent, g_error_new (BGD_ERROR, BGD_ERROR_FAILED,
                                      "cannot subscribe to the systemd manager: %s", error->message));
      return;
    }
  /* Objects first, then the name: a client that sees the name finds them. */
  g_dbus_object_manager_server_set_connection (agent->ctx.manager, agent->ctx.bus);
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (agent->iface), agent->ctx.bus,
                                         BGD_AGENT_PATH, &error))
    {
      agent_fail (agent, g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "cannot export %s: %s",
                                      BGD_AGENT_PATH, error->message));
      return;
    }
  agent->name_id = g_bus_own_name_on_connection (agent->ctx.bus, BGD_AGENT_BUS_NAME,
                                                 G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                 on_name_acquired, on_name_lost, agent, NULL);
}

static gboolean
watchdog_cb (gpointer user_data)
{
  sd_notify (0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigterm (gpointer user_data)
{
  BgdAgent *agent = user_data;

  g_message ("stopping on a signal; slots keep running");
  sd_notify (0, "STOPPING=1");
  g_main_loop_quit (agent->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup (gpointer user_data)
{
  BgdAgent *agent = user_data;
  g_autoptr(GError) error = NULL;

  sd_notify (0, "RELOADING=1");
  if (!bgd_agent_reload (agent, &error))
    g_message ("reload: %s", error->message);
  sd_notify (0, "READY=1");
  return G_SOURCE_CONTINUE;
}

static void
on_connection_closed (GDBusConnection *conn, gboolean remote_peer_vanished, GError *error,
                      gpointer user_data)
{
  agent_fail (user_data, g_error_new (BGD_ERROR, BGD_ERROR_FAILED, "the bus connection closed%s%s",
                                      error ? ": " : "", error ? error->message : ""));
}

BgdAgent *
bgd_agent_new (const char *config_path, BgdAgentManager manager, GError **error)
{
  g_autoptr(BgdAgent) agent = g_new0 (BgdAgent, 1);
  g_autoptr(BgAgentConfig) config = NULL;
  g_autoptr(GPtrArray) configs = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(BgKeyring) keyring = NULL;

  agent->config_path = g_strdup (config_path);
  agent->manager_choice = manager;
  agent->jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  agent->lag_queries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  agent->cancellable = g_cancellable_new ();
  agent->loop = g_main_loop_new (NULL, FALSE);
  agent->control_start = agent->control_next = -1;
  agent->ctx.membership = bgd_membership_new ();
  agent->metrics = bgd_metrics_new (agent_metrics_collect, agent);

  config = bg_agent_config_load (config_path, error);
  if (config == NULL)
    return NULL;
  /* A fleet key that cannot be used (unreadable, readable by others,
   * malformed) stops the start: running unsigned instead would be a silent
   * downgrade of the whole fleet's trust. */
  if (config->fleet_key_file != NULL)
    {
      keyring = bg_keyring_load (config->fleet_key_file, error);
      if (keyring == NULL)
        return NULL;
    }
  agent->ctx.config = bg_agent_config_ref (config);
  bgd_metrics_set_directory (agent->metrics, config->metrics_directory);
  agent->ctx.agent = agent;
  agent->ctx.changed = agent_changed;
  agent->ctx.persist = agent_persist;
  agent->ctx.savepoint_timeout_usec = SAVEPOINT_TIMEOUT_USEC;
  agent->ctx.state_directory = g_strdup (config->state_directory);
  agent->ctx.logs_directory = g_build_filename (config->state_directory, "logs", NULL);
  agent->ctx.have_journal = g_file_test ("/run/systemd/journal/socket", G_FILE_TEST_EXISTS);
  if (manager == BGD_AGENT_MANAGER_FROM_CONFIG)
    agent->ctx.user_manager = config->bus == G_BUS_TYPE_SESSION;
  else
    agent->ctx.user_manager = manager == BGD_AGENT_MANAGER_USER;

  if (g_mkdir_with_parents (agent->ctx.logs_directory, 0700) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errsv),
                   "cannot create %s: %s", agent->ctx.logs_directory, g_strerror (errsv));
      return NULL;
    }
  agent->state_path = g_build_filename (config->state_directory, "agent.state", NULL);
  agent->state_records = bgd_state_file_load (agent->state_path, error);
  if (agent->state_records == NULL)
    return NULL;
  agent->control_start = bgd_state_file_load_control_offset (agent->state_path);
  /* Before the jobs and the replay: hellos of a host that went silent may
   * lie before the offset the replay starts from. */
  {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, agent->state_records);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      {
        const BgdJobRecord *r = value;
        bgd_membership_restore (agent->ctx.membership, r->name, (const char *const *) r->members);
      }
  }

  agent->ctx.bus = g_bus_get_sync (agent->ctx.user_manager ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM,
                                   NULL, error);
  if (agent->ctx.bus == NULL)
    return NULL;
  g_dbus_connection_set_exit_on_close (agent->ctx.bus, FALSE);
  agent->closed_id = g_signal_connect (agent->ctx.bus, "closed", G_CALLBACK (on_connection_closed), agent);
  agent->ctx.systemd = bgd_systemd_new (agent->ctx.bus, agent->ctx.user_manager);

  /* Lag needs Kafka, nothing else does: an agent whose Kafka settings are
   * refused still serves its slots, and says why lag stays unknown. */
  agent->ctx.kafka = bgd_kafka_new (config->bootstrap_servers, config->kafka_properties, &local_error);
  if (agent->ctx.kafka == NULL)
    g_message ("Kafka is not available, lag stays unknown: %s", local_error->message);
  else
    {
      g_clear_error (&local_error);
      /* Read from the main loop only; replay starts when it runs. */
      agent->control = bgd_control_new (config->bootstrap_servers, config->kafka_properties,
                                        config->control_topic, agent->control_start,
                                        g_steal_pointer (&keyring), on_control_message,
                                        on_control_replayed, agent, &local_error);
      if (agent->control == NULL)
        g_message ("the control log is not available, no cutovers: %s", local_error->message);
      else
        {
          agent->ctx.append = agent_append;
          check_control_topic (agent);
        }
    }
  /* No control log at all (Kafka settings refused): nothing to replay, and
   * nothing to wait for. With one, replay waits for the brokers, however
   * long they are down; the agent still comes up (READY=1) meanwhile and
   * answers Busy to whatever would start or steer a slot. */
  if (agent->control == NULL)
    agent->ctx.control_replayed = TRUE;

  /* The object manager serves the jobs and slots below its own path; the
   * Agent1 interface sits on that path itself, exported next to it. */
  agent->ctx.manager = g_dbus_object_manager_server_new (BGD_AGENT_PATH);
  agent->iface = bg_agent1_skeleton_new ();
  bg_agent1_set_host_id (agent->iface, config->host_id);
  bg_agent1_set_version (agent->iface, PACKAGE_VERSION);
  bg_agent1_set_jobs (agent->iface, NULL);
  bg_agent1_set_control_log (agent->iface, "replaying");
  g_signal_connect (agent->iface, "handle-reload", G_CALLBACK (handle_reload), agent);
  g_signal_connect (agent->iface, "handle-get-job", G_CALLBACK (handle_get_job), agent);

  configs = agent_load_jobs (agent, config, NULL, error);
  if (configs == NULL)
    return NULL;
  agent_apply_jobs (agent, configs);
  return g_steal_pointer (&agent);
}

gboolean
bgd_agent_run (BgdAgent *agent, GError **error)
{
  guint64 watchdog_usec = 0;

  agent->signal_ids[0] = g_unix_signal_add (SIGTERM, on_sigterm, agent);
  agent->signal_ids[1] = g_unix_signal_add (SIGINT, on_sigterm, agent);
  agent->signal_ids[2] = g_unix_signal_add (SIGHUP, on_sighup, agent);
  if (sd_watchdog_enabled (0, &watchdog_usec) > 0 && watchdog_usec > 0)
    agent->watchdog_id = g_timeout_add ((guint) (watchdog_usec / 2000), watchdog_cb, agent);
  agent->lag_timer_id = g_timeout_add (LAG_POLL_INTERVAL_MS, lag_timer_cb, agent);
  agent->metrics_timer_id = g_timeout_add (METRICS_INTERVAL_MS, metrics_timer_cb, agent);
  agent->heartbeat_id = g_timeout_add ((guint) MAX (agent->ctx.config->heartbeat_usec / 1000, 10),
                                       heartbeat_cb, agent);

  bgd_systemd_init_async (agent->ctx.systemd, agent->cancellable, systemd_init_cb, agent);
  g_main_loop_run (agent->loop);

  if (agent->changed_idle_id != 0)
    {
      g_clear_handle_id (&agent->changed_idle_id, g_source_remove);
      agent_save_state (agent);
    }
  if (agent->fatal_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&agent->fatal_error));
      return FALSE;
    }
  return TRUE;
}

void
bgd_agent_free (BgdAgent *agent)
{
  g_autoptr(GPtrArray) jobs = NULL;

  if (agent == NULL)
    return;
  g_cancellable_cancel (agent->cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (agent->signal_ids); i++)
    g_clear_handle_id (&agent->signal_ids[i], g_source_remove);
  g_clear_handle_id (&agent->watchdog_id, g_source_remove);
  g_clear_handle_id (&agent->lag_timer_id, g_source_remove);
  g_clear_handle_id (&agent->metrics_timer_id, g_source_remove);
  g_clear_pointer (&agent->metrics, bgd_metrics_free);
  g_clear_handle_id (&agent->heartbeat_id, g_source_remove);
  g_clear_handle_id (&agent->changed_idle_id, g_source_remove);
  g_clear_handle_id (&agent->control_topic_retry_id, g_source_remove);
  agent->ctx.append = NULL;
  g_clear_pointer (&agent->control, bgd_control_free);
  if (agent->name_id != 0)
    g_bus_unown_name (agent->name_id);
  if (agent->jobs != NULL)
    {
      jobs = table_values (agent->jobs);
      g_hash_table_remove_all (agent->jobs);
      for (guint i = 0; i < jobs->len; i++)
        {
          if (agent->ctx.manager != NULL)
            bgd_job_unexport (jobs->pdata[i], agent->ctx.manager);
          bgd_job_dispose (jobs->pdata[i]);
        }
      g_hash_table_unref (agent->jobs);
    }
  g_clear_pointer (&agent->bad_job_files, g_ptr_array_unref);
  if (agent->closed_id != 0)
    g_clear_signal_handler (&agent->closed_id, agent->ctx.bus);
  if (agent->iface != NULL && g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (agent->iface)) != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (agent->iface));
  g_clear_object (&agent->iface);
  g_clear_object (&agent->ctx.manager);
  g_clear_object (&agent->ctx.kafka);
  g_clear_object (&agent->ctx.systemd);
  if (agent->ctx.bus != NULL)
    g_dbus_connection_flush_sync (agent->ctx.bus, NULL, NULL);
  g_clear_object (&agent->ctx.bus);
  g_clear_pointer (&agent->ctx.config, bg_agent_config_unref);
  g_clear_pointer (&agent->state_records, g_hash_table_unref);
  g_clear_pointer (&agent->lag_queries, g_hash_table_unref);
  g_clear_pointer (&agent->ctx.membership, bgd_membership_free);
  g_clear_pointer (&agent->loop, g_main_loop_unref);
  g_clear_object (&agent->cancellable);
  g_clear_error (&agent->fatal_error);
  g_free (agent->ctx.state_directory);
  g_free (agent->ctx.logs_directory);
  g_free (agent->state_path);
  g_free (agent->config_path);
  g_free (agent);
}
