# tests: the example job and the verifier end to end ([example], [handoff]),
# and the throughput benchmark (tools/bench throughput).
TESTS += tests/test-example.sh tests/test-handoff.sh
dist_check_SCRIPTS += tests/test-example.sh tests/test-handoff.sh
EXTRA_DIST += tests/test-example-lib.sh tests/bench/throughput.sh
