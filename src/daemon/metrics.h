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

/* The exposition text for @jobs (BgdJob*, any order; sorted by name
 * here) on host @host, agent version @version. */
char *bgd_metrics_render (const char *host, const char *version, GPtrArray *jobs);

/* Writes @text to @directory/bluegreen.prom atomically. */
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
