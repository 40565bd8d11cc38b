# libbgcommon: code shared by the agent, the CLI, the rig and the tests
# (names, D-Bus argument checks, control-protocol codec and signatures,
# configuration, partition watermarks). Not installed.
noinst_LTLIBRARIES += libbgcommon.la
libbgcommon_la_SOURCES = \
	src/common/names.c src/common/names.h \
	src/common/dbus-args.c src/common/dbus-args.h \
	src/common/control-sign.c src/common/control-sign.h \
	src/common/watermarks.c src/common/watermarks.h
libbgcommon_la_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
libbgcommon_la_LIBADD = $(BG_DEPS_LIBS)

# Each module adds its own files in its own fragment.
include src/common/codec.mk
include src/common/config.mk
