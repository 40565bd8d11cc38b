/* membership.h — which hosts take part in each job, from the control log.
 *
 * Membership is sticky: a host becomes a member of a job by announcing it
 * in a hello and stays one until it sends leave for it or an operator
 * evicts it; never by a timeout, because a silent host's job instances may
 * still be emitting. A host is merely *silent* when its last hello is older
 * than the silence threshold: that blocks cutovers, it does not drop the
 * host. A job's static Hosts= list, when set, replaces the announced set.
 *
 * Times are the senders' wall clocks (the "ts" of their hellos): a replayed
 * old hello must not make a dead host look alive, and the log's own receive
 * time cannot tell old from new during a replay.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "common/control-codec.h"

G_BEGIN_DECLS

/* Hosts remembered per job at most; further announcements are ignored (and
 * logged): a garbage flood must not grow the agent without bound (issue 8).
 * Hosts heard of at all (last-seen times) are capped at 4 times that (the
 * one heard of longest ago is forgotten to make room), and
 * jobs announced by hellos at BGD_MEMBERSHIP_MAX_JOBS (jobs this host does
 * not run still count for nothing but that table). */
#define BGD_MEMBERSHIP_MAX_HOSTS 256
#define BGD_MEMBERSHIP_MAX_JOBS 1024

typedef struct _BgdMembership BgdMembership;

BgdMembership *bgd_membership_new (void);
void bgd_membership_free (BgdMembership *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgdMembership, bgd_membership_free)

/* Feeds one message from the log (hello, leave, evict; prepare and its
 * decision for bgd_membership_fleet_settled(); others ignored). */
void bgd_membership_handle (BgdMembership *m, const BgControlMessage *msg);

/* The expected hosts of @job, sorted, as a new NULL-terminated array:
 * @static_hosts if non-empty, else every announced member; @self (this
 * host, which runs the job) is always included. */
char **bgd_membership_expected (BgdMembership *m, const char *job,
                                const char *const *static_hosts, const char *self);

/* Wall-clock µs of @host's last hello, 0 if never heard. */
gint64 bgd_membership_last_seen (BgdMembership *m, const char *host);

/* Whether @host's latest hello shows @job's slot of @color ready. */
gboolean bgd_membership_slot_ready (BgdMembership *m, const char *job, const char *host,
                                    BgColor color);

/* Whether @host's latest hello shows a unit for @job's slot of @color
 * (starting, running or stopping; not stopped, not failed). */
gboolean bgd_membership_slot_running (BgdMembership *m, const char *job, const char *host,
                                      BgColor color);

/* Durable membership: the announced members of @job (sorted, without the
 * static list or this host), for the state file; and, at start, the
 * members the state file remembers, added before the log is replayed
 * (their hellos may lie before the offset the replay starts from). A
 * restored member counts as never heard until its next hello. */
char **bgd_membership_members (BgdMembership *m, const char *job);
void bgd_membership_restore (BgdMembership *m, const char *job, const char *const *hosts);

/* The fleet's live color and version of @job, as the newest hello of
 * another host than @self that runs its live slot says; FALSE if no such
 * hello was read. @version (may be NULL) is newly allocated. */
gboolean bgd_membership_fleet_live (BgdMembership *m, const char *job, const char *self,
                                    BgColor *color, char **version);

/* Whether @job's fleet is settled: no prepare read without its decision
 * (up to a minute past its deadline), and the other hosts' latest hellos
 * agree on the live color with none running the other color gated (a
 * cutover committed but not done there). A host joining a fleet that is
 * not settled could start in the color that is about to change, or emit
 * below a barrier that is still being handed over. */
gboolean bgd_membership_fleet_settled (BgdMembership *m, const char *job, const char *self);

G_END_DECLS
