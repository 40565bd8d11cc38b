# The protocol simulator (tests/sim, docs/sim.md): the cutover state
# machine, membership, steering and real gates of a whole fleet in one
# process, in simulated time, with faults drawn from a seed. The test runs
# a bounded number of seeds; tools/bench sim measures it.
noinst_PROGRAMS += tests/sim/sim
tests_sim_sim_SOURCES = tests/sim/sim.c
tests_sim_sim_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"sim\"
tests_sim_sim_LDADD = libbgdaemon.la libbluegreen-internal.la libbgcommon.la $(BG_DEPS_LIBS) -lm

TESTS += tests/test-sim.sh
EXTRA_DIST += tests/test-sim.sh tests/bench/sim.sh docs/sim.md
