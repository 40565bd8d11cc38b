/* metrics.h — the agent's Prometheus metrics, as a node_exporter
 * textfile-collector file (MetricsDirectory=/bluegreen.prom): one job with
 * two versions shows as one set of series, labelled job, color, version
 * and host. No HTTP server: node_exporter serves the file.
 *
 * The file is replaced atomically (written to a temporary file in the same
 * directory, then renamed), so the collector never reads half a file.
 * Writes are rate-limited: a change is written at once if the last write
 * is at least BGD_METRICS_MIN_INTERVAL_USEC old, else when it is; the
 * agent also writes periodically, so counters that change without an
 * event (positions, emitted, lag) stay fresh.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "daemon/job.h"

G_BEGIN_DECLS

#define BGD_METRICS_FILE_NAME "bluegreen.prom"
#define BGD_METRICS_MIN_INTERVAL_USEC G_USEC_PER_SEC

/* What the agent itself reports. */
typedef struct {
  const char *host;
  const char *version;
  const char *control_log;  /* Agent1.ControlLog: replaying, following, unavailable */
  gint64 control_lag;       /* messages not read yet, -1: unknown */
  int kafka_up;             /* 1, 0, or -1: unknown (no control log) */
} BgdMetricsAgent;

/* The exposition text for @jobs (BgdJob*, any order; sorted by name
 * here) of the agent @agent. */
char *bgd_metrics_render (const BgdMetricsAgent *agent, GPtrArray *jobs);

/* Writes @text to @directory/bluegreen.prom atomically, readable by every
 * user (0644 whatever the agent's umask: the collector runs as another
 * user). */
gboolean bgd_metrics_write (const char *directory, const char *text, GError **error);

/* Escapes a label value for the text format (\\, \", \n). */
char *bgd_metrics_escape_label (const char *value);

typedef struct _BgdMetrics BgdMetrics;

/* @collect renders the current text (NULL: nothing to write). */
typedef char *(*BgdMetricsCollectFunc) (gpointer user_data);

/* A rate-limited writer to @directory (NULL: metrics off, every call is a
 * no-op). */
BgdMetrics *bgd_metrics_new (BgdMetricsCollectFunc collect, gpointer user_data);
void bgd_metrics_free (BgdMetrics *metrics);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdMetrics, bgd_metrics_free)
/* The directory may change on Reload. */
void bgd_metrics_set_directory (BgdMetrics *metrics, const char *directory);
/* Something changed: write now, or as soon as the rate limit allows. */
void bgd_metrics_changed (BgdMetrics *metrics);

G_END_DECLS
