#!/bin/bash
# tools/bench realkafka: the cutover benchmark (bench-cutover) on a real
# 3-node Apache Kafka cluster that the fleet starts with tools/kafka:
# real.cutover.3hosts (Cutover call to the last host's CutoverFinished),
# real.control.roundtrip (a control message produced until read back), and
# real.cutover.pause (blue's longest output pause), all in ms.
set -euo pipefail
BG_TEST_KAFKA=real BENCH_HOSTS=3 BENCH_PREFIX=real. "$BG_TOP_BUILDDIR/bench-cutover"
