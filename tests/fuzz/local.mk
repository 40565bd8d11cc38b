# tests/fuzz: libFuzzer targets, built only with --enable-fuzzing (CC=clang).
# tools/fuzz builds and runs them; each fuzz-NAME has its seed corpus in
# tests/fuzz/corpus/NAME/. The library code they link is instrumented for
# coverage only if the whole build is (tools/fuzz passes
# CFLAGS=-fsanitize=fuzzer-no-link); FUZZ_CFLAGS instruments the target itself.
if ENABLE_FUZZING
noinst_PROGRAMS += fuzz-codec
fuzz_codec_SOURCES = tests/fuzz/fuzz-codec.c
fuzz_codec_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) $(BG_DEPS_CFLAGS)
fuzz_codec_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
fuzz_codec_LDADD = libbgcommon.la $(BG_DEPS_LIBS)
endif

EXTRA_DIST += \
	tests/fuzz/fuzz-codec.c \
	tests/fuzz/corpus/codec/abort.json \
	tests/fuzz/corpus/codec/ack.json \
	tests/fuzz/corpus/codec/commit.json \
	tests/fuzz/corpus/codec/done-all.json \
	tests/fuzz/corpus/codec/done-partitions.json \
	tests/fuzz/corpus/codec/evict.json \
	tests/fuzz/corpus/codec/hello-minimal.json \
	tests/fuzz/corpus/codec/hello.json \
	tests/fuzz/corpus/codec/leave.json \
	tests/fuzz/corpus/codec/nack.json \
	tests/fuzz/corpus/codec/prepare-signed.json \
	tests/fuzz/corpus/codec/prepare.json

include tests/security.mk
