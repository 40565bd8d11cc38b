# bluegreend, the per-host agent.
#
# libbgdbus: the code gdbus-codegen generates from the API XML (BgAgent1,
# BgJob1, BgSlot1 skeletons and proxies, the object manager). The daemon,
# the CLI and libbluegreen's agent link use it. It is compiled with hidden
# visibility so that linking it into the shared libbluegreen exports none of
# its symbols (libtool builds convenience libraries PIC already).
noinst_LTLIBRARIES += libbgdbus.la
bg_dbus_generated = src/daemon/bg-dbus-generated.c src/daemon/bg-dbus-generated.h
nodist_libbgdbus_la_SOURCES = $(bg_dbus_generated)
libbgdbus_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(GLIB_CFLAGS)
libbgdbus_la_LIBADD = $(GLIB_LIBS)
BUILT_SOURCES += $(bg_dbus_generated)
CLEANFILES += $(bg_dbus_generated) src/daemon/bg-dbus-generated.stamp

# One rule producing both files; the stamp keeps parallel make from running
# the generator twice.
src/daemon/bg-dbus-generated.stamp: $(top_srcdir)/data/org.bluegreen.Agent1.xml
	$(AM_V_GEN)$(MKDIR_P) src/daemon && \
	$(GDBUS_CODEGEN) --interface-prefix org.bluegreen. --c-namespace Bg \
		--c-generate-object-manager --c-generate-autocleanup all \
		--glib-min-required 2.74 --pragma-once \
		--generate-c-code src/daemon/bg-dbus-generated $< && \
	touch $@
src/daemon/bg-dbus-generated.c src/daemon/bg-dbus-generated.h: src/daemon/bg-dbus-generated.stamp
	@test -f $@ || { rm -f $<; $(MAKE) $(AM_MAKEFLAGS) $<; }

# libbgdaemon: everything of the agent but main(); the tests link it.
noinst_LTLIBRARIES += libbgdaemon.la
libbgdaemon_la_SOURCES = \
	src/daemon/errors.c src/daemon/errors.h \
	src/daemon/state-file.c src/daemon/state-file.h \
	src/daemon/slot.c src/daemon/slot.h \
	src/daemon/job.c src/daemon/job.h \
	src/daemon/agent.c src/daemon/agent.h \
	src/daemon/context.h \
	src/daemon/systemd.c src/daemon/systemd.h \
	src/daemon/caller.c src/daemon/caller.h \
	src/daemon/kafka.c src/daemon/kafka.h \
	src/daemon/control.c src/daemon/control.h \
	src/daemon/control-topic.c src/daemon/control-topic.h \
	src/daemon/membership.c src/daemon/membership.h \
	src/daemon/cutover.c src/daemon/cutover.h \
	src/daemon/steering.c src/daemon/steering.h \
	src/daemon/fleet-plans.c src/daemon/fleet-plans.h \
	src/daemon/retention.c src/daemon/retention.h \
	src/daemon/history.c src/daemon/history.h \
	src/daemon/log.c src/daemon/log.h \
	src/daemon/metrics.c src/daemon/metrics.h \
	src/daemon/capacity.c src/daemon/capacity.h
libbgdaemon_la_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS) -DG_LOG_DOMAIN=\"bluegreend\"
libbgdaemon_la_LIBADD = libbgdbus.la libbgcommon.la $(BG_DEPS_LIBS)

sbin_PROGRAMS += bluegreend
bluegreend_SOURCES = src/daemon/main.c
bluegreend_CFLAGS = $(AM_CFLAGS) $(BG_DEPS_CFLAGS)
bluegreend_LDADD = libbgdaemon.la
