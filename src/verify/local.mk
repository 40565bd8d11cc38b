# bluegreen-verify: the exactly-once verifier. The checks (verifier.c) and
# the Kafka reading (reader.c) live in libbgverify so tests can link them.
noinst_LTLIBRARIES += libbgverify.la
libbgverify_la_SOURCES = \
	src/verify/verifier.c src/verify/verifier.h \
	src/verify/reader.c src/verify/reader.h
libbgverify_la_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
libbgverify_la_LIBADD = libbgexample.la $(BG_DEPS_LIBS) -lm

bin_PROGRAMS += bluegreen-verify
bluegreen_verify_SOURCES = src/verify/verify.c
bluegreen_verify_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
bluegreen_verify_LDADD = libbgverify.la
