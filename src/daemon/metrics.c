/* metrics.c — the Prometheus textfile (see metrics.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <string.h>

#include "daemon/slot.h"

/* Every slot state, for the one-hot bluegreen_slot_state. */
static const BgdSlotState slot_states[] = {
  BGD_SLOT_STOPPED, BGD_SLOT_STARTING, BGD_SLOT_RUNNING, BGD_SLOT_STOPPING, BGD_SLOT_FAILED,
};

char *
bgd_metrics_escape_label (const char *value)
{
  GString *s = g_string_sized_new (strlen (value) + 8);

  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (s, "\\\\");
      else if (*p == '"')
        g_string_append (s, "\\\"");
      else if (*p == '\n')
        g_string_append (s, "\\n");
      else
        g_string_append_c (s, *p);
    }
  return g_string_free (s, FALSE);
}

/* One metric family: its HELP and TYPE lines, then its samples; families
 * are written whole, one after the other, as the format requires. */
typedef struct {
  const char *name;
  const char *type;
  const char *help;
  GString *samples;
} Family;

enum {
  F_AGENT_INFO,
  F_SLOT_STATE,
  F_SLOT_READY,
  F_SLOT_LIVE,
  F_SLOT_LAG,
  F_SLOT_POSITION,
  F_SLOT_EMITTED,
  F_SLOT_DROPPED,
  F_SLOT_RESTARTS,
  F_CUTOVERS,
  F_LAST_CUTOVER_DURATION,
  F_CONTROL_LOG,
  F_CONTROL_LAG,
  F_KAFKA_UP,
  F_SILENT_HOSTS,
  N_FAMILIES,
};

static void
families_init (Family *f)
{
  static const Family defs[N_FAMILIES] = {
    [F_AGENT_INFO] = { "bluegreen_agent_info", "gauge", "The agent's version and host id (always 1).", NULL },
    [F_SLOT_STATE] = { "bluegreen_slot_state", "gauge",
                       "1 for the slot's state (stopped, starting, running, stopping, failed), 0 for the others.", NULL },
    [F_SLOT_READY] = { "bluegreen_slot_ready", "gauge",
                       "1 if the slot is Ready (caught up for the configured time), else 0.", NULL },
    [F_SLOT_LIVE] = { "bluegreen_slot_live", "gauge",
                      "1 if the slot's color is the job's live color (it emits), else 0.", NULL },
    [F_SLOT_LAG] = { "bluegreen_slot_lag", "gauge",
                     "Records the slot is behind the input's high watermarks, summed over its partitions (absent while unknown).", NULL },
    [F_SLOT_POSITION] = { "bluegreen_slot_position", "gauge",
                          "The next input offset the slot's instances will admit, per topic and partition.", NULL },
    [F_SLOT_EMITTED] = { "bluegreen_slot_emitted_total", "counter",
                         "Results the slot's instances emitted since the slot started.", NULL },
    [F_SLOT_DROPPED] = { "bluegreen_slot_dropped_total", "counter",
                         "Results the slot's instances blackholed since the slot started.", NULL },
    [F_SLOT_RESTARTS] = { "bluegreen_slot_restarts_total", "counter",
                          "How often the slot's instance died and systemd started it again since the version was deployed.", NULL },
    [F_CUTOVERS] = { "bluegreen_cutovers_total", "counter",
                     "Cutovers and rollbacks this agent applied since it started, by result (committed, aborted, done).", NULL },
    [F_LAST_CUTOVER_DURATION] = { "bluegreen_last_cutover_duration_seconds", "gauge",
                                  "How long the job's last finished cutover took (done: from the call to the last done; aborted: until the abort).", NULL },
    [F_CONTROL_LOG] = { "bluegreen_control_log_state", "gauge",
                        "1 for the control log's state (replaying, following, unavailable), 0 for the others.", NULL },
    [F_CONTROL_LAG] = { "bluegreen_control_log_lag", "gauge",
                        "Control-topic messages this agent has not read yet (absent while unknown).", NULL },
    [F_KAFKA_UP] = { "bluegreen_kafka_up", "gauge",
                     "0 while librdkafka reports every broker of the control topic down, else 1.", NULL },
    [F_SILENT_HOSTS] = { "bluegreen_job_silent_hosts", "gauge",
                         "Expected hosts of the job that sent no hello for three heartbeats (they block cutovers).", NULL },
  };

  for (guint i = 0; i < N_FAMILIES; i++)
    {
      f[i] = defs[i];
      f[i].samples = g_string_new (NULL);
    }
}

static gint
compare_jobs (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (bgd_job_get_name (*(BgdJob *const *) a), bgd_job_get_name (*(BgdJob *const *) b));
}

static void
render_slot (Family *f, BgdJob *job, BgdSlot *slot, const char *host)
{
  const char *color = bg_color_to_string (bgd_slot_get_color (slot));
  const char *version = bgd_slot_get_version (slot);
  g_autofree char *job_l = bgd_metrics_escape_label (bgd_job_get_name (job));
  g_autofree char *version_l = bgd_metrics_escape_label (version ? version : "");
  g_autofree char *labels = g_strdup_printf ("job=\"%s\",color=\"%s\",version=\"%s\",host=\"%s\"", job_l, color,
                                             version_l, host);
  BgdSlotState state = bgd_slot_get_state (slot);
  gint64 lag = bgd_slot_get_lag (slot);
  GVariant *positions = bgd_slot_get_positions (slot);

  for (guint i = 0; i < G_N_ELEMENTS (slot_states); i++)
    g_string_append_printf (f[F_SLOT_STATE].samples, "bluegreen_slot_state{%s,state=\"%s\"} %d\n", labels,
                            bgd_slot_state_to_string (slot_states[i]), slot_states[i] == state);
  g_string_append_printf (f[F_SLOT_READY].samples, "bluegreen_slot_ready{%s} %d\n", labels,
                          bgd_slot_get_ready (slot) ? 1 : 0);
  g_string_append_printf (f[F_SLOT_LIVE].samples, "bluegreen_slot_live{%s} %d\n", labels,
                          g_strcmp0 (bgd_job_get_live_color (job), color) == 0);
  /* What a stopped slot reported belongs to a version that is gone. */
  if (state == BGD_SLOT_STOPPED)
    return;
  if (lag >= 0)
    g_string_append_printf (f[F_SLOT_LAG].samples, "bluegreen_slot_lag{%s} %" G_GINT64_FORMAT "\n", labels, lag);
  if (positions != NULL)
    {
      GVariantIter iter;
      const char *topic;
      gint32 partition;
      gint64 position;

      g_variant_iter_init (&iter, positions);
      while (g_variant_iter_next (&iter, "(&six)", &topic, &partition, &position))
        {
          g_autofree char *topic_l = bgd_metrics_escape_label (topic);
          g_string_append_printf (f[F_SLOT_POSITION].samples,
                                  "bluegreen_slot_position{%s,topic=\"%s\",partition=\"%d\"} %" G_GINT64_FORMAT "\n",
                                  labels, topic_l, partition, position);
        }
    }
  g_string_append_printf (f[F_SLOT_EMITTED].samples, "bluegreen_slot_emitted_total{%s} %" G_GUINT64_FORMAT "\n",
                          labels, bgd_slot_get_emitted (slot));
  g_string_append_printf (f[F_SLOT_DROPPED].samples, "bluegreen_slot_dropped_total{%s} %" G_GUINT64_FORMAT "\n",
                          labels, bgd_slot_get_dropped (slot));
  g_string_append_printf (f[F_SLOT_RESTARTS].samples, "bluegreen_slot_restarts_total{%s} %u\n", labels,
                          bgd_slot_get_restarts (slot));
}

static void
render_job (Family *f, BgdJob *job, const char *host)
{
  g_autofree char *job_l = bgd_metrics_escape_label (bgd_job_get_name (job));
  GVariant *last = bgd_job_get_last_cutover (job);

  for (guint c = 0; c < BG_N_COLORS; c++)
    render_slot (f, job, bgd_job_get_slot (job, (BgColor) c), host);
  g_string_append_printf (f[F_SILENT_HOSTS].samples, "bluegreen_job_silent_hosts{job=\"%s\",host=\"%s\"} %u\n",
                          job_l, host, bgd_job_n_silent_hosts (job));
  for (guint r = 0; r < BGD_JOB_N_CUTOVER_RESULTS; r++)
    g_string_append_printf (f[F_CUTOVERS].samples,
                            "bluegreen_cutovers_total{job=\"%s\",host=\"%s\",result=\"%s\"} %" G_GUINT64_FORMAT "\n",
                            job_l, host, bgd_job_cutover_result_to_string ((BgdJobCutoverResult) r),
                            bgd_job_get_cutover_count (job, (BgdJobCutoverResult) r));
  if (last != NULL && g_variant_is_of_type (last, G_VARIANT_TYPE ("(ssssstta(six))")))
    {
      const char *result = NULL;
      guint64 duration = 0;

      g_variant_get_child (last, 3, "&s", &result);
      g_variant_get_child (last, 6, "t", &duration);
      if (g_str_equal (result, "done") || g_str_equal (result, "aborted"))
        g_string_append_printf (f[F_LAST_CUTOVER_DURATION].samples,
                                "bluegreen_last_cutover_duration_seconds{job=\"%s\",host=\"%s\"} %.6f\n", job_l,
                                host, duration / (double) G_USEC_PER_SEC);
    }
}

char *
bgd_metrics_render (const BgdMetricsAgent *agent, GPtrArray *jobs)
{
  static const char *const control_states[] = { "replaying", "following", "unavailable" };
  g_autoptr(GPtrArray) sorted = g_ptr_array_copy (jobs, NULL, NULL);
  g_autofree char *host_l = bgd_metrics_escape_label (agent->host);
  g_autofree char *version_l = bgd_metrics_escape_label (agent->version);
  GString *out = g_string_new (NULL);
  Family f[N_FAMILIES];

  families_init (f);
  g_ptr_array_sort (sorted, compare_jobs);
  g_string_append_printf (f[F_AGENT_INFO].samples, "bluegreen_agent_info{version=\"%s\",host=\"%s\"} 1\n",
                          version_l, host_l);
  for (guint i = 0; i < G_N_ELEMENTS (control_states); i++)
    g_string_append_printf (f[F_CONTROL_LOG].samples, "bluegreen_control_log_state{host=\"%s\",state=\"%s\"} %d\n",
                            host_l, control_states[i], g_strcmp0 (agent->control_log, control_states[i]) == 0);
  if (agent->control_lag >= 0)
    g_string_append_printf (f[F_CONTROL_LAG].samples, "bluegreen_control_log_lag{host=\"%s\"} %" G_GINT64_FORMAT "\n",
                            host_l, agent->control_lag);
  if (agent->kafka_up >= 0)
    g_string_append_printf (f[F_KAFKA_UP].samples, "bluegreen_kafka_up{host=\"%s\"} %d\n", host_l, agent->kafka_up);
  for (guint i = 0; i < sorted->len; i++)
    render_job (f, sorted->pdata[i], host_l);
  for (guint i = 0; i < N_FAMILIES; i++)
    {
      g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n%s", f[i].name, f[i].help, f[i].name, f[i].type,
                              f[i].samples->str);
      g_string_free (f[i].samples, TRUE);
    }
  return g_string_free (out, FALSE);
}

gboolean
bgd_metrics_write (const char *directory, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (directory, BGD_METRICS_FILE_NAME, NULL);

  g_autofree char *tmp = g_build_filename (directory, "." BGD_METRICS_FILE_NAME ".XXXXXX", NULL);
  gsize len = strlen (text);
  gsize done = 0;
  int fd, errsv = 0;

  /* Temporary file in the same directory, fsync, rename: the collector
   * sees the old file or the new one, never a part; its name does not end
   * in .prom, so the collector never reads it either. Made readable for
   * every user explicitly: the agent runs with UMask=0077, and the
   * collector (node_exporter) as another user. */
  fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errsv), "cannot create a file in %s: %s",
                   directory, g_strerror (errsv));
      return FALSE;
    }
  if (fchmod (fd, 0644) != 0)
    errsv = errno;
  while (errsv == 0 && done < len)
    {
      ssize_t n = write (fd, text + done, len - done);
      if (n < 0 && errno != EINTR)
        errsv = errno;
      else if (n > 0)
        done += (gsize) n;
    }
  if (errsv == 0 && fsync (fd) != 0)
    errsv = errno;
  if (close (fd) != 0 && errsv == 0)
    errsv = errno;
  if (errsv == 0 && rename (tmp, path) != 0)
    errsv = errno;
  if (errsv != 0)
    {
      g_unlink (tmp);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errsv), "cannot write %s: %s", path,
                   g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

/* ---- the rate-limited writer ---------------------------------------------------- */

struct _BgdMetrics {
  BgdMetricsCollectFunc collect;
  gpointer user_data;
  char *directory;
  gint64 last_write;  /* monotonic µs, 0: never */
  guint timeout_id;
  gboolean failing;   /* the last write failed (logged once until it works again) */
};

static void
metrics_write_now (BgdMetrics *m)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  m->last_write = g_get_monotonic_time ();
  if (m->directory == NULL)
    return;
  text = m->collect (m->user_data);
  if (text == NULL)
    return;
  if (!bgd_metrics_write (m->directory, text, &error))
    {
      if (!m->failing)
        g_message ("metrics: %s (is MetricsDirectory= right?)", error->message);
      m->failing = TRUE;
      return;
    }
  if (m->failing)
    g_message ("metrics: writing %s/%s again", m->directory, BGD_METRICS_FILE_NAME);
  m->failing = FALSE;
}

static gboolean
metrics_timeout_cb (gpointer user_data)
{
  BgdMetrics *m = user_data;

  m->timeout_id = 0;
  metrics_write_now (m);
  return G_SOURCE_REMOVE;
}

BgdMetrics *
bgd_metrics_new (BgdMetricsCollectFunc collect, gpointer user_data)
{
  BgdMetrics *m = g_new0 (BgdMetrics, 1);

  m->collect = collect;
  m->user_data = user_data;
  return m;
}

void
bgd_metrics_free (BgdMetrics *m)
{
  if (m == NULL)
    return;
  g_clear_handle_id (&m->timeout_id, g_source_remove);
  g_free (m->directory);
  g_free (m);
}

void
bgd_metrics_set_directory (BgdMetrics *m, const char *directory)
{
  if (g_strcmp0 (m->directory, directory) == 0)
    return;
  g_free (m->directory);
  m->directory = g_strdup (directory);
  m->failing = FALSE;
}

void
bgd_metrics_changed (BgdMetrics *m)
{
  gint64 due;

  if (m->directory == NULL || m->timeout_id != 0)
    return;
  due = m->last_write + BGD_METRICS_MIN_INTERVAL_USEC - g_get_monotonic_time ();
  /* From an idle, not inline: the change may be half applied. */
  m->timeout_id = g_timeout_add ((guint) (MAX (due, 0) / 1000), metrics_timeout_cb, m);
}
