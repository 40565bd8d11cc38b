# tests for the control-protocol codec
check_PROGRAMS += tests/test-codec
TESTS += tests/test-codec
tests_test_codec_SOURCES = tests/test-codec.c
tests_test_codec_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
tests_test_codec_LDADD = libbgcommon.la $(BG_DEPS_LIBS)
