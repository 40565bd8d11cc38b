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

noinst_PROGRAMS += fuzz-config
fuzz_config_SOURCES = tests/fuzz/fuzz-config.c
fuzz_config_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) $(BG_DEPS_CFLAGS)
fuzz_config_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
fuzz_config_LDADD = libbgcommon.la $(BG_DEPS_LIBS)

noinst_PROGRAMS += fuzz-dbus-args
fuzz_dbus_args_SOURCES = tests/fuzz/fuzz-dbus-args.c
fuzz_dbus_args_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) $(BG_DEPS_CFLAGS)
fuzz_dbus_args_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
fuzz_dbus_args_LDADD = libbgcommon.la $(BG_DEPS_LIBS)
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
	tests/fuzz/corpus/codec/prepare.json \
	tests/fuzz/fuzz-config.c \
	tests/fuzz/config.dict \
	tests/fuzz/corpus/config/Capital.job \
	tests/fuzz/corpus/config/alpha.job \
	tests/fuzz/corpus/config/beta.job \
	tests/fuzz/corpus/config/bluegreend.conf \
	tests/fuzz/corpus/config/broken.job \
	tests/fuzz/corpus/config/example.job \
	tests/fuzz/corpus/config/full.conf \
	tests/fuzz/corpus/config/full.job \
	tests/fuzz/corpus/config/gamma.job \
	tests/fuzz/corpus/config/heartbeat-overflow.conf \
	tests/fuzz/fuzz-dbus-args.c \
	tests/fuzz/corpus/dbus-args/cutover \
	tests/fuzz/corpus/dbus-args/deploy \
	tests/fuzz/corpus/dbus-args/deploy-bad-version \
	tests/fuzz/corpus/dbus-args/deploy-options \
	tests/fuzz/corpus/dbus-args/evict-host \
	tests/fuzz/corpus/dbus-args/get-job \
	tests/fuzz/corpus/dbus-args/get-job-bad \
	tests/fuzz/corpus/dbus-args/plan-armed \
	tests/fuzz/corpus/dbus-args/report-delivered \
	tests/fuzz/corpus/dbus-args/report-progress \
	tests/fuzz/corpus/dbus-args/retire \
	tests/fuzz/corpus/dbus-args/rollback \
	tests/fuzz/corpus/dbus-args/savepoint-done \
	tests/fuzz/corpus/dbus-args/set-sink-mode

include tests/security.mk
include tests/signed.mk
