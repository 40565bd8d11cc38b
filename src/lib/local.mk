# libbluegreen: the job-side library (installed, public header bluegreen.h)
lib_LTLIBRARIES += libbluegreen.la
include_HEADERS += src/lib/bluegreen.h
pkgconfig_DATA += src/lib/bluegreen.pc
libbluegreen_la_SOURCES = \
	src/lib/gate.c
libbluegreen_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(GLIB_CFLAGS)
libbluegreen_la_LIBADD = $(GLIB_LIBS)
libbluegreen_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined
DISTCLEANFILES += src/lib/bluegreen.pc
EXTRA_DIST += src/lib/bluegreen.pc.in
