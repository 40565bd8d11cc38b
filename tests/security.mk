# Trust boundaries (issue 8): the system-bus policy against the real agent
# on a private system-like bus [policy], and the shipped unit's
# systemd-analyze exposure [security]. Both are shell tests that need root
# (they skip without it). The fuzz targets are in tests/fuzz/local.mk.
TESTS += tests/test-policy.sh tests/test-security.sh
dist_check_SCRIPTS += tests/test-policy.sh tests/test-security.sh
EXTRA_DIST += tests/bench/security.sh
