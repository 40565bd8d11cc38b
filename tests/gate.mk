# tests: the gate (libbluegreen's hot path): unit and stress tests, benchmark.
check_PROGRAMS += tests/test-gate
TESTS += tests/test-gate
tests_test_gate_SOURCES = tests/test-gate.c
tests_test_gate_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_test_gate_LDADD = libbluegreen-internal.la $(GLIB_LIBS)

noinst_PROGRAMS += bench-gate
bench_gate_SOURCES = tests/bench/gate.c
bench_gate_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
bench_gate_LDADD = libbluegreen-internal.la $(GLIB_LIBS)
