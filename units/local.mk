# systemd units and the files systemd reads at boot for them.
#
# bluegreend.service is generated from one template for the system manager
# (installed) and for the test rig's user manager (units/test, never
# installed). The user-manager variants drop ProtectHome= and
# ProtectKernelTunables=, which a user manager in a private mount namespace
# cannot set up (status 226), and the start conditions on /etc/bluegreen;
# they keep ProcSubset=pid, which the system unit no longer sets (it hid
# /proc/meminfo from Deploy's memory check): there, with the whole of /proc
# mounted, protecting its kernel files fails with status 226 too (the tests
# give the memory check its figures through BLUEGREEN_TEST_MEMINFO).
# A user unit is only installed as an example under the documentation
# (examples/user/): installed into the user unit directory, packaging tools
# would enable it for every login, and each root login would start a second
# agent with the same host id and state.
bg_unit_sed = -e 's|%sbindir%|$(sbindir)|g' -e 's|%sysconfdir%|$(sysconfdir)|g'
bg_user_unit_sed = \
	-e '/^ProtectHome=/d' -e '/^ProtectKernelTunables=/d' \
	-e '/^StateDirectory/d' -e '/^ConfigurationDirectory/d' \
	-e '/^ReadWritePaths=/d' -e '/^CapabilityBoundingSet=/d' \
	-e '/^Condition/d' -e '/^Alias=/d' -e 's|^ProtectProc=invisible$$|&\nProcSubset=pid|' \
	-e 's|^WantedBy=multi-user.target|WantedBy=default.target|'

systemdsystemunit_DATA = units/bluegreend.service units/bluegreen.slice
bguserexamplesdir = $(docdir)/examples/user
bguserexamples_DATA = units/user/bluegreend.service
units/bluegreend.service: units/bluegreend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units && sed $(bg_unit_sed) -e 's|%mode%|--system|' -e '/^#%hardening%/d' $< > $@.tmp && mv $@.tmp $@
units/user/bluegreend.service: units/bluegreend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units/user && sed $(bg_unit_sed) -e 's|%mode%|--user|' $(bg_user_unit_sed) \
		-e 's|^#%hardening%|# User-manager variant: ProtectHome, ProtectKernelTunables, the state and\n# configuration directories and the capability bounding set are not set here;\n# ProcSubset=pid is (see units/local.mk in the sources).|' \
		$< > $@.tmp && mv $@.tmp $@
# The build-tree user unit used by the tests: binaries from the build dir,
# config and state under a directory given in the environment.
units/test/bluegreend.service: units/bluegreend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units/test && sed -e 's|%sbindir%/bluegreend %mode%|$(abs_top_builddir)/bluegreend --user --config=$${BLUEGREEN_TEST_CONFIG}|' \
		$(bg_unit_sed) $(bg_user_unit_sed) -e '/^ProtectSystem=/d' -e '/^PrivateTmp=/d' \
		-e 's|^#%hardening%|# Test variant (build tree): paths under the test directory must stay writable;\n# ProcSubset=pid is set here (see units/local.mk).|' \
		$< > $@.tmp && mv $@.tmp $@
CLEANFILES += units/bluegreend.service units/user/bluegreend.service units/test/bluegreend.service
EXTRA_DIST += units/bluegreend.service.in units/bluegreen.slice
noinst_DATA = units/test/bluegreend.service

# The "bluegreen" group that the system-bus policy lets steer the agent, and
# the jobs directory (the agent refuses to start without it).
sysusersdir = $(prefix)/lib/sysusers.d
dist_sysusers_DATA = units/sysusers.d/bluegreen.conf
tmpfilesdir = $(prefix)/lib/tmpfiles.d
dist_tmpfiles_DATA = units/tmpfiles.d/bluegreen.conf
