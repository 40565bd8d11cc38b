/* bluegreenctl — see ctl.c.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ctl/ctl.h"

int
main (int argc, char **argv)
{
  return bgctl_main (argc, argv);
}
