# libbluegreen: the job-side library (installed, public header bluegreen.h).
# Its code is built once into the convenience library libbluegreen-internal.la,
# which the installed library wraps (only BG_API symbols are exported) and
# which the tests and benchmarks link directly (they need the internal API in
# gate-private.h, and the benchmark measures the call as the library makes it).
# New modules of the library (e.g. src/lib/client.c) go into
# libbluegreen_internal_la_SOURCES.
noinst_LTLIBRARIES += libbluegreen-internal.la
libbluegreen_internal_la_SOURCES = \
	src/lib/bluegreen.h \
	src/lib/gate-private.h \
	src/lib/gate.c \
	src/lib/plan.c
libbluegreen_internal_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(GLIB_CFLAGS) $(SYSTEMD_CFLAGS)
libbluegreen_internal_la_LIBADD = $(GLIB_LIBS) $(SYSTEMD_LIBS)

lib_LTLIBRARIES += libbluegreen.la
include_HEADERS += src/lib/bluegreen.h
pkgconfig_DATA += src/lib/bluegreen.pc
libbluegreen_la_SOURCES =
libbluegreen_la_LIBADD = libbluegreen-internal.la $(GLIB_LIBS) $(SYSTEMD_LIBS)
libbluegreen_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined
DISTCLEANFILES += src/lib/bluegreen.pc
EXTRA_DIST += src/lib/bluegreen.pc.in

# The agent link (client.c): GDBus from gio-2.0, which GLIB_CFLAGS/LIBS cover.
libbluegreen_internal_la_SOURCES += src/lib/client.c src/lib/client-private.h

# No libtool archive: nothing links libbluegreen through libtool, pkg-config
# (bluegreen.pc) says how to link it, and an installed .la only pins
# dependency paths that distributions then strip.
install-exec-hook: bg-remove-la
bg-remove-la:
	rm -f $(DESTDIR)$(libdir)/libbluegreen.la
.PHONY: bg-remove-la
# libtool's uninstall reads the .la to find the shared objects.
uninstall-hook: bg-uninstall-so
bg-uninstall-so:
	rm -f $(DESTDIR)$(libdir)/libbluegreen.so $(DESTDIR)$(libdir)/libbluegreen.so.0 $(DESTDIR)$(libdir)/libbluegreen.so.0.0.0
.PHONY: bg-uninstall-so
