/* log.h — the agent's structured logging: the journal fields every line
 * about a job carries (BLUEGREEN_JOB, BLUEGREEN_COLOR, BLUEGREEN_VERSION,
 * BLUEGREEN_CUTOVER), the MESSAGE_IDs of the events an operator searches
 * for (explained in data/bluegreen.catalog, `journalctl --catalog`), and
 * the log writer.
 *
 * Lines go through g_log_structured(), so GLib's default writer sends the
 * fields to journald when the agent's stderr is the journal and prints the
 * message to stderr otherwise. The writer installed by bgd_log_init() adds
 * one debugging aid: with BLUEGREEN_LOG_FIELDS_FILE=PATH in the agent's
 * environment it also appends every record's fields to PATH as one JSON
 * object per line (what the tests read on hosts without journald).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Fixed ids (systemd-id128 new), never to be changed: operators search for
 * them (journalctl MESSAGE_ID=...). One catalog entry each. */
#define BGD_MESSAGE_DEPLOY_STARTED     "de4b9f2a0cc94c1280bf3c626ae6064e"
#define BGD_MESSAGE_SLOT_READY         "7a4d514df4354428bf159aac88439fdb"
#define BGD_MESSAGE_SLOT_FAILED        "6719d450487847bcbf26fc604c6ea849"
#define BGD_MESSAGE_CUTOVER_PREPARED   "d6d3e3e19ce2402595cfb335f04bec9e"
#define BGD_MESSAGE_CUTOVER_COMMITTED  "76132ff532074f1cbefc1a15559a6b59"
#define BGD_MESSAGE_CUTOVER_ABORTED    "dd0392d27a3041398d1e3fadb007a554"
#define BGD_MESSAGE_CUTOVER_DONE       "5848002329e54503803d678cb70d8447"
#define BGD_MESSAGE_ROLLBACK_STARTED   "7c321cfbd8c0481e8b8a666a7c5ace12"

/* The environment variable naming the fields file (see above). */
#define BGD_LOG_FIELDS_FILE_ENV "BLUEGREEN_LOG_FIELDS_FILE"

/* Installs the agent's log writer (once per process; later calls do
 * nothing). */
void bgd_log_init (void);

/* One line about a job: @job is required; @color, @version, @cutover and
 * @message_id may be NULL or "" (then the field is left out). The message
 * is prefixed with the job's name, like every agent line about a job. */
void bgd_log_job (GLogLevelFlags level, const char *message_id, const char *job,
                  const char *color, const char *version, const char *cutover,
                  const char *format, ...) G_GNUC_PRINTF (7, 8);

G_END_DECLS
