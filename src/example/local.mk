# src/example: the example stateful job. Everything but main() lives in
# libbgexample so the tests can link it.
noinst_LTLIBRARIES += libbgexample.la
libbgexample_la_SOURCES = \
	src/example/state.c src/example/state.h \
	src/example/control.c src/example/control.h \
	src/example/job.c src/example/job.h \
	src/example/schema.c src/example/schema.h
libbgexample_la_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
libbgexample_la_LIBADD = libbgcommon.la libbluegreen.la $(BG_DEPS_LIBS)

bin_PROGRAMS += bluegreen-example-job
bluegreen_example_job_SOURCES = src/example/main.c
bluegreen_example_job_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
bluegreen_example_job_LDADD = libbgexample.la
