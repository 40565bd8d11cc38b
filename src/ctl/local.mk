# bluegreenctl: the operator's CLI (a D-Bus client of the local agent).
noinst_LTLIBRARIES += libbgctl.la
libbgctl_la_SOURCES = src/ctl/ctl.c src/ctl/ctl.h
libbgctl_la_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
libbgctl_la_LIBADD = libbgcommon.la $(BG_DEPS_LIBS)

bin_PROGRAMS += bluegreenctl
bluegreenctl_SOURCES = src/ctl/main.c
bluegreenctl_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
bluegreenctl_LDADD = libbgctl.la
