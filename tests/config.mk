# tests: configuration (src/common/config.[ch])
check_PROGRAMS += tests/test-config
TESTS += tests/test-config
tests_test_config_SOURCES = tests/test-config.c
tests_test_config_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
tests_test_config_LDADD = libbgcommon.la $(BG_DEPS_LIBS)
EXTRA_DIST += \
	tests/data/config/jobs.d/alpha.job \
	tests/data/config/jobs.d/beta.job \
	tests/data/config/jobs.d/broken.job \
	tests/data/config/jobs.d/Capital.job \
	tests/data/config/jobs.d/gamma.job \
	tests/data/config/jobs.d/README \
	tests/data/config/jobs.d/.hidden.job
