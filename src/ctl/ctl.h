/* ctl.h — bluegreenctl, the operator's CLI: a D-Bus client of the local
 * agent (org.bluegreen.Agent1). main.c is a thin wrapper around bgctl_main()
 * so the verbs can be driven from tests too.
 *
 * Exit codes (documented in bluegreenctl(1)):
 *   0  success
 *   1  the agent refused or failed the operation
 *   2  bad usage: unknown verb, bad option or argument
 *   3  the agent is not running (or the bus cannot be reached)
 *   4  no such job
 *   5  a waited-for operation ended badly (cutover aborted, slot failed)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

enum {
  BGCTL_EXIT_OK = 0,
  BGCTL_EXIT_FAILED = 1,
  BGCTL_EXIT_USAGE = 2,
  BGCTL_EXIT_NO_AGENT = 3,
  BGCTL_EXIT_NO_JOB = 4,
  BGCTL_EXIT_WAIT_FAILED = 5,
};

int bgctl_main (int argc, char **argv);
