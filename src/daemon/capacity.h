/* capacity.h — whether this host can take one more slot of a job: the
 * memory a slot reserves (MemoryMax=) against what the kernel says is
 * available (MemAvailable in /proc/meminfo), checked by Deploy so that a
 * candidate version cannot push the live one into the OOM killer.
 *
 * Test hook: BLUEGREEN_TEST_MEMINFO=PATH in the agent's environment reads
 * PATH instead of /proc/meminfo, so a test can simulate a small host
 * without allocating memory. Not for production use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BGD_CAPACITY_MEMINFO_ENV "BLUEGREEN_TEST_MEMINFO"

/* MemAvailable in bytes, from /proc/meminfo (or the test hook's file). */
gboolean bgd_capacity_mem_available (guint64 *bytes, GError **error);

/* Parses a meminfo text; exposed for tests. */
gboolean bgd_capacity_parse_mem_available (const char *text, guint64 *bytes);

/* Fails with BGD_ERROR_NO_RESOURCES ("host has N MiB available, the slot
 * reserves M MiB (MemoryMax=)") when MemAvailable < @memory_max; a
 * @memory_max of 0 (not set) or infinity always fits. A host whose
 * meminfo cannot be read is not refused (the check is advice, not a
 * guarantee), only logged. */
gboolean bgd_capacity_check_memory (const char *job, guint64 memory_max, GError **error);

G_END_DECLS
