#!/bin/bash
# tools/bench sim — the protocol simulator's throughput and verdict over
# 2000 seeds: sim.seeds, sim.violations (every one, open findings
# included), sim.seeds_per_s.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail
BUILD="${BG_TOP_BUILDDIR:-.}"
make -C "$BUILD" tests/sim/sim >/dev/null
exec "$BUILD/tests/sim/sim" --bench --seeds 2000
